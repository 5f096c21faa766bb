//! Supervision: when a failed component is restarted, how long the runtime
//! waits first, and when it gives up.
//!
//! A component *fails* when a handler or hook panics, when `pre_start` or
//! `start` returns an error, or when a task spawned with
//! [`Context::spawn`](crate::Context::spawn) returns an error or panics.
//! Its [`RestartPolicy`] then decides:
//!
//! * [`Restart::Never`]: the component is stopped for good and the failure is
//!   reported to its container.
//! * [`Restart::OnFailure`]: the component is restarted (`stop`, wait the
//!   backoff, `start`), keeping its state, its [`Handle`](crate::Handle)s and
//!   the messages queued meanwhile.
//! * [`Restart::Always`]: as `OnFailure`, and also when a spawned task ends
//!   without error.
//!
//! Past the intensity limit (more than `max_restarts` restarts within
//! `window`) the component is stopped for good and the failure escalates to
//! its container, as in Erlang/OTP.

use std::time::Duration;

/// When a component is restarted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Restart {
    /// Never: a failure stops the component.
    Never,
    /// After a failure.
    OnFailure,
    /// After a failure and after a spawned task ends normally.
    Always,
}

/// Exponential backoff between restarts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    /// The wait before the first restart.
    pub initial: Duration,
    /// The longest wait.
    pub max: Duration,
    /// Each consecutive restart waits `factor` times longer.
    pub factor: f64,
    /// Random spread, as a fraction of the wait (0.1 = ±10 %).
    pub jitter: f64,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(30),
            factor: 2.0,
            jitter: 0.1,
        }
    }
}

impl Backoff {
    /// The wait before restart number `attempt` (1-based), jitter included.
    pub fn delay(&self, attempt: u32) -> Duration {
        let exp = self.factor.max(1.0).powi(attempt.saturating_sub(1).min(64) as i32);
        let base = self.initial.as_secs_f64() * exp;
        let base = base.min(self.max.as_secs_f64());
        let spread = if self.jitter > 0.0 {
            let r: f64 = rand::random::<f64>() * 2.0 - 1.0;
            base * self.jitter.min(1.0) * r
        } else {
            0.0
        };
        Duration::from_secs_f64((base + spread).clamp(0.0, self.max.as_secs_f64()))
    }
}

/// How often a component may be restarted before the runtime gives up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Intensity {
    /// Restarts allowed within `window`.
    pub max_restarts: u32,
    /// The sliding window the restarts are counted in.
    pub window: Duration,
}

impl Default for Intensity {
    fn default() -> Self {
        Intensity { max_restarts: 5, window: Duration::from_secs(60) }
    }
}

/// What the runtime does when a component fails.
///
/// ```
/// use std::time::Duration;
/// use kinesis::RestartPolicy;
///
/// let policy = RestartPolicy::on_failure()
///     .with_backoff(Duration::from_millis(50), Duration::from_secs(5))
///     .restart_limit(3, Duration::from_secs(10));
/// assert_eq!(policy.intensity.max_restarts, 3);
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RestartPolicy {
    /// When to restart.
    pub when: Restart,
    /// How long to wait before each restart.
    pub backoff: Backoff,
    /// When to give up.
    pub intensity: Intensity,
}

impl Default for RestartPolicy {
    fn default() -> Self {
        RestartPolicy::never()
    }
}

impl RestartPolicy {
    /// Never restart.
    pub fn never() -> Self {
        RestartPolicy {
            when: Restart::Never,
            backoff: Backoff::default(),
            intensity: Intensity::default(),
        }
    }

    /// Restart after failures, with the default backoff (100 ms doubling up to
    /// 30 s) and intensity (5 restarts a minute).
    pub fn on_failure() -> Self {
        RestartPolicy { when: Restart::OnFailure, ..RestartPolicy::never() }
    }

    /// Restart after failures and after spawned tasks end.
    pub fn always() -> Self {
        RestartPolicy { when: Restart::Always, ..RestartPolicy::never() }
    }

    /// Sets the first and the longest wait; factor 2, jitter 10 %.
    pub fn with_backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.backoff.initial = initial;
        self.backoff.max = max.max(initial);
        self
    }

    /// Sets the full backoff.
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// At most `max_restarts` restarts within `window`; one more failure
    /// stops the component and escalates.
    pub fn restart_limit(mut self, max_restarts: u32, window: Duration) -> Self {
        self.intensity = Intensity { max_restarts, window };
        self
    }
}

/// Counts restarts in the sliding window of a policy.
#[derive(Debug, Default)]
pub(crate) struct RestartTracker {
    recent: std::collections::VecDeque<tokio::time::Instant>,
}

impl RestartTracker {
    /// Records a restart now; returns the attempt number within the window,
    /// or `None` when the limit is exceeded.
    pub(crate) fn next_attempt(&mut self, intensity: &Intensity) -> Option<u32> {
        let now = tokio::time::Instant::now();
        while let Some(first) = self.recent.front() {
            if now.duration_since(*first) > intensity.window {
                self.recent.pop_front();
            } else {
                break;
            }
        }
        if self.recent.len() as u32 >= intensity.max_restarts {
            return None;
        }
        self.recent.push_back(now);
        Some(self.recent.len() as u32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_caps() {
        let b = Backoff {
            initial: Duration::from_millis(10),
            max: Duration::from_millis(50),
            factor: 2.0,
            jitter: 0.0,
        };
        assert_eq!(b.delay(1), Duration::from_millis(10));
        assert_eq!(b.delay(2), Duration::from_millis(20));
        assert_eq!(b.delay(3), Duration::from_millis(40));
        assert_eq!(b.delay(4), Duration::from_millis(50));
        assert_eq!(b.delay(400), Duration::from_millis(50));
    }

    #[test]
    fn jitter_stays_in_range() {
        let b = Backoff { jitter: 0.5, ..Backoff::default() };
        for _ in 0..1000 {
            let d = b.delay(1).as_secs_f64();
            assert!((0.05..=0.15).contains(&d), "{d}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn intensity_limits_restarts_in_window() {
        let i = Intensity { max_restarts: 2, window: Duration::from_secs(10) };
        let mut t = RestartTracker::default();
        assert_eq!(t.next_attempt(&i), Some(1));
        assert_eq!(t.next_attempt(&i), Some(2));
        assert_eq!(t.next_attempt(&i), None);
        tokio::time::advance(Duration::from_secs(11)).await;
        assert_eq!(t.next_attempt(&i), Some(1));
    }
}
