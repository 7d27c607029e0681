//! `scripts/demo` runs on a private server of its own, whatever database is configured (issue 12, item 7:
//! with `DATABASE_URL` set it once wrote its demo nodes into a real pool).

use std::process::Command as StdCommand;

use crate::support::{TestDb, count, server_url};

/// Runs `scripts/demo` on the binary under test, with `env` added to this process's environment (which,
/// under `scripts/test`, carries the PG* variables of the test server). Asserts that `db` is untouched,
/// then that the demo succeeded on a private server.
fn run_demo(db: &TestDb, env: &[(&str, &str)]) {
    let mut cmd = StdCommand::new(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/demo"));
    cmd.env("MOLTENIRON_DEMO_BIN", env!("CARGO_BIN_EXE_molteniron"))
        .env_remove("DATABASE_URL")
        .env_remove("MOLTENIRON_DATABASE_URL")
        .envs(env.iter().copied());
    let out = cmd.output().unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    let mut conn = db.conn();
    for table in ["nodes", "events"] {
        let n = count(&mut conn, &format!("SELECT count(*) AS n FROM {table}"));
        assert_eq!(
            n, 0,
            "with {env:?} the demo wrote {n} rows into the configured {table}: {stderr}"
        );
    }
    assert!(out.status.success(), "demo failed: {stderr}\n{stdout}");
    assert!(stderr.contains("private PostgreSQL running in"), "{stderr}");
    assert!(stdout.contains("demo-job-1"), "{stdout}");
}

#[test]
fn the_demo_never_touches_a_configured_database() {
    let db = TestDb::new();
    let config = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(config.path(), format!("database_url: \"{}\"\n", db.url())).unwrap();
    let config = config.path().to_str().unwrap();
    // Every way a database can be named at once: both URL variables and a config file...
    run_demo(
        &db,
        &[
            ("DATABASE_URL", db.url()),
            ("MOLTENIRON_DATABASE_URL", db.url()),
            ("MOLTENIRON_CONFIG", config),
        ],
    );
    // ...and libpq's variables alone, as scripts/test sets them (PGHOST, PGPORT, PGUSER), naming the test
    // database with PGDATABASE.
    if server_url().is_empty() {
        let dbname = db.url().strip_prefix("dbname=").unwrap();
        run_demo(&db, &[("PGDATABASE", dbname)]);
    } else {
        eprintln!("DATABASE_URL is set: the PG*-only run needs scripts/test's PG* set-up, skipped");
    }
}
