//! The log template miner: masking of variable values, and grouping of
//! lines into templates.

use proptest::prelude::*;
use sextant_diagnose::templates::{Miner, MinerConfig, WILDCARD, mask};

#[test]
fn masking_keeps_words_units_and_keys() {
    for (line, want) in [
        (
            "connection pool exhausted (max=50) waiting 380ms",
            "connection pool exhausted (max=<*>) waiting <*>ms",
        ),
        (
            "GET /orders/12345/items took 12.5s",
            "GET /orders/<*>/items took <*>s",
        ),
        (
            "dial tcp 10.0.3.17:5432: connection refused",
            "dial tcp <*>: connection refused",
        ),
        ("upstream [2001:db8::1]:443 reset", "upstream <*> reset"),
        (
            "call https://api.stripe.com/v1/charges failed",
            "call <*> failed",
        ),
        ("mail to ops@example.com bounced", "mail to <*> bounced"),
        ("ledger-db.internal:5432 timed out", "<*> timed out"),
        (
            "order 9f1c2d3e-aaaa-4bbb-8ccc-0123456789ab rejected: user 'alice smith' over limit",
            "order <*> rejected: user '<*>' over limit",
        ),
        (
            "key \"session:abc\" missing, can't refresh",
            "key \"<*>\" missing, can't refresh",
        ),
        (
            "cpu at 97% on node-7, http2 p99 ok, v2 api",
            "cpu at <*>% on <*>, http2 p99 ok, v2 api",
        ),
        (
            "retry -3 of 1e6 after 0x1f3a9b",
            "retry -<*> of <*> after <*>",
        ),
        (
            "trace_id=4bf92f3577b34da6a3ce929d0e0e4736 span=00f067aa0ba902b7",
            "trace_id=<*> span=<*>",
        ),
    ] {
        assert_eq!(mask(line), want, "{line}");
    }
}

#[test]
fn variants_of_one_message_share_a_template() {
    let mut m = Miner::new(MinerConfig::default());
    let a = m
        .add("connection pool exhausted (max=50) waiting 380ms")
        .unwrap();
    let b = m
        .add("connection pool exhausted (max=20) waiting 1200ms")
        .unwrap();
    let c = m.add("payment 77 declined by issuer acme").unwrap();
    let d = m.add("payment 78 declined by issuer globex").unwrap();
    let e = m.add("payment 79 declined by issuer initech").unwrap();
    assert_eq!(a, b);
    assert_eq!(c, d);
    assert_eq!(d, e);
    assert_ne!(a, c);
    assert_eq!(
        m.template(a),
        "connection pool exhausted (max=<*>) waiting <*>ms"
    );
    assert_eq!(m.template(c), "payment <*> declined by issuer <*>");
    assert_eq!(m.lines(c), 3);
    // Different messages of the same length and first word stay apart.
    let f = m
        .add("payment service unavailable: circuit open now")
        .unwrap();
    assert_ne!(f, c);
    // A different length is a different message.
    let g = m.add("connection pool exhausted").unwrap();
    assert_ne!(g, a);
    assert_eq!(m.len(), 4);
    // Lookup finds without learning; an unknown message is not found.
    assert_eq!(m.lookup("payment 80 declined by issuer umbrella"), Some(c));
    assert_eq!(m.lookup("disk full on /var"), None);
    assert_eq!(m.lines(c), 3);
}

#[test]
fn the_template_limit_bounds_memory() {
    let mut m = Miner::new(MinerConfig {
        max_templates: 3,
        ..MinerConfig::default()
    });
    for w in ["alpha", "beta", "gamma", "delta", "epsilon"] {
        m.add(&format!("{w} one two three four five"));
    }
    assert_eq!(m.len(), 3);
    // Past the limit a line of a known shape joins its closest template.
    assert!(
        m.add("zeta one two three four five").is_none(),
        "new first word: no group"
    );
    assert!(m.add("alpha one two three four six").is_some());
    assert_eq!(m.len(), 3);
}

proptest! {
    #[test]
    fn every_line_fits_its_template(lines in proptest::collection::vec("[ -~]{0,60}", 1..40)) {
        let mut m = Miner::new(MinerConfig::default());
        for line in &lines {
            let id = m.add(line).unwrap();
            prop_assert_eq!(m.lookup(line), Some(id));
            let masked = mask(line);
            let template = m.template(id);
            let t: Vec<&str> = template.split_whitespace().collect();
            let l: Vec<&str> = masked.split_whitespace().collect();
            prop_assert_eq!(t.len(), l.len());
            for (a, b) in t.iter().zip(&l) {
                prop_assert!(*a == WILDCARD || a == b, "{} vs {}", template, masked);
            }
        }
    }

    #[test]
    fn masking_is_idempotent(line in "\\PC{0,80}") {
        let once = mask(&line);
        prop_assert_eq!(mask(&once), once.clone());
    }
}
