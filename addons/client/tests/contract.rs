//! One test body, run on an in-process `Handle<Shop>`, on a `Remote<Shop>`
//! over a real HTTP server on 127.0.0.1, and on a `Remote<Shop>` through
//! the in-process transport: the outcomes, values and errors alike (kinds
//! and messages), are the same.

use std::net::SocketAddr;
use std::sync::Arc;

use kinesis::remote::{InProcess, Remote, StateHandle};
use kinesis::{Component, Config, Error, ErrorKind, Result, Runtime};
use kinesis_http::HttpConfig;
use serde::{Deserialize, Serialize};

/// A shop: items in stock, and who bought the ones sold.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Shop {
    /// Items left.
    pub stock: u64,
    /// Buyers, in order of sale.
    pub sold: Vec<String>,
}

impl Component for Shop {}

#[kinesis::handlers]
impl Shop {
    /// Adds `count` items; zero is refused.
    pub fn restock(&mut self, count: u64) -> Result<u64> {
        if count == 0 {
            return Err(Error::invalid("restock at least one item"));
        }
        self.stock += count;
        Ok(self.stock)
    }

    /// Sells one item to `buyer`; fails with the handler's own error type
    /// when there is none left.
    pub fn sell(&mut self, buyer: String) -> std::result::Result<u64, String> {
        if self.stock == 0 {
            return Err(format!("nothing left for {buyer}"));
        }
        self.stock -= 1;
        self.sold.push(buyer);
        Ok(self.stock)
    }

    /// The buyer of sale `index`.
    pub fn buyer(&self, index: usize) -> Result<String> {
        self.sold.get(index).cloned().ok_or_else(|| Error::NotFound(format!("sale {index}")))
    }

    /// Items left, and a note when `verbose`.
    pub fn left(&self, verbose: Option<bool>) -> (u64, Option<String>) {
        (self.stock, verbose.unwrap_or(false).then(|| format!("{} left", self.stock)))
    }
}

/// What a step of the body gave, comparable across transports: values as
/// JSON, errors as kind and message (conflicts with the ETag replaced by
/// whether it was the current one).
#[derive(Debug, PartialEq)]
enum Outcome {
    Value(serde_json::Value),
    Failed(ErrorKind, String),
}

fn outcome<T: Serialize>(r: Result<T>) -> Outcome {
    match r {
        Ok(v) => Outcome::Value(serde_json::to_value(v).unwrap()),
        Err(Error::Conflict { .. }) => Outcome::Failed(ErrorKind::Conflict, String::new()),
        Err(e) => Outcome::Failed(e.kind(), e.to_string()),
    }
}

/// The one body: written against the generated trait and `StateHandle`.
async fn body<H: ShopHandle + StateHandle<Shop>>(shop: &H) -> Vec<Outcome> {
    let mut out = Vec::new();
    out.push(outcome(shop.restock(3).await));
    out.push(outcome(shop.sell("ada".into()).await));
    out.push(outcome(shop.left(Some(true)).await));
    out.push(outcome(shop.left(None).await));
    out.push(outcome(shop.buyer(0).await));
    // Not found, invalid argument, handler error.
    out.push(outcome(shop.buyer(7).await));
    out.push(outcome(shop.restock(0).await));
    out.push(outcome(shop.sell("bob".into()).await));
    out.push(outcome(shop.sell("cy".into()).await));
    out.push(outcome(shop.sell("dee".into()).await));
    // Compare-and-set: a write under the current ETag passes, one under the
    // old ETag is a conflict that carries the ETag current now.
    let before = shop.read().await.expect("read");
    out.push(Outcome::Value(serde_json::to_value(&before.state).unwrap()));
    let written = shop.write(Shop { stock: 10, sold: vec![] }, &before.etag).await;
    let written = written.expect("a write under the current ETag passes");
    out.push(Outcome::Value(serde_json::json!(written.version - before.version)));
    match shop.write(Shop { stock: 99, sold: vec![] }, &before.etag).await {
        Err(Error::Conflict { current }) => {
            assert_eq!(current, written.etag, "the conflict carries the current ETag");
            out.push(Outcome::Failed(ErrorKind::Conflict, String::new()));
        }
        other => panic!("a stale ETag must conflict, got {other:?}"),
    }
    let after = shop.read().await.expect("read");
    assert_eq!(after.etag, written.etag);
    out.push(Outcome::Value(serde_json::to_value(&after.state).unwrap()));
    out
}

fn expected() -> Vec<Outcome> {
    use serde_json::json;
    vec![
        Outcome::Value(json!(3)),
        Outcome::Value(json!(2)),
        Outcome::Value(json!([2, "2 left"])),
        Outcome::Value(json!([2, null])),
        Outcome::Value(json!("ada")),
        Outcome::Failed(ErrorKind::NotFound, "not found: sale 7".into()),
        Outcome::Failed(ErrorKind::Invalid, "invalid: restock at least one item".into()),
        Outcome::Value(json!(1)),
        Outcome::Value(json!(0)),
        Outcome::Failed(ErrorKind::Handler, "handler failed: nothing left for dee".into()),
        Outcome::Value(json!({"stock": 0, "sold": ["ada", "bob", "cy"]})),
        Outcome::Value(json!(1)),
        Outcome::Failed(ErrorKind::Conflict, String::new()),
        Outcome::Value(json!({"stock": 10, "sold": []})),
    ]
}

async fn runtime() -> Runtime {
    let runtime = Runtime::builder(Config::default()).start().await.expect("runtime starts");
    runtime.root().add("shop", Shop::default()).await.expect("shop starts");
    runtime
}

#[tokio::test]
async fn in_process_handle() {
    let runtime = runtime().await;
    let shop = runtime.root().get::<Shop>("shop").unwrap();
    assert_eq!(body(&shop).await, expected());
    runtime.shutdown().await;
}

#[tokio::test]
async fn remote_over_http() {
    let runtime = runtime().await;
    let config =
        HttpConfig { addr: SocketAddr::from(([127, 0, 0, 1], 0)), ..HttpConfig::default() };
    let http = kinesis_http::serve(&runtime, &config).await.expect("server starts");
    let addr = http.snapshot().state.local_addr().expect("listening");
    let client = kinesis_client::Client::new(format!("http://{addr}")).unwrap();
    let shop: Remote<Shop> = client.remote("/root/shop");
    assert_eq!(body(&shop).await, expected());

    // The meta over HTTP is the meta in process.
    let over_http = client.dyn_remote("/root/shop").meta().await.unwrap();
    let local =
        kinesis::remote::RemoteMeta::from(runtime.root().lookup("/root/shop").unwrap().meta());
    assert_eq!(over_http, local);

    // An unknown component and an unknown method are not found, as in
    // process.
    let missing: Remote<Shop> = client.remote("/root/nothing");
    assert_eq!(missing.restock(1).await.unwrap_err().kind(), ErrorKind::NotFound);
    let in_process = runtime.root().get::<Shop>("nothing").unwrap_err();
    assert_eq!(in_process.kind(), ErrorKind::NotFound);
    let err = client.dyn_remote("/root/shop").call("steal", serde_json::json!({})).await;
    assert_eq!(err.unwrap_err().kind(), ErrorKind::NotFound);
    // Arguments the server refuses: the same kind as in process.
    let by_name = client.dyn_remote("/root/shop");
    let err = by_name.call("restock", serde_json::json!({"count": "x"})).await;
    assert_eq!(err.unwrap_err().kind(), ErrorKind::Invalid);
    runtime.shutdown().await;
}

#[tokio::test]
async fn remote_in_process_transport() {
    let runtime = runtime().await;
    let shop: Remote<Shop> =
        Remote::new(Arc::new(InProcess::new(runtime.root().clone())), "/root/shop");
    assert_eq!(body(&shop).await, expected());
    runtime.shutdown().await;
}

#[tokio::test]
async fn a_closed_port_is_unreachable() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let client = kinesis_client::Client::new(format!("http://{addr}")).unwrap();
    let err = client.remote::<Shop>("/root/shop").restock(1).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unreachable, "{err}");
    assert!(err.is_retryable());
}

/// The same body over the gRPC add-on (`grpc://`), chosen by the URL.
#[cfg(feature = "grpc")]
#[tokio::test]
async fn remote_over_grpc() {
    use kinesis_grpc::{GrpcAddr, GrpcOptions, GrpcServer};
    let runtime = runtime().await;
    let options = GrpcOptions::new(GrpcAddr::Tcp(SocketAddr::from(([127, 0, 0, 1], 0))));
    let server = runtime
        .addons()
        .add("grpc", GrpcServer::new(runtime.root().clone(), options))
        .await
        .expect("gRPC server starts");
    let addr = server.snapshot().state.local_addr().expect("listening");
    let client = kinesis_client::Client::new(format!("grpc://{addr}")).unwrap();
    let shop: Remote<Shop> = client.remote("/root/shop");
    assert_eq!(body(&shop).await, expected());

    // The meta over gRPC is the meta in process.
    let over_grpc = client.dyn_remote("/root/shop").meta().await.unwrap();
    let local =
        kinesis::remote::RemoteMeta::from(runtime.root().lookup("/root/shop").unwrap().meta());
    assert_eq!(over_grpc, local);
    let missing: Remote<Shop> = client.remote("/root/nothing");
    assert_eq!(missing.restock(1).await.unwrap_err().kind(), ErrorKind::NotFound);
    let by_name = client.dyn_remote("/root/shop");
    let err = by_name.call("restock", serde_json::json!({"count": "x"})).await;
    assert_eq!(err.unwrap_err().kind(), ErrorKind::Invalid);
    runtime.shutdown().await;
}

/// A gRPC port nobody listens on is unreachable, as over HTTP.
#[cfg(feature = "grpc")]
#[tokio::test]
async fn a_closed_grpc_port_is_unreachable() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let client = kinesis_client::Client::new(format!("grpc://{addr}")).unwrap();
    let err = client.remote::<Shop>("/root/shop").restock(1).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unreachable, "{err}");
}
