//! Log record frame decoding (WAL record 4, block `logs` files)
//! on arbitrary bytes: never panic, never allocate beyond the input, and
//! whatever decodes re-encodes to a frame that decodes to the same rows.
//! The text query parser and tokenizer run on the same bytes.
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;
use sextant_storage::{LogRecord, TextQuery};

fuzz_target!(|data: &[u8]| {
    common::round_trip::<LogRecord>(data);
    if let Ok(s) = std::str::from_utf8(data) {
        if let Ok(q) = TextQuery::parse(s) {
            q.matches(s);
        }
    }
});
