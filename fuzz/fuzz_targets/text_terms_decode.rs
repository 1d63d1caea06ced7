//! The paged full-text index of a block (`logs.terms`): opening arbitrary
//! bytes never panics and any index that opens answers within its rows;
//! an index built from rows taken out of the input finds every row under
//! each of its terms, by term and by prefix, and is the same bytes when
//! built as a flush builds it, from term → rows.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sextant_index::text::{PageLists, PagedIndex, PagedIndexWriter, TermSource};

fuzz_target!(|data: &[u8]| {
    // (A block's row count is checked against its log file before any
    // query; here huge counts would only measure the bitmaps' size.)
    for lists in [PageLists::EliasFano, PageLists::ByDensity, PageLists::Gaps] {
        if let Ok(idx) = PagedIndex::open(data, 0, data.len(), lists)
            && idx.rows() <= 1 << 20
        {
            let all = idx.all_rows();
            for t in ["error", "00a1", "", "\u{1}service=x"] {
                if let Ok(rows) = idx.term_rows(t) {
                    assert!(rows.is_subset(&all), "rows beyond the index");
                }
                if let Ok(rows) = idx.rows_where(t, &|_| true) {
                    assert!(rows.is_subset(&all), "rows beyond the index");
                }
            }
        }
    }
    // Rows of terms: lines of the input, terms split at spaces.
    let text = String::from_utf8_lossy(data);
    let rows: Vec<Vec<&str>> = text
        .split('\n')
        .map(|l| l.split(' ').filter(|t| !t.is_empty()).collect())
        .collect();
    let mut w = PagedIndexWriter::new();
    for r in &rows {
        w.add(r.iter().copied());
    }
    let bytes = w.finish();
    let mut inverted: std::collections::BTreeMap<&str, Vec<u32>> = Default::default();
    for (i, r) in rows.iter().enumerate() {
        for t in r {
            let list = inverted.entry(t).or_default();
            if list.last() != Some(&(i as u32)) {
                list.push(i as u32);
            }
        }
    }
    let mut flushed = PagedIndexWriter::with_rows(rows.len() as u32);
    for (t, list) in &inverted {
        flushed.add_rows(t, list.iter().copied());
    }
    assert!(flushed.finish() == bytes, "built from term → rows, other bytes");
    let idx = PagedIndex::open(&bytes[..], 0, bytes.len(), PageLists::EliasFano)
        .expect("a written index opens");
    for (i, r) in rows.iter().enumerate() {
        for t in r {
            let row = i as u32;
            assert!(idx.term_rows(t).unwrap().contains(row), "term {t:?} misses row {i}");
            let p: String = t.chars().take(5).collect();
            assert!(
                idx.rows_where(&p, &|x| x == *t).unwrap().contains(row),
                "prefix {p:?} misses row {i}"
            );
        }
    }
});
