//! [`Instance`]: one runtime that can be reached by name, and the rules for
//! its name.

use kinesis::{Error, Result};
use serde::{Deserialize, Serialize};

/// The longest instance name.
pub const MAX_NAME_LEN: usize = 64;

/// Checks an instance name: 1 to 64 ASCII letters, digits, `-` or `_`.
/// Names travel in NATS subjects and metadata, and on the command line, so
/// nothing else is allowed.
pub fn validate_instance_name(name: &str) -> Result<()> {
    let valid = !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if valid {
        Ok(())
    } else {
        Err(Error::Invalid(format!(
            "`{name}` is not an instance name: use 1 to {MAX_NAME_LEN} ASCII letters, digits, `-` or `_`"
        )))
    }
}

/// A runtime found by [`Directory`](crate::Directory).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Instance {
    /// The name it was started with (`KINESIS_INSTANCE`) or listed under
    /// (`KINESIS_PEERS`).
    pub name: String,
    /// Where it is reached, preferred first: `http://…`, `https://…`,
    /// `unix:/path`.
    pub urls: Vec<String>,
    /// How it was found: `nats` (it answered) or `peers` (the static list).
    pub source: Source,
    /// Its NATS service instance id; `None` for a static peer.
    pub id: Option<String>,
    /// The kinesis version it runs; `None` for a static peer.
    pub version: Option<String>,
    /// The components it holds (URIs, depth first), as it answered; `None`
    /// when it could not be asked.
    pub components: Option<Vec<String>>,
}

impl Instance {
    /// The URL to reach it at: the first of [`urls`](Self::urls).
    pub fn url(&self) -> Result<&str> {
        self.urls.first().map(String::as_str).ok_or_else(|| {
            Error::Unreachable(format!("instance `{}` announced no address", self.name))
        })
    }

    /// Whether it holds the component at `uri`, as far as is known
    /// (`None`: its components are unknown).
    pub fn holds(&self, uri: &str) -> Option<bool> {
        self.components.as_ref().map(|c| c.iter().any(|u| u == uri))
    }
}

/// How an [`Instance`] was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// It answered a NATS `$SRV.INFO` request.
    Nats,
    /// It is listed in `KINESIS_PEERS`.
    Peers,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instance_names_are_subject_safe() {
        for good in ["orders", "orders-2", "a_b", "A1"] {
            validate_instance_name(good).unwrap();
        }
        let long = "x".repeat(MAX_NAME_LEN + 1);
        for bad in ["", "a.b", "a b", "a*", ">", "ä", long.as_str()] {
            let err = validate_instance_name(bad).unwrap_err();
            assert!(matches!(err, Error::Invalid(_)), "{bad}: {err}");
        }
    }
}
