//! `call`: a method by name, its arguments typed by the method table.

use super::Session;
use crate::cli::{CallArg, IfMatch};
use crate::output::{pretty, Failure};

/// `kinesis call URI METHOD key=value…`: reads the method table, types each
/// argument by its declared type, and calls. A method or argument the
/// table does not have, or a value that does not fit, is a usage error
/// (exit 2) found before anything is called.
pub(super) async fn call(
    s: &Session,
    uri: &str,
    method: &str,
    args: &[CallArg],
    if_match: Option<IfMatch>,
) -> Result<(), Failure> {
    let remote = s.client.dyn_remote(uri);
    let meta = remote.meta().await?;
    let Some(declared) = meta.method(method) else {
        let names: Vec<&str> = meta.methods.iter().map(|m| m.name.as_str()).collect();
        return Err(Failure::Usage(format!(
            "{uri} has no method `{method}`; its methods: {}",
            if names.is_empty() { "none".to_owned() } else { names.join(", ") }
        )));
    };
    let json_args = crate::typing::arguments(declared, args).map_err(Failure::Usage)?;
    let reply = match if_match {
        Some(IfMatch::Tag(tag)) => remote.call_if_match(method, json_args, &tag).await?,
        Some(IfMatch::Any) | None => remote.call(method, json_args).await?,
    };
    s.out.either(|| pretty(&reply), &reply);
    Ok(())
}
