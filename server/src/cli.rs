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
    /// A query did not parse.
    #[error(transparent)]
    QueryParse(#[from] sextant_query::ParseError),
    /// A query failed.
    #[error(transparent)]
    Query(#[from] sextant_query::Error),
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
    /// The command ran but what it checked failed (scripts and CI read
    /// the exit status).
    #[error("{0}")]
    Failed(String),
}

/// Result of a subcommand.
pub type CliResult = Result<(), CliError>;

/// Parses a durability setting: `always`, `never` or `interval:MS`.
pub fn parse_durability(what: &str, s: &str) -> Result<sextant_storage::Durability, CliError> {
    use sextant_storage::Durability;
    match s {
        "always" => Ok(Durability::Always),
        "never" => Ok(Durability::Never),
        _ => s
            .strip_prefix("interval:")
            .and_then(|ms| ms.parse().ok())
            .map(|ms| Durability::Interval(std::time::Duration::from_millis(ms)))
            .ok_or_else(|| {
                CliError::Usage(format!(
                    "{what} {s:?}: expected always, never or interval:MS"
                ))
            }),
    }
}
