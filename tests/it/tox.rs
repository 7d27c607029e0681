//! The original MoltenIron's own CLI test, its tox.ini command sequence, run against molteniron, and its
//! DevStack hook (contrib/test_hook_mi_ipmiblob.*) run with the original's command lines.
//!
//! The hook drop-in is Python 3; scripts/test installs python3 when it is missing.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::support::{TestDb, assert_clean};

/// The original's tox.ini command sequence, translated only where molteniron needs it (each translation
/// says why). Every command must exit 0, as under tox.
const TOX_SEQUENCE: &[&str] = &[
    // There is no daemon to start (moltenirond-helper start); the schema is created instead.
    "molteniron migrate",
    // delete_db refuses to delete everything without --yes.
    "molteniron delete_db --yes",
    "molteniron add_baremetal test1 10.1.2.1 user password 10.1.2.3,10.1.2.4 de:ad:be:ef:00:01 ppc64el 8 2048 32",
    // The original gives test2 test1's MAC (de:ad:be:ef:00:01). molteniron refuses a node whose MAC
    // another node has (exit 6): two nodes with one MAC are one machine, which could be handed to two
    // jobs at once. So test2 gets a MAC of its own.
    r#"molteniron add_keyvalue_pairs test2 10.1.2.2 10.1.2.5,10.1.2.6 'ipmi_user="user"' 'ipmi_password="password"' 'port_hwaddr="de:ad:be:ef:00:02"' 'cpu_arch=ppc64el' 'cpus=8' 'ram_mb=2048' 'disk_gb=32'"#,
    "molteniron allocate hamzy 1",
    "molteniron get_field hamzy port_hwaddr",
    "molteniron release hamzy",
    "test_hook_mi_ipmiblob.sh",
];

/// The original's molteniron/tests/hardware_info.good.
const HARDWARE_INFO_GOOD: &str = "10.1.2.1 de:ad:be:ef:00:01 user password\n";

/// The original's molteniron/tests/localrc.good.
const LOCALRC_GOOD: &str = "IRONIC_HW_ARCH=ppc64el
IRONIC_HW_NODE_CPU=8
IRONIC_HW_NODE_RAM=2048
IRONIC_HW_NODE_DISK=32
ALLOCATION_POOL=\"start=10.1.2.3,end=10.1.2.3 --allocation-pool start=10.1.2.4,end=10.1.2.4\"
";

/// The original's conf.yaml (molteniron/conf.yaml), with `maxTime` set to `max_time`.
fn original_conf_yaml(max_time: u32) -> String {
    format!(
        "mi_port: 5656\nserverIP: 127.0.0.1\ntimeout: 5\nretry: 5\nmaxTime: {max_time}\nlogdir: \"/tmp\"\n\
         maxLogDays: 15\nsqlUser: \"openstack_citest\"\nsqlPass: \"openstack_citest\"\n"
    )
}

fn contrib() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("contrib")
}

fn molteniron_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_molteniron"))
}

/// Fails the test when python3 is missing (scripts/test installs it): the hook needs it, and a test that
/// passes without running would prove nothing.
fn require_python3() {
    let found = Command::new("python3")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        found,
        "python3 not found: the DevStack hook drop-in needs it (scripts/test installs it)"
    );
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// `program` with the test database and no config file; PATH starts with molteniron's directory and
/// contrib/, as tox put its installed scripts first on PATH.
fn command(db: &TestDb, program: impl AsRef<std::ffi::OsStr>, cwd: &Path) -> Command {
    let bin_dir = molteniron_bin().parent().unwrap().to_owned();
    let path = std::env::join_paths(
        [bin_dir, contrib()]
            .into_iter()
            .chain(std::env::split_paths(
                &std::env::var_os("PATH").unwrap_or_default(),
            )),
    )
    .unwrap();
    let mut cmd = Command::new(program);
    cmd.current_dir(cwd)
        .env("PATH", path)
        .env("MOLTENIRON_DATABASE_URL", db.url())
        .env("MOLTENIRON_CONFIG", "/dev/null")
        .env_remove("DATABASE_URL")
        .env_remove("MOLTENIRON");
    cmd
}

/// Runs `cmd` and returns (exit code, stdout, stderr).
fn run(mut cmd: Command) -> (i32, String, String) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (
        out.status.code().unwrap_or(-1),
        text(&out.stdout),
        text(&out.stderr),
    )
}

/// Every node, secrets shown.
fn all_nodes(db: &TestDb) -> Vec<Value> {
    let out = db.ok(&["status", "--show-secrets", "-o", "json"]);
    serde_json::from_str::<Value>(&out)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

fn held_by(db: &TestDb, owner: &str) -> Vec<Value> {
    all_nodes(db)
        .into_iter()
        .filter(|n| n["owner"] == owner)
        .collect()
}

fn lease_seconds(node: &Value) -> i64 {
    let time = |v: &Value| chrono::DateTime::parse_from_rfc3339(v.as_str().unwrap()).unwrap();
    (time(&node["lease_expires_at"]) - time(&node["allocated_at"])).num_seconds()
}

#[test]
fn the_original_tox_sequence_passes_and_writes_the_golden_devstack_files() {
    require_python3();
    let db = TestDb::unmigrated();
    let dir = tempfile::tempdir().unwrap();
    // What tox's `mkdir -p testenv/tmp/` and `setup.py install --install-data=testenv/` left behind.
    std::fs::create_dir_all(dir.path().join("testenv/tmp")).unwrap();
    std::fs::create_dir_all(dir.path().join("testenv/etc/molteniron")).unwrap();
    std::fs::write(
        dir.path().join("testenv/etc/molteniron/conf.yaml"),
        original_conf_yaml(6000),
    )
    .unwrap();

    for line in TOX_SEQUENCE {
        let words = shlex::split(line).unwrap();
        let mut cmd = command(&db, &words[0], dir.path());
        cmd.args(&words[1..]);
        let (code, out, err) = run(cmd);
        assert_eq!(code, 0, "{line}\nstdout: {out}\nstderr: {err}");
        assert_clean(&err);
        if line.contains("get_field") {
            assert_eq!(out, "de:ad:be:ef:00:01\n", "{line}");
        }
    }
    // diff testenv/tmp/hardware_info molteniron/tests/hardware_info.good, and the same for localrc.
    assert_eq!(
        read(&dir.path().join("testenv/tmp/hardware_info")),
        HARDWARE_INFO_GOOD
    );
    assert_eq!(read(&dir.path().join("testenv/tmp/localrc")), LOCALRC_GOOD);

    // test2's values lost their quotes; the hook's random owner holds test1 for conf.yaml's maxTime.
    let nodes = all_nodes(&db);
    assert_eq!(nodes[1]["name"], "test2");
    assert_eq!(nodes[1]["driver_info"]["ipmi_username"], "user");
    assert_eq!(nodes[1]["driver_info"]["ipmi_password"], "password");
    assert_eq!(nodes[0]["state"], "allocated");
    assert_eq!(nodes[0]["owner"].as_str().unwrap().len(), 36, "a UUID");
    assert_eq!(lease_seconds(&nodes[0]), 6000);

    // The original's test2 line as it stands: refused, since test1 has that MAC.
    let original = r#"molteniron add_keyvalue_pairs test3 10.1.2.2 10.1.2.5,10.1.2.6 'ipmi_user="user"' 'ipmi_password="password"' 'port_hwaddr="de:ad:be:ef:00:01"' 'cpu_arch=ppc64el' 'cpus=8' 'ram_mb=2048' 'disk_gb=32'"#;
    let words = shlex::split(original).unwrap();
    let err = db.fails(
        &words[1..].iter().map(String::as_str).collect::<Vec<_>>(),
        6,
    );
    assert!(err.contains("de:ad:be:ef:00:01"), "{err}");
}

/// A node in pool `pool` with ipmi 10.1.3.N, MAC de:ad:be:ef:01:0N, user userN / password pwN and
/// allocation pool 10.1.4.N.
fn add_node(db: &TestDb, name: &str, n: u8, pool: &str) {
    db.ok(&[
        "add_baremetal",
        name,
        &format!("10.1.3.{n}"),
        &format!("user{n}"),
        &format!("pw{n}"),
        &format!("10.1.4.{n}"),
        &format!("de:ad:be:ef:01:0{n}"),
        "x86_64",
        "4",
        "1024",
        "16",
        pool,
    ]);
}

/// What the hook writes for the node `add_node` made with `n`: (hardware_info, localrc).
fn files_for(n: u8) -> (String, String) {
    (
        format!("10.1.3.{n} de:ad:be:ef:01:0{n} user{n} pw{n}\n"),
        format!(
            "IRONIC_HW_ARCH=x86_64\nIRONIC_HW_NODE_CPU=4\nIRONIC_HW_NODE_RAM=1024\nIRONIC_HW_NODE_DISK=16\n\
             ALLOCATION_POOL=\"start=10.1.4.{n},end=10.1.4.{n}\"\n"
        ),
    )
}

/// One way a job may call the hook.
struct HookForm {
    program: String,
    /// Arguments before the file options.
    before: Vec<String>,
    /// `--hardware-info=FILE --localrc=FILE`, else `-i FILE -l FILE`.
    long_file_options: bool,
    /// OWNER NUMBER [NODE_POOL], after the file options.
    rest: &'static [&'static str],
    owner: &'static str,
    /// The node expected (see [`add_node`]) and its lease in seconds.
    node: u8,
    lease: i64,
}

#[test]
fn the_hook_drop_in_takes_the_original_command_lines() {
    require_python3();
    let db = TestDb::new();
    for n in 1..=4 {
        add_node(
            &db,
            &format!("hook{n}"),
            n,
            if n == 1 { "default" } else { "ppc" },
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("etc");
    std::fs::create_dir(&conf).unwrap();
    std::fs::write(conf.join("conf.yaml"), original_conf_yaml(4321)).unwrap();
    let conf = conf.to_str().unwrap().to_owned();
    let py = contrib().join("test_hook_mi_ipmiblob.py");
    let sh = contrib().join("test_hook_mi_ipmiblob.sh");
    let (py, sh) = (py.to_str().unwrap(), sh.to_str().unwrap());

    let forms = [
        HookForm {
            program: py.into(),
            before: vec![],
            long_file_options: true,
            rest: &["job-py", "1"],
            owner: "job-py",
            node: 1,
            lease: 6000,
        },
        HookForm {
            program: "python3".into(),
            before: vec![py.into(), "-c".into(), conf.clone()],
            long_file_options: true,
            rest: &["job-python3", "1", "ppc"],
            owner: "job-python3",
            node: 2,
            lease: 4321,
        },
        HookForm {
            program: sh.into(),
            before: vec![format!("--conf-dir={conf}")],
            long_file_options: false,
            rest: &["job-sh", "1", "ppc"],
            owner: "job-sh",
            node: 3,
            lease: 4321,
        },
        HookForm {
            program: "sh".into(),
            before: vec![sh.into(), "--conf-dir".into(), conf.clone()],
            long_file_options: false,
            // "--" lets an owner start with "-", as with any argparse program.
            rest: &["--", "-job-sh2", "1", "ppc"],
            owner: "-job-sh2",
            node: 4,
            lease: 4321,
        },
    ];
    for (i, form) in forms.into_iter().enumerate() {
        let hardware_info = dir.path().join(format!("hardware_info{i}"));
        let localrc = dir.path().join(format!("localrc{i}"));
        std::fs::write(&localrc, "HOST_IP=10.0.0.1\n").unwrap();
        let mut cmd = command(&db, &form.program, dir.path());
        // molteniron through MOLTENIRON alone: the test's own PATH does not hold it.
        cmd.env("MOLTENIRON", molteniron_bin())
            .env("PATH", std::env::var_os("PATH").unwrap_or_default());
        cmd.args(&form.before);
        if form.long_file_options {
            cmd.arg(format!("--hardware-info={}", hardware_info.display()))
                .arg(format!("--localrc={}", localrc.display()));
        } else {
            cmd.arg("-i").arg(&hardware_info).arg("-l").arg(&localrc);
        }
        cmd.args(form.rest);
        let (code, out, err) = run(cmd);
        assert_eq!(code, 0, "form {i}: {err}");
        assert_eq!(
            out, "",
            "form {i}: the hook prints nothing (no passwords in the job log)"
        );
        let (want_hw, want_rc) = files_for(form.node);
        assert_eq!(read(&hardware_info), want_hw, "form {i}");
        assert_eq!(
            read(&localrc),
            format!("HOST_IP=10.0.0.1\n{want_rc}"),
            "form {i}"
        );
        let held = held_by(&db, form.owner);
        assert_eq!(held.len(), 1, "form {i}");
        assert_eq!(held[0]["name"], format!("hook{}", form.node), "form {i}");
        assert_eq!(lease_seconds(&held[0]), form.lease, "form {i}");
    }

    // molteniron's exit codes come through: not enough nodes is 3, and no file is left behind.
    let hardware_info = dir.path().join("hw-none");
    let mut cmd = command(&db, sh, dir.path());
    cmd.env("MOLTENIRON", molteniron_bin());
    cmd.arg("-i")
        .arg(&hardware_info)
        .arg("-l")
        .arg(dir.path().join("rc-none"));
    cmd.args(["job-more", "1", "ppc"]);
    let (code, out, err) = run(cmd);
    assert_eq!((code, out.as_str()), (3, ""), "{err}");
    assert!(
        err.starts_with("molteniron: error: Not enough available nodes"),
        "{err}"
    );
    assert!(!hardware_info.exists());

    // A bad command line is argparse's exit 2, as with the original; no molteniron is exit 127.
    let mut cmd = command(&db, py, dir.path());
    cmd.args(["-i", "hw", "job-x", "1"]);
    let (code, _, err) = run(cmd);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("-l/--localrc"), "{err}");
    let mut cmd = command(&db, py, dir.path());
    cmd.env("MOLTENIRON", dir.path().join("no-such-molteniron"));
    cmd.args(["-i", "hw", "-l", "rc", "job-x", "1"]);
    let (code, _, err) = run(cmd);
    assert_eq!(code, 127, "{err}");
    assert!(err.contains("MOLTENIRON"), "{err}");
}
