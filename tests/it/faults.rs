//! A flaky database: a stopped or restarting server, a terminated session. `--retries` rides out what is
//! transient, and never repeats a command whose effect might already be committed.

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};

use diesel::prelude::*;

use crate::concurrency::wait_for_blocked_sessions;
use crate::support::{PrivateServer, TestDb, count, migrate_and_import, molteniron_std};

fn seed_yaml() -> &'static str {
    "nodes:\n  - {name: n0, driver_info: {ipmi_address: 10.0.0.1}}\n  - {name: n1, driver_info: {ipmi_address: 10.0.0.2}}\n"
}

/// A private server, migrated and seeded, then stopped; and its URL.
fn stopped_server() -> (PrivateServer, String) {
    let server = PrivateServer::init(false);
    server.start();
    let url = server.url("127.0.0.1", "sslmode=disable");
    migrate_and_import(&url, seed_yaml());
    server.stop("fast");
    (server, url)
}

#[test]
fn retries_ride_out_a_server_restart_and_without_them_it_is_exit_5() {
    let (server, url) = stopped_server();

    // Without --retries: exit 5 at once.
    let out = molteniron_std()
        .arg("--database-url")
        .arg(&url)
        .args(["allocate", "job-0"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(5),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // With --retries: the first failure is announced on stderr; then the server comes back.
    let mut child = molteniron_std()
        .arg("--database-url")
        .arg(&url)
        .args(["--retries", "12", "allocate", "job-1", "-o", "json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    assert!(line.contains("retrying in"), "{line}");
    server.start();
    let out = child.wait_with_output().unwrap();
    let mut rest = String::new();
    stderr.read_to_string_lossy(&mut rest);
    assert_eq!(out.status.code(), Some(0), "{line}{rest}");
    let nodes: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(nodes[0]["name"], "n0");
}

/// `--retry-for`: a time budget instead of a count. Against a stopped server the budget runs out (exit 5,
/// each note naming the cause and the time left); a server that comes back within it is used.
#[test]
fn retry_for_is_a_time_budget_and_each_note_names_the_cause() {
    let (server, url) = stopped_server();

    let started = Instant::now();
    let out = molteniron_std()
        .args(["--database-url", &url, "--retry-for", "2s", "status"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(5), "{stderr}");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_secs(2) && waited < Duration::from_secs(8),
        "{waited:?}"
    );
    let notes: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("retrying in"))
        .collect();
    assert!(notes.len() >= 3, "backoff starts at about 100 ms: {stderr}");
    assert!(
        notes[0].contains("(cannot connect to the database: "),
        "{stderr}"
    );
    assert!(notes[0].contains("more)"), "{stderr}");

    let mut child = molteniron_std()
        .args([
            "--database-url",
            &url,
            "--retry-for",
            "60s",
            "allocate",
            "job-1",
            "-o",
            "json",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    assert!(
        line.contains("retrying in") && line.contains("for up to"),
        "{line}"
    );
    server.start();
    let out = child.wait_with_output().unwrap();
    let mut rest = String::new();
    stderr.read_to_string_lossy(&mut rest);
    assert_eq!(out.status.code(), Some(0), "{line}{rest}");
}

/// Reads what is left of a child's stderr.
trait ReadRest {
    fn read_to_string_lossy(&mut self, out: &mut String);
}

impl<R: std::io::Read> ReadRest for BufReader<R> {
    fn read_to_string_lossy(&mut self, out: &mut String) {
        let mut bytes = Vec::new();
        let _ = std::io::Read::read_to_end(self, &mut bytes);
        out.push_str(&String::from_utf8_lossy(&bytes));
    }
}

/// Waits until a molteniron session of `db` is blocked on a lock, then terminates it from the server side.
fn terminate_blocked_session(db: &TestDb) {
    let mut admin = db.conn();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let killed = count(
            &mut admin,
            "SELECT count(pg_terminate_backend(pid)) AS n FROM pg_stat_activity \
             WHERE datname = current_database() AND application_name LIKE 'molteniron %' AND wait_event_type = 'Lock'",
        );
        if killed > 0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "no molteniron session blocked on the lock"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_terminated_session_is_retried_only_by_commands_safe_to_repeat() {
    let db = TestDb::new();
    db.seed("a", 1, "default");
    db.ok(&["allocate", "job-1"]);
    db.ok(&["set-field", "a0", "properties.rack", "r1"]);

    // Hold the node's row so that the next commands block on it.
    let mut holder = db.conn();
    holder.begin_test_transaction().unwrap();
    diesel::sql_query("SELECT id FROM nodes FOR UPDATE")
        .execute(&mut holder)
        .unwrap();

    // set-field could have committed before the connection died: it is not repeated (exit 5).
    let child = db
        .std_cmd()
        .args(["--retries", "5", "set-field", "a0", "rack", "r2"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    terminate_blocked_session(&db);
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(5), "{err}");
    assert!(!err.contains("retrying"), "set-field was repeated: {err}");

    // release is safe to repeat: it is retried, blocks again, and succeeds once the lock goes away.
    let child = db
        .std_cmd()
        .args(["--retries", "5", "release", "job-1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    terminate_blocked_session(&db);
    // Wait for the retry to block on the lock again before letting go.
    wait_for_blocked_sessions(&db, 1);
    drop(holder);
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("retrying in"), "{err}");
    let mut conn = db.conn();
    assert_eq!(
        count(
            &mut conn,
            "SELECT count(*) AS n FROM nodes WHERE state = 'ready'"
        ),
        1
    );
    assert_eq!(
        count(
            &mut conn,
            "SELECT count(*) AS n FROM events WHERE action = 'release'"
        ),
        1
    );
    assert_eq!(
        count(
            &mut conn,
            "SELECT count(*) AS n FROM nodes WHERE properties->>'rack' = 'r1'"
        ),
        1
    );
}
