//! Fencing: a store wrapper that refuses the writes of a leader that was
//! replaced.
//!
//! A [`FencedStore`] writes on behalf of the holder of one lease grant, whose
//! [`FencingToken`] it carries. It stamps every record it saves with that
//! token (the reserved field [`FENCE_FIELD`], next to the component's own
//! fields; a Rust field name cannot start with `$`, so it never collides,
//! and the component never sees it), and refuses with
//! [`StoreError::Fenced`] a save whose token is lower than the one of the
//! record it would replace.
//!
//! Why this is atomic on every store without a schema change: a save is a
//! compare-and-set on the record's version, so the record it replaces is
//! exactly the version the writer names as `expected`. The wrapper knows the
//! token of that version (it loaded or wrote it, or it loads it now); if
//! anybody wrote in between, the version moved and the store refuses the
//! compare-and-set. A refused compare-and-set whose current record carries a
//! higher token is reported as [`StoreError::Fenced`], not as a conflict, so
//! a replaced leader stops instead of reloading and trying again.
//!
//! A new holder [`claim`]s the records of its singleton before starting it:
//! it writes them again with its token, so from that moment every write of
//! an older holder, even one paused in the middle of a save, is refused.

use std::collections::HashMap;
use std::sync::Mutex;

use futures::future::BoxFuture;
use serde_json::{Map, Value};

use super::{Record, SharedStore, Store, StoreError, StoreResult};
use crate::lease::FencingToken;

/// The reserved field of a record holding the fencing token of its writer.
pub const FENCE_FIELD: &str = "$fence";

/// The fencing token a record was written with (0: written without one).
pub fn fence_of(record: &Record) -> FencingToken {
    record.fields.get(FENCE_FIELD).and_then(Value::as_u64).unwrap_or(0)
}

/// A store that writes for the holder of the fencing token `token`; see the
/// [module docs](self).
///
/// ```
/// use std::sync::Arc;
/// use kinesis::persist::{fence_of, FencedStore, MemoryStore, Record, Store, StoreError};
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let store = Arc::new(MemoryStore::new());
/// let old = FencedStore::new(store.clone(), 1);
/// let new = FencedStore::new(store.clone(), 2);
/// let fields = serde_json::Map::new();
/// old.save(&Record::new("/root/job", "Job", 1, fields.clone()), 0).await.unwrap();
/// // The new holder takes over and writes version 2 with its token ...
/// let v1 = new.load("/root/job").await.unwrap().unwrap();
/// new.save(&Record::new("/root/job", "Job", 2, v1.fields), 1).await.unwrap();
/// assert_eq!(fence_of(&store.load("/root/job").await.unwrap().unwrap()), 2);
/// // ... and the old one is refused, whatever version it names.
/// let late = old.save(&Record::new("/root/job", "Job", 2, fields.clone()), 1).await;
/// assert!(matches!(late, Err(StoreError::Fenced { .. })), "{late:?}");
/// let late = old.save(&Record::new("/root/job", "Job", 3, fields), 2).await;
/// assert!(matches!(late, Err(StoreError::Fenced { .. })), "{late:?}");
/// # });
/// ```
pub struct FencedStore {
    inner: SharedStore,
    token: FencingToken,
    /// Per URI: the version last loaded or saved here and its token.
    known: Mutex<HashMap<String, (u64, FencingToken)>>,
}

impl std::fmt::Debug for FencedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FencedStore")
            .field("store", &self.inner.backend())
            .field("token", &self.token)
            .finish()
    }
}

impl FencedStore {
    /// Writes to `inner` on behalf of the holder of `token`.
    pub fn new(inner: SharedStore, token: FencingToken) -> Self {
        FencedStore { inner, token, known: Mutex::new(HashMap::new()) }
    }

    /// The token this store writes with.
    pub fn token(&self) -> FencingToken {
        self.token
    }

    fn remember(&self, uri: &str, version: u64, fence: FencingToken) {
        self.known
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(uri.to_owned(), (version, fence));
    }

    fn known(&self, uri: &str) -> Option<(u64, FencingToken)> {
        self.known.lock().unwrap_or_else(|p| p.into_inner()).get(uri).copied()
    }

    fn fenced(&self, uri: &str, current: FencingToken) -> StoreError {
        StoreError::Fenced { uri: uri.to_owned(), token: self.token, current }
    }

    /// The token of version `expected` of `uri` (0 for no record), loading
    /// it if this store has not seen that version.
    async fn token_of(&self, uri: &str, expected: u64) -> StoreResult<FencingToken> {
        if expected == 0 {
            return Ok(0);
        }
        if let Some((version, fence)) = self.known(uri) {
            if version == expected {
                return Ok(fence);
            }
        }
        match self.inner.load(uri).await? {
            Some(r) if r.version == expected => {
                let fence = fence_of(&r);
                self.remember(uri, r.version, fence);
                Ok(fence)
            }
            Some(r) if fence_of(&r) > self.token => Err(self.fenced(uri, fence_of(&r))),
            found => Err(StoreError::Conflict {
                uri: uri.to_owned(),
                expected,
                found: found.map(|r| r.version),
            }),
        }
    }
}

impl Store for FencedStore {
    fn backend(&self) -> &'static str {
        self.inner.backend()
    }

    fn load<'a>(&'a self, uri: &'a str) -> BoxFuture<'a, StoreResult<Option<Record>>> {
        Box::pin(async move {
            let record = self.inner.load(uri).await?;
            if let Some(r) = &record {
                self.remember(uri, r.version, fence_of(r));
            }
            Ok(record)
        })
    }

    fn save<'a>(&'a self, record: &'a Record, expected: u64) -> BoxFuture<'a, StoreResult<()>> {
        Box::pin(async move {
            let replaced = self.token_of(&record.uri, expected).await?;
            if replaced > self.token {
                return Err(self.fenced(&record.uri, replaced));
            }
            let mut stamped = record.clone();
            stamped.fields.insert(FENCE_FIELD.to_owned(), Value::from(self.token));
            match self.inner.save(&stamped, expected).await {
                Ok(()) => {
                    self.remember(&record.uri, stamped.version, self.token);
                    Ok(())
                }
                Err(conflict @ StoreError::Conflict { .. }) => {
                    // Fenced rather than a conflict when a later holder wrote.
                    match self.inner.load(&record.uri).await {
                        Ok(Some(r)) if fence_of(&r) > self.token => {
                            Err(self.fenced(&record.uri, fence_of(&r)))
                        }
                        _ => Err(conflict),
                    }
                }
                Err(e) => Err(e),
            }
        })
    }

    fn delete<'a>(&'a self, uri: &'a str) -> BoxFuture<'a, StoreResult<bool>> {
        Box::pin(async move {
            if let Some(r) = self.inner.load(uri).await? {
                if fence_of(&r) > self.token {
                    return Err(self.fenced(uri, fence_of(&r)));
                }
            }
            self.known.lock().unwrap_or_else(|p| p.into_inner()).remove(uri);
            self.inner.delete(uri).await
        })
    }

    fn list<'a>(&'a self, prefix: &'a str) -> BoxFuture<'a, StoreResult<Vec<String>>> {
        self.inner.list(prefix)
    }

    fn ping(&self) -> BoxFuture<'_, StoreResult<()>> {
        self.inner.ping()
    }

    /// The wrapped store's: a singleton's component still hears the saves
    /// of other processes.
    fn feed(&self) -> Option<std::sync::Arc<super::ChangeFeed>> {
        self.inner.feed()
    }
}

/// Writes the record under `uri` again with `store`'s token (creating an
/// empty one of type `type_name` if there is none), so that every later
/// write of an older holder is refused. Retries a lost compare-and-set;
/// fails with [`StoreError::Fenced`] if a newer holder claimed it already.
pub async fn claim(store: &FencedStore, uri: &str, type_name: &str) -> StoreResult<()> {
    loop {
        let current = store.load(uri).await?;
        let (expected, fields, type_name) = match current {
            Some(r) if fence_of(&r) == store.token() => return Ok(()),
            Some(r) => (r.version, r.fields, r.type_name),
            None => (0, Map::new(), type_name.to_owned()),
        };
        let record = Record::new(uri, &type_name, expected + 1, fields);
        match store.save(&record, expected).await {
            Ok(()) => return Ok(()),
            Err(StoreError::Conflict { .. }) => continue,
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use futures::future::BoxFuture;

    use super::*;
    use crate::persist::{ChangeFeed, MemoryStore, Record, StoreResult};

    /// A memory store with a change feed, as a PostgreSQL store has.
    struct WithFeed(MemoryStore, Arc<ChangeFeed>);

    impl Store for WithFeed {
        fn backend(&self) -> &'static str {
            "memory"
        }
        fn load<'a>(&'a self, uri: &'a str) -> BoxFuture<'a, StoreResult<Option<Record>>> {
            self.0.load(uri)
        }
        fn save<'a>(&'a self, record: &'a Record, expected: u64) -> BoxFuture<'a, StoreResult<()>> {
            self.0.save(record, expected)
        }
        fn delete<'a>(&'a self, uri: &'a str) -> BoxFuture<'a, StoreResult<bool>> {
            self.0.delete(uri)
        }
        fn list<'a>(&'a self, prefix: &'a str) -> BoxFuture<'a, StoreResult<Vec<String>>> {
            self.0.list(prefix)
        }
        fn feed(&self) -> Option<Arc<ChangeFeed>> {
            Some(self.1.clone())
        }
    }

    #[test]
    fn a_fenced_store_hands_on_the_change_feed_of_the_store_it_wraps() {
        let feed = Arc::new(ChangeFeed::new());
        let inner: SharedStore = Arc::new(WithFeed(MemoryStore::default(), feed.clone()));
        let fenced = FencedStore::new(inner, 1);
        let handed = fenced.feed().expect("the wrapped store's feed");
        assert!(Arc::ptr_eq(&handed, &feed));
    }
}
