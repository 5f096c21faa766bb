//! HTTP over a Unix domain socket (`unix:/path/to.sock`), which reqwest
//! cannot dial: requests are still built with reqwest (so headers, bodies
//! and the code around them are the same as over TCP), then sent with
//! hyper's HTTP/1.1 client on a fresh connection to the socket, and the
//! answer handed back as a `reqwest::Response`.
//!
//! One connection per request: connecting to a local socket costs about as
//! much as taking one from a pool, and a watch holds its own connection
//! anyway.

use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderValue, HOST};
use hyper_util::rt::TokioIo;
use kinesis::{Error, Result};
use tokio::net::UnixStream;

/// The base URL requests over a socket are built against: the path is
/// what matters, and the server's `Host` check accepts `localhost`.
pub(crate) const BASE: &str = "http://localhost/";

/// The socket of one runtime.
#[derive(Debug)]
pub(crate) struct UnixSocket {
    path: PathBuf,
    connect_timeout: Duration,
}

impl UnixSocket {
    /// The socket at `path`, connected to within `connect_timeout`.
    pub(crate) fn new(path: PathBuf, connect_timeout: Duration) -> UnixSocket {
        UnixSocket { path, connect_timeout }
    }

    /// Sends `request` on a new connection and returns the answer once its
    /// head arrived; its body streams from the connection. The caller bounds
    /// the whole with its deadline.
    pub(crate) async fn send(&self, request: reqwest::Request) -> Result<reqwest::Response> {
        let shown = self.path.display();
        let unreachable = |e: &dyn std::fmt::Display| {
            Error::Unreachable(format!("cannot connect to unix:{shown}: {e}"))
        };
        let stream = tokio::time::timeout(self.connect_timeout, UnixStream::connect(&self.path))
            .await
            .map_err(|_| unreachable(&"the connection timed out"))?
            .map_err(|e| unreachable(&e))?;
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| unreachable(&e))?;
        // Drives the connection until the answer's body is read or dropped.
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "a connection to a Unix socket ended with an error");
            }
        });
        let request = hyper_request(request)?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| Error::Unreachable(format!("unix:{shown}: {e}")))?;
        Ok(reqwest::Response::from(response.map(reqwest::Body::wrap)))
    }
}

/// `request` as hyper sends it on a connection of its own: the URI in
/// origin form (`/root/counter?x`), a `Host` header, the body in full (every
/// body this client sends is a string).
fn hyper_request(request: reqwest::Request) -> Result<hyper::Request<Full<Bytes>>> {
    let uri: hyper::Uri = match request.url().query() {
        Some(query) => format!("{}?{query}", request.url().path()),
        None => request.url().path().to_owned(),
    }
    .parse()
    .map_err(|e| Error::Invalid(format!("`{}` is not a request target: {e}", request.url())))?;
    let body = request.body().and_then(reqwest::Body::as_bytes).unwrap_or_default();
    let mut out = hyper::Request::builder()
        .method(request.method().clone())
        .uri(uri)
        .body(Full::new(Bytes::copy_from_slice(body)))
        .map_err(|e| Error::Invalid(format!("cannot build the request: {e}")))?;
    *out.headers_mut() = request.headers().clone();
    out.headers_mut().entry(HOST).or_insert(HeaderValue::from_static("localhost"));
    Ok(out)
}
