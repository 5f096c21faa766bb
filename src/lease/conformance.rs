//! The conformance suite every [`LeaseBackend`] runs against a real server
//! (feature `conformance`). Two backends connected to the same server play
//! two processes.
//!
//! ```no_run
//! use kinesis::lease::LeaseBackend;
//! # async fn demo(a: &dyn LeaseBackend, b: &dyn LeaseBackend) {
//! kinesis::lease::conformance::run_all(a, b, "/conformance-mine").await;
//! # }
//! ```
//!
//! Each case panics with a message naming the broken promise. Expiry cases
//! wait for real time: lease times are short (600 ms) and every wait polls
//! with a deadline.

use std::time::{Duration, Instant};

use super::{LeaseBackend, LeaseResult};

/// The lease time the cases use.
pub const TTL: Duration = Duration::from_millis(600);

/// How long a case waits for a lease that should expire.
const PATIENCE: Duration = Duration::from_secs(10);

/// Runs every case; lease names start with `prefix` (unique per run).
pub async fn run_all(a: &dyn LeaseBackend, b: &dyn LeaseBackend, prefix: &str) {
    mutual_exclusion(a, b, &format!("{prefix}/exclusion")).await;
    release_frees_at_once(a, b, &format!("{prefix}/release")).await;
    tokens_increase(a, b, &format!("{prefix}/tokens")).await;
    renewal_keeps_the_lease(a, b, &format!("{prefix}/renewal")).await;
    expiry_frees_and_renew_fails_after(a, b, &format!("{prefix}/expiry")).await;
    names_are_independent(a, b, &format!("{prefix}/names")).await;
}

fn ok<T>(r: LeaseResult<T>, what: &str) -> T {
    r.unwrap_or_else(|e| panic!("{what}: {e}"))
}

/// One holder at a time, whether the other asks from the same client or
/// another.
pub async fn mutual_exclusion(a: &dyn LeaseBackend, b: &dyn LeaseBackend, name: &str) {
    let held = ok(a.acquire(name, TTL * 10).await, "acquire").expect("a free lease is granted");
    assert!(
        ok(b.acquire(name, TTL * 10).await, "acquire").is_none(),
        "another client took a held lease"
    );
    assert!(
        ok(a.acquire(name, TTL * 10).await, "acquire").is_none(),
        "the same client took its held lease twice"
    );
    ok(a.release(&held).await, "release");
}

/// A released lease can be taken at once by another client, and the old
/// holder cannot renew it.
pub async fn release_frees_at_once(a: &dyn LeaseBackend, b: &dyn LeaseBackend, name: &str) {
    let first = ok(a.acquire(name, TTL * 10).await, "acquire").expect("free");
    ok(a.release(&first).await, "release");
    let second =
        ok(b.acquire(name, TTL * 10).await, "acquire").expect("a released lease is free at once");
    assert!(!ok(a.renew(&first, TTL * 10).await, "renew"), "a released lease was renewed");
    // Releasing a lease that another holder has now leaves it alone.
    ok(a.release(&first).await, "release");
    assert!(
        ok(a.acquire(name, TTL).await, "acquire").is_none(),
        "a stale release freed another's lease"
    );
    ok(b.release(&second).await, "release");
}

/// Each grant's token is larger than every earlier one, across clients.
pub async fn tokens_increase(a: &dyn LeaseBackend, b: &dyn LeaseBackend, name: &str) {
    let mut last = 0;
    for round in 0..6 {
        let who = if round % 2 == 0 { a } else { b };
        let lease = ok(who.acquire(name, TTL * 10).await, "acquire").expect("free");
        assert!(lease.token > last, "token {} after {last}", lease.token);
        last = lease.token;
        ok(who.release(&lease).await, "release");
    }
}

/// Renewing every third of the lease time keeps it for several lease times.
pub async fn renewal_keeps_the_lease(a: &dyn LeaseBackend, b: &dyn LeaseBackend, name: &str) {
    let lease = ok(a.acquire(name, TTL).await, "acquire").expect("free");
    let until = Instant::now() + TTL * 3;
    while Instant::now() < until {
        tokio::time::sleep(TTL / 3).await;
        assert!(ok(a.renew(&lease, TTL).await, "renew"), "a renewed lease was lost");
        assert!(ok(b.acquire(name, TTL).await, "acquire").is_none(), "a renewed lease was taken");
    }
    ok(a.release(&lease).await, "release");
}

/// A lease not renewed expires within its time (plus a margin), not before;
/// then the other client gets it and the old holder's renewal fails.
pub async fn expiry_frees_and_renew_fails_after(
    a: &dyn LeaseBackend,
    b: &dyn LeaseBackend,
    name: &str,
) {
    let start = Instant::now();
    let first = ok(a.acquire(name, TTL).await, "acquire").expect("free");
    let second = loop {
        if let Some(l) = ok(b.acquire(name, TTL).await, "acquire") {
            break l;
        }
        assert!(start.elapsed() < PATIENCE, "an unrenewed lease did not expire in {PATIENCE:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let took = start.elapsed();
    assert!(took >= TTL - TTL / 10, "the lease expired early, after {took:?}");
    assert!(second.token > first.token);
    assert!(!ok(a.renew(&first, TTL).await, "renew"), "an expired lease was renewed");
    ok(b.release(&second).await, "release");
}

/// Leases of different names do not exclude each other.
pub async fn names_are_independent(a: &dyn LeaseBackend, b: &dyn LeaseBackend, name: &str) {
    let one = ok(a.acquire(&format!("{name}/one"), TTL * 10).await, "acquire").expect("free");
    let two = ok(b.acquire(&format!("{name}/two"), TTL * 10).await, "acquire")
        .expect("another name is free");
    ok(a.release(&one).await, "release");
    ok(b.release(&two).await, "release");
}
