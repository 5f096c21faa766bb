//! Leases for kinesis singletons, on PostgreSQL or Redis.
//!
//! The [`LeaseBackend`](kinesis::lease::LeaseBackend)s of this crate:
//!
//! * [`PostgresLeases`] (`postgres://…`): each lease is a session advisory
//!   lock (`pg_try_advisory_lock`) on a connection of its own. The server
//!   frees the lock when that connection ends, so a killed holder loses it
//!   at once; `idle_session_timeout` set to the lease time on that session
//!   makes the server end it when the holder stops renewing (a paused
//!   process). Fencing tokens come from the table `kinesis_leases`
//!   (`name`, `token`), incremented in the same session after the lock is
//!   taken.
//! * [`RedisLeases`] (`redis://…`): `SET key holder NX PX ttl` and `INCR`
//!   of a token counter in one Lua script; renewal (`PEXPIRE`) and release
//!   (`DEL`) by scripts that first check the holder, so a holder never
//!   extends or frees a later grant. The counter must survive Redis
//!   restarts (AOF or RDB snapshots) for tokens to keep increasing.
//!
//! [`LockConfig::from_env`] reads [`VARIABLES`]; [`open`] picks the backend
//! by the URL's scheme.

mod postgres;
mod redis;

use std::time::Duration;

use kinesis::lease::{LeaseConfig, SharedLeases, DEFAULT_LEASE_TTL, MIN_LEASE_TTL};
use kinesis::{Error, Result};

pub use crate::postgres::PostgresLeases;
pub use crate::redis::RedisLeases;

/// Where singletons take their leases.
pub const LOCK_URL_ENV: &str = "KINESIS_LOCK_URL";
/// How long a lease lasts without renewal.
pub const LOCK_TTL_ENV: &str = "KINESIS_LOCK_TTL";
/// The components of the app to run as singletons.
pub const SINGLETONS_ENV: &str = "KINESIS_SINGLETONS";

/// The variables this crate reads, for `kinesis --help`.
pub const VARIABLES: &[(&str, &str)] = &[
    (LOCK_URL_ENV, "where singletons take their leases: postgres://… (advisory locks) or redis://… (SET NX PX); unset: no singletons"),
    (LOCK_TTL_ENV, "lease time, renewed every third of it, e.g. 10s, 2s (at least 300ms, default 10s)"),
    (SINGLETONS_ENV, "comma-separated names of the app's components that run on one process of the group at a time (needs KINESIS_LOCK_URL)"),
];

/// The lock settings from the environment.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LockConfig {
    /// [`LOCK_URL_ENV`], if set.
    pub url: Option<String>,
    /// [`LOCK_TTL_ENV`], or [`DEFAULT_LEASE_TTL`].
    pub ttl: Duration,
    /// [`SINGLETONS_ENV`]: component names.
    pub singletons: Vec<String>,
}

impl LockConfig {
    /// Reads and validates the process environment.
    pub fn from_env() -> Result<LockConfig> {
        LockConfig::from_lookup(kinesis::config::env_var)
    }

    /// Reads and validates variables from `lookup` (for tests).
    ///
    /// ```
    /// use kinesis::config::from_pairs;
    /// use kinesis_lock::LockConfig;
    ///
    /// let cfg = LockConfig::from_lookup(from_pairs(&[
    ///     ("KINESIS_LOCK_URL", "redis://127.0.0.1:6379"),
    ///     ("KINESIS_LOCK_TTL", "2s"),
    ///     ("KINESIS_SINGLETONS", "counter, notes"),
    /// ])).unwrap();
    /// assert_eq!(cfg.ttl, std::time::Duration::from_secs(2));
    /// assert_eq!(cfg.singletons, ["counter", "notes"]);
    /// for (name, value) in [("KINESIS_LOCK_TTL", "soon"), ("KINESIS_LOCK_TTL", "10ms"),
    ///                       ("KINESIS_LOCK_URL", "zookeeper://h"), ("KINESIS_SINGLETONS", "a b")] {
    ///     let err = LockConfig::from_lookup(from_pairs(&[(name, value)])).unwrap_err();
    ///     assert!(err.to_string().contains(name), "{err}");
    /// }
    /// let err = LockConfig::from_lookup(from_pairs(&[("KINESIS_SINGLETONS", "counter")])).unwrap_err();
    /// assert!(err.to_string().contains("KINESIS_LOCK_URL"), "{err}");
    /// ```
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<Result<String>>) -> Result<LockConfig> {
        let get = |name: &str| -> Result<Option<String>> {
            match lookup(name) {
                None => Ok(None),
                Some(v) => {
                    let v = v?;
                    let v = v.trim();
                    Ok(if v.is_empty() { None } else { Some(v.to_owned()) })
                }
            }
        };
        let url = get(LOCK_URL_ENV)?;
        if let Some(url) = &url {
            scheme_of(url)?;
        }
        let ttl = match get(LOCK_TTL_ENV)? {
            None => DEFAULT_LEASE_TTL,
            Some(text) => {
                let ttl = humantime::parse_duration(&text).map_err(|_| {
                    Error::Config(format!(
                        "{LOCK_TTL_ENV}=`{text}` is not a duration; use e.g. 10s, 2s, 1500ms"
                    ))
                })?;
                if ttl < MIN_LEASE_TTL {
                    return Err(Error::Config(format!(
                        "{LOCK_TTL_ENV}=`{text}` is too short; the lease time is at least {}",
                        humantime::format_duration(MIN_LEASE_TTL)
                    )));
                }
                ttl
            }
        };
        let mut singletons = Vec::new();
        if let Some(list) = get(SINGLETONS_ENV)? {
            for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
                kinesis::validate_name(name)
                    .map_err(|e| Error::Config(format!("{SINGLETONS_ENV}: {e}")))?;
                singletons.push(name.to_owned());
            }
            if url.is_none() && !singletons.is_empty() {
                return Err(Error::Config(format!(
                    "{SINGLETONS_ENV} names singletons but {LOCK_URL_ENV} is not set; set it to postgres://… or redis://…"
                )));
            }
        }
        Ok(LockConfig { url, ttl, singletons })
    }

    /// The lease configuration for [`kinesis::App::leases`], opening the
    /// backend; `None` without a URL.
    pub async fn open(&self) -> Result<Option<LeaseConfig>> {
        let Some(url) = &self.url else { return Ok(None) };
        Ok(Some(LeaseConfig { backend: open(url).await?, ttl: self.ttl }))
    }
}

fn scheme_of(url: &str) -> Result<&'static str> {
    let scheme = url.split_once("://").map(|(s, _)| s).unwrap_or("");
    match scheme {
        "postgres" | "postgresql" => Ok("postgres"),
        "redis" | "rediss" => Ok("redis"),
        _ => Err(Error::Config(format!(
            "{LOCK_URL_ENV}=`{}`: use postgres://… or redis://…",
            kinesis::persist::redact_url(url)
        ))),
    }
}

/// Opens the lease backend of `url` by its scheme (`postgres`,
/// `postgresql`, `redis`, `rediss`) and checks that it answers.
pub async fn open(url: &str) -> Result<SharedLeases> {
    Ok(match scheme_of(url)? {
        "postgres" => std::sync::Arc::new(PostgresLeases::connect(url).await?),
        _ => std::sync::Arc::new(RedisLeases::connect(url).await?),
    })
}
