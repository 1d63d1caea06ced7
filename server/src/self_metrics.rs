//! Sextant's own metrics, served at `/metrics` in the Prometheus text
//! format, so the server can be scraped like any other target (and, through
//! remote_write, by itself).

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use sextant_storage::Db;

/// Upper bounds (seconds) of the latency histograms.
const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0, 30.0,
];

/// A fixed-bucket latency histogram updated without locks.
#[derive(Default)]
pub struct Histogram {
    counts: [AtomicU64; BUCKETS.len() + 1],
    sum_us: AtomicU64,
}

impl Histogram {
    /// Records one observation.
    pub fn observe(&self, d: Duration) {
        let s = d.as_secs_f64();
        let i = BUCKETS
            .iter()
            .position(|&b| s <= b)
            .unwrap_or(BUCKETS.len());
        self.counts[i].fetch_add(1, Relaxed);
        self.sum_us.fetch_add(d.as_micros() as u64, Relaxed);
    }

    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let mut cum = 0;
        let sep = if labels.is_empty() { "" } else { "," };
        for (i, b) in BUCKETS.iter().enumerate() {
            cum += self.counts[i].load(Relaxed);
            let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"{b}\"}} {cum}");
        }
        cum += self.counts[BUCKETS.len()].load(Relaxed);
        let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {cum}");
        let sum = self.sum_us.load(Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{name}_sum{{{labels}}} {sum}");
        let _ = writeln!(out, "{name}_count{{{labels}}} {cum}");
    }
}

/// Counters of one ingest protocol.
#[derive(Default)]
pub struct Ingest {
    /// Requests accepted.
    pub requests: AtomicU64,
    /// Requests refused (any 4xx/5xx).
    pub failed: AtomicU64,
    /// Samples stored.
    pub samples: AtomicU64,
    /// Log records stored.
    pub logs: AtomicU64,
    /// Spans stored.
    pub spans: AtomicU64,
    /// Time spent storing a request (WAL fsync included).
    pub latency: Histogram,
}

/// Every metric of the server.
#[derive(Default)]
pub struct SelfMetrics {
    /// Prometheus remote_write.
    pub remote_write: Ingest,
    /// OTLP over gRPC or HTTP.
    pub otlp: Ingest,
    /// Instant and range queries.
    pub query: Histogram,
    /// Queries that failed.
    pub query_failed: AtomicU64,
    /// Series created by writes.
    pub series_created: AtomicU64,
    /// Writes answered 503 because no write slot freed up in time.
    pub writes_refused: AtomicU64,
}

impl SelfMetrics {
    /// The text exposition of all metrics plus the engine's state and
    /// the write slots in use (saturation: ingest outrunning the disk).
    pub fn render(&self, db: &Db, writes_in_progress: usize) -> String {
        let mut out = String::new();
        let protocols = [("remote_write", &self.remote_write), ("otlp", &self.otlp)];
        type Field = fn(&Ingest) -> &AtomicU64;
        let counters: [(&str, Field); 5] = [
            ("sextant_ingest_requests_total", |i| &i.requests),
            ("sextant_ingest_failed_requests_total", |i| &i.failed),
            ("sextant_ingest_samples_total", |i| &i.samples),
            ("sextant_ingest_logs_total", |i| &i.logs),
            ("sextant_ingest_spans_total", |i| &i.spans),
        ];
        for (name, field) in counters {
            let _ = writeln!(out, "# TYPE {name} counter");
            for (proto, ing) in protocols {
                let v = field(ing).load(Relaxed);
                let _ = writeln!(out, "{name}{{protocol=\"{proto}\"}} {v}");
            }
        }
        let _ = writeln!(out, "# TYPE sextant_ingest_duration_seconds histogram");
        for (proto, ing) in protocols {
            let l = format!("protocol=\"{proto}\"");
            ing.latency
                .render(&mut out, "sextant_ingest_duration_seconds", &l);
        }
        let _ = writeln!(out, "# TYPE sextant_query_duration_seconds histogram");
        self.query
            .render(&mut out, "sextant_query_duration_seconds", "");
        let plain = [
            ("sextant_query_failed_total", &self.query_failed),
            ("sextant_series_created_total", &self.series_created),
            ("sextant_writes_refused_total", &self.writes_refused),
        ];
        for (name, v) in plain {
            let _ = writeln!(out, "# TYPE {name} counter\n{name} {}", v.load(Relaxed));
        }
        let s = db.stats();
        let gauges = [
            ("sextant_head_series", s.head_series),
            ("sextant_head_samples", s.head_samples),
            ("sextant_head_bytes", s.head_bytes),
            ("sextant_head_logs", s.head_logs),
            ("sextant_head_spans", s.head_spans),
            ("sextant_blocks", s.blocks.len() as u64),
            ("sextant_block_bytes", s.block_bytes()),
            ("sextant_block_samples", s.block_samples()),
            ("sextant_wal_bytes", s.wal_bytes),
            ("sextant_writes_in_progress", writes_in_progress as u64),
        ];
        for (name, v) in gauges {
            let _ = writeln!(out, "# TYPE {name} gauge\n{name} {v}");
        }
        // Average fsync latency = rate(seconds) / rate(fsyncs).
        let _ = writeln!(
            out,
            "# TYPE sextant_wal_fsyncs_total counter\nsextant_wal_fsyncs_total {}\n\
             # TYPE sextant_wal_fsync_seconds_total counter\nsextant_wal_fsync_seconds_total {}",
            s.wal_sync.fsyncs,
            s.wal_sync.fsync_us as f64 / 1e6
        );
        out
    }
}
