//! The job's side: allocate (with DevStack files), release, renew, reap and get-field.

use std::collections::BTreeSet;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

use anyhow::{Context, Result};
use diesel::PgConnection;
use serde_json::Value;

use super::{Ctx, invalid, no_node};
use crate::cli::{AllocateArgs, Format};
use crate::config::parse_duration;
use crate::error::Failure;
use crate::fields::{Field, plain};
use crate::inventory::{check_owner, check_text};
use crate::output;
use crate::store::{self, Node};

/// How often allocate re-tries when nodes were freed between its attempt and its count.
const ALLOCATE_ATTEMPTS: usize = 3;

/// `allocate OWNER [COUNT] [POOL]`: all or nothing; a retry with the same count and pool returns the nodes
/// the owner already holds.
pub fn allocate(ctx: &Ctx, args: &AllocateArgs) -> Result<()> {
    let format = ctx.format(&[Format::Human, Format::Json, Format::Env])?;
    check_owner(&args.owner).map_err(invalid)?;
    let pool = match (&args.pool_arg, &args.pool) {
        (Some(a), Some(b)) if a != b => {
            return Err(
                Failure::Usage(format!("two different pools given: {a} and --pool {b}")).into(),
            );
        }
        (a, b) => a.as_deref().or(b.as_deref()).unwrap_or("default"),
    };
    check_text("pool", pool).map_err(invalid)?;
    let lease = match &args.lease {
        Some(text) => parse_duration(text)?,
        None => ctx.config.max_lease,
    };
    // Open the DevStack files before allocating, so an unwritable path fails before any node is taken;
    // files this run creates are removed again if the allocation fails.
    let created: Vec<&Path> = [&args.hardware_info, &args.localrc]
        .into_iter()
        .filter_map(|p| p.as_deref())
        .filter(|p| !p.exists())
        .collect();
    let hardware_info = args
        .hardware_info
        .as_deref()
        .map(open_for_replace)
        .transpose()?;
    let localrc = args.localrc.as_deref().map(open_for_append).transpose()?;

    let allocated = ctx.with_db_repeatable(|conn| {
        take_nodes(conn, &args.owner, pool, args.count, lease.as_secs_f64())
    });
    let nodes = allocated.inspect_err(|_| {
        for path in &created {
            let _ = std::fs::remove_file(path);
        }
    })?;

    if let Some((file, path)) = hardware_info {
        write_hardware_info(file, &nodes).with_context(|| format!("writing {}", path.display()))?;
    }
    if let Some((file, path)) = localrc {
        write_localrc(file, &nodes).with_context(|| format!("writing {}", path.display()))?;
    }
    output::allocation(&args.owner, &nodes, format)
}

/// Allocates, or explains why not: a retry by the same owner with the same count and pool gets what it
/// holds; anything else it holds is a conflict; too few lockable nodes is "not enough". Nodes freed
/// between the attempt and the count are tried again.
fn take_nodes(
    conn: &mut PgConnection,
    owner: &str,
    pool: &str,
    count: i64,
    lease_secs: f64,
) -> Result<Vec<Node>> {
    let mut found = 0;
    for _ in 0..ALLOCATE_ATTEMPTS {
        let granted = store::allocate(conn, owner, pool, count, lease_secs)?;
        if !granted.is_empty() {
            return Ok(granted);
        }
        let held = store::nodes_held_by(conn, owner)?;
        if !held.is_empty() {
            if held.len() as i64 == count && held.iter().all(|n| n.pool == pool) {
                output::note(&format!(
                    "{owner} already holds these nodes; returning them"
                ));
                return Ok(held);
            }
            let pools: BTreeSet<&str> = held.iter().map(|n| n.pool.as_str()).collect();
            let pools = pools.into_iter().collect::<Vec<_>>().join(",");
            let hint = "release them first, or repeat the original count and pool";
            let message = format!(
                "{owner} already holds {} node(s) of pool {pools} (hint: {hint})",
                held.len()
            );
            return Err(Failure::Conflict(message).into());
        }
        found = store::count_lockable(conn, pool, count)?;
        if found < count {
            break;
        }
    }
    Err(Failure::NotEnough {
        found,
        requested: count,
    }
    .into())
}

fn open_for_replace(path: &Path) -> Result<(File, &Path)> {
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(path);
    Ok((
        file.with_context(|| format!("opening {}", path.display()))?,
        path,
    ))
}

fn open_for_append(path: &Path) -> Result<(File, &Path)> {
    // Readable too: write_localrc looks at the last byte.
    let file = OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .open(path);
    Ok((
        file.with_context(|| format!("opening {}", path.display()))?,
        path,
    ))
}

/// DevStack's hardware info: `BMC_ADDRESS MAC USER PASSWORD`, one line per node (the file is replaced).
fn write_hardware_info(mut file: File, nodes: &[Node]) -> std::io::Result<()> {
    let mut text = String::new();
    for node in nodes {
        let bmc = node.bmc();
        let spec = node.spec();
        let mac = spec.macs().next().unwrap_or_default().to_owned();
        text.push_str(&format!(
            "{} {mac} {} {}\n",
            bmc.address, bmc.username, bmc.password
        ));
    }
    file.set_len(0)?;
    file.rewind()?;
    file.write_all(text.as_bytes())?;
    file.sync_all()
}

/// DevStack's localrc settings: the first node's hardware and every node's allocation pool IPs.
fn write_localrc(mut file: File, nodes: &[Node]) -> std::io::Result<()> {
    let Some(first) = nodes.first() else {
        return Ok(());
    };
    // localrc is sourced by a shell: values with spaces or quotes are quoted, plain ones stay as they are.
    let property = |key: &str| -> std::io::Result<String> {
        let value = first.properties.get(key).map(plain).unwrap_or_default();
        Ok(shlex::try_quote(&value)
            .map_err(std::io::Error::other)?
            .into_owned())
    };
    let ranges: Vec<String> = nodes
        .iter()
        .flat_map(|n| n.allocation_pool.iter())
        .map(|ip| format!("start={ip},end={ip}"))
        .collect();
    // A file whose last line lacks its newline gets one, so that line and ours stay separate.
    let separator = if ends_without_newline(&mut file)? {
        "\n"
    } else {
        ""
    };
    let text = format!(
        "{separator}IRONIC_HW_ARCH={}\nIRONIC_HW_NODE_CPU={}\nIRONIC_HW_NODE_RAM={}\nIRONIC_HW_NODE_DISK={}\nALLOCATION_POOL=\"{}\"\n",
        property("cpu_arch")?,
        property("cpus")?,
        property("memory_mb")?,
        property("local_gb")?,
        ranges.join(" --allocation-pool ")
    );
    file.write_all(text.as_bytes())?;
    file.sync_all()
}

/// Whether `file` is non-empty and its last byte is not a newline.
fn ends_without_newline(file: &mut File) -> std::io::Result<bool> {
    if file.metadata()?.len() == 0 {
        return Ok(false);
    }
    file.seek(SeekFrom::End(-1))?;
    let mut last = [0u8; 1];
    file.read_exact(&mut last)?;
    Ok(last[0] != b'\n')
}

/// `release OWNER [--node NODE]`: holding nothing is not an error (exit 0, said on stderr).
pub fn release(ctx: &Ctx, owner: &str, node: Option<&str>) -> Result<()> {
    let format = ctx.format(&[Format::Human, Format::Json])?;
    check_owner(owner).map_err(invalid)?;
    let state = ctx.config.release_state.as_str();
    let released = ctx.with_db_repeatable(|conn| match node {
        None => Ok(store::release(conn, owner, None, state)?),
        Some(key) => {
            let node = store::find_node(conn, key, false)?.ok_or_else(|| no_node(key))?;
            let released = store::release(conn, owner, Some(node.id), state)?;
            if released.is_empty() {
                return Err(
                    Failure::NotFound(format!("{owner} does not hold node {}", node.name)).into(),
                );
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

/// `renew OWNER [--lease DUR]`.
pub fn renew(ctx: &Ctx, owner: &str, lease: Option<&str>) -> Result<()> {
    let format = ctx.format(&[Format::Human, Format::Json])?;
    check_owner(owner).map_err(invalid)?;
    let lease = match lease {
        Some(text) => parse_duration(text)?,
        None => ctx.config.max_lease,
    };
    let renewed =
        ctx.with_db_repeatable(|conn| Ok(store::renew(conn, owner, lease.as_secs_f64())?))?;
    if renewed.is_empty() {
        return Err(Failure::NotFound(format!("{owner} holds no nodes")).into());
    }
    output::renewed(&renewed, format)
}

/// `reap [--max-age DUR]`: for cron.
pub fn reap(ctx: &Ctx, max_age: Option<&str>) -> Result<()> {
    let format = ctx.format(&[Format::Human, Format::Csv, Format::Json])?;
    let max_age = max_age.map(parse_duration).transpose()?;
    let state = ctx.config.reap_state.as_str();
    let reaped = ctx.with_db_repeatable(|conn| {
        Ok(store::reap(conn, max_age.map(|d| d.as_secs_f64()), state)?)
    })?;
    output::note(&format!("reaped {} node(s)", reaped.len()));
    if reaped.is_empty() && format == Format::Human {
        return Ok(());
    }
    output::reaped(&reaped, format)
}

/// `get-field OWNER FIELD`: one value per node the owner holds.
pub fn get_field(ctx: &Ctx, owner: &str, name: &str) -> Result<()> {
    let format = ctx.format(&[Format::Human, Format::Csv, Format::Json])?;
    let field = Field::parse(name).map_err(Failure::NotFound)?;
    let nodes = ctx.with_db_repeatable(|conn| Ok(store::nodes_held_by(conn, owner)?))?;
    if nodes.is_empty() {
        return Err(Failure::NotFound(format!("{owner} holds no nodes")).into());
    }
    let values: Vec<(&Node, Option<Value>)> = nodes.iter().map(|n| (n, field.get(n))).collect();
    if values.iter().all(|(_, v)| v.is_none()) {
        return Err(Failure::NotFound(format!("no node {owner} holds has a field {name}")).into());
    }
    output::field_values(name, &values, format)
}
