//! The command line of `kinesis`, declared with clap: the commands, their
//! options, and the parsers that check every URI, method name and argument
//! before anything is sent.

use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use kinesis::ETag;

/// `kinesis`: run a runtime, or talk to a running one.
#[derive(Debug, Parser)]
#[command(
    name = "kinesis",
    version,
    about = "Event-driven components with lifecycle, ETags and persistence.",
    long_about = "Event-driven components with lifecycle, ETags and persistence.\n\n\
                  `kinesis` alone (or `kinesis serve`) runs the runtime; the other commands \
                  talk to a running one over HTTP (--url, --token)."
)]
pub(crate) struct Cli {
    /// Where and how to reach a running runtime.
    #[command(flatten)]
    pub(crate) remote: RemoteArgs,
    /// What to do; `serve` when none is given.
    #[command(subcommand)]
    pub(crate) command: Option<Command>,
}

/// The options of every command that talks to a running runtime.
#[derive(Debug, Args)]
pub(crate) struct RemoteArgs {
    /// The runtime to talk to: http://HOST:PORT, https://…, or
    /// unix:/path/to.sock for one listening on a Unix socket.
    #[arg(long, global = true, env = "KINESIS_URL", value_name = "URL",
          default_value = kinesis_client::DEFAULT_URL)]
    pub(crate) url: String,
    /// Reach the instance called NAME instead of --url: found in
    /// KINESIS_PEERS, or over NATS (KINESIS_EVENTS_URL) when built with it.
    #[arg(long, global = true, value_name = "NAME", value_parser = instance_name,
          conflicts_with = "url")]
    pub(crate) instance: Option<String>,
    /// The bearer token to send (never printed). Prefer KINESIS_TOKEN:
    /// arguments show in the process list.
    #[arg(
        long,
        global = true,
        env = "KINESIS_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true,
        value_parser = secret
    )]
    pub(crate) token: Option<Secret>,
    /// Machine output: one JSON document on stdout (JSON lines for `watch`),
    /// errors as a JSON object on stderr.
    #[arg(long, global = true)]
    pub(crate) json: bool,
    /// How long one request may take.
    #[arg(long, global = true, value_name = "DURATION", default_value = "30s",
          value_parser = duration)]
    pub(crate) timeout: Duration,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Run the runtime with the demo application (the default).
    Serve {
        /// Run only these components (comma separated names, as KINESIS_ONLY).
        #[arg(long, value_name = "NAMES", value_delimiter = ',', value_parser = name)]
        only: Option<Vec<String>>,
    },
    /// The component tree as a table: uri, type, stage, version, restarts.
    Ps,
    /// A component's state (and, with --json, its meta); remembers its ETag
    /// for a later `put`.
    Get {
        /// The component, a path from the root such as /root/counter.
        #[arg(value_parser = component_uri)]
        uri: String,
    },
    /// Replaces a component's state with the JSON in FILE (`-`: standard
    /// input), if it is still at the ETag of the last `get` or --if-match.
    Put {
        /// The component.
        #[arg(value_parser = component_uri)]
        uri: String,
        /// A file with the new state as JSON, or `-` for standard input.
        file: String,
        /// The ETag the state must still be at (`*`: whatever it is).
        #[arg(long, value_name = "ETAG", value_parser = if_match)]
        if_match: Option<IfMatch>,
    },
    /// Applies a JSON merge patch (RFC 7396) to a component's state.
    Patch {
        /// The component.
        #[arg(value_parser = component_uri)]
        uri: String,
        /// The patch, a JSON object.
        #[arg(value_parser = json_value)]
        patch: serde_json::Value,
        /// Apply only if the state is still at this ETag.
        #[arg(long, value_name = "ETAG", value_parser = if_match)]
        if_match: Option<IfMatch>,
    },
    /// Calls a method: `key=value` is typed by the method's declared
    /// argument type (`by=3` for a u64 sends the number 3), `key:=JSON`
    /// sends raw JSON.
    Call {
        /// The component.
        #[arg(value_parser = component_uri)]
        uri: String,
        /// The method's name.
        #[arg(value_parser = method_name)]
        method: String,
        /// The arguments, `key=value` or `key:=JSON`.
        #[arg(value_name = "KEY=VALUE", value_parser = call_arg)]
        args: Vec<CallArg>,
        /// Call only if the state is still at this ETag.
        #[arg(long, value_name = "ETAG", value_parser = if_match)]
        if_match: Option<IfMatch>,
    },
    /// Prints a component's changes as they come, until ctrl-c or until
    /// the component goes away.
    Watch {
        /// The component.
        #[arg(value_parser = component_uri)]
        uri: String,
        /// Start after this version instead of with a snapshot.
        #[arg(long, value_name = "VERSION")]
        since: Option<u64>,
    },
    /// Stops a component for good.
    Stop {
        /// The component.
        #[arg(value_parser = component_uri)]
        uri: String,
    },
    /// Restarts a component (stop, then start), keeping its state.
    Restart {
        /// The component.
        #[arg(value_parser = component_uri)]
        uri: String,
        /// Stop now and start again after this long (`5s`, `250ms`).
        #[arg(long, value_name = "DURATION", value_parser = duration)]
        after: Option<Duration>,
    },
    /// The runtime's tasks as a table: id, name, owner, state, progress.
    Tasks,
    /// The instances that can be reached by name: those in KINESIS_PEERS,
    /// and those that answer over NATS (KINESIS_EVENTS_URL).
    Instances {
        /// How long to wait for instances to answer over NATS.
        #[arg(long, value_name = "DURATION", default_value = "300ms", value_parser = duration)]
        wait: Duration,
    },
    /// API tokens for the HTTP add-on.
    Token {
        /// What to do with tokens.
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Prints a completion script for a shell (`kinesis completions bash >
    /// /etc/bash_completion.d/kinesis`).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

/// `kinesis token …`.
#[derive(Debug, Subcommand)]
pub(crate) enum TokenCommand {
    /// Prints a new token (once) and the line for KINESIS_AUTH_TOKENS_FILE,
    /// which keeps only its hash.
    New {
        /// Who the token is for (letters, digits, `.`, `_`, `-`).
        name: String,
        /// Its grants, VERB:PATTERN, such as read:/root/** write:/root/counter.
        #[arg(required = true, value_name = "GRANT")]
        grants: Vec<String>,
    },
}

/// A bearer token: its `Debug` does not show it.
#[derive(Clone)]
pub(crate) struct Secret(String);

impl Secret {
    /// The token itself, to hand to the client.
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// The state a write must still be at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IfMatch {
    /// `*`: whatever it is (a deliberate blind write).
    Any,
    /// This ETag.
    Tag(ETag),
}

/// One `key=value` (typed by the method table) or `key:=JSON` argument.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct CallArg {
    /// The argument's name.
    pub(crate) key: String,
    /// Its value as given.
    pub(crate) value: ArgValue,
}

/// The value of a [`CallArg`].
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ArgValue {
    /// `key=text`: converted by the declared type.
    Text(String),
    /// `key:=json`: sent as it is.
    Json(serde_json::Value),
}

/// A duration such as `5s`, `250ms` or `1m`.
fn duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text)
        .map_err(|e| format!("`{text}` is not a duration such as 5s or 250ms: {e}"))
}

/// A token, kept out of `Debug`.
fn secret(text: &str) -> Result<Secret, String> {
    Ok(Secret(text.to_owned()))
}

/// The runtime's URL. Credentials in it are refused: errors print the URL,
/// and the token belongs in --token or KINESIS_TOKEN. (Checked when the
/// client is made, not by clap, whose errors would echo the value.)
pub(crate) fn runtime_url(text: &str) -> Result<String, String> {
    let authority = text.split_once("://").map_or(text, |(_, rest)| rest);
    let authority = authority.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.contains('@') {
        return Err("the URL carries credentials; give the token with KINESIS_TOKEN \
                    (or --token) instead"
            .to_owned());
    }
    Ok(text.to_owned())
}

/// A component name (RFC 3986 unreserved characters).
fn name(text: &str) -> Result<String, String> {
    kinesis::validate_name(text).map_err(|e| e.to_string())?;
    Ok(text.to_owned())
}

/// An instance name (`--instance`).
fn instance_name(text: &str) -> Result<String, String> {
    kinesis_discovery::validate_instance_name(text).map_err(|e| e.to_string())?;
    Ok(text.to_owned())
}

/// A component URI: `/` then names separated by `/`.
pub(crate) fn component_uri(text: &str) -> Result<String, String> {
    let Some(path) = text.strip_prefix('/') else {
        return Err(format!(
            "`{text}` is not a component URI: it starts with `/`, as /root/counter"
        ));
    };
    for segment in path.split('/') {
        kinesis::validate_name(segment)
            .map_err(|e| format!("`{text}` is not a component URI: {e}"))?;
    }
    Ok(text.to_owned())
}

/// A method name: a name that does not start with `_` (those are the
/// runtime's own members).
fn method_name(text: &str) -> Result<String, String> {
    if text.starts_with('_') {
        return Err(format!("`{text}`: names starting with `_` are the runtime's, not methods"));
    }
    name(text)
}

/// `key=value` or `key:=JSON`.
fn call_arg(text: &str) -> Result<CallArg, String> {
    let Some(at) = text.find('=') else {
        return Err(format!("`{text}` is not key=value or key:=JSON"));
    };
    let (key, value) = (&text[..at], &text[at + 1..]);
    let (key, value) = match key.strip_suffix(':') {
        Some(key) => (key, ArgValue::Json(json_value(value)?)),
        None => (key, ArgValue::Text(value.to_owned())),
    };
    if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(format!("`{key}` is not an argument name (letters, digits and `_`)"));
    }
    Ok(CallArg { key: key.to_owned(), value })
}

/// A JSON document.
fn json_value(text: &str) -> Result<serde_json::Value, String> {
    serde_json::from_str(text).map_err(|e| format!("`{text}` is not JSON: {e}"))
}

/// An ETag (32 hex digits, quoted or not) or `*`.
fn if_match(text: &str) -> Result<IfMatch, String> {
    if text.trim() == "*" {
        return Ok(IfMatch::Any);
    }
    text.parse().map(IfMatch::Tag).map_err(|e: kinesis::Error| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_declaration_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn tokens_stay_out_of_debug_and_urls() {
        let cli = Cli::try_parse_from(["kinesis", "--token", "kns_secret", "ps"]).unwrap();
        assert_eq!(cli.remote.token.as_ref().unwrap().expose(), "kns_secret");
        assert!(!format!("{cli:?}").contains("kns_secret"));
        assert!(runtime_url("http://127.0.0.1:8080/x").is_ok());
        assert!(runtime_url("unix:/run/kinesis.sock").is_ok());
        for bad in ["http://user:kns_secret@host", "https://t@host:1/"] {
            let e = runtime_url(bad).unwrap_err();
            assert!(!e.contains("kns_secret"), "{e}");
        }
    }

    #[test]
    fn uris_and_names_are_checked() {
        assert!(component_uri("/root/counter").is_ok());
        for bad in ["root", "/root/", "//x", "/root/a b", "/root/é", ""] {
            assert!(component_uri(bad).is_err(), "{bad}");
        }
        assert!(method_name("increment").is_ok());
        assert!(method_name("_control").is_err());
        assert!(method_name("a/b").is_err());
    }

    #[test]
    fn call_args_split_text_and_json() {
        assert_eq!(
            call_arg("by=3").unwrap(),
            CallArg { key: "by".into(), value: ArgValue::Text("3".into()) }
        );
        assert_eq!(
            call_arg("text=a=b").unwrap(),
            CallArg { key: "text".into(), value: ArgValue::Text("a=b".into()) }
        );
        assert_eq!(
            call_arg("tags:=[1,2]").unwrap(),
            CallArg { key: "tags".into(), value: ArgValue::Json(serde_json::json!([1, 2])) }
        );
        for bad in ["by", "=3", "b y=3", "x:=nope"] {
            assert!(call_arg(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn if_match_takes_a_tag_or_a_star() {
        assert_eq!(if_match("*").unwrap(), IfMatch::Any);
        let tag = ETag::of(b"{}", None);
        assert_eq!(if_match(&format!("\"{tag}\"")).unwrap(), IfMatch::Tag(tag));
        assert!(if_match("nope").is_err());
    }
}
