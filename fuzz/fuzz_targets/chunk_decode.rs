//! Chunk decoders on arbitrary bytes: never panic, never allocate beyond
//! the input, and whatever decodes re-encodes to the same samples.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sextant_storage::codec::{chunk, gorilla};

fuzz_target!(|data: &[u8]| {
    if let Ok(samples) = chunk::decode(data) {
        let mut again = Vec::new();
        chunk::encode(&samples, &mut again);
        let round = chunk::decode(&again).expect("re-encoded chunk decodes");
        assert!(round == samples, "re-encoding changed the samples");
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
