//! `renew --keep-alive`: the heartbeat in the tool. Real processes against a real server: it keeps a lease
//! alive past its expiry while reap runs, ends 0 after the job's release, 4 when the lease is lost, 0 when
//! the `--while-pid` process dies, and rides out a server restart. Each waits for what the process says on
//! stderr, or for what the database shows, never for a fixed time.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

use crate::support::{PrivateServer, TestDb, count, migrate_and_import, molteniron_std};

/// How long any one awaited event may take on a busy machine before the test fails.
const PATIENCE: Duration = Duration::from_secs(60);

/// A running `molteniron renew --keep-alive`, its stderr read line by line as it comes.
struct Running {
    child: Child,
    lines: Receiver<String>,
    seen: Vec<String>,
}

impl Running {
    fn spawn(mut cmd: Command) -> Running {
        let mut child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = BufReader::new(child.stderr.take().unwrap());
        let (sender, lines) = channel();
        std::thread::spawn(move || {
            for line in stderr.lines() {
                if sender.send(line.unwrap()).is_err() {
                    return;
                }
            }
        });
        Running {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Waits for a stderr line containing `needle` and returns it.
    fn line(&mut self, needle: &str) -> String {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(needle) {
                        return line;
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    let _ = self.child.kill();
                    panic!("no stderr line with {needle:?}; saw {:#?}", self.seen);
                }
                Err(RecvTimeoutError::Disconnected) => {
                    let status = self.child.wait().unwrap();
                    panic!(
                        "exited ({status}) before saying {needle:?}; saw {:#?}",
                        self.seen
                    );
                }
            }
        }
    }

    /// Waits for the process to exit; its exit code and all of its stderr.
    fn exit(mut self) -> (i32, String) {
        let deadline = Instant::now() + PATIENCE;
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("still running after {PATIENCE:?}; saw {:#?}", self.seen);
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        self.seen.extend(self.lines.iter());
        (status.code().unwrap_or(-1), self.seen.join("\n"))
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn keep_alive(db: &TestDb, args: &[&str]) -> Running {
    let mut cmd = db.std_cmd();
    cmd.args(["renew", "job-1", "--keep-alive"]).args(args);
    Running::spawn(cmd)
}

/// Whether the database holds a row for `sql` (a `SELECT count(*) AS n ...`).
fn any(db: &TestDb, sql: &str) -> bool {
    count(&mut db.conn(), sql) > 0
}

#[test]
fn keeps_a_lease_alive_past_its_expiry_while_reap_runs() {
    let db = TestDb::new();
    db.seed("a", 2, "default");
    db.ok(&["allocate", "job-1", "2", "--lease", "3s"]);
    let mut running = keep_alive(&db, &["--lease", "3s", "--every", "300ms"]);
    running.line("keeping job-1's lease on a0, a1 alive");
    // Reap as fast as it can until the original lease has been over for two seconds.
    let mut reaps = 0;
    while !any(
        &db,
        "SELECT count(*) AS n FROM events WHERE action = 'allocate' AND at < now() - interval '5 s'",
    ) {
        db.ok(&["reap"]);
        reaps += 1;
    }
    assert!(reaps > 1);
    let mut conn = db.conn();
    assert_eq!(
        count(
            &mut conn,
            "SELECT count(*) AS n FROM events WHERE action = 'reap'"
        ),
        0
    );
    assert_eq!(
        count(
            &mut conn,
            "SELECT count(*) AS n FROM nodes WHERE owner = 'job-1' AND lease_expires_at > now()"
        ),
        2
    );
    db.ok(&["release", "job-1"]);
    let (code, err) = running.exit();
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("job-1 released its nodes; nothing left to keep alive"),
        "{err}"
    );
}

#[test]
fn a_release_of_some_nodes_keeps_the_rest_alive_and_of_all_ends_it_with_exit_0() {
    let db = TestDb::new();
    db.seed("a", 2, "default");
    db.ok(&["allocate", "job-1", "2", "--lease", "30s"]);
    let mut running = keep_alive(&db, &["--lease", "30s", "--every", "200ms"]);
    running.line("keeping job-1's lease on a0, a1 alive");
    db.ok(&["release", "job-1", "--node", "a0"]);
    running.line("job-1 released a0; still renewing a1");
    db.ok(&["release", "job-1"]);
    let (code, err) = running.exit();
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("job-1 released its nodes"), "{err}");
}

#[test]
fn holding_nothing_at_the_start_is_exit_4() {
    let db = TestDb::new();
    db.seed("a", 1, "default");
    let err = db.fails(&["renew", "job-1", "--keep-alive", "--lease", "2s"], 4);
    assert!(err.contains("job-1 holds no nodes"), "{err}");
}

#[test]
fn a_reaped_lease_is_exit_4() {
    let db = TestDb::new();
    db.seed("a", 2, "default");
    db.ok(&["allocate", "job-1", "2", "--lease", "30s"]);
    let mut running = keep_alive(&db, &["--lease", "30s", "--every", "200ms"]);
    running.line("keeping job-1's lease on a0, a1 alive");
    // reap skips rows a renew holds at that moment: repeat until it has taken them.
    while !any(
        &db,
        "SELECT count(*) AS n FROM events WHERE action = 'reap'",
    ) {
        db.ok(&["reap", "--max-age", "1ms"]);
    }
    let (code, err) = running.exit();
    assert_eq!(code, 4, "{err}");
    assert!(
        err.contains("molteniron: error: job-1 lost its lease: a"),
        "{err}"
    );
    assert!(err.contains("(reap at "), "{err}");
}

#[test]
fn a_forced_maintenance_is_a_lost_lease_not_a_release() {
    let db = TestDb::new();
    db.seed("a", 2, "default");
    db.ok(&["allocate", "job-1", "2", "--lease", "30s"]);
    let mut running = keep_alive(&db, &["--lease", "30s", "--every", "200ms"]);
    running.line("keeping job-1's lease on a0, a1 alive");
    // It writes `force_release` (the operator took the node) and `maintenance_on` in one transaction.
    db.ok(&["maintenance", "a1", "--reason", "broken PSU", "--force"]);
    let (code, err) = running.exit();
    assert_eq!(code, 4, "{err}");
    assert!(
        err.contains("job-1 lost its lease: a1 (force_release + maintenance_on at "),
        "{err}"
    );
}

#[test]
fn it_stops_when_the_while_pid_process_exits_and_leaves_the_nodes_held() {
    let db = TestDb::new();
    db.seed("a", 1, "default");
    db.ok(&["allocate", "job-1", "--lease", "60s"]);
    let mut parent = Command::new("sleep").arg("600").spawn().unwrap();
    let pid = parent.id().to_string();
    // A long --every: only the watch on the process can end it in time.
    let mut running = keep_alive(
        &db,
        &["--lease", "10m", "--every", "5m", "--while-pid", &pid],
    );
    running.line("keeping job-1's lease on a0 alive");
    // Not waited for yet: a zombie, as a dead job shell is until its parent reaps it.
    parent.kill().unwrap();
    let (code, err) = running.exit();
    parent.wait().unwrap();
    assert_eq!(code, 0, "{err}");
    assert!(err.contains(&format!("process {pid} has exited")), "{err}");
    assert!(any(
        &db,
        "SELECT count(*) AS n FROM nodes WHERE owner = 'job-1'"
    ));
}

#[test]
fn usage_errors_are_exit_2() {
    let db = TestDb::new();
    db.seed("a", 1, "default");
    db.ok(&["allocate", "job-1"]);
    let err = db.fails(
        &[
            "renew",
            "job-1",
            "--keep-alive",
            "--lease",
            "1m",
            "--every",
            "1m",
        ],
        2,
    );
    assert!(
        err.contains("--every 1m must be shorter than --lease 1m"),
        "{err}"
    );
    let (code, _, err) = db.run(&["renew", "job-1", "--every", "10s"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--keep-alive"), "{err}");
    let err = db.fails(
        &[
            "renew",
            "job-1",
            "--keep-alive",
            "--while-pid",
            "2147483647",
        ],
        2,
    );
    assert!(err.contains("no such process"), "{err}");
}

fn seed_yaml() -> &'static str {
    "nodes:\n  - {name: n0, driver_info: {ipmi_address: 10.0.0.1}}\n  - {name: n1, driver_info: {ipmi_address: 10.0.0.2}}\n"
}

fn at(url: &str, args: &[&str]) -> Command {
    let mut cmd = molteniron_std();
    cmd.arg("--database-url").arg(url).args(args);
    cmd
}

#[test]
fn it_rides_out_a_server_restart_and_gives_up_when_the_lease_runs_out() {
    let server = PrivateServer::init(false);
    server.start();
    let url = server.url("127.0.0.1", "sslmode=disable");
    migrate_and_import(&url, seed_yaml());
    let ok = |args: &[&str]| {
        let out = at(&url, args).output().unwrap();
        assert!(out.status.success(), "{args:?}: {out:?}");
    };

    ok(&["allocate", "job-1", "--lease", "60s"]);
    let mut running = Running::spawn(at(
        &url,
        &[
            "renew",
            "job-1",
            "--keep-alive",
            "--lease",
            "60s",
            "--every",
            "300ms",
        ],
    ));
    running.line("keeping job-1's lease on n0 alive");
    server.stop("fast");
    running.line("renewing job-1's lease failed");
    server.start();
    running.line("renewed job-1's lease again after");
    ok(&["release", "job-1"]);
    let (code, err) = running.exit();
    assert_eq!(code, 0, "{err}");

    // A server that stays down: it tries until the lease has run out, then exit 5.
    ok(&["allocate", "job-2", "--lease", "2s"]);
    let mut running = Running::spawn(at(
        &url,
        &[
            "renew",
            "job-2",
            "--keep-alive",
            "--lease",
            "2s",
            "--every",
            "500ms",
        ],
    ));
    running.line("keeping job-2's lease on n0 alive");
    server.stop("fast");
    let (code, err) = running.exit();
    assert_eq!(code, 5, "{err}");
    assert!(err.contains("retrying until it runs out in"), "{err}");
    assert!(
        err.contains("molteniron: error: could not renew job-2's lease before it ran out: "),
        "{err}"
    );
}
