//! The histogram test notation on arbitrary text: never panics; what
//! parses and validates prints back to the same histogram, and what
//! PromQL reads out of it (quantiles, fractions) never panics either.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sextant_histogram::{parse_notation, to_notation};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(mut h) = parse_notation(text) else {
        return;
    };
    if h.validate().is_err() || h.positive.len() + h.negative.len() > 10_000 {
        return;
    }
    let _ = h.quantile(0.5);
    let _ = h.fraction(-1.0, 1.0);
    let _ = h.variance();
    let mut again = parse_notation(&to_notation(&h)).expect("printed notation parses");
    h.compact();
    again.compact();
    // Equal, or equal but for NaNs (which are never equal to themselves).
    let same = h == again || format!("{h:?}") == format!("{again:?}");
    assert!(same, "notation round trip changed {h:?} into {again:?}");
});
