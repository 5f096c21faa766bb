//! The store's notion of now: wall-clock milliseconds that advance with
//! tokio's clock.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::time::Instant;

/// Wall-clock time anchored once, advanced by tokio's monotonic clock.
///
/// Expiry times are stored as Unix milliseconds so that they mean the same
/// after a restart; within one run they advance with [`tokio::time`], so a
/// jump of the system clock does not expire keys early and a test with
/// paused time (`tokio::time::pause`, `advance`) controls expiry exactly.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Clock {
    wall_ms: u64,
    mono: Instant,
}

impl Default for Clock {
    fn default() -> Self {
        let wall = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
        Clock { wall_ms: u64::try_from(wall.as_millis()).unwrap_or(u64::MAX), mono: Instant::now() }
    }
}

impl Clock {
    /// Now, in Unix milliseconds.
    pub(crate) fn now_ms(&self) -> u64 {
        let elapsed = u64::try_from(self.mono.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.wall_ms.saturating_add(elapsed)
    }

    /// The tokio instant at which Unix time `at_ms` is reached.
    pub(crate) fn instant_of(&self, at_ms: u64) -> Instant {
        let after = Duration::from_millis(at_ms.saturating_sub(self.wall_ms));
        // Far beyond any TTL the store accepts; only a corrupt record gets here.
        self.mono.checked_add(after).unwrap_or(self.mono + Duration::from_secs(100 * 365 * 86_400))
    }
}
