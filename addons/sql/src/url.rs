//! The parts of a connection URL kinesis reads itself: the pool size, and the
//! secrets that must never reach an error message or a log line.

use kinesis::{Error, Result};

/// The query parameter of a connection URL that sets the pool size.
pub(crate) const POOL_SIZE_PARAM: &str = "pool_size";

/// A connection URL, split into what sqlx gets and what kinesis keeps.
pub(crate) struct ConnUrl {
    /// The scheme, lower-cased: `sqlite`, `postgres`, `postgresql`, `mysql`, `mariadb`.
    pub(crate) scheme: String,
    /// The URL handed to sqlx: the original without kinesis' own parameters.
    pub(crate) driver_url: String,
    /// The URL for messages: password replaced by `***`, query string dropped.
    pub(crate) display: String,
    /// `pool_size` from the query string, if given.
    pub(crate) pool_size: Option<u32>,
    /// Passwords found in the URL (as written and percent-decoded).
    secrets: Vec<String>,
}

impl ConnUrl {
    /// Splits `url`; a malformed `pool_size` is an [`Error::Config`].
    pub(crate) fn parse(url: &str) -> Result<Self> {
        let (scheme, rest) = url.split_once(':').ok_or_else(|| {
            Error::Config(format!(
                "KINESIS_DB_CONNECTION: `{}` is not a URL of the form scheme://…",
                kinesis::persist::redact_url(url)
            ))
        })?;
        let (before_fragment, fragment) = match rest.split_once('#') {
            Some((b, f)) => (b, Some(f)),
            None => (rest, None),
        };
        let (base, query) = match before_fragment.split_once('?') {
            Some((b, q)) => (b, Some(q)),
            None => (before_fragment, None),
        };

        let mut secrets = Vec::new();
        if let Some(authority) = base.strip_prefix("//") {
            let authority = &authority[..authority.find('/').unwrap_or(authority.len())];
            if let Some((userinfo, _host)) = authority.rsplit_once('@') {
                if let Some((_user, password)) = userinfo.split_once(':') {
                    push_secret(&mut secrets, password);
                }
            }
        }

        let mut pool_size = None;
        let mut kept = Vec::new();
        for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let key = percent_decode(key);
            if key == POOL_SIZE_PARAM {
                pool_size = Some(parse_pool_size(
                    &percent_decode(value),
                    &format!("`{POOL_SIZE_PARAM}` in the connection URL"),
                )?);
                continue;
            }
            if key.contains("password") {
                push_secret(&mut secrets, value);
            }
            kept.push(pair);
        }

        let mut driver_url = format!("{scheme}:{base}");
        if !kept.is_empty() {
            driver_url.push('?');
            driver_url.push_str(&kept.join("&"));
        }
        if let Some(fragment) = fragment {
            driver_url.push('#');
            driver_url.push_str(fragment);
        }
        let display = kinesis::persist::redact_url(&format!("{scheme}:{base}"));

        Ok(ConnUrl { scheme: scheme.to_ascii_lowercase(), driver_url, display, pool_size, secrets })
    }

    /// `message` with every password of the URL replaced by `***`.
    pub(crate) fn scrub(&self, message: &str) -> String {
        let mut out = message.to_owned();
        for secret in &self.secrets {
            out = out.replace(secret.as_str(), "***");
        }
        out
    }

    /// Whether the URL handed to the driver has the query parameter `key`.
    #[cfg(feature = "sqlite")]
    pub(crate) fn has_param(&self, key: &str) -> bool {
        let before_fragment = self.driver_url.split('#').next().unwrap_or("");
        before_fragment
            .split_once('?')
            .is_some_and(|(_, q)| q.split('&').any(|p| p.split('=').next() == Some(key)))
    }

    /// Whether this names an SQLite database in memory rather than a file.
    #[cfg(feature = "sqlite")]
    pub(crate) fn is_sqlite_memory(&self) -> bool {
        let after_scheme = self.driver_url[self.scheme.len() + 1..].trim_start_matches("//");
        let (path, query) = after_scheme.split_once('?').unwrap_or((after_scheme, ""));
        path == ":memory:" || query.split('&').any(|p| p == "mode=memory")
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

fn push_secret(secrets: &mut Vec<String>, raw: &str) {
    if raw.is_empty() {
        return;
    }
    let decoded = percent_decode(raw);
    // Longest first, so a secret that contains another is replaced whole.
    for s in [raw.to_owned(), decoded] {
        if !secrets.contains(&s) {
            secrets.push(s);
        }
    }
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
}

/// Decodes `%XX` escapes (and `+` as a space, as query strings write it).
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                match std::str::from_utf8(&bytes[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                        continue;
                    }
                    None => out.push(b'%'),
                }
            }
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_pool_size_and_keeps_other_parameters() {
        let u = ConnUrl::parse(
            "postgres://u:p%40ss@h:5432/db?sslmode=disable&pool_size=7&application_name=x",
        )
        .unwrap();
        assert_eq!(u.scheme, "postgres");
        assert_eq!(u.pool_size, Some(7));
        assert_eq!(
            u.driver_url,
            "postgres://u:p%40ss@h:5432/db?sslmode=disable&application_name=x"
        );
        assert_eq!(u.display, "postgres://u:***@h:5432/db");
        assert_eq!(u.scrub("auth failed for p@ss and p%40ss"), "auth failed for *** and ***");
    }

    #[test]
    fn bad_pool_size_is_a_config_error_naming_the_parameter() {
        for bad in ["0", "-1", "x", "", "10001"] {
            let err = ConnUrl::parse(&format!("mysql://h/db?pool_size={bad}")).err().unwrap();
            assert!(matches!(err, Error::Config(ref m) if m.contains("pool_size")), "{err}");
        }
        let err = parse_pool_size("many", "KINESIS_DB_POOL_SIZE").unwrap_err();
        assert!(err.to_string().contains("KINESIS_DB_POOL_SIZE"), "{err}");
    }

    #[test]
    fn query_passwords_are_secrets_and_not_displayed() {
        let u = ConnUrl::parse("postgres://h/db?password=hunter22").unwrap();
        assert_eq!(u.display, "postgres://h/db");
        assert_eq!(u.scrub("x hunter22 y"), "x *** y");
    }

    #[cfg(feature = "sqlite")]
    #[test]
    fn sqlite_urls() {
        let u = ConnUrl::parse("sqlite://data/k.db?pool_size=2").unwrap();
        assert_eq!(u.driver_url, "sqlite://data/k.db");
        assert!(!u.is_sqlite_memory());
        assert!(ConnUrl::parse("sqlite://:memory:").unwrap().is_sqlite_memory());
        assert!(ConnUrl::parse("sqlite::memory:").unwrap().is_sqlite_memory());
        assert!(ConnUrl::parse("sqlite://x?mode=memory").unwrap().is_sqlite_memory());
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%20b+c%2"), "a b c%2");
        assert_eq!(percent_decode("%zz%41"), "%zzA");
    }
}
