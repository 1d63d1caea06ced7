//! The query parser (PromQL and the log/span extensions) on arbitrary
//! text: never panics, and whatever parses prints to text that parses back
//! to the same tree. Run with `-dict=fuzz/dict/query.dict` so the fuzzer
//! reaches the extensions' tokens.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(expr) = sextant_query::parse(text) {
        let printed = expr.to_string();
        let again = sextant_query::parse(&printed).unwrap_or_else(|e| panic!("{text:?} printed as {printed:?} does not parse: {e}"));
        // NaN literals are never equal to themselves; compare the text then.
        if again != expr {
            assert_eq!(again.to_string(), printed, "{text:?} printed as {printed:?} parses differently");
        }
    }
});
