//! The only place that writes data to stdout: human tables, CSV, JSON and shell `KEY=value` lines.
//!
//! The JSON shapes are a stable interface for scripts and are documented in docs/commands.md ("JSON
//! shapes"); add fields, never rename or remove them.

use std::io::Write;

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use comfy_table::{Table, presets};
use serde_json::{Value, json};

use crate::domain::{Check, NodeState, escape_controls, plain, timestamp};
use crate::fields::mask_secrets;
use crate::store::events::Event;
use crate::store::metrics::PoolMetrics;
use crate::store::nodes::{Node, Reaped, Released};
use crate::store::queue;

/// How data is printed (`-o`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Aligned tables for people.
    Human,
    /// Comma-separated values with a header row (status, history, reap, get-field, queue, stats,
    /// health-check).
    Csv,
    /// JSON with a stable shape, for scripts (see docs/commands.md, "JSON shapes").
    Json,
    /// Shell-quoted KEY=value lines to eval (allocate only).
    Env,
    /// The original MoltenIron's `-o result`: just what its reply's result held, the values of get-field
    /// one per line or the table of status (-t chooses human or csv); other commands had none.
    Result,
}

const MASK: &str = "********";

/// Writes `text` to stdout as is.
pub fn text(text: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .context("writing to standard output")
}

/// Writes a note for people to stderr as `molteniron: TEXT`. A closed stderr is ignored: a note is never
/// worth failing (or panicking) for.
pub fn note(text: &str) {
    let _ = writeln!(std::io::stderr().lock(), "molteniron: {text}");
}

/// Writes `value` as pretty JSON and a newline.
pub fn json(value: &Value) -> Result<()> {
    text(&format!(
        "{}\n",
        serde_json::to_string_pretty(value).context("rendering JSON")?
    ))
}

/// Writes `molteniron doctor`'s checks: one line each, `STATUS  check  detail (fix: ...)` with the
/// columns aligned, or a JSON array of `{check, status, detail, fix}`.
pub fn checks(checks: &[Check], format: Format) -> Result<()> {
    if format == Format::Json {
        return json(&serde_json::to_value(checks).context("rendering JSON")?);
    }
    let width = checks.iter().map(|c| c.check.len()).max().unwrap_or(0);
    let mut out = String::new();
    for c in checks {
        let fix = c
            .fix
            .as_ref()
            .map(|fix| format!(" (fix: {fix})"))
            .unwrap_or_default();
        out.push_str(&escape_controls(&format!(
            "{:<4}  {:<width$}  {}{fix}",
            c.status.as_str(),
            c.check,
            c.detail
        )));
        out.push('\n');
    }
    text(&out)
}

/// Writes a header and rows as an aligned table (human) or CSV.
fn rows(format: Format, header: &[&str], rows: Vec<Vec<String>>) -> Result<()> {
    match format {
        Format::Csv => {
            let mut writer = csv::Writer::from_writer(Vec::new());
            writer.write_record(header).context("rendering CSV")?;
            for row in rows {
                writer.write_record(row).context("rendering CSV")?;
            }
            text(&String::from_utf8_lossy(
                &writer.into_inner().context("rendering CSV")?,
            ))
        }
        _ => {
            let mut table = Table::new();
            table
                .load_style(presets::NOTHING)
                .force_no_tty()
                .set_header(header.to_vec());
            for row in rows {
                // Control characters escaped: a value stored with a newline or a terminal escape must not
                // break a row or reach a CI log's terminal. CSV and JSON carry values as stored.
                table.add_row(row.iter().map(|c| escape_controls(c)).collect::<Vec<_>>());
            }
            text(&format!("{}\n", table.trim_fmt()))
        }
    }
}

/// A node as JSON: the stable shape every command uses. Secrets (every key that
/// [`crate::secret::is_secret_key`] names, at any depth) are masked unless `show_secrets`.
pub fn node_json(node: &Node, show_secrets: bool) -> Value {
    let (mut driver_info, mut properties, mut ironic_fields) = (
        node.driver_info.clone(),
        node.properties.clone(),
        node.ironic_fields.clone(),
    );
    if !show_secrets {
        for value in [&mut driver_info, &mut properties, &mut ironic_fields] {
            mask_secrets(value, MASK);
        }
    }
    json!({
        "id": node.id,
        "name": node.name,
        "pool": node.pool,
        "state": node.state,
        "owner": node.owner,
        "allocated_at": node.allocated_at,
        "lease_expires_at": node.lease_expires_at,
        "maintenance_reason": node.maintenance_reason,
        "driver": node.driver,
        "driver_info": driver_info,
        "properties": properties,
        "ports": node.ports,
        "allocation_pool": node.allocation_pool,
        "ironic_fields": ironic_fields,
    })
}

pub use crate::domain::short_duration;

/// `status`: one row per node.
pub fn status(
    nodes: &[Node],
    now: DateTime<Utc>,
    format: Format,
    baremetal: bool,
    show_secrets: bool,
) -> Result<()> {
    if format == Format::Json {
        return json(&Value::Array(
            nodes.iter().map(|n| node_json(n, show_secrets)).collect(),
        ));
    }
    let mut header = vec![
        "id",
        "name",
        "pool",
        "state",
        "owner",
        "held",
        "lease left",
        "bmc address",
    ];
    if baremetal {
        header.extend([
            "bmc user",
            "bmc password",
            "bmc port",
            "macs",
            "cpu arch",
            "cpus",
            "memory mb",
            "local gb",
            "allocation pool",
        ]);
    }
    let table = nodes
        .iter()
        .map(|node| {
            let bmc = node.bmc();
            let state = node.state_label();
            let held = node
                .allocated_at
                .map(|t| short_duration((now - t).num_seconds().max(0)));
            let left = node.lease_expires_at.map(|t| {
                let secs = (t - now).num_seconds();
                if secs <= 0 {
                    "expired".to_owned()
                } else {
                    short_duration(secs)
                }
            });
            let mut row = vec![
                node.id.to_string(),
                node.name.clone(),
                node.pool.clone(),
                state,
                node.owner.clone().unwrap_or_default(),
                held.unwrap_or_default(),
                left.unwrap_or_default(),
                bmc.address,
            ];
            if baremetal {
                let password = if show_secrets || bmc.password.is_empty() {
                    bmc.password
                } else {
                    MASK.to_owned()
                };
                row.extend([bmc.username, password, bmc.port, node.macs().join(" ")]);
                row.extend(node.hardware());
                row.push(node.allocation_pool.join(","));
            }
            row
        })
        .collect();
    rows(format, &header, table)
}

/// `status --summary`: one row per pool with the number of its nodes in each state (a column per
/// [`NodeState::ALL`], then the total), from `(pool, state, count)` rows ordered by pool.
pub fn summary(counts: &[(String, NodeState, i64)], format: Format) -> Result<()> {
    let mut pools: Vec<(&str, Vec<i64>)> = Vec::new();
    for (pool, state, n) in counts {
        if pools.last().is_none_or(|(last, _)| last != pool) {
            pools.push((pool, vec![0; NodeState::ALL.len()]));
        }
        if let (Some((_, row)), Some(i)) = (
            pools.last_mut(),
            NodeState::ALL.iter().position(|s| s == state),
        ) {
            row[i] += n;
        }
    }
    if format == Format::Json {
        let list = pools.iter().map(|(pool, row)| {
            let mut object = serde_json::Map::new();
            object.insert("pool".to_owned(), json!(pool));
            for (state, n) in NodeState::ALL.iter().zip(row) {
                object.insert(state.as_str().to_owned(), json!(n));
            }
            object.insert("total".to_owned(), json!(row.iter().sum::<i64>()));
            Value::Object(object)
        });
        return json(&Value::Array(list.collect()));
    }
    let mut header = vec!["pool"];
    header.extend(NodeState::ALL.iter().map(|s| s.as_str()));
    header.push("total");
    let table = pools
        .iter()
        .map(|(pool, row)| {
            let mut cells = vec![pool.to_string()];
            cells.extend(row.iter().map(i64::to_string));
            cells.push(row.iter().sum::<i64>().to_string());
            cells
        })
        .collect();
    rows(format, &header, table)
}

/// `allocate`: everything the job needs, credentials included.
/// The human table masks the BMC password (a build log is often published) unless `show_secrets`; JSON
/// and env lines carry it, since scripts read them into files and variables, not logs.
pub fn allocation(owner: &str, nodes: &[Node], format: Format, show_secrets: bool) -> Result<()> {
    match format {
        Format::Json => json(&Value::Array(
            nodes.iter().map(|n| node_json(n, true)).collect(),
        )),
        Format::Env => {
            let mut lines = vec![
                env_line("MOLTENIRON_OWNER", owner)?,
                env_line("MOLTENIRON_COUNT", &nodes.len().to_string())?,
                env_line(
                    "MOLTENIRON_NODES",
                    &nodes
                        .iter()
                        .map(|n| n.name.as_str())
                        .collect::<Vec<_>>()
                        .join(" "),
                )?,
            ];
            for (i, node) in nodes.iter().enumerate() {
                let suffix = if nodes.len() == 1 {
                    String::new()
                } else {
                    format!("_{i}")
                };
                for (key, value) in env_fields(node) {
                    lines.push(env_line(&format!("MOLTENIRON_{key}{suffix}"), &value)?);
                }
            }
            text(&(lines.join("\n") + "\n"))
        }
        _ => {
            let header = [
                "id",
                "name",
                "pool",
                "bmc address",
                "bmc user",
                "bmc password",
                "macs",
                "cpu arch",
                "cpus",
                "memory mb",
                "local gb",
                "allocation pool",
                "lease expires",
            ];
            let table = nodes
                .iter()
                .map(|node| {
                    let fields: std::collections::BTreeMap<_, _> =
                        env_fields(node).into_iter().collect();
                    let get = |k: &str| fields.get(k).cloned().unwrap_or_default();
                    vec![
                        node.id.to_string(),
                        node.name.clone(),
                        node.pool.clone(),
                        get("BMC_ADDRESS"),
                        get("BMC_USERNAME"),
                        match get("BMC_PASSWORD") {
                            p if show_secrets || p.is_empty() => p,
                            _ => MASK.to_owned(),
                        },
                        get("MACS"),
                        get("CPU_ARCH"),
                        get("CPUS"),
                        get("MEMORY_MB"),
                        get("LOCAL_GB"),
                        get("ALLOCATION_POOL"),
                        get("LEASE_EXPIRES_AT"),
                    ]
                })
                .collect();
            rows(format, &header, table)
        }
    }
}

/// `allocate -o json` when nothing was allocated: one object on stdout (the error line still goes to
/// stderr), `{"error": KIND, "found", "requested", "matching", "message"}`.
pub fn allocation_error(
    kind: &str,
    found: i64,
    requested: i64,
    matching: i64,
    message: &dyn std::fmt::Display,
) -> Result<()> {
    json(&json!({
        "error": kind,
        "found": found,
        "requested": requested,
        "matching": matching,
        "message": message.to_string(),
    }))
}

/// The per-node `KEY=value` pairs of `allocate -o env`.
fn env_fields(node: &Node) -> Vec<(&'static str, String)> {
    let bmc = node.bmc();
    let macs = node.macs();
    let [cpu_arch, cpus, memory_mb, local_gb] = node.hardware();
    // MOLTENIRON_BMC_PORT only when the node has one (VirtualBMC's ports); ipmitool's default otherwise.
    let port = (!bmc.port.is_empty()).then(|| ("BMC_PORT", bmc.port.clone()));
    let mut fields = vec![
        ("ID", node.id.to_string()),
        ("NAME", node.name.clone()),
        ("POOL", node.pool.clone()),
        ("DRIVER", node.driver.clone()),
        ("BMC_ADDRESS", bmc.address),
        ("BMC_USERNAME", bmc.username),
        ("BMC_PASSWORD", bmc.password),
        ("MAC", macs.first().cloned().unwrap_or_default()),
        ("MACS", macs.join(" ")),
        ("CPU_ARCH", cpu_arch),
        ("CPUS", cpus),
        ("MEMORY_MB", memory_mb),
        ("LOCAL_GB", local_gb),
        ("ALLOCATION_POOL", node.allocation_pool.join(",")),
        (
            "LEASE_EXPIRES_AT",
            node.lease_expires_at.map(timestamp).unwrap_or_default(),
        ),
    ];
    if let Some(port) = port {
        fields.insert(7, port);
    }
    fields
}

/// One node's `MOLTENIRON_*` variables as `allocate -o env` names them for a single node (credentials
/// included): the environment of a `health-check` command.
pub fn node_env(node: &Node) -> Vec<(String, String)> {
    env_fields(node)
        .into_iter()
        .map(|(key, value)| (format!("MOLTENIRON_{key}"), value))
        .collect()
}

fn env_line(key: &str, value: &str) -> Result<String> {
    let quoted = shlex::try_quote(value).with_context(|| format!("quoting {key} for the shell"))?;
    Ok(format!("{key}={quoted}"))
}

/// `release`: the nodes given back.
pub fn released(nodes: &[Released], format: Format) -> Result<()> {
    if format == Format::Json {
        let list = nodes.iter().map(|n| json!({"id": n.id, "name": n.name, "pool": n.pool, "owner": n.owner, "state": n.state}));
        return json(&Value::Array(list.collect()));
    }
    let table = nodes
        .iter()
        .map(|n| {
            vec![
                n.id.to_string(),
                n.name.clone(),
                n.pool.clone(),
                n.owner.clone(),
                n.state.to_string(),
            ]
        })
        .collect();
    rows(
        format,
        &["id", "name", "pool", "released from", "now"],
        table,
    )
}

/// `reap`: the allocations ended, at `at` (a column of its own in tables, so each line of a cron log
/// says when).
pub fn reaped(nodes: &[Reaped], at: DateTime<Utc>, format: Format) -> Result<()> {
    if format == Format::Json {
        let list = nodes.iter().map(|n| {
            json!({"id": n.id, "name": n.name, "pool": n.pool, "owner": n.owner, "state": n.state,
                   "allocated_at": n.allocated_at, "lease_expires_at": n.lease_expires_at})
        });
        return json(&Value::Array(list.collect()));
    }
    let table = nodes
        .iter()
        .map(|n| {
            vec![
                timestamp(at),
                n.id.to_string(),
                n.name.clone(),
                n.pool.clone(),
                n.owner.clone(),
                timestamp(n.allocated_at),
                timestamp(n.lease_expires_at),
                n.state.to_string(),
            ]
        })
        .collect();
    rows(
        format,
        &[
            "reaped at",
            "id",
            "name",
            "pool",
            "owner",
            "allocated at",
            "lease expired",
            "now",
        ],
        table,
    )
}

/// `renew`: the nodes and their new lease.
pub fn renewed(nodes: &[Node], format: Format) -> Result<()> {
    if format == Format::Json {
        return json(&Value::Array(
            nodes.iter().map(|n| node_json(n, false)).collect(),
        ));
    }
    let table = nodes
        .iter()
        .map(|n| {
            vec![
                n.id.to_string(),
                n.name.clone(),
                n.lease_expires_at.map(timestamp).unwrap_or_default(),
            ]
        })
        .collect();
    rows(format, &["id", "name", "lease expires"], table)
}

/// `get-field`: one value per node (human: just the values, one per line, for `$(...)`).
pub fn field_values(field: &str, values: &[(&Node, Option<Value>)], format: Format) -> Result<()> {
    match format {
        Format::Json => {
            let list = values
                .iter()
                .map(|(n, v)| json!({"id": n.id, "name": n.name, "field": field, "value": v}));
            json(&Value::Array(list.collect()))
        }
        Format::Csv => {
            let table = values
                .iter()
                .map(|(n, v)| {
                    vec![
                        n.id.to_string(),
                        n.name.clone(),
                        v.as_ref().map(plain).unwrap_or_default(),
                    ]
                })
                .collect();
            rows(format, &["id", "name", field], table)
        }
        _ => {
            let lines: Vec<String> = values
                .iter()
                .map(|(_, v)| v.as_ref().map(plain).unwrap_or_default())
                .collect();
            text(&(lines.join("\n") + "\n"))
        }
    }
}

/// A value of an event's detail for a table: a time (PostgreSQL writes them with microseconds and an
/// offset) as every table shows times, anything else as [`plain`].
fn detail_value(value: &Value) -> String {
    match value {
        Value::String(text) => match DateTime::parse_from_rfc3339(text) {
            Ok(t) => timestamp(t.with_timezone(&Utc)),
            Err(_) => text.clone(),
        },
        other => plain(other),
    }
}

/// `history`: the events, oldest first, each with who made it (`actor`, empty or null when unknown).
pub fn events(events: &[Event], format: Format) -> Result<()> {
    if format == Format::Json {
        let list = events.iter().map(|e| {
            json!({"id": e.id, "at": e.at, "node_id": e.node_id, "node_name": e.node_name, "owner": e.owner,
                   "actor": e.actor, "action": e.action, "detail": e.detail})
        });
        return json(&Value::Array(list.collect()));
    }
    let table = events
        .iter()
        .map(|e| {
            let detail = match &e.detail {
                Value::Object(map) if map.is_empty() => String::new(),
                Value::Object(map) => map
                    .iter()
                    .map(|(k, v)| format!("{k}={}", detail_value(v)))
                    .collect::<Vec<_>>()
                    .join(" "),
                other => plain(other),
            };
            vec![
                e.id.to_string(),
                e.at.format("%Y-%m-%d %H:%M:%S").to_string(),
                e.node_name.clone().unwrap_or_else(|| "-".to_owned()),
                e.owner.clone().unwrap_or_default(),
                e.actor.clone().unwrap_or_default(),
                e.action.to_string(),
                detail,
            ]
        })
        .collect();
    rows(
        format,
        &[
            "id", "at (UTC)", "node", "owner", "actor", "action", "detail",
        ],
        table,
    )
}

/// A one-node summary after an edit (add, clean, maintenance, set-field).
pub fn node(node: &Node, format: Format) -> Result<()> {
    if format == Format::Json {
        return json(&node_json(node, false));
    }
    let state = node.state_label();
    rows(
        format,
        &["id", "name", "pool", "state"],
        vec![vec![
            node.id.to_string(),
            node.name.clone(),
            node.pool.clone(),
            state,
        ]],
    )
}

/// One row of `molteniron queue`: a waiting request, its pool and its filters as flags.
#[derive(Debug)]
pub struct QueueRow {
    pub entry: queue::Entry,
    /// `None`: any pool.
    pub pool: Option<String>,
    pub filters: String,
}

/// `queue`: the waiting requests in the order they will be served; humans get "(none waiting)" on
/// stderr for an empty line.
pub fn queue(requests: &[QueueRow], format: Format) -> Result<()> {
    if format == Format::Json {
        let list = requests.iter().map(|r| {
            let e = &r.entry;
            json!({"position": e.position, "id": e.id, "owner": e.owner, "pool": r.pool, "count": e.count,
                   "filters": e.request, "priority": e.priority, "waiting_since": e.enqueued_at,
                   "waiter": e.waiter, "ready": e.ready, "allocated": e.allocated})
        });
        return json(&Value::Array(list.collect()));
    }
    if requests.is_empty() && format == Format::Human {
        note("no request waits in line");
        return Ok(());
    }
    let now = Utc::now();
    let table = requests
        .iter()
        .map(|r| {
            let e = &r.entry;
            let waited = (now - e.enqueued_at).num_seconds().max(0);
            vec![
                e.position.to_string(),
                escape_controls(&e.owner),
                r.pool.clone().unwrap_or_else(|| "(any)".to_owned()),
                e.count.to_string(),
                escape_controls(&r.filters),
                e.priority.to_string(),
                format!("{} ({})", timestamp(e.enqueued_at), short_duration(waited)),
                e.ready.to_string(),
                e.allocated.to_string(),
            ]
        })
        .collect();
    rows(
        format,
        &[
            "position",
            "owner",
            "pool",
            "count",
            "filters",
            "priority",
            "waiting since",
            "ready",
            "allocated",
        ],
        table,
    )
}

/// `status` (human only): how many requests wait in line, per pool, after the table; nothing when none
/// does.
pub fn waiting(waiting: &[queue::PoolWaiting], format: Format) -> Result<()> {
    if format != Format::Human || waiting.is_empty() {
        return Ok(());
    }
    let pools: Vec<String> = waiting
        .iter()
        .map(|w| match &w.pool {
            Some(pool) => format!("{} in pool {}", w.waiting, escape_controls(pool)),
            None => format!("{} for any pool", w.waiting),
        })
        .collect();
    text(&format!(
        "Waiting in line: {} (molteniron queue lists them)\n",
        pools.join(", ")
    ))
}

/// One node's `health-check` result.
#[derive(Debug, Clone)]
pub struct CheckRow {
    pub id: i64,
    pub name: String,
    /// passed, failed, timeout or skipped.
    pub result: String,
    pub seconds: f64,
    /// Why it failed (credentials masked), or why it was skipped; empty when it passed.
    pub reason: String,
}

/// `health-check`: one row per node (name, result, seconds, reason).
pub fn health_checks(rows_in: &[CheckRow], format: Format) -> Result<()> {
    if format == Format::Json {
        let list = rows_in.iter().map(|r| {
            json!({"id": r.id, "name": r.name, "result": r.result, "seconds": (r.seconds * 1000.0).round() / 1000.0,
                   "reason": r.reason})
        });
        return json(&Value::Array(list.collect()));
    }
    if rows_in.is_empty() && format == Format::Human {
        return Ok(());
    }
    let table = rows_in
        .iter()
        .map(|r| {
            vec![
                r.name.clone(),
                r.result.clone(),
                format!("{:.1}", r.seconds),
                escape_controls(&r.reason),
            ]
        })
        .collect();
    rows(format, &["node", "result", "seconds", "reason"], table)
}

/// `stats`: per pool (node `-`) and per node; seconds and percentages to one decimal.
pub fn stats(usage: &[crate::store::health::Usage], format: Format) -> Result<()> {
    let secs = |v: Option<f64>| {
        v.map(|v| format!("{v:.1}"))
            .unwrap_or_else(|| "-".to_owned())
    };
    if format == Format::Json {
        let list = usage.iter().map(|u| {
            json!({"pool": u.pool, "node": u.node, "nodes": u.nodes, "allocations": u.allocations,
                   "busy_pct": u.busy_pct, "hold_p50_secs": u.hold_p50_secs, "hold_p95_secs": u.hold_p95_secs,
                   "jobs_reported": u.jobs_reported, "jobs_failed": u.jobs_failed, "failure_pct": u.failure_pct,
                   "quarantines": u.quarantines, "checks_passed": u.checks_passed,
                   "checks_failed": u.checks_failed, "waits": u.waits, "wait_p50_secs": u.wait_p50_secs,
                   "wait_p95_secs": u.wait_p95_secs, "wait_max_secs": u.wait_max_secs})
        });
        return json(&Value::Array(list.collect()));
    }
    let table = usage
        .iter()
        .map(|u| {
            vec![
                escape_controls(&u.pool),
                u.node
                    .as_deref()
                    .map(escape_controls)
                    .unwrap_or_else(|| "-".to_owned()),
                u.allocations.to_string(),
                format!("{:.1}", u.busy_pct),
                secs(u.hold_p50_secs),
                secs(u.hold_p95_secs),
                format!("{}/{}", u.jobs_failed, u.jobs_reported),
                secs(u.failure_pct),
                u.quarantines.to_string(),
                format!("{}/{}", u.checks_failed, u.checks_passed + u.checks_failed),
                if u.node.is_some() {
                    "-".to_owned()
                } else {
                    u.waits.to_string()
                },
                secs(u.wait_p50_secs),
                secs(u.wait_p95_secs),
                secs(u.wait_max_secs),
            ]
        })
        .collect();
    rows(
        format,
        &[
            "pool",
            "node",
            "allocations",
            "busy %",
            "hold p50 s",
            "hold p95 s",
            "failed jobs",
            "failed %",
            "quarantines",
            "failed checks",
            "waits",
            "wait p50 s",
            "wait p95 s",
            "wait max s",
        ],
        table,
    )
}

/// `metrics`: the pools in Prometheus' text exposition format (version 0.0.4), every family with its
/// HELP and TYPE lines even when it has no sample. `molteniron_nodes` has a sample for every pool and
/// every [`NodeState`], zeros included. The requests waiting for any pool are the queue's samples with
/// an empty pool label (`pool=""`, which no pool can be named; Prometheus stores them without one).
pub fn prometheus(pools: &[PoolMetrics], version: &str) -> String {
    // (labels, value) of each pool's sample; `any_pool`: also the any-pool row's, as pool="".
    let per_pool = |any_pool: bool, value: fn(&PoolMetrics) -> String| -> Vec<Sample> {
        pools
            .iter()
            .filter_map(|p| match &p.pool {
                Some(name) => Some((format!("pool=\"{}\"", label_value(name)), value(p))),
                None => any_pool.then(|| ("pool=\"\"".to_owned(), value(p))),
            })
            .collect()
    };
    let nodes = pools
        .iter()
        .filter_map(|p| Some((p.pool.as_deref()?, p)))
        .flat_map(|(name, p)| {
            NodeState::ALL.iter().map(move |&state| {
                (
                    format!("pool=\"{}\",state=\"{state}\"", label_value(name)),
                    p.nodes(state).to_string(),
                )
            })
        })
        .collect();
    let families: [(&str, &str, &str, Vec<Sample>); 10] = [
        (
            "molteniron_nodes",
            "gauge",
            "Nodes per pool and state (every state, zeros included).",
            nodes,
        ),
        (
            "molteniron_expired_leases",
            "gauge",
            "Allocated nodes whose lease has expired and that reap has not released yet.",
            per_pool(false, |p| p.expired_leases.to_string()),
        ),
        (
            "molteniron_oldest_allocation_age_seconds",
            "gauge",
            "Seconds since the longest-held allocated node was allocated (0 when none is).",
            per_pool(false, |p| p.oldest_allocation_age_seconds.to_string()),
        ),
        (
            "molteniron_quarantined_nodes",
            "gauge",
            "Nodes in maintenance because failed jobs quarantined them.",
            per_pool(false, |p| p.quarantined_nodes.to_string()),
        ),
        (
            "molteniron_waiting_requests",
            "gauge",
            "Requests waiting in line (allocate --wait); pool=\"\" counts those for any pool.",
            per_pool(true, |p| p.waiting_requests.to_string()),
        ),
        (
            "molteniron_oldest_waiting_request_age_seconds",
            "gauge",
            "Seconds the longest-waiting request has waited in line (0 when none waits); pool=\"\" \
             is those for any pool.",
            per_pool(true, |p| p.oldest_waiting_request_age_seconds.to_string()),
        ),
        (
            "molteniron_allocations_total",
            "counter",
            "Nodes allocated (allocate events, health checks' own included).",
            per_pool(false, |p| p.allocations.to_string()),
        ),
        (
            "molteniron_reaped_total",
            "counter",
            "Expired allocations released by reap.",
            per_pool(false, |p| p.reaped.to_string()),
        ),
        (
            "molteniron_quarantined_total",
            "counter",
            "Nodes quarantined after failed jobs in a row.",
            per_pool(false, |p| p.quarantines.to_string()),
        ),
        (
            "molteniron_info",
            "gauge",
            "The version of molteniron that wrote these metrics (always 1).",
            vec![(
                format!("version=\"{}\"", label_value(version)),
                "1".to_owned(),
            )],
        ),
    ];
    let mut out = String::new();
    for (name, kind, help, samples) in families {
        out.push_str(&format!(
            "# HELP {name} {}\n# TYPE {name} {kind}\n",
            help_text(help)
        ));
        for (labels, value) in samples {
            out.push_str(&format!("{name}{{{labels}}} {value}\n"));
        }
    }
    out
}

/// One sample of a metric family: its labels (`pool="default"`) and its value.
type Sample = (String, String);

/// A label value as the exposition format writes it: backslash, double quote and line feed escaped.
fn label_value(text: &str) -> String {
    text.replace('\\', r"\\")
        .replace('"', "\\\"")
        .replace('\n', r"\n")
}

/// A HELP text as the exposition format writes it: backslash and line feed escaped.
fn help_text(text: &str) -> String {
    text.replace('\\', r"\\").replace('\n', r"\n")
}
