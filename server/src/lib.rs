//! The `sextant` binary's code as a library: the server (`serve`), the
//! demo system (`demo`), the command-line tools (`cli`) and the
//! OpenMetrics reader, so integration tests and fuzz targets can reach the
//! request decoders and the simulator directly.

pub mod alloc;
pub mod cli;
pub mod demo;
pub mod openmetrics;
pub mod serve;
