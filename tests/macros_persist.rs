//! `#[derive(Persist)]` against the real runtime: the registered schema, serde
//! names, redaction of encrypted fields, and a round trip through a store.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use kinesis::persist::{
    schema_of, Cipher, MemoryStore, PersistField, Persistence, Store, ENCRYPTED_MARKER, REDACTED,
};
use kinesis::{Component, Container, Handler, JsonChange, JsonSnapshot, Persist, Result};
use serde::{Deserialize, Serialize};
use serde_json::json;

/// Renamed fields, an encrypted one, a field that is not persisted and one
/// that serde skips.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, Persist)]
#[serde(rename_all = "camelCase")]
pub struct Vault {
    #[persist]
    owner_name: String,
    #[persist(encrypt)]
    #[serde(rename = "apiKey")]
    api_key_value: String,
    #[persist(encrypt)]
    pin_code: u32,
    visits: u64,
    #[serde(skip)]
    scratch: u8,
}

impl Component for Vault {}

/// Sets the key.
pub struct SetKey(pub String);

impl Handler<SetKey> for Vault {
    type Reply = ();
    async fn handle(&mut self, SetKey(key): SetKey, _: &mut kinesis::Context<Self>) -> Result<()> {
        self.api_key_value = key;
        self.visits += 1;
        Ok(())
    }
}

/// No `#[persist]` field at all.
#[derive(Clone, Debug, Default, Serialize, Deserialize, Persist)]
pub struct Cache {
    hits: u64,
}

impl Component for Cache {}

fn persistence(store: Arc<MemoryStore>, key: &str) -> Persistence {
    Persistence { store, cipher: Some(Arc::new(Cipher::new(key, &[]).unwrap())) }
}

fn vault() -> Vault {
    Vault {
        owner_name: "ada".into(),
        api_key_value: "s3cret-key".into(),
        pin_code: 1234,
        visits: 7,
        scratch: 9,
    }
}

#[test]
fn the_schema_is_registered_under_the_serde_names() {
    let schema = schema_of::<Vault>().expect("derive(Persist) registers a schema");
    assert_eq!(
        schema.fields,
        &[
            PersistField { name: "ownerName", encrypt: false },
            PersistField { name: "apiKey", encrypt: true },
            PersistField { name: "pinCode", encrypt: true },
        ]
    );
    assert_eq!(schema.type_name, "macros_persist::Vault");
    assert_eq!(schema.type_name, std::any::type_name::<Vault>());
    assert!(schema.has_encrypted());

    // The names are the keys of the serialised state, which is what the
    // runtime stores and redacts.
    let state = serde_json::to_value(vault()).unwrap();
    for field in schema.fields {
        assert!(state.get(field.name).is_some(), "`{}` is not a key of {state}", field.name);
    }
}

#[tokio::test]
async fn a_struct_without_persist_fields_registers_an_empty_schema() {
    let schema = schema_of::<Cache>().expect("registered");
    assert!(schema.fields.is_empty());
    assert!(!schema.has_encrypted());
    // Nothing to store: it runs without any store configured.
    let root = Container::root().await.unwrap();
    let cache = root.add("cache", Cache { hits: 3 }).await.unwrap();
    assert_eq!(cache.snapshot().state.hits, 3);
    root.shutdown().await.unwrap();
}

#[tokio::test]
async fn encrypted_fields_are_redacted_in_every_json_snapshot() {
    let store = Arc::new(MemoryStore::new());
    let root = Container::root_with(Some(persistence(store.clone(), &Cipher::generate_key())))
        .await
        .unwrap();
    let handle = root.add("vault", vault()).await.unwrap();
    let d = root.get_dyn("vault").unwrap();

    let expected = json!({
        "ownerName": "ada",
        "apiKey": REDACTED,
        "pinCode": REDACTED,
        "visits": 7,
    });
    assert_eq!(d.snapshot_json().unwrap().data, expected);
    assert_eq!(JsonSnapshot::of(&handle.snapshot(), handle.stage()).unwrap().data, expected);
    // The typed snapshot keeps the real values.
    assert_eq!(handle.snapshot().state.api_key_value, "s3cret-key");

    // Changes are redacted too.
    let mut sub = d.subscribe_json();
    handle.ask(SetKey("new-key".into())).await.unwrap();
    let change = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            if let Some(Ok(JsonChange::Updated { data, .. })) = sub.next().await {
                return data;
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(change.to_value()["apiKey"], REDACTED);
    assert_eq!(change.to_value()["visits"], 8);
    assert!(!change.to_string().contains("new-key"));

    // A patch that sends "***" back keeps the secret; a new value replaces it.
    let etag = d.snapshot_json().unwrap().etag;
    let patched = d
        .merge_patch_json(json!({"apiKey": REDACTED, "ownerName": "grace"}), etag.into())
        .await
        .unwrap();
    assert_eq!(patched.data.to_value()["ownerName"], "grace");
    assert_eq!(patched.data.to_value()["apiKey"], REDACTED);
    assert_eq!(handle.snapshot().state.api_key_value, "new-key");

    // The store holds the persisted fields only, the encrypted ones as ciphertext.
    let record = store.load("/root/vault").await.unwrap().expect("a record");
    let mut keys: Vec<_> = record.fields.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["apiKey", "ownerName", "pinCode"]);
    assert_eq!(record.fields["ownerName"], "grace");
    let sealed = record.fields["apiKey"][ENCRYPTED_MARKER].as_str().expect("sealed value");
    assert!(!sealed.contains("new-key"));
    root.shutdown().await.unwrap();
}

#[tokio::test]
async fn persisted_fields_come_back_for_a_new_instance_with_the_same_uri() {
    let store = Arc::new(MemoryStore::new());
    let key = Cipher::generate_key();

    let root = Container::root_with(Some(persistence(store.clone(), &key))).await.unwrap();
    let handle = root.add("vault", vault()).await.unwrap();
    handle.ask(SetKey("rotated".into())).await.unwrap();
    root.shutdown().await.unwrap();

    let root = Container::root_with(Some(persistence(store, &key))).await.unwrap();
    let handle = root.add("vault", Vault::default()).await.unwrap();
    let state = handle.snapshot().state.clone();
    assert_eq!(
        state,
        Vault {
            owner_name: "ada".into(),
            api_key_value: "rotated".into(),
            pin_code: 1234,
            visits: 0, // not persisted
            scratch: 0,
        }
    );
    root.shutdown().await.unwrap();
}
