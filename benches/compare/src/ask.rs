//! Ask round trips: send a message, await the reply.
//!
//! * [`Scenario::Sequential`]: one caller, running as a task on the
//!   runtime (as a request handler would), asks one actor back to back for
//!   a fixed time.
//! * [`Scenario::Concurrent`]: 64 caller tasks ask one actor for a fixed time.
//! * [`Scenario::Many`]: 64 caller tasks ask 1,000 actors, each exactly
//!   1,000 times (1,000,000 asks; caller `c` makes asks `c, c + 64, …` of
//!   the sequence, and ask `j` goes to actor `j % 1000`).
//!
//! Each run starts with a short warm-up of the same shape.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::frameworks::{Counter, Framework};
use crate::measure::{per_second, Metrics, StopFlag};

/// Callers of the concurrent scenarios.
pub const CALLERS: usize = 64;
/// Actors of [`Scenario::Many`].
pub const MANY_ACTORS: usize = 1_000;
/// Asks each actor gets in [`Scenario::Many`].
pub const ASKS_PER_ACTOR: usize = 1_000;

/// The ask scenarios.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scenario {
    /// One caller, one actor.
    Sequential,
    /// 64 callers, one actor.
    Concurrent,
    /// 64 callers, 1,000 actors, 1,000 asks each.
    Many,
}

impl Scenario {
    /// Every scenario, in report order.
    pub const ALL: [Scenario; 3] = [Scenario::Sequential, Scenario::Concurrent, Scenario::Many];

    /// The command-line name.
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Sequential => "seq",
            Scenario::Concurrent => "c64",
            Scenario::Many => "a1000",
        }
    }

    /// The scenario called `name`.
    pub fn parse(name: &str) -> Option<Scenario> {
        Scenario::ALL.into_iter().find(|s| s.name() == name)
    }

    /// How the report describes it.
    pub fn title(self) -> &'static str {
        match self {
            Scenario::Sequential => "1 caller, 1 actor",
            Scenario::Concurrent => "64 callers, 1 actor",
            Scenario::Many => "64 callers, 1,000 actors × 1,000 asks",
        }
    }
}

/// Runs `scenario` for framework `F` in this process; `seconds` is the
/// measured time of the timed scenarios. Metrics: `asks_per_s`, and `asks`
/// (the count measured, without the warm-up).
pub fn run<F: Framework>(scenario: Scenario, seconds: f64) -> Metrics {
    F::block_on(async {
        let fw = F::setup().await;
        let duration = Duration::from_secs_f64(seconds);
        let warm_up = Duration::from_secs_f64((seconds / 5.0).min(0.3));
        let (asks, elapsed) = match scenario {
            Scenario::Sequential | Scenario::Concurrent => {
                let callers = if scenario == Scenario::Sequential { 1 } else { CALLERS };
                let actor = fw.start(0, false).await;
                timed(&fw, &actor, callers, warm_up).await;
                let (asks, elapsed) = timed(&fw, &actor, callers, duration).await;
                fw.stop_all(vec![actor]).await;
                (asks, elapsed)
            }
            Scenario::Many => {
                let mut actors = Vec::with_capacity(MANY_ACTORS);
                for i in 0..MANY_ACTORS {
                    actors.push(fw.start(i, false).await);
                }
                many(&fw, &actors, ASKS_PER_ACTOR / 10).await;
                let (asks, elapsed) = many(&fw, &actors, ASKS_PER_ACTOR).await;
                fw.stop_all(actors).await;
                (asks, elapsed)
            }
        };
        vec![("asks_per_s".to_owned(), per_second(asks, elapsed)), ("asks".to_owned(), asks as f64)]
    })
}

/// `callers` tasks ask `actor` back to back for `duration`; asks made and
/// the time taken.
async fn timed<F: Framework>(
    fw: &F,
    actor: &F::Ref,
    callers: usize,
    duration: Duration,
) -> (u64, Duration) {
    let stop = StopFlag::after(duration);
    let started = Instant::now();
    let tasks: Vec<_> = (0..callers)
        .map(|c| {
            let (actor, stop) = (actor.clone(), stop.clone());
            fw.spawn(c, async move {
                let mut n = 0u64;
                while !stop.is_raised() {
                    black_box(actor.inc().await);
                    n += 1;
                }
                n
            })
        })
        .collect();
    let mut total = 0;
    for t in tasks {
        total += t.await;
    }
    (total, started.elapsed())
}

/// [`CALLERS`] tasks make `per_actor` asks of each actor; asks made and the
/// time taken.
async fn many<F: Framework>(fw: &F, actors: &[F::Ref], per_actor: usize) -> (u64, Duration) {
    let total = actors.len() * per_actor;
    let actors: Arc<[F::Ref]> = actors.into();
    let started = Instant::now();
    let tasks: Vec<_> = (0..CALLERS)
        .map(|c| {
            let actors = Arc::clone(&actors);
            fw.spawn(c, async move {
                let mut j = c;
                while j < total {
                    black_box(actors[j % actors.len()].inc().await);
                    j += CALLERS;
                }
            })
        })
        .collect();
    for t in tasks {
        t.await;
    }
    (total as u64, started.elapsed())
}
