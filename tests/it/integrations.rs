//! The CI wiring in contrib/jenkins, roles/ and playbooks/, checked by the real tools they target
//! (jenkins-job-builder, ansible-core: scripts/test installs them into a venv and puts it on PATH) and
//! run against the real binary and a real PostgreSQL. A missing tool fails the test, never skips it.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::{TestDb, count};

const REPO: &str = env!("CARGO_MANIFEST_DIR");

/// Two ppc64el nodes with DevStack's hardware properties.
const NODES: &str = "nodes:
  - name: ci-0
    driver: ipmi
    driver_info: {ipmi_address: 10.7.0.1, ipmi_username: admin, ipmi_password: s3cr3t-zero}
    properties: {cpu_arch: ppc64el, cpus: 16, memory_mb: 32000, local_gb: 250}
    ports: [{address: 'de:ad:be:ef:07:01'}]
    allocation_pool: [10.7.1.1]
  - name: ci-1
    driver: ipmi
    driver_info: {ipmi_address: 10.7.0.2, ipmi_username: admin, ipmi_password: s3cr3t-one}
    properties: {cpu_arch: ppc64el, cpus: 16, memory_mb: 32000, local_gb: 250}
    ports: [{address: 'de:ad:be:ef:07:02'}]
    allocation_pool: [10.7.1.2]
";

/// The path of a tool on PATH; panics (the test fails) when it is missing.
fn tool(name: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "{name} is not on PATH: run scripts/test, which installs it (ensure_python_tools)"
            )
        })
}

/// A directory holding only `molteniron` (a link to the binary under test), to put first on PATH.
fn bin_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(
        env!("CARGO_BIN_EXE_molteniron"),
        dir.path().join("molteniron"),
    )
    .unwrap();
    dir
}

fn path_with(dir: &Path) -> std::ffi::OsString {
    let mut dirs = vec![dir.to_path_buf()];
    dirs.extend(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    ));
    std::env::join_paths(dirs).unwrap()
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

fn run(cmd: &mut Command) -> (i32, String, String) {
    let out = cmd.output().unwrap();
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (
        out.status.code().unwrap_or(-1),
        text(&out.stdout),
        text(&out.stderr),
    )
}

fn held_by(db: &TestDb, owner: &str) -> i64 {
    count(
        &mut db.conn(),
        &format!("SELECT count(*) AS n FROM nodes WHERE state = 'allocated' AND owner = '{owner}'"),
    )
}

/// The shell steps of a generated Jenkins job, in document order, XML-unescaped.
fn shell_commands(xml: &str) -> Vec<String> {
    xml.split("<command>")
        .skip(1)
        .map(|rest| {
            rest.split("</command>")
                .next()
                .unwrap()
                .replace("&quot;", "\"")
                .replace("&apos;", "'")
                .replace("&lt;", "<")
                .replace("&gt;", ">")
                .replace("&amp;", "&")
        })
        .collect()
}

#[test]
fn jenkins_job_builder_renders_the_templates_and_their_steps_allocate_and_release() {
    let out = tempfile::tempdir().unwrap();
    let (code, _, err) = run(Command::new(tool("jenkins-jobs"))
        .args([
            "--conf",
            "/dev/null",
            "test",
            "contrib/jenkins/molteniron.yaml",
            "-o",
        ])
        .arg(out.path())
        .current_dir(REPO));
    assert_eq!(code, 0, "jenkins-jobs test failed: {err}");
    let xml = read(&out.path().join("ironic-gate-baremetal-ppc64el"));
    assert!(
        xml.contains("<org.jenkinsci.plugins.postbuildscript.PostBuildScript>"),
        "{xml}"
    );
    for result in ["SUCCESS", "UNSTABLE", "FAILURE", "ABORTED", "NOT_BUILT"] {
        assert!(
            xml.contains(&format!("<string>{result}</string>")),
            "release must run on {result}"
        );
    }
    assert!(
        xml.contains("<defaultValue>100</defaultValue>"),
        "the gate's priority: {xml}"
    );
    let steps = shell_commands(&xml);
    assert_eq!(
        steps.len(),
        3,
        "allocate, run with heartbeat, release: {steps:?}"
    );
    assert!(steps[0].contains("molteniron allocate \"$BUILD_TAG\" 1 --arch ppc64el --lease 3h"));
    assert!(steps[0].contains("--wait --wait-timeout 2h --priority \"$MOLTENIRON_PRIORITY\""));
    assert!(
        steps[1]
            .contains("molteniron renew \"$BUILD_TAG\" --keep-alive --lease 3h --while-pid $$ &")
    );
    assert!(steps[2].contains("molteniron release \"$BUILD_TAG\" --failed --reason"));
    assert!(out.path().join("ironic-baremetal-x86_64").is_file());

    // The generated steps run as Jenkins would run them, against the real binary and database.
    let db = TestDb::new();
    db.import(NODES);
    let bin = bin_dir();
    let workspace = tempfile::tempdir().unwrap();
    let step = |script: &str| {
        let file = workspace.path().join("step.sh");
        std::fs::write(&file, script).unwrap();
        run(Command::new("bash")
            .arg(&file)
            .env("PATH", path_with(bin.path()))
            .env("MOLTENIRON_DATABASE_URL", db.url())
            .env("MOLTENIRON_CONFIG", "/dev/null")
            .env("BUILD_TAG", "jenkins-ironic-gate-7")
            .env("WORKSPACE", workspace.path())
            .env("MOLTENIRON_PRIORITY", "100"))
    };
    let (code, stdout, err) = step(&steps[0]);
    assert_eq!(code, 0, "allocate step: {err}");
    assert!(
        !stdout.contains("s3cr3t") && !err.contains("s3cr3t"),
        "a password in the log: {stdout}{err}"
    );
    assert_eq!(held_by(&db, "jenkins-ironic-gate-7"), 1);
    assert_eq!(
        read(&workspace.path().join("hardware_info")),
        "10.7.0.1 de:ad:be:ef:07:01 admin s3cr3t-zero\n"
    );
    assert!(read(&workspace.path().join("devstack/localrc")).contains("IRONIC_HW_ARCH=ppc64el\n"));
    let (code, _, err) = step(&steps[1]);
    assert_eq!(code, 0, "run step: {err}");

    std::fs::write(
        workspace.path().join("molteniron-failed"),
        "deploy timed out\n",
    )
    .unwrap();
    let (code, _, err) = step(&steps[2]);
    assert_eq!(code, 0, "release step: {err}");
    assert_eq!(held_by(&db, "jenkins-ironic-gate-7"), 0);
    let failed = count(
        &mut db.conn(),
        "SELECT count(*) AS n FROM events WHERE action = 'release' AND owner = 'jenkins-ironic-gate-7' \
         AND detail->>'result' = 'failed' AND detail->>'reason' = 'deploy timed out'",
    );
    assert_eq!(
        failed, 1,
        "the marker file makes the release --failed with its reason"
    );
}
