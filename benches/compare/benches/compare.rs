//! kinesis side by side with raw tokio, ractor, kameo, actix, bare axum and
//! SQLite. Run by `scripts/bench`, which writes `BENCHMARKS.md`; directly:
//!
//! ```text
//! cargo bench --bench compare -- --runs 5 --seconds 1 --only ask,idle
//! ```
//!
//! See the library's [`cli`](kinesis_compare::cli) module for the options.

fn main() {
    kinesis_compare::cli::main();
}
