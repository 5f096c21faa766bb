//! `put` and `patch`: writing a component's state, conditionally.

use std::io::Read;

use kinesis::remote::RemoteSnapshot;
use kinesis::Precondition;
use serde_json::{json, Value};

use super::Session;
use crate::cli::IfMatch;
use crate::output::{pretty, Failure};

/// `kinesis put URI FILE|-`: replaces the state if it is still at
/// `--if-match`, else at the ETag of the last `get`; with neither, refuses.
pub(super) async fn put(
    s: &Session,
    uri: &str,
    file: &str,
    if_match: Option<IfMatch>,
) -> Result<(), Failure> {
    let data = read_json(file)?;
    let condition = match if_match {
        Some(given) => given,
        None => match s.etags.get(&s.url, uri) {
            Some(tag) => IfMatch::Tag(tag),
            None => {
                return Err(Failure::Usage(format!(
                    "no ETag to put {uri} against: run `kinesis get {uri}` first, or give \
                     --if-match ETAG (--if-match '*' overwrites whatever is there)"
                )))
            }
        },
    };
    let remote = s.client.dyn_remote(uri);
    let written = match condition {
        IfMatch::Tag(tag) => remote.replace(data, &tag).await?,
        IfMatch::Any => remote.transport().replace(uri, data, Precondition::Any).await?,
    };
    written_out(s, uri, "replaced", &written);
    Ok(())
}

/// `kinesis patch URI JSON`: a JSON merge patch, conditional with
/// `--if-match`.
pub(super) async fn patch(
    s: &Session,
    uri: &str,
    patch: Value,
    if_match: Option<IfMatch>,
) -> Result<(), Failure> {
    let remote = s.client.dyn_remote(uri);
    let tag = match if_match {
        Some(IfMatch::Tag(tag)) => Some(tag),
        Some(IfMatch::Any) | None => None,
    };
    let written = remote.patch(patch, tag.as_ref()).await?;
    written_out(s, uri, "patched", &written);
    Ok(())
}

/// Remembers the new ETag and prints the new state.
fn written_out(s: &Session, uri: &str, what: &str, written: &RemoteSnapshot) {
    s.remember(uri, written.etag);
    s.out.either(
        || pretty(&written.data),
        &json!({"uri": uri, "etag": written.etag, "version": written.version, "data": written.data}),
    );
    s.out.note(&format!("{uri} {what}: etag {} version {}", written.etag, written.version));
}

/// The JSON in `file`, or on standard input for `-`.
fn read_json(file: &str) -> Result<Value, Failure> {
    let mut text = String::new();
    let read = if file == "-" {
        std::io::stdin().read_to_string(&mut text).map(drop)
    } else {
        std::fs::File::open(file).and_then(|mut f| f.read_to_string(&mut text)).map(drop)
    };
    let source = if file == "-" { "standard input" } else { file };
    read.map_err(|e| Failure::Usage(format!("cannot read {source}: {e}")))?;
    serde_json::from_str(&text)
        .map_err(|e| Failure::Usage(format!("{source} does not hold JSON: {e}")))
}
