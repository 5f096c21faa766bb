//! Canonical JSON for ETags: the same state always gives the same bytes.
//!
//! `serde_json` writes a `HashMap` (or any map) in its iteration order, which
//! differs between two equal maps. [`write`] serialises like `serde_json`
//! but writes the entries of every map sorted by their JSON key. Structs,
//! sequences and scalars stream straight through; only maps are buffered
//! (each entry as a `serde_json::Value`), so the common case of structs of
//! scalars costs nothing extra.
//!
//! No crate does this: RFC 8785 formatters (`canon-json`) buffer and sort
//! every object, struct fields included, at several allocations per object.

use serde::ser::{self, Serialize, Serializer};
use serde_json::Value;

/// Writes `value` as JSON into `out`, every map's entries sorted by key.
pub(crate) fn write<T: Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) -> serde_json::Result<()> {
    let mut ser = serde_json::Serializer::new(out);
    value.serialize(Canonical(&mut ser))
}

/// `T`, serialised through [`Canonical`].
struct Sorted<'a, T: ?Sized>(&'a T);

impl<T: Serialize + ?Sized> Serialize for Sorted<'_, T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(Canonical(s))
    }
}

/// A serializer that forwards to `S`, sorting the entries of maps.
struct Canonical<S>(S);

/// Forwards a compound serializer, wrapping every element in [`Sorted`].
struct Compound<S>(S);

macro_rules! forward {
    ($($name:ident($($arg:ident: $ty:ty),*);)*) => {
        $(fn $name(self, $($arg: $ty),*) -> Result<S::Ok, S::Error> { self.0.$name($($arg),*) })*
    };
}

impl<S: Serializer> Serializer for Canonical<S> {
    type Ok = S::Ok;
    type Error = S::Error;
    type SerializeSeq = Compound<S::SerializeSeq>;
    type SerializeTuple = Compound<S::SerializeTuple>;
    type SerializeTupleStruct = Compound<S::SerializeTupleStruct>;
    type SerializeTupleVariant = Compound<S::SerializeTupleVariant>;
    type SerializeMap = SortedMap<S>;
    type SerializeStruct = Compound<S::SerializeStruct>;
    type SerializeStructVariant = Compound<S::SerializeStructVariant>;

    forward! {
        serialize_bool(v: bool);
        serialize_i8(v: i8);
        serialize_i16(v: i16);
        serialize_i32(v: i32);
        serialize_i64(v: i64);
        serialize_i128(v: i128);
        serialize_u8(v: u8);
        serialize_u16(v: u16);
        serialize_u32(v: u32);
        serialize_u64(v: u64);
        serialize_u128(v: u128);
        serialize_f32(v: f32);
        serialize_f64(v: f64);
        serialize_char(v: char);
        serialize_str(v: &str);
        serialize_bytes(v: &[u8]);
        serialize_none();
        serialize_unit();
        serialize_unit_struct(name: &'static str);
        serialize_unit_variant(name: &'static str, index: u32, variant: &'static str);
    }

    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<S::Ok, S::Error> {
        self.0.serialize_some(&Sorted(value))
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        value: &T,
    ) -> Result<S::Ok, S::Error> {
        self.0.serialize_newtype_struct(name, &Sorted(value))
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<S::Ok, S::Error> {
        self.0.serialize_newtype_variant(name, index, variant, &Sorted(value))
    }

    fn serialize_seq(self, len: Option<usize>) -> Result<Self::SerializeSeq, S::Error> {
        self.0.serialize_seq(len).map(Compound)
    }

    fn serialize_tuple(self, len: usize) -> Result<Self::SerializeTuple, S::Error> {
        self.0.serialize_tuple(len).map(Compound)
    }

    fn serialize_tuple_struct(
        self,
        name: &'static str,
        len: usize,
    ) -> Result<Self::SerializeTupleStruct, S::Error> {
        self.0.serialize_tuple_struct(name, len).map(Compound)
    }

    fn serialize_tuple_variant(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Self::SerializeTupleVariant, S::Error> {
        self.0.serialize_tuple_variant(name, index, variant, len).map(Compound)
    }

    fn serialize_map(self, len: Option<usize>) -> Result<Self::SerializeMap, S::Error> {
        Ok(SortedMap {
            inner: self.0,
            entries: Vec::with_capacity(len.unwrap_or(0)),
            next_key: None,
        })
    }

    fn serialize_struct(
        self,
        name: &'static str,
        len: usize,
    ) -> Result<Self::SerializeStruct, S::Error> {
        self.0.serialize_struct(name, len).map(Compound)
    }

    fn serialize_struct_variant(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Self::SerializeStructVariant, S::Error> {
        self.0.serialize_struct_variant(name, index, variant, len).map(Compound)
    }

    fn is_human_readable(&self) -> bool {
        self.0.is_human_readable()
    }
}

/// Forwards a compound trait whose elements have no key.
macro_rules! forward_elements {
    ($($trait:ident :: $method:ident),*) => {$(
        impl<S: ser::$trait> ser::$trait for Compound<S> {
            type Ok = S::Ok;
            type Error = S::Error;
            fn $method<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), S::Error> {
                self.0.$method(&Sorted(value))
            }
            fn end(self) -> Result<S::Ok, S::Error> {
                self.0.end()
            }
        }
    )*};
}

/// Forwards a compound trait whose fields have a static key.
macro_rules! forward_fields {
    ($($trait:ident),*) => {$(
        impl<S: ser::$trait> ser::$trait for Compound<S> {
            type Ok = S::Ok;
            type Error = S::Error;
            fn serialize_field<T: Serialize + ?Sized>(
                &mut self,
                key: &'static str,
                value: &T,
            ) -> Result<(), S::Error> {
                self.0.serialize_field(key, &Sorted(value))
            }
            fn skip_field(&mut self, key: &'static str) -> Result<(), S::Error> {
                self.0.skip_field(key)
            }
            fn end(self) -> Result<S::Ok, S::Error> {
                self.0.end()
            }
        }
    )*};
}

forward_elements!(
    SerializeSeq::serialize_element,
    SerializeTuple::serialize_element,
    SerializeTupleStruct::serialize_field,
    SerializeTupleVariant::serialize_field
);
forward_fields!(SerializeStruct, SerializeStructVariant);

/// A map being buffered: its entries as JSON values, written sorted by key
/// at the end.
struct SortedMap<S> {
    inner: S,
    entries: Vec<(String, Value)>,
    next_key: Option<String>,
}

/// The JSON object key `key` becomes, as `serde_json` writes map keys
/// (strings as they are; numbers, booleans and chars as their text).
fn key_string<T: Serialize + ?Sized>(key: &T) -> serde_json::Result<String> {
    match serde_json::to_value(Sorted(key))? {
        Value::String(s) => Ok(s),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        other => Err(ser::Error::custom(format!("a map key must be a string, not {other}"))),
    }
}

impl<S: Serializer> ser::SerializeMap for SortedMap<S> {
    type Ok = S::Ok;
    type Error = S::Error;

    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), S::Error> {
        self.next_key = Some(key_string(key).map_err(ser::Error::custom)?);
        Ok(())
    }

    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), S::Error> {
        let key = self
            .next_key
            .take()
            .ok_or_else(|| ser::Error::custom("a map value was serialised before its key"))?;
        let value = serde_json::to_value(Sorted(value)).map_err(ser::Error::custom)?;
        self.entries.push((key, value));
        Ok(())
    }

    fn end(mut self) -> Result<S::Ok, S::Error> {
        self.entries.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let mut map = self.inner.serialize_map(Some(self.entries.len()))?;
        for (key, value) in &self.entries {
            // Nested maps inside `value` are sorted again on the way out.
            map.serialize_entry(key, &Sorted(value))?;
        }
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, HashMap};

    use serde::Serialize;

    fn canonical<T: Serialize>(value: &T) -> String {
        let mut out = Vec::new();
        super::write(&mut out, value).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[derive(Serialize)]
    struct State {
        b: u64,
        a: HashMap<String, Vec<HashMap<u32, bool>>>,
        #[serde(skip_serializing_if = "Option::is_none")]
        none: Option<u8>,
        tagged: Tagged,
    }

    #[derive(Serialize)]
    enum Tagged {
        Struct { z: BTreeMap<String, i8>, y: f64 },
    }

    #[test]
    fn maps_are_sorted_and_everything_else_is_plain_serde_json() {
        let mut a = HashMap::new();
        for k in ["zeta", "alpha", "mid"] {
            a.insert(k.to_owned(), vec![HashMap::from([(10, true), (2, false), (33, true)])]);
        }
        let state = State {
            b: 7,
            a,
            none: None,
            tagged: Tagged::Struct { z: BTreeMap::from([("q".into(), -1)]), y: 1.5 },
        };
        assert_eq!(
            canonical(&state),
            r#"{"b":7,"a":{"alpha":[{"10":true,"2":false,"33":true}],"mid":[{"10":true,"2":false,"33":true}],"zeta":[{"10":true,"2":false,"33":true}]},"tagged":{"Struct":{"z":{"q":-1},"y":1.5}}}"#
        );
        // Without maps, byte for byte what serde_json writes.
        let plain = (1u8, "x\"y", [Some(2.5f32), None], ());
        assert_eq!(canonical(&plain), serde_json::to_string(&plain).unwrap());
    }

    #[test]
    fn equal_maps_give_equal_bytes_whatever_their_order() {
        let forward: HashMap<String, u32> = (0..64).map(|i| (format!("k{i}"), i)).collect();
        let backward: HashMap<String, u32> = (0..64).rev().map(|i| (format!("k{i}"), i)).collect();
        assert_eq!(canonical(&forward), canonical(&backward));
    }
}
