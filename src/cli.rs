//! The top layer: the command line (clap derive) and the dispatch to the commands. The global options
//! live here; each subcommand's arguments are an `Args` struct next to its `run` in `commands`. The `///`
//! comments are the `--help` text.

use std::path::PathBuf;

use anyhow::Result;
use clap::{CommandFactory, Parser, Subcommand};

use crate::commands::{
    Ctx, admin, docs, doctor, health, inventory, lease, legacy, metrics, queue, report, stats,
};
use crate::domain::Group;
use crate::error::Exit;
use crate::output::Format;

const DATABASE_HELP: &str = "\
The database is --database-url, else $MOLTENIRON_DATABASE_URL, else $DATABASE_URL, else database_url in \
the config file, else libpq's defaults (PGHOST, PGPORT, PGUSER, PGDATABASE, PGPASSWORD, ~/.pgpass).";

/// The text after the options in `molteniron --help`: the exit codes (from [`Exit`]) and where the
/// database comes from.
fn after_help() -> String {
    format!("{}\n\n{DATABASE_HELP}", Exit::summary())
}

/// Share a pool of bare-metal machines between CI jobs, with PostgreSQL as the only coordinator.
///
/// Every invocation connects to PostgreSQL, does its work in one transaction and exits: there is no daemon.
/// Concurrent jobs never wait for each other and never get the same node.
#[derive(Debug, Parser)]
#[command(name = "molteniron", version, after_help = after_help(), propagate_version = true)]
pub struct Cli {
    /// PostgreSQL URL (postgres://user@host/db) or libpq keyword string ("host=... dbname=...").
    #[arg(
        long,
        global = true,
        value_name = "URL",
        help_heading = "Global options"
    )]
    pub database_url: Option<String>,

    /// Config file [default: $MOLTENIRON_CONFIG, else /etc/molteniron/config.yaml if it exists].
    #[arg(
        long,
        global = true,
        value_name = "FILE",
        help_heading = "Global options"
    )]
    pub config: Option<PathBuf>,

    /// The original MoltenIron's settings directory: DIR/conf.yaml's maxTime becomes max_lease (on top of
    /// the config file); its daemon and MySQL keys mean nothing here and are ignored, with a note.
    #[arg(
        short = 'c',
        long,
        global = true,
        value_name = "DIR",
        help_heading = "Global options"
    )]
    pub conf_dir: Option<PathBuf>,

    /// Retry up to N times, with exponential backoff and jitter, when the database is unreachable, restarting
    /// or drops the connection [default: retries from the config, else 0]. Commands whose effect could
    /// be applied twice (import, add, set-field, remove, clean, maintenance, delete_db) retry only while
    /// connecting; allocate, release, renew, reap and the read-only commands also after a lost connection.
    #[arg(long, global = true, value_name = "N", help_heading = "Global options",
          value_parser = clap::value_parser!(u32).range(0..=20))]
    pub retries: Option<u32>,

    /// Keep retrying, with the same backoff, for up to this long (e.g. 60s, 2m), however many attempts
    /// that takes: a budget in time rides out a failover that takes longer than a few retries
    /// [default: retry_for from the config; when neither is set, --retries decides].
    #[arg(long, global = true, value_name = "DURATION", help_heading = "Global options",
          value_parser = crate::config::duration_arg)]
    pub retry_for: Option<std::time::Duration>,

    /// Output format for commands that print data [default: human].
    #[arg(
        short = 'o',
        long,
        global = true,
        value_enum,
        value_name = "FORMAT",
        help_heading = "Global options"
    )]
    pub output: Option<Format>,

    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands. `defer`: clap builds a subcommand's arguments only when that subcommand is parsed or
/// its help is shown, not all of them at every start (≈0.16 ms of each invocation; see
/// docs/benchmarks.md). Keep doc comments off the `Args` structs in `commands`: built late, a struct's doc
/// would replace its variant's text in that subcommand's own help.
#[derive(Debug, Subcommand)]
#[command(defer = true)]
pub enum Command {
    /// Create or upgrade the database schema (idempotent; safe to run from several hosts at once).
    Migrate,

    /// Print the SQL for three group roles and their privileges (or run it with --apply).
    ///
    /// PREFIX_admin may migrate and change the inventory. PREFIX_job may allocate, release, renew, reap,
    /// get-field, status and history, and cannot add, change or remove nodes. PREFIX_readonly may read the
    /// pool with psql without BMC credentials (the view nodes_public masks secrets) and run status and
    /// history. The roles cannot log in: GRANT them to login roles. Without --apply nothing connects to
    /// the database.
    Roles(admin::RolesArgs),

    /// Add every node of a nodes.yaml file in one transaction: all of them or none.
    ///
    /// The file is the one `openstack baremetal create` reads, plus the molteniron keys `pool` and
    /// `allocation_pool` (see nodes.yaml.example). A name that already exists is a conflict (exit 6)
    /// unless --update is given.
    Import(inventory::ImportArgs),

    /// Print the whole inventory as nodes.yaml, so that export then import round-trips.
    ///
    /// The output is a backup: it includes the BMC passwords.
    Export,

    /// Add one node.
    Add(inventory::AddArgs),

    /// Check out COUNT ready nodes (of POOL, else of any pool) that match the hardware filters, for OWNER,
    /// all or nothing, and print what the job needs.
    ///
    /// The human table masks BMC passwords (--show-secrets shows them); -o json, -o env and the DevStack
    /// files carry them. If OWNER already holds nodes, the same COUNT (and POOL) return them again (a
    /// retried job does not leak machines); anything else is a conflict (exit 6). Too few ready matching
    /// nodes right now is exit 3 (retry later); a request that can never be satisfied as things stand (no
    /// such pool, or fewer than COUNT nodes match in any state) is exit 8 (do not retry). Nothing is
    /// allocated either way. With --wait the job waits in line instead of exit 3 (see `queue`): by
    /// --priority, then arrival, until granted or --wait-timeout (then exit 3); a signal withdraws the
    /// request (exit 128 + signal). While anyone waits, an allocate without --wait gets only nodes no
    /// request ahead of it wants.
    Allocate(lease::AllocateArgs),

    /// Give back all nodes OWNER holds (or one with --node), and withdraw OWNER's request from the line.
    /// Holding nothing is fine: exit 0.
    Release(lease::ReleaseArgs),

    /// The requests waiting in line (allocate --wait), in the order they will be served.
    ///
    /// Requests are served by priority (highest first), then arrival. A request is granted only when
    /// the nodes it takes are not wanted by any request ahead of it; one ahead that cannot be satisfied
    /// yet keeps the nodes it could use, so a big request is never starved by small ones. "ready" and
    /// "allocated" count the nodes each request could use.
    Queue(queue::QueueArgs),

    /// Extend OWNER's lease on all its nodes. Exit 4 if OWNER holds nothing.
    ///
    /// With --keep-alive it is the heartbeat of a long job: it renews every --every until OWNER releases its
    /// nodes (exit 0) or the --while-pid process exits (exit 0), rides out database outages until the lease
    /// would run out (then exit 5), and exits 4 when OWNER holds nothing at the start or loses a node to
    /// reap, `maintenance --force` or `remove`.
    Renew(lease::RenewArgs),

    /// Release every allocation whose lease has expired (for cron) and print what was reaped.
    #[command(alias = "cull")]
    Reap(lease::ReapArgs),

    /// Run a command against nodes (for cron): a pass keeps a node in service, a failure puts it in
    /// maintenance.
    ///
    /// Each ready node (or those named, or of --pool; only those due when health_check.every or
    /// after_jobs is set) is taken out of the pool for its check like an allocation (owner
    /// health-check:NAME, a short lease), the command runs with `sh -c` and the node's MOLTENIRON_*
    /// variables, and exit 0 puts the node back to ready; a non-zero exit or --timeout puts it in
    /// maintenance with the exit status and the first line of stderr as the reason, every credential
    /// masked. Prints one row per node. Exit 0 when every node passed, 7 when some failed.
    #[command(name = "health-check")]
    HealthCheck(health::HealthCheckArgs),

    /// How the pool is used: per pool and node, allocations, busy %, hold times, failed jobs,
    /// quarantines, health checks and waits in line, from the events.
    Stats(stats::StatsArgs),

    /// The pool for Prometheus: nodes per pool and state, expired leases, allocations, reaps,
    /// quarantines and the line, in the text exposition format (on stdout, or --textfile for
    /// node_exporter's textfile collector).
    ///
    /// Only reads, in one statement: the readonly role may run it. Requests waiting for any pool carry
    /// the label pool="" (no pool can have that name). No label names an owner.
    Metrics(metrics::MetricsArgs),

    /// The pool as one self-contained HTML page (no script, no external asset) for any web root: pools
    /// by state, the line, nodes out of service and why, and the period's utilization per pool, waits
    /// by request size and failed jobs per node as charts.
    ///
    /// Written atomically (temporary file, then rename); silent on success, for cron. Only reads, in
    /// one snapshot: the readonly role may run it. No credential is read.
    Report(report::ReportArgs),

    /// Mark a dirty node ready again. Exit 6 if the node is not dirty.
    Clean(admin::CleanArgs),

    /// Take a node out of service (--reason) or put it back (--off).
    Maintenance(admin::MaintenanceArgs),

    /// Print FIELD of every node OWNER holds, one line per node (legacy name: get_field).
    ///
    /// FIELD is a name such as cpus, ipmi_ip, port_hwaddr, allocation_pool, driver_info.KEY or
    /// properties.KEY (docs/commands.md lists every alias).
    #[command(name = "get-field", alias = "get_field")]
    GetField(lease::GetFieldArgs),

    /// Change one inventory field of a node (legacy: set_field ID KEY VALUE TYPE).
    ///
    /// A change to a secret (password, key, token, ...) is recorded in the history without its value.
    /// State and owner cannot be set.
    #[command(name = "set-field", alias = "set_field")]
    SetField(inventory::SetFieldArgs),

    /// The pool at a glance: one row per node (the hardware filters preview what a request would match).
    Status(admin::StatusArgs),

    /// The events: who had which node when, and every edit.
    History(admin::HistoryArgs),

    /// Check the setup and print one line per check: OK, WARN or FAIL, with a fix.
    ///
    /// Checks the server version, that the schema is migrated and current, the lock and statement
    /// timeouts in effect (a pooler may drop them), what the current role may do, whether the primary
    /// replicates synchronously, TLS on TCP connections, autovacuum on nodes, and the server's clock
    /// against this host's. Only reads. Exit 0 when nothing FAILs, else exit 1 after every line.
    Doctor(doctor::DoctorArgs),

    /// Print the shell completion script for SHELL (no database needed).
    ///
    /// bash: molteniron completions bash > /usr/share/bash-completion/completions/molteniron (or
    /// `source <(molteniron completions bash)` in ~/.bashrc); zsh: to _molteniron in a directory of
    /// $fpath; fish: to ~/.config/fish/completions/molteniron.fish.
    Completions(docs::CompletionsArgs),

    /// Write the man pages (molteniron.1 and molteniron-SUBCOMMAND.1 each) to --dir; for packaging.
    #[command(hide = true)]
    Man(docs::ManArgs),

    /// Delete a node; its events stay. Refuses an allocated node (exit 6) unless --force.
    Remove(inventory::RemoveArgs),

    /// Delete every node and every event, keeping the schema.
    #[command(name = "delete_db", alias = "delete-db")]
    DeleteDb(inventory::DeleteDbArgs),

    /// Legacy: status --baremetal.
    #[command(name = "status_baremetal")]
    StatusBaremetal(admin::StatusArgs),

    /// Legacy: add an IPMI node from positional arguments.
    #[command(name = "add_baremetal")]
    AddBaremetal(legacy::AddBaremetalArgs),

    /// Legacy: add a node from key=value pairs (field names as get-field; other keys become properties).
    #[command(name = "add_keyvalue_pairs")]
    AddKeyvaluePairs(legacy::AddKeyvaluePairsArgs),

    /// Legacy: add a node from a JSON object of fields (names as get-field; other keys become properties).
    #[command(name = "add_json_blob")]
    AddJsonBlob(legacy::AddJsonBlobArgs),
}

impl Cli {
    /// The `-o` the command gets. The original printed its reply's `result` member, which only get_field
    /// (the values) and status (the table) had: `-o result` is their default output here, and every other
    /// command refuses it.
    pub fn output_format(&self) -> Option<Format> {
        match (self.output, &self.command) {
            (
                Some(Format::Result),
                Command::GetField(_) | Command::Status(_) | Command::StatusBaremetal(_),
            ) => None,
            (format, _) => format,
        }
    }
}

impl Command {
    /// The narrowest group role of `molteniron roles` whose members may run the subcommand (named in a
    /// permission error); `None` for `roles`, which needs ownership, not a group.
    pub fn needs(&self) -> Option<Group> {
        Some(match self {
            Command::Roles(_) | Command::Doctor(_) | Command::Completions(_) | Command::Man(_) => {
                return None;
            }
            Command::Status(args) | Command::StatusBaremetal(args) if args.show_secrets => {
                Group::Job
            }
            Command::Status(_)
            | Command::StatusBaremetal(_)
            | Command::History(_)
            | Command::Queue(_)
            | Command::Stats(_)
            | Command::Metrics(_)
            | Command::Report(_) => Group::Readonly,
            Command::Export
            | Command::Allocate(_)
            | Command::Release(_)
            | Command::Renew(_)
            | Command::Reap(_)
            | Command::GetField(_) => Group::Job,
            Command::Migrate
            | Command::Import(_)
            | Command::Add(_)
            | Command::HealthCheck(_)
            | Command::Clean(_)
            | Command::Maintenance(_)
            | Command::SetField(_)
            | Command::Remove(_)
            | Command::DeleteDb(_)
            | Command::AddBaremetal(_)
            | Command::AddKeyvaluePairs(_)
            | Command::AddJsonBlob(_) => Group::Admin,
        })
    }

    /// Runs the subcommand: one line per subcommand, each its module's `run`.
    pub fn run(&self, ctx: &Ctx) -> Result<()> {
        match self {
            Command::Migrate => admin::migrate(ctx),
            Command::Roles(args) => args.run(ctx),
            Command::Import(args) => args.run(ctx),
            Command::Export => inventory::export(ctx),
            Command::Add(args) => args.run(ctx),
            Command::Allocate(args) => args.run(ctx),
            Command::Release(args) => args.run(ctx),
            Command::Queue(args) => args.run(ctx),
            Command::Renew(args) => args.run(ctx),
            Command::Reap(args) => args.run(ctx),
            Command::HealthCheck(args) => args.run(ctx),
            Command::Stats(args) => args.run(ctx),
            Command::Metrics(args) => args.run(ctx),
            Command::Report(args) => args.run(ctx),
            Command::Clean(args) => args.run(ctx),
            Command::Maintenance(args) => args.run(ctx),
            Command::GetField(args) => args.run(ctx),
            Command::SetField(args) => args.run(ctx),
            Command::Status(args) => args.run(ctx, args.baremetal),
            Command::History(args) => args.run(ctx),
            Command::Doctor(args) => args.run(ctx),
            Command::Completions(args) => args.run(Cli::command()),
            Command::Man(args) => args.run(Cli::command()),
            Command::Remove(args) => args.run(ctx),
            Command::DeleteDb(args) => args.run(ctx),
            Command::StatusBaremetal(args) => args.run(ctx, true),
            Command::AddBaremetal(args) => args.run(ctx),
            Command::AddKeyvaluePairs(args) => args.run(ctx),
            Command::AddJsonBlob(args) => args.run(ctx),
        }
    }
}
