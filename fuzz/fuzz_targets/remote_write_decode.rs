//! The remote_write request decoder (snappy with its size guard, then the
//! borrowing protobuf walk and the label checks) on arbitrary bytes: never
//! panics, never allocates beyond the decompression cap, and a second
//! decode of the same request, served from the warm label cache, gives
//! exactly the same series.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sextant_server::remote_write::{LabelCache, decode};

/// A tight cap: a "bomb" must be refused before it allocates.
const MAX: usize = 1 << 20;

fuzz_target!(|data: &[u8]| {
    let cache = LabelCache::new(64);
    // As sent: mostly exercises the snappy layer.
    let _ = decode(data, MAX, &cache);
    // Compressed, so the protobuf walk sees the fuzzer's bytes.
    let Ok(body) = snap::raw::Encoder::new().compress_vec(data) else {
        return;
    };
    let first = decode(&body, MAX, &cache);
    let second = decode(&body, MAX, &cache);
    match (first, second) {
        (Ok(a), Ok(b)) => {
            // Debug output compares doubles bit for bit (NaN included).
            assert_eq!(format!("{:?}", a.batch), format!("{:?}", b.batch));
        }
        (Err(a), Err(b)) => assert_eq!(a.message, b.message),
        (a, b) => panic!(
            "cache changed the outcome: {:?} vs {:?}",
            a.err().map(|e| e.message),
            b.err().map(|e| e.message)
        ),
    }
});
