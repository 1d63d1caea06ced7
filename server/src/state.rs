//! What every request handler shares: the database, the resolved settings,
//! the query slots and the server's own metrics.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use sextant_storage::Db;
use tokio::sync::{Semaphore, SemaphorePermit};

use super::config::Config;
use super::error::{ApiError, ApiResult, Kind};
use super::otlp::metrics::DeltaTotals;
use super::remote_write::LabelCache;
use super::self_metrics::SelfMetrics;

/// Label sets the remote_write cache keeps (~300 bytes each).
const LABEL_CACHE_SIZE: usize = 2_000_000;

/// Type, help and unit of a metric family, as remote_write and OTLP send
/// them (served by `/api/v1/metadata`; kept in memory, newest wins).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricMeta {
    /// `counter`, `gauge`, `histogram`, `summary`, …
    pub kind: String,
    /// Description.
    pub help: String,
    /// Unit.
    pub unit: String,
}

/// Shared server state.
pub struct State {
    /// The database.
    pub db: Arc<Db>,
    /// Settings.
    pub cfg: Config,
    /// One permit per concurrently running query.
    queries: Semaphore,
    /// Write slots: see [`State::write_slot`].
    writes: Semaphore,
    /// Counters and histograms for `/metrics`.
    pub metrics: SelfMetrics,
    /// Metric metadata by family name.
    pub metadata: Mutex<BTreeMap<String, MetricMeta>>,
    /// Running totals of OTLP delta sums and histograms.
    pub delta_totals: DeltaTotals,
    /// remote_write label sets by a hash of their encoded label fields.
    pub label_cache: LabelCache,
    /// Incidents of the continuous diagnosis.
    pub incidents: Mutex<sextant_diagnose::Incidents>,
}

impl State {
    /// State over an open database (loading its incident list).
    pub fn new(db: Arc<Db>, cfg: Config) -> ApiResult<Arc<State>> {
        let incidents = sextant_diagnose::Incidents::in_dir(&cfg.data_dir)?;
        Ok(Arc::new(State {
            db,
            queries: Semaphore::new(cfg.max_concurrent_queries),
            writes: Semaphore::new(cfg.max_concurrent_writes),
            cfg,
            metrics: SelfMetrics::default(),
            metadata: Mutex::new(BTreeMap::new()),
            delta_totals: DeltaTotals::default(),
            label_cache: LabelCache::new(LABEL_CACHE_SIZE),
            incidents: Mutex::new(incidents),
        }))
    }

    /// Runs blocking engine work off the async threads.
    pub async fn blocking<T, F>(self: &Arc<Self>, f: F) -> ApiResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&State) -> ApiResult<T> + Send + 'static,
    {
        let me = Arc::clone(self);
        tokio::task::spawn_blocking(move || {
            let out = f(&me);
            crate::alloc::release_now_and_then();
            out
        })
        .await
        .map_err(|e| ApiError::new(Kind::Internal, format!("request task failed: {e}")))?
    }

    /// Runs a query in one of the query slots, waiting for a slot at most
    /// the query timeout, and records its latency.
    pub async fn query<T, F>(self: &Arc<Self>, f: F) -> ApiResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&State) -> ApiResult<T> + Send + 'static,
    {
        let wait = self.cfg.query.timeout.unwrap_or(Duration::from_secs(120));
        let Some(_permit) = permit(&self.queries, wait).await else {
            return Err(ApiError::new(
                Kind::TooManyRequests,
                format!(
                    "all {} query slots stayed busy for {wait:?}; retry later or raise \
                     --max-concurrent-queries",
                    self.cfg.max_concurrent_queries
                ),
            ));
        };
        let t0 = Instant::now();
        let res = self.blocking(f).await;
        self.metrics.query.observe(t0.elapsed());
        if res.is_err() {
            self.metrics
                .query_failed
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        res
    }

    /// Waits for one of `--max-concurrent-writes` slots; a write request
    /// takes it before its body is read. When ingest outruns the disk,
    /// requests queue here with their bodies unread (the senders' TCP
    /// windows fill: backpressure), so memory stays bounded by the slots
    /// times the body limits. After `--max-write-wait` the answer is 503 /
    /// UNAVAILABLE, which remote_write and OTLP senders retry.
    pub async fn write_slot(&self) -> ApiResult<SemaphorePermit<'_>> {
        let wait = self.cfg.max_write_wait;
        let Some(p) = permit(&self.writes, wait).await else {
            self.metrics
                .writes_refused
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            return Err(ApiError::new(
                Kind::Unavailable,
                format!(
                    "all {} write slots stayed busy for {wait:?}: ingest is outrunning the \
                     disk; retry with backoff, or raise --max-concurrent-writes",
                    self.cfg.max_concurrent_writes
                ),
            ));
        };
        Ok(p)
    }

    /// Write slots taken now.
    pub fn writes_in_progress(&self) -> usize {
        self.cfg
            .max_concurrent_writes
            .saturating_sub(self.writes.available_permits())
    }

    /// Records metadata of metric families.
    pub fn note_metadata(&self, items: impl IntoIterator<Item = (String, MetricMeta)>) {
        let mut m = self.metadata.lock();
        for (name, meta) in items {
            if m.get(&name) != Some(&meta) {
                m.insert(name, meta);
            }
        }
    }
}

/// A permit of `sem`, waiting at most `wait`; `None` if none freed up.
async fn permit(sem: &Semaphore, wait: Duration) -> Option<SemaphorePermit<'_>> {
    tokio::time::timeout(wait, sem.acquire()).await.ok()?.ok()
}
