//! Configuration from the environment.
//!
//! Every variable is read and validated once at start; a bad value is an
//! [`Error::Config`](crate::Error::Config) that names the variable and says
//! what it accepts. The binary prints it and exits with code 2.
//!
//! | variable | accepts | default |
//! | --- | --- | --- |
//! | `KINESIS_LOG_LEVEL` | `error`, `warn`, `info`, `debug`, `trace` or a tracing filter such as `info,kinesis=debug` | `info` |
//! | `KINESIS_LOG_FORMAT` | `text`, `json` | `text` |
//! | `KINESIS_HTTP_ADDR` | a socket address such as `127.0.0.1:8080` or `[::1]:8080` | `127.0.0.1:8080` |
//! | `KINESIS_HTTP_BODY_LIMIT` | bytes, optionally with `KiB`/`MiB` | `1MiB` |
//! | `KINESIS_DB_CONNECTION` | a store URL: `file://DIR`, `sqlite://…`, `postgres://…`, `mysql://…`, `mongodb://…`, `memory://` | `file://./kinesis-data` when filedb is built in |
//! | `KINESIS_DB_SYMMETRIC_ENCRYPT_KEY` | base64; 32 bytes are used as they are, anything else is stretched with Argon2id | none |
//! | `KINESIS_DB_PREVIOUS_ENCRYPT_KEYS` | comma separated base64 keys, for reading only | none |
//! | `KINESIS_DB_POOL_SIZE` | connections per SQL pool, 1–1000 | from the URL, else 10 |
//! | `KINESIS_SHUTDOWN_TIMEOUT` | a duration such as `30s`, `2m`, `500ms`, or whole seconds | `30s` |

use std::net::SocketAddr;
use std::time::Duration;

use crate::persist::Cipher;
use crate::{Error, Result};

/// Every variable kinesis reads, with what it accepts.
pub const VARIABLES: &[(&str, &str)] = &[
    ("KINESIS_LOG_LEVEL", "error|warn|info|debug|trace or a tracing filter (default info)"),
    ("KINESIS_LOG_FORMAT", "text|json (default text)"),
    ("KINESIS_HTTP_ADDR", "socket address to listen on (default 127.0.0.1:8080)"),
    ("KINESIS_HTTP_BODY_LIMIT", "largest request body, bytes or KiB/MiB (default 1MiB)"),
    (
        "KINESIS_DB_CONNECTION",
        "store URL: file://DIR, sqlite://, postgres://, mysql://, mongodb://, memory://",
    ),
    ("KINESIS_DB_SYMMETRIC_ENCRYPT_KEY", "base64 key for encrypted fields"),
    ("KINESIS_DB_PREVIOUS_ENCRYPT_KEYS", "comma separated base64 keys, read only"),
    ("KINESIS_DB_POOL_SIZE", "SQL connections per pool, 1-1000"),
    ("KINESIS_SHUTDOWN_TIMEOUT", "how long shutdown may take, e.g. 30s (default 30s)"),
];

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// The validated configuration.
#[derive(Clone, PartialEq, Eq)]
pub struct Config {
    /// The tracing filter.
    pub log_filter: String,
    /// The log format.
    pub log_format: LogFormat,
    /// Where the HTTP add-on listens.
    pub http_addr: SocketAddr,
    /// Largest request body in bytes.
    pub http_body_limit: usize,
    /// The store URL, if set.
    pub db_connection: Option<String>,
    /// The current encryption key (base64). Never logged.
    pub encrypt_key: Option<String>,
    /// Keys for reading only (base64). Never logged.
    pub previous_keys: Vec<String>,
    /// SQL pool size, if set.
    pub db_pool_size: Option<u32>,
    /// How long shutdown may take.
    pub shutdown_timeout: Duration,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("log_filter", &self.log_filter)
            .field("log_format", &self.log_format)
            .field("http_addr", &self.http_addr)
            .field("http_body_limit", &self.http_body_limit)
            .field("db_connection", &self.db_connection.as_deref().map(crate::persist::redact_url))
            .field("encrypt_key", &self.encrypt_key.as_ref().map(|_| "***"))
            .field("previous_keys", &self.previous_keys.len())
            .field("db_pool_size", &self.db_pool_size)
            .field("shutdown_timeout", &self.shutdown_timeout)
            .finish()
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            log_filter: "info".into(),
            log_format: LogFormat::Text,
            http_addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            http_body_limit: 1024 * 1024,
            db_connection: None,
            encrypt_key: None,
            previous_keys: Vec::new(),
            db_pool_size: None,
            shutdown_timeout: Duration::from_secs(30),
        }
    }
}

impl Config {
    /// Reads and validates the process environment.
    pub fn from_env() -> Result<Config> {
        Config::from_lookup(|name| match std::env::var(name) {
            Ok(v) => Some(Ok(v)),
            Err(std::env::VarError::NotPresent) => None,
            Err(std::env::VarError::NotUnicode(_)) => {
                Some(Err(Error::Config(format!("{name} is not valid UTF-8"))))
            }
        })
    }

    /// Reads and validates variables from `lookup` (for tests).
    ///
    /// ```
    /// use kinesis::Config;
    /// let cfg = Config::from_lookup(|name| match name {
    ///     "KINESIS_SHUTDOWN_TIMEOUT" => Some(Ok("5s".to_owned())),
    ///     _ => None,
    /// }).unwrap();
    /// assert_eq!(cfg.shutdown_timeout, std::time::Duration::from_secs(5));
    ///
    /// let err = Config::from_lookup(|name| match name {
    ///     "KINESIS_HTTP_ADDR" => Some(Ok("nowhere".to_owned())),
    ///     _ => None,
    /// }).unwrap_err();
    /// assert!(err.to_string().contains("KINESIS_HTTP_ADDR"));
    /// ```
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<Result<String>>) -> Result<Config> {
        let get = |name: &str| -> Result<Option<String>> {
            match lookup(name) {
                None => Ok(None),
                Some(Ok(v)) if v.trim().is_empty() => Ok(None),
                Some(Ok(v)) => Ok(Some(v.trim().to_owned())),
                Some(Err(e)) => Err(e),
            }
        };
        let mut cfg = Config::default();
        if let Some(level) = get("KINESIS_LOG_LEVEL")? {
            tracing_subscriber::EnvFilter::try_new(&level).map_err(|e| {
                Error::Config(format!(
                    "KINESIS_LOG_LEVEL=`{level}` is not valid ({e}); use error, warn, info, debug, trace or a tracing filter"
                ))
            })?;
            cfg.log_filter = level;
        }
        if let Some(format) = get("KINESIS_LOG_FORMAT")? {
            cfg.log_format = match format.to_ascii_lowercase().as_str() {
                "text" => LogFormat::Text,
                "json" => LogFormat::Json,
                _ => {
                    return Err(Error::Config(format!(
                        "KINESIS_LOG_FORMAT=`{format}` is not valid; use text or json"
                    )))
                }
            };
        }
        if let Some(addr) = get("KINESIS_HTTP_ADDR")? {
            cfg.http_addr = addr.parse().map_err(|_| {
                Error::Config(format!(
                    "KINESIS_HTTP_ADDR=`{addr}` is not a socket address; use IP:PORT such as 127.0.0.1:8080 or [::1]:8080"
                ))
            })?;
        }
        if let Some(limit) = get("KINESIS_HTTP_BODY_LIMIT")? {
            cfg.http_body_limit = parse_bytes(&limit).ok_or_else(|| {
                Error::Config(format!(
                    "KINESIS_HTTP_BODY_LIMIT=`{limit}` is not a size; use bytes such as 1048576, 512KiB or 4MiB (at least 1)"
                ))
            })?;
        }
        if let Some(url) = get("KINESIS_DB_CONNECTION")? {
            if !url.contains("://") {
                return Err(Error::Config(format!(
                    "KINESIS_DB_CONNECTION=`{}` is not a URL; use scheme://…, such as file://./kinesis-data",
                    crate::persist::redact_url(&url)
                )));
            }
            cfg.db_connection = Some(url);
        }
        cfg.encrypt_key = get("KINESIS_DB_SYMMETRIC_ENCRYPT_KEY")?;
        cfg.previous_keys = get("KINESIS_DB_PREVIOUS_ENCRYPT_KEYS")?
            .map(|v| v.split(',').map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()).collect())
            .unwrap_or_default();
        if cfg.encrypt_key.is_none() && !cfg.previous_keys.is_empty() {
            return Err(Error::Config(
                "KINESIS_DB_PREVIOUS_ENCRYPT_KEYS is set but KINESIS_DB_SYMMETRIC_ENCRYPT_KEY is not; set the current key too".into(),
            ));
        }
        cfg.cipher()?;
        if let Some(size) = get("KINESIS_DB_POOL_SIZE")? {
            cfg.db_pool_size = Some(size.parse().ok().filter(|n| (1..=1000).contains(n)).ok_or_else(
                || {
                    Error::Config(format!(
                        "KINESIS_DB_POOL_SIZE=`{size}` is not valid; use a whole number from 1 to 1000"
                    ))
                },
            )?);
        }
        if let Some(timeout) = get("KINESIS_SHUTDOWN_TIMEOUT")? {
            cfg.shutdown_timeout = parse_duration(&timeout).ok_or_else(|| {
                Error::Config(format!(
                    "KINESIS_SHUTDOWN_TIMEOUT=`{timeout}` is not a duration; use e.g. 30s, 2m, 500ms or whole seconds"
                ))
            })?;
        }
        Ok(cfg)
    }

    /// The cipher the keys describe, if a key is set.
    pub fn cipher(&self) -> Result<Option<Cipher>> {
        match &self.encrypt_key {
            None => Ok(None),
            Some(key) => {
                let previous: Vec<&str> = self.previous_keys.iter().map(String::as_str).collect();
                Cipher::new(key, &previous).map(Some)
            }
        }
    }

    /// Installs the global tracing subscriber this configuration describes.
    /// Does nothing if one is installed already.
    pub fn init_tracing(&self) {
        let filter = tracing_subscriber::EnvFilter::try_new(&self.log_filter)
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
        let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
        let builder = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_ansi(ansi)
            .with_writer(std::io::stderr);
        let _ = match self.log_format {
            LogFormat::Text => builder.try_init(),
            LogFormat::Json => builder.json().try_init(),
        };
    }
}

fn parse_bytes(s: &str) -> Option<usize> {
    let s = s.trim();
    let (num, mult) = if let Some(n) = s.strip_suffix("MiB").or_else(|| s.strip_suffix('M')) {
        (n, 1024 * 1024)
    } else if let Some(n) = s.strip_suffix("KiB").or_else(|| s.strip_suffix('K')) {
        (n, 1024)
    } else {
        (s, 1)
    };
    num.trim().parse::<usize>().ok().and_then(|n| n.checked_mul(mult)).filter(|n| *n > 0)
}

fn parse_duration(s: &str) -> Option<Duration> {
    if let Ok(secs) = s.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    humantime::parse_duration(s).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(vars: &[(&str, &str)]) -> Result<Config> {
        let vars: Vec<(String, String)> =
            vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Config::from_lookup(move |name| {
            vars.iter().find(|(k, _)| k == name).map(|(_, v)| Ok(v.clone()))
        })
    }

    #[test]
    fn defaults_without_variables() {
        let cfg = with(&[]).unwrap();
        assert_eq!(cfg, Config::default());
        assert_eq!(cfg.http_addr.to_string(), "127.0.0.1:8080");
    }

    #[test]
    fn every_bad_value_names_its_variable() {
        for (name, value) in [
            ("KINESIS_LOG_LEVEL", "loud=="),
            ("KINESIS_LOG_FORMAT", "xml"),
            ("KINESIS_HTTP_ADDR", "localhost"),
            ("KINESIS_HTTP_BODY_LIMIT", "lots"),
            ("KINESIS_DB_CONNECTION", "just-a-path"),
            ("KINESIS_DB_SYMMETRIC_ENCRYPT_KEY", "%%%"),
            ("KINESIS_DB_POOL_SIZE", "0"),
            ("KINESIS_SHUTDOWN_TIMEOUT", "soon"),
        ] {
            let err = with(&[(name, value)]).unwrap_err();
            assert!(matches!(err, Error::Config(_)), "{name}: {err}");
            assert!(err.to_string().contains(name), "{name}: {err}");
        }
    }

    #[test]
    fn good_values_parse() {
        let key = Cipher::generate_key();
        let cfg = with(&[
            ("KINESIS_LOG_LEVEL", "debug,hyper=warn"),
            ("KINESIS_LOG_FORMAT", "JSON"),
            ("KINESIS_HTTP_ADDR", "[::1]:9000"),
            ("KINESIS_HTTP_BODY_LIMIT", "2MiB"),
            ("KINESIS_DB_CONNECTION", "memory://"),
            ("KINESIS_DB_SYMMETRIC_ENCRYPT_KEY", &key),
            ("KINESIS_DB_POOL_SIZE", "4"),
            ("KINESIS_SHUTDOWN_TIMEOUT", "1m"),
        ])
        .unwrap();
        assert_eq!(cfg.log_format, LogFormat::Json);
        assert_eq!(cfg.http_body_limit, 2 * 1024 * 1024);
        assert_eq!(cfg.shutdown_timeout, Duration::from_secs(60));
        assert!(cfg.cipher().unwrap().is_some());
        assert!(!format!("{cfg:?}").contains(&key));
    }
}
