//! The strict OTLP/JSON decoder on arbitrary bytes, for each of the three
//! signals: never panics, and what it accepts converts into Sextant's
//! model (or is refused there with an error), never a panic either.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sextant_server::otlp::{json, logs, traces};

fuzz_target!(|data: &[u8]| {
    if let Ok(req) = json::traces(data) {
        let _ = traces::convert(&req);
    }
    if let Ok(req) = json::logs(data) {
        let _ = logs::convert(&req);
    }
    let _ = json::metrics(data);
});
