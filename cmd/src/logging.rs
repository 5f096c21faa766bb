//! Logging of the `kinesis` binary: `KINESIS_LOG_LEVEL`, `KINESIS_LOG_FORMAT`
//! and the tracing subscriber they describe.
//!
//! | variable | accepts | default |
//! | --- | --- | --- |
//! | `KINESIS_LOG_LEVEL` | `off`, `error`, `warn`, `info`, `debug`, `trace`, or tracing filter directives such as `info,kinesis=debug` | `info` |
//! | `KINESIS_LOG_FORMAT` | `text`, `json` | `text` |
//!
//! As for [`kinesis::Config`], a bad value is an [`Error::Config`] naming the
//! variable and what it accepts; the binary prints it and exits with code 2.
//!
//! A bare word (a directive without `=`, `[` or `:`) must be one of
//! [`LEVELS`], in any case. `EnvFilter` would take any other word as a target
//! name, so that a typo such as `inof` would enable only the logs of a target
//! `inof` and silence everything else; and a word such as `kinesis` is
//! ambiguous. A target is written with its level: `kinesis=debug`.

use kinesis::config::{env_var, read};
use kinesis::{Error, Result};
use tracing_subscriber::EnvFilter;

/// The variables read here, with what each accepts (for `kinesis --help`).
pub const VARIABLES: &[(&str, &str)] = &[
    (
        "KINESIS_LOG_LEVEL",
        "off|error|warn|info|debug|trace, or filter directives such as info,kinesis=debug (default info)",
    ),
    ("KINESIS_LOG_FORMAT", "text|json (default text)"),
    #[cfg(feature = "otel")]
    (
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTLP/HTTP collector URL; spans are exported when set (feature otel)",
    ),
    #[cfg(feature = "otel")]
    ("OTEL_SERVICE_NAME", "service.name of exported spans (default kinesis)"),
];

/// The levels a bare word may name, least verbose first.
pub const LEVELS: [&str; 6] = ["off", "error", "warn", "info", "debug", "trace"];

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// The validated logging settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    /// The tracing filter (`KINESIS_LOG_LEVEL`), checked to parse.
    pub filter: String,
    /// The format (`KINESIS_LOG_FORMAT`).
    pub format: LogFormat,
    /// Where spans are exported (`OTEL_*`), with the `otel` feature.
    #[cfg(feature = "otel")]
    pub otel: Option<crate::otel::OtelConfig>,
}

impl Default for LogConfig {
    /// `info`, as text.
    fn default() -> Self {
        LogConfig {
            filter: "info".into(),
            format: LogFormat::Text,
            #[cfg(feature = "otel")]
            otel: None,
        }
    }
}

impl LogConfig {
    /// Reads and validates the process environment.
    pub fn from_env() -> Result<LogConfig> {
        LogConfig::from_lookup(env_var)
    }

    /// Reads and validates variables from `lookup` (for tests); the shape of
    /// [`kinesis::Config::from_lookup`].
    ///
    /// ```
    /// use kinesis::config::from_pairs;
    /// use kinesis_cmd::logging::{LogConfig, LogFormat};
    ///
    /// let cfg = LogConfig::from_lookup(from_pairs(&[
    ///     ("KINESIS_LOG_LEVEL", "info,kinesis=debug"),
    ///     ("KINESIS_LOG_FORMAT", "json"),
    /// ]))
    /// .unwrap();
    /// assert_eq!(cfg.filter, "info,kinesis=debug");
    /// assert_eq!(cfg.format, LogFormat::Json);
    ///
    /// let err = LogConfig::from_lookup(from_pairs(&[("KINESIS_LOG_FORMAT", "xml")])).unwrap_err();
    /// assert!(err.to_string().contains("KINESIS_LOG_FORMAT"));
    /// ```
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<Result<String>>) -> Result<LogConfig> {
        let mut cfg = LogConfig::default();
        if let Some(level) = read(&lookup, "KINESIS_LOG_LEVEL")? {
            check_filter(&level)?;
            cfg.filter = level;
        }
        if let Some(format) = read(&lookup, "KINESIS_LOG_FORMAT")? {
            cfg.format = match format.to_ascii_lowercase().as_str() {
                "text" => LogFormat::Text,
                "json" => LogFormat::Json,
                _ => {
                    return Err(Error::Config(format!(
                        "KINESIS_LOG_FORMAT=`{format}` is not valid; use text or json"
                    )))
                }
            };
        }
        #[cfg(feature = "otel")]
        {
            cfg.otel = crate::otel::OtelConfig::from_lookup(&lookup)?;
        }
        Ok(cfg)
    }

    /// Installs the global tracing subscriber these settings describe,
    /// writing to stderr (with colours only on a terminal), and with the
    /// `otel` feature exporting spans when `OTEL_EXPORTER_OTLP_ENDPOINT` is
    /// set (call [`shutdown`] before exiting). Does nothing if a global
    /// subscriber is installed already.
    pub fn init(&self) {
        use tracing_subscriber::layer::SubscriberExt;
        use tracing_subscriber::util::SubscriberInitExt;

        let filter = EnvFilter::try_new(&self.filter).unwrap_or_else(|_| EnvFilter::new("info"));
        let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
        let registry = tracing_subscriber::registry().with(filter);
        #[cfg(feature = "otel")]
        let registry = registry.with(self.otel.as_ref().and_then(|c| {
            crate::otel::layer(c)
                .map_err(|e| eprintln!("kinesis: spans are not exported: {e}"))
                .ok()
        }));
        let fmt = tracing_subscriber::fmt::layer().with_ansi(ansi).with_writer(std::io::stderr);
        let _ = match self.format {
            LogFormat::Text => registry.with(fmt).try_init(),
            LogFormat::Json => registry.with(fmt.json()).try_init(),
        };
    }
}

/// Flushes what the subscriber buffers (the spans not exported yet, with
/// the `otel` feature); call it before the process exits.
pub fn shutdown() {
    #[cfg(feature = "otel")]
    crate::otel::shutdown();
}

/// Checks that `filter` parses and that each of its bare words is a level.
fn check_filter(filter: &str) -> Result<()> {
    let levels = LEVELS.join(", ");
    let bare_words = filter.split(',').map(str::trim).filter(|d| !d.is_empty());
    for word in bare_words.filter(|d| !d.contains(['=', '[', ':'])) {
        if !LEVELS.iter().any(|level| level.eq_ignore_ascii_case(word)) {
            let which = if word == filter { String::new() } else { format!(": `{word}`") };
            return Err(Error::Config(format!(
                "KINESIS_LOG_LEVEL=`{filter}`{which} is not a level; use one of {levels}, \
                 or filter directives such as info,kinesis=debug (a target takes its level: kinesis=debug)"
            )));
        }
    }
    EnvFilter::try_new(filter).map(drop).map_err(|e| {
        Error::Config(format!(
            "KINESIS_LOG_LEVEL=`{filter}` is not valid ({e}); use one of {levels}, \
             or filter directives such as info,kinesis=debug"
        ))
    })
}

#[cfg(test)]
mod tests {
    use kinesis::config::from_pairs;

    use super::*;

    fn with(vars: &[(&str, &str)]) -> Result<LogConfig> {
        LogConfig::from_lookup(from_pairs(vars))
    }

    #[test]
    fn defaults_without_variables() {
        assert_eq!(with(&[]).unwrap(), LogConfig::default());
        assert_eq!(with(&[("KINESIS_LOG_LEVEL", " ")]).unwrap().filter, "info");
    }

    #[test]
    fn every_bad_value_names_its_variable() {
        for (name, value) in [
            ("KINESIS_LOG_LEVEL", "loud=="),
            ("KINESIS_LOG_LEVEL", "kinesis=inof"),
            ("KINESIS_LOG_LEVEL", "info,inof"),
            ("KINESIS_LOG_LEVEL", "kinesis=debug, loud"),
            ("KINESIS_LOG_FORMAT", "xml"),
        ] {
            let err = with(&[(name, value)]).unwrap_err();
            assert!(matches!(err, Error::Config(_)), "{name}: {err}");
            assert!(err.to_string().contains(name), "{name}: {err}");
        }
    }

    #[test]
    fn a_bare_word_that_is_not_a_level_is_refused_listing_the_levels() {
        for word in ["inof", "loud", "kinesis", "warning", "verbose", "kinesis_http"] {
            let err = with(&[("KINESIS_LOG_LEVEL", word)])
                .expect_err("a bare word that is not a level must be refused");
            assert!(matches!(err, Error::Config(_)), "{word}: {err}");
            let msg = err.to_string();
            assert!(
                msg.contains("KINESIS_LOG_LEVEL") && msg.contains(&format!("`{word}`")),
                "{msg}"
            );
            assert!(
                msg.contains("off, error, warn, info, debug, trace"),
                "lists the levels: {msg}"
            );
            assert!(msg.contains("=debug"), "shows how to write a target: {msg}");
        }
    }

    #[test]
    fn levels_in_any_case_and_real_directives_are_accepted() {
        for value in [
            "off",
            "error",
            "WARN",
            "Info",
            "debug",
            "trace",
            "kinesis=debug,info",
            "debug,hyper=warn",
            "kinesis_http=trace",
            "kinesis::runtime=debug",
            "info,kinesis[component]=debug",
            "warn,",
        ] {
            let cfg =
                with(&[("KINESIS_LOG_LEVEL", value)]).unwrap_or_else(|e| panic!("{value}: {e}"));
            assert_eq!(cfg.filter, value);
        }
    }

    #[test]
    fn formats_in_any_case() {
        assert_eq!(with(&[("KINESIS_LOG_FORMAT", "JSON")]).unwrap().format, LogFormat::Json);
        assert_eq!(with(&[("KINESIS_LOG_FORMAT", "Text")]).unwrap().format, LogFormat::Text);
    }

    #[test]
    fn the_table_lists_every_variable_read_here() {
        let names: Vec<&str> = VARIABLES.iter().map(|(n, _)| *n).collect();
        #[cfg(not(feature = "otel"))]
        assert_eq!(names, ["KINESIS_LOG_LEVEL", "KINESIS_LOG_FORMAT"]);
        #[cfg(feature = "otel")]
        assert_eq!(
            names,
            [
                "KINESIS_LOG_LEVEL",
                "KINESIS_LOG_FORMAT",
                "OTEL_EXPORTER_OTLP_ENDPOINT",
                "OTEL_SERVICE_NAME"
            ]
        );
    }
}
