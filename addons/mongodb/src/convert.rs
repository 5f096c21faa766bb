//! Records to BSON documents and back, exactly.
//!
//! JSON → BSON: `null`, booleans, strings, arrays and objects map to their
//! BSON kin; an integer within `i64` to `Int64`, a larger one (up to
//! `u64::MAX`) to `Decimal128`, any other number to `Double`. BSON → JSON
//! undoes that, also accepting `Int32`. Anything else in a stored document
//! is not a record field and loads as [`StoreError::Corrupt`].

use std::str::FromStr;

use kinesis::persist::{Record, StoreError, StoreResult};
use mongodb::bson::{Bson, Decimal128, Document};
use serde_json::{Map, Number, Value};

/// The document stored for `record`, `_id` first.
pub(crate) fn document_from_record(record: &Record) -> StoreResult<Document> {
    let unstorable = |reason: String| StoreError::Corrupt { uri: record.uri.clone(), reason };
    let version = i64::try_from(record.version)
        .map_err(|_| unstorable(format!("version {} is too large to store", record.version)))?;
    let mut fields = Document::new();
    for (name, value) in &record.fields {
        fields.insert(key(name).map_err(unstorable)?, bson_from_json(value).map_err(unstorable)?);
    }
    let mut document = Document::new();
    document.insert("_id", record.uri.as_str());
    document.insert("schema", i64::from(record.schema));
    document.insert("type", record.type_name.as_str());
    document.insert("version", version);
    document.insert("updated_at", record.updated_at.as_str());
    document.insert("fields", fields);
    Ok(document)
}

/// The record stored in `document` under `uri`.
pub(crate) fn record_from_document(uri: &str, document: Document) -> StoreResult<Record> {
    let corrupt = |reason: String| StoreError::Corrupt { uri: uri.to_owned(), reason };
    let schema = integer(&document, "schema")
        .and_then(|s| u32::try_from(s).map_err(|_| format!("schema {s} is out of range")))
        .map_err(corrupt)?;
    let version = version_of(uri, &document)?;
    let type_name = string(&document, "type").map_err(corrupt)?;
    let updated_at = string(&document, "updated_at").map_err(corrupt)?;
    let fields = match document.get("fields") {
        Some(Bson::Document(fields)) => json_object(fields).map_err(corrupt)?,
        Some(other) => {
            return Err(corrupt(format!(
                "`fields` is a {:?}, not a document",
                other.element_type()
            )))
        }
        None => return Err(corrupt("no `fields`".to_owned())),
    };
    Ok(Record { schema, uri: uri.to_owned(), type_name, version, updated_at, fields })
}

/// The `version` of a stored document: a positive integer.
pub(crate) fn version_of(uri: &str, document: &Document) -> StoreResult<u64> {
    integer(document, "version")
        .and_then(|v| {
            u64::try_from(v).ok().filter(|v| *v >= 1).ok_or(format!("version {v} is not positive"))
        })
        .map_err(|reason| StoreError::Corrupt { uri: uri.to_owned(), reason })
}

fn integer(document: &Document, name: &str) -> Result<i64, String> {
    match document.get(name) {
        Some(Bson::Int64(n)) => Ok(*n),
        Some(Bson::Int32(n)) => Ok(i64::from(*n)),
        Some(other) => Err(format!("`{name}` is a {:?}, not an integer", other.element_type())),
        None => Err(format!("no `{name}`")),
    }
}

fn string(document: &Document, name: &str) -> Result<String, String> {
    match document.get(name) {
        Some(Bson::String(s)) => Ok(s.clone()),
        Some(other) => Err(format!("`{name}` is a {:?}, not a string", other.element_type())),
        None => Err(format!("no `{name}`")),
    }
}

fn key(name: &str) -> Result<&str, String> {
    if name.contains('\0') {
        Err(format!("the key {name:?} holds a NUL character, which BSON keys cannot"))
    } else {
        Ok(name)
    }
}

fn bson_from_json(value: &Value) -> Result<Bson, String> {
    Ok(match value {
        Value::Null => Bson::Null,
        Value::Bool(b) => Bson::Boolean(*b),
        Value::String(s) => Bson::String(s.clone()),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                Bson::Int64(i)
            } else if let Some(u) = n.as_u64() {
                let decimal = Decimal128::from_str(&u.to_string())
                    .map_err(|e| format!("cannot store the integer {u}: {e}"))?;
                Bson::Decimal128(decimal)
            } else {
                match n.as_f64() {
                    Some(f) => Bson::Double(f),
                    None => return Err(format!("cannot store the number {n}")),
                }
            }
        }
        Value::Array(items) => {
            Bson::Array(items.iter().map(bson_from_json).collect::<Result<_, _>>()?)
        }
        Value::Object(map) => {
            let mut document = Document::new();
            for (name, value) in map {
                document.insert(key(name)?, bson_from_json(value)?);
            }
            Bson::Document(document)
        }
    })
}

fn json_object(document: &Document) -> Result<Map<String, Value>, String> {
    document.iter().map(|(name, value)| Ok((name.clone(), json_from_bson(value)?))).collect()
}

fn json_from_bson(value: &Bson) -> Result<Value, String> {
    Ok(match value {
        Bson::Null => Value::Null,
        Bson::Boolean(b) => Value::Bool(*b),
        Bson::String(s) => Value::String(s.clone()),
        Bson::Int32(n) => Value::from(*n),
        Bson::Int64(n) => Value::from(*n),
        Bson::Double(f) => Value::Number(
            Number::from_f64(*f).ok_or_else(|| format!("the number {f} is not JSON"))?,
        ),
        Bson::Decimal128(d) => {
            let text = d.to_string();
            let n = text
                .parse::<u64>()
                .map_err(|_| format!("the decimal {text} is not an integer kinesis wrote"))?;
            Value::from(n)
        }
        Bson::Array(items) => {
            Value::Array(items.iter().map(json_from_bson).collect::<Result<_, _>>()?)
        }
        Bson::Document(document) => Value::Object(json_object(document)?),
        other => return Err(format!("a {:?} value is not JSON", other.element_type())),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_json_value_round_trips() {
        let fields = json!({
            "null": null, "t": true, "f": false, "zero": 0, "neg": i64::MIN, "max": i64::MAX,
            "above_i64": u64::MAX, "just_above": (i64::MAX as u64) + 1, "float": 1.0, "pi": -3.25e-300,
            "s": "a\u{0}b é 🦀", "list": [1, [2.5, {"k": null}]], "$enc": "v1:x", "dotted.key": {},
        });
        let Value::Object(fields) = fields else { unreachable!() };
        let record = Record::new("/r", "T", 3, fields);
        let document = document_from_record(&record).unwrap();
        assert_eq!(document.get("version"), Some(&Bson::Int64(3)));
        assert!(matches!(
            document.get_document("fields").unwrap().get("above_i64"),
            Some(Bson::Decimal128(_))
        ));
        assert_eq!(record_from_document("/r", document).unwrap(), record);
    }

    #[test]
    fn nul_in_a_key_is_refused_and_foreign_documents_are_corrupt() {
        let mut fields = Map::new();
        fields.insert("a\0b".into(), json!(1));
        let err = document_from_record(&Record::new("/r", "T", 1, fields)).unwrap_err();
        assert!(matches!(err, StoreError::Corrupt { .. }), "{err}");

        let mut document = document_from_record(&Record::new("/r", "T", 1, Map::new())).unwrap();
        document.insert("fields", mongodb::bson::doc! { "when": mongodb::bson::DateTime::now() });
        assert!(matches!(record_from_document("/r", document), Err(StoreError::Corrupt { .. })));
        let mut document = document_from_record(&Record::new("/r", "T", 1, Map::new())).unwrap();
        document.insert("version", 0i64);
        assert!(matches!(record_from_document("/r", document), Err(StoreError::Corrupt { .. })));
    }
}
