//! Static API tokens: `KINESIS_AUTH_TOKENS_FILE`.
//!
//! One token per line, `NAME HASH SCOPE…`; blank lines and lines starting
//! with `#` are ignored:
//!
//! ```text
//! # name    hash                                                                     grants
//! deploy    sha256:5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8 control:/** read:/**
//! ```
//!
//! A token is `kns_` and 43 characters of base64url (32 random bytes); the
//! file keeps only its SHA-256 (a token is random, so a fast hash is enough:
//! there is nothing to guess from it). `kinesis token new NAME SCOPE…`
//! ([`new_token`]) prints a new token once, with the line to add.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use kinesis::{Error, Result};
use rand::RngCore;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::grants::Grants;
use super::identity::{AuthMethod, Identity};

/// Every token starts with this.
pub const TOKEN_PREFIX: &str = "kns_";

/// The tokens of a tokens file, by hash.
#[derive(Debug, Default)]
pub struct TokenFile {
    by_hash: HashMap<[u8; 32], Arc<Identity>>,
}

impl TokenFile {
    /// Reads and validates `path`; an error names the file and the line.
    pub fn load(path: &Path) -> Result<TokenFile> {
        let var = "KINESIS_AUTH_TOKENS_FILE";
        let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|e| {
            Error::Config(format!("{var}={}: cannot read the file: {e}", path.display()))
        })?);
        Self::parse(&text).map_err(|(line, why)| {
            Error::Config(format!("{var}={}, line {line}: {why}", path.display()))
        })
    }

    /// Parses the file's text; the error is (line number, reason).
    pub fn parse(text: &str) -> std::result::Result<TokenFile, (usize, String)> {
        let mut by_hash = HashMap::new();
        let mut names = std::collections::HashSet::new();
        for (i, line) in text.lines().enumerate() {
            let n = i + 1;
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let mut words = line.split_whitespace();
            let name = words.next().unwrap_or_default();
            if !valid_name(name) {
                return Err((
                    n,
                    format!("`{name}` is not a token name (letters, digits, `-`, `_`, `.`, `@`)"),
                ));
            }
            let hash = words.next().ok_or((n, "no hash after the name".to_owned()))?;
            let hash = parse_hash(hash).ok_or((
                n,
                "the hash must be `sha256:` and 64 hex digits (from `kinesis token new`); never put a token itself in the file".to_owned(),
            ))?;
            let scope: Vec<&str> = words.collect();
            if scope.is_empty() {
                return Err((n, format!("token `{name}` has no grants (such as read:/root/**)")));
            }
            let grants = Grants::parse(&scope.join(" ")).map_err(|e| (n, e))?;
            if !names.insert(name.to_owned()) {
                return Err((n, format!("the name `{name}` is used twice")));
            }
            let identity = Arc::new(Identity::new(name.to_owned(), grants, AuthMethod::Token));
            if by_hash.insert(hash, identity).is_some() {
                return Err((n, "the same token hash is listed twice".to_owned()));
            }
        }
        Ok(TokenFile { by_hash })
    }

    /// The identity of `token`, if it is in the file.
    pub fn verify(&self, token: &str) -> Option<Arc<Identity>> {
        self.by_hash.get(&digest(token)).cloned()
    }

    /// How many tokens the file holds.
    pub fn len(&self) -> usize {
        self.by_hash.len()
    }

    /// Whether the file holds no token.
    pub fn is_empty(&self) -> bool {
        self.by_hash.is_empty()
    }
}

/// A new token for `name` with `grants` (space-separated): the token, to
/// print once, and the line to add to the tokens file.
///
/// ```
/// let (token, line) = kinesis_http::security::new_token("ci", "read:/root/**").unwrap();
/// assert!(token.starts_with("kns_"));
/// assert!(line.starts_with("ci sha256:") && line.ends_with(" read:/root/**"));
/// assert!(!line.contains(token.as_str()));
/// let file = kinesis_http::security::TokenFile::parse(&line).unwrap();
/// assert_eq!(file.verify(&token).unwrap().subject, "ci");
/// ```
pub fn new_token(name: &str, grants: &str) -> Result<(Zeroizing<String>, String)> {
    if !valid_name(name) {
        return Err(Error::Config(format!(
            "`{name}` is not a token name (letters, digits, `-`, `_`, `.`, `@`)"
        )));
    }
    let grants = Grants::parse(grants).map_err(Error::Config)?;
    if grants.iter().next().is_none() {
        return Err(Error::Config(
            "a token needs at least one grant, such as read:/root/**".into(),
        ));
    }
    let mut bytes = Zeroizing::new([0u8; 32]);
    rand::rngs::OsRng.fill_bytes(bytes.as_mut());
    let token = Zeroizing::new(format!("{TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes.as_ref())));
    let line = format!("{name} sha256:{} {grants}", hex(&digest(&token)));
    Ok((token, line))
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn parse_hash(text: &str) -> Option<[u8; 32]> {
    let hex = text.strip_prefix("sha256:")?;
    if hex.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.@".contains(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_with_comments_and_two_tokens() {
        let (a, line_a) = new_token("deploy", "control:/** read:/**").unwrap();
        let (b, line_b) = new_token("reader", "read:/root/**").unwrap();
        let text = format!("# tokens\n\n{line_a}\n   {line_b}  \n");
        let file = TokenFile::parse(&text).unwrap();
        assert_eq!(file.len(), 2);
        assert_eq!(file.verify(&a).unwrap().subject, "deploy");
        assert_eq!(file.verify(&b).unwrap().subject, "reader");
        assert!(file.verify("kns_guess").is_none());
        assert!(!text.contains(a.as_str()) && !text.contains(b.as_str()));
    }

    #[test]
    fn bad_lines_name_their_line_and_why() {
        let good_hash = format!("sha256:{}", "ab".repeat(32));
        for (text, line, fragment) in [
            ("bad/name x read".to_owned(), 1, "not a token name"),
            ("\nci".to_owned(), 2, "no hash"),
            ("ci kns_plaintexttoken read".to_owned(), 1, "never put a token"),
            (format!("ci {good_hash}"), 1, "no grants"),
            (format!("ci {good_hash} delete:/x"), 1, "unknown verb"),
            (format!("a {good_hash} read\nb {good_hash} read"), 2, "twice"),
            (format!("a {good_hash} read\na sha256:{} read", "cd".repeat(32)), 2, "used twice"),
        ] {
            let (n, why) = TokenFile::parse(&text).unwrap_err();
            assert_eq!(n, line, "{text}: {why}");
            assert!(why.contains(fragment), "{text}: {why}");
        }
    }

    #[test]
    fn new_tokens_are_random_and_refuse_bad_input() {
        let (a, _) = new_token("x", "read").unwrap();
        let (b, _) = new_token("x", "read").unwrap();
        assert_ne!(*a, *b);
        assert_eq!(a.len(), TOKEN_PREFIX.len() + 43);
        assert!(new_token("x y", "read").is_err());
        assert!(new_token("x", "").is_err());
        assert!(new_token("x", "root").is_err());
    }
}
