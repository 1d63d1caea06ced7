use std::io;
use std::path::PathBuf;

/// Errors of the write-ahead log.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file-system call failed. `op` names the call so the message says
    /// what to look at (disk full, permissions, a dying device).
    #[error("WAL {op} {path}: {source}")]
    Io {
        /// The operation that failed (`write`, `fsync`, `rename`, ...).
        op: &'static str,
        /// The file or directory it was applied to.
        path: PathBuf,
        /// The operating system's error.
        source: io::Error,
    },
    /// A record before the tail of the log does not verify; `sextant
    /// repair` drops the damaged records and keeps every intact one.
    #[error(
        "WAL corruption in segment {segment} at offset {offset}: {reason}; \
         run `sextant repair` to drop the damaged records (every intact record is kept)"
    )]
    Corrupt {
        /// Segment number (its file is `<segment:020>.wal`).
        segment: u64,
        /// Byte offset of the first bad frame inside the segment.
        offset: u64,
        /// What did not verify.
        reason: String,
    },
    /// An earlier write or fsync failed. An fsync that failed cannot be
    /// retried safely (the kernel may have dropped the dirty pages), so the
    /// log refuses all further writes until it is reopened, which replays
    /// what is really on disk.
    #[error("WAL is read-only after an earlier I/O error ({0}); reopen the database to recover")]
    Poisoned(String),
    /// A record larger than a segment can hold.
    #[error("WAL record of {len} bytes exceeds the limit of {max} bytes")]
    RecordTooLarge {
        /// Size asked for.
        len: usize,
        /// The largest record a segment accepts.
        max: usize,
    },
    /// The replay callback refused a record.
    #[error("WAL replay of segment {segment} at offset {offset}: {message}")]
    Replay {
        /// Segment of the refused record.
        segment: u64,
        /// Offset of the refused record.
        offset: u64,
        /// The callback's reason.
        message: String,
    },
}

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        Error::Io {
            op,
            path: path.into(),
            source,
        }
    }
}
