//! `molteniron doctor`: checks a setup and prints one line per check, OK, WARN or FAIL with a fix. It
//! only reads (its SQL is `store::doctor`), so any role may run it, through a pooler too, and a check
//! that cannot run is reported as a line, not an error. Exit 0 unless a check FAILs; then exit 1, the
//! code of a setup that is wrong (an unmigrated database, a transaction's timeouts not holding), after
//! every line is printed. A database that cannot be reached at all is exit 5, as for every command.

use std::time::{Duration, SystemTime};

use anyhow::Result;
use clap::Args;
use diesel::PgConnection;

use super::Ctx;
use crate::config::Config;
use crate::db;
use crate::domain::{Check, Verdict};
use crate::error::Failure;
use crate::output::{self, Format};
use crate::store::{self, doctor};

/// The oldest server molteniron's SQL runs on (`WITH ... AS MATERIALIZED`).
const MIN_SERVER: i32 = 12_00_00;
/// The oldest server still supported by the PostgreSQL project (12 reached its end of life in 2024).
const SUPPORTED_SERVER: i32 = 13_00_00;
/// How far the server's clock may be from ours before leases and `--since` read wrong.
const CLOCK_SKEW: Duration = Duration::from_secs(2);

#[derive(Debug, Args)]
pub struct DoctorArgs {}

impl DoctorArgs {
    /// `doctor`: every check, in order, on one connection.
    pub fn run(&self, ctx: &Ctx) -> Result<()> {
        let format = ctx.format(&[Format::Human, Format::Json])?;
        let checks = ctx.with_db_repeatable(|conn| Ok(checks(conn, &ctx.config)))?;
        output::checks(&checks, format)?;
        let failed: Vec<&str> = checks
            .iter()
            .filter(|c| c.status == Verdict::Fail)
            .map(|c| c.check)
            .collect();
        if failed.is_empty() {
            return Ok(());
        }
        Err(Failure::Invalid(format!(
            "{} check(s) failed: {}",
            failed.len(),
            failed.join(", ")
        ))
        .into())
    }
}

/// Runs every check. A query that fails makes its own check a WARN that says so; the rest still run.
fn checks(conn: &mut PgConnection, config: &Config) -> Vec<Check> {
    let mut out = vec![server(conn)];
    let schema = schema(conn);
    let migrated = schema.status != Verdict::Fail;
    out.push(schema);
    out.push(timeouts(conn, config));
    out.push(if migrated {
        role(conn)
    } else {
        Check::warn(
            "role",
            "cannot tell before the schema exists",
            "molteniron migrate, then run doctor again",
        )
    });
    out.push(replication(conn));
    out.push(tls(conn));
    out.push(if migrated {
        autovacuum(conn)
    } else {
        Check::warn(
            "autovacuum",
            "cannot tell before the schema exists",
            "molteniron migrate, then run doctor again",
        )
    });
    out.push(clock(conn));
    out
}

/// The line for a check whose query failed.
fn unknown(check: &'static str, err: &diesel::result::Error) -> Check {
    let message = err.to_string();
    Check::warn(
        check,
        format!("could not check: {}", message.lines().next().unwrap_or("")),
        "see the server's log, or ask its administrator",
    )
}

fn server(conn: &mut PgConnection) -> Check {
    const NAME: &str = "server-version";
    match doctor::server_version(conn) {
        Err(e) => unknown(NAME, &e),
        Ok(v) if v.num < MIN_SERVER => Check::fail(
            NAME,
            format!("PostgreSQL {}", v.version),
            "molteniron needs PostgreSQL 12 or newer",
        ),
        Ok(v) if v.num < SUPPORTED_SERVER => Check::warn(
            NAME,
            format!(
                "PostgreSQL {}, no longer supported by the PostgreSQL project",
                v.version
            ),
            "upgrade to a supported major version",
        ),
        Ok(v) => Check::ok(NAME, format!("PostgreSQL {}", v.version)),
    }
}

fn schema(conn: &mut PgConnection) -> Check {
    const NAME: &str = "schema";
    let known = match db::embedded_versions() {
        Ok(known) => known,
        Err(e) => {
            return Check::warn(
                NAME,
                format!("cannot read this binary's migrations: {e}"),
                "rebuild molteniron",
            );
        }
    };
    let applied = match doctor::applied_migrations(conn) {
        Err(e) => return unknown(NAME, &e),
        Ok(None) => {
            return Check::fail(
                NAME,
                "not migrated: no molteniron schema in this database",
                "molteniron migrate",
            );
        }
        Ok(Some(applied)) => applied,
    };
    let pending: Vec<&String> = known.iter().filter(|v| !applied.contains(v)).collect();
    let unknown_here: Vec<&String> = applied.iter().filter(|v| !known.contains(v)).collect();
    let latest = known.last().map_or("none", String::as_str);
    if !pending.is_empty() {
        return Check::fail(
            NAME,
            format!(
                "{} of {} migrations pending ({})",
                pending.len(),
                known.len(),
                pending
                    .iter()
                    .map(|v| v.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            "molteniron migrate",
        );
    }
    if !unknown_here.is_empty() {
        return Check::warn(
            NAME,
            format!(
                "the database has {} migration(s) this molteniron does not know ({}): a newer molteniron \
                 migrated it",
                unknown_here.len(),
                unknown_here
                    .iter()
                    .map(|v| v.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            "upgrade molteniron on this host",
        );
    }
    Check::ok(
        NAME,
        format!("current: {} migrations, latest {latest}", known.len()),
    )
}

/// Milliseconds as PostgreSQL reads a duration setting (`10s`, `1500ms`), `none` for 0.
fn millis(ms: i64) -> String {
    match ms {
        0 => "none".to_owned(),
        ms if ms % 1000 == 0 => format!("{}s", ms / 1000),
        ms => format!("{ms}ms"),
    }
}

/// The timeouts molteniron's statements really run under: inside one of its transactions (which sets
/// them itself, so they hold through any pooler) they must be the config's; outside one, the
/// one-statement commands (allocate, release, renew, reap) set their own lock_timeout once they run,
/// but run under the server's statement_timeout for this login (its role's or database's default), and
/// wait for table locks (taken before a statement runs) under its lock_timeout: neither should be none.
fn timeouts(conn: &mut PgConnection, config: &Config) -> Check {
    const NAME: &str = "timeouts";
    let want = config.timeouts();
    let as_ms = |d: Duration| i64::try_from(d.as_millis().max(1)).unwrap_or(i64::MAX);
    let (lock, statement) = (as_ms(want.lock), as_ms(want.statement));
    let inside = match db::transaction(conn, want, doctor::timeouts) {
        Err(e) => return unknown(NAME, &e),
        Ok(t) => t,
    };
    if inside.lock_timeout_ms != lock || inside.statement_timeout_ms != statement {
        return Check::fail(
            NAME,
            format!(
                "in molteniron's transactions lock_timeout {}, statement_timeout {}; the config says {} and \
                 {}: something between molteniron and PostgreSQL does not keep a transaction's SET LOCAL",
                millis(inside.lock_timeout_ms),
                millis(inside.statement_timeout_ms),
                millis(lock),
                millis(statement)
            ),
            "connect straight to PostgreSQL or through a pooler in session or transaction mode",
        );
    }
    let server = match doctor::timeouts(conn) {
        Err(e) => return unknown(NAME, &e),
        Ok(t) => t,
    };
    let configured = format!(
        "lock_timeout {}, statement_timeout {} in each transaction, as configured",
        millis(lock),
        millis(statement)
    );
    let mut missing = Vec::new();
    if server.statement_timeout_ms == 0 {
        missing.push(("statement_timeout", millis(statement)));
    }
    if server.lock_timeout_ms == 0 {
        missing.push(("lock_timeout", millis(lock)));
    }
    if !missing.is_empty() {
        let names: Vec<&str> = missing.iter().map(|(name, _)| *name).collect();
        let sets: Vec<String> = missing
            .iter()
            .map(|(name, value)| format!("ALTER ROLE {} SET {name} = '{value}'", server.login))
            .collect();
        return Check::warn(
            NAME,
            format!(
                "{configured}; but the server gives {} no {}: allocate, release, renew and reap (one \
                 statement each, which set only their own lock_timeout, once they run) run under the \
                 server's statement_timeout, and a table lock (a migration, VACUUM FULL) is waited for \
                 before any statement runs, under the server's lock_timeout",
                server.login,
                names.join(" and no ")
            ),
            format!(
                "{}, or ALTER DATABASE ... SET for every role",
                sets.join("; ")
            ),
        );
    }
    Check::ok(
        NAME,
        format!(
            "{configured}; outside them the server's statement_timeout {}, lock_timeout {}",
            millis(server.statement_timeout_ms),
            millis(server.lock_timeout_ms)
        ),
    )
}

fn role(conn: &mut PgConnection) -> Check {
    const NAME: &str = "role";
    let p = match doctor::privileges(conn) {
        Err(e) => return unknown(NAME, &e),
        Ok(p) => p,
    };
    let user = p.user;
    if p.superuser {
        return Check::warn(
            NAME,
            format!("{user} is a superuser: it may do anything, to every database of the server"),
            "log CI hosts in as a role granted molteniron_job only (molteniron roles --apply; GRANT \
             molteniron_job TO ci_login_role)",
        );
    }
    match (p.admin, p.job, p.readonly) {
        (true, _, _) => Check::ok(
            NAME,
            format!(
                "{user} may administer (migrate, import, add, maintenance, and every job command)"
            ),
        ),
        (false, true, _) => Check::ok(
            NAME,
            format!(
                "{user} may run jobs (allocate, release, renew, reap, get-field, status, history)"
            ),
        ),
        (false, false, true) => Check::ok(
            NAME,
            format!("{user} may only read (status, history, the view nodes_public)"),
        ),
        (false, false, false) => Check::fail(
            NAME,
            format!("{user} may not even read the pool"),
            format!(
                "GRANT molteniron_job TO {user} (or molteniron_readonly; see molteniron roles)"
            ),
        ),
    }
}

fn replication(conn: &mut PgConnection) -> Check {
    const NAME: &str = "replication";
    let r = match doctor::replication(conn) {
        Err(e) => return unknown(NAME, &e),
        Ok(r) => r,
    };
    const FIX_ASYNC: &str = "run two standbys and set synchronous_standby_names = 'ANY 1 (s1, s2)' on \
                             the primary (docs/scale-out.md, Failover)";
    if r.in_recovery {
        return Check::fail(
            NAME,
            "this server is a standby (read-only): allocate and release would fail",
            "list the primary first, or every server with target_session_attrs=read-write",
        );
    }
    let names = r.synchronous_standby_names.trim();
    if names.is_empty() {
        return if r.standbys == 0 {
            Check::warn(
                NAME,
                "no standby: losing this server loses the pool's state",
                FIX_ASYNC,
            )
        } else {
            Check::warn(
                NAME,
                format!(
                    "{} standby(s), asynchronous: after a failover an acknowledged allocation can be lost \
                     and its node handed to a second owner",
                    r.standbys
                ),
                FIX_ASYNC,
            )
        };
    }
    if matches!(r.synchronous_commit.as_str(), "off" | "local") {
        return Check::warn(
            NAME,
            format!(
                "synchronous_standby_names = '{names}' but synchronous_commit = {}: commits do not wait \
                 for a standby",
                r.synchronous_commit
            ),
            "synchronous_commit = on (the default) on the primary and for molteniron's role",
        );
    }
    if r.hidden > 0 {
        return Check::warn(
            NAME,
            format!(
                "synchronous_standby_names = '{names}', {} standby(s) connected; this role may not see \
                 whether they confirm commits",
                r.standbys
            ),
            "run doctor as a role with pg_read_all_stats (or the admin role) to check",
        );
    }
    if r.synchronous == 0 {
        return Check::fail(
            NAME,
            format!(
                "synchronous_standby_names = '{names}' but no listed standby is streaming: every commit \
                 waits"
            ),
            "start a standby named in synchronous_standby_names, or change the setting",
        );
    }
    Check::ok(
        NAME,
        format!(
            "synchronous: {} of {} standby(s) confirm commits (synchronous_standby_names = '{names}')",
            r.synchronous, r.standbys
        ),
    )
}

fn tls(conn: &mut PgConnection) -> Check {
    const NAME: &str = "tls";
    match doctor::transport(conn) {
        Err(e) => unknown(NAME, &e),
        Ok(t) => match (t.client_addr, t.tls_version) {
            (None, _) => Check::ok(NAME, "Unix socket (no network to protect)"),
            (Some(addr), Some(version)) => {
                Check::ok(NAME, format!("TCP with {version} (client address {addr})"))
            }
            (Some(addr), None) if t.loopback => Check::ok(
                NAME,
                format!("TCP over loopback ({addr}) without TLS: nothing leaves this host"),
            ),
            (Some(addr), None) => Check::warn(
                NAME,
                format!(
                    "TCP without TLS (client address {addr}): BMC passwords cross the network in clear"
                ),
                "sslmode=verify-full (with sslrootcert) in the connection string, and hostssl in the \
                 server's pg_hba.conf",
            ),
        },
    }
}

fn autovacuum(conn: &mut PgConnection) -> Check {
    const NAME: &str = "autovacuum";
    let a = match doctor::autovacuum(conn) {
        Err(e) => return unknown(NAME, &e),
        Ok(a) => a,
    };
    let rows = format!("{} live, {} dead rows", a.live_rows, a.dead_rows);
    if !a.server_on || a.options.contains("autovacuum_enabled=false") {
        return Check::warn(
            NAME,
            format!("autovacuum is off for nodes ({rows}): dead index entries slow allocate down"),
            "autovacuum = on, and ALTER TABLE nodes RESET (autovacuum_enabled)",
        );
    }
    if !a.options.contains("autovacuum_vacuum_threshold") {
        return Check::warn(
            NAME,
            format!(
                "nodes uses the server's default thresholds ({rows}): a large pool is vacuumed late"
            ),
            "ALTER TABLE nodes SET (autovacuum_vacuum_scale_factor = 0.02, autovacuum_vacuum_threshold \
             = 200) (what the first migration sets)",
        );
    }
    Check::ok(NAME, format!("on; nodes: {} ({rows})", a.options))
}

fn clock(conn: &mut PgConnection) -> Check {
    const NAME: &str = "clock";
    let before = SystemTime::now();
    let server = match store::server_now(conn) {
        Err(e) => return unknown(NAME, &e),
        Ok(t) => t,
    };
    let after = SystemTime::now();
    let round_trip = after.duration_since(before).unwrap_or_default();
    // The server read its clock somewhere in the round trip: compare with the middle of it.
    let local = chrono::DateTime::<chrono::Utc>::from(before + round_trip / 2);
    let skew = (server - local).abs().to_std().unwrap_or_default();
    let detail = format!(
        "server {} local by {:.3} s (round trip {:.3} s)",
        if server >= local {
            "ahead of"
        } else {
            "behind"
        },
        skew.as_secs_f64(),
        round_trip.as_secs_f64()
    );
    if skew > CLOCK_SKEW {
        Check::warn(
            NAME,
            detail,
            "synchronise both clocks (NTP, chrony): leases are the server's time, --since and \
             lease notes compare with this host's",
        )
    } else {
        Check::ok(NAME, detail)
    }
}
