//! Supervision: restarts of failing tasks, the intensity limit, escalation.
//!
//! Every test runs on paused time: backoffs and the tasks' working time are
//! virtual, and the clock moves only when nothing else can run, so "nothing
//! more happens within a second" is checked deterministically, not by
//! hoping the wall clock was long enough.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use kinesis::{Component, Container, Context, Error, RestartPolicy, Result, Stage};
use serde::{Deserialize, Serialize};

/// Spawns a task on every start that fails (or ends) after a moment.
#[derive(Clone, Default, Serialize, Deserialize)]
struct Worker {
    #[serde(skip)]
    starts: Arc<AtomicU32>,
    #[serde(skip)]
    fail_first: u32,
    #[serde(skip)]
    task_ends_normally: bool,
    #[serde(skip)]
    policy: Option<RestartPolicy>,
}

impl Component for Worker {
    async fn start(&mut self, ctx: &mut Context<Self>) -> Result<()> {
        let n = self.starts.fetch_add(1, Ordering::SeqCst) + 1;
        let fail = n <= self.fail_first;
        let normal = self.task_ends_normally;
        ctx.spawn(async move {
            tokio::time::sleep(Duration::from_millis(5)).await;
            if fail {
                Err(Error::handler(format!("task of run {n} failed")))
            } else if normal {
                Ok(())
            } else {
                std::future::pending().await
            }
        });
        Ok(())
    }
    fn restart_policy(&self) -> RestartPolicy {
        self.policy.unwrap_or_default()
    }
}

/// Polls `done` every 10 ms for up to 10 s (of paused time).
async fn eventually(mut done: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !done() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Lets a second of paused time pass: everything due in it (backoffs of at
/// most 4 ms, tasks that fail after 5 ms) runs before this returns, so a
/// wrong extra restart would show.
async fn a_second_passes() {
    tokio::time::sleep(Duration::from_secs(1)).await;
}

fn quick(policy: RestartPolicy) -> RestartPolicy {
    policy.with_backoff(Duration::from_millis(1), Duration::from_millis(4))
}

/// A task that fails twice restarts its component twice (`OnFailure`); once
/// a run works, no further restart happens and nothing escalates.
#[tokio::test(start_paused = true)]
async fn a_failing_task_restarts_the_component_until_it_runs() {
    let root = Container::root().await.unwrap();
    let starts = Arc::new(AtomicU32::new(0));
    let w = Worker {
        starts: starts.clone(),
        fail_first: 2,
        policy: Some(quick(RestartPolicy::on_failure())),
        ..Default::default()
    };
    let h = root.add("w", w).await.unwrap();
    eventually(|| starts.load(Ordering::SeqCst) >= 3).await;
    // Give a wrong extra restart the chance to show.
    a_second_passes().await;
    assert_eq!(starts.load(Ordering::SeqCst), 3);
    assert_eq!(h.stage(), Stage::Started);
    assert!(root.failures().is_empty());
    root.shutdown().await.unwrap();
}

/// Past its intensity limit (3 restarts in 60 s) a failing component stops
/// for good and its last failure is reported to its container.
#[tokio::test(start_paused = true)]
async fn a_component_that_fails_forever_stops_after_the_intensity_limit_and_escalates() {
    let root = Container::root().await.unwrap();
    let starts = Arc::new(AtomicU32::new(0));
    let w = Worker {
        starts: starts.clone(),
        fail_first: u32::MAX,
        policy: Some(quick(RestartPolicy::on_failure()).restart_limit(3, Duration::from_secs(60))),
        ..Default::default()
    };
    let h = root.add("w", w).await.unwrap();
    tokio::time::timeout(Duration::from_secs(5), h.wait_for_stage(Stage::TornDown)).await.unwrap();
    assert_eq!(starts.load(Ordering::SeqCst), 4, "the first run and 3 restarts");
    let failures = root.failures();
    assert_eq!(failures.len(), 1);
    assert!(failures[0].error.contains("task of run 4 failed"), "{failures:?}");
    assert!(root.names().is_empty());
    root.shutdown().await.unwrap();
}

/// `Always` restarts after a task ends normally (up to its limit);
/// `OnFailure` does not.
#[tokio::test(start_paused = true)]
async fn always_restarts_after_a_task_ends_normally_and_on_failure_does_not() {
    let root = Container::root().await.unwrap();
    let always = Arc::new(AtomicU32::new(0));
    let on_failure = Arc::new(AtomicU32::new(0));
    root.add(
        "always",
        Worker {
            starts: always.clone(),
            task_ends_normally: true,
            policy: Some(quick(RestartPolicy::always()).restart_limit(2, Duration::from_secs(60))),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    root.add(
        "calm",
        Worker {
            starts: on_failure.clone(),
            task_ends_normally: true,
            policy: Some(quick(RestartPolicy::on_failure())),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    eventually(|| root.names() == ["calm"]).await;
    a_second_passes().await;
    assert_eq!(always.load(Ordering::SeqCst), 3, "first run and 2 restarts, then the limit");
    assert_eq!(on_failure.load(Ordering::SeqCst), 1);
    assert_eq!(root.names(), ["calm"]);
    root.shutdown().await.unwrap();
}

/// A restart cancels the old run's tasks, and stopping cancels the current
/// run's.
#[tokio::test(start_paused = true)]
async fn restart_cancels_the_old_runs_tasks() {
    #[derive(Clone, Default, Serialize, Deserialize)]
    struct Ticker {
        #[serde(skip)]
        live: Arc<AtomicU32>,
    }
    impl Component for Ticker {
        async fn start(&mut self, ctx: &mut Context<Self>) -> Result<()> {
            struct Alive(Arc<AtomicU32>);
            impl Drop for Alive {
                fn drop(&mut self) {
                    self.0.fetch_sub(1, Ordering::SeqCst);
                }
            }
            let live = self.live.clone();
            ctx.spawn(async move {
                live.fetch_add(1, Ordering::SeqCst);
                let _alive = Alive(live);
                std::future::pending::<()>().await;
                Ok(())
            });
            Ok(())
        }
    }
    let root = Container::root().await.unwrap();
    let live = Arc::new(AtomicU32::new(0));
    let t = root.add("t", Ticker { live: live.clone() }).await.unwrap();
    eventually(|| live.load(Ordering::SeqCst) == 1).await;
    assert_eq!(live.load(Ordering::SeqCst), 1, "the first run's task is alive");
    for _ in 0..3 {
        t.restart().await.unwrap();
    }
    eventually(|| live.load(Ordering::SeqCst) == 1).await;
    a_second_passes().await;
    assert_eq!(live.load(Ordering::SeqCst), 1, "only the current run's task is alive");
    t.shutdown().await.unwrap();
    eventually(|| live.load(Ordering::SeqCst) == 0).await;
    assert_eq!(live.load(Ordering::SeqCst), 0, "stopping cancels the tasks");
    root.shutdown().await.unwrap();
}
