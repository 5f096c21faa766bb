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
pub fn from_json<C: serde::de::DeserializeOwned>(value: Value) -> Result<C> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        if path == "." {
            Error::Invalid(e.into_inner().to_string())
        } else {
            Error::Invalid(format!("field `{path}`: {}", e.into_inner()))
        }
    })
}
