//! [`EventsConfig`]: the variables of the NATS transport.

use kinesis::{Error, Result};

/// The NATS server URL; unset: no NATS transport.
pub const URL_ENV: &str = "KINESIS_EVENTS_URL";

/// The subject prefix, so several applications can share one server.
pub const PREFIX_ENV: &str = "KINESIS_EVENTS_PREFIX";

/// The prefix when [`PREFIX_ENV`] is not set.
pub const DEFAULT_PREFIX: &str = "kinesis";

/// The variables `kinesis-events` reads, with what each accepts (for
/// `kinesis --help`).
pub const VARIABLES: &[(&str, &str)] = &[
    (
        URL_ENV,
        "NATS server for changes across processes, nats://host:port or tls://host:port (default: off)",
    ),
    (
        PREFIX_ENV,
        "NATS subject prefix of the changes: 1-64 of A-Z a-z 0-9 _ - (default: kinesis)",
    ),
];

/// The NATS transport's settings, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventsConfig {
    /// The server, if set; `None` turns the transport off.
    pub url: Option<String>,
    /// Subjects are `{prefix}.changes.{store id}`, the stream
    /// `{prefix}_changes`.
    pub prefix: String,
}

impl Default for EventsConfig {
    fn default() -> Self {
        EventsConfig { url: None, prefix: DEFAULT_PREFIX.to_owned() }
    }
}

impl EventsConfig {
    /// Reads and validates the process environment.
    pub fn from_env() -> Result<EventsConfig> {
        EventsConfig::from_lookup(kinesis::config::env_var)
    }

    /// Reads and validates variables from `lookup` (for tests).
    ///
    /// ```
    /// use kinesis::config::from_pairs;
    /// use kinesis_events::EventsConfig;
    ///
    /// let cfg = EventsConfig::from_lookup(from_pairs(&[
    ///     ("KINESIS_EVENTS_URL", "nats://127.0.0.1:4222"),
    ///     ("KINESIS_EVENTS_PREFIX", "shop"),
    /// ]))
    /// .unwrap();
    /// assert_eq!(cfg.subject("0f3a"), "shop.changes.0f3a");
    /// let err = EventsConfig::from_lookup(from_pairs(&[("KINESIS_EVENTS_PREFIX", "a.b")])).unwrap_err();
    /// assert!(err.to_string().contains("KINESIS_EVENTS_PREFIX"));
    /// ```
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<Result<String>>) -> Result<EventsConfig> {
        let url = kinesis::config::read(&lookup, URL_ENV)?;
        if let Some(url) = &url {
            check_url(url)?;
        }
        let prefix =
            kinesis::config::read(&lookup, PREFIX_ENV)?.unwrap_or_else(|| DEFAULT_PREFIX.into());
        check_prefix(&prefix)?;
        Ok(EventsConfig { url, prefix })
    }

    /// The subject the changes of the store with id `store` are published
    /// on: processes on other stores never receive them.
    pub fn subject(&self, store: &str) -> String {
        format!("{}.changes.{store}", self.prefix)
    }

    /// The subjects of the stream: the changes of every store.
    pub fn subjects(&self) -> String {
        format!("{}.changes.>", self.prefix)
    }

    /// The JetStream stream that keeps them.
    pub fn stream(&self) -> String {
        format!("{}_changes", self.prefix)
    }
}

fn check_url(url: &str) -> Result<()> {
    let shown = kinesis::persist::redact_url(url);
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err(Error::Config(format!(
            "{URL_ENV}: `{shown}` is not a URL; expected nats://host:port or tls://host:port"
        )));
    };
    if !matches!(scheme, "nats" | "tls") || rest.is_empty() || rest.starts_with('/') {
        return Err(Error::Config(format!(
            "{URL_ENV}: `{shown}` is not a NATS URL; expected nats://host:port or tls://host:port"
        )));
    }
    Ok(())
}

fn check_prefix(prefix: &str) -> Result<()> {
    let ok = (1..=64).contains(&prefix.len())
        && prefix.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(Error::Config(format!(
            "{PREFIX_ENV}: `{prefix}` is not a subject prefix; use 1-64 of A-Z a-z 0-9 _ -"
        )))
    }
}

#[cfg(test)]
mod tests {
    use kinesis::config::from_pairs;

    use super::*;

    #[test]
    fn defaults_and_bad_values() {
        let cfg = EventsConfig::from_lookup(from_pairs(&[])).unwrap();
        assert_eq!(cfg, EventsConfig::default());
        assert_eq!(cfg.stream(), "kinesis_changes");
        for (name, bad) in [
            (URL_ENV, "127.0.0.1:4222"),
            (URL_ENV, "http://127.0.0.1"),
            (URL_ENV, "nats://"),
            (PREFIX_ENV, "a.b"),
            (PREFIX_ENV, "a*"),
            (PREFIX_ENV, &"x".repeat(65)),
        ] {
            let err = EventsConfig::from_lookup(from_pairs(&[(name, bad)])).unwrap_err();
            assert!(matches!(&err, Error::Config(m) if m.contains(name)), "{bad}: {err}");
        }
        let ok = EventsConfig::from_lookup(from_pairs(&[(URL_ENV, "tls://u:p@host:4222")]));
        assert!(ok.is_ok());
    }
}
