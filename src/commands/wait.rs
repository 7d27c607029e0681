//! `allocate --wait`: the waiting process. It joins the line (one request per owner: a re-run joins the
//! same request and keeps its place), then holds one idle connection and, every `poll_interval` (with
//! jitter) or when woken by NOTIFY, says it is alive, looks at its request, and serves the line if nobody
//! else is (`queue::serve`). The nodes are allocated to it by whichever process served the line; it picks
//! them up, or withdraws its request on timeout or a signal. No transaction stays open while it waits.
//!
//! Guarantees, each proven by a test in tests/it/queue.rs: a timeout withdraws the request and exits 3
//! (`queue::a_waiter_times_out_with_exit_3_and_leaves_the_line`); SIGTERM withdraws it and exits 143 holding
//! nothing (`queue::sigterm_withdraws_the_request_and_exits_143_holding_nothing`); a killed waiter stops
//! blocking the line within waiter_timeout (`queue::a_killed_waiter_leaves_the_line_within_waiter_timeout`);
//! `release OWNER` withdraws it (`queue::release_withdraws_a_waiting_request`).

use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Result;
use diesel::PgConnection;
use diesel::connection::Connection;
use serde_json::json;

use super::Ctx;
use crate::config::{Config, Timeouts};
use crate::db;
use crate::domain::EventAction;
use crate::error::{Failure, is_transient};
use crate::output::{self, short_duration};
use crate::pool::{self, Outcome, Request};
use crate::queue;
use crate::store::nodes::{self, Node};
use crate::store::queue as line;
use crate::store::queue::{Beat, NewRequest};

/// How often the waiting loop looks for a signal and a notification (a cheap non-blocking read).
const TICK: Duration = Duration::from_millis(5);

/// How often the progress line is repeated when nothing changed (on a terminal it is redrawn instead).
const PROGRESS_EVERY: Duration = Duration::from_secs(60);

/// Why the allocate could not be granted at once: what its exit 3 said (`found`, and the note after it).
#[derive(Debug, Clone, Default)]
pub struct Refusal {
    pub found: i64,
    pub why: String,
}

/// How a wait ended well.
pub enum Waited {
    /// Granted in line and picked up: these nodes.
    Nodes(Vec<Node>),
    /// The owner held nodes when it came to join (another allocate of the same owner at that moment):
    /// what an allocate decides now, for the caller to report as usual.
    Decided(Outcome),
}

/// Waits in line for `request` for at most `timeout`; returns the nodes once granted and picked up.
/// On timeout it exits 3 with `refusal`'s message and how long it waited; on withdrawal exit 3 saying
/// why; on SIGINT/SIGTERM/SIGHUP 128 + signal (request withdrawn, nothing held).
pub fn wait_in_line(
    ctx: &Ctx,
    request: &Request,
    timeout: Duration,
    refusal: &Refusal,
) -> Result<Waited> {
    let signal = Arc::new(AtomicUsize::new(0));
    for sig in [
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGHUP,
    ] {
        signal_hook::flag::register_usize(sig, Arc::clone(&signal), sig as usize)?;
    }
    let mut waiter = Waiter {
        ctx,
        request,
        signal,
        conn: None,
        id: 0,
        started: Instant::now(),
        progress: Progress::new(),
        lost: false,
        picked_up: false,
    };
    let deadline = waiter.started + timeout;
    let Some(id) = waiter.join()? else {
        // The owner came to hold nodes between the refusal and joining: decide again, as an allocate
        // would now (the same request gets them back, another one conflicts).
        let outcome =
            ctx.with_db_repeatable(|conn| Ok(pool::take(conn, ctx.timeouts(), request)?))?;
        return Ok(Waited::Decided(outcome));
    };
    waiter.id = id;
    let mut next_poll = Instant::now();
    loop {
        if let Some(sig) = waiter.signalled() {
            return Err(waiter.interrupted(sig));
        }
        if Instant::now() >= deadline {
            return waiter.time_out(refusal).map(Waited::Nodes);
        }
        // A notification follows a process that just served the line: look at the request, but do not
        // serve again (every waiter wakes at once). The timer's polls serve, and keep their own pace.
        let woken = waiter.woken();
        let due = Instant::now() >= next_poll;
        if woken || due {
            if let Some(found) = waiter.poll(due)? {
                return waiter.finish(found).map(Waited::Nodes);
            }
            if due {
                next_poll = Instant::now() + jitter(ctx.config.poll_interval);
            }
        }
        std::thread::sleep(TICK);
    }
}

/// What a poll found out.
enum Found {
    /// The request was granted and picked up: these nodes.
    Nodes(Vec<Node>),
    /// The request left the line without nodes, for this reason.
    Withdrawn(String),
}

struct Waiter<'a> {
    ctx: &'a Ctx,
    request: &'a Request<'a>,
    signal: Arc<AtomicUsize>,
    conn: Option<PgConnection>,
    id: i64,
    started: Instant,
    progress: Progress,
    /// Whether the database was unreachable at the last attempt (said once per outage).
    lost: bool,
    /// Whether this process took its granted nodes (a signal after that gives them back).
    picked_up: bool,
}

impl Waiter<'_> {
    fn config(&self) -> &Config {
        &self.ctx.config
    }

    /// The connection, opened (and LISTENing, when configured) if there is none.
    fn conn(&mut self) -> Result<&mut PgConnection> {
        if self.conn.is_none() {
            let mut conn = db::connect(&self.ctx.url, self.config())?;
            conn.set_prepared_statement_cache_size(diesel::connection::CacheSize::Disabled);
            if self.config().listen {
                line::listen(&mut conn)?;
            }
            self.conn = Some(conn);
        }
        self.conn
            .as_mut()
            .ok_or_else(|| anyhow::anyhow!("no database connection"))
    }

    /// Runs `body` on the connection; a transient failure drops the connection and returns `None` (the
    /// next poll reconnects), said once per outage.
    fn with_conn<T>(
        &mut self,
        body: impl FnOnce(&mut PgConnection) -> Result<T>,
    ) -> Result<Option<T>> {
        let result = match self.conn() {
            Ok(conn) => body(conn).map_err(|e| db::explain(conn, e)),
            Err(e) => Err(e),
        };
        match result {
            Ok(value) => {
                if self.lost {
                    self.lost = false;
                    output::note("the database is back; still waiting in line");
                }
                Ok(Some(value))
            }
            Err(e) if is_transient(&e) => {
                self.conn = None;
                if !self.lost {
                    self.lost = true;
                    output::note(&format!(
                        "lost the database while waiting ({}); trying again every {}",
                        self.ctx.cause(&e),
                        short_duration(self.config().poll_interval.as_secs().max(1) as i64)
                    ));
                }
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// Joins the line (or the owner's request already in it) and serves the line once; returns the
    /// request's id, or `None` when the owner holds nodes (an allocate of the same owner got them since
    /// this one was refused): it does not join then. Retries a transient failure within the retry budget
    /// like any command.
    fn join(&mut self) -> Result<Option<i64>> {
        let request = self.request;
        let filter = request.filter.to_json();
        let waiter = format!("{} pid {}", db::application_name(), std::process::id());
        let waiter = waiter.trim_start_matches("molteniron ").to_owned();
        let new = NewRequest {
            owner: request.owner,
            request: &filter,
            count: i32::try_from(request.count).unwrap_or(i32::MAX),
            priority: request.priority,
            lease_secs: request.lease_secs,
            stale_after_secs: self.config().waiter_timeout.as_secs_f64(),
            waiter: &waiter,
        };
        let timeouts = self.ctx.timeouts();
        let enqueued = self.ctx.with_db_repeatable(|conn| {
            let enqueued = db::transaction(conn, timeouts, |conn| {
                let Some(enqueued) = line::enqueue(conn, &new)? else {
                    return Ok(None);
                };
                if enqueued.inserted {
                    let mut detail = json!({
                        "request": enqueued.id,
                        "count": request.count,
                        "priority": request.priority,
                    });
                    if let Some(pool) = &request.filter.pool {
                        detail["pool"] = json!(pool);
                    }
                    let filters = request.filter.describe();
                    if !filters.is_empty() {
                        detail["filters"] = json!(filters);
                    }
                    line::record(conn, request.owner, EventAction::Enqueue, detail)?;
                }
                Ok::<_, diesel::result::Error>(Some(enqueued))
            })?;
            let Some(enqueued) = enqueued else {
                return Ok(None);
            };
            if enqueued.request != filter || i64::from(enqueued.count) != request.count {
                return Err(Failure::Conflict(format!(
                    "{} already waits in line for another request ({} node(s)); release {} to withdraw it",
                    request.owner, enqueued.count, request.owner
                ))
                .into());
            }
            queue::serve(conn, timeouts, true)?;
            Ok(Some(enqueued))
        })?;
        let Some(enqueued) = enqueued else {
            return Ok(None);
        };
        if !enqueued.inserted {
            output::note(&format!(
                "{} already waits in line; joining its request (it keeps its place)",
                request.owner
            ));
        }
        Ok(Some(enqueued.id))
    }

    /// Which signal arrived, if one did.
    fn signalled(&self) -> Option<i32> {
        match self.signal.load(Ordering::SeqCst) {
            0 => None,
            sig => Some(i32::try_from(sig).unwrap_or(signal_hook::consts::SIGTERM)),
        }
    }

    /// Whether a notification arrived (the line may have moved). A broken connection counts as woken, so
    /// the poll that follows finds out and reconnects.
    fn woken(&mut self) -> bool {
        let Some(conn) = self.conn.as_mut() else {
            return false;
        };
        let mut woken = false;
        for notification in conn.notifications_iter() {
            woken = true;
            if notification.is_err() {
                break;
            }
        }
        woken
    }

    /// Says the process is alive, looks at the request, and (with `serve`) serves the line if nobody
    /// else is.
    fn poll(&mut self, serve: bool) -> Result<Option<Found>> {
        let (id, timeouts) = (self.id, self.ctx.timeouts());
        let beat = self.with_conn(|conn| Ok(line::heartbeat(conn, timeouts, id)?))?;
        let Some(beat) = beat else {
            return Ok(None);
        };
        match beat {
            None => self.gone().map(Some),
            Some(Beat {
                state: crate::domain::RequestState::Granted,
                ..
            }) => self.pick_up(),
            Some(Beat { ahead, .. }) => {
                self.progress.show(self.request, ahead, self.started);
                if !serve {
                    return Ok(None);
                }
                let served = self.with_conn(|conn| Ok(queue::serve(conn, timeouts, false)?))?;
                if served.is_some_and(|s| s.granted > 0) {
                    // Perhaps to this request: look again at once.
                    return self.poll_granted();
                }
                Ok(None)
            }
        }
    }

    /// After serving the line granted something: picks up this request's nodes if they were its.
    fn poll_granted(&mut self) -> Result<Option<Found>> {
        let (id, timeouts) = (self.id, self.ctx.timeouts());
        let beat = self.with_conn(|conn| Ok(line::heartbeat(conn, timeouts, id)?))?;
        match beat {
            Some(Some(Beat {
                state: crate::domain::RequestState::Granted,
                ..
            })) => self.pick_up(),
            _ => Ok(None),
        }
    }

    /// Takes the granted nodes: deletes the request and reads what the owner holds. All or nothing: if
    /// some were taken from the owner between the grant and now (a forced maintenance, a reap), the rest
    /// are given back and the request counts as withdrawn.
    fn pick_up(&mut self) -> Result<Option<Found>> {
        let (id, owner, count) = (self.id, self.request.owner, self.request.count);
        let timeouts = self.ctx.timeouts();
        let picked = self.with_conn(|conn| {
            Ok(db::transaction(conn, timeouts, |conn| {
                if !line::pick_up(conn, id)? {
                    return Ok(None);
                }
                all_or_none(conn, timeouts, owner, id, count).map(Some)
            })?)
        })?;
        match picked {
            None => Ok(None),
            Some(Some(Some(nodes))) => {
                self.picked_up = true;
                Ok(Some(Found::Nodes(nodes)))
            }
            Some(Some(None)) => Ok(Some(Found::Withdrawn("incomplete".to_owned()))),
            // Withdrawn between the heartbeat and the pick-up.
            Some(None) => self.gone().map(Some),
        }
    }

    /// The request is gone: withdrawn (its event says why), or picked up by another process of the same
    /// owner (then the owner holds the nodes, and this process returns them too).
    fn gone(&mut self) -> Result<Found> {
        let (id, owner) = (self.id, self.request.owner);
        let seen = self.ctx.read(|conn| {
            let reason = line::withdraw_reason(conn, owner, id)?;
            let held = nodes::held_by(conn, owner)?;
            Ok((reason, held))
        })?;
        match seen {
            (Some(reason), held) => {
                if !held.is_empty() && reason == "release" {
                    // `release OWNER` raced with the grant: the owner asked to hold nothing.
                    self.ctx.with_db_repeatable(|conn| {
                        Ok(nodes::release(
                            conn,
                            self.ctx.timeouts(),
                            owner,
                            None,
                            crate::domain::NodeState::Ready,
                            None,
                        )?)
                    })?;
                }
                Ok(Found::Withdrawn(reason))
            }
            (None, held) if !held.is_empty() => Ok(Found::Nodes(held)),
            (None, _) => Ok(Found::Withdrawn("gone".to_owned())),
        }
    }

    /// The end of the wait: the nodes, or exit 3 for a withdrawn request. A signal that arrived while the
    /// nodes were being picked up gives them back.
    fn finish(&mut self, found: Found) -> Result<Vec<Node>> {
        self.progress.done();
        match found {
            Found::Nodes(nodes) => {
                if let Some(sig) = self.signalled() {
                    return Err(self.interrupted(sig));
                }
                Ok(nodes)
            }
            Found::Withdrawn(reason) => {
                let why = match reason.as_str() {
                    "release" => format!("`release {}` withdrew it", self.request.owner),
                    "waiter gone" => format!(
                        "this process could not reach the database for longer than waiter_timeout ({}), \
                         so it was taken out of the line",
                        short_duration(self.config().waiter_timeout.as_secs() as i64)
                    ),
                    "incomplete" => {
                        "some of its nodes were taken from it before it could pick them up \
                                     (a forced maintenance or a reap); the rest were given back"
                            .to_owned()
                    }
                    other => format!("it was withdrawn ({other})"),
                };
                Err(Failure::NotEnough {
                    found: 0,
                    requested: self.request.count,
                    why: format!(
                        " (the request left the line after {}: {why})",
                        waited(self.started)
                    ),
                }
                .into())
            }
        }
    }

    /// Timeout: withdraws the request, unless it was granted at that instant (then the nodes are taken).
    fn time_out(&mut self, refusal: &Refusal) -> Result<Vec<Node>> {
        let (id, owner, timeouts) = (self.id, self.request.owner, self.ctx.timeouts());
        let withdrawn = self.ctx.with_db_repeatable(|conn| {
            Ok(db::transaction(conn, timeouts, |conn| {
                line::withdraw(conn, id, "timeout")
            })?)
        })?;
        match withdrawn {
            Some(w) if w.state == crate::domain::RequestState::Waiting => {
                self.progress.done();
                Err(Failure::NotEnough {
                    found: refusal.found,
                    requested: self.request.count,
                    why: format!("{} (waited {})", refusal.why, waited(self.started)),
                }
                .into())
            }
            Some(_) => {
                // Granted at the last moment: withdrawing it took it, so its nodes are this process's,
                // all of them or none (as at a pick-up).
                let count = self.request.count;
                let nodes = self.ctx.with_db_repeatable(|conn| {
                    Ok(all_or_none(conn, timeouts, owner, id, count)?)
                })?;
                match nodes {
                    Some(nodes) => {
                        self.picked_up = true;
                        self.finish(Found::Nodes(nodes))
                    }
                    None => self.finish(Found::Withdrawn("incomplete".to_owned())),
                }
            }
            None => {
                let found = self.gone()?;
                self.finish(found)
            }
        }
    }

    /// A signal: withdraws the request and gives back any nodes it was granted at that instant (with
    /// their events), then the error that exits 128 + signal.
    fn interrupted(&mut self, sig: i32) -> anyhow::Error {
        self.progress.done();
        let (id, owner, picked_up) = (self.id, self.request.owner, self.picked_up);
        let (name, timeouts) = (signal_name(sig), self.ctx.timeouts());
        let cleanup = self.ctx.with_db_repeatable(|conn| {
            // Withdraw and give back in one transaction that waits for nothing but the request's own
            // row; serve the line only after it committed (waiting for the line's lock while holding
            // the row would deadlock with a process serving the line that is granting this row).
            db::transaction(conn, timeouts, |conn| {
                let withdrawn = line::withdraw(conn, id, "signal")?;
                // Give back only nodes granted to this request: granted just now (still a row), or
                // already picked up by this process. A request gone otherwise was taken by another
                // process of the same owner, whose nodes are not this process's to release.
                let granted = picked_up
                    || withdrawn.is_some_and(|w| w.state == crate::domain::RequestState::Granted);
                if granted {
                    let ready = crate::domain::NodeState::Ready;
                    let released = nodes::release(conn, timeouts, owner, None, ready, None)?;
                    if !released.released.is_empty() {
                        let detail = json!({"request": id, "reason": "signal", "released": released.released.len()});
                        line::record(conn, owner, EventAction::Withdraw, detail)?;
                    }
                }
                Ok::<_, diesel::result::Error>(())
            })?;
            queue::serve(conn, timeouts, true)?;
            Ok(())
        });
        let message = match cleanup {
            Ok(()) => format!(
                "interrupted by {name} while waiting in line; the request was withdrawn and {owner} holds nothing"
            ),
            Err(e) => format!(
                "interrupted by {name} while waiting in line; could not withdraw the request ({}): it \
                 leaves the line within waiter_timeout",
                self.ctx.cause(&e)
            ),
        };
        Failure::Interrupted {
            signal: sig,
            message,
        }
        .into()
    }
}

/// The nodes `owner` holds for request `id` once it was granted: all `count` of them, or none (some
/// were taken from the owner before the pick-up, by a forced maintenance or a reap): then the rest are
/// given back and the request counts as withdrawn ("incomplete").
fn all_or_none(
    conn: &mut PgConnection,
    timeouts: Timeouts,
    owner: &str,
    id: i64,
    count: i64,
) -> diesel::QueryResult<Option<Vec<Node>>> {
    let held = nodes::held_by(conn, owner)?;
    if held.len() as i64 == count {
        return Ok(Some(held));
    }
    nodes::release(
        conn,
        timeouts,
        owner,
        None,
        crate::domain::NodeState::Ready,
        None,
    )?;
    let detail = json!({"request": id, "reason": "incomplete", "held": held.len()});
    line::record(conn, owner, EventAction::Withdraw, detail)?;
    Ok(None)
}

/// The stderr progress of a waiting allocate: a line when it starts waiting, then one a minute and
/// whenever its place changes; on a terminal, one line redrawn in place.
struct Progress {
    terminal: bool,
    last: Option<(i64, Instant)>,
    drawn: bool,
}

impl Progress {
    fn new() -> Progress {
        Progress {
            terminal: std::io::stderr().is_terminal(),
            last: None,
            drawn: false,
        }
    }

    fn show(&mut self, request: &Request, ahead: i64, started: Instant) {
        let now = Instant::now();
        let due = match self.last {
            None => true,
            Some((was, at)) => {
                was != ahead || now.duration_since(at) >= PROGRESS_EVERY || self.terminal
            }
        };
        if !due {
            return;
        }
        let first = self.last.is_none();
        self.last = Some((ahead, now));
        let place = format!(
            "position {} ({} request{} ahead)",
            ahead + 1,
            ahead,
            if ahead == 1 { "" } else { "s" }
        );
        let text = if first {
            format!(
                "waiting in line for {} node(s) of {}: {place}",
                request.count,
                request.filter.scope()
            )
        } else {
            format!("still waiting after {}: {place}", waited(started))
        };
        if self.terminal {
            let _ = write!(std::io::stderr().lock(), "\r\x1b[Kmolteniron: {text}");
            self.drawn = true;
        } else {
            output::note(&text);
        }
    }

    /// Ends the redrawn line on a terminal.
    fn done(&mut self) {
        if self.drawn {
            let _ = writeln!(std::io::stderr().lock());
            self.drawn = false;
        }
    }
}

/// How long since `started`, for people: `45s`, `30m`, `2h5m`.
fn waited(started: Instant) -> String {
    short_duration(started.elapsed().as_secs() as i64)
}

/// `interval` drawn between 75 % and 125 %, so that many waiters do not poll in step.
fn jitter(interval: Duration) -> Duration {
    interval.mul_f64(0.75 + super::random_fraction() / 2.0)
}

fn signal_name(sig: i32) -> &'static str {
    match sig {
        signal_hook::consts::SIGINT => "SIGINT",
        signal_hook::consts::SIGHUP => "SIGHUP",
        _ => "SIGTERM",
    }
}
