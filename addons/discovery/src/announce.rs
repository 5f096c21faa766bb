//! [`Announcer`]: the add-on that makes this runtime findable by name over
//! NATS while it runs.

use std::collections::HashMap;
use std::sync::Arc;

use async_nats::service::{Service, ServiceExt};
use futures::StreamExt;
use kinesis::{Component, Container, Context, Error, Handle, Result, Runtime};
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

use crate::nats::{self, META_INSTANCE, META_RUN, META_URLS, SERVICE};

/// Announces a runtime on NATS under an instance name, with the URLs it is
/// reached at, and answers the protocol's pings and the question "which
/// components do you hold" for as long as it runs. Stopping it withdraws
/// the instance at once (the runtime's shutdown stops add-ons in reverse
/// order of addition, before `/root`: added last, it is withdrawn before
/// the servers drain); a killed process stops answering, so it drops out of
/// every later lookup.
///
/// Its state, shown at `/_addons/discovery` like other add-ons' state, is
/// the name, the URLs and the NATS service id once started.
#[derive(Clone, Default, Serialize, Deserialize)]
pub struct Announcer {
    instance: String,
    urls: Vec<String>,
    /// The NATS service instance id, set by `start`.
    id: Option<String>,
    #[serde(skip)]
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    /// Never shown: it may carry credentials.
    nats_url: String,
    root: Container,
    service: Mutex<Option<Service>>,
}

impl std::fmt::Debug for Announcer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Announcer")
            .field("instance", &self.instance)
            .field("urls", &self.urls)
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl Announcer {
    /// An announcer of the components under `root` as instance `instance`,
    /// reached at `urls` (preferred first), over the NATS server at
    /// `nats_url`. Not started: add it to a container (the runtime's
    /// add-ons) to start it.
    pub fn new(
        instance: &str,
        urls: Vec<String>,
        nats_url: &str,
        root: Container,
    ) -> Result<Announcer> {
        crate::validate_instance_name(instance)?;
        nats::check_url("KINESIS_EVENTS_URL", nats_url)?;
        Ok(Announcer {
            instance: instance.to_owned(),
            urls,
            id: None,
            inner: Arc::new(Inner {
                nats_url: nats_url.to_owned(),
                root,
                service: Mutex::new(None),
            }),
        })
    }

    /// The NATS service id of this instance while it runs.
    pub fn id(&self) -> Option<&str> {
        self.id.as_deref()
    }
}

impl Component for Announcer {
    async fn start(&mut self, ctx: &mut Context<Self>) -> Result<()> {
        let client = nats::connect(&self.inner.nats_url, &self.instance).await?;
        let metadata = HashMap::from([
            (META_INSTANCE.to_owned(), self.instance.clone()),
            (META_URLS.to_owned(), self.urls.join(" ")),
            (META_RUN.to_owned(), kinesis::runtime::run_id().to_owned()),
        ]);
        let service = client
            .service_builder()
            .description(format!("kinesis instance {}", self.instance))
            .metadata(metadata)
            .start(SERVICE, env!("CARGO_PKG_VERSION"))
            .await
            .map_err(|e| Error::Unreachable(format!("announcing on NATS: {e}")))?;
        let id = service.info().await.id;
        let mut endpoint = service
            .group(nats::components_group(&id))
            .endpoint("components")
            .await
            .map_err(|e| Error::Unreachable(format!("announcing on NATS: {e}")))?;
        let root = self.inner.root.clone();
        ctx.spawn(async move {
            while let Some(request) = endpoint.next().await {
                let uris: Vec<String> = root
                    .walk()
                    .into_iter()
                    .filter(|c| c.exposed())
                    .map(|c| c.uri().to_owned())
                    .collect();
                let body = serde_json::to_vec(&uris).unwrap_or_else(|_| b"[]".to_vec());
                if let Err(e) = request.respond(Ok(body.into())).await {
                    tracing::debug!(error = %e, "cannot answer a components request");
                }
            }
            Ok(())
        });
        tracing::info!(instance = %self.instance, %id, urls = %self.urls.join(" "), "announced on NATS");
        *self.inner.service.lock().await = Some(service);
        self.id = Some(id);
        Ok(())
    }

    async fn stop(&mut self, _ctx: &mut Context<Self>) -> Result<()> {
        if let Some(service) = self.inner.service.lock().await.take() {
            if let Err(e) = service.stop().await {
                tracing::warn!(error = %e, "withdrawing the NATS announcement failed");
            }
        }
        self.id = None;
        Ok(())
    }

    fn exposed(&self) -> bool {
        false
    }
}

/// Starts an [`Announcer`] for `runtime` as the add-on `discovery`. Add it
/// after the servers whose URLs it announces: add-ons stop in reverse
/// order, so the instance is withdrawn first, then the servers drain, then
/// `/root` stops.
pub async fn announce(
    runtime: &Runtime,
    instance: &str,
    urls: Vec<String>,
    nats_url: &str,
) -> Result<Handle<Announcer>> {
    let announcer = Announcer::new(instance, urls, nats_url, runtime.root().clone())?;
    runtime.addons().add("discovery", announcer).await
}
