//! The library side of the `kinesis` binary: the demo application it runs
//! and its logging settings. See the `kinesis` binary
//! (`cargo run --features http,filedb`).

pub mod demo;
pub mod logging;
#[cfg(feature = "otel")]
pub mod otel;
