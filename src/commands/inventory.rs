//! Inventory commands: import, export, add (and the legacy add_* forms), set-field, remove, delete_db.

use std::io::Read;
use std::path::Path;

use anyhow::{Context, Result};
use diesel::result::{DatabaseErrorKind, Error as DbError};
use diesel::{Connection, PgConnection};
use serde_json::{Map, Value, json};

use super::{Ctx, invalid, no_node};
use crate::cli::{AddArgs, Format, ValueType};
use crate::error::Failure;
use crate::fields::{Field, apply_all, contains_secret, split_pair, typed_value};
use crate::inventory::{NodeSpec, parse_inventory, parse_ip_list, render_inventory};
use crate::{output, store};

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

/// `import FILE [--update]`: every node or none.
pub fn import(ctx: &Ctx, path: &Path, update: bool) -> Result<()> {
    ctx.format(&[Format::Human])?;
    let text = read_text(path)?;
    let specs = parse_inventory(&text).map_err(|e| invalid(format!("{}: {e}", path.display())))?;
    let (added, updated, unchanged) = ctx.with_db(|conn| {
        conn.transaction(|conn| {
            let (mut added, mut changed, mut unchanged) = (0, Vec::new(), 0);
            for spec in &specs {
                if store::insert_node(conn, spec)?.is_some() {
                    added += 1;
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
                let node = store::find_node(conn, &spec.name, false)?
                    .with_context(|| format!("node {} vanished during import", spec.name))?;
                if node.spec() == *spec {
                    unchanged += 1;
                } else {
                    changed.push((node.id, spec));
                }
            }
            // Lowest id first, the order every other multi-row writer locks in.
            changed.sort_by_key(|(id, _)| *id);
            for (id, spec) in &changed {
                store::update_inventory(conn, *id, spec, "update", json!({"source": "import"}))?;
            }
            refuse_shared_hardware(conn)?;
            Ok::<_, anyhow::Error>((added, changed.len(), unchanged))
        })
    })?;
    let summary = format!("{added} added, {updated} updated, {unchanged} unchanged");
    output::note(&format!("imported {}: {summary}", path.display()));
    Ok(())
}

/// Fails (exit 6) when two nodes claim one piece of hardware; called inside an inventory transaction.
fn refuse_shared_hardware(conn: &mut PgConnection) -> Result<()> {
    match store::shared_hardware(conn)? {
        Some(conflict) => Err(Failure::Conflict(conflict).into()),
        None => Ok(()),
    }
}

/// `export`: the inventory as nodes.yaml.
pub fn export(ctx: &Ctx) -> Result<()> {
    ctx.format(&[Format::Human])?;
    let nodes = ctx.with_db_repeatable(|conn| Ok(store::list_nodes(conn, None, None)?))?;
    let yaml = render_inventory(nodes.iter().map(store::Node::spec).collect())
        .context("rendering nodes.yaml")?;
    output::text(&yaml)
}

/// Validates `spec` and inserts it; an existing name is a conflict.
fn add_node(ctx: &Ctx, mut spec: NodeSpec) -> Result<()> {
    let format = ctx.format(&[Format::Human, Format::Json])?;
    spec.validate()
        .map_err(|e| invalid(format!("node {}: {e}", spec.name)))?;
    let node = ctx.with_db(|conn| {
        conn.transaction(|conn| {
            let node = store::insert_node(conn, &spec)?
                .ok_or_else(|| Failure::Conflict(format!("node {} already exists", spec.name)))?;
            refuse_shared_hardware(conn)?;
            Ok::<_, anyhow::Error>(node)
        })
    })?;
    output::node(&node, format)
}

/// `add NAME [flags]`.
pub fn add(ctx: &Ctx, args: &AddArgs) -> Result<()> {
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
        spec.driver_info.insert(key, value);
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
        spec.properties.insert(key, value);
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

/// The legacy add commands: fields by their original names (see [`Field::parse`]).
pub fn add_legacy(ctx: &Ctx, name: &str, fields: Vec<(String, Value)>) -> Result<()> {
    let mut spec = NodeSpec::new(name);
    apply_all(&mut spec, fields).map_err(|e| invalid(format!("node {name}: {e}")))?;
    add_node(ctx, spec)
}

fn legacy_base(ipmi_ip: &str, allocation_pool: &str) -> Vec<(String, Value)> {
    vec![
        ("ipmi_ip".to_owned(), Value::String(ipmi_ip.to_owned())),
        (
            "allocation_pool".to_owned(),
            Value::String(allocation_pool.to_owned()),
        ),
    ]
}

/// `add_keyvalue_pairs NAME IPMI_IP ALLOCATION_POOL key=value...`.
pub fn add_keyvalue_pairs(
    ctx: &Ctx,
    name: &str,
    ipmi_ip: &str,
    pool_ips: &str,
    pairs: &[String],
) -> Result<()> {
    let mut fields = legacy_base(ipmi_ip, pool_ips);
    for pair in pairs {
        fields.push(split_pair(pair).map_err(invalid)?);
    }
    add_legacy(ctx, name, fields)
}

/// `add_json_blob NAME IPMI_IP ALLOCATION_POOL JSON [NODE_POOL]`.
pub fn add_json_blob(
    ctx: &Ctx,
    name: &str,
    ipmi_ip: &str,
    pool_ips: &str,
    blob: &str,
    node_pool: Option<&str>,
) -> Result<()> {
    let Ok(Value::Object(map)) = serde_json::from_str::<Value>(blob) else {
        return Err(invalid(
            "the JSON blob must be a JSON object of field names and values".to_owned(),
        ));
    };
    let mut fields = legacy_base(ipmi_ip, pool_ips);
    fields.extend(map);
    if let Some(pool) = node_pool {
        fields.push(("node_pool".to_owned(), Value::String(pool.to_owned())));
    }
    add_legacy(ctx, name, fields)
}

/// `set-field NODE FIELD VALUE [--type T]`: one inventory field, validated like an import.
pub fn set_field(
    ctx: &Ctx,
    key: &str,
    field: &str,
    raw: &str,
    ty: Option<ValueType>,
) -> Result<()> {
    let format = ctx.format(&[Format::Human, Format::Json])?;
    let field = Field::parse(field).map_err(Failure::NotFound)?;
    let value = typed_value(raw, ty.unwrap_or(ValueType::String)).map_err(invalid)?;
    let node = ctx.with_db(|conn| {
        conn.transaction(|conn| {
            let node = store::find_node(conn, key, true)?.ok_or_else(|| no_node(key))?;
            let mut spec = node.spec();
            field.set(&mut spec, value.clone()).map_err(invalid)?;
            spec.validate()
                .map_err(|e| invalid(format!("node {}: {e}", node.name)))?;
            if spec.name != node.name && store::name_taken(conn, &spec.name)? {
                return Err(Failure::Conflict(format!("node {} already exists", spec.name)).into());
            }
            let shown = if field.is_secret() || contains_secret(&value) {
                Value::from("(changed)")
            } else {
                value.clone()
            };
            let detail = json!({"field": field.canonical(), "value": shown});
            let updated = store::update_inventory(conn, node.id, &spec, "set_field", detail)
                .map_err(|e| match e {
                    // Another session took the new name first.
                    DbError::DatabaseError(DatabaseErrorKind::UniqueViolation, _) => {
                        Failure::Conflict(format!("node {} already exists", spec.name)).into()
                    }
                    other => anyhow::Error::from(other),
                })?;
            refuse_shared_hardware(conn)?;
            Ok::<_, anyhow::Error>(updated)
        })
    })?;
    output::node(&node, format)
}

/// `remove NODE [--force]`.
pub fn remove(ctx: &Ctx, key: &str, force: bool) -> Result<()> {
    ctx.format(&[Format::Human])?;
    let name = ctx.with_db(|conn| {
        conn.transaction(|conn| {
            let node = store::find_node(conn, key, true)?.ok_or_else(|| no_node(key))?;
            if let (Some(owner), false) = (&node.owner, force) {
                return Err(Failure::Conflict(format!(
                    "node {} is allocated to {owner} (hint: --force removes it anyway)",
                    node.name
                ))
                .into());
            }
            store::delete_node(conn, &node)?;
            Ok::<_, anyhow::Error>(node.name)
        })
    })?;
    output::note(&format!("removed node {name}"));
    Ok(())
}

/// `delete_db --yes`.
pub fn delete_db(ctx: &Ctx, yes: bool) -> Result<()> {
    ctx.format(&[Format::Human])?;
    if !yes {
        return Err(Failure::Usage(
            "delete_db deletes every node and every event; add --yes to confirm".into(),
        )
        .into());
    }
    let count = ctx.with_db(|conn| Ok(conn.transaction(store::delete_everything)?))?;
    output::note(&format!("deleted {count} nodes and all events"));
    Ok(())
}
