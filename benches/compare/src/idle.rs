//! Idle actors: spawn 100,000 counter actors one after the other (each
//! ready to take messages before the next is started), then stop them all
//! and wait until every one is gone. Both run in a task on the runtime (for
//! actix: on the system arbiter), as an application's own code would.
//!
//! Resident memory is read from `/proc/self/statm` just before the first
//! spawn and after the last (once the runtime settled for 100 ms); the
//! difference divided by the count is the memory per idle actor, including
//! the reference the benchmark keeps to it (8–24 bytes) and the actor's
//! state (a `u64`). Each framework runs in a fresh process.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::frameworks::Framework;
use crate::measure::{resident_bytes, Metrics};

/// Idle actors spawned per run.
pub const COUNT: usize = 100_000;

/// The environment variable that changes the count (for profiling a
/// smaller run); the report always uses [`COUNT`].
pub const COUNT_ENV: &str = "COMPARE_IDLE_COUNT";

/// [`COUNT`], or the count [`COUNT_ENV`] sets.
pub fn count_from_env() -> usize {
    std::env::var(COUNT_ENV).ok().and_then(|v| v.parse().ok()).filter(|n| *n > 0).unwrap_or(COUNT)
}

/// How long the runtime settles before memory is read.
const SETTLE: Duration = Duration::from_millis(100);

/// Spawns and stops `count` actors of `F` in this process.
///
/// Metrics: `spawn_s`, `stop_s`, `total_s` (spawn + stop), `bytes_per_actor`.
/// `report` is called with the spawn figures before the stop begins, so a
/// stop that never ends still leaves them behind.
pub fn run<F: Framework>(count: usize, report: fn(&Metrics)) -> Metrics {
    F::block_on(async {
        let fw = Arc::new(F::setup().await);
        let worker = Arc::clone(&fw);
        // On a runtime thread, as an application spawning its components.
        fw.spawn(0, async move {
            let fw = worker;
            let mut refs = Vec::with_capacity(count);
            tokio::time::sleep(SETTLE).await;
            let before = resident_bytes();
            let started = Instant::now();
            for i in 0..count {
                refs.push(fw.start(i, false).await);
            }
            let spawn = started.elapsed();
            tokio::time::sleep(SETTLE).await;
            let after = resident_bytes();
            let per_actor = after.saturating_sub(before) as f64 / count as f64;
            let mut metrics = vec![
                ("spawn_s".to_owned(), spawn.as_secs_f64()),
                ("bytes_per_actor".to_owned(), per_actor),
            ];
            report(&metrics);
            let stopping = Instant::now();
            fw.stop_all(refs).await;
            let stop = stopping.elapsed();
            metrics.push(("stop_s".to_owned(), stop.as_secs_f64()));
            metrics.push(("total_s".to_owned(), (spawn + stop).as_secs_f64()));
            metrics
        })
        .await
    })
}
