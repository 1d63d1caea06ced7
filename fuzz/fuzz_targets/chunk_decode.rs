//! Chunk decoders on arbitrary bytes: never panic, never allocate beyond
//! the input, whatever decodes re-encodes to the same samples, and a
//! window is the filtered whole.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sextant_storage::codec::{chunk, gorilla};

fuzz_target!(|data: &[u8]| {
    if let Ok(samples) = chunk::decode(data) {
        let mut again = Vec::new();
        chunk::encode(&samples, &mut again);
        let round = chunk::decode(&again).expect("re-encoded chunk decodes");
        assert!(round == samples, "re-encoding changed the samples");
        // A window is the whole chunk filtered, for windows cut at its samples.
        let mid = samples[samples.len() / 2].t;
        for (a, b) in [(i64::MIN, mid), (mid, i64::MAX), (mid, mid)] {
            let mut w = Vec::new();
            chunk::decode_range(data, a, b, &mut w).expect("a window of a valid chunk decodes");
            let want: Vec<_> = samples.iter().copied().filter(|s| s.t >= a && s.t <= b).collect();
            assert!(w == want, "window differs from the filtered chunk");
        }
    }
    if let Some((&n, rest)) = data.split_first() {
        if let Some(samples) = gorilla::decode(rest, u32::from(n) * 4) {
            let mut e = gorilla::Encoder::default();
            for s in &samples {
                e.append(*s);
            }
            assert!(gorilla::decode(e.bytes(), e.count()).as_deref() == Some(&samples[..]));
        }
    }
});
