//! `molteniron doctor` against private servers: an unmigrated, a current and a too-new schema; every
//! kind of role; the timeouts in transactions and the server's own; autovacuum reset or off; TLS over
//! TCP; and the failover pair's replication (asynchronous, synchronous, the standby itself, a
//! synchronous standby gone).

use diesel::connection::SimpleConnection;
use diesel::prelude::*;

use crate::support::{PrivateServer, assert_clean, json, molteniron_std};

/// `doctor` at `url` (and any extra arguments): exit code, stdout, stderr.
fn doctor(url: &str, extra: &[&str]) -> (i32, String, String) {
    let out = molteniron_std()
        .args(["--database-url", url, "doctor"])
        .args(extra)
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert_clean(&stdout);
    assert_clean(&stderr);
    (out.status.code().unwrap_or(-1), stdout, stderr)
}

/// The line of check `name` in doctor's output, which must be there exactly once.
fn line<'a>(stdout: &'a str, name: &str) -> &'a str {
    let lines: Vec<&str> = stdout
        .lines()
        .filter(|l| l.split_whitespace().nth(1) == Some(name))
        .collect();
    assert_eq!(lines.len(), 1, "{name} in {stdout}");
    lines[0]
}

fn run_ok(url: &str, args: &[&str]) {
    let out = molteniron_std()
        .args(["--database-url", url])
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "{args:?}: {out:?}");
}

#[test]
fn doctor_checks_the_schema_the_role_the_timeouts_and_autovacuum() {
    let server = PrivateServer::init(false);
    server.start();
    let url = server.socket_url("postgres");

    // Unmigrated: the schema FAILs, every other line is still printed, then one error line and exit 1.
    let (code, stdout, stderr) = doctor(&url, &[]);
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(line(&stdout, "schema").starts_with("FAIL "), "{stdout}");
    assert!(line(&stdout, "schema").contains("(fix: molteniron migrate)"));
    assert_eq!(stdout.lines().count(), 8, "{stdout}");
    assert_eq!(
        stderr, "molteniron: error: 1 check(s) failed: schema\n",
        "{stderr}"
    );

    run_ok(&url, &["migrate"]);
    let (code, stdout, stderr) = doctor(&url, &[]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(line(&stdout, "schema").starts_with("OK "), "{stdout}");
    assert!(line(&stdout, "server-version").starts_with("OK "));
    assert!(line(&stdout, "tls").contains("Unix socket"), "{stdout}");
    assert!(line(&stdout, "clock").starts_with("OK "), "{stdout}");
    // The transactions carry the config's timeouts; the server itself sets no statement_timeout, which
    // the one-statement commands run under: WARN, naming the login and the fix.
    let timeouts = line(&stdout, "timeouts");
    assert!(
        timeouts.starts_with("WARN ")
            && timeouts.contains("lock_timeout 10s, statement_timeout 60s in each transaction")
            && timeouts.contains(
                "ALTER ROLE molteniron SET statement_timeout = '60s'; ALTER ROLE molteniron SET \
                 lock_timeout = '10s'"
            ),
        "{stdout}"
    );
    assert!(
        line(&stdout, "autovacuum").starts_with("OK ")
            && line(&stdout, "autovacuum").contains("autovacuum_vacuum_threshold=200"),
        "{stdout}"
    );
    // initdb's user is a superuser: more than a CI host needs.
    assert!(line(&stdout, "role").starts_with("WARN "), "{stdout}");
    assert!(line(&stdout, "role").contains("superuser"), "{stdout}");
    // A single server: no standby.
    assert!(
        line(&stdout, "replication").starts_with("WARN "),
        "{stdout}"
    );
    assert!(
        line(&stdout, "replication").contains("no standby"),
        "{stdout}"
    );

    // The same as JSON: one object per check, names unique.
    let (code, stdout, _) = doctor(&url, &["-o", "json"]);
    assert_eq!(code, 0);
    let checks = json(&stdout);
    let names: Vec<&str> = checks
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["check"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "server-version",
            "schema",
            "timeouts",
            "role",
            "replication",
            "tls",
            "autovacuum",
            "clock"
        ]
    );
    assert_eq!(checks[1]["status"], "OK");
    assert!(checks[1]["fix"].is_null());
    assert_eq!(checks[3]["status"], "WARN");
    assert!(checks[3]["fix"].is_string());

    // With the fix applied (here by the user's own options=, as a role default would): OK, and the
    // transactions still carry the config's values, whatever the session's are.
    let (code, stdout, _) = doctor(
        &format!("{url} options='-c statement_timeout=45s -c lock_timeout=20s'"),
        &[],
    );
    assert_eq!(code, 0);
    let timeouts = line(&stdout, "timeouts");
    assert!(
        timeouts.starts_with("OK ")
            && timeouts.contains("lock_timeout 10s, statement_timeout 60s in each transaction")
            && timeouts.contains("the server's statement_timeout 45s, lock_timeout 20s"),
        "{timeouts}"
    );

    // Each role of `molteniron roles`, and a role with none of them.
    run_ok(&url, &["roles", "--apply"]);
    let mut conn = PgConnection::establish(&url).unwrap();
    conn.batch_execute(
        "CREATE ROLE ci_admin LOGIN IN ROLE molteniron_admin; \
         CREATE ROLE ci_job LOGIN IN ROLE molteniron_job; \
         CREATE ROLE ci_ro LOGIN IN ROLE molteniron_readonly; \
         CREATE ROLE nobody LOGIN",
    )
    .unwrap();
    for (user, code, wanted) in [
        (
            "ci_admin",
            0,
            "OK    role            ci_admin may administer",
        ),
        ("ci_job", 0, "OK    role            ci_job may run jobs"),
        ("ci_ro", 0, "OK    role            ci_ro may only read"),
        (
            "nobody",
            1,
            "FAIL  role            nobody may not even read the pool",
        ),
    ] {
        let (got, stdout, stderr) = doctor(&format!("{url} user={user}"), &[]);
        assert_eq!(got, code, "{user}: {stdout}{stderr}");
        assert!(line(&stdout, "role").starts_with(wanted), "{stdout}");
        // Every other check still runs for a role without privileges.
        assert_eq!(stdout.lines().count(), 8, "{user}: {stdout}");
        // Every role's transactions carry the timeouts; each login is told about its own default.
        assert!(
            line(&stdout, "timeouts").starts_with("WARN ")
                && line(&stdout, "timeouts")
                    .contains(&format!("gives {user} no statement_timeout")),
            "{user}: {stdout}"
        );
    }
    // A role that may not read the migrations table: its schema line says so, as a WARN.
    let (_, stdout, stderr) = doctor(&format!("{url} user=nobody"), &[]);
    assert!(
        line(&stdout, "schema").starts_with("WARN ")
            && line(&stdout, "schema").contains("permission denied"),
        "{stdout}"
    );
    assert_eq!(stderr, "molteniron: error: 1 check(s) failed: role\n");

    // Autovacuum: the migration's thresholds reset, then autovacuum off for the table.
    conn.batch_execute(
        "ALTER TABLE nodes RESET (autovacuum_vacuum_threshold, autovacuum_vacuum_scale_factor)",
    )
    .unwrap();
    let (_, stdout, _) = doctor(&url, &[]);
    assert!(
        line(&stdout, "autovacuum").starts_with("WARN ")
            && line(&stdout, "autovacuum").contains("default thresholds"),
        "{stdout}"
    );
    conn.batch_execute("ALTER TABLE nodes SET (autovacuum_enabled = false)")
        .unwrap();
    let (_, stdout, _) = doctor(&url, &[]);
    assert!(
        line(&stdout, "autovacuum").contains("autovacuum is off"),
        "{stdout}"
    );

    // A schema a newer molteniron migrated: WARN; a migration missing: FAIL.
    conn.batch_execute(
        "INSERT INTO __diesel_schema_migrations (version) VALUES ('29990101000001')",
    )
    .unwrap();
    let (code, stdout, _) = doctor(&url, &[]);
    assert_eq!(code, 0);
    assert!(
        line(&stdout, "schema").starts_with("WARN ")
            && line(&stdout, "schema").contains("29990101000001"),
        "{stdout}"
    );
    conn.batch_execute("DELETE FROM __diesel_schema_migrations WHERE version = '20261201000003'")
        .unwrap();
    let (code, stdout, _) = doctor(&url, &[]);
    assert_eq!(code, 1);
    assert!(
        line(&stdout, "schema").starts_with("FAIL  schema")
            && line(&stdout, "schema").contains(&format!(
                "1 of {} migrations pending (20261201000003)",
                molteniron::db::embedded_versions().unwrap().len()
            )),
        "{stdout}"
    );
}

#[test]
fn doctor_sees_tls_on_a_tcp_connection() {
    let server = PrivateServer::init(true);
    server.start();
    let tls = server.url("127.0.0.1", "sslmode=require");
    run_ok(&tls, &["migrate"]);
    let (code, stdout, stderr) = doctor(&tls, &[]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let line = line(&stdout, "tls");
    assert!(
        line.starts_with("OK    tls") && line.contains("TCP with TLSv1."),
        "{line}"
    );
}

#[test]
fn doctor_checks_synchronous_standbys_on_a_primary_and_replica() {
    let primary = PrivateServer::init(false);
    primary.start();
    let url = primary.socket_url("postgres");
    run_ok(&url, &["migrate"]);
    let replica = PrivateServer::replica_of(&primary, "s1");
    replica.start();

    // Streaming, asynchronously.
    primary.wait_for_standby("s1", false);
    let (code, stdout, _) = doctor(&url, &[]);
    assert_eq!(code, 0);
    let replication = line(&stdout, "replication");
    assert!(
        replication.starts_with("WARN ")
            && replication.contains("1 standby(s), asynchronous")
            && replication.contains("ANY 1 (s1, s2)"),
        "{replication}"
    );

    // Synchronous.
    primary.configure("synchronous_standby_names = 'ANY 1 (s1)'");
    primary.reload();
    primary.wait_for_standby("s1", true);
    let (code, stdout, _) = doctor(&url, &[]);
    assert_eq!(code, 0, "{stdout}");
    assert!(
        line(&stdout, "replication")
            .starts_with("OK    replication     synchronous: 1 of 1 standby(s) confirm commits"),
        "{stdout}"
    );

    // The standby itself: read-only, so allocate would fail.
    let (code, stdout, stderr) = doctor(&replica.socket_url("postgres"), &[]);
    assert_eq!(code, 1, "{stdout}");
    assert!(
        line(&stdout, "replication").starts_with("FAIL ")
            && line(&stdout, "replication").contains("standby (read-only)"),
        "{stdout}"
    );
    assert!(stderr.contains("failed: replication"), "{stderr}");

    // The synchronous standby gone: every commit would wait.
    replica.stop("fast");
    let (code, stdout, _) = doctor(&url, &[]);
    assert_eq!(code, 1, "{stdout}");
    assert!(
        line(&stdout, "replication").contains("no listed standby is streaming"),
        "{stdout}"
    );
}
