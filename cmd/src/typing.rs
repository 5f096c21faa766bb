//! `kinesis call` arguments, typed by the method table: `by=3` becomes the
//! number 3 when `by` is declared `u64` (or `Option<u64>`), the string
//! `"3"` when it is a `String`.

use kinesis::remote::RemoteMethod;
use serde_json::{Map, Number, Value};

use crate::cli::{ArgValue, CallArg};

/// The JSON object of arguments for `method`, or what is wrong with them
/// (an unknown, repeated or missing key, a value that does not fit its
/// type): a usage error.
pub(crate) fn arguments(method: &RemoteMethod, given: &[CallArg]) -> Result<Value, String> {
    let mut out = Map::new();
    for arg in given {
        let Some(declared) = method.args.iter().find(|a| a.name == arg.key) else {
            let known: Vec<String> =
                method.args.iter().map(|a| format!("{}: {}", a.name, a.ty)).collect();
            return Err(format!(
                "`{}` takes no argument `{}`; its arguments: {}",
                method.name,
                arg.key,
                if known.is_empty() { "none".to_owned() } else { known.join(", ") }
            ));
        };
        if out.contains_key(&arg.key) {
            return Err(format!("argument `{}` is given twice", arg.key));
        }
        let value = match &arg.value {
            ArgValue::Json(value) => value.clone(),
            ArgValue::Text(text) => typed(&declared.ty, text)
                .map_err(|why| format!("argument `{}` ({}): {why}", arg.key, declared.ty))?,
        };
        out.insert(arg.key.clone(), value);
    }
    let missing: Vec<String> = method
        .args
        .iter()
        .filter(|a| !out.contains_key(&a.name) && !is_option(&a.ty))
        .map(|a| format!("{}={}", a.name, a.ty))
        .collect();
    if !missing.is_empty() {
        return Err(format!("`{}` needs {}", method.name, missing.join(" ")));
    }
    Ok(Value::Object(out))
}

/// Whether a declared type may be left out (`Option<…>`).
fn is_option(ty: &str) -> bool {
    option_inner(&compact(ty)).is_some()
}

/// The type without spaces and a leading reference (`&'a str` → `str`).
fn compact(ty: &str) -> String {
    let mut ty = ty.trim().trim_start_matches('&').trim_start();
    if ty.starts_with('\'') {
        // A lifetime, then the type.
        ty = ty.split_once(char::is_whitespace).map_or("", |(_, rest)| rest.trim_start());
    }
    if let Some(rest) = ty.strip_prefix("mut ") {
        ty = rest.trim_start();
    }
    ty.chars().filter(|c| !c.is_whitespace()).collect()
}

/// `T` of `Option<T>` (by any path: `std::option::Option<T>`).
fn option_inner(ty: &str) -> Option<&str> {
    let open = ty.find('<')?;
    let head = ty[..open].rsplit("::").next()?;
    (head == "Option" && ty.ends_with('>')).then(|| &ty[open + 1..ty.len() - 1])
}

/// `text` as the JSON value of a `ty`.
fn typed(ty: &str, text: &str) -> Result<Value, String> {
    let ty = compact(ty);
    if let Some(inner) = option_inner(&ty) {
        if text == "null" {
            return Ok(Value::Null);
        }
        return typed(inner, text);
    }
    let name = ty.rsplit("::").next().unwrap_or(&ty);
    match name {
        "u8" | "u16" | "u32" | "u64" | "u128" | "usize" => {
            let n: u128 =
                text.parse().map_err(|_| format!("`{text}` is not a whole number of 0 or more"))?;
            let max = unsigned_max(name);
            if n > max {
                return Err(format!("`{text}` is more than {max}"));
            }
            Ok(number(u64::try_from(n).map(Number::from).ok(), text)?)
        }
        "i8" | "i16" | "i32" | "i64" | "i128" | "isize" => {
            let n: i128 = text.parse().map_err(|_| format!("`{text}` is not a whole number"))?;
            let (min, max) = signed_range(name);
            if n < min || n > max {
                return Err(format!("`{text}` is not between {min} and {max}"));
            }
            Ok(number(i64::try_from(n).map(Number::from).ok(), text)?)
        }
        "f32" | "f64" => {
            let n: f64 = text.parse().map_err(|_| format!("`{text}` is not a number"))?;
            Ok(Value::Number(
                Number::from_f64(n).ok_or_else(|| format!("`{text}` is not a finite number"))?,
            ))
        }
        "bool" => match text {
            "true" => Ok(Value::Bool(true)),
            "false" => Ok(Value::Bool(false)),
            _ => Err(format!("`{text}` is not true or false")),
        },
        "char" if text.chars().count() == 1 => Ok(Value::String(text.to_owned())),
        "char" => Err(format!("`{text}` is not one character")),
        "String" | "str" | "Cow<str>" | "PathBuf" | "Path" => Ok(Value::String(text.to_owned())),
        // Anything else (a Vec, a map, a struct): JSON, else the text.
        _ => Ok(serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_owned()))),
    }
}

/// A number that fits JSON; 128-bit values past 64 bits go as they are
/// written, for the server to judge.
fn number(n: Option<Number>, text: &str) -> Result<Value, String> {
    match n {
        Some(n) => Ok(Value::Number(n)),
        None => serde_json::from_str(text).map_err(|_| format!("`{text}` does not fit JSON")),
    }
}

fn unsigned_max(ty: &str) -> u128 {
    match ty {
        "u8" => u8::MAX.into(),
        "u16" => u16::MAX.into(),
        "u32" => u32::MAX.into(),
        "u64" | "usize" => u64::MAX.into(),
        _ => u128::MAX,
    }
}

fn signed_range(ty: &str) -> (i128, i128) {
    match ty {
        "i8" => (i8::MIN.into(), i8::MAX.into()),
        "i16" => (i16::MIN.into(), i16::MAX.into()),
        "i32" => (i32::MIN.into(), i32::MAX.into()),
        "i64" | "isize" => (i64::MIN.into(), i64::MAX.into()),
        _ => (i128::MIN, i128::MAX),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kinesis::remote::RemoteArg;
    use serde_json::json;

    fn method(args: &[(&str, &str)]) -> RemoteMethod {
        RemoteMethod {
            name: "m".into(),
            mutating: true,
            args: args
                .iter()
                .map(|(n, t)| RemoteArg { name: (*n).into(), ty: (*t).into() })
                .collect(),
            returns: "u64".into(),
            doc: String::new(),
        }
    }

    fn text(key: &str, value: &str) -> CallArg {
        CallArg { key: key.into(), value: ArgValue::Text(value.into()) }
    }

    #[test]
    fn values_take_the_declared_type() {
        let m = method(&[
            ("by", "Option<u64>"),
            ("name", "String"),
            ("on", "bool"),
            ("tags", "Vec<String>"),
            ("delta", "i32"),
            ("ratio", "f64"),
            ("id", "& 'a str"),
        ]);
        let args = [
            text("by", "3"),
            text("name", "42"),
            text("on", "true"),
            text("tags", r#"["a","b"]"#),
            text("delta", "-7"),
            text("ratio", "0.5"),
            text("id", "x"),
        ];
        assert_eq!(
            arguments(&m, &args).unwrap(),
            json!({"by": 3, "name": "42", "on": true, "tags": ["a", "b"], "delta": -7,
                   "ratio": 0.5, "id": "x"})
        );
        let m = method(&[("by", "Option<u64>")]);
        assert_eq!(arguments(&m, &[text("by", "null")]).unwrap(), json!({"by": null}));
        assert_eq!(arguments(&m, &[]).unwrap(), json!({}), "an Option may be left out");
        let raw = CallArg { key: "by".into(), value: ArgValue::Json(json!("3")) };
        assert_eq!(arguments(&m, &[raw]).unwrap()["by"], json!("3"), "raw JSON as given");
    }

    #[test]
    fn bad_values_unknown_and_missing_keys_are_refused() {
        let m = method(&[("by", "Option<u64>"), ("ms", "u64"), ("small", "u8"), ("on", "bool")]);
        let ok = text("ms", "1");
        for (bad, needle) in [
            (text("by", "x"), "`x` is not a whole number"),
            (text("by", "-1"), "whole number of 0 or more"),
            (text("small", "256"), "more than 255"),
            (text("on", "yes"), "not true or false"),
            (text("nope", "1"), "takes no argument `nope`; its arguments: by: Option<u64>"),
            (text("ms", "2"), "given twice"),
        ] {
            let e = arguments(&m, &[ok.clone(), bad]).unwrap_err();
            assert!(e.contains(needle), "{e}");
        }
        let e = arguments(&m, &[]).unwrap_err();
        assert!(e.contains("needs ms=u64") && !e.contains("by="), "{e}");
    }

    #[test]
    fn other_types_are_json_or_text() {
        assert_eq!(typed("BTreeMap<String,u64>", r#"{"a":1}"#).unwrap(), json!({"a": 1}));
        assert_eq!(typed("Mode", "fast").unwrap(), json!("fast"));
        assert_eq!(typed("std::option::Option<u8>", "7").unwrap(), json!(7));
    }
}
