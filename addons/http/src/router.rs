//! [`router`]: the whole REST surface as an axum [`Router`].
//!
//! | route | handlers |
//! | --- | --- |
//! | `/` | `GET`/`HEAD` the tree; anything else 405 |
//! | `/_kinesis/openapi.json` | `GET`/`HEAD`: the OpenAPI 3.1 document of the live tree ([`openapi::document`](crate::openapi::document)) |
//! | `/_kinesis/…` | health, readiness, metrics, diagnostics, tasks ([`ops`](crate::ops)) |
//! | any other path | `GET`/`HEAD`, `PUT`, `PATCH`, `POST` (see [the route table](crate#routes)); anything else 405 with the path's `Allow` |
//!
//! A component path is resolved against the live tree on every request, so
//! a component's routes come and go with it; that is why the router's
//! fallback serves them all (a fallback rather than a `/{*path}` route,
//! which would decode and store the path as a parameter on every request).
//! Around the routes, from the outside in:
//!
//! 1. the problem layer: every error answer becomes `application/problem+json`
//!    with the request's trace id;
//! 2. tower-http's `RequestBodyLimitLayer`: the body limit, enforced once;
//! 3. tower-http's `Timeout` (504) on `PUT`, `PATCH` and `POST` of
//!    component paths, the requests that wait for a component.
//!
//! The router resolves paths as it sees them, so it may be nested under any
//! prefix (`Router::new().nest("/api", kinesis_http::router(…))`): component
//! URIs stay `/root/…` below that prefix. The routes and layers sit behind
//! the returned router's fallback (see [`surface`]), so merging it into an app
//! (`app.merge(kinesis_http::router(…))`) gives kinesis every path the app
//! does not route; axum refuses to merge two routers that both have a
//! fallback, so an app with a fallback of its own nests kinesis instead.

use std::convert::Infallible;
use std::task::Poll;

use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use kinesis::Container;
use tokio_util::sync::CancellationToken;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::map_response_body::MapResponseBodyLayer;
use tower_http::timeout::Timeout;

use crate::handlers::{self, Api};
use crate::problem::{Limits, ProblemLayer};
use crate::HttpOptions;

/// The REST surface of `root` (and every exposed component below it) as an
/// axum [`Router`], to serve as it is or to nest or merge into an app of
/// your own, under your own layers. [`layers`](crate::layers) adds the
/// standard ones (trace ids, tracing, compression); [`serve`](crate::serve)
/// serves both.
///
/// `options` gives the body limit, the request timeout and the keep-alive
/// interval of `_watch` streams (its address is not used here). Watches end
/// when their component is torn down; see [`router_with_shutdown`] to end
/// them when your server stops.
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use axum::routing::get;
///
/// let root = kinesis::Container::root().await.unwrap();
/// let app: axum::Router = axum::Router::new()
///     .route("/hello", get(|| async { "hello" }))
///     .nest("/api", kinesis_http::router(root.clone(), &kinesis_http::HttpOptions::default()));
/// # root.shutdown().await.unwrap();
/// # });
/// ```
pub fn router(root: Container, options: &HttpOptions) -> Router {
    router_with_shutdown(root, options, CancellationToken::new())
}

/// [`router`], whose `_watch` streams end when `shutdown` is cancelled (so a
/// graceful shutdown of the server does not wait for them).
pub fn router_with_shutdown(
    root: Container,
    options: &HttpOptions,
    shutdown: CancellationToken,
) -> Router {
    Router::new().fallback_service(surface(root, options, shutdown))
}

/// A service that answers every HTTP request with an axum response: what
/// the server serves, and what a router falls back to.
pub(crate) trait HttpService:
    tower::Service<Request, Response = Response, Error = Infallible, Future: Send + 'static>
    + Clone
    + Send
    + Sync
    + 'static
{
}

impl<T> HttpService for T where
    T: tower::Service<Request, Response = Response, Error = Infallible, Future: Send + 'static>
        + Clone
        + Send
        + Sync
        + 'static
{
}

/// The routes inside the router's layers (see the module docs), as a
/// service: [`router_with_shutdown`] puts it behind a router's fallback, so
/// that it can still be nested, merged and layered like any other router;
/// the add-on's own server serves it as it is, a router's dispatch less per
/// request.
pub(crate) fn surface(
    root: Container,
    options: &HttpOptions,
    shutdown: CancellationToken,
) -> impl HttpService {
    let ops = crate::ops::routes(root.clone(), shutdown.clone(), options.keep_alive);
    let api = Api::new(
        root,
        options.body_limit,
        options.request_timeout,
        options.keep_alive,
        options.watch_buffer,
        shutdown,
    );
    let limits =
        Limits { body_limit: options.body_limit, request_timeout: options.request_timeout };
    // Component paths are the fallback rather than a `/{*path}` route: the
    // handlers resolve the path themselves, and a wildcard route would
    // percent-decode it and store it as a parameter on every request.
    let components = Components { api: api.clone() };
    let routes = Router::new()
        .route("/", get(handlers::tree_root).fallback(handlers::tree_other))
        .route("/_kinesis/openapi.json", get(handlers::openapi))
        .with_state(api)
        .merge(ops)
        .fallback_service(components);
    // Around the whole router, not `Router::layer` (which wraps every route
    // on its own, so each request cloned every layered endpoint: twice the
    // instructions per request).
    tower::ServiceBuilder::new()
        .layer(crate::ops::metrics::RequestMetricsLayer)
        .layer(ProblemLayer(limits))
        .option_layer(crate::security::cors(&options.security))
        .layer(crate::security::guard(&options.security, options.addr.ip()))
        .layer(MapResponseBodyLayer::new(axum::body::Body::new))
        .layer(RequestBodyLimitLayer::new(options.body_limit))
        .service(routes)
}

/// Every component path: `GET`/`HEAD` read at once; `PUT`, `PATCH` and
/// `POST`, which wait for the component, run under tower-http's `Timeout`
/// (504 past the request timeout); any other method is a 405 with what the
/// path allows.
///
/// A hand-written dispatch rather than an axum `MethodRouter`: the router
/// clones its fallback for every request, and a method router's clone is a
/// boxed clone of every method's endpoint, where this one is a reference
/// count.
#[derive(Clone)]
struct Components {
    api: Api,
}

impl tower::Service<Request> for Components {
    type Response = Response;
    type Error = Infallible;
    type Future = futures::future::BoxFuture<'static, Result<Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut std::task::Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let api = self.api.clone();
        let handler = match *request.method() {
            Method::GET | Method::HEAD => {
                return Box::pin(async move {
                    Ok(handlers::get(State(api), request).await.into_response())
                })
            }
            Method::PUT => Write::Put,
            Method::PATCH => Write::Patch,
            Method::POST => Write::Post,
            _ => {
                return Box::pin(async move {
                    let (method, uri) = (request.method().clone(), request.uri().clone());
                    Ok(handlers::other(State(api), method, uri).await.into_response())
                })
            }
        };
        let timeout = api.request_timeout();
        let write = tower::service_fn(move |request: Request| {
            let api = api.clone();
            async move {
                let answer = match handler {
                    Write::Put => handlers::put(State(api), request).await,
                    Write::Patch => handlers::patch(State(api), request).await,
                    Write::Post => handlers::post(State(api), request).await,
                };
                Ok::<_, Infallible>(answer.into_response())
            }
        });
        let write = Timeout::with_status_code(write, StatusCode::GATEWAY_TIMEOUT, timeout);
        Box::pin(async move {
            let response = tower::ServiceExt::oneshot(write, request).await?;
            Ok(response.map(axum::body::Body::new))
        })
    }
}

/// The methods that write (or call a method) and so wait for a component.
#[derive(Clone, Copy)]
enum Write {
    Put,
    Patch,
    Post,
}
