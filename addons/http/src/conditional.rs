//! Conditional requests: `ETag`, `If-Match`, `If-None-Match`.
//!
//! ETags are strong and sent in quotes. `If-None-Match` is compared here
//! (weakly, as RFC 9110 says) and answers `304 Not Modified`. `If-Match` is
//! only validated here: the comparison itself happens inside the component's
//! mailbox, atomically with the write, so two writers holding the same ETag
//! can never both succeed. A weak tag never matches `If-Match`.

use axum::http::header::{HeaderValue, IF_MATCH, IF_NONE_MATCH};
use axum::http::HeaderMap;
use headers::{HeaderMapExt, IfMatch, IfNoneMatch};
use kinesis::ETag;

use crate::problem::Problem;

/// The `ETag` header value of a kinesis ETag: strong, in quotes.
pub(crate) fn etag_value(etag: &ETag) -> HeaderValue {
    HeaderValue::try_from(etag.quoted()).expect("a quoted kinesis ETag is a valid header value")
}

/// Whether `If-None-Match` names `etag` (or is `*`): then the answer is 304.
pub(crate) fn not_modified(headers: &HeaderMap, etag: &ETag) -> Result<bool, Problem> {
    if !headers.contains_key(IF_NONE_MATCH) {
        return Ok(false);
    }
    let typed: headers::ETag =
        etag.quoted().parse().expect("a quoted kinesis ETag is a valid entity tag");
    match headers.typed_try_get::<IfNoneMatch>() {
        Ok(None) => Ok(false),
        Ok(Some(inm)) => Ok(!inm.precondition_passes(&typed)),
        Err(_) => Err(Problem::bad_request("the If-None-Match header is malformed")),
    }
}

/// The `If-Match` header as the runtime compares it: `None` when absent,
/// `"*"` for any, else the list of tags as sent.
pub(crate) fn if_match(headers: &HeaderMap) -> Result<Option<String>, Problem> {
    let malformed = || Problem::bad_request("the If-Match header is malformed");
    let parsed = headers.typed_try_get::<IfMatch>().map_err(|_| malformed())?;
    let Some(parsed) = parsed else { return Ok(None) };
    if parsed.is_any() {
        return Ok(Some("*".to_owned()));
    }
    let mut tags = String::new();
    for value in headers.get_all(IF_MATCH) {
        let value = value.to_str().map_err(|_| malformed())?;
        if !tags.is_empty() {
            tags.push_str(", ");
        }
        tags.push_str(value);
    }
    Ok(Some(tags))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag() -> ETag {
        ETag::of(b"{}", None)
    }

    fn with(name: axum::http::HeaderName, value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(name, HeaderValue::from_str(value).unwrap());
        h
    }

    #[test]
    fn if_none_match_compares_weakly() {
        let etag = tag();
        assert!(!not_modified(&HeaderMap::new(), &etag).unwrap());
        assert!(not_modified(&with(IF_NONE_MATCH, &tag().quoted()), &etag).unwrap());
        assert!(
            not_modified(&with(IF_NONE_MATCH, &format!("W/{}", tag().quoted())), &etag).unwrap()
        );
        assert!(not_modified(&with(IF_NONE_MATCH, "*"), &etag).unwrap());
        assert!(not_modified(&with(IF_NONE_MATCH, "\"a\", \"b\""), &etag).is_ok_and(|m| !m));
        assert!(!not_modified(&with(IF_NONE_MATCH, "\"other\""), &etag).unwrap());
    }

    #[test]
    fn if_match_passes_the_tags_through() {
        assert_eq!(if_match(&HeaderMap::new()).unwrap(), None);
        assert_eq!(if_match(&with(IF_MATCH, "*")).unwrap().as_deref(), Some("*"));
        let mut h = with(IF_MATCH, "\"a\"");
        h.append(IF_MATCH, HeaderValue::from_static("\"b\""));
        assert_eq!(if_match(&h).unwrap().as_deref(), Some("\"a\", \"b\""));
    }

    #[test]
    fn etag_headers_are_quoted_and_strong() {
        let value = etag_value(&tag());
        assert_eq!(value.to_str().unwrap(), tag().quoted());
        let mut h = HeaderMap::new();
        h.insert(axum::http::header::ETAG, value);
        let typed: headers::ETag = h.typed_get().unwrap();
        assert!(!typed.is_weak());
    }
}
