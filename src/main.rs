//! The `molteniron` binary: parse, run, map the outcome to an exit code.

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;
use clap::error::ErrorKind;
use molteniron::cli::Cli;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) => {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            // Bare `molteniron`: the help, on stderr, and the usage-error exit code.
            let _ = write!(std::io::stderr(), "{}", e.render());
            return ExitCode::from(2);
        }
        Err(e) => {
            // clap's own message (with its usage line and tip) behind our prefix.
            let _ = write!(
                std::io::stderr(),
                "{}",
                molteniron::usage_error(&e.render().to_string())
            );
            return ExitCode::from(2);
        }
    };
    match molteniron::run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            let (line, code) = molteniron::report(&cli, &err);
            let _ = writeln!(std::io::stderr(), "{line}");
            ExitCode::from(code)
        }
    }
}
