//! Typed remote handles for kinesis runtimes, over HTTP.
//!
//! A [`Client`] reaches one runtime (its HTTP add-on). It hands out
//! [`Remote<C>`] handles, on which the handle trait that
//! `#[kinesis::handlers]` generates for `C` works as on an in-process
//! [`Handle<C>`](kinesis::Handle), and [`RemoteDyn`] handles for components
//! whose type the caller does not know:
//!
//! ```no_run
//! use kinesis::{Context, Result};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Clone, Default, Serialize, Deserialize)]
//! pub struct Counter { pub count: u64 }
//! impl kinesis::Component for Counter {}
//!
//! #[kinesis::handlers]
//! impl Counter {
//!     pub fn increment(&mut self, by: u64) -> u64 { self.count += by; self.count }
//! }
//!
//! # async fn run() -> Result<()> {
//! let client = kinesis_client::Client::builder("http://127.0.0.1:8080")
//!     .token("kinesis_…")
//!     .build()?;
//! let counter = client.remote::<Counter>("/root/counter");
//! let now = counter.increment(2).await?;             // POST /root/counter/increment
//! let snapshot = counter.snapshot().await?;           // GET, If-None-Match when cached
//! let any = client.dyn_remote("/root/counter");
//! let reply = any.call("increment", serde_json::json!({"by": 1})).await?;
//! # Ok(()) }
//! ```
//!
//! Failures are the same [`kinesis::Error`]s an in-process call gets (see
//! [`kinesis::remote`](kinesis::remote#errors)): a stale `If-Match` is
//! `Conflict` with the current ETag, an unknown component `NotFound`, bad
//! arguments `Invalid`, a failing handler `Handler`. A runtime that cannot
//! be reached is `Unreachable`; a refused token `Unauthenticated` or
//! `Forbidden`.
//!
//! With the `grpc` feature, a `grpc://host:port` URL (or
//! `grpc+unix:/path/to.sock`) reaches the runtime's gRPC add-on
//! (`KINESIS_GRPC_ADDR`) instead: the same handles, the same errors, on one
//! multiplexed HTTP/2 connection. The runtime's own resources
//! ([`Client::runtime_resource`]) are served over HTTP only.
//!
//! A runtime listening on a Unix domain socket is reached with a
//! `unix:/path/to.sock` URL (`Client::builder("unix:/run/kinesis.sock")`):
//! everything works as over TCP, one connection per request.
//!
//! Every request carries the bearer token (if set), a deadline
//! ([`ClientBuilder::timeout`], default 30 s; watches have none once
//! connected) and a W3C `traceparent` (see [`kinesis::remote::trace`]).

mod errors;
#[cfg(feature = "grpc")]
mod grpc;
mod transport;
mod unix;
mod watch;

use std::sync::Arc;
use std::time::Duration;

use kinesis::remote::Transport;
pub use kinesis::remote::{Remote, RemoteChange, RemoteDyn, RemoteNode, WatchEvent, WatchOptions};
use kinesis::{Component, Error, Result};
use reqwest::header::HeaderValue;
use serde_json::Value;

use transport::HttpTransport;

/// The variables [`Client::from_env`] reads.
pub const VARIABLES: &[(&str, &str)] = &[
    (
        "KINESIS_URL",
        "the runtime the client talks to, http(s)://…, unix:/path, or grpc://host:port (default http://127.0.0.1:8080)",
    ),
    ("KINESIS_TOKEN", "the bearer token the client sends (default: none)"),
];

/// Where [`Client::from_env`] goes when `KINESIS_URL` is not set: the HTTP
/// add-on's default address.
pub const DEFAULT_URL: &str = "http://127.0.0.1:8080";

/// A connection to one runtime. Cheap to clone: clones share the HTTP
/// connection pool (or the gRPC connection).
#[derive(Debug, Clone)]
pub struct Client {
    link: Link,
}

/// The transport a [`Client`] was built on, chosen by the URL's scheme.
#[derive(Debug, Clone)]
enum Link {
    Http(Arc<HttpTransport>),
    // gRPC (feature `grpc`): `grpc://host:port`, `grpc+unix:/path`.
    #[cfg(feature = "grpc")]
    Grpc(Arc<grpc::GrpcTransport>),
}

/// Configures a [`Client`].
#[derive(Debug, Clone)]
pub struct ClientBuilder {
    url: String,
    token: Option<String>,
    timeout: Duration,
    connect_timeout: Duration,
}

impl ClientBuilder {
    /// The bearer token to send (a static token or a JWT). It is marked
    /// sensitive, so it does not show in logs of the HTTP stack.
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// How long one request may take, from sending to the whole answer
    /// (default 30 s). A request that runs out fails with
    /// [`Error::Timeout`]; a write that timed out may still have happened.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// How long connecting may take (default 5 s); then
    /// [`Error::Unreachable`].
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// The client. Errors: [`Error::Config`] for a URL that is not `http://`
    /// or `https://`, or a token that cannot be a header.
    pub fn build(self) -> Result<Client> {
        // gRPC (feature `grpc`).
        if self.url.starts_with("grpc://") || self.url.starts_with("grpc+unix:") {
            #[cfg(feature = "grpc")]
            return Ok(Client {
                link: Link::Grpc(Arc::new(grpc::GrpcTransport::new(
                    &self.url,
                    self.token.as_deref(),
                    self.timeout,
                    self.connect_timeout,
                )?)),
            });
            #[cfg(not(feature = "grpc"))]
            return Err(Error::Config(format!(
                "`{}`: gRPC URLs need kinesis-client's `grpc` feature (the kinesis binary's `grpc` feature)",
                self.url
            )));
        }
        let socket = unix_socket_path(&self.url)?;
        let (base, name) = match &socket {
            Some(path) => {
                let base = url::Url::parse(unix::BASE).expect("a valid URL");
                (base, format!("unix:{}", path.display()))
            }
            None => {
                let base = url::Url::parse(&self.url)
                    .map_err(|e| Error::Config(format!("`{}` is not a URL: {e}", self.url)))?;
                if !matches!(base.scheme(), "http" | "https") || base.cannot_be_a_base() {
                    return Err(Error::Config(format!(
                        "`{}` is not an http://, https:// or unix: URL of a kinesis runtime",
                        self.url
                    )));
                }
                let name = base.to_string();
                (base, name)
            }
        };
        let unix = socket.map(|path| Arc::new(unix::UnixSocket::new(path, self.connect_timeout)));
        let authorization = match self.token {
            None => None,
            Some(token) => {
                let mut value = HeaderValue::from_str(&format!("Bearer {}", token.trim()))
                    .map_err(|_| {
                        Error::Config("the token has characters a header cannot carry".into())
                    })?;
                value.set_sensitive(true);
                Some(value)
            }
        };
        let http = reqwest::Client::builder()
            .connect_timeout(self.connect_timeout)
            .tcp_nodelay(true)
            .build()
            .map_err(|e| Error::Config(format!("cannot build the HTTP client: {e}")))?;
        Ok(Client {
            link: Link::Http(Arc::new(HttpTransport {
                base,
                name: name.into(),
                http,
                unix,
                authorization,
                timeout: self.timeout,
            })),
        })
    }
}

/// The socket path of a `unix:/path/to.sock` (or `unix:///path/to.sock`)
/// URL; `None` for other URLs.
fn unix_socket_path(url: &str) -> Result<Option<std::path::PathBuf>> {
    let Some(path) = url.strip_prefix("unix:") else { return Ok(None) };
    let path = path.strip_prefix("//").unwrap_or(path);
    if path.is_empty() || path.contains('\0') {
        return Err(Error::Config(format!(
            "`{url}` is not a Unix socket URL; use unix:/path/to.sock"
        )));
    }
    Ok(Some(std::path::PathBuf::from(path)))
}

impl Client {
    /// A builder for a client of the runtime at `url`: `http://host:port`,
    /// `https://…`, or `unix:/path/to.sock` for a runtime listening on a Unix
    /// domain socket (`KINESIS_HTTP_ADDR=unix:/path/to.sock`); with the
    /// `grpc` feature, `grpc://host:port` or `grpc+unix:/path/to.sock` for
    /// its gRPC add-on (`KINESIS_GRPC_ADDR`).
    pub fn builder(url: impl Into<String>) -> ClientBuilder {
        ClientBuilder {
            url: url.into(),
            token: None,
            timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(5),
        }
    }

    /// A client of the runtime at `url`, with the default settings.
    pub fn new(url: impl Into<String>) -> Result<Client> {
        Client::builder(url).build()
    }

    /// A client configured by `KINESIS_URL` and `KINESIS_TOKEN` (see
    /// [`VARIABLES`]).
    pub fn from_env() -> Result<Client> {
        let url = kinesis::config::env_var("KINESIS_URL").transpose()?;
        let token = kinesis::config::env_var("KINESIS_TOKEN").transpose()?;
        let mut builder = Client::builder(url.unwrap_or_else(|| DEFAULT_URL.to_owned()));
        if let Some(token) = token.filter(|t| !t.trim().is_empty()) {
            builder = builder.token(token);
        }
        builder.build()
    }

    /// The base URL of the runtime, `unix:/path/to.sock`, or the gRPC URL.
    pub fn url(&self) -> &str {
        match &self.link {
            Link::Http(http) => &http.name,
            #[cfg(feature = "grpc")]
            Link::Grpc(grpc) => &grpc.name,
        }
    }

    /// The component of type `C` at `uri` (`/root/counter`). Nothing is sent
    /// until it is used.
    pub fn remote<C: Component>(&self, uri: &str) -> Remote<C> {
        Remote::new(self.transport(), uri)
    }

    /// The component at `uri`, by name.
    pub fn dyn_remote(&self, uri: &str) -> RemoteDyn {
        RemoteDyn::new(self.transport(), uri)
    }

    /// Every component the runtime exposes, depth first.
    pub async fn tree(&self) -> Result<Vec<RemoteNode>> {
        self.transport().tree().await
    }

    /// `GET` of one of the runtime's own resources under `/_kinesis/`
    /// (`tasks`, `health`, `diagnostics`), as JSON.
    /// Over gRPC these are not served: [`Error::Invalid`].
    pub async fn runtime_resource(&self, path: &str) -> Result<Value> {
        match &self.link {
            Link::Http(http) => http.runtime_resource(path).await,
            #[cfg(feature = "grpc")]
            Link::Grpc(grpc) => Err(Error::Invalid(format!(
                "/_kinesis/{path} is served over HTTP only, not by {}; use the runtime's http:// URL",
                grpc.name
            ))),
        }
    }

    /// The transport, for handles built by hand.
    pub fn transport(&self) -> Arc<dyn Transport> {
        match &self.link {
            Link::Http(http) => Arc::clone(http) as Arc<dyn Transport>,
            #[cfg(feature = "grpc")]
            Link::Grpc(grpc) => Arc::clone(grpc) as Arc<dyn Transport>,
        }
    }
}
