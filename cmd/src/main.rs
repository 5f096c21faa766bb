//! `kinesis`: the runtime with the demo application and the add-ons built in
//! by Cargo features (`kinesis` or `kinesis serve`, configured by the
//! environment), and the commands that talk to a running one (`ps`, `get`,
//! `put`, `patch`, `call`, `watch`, `stop`, `restart`, `tasks`), plus
//! `token new` and `completions`. `kinesis --help` lists them all and every
//! environment variable; the exit codes are in [`output`].

mod cli;
mod commands;
mod etags;
mod output;
mod serve;
mod token;
mod typing;

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches};

use cli::{Cli, Command, TokenCommand};
use output::Output;

fn main() -> ExitCode {
    let footer = serve::help_footer();
    let matches = cli::Cli::command()
        .after_help(footer.clone())
        .mut_subcommand("serve", |serve| serve.after_help(footer))
        .get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    let out = Output { json: cli.remote.json };
    match cli.command {
        None => serve::serve(None),
        Some(Command::Serve { only }) => serve::serve(only.as_deref()),
        Some(Command::Token { command: TokenCommand::New { name, grants } }) => {
            token::new(&name, &grants, out)
        }
        Some(Command::Completions { shell }) => {
            clap_complete::generate(shell, &mut Cli::command(), "kinesis", &mut std::io::stdout());
            ExitCode::SUCCESS
        }
        Some(command) => commands::run(&cli.remote, command),
    }
}
