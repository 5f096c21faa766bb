//! An in-memory store: for tests and for components that need no durability.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use futures::future::BoxFuture;

use super::{Record, Store, StoreError, StoreResult};

/// Keeps records in a map in this process (`memory://`). Nothing survives the
/// process. [`MemoryStore::set_failing`] makes every call fail, to test how
/// components behave when their store is down.
#[derive(Debug, Default)]
pub struct MemoryStore {
    records: Mutex<BTreeMap<String, Record>>,
    failing: AtomicBool,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// While `true`, every operation fails with [`StoreError::Backend`].
    pub fn set_failing(&self, failing: bool) {
        self.failing.store(failing, Ordering::SeqCst);
    }

    fn check(&self) -> StoreResult<()> {
        if self.failing.load(Ordering::SeqCst) {
            Err(StoreError::Backend("memory store is set to fail".into()))
        } else {
            Ok(())
        }
    }

    fn records(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Record>> {
        self.records.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Store for MemoryStore {
    fn backend(&self) -> &'static str {
        "memory"
    }

    fn load<'a>(&'a self, uri: &'a str) -> BoxFuture<'a, StoreResult<Option<Record>>> {
        Box::pin(async move {
            self.check()?;
            Ok(self.records().get(uri).cloned())
        })
    }

    fn save<'a>(&'a self, record: &'a Record, expected: u64) -> BoxFuture<'a, StoreResult<()>> {
        Box::pin(async move {
            self.check()?;
            if expected.checked_add(1) != Some(record.version) {
                return Err(StoreError::Backend(format!(
                    "refused to save {}: its version {} is not the expected version {expected} plus one",
                    record.uri, record.version
                )));
            }
            let mut records = self.records();
            let found = records.get(&record.uri).map(|r| r.version);
            if found.unwrap_or(0) != expected {
                return Err(StoreError::Conflict { uri: record.uri.clone(), expected, found });
            }
            records.insert(record.uri.clone(), record.clone());
            Ok(())
        })
    }

    fn delete<'a>(&'a self, uri: &'a str) -> BoxFuture<'a, StoreResult<bool>> {
        Box::pin(async move {
            self.check()?;
            Ok(self.records().remove(uri).is_some())
        })
    }

    fn list<'a>(&'a self, prefix: &'a str) -> BoxFuture<'a, StoreResult<Vec<String>>> {
        Box::pin(async move {
            self.check()?;
            Ok(self.records().keys().filter(|k| k.starts_with(prefix)).cloned().collect())
        })
    }
}
