//! TLS: molteniron talks to a server that accepts only TLS connections, with a self-signed certificate
//! this test makes, under sslmode=require and verify-full (and verify-full refuses the wrong host name).

use crate::support::{PrivateServer, molteniron_cmd};

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
    let server = PrivateServer::init(true);
    server.start();
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
