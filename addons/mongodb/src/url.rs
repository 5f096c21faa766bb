//! The parts of a `mongodb://` URL kinesis reads itself: the collection, and
//! the secrets that must never reach an error message or a log line.

use kinesis::{Error, Result};

use crate::DEFAULT_COLLECTION;

/// The query parameter naming the collection.
pub(crate) const COLLECTION_PARAM: &str = "collection";

/// A connection URL, split into what the driver gets and what kinesis keeps.
pub(crate) struct MongoUrl {
    /// The URL handed to the driver: the original without `collection`.
    pub(crate) driver_url: String,
    /// The URL for messages: password replaced by `***`, query string dropped.
    pub(crate) display: String,
    /// The collection records live in.
    pub(crate) collection: String,
    /// The password of the URL, as written and percent-decoded.
    secrets: Vec<String>,
}

impl MongoUrl {
    pub(crate) fn parse(url: &str) -> Result<Self> {
        let (base, query) = url.split_once('?').unwrap_or((url, ""));
        let mut secrets = Vec::new();
        if let Some((_, rest)) = base.split_once("://") {
            let authority = &rest[..rest.find('/').unwrap_or(rest.len())];
            if let Some((userinfo, _)) = authority.rsplit_once('@') {
                if let Some((_, password)) = userinfo.split_once(':') {
                    for s in [password.to_owned(), percent_decode(password)] {
                        if !s.is_empty() && !secrets.contains(&s) {
                            secrets.push(s);
                        }
                    }
                    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
                }
            }
        }
        let display = kinesis::persist::redact_url(base);

        let mut collection = None;
        let mut kept = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            if percent_decode(k) == COLLECTION_PARAM {
                let name = percent_decode(v);
                if name.is_empty() || name.contains('\0') || name.contains('$') {
                    return Err(Error::Config(format!(
                        "KINESIS_DB_CONNECTION: `{COLLECTION_PARAM}` in {display} must be a \
                         non-empty collection name without `$`, got `{name}`"
                    )));
                }
                collection = Some(name);
            } else {
                kept.push(pair);
            }
        }
        let driver_url =
            if kept.is_empty() { base.to_owned() } else { format!("{base}?{}", kept.join("&")) };
        Ok(MongoUrl {
            driver_url,
            display,
            collection: collection.unwrap_or_else(|| DEFAULT_COLLECTION.to_owned()),
            secrets,
        })
    }

    /// `message` with the URL's password replaced by `***`.
    pub(crate) fn scrub(&self, message: &str) -> String {
        let mut out = message.to_owned();
        for secret in &self.secrets {
            out = out.replace(secret.as_str(), "***");
        }
        out
    }
}

/// Reads a pool size: a whole number from 1 to 10 000. `what` names the source.
pub(crate) fn parse_pool_size(value: &str, what: &str) -> Result<u32> {
    match value.trim().parse::<u32>() {
        Ok(n @ 1..=10_000) => Ok(n),
        _ => Err(Error::Config(format!(
            "{what} must be a whole number from 1 to 10000, got `{value}`"
        ))),
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Some(b) = std::str::from_utf8(&bytes[i + 1..i + 3])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collection_is_taken_out_and_the_rest_kept() {
        let u =
            MongoUrl::parse("mongodb://u:p%2Fw@h1:1,h2:2/db?collection=recs&w=majority").unwrap();
        assert_eq!(u.driver_url, "mongodb://u:p%2Fw@h1:1,h2:2/db?w=majority");
        assert_eq!(u.collection, "recs");
        assert_eq!(u.display, "mongodb://u:***@h1:1,h2:2/db");
        assert_eq!(u.scrub("bad p/w and p%2Fw"), "bad *** and ***");
        let u = MongoUrl::parse("mongodb://h").unwrap();
        assert_eq!(
            (u.driver_url.as_str(), u.collection.as_str()),
            ("mongodb://h", DEFAULT_COLLECTION)
        );
    }

    #[test]
    fn bad_collection_and_pool_size_are_config_errors() {
        assert!(matches!(MongoUrl::parse("mongodb://h/?collection="), Err(Error::Config(_))));
        assert!(matches!(MongoUrl::parse("mongodb://h/?collection=a$b"), Err(Error::Config(_))));
        let err = parse_pool_size("0", "KINESIS_DB_POOL_SIZE").unwrap_err();
        assert!(err.to_string().contains("KINESIS_DB_POOL_SIZE"));
    }
}
