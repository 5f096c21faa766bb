//! [`InstanceConfig`]: how a runtime names and announces itself, read from
//! the environment.

use std::net::SocketAddr;

use kinesis::{Error, Result};

use crate::instance::validate_instance_name;

/// This process as an instance: its name, the URL it is reached at, and
/// the NATS server to announce it on.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct InstanceConfig {
    /// `KINESIS_INSTANCE`: the name; `None`, the process has none.
    pub name: Option<String>,
    /// `KINESIS_INSTANCE_URL`: the URL to announce instead of the one
    /// derived from the HTTP add-on's address.
    pub url: Option<String>,
    /// `KINESIS_EVENTS_URL`: the NATS server to announce on.
    pub nats_url: Option<String>,
}

impl std::fmt::Debug for InstanceConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InstanceConfig")
            .field("name", &self.name)
            .field("url", &self.url)
            .field("nats_url", &self.nats_url.as_deref().map(redact))
            .finish()
    }
}

/// `url` with any `user:password@` replaced, for messages.
pub(crate) fn redact(url: &str) -> String {
    match (url.split_once("://"), url.rfind('@')) {
        (Some((scheme, _)), Some(at)) => format!("{scheme}://…@{}", &url[at + 1..]),
        _ => url.to_owned(),
    }
}

impl InstanceConfig {
    /// Reads and checks `KINESIS_INSTANCE`, `KINESIS_INSTANCE_URL` and
    /// `KINESIS_EVENTS_URL`; a bad value is an [`Error::Config`] naming the
    /// variable.
    pub fn from_env() -> Result<InstanceConfig> {
        let name = kinesis::config::env_var("KINESIS_INSTANCE").transpose()?;
        if let Some(name) = &name {
            validate_instance_name(name)
                .map_err(|e| Error::Config(format!("KINESIS_INSTANCE: {e}")))?;
        }
        let url = kinesis::config::env_var("KINESIS_INSTANCE_URL").transpose()?;
        if let Some(url) = &url {
            kinesis_client::Client::new(url.as_str())
                .map_err(|e| Error::Config(format!("KINESIS_INSTANCE_URL: {e}")))?;
        }
        let nats_url = kinesis::config::env_var("KINESIS_EVENTS_URL").transpose()?;
        #[cfg(feature = "nats")]
        if let Some(nats_url) = &nats_url {
            crate::nats::check_url("KINESIS_EVENTS_URL", nats_url)?;
        }
        Ok(InstanceConfig { name, url, nats_url })
    }

    /// The URL to announce for an HTTP server bound to `addr` (`None`: on a
    /// Unix socket at `socket`): `KINESIS_INSTANCE_URL` if set, else
    /// `http://addr` or `unix:socket`. A wildcard address (0.0.0.0, ::)
    /// says nothing about where others reach it, so it needs
    /// `KINESIS_INSTANCE_URL`.
    pub fn announced_url(
        &self,
        addr: Option<SocketAddr>,
        socket: Option<&std::path::Path>,
        tls: bool,
    ) -> Result<String> {
        if let Some(url) = &self.url {
            return Ok(url.clone());
        }
        if let Some(path) = socket {
            return Ok(format!("unix:{}", path.display()));
        }
        let Some(addr) = addr else {
            return Err(Error::Config(
                "KINESIS_INSTANCE: the HTTP add-on has no address to announce; set KINESIS_INSTANCE_URL".into(),
            ));
        };
        if addr.ip().is_unspecified() {
            return Err(Error::Config(format!(
                "KINESIS_INSTANCE: the HTTP add-on listens on {addr}, which is no address to reach it at; set KINESIS_INSTANCE_URL"
            )));
        }
        Ok(format!("{}://{addr}", if tls { "https" } else { "http" }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_announced_url_comes_from_the_bound_address_unless_given() {
        let config = InstanceConfig { name: Some("a".into()), ..Default::default() };
        let addr: SocketAddr = "127.0.0.1:8081".parse().unwrap();
        assert_eq!(config.announced_url(Some(addr), None, false).unwrap(), "http://127.0.0.1:8081");
        assert_eq!(config.announced_url(Some(addr), None, true).unwrap(), "https://127.0.0.1:8081");
        let sock = std::path::Path::new("/run/k.sock");
        assert_eq!(config.announced_url(None, Some(sock), false).unwrap(), "unix:/run/k.sock");
        let wildcard: SocketAddr = "0.0.0.0:8080".parse().unwrap();
        let err = config.announced_url(Some(wildcard), None, false).unwrap_err().to_string();
        assert!(err.contains("KINESIS_INSTANCE_URL"), "{err}");
        let given = InstanceConfig { url: Some("http://10.0.0.5:8080".into()), ..config };
        assert_eq!(
            given.announced_url(Some(wildcard), None, false).unwrap(),
            "http://10.0.0.5:8080"
        );
    }
}
