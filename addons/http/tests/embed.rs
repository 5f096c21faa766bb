//! `examples/embed.rs`: kinesis nested under `/api` in an app of its own,
//! beside the app's route, under the app's layer.

#[path = "../examples/embed.rs"]
#[allow(dead_code, missing_docs, unreachable_pub)]
mod embed;

use std::net::SocketAddr;

use kinesis::Container;
use kinesis_http::HttpOptions;
use serde_json::{json, Value};

/// Serves the example's app for `root` on 127.0.0.1 (a free port).
async fn serve(root: &Container) -> String {
    let options = HttpOptions { addr: SocketAddr::from(([127, 0, 0, 1], 0)), ..Default::default() };
    let listener = tokio::net::TcpListener::bind(options.addr).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = embed::app(root.clone(), &options);
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

#[tokio::test]
async fn kinesis_under_api_beside_the_apps_route_under_the_apps_layer() {
    let root = Container::root().await.unwrap();
    root.add("counter", embed::Counter::default()).await.unwrap();
    let base = serve(&root).await;
    let client = reqwest::Client::new();
    let served_by = |r: &reqwest::Response| r.headers()["x-served-by"].to_str().unwrap().to_owned();

    // The app's own route, with the app's layer.
    let r = client.get(format!("{base}/hello")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(served_by(&r), "embed-example");
    assert_eq!(r.text().await.unwrap(), "hello from the app");

    // kinesis under /api: the component, a method, the tree, errors, with
    // the app's layer and the add-on's own (trace ids).
    let r = client.get(format!("{base}/api/root/counter")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(served_by(&r), "embed-example");
    assert!(r.headers().contains_key("trace-id"));
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["meta"]["uri"], "/root/counter");
    let r = client
        .post(format!("{base}/api/root/counter/increment"))
        .json(&json!({"by": 2}))
        .send()
        .await
        .unwrap();
    assert_eq!((r.status().as_u16(), served_by(&r)), (200, "embed-example".to_owned()));
    assert_eq!(r.json::<Value>().await.unwrap(), json!(2));
    let tree: Value = client.get(format!("{base}/api")).send().await.unwrap().json().await.unwrap();
    assert_eq!(tree["components"][1]["uri"], "/root/counter");
    let r = client.get(format!("{base}/api/root/nothing")).send().await.unwrap();
    assert_eq!((r.status().as_u16(), served_by(&r)), (404, "embed-example".to_owned()));
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    let doc: Value = client
        .get(format!("{base}/api/_kinesis/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(doc["openapi"], "3.1.0");

    // Outside /api the component is not served: the app's own 404.
    let r = client.get(format!("{base}/root/counter")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(served_by(&r), "embed-example");
    root.shutdown().await.unwrap();
}

#[tokio::test]
async fn merged_into_an_app_kinesis_serves_every_path_the_app_does_not() {
    let root = Container::root().await.unwrap();
    root.add("counter", embed::Counter::default()).await.unwrap();
    let app = axum::Router::new()
        .route("/mine", axum::routing::get(|| async { "mine" }))
        .merge(kinesis_http::layers(kinesis_http::router(root.clone(), &HttpOptions::default())));
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let client = reqwest::Client::new();
    let mine = client.get(format!("{base}/mine")).send().await.unwrap();
    assert_eq!(mine.text().await.unwrap(), "mine");
    let r = client.get(format!("{base}/root/counter")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers().contains_key("trace-id"));
    let r = client.get(format!("{base}/nothing")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    root.shutdown().await.unwrap();
}
