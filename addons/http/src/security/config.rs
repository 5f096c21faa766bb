//! [`SecurityConfig`]: authentication and the edge's rules, from the
//! environment.
//!
//! | variable | accepts | default |
//! | --- | --- | --- |
//! | `KINESIS_AUTH_JWT_SECRET` | an HS256 secret, at least 32 bytes | none |
//! | `KINESIS_AUTH_JWT_PUBLIC_KEY` | a PEM file: RSA (RS256), EC P-256 (ES256) or Ed25519 (EdDSA) public key | none |
//! | `KINESIS_AUTH_JWT_ISSUER` | the required `iss` | not checked |
//! | `KINESIS_AUTH_JWT_AUDIENCE` | the required `aud` | not checked |
//! | `KINESIS_AUTH_TOKENS_FILE` | a tokens file (see [`TokenFile`](super::TokenFile)) | none |
//! | `KINESIS_HTTP_ALLOW_ANONYMOUS` | `true`/`false`: serve a non-loopback address without authentication | `false` |
//! | `KINESIS_HTTP_ALLOWED_HOSTS` | comma-separated host names accepted in `Host` besides the bound IP and `localhost` | none |
//! | `KINESIS_HTTP_CORS_ORIGINS` | comma-separated origins (`https://app.example.com`) allowed to make cross-origin requests | none |
//! | `KINESIS_HTTP_RATE_LIMIT` | requests per client IP: `N/s`, `N/min` or `N/h` | off |

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use kinesis::config::read;
use kinesis::{Error, Result};
use zeroize::Zeroizing;

use super::identity::Identity;
use super::jwt::JwtVerifier;
use super::tokens::TokenFile;

/// The variables read here, with what each accepts (for `kinesis --help`).
pub const VARIABLES: &[(&str, &str)] = &[
    ("KINESIS_AUTH_JWT_SECRET", "HS256 secret for JWT bearer tokens, at least 32 bytes"),
    ("KINESIS_AUTH_JWT_PUBLIC_KEY", "PEM public key file for JWTs (RS256, ES256 or EdDSA)"),
    ("KINESIS_AUTH_JWT_ISSUER", "required JWT `iss` (default: not checked)"),
    ("KINESIS_AUTH_JWT_AUDIENCE", "required JWT `aud` (default: not checked)"),
    ("KINESIS_AUTH_TOKENS_FILE", "file of static API tokens: NAME sha256:HASH GRANT…"),
    (
        "KINESIS_HTTP_ALLOW_ANONYMOUS",
        "true: serve a non-loopback address without auth (default false)",
    ),
    (
        "KINESIS_HTTP_ALLOWED_HOSTS",
        "comma-separated Host names accepted besides the bound IP and localhost",
    ),
    (
        "KINESIS_HTTP_CORS_ORIGINS",
        "comma-separated origins allowed cross-origin (https://app.example.com)",
    ),
    ("KINESIS_HTTP_RATE_LIMIT", "requests per client IP, N/s, N/min or N/h (default off)"),
];

/// Why [`SecurityConfig::authenticate`] refused a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unauthenticated {
    /// The OAuth 2 bearer error code (`invalid_request`, `invalid_token`),
    /// when there is one (none when no token was sent).
    pub error: Option<&'static str>,
    /// What was wrong, for the caller.
    pub detail: String,
}

/// Requests allowed per client IP: `count` per `period`, in bursts of up to `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Requests per period (and the largest burst).
    pub count: NonZeroU32,
    /// The period.
    pub period: Duration,
}

impl RateLimit {
    /// Parses `100/s`, `600/min` or `5000/h`.
    ///
    /// ```
    /// use kinesis_http::security::RateLimit;
    /// let r = RateLimit::parse("600/min").unwrap();
    /// assert_eq!((r.count.get(), r.period.as_secs()), (600, 60));
    /// assert!(RateLimit::parse("0/s").is_none());
    /// assert!(RateLimit::parse("fast").is_none());
    /// ```
    pub fn parse(text: &str) -> Option<RateLimit> {
        let (count, unit) = text.trim().split_once('/')?;
        let count = NonZeroU32::new(count.trim().parse().ok()?)?;
        let period = match unit.trim() {
            "s" | "sec" | "second" => Duration::from_secs(1),
            "m" | "min" | "minute" => Duration::from_secs(60),
            "h" | "hour" => Duration::from_secs(3600),
            _ => return None,
        };
        Some(RateLimit { count, period })
    }
}

/// Who may call, and the rules of the edge. The default (what
/// `HttpOptions::default()` holds) authenticates nobody: every request is
/// anonymous with every grant, which [`check_posture`](Self::check_posture)
/// allows on a loopback address only.
#[derive(Clone, Default)]
pub struct SecurityConfig {
    /// JWT bearer tokens.
    pub jwt: Option<Arc<JwtVerifier>>,
    /// Static API tokens.
    pub tokens: Option<Arc<TokenFile>>,
    /// Serve a non-loopback address without authentication.
    pub allow_anonymous: bool,
    /// Host names accepted in `Host` besides the bound IP and `localhost`
    /// (lower case).
    pub allowed_hosts: Vec<String>,
    /// Origins allowed to make cross-origin requests (and state-changing
    /// requests with an `Origin`).
    pub cors_origins: Vec<String>,
    /// Requests per client IP.
    pub rate_limit: Option<RateLimit>,
}

impl std::fmt::Debug for SecurityConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecurityConfig")
            .field("jwt", &self.jwt)
            .field("tokens", &self.tokens.as_ref().map(|t| t.len()))
            .field("allow_anonymous", &self.allow_anonymous)
            .field("allowed_hosts", &self.allowed_hosts)
            .field("cors_origins", &self.cors_origins)
            .field("rate_limit", &self.rate_limit)
            .finish()
    }
}

impl PartialEq for SecurityConfig {
    /// The same rules and the same verifiers (by identity: keys are not compared).
    fn eq(&self, other: &Self) -> bool {
        fn same<T>(a: &Option<Arc<T>>, b: &Option<Arc<T>>) -> bool {
            match (a, b) {
                (Some(a), Some(b)) => Arc::ptr_eq(a, b),
                (None, None) => true,
                _ => false,
            }
        }
        same(&self.jwt, &other.jwt)
            && same(&self.tokens, &other.tokens)
            && self.allow_anonymous == other.allow_anonymous
            && self.allowed_hosts == other.allowed_hosts
            && self.cors_origins == other.cors_origins
            && self.rate_limit == other.rate_limit
    }
}

impl Eq for SecurityConfig {}

impl SecurityConfig {
    /// Reads and validates the variables from `lookup`: keys and token files
    /// are loaded now, so a bad one stops the program at start.
    pub fn from_lookup(lookup: &impl Fn(&str) -> Option<Result<String>>) -> Result<SecurityConfig> {
        let mut cfg = SecurityConfig::default();
        let issuer = read(lookup, "KINESIS_AUTH_JWT_ISSUER")?;
        let audience = read(lookup, "KINESIS_AUTH_JWT_AUDIENCE")?;
        let secret = read(lookup, "KINESIS_AUTH_JWT_SECRET")?.map(Zeroizing::new);
        let public_key = read(lookup, "KINESIS_AUTH_JWT_PUBLIC_KEY")?.map(PathBuf::from);
        cfg.jwt = match (secret, public_key) {
            (Some(_), Some(_)) => {
                return Err(Error::Config(
                    "KINESIS_AUTH_JWT_SECRET and KINESIS_AUTH_JWT_PUBLIC_KEY are both set; set one"
                        .into(),
                ))
            }
            (Some(secret), None) => Some(JwtVerifier::hs256(
                secret.as_bytes(),
                issuer.as_deref(),
                audience.as_deref(),
            )?),
            (None, Some(path)) => {
                Some(JwtVerifier::public_key_file(&path, issuer.as_deref(), audience.as_deref())?)
            }
            (None, None) => {
                if issuer.is_some() || audience.is_some() {
                    return Err(Error::Config(
                        "KINESIS_AUTH_JWT_ISSUER/AUDIENCE are set without a key; set KINESIS_AUTH_JWT_SECRET or KINESIS_AUTH_JWT_PUBLIC_KEY".into(),
                    ));
                }
                None
            }
        }
        .map(Arc::new);
        if let Some(path) = read(lookup, "KINESIS_AUTH_TOKENS_FILE")? {
            cfg.tokens = Some(Arc::new(TokenFile::load(&PathBuf::from(path))?));
        }
        if let Some(v) = read(lookup, "KINESIS_HTTP_ALLOW_ANONYMOUS")? {
            cfg.allow_anonymous = match v.trim().to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" => true,
                "false" | "0" | "no" => false,
                _ => {
                    return Err(Error::Config(format!(
                        "KINESIS_HTTP_ALLOW_ANONYMOUS=`{v}` is not a boolean; use true or false"
                    )))
                }
            };
        }
        if let Some(v) = read(lookup, "KINESIS_HTTP_ALLOWED_HOSTS")? {
            cfg.allowed_hosts = list(&v, "KINESIS_HTTP_ALLOWED_HOSTS", valid_host)?
                .into_iter()
                .map(|h| h.trim_end_matches('.').to_ascii_lowercase())
                .collect();
        }
        if let Some(v) = read(lookup, "KINESIS_HTTP_CORS_ORIGINS")? {
            cfg.cors_origins = list(&v, "KINESIS_HTTP_CORS_ORIGINS", valid_origin)?
                .into_iter()
                .map(|o| o.to_ascii_lowercase())
                .collect();
        }
        if let Some(v) = read(lookup, "KINESIS_HTTP_RATE_LIMIT")? {
            cfg.rate_limit = Some(RateLimit::parse(&v).ok_or_else(|| {
                Error::Config(format!(
                    "KINESIS_HTTP_RATE_LIMIT=`{v}` is not a rate; use N/s, N/min or N/h with N at least 1, such as 100/s"
                ))
            })?);
        }
        Ok(cfg)
    }

    /// The caller of a request whose `Authorization` value (HTTP header or
    /// gRPC metadata) is `authorization`: the anonymous identity when no
    /// authentication is configured, else the identity of a valid
    /// `Bearer` token (a static API token or a JWT).
    pub fn authenticate(
        &self,
        authorization: Option<&str>,
    ) -> std::result::Result<Arc<Identity>, Unauthenticated> {
        if !self.authenticates() {
            return Ok(Identity::anonymous());
        }
        let refuse = |error: Option<&'static str>, detail: &str| Unauthenticated {
            error,
            detail: detail.to_owned(),
        };
        let Some(header) = authorization else {
            return Err(refuse(
                None,
                "this request needs a bearer token (Authorization: Bearer …)",
            ));
        };
        let token = header
            .split_once(' ')
            .and_then(|(scheme, token)| scheme.eq_ignore_ascii_case("bearer").then(|| token.trim()))
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                refuse(Some("invalid_request"), "the Authorization header is not `Bearer <token>`")
            })?;
        if token.starts_with(super::tokens::TOKEN_PREFIX) {
            if let Some(identity) = self.tokens.as_ref().and_then(|t| t.verify(token)) {
                return Ok(identity);
            }
            return Err(refuse(Some("invalid_token"), "the API token is not known"));
        }
        match &self.jwt {
            Some(jwt) => {
                jwt.verify(token).map_err(|refused| refuse(Some("invalid_token"), &refused.0))
            }
            None => Err(refuse(Some("invalid_token"), "the token is not a known API token")),
        }
    }

    /// Whether requests must authenticate (a JWT key or a tokens file is set).
    pub fn authenticates(&self) -> bool {
        self.jwt.is_some() || self.tokens.is_some()
    }

    /// The default posture: without authentication, only a loopback address
    /// is served, unless anonymous access was allowed explicitly.
    pub fn check_posture(&self, addr: SocketAddr) -> Result<()> {
        if self.authenticates() || addr.ip().is_loopback() || self.allow_anonymous {
            return Ok(());
        }
        Err(Error::Config(format!(
            "KINESIS_HTTP_ADDR={addr} is not a loopback address and no authentication is configured: anyone who reaches it could change or stop every component. Set KINESIS_AUTH_JWT_SECRET, KINESIS_AUTH_JWT_PUBLIC_KEY or KINESIS_AUTH_TOKENS_FILE, or KINESIS_HTTP_ALLOW_ANONYMOUS=true to serve it open anyway"
        )))
    }
}

fn list(text: &str, var: &str, valid: fn(&str) -> bool) -> Result<Vec<String>> {
    let items: Vec<String> =
        text.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect();
    if let Some(bad) = items.iter().find(|i| !valid(i)) {
        return Err(Error::Config(format!("{var}: `{bad}` is not valid here")));
    }
    Ok(items)
}

fn valid_host(h: &str) -> bool {
    !h.is_empty()
        && h.len() <= 253
        && h.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
}

/// `scheme://host[:port]`, nothing after.
fn valid_origin(o: &str) -> bool {
    let Some((scheme, rest)) = o.split_once("://") else { return false };
    matches!(scheme, "http" | "https")
        && !rest.is_empty()
        && !rest.contains('/')
        && rest.chars().all(|c| c.is_ascii_alphanumeric() || "-.:[]".contains(c))
}

#[cfg(test)]
mod tests {
    use kinesis::config::from_pairs;

    use super::*;

    fn with(vars: &[(&str, &str)]) -> Result<SecurityConfig> {
        SecurityConfig::from_lookup(&from_pairs(vars))
    }

    #[test]
    fn every_bad_value_names_its_variable() {
        for (name, value) in [
            ("KINESIS_AUTH_JWT_SECRET", "short"),
            ("KINESIS_AUTH_JWT_PUBLIC_KEY", "/nonexistent/key.pem"),
            ("KINESIS_AUTH_JWT_ISSUER", "https://issuer"),
            ("KINESIS_AUTH_TOKENS_FILE", "/nonexistent/tokens"),
            ("KINESIS_HTTP_ALLOW_ANONYMOUS", "maybe"),
            ("KINESIS_HTTP_ALLOWED_HOSTS", "evil.com/x"),
            ("KINESIS_HTTP_CORS_ORIGINS", "*"),
            ("KINESIS_HTTP_CORS_ORIGINS", "https://a.com/path"),
            ("KINESIS_HTTP_RATE_LIMIT", "100"),
            ("KINESIS_HTTP_RATE_LIMIT", "0/s"),
        ] {
            let err = with(&[(name, value)]).unwrap_err();
            assert!(matches!(err, Error::Config(_)), "{name}: {err}");
            assert!(
                err.to_string().contains(name.trim_end_matches("_ISSUER")),
                "{name}={value}: {err}"
            );
        }
    }

    #[test]
    fn the_secret_never_appears_in_debug_output() {
        let secret = "a-very-long-secret-of-at-least-32-bytes!";
        let cfg = with(&[("KINESIS_AUTH_JWT_SECRET", secret)]).unwrap();
        assert!(cfg.authenticates());
        assert!(!format!("{cfg:?}").contains(secret));
    }

    #[test]
    fn posture_refuses_open_non_loopback_addresses() {
        let open = with(&[]).unwrap();
        assert!(open.check_posture("127.0.0.1:8080".parse().unwrap()).is_ok());
        assert!(open.check_posture("[::1]:8080".parse().unwrap()).is_ok());
        let err = open.check_posture("0.0.0.0:8080".parse().unwrap()).unwrap_err();
        assert!(err.to_string().contains("KINESIS_HTTP_ALLOW_ANONYMOUS"), "{err}");
        let allowed = with(&[("KINESIS_HTTP_ALLOW_ANONYMOUS", "true")]).unwrap();
        assert!(allowed.check_posture("0.0.0.0:8080".parse().unwrap()).is_ok());
        let authed =
            with(&[("KINESIS_AUTH_JWT_SECRET", "0123456789abcdef0123456789abcdef")]).unwrap();
        assert!(authed.check_posture("0.0.0.0:8080".parse().unwrap()).is_ok());
    }

    #[test]
    fn lists_are_trimmed_and_lower_cased() {
        let cfg = with(&[
            ("KINESIS_HTTP_ALLOWED_HOSTS", " Example.COM, api.example.com. ,"),
            ("KINESIS_HTTP_CORS_ORIGINS", "https://App.example.com,http://localhost:3000"),
            ("KINESIS_HTTP_RATE_LIMIT", "100/s"),
        ])
        .unwrap();
        assert_eq!(cfg.allowed_hosts, ["example.com", "api.example.com"]);
        assert_eq!(cfg.cors_origins, ["https://app.example.com", "http://localhost:3000"]);
        assert_eq!(cfg.rate_limit.unwrap().count.get(), 100);
    }
}
