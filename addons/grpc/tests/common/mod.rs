//! What the gRPC tests share: a counter component, a runtime with the gRPC
//! add-on on a free loopback port, and a tonic client of the generic
//! service.

#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use kinesis::{Component, Config, Handle, Result, Runtime};
use kinesis_grpc::{GrpcAddr, GrpcOptions, GrpcServer};
use kinesis_http::security::SecurityConfig;
use kinesis_proto::kinesis_client::KinesisClient;
use serde::{Deserialize, Serialize};
use tonic::transport::Channel;

/// A counter.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Counter {
    pub count: u64,
}

impl Component for Counter {}

#[kinesis::handlers]
impl Counter {
    /// Adds `by`; zero is refused.
    pub fn increment(&mut self, by: u64) -> Result<u64> {
        if by == 0 {
            return Err(kinesis::Error::invalid("increment by at least 1"));
        }
        self.count += by;
        Ok(self.count)
    }

    /// The count.
    pub fn total(&self) -> u64 {
        self.count
    }
}

/// A runtime with `/root/counter`.
pub async fn runtime() -> (Runtime, Handle<Counter>) {
    let runtime = Runtime::builder(Config::default()).start().await.expect("runtime starts");
    let counter = runtime.root().add("counter", Counter::default()).await.expect("counter starts");
    (runtime, counter)
}

/// Loopback, port 0.
pub fn loopback() -> GrpcAddr {
    GrpcAddr::Tcp(SocketAddr::from(([127, 0, 0, 1], 0)))
}

/// Starts a gRPC add-on `grpc` on `addr` with `security`.
pub async fn serve(
    runtime: &Runtime,
    addr: GrpcAddr,
    security: SecurityConfig,
) -> Handle<GrpcServer> {
    let options = GrpcOptions { security, ..GrpcOptions::new(addr) };
    runtime
        .addons()
        .add("grpc", GrpcServer::new(runtime.root().clone(), options))
        .await
        .expect("gRPC server starts")
}

/// The address a started server listens on.
pub fn addr_of(server: &Handle<GrpcServer>) -> SocketAddr {
    server.snapshot().state.local_addr().expect("listening on TCP")
}

/// A channel to `addr`.
pub async fn channel(addr: SocketAddr) -> Channel {
    tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .expect("connects")
}

/// A client of the generic service at `addr`.
pub async fn client(addr: SocketAddr) -> KinesisClient<Channel> {
    KinesisClient::new(channel(addr).await)
}

/// Waits until `check` holds, at most 10 s.
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(10);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
