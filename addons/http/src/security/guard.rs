//! The guard: the router's checks before any handler runs, in order:
//!
//! 1. `Host` is the bound IP, `localhost` or an allowed host (else 403:
//!    DNS rebinding);
//! 2. the client's rate (else 429 with `Retry-After`);
//! 3. for a state-changing method (anything but `GET`, `HEAD`,
//!    `OPTIONS`), an `Origin`, if sent, is an allowed origin or the
//!    server's own (else 403: CSRF), and `POST`, `PUT` and `PATCH` say
//!    `Content-Type: application/json` (or `application/*+json`), even
//!    with an empty body (else 415), so no cross-site form or `no-cors`
//!    fetch gets through without a CORS preflight;
//! 4. `/_kinesis/health` and `/_kinesis/ready` are open from here on;
//! 5. the bearer token (else 401 with `WWW-Authenticate: Bearer`), or the
//!    anonymous identity when no authentication is configured; the
//!    [`Identity`] goes into the request's extensions and its subject onto
//!    the request span;
//! 6. the grants for the routes whose target is known from the path alone
//!    (`GET /`, `/_kinesis/…`); the handlers check the rest once they have
//!    resolved the component (see [`authorize`]).

use std::future::{ready, Ready};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::extract::{ConnectInfo, Request};
use axum::http::header::{AUTHORIZATION, HOST, ORIGIN, WWW_AUTHENTICATE};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use futures::future::Either;

use super::grants::Verb;
use super::identity::Identity;
use super::rate::Limiter;
use super::SecurityConfig;
use crate::problem::Problem;

/// Everything the guard checks against.
pub(crate) struct Rules {
    config: SecurityConfig,
    bound: IpAddr,
    limiter: Option<Limiter>,
}

impl Rules {
    pub(crate) fn new(config: SecurityConfig, bound: IpAddr) -> Rules {
        let limiter = config.rate_limit.map(Limiter::new);
        Rules { config, bound, limiter }
    }

    /// Runs the checks; the identity of an allowed request.
    fn check(&self, request: &Request) -> Result<Arc<Identity>, Problem> {
        self.check_host(request)?;
        if let Some(limiter) = &self.limiter {
            let client = request
                .extensions()
                .get::<ConnectInfo<SocketAddr>>()
                .map_or(IpAddr::from([0, 0, 0, 0]), |c| c.0.ip());
            limiter.check(client)?;
        }
        let method = request.method();
        let safe = matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS);
        if !safe {
            self.check_origin(request)?;
            if matches!(*method, Method::POST | Method::PUT | Method::PATCH) {
                crate::body::require(request.headers(), crate::body::Accept::Json)?;
            }
        }
        let path = request.uri().path();
        if path == "/_kinesis/health" || path == "/_kinesis/ready" {
            return Ok(Identity::anonymous_without_grants());
        }
        let identity = self.authenticate(request)?;
        if let Some(rest) = path.strip_prefix("/_kinesis") {
            let verb = if *method == Method::DELETE && rest.starts_with("/tasks/") {
                Verb::Control
            } else {
                Verb::Read
            };
            if !identity.allows(verb, path) {
                return Err(forbidden(&identity, verb, path));
            }
        }
        Ok(identity)
    }

    fn check_host(&self, request: &Request) -> Result<(), Problem> {
        let host = request
            .headers()
            .get(HOST)
            .and_then(|h| h.to_str().ok())
            .or_else(|| request.uri().authority().map(|a| a.as_str()))
            .unwrap_or_default();
        let name = host_name(host);
        let allowed = match name.parse::<IpAddr>() {
            Ok(ip) => ip == self.bound || self.bound.is_unspecified(),
            Err(_) => {
                let name = name.trim_end_matches('.').to_ascii_lowercase();
                name == "localhost" || self.config.allowed_hosts.contains(&name)
            }
        };
        if allowed {
            return Ok(());
        }
        Err(Problem::forbidden(
            "host-not-allowed",
            format!(
                "the Host `{}` is not served here; add it to KINESIS_HTTP_ALLOWED_HOSTS if it should be",
                crate::ids::loggable(host)
            ),
        ))
    }

    fn check_origin(&self, request: &Request) -> Result<(), Problem> {
        let Some(origin) = request.headers().get(ORIGIN) else { return Ok(()) };
        let origin = origin.to_str().unwrap_or("null").to_ascii_lowercase();
        if self.config.cors_origins.contains(&origin) {
            return Ok(());
        }
        // Same origin: a page served by this host.
        let host = request.headers().get(HOST).and_then(|h| h.to_str().ok()).unwrap_or_default();
        let own = origin
            .split_once("://")
            .is_some_and(|(_, rest)| !host.is_empty() && rest.eq_ignore_ascii_case(host));
        if own {
            return Ok(());
        }
        Err(Problem::forbidden(
            "origin-not-allowed",
            format!(
                "requests that change state from the origin `{}` are refused (cross-site request forgery); add it to KINESIS_HTTP_CORS_ORIGINS if it should be allowed",
                crate::ids::loggable(&origin)
            ),
        ))
    }

    fn authenticate(&self, request: &Request) -> Result<Arc<Identity>, Problem> {
        let header = request.headers().get(AUTHORIZATION).map(|h| h.to_str().unwrap_or(""));
        self.config
            .authenticate(header)
            .map_err(|refused| unauthorized(refused.error, &refused.detail))
    }
}

/// The host name of a `Host` value, without the port.
fn host_name(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or_default();
    }
    match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    }
}

/// 401 with `WWW-Authenticate: Bearer`.
fn unauthorized(error: Option<&str>, detail: &str) -> Problem {
    let challenge = match error {
        Some(e) => format!("Bearer realm=\"kinesis\", error=\"{e}\""),
        None => "Bearer realm=\"kinesis\"".to_owned(),
    };
    let value = HeaderValue::from_str(&challenge)
        .unwrap_or_else(|_| HeaderValue::from_static("Bearer realm=\"kinesis\""));
    Problem::new_status(StatusCode::UNAUTHORIZED, "unauthorized", detail)
        .with_header_value(WWW_AUTHENTICATE, value)
}

/// 403: `identity` may not do `verb` on `uri`.
pub(crate) fn forbidden(identity: &Identity, verb: Verb, uri: &str) -> Problem {
    Problem::forbidden(
        "forbidden",
        format!(
            "`{}` may not {verb} {}: that needs a grant such as {verb}:{}",
            identity.subject,
            crate::ids::loggable(uri),
            crate::ids::loggable(uri)
        ),
    )
}

/// Checks that the request's caller may do `verb` on the component at
/// `uri`: what the handlers call once they know the target.
pub(crate) fn authorize(
    identity: Option<&Arc<Identity>>,
    verb: Verb,
    uri: &str,
) -> Result<(), Problem> {
    match identity {
        Some(identity) if identity.allows(verb, uri) => Ok(()),
        Some(identity) => Err(forbidden(identity, verb, uri)),
        None => Err(unauthorized(None, "the request carries no identity")),
    }
}

/// Checks that the caller may read the tree (any `read` grant).
pub(crate) fn authorize_tree(identity: Option<&Arc<Identity>>) -> Result<(), Problem> {
    match identity {
        Some(identity) if identity.grants.has_verb(Verb::Read) => Ok(()),
        Some(identity) => Err(forbidden(identity, Verb::Read, "/")),
        None => Err(unauthorized(None, "the request carries no identity")),
    }
}

/// The layer of [`Guard`].
#[derive(Clone)]
pub(crate) struct GuardLayer(pub(crate) Arc<Rules>);

impl<S> tower::Layer<S> for GuardLayer {
    type Service = Guard<S>;

    fn layer(&self, inner: S) -> Guard<S> {
        Guard { inner, rules: Arc::clone(&self.0) }
    }
}

/// The service that runs [`Rules::check`] before the routes.
#[derive(Clone)]
pub(crate) struct Guard<S> {
    inner: S,
    rules: Arc<Rules>,
}

impl<S> tower::Service<Request> for Guard<S>
where
    S: tower::Service<Request, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Either<Ready<Result<Response, S::Error>>, S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request) -> Self::Future {
        match self.rules.check(&request) {
            Ok(identity) => {
                if identity.method != super::AuthMethod::Anonymous {
                    tracing::Span::current().record("subject", identity.subject.as_str());
                }
                request.extensions_mut().insert(identity);
                Either::Right(self.inner.call(request))
            }
            Err(problem) => Either::Left(ready(Ok(problem.into_response()))),
        }
    }
}
