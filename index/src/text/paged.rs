//! A block's full-text index by page of rows: which pages (of
//! [`PAGE_ROWS`] consecutive rows) may hold a term. Candidates are whole
//! pages, so the caller checks every candidate row against the query.
//!
//! Most of a log line's distinct values occur once in a block (request
//! ids, client addresses, trace ids): listing them in a term dictionary
//! costs more than the text itself. So terms found in one page only
//! ("singletons") go into that page's signature, a Bloom filter of a
//! fixed number of bits per page stored bit-sliced: slice `b` holds bit
//! `b` of every page's filter, and a probe ANDs the probe's slices, one
//! pass for every page at once. Terms found in two pages or more go into
//! a sorted, front-coded dictionary with the list of their pages.
//!
//! Prefix and regex queries scan the dictionary; for singletons they use a
//! prefix key (the first [`PREFIX_CHARS`] characters of every singleton,
//! itself a term of the index) when the query's literal prefix is that
//! long, and otherwise every page.
//!
//! Layout of the body (integers little-endian; the storage crate seals it
//! with a header, a footer and a checksum):
//!
//! ```text
//! rows u32 | page_rows u32 | sig_bits u32 | probes u8 | nblocks u32
//! block_offset u32 * nblocks     (from the start of the dictionary)
//! dict_len u32 | dictionary (dict_len bytes)
//! slice * sig_bits               (each ceil(pages / 64) u64 words;
//!                                 bit p%64 of word p/64 is page p)
//! dictionary block = n uvarint, then n entries:
//!   shared uvarint | suffix_len uvarint | suffix bytes
//!   npages uvarint | page list
//! ```
//!
//! A page list is written by its density ([`PageLists::EliasFano`]): a
//! term of fewer than a quarter of the pages lists them, Elias–Fano coded
//! (`crate::elias_fano`, universe `pages`); a term of all but fewer than a
//! quarter lists the pages it is missing from the same way; any other is a
//! bitmap of `ceil(pages / 8)` bytes (bit `p % 8` of byte `p / 8`). Every
//! kind's length follows from `npages`, so a lookup steps over the lists
//! of the terms it passes without reading them. Measured at 10M synthetic
//! lines, the terms of every line's template ("status", "user_id") were a
//! third of the dictionary as lists of every page, a byte each; and the
//! values seen a few hundred times a block (users, addresses) were most of
//! the rest, as gaps of about two bytes each where Elias–Fano takes about
//! 11 bits. Older blocks: version 5 ([`PageLists::ByDensity`]) splits at
//! an eighth and lists pages as `first_page uvarint | (gap uvarint) *
//! (n - 1)`; versions 3 and 4 ([`PageLists::Gaps`]) list every term's
//! pages that way.
//!
//! The first entry of a block shares nothing with the one before, so a
//! lookup binary-searches the blocks by their first term.

use std::borrow::Cow;

use roaring::RoaringBitmap;
use rustc_hash::FxHashMap;

use super::query::TermSource;
use crate::Ascending;
use crate::bloom::{hash, hash_positions, positions};
use crate::elias_fano;
use crate::error::{Error, Result};
use crate::varint::{get_uvarint, put_uvarint};

/// Rows in a page. Fewer rows make a rare term's candidates fewer, at a
/// cost in index bytes: each (term, page) pair is an entry of a page list,
/// and the values a line carries a few of (counts, durations, address
/// octets) are in most pages either way. Measured at 10M synthetic lines,
/// pages of 16 rows made an index of 20.6 bytes a line and pages of 64
/// (with the signatures below) 15.6, the rare spread term `u-4242` taking
/// 5.7 and 11.1 ms at p50: checking four times the rows costs less than
/// a third more bytes on every line.
pub const PAGE_ROWS: u32 = 64;
/// Characters of a singleton's prefix key.
pub const PREFIX_CHARS: usize = 4;
/// Marks prefix keys; the tokenizer never produces it.
const PREFIX_MARK: char = '\u{2}';
/// Signature bits per singleton key: with [`PROBES`] probes, about 2 in
/// 10,000 pages answer a probe wrongly. Each such page costs the reader
/// a frame decode, and a block of 10⁶ rows has 15,625 pages: measured at
/// 10M synthetic lines (13 blocks), a term found nowhere took 2.2 ms at
/// p50 with 18 bits, 6.5 ms with 16 (5 in 10,000), for 0.5 bytes a line.
const BITS_PER_KEY: u64 = 18;
const PROBES: u8 = 12;
/// Entries of a dictionary block.
const BLOCK_TERMS: usize = 32;

/// How an index's dictionary writes a term's pages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PageLists {
    /// Every term's pages listed as gaps (blocks of versions 3 and 4).
    Gaps,
    /// By density, lists as gaps (blocks of version 5).
    ByDensity,
    /// By density, lists in Elias–Fano coding (the writer's).
    EliasFano,
}

/// How a list of `n` of `pages` pages is written.
#[derive(Clone, Copy, PartialEq, Eq)]
enum ListKind {
    /// The pages.
    Present,
    /// The pages it is missing from.
    Missing,
    /// A bit a page.
    Bitmap,
}

impl PageLists {
    fn kind(self, n: u64, pages: u64) -> ListKind {
        // An Elias–Fano list of n of p pages takes about n·(2 + log2(p/n))
        // bits: less than a bitmap's p bits below a quarter of the pages.
        let sparse = match self {
            PageLists::Gaps => return ListKind::Present,
            PageLists::ByDensity => 8,
            PageLists::EliasFano => 4,
        };
        if n * sparse < pages {
            ListKind::Present
        } else if (pages - n.min(pages)) * sparse < pages {
            ListKind::Missing
        } else {
            ListKind::Bitmap
        }
    }
}

/// Appends `p`, a list of pages out of `pages`, as `lists` writes it
/// (after its count). The writer writes [`PageLists::EliasFano`]; tests
/// write the older codings to check their readers.
fn put_pages(data: &mut Vec<u8>, p: &Pages, pages: u32, lists: PageLists) {
    put_uvarint(data, p.len() as u64);
    let put_list = |data: &mut Vec<u8>, n: usize, list: &mut dyn Iterator<Item = u32>| {
        if lists == PageLists::EliasFano {
            elias_fano::put(data, n, list, pages);
            return;
        }
        // The first page whole, then gaps.
        let mut last = 0;
        for q in list {
            put_uvarint(data, u64::from(q - last));
            last = q;
        }
    };
    match lists.kind(p.len() as u64, u64::from(pages)) {
        ListKind::Present => put_list(data, p.len(), &mut p.iter()),
        ListKind::Missing => {
            let mut listed = p.iter().peekable();
            let mut missing = (0..pages).filter(|&q| {
                if listed.peek() == Some(&q) {
                    listed.next();
                    false
                } else {
                    true
                }
            });
            put_list(data, (pages as usize) - p.len(), &mut missing);
        }
        ListKind::Bitmap => {
            let at = data.len();
            data.resize(at + pages.div_ceil(8) as usize, 0);
            for q in p.iter() {
                data[at + (q / 8) as usize] |= 1 << (q % 8);
            }
        }
    }
}
const FIXED_LEN: usize = 4 + 4 + 4 + 1 + 4;

fn corrupt(what: &'static str) -> Error {
    Error::Corrupt(what)
}

/// A term's pages as the writer gathers them (most terms have one).
type Pages = Ascending;

/// Builds the index of one block. Terms come either row by row
/// ([`PagedIndexWriter::add`]) or, from an index already inverted as the
/// head's, term by term with their rows, borrowed rather than copied
/// ([`PagedIndexWriter::with_rows`], [`PagedIndexWriter::add_rows`]).
#[derive(Default)]
pub struct PagedIndexWriter<'a> {
    rows: u32,
    /// Terms added row by row.
    added: FxHashMap<Box<str>, Pages>,
    /// Terms added with their rows, sorted out as they come (while the
    /// caller has their text in cache).
    listed: Sorted<'a>,
}

/// Terms sorted out for the layout: singletons for the signatures, the
/// rest for the dictionary, and the prefix keys gathering.
#[derive(Default)]
struct Sorted<'a> {
    /// Singletons as (key hash, page).
    singles: Vec<(u64, u32)>,
    /// (sort key, term, pages).
    dict: Vec<(u64, Cow<'a, str>, Cow<'a, Pages>)>,
    /// Each singleton prefix (the term's own first characters; the mark
    /// is added when written) with its pages, by [`packed`] prefix:
    /// hashing the prefixes as strings and comparing them with `memcmp`
    /// was half the cost of sorting the terms out.
    prefixes: FxHashMap<u128, (&'a str, Vec<u32>)>,
    /// Terms spelt like a marked prefix key (no tokenizer makes one):
    /// they join their key.
    marked: FxHashMap<&'a str, Cow<'a, Pages>>,
}

impl<'a> Sorted<'a> {
    fn add(&mut self, t: &'a str, p: Cow<'a, Pages>) {
        if p.is_single()
            && let Some(key) = prefix_of(t)
        {
            (self.prefixes.entry(packed(key)))
                .or_insert_with(|| (key, Vec::new()))
                .1
                .push(p.first());
        }
        if t.starts_with(PREFIX_MARK) {
            self.marked.insert(t, p);
        } else if p.is_single() {
            self.singles.push((hash(t.as_bytes()), p.first()));
        } else {
            self.dict.push((sort_key(t), Cow::Borrowed(t), p));
        }
    }

    /// Turns the gathered prefixes (and marked terms) into terms.
    fn add_prefix_keys(&mut self) {
        for (key, mut all) in std::mem::take(&mut self.prefixes).into_values() {
            // Not `format!`: called once per distinct prefix, its
            // formatting machinery stood out in profiles of a flush.
            let mut marked = String::with_capacity(1 + key.len());
            marked.push(PREFIX_MARK);
            marked.push_str(key);
            let key = marked;
            if let Some(own) = self.marked.remove(key.as_str()) {
                all.extend(own.iter());
            }
            // Pages came in no order.
            all.sort_unstable();
            all.dedup();
            let Some(p) = Pages::from_sorted(all) else {
                continue;
            };
            if p.is_single() {
                self.singles.push((hash(key.as_bytes()), p.first()));
            } else {
                self.dict
                    .push((sort_key(&key), Cow::Owned(key), Cow::Owned(p)));
            }
        }
        for (t, p) in std::mem::take(&mut self.marked) {
            if p.is_single() {
                self.singles.push((hash(t.as_bytes()), p.first()));
            } else {
                self.dict.push((sort_key(t), Cow::Borrowed(t), p));
            }
        }
    }
}

impl<'a> PagedIndexWriter<'a> {
    /// An empty index.
    pub fn new() -> Self {
        Self::default()
    }

    /// An index of `rows` rows whose terms are given with
    /// [`PagedIndexWriter::add_rows`].
    pub fn with_rows(rows: u32) -> Self {
        PagedIndexWriter {
            rows,
            ..Self::default()
        }
    }

    /// Adds `term` at `rows` (ascending; rows below
    /// [`PagedIndexWriter::with_rows`]' count). Each term is given once.
    pub fn add_rows(&mut self, term: &'a str, rows: impl Iterator<Item = u32>) {
        let mut pages = rows.map(|r| r / PAGE_ROWS);
        let Some(first) = pages.next() else {
            return;
        };
        let mut p = Pages::new(first);
        pages.for_each(|q| {
            p.push(q);
        });
        self.listed.add(term, Cow::Owned(p));
    }

    /// Indexes the next row's terms.
    pub fn add<'t>(&mut self, terms: impl IntoIterator<Item = &'t str>) {
        let page = self.rows / PAGE_ROWS;
        for t in terms {
            match self.added.get_mut(t) {
                Some(p) => {
                    p.push(page);
                }
                None => {
                    self.added.insert(t.into(), Pages::new(page));
                }
            }
        }
        self.rows += 1;
    }

    /// The serialised index (the body described in the module doc).
    pub fn finish(self) -> Vec<u8> {
        self.finish_as(PageLists::EliasFano)
    }

    /// [`PagedIndexWriter::finish`], page lists written as `lists` says.
    fn finish_as(self, lists: PageLists) -> Vec<u8> {
        let PagedIndexWriter {
            rows,
            added,
            listed,
        } = self;
        let pages = rows.div_ceil(PAGE_ROWS);
        let mut sorted = listed;
        for (t, p) in &added {
            sorted.add(t, Cow::Borrowed(p));
        }
        sorted.add_prefix_keys();
        let Sorted {
            singles, mut dict, ..
        } = sorted;
        let sig_bits = if singles.is_empty() {
            0
        } else {
            (singles.len() as u64 * BITS_PER_KEY / u64::from(pages.max(1)))
                .max(64)
                .next_multiple_of(64)
        };
        let slices = signatures(&singles, pages, sig_bits);
        // By the first 8 bytes, kept beside each term: most comparisons end
        // there and never read the terms, which lie all over the caller's
        // memory.
        dict.sort_unstable_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.cmp(&b.1)));
        let mut data = Vec::new();
        let mut offsets = Vec::new();
        for block in dict.chunks(BLOCK_TERMS) {
            offsets.push(data.len() as u32);
            put_uvarint(&mut data, block.len() as u64);
            let mut prev: &[u8] = &[];
            for (_, t, p) in block {
                let t = t.as_bytes();
                let shared = t.iter().zip(prev).take_while(|(a, b)| a == b).count();
                put_uvarint(&mut data, shared as u64);
                put_uvarint(&mut data, (t.len() - shared) as u64);
                data.extend_from_slice(&t[shared..]);
                put_pages(&mut data, p, pages, lists);
                prev = t;
            }
        }
        let mut out = Vec::with_capacity(FIXED_LEN + data.len() + slices.len() * 8);
        out.extend_from_slice(&rows.to_le_bytes());
        out.extend_from_slice(&PAGE_ROWS.to_le_bytes());
        out.extend_from_slice(&(sig_bits as u32).to_le_bytes());
        out.push(PROBES);
        out.extend_from_slice(&(offsets.len() as u32).to_le_bytes());
        for o in offsets {
            out.extend_from_slice(&o.to_le_bytes());
        }
        out.extend_from_slice(&(data.len() as u32).to_le_bytes());
        out.extend_from_slice(&data);
        for w in slices {
            out.extend_from_slice(&w.to_le_bytes());
        }
        out
    }
}

/// The bit slices of the signatures of `pages` pages holding `singles`
/// (key hash, page). Keys are bucketed by page, so the bits are set a
/// page at a time: the slice words written stay in cache however large
/// the block.
fn signatures(singles: &[(u64, u32)], pages: u32, sig_bits: u64) -> Vec<u64> {
    let words = pages.div_ceil(64) as usize;
    let mut slices = vec![0u64; sig_bits as usize * words];
    let mut starts = vec![0usize; pages as usize + 1];
    for (_, page) in singles {
        starts[*page as usize + 1] += 1;
    }
    for p in 1..starts.len() {
        starts[p] += starts[p - 1];
    }
    let mut next = starts.clone();
    let mut hashes = vec![0u64; singles.len()];
    for (h, page) in singles {
        let at = &mut next[*page as usize];
        hashes[*at] = *h;
        *at += 1;
    }
    for page in 0..pages as usize {
        for &h in &hashes[starts[page]..starts[page + 1]] {
            for b in hash_positions(h, PROBES, sig_bits) {
                slices[b as usize * words + page / 64] |= 1 << (page % 64);
            }
        }
    }
    slices
}

/// A term's first 8 bytes as a big-endian number, zero-padded: ordered as
/// the terms are, up to ties.
fn sort_key(term: &str) -> u64 {
    let b = term.as_bytes();
    (0..8).fold(0, |k, i| k << 8 | u64::from(b.get(i).copied().unwrap_or(0)))
}

/// The first [`PREFIX_CHARS`] characters of a term at least that long:
/// its prefix key, without the mark.
fn prefix_of(term: &str) -> Option<&str> {
    if term
        .as_bytes()
        .get(..PREFIX_CHARS)
        .is_some_and(<[u8]>::is_ascii)
    {
        return Some(&term[..PREFIX_CHARS]);
    }
    let mut ends = term.char_indices().map(|(i, c)| i + c.len_utf8());
    ends.nth(PREFIX_CHARS - 1).map(|end| &term[..end])
}

/// A prefix key's bytes as one number, zero-padded. Every key has
/// exactly [`PREFIX_CHARS`] characters, so no two keys pad to the same
/// bytes, and they fit: a character is at most 4 bytes.
fn packed(key: &str) -> u128 {
    const _: () = assert!(PREFIX_CHARS * 4 <= 16);
    let mut b = [0u8; 16];
    b[..key.len()].copy_from_slice(key.as_bytes());
    u128::from_le_bytes(b)
}

/// An opened paged index over its serialised bytes (`B`: a memory map or
/// a buffer; `start` is where the body begins in it).
pub struct PagedIndex<B> {
    bytes: B,
    rows: u32,
    page_rows: u32,
    sig_bits: u32,
    probes: u8,
    /// Offsets of the block table, the dictionary and the slices.
    blocks_at: usize,
    nblocks: usize,
    dict_at: usize,
    dict_len: usize,
    slices_at: usize,
    lists: PageLists,
}

impl<B> std::fmt::Debug for PagedIndex<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PagedIndex({} rows)", self.rows)
    }
}

fn u32_at(b: &[u8], at: usize) -> Result<u32> {
    b.get(at..at + 4)
        .and_then(|s| s.try_into().ok())
        .map(u32::from_le_bytes)
        .ok_or(corrupt("paged index truncated"))
}

/// One dictionary entry: its term and where its pages are.
struct Entry {
    term: Vec<u8>,
    pages_at: usize,
}

impl<B: std::ops::Deref<Target = [u8]>> PagedIndex<B> {
    /// Checks the layout of the body at `bytes[start..end]`, whose page
    /// lists are written as `lists` says.
    pub fn open(bytes: B, start: usize, end: usize, lists: PageLists) -> Result<Self> {
        let body = bytes
            .get(start..end)
            .ok_or(corrupt("paged index outside its file"))?;
        if body.len() < FIXED_LEN {
            return Err(corrupt("paged index truncated"));
        }
        let rows = u32_at(body, 0)?;
        let page_rows = u32_at(body, 4)?;
        let sig_bits = u32_at(body, 8)?;
        let probes = body[12];
        let nblocks = u32_at(body, 13)? as usize;
        if !(1..=4096).contains(&page_rows)
            || (sig_bits > 0 && (probes == 0 || probes > 30))
            || sig_bits % 64 != 0
        {
            return Err(corrupt("paged index parameters"));
        }
        let blocks_at = FIXED_LEN;
        let dict_len_at = nblocks
            .checked_mul(4)
            .and_then(|n| n.checked_add(blocks_at))
            .ok_or(corrupt("paged index block count"))?;
        let dict_len = u32_at(body, dict_len_at)? as usize;
        let dict_at = dict_len_at + 4;
        let slices_at = dict_at
            .checked_add(dict_len)
            .ok_or(corrupt("paged index dictionary length"))?;
        let words = rows.div_ceil(page_rows).div_ceil(64) as usize;
        let slices_len = (sig_bits as usize)
            .checked_mul(words)
            .and_then(|n| n.checked_mul(8))
            .ok_or(corrupt("paged index signature size"))?;
        if slices_at.checked_add(slices_len) != Some(body.len()) {
            return Err(corrupt("paged index size does not match its parts"));
        }
        let mut prev = 0;
        for i in 0..nblocks {
            let o = u32_at(body, blocks_at + 4 * i)? as usize;
            if o >= dict_len || (i > 0 && o <= prev) {
                return Err(corrupt("paged index block offsets"));
            }
            prev = o;
        }
        let (blocks_at, dict_at, slices_at) =
            (start + blocks_at, start + dict_at, start + slices_at);
        Ok(PagedIndex {
            bytes,
            rows,
            page_rows,
            sig_bits,
            probes,
            blocks_at,
            nblocks,
            dict_at,
            dict_len,
            slices_at,
            lists,
        })
    }

    /// Rows covered.
    pub fn rows(&self) -> u32 {
        self.rows
    }

    /// The bytes it was opened over.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    fn pages(&self) -> u32 {
        self.rows.div_ceil(self.page_rows)
    }

    fn dict(&self) -> &[u8] {
        &self.bytes[self.dict_at..self.dict_at + self.dict_len]
    }

    fn block_start(&self, i: usize) -> usize {
        let at = self.blocks_at + 4 * i;
        u32::from_le_bytes([
            self.bytes[at],
            self.bytes[at + 1],
            self.bytes[at + 2],
            self.bytes[at + 3],
        ]) as usize
    }

    /// The entries of dictionary block `i`, each given to `f` until it
    /// returns false.
    fn scan_block(&self, i: usize, f: &mut dyn FnMut(&Entry) -> Result<bool>) -> Result<bool> {
        let dict = self.dict();
        let mut pos = self.block_start(i);
        let bad = || corrupt("paged index dictionary");
        let n = get_uvarint(dict, &mut pos).ok_or_else(bad)?;
        let mut term: Vec<u8> = Vec::new();
        for k in 0..n {
            let shared = get_uvarint(dict, &mut pos).ok_or_else(bad)? as usize;
            let len = get_uvarint(dict, &mut pos).ok_or_else(bad)? as usize;
            if shared > term.len() || (k == 0 && shared != 0) {
                return Err(bad());
            }
            let suffix = pos
                .checked_add(len)
                .and_then(|end| dict.get(pos..end))
                .ok_or_else(bad)?;
            term.truncate(shared);
            term.extend_from_slice(suffix);
            pos += len;
            let pages_at = pos;
            self.walk_pages(&mut pos, None)?;
            let e = Entry {
                term: std::mem::take(&mut term),
                pages_at,
            };
            let go_on = f(&e)?;
            term = e.term;
            if !go_on {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// The first term of block `i`.
    fn first_term(&self, i: usize) -> Result<Vec<u8>> {
        let mut first = Vec::new();
        self.scan_block(i, &mut |e| {
            first = e.term.clone();
            Ok(false)
        })?;
        Ok(first)
    }

    /// The block where a term at or after `key` would start to be found.
    fn block_for(&self, key: &[u8]) -> Result<usize> {
        let (mut lo, mut hi) = (0, self.nblocks);
        while lo < hi {
            let mid = (lo + hi) / 2;
            if self.first_term(mid)?.as_slice() <= key {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        Ok(lo.saturating_sub(1))
    }

    /// Adds the pages listed at `at` to `out`.
    fn read_pages(&self, at: usize, out: &mut RoaringBitmap) -> Result<()> {
        let mut pos = at;
        self.walk_pages(&mut pos, Some(out))
    }

    /// Reads the page list at `pos` (moving past it), checking it, and
    /// adds its pages to `out` when given.
    fn walk_pages(&self, pos: &mut usize, mut out: Option<&mut RoaringBitmap>) -> Result<()> {
        let dict = self.dict();
        let bad = || corrupt("paged index page list");
        let pages = self.pages();
        let n = get_uvarint(dict, pos).ok_or_else(bad)?;
        if n == 0 || n > u64::from(pages) {
            return Err(bad());
        }
        let kind = self.lists.kind(n, u64::from(pages));
        if kind == ListKind::Bitmap {
            let bytes = pos
                .checked_add(pages.div_ceil(8) as usize)
                .and_then(|end| dict.get(*pos..end))
                .ok_or_else(bad)?;
            *pos += bytes.len();
            // Its length is fixed: stepping over it reads nothing (a
            // lookup steps over the lists of every term it passes).
            if let Some(out) = out {
                let tail = pages % 8;
                let spill = bytes.last().is_some_and(|b| tail > 0 && b >> tail != 0);
                let ones: u64 = bytes.iter().map(|b| u64::from(b.count_ones())).sum();
                if spill || ones != n {
                    return Err(bad());
                }
                for (i, &b) in bytes.iter().enumerate() {
                    let mut b = b;
                    while b != 0 {
                        out.insert(i as u32 * 8 + b.trailing_zeros());
                        b &= b - 1;
                    }
                }
            }
            return Ok(());
        }
        let listed = match kind {
            ListKind::Missing => {
                if let Some(out) = out.as_deref_mut() {
                    out.insert_range(0..pages);
                }
                u64::from(pages) - n
            }
            _ => n,
        };
        let reading = out.is_some();
        let mut take = |page: u32| {
            if let Some(out) = out.as_deref_mut() {
                if kind == ListKind::Missing {
                    out.remove(page);
                } else {
                    out.insert(page);
                }
            }
        };
        if self.lists == PageLists::EliasFano {
            // Its length follows from its count: stepping over it reads
            // nothing, as for a bitmap.
            let bytes = pos
                .checked_add(elias_fano::len(listed, u64::from(pages)))
                .and_then(|end| dict.get(*pos..end))
                .ok_or_else(bad)?;
            *pos += bytes.len();
            if reading {
                elias_fano::read(bytes, listed, u64::from(pages), take).map_err(|()| bad())?;
            }
            return Ok(());
        }
        let mut page = 0u64;
        for i in 0..listed {
            let v = get_uvarint(dict, pos).ok_or_else(bad)?;
            page = if i == 0 {
                v
            } else if v == 0 {
                return Err(bad());
            } else {
                page.checked_add(v).ok_or_else(bad)?
            };
            if page >= u64::from(pages) {
                return Err(bad());
            }
            take(page as u32);
        }
        Ok(())
    }

    /// Pages of dictionary terms from `prefix` on for which `f` says
    /// (`Some(true)`: take it, `Some(false)`: skip it, `None`: stop).
    fn dict_pages(
        &self,
        prefix: &[u8],
        f: &dyn Fn(&[u8]) -> Option<bool>,
        out: &mut RoaringBitmap,
    ) -> Result<()> {
        if self.nblocks == 0 {
            return Ok(());
        }
        for i in self.block_for(prefix)?..self.nblocks {
            let mut found = Vec::new();
            let go_on = self.scan_block(i, &mut |e| match f(&e.term) {
                Some(true) => {
                    found.push(e.pages_at);
                    Ok(true)
                }
                Some(false) => Ok(true),
                None => Ok(false),
            })?;
            for at in found {
                self.read_pages(at, out)?;
            }
            if !go_on {
                break;
            }
        }
        Ok(())
    }

    /// Pages whose signature may hold `key`.
    fn probe(&self, key: &[u8], out: &mut RoaringBitmap) {
        if self.sig_bits == 0 {
            return;
        }
        let words = self.pages().div_ceil(64) as usize;
        let slice = |b: u64| {
            let at = self.slices_at + b as usize * words * 8;
            move |w: usize| {
                let s = &self.bytes[at + w * 8..at + w * 8 + 8];
                u64::from_le_bytes([s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]])
            }
        };
        let bits: Vec<u64> = positions(key, self.probes, u64::from(self.sig_bits)).collect();
        for w in 0..words {
            let mut acc = u64::MAX;
            for &b in &bits {
                acc &= slice(b)(w);
                if acc == 0 {
                    break;
                }
            }
            while acc != 0 {
                let bit = acc.trailing_zeros();
                out.insert(w as u32 * 64 + bit);
                acc &= acc - 1;
            }
        }
    }

    /// Pages that may hold `term` exactly: its dictionary entry, or the
    /// pages whose signature answers for it.
    fn term_pages(&self, term: &str, out: &mut RoaringBitmap) -> Result<()> {
        let t = term.as_bytes();
        let mut listed = RoaringBitmap::new();
        self.dict_pages(
            t,
            &|x| match x.cmp(t) {
                std::cmp::Ordering::Less => Some(false),
                std::cmp::Ordering::Equal => Some(true),
                std::cmp::Ordering::Greater => None,
            },
            &mut listed,
        )?;
        if listed.is_empty() {
            self.probe(t, out);
        } else {
            *out |= listed;
        }
        Ok(())
    }

    /// The rows of `pages`.
    fn rows_of(&self, pages: &RoaringBitmap) -> RoaringBitmap {
        let mut rows = RoaringBitmap::new();
        for p in pages {
            let lo = p * self.page_rows;
            rows.insert_range(lo..(lo + self.page_rows).min(self.rows));
        }
        rows
    }
}

impl<B: std::ops::Deref<Target = [u8]>> TermSource for PagedIndex<B> {
    fn all_rows(&self) -> RoaringBitmap {
        let mut b = RoaringBitmap::new();
        b.insert_range(0..self.rows);
        b
    }

    fn term_rows(&self, token: &str) -> Result<RoaringBitmap> {
        let mut pages = RoaringBitmap::new();
        self.term_pages(token, &mut pages)?;
        Ok(self.rows_of(&pages))
    }

    fn rows_where(&self, prefix: &str, pred: &dyn Fn(&str) -> bool) -> Result<RoaringBitmap> {
        let mut pages = RoaringBitmap::new();
        let p = prefix.as_bytes();
        let take = |t: &[u8]| {
            if !t.starts_with(p) {
                return if t < p { Some(false) } else { None };
            }
            // A term that is not UTF-8 cannot be judged: a candidate.
            Some(std::str::from_utf8(t).map_or(true, pred))
        };
        self.dict_pages(p, &take, &mut pages)?;
        // Singletons: by their prefix key, or every page.
        if let Some(key) = prefix_of(prefix) {
            self.term_pages(&format!("{PREFIX_MARK}{key}"), &mut pages)?;
        } else if self.sig_bits > 0 {
            pages.insert_range(0..self.pages());
        }
        Ok(self.rows_of(&pages))
    }

    fn exact(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Every coding of page lists: the writer's and those of older blocks.
    const CODINGS: [PageLists; 3] = [PageLists::Gaps, PageLists::ByDensity, PageLists::EliasFano];

    fn build(rows: &[Vec<String>]) -> PagedIndex<Vec<u8>> {
        build_as(rows, PageLists::EliasFano)
    }

    fn build_as(rows: &[Vec<String>], lists: PageLists) -> PagedIndex<Vec<u8>> {
        let mut w = PagedIndexWriter::new();
        for r in rows {
            w.add(r.iter().map(String::as_str));
        }
        let bytes = w.finish_as(lists);
        let n = bytes.len();
        PagedIndex::open(bytes, 0, n, lists).unwrap()
    }

    /// The same index built as a flush does: from term → rows.
    fn build_inverted(rows: &[Vec<String>]) -> PagedIndex<Vec<u8>> {
        let mut inverted: std::collections::BTreeMap<&str, Vec<u32>> = Default::default();
        for (r, ts) in rows.iter().enumerate() {
            for t in ts {
                let list = inverted.entry(t.as_str()).or_default();
                if list.last() != Some(&(r as u32)) {
                    list.push(r as u32);
                }
            }
        }
        let mut w = PagedIndexWriter::with_rows(rows.len() as u32);
        for (t, list) in &inverted {
            w.add_rows(t, list.iter().copied());
        }
        let bytes = w.finish();
        let n = bytes.len();
        PagedIndex::open(bytes, 0, n, PageLists::EliasFano).unwrap()
    }

    fn terms() -> impl Strategy<Value = Vec<Vec<String>>> {
        // Common words, values that repeat and random ids.
        let term = prop_oneof![
            prop::sample::select(vec!["get", "error", "timeout", "orders", "u-42"])
                .prop_map(String::from),
            "[a-c]{1,3}",
            "[0-9a-f]{4,12}",
            // Spelt like a prefix key (no tokenizer makes these; the index
            // must still find them).
            "\u{2}[a\u{0}]{0,5}",
            // Characters of one to four bytes, so prefix keys of different
            // byte lengths meet.
            "[a\u{0}é€😀]{3,6}",
        ];
        prop::collection::vec(prop::collection::vec(term, 0..6), 0..400)
    }

    proptest! {
        /// Every row holding a term is among its candidates, whether the
        /// term is looked up, matched by a prefix or by a predicate, in
        /// every coding of page lists.
        #[test]
        fn no_row_is_missed(rows in terms(), lists in prop::sample::select(CODINGS.to_vec())) {
            let (direct, inverted) = (build(&rows), build_inverted(&rows));
            prop_assert_eq!(direct.bytes(), inverted.bytes(), "built either way, the same bytes");
            let idx = build_as(&rows, lists);
            prop_assert_eq!(idx.rows() as usize, rows.len());
            for (r, ts) in rows.iter().enumerate() {
                for t in ts {
                    prop_assert!(idx.term_rows(t).unwrap().contains(r as u32), "{t} row {r}");
                    let n = t.chars().count();
                    for cut in [1, 3, 4, 5, n] {
                        let p: String = t.chars().take(cut.min(n)).collect();
                        let got = idx.rows_where(&p, &|x| x == t).unwrap();
                        prop_assert!(got.contains(r as u32), "{p}* for {t} row {r}");
                    }
                    prop_assert!(idx.rows_where("", &|x| x == t).unwrap().contains(r as u32));
                }
            }
        }

        /// Any bytes open to an error or an index whose queries do not panic.
        #[test]
        fn garbage_never_panics(
            bytes in prop::collection::vec(any::<u8>(), 0..200),
            rows in terms(),
            lists in prop::sample::select(CODINGS.to_vec()),
            at in any::<prop::sample::Index>(),
        ) {
            let n = bytes.len();
            if let Ok(idx) = PagedIndex::open(bytes, 0, n, lists) {
                let _ = idx.term_rows("error");
                let _ = idx.rows_where("ab", &|_| true);
            }
            // A real index cut short or with a byte changed.
            let mut w = PagedIndexWriter::new();
            for r in &rows { w.add(r.iter().map(String::as_str)); }
            let good = w.finish_as(lists);
            for cut in [0, good.len() / 2, good.len().saturating_sub(1)] {
                let b = good[..cut].to_vec();
                let n = b.len();
                prop_assert!(PagedIndex::open(b, 0, n, lists).is_err());
            }
            if !good.is_empty() {
                let mut b = good.clone();
                b[at.index(good.len())] ^= 0x5a;
                let n = b.len();
                if let Ok(idx) = PagedIndex::open(b, 0, n, lists) {
                    let _ = idx.term_rows("error");
                    let _ = idx.rows_where("", &|_| true);
                }
            }
        }
    }

    #[test]
    fn rare_values_cost_little_and_are_found() {
        let rows: Vec<Vec<String>> = (0..10_000)
            .map(|i| {
                vec![
                    "get".to_string(),
                    format!("{:016x}", (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)),
                ]
            })
            .collect();
        let mut w = PagedIndexWriter::new();
        for r in &rows {
            w.add(r.iter().map(String::as_str));
        }
        let bytes = w.finish();
        // About 2 bytes per random id (its signature bits and its share of
        // the prefix keys), far below the id's 16.
        assert!(bytes.len() < 10_000 * 6, "{} bytes", bytes.len());
        let n = bytes.len();
        let idx = PagedIndex::open(bytes, 0, n, PageLists::EliasFano).unwrap();
        let id = &rows[1234][1];
        let got = idx.term_rows(id).unwrap();
        assert!(got.contains(1234));
        assert!(got.len() <= 3 * u64::from(PAGE_ROWS), "{} rows", got.len());
        assert_eq!(idx.term_rows("get").unwrap().len(), 10_000);
    }

    /// Terms of every density get exactly their pages back in every
    /// coding, and a term of every page costs next to nothing.
    #[test]
    fn page_lists_by_density_are_exact() {
        let pages = 64u32;
        /// A term and whether it is in page `p`.
        type Density = (&'static str, fn(u32) -> bool);
        let terms: [Density; 5] = [
            ("all", |_| true),
            ("most", |p| p % 13 != 0),
            ("half", |p| p % 2 == 0),
            ("some", |p| p % 16 == 3),
            ("two", |p| p == 7 || p == 40),
        ];
        let rows: Vec<Vec<String>> = (0..pages * PAGE_ROWS)
            .map(|r| {
                let p = r / PAGE_ROWS;
                terms
                    .iter()
                    .filter(|(_, has)| has(p) && r % PAGE_ROWS == 5)
                    .map(|(t, _)| t.to_string())
                    .collect()
            })
            .collect();
        for lists in CODINGS {
            let idx = build_as(&rows, lists);
            for (t, has) in terms {
                let want: RoaringBitmap = (0..pages)
                    .filter(|&p| has(p))
                    .flat_map(|p| p * PAGE_ROWS..(p + 1) * PAGE_ROWS)
                    .collect();
                assert_eq!(idx.term_rows(t).unwrap(), want, "{t} {lists:?}");
            }
        }
        let mut only_all = PagedIndexWriter::new();
        for _ in 0..pages * PAGE_ROWS {
            only_all.add(["all", "also"]);
        }
        let small = only_all.finish();
        assert!(small.len() < 64, "{} bytes", small.len());
    }
}
