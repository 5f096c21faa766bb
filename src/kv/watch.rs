//! Following the keys under a prefix: [`watch_prefix`].

use std::collections::{BTreeMap, VecDeque};

use serde::{Deserialize, Serialize};

use super::{key, Item, Kv};
use crate::{Change, Handle, Result, Subscription};

/// A change to one key under a watched prefix.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum KvEvent {
    /// The key was put (or is there when the watch starts): its new value
    /// and version.
    Put(Item),
    /// The key was deleted or expired.
    Delete {
        /// The key.
        key: String,
        /// The store's revision when the watch saw the key gone.
        revision: u64,
    },
}

impl KvEvent {
    /// The key this event is about.
    pub fn key(&self) -> &str {
        match self {
            KvEvent::Put(item) => &item.key,
            KvEvent::Delete { key, .. } => key,
        }
    }
}

/// The keys under a prefix of a [`Kv`] and their changes, from
/// [`watch_prefix`].
///
/// It remembers the version of every key it has reported and, whenever the
/// store commits a change, compares the latest snapshot with that: keys
/// with a new version are [`KvEvent::Put`], keys gone are
/// [`KvEvent::Delete`]. Several writes to a key between two looks give one
/// event with the latest value; a watch that falls behind (the store's
/// change queue overflowed) compares with the latest snapshot in the same
/// way, so it never misses that a key changed. It holds one version per
/// watched key.
#[derive(Debug)]
pub struct KvWatch {
    kv: Handle<Kv>,
    prefix: String,
    changes: Subscription<Kv>,
    /// The version of each key as last reported.
    seen: BTreeMap<String, u64>,
    pending: VecDeque<KvEvent>,
}

/// Watches the keys of `kv` that start with `prefix` (every key when it is
/// empty). The first events are a [`KvEvent::Put`] for each key there now,
/// in key order; then one event per key that changes. The watch ends
/// (`next` answers `None`) when the store is torn down.
///
/// ```
/// use kinesis::kv::{watch_prefix, Kv, KvEvent, KvHandle, KvOptions};
/// use kinesis::persist::{MemoryStore, Persistence};
/// use serde_json::json;
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let store = std::sync::Arc::new(MemoryStore::new());
/// let root = kinesis::Container::root_with(Some(Persistence { store, cipher: None })).await?;
/// let kv = root.add("kv", Kv::new(KvOptions::default())).await?;
/// kv.put("jobs/1".into(), json!("queued"), None, None).await?;
///
/// let mut watch = watch_prefix(&kv, "jobs/")?;
/// let Some(KvEvent::Put(item)) = watch.next().await else { panic!() };
/// assert_eq!((item.key.as_str(), item.value), ("jobs/1", json!("queued")));
///
/// kv.put("other".into(), json!(1), None, None).await?; // not under jobs/
/// kv.delete("jobs/1".into(), None).await?;
/// assert!(matches!(watch.next().await, Some(KvEvent::Delete { key, .. }) if key == "jobs/1"));
/// root.shutdown().await?;
/// # Ok::<(), kinesis::Error>(()) }).unwrap();
/// ```
pub fn watch_prefix(kv: &Handle<Kv>, prefix: impl Into<String>) -> Result<KvWatch> {
    let prefix = prefix.into();
    key::validate_prefix(&prefix, kv.snapshot().state.options.max_key_bytes)?;
    // Subscribe before the first look, so no commit falls in between.
    let changes = kv.subscribe();
    let mut watch = KvWatch {
        kv: kv.clone(),
        prefix,
        changes,
        seen: BTreeMap::new(),
        pending: VecDeque::new(),
    };
    watch.catch_up();
    Ok(watch)
}

impl KvWatch {
    /// The prefix watched.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The next change; `None` once the store is torn down.
    pub async fn next(&mut self) -> Option<KvEvent> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Some(event);
            }
            match self.changes.recv().await {
                Ok(None) => return None,
                Ok(Some(Change::Updated { .. })) | Err(_) => self.catch_up(),
                Ok(Some(_)) => {}
            }
        }
    }

    /// Queues the differences between what was reported and the latest
    /// snapshot.
    fn catch_up(&mut self) {
        let snapshot = self.kv.snapshot();
        let state = &snapshot.state;
        let mut now = BTreeMap::new();
        for (key, entry) in state.entries_under(&self.prefix) {
            now.insert(key.to_owned(), entry.version);
            if self.seen.get(key) != Some(&entry.version) {
                self.pending.push_back(KvEvent::Put(Item::of(key, entry)));
            }
        }
        for key in self.seen.keys().filter(|k| !now.contains_key(*k)) {
            self.pending.push_back(KvEvent::Delete { key: key.clone(), revision: state.revision });
        }
        self.seen = now;
    }
}
