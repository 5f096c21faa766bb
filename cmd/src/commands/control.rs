//! `stop` and `restart`: controls of a component.

use std::time::Duration;

use kinesis::Control;
use serde_json::json;

use super::Session;
use crate::output::Failure;

/// `kinesis stop URI`: stops the component for good; answers once it has.
pub(super) async fn stop(s: &Session, uri: &str) -> Result<(), Failure> {
    s.client.dyn_remote(uri).shutdown().await?;
    s.out.either(|| format!("{uri} stopped"), &json!({"uri": uri, "op": "stop"}));
    Ok(())
}

/// `kinesis restart URI [--after D]`: restarts now (answers once it is
/// started again), or stops now and starts after `D` (answers at once).
pub(super) async fn restart(
    s: &Session,
    uri: &str,
    after: Option<Duration>,
) -> Result<(), Failure> {
    let remote = s.client.dyn_remote(uri);
    match after {
        None => {
            remote.restart().await?;
            s.out.either(|| format!("{uri} restarted"), &json!({"uri": uri, "op": "restart"}));
        }
        Some(after) => {
            remote.control(Control::RestartAfter(after)).await?;
            let text = humantime::format_duration(after).to_string();
            s.out.either(
                || format!("{uri} stopping; it starts again in {text}"),
                &json!({"uri": uri, "op": "restart", "after": text}),
            );
        }
    }
    Ok(())
}
