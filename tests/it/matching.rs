//! Hardware matching on allocate and status (Ironic's semantics): each filter alone and combined, any pool,
//! candidate nodes by name and id, fail-fast (exit 8) against busy (exit 3), the JSON error shape, hostile
//! values matched literally, and usage errors that write nothing.

use std::collections::BTreeSet;

use crate::support::{TestDb, count, json, names};

/// Six nodes of two shapes in two pools:
///
/// | node | pool | arch | cpus | memory | disk | driver | resource class | traits | extra |
/// |---|---|---|---|---|---|---|---|---|---|
/// | p1 | power | ppc64el | 16 | 32768 | 250 | ipmi | baremetal.power | CUSTOM_A | rack: "r1" |
/// | p2 | power | ppc64el | 16 | 32768 | 500 | ipmi | baremetal.power | CUSTOM_A, CUSTOM_B | rack: "r2" |
/// | p3 | power | ppc64el | 32 | 65536 | 500 | ipmi | baremetal.power | | rack: "r1", gen: 9 |
/// | x1 | x86 | x86_64 | 64 | 262144 | 1800 | redfish | baremetal.gpu | CUSTOM_GPU | rack: "r1", gen: 4 |
/// | x2 | x86 | x86_64 | 64 | 262144 | 1800 | redfish | baremetal.gpu | CUSTOM_GPU, CUSTOM_B | gen: 4.0 |
/// | x3 | x86 | x86_64 | 8 | 16384 | 100 | ipmi | | | |
fn two_shapes(db: &TestDb) {
    let node = |name: &str,
                pool: &str,
                n: u8,
                driver: &str,
                (arch, cpus, mem, disk): (&str, u32, u32, u32),
                extra_props: &str,
                ironic: &str| {
        let bmc = if driver == "redfish" {
            format!(
                "{{redfish_address: 'https://10.5.0.{n}', redfish_username: u, redfish_password: pw{n}, redfish_system_id: /redfish/v1/Systems/1}}"
            )
        } else {
            format!("{{ipmi_address: 10.5.0.{n}, ipmi_username: u, ipmi_password: pw{n}}}")
        };
        format!(
            "  - {{name: {name}, pool: {pool}, driver: {driver}, driver_info: {bmc}, \
             properties: {{cpu_arch: {arch}, cpus: {cpus}, memory_mb: {mem}, local_gb: {disk}{extra_props}}}, \
             ports: [{{address: '02:00:00:05:00:0{n}'}}]{ironic}}}\n"
        )
    };
    let mut yaml = String::from("nodes:\n");
    let power = ("ppc64el", 16, 32768, 250);
    yaml += &node(
        "p1",
        "power",
        1,
        "ipmi",
        power,
        ", rack: r1",
        ", resource_class: baremetal.power, traits: [CUSTOM_A]",
    );
    yaml += &node(
        "p2",
        "power",
        2,
        "ipmi",
        ("ppc64el", 16, 32768, 500),
        ", rack: r2",
        ", resource_class: baremetal.power, traits: [CUSTOM_A, CUSTOM_B]",
    );
    yaml += &node(
        "p3",
        "power",
        3,
        "ipmi",
        ("ppc64el", 32, 65536, 500),
        ", rack: r1, gen: 9",
        ", resource_class: baremetal.power",
    );
    let gpu = ("x86_64", 64, 262144, 1800);
    yaml += &node(
        "x1",
        "x86",
        4,
        "redfish",
        gpu,
        ", rack: r1, gen: 4",
        ", resource_class: baremetal.gpu, traits: [CUSTOM_GPU]",
    );
    yaml += &node(
        "x2",
        "x86",
        5,
        "redfish",
        gpu,
        ", gen: 4.0",
        ", resource_class: baremetal.gpu, traits: [CUSTOM_GPU, CUSTOM_B]",
    );
    yaml += &node("x3", "x86", 6, "ipmi", ("x86_64", 8, 16384, 100), "", "");
    db.import(&yaml);
}

/// The names `status` lists for `filters` (any state), in id order.
fn matching(db: &TestDb, filters: &[&str]) -> Vec<String> {
    let mut args = vec!["status", "-o", "json"];
    args.extend_from_slice(filters);
    names(&json(&db.ok(&args)))
}

#[test]
fn each_filter_alone_and_combined_selects_what_ironic_would() {
    let db = TestDb::new();
    two_shapes(&db);
    let cases: &[(&[&str], &[&str])] = &[
        (&[], &["p1", "p2", "p3", "x1", "x2", "x3"]),
        (&["--arch", "ppc64el"], &["p1", "p2", "p3"]),
        (&["--min-cpus", "32"], &["p3", "x1", "x2"]),
        (&["--min-cpus", "16"], &["p1", "p2", "p3", "x1", "x2"]),
        (&["--min-memory-mb", "65536"], &["p3", "x1", "x2"]),
        (&["--min-disk-gb", "500"], &["p2", "p3", "x1", "x2"]),
        (&["--driver", "redfish"], &["x1", "x2"]),
        (
            &["--resource-class", "baremetal.power"],
            &["p1", "p2", "p3"],
        ),
        (&["--trait", "CUSTOM_A"], &["p1", "p2"]),
        // Ironic's rule: every required trait, not any.
        (&["--trait", "CUSTOM_A", "--trait", "CUSTOM_B"], &["p2"]),
        (&["--trait", "CUSTOM_B"], &["p2", "x2"]),
        (&["--property", "rack=r1"], &["p1", "p3", "x1"]),
        // A number compares as a number: 4 matches 4 and 4.0.
        (&["--property", "gen=4"], &["x1", "x2"]),
        (&["--property", "gen=4", "--property", "rack=r1"], &["x1"]),
        (&["--node", "p3", "--node", "x1"], &["p3", "x1"]),
        (&["--pool", "x86", "--min-cpus", "16"], &["x1", "x2"]),
        (
            &[
                "--arch",
                "x86_64",
                "--min-cpus",
                "16",
                "--trait",
                "CUSTOM_GPU",
                "--driver",
                "redfish",
            ],
            &["x1", "x2"],
        ),
        (&["--arch", "ppc64el", "--driver", "redfish"], &[]),
        (&["--trait", "NO_SUCH"], &[]),
    ];
    for (filters, want) in cases {
        assert_eq!(matching(&db, filters), *want, "status {filters:?}");
    }
    // The same on allocate: the lowest-id matching nodes, all or nothing.
    let got = names(&json(&db.ok(&[
        "allocate",
        "job-1",
        "2",
        "--min-cpus",
        "16",
        "--trait",
        "CUSTOM_B",
        "-o",
        "json",
    ])));
    assert_eq!(
        got,
        ["p2", "x2"],
        "one node of each pool: any pool by default"
    );
    let got = names(&json(&db.ok(&[
        "allocate",
        "job-2",
        "1",
        "x86",
        "--min-cpus",
        "16",
        "-o",
        "json",
    ])));
    assert_eq!(got, ["x1"]);
    let got = names(&json(&db.ok(&[
        "allocate",
        "job-3",
        "1",
        "--any-pool",
        "--property",
        "rack=r1",
        "-o",
        "json",
    ])));
    assert_eq!(got, ["p1"]);
}

#[test]
fn candidate_nodes_by_name_and_id() {
    let db = TestDb::new();
    two_shapes(&db);
    let all = json(&db.ok(&["status", "-o", "json"]));
    let id_of = |name: &str| {
        all.as_array()
            .unwrap()
            .iter()
            .find(|n| n["name"] == name)
            .unwrap()["id"]
            .to_string()
    };
    let x3 = id_of("x3");
    let got = names(&json(&db.ok(&[
        "allocate", "job-1", "2", "--node", &x3, "--node", "p2", "-o", "json",
    ])));
    assert_eq!(got, ["p2", "x3"]);
    // Candidates that are taken: not now (exit 3), since they exist.
    db.fails(&["allocate", "job-2", "1", "--node", "p2"], 3);
}

#[test]
fn no_pool_means_any_pool_and_a_named_pool_means_only_that_one() {
    let db = TestDb::new();
    two_shapes(&db);
    let got = names(&json(&db.ok(&["allocate", "job-1", "4", "-o", "json"])));
    assert_eq!(got, ["p1", "p2", "p3", "x1"], "lowest ids of every pool");
    db.ok(&["release", "job-1"]);
    // The original MoltenIron's own default pool name also meant any pool.
    let got = names(&json(
        &db.ok(&["allocate", "job-1", "4", "Default", "-o", "json"]),
    ));
    assert_eq!(got, ["p1", "p2", "p3", "x1"]);
    db.ok(&["release", "job-1"]);
    let got =
        names(&json(&db.ok(&[
            "allocate", "job-1", "1", "--pool", "x86", "-o", "json",
        ])));
    assert_eq!(got, ["x1"]);
    db.fails(&["allocate", "job-2", "1", "x86", "--any-pool"], 2);
    db.fails(
        &["allocate", "job-2", "1", "--pool", "x86", "--any-pool"],
        2,
    );
}

#[test]
fn never_is_exit_8_busy_is_exit_3_and_maintenance_counts_as_possible() {
    let db = TestDb::new();
    two_shapes(&db);
    let err = db.fails(&["allocate", "job-1", "2", "power", "--min-cpus", "32"], 8);
    assert!(
        err.contains(
            "Not enough available nodes found. Found 1, requested 2 \
             (only 1 node of pool power matches --min-cpus 32, in any state)"
        ),
        "{err}"
    );
    let err = db.fails(&["allocate", "job-1", "1", "ppc64le"], 8);
    assert!(
        err.contains("(there is no pool \"ppc64le\"; pools: power, x86)"),
        "{err}"
    );
    // Only in maintenance: it exists, so it may come back (exit 3, not 8).
    db.ok(&["maintenance", "p3", "--reason", "fan"]);
    let err = db.fails(
        &[
            "allocate",
            "job-1",
            "1",
            "--min-cpus",
            "32",
            "--arch",
            "ppc64el",
        ],
        3,
    );
    assert!(err.contains("Found 0, requested 1"), "{err}");
    // Busy: held by another job.
    db.ok(&[
        "allocate",
        "holder",
        "1",
        "--trait",
        "CUSTOM_GPU",
        "--trait",
        "CUSTOM_B",
    ]);
    db.fails(
        &[
            "allocate", "job-1", "1", "--trait", "CUSTOM_B", "--driver", "redfish",
        ],
        3,
    );
    assert_eq!(
        count(
            &mut db.conn(),
            "SELECT count(*) AS n FROM events WHERE action = 'allocate' AND owner = 'job-1'"
        ),
        0,
        "a refused request allocates nothing"
    );
}

#[test]
fn a_failed_allocate_with_json_output_prints_one_error_object() {
    let db = TestDb::new();
    two_shapes(&db);
    let (code, stdout, stderr) = db.run(&[
        "allocate",
        "job-1",
        "3",
        "--arch",
        "x86_64",
        "--min-cpus",
        "64",
        "-o",
        "json",
    ]);
    assert_eq!(code, 8, "{stderr}");
    assert!(stderr.starts_with("molteniron: error: Not enough available nodes found."));
    let error = json(&stdout);
    assert_eq!(error["error"], "unsatisfiable");
    assert_eq!(error["found"], 2);
    assert_eq!(error["requested"], 3);
    assert_eq!(error["matching"], 2);
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("only 2 nodes of any pool match --arch x86_64 --min-cpus 64"),
        "{error}"
    );
    let keys: BTreeSet<&str> = error
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        BTreeSet::from(["error", "found", "requested", "matching", "message"])
    );

    db.ok(&["allocate", "holder", "1", "--node", "x1"]);
    db.ok(&["allocate", "holder2", "1", "--node", "x2"]);
    let (code, stdout, _) = db.run(&[
        "allocate",
        "job-1",
        "1",
        "--trait",
        "CUSTOM_GPU",
        "-o",
        "json",
    ]);
    assert_eq!(code, 3);
    let error = json(&stdout);
    assert_eq!(error["error"], "not_enough_nodes");
    assert_eq!(
        (error["found"].as_i64(), error["matching"].as_i64()),
        (Some(0), Some(2))
    );
}

#[test]
fn hostile_filter_values_match_literally_and_bad_ones_are_usage_errors() {
    let db = TestDb::new();
    two_shapes(&db);
    db.ok(&[
        "set-field",
        "x3",
        "properties.label",
        "50% o'clock_\"x\" ünï",
    ]);
    for value in [
        "'; DROP TABLE nodes; --",
        "%",
        "_",
        "r%",
        "50% o'clock_\"x\"",
        "ünï",
    ] {
        assert!(
            matching(&db, &["--property", &format!("label={value}")]).is_empty(),
            "{value:?} matched as a pattern"
        );
        assert!(matching(&db, &["--arch", value]).is_empty(), "{value:?}");
        assert!(matching(&db, &["--trait", value]).is_empty(), "{value:?}");
    }
    assert_eq!(
        matching(&db, &["--property", "label=50% o'clock_\"x\" ünï"]),
        ["x3"]
    );
    assert_eq!(
        matching(&db, &["--min-cpus", "18446744073709551615"]),
        Vec::<String>::new()
    );
    assert_eq!(
        matching(&db, &["--property", "gen=1e400"]),
        Vec::<String>::new(),
        "a number too large for a float is text, and matches nothing"
    );
    let before = count(&mut db.conn(), "SELECT count(*) AS n FROM events");
    for bad in [
        &["--min-cpus", "-1"][..],
        &["--min-cpus", "eight"],
        &["--min-cpus", "18446744073709551616"],
        &["--min-memory-mb", ""],
        &["--arch", ""],
        &["--trait", " "],
        &["--property", "noequals"],
        &["--property", "=v"],
        &["--property", "k="],
        &["--property", "bad key=v"],
        &["--node", ""],
        &["--no-such-filter", "x"],
    ] {
        let mut args = vec!["allocate", "job-1", "1"];
        args.extend_from_slice(bad);
        let err = db.fails(&args, 2);
        assert!(err.starts_with("molteniron: error:"), "{bad:?}: {err}");
        let mut args = vec!["status"];
        args.extend_from_slice(bad);
        db.fails(&args, 2);
    }
    assert_eq!(
        count(&mut db.conn(), "SELECT count(*) AS n FROM events"),
        before,
        "a usage error writes nothing"
    );
}

/// `--property KEY=VALUE` compares as text, or as numbers when both are numbers: a value set-field stored
/// as text matches, `4` matches `4.0`, and a long number is compared exactly (as PostgreSQL numeric),
/// never through floating point.
#[test]
fn property_values_match_as_text_or_exactly_as_numbers() {
    let db = TestDb::new();
    two_shapes(&db);
    db.ok(&["set-field", "x3", "properties.rack_unit", "12"]); // stored as text "12"
    db.ok(&[
        "set-field",
        "x3",
        "properties.serial",
        "12345678901234567000",
        "--type",
        "json",
    ]);
    db.ok(&[
        "set-field",
        "p1",
        "properties.serial",
        "12345678901234567890",
        "--type",
        "json",
    ]);
    assert_eq!(matching(&db, &["--property", "rack_unit=12"]), ["x3"]);
    assert_eq!(matching(&db, &["--property", "gen=4.0"]), ["x1", "x2"]);
    assert_eq!(
        matching(&db, &["--property", "serial=12345678901234567890"]),
        ["p1"]
    );
    assert_eq!(
        matching(&db, &["--property", "serial=12345678901234567000"]),
        ["x3"]
    );
    let err = db.fails(
        &[
            "allocate",
            "job",
            "1",
            "--property",
            "rack=r1",
            "--property",
            "rack=r2",
        ],
        2,
    );
    assert!(err.contains("--property rack=... is given twice"), "{err}");
    let err = db.fails(&["allocate", "job", "1", "--min-cpus", "-1"], 2);
    assert!(err.contains("'--min-cpus <N>'"), "the flag is named: {err}");
}

/// Ironic's traits are a list: a trait given as plain text would never match --trait, so it is refused.
#[test]
fn traits_must_be_a_list_of_names() {
    let db = TestDb::new();
    two_shapes(&db);
    let err = db.fails(&["set-field", "x3", "traits", "CUSTOM_GPU"], 1);
    assert!(err.contains("traits must be a list"), "{err}");
    db.ok(&[
        "set-field",
        "x3",
        "traits",
        r#"["CUSTOM_GPU"]"#,
        "--type",
        "json",
    ]);
    assert_eq!(
        matching(&db, &["--trait", "CUSTOM_GPU"]),
        ["x1", "x2", "x3"]
    );
}

/// A retried allocate gets the owner's nodes back only when they match the request: asking again with
/// other filters is a conflict, not a silent hand-back of the wrong machine.
#[test]
fn a_retry_gets_its_nodes_back_only_when_they_match_the_request() {
    let db = TestDb::new();
    two_shapes(&db);
    let first =
        names(&json(&db.ok(&[
            "allocate", "job", "1", "--arch", "x86_64", "-o", "json",
        ])));
    assert_eq!(first, ["x1"]);
    let again =
        names(&json(&db.ok(&[
            "allocate", "job", "1", "--arch", "x86_64", "-o", "json",
        ])));
    assert_eq!(again, first, "the same request again gets the same node");
    let err = db.fails(&["allocate", "job", "1", "--arch", "ppc64el"], 6);
    assert!(
        err.contains("job already holds 1 node(s) of pool x86"),
        "{err}"
    );
    db.fails(&["allocate", "job", "1", "power"], 6);
    assert_eq!(
        names(&json(
            &db.ok(&["allocate", "job", "1", "x86", "-o", "json"])
        )),
        first
    );
}
