//! Diagnostics: what an operator asks about each component, and the tree of
//! them ([`report`]), as the HTTP add-on serves it at
//! `GET /_kinesis/diagnostics`.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde::Serialize;

use crate::{Container, DynComponent, Failure, Stage, State};

/// What [`DynComponent::diagnostics`] says of one component.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ComponentDiagnostics {
    /// Path from the root.
    pub uri: String,
    /// Rust type name.
    #[serde(rename = "type")]
    pub type_name: &'static str,
    /// Lifecycle stage.
    pub stage: Stage,
    /// Coarse state.
    pub state: State,
    /// Version of the current snapshot.
    pub version: u64,
    /// How often it was restarted since it was added.
    pub restarts: u32,
    /// Its last failure, if it ever failed.
    pub last_failure: Option<LastFailure>,
    /// Operations waiting in its mailbox (queued and taken, not handled yet).
    pub mailbox_depth: usize,
    /// Seconds since it last reached `Started`; `None` when not started.
    pub uptime_seconds: Option<f64>,
    /// Open subscriptions (each `_watch` stream is one).
    pub subscribers: usize,
    /// What it handled and committed while metrics were on
    /// ([`crate::metrics::enable`]).
    pub activity: Activity,
}

/// Operations handled and group commits of one component, counted while
/// metrics are on (relaxed atomics of the component's own, read when
/// scraped: no registry call per message).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Activity {
    /// Operations handled, by kind (`ask`, `tell`, `batch`, `replace`,
    /// `write`, `call`, `call_batch`); kinds never seen are left out.
    pub messages: std::collections::BTreeMap<&'static str, u64>,
    /// Group commits that succeeded.
    pub commits: u64,
    /// Group commits that failed.
    pub commit_errors: u64,
    /// Operations answered by the successful group commits (divided by
    /// `commits`: the mean group size).
    pub committed_operations: u64,
}

/// A component's last failure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LastFailure {
    /// When, RFC 3339.
    pub at: String,
    /// What went wrong.
    pub message: String,
}

/// The diagnostics of a whole tree.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// Every component, the containers themselves included, depth first.
    pub components: Vec<ComponentDiagnostics>,
    /// The failures that escalated to each container, by container URI
    /// (containers without failures are left out); see
    /// [`Container::failures`].
    pub failures: Vec<ContainerFailures>,
    /// The tasks of the [task manager](crate::tasks).
    pub tasks: Vec<crate::tasks::TaskStatus>,
}

/// The escalated failures of one container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ContainerFailures {
    /// The container's URI.
    pub uri: String,
    /// Its failures, oldest first.
    pub failures: Vec<Failure>,
}

/// The diagnostics of `roots` and everything below them.
pub fn report(roots: &[&Container]) -> Report {
    let mut components = Vec::new();
    let mut failures = Vec::new();
    for root in roots {
        let own = root.handle().map(|h| Arc::new(h) as Arc<dyn DynComponent>);
        for component in own.into_iter().chain(root.walk()) {
            let container = component.as_container();
            components.push(component.diagnostics());
            if let Some(c) = container {
                let list = c.failures();
                if !list.is_empty() {
                    failures.push(ContainerFailures { uri: c.uri().to_owned(), failures: list });
                }
            }
        }
    }
    Report { components, failures, tasks: crate::tasks::TaskManager::global().list() }
}

/// What a cell records for diagnostics; shared with its handles.
#[derive(Default)]
pub(crate) struct Stats {
    messages: [AtomicU64; crate::metrics::OpKind::COUNT],
    commits: AtomicU64,
    commit_errors: AtomicU64,
    committed_operations: AtomicU64,
    /// Times one operation in [`DURATION_SAMPLE`](crate::metrics::DURATION_SAMPLE).
    pub(crate) timing: crate::metrics::Timing,
    restarts: AtomicU32,
    last_failure: Mutex<Option<Box<LastFailure>>>,
    /// The fencing token of the lease a singleton runs under; 0 for none
    /// (tokens start at 1). Kept here, allocated on first use, so that
    /// components that are not singletons pay nothing for it.
    pub(crate) fencing_token: AtomicU64,
}

impl Stats {
    pub(crate) fn restarted(&self) {
        self.restarts.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn failed(&self, message: String) {
        let failure = LastFailure { at: crate::persist::now_rfc3339(), message };
        *self.last_failure.lock().unwrap_or_else(|p| p.into_inner()) = Some(Box::new(failure));
    }

    /// One operation of `kind` was handled.
    pub(crate) fn handled(&self, kind: crate::metrics::OpKind) {
        self.messages[kind as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// A group of `size` operations was committed, or failed to.
    pub(crate) fn committed(&self, size: usize, ok: bool) {
        if ok {
            self.commits.fetch_add(1, Ordering::Relaxed);
            self.committed_operations.fetch_add(size as u64, Ordering::Relaxed);
        } else {
            self.commit_errors.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub(crate) fn activity(&self) -> Activity {
        let messages = crate::metrics::OpKind::ALL
            .iter()
            .map(|k| (k.label(), self.messages[*k as usize].load(Ordering::Relaxed)))
            .filter(|(_, n)| *n > 0)
            .collect();
        Activity {
            messages,
            commits: self.commits.load(Ordering::Relaxed),
            commit_errors: self.commit_errors.load(Ordering::Relaxed),
            committed_operations: self.committed_operations.load(Ordering::Relaxed),
        }
    }

    pub(crate) fn restarts(&self) -> u32 {
        self.restarts.load(Ordering::Relaxed)
    }

    pub(crate) fn last_failure(&self) -> Option<LastFailure> {
        self.last_failure.lock().unwrap_or_else(|p| p.into_inner()).as_deref().cloned()
    }
}
