//! The diagnosis crate's one error type.

/// What can go wrong while diagnosing.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A calendar file or setting is invalid.
    #[error(transparent)]
    Calendar(#[from] sextant_calendar::Error),
    /// The request is invalid (a window ending before it starts, too long).
    #[error("{0}")]
    Request(String),
    /// A file of the diagnosis (the incident list) is damaged.
    #[error("{0}")]
    Corrupt(String),
    /// A file of the diagnosis could not be read or written.
    #[error("{0}")]
    Io(String),
    /// The storage engine failed while reading.
    #[error(transparent)]
    Storage(#[from] sextant_storage::Error),
}

/// Results of this crate.
pub type Result<T> = std::result::Result<T, Error>;
