//! Log record frame decoding (WAL record 4, block `logs` files)
//! on arbitrary bytes: never panic, never allocate beyond the input, and
//! whatever decodes re-encodes to a frame that decodes to the same rows.
//! A block frame is also decoded with the templates its file shares, read
//! from the bytes before it (the first byte says how many), in full and
//! with a search's body test (rows it turns away are stepped over past
//! their body): the rows that pass decode as in full. The text query
//! parser and tokenizer run on the same bytes.
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;
use sextant_storage::codec::records::{Pick, SharedTemplates, decode_frame_rows};
use sextant_storage::{AnyValue, LogRecord, TextQuery};

fuzz_target!(|data: &[u8]| {
    common::round_trip::<LogRecord>(data);
    if let Some((&n, rest)) = data.split_first() {
        let (shared, frame) = rest.split_at(usize::from(n).min(rest.len()));
        if let Ok(shared) = SharedTemplates::read(shared) {
            let full = decode_frame_rows::<LogRecord>(frame, Pick::default(), &shared);
            let odd = |i: usize, _: &AnyValue| i % 2 == 1;
            let pick = Pick {
                body: Some(&odd),
                ..Pick::default()
            };
            let tested = decode_frame_rows::<LogRecord>(frame, pick, &shared);
            if let (Ok(full), Ok(tested)) = (&full, &tested) {
                assert_eq!(full.len(), tested.len());
                for (i, (a, b)) in full.iter().zip(tested).enumerate() {
                    // Debug output compares doubles bit for bit (NaN included).
                    let (a, b) = match i % 2 {
                        1 => (format!("{a:?}"), format!("{b:?}")),
                        _ => (format!("{:?}", a.body), format!("{:?}", b.body)),
                    };
                    assert_eq!(a, b, "row {i}");
                }
            }
        }
    }
    if let Ok(s) = std::str::from_utf8(data) {
        if let Ok(q) = TextQuery::parse(s) {
            q.matches(s);
        }
    }
});
