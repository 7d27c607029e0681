//! Chaos: many molteniron processes allocate (some waiting in line), renew, release, reap and toggle
//! maintenance at random while the harness SIGKILLs some of them mid-command (waiters included),
//! terminates their sessions from the server side, and restarts the server (fast and immediate) with
//! commands in flight. Afterwards the database must prove: no node was ever held by two owners at once;
//! every node's state and owner agree with its last event; no node was lost or duplicated; every command
//! that exited did so with a documented code, and no output shows a panic, a backtrace or the database
//! password. For the line: once the waiters are gone every request has ended (granted or withdrawn: the
//! table is empty after `reap`); no node is held by an owner whose request was withdrawn after its last
//! allocation; and within a pool no request was granted while one that joined before it still waited.
//!
//! The normal suite runs a short version (seconds). `MOLTENIRON_CHAOS_SECONDS=600 scripts/test chaos`
//! runs a long one and prints its figures.

use std::collections::BTreeMap;
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Nullable, Text};

use crate::concurrency::{all_events, assert_events_never_double_allocate};
use crate::support::{PrivateServer, count, migrate_and_import, molteniron_std};

const PASSWORD: &str = "chaos-Secret-7f3a9";
const POOLS: [&str; 3] = ["p0", "p1", "p2"];
const NODES_PER_POOL: usize = 4;
const OWNERS: usize = 8;

/// A small xorshift generator: reproducible from its seed, no extra crate.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

#[derive(Default)]
struct Figures {
    commands: AtomicUsize,
    killed: AtomicUsize,
    terminated: AtomicUsize,
    restarts: AtomicUsize,
    by_code: Mutex<BTreeMap<i32, usize>>,
    violations: Mutex<Vec<String>>,
}

fn random_command(rng: &mut Rng) -> Vec<String> {
    let owner = format!("job-{}", rng.below(OWNERS));
    let node = format!(
        "{}n{}",
        POOLS[rng.below(POOLS.len())],
        rng.below(NODES_PER_POOL)
    );
    let args: Vec<String> = match rng.below(12) {
        10 | 11 => vec![
            "allocate".into(),
            owner,
            (1 + rng.below(3)).to_string(),
            POOLS[rng.below(POOLS.len())].into(),
            "--lease".into(),
            ["2s", "1h"][rng.below(2)].into(),
            "--wait".into(),
            "--wait-timeout".into(),
            ["1s", "3s"][rng.below(2)].into(),
        ],
        0..=3 => vec![
            "allocate".into(),
            owner,
            (1 + rng.below(3)).to_string(),
            POOLS[rng.below(POOLS.len())].into(),
            "--lease".into(),
            ["1s", "2s", "1h"][rng.below(3)].into(),
        ],
        4 => vec!["renew".into(), owner],
        5 | 6 => vec!["release".into(), owner],
        7 => vec!["reap".into()],
        8 => vec![
            "maintenance".into(),
            node,
            "--reason".into(),
            "chaos".into(),
            "--force".into(),
        ],
        _ => vec!["maintenance".into(), node, "--off".into()],
    };
    args
}

/// Runs one worker: `ops` random commands, one process each, registering each child so the killer can
/// find it.
fn worker(
    url: String,
    config: std::path::PathBuf,
    seed: u64,
    ops: usize,
    children: Arc<Mutex<Vec<u32>>>,
    figures: Arc<Figures>,
) {
    let mut rng = Rng(seed | 1);
    for _ in 0..ops {
        let args = random_command(&mut rng);
        let child: Child = molteniron_std()
            .arg("--database-url")
            .arg(&url)
            .arg("--config")
            .arg(&config)
            .args(["--retries", "2"])
            .args(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        children.lock().unwrap().push(child.id());
        let pid = child.id();
        let out = child.wait_with_output().unwrap();
        children.lock().unwrap().retain(|p| *p != pid);
        figures.commands.fetch_add(1, Ordering::Relaxed);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let mut problems = Vec::new();
        if text.contains(PASSWORD) {
            problems.push("the database password");
        }
        if text.contains("panicked") || text.contains("backtrace") {
            problems.push("a panic or backtrace");
        }
        match out.status.code() {
            // Killed by the harness: no exit code to judge.
            None => {}
            Some(code) => {
                *figures.by_code.lock().unwrap().entry(code).or_default() += 1;
                if ![0, 3, 4, 5, 6].contains(&code) {
                    problems.push("an unexpected exit code");
                }
                if code != 0
                    && !String::from_utf8_lossy(&out.stderr).contains("molteniron: error: ")
                {
                    problems.push("a failure without its error line");
                }
            }
        }
        if !problems.is_empty() {
            figures.violations.lock().unwrap().push(format!(
                "{args:?} -> {:?}: {problems:?}: {text}",
                out.status
            ));
        }
    }
}

#[derive(QueryableByName, Debug, PartialEq)]
struct NodeRow {
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = Text)]
    state: String,
    #[diesel(sql_type = Nullable<Text>)]
    owner: Option<String>,
}

/// Replays the events into (state, owner) per node and compares with the nodes table: no change without
/// its event, no event without its change.
fn assert_state_matches_events(conn: &mut PgConnection, violations: &mut Vec<String>) {
    let events = all_events(conn);
    let mut expected: BTreeMap<i64, (String, Option<String>)> = BTreeMap::new();
    for e in events {
        let state = |s: &str| s.to_owned();
        let next = match e.action.as_str() {
            "add" | "clean" | "maintenance_off" => (state("ready"), None),
            "allocate" => (state("allocated"), e.owner.clone()),
            "release" | "force_release" | "reap" | "health_check" => {
                (e.detail["state"].as_str().unwrap_or("?").to_owned(), None)
            }
            "maintenance_on" | "quarantine" => (state("maintenance"), None),
            _ => continue,
        };
        expected.insert(e.node_id, next);
    }
    let nodes: Vec<NodeRow> = diesel::sql_query("SELECT id, state, owner FROM nodes ORDER BY id")
        .load(conn)
        .unwrap();
    for node in &nodes {
        let want = expected.get(&node.id).cloned();
        if want != Some((node.state.clone(), node.owner.clone())) {
            violations.push(format!(
                "node {} is {:?} but its events say {want:?}",
                node.id, node
            ));
        }
    }
    if nodes.len() != expected.len() {
        violations.push(format!(
            "{} nodes but events for {}",
            nodes.len(),
            expected.len()
        ));
    }
}

#[derive(QueryableByName, Debug)]
struct Trail {
    #[diesel(sql_type = Text)]
    owner: String,
    #[diesel(sql_type = Text)]
    trail: String,
}

#[derive(QueryableByName, Debug)]
struct QueueEvent {
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = Text)]
    action: String,
    #[diesel(sql_type = BigInt)]
    request: i64,
    #[diesel(sql_type = Nullable<Text>)]
    pool: Option<String>,
}

/// The line's invariants, from the requests table and the events: no request is left once its waiters
/// are gone; no owner holds nodes its withdrawn request would have had; and within a pool (where every
/// node suits every request: chaos uses no filters), no request was granted while a request that joined
/// the line before it was still waiting.
fn assert_the_line_ended_in_order(conn: &mut PgConnection, violations: &mut Vec<String>) {
    let left = count(conn, "SELECT count(*) AS n FROM requests");
    if left != 0 {
        violations.push(format!(
            "{left} requests are left in line with no waiter alive"
        ));
    }
    // Each such owner with its trail of events (for the diagnosis: what withdrew, what allocated).
    let held: Vec<Trail> = diesel::sql_query(
        "SELECT n.owner, string_agg(concat_ws(' ', e.id, e.action, e.node_name, e.detail::text), '; '
                                    ORDER BY e.id) AS trail
         FROM (SELECT DISTINCT owner FROM nodes AS n WHERE n.owner IS NOT NULL AND EXISTS (
                   SELECT 1 FROM events AS w WHERE w.action = 'withdraw' AND w.owner = n.owner
                     AND w.id > (SELECT max(a.id) FROM events AS a
                                 WHERE a.action = 'allocate' AND a.owner = n.owner))) AS n
         JOIN events AS e ON e.owner = n.owner
         GROUP BY n.owner",
    )
    .load(conn)
    .unwrap();
    for t in held {
        violations.push(format!(
            "{} holds nodes although its request was withdrawn after its last allocation: {}",
            t.owner, t.trail
        ));
    }
    // enqueue (with its pool), the first allocate of a granted request, withdraw: in commit order.
    let events: Vec<QueueEvent> = diesel::sql_query(
        "SELECT min(id) AS id, action, (detail->>'request')::bigint AS request, min(detail->>'pool') AS pool
         FROM events
         WHERE action IN ('enqueue', 'withdraw') OR (action = 'allocate' AND detail ? 'request')
         GROUP BY action, (detail->>'request')::bigint
         ORDER BY 1",
    )
    .load(conn)
    .unwrap();
    let mut waiting: Vec<(i64, Option<String>)> = Vec::new();
    for e in events {
        match e.action.as_str() {
            "enqueue" => waiting.push((e.request, e.pool)),
            "allocate" => {
                let Some(at) = waiting.iter().position(|(r, _)| *r == e.request) else {
                    continue;
                };
                let pool = waiting[at].1.clone();
                if let Some((ahead, _)) = waiting[..at].iter().find(|(_, p)| *p == pool) {
                    violations.push(format!(
                        "request {} of pool {pool:?} was granted (event {}) while request {ahead}, ahead of it, waited",
                        e.request, e.id
                    ));
                }
                waiting.remove(at);
            }
            _ => waiting.retain(|(r, _)| *r != e.request),
        }
    }
}

fn chaos(duration: Duration, workers: usize) -> Figures {
    let server = PrivateServer::init(false);
    server.start();
    server.require_password(PASSWORD);
    let url = format!(
        "postgres://molteniron:{PASSWORD}@127.0.0.1:{}/postgres?sslmode=disable",
        server.port
    );
    let mut yaml = String::from("nodes:\n");
    for (p, pool) in POOLS.iter().enumerate() {
        for i in 0..NODES_PER_POOL {
            yaml.push_str(&format!(
                "  - {{name: {pool}n{i}, pool: {pool}, driver_info: {{ipmi_address: 10.7.{p}.{i}, ipmi_password: bmc-{p}-{i}}}}}\n"
            ));
        }
    }
    migrate_and_import(&url, &yaml);
    // Waiters poll fast and count as gone after 2 s of silence.
    let config = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(config.path(), "poll_interval: 100ms\nwaiter_timeout: 2s\n").unwrap();

    let figures = Arc::new(Figures::default());
    let children = Arc::new(Mutex::new(Vec::<u32>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    eprintln!("chaos seed {seed}");
    let start = Instant::now();
    let handles: Vec<_> = (0..workers)
        .map(|w| {
            let (url, children, figures, stop) =
                (url.clone(), children.clone(), figures.clone(), stop.clone());
            let config = config.path().to_owned();
            let seed = seed.wrapping_add(w as u64 * 0x9e37_79b9);
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    worker(
                        url.clone(),
                        config.clone(),
                        seed.wrapping_add(figures.commands.load(Ordering::Relaxed) as u64),
                        10,
                        children.clone(),
                        figures.clone(),
                    );
                }
            })
        })
        .collect();

    // The harness: kill, terminate, restart, at random moments, until the time is up.
    let mut rng = Rng(seed ^ 0xdead_beef);
    let mut restarts_done = 0;
    while start.elapsed() < duration || restarts_done < 2 {
        std::thread::sleep(Duration::from_millis(50 + rng.below(150) as u64));
        match rng.below(10) {
            0..=4 => {
                let victim = {
                    let list = children.lock().unwrap();
                    if list.is_empty() {
                        None
                    } else {
                        Some(list[rng.below(list.len())])
                    }
                };
                if let Some(pid) = victim {
                    // The victim may have finished meanwhile: then kill fails, quietly.
                    let killed = std::process::Command::new("kill")
                        .args(["-9", &pid.to_string()])
                        .stderr(Stdio::null())
                        .status();
                    if killed.is_ok_and(|s| s.success()) {
                        figures.killed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            5..=7 => {
                if let Ok(mut conn) = PgConnection::establish(&server.socket_url("postgres")) {
                    let n = count(
                        &mut conn,
                        "SELECT count(pg_terminate_backend(pid)) AS n FROM (SELECT pid FROM pg_stat_activity \
                         WHERE application_name LIKE 'molteniron %' ORDER BY random() LIMIT 1) AS s",
                    );
                    figures.terminated.fetch_add(n as usize, Ordering::Relaxed);
                }
            }
            _ => {
                // At least one fast and one immediate restart, more in a long run.
                if restarts_done < 2 || rng.below(4) == 0 {
                    server.stop(if restarts_done % 2 == 0 {
                        "fast"
                    } else {
                        "immediate"
                    });
                    std::thread::sleep(Duration::from_millis(100 + rng.below(400) as u64));
                    server.start();
                    restarts_done += 1;
                    figures.restarts.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    for h in handles {
        h.join().unwrap();
    }

    // The verdict, from the database. Every waiter has exited or been killed: after waiter_timeout, one
    // reap (which serves the line) must leave no request behind.
    std::thread::sleep(Duration::from_millis(2500));
    let out = molteniron_std()
        .args(["--database-url", &url, "--retries", "5", "reap", "--quiet"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let mut conn = PgConnection::establish(&server.socket_url("postgres")).unwrap();
    let mut violations = std::mem::take(&mut *figures.violations.lock().unwrap());
    assert_events_never_double_allocate(&mut conn);
    assert_state_matches_events(&mut conn, &mut violations);
    assert_the_line_ended_in_order(&mut conn, &mut violations);
    let total = count(&mut conn, "SELECT count(*) AS n FROM nodes");
    let distinct = count(&mut conn, "SELECT count(DISTINCT name) AS n FROM nodes");
    if total != (POOLS.len() * NODES_PER_POOL) as i64 || distinct != total {
        violations.push(format!(
            "{total} nodes ({distinct} distinct names) instead of {}",
            POOLS.len() * NODES_PER_POOL
        ));
    }
    *figures.violations.lock().unwrap() = violations;
    Arc::try_unwrap(figures).ok().expect("workers are done")
}

fn report(figures: &Figures, elapsed: Duration) -> String {
    format!(
        "chaos: {:.0}s, {} commands, {} killed, {} sessions terminated, {} server restarts, exit codes {:?}, {} violations",
        elapsed.as_secs_f64(),
        figures.commands.load(Ordering::Relaxed),
        figures.killed.load(Ordering::Relaxed),
        figures.terminated.load(Ordering::Relaxed),
        figures.restarts.load(Ordering::Relaxed),
        figures.by_code.lock().unwrap(),
        figures.violations.lock().unwrap().len(),
    )
}

#[test]
fn chaos_leaves_the_pool_consistent() {
    let seconds: u64 = std::env::var("MOLTENIRON_CHAOS_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(4);
    let start = Instant::now();
    let figures = chaos(Duration::from_secs(seconds), 6);
    let summary = report(&figures, start.elapsed());
    eprintln!("{summary}");
    let violations = figures.violations.lock().unwrap();
    assert!(
        violations.is_empty(),
        "{summary}\n{}",
        violations.join("\n")
    );
    assert!(figures.restarts.load(Ordering::Relaxed) >= 2);
    assert!(figures.commands.load(Ordering::Relaxed) > 20, "{summary}");
}
