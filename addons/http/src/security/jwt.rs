//! JWT bearer tokens, verified with the `jsonwebtoken` crate.
//!
//! The algorithm is pinned by the configured key: HS256 for
//! `KINESIS_AUTH_JWT_SECRET`, and RS256, ES256 or EdDSA for the PEM public
//! key of `KINESIS_AUTH_JWT_PUBLIC_KEY`, whichever kind the file holds. A
//! token whose header names another algorithm (`none` included) is refused.
//! `exp` is required and `nbf` honoured, both with 30 s of leeway; `iss` and
//! `aud` are checked when configured.
//!
//! Verified tokens are kept in a small cache until they expire, so a client
//! that sends the same token on every request pays for one signature check
//! (an RS256 check costs tens of microseconds); a cached token is still
//! checked against its `exp` and `nbf` on every use.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use kinesis::{Error, Result};
use serde::Deserialize;
use zeroize::Zeroizing;

use super::grants::Grants;
use super::identity::{AuthMethod, Identity};

/// Seconds of clock skew allowed on `exp` and `nbf`.
pub const LEEWAY_SECS: u64 = 30;
/// Fewest bytes of an HS256 secret.
pub const MIN_SECRET_BYTES: usize = 32;
/// Most verified tokens kept; the cache is emptied when it is full.
const CACHE_CAPACITY: usize = 4096;

/// Verifies JWT bearer tokens against one key.
pub struct JwtVerifier {
    key: DecodingKey,
    validation: Validation,
    /// Verified tokens by their XXH3 hash (the token itself is compared too).
    cache: RwLock<HashMap<u64, Cached>>,
}

#[derive(Clone)]
struct Cached {
    token: Box<str>,
    identity: Arc<Identity>,
    exp: u64,
    nbf: Option<u64>,
}

impl std::fmt::Debug for JwtVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtVerifier")
            .field("algorithms", &self.validation.algorithms)
            .field("iss", &self.validation.iss)
            .field("aud", &self.validation.aud)
            .finish_non_exhaustive()
    }
}

/// The claims kinesis reads.
#[derive(Deserialize)]
struct Claims {
    #[serde(default)]
    sub: Option<String>,
    #[serde(default)]
    scope: Option<Scope>,
    exp: u64,
    #[serde(default)]
    nbf: Option<u64>,
}

/// `scope` as an OAuth 2 space-separated string, or as a list.
#[derive(Deserialize)]
#[serde(untagged)]
enum Scope {
    Text(String),
    List(Vec<String>),
}

/// Why a token was refused (the 401's detail; never echoes the token).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused(pub String);

impl JwtVerifier {
    /// An HS256 verifier; `secret` must have at least
    /// [`MIN_SECRET_BYTES`] bytes.
    pub fn hs256(secret: &[u8], issuer: Option<&str>, audience: Option<&str>) -> Result<Self> {
        if secret.len() < MIN_SECRET_BYTES {
            return Err(Error::Config(format!(
                "KINESIS_AUTH_JWT_SECRET has {} bytes; an HS256 secret needs at least {MIN_SECRET_BYTES} (generate one with `openssl rand -base64 48`)",
                secret.len()
            )));
        }
        Ok(Self::new(DecodingKey::from_secret(secret), Algorithm::HS256, issuer, audience))
    }

    /// A verifier for the PEM public key in `path`: RS256 for an RSA key,
    /// ES256 for a P-256 key, EdDSA for an Ed25519 key.
    pub fn public_key_file(
        path: &Path,
        issuer: Option<&str>,
        audience: Option<&str>,
    ) -> Result<Self> {
        let var = "KINESIS_AUTH_JWT_PUBLIC_KEY";
        let pem = Zeroizing::new(std::fs::read(path).map_err(|e| {
            Error::Config(format!("{var}={}: cannot read the file: {e}", path.display()))
        })?);
        let (key, alg) = if let Ok(k) = DecodingKey::from_rsa_pem(&pem) {
            (k, Algorithm::RS256)
        } else if let Ok(k) = DecodingKey::from_ec_pem(&pem) {
            (k, Algorithm::ES256)
        } else if let Ok(k) = DecodingKey::from_ed_pem(&pem) {
            (k, Algorithm::EdDSA)
        } else {
            return Err(Error::Config(format!(
                "{var}={}: not a PEM public key of RSA, EC P-256 or Ed25519",
                path.display()
            )));
        };
        Ok(Self::new(key, alg, issuer, audience))
    }

    fn new(key: DecodingKey, alg: Algorithm, issuer: Option<&str>, audience: Option<&str>) -> Self {
        let mut validation = Validation::new(alg);
        validation.leeway = LEEWAY_SECS;
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp"]);
        if let Some(iss) = issuer {
            validation.set_issuer(&[iss]);
            validation.required_spec_claims.insert("iss".to_owned());
        }
        match audience {
            Some(aud) => {
                validation.set_audience(&[aud]);
                validation.required_spec_claims.insert("aud".to_owned());
            }
            None => validation.validate_aud = false,
        }
        JwtVerifier { key, validation, cache: RwLock::new(HashMap::new()) }
    }

    /// The algorithm tokens must be signed with.
    pub fn algorithm(&self) -> Algorithm {
        self.validation.algorithms[0]
    }

    /// The identity of a valid `token`.
    pub fn verify(&self, token: &str) -> std::result::Result<Arc<Identity>, Refused> {
        let now = now_secs();
        let key = xxhash_rust::xxh3::xxh3_64(token.as_bytes());
        let hit = {
            let cache = self.cache.read().unwrap_or_else(|p| p.into_inner());
            cache
                .get(&key)
                .filter(|c| &*c.token == token)
                .map(|c| fresh(c, now).map(|()| Arc::clone(&c.identity)))
        };
        if let Some(answer) = hit {
            return answer;
        }
        let data = jsonwebtoken::decode::<Claims>(token, &self.key, &self.validation)
            .map_err(|e| Refused(describe(&e)))?;
        let claims = data.claims;
        let grants = match claims.scope {
            None => Ok(Grants::default()),
            Some(Scope::Text(s)) => Grants::parse(&s),
            Some(Scope::List(l)) => Grants::parse(&l.join(" ")),
        }
        .map_err(|e| Refused(format!("the token's scope is not valid: {e}")))?;
        let subject = claims.sub.unwrap_or_else(|| "jwt".to_owned());
        let identity = Arc::new(Identity::new(subject, grants, AuthMethod::Jwt));
        let entry = Cached {
            token: token.into(),
            identity: Arc::clone(&identity),
            exp: claims.exp,
            nbf: claims.nbf,
        };
        let mut cache = self.cache.write().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= CACHE_CAPACITY {
            cache.clear();
        }
        cache.insert(key, entry);
        Ok(identity)
    }
}

/// Whether a cached token is still within its `exp` and `nbf`.
fn fresh(hit: &Cached, now: u64) -> std::result::Result<(), Refused> {
    if now > hit.exp.saturating_add(LEEWAY_SECS) {
        return Err(Refused("the token has expired".to_owned()));
    }
    if hit.nbf.is_some_and(|nbf| now.saturating_add(LEEWAY_SECS) < nbf) {
        return Err(Refused("the token is not valid yet (nbf)".to_owned()));
    }
    Ok(())
}

fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// A reason for the client, from the library's error (without the token).
fn describe(e: &jsonwebtoken::errors::Error) -> String {
    use jsonwebtoken::errors::ErrorKind as K;
    match e.kind() {
        K::ExpiredSignature => "the token has expired".to_owned(),
        K::ImmatureSignature => "the token is not valid yet (nbf)".to_owned(),
        K::InvalidSignature => "the token's signature does not verify".to_owned(),
        K::InvalidAlgorithm | K::InvalidAlgorithmName => {
            "the token is signed with an algorithm this server does not accept".to_owned()
        }
        K::InvalidIssuer => "the token's issuer is not accepted".to_owned(),
        K::InvalidAudience => "the token's audience is not accepted".to_owned(),
        K::MissingRequiredClaim(c) => format!("the token has no `{c}` claim"),
        _ => format!("the token is not a valid JWT: {e}"),
    }
}
