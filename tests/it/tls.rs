//! TLS: molteniron talks to a server that accepts only TLS connections, with a self-signed certificate
//! this test makes, under sslmode=require and verify-full (and verify-full refuses the wrong host name).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::molteniron_cmd;

/// A throwaway PostgreSQL server of the test's own, stopped and deleted on drop.
struct Server {
    bindir: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"))
}

/// Runs a server program as the cluster's owner: ourselves, or `postgres` when we are root (initdb
/// refuses to run as root).
fn as_owner(program: &Path) -> Command {
    if is_root() {
        let mut cmd = Command::new("runuser");
        cmd.args(["-u", "postgres", "--"]).arg(program);
        cmd
    } else {
        Command::new(program)
    }
}

fn run(mut cmd: Command) {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Server {
    /// initdb + a self-signed certificate for CN=localhost + TLS-only pg_hba.conf + start on 127.0.0.1.
    fn start_tls_only() -> Server {
        let bindir = std::fs::read_dir("/usr/lib/postgresql")
            .unwrap()
            .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
            .filter(|p| p.join("initdb").exists())
            .max()
            .expect("PostgreSQL server binaries (scripts/test installs them)");
        let dir = tempfile::tempdir().unwrap();
        if is_root() {
            run({
                let mut c = Command::new("chown");
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
        // A free port: bind to port 0 and let go (the server takes it a moment later).
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        run({
            let mut c = as_owner(&bindir.join("pg_ctl"));
            c.arg("-D")
                .arg(&data)
                .arg("-l")
                .arg(dir.path().join("log"))
                .args(["-w", "-s", "-o"])
                .arg(format!(
                    "-c ssl=on -c listen_addresses=127.0.0.1 -p {port} -k {} -c fsync=off",
                    dir.path().display()
                ));
            c.arg("start");
            c
        });
        Server { bindir, dir, port }
    }

    fn url(&self, host: &str, params: &str) -> String {
        format!(
            "postgres://molteniron@{host}:{}/postgres?{params}",
            self.port
        )
    }

    fn certificate(&self) -> String {
        self.dir
            .path()
            .join("data/server.crt")
            .display()
            .to_string()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let mut c = as_owner(&self.bindir.join("pg_ctl"));
        c.arg("-D")
            .arg(self.dir.path().join("data"))
            .args(["-m", "immediate", "-s", "stop"]);
        let _ = c.output();
    }
}

fn molteniron(url: &str, args: &[&str]) -> (i32, String) {
    let out = molteniron_cmd()
        .arg("--database-url")
        .arg(url)
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn tls_require_and_verify_full_work_and_a_wrong_host_is_refused() {
    let server = Server::start_tls_only();
    // The server takes TLS only: a plain connection is refused (exit 5).
    let (code, err) = molteniron(&server.url("127.0.0.1", "sslmode=disable"), &["migrate"]);
    assert_eq!(code, 5, "{err}");
    // sslmode=require: encrypted, certificate not checked.
    let (code, err) = molteniron(&server.url("127.0.0.1", "sslmode=require"), &["migrate"]);
    assert_eq!(code, 0, "{err}");
    // verify-full with the certificate as root: works for the name on the certificate...
    let verify = format!("sslmode=verify-full&sslrootcert={}", server.certificate());
    let (code, err) = molteniron(&server.url("localhost", &verify), &["status"]);
    assert_eq!(code, 0, "{err}");
    // ...and is refused for any other name, or without the root certificate.
    let (code, err) = molteniron(&server.url("127.0.0.1", &verify), &["status"]);
    assert_eq!(code, 5, "{err}");
    assert!(err.contains("does not match host name"), "{err}");
    let (code, err) = molteniron(
        &server.url(
            "localhost",
            "sslmode=verify-full&sslrootcert=/nonexistent.crt",
        ),
        &["status"],
    );
    assert_eq!(code, 5, "{err}");
}
