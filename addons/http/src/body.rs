//! Request bodies and query strings: content types, JSON.
//!
//! The size limit is enforced once, by tower-http's `RequestBodyLimitLayer`
//! on the router: a body announced as too large is refused before it is
//! read, and one that grows too large while streaming fails [`read`], which
//! answers 413 as well.

use axum::body::{Body, Bytes};
use axum::http::header::CONTENT_TYPE;
use axum::http::HeaderMap;
use http_body_util::LengthLimitError;
use serde_json::{Map, Value};

use crate::problem::Problem;

/// The content types a body may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Accept {
    /// `application/json` or any `application/*+json`.
    Json,
    /// `application/merge-patch+json` or `application/json` (RFC 7396).
    MergePatch,
}

impl Accept {
    fn describe(self) -> &'static str {
        match self {
            Accept::Json => "application/json",
            Accept::MergePatch => "application/merge-patch+json or application/json",
        }
    }

    fn accepts(self, essence: &str) -> bool {
        match self {
            Accept::Json => {
                essence == "application/json"
                    || (essence.starts_with("application/") && essence.ends_with("+json"))
            }
            Accept::MergePatch => {
                essence == "application/json" || essence == "application/merge-patch+json"
            }
        }
    }
}

/// The media type without parameters, lower case; `None` without a header.
fn essence(headers: &HeaderMap) -> Option<Result<String, ()>> {
    let value = headers.get(CONTENT_TYPE)?;
    Some(
        value
            .to_str()
            .map(|v| v.split(';').next().unwrap_or_default().trim().to_ascii_lowercase())
            .map_err(|_| ()),
    )
}

/// Checks the `Content-Type` of a request that must have a body of `accept`.
pub(crate) fn require(headers: &HeaderMap, accept: Accept) -> Result<(), Problem> {
    match essence(headers) {
        Some(Ok(e)) if accept.accepts(&e) => Ok(()),
        Some(Ok(e)) => Err(Problem::unsupported_media_type(Some(&e), accept.describe())),
        Some(Err(())) => Err(Problem::bad_request("the Content-Type header is not visible ASCII")),
        None => Err(Problem::unsupported_media_type(None, accept.describe())),
    }
}

/// Reads the whole body; 413 naming `limit` (the limit the router's body
/// limit layer enforces) if that layer stopped it.
pub(crate) async fn read(body: Body, limit: usize) -> Result<Bytes, Problem> {
    axum::body::to_bytes(body, usize::MAX).await.map_err(|e| {
        if is_length_limit(&e) {
            Problem::payload_too_large(limit)
        } else {
            Problem::bad_request(format!("the body could not be read: {e}"))
        }
    })
}

fn is_length_limit(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(error);
    while let Some(e) = current {
        if e.is::<LengthLimitError>() {
            return true;
        }
        current = e.source();
    }
    false
}

/// Parses a JSON body (400 if it is not JSON).
pub(crate) fn parse(bytes: &[u8]) -> Result<Value, Problem> {
    serde_json::from_slice(bytes).map_err(Problem::malformed_json)
}

/// The named arguments of a POST: a JSON object, or nothing at all (an
/// empty body without a content type, or `null`) for none.
pub(crate) async fn arguments(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
) -> Result<Map<String, Value>, Problem> {
    require(headers, Accept::Json)?;
    let bytes = read(body, limit).await?;
    if bytes.is_empty() {
        return Ok(Map::new());
    }
    match parse(&bytes)? {
        Value::Object(map) => Ok(map),
        Value::Null => Ok(Map::new()),
        other => Err(Problem::from_error(
            &kinesis::Error::Invalid(format!(
                "the body must be a JSON object of named arguments, not {}",
                kind_of(&other)
            )),
            false,
        )),
    }
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Named arguments from a query string: each value is parsed as JSON if it
/// parses (`n=3` is a number, `flag=true` a boolean, `s="3"` a string) and
/// taken as a string otherwise (`name=ada`). A name given twice is a 400.
pub(crate) fn query_arguments(
    query: Option<&str>,
    declared: &[kinesis::methods::ArgInfo],
) -> Result<Map<String, Value>, Problem> {
    let mut args = Map::new();
    for (name, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        if args.contains_key(name.as_ref()) {
            return Err(Problem::bad_request(format!("the argument `{name}` is given twice")));
        }
        // Arguments declared as strings stay strings (`?key=123` is "123");
        // others are read as JSON when they parse, else as strings.
        let is_string = declared.iter().any(|a| a.name == name && is_string_type(a.ty));
        let value = if is_string {
            Value::String(value.into_owned())
        } else {
            serde_json::from_str(&value).unwrap_or_else(|_| Value::String(value.into()))
        };
        args.insert(name.into_owned(), value);
    }
    Ok(args)
}

/// Whether a declared argument type is a string (`String`, `&str`-like,
/// `Option<String>`).
fn is_string_type(ty: &str) -> bool {
    let ty: String = ty.chars().filter(|c| !c.is_whitespace()).collect();
    let inner = ty.strip_prefix("Option<").and_then(|t| t.strip_suffix('>')).unwrap_or(&ty);
    matches!(inner, "String" | "std::string::String" | "alloc::string::String" | "Box<str>")
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;
    use serde_json::json;

    fn typed(ct: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(CONTENT_TYPE, HeaderValue::from_str(ct).unwrap());
        h
    }

    #[test]
    fn content_types() {
        assert!(require(&typed("application/json"), Accept::Json).is_ok());
        assert!(require(&typed("Application/JSON; charset=utf-8"), Accept::Json).is_ok());
        assert!(require(&typed("application/vnd.x+json"), Accept::Json).is_ok());
        assert!(require(&typed("application/merge-patch+json"), Accept::MergePatch).is_ok());
        assert!(require(&typed("application/json"), Accept::MergePatch).is_ok());
        for (ct, accept) in [
            ("text/plain", Accept::Json),
            ("application/json-patch+json", Accept::MergePatch),
            ("application/xml", Accept::MergePatch),
        ] {
            assert_eq!(require(&typed(ct), accept).unwrap_err().status().as_u16(), 415, "{ct}");
        }
        assert_eq!(require(&HeaderMap::new(), Accept::Json).unwrap_err().status().as_u16(), 415);
    }

    #[test]
    fn query_values_are_json_when_they_parse() {
        let args =
            query_arguments(Some("n=3&flag=true&s=%223%22&name=ada&list=[1,2]&e="), &[]).unwrap();
        assert_eq!(
            Value::Object(args),
            json!({"n": 3, "flag": true, "s": "3", "name": "ada", "list": [1, 2], "e": ""})
        );
        assert!(query_arguments(None, &[]).unwrap().is_empty());
        assert_eq!(query_arguments(Some("a=1&a=2"), &[]).unwrap_err().status().as_u16(), 400);
        let declared = [
            kinesis::methods::ArgInfo { name: "key", ty: "String" },
            kinesis::methods::ArgInfo { name: "note", ty: "Option < String >" },
            kinesis::methods::ArgInfo { name: "n", ty: "u64" },
        ];
        let args = query_arguments(Some("key=123&note=true&n=7"), &declared).unwrap();
        assert_eq!(args["key"], json!("123"), "declared strings stay strings");
        assert_eq!(args["note"], json!("true"));
        assert_eq!(args["n"], json!(7));
    }

    #[tokio::test]
    async fn bodies_over_the_limit_are_413() {
        let limited =
            |bytes: Vec<u8>| Body::new(http_body_util::Limited::new(Body::from(bytes), 10));
        let err = read(limited(vec![b'x'; 100]), 10).await.unwrap_err();
        assert_eq!(err.status().as_u16(), 413);
        assert_eq!(read(limited(b"1234".to_vec()), 10).await.unwrap().as_ref(), b"1234");
    }

    #[tokio::test]
    async fn arguments_are_an_object_or_nothing() {
        let none = arguments(&typed("application/json"), Body::empty(), 100).await.unwrap();
        assert!(none.is_empty());
        let untyped_empty = arguments(&HeaderMap::new(), Body::empty(), 100).await;
        assert_eq!(untyped_empty.unwrap_err().status().as_u16(), 415);
        let some = arguments(&typed("application/json"), Body::from("{\"by\":2}"), 100).await;
        assert_eq!(some.unwrap()["by"], 2);
        let arr = arguments(&typed("application/json"), Body::from("[1]"), 100).await;
        assert_eq!(arr.unwrap_err().status().as_u16(), 422);
        let bad = arguments(&typed("application/json"), Body::from("{"), 100).await;
        assert_eq!(bad.unwrap_err().status().as_u16(), 400);
        let untyped = arguments(&HeaderMap::new(), Body::from("{}"), 100).await;
        assert_eq!(untyped.unwrap_err().status().as_u16(), 415);
    }
}
