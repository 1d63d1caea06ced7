//! Sextant's write-ahead log.
//!
//! Every acknowledged write of the database is first a record in this log, so
//! that a crash between acknowledgement and the next block flush loses
//! nothing. The log is a directory of fixed-size *segments*; a record never
//! spans two segments. Each record is framed with its length, a separate
//! check of that length (so a torn length is caught before garbage is read),
//! a type byte and a CRC32C of the payload. See `docs/format.md`.
//!
//! All file access goes through [`Vfs`], the one I/O seam of the engine, so
//! tests can swap in [`FaultFs`] and fail or tear the Nth write or fsync,
//! or [`CrashFs`] and cut the power, keeping only what was made durable.

#![cfg_attr(not(test), deny(clippy::unwrap_used))]

mod crash_fs;
mod error;
mod fault;
mod frame;
mod fs;
mod log;
mod segment;

pub use crash_fs::CrashFs;
pub use error::{Error, Result};
pub use fault::{FaultFs, FaultPlan};
pub use frame::{FRAME_HEADER_LEN, MAX_RECORD_LEN, mask_crc, masked_crc};
pub use fs::{FileWrite, Mapped, StdFs, Vfs, create_dir_durable, replace_file_durable};
pub use log::{
    Durability, Options, Record, RepairReport, ReplayStats, SegmentRepair, SyncStats, Wal,
};
pub use segment::{list_segments, segment_path};
