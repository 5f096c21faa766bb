//! Live configuration: a component holding an application's configuration,
//! read from a TOML file with environment overrides, validated, and
//! reloaded on SIGHUP and when the file changes (Cargo feature `settings`).
//!
//! [`Settings<T>`] holds a `T` of the application's own
//! (`Clone + Serialize + DeserializeOwned`). [`Settings::builder`] (or
//! [`Settings::builder_from_env`], which reads the path from
//! `KINESIS_CONFIG_FILE`) configures it; [`SettingsBuilder::load`] reads
//! the file once, and fails with [`Error::Config`] saying why, so a bad
//! configuration stops the program at start. Add it to the tree like any
//! component; other components read [`Settings::config`] from its latest
//! snapshot, or react to changes with `on_change`/`subscribe`.
//!
//! # Reading
//!
//! 1. The file is parsed as TOML.
//! 2. Environment overrides are applied: a variable named
//!    `KINESIS_CONFIG__SECTION__KEY` (the prefix is
//!    [`SettingsBuilder::env_prefix`], `__` separates the levels, names are
//!    lower-cased) sets `section.key`. Its value is read as a TOML value when
//!    it is one (`8080`, `true`, `"text"`, `[1, 2]`) and as a string
//!    otherwise (`postgres://db/app`). Overrides are read again at every
//!    reload.
//! 3. The result is deserialised into `T`, then checked by the validation
//!    closure ([`SettingsBuilder::validate`]), if any.
//!
//! A failure at any step is a *reason*: the file, the line and column or
//! the key path, and what is wrong. Reasons never quote a value from the
//! file or the environment (serde's quoted values are replaced by `…`),
//! since configuration holds secrets; what a validation closure returns is
//! used as it is, so it should not quote values either.
//!
//! # Reloading
//!
//! A reload is a [`Reload`] message, so it runs in the component's mailbox,
//! one at a time. It is sent on every SIGHUP (on Unix; the listener is
//! installed when the component starts and, as with any tokio signal
//! listener, SIGHUP no longer terminates the process from then on), and when
//! the file changes: the file's directory is watched (so a file replaced by
//! a rename, as editors and deployments do, is seen) and a reload is sent
//! once the changes have been quiet for [`SettingsBuilder::debounce`].
//! Both can be turned off.
//!
//! * A valid file with a different configuration **replaces** the old one:
//!   [`Settings::generation`] goes up by one and `last_error` is cleared.
//!   The new state is committed by the mailbox like any change, so
//!   subscribers and `on_change` callbacks get a [`Change::Updated`](crate::Change::Updated).
//! * A valid file with the same configuration changes nothing (`last_error`
//!   is cleared if it was set).
//! * An invalid file (unreadable, not TOML, not a `T`, refused by the
//!   validation) **keeps the old configuration**. The reason is logged as a
//!   warning, kept in [`Settings::last_error`] and counted in
//!   [`Settings::failed_reloads`]; that is a change of the state too, so it
//!   is published, with the same generation.
//!
//! So a component that reacts to new configurations compares generations:
//!
//! ```
//! use serde::{Deserialize, Serialize};
//! use kinesis::settings::{Reload, Reloaded, Settings};
//! use kinesis::{Change, Container, Position};
//!
//! #[derive(Clone, Debug, Serialize, Deserialize)]
//! struct App {
//!     workers: u32,
//! }
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let dir = tempfile::tempdir().unwrap();
//! let path = dir.path().join("app.toml");
//! std::fs::write(&path, "workers = 4\n").unwrap();
//!
//! let settings = Settings::<App>::builder(&path)
//!     // This example reloads by hand; by default SIGHUP and edits do.
//!     .reload_on_sighup(false)
//!     .watch_file(false)
//!     .validate(|app: &App| if app.workers == 0 { Err("`workers` must be at least 1".into()) } else { Ok(()) })
//!     .load()?;
//! let root = Container::root().await?;
//! let config = root.add("config", settings).await?;
//! assert_eq!(config.snapshot().state.config().workers, 4);
//! config.on_change(Position::Tail, |change| async move {
//!     if let Change::Updated { prev, curr } = change {
//!         if prev.state.generation() != curr.state.generation() {
//!             println!("now {} workers", curr.state.config().workers);
//!         }
//!     }
//! });
//!
//! std::fs::write(&path, "workers = 0\n").unwrap();
//! let Reloaded::Rejected { reason } = config.ask(Reload).await? else { panic!() };
//! assert!(reason.contains("at least 1"));
//! assert_eq!(config.snapshot().state.config().workers, 4, "the old configuration is kept");
//!
//! std::fs::write(&path, "workers = 8\n").unwrap();
//! assert_eq!(config.ask(Reload).await?, Reloaded::Applied { generation: 2 });
//! root.shutdown().await?;
//! # Ok::<(), kinesis::Error>(()) }).unwrap();
//! ```
//!
//! # Exposure
//!
//! Configuration often holds secrets, so a `Settings` is kept off the HTTP
//! surface unless [`SettingsBuilder::exposed`] says otherwise; its state
//! (`config`, `path`, `generation`, `failed_reloads`, `last_error`) is then
//! served like any component's. A `PUT` or `PATCH` of it (with `If-Match`)
//! replaces the state as given, without the validation: grant `write` on
//! it to no one but administrators.

mod source;
mod triggers;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::{Component, Context, Error, Handler, Result};

/// The variable naming the configuration file of
/// [`Settings::builder_from_env`].
pub const CONFIG_FILE_VAR: &str = "KINESIS_CONFIG_FILE";

/// The default prefix of the environment overrides.
pub const DEFAULT_ENV_PREFIX: &str = "KINESIS_CONFIG__";

/// The variables this module reads, with what each accepts (for `--help`).
pub const VARIABLES: &[(&str, &str)] = &[
    (
        CONFIG_FILE_VAR,
        "path of the application's TOML configuration file (kinesis::settings); \
         reloaded on SIGHUP and when it changes",
    ),
    (
        "KINESIS_CONFIG__<SECTION>__<KEY>",
        "overrides `section.key` of that file: a TOML value (8080, true, [1, 2]) or else a string",
    ),
];

/// What a configuration type needs: cloned into snapshots, serialised into
/// the state, deserialised from TOML. Implemented for every such type.
pub trait Configuration: Clone + Serialize + DeserializeOwned + Send + Sync + 'static {}
impl<T: Clone + Serialize + DeserializeOwned + Send + Sync + 'static> Configuration for T {}

type Validator<T> = Arc<dyn Fn(&T) -> std::result::Result<(), String> + Send + Sync>;

/// Where overrides come from.
#[derive(Clone)]
enum Environment {
    /// The process environment, read at every load.
    Process,
    /// Fixed pairs, for tests and embedding.
    Fixed(Arc<Vec<(String, String)>>),
}

impl Environment {
    fn vars(&self) -> Vec<(String, String)> {
        match self {
            // Variables that are not UTF-8 cannot be overrides.
            Environment::Process => std::env::vars_os()
                .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
                .collect(),
            Environment::Fixed(pairs) => pairs.as_ref().clone(),
        }
    }
}

/// How a [`Settings`] reads and reloads; not part of its state.
struct Hooks<T> {
    validate: Option<Validator<T>>,
    env: Environment,
    env_prefix: Option<String>,
    sighup: bool,
    watch: bool,
    debounce: Duration,
    exposed: bool,
}

impl<T> Clone for Hooks<T> {
    fn clone(&self) -> Self {
        Hooks {
            validate: self.validate.clone(),
            env: self.env.clone(),
            env_prefix: self.env_prefix.clone(),
            sighup: self.sighup,
            watch: self.watch,
            debounce: self.debounce,
            exposed: self.exposed,
        }
    }
}

impl<T> Default for Hooks<T> {
    fn default() -> Self {
        Hooks {
            validate: None,
            env: Environment::Process,
            env_prefix: Some(DEFAULT_ENV_PREFIX.to_owned()),
            sighup: true,
            watch: true,
            debounce: Duration::from_millis(200),
            exposed: false,
        }
    }
}

impl<T: Configuration> Hooks<T> {
    /// Reads, overrides, deserialises and validates the file at `path`.
    fn read(&self, path: &Path, text: std::io::Result<String>) -> std::result::Result<T, String> {
        let text = text.map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
        let config: T = source::parse(path, &text, &self.env.vars(), self.env_prefix.as_deref())?;
        if let Some(validate) = &self.validate {
            validate(&config).map_err(|reason| format!("{}: {reason}", path.display()))?;
        }
        Ok(config)
    }
}

/// Configures and loads a [`Settings`]; from [`Settings::builder`].
pub struct SettingsBuilder<T> {
    path: PathBuf,
    hooks: Hooks<T>,
}

impl<T> std::fmt::Debug for SettingsBuilder<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SettingsBuilder").field("path", &self.path).finish_non_exhaustive()
    }
}

impl<T: Configuration> SettingsBuilder<T> {
    /// Checks every configuration before it is used (the first one too); an
    /// `Err` is the reason it is refused. Default: every `T` is accepted.
    pub fn validate(
        mut self,
        f: impl Fn(&T) -> std::result::Result<(), String> + Send + Sync + 'static,
    ) -> Self {
        self.hooks.validate = Some(Arc::new(f));
        self
    }

    /// The prefix of the environment overrides (default
    /// [`DEFAULT_ENV_PREFIX`]); `None` turns them off.
    pub fn env_prefix(mut self, prefix: Option<&str>) -> Self {
        self.hooks.env_prefix = prefix.map(str::to_owned);
        self
    }

    /// Reads overrides from these pairs instead of the process environment.
    pub fn env_vars(mut self, vars: impl IntoIterator<Item = (String, String)>) -> Self {
        self.hooks.env = Environment::Fixed(Arc::new(vars.into_iter().collect()));
        self
    }

    /// Whether SIGHUP reloads (default `true`; Unix only).
    pub fn reload_on_sighup(mut self, on: bool) -> Self {
        self.hooks.sighup = on;
        self
    }

    /// Whether a change to the file reloads (default `true`).
    pub fn watch_file(mut self, on: bool) -> Self {
        self.hooks.watch = on;
        self
    }

    /// How long the file must be left alone after a change before it is
    /// read (default 200 ms), so a file written in several steps is read
    /// once, whole.
    pub fn debounce(mut self, quiet: Duration) -> Self {
        self.hooks.debounce = quiet;
        self
    }

    /// Whether the HTTP add-on serves the configuration (default `false`:
    /// configuration often holds secrets).
    pub fn exposed(mut self, on: bool) -> Self {
        self.hooks.exposed = on;
        self
    }

    /// Reads the file now. A configuration that cannot be used is an
    /// [`Error::Config`] with the reason.
    pub fn load(self) -> Result<Settings<T>> {
        let config = self
            .hooks
            .read(&self.path, std::fs::read_to_string(&self.path))
            .map_err(Error::Config)?;
        Ok(Settings {
            config,
            path: self.path,
            generation: 1,
            failed_reloads: 0,
            last_error: None,
            hooks: self.hooks,
        })
    }
}

/// The outcome of a [`Reload`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Reloaded {
    /// A new configuration replaced the old one.
    Applied {
        /// Its generation.
        generation: u64,
    },
    /// The file holds the configuration already in use.
    Unchanged,
    /// The file cannot be used; the old configuration is kept.
    Rejected {
        /// Why, without values from the file.
        reason: String,
    },
}

/// Reads the file again and replaces the configuration if it is valid and
/// different; see the [module docs](self). Never fails for a bad file: the
/// outcome says what happened.
#[derive(Clone, Copy, Debug, Default)]
pub struct Reload;

/// A configuration loaded from a TOML file and kept up to date; see the
/// [module docs](self).
#[derive(Clone, Serialize, Deserialize)]
#[serde(bound(serialize = "T: Serialize", deserialize = "T: DeserializeOwned"))]
pub struct Settings<T> {
    config: T,
    path: PathBuf,
    generation: u64,
    failed_reloads: u64,
    last_error: Option<String>,
    #[serde(skip)]
    hooks: Hooks<T>,
}

impl<T> std::fmt::Debug for Settings<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The configuration itself may hold secrets.
        f.debug_struct("Settings")
            .field("path", &self.path)
            .field("generation", &self.generation)
            .field("failed_reloads", &self.failed_reloads)
            .field("last_error", &self.last_error)
            .finish_non_exhaustive()
    }
}

impl<T: Configuration> Settings<T> {
    /// A builder for the configuration in the TOML file at `path`.
    pub fn builder(path: impl Into<PathBuf>) -> SettingsBuilder<T> {
        SettingsBuilder { path: path.into(), hooks: Hooks::default() }
    }

    /// A builder for the file named by `KINESIS_CONFIG_FILE`, looked up with
    /// `lookup` (`kinesis::config::env_var` for the process environment).
    /// Unset or blank is an [`Error::Config`].
    ///
    /// ```
    /// use kinesis::config::from_pairs;
    /// use kinesis::settings::Settings;
    /// let builder = Settings::<toml::Table>::builder_from_env(from_pairs(&[])).unwrap_err();
    /// assert!(builder.to_string().contains("KINESIS_CONFIG_FILE"));
    /// ```
    pub fn builder_from_env(
        lookup: impl Fn(&str) -> Option<Result<String>>,
    ) -> Result<SettingsBuilder<T>> {
        let path = crate::config::read(&lookup, CONFIG_FILE_VAR)?.ok_or_else(|| {
            Error::Config(format!(
                "{CONFIG_FILE_VAR} is not set: it names the TOML configuration file"
            ))
        })?;
        Ok(Settings::builder(path))
    }

    /// The configuration in use.
    pub fn config(&self) -> &T {
        &self.config
    }

    /// The file it is read from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// 1 for the configuration loaded at start, one more for each one that
    /// replaced it.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// How many reloads were refused.
    pub fn failed_reloads(&self) -> u64 {
        self.failed_reloads
    }

    /// Why the latest reload was refused; `None` once a reload succeeds.
    pub fn last_error(&self) -> Option<&str> {
        self.last_error.as_deref()
    }
}

impl<T: Configuration> Component for Settings<T> {
    async fn start(&mut self, ctx: &mut Context<Self>) -> Result<()> {
        if self.hooks.sighup {
            triggers::on_sighup(ctx)?;
        }
        if self.hooks.watch {
            triggers::on_file_change(ctx, &self.path, self.hooks.debounce)?;
        }
        Ok(())
    }

    fn restore_skipped(&mut self, previous: &Self) {
        self.hooks = previous.hooks.clone();
    }

    fn exposed(&self) -> bool {
        self.hooks.exposed
    }
}

impl<T: Configuration> Handler<Reload> for Settings<T> {
    type Reply = Reloaded;

    async fn handle(&mut self, _: Reload, _: &mut Context<Self>) -> Result<Reloaded> {
        let text = tokio::fs::read_to_string(&self.path).await;
        match self.hooks.read(&self.path, text) {
            Ok(config) => {
                self.last_error = None;
                if serde_json::to_value(&config)? == serde_json::to_value(&self.config)? {
                    return Ok(Reloaded::Unchanged);
                }
                self.config = config;
                self.generation += 1;
                tracing::info!(generation = self.generation, "configuration reloaded");
                Ok(Reloaded::Applied { generation: self.generation })
            }
            Err(reason) => {
                tracing::warn!(
                    %reason,
                    "configuration reload refused; the current configuration stays"
                );
                self.failed_reloads += 1;
                self.last_error = Some(reason.clone());
                Ok(Reloaded::Rejected { reason })
            }
        }
    }
}
