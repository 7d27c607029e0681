//! The original MoltenIron client's commands, under their original names and positional arguments.

use serde_json::{Value, json};

use crate::support::{TestDb, count, json};

/// Every node, secrets shown.
fn all_nodes(db: &TestDb) -> Value {
    json(&db.ok(&["status", "--baremetal", "--show-secrets", "-o", "json"]))
}

/// The node called `name`, secrets shown.
fn node(db: &TestDb, name: &str) -> Value {
    let all = all_nodes(db);
    all.as_array()
        .unwrap()
        .iter()
        .find(|n| n["name"] == name)
        .cloned()
        .unwrap_or_else(|| panic!("no node {name} in {all}"))
}

fn events(db: &TestDb) -> i64 {
    count(&mut db.conn(), "SELECT count(*) AS n FROM events")
}

/// The original `add_baremetal` arguments for a node called `name` (ipmi address 10.0.0.N, MAC ...:0N).
fn baremetal_args(name: &str, n: u8) -> Vec<String> {
    [
        "add_baremetal".to_owned(),
        name.to_owned(),
        format!("10.0.0.{n}"),
        "user".to_owned(),
        format!("pw{n}"),
        format!("10.1.{n}.1,10.1.{n}.2"),
        format!("DE:AD:BE:EF:00:0{n}"),
        "ppc64el".to_owned(),
        "8".to_owned(),
        "2048".to_owned(),
        "32".to_owned(),
    ]
    .into()
}

fn run_owned(db: &TestDb, args: &[String]) -> String {
    db.ok(&args.iter().map(String::as_str).collect::<Vec<_>>())
}

#[test]
fn add_baremetal_takes_the_original_positional_arguments() {
    let db = TestDb::new();
    run_owned(&db, &baremetal_args("bm1", 1));
    let mut with_pool = baremetal_args("bm2", 2);
    with_pool.push("ppc".to_owned());
    run_owned(&db, &with_pool);

    let bm1 = node(&db, "bm1");
    assert_eq!(bm1["pool"], "default");
    assert_eq!(bm1["driver"], "ipmi");
    assert_eq!(bm1["state"], "ready");
    assert_eq!(
        bm1["driver_info"],
        json!({"ipmi_address": "10.0.0.1", "ipmi_username": "user", "ipmi_password": "pw1"})
    );
    assert_eq!(bm1["ports"], json!([{"address": "de:ad:be:ef:00:01"}]));
    assert_eq!(
        bm1["properties"],
        json!({"cpu_arch": "ppc64el", "cpus": 8, "memory_mb": 2048, "local_gb": 32})
    );
    assert!(bm1["properties"]["cpus"].is_u64(), "cpus is a number");
    assert_eq!(bm1["allocation_pool"], json!(["10.1.1.1", "10.1.1.2"]));
    assert_eq!(node(&db, "bm2")["pool"], "ppc");
    assert_eq!(events(&db), 2);

    // The same name again is a conflict.
    let again = baremetal_args("bm1", 3);
    let err = db.fails(&again.iter().map(String::as_str).collect::<Vec<_>>(), 6);
    assert!(err.contains("node bm1 already exists"), "{err}");
    assert_eq!(events(&db), 2);
}

#[test]
fn add_keyvalue_pairs_maps_original_names_and_keeps_the_rest_as_properties() {
    let db = TestDb::new();
    db.ok(&[
        "add_keyvalue_pairs",
        "kv1",
        "10.0.0.1",
        "10.1.0.1,10.1.0.2",
        "ipmi_user=admin",
        "ipmi_password=S3cret=with=equals",
        "port_hwaddr=de:ad:be:ef:00:01",
        "cpu_arch=x86_64",
        "cpus=8",
        "ram_mb=1024",
        "disk_gb=10",
        "colour=blue",
        "node_pool=kvpool",
    ]);
    let kv1 = node(&db, "kv1");
    assert_eq!(kv1["pool"], "kvpool");
    assert_eq!(
        kv1["driver_info"],
        json!({"ipmi_address": "10.0.0.1", "ipmi_username": "admin",
               "ipmi_password": "S3cret=with=equals"})
    );
    assert_eq!(kv1["ports"], json!([{"address": "de:ad:be:ef:00:01"}]));
    assert_eq!(
        kv1["properties"],
        json!({"cpu_arch": "x86_64", "cpus": 8, "memory_mb": 1024, "local_gb": 10,
               "colour": "blue"})
    );
    assert!(
        kv1["properties"]["cpus"].is_u64(),
        "cpus=8 is stored as a number"
    );
    assert_eq!(kv1["allocation_pool"], json!(["10.1.0.1", "10.1.0.2"]));

    // The minimal form: one pair.
    db.ok(&[
        "add_keyvalue_pairs",
        "kv2",
        "10.0.0.2",
        "10.1.0.3",
        "cpus=2",
    ]);
    assert_eq!(node(&db, "kv2")["pool"], "default");
}

#[test]
fn add_json_blob_maps_original_names_with_an_optional_node_pool() {
    let db = TestDb::new();
    let blob = r#"{"ipmi_user": "admin", "ipmi_password": "pw", "port_hwaddr": "DE:AD:BE:EF:00:02",
                   "cpu_arch": "ppc64el", "cpus": "16", "ram_mb": 4096, "disk_gb": 100,
                   "extra_flag": true}"#;
    db.ok(&["add_json_blob", "jb1", "10.0.0.2", "10.1.0.5", blob]);
    db.ok(&[
        "add_json_blob",
        "jb2",
        "10.0.0.3",
        "",
        blob.replace("00:02", "00:03").as_str(),
        "jpool",
    ]);

    let jb1 = node(&db, "jb1");
    assert_eq!(jb1["pool"], "default");
    assert_eq!(
        jb1["driver_info"],
        json!({"ipmi_address": "10.0.0.2", "ipmi_username": "admin", "ipmi_password": "pw"})
    );
    assert_eq!(jb1["ports"], json!([{"address": "de:ad:be:ef:00:02"}]));
    assert_eq!(
        jb1["properties"],
        json!({"cpu_arch": "ppc64el", "cpus": 16, "memory_mb": 4096, "local_gb": 100,
               "extra_flag": true})
    );
    assert_eq!(jb1["allocation_pool"], json!(["10.1.0.5"]));
    let jb2 = node(&db, "jb2");
    assert_eq!(jb2["pool"], "jpool");
    assert_eq!(jb2["allocation_pool"], json!([]));
}

#[test]
fn allocate_get_field_and_release_in_the_original_forms() {
    let db = TestDb::new();
    let mut args = baremetal_args("bm1", 1);
    args.push("ppc".to_owned());
    run_owned(&db, &args);
    run_owned(&db, &baremetal_args("bm2", 2));

    db.ok(&["allocate", "job-ppc", "1", "ppc"]);
    for (field, want) in [
        ("ipmi_ip", "10.0.0.1"),
        ("ipmi_user", "user"),
        ("ipmi_password", "pw1"),
        ("port_hwaddr", "de:ad:be:ef:00:01"),
        ("cpu_arch", "ppc64el"),
        ("cpus", "8"),
        ("ram_mb", "2048"),
        ("disk_gb", "32"),
        ("node_pool", "ppc"),
        ("allocation_pool", "10.1.1.1,10.1.1.2"),
    ] {
        assert_eq!(
            db.ok(&["get_field", "job-ppc", field]),
            format!("{want}\n"),
            "get_field {field}"
        );
    }
    db.ok(&["allocate", "job-default", "1"]);
    assert_eq!(
        db.ok(&["get_field", "job-default", "ipmi_ip"]),
        "10.0.0.2\n"
    );
    db.fails(&["allocate", "job-more", "1"], 3);

    db.ok(&["release", "job-ppc"]);
    db.fails(&["get_field", "job-ppc", "ipmi_ip"], 4);
    assert_eq!(node(&db, "bm1")["state"], "ready");
    assert_eq!(node(&db, "bm2")["owner"], "job-default");
    let mut conn = db.conn();
    assert_eq!(
        count(
            &mut conn,
            "SELECT count(*) AS n FROM events WHERE action = 'release' AND owner = 'job-ppc'"
        ),
        1
    );
}

#[test]
fn set_field_takes_the_type_as_a_fourth_argument() {
    let db = TestDb::new();
    run_owned(&db, &baremetal_args("bm1", 1));
    let id = node(&db, "bm1")["id"].as_i64().unwrap().to_string();
    db.ok(&["set_field", &id, "cpus", "16", "int"]);
    db.ok(&["set_field", &id, "ipmi_user", "admin", "string"]);
    db.fails(&["set_field", &id, "gpus", "2", "int"], 4);
    db.ok(&["set_field", &id, "properties.gpus", "2", "int"]);
    db.ok(&["set_field", &id, "properties.label", "2", "string"]);
    db.ok(&[
        "set_field",
        &id,
        "port_hwaddr",
        "de:ad:be:ef:00:aa",
        "string",
    ]);
    let bm1 = node(&db, "bm1");
    assert_eq!(bm1["properties"]["cpus"], 16);
    assert_eq!(bm1["properties"]["gpus"], 2);
    assert_eq!(bm1["properties"]["label"], "2");
    assert_eq!(bm1["driver_info"]["ipmi_username"], "admin");
    assert_eq!(bm1["ports"], json!([{"address": "de:ad:be:ef:00:aa"}]));
    db.fails(&["set_field", &id, "cpus", "many", "int"], 1);
    db.fails(&["set_field", &id, "cpus", "16", "float"], 2);
    // Python's type names, as old scripts may pass them.
    db.ok(&["set_field", &id, "gpus", "4", "integer"]);
    db.ok(&["set_field", &id, "label", "x", "str"]);
    let bm1 = node(&db, "bm1");
    assert_eq!(bm1["properties"]["gpus"], 4);
    assert_eq!(bm1["properties"]["label"], "x");
}

#[test]
fn status_type_flag_and_status_baremetal() {
    let db = TestDb::new();
    run_owned(&db, &baremetal_args("bm1", 1));
    db.ok(&["allocate", "job-1"]);

    let human = db.ok(&["status", "-t", "human"]);
    let mut lines = human.lines();
    let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(header[..4], ["id", "name", "pool", "state"], "{human}");
    let row: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(
        row[..5],
        ["1", "bm1", "default", "allocated", "job-1"],
        "{human}"
    );

    let csv = db.ok(&["status", "-t", "csv"]);
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "id,name,pool,state,owner,held,lease left,bmc address"
    );
    assert!(
        lines[1].starts_with("1,bm1,default,allocated,job-1,"),
        "{csv}"
    );

    let csv = db.ok(&["status_baremetal", "-t", "csv"]);
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "id,name,pool,state,owner,held,lease left,bmc address,bmc user,bmc password,bmc port,macs,cpu arch,cpus,memory mb,local gb,allocation pool"
    );
    assert!(
        lines[1].ends_with(
            ",10.0.0.1,user,********,,de:ad:be:ef:00:01,ppc64el,8,2048,32,\"10.1.1.1,10.1.1.2\""
        ),
        "{csv}"
    );
    let shown = db.ok(&["status_baremetal", "-t", "csv", "--show-secrets"]);
    assert!(shown.contains(",user,pw1,"), "{shown}");
}

#[test]
fn delete_db_with_yes_empties_the_pool() {
    let db = TestDb::new();
    run_owned(&db, &baremetal_args("bm1", 1));
    db.ok(&["allocate", "job-1"]);
    db.ok(&["delete_db", "--yes"]);
    let mut conn = db.conn();
    assert_eq!(count(&mut conn, "SELECT count(*) AS n FROM nodes"), 0);
    assert_eq!(count(&mut conn, "SELECT count(*) AS n FROM events"), 0);
    assert_eq!(db.ok(&["status", "-o", "json"]).trim(), "[]");
}

#[test]
fn bad_legacy_input_is_exit_1_and_writes_nothing() {
    let db = TestDb::new();
    run_owned(&db, &baremetal_args("bm1", 1));
    let good = |name: &str| baremetal_args(name, 5);
    let mut cases: Vec<(Vec<String>, &str)> = Vec::new();
    let mut bad_pool = good("x1");
    bad_pool[5] = "10.1.5.1,10.1.5.300".to_owned();
    cases.push((bad_pool, "invalid IP address \"10.1.5.300\""));
    let mut bad_mac = good("x2");
    bad_mac[6] = "de:ad:be:ef:00".to_owned();
    cases.push((bad_mac, "invalid MAC address"));
    let mut bad_ipmi = good("x3");
    bad_ipmi[2] = "10.0.0.999".to_owned();
    cases.push((bad_ipmi, "ipmi_address"));
    let mut bad_cpus = good("x4");
    bad_cpus[8] = "eight".to_owned();
    cases.push((bad_cpus, "cpus must be a non-negative integer"));
    cases.push((good("x;5"), "contains ';'"));
    let owned = |args: &[&str]| args.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    cases.push((
        owned(&[
            "add_keyvalue_pairs",
            "k1",
            "10.0.0.6",
            "10.1.6.1",
            "cpus=abc",
        ]),
        "cpus must be a non-negative integer",
    ));
    cases.push((
        owned(&[
            "add_keyvalue_pairs",
            "k2",
            "10.0.0.6",
            "10.1.6.1,nope",
            "cpus=1",
        ]),
        "invalid IP address \"nope\"",
    ));
    cases.push((
        owned(&[
            "add_keyvalue_pairs",
            "k3",
            "10.0.0.6",
            "10.1.6.1",
            "port_hwaddr=zz",
        ]),
        "invalid MAC address",
    ));
    cases.push((
        owned(&[
            "add_keyvalue_pairs",
            "k4",
            "10.0.0.6",
            "10.1.6.1",
            "novalue",
        ]),
        "expected key=value",
    ));
    cases.push((
        owned(&[
            "add_keyvalue_pairs",
            "k5",
            "10.0.0.6",
            "10.1.6.1",
            "state=allocated",
        ]),
        "cannot be set",
    ));
    for blob in ["[1, 2]", "\"text\"", "42", "{not json"] {
        cases.push((
            owned(&["add_json_blob", "j1", "10.0.0.7", "10.1.7.1", blob]),
            "must be a JSON object",
        ));
    }
    cases.push((
        owned(&[
            "add_json_blob",
            "j2",
            "10.0.0.7",
            "10.1.7.1",
            r#"{"cpus": "abc"}"#,
        ]),
        "cpus must be a non-negative integer",
    ));

    let before = (all_nodes(&db), events(&db));
    for (args, want) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let err = db.fails(&args, 1);
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: expected {want:?} in {err}");
        assert_eq!(
            (all_nodes(&db), events(&db)),
            before,
            "{args:?} wrote something"
        );
    }
}

#[test]
fn legacy_keys_for_bmc_settings_land_in_driver_info_and_names_cannot_be_smuggled() {
    let db = TestDb::new();
    db.ok(&[
        "add_keyvalue_pairs",
        "kv1",
        "10.0.0.9",
        "10.1.9.1",
        "redfish_password=s3cret",
        "drac_address=10.0.0.10",
        "rack=r7",
    ]);
    let n = node(&db, "kv1");
    assert_eq!(n["driver_info"]["redfish_password"], "s3cret");
    assert_eq!(n["driver_info"]["drac_address"], "10.0.0.10");
    assert_eq!(n["properties"]["rack"], "r7");
    let masked = json(&db.ok(&["status", "-o", "json"]));
    assert_eq!(masked[0]["driver_info"]["redfish_password"], "********");
    let before = events(&db);
    let err = db.fails(
        &[
            "add_keyvalue_pairs",
            "kv2",
            "10.0.0.9",
            "10.1.9.2",
            "name=other",
        ],
        1,
    );
    assert!(err.contains("name"), "{err}");
    db.fails(
        &[
            "add_json_blob",
            "kv3",
            "10.0.0.9",
            "10.1.9.3",
            r#"{"name": "other"}"#,
        ],
        1,
    );
    assert_eq!(events(&db), before);
}

#[test]
fn set_field_with_two_different_types_is_a_usage_error() {
    let db = TestDb::new();
    run_owned(&db, &baremetal_args("bm1", 1));
    db.fails(
        &["set_field", "bm1", "cpus", "4", "int", "--type", "json"],
        2,
    );
    db.ok(&["set_field", "bm1", "cpus", "4", "int", "--type", "int"]);
    assert_eq!(node(&db, "bm1")["properties"]["cpus"], 4);
}

#[test]
fn key_value_pairs_lose_one_pair_of_wrapping_double_quotes() {
    let db = TestDb::new();
    // The form of the original's tox.ini: the shell keeps the inner double quotes.
    db.ok(&[
        "add_keyvalue_pairs",
        "kv1",
        "10.1.2.2",
        "10.1.2.5,10.1.2.6",
        r#"ipmi_user="user""#,
        r#"ipmi_password="password""#,
        r#"port_hwaddr="de:ad:be:ef:00:02""#,
        "cpu_arch=ppc64el",
        r#"cpus="8""#,
        r#"motto=say "hi""#,
    ]);
    let kv1 = node(&db, "kv1");
    assert_eq!(
        kv1["driver_info"],
        json!({"ipmi_address": "10.1.2.2", "ipmi_username": "user", "ipmi_password": "password"})
    );
    assert_eq!(kv1["ports"], json!([{"address": "de:ad:be:ef:00:02"}]));
    assert_eq!(kv1["properties"]["cpus"], 8);
    assert_eq!(kv1["properties"]["motto"], r#"say "hi""#);

    // add's KEY=VALUE options read the same way.
    db.ok(&[
        "add",
        "a1",
        "--bmc-address",
        "10.1.2.7",
        "--property",
        r#"rack="r7""#,
        "--driver-info",
        r#"ipmi_port="623""#,
        "--property",
        r#"quote=""#,
    ]);
    let a1 = node(&db, "a1");
    assert_eq!(a1["properties"]["rack"], "r7");
    assert_eq!(a1["properties"]["quote"], "\"");
    assert_eq!(a1["driver_info"]["ipmi_port"], "623");

    // A quote that is not a wrapping pair stays, and is then validated as given.
    let err = db.fails(
        &[
            "add_keyvalue_pairs",
            "kv2",
            "10.1.2.3",
            "10.1.2.8",
            r#"port_hwaddr="de:ad:be:ef:00:03"#,
        ],
        1,
    );
    assert!(
        err.contains(r#"invalid MAC address "\"de:ad:be:ef:00:03""#),
        "{err}"
    );
}

/// The original client's conf.yaml (its own keys), with `maxTime` set to `max_time`.
fn original_conf_dir(max_time: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("conf.yaml"),
        format!(
            "mi_port: 5656\nserverIP: 127.0.0.1\ntimeout: 5\nretry: 5\nmaxTime: {max_time}\n\
             logdir: \"/tmp\"\nmaxLogDays: 15\nsqlUser: \"root\"\nsqlPass: \"password\"\n"
        ),
    )
    .unwrap();
    dir
}

/// Seconds between `allocated_at` and `lease_expires_at` of every node in a JSON list.
fn lease_seconds(nodes: &Value) -> Vec<i64> {
    let time = |v: &Value| chrono::DateTime::parse_from_rfc3339(v.as_str().unwrap()).unwrap();
    nodes
        .as_array()
        .unwrap()
        .iter()
        .map(|n| (time(&n["lease_expires_at"]) - time(&n["allocated_at"])).num_seconds())
        .collect()
}

#[test]
fn conf_dir_reads_the_original_conf_yaml_for_the_lease() {
    let db = TestDb::new();
    for n in 1..=6 {
        run_owned(&db, &baremetal_args(&format!("bm{n}"), n));
    }
    let conf = original_conf_dir("4321");
    let dir = conf.path().to_str().unwrap();
    let conf_dir_eq = format!("--conf-dir={dir}");
    let forms: [&[&str]; 4] = [
        &["-c", dir, "-o", "json", "allocate", "job-1"],
        &["--conf-dir", dir, "--output", "json", "allocate", "job-2"],
        &[&conf_dir_eq, "--output=json", "allocate", "job-3"],
        &["allocate", "job-4", "-c", dir, "-o", "json"],
    ];
    for args in forms {
        let (code, out, err) = db.run(args);
        assert_eq!(code, 0, "{args:?}: {err}");
        assert_eq!(lease_seconds(&json(&out)), [4321], "{args:?}");
        // One note names the keys that mean nothing without the daemon.
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.starts_with("molteniron: "), "{err}");
        for key in ["serverIP", "mi_port", "sqlUser", "sqlPass", "logdir"] {
            assert!(err.contains(key), "{args:?}: note lacks {key}: {err}");
        }
        assert!(!err.contains("password\""), "{err}");
    }
    // --lease still wins; renew without --lease takes maxTime as well.
    let out = db.ok(&[
        "-c", dir, "-o", "json", "allocate", "job-5", "--lease", "60",
    ]);
    assert_eq!(lease_seconds(&json(&out)), [60]);
    db.ok(&["-c", dir, "renew", "job-5"]);
    let held: Vec<Value> = all_nodes(&db)
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["owner"] == "job-5")
        .cloned()
        .collect();
    let renewed = lease_seconds(&Value::Array(held))[0];
    assert!((4321..4330).contains(&renewed), "{renewed}");
    // A duration as molteniron writes it works too.
    let conf = original_conf_dir("\"2h\"");
    let out = db.ok(&[
        "-c",
        conf.path().to_str().unwrap(),
        "-o",
        "json",
        "allocate",
        "job-6",
    ]);
    assert_eq!(lease_seconds(&json(&out)), [7200]);
}

#[test]
fn a_bad_conf_dir_is_exit_1_before_anything_is_allocated() {
    let db = TestDb::new();
    run_owned(&db, &baremetal_args("bm1", 1));
    let missing = tempfile::tempdir().unwrap();
    let not_a_dir = missing.path().join("file");
    std::fs::write(&not_a_dir, "maxTime: 5\n").unwrap();
    let typo = tempfile::tempdir().unwrap();
    std::fs::write(typo.path().join("conf.yaml"), "maxtime: 60\n").unwrap();
    let cases = [
        (original_conf_dir("soon"), "maxTime"),
        (original_conf_dir("0"), "maxTime"),
        (typo, "maxtime"),
        (tempfile::tempdir().unwrap(), "conf.yaml"),
    ];
    for (dir, want) in &cases {
        let err = db.fails(
            &["-c", dir.path().to_str().unwrap(), "allocate", "job-1"],
            1,
        );
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains(want), "expected {want:?} in {err}");
    }
    for path in [missing.path().join("nope"), not_a_dir] {
        let err = db.fails(&["-c", path.to_str().unwrap(), "allocate", "job-1"], 1);
        assert!(err.contains("not a directory"), "{err}");
    }
    assert_eq!(node(&db, "bm1")["state"], "ready");
}

#[test]
fn output_result_prints_what_the_original_result_member_held() {
    let db = TestDb::new();
    run_owned(&db, &baremetal_args("bm1", 1));
    run_owned(&db, &baremetal_args("bm2", 2));
    db.ok(&["allocate", "job-1", "2"]);

    for args in [
        &["-o", "result", "get_field", "job-1", "port_hwaddr"][..],
        &["--output=result", "get_field", "job-1", "port_hwaddr"],
        &["get-field", "job-1", "port_hwaddr", "--output", "result"],
    ] {
        assert_eq!(
            db.ok(args),
            "de:ad:be:ef:00:01\nde:ad:be:ef:00:02\n",
            "{args:?}"
        );
    }
    let got = json(&db.ok(&["--output=json", "get_field", "job-1", "cpus"]));
    assert_eq!(got[1]["value"], 8);

    // status: its table, human or (with -t) csv. The time columns may tick between two calls.
    let without_times = |text: String| -> Vec<String> {
        text.lines()
            .map(|l| l.split_whitespace().take(5).collect::<Vec<_>>().join(" "))
            .collect()
    };
    assert_eq!(
        without_times(db.ok(&["-o", "result", "status"])),
        without_times(db.ok(&["status"]))
    );
    let csv = db.ok(&["--output=result", "status", "-t", "csv"]);
    assert!(csv.starts_with("id,name,pool,state,"), "{csv}");
    let csv = db.ok(&["-o", "result", "status_baremetal", "-t", "csv"]);
    assert!(csv.contains(",bmc user,bmc password,"), "{csv}");

    // The original's other replies had no result member: here that is a usage error.
    for args in [
        &["-o", "result", "allocate", "job-2"][..],
        &["--output=result", "release", "job-1"],
        &["-o", "result", "history"],
        &["-o", "result", "delete_db", "--yes"],
        &["-o", "result", "status", "-t", "json"],
    ] {
        let err = db.fails(args, 2);
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
    }
    assert_eq!(node(&db, "bm1")["owner"], "job-1");
}
