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
    /// A native histogram is not acceptable (nothing of its batch was
    /// stored).
    #[error("invalid histogram of {series} at t={t}: {reason}")]
    InvalidHistogram {
        /// The series.
        series: String,
        /// The sample's timestamp.
        t: i64,
        /// What is wrong with it.
        reason: String,
    },
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
    /// Bytes on disk that do not verify or decode: which file, where in
    /// it when known, and what is wrong (what a person or a repair needs).
    #[error(
        "corrupt data{}: {reason}; stop the server and run `sextant repair` to keep what \
         verifies and set the rest aside",
        place(file, *offset)
    )]
    Corrupt {
        /// The file (empty when the bytes were not read from one).
        file: PathBuf,
        /// Byte offset in the file, when known.
        offset: Option<u64>,
        /// What does not verify or decode.
        reason: String,
    },
    /// The data directory is used by another process.
    #[error("data directory {0} is locked by another process")]
    Locked(PathBuf),
    /// The database was closed.
    #[error("database is closed")]
    Closed,
}

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// ` in FILE at offset N` of a corruption message.
fn place(file: &std::path::Path, offset: Option<u64>) -> String {
    let mut s = String::new();
    if !file.as_os_str().is_empty() {
        s = format!(" in {}", file.display());
    }
    if let Some(o) = offset {
        s += &format!(" at offset {o}");
    }
    s
}

impl Error {
    /// Corruption in `file`.
    pub(crate) fn corrupt(file: impl Into<PathBuf>, reason: impl std::fmt::Display) -> Self {
        Error::Corrupt {
            file: file.into(),
            offset: None,
            reason: reason.to_string(),
        }
    }

    /// The same error, placed at `offset` if it is a corruption.
    pub(crate) fn at(mut self, at: u64) -> Self {
        if let Error::Corrupt { offset, .. } = &mut self {
            offset.get_or_insert(at);
        }
        self
    }

    /// The same error, naming `path` if it is a corruption found in bytes
    /// whose file the decoder did not know.
    pub(crate) fn in_file(mut self, path: &std::path::Path) -> Self {
        if let Error::Corrupt { file, .. } = &mut self
            && file.as_os_str().is_empty()
        {
            *file = path.to_path_buf();
        }
        self
    }

    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            op,
            path: path.into(),
            source,
        }
    }
}
