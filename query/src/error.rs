/// A parse error with its position.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{line}:{col}: parse error: {message}")]
pub struct ParseError {
    /// 1-based line.
    pub line: usize,
    /// 1-based column (in characters).
    pub col: usize,
    /// What is wrong.
    pub message: String,
}

impl ParseError {
    pub(crate) fn at(src: &str, pos: usize, message: String) -> Self {
        let before = &src[..pos.min(src.len())];
        let line = before.matches('\n').count() + 1;
        let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        ParseError { line, col, message }
    }
}

/// Errors of query evaluation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The query does not parse.
    #[error(transparent)]
    Parse(#[from] ParseError),
    /// The storage engine failed.
    #[error(transparent)]
    Storage(#[from] sextant_storage::Error),
    /// Evaluation failed (the message is Prometheus' where it has one).
    #[error("{0}")]
    Eval(String),
    /// A time, offset or range outside what evaluation can represent.
    #[error("{0}")]
    OutOfRange(String),
    /// A query limit (samples, series, traces) was hit: retrying the same
    /// query cannot succeed.
    #[error("{0}")]
    Limit(String),
    /// The query ran past its timeout.
    #[error("{0}")]
    Timeout(String),
}

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
