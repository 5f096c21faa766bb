//! kinesis side by side with the alternatives users would pick instead,
//! measured in one run on one machine: the figures of `BENCHMARKS.md`.
//!
//! * [`ask`]: request/reply round trips — one sequential caller, 64
//!   concurrent callers on one actor, 64 callers over 1,000 actors — for
//!   kinesis, raw tokio (`mpsc` + `oneshot`, the floor), ractor, kameo and
//!   actix.
//! * [`idle`]: spawning 100,000 idle actors, then stopping them all: time and
//!   resident memory per actor.
//! * [`snapshot`]: reads of the current state per second while another task
//!   writes.
//! * [`http`]: HTTP load on 127.0.0.1 (GET, POST of a mutating method, PUT
//!   with `If-Match`) against kinesis-http and a bare axum service.
//! * [`persist`]: persisted writes through the file store (fsync) and
//!   through SQLite (WAL) with sqlx.
//!
//! Every measurement runs in a fresh child process (the bench binary
//! re-executes itself, see [`cli`]), so allocations, threads and runtimes of
//! one framework never mix with another's. [`report`] turns the samples
//! into Markdown. Run everything with `scripts/bench` from the repository
//! root.

pub mod ask;
pub mod cli;
pub mod frameworks;
pub mod http;
pub mod idle;
pub mod measure;
pub mod persist;
pub mod report;
pub mod snapshot;

/// Worker threads of every runtime in these benchmarks (actix: two arbiters).
pub const WORKERS: usize = 2;

/// A multi-thread tokio runtime with [`WORKERS`] workers and all drivers.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(WORKERS)
        .enable_all()
        .build()
        .expect("tokio runtime")
}
