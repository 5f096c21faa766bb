//! A key-value store as a component: JSON values under string keys, per-key
//! versions for compare-and-set, prefix listing, prefix watches and
//! optional expiry.
//!
//! [`Kv`] is an ordinary component: add it anywhere in the tree
//! (`root.add("kv", Kv::new(KvOptions::default()))`) and its methods are
//! messages, typed on the handle through [`KvHandle`] and served by the HTTP
//! add-on like any other component's (`POST /root/kv/put`,
//! `GET /root/kv/list?prefix=app/`).
//!
//! # Semantics
//!
//! * **Keys** are 1 to [`KvOptions::max_key_bytes`] bytes of ASCII letters,
//!   digits and [`KEY_PUNCTUATION`] (`/` separates a hierarchy); anything
//!   else is [`Error::Invalid`] naming the character ([`validate_key`]).
//! * **Values** are any JSON except `null` (use [`delete`](Kv::delete)), at
//!   most [`KvOptions::max_value_bytes`] bytes as compact JSON.
//! * **Versions.** The store counts its writes in a revision (starting at
//!   0). Every put or delete increments it, and a put gives the key the new
//!   revision as its version. So a version is never reused, not even by a
//!   key deleted and created again, and a compare-and-set cannot be fooled
//!   by an A-B-A sequence.
//! * **Compare-and-set.** [`put`](Kv::put) and [`delete`](Kv::delete) take
//!   an optional expected `version`: `None` writes unconditionally, `Some(0)`
//!   only if the key does not exist (create), `Some(v)` only if the key's
//!   current version is `v`. Otherwise the write is refused with
//!   [`Error::Conflict`] (HTTP `409 Conflict`; its `current` is the
//!   component's ETag, not the key's version: read the key again to retry).
//!   Writes are handled one at a time in the component's mailbox, so of two
//!   writers that read the same version exactly one succeeds.
//! * **Expiry.** A put with `ttl_ms` makes the key expire that many
//!   milliseconds later (at most [`MAX_TTL_MS`]); a put without one clears
//!   any expiry the key had. An expired key is invisible at once to every
//!   read and counts as absent for compare-and-set; a timer in the
//!   component removes expired keys when the earliest one is due (one
//!   revision for all removed together). Time is tokio's, anchored to the
//!   wall clock when the store starts (tests may pause and advance it);
//!   expiry times are stored as Unix milliseconds, so keys whose time passed
//!   while the process was down are gone when it comes back.
//! * **Bounds.** At most [`KvOptions::max_keys`] keys and
//!   [`KvOptions::max_total_bytes`] of keys and values together; a put past
//!   either is [`Error::Invalid`] saying which bound and by how much.
//! * **Persistence.** The entries and the revision are `#[persist]` fields,
//!   so a `Kv` needs a store (`KINESIS_DB_CONNECTION`; `memory://` keeps it
//!   for the life of the process): every acknowledged write is stored
//!   before the reply (write-through, as for every component), and the
//!   store comes back as it was after a restart. The record holds the whole map, so each write
//!   stores it whole: size the bounds to the store.
//! * **Replacing the whole state** (`PUT /root/kv` with `If-Match`) is an
//!   administrator's restore: it bypasses the checks above.
//!
//! # Watching a prefix
//!
//! [`watch_prefix`] follows the keys under a prefix: it yields the current
//! entries first, then a [`KvEvent`] for each key that was put or deleted
//! (expiry included). It compares committed states, so several writes to
//! one key between two looks yield one event with the latest value, and a
//! watcher that falls behind catches up with the latest state without
//! missing a key. Over HTTP the same events are served by
//! `GET /root/kv/_watch?prefix=app/` (see the HTTP add-on's `sse` docs).
//!
//! ```
//! use std::sync::Arc;
//!
//! use kinesis::kv::{Kv, KvHandle, KvOptions};
//! use kinesis::persist::{MemoryStore, Persistence};
//! use kinesis::{Container, Error};
//! use serde_json::json;
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let store = Arc::new(MemoryStore::new());
//! let root = Container::root_with(Some(Persistence { store, cipher: None })).await?;
//! let kv = root.add("kv", Kv::new(KvOptions::default())).await?;
//!
//! let v1 = kv.put("app/db/url".into(), json!("postgres://db"), None, None).await?;
//! let item = kv.get("app/db/url".into()).await?.expect("just put");
//! assert_eq!((item.value, item.version), (json!("postgres://db"), v1));
//!
//! // Compare-and-set: only the writer that read the current version wins.
//! let v2 = kv.put("app/db/url".into(), json!("postgres://db2"), Some(v1), None).await?;
//! let stale = kv.put("app/db/url".into(), json!("postgres://db3"), Some(v1), None).await;
//! assert!(matches!(stale, Err(Error::Conflict { .. })));
//!
//! kv.put("app/name".into(), json!({"title": "demo"}), Some(0), Some(60_000)).await?;
//! let keys: Vec<String> = kv.list(Some("app/".into()), None).await?.into_iter().map(|i| i.key).collect();
//! assert_eq!(keys, ["app/db/url", "app/name"]);
//! assert!(kv.delete("app/db/url".into(), Some(v2)).await?);
//! root.shutdown().await?;
//! # Ok::<(), kinesis::Error>(()) }).unwrap();
//! ```

mod clock;
mod expiry;
mod key;
mod watch;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{Component, Context, Error, Persist, Result};
use clock::Clock;
pub use expiry::Sweep;
pub use key::{validate_key, KEY_PUNCTUATION};
pub use watch::{watch_prefix, KvEvent, KvWatch};

/// The longest expiry a put accepts: one year, in milliseconds.
pub const MAX_TTL_MS: u64 = 365 * 24 * 3_600 * 1_000;

/// The bounds of a [`Kv`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KvOptions {
    /// The most keys the store holds (expired keys not yet removed count
    /// until a put needs their room). Default 10,000.
    pub max_keys: usize,
    /// The longest key or prefix, in bytes. Default 256.
    pub max_key_bytes: usize,
    /// The largest value, in bytes of compact JSON. Default 64 KiB.
    pub max_value_bytes: usize,
    /// The most bytes of keys and values (compact JSON) together. Default 16 MiB.
    pub max_total_bytes: usize,
}

impl Default for KvOptions {
    fn default() -> Self {
        KvOptions {
            max_keys: 10_000,
            max_key_bytes: 256,
            max_value_bytes: 64 * 1024,
            max_total_bytes: 16 * 1024 * 1024,
        }
    }
}

/// One stored value with its version and expiry, as kept in the state.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// The value.
    pub value: Value,
    /// The store's revision when the key was last put.
    pub version: u64,
    /// When the key expires, in Unix milliseconds; `None`: never.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at_ms: Option<u64>,
}

/// A key with its value, as reads answer it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Item {
    /// The key.
    pub key: String,
    /// The value.
    pub value: Value,
    /// The store's revision when the key was last put: the `version` a
    /// compare-and-set expects.
    pub version: u64,
    /// When the key expires, in Unix milliseconds; absent: never.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at_ms: Option<u64>,
}

impl Item {
    fn of(key: &str, entry: &Entry) -> Item {
        Item {
            key: key.to_owned(),
            value: entry.value.clone(),
            version: entry.version,
            expires_at_ms: entry.expires_at_ms,
        }
    }
}

/// The key-value store component; see the [module docs](self).
#[derive(Clone, Debug, Default, Serialize, Deserialize, Persist)]
pub struct Kv {
    /// Every key with its entry, expired ones included until the timer
    /// removes them.
    #[persist]
    entries: BTreeMap<String, Entry>,
    /// How many writes the store has taken: the version of the latest put.
    #[persist]
    revision: u64,
    #[serde(skip)]
    options: KvOptions,
    #[serde(skip)]
    clock: Clock,
    /// Bytes of keys and values (compact JSON), recounted after a load or
    /// a replacement of the whole state.
    #[serde(skip)]
    bytes: usize,
}

impl Component for Kv {
    async fn init(&mut self, _ctx: &mut Context<Self>) -> Result<()> {
        // Persisted entries were loaded just before.
        self.recount();
        Ok(())
    }

    async fn start(&mut self, ctx: &mut Context<Self>) -> Result<()> {
        ctx.spawn(expiry::run(ctx.handle().clone()));
        Ok(())
    }

    fn restore_skipped(&mut self, previous: &Self) {
        self.options = previous.options.clone();
        self.clock = previous.clock;
        self.recount();
    }
}

impl Kv {
    /// An empty store with these bounds.
    pub fn new(options: KvOptions) -> Kv {
        Kv { options, ..Kv::default() }
    }

    /// The bounds this store enforces.
    pub fn options(&self) -> &KvOptions {
        &self.options
    }

    /// The revision: how many writes the store has taken.
    pub fn revision(&self) -> u64 {
        self.revision
    }

    /// Every stored entry by key, expired ones included until the timer
    /// removes them (reads leave those out).
    pub fn entries(&self) -> &BTreeMap<String, Entry> {
        &self.entries
    }

    /// The live (not expired) entry of `key`.
    pub fn entry(&self, key: &str) -> Option<&Entry> {
        self.entries.get(key).filter(|e| self.is_live(e, self.clock.now_ms()))
    }

    /// The live entries whose keys start with `prefix`, in key order.
    pub fn entries_under<'a>(
        &'a self,
        prefix: &'a str,
    ) -> impl Iterator<Item = (&'a str, &'a Entry)> + 'a {
        let now = self.clock.now_ms();
        self.entries
            .range::<str, _>((std::ops::Bound::Included(prefix), std::ops::Bound::Unbounded))
            .take_while(move |(k, _)| k.starts_with(prefix))
            .filter(move |(_, e)| self.is_live(e, now))
            .map(|(k, e)| (k.as_str(), e))
    }

    fn is_live(&self, entry: &Entry, now_ms: u64) -> bool {
        entry.expires_at_ms.is_none_or(|at| at > now_ms)
    }

    /// The earliest expiry among the entries, in Unix milliseconds.
    pub(crate) fn next_expiry(&self) -> Option<u64> {
        self.entries.values().filter_map(|e| e.expires_at_ms).min()
    }

    fn recount(&mut self) {
        self.bytes = self.entries.iter().map(|(k, e)| k.len() + json_len(&e.value)).sum();
    }

    /// Refuses the write unless `key`'s current version is `expected`.
    fn check_version(&self, key: &str, expected: Option<u64>, ctx: &Context<Self>) -> Result<()> {
        let Some(expected) = expected else { return Ok(()) };
        let current = self.entry(key).map_or(0, |e| e.version);
        if current == expected {
            return Ok(());
        }
        tracing::debug!(key, expected, current, "compare-and-set lost");
        Err(Error::Conflict { current: ctx.handle().etag() })
    }

    /// How many keys and bytes the store would hold after putting a value
    /// of `size` bytes under `key`.
    fn after_put(&self, key: &str, size: usize) -> (usize, usize) {
        match self.entries.get(key) {
            Some(old) => {
                (self.entries.len(), self.bytes.saturating_sub(json_len(&old.value)) + size)
            }
            None => (self.entries.len() + 1, self.bytes + key.len() + size),
        }
    }

    /// Removes `key`'s entry, keeping the byte count.
    fn remove(&mut self, key: &str) -> Option<Entry> {
        let entry = self.entries.remove(key)?;
        self.bytes = self.bytes.saturating_sub(key.len() + json_len(&entry.value));
        Some(entry)
    }

    /// Removes the expired entries; whether there were any.
    fn remove_expired(&mut self) -> bool {
        let now = self.clock.now_ms();
        let expired: Vec<String> = self
            .entries
            .iter()
            .filter(|(_, e)| !self.is_live(e, now))
            .map(|(k, _)| k.clone())
            .collect();
        for key in &expired {
            self.remove(key);
        }
        !expired.is_empty()
    }
}

/// The length of `value` as compact JSON.
fn json_len(value: &Value) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    // Writing a `Value` to an infallible writer cannot fail.
    let _ = serde_json::to_writer(&mut count, value);
    count.0
}

#[crate::handlers]
impl Kv {
    /// The value of `key` with its version; `null` when the key does not
    /// exist or has expired.
    pub fn get(&self, key: String) -> Result<Option<Item>> {
        validate_key(&key, self.options.max_key_bytes)?;
        Ok(self.entry(&key).map(|e| Item::of(&key, e)))
    }

    /// The keys that start with `prefix` (all keys without one), in key
    /// order, at most `limit` of them.
    pub fn list(&self, prefix: Option<String>, limit: Option<usize>) -> Result<Vec<Item>> {
        let prefix = prefix.unwrap_or_default();
        key::validate_prefix(&prefix, self.options.max_key_bytes)?;
        Ok(self
            .entries_under(&prefix)
            .take(limit.unwrap_or(usize::MAX))
            .map(|(k, e)| Item::of(k, e))
            .collect())
    }

    /// How many live keys start with `prefix` (all keys without one).
    pub fn count(&self, prefix: Option<String>) -> Result<usize> {
        let prefix = prefix.unwrap_or_default();
        key::validate_prefix(&prefix, self.options.max_key_bytes)?;
        Ok(self.entries_under(&prefix).count())
    }

    /// Sets `key` to `value` and answers its new version. With `version`,
    /// only if the key's current version is that (`0`: the key must not
    /// exist), else [`Error::Conflict`]. With `ttl_ms`, the key expires that
    /// many milliseconds from now; without, it never expires.
    pub fn put(
        &mut self,
        key: String,
        value: Value,
        version: Option<u64>,
        ttl_ms: Option<u64>,
        ctx: &mut Context<Self>,
    ) -> Result<u64> {
        let o = &self.options;
        validate_key(&key, o.max_key_bytes)?;
        if value.is_null() {
            return Err(Error::invalid("a value must not be null (delete the key instead)"));
        }
        let size = json_len(&value);
        if size > o.max_value_bytes {
            return Err(Error::invalid(format!(
                "the value of `{key}` has {size} bytes of JSON, more than the {} allowed",
                o.max_value_bytes
            )));
        }
        let expires_at_ms = match ttl_ms {
            None => None,
            Some(0) => return Err(Error::invalid("ttl_ms must be at least 1")),
            Some(ttl) if ttl > MAX_TTL_MS => {
                return Err(Error::invalid(format!(
                    "ttl_ms may be at most {MAX_TTL_MS} (one year), not {ttl}"
                )))
            }
            Some(ttl) => Some(self.clock.now_ms() + ttl),
        };
        self.check_version(&key, version, ctx)?;

        // Expired entries make room only when it is needed.
        let mut after = self.after_put(&key, size);
        if after.0 > self.options.max_keys || after.1 > self.options.max_total_bytes {
            self.remove_expired();
            after = self.after_put(&key, size);
        }
        let (keys, bytes) = after;
        if keys > self.options.max_keys {
            return Err(Error::invalid(format!(
                "the store holds its maximum of {} keys; delete some first",
                self.options.max_keys
            )));
        }
        if bytes > self.options.max_total_bytes {
            return Err(Error::invalid(format!(
                "the store would hold {bytes} bytes of keys and values, more than the {} allowed",
                self.options.max_total_bytes
            )));
        }

        self.remove(&key);
        self.revision += 1;
        self.bytes += key.len() + size;
        let version = self.revision;
        self.entries.insert(key, Entry { value, version, expires_at_ms });
        Ok(version)
    }

    /// Deletes `key`; answers whether it existed (and had not expired).
    /// With `version`, only if the key's current version is that, else
    /// [`Error::Conflict`].
    pub fn delete(
        &mut self,
        key: String,
        version: Option<u64>,
        ctx: &mut Context<Self>,
    ) -> Result<bool> {
        validate_key(&key, self.options.max_key_bytes)?;
        self.check_version(&key, version, ctx)?;
        let existed = self.entry(&key).is_some();
        if self.remove(&key).is_some() {
            self.revision += 1;
        }
        Ok(existed)
    }
}
