//! Crash safety with many writers at once, as a server sees them: a child
//! process runs 8 writer threads that create new series in every batch
//! (and write to series other writers created), log records and spans,
//! while the background thread flushes on a small head limit and another
//! thread flushes and compacts. The parent kills it with SIGKILL at a
//! random moment, or lets it shut down cleanly, in a loop. After every
//! round the database must open and hold every acknowledged batch whole.
//!
//! Issue 19 found that concurrent writers creating series left a WAL that
//! replay refused ("series record for id 517 but the head assigned 500");
//! the single-writer crash test never created series concurrently.
//!
//! The child is this test binary again, with `SEXTANT_CC_CHILD` set.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use sextant::{
    AnyValue, Db, Durability, Labels, LogRecord, LogSearch, Matcher, Options, Resource, Sample,
    Span, SpanSearch, WriteBatch,
};

const CHILD_ENV: &str = "SEXTANT_CC_CHILD";
const ROUND_ENV: &str = "SEXTANT_CC_ROUND";
const STOP_ENV: &str = "SEXTANT_CC_STOP_MS";
const WRITERS: u64 = 8;
/// New series each batch creates.
const NEW: u64 = 6;
const NS: i64 = 1_000_000_000;

fn options() -> Options {
    Options {
        durability: Durability::Always,
        background: true,
        block_range_ms: 20_000,
        max_block_range_ms: 180_000,
        wal_segment_size: 32 << 10,
        max_head_samples: 4_000,
        ..Options::default()
    }
}

/// Batch (round, writer, k) as a time: distinct across every batch ever.
fn time_ms(round: u64, w: u64, k: u64) -> i64 {
    ((round * 1_000 + w) * 10_000 + k) as i64 * 10
}

fn id(round: u64, w: u64, k: u64) -> String {
    format!("{round}.{w}.{k}")
}

/// The batch: NEW series of its own, plus one sample to a series the
/// next writer owns (created by whichever of the two writes first).
fn batch(round: u64, w: u64, k: u64) -> WriteBatch {
    let t = time_ms(round, w, k);
    let mut b = WriteBatch::default();
    for i in 0..NEW {
        let l = Labels::new([
            ("__name__", "cc"),
            ("b", &id(round, w, k)),
            ("i", &i.to_string()),
        ])
        .unwrap();
        b.add(l, vec![Sample::new(t, 1.0), Sample::new(t + 1, 2.0)]);
    }
    let shared = Labels::new([
        ("__name__", "cc_shared"),
        ("pair", &format!("{round}.{}", (w + 1) % WRITERS)),
        ("k", &k.to_string()),
    ])
    .unwrap();
    b.add(shared, vec![Sample::new(t, w as f64)]);
    b
}

fn resource() -> Resource {
    vec![("service.name".into(), "cc".into())].into()
}

fn log(round: u64, w: u64, k: u64) -> LogRecord {
    LogRecord {
        time_ns: time_ms(round, w, k) * 1_000_000 + NS,
        body: AnyValue::Str(format!("batch {}", id(round, w, k))),
        resource: resource(),
        ..LogRecord::default()
    }
}

fn span(round: u64, w: u64, k: u64) -> Span {
    let mut trace = [9u8; 16];
    trace[..8].copy_from_slice(&time_ms(round, w, k).to_le_bytes());
    Span {
        trace_id: trace,
        span_id: [1; 8],
        name: id(round, w, k),
        start_ns: time_ms(round, w, k) * 1_000_000 + NS,
        end_ns: time_ms(round, w, k) * 1_000_000 + NS + 5,
        resource: resource(),
        ..Span::default()
    }
}

/// The child: writers print `ack W K` once batch K of writer W and its
/// log and span were acknowledged.
#[test]
fn concurrent_crash_child() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    let round: u64 = std::env::var(ROUND_ENV).unwrap().parse().unwrap();
    let stop_ms: Option<u64> = std::env::var(STOP_ENV).ok().map(|s| s.parse().unwrap());
    let db = Arc::new(Db::open(&dir, options()).unwrap());
    let stop = Arc::new(AtomicBool::new(false));
    let mut threads = Vec::new();
    for w in 0..WRITERS {
        let (db, stop) = (Arc::clone(&db), Arc::clone(&stop));
        threads.push(std::thread::spawn(move || {
            let mut k = 0;
            while !stop.load(Ordering::Relaxed) {
                db.write(&batch(round, w, k)).unwrap();
                db.write_logs(vec![log(round, w, k)]).unwrap();
                db.write_spans(vec![span(round, w, k)]).unwrap();
                println!("ack {w} {k}");
                k += 1;
            }
        }));
    }
    {
        let (db, stop) = (Arc::clone(&db), Arc::clone(&stop));
        threads.push(std::thread::spawn(move || {
            let mut n = 0u32;
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(15));
                n += 1;
                if n.is_multiple_of(2) {
                    db.flush().unwrap();
                } else {
                    db.compact().unwrap();
                }
            }
        }));
    }
    match stop_ms {
        Some(ms) => {
            std::thread::sleep(Duration::from_millis(ms));
            stop.store(true, Ordering::Relaxed);
            for t in threads {
                t.join().unwrap();
            }
            db.close().unwrap();
            println!("closed");
        }
        None => loop {
            std::thread::sleep(Duration::from_secs(60));
        },
    }
}

/// What the database holds, as batch ids per signal.
#[derive(Default)]
struct Held {
    /// Batch id → (series of its own, their samples).
    batches: BTreeMap<String, (usize, usize)>,
    shared: BTreeSet<(String, i64)>,
    logs: BTreeSet<String>,
    spans: BTreeSet<String>,
}

fn held(dir: &Path) -> Held {
    let db = Db::open(dir, options()).expect("the database opens after every round");
    let mut h = Held::default();
    for s in db
        .select(&[Matcher::equal("__name__", "cc")], i64::MIN, i64::MAX)
        .unwrap()
    {
        let s = s.unwrap();
        let e = h
            .batches
            .entry(s.labels.get("b").unwrap().to_string())
            .or_default();
        e.0 += 1;
        e.1 += s.samples.len();
    }
    for s in db
        .select(
            &[Matcher::equal("__name__", "cc_shared")],
            i64::MIN,
            i64::MAX,
        )
        .unwrap()
    {
        let s = s.unwrap();
        for x in s.samples {
            assert!(h.shared.insert((s.labels.to_string(), x.t)));
        }
    }
    for r in db
        .search_logs(&LogSearch {
            limit: usize::MAX,
            ..LogSearch::default()
        })
        .unwrap()
    {
        let body = r.body.to_text().into_owned();
        assert!(h.logs.insert(body), "a log record stored twice");
    }
    for s in db
        .find_spans(&SpanSearch {
            limit: usize::MAX,
            ..SpanSearch::default()
        })
        .unwrap()
    {
        assert!(h.spans.insert(s.name), "a span stored twice");
    }
    h
}

fn rounds(n: u64) {
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut acked: Vec<(u64, u64, u64)> = Vec::new();
    for round in 0..n {
        let clean = round % 4 == 3;
        let mut cmd = Command::new(&exe);
        cmd.args([
            "concurrent_crash_child",
            "--exact",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env(CHILD_ENV, dir.path())
        .env(ROUND_ENV, round.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
        if clean {
            cmd.env(STOP_ENV, fastrand::u64(30..150).to_string());
        }
        let mut child = cmd.spawn().unwrap();
        let stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            let mut acks = Vec::new();
            let mut closed = false;
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                closed |= line.ends_with("closed");
                // libtest's own "test ... " may share the first line.
                if let Some((_, rest)) = line.rsplit_once("ack ") {
                    let mut it = rest.split_whitespace().map(|x| x.parse::<u64>());
                    if let (Some(Ok(w)), Some(Ok(k))) = (it.next(), it.next()) {
                        acks.push((w, k));
                    }
                }
            }
            (acks, closed)
        });
        if clean {
            let status = child.wait().unwrap();
            assert!(status.success(), "round {round}: clean shutdown failed");
        } else {
            std::thread::sleep(Duration::from_millis(fastrand::u64(30..200)));
            child.kill().unwrap(); // SIGKILL
            child.wait().unwrap();
        }
        let (acks, closed) = reader.join().unwrap();
        assert!(!clean || closed, "round {round}: no clean close");
        acked.extend(acks.into_iter().map(|(w, k)| (round, w, k)));
        let h = held(dir.path());
        for &(r, w, k) in &acked {
            let b = id(r, w, k);
            let what = format!("round {round}: acknowledged batch {b}");
            assert_eq!(
                h.batches.get(&b),
                Some(&(NEW as usize, 2 * NEW as usize)),
                "{what}"
            );
            let shared = Labels::new([
                ("__name__", "cc_shared"),
                ("k", &k.to_string()),
                ("pair", &format!("{r}.{}", (w + 1) % WRITERS)),
            ])
            .unwrap();
            assert!(
                h.shared.contains(&(shared.to_string(), time_ms(r, w, k))),
                "{what}: shared series"
            );
            assert!(h.logs.contains(&format!("batch {b}")), "{what}: log");
            assert!(h.spans.contains(&b), "{what}: span");
        }
        // Unacknowledged batches are there whole or not at all.
        for (b, got) in &h.batches {
            assert_eq!(
                *got,
                (NEW as usize, 2 * NEW as usize),
                "round {round}: batch {b} torn"
            );
        }
    }
    assert!(
        acked.len() > 100,
        "the children wrote too little: {}",
        acked.len()
    );
}

#[test]
fn concurrent_writers_creating_series_survive_kills_and_restarts() {
    if std::env::var(CHILD_ENV).is_ok() {
        return;
    }
    rounds(20);
}

/// Long mode: `cargo test --release --test crash_concurrent -- --ignored`.
#[test]
#[ignore]
fn concurrent_writers_200_rounds() {
    if std::env::var(CHILD_ENV).is_ok() {
        return;
    }
    rounds(200);
}
