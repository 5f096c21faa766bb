//! [`TestRuntime`]: a [`Runtime`] for tests, built in one line.

use std::path::Path;

use crate::persist::StoreRegistry;
use crate::{Config, Container, Result, Runtime, ShutdownReport};

/// The encryption key of every [`TestRuntime`] unless
/// [`TestRuntimeBuilder::key`] sets another: base64 of 32 fixed bytes, so
/// that encrypted fields work and a test can reopen what it wrote. Never
/// use it outside tests.
pub const TEST_KEY: &str = "a2luZXNpcy10ZXN0LWtleS0zMi1ieXRlcy1maXhlZCE=";

/// A [`Runtime`] for tests: a root container (`/root`) and an add-ons
/// container (`/addons`) over a store, with no signal handlers (ctrl-c still
/// ends the test run).
///
/// * [`TestRuntime::memory`]: the `memory://` store and [`TEST_KEY`].
/// * [`TestRuntime::builder`]: other stores, such as filedb in a temporary
///   directory that lives as long as the `TestRuntime`.
///
/// [`shutdown`](TestRuntime::shutdown) stops everything (add-ons, then the
/// root, each newest first) and then removes the temporary directory.
/// Dropping a `TestRuntime` that was not shut down does not wait: inside a
/// tokio runtime it starts that shutdown in a task of its own (cancelled
/// with the tokio runtime at the end of the test), and the directory is
/// removed when that task ends or is cancelled; outside one it only removes
/// the directory.
///
/// ```
/// use kinesis::testing::TestRuntime;
/// use kinesis::{Component, Stage};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Clone, Default, Serialize, Deserialize)]
/// struct Probe;
/// impl Component for Probe {}
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let rt = TestRuntime::memory().await;
/// let probe = rt.root().add("probe", Probe).await?;
/// assert_eq!(probe.stage(), Stage::Started);
/// assert!(rt.shutdown().await.clean);
/// assert_eq!(probe.stage(), Stage::TornDown);
/// # Ok::<(), kinesis::Error>(()) }).unwrap();
/// ```
#[derive(Debug)]
pub struct TestRuntime {
    runtime: Runtime,
    url: String,
    dir: Option<tempfile::TempDir>,
    shut_down: bool,
}

/// How the store URL of a [`TestRuntimeBuilder`] is made.
enum Url {
    Fixed(String),
    InTempDir(Box<dyn FnOnce(&Path) -> String + Send>),
}

/// Configures a [`TestRuntime`]; [`TestRuntime::builder`].
///
/// ```
/// use std::sync::Arc;
///
/// use kinesis::persist::{MemoryStore, SharedStore};
/// use kinesis::testing::TestRuntime;
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// // A back-end registered by the test; filedb in a temporary directory is
/// // `.stores(kinesis_filedb::register).temp_dir("file://")`.
/// let rt = TestRuntime::builder()
///     .stores(|registry| {
///         registry.register("mem", |_url| {
///             Box::pin(async { Ok(Arc::new(MemoryStore::new()) as SharedStore) })
///         });
///     })
///     .temp_dir("mem://")
///     .start()
///     .await?;
/// assert!(rt.url().starts_with("mem:///"));
/// let dir = rt.dir().unwrap().to_owned();
/// assert!(dir.is_dir());
/// rt.shutdown().await;
/// assert!(!dir.exists());
/// # Ok::<(), kinesis::Error>(()) }).unwrap();
/// ```
pub struct TestRuntimeBuilder {
    config: Config,
    stores: StoreRegistry,
    url: Url,
}

impl std::fmt::Debug for TestRuntimeBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let url = match &self.url {
            Url::Fixed(u) => u.as_str(),
            Url::InTempDir(_) => "(in a temporary directory)",
        };
        f.debug_struct("TestRuntimeBuilder")
            .field("config", &self.config)
            .field("stores", &self.stores)
            .field("url", &url)
            .finish()
    }
}

impl TestRuntime {
    /// A runtime over a new `memory://` store with [`TEST_KEY`].
    ///
    /// # Panics
    ///
    /// If it cannot start (it always can, short of a bug).
    pub async fn memory() -> TestRuntime {
        match TestRuntime::builder().start().await {
            Ok(rt) => rt,
            Err(e) => panic!("the memory test runtime did not start: {e}"),
        }
    }

    /// A builder: `memory://`, [`TEST_KEY`], the default [`Config`]
    /// otherwise, and only the core's stores until
    /// [`stores`](TestRuntimeBuilder::stores) adds more.
    pub fn builder() -> TestRuntimeBuilder {
        TestRuntimeBuilder {
            config: Config { encrypt_key: Some(TEST_KEY.to_owned()), ..Config::default() },
            stores: StoreRegistry::with_builtin(),
            url: Url::Fixed("memory://".to_owned()),
        }
    }

    /// The root container, `/root`.
    pub fn root(&self) -> &Container {
        self.runtime.root()
    }

    /// The runtime: its add-ons container (`/addons`, where an HTTP server
    /// goes), its configuration.
    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    /// The store URL the runtime opened.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The temporary directory, if the builder made one.
    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_ref().map(tempfile::TempDir::path)
    }

    /// Stops the add-ons, then the root, under the configured deadline, and
    /// removes the temporary directory.
    pub async fn shutdown(mut self) -> ShutdownReport {
        self.shut_down = true;
        let report = self.runtime.shutdown().await;
        drop(self.dir.take());
        report
    }
}

impl Drop for TestRuntime {
    fn drop(&mut self) {
        if self.shut_down {
            return;
        }
        let dir = self.dir.take();
        if let Ok(tokio) = tokio::runtime::Handle::try_current() {
            let runtime = self.runtime.clone();
            tokio.spawn(async move {
                runtime.shutdown().await;
                drop(dir);
            });
        }
    }
}

impl TestRuntimeBuilder {
    /// Adds store back-ends, such as `kinesis_filedb::register` or
    /// `kinesis_sql::register` (the core has only `memory://`).
    pub fn stores(mut self, register: impl FnOnce(&mut StoreRegistry)) -> Self {
        register(&mut self.stores);
        self
    }

    /// Opens the store at `url` (default `memory://`).
    pub fn url(mut self, url: &str) -> Self {
        self.url = Url::Fixed(url.to_owned());
        self
    }

    /// Opens the store at `prefix` followed by the path of a new temporary
    /// directory: `temp_dir("file://")` for filedb. The directory is removed
    /// with the [`TestRuntime`].
    pub fn temp_dir(self, prefix: &str) -> Self {
        let prefix = prefix.to_owned();
        self.temp_dir_url(move |dir| format!("{prefix}{}", dir.display()))
    }

    /// Opens the store at the URL `url` makes of the path of a new
    /// temporary directory, such as
    /// `|dir| format!("sqlite://{}/test.db", dir.display())`.
    pub fn temp_dir_url(mut self, url: impl FnOnce(&Path) -> String + Send + 'static) -> Self {
        self.url = Url::InTempDir(Box::new(url));
        self
    }

    /// The encryption key (default [`TEST_KEY`]); `None` for none, so that
    /// components with encrypted fields refuse to start.
    pub fn key(mut self, key: Option<&str>) -> Self {
        self.config.encrypt_key = key.map(str::to_owned);
        self
    }

    /// Changes the configuration, such as its `shutdown_timeout`. Its
    /// `db_connection` is replaced by the builder's URL.
    pub fn config(mut self, change: impl FnOnce(&mut Config)) -> Self {
        change(&mut self.config);
        self
    }

    /// Makes the temporary directory (if asked for), opens the store and
    /// starts the runtime.
    ///
    /// Errors: [`Error::Config`](crate::Error::Config) for a scheme not
    /// registered or a bad key, the store's error if it cannot open, and
    /// [`Error::Store`](crate::Error::Store) if the directory cannot be made.
    pub async fn start(self) -> Result<TestRuntime> {
        let TestRuntimeBuilder { mut config, stores, url } = self;
        let (url, dir) = match url {
            Url::Fixed(url) => (url, None),
            Url::InTempDir(make) => {
                let dir =
                    tempfile::Builder::new().prefix("kinesis-test-").tempdir().map_err(|e| {
                        crate::Error::Store(format!("cannot make a temporary directory: {e}"))
                    })?;
                (make(dir.path()), Some(dir))
            }
        };
        config.db_connection = Some(url.clone());
        let runtime = Runtime::builder(config).stores(stores).handle_signals(false).start().await?;
        Ok(TestRuntime { runtime, url, dir, shut_down: false })
    }
}
