//! `kinesis`: the runtime with the demo application and the add-ons built in
//! by Cargo features (`kinesis` or `kinesis serve`, configured by the
//! environment), and the commands that talk to a running one (`ps`, `get`,
//! `put`, `patch`, `call`, `watch`, `stop`, `restart`, `tasks`), plus
//! `token new` and `completions`. `kinesis --help` lists them all and every
//! environment variable; the exit codes are in [`output`].

mod cli;
mod commands;
mod etags;
#[cfg(feature = "grpc")]
mod grpc;
mod output;
mod serve;
mod token;
mod typing;

use std::process::ExitCode;

use clap::error::ErrorKind;
use clap::{CommandFactory, FromArgMatches};

use cli::{Cli, Command, TokenCommand};
use output::Output;

fn main() -> ExitCode {
    let footer = serve::help_footer();
    let parsed = Cli::command()
        .after_help(footer.clone())
        .mut_subcommand("serve", |serve| serve.after_help(footer))
        .try_get_matches()
        .and_then(|matches| Cli::from_arg_matches(&matches));
    let cli = match parsed {
        Ok(cli) => cli,
        Err(e) => return usage_error(e),
    };
    let out = Output { json: cli.remote.json };
    match cli.command {
        None => serve::serve(None),
        Some(Command::Serve { only }) => serve::serve(only.as_deref()),
        Some(Command::Token { command: TokenCommand::New { name, grants } }) => {
            token::new(&name, &grants, out)
        }
        Some(Command::Completions { shell }) => {
            // Into a buffer first: clap_complete panics on a write error
            // (a closed pipe), a plain write does not.
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "kinesis", &mut script);
            out.line(String::from_utf8_lossy(&script).trim_end());
            ExitCode::SUCCESS
        }
        Some(command) => commands::run(&cli.remote, command),
    }
}

/// A command line clap refused (exit 2), or `--help`/`--version` (exit 0).
/// With `--json` among the arguments, a refusal is a JSON object on stderr
/// like every other error.
fn usage_error(e: clap::Error) -> ExitCode {
    let json = std::env::args_os().skip(1).take_while(|a| a != "--").any(|a| a == "--json");
    let shown = matches!(
        e.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    );
    if shown || !json {
        e.exit()
    }
    let text = e.to_string();
    let first = text.lines().next().unwrap_or_default();
    let message = first.strip_prefix("error: ").unwrap_or(first).to_owned();
    output::Failure::Usage(message).report(true)
}
