//! The lifecycle state machine of a kinesis component.
//!
//! A component moves through [`Stage`]s. The happy path is
//!
//! ```text
//! Submitted → Preinitializing → Preinitialized → Initializing → Initialized
//!           → Starting → Started → Stopping → Stopped → TearingDown → TornDown
//! ```
//!
//! with two detours:
//!
//! * **restart**: `Started → Restarting → Starting → Started`. A `start` hook
//!   that fails may also go `Starting → Restarting` when the restart policy
//!   allows another try, or `Starting → Stopping` when it does not.
//! * **abort**: a failed load, `init` or `post_init` goes
//!   `Initializing → Aborting → TearingDown → TornDown`. A component that is
//!   stopped before it was initialised goes `Preinitialized → Aborting`.
//!
//! The table of allowed edges lives in one place, [`Stage::successors`]. An
//! illegal transition is a bug in the caller; [`Stage::transition`] returns an
//! [`IllegalTransition`] error for it and never moves silently.
//!
//! Every stage has a [`State`]: `Active` for `Initialized`, `Starting` and
//! `Started`, `Inactive` for everything else.
//!
//! This crate is pure: no I/O, no async runtime.
//!
//! ```
//! use kinesis_fsm::{Stage, State};
//!
//! let stage = Stage::Submitted.transition(Stage::Preinitializing).unwrap();
//! assert_eq!(stage.next(), Some(Stage::Preinitialized));
//! assert!(Stage::Started.can_transition_to(Stage::Restarting));
//! assert!(Stage::Started.transition(Stage::Submitted).is_err());
//! assert_eq!(Stage::Started.state(), State::Active);
//! ```

use std::fmt;

use serde::{Deserialize, Serialize};

/// Where a component is in its lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Stage {
    /// Handed to a container, nothing has run yet.
    Submitted,
    /// The runtime is preparing the mailbox and context.
    Preinitializing,
    /// Mailbox and context exist; no user hook has run.
    Preinitialized,
    /// Persisted fields are loaded, then `init` and `post_init` run.
    Initializing,
    /// `init` and `post_init` succeeded.
    Initialized,
    /// `pre_start` and `start` run.
    Starting,
    /// The component processes messages.
    Started,
    /// `stop` of the old run, then a new run starts.
    Restarting,
    /// `stop` runs.
    Stopping,
    /// `stop` finished; the mailbox takes no new messages.
    Stopped,
    /// Queued callers are answered, the component leaves its container.
    TearingDown,
    /// The end: nothing runs any more.
    TornDown,
    /// Initialisation failed; the component is torn down without starting.
    Aborting,
}

/// The coarse state derived from a [`Stage`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum State {
    /// `Initialized`, `Starting` or `Started`.
    Active,
    /// Every other stage.
    Inactive,
}

/// An attempt to take an edge that is not in the transition table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IllegalTransition {
    /// The stage the component was in.
    pub from: Stage,
    /// The stage that was asked for.
    pub to: Stage,
}

impl fmt::Display for IllegalTransition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "illegal lifecycle transition {} -> {}", self.from, self.to)
    }
}

impl std::error::Error for IllegalTransition {}

impl Stage {
    /// Every stage, in declaration order.
    pub const ALL: [Stage; 13] = [
        Stage::Submitted,
        Stage::Preinitializing,
        Stage::Preinitialized,
        Stage::Initializing,
        Stage::Initialized,
        Stage::Starting,
        Stage::Started,
        Stage::Restarting,
        Stage::Stopping,
        Stage::Stopped,
        Stage::TearingDown,
        Stage::TornDown,
        Stage::Aborting,
    ];

    /// The transition table: every stage this one may move to, the
    /// happy-path successor first.
    pub const fn successors(self) -> &'static [Stage] {
        use Stage::*;
        match self {
            Submitted => &[Preinitializing],
            Preinitializing => &[Preinitialized],
            Preinitialized => &[Initializing, Aborting],
            Initializing => &[Initialized, Aborting],
            Initialized => &[Starting, Stopping],
            Starting => &[Started, Restarting, Stopping],
            Started => &[Stopping, Restarting],
            Restarting => &[Starting, Stopping],
            Stopping => &[Stopped],
            Stopped => &[TearingDown],
            TearingDown => &[TornDown],
            TornDown => &[],
            Aborting => &[TearingDown],
        }
    }

    /// The happy-path successor, `None` for `TornDown`.
    pub const fn next(self) -> Option<Stage> {
        match self.successors() {
            [first, ..] => Some(*first),
            [] => None,
        }
    }

    /// Whether the table has an edge `self → to`.
    pub fn can_transition_to(self, to: Stage) -> bool {
        self.successors().contains(&to)
    }

    /// Takes the edge `self → to`, or says why it cannot.
    pub fn transition(self, to: Stage) -> Result<Stage, IllegalTransition> {
        if self.can_transition_to(to) {
            Ok(to)
        } else {
            Err(IllegalTransition { from: self, to })
        }
    }

    /// The coarse state of this stage.
    pub const fn state(self) -> State {
        match self {
            Stage::Initialized | Stage::Starting | Stage::Started => State::Active,
            _ => State::Inactive,
        }
    }

    /// True for `TornDown`, the only stage without successors.
    pub const fn is_terminal(self) -> bool {
        matches!(self, Stage::TornDown)
    }

    /// The stage's name as it appears in JSON and logs.
    pub const fn as_str(self) -> &'static str {
        match self {
            Stage::Submitted => "Submitted",
            Stage::Preinitializing => "Preinitializing",
            Stage::Preinitialized => "Preinitialized",
            Stage::Initializing => "Initializing",
            Stage::Initialized => "Initialized",
            Stage::Starting => "Starting",
            Stage::Started => "Started",
            Stage::Restarting => "Restarting",
            Stage::Stopping => "Stopping",
            Stage::Stopped => "Stopped",
            Stage::TearingDown => "TearingDown",
            Stage::TornDown => "TornDown",
            Stage::Aborting => "Aborting",
        }
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl State {
    /// The state's name as it appears in JSON and logs.
    pub const fn as_str(self) -> &'static str {
        match self {
            State::Active => "Active",
            State::Inactive => "Inactive",
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    const EDGES: &[(Stage, Stage)] = {
        use Stage::*;
        &[
            (Submitted, Preinitializing),
            (Preinitializing, Preinitialized),
            (Preinitialized, Initializing),
            (Preinitialized, Aborting),
            (Initializing, Initialized),
            (Initializing, Aborting),
            (Initialized, Starting),
            (Initialized, Stopping),
            (Starting, Started),
            (Starting, Restarting),
            (Starting, Stopping),
            (Started, Stopping),
            (Started, Restarting),
            (Restarting, Starting),
            (Restarting, Stopping),
            (Stopping, Stopped),
            (Stopped, TearingDown),
            (TearingDown, TornDown),
            (Aborting, TearingDown),
        ]
    };

    #[test]
    fn every_listed_edge_is_allowed() {
        for &(from, to) in EDGES {
            assert_eq!(from.transition(to), Ok(to), "{from} -> {to}");
        }
    }

    #[test]
    fn every_other_edge_is_rejected() {
        let allowed: HashSet<_> = EDGES.iter().copied().collect();
        let mut rejected = 0;
        for from in Stage::ALL {
            for to in Stage::ALL {
                if !allowed.contains(&(from, to)) {
                    assert_eq!(from.transition(to), Err(IllegalTransition { from, to }));
                    assert!(!from.can_transition_to(to));
                    rejected += 1;
                }
            }
        }
        assert_eq!(rejected, 13 * 13 - EDGES.len());
    }

    #[test]
    fn table_has_exactly_the_listed_edges() {
        let table: HashSet<_> = Stage::ALL
            .iter()
            .flat_map(|&from| from.successors().iter().map(move |&to| (from, to)))
            .collect();
        let listed: HashSet<_> = EDGES.iter().copied().collect();
        assert_eq!(table, listed);
    }

    /// Every path from `Submitted` ends in `TornDown`: the graph without the
    /// restart loop is acyclic and its only sink is `TornDown`, and from every
    /// stage on the restart loop `TornDown` stays reachable.
    #[test]
    fn every_path_from_submitted_ends_in_torn_down() {
        fn walk(stage: Stage, path: &mut Vec<Stage>, paths: &mut usize) {
            if stage.successors().is_empty() {
                assert_eq!(stage, Stage::TornDown, "dead end in {path:?}");
                *paths += 1;
                return;
            }
            for &next in stage.successors() {
                // Take each restart edge at most once per path; longer paths
                // repeat the same loop.
                if next == Stage::Restarting && path.contains(&Stage::Restarting) {
                    continue;
                }
                path.push(next);
                walk(next, path, paths);
                path.pop();
            }
        }
        let mut paths = 0;
        walk(Stage::Submitted, &mut vec![Stage::Submitted], &mut paths);
        assert!(paths >= 5, "only {paths} paths");
        for stage in Stage::ALL {
            assert!(reaches_torn_down(stage), "{stage} cannot reach TornDown");
        }
    }

    fn reaches_torn_down(from: Stage) -> bool {
        let mut seen = HashSet::new();
        let mut todo = vec![from];
        while let Some(s) = todo.pop() {
            if s == Stage::TornDown {
                return true;
            }
            if seen.insert(s) {
                todo.extend_from_slice(s.successors());
            }
        }
        false
    }

    #[test]
    fn happy_path_follows_next() {
        let mut stage = Stage::Submitted;
        let mut seen = vec![stage];
        while let Some(n) = stage.next() {
            stage = stage.transition(n).unwrap();
            seen.push(stage);
        }
        use Stage::*;
        assert_eq!(
            seen,
            [
                Submitted,
                Preinitializing,
                Preinitialized,
                Initializing,
                Initialized,
                Starting,
                Started,
                Stopping,
                Stopped,
                TearingDown,
                TornDown
            ]
        );
    }

    #[test]
    fn state_is_active_only_between_initialized_and_started() {
        for s in Stage::ALL {
            let active = matches!(s, Stage::Initialized | Stage::Starting | Stage::Started);
            assert_eq!(s.state() == State::Active, active, "{s}");
        }
    }

    #[test]
    fn display_and_serde_agree() {
        for s in Stage::ALL {
            let json = serde_json::to_string(&s).unwrap();
            assert_eq!(json, format!("\"{s}\""));
            assert_eq!(serde_json::from_str::<Stage>(&json).unwrap(), s);
        }
        for st in [State::Active, State::Inactive] {
            let json = serde_json::to_string(&st).unwrap();
            assert_eq!(json, format!("\"{st}\""));
            assert_eq!(serde_json::from_str::<State>(&json).unwrap(), st);
        }
        assert_eq!(
            IllegalTransition { from: Stage::TornDown, to: Stage::Started }.to_string(),
            "illegal lifecycle transition TornDown -> Started"
        );
    }
}
