//! [`GrpcServer`]: the add-on as a kinesis component.
//!
//! * `start` binds the listener (a bad address, a port in use, a live
//!   socket or an open non-loopback address without authentication fail
//!   the start with [`Error::Config`] naming `KINESIS_GRPC_ADDR`), and
//!   serves, on HTTP/2 with tonic: the generic service
//!   (`kinesis.v1.Kinesis`), the standard health service
//!   (`grpc.health.v1.Health`, following readiness, see [`crate::health`]),
//!   server reflection (`grpc.reflection.v1` and `v1alpha`) and the services
//!   you added with [`GrpcServer::add_service`], all behind the edge
//!   (trace context and tokens, see [`crate::edge`](crate#the-edge)).
//! * `stop` stops accepting at once, ends `Watch` streams, lets calls in
//!   flight finish (at most [`GrpcOptions::drain_timeout`]), then removes
//!   the Unix socket file if it listened on one. As an add-on it stops
//!   before `/root`, so the components are there until the last call ends.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kinesis::{Component, Container, Context, Error, Handle, Result, Runtime};
use kinesis_http::security::SecurityConfig;
use kinesis_http::unix::BoundSocket;
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;
use tonic::server::NamedService;
use tonic::service::Routes;

use crate::edge::EdgeLayer;
use crate::{GrpcAddr, GrpcConfig};

/// How a [`GrpcServer`] listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrpcOptions {
    /// Where to listen.
    pub addr: GrpcAddr,
    /// Who may call; the default authenticates nobody (loopback only).
    pub security: SecurityConfig,
    /// Longest time `stop` waits for calls in flight (default 10 s).
    pub drain_timeout: Duration,
}

impl GrpcOptions {
    /// Listen on `addr`, no authentication, a 10 s drain.
    pub fn new(addr: GrpcAddr) -> GrpcOptions {
        GrpcOptions {
            addr,
            security: SecurityConfig::default(),
            drain_timeout: Duration::from_secs(10),
        }
    }
}

/// The gRPC add-on: the generic kinesis service over the components of a
/// container (usually the runtime's root), health, reflection, and your own
/// tonic services. Its state is the address it listens on
/// (`{"addr": "127.0.0.1:50051"}`, empty until started); clones share the
/// running server.
///
/// ```no_run
/// # async fn run(runtime: kinesis::Runtime) -> kinesis::Result<()> {
/// use kinesis_grpc::{GrpcAddr, GrpcOptions, GrpcServer};
/// # let my_service = tonic_health::server::health_reporter().1;
/// let options = GrpcOptions::new(GrpcAddr::parse("127.0.0.1:50051")?);
/// let server = GrpcServer::new(runtime.root().clone(), options)
///     .add_service(my_service); // e.g. `GreeterServer::new(MyGreeter)`
/// runtime.addons().add("grpc", server).await?;
/// # Ok(()) }
/// ```
#[derive(Clone, Default, Serialize, Deserialize)]
pub struct GrpcServer {
    addr: String,
    #[serde(skip)]
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    root: Container,
    options: Option<GrpcOptions>,
    /// The services added by the application.
    routes: Routes,
    /// Their encoded `FileDescriptorSet`s, for reflection.
    descriptors: Vec<&'static [u8]>,
    running: Mutex<Option<Running>>,
}

/// One run of the server, from `start` to `stop`.
struct Running {
    bound: Bound,
    shutdown: CancellationToken,
    done: oneshot::Receiver<()>,
}

/// Where one run listens.
enum Bound {
    Tcp(SocketAddr),
    Unix(BoundSocket),
}

impl std::fmt::Display for Bound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Bound::Tcp(addr) => write!(f, "{addr}"),
            Bound::Unix(socket) => write!(f, "unix:{}", socket.path().display()),
        }
    }
}

impl std::fmt::Debug for GrpcServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GrpcServer")
            .field("addr", &self.addr)
            .field("root", &self.inner.root.uri())
            .field("options", &self.inner.options)
            .finish()
    }
}

impl GrpcServer {
    /// A server for the components under `root`, not started yet: add it to
    /// a container (the runtime's add-ons) to start it.
    pub fn new(root: Container, options: GrpcOptions) -> GrpcServer {
        GrpcServer {
            addr: String::new(),
            inner: Arc::new(Inner { root, options: Some(options), ..Inner::default() }),
        }
    }

    fn inner_mut(&mut self) -> &mut Inner {
        Arc::get_mut(&mut self.inner).unwrap_or_else(|| {
            panic!("add services to a GrpcServer before it is cloned or started")
        })
    }

    /// Serves `service` (a tonic server, `GreeterServer::new(…)`) beside
    /// the generic one, from the next start on, behind the same edge:
    /// callers authenticate as for the generic service, and the handler
    /// finds their `Arc<Identity>` in the request's extensions.
    ///
    /// # Panics
    ///
    /// When called on a server that was cloned or started: add services
    /// right after [`new`](Self::new).
    #[track_caller]
    pub fn add_service<S>(mut self, service: S) -> GrpcServer
    where
        S: tower::Service<
                http::Request<tonic::body::Body>,
                Response = http::Response<tonic::body::Body>,
                Error = std::convert::Infallible,
            > + NamedService
            + Clone
            + Send
            + Sync
            + 'static,
        S::Future: Send + 'static,
    {
        let inner = self.inner_mut();
        inner.routes = std::mem::take(&mut inner.routes).add_service(service);
        self
    }

    /// Lists the services of an encoded `FileDescriptorSet` (what
    /// `tonic-prost-build` writes with `file_descriptor_set_path`) in server
    /// reflection.
    ///
    /// # Panics
    ///
    /// As [`add_service`](Self::add_service).
    #[track_caller]
    pub fn add_file_descriptor_set(mut self, encoded: &'static [u8]) -> GrpcServer {
        self.inner_mut().descriptors.push(encoded);
        self
    }

    /// The TCP address it listens on while it runs (with the real port when
    /// asked for port 0); `None` when stopped or on a Unix socket.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        match self.running().as_ref().map(|r| &r.bound) {
            Some(Bound::Tcp(addr)) => Some(*addr),
            _ => None,
        }
    }

    /// The Unix socket it listens on while it runs.
    pub fn unix_socket(&self) -> Option<PathBuf> {
        match self.running().as_ref().map(|r| &r.bound) {
            Some(Bound::Unix(socket)) => Some(socket.path().to_path_buf()),
            _ => None,
        }
    }

    fn running(&self) -> std::sync::MutexGuard<'_, Option<Running>> {
        self.inner.running.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn options(&self) -> Result<&GrpcOptions> {
        self.inner.options.as_ref().ok_or_else(|| {
            Error::Config("a GrpcServer needs options: make it with GrpcServer::new".into())
        })
    }
}

impl Component for GrpcServer {
    async fn start(&mut self, ctx: &mut Context<Self>) -> Result<()> {
        let options = self.options()?.clone();
        let shutdown = ctx.cancellation_token().child_token();
        let (health_reporter, health) = tonic_health::server::health_reporter();
        let descriptors = &self.inner.descriptors;
        let reflection = || {
            let builder = tonic_reflection::server::Builder::configure()
                .register_encoded_file_descriptor_set(kinesis_proto::FILE_DESCRIPTOR_SET)
                .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET);
            descriptors.iter().fold(builder, |b, set| b.register_encoded_file_descriptor_set(set))
        };
        let reflection_error =
            |e: tonic_reflection::server::Error| Error::Config(format!("server reflection: {e}"));
        let reflection_v1alpha = reflection().build_v1alpha().map_err(reflection_error)?;
        let reflection_v1 = reflection().build_v1().map_err(reflection_error)?;
        let generic = crate::service::Generic::new(self.inner.root.clone(), shutdown.clone());
        let routes = self
            .inner
            .routes
            .clone()
            .add_service(kinesis_proto::kinesis_server::KinesisServer::new(generic))
            .add_service(health)
            .add_service(reflection_v1)
            .add_service(reflection_v1alpha)
            .prepare();
        let edge = EdgeLayer { security: Arc::new(options.security.clone()) };
        let router = tonic::transport::Server::builder().layer(edge).add_routes(routes);
        let (done_tx, done) = oneshot::channel();
        let signal = shutdown.clone().cancelled_owned();
        let bound = match &options.addr {
            GrpcAddr::Tcp(addr) => {
                let listener = listen_tcp(*addr, &options.security).await?;
                let local = listener.local_addr().map_err(|e| {
                    Error::Config(format!("KINESIS_GRPC_ADDR={addr}: cannot listen: {e}"))
                })?;
                let incoming =
                    tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
                ctx.spawn(async move {
                    let served = router.serve_with_incoming_shutdown(incoming, signal).await;
                    let _ = done_tx.send(());
                    served.map_err(|e| Error::Handler(format!("the gRPC server failed: {e}")))
                });
                Bound::Tcp(local)
            }
            GrpcAddr::Unix(path) => {
                let (listener, socket) = kinesis_http::unix::bind(path, "KINESIS_GRPC_ADDR")?;
                let incoming = tokio_stream::wrappers::UnixListenerStream::new(listener);
                ctx.spawn(async move {
                    let served = router.serve_with_incoming_shutdown(incoming, signal).await;
                    let _ = done_tx.send(());
                    served.map_err(|e| Error::Handler(format!("the gRPC server failed: {e}")))
                });
                Bound::Unix(socket)
            }
        };
        ctx.spawn(crate::health::follow(
            self.inner.root.clone(),
            health_reporter,
            shutdown.clone(),
        ));
        self.addr = bound.to_string();
        tracing::info!(addr = %self.addr, root = self.inner.root.uri(), "gRPC server listening");
        *self.running() = Some(Running { bound, shutdown, done });
        Ok(())
    }

    async fn stop(&mut self, _ctx: &mut Context<Self>) -> Result<()> {
        let running = self.running().take();
        let Some(running) = running else { return Ok(()) };
        running.shutdown.cancel();
        let drain = self.options()?.drain_timeout;
        let addr = running.bound.to_string();
        match tokio::time::timeout(drain, running.done).await {
            Ok(_) => tracing::info!(%addr, "gRPC server stopped"),
            Err(_) => tracing::warn!(
                %addr,
                ?drain,
                "gRPC calls still in flight after the drain timeout; dropping them"
            ),
        }
        if let Bound::Unix(socket) = running.bound {
            socket.remove();
        }
        Ok(())
    }

    fn exposed(&self) -> bool {
        false
    }
}

/// Binds `addr` after the posture check: without authentication only a
/// loopback address, unless anonymous access was allowed explicitly.
async fn listen_tcp(
    addr: SocketAddr,
    security: &SecurityConfig,
) -> Result<tokio::net::TcpListener> {
    if !security.authenticates() && !addr.ip().is_loopback() && !security.allow_anonymous {
        return Err(Error::Config(format!(
            "KINESIS_GRPC_ADDR={addr} is not a loopback address and no authentication is configured: anyone who reaches it could change or stop every component. Set KINESIS_AUTH_JWT_SECRET, KINESIS_AUTH_JWT_PUBLIC_KEY or KINESIS_AUTH_TOKENS_FILE, or KINESIS_HTTP_ALLOW_ANONYMOUS=true to serve it open anyway"
        )));
    }
    if !addr.ip().is_loopback() && !security.authenticates() {
        tracing::warn!(%addr, "serving gRPC on a non-loopback address WITHOUT AUTHENTICATION (KINESIS_HTTP_ALLOW_ANONYMOUS=true)");
    }
    tokio::net::TcpListener::bind(addr).await.map_err(|e| {
        Error::Config(format!("KINESIS_GRPC_ADDR={addr}: cannot listen on {addr}: {e}"))
    })
}

/// Starts the gRPC add-on for `runtime` when `config` has an address: a
/// [`GrpcServer`] named `grpc` in the add-ons container (`/addons/grpc`,
/// stopped before the application's components) serving the root
/// container. `None` when `KINESIS_GRPC_ADDR` is off. To serve services
/// of your own, add a [`GrpcServer`] yourself.
///
/// ```no_run
/// # async fn run() -> kinesis::Result<()> {
/// let runtime = kinesis::Runtime::builder(kinesis::Config::from_env()?).start().await?;
/// let grpc = kinesis_grpc::serve(&runtime, &kinesis_grpc::GrpcConfig::from_env()?).await?;
/// runtime.run_until_signal().await?;
/// # Ok(()) }
/// ```
pub async fn serve(runtime: &Runtime, config: &GrpcConfig) -> Result<Option<Handle<GrpcServer>>> {
    let Some(addr) = config.addr.clone() else { return Ok(None) };
    let options = GrpcOptions { security: config.security.clone(), ..GrpcOptions::new(addr) };
    let server = GrpcServer::new(runtime.root().clone(), options);
    runtime.addons().add("grpc", server).await.map(Some)
}
