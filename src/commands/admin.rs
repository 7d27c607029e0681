//! Operator commands: migrate, roles, clean, maintenance, status and history.

use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;
use serde_json::json;

use super::lease::FilterArgs;
use super::{Ctx, invalid, no_node};
use crate::config::duration_arg;
use crate::db;
use crate::domain::{EventAction, MaintenanceBy, NodeState};
use crate::error::Failure;
use crate::output::{self, Format};
use crate::store::events::{self, EventFilter};
use crate::store::{self, RoleNames, nodes};

#[derive(Debug, Args)]
pub struct RolesArgs {
    /// Name the roles PREFIX_admin, PREFIX_job and PREFIX_readonly (lower-case letters, digits, _).
    #[arg(long, default_value = "molteniron", value_name = "PREFIX")]
    pub prefix: String,
    /// Run the SQL on the database in one transaction. Needs the owner of the database and its
    /// tables (or a superuser), and CREATEROLE while a role is missing.
    #[arg(long)]
    pub apply: bool,
}

#[derive(Debug, Args)]
pub struct CleanArgs {
    /// Node id or name.
    pub node: String,
}

#[derive(Debug, Args)]
pub struct MaintenanceArgs {
    /// Node id or name.
    pub node: String,
    /// Why the node is out of service.
    #[arg(long, required_unless_present = "off", conflicts_with = "off")]
    pub reason: Option<String>,
    /// Put the node back into service (state ready).
    #[arg(long)]
    pub off: bool,
    /// Release an allocated node first instead of refusing (exit 6).
    #[arg(long, conflicts_with = "off")]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Only this pool.
    #[arg(long, value_name = "POOL")]
    pub pool: Option<String>,

    /// Only nodes this owner holds.
    #[arg(long, value_name = "OWNER")]
    pub owner: Option<String>,
    /// Add credential and hardware columns.
    #[arg(long)]
    pub baremetal: bool,
    /// Show BMC passwords and other secrets instead of masking them.
    #[arg(long)]
    pub show_secrets: bool,
    /// One row per pool with how many nodes are in each state, instead of one row per node.
    #[arg(long, conflicts_with_all = [
        "baremetal", "show_secrets", "arch", "min_cpus", "min_memory_mb", "min_disk_gb", "driver",
        "resource_class", "traits", "properties", "nodes",
    ])]
    pub summary: bool,
    /// Legacy spelling of -o (human or csv).
    #[arg(short = 't', long = "type", value_enum, hide = true)]
    pub legacy_type: Option<Format>,
    // Only nodes a request with these filters could match, in any state: a preview of a job's request.
    #[command(flatten)]
    pub filters: FilterArgs,
}

#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// Only this node (id or name; removed nodes too).
    #[arg(long, value_name = "NODE")]
    pub node: Option<String>,
    /// Only this owner.
    #[arg(long, value_name = "OWNER")]
    pub owner: Option<String>,
    /// Only events newer than this, e.g. 24h, 7days.
    #[arg(long, value_name = "DURATION", value_parser = duration_arg)]
    pub since: Option<Duration>,
    /// At most this many of the newest events.
    #[arg(long, default_value_t = 100, value_name = "N", value_parser = at_least_one)]
    pub limit: i64,
}

/// A count on the command line: a whole number, at least 1.
fn at_least_one(text: &str) -> Result<i64, String> {
    match text.trim().parse::<i64>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err("must be a whole number, at least 1".to_owned()),
    }
}

/// `migrate`: create or upgrade the schema.
pub fn migrate(ctx: &Ctx) -> Result<()> {
    ctx.format(&[Format::Human])?;
    let applied = ctx.with_db_repeatable(|conn| db::migrate(conn, ctx.timeouts()))?;
    if applied.is_empty() {
        output::note("the schema is up to date");
    } else {
        output::note(&format!("applied migrations {}", applied.join(", ")));
    }
    Ok(())
}

impl RolesArgs {
    /// `roles [--prefix P] [--apply]`: print the roles' SQL (never connecting), or run it in one transaction.
    pub fn run(&self, ctx: &Ctx) -> Result<()> {
        ctx.format(&[Format::Human])?;
        let names = RoleNames::from_prefix(&self.prefix).map_err(invalid)?;
        if !self.apply {
            return output::text(&store::roles_script(&names));
        }
        ctx.with_db_repeatable(|conn| {
            db::transaction(conn, ctx.timeouts(), |conn| {
                store::apply_roles(conn, &names)
            })
            .context("applying the roles")
        })?;
        output::note(&format!(
            "applied roles {}, {} and {} (GRANT them to login roles)",
            names.admin, names.job, names.readonly
        ));
        Ok(())
    }
}

impl CleanArgs {
    /// `clean NODE`: dirty → ready.
    pub fn run(&self, ctx: &Ctx) -> Result<()> {
        let key = self.node.as_str();
        let format = ctx.format(&[Format::Human, Format::Json])?;
        let node = ctx.with_db(|conn| {
            db::transaction(conn, ctx.timeouts(), |conn| {
                let node = nodes::find(conn, key, true)?.ok_or_else(|| no_node(key))?;
                if node.state != NodeState::Dirty {
                    let state = match node.state {
                        NodeState::Maintenance => "in maintenance",
                        other => other.as_str(),
                    };
                    return Err(Failure::Conflict(format!(
                        "node {} is {state}, not dirty",
                        node.name
                    ))
                    .into());
                }
                Ok::<_, anyhow::Error>(nodes::set_state(
                    conn,
                    node.id,
                    NodeState::Ready,
                    None,
                    EventAction::Clean,
                    json!({}),
                )?)
            })
        })?;
        ctx.serve_line();
        output::node(&node, format)
    }
}

impl MaintenanceArgs {
    /// `maintenance NODE --reason R [--force]` or `maintenance NODE --off`.
    pub fn run(&self, ctx: &Ctx) -> Result<()> {
        let (key, force) = (self.node.as_str(), self.force);
        let reason = if self.off {
            None
        } else {
            self.reason.as_deref()
        };
        let format = ctx.format(&[Format::Human, Format::Json])?;
        if let Some(reason) = reason {
            if reason.trim().is_empty()
                || reason.chars().count() > 1000
                || reason.chars().any(char::is_control)
            {
                return Err(invalid(
                    "the maintenance reason must be 1 to 1000 characters, without control characters"
                        .to_owned(),
                ));
            }
        }
        let release_state = ctx.config.release_state.state();
        let node = ctx.with_db(|conn| {
            db::transaction(conn, ctx.timeouts(), |conn| {
                let node = nodes::find(conn, key, true)?.ok_or_else(|| no_node(key))?;
                let Some(reason) = reason else {
                    if node.state != NodeState::Maintenance {
                        return Err(Failure::Conflict(format!(
                            "node {} is {}, not in maintenance",
                            node.name, node.state
                        ))
                        .into());
                    }
                    return Ok(nodes::set_state(
                        conn,
                        node.id,
                        NodeState::Ready,
                        None,
                        EventAction::MaintenanceOff,
                        json!({}),
                    )?);
                };
                if let Some(owner) = &node.owner {
                    if !force {
                        return Err(Failure::Conflict(format!(
                            "node {} is allocated to {owner} (hint: --force releases it first)",
                            node.name
                        ))
                        .into());
                    }
                    // Recorded as the operator's force_release, not as a release by the owner.
                    nodes::force_release(conn, &node, release_state)?;
                }
                let detail = json!({"reason": reason});
                Ok::<_, anyhow::Error>(nodes::set_state(
                    conn,
                    node.id,
                    NodeState::Maintenance,
                    Some((reason, MaintenanceBy::Operator)),
                    EventAction::MaintenanceOn,
                    detail,
                )?)
            })
        })?;
        if node.state == NodeState::Ready {
            ctx.serve_line();
        }
        output::node(&node, format)
    }
}

impl StatusArgs {
    /// `status` and `status_baremetal` (`baremetal`: with the credential and hardware columns).
    pub fn run(&self, ctx: &Ctx, baremetal: bool) -> Result<()> {
        let args = self;
        let format = ctx.format(&[Format::Human, Format::Csv, Format::Json])?;
        let format = match args.legacy_type {
            None => format,
            Some(legacy @ (Format::Human | Format::Csv))
                if ctx.output.is_none_or(|o| o == legacy) =>
            {
                legacy
            }
            Some(_) => {
                let message = "-t takes human or csv, and must agree with -o when both are given";
                return Err(Failure::Usage(message.into()).into());
            }
        };
        let (pool, owner) = (args.pool.as_deref(), args.owner.as_deref());
        if args.summary {
            let (counts, pools, waiting) = ctx.read(|conn| {
                let counts = nodes::count_by_pool(conn, pool, owner)?;
                let pools = known_pools(conn, pool, counts.is_empty())?;
                Ok((counts, pools, waiting_by_pool(conn, pool)?))
            })?;
            note_missing_pool(pool, pools.as_deref());
            output::summary(&counts, format)?;
            return output::waiting(&waiting, format);
        }
        let filter = args.filters.filter(pool)?.to_json();
        let (nodes, now, pools, waiting) = ctx.read(|conn| {
            // A role that may not read the credentials (the read-only role) gets the same nodes through
            // the view that masks them; asking for the secrets reads nodes, so the server refuses that.
            let nodes = if args.show_secrets || nodes::may_read_credentials(conn)? {
                nodes::list(conn, &filter, owner)?
            } else {
                nodes::list_public(conn, &filter, owner)?
            };
            let pools = known_pools(conn, pool, nodes.is_empty())?;
            let waiting = waiting_by_pool(conn, pool)?;
            Ok((nodes, store::server_now(conn)?, pools, waiting))
        })?;
        note_missing_pool(pool, pools.as_deref());
        output::status(&nodes, now, format, baremetal, args.show_secrets)?;
        output::waiting(&waiting, format)
    }
}

/// How many requests wait in line per pool (only `pool` and any-pool requests when given). A role that
/// may not read the line (granted before the queue existed, until `roles --apply` runs again) sees none.
fn waiting_by_pool(
    conn: &mut diesel::PgConnection,
    pool: Option<&str>,
) -> Result<Vec<store::queue::PoolWaiting>> {
    let mut all = store::queue::waiting_by_pool(conn)?;
    all.retain(|w| pool.is_none() || w.pool.is_none() || w.pool.as_deref() == pool);
    Ok(all)
}

/// The pools there are, when `status --pool POOL` found nothing (else `None`, and no query): to tell a
/// misspelt pool from an empty selection.
fn known_pools(
    conn: &mut diesel::PgConnection,
    pool: Option<&str>,
    found_nothing: bool,
) -> Result<Option<Vec<String>>> {
    Ok(match pool {
        Some(_) if found_nothing => Some(nodes::pools(conn)?),
        _ => None,
    })
}

/// Says on stderr that `pool` does not exist, and which pools do, when `pools` (the pools there are)
/// lacks it. An expected outcome, not an error: the output is the empty table and the exit code 0, as
/// for any selection that matches nothing.
fn note_missing_pool(pool: Option<&str>, pools: Option<&[String]>) {
    if let (Some(pool), Some(pools)) = (pool, pools) {
        if !pools.iter().any(|p| p == pool) {
            let known = if pools.is_empty() {
                "there are no nodes".to_owned()
            } else {
                format!("the pools are {}", pools.join(", "))
            };
            output::note(&format!("no pool {pool:?}: {known}"));
        }
    }
}

impl HistoryArgs {
    /// `history`.
    pub fn run(&self, ctx: &Ctx) -> Result<()> {
        let (node, owner, limit) = (self.node.as_deref(), self.owner.as_deref(), self.limit);
        let format = ctx.format(&[Format::Human, Format::Csv, Format::Json])?;
        let since_micros = self
            .since
            .map(|d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX));
        let events = ctx.read(|conn| {
            let mut filter = EventFilter {
                owner: owner.map(str::to_owned),
                since_micros,
                limit,
                ..Default::default()
            };
            if let Some(key) = node {
                match nodes::find_name(conn, key)? {
                    Some((id, name)) => {
                        filter.node_id = Some(id);
                        filter.node_name = Some(name);
                    }
                    // A removed node: match its old name (or id).
                    None => match key.parse::<i64>() {
                        Ok(id) => filter.node_id = Some(id),
                        Err(_) => filter.node_name = Some(key.to_owned()),
                    },
                }
            }
            Ok(events::list(conn, &filter)?)
        })?;
        output::events(&events, format)
    }
}
