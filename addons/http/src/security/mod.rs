//! Security: who may call, and the checks at the edge.
//!
//! * **Authentication** ([`SecurityConfig`]): JWT bearer tokens
//!   ([`JwtVerifier`]; HS256 from `KINESIS_AUTH_JWT_SECRET`, or RS256,
//!   ES256 or EdDSA from the PEM file of `KINESIS_AUTH_JWT_PUBLIC_KEY`) and
//!   static API tokens ([`TokenFile`], `KINESIS_AUTH_TOKENS_FILE`). With
//!   neither, every request is anonymous and may do everything, and the
//!   server refuses to start on a non-loopback address unless
//!   `KINESIS_HTTP_ALLOW_ANONYMOUS=true`.
//! * **Authorisation** ([`Grant`]): a token's scope holds `VERB:PATTERN`
//!   grants (`read:/root/**`, `write:/root/counter`, `control:/**`,
//!   `admin:/**`); each route needs one verb on its component.
//! * **The edge** (the guard, see [`guard`]): `Host` (DNS rebinding),
//!   `Origin` and `Content-Type` of state-changing requests (CSRF), CORS
//!   from `KINESIS_HTTP_CORS_ORIGINS` (tower-http's `CorsLayer`), and the
//!   per-client rate limit of `KINESIS_HTTP_RATE_LIMIT` (`governor`).
//!
//! The caller's [`Identity`] is in every request's extensions, on the
//! request span (`subject`), in the access log, and reaches handlers as
//! [`kinesis::Context::caller`].

mod config;
mod grants;
pub(crate) mod guard;
mod identity;
mod jwt;
mod rate;
mod tokens;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::http::header::{
    HeaderName, AUTHORIZATION, CONTENT_TYPE, ETAG, IF_MATCH, IF_NONE_MATCH, RETRY_AFTER,
};
use axum::http::{HeaderValue, Method};
use tower_http::cors::{AllowOrigin, CorsLayer};

pub use config::{RateLimit, SecurityConfig, Unauthenticated, VARIABLES};
pub use grants::{Grant, Grants, Verb};
pub use identity::{AuthMethod, Identity};
pub use jwt::{JwtVerifier, Refused, LEEWAY_SECS, MIN_SECRET_BYTES};
pub use tokens::{new_token, TokenFile, TOKEN_PREFIX};

/// The guard layer for a router bound to `bound`.
pub(crate) fn guard(config: &SecurityConfig, bound: IpAddr) -> guard::GuardLayer {
    guard::GuardLayer(Arc::new(guard::Rules::new(config.clone(), bound)))
}

/// tower-http's `CorsLayer` for the configured origins; `None` without any
/// (no cross-origin request is then allowed: browsers enforce that).
pub(crate) fn cors(config: &SecurityConfig) -> Option<CorsLayer> {
    if config.cors_origins.is_empty() {
        return None;
    }
    let origins: Vec<HeaderValue> =
        config.cors_origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()).collect();
    let trace_id = HeaderName::from_static(crate::TRACE_ID_HEADER);
    Some(
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(origins))
            .allow_methods([
                Method::GET,
                Method::HEAD,
                Method::PUT,
                Method::PATCH,
                Method::POST,
                Method::DELETE,
            ])
            .allow_headers([
                AUTHORIZATION,
                CONTENT_TYPE,
                IF_MATCH,
                IF_NONE_MATCH,
                HeaderName::from_static("last-event-id"),
                HeaderName::from_static("traceparent"),
                trace_id.clone(),
            ])
            .expose_headers([ETAG, RETRY_AFTER, trace_id])
            .max_age(Duration::from_secs(600)),
    )
}
