//! Automatic diagnosis over the three signals Sextant stores: it knows the
//! estate's normal (an exchange calendar and seasonal baselines), builds
//! the service graph from spans, mines log templates, and ranks root-cause
//! candidates with the evidence for each. It reads through the storage
//! engine's public read paths; nothing below it knows it exists.

mod error;
pub mod graph;
mod read;
pub mod sketch;
pub mod templates;

pub use error::{Error, Result};
pub use graph::ServiceGraph;
pub use read::{MAX_SPANS, MAX_WINDOW_MS, check_window, service_graph};
pub use sextant_calendar::{self as calendar, Calendar, Day, DayKind, Moment, Session};
