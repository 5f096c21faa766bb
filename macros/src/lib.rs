//! Procedural macros of kinesis. Use them through the `kinesis` crate.
