//! Grants: what a token may do, as `VERB:PATTERN`.
//!
//! | verb | allows |
//! | --- | --- |
//! | `read` | `GET`/`HEAD` of a state, `_watch`, read-only methods, `GET /` |
//! | `write` | `PUT`, `PATCH`, mutating methods, `_batch` |
//! | `control` | `_control` (and cancelling a task) |
//! | `admin` | everything |
//!
//! The verbs are independent: `write` does not imply `read` (grant both
//! for a client that reads before it writes), only `admin` implies the rest.
//!
//! PATTERN is a component URI whose segments may be `*` (any one segment);
//! a last segment `**` matches the URI before it and everything below it:
//! `read:/root/**`, `write:/root/counter`, `control:/**`, `read:/root/*/stats`.
//! A bare verb (`read`) is `read:/**`.

use std::fmt;

/// The kind of access a request needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Verb {
    /// Reads: states, watches, read-only methods, the tree.
    Read,
    /// Writes: replace, patch, mutating methods, batches.
    Write,
    /// Control messages: stop, restart, persist, notify.
    Control,
    /// Everything.
    Admin,
}

impl Verb {
    /// The verb's name in a scope.
    pub fn as_str(self) -> &'static str {
        match self {
            Verb::Read => "read",
            Verb::Write => "write",
            Verb::Control => "control",
            Verb::Admin => "admin",
        }
    }

    fn parse(s: &str) -> Option<Verb> {
        Some(match s {
            "read" => Verb::Read,
            "write" => Verb::Write,
            "control" => Verb::Control,
            "admin" => Verb::Admin,
            _ => return None,
        })
    }
}

impl fmt::Display for Verb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One `VERB:PATTERN` grant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    verb: Verb,
    /// The pattern's segments, without the leading empty one.
    segments: Vec<String>,
    /// Whether the pattern ended in `/**`.
    subtree: bool,
}

impl Grant {
    /// Parses `read:/root/**`, `write:/root/counter`, or a bare verb.
    ///
    /// ```
    /// use kinesis_http::security::{Grant, Verb};
    /// let g = Grant::parse("read:/root/**").unwrap();
    /// assert!(g.allows(Verb::Read, "/root/counter"));
    /// assert!(g.allows(Verb::Read, "/root"));
    /// assert!(!g.allows(Verb::Write, "/root/counter"));
    /// assert!(!g.allows(Verb::Read, "/addons/http"));
    /// assert!(Grant::parse("delete:/root").is_err());
    /// ```
    pub fn parse(text: &str) -> Result<Grant, String> {
        let (verb, pattern) = text.split_once(':').unwrap_or((text, "/**"));
        let verb = Verb::parse(verb).ok_or_else(|| {
            format!("`{text}`: unknown verb `{verb}`; use read, write, control or admin")
        })?;
        let rest = pattern.strip_prefix('/').ok_or_else(|| {
            format!("`{text}`: the pattern must be a URI starting with `/`, such as /root/**")
        })?;
        let mut segments: Vec<String> =
            if rest.is_empty() { Vec::new() } else { rest.split('/').map(str::to_owned).collect() };
        let subtree = segments.last().is_some_and(|s| s == "**");
        if subtree {
            segments.pop();
        }
        if let Some(bad) = segments.iter().find(|s| {
            s.is_empty()
                || s.contains("**")
                || (s.contains('*') && s.as_str() != "*")
                || s.chars().any(|c| c.is_whitespace() || c.is_control())
        }) {
            return Err(format!(
                "`{text}`: bad segment `{bad}`; a segment is a name, `*` (one segment) or a last `**` (a subtree)"
            ));
        }
        Ok(Grant { verb, segments, subtree })
    }

    /// Whether this grant allows `verb` on the component at `uri`.
    pub fn allows(&self, verb: Verb, uri: &str) -> bool {
        (self.verb == verb || self.verb == Verb::Admin) && self.matches(uri)
    }

    /// Whether the grant's verb covers `verb` somewhere.
    pub fn has_verb(&self, verb: Verb) -> bool {
        self.verb == verb || self.verb == Verb::Admin
    }

    fn matches(&self, uri: &str) -> bool {
        let path = uri.strip_prefix('/').unwrap_or(uri);
        let mut parts = path.split('/').filter(|s| !s.is_empty());
        for want in &self.segments {
            match parts.next() {
                Some(got) if want == "*" || want == got => {}
                _ => return false,
            }
        }
        self.subtree || parts.next().is_none()
    }
}

impl fmt::Display for Grant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:/{}", self.verb, self.segments.join("/"))?;
        if self.subtree {
            f.write_str(if self.segments.is_empty() { "**" } else { "/**" })?;
        }
        Ok(())
    }
}

/// The grants of one caller.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grants(Vec<Grant>);

impl Grants {
    /// Parses space-separated grants (an OAuth 2 `scope`).
    pub fn parse(scope: &str) -> Result<Grants, String> {
        scope.split_whitespace().map(Grant::parse).collect::<Result<_, _>>().map(Grants)
    }

    /// Everything: `admin:/**`.
    pub fn admin() -> Grants {
        Grants(vec![Grant { verb: Verb::Admin, segments: Vec::new(), subtree: true }])
    }

    /// Whether some grant allows `verb` on `uri`.
    pub fn allows(&self, verb: Verb, uri: &str) -> bool {
        self.0.iter().any(|g| g.allows(verb, uri))
    }

    /// Whether some grant has `verb` (on any pattern).
    pub fn has_verb(&self, verb: Verb) -> bool {
        self.0.iter().any(|g| g.has_verb(verb))
    }

    /// The grants.
    pub fn iter(&self) -> impl Iterator<Item = &Grant> {
        self.0.iter()
    }
}

impl fmt::Display for Grants {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, g) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{g}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g(s: &str) -> Grant {
        Grant::parse(s).unwrap()
    }

    #[test]
    fn patterns_match_as_documented() {
        let cases = [
            ("read:/root/counter", "/root/counter", true),
            ("read:/root/counter", "/root/counter/x", false),
            ("read:/root/counter", "/root", false),
            ("read:/root/*", "/root/counter", true),
            ("read:/root/*", "/root/app/counter", false),
            ("read:/root/*", "/root", false),
            ("read:/root/**", "/root", true),
            ("read:/root/**", "/root/app/counter", true),
            ("read:/root/**", "/rootx", false),
            ("read:/**", "/", true),
            ("read:/**", "/addons/http", true),
            ("read", "/root/x", true),
            ("read:/", "/", true),
            ("read:/", "/root", false),
            ("read:/root/*/stats", "/root/app/stats", true),
            ("read:/root/*/stats", "/root/app/other", false),
        ];
        for (grant, uri, expected) in cases {
            assert_eq!(g(grant).allows(Verb::Read, uri), expected, "{grant} on {uri}");
        }
    }

    #[test]
    fn verbs_are_independent_but_admin_is_everything() {
        assert!(!g("write:/**").allows(Verb::Read, "/root"));
        assert!(!g("read:/**").allows(Verb::Write, "/root"));
        assert!(!g("control:/**").allows(Verb::Write, "/root"));
        for verb in [Verb::Read, Verb::Write, Verb::Control, Verb::Admin] {
            assert!(g("admin:/root/**").allows(verb, "/root/c"), "{verb}");
            assert!(!g("admin:/root/**").allows(verb, "/addons/http"), "{verb}");
        }
    }

    #[test]
    fn bad_grants_are_refused_with_a_reason() {
        for bad in
            ["delete:/root", "read:root", "read:/root/**/x", "read:/ro*t", "read:/root//x", ""]
        {
            if bad.is_empty() {
                assert!(Grants::parse(bad).unwrap().iter().next().is_none());
                continue;
            }
            let err = Grant::parse(bad).unwrap_err();
            assert!(err.contains(bad), "{err}");
        }
    }

    #[test]
    fn grants_print_as_they_parse() {
        for s in ["read:/root/**", "write:/root/counter", "control:/**", "admin:/root/*/x"] {
            assert_eq!(g(s).to_string(), s);
        }
    }
}
