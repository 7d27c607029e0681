//! `health-check`: run an operator's command against nodes from cron, with no daemon. Each node is taken
//! out of the pool for its check like an allocation (owner `health-check:NAME`, a short lease), so no
//! job gets it meanwhile; a pass puts it back to ready, a failure or a timeout puts it in maintenance with
//! a reason made from the command's exit and the first line of its stderr, every credential masked.
//!
//! Guarantees, each proven by a test in tests/it/health.rs: a failing, a hanging and a password-printing
//! command are told apart and nothing secret is kept
//! (`health::a_check_fails_times_out_or_passes_and_never_shows_a_credential`); a check never double-books
//! a node (`health::a_health_check_and_sixteen_allocators_never_share_a_node`); a check killed mid-run leaves
//! its node to be reaped (`health::a_killed_health_check_leaves_its_node_to_reap`).

use std::io::Read;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::Args;

use super::{Ctx, invalid};
use crate::config::duration_arg;
use crate::db;
use crate::error::Failure;
use crate::inventory::check_text;
use crate::output::{self, CheckRow, Format};
use crate::pool::{self, Filter, Outcome, Request};
use crate::secret::secret_values;
use crate::store::health::{self, Due};
use crate::store::nodes::Node;

#[derive(Debug, Args)]
pub struct HealthCheckArgs {
    /// Only these nodes (names or ids) [default: every ready node that is due].
    #[arg(value_name = "NODE")]
    pub nodes: Vec<String>,
    /// Only nodes of this pool.
    #[arg(long, value_name = "POOL")]
    pub pool: Option<String>,
    /// The command to run once per node, with `sh -c`, the node's MOLTENIRON_* variables (as allocate
    /// -o env names them, credentials included) in its environment [default: health_check.command from
    /// the config].
    #[arg(long, value_name = "CMD")]
    pub command: Option<String>,
    /// Kill the command (its whole process group) after this long; counts as a failure.
    #[arg(long, value_name = "DURATION", value_parser = duration_arg, default_value = "60s")]
    pub timeout: Duration,
    /// How many nodes to check at once.
    #[arg(long, value_name = "N", default_value_t = 4,
          value_parser = clap::value_parser!(u16).range(1..=64))]
    pub parallel: u16,
    /// Also check nodes quarantined automatically (never those an operator put in maintenance); those
    /// that pass go back to ready.
    #[arg(long)]
    pub include_quarantined: bool,
}

/// The owner a node is held by while it is checked.
fn owner_of(node: &str) -> String {
    format!("health-check:{node}")
}

impl HealthCheckArgs {
    /// `health-check [NODE...] [--pool P] [--command CMD] [--timeout DUR] [--parallel N]
    /// [--include-quarantined]`: exit 0 when every node checked passed, 7 when some failed.
    pub fn run(&self, ctx: &Ctx) -> Result<()> {
        let format = ctx.format(&[Format::Human, Format::Csv, Format::Json])?;
        if let Some(pool) = &self.pool {
            check_text("pool", pool).map_err(invalid)?;
        }
        let command = match self
            .command
            .as_ref()
            .or(ctx.config.health_check.command.as_ref())
        {
            Some(command) if !command.trim().is_empty() => command.clone(),
            _ => {
                return Err(Failure::Usage(
                    "no health-check command: give --command CMD or set health_check.command in the config"
                        .to_owned(),
                )
                .into());
            }
        };
        let settings = &ctx.config.health_check;
        let unfinished = ctx.with_db_repeatable(|conn| {
            Ok(db::transaction(
                conn,
                ctx.timeouts(),
                health::reap_unfinished,
            )?)
        })?;
        for node in &unfinished {
            output::note(&format!(
                "node {}: an earlier health check did not finish; it is in maintenance until a check passes \
                 (--include-quarantined)",
                node.name
            ));
        }
        let due = ctx.read(|conn| {
            Ok(health::due(
                conn,
                self.pool.as_deref(),
                &self.nodes,
                self.include_quarantined,
                settings.every.map(|d| d.as_secs_f64()),
                settings
                    .after_jobs
                    .map(|n| i64::try_from(n).unwrap_or(i64::MAX)),
            )?)
        })?;
        if due.is_empty() {
            output::note("no node is due for a health check");
        }
        let queue = Mutex::new(due.into_iter());
        let rows = Mutex::new(Vec::new());
        let workers = usize::from(self.parallel);
        std::thread::scope(|scope| {
            for _ in 0..workers {
                scope.spawn(|| {
                    loop {
                        let next = match queue.lock() {
                            Ok(mut q) => q.next(),
                            Err(_) => None,
                        };
                        let Some(node) = next else {
                            break;
                        };
                        let row = self.check_one(ctx, &command, &node);
                        if let Ok(mut rows) = rows.lock() {
                            rows.push(row);
                        }
                    }
                });
            }
        });
        let mut rows = rows.into_inner().unwrap_or_default();
        rows.sort_by_key(|r| r.id);
        // Nodes that passed are ready again: hand them to requests waiting in line.
        if rows.iter().any(|r| r.result == "passed") {
            ctx.serve_line();
        }
        output::health_checks(&rows, format)?;
        let failed: Vec<&str> = rows
            .iter()
            .filter(|r| r.result == "failed" || r.result == "timeout")
            .map(|r| r.name.as_str())
            .collect();
        if failed.is_empty() {
            return Ok(());
        }
        Err(Failure::ChecksFailed(format!(
            "{} of {} node(s) failed the health check and are in maintenance: {}",
            failed.len(),
            rows.len(),
            failed.join(", ")
        ))
        .into())
    }

    /// Takes `due` for the check, runs the command, and records the result; never fails the whole run
    /// (a node it could not take or record says so in its row).
    fn check_one(&self, ctx: &Ctx, command: &str, due: &Due) -> CheckRow {
        let owner = owner_of(&due.name);
        let row = |result: &str, seconds: f64, reason: String| CheckRow {
            id: due.id,
            name: due.name.clone(),
            result: result.to_owned(),
            seconds,
            reason,
        };
        // The lease outlives the check (reap frees the node if this process dies).
        let lease_secs = self.timeout.as_secs_f64() * 2.0 + 30.0;
        let taken = ctx.with_db_repeatable(|conn| {
            if due.quarantined {
                return Ok(health::take_quarantined(conn, due.id, &owner, lease_secs)?);
            }
            let filter = Filter {
                nodes: vec![due.id.to_string()],
                ..Filter::default()
            };
            let request = Request {
                owner: &owner,
                filter: &filter,
                count: 1,
                lease_secs,
                // Jobs waiting in line come first.
                priority: -1000,
            };
            Ok(match pool::take(conn, ctx.timeouts(), &request)? {
                Outcome::Granted(mut nodes) | Outcome::AlreadyHeld(mut nodes) => nodes.pop(),
                _ => None,
            })
        });
        let node = match taken {
            Ok(Some(node)) => node,
            Ok(None) => return row("skipped", 0.0, "taken by a job meanwhile".to_owned()),
            Err(e) => {
                return row(
                    "skipped",
                    0.0,
                    format!("could not take it: {}", ctx.cause(&e)),
                );
            }
        };
        let started = Instant::now();
        let outcome = run_command(command, &node, self.timeout);
        let seconds = started.elapsed().as_secs_f64();
        let mut secrets = node_secrets(&node);
        secrets.extend(crate::config::secrets([ctx.url.as_str()]));
        let (result, failure) = match outcome {
            Ok(Ran::Passed) => ("passed", None),
            Ok(Ran::Failed { status, stderr }) => (
                "failed",
                Some(reason(
                    &format!("health check failed ({status})"),
                    &stderr,
                    &secrets,
                )),
            ),
            Ok(Ran::TimedOut { stderr }) => (
                "timeout",
                Some(reason(
                    &format!(
                        "health check timed out after {}",
                        output::short_duration(self.timeout.as_secs().max(1) as i64)
                    ),
                    &stderr,
                    &secrets,
                )),
            ),
            Err(e) => (
                "failed",
                Some(reason(
                    "health check could not run",
                    &format!("{e:#}"),
                    &secrets,
                )),
            ),
        };
        let recorded = ctx.with_db_repeatable(|conn| {
            Ok(db::transaction(conn, ctx.timeouts(), |conn| {
                health::record_check(conn, node.id, &owner, failure.as_deref(), seconds)
            })?)
        });
        match recorded {
            Ok(Some(_)) => row(result, seconds, failure.unwrap_or_default()),
            Ok(None) => row(
                result,
                seconds,
                "the node was taken back (reaped or by an operator) before the result was recorded"
                    .to_owned(),
            ),
            Err(e) => row(
                result,
                seconds,
                format!(
                    "could not record the result ({}); the node is left to reap",
                    ctx.cause(&e)
                ),
            ),
        }
    }
}

/// How a command run ended.
enum Ran {
    Passed,
    Failed { status: String, stderr: String },
    TimedOut { stderr: String },
}

/// Runs `command` with `sh -c` in a process group of its own, the node's variables in its environment,
/// stdout discarded and stderr kept; kills the whole group after `timeout`.
fn run_command(command: &str, node: &Node, timeout: Duration) -> Result<Ran> {
    use std::os::unix::process::{CommandExt, ExitStatusExt};
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(command)
        .envs(output::node_env(node))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .context("starting sh")?;
    let mut pipe = child
        .stderr
        .take()
        .context("reading the command's stderr")?;
    // Read stderr on the side, so that a chatty command cannot block on a full pipe; at most 64 KiB.
    let reader = std::thread::spawn(move || {
        let mut text = Vec::new();
        let _ = pipe.by_ref().take(64 * 1024).read_to_end(&mut text);
        String::from_utf8_lossy(&text).into_owned()
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break Some(status);
        }
        if Instant::now() >= deadline {
            break None;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let status = match status {
        Some(status) => status,
        None => {
            // The whole group: a shell's children (ipmitool, curl) would keep the pipe open otherwise.
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", child.id())])
                .stderr(Stdio::null())
                .status();
            let _ = child.wait();
            let stderr = reader.join().unwrap_or_default();
            return Ok(Ran::TimedOut { stderr });
        }
    };
    // The group may outlive the shell (a background child): stop it too, so the pipe closes.
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{}", child.id())])
        .stderr(Stdio::null())
        .status();
    let stderr = reader.join().unwrap_or_default();
    if status.success() {
        return Ok(Ran::Passed);
    }
    let status = match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit {code}"),
        (None, Some(signal)) => format!("killed by signal {signal}"),
        (None, None) => "failed".to_owned(),
    };
    Ok(Ran::Failed { status, stderr })
}

/// Every credential of `node`: the values of its secret keys, wherever they are.
fn node_secrets(node: &Node) -> Vec<String> {
    let mut secrets = secret_values(&node.driver_info);
    secrets.extend(secret_values(&node.properties));
    secrets.extend(secret_values(&node.ironic_fields));
    secrets
}

/// The maintenance reason: `what` and the first non-empty line of `stderr`, with every secret replaced by
/// `***`, control characters escaped, at most 300 characters.
fn reason(what: &str, stderr: &str, secrets: &[String]) -> String {
    let first = stderr
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or_default();
    let text = if first.is_empty() {
        what.to_owned()
    } else {
        format!("{what}: {first}")
    };
    let text = crate::domain::escape_controls(&mask_all(&text, secrets));
    text.chars().take(300).collect()
}

/// `text` with every one of `secrets` replaced by `***`, longest first, however short: a BMC password
/// of three characters must not show in a reason either (`error::redact`, for error lines, leaves
/// secrets under four characters alone so that messages stay readable).
fn mask_all(text: &str, secrets: &[String]) -> String {
    let mut secrets: Vec<&String> = secrets.iter().filter(|s| !s.is_empty()).collect();
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    secrets.into_iter().fold(text.to_owned(), |text, secret| {
        text.replace(secret.as_str(), "***")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reason_masks_every_secret_and_keeps_one_line() {
        let secrets = vec![
            "hunter22".to_owned(),
            "s3cr3t-pw".to_owned(),
            "pw1".to_owned(),
        ];
        let got = reason(
            "health check failed (exit 1)",
            "\n  login hunter22 failed for s3cr3t-pw or pw1\nsecond line hunter22\n",
            &secrets,
        );
        assert_eq!(
            got,
            "health check failed (exit 1): login *** failed for *** or ***"
        );
        assert_eq!(reason("timed out", "", &secrets), "timed out");
    }
}
