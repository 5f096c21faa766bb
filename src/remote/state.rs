//! [`StateHandle`]: reading and writing a component's state, wherever it
//! runs.

use std::future::Future;
use std::sync::Arc;

use super::Remote;
use crate::{Component, Control, ETag, Handle, Result, Snapshot};

/// What every handle of a component of type `C` does with its state, in
/// process ([`Handle<C>`]) or remote ([`Remote<C>`]): read the snapshot,
/// replace the state under an ETag, send a control. With the generated
/// handle trait (`CounterHandle`) for the methods, code written against
/// both runs unchanged on either:
///
/// ```ignore
/// async fn reset<H: CounterHandle + StateHandle<Counter>>(h: &H) -> kinesis::Result<()> {
///     let now = h.read().await?;
///     h.write(Counter::default(), &now.etag).await?;
///     Ok(())
/// }
/// ```
pub trait StateHandle<C: Component>: Send + Sync {
    /// The component's URI.
    fn uri(&self) -> &str;

    /// The latest snapshot.
    fn read(&self) -> impl Future<Output = Result<Arc<Snapshot<C>>>> + Send;

    /// Replaces the state if it is still at `if_match`; else
    /// [`Error::Conflict`](crate::Error::Conflict) with the current ETag.
    fn write(
        &self,
        state: C,
        if_match: &ETag,
    ) -> impl Future<Output = Result<Arc<Snapshot<C>>>> + Send;

    /// Sends a control and waits until it was carried out.
    fn send_control(&self, control: Control) -> impl Future<Output = Result<()>> + Send;
}

impl<C: Component> StateHandle<C> for Handle<C> {
    fn uri(&self) -> &str {
        Handle::uri(self)
    }

    async fn read(&self) -> Result<Arc<Snapshot<C>>> {
        Ok(self.snapshot())
    }

    async fn write(&self, state: C, if_match: &ETag) -> Result<Arc<Snapshot<C>>> {
        self.replace(state, if_match).await
    }

    async fn send_control(&self, control: Control) -> Result<()> {
        self.control(control).await
    }
}

impl<C: Component> StateHandle<C> for Remote<C> {
    fn uri(&self) -> &str {
        Remote::uri(self)
    }

    async fn read(&self) -> Result<Arc<Snapshot<C>>> {
        self.snapshot().await
    }

    async fn write(&self, state: C, if_match: &ETag) -> Result<Arc<Snapshot<C>>> {
        self.replace(state, if_match).await
    }

    async fn send_control(&self, control: Control) -> Result<()> {
        self.control(control).await
    }
}
