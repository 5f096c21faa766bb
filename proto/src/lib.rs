//! The kinesis gRPC API, generated from `proto/kinesis/v1/kinesis.proto`
//! (the language-independent description of it; read it for the messages,
//! the status codes and the metadata).
//!
//! The `.proto` file is compiled at build time by
//! [protox](https://docs.rs/protox), a protobuf compiler written in Rust,
//! so building needs `cargo` alone, no `protoc`. The messages are prost
//! types; [`kinesis_client`] and [`kinesis_server`] are tonic's generated
//! client and server. The server is the `kinesis-grpc` add-on's; the client
//! is what `kinesis-client` dials `grpc://` URLs with. [`status`] maps
//! [`kinesis::Error`] to gRPC statuses and back, for both.

pub mod status;

/// The messages and services of package `kinesis.v1`.
#[allow(missing_docs, unreachable_pub, clippy::all)]
pub mod v1 {
    tonic::include_proto!("kinesis.v1");
}

pub use v1::{kinesis_client, kinesis_server};

/// The encoded `FileDescriptorSet` of `kinesis.proto`, for server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/kinesis_descriptor.bin"));

/// The full name of the service, as reflection and health checks name it.
pub const SERVICE_NAME: &str = "kinesis.v1.Kinesis";
