//! Which Unix socket molteniron uses: the directory `PGHOST` names, and with no host given anywhere the
//! one Debian's psql uses (`/var/run/postgresql`), then `/tmp` (issue 12, item 8).
//!
//! Each server here is a private one on its own port, so its socket (`.s.PGSQL.<port>`) in a shared
//! directory never collides with a system cluster's (`.s.PGSQL.5432`), which these tests never touch.

use std::path::Path;

use assert_cmd::Command;

use crate::support::{PrivateServer, is_root, molteniron_cmd};

const DEBIAN_SOCKET_DIR: &str = "/var/run/postgresql";

/// `molteniron` with no server named anywhere (no URL, config, `PGHOST`, `PGHOSTADDR` or `PGSERVICE`),
/// for the database `postgres` on `port` as `molteniron`.
fn nothing_configured(port: u16) -> Command {
    let mut cmd = molteniron_cmd();
    for var in ["PGHOST", "PGHOSTADDR", "PGSERVICE"] {
        cmd.env_remove(var);
    }
    cmd.env("PGPORT", port.to_string())
        .env("PGUSER", "molteniron")
        .env("PGDATABASE", "postgres");
    cmd
}

/// Whether `dir` already holds a socket (or its lock file) for `port`: then a test skips rather than
/// disturb whatever owns it.
fn socket_taken(dir: &Path, port: u16) -> bool {
    let socket = format!(".s.PGSQL.{port}");
    dir.join(&socket).exists() || dir.join(format!("{socket}.lock")).exists()
}

/// Removes `/var/run/postgresql` on drop when the test created it (and it is empty again).
struct CreatedDir(Option<&'static Path>);

impl Drop for CreatedDir {
    fn drop(&mut self) {
        if let Some(dir) = self.0 {
            let _ = std::fs::remove_dir(dir);
        }
    }
}

#[test]
fn pghost_names_the_socket_directory() {
    let server = PrivateServer::init(false);
    server.start();
    let dir = server.socket_dir().to_str().unwrap().to_owned();
    nothing_configured(server.port)
        .env("PGHOST", &dir)
        .arg("migrate")
        .assert()
        .success();
    nothing_configured(server.port)
        .env("PGHOST", &dir)
        .args(["status", "-o", "csv"])
        .assert()
        .success();
}

#[test]
fn with_nothing_configured_the_socket_is_looked_for_where_debians_psql_looks() {
    let dir = Path::new(DEBIAN_SOCKET_DIR);
    let _created;
    if dir.exists() {
        _created = CreatedDir(None);
        if !is_root() && tempfile::tempfile_in(dir).is_err() {
            eprintln!("skipped: {DEBIAN_SOCKET_DIR} is not writable and we are not root");
            return;
        }
    } else if is_root() {
        std::fs::create_dir(dir).unwrap();
        _created = CreatedDir(Some(Path::new(DEBIAN_SOCKET_DIR)));
        let status = std::process::Command::new("chown")
            .args(["postgres:postgres", DEBIAN_SOCKET_DIR])
            .status()
            .unwrap();
        assert!(status.success());
    } else {
        eprintln!("skipped: {DEBIAN_SOCKET_DIR} is missing and only root may create it");
        return;
    }
    // Declared after the directory's guard, so the server stops before the directory goes.
    let server = PrivateServer::init(false);
    assert_ne!(
        server.port, 5432,
        "a private port, never the system cluster's"
    );
    if socket_taken(dir, server.port) {
        eprintln!(
            "skipped: {DEBIAN_SOCKET_DIR} already has a socket for port {}",
            server.port
        );
        return;
    }
    server.also_listen_in(dir);
    server.start();
    // The server is on its own socket directory and /var/run/postgresql only, not /tmp: reaching it
    // with no host given means molteniron looked in /var/run/postgresql.
    nothing_configured(server.port)
        .arg("migrate")
        .assert()
        .success();
    nothing_configured(server.port)
        .args(["--database-url", "postgres:///postgres", "status"])
        .assert()
        .success();
}

#[test]
fn with_nothing_configured_a_socket_in_tmp_is_found_after_debians_dir() {
    let server = PrivateServer::init(false);
    let tmp = Path::new("/tmp");
    if socket_taken(tmp, server.port) || socket_taken(Path::new(DEBIAN_SOCKET_DIR), server.port) {
        eprintln!("skipped: a socket for port {} already exists", server.port);
        return;
    }
    server.also_listen_in(tmp);
    server.start();
    nothing_configured(server.port)
        .arg("migrate")
        .assert()
        .success();
}

#[test]
fn with_nothing_configured_and_no_server_both_directories_are_named() {
    // A port no server here listens on (bound and let go), so neither socket exists.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = nothing_configured(port).arg("status").output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(5), "{err}");
    for socket in [DEBIAN_SOCKET_DIR, "/tmp"].map(|dir| format!("\"{dir}/.s.PGSQL.{port}\"")) {
        assert!(err.contains(&socket), "{socket} not tried: {err}");
    }
}
