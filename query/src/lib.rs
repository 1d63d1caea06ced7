//! Sextant's query language: PromQL today (parser, printer, evaluator over
//! `storage`, and a runner for Prometheus' own test scripts), with the
//! cross-signal extensions of issue 6 to come. Parsing is separate from
//! evaluation so the extended language can reuse both.

pub mod ast;
mod error;
mod lexer;
mod parser;
pub mod types;

pub use error::{Error, ParseError, Result};
pub use lexer::parse_duration;
pub use parser::{parse, value_type};
mod aggregate;
mod binary;
mod engine;
mod functions;
mod range_series;
pub mod value;

pub use engine::{Engine, EngineOptions};
pub mod promqltest;
