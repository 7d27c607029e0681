//! Test support: a fresh PostgreSQL database per test, cloned from a template migrated once, and a
//! `molteniron` command pointed at it.
//!
//! The server is the one `DATABASE_URL` (or libpq's PG* variables) names; `scripts/test` starts a private
//! throwaway one when none is configured. The template's name carries a hash of the migrations, so a
//! changed schema gets a new template. Databases left behind by a crashed test process are dropped at the
//! next start; each test's database is dropped when its `TestDb` is.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command as StdCommand;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

use assert_cmd::Command;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};

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
            molteniron::db::migrate(&mut db).unwrap();
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

/// `molteniron` with no database and no config from the environment.
pub fn molteniron_cmd() -> Command {
    Command::from_std(molteniron_std())
}

/// [`molteniron_cmd`] as a plain `std::process::Command`.
pub fn molteniron_std() -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_molteniron"));
    for var in [
        "DATABASE_URL",
        "MOLTENIRON_DATABASE_URL",
        "MOLTENIRON_CONFIG",
        "RUST_BACKTRACE",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("MOLTENIRON_CONFIG", "/dev/null");
    cmd
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

/// Asserts that output shows no panic or backtrace.
pub fn assert_clean(text: &str) {
    for bad in ["panicked", "RUST_BACKTRACE", "stack backtrace"] {
        assert!(!text.contains(bad), "output contains {bad:?}: {text}");
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

/// A PostgreSQL server of one test's own (for TLS, or to stop and restart it), listening on 127.0.0.1 and a
/// socket in its directory; stopped and deleted on drop.
pub struct PrivateServer {
    bindir: PathBuf,
    dir: tempfile::TempDir,
    pub port: u16,
}

/// Whether the tests run as root (then server programs run as `postgres`).
pub fn is_root() -> bool {
    StdCommand::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"))
}

/// Runs a server program as the cluster's owner: ourselves, or `postgres` when we are root (initdb
/// refuses to run as root).
fn as_owner(program: &Path) -> StdCommand {
    if is_root() {
        let mut cmd = StdCommand::new("runuser");
        cmd.args(["-u", "postgres", "--"]).arg(program);
        cmd
    } else {
        StdCommand::new(program)
    }
}

fn run(mut cmd: StdCommand) {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl PrivateServer {
    /// initdb (with trust authentication); with `tls`, also a self-signed certificate for CN=localhost and
    /// a pg_hba.conf that accepts TCP connections over TLS only. Not started yet.
    pub fn init(tls: bool) -> PrivateServer {
        let bindir = std::fs::read_dir("/usr/lib/postgresql")
            .unwrap()
            .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
            .filter(|p| p.join("initdb").exists())
            .max()
            .expect("PostgreSQL server binaries (scripts/test installs them)");
        let dir = tempfile::tempdir().unwrap();
        if is_root() {
            run({
                let mut c = StdCommand::new("chown");
                c.arg("postgres").arg(dir.path());
                c
            });
        }
        let data = dir.path().join("data");
        run({
            let mut c = as_owner(&bindir.join("initdb"));
            c.arg("-D")
                .arg(&data)
                .args(["-U", "molteniron", "-A", "trust", "--no-sync"]);
            c
        });
        let mut conf = String::from("fsync = off\nlisten_addresses = '127.0.0.1'\n");
        if tls {
            run({
                let mut c = as_owner(Path::new("openssl"));
                c.args([
                    "req",
                    "-new",
                    "-x509",
                    "-days",
                    "2",
                    "-nodes",
                    "-subj",
                    "/CN=localhost",
                    "-keyout",
                ])
                .arg(data.join("server.key"))
                .arg("-out")
                .arg(data.join("server.crt"));
                c
            });
            let hba = "local all all trust\nhostssl all all 127.0.0.1/32 trust\nhostnossl all all 0.0.0.0/0 reject\n";
            run({
                let mut c = as_owner(Path::new("sh"));
                c.arg("-c").arg(format!(
                    "chmod 600 '{key}' && printf '%s' '{hba}' > '{conf}'",
                    key = data.join("server.key").display(),
                    conf = data.join("pg_hba.conf").display()
                ));
                c
            });
            conf.push_str("ssl = on\n");
        }
        // A free port: bind to port 0 and let go (the server takes it a moment later).
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        conf.push_str(&format!(
            "port = {port}\nunix_socket_directories = '{}'\n",
            dir.path().display()
        ));
        run({
            let mut c = as_owner(Path::new("sh"));
            c.arg("-c").arg(format!(
                "printf '%s' \"{conf}\" >> '{}'",
                data.join("postgresql.conf").display()
            ));
            c
        });
        PrivateServer { bindir, dir, port }
    }

    fn pg_ctl(&self, args: &[&str]) -> StdCommand {
        let mut c = as_owner(&self.bindir.join("pg_ctl"));
        c.arg("-D")
            .arg(self.dir.path().join("data"))
            .arg("-l")
            .arg(self.dir.path().join("log"))
            .args(args);
        c
    }

    /// The directory of the server's own Unix socket (the value for `PGHOST` or `host=`).
    pub fn socket_dir(&self) -> &Path {
        self.dir.path()
    }

    /// Makes the server also put its socket in `extra` (a socket named for its private port, so it never
    /// replaces another server's). Call before [`PrivateServer::start`].
    pub fn also_listen_in(&self, extra: &Path) {
        run({
            let mut c = as_owner(Path::new("sh"));
            c.arg("-c").arg(format!(
                "printf \"unix_socket_directories = '%s,%s'\\n\" '{}' '{}' >> '{}'",
                self.dir.path().display(),
                extra.display(),
                self.dir.path().join("data/postgresql.conf").display()
            ));
            c
        });
    }

    /// Starts the server and waits until it accepts connections.
    pub fn start(&self) {
        run(self.pg_ctl(&["-w", "-s", "start"]));
    }

    /// Stops the server (`fast` or `immediate`) and waits until it is down.
    pub fn stop(&self, mode: &str) {
        run(self.pg_ctl(&["-w", "-s", "-m", mode, "stop"]));
    }

    /// A URL for database `postgres` over TCP to `host` (127.0.0.1 or localhost) with `params`.
    pub fn url(&self, host: &str, params: &str) -> String {
        format!(
            "postgres://molteniron@{host}:{}/postgres?{params}",
            self.port
        )
    }

    /// A keyword connection string over the server's Unix socket (always trusted), for set-up.
    pub fn socket_url(&self, dbname: &str) -> String {
        format!(
            "host={} port={} user=molteniron dbname={dbname}",
            self.dir.path().display(),
            self.port
        )
    }

    /// From now on TCP logins need `password` (SCRAM); the Unix socket stays trusted for set-up.
    pub fn require_password(&self, password: &str) {
        let mut conn = PgConnection::establish(&self.socket_url("postgres")).unwrap();
        diesel::sql_query(format!("ALTER ROLE molteniron PASSWORD '{password}'"))
            .execute(&mut conn)
            .unwrap();
        let hba = "local all all trust\nhost all all 127.0.0.1/32 scram-sha-256\n";
        run({
            let mut c = as_owner(Path::new("sh"));
            c.arg("-c").arg(format!(
                "printf '%s' '{hba}' > '{}'",
                self.dir.path().join("data/pg_hba.conf").display()
            ));
            c
        });
        run(self.pg_ctl(&["-s", "reload"]));
    }

    /// The server's self-signed certificate (a root certificate for verify-full).
    pub fn certificate(&self) -> String {
        self.dir
            .path()
            .join("data/server.crt")
            .display()
            .to_string()
    }
}

impl Drop for PrivateServer {
    fn drop(&mut self) {
        let mut c = as_owner(&self.bindir.join("pg_ctl"));
        c.arg("-D")
            .arg(self.dir.path().join("data"))
            .args(["-m", "immediate", "-s", "stop"]);
        let _ = c.output();
    }
}
