//! [`HttpServer`]: the add-on as a kinesis component.
//!
//! * `start` binds the listener (a bad address or a port in use fails the
//!   start, and so the `add`, with [`Error::Config`] naming
//!   `KINESIS_HTTP_ADDR` and the address), records the bound address in the
//!   state and spawns the server as a supervised task of the component.
//! * Each connection is served by hyper's HTTP/1.1 server (over rustls when
//!   [`HttpOptions::tls`] is set):
//!   * a connection must send a complete request header within
//!     [`HttpOptions::header_timeout`] of the server starting to wait for
//!     one, or it is closed. The wait starts when the connection is accepted
//!     (the TLS handshake included) and again after each response, so the
//!     same timeout closes idle keep-alive connections: there is no separate
//!     idle timeout. A request whose header arrived is bounded by
//!     [`HttpOptions::request_timeout`] instead; `_watch` streams by nothing.
//!   * at most [`HttpOptions::max_connections`] connections are served at
//!     once. Past it a new plain-HTTP connection gets a fixed `503` with
//!     `Retry-After: 1` and a problem+json body, and is closed (without
//!     parsing its request, so it costs no more than a write); a new TLS
//!     connection is closed at once, since answering it would mean a
//!     handshake. Every request carries the peer's address as axum's
//!     `ConnectInfo<SocketAddr>`.
//! * `stop` stops accepting connections at once (new connections are
//!   refused), lets requests in flight finish, closes idle keep-alive
//!   connections and ends `_watch` streams, and waits for that at most
//!   [`HttpOptions::drain_timeout`]. Past it the server task is dropped with
//!   the component's run, and the connections still open are closed.
//!
//! The component keeps itself off the REST surface (`exposed()` is false).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use kinesis::{Component, Container, Context, Error, Handle, Result, Runtime};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::{oneshot, Semaphore};
use tokio_util::sync::CancellationToken;

use crate::router::HttpService;
use crate::unix::{Accepted, BoundSocket, Listener, UNIX_PEER};
use crate::{HttpConfig, TlsConfig};

/// How an [`HttpServer`] listens and limits requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpOptions {
    /// Where to listen; port 0 picks a free port (see [`HttpServer::local_addr`]).
    /// Unused when [`unix_socket`](Self::unix_socket) is set.
    pub addr: SocketAddr,
    /// Listen on this Unix domain socket instead of [`addr`](Self::addr)
    /// (`KINESIS_HTTP_ADDR=unix:/path/to.sock`); see [`crate::unix`].
    pub unix_socket: Option<PathBuf>,
    /// Largest request body in bytes; larger ones get 413.
    pub body_limit: usize,
    /// Longest time a request that waits (for its body, or for a component:
    /// writes, method calls, control) may take; then 504. Reads answer from
    /// the latest snapshot at once; `_watch` streams are not limited.
    pub request_timeout: Duration,
    /// Longest time `stop` waits for requests in flight to finish.
    pub drain_timeout: Duration,
    /// How often an idle `_watch` stream gets a keep-alive comment.
    pub keep_alive: Duration,
    /// Longest time a connection may take to send a complete request header
    /// (and a TLS handshake), counted from when the server starts waiting
    /// for it: after the accept and after each response, so it is also the
    /// idle timeout of keep-alive connections. Then the connection is closed
    /// (`KINESIS_HTTP_HEADER_TIMEOUT`).
    pub header_timeout: Duration,
    /// Most connections served at once; past it a new connection gets `503`
    /// with `Retry-After` (plain HTTP) or is closed (TLS)
    /// (`KINESIS_HTTP_MAX_CONNECTIONS`).
    pub max_connections: usize,
    /// Most bytes of events a `_watch` stream holds for a client that reads
    /// slower than its component changes; past it the client gets `lagged`
    /// and a fresh `snapshot` (`KINESIS_HTTP_WATCH_BUFFER`). One event larger
    /// than this is still held, alone.
    pub watch_buffer: usize,
    /// Serve HTTPS with this certificate and key; `None` serves plain HTTP
    /// (`KINESIS_HTTP_TLS_CERT`, `KINESIS_HTTP_TLS_KEY`).
    pub tls: Option<TlsConfig>,
    /// Authentication and the edge's rules; the default authenticates
    /// nobody (every request may do everything), fit for loopback only.
    pub security: crate::security::SecurityConfig,
}

impl Default for HttpOptions {
    /// `127.0.0.1:8080`, 1 MiB bodies, 30 s request timeout, 10 s drain,
    /// 15 s keep-alive comments, 10 s header timeout, 10,000 connections,
    /// 1 MiB per watch, plain HTTP.
    fn default() -> Self {
        HttpOptions::from_config(&HttpConfig::default())
    }
}

impl HttpOptions {
    /// The defaults with the settings of `config`: address
    /// (`KINESIS_HTTP_ADDR`), body limit (`KINESIS_HTTP_BODY_LIMIT`), header
    /// timeout, connection cap, watch buffer and TLS.
    ///
    /// ```
    /// let config = kinesis_http::HttpConfig::default();
    /// let options = kinesis_http::HttpOptions::from_config(&config);
    /// assert_eq!(options.addr, config.addr);
    /// assert_eq!(options.body_limit, 1024 * 1024);
    /// assert_eq!(options.max_connections, 10_000);
    /// assert!(options.tls.is_none());
    /// ```
    pub fn from_config(config: &HttpConfig) -> Self {
        let HttpConfig {
            addr,
            unix_socket,
            body_limit,
            header_timeout,
            max_connections,
            watch_buffer,
            tls,
            security,
        } = config.clone();
        HttpOptions {
            addr,
            unix_socket,
            body_limit,
            request_timeout: Duration::from_secs(30),
            drain_timeout: Duration::from_secs(10),
            keep_alive: Duration::from_secs(15),
            header_timeout,
            max_connections,
            watch_buffer,
            tls,
            security,
        }
    }
}

/// The HTTP add-on: serves every exposed component of a container (usually
/// the runtime's root) as REST resources. See the [crate docs](crate) for
/// the routes.
///
/// Its state is the address it listens on (`{"addr": "127.0.0.1:8080"}`,
/// empty until started). Clones share the running server, so
/// `handle.snapshot().state.local_addr()` works on any snapshot.
#[derive(Clone, Default, Serialize, Deserialize)]
pub struct HttpServer {
    addr: String,
    #[serde(skip)]
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    root: Container,
    options: HttpOptions,
    running: Mutex<Option<Running>>,
}

/// One run of the server, from `start` to `stop`.
struct Running {
    bound: Bound,
    shutdown: CancellationToken,
    done: oneshot::Receiver<()>,
}

impl std::fmt::Debug for HttpServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpServer")
            .field("addr", &self.addr)
            .field("root", &self.inner.root.uri())
            .field("options", &self.inner.options)
            .finish()
    }
}

impl HttpServer {
    /// A server for the components under `root`, not started yet: add it to
    /// a container (the runtime's add-ons) to start it.
    pub fn new(root: Container, options: HttpOptions) -> Self {
        HttpServer {
            addr: String::new(),
            inner: Arc::new(Inner { root, options, running: Mutex::new(None) }),
        }
    }

    /// The address the server listens on while it runs (with the real port
    /// when the options asked for port 0); `None` when stopped or listening
    /// on a Unix socket (see [`unix_socket`](Self::unix_socket)).
    pub fn local_addr(&self) -> Option<SocketAddr> {
        match self.running().as_ref().map(|r| &r.bound) {
            Some(Bound::Tcp(addr)) => Some(*addr),
            _ => None,
        }
    }

    /// The path of the Unix socket the server listens on while it runs;
    /// `None` when stopped or listening on TCP.
    pub fn unix_socket(&self) -> Option<PathBuf> {
        match self.running().as_ref().map(|r| &r.bound) {
            Some(Bound::Unix(socket)) => Some(socket.path().to_path_buf()),
            _ => None,
        }
    }

    /// The options it was made with.
    pub fn options(&self) -> &HttpOptions {
        &self.inner.options
    }

    fn running(&self) -> std::sync::MutexGuard<'_, Option<Running>> {
        self.inner.running.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Component for HttpServer {
    async fn start(&mut self, ctx: &mut Context<Self>) -> Result<()> {
        let options = self.inner.options.clone();
        let (listener, bound) = match &options.unix_socket {
            Some(path) => listen_unix(path, &options)?,
            None => listen_tcp(&options).await?,
        };
        let shutdown = ctx.cancellation_token().child_token();
        let app = crate::layers::standard(crate::router::surface(
            self.inner.root.clone(),
            &options,
            shutdown.clone(),
        ));
        let (done_tx, done) = oneshot::channel();
        let accept = Accept::new(listener, app, &options, shutdown.clone());
        ctx.spawn(async move {
            accept.run().await;
            let _ = done_tx.send(());
            Ok(())
        });
        self.addr = bound.to_string();
        let scheme = if options.tls.is_some() { "https" } else { "http" };
        tracing::info!(addr = %self.addr, scheme, root = self.inner.root.uri(), "HTTP server listening");
        *self.running() = Some(Running { bound, shutdown, done });
        Ok(())
    }

    async fn stop(&mut self, _ctx: &mut Context<Self>) -> Result<()> {
        let running = self.running().take();
        let Some(running) = running else { return Ok(()) };
        running.shutdown.cancel();
        let drain = self.inner.options.drain_timeout;
        let addr = running.bound.to_string();
        match tokio::time::timeout(drain, running.done).await {
            Ok(_) => tracing::info!(%addr, "HTTP server stopped"),
            Err(_) => tracing::warn!(
                %addr,
                ?drain,
                "requests still in flight after the drain timeout; dropping them"
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

/// Where one run of the server listens.
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

/// Binds `options.unix_socket`: a Unix socket is local, so no posture check;
/// TLS on it is refused.
fn listen_unix(path: &Path, options: &HttpOptions) -> Result<(Listener, Bound)> {
    if options.tls.is_some() {
        return Err(Error::Config(format!(
            "KINESIS_HTTP_ADDR=unix:{}: TLS is not served on a Unix socket; unset KINESIS_HTTP_TLS_CERT and KINESIS_HTTP_TLS_KEY or listen on IP:PORT",
            path.display()
        )));
    }
    let (listener, socket) = crate::unix::bind(path, "KINESIS_HTTP_ADDR")?;
    Ok((Listener::Unix(listener), Bound::Unix(socket)))
}

/// Binds `options.addr` after the posture check.
async fn listen_tcp(options: &HttpOptions) -> Result<(Listener, Bound)> {
    {
        let addr = options.addr;
        let cannot = |e: std::io::Error| {
            Error::Config(format!("KINESIS_HTTP_ADDR={addr}: cannot listen on {addr}: {e}"))
        };
        options.security.check_posture(addr)?;
        if !addr.ip().is_loopback() {
            if !options.security.authenticates() {
                tracing::warn!(%addr, "serving a non-loopback address WITHOUT AUTHENTICATION (KINESIS_HTTP_ALLOW_ANONYMOUS=true): anyone who reaches it can change or stop every component");
            } else if options.tls.is_none() {
                tracing::warn!(%addr, "serving a non-loopback address over plain HTTP: bearer tokens cross the network in clear text; set KINESIS_HTTP_TLS_CERT and KINESIS_HTTP_TLS_KEY or put a TLS proxy in front");
            }
        }
        let listener = TcpListener::bind(addr).await.map_err(cannot)?;
        let local_addr = listener.local_addr().map_err(cannot)?;
        Ok((Listener::Tcp(listener), Bound::Tcp(local_addr)))
    }
}

/// Starts the HTTP add-on for `runtime`: an [`HttpServer`] named `http` in
/// the add-ons container (`/addons/http`, stopped before the application's
/// components), serving the root container with the settings of `config`
/// (address, body limit, header timeout, connection cap, watch buffer, TLS;
/// see [`HttpOptions::from_config`]) and the other [`HttpOptions`] at their
/// defaults. For other options add an [`HttpServer`] yourself.
///
/// Fails with [`Error::Config`] when the address cannot be listened on.
///
/// ```no_run
/// # async fn run() -> kinesis::Result<()> {
/// let runtime = kinesis::Runtime::builder(kinesis::Config::from_env()?).start().await?;
/// let http = kinesis_http::serve(&runtime, &kinesis_http::HttpConfig::from_env()?).await?;
/// println!("listening on {:?}", http.snapshot().state.local_addr());
/// runtime.run_until_signal().await?;
/// # Ok(()) }
/// ```
pub async fn serve(runtime: &Runtime, config: &HttpConfig) -> Result<Handle<HttpServer>> {
    let options = HttpOptions::from_config(config);
    runtime.addons().add("http", HttpServer::new(runtime.root().clone(), options)).await
}

/// What a connection past [`HttpOptions::max_connections`] is told before it
/// is closed: written as it is, without reading the request.
const AT_CAPACITY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\n\
content-type: application/problem+json\r\n\
retry-after: 1\r\n\
connection: close\r\n\
content-length: 161\r\n\
\r\n\
{\"type\":\"urn:kinesis:problem:at-capacity\",\"title\":\"Service Unavailable\",\"status\":503,\"detail\":\"the server is serving as many connections as it may; retry later\"}";

/// How many connections past the cap are answered at once; more are closed
/// without an answer.
const REFUSALS_AT_ONCE: usize = 64;
/// How long a refused connection may take to take its answer.
const REFUSAL_TIME: Duration = Duration::from_secs(1);

/// The accept loop of one run of the server and what its connections share.
struct Accept<A> {
    listener: Listener,
    /// The router's routes and layers inside the standard layers.
    app: A,
    http: hyper::server::conn::http1::Builder,
    tls: Option<tokio_rustls::TlsAcceptor>,
    header_timeout: Duration,
    /// One permit per connection served.
    permits: Arc<Semaphore>,
    /// One permit per refused connection being answered.
    refusals: Arc<Semaphore>,
    /// Cancelled when `stop` begins: stop accepting, drain.
    shutdown: CancellationToken,
}

impl<A: HttpService> Accept<A> {
    fn new(
        listener: Listener,
        app: A,
        options: &HttpOptions,
        shutdown: CancellationToken,
    ) -> Accept<A> {
        let mut http = hyper::server::conn::http1::Builder::new();
        http.timer(TokioTimer::new()).header_read_timeout(options.header_timeout).keep_alive(true);
        Accept {
            listener,
            app,
            http,
            tls: options.tls.as_ref().map(|t| tokio_rustls::TlsAcceptor::from(t.server_config())),
            header_timeout: options.header_timeout,
            permits: Arc::new(Semaphore::new(options.max_connections.max(1))),
            refusals: Arc::new(Semaphore::new(REFUSALS_AT_ONCE)),
            shutdown,
        }
    }

    /// Accepts until `shutdown`, then drains the connections. Dropping this
    /// future (past the drain timeout) closes every connection still open.
    async fn run(self) {
        let graceful = GracefulShutdown::new();
        // Cancelled when this future ends or is dropped: connections still
        // open then (past the drain timeout) are closed.
        let kill = CancellationToken::new();
        let _kill_on_drop = kill.clone().drop_guard();
        let local_addr = self.listener.describe();
        loop {
            let accepted = tokio::select! {
                biased;
                () = self.shutdown.cancelled() => break,
                accepted = self.listener.accept() => accepted,
            };
            let accepted = match accepted {
                Ok(accepted) => accepted,
                Err(e) if is_connection_error(&e) => continue,
                Err(e) => {
                    // Out of file descriptors, most likely: wait for some to
                    // be closed rather than spin.
                    tracing::error!(error = %e, addr = %local_addr, "accepting a connection failed");
                    tokio::select! {
                        () = self.shutdown.cancelled() => break,
                        () = tokio::time::sleep(Duration::from_secs(1)) => continue,
                    }
                }
            };
            match accepted {
                Accepted::Tcp(stream, peer) => {
                    let _ = stream.set_nodelay(true);
                    self.connection(stream, peer, &graceful, &kill);
                }
                Accepted::Unix(stream) => self.connection(stream, UNIX_PEER, &graceful, &kill),
            }
        }
        drop(self.listener);
        graceful.shutdown().await;
    }

    /// Serves one accepted connection on its own task (or refuses it past
    /// the cap).
    fn connection<S>(
        &self,
        stream: S,
        peer: SocketAddr,
        graceful: &GracefulShutdown,
        kill: &CancellationToken,
    ) where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let Ok(permit) = Arc::clone(&self.permits).try_acquire_owned() else {
            self.refuse(stream, peer);
            return;
        };
        let watcher = graceful.watcher();
        let (http, app, tls, kill) =
            (self.http.clone(), self.app.clone(), self.tls.clone(), kill.clone());
        let (header_timeout, shutdown) = (self.header_timeout, self.shutdown.clone());
        tokio::spawn(async move {
            let _permit = permit;
            let served = async {
                match tls {
                    None => serve_connection(&http, watcher, stream, peer, app).await,
                    Some(tls) => {
                        let handshake = tokio::select! {
                            done = tokio::time::timeout(header_timeout, tls.accept(stream)) => done,
                            () = shutdown.cancelled() => return,
                        };
                        match handshake {
                            Ok(Ok(stream)) => {
                                serve_connection(&http, watcher, stream, peer, app).await
                            }
                            Ok(Err(e)) => {
                                tracing::debug!(%peer, error = %e, "TLS handshake failed")
                            }
                            Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                        }
                    }
                }
            };
            tokio::select! {
                () = served => {}
                () = kill.cancelled() => {}
            }
        });
    }

    /// Answers a connection past the cap with [`AT_CAPACITY`] and closes it
    /// (a TLS connection is closed at once).
    fn refuse<S>(&self, mut stream: S, peer: SocketAddr)
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        tracing::debug!(%peer, "connection refused: at the connection limit");
        if self.tls.is_some() {
            return;
        }
        let Ok(permit) = Arc::clone(&self.refusals).try_acquire_owned() else { return };
        tokio::spawn(async move {
            let _permit = permit;
            let _ = tokio::time::timeout(REFUSAL_TIME, async {
                stream.write_all(AT_CAPACITY).await?;
                stream.shutdown().await?;
                // Take what the client sent until it closes, so the close
                // is not a reset that could discard the answer before the
                // client reads it.
                let mut sink = [0u8; 1024];
                while stream.read(&mut sink).await? > 0 {}
                std::io::Result::Ok(())
            })
            .await;
        });
    }
}

/// Serves one connection with `app` until it closes, closing it gracefully
/// when the server stops.
async fn serve_connection<S>(
    http: &hyper::server::conn::http1::Builder,
    watcher: hyper_util::server::graceful::Watcher,
    stream: S,
    peer: SocketAddr,
    app: impl HttpService,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
        let mut request = request.map(axum::body::Body::new);
        request.extensions_mut().insert(ConnectInfo(peer));
        tower::ServiceExt::oneshot(app.clone(), request)
    });
    let connection = http.serve_connection(TokioIo::new(stream), service);
    if let Err(e) = watcher.watch(connection).await {
        tracing::debug!(%peer, error = %e, "connection ended with an error");
    }
}

/// Errors of one connection (the client went away) rather than of the listener.
fn is_connection_error(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::ConnectionRefused
            | std::io::ErrorKind::ConnectionAborted
            | std::io::ErrorKind::ConnectionReset
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_refusal_is_a_well_formed_response() {
        let text = std::str::from_utf8(AT_CAPACITY).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 503 "));
        assert!(head.contains(&format!("content-length: {}", body.len())), "{head}");
        let body: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(body["status"], 503);
    }
}
