//! The crate's one error type.

/// What went wrong with a histogram.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    /// The histogram breaks a rule (schema, bucket order, counts).
    #[error("invalid native histogram: {0}")]
    Invalid(String),
    /// Two histograms cannot be combined (custom buckets with exponential
    /// ones).
    #[error("incompatible native histograms: {0}")]
    Incompatible(String),
    /// The test notation could not be read.
    #[error("histogram notation: {0}")]
    Notation(String),
}

/// Results of this crate.
pub type Result<T> = std::result::Result<T, Error>;
