//! Keeping broken machines out of jobs: `release --failed`, automatic quarantine, `health-check` with real
//! child processes (one that fails, one that hangs past the timeout, one that prints the password), and
//! `stats`, against a real PostgreSQL.

use std::process::Stdio;
use std::time::{Duration, Instant};

use diesel::prelude::*;

use crate::concurrency::assert_events_never_double_allocate;
use crate::support::{TestDb, count, json};

fn state_of(db: &TestDb, node: &str) -> (String, Option<String>, Option<String>) {
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = diesel::sql_types::Text)]
        state: String,
        #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
        maintenance_by: Option<String>,
        #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
        maintenance_reason: Option<String>,
    }
    let row: Row = diesel::sql_query(
        "SELECT state, maintenance_by, maintenance_reason FROM nodes WHERE name = $1",
    )
    .bind::<diesel::sql_types::Text, _>(node)
    .get_result(&mut db.conn())
    .unwrap();
    (row.state, row.maintenance_by, row.maintenance_reason)
}

/// One job on the pool's only node: allocate as `owner`, release, failed or not.
fn job(db: &TestDb, owner: &str, failed: Option<&str>) -> String {
    db.ok(&["allocate", owner]);
    let mut args = vec!["release", owner];
    if let Some(reason) = failed {
        args.extend(["--failed", "--reason", reason]);
    }
    let (code, _, err) = db.run(&args);
    assert_eq!(code, 0, "{err}");
    err
}

#[test]
fn three_failed_jobs_from_two_owners_quarantine_a_node_and_an_operator_resets_the_count() {
    let db = TestDb::new();
    db.seed("n", 1, "default");
    // One owner failing three times is not enough: it may be the job that is broken.
    for _ in 0..3 {
        job(&db, "same-job", Some("deploy timed out"));
    }
    assert_eq!(state_of(&db, "n0").0, "ready");
    // An operator's look (maintenance and back) starts the count again.
    db.ok(&["maintenance", "n0", "--reason", "looked at it"]);
    db.ok(&["maintenance", "n0", "--off"]);
    // A pass in between breaks the run.
    job(&db, "a", Some("deploy timed out"));
    job(&db, "b", None);
    job(&db, "a", Some("deploy timed out"));
    assert_eq!(state_of(&db, "n0").0, "ready");
    job(&db, "b", Some("BMC did not answer"));
    db.ok(&["allocate", "c"]);
    let (code, out, err) = db.run(&[
        "release",
        "c",
        "--failed",
        "--reason",
        "ipmi power on failed",
        "-o",
        "json",
    ]);
    assert_eq!(code, 0, "{err}");
    // The release says where the node went: into maintenance, not the release state.
    assert_eq!(json(&out)[0]["state"], "maintenance", "{out}");
    assert!(
        err.contains("node n0 quarantined: 3 failed jobs in a row (last: ipmi power on failed)"),
        "{err}"
    );
    let (state, by, reason) = state_of(&db, "n0");
    assert_eq!(
        (state.as_str(), by.as_deref()),
        ("maintenance", Some("quarantine"))
    );
    assert_eq!(
        reason.as_deref(),
        Some("quarantined: 3 failed jobs in a row (last: ipmi power on failed)")
    );
    let status = db.ok(&["status"]);
    assert!(
        status.contains("quarantined: 3 failed jobs in a row"),
        "{status}"
    );
    let history = json(&db.ok(&["history", "--node", "n0", "-o", "json"]));
    let last = history.as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["action"], "quarantine");
    let releases: Vec<&serde_json::Value> = history
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "release")
        .collect();
    assert_eq!(releases[0]["detail"]["result"], "failed");
    assert_eq!(releases[0]["detail"]["reason"], "deploy timed out");
    assert!(
        releases.iter().any(|e| e["detail"]["result"] == "passed"),
        "a plain release counts as a pass"
    );
    // The operator puts it back: the count starts again, one failure does not quarantine.
    db.ok(&["maintenance", "n0", "--off"]);
    job(&db, "d", Some("deploy timed out"));
    assert_eq!(state_of(&db, "n0").0, "ready");
    // quarantine_after: 0 is off.
    let config = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(config.path(), "quarantine_after: 0\n").unwrap();
    for owner in ["e", "f", "g"] {
        db.ok(&["allocate", owner]);
        db.ok(&[
            "--config",
            config.path().to_str().unwrap(),
            "release",
            owner,
            "--failed",
        ]);
    }
    assert_eq!(state_of(&db, "n0").0, "ready");
    // --reason needs --failed; a bad reason is a usage error that writes nothing.
    db.fails(&["release", "x", "--reason", "why"], 2);
    db.fails(&["release", "x", "--failed", "--reason", ""], 2);
}

#[test]
fn a_check_fails_times_out_or_passes_and_never_shows_a_credential() {
    let db = TestDb::new();
    db.seed("n", 3, "default");
    // n0 passes; n1 fails and prints its BMC password on stderr; n2 hangs (a child of the shell too).
    let command = r#"case "$MOLTENIRON_NAME" in
        n0) exit 0 ;;
        n1) echo "ipmitool: login as $MOLTENIRON_BMC_USERNAME with $MOLTENIRON_BMC_PASSWORD refused" >&2; exit 3 ;;
        *) sleep 31.5 & sleep 31.5 ;;
    esac"#;
    let started = Instant::now();
    let (code, out, err) = db.run(&[
        "health-check",
        "--command",
        command,
        "--timeout",
        "1s",
        "-o",
        "json",
    ]);
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "the hang was killed"
    );
    assert_eq!(code, 7, "{err}");
    assert!(
        err.starts_with("molteniron: error: 2 of 3 node(s) failed"),
        "{err}"
    );
    for text in [&out, &err] {
        assert!(!text.contains("pw1"), "a password in the output: {text}");
    }
    let rows = json(&out);
    let results: Vec<&str> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["result"].as_str().unwrap())
        .collect();
    assert_eq!(results, ["passed", "failed", "timeout"]);
    assert_eq!(
        rows[1]["reason"],
        "health check failed (exit 3): ipmitool: login as u with *** refused"
    );
    assert_eq!(rows[2]["reason"], "health check timed out after 1s");
    assert_eq!(state_of(&db, "n0").0, "ready");
    let (state, by, reason) = state_of(&db, "n1");
    assert_eq!(
        (state.as_str(), by.as_deref()),
        ("maintenance", Some("health_check"))
    );
    assert!(!reason.unwrap().contains("pw1"));
    assert_eq!(state_of(&db, "n2").1.as_deref(), Some("health_check"));
    assert_eq!(
        count(
            &mut db.conn(),
            "SELECT count(*) AS n FROM events WHERE detail::text LIKE '%pw1%'"
        ),
        0,
        "a password in the history"
    );
    assert_eq!(
        count(
            &mut db.conn(),
            "SELECT count(*) AS n FROM events WHERE action = 'health_check'"
        ),
        3
    );
    // Nothing is left running from the hung check.
    let ps = std::process::Command::new("pgrep")
        .args(["-f", "sleep 31.5"])
        .output()
        .unwrap();
    assert!(
        ps.stdout.is_empty(),
        "the hung check's processes were not killed"
    );
    // A node in maintenance is not checked again; no node due is exit 0.
    let (code, _, err) = db.run(&["health-check", "n1", "--command", "exit 0"]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("no node is due"), "{err}");
    db.fails(&["health-check"], 2); // no command given or configured
}

#[test]
fn include_quarantined_rechecks_only_automatic_quarantines_and_returns_those_that_pass() {
    let db = TestDb::new();
    db.seed("n", 2, "default");
    db.ok(&[
        "maintenance",
        "n1",
        "--reason",
        "operator: replacing the disk",
    ]);
    for owner in ["a", "b", "a"] {
        db.ok(&["allocate", owner, "1", "default"]);
        db.ok(&["release", owner, "--failed", "--reason", "deploy timed out"]);
    }
    assert_eq!(state_of(&db, "n0").1.as_deref(), Some("quarantine"));
    // Without the flag neither is checked.
    let (code, _, err) = db.run(&["health-check", "--command", "exit 0"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(state_of(&db, "n0").0, "maintenance");
    let out = db.ok(&[
        "health-check",
        "--command",
        "exit 0",
        "--include-quarantined",
    ]);
    assert!(
        out.contains("n0") && out.contains("passed") && !out.contains("n1"),
        "{out}"
    );
    assert_eq!(state_of(&db, "n0").0, "ready");
    assert_eq!(state_of(&db, "n1").1.as_deref(), Some("operator"));
    // A passed check resets the count: one more failure does not quarantine again.
    db.ok(&["allocate", "c", "1", "default"]);
    db.ok(&["release", "c", "--failed"]);
    assert_eq!(state_of(&db, "n0").0, "ready");
}

#[test]
fn only_due_nodes_are_checked_when_every_or_after_jobs_is_set() {
    let db = TestDb::new();
    db.seed("n", 2, "default");
    let config = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        config.path(),
        "health_check:\n  command: exit 0\n  every: 24h\n  after_jobs: 1\n",
    )
    .unwrap();
    let path = config.path().to_str().unwrap();
    let first = db.ok(&["--config", path, "health-check", "-o", "json"]);
    assert_eq!(
        json(&first).as_array().unwrap().len(),
        2,
        "never checked: due"
    );
    let (code, out, err) = db.run(&["--config", path, "health-check", "-o", "json"]);
    assert_eq!((code, json(&out)), (0, json("[]")), "{err}");
    // One job on n0: due again after 1 job.
    db.ok(&["allocate", "j", "1", "--node", "n0"]);
    db.ok(&["release", "j"]);
    let again = json(&db.ok(&["--config", path, "health-check", "-o", "json"]));
    assert_eq!(again.as_array().unwrap().len(), 1);
    assert_eq!(again[0]["name"], "n0");
    // A checked long ago: due by time.
    diesel::sql_query(
        "UPDATE events SET at = at - interval '2 days' WHERE action = 'health_check'",
    )
    .execute(&mut db.conn())
    .unwrap();
    let late = json(&db.ok(&["--config", path, "health-check", "-o", "json"]));
    assert_eq!(late.as_array().unwrap().len(), 2);
}

#[test]
fn a_health_check_and_sixteen_allocators_never_share_a_node() {
    let db = TestDb::new();
    db.seed("n", 8, "default");
    let check = db
        .std_cmd()
        .args(["health-check", "--command", "sleep 0.2", "--parallel", "4"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let jobs: Vec<_> = (0..16)
        .map(|i| {
            db.std_cmd()
                .args(["allocate", &format!("job-{i}"), "1"])
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for j in jobs {
        let out = j.wait_with_output().unwrap();
        let code = out.status.code();
        assert!(
            matches!(code, Some(0) | Some(3)),
            "{code:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let out = check.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut conn = db.conn();
    assert_events_never_double_allocate(&mut conn);
    // Every node ends allocated to a job or ready (checked, or skipped because a job had it).
    assert_eq!(
        count(
            &mut conn,
            "SELECT count(*) AS n FROM nodes WHERE NOT (state = 'ready' OR (state = 'allocated' \
             AND owner LIKE 'job-%'))"
        ),
        0
    );
}

#[test]
fn a_killed_health_check_leaves_its_node_to_reap() {
    let db = TestDb::new();
    db.seed("n", 1, "default");
    let mut check = db
        .std_cmd()
        .args([
            "health-check",
            "--command",
            "sleep 20 # hc-killed-test",
            "--timeout",
            "5s",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut conn = db.conn();
    let deadline = Instant::now() + Duration::from_secs(20);
    while count(
        &mut conn,
        "SELECT count(*) AS n FROM nodes WHERE owner = 'health-check:n0'",
    ) == 0
    {
        assert!(Instant::now() < deadline, "the check never took the node");
        std::thread::sleep(Duration::from_millis(10));
    }
    check.kill().unwrap();
    check.wait().unwrap();
    let _ = std::process::Command::new("pkill")
        .args(["-f", "hc-killed-test"])
        .status();
    // Held with a short lease (twice the timeout and 30 s): no job gets it until reap frees it.
    assert_eq!(
        count(
            &mut conn,
            "SELECT count(*) AS n FROM nodes WHERE owner = 'health-check:n0' \
             AND lease_expires_at < now() + interval '1 minute'"
        ),
        1
    );
    db.fails(&["allocate", "job", "1"], 3);
    diesel::sql_query("UPDATE nodes SET lease_expires_at = now() - interval '1 second'")
        .execute(&mut conn)
        .unwrap();
    // reap (the job role's, from cron) leaves it; the next health-check run puts it in maintenance:
    // it never passed its check, so it must not go back to jobs.
    db.ok(&["reap"]);
    assert_eq!(state_of(&db, "n0").0, "allocated");
    let (code, _, err) = db.run(&["health-check", "--command", "exit 0"]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("did not finish"), "{err}");
    let (state, by, reason) = state_of(&db, "n0");
    assert_eq!(
        (state.as_str(), by.as_deref()),
        ("maintenance", Some("health_check"))
    );
    assert!(reason.unwrap().contains("did not finish"));
    db.fails(&["allocate", "job", "1"], 3);
    // A check that passes brings it back (failed checks are automatic, so --include-quarantined
    // re-checks them).
    db.ok(&[
        "health-check",
        "--command",
        "exit 0",
        "--include-quarantined",
    ]);
    db.ok(&["allocate", "job", "1"]);
}

#[test]
fn stats_count_allocations_failures_quarantines_checks_and_waits() {
    let db = TestDb::new();
    db.seed("n", 2, "p");
    for owner in ["a", "b", "a"] {
        db.ok(&["allocate", owner, "1", "p", "--node", "n0"]);
        db.ok(&["release", owner, "--failed", "--reason", "deploy timed out"]);
    }
    db.ok(&["allocate", "c", "1", "p", "--node", "n1"]);
    db.ok(&["release", "c"]);
    db.ok(&[
        "health-check",
        "--command",
        "exit 0",
        "--include-quarantined",
    ]);
    // One wait in line.
    db.ok(&["allocate", "holder", "2", "p"]);
    let config = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(config.path(), "poll_interval: 100ms\n").unwrap();
    let waiter = db
        .std_cmd()
        .args(["--config", config.path().to_str().unwrap()])
        .args(["allocate", "w", "1", "p", "--wait"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut conn = db.conn();
    while count(&mut conn, "SELECT count(*) AS n FROM requests") == 0 {
        std::thread::sleep(Duration::from_millis(10));
    }
    db.ok(&["release", "holder"]);
    assert!(waiter.wait_with_output().unwrap().status.success());

    let rows = json(&db.ok(&["stats", "--since", "1h", "-o", "json"]));
    let row = |node: Option<&str>| {
        rows.as_array()
            .unwrap()
            .iter()
            .find(|r| r["node"].as_str() == node)
            .unwrap()
            .clone()
    };
    let pool = row(None);
    assert_eq!(pool["pool"], "p");
    assert_eq!(pool["nodes"], 2);
    assert_eq!(pool["allocations"], 7, "{pool}"); // 3 on n0, 1 on n1, holder's 2, w's 1
    assert_eq!(pool["jobs_failed"], 3);
    assert_eq!(pool["jobs_reported"], 6, "{pool}"); // the failed three, c, holder's two
    assert_eq!(pool["quarantines"], 1);
    assert_eq!(pool["checks_passed"], 2);
    assert_eq!(pool["waits"], 1);
    assert!(pool["wait_max_secs"].as_f64().unwrap() >= 0.0);
    let n0 = row(Some("n0"));
    assert_eq!(n0["jobs_failed"], 3);
    assert_eq!(n0["failure_pct"], 75.0, "{n0}"); // 3 of 4 reported (holder's release of n0 passed)
    assert_eq!(n0["quarantines"], 1);
    assert!(n0["busy_pct"].as_f64().unwrap() > 0.0);
    let table = db.ok(&["stats"]);
    for word in ["pool", "busy %", "failed jobs", "quarantines", "waits"] {
        assert!(table.contains(word), "{table}");
    }
    db.fails(&["stats", "--since", "soon"], 2);
}
