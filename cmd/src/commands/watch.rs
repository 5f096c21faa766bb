//! `watch`: a component's changes as they come.

use futures::StreamExt;
use kinesis::remote::{Resume, WatchEvent, WatchOptions};
use kinesis::ErrorKind;

use super::Session;
use crate::output::Failure;

/// `kinesis watch URI [--since V]`: one line per change (one JSON object
/// per line with `--json`) until ctrl-c (exit 0) or the component goes
/// away (exit 0). A dropped connection is resumed after the last version
/// printed; a runtime out of reach for longer than `--timeout` ends it
/// (exit 3).
pub(super) async fn watch(s: &Session, uri: &str, since: Option<u64>) -> Result<(), Failure> {
    let remote = s.client.dyn_remote(uri);
    // Fails at once (not found, refused, unreachable) instead of retrying.
    remote.meta().await?;
    let options = WatchOptions {
        since: since.map(|version| Resume { version, run: None }),
        give_up_after: Some(s.timeout),
        ..WatchOptions::default()
    };
    let mut events = remote.watch_with(options);
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        tokio::select! {
            _ = &mut ctrl_c => return Ok(()),
            event = events.next() => match event {
                Some(Ok(event)) => {
                    let text = if s.out.json {
                        serde_json::to_string(&event).map_err(|e| {
                            Failure::Remote(kinesis::Error::Invalid(e.to_string()))
                        })?
                    } else {
                        human(&event)
                    };
                    if s.out.try_line(&text).is_err() {
                        // The reader went away (a closed pipe).
                        return Ok(());
                    }
                }
                Some(Err(e)) if e.kind() == ErrorKind::NotFound => {
                    s.out.note(&format!("kinesis: {uri} went away"));
                    return Ok(());
                }
                Some(Err(e)) => return Err(e.into()),
                None => return Ok(()),
            },
        }
    }
}

/// One event as a line: `v12 updated {…}`.
fn human(event: &WatchEvent) -> String {
    match event {
        WatchEvent::Snapshot { version, data, .. } => format!("v{version} snapshot {data}"),
        WatchEvent::Updated { version, data, .. } => format!("v{version} updated {data}"),
        WatchEvent::Stage { prev, curr } => format!("stage {prev} -> {curr}"),
        WatchEvent::State { prev, curr } => format!("state {prev} -> {curr}"),
        WatchEvent::Lagged { missed } => format!("lagged: {missed} changes missed"),
    }
}
