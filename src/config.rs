//! Configuration from the environment: what the core reads.
//!
//! Every variable is read and validated once at start; a bad value is an
//! [`Error::Config`](crate::Error::Config) that names the variable and says
//! what it accepts. The binary prints it and exits with code 2.
//!
//! | variable | accepts | default |
//! | --- | --- | --- |
//! | `KINESIS_DB_CONNECTION` | a store URL: `file://DIR`, `sqlite://…`, `postgres://…`, `mysql://…`, `mongodb://…`, `memory://` | `file://./kinesis-data` when filedb is built in |
//! | `KINESIS_DB_SYMMETRIC_ENCRYPT_KEY` | base64 of 32 bytes is the key as it is; anything else is a passphrase, stretched with Argon2id (fixed, versioned salt; see [`Cipher`](crate::persist::Cipher#keys)) | none: a generated key file with the default file store |
//! | `KINESIS_DB_PREVIOUS_ENCRYPT_KEYS` | comma separated keys or passphrases, as above, for reading only | none |
//!
//! Use a random key in production (`openssl rand -base64 32`); a passphrase
//! shorter than 16 characters is used with a warning, an empty one is unset.
//! | `KINESIS_SHUTDOWN_TIMEOUT` | a duration such as `30s`, `2m`, `500ms`, or whole seconds | `30s` |
//! | `KINESIS_TASK_WORKERS` | how many [tasks](crate::tasks) run at once, 1 to 4096 | the number of CPUs |
//! | `KINESIS_ONLY` | comma separated component names: run only these components of the app and what they depend on ([`App`](crate::App)) | every component |
//!
//! The crates that read other variables own them, each with a `VARIABLES`
//! table and a `from_lookup` of the same shape as [`Config::from_lookup`]:
//! the HTTP add-on (`KINESIS_HTTP_*`, `kinesis_http::HttpConfig`), the SQL
//! stores (`KINESIS_DB_POOL_SIZE`, `kinesis_sql::SqlConfig`) and the binary
//! (`KINESIS_LOG_LEVEL`, `KINESIS_LOG_FORMAT`, `kinesis_cmd::logging`).
//! The helpers [`env_var`], [`read`] and [`from_pairs`] are shared with them.

use std::time::Duration;

use crate::persist::Cipher;
use crate::{Error, Result};

/// The variables the core reads, with what each accepts.
pub const VARIABLES: &[(&str, &str)] = &[
    (
        "KINESIS_DB_CONNECTION",
        "store URL: file://DIR, sqlite://, postgres://, mysql://, mongodb://, memory://",
    ),
    (
        "KINESIS_DB_SYMMETRIC_ENCRYPT_KEY",
        "key for encrypted fields: base64 of 32 bytes, or a passphrase (Argon2id)",
    ),
    ("KINESIS_DB_PREVIOUS_ENCRYPT_KEYS", "comma separated keys or passphrases, read only"),
    ("KINESIS_SHUTDOWN_TIMEOUT", "how long shutdown may take, e.g. 30s (default 30s)"),
    ("KINESIS_TASK_WORKERS", "how many tasks run at once, 1-4096 (default: the number of CPUs)"),
    (
        "KINESIS_ONLY",
        "comma separated component names: run only these and what they depend on (default: all)",
    ),
];

/// The most workers `KINESIS_TASK_WORKERS` may ask for.
pub const MAX_TASK_WORKERS: usize = 4096;

/// Reads the variable `name` from the process environment, in the shape a
/// `from_lookup` takes: `None` when it is not set, an [`Error::Config`]
/// naming it when it is not valid UTF-8.
///
/// ```
/// assert!(kinesis::config::env_var("KINESIS_SURELY_NOT_SET_ANYWHERE").is_none());
/// ```
pub fn env_var(name: &str) -> Option<Result<String>> {
    match std::env::var(name) {
        Ok(v) => Some(Ok(v)),
        Err(std::env::VarError::NotPresent) => None,
        Err(std::env::VarError::NotUnicode(_)) => {
            Some(Err(Error::Config(format!("{name} is not valid UTF-8"))))
        }
    }
}

/// The value of `name` from `lookup`, trimmed; `None` when it is unset or
/// blank (a blank variable means "the default").
///
/// ```
/// use kinesis::config::{from_pairs, read};
/// let lookup = from_pairs(&[("A", "  x "), ("B", "  ")]);
/// assert_eq!(read(&lookup, "A").unwrap().as_deref(), Some("x"));
/// assert_eq!(read(&lookup, "B").unwrap(), None);
/// assert_eq!(read(&lookup, "C").unwrap(), None);
/// ```
pub fn read(
    lookup: &impl Fn(&str) -> Option<Result<String>>,
    name: &str,
) -> Result<Option<String>> {
    match lookup(name) {
        None => Ok(None),
        Some(Ok(v)) if v.trim().is_empty() => Ok(None),
        Some(Ok(v)) => Ok(Some(v.trim().to_owned())),
        Some(Err(e)) => Err(e),
    }
}

/// A lookup over fixed `(name, value)` pairs instead of the process
/// environment, for tests and examples.
///
/// ```
/// use kinesis::Config;
/// let cfg = Config::from_lookup(kinesis::config::from_pairs(&[("KINESIS_SHUTDOWN_TIMEOUT", "5s")]))
///     .unwrap();
/// assert_eq!(cfg.shutdown_timeout, std::time::Duration::from_secs(5));
/// ```
pub fn from_pairs<'a>(
    pairs: &'a [(&'a str, &'a str)],
) -> impl Fn(&str) -> Option<Result<String>> + 'a {
    move |name| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| Ok((*v).to_owned()))
}

/// The validated configuration of the core: the store, its keys and the
/// shutdown deadline.
#[derive(Clone, PartialEq, Eq)]
pub struct Config {
    /// The store URL, if set.
    pub db_connection: Option<String>,
    /// The current encryption key (base64 of 32 bytes, or a passphrase).
    /// Never logged.
    pub encrypt_key: Option<String>,
    /// Keys for reading only, of either kind. Never logged.
    pub previous_keys: Vec<String>,
    /// How long shutdown may take.
    pub shutdown_timeout: Duration,
    /// How many tasks of the [task manager](crate::tasks) run at once.
    pub task_workers: usize,
    /// The components of the app to run (with what they depend on; see
    /// [`App::install`](crate::App::install)); `None` for all of them.
    /// From `KINESIS_ONLY`, or [`parse_only`] of a command-line flag.
    pub only: Option<Vec<String>>,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("db_connection", &self.db_connection.as_deref().map(crate::persist::redact_url))
            .field("encrypt_key", &self.encrypt_key.as_ref().map(|_| "***"))
            .field("previous_keys", &self.previous_keys.len())
            .field("shutdown_timeout", &self.shutdown_timeout)
            .field("task_workers", &self.task_workers)
            .field("only", &self.only)
            .finish()
    }
}

impl Default for Config {
    /// No store URL, no keys, a 30 s shutdown deadline, a task worker per CPU.
    fn default() -> Self {
        Config {
            db_connection: None,
            encrypt_key: None,
            previous_keys: Vec::new(),
            shutdown_timeout: Duration::from_secs(30),
            task_workers: crate::tasks::default_workers(),
            only: None,
        }
    }
}

impl Config {
    /// Reads and validates the process environment.
    pub fn from_env() -> Result<Config> {
        Config::from_lookup(env_var)
    }

    /// Reads and validates variables from `lookup` (for tests); see
    /// [`from_pairs`].
    ///
    /// ```
    /// use kinesis::config::from_pairs;
    /// use kinesis::Config;
    /// let cfg = Config::from_lookup(from_pairs(&[("KINESIS_SHUTDOWN_TIMEOUT", "5s")])).unwrap();
    /// assert_eq!(cfg.shutdown_timeout, std::time::Duration::from_secs(5));
    ///
    /// let err = Config::from_lookup(from_pairs(&[("KINESIS_DB_CONNECTION", "nowhere")]))
    ///     .unwrap_err();
    /// assert!(err.to_string().contains("KINESIS_DB_CONNECTION"));
    /// ```
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<Result<String>>) -> Result<Config> {
        let get = |name: &str| read(&lookup, name);
        let mut cfg = Config::default();
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
        if let Some(timeout) = get("KINESIS_SHUTDOWN_TIMEOUT")? {
            cfg.shutdown_timeout = parse_duration(&timeout).ok_or_else(|| {
                Error::Config(format!(
                    "KINESIS_SHUTDOWN_TIMEOUT=`{timeout}` is not a duration; use e.g. 30s, 2m, 500ms or whole seconds"
                ))
            })?;
        }
        if let Some(workers) = get("KINESIS_TASK_WORKERS")? {
            cfg.task_workers = workers
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=MAX_TASK_WORKERS).contains(n))
                .ok_or_else(|| {
                    Error::Config(format!(
                        "KINESIS_TASK_WORKERS=`{workers}` is not valid; use a whole number from 1 to {MAX_TASK_WORKERS}"
                    ))
                })?;
        }
        if let Some(only) = get("KINESIS_ONLY")? {
            cfg.only = Some(parse_only(&only).map_err(|e| {
                let why = match e {
                    Error::Config(why) => why,
                    other => other.to_string(),
                };
                Error::Config(format!("KINESIS_ONLY=`{only}` is not valid: {why}"))
            })?);
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
}

/// Parses a list of component names such as `counter,notes` (the value of
/// `KINESIS_ONLY`, or of a `--only` flag): comma separated, blanks around
/// names ignored, each a valid name ([`validate_name`](crate::validate_name)),
/// duplicates dropped, at least one. Whether the app has them is checked by
/// [`App::resolve`](crate::App::resolve).
///
/// ```
/// use kinesis::config::parse_only;
/// assert_eq!(parse_only(" counter, notes,counter ").unwrap(), ["counter", "notes"]);
/// assert!(parse_only("counter,no/slash").is_err());
/// assert!(parse_only(" , ").is_err());
/// ```
pub fn parse_only(value: &str) -> Result<Vec<String>> {
    let mut names: Vec<String> = Vec::new();
    for name in value.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        crate::validate_name(name).map_err(|e| match e {
            Error::Invalid(why) => Error::Config(why),
            other => Error::Config(other.to_string()),
        })?;
        if !names.iter().any(|n| n == name) {
            names.push(name.to_owned());
        }
    }
    if names.is_empty() {
        return Err(Error::Config("name at least one component, such as counter,notes".into()));
    }
    Ok(names)
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
        Config::from_lookup(from_pairs(vars))
    }

    #[test]
    fn defaults_without_variables() {
        assert_eq!(with(&[]).unwrap(), Config::default());
        assert_eq!(with(&[("KINESIS_SHUTDOWN_TIMEOUT", "  ")]).unwrap(), Config::default());
    }

    #[test]
    fn every_bad_value_names_its_variable() {
        for (name, value) in [
            ("KINESIS_DB_CONNECTION", "just-a-path"),
            ("KINESIS_SHUTDOWN_TIMEOUT", "soon"),
            ("KINESIS_TASK_WORKERS", "0"),
            ("KINESIS_TASK_WORKERS", "many"),
            ("KINESIS_TASK_WORKERS", "5000"),
            ("KINESIS_ONLY", "counter,no/slash"),
            ("KINESIS_ONLY", ",,"),
            ("KINESIS_ONLY", "counter,_x"),
        ] {
            let err = with(&[(name, value)]).unwrap_err();
            assert!(matches!(err, Error::Config(_)), "{name}: {err}");
            assert!(err.to_string().contains(name), "{name}: {err}");
        }
        let err = with(&[("KINESIS_DB_PREVIOUS_ENCRYPT_KEYS", "a,b")]).unwrap_err();
        assert!(err.to_string().contains("KINESIS_DB_SYMMETRIC_ENCRYPT_KEY"), "{err}");
    }

    #[test]
    fn a_lookup_error_is_returned_as_is() {
        let err = Config::from_lookup(|name| {
            (name == "KINESIS_SHUTDOWN_TIMEOUT")
                .then(|| Err(Error::Config(format!("{name} broke"))))
        })
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            Error::Config("KINESIS_SHUTDOWN_TIMEOUT broke".into()).to_string()
        );
    }

    #[test]
    fn good_values_parse() {
        let key = Cipher::generate_key();
        let cfg = with(&[
            ("KINESIS_DB_CONNECTION", "memory://"),
            ("KINESIS_DB_SYMMETRIC_ENCRYPT_KEY", &key),
            ("KINESIS_SHUTDOWN_TIMEOUT", "1m"),
        ])
        .unwrap();
        assert_eq!(cfg.db_connection.as_deref(), Some("memory://"));
        assert_eq!(cfg.shutdown_timeout, Duration::from_secs(60));
        assert_eq!(
            with(&[("KINESIS_SHUTDOWN_TIMEOUT", "7")]).unwrap().shutdown_timeout,
            Duration::from_secs(7)
        );
        assert!(cfg.cipher().unwrap().is_some());
        assert_eq!(with(&[("KINESIS_TASK_WORKERS", " 3 ")]).unwrap().task_workers, 3);
        assert_eq!(cfg.only, None);
        assert_eq!(
            with(&[("KINESIS_ONLY", "notes, counter,notes")]).unwrap().only,
            Some(vec!["notes".to_owned(), "counter".to_owned()])
        );
        assert!(!format!("{cfg:?}").contains(&key));
    }

    #[test]
    fn the_table_lists_every_variable_read_here() {
        let names: Vec<&str> = VARIABLES.iter().map(|(n, _)| *n).collect();
        for name in [
            "KINESIS_DB_CONNECTION",
            "KINESIS_DB_SYMMETRIC_ENCRYPT_KEY",
            "KINESIS_DB_PREVIOUS_ENCRYPT_KEYS",
            "KINESIS_SHUTDOWN_TIMEOUT",
            "KINESIS_TASK_WORKERS",
            "KINESIS_ONLY",
        ] {
            assert!(names.contains(&name), "{name}");
        }
        assert!(!names
            .iter()
            .any(|n| n.starts_with("KINESIS_HTTP") || n.starts_with("KINESIS_LOG")));
    }
}
