//! The stored form of a component's persisted fields.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The record format version written by this release.
pub const RECORD_SCHEMA: u32 = 1;

/// One component's persisted fields as a store keeps them.
///
/// ```json
/// { "schema": 1, "uri": "/root/kinesis", "type": "app::Kinesis", "version": 3,
///   "updated_at": "2026-11-23T10:00:00.000Z",
///   "fields": { "count": 3, "api_key": {"$enc": "v1:1a2b3c4d:…"} } }
/// ```
///
/// `version` counts saves of this record, starting at 1; it is the value that
/// [`Store::save`](super::Store::save) compares and sets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// Format version, [`RECORD_SCHEMA`].
    pub schema: u32,
    /// The component's URI, the record's key.
    pub uri: String,
    /// The component's Rust type name.
    #[serde(rename = "type")]
    pub type_name: String,
    /// Number of saves so far; the first saved record has version 1.
    pub version: u64,
    /// When this version was written, RFC 3339 in UTC.
    pub updated_at: String,
    /// Field name to stored value; encrypted fields hold `{"$enc": "v1:…"}`.
    pub fields: Map<String, Value>,
}

impl Record {
    /// A record of `fields` at `version`, stamped with the current time.
    pub fn new(uri: &str, type_name: &str, version: u64, fields: Map<String, Value>) -> Self {
        Record {
            schema: RECORD_SCHEMA,
            uri: uri.to_owned(),
            type_name: type_name.to_owned(),
            version,
            updated_at: now_rfc3339(),
            fields,
        }
    }
}

/// The current time as RFC 3339 with milliseconds, in UTC.
pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string()
}
