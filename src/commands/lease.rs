//! The job's side: allocate (with DevStack files), release, renew, reap and get-field.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;
use clap::Args;
use diesel::PgConnection;
use serde_json::Value;

use super::keepalive::KeepAlive;
use super::wait::{self, Refusal};
use super::{Ctx, invalid, no_node};
use crate::config::duration_arg;
use crate::db;
use crate::devstack;
use crate::domain::timestamp;
use crate::error::Failure;
use crate::fields::{Field, is_simple_key};
use crate::inventory::{check_owner, check_text};
use crate::output::{self, Format};
use crate::pool::{self, Filter, Outcome, Request, Unsatisfiable};
use crate::queue;
use crate::store::health;
use crate::store::nodes::{self, JobResult, Node};
use crate::store::queue as queue_store;

// The hardware filters of allocate and status (Ironic's semantics; all optional, combined with AND).
// No `///` here: with deferred subcommands a struct's doc would replace the command's own description.
// Flattened last in each command, so the heading below does not carry over to the command's own options.
#[derive(Debug, Clone, Default, Args)]
#[command(next_help_heading = "Hardware filters (all must match)")]
pub struct FilterArgs {
    /// properties.cpu_arch equals ARCH.
    #[arg(long, value_name = "ARCH", value_parser = non_empty)]
    pub arch: Option<String>,
    /// properties.cpus is at least N.
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub min_cpus: Option<u64>,
    /// properties.memory_mb is at least N.
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub min_memory_mb: Option<u64>,
    /// properties.local_gb is at least N.
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub min_disk_gb: Option<u64>,
    /// The node's driver is NAME (ipmi, redfish, ...).
    #[arg(long, value_name = "NAME", value_parser = non_empty)]
    pub driver: Option<String>,
    /// Ironic's resource_class equals NAME.
    #[arg(long, value_name = "NAME", value_parser = non_empty)]
    pub resource_class: Option<String>,
    /// Ironic's traits contain TRAIT (repeatable: every one is required).
    #[arg(long = "trait", value_name = "TRAIT", value_parser = non_empty)]
    pub traits: Vec<String>,
    /// properties.KEY equals VALUE, as text or, when both are numbers, as numbers (8 matches 8 and 8.0);
    /// repeatable, each KEY once.
    #[arg(long = "property", value_name = "KEY=VALUE", value_parser = property_filter)]
    pub properties: Vec<(String, String)>,
    /// The node is one of these (name or id; repeatable): Ironic's candidate_nodes.
    #[arg(long = "node", value_name = "NODE", value_parser = non_empty)]
    pub nodes: Vec<String>,
}

impl FilterArgs {
    /// The filter for `pool` (`None`: every pool). A `--property` key given twice is a usage error: a
    /// property cannot equal two values.
    pub fn filter(&self, pool: Option<&str>) -> Result<Filter> {
        let mut keys = BTreeSet::new();
        if let Some((key, _)) = self.properties.iter().find(|(k, _)| !keys.insert(k)) {
            return Err(Failure::Usage(format!("--property {key}=... is given twice")).into());
        }
        Ok(Filter {
            pool: pool.map(str::to_owned),
            arch: self.arch.clone(),
            min_cpus: self.min_cpus,
            min_memory_mb: self.min_memory_mb,
            min_disk_gb: self.min_disk_gb,
            driver: self.driver.clone(),
            resource_class: self.resource_class.clone(),
            traits: self.traits.clone(),
            properties: self.properties.clone(),
            nodes: self.nodes.clone(),
        })
    }
}

/// A filter value: not empty, no control characters.
fn non_empty(text: &str) -> Result<String, String> {
    if text.trim().is_empty() {
        return Err("must not be empty".to_owned());
    }
    if text.chars().any(char::is_control) {
        return Err("must not contain control characters".to_owned());
    }
    Ok(text.to_owned())
}

/// `--property KEY=VALUE`: a key as `properties.KEY` names it, and a non-empty value.
fn property_filter(text: &str) -> Result<(String, String), String> {
    let Some((key, value)) = text.split_once('=') else {
        return Err("expected KEY=VALUE".to_owned());
    };
    if !is_simple_key(key) {
        return Err(format!(
            "{key:?} is not a property name (letters, digits, _ and -)"
        ));
    }
    Ok((key.to_owned(), non_empty(value)?))
}

#[derive(Debug, Args)]
pub struct AllocateArgs {
    /// Who holds the nodes: free text up to 255 characters, e.g. $BUILD_TAG.
    pub owner: String,
    /// How many nodes.
    #[arg(default_value_t = 1, value_parser = clap::value_parser!(i64).range(1..=10_000))]
    pub count: i64,
    /// Only this pool (same as --pool) [default: any pool].
    #[arg(value_name = "POOL")]
    pub pool_arg: Option<String>,
    /// Only this pool [default: any pool; the original's `Default` also means any pool].
    #[arg(long, value_name = "POOL")]
    pub pool: Option<String>,
    /// Every pool: the default when no POOL is given, spelled out.
    #[arg(long, conflicts_with_all = ["pool_arg", "pool"])]
    pub any_pool: bool,
    /// Lease length, e.g. 90m, 2h, 3600 [default: max_lease from the config, 6000s].
    #[arg(long, value_name = "DURATION", value_parser = duration_arg)]
    pub lease: Option<Duration>,
    /// Write DevStack's hardware info file here (replaced): "BMC_ADDRESS MAC USER PASSWORD" per node.
    #[arg(long, value_name = "FILE")]
    pub hardware_info: Option<PathBuf>,
    /// Append DevStack's IRONIC_HW_* and ALLOCATION_POOL settings to this localrc file.
    #[arg(long, value_name = "FILE")]
    pub localrc: Option<PathBuf>,
    /// Show BMC passwords in the human table (masked by default: build logs are often published).
    /// -o json, -o env and the DevStack files always carry them.
    #[arg(long)]
    pub show_secrets: bool,
    /// If the nodes cannot be had now, wait in line until they are granted (served by priority, then
    /// arrival; see `molteniron queue`). Fails at once if they never can be (exit 8).
    #[arg(long)]
    pub wait: bool,
    /// Give up waiting after this long (exit 3, "waited ..."); implies --wait [default: max_wait from the
    /// config, 2h].
    #[arg(long, value_name = "DURATION", value_parser = duration_arg)]
    pub wait_timeout: Option<Duration>,
    /// Place in line, -1000 to 1000: higher is served first (e.g. Zuul's zuul.node_priority). Without
    /// --wait it still decides which waiting requests come first.
    #[arg(long, value_name = "N", default_value_t = 0, allow_negative_numbers = true,
          value_parser = clap::value_parser!(i32).range(-1000..=1000))]
    pub priority: i32,
    #[command(flatten)]
    pub filters: FilterArgs,
}

impl AllocateArgs {
    /// `allocate OWNER [COUNT] [POOL] [FILTER...]`: all or nothing; a retry of the same request (the same
    /// count, every held node matching it) returns the nodes the owner already holds.
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
            (a, b) => a.as_deref().or(b.as_deref()),
        };
        if let Some(pool) = pool {
            check_text("pool", pool).map_err(invalid)?;
        }
        // The original MoltenIron's default pool name meant "any pool".
        let pool = pool.filter(|p| *p != ORIGINAL_ANY_POOL);
        let filter = self.filters.filter(pool)?;
        let request = Request {
            owner: &self.owner,
            filter: &filter,
            count: self.count,
            lease_secs: self.lease.unwrap_or(ctx.config.max_lease).as_secs_f64(),
            priority: self.priority,
        };
        let wait = (self.wait || self.wait_timeout.is_some())
            .then(|| self.wait_timeout.unwrap_or(ctx.config.max_wait));
        // Open the DevStack files before allocating, so an unwritable path fails before any node is
        // taken; files this run creates are removed again if the allocation fails.
        let files = devstack::Files::open(self.hardware_info.as_deref(), self.localrc.as_deref())?;
        let decided = ctx.with_db_repeatable(|conn| {
            let outcome = pool::take(conn, ctx.timeouts(), &request)?;
            // With DevStack files, nodes the files cannot describe are given back at once (with their
            // events), so nothing stays allocated. Not one transaction around the allocation: that would
            // hold the owner's lock while waiting for the line's, against a process serving the line
            // that grants this owner (a deadlock).
            match &outcome {
                Outcome::Granted(nodes) if files.any() => {
                    if let Err(e) = devstack::check(nodes) {
                        let state = crate::domain::NodeState::Ready;
                        nodes::release(conn, ctx.timeouts(), &self.owner, None, state, None)?;
                        return Err(invalid(format!("{e} (the nodes were given back)")));
                    }
                }
                Outcome::AlreadyHeld(nodes) if files.any() => describable(nodes, &self.owner)?,
                _ => {}
            }
            Ok(outcome)
        });
        let nodes = match decided.and_then(|outcome| {
            match (wait, wait.and_then(|_| waitable(&request, &outcome))) {
                (Some(timeout), Some(refusal)) => {
                    let nodes = match wait::wait_in_line(ctx, &request, timeout, &refusal)
                        .map_err(|e| waited_json(e, format))?
                    {
                        wait::Waited::Nodes(nodes) => nodes,
                        // Rare: another allocate of this owner got nodes first (see wait::Waited).
                        wait::Waited::Decided(Outcome::AlreadyHeld(nodes)) if files.any() => {
                            describable(&nodes, &self.owner)?;
                            return granted(&request, Outcome::AlreadyHeld(nodes), format);
                        }
                        wait::Waited::Decided(outcome) => granted(&request, outcome, format)?,
                    };
                    if files.any() {
                        if let Err(e) = devstack::check(&nodes) {
                            let state = crate::domain::NodeState::Ready;
                            ctx.with_db_repeatable(|conn| {
                                Ok(nodes::release(
                                    conn,
                                    ctx.timeouts(),
                                    &self.owner,
                                    None,
                                    state,
                                    None,
                                )?)
                            })?;
                            return Err(invalid(format!("{e} (the nodes were given back)")));
                        }
                    }
                    Ok(nodes)
                }
                _ => granted(&request, outcome, format),
            }
        }) {
            Ok(nodes) => nodes,
            Err(e) => {
                files.discard();
                return Err(e);
            }
        };
        if let Some(warning) = files.shape_warning(&nodes) {
            output::note(&format!("warning: {warning}"));
        }
        files.write(&nodes)?;
        output::allocation(&self.owner, &nodes, format, self.show_secrets)
    }
}

/// With DevStack files to write: whether the files can describe the nodes `owner` already held (they
/// stay held either way; a retried job step must not lose them for a file it cannot write).
fn describable(nodes: &[Node], owner: &str) -> Result<()> {
    devstack::check(nodes)
        .map_err(|e| invalid(format!("{e} (the nodes {owner} already held stay held)")))
}

/// For an allocate that may wait: what its refusal said, when the outcome is one that waiting can change
/// (not enough nodes now, or the owner already in line); says on stderr when only maintenance stands in
/// the way.
fn waitable(request: &Request, outcome: &Outcome) -> Option<Refusal> {
    match outcome {
        Outcome::NotEnough {
            found,
            requested,
            matching,
            in_service,
            ahead,
        } => {
            if in_service < requested {
                output::note(&format!(
                    "only {in_service} of the {matching} nodes that match are out of maintenance; \
                     waiting until enough come back"
                ));
            }
            Some(Refusal {
                found: *found,
                why: ahead_note(request, *ahead),
            })
        }
        Outcome::Waiting { .. } => Some(Refusal::default()),
        _ => None,
    }
}

/// With `-o json`, a wait that ended without nodes (timeout, withdrawal) prints the same object as an
/// allocate that could not be granted (`"error": "not_enough_nodes"`), then returns the error.
fn waited_json(err: anyhow::Error, format: Format) -> anyhow::Error {
    if format != Format::Json {
        return err;
    }
    if let Some(
        failure @ Failure::NotEnough {
            found, requested, ..
        },
    ) = err.downcast_ref::<Failure>()
    {
        if let Err(e) = output::allocation_error("not_enough_nodes", *found, *requested, 0, failure)
        {
            return e;
        }
    }
    err
}

/// ` (3 requests waiting in line for pool x come first; ...)`, or nothing when none does.
fn ahead_note(request: &Request, ahead: i64) -> String {
    if ahead == 0 {
        return String::new();
    }
    let s = if ahead == 1 { "" } else { "s" };
    format!(
        " ({ahead} request{s} waiting in line for {} come{} first; allocate --wait joins the line)",
        request.filter.scope(),
        if ahead == 1 { "s" } else { "" }
    )
}

/// The pool name the original MoltenIron used for "any pool".
const ORIGINAL_ANY_POOL: &str = "Default";

/// The nodes of a decided request, or its exit code and message (with `-o json`, also a JSON object on
/// stdout: see docs/commands.md, "JSON shapes").
fn granted(request: &Request, outcome: Outcome, format: Format) -> Result<Vec<Node>> {
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
            let hint = "release them first, or repeat the original request";
            let message = format!(
                "{} already holds {} node(s) of pool {} (hint: {hint})",
                request.owner,
                held.len(),
                Outcome::held_pools(&held)
            );
            Err(Failure::Conflict(message).into())
        }
        Outcome::NotEnough {
            found,
            requested,
            matching,
            ahead,
            ..
        } => {
            let why = ahead_note(request, ahead);
            let failure = Failure::NotEnough {
                found,
                requested,
                why,
            };
            if format == Format::Json {
                output::allocation_error("not_enough_nodes", found, requested, matching, &failure)?;
            }
            Err(failure.into())
        }
        Outcome::Waiting { position } => {
            let owner = request.owner;
            let failure = Failure::NotEnough {
                found: 0,
                requested: request.count,
                why: format!(
                    " ({owner} already waits in line, at position {position}; allocate --wait joins \
                     that request, release {owner} withdraws it)"
                ),
            };
            if format == Format::Json {
                output::allocation_error("waiting", 0, request.count, 0, &failure)?;
            }
            Err(failure.into())
        }
        Outcome::Unsatisfiable {
            found,
            requested,
            why,
        } => {
            let filter = request.filter;
            let (matching, why) = match why {
                Unsatisfiable::NoPool { pools } => {
                    let pool = filter.pool.as_deref().unwrap_or_default();
                    let pools = if pools.is_empty() {
                        "none".to_owned()
                    } else {
                        pools.join(", ")
                    };
                    (0, format!("there is no pool {pool:?}; pools: {pools}"))
                }
                Unsatisfiable::TooFew { matching } => {
                    let (scope, criteria) = (filter.scope(), filter.describe());
                    let why = match (matching, criteria.is_empty()) {
                        (0, true) => format!("no node in {scope}"),
                        (0, false) => format!("no node of {scope} matches {criteria}"),
                        (1, true) => format!("only 1 node in {scope}, in any state"),
                        (1, false) => {
                            format!("only 1 node of {scope} matches {criteria}, in any state")
                        }
                        (n, true) => format!("only {n} nodes in {scope}, in any state"),
                        (n, false) => {
                            format!("only {n} nodes of {scope} match {criteria}, in any state")
                        }
                    };
                    (matching, why)
                }
            };
            let failure = Failure::Unsatisfiable {
                found,
                requested,
                why,
            };
            if format == Format::Json {
                output::allocation_error("unsatisfiable", found, requested, matching, &failure)?;
            }
            Err(failure.into())
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
    /// The job failed because of the machine: a deploy timeout, a BMC error, a dead NIC. Not for test
    /// failures. After quarantine_after such jobs in a row (from two owners at least) the node goes to
    /// maintenance. A plain release counts as a pass.
    #[arg(long)]
    pub failed: bool,
    /// With --failed: what went wrong, in a few words (kept in the history and the quarantine reason).
    #[arg(long, value_name = "TEXT", requires = "failed", value_parser = reason_text)]
    pub reason: Option<String>,
}

/// A `--reason`: 1 to 1000 characters, no control characters.
fn reason_text(text: &str) -> Result<String, String> {
    if text.trim().is_empty() || text.chars().count() > 1000 {
        return Err("must be 1 to 1000 characters".to_owned());
    }
    if text.chars().any(char::is_control) {
        return Err("must not contain control characters".to_owned());
    }
    Ok(text.to_owned())
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
    /// Print nothing when nothing was reaped (for cron, which mails any output); -o json and csv still
    /// print their empty list.
    #[arg(long, short = 'q')]
    pub quiet: bool,
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
        let result = JobResult {
            failed: self.failed,
            reason: self.reason.as_deref(),
        };
        let (quarantine_after, timeouts) = (ctx.config.quarantine_after, ctx.timeouts());
        let release_and_quarantine = |conn: &mut PgConnection| {
            let mut release = match node {
                None => nodes::release(conn, timeouts, owner, None, state, Some(result))?,
                Some(key) => {
                    let node = nodes::find(conn, key, false)?.ok_or_else(|| no_node(key))?;
                    let id = Some(node.id);
                    let release = nodes::release(conn, timeouts, owner, id, state, Some(result))?;
                    if release.released.is_empty() {
                        return Err(Failure::NotFound(format!(
                            "{owner} does not hold node {}",
                            node.name
                        ))
                        .into());
                    }
                    release
                }
            };
            let quarantined = if self.failed && quarantine_after > 0 {
                let ids: Vec<i64> = release.released.iter().map(|n| n.id).collect();
                health::quarantine(conn, &ids, quarantine_after)?
            } else {
                Vec::new()
            };
            // Where each node went: a quarantined one is in maintenance, not in the release state.
            for node in &mut release.released {
                if quarantined.iter().any(|q| q.id == node.id) {
                    node.state = crate::domain::NodeState::Maintenance;
                }
            }
            Ok::<_, anyhow::Error>((release, quarantined))
        };
        let (release, quarantined) = ctx.with_db_repeatable(|conn| {
            // A failed job's release and the quarantine it may trigger commit together; a pass cannot
            // quarantine, so a plain release stays one statement, with no transaction around it.
            if self.failed {
                db::transaction(conn, timeouts, release_and_quarantine)
            } else {
                release_and_quarantine(conn)
            }
        })?;
        for q in &quarantined {
            output::note(&format!("node {} {}", q.name, q.reason));
        }
        // Someone is in line (or the statement could not tell): withdraw OWNER's own request, if it has
        // one, then hand the freed nodes on and wake the waiters. The release itself is done: a failure
        // here is said, and the next poll of any waiter serves the line.
        let mut withdrew = false;
        let mut extra = Vec::new();
        if release.queued {
            let served = ctx.with_db_repeatable(|conn| {
                let gone = match node {
                    None => db::transaction(conn, timeouts, |conn| {
                        queue_store::withdraw_owner(conn, owner)
                    })?,
                    Some(_) => None,
                };
                // Granted between the release and the withdrawal (its waiter may be dead): those nodes
                // go back too.
                let late = match gone {
                    Some(w) if w.state == crate::domain::RequestState::Granted => {
                        nodes::release(conn, timeouts, owner, None, state, Some(result))?.released
                    }
                    _ => Vec::new(),
                };
                queue::serve(conn, timeouts, true)?;
                if gone.is_some() {
                    // Wake the withdrawn waiter even when serving granted nothing.
                    db::transaction(conn, timeouts, queue_store::notify)?;
                }
                Ok((gone.is_some(), late))
            });
            match served {
                Ok((gone, late)) => {
                    withdrew = gone;
                    extra = late;
                }
                Err(e) => output::note(&format!("released; serving the line failed: {e:#}")),
            }
        }
        if withdrew {
            output::note(&format!("withdrew {owner}'s request from the line"));
        }
        let mut released = release.released;
        released.extend(extra);
        if released.is_empty() {
            if !withdrew {
                output::note(&format!("{owner} holds no nodes; nothing to release"));
            }
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
        let renewed = ctx.with_db_repeatable(|conn| {
            Ok(nodes::renew(
                conn,
                ctx.timeouts(),
                owner,
                lease.as_secs_f64(),
            )?)
        })?;
        if renewed.is_empty() {
            return Err(Failure::NotFound(format!("{owner} holds no nodes")).into());
        }
        output::renewed(&renewed, format)
    }
}

impl ReapArgs {
    /// `reap [--max-age DUR] [--quiet]`: for cron.
    pub fn run(&self, ctx: &Ctx) -> Result<()> {
        let format = ctx.format(&[Format::Human, Format::Csv, Format::Json])?;
        let state = ctx.config.reap_state.state();
        let max_age = self.max_age.map(|d| d.as_secs_f64());
        let reaped =
            ctx.with_db_repeatable(|conn| Ok(nodes::reap(conn, ctx.timeouts(), max_age, state)?))?;
        // Also withdraws requests whose waiters went silent, so cron covers dead waiters.
        ctx.serve_line();
        // Every line people read carries the time, so a cron log reads without its own timestamps.
        let at = chrono::Utc::now();
        if !(self.quiet && reaped.is_empty()) {
            output::note(&format!(
                "{} reaped {} node(s)",
                timestamp(at),
                reaped.len()
            ));
        }
        if reaped.is_empty() && format == Format::Human {
            return Ok(());
        }
        output::reaped(&reaped, at, format)
    }
}

impl GetFieldArgs {
    /// `get-field OWNER FIELD`: one value per node the owner holds.
    pub fn run(&self, ctx: &Ctx) -> Result<()> {
        let (owner, name) = (self.owner.as_str(), self.field.as_str());
        let format = ctx.format(&[Format::Human, Format::Csv, Format::Json])?;
        let field = Field::parse(name).map_err(Failure::NotFound)?;
        let nodes = ctx.read(|conn| Ok(nodes::held_by(conn, owner)?))?;
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
