//! Opening a store from a connection URL by its scheme.

use std::collections::BTreeMap;

use futures::future::BoxFuture;

use super::SharedStore;
use crate::{Error, Result};

/// Opens a store from a full connection URL such as `file://./data`.
pub type StoreOpener = fn(String) -> BoxFuture<'static, Result<SharedStore>>;

/// The back-ends built into this program, by URL scheme.
///
/// ```
/// use kinesis::persist::StoreRegistry;
///
/// # tokio_test_block_on(async {
/// let registry = StoreRegistry::with_builtin();
/// assert!(registry.open("memory://").await.is_ok());
/// let Err(err) = registry.open("nosuch://x").await else { panic!("opened") };
/// assert!(err.to_string().contains("memory"));
/// # });
/// # fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output {
/// #     tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
/// # }
/// ```
#[derive(Clone, Default)]
pub struct StoreRegistry {
    openers: BTreeMap<String, StoreOpener>,
}

impl StoreRegistry {
    /// A registry with only the back-ends of the core crate (`memory://`).
    pub fn with_builtin() -> Self {
        let mut r = StoreRegistry::default();
        r.register("memory", |_| {
            Box::pin(async { Ok(std::sync::Arc::new(super::MemoryStore::new()) as SharedStore) })
        });
        r
    }

    /// Adds (or replaces) the opener for `scheme`.
    pub fn register(&mut self, scheme: &str, opener: StoreOpener) -> &mut Self {
        self.openers.insert(scheme.to_owned(), opener);
        self
    }

    /// The schemes that can be opened, sorted.
    pub fn schemes(&self) -> Vec<&str> {
        self.openers.keys().map(String::as_str).collect()
    }

    /// Checks that `url` has a scheme this registry can open, without opening it.
    pub fn check(&self, url: &str) -> Result<()> {
        let scheme = scheme_of(url)?;
        if self.openers.contains_key(scheme) {
            Ok(())
        } else {
            Err(Error::Config(format!(
                "KINESIS_DB_CONNECTION: the scheme `{scheme}://` is not built into this program; built in: {}",
                self.schemes()
                    .iter()
                    .map(|s| format!("{s}://"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )))
        }
    }

    /// Opens the store `url` names.
    pub async fn open(&self, url: &str) -> Result<SharedStore> {
        self.check(url)?;
        let opener = self.openers[scheme_of(url)?];
        opener(url.to_owned()).await
    }
}

fn scheme_of(url: &str) -> Result<&str> {
    match url.split_once("://") {
        Some((scheme, _))
            if !scheme.is_empty()
                && scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')) =>
        {
            Ok(scheme)
        }
        _ => Err(Error::Config(format!(
            "KINESIS_DB_CONNECTION: `{}` is not a URL of the form scheme://…",
            crate::persist::redact_url(url)
        ))),
    }
}

impl std::fmt::Debug for StoreRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreRegistry").field("schemes", &self.schemes()).finish()
    }
}
