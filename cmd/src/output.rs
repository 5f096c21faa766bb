//! What the commands print, and how they fail: human text or `--json`,
//! aligned tables, errors on stderr and the exit codes.
//!
//! | exit | meaning |
//! | --- | --- |
//! | 0 | done |
//! | 1 | the server answered with a failure (not found, conflict, refused token, …) |
//! | 2 | usage: the command line does not fit, or the configuration (a bad `--url`) |
//! | 3 | the runtime cannot be reached |

use std::io::Write;
use std::process::ExitCode;

use kinesis::{Error, ErrorKind};
use serde_json::{json, Value};

/// Why a command failed.
#[derive(Debug)]
pub(crate) enum Failure {
    /// The command line does not fit what the command (or the method
    /// table) expects: exit 2.
    Usage(String),
    /// The client's or the runtime's error.
    Remote(Error),
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Failure::Remote(e)
    }
}

impl Failure {
    /// The process exit code for this failure.
    pub(crate) fn exit_code(&self) -> u8 {
        match self {
            Failure::Usage(_) => 2,
            Failure::Remote(e) => match e.kind() {
                ErrorKind::Unreachable => 3,
                ErrorKind::Config => 2,
                _ => 1,
            },
        }
    }

    /// Prints the failure on stderr (a JSON object with `--json`) and
    /// answers the exit code.
    pub(crate) fn report(&self, json: bool) -> ExitCode {
        let code = self.exit_code();
        let (kind, message) = match self {
            Failure::Usage(message) => ("usage", message.clone()),
            Failure::Remote(e) => (e.kind().name(), e.to_string()),
        };
        let mut stderr = std::io::stderr().lock();
        if json {
            let mut object = json!({ "kind": kind, "message": message, "exit": code });
            if let Failure::Remote(Error::Conflict { current }) = self {
                object["current_etag"] = json!(current);
            }
            let _ = writeln!(stderr, "{object}");
        } else {
            let _ = writeln!(stderr, "kinesis: {message}");
        }
        ExitCode::from(code)
    }
}

/// How a command prints what it got.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Output {
    /// `--json`: one JSON document on stdout.
    pub(crate) json: bool,
}

impl Output {
    /// Prints `human` as it is, or `document` as one line of JSON with
    /// `--json`.
    pub(crate) fn either(&self, human: impl FnOnce() -> String, document: &Value) {
        if self.json {
            self.line(&document.to_string());
        } else {
            self.line(human().trim_end());
        }
    }

    /// Prints one line on stdout. A closed pipe (`| head`) is not an error
    /// worth a panic: the rest is dropped.
    pub(crate) fn line(&self, text: &str) {
        let _ = self.try_line(text);
    }

    /// Prints one line on stdout and flushes it; an error when stdout is
    /// gone.
    pub(crate) fn try_line(&self, text: &str) -> std::io::Result<()> {
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "{text}")?;
        stdout.flush()
    }

    /// A note for a person, on stderr (never with `--json`).
    pub(crate) fn note(&self, text: &str) {
        if !self.json {
            eprintln!("{text}");
        }
    }
}

/// `value` as indented JSON.
pub(crate) fn pretty(value: &Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
}

/// A plain-text table: a header and rows, columns padded to the widest
/// cell, the last column not padded.
pub(crate) fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let header: Vec<String> = header.iter().map(|h| (*h).to_owned()).collect();
    for row in std::iter::once(&header).chain(rows) {
        let last = row.len().saturating_sub(1);
        for (i, cell) in row.iter().enumerate() {
            if i == last {
                out.push_str(cell);
            } else {
                out.push_str(&format!("{cell:<w$}  ", w = widths[i]));
            }
        }
        out.push('\n');
    }
    out
}

/// The text of a JSON string, or the JSON of anything else (for cells).
pub(crate) fn cell(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => "-".to_owned(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_columns() {
        let text = table(
            &["URI", "STAGE", "V"],
            &[
                vec!["/root".into(), "started".into(), "1".into()],
                vec!["/root/counter".into(), "stopped".into(), "12".into()],
            ],
        );
        assert_eq!(
            text,
            "URI            STAGE    V\n/root          started  1\n/root/counter  stopped  12\n"
        );
    }

    #[test]
    fn exit_codes_follow_the_kind() {
        assert_eq!(Failure::Usage("x".into()).exit_code(), 2);
        assert_eq!(Failure::Remote(Error::NotFound("x".into())).exit_code(), 1);
        assert_eq!(Failure::Remote(Error::Unauthenticated("x".into())).exit_code(), 1);
        assert_eq!(Failure::Remote(Error::Unreachable("x".into())).exit_code(), 3);
        assert_eq!(Failure::Remote(Error::Config("x".into())).exit_code(), 2);
    }
}
