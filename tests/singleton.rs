//! Singletons in one process with paused time: three root containers play
//! three processes sharing one store and one lease backend.
//!
//! * exactly one runs the singleton, and at no sampled instant two;
//! * a holder that stops renewing stops the component by its own clock,
//!   before the lease expires, and another takes over within the lease;
//! * a write that was in flight when the old holder lost its lease is
//!   refused by the store ([`Error::Fenced`]) after the new holder claimed;
//! * the fencing token reaches the component's context and grows with
//!   every takeover.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use kinesis::lease::{Lease, LeaseBackend, LeaseConfig, LeaseError, LeaseResult, MemoryLeases};
use kinesis::persist::{fence_of, MemoryStore, Persistence, SharedStore};
use kinesis::{App, Component, Container, Context, Error, Persist, Result};
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

const TTL: Duration = Duration::from_secs(3);

/// The singleton: a persisted count and the token it last ran under.
#[derive(Clone, Default, Serialize, Deserialize, Persist)]
struct Job {
    #[persist]
    count: u64,
    token: Option<u64>,
}

impl Component for Job {
    async fn start(&mut self, ctx: &mut Context<Self>) -> Result<()> {
        self.token = ctx.fencing_token();
        Ok(())
    }
}

#[kinesis::handlers]
impl Job {
    /// Waits `ms`, then counts one.
    pub async fn bump_after(&mut self, ms: u64) -> u64 {
        tokio::time::sleep(Duration::from_millis(ms)).await;
        self.count += 1;
        self.count
    }

    /// The token the component runs under.
    pub fn token(&self) -> Option<u64> {
        self.token
    }
}

/// One process's view of the shared lease backend: cutting it makes every
/// call fail, as when the process lost its network.
struct Link {
    shared: Arc<MemoryLeases>,
    cut: AtomicBool,
}

impl Link {
    fn check(&self) -> LeaseResult<()> {
        if self.cut.load(Ordering::SeqCst) {
            Err(LeaseError::Backend("cut".into()))
        } else {
            Ok(())
        }
    }
}

impl LeaseBackend for Link {
    fn backend(&self) -> &'static str {
        "memory"
    }
    fn acquire<'a>(
        &'a self,
        name: &'a str,
        ttl: Duration,
    ) -> BoxFuture<'a, LeaseResult<Option<Lease>>> {
        Box::pin(async move {
            self.check()?;
            self.shared.acquire(name, ttl).await
        })
    }
    fn renew<'a>(&'a self, lease: &'a Lease, ttl: Duration) -> BoxFuture<'a, LeaseResult<bool>> {
        Box::pin(async move {
            self.check()?;
            self.shared.renew(lease, ttl).await
        })
    }
    fn release<'a>(&'a self, lease: &'a Lease) -> BoxFuture<'a, LeaseResult<()>> {
        Box::pin(async move {
            self.check()?;
            self.shared.release(lease).await
        })
    }
}

struct Process {
    root: Container,
    link: Arc<Link>,
}

impl Process {
    fn runs(&self) -> bool {
        self.root.names().iter().any(|n| n == "job")
    }
}

async fn group(n: usize) -> (Vec<Process>, SharedStore) {
    let store: SharedStore = Arc::new(MemoryStore::new());
    let leases = Arc::new(MemoryLeases::new());
    let mut out = Vec::new();
    for _ in 0..n {
        let root = Container::root_with(Some(Persistence { store: store.clone(), cipher: None }))
            .await
            .unwrap();
        let link = Arc::new(Link { shared: leases.clone(), cut: AtomicBool::new(false) });
        let app = App::new()
            .component("job", Job::default)
            .singleton()
            .leases(LeaseConfig { backend: link.clone(), ttl: TTL });
        assert_eq!(app.install(&root, None).await.unwrap(), ["job"]);
        out.push(Process { root, link });
    }
    (out, store)
}

/// Advances paused time in steps of 50 ms until `done`, checking at every
/// step that at most one process runs the singleton; returns the time taken.
async fn watch_until(
    procs: &[Process],
    limit: Duration,
    done: impl Fn(&[Process]) -> bool,
) -> Duration {
    let start = Instant::now();
    loop {
        let running = procs.iter().filter(|p| p.runs()).count();
        assert!(running <= 1, "{running} processes run the singleton at once");
        if done(procs) {
            return start.elapsed();
        }
        assert!(start.elapsed() < limit, "not done within {limit:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn holder(procs: &[Process]) -> Option<usize> {
    procs.iter().position(Process::runs)
}

async fn token_of(p: &Process) -> u64 {
    let job = p.root.get::<Job>("job").unwrap();
    job.token().await.unwrap().expect("a singleton has a fencing token")
}

/// Advances time by `span`, checking at every step that at most one
/// process runs the singleton.
async fn watch_for(procs: &[Process], span: Duration) {
    let end = Instant::now() + span;
    watch_until(procs, span + Duration::from_secs(1), |_| Instant::now() >= end).await;
}

#[tokio::test(start_paused = true)]
async fn exactly_one_runs_and_another_takes_over_within_the_lease() {
    let (procs, store) = group(3).await;
    watch_until(&procs, TTL * 2, |p| holder(p).is_some()).await;
    // Several lease times: renewals keep it where it is.
    let first = holder(&procs).unwrap();
    let first_token = token_of(&procs[first]).await;
    watch_for(&procs, TTL * 4).await;
    assert_eq!(holder(&procs), Some(first), "a renewed lease moved");
    // The claim wrote the record with the holder's token.
    let record = store.load("/root/job").await.unwrap().expect("claimed");
    assert_eq!(fence_of(&record), first_token);

    // The holder stops renewing (its link to the backend is cut).
    procs[first].link.cut.store(true, Ordering::SeqCst);
    let cut = Instant::now();
    let stopped = watch_until(&procs, TTL * 2, |p| !p[first].runs()).await;
    assert!(stopped < TTL, "the old holder stopped after {stopped:?}, not before its lease ended");
    watch_until(&procs, TTL * 3, |p| holder(p).is_some()).await;
    let took = cut.elapsed();
    let second = holder(&procs).unwrap();
    assert_ne!(second, first);
    // Within the lease (counted from the last renewal, at most a third of it
    // before the cut) plus one retry interval.
    assert!(took <= TTL + TTL / 6 + Duration::from_millis(100), "takeover after {took:?}");
    let second_token = token_of(&procs[second]).await;
    assert!(second_token > first_token);
    let record = store.load("/root/job").await.unwrap().expect("claimed");
    assert_eq!(fence_of(&record), second_token);
    watch_for(&procs, TTL * 2).await;
    assert_eq!(holder(&procs), Some(second));

    // Stopping the holder's process releases the lease: the third takes
    // over without waiting for it to expire.
    procs[second].root.shutdown().await.unwrap();
    let stop = Instant::now();
    watch_until(&procs, TTL, |p| holder(p).is_some()).await;
    assert!(stop.elapsed() < TTL / 2, "takeover after a clean stop took {:?}", stop.elapsed());
    let third = holder(&procs).unwrap();
    assert!(third != first && third != second);
    assert!(token_of(&procs[third]).await > second_token);
}

#[tokio::test(start_paused = true)]
async fn a_write_in_flight_when_the_lease_is_lost_is_fenced() {
    let (procs, store) = group(2).await;
    watch_until(&procs, TTL * 2, |p| holder(p).is_some()).await;
    let old = holder(&procs).unwrap();
    let job = procs[old].root.get::<Job>("job").unwrap().without_timeout();
    assert_eq!(job.bump_after(0).await.unwrap(), 1);
    // A slow write starts; while it waits, the old holder loses its link.
    let slow = tokio::spawn(async move { job.bump_after(TTL.as_millis() as u64 * 3).await });
    tokio::time::sleep(Duration::from_millis(10)).await;
    procs[old].link.cut.store(true, Ordering::SeqCst);
    // The other process takes over and writes, while the old one still
    // waits inside its handler (its component is stopping, not stopped).
    let new = 1 - old;
    let new_job = loop {
        if let Ok(job) = procs[new].root.get::<Job>("job") {
            break job;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(
        new_job.bump_after(0).await.unwrap(),
        2,
        "the new holder loaded the old one's writes"
    );
    // The old write finishes: the store refuses it.
    let refused = slow.await.unwrap();
    assert!(matches!(refused, Err(Error::Fenced(_))), "{refused:?}");
    let record = store.load("/root/job").await.unwrap().unwrap();
    assert_eq!(record.fields["count"], 2);
    assert_eq!(fence_of(&record), token_of(&procs[new]).await);
}

#[tokio::test(start_paused = true)]
async fn a_singleton_without_a_lease_backend_is_a_configuration_error() {
    let root = Container::root().await.unwrap();
    let app = App::new().component("job", Job::default).singleton();
    let err = app.install(&root, None).await.unwrap_err();
    assert!(matches!(err, Error::Config(ref m) if m.contains("KINESIS_LOCK_URL")), "{err}");
    let err = App::new().component("job", Job::default).make_singleton("nope").unwrap_err();
    assert!(err.to_string().contains("KINESIS_SINGLETONS"), "{err}");
}

/// A container as the singleton: what is added to it runs under its lease,
/// with its token, and its records are claimed and fenced.
#[tokio::test(start_paused = true)]
async fn a_singleton_container_fences_its_children() {
    let store: SharedStore = Arc::new(MemoryStore::new());
    let leases = Arc::new(MemoryLeases::new());
    let mut procs = Vec::new();
    for _ in 0..2 {
        let root = Container::root_with(Some(Persistence { store: store.clone(), cipher: None }))
            .await
            .unwrap();
        let link = Arc::new(Link { shared: leases.clone(), cut: AtomicBool::new(false) });
        App::new()
            .component("group", Container::new)
            .singleton()
            .leases(LeaseConfig { backend: link.clone(), ttl: TTL })
            .install(&root, None)
            .await
            .unwrap();
        procs.push(Process { root, link });
    }
    let group_of = |p: &Process| p.root.get_dyn("group").ok().and_then(|g| g.as_container());
    let old = loop {
        if let Some(i) = procs.iter().position(|p| group_of(p).is_some()) {
            break i;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let job = group_of(&procs[old]).unwrap().add("job", Job::default()).await.unwrap();
    let old_token = job.token().await.unwrap().expect("a child of a singleton has its token");
    assert_eq!(job.bump_after(0).await.unwrap(), 1);
    let record = store.load("/root/group/job").await.unwrap().unwrap();
    assert_eq!(fence_of(&record), old_token);
    let job = job.without_timeout();
    let slow = tokio::spawn(async move { job.bump_after(TTL.as_millis() as u64 * 3).await });
    tokio::time::sleep(Duration::from_millis(10)).await;
    procs[old].link.cut.store(true, Ordering::SeqCst);
    let new = 1 - old;
    let group = loop {
        if let Some(g) = group_of(&procs[new]) {
            break g;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    // The takeover claimed the child's record before anything was added.
    let record = store.load("/root/group/job").await.unwrap().unwrap();
    assert!(fence_of(&record) > old_token, "the child's record was claimed");
    let job = group.add("job", Job::default()).await.unwrap();
    assert!(job.token().await.unwrap().unwrap() > old_token);
    assert_eq!(job.bump_after(0).await.unwrap(), 2);
    let refused = slow.await.unwrap();
    assert!(matches!(refused, Err(Error::Fenced(_))), "{refused:?}");
    assert_eq!(store.load("/root/group/job").await.unwrap().unwrap().fields["count"], 2);
}
