//! Over real HTTP: a PUT or PATCH whose body (or patched result) has members
//! that are not fields of the component gets 422 with a problem+json detail
//! naming them, and the state stays as it was; valid bodies still get 200.

mod common;

use common::{header, problem, serve};
use kinesis::Component;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct Settings {
    colour: String,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct Profile {
    name: String,
    settings: Settings,
}

impl Component for Profile {}

async fn get(s: &common::Server) -> (String, Value) {
    let r = s.get("/root/profile").await;
    assert_eq!(r.status(), 200);
    let etag = header(&r, "etag");
    (etag, r.json::<Value>().await.unwrap())
}

#[tokio::test]
async fn put_and_patch_with_unknown_members_get_422_naming_them() {
    let s = serve().await;
    s.runtime.root().add("profile", Profile::default()).await.unwrap();
    let url = s.url("/root/profile");
    let (etag, before) = get(&s).await;

    // A client that PUTs back the whole GET body, `meta` included.
    let r = s.client.put(&url).header("if-match", &etag).json(&before).send().await.unwrap();
    let body = problem(r, 422).await;
    let detail = body["detail"].as_str().unwrap();
    assert!(detail.contains("`meta`"), "{body}");

    let put = json!({"name": "ada", "settings": {"colour": "red", "shade": "dark"}});
    let r = s.client.put(&url).header("if-match", &etag).json(&put).send().await.unwrap();
    let body = problem(r, 422).await;
    assert!(body["detail"].as_str().unwrap().contains("`settings.shade`"), "{body}");

    let r = s
        .client
        .patch(&url)
        .header("if-match", &etag)
        .header("content-type", "application/merge-patch+json")
        .body(r#"{"meta": {"version": 9}}"#)
        .send()
        .await
        .unwrap();
    let body = problem(r, 422).await;
    assert!(body["detail"].as_str().unwrap().contains("`meta`"), "{body}");

    let patch = json!({"settings": {"shade": "dark"}});
    let r = s.client.patch(&url).header("if-match", &etag).json(&patch).send().await.unwrap();
    let body = problem(r, 422).await;
    assert!(body["detail"].as_str().unwrap().contains("`settings.shade`"), "{body}");

    let (etag_after, after) = get(&s).await;
    assert_eq!(etag_after, etag, "the state is unchanged");
    assert_eq!(after["meta"]["version"], before["meta"]["version"]);
    assert_eq!(after["data"], before["data"]);

    // Valid bodies still pass.
    let put = json!({"name": "ada", "settings": {"colour": "red"}});
    let r = s.client.put(&url).header("if-match", &etag).json(&put).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let etag = header(&r, "etag");
    let patch = json!({"settings": {"colour": "blue"}});
    let r = s.client.patch(&url).header("if-match", &etag).json(&patch).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let (_, after) = get(&s).await;
    assert_eq!(after["data"], json!({"name": "ada", "settings": {"colour": "blue"}}));
    assert_eq!(after["meta"]["version"], before["meta"]["version"].as_u64().unwrap() + 2);
}
