//! The singleton runner: starts a component while this process holds its
//! lease, and stops it when the lease is lost.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::{Lease, LeaseConfig};
use crate::persist::{claim, schema_of, FencedStore, Persistence};
use crate::{Component, Container, Stage};

/// How a singleton is run.
#[derive(Debug, Clone)]
pub struct SingletonOptions {
    /// The backend and lease time.
    pub leases: LeaseConfig,
    /// How often a process that does not hold the lease tries to take it.
    /// The default is a sixth of the lease time (at least 50 ms): a
    /// takeover comes at most that long after the lease expired.
    pub retry: Duration,
}

impl SingletonOptions {
    /// Options with the default retry interval.
    pub fn new(leases: LeaseConfig) -> Self {
        let retry = (leases.ttl / 6).max(Duration::from_millis(50));
        SingletonOptions { leases, retry }
    }

    /// How long this process counts a lease as held after it sent the
    /// request that took or renewed it: the lease time less a fifth, a
    /// margin for stopping the component and for clock rate differences.
    fn local_ttl(&self) -> Duration {
        self.leases.ttl - self.leases.ttl / 5
    }
}

/// Why a holder stopped holding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ended {
    /// The backend said the lease is gone.
    Lost,
    /// The lease time passed (this process's clock) without a renewal.
    Expired,
    /// The component stopped on its own (or its container is stopping).
    Stopped,
}

impl Ended {
    fn reason(self) -> &'static str {
        match self {
            Ended::Lost => "lease lost",
            Ended::Expired => "lease time passed without a renewal",
            Ended::Stopped => "component stopped",
        }
    }
}

/// Runs the component `name` of `container`, made by `make`, as a
/// singleton: it is started only while this process holds the lease named
/// after its URI, with its persisted fields fenced by the lease's token
/// ([`FencedStore`]) and claimed before it starts. The lease is renewed
/// every third of the lease time; the component is stopped as soon as a
/// renewal says the lease is lost or the lease time (less a fifth) passes
/// without a successful renewal, by this process's clock. Then the lease
/// is released and this process competes for it again.
///
/// Returns when `container` stops. Log lines (target `kinesis::lease`):
/// `singleton started` and `singleton stopped`, with the URI and token.
pub async fn run_singleton<C, F>(
    container: Container,
    name: String,
    make: F,
    options: SingletonOptions,
) where
    C: Component,
    F: Fn() -> C + Send + Sync + 'static,
{
    let uri = format!("{}/{name}", container.uri());
    let backend = Arc::clone(&options.leases.backend);
    let ttl = options.leases.ttl;
    while !container.is_closing() {
        let asked = Instant::now();
        match backend.acquire(&uri, ttl).await {
            Ok(Some(lease)) => {
                let deadline = asked + options.local_ttl();
                let ended = hold(&container, &name, &make, &options, &lease, deadline).await;
                if let Err(e) = backend.release(&lease).await {
                    tracing::warn!(target: "kinesis::lease", %uri, error = %e, "cannot release the lease; it expires by itself");
                }
                if ended.is_err() {
                    // Could not start: give the others a turn first.
                    tokio::time::sleep(ttl).await;
                    continue;
                }
            }
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(target: "kinesis::lease", %uri, error = %e, "cannot ask for the lease")
            }
        }
        tokio::time::sleep(options.retry).await;
    }
}

/// Claims, starts and keeps the component while the lease lasts.
async fn hold<C, F>(
    container: &Container,
    name: &str,
    make: &F,
    options: &SingletonOptions,
    lease: &Lease,
    mut deadline: Instant,
) -> Result<Ended, ()>
where
    C: Component,
    F: Fn() -> C,
{
    let uri = lease.name.as_str();
    let token = lease.token;
    let fenced = container
        .persistence()
        .map(|p| (Arc::new(FencedStore::new(Arc::clone(&p.store), token)), p.cipher.clone()));
    // The claim: from now on every write of an older holder is refused.
    if let (Some((store, _)), Some(schema)) = (&fenced, schema_of::<C>()) {
        if !schema.fields.is_empty() {
            if let Err(e) = claim(store, uri, schema.type_name).await {
                tracing::error!(target: "kinesis::lease", %uri, token, error = %e, "cannot claim the singleton's record");
                return Err(());
            }
        }
    }
    // A container's children persisted under it by an earlier holder.
    if let Some((store, _)) = &fenced {
        if let Err(e) = claim_below(store, uri).await {
            tracing::error!(target: "kinesis::lease", %uri, token, error = %e, "cannot claim the records below the singleton");
            return Err(());
        }
    }
    let persistence = fenced.map(|(store, cipher)| Persistence { store, cipher });
    let started =
        match container.prepare_with(name, make(), persistence.as_ref().map(|p| (p, token))) {
            Ok(prepared) => prepared.start().await,
            Err(e) => Err(e),
        };
    let handle = match started {
        Ok(handle) => handle,
        Err(e) => {
            if !container.is_closing() {
                tracing::error!(target: "kinesis::lease", %uri, token, error = %e, "the singleton did not start");
            }
            return Err(());
        }
    };
    tracing::info!(target: "kinesis::lease", %uri, token, "singleton started");
    let backend = &options.leases.backend;
    let ttl = options.leases.ttl;
    let mut torn_down = std::pin::pin!(handle.wait_for_stage(Stage::TornDown));
    let ended = loop {
        let next = (Instant::now() + ttl / 3).min(deadline);
        tokio::select! {
            biased;
            () = &mut torn_down => break Ended::Stopped,
            () = tokio::time::sleep_until(next) => {}
        }
        // After a pause every timer fires at once: the clock decides first.
        if Instant::now() >= deadline {
            break Ended::Expired;
        }
        let sent = Instant::now();
        match tokio::time::timeout_at(deadline, backend.renew(lease, ttl)).await {
            Ok(Ok(true)) if Instant::now() < deadline => deadline = sent + options.local_ttl(),
            Ok(Ok(true)) | Err(_) => break Ended::Expired,
            Ok(Ok(false)) => break Ended::Lost,
            Ok(Err(e)) => {
                tracing::warn!(target: "kinesis::lease", %uri, token, error = %e, "cannot renew the lease; trying again until it expires");
            }
        }
    };
    if ended != Ended::Stopped {
        tracing::warn!(target: "kinesis::lease", %uri, token, reason = ended.reason(), "stopping the singleton");
    }
    if let Err(e) = handle.shutdown().await {
        tracing::warn!(target: "kinesis::lease", %uri, token, error = %e, "the singleton did not stop cleanly");
    }
    handle.wait_for_stage(Stage::TornDown).await;
    tracing::info!(target: "kinesis::lease", %uri, token, reason = ended.reason(), "singleton stopped");
    Ok(ended)
}

/// Claims every record under `uri/` (the children of a singleton container).
async fn claim_below(store: &FencedStore, uri: &str) -> crate::persist::StoreResult<()> {
    use crate::persist::Store;
    for child in store.list(&format!("{uri}/")).await? {
        if let Some(record) = store.load(&child).await? {
            claim(store, &child, &record.type_name).await?;
        }
    }
    Ok(())
}
