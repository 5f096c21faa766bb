//! [`HttpConfig`]: the HTTP add-on's settings from the environment.
//!
//! | variable | accepts | default |
//! | --- | --- | --- |
//! | `KINESIS_HTTP_ADDR` | a socket address such as `127.0.0.1:8080` or `[::1]:8080`, or `unix:/path/to.sock` for a Unix domain socket (mode 0600, removed on shutdown; plain HTTP only) | `127.0.0.1:8080` |
//! | `KINESIS_HTTP_BODY_LIMIT` | bytes, optionally with `KiB`/`K` or `MiB`/`M`, at least 1 | `1MiB` |
//! | `KINESIS_HTTP_HEADER_TIMEOUT` | a duration such as `10s` or `500ms`, more than 0: how long a connection may take to send a complete request header, counted from when the server waits for one (so it also closes idle keep-alive connections) | `10s` |
//! | `KINESIS_HTTP_MAX_CONNECTIONS` | a whole number, at least 1: connections served at once; past it a new connection is answered `503` with `Retry-After` and closed | `10000` |
//! | `KINESIS_HTTP_WATCH_BUFFER` | bytes as for the body limit: how much a `_watch` stream may hold for a client that reads slower than the component changes; past it the client gets `lagged` and a fresh `snapshot` | `1MiB` |
//! | `KINESIS_HTTP_TLS_CERT` | a PEM file: the certificate chain, leaf first; serve HTTPS (needs `KINESIS_HTTP_TLS_KEY`) | unset: plain HTTP |
//! | `KINESIS_HTTP_TLS_KEY` | a PEM file: the private key of that certificate (PKCS #8, PKCS #1 or SEC1; needs `KINESIS_HTTP_TLS_CERT`) | unset: plain HTTP |
//!
//! As for [`kinesis::Config`], a bad value is an
//! [`Error::Config`] that names the variable and says what it accepts.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use kinesis::config::{env_var, read};
use kinesis::{Error, Result};

use crate::TlsConfig;

/// The variables the HTTP add-on reads, with what each accepts (for
/// `kinesis --help`).
pub const VARIABLES: &[(&str, &str)] = &[
    (
        "KINESIS_HTTP_ADDR",
        "socket address to listen on, or unix:/path/to.sock (default 127.0.0.1:8080)",
    ),
    ("KINESIS_HTTP_BODY_LIMIT", "largest request body, bytes or KiB/MiB (default 1MiB)"),
    (
        "KINESIS_HTTP_HEADER_TIMEOUT",
        "time to send a request header, also closes idle keep-alive connections (default 10s)",
    ),
    ("KINESIS_HTTP_MAX_CONNECTIONS", "connections served at once, past it 503 (default 10000)"),
    (
        "KINESIS_HTTP_WATCH_BUFFER",
        "bytes a slow _watch client may hold, bytes or KiB/MiB (default 1MiB)",
    ),
    ("KINESIS_HTTP_TLS_CERT", "PEM certificate chain; with KINESIS_HTTP_TLS_KEY serves HTTPS"),
    ("KINESIS_HTTP_TLS_KEY", "PEM private key of KINESIS_HTTP_TLS_CERT"),
];

/// The validated settings of the HTTP add-on; turn them into
/// [`HttpOptions`](crate::HttpOptions) with
/// [`HttpOptions::from_config`](crate::HttpOptions::from_config), or hand
/// them to [`serve`](crate::serve).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpConfig {
    /// Where the server listens (`KINESIS_HTTP_ADDR`); port 0 picks a free
    /// port. Unused when [`unix_socket`](Self::unix_socket) is set.
    pub addr: SocketAddr,
    /// Listen on this Unix domain socket instead of [`addr`](Self::addr)
    /// (`KINESIS_HTTP_ADDR=unix:/path/to.sock`).
    pub unix_socket: Option<PathBuf>,
    /// Largest request body in bytes (`KINESIS_HTTP_BODY_LIMIT`).
    pub body_limit: usize,
    /// Longest time a connection may take to send a complete request
    /// header, idle keep-alive time included (`KINESIS_HTTP_HEADER_TIMEOUT`).
    pub header_timeout: Duration,
    /// Most connections served at once (`KINESIS_HTTP_MAX_CONNECTIONS`).
    pub max_connections: usize,
    /// Most bytes a `_watch` stream holds for a slow client
    /// (`KINESIS_HTTP_WATCH_BUFFER`).
    pub watch_buffer: usize,
    /// HTTPS (`KINESIS_HTTP_TLS_CERT` and `KINESIS_HTTP_TLS_KEY`), or `None`
    /// for plain HTTP.
    pub tls: Option<TlsConfig>,
    /// Authentication and the edge's rules (`KINESIS_AUTH_*`, and the other
    /// `KINESIS_HTTP_*` variables of [`security`](crate::security)).
    pub security: crate::security::SecurityConfig,
}

impl Default for HttpConfig {
    /// `127.0.0.1:8080`, 1 MiB bodies, a 10 s header timeout, 10,000
    /// connections, 1 MiB per watch, no TLS.
    fn default() -> Self {
        HttpConfig {
            addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            unix_socket: None,
            body_limit: 1024 * 1024,
            header_timeout: Duration::from_secs(10),
            max_connections: 10_000,
            watch_buffer: 1024 * 1024,
            tls: None,
            security: crate::security::SecurityConfig::default(),
        }
    }
}

impl HttpConfig {
    /// Reads and validates the process environment.
    pub fn from_env() -> Result<HttpConfig> {
        HttpConfig::from_lookup(env_var)
    }

    /// Reads and validates variables from `lookup` (for tests); the shape of
    /// [`kinesis::Config::from_lookup`].
    ///
    /// ```
    /// use kinesis::config::from_pairs;
    /// use kinesis_http::HttpConfig;
    ///
    /// let cfg = HttpConfig::from_lookup(from_pairs(&[("KINESIS_HTTP_BODY_LIMIT", "4MiB")])).unwrap();
    /// assert_eq!(cfg.body_limit, 4 * 1024 * 1024);
    /// assert_eq!(cfg.addr, HttpConfig::default().addr);
    ///
    /// let err = HttpConfig::from_lookup(from_pairs(&[("KINESIS_HTTP_ADDR", "nowhere")])).unwrap_err();
    /// assert!(err.to_string().contains("KINESIS_HTTP_ADDR"));
    /// ```
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<Result<String>>) -> Result<HttpConfig> {
        let mut cfg = HttpConfig::default();
        if let Some(addr) = read(&lookup, "KINESIS_HTTP_ADDR")? {
            if let Some(path) = addr.strip_prefix("unix:") {
                cfg.unix_socket = Some(unix_path(path).ok_or_else(|| {
                    Error::Config(format!(
                        "KINESIS_HTTP_ADDR=`{addr}` is not a Unix socket path; use unix:/path/to.sock (an absolute or relative path, at most 107 bytes)"
                    ))
                })?);
            } else {
                cfg.addr = addr.parse().map_err(|_| {
                    Error::Config(format!(
                        "KINESIS_HTTP_ADDR=`{addr}` is not a socket address; use IP:PORT such as 127.0.0.1:8080 or [::1]:8080, or unix:/path/to.sock"
                    ))
                })?;
            }
        }
        if let Some(limit) = read(&lookup, "KINESIS_HTTP_BODY_LIMIT")? {
            cfg.body_limit = parse_bytes(&limit).ok_or_else(|| {
                Error::Config(format!(
                    "KINESIS_HTTP_BODY_LIMIT=`{limit}` is not a size; use bytes such as 1048576, 512KiB or 4MiB (at least 1)"
                ))
            })?;
        }
        if let Some(timeout) = read(&lookup, "KINESIS_HTTP_HEADER_TIMEOUT")? {
            cfg.header_timeout = humantime::parse_duration(timeout.trim())
                .ok()
                .filter(|d| !d.is_zero())
                .ok_or_else(|| {
                    Error::Config(format!(
                        "KINESIS_HTTP_HEADER_TIMEOUT=`{timeout}` is not a duration; use one such as 10s or 500ms (more than 0)"
                    ))
                })?;
        }
        if let Some(max) = read(&lookup, "KINESIS_HTTP_MAX_CONNECTIONS")? {
            cfg.max_connections =
                max.trim().parse::<usize>().ok().filter(|n| *n > 0).ok_or_else(|| {
                    Error::Config(format!(
                        "KINESIS_HTTP_MAX_CONNECTIONS=`{max}` is not a number of connections; use a whole number such as 10000 (at least 1)"
                    ))
                })?;
        }
        if let Some(buffer) = read(&lookup, "KINESIS_HTTP_WATCH_BUFFER")? {
            cfg.watch_buffer = parse_bytes(&buffer).ok_or_else(|| {
                Error::Config(format!(
                    "KINESIS_HTTP_WATCH_BUFFER=`{buffer}` is not a size; use bytes such as 1048576, 512KiB or 4MiB (at least 1)"
                ))
            })?;
        }
        let cert = read(&lookup, "KINESIS_HTTP_TLS_CERT")?;
        let key = read(&lookup, "KINESIS_HTTP_TLS_KEY")?;
        cfg.tls = match (cert, key) {
            (None, None) => None,
            (Some(cert), Some(key)) => Some(TlsConfig::from_pem_files(cert, key)?),
            (Some(cert), None) => {
                return Err(Error::Config(format!(
                    "KINESIS_HTTP_TLS_CERT=`{cert}` is set but KINESIS_HTTP_TLS_KEY is not; set both (HTTPS) or neither (plain HTTP)"
                )))
            }
            (None, Some(key)) => {
                return Err(Error::Config(format!(
                    "KINESIS_HTTP_TLS_KEY=`{key}` is set but KINESIS_HTTP_TLS_CERT is not; set both (HTTPS) or neither (plain HTTP)"
                )))
            }
        };
        if let (Some(path), Some(_)) = (&cfg.unix_socket, &cfg.tls) {
            return Err(Error::Config(format!(
                "KINESIS_HTTP_ADDR=unix:{} and KINESIS_HTTP_TLS_CERT are both set: a Unix socket is served over plain HTTP only (only local processes with access to the file reach it); unset the TLS variables or listen on IP:PORT",
                path.display()
            )));
        }
        cfg.security = crate::security::SecurityConfig::from_lookup(&lookup)?;
        if cfg.unix_socket.is_none() {
            cfg.security.check_posture(cfg.addr)?;
        }
        Ok(cfg)
    }
}

/// The path of `unix:PATH` (`unix:///abs` too): not empty, no NUL, short
/// enough for `sun_path` (108 bytes on Linux, with the terminating NUL).
fn unix_path(path: &str) -> Option<PathBuf> {
    let path = path.strip_prefix("//").unwrap_or(path);
    (!path.is_empty() && path.len() < 108 && !path.contains('\0')).then(|| PathBuf::from(path))
}

/// `1048576`, `512KiB`, `512K`, `4MiB`, `4M`: a positive number of bytes.
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

#[cfg(test)]
mod tests {
    use kinesis::config::from_pairs;

    use super::*;

    fn with(vars: &[(&str, &str)]) -> Result<HttpConfig> {
        HttpConfig::from_lookup(from_pairs(vars))
    }

    #[test]
    fn defaults_without_variables() {
        let cfg = with(&[]).unwrap();
        assert_eq!(cfg, HttpConfig::default());
        assert_eq!(cfg.addr.to_string(), "127.0.0.1:8080");
        assert_eq!(cfg.body_limit, 1024 * 1024);
    }

    #[test]
    fn every_bad_value_names_its_variable() {
        for (name, value) in [
            ("KINESIS_HTTP_ADDR", "localhost"),
            ("KINESIS_HTTP_ADDR", "127.0.0.1"),
            ("KINESIS_HTTP_BODY_LIMIT", "lots"),
            ("KINESIS_HTTP_BODY_LIMIT", "0"),
            ("KINESIS_HTTP_BODY_LIMIT", "-1"),
            ("KINESIS_HTTP_BODY_LIMIT", "99999999999999999999MiB"),
            ("KINESIS_HTTP_HEADER_TIMEOUT", "soon"),
            ("KINESIS_HTTP_HEADER_TIMEOUT", "0s"),
            ("KINESIS_HTTP_HEADER_TIMEOUT", "10"),
            ("KINESIS_HTTP_MAX_CONNECTIONS", "0"),
            ("KINESIS_HTTP_MAX_CONNECTIONS", "many"),
            ("KINESIS_HTTP_MAX_CONNECTIONS", "-5"),
            ("KINESIS_HTTP_WATCH_BUFFER", "0"),
            ("KINESIS_HTTP_WATCH_BUFFER", "big"),
            ("KINESIS_HTTP_TLS_CERT", "/no/such/cert.pem"),
            ("KINESIS_HTTP_TLS_KEY", "/no/such/key.pem"),
        ] {
            let err = with(&[(name, value)]).unwrap_err();
            assert!(matches!(err, Error::Config(_)), "{name}: {err}");
            let msg = err.to_string();
            assert!(msg.contains(name) && msg.contains(value), "{name}={value}: {msg}");
        }
    }

    #[test]
    fn unix_socket_addresses() {
        let cfg = with(&[("KINESIS_HTTP_ADDR", "unix:/run/kinesis.sock")]).unwrap();
        assert_eq!(cfg.unix_socket, Some(PathBuf::from("/run/kinesis.sock")));
        assert_eq!(cfg.addr, HttpConfig::default().addr);
        let cfg = with(&[("KINESIS_HTTP_ADDR", "unix:///run/k.sock")]).unwrap();
        assert_eq!(cfg.unix_socket, Some(PathBuf::from("/run/k.sock")));
        let cfg = with(&[("KINESIS_HTTP_ADDR", "unix:k.sock")]).unwrap();
        assert_eq!(cfg.unix_socket, Some(PathBuf::from("k.sock")));
        let long = format!("unix:/{}", "a".repeat(120));
        for bad in ["unix:", long.as_str()] {
            let err = with(&[("KINESIS_HTTP_ADDR", bad)]).unwrap_err().to_string();
            assert!(err.contains("KINESIS_HTTP_ADDR") && err.contains(bad), "{err}");
        }
        // A socket is local: no authentication needed, as for loopback.
        let cfg = with(&[("KINESIS_HTTP_ADDR", "unix:/tmp/k.sock")]);
        assert!(cfg.is_ok());
    }

    #[test]
    fn good_values_parse() {
        let cfg = with(&[("KINESIS_HTTP_ADDR", "[::1]:9000"), ("KINESIS_HTTP_BODY_LIMIT", "2MiB")])
            .unwrap();
        assert_eq!(cfg.addr.to_string(), "[::1]:9000");
        assert_eq!(cfg.body_limit, 2 * 1024 * 1024);
        for (value, bytes) in [("10", 10), ("3K", 3072), ("3KiB", 3072), ("1M", 1 << 20)] {
            assert_eq!(with(&[("KINESIS_HTTP_BODY_LIMIT", value)]).unwrap().body_limit, bytes);
        }
        let cfg = with(&[
            ("KINESIS_HTTP_HEADER_TIMEOUT", "300ms"),
            ("KINESIS_HTTP_MAX_CONNECTIONS", "64"),
            ("KINESIS_HTTP_WATCH_BUFFER", "256KiB"),
        ])
        .unwrap();
        assert_eq!(cfg.header_timeout, Duration::from_millis(300));
        assert_eq!(cfg.max_connections, 64);
        assert_eq!(cfg.watch_buffer, 256 * 1024);
        assert_eq!(cfg.tls, None);
    }

    #[test]
    fn tls_needs_both_files_and_names_the_bad_one() {
        let dir = std::env::temp_dir().join(format!("kinesis-http-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let junk = dir.join("junk.pem");
        std::fs::write(&junk, "not a pem file\n").unwrap();
        let junk = junk.to_str().unwrap();
        for (vars, names) in [
            (
                vec![("KINESIS_HTTP_TLS_CERT", junk)],
                vec!["KINESIS_HTTP_TLS_CERT", "KINESIS_HTTP_TLS_KEY"],
            ),
            (
                vec![("KINESIS_HTTP_TLS_KEY", junk)],
                vec!["KINESIS_HTTP_TLS_KEY", "KINESIS_HTTP_TLS_CERT"],
            ),
            (
                vec![("KINESIS_HTTP_TLS_CERT", junk), ("KINESIS_HTTP_TLS_KEY", junk)],
                vec!["KINESIS_HTTP_TLS_CERT", junk],
            ),
            (
                vec![("KINESIS_HTTP_TLS_CERT", junk), ("KINESIS_HTTP_TLS_KEY", "/no/such/key.pem")],
                vec!["KINESIS_HTTP_TLS_KEY", "/no/such/key.pem"],
            ),
        ] {
            let err = with(&vars).unwrap_err();
            assert!(matches!(err, Error::Config(_)), "{vars:?}: {err}");
            let msg = err.to_string();
            for name in names {
                assert!(msg.contains(name), "{vars:?}: {msg} does not name {name}");
            }
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_table_lists_every_variable_read_here() {
        let names: Vec<&str> = VARIABLES.iter().map(|(n, _)| *n).collect();
        assert_eq!(
            names,
            [
                "KINESIS_HTTP_ADDR",
                "KINESIS_HTTP_BODY_LIMIT",
                "KINESIS_HTTP_HEADER_TIMEOUT",
                "KINESIS_HTTP_MAX_CONNECTIONS",
                "KINESIS_HTTP_WATCH_BUFFER",
                "KINESIS_HTTP_TLS_CERT",
                "KINESIS_HTTP_TLS_KEY",
            ]
        );
    }
}
