//! Many processes of the real binary at once: no node is ever held by two owners, allocators never wait
//! for each other, and the pool ends where it started.

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Jsonb, Nullable, Text};

use crate::support::{TestDb, count};

/// One events row, as the replays read it.
#[derive(QueryableByName, Debug)]
pub struct EventRow {
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    #[diesel(sql_type = BigInt)]
    pub node_id: i64,
    #[diesel(sql_type = Nullable<Text>)]
    pub owner: Option<String>,
    #[diesel(sql_type = Text)]
    pub action: String,
    #[diesel(sql_type = Jsonb)]
    pub detail: serde_json::Value,
}

/// Every events row about a node (not the queue's enqueue and withdraw), oldest first.
pub fn all_events(conn: &mut PgConnection) -> Vec<EventRow> {
    diesel::sql_query(
        "SELECT id, node_id, owner, action, detail FROM events WHERE node_id IS NOT NULL ORDER BY id",
    )
        .load(conn)
        .unwrap()
}

/// Replays the events table in order and asserts that every allocate found its node free and every
/// release, reap or renew came from the node's holder: i.e. no node was ever held by two owners at once.
/// Returns how many allocations it saw.
pub fn assert_events_never_double_allocate(conn: &mut PgConnection) -> usize {
    let events = all_events(conn);
    let mut holder: BTreeMap<i64, String> = BTreeMap::new();
    let mut allocations = 0;
    for e in &events {
        let owner = e.owner.clone().unwrap_or_default();
        match e.action.as_str() {
            "allocate" => {
                if let Some(other) = holder.insert(e.node_id, owner.clone()) {
                    panic!(
                        "event {}: node {} allocated to {owner} while {other} held it",
                        e.id, e.node_id
                    );
                }
                allocations += 1;
            }
            "release" | "force_release" | "reap" | "health_check" => {
                let was = holder.remove(&e.node_id);
                assert_eq!(
                    was.as_deref(),
                    Some(owner.as_str()),
                    "event {}: {} of node {} by a non-holder",
                    e.id,
                    e.action,
                    e.node_id
                );
            }
            "renew" => {
                assert_eq!(
                    holder.get(&e.node_id),
                    Some(&owner),
                    "event {}: renew by a non-holder",
                    e.id
                );
            }
            _ => {}
        }
    }
    allocations
}

fn spawn(db: &TestDb, args: &[&str]) -> Child {
    db.std_cmd()
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Closes the gate of a race: `conn` opens a transaction that never commits and holds the nodes table
/// so that every allocate waits at its first statement until `conn` is dropped or rolled back.
pub fn close_the_gate(conn: &mut PgConnection) {
    conn.begin_test_transaction().unwrap();
    diesel::sql_query("LOCK TABLE nodes IN EXCLUSIVE MODE")
        .execute(conn)
        .unwrap();
}

/// Waits until `n` sessions of this database are blocked on a lock (polling from a connection
/// of its own), so the race starts with every contender in place.
pub fn wait_for_blocked_sessions(db: &TestDb, n: i64) {
    wait_for_blocked(&mut db.conn(), n);
}

/// The same, watching through `watcher`: sessions of its database that wait for a lock (a gate held on
/// a direct connection; the waiting sessions may come through a pooler).
pub fn wait_for_blocked(watcher: &mut PgConnection, n: i64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let blocked = count(
            watcher,
            "SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database() \
             AND wait_event_type = 'Lock'",
        );
        if blocked >= n {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "only {blocked} of {n} sessions reached the gate"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn sixteen_processes_at_a_gate_never_share_a_node() {
    let db = TestDb::new();
    db.seed("n", 8, "default");
    let granted = race_at_a_gate(&db, &[]);
    assert_eq!(granted.len(), 8, "every ready node is handed out once");
}

/// The same race with hardware filters: 16 nodes, 8 of which have 16 cpus; 16 processes ask for one
/// node with `--min-cpus 16`. Each matching node goes to exactly one of them, no other node to anyone.
#[test]
fn sixteen_filtered_processes_at_a_gate_never_share_a_node() {
    let db = TestDb::new();
    db.seed("n", 16, "default");
    let mut conn = db.conn();
    diesel::sql_query(
        "UPDATE nodes SET properties = jsonb_build_object('cpus', CASE WHEN id % 2 = 0 THEN 16 ELSE 8 END)",
    )
    .execute(&mut conn)
    .unwrap();
    let granted = race_at_a_gate(&db, &["--min-cpus", "16"]);
    assert_eq!(granted.len(), 8, "every matching node is handed out once");
    assert_eq!(
        count(
            &mut conn,
            "SELECT count(*) AS n FROM nodes WHERE state = 'allocated' AND (properties->>'cpus')::int <> 16"
        ),
        0,
        "a node that does not match was handed out"
    );
}

/// Waits for `children` (each `allocate OWNER 1 -o json`): the node each granted one got, checked to be
/// a different node each time; every other one must have exited 3.
pub fn granted_once_each(children: Vec<Child>) -> Vec<String> {
    let mut granted = Vec::new();
    for child in children {
        let out = child.wait_with_output().unwrap();
        match out.status.code() {
            Some(0) => {
                let nodes: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
                granted.push(nodes[0]["name"].as_str().unwrap().to_owned());
            }
            Some(3) => {}
            other => panic!(
                "unexpected exit {other:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            ),
        }
    }
    let distinct: BTreeSet<_> = granted.iter().collect();
    assert_eq!(
        distinct.len(),
        granted.len(),
        "a node was handed out twice: {granted:?}"
    );
    granted
}

/// Holds the nodes table behind a gate, starts 16 `allocate job-i 1 FILTERS...` processes, waits until all
/// 16 are blocked, opens the gate, and checks that no node went to two owners (from the output and from
/// the events); the rest exit 3. Returns the nodes granted.
fn race_at_a_gate(db: &TestDb, filters: &[&str]) -> Vec<String> {
    let mut gate = db.conn();
    close_the_gate(&mut gate);
    let children: Vec<Child> = (0..16)
        .map(|i| {
            let owner = format!("job-{i}");
            let mut args = vec!["allocate", owner.as_str(), "1", "-o", "json"];
            args.extend_from_slice(filters);
            spawn(db, &args)
        })
        .collect();
    wait_for_blocked_sessions(db, 16);
    drop(gate); // rolls back the gate transaction: the 16 allocators go at once

    let granted = granted_once_each(children);
    let mut conn = db.conn();
    assert_eq!(
        assert_events_never_double_allocate(&mut conn),
        granted.len()
    );
    assert_eq!(
        count(
            &mut conn,
            "SELECT count(DISTINCT owner) AS n FROM nodes WHERE state = 'allocated'"
        ),
        granted.len() as i64
    );
    granted
}

#[test]
fn sixteen_processes_allocating_and_releasing_in_loops() {
    const PROCESSES: usize = 16;
    const ROUNDS: usize = 12;
    let db = TestDb::new();
    db.seed("n", 6, "default");
    let workers: Vec<_> = (0..PROCESSES)
        .map(|p| {
            let cmd_for = |args: Vec<String>| {
                let mut cmd = db.std_cmd();
                cmd.args(args);
                cmd
            };
            let commands: Vec<_> = (0..ROUNDS)
                .flat_map(|r| {
                    let owner = format!("job-{p}-{r}");
                    let count = (1 + (p + r) % 2).to_string();
                    [
                        cmd_for(vec!["allocate".into(), owner.clone(), count]),
                        cmd_for(vec!["release".into(), owner]),
                    ]
                })
                .collect();
            std::thread::spawn(move || {
                let mut outcomes = BTreeMap::new();
                for mut cmd in commands {
                    let out = cmd.output().unwrap();
                    let code = out.status.code().unwrap_or(-1);
                    assert!(
                        code == 0 || code == 3,
                        "exit {code}: {}",
                        String::from_utf8_lossy(&out.stderr)
                    );
                    *outcomes.entry(code).or_insert(0) += 1;
                }
                outcomes
            })
        })
        .collect();
    let mut successes = 0;
    for worker in workers {
        successes += worker.join().unwrap().get(&0).copied().unwrap_or(0);
    }
    let mut conn = db.conn();
    let allocations = assert_events_never_double_allocate(&mut conn);
    assert!(allocations > 0);
    // Every allocation was released, and every node is back.
    assert_eq!(
        count(
            &mut conn,
            "SELECT count(*) AS n FROM events WHERE action = 'release'"
        ),
        allocations as i64
    );
    assert_eq!(
        count(
            &mut conn,
            "SELECT count(*) AS n FROM nodes WHERE state = 'ready' AND owner IS NULL"
        ),
        6
    );
    assert!(
        successes > PROCESSES * ROUNDS,
        "releases always succeed, so successes exceed the rounds"
    );
}

#[test]
fn allocators_skip_locked_rows_instead_of_waiting() {
    let db = TestDb::new();
    db.seed("n", 3, "default");
    // Another transaction holds the two lowest nodes' rows (as a slow allocator would).
    let mut holder = db.conn();
    holder.begin_test_transaction().unwrap();
    diesel::sql_query("SELECT id FROM nodes WHERE id <= 2 FOR UPDATE")
        .execute(&mut holder)
        .unwrap();

    let wait = |mut child: Child| {
        let deadline = Instant::now() + Duration::from_secs(20);
        while child.try_wait().unwrap().is_none() {
            if Instant::now() > deadline {
                child.kill().unwrap();
                panic!("allocate waited for a locked row instead of skipping it");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        child.wait_with_output().unwrap()
    };
    let out = wait(spawn(&db, &["allocate", "job-1", "1", "-o", "json"]));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let nodes: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(nodes[0]["name"], "n2", "the unlocked node is taken");
    // With every ready row locked, the answer is an immediate "not enough", not a wait.
    let out = wait(spawn(&db, &["allocate", "job-2", "1"]));
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
