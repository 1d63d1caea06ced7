/// Errors of the index structures.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A regex matcher that does not compile.
    #[error("invalid regex in matcher {name}=~{pattern:?}: {reason}")]
    Regex {
        /// Label name of the matcher.
        name: String,
        /// The pattern as given.
        pattern: String,
        /// What the regex compiler said.
        reason: String,
    },
    /// A full-text query that does not parse.
    #[error("invalid text query {query:?} at byte {pos}: {reason}")]
    TextQuery {
        /// The query as given.
        query: String,
        /// Byte offset of the problem.
        pos: usize,
        /// What is wrong, and what would be right.
        reason: String,
    },
    /// The full-text index (Tantivy) failed to write or read.
    #[error("full-text index: {0}")]
    Text(String),
    /// Serialised postings that do not decode.
    #[error("corrupt postings: {0}")]
    Corrupt(&'static str),
}

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
