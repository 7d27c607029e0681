//! molteniron: share a pool of bare-metal machines between CI jobs with PostgreSQL as the only
//! coordinator. Every invocation connects, does its work in one transaction, and exits.
//!
//! `main` parses the command line and calls [`run`]; everything else lives in this library so the
//! integration tests and benchmarks can use it in-process.

//!
//! The modules are layers; each may use only those below it (a test, `tests/it/layers.rs`, keeps it so):
//!
//! | layer | modules |
//! |---|---|
//! | 0 | `error` (exit codes, failures, what a database error means) |
//! | 1 | `domain` (node states, event actions, group roles, doctor's check lines, shared value helpers), `secret` (which keys are secrets), `schema` |
//! | 2 | `config`, `inventory` (nodes.yaml and validation) |
//! | 3 | `db` (connect, migrate) |
//! | 4 | `store` (all SQL) |
//! | 5 | `fields` (field names on a node), `queue` (who is served next; serving the line) |
//! | 6 | `pool` (allocation policy), `output` (stdout), `report` (the HTML page), `devstack` (DevStack files) |
//! | 7 | `commands` |
//! | 8 | `cli` (the command line and its dispatch) |

pub mod cli;
pub mod commands;
pub mod config;
pub mod db;
pub mod devstack;
pub mod domain;
pub mod error;
pub mod fields;
pub mod inventory;
pub mod output;
pub mod pool;
pub mod queue;
pub mod report;
pub mod schema;
pub mod secret;
pub mod store;

use cli::Cli;

/// Runs one invocation.
pub fn run(cli: &Cli) -> anyhow::Result<()> {
    let ctx = commands::Ctx::new(&commands::Options {
        database_url: cli.database_url.as_deref(),
        config: cli.config.as_deref(),
        conf_dir: cli.conf_dir.as_deref(),
        retries: cli.retries,
        retry_for: cli.retry_for,
        output: cli.output_format(),
    })?
    .needing(cli.command.needs());
    cli.command.run(&ctx)
}

/// The one stderr line for a failed invocation, with every known password replaced by `***`, and its exit
/// code.
pub fn report(cli: &Cli, err: &anyhow::Error) -> (String, u8) {
    let config_url = config::Config::load(cli.config.as_deref())
        .ok()
        .and_then(|c| c.database_url);
    let urls = cli
        .database_url
        .iter()
        .chain(config_url.iter())
        .map(String::as_str);
    // One line, and no control characters from hostile input reach the terminal.
    let mut message = domain::escape_controls(&format!("{err:#}").replace('\n', " "));
    if let Some(hint) = error::timeout_hint(err) {
        message.push_str(&format!(" ({hint})"));
    }
    (
        format!("molteniron: error: {}", redact(&message, urls)),
        error::exit_code(err),
    )
}

/// Clap's message for a command line it could not parse, behind our prefix, with any password that the
/// arguments or the environment hold replaced by `***`.
pub fn usage_error(clap_text: &str) -> String {
    // The OS strings, read lossily: an argument that is not UTF-8 is exactly what clap may be reporting.
    let args: Vec<String> = std::env::args_os()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    format!(
        "molteniron: {}",
        redact(clap_text.trim_start(), args.iter().map(String::as_str))
    )
}

/// Replaces the passwords of `urls`, `MOLTENIRON_DATABASE_URL`, `DATABASE_URL` and `PGPASSWORD` in `text`.
fn redact<'a>(text: &str, urls: impl Iterator<Item = &'a str>) -> String {
    let env_urls: Vec<String> = ["MOLTENIRON_DATABASE_URL", "DATABASE_URL"]
        .iter()
        .filter_map(|name| std::env::var(name).ok())
        .collect();
    let mut secrets = config::secrets(urls);
    secrets.extend(config::secrets(env_urls.iter().map(String::as_str)));
    error::redact(text, &secrets)
}
