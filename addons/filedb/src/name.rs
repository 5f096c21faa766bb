//! File names of records: a reversible encoding of a URI into one name.
//!
//! Every byte of the URI's UTF-8 that is an ASCII letter or digit, `_`, `~`
//! or `-` stands for itself; every other byte, `/`, `.` and `%` included,
//! becomes `%` and two upper-case hex digits. So `/root/a.b` is stored as
//! `%2Froot%2Fa%2Eb.json`.
//!
//! What follows from that rule:
//! * a name never contains `/`, NUL or `.`, so it is never `.` or `..`, never
//!   names a sub-directory, and always stays inside the data directory;
//! * the suffixes (`.json`, `.tmp`, `.lock`) cannot be confused with the name;
//! * decoding is exact, and only canonical names decode, so two different
//!   names never stand for one URI;
//! * a byte-wise prefix of the URI encodes to a prefix of the name.

use kinesis::persist::StoreError;

/// The longest file name most file systems take (ext4, XFS, btrfs, APFS).
pub(crate) const MAX_FILE_NAME: usize = 255;

/// Suffix of a record's file.
pub(crate) const RECORD_SUFFIX: &str = ".json";
/// Suffix of the temporary file a record is written to before the rename.
pub(crate) const TEMP_SUFFIX: &str = ".tmp";
/// Suffix of a record's lock file.
pub(crate) const LOCK_SUFFIX: &str = ".lock";

/// The longest encoded URI: room for the longest suffix.
pub(crate) const MAX_ENCODED: usize = MAX_FILE_NAME - longest_suffix();

const fn longest_suffix() -> usize {
    let (a, b, c) = (RECORD_SUFFIX.len(), TEMP_SUFFIX.len(), LOCK_SUFFIX.len());
    let ab = if a > b { a } else { b };
    if ab > c {
        ab
    } else {
        c
    }
}

const HEX: &[u8; 16] = b"0123456789ABCDEF";

fn is_plain(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'_' | b'~' | b'-')
}

/// The file name stem of `uri`, or [`StoreError::InvalidKey`] when the URI
/// is empty or its encoding is longer than [`MAX_ENCODED`] bytes.
pub(crate) fn encode(uri: &str) -> Result<String, StoreError> {
    if uri.is_empty() {
        return Err(StoreError::InvalidKey("\"\": the URI is empty".into()));
    }
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
    if out.len() > MAX_ENCODED {
        return Err(StoreError::InvalidKey(format!(
            "{}: its file name would be {} bytes, the file store takes at most {MAX_ENCODED} \
             (letters, digits, `_`, `~` and `-` take one byte each, any other byte three)",
            shorten(uri),
            out.len()
        )));
    }
    Ok(out)
}

/// The URI a stem stands for, or `None` when `stem` is not exactly what
/// [`encode`] makes of some URI (a foreign file).
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

    #[test]
    fn plain_characters_stay_and_others_are_escaped() {
        assert_eq!(encode("/root/a.b_c~d-E9").unwrap(), "%2Froot%2Fa%2Eb_c~d-E9");
        assert_eq!(encode("..").unwrap(), "%2E%2E");
        assert_eq!(encode("a\0b").unwrap(), "a%00b");
        assert_eq!(encode("%").unwrap(), "%25");
        assert_eq!(encode("é").unwrap(), "%C3%A9");
        assert!(matches!(encode(""), Err(StoreError::InvalidKey(_))));
    }

    #[test]
    fn decoding_inverts_encoding() {
        for uri in ["/root/a.b_c~d-E9", "..", "/", "a\0b", "%2F", "/é/中/🦀", " ", "\\x"] {
            let stem = encode(uri).unwrap();
            assert!(!stem.contains(['/', '.', '\0']), "{stem}");
            assert_eq!(decode(&stem).as_deref(), Some(uri), "{stem}");
        }
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
    fn the_length_limit_counts_encoded_bytes() {
        assert_eq!(MAX_ENCODED, 250);
        assert!(encode(&"a".repeat(MAX_ENCODED)).is_ok());
        assert!(matches!(encode(&"a".repeat(MAX_ENCODED + 1)), Err(StoreError::InvalidKey(_))));
        assert!(encode(&"/".repeat(MAX_ENCODED / 3)).is_ok());
        let err = encode(&"/".repeat(MAX_ENCODED / 3 + 1)).unwrap_err();
        assert!(err.to_string().contains("252 bytes"), "{err}");
        assert!(decode(&"a".repeat(MAX_ENCODED + 1)).is_none());
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
