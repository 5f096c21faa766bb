//! Reading a configuration: the TOML file, the environment overrides on
//! top, the user's type, its validation. Every error message says where the
//! problem is and never quotes a value from the file or the environment.

use std::path::Path;

use serde::de::DeserializeOwned;

/// Why a configuration was refused: where and what, without values.
pub(crate) type Reason = String;

/// Reads `text` (the file at `path`) as TOML, applies the overrides among
/// `env` whose names start with `prefix`, and deserialises the result.
pub(crate) fn parse<T: DeserializeOwned>(
    path: &Path,
    text: &str,
    env: &[(String, String)],
    prefix: Option<&str>,
) -> Result<T, Reason> {
    let mut table: toml::Table = toml::from_str(text).map_err(|e| describe_toml(path, text, &e))?;
    if let Some(prefix) = prefix {
        let mut overrides: Vec<&(String, String)> =
            env.iter().filter(|(name, _)| name.starts_with(prefix)).collect();
        // Applied in name order, so the outcome does not depend on the
        // order of the environment.
        overrides.sort();
        for (name, raw) in overrides {
            apply_override(&mut table, prefix, name, raw)?;
        }
    }
    serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|e| {
        let at = e.path().to_string();
        let message = redact_quoted(&e.inner().to_string());
        if at == "." {
            format!("{}: {message}", path.display())
        } else {
            format!("{}: `{at}`: {message}", path.display())
        }
    })
}

/// `PREFIX` + `SECTION__KEY` sets `section.key` (lower case) to the value,
/// read as a TOML value when it is one (`8080`, `true`, `"text"`, `[1, 2]`)
/// and as a string otherwise.
fn apply_override(
    table: &mut toml::Table,
    prefix: &str,
    name: &str,
    raw: &str,
) -> Result<(), Reason> {
    let segments: Vec<String> =
        name[prefix.len()..].split("__").map(str::to_ascii_lowercase).collect();
    if segments.iter().any(String::is_empty) {
        return Err(format!(
            "environment variable {name}: after {prefix} it must name a key as SECTION__KEY, \
             with no empty part"
        ));
    }
    let (last, sections) = segments.split_last().expect("split gives at least one segment");
    let mut here = table;
    for (i, section) in sections.iter().enumerate() {
        let entry =
            here.entry(section.clone()).or_insert_with(|| toml::Value::Table(toml::Table::new()));
        here = entry.as_table_mut().ok_or_else(|| {
            format!(
                "environment variable {name}: `{}` is not a table in the file, so it has no key `{}`",
                segments[..=i].join("."),
                segments[i + 1]
            )
        })?;
    }
    here.insert(last.clone(), toml_value(raw));
    Ok(())
}

/// `raw` as a TOML value if it is exactly one, else as a string.
fn toml_value(raw: &str) -> toml::Value {
    match toml::from_str::<toml::Table>(&format!("v = {raw}")) {
        Ok(mut t) if t.len() == 1 => t.remove("v").unwrap_or_else(|| raw.into()),
        _ => toml::Value::String(raw.to_owned()),
    }
}

/// `path: line L, column C: message`, without the excerpt of the file that
/// toml's own rendering shows (it may hold a secret).
fn describe_toml(path: &Path, text: &str, e: &toml::de::Error) -> Reason {
    let message = redact_quoted(e.message().trim());
    match e.span() {
        Some(span) => {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
            format!("{}: line {line}, column {column}: {message}", path.display())
        }
        None => format!("{}: {message}", path.display()),
    }
}

/// Replaces the contents of every double-quoted part of `message` (serde
/// quotes the offending string value: `invalid type: string "…"`) with `…`.
/// Names in backticks are kept.
pub(crate) fn redact_quoted(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut inside = false;
    let mut escaped = false;
    for c in message.chars() {
        if inside {
            match (escaped, c) {
                (false, '\\') => escaped = true,
                (false, '"') => {
                    out.push_str("…\"");
                    inside = false;
                }
                _ => escaped = false,
            }
        } else {
            out.push(c);
            inside = c == '"';
        }
    }
    if inside {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize, PartialEq)]
    struct Conf {
        name: String,
        server: Server,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    struct Server {
        port: u16,
        #[serde(default)]
        tls: bool,
        #[serde(default)]
        hosts: Vec<String>,
    }

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    const FILE: &str = "name = \"demo\"\n[server]\nport = 80\n";

    #[test]
    fn overrides_set_nested_keys_with_typed_values() {
        let p = Path::new("app.toml");
        let c: Conf = parse(
            p,
            FILE,
            &env(&[
                ("APP__SERVER__PORT", "8080"),
                ("APP__SERVER__TLS", "true"),
                ("APP__SERVER__HOSTS", "[\"a\", \"b\"]"),
                ("APP__NAME", "postgres://not toml"),
                ("OTHER__NAME", "ignored"),
            ]),
            Some("APP__"),
        )
        .unwrap();
        assert_eq!(c.name, "postgres://not toml");
        assert_eq!(c.server, Server { port: 8080, tls: true, hosts: vec!["a".into(), "b".into()] });
        let err =
            parse::<Conf>(p, FILE, &env(&[("APP__NAME__X", "1")]), Some("APP__")).unwrap_err();
        assert!(err.contains("`name` is not a table"), "{err}");
        let err =
            parse::<Conf>(p, FILE, &env(&[("APP__SERVER____X", "1")]), Some("APP__")).unwrap_err();
        assert!(err.contains("no empty part"), "{err}");
    }

    #[test]
    fn errors_say_where_and_never_quote_values() {
        let p = Path::new("app.toml");
        let err = parse::<Conf>(p, "name = \"demo\"\n[server]\nport = \"hunter2\"\n", &[], None)
            .unwrap_err();
        assert!(err.contains("`server.port`"), "{err}");
        assert!(!err.contains("hunter2"), "{err}");
        let err = parse::<Conf>(p, "name = \"demo\"\n[server\nport = 1\n", &[], None).unwrap_err();
        assert!(err.starts_with("app.toml: line 2, column"), "{err}");
        let err = parse::<Conf>(p, "password = \"s3cret\nname = 1", &[], None).unwrap_err();
        assert!(!err.contains("s3cret"), "{err}");
        let err = parse::<Conf>(p, "name = \"x\"\n", &[], None).unwrap_err();
        assert!(err.contains("missing field `server`"), "{err}");
        let err = parse::<Conf>(p, FILE, &env(&[("APP__SERVER__PORT", "\"p4ss\"")]), Some("APP__"))
            .unwrap_err();
        assert!(!err.contains("p4ss"), "{err}");
        assert_eq!(redact_quoted(r#"a "b\"c" d "e"#), "a \"…\" d \"…");
    }
}
