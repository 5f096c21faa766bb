//! [`Directory`]: finds instances by name, in the static peer list and over
//! NATS, and hands out clients and remote handles for them.

use std::time::Duration;

use kinesis::remote::{Remote, RemoteDyn};
use kinesis::{Component, Error, Result};
use kinesis_client::{Client, ClientBuilder};

use crate::instance::{validate_instance_name, Instance};
use crate::peers::parse_peers;

/// How long a lookup waits for NATS instances to answer, by default.
pub const DEFAULT_WINDOW: Duration = Duration::from_millis(300);

/// Where instances are looked up: the peers of `KINESIS_PEERS`, and the
/// instances that answer over NATS (`KINESIS_EVENTS_URL`, with the `nats`
/// feature). A static peer wins over a NATS instance of the same name.
///
/// ```no_run
/// # async fn run() -> kinesis::Result<()> {
/// use kinesis_discovery::Directory;
///
/// let directory = Directory::from_env()?;
/// for instance in directory.instances().await? {
///     println!("{} at {:?}", instance.name, instance.urls);
/// }
/// // The counter of the instance called `orders`, by name:
/// let counter = directory.dyn_remote("orders", "/root/counter").await?;
/// let reply = counter.call("increment", serde_json::json!({"by": 1})).await?;
/// # Ok(()) }
/// ```
#[derive(Clone, Default)]
pub struct Directory {
    peers: Vec<Instance>,
    #[cfg(feature = "nats")]
    nats_url: Option<String>,
    window: Option<Duration>,
    token: Option<String>,
    timeout: Option<Duration>,
}

impl std::fmt::Debug for Directory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut d = f.debug_struct("Directory");
        d.field("peers", &self.peers);
        #[cfg(feature = "nats")]
        d.field("nats", &self.nats_url.as_deref().map(crate::nats::redact));
        d.finish_non_exhaustive()
    }
}

impl Directory {
    /// An empty directory: add peers and NATS with the builder methods.
    pub fn new() -> Directory {
        Directory::default()
    }

    /// The directory the environment describes: `KINESIS_PEERS`,
    /// `KINESIS_EVENTS_URL` (NATS, with the `nats` feature) and
    /// `KINESIS_TOKEN` for the clients it makes.
    pub fn from_env() -> Result<Directory> {
        let mut directory = Directory::new();
        if let Some(peers) = kinesis::config::env_var("KINESIS_PEERS").transpose()? {
            directory.peers = parse_peers(&peers)?;
        }
        #[cfg(feature = "nats")]
        if let Some(url) = kinesis::config::env_var("KINESIS_EVENTS_URL").transpose()? {
            crate::nats::check_url("KINESIS_EVENTS_URL", &url)?;
            directory.nats_url = Some(url);
        }
        if let Some(token) = kinesis::config::env_var("KINESIS_TOKEN").transpose()? {
            directory.token = Some(token).filter(|t| !t.trim().is_empty());
        }
        Ok(directory)
    }

    /// Adds the static peers of a `name=url,…` list.
    pub fn peers(mut self, list: &str) -> Result<Directory> {
        self.peers.extend(parse_peers(list)?);
        Ok(self)
    }

    /// Looks instances up over the NATS server at `url` too.
    #[cfg(feature = "nats")]
    pub fn nats(mut self, url: &str) -> Result<Directory> {
        crate::nats::check_url("NATS URL", url)?;
        self.nats_url = Some(url.to_owned());
        Ok(self)
    }

    /// How long a lookup waits for NATS instances to answer (default
    /// [`DEFAULT_WINDOW`]): every instance answers at once, so this is the
    /// worst round trip to wait for.
    pub fn window(mut self, window: Duration) -> Directory {
        self.window = Some(window);
        self
    }

    /// The bearer token of the clients it makes.
    pub fn token(mut self, token: impl Into<String>) -> Directory {
        self.token = Some(token.into());
        self
    }

    /// The request timeout of the clients it makes.
    pub fn timeout(mut self, timeout: Duration) -> Directory {
        self.timeout = Some(timeout);
        self
    }

    fn window_or_default(&self) -> Duration {
        self.window.unwrap_or(DEFAULT_WINDOW)
    }

    /// Every instance known now: the static peers (their components asked
    /// over their own URL), then those that answer over NATS within the
    /// window, sorted by name.
    pub async fn instances(&self) -> Result<Vec<Instance>> {
        let window = self.window_or_default();
        let peers = self.peers.iter().map(|peer| async move {
            let mut peer = peer.clone();
            peer.components = self.components_over_client(&peer, window).await;
            peer
        });
        let mut out: Vec<Instance> = futures::future::join_all(peers).await;
        #[cfg(feature = "nats")]
        if let Some(url) = &self.nats_url {
            let client = crate::nats::connect_now(url, window.max(Duration::from_secs(2))).await?;
            for found in crate::nats::find_all(&client, window).await? {
                if !self.peers.iter().any(|p| p.name == found.name) {
                    out.push(found);
                }
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name).then_with(|| a.id.cmp(&b.id)));
        Ok(out)
    }

    async fn components_over_client(
        &self,
        peer: &Instance,
        window: Duration,
    ) -> Option<Vec<String>> {
        let client = self.builder(peer.url().ok()?).timeout(window.max(Duration::from_secs(1)));
        let tree = client.build().ok()?.tree().await.ok()?;
        Some(tree.into_iter().map(|node| node.uri).collect())
    }

    /// The instance called `name`. A static peer is taken without asking
    /// anything; over NATS, when several instances share the name, the
    /// first to answer. `NotFound` names the instances that are known.
    pub async fn find(&self, name: &str) -> Result<Instance> {
        validate_instance_name(name)?;
        if let Some(peer) = self.peers.iter().find(|p| p.name == name) {
            return Ok(peer.clone());
        }
        let known = self.instances().await?;
        if let Some(found) = known.iter().find(|i| i.name == name) {
            return Ok(found.clone());
        }
        let names: Vec<&str> = known.iter().map(|i| i.name.as_str()).collect();
        Err(Error::NotFound(format!(
            "no instance called `{name}` ({})",
            if names.is_empty() { self.nowhere() } else { format!("known: {}", names.join(", ")) }
        )))
    }

    /// Why nothing was found: where it looked.
    fn nowhere(&self) -> String {
        #[cfg(feature = "nats")]
        let nats = self.nats_url.is_some();
        #[cfg(not(feature = "nats"))]
        let nats = false;
        match (self.peers.is_empty(), nats) {
            (true, false) => "no KINESIS_PEERS and no NATS (KINESIS_EVENTS_URL) to look in".into(),
            (_, true) => "none answered over NATS and none is a static peer".into(),
            (false, false) => "none is a static peer".into(),
        }
    }

    fn builder(&self, url: &str) -> ClientBuilder {
        let mut builder = Client::builder(url);
        if let Some(token) = &self.token {
            builder = builder.token(token.clone());
        }
        if let Some(timeout) = self.timeout {
            builder = builder.timeout(timeout);
        }
        builder
    }

    /// A client of the instance called `name`.
    pub async fn client(&self, name: &str) -> Result<Client> {
        let instance = self.find(name).await?;
        self.builder(instance.url()?).build()
    }

    /// The component of type `C` at `uri` on the instance called `name`.
    pub async fn remote<C: Component>(&self, name: &str, uri: &str) -> Result<Remote<C>> {
        Ok(self.client(name).await?.remote(uri))
    }

    /// The component at `uri` on the instance called `name`, by name.
    pub async fn dyn_remote(&self, name: &str, uri: &str) -> Result<RemoteDyn> {
        Ok(self.client(name).await?.dyn_remote(uri))
    }
}
