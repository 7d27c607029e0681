//! allocate --hardware-info / --localrc: the files DevStack's Ironic set-up reads, byte for byte.

use std::path::Path;

use crate::support::{TestDb, count};

/// The golden node: ipmi 10.1.2.1, MAC de:ad:be:ef:00:01, user/password, ppc64el, 8 CPUs, 2048 MB, 32 GB,
/// allocation pool 10.1.2.3 and 10.1.2.4.
fn golden_node(db: &TestDb) {
    db.ok(&[
        "add_baremetal",
        "devstack1",
        "10.1.2.1",
        "user",
        "password",
        "10.1.2.3,10.1.2.4",
        "de:ad:be:ef:00:01",
        "ppc64el",
        "8",
        "2048",
        "32",
    ]);
}

const GOLDEN_LOCALRC: &str = "IRONIC_HW_ARCH=ppc64el
IRONIC_HW_NODE_CPU=8
IRONIC_HW_NODE_RAM=2048
IRONIC_HW_NODE_DISK=32
ALLOCATION_POOL=\"start=10.1.2.3,end=10.1.2.3 --allocation-pool start=10.1.2.4,end=10.1.2.4\"
";

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

fn allocated(db: &TestDb) -> i64 {
    count(
        &mut db.conn(),
        "SELECT count(*) AS n FROM nodes WHERE state = 'allocated'",
    )
}

#[test]
fn allocate_writes_the_golden_hardware_info_and_localrc() {
    let db = TestDb::new();
    golden_node(&db);
    let dir = tempfile::tempdir().unwrap();
    let hardware_info = dir.path().join("hardware_info");
    let localrc = dir.path().join("localrc");
    std::fs::write(
        &hardware_info,
        "stale content that is much longer than the new line\nand a second line\n",
    )
    .unwrap();
    let existing = "[[local|localrc]]\nADMIN_PASSWORD=secret\n";
    std::fs::write(&localrc, existing).unwrap();

    db.ok(&[
        "allocate",
        "job-1",
        "1",
        "--hardware-info",
        hardware_info.to_str().unwrap(),
        "--localrc",
        localrc.to_str().unwrap(),
    ]);
    assert_eq!(
        read(&hardware_info),
        "10.1.2.1 de:ad:be:ef:00:01 user password\n"
    );
    assert_eq!(read(&localrc), format!("{existing}{GOLDEN_LOCALRC}"));
    assert_eq!(allocated(&db), 1);
}

#[test]
fn devstack_files_are_created_when_missing() {
    let db = TestDb::new();
    golden_node(&db);
    let dir = tempfile::tempdir().unwrap();
    let hardware_info = dir.path().join("hw");
    let localrc = dir.path().join("rc");
    db.ok(&[
        "allocate",
        "job-1",
        "--hardware-info",
        hardware_info.to_str().unwrap(),
        "--localrc",
        localrc.to_str().unwrap(),
    ]);
    assert_eq!(
        read(&hardware_info),
        "10.1.2.1 de:ad:be:ef:00:01 user password\n"
    );
    assert_eq!(read(&localrc), GOLDEN_LOCALRC);
}

#[test]
fn localrc_without_a_final_newline_keeps_its_last_line() {
    let db = TestDb::new();
    golden_node(&db);
    let dir = tempfile::tempdir().unwrap();
    let localrc = dir.path().join("localrc");
    std::fs::write(&localrc, "HOST_IP=10.0.0.1").unwrap();
    db.ok(&["allocate", "job-1", "--localrc", localrc.to_str().unwrap()]);
    assert_eq!(
        read(&localrc),
        format!("HOST_IP=10.0.0.1\n{GOLDEN_LOCALRC}")
    );
}

#[test]
fn several_nodes_give_one_hardware_line_each_and_every_ip() {
    let db = TestDb::new();
    golden_node(&db);
    db.ok(&[
        "add_baremetal",
        "devstack2",
        "10.1.2.2",
        "user2",
        "password2",
        "10.1.2.5",
        "de:ad:be:ef:00:02",
        "x86_64",
        "4",
        "1024",
        "16",
    ]);
    let dir = tempfile::tempdir().unwrap();
    let hardware_info = dir.path().join("hw");
    let localrc = dir.path().join("rc");
    db.ok(&[
        "allocate",
        "job-1",
        "2",
        "--hardware-info",
        hardware_info.to_str().unwrap(),
        "--localrc",
        localrc.to_str().unwrap(),
    ]);
    assert_eq!(
        read(&hardware_info),
        "10.1.2.1 de:ad:be:ef:00:01 user password\n10.1.2.2 de:ad:be:ef:00:02 user2 password2\n"
    );
    // The hardware settings are the first node's; the allocation pool is every node's.
    assert_eq!(
        read(&localrc),
        "IRONIC_HW_ARCH=ppc64el
IRONIC_HW_NODE_CPU=8
IRONIC_HW_NODE_RAM=2048
IRONIC_HW_NODE_DISK=32
ALLOCATION_POOL=\"start=10.1.2.3,end=10.1.2.3 --allocation-pool start=10.1.2.4,end=10.1.2.4 --allocation-pool start=10.1.2.5,end=10.1.2.5\"
"
    );
}

#[test]
fn unwritable_paths_fail_before_allocating() {
    let db = TestDb::new();
    golden_node(&db);
    let dir = tempfile::tempdir().unwrap();
    let hardware_info = dir.path().join("hw");
    std::fs::write(&hardware_info, "previous\n").unwrap();
    let hw = hardware_info.to_str().unwrap();
    let dir_path = dir.path().to_str().unwrap();
    for args in [
        &[
            "allocate",
            "job-1",
            "--hardware-info",
            "/nonexistent/dir/file",
        ][..],
        &["allocate", "job-1", "--localrc", "/nonexistent/dir/file"],
        &[
            "allocate",
            "job-1",
            "--hardware-info",
            hw,
            "--localrc",
            "/nonexistent/dir/file",
        ],
        &["allocate", "job-1", "--localrc", dir_path],
    ] {
        let err = db.fails(args, 1);
        assert!(err.contains("opening "), "{args:?}: {err}");
        assert_eq!(allocated(&db), 0, "{args:?} allocated a node");
        assert_eq!(read(&hardware_info), "previous\n", "{args:?}");
    }
    assert_eq!(
        count(
            &mut db.conn(),
            "SELECT count(*) AS n FROM events WHERE action = 'allocate'"
        ),
        0
    );
}

#[test]
fn not_enough_nodes_leaves_the_devstack_files_alone() {
    let db = TestDb::new();
    golden_node(&db);
    let dir = tempfile::tempdir().unwrap();
    let hardware_info = dir.path().join("hw");
    let localrc = dir.path().join("rc");
    std::fs::write(&hardware_info, "previous\n").unwrap();
    std::fs::write(&localrc, "A=1\n").unwrap();
    db.ok(&["allocate", "holder"]); // the only node: busy, so exit 3
    db.fails(
        &[
            "allocate",
            "job-1",
            "1",
            "--hardware-info",
            hardware_info.to_str().unwrap(),
            "--localrc",
            localrc.to_str().unwrap(),
        ],
        3,
    );
    assert_eq!(read(&hardware_info), "previous\n");
    assert_eq!(read(&localrc), "A=1\n");
    assert_eq!(allocated(&db), 1);
}

#[test]
fn a_failed_allocation_removes_devstack_files_it_created() {
    let db = TestDb::new();
    golden_node(&db);
    let dir = tempfile::tempdir().unwrap();
    let hardware_info = dir.path().join("hw");
    let localrc = dir.path().join("rc");
    let args = [
        "allocate",
        "job-1",
        "2",
        "--hardware-info",
        hardware_info.to_str().unwrap(),
        "--localrc",
        localrc.to_str().unwrap(),
    ];
    db.fails(&args, 8); // more than the pool has: unsatisfiable
    assert!(
        !hardware_info.exists() && !localrc.exists(),
        "files created for a failed allocation stay behind"
    );
}

/// The hardware info format is four space-separated fields: a BMC user or password with whitespace in it
/// would shift them (DevStack would read the password's first word). Such a request is refused before
/// anything stays allocated, the message names the node and the field but not the value, no file is left
/// behind, and without --hardware-info the same node can still be allocated.
#[test]
fn a_credential_with_whitespace_is_refused_for_the_hardware_info_file_and_nothing_is_allocated() {
    let db = TestDb::new();
    for (name, user, password, n) in [
        ("spaced-pw", "user", "two words", 1),
        ("tabbed-user", "us\ter", "password", 2),
    ] {
        let (ip, pool_ip, mac) = (
            format!("10.1.3.{n}"),
            format!("10.1.3.10{n}"),
            format!("de:ad:be:ef:00:1{n}"),
        );
        db.ok(&[
            "add_baremetal",
            name,
            &ip,
            user,
            password,
            &pool_ip,
            &mac,
            "x86_64",
            "8",
            "2048",
            "32",
            name,
        ]);
    }
    let dir = tempfile::tempdir().unwrap();
    let hardware_info = dir.path().join("hardware_info");
    for (pool, field) in [("spaced-pw", "BMC password"), ("tabbed-user", "BMC user")] {
        let err = db.fails(
            &[
                "allocate",
                "job-1",
                "1",
                pool,
                "--hardware-info",
                hardware_info.to_str().unwrap(),
            ],
            1,
        );
        assert!(
            err.contains(&format!("node {pool}: the {field} contains whitespace")),
            "{err}"
        );
        assert!(!err.contains("two words"), "{err}");
        assert!(
            !hardware_info.exists(),
            "a refused allocation leaves no file"
        );
        assert_eq!(allocated(&db), 0, "nothing stays allocated");
    }
    db.ok(&["allocate", "job-1", "1", "spaced-pw"]);
    assert_eq!(allocated(&db), 1);
}

/// localrc describes one shape: when the nodes differ, allocate says on stderr whose values it wrote.
#[test]
fn localrc_for_nodes_of_different_shapes_warns_which_node_it_describes() {
    let db = TestDb::new();
    golden_node(&db);
    db.ok(&[
        "add_baremetal",
        "devstack2",
        "10.1.2.2",
        "user",
        "password",
        "10.1.2.5",
        "de:ad:be:ef:00:02",
        "ppc64el",
        "16",
        "2048",
        "32",
    ]);
    let dir = tempfile::tempdir().unwrap();
    let localrc = dir.path().join("localrc");
    let (code, _, stderr) = db.run(&[
        "allocate",
        "job-1",
        "2",
        "--localrc",
        localrc.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains("warning: the nodes differ in hardware (devstack2 is not like devstack1)"),
        "{stderr}"
    );
    assert!(read(&localrc).contains("IRONIC_HW_NODE_CPU=8\n"));
    db.ok(&["release", "job-1"]);
    // One shape, or no localrc: no warning.
    let (_, _, stderr) = db.run(&[
        "allocate",
        "job-2",
        "1",
        "--localrc",
        localrc.to_str().unwrap(),
    ]);
    assert!(!stderr.contains("warning"), "{stderr}");
    db.ok(&["release", "job-2"]);
    let (_, _, stderr) = db.run(&["allocate", "job-3", "2"]);
    assert!(!stderr.contains("warning"), "{stderr}");
}
