//! gRPC add-on of kinesis: the components over gRPC, beside your own tonic
//! services.
//!
//! [`serve`] adds a [`GrpcServer`] to the runtime's add-ons when
//! `KINESIS_GRPC_ADDR` names an address ([`GrpcConfig`], [`VARIABLES`]). It
//! serves, on one HTTP/2 listener (TCP, or a Unix socket with
//! `unix:/path/to.sock`, bound as the HTTP add-on binds one: mode 0600,
//! removed on shutdown, a stale file replaced, see [`kinesis_http::unix`]):
//!
//! * the generic service `kinesis.v1.Kinesis`, described by
//!   `proto/kinesis/v1/kinesis.proto` ([`kinesis_proto`]): `Tree`, `Get`,
//!   `Replace` and `Patch` with ETags, `Call` (a method by name, JSON
//!   arguments), `Batch`, `Control`, and `Watch`, a server stream of
//!   changes that resumes from a version;
//! * the standard health service `grpc.health.v1.Health`, following the
//!   runtime's readiness ([`health`]);
//! * server reflection (`grpc.reflection.v1` and `v1alpha`), which lists
//!   these services and describes their messages;
//! * the tonic services the application adds with
//!   [`GrpcServer::add_service`]: they start and stop with the add-on, which
//!   drains calls in flight and stops before `/root`.
//!
//! # Errors
//!
//! Errors are gRPC statuses mapped from the error kinds in one table
//! ([`kinesis_proto::status::code_of`]): `NOT_FOUND`, `FAILED_PRECONDITION` for a conflict
//! (the current ETag in the `kinesis-current-etag` trailer),
//! `INVALID_ARGUMENT`, `UNAVAILABLE`, `UNAUTHENTICATED`,
//! `PERMISSION_DENIED`, and so on. The kind's name rides in
//! `kinesis-error-kind`, so `kinesis-client` rebuilds the exact
//! [`kinesis::Error`].
//!
//! # The edge
//!
//! Every call but the health service's authenticates with the HTTP add-on's
//! tokens and grants (`authorization: Bearer <token>` metadata; the
//! `KINESIS_AUTH_*` variables), and runs in the W3C trace context of its
//! `traceparent` metadata; see [`edge`](crate::edge).
//!
//! # Wiring
//!
//! ```no_run
//! # async fn run() -> kinesis::Result<()> {
//! let runtime = kinesis::Runtime::builder(kinesis::Config::from_env()?).start().await?;
//! kinesis_grpc::serve(&runtime, &kinesis_grpc::GrpcConfig::from_env()?).await?;
//! let report = runtime.run_until_signal().await?; // stops the server first, draining calls
//! std::process::exit(report.exit_code());
//! # }
//! ```

mod config;
pub mod edge;
pub mod health;
mod server;
mod service;

pub use config::{GrpcAddr, GrpcConfig, VARIABLES};
/// Tokens, grants and the caller's [`Identity`](security::Identity): the
/// HTTP add-on's, shared (your services read the identity from a call's
/// extensions).
pub use kinesis_http::security;
pub use kinesis_proto::status;
pub use server::{serve, GrpcOptions, GrpcServer};
