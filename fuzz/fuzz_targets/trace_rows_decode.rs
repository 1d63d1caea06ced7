//! A block trace table's entries (`logs.traces`, `spans.traces`, version
//! 5 on, fingerprints of either width): arbitrary bytes parse to an error
//! or answer lookups without panicking; a table built from pairs taken
//! out of the input finds every row of every trace, ascending.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sextant_storage::codec::trace_rows::{self, TraceRows};

fuzz_target!(|data: &[u8]| {
    let ids: Vec<[u8; 16]> = data
        .chunks(16)
        .map(|c| {
            let mut t = [0u8; 16];
            t[..c.len()].copy_from_slice(c);
            t
        })
        .collect();
    for len in [trace_rows::FINGERPRINT_LEN, trace_rows::OLD_FINGERPRINT_LEN] {
        if let Ok(t) = TraceRows::parse(data, len) {
            for id in ids.iter().take(8) {
                let _ = t.lookup(data, id);
            }
        }
    }
    // Pairs: 6 bytes of id (the rest zero) and a row, from the input.
    let mut pairs: Vec<([u8; 16], u32)> = data
        .chunks_exact(8)
        .map(|c| {
            let mut t = [0u8; 16];
            t[..6].copy_from_slice(&c[..6]);
            (t, u32::from(u16::from_le_bytes([c[6], c[7]])))
        })
        .collect();
    pairs.sort_unstable();
    pairs.dedup();
    for len in [trace_rows::FINGERPRINT_LEN, trace_rows::OLD_FINGERPRINT_LEN] {
        let mut body = Vec::new();
        trace_rows::encode(&mut pairs.clone(), len, &mut body);
        let t = TraceRows::parse(&body, len).expect("a written table parses");
        assert_eq!(t.rows() as usize, pairs.len());
        for (id, row) in &pairs {
            let rows = t.lookup(&body, id).expect("a written table answers");
            assert!(rows.contains(row), "row {row} of {id:?} missed");
            assert!(rows.windows(2).all(|w| w[0] < w[1]), "rows out of order");
        }
    }
});
