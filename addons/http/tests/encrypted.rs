//! Encrypted persisted fields never leave the server: they are `"***"` in
//! every response and event, and a PUT or PATCH sending `"***"` back keeps
//! the stored value.

mod common;

use std::time::Duration;

use common::{header, problem, serve_runtime};
use futures::StreamExt;
use kinesis::persist::Cipher;
use kinesis::{Component, Config, Persist, Runtime};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

const SECRET: &str = "s3cret-api-key-42";

/// An account with an encrypted API key.
#[derive(Clone, Debug, Default, Serialize, Deserialize, Persist)]
pub struct Account {
    #[persist]
    owner: String,
    #[persist(encrypt)]
    #[serde(rename = "apiKey")]
    api_key: String,
    visits: u64,
}

impl Component for Account {}

#[kinesis::handlers]
impl Account {
    /// Whether the stored key is `guess`.
    pub fn key_is(&self, guess: String) -> bool {
        self.api_key == guess
    }

    /// Counts a visit.
    pub fn visit(&mut self) -> u64 {
        self.visits += 1;
        self.visits
    }
}

async fn server() -> common::Server {
    let key = Cipher::generate_key();
    let config = Config {
        db_connection: Some("memory://".into()),
        encrypt_key: Some(key),
        ..Config::default()
    };
    let runtime = Runtime::builder(config).start().await.expect("runtime starts");
    let s = serve_runtime(runtime, common::options()).await;
    let account = Account { owner: "ada".into(), api_key: SECRET.into(), visits: 0 };
    s.runtime.root().add("account", account).await.expect("account starts");
    s
}

async fn key_is(s: &common::Server, guess: &str) -> bool {
    let r = s.get(&format!("/root/account/key_is?guess={guess}")).await;
    r.json::<Value>().await.unwrap().as_bool().unwrap()
}

#[tokio::test]
async fn encrypted_fields_are_redacted_in_responses() {
    let s = server().await;
    let r = s.get("/root/account").await;
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    assert!(!text.contains(SECRET), "{text}");
    let body: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(body["data"], json!({"owner": "ada", "apiKey": "***", "visits": 0}));
    let tree = s.get("/").await.text().await.unwrap();
    assert!(!tree.contains(SECRET));
    assert!(key_is(&s, SECRET).await);
}

#[tokio::test]
async fn put_and_patch_sending_the_mask_back_keep_the_stored_value() {
    let s = server().await;
    let url = s.url("/root/account");
    let etag = s.etag("/root/account").await;
    let data = json!({"owner": "bob", "apiKey": "***", "visits": 1});
    let r = s.client.put(&url).header("if-match", etag).json(&data).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let etag = header(&r, "etag");
    let text = r.text().await.unwrap();
    assert!(!text.contains(SECRET), "{text}");
    assert_eq!(serde_json::from_str::<Value>(&text).unwrap()["data"], data);
    assert!(key_is(&s, SECRET).await, "PUT with *** lost the key");

    let patch = json!({"owner": "carol", "apiKey": "***"});
    let r = s.client.patch(&url).header("if-match", &etag).json(&patch).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let etag = header(&r, "etag");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["data"]["owner"], "carol");
    assert_eq!(body["data"]["apiKey"], "***");
    assert!(key_is(&s, SECRET).await, "PATCH with *** lost the key");

    // A new value is taken, and shown masked too.
    let r = s.client.patch(&url).header("if-match", &etag).json(&json!({"apiKey": "new-key-7"}));
    let r = r.send().await.unwrap();
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    assert!(!text.contains("new-key-7"), "{text}");
    assert!(key_is(&s, "new-key-7").await);

    // Errors do not show it either.
    let r = s.client.put(&url).header("if-match", "*").json(&json!({"owner": 5})).send().await;
    let body = problem(r.unwrap(), 422).await;
    assert!(!body.to_string().contains("new-key-7"), "{body}");
}

#[tokio::test]
async fn watch_events_show_the_mask() {
    let s = server().await;
    let r = s.get("/root/account/_watch").await;
    assert_eq!(r.status(), 200);
    let mut stream = r.bytes_stream();
    s.post_json("/root/account/visit", json!({})).await;
    let patch = json!({"apiKey": "rotated-key-9"});
    let r = s.client.patch(s.url("/root/account")).header("if-match", "*").json(&patch).send();
    assert_eq!(r.await.unwrap().status(), 200);

    let mut text = String::new();
    while text.matches("event: updated").count() < 2 {
        let chunk = tokio::time::timeout(Duration::from_secs(10), stream.next()).await;
        let chunk = chunk.expect("events arrive").expect("stream goes on").unwrap();
        text.push_str(std::str::from_utf8(&chunk).unwrap());
    }
    assert!(text.contains("\"apiKey\":\"***\""), "{text}");
    assert!(!text.contains(SECRET) && !text.contains("rotated-key-9"), "{text}");
}
