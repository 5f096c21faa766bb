//! The library side of the `kinesis` binary: the demo application it runs.
//! See the `kinesis` binary (`cargo run --features http,filedb`).

pub mod demo;
