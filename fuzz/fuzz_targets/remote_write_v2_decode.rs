//! The remote_write 2.0 decoder on arbitrary bytes: the snappy layer with
//! its size guard, then the protobuf and the conversion (symbol table,
//! label pairs, histograms, start times). Never panics; what it accepts
//! is a batch of valid series and histograms, one series per time series,
//! and decoding the re-encoded request gives the same batch.
#![no_main]

use libfuzzer_sys::fuzz_target;
use prost::Message;
use sextant_server::remote_write::v2::{Request, convert, decode};

const MAX: usize = 1 << 20;

fuzz_target!(|data: &[u8]| {
    let _ = decode(data, MAX);
    let Ok(req) = Request::decode(data) else {
        return;
    };
    let Ok(d) = convert(&req) else {
        return;
    };
    assert_eq!(d.batch.series.len(), req.timeseries.len());
    for s in &d.batch.series {
        assert!(s.labels.metric_name().is_some());
        for h in &s.histograms {
            h.h.validate().expect("an accepted histogram is valid");
        }
    }
    let again = Request::decode(req.encode_to_vec().as_slice()).expect("re-encoded request");
    let d2 = convert(&again).expect("the re-encoded request converts");
    assert_eq!(format!("{:?}", d.batch), format!("{:?}", d2.batch));
});
