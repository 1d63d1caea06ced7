//! Subcommands of the `sextant` binary, one module each.

pub mod bench;
pub mod import;
pub mod promql_test;
pub mod repair;
pub mod stats;

/// Errors of the command-line tools.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The storage engine refused.
    #[error(transparent)]
    Storage(#[from] sextant_storage::Error),
    /// The WAL tools refused.
    #[error(transparent)]
    Wal(#[from] sextant_wal::Error),
    /// Reading an input file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// What went wrong.
        source: std::io::Error,
    },
    /// An input line that does not parse.
    #[error("{path}:{line}: {message}")]
    Parse {
        /// The file.
        path: String,
        /// 1-based line number.
        line: u64,
        /// What is wrong with it.
        message: String,
    },
    /// Bad arguments.
    #[error("{0}")]
    Usage(String),
}

/// Result of a subcommand.
pub type CliResult = Result<(), CliError>;
