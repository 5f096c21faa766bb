//! ETags and snapshots: the versioned, shareable view of a component's state.
//!
//! After every message that may have changed the state, the runtime
//! serialises it and compares the bytes with the last committed ones. If they
//! differ it bumps [`Snapshot::version`], computes a new strong [`ETag`] (a
//! 128-bit XXH3 hash of the state's canonical JSON, in which the entries of
//! every map are sorted by key; a keyed BLAKE3 hash when the
//! component has encrypted fields, so the tag reveals nothing about them) and publishes a new
//! `Arc<Snapshot>`. Readers take the latest snapshot without locking and
//! without queuing behind writes. The same state always gives the same ETag,
//! also across restarts of the process.

use std::fmt;
use std::str::FromStr;

use bytes::Bytes;
use once_cell::race::OnceBox;

use crate::Error;

/// A strong entity tag: a 128-bit hash of the serialised state.
///
/// `Display` gives 32 hex digits; [`ETag::quoted`] the form HTTP headers use.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ETag([u8; 16]);

impl ETag {
    /// The tag of serialised state `bytes`: XXH3-128 of the bytes, or, when
    /// `key` is given (components with encrypted fields), BLAKE3 keyed with
    /// it, so the tag reveals nothing about the encrypted values.
    pub fn of(bytes: &[u8], key: Option<&[u8; 32]>) -> ETag {
        match key {
            Some(k) => {
                let mut out = [0u8; 16];
                out.copy_from_slice(&blake3::keyed_hash(k, bytes).as_bytes()[..16]);
                ETag(out)
            }
            None => ETag(xxhash_rust::xxh3::xxh3_128(bytes).to_be_bytes()),
        }
    }

    /// The tag in double quotes, as in `ETag` and `If-Match` headers.
    pub fn quoted(&self) -> String {
        let mut out = String::with_capacity(34);
        out.push('"');
        out.push_str(&self.to_hex());
        out.push('"');
        out
    }

    /// The 32 lowercase hex digits, as `Display` writes them.
    pub fn to_hex(&self) -> String {
        // The digits are ASCII, so this never fails.
        std::str::from_utf8(&self.hex()).unwrap_or_default().to_owned()
    }

    /// Whether `candidate` (quoted or not, `W/` weak prefix refused) names
    /// this tag.
    pub fn matches(&self, candidate: &str) -> bool {
        candidate.trim().trim_matches('"').parse::<ETag>().is_ok_and(|c| c == *self)
    }
}

impl ETag {
    /// The 32 lowercase hex digits, without allocating.
    fn hex(&self) -> [u8; 32] {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut out = [0u8; 32];
        for (i, b) in self.0.iter().enumerate() {
            out[2 * i] = DIGITS[usize::from(b >> 4)];
            out[2 * i + 1] = DIGITS[usize::from(b & 0x0f)];
        }
        out
    }
}

impl fmt::Display for ETag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hex = self.hex();
        // The digits are ASCII, so this never fails.
        f.write_str(std::str::from_utf8(&hex).map_err(|_| fmt::Error)?)
    }
}

impl fmt::Debug for ETag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ETag({self})")
    }
}

impl FromStr for ETag {
    type Err = Error;

    /// Parses 32 hex digits, with or without surrounding quotes.
    fn from_str(s: &str) -> Result<Self, Error> {
        let s = s.trim().trim_matches('"');
        let bad = || Error::Invalid(format!("`{s}` is not a kinesis ETag (32 hex digits)"));
        if s.len() != 32 || !s.is_ascii() {
            return Err(bad());
        }
        let mut out = [0u8; 16];
        for (i, byte) in out.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).map_err(|_| bad())?;
        }
        Ok(ETag(out))
    }
}

impl serde::Serialize for ETag {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Reads what `Serialize` writes (32 hex digits, quoted or not).
impl<'de> serde::Deserialize<'de> for ETag {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// What a write requires of the current ETag, as `If-Match` says over HTTP.
///
/// The comparison happens inside the component's mailbox, atomically with
/// the write, so two writers holding the same ETag never both succeed.
///
/// ```
/// use kinesis::{ETag, Precondition};
/// let tag = ETag::of(b"{}", None);
/// assert!(Precondition::Any.passes(&tag));
/// assert!(Precondition::Tags(vec![tag]).passes(&tag));
/// assert!(!Precondition::Tags(vec![ETag::of(b"[]", None)]).passes(&tag));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Precondition {
    /// Any current state will do (no `If-Match`, or `If-Match: *`).
    #[default]
    Any,
    /// The current ETag must be one of these.
    Tags(Vec<ETag>),
}

impl Precondition {
    /// Whether the component's `current` ETag satisfies this precondition.
    pub fn passes(&self, current: &ETag) -> bool {
        match self {
            Precondition::Any => true,
            Precondition::Tags(tags) => tags.contains(current),
        }
    }

    /// Whether this names ETags (so a failure is a failed precondition,
    /// not a lost race).
    pub fn is_conditional(&self) -> bool {
        matches!(self, Precondition::Tags(_))
    }
}

impl From<ETag> for Precondition {
    fn from(tag: ETag) -> Self {
        Precondition::Tags(vec![tag])
    }
}

/// A published, immutable view of a component: its state at one version.
pub struct Snapshot<C> {
    /// The state as of `version`.
    pub state: C,
    /// The strong ETag of `state`.
    pub etag: ETag,
    /// Counts the changes of the state since the component was added,
    /// starting at 1 for the state it was added with.
    pub version: u64,
    /// The state as JSON text, encrypted fields redacted: made by the first
    /// reader that asks, then shared by every later one.
    json: OnceBox<Bytes>,
}

impl<C> Snapshot<C> {
    /// A snapshot of `state` at `version` with `etag`.
    pub fn new(state: C, etag: ETag, version: u64) -> Self {
        Snapshot { state, etag, version, json: OnceBox::new() }
    }
}

impl<C: crate::Component> Snapshot<C> {
    /// The state as JSON text, encrypted persisted fields shown as `"***"`.
    ///
    /// Serialised once per snapshot, that is once per commit, by the first
    /// reader that asks; every later reader (HTTP `GET`, `_watch` events,
    /// resumed watches) shares the same bytes.
    pub fn json(&self) -> crate::Result<Bytes> {
        if let Some(bytes) = self.json.get() {
            return Ok(bytes.clone());
        }
        let value = crate::json::redacted_json(&self.state)?;
        let text = serde_json::to_vec(&value)
            .map_err(|e| crate::Error::Invalid(format!("state does not serialise: {e}")))?;
        // Two first readers may race; both get equal bytes, one copy is kept.
        Ok(self.json.get_or_init(|| Box::new(Bytes::from(text))).clone())
    }
}

impl<C: Clone> Clone for Snapshot<C> {
    fn clone(&self) -> Self {
        let json = OnceBox::new();
        if let Some(bytes) = self.json.get() {
            let _ = json.set(Box::new(bytes.clone()));
        }
        Snapshot { state: self.state.clone(), etag: self.etag, version: self.version, json }
    }
}

impl<C: fmt::Debug> fmt::Debug for Snapshot<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Snapshot")
            .field("state", &self.state)
            .field("etag", &self.etag)
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A state that counts how often it is serialised.
    #[derive(Clone, Default, serde::Deserialize)]
    struct Counted;

    static SERIALISED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

    impl serde::Serialize for Counted {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            SERIALISED.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            s.serialize_u8(7)
        }
    }

    impl crate::Component for Counted {}

    #[test]
    fn a_snapshot_serialises_its_json_once_for_every_reader() {
        let snapshot = Snapshot::new(Counted, ETag::of(b"7", None), 1);
        let before = SERIALISED.load(std::sync::atomic::Ordering::SeqCst);
        let first = snapshot.json().unwrap();
        let readers: Vec<_> = (0..10).map(|_| snapshot.json().unwrap()).collect();
        assert_eq!(SERIALISED.load(std::sync::atomic::Ordering::SeqCst), before + 1);
        assert_eq!(&first[..], b"7");
        // Every reader shares the same bytes, not a copy.
        assert!(readers.iter().all(|r| r.as_ptr() == first.as_ptr()));
        // A clone keeps them too.
        assert_eq!(snapshot.clone().json().unwrap().as_ptr(), first.as_ptr());
        assert_eq!(SERIALISED.load(std::sync::atomic::Ordering::SeqCst), before + 1);
    }

    #[test]
    fn same_bytes_same_tag_and_round_trip() {
        let a = ETag::of(b"{\"count\":1}", None);
        assert_eq!(a, ETag::of(b"{\"count\":1}", None));
        assert_ne!(a, ETag::of(b"{\"count\":2}", None));
        assert_ne!(a, ETag::of(b"{\"count\":1}", Some(&[7; 32])));
        assert_eq!(a.to_string().parse::<ETag>().unwrap(), a);
        assert!(a.matches(&a.quoted()));
        assert!(!a.matches("W/\"x\""));
        assert!("zz".parse::<ETag>().is_err());
    }
}
