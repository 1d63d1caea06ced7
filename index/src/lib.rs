//! Sextant's index structures. They know nothing of samples or files: the
//! storage engine feeds them (label set, row id) pairs and stores the bytes
//! they serialise inside its checksummed block files.
//!
//! * [`Matcher`]: a label matcher with Prometheus semantics (`=`, `!=`, `=~`,
//!   `!~`; regexes fully anchored; a matcher that accepts the empty string
//!   also accepts series without the label).
//! * [`MemPostings`]: label postings of the mutable head, growing as series
//!   are created.
//! * [`BlockPostings`]: the immutable postings of one block, with its
//!   serialised form ([`BlockPostings::encode`]/[`BlockPostings::decode`]).

#![cfg_attr(not(test), deny(clippy::unwrap_used))]

mod error;
mod matcher;
mod postings;
mod varint;

pub use error::{Error, Result};
pub use matcher::{MatchOp, Matcher};
pub use postings::{BlockPostings, MemPostings, Postings, select};
pub use roaring::RoaringBitmap;
pub use varint::{get_uvarint, put_uvarint};
