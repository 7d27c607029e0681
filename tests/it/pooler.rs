//! Behind a real PgBouncer (Debian's `pgbouncer`, installed by scripts/test; run from a temp dir as a
//! non-root user, no system service) in transaction mode with its default `ignore_startup_parameters`,
//! and a plain connection string: molteniron sends no session options, so every command, the 16-process
//! race at a gate, concurrent migrates and 200 waiters go through it, and its lock_timeout still holds
//! (it travels inside each transaction). Server options a user adds (`options=`) are refused by the
//! pooler, which is a configuration error with a hint (exit 1, not retried, even with --retry-for).

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use diesel::Connection;

use crate::support::{PrivateServer, as_owner, is_root, migrate_and_import, molteniron_std};

/// A PgBouncer in front of `server`, stopped on drop.
struct Bouncer {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Bouncer {
    fn start(server: &PrivateServer) -> Bouncer {
        Bouncer::start_with(server, "")
    }

    /// [`Bouncer::start`] with more `[pgbouncer]` settings (lines of `key = value`).
    fn start_with(server: &PrivateServer, settings: &str) -> Bouncer {
        let dir = tempfile::tempdir().unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let ini = dir.path().join("pgbouncer.ini");
        std::fs::write(
            &ini,
            format!(
                "[databases]\n* = host=127.0.0.1 port={} user=molteniron\n[pgbouncer]\nlisten_addr = 127.0.0.1\n\
                 listen_port = {port}\nunix_socket_dir =\nauth_type = any\npool_mode = transaction\n\
                 logfile = {}\n{settings}",
                server.port,
                dir.path().join("pgbouncer.log").display()
            ),
        )
        .unwrap();
        if is_root() {
            // PgBouncer refuses to run as root: run it as the server's owner.
            Command::new("chown")
                .args(["-R", "postgres"])
                .arg(dir.path())
                .status()
                .unwrap();
        }
        let program = Path::new("/usr/sbin/pgbouncer");
        assert!(program.exists(), "pgbouncer (scripts/test installs it)");
        let mut cmd = as_owner(program);
        // Its own process group, so that drop stops it and not only runuser.
        use std::os::unix::process::CommandExt;
        let child = cmd
            .arg(&ini)
            .process_group(0)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        // Ready when it accepts connections.
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "pgbouncer did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Bouncer {
            child,
            port,
            _dir: dir,
        }
    }

    fn url(&self, params: &str) -> String {
        format!(
            "postgres://molteniron@127.0.0.1:{}/postgres?{params}",
            self.port
        )
    }
}

impl Drop for Bouncer {
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-TERM", "--", &group]).status();
        let _ = self.child.wait();
    }
}

/// A private server with one migrated node (n0), and a PgBouncer in front of it.
fn one_node_behind_a_bouncer() -> (PrivateServer, Bouncer) {
    let server = PrivateServer::init(false);
    server.start();
    migrate_and_import(
        &server.url("127.0.0.1", "sslmode=disable"),
        "nodes:\n  - {name: n0, driver: fake, ports: [{address: '02:00:00:09:00:01'}]}\n",
    );
    let bouncer = Bouncer::start(&server);
    (server, bouncer)
}

#[test]
fn server_options_a_pooler_refuses_are_a_configuration_error_with_a_hint() {
    let (_server, bouncer) = one_node_behind_a_bouncer();
    // A plain connection string works: molteniron itself sends no server options.
    run_through(&bouncer.url("sslmode=disable"), &["allocate", "job-1"], 0);

    // The user's own options= (or PGOPTIONS) is refused by the pooler: exit 1 at once, never retried.
    let started = Instant::now();
    let out = molteniron_std()
        .args(["--database-url", &bouncer.url("sslmode=disable")])
        .args(["--retry-for", "20s", "status"])
        .env("PGOPTIONS", "-c work_mem=8MB")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("unsupported startup parameter"), "{stderr}");
    assert!(
        stderr.contains(
            "remove them: molteniron sets its lock and statement timeouts inside each transaction"
        ),
        "{stderr}"
    );
    assert!(
        !stderr.contains("retrying"),
        "a configuration error is not retried: {stderr}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "not retried for 20 s"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}

/// The configured lock_timeout holds through the pooler (the probe saw a release wait 7.3 s
/// behind a row held for 8 s although lock_timeout was 2 s): a release (one statement, which sets its
/// own lock_timeout), a renew, and a set-field (a transaction, which sets it with its BEGIN), each behind
/// a row held on a direct connection, fail with the lock timeout after about a second instead of
/// waiting for the holder; with the holder gone they succeed.
#[test]
fn the_configured_lock_timeout_holds_through_a_transaction_pooler() {
    let (server, bouncer) = one_node_behind_a_bouncer();
    let url = bouncer.url("sslmode=disable");
    let config = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(config.path(), "lock_timeout: 1s\nstatement_timeout: 30s\n").unwrap();
    let config = config.path().to_str().unwrap();
    run_through(&url, &["--config", config, "allocate", "job-1"], 0);

    for args in [
        &["renew", "job-1"][..],
        &["set-field", "n0", "cpus", "8"],
        &["release", "job-1"],
    ] {
        use diesel::connection::SimpleConnection;
        let mut holder = diesel::PgConnection::establish(&server.socket_url("postgres")).unwrap();
        holder
            .batch_execute("BEGIN; SELECT id FROM nodes FOR UPDATE")
            .unwrap();
        let started = Instant::now();
        let mut child = molteniron_std()
            .args(["--database-url", &url, "--config", config])
            .args(args)
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // Without the timeout it would wait as long as the holder holds: give up after 10 s.
        while child.try_wait().unwrap().is_none() && started.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(20));
        }
        let took = started.elapsed();
        let _ = child.kill();
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(stderr.contains("lock timeout"), "{args:?}: {stderr}");
        assert!(
            stderr.contains("running the command again is safe") && stderr.lines().count() == 1,
            "{args:?}: {stderr}"
        );
        assert!(
            took >= Duration::from_millis(900) && took < Duration::from_secs(5),
            "{args:?} waited {took:?} behind the held row (lock_timeout 1s)"
        );
        holder.batch_execute("ROLLBACK").unwrap();
        run_through(&url, &[&["--config", config][..], args].concat(), 0);
    }
}

/// `migrate` through a transaction-pooling PgBouncer: four at once on an empty database all succeed, the
/// schema is applied once, and no advisory lock is left behind (a session lock taken on one server
/// connection and released on another would stay held, and the next migrate would wait forever).
#[test]
fn concurrent_migrates_through_a_transaction_pooler_all_succeed_and_leave_no_lock() {
    let server = PrivateServer::init(false);
    server.start();
    let bouncer = Bouncer::start(&server);
    let url = bouncer.url("sslmode=disable");
    let children: Vec<_> = (0..4)
        .map(|_| {
            molteniron_std()
                .args(["--database-url", &url, "migrate"])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut applied = 0;
    for mut child in children {
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("a migrate through the pooler hung");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(status.success(), "{stderr}");
        if stderr.contains("applied migrations") {
            applied += 1;
        }
    }
    assert_eq!(
        applied, 1,
        "one migrate applies the schema, the others find it current"
    );
    let mut conn = diesel::PgConnection::establish(&server.socket_url("postgres")).unwrap();
    assert_eq!(
        crate::support::count(
            &mut conn,
            "SELECT count(*) AS n FROM pg_locks WHERE locktype = 'advisory'"
        ),
        0,
        "an advisory lock was left behind"
    );
    let out = molteniron_std()
        .args(["--database-url", &url, "migrate"])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("the schema is up to date"),
        "{out:?}"
    );
}

/// Waiting in large numbers, the supported way (README "Many waiters: PgBouncer"): 200 processes wait in
/// line at once through a transaction-pooling PgBouncer (20 server connections) in front of a server with
/// `max_connections = 100`, polling only (`listen: false`). A releaser gives each granted node back as
/// soon as its waiter has exited. Every request ends granted or timed out, no owner is served twice, and
/// no node ever had two holders (from the events).
#[test]
fn two_hundred_waiters_through_pgbouncer_against_max_connections_100() {
    let server = PrivateServer::init(false);
    server.configure("max_connections = 100");
    server.start();
    let mut yaml = String::from("nodes:\n");
    for i in 0..20 {
        yaml.push_str(&format!(
            "  - {{name: n{i}, driver: fake, ports: [{{address: '02:00:00:09:00:{:02x}'}}]}}\n",
            i + 1
        ));
    }
    migrate_and_import(&server.url("127.0.0.1", "sslmode=disable"), &yaml);
    let bouncer = Bouncer::start_with(&server, "max_client_conn = 400\ndefault_pool_size = 20\n");
    let url = bouncer.url("sslmode=disable");
    let config = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        config.path(),
        "listen: false\npoll_interval: 1s\nwaiter_timeout: 60s\nretry_for: 30s\n",
    )
    .unwrap();
    let started = Instant::now();
    let mut waiting: Vec<(String, Child)> = (0..200)
        .map(|i| {
            let owner = format!("w{i}");
            let child = molteniron_std()
                .args(["--database-url", &url, "--config"])
                .arg(config.path())
                .args(["allocate", &owner, "1", "--wait", "--wait-timeout", "120s"])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            (owner, child)
        })
        .collect();
    let (mut granted, mut timed_out) = (0, 0);
    let deadline = Instant::now() + Duration::from_secs(200);
    while !waiting.is_empty() {
        assert!(
            Instant::now() < deadline,
            "{} waiters still running",
            waiting.len()
        );
        let mut still = Vec::new();
        for (owner, mut child) in waiting {
            match child.try_wait().unwrap() {
                None => still.push((owner, child)),
                Some(status) => {
                    let out = child.wait_with_output().unwrap();
                    let stderr = String::from_utf8_lossy(&out.stderr);
                    match status.code() {
                        Some(0) => {
                            granted += 1;
                            let out = molteniron_std()
                                .args(["--database-url", &url, "release", &owner])
                                .output()
                                .unwrap();
                            assert!(out.status.success(), "{out:?}");
                        }
                        Some(3) => timed_out += 1,
                        other => panic!("{owner}: exit {other:?}: {stderr}"),
                    }
                }
            }
        }
        waiting = still;
        std::thread::sleep(Duration::from_millis(20));
    }
    let elapsed = started.elapsed();
    println!(
        "200 waiters through PgBouncer: {granted} granted, {timed_out} timed out, in {:.1} s",
        elapsed.as_secs_f64()
    );
    assert_eq!(granted + timed_out, 200);
    assert!(granted >= 100, "{granted} granted");
    let mut conn = diesel::PgConnection::establish(&server.socket_url("postgres")).unwrap();
    let count = |conn: &mut diesel::PgConnection, sql: &str| crate::support::count(conn, sql);
    assert_eq!(
        count(
            &mut conn,
            "SELECT count(*) AS n FROM (SELECT owner FROM events WHERE action = 'allocate' \
             GROUP BY owner HAVING count(*) > 1) AS twice"
        ),
        0,
        "an owner was served twice"
    );
    assert_eq!(
        count(
            &mut conn,
            "SELECT count(*) AS n FROM events WHERE action = 'allocate'"
        ),
        granted
    );
    // Per node, allocate and release alternate: never two holders at once.
    assert_eq!(
        count(
            &mut conn,
            "SELECT count(*) AS n FROM (SELECT action, lag(action) OVER (PARTITION BY node_id ORDER BY id) AS prev \
             FROM events WHERE action IN ('allocate', 'release')) AS e \
             WHERE action = prev"
        ),
        0,
        "a node was allocated twice without a release in between"
    );
    assert_eq!(count(&mut conn, "SELECT count(*) AS n FROM requests"), 0);
}

/// Every command through a transaction-pooling PgBouncer with its default settings and a plain URL:
/// inventory, allocation, leases, maintenance, health checks, history, the line, stats, metrics, the
/// report and doctor, each with the exit code it has against the server directly.
#[test]
fn every_command_works_through_a_transaction_pooler() {
    let server = PrivateServer::init(false);
    server.start();
    let bouncer = Bouncer::start(&server);
    let url = bouncer.url("sslmode=disable");
    let dir = tempfile::tempdir().unwrap();
    let nodes = dir.path().join("nodes.yaml");
    let mut yaml = String::from("nodes:\n");
    for i in 0..4 {
        yaml.push_str(&format!(
            "  - {{name: n{i}, driver: fake, ports: [{{address: '02:00:00:0a:00:{:02x}'}}]}}\n",
            i + 1
        ));
    }
    std::fs::write(&nodes, yaml).unwrap();
    let report = dir.path().join("report.html");
    let (nodes, report) = (nodes.to_str().unwrap(), report.to_str().unwrap());
    let steps: &[(&[&str], i32)] = &[
        (&["migrate"], 0),
        (&["import", nodes], 0),
        (
            &[
                "add",
                "n9",
                "--driver",
                "fake",
                "--mac",
                "02:00:00:0a:00:99",
            ],
            0,
        ),
        (&["status"], 0),
        (&["allocate", "job-1", "2"], 0),
        (&["renew", "job-1"], 0),
        (&["get-field", "job-1", "name"], 0),
        (&["allocate", "job-2", "9"], 8),
        (
            &[
                "release",
                "job-1",
                "--failed",
                "--reason",
                "deploy timed out",
            ],
            0,
        ),
        (&["allocate", "job-3", "1", "--lease", "1s"], 0),
        (&["maintenance", "n2", "--reason", "fan"], 0),
        (&["maintenance", "n2", "--off"], 0),
        (&["set-field", "n3", "cpus", "8"], 0),
        (&["health-check", "--command", "true", "n9"], 0),
        (&["history"], 0),
        (&["export"], 0),
        (&["queue"], 0),
        (&["stats"], 0),
        (&["metrics"], 0),
        (&["report", "--html", report], 0),
        (&["remove", "n9"], 0),
        (&["doctor"], 0),
    ];
    for (args, want) in steps {
        if args[0] == "remove" {
            // job-3's one-second lease has run out by now: reap it through the pooler too.
            std::thread::sleep(Duration::from_millis(1100));
            run_through(&url, &["reap"], 0);
        }
        run_through(&url, args, *want);
    }
    let mut conn = diesel::PgConnection::establish(&server.socket_url("postgres")).unwrap();
    assert_eq!(
        crate::support::count(
            &mut conn,
            "SELECT count(*) AS n FROM nodes WHERE state = 'ready'"
        ),
        4,
        "every node back in the pool"
    );
}

/// Runs `molteniron --database-url URL ARGS` and asserts its exit code (and, on failure, one error line).
fn run_through(url: &str, args: &[&str], want: i32) {
    let out = molteniron_std()
        .args(["--database-url", url])
        .args(args)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(want),
        "{args:?} through PgBouncer: {stderr}"
    );
    if want != 0 {
        assert!(stderr.starts_with("molteniron: error: "), "{stderr}");
    }
}

/// The 16-process race of tests/it/concurrency.rs, through a transaction-pooling PgBouncer: the nodes
/// table is held behind a gate on a direct connection, 16 allocators come through the pooler (16 of its
/// 20 server connections) and wait at the gate, and once it opens no node has gone to two owners.
#[test]
fn sixteen_processes_at_a_gate_through_a_transaction_pooler_never_share_a_node() {
    let server = PrivateServer::init(false);
    server.start();
    let mut yaml = String::from("nodes:\n");
    for i in 0..8 {
        yaml.push_str(&format!(
            "  - {{name: n{i}, driver: fake, ports: [{{address: '02:00:00:0b:00:{:02x}'}}]}}\n",
            i + 1
        ));
    }
    migrate_and_import(&server.url("127.0.0.1", "sslmode=disable"), &yaml);
    let bouncer = Bouncer::start(&server);
    let url = bouncer.url("sslmode=disable");
    let mut gate = diesel::PgConnection::establish(&server.socket_url("postgres")).unwrap();
    crate::concurrency::close_the_gate(&mut gate);
    let children: Vec<Child> = (0..16)
        .map(|i| {
            molteniron_std()
                .args([
                    "--database-url",
                    &url,
                    "allocate",
                    &format!("job-{i}"),
                    "1",
                    "-o",
                    "json",
                ])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut watcher = diesel::PgConnection::establish(&server.socket_url("postgres")).unwrap();
    crate::concurrency::wait_for_blocked(&mut watcher, 16);
    drop(gate); // the 16 go at once
    let granted = crate::concurrency::granted_once_each(children);
    assert_eq!(granted.len(), 8, "all 8 nodes handed out, once each");
    assert_eq!(
        crate::concurrency::assert_events_never_double_allocate(&mut watcher),
        8
    );
}
