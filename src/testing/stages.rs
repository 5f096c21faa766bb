//! Stage assertions: wait for a component's stage, or for a sequence of
//! stages, with a deadline, and fail with a message that names the
//! component, what it is at and what was expected.
//!
//! Deadlines are tokio time: under paused time they are virtual, and the
//! clock jumps to them only once every task is idle.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;

use crate::{DynComponent, JsonChange, Stage};

/// Waits until `component` is at `stage`, at most `within`.
///
/// # Panics
///
/// When the deadline passes, or the component is torn down while another
/// stage was expected: the message names the component's URI, the stage it
/// is at and the stage expected.
///
/// ```
/// use std::time::Duration;
///
/// use kinesis::testing::{expect_stage, TestRuntime};
/// use kinesis::{Component, Stage};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Clone, Default, Serialize, Deserialize)]
/// struct Probe;
/// impl Component for Probe {}
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let rt = TestRuntime::memory().await;
/// let probe = rt.root().add("probe", Probe).await?;
/// expect_stage(&probe, Stage::Started, Duration::from_secs(1)).await;
/// probe.shutdown().await?;
/// expect_stage(&probe, Stage::TornDown, Duration::from_secs(1)).await;
/// # Ok::<(), kinesis::Error>(()) }).unwrap();
/// ```
pub async fn expect_stage<D: DynComponent + ?Sized>(component: &D, stage: Stage, within: Duration) {
    let reached = tokio::time::timeout(within, component.wait_for_stage(stage)).await.is_ok();
    let now = component.stage();
    if now != stage {
        let why = if reached { "it was torn down" } else { "the deadline passed" };
        panic!(
            "{} did not reach {stage:?} within {within:?}: it is at {now:?} ({why})",
            component.uri()
        );
    }
}

/// The stages a component went through since the log was made, in order;
/// made with [`StageLog::of`].
///
/// ```
/// use std::time::Duration;
///
/// use kinesis::testing::{StageLog, TestRuntime};
/// use kinesis::{Component, Stage};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Clone, Default, Serialize, Deserialize)]
/// struct Probe;
/// impl Component for Probe {}
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let rt = TestRuntime::memory().await;
/// let probe = rt.root().add("probe", Probe).await?;
/// let log = StageLog::of(&probe);
/// probe.shutdown().await?;
/// log.expect(&[Stage::Stopping, Stage::Stopped, Stage::TearingDown, Stage::TornDown], Duration::from_secs(1))
///     .await;
/// # Ok::<(), kinesis::Error>(()) }).unwrap();
/// ```
#[derive(Debug, Clone)]
pub struct StageLog {
    uri: String,
    seen: Arc<Mutex<Vec<Stage>>>,
    changed: Arc<tokio::sync::Notify>,
}

impl StageLog {
    /// Starts recording the stage changes of `component` (subscribing at
    /// once, so no later change is missed). Needs a tokio runtime: the
    /// changes are read by a task, which ends with the component.
    pub fn of<D: DynComponent + ?Sized>(component: &D) -> StageLog {
        let log = StageLog {
            uri: component.uri().to_owned(),
            seen: Arc::default(),
            changed: Arc::default(),
        };
        let mut changes = component.subscribe_json();
        let (seen, changed) = (Arc::clone(&log.seen), Arc::clone(&log.changed));
        tokio::spawn(async move {
            while let Some(change) = changes.next().await {
                if let Ok(JsonChange::Stage { curr, .. }) = change {
                    seen.lock().unwrap_or_else(|p| p.into_inner()).push(curr);
                    changed.notify_waiters();
                }
            }
        });
        log
    }

    /// The stages seen so far, oldest first.
    pub fn seen(&self) -> Vec<Stage> {
        self.seen.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Waits until the stages seen contain `stages` one right after the
    /// other, at most `within`.
    ///
    /// # Panics
    ///
    /// When the deadline passes, naming the component, the stages expected
    /// and the stages seen.
    pub async fn expect(&self, stages: &[Stage], within: Duration) {
        let found =
            |seen: &[Stage]| stages.is_empty() || seen.windows(stages.len()).any(|w| w == stages);
        let wait = async {
            loop {
                let changed = self.changed.notified();
                let mut changed = std::pin::pin!(changed);
                changed.as_mut().enable();
                if found(&self.seen()) {
                    return;
                }
                changed.await;
            }
        };
        if tokio::time::timeout(within, wait).await.is_err() {
            panic!(
                "{} did not go through {stages:?} within {within:?}; stages seen: {:?}",
                self.uri,
                self.seen()
            );
        }
    }
}
