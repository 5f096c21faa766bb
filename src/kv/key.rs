//! What a key (and a prefix) of the [key-value store](super) may look like.

use crate::{Error, Result};

/// The characters a key may hold besides ASCII letters and digits.
///
/// `/` is the usual separator of a hierarchy (`app/db/url`) that
/// [`list`](super::Kv::list) and prefix watches select by; the others are
/// RFC 3986 unreserved or common in keys, and none needs escaping in a path
/// segment or quoting in a shell.
pub const KEY_PUNCTUATION: &str = "-._~/:@+=,";

/// Checks `key`: 1 to `max_bytes` bytes of ASCII letters, digits and
/// [`KEY_PUNCTUATION`]. Control characters, spaces and non-ASCII text are
/// refused, so a key reads the same in a log line, a URL and a terminal.
///
/// ```
/// use kinesis::kv::validate_key;
/// assert!(validate_key("app/db/url", 256).is_ok());
/// assert!(validate_key("", 256).is_err());
/// assert!(validate_key("a\nb", 256).is_err());
/// assert!(validate_key("a b", 256).is_err());
/// assert!(validate_key(&"k".repeat(257), 256).is_err());
/// ```
pub fn validate_key(key: &str, max_bytes: usize) -> Result<()> {
    if key.is_empty() {
        return Err(Error::invalid("a key must not be empty"));
    }
    check("key", key, max_bytes)
}

/// Checks a prefix: as [`validate_key`], but it may be empty (everything).
pub(crate) fn validate_prefix(prefix: &str, max_bytes: usize) -> Result<()> {
    check("prefix", prefix, max_bytes)
}

fn check(what: &str, text: &str, max_bytes: usize) -> Result<()> {
    if text.len() > max_bytes {
        return Err(Error::invalid(format!(
            "a {what} may be at most {max_bytes} bytes long, this one has {}",
            text.len()
        )));
    }
    if let Some((at, c)) = text
        .char_indices()
        .find(|(_, c)| !(c.is_ascii_alphanumeric() || KEY_PUNCTUATION.contains(*c)))
    {
        let shown = if c.is_control() || c.is_whitespace() {
            format!("{:?}", c.escape_default().to_string())
        } else {
            format!("`{c}`")
        };
        return Err(Error::invalid(format!(
            "a {what} may hold only ASCII letters, digits and `{KEY_PUNCTUATION}`; \
             character {shown} at byte {at} is not allowed"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_prefixes() {
        assert!(validate_key("a-Z_0.9~x/y:z@w+v=u,t", 64).is_ok());
        assert!(validate_prefix("", 64).is_ok());
        for bad in ["", " ", "a\u{0}", "a\u{7f}", "é", "a?b", "a#b", "a%20", "a\tb"] {
            assert!(validate_key(bad, 64).is_err(), "{bad:?}");
        }
        let err = validate_key("a\u{1}b", 64).unwrap_err().to_string();
        assert!(err.contains("byte 1"), "{err}");
        assert!(validate_key(&"k".repeat(64), 64).is_ok());
        assert!(validate_key(&"k".repeat(65), 64).is_err());
    }
}
