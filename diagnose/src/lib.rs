//! Automatic diagnosis over the three signals Sextant stores: it knows the
//! estate's normal (an exchange calendar and seasonal baselines), builds
//! the service graph from spans, mines log templates, and ranks root-cause
//! candidates with the evidence for each. It reads through the storage
//! engine's public read paths; nothing below it knows it exists.

mod detect;
mod engine;
mod error;
mod evidence;
pub mod graph;
pub mod incidents;
mod metrics;
mod profile;
mod rank;
mod read;
pub mod report;
pub mod sketch;
pub mod templates;

pub use engine::{BASELINE_WINDOWS, LOOKBACK_DAYS, MAX_DIAGNOSE_WINDOW_MS, diagnose};
pub use error::{Error, Result};
pub use graph::ServiceGraph;
pub use incidents::{Change, Incident, Incidents};
pub use read::{MAX_SPANS, MAX_WINDOW_MS, check_window, service_graph};
pub use report::{Cause, DiagnoseRequest, Diagnosis};
pub use sextant_calendar::{self as calendar, Calendar, Day, DayKind, Moment, Session};
