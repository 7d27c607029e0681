//! The `molteniron` binary: parse, run, map the outcome to an exit code.

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
        Err(e) => {
            // clap's own message, behind our prefix, with its usage line and tip.
            let text = e.render().to_string();
            eprint!("molteniron: {}", text.trim_start());
            return ExitCode::from(2);
        }
    };
    match molteniron::run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            let (line, code) = molteniron::report(&cli, &err);
            eprintln!("{line}");
            ExitCode::from(code)
        }
    }
}
