//! One module per command family. Commands validate input, call `store` (which holds all SQL) inside the
//! transactions they need, and hand results to `output`; notes for people go to stderr.

mod admin;
mod inventory;
mod lease;

use std::time::Duration;

use anyhow::Result;
use diesel::PgConnection;
use diesel::connection::{CacheSize, Connection};

use crate::cli::{Cli, Command, Format};
use crate::config::{self, Config};
use crate::db;
use crate::error::Failure;
use crate::output;

/// What every command gets: the settings and a way to reach the database.
pub struct Ctx {
    url: String,
    config: Config,
    output: Option<Format>,
}

impl Ctx {
    /// The output format asked for (human by default), if this command offers it.
    pub fn format(&self, offered: &[Format]) -> Result<Format> {
        let format = self.output.unwrap_or(Format::Human);
        if offered.contains(&format) {
            return Ok(format);
        }
        let name = |f: &Format| format!("{f:?}").to_lowercase();
        let names: Vec<String> = offered.iter().map(name).collect();
        Err(Failure::Usage(format!(
            "this command has no -o {}; use {}",
            name(&format),
            names.join(" or ")
        ))
        .into())
    }

    /// Connects, runs `body`, and explains its error (an unmigrated database says so). A transient failure
    /// while connecting is retried (`--retries`); once `body` has started it is not, because its effect
    /// might already be committed: for commands whose repetition is harmless use [`Ctx::with_db_repeatable`].
    pub fn with_db<T>(&self, body: impl FnMut(&mut PgConnection) -> Result<T>) -> Result<T> {
        self.run_db(false, body)
    }

    /// [`Ctx::with_db`] for commands that may run again after a lost connection: reads, and writes whose
    /// repetition changes nothing (release, renew, reap; allocate through its owner, which returns what the
    /// owner already holds).
    pub fn with_db_repeatable<T>(
        &self,
        body: impl FnMut(&mut PgConnection) -> Result<T>,
    ) -> Result<T> {
        self.run_db(true, body)
    }

    fn run_db<T>(
        &self,
        repeatable: bool,
        mut body: impl FnMut(&mut PgConnection) -> Result<T>,
    ) -> Result<T> {
        let mut attempt = 0;
        loop {
            let outcome = match db::connect(&self.url, &self.config) {
                // Nothing was sent: always safe to try again.
                Err(e) => Err((e, false)),
                Ok(mut conn) => {
                    // One process sends a statement or two: preparing them first would cost a round trip each.
                    conn.set_prepared_statement_cache_size(CacheSize::Disabled);
                    body(&mut conn).map_err(|e| (db::explain(&mut conn, e), true))
                }
            };
            let (err, started) = match outcome {
                Ok(value) => return Ok(value),
                Err(failure) => failure,
            };
            if attempt >= self.config.retries || (started && !repeatable) || !db::is_transient(&err)
            {
                return Err(err);
            }
            attempt += 1;
            let delay = backoff(attempt);
            output::note(&format!(
                "the database is unavailable; retrying in {} ms (retry {attempt} of {})",
                delay.as_millis(),
                self.config.retries
            ));
            std::thread::sleep(delay);
        }
    }
}

/// Exponential backoff with jitter: about 100 ms × 2^(attempt-1), capped at 5 s, each wait drawn between
/// half and all of that so that many jobs retrying together spread out.
fn backoff(attempt: u32) -> Duration {
    use std::hash::{BuildHasher, Hasher};
    let ceiling = Duration::from_millis(100).saturating_mul(1 << attempt.min(16).saturating_sub(1));
    let ceiling = ceiling.min(Duration::from_secs(5));
    // RandomState is seeded randomly per process: enough randomness for jitter, no extra crate.
    let random = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    let fraction = 0.5 + (random % 1000) as f64 / 2000.0;
    ceiling.mul_f64(fraction)
}

/// Runs the command the user asked for.
pub fn run(cli: &Cli) -> Result<()> {
    let mut config = Config::load(cli.config.as_deref())?;
    if let Some(dir) = &cli.conf_dir {
        let ignored = config.apply_conf_dir(dir)?;
        if !ignored.is_empty() {
            output::note(&format!(
                "ignoring {} in {}: molteniron has no daemon and reaches PostgreSQL through database_url",
                ignored.join(", "),
                dir.join("conf.yaml").display()
            ));
        }
    }
    if let Some(retries) = cli.retries {
        config.retries = retries;
    }
    let output = match (cli.output, &cli.command) {
        // The original printed its reply's `result` member, which only get_field (the values) and status
        // (the table) had: their default output here. Every other command refuses -o result.
        (
            Some(Format::Result),
            Command::GetField { .. } | Command::Status(_) | Command::StatusBaremetal(_),
        ) => None,
        (format, _) => format,
    };
    let ctx = Ctx {
        url: config::database_url(cli.database_url.as_deref(), &config),
        config,
        output,
    };
    match &cli.command {
        Command::Migrate => admin::migrate(&ctx),
        Command::Roles { prefix, apply } => admin::roles(&ctx, prefix, *apply),
        Command::Import { file, update } => inventory::import(&ctx, file, *update),
        Command::Export => inventory::export(&ctx),
        Command::Add(args) => inventory::add(&ctx, args),
        Command::Allocate(args) => lease::allocate(&ctx, args),
        Command::Release { owner, node } => lease::release(&ctx, owner, node.as_deref()),
        Command::Renew { owner, lease } => lease::renew(&ctx, owner, lease.as_deref()),
        Command::Reap { max_age } => lease::reap(&ctx, max_age.as_deref()),
        Command::Clean { node } => admin::clean(&ctx, node),
        Command::Maintenance {
            node,
            reason,
            off,
            force,
        } => admin::maintenance(
            &ctx,
            node,
            if *off { None } else { reason.as_deref() },
            *force,
        ),
        Command::GetField { owner, field } => lease::get_field(&ctx, owner, field),
        Command::SetField {
            node,
            field,
            value,
            legacy_type,
            value_type,
        } => {
            if let (Some(a), Some(b)) = (legacy_type, value_type) {
                if a != b {
                    let message = format!("two different types given: {a:?} and --type {b:?}");
                    return Err(Failure::Usage(message).into());
                }
            }
            inventory::set_field(&ctx, node, field, value, value_type.or(*legacy_type))
        }
        Command::Status(args) => admin::status(&ctx, args, args.baremetal),
        Command::StatusBaremetal(args) => admin::status(&ctx, args, true),
        Command::History {
            node,
            owner,
            since,
            limit,
        } => admin::history(
            &ctx,
            node.as_deref(),
            owner.as_deref(),
            since.as_deref(),
            *limit,
        ),
        Command::Remove { node, force } => inventory::remove(&ctx, node, *force),
        Command::DeleteDb { yes } => inventory::delete_db(&ctx, *yes),
        Command::AddBaremetal {
            name,
            ipmi_ip,
            ipmi_user,
            ipmi_password,
            allocation_pool,
            port_hwaddr,
            cpu_arch,
            cpus,
            ram_mb,
            disk_gb,
            node_pool,
        } => {
            let fields = [
                ("ipmi_ip", ipmi_ip),
                ("ipmi_user", ipmi_user),
                ("ipmi_password", ipmi_password),
                ("allocation_pool", allocation_pool),
                ("port_hwaddr", port_hwaddr),
                ("cpu_arch", cpu_arch),
                ("cpus", cpus),
                ("ram_mb", ram_mb),
                ("disk_gb", disk_gb),
            ]
            .into_iter()
            .chain(node_pool.as_ref().map(|pool| ("node_pool", pool)))
            .map(|(k, v)| (k.to_owned(), serde_json::Value::String(v.clone())));
            inventory::add_legacy(&ctx, name, fields.collect())
        }
        Command::AddKeyvaluePairs {
            name,
            ipmi_ip,
            allocation_pool,
            pairs,
        } => inventory::add_keyvalue_pairs(&ctx, name, ipmi_ip, allocation_pool, pairs),
        Command::AddJsonBlob {
            name,
            ipmi_ip,
            allocation_pool,
            json,
            node_pool,
        } => inventory::add_json_blob(
            &ctx,
            name,
            ipmi_ip,
            allocation_pool,
            json,
            node_pool.as_deref(),
        ),
    }
}

/// Turns a validation message into an exit-1 error.
fn invalid(message: String) -> anyhow::Error {
    Failure::Invalid(message).into()
}

/// The error for a NODE argument that names no node.
fn no_node(key: &str) -> anyhow::Error {
    Failure::NotFound(format!("no node {key:?} (give a node name or id)")).into()
}
