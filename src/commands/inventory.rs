//! Inventory commands: import, export, add, set-field, remove, delete_db. The legacy add_* forms are in
//! `legacy` and end in [`add_legacy`].

use std::collections::BTreeSet;
use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;
use diesel::PgConnection;
use diesel::result::{DatabaseErrorKind, Error as DbError};
use serde_json::{Map, Value, json};

use super::{Ctx, invalid, no_node};
use crate::db;
use crate::domain::EventAction;
use crate::error::Failure;
use crate::fields::{Field, ValueType, apply_all, contains_secret, split_pair, typed_value};
use crate::inventory::{NodeSpec, parse_inventory, parse_ip_list, render_inventory};
use crate::output::{self, Format};
use crate::store::events;
use crate::store::nodes::{self, Node};

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The nodes.yaml file ("-" reads standard input).
    pub file: PathBuf,
    /// Update the inventory of nodes that already exist (never their state or owner).
    #[arg(long)]
    pub update: bool,
    /// Check everything the import would do, in the database, and write nothing.
    #[arg(long)]
    pub dry_run: bool,
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
pub struct SetFieldArgs {
    /// Node id or name.
    pub node: String,
    /// The field to change (same names as get-field).
    pub field: String,
    /// The new value.
    pub value: String,
    /// Legacy position of --type.
    #[arg(value_enum, hide = true)]
    pub legacy_type: Option<ValueType>,
    /// How to read VALUE [default: string].
    #[arg(long = "type", value_enum)]
    pub value_type: Option<ValueType>,
}

#[derive(Debug, Args)]
pub struct RemoveArgs {
    /// Node id or name.
    pub node: String,
    /// Remove the node even if a job holds it.
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct DeleteDbArgs {
    /// Really delete everything.
    #[arg(long)]
    pub yes: bool,
}

/// Largest nodes.yaml accepted: far above any real pool, far below memory trouble.
const MAX_FILE_BYTES: u64 = 64 * 1024 * 1024;

/// Reads a text file ("-" is standard input), refusing huge or non-UTF-8 input.
fn read_text(path: &Path) -> Result<String> {
    let mut bytes = Vec::new();
    let what = || format!("reading {}", path.display());
    if path == Path::new("-") {
        std::io::stdin()
            .take(MAX_FILE_BYTES + 1)
            .read_to_end(&mut bytes)
            .with_context(what)?;
    } else {
        let file = std::fs::File::open(path).with_context(what)?;
        file.take(MAX_FILE_BYTES + 1)
            .read_to_end(&mut bytes)
            .with_context(what)?;
    }
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(invalid(format!(
            "{} is larger than {MAX_FILE_BYTES} bytes",
            path.display()
        )));
    }
    String::from_utf8(bytes)
        .map_err(|e| invalid(format!("{} is not UTF-8 text: {e}", path.display())))
}

impl ImportArgs {
    /// `import FILE [--update] [--dry-run]`: every node or none. Says which pools are new (a typo'd pool
    /// is noticed) and, with --update, which nodes changed in which fields (never their values).
    pub fn run(&self, ctx: &Ctx) -> Result<()> {
        let (path, update) = (self.file.as_path(), self.update);
        ctx.format(&[Format::Human])?;
        let text = read_text(path)?;
        let specs =
            parse_inventory(&text).map_err(|e| invalid(format!("{}: {e}", path.display())))?;
        let decided = ctx.with_db(|conn| {
            let outcome = db::transaction(conn, ctx.timeouts(), |conn| {
                let before: BTreeSet<String> = nodes::pools(conn)?.into_iter().collect();
                let mut report = ImportReport::default();
                let mut changed = Vec::new();
                for spec in &specs {
                    if nodes::insert(conn, spec)?.is_some() {
                        report.added += 1;
                        if !before.contains(&spec.pool) {
                            report.new_pools.insert(spec.pool.clone());
                        }
                        continue;
                    }
                    if !update {
                        let message = format!(
                            "node {} already exists (hint: import --update changes existing nodes)",
                            spec.name
                        );
                        return Err(Failure::Conflict(message).into());
                    }
                    // Read without locking: only nodes that really change are written (and so locked),
                    // and a no-op import never makes allocators skip nodes.
                    let node = nodes::find(conn, &spec.name, false)?
                        .with_context(|| format!("node {} vanished during import", spec.name))?;
                    let fields = changed_fields(&node.spec(), spec);
                    if fields.is_empty() {
                        report.unchanged += 1;
                    } else {
                        if !before.contains(&spec.pool) {
                            report.new_pools.insert(spec.pool.clone());
                        }
                        report.updated.push((spec.name.clone(), fields));
                        changed.push((node.id, spec));
                    }
                }
                // Lowest id first, the order every other multi-row writer locks in.
                changed.sort_by_key(|(id, _)| *id);
                for (id, spec) in &changed {
                    let detail = json!({"source": "import"});
                    nodes::update_inventory(conn, *id, spec, EventAction::Update, detail)?;
                }
                refuse_shared_hardware(conn)?;
                if self.dry_run {
                    // Everything was checked by the database itself; undo it.
                    return Err(anyhow::Error::new(DryRun(report)));
                }
                Ok::<_, anyhow::Error>(report)
            });
            match outcome {
                Err(e) if e.is::<DryRun>() => match e.downcast::<DryRun>() {
                    Ok(DryRun(report)) => Ok(report),
                    Err(e) => Err(e),
                },
                other => other,
            }
        })?;
        if !self.dry_run && (decided.added > 0 || !decided.updated.is_empty()) {
            ctx.serve_line();
        }
        let verb = if self.dry_run {
            "would import (nothing written, --dry-run)"
        } else {
            "imported"
        };
        for (name, fields) in &decided.updated {
            output::note(&format!("updated {name}: {}", fields.join(", ")));
        }
        for pool in &decided.new_pools {
            output::note(&format!("new pool: {pool} (no node was in it before)"));
        }
        let summary = format!(
            "{} added, {} updated, {} unchanged",
            decided.added,
            decided.updated.len(),
            decided.unchanged
        );
        output::note(&format!("{verb} {}: {summary}", path.display()));
        Ok(())
    }
}

/// What an import did (or, with --dry-run, would do).
#[derive(Debug, Default)]
struct ImportReport {
    added: usize,
    /// Each updated node and the names of the fields that changed.
    updated: Vec<(String, Vec<&'static str>)>,
    unchanged: usize,
    new_pools: BTreeSet<String>,
}

/// Carries a dry run's report out of the transaction it rolls back.
#[derive(Debug, thiserror::Error)]
#[error("dry run")]
struct DryRun(ImportReport);

/// The nodes.yaml fields in which `new` differs from `old`.
fn changed_fields(old: &NodeSpec, new: &NodeSpec) -> Vec<&'static str> {
    let mut fields = Vec::new();
    let mut differs = |name: &'static str, yes: bool| {
        if yes {
            fields.push(name);
        }
    };
    differs("pool", old.pool != new.pool);
    differs("driver", old.driver != new.driver);
    differs("driver_info", old.driver_info != new.driver_info);
    differs("properties", old.properties != new.properties);
    differs("ports", old.ports != new.ports);
    differs(
        "allocation_pool",
        old.allocation_pool != new.allocation_pool,
    );
    differs("ironic fields", old.ironic != new.ironic);
    fields
}

/// Fails (exit 6) when two nodes claim one piece of hardware; called inside an inventory transaction.
fn refuse_shared_hardware(conn: &mut PgConnection) -> Result<()> {
    match nodes::shared_hardware(conn)? {
        Some(conflict) => Err(Failure::Conflict(conflict).into()),
        None => Ok(()),
    }
}

/// `export`: the inventory as nodes.yaml.
pub fn export(ctx: &Ctx) -> Result<()> {
    ctx.format(&[Format::Human])?;
    let all = ctx.read(|conn| Ok(nodes::list(conn, &json!({}), None)?))?;
    let yaml =
        render_inventory(all.iter().map(Node::spec).collect()).context("rendering nodes.yaml")?;
    output::text(&yaml)
}

/// Validates `spec` and inserts it; an existing name is a conflict.
fn add_node(ctx: &Ctx, mut spec: NodeSpec) -> Result<()> {
    let format = ctx.format(&[Format::Human, Format::Json])?;
    spec.validate()
        .map_err(|e| invalid(format!("node {}: {e}", spec.name)))?;
    let node = ctx.with_db(|conn| {
        db::transaction(conn, ctx.timeouts(), |conn| {
            let node = nodes::insert(conn, &spec)?
                .ok_or_else(|| Failure::Conflict(format!("node {} already exists", spec.name)))?;
            refuse_shared_hardware(conn)?;
            Ok::<_, anyhow::Error>(node)
        })
    })?;
    ctx.serve_line();
    output::node(&node, format)
}

impl AddArgs {
    /// `add NAME [flags]`.
    pub fn run(&self, ctx: &Ctx) -> Result<()> {
        let args = self;
        let mut spec = NodeSpec::new(&args.name);
        spec.pool = args.pool.clone();
        spec.driver = args.driver.clone();
        let bmc = [
            ("address", &args.bmc_address),
            ("username", &args.bmc_username),
            ("password", &args.bmc_password),
        ];
        for (suffix, value) in bmc {
            let Some(value) = value else { continue };
            if !matches!(args.driver.as_str(), "ipmi" | "redfish") {
                return Err(invalid(format!(
                    "--bmc-{suffix} is known only for the ipmi and redfish drivers; use --driver-info KEY=VALUE"
                )));
            }
            spec.driver_info.insert(
                format!("{}_{suffix}", args.driver),
                Value::String(value.clone()),
            );
        }
        for pair in &args.driver_info {
            let (key, value) = split_pair(pair).map_err(invalid)?;
            if spec.driver_info.insert(key.clone(), value).is_some() {
                return Err(invalid(format!("driver_info.{key} is given twice")));
            }
        }
        let properties = [
            ("cpu_arch", &args.cpu_arch),
            ("cpus", &args.cpus),
            ("memory_mb", &args.memory_mb),
            ("local_gb", &args.local_gb),
        ];
        for (key, value) in properties {
            if let Some(value) = value {
                spec.properties
                    .insert(key.to_owned(), Value::String(value.clone()));
            }
        }
        for pair in &args.property {
            let (key, value) = split_pair(pair).map_err(invalid)?;
            if spec.properties.insert(key.clone(), value).is_some() {
                return Err(invalid(format!("properties.{key} is given twice")));
            }
        }
        spec.ports = args
            .mac
            .iter()
            .map(|mac| Map::from_iter([("address".to_owned(), Value::String(mac.clone()))]))
            .collect();
        if let Some(ips) = &args.allocation_pool {
            spec.allocation_pool = parse_ip_list(ips).map_err(invalid)?;
        }
        add_node(ctx, spec)
    }
}

/// The legacy add commands: fields by their original names (see [`Field::parse`]).
pub fn add_legacy(ctx: &Ctx, name: &str, fields: Vec<(String, Value)>) -> Result<()> {
    let mut spec = NodeSpec::new(name);
    apply_all(&mut spec, fields).map_err(|e| invalid(format!("node {name}: {e}")))?;
    add_node(ctx, spec)
}

impl SetFieldArgs {
    /// `set-field NODE FIELD VALUE [--type T]`: one inventory field, validated like an import.
    pub fn run(&self, ctx: &Ctx) -> Result<()> {
        let (key, field, raw) = (self.node.as_str(), self.field.as_str(), self.value.as_str());
        if let (Some(a), Some(b)) = (self.legacy_type, self.value_type) {
            if a != b {
                let name = |t: ValueType| {
                    clap::ValueEnum::to_possible_value(&t)
                        .map(|v| v.get_name().to_owned())
                        .unwrap_or_default()
                };
                let message = format!(
                    "two different types given: {} and --type {}",
                    name(a),
                    name(b)
                );
                return Err(Failure::Usage(message).into());
            }
        }
        let ty = self.value_type.or(self.legacy_type);
        let format = ctx.format(&[Format::Human, Format::Json])?;
        let field = Field::parse(field).map_err(Failure::NotFound)?;
        let value = typed_value(raw, ty.unwrap_or(ValueType::String)).map_err(invalid)?;
        let node = ctx.with_db(|conn| {
            db::transaction(conn, ctx.timeouts(), |conn| {
                let node = nodes::find(conn, key, true)?.ok_or_else(|| no_node(key))?;
                // A plain name that is none of ours changes a key the node already has (properties
                // first, as the original's blob), and is refused otherwise.
                let mut field = field.clone();
                if Field::is_guess(&self.field) {
                    let name = &self.field;
                    let has = |map: &Value| map.get(name.as_str()).is_some();
                    if has(&node.properties) {
                        field = Field::Property(name.clone());
                    } else if has(&node.driver_info) {
                        field = Field::DriverInfo(name.clone());
                    } else {
                        return Err(Failure::NotFound(format!(
                            "unknown field {name:?} (hint: set a new property as properties.{name}, a \
                             new BMC setting as driver_info.{name})"
                        ))
                        .into());
                    }
                }
                let mut spec = node.spec();
                field.set(&mut spec, value.clone()).map_err(invalid)?;
                spec.validate()
                    .map_err(|e| invalid(format!("node {}: {e}", node.name)))?;
                if spec.name != node.name && nodes::name_taken(conn, &spec.name)? {
                    return Err(
                        Failure::Conflict(format!("node {} already exists", spec.name)).into(),
                    );
                }
                let shown = if field.is_secret() || contains_secret(&value) {
                    Value::from("(changed)")
                } else {
                    value.clone()
                };
                let detail = json!({"field": field.canonical(), "value": shown});
                let updated =
                    nodes::update_inventory(conn, node.id, &spec, EventAction::SetField, detail)
                        .map_err(|e| match e {
                            // Another session took the new name first.
                            DbError::DatabaseError(DatabaseErrorKind::UniqueViolation, _) => {
                                Failure::Conflict(format!("node {} already exists", spec.name))
                                    .into()
                            }
                            other => anyhow::Error::from(other),
                        })?;
                refuse_shared_hardware(conn)?;
                Ok::<_, anyhow::Error>(updated)
            })
        })?;
        output::node(&node, format)
    }
}

impl RemoveArgs {
    /// `remove NODE [--force]`.
    pub fn run(&self, ctx: &Ctx) -> Result<()> {
        let (key, force) = (self.node.as_str(), self.force);
        ctx.format(&[Format::Human])?;
        let name = ctx.with_db(|conn| {
            db::transaction(conn, ctx.timeouts(), |conn| {
                let node = nodes::find(conn, key, true)?.ok_or_else(|| no_node(key))?;
                if let (Some(owner), false) = (&node.owner, force) {
                    return Err(Failure::Conflict(format!(
                        "node {} is allocated to {owner} (hint: --force removes it anyway)",
                        node.name
                    ))
                    .into());
                }
                nodes::delete(conn, &node)?;
                Ok::<_, anyhow::Error>(node.name)
            })
        })?;
        output::note(&format!("removed node {name}"));
        Ok(())
    }
}

impl DeleteDbArgs {
    /// `delete_db --yes`.
    pub fn run(&self, ctx: &Ctx) -> Result<()> {
        ctx.format(&[Format::Human])?;
        if !self.yes {
            return Err(Failure::Usage(
                "delete_db deletes every node and every event; add --yes to confirm".into(),
            )
            .into());
        }
        let count = ctx.with_db(|conn| {
            Ok(db::transaction(conn, ctx.timeouts(), |conn| {
                let count = nodes::delete_all(conn)?;
                events::delete_all(conn)?;
                diesel::QueryResult::Ok(count)
            })?)
        })?;
        output::note(&format!("deleted {count} nodes and all events"));
        Ok(())
    }
}
