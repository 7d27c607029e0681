//! A PostgreSQL server of one test's own: for TLS, to stop and restart it, to give it settings the
//! shared server lacks, or a streaming replica of one (for failover).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command as StdCommand;

use diesel::prelude::*;

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

/// Runs a server program as the cluster's owner: ourselves, or `postgres` when we are root (initdb and
/// pgbouncer refuse to run as root).
pub fn as_owner(program: &Path) -> StdCommand {
    if is_root() {
        let mut cmd = StdCommand::new("runuser");
        cmd.args(["-u", "postgres", "--"]).arg(program);
        cmd
    } else {
        StdCommand::new(program)
    }
}

/// A free port: bind to port 0 and let go (the server takes it a moment later).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
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
        let port = free_port();
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

    /// Appends `lines` to the server's postgresql.conf (later lines win); call before
    /// [`PrivateServer::start`], or reload.
    pub fn configure(&self, lines: &str) {
        self.append(&self.dir.path().join("data/postgresql.conf"), lines);
    }

    fn append(&self, file: &Path, lines: &str) {
        run({
            let mut c = as_owner(Path::new("sh"));
            c.arg("-c")
                .arg("printf '%s\\n' \"$1\" >> \"$2\"")
                .arg("sh")
                .arg(lines)
                .arg(file);
            c
        });
    }

    /// A streaming replica of `primary` (which must be running): `pg_basebackup -R` over the primary's
    /// Unix socket, on a port and socket directory of its own, connecting as `application_name = name`
    /// (the name `synchronous_standby_names` lists). Its own `synchronous_standby_names` is empty, so that
    /// once promoted it commits without a standby. Not started yet.
    pub fn replica_of(primary: &PrivateServer, name: &str) -> PrivateServer {
        let dir = tempfile::tempdir().unwrap();
        if is_root() {
            run({
                let mut c = StdCommand::new("chown");
                c.arg("postgres").arg(dir.path());
                c
            });
        }
        let data = dir.path().join("data");
        let primary_conninfo = format!(
            "host={} port={} user=molteniron application_name={name}",
            primary.dir.path().display(),
            primary.port
        );
        run({
            let mut c = as_owner(&primary.bindir.join("pg_basebackup"));
            c.arg("-D")
                .arg(&data)
                .arg("-d")
                .arg(&primary_conninfo)
                .args(["-R", "-X", "stream", "--no-sync", "--checkpoint=fast"]);
            c
        });
        let port = free_port();
        let replica = PrivateServer {
            bindir: primary.bindir.clone(),
            dir,
            port,
        };
        // The copied postgresql.conf names the primary's port and socket; these lines come later and win.
        replica.configure(&format!(
            "port = {port}\nunix_socket_directories = '{}'\nsynchronous_standby_names = ''",
            replica.dir.path().display()
        ));
        replica.append(
            &data.join("postgresql.auto.conf"),
            &format!("primary_conninfo = '{primary_conninfo}'"),
        );
        replica
    }

    /// Makes the running server read its configuration again.
    pub fn reload(&self) {
        run(self.pg_ctl(&["-s", "reload"]));
    }

    /// Waits (up to 30 s) until standby `name` streams from this server, confirming commits when
    /// `synchronous`.
    pub fn wait_for_standby(&self, name: &str, synchronous: bool) {
        #[derive(QueryableByName)]
        struct Standby {
            #[diesel(sql_type = diesel::sql_types::Text)]
            sync_state: String,
        }
        let mut conn = PgConnection::establish(&self.socket_url("postgres")).unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let rows: Vec<Standby> = diesel::sql_query(
                "SELECT sync_state::text AS sync_state FROM pg_stat_replication \
                 WHERE application_name = $1 AND state = 'streaming'",
            )
            .bind::<diesel::sql_types::Text, _>(name)
            .load(&mut conn)
            .unwrap();
            let wanted = |s: &str| !synchronous || s == "sync" || s == "quorum";
            if rows.iter().any(|r| wanted(&r.sync_state)) {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "standby {name} is not streaming"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// Promotes a standby to primary and waits until it accepts writes.
    pub fn promote(&self) {
        run(self.pg_ctl(&["-w", "-s", "promote"]));
    }

    /// Starts the server and waits until it accepts connections.
    pub fn start(&self) {
        run(self.pg_ctl(&["-w", "-s", "start"]));
    }

    /// Stops the server (`fast` or `immediate`) and waits until it is down.
    pub fn stop(&self, mode: &str) {
        run(self.pg_ctl(&["-w", "-s", "-m", mode, "stop"]));
    }

    /// Tells the server to stop at once (`immediate`), without waiting: see
    /// [`PrivateServer::wait_stopped`].
    pub fn stop_now(&self) {
        run(self.pg_ctl(&["-W", "-s", "-m", "immediate", "stop"]));
    }

    /// Waits until the server is down (its postmaster has exited), for up to 60 s.
    pub fn wait_stopped(&self) {
        let pid_file = self.dir.path().join("data/postmaster.pid");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while pid_file.exists() {
            assert!(
                std::time::Instant::now() < deadline,
                "the server did not stop"
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
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
