//! Measuring helpers: a stop flag raised by a timer thread, resident memory
//! from `/proc/self/statm`, and the metrics a child process reports.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Named figures one child process measured, such as `("asks_per_s", 1.2e6)`.
pub type Metrics = Vec<(String, f64)>;

/// A flag that a plain OS thread raises after a fixed time.
///
/// Workers only read a relaxed atomic per iteration, and the timer does not
/// depend on the measured runtime's timer driver (which a busy worker may
/// poll late), so every framework gets the same wall-clock window.
#[derive(Clone, Debug)]
pub struct StopFlag(Arc<AtomicBool>);

impl StopFlag {
    /// Raises the flag `after` from now.
    pub fn after(after: Duration) -> StopFlag {
        let flag = Arc::new(AtomicBool::new(false));
        let raised = Arc::clone(&flag);
        std::thread::spawn(move || {
            std::thread::sleep(after);
            raised.store(true, Ordering::Relaxed);
        });
        StopFlag(flag)
    }

    /// Whether the time is up.
    #[inline]
    pub fn is_raised(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// Resident set size of this process in bytes (`/proc/self/statm`, second
/// field, times the page size).
pub fn resident_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("/proc/self/statm");
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|f| f.parse().ok())
        .expect("resident pages in /proc/self/statm");
    pages * page_size()
}

fn page_size() -> u64 {
    // SAFETY: sysconf has no preconditions; it only reads a constant.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u64::try_from(size).ok().filter(|s| *s > 0).unwrap_or(4096)
}

/// Rate per second of `count` events in `elapsed`.
pub fn per_second(count: u64, elapsed: Duration) -> f64 {
    count as f64 / elapsed.as_secs_f64()
}
