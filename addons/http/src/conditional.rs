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
use kinesis::{ETag, Precondition};

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

/// The `If-Match` header as a typed precondition: `None` when absent,
/// [`Precondition::Any`] for `*`, else the strong tags it lists. Tags that
/// kinesis never issues (weak ones, other shapes) are kept out of the list:
/// they can never match, so a header of only such tags fails every write.
pub(crate) fn if_match(headers: &HeaderMap) -> Result<Option<Precondition>, Problem> {
    let malformed = || Problem::bad_request("the If-Match header is malformed");
    let parsed = headers.typed_try_get::<IfMatch>().map_err(|_| malformed())?;
    let Some(parsed) = parsed else { return Ok(None) };
    if parsed.is_any() {
        return Ok(Some(Precondition::Any));
    }
    let mut tags = Vec::new();
    for value in headers.get_all(IF_MATCH) {
        let value = value.to_str().map_err(|_| malformed())?;
        for tag in value.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            let (weak, quoted) = match tag.strip_prefix("W/") {
                Some(rest) => (true, rest),
                None => (false, tag),
            };
            let inner = quoted
                .strip_prefix('"')
                .and_then(|t| t.strip_suffix('"'))
                .filter(|t| !t.contains('"'))
                .ok_or_else(malformed)?;
            if let (false, Ok(tag)) = (weak, inner.parse::<ETag>()) {
                tags.push(tag);
            }
        }
    }
    Ok(Some(Precondition::Tags(tags)))
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
    fn if_match_becomes_a_typed_precondition() {
        assert_eq!(if_match(&HeaderMap::new()).unwrap(), None);
        assert_eq!(if_match(&with(IF_MATCH, "*")).unwrap(), Some(Precondition::Any));
        let other = ETag::of(b"[]", None);
        let mut h = with(IF_MATCH, &format!("{}, W/{}", tag().quoted(), tag().quoted()));
        h.append(IF_MATCH, HeaderValue::try_from(other.quoted()).unwrap());
        h.append(IF_MATCH, HeaderValue::from_static("\"not-a-kinesis-tag\""));
        assert_eq!(if_match(&h).unwrap(), Some(Precondition::Tags(vec![tag(), other])));
        let weak_only = if_match(&with(IF_MATCH, &format!("W/{}", tag().quoted()))).unwrap();
        assert!(!weak_only.unwrap().passes(&tag()), "a weak tag never passes If-Match");
        assert!(if_match(&with(IF_MATCH, "no quotes")).is_err());
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
