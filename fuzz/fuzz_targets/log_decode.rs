//! Log record frame decoding (WAL record 4, block `logs` files)
//! on arbitrary bytes: never panic, never allocate beyond the input, and
//! whatever decodes re-encodes to a frame that decodes to the same rows.
//! The text query parser and tokenizer run on the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sextant_storage::codec::records::{Columnar, decode_frame, encode_frame};
use sextant_storage::{LogRecord, TextQuery};

fn round_trip<T: Columnar + std::fmt::Debug>(data: &[u8]) {
    if let Ok(rows) = decode_frame::<T>(data) {
        let mut again = Vec::new();
        encode_frame(&rows, &mut again);
        let back = decode_frame::<T>(&again).expect("re-encoded frame decodes");
        // Debug output compares doubles bit for bit (NaN included).
        assert_eq!(format!("{rows:?}"), format!("{back:?}"));
    }
}

fuzz_target!(|data: &[u8]| {
    round_trip::<LogRecord>(data);
    if let Ok(s) = std::str::from_utf8(data) {
        if let Ok(q) = TextQuery::parse(s) {
            q.matches(s);
        }
    }
});
