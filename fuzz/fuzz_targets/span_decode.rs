//! Span frame decoding (WAL record 5, block `spans` files)
//! on arbitrary bytes: never panic, never allocate beyond the input, and
//! whatever decodes re-encodes to a frame that decodes to the same rows.
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;
use sextant_storage::Span;

fuzz_target!(|data: &[u8]| common::round_trip::<Span>(data));
