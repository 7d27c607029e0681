//! The CI wiring in contrib/jenkins, roles/, playbooks/ and devstack/, checked by the real tools they target
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

/// `ansible-playbook PLAYBOOK` against localhost, the binary under test on PATH, the test's database.
fn ansible_playbook(
    db: &TestDb,
    bin: &Path,
    playbook: &Path,
    vars: &Path,
) -> (i32, String, String) {
    run(Command::new(tool("ansible-playbook"))
        .args(["-i", "localhost,", "-c", "local"])
        // The modules run under ansible's own Python, not whatever `python3` discovery finds.
        .args([
            "-e",
            "ansible_python_interpreter={{ ansible_playbook_python }}",
        ])
        .arg("-e")
        .arg(format!("@{}", vars.display()))
        .arg(playbook)
        .env("PATH", path_with(bin))
        .env("ANSIBLE_ROLES_PATH", Path::new(REPO).join("roles"))
        .env("ANSIBLE_LOCAL_TEMP", bin.join("ansible-tmp"))
        .env("ANSIBLE_NOCOLOR", "1")
        .env("MOLTENIRON_DATABASE_URL", db.url())
        .env("MOLTENIRON_CONFIG", "/dev/null"))
}

#[test]
fn zuul_roles_allocate_as_facts_with_devstack_files_and_release_the_build() {
    let db = TestDb::new();
    db.import(NODES);
    let bin = bin_dir();
    let dir = tempfile::tempdir().unwrap();
    let (hardware_info, localrc, facts) = (
        dir.path().join("hardware_info"),
        dir.path().join("devstack/localrc"),
        dir.path().join("facts.json"),
    );
    let vars = dir.path().join("vars.json");
    std::fs::write(
        &vars,
        format!(
            r#"{{"zuul": {{"build": "5f0c2a9e", "node_priority": 2}},
                "molteniron_filters": ["--arch", "ppc64el"],
                "molteniron_hardware_info": "{}", "molteniron_localrc": "{}"}}"#,
            hardware_info.display(),
            localrc.display()
        ),
    )
    .unwrap();
    // The pre-run playbook as Zuul runs it, then a play that writes the facts it set to a file.
    let pre_run = dir.path().join("pre-run.yaml");
    std::fs::write(
        &pre_run,
        format!(
            "- import_playbook: {REPO}/playbooks/molteniron-allocate.yaml\n\
             - hosts: all\n  tasks:\n    - copy:\n        dest: {}\n        content: \
             \"{{{{ {{'nodes': molteniron_nodes, 'names': molteniron_node_names, 'argv': molteniron_allocate_argv}} | to_json }}}}\"\n      no_log: true\n",
            facts.display()
        ),
    )
    .unwrap();

    let (code, stdout, err) = ansible_playbook(&db, bin.path(), &pre_run, &vars);
    assert_eq!(code, 0, "pre-run failed: {stdout}{err}");
    assert!(
        !stdout.contains("s3cr3t") && !err.contains("s3cr3t"),
        "a password in the job log: {stdout}"
    );
    assert!(stdout.contains("5f0c2a9e holds ci-0"), "{stdout}");
    assert_eq!(held_by(&db, "5f0c2a9e"), 1);

    let facts: serde_json::Value = serde_json::from_str(&read(&facts)).unwrap();
    assert_eq!(facts["names"], serde_json::json!(["ci-0"]));
    assert_eq!(facts["nodes"][0]["owner"], "5f0c2a9e");
    assert_eq!(facts["nodes"][0]["properties"]["cpu_arch"], "ppc64el");
    let argv: Vec<&str> = facts["argv"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let at = |flag: &str| argv[argv.iter().position(|a| *a == flag).unwrap() + 1];
    assert_eq!(
        at("--priority"),
        "-2",
        "Zuul's node_priority 2 is served after 0: {argv:?}"
    );
    assert_eq!(at("--wait-timeout"), "1h");
    assert!(argv.contains(&"--wait") && at("-o") == "json", "{argv:?}");
    assert_eq!(
        read(&hardware_info),
        "10.7.0.1 de:ad:be:ef:07:01 admin s3cr3t-zero\n"
    );
    assert!(read(&localrc).contains("IRONIC_HW_NODE_CPU=16\n"));

    let (code, stdout, err) = ansible_playbook(
        &db,
        bin.path(),
        &Path::new(REPO).join("playbooks/molteniron-release.yaml"),
        &vars,
    );
    assert_eq!(code, 0, "post-run failed: {stdout}{err}");
    assert_eq!(held_by(&db, "5f0c2a9e"), 0, "post-run gave the node back");
    // A build that never got a node: post-run still succeeds.
    let (code, stdout, err) = ansible_playbook(
        &db,
        bin.path(),
        &Path::new(REPO).join("playbooks/molteniron-release.yaml"),
        &vars,
    );
    assert_eq!(code, 0, "a second post-run failed: {stdout}{err}");
}

#[test]
fn zuul_allocate_role_fails_the_pre_run_with_molteniron_s_error_and_no_secret() {
    let db = TestDb::new();
    db.import(NODES);
    let bin = bin_dir();
    let dir = tempfile::tempdir().unwrap();
    let vars = dir.path().join("vars.json");
    std::fs::write(
        &vars,
        format!(
            r#"{{"zuul": {{"build": "b-8"}}, "molteniron_count": 3,
                "molteniron_hardware_info": "{0}/hw", "molteniron_localrc": "{0}/localrc"}}"#,
            dir.path().display()
        ),
    )
    .unwrap();
    let (code, stdout, err) = ansible_playbook(
        &db,
        bin.path(),
        &Path::new(REPO).join("playbooks/molteniron-allocate.yaml"),
        &vars,
    );
    assert_ne!(code, 0, "asking for 3 of 2 nodes must fail: {stdout}");
    assert!(
        stdout.contains("molteniron allocate exited 8"),
        "{stdout}{err}"
    );
    assert!(!stdout.contains("s3cr3t"), "{stdout}");
    assert_eq!(held_by(&db, "b-8"), 0);
}

/// Sources devstack/settings and devstack/plugin.sh the way stack.sh and unstack.sh do, with only the
/// DevStack helpers the plugin calls stood in, and prints what `stack extra` exported.
const DEVSTACK_DRIVER: &str = r#"
set -e
function enable_service { :; }
function is_service_enabled { [[ "$1" == molteniron ]]; }
function die { echo "die: line $1: $2" >&2; exit 1; }
source "$PLUGIN_DIR/settings"
source "$PLUGIN_DIR/plugin.sh" stack pre-install
source "$PLUGIN_DIR/plugin.sh" stack install
source "$PLUGIN_DIR/plugin.sh" stack post-config
source "$PLUGIN_DIR/plugin.sh" stack extra
bash -c 'echo "exported: $IRONIC_HW_ARCH $IRONIC_HW_NODE_CPU $IRONIC_HW_NODE_RAM $IRONIC_HW_NODE_DISK"'
echo "owner: $MOLTENIRON_OWNER"
if [[ -n "$UNSTACK" ]]; then source "$PLUGIN_DIR/plugin.sh" unstack; echo unstacked; fi
"#;

fn devstack(db: &TestDb, bin: &Path, env: &[(&str, &str)]) -> (i32, String, String) {
    let mut cmd = Command::new("bash");
    cmd.args(["-c", DEVSTACK_DRIVER])
        .env("PLUGIN_DIR", Path::new(REPO).join("devstack"))
        .env("PATH", path_with(bin))
        .env("MOLTENIRON_DATABASE_URL", db.url())
        .env("MOLTENIRON_CONFIG", "/dev/null")
        .env_remove("BUILD_TAG")
        .env_remove("ZUUL_BUILD")
        .env_remove("MOLTENIRON_OWNER");
    for (k, v) in env {
        cmd.env(k, v);
    }
    run(&mut cmd)
}

#[test]
fn devstack_plugin_allocates_in_stack_extra_and_releases_in_unstack() {
    let db = TestDb::new();
    db.import(NODES);
    let bin = bin_dir();
    let dir = tempfile::tempdir().unwrap();
    let hwinfo = dir.path().join("ironic/hardware_info");
    let (code, stdout, err) = devstack(
        &db,
        bin.path(),
        &[
            ("IRONIC_HWINFO_FILE", hwinfo.to_str().unwrap()),
            ("BUILD_TAG", "jenkins-devstack-3"),
            ("MOLTENIRON_ALLOCATE_ARGS", "--arch ppc64el --min-cpus 16"),
            ("MOLTENIRON_COUNT", "2"),
            ("UNSTACK", ""),
        ],
    );
    assert_eq!(code, 0, "stack: {stdout}{err}");
    assert!(
        !stdout.contains("s3cr3t") && !err.contains("s3cr3t"),
        "a password in the log: {stdout}{err}"
    );
    assert!(
        stdout.contains("exported: ppc64el 16 32000 250\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains("owner: jenkins-devstack-3\n"),
        "BUILD_TAG is the owner: {stdout}"
    );
    assert_eq!(
        read(&hwinfo),
        "10.7.0.1 de:ad:be:ef:07:01 admin s3cr3t-zero\n10.7.0.2 de:ad:be:ef:07:02 admin s3cr3t-one\n"
    );
    assert_eq!(held_by(&db, "jenkins-devstack-3"), 2);

    // unstack.sh in a new shell: the same owner, from the same settings, gives the nodes back.
    let (code, stdout, err) = devstack(
        &db,
        bin.path(),
        &[
            ("IRONIC_HWINFO_FILE", hwinfo.to_str().unwrap()),
            ("BUILD_TAG", "jenkins-devstack-3"),
            ("MOLTENIRON_COUNT", "2"),
            ("MOLTENIRON_ALLOCATE_ARGS", "--arch ppc64el --min-cpus 16"),
            ("UNSTACK", "1"),
        ],
    );
    assert_eq!(code, 0, "unstack: {stdout}{err}");
    assert!(stdout.contains("unstacked"), "{stdout}");
    assert_eq!(held_by(&db, "jenkins-devstack-3"), 0);
}

#[test]
fn devstack_plugin_dies_when_the_request_can_never_be_satisfied_and_takes_nothing() {
    let db = TestDb::new();
    db.import(NODES);
    let bin = bin_dir();
    let dir = tempfile::tempdir().unwrap();
    let hwinfo = dir.path().join("hardware_info");
    let (code, stdout, err) = devstack(
        &db,
        bin.path(),
        &[
            ("IRONIC_HWINFO_FILE", hwinfo.to_str().unwrap()),
            ("MOLTENIRON_OWNER", "ds-9"),
            ("MOLTENIRON_ALLOCATE_ARGS", "--arch x86_64"),
            ("UNSTACK", ""),
        ],
    );
    assert_eq!(code, 1, "{stdout}{err}");
    assert!(
        err.contains("die: line") && err.contains("molteniron allocate for ds-9 failed (exit 8)"),
        "{err}"
    );
    assert!(!stdout.contains("exported"), "{stdout}");
    assert_eq!(held_by(&db, "ds-9"), 0);
}
