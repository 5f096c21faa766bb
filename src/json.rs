//! JSON views of component state: snapshots with encrypted fields
//! redacted, and states rebuilt from JSON with errors that name the field.
//!
//! Encrypted persisted fields are shown as `"***"` in every JSON this module
//! produces; a replace or patch that sends `"***"` back keeps the stored value.

use std::fmt;

use bytes::Bytes;
use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::Value;

use crate::persist::{schema_of, REDACTED};
use crate::{Component, ETag, Error, Result, Snapshot, Stage};

/// A state as JSON text, encrypted fields redacted: the bytes one
/// [`Snapshot::json`] made, shared (cloning copies no bytes).
///
/// It serialises as the JSON it holds, compares equal to a
/// [`serde_json::Value`] with the same content, and [`to_value`](JsonText::to_value)
/// parses it for inspection.
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use kinesis::{Component, Container};
/// # #[derive(Clone, Default, serde::Serialize, serde::Deserialize)]
/// # struct Counter { count: u64 }
/// # impl Component for Counter {}
/// let root = Container::root().await.unwrap();
/// root.add("counter", Counter { count: 2 }).await.unwrap();
/// let snapshot = root.get_dyn("counter").unwrap().snapshot_json().unwrap();
/// assert_eq!(snapshot.data, serde_json::json!({"count": 2}));
/// assert_eq!(snapshot.data.as_bytes(), br#"{"count":2}"#);
/// # root.shutdown().await.unwrap();
/// # });
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct JsonText(Bytes);

impl JsonText {
    /// Wraps bytes that serde_json wrote.
    pub(crate) fn from_serialised(bytes: Bytes) -> Self {
        JsonText(bytes)
    }

    /// The JSON text as bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The bytes, shared (no copy): for a response body.
    pub fn bytes(&self) -> Bytes {
        self.0.clone()
    }

    /// The JSON parsed into a value.
    pub fn to_value(&self) -> Value {
        serde_json::from_slice(&self.0).unwrap_or(Value::Null)
    }
}

impl Serialize for JsonText {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let raw: &RawValue = serde_json::from_slice(&self.0).map_err(serde::ser::Error::custom)?;
        raw.serialize(s)
    }
}

impl PartialEq<Value> for JsonText {
    fn eq(&self, other: &Value) -> bool {
        self.to_value() == *other
    }
}

impl fmt::Display for JsonText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&String::from_utf8_lossy(&self.0))
    }
}

impl fmt::Debug for JsonText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// A snapshot as JSON, encrypted fields redacted.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JsonSnapshot {
    /// The state, as the snapshot's JSON text (made once per commit).
    pub data: JsonText,
    /// Its ETag.
    pub etag: ETag,
    /// Its version.
    pub version: u64,
    /// The component's stage when it was read.
    pub stage: Stage,
}

impl JsonSnapshot {
    /// The JSON form of a typed snapshot, read while the component is at `stage`.
    pub fn of<C: Component>(snapshot: &Snapshot<C>, stage: Stage) -> Result<JsonSnapshot> {
        Ok(JsonSnapshot {
            data: JsonText::from_serialised(snapshot.json()?),
            etag: snapshot.etag,
            version: snapshot.version,
            stage,
        })
    }
}

/// The state as JSON with encrypted fields replaced by `"***"`.
pub fn redacted_json<C: Component>(state: &C) -> Result<Value> {
    let mut value = serde_json::to_value(state)
        .map_err(|e| Error::Invalid(format!("state does not serialise: {e}")))?;
    if let Some(schema) = schema_of::<C>() {
        schema.redact(&mut value);
    }
    Ok(value)
}

/// Puts the current values of encrypted fields back where `value` has `"***"`.
pub(crate) fn unredact<C: Component>(value: &mut Value, current: &C) -> Result<()> {
    let Some(schema) = schema_of::<C>() else { return Ok(()) };
    if !schema.has_encrypted() {
        return Ok(());
    }
    let Value::Object(obj) = value else { return Ok(()) };
    let current = serde_json::to_value(current)
        .map_err(|e| Error::Invalid(format!("state does not serialise: {e}")))?;
    for field in schema.fields.iter().filter(|f| f.encrypt) {
        if obj.get(field.name).and_then(Value::as_str) == Some(REDACTED) {
            obj.insert(field.name.to_owned(), current.get(field.name).cloned().unwrap_or_default());
        }
    }
    Ok(())
}

/// Deserialises `value` into `C`; the error names the offending field.
///
/// Members of `value` that are not fields of `C` are ignored here (a stored
/// record may hold fields a newer version of the type dropped); a replace or
/// patch refuses them instead.
pub fn from_json<C: serde::de::DeserializeOwned>(value: Value) -> Result<C> {
    serde_path_to_error::deserialize(value).map_err(invalid)
}

/// How many unknown members an error lists by name.
const UNKNOWN_LISTED: usize = 10;

/// Deserialises `value`, the result of a replace or patch, into `C`, refusing
/// members that are not fields of `C` with [`Error::Invalid`] naming them by
/// path (`meta`, `settings.colour`, `tags.0.label`).
///
/// A member is a field when deserialising `C` reads it: a `#[serde(skip)]`
/// field is not one, an encrypted persisted field is. Members that `current`
/// serialises but `C` does not read (`#[serde(skip_deserializing)]`) may be
/// sent back, so a state read with GET can be sent back as it is; they are
/// ignored as before. Members inside `#[serde(flatten)]` or untagged enums
/// are not checked (serde reads them through a buffer).
///
/// A body that also fails to deserialise gets one error naming both. The
/// check rides on the one deserialisation (`serde_ignored`); the current
/// state is serialised again only when something was ignored.
pub(crate) fn from_json_known<C: Component>(value: Value, current: &C) -> Result<C> {
    let mut ignored: Vec<Vec<Segment>> = Vec::new();
    let mut record = |path: serde_ignored::Path<'_>| ignored.push(segments(&path));
    let result: std::result::Result<C, _> =
        serde_path_to_error::deserialize(serde_ignored::Deserializer::new(value, &mut record));
    let unknown = if ignored.is_empty() { None } else { unknown_members(&ignored, current) };
    match (result, unknown) {
        (Ok(state), None) => Ok(state),
        (Ok(_), Some(unknown)) => Err(Error::Invalid(unknown)),
        (Err(e), None) => Err(invalid(e)),
        // Both, as when the whole `{"meta", "data"}` of a GET is sent back.
        (Err(e), Some(unknown)) => Err(Error::Invalid(format!("{unknown}; and {}", describe(e)))),
    }
}

/// What is wrong about the `ignored` members that `current` does not write
/// either; `None` when there are none.
fn unknown_members<C: Component>(ignored: &[Vec<Segment>], current: &C) -> Option<String> {
    let written = serde_json::to_value(current).unwrap_or_default();
    let mut unknown: Vec<String> =
        ignored.iter().filter(|path| lookup(&written, path).is_none()).map(|p| dotted(p)).collect();
    // Sorted: the order serde visits a map's members in depends on whether
    // some crate turned on `serde_json/preserve_order`.
    unknown.sort_unstable();
    unknown.dedup();
    if unknown.is_empty() {
        return None;
    }
    let mut names: Vec<String> =
        unknown.iter().take(UNKNOWN_LISTED).map(|name| format!("`{name}`")).collect();
    if unknown.len() > UNKNOWN_LISTED {
        names.push(format!("and {} more", unknown.len() - UNKNOWN_LISTED));
    }
    Some(if unknown.len() == 1 {
        format!("unknown member {}: not a field of the component's state", names[0])
    } else {
        format!("unknown members {}: not fields of the component's state", names.join(", "))
    })
}

fn invalid(e: serde_path_to_error::Error<serde_json::Error>) -> Error {
    Error::Invalid(describe(e))
}

/// The message of a deserialisation error, naming the field.
fn describe(e: serde_path_to_error::Error<serde_json::Error>) -> String {
    let path = e.path().to_string();
    if path == "." {
        e.into_inner().to_string()
    } else {
        format!("field `{path}`: {}", e.into_inner())
    }
}

/// One step of a path into a JSON value.
enum Segment {
    Key(String),
    Index(usize),
}

/// The steps from the root to `path`; `Option` and newtype layers add none.
fn segments(path: &serde_ignored::Path<'_>) -> Vec<Segment> {
    use serde_ignored::Path;
    let mut steps = Vec::new();
    let mut at = path;
    loop {
        at = match at {
            Path::Root => break,
            Path::Seq { parent, index } => {
                steps.push(Segment::Index(*index));
                parent
            }
            Path::Map { parent, key } => {
                steps.push(Segment::Key(key.clone()));
                parent
            }
            Path::Some { parent }
            | Path::NewtypeStruct { parent }
            | Path::NewtypeVariant { parent } => parent,
        };
    }
    steps.reverse();
    steps
}

fn lookup<'v>(value: &'v Value, path: &[Segment]) -> Option<&'v Value> {
    path.iter().try_fold(value, |at, step| match step {
        Segment::Key(key) => at.get(key.as_str()),
        Segment::Index(index) => at.get(*index),
    })
}

fn dotted(path: &[Segment]) -> String {
    let steps: Vec<String> = path
        .iter()
        .map(|step| match step {
            Segment::Key(key) => key.clone(),
            Segment::Index(index) => index.to_string(),
        })
        .collect();
    if steps.is_empty() {
        ".".to_owned()
    } else {
        steps.join(".")
    }
}
