//! `sextant bench logs`: log ingest with full-text indexing, bytes on disk
//! per line, and term query latency.
//!
//! Two corpora. `synthetic` (the default): lines of ~200 bytes of typical
//! service output (request lines, SQL timings, errors with IPs and ids)
//! from `--services` services. `demo`: the records the demo's 26 services
//! emit while a dependency fails (request lines, slow queries, failures
//! with their causes; service, instance, version and function attributes),
//! each with its trace id written into the body (`trace_id=…`), as
//! services that log it do. Either way the lines are spread evenly over
//! `--hours` hours so they land in several 2 h blocks.

use std::collections::HashSet;
use std::path::Path;
use std::time::{Duration, Instant};

use clap::Args;
use serde_json::json;
use sextant_storage::{AnyValue, LogRecord, LogSearch, Resource, SpanId, TextQuery, TraceId};

use super::{
    bytes_by_entry, cpu_seconds, major_faults, print_summary, quantile_ms, scratch_db, tree_bytes,
};
use crate::{CliError, CliResult};

/// Options of `sextant bench logs`.
#[derive(Args)]
pub struct LogsArgs {
    /// Log lines written.
    #[arg(long, default_value_t = 1_000_000)]
    lines: u64,
    /// Lines per write call.
    #[arg(long, default_value_t = 1000)]
    batch: usize,
    /// Hours the lines are spread over.
    #[arg(long, default_value_t = 24)]
    hours: u64,
    /// Services writing.
    #[arg(long, default_value_t = 20)]
    services: u64,
    /// Times each query is run.
    #[arg(long, default_value_t = 30)]
    repeat: usize,
    /// WAL durability: always, never, or interval:MS.
    #[arg(long, default_value = "never")]
    sync: String,
    /// Which lines: `synthetic` or `demo` (see the module doc).
    #[arg(long, value_enum, default_value = "synthetic")]
    corpus: Corpus,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

/// The lines a run writes.
#[derive(clap::ValueEnum, Clone, Copy, PartialEq, Eq)]
enum Corpus {
    Synthetic,
    Demo,
}

/// The demo's log records during a fault, in time order, generated a
/// minute of simulated time at a time.
struct DemoLines {
    sim: sextant_demo::sim::Sim,
    next_ms: i64,
    pending: std::collections::VecDeque<LogRecord>,
}

impl DemoLines {
    /// Root requests a second: the demo's market-hours load, scaled so a
    /// million lines take about an hour of simulated time.
    const RATE: f64 = 150.0;
    /// A Monday, 10:00 in New York: the market is open.
    const START_MS: i64 = 1_763_996_400_000;

    fn new() -> Self {
        let fault = sextant_demo::sim::Fault {
            kind: sextant_demo::sim::FaultKind::FailingDependency,
            service: "payments".into(),
            start_ms: Self::START_MS,
            end_ms: i64::MAX,
        };
        DemoLines {
            sim: sextant_demo::sim::Sim::new(42, Self::RATE, vec![fault]),
            next_ms: Self::START_MS,
            pending: Default::default(),
        }
    }

    fn next(&mut self) -> LogRecord {
        while self.pending.is_empty() {
            let mut logs = self.sim.run(self.next_ms, self.next_ms + 60_000).logs;
            self.next_ms += 60_000;
            logs.sort_by_key(|r| r.time_ns);
            self.pending.extend(logs);
        }
        let mut r = self.pending.pop_front().unwrap_or_default();
        let id = sextant_storage::hex(&r.trace_id);
        r.body = AnyValue::Str(format!("{} trace_id={id}", r.body.to_text()));
        r
    }
}

const START_NS: i64 = 1_763_800_000_000_000_000;
const PATHS: [&str; 6] = [
    "/api/v1/orders",
    "/api/v1/cart/items",
    "/api/v2/payments/authorize",
    "/healthz",
    "/api/v1/users/profile",
    "/internal/inventory/reserve",
];

/// Line `i`: deterministic, about 200 bytes, with the variety of service
/// logs: 5,000 users, 1,000 client addresses, 64-bit request ids, a trace
/// id on every other line. Random content is ~20 bytes a line, so plain
/// `zstd -9` keeps about a fifth of the text (printed as a reference).
/// `hosts` are the resources of [`hosts`].
fn line(i: u64, services: u64, hosts: &[Resource], rng: &mut fastrand::Rng) -> LogRecord {
    let svc = format!("svc-{:02}", i % services);
    let user = rng.u32(..5_000);
    let ms = rng.u32(1..900);
    let req = rng.u64(..);
    let (sev, text, body) = match rng.u32(..100) {
        0..=2 => (
            17,
            "ERROR",
            format!(
                "ERROR {svc} upstream call failed: connection refused to 10.{}.{}.{}:5432 after {ms}ms \
                 req_id={req:016x} user_id=u-{user} retry=3 pool=primary db=orders",
                rng.u8(..),
                rng.u8(..),
                rng.u8(..)
            ),
        ),
        3..=9 => (
            13,
            "WARN",
            format!(
                "WARN {svc} slow query took {ms}ms: SELECT id, status, total FROM orders WHERE user_id = $1 \
                 req_id={req:016x} user_id=u-{user} rows={}",
                rng.u32(..500)
            ),
        ),
        _ => {
            let path = PATHS[rng.usize(..PATHS.len())];
            (
                9,
                "INFO",
                format!(
                    "INFO {svc} 10.{}.{}.{} - GET {path}/{} HTTP/1.1 status=200 bytes={} duration_ms={ms} \
                     req_id={req:016x} user_id=u-{user} ua=\"okhttp/4.12.0\"",
                    rng.u8(..),
                    rng.u8(..),
                    rng.u8(..),
                    rng.u32(..100_000),
                    rng.u32(..20_000)
                ),
            )
        }
    };
    let mut trace_id = [0u8; 16];
    if i.is_multiple_of(2) {
        trace_id = rng.u128(1..).to_le_bytes();
    }
    LogRecord {
        time_ns: 0,
        observed_ns: 0,
        severity: sev,
        severity_text: text.into(),
        body: AnyValue::Str(body),
        attributes: Vec::new(),
        resource: Resource::clone(&hosts[(i % services * 3 + i % 3) as usize]),
        trace_id,
        span_id: [0; 8],
        flags: 0,
    }
}

/// The resources of 3 hosts of each service, host `h` of service `s` at
/// `3s + h`: shared by the lines of a host, as an OTLP batch shares its
/// resource among its records.
fn hosts(services: u64) -> Vec<Resource> {
    (0..services * 3)
        .map(|k| {
            let svc = format!("svc-{:02}", k / 3);
            let host = format!("{svc}-{}", k % 3);
            Resource::new(vec![
                ("service.name".into(), AnyValue::Str(svc)),
                ("host.name".into(), AnyValue::Str(host)),
            ])
        })
        .collect()
}

/// The trace and span ids of each block's lines, counted once per distinct
/// id: the SDKs draw them at random, so any layout that keeps them spends
/// at least 16 bytes on each distinct trace id and 8 on each distinct span
/// id of a block. Printed beside the bytes a line, it tells how far down
/// the records of a corpus can go at all.
#[derive(Default)]
struct IdFloor {
    part: i64,
    traces: HashSet<TraceId>,
    spans: HashSet<SpanId>,
    bytes: u64,
}

impl IdFloor {
    /// Counts the ids of a line of the block of partition `part` (lines
    /// come partition after partition).
    fn add(&mut self, part: i64, r: &LogRecord) {
        if part != self.part {
            self.end_block();
            self.part = part;
        }
        if r.trace_id != [0; 16] {
            self.traces.insert(r.trace_id);
        }
        if r.span_id != [0; 8] {
            self.spans.insert(r.span_id);
        }
    }

    fn end_block(&mut self) {
        self.bytes += 16 * self.traces.len() as u64 + 8 * self.spans.len() as u64;
        self.traces.clear();
        self.spans.clear();
    }
}

pub fn run(data_dir: &Path, a: LogsArgs) -> CliResult {
    if a.batch == 0 || a.lines == 0 || a.services == 0 || a.hours == 0 {
        return Err(CliError::Usage(
            "--lines, --batch, --services and --hours must be positive".into(),
        ));
    }
    let (dir, db) = scratch_db(data_dir, "bench-logs-", &a.sync)?;
    let step = (a.hours * 3_600_000_000_000 / a.lines) as i64;
    let mut rng = fastrand::Rng::with_seed(42);
    let mut demo = (a.corpus == Corpus::Demo).then(DemoLines::new);
    let hosts = hosts(a.services);
    let (mut raw_bytes, mut gen_time) = (0u64, Duration::ZERO);
    let mut ids = IdFloor::default();
    // Trace ids to look up: the first written, the first of the second
    // half, the last.
    let (mut oldest, mut middle, mut newest) = (None, None, None);
    // The same lines as a plain text file compressed by zstd -9 in 1 MiB
    // pieces: how compressible the data is, whatever stores it.
    let (mut text, mut text_zstd) = (String::new(), 0u64);
    let (cpu0, t0) = (cpu_seconds(), Instant::now());
    let mut i = 0u64;
    let mut flush_time = Duration::ZERO;
    let two_hours = 2 * 3_600_000_000_000i64;
    while i < a.lines {
        let g = Instant::now();
        // Up to the batch size, and never across a 2 h partition: each
        // partition is flushed as it closes, as the background thread would.
        let part = (START_NS + i as i64 * step).div_euclid(two_hours);
        let mut n = 0;
        while n < a.batch as u64
            && i + n < a.lines
            && (START_NS + (i + n) as i64 * step).div_euclid(two_hours) == part
        {
            n += 1;
        }
        let batch: Vec<LogRecord> = (i..i + n)
            .map(|k| {
                let mut r = match &mut demo {
                    Some(d) => d.next(),
                    None => line(k, a.services, &hosts, &mut rng),
                };
                // Moved in time with its observed time (when set), so the
                // delay between them is the corpus's own.
                let time_ns = START_NS + k as i64 * step;
                if r.observed_ns != 0 {
                    r.observed_ns = r.observed_ns.wrapping_add(time_ns.wrapping_sub(r.time_ns));
                }
                r.time_ns = time_ns;
                ids.add(part, &r);
                if r.trace_id != [0; 16] {
                    oldest.get_or_insert(r.trace_id);
                    if k >= a.lines / 2 {
                        middle.get_or_insert(r.trace_id);
                    }
                    newest = Some(r.trace_id);
                }
                let body = r.body.to_text();
                raw_bytes += body.len() as u64 + 1;
                text.push_str(&body);
                text.push('\n');
                r
            })
            .collect();
        if text.len() >= 1 << 20 || i + n == a.lines {
            text_zstd += zstd::bulk::compress(text.as_bytes(), 9).map_or(0, |c| c.len() as u64);
            text.clear();
        }
        gen_time += g.elapsed();
        db.write_logs(batch)?;
        i += n;
        let next_part = (START_NS + i as i64 * step).div_euclid(two_hours);
        if next_part != part || i == a.lines {
            let f = Instant::now();
            db.flush()?;
            flush_time += f.elapsed();
        }
    }
    ids.end_block();
    let wall = t0.elapsed() - gen_time;
    let cpu = (cpu_seconds() - cpu0 - gen_time.as_secs_f64()).max(1e-9);
    let disk = tree_bytes(&dir.path().join("blocks"));
    let by_file = bytes_by_entry(&dir.path().join("blocks"));
    let mb = raw_bytes as f64 / 1e6;

    // Term queries of several selectivities, newest 100 first; then a
    // prefix and a regex over request ids, a field with a value per line
    // (each matches 1 line in 65,536).
    let queries: &[&str] = match a.corpus {
        Corpus::Synthetic => &[
            "refused",
            "u-4242",
            "timeout",
            "orders",
            "10.0.0.7:5432",
            "\"slow query\"",
            "status=200 healthz",
            "00a1*",
            "/00a1[0-9a-f]{12}/",
        ],
        // Over trace ids (a value per request) as over request ids.
        Corpus::Demo => &[
            "failed",
            "\"connection refused\"",
            "nullpointerexception",
            "portfolio",
            "\"slow query\"",
            "\"502 bad gateway\"",
            "00a1*",
            "/00a1[0-9a-f]{28}/",
        ],
    };
    let mut results = Vec::new();
    let mut all = Vec::new();
    let mut timed = |query: &str, run: &mut dyn FnMut() -> Result<usize, CliError>| -> CliResult {
        let mut times = Vec::with_capacity(a.repeat);
        let mut found = 0;
        // The slowest run's CPU and faults: whether a run far slower than
        // the others worked, waited for the disk or waited for a core.
        let mut slowest = (Duration::ZERO, 0.0, 0);
        for _ in 0..a.repeat {
            let (cpu, faults, t) = (cpu_seconds(), major_faults(), Instant::now());
            found = run()?;
            let took = t.elapsed();
            times.push(took);
            if took > slowest.0 {
                slowest = (took, cpu_seconds() - cpu, major_faults() - faults);
            }
        }
        times.sort();
        all.extend(times.iter().copied());
        results.push(json!({
            "query": query, "found": found,
            "p50_ms": quantile_ms(&times, 0.5), "p99_ms": quantile_ms(&times, 0.99),
            "slowest_cpu_ms": slowest.1 * 1e3, "slowest_major_faults": slowest.2,
        }));
        Ok(())
    };
    for &q in queries {
        let search = LogSearch {
            text: Some(TextQuery::parse(q).map_err(sextant_storage::Error::Matcher)?),
            limit: 100,
            ..LogSearch::default()
        };
        timed(q, &mut || Ok(db.search_logs(&search)?.len()))?;
    }
    // A trace's lines by its id, as a trace view asks: every block is
    // looked in (no time window), the id found in the oldest, a middle or
    // the newest one, or nowhere.
    let absent = Some([0xfe; 16]);
    for (name, id) in [
        ("oldest", oldest),
        ("middle", middle),
        ("newest", newest),
        ("absent", absent),
    ] {
        if let Some(id) = id {
            timed(&format!("trace id ({name})"), &mut || {
                Ok(db.trace_logs(&id)?.len())
            })?;
        }
    }
    all.sort();
    let summary = json!({
        "corpus": if a.corpus == Corpus::Demo { "demo" } else { "synthetic" },
        "lines": a.lines, "raw_mb": mb, "seconds": wall.as_secs_f64(),
        "flush_seconds": flush_time.as_secs_f64(),
        "lines_per_sec": a.lines as f64 / wall.as_secs_f64(),
        "mb_per_sec": mb / wall.as_secs_f64(),
        "mb_per_cpu_sec": mb / cpu,
        "disk_bytes": disk, "disk_bytes_per_line": disk as f64 / a.lines as f64,
        "disk_share_of_raw": disk as f64 / raw_bytes as f64,
        "distinct_id_bytes_per_line": ids.bytes as f64 / a.lines as f64,
        "distinct_id_share_of_raw": ids.bytes as f64 / raw_bytes as f64,
        "disk_bytes_by_file": by_file,
        "zstd9_text_share_of_raw": text_zstd as f64 / raw_bytes as f64,
        "blocks": db.stats().blocks.len(),
        "query_p50_ms": quantile_ms(&all, 0.5), "query_p99_ms": quantile_ms(&all, 0.99),
        "queries": results,
    });
    print_summary(&summary, a.json);
    db.close()?;
    Ok(())
}
