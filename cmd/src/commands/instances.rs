//! `kinesis instances` and `--instance NAME`: runtimes found by name (see
//! the `kinesis-discovery` crate).

use std::time::Duration;

use kinesis_discovery::Directory;
use serde_json::json;

use crate::cli::RemoteArgs;
use crate::output::{table, Failure, Output};

/// The directory the environment describes, with the command line's token
/// and timeout for the clients it makes.
fn directory(remote: &RemoteArgs, window: Duration) -> Result<Directory, Failure> {
    let mut directory = Directory::from_env()
        .map_err(|e| Failure::Usage(e.to_string()))?
        .window(window)
        .timeout(remote.timeout);
    if let Some(token) = remote.token.as_ref().filter(|t| !t.expose().trim().is_empty()) {
        directory = directory.token(token.expose());
    }
    Ok(directory)
}

/// The URL of the instance called `name`, for `--instance`.
pub(super) async fn url_of(remote: &RemoteArgs, name: &str) -> Result<String, Failure> {
    let instance = directory(remote, kinesis_discovery::DEFAULT_WINDOW)?.find(name).await?;
    Ok(instance.url()?.to_owned())
}

/// `kinesis instances`: every instance found, with where it is reached and
/// what it holds.
pub(super) async fn list(remote: &RemoteArgs, wait: Duration) -> Result<(), Failure> {
    let instances = directory(remote, wait)?.instances().await?;
    let human = || {
        let rows: Vec<Vec<String>> = instances
            .iter()
            .map(|i| {
                vec![
                    i.name.clone(),
                    i.urls.join(" "),
                    match i.source {
                        kinesis_discovery::Source::Nats => "nats".to_owned(),
                        kinesis_discovery::Source::Peers => "peers".to_owned(),
                    },
                    i.version.clone().unwrap_or_else(|| "-".into()),
                    i.components.as_ref().map_or("?".into(), |c| c.len().to_string()),
                ]
            })
            .collect();
        table(&["NAME", "URL", "FOUND IN", "VERSION", "COMPONENTS"], &rows)
    };
    Output { json: remote.json }.either(human, &json!(instances));
    Ok(())
}
