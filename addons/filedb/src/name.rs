//! URIs as the store takes them, and the file names of the former
//! file-per-record format.
//!
//! The log stores a URI as it is, so any non-empty URI of at most
//! [`MAX_URI_BYTES`] bytes is taken ([`check`]).
//!
//! The former format named each record's file after its URI: every byte of
//! the URI's UTF-8 that is an ASCII letter or digit, `_`, `~` or `-` stood
//! for itself; every other byte, `/`, `.` and `%` included, became `%` and
//! two upper-case hex digits (`/root/a.b` was `%2Froot%2Fa%2Eb.json`).
//! [`decode`] reads such names when a directory of that format is converted;
//! only canonical names decode, so files of other programs are never taken
//! for records.

use kinesis::persist::StoreError;

/// The longest URI the store takes, in bytes of UTF-8.
pub(crate) const MAX_URI_BYTES: usize = 4096;

/// The longest encoded name of the former format.
const MAX_ENCODED: usize = 250;

/// `Ok` when `uri` can be stored; [`StoreError::InvalidKey`] when it is
/// empty or longer than [`MAX_URI_BYTES`].
pub(crate) fn check(uri: &str) -> Result<(), StoreError> {
    if uri.is_empty() {
        return Err(StoreError::InvalidKey("\"\": the URI is empty".into()));
    }
    if uri.len() > MAX_URI_BYTES {
        return Err(StoreError::InvalidKey(format!(
            "{}: it is {} bytes long, the file store takes at most {MAX_URI_BYTES}",
            shorten(uri),
            uri.len()
        )));
    }
    Ok(())
}

fn is_plain(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'_' | b'~' | b'-')
}

/// The URI a stem stands for, or `None` when `stem` is not exactly what
/// the former format made of some URI (a foreign file).
pub(crate) fn decode(stem: &str) -> Option<String> {
    if stem.is_empty() || stem.len() > MAX_ENCODED {
        return None;
    }
    let bytes = stem.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let byte = bytes[i];
        if is_plain(byte) {
            out.push(byte);
            i += 1;
        } else if byte == b'%' {
            let (hi, lo) = (hex_value(*bytes.get(i + 1)?)?, hex_value(*bytes.get(i + 2)?)?);
            let decoded = (hi << 4) | lo;
            if is_plain(decoded) {
                return None;
            }
            out.push(decoded);
            i += 3;
        } else {
            return None;
        }
    }
    String::from_utf8(out).ok()
}

fn hex_value(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'A'..=b'F' => Some(digit - b'A' + 10),
        _ => None,
    }
}

/// `uri` for an error message: quoted and escaped, at most about 80 characters.
pub(crate) fn shorten(uri: &str) -> String {
    const KEEP: usize = 80;
    if uri.chars().count() <= KEEP {
        format!("{uri:?}")
    } else {
        let head: String = uri.chars().take(KEEP).collect();
        format!("{head:?}… ({} bytes)", uri.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &[u8; 16] = b"0123456789ABCDEF";

    /// The former format's encoding (the inverse of [`decode`]).
    fn encode(uri: &str) -> String {
        let mut out = String::with_capacity(uri.len());
        for &byte in uri.as_bytes() {
            if is_plain(byte) {
                out.push(char::from(byte));
            } else {
                out.push('%');
                out.push(char::from(HEX[usize::from(byte >> 4)]));
                out.push(char::from(HEX[usize::from(byte & 0x0f)]));
            }
        }
        out
    }

    #[test]
    fn the_uri_must_be_non_empty_and_at_most_4096_bytes() {
        assert!(check("/").is_ok());
        assert!(check(&"é".repeat(MAX_URI_BYTES / 2)).is_ok());
        assert!(matches!(check(""), Err(StoreError::InvalidKey(_))));
        let err = check(&"a".repeat(MAX_URI_BYTES + 1)).unwrap_err();
        assert!(err.to_string().contains("4097 bytes"), "{err}");
        assert!(err.to_string().len() < 300, "{err}");
    }

    #[test]
    fn decoding_inverts_the_former_encoding() {
        assert_eq!(encode("/root/a.b_c~d-E9"), "%2Froot%2Fa%2Eb_c~d-E9");
        for uri in ["/root/a.b_c~d-E9", "..", "/", "a\0b", "%2F", "/é/中/🦀", " ", "\\x"] {
            let stem = encode(uri);
            assert!(!stem.contains(['/', '.', '\0']), "{stem}");
            assert_eq!(decode(&stem).as_deref(), Some(uri), "{stem}");
        }
        assert!(decode(&"a".repeat(MAX_ENCODED + 1)).is_none());
    }

    #[test]
    fn only_canonical_names_decode() {
        for foreign in
            ["", "%2f", "%2", "%", "%G0", "a.b", "a/b", "%41", "%C3", "x%", "x%2", "%2Fa b", "%FF"]
        {
            assert_eq!(decode(foreign), None, "{foreign:?}");
        }
    }

    #[test]
    fn long_uris_are_shortened_in_messages() {
        let long = "x".repeat(10_000);
        let shown = shorten(&long);
        assert!(shown.len() < 120, "{shown}");
        assert!(shown.contains("10000 bytes"));
        assert_eq!(shorten("a\0b"), "\"a\\0b\"");
    }
}
