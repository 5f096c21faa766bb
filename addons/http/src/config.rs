//! [`HttpConfig`]: the HTTP add-on's settings from the environment.
//!
//! | variable | accepts | default |
//! | --- | --- | --- |
//! | `KINESIS_HTTP_ADDR` | a socket address such as `127.0.0.1:8080` or `[::1]:8080` | `127.0.0.1:8080` |
//! | `KINESIS_HTTP_BODY_LIMIT` | bytes, optionally with `KiB`/`K` or `MiB`/`M`, at least 1 | `1MiB` |
//!
//! As for [`kinesis::Config`], a bad value is an
//! [`Error::Config`] that names the variable and says what it accepts.

use std::net::SocketAddr;

use kinesis::config::{env_var, read};
use kinesis::{Error, Result};

/// The variables the HTTP add-on reads, with what each accepts (for
/// `kinesis --help`).
pub const VARIABLES: &[(&str, &str)] = &[
    ("KINESIS_HTTP_ADDR", "socket address to listen on (default 127.0.0.1:8080)"),
    ("KINESIS_HTTP_BODY_LIMIT", "largest request body, bytes or KiB/MiB (default 1MiB)"),
];

/// The validated settings of the HTTP add-on; turn them into
/// [`HttpOptions`](crate::HttpOptions) with
/// [`HttpOptions::from_config`](crate::HttpOptions::from_config), or hand
/// them to [`serve`](crate::serve).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpConfig {
    /// Where the server listens (`KINESIS_HTTP_ADDR`); port 0 picks a free port.
    pub addr: SocketAddr,
    /// Largest request body in bytes (`KINESIS_HTTP_BODY_LIMIT`).
    pub body_limit: usize,
    /// Authentication and the edge's rules (`KINESIS_AUTH_*`, and the other
    /// `KINESIS_HTTP_*` variables of [`security`](crate::security)).
    pub security: crate::security::SecurityConfig,
}

impl Default for HttpConfig {
    /// `127.0.0.1:8080` and 1 MiB.
    fn default() -> Self {
        HttpConfig {
            addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            body_limit: 1024 * 1024,
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
            cfg.addr = addr.parse().map_err(|_| {
                Error::Config(format!(
                    "KINESIS_HTTP_ADDR=`{addr}` is not a socket address; use IP:PORT such as 127.0.0.1:8080 or [::1]:8080"
                ))
            })?;
        }
        if let Some(limit) = read(&lookup, "KINESIS_HTTP_BODY_LIMIT")? {
            cfg.body_limit = parse_bytes(&limit).ok_or_else(|| {
                Error::Config(format!(
                    "KINESIS_HTTP_BODY_LIMIT=`{limit}` is not a size; use bytes such as 1048576, 512KiB or 4MiB (at least 1)"
                ))
            })?;
        }
        cfg.security = crate::security::SecurityConfig::from_lookup(&lookup)?;
        cfg.security.check_posture(cfg.addr)?;
        Ok(cfg)
    }
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
        ] {
            let err = with(&[(name, value)]).unwrap_err();
            assert!(matches!(err, Error::Config(_)), "{name}: {err}");
            let msg = err.to_string();
            assert!(msg.contains(name) && msg.contains(value), "{name}={value}: {msg}");
        }
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
    }

    #[test]
    fn the_table_lists_every_variable_read_here() {
        let names: Vec<&str> = VARIABLES.iter().map(|(n, _)| *n).collect();
        assert_eq!(names, ["KINESIS_HTTP_ADDR", "KINESIS_HTTP_BODY_LIMIT"]);
    }
}
