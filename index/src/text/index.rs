//! The full-text index of log bodies in blocks before version 3, kept by
//! Tantivy (newer blocks have a [`super::PagedIndex`]); read only.
//!
//! Only postings are stored: the terms field is indexed with document ids
//! alone (no frequencies, positions, field norms or stored values). Each
//! document's value is its terms, already produced by
//! [`super::index_tokens`] and the caller's field terms, joined by NUL; the
//! `sextant_terms` tokenizer only splits at NUL, so Tantivy indexes exactly
//! the terms the head indexes. A `row` fast field maps Tantivy's documents
//! to the block's log rows. Phrases are answered by intersecting the postings
//! of their parts and checking the candidate lines, which keeps the index
//! a fraction of the text's size.

use std::path::Path;

use roaring::RoaringBitmap;
use tantivy::directory::MmapDirectory;
use tantivy::schema::{Field, IndexRecordOption};
use tantivy::{DocSet, Index, SegmentReader, TERMINATED};

use super::query::TermSource;
use crate::error::{Error, Result};

const BODY: &str = "body";
const ROW: &str = "row";

fn text_err(e: impl std::fmt::Display) -> Error {
    Error::Text(e.to_string())
}

/// A block's opened full-text index.
pub struct TextIndex {
    /// Segment readers with the row of their first document, by row.
    segments: Vec<(u32, SegmentReader)>,
    body: Field,
    rows: u32,
}

impl std::fmt::Debug for TextIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TextIndex({} rows)", self.rows)
    }
}

impl TextIndex {
    /// Opens the index in `dir` (memory-mapped).
    pub fn open(dir: &Path) -> Result<Self> {
        let directory = MmapDirectory::open(dir).map_err(text_err)?;
        let index = Index::open(directory).map_err(text_err)?;
        let body = index.schema().get_field(BODY).map_err(text_err)?;
        let mut segments = Vec::new();
        let mut rows = 0u32;
        for seg in index.searchable_segments().map_err(text_err)? {
            let reader = SegmentReader::open(&seg).map_err(text_err)?;
            if reader.max_doc() == 0 {
                continue;
            }
            let base = reader
                .fast_fields()
                .u64(ROW)
                .map_err(text_err)?
                .first(0)
                .ok_or_else(|| Error::Text("segment without row numbers".into()))?;
            let base = u32::try_from(base).map_err(text_err)?;
            rows = rows.max(base.saturating_add(reader.max_doc()));
            segments.push((base, reader));
        }
        segments.sort_by_key(|(base, _)| *base);
        Ok(TextIndex {
            segments,
            body,
            rows,
        })
    }

    /// Rows covered (one past the last).
    pub fn rows(&self) -> u32 {
        self.rows
    }

    /// Rows holding `token`, or (without one) any term `pred` accepts.
    fn for_each_segment_term(
        &self,
        token: Option<&str>,
        prefix: &str,
        pred: &dyn Fn(&str) -> bool,
    ) -> Result<RoaringBitmap> {
        let mut out = RoaringBitmap::new();
        for (base, reader) in &self.segments {
            let inv = reader.inverted_index(self.body).map_err(text_err)?;
            let mut infos = Vec::new();
            if let Some(t) = token {
                infos.extend(inv.terms().get(t.as_bytes()).map_err(text_err)?);
            } else {
                let mut stream = inv
                    .terms()
                    .range()
                    .ge(prefix.as_bytes())
                    .into_stream()
                    .map_err(text_err)?;
                while stream.advance() {
                    if !stream.key().starts_with(prefix.as_bytes()) {
                        break;
                    }
                    if std::str::from_utf8(stream.key()).is_ok_and(pred) {
                        infos.push(stream.value().clone());
                    }
                }
            }
            let mut seg = RoaringBitmap::new();
            for ti in infos {
                let mut postings = inv
                    .read_postings_from_terminfo(&ti, IndexRecordOption::Basic)
                    .map_err(text_err)?;
                let mut doc = postings.doc();
                let mut docs = Vec::with_capacity(postings.doc_freq() as usize);
                while doc != TERMINATED {
                    docs.push(base + doc);
                    doc = postings.advance();
                }
                if seg.is_empty() {
                    seg = RoaringBitmap::from_sorted_iter(docs).map_err(text_err)?;
                } else {
                    seg.extend(docs);
                }
            }
            out |= seg;
        }
        Ok(out)
    }
}

impl TermSource for TextIndex {
    fn all_rows(&self) -> RoaringBitmap {
        let mut b = RoaringBitmap::new();
        b.insert_range(0..self.rows);
        b
    }

    fn term_rows(&self, token: &str) -> Result<RoaringBitmap> {
        self.for_each_segment_term(Some(token), "", &|_| true)
    }

    fn rows_where(&self, prefix: &str, pred: &dyn Fn(&str) -> bool) -> Result<RoaringBitmap> {
        self.for_each_segment_term(None, prefix, pred)
    }
}

/// How blocks before version 3 were indexed: kept to test their reader
/// (blocks now have a paged index).
#[cfg(test)]
mod writer {
    use std::path::Path;

    use tantivy::directory::MmapDirectory;
    use tantivy::indexer::NoMergePolicy;
    use tantivy::schema::{FAST, Field, IndexRecordOption, Schema, TextFieldIndexing, TextOptions};
    use tantivy::tokenizer::{TextAnalyzer, Token, TokenStream, Tokenizer};
    use tantivy::{Index, IndexWriter, TantivyDocument};

    use super::{BODY, ROW, text_err};
    use crate::error::Result;

    const TOKENIZER: &str = "sextant_terms";

    /// Splits a document value at NUL: the value is the row's terms.
    #[derive(Clone, Default)]
    struct TermSplitter;

    struct TermStream<'a> {
        rest: std::str::Split<'a, char>,
        token: Token,
    }

    impl Tokenizer for TermSplitter {
        type TokenStream<'a> = TermStream<'a>;
        fn token_stream<'a>(&'a mut self, text: &'a str) -> TermStream<'a> {
            TermStream {
                rest: text.split('\0'),
                token: Token::default(),
            }
        }
    }

    impl TokenStream for TermStream<'_> {
        fn advance(&mut self) -> bool {
            for t in self.rest.by_ref() {
                if !t.is_empty() {
                    self.token.text.clear();
                    self.token.text.push_str(t);
                    self.token.position = self.token.position.wrapping_add(1);
                    return true;
                }
            }
            false
        }
        fn token(&self) -> &Token {
            &self.token
        }
        fn token_mut(&mut self) -> &mut Token {
            &mut self.token
        }
    }
    /// Indexing memory before Tantivy writes a segment.
    const WRITER_MEMORY: usize = 64 << 20;

    fn schema() -> (Schema, Field, Field) {
        let mut b = Schema::builder();
        let body = b.add_text_field(
            BODY,
            TextOptions::default().set_indexing_options(
                TextFieldIndexing::default()
                    .set_tokenizer(TOKENIZER)
                    .set_fieldnorms(false)
                    .set_index_option(IndexRecordOption::Basic),
            ),
        );
        let row = b.add_u64_field(ROW, FAST);
        (b.build(), body, row)
    }

    /// Builds the index of one block, lines given in row order.
    pub struct TextIndexWriter {
        writer: IndexWriter,
        body: Field,
        row_field: Field,
        next_row: u64,
    }

    impl TextIndexWriter {
        /// Creates an empty index in `dir` (which must exist and be empty).
        pub fn create(dir: &Path) -> Result<Self> {
            let (schema, body, row_field) = schema();
            let directory = MmapDirectory::open(dir).map_err(text_err)?;
            let index = Index::create(directory, schema, Default::default()).map_err(text_err)?;
            index
                .tokenizers()
                .register(TOKENIZER, TextAnalyzer::from(TermSplitter));
            let writer: IndexWriter = index
                .writer_with_num_threads(1, WRITER_MEMORY)
                .map_err(text_err)?;
            writer.set_merge_policy(Box::new(NoMergePolicy));
            Ok(TextIndexWriter {
                writer,
                body,
                row_field,
                next_row: 0,
            })
        }

        /// Indexes the next row's terms (its body's [`super::index_tokens`]
        /// and any field terms; terms holding NUL are skipped).
        pub fn add(&mut self, terms: &[String]) -> Result<()> {
            let mut value = String::with_capacity(terms.iter().map(|t| t.len() + 1).sum());
            for t in terms.iter().filter(|t| !t.contains('\0')) {
                value.push_str(t);
                value.push('\0');
            }
            let mut doc = TantivyDocument::new();
            doc.add_text(self.body, value);
            doc.add_u64(self.row_field, self.next_row);
            self.next_row += 1;
            self.writer.add_document(doc).map_err(text_err)?;
            Ok(())
        }

        /// Commits (Tantivy fsyncs its files) and waits for the writer to stop.
        pub fn finish(mut self) -> Result<()> {
            self.writer.commit().map_err(text_err)?;
            self.writer.wait_merging_threads().map_err(text_err)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::writer::TextIndexWriter;
    use super::*;
    use crate::text::TextQuery;

    #[test]
    fn index_and_search() {
        let dir = tempfile::tempdir().unwrap();
        let lines = [
            "GET /api/v1/orders 200 in 3ms",
            "ERROR connection refused to 10.0.0.7:5432",
            "WARN retrying connection to db-1",
            "ERROR timeout after 30s calling payment",
        ];
        let mut w = TextIndexWriter::create(dir.path()).unwrap();
        for l in lines {
            w.add(&crate::text::index_tokens(l)).unwrap();
        }
        w.finish().unwrap();
        let idx = TextIndex::open(dir.path()).unwrap();
        assert_eq!(idx.rows(), 4);
        let rows = |q: &str| {
            let q = TextQuery::parse(q).unwrap();
            let (cand, exact) = q.candidates(&idx).unwrap();
            cand.iter()
                .filter(|r| exact || q.matches(lines[*r as usize]))
                .collect::<Vec<u32>>()
        };
        assert_eq!(rows("error"), [1, 3]);
        assert_eq!(rows("connection"), [1, 2]);
        assert_eq!(rows("\"connection refused\""), [1]);
        assert_eq!(rows("10.0.0.7:5432"), [1]);
        assert_eq!(rows("api/v1/orders"), [0]);
        assert_eq!(rows("conn* -error"), [2]);
        assert_eq!(rows("/\\d+ms/"), [0]);
        assert_eq!(rows("nothing"), Vec::<u32>::new());
    }
}
