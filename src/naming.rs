//! Component names: non-empty, at most 255 bytes, RFC 3986 unreserved
//! characters only (`A-Z a-z 0-9 . _ ~ -`), and not `.` or `..`.

use crate::{Error, Result};

/// The longest name accepted, in bytes.
pub const MAX_NAME_LEN: usize = 255;

/// Checks a component name.
///
/// ```
/// use kinesis::validate_name;
/// assert!(validate_name("counter-1.v2_~x").is_ok());
/// for bad in ["", "a b", "a/b", "50%", "..", "é"] {
///     assert!(validate_name(bad).is_err(), "{bad}");
/// }
/// ```
pub fn validate_name(name: &str) -> Result<()> {
    if name.is_empty() {
        return Err(Error::Invalid("component name is empty".into()));
    }
    if name.len() > MAX_NAME_LEN {
        return Err(Error::Invalid(format!(
            "component name is {} bytes long; at most {MAX_NAME_LEN} are allowed",
            name.len()
        )));
    }
    if name == "." || name == ".." {
        return Err(Error::Invalid(format!("component name `{name}` is reserved")));
    }
    if name.starts_with('_') {
        return Err(Error::Invalid(format!(
            "component name `{name}` starts with `_`, which is reserved for `_control` and `_watch`"
        )));
    }
    if let Some(bad) = name.chars().find(|c| !is_unreserved(*c)) {
        return Err(Error::Invalid(format!(
            "component name `{}` contains {bad:?}; names use only A-Z a-z 0-9 . _ ~ -",
            name.escape_default()
        )));
    }
    Ok(())
}

fn is_unreserved(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '~' | '-')
}
