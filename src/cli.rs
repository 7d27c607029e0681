//! The command line: clap derive types only. The `///` comments here are the `--help` text.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

const AFTER_HELP: &str = "\
Exit codes: 0 ok, 1 invalid input or other error, 2 usage error, 3 not enough nodes, 4 not found, \
5 database unreachable (retry), 6 conflict.

The database is --database-url, else $MOLTENIRON_DATABASE_URL, else $DATABASE_URL, else database_url in \
the config file, else libpq's defaults (PGHOST, PGPORT, PGUSER, PGDATABASE, PGPASSWORD, ~/.pgpass).";

/// Share a pool of bare-metal machines between CI jobs, with PostgreSQL as the only coordinator.
///
/// Every invocation connects to PostgreSQL, does its work in one transaction and exits: there is no daemon.
/// Concurrent jobs never wait for each other and never get the same node.
#[derive(Debug, Parser)]
#[command(name = "molteniron", version, after_help = AFTER_HELP, propagate_version = true)]
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

    /// Retry up to N times, with exponential backoff and jitter, when the database is unreachable, restarting
    /// or drops the connection [default: retries from the config, else 0]. Commands whose effect could
    /// be applied twice (import, add, set-field, remove, clean, maintenance, delete_db) retry only while
    /// connecting; allocate, release, renew, reap and the read-only commands also after a lost connection.
    #[arg(long, global = true, value_name = "N", help_heading = "Global options",
          value_parser = clap::value_parser!(u32).range(0..=20))]
    pub retries: Option<u32>,

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

/// How data is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Aligned tables for people.
    Human,
    /// Comma-separated values with a header row (status, history, reap, get-field).
    Csv,
    /// JSON with a stable shape, for scripts (see the README).
    Json,
    /// Shell-quoted KEY=value lines to eval (allocate only).
    Env,
}

/// How `set-field` interprets VALUE.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ValueType {
    /// Text (numeric fields such as cpus still become numbers).
    #[value(alias = "str")]
    String,
    /// An integer.
    #[value(alias = "integer")]
    Int,
    /// Any JSON value (an object, a list, true, ...).
    Json,
}

/// The subcommands. `defer`: clap builds a subcommand's arguments only when that subcommand is parsed or
/// its help is shown, not all 21 at every start (≈0.16 ms of each invocation; see docs/benchmarks.md).
/// Keep doc comments off the `Args` structs below: built late, a struct's doc would replace its variant's
/// text in that subcommand's own help.
#[derive(Debug, Subcommand)]
#[command(defer = true)]
pub enum Command {
    /// Create or upgrade the database schema (idempotent; safe to run from several hosts at once).
    Migrate,

    /// Print the SQL for three group roles and their privileges (or run it with --apply).
    ///
    /// PREFIX_admin may migrate and change the inventory. PREFIX_job may allocate, release, renew, reap,
    /// get-field, status and history, and cannot add, change or remove nodes. PREFIX_readonly may read the
    /// pool with psql without BMC credentials (the view nodes_public masks secrets) and run history. The
    /// roles cannot log in: GRANT them to login roles. Without --apply nothing connects to the database.
    Roles {
        /// Name the roles PREFIX_admin, PREFIX_job and PREFIX_readonly (lower-case letters, digits, _).
        #[arg(long, default_value = "molteniron", value_name = "PREFIX")]
        prefix: String,
        /// Run the SQL on the database in one transaction. Needs the owner of the database and its
        /// tables (or a superuser), and CREATEROLE while a role is missing.
        #[arg(long)]
        apply: bool,
    },

    /// Add every node of a nodes.yaml file in one transaction: all of them or none.
    ///
    /// The file is the one `openstack baremetal create` reads, plus the molteniron keys `pool` and
    /// `allocation_pool` (see nodes.yaml.example). A name that already exists is a conflict (exit 6)
    /// unless --update is given.
    Import {
        /// The nodes.yaml file ("-" reads standard input).
        file: PathBuf,
        /// Update the inventory of nodes that already exist (never their state or owner).
        #[arg(long)]
        update: bool,
    },

    /// Print the whole inventory as nodes.yaml, so that export then import round-trips.
    ///
    /// The output is a backup: it includes the BMC passwords.
    Export,

    /// Add one node.
    Add(AddArgs),

    /// Check out COUNT ready nodes of POOL for OWNER, all or nothing, and print what the job needs.
    ///
    /// The output includes BMC credentials. If OWNER already holds nodes, the same COUNT and POOL return
    /// them again (a retried job does not leak machines); anything else is a conflict (exit 6). Fewer ready
    /// nodes than COUNT is exit 3 and allocates nothing.
    Allocate(AllocateArgs),

    /// Give back all nodes OWNER holds (or one with --node). Holding nothing is fine: exit 0.
    Release {
        /// The job that holds the nodes.
        owner: String,
        /// Release only this node (id or name); exit 4 if OWNER does not hold it.
        #[arg(long, value_name = "NODE")]
        node: Option<String>,
    },

    /// Extend OWNER's lease on all its nodes (a heartbeat for long jobs). Exit 4 if OWNER holds nothing.
    Renew {
        /// The job that holds the nodes.
        owner: String,
        /// New lease from now, e.g. 90m, 2h, 3600 [default: max_lease from the config, 6000s].
        #[arg(long, value_name = "DURATION")]
        lease: Option<String>,
    },

    /// Release every allocation whose lease has expired (for cron) and print what was reaped.
    #[command(alias = "cull")]
    Reap {
        /// Also reap allocations older than this, whatever their lease, e.g. 12h.
        #[arg(long, value_name = "DURATION")]
        max_age: Option<String>,
    },

    /// Mark a dirty node ready again. Exit 6 if the node is not dirty.
    Clean {
        /// Node id or name.
        node: String,
    },

    /// Take a node out of service (--reason) or put it back (--off).
    Maintenance {
        /// Node id or name.
        node: String,
        /// Why the node is out of service.
        #[arg(long, required_unless_present = "off", conflicts_with = "off")]
        reason: Option<String>,
        /// Put the node back into service (state ready).
        #[arg(long)]
        off: bool,
        /// Release an allocated node first instead of refusing (exit 6).
        #[arg(long, conflicts_with = "off")]
        force: bool,
    },

    /// Print FIELD of every node OWNER holds, one line per node (legacy name: get_field).
    ///
    /// FIELD is a name such as cpus, ipmi_ip, port_hwaddr, allocation_pool, driver_info.KEY or
    /// properties.KEY (see the README for every alias).
    #[command(name = "get-field", alias = "get_field")]
    GetField {
        /// The job that holds the nodes.
        owner: String,
        /// The field to print.
        field: String,
    },

    /// Change one inventory field of a node (legacy: set_field ID KEY VALUE TYPE).
    ///
    /// A change to a secret (password, key, token, ...) is recorded in the history without its value.
    /// State and owner cannot be set.
    #[command(name = "set-field", alias = "set_field")]
    SetField {
        /// Node id or name.
        node: String,
        /// The field to change (same names as get-field).
        field: String,
        /// The new value.
        value: String,
        /// Legacy position of --type.
        #[arg(value_enum, hide = true)]
        legacy_type: Option<ValueType>,
        /// How to read VALUE [default: string].
        #[arg(long = "type", value_enum)]
        value_type: Option<ValueType>,
    },

    /// The pool at a glance: one row per node.
    Status(StatusArgs),

    /// The events: who had which node when, and every edit.
    History {
        /// Only this node (id or name; removed nodes too).
        #[arg(long, value_name = "NODE")]
        node: Option<String>,
        /// Only this owner.
        #[arg(long, value_name = "OWNER")]
        owner: Option<String>,
        /// Only events newer than this, e.g. 24h, 7days.
        #[arg(long, value_name = "DURATION")]
        since: Option<String>,
        /// At most this many of the newest events.
        #[arg(long, default_value_t = 100, value_name = "N")]
        limit: i64,
    },

    /// Delete a node; its events stay. Refuses an allocated node (exit 6) unless --force.
    Remove {
        /// Node id or name.
        node: String,
        /// Remove the node even if a job holds it.
        #[arg(long)]
        force: bool,
    },

    /// Delete every node and every event, keeping the schema.
    #[command(name = "delete_db", alias = "delete-db")]
    DeleteDb {
        /// Really delete everything.
        #[arg(long)]
        yes: bool,
    },

    /// Legacy: status --baremetal.
    #[command(name = "status_baremetal")]
    StatusBaremetal(StatusArgs),

    /// Legacy: add an IPMI node from positional arguments.
    #[command(name = "add_baremetal")]
    AddBaremetal {
        name: String,
        ipmi_ip: String,
        ipmi_user: String,
        ipmi_password: String,
        /// Comma-separated IP addresses.
        allocation_pool: String,
        port_hwaddr: String,
        cpu_arch: String,
        cpus: String,
        ram_mb: String,
        disk_gb: String,
        node_pool: Option<String>,
    },

    /// Legacy: add a node from key=value pairs (field names as get-field; other keys become properties).
    #[command(name = "add_keyvalue_pairs")]
    AddKeyvaluePairs {
        name: String,
        ipmi_ip: String,
        /// Comma-separated IP addresses.
        allocation_pool: String,
        /// key=value pairs.
        #[arg(required = true)]
        pairs: Vec<String>,
    },

    /// Legacy: add a node from a JSON object of fields (names as get-field; other keys become properties).
    #[command(name = "add_json_blob")]
    AddJsonBlob {
        name: String,
        ipmi_ip: String,
        /// Comma-separated IP addresses.
        allocation_pool: String,
        json: String,
        node_pool: Option<String>,
    },
}

#[derive(Debug, Args)]
pub struct AddArgs {
    /// Node name: letters, digits and -._~, at most 255 characters.
    pub name: String,
    /// Pool the node belongs to.
    #[arg(long, default_value = "default")]
    pub pool: String,
    /// Ironic driver (ipmi, redfish, ...).
    #[arg(long, default_value = "ipmi")]
    pub driver: String,
    /// BMC address (driver_info.ipmi_address for ipmi, redfish_address for redfish).
    #[arg(long, value_name = "ADDRESS")]
    pub bmc_address: Option<String>,
    /// BMC user name.
    #[arg(long, value_name = "USER")]
    pub bmc_username: Option<String>,
    /// BMC password.
    #[arg(long, value_name = "PASSWORD")]
    pub bmc_password: Option<String>,
    /// A port's MAC address (repeat for several ports).
    #[arg(long, value_name = "MAC")]
    pub mac: Vec<String>,
    /// properties.cpu_arch, e.g. x86_64, ppc64el.
    #[arg(long, value_name = "ARCH")]
    pub cpu_arch: Option<String>,
    /// properties.cpus.
    #[arg(long, value_name = "N")]
    pub cpus: Option<String>,
    /// properties.memory_mb.
    #[arg(long, value_name = "MB")]
    pub memory_mb: Option<String>,
    /// properties.local_gb.
    #[arg(long, value_name = "GB")]
    pub local_gb: Option<String>,
    /// IP addresses handed to the job, comma-separated.
    #[arg(long, value_name = "IP,IP")]
    pub allocation_pool: Option<String>,
    /// An extra property (repeatable).
    #[arg(long, value_name = "KEY=VALUE")]
    pub property: Vec<String>,
    /// An extra driver_info key (repeatable).
    #[arg(long, value_name = "KEY=VALUE")]
    pub driver_info: Vec<String>,
}

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
    #[arg(long, value_name = "DURATION")]
    pub lease: Option<String>,
    /// Write DevStack's hardware info file here (replaced): "BMC_ADDRESS MAC USER PASSWORD" per node.
    #[arg(long, value_name = "FILE")]
    pub hardware_info: Option<PathBuf>,
    /// Append DevStack's IRONIC_HW_* and ALLOCATION_POOL settings to this localrc file.
    #[arg(long, value_name = "FILE")]
    pub localrc: Option<PathBuf>,
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
    /// Legacy spelling of -o (human or csv).
    #[arg(short = 't', long = "type", value_enum, hide = true)]
    pub legacy_type: Option<Format>,
}
