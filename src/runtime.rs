//! [`Runtime`]: the root container, the add-ons, and clean shutdown on
//! SIGINT/SIGTERM.
//!
//! The signal handlers are installed by [`RuntimeBuilder::start`], before the
//! store is opened and before any add-on listens: from then on SIGINT and
//! SIGTERM no longer end the process by themselves, they are kept for
//! [`Runtime::run_until_signal`]. A signal that arrives before
//! `run_until_signal` is called (while the application is still adding its
//! components, say) is not lost: `run_until_signal` then shuts down at once.
//!
//! On the first signal the runtime stops the add-ons (newest first), then the
//! root container (its children newest first, depth first), all under
//! `KINESIS_SHUTDOWN_TIMEOUT`. A component finishes the message it is
//! handling; messages still queued, and later ones, get
//! [`Error::Stopping`](crate::Error::Stopping). A second signal exits the
//! process at once with code 130.

use std::path::PathBuf;
use std::sync::Arc;

use secrecy::ExposeSecret;

use crate::persist::{Cipher, Persistence, SharedStore, StoreRegistry};
use crate::{Config, Container, Error, Result};

/// Owns the root container (`/root`), the add-ons container (`/addons`, not
/// exposed over HTTP), the configuration and the SIGINT/SIGTERM handlers.
#[derive(Debug, Clone)]
pub struct Runtime {
    root: Container,
    addons: Container,
    config: Config,
    /// Installed at start (unless [`RuntimeBuilder::handle_signals`] said
    /// not to); shared by the clones, taken by
    /// [`Runtime::run_until_signal`] (one waiter at a time).
    signals: Arc<tokio::sync::Mutex<Option<Signals>>>,
}

/// How a shutdown went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShutdownReport {
    /// Whether everything stopped before the deadline.
    pub clean: bool,
    /// URIs of the components that had not stopped at the deadline.
    pub pending: Vec<String>,
}

impl ShutdownReport {
    /// 0 for a clean shutdown, 1 when the deadline passed.
    pub fn exit_code(&self) -> i32 {
        if self.clean {
            0
        } else {
            1
        }
    }
}

/// Configures and starts a [`Runtime`].
#[derive(Debug)]
pub struct RuntimeBuilder {
    config: Config,
    stores: StoreRegistry,
    default_connection: Option<String>,
    default_key_file: Option<PathBuf>,
    handle_signals: bool,
    layer: Option<StoreLayer>,
}

/// Wraps the store once it is open: what [`RuntimeBuilder::store_layer`] takes.
pub type StoreLayerFn =
    Box<dyn FnOnce(SharedStore) -> futures::future::BoxFuture<'static, Result<SharedStore>> + Send>;

/// A [`StoreLayerFn`] the builder holds.
struct StoreLayer(StoreLayerFn);

impl std::fmt::Debug for StoreLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StoreLayer")
    }
}

impl RuntimeBuilder {
    /// Whether [`start`](RuntimeBuilder::start) installs the SIGINT and
    /// SIGTERM handlers (default `true`). Without them a signal ends the
    /// process as usual and [`Runtime::run_until_signal`] returns only when
    /// the root is stopped: what tests want, so that ctrl-c still ends a
    /// test run.
    pub fn handle_signals(mut self, on: bool) -> Self {
        self.handle_signals = on;
        self
    }

    /// The back-ends that `KINESIS_DB_CONNECTION` may name.
    pub fn stores(mut self, stores: StoreRegistry) -> Self {
        self.stores = stores;
        self
    }

    /// Wraps the store after it is opened, before any component loads from
    /// it: how an add-on such as `kinesis-events` publishes every save and
    /// brings in the saves of other processes. An error stops the start.
    pub fn store_layer(
        mut self,
        layer: impl FnOnce(SharedStore) -> futures::future::BoxFuture<'static, Result<SharedStore>>
            + Send
            + 'static,
    ) -> Self {
        self.layer = Some(StoreLayer(Box::new(layer)));
        self
    }

    /// The store used when `KINESIS_DB_CONNECTION` is not set, and the key
    /// file created beside it (mode 0600) when no key is configured.
    pub fn default_store(mut self, url: &str, key_file: Option<PathBuf>) -> Self {
        self.default_connection = Some(url.to_owned());
        self.default_key_file = key_file;
        self
    }

    /// Installs signal handling (first, so that a signal is never missed
    /// once anything listens; see the [module docs](self)), opens the store
    /// and starts the containers.
    ///
    /// Errors: [`Error::Config`] when the signal handlers cannot be
    /// installed, or for the store and its keys.
    pub async fn start(self) -> Result<Runtime> {
        let signals = if self.handle_signals { Some(Signals::new()?) } else { None };
        let signals = Arc::new(tokio::sync::Mutex::new(signals));
        crate::tasks::TaskManager::global().set_workers(self.config.task_workers);
        let RuntimeBuilder { config, stores, default_connection, default_key_file, layer, .. } =
            self;
        let (url, is_default) = match (&config.db_connection, &default_connection) {
            (Some(u), _) => (Some(u.clone()), false),
            (None, Some(d)) => (Some(d.clone()), true),
            (None, None) => (None, false),
        };
        let persistence = match url {
            None => None,
            Some(url) => {
                stores.check(&url)?;
                let mut cipher = config.cipher()?;
                if cipher.is_none() && is_default {
                    if let Some(path) = &default_key_file {
                        let (key, created) = Cipher::load_or_create_key_file(path)?;
                        if created {
                            tracing::warn!(
                                path = %path.display(),
                                "no KINESIS_DB_SYMMETRIC_ENCRYPT_KEY set: created a random key file for encrypted fields; back it up, or set the variable"
                            );
                        }
                        cipher = Some(Cipher::new(key.expose_secret(), &[])?);
                    }
                }
                let mut store = stores.open(&url).await?;
                if let Some(StoreLayer(layer)) = layer {
                    store = layer(store).await?;
                }
                let store = crate::metrics::metered(store);
                tracing::info!(
                    store = store.backend(),
                    url = %crate::persist::redact_url(&url),
                    encryption = cipher.as_ref().map(|c| c.key_id().to_owned()),
                    "persistence ready"
                );
                Some(Persistence { store, cipher: cipher.map(Arc::new) })
            }
        };
        let root = Container::root_with(persistence.clone()).await?;
        let addons = Container::new();
        addons_root(&addons, persistence);
        crate::cell::spawn_component("addons", "/addons".into(), addons.clone(), None, None)
            .await?;
        Ok(Runtime { root, addons, config, signals })
    }
}

/// The id of this run of the process: 16 random hex digits, made once.
///
/// Versions count a component's changes since it was added in this
/// process, so version 5 before a restart and version 5 after it are not
/// the same state. Remote surfaces send this id with what they number by
/// version (the HTTP add-on's watch events), and a watcher that resumes
/// gives it back: a resume from another run starts with a fresh snapshot
/// instead of replaying versions that mean something else now.
///
/// ```
/// assert_eq!(kinesis::runtime::run_id().len(), 16);
/// assert_eq!(kinesis::runtime::run_id(), kinesis::runtime::run_id());
/// ```
pub fn run_id() -> &'static str {
    static RUN: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    RUN.get_or_init(|| format!("{:016x}", rand::random::<u64>()))
}

fn addons_root(addons: &Container, persistence: Option<Persistence>) {
    addons.bind_root("/addons", persistence);
}

impl Runtime {
    /// A builder for a runtime with `config`.
    pub fn builder(config: Config) -> RuntimeBuilder {
        RuntimeBuilder {
            config,
            stores: StoreRegistry::with_builtin(),
            default_connection: None,
            default_key_file: None,
            handle_signals: true,
            layer: None,
        }
    }

    /// The root container, `/root`: where the application's components go.
    pub fn root(&self) -> &Container {
        &self.root
    }

    /// The add-ons container, `/addons`: stopped before the root.
    pub fn addons(&self) -> &Container {
        &self.addons
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Stops the add-ons, then the root, under the configured deadline.
    pub async fn shutdown(&self) -> ShutdownReport {
        let stop = async {
            if let Err(e) = self.addons.shutdown().await {
                tracing::warn!(error = %e, "add-ons did not stop cleanly");
            }
            if let Err(e) = self.root.shutdown().await {
                tracing::warn!(error = %e, "root did not stop cleanly");
            }
        };
        match tokio::time::timeout(self.config.shutdown_timeout, stop).await {
            Ok(()) => ShutdownReport { clean: true, pending: Vec::new() },
            Err(_) => {
                let mut pending: Vec<String> = self
                    .addons
                    .walk()
                    .into_iter()
                    .chain(self.root.walk())
                    .map(|c| c.uri().to_owned())
                    .collect();
                for c in [&self.addons, &self.root] {
                    if c.handle().is_some_and(|h| h.stage() != crate::Stage::TornDown) {
                        pending.push(c.uri().to_owned());
                    }
                }
                tracing::error!(timeout = ?self.config.shutdown_timeout, ?pending, "shutdown deadline passed");
                ShutdownReport { clean: false, pending }
            }
        }
    }

    /// Waits for SIGINT or SIGTERM, or for the root container to be stopped
    /// (by a control message, such as `_control {"op":"stop"}` over HTTP),
    /// then shuts down. A signal that arrived
    /// since [`RuntimeBuilder::start`] counts, so this returns at once after
    /// one. A second signal while shutting down exits the process at once
    /// with code 130.
    ///
    /// Call it once per runtime: the clones share the handlers, and a second
    /// call waits while the first holds them (for good once the first signal
    /// came, as it then watches for the second).
    pub async fn run_until_signal(&self) -> Result<ShutdownReport> {
        let mut signals = Arc::clone(&self.signals).lock_owned().await;
        let root_stops = match self.root.handle() {
            Some(root) => {
                futures::future::Either::Left(root.wait_for_stage(crate::Stage::Stopping))
            }
            None => futures::future::Either::Right(std::future::pending()),
        };
        let next_signal = async {
            match signals.as_mut() {
                Some(signals) => signals.next().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            which = next_signal => tracing::info!(signal = which, "shutting down"),
            () = root_stops => tracing::info!("the root container was stopped: shutting down"),
        }
        if signals.is_some() {
            tokio::spawn(async move {
                if let Some(signals) = signals.as_mut() {
                    let again = signals.next().await;
                    eprintln!("second signal ({again}) during shutdown: exiting now");
                    std::process::exit(130);
                }
            });
        }
        Ok(self.shutdown().await)
    }
}

/// The SIGINT and SIGTERM streams (ctrl-c elsewhere). Signals delivered after
/// [`Signals::new`] are kept until [`Signals::next`] reads them.
struct Signals {
    #[cfg(unix)]
    int: tokio::signal::unix::Signal,
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
}

impl std::fmt::Debug for Signals {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Signals(SIGINT, SIGTERM)")
    }
}

impl Signals {
    fn new() -> Result<Self> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            let err =
                |e: std::io::Error| Error::Config(format!("cannot install signal handlers: {e}"));
            Ok(Signals {
                int: signal(SignalKind::interrupt()).map_err(err)?,
                term: signal(SignalKind::terminate()).map_err(err)?,
            })
        }
        #[cfg(not(unix))]
        {
            Ok(Signals {})
        }
    }

    async fn next(&mut self) -> &'static str {
        #[cfg(unix)]
        {
            tokio::select! {
                _ = self.int.recv() => "SIGINT",
                _ = self.term.recv() => "SIGTERM",
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
            "ctrl-c"
        }
    }
}
