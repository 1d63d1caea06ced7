//! Native histograms: the notation, the checks, arithmetic and the values
//! PromQL reads out of them, against the figures Prometheus documents for
//! the same histograms, and invariants over random histograms.

use proptest::prelude::*;
use sextant_histogram::{
    CUSTOM_BUCKETS_SCHEMA, CounterReset, Histogram, Span, parse_notation, to_notation,
};

fn h(text: &str) -> Histogram {
    parse_notation(text).unwrap_or_else(|e| panic!("{text}: {e}"))
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

#[test]
fn the_notation_reads_every_field() {
    let x = h(
        "{{schema:1 count:9 sum:-3.5 z_bucket:2 z_bucket_w:0.001 offset:-1 buckets:[1 0 2] \
         n_offset:2 n_buckets:[3 1] counter_reset_hint:gauge}}",
    );
    assert_eq!(x.schema, 1);
    assert_eq!(
        (x.count, x.sum, x.zero_count, x.zero_threshold),
        (9.0, -3.5, 2.0, 0.001)
    );
    assert_eq!(x.positive, vec![(-1, 1.0), (0, 0.0), (1, 2.0)]);
    assert_eq!(x.negative, vec![(2, 3.0), (3, 1.0)]);
    assert_eq!(x.hint, CounterReset::Gauge);
    x.validate().unwrap();
    let c = h("{{schema:-53 count:3 sum:2 custom_values:[-2 3] buckets:[1 1 1]}}");
    assert_eq!(c.schema, CUSTOM_BUCKETS_SCHEMA);
    assert_eq!(c.custom_values, vec![-2.0, 3.0]);
    c.validate().unwrap();
    assert_eq!(h("{{}}"), Histogram::default());
    for bad in [
        "{{schema:x}}",
        "{{bogus:1}}",
        "{{buckets:[1 2}}",
        "{schema:0}",
        "{{counter_reset_hint:maybe}}",
    ] {
        assert!(parse_notation(bad).is_err(), "{bad}");
    }
}

#[test]
fn bad_histograms_are_refused_with_the_reason() {
    let cases = [
        ("{{schema:9}}", "schema 9 out of range"),
        ("{{schema:-5}}", "schema -5 out of range"),
        ("{{count:1 buckets:[1 -1]}}", "counts must be non-negative"),
        ("{{count:2 buckets:[1 2]}}", "count 2 is less than the 3"),
        ("{{schema:-53 custom_values:[3 2]}}", "ascending"),
        (
            "{{schema:-53 custom_values:[1] z_bucket:1 count:1}}",
            "no zero bucket",
        ),
        (
            "{{schema:0 custom_values:[1]}}",
            "custom bucket bounds given",
        ),
        ("{{z_bucket_w:-1}}", "zero threshold"),
    ];
    for (text, why) in cases {
        let e = h(text).validate_observed().unwrap_err().to_string();
        assert!(e.contains(why), "{text}: {e}");
    }
    // Overlapping spans (a later span going back) are refused.
    let spans = [
        Span {
            offset: 0,
            length: 2,
        },
        Span {
            offset: -1,
            length: 1,
        },
    ];
    let e = Histogram::buckets_from_spans(&spans, &[1.0, 1.0, 1.0]).unwrap_err();
    assert!(e.to_string().contains("overlap"), "{e}");
    assert!(Histogram::buckets_from_spans(&spans[..1], &[1.0]).is_err());
    assert!(Histogram::buckets_from_spans(&spans[..1], &[1.0; 3]).is_err());
}

/// The figures of Prometheus' own documentation and test comments.
#[test]
fn quantiles_and_fractions_match_prometheus_on_its_examples() {
    let single = h("{{schema:0 sum:5 count:4 buckets:[1 2 1]}}");
    assert!(close(single.quantile(0.5).0, std::f64::consts::SQRT_2));
    assert_eq!(single.fraction(1.0, 2.0).0, 0.5);
    assert_eq!(single.fraction(0.0, 8.0).0, 1.0);
    assert_eq!(single.mean(), 1.25);
    assert_eq!(single.quantile(-0.1).0, f64::NEG_INFINITY);
    assert_eq!(single.quantile(1.1).0, f64::INFINITY);
    assert!(single.quantile(f64::NAN).0.is_nan());
    assert!(h("{{}}").quantile(0.5).0.is_nan());
    assert!(h("{{}}").fraction(0.0, 1.0).0.is_nan());

    let negative = h("{{schema:0 sum:-5 count:4 n_buckets:[1 2 1]}}");
    assert!(close(negative.quantile(0.5).0, -std::f64::consts::SQRT_2));
    assert_eq!(negative.fraction(-2.0, -1.0).0, 0.5);

    // Only the zero bucket: spread evenly around zero.
    let zero = h("{{schema:0 z_bucket:1 z_bucket_w:0.5 sum:0.25 count:1}}");
    assert_eq!(zero.fraction(-0.5, 0.5).0, 1.0);
    assert_eq!(zero.quantile(0.5).0, 0.0);

    // Custom buckets interpolate linearly; the +Inf bucket answers its
    // lower bound.
    let custom = h("{{schema:-53 sum:10 count:4 custom_values:[1 2 4] buckets:[1 1 1 1]}}");
    assert!(close(custom.quantile(0.375).0, 1.5));
    assert_eq!(custom.quantile(0.99).0, 4.0);
    assert!(close(custom.fraction(1.0, 1.5).0, 0.125));
}

#[test]
fn adding_brings_both_to_the_coarser_schema_and_the_wider_zero_bucket() {
    // Prometheus' low_res_histogram: schema -1 plus schema 0.
    let mut a = h("{{schema:-1 sum:4 count:1 buckets:[1] offset:1}}");
    a.add(&h("{{schema:0 sum:4 count:4 buckets:[2 2] offset:1}}"))
        .unwrap();
    a.compact();
    assert_eq!(a, h("{{schema:-1 count:5 sum:8 offset:1 buckets:[5]}}"));
    assert_eq!(a.fraction(1.0, 4.0).0, 1.0);

    // A wider zero bucket swallows the other's buckets below it, and a
    // bucket straddling it widens it to that bucket's end.
    let mut z = h("{{schema:0 count:3 z_bucket:1 z_bucket_w:0.7 buckets:[1 1]}}");
    z.add(&h("{{schema:0 count:2 offset:-1 buckets:[1 1]}}"))
        .unwrap();
    assert_eq!(z.zero_threshold, 1.0);
    assert_eq!(z.zero_count, 4.0, "1 + both buckets up to 1, of each side");
    assert_eq!(z.count, 5.0);

    // Custom and exponential do not mix; different custom bounds keep
    // the bounds both have.
    let mut c = h("{{schema:-53 count:3 custom_values:[1 2] buckets:[1 1 1]}}");
    assert!(c.clone().add(&h("{{count:1 buckets:[1]}}")).is_err());
    let n = c
        .add(&h(
            "{{schema:-53 count:3 custom_values:[2 5] buckets:[1 1 1]}}",
        ))
        .unwrap();
    assert!(n.bounds_reconciled);
    assert_eq!(c.custom_values, vec![2.0]);
    assert_eq!(c.positive, vec![(0, 3.0), (1, 3.0)]);

    let mut r = h("{{count:1 buckets:[1] counter_reset_hint:reset}}");
    let n = r
        .add(&h("{{count:1 buckets:[1] counter_reset_hint:not_reset}}"))
        .unwrap();
    assert!(n.hint_collision);
}

#[test]
fn counter_resets_are_detected_from_the_counts_and_the_hints() {
    let prev = h("{{schema:1 count:10 sum:10 z_bucket:1 z_bucket_w:0.001 buckets:[4 5]}}");
    let grown = h("{{schema:1 count:12 sum:12 z_bucket:1 z_bucket_w:0.001 buckets:[5 6]}}");
    assert!(!grown.is_reset_after(&prev));
    // Coarser now: compared at the coarser schema.
    let coarser = h("{{schema:0 count:12 sum:12 z_bucket:1 z_bucket_w:0.001 buckets:[5 6]}}");
    assert!(!coarser.is_reset_after(&prev));
    for reset in [
        "{{schema:1 count:9 sum:9 z_bucket:1 z_bucket_w:0.001 buckets:[4 4]}}",
        "{{schema:1 count:12 sum:12 z_bucket:1 z_bucket_w:0.001 buckets:[3 8]}}",
        "{{schema:2 count:12 sum:12 z_bucket:1 z_bucket_w:0.001 buckets:[5 6]}}",
        "{{schema:1 count:12 sum:12 z_bucket:0 z_bucket_w:0.001 buckets:[6 6]}}",
        "{{schema:1 count:12 sum:12 z_bucket:1 buckets:[5 6]}}",
    ] {
        assert!(h(reset).is_reset_after(&prev), "{reset}");
    }
    let mut hinted = grown.clone();
    hinted.hint = CounterReset::Reset;
    assert!(hinted.is_reset_after(&prev));
}

/// A random valid exponential histogram.
fn histogram() -> impl Strategy<Value = Histogram> {
    (
        -4i32..=8,
        prop::collection::btree_map(-40i32..40, 0u32..1000, 0..12),
        prop::collection::btree_map(-40i32..40, 0u32..1000, 0..6),
        0u32..50,
        prop::sample::select(vec![0.0, 1e-128, 0.001]),
        -1e6f64..1e6,
    )
        .prop_map(|(schema, pos, neg, zero, zt, sum)| {
            // Clients never send buckets inside the zero bucket.
            let above_zero = |i: i32| {
                let probe = Histogram {
                    schema,
                    ..Histogram::default()
                };
                probe.positive_bounds(i).0 >= zt
            };
            let positive: Vec<(i32, f64)> = pos
                .into_iter()
                .filter(|(i, _)| above_zero(*i))
                .map(|(i, c)| (i, f64::from(c)))
                .collect();
            let negative: Vec<(i32, f64)> = neg
                .into_iter()
                .filter(|(i, _)| above_zero(*i))
                .map(|(i, c)| (i, f64::from(c)))
                .collect();
            let zero_count = f64::from(zero);
            let count = zero_count + positive.iter().chain(&negative).map(|b| b.1).sum::<f64>();
            Histogram {
                schema,
                zero_threshold: zt,
                zero_count,
                count,
                sum,
                positive,
                negative,
                ..Histogram::default()
            }
        })
}

fn compacted(mut h: Histogram) -> Histogram {
    h.compact();
    h
}

proptest! {
    #[test]
    fn the_notation_round_trips(x in histogram()) {
        x.validate().unwrap();
        let back = parse_notation(&to_notation(&x)).unwrap();
        prop_assert_eq!(compacted(back), compacted(x));
    }

    #[test]
    fn spans_round_trip(x in histogram()) {
        let (spans, counts) = Histogram::spans(&x.positive);
        prop_assert_eq!(Histogram::buckets_from_spans(&spans, &counts).unwrap(), x.positive);
    }

    #[test]
    fn lowering_the_resolution_keeps_every_observation(x in histogram(), to in -4i32..=8) {
        let mut y = x.clone();
        y.reduce_resolution(to);
        prop_assert_eq!(y.schema, to.min(x.schema));
        let total = |h: &Histogram| h.positive.iter().chain(&h.negative).map(|b| b.1).sum::<f64>();
        prop_assert_eq!(total(&y), total(&x));
        y.validate().unwrap();
        // Every observation stays in a bucket that contains its old one.
        if x.count > 0.0 {
            prop_assert!((y.fraction(f64::NEG_INFINITY, f64::INFINITY).0 - 1.0).abs() < 1e-9);
        }
    }

    #[test]
    fn adding_then_subtracting_gives_the_histogram_back(a in histogram(), b in histogram()) {
        let mut b = b;
        b.schema = a.schema;
        b.zero_threshold = a.zero_threshold;
        let mut sum = a.clone();
        sum.add(&b).unwrap();
        prop_assert!(close(sum.count, a.count + b.count));
        sum.validate().unwrap();
        sum.sub(&b).unwrap();
        prop_assert!(close(sum.count, a.count));
        prop_assert!(close(sum.zero_count, a.zero_count));
        let get = |v: &[(i32, f64)], i: i32| v.iter().find(|x| x.0 == i).map_or(0.0, |x| x.1);
        for &(i, c) in &a.positive {
            prop_assert!(close(get(&sum.positive, i), c));
        }
    }

    #[test]
    fn quantiles_rise_with_phi_and_fractions_invert_them(x in histogram(), p in 0.0f64..=1.0, q in 0.0f64..=1.0) {
        // A zero bucket of width 0 holds exact zeros: no fraction below a
        // quantile of 0 can tell them apart, so none here.
        let mut x = x;
        if x.zero_threshold == 0.0 {
            x.count -= x.zero_count;
            x.zero_count = 0.0;
        }
        prop_assume!(x.count > 0.0);
        let (lo, hi) = (p.min(q), p.max(q));
        let (a, b) = (x.quantile(lo).0, x.quantile(hi).0);
        prop_assert!(a <= b * (1.0 + 1e-9) + 1e-12 || (a - b).abs() < 1e-9, "q({lo})={a} > q({hi})={b}");
        prop_assert!((x.fraction(f64::NEG_INFINITY, f64::INFINITY).0 - 1.0).abs() < 1e-9);
        let f = x.fraction(f64::NEG_INFINITY, x.quantile(hi).0).0;
        // Inside a bucket the inverse is exact; at a bucket's edge the
        // quantile may sit anywhere in an empty stretch.
        prop_assert!(f >= hi - 1e-6 || x.quantile(f).0 == x.quantile(hi).0 || f.is_nan(), "fraction {f} below {hi}");
    }

    #[test]
    fn a_counter_that_only_grows_is_never_reset(x in histogram(), more in histogram()) {
        let mut grown = x.clone();
        let mut more = more;
        more.schema = x.schema;
        more.zero_threshold = x.zero_threshold;
        grown.add(&more).unwrap();
        prop_assert!(!grown.is_reset_after(&x));
    }
}

/// `h </ x` and `h >/ x` split the observations between them, the bucket
/// holding `x` shared on the log scale; trimming at ±Inf keeps or drops all.
#[test]
fn trims_split_the_observations() {
    let orig =
        h("{{schema:0 sum:20 count:8 z_bucket:2 z_bucket_w:0.001 buckets:[1 2 1] n_buckets:[2]}}");
    for at in [-3.0, -0.0005, 0.0, 0.7, 1.0, 1.5, 3.0, 100.0] {
        let (mut lo, mut hi) = (orig.clone(), orig.clone());
        lo.trim(at, true);
        hi.trim(at, false);
        assert!((lo.count + hi.count - orig.count).abs() < 1e-9, "at {at}");
    }
    // Inside (1, 2]: half of its 2 observations on the log scale at √2.
    let mut lo = orig.clone();
    lo.trim(std::f64::consts::SQRT_2, true);
    assert!((lo.count - 6.0).abs() < 1e-9, "{lo:?}");
    let mut all = orig.clone();
    all.trim(f64::INFINITY, true);
    assert_eq!(all, orig);
    let mut none = orig.clone();
    none.trim(f64::NEG_INFINITY, true);
    assert_eq!(none.count, 0.0);
}

/// Bucket bounds are the floats nearest to `2^(i/2^s)` on every platform
/// (libm's `exp2` is not promised to be). Prometheus reads its bounds from
/// a table some of whose entries are one unit in the last place lower
/// (`0.8408964152537144` for 2^-0.25, whose nearest float prints as
/// `…145`): its JSON can differ from Sextant's in the last digit.
#[test]
fn bucket_bounds_are_correctly_rounded() {
    use sextant_histogram::upper_bound;
    assert_eq!(upper_bound(-1, 2).to_string(), "0.8408964152537145");
    assert_eq!(upper_bound(-2, 2).to_string(), "0.7071067811865476");
    assert_eq!(upper_bound(3, 2).to_string(), "1.681792830507429");
    assert_eq!(upper_bound(1, 8).to_string(), "1.0027112750502025");
    for s in 1..=8 {
        for i in -600..600 {
            let b = upper_bound(i, s);
            // Each bound sits within half a unit in the last place of the
            // exact value: its log2 is the index over 2^s to 1e-15.
            assert!((b.log2() - f64::from(i) / f64::from(1 << s)).abs() < 1e-14);
            assert!(b < upper_bound(i + 1, s));
        }
    }
}
