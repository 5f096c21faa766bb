//! `kinesis token new NAME GRANT…`: a new API token for the HTTP add-on.

use std::process::ExitCode;

use crate::output::{Failure, Output};

/// Prints a new token (shown this once) and the line for the tokens file,
/// which keeps only its hash. Bad input is a usage error (exit 2).
pub(crate) fn new(name: &str, grants: &[String], out: Output) -> ExitCode {
    match make(name, grants) {
        Ok((token, line)) => {
            out.either(
                || {
                    format!(
                        "token (shown once; give it to the client): {token}\n\
                         line for KINESIS_AUTH_TOKENS_FILE: {line}"
                    )
                },
                &serde_json::json!({"name": name, "token": token, "line": line}),
            );
            ExitCode::SUCCESS
        }
        Err(message) => Failure::Usage(message).report(out.json),
    }
}

#[cfg(feature = "http")]
fn make(name: &str, grants: &[String]) -> Result<(String, String), String> {
    let (token, line) =
        kinesis_http::security::new_token(name, &grants.join(" ")).map_err(|e| e.to_string())?;
    Ok((token.as_str().to_owned(), line))
}

#[cfg(not(feature = "http"))]
fn make(_name: &str, _grants: &[String]) -> Result<(String, String), String> {
    Err("tokens are for the HTTP add-on; build with --features http".to_owned())
}
