//! The `sextant` binary's code as a library: the server (`serve`), the
//! command-line tools (`cli`) and the OpenMetrics reader, so integration
//! tests and fuzz targets can reach the request decoders directly.

pub mod cli;
pub mod openmetrics;
pub mod serve;
