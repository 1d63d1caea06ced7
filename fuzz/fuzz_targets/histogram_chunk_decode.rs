//! The native-histogram chunk decoder on arbitrary bytes: never panics,
//! never allocates beyond the input, and what decodes re-encodes to the
//! same samples.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sextant_storage::codec::histogram::{decode, encode};

fuzz_target!(|data: &[u8]| {
    if let Ok(samples) = decode(data) {
        let mut again = Vec::new();
        encode(&samples, &mut again);
        let round = decode(&again).expect("a re-encoded chunk decodes");
        assert!(
            format!("{round:?}") == format!("{samples:?}"),
            "re-encoding changed the samples"
        );
    }
});
