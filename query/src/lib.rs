//! Sextant's query language: PromQL (parser, printer, evaluator over
//! `storage`, and a runner for Prometheus' own test scripts) extended with
//! log and span selectors, records → series functions, trace lookups and
//! joins across records ([`selector`]; docs/query-language.md).

pub mod ast;
pub mod calendar;
mod error;
mod lexer;
mod parser;
pub mod types;
mod typing;

pub use error::{Error, ParseError, Result};
pub use lexer::parse_duration;
pub use parser::{DurationContext, parse, parse_with};

/// How an annotation that is information, not a warning, begins (the
/// HTTP API lists those under `infos`).
pub const INFO_PREFIX: &str = "PromQL info:";
pub use typing::value_type;
mod aggregate;
mod binary;
mod engine;
mod functions;
mod info;
mod native;
mod range_series;
pub mod records;
pub mod value;

pub use engine::{Answer, Engine, EngineOptions, MAX_POINTS, When, check_range};

/// Stack a thread needs to parse and evaluate any query the parser
/// accepts (trees are at most 256 levels high; measured with room to
/// spare in debug builds, whose frames are the largest). Threads that run
/// queries for others (the server's) are started with this much.
pub const STACK_BYTES: usize = 16 << 20;
pub mod promqltest;
