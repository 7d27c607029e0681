//! The test database: a fresh PostgreSQL database per test, cloned from a template migrated once, and a
//! `molteniron` command pointed at it.
//!
//! The server is the one `DATABASE_URL` (or libpq's PG* variables) names; `scripts/test` starts a private
//! throwaway one when none is configured. The template's name carries a hash of the migrations, so a
//! changed schema gets a new template. Databases left behind by a crashed test process are dropped at the
//! next start; each test's database is dropped when its `TestDb` is.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

use assert_cmd::Command;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};

use super::process::{assert_clean, molteniron_std};

const TEST_PREFIX: &str = "molteniron_test_";
/// Serialises template creation and sweeping across concurrent test processes.
const TEMPLATE_LOCK: i64 = 0x6d69_7465_7374; // "mitest"

static COUNTER: AtomicUsize = AtomicUsize::new(0);
static TEMPLATE: OnceLock<String> = OnceLock::new();
static TEMPLATE_INIT: Mutex<()> = Mutex::new(());

/// The server the tests use, as a connection string: `DATABASE_URL`, else `MOLTENIRON_DATABASE_URL`,
/// else empty (libpq's PG* defaults).
pub fn server_url() -> String {
    ["DATABASE_URL", "MOLTENIRON_DATABASE_URL"]
        .iter()
        .find_map(|name| std::env::var(name).ok().filter(|v| !v.is_empty()))
        .unwrap_or_default()
}

/// `url` with its database replaced by `dbname` (URL or keyword form).
pub fn with_dbname(url: &str, dbname: &str) -> String {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let sep = if url.contains('?') { '&' } else { '?' };
        format!("{url}{sep}dbname={dbname}")
    } else if url.is_empty() {
        format!("dbname={dbname}")
    } else {
        format!("{url} dbname={dbname}")
    }
}

/// A connection to the server's maintenance database.
pub fn admin() -> PgConnection {
    let url = server_url();
    let url = if url.contains("dbname=") || url.contains("://") {
        url
    } else {
        with_dbname(&url, "postgres")
    };
    PgConnection::establish(&url)
        .expect("connecting to the test server (is DATABASE_URL or PGHOST set? use scripts/test)")
}

#[derive(QueryableByName)]
struct Name {
    #[diesel(sql_type = Text)]
    datname: String,
}

fn migrations_hash() -> u64 {
    let mut hasher = DefaultHasher::new();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
    let mut files: Vec<_> = walk(&dir);
    files.sort();
    for file in files {
        file.to_string_lossy().hash(&mut hasher);
        std::fs::read(&file)
            .expect("reading a migration")
            .hash(&mut hasher);
    }
    hasher.finish()
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("listing migrations") {
        let path = entry.expect("listing migrations").path();
        if path.is_dir() {
            out.extend(walk(&path))
        } else {
            out.push(path)
        }
    }
    out
}

fn process_alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// Creates the migrated template database once per server (and drops test databases whose process died).
fn template() -> String {
    if let Some(name) = TEMPLATE.get() {
        return name.clone();
    }
    let _guard = TEMPLATE_INIT.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(name) = TEMPLATE.get() {
        return name.clone();
    }
    let name = format!("molteniron_template_{:016x}", migrations_hash());
    let mut conn = admin();
    diesel::sql_query("SELECT pg_advisory_lock($1)")
        .bind::<BigInt, _>(TEMPLATE_LOCK)
        .execute(&mut conn)
        .unwrap();
    let existing: Vec<Name> =
        diesel::sql_query("SELECT datname FROM pg_database WHERE datname LIKE 'molteniron_%'")
            .load(&mut conn)
            .unwrap();
    for db in &existing {
        let stale_test = db
            .datname
            .strip_prefix(TEST_PREFIX)
            .and_then(|rest| rest.split('_').next())
            .and_then(|pid| pid.parse().ok())
            .is_some_and(|pid| !process_alive(pid));
        let stale_template = db.datname.starts_with("molteniron_template_") && db.datname != name;
        if stale_test || stale_template {
            diesel::sql_query(format!(
                "ALTER DATABASE \"{}\" IS_TEMPLATE false",
                db.datname
            ))
            .execute(&mut conn)
            .ok();
            diesel::sql_query(format!(
                "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
                db.datname
            ))
            .execute(&mut conn)
            .unwrap();
        }
    }
    if !existing.iter().any(|db| db.datname == name) {
        let building = format!("{name}_building");
        diesel::sql_query(format!(
            "DROP DATABASE IF EXISTS \"{building}\" WITH (FORCE)"
        ))
        .execute(&mut conn)
        .unwrap();
        diesel::sql_query(format!("CREATE DATABASE \"{building}\""))
            .execute(&mut conn)
            .unwrap();
        {
            let mut db = PgConnection::establish(&with_dbname(&server_url(), &building)).unwrap();
            molteniron::db::migrate(&mut db, molteniron::config::Config::default().timeouts())
                .unwrap();
        }
        diesel::sql_query(format!(
            "ALTER DATABASE \"{building}\" RENAME TO \"{name}\""
        ))
        .execute(&mut conn)
        .unwrap();
        diesel::sql_query(format!("ALTER DATABASE \"{name}\" IS_TEMPLATE true"))
            .execute(&mut conn)
            .unwrap();
    }
    diesel::sql_query("SELECT pg_advisory_unlock($1)")
        .bind::<BigInt, _>(TEMPLATE_LOCK)
        .execute(&mut conn)
        .unwrap();
    TEMPLATE.get_or_init(|| name).clone()
}

/// A fresh, migrated database of its own, dropped on `Drop`.
pub struct TestDb {
    name: String,
    url: String,
}

impl TestDb {
    /// Clones the template into a new database.
    pub fn new() -> TestDb {
        let template = template();
        let name = format!(
            "{TEST_PREFIX}{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        );
        diesel::sql_query(format!(
            "CREATE DATABASE \"{name}\" TEMPLATE \"{template}\" STRATEGY FILE_COPY"
        ))
        .execute(&mut admin())
        .unwrap();
        let url = with_dbname(&server_url(), &name);
        TestDb { name, url }
    }

    /// An empty database with no schema at all (for the "not migrated" and `migrate` tests).
    pub fn unmigrated() -> TestDb {
        let name = format!(
            "{TEST_PREFIX}{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        );
        diesel::sql_query(format!("CREATE DATABASE \"{name}\""))
            .execute(&mut admin())
            .unwrap();
        let url = with_dbname(&server_url(), &name);
        TestDb { name, url }
    }

    /// The connection string of this database.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// A direct connection, for seeding and for checking what the commands did.
    pub fn conn(&self) -> PgConnection {
        PgConnection::establish(&self.url).unwrap()
    }

    /// `molteniron` pointed at this database, with no config file and no other database variables.
    pub fn cmd(&self) -> Command {
        Command::from_std(self.std_cmd())
    }

    /// The same as a plain `std::process::Command`, for spawning many at once.
    pub fn std_cmd(&self) -> std::process::Command {
        let mut cmd = molteniron_std();
        cmd.env("MOLTENIRON_DATABASE_URL", &self.url);
        cmd
    }

    /// Runs `molteniron ARGS` and returns (exit code, stdout, stderr).
    pub fn run(&self, args: &[&str]) -> (i32, String, String) {
        let out = self.cmd().args(args).output().unwrap();
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        (
            out.status.code().unwrap_or(-1),
            text(&out.stdout),
            text(&out.stderr),
        )
    }

    /// Runs `molteniron ARGS`, asserts exit 0, and returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let (code, out, err) = self.run(args);
        assert_eq!(code, 0, "molteniron {args:?} failed: {err}");
        assert_clean(&err);
        out
    }

    /// Runs `molteniron ARGS`, asserts the exit code and the one-line error, and returns stderr.
    pub fn fails(&self, args: &[&str], code: i32) -> String {
        let (got, _, err) = self.run(args);
        assert_eq!(
            got, code,
            "molteniron {args:?}: expected exit {code}, got {got}: {err}"
        );
        assert!(
            err.starts_with("molteniron: error: "),
            "molteniron {args:?}: stderr {err:?}"
        );
        assert_clean(&err);
        err
    }

    /// Imports `yaml` (asserting success).
    pub fn import(&self, yaml: &str) {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), yaml).unwrap();
        self.ok(&["import", file.path().to_str().unwrap()]);
    }

    /// Adds `count` fake-driver nodes named `{prefix}{i}` to `pool`.
    pub fn seed(&self, prefix: &str, count: usize, pool: &str) {
        // Each prefix gets its own BMC subnet and MAC range ("a" gets 10.9.x.y and 02:00:00:00:..),
        // since two nodes may not share hardware.
        let tag = prefix
            .bytes()
            .fold(0u8, |acc, b| acc.wrapping_add(b))
            .wrapping_sub(b'a');
        let mut yaml = String::from("nodes:\n");
        for i in 0..count {
            yaml.push_str(&format!(
                "  - {{name: {prefix}{i}, pool: {pool}, driver_info: {{ipmi_address: 10.{}.{}.{}, ipmi_username: u, ipmi_password: pw{i}}}, ports: [{{address: '02:00:00:{tag:02x}:{:02x}:{:02x}'}}]}}\n",
                9 + u16::from(tag) % 240, i / 250, i % 250 + 1, i / 256, i % 256
            ));
        }
        self.import(&yaml);
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let _ = diesel::sql_query(format!(
            "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
            self.name
        ))
        .execute(&mut admin());
    }
}

/// Migrates the database at `url` and imports `yaml` into it, asserting both succeed.
pub fn migrate_and_import(url: &str, yaml: &str) {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), yaml).unwrap();
    for args in [&["migrate"][..], &["import", file.path().to_str().unwrap()]] {
        let out = molteniron_std()
            .arg("--database-url")
            .arg(url)
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Counts rows of a query returning one bigint `n`.
pub fn count(conn: &mut PgConnection, sql: &str) -> i64 {
    #[derive(QueryableByName)]
    struct N {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    diesel::sql_query(sql).get_result::<N>(conn).unwrap().n
}
