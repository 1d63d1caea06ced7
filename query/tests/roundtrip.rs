//! The printer and the parser agree: `parse(print(ast)) == ast` for
//! generated well-typed trees of PromQL and of the signal extensions (with the parentheses that precedence needs,
//! as parsing keeps them).

use proptest::prelude::*;
use sextant_query::ast::{AggOp, At, BinOp, Expr, Side, VectorMatching, VectorSelector};
use sextant_query::parse;
use sextant_query::records::{
    DurationCmp, LineFilter, LogSelector, RecordSelector, Relation, SpanCond, SpanSelector,
};
use sextant_storage::{MatchOp, Matcher};

fn selector() -> impl Strategy<Value = VectorSelector> {
    let name = prop::option::of(prop::sample::select(vec![
        "up",
        "http_requests_total",
        "a:b_c",
    ]));
    let matcher = (
        prop::sample::select(vec!["job", "instance", "le", "dotted.name", "with space"]),
        prop::sample::select(vec![
            MatchOp::Equal,
            MatchOp::NotEqual,
            MatchOp::Regex,
            MatchOp::NotRegex,
        ]),
        prop::sample::select(vec![
            "a",
            "x.*",
            "a|b",
            "quote\"back\\slash",
            "tab\tnl\n",
            "ünï",
        ]),
    )
        .prop_map(|(n, op, v)| Matcher::new(op, n, v).unwrap());
    let at = prop::option::of(prop_oneof![
        (-5000i64..5000).prop_map(|s| At::Time(s * 1000)),
        Just(At::Start),
        Just(At::End)
    ]);
    (name, prop::collection::vec(matcher, 0..3), -3i64..3, at).prop_map(|(name, rest, off, at)| {
        let mut matchers: Vec<Matcher> = name
            .iter()
            .map(|n| Matcher::equal("__name__", *n))
            .collect();
        if name.is_none() {
            matchers.push(Matcher::equal("job", "api"));
        }
        matchers.extend(rest);
        VectorSelector {
            name: name.map(str::to_string),
            matchers,
            offset: off * 90_000,
            at,
            edges: sextant_query::ast::Edges::Plain,
        }
    })
}

fn field_matcher() -> impl Strategy<Value = Matcher> {
    (
        prop::sample::select(vec!["service", "level", "http.route", "with space", "name"]),
        prop::sample::select(vec![
            MatchOp::Equal,
            MatchOp::NotEqual,
            MatchOp::Regex,
            MatchOp::NotRegex,
        ]),
        prop::sample::select(vec!["checkout", "err.*", "", "q\"uote"]),
    )
        .prop_map(|(n, op, v)| Matcher::new(op, n, v).unwrap())
}

fn by_clause() -> impl Strategy<Value = Vec<String>> {
    prop::collection::vec(
        prop::sample::select(vec!["http.route".to_string(), "route".to_string()]),
        0..2,
    )
}

fn log_selector() -> impl Strategy<Value = LogSelector> {
    let filter = (
        0u8..4,
        prop::sample::select(vec!["timeout", "a\"b", "5\\d+", "ünï"]),
    )
        .prop_map(|(k, t)| {
            let t = t.to_string();
            match k {
                0 => LineFilter::Contains(t),
                1 => LineFilter::NotContains(t),
                2 => LineFilter::Regex(t),
                _ => LineFilter::NotRegex(t),
            }
        });
    (
        prop::collection::vec(field_matcher(), 0..3),
        prop::collection::vec(filter, 0..3),
        by_clause(),
    )
        .prop_map(|(matchers, filters, by)| LogSelector {
            matchers,
            filters,
            by,
        })
}

fn span_cond() -> impl Strategy<Value = SpanCond> {
    let cmp = prop::sample::select(vec![
        DurationCmp::Gtr,
        DurationCmp::Gte,
        DurationCmp::Lss,
        DurationCmp::Lte,
    ]);
    (
        prop::collection::vec(field_matcher(), 0..3),
        prop::collection::vec((cmp, 1i64..5000), 0..2),
    )
        .prop_map(|(matchers, durations)| SpanCond {
            matchers,
            durations,
        })
}

fn span_selector() -> impl Strategy<Value = SpanSelector> {
    let rel = prop::sample::select(vec![
        Relation::Child,
        Relation::Descendant,
        Relation::Parent,
        Relation::Ancestor,
    ]);
    (
        span_cond(),
        prop::collection::vec((rel, span_cond()), 0..3),
        by_clause(),
    )
        .prop_map(|(first, steps, by)| SpanSelector { first, steps, by })
}

fn signal(logs: bool, range: Option<i64>) -> BoxedStrategy<Expr> {
    let sig = if logs {
        log_selector().prop_map(RecordSelector::Logs).boxed()
    } else {
        span_selector().prop_map(RecordSelector::Spans).boxed()
    };
    sig.prop_map(move |s| Expr::Records {
        selector: Box::new(s),
        range,
    })
    .boxed()
}

/// Expressions whose value is records: selectors, joins, rankings.
fn record_expr() -> impl Strategy<Value = Expr> {
    let leaf = prop_oneof![
        signal(true, None),
        signal(false, None),
        (1i64..60).prop_flat_map(|m| signal(false, Some(m * 60_000))),
    ];
    leaf.prop_recursive(3, 12, 2, |inner| {
        prop_oneof![
            (
                prop::sample::select(vec![BinOp::And, BinOp::Unless]),
                inner.clone(),
                inner.clone(),
                prop::sample::select(vec!["trace_id", "span_id"])
            )
                .prop_map(|(op, l, r, key)| binary(
                    op,
                    l,
                    r,
                    false,
                    Some(VectorMatching {
                        on: true,
                        labels: vec![key.into()],
                        ..VectorMatching::default()
                    })
                )),
            (1u32..9, inner.clone()).prop_map(|(k, e)| Expr::Aggregate {
                op: AggOp::Limitk,
                expr: Box::new(e),
                param: Some(Box::new(Expr::Number(f64::from(k)))),
                grouping: vec![],
                without: false
            }),
            inner.prop_map(paren),
        ]
    })
}

fn paren(e: Expr) -> Expr {
    Expr::Paren(Box::new(e))
}

/// A binary node, parenthesising operands as the printed text needs.
fn binary(
    op: BinOp,
    lhs: Expr,
    rhs: Expr,
    bool_mode: bool,
    matching: Option<VectorMatching>,
) -> Expr {
    let prec = |e: &Expr| match e {
        Expr::Binary { op, .. } => Some(op.precedence()),
        _ => None,
    };
    let p = op.precedence();
    let lhs = match prec(&lhs) {
        Some(lp) if lp < p || (lp == p && op == BinOp::Pow) => paren(lhs),
        None if op == BinOp::Pow && matches!(lhs, Expr::Neg(_)) => paren(lhs),
        None if op == BinOp::Pow && matches!(lhs, Expr::Number(v) if v.is_sign_negative()) => {
            paren(lhs)
        }
        _ => lhs,
    };
    let rhs = match prec(&rhs) {
        Some(rp) if rp < p || (rp == p && op != BinOp::Pow) => paren(rhs),
        _ => rhs,
    };
    Expr::Binary {
        op,
        lhs: Box::new(lhs),
        rhs: Box::new(rhs),
        bool_mode,
        matching,
    }
}

fn matching() -> impl Strategy<Value = Option<VectorMatching>> {
    let labels = prop::collection::vec(
        prop::sample::select(vec!["job".to_string(), "instance".to_string()]),
        0..2,
    );
    prop::option::of((
        any::<bool>(),
        labels.clone(),
        prop::option::of((prop::sample::select(vec![Side::Left, Side::Right]), labels)),
    ))
    .prop_map(|m| {
        m.map(|(on, labels, group)| {
            let on = on || labels.is_empty();
            // A label may not be in both `on(...)` and `group_*(...)`.
            let group = group.map(|(side, g)| {
                (
                    side,
                    g.into_iter()
                        .filter(|l| !on || !labels.contains(l))
                        .collect(),
                )
            });
            VectorMatching {
                on,
                labels,
                group,
                ..VectorMatching::default()
            }
        })
    })
}

fn vector_expr() -> impl Strategy<Value = Expr> {
    let leaf = prop_oneof![
        selector().prop_map(Expr::Vector),
        (selector(), 1i64..100).prop_map(|(vs, r)| Expr::Call {
            func: "rate".into(),
            args: vec![Expr::Matrix(vs, r * 30_000)]
        }),
        (-1e6f64..1e6, selector(), 1i64..50).prop_map(|(q, vs, r)| Expr::Call {
            func: "quantile_over_time".into(),
            args: vec![Expr::Number(q), Expr::Matrix(vs, r * 1000)],
        }),
        (1i64..60)
            .prop_flat_map(|m| signal(false, Some(m * 60_000)))
            .prop_map(|s| Expr::Call {
                func: "error_ratio".into(),
                args: vec![s],
            }),
        (1i64..60)
            .prop_flat_map(|m| signal(true, Some(m * 60_000)))
            .prop_map(|s| Expr::Call {
                func: "count_over_time".into(),
                args: vec![s],
            }),
        record_expr().prop_map(|e| Expr::Aggregate {
            op: AggOp::Count,
            expr: Box::new(e),
            param: None,
            grouping: vec!["service".into()],
            without: false
        }),
    ];
    leaf.prop_recursive(4, 24, 3, |inner| {
        prop_oneof![
            inner.clone().prop_map(|e| Expr::Call {
                func: "abs".into(),
                args: vec![e]
            }),
            inner.clone().prop_map(paren),
            inner.clone().prop_map(|e| Expr::Neg(Box::new(match e {
                Expr::Binary { .. } => paren(e),
                e => e,
            }))),
            (inner.clone(), 1i64..10, prop::option::of(1i64..5)).prop_map(|(e, r, s)| Expr::Call {
                func: "max_over_time".into(),
                args: vec![Expr::Subquery {
                    expr: Box::new(match e {
                        Expr::Binary { .. } | Expr::Neg(_) => paren(e),
                        e => e,
                    }),
                    range: r * 60_000,
                    step: s.map(|s| s * 15_000),
                    offset: 0,
                    at: None
                }],
            }),
            (
                prop::sample::select(vec![
                    AggOp::Sum,
                    AggOp::Avg,
                    AggOp::Max,
                    AggOp::Group,
                    AggOp::Stddev
                ]),
                inner.clone(),
                prop::collection::vec(
                    prop::sample::select(vec![
                        "job".to_string(),
                        "le".to_string(),
                        "dotted.name".to_string()
                    ]),
                    0..3
                ),
                any::<bool>()
            )
                .prop_map(|(op, e, grouping, without)| Expr::Aggregate {
                    op,
                    expr: Box::new(e),
                    param: None,
                    grouping,
                    without
                }),
            (1u32..20, inner.clone()).prop_map(|(k, e)| Expr::Aggregate {
                op: AggOp::Topk,
                expr: Box::new(e),
                param: Some(Box::new(Expr::Number(f64::from(k)))),
                grouping: vec![],
                without: false
            }),
            inner.clone().prop_map(|e| Expr::Aggregate {
                op: AggOp::CountValues,
                expr: Box::new(e),
                param: Some(Box::new(Expr::Str("value".into()))),
                grouping: vec!["job".into()],
                without: false
            }),
            (
                prop::sample::select(vec![
                    BinOp::Add,
                    BinOp::Sub,
                    BinOp::Mul,
                    BinOp::Div,
                    BinOp::Mod,
                    BinOp::Pow,
                    BinOp::Atan2
                ]),
                inner.clone(),
                inner.clone(),
                matching()
            )
                .prop_map(|(op, l, r, m)| binary(op, l, r, false, m)),
            (
                prop::sample::select(vec![
                    BinOp::Eql,
                    BinOp::Neq,
                    BinOp::Gtr,
                    BinOp::Lss,
                    BinOp::Gte,
                    BinOp::Lte
                ]),
                inner.clone(),
                inner.clone(),
                any::<bool>(),
                matching()
            )
                .prop_map(|(op, l, r, b, m)| binary(op, l, r, b, m)),
            (
                prop::sample::select(vec![BinOp::And, BinOp::Or, BinOp::Unless]),
                inner.clone(),
                inner.clone(),
                any::<bool>()
            )
                .prop_map(|(op, l, r, on)| binary(
                    op,
                    l,
                    r,
                    false,
                    on.then(|| VectorMatching {
                        on: true,
                        labels: vec!["job".into()],
                        ..VectorMatching::default()
                    })
                )),
            (
                prop::sample::select(vec![BinOp::Add, BinOp::Mul, BinOp::Pow]),
                inner.clone(),
                -1e9f64..1e9,
                any::<bool>()
            )
                .prop_map(|(op, e, n, left)| if left {
                    binary(op, Expr::Number(n), e, false, None)
                } else {
                    binary(op, e, Expr::Number(n), false, None)
                }),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn records_parse_print_round_trip(e in record_expr()) {
        let text = e.to_string();
        let back = parse(&text).map_err(|err| TestCaseError::fail(format!("{text}: {err}")))?;
        prop_assert_eq!(back, e, "{}", text);
    }

    #[test]
    fn parse_print_round_trip(e in vector_expr()) {
        let text = e.to_string();
        let back = parse(&text).map_err(|err| TestCaseError::fail(format!("{text}: {err}")))?;
        prop_assert_eq!(back, e, "{}", text);
    }
}
