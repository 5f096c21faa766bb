//! Paused-time helpers, for tests that run with
//! `#[tokio::test(start_paused = true)]` (or `tokio::time::pause()`; both
//! need a current-thread runtime and tokio's `test-util` feature in the
//! test's own dependencies).
//!
//! Under paused time the clock moves only when every task is idle, and then
//! straight to the next timer. So these helpers synchronise without real
//! waiting: [`advance`] moves the clock by an amount, firing every timer due
//! on the way in order and letting the tasks it wakes run before the clock
//! moves on; [`settle`] lets every task that can run, run, until all of them
//! wait (for time, I/O or a message). Without paused time they wait in real
//! time, which is not what they are for.

use std::time::Duration;

/// Moves paused time forward by `by`, firing every timer due on the way in
/// order and letting the tasks each one wakes run (a restart's backoff, a
/// delayed restart, an ask deadline) before the clock moves on.
///
/// ```
/// use std::time::Duration;
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().start_paused(true).build().unwrap().block_on(async {
/// let start = tokio::time::Instant::now();
/// let timer = tokio::spawn(tokio::time::sleep(Duration::from_secs(30)));
/// kinesis::testing::advance(Duration::from_secs(30)).await;
/// assert!(timer.is_finished());
/// // 30 s of virtual time (and the millisecond of `settle`), no real wait.
/// assert!(start.elapsed() >= Duration::from_secs(30));
/// assert!(start.elapsed() <= Duration::from_millis(30_001));
/// # });
/// ```
pub async fn advance(by: Duration) {
    // A sleep under paused time returns only once every other task is idle
    // and the clock, jumping from timer to timer, reached its deadline.
    tokio::time::sleep(by).await;
    settle().await;
}

/// Lets every task that can run, run, until all of them wait for
/// something; under paused time the clock moves by one tick of tokio's
/// timer (a millisecond) at most.
pub async fn settle() {
    tokio::time::sleep(Duration::from_nanos(1)).await;
}
