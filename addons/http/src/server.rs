//! [`HttpServer`]: the add-on as a kinesis component.
//!
//! * `start` binds the listener (a bad address or a port in use fails the
//!   start, and so the `add`, with [`Error::Config`] naming
//!   `KINESIS_HTTP_ADDR` and the address), records the bound address in the
//!   state and spawns the server as a supervised task of the component.
//! * `stop` stops accepting connections at once (new connections are
//!   refused), lets requests in flight finish, closes idle keep-alive
//!   connections and ends `_watch` streams, and waits for that at most
//!   [`HttpOptions::drain_timeout`]. Past it the server task is dropped with
//!   the component's run.
//!
//! The component keeps itself off the REST surface (`exposed()` is false).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kinesis::{Component, Container, Context, Error, Handle, Result, Runtime};
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use crate::HttpConfig;

/// How an [`HttpServer`] listens and limits requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpOptions {
    /// Where to listen; port 0 picks a free port (see [`HttpServer::local_addr`]).
    pub addr: SocketAddr,
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
    /// Authentication and the edge's rules; the default authenticates
    /// nobody (every request may do everything), fit for loopback only.
    pub security: crate::security::SecurityConfig,
}

impl Default for HttpOptions {
    /// `127.0.0.1:8080`, 1 MiB, 30 s request timeout, 10 s drain, 15 s keep-alive.
    fn default() -> Self {
        let HttpConfig { addr, body_limit, security } = HttpConfig::default();
        HttpOptions {
            addr,
            body_limit,
            request_timeout: Duration::from_secs(30),
            drain_timeout: Duration::from_secs(10),
            keep_alive: Duration::from_secs(15),
            security,
        }
    }
}

impl HttpOptions {
    /// The defaults with the address (`KINESIS_HTTP_ADDR`) and body limit
    /// (`KINESIS_HTTP_BODY_LIMIT`) of `config`.
    ///
    /// ```
    /// let config = kinesis_http::HttpConfig::default();
    /// let options = kinesis_http::HttpOptions::from_config(&config);
    /// assert_eq!(options.addr, config.addr);
    /// assert_eq!(options.body_limit, 1024 * 1024);
    /// ```
    pub fn from_config(config: &HttpConfig) -> Self {
        HttpOptions {
            addr: config.addr,
            body_limit: config.body_limit,
            security: config.security.clone(),
            ..HttpOptions::default()
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
    local_addr: SocketAddr,
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
    /// when the options asked for port 0).
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.running().as_ref().map(|r| r.local_addr)
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
        let addr = options.addr;
        let cannot = |e: std::io::Error| {
            Error::Config(format!("KINESIS_HTTP_ADDR={addr}: cannot listen on {addr}: {e}"))
        };
        options.security.check_posture(addr)?;
        if !addr.ip().is_loopback() {
            if !options.security.authenticates() {
                tracing::warn!(%addr, "serving a non-loopback address WITHOUT AUTHENTICATION (KINESIS_HTTP_ALLOW_ANONYMOUS=true): anyone who reaches it can change or stop every component");
            } else {
                tracing::warn!(%addr, "serving a non-loopback address over plain HTTP: bearer tokens cross the network in clear text; set KINESIS_HTTP_TLS_CERT and KINESIS_HTTP_TLS_KEY or put a TLS proxy in front");
            }
        }
        let listener = tokio::net::TcpListener::bind(addr).await.map_err(cannot)?;
        let local_addr = listener.local_addr().map_err(cannot)?;
        let shutdown = ctx.cancellation_token().child_token();
        let app = crate::layers(crate::router_with_shutdown(
            self.inner.root.clone(),
            &options,
            shutdown.clone(),
        ));
        let (done_tx, done) = oneshot::channel();
        let signal = shutdown.clone().cancelled_owned();
        ctx.spawn(async move {
            let app = app.into_make_service_with_connect_info::<SocketAddr>();
            let served = axum::serve(listener, app).with_graceful_shutdown(signal).await;
            let _ = done_tx.send(());
            served.map_err(|e| Error::Handler(format!("HTTP server on {local_addr} failed: {e}")))
        });
        *self.running() = Some(Running { local_addr, shutdown, done });
        self.addr = local_addr.to_string();
        tracing::info!(addr = %local_addr, root = self.inner.root.uri(), "HTTP server listening");
        Ok(())
    }

    async fn stop(&mut self, _ctx: &mut Context<Self>) -> Result<()> {
        let running = self.running().take();
        let Some(running) = running else { return Ok(()) };
        running.shutdown.cancel();
        let drain = self.inner.options.drain_timeout;
        match tokio::time::timeout(drain, running.done).await {
            Ok(_) => tracing::info!(addr = %running.local_addr, "HTTP server stopped"),
            Err(_) => tracing::warn!(
                addr = %running.local_addr,
                ?drain,
                "requests still in flight after the drain timeout; dropping them"
            ),
        }
        Ok(())
    }

    fn exposed(&self) -> bool {
        false
    }
}

/// Starts the HTTP add-on for `runtime`: an [`HttpServer`] named `http` in
/// the add-ons container (`/addons/http`, stopped before the application's
/// components), serving the root container on `config.addr`
/// (`KINESIS_HTTP_ADDR`) with the body limit `config.body_limit`
/// (`KINESIS_HTTP_BODY_LIMIT`) and the other [`HttpOptions`] at their
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
