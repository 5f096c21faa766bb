//! Leases kept in this process: for tests (paused tokio time works) and for
//! programs that run a single process.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::time::Instant;

use super::{FencingToken, Lease, LeaseBackend, LeaseError, LeaseResult};

/// Leases in a map of this process, expiring by tokio's clock.
/// [`MemoryLeases::set_failing`] makes every call fail, to test how holders
/// behave when their backend is down.
///
/// ```
/// use std::time::Duration;
/// use kinesis::lease::{LeaseBackend, MemoryLeases};
///
/// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
/// let leases = MemoryLeases::new();
/// let ttl = Duration::from_secs(1);
/// let first = leases.acquire("/root/job", ttl).await.unwrap().expect("free");
/// assert!(leases.acquire("/root/job", ttl).await.unwrap().is_none(), "held");
/// leases.release(&first).await.unwrap();
/// let second = leases.acquire("/root/job", ttl).await.unwrap().expect("released");
/// assert!(second.token > first.token);
/// # });
/// ```
#[derive(Debug, Default)]
pub struct MemoryLeases {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    held: HashMap<String, (String, Instant)>,
    tokens: HashMap<String, FencingToken>,
    failing: bool,
}

impl MemoryLeases {
    /// No leases held.
    pub fn new() -> Self {
        Self::default()
    }

    /// While `true`, every operation fails with [`LeaseError::Backend`].
    pub fn set_failing(&self, failing: bool) {
        self.lock().failing = failing;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Inner {
    fn check(&self) -> LeaseResult<()> {
        if self.failing {
            Err(LeaseError::Backend("memory leases are set to fail".into()))
        } else {
            Ok(())
        }
    }

    /// The holder of `name`, if its lease has not expired.
    fn holder(&self, name: &str) -> Option<&str> {
        self.held
            .get(name)
            .filter(|(_, until)| Instant::now() < *until)
            .map(|(holder, _)| holder.as_str())
    }
}

impl LeaseBackend for MemoryLeases {
    fn backend(&self) -> &'static str {
        "memory"
    }

    fn acquire<'a>(
        &'a self,
        name: &'a str,
        ttl: Duration,
    ) -> BoxFuture<'a, LeaseResult<Option<Lease>>> {
        Box::pin(async move {
            let mut inner = self.lock();
            inner.check()?;
            if inner.holder(name).is_some() {
                return Ok(None);
            }
            let token = inner.tokens.entry(name.to_owned()).or_insert(0);
            *token += 1;
            let token = *token;
            let holder = format!("{:032x}", rand::random::<u128>());
            inner.held.insert(name.to_owned(), (holder.clone(), Instant::now() + ttl));
            Ok(Some(Lease { name: name.to_owned(), token, holder }))
        })
    }

    fn renew<'a>(&'a self, lease: &'a Lease, ttl: Duration) -> BoxFuture<'a, LeaseResult<bool>> {
        Box::pin(async move {
            let mut inner = self.lock();
            inner.check()?;
            if inner.holder(&lease.name) != Some(lease.holder.as_str()) {
                return Ok(false);
            }
            inner.held.insert(lease.name.clone(), (lease.holder.clone(), Instant::now() + ttl));
            Ok(true)
        })
    }

    fn release<'a>(&'a self, lease: &'a Lease) -> BoxFuture<'a, LeaseResult<()>> {
        Box::pin(async move {
            let mut inner = self.lock();
            inner.check()?;
            if inner.held.get(&lease.name).is_some_and(|(h, _)| *h == lease.holder) {
                inner.held.remove(&lease.name);
            }
            Ok(())
        })
    }
}
