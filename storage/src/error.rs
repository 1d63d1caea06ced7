use std::path::PathBuf;

/// Errors of the storage engine. Each message says what to change.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The write-ahead log failed.
    #[error(transparent)]
    Wal(#[from] sextant_wal::Error),
    /// A file operation of the block layer failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was attempted.
        op: &'static str,
        /// On which path.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// A label set is not acceptable.
    #[error("invalid labels: {0}")]
    InvalidLabels(String),
    /// A log record or span is not acceptable (nothing of its batch was
    /// stored).
    #[error("invalid record: {0}")]
    InvalidRecord(String),
    /// A label matcher is not acceptable.
    #[error(transparent)]
    Matcher(#[from] sextant_index::Error),
    /// Samples older than the out-of-order window allows. The other samples
    /// of the write were stored.
    #[error(
        "{rejected} sample(s) rejected as too old, e.g. {series} at t={timestamp}: \
         older than the newest sample of the series minus the out-of-order window \
         (oldest accepted t={min_allowed}); {accepted} other sample(s) were stored. \
         Raise the out-of-order window (`ooo_window_ms`, `--ooo-window`) to accept older samples"
    )]
    OutOfOrder {
        /// A rejected series.
        series: String,
        /// A rejected timestamp.
        timestamp: i64,
        /// The oldest timestamp that series would have accepted.
        min_allowed: i64,
        /// How many samples were rejected.
        rejected: usize,
        /// How many samples of the same write were stored.
        accepted: usize,
    },
    /// The head holds as many series as allowed.
    #[error(
        "series limit reached: the head holds {limit} active series; \
         new series are refused until the next flush (raise `max_series`)"
    )]
    TooManySeries {
        /// The configured limit.
        limit: usize,
    },
    /// One write would create more series than its caller allows; nothing
    /// of it was stored.
    #[error(
        "the write would create {new} new series, over the limit of {limit} per write; \
         nothing of it was stored (send fewer new series per request, or raise \
         `max_series_per_write`)"
    )]
    TooManyNewSeries {
        /// Series the write would have created.
        new: usize,
        /// The caller's limit.
        limit: usize,
    },
    /// An earlier write, fsync or flush failed: the database is read-only
    /// until reopened (reopening replays the log and recovers).
    #[error("database is read-only after an earlier failure ({0}); reopen it to recover")]
    Poisoned(String),
    /// Bytes on disk that do not verify or decode.
    #[error(
        "corrupt data: {0}; stop the server and run `sextant repair` to keep what verifies \
         and set the rest aside"
    )]
    Corrupt(String),
    /// The data directory is used by another process.
    #[error("data directory {0} is locked by another process")]
    Locked(PathBuf),
    /// The database was closed.
    #[error("database is closed")]
    Closed,
}

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            op,
            path: path.into(),
            source,
        }
    }
}
