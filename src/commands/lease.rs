//! The job's side: allocate (with DevStack files), release, renew, reap and get-field.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;
use clap::Args;
use diesel::Connection;
use serde_json::Value;

use super::keepalive::KeepAlive;
use super::{Ctx, invalid, no_node};
use crate::config::duration_arg;
use crate::devstack;
use crate::error::Failure;
use crate::fields::Field;
use crate::inventory::{check_owner, check_text};
use crate::output::{self, Format};
use crate::pool::{self, Outcome, Request};
use crate::store::nodes::{self, Node};

#[derive(Debug, Args)]
pub struct AllocateArgs {
    /// Who holds the nodes: free text up to 255 characters, e.g. $BUILD_TAG.
    pub owner: String,
    /// How many nodes.
    #[arg(default_value_t = 1, value_parser = clap::value_parser!(i64).range(1..=10_000))]
    pub count: i64,
    /// The pool to allocate from (same as --pool).
    #[arg(value_name = "POOL")]
    pub pool_arg: Option<String>,
    /// The pool to allocate from [default: default].
    #[arg(long, value_name = "POOL")]
    pub pool: Option<String>,
    /// Lease length, e.g. 90m, 2h, 3600 [default: max_lease from the config, 6000s].
    #[arg(long, value_name = "DURATION", value_parser = duration_arg)]
    pub lease: Option<Duration>,
    /// Write DevStack's hardware info file here (replaced): "BMC_ADDRESS MAC USER PASSWORD" per node.
    #[arg(long, value_name = "FILE")]
    pub hardware_info: Option<PathBuf>,
    /// Append DevStack's IRONIC_HW_* and ALLOCATION_POOL settings to this localrc file.
    #[arg(long, value_name = "FILE")]
    pub localrc: Option<PathBuf>,
}

impl AllocateArgs {
    /// `allocate OWNER [COUNT] [POOL]`: all or nothing; a retry with the same count and pool returns the
    /// nodes the owner already holds.
    pub fn run(&self, ctx: &Ctx) -> Result<()> {
        let format = ctx.format(&[Format::Human, Format::Json, Format::Env])?;
        check_owner(&self.owner).map_err(invalid)?;
        let pool = match (&self.pool_arg, &self.pool) {
            (Some(a), Some(b)) if a != b => {
                return Err(Failure::Usage(format!(
                    "two different pools given: {a} and --pool {b}"
                ))
                .into());
            }
            (a, b) => a.as_deref().or(b.as_deref()).unwrap_or("default"),
        };
        check_text("pool", pool).map_err(invalid)?;
        let request = Request {
            owner: &self.owner,
            pool,
            count: self.count,
            lease_secs: self.lease.unwrap_or(ctx.config.max_lease).as_secs_f64(),
        };
        // Open the DevStack files before allocating, so an unwritable path fails before any node is
        // taken; files this run creates are removed again if the allocation fails.
        let files = devstack::Files::open(self.hardware_info.as_deref(), self.localrc.as_deref())?;
        let decided = ctx.with_db_repeatable(|conn| {
            if !files.any() {
                return Ok(pool::take(conn, &request)?);
            }
            // With DevStack files, nodes the files cannot describe are refused in the allocation's own
            // transaction, so nothing stays allocated.
            conn.transaction(|conn| {
                let outcome = pool::take(conn, &request)?;
                if let Outcome::Granted(nodes) | Outcome::AlreadyHeld(nodes) = &outcome {
                    devstack::check(nodes).map_err(invalid)?;
                }
                Ok::<_, anyhow::Error>(outcome)
            })
        });
        let nodes = match decided.and_then(|outcome| granted(&request, outcome)) {
            Ok(nodes) => nodes,
            Err(e) => {
                files.discard();
                return Err(e);
            }
        };
        files.write(&nodes)?;
        output::allocation(&self.owner, &nodes, format)
    }
}

/// The nodes of a decided request, or its exit code and message.
fn granted(request: &Request, outcome: Outcome) -> Result<Vec<Node>> {
    match outcome {
        Outcome::Granted(nodes) => Ok(nodes),
        Outcome::AlreadyHeld(nodes) => {
            output::note(&format!(
                "{} already holds these nodes; returning them",
                request.owner
            ));
            Ok(nodes)
        }
        Outcome::Conflict { held } => {
            let hint = "release them first, or repeat the original count and pool";
            let message = format!(
                "{} already holds {} node(s) of pool {} (hint: {hint})",
                request.owner,
                held.len(),
                Outcome::held_pools(&held)
            );
            Err(Failure::Conflict(message).into())
        }
        Outcome::NotEnough { found, requested } => {
            Err(Failure::NotEnough { found, requested }.into())
        }
    }
}

#[derive(Debug, Args)]
pub struct ReleaseArgs {
    /// The job that holds the nodes.
    pub owner: String,
    /// Release only this node (id or name); exit 4 if OWNER does not hold it.
    #[arg(long, value_name = "NODE")]
    pub node: Option<String>,
}

#[derive(Debug, Args)]
pub struct RenewArgs {
    /// The job that holds the nodes.
    pub owner: String,
    /// New lease from now, e.g. 90m, 2h, 3600 [default: max_lease from the config, 6000s].
    #[arg(long, value_name = "DURATION", value_parser = duration_arg)]
    pub lease: Option<Duration>,
    /// Keep renewing, riding out database outages, until OWNER releases its nodes (exit 0) or loses them
    /// to reap or an operator (exit 4). Prints nothing on stdout; ignores --retries.
    #[arg(long)]
    pub keep_alive: bool,
    /// With --keep-alive: time between renews, shorter than the lease [default: a third of the lease, at
    /// most 5m].
    #[arg(long, value_name = "DURATION", value_parser = duration_arg, requires = "keep_alive")]
    pub every: Option<Duration>,
    /// With --keep-alive: stop (exit 0, nodes kept until the lease runs out) once process PID has exited,
    /// e.g. --while-pid $$ from the job's shell.
    #[arg(long, value_name = "PID", requires = "keep_alive",
          value_parser = clap::value_parser!(u32).range(1..))]
    pub while_pid: Option<u32>,
}

#[derive(Debug, Args)]
pub struct ReapArgs {
    /// Also reap allocations older than this, whatever their lease, e.g. 12h.
    #[arg(long, value_name = "DURATION", value_parser = duration_arg)]
    pub max_age: Option<Duration>,
}

#[derive(Debug, Args)]
pub struct GetFieldArgs {
    /// The job that holds the nodes.
    pub owner: String,
    /// The field to print.
    pub field: String,
}

impl ReleaseArgs {
    /// `release OWNER [--node NODE]`: holding nothing is not an error (exit 0, said on stderr).
    pub fn run(&self, ctx: &Ctx) -> Result<()> {
        let (owner, node) = (self.owner.as_str(), self.node.as_deref());
        let format = ctx.format(&[Format::Human, Format::Json])?;
        check_owner(owner).map_err(invalid)?;
        let state = ctx.config.release_state.state();
        let released = ctx.with_db_repeatable(|conn| match node {
            None => Ok(nodes::release(conn, owner, None, state)?),
            Some(key) => {
                let node = nodes::find(conn, key, false)?.ok_or_else(|| no_node(key))?;
                let released = nodes::release(conn, owner, Some(node.id), state)?;
                if released.is_empty() {
                    return Err(Failure::NotFound(format!(
                        "{owner} does not hold node {}",
                        node.name
                    ))
                    .into());
                }
                Ok(released)
            }
        })?;
        if released.is_empty() {
            output::note(&format!("{owner} holds no nodes; nothing to release"));
            if format == Format::Human {
                return Ok(());
            }
        }
        output::released(&released, format)
    }
}

impl RenewArgs {
    /// `renew OWNER [--lease DUR] [--keep-alive [--every DUR] [--while-pid PID]]`.
    pub fn run(&self, ctx: &Ctx) -> Result<()> {
        let owner = self.owner.as_str();
        check_owner(owner).map_err(invalid)?;
        let lease = self.lease.unwrap_or(ctx.config.max_lease);
        if self.keep_alive {
            let keep_alive = KeepAlive {
                owner,
                lease,
                every: self.every,
                while_pid: self.while_pid,
            };
            return keep_alive.run(ctx);
        }
        let format = ctx.format(&[Format::Human, Format::Json])?;
        let renewed =
            ctx.with_db_repeatable(|conn| Ok(nodes::renew(conn, owner, lease.as_secs_f64())?))?;
        if renewed.is_empty() {
            return Err(Failure::NotFound(format!("{owner} holds no nodes")).into());
        }
        output::renewed(&renewed, format)
    }
}

impl ReapArgs {
    /// `reap [--max-age DUR]`: for cron.
    pub fn run(&self, ctx: &Ctx) -> Result<()> {
        let format = ctx.format(&[Format::Human, Format::Csv, Format::Json])?;
        let state = ctx.config.reap_state.state();
        let max_age = self.max_age.map(|d| d.as_secs_f64());
        let reaped = ctx.with_db_repeatable(|conn| Ok(nodes::reap(conn, max_age, state)?))?;
        output::note(&format!("reaped {} node(s)", reaped.len()));
        if reaped.is_empty() && format == Format::Human {
            return Ok(());
        }
        output::reaped(&reaped, format)
    }
}

impl GetFieldArgs {
    /// `get-field OWNER FIELD`: one value per node the owner holds.
    pub fn run(&self, ctx: &Ctx) -> Result<()> {
        let (owner, name) = (self.owner.as_str(), self.field.as_str());
        let format = ctx.format(&[Format::Human, Format::Csv, Format::Json])?;
        let field = Field::parse(name).map_err(Failure::NotFound)?;
        let nodes = ctx.with_db_repeatable(|conn| Ok(nodes::held_by(conn, owner)?))?;
        if nodes.is_empty() {
            return Err(Failure::NotFound(format!("{owner} holds no nodes")).into());
        }
        let values: Vec<(&Node, Option<Value>)> = nodes.iter().map(|n| (n, field.get(n))).collect();
        if values.iter().all(|(_, v)| v.is_none()) {
            return Err(
                Failure::NotFound(format!("no node {owner} holds has a field {name}")).into(),
            );
        }
        output::field_values(name, &values, format)
    }
}
