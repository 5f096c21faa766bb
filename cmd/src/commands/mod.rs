//! The commands that talk to a running runtime, all through the
//! `kinesis-client` library: `ps`, `get`, `put`, `patch`, `call`, `watch`,
//! `stop`, `restart` and `tasks`.

mod call;
mod control;
mod instances;
mod read;
mod watch;
mod write;

use std::process::ExitCode;

use kinesis_client::Client;

use crate::cli::{Command, RemoteArgs};
use crate::etags::EtagStore;
use crate::output::{Failure, Output};

/// The longest wait for a connection (shorter when `--timeout` is).
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// What every command needs: the client, the runtime's URL (the key of the
/// remembered ETags), the output and the ETag store.
pub(crate) struct Session {
    /// The client of the runtime.
    pub(crate) client: Client,
    /// The runtime's URL as given.
    pub(crate) url: String,
    /// How to print.
    pub(crate) out: Output,
    /// The ETags `get` saw.
    pub(crate) etags: EtagStore,
    /// How long one request may take.
    pub(crate) timeout: std::time::Duration,
}

impl Session {
    /// A client configured by the options, of the runtime at `url`. A URL
    /// that is not one is a configuration error (exit 2); nothing is sent
    /// yet.
    fn new(remote: &RemoteArgs, url: String) -> Result<Session, Failure> {
        crate::cli::runtime_url(&url).map_err(Failure::Usage)?;
        let mut builder = Client::builder(url.clone())
            .timeout(remote.timeout)
            .connect_timeout(remote.timeout.min(CONNECT_TIMEOUT));
        if let Some(token) = remote.token.as_ref().filter(|t| !t.expose().trim().is_empty()) {
            builder = builder.token(token.expose());
        }
        Ok(Session {
            client: builder.build()?,
            url,
            out: Output { json: remote.json },
            etags: EtagStore::from_env(),
            timeout: remote.timeout,
        })
    }

    /// Remembers `etag` as the last seen of `uri`; failing to is a warning.
    pub(crate) fn remember(&self, uri: &str, etag: kinesis::ETag) {
        if let Err(e) = self.etags.put(&self.url, uri, etag) {
            let at = self.etags.path().map(|p| p.display().to_string()).unwrap_or_default();
            eprintln!("kinesis: warning: cannot remember the ETag in {at}: {e}");
        }
    }
}

/// Runs one remote command to its exit code.
pub(crate) fn run(remote: &RemoteArgs, command: Command) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("kinesis: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let done = runtime.block_on(async {
        if let Command::Instances { wait } = command {
            return instances::list(remote, wait).await;
        }
        let url = match &remote.instance {
            Some(name) => instances::url_of(remote, name).await?,
            None => remote.url.clone(),
        };
        let session = Session::new(remote, url)?;
        dispatch(&session, command).await
    });
    match done {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => failure.report(remote.json),
    }
}

async fn dispatch(s: &Session, command: Command) -> Result<(), Failure> {
    match command {
        Command::Ps => read::ps(s).await,
        Command::Get { uri } => read::get(s, &uri).await,
        Command::Tasks => read::tasks(s).await,
        Command::Put { uri, file, if_match } => write::put(s, &uri, &file, if_match).await,
        Command::Patch { uri, patch, if_match } => write::patch(s, &uri, patch, if_match).await,
        Command::Call { uri, method, args, if_match } => {
            call::call(s, &uri, &method, &args, if_match).await
        }
        Command::Watch { uri, since } => watch::watch(s, &uri, since).await,
        Command::Stop { uri } => control::stop(s, &uri).await,
        Command::Restart { uri, after } => control::restart(s, &uri, after).await,
        Command::Serve { .. }
        | Command::Token { .. }
        | Command::Completions { .. }
        | Command::Instances { .. } => {
            Err(Failure::Usage("this command does not talk to a runtime".into()))
        }
    }
}
