//! Reads of the current state while another task writes.
//!
//! One writer task asks the counter to add one, back to back; one reader
//! task reads the count, back to back, for the same fixed time. Reads go
//! through [`Counter::read`]: kinesis takes `Handle::snapshot()` (an
//! `Arc<Snapshot>` published after every change); raw tokio loads an
//! `ArcSwap` the actor stores after every change; ractor, kameo and actix
//! have no published state, so the reader asks the actor, queuing behind the
//! writer's messages. The writer is task 0 and the reader task 1 (for
//! actix: the writer on the actor's arbiter, the reader on the other).

use std::hint::black_box;
use std::time::{Duration, Instant};

use crate::frameworks::{Counter, Framework};
use crate::measure::{per_second, Metrics, StopFlag};

/// Runs the workload for `seconds` (after a short warm-up).
///
/// Metrics: `reads_per_s`, and `writes_per_s` of the concurrent writer.
pub fn run<F: Framework>(seconds: f64) -> Metrics {
    F::block_on(async {
        let fw = F::setup().await;
        let actor = fw.start(0, true).await;
        round(&fw, &actor, Duration::from_secs_f64((seconds / 5.0).min(0.3))).await;
        let (reads, writes) = round(&fw, &actor, Duration::from_secs_f64(seconds)).await;
        fw.stop_all(vec![actor]).await;
        vec![("reads_per_s".to_owned(), reads), ("writes_per_s".to_owned(), writes)]
    })
}

/// One timed round: reads and writes per second.
async fn round<F: Framework>(fw: &F, actor: &F::Ref, duration: Duration) -> (f64, f64) {
    let stop = StopFlag::after(duration);
    let started = Instant::now();
    let writer = {
        let (actor, stop) = (actor.clone(), stop.clone());
        fw.spawn(0, async move {
            let mut n = 0u64;
            while !stop.is_raised() {
                black_box(actor.inc().await);
                n += 1;
            }
            n
        })
    };
    let reader = {
        let (actor, stop) = (actor.clone(), stop.clone());
        fw.spawn(1, async move {
            let mut n = 0u64;
            while !stop.is_raised() {
                black_box(actor.read().await);
                n += 1;
            }
            n
        })
    };
    let reads = reader.await;
    let writes = writer.await;
    let elapsed = started.elapsed();
    (per_second(reads, elapsed), per_second(writes, elapsed))
}
