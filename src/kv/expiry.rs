//! The timer that removes expired keys.

use std::future::pending;
use std::time::Duration;

use super::Kv;
use crate::{Context, Error, Handle, Handler, Result};

/// Removes the expired keys now, in one write; answers how many there
/// were. The store's own timer sends it when the earliest key is due; there
/// is no need to send it otherwise (expired keys are invisible anyway), but
/// it does no harm.
#[derive(Clone, Copy, Debug, Default)]
pub struct Sweep;

impl Handler<Sweep> for Kv {
    type Reply = usize;

    async fn handle(&mut self, _: Sweep, _: &mut Context<Self>) -> Result<usize> {
        let before = self.entries.len();
        if self.remove_expired() {
            self.revision += 1;
        }
        Ok(before - self.entries.len())
    }
}

/// How long the timer waits after a failed sweep.
const RETRY: Duration = Duration::from_secs(1);

/// Runs for as long as the store does: sleeps until the earliest expiry of
/// the latest snapshot, sweeps, and looks again whenever the state changes
/// (a put may bring an earlier expiry).
pub(super) async fn run(kv: Handle<Kv>) -> Result<()> {
    let mut changes = kv.subscribe();
    loop {
        let snapshot = kv.snapshot();
        let due = snapshot.state.next_expiry().map(|at| snapshot.state.clock.instant_of(at));
        drop(snapshot);
        let sleep = async {
            match due {
                Some(at) => tokio::time::sleep_until(at).await,
                None => pending().await,
            }
        };
        tokio::select! {
            () = sleep => match kv.ask(Sweep).await {
                Ok(removed) => tracing::debug!(removed, "expired keys removed"),
                Err(Error::Stopping(_)) => return Ok(()),
                // A full mailbox, a slow commit or a failing store: try
                // again a little later rather than at once.
                Err(e) => {
                    tracing::warn!(error = %e, "removing expired keys failed; retrying in 1 s");
                    tokio::time::sleep(RETRY).await;
                }
            },
            change = changes.recv() => {
                if let Ok(None) = change {
                    return Ok(());
                }
            }
        }
    }
}
