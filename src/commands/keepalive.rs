//! `renew OWNER --keep-alive`: the heartbeat of a long job, in the tool rather than in a shell loop that
//! one transient failure ends (under `bash -e` it did, and the lease ran out under a running job).
//!
//! It renews OWNER's lease every `--every` until one of these, each with its exit code:
//!
//! - **0, released**: every node OWNER held at the previous renew has since been given back by a plain
//!   `release` (the job's own clean-up), so there is nothing left to keep alive.
//! - **0, parent gone**: the `--while-pid` process has exited (or is a zombie). The nodes are not
//!   released: their lease runs out as the last renew set it and `reap` takes them back.
//! - **4, nothing held**: OWNER holds nothing at the first renew (never allocated, or already reaped).
//! - **4, lease lost**: a node OWNER held at the previous renew was taken by anything but a plain release:
//!   reaped, released by `maintenance --force`, removed, or without any event saying how. It stops at once,
//!   even if OWNER still holds other nodes: the job's machines are no longer all its own.
//! - **5, unreachable**: the database stayed unreachable (or kept timing out) until the lease set by the
//!   last successful renew had run out; before the first success it tries for one `--lease`.
//! - any other error (refused login, unmigrated database, ...) ends it with that error's code.
//!
//! How a hold ended is read from the `events` table: the first event on the node at or after its
//! `allocated_at` that changes the node's state, together with the other events of that same transaction
//! (`events.at` is the transaction time). Only a transaction that did nothing to the node but `release`
//! counts as released; `maintenance --force` writes `force_release` (and `maintenance_on`) instead,
//! so it reads as lost. Holding no connection between renews, it is one process and no daemon: each renew
//! is a fresh connection, a `renew` statement and, only when a node is missing, a read of its events.

use std::time::{Duration, Instant};

use anyhow::Result;
use chrono::{DateTime, Utc};
use diesel::PgConnection;

use super::{Ctx, backoff};
use crate::config::{self, Timeouts};
use crate::domain::{EventAction, timestamp};
use crate::error::{self, Failure, is_transient};
use crate::output::{self, Format};
use crate::store::events::{self, Event};
use crate::store::nodes::{self, Node};

/// The longest default interval between renews.
const MAX_DEFAULT_EVERY: Duration = Duration::from_secs(300);

/// How often the `--while-pid` process is looked at while waiting.
const WATCH_STEP: Duration = Duration::from_millis(100);

/// Actions that leave a node's holder as it was; every other action ends (or may end) a hold.
const KEEPS_HOLDER: &[EventAction] = &[
    EventAction::Add,
    EventAction::Update,
    EventAction::Allocate,
    EventAction::Renew,
    EventAction::SetField,
];

/// The default `--every` for a lease: a third of it (two renews may fail before it runs out), at most
/// five minutes.
pub fn default_every(lease: Duration) -> Duration {
    (lease / 3).min(MAX_DEFAULT_EVERY)
}

/// What `renew OWNER --keep-alive` was asked to do.
pub struct KeepAlive<'a> {
    pub owner: &'a str,
    pub lease: Duration,
    pub every: Option<Duration>,
    pub while_pid: Option<u32>,
}

impl KeepAlive<'_> {
    /// Renews until OWNER holds nothing, the lease is lost, the `--while-pid` process exits or the
    /// database stays unreachable until the lease runs out (see the module doc for the exit codes).
    pub fn run(&self, ctx: &Ctx) -> Result<()> {
        let (owner, lease) = (self.owner, self.lease);
        ctx.format(&[Format::Human])?;
        let every = self.every.unwrap_or_else(|| default_every(lease));
        if every >= lease {
            return Err(Failure::Usage(format!(
                "--every {} must be shorter than --lease {}",
                human(every),
                human(lease)
            ))
            .into());
        }
        let parent = self.while_pid.map(Process::find).transpose()?;
        let secrets = config::secrets([ctx.url.as_str()]);
        let mut held: Option<Vec<Hold>> = None;
        // Until the first renew succeeds the running lease is unknown: try for one --lease.
        let mut deadline = Instant::now() + lease;
        let mut failures = 0u32;
        loop {
            if let Some(parent) = parent.as_ref().filter(|p| !p.is_alive()) {
                return parent_gone(parent);
            }
            let sent = Instant::now();
            let before = held.as_deref().unwrap_or_default();
            let step = match ctx.attempt(|conn| renew(conn, ctx.timeouts(), owner, lease, before)) {
                Ok(step) => step,
                Err((err, _)) if worth_retrying(&err) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Err(err.context(format!(
                            "could not renew {owner}'s lease before it ran out"
                        )));
                    }
                    failures += 1;
                    if failures == 1 {
                        let reason = error::redact(&format!("{err:#}"), &secrets);
                        output::note(&format!(
                            "renewing {owner}'s lease failed ({reason}); retrying until it runs out in {}",
                            human(left)
                        ));
                    }
                    if let Some(parent) = pause(backoff(failures).min(left), parent.as_ref()) {
                        return parent_gone(parent);
                    }
                    continue;
                }
                Err((err, _)) => return Err(err),
            };
            let (released, lost): (Vec<_>, Vec<_>) =
                step.ended.into_iter().partition(|(_, e)| e.is_none());
            if !lost.is_empty() {
                let how: Vec<String> = lost
                    .iter()
                    .map(|(hold, lost)| format!("{} {}", hold.name, lost.as_deref().unwrap_or("")))
                    .collect();
                return Err(Failure::NotFound(format!(
                    "{owner} lost its lease: {}",
                    how.join(", ")
                ))
                .into());
            }
            if step.renewed.is_empty() {
                if held.is_none() {
                    return Err(Failure::NotFound(format!("{owner} holds no nodes")).into());
                }
                output::note(&format!(
                    "{owner} released its nodes; nothing left to keep alive"
                ));
                return Ok(());
            }
            let names = list(step.renewed.iter().map(|n| n.name.as_str()));
            if held.is_none() {
                output::note(&format!(
                    "keeping {owner}'s lease on {names} alive: renewing it to {} every {}",
                    human(lease),
                    human(every)
                ));
            } else if !released.is_empty() {
                let gone = list(released.iter().map(|(h, _)| h.name.as_str()));
                output::note(&format!("{owner} released {gone}; still renewing {names}"));
            }
            if failures > 0 {
                output::note(&format!(
                    "renewed {owner}'s lease again after {failures} failed attempt(s)"
                ));
                failures = 0;
            }
            held = Some(step.renewed.iter().map(Hold::of).collect());
            deadline = sent + lease;
            let next = (sent + every).saturating_duration_since(Instant::now());
            if let Some(parent) = pause(next, parent.as_ref()) {
                return parent_gone(parent);
            }
        }
    }
}

/// One node as OWNER held it: the same id with another `allocated_at` is another hold.
#[derive(Debug, Clone)]
struct Hold {
    id: i64,
    name: String,
    allocated_at: Option<DateTime<Utc>>,
}

impl Hold {
    fn of(node: &Node) -> Hold {
        Hold {
            id: node.id,
            name: node.name.clone(),
            allocated_at: node.allocated_at,
        }
    }

    fn is(&self, node: &Node) -> bool {
        self.id == node.id && self.allocated_at == node.allocated_at
    }
}

/// One renew: the nodes renewed, and each earlier hold that is gone with how it ended (`None`: released
/// by a plain `release`; `Some(how)`: lost).
struct Step {
    renewed: Vec<Node>,
    ended: Vec<(Hold, Option<String>)>,
}

/// Renews OWNER's lease and, for each hold of `before` that is gone, reads how it ended. Safe to repeat.
fn renew(
    conn: &mut PgConnection,
    timeouts: Timeouts,
    owner: &str,
    lease: Duration,
    before: &[Hold],
) -> Result<Step> {
    let renewed = nodes::renew(conn, timeouts, owner, lease.as_secs_f64())?;
    let mut ended = Vec::new();
    for hold in before.iter().filter(|h| !renewed.iter().any(|n| h.is(n))) {
        let how = match hold.allocated_at {
            None => Some("(no allocation time to look up)".to_owned()),
            Some(since) => lost_how(&events::of_node_since(
                conn,
                hold.id,
                since,
                KEEPS_HOLDER,
                20,
            )?),
        };
        ended.push((hold.clone(), how));
    }
    Ok(Step { renewed, ended })
}

/// How a hold ended, from the node's state-changing events since its allocation, oldest first: `None`
/// when the first such transaction did nothing but `release`, else what it did.
fn lost_how(changes: &[Event]) -> Option<String> {
    let Some(first) = changes.first() else {
        return Some("(no event records how)".to_owned());
    };
    let same: Vec<&Event> = changes.iter().take_while(|e| e.at == first.at).collect();
    if same.iter().all(|e| e.action == EventAction::Release) {
        return None;
    }
    let actions: Vec<&str> = same.iter().map(|e| e.action.as_str()).collect();
    Some(format!(
        "({} at {})",
        actions.join(" + "),
        timestamp(first.at)
    ))
}

/// Whether a failed renew is worth trying again: the database is unreachable or restarting, the
/// connection was lost, or the renew waited too long for a lock or a statement (a busy server).
fn worth_retrying(err: &anyhow::Error) -> bool {
    is_transient(err)
        || err.chain().any(|cause| {
            let text = cause.to_string();
            text.contains("canceling statement due to lock timeout")
                || text.contains("canceling statement due to statement timeout")
        })
}

/// The `--while-pid` process, told apart from a later one with the same PID by its start time.
#[derive(Debug)]
struct Process {
    pid: u32,
    started: u64,
}

impl Process {
    /// The live process `pid`; a usage error when there is none, or no /proc to watch it through.
    fn find(pid: u32) -> Result<Process> {
        if start_time("self").is_none() {
            return Err(Failure::Usage("--while-pid needs /proc (Linux)".to_owned()).into());
        }
        match start_time(&pid.to_string()) {
            Some(started) => Ok(Process { pid, started }),
            None => Err(Failure::Usage(format!(
                "--while-pid {pid}: no such process, or it has already exited"
            ))
            .into()),
        }
    }

    fn is_alive(&self) -> bool {
        start_time(&self.pid.to_string()) == Some(self.started)
    }
}

/// The start time (field 22 of /proc/PID/stat) of a process that has not exited; `None` when there is
/// no such process or it is a zombie waiting for its parent.
fn start_time(pid: &str) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may contain anything: count from its end.
    let fields: Vec<&str> = stat
        .get(stat.rfind(')')? + 1..)?
        .split_whitespace()
        .collect();
    if matches!(fields.first(), Some(&("Z" | "X" | "x"))) {
        return None;
    }
    fields.get(19)?.parse().ok()
}

/// Sleeps for `duration`, looking at `parent` every [`WATCH_STEP`]; returns it if it has exited.
fn pause(duration: Duration, parent: Option<&Process>) -> Option<&Process> {
    let until = Instant::now() + duration;
    loop {
        if let Some(parent) = parent.filter(|p| !p.is_alive()) {
            return Some(parent);
        }
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return None;
        }
        std::thread::sleep(if parent.is_some() {
            left.min(WATCH_STEP)
        } else {
            left
        });
    }
}

fn parent_gone(parent: &Process) -> Result<()> {
    output::note(&format!(
        "process {} has exited; no longer renewing (the lease runs out as last renewed)",
        parent.pid
    ));
    Ok(())
}

fn list<'a>(names: impl Iterator<Item = &'a str>) -> String {
    names.collect::<Vec<_>>().join(", ")
}

/// A duration for people: to the millisecond under ten seconds, else to the second.
fn human(duration: Duration) -> String {
    let whole = Duration::from_secs(duration.as_secs());
    let rounded = if duration < Duration::from_secs(10) {
        whole + Duration::from_millis(duration.subsec_millis().into())
    } else {
        whole
    };
    humantime::format_duration(rounded).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_every_is_a_third_of_the_lease_at_most_five_minutes() {
        assert_eq!(
            default_every(Duration::from_secs(3)),
            Duration::from_secs(1)
        );
        assert_eq!(default_every(Duration::from_secs(6000)), MAX_DEFAULT_EVERY);
    }

    #[test]
    fn durations_for_people_drop_what_nobody_reads() {
        assert_eq!(human(Duration::from_micros(1_500_700)), "1s 500ms");
        assert_eq!(human(Duration::from_millis(59_699)), "59s");
    }

    #[test]
    fn this_process_is_alive_and_its_start_time_is_stable() {
        let me = Process::find(std::process::id()).unwrap();
        assert!(me.is_alive());
        assert!(Process::find(u32::MAX).is_err());
    }
}
