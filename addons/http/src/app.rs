//! The service stack that answers every request.
//!
//! From the outside in: the trace middleware (trace id, span, problem
//! bodies, access log), the body limit of tower-http (413), then
//! [`routes::dispatch`](crate::routes::dispatch) for every path. There is no
//! axum `Router`: every path is resolved against the live tree, so a router
//! would only add a failed route match and a middleware hop per request.
//!
//! The request timeout is not a layer here: a tower timeout arms a timer for
//! every request, and arming one wakes the runtime's timer driver (a syscall
//! and a thread wake-up each time), which cost reads of a component about a
//! third of their throughput. Reads never wait, so
//! [`routes::dispatch`](crate::routes::dispatch) bounds only the requests
//! that do.

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::{Body, Bytes, HttpBody};
use axum::http::Request;
use axum::response::Response;
use axum::BoxError;
use futures::future::{BoxFuture, Map};
use futures::FutureExt;
use kinesis::Container;
use tokio_util::sync::CancellationToken;
use tower::Service;
use tower_http::limit::RequestBodyLimit;

use crate::server::HttpOptions;
use crate::trace::{Limits, Trace};

/// What every request handler shares.
#[derive(Clone)]
pub(crate) struct AppState(Arc<Shared>);

struct Shared {
    root: Container,
    options: HttpOptions,
    shutdown: CancellationToken,
}

impl AppState {
    /// The container whose tree is served.
    pub(crate) fn root(&self) -> &Container {
        &self.0.root
    }

    /// The server's options.
    pub(crate) fn options(&self) -> &HttpOptions {
        &self.0.options
    }

    /// Cancelled when the server stops; ends `_watch` streams.
    pub(crate) fn shutdown(&self) -> &CancellationToken {
        &self.0.shutdown
    }
}

/// The service stack: trace, body limit, dispatch.
pub(crate) type App = Trace<RequestBodyLimit<Dispatch>>;

/// The service serving `root` with `options`.
pub(crate) fn app(root: Container, options: HttpOptions, shutdown: CancellationToken) -> App {
    let limits =
        Limits { body_limit: options.body_limit, request_timeout: options.request_timeout };
    let state = AppState(Arc::new(Shared { root, options, shutdown }));
    Trace::new(RequestBodyLimit::new(Dispatch(state), limits.body_limit), limits)
}

/// Hands every request to [`routes::dispatch`](crate::routes::dispatch).
#[derive(Clone)]
pub(crate) struct Dispatch(AppState);

impl<B> Service<Request<B>> for Dispatch
where
    B: HttpBody<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Map<BoxFuture<'static, Response>, fn(Response) -> Result<Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        crate::routes::dispatch(self.0.clone(), request.map(Body::new)).map(Ok)
    }
}
