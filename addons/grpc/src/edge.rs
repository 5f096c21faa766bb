//! The edge of the gRPC server: what runs before any service sees a call.
//!
//! 1. The W3C trace context: the `traceparent` metadata of the call (else a
//!    new trace). The call runs inside a `grpc.request` span that records
//!    its trace id (so the handler's log lines carry it, as over HTTP) and
//!    inside [`kinesis::remote::trace::scope`] (so remote calls it makes
//!    continue the trace); the answer carries the trace id in `trace-id`.
//! 2. Authentication, as the HTTP add-on does it
//!    ([`SecurityConfig::authenticate`]): the `authorization` metadata
//!    (`Bearer <token>`, a static API token or a JWT) becomes an
//!    [`Identity`] in the request's extensions, or the call is refused with
//!    `UNAUTHENTICATED`. The health service (`grpc.health.v1.Health`) is
//!    open, as `/_kinesis/health` is. Grants are checked by each service
//!    once it knows the component (the generic service does; your own
//!    services read the `Arc<Identity>` from
//!    [`Request::extensions`](tonic::Request::extensions)).

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::future::BoxFuture;
use http::{HeaderValue, Request, Response};
use kinesis::remote::trace::{self, TraceParent};
use kinesis_http::security::{Identity, SecurityConfig};
use tonic::body::Body;
use tracing::Instrument;

use kinesis_proto::status::status_of;

/// The path prefix of the open health service.
const HEALTH: &str = "/grpc.health.v1.Health/";

/// The layer of [`Edge`].
#[derive(Clone)]
pub(crate) struct EdgeLayer {
    pub(crate) security: Arc<SecurityConfig>,
}

impl<S> tower::Layer<S> for EdgeLayer {
    type Service = Edge<S>;

    fn layer(&self, inner: S) -> Edge<S> {
        Edge { inner, security: Arc::clone(&self.security) }
    }
}

/// Traces and authenticates every call, then hands it to `inner`.
#[derive(Clone)]
pub(crate) struct Edge<S> {
    inner: S,
    security: Arc<SecurityConfig>,
}

impl<S> tower::Service<Request<Body>> for Edge<S>
where
    S: tower::Service<Request<Body>, Response = Response<Body>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response<Body>, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<Body>) -> Self::Future {
        let parent = request
            .headers()
            .get("traceparent")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<TraceParent>().ok())
            .unwrap_or_else(TraceParent::new_root);
        let trace_id = parent.trace_id().to_owned();
        let path = request.uri().path().to_owned();
        let span = tracing::info_span!(
            "grpc.request",
            path = %path,
            trace_id = %trace_id,
            subject = tracing::field::Empty,
        );
        let identity = if path.starts_with(HEALTH) {
            Ok(Identity::anonymous_without_grants())
        } else {
            let header = request.headers().get(http::header::AUTHORIZATION);
            self.security.authenticate(header.map(|h| h.to_str().unwrap_or("")))
        };
        let trace_header = HeaderValue::from_str(&trace_id).ok();
        let with_trace_id = move |mut response: Response<Body>| {
            if let Some(value) = trace_header {
                response.headers_mut().insert("trace-id", value);
            }
            response
        };
        match identity {
            Err(refused) => {
                let _enter = span.enter();
                tracing::debug!(detail = %refused.detail, "call refused: not authenticated");
                let status = status_of(&kinesis::Error::Unauthenticated(refused.detail));
                Box::pin(std::future::ready(Ok(with_trace_id(status.into_http()))))
            }
            Ok(identity) => {
                if identity.method != kinesis_http::security::AuthMethod::Anonymous {
                    span.record("subject", identity.subject.as_str());
                }
                request.extensions_mut().insert(identity);
                // The service that was polled ready takes the call; a clone
                // waits for the next one.
                let clone = self.inner.clone();
                let mut inner = std::mem::replace(&mut self.inner, clone);
                Box::pin(
                    trace::scope(parent, async move {
                        let response = inner.call(request).await?;
                        Ok(with_trace_id(response))
                    })
                    .instrument(span),
                )
            }
        }
    }
}
