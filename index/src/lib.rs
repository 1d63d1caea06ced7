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
//! * [`text`]: the tokenizer, query language and the paged index (and, for
//!   old blocks, the Tantivy index) for full-text search of log bodies.
//! * [`Ascending`]: a short ascending list with its first value inline.
//! * [`Bloom`]: a filter that lets a lookup skip blocks lacking a key.

#![cfg_attr(not(test), deny(clippy::unwrap_used))]

mod ascending;
mod bloom;
mod elias_fano;
mod error;
mod matcher;
mod postings;
pub mod text;
mod varint;

pub use ascending::Ascending;
pub use bloom::Bloom;
pub use error::{Error, Result};
pub use matcher::{MatchOp, Matcher};
pub use postings::{BlockPostings, MemPostings, Postings, select};
pub use roaring::RoaringBitmap;
pub use varint::{get_uvarint, put_uvarint};
