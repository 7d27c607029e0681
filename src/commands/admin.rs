//! Operator commands: migrate, roles, clean, maintenance, status and history.

use anyhow::{Context, Result};
use diesel::Connection;
use serde_json::json;

use super::{Ctx, invalid, no_node};
use crate::cli::{Format, StatusArgs};
use crate::config::parse_duration;
use crate::db;
use crate::error::Failure;
use crate::output;
use crate::store::{self, EventFilter, RoleNames};

/// `migrate`: create or upgrade the schema.
pub fn migrate(ctx: &Ctx) -> Result<()> {
    ctx.format(&[Format::Human])?;
    let applied = ctx.with_db_repeatable(db::migrate)?;
    if applied.is_empty() {
        output::note("the schema is up to date");
    } else {
        output::note(&format!("applied migrations {}", applied.join(", ")));
    }
    Ok(())
}

/// `roles [--prefix P] [--apply]`: print the roles' SQL (never connecting), or run it in one transaction.
pub fn roles(ctx: &Ctx, prefix: &str, apply: bool) -> Result<()> {
    ctx.format(&[Format::Human])?;
    let names = RoleNames::from_prefix(prefix).map_err(invalid)?;
    if !apply {
        return output::text(&store::roles_script(&names));
    }
    ctx.with_db_repeatable(|conn| {
        conn.transaction(|conn| store::apply_roles(conn, &names))
            .context("applying the roles")
    })?;
    output::note(&format!(
        "applied roles {}, {} and {} (GRANT them to login roles)",
        names.admin, names.job, names.readonly
    ));
    Ok(())
}

/// `clean NODE`: dirty → ready.
pub fn clean(ctx: &Ctx, key: &str) -> Result<()> {
    let format = ctx.format(&[Format::Human, Format::Json])?;
    let node = ctx.with_db(|conn| {
        conn.transaction(|conn| {
            let node = store::find_node(conn, key, true)?.ok_or_else(|| no_node(key))?;
            if node.state != "dirty" {
                return Err(Failure::Conflict(format!(
                    "node {} is {}, not dirty",
                    node.name, node.state
                ))
                .into());
            }
            Ok::<_, anyhow::Error>(store::set_state(
                conn,
                node.id,
                "ready",
                None,
                "clean",
                json!({}),
            )?)
        })
    })?;
    output::node(&node, format)
}

/// `maintenance NODE --reason R [--force]` (reason given) or `maintenance NODE --off` (reason `None`).
pub fn maintenance(ctx: &Ctx, key: &str, reason: Option<&str>, force: bool) -> Result<()> {
    let format = ctx.format(&[Format::Human, Format::Json])?;
    if let Some(reason) = reason {
        if reason.trim().is_empty() || reason.chars().count() > 1000 || reason.contains('\0') {
            return Err(invalid(
                "the maintenance reason must be 1 to 1000 characters".to_owned(),
            ));
        }
    }
    let release_state = ctx.config.release_state.as_str();
    let node = ctx.with_db(|conn| {
        conn.transaction(|conn| {
            let node = store::find_node(conn, key, true)?.ok_or_else(|| no_node(key))?;
            let Some(reason) = reason else {
                if node.state != "maintenance" {
                    return Err(Failure::Conflict(format!(
                        "node {} is {}, not in maintenance",
                        node.name, node.state
                    ))
                    .into());
                }
                return Ok(store::set_state(
                    conn,
                    node.id,
                    "ready",
                    None,
                    "maintenance_off",
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
                store::release(conn, owner, Some(node.id), release_state)?;
            }
            let detail = json!({"reason": reason});
            Ok::<_, anyhow::Error>(store::set_state(
                conn,
                node.id,
                "maintenance",
                Some(reason),
                "maintenance_on",
                detail,
            )?)
        })
    })?;
    output::node(&node, format)
}

/// `status` and `status_baremetal`.
pub fn status(ctx: &Ctx, args: &StatusArgs, baremetal: bool) -> Result<()> {
    let format = ctx.format(&[Format::Human, Format::Csv, Format::Json])?;
    let format = match args.legacy_type {
        None => format,
        Some(legacy @ (Format::Human | Format::Csv)) if ctx.output.is_none_or(|o| o == legacy) => {
            legacy
        }
        Some(_) => {
            let message = "-t takes human or csv, and must agree with -o when both are given";
            return Err(Failure::Usage(message.into()).into());
        }
    };
    let (nodes, now) = ctx.with_db_repeatable(|conn| {
        let nodes = store::list_nodes(conn, args.pool.as_deref(), args.owner.as_deref())?;
        Ok((nodes, store::server_now(conn)?))
    })?;
    output::status(&nodes, now, format, baremetal, args.show_secrets)
}

/// `history`.
pub fn history(
    ctx: &Ctx,
    node: Option<&str>,
    owner: Option<&str>,
    since: Option<&str>,
    limit: i64,
) -> Result<()> {
    let format = ctx.format(&[Format::Human, Format::Csv, Format::Json])?;
    if limit < 1 {
        return Err(invalid("--limit must be at least 1".to_owned()));
    }
    let since_micros = since
        .map(parse_duration)
        .transpose()?
        .map(|d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX));
    let events = ctx.with_db_repeatable(|conn| {
        let mut filter = EventFilter {
            owner: owner.map(str::to_owned),
            since_micros,
            limit,
            ..Default::default()
        };
        if let Some(key) = node {
            match store::find_node(conn, key, false)? {
                Some(found) => {
                    filter.node_id = Some(found.id);
                    filter.node_name = Some(found.name);
                }
                // A removed node: match its old name (or id).
                None => match key.parse::<i64>() {
                    Ok(id) => filter.node_id = Some(id),
                    Err(_) => filter.node_name = Some(key.to_owned()),
                },
            }
        }
        Ok(store::list_events(conn, &filter)?)
    })?;
    output::events(&events, format)
}
