//! A JSON replace or merge patch whose result has members that are not fields
//! of the component is refused with `Error::Invalid` naming them, and
//! nothing changes; valid bodies, encrypted fields sent back as `"***"`, and
//! members the component writes itself still pass.

use std::sync::Arc;

use kinesis::persist::{Cipher, MemoryStore, Persistence};
use kinesis::{Component, Container, Error, Persist, Precondition};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

#[derive(Clone, Default, Debug, Serialize, Deserialize, PartialEq)]
struct Settings {
    colour: String,
    size: u32,
}

#[derive(Clone, Default, Debug, Serialize, Deserialize, PartialEq)]
struct Tag {
    label: String,
}

#[derive(Clone, Default, Serialize, Deserialize, Persist)]
struct Profile {
    #[persist]
    name: String,
    settings: Settings,
    tags: Vec<Tag>,
    maybe: Option<Settings>,
    #[persist(encrypt)]
    api_key: String,
    /// Written by the component, never read back: sending it back is fine.
    #[serde(skip_deserializing)]
    revision: u64,
    /// Not a field of the JSON state at all.
    #[serde(skip)]
    scratch: u64,
}

impl Component for Profile {}

async fn setup() -> (Container, kinesis::dynamic::SharedDyn) {
    let persistence = Persistence {
        store: Arc::new(MemoryStore::new()),
        cipher: Some(Arc::new(Cipher::new(&Cipher::generate_key(), &[]).unwrap())),
    };
    let root = Container::root_with(Some(persistence)).await.unwrap();
    let profile = Profile {
        name: "ada".into(),
        settings: Settings { colour: "blue".into(), size: 3 },
        tags: vec![Tag { label: "a".into() }],
        maybe: Some(Settings::default()),
        api_key: "s3cret".into(),
        revision: 7,
        scratch: 5,
    };
    root.add("profile", profile).await.unwrap();
    let dynamic = root.get_dyn("profile").unwrap();
    (root, dynamic)
}

fn invalid(result: kinesis::Result<impl std::fmt::Debug>) -> String {
    match result {
        Err(Error::Invalid(msg)) => msg,
        other => panic!("expected Error::Invalid, got {other:?}"),
    }
}

fn valid_body() -> Value {
    json!({
        "name": "grace",
        "settings": {"colour": "red", "size": 4},
        "tags": [{"label": "b"}],
        "maybe": null,
        "api_key": "***",
    })
}

#[tokio::test]
async fn replace_with_an_unknown_member_is_refused_naming_it() {
    let (root, d) = setup().await;
    let before = d.snapshot_json().unwrap();

    let mut body = valid_body();
    body["meta"] = json!({"etag": "x"});
    let msg = invalid(d.replace_json(body, Precondition::Any).await);
    assert!(msg.contains("`meta`"), "{msg}");

    let mut body = valid_body();
    body["settings"]["colour_"] = json!("green");
    body["tags"][0]["lable"] = json!("typo");
    body["maybe"] = json!({"colour": "x", "size": 1, "extra": true});
    let msg = invalid(d.replace_json(body, Precondition::Any).await);
    for path in ["`settings.colour_`", "`tags.0.lable`", "`maybe.extra`"] {
        assert!(msg.contains(path), "names {path}: {msg}");
    }

    // The whole body of a GET sent back: both problems in one message.
    let got = json!({"meta": {"version": 1}, "data": valid_body()});
    let msg = invalid(d.replace_json(got, Precondition::Any).await);
    assert!(msg.contains("`data`, `meta`") && msg.contains("missing field"), "{msg}");

    let mut body = valid_body();
    body["scratch"] = json!(null);
    let msg = invalid(d.replace_json(body, Precondition::Any).await);
    assert!(msg.contains("`scratch`"), "a #[serde(skip)] field is not a field: {msg}");

    let after = d.snapshot_json().unwrap();
    assert_eq!((after.version, after.etag), (before.version, before.etag), "nothing changed");
    root.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_patch_that_adds_an_unknown_member_is_refused_naming_it() {
    let (root, d) = setup().await;
    let before = d.snapshot_json().unwrap();

    let msg = invalid(d.merge_patch_json(json!({"meta": 1}), Precondition::Any).await);
    assert!(msg.contains("`meta`"), "{msg}");
    let msg = invalid(
        d.merge_patch_json(json!({"name": "x", "settings": {"shade": "dark"}}), Precondition::Any)
            .await,
    );
    assert!(msg.contains("`settings.shade`"), "{msg}");

    let after = d.snapshot_json().unwrap();
    assert_eq!((after.version, after.etag), (before.version, before.etag), "nothing changed");
    root.shutdown().await.unwrap();
}

#[tokio::test]
async fn valid_bodies_still_pass_and_redacted_fields_round_trip() {
    let (root, d) = setup().await;
    let profile = root.get::<Profile>("profile").unwrap();

    // What a GET shows, sent back as it is: `"***"` and the member the
    // component writes itself included.
    let shown = d.snapshot_json().unwrap();
    assert_eq!(shown.data.to_value()["api_key"], "***");
    assert_eq!(shown.data.to_value()["revision"], 7);
    let mut body = shown.data.to_value();
    body["name"] = json!("grace");
    let replaced = d.replace_json(body, Precondition::Any).await.unwrap();
    assert_eq!(replaced.version, shown.version + 1);
    let state = profile.snapshot().state.clone();
    assert_eq!(state.name, "grace");
    assert_eq!(state.api_key, "s3cret", "the redacted value kept the stored one");
    assert_eq!(state.scratch, 0, "a #[serde(skip)] field starts from Default");

    let patched = d
        .merge_patch_json(
            json!({"settings": {"colour": "red"}, "api_key": "***"}),
            replaced.etag.into(),
        )
        .await
        .unwrap();
    assert_eq!(patched.version, replaced.version + 1);
    let state = profile.snapshot().state.clone();
    assert_eq!(state.settings, Settings { colour: "red".into(), size: 3 });
    assert_eq!(state.api_key, "s3cret");

    d.replace_json(valid_body(), Precondition::Any).await.unwrap();
    assert_eq!(profile.snapshot().state.name, "grace");
    root.shutdown().await.unwrap();
}
