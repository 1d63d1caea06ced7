//! Which rows of a block may belong to a trace, grouped by trace: the
//! entries of a trace table from block version 5 (`block/traces.rs` adds
//! the Bloom filter and the file around them).
//!
//! Version 4 wrote an entry of 8 bytes (key, row) for every row; a trace's
//! log lines, or its spans, are rows close together, and a trace is looked
//! up whole. So each trace is now one entry, its rows as a first row and
//! gaps, in buckets by the top bits of the id's first 4 bytes, behind a
//! fingerprint of the next (16 bits of the next 2 before version 10).
//! Measured at 1M lines of `sextant bench logs`, the tables went from 9.1
//! to 6.1 bytes a line on the demo corpus (a trace id on every line) and
//! from 4.6 to 3.3 on the synthetic one (on every other line).
//!
//! ```text
//! body   = rows u32le | bits u8 | end u32le × 2^bits | entries
//! entry  = fingerprint [fingerprint_len] | head uvarint
//!          | [more uvarint | (gap uvarint) × more]  (gaps > 0)
//! ```
//!
//! `head` is the first row shifted left by one, its low bit set when more
//! rows follow (most traces have a single log line in a block: their
//! entry is then 5 or 6 bytes).
//!
//! Bucket `b` (the id's first 4 bytes as a little-endian u32, shifted
//! right by `32 − bits`) holds the entries from the end of bucket `b − 1`
//! (0 for the first) to `end[b]`, each bucket's entries in id order. The
//! fingerprint is the id's byte 4 ([`FINGERPRINT_LEN`], block version 10)
//! or bytes 4 and 5 ([`OLD_FINGERPRINT_LEN`], versions 5 to 9): a bucket
//! holds 16 traces at most on average, so one byte leaves a lookup about
//! one wrong candidate in sixteen, each a frame decompressed, for a byte
//! less a trace (a fifth of the table). A lookup returns the rows of
//! every entry of its bucket with its fingerprint: candidates, which the
//! caller checks against the records.

use sextant_index::{get_uvarint, put_uvarint};

use crate::model::TraceId;

/// Traces a bucket holds on average, at most: a lookup decodes a bucket,
/// and the bucket table costs 4 bytes a bucket.
const PER_BUCKET: usize = 16;
/// Most bucket bits: 16M buckets, far beyond a block's traces.
const MAX_BITS: u8 = 24;
const HEAD_LEN: usize = 5;
/// Fingerprint bytes an entry, block version 10 on.
pub const FINGERPRINT_LEN: usize = 1;
/// Fingerprint bytes an entry, block versions 5 to 9.
pub const OLD_FINGERPRINT_LEN: usize = 2;

fn key(t: &TraceId) -> u32 {
    u32::from_le_bytes([t[0], t[1], t[2], t[3]])
}

/// The entries' order of a trace as one number: its key, then the id's
/// later bytes (the first four are the key's), so that the sort compares
/// integers, computed once an entry, where comparing `(key, id)` tuples
/// was a `memcmp` each: the sort was half of writing a trace table.
fn order(t: &TraceId) -> u128 {
    let mut b = [0u8; 16];
    // Little-endian: the key's bytes (the id's first four) most
    // significant, then the id's later bytes, first most significant.
    b[12..].copy_from_slice(&t[..4]);
    for (i, &x) in t[4..].iter().enumerate() {
        b[11 - i] = x;
    }
    u128::from_le_bytes(b)
}

/// The id whose [`order`] is `k`.
fn id_of(k: u128) -> TraceId {
    let b = k.to_le_bytes();
    let mut t = [0u8; 16];
    t[..4].copy_from_slice(&b[12..]);
    for (i, x) in t[4..].iter_mut().enumerate() {
        *x = b[11 - i];
    }
    t
}

/// The fingerprint of `t`, of which an entry holds the first `len`
/// bytes (1 or 2).
fn fingerprint(t: &TraceId, len: usize) -> &[u8] {
    &t[4..4 + len.clamp(1, 2)]
}

fn bucket(t: &TraceId, bits: u8) -> usize {
    if bits == 0 {
        0
    } else {
        (key(t) >> (32 - u32::from(bits))) as usize
    }
}

/// Appends the entries of `(trace, row)` pairs (any order; a pair given
/// twice is listed once) to `out`, with fingerprints of `fingerprint_len`
/// bytes (1 or 2), leaving the pairs sorted so that a trace's are
/// neighbours, each once.
pub fn encode(entries: &mut Vec<(TraceId, u32)>, fingerprint_len: usize, out: &mut Vec<u8>) {
    let mut keyed: Vec<(u128, u32)> = entries.iter().map(|(t, row)| (order(t), *row)).collect();
    keyed.sort_unstable();
    keyed.dedup();
    entries.truncate(keyed.len());
    for (e, &(k, row)) in entries.iter_mut().zip(&keyed) {
        *e = (id_of(k), row);
    }
    let traces = entries.windows(2).filter(|w| w[0].0 != w[1].0).count() + 1;
    let mut bits = 0u8;
    while bits < MAX_BITS && (1usize << bits) * PER_BUCKET < traces {
        bits += 1;
    }
    out.extend_from_slice(&(entries.len() as u32).to_le_bytes());
    out.push(bits);
    let ends_at = out.len();
    out.resize(ends_at + 4 * (1 << bits), 0);
    let start = out.len();
    let mut i = 0;
    let mut b = 0;
    while i < entries.len() {
        let t = entries[i].0;
        let n = entries[i..].iter().take_while(|(u, _)| *u == t).count();
        // Buckets before this trace's end where the entries so far end.
        let here = bucket(&t, bits);
        let end = (out.len() - start) as u32;
        while b < here {
            out[ends_at + 4 * b..ends_at + 4 * b + 4].copy_from_slice(&end.to_le_bytes());
            b += 1;
        }
        out.extend_from_slice(fingerprint(&t, fingerprint_len));
        let rows = &entries[i..i + n];
        put_uvarint(out, u64::from(rows[0].1) << 1 | u64::from(n > 1));
        if n > 1 {
            put_uvarint(out, (n - 1) as u64);
            for w in rows.windows(2) {
                put_uvarint(out, u64::from(w[1].1 - w[0].1));
            }
        }
        i += n;
    }
    let end = (out.len() - start) as u32;
    while b < 1 << bits {
        out[ends_at + 4 * b..ends_at + 4 * b + 4].copy_from_slice(&end.to_le_bytes());
        b += 1;
    }
}

/// The layout of an encoded body, checked.
#[derive(Debug, Clone, Copy)]
pub struct TraceRows {
    rows: u32,
    bits: u8,
    fingerprint_len: usize,
    /// Bytes of the body parsed.
    len: usize,
    /// Where the entries start, from the body's start.
    entries_at: usize,
}

impl TraceRows {
    /// Checks the header and bucket ends of `body`, whose entries have
    /// fingerprints of `fingerprint_len` bytes (1 or 2).
    pub fn parse(body: &[u8], fingerprint_len: usize) -> Result<Self, String> {
        let head = body.get(..HEAD_LEN).ok_or("trace rows truncated")?;
        let rows = u32::from_le_bytes([head[0], head[1], head[2], head[3]]);
        let bits = head[4];
        if bits > MAX_BITS {
            return Err(format!("trace rows: {bits} bucket bits"));
        }
        let entries_at = HEAD_LEN + 4 * (1usize << bits);
        let entries = body
            .get(entries_at..)
            .ok_or("trace rows: bucket table truncated")?;
        let t = TraceRows {
            rows,
            bits,
            fingerprint_len: fingerprint_len.clamp(1, 2),
            len: body.len(),
            entries_at,
        };
        let mut prev = 0;
        for b in 0..1usize << bits {
            let end = t.end(body, b);
            if end < prev || end > entries.len() {
                return Err(format!("trace rows: bucket {b} ends at {end}"));
            }
            prev = end;
        }
        if prev != entries.len() {
            return Err("trace rows: entries do not fill the body".into());
        }
        Ok(t)
    }

    /// Rows listed (every trace's, counted once a row).
    pub fn rows(&self) -> u32 {
        self.rows
    }

    fn end(&self, body: &[u8], b: usize) -> usize {
        let at = HEAD_LEN + 4 * b;
        u32::from_le_bytes([body[at], body[at + 1], body[at + 2], body[at + 3]]) as usize
    }

    /// The rows of the entries that may be `trace`'s, ascending; bad
    /// entries are an error. `body` is the one parsed.
    pub fn lookup(&self, body: &[u8], trace: &TraceId) -> Result<Vec<u32>, String> {
        if body.len() != self.len {
            return Err("trace rows: not the body parsed".into());
        }
        let b = bucket(trace, self.bits);
        let from = if b == 0 { 0 } else { self.end(body, b - 1) };
        let to = self.end(body, b);
        let entries = &body[self.entries_at..];
        let bucket = &entries[from..to];
        let bad = || "trace rows: damaged entry".to_string();
        let want = fingerprint(trace, self.fingerprint_len);
        let mut out = Vec::new();
        let mut at = 0;
        while at < bucket.len() {
            let fp = bucket.get(at..at + want.len()).ok_or_else(bad)?;
            at += want.len();
            let head = get_uvarint(bucket, &mut at).ok_or_else(bad)?;
            let first = head >> 1;
            let more = if head & 1 == 1 {
                match get_uvarint(bucket, &mut at).ok_or_else(bad)? {
                    0 => return Err(bad()),
                    n => n,
                }
            } else {
                0
            };
            // Every gap takes a byte at least.
            if more > (bucket.len() - at) as u64 {
                return Err(bad());
            }
            let take = fp == want;
            let mut row = first;
            for i in 0..=more {
                if i > 0 {
                    let gap = get_uvarint(bucket, &mut at).ok_or_else(bad)?;
                    if gap == 0 {
                        return Err(bad());
                    }
                    row = row.checked_add(gap).ok_or_else(bad)?;
                }
                if take {
                    out.push(u32::try_from(row).map_err(|_| bad())?);
                }
            }
        }
        out.sort_unstable();
        out.dedup();
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn built(entries: &[(TraceId, u32)]) -> (Vec<u8>, TraceRows) {
        built_with(entries, FINGERPRINT_LEN)
    }

    fn built_with(entries: &[(TraceId, u32)], fingerprint_len: usize) -> (Vec<u8>, TraceRows) {
        let mut e = entries.to_vec();
        let mut body = Vec::new();
        encode(&mut e, fingerprint_len, &mut body);
        let t = TraceRows::parse(&body, fingerprint_len).unwrap();
        (body, t)
    }

    /// Ids sharing their bucket and fingerprint bytes often.
    fn id() -> impl Strategy<Value = TraceId> {
        (0u8..4, 0u8..3, any::<u8>()).prop_map(|(k, f, tail)| {
            let mut t = [0u8; 16];
            t[..4].copy_from_slice(&[k * 60; 4]);
            t[4] = f;
            t[15] = tail;
            t
        })
    }

    proptest! {
        /// Every row of a trace is found, ascending, and every candidate
        /// belongs to a trace of the same bucket and fingerprint, of
        /// either width.
        #[test]
        fn every_row_is_found(
            pairs in prop::collection::btree_set((id(), 0u32..5000), 0..300),
            other in id(),
            fingerprint_len in prop_oneof![Just(FINGERPRINT_LEN), Just(OLD_FINGERPRINT_LEN)],
        ) {
            let entries: Vec<_> = pairs.into_iter().collect();
            let (body, t) = built_with(&entries, fingerprint_len);
            prop_assert_eq!(t.rows() as usize, entries.len());
            for probe in entries.iter().map(|(t, _)| *t).chain([other]) {
                let rows = t.lookup(&body, &probe).unwrap();
                prop_assert!(rows.windows(2).all(|w| w[0] < w[1]));
                for (u, r) in &entries {
                    if *u == probe {
                        prop_assert!(rows.contains(r));
                    }
                }
                let fp = 4..4 + fingerprint_len;
                let same = |u: &TraceId| bucket(u, t.bits) == bucket(&probe, t.bits) && u[fp.clone()] == probe[fp.clone()];
                for r in rows {
                    prop_assert!(entries.iter().any(|(u, q)| *q == r && same(u)));
                }
            }
        }

        /// A pair given twice is listed once: the same bytes.
        #[test]
        fn pairs_given_twice_are_listed_once(
            pairs in prop::collection::btree_set((id(), 0u32..50), 0..100),
        ) {
            let once: Vec<_> = pairs.into_iter().collect();
            let twice: Vec<_> = once.iter().chain(once.iter().rev()).copied().collect();
            prop_assert_eq!(built(&once).0, built(&twice).0);
        }

        /// The entries' order by one number is the order the format states
        /// (by key, then by id), and gives the id back.
        #[test]
        fn order_is_by_key_then_id(a in any::<TraceId>(), b in any::<TraceId>(), same in 0usize..=16) {
            let mut b = b;
            b[..same].copy_from_slice(&a[..same]);
            prop_assert_eq!(order(&a).cmp(&order(&b)), (key(&a), a).cmp(&(key(&b), b)));
            prop_assert_eq!(id_of(order(&a)), a);
        }

        /// Cut or altered bodies parse to an error or answer (rows or an
        /// error) without panicking.
        #[test]
        fn damaged_bodies_never_panic(
            pairs in prop::collection::btree_set((id(), any::<u32>()), 0..60),
            cut in any::<prop::sample::Index>(),
            flip in any::<prop::sample::Index>(),
            garbage in prop::collection::vec(any::<u8>(), 0..80),
        ) {
            let entries: Vec<_> = pairs.into_iter().collect();
            let (good, _) = built(&entries);
            let short = &good[..cut.index(good.len())];
            prop_assert!(TraceRows::parse(short, FINGERPRINT_LEN).is_err());
            let mut bad = good.clone();
            bad[flip.index(good.len())] ^= 0x41;
            for body in [&bad, &garbage] {
                for len in [FINGERPRINT_LEN, OLD_FINGERPRINT_LEN] {
                    if let Ok(t) = TraceRows::parse(body, len) {
                        for (id, _) in &entries {
                            let _ = t.lookup(body, id);
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn a_trace_of_many_near_rows_costs_a_few_bytes() {
        let entries: Vec<_> = (0..1000u32)
            .map(|i| {
                let mut t = [0u8; 16];
                t[..4].copy_from_slice(&(i / 8).wrapping_mul(0x9e37_79b9).to_le_bytes());
                t[4..6].copy_from_slice(&((i / 8) as u16).to_le_bytes());
                (t, i * 3)
            })
            .collect();
        let (body, t) = built(&entries);
        // 125 traces of 8 rows: well under the 8 bytes a row of version 4.
        assert!(body.len() < 1000 * 2, "{} bytes", body.len());
        assert_eq!(
            t.lookup(&body, &entries[17].0).unwrap(),
            (16..24).map(|i| i * 3).collect::<Vec<_>>()
        );
    }
}
