//! Reaching the database: migrate, an unmigrated database, an unreachable server, secrets in errors.

use crate::support::{TestDb, molteniron_cmd, server_url};

#[test]
fn migrate_is_idempotent_and_other_commands_ask_for_it() {
    let db = TestDb::unmigrated();
    let err = db.fails(&["status"], 1);
    assert!(err.contains("run `molteniron migrate`"), "{err}");
    let err = db.fails(&["allocate", "job-1"], 1);
    assert!(err.contains("run `molteniron migrate`"), "{err}");
    let (code, _, err) = db.run(&["migrate"]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("applied migrations"), "{err}");
    let (code, _, err) = db.run(&["migrate"]);
    assert_eq!(code, 0);
    assert!(err.contains("up to date"), "{err}");
    db.ok(&["status"]);
}

#[test]
fn concurrent_migrate_runs_take_turns() {
    let db = TestDb::unmigrated();
    let children: Vec<_> = (0..6)
        .map(|_| {
            db.std_cmd()
                .arg("migrate")
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut applied = 0;
    for child in children {
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{err}");
        applied += usize::from(err.contains("applied migrations"));
    }
    assert_eq!(applied, 1, "exactly one run applies the schema");
    db.ok(&["status"]);
}

#[test]
fn unreachable_database_is_exit_5_without_the_password() {
    let out = molteniron_cmd()
        .args([
            "--database-url",
            "postgres://bob:Sup3rS3cret@127.0.0.1:1/db",
            "status",
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(5), "{err}");
    assert!(
        err.starts_with("molteniron: error: cannot connect to the database"),
        "{err}"
    );
    assert!(!err.contains("Sup3rS3cret"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
}

#[test]
fn database_precedence_flag_then_env_then_config() {
    let db = TestDb::new();
    db.seed("a", 1, "default");
    let bad = "host=/nonexistent port=1";
    let config = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(config.path(), format!("database_url: \"{bad}\"\n")).unwrap();
    let cfg = config.path().to_str().unwrap();
    // The flag beats the environment and the config file.
    molteniron_cmd()
        .env("MOLTENIRON_DATABASE_URL", bad)
        .args(["--config", cfg, "--database-url", db.url(), "status"])
        .assert()
        .success();
    // MOLTENIRON_DATABASE_URL beats DATABASE_URL and the config file.
    molteniron_cmd()
        .env("MOLTENIRON_DATABASE_URL", db.url())
        .env("DATABASE_URL", bad)
        .args(["--config", cfg, "status"])
        .assert()
        .success();
    molteniron_cmd()
        .env("MOLTENIRON_DATABASE_URL", bad)
        .env("DATABASE_URL", db.url())
        .args(["status"])
        .assert()
        .code(5);
    // DATABASE_URL beats the config file.
    molteniron_cmd()
        .env("DATABASE_URL", db.url())
        .args(["--config", cfg, "status"])
        .assert()
        .success();
    // The config file is used when nothing else is set.
    let good = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(good.path(), format!("database_url: \"{}\"\n", db.url())).unwrap();
    molteniron_cmd()
        .env("MOLTENIRON_CONFIG", good.path())
        .args(["status"])
        .assert()
        .success();
}

#[test]
fn libpq_defaults_apply_when_nothing_is_configured() {
    // scripts/test's private server is reached through PGHOST/PGPORT/PGUSER alone; with no URL anywhere,
    // PGDATABASE chooses the database, exactly as for psql. (A server given as DATABASE_URL has no PG*
    // variables to lean on, so this check needs the PG* set-up.)
    if !server_url().is_empty() {
        eprintln!("DATABASE_URL is set: libpq-defaults check not applicable");
        return;
    }
    let db = TestDb::new();
    db.seed("a", 1, "default");
    let dbname = db.url().strip_prefix("dbname=").unwrap().to_owned();
    let out = molteniron_cmd()
        .env("PGDATABASE", &dbname)
        .args(["status", "-o", "csv"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("a0"));
}

#[test]
fn bad_config_files_are_rejected_clearly() {
    for (text, want) in [
        ("max_lease: soon\n", "invalid duration"),
        ("releese_state: dirty\n", "unknown field"),
        (": : :\n", "config"),
        // Numbers get the same checks as text.
        ("max_lease: 999999999999999\n", "longer than 100 years"),
        ("max_lease: 0\n", "must be positive"),
        ("connect_timeout: -5\n", "invalid duration \"-5\""),
    ] {
        let config = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(config.path(), text).unwrap();
        let out = molteniron_cmd()
            .args(["--config", config.path().to_str().unwrap(), "status"])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{text}: {err}");
        assert!(
            err.starts_with("molteniron: error: reading config file") && err.contains(want),
            "{text}: {err}"
        );
    }
    molteniron_cmd()
        .args(["--config", "/nonexistent.yaml", "status"])
        .assert()
        .code(1);
}

#[test]
fn a_malformed_connection_string_is_exit_1_not_retryable_5() {
    for url in ["postgres://mi:pw@127.0.0.1:abc/x", "hostx=1"] {
        let out = molteniron_cmd()
            .args(["--database-url", url, "status"])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{url}: {err}");
        assert!(
            err.starts_with("molteniron: error: invalid database connection string"),
            "{err}"
        );
    }
}

/// Runs molteniron with `args` against `db` and returns (exit code, stderr, how long it took); a run
/// still going after `limit` is killed (exit -1), so a command that would wait forever fails the test.
fn run_within(
    db: &TestDb,
    args: &[&str],
    limit: std::time::Duration,
) -> (i32, String, std::time::Duration) {
    let started = std::time::Instant::now();
    let mut child = db
        .std_cmd()
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    while child.try_wait().unwrap().is_none() && started.elapsed() < limit {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let took = started.elapsed();
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (out.status.code().unwrap_or(-1), stderr, took)
}

#[test]
fn a_held_lock_fails_the_command_after_lock_timeout_instead_of_hanging() {
    use diesel::connection::SimpleConnection;
    use diesel::{Connection, RunQueryDsl};
    let db = TestDb::new();
    db.seed("a", 1, "default");
    let config = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(config.path(), "lock_timeout: 1s\n").unwrap();
    let config = config.path().to_str().unwrap();
    let limit = std::time::Duration::from_secs(10);
    let mut holder = db.conn();
    holder.begin_test_transaction().unwrap();
    diesel::sql_query("SELECT id FROM nodes FOR UPDATE")
        .execute(&mut holder)
        .unwrap();
    // remove runs in a transaction, which sets lock_timeout with its BEGIN.
    let (code, err, took) = run_within(&db, &["--config", config, "remove", "a0"], limit);
    assert_eq!(code, 1, "{err} after {took:?}");
    assert!(err.contains("lock timeout"), "{err}");
    // allocate is one statement with no transaction to SET it in: it sets lock_timeout itself before
    // it waits for the owner's lock (held here by another session deciding for the same owner).
    holder.batch_execute("ROLLBACK; BEGIN").unwrap();
    diesel::sql_query("SELECT owner_is_idle('job')")
        .execute(&mut holder)
        .unwrap();
    let (code, err, took) = run_within(&db, &["--config", config, "allocate", "job"], limit);
    assert_eq!(code, 1, "{err} after {took:?}");
    assert!(err.contains("lock timeout"), "{err}");
}

/// A mistyped URL (one slash, no colon, an unencoded `@` in the password) or a password given where the
/// URL belongs: libpq quotes what it could not read, or reads part of the password as a host name, and
/// the error line must still not show the password.
#[test]
fn a_mistyped_database_url_never_shows_its_password() {
    for (url, secret) in [
        ("postgres:/mi:hunter22@db/x", "hunter22"),
        ("postgresql//mi:hunter22@db/x", "hunter22"),
        ("postgres://mi:hun@ter22@db.invalid/x", "ter22"),
        ("hunter22", "hunter22"),
    ] {
        let out = crate::support::molteniron_std()
            .args(["--database-url", url, "status"])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.starts_with("molteniron: error: "), "{url}: {stderr}");
        assert!(!stderr.contains(secret), "{url}: {stderr}");
        assert!(matches!(out.status.code(), Some(1 | 5)), "{url}: {stderr}");
    }
}
