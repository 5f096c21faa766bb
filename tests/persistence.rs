//! Persistence through the runtime: load before init, write-through,
//! rollback on store failure, encryption, key rotation, conflicts, group
//! commit counted in store writes.

mod support;

use std::sync::{Arc, Mutex};

use kinesis::persist::{Cipher, MemoryStore, Persistence, Store, ENCRYPTED_MARKER};
use kinesis::{Component, Container, Context, Control, Error, Handler, Persist, Result, Stage};
use serde::{Deserialize, Serialize};
use serde_json::json;
use support::{counting, CountingStore, Gate};

#[derive(Clone, Default, Debug, Serialize, Deserialize, Persist)]
struct Vault {
    #[persist]
    count: u64,
    #[persist(encrypt)]
    secret: String,
    /// Not persisted.
    scratch: u64,
    #[serde(skip)]
    seen_at_init: Arc<Mutex<Option<(u64, String)>>>,
}

impl Component for Vault {
    async fn init(&mut self, _: &mut Context<Self>) -> Result<()> {
        *self.seen_at_init.lock().unwrap() = Some((self.count, self.secret.clone()));
        Ok(())
    }
}

struct Bump;
impl Handler<Bump> for Vault {
    type Reply = u64;
    async fn handle(&mut self, _: Bump, _: &mut Context<Self>) -> Result<u64> {
        self.count += 1;
        Ok(self.count)
    }
}

struct Scratch(u64);
impl Handler<Scratch> for Vault {
    type Reply = ();
    async fn handle(&mut self, Scratch(n): Scratch, _: &mut Context<Self>) -> Result<()> {
        self.scratch = n;
        Ok(())
    }
}

struct SetSecret(String);
impl Handler<SetSecret> for Vault {
    type Reply = ();
    async fn handle(&mut self, SetSecret(s): SetSecret, _: &mut Context<Self>) -> Result<()> {
        self.secret = s;
        Ok(())
    }
}

fn persistence(store: &Arc<MemoryStore>, key: &str, previous: &[&str]) -> Option<Persistence> {
    Some(Persistence {
        store: store.clone(),
        cipher: Some(Arc::new(Cipher::new(key, previous).unwrap())),
    })
}

async fn record(store: &MemoryStore, uri: &str) -> Option<kinesis::persist::Record> {
    store.load(uri).await.unwrap()
}

/// Persisted fields are written through (the secret encrypted, the scratch
/// field not at all) and loaded again before `init`.
#[tokio::test]
async fn fields_round_trip_and_are_loaded_before_init() {
    let store = Arc::new(MemoryStore::new());
    let key = Cipher::generate_key();
    let root = Container::root_with(persistence(&store, &key, &[])).await.unwrap();
    let v = root.add("vault", Vault::default()).await.unwrap();
    v.ask(Bump).await.unwrap();
    v.ask(Bump).await.unwrap();
    v.ask(SetSecret("hunter2".into())).await.unwrap();
    // Write-through: the store has it as soon as the reply is here.
    let rec = record(&store, "/root/vault").await.unwrap();
    assert_eq!(rec.fields["count"], json!(2));
    assert!(rec.fields["secret"][ENCRYPTED_MARKER].is_string());
    assert!(!serde_json::to_string(&rec).unwrap().contains("hunter2"), "stored encrypted");
    assert!(!rec.fields.contains_key("scratch"));
    root.shutdown().await.unwrap();

    let root = Container::root_with(persistence(&store, &key, &[])).await.unwrap();
    let seen = Arc::new(Mutex::new(None));
    let v =
        root.add("vault", Vault { seen_at_init: seen.clone(), ..Vault::default() }).await.unwrap();
    assert_eq!(*seen.lock().unwrap(), Some((2, "hunter2".to_owned())), "loaded before init");
    assert_eq!(v.snapshot().state.count, 2);
    // The encrypted field is redacted in JSON.
    let json = root.get_dyn("vault").unwrap().snapshot_json().unwrap();
    assert_eq!(json.data.to_value()["secret"], json!("***"));
    root.shutdown().await.unwrap();
}

/// A change to unpersisted fields writes nothing; `Control::Persist` forces
/// a write.
#[tokio::test]
async fn unchanged_persisted_fields_are_not_rewritten_and_persist_forces_a_write() {
    let store = Arc::new(MemoryStore::new());
    let root =
        Container::root_with(persistence(&store, &Cipher::generate_key(), &[])).await.unwrap();
    let v = root.add("vault", Vault::default()).await.unwrap();
    v.ask(Bump).await.unwrap();
    let version = record(&store, "/root/vault").await.unwrap().version;
    v.ask(Scratch(7)).await.unwrap();
    assert_eq!(v.snapshot().state.scratch, 7);
    assert_eq!(record(&store, "/root/vault").await.unwrap().version, version, "no write");
    v.control(Control::Persist).await.unwrap();
    assert_eq!(record(&store, "/root/vault").await.unwrap().version, version + 1, "forced");
    root.shutdown().await.unwrap();
}

/// A failing store fails the mutation with `Error::Store` and keeps the
/// state, version and ETag; it works again once the store is back.
#[tokio::test]
async fn a_failing_store_fails_the_mutation_and_keeps_the_state() {
    let store = Arc::new(MemoryStore::new());
    let root =
        Container::root_with(persistence(&store, &Cipher::generate_key(), &[])).await.unwrap();
    let v = root.add("vault", Vault::default()).await.unwrap();
    v.ask(Bump).await.unwrap();
    let before = v.snapshot();
    store.set_failing(true);
    let err = v.ask(Bump).await.unwrap_err();
    assert!(matches!(&err, Error::Store(m) if m.contains("/root/vault")), "{err}");
    let after = v.snapshot();
    assert_eq!((after.state.count, after.version, after.etag), (1, before.version, before.etag));
    store.set_failing(false);
    assert_eq!(v.ask(Bump).await.unwrap(), 2, "works again once the store is back");
    root.shutdown().await.unwrap();
}

async fn stored_vault(store: &Arc<MemoryStore>, key: &str) {
    let root = Container::root_with(persistence(store, key, &[])).await.unwrap();
    let v = root.add("vault", Vault::default()).await.unwrap();
    v.ask(SetSecret("hunter2".into())).await.unwrap();
    v.ask(Bump).await.unwrap();
    root.shutdown().await.unwrap();
}

async fn add_fails(store: &Arc<MemoryStore>, p: Option<Persistence>) -> Error {
    let root = Container::root_with(p).await.unwrap();
    let prepared = root.prepare("vault", Vault::default()).unwrap();
    let mut sub = prepared.handle().subscribe();
    let err = prepared.start().await.unwrap_err();
    let mut stages = Vec::new();
    while let Ok(Some(kinesis::Change::Stage { curr, .. })) = sub.try_recv() {
        stages.push(curr);
    }
    assert!(stages.contains(&Stage::Aborting), "{stages:?}");
    root.shutdown().await.unwrap();
    let _ = store;
    err
}

/// Tampered or moved ciphertext, a wrong or missing key and a missing store
/// refuse the component with a clear error and overwrite nothing.
#[tokio::test]
async fn tampered_moved_missing_and_wrong_keys_fail_loudly_and_overwrite_nothing() {
    let key = Cipher::generate_key();
    // Tampered ciphertext.
    let store = Arc::new(MemoryStore::new());
    stored_vault(&store, &key).await;
    let mut rec = record(&store, "/root/vault").await.unwrap();
    let text = rec.fields["secret"][ENCRYPTED_MARKER].as_str().unwrap().to_owned();
    let flipped = format!(
        "{}{}",
        &text[..text.len() - 4],
        if text.ends_with("AAAA") { "BBBB" } else { "AAAA" }
    );
    rec.fields["secret"] = json!({ ENCRYPTED_MARKER: flipped });
    rec.version += 1;
    store.save(&rec, rec.version - 1).await.unwrap();
    let err = add_fails(&store, persistence(&store, &key, &[])).await;
    assert!(
        matches!(&err, Error::Crypto(m) if m.contains("`secret`") && m.contains("/root/vault")),
        "{err}"
    );
    assert_eq!(record(&store, "/root/vault").await.unwrap(), rec, "nothing overwritten");

    // A value moved to another component (same field name, other URI).
    let store = Arc::new(MemoryStore::new());
    stored_vault(&store, &key).await;
    let mut moved = record(&store, "/root/vault").await.unwrap();
    moved.uri = "/root/other".into();
    moved.version = 1;
    store.save(&moved, 0).await.unwrap();
    let root = Container::root_with(persistence(&store, &key, &[])).await.unwrap();
    let err = root.add("other", Vault::default()).await.unwrap_err();
    assert!(matches!(&err, Error::Crypto(m) if m.contains("/root/other")), "{err}");
    root.shutdown().await.unwrap();

    // A wrong key.
    let store = Arc::new(MemoryStore::new());
    stored_vault(&store, &key).await;
    let before = record(&store, "/root/vault").await.unwrap();
    let err = add_fails(&store, persistence(&store, &Cipher::generate_key(), &[])).await;
    assert!(matches!(&err, Error::Crypto(m) if m.contains("`secret`")), "{err}");
    assert_eq!(record(&store, "/root/vault").await.unwrap(), before);

    // No key at all: refused before anything is read.
    let root = Container::root_with(Some(Persistence { store: store.clone(), cipher: None }))
        .await
        .unwrap();
    let err = root.add("vault", Vault::default()).await.unwrap_err();
    assert!(
        matches!(&err, Error::Config(m) if m.contains("secret") && m.contains("KINESIS_DB_SYMMETRIC_ENCRYPT_KEY")),
        "{err}"
    );
    root.shutdown().await.unwrap();
    assert_eq!(record(&store, "/root/vault").await.unwrap(), before);

    // No store at all.
    let root = Container::root().await.unwrap();
    let err = root.add("vault", Vault::default()).await.unwrap_err();
    assert!(matches!(&err, Error::Config(m) if m.contains("no store")), "{err}");
    root.shutdown().await.unwrap();
}

/// A record written under a previous key is read with it and rewritten
/// under the current key.
#[tokio::test]
async fn key_rotation_reads_with_the_previous_key_and_rewrites_under_the_current() {
    let store = Arc::new(MemoryStore::new());
    let (a, b) = (Cipher::generate_key(), Cipher::generate_key());
    stored_vault(&store, &a).await;
    let id_of = |key: &str| Cipher::new(key, &[]).unwrap().key_id().to_owned();
    let written_under = |rec: &kinesis::persist::Record| {
        rec.fields["secret"][ENCRYPTED_MARKER]
            .as_str()
            .unwrap()
            .split(':')
            .nth(1)
            .unwrap()
            .to_owned()
    };
    assert_eq!(written_under(&record(&store, "/root/vault").await.unwrap()), id_of(&a));

    let root = Container::root_with(persistence(&store, &b, &[&a])).await.unwrap();
    let v = root.add("vault", Vault::default()).await.unwrap();
    assert_eq!(v.snapshot().state.secret, "hunter2");
    assert_eq!(
        written_under(&record(&store, "/root/vault").await.unwrap()),
        id_of(&b),
        "rewritten"
    );
    root.shutdown().await.unwrap();

    // B alone now reads it.
    let root = Container::root_with(persistence(&store, &b, &[])).await.unwrap();
    let v = root.add("vault", Vault::default()).await.unwrap();
    assert_eq!(v.snapshot().state.secret, "hunter2");
    root.shutdown().await.unwrap();
}

/// Two runtimes on one store: the second writer loses the compare-and-set,
/// gets `Conflict` with the current ETag, reloads, and its retry builds on
/// the first write.
#[tokio::test]
async fn two_runtimes_sharing_a_store_never_lose_an_acknowledged_write() {
    let store = Arc::new(MemoryStore::new());
    let key = Cipher::generate_key();
    let one = Container::root_with(persistence(&store, &key, &[])).await.unwrap();
    let two = Container::root_with(persistence(&store, &key, &[])).await.unwrap();
    let a = one.add("vault", Vault::default()).await.unwrap();
    let b = two.add("vault", Vault::default()).await.unwrap();
    assert_eq!(a.ask(Bump).await.unwrap(), 1);
    // b has not seen a's write: its save loses the compare-and-set.
    let err = b.ask(Bump).await.unwrap_err();
    let Error::Conflict { current } = err else { panic!("{err}") };
    // b reloaded: its snapshot is what a wrote, and the reported etag is current.
    assert_eq!(b.snapshot().state.count, 1);
    assert_eq!(b.etag(), current);
    // A retry succeeds and builds on a's write.
    assert_eq!(b.ask(Bump).await.unwrap(), 2);
    assert_eq!(record(&store, "/root/vault").await.unwrap().fields["count"], json!(2));
    one.shutdown().await.unwrap();
    two.shutdown().await.unwrap();
}

/// A persisted counter whose `Hold` handler can hold the mailbox.
#[derive(Clone, Default, Debug, Serialize, Deserialize, Persist)]
struct Tally {
    #[persist]
    count: u64,
    #[serde(skip)]
    gate: Gate,
}

impl Component for Tally {}

/// Adds one; answers the new count.
struct Add;
impl Handler<Add> for Tally {
    type Reply = u64;
    async fn handle(&mut self, _: Add, _: &mut Context<Self>) -> Result<u64> {
        self.count += 1;
        Ok(self.count)
    }
}

/// Adds one, then holds the mailbox until the test opens the gate; answers
/// the new count.
struct Hold;
impl Handler<Hold> for Tally {
    type Reply = u64;
    async fn handle(&mut self, _: Hold, _: &mut Context<Self>) -> Result<u64> {
        self.count += 1;
        self.gate.hold().await;
        Ok(self.count)
    }
}

/// How many mutations a test queues behind the held one.
const QUEUED: usize = 8;

type Ask = tokio::task::JoinHandle<Result<u64>>;

/// Forces a group: sends `Hold` and waits until its handler holds the
/// mailbox, then queues [`QUEUED`] `Add` asks behind it, each in the mailbox
/// before the next is sent (paused time). Returns the asks, `Hold` first; the
/// caller opens the gate.
async fn held_group(t: &kinesis::Handle<Tally>, gate: &Gate) -> Vec<Ask> {
    let ask = |t: &kinesis::Handle<Tally>, hold: bool| {
        let t = t.clone();
        tokio::spawn(async move {
            if hold {
                t.ask(Hold).await
            } else {
                t.ask(Add).await
            }
        })
    };
    let mut asks = vec![ask(t, true)];
    gate.entered().await;
    for _ in 0..QUEUED {
        asks.push(ask(t, false));
        support::queued(t, asks.len() - 1).await;
    }
    assert!(asks.iter().all(|a| !a.is_finished()), "every ask waits behind the held one");
    asks
}

/// Mutations queued behind a busy mailbox share one store write: with
/// `1 + QUEUED` mutating asks forced into one group there are at most 2
/// writes and 2 new versions (not one per message), every ask still gets its
/// own reply, and every acknowledged mutation is in the store.
#[tokio::test(start_paused = true)]
async fn concurrent_mutations_share_store_writes_and_all_are_durable() {
    let store = Arc::new(CountingStore::default());
    let root = Container::root_with(counting(&store)).await.unwrap();
    let gate = Gate::default();
    let t = root.add("tally", Tally { gate: gate.clone(), ..Tally::default() }).await.unwrap();
    let (saves, version) = (store.saves(), t.snapshot().version);

    let asks = held_group(&t, &gate).await;
    assert_eq!(store.saves(), saves, "nothing is written while the mailbox is held");
    gate.release();
    let mut replies = Vec::new();
    for a in asks {
        replies.push(a.await.unwrap().unwrap());
    }

    let messages = 1 + QUEUED;
    assert_eq!(replies, (1..=messages as u64).collect::<Vec<_>>(), "each ask, its own reply");
    let writes = store.saves() - saves;
    assert!(writes <= 2, "{writes} store writes for {messages} queued mutations: no group commit");
    let versions = t.snapshot().version - version;
    assert!(versions <= 2, "{versions} new versions for {messages} queued mutations");
    let rec = store.record("/root/tally").await.unwrap();
    assert_eq!(rec.fields["count"], json!(messages), "every acknowledged mutation is stored");
    assert_eq!(t.snapshot().state.count, messages as u64);
    root.shutdown().await.unwrap();
}

/// Under real concurrency (64 callers on 2 threads) every acknowledged
/// mutation is stored, with at most one store write per message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_asks_on_threads_are_all_durable_with_at_most_one_write_each() {
    let store = Arc::new(CountingStore::default());
    let root = Container::root_with(counting(&store)).await.unwrap();
    let t = root.add("tally", Tally::default()).await.unwrap();
    let saves = store.saves();
    let tasks: Vec<_> = (0..64)
        .map(|_| {
            let t = t.clone();
            tokio::spawn(async move { t.ask(Add).await })
        })
        .collect();
    let mut replies = Vec::new();
    for task in tasks {
        replies.push(task.await.unwrap().unwrap());
    }
    replies.sort_unstable();
    assert_eq!(replies, (1..=64).collect::<Vec<u64>>(), "every reply is a distinct count");
    let rec = store.record("/root/tally").await.unwrap();
    assert_eq!(rec.fields["count"], json!(64), "every acknowledged mutation is stored");
    let writes = store.saves() - saves;
    assert!((1..=64).contains(&writes), "{writes} store writes for 64 messages");
    assert!(rec.version <= 64, "at most one stored version per message: {}", rec.version);
    root.shutdown().await.unwrap();
}

/// When the one store write of a group fails, every message of the group
/// fails with the store error and nothing of the group survives: not in the
/// state, the snapshot, its version and ETag, the subscribers or the store.
/// One failing write for `1 + QUEUED` messages shows a group really formed.
#[tokio::test(start_paused = true)]
async fn a_store_failure_fails_every_message_of_the_group_and_keeps_the_state() {
    let store = Arc::new(CountingStore::default());
    let root = Container::root_with(counting(&store)).await.unwrap();
    let gate = Gate::default();
    let t = root.add("tally", Tally { gate: gate.clone(), ..Tally::default() }).await.unwrap();
    assert_eq!(t.ask(Add).await.unwrap(), 1);
    let before = t.snapshot();
    let stored = store.record("/root/tally").await.unwrap();
    let mut sub = t.subscribe();

    store.set_failing(true);
    let (saves, failed) = (store.saves(), store.failed_saves());
    let asks = held_group(&t, &gate).await;
    gate.release();
    for a in asks {
        let reply = a.await.unwrap();
        assert!(
            matches!(&reply, Err(Error::Store(m)) if m.contains("/root/tally")),
            "every message of the failed group gets the store error, not {reply:?}"
        );
    }

    let messages = 1 + QUEUED;
    assert_eq!(
        (store.saves() - saves, store.failed_saves() - failed),
        (1, 1),
        "one failing write for the {messages} messages of the group"
    );
    let after = t.snapshot();
    assert_eq!((after.state.count, after.version, after.etag), (1, before.version, before.etag));
    assert_eq!(store.record("/root/tally").await.unwrap(), stored, "nothing persisted");
    while let Ok(Some(change)) = sub.try_recv() {
        assert!(!matches!(change, kinesis::Change::Updated { .. }), "nothing published");
    }

    store.set_failing(false);
    assert_eq!(t.ask(Add).await.unwrap(), 2, "the state inside is the one from before the group");
    root.shutdown().await.unwrap();
}
