//! Discovery over NATS, following the NATS micro-services protocol: an
//! instance is a service called `kinesis` whose metadata carries its name
//! and addresses. It answers `$SRV.PING`, `$SRV.INFO` and `$SRV.STATS` (the
//! protocol's own verbs, served by `async-nats`), and one endpoint of its
//! own, `kinesis.instance.{id}.components`, with the URIs of the components
//! it holds.
//!
//! Finding instances is one `$SRV.INFO.kinesis` request whose answers are
//! gathered for a short window: an instance that stopped (or was killed)
//! does not answer, so it is not listed.

use std::collections::HashMap;
use std::time::Duration;

use async_nats::service::Info;
use futures::StreamExt;
use kinesis::{Error, Result};

pub(crate) use crate::config::redact;
use crate::instance::{Instance, Source};

/// The NATS service name every kinesis instance registers under.
pub const SERVICE: &str = "kinesis";
/// Metadata key: the instance's name.
pub(crate) const META_INSTANCE: &str = "instance";
/// Metadata key: its URLs, space separated, preferred first.
pub(crate) const META_URLS: &str = "urls";
/// Metadata key: the id of its run (`kinesis::runtime::run_id`).
pub(crate) const META_RUN: &str = "run";

/// The subject of an instance's `components` endpoint.
pub(crate) fn components_subject(id: &str) -> String {
    format!("{}.components", components_group(id))
}

/// The endpoint group of an instance (`kinesis.instance.{id}`).
pub(crate) fn components_group(id: &str) -> String {
    format!("kinesis.instance.{id}")
}

/// Checks a NATS URL (`nats://`, `tls://`, `ws://`, `wss://`, several
/// separated by commas) without connecting.
pub fn check_url(variable: &str, url: &str) -> Result<()> {
    for one in url.split(',').map(str::trim) {
        let scheme = one.split_once("://").map(|(s, _)| s);
        if !matches!(scheme, Some("nats" | "tls" | "ws" | "wss")) || one.len() <= "nats://".len() {
            return Err(Error::Config(format!(
                "{variable}: `{}` is not a NATS URL (nats://host:port)",
                redact(one)
            )));
        }
    }
    Ok(())
}

/// Connects to NATS at `url`. It does not wait for the server: the client
/// connects (and later reconnects) in the background, and subscriptions
/// made meanwhile are sent once it is connected, so an instance started
/// before NATS announces itself when NATS comes up.
pub async fn connect(url: &str, name: &str) -> Result<async_nats::Client> {
    async_nats::ConnectOptions::new()
        .name(name)
        .retry_on_initial_connect()
        .connection_timeout(Duration::from_secs(2))
        .event_callback(|event| async move {
            match event {
                async_nats::Event::Connected => tracing::info!("connected to NATS"),
                async_nats::Event::Disconnected => tracing::warn!("disconnected from NATS"),
                other => tracing::debug!(event = %other, "NATS"),
            }
        })
        .connect(url)
        .await
        .map_err(|e| Error::Unreachable(format!("NATS at {}: {e}", redact(url))))
}

/// Connects and waits until the connection is up, at most `timeout`: for
/// one-shot lookups (the command line), which must fail fast and clearly.
pub async fn connect_now(url: &str, timeout: Duration) -> Result<async_nats::Client> {
    let connecting = async_nats::ConnectOptions::new()
        .name("kinesis discovery")
        .connection_timeout(timeout)
        .connect(url);
    match tokio::time::timeout(timeout, connecting).await {
        Ok(Ok(client)) => Ok(client),
        Ok(Err(e)) => Err(Error::Unreachable(format!("NATS at {}: {e}", redact(url)))),
        Err(_) => Err(Error::Unreachable(format!(
            "NATS at {}: no connection within {timeout:?}",
            redact(url)
        ))),
    }
}

/// Every instance that answers `$SRV.INFO.kinesis` within `window`, with
/// the components each holds (asked of all at once, within `window` too).
pub async fn find_all(client: &async_nats::Client, window: Duration) -> Result<Vec<Instance>> {
    let infos = gather_infos(client, window).await?;
    let asks = infos.iter().map(|info| components_of(client, &info.id, window));
    let components = futures::future::join_all(asks).await;
    let mut out: Vec<Instance> =
        infos.into_iter().zip(components).filter_map(|(info, c)| instance(info, c)).collect();
    out.sort_by(|a, b| a.name.cmp(&b.name).then_with(|| a.id.cmp(&b.id)));
    Ok(out)
}

async fn gather_infos(client: &async_nats::Client, window: Duration) -> Result<Vec<Info>> {
    let unreachable = |e: &dyn std::fmt::Display| Error::Unreachable(format!("NATS: {e}"));
    let inbox = client.new_inbox();
    let mut answers = client.subscribe(inbox.clone()).await.map_err(|e| unreachable(&e))?;
    client
        .publish_with_reply(format!("$SRV.INFO.{SERVICE}"), inbox, "".into())
        .await
        .map_err(|e| unreachable(&e))?;
    client.flush().await.map_err(|e| unreachable(&e))?;
    let mut infos = Vec::new();
    let deadline = tokio::time::Instant::now() + window;
    while let Ok(Some(message)) = tokio::time::timeout_at(deadline, answers.next()).await {
        match serde_json::from_slice::<Info>(&message.payload) {
            Ok(info) => infos.push(info),
            Err(e) => tracing::debug!(error = %e, "ignoring a malformed $SRV.INFO answer"),
        }
    }
    Ok(infos)
}

async fn components_of(
    client: &async_nats::Client,
    id: &str,
    window: Duration,
) -> Option<Vec<String>> {
    let asking = client.request(components_subject(id), "".into());
    let reply = tokio::time::timeout(window, asking).await.ok()?.ok()?;
    serde_json::from_slice(&reply.payload).ok()
}

/// The instance an INFO answer describes; `None` for a service called
/// `kinesis` that is not one of ours (no instance name).
fn instance(info: Info, components: Option<Vec<String>>) -> Option<Instance> {
    let mut meta: HashMap<String, String> = info.metadata;
    let name = meta.remove(META_INSTANCE)?;
    let urls = meta
        .remove(META_URLS)
        .map(|u| u.split_whitespace().map(str::to_owned).collect())
        .unwrap_or_default();
    Some(Instance {
        name,
        urls,
        source: Source::Nats,
        id: Some(info.id),
        version: Some(info.version),
        components,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nats_urls_are_checked_and_passwords_never_shown() {
        check_url("V", "nats://127.0.0.1:4222").unwrap();
        check_url("V", "nats://a:4222, tls://b:4222").unwrap();
        for bad in ["127.0.0.1:4222", "http://x", "nats://", "nats://u:secret@h:1,redis://h"] {
            let err = check_url("V", bad).unwrap_err().to_string();
            assert!(err.starts_with("configuration error: V:") || err.contains("V:"), "{err}");
            assert!(!err.contains("secret"), "{err}");
        }
        assert_eq!(redact("nats://u:secret@h:1"), "nats://…@h:1");
    }
}
