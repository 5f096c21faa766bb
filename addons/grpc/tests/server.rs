//! The server around the generic service, on real sockets: a service of
//! the application's own drained on shutdown, health following readiness,
//! reflection, the token matrix, the trace context, and Unix sockets.

mod common;

use std::convert::Infallible;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use common::*;
use futures::future::BoxFuture;
use futures::StreamExt;
use kinesis::{Component, Result};
use kinesis_grpc::{GrpcAddr, GrpcOptions, GrpcServer};
use kinesis_http::security::{new_token, SecurityConfig, TokenFile};
use kinesis_proto::v1 as pb;
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;
use tonic::codegen::http;
use tonic::server::NamedService;
use tonic::Code;

/// The message of the test's own service.
#[derive(Clone, PartialEq, prost::Message)]
struct Text {
    #[prost(string, tag = "1")]
    text: String,
}

/// `test.Slow/Wait`: answers once released, a service of the application's
/// own written as tonic's generated code would be.
#[derive(Clone)]
struct Slow {
    started: Arc<Notify>,
    release: Arc<Notify>,
    /// What the call needs once released: a component under `/root`.
    counter: kinesis::Handle<Counter>,
}

impl NamedService for Slow {
    const NAME: &'static str = "test.Slow";
}

struct Wait(Slow);

impl tonic::server::UnaryService<Text> for Wait {
    type Response = Text;
    type Future = BoxFuture<'static, std::result::Result<tonic::Response<Text>, tonic::Status>>;

    fn call(&mut self, request: tonic::Request<Text>) -> Self::Future {
        let slow = self.0.clone();
        Box::pin(async move {
            slow.started.notify_one();
            slow.release.notified().await;
            let count = slow
                .counter
                .increment(1)
                .await
                .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
            Ok(tonic::Response::new(Text {
                text: format!("waited for {}, count {count}", request.into_inner().text),
            }))
        })
    }
}

impl tower::Service<http::Request<tonic::body::Body>> for Slow {
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, std::result::Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<std::result::Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<tonic::body::Body>) -> Self::Future {
        let slow = self.clone();
        Box::pin(async move {
            let mut grpc =
                tonic::server::Grpc::new(tonic_prost::ProstCodec::<Text, Text>::default());
            Ok(grpc.unary(Wait(slow), request).await)
        })
    }
}

async fn wait_call(
    channel: tonic::transport::Channel,
    text: &str,
) -> std::result::Result<Text, tonic::Status> {
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.map_err(|e| tonic::Status::unavailable(e.to_string()))?;
    let path = http::uri::PathAndQuery::from_static("/test.Slow/Wait");
    let codec = tonic_prost::ProstCodec::<Text, Text>::default();
    grpc.unary(tonic::Request::new(Text { text: text.into() }), path, codec)
        .await
        .map(|r| r.into_inner())
}

#[tokio::test]
async fn a_service_of_the_application_is_served_beside_and_drained_on_shutdown() {
    let (runtime, counter) = runtime().await;
    let slow = Slow { started: Arc::new(Notify::new()), release: Arc::new(Notify::new()), counter };
    let options = GrpcOptions::new(loopback());
    let server = GrpcServer::new(runtime.root().clone(), options).add_service(slow.clone());
    let server = runtime.addons().add("grpc", server).await.unwrap();
    let addr = addr_of(&server);
    let channel = channel(addr).await;

    // Beside the generic service, on the same port.
    let mut c = client(addr).await;
    c.tree(pb::TreeRequest {}).await.unwrap();

    // A call in flight when the runtime is asked to stop.
    let in_flight = tokio::spawn(wait_call(channel.clone(), "the drain"));
    slow.started.notified().await;
    let mut stopping = tokio::spawn({
        let runtime = runtime.clone();
        async move { runtime.shutdown().await }
    });
    // The server stops accepting: a new connection is refused…
    eventually("new connections are refused", || async {
        tokio::net::TcpStream::connect(addr).await.is_err()
    })
    .await;
    // …while the call in flight still holds the shutdown, and `/root`
    // is still up for it.
    let early = tokio::time::timeout(Duration::from_millis(500), &mut stopping).await;
    assert!(early.is_err(), "the shutdown waits for the call in flight");
    assert_eq!(
        runtime.root().handle().unwrap().stage(),
        kinesis::Stage::Started,
        "/root stops after the server"
    );
    slow.release.notify_one();
    let answer = in_flight.await.unwrap().expect("the call in flight is answered");
    assert_eq!(answer.text, "waited for the drain, count 1", "the call could use /root");
    let report = tokio::time::timeout(Duration::from_secs(10), stopping).await.unwrap().unwrap();
    assert!(report.clean, "{report:?}");
}

/// A component whose health check fails while `sick` is set.
#[derive(Clone, Default, Serialize, Deserialize)]
struct Patient {
    #[serde(skip)]
    sick: Arc<AtomicBool>,
}

impl Component for Patient {
    async fn health(&self) -> Result<()> {
        if self.sick.load(Ordering::SeqCst) {
            return Err(kinesis::Error::handler("feeling sick"));
        }
        Ok(())
    }
}

#[tokio::test]
async fn the_health_service_follows_readiness_and_reflection_lists_the_services() {
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::health_client::HealthClient;
    use tonic_health::pb::HealthCheckRequest;

    let (runtime, _counter) = runtime().await;
    let patient = Patient::default();
    let sick = Arc::clone(&patient.sick);
    runtime.root().add("patient", patient).await.unwrap();
    let server = serve(&runtime, loopback(), SecurityConfig::default()).await;
    let channel = channel(addr_of(&server)).await;
    let health = HealthClient::new(channel.clone());
    let status = |service: &str| {
        let mut health = health.clone();
        let request = HealthCheckRequest { service: service.into() };
        async move { health.check(request).await.unwrap().into_inner().status }
    };
    let serving = ServingStatus::Serving as i32;
    let not_serving = ServingStatus::NotServing as i32;
    eventually("serving", || async { status("").await == serving }).await;
    assert_eq!(status("kinesis.v1.Kinesis").await, serving);
    let mut watch = health
        .clone()
        .watch(HealthCheckRequest { service: String::new() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(watch.next().await.unwrap().unwrap().status, serving);

    sick.store(true, Ordering::SeqCst);
    assert_eq!(watch.next().await.unwrap().unwrap().status, not_serving, "a failing health hook");
    assert_eq!(status("kinesis.v1.Kinesis").await, not_serving);
    sick.store(false, Ordering::SeqCst);
    assert_eq!(watch.next().await.unwrap().unwrap().status, serving, "and back");

    // A component that is not started makes the runtime not ready.
    let counter = runtime.root().get_dyn("counter").unwrap();
    let stopped =
        tokio::spawn(counter.control(kinesis::Control::RestartAfter(Duration::from_secs(3))));
    assert_eq!(watch.next().await.unwrap().unwrap().status, not_serving, "a restarting component");
    assert_eq!(watch.next().await.unwrap().unwrap().status, serving, "started again");
    stopped.await.unwrap().unwrap();

    // Reflection lists every service.
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    let mut reflection = ServerReflectionClient::new(channel);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut answers = reflection
        .server_reflection_info(futures::stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    let Some(MessageResponse::ListServicesResponse(list)) =
        answers.next().await.unwrap().unwrap().message_response
    else {
        panic!("a list of services")
    };
    let mut names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    names.sort();
    assert_eq!(
        names,
        ["grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection", "kinesis.v1.Kinesis"]
    );
    runtime.shutdown().await;
}

#[tokio::test]
async fn tokens_and_grants_are_the_http_add_ons() {
    let (admin, admin_line) = new_token("admin", "admin:/**").unwrap();
    let (reader, reader_line) = new_token("reader", "read:/root/**").unwrap();
    let (other, other_line) = new_token("other", "admin:/root/elsewhere").unwrap();
    let file = TokenFile::parse(&format!("{admin_line}\n{reader_line}\n{other_line}\n")).unwrap();
    let security = SecurityConfig { tokens: Some(Arc::new(file)), ..SecurityConfig::default() };
    let (runtime, counter) = runtime().await;
    let server = serve(&runtime, loopback(), security).await;
    let mut c = client(addr_of(&server)).await;
    let call = |method: &str, token: Option<&str>| {
        let mut request = tonic::Request::new(pb::CallRequest {
            uri: "/root/counter".into(),
            method: method.into(),
            args_json: if method == "increment" { r#"{"by":1}"#.into() } else { String::new() },
            if_match: vec![],
        });
        if let Some(token) = token {
            request
                .metadata_mut()
                .insert("authorization", format!("Bearer {token}").parse().unwrap());
        }
        request
    };
    let code = |r: std::result::Result<tonic::Response<pb::CallReply>, tonic::Status>| match r {
        Ok(_) => Code::Ok,
        Err(s) => s.code(),
    };
    // No token, an unknown one, a malformed header.
    assert_eq!(code(c.call(call("total", None)).await), Code::Unauthenticated);
    let (unknown, _) = new_token("stranger", "admin").unwrap();
    assert_eq!(code(c.call(call("total", Some(&unknown))).await), Code::Unauthenticated);
    assert_eq!(code(c.call(call("total", Some("not-a-token"))).await), Code::Unauthenticated);
    // Read but not write; a grant on another component.
    assert_eq!(code(c.call(call("total", Some(&reader))).await), Code::Ok);
    let denied = c.call(call("increment", Some(&reader))).await.unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied);
    assert!(denied.message().contains("write:/root/counter"), "{}", denied.message());
    assert_eq!(code(c.call(call("total", Some(&other))).await), Code::PermissionDenied);
    let mut control = tonic::Request::new(pb::ControlRequest {
        uri: "/root/counter".into(),
        op: pb::ControlOp::Stop as i32,
        after_ms: 0,
    });
    control
        .metadata_mut()
        .insert("authorization", format!("Bearer {}", reader.as_str()).parse().unwrap());
    assert_eq!(c.control(control).await.unwrap_err().code(), Code::PermissionDenied);
    assert_eq!(counter.snapshot().state.count, 0, "nothing refused ran");
    // Admin does everything; health is open.
    assert_eq!(code(c.call(call("increment", Some(&admin))).await), Code::Ok);
    assert_eq!(counter.snapshot().state.count, 1);
    let mut health =
        tonic_health::pb::health_client::HealthClient::new(channel(addr_of(&server)).await);
    health.check(tonic_health::pb::HealthCheckRequest { service: String::new() }).await.unwrap();
    // The same over kinesis-client: the errors are the kinds.
    let url = format!("grpc://{}", addr_of(&server));
    let anonymous = kinesis_client::Client::new(&url).unwrap();
    let err = anonymous
        .dyn_remote("/root/counter")
        .call("total", serde_json::json!({}))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), kinesis::ErrorKind::Unauthenticated, "{err}");
    let reading = kinesis_client::Client::builder(&url).token(reader.as_str()).build().unwrap();
    let err = reading
        .dyn_remote("/root/counter")
        .call("increment", serde_json::json!({"by": 1}))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), kinesis::ErrorKind::Forbidden, "{err}");
    runtime.shutdown().await;
}

#[tokio::test]
async fn the_trace_context_comes_from_the_traceparent_metadata() {
    let (runtime, _counter) = runtime().await;
    let server = serve(&runtime, loopback(), SecurityConfig::default()).await;
    let mut c = client(addr_of(&server)).await;
    let parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let mut request = tonic::Request::new(pb::TreeRequest {});
    request.metadata_mut().insert("traceparent", parent.parse().unwrap());
    let answer = c.tree(request).await.unwrap();
    let trace_id = answer.metadata().get("trace-id").unwrap().to_str().unwrap();
    assert_eq!(trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
    // Without one, a new trace per call.
    let a = c.tree(pb::TreeRequest {}).await.unwrap();
    let b = c.tree(pb::TreeRequest {}).await.unwrap();
    let id = |r: &tonic::Response<pb::TreeReply>| {
        r.metadata().get("trace-id").unwrap().to_str().unwrap().to_owned()
    };
    assert_ne!(id(&a), id(&b));
    assert_eq!(id(&a).len(), 32);
    runtime.shutdown().await;
}

#[tokio::test]
async fn on_a_unix_socket_mode_0600_removed_on_shutdown_and_a_stale_file_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("grpc.sock");
    // What a killed server leaves: a socket file nobody accepts on.
    drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
    assert!(std::fs::symlink_metadata(&path).unwrap().file_type().is_socket());

    let (runtime, _counter) = runtime().await;
    let server = serve(&runtime, GrpcAddr::Unix(path.clone()), SecurityConfig::default()).await;
    assert_eq!(server.snapshot().state.unix_socket().as_deref(), Some(path.as_path()));
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let client = kinesis_client::Client::new(format!("grpc+unix:{}", path.display())).unwrap();
    let nodes = client.tree().await.unwrap();
    assert!(nodes.iter().any(|n| n.uri == "/root/counter"));
    assert_eq!(
        client
            .dyn_remote("/root/counter")
            .call("increment", serde_json::json!({"by": 2}))
            .await
            .unwrap(),
        serde_json::json!(2)
    );

    // A second server on a live socket is refused, naming the variable.
    let second =
        GrpcServer::new(runtime.root().clone(), GrpcOptions::new(GrpcAddr::Unix(path.clone())));
    let err = runtime.addons().add("grpc2", second).await.unwrap_err();
    assert!(err.to_string().contains("KINESIS_GRPC_ADDR"), "{err}");

    runtime.shutdown().await;
    assert!(!path.exists(), "the socket file is removed on shutdown");
}
