//! Logs and spans end to end: write, search in the head, flush, compact,
//! reopen — the same answers from every stage — plus bad records.

mod common;

use common::opts;
use sextant_storage::{
    AnyValue, Db, Error, HOUR_MS, LogRecord, LogSearch, MatchOp, Matcher, Span, SpanKind,
    SpanSearch, StatusCode, TextQuery, hex,
};

const NS_PER_MS: i64 = 1_000_000;
const SERVICES: [&str; 3] = ["checkout", "payment", "db"];

fn trace_id(i: u64) -> [u8; 16] {
    let mut t = [0u8; 16];
    t[..8].copy_from_slice(&(i + 1).to_le_bytes());
    t[8..].copy_from_slice(&0x5eed_u64.wrapping_mul(i + 7).to_le_bytes());
    t
}

fn span_id(trace: u64, n: u64) -> [u8; 8] {
    (trace * 16 + n + 1).to_le_bytes()
}

fn resource(svc: &str) -> Vec<(String, AnyValue)> {
    vec![
        ("service.name".into(), svc.into()),
        ("host.name".into(), format!("{svc}-host").as_str().into()),
    ]
}

/// `n` traces spread over 5 hours (3 block partitions): checkout → payment
/// → db, with one log per span; every 10th trace fails in the database.
fn data(n: u64) -> (Vec<LogRecord>, Vec<Span>) {
    let (mut logs, mut spans) = (Vec::new(), Vec::new());
    for i in 0..n {
        let t0 = (i as i64 * 5 * HOUR_MS / n as i64) * NS_PER_MS + 17;
        let failed = i % 10 == 3;
        for (depth, svc) in SERVICES.iter().enumerate() {
            let d = depth as u64;
            let start = t0 + depth as i64 * 1_000_000;
            let dur = if failed { 900_000_000 } else { 20_000_000 } / (d as i64 + 1);
            spans.push(Span {
                trace_id: trace_id(i),
                span_id: span_id(i, d),
                parent_span_id: if d == 0 { [0; 8] } else { span_id(i, d - 1) },
                name: format!("{svc} /op{}", i % 3),
                kind: if d == 2 {
                    SpanKind::Client
                } else {
                    SpanKind::Server
                },
                start_ns: start,
                end_ns: start + dur,
                status: if failed && d == 2 {
                    StatusCode::Error
                } else {
                    StatusCode::Unset
                },
                status_message: String::new(),
                attributes: vec![("http.route".into(), format!("/op{}", i % 3).as_str().into())],
                resource: resource(svc).into(),
                events: vec![],
                links: vec![],
            });
            let (sev, body) = if failed && d == 2 {
                (
                    17,
                    format!(
                        "ERROR query failed: connection refused to 10.0.0.{} after {}ms req_id={i}",
                        i % 4,
                        dur / NS_PER_MS
                    ),
                )
            } else {
                (
                    9,
                    format!(
                        "INFO {svc} handled /op{} in {}ms req_id={i}",
                        i % 3,
                        dur / NS_PER_MS
                    ),
                )
            };
            logs.push(LogRecord {
                time_ns: start + 500,
                observed_ns: start + 900,
                severity: sev,
                severity_text: if sev == 17 { "ERROR" } else { "INFO" }.into(),
                body: AnyValue::Str(body),
                attributes: vec![("attempt".into(), AnyValue::Int((i % 2) as i64))],
                resource: resource(svc).into(),
                trace_id: trace_id(i),
                span_id: span_id(i, d),
                flags: 1,
            });
        }
    }
    (logs, spans)
}

fn queries() -> Vec<LogSearch> {
    let q = |m: Vec<Matcher>, text: Option<&str>, limit| LogSearch {
        matchers: m,
        text: text.map(|t| TextQuery::parse(t).unwrap()),
        limit,
        ..LogSearch::default()
    };
    vec![
        q(vec![], Some("refused"), 1000),
        q(vec![], Some("\"connection refused\" 10.0.0.3"), 1000),
        q(vec![Matcher::equal("service", "payment")], None, 7),
        q(vec![Matcher::equal("level", "error")], Some("query*"), 1000),
        q(
            vec![Matcher::new(MatchOp::Regex, "service", "check.*|db").unwrap()],
            Some("-handled"),
            1000,
        ),
        q(
            vec![
                Matcher::equal("attempt", "1"),
                Matcher::equal("host.name", "db-host"),
            ],
            None,
            1000,
        ),
        q(
            vec![Matcher::new(MatchOp::NotEqual, "level", "info").unwrap()],
            Some("/req_id/"),
            1000,
        ),
        LogSearch {
            start_ns: HOUR_MS * NS_PER_MS,
            end_ns: 2 * HOUR_MS * NS_PER_MS,
            ..q(vec![], Some("INFO"), 50)
        },
        // Ids: one trace (through the trace tables), with a field too; a
        // span; a regex over trace ids (on the rows).
        q(
            vec![
                Matcher::equal("trace_id", hex(&trace_id(13))),
                Matcher::equal("level", "error"),
            ],
            None,
            1000,
        ),
        q(
            vec![Matcher::equal("span_id", hex(&span_id(40, 1)))],
            None,
            1000,
        ),
        q(
            vec![
                Matcher::new(
                    MatchOp::Regex,
                    "trace_id",
                    format!("{}.*", &hex(&trace_id(41))[..20]),
                )
                .unwrap(),
            ],
            Some("handled"),
            1000,
        ),
    ]
}

fn span_queries() -> Vec<SpanSearch> {
    vec![
        SpanSearch {
            matchers: vec![Matcher::equal("status", "error")],
            limit: 1000,
            ..SpanSearch::default()
        },
        SpanSearch {
            matchers: vec![Matcher::equal("service", "checkout")],
            min_duration_ns: Some(500_000_000),
            limit: 1000,
            ..SpanSearch::default()
        },
        SpanSearch {
            matchers: vec![
                Matcher::equal("kind", "server"),
                Matcher::equal("http.route", "/op1"),
            ],
            start_ns: 2 * HOUR_MS * NS_PER_MS,
            end_ns: 3 * HOUR_MS * NS_PER_MS,
            limit: 10,
            ..SpanSearch::default()
        },
        SpanSearch {
            matchers: vec![
                Matcher::equal("trace_id", hex(&trace_id(23))),
                Matcher::equal("kind", "server"),
            ],
            limit: 1000,
            ..SpanSearch::default()
        },
        SpanSearch {
            matchers: vec![Matcher::equal("parent_span_id", hex(&span_id(50, 0)))],
            limit: 1000,
            ..SpanSearch::default()
        },
    ]
}

type Answers = (Vec<Vec<LogRecord>>, Vec<Vec<Span>>, Vec<String>);

fn answers(db: &Db, traces: u64) -> Answers {
    let logs = queries()
        .iter()
        .map(|q| db.search_logs(q).unwrap())
        .collect();
    let spans = span_queries()
        .iter()
        .map(|q| db.find_spans(q).unwrap())
        .collect();
    let mut trees = Vec::new();
    for i in (0..traces).step_by(37) {
        let t = db.trace(&trace_id(i)).unwrap().unwrap();
        let names: Vec<String> = t.spans.iter().map(|s| s.name.clone()).collect();
        let logs = db.trace_logs(&trace_id(i)).unwrap();
        trees.push(format!(
            "{names:?} {:?} {:?} {}",
            t.parents,
            t.roots(),
            logs.len()
        ));
    }
    (logs, spans, trees)
}

#[test]
fn same_answers_from_head_blocks_compaction_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let n = 600;
    let (logs, spans) = data(n);
    let db = Db::open(dir.path(), opts()).unwrap();
    for chunk in logs.chunks(500) {
        db.write_logs(chunk.to_vec()).unwrap();
    }
    for chunk in spans.chunks(500) {
        db.write_spans(chunk.to_vec()).unwrap();
    }
    let head = answers(&db, n);

    // Expected values, computed from the data itself.
    let failed = (0..n).filter(|i| i % 10 == 3).count();
    assert_eq!(head.0[0].len(), failed);
    assert!(head.0[0].windows(2).all(|w| w[0].time_ns >= w[1].time_ns));
    assert_eq!(
        head.0[1].len(),
        (0..n).filter(|i| i % 10 == 3 && i % 4 == 3).count()
    );
    assert_eq!(head.0[2].len(), 7);
    assert_eq!(head.0[2][0], logs[logs.len() - 2]);
    assert_eq!(head.0[3].len(), failed);
    assert_eq!(head.0[4].len(), failed);
    assert_eq!(head.0[5].len(), (n / 2) as usize);
    assert_eq!(head.0[6].len(), failed);
    assert_eq!(head.0[7].len(), 50);
    assert!(
        head.0[7]
            .iter()
            .all(|r| r.time_ns < 2 * HOUR_MS * NS_PER_MS)
    );
    // Trace 13 failed: its database line; span 1 of trace 40: its line;
    // trace 41's lines, all handled.
    assert_eq!(head.0[8].len(), 1, "{:?}", head.0[8]);
    assert_eq!(head.0[8][0].trace_id, trace_id(13));
    assert_eq!(head.0[8][0].severity, 17);
    assert_eq!(head.0[9].len(), 1);
    assert_eq!(head.0[9][0].span_id, span_id(40, 1));
    assert_eq!(head.0[10].len(), 3);
    assert!(head.0[10].iter().all(|r| r.trace_id == trace_id(41)));
    // Trace 23's two server spans; the child of trace 50's root.
    assert_eq!(head.1[3].len(), 2);
    assert!(
        head.1[3]
            .iter()
            .all(|s| s.trace_id == trace_id(23) && s.kind == SpanKind::Server)
    );
    assert_eq!(head.1[4].len(), 1);
    assert_eq!(head.1[4][0].span_id, span_id(50, 1));
    assert_eq!(head.1[0].len(), failed);
    assert_eq!(head.1[1].len(), failed);
    assert_eq!(head.1[2].len(), 10);
    assert!(head.2[0].starts_with(
        "[\"checkout /op0\", \"payment /op0\", \"db /op0\"] [None, Some(0), Some(1)] [0] 3"
    ));

    db.flush().unwrap();
    assert!(db.stats().blocks.len() >= 3);
    assert_eq!(answers(&db, n), head, "after flush");
    db.compact().unwrap();
    assert_eq!(answers(&db, n), head, "after compaction");
    db.close().unwrap();
    drop(db);
    let db = Db::open(dir.path(), opts()).unwrap();
    assert_eq!(answers(&db, n), head, "after reopen");
    for b in db.stats().blocks {
        assert!(b.meta.logs > 0 && b.meta.spans > 0, "{b:?}");
        let block =
            sextant_storage::Block::open(&sextant_wal::StdFs, &block_dir(&db, b.meta.seq)).unwrap();
        block.verify().unwrap();
    }
}

#[test]
fn records_survive_reopen_from_the_wal_and_are_visible_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let (logs, spans) = data(40);
    {
        let db = Db::open(dir.path(), opts()).unwrap();
        for (l, s) in logs.iter().zip(&spans) {
            db.write_logs(vec![l.clone()]).unwrap();
            db.write_spans(vec![s.clone()]).unwrap();
            // Searchable as soon as the write returns.
            let found = db
                .search_logs(&LogSearch {
                    text: Some(TextQuery::parse(&format!("req_id={}", body_id(l))).unwrap()),
                    limit: 100,
                    ..LogSearch::default()
                })
                .unwrap();
            assert!(found.contains(l));
            assert!(db.trace(&s.trace_id).unwrap().unwrap().spans.contains(s));
        }
    }
    let db = Db::open(dir.path(), opts()).unwrap();
    let all = db
        .search_logs(&LogSearch {
            limit: 1000,
            ..LogSearch::default()
        })
        .unwrap();
    assert_eq!(all.len(), logs.len());
    let all = db
        .find_spans(&SpanSearch {
            limit: 1000,
            ..SpanSearch::default()
        })
        .unwrap();
    assert_eq!(all.len(), spans.len());
}

fn block_dir(db: &Db, seq: u64) -> std::path::PathBuf {
    db.dir().join("blocks").join(format!("{seq:020}"))
}

fn body_id(l: &LogRecord) -> String {
    l.body.to_text().rsplit('=').next().unwrap().to_string()
}

#[test]
fn bad_records_are_refused_or_normalised() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), opts()).unwrap();
    let (logs, spans) = data(3);
    db.write_logs(logs.clone()).unwrap();
    db.write_spans(spans.clone()).unwrap();

    let bad_span = |f: &dyn Fn(&mut Span)| {
        let mut s = spans[0].clone();
        f(&mut s);
        // One bad span fails the batch: the good one beside it is not stored.
        let mut good = spans[1].clone();
        good.span_id = [9; 8];
        match db.write_spans(vec![good, s]) {
            Err(Error::InvalidRecord(msg)) => msg,
            other => panic!("{other:?}"),
        }
    };
    assert!(bad_span(&|s| s.trace_id = [0; 16]).contains("all-zero trace id"));
    assert!(bad_span(&|s| s.span_id = [0; 8]).contains("all-zero span id"));
    assert!(bad_span(&|s| s.end_ns = s.start_ns - 1).contains("ends"));
    let mut deep = AnyValue::Int(1);
    for _ in 0..40 {
        deep = AnyValue::Array(vec![deep]);
    }
    let deep2 = deep.clone();
    assert!(bad_span(&move |s| s.attributes.push(("x".into(), deep2.clone()))).contains("nests"));
    let mut rec = logs[0].clone();
    rec.time_ns = 0;
    rec.observed_ns = 0;
    assert!(matches!(
        db.write_logs(vec![rec]),
        Err(Error::InvalidRecord(_))
    ));
    let mut rec = logs[0].clone();
    rec.severity = 99;
    assert!(matches!(
        db.write_logs(vec![rec]),
        Err(Error::InvalidRecord(_))
    ));

    // Normalised: huge values cut, a body of invalid UTF-8 kept as bytes
    // (and searchable through its lossy text), a zero time takes the
    // observed time.
    let mut rec = logs[0].clone();
    rec.time_ns = 0;
    rec.attributes
        .push(("big".into(), AnyValue::Str("é".repeat(20_000))));
    rec.body = AnyValue::Bytes(b"bytes \xff\xfe marker77".to_vec());
    let sum = db.write_logs(vec![rec.clone()]).unwrap();
    assert_eq!((sum.stored, sum.truncated), (1, 1));
    let found = db
        .search_logs(&LogSearch {
            text: Some(TextQuery::parse("marker77").unwrap()),
            ..LogSearch::default()
        })
        .unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].time_ns, rec.observed_ns);
    assert_eq!(found[0].body, rec.body);
    let AnyValue::Str(big) = &found[0].attributes.last().unwrap().1 else {
        panic!()
    };
    assert_eq!(big.len(), 16 * 1024);

    // Nothing stored before was lost, across a flush too.
    db.flush().unwrap();
    let all = db
        .search_logs(&LogSearch {
            limit: 100,
            ..LogSearch::default()
        })
        .unwrap();
    assert_eq!(all.len(), logs.len() + 1);
    let all = db
        .find_spans(&SpanSearch {
            limit: 100,
            ..SpanSearch::default()
        })
        .unwrap();
    assert_eq!(all.len(), spans.len());
    assert!(TextQuery::parse("\"unclosed").is_err());
}

/// A damaged paged text index (`logs.terms`): cut short, the block does
/// not open and the error names the file; a flipped byte in its
/// signatures opens (the layout is intact) but `verify` reports the
/// checksum; searches over it never panic.
#[test]
fn a_damaged_text_index_is_reported_not_misread() {
    let dir = tempfile::tempdir().unwrap();
    let (logs, _) = data(200);
    let seq = {
        let db = Db::open(dir.path(), opts()).unwrap();
        db.write_logs(logs).unwrap();
        db.flush().unwrap();
        let seq = db.stats().blocks[0].meta.seq;
        db.close().unwrap();
        seq
    };
    let block = dir.path().join("blocks").join(format!("{seq:020}"));
    let path = block.join("logs.terms");
    let good = std::fs::read(&path).unwrap();

    std::fs::write(&path, &good[..good.len() / 2]).unwrap();
    let err = sextant_storage::Block::open(&sextant_wal::StdFs, &block)
        .unwrap_err()
        .to_string();
    assert!(err.contains("logs.terms"), "{err}");

    let mut flipped = good.clone();
    let at = flipped.len() - 40;
    flipped[at] ^= 0x10;
    std::fs::write(&path, &flipped).unwrap();
    let opened = sextant_storage::Block::open(&sextant_wal::StdFs, &block).unwrap();
    let err = opened.verify().unwrap_err().to_string();
    assert!(err.contains("logs.terms"), "{err}");
    drop(opened);
    let db = Db::open(dir.path(), opts()).unwrap();
    for q in queries() {
        db.search_logs(&q).unwrap();
    }
}

/// Trace tables key rows by the first bytes of the id: traces sharing
/// them are told apart by the records' whole ids.
#[test]
fn traces_sharing_a_table_key_are_told_apart() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), opts()).unwrap();
    let (logs, spans) = data(30);
    let sharing = |i: u64| {
        let mut t = trace_id(i);
        t[..4].copy_from_slice(b"same");
        t
    };
    let rekey = |mut l: LogRecord| {
        let i = u64::from_le_bytes(l.trace_id[..8].try_into().unwrap()) - 1;
        l.trace_id = sharing(i);
        l
    };
    db.write_logs(logs.into_iter().map(rekey).collect())
        .unwrap();
    db.write_spans(
        spans
            .into_iter()
            .map(|mut s| {
                let i = u64::from_le_bytes(s.trace_id[..8].try_into().unwrap()) - 1;
                s.trace_id = sharing(i);
                s
            })
            .collect(),
    )
    .unwrap();
    db.flush().unwrap();
    assert!(!db.stats().blocks.is_empty());
    for i in [0, 7, 29] {
        let logs = db.trace_logs(&sharing(i)).unwrap();
        assert_eq!(logs.len(), SERVICES.len(), "trace {i}");
        assert!(logs.iter().all(|l| l.trace_id == sharing(i)));
        let t = db.trace(&sharing(i)).unwrap().unwrap();
        assert_eq!(t.spans.len(), SERVICES.len());
        assert!(t.spans.iter().all(|s| s.trace_id == sharing(i)));
    }
    let absent = {
        let mut t = sharing(1000);
        t[15] ^= 1;
        t
    };
    assert!(db.trace_logs(&absent).unwrap().is_empty());
}

/// A flush builds each block's text index from the head's postings: when
/// the head is one block in arrival order, when it spans several blocks,
/// and when records came out of time order, every term finds exactly its
/// records in the blocks as it did in the head.
#[test]
fn terms_find_their_records_after_a_flush_whatever_the_arrival_order() {
    let n = 900u64;
    let in_order = |hours: i64| -> Vec<i64> {
        (0..n as i64)
            .map(|i| i * hours * HOUR_MS / n as i64 * NS_PER_MS + 17)
            .collect()
    };
    let mut shuffled = in_order(5);
    fastrand::Rng::with_seed(7).shuffle(&mut shuffled);
    for times in [in_order(1), in_order(5), shuffled] {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path(), opts()).unwrap();
        let logs: Vec<LogRecord> = (times.iter().enumerate())
            .map(|(i, &time_ns)| LogRecord {
                time_ns,
                body: AnyValue::Str(format!("item-{i} k{} {}", i % 7, i % 5 == 0)),
                resource: resource("svc").into(),
                ..LogRecord::default()
            })
            .collect();
        for chunk in logs.chunks(128) {
            db.write_logs(chunk.to_vec()).unwrap();
        }
        let found = |text: &str| -> Vec<i64> {
            let search = LogSearch {
                text: Some(TextQuery::parse(text).unwrap()),
                limit: usize::MAX,
                ..LogSearch::default()
            };
            let mut t: Vec<i64> = (db.search_logs(&search).unwrap().iter())
                .map(|r| r.time_ns)
                .collect();
            t.sort_unstable();
            t
        };
        let want = |keep: &dyn Fn(usize) -> bool| -> Vec<i64> {
            let mut t: Vec<i64> = (times.iter().enumerate())
                .filter(|(i, _)| keep(*i))
                .map(|(_, &t)| t)
                .collect();
            t.sort_unstable();
            t
        };
        let queries: [(&str, &dyn Fn(usize) -> bool); 4] = [
            ("k3", &|i| i % 7 == 3),
            ("item-611", &|i| i == 611),
            ("true", &|i| i % 5 == 0),
            ("k2 -true", &|i| i % 7 == 2 && i % 5 != 0),
        ];
        for (q, keep) in queries {
            assert_eq!(found(q), want(keep), "{q} in the head");
        }
        db.flush().unwrap();
        for (q, keep) in queries {
            assert_eq!(found(q), want(keep), "{q} after the flush");
        }
    }
}

/// `status="error"` selects a span's outcome: one left unset on a 5xx
/// answer, or with an `error.type`, is an error (as the diagnosis and
/// `error_ratio` count it), in the head and in a block alike; an `Ok` is
/// final, and the span keeps the status it was sent with.
#[test]
fn status_selects_the_outcome() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), opts()).unwrap();
    let span = |n: u8, status, attrs: Vec<(String, AnyValue)>| Span {
        trace_id: [n; 16],
        span_id: [n; 8],
        name: "GET /x".into(),
        kind: SpanKind::Server,
        start_ns: 1_000 + i64::from(n),
        end_ns: 2_000,
        status,
        attributes: attrs,
        resource: resource("api").into(),
        ..Span::default()
    };
    let code = |c: i64| vec![("http.response.status_code".into(), AnyValue::Int(c))];
    db.write_spans(vec![
        span(1, StatusCode::Unset, code(503)),
        span(2, StatusCode::Unset, code(404)),
        span(3, StatusCode::Ok, code(500)),
        span(
            4,
            StatusCode::Unset,
            vec![("error.type".into(), "timeout".into())],
        ),
        span(5, StatusCode::Error, vec![]),
    ])
    .unwrap();
    let errors = |db: &Db| {
        let mut v: Vec<(u8, StatusCode)> = db
            .find_spans(&SpanSearch {
                matchers: vec![Matcher::equal("status", "error")],
                ..SpanSearch::default()
            })
            .unwrap()
            .iter()
            .map(|s| (s.span_id[0], s.status))
            .collect();
        v.sort_by_key(|x| x.0);
        v
    };
    let want = vec![
        (1, StatusCode::Unset),
        (4, StatusCode::Unset),
        (5, StatusCode::Error),
    ];
    assert_eq!(errors(&db), want);
    db.flush().unwrap();
    assert_eq!(errors(&db), want, "after the flush");
}
