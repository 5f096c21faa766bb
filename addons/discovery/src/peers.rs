//! `KINESIS_PEERS=name=url,…`: the static list of instances, for when there
//! is no NATS.

use kinesis::{Error, Result};

use crate::instance::{validate_instance_name, Instance, Source};

/// Parses a peer list: `name=url` entries separated by commas (spaces
/// around them are ignored). Each name is checked like an instance name,
/// each URL like a client URL (`http://`, `https://`, `unix:`), and a name
/// may appear once. The error names `KINESIS_PEERS` and the bad entry.
pub fn parse_peers(text: &str) -> Result<Vec<Instance>> {
    let mut out: Vec<Instance> = Vec::new();
    for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let bad = |why: String| Error::Config(format!("KINESIS_PEERS: `{entry}`: {why}"));
        let Some((name, url)) = entry.split_once('=') else {
            return Err(bad("expected name=url".into()));
        };
        let (name, url) = (name.trim(), url.trim());
        validate_instance_name(name).map_err(|e| bad(e.to_string()))?;
        // The client's own parser decides what a URL of a runtime is.
        kinesis_client::Client::new(url).map_err(|e| bad(e.to_string()))?;
        if out.iter().any(|p| p.name == name) {
            return Err(bad(format!("`{name}` is listed twice")));
        }
        out.push(Instance {
            name: name.to_owned(),
            urls: vec![url.to_owned()],
            source: Source::Peers,
            id: None,
            version: None,
            components: None,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_peer_list_is_names_and_urls() {
        let peers =
            parse_peers(" orders=http://127.0.0.1:8081 , billing=unix:/run/b.sock,").unwrap();
        let pairs: Vec<_> = peers.iter().map(|p| (p.name.as_str(), p.urls[0].as_str())).collect();
        assert_eq!(pairs, [("orders", "http://127.0.0.1:8081"), ("billing", "unix:/run/b.sock")]);
        assert!(parse_peers("").unwrap().is_empty());
    }

    #[test]
    fn a_bad_peer_list_names_the_variable_and_the_entry() {
        for (text, says) in [
            ("orders", "expected name=url"),
            ("or.ders=http://127.0.0.1:1", "not an instance name"),
            ("orders=ftp://x", "ftp://x"),
            ("a=http://127.0.0.1:1,a=http://127.0.0.1:2", "listed twice"),
        ] {
            let err = parse_peers(text).unwrap_err().to_string();
            assert!(err.contains("KINESIS_PEERS") && err.contains(says), "{text}: {err}");
        }
    }
}
