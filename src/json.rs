//! JSON views of component state: snapshots with encrypted fields
//! redacted, and states rebuilt from JSON with errors that name the field.
//!
//! Encrypted persisted fields are shown as `"***"` in every JSON this module
//! produces; a replace or patch that sends `"***"` back keeps the stored value.

use serde::Serialize;
use serde_json::Value;

use crate::persist::{schema_of, REDACTED};
use crate::{Component, ETag, Error, Result, Snapshot, Stage};

/// A snapshot as JSON, encrypted fields redacted.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JsonSnapshot {
    /// The state.
    pub data: Value,
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
            data: redacted_json(&snapshot.state)?,
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
