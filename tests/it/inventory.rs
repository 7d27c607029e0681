//! import, export, add, set-field, remove, delete_db, status and history: the operator's side of the pool.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use diesel::sql_types::Text;
use diesel::{QueryableByName, RunQueryDsl};
use serde_json::{Value, json};

use crate::support::{TestDb, count, json};

fn yaml(text: &str) -> serde_yaml::Value {
    serde_yaml::from_str(text).unwrap_or_else(|e| panic!("not YAML ({e}): {text}"))
}

fn example_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("nodes.yaml.example")
}

/// Writes `bytes` to a new temporary file (kept until the handle is dropped).
fn temp_file(bytes: &[u8]) -> tempfile::NamedTempFile {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), bytes).unwrap();
    file
}

fn path_of(file: &tempfile::NamedTempFile) -> &str {
    file.path().to_str().unwrap()
}

fn events(db: &TestDb) -> i64 {
    count(&mut db.conn(), "SELECT count(*) AS n FROM events")
}

fn nodes(db: &TestDb) -> i64 {
    count(&mut db.conn(), "SELECT count(*) AS n FROM nodes")
}

/// Everything a command could change: every row of nodes and of events, as text.
fn snapshot(db: &TestDb) -> String {
    #[derive(QueryableByName)]
    struct Rows {
        #[diesel(sql_type = Text)]
        rows: String,
    }
    let sql = "SELECT coalesce((SELECT string_agg(n::text, E'\\n' ORDER BY id) FROM nodes n), '') \
               || E'\\n--\\n' \
               || coalesce((SELECT string_agg(e::text, E'\\n' ORDER BY id) FROM events e), '') AS rows";
    diesel::sql_query(sql)
        .get_result::<Rows>(&mut db.conn())
        .unwrap()
        .rows
}

/// Runs a command that must fail with `code` and one `molteniron: error:` line, writing nothing.
fn rejected(db: &TestDb, args: &[&str], code: i32) -> String {
    let before = snapshot(db);
    let err = db.fails(args, code);
    assert_eq!(
        err.lines().count(),
        1,
        "{args:?}: more than one line: {err:?}"
    );
    assert_eq!(snapshot(db), before, "{args:?} changed the database");
    err
}

/// `status --baremetal --show-secrets -o json` for the node called `name`.
fn node(db: &TestDb, name: &str) -> Value {
    let all = json(&db.ok(&["status", "--baremetal", "--show-secrets", "-o", "json"]));
    all.as_array()
        .unwrap()
        .iter()
        .find(|n| n["name"] == name)
        .cloned()
        .unwrap_or_else(|| panic!("no node {name} in {all}"))
}

fn names(list: &Value) -> Vec<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|n| n["name"].as_str().unwrap().to_owned())
        .collect()
}

fn actions(list: &Value) -> Vec<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap().to_owned())
        .collect()
}

fn keys(object: &Value) -> BTreeSet<String> {
    object.as_object().unwrap().keys().cloned().collect()
}

/// `import -` with `text` on standard input; returns (exit code, stderr).
fn import_stdin(db: &TestDb, text: &str, update: bool) -> (i32, String) {
    let mut args = vec!["import", "-"];
    if update {
        args.push("--update");
    }
    let out = db
        .cmd()
        .args(&args)
        .write_stdin(text.to_owned())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn example_round_trips_through_export_and_import() {
    let first = TestDb::new();
    first.ok(&["import", example_path().to_str().unwrap()]);
    let exported = first.ok(&["export"]);

    // The export says what the example says (comments and layout aside), Ironic extras included.
    let example = std::fs::read_to_string(example_path()).unwrap();
    assert_eq!(yaml(&exported), yaml(&example), "{exported}");
    let doc = yaml(&exported);
    let redfish = &doc["nodes"][3];
    assert_eq!(redfish["name"].as_str(), Some("x86-redfish-01"));
    assert_eq!(redfish["pool"].as_str(), Some("x86"));
    assert_eq!(redfish["resource_class"].as_str(), Some("baremetal-large"));
    assert_eq!(redfish["traits"][0].as_str(), Some("CUSTOM_GPU"));
    assert_eq!(
        redfish["properties"]["capabilities"].as_str(),
        Some("boot_mode:uefi")
    );
    assert_eq!(redfish["ports"][0]["pxe_enabled"].as_bool(), Some(true));
    assert_eq!(
        redfish["driver_info"]["redfish_password"].as_str(),
        Some("5d2e8c41b07f9a36"),
        "export is a backup: it keeps the passwords"
    );
    assert_eq!(doc["nodes"][0]["properties"]["cpus"].as_u64(), Some(20));

    // The export imports into an empty database and exports again byte for byte.
    let second = TestDb::new();
    let (code, err) = import_stdin(&second, &exported, false);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("4 added, 0 updated, 0 unchanged"), "{err}");
    assert_eq!(second.ok(&["export"]), exported);

    // Importing it again with --update changes nothing.
    let (code, err) = import_stdin(&second, &exported, true);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("0 added, 0 updated, 4 unchanged"), "{err}");
    assert_eq!(events(&second), 4, "only the four add events");
}

#[test]
fn import_writes_every_node_or_none() {
    let db = TestDb::new();
    db.seed("taken", 1, "default");
    let before = snapshot(&db);

    let third_invalid = temp_file(
        b"nodes:
  - {name: fresh1, driver: fake}
  - {name: fresh2, driver: fake}
  - {name: fresh3, driver: fake, ports: [{address: 'not-a-mac'}]}
",
    );
    let err = rejected(&db, &["import", path_of(&third_invalid)], 1);
    assert!(
        err.contains("nodes[2] (fresh3)") && err.contains("invalid MAC"),
        "{err}"
    );

    let second_exists = temp_file(
        b"nodes:
  - {name: fresh1, driver: fake}
  - {name: taken0, driver: fake}
  - {name: fresh2, driver: fake}
",
    );
    let err = rejected(&db, &["import", path_of(&second_exists)], 6);
    assert!(
        err.contains("node taken0 already exists") && err.contains("--update"),
        "{err}"
    );
    assert_eq!(snapshot(&db), before);
    assert_eq!(nodes(&db), 1);
    assert_eq!(
        count(
            &mut db.conn(),
            "SELECT count(*) AS n FROM nodes WHERE name LIKE 'fresh%'"
        ),
        0
    );
}

#[test]
fn import_update_changes_inventory_but_keeps_the_allocation() {
    let db = TestDb::new();
    let original = "nodes:
  - name: u0
    driver_info: {ipmi_address: 10.0.0.1, ipmi_username: u, ipmi_password: OldPass0}
    properties: {cpus: 8}
    allocation_pool: [10.1.0.1]
  - name: u1
    driver_info: {ipmi_address: 10.0.0.2}
";
    db.import(original);
    let held = json(&db.ok(&["allocate", "job-1", "-o", "json"]));
    assert_eq!(names(&held), ["u0"]);
    let allocated_at = held[0]["allocated_at"].clone();

    let changed = "nodes:
  - name: u0
    driver_info: {ipmi_address: 10.0.0.9, ipmi_username: u, ipmi_password: NewPass9}
    properties: {cpus: 16, rack: r7}
    allocation_pool: [10.1.0.2, 10.1.0.3]
  - name: u1
    driver_info: {ipmi_address: 10.0.0.2}
";
    let file = temp_file(changed.as_bytes());
    let err = rejected(&db, &["import", path_of(&file)], 6);
    assert!(err.contains("node u0 already exists"), "{err}");

    let (code, _, err) = db.run(&["import", path_of(&file), "--update"]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("0 added, 1 updated, 1 unchanged"), "{err}");
    let u0 = node(&db, "u0");
    assert_eq!(u0["state"], "allocated");
    assert_eq!(u0["owner"], "job-1");
    assert_eq!(u0["allocated_at"], allocated_at);
    assert_eq!(u0["driver_info"]["ipmi_address"], "10.0.0.9");
    assert_eq!(u0["driver_info"]["ipmi_password"], "NewPass9");
    assert_eq!(u0["properties"], json!({"cpus": 16, "rack": "r7"}));
    assert_eq!(u0["allocation_pool"], json!(["10.1.0.2", "10.1.0.3"]));
    assert_eq!(db.ok(&["get-field", "job-1", "cpus"]), "16\n");
    assert_eq!(node(&db, "u1")["state"], "ready");

    let mut conn = db.conn();
    assert_eq!(
        count(
            &mut conn,
            "SELECT count(*) AS n FROM events WHERE action = 'update' AND node_name = 'u0'"
        ),
        1
    );
    assert_eq!(
        count(
            &mut conn,
            "SELECT count(*) AS n FROM events WHERE action = 'update' AND node_name = 'u1'"
        ),
        0,
        "an unchanged node gets no event"
    );
    assert_eq!(
        count(
            &mut conn,
            "SELECT count(*) AS n FROM events WHERE detail::text LIKE '%Pass%'"
        ),
        0,
        "events never hold a password"
    );
}

#[test]
fn bad_import_files_are_one_error_line_and_write_nothing() {
    let db = TestDb::new();
    db.seed("existing", 1, "default");
    let long_name = "a".repeat(256);
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "malformed YAML",
            b"nodes:\n  - name: a\n    driver: fake\n   - bad: [\n".to_vec(),
            "line 4",
        ),
        (
            "unknown key",
            b"nodes:\n  - name: a\n    driver: fake\n    colour: red\n".to_vec(),
            "unknown field `colour`",
        ),
        (
            "ipmi without ipmi_address",
            b"nodes:\n  - name: a\n    driver_info: {ipmi_username: u}\n".to_vec(),
            "needs driver_info.ipmi_address",
        ),
        (
            "redfish without redfish_system_id",
            b"nodes:\n  - name: a\n    driver: redfish\n    driver_info: {redfish_address: https://h}\n"
                .to_vec(),
            "needs driver_info.redfish_system_id",
        ),
        (
            "bad MAC",
            b"nodes:\n  - name: a\n    driver: fake\n    ports: [{address: 'de:ad:be:ef:00'}]\n"
                .to_vec(),
            "invalid MAC address",
        ),
        (
            "bad IP",
            b"nodes:\n  - name: a\n    driver: fake\n    allocation_pool: [10.0.0.256]\n".to_vec(),
            "invalid IP address \"10.0.0.256\"",
        ),
        (
            "bad BMC address",
            b"nodes:\n  - name: a\n    driver_info: {ipmi_address: '10.0.0.999'}\n".to_vec(),
            "invalid driver_info.ipmi_address",
        ),
        (
            "non-numeric cpus",
            b"nodes:\n  - name: a\n    driver: fake\n    properties: {cpus: eight}\n".to_vec(),
            "cpus must be a non-negative integer",
        ),
        (
            "negative cpus",
            b"nodes:\n  - name: a\n    driver: fake\n    properties: {cpus: -8}\n".to_vec(),
            "cpus must be a non-negative integer",
        ),
        (
            "name with a space",
            b"nodes:\n  - name: 'a b'\n    driver: fake\n".to_vec(),
            "contains ' '",
        ),
        (
            "name with a quote",
            b"nodes:\n  - name: \"a'b\"\n    driver: fake\n".to_vec(),
            "contains '\\''",
        ),
        (
            "name with a semicolon",
            b"nodes:\n  - name: 'a;b'\n    driver: fake\n".to_vec(),
            "contains ';'",
        ),
        (
            "name with a newline",
            b"nodes:\n  - name: \"a\\nb\"\n    driver: fake\n".to_vec(),
            "contains '\\n'",
        ),
        (
            "name with unicode",
            "nodes:\n  - name: 'nœud'\n    driver: fake\n".as_bytes().to_vec(),
            "contains 'œ'",
        ),
        (
            "name of 256 characters",
            format!("nodes:\n  - name: {long_name}\n    driver: fake\n").into_bytes(),
            "1 to 255 characters, not 256",
        ),
        (
            "duplicate names",
            b"nodes:\n  - {name: twin, driver: fake}\n  - {name: twin, driver: fake}\n".to_vec(),
            "the name twin is used twice",
        ),
        (
            "duplicate MACs",
            b"nodes:\n  - {name: m1, driver: fake, ports: [{address: '02:00:00:00:00:aa'}]}\n  - {name: m2, driver: fake, ports: [{address: '02:00:00:00:00:AA'}]}\n".to_vec(),
            "belongs to another node",
        ),
        (
            "non-UTF-8 bytes",
            b"nodes:\n  - name: caf\xe9\n    driver: fake\n".to_vec(),
            "is not UTF-8 text",
        ),
        (
            "NUL in a value",
            b"nodes:\n  - name: a\n    driver: fake\n    driver_info: {k: \"x\\0y\"}\n".to_vec(),
            "k contains NUL",
        ),
        (
            "NUL in an Ironic field",
            b"nodes:\n  - name: a\n    driver: fake\n    description: \"x\\0y\"\n".to_vec(),
            "description contains NUL",
        ),
        ("no nodes key", b"machines: []\n".to_vec(), "unknown field `machines`"),
    ];
    for (what, bytes, want) in cases {
        let file = temp_file(&bytes);
        let err = rejected(&db, &["import", path_of(&file)], 1);
        assert!(err.contains(want), "{what}: expected {want:?} in {err:?}");
    }
    assert_eq!(nodes(&db), 1);
    assert_eq!(events(&db), 1);
}

#[test]
fn other_drivers_keep_arbitrary_driver_info() {
    let db = TestDb::new();
    db.import(
        "nodes:
  - name: dell1
    driver: idrac
    driver_info:
      drac_address: drac1.example.com
      drac_username: root
      drac_password: calvin
      drac_port: 443
      nested: {a: [1, 2]}
",
    );
    let dell = node(&db, "dell1");
    assert_eq!(dell["driver"], "idrac");
    assert_eq!(
        dell["driver_info"],
        json!({"drac_address": "drac1.example.com", "drac_username": "root",
               "drac_password": "calvin", "drac_port": 443, "nested": {"a": [1, 2]}})
    );
    // The BMC columns find the driver's *_address, *_username and *_password keys; the password is masked.
    let masked = json(&db.ok(&["status", "-o", "json"]));
    assert_eq!(masked[0]["driver_info"]["drac_password"], "********");
    let csv = db.ok(&["status", "--baremetal", "-o", "csv"]);
    assert!(
        csv.lines()
            .nth(1)
            .unwrap()
            .starts_with("1,dell1,default,ready,,,,drac1.example.com,root,********,"),
        "{csv}"
    );
    let exported = yaml(&db.ok(&["export"]));
    assert_eq!(
        exported["nodes"][0]["driver_info"]["nested"]["a"][1].as_u64(),
        Some(2)
    );

    db.ok(&[
        "add",
        "dell2",
        "--driver",
        "idrac",
        "--driver-info",
        "drac_address=drac2.example.com",
    ]);
    assert_eq!(
        node(&db, "dell2")["driver_info"],
        json!({"drac_address": "drac2.example.com"})
    );
    let err = rejected(
        &db,
        &["add", "dell3", "--driver", "idrac", "--bmc-address", "h"],
        1,
    );
    assert!(err.contains("--driver-info"), "{err}");
}

#[test]
fn add_takes_every_flag() {
    let db = TestDb::new();
    let out = json(&db.ok(&[
        "add",
        "n1",
        "--pool",
        "p1",
        "--driver",
        "ipmi",
        "--bmc-address",
        "10.0.0.5",
        "--bmc-username",
        "admin",
        "--bmc-password",
        "S3cret-pw",
        "--mac",
        "AA:BB:CC:DD:EE:01",
        "--mac",
        "aa-bb-cc-dd-ee-02",
        "--cpu-arch",
        "x86_64",
        "--cpus",
        "8",
        "--memory-mb",
        "4096",
        "--local-gb",
        "100",
        "--allocation-pool",
        "10.0.1.1, 10.0.1.2",
        "--property",
        "rack=r1",
        "--driver-info",
        "ipmi_port=623",
        "-o",
        "json",
    ]));
    assert_eq!(out["name"], "n1");
    assert_eq!(out["state"], "ready");
    assert_eq!(
        out["driver_info"]["ipmi_password"], "********",
        "add's own output masks the password"
    );

    let n1 = node(&db, "n1");
    assert_eq!(n1["pool"], "p1");
    assert_eq!(n1["driver"], "ipmi");
    assert_eq!(
        n1["driver_info"],
        json!({"ipmi_address": "10.0.0.5", "ipmi_username": "admin",
               "ipmi_password": "S3cret-pw", "ipmi_port": "623"})
    );
    assert_eq!(
        n1["ports"],
        json!([{"address": "aa:bb:cc:dd:ee:01"}, {"address": "aa:bb:cc:dd:ee:02"}])
    );
    assert_eq!(
        n1["properties"],
        json!({"cpu_arch": "x86_64", "cpus": 8, "memory_mb": 4096, "local_gb": 100, "rack": "r1"})
    );
    assert!(n1["properties"]["cpus"].is_u64(), "cpus is a number: {n1}");
    assert_eq!(n1["allocation_pool"], json!(["10.0.1.1", "10.0.1.2"]));
    assert_eq!(n1["ironic_fields"], json!({}));
    assert!(n1["owner"].is_null());

    let exported = yaml(&db.ok(&["export"]));
    assert_eq!(
        exported["nodes"][0]["driver_info"]["ipmi_password"].as_str(),
        Some("S3cret-pw")
    );
    assert_eq!(exported["nodes"][0]["properties"]["cpus"].as_u64(), Some(8));

    // Defaults: pool "default", driver ipmi.
    db.ok(&["add", "n2", "--bmc-address", "bmc2.example.com"]);
    let n2 = node(&db, "n2");
    assert_eq!(
        (n2["pool"].as_str(), n2["driver"].as_str()),
        (Some("default"), Some("ipmi"))
    );

    let err = rejected(&db, &["add", "n1", "--bmc-address", "10.0.0.6"], 6);
    assert!(err.contains("node n1 already exists"), "{err}");
    rejected(&db, &["add", "n3"], 1);
    rejected(
        &db,
        &["add", "n3", "--bmc-address", "10.0.0.7", "--mac", "zz"],
        1,
    );
    rejected(
        &db,
        &["add", "n3", "--bmc-address", "10.0.0.7", "--cpus=-1"],
        1,
    );
    rejected(
        &db,
        &[
            "add",
            "n3",
            "--bmc-address",
            "10.0.0.7",
            "--property",
            "novalue",
        ],
        1,
    );
    rejected(&db, &["add", "bad name", "--bmc-address", "10.0.0.7"], 1);
    assert_eq!(nodes(&db), 2);
}

#[test]
fn set_field_understands_aliases_and_types() {
    let db = TestDb::new();
    let added = json(&db.ok(&[
        "add",
        "n1",
        "--bmc-address",
        "10.0.0.5",
        "--mac",
        "02:00:00:00:00:01",
        "-o",
        "json",
    ]));
    let id = added["id"].as_i64().unwrap().to_string();

    db.ok(&["set-field", "n1", "ipmi_ip", "10.0.0.99"]);
    db.ok(&["set-field", &id, "ram_mb", "4096"]);
    db.ok(&["set_field", "n1", "port_hwaddr", "DE:AD:BE:EF:00:99"]);
    db.ok(&["set-field", &id, "node_pool", "p2"]);
    db.ok(&["set-field", "n1", "allocation_pool", "10.0.9.1,10.0.9.2"]);
    // A plain name that is none of ours, no alias, no Ironic field and no key the node has: exit 4, as
    // the original refused it, so a typo never creates a property. The explicit name creates it; then
    // the plain name changes it.
    let before = db.ok(&["status", "-o", "json"]);
    for (name, value) in [("rack", "42"), ("cpu", "8"), ("slot", "42")] {
        let err = db.fails(&["set-field", "n1", name, value], 4);
        assert!(err.contains(&format!("unknown field \"{name}\"")), "{err}");
        assert!(err.contains(&format!("properties.{name}")), "{err}");
    }
    assert_eq!(db.ok(&["status", "-o", "json"]), before, "nothing written");
    db.ok(&["set-field", "n1", "properties.rack", "41"]);
    db.ok(&["set-field", "n1", "rack", "42"]);
    // A plain name the node has only in driver_info changes that key, not a new property.
    db.ok(&["set-field", "n1", "driver_info.bootmode", "uefi"]);
    let out = json(&db.ok(&["set-field", "n1", "bootmode", "bios", "-o", "json"]));
    assert_eq!(out["driver_info"]["bootmode"], "bios");
    assert_eq!(out["properties"].get("bootmode"), None, "{out}");
    db.ok(&["set-field", "n1", "properties.slot", "42", "--type", "int"]);
    db.ok(&["set_field", &id, "properties.units", "7", "int"]);
    db.ok(&[
        "set-field",
        "n1",
        "traits",
        r#"["CUSTOM_A","CUSTOM_B"]"#,
        "--type",
        "json",
    ]);
    db.ok(&[
        "set-field",
        "n1",
        "properties.capabilities",
        r#"{"boot_mode":"uefi"}"#,
        "--type",
        "json",
    ]);
    db.ok(&[
        "set-field",
        "n1",
        "driver_info.ipmi_port",
        "623",
        "--type",
        "int",
    ]);

    let n1 = node(&db, "n1");
    assert_eq!(n1["id"].as_i64().unwrap().to_string(), id);
    assert_eq!(n1["driver_info"]["ipmi_address"], "10.0.0.99");
    assert_eq!(n1["driver_info"]["ipmi_port"], 623);
    assert_eq!(n1["ports"], json!([{"address": "de:ad:be:ef:00:99"}]));
    assert_eq!(n1["pool"], "p2");
    assert_eq!(n1["allocation_pool"], json!(["10.0.9.1", "10.0.9.2"]));
    assert_eq!(
        n1["properties"],
        json!({"memory_mb": 4096, "rack": "42", "slot": 42, "units": 7,
               "capabilities": {"boot_mode": "uefi"}})
    );
    assert_eq!(
        n1["ironic_fields"],
        json!({"traits": ["CUSTOM_A", "CUSTOM_B"]})
    );
    assert_eq!(
        count(
            &mut db.conn(),
            "SELECT count(*) AS n FROM events WHERE action = 'set_field'"
        ),
        14,
        "one event per change; none for the refused names"
    );
    // The set-field output is the changed node.
    let out = json(&db.ok(&["set-field", "n1", "name", "n1-renamed", "-o", "json"]));
    assert_eq!(out["name"], "n1-renamed");
    assert_eq!(out["id"].as_i64().unwrap().to_string(), id);
}

#[test]
fn set_field_refuses_state_owner_unknown_nodes_and_bad_values() {
    let db = TestDb::new();
    db.seed("a", 2, "default");
    db.ok(&["allocate", "job-1"]);
    for field in ["state", "status", "owner", "provisioned", "id"] {
        let err = rejected(&db, &["set-field", "a1", field, "x"], 1);
        assert!(err.contains("cannot be set"), "{field}: {err}");
    }
    let err = rejected(&db, &["set-field", "nosuch", "cpus", "1"], 4);
    assert!(err.contains("no node \"nosuch\""), "{err}");
    rejected(&db, &["set-field", "999", "cpus", "1"], 4);
    let err = rejected(&db, &["set-field", "a1", "port_hwaddr", "de:ad:be:ef"], 1);
    assert!(err.contains("invalid MAC"), "{err}");
    rejected(&db, &["set-field", "a1", "ipmi_ip", "10.0.0.300"], 1);
    rejected(
        &db,
        &["set-field", "a1", "allocation_pool", "10.0.0.1,nope"],
        1,
    );
    rejected(&db, &["set-field", "a1", "cpus", "abc"], 1);
    rejected(&db, &["set-field", "a1", "cpus", "abc", "--type", "int"], 1);
    rejected(
        &db,
        &["set-field", "a1", "traits", "[oops", "--type", "json"],
        1,
    );
    rejected(&db, &["set-field", "a1", "name", "a0"], 6);
    rejected(&db, &["set-field", "a1", "name", "bad name"], 1);
    rejected(&db, &["set-field", "a1", "bad field", "x"], 4);
}

#[test]
fn set_field_never_records_a_password() {
    let db = TestDb::new();
    db.seed("a", 1, "default");
    let secret = "N3w-Secret-Pw";
    let out = db.ok(&["set-field", "a0", "ipmi_password", secret]);
    assert!(!out.contains(secret), "{out}");
    let out = db.ok(&[
        "set-field",
        "a0",
        "driver_info.ipmi_password",
        secret,
        "-o",
        "json",
    ]);
    assert!(!out.contains(secret), "{out}");
    assert_eq!(
        node(&db, "a0")["driver_info"]["ipmi_password"],
        secret,
        "the password was changed"
    );

    let mut conn = db.conn();
    assert_eq!(
        count(
            &mut conn,
            "SELECT count(*) AS n FROM events WHERE action = 'set_field' \
             AND detail->>'field' = 'driver_info.ipmi_password'"
        ),
        2
    );
    assert_eq!(
        count(
            &mut conn,
            &format!("SELECT count(*) AS n FROM events WHERE detail::text LIKE '%{secret}%'")
        ),
        0
    );
    for args in [
        &["history"][..],
        &["history", "-o", "json"],
        &["history", "-o", "csv"],
        &["history", "--node", "a0"],
    ] {
        let out = db.ok(args);
        assert!(out.contains("set_field"), "{args:?}: {out}");
        assert!(!out.contains(secret), "{args:?} shows the password: {out}");
    }
}

#[test]
fn remove_refuses_allocated_nodes_and_keeps_their_events() {
    let db = TestDb::new();
    db.seed("a", 2, "default");
    db.ok(&["allocate", "job-1"]);
    let err = rejected(&db, &["remove", "a0"], 6);
    assert!(
        err.contains("allocated to job-1") && err.contains("--force"),
        "{err}"
    );
    let (code, out, err) = db.run(&["remove", "a0", "--force"]);
    assert_eq!((code, out.as_str()), (0, ""), "{err}");
    assert!(err.contains("removed node a0"), "{err}");
    db.ok(&["remove", "2"]);
    assert_eq!(nodes(&db), 0);
    rejected(&db, &["remove", "a0"], 4);

    let a0 = json(&db.ok(&["history", "--node", "a0", "-o", "json"]));
    assert_eq!(actions(&a0), ["add", "allocate", "remove"]);
    assert_eq!(
        a0[2]["owner"], "job-1",
        "removing an allocated node names its owner"
    );
    assert_eq!(a0[2]["detail"]["state"], "allocated");
    let a1 = json(&db.ok(&["history", "--node", "a1", "-o", "json"]));
    assert_eq!(actions(&a1), ["add", "remove"]);
    let by_id = json(&db.ok(&["history", "--node", "2", "-o", "json"]));
    assert_eq!(by_id, a1);
    let human = db.ok(&["history", "--node", "a0"]);
    assert!(human.lines().last().unwrap().contains("remove"), "{human}");
}

#[test]
fn delete_db_needs_yes() {
    let db = TestDb::new();
    db.seed("a", 3, "default");
    db.ok(&["allocate", "job-1"]);
    let err = rejected(&db, &["delete_db"], 2);
    assert!(err.contains("--yes"), "{err}");
    rejected(&db, &["delete-db"], 2);
    assert_eq!((nodes(&db), events(&db)), (3, 4));
    let (code, _, err) = db.run(&["delete_db", "--yes"]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("deleted 3 nodes"), "{err}");
    assert_eq!((nodes(&db), events(&db)), (0, 0));
    // The schema stays: the database is usable at once.
    db.seed("b", 1, "default");
    assert_eq!(names(&json(&db.ok(&["status", "-o", "json"]))), ["b0"]);
}

#[test]
fn status_says_when_a_pool_does_not_exist_and_summarises_by_pool() {
    let db = TestDb::new();
    db.seed("d", 3, "default");
    db.seed("x", 2, "x86");
    db.ok(&["allocate", "job-1", "2"]);
    db.ok(&["maintenance", "x0", "--reason", "fan"]);

    // A misspelt pool: the empty table and exit 0, with a note that lists the pools.
    for args in [
        &["status", "--pool", "x68"][..],
        &["status", "--pool", "x68", "--summary"],
    ] {
        let (code, out, err) = db.run(args);
        assert_eq!(code, 0, "{err}");
        assert_eq!(
            err, "molteniron: no pool \"x68\": the pools are default, x86\n",
            "{args:?}"
        );
        assert_eq!(out.lines().count(), 1, "{args:?}: only the header: {out}");
    }
    let (_, out, err) = db.run(&["status", "--pool", "x68", "-o", "json"]);
    assert_eq!((out.as_str(), err.lines().count()), ("[]\n", 1));
    // A pool that exists but has nothing selected is no news.
    let (code, _, err) = db.run(&["status", "--pool", "x86", "--owner", "job-1"]);
    assert_eq!((code, err.as_str()), (0, ""));

    let csv = db.ok(&["status", "--summary", "-o", "csv"]);
    assert_eq!(
        csv,
        "pool,ready,allocated,dirty,maintenance,total\ndefault,1,2,0,0,3\nx86,1,0,0,1,2\n"
    );
    let human = db.ok(&["status", "--summary"]);
    let lines: Vec<Vec<&str>> = human
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        lines,
        [
            vec![
                "pool",
                "ready",
                "allocated",
                "dirty",
                "maintenance",
                "total"
            ],
            vec!["default", "1", "2", "0", "0", "3"],
            vec!["x86", "1", "0", "0", "1", "2"],
        ]
    );
    assert_eq!(
        json(&db.ok(&["status", "--summary", "--pool", "x86", "-o", "json"])),
        json!([{"pool": "x86", "ready": 1, "allocated": 0, "dirty": 0, "maintenance": 1, "total": 2}])
    );
    db.fails(&["status", "--summary", "--baremetal"], 2);
}

#[test]
fn status_formats_filters_and_masking() {
    let db = TestDb::new();
    db.import(
        "nodes:
  - {name: s1, pool: p1, driver_info: {ipmi_address: 10.0.0.1, ipmi_username: u1, ipmi_password: Pw-One}}
  - {name: s2, pool: p2, driver_info: {ipmi_address: 10.0.0.2, ipmi_username: u2, ipmi_password: Pw-Two},
     properties: {cpu_arch: x86_64, cpus: 4, memory_mb: 1024, local_gb: 20},
     ports: [{address: '02:00:00:00:00:02'}], allocation_pool: [10.1.0.1, 10.1.0.2]}
  - {name: s3, pool: p2, driver_info: {ipmi_address: 10.0.0.3}}
",
    );
    db.ok(&["allocate", "job-1", "1", "p2"]);

    let csv = db.ok(&["status", "-o", "csv"]);
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "id,name,pool,state,owner,held,lease left,bmc address"
    );
    assert_eq!(lines.len(), 4, "{csv}");
    assert_eq!(lines[1], "1,s1,p1,ready,,,,10.0.0.1");
    assert!(lines[2].starts_with("2,s2,p2,allocated,job-1,"), "{csv}");
    assert!(lines[2].ends_with(",10.0.0.2"), "{csv}");
    assert_eq!(lines[3], "3,s3,p2,ready,,,,10.0.0.3");

    let csv = db.ok(&["status", "--baremetal", "-o", "csv"]);
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "id,name,pool,state,owner,held,lease left,bmc address,bmc user,bmc password,bmc port,macs,cpu arch,cpus,memory mb,local gb,allocation pool"
    );
    assert!(
        lines[2].ends_with(
            ",10.0.0.2,u2,********,,02:00:00:00:00:02,x86_64,4,1024,20,\"10.1.0.1,10.1.0.2\""
        ),
        "{csv}"
    );
    assert!(
        lines[3].ends_with(",10.0.0.3,,,,,,,,,"),
        "no password, nothing to mask: {csv}"
    );

    let all = json(&db.ok(&["status", "-o", "json"]));
    assert_eq!(names(&all), ["s1", "s2", "s3"]);
    let expected_keys: BTreeSet<String> = [
        "id",
        "name",
        "pool",
        "state",
        "owner",
        "allocated_at",
        "lease_expires_at",
        "maintenance_reason",
        "driver",
        "driver_info",
        "properties",
        "ports",
        "allocation_pool",
        "ironic_fields",
    ]
    .map(str::to_owned)
    .into();
    for n in all.as_array().unwrap() {
        assert_eq!(keys(n), expected_keys, "{n}");
    }
    assert_eq!(all[1]["id"], 2);
    assert_eq!(all[1]["owner"], "job-1");
    assert!(all[1]["allocated_at"].is_string() && all[1]["lease_expires_at"].is_string());
    assert!(all[0]["owner"].is_null() && all[0]["allocated_at"].is_null());
    assert_eq!(all[0]["driver_info"]["ipmi_password"], "********");

    // Passwords: masked unless --show-secrets, in every format.
    for args in [
        &["status", "--baremetal"][..],
        &["status_baremetal"],
        &["status", "-o", "json"],
        &["status", "--baremetal", "-o", "csv"],
    ] {
        let out = db.ok(args);
        assert!(out.contains("********"), "{args:?}: {out}");
        assert!(
            !out.contains("Pw-One") && !out.contains("Pw-Two"),
            "{args:?}: {out}"
        );
    }
    for args in [
        &["status", "--baremetal", "--show-secrets"][..],
        &["status", "-o", "json", "--show-secrets"],
    ] {
        let out = db.ok(args);
        assert!(
            out.contains("Pw-One") && out.contains("Pw-Two"),
            "{args:?}: {out}"
        );
    }
    let human = db.ok(&["status"]);
    assert!(
        !human.contains("Pw-") && !human.contains("********"),
        "{human}"
    );
    assert!(
        human.lines().next().unwrap().trim_start().starts_with("id"),
        "{human}"
    );

    // Filters.
    assert_eq!(
        names(&json(&db.ok(&["status", "--pool", "p2", "-o", "json"]))),
        ["s2", "s3"]
    );
    assert_eq!(
        names(&json(&db.ok(&["status", "--owner", "job-1", "-o", "json"]))),
        ["s2"]
    );
    assert_eq!(
        json(&db.ok(&["status", "--pool", "p1", "--owner", "job-1", "-o", "json"])),
        json!([])
    );
    let csv = db.ok(&["status", "--pool", "nosuch", "-o", "csv"]);
    assert_eq!(csv.lines().count(), 1, "header only: {csv}");
    db.fails(&["status", "-o", "env"], 2);
}

#[test]
fn history_filters_and_json_shape() {
    let db = TestDb::new();
    db.seed("a", 3, "default");
    db.ok(&["allocate", "job-1"]);
    db.ok(&["allocate", "job-2"]);
    db.ok(&["release", "job-1"]);
    // Make the three add events old.
    diesel::sql_query("UPDATE events SET at = now() - interval '2 days' WHERE action = 'add'")
        .execute(&mut db.conn())
        .unwrap();

    let all = json(&db.ok(&["history", "-o", "json"]));
    assert_eq!(
        actions(&all),
        ["add", "add", "add", "allocate", "allocate", "release"]
    );
    let expected_keys: BTreeSet<String> = [
        "id",
        "at",
        "node_id",
        "node_name",
        "owner",
        "actor",
        "action",
        "detail",
    ]
    .map(str::to_owned)
    .into();
    let ids: Vec<i64> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            assert_eq!(keys(e), expected_keys, "{e}");
            assert!(e["at"].is_string() && e["detail"].is_object(), "{e}");
            e["id"].as_i64().unwrap()
        })
        .collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "oldest first: {ids:?}");
    assert_eq!(all[0]["node_name"], "a0");
    assert_eq!(all[0]["node_id"], 1);
    assert!(all[0]["owner"].is_null());
    assert_eq!(
        all[0]["detail"],
        json!({"pool": "default", "driver": "ipmi"})
    );
    assert_eq!(all[4]["node_name"], "a1");
    assert_eq!(all[4]["owner"], "job-2");

    let a0 = json(&db.ok(&["history", "--node", "a0", "-o", "json"]));
    assert_eq!(actions(&a0), ["add", "allocate", "release"]);
    assert!(
        a0.as_array()
            .unwrap()
            .iter()
            .all(|e| e["node_name"] == "a0")
    );
    let job1 = json(&db.ok(&["history", "--owner", "job-1", "-o", "json"]));
    assert_eq!(actions(&job1), ["allocate", "release"]);
    let job2 = json(&db.ok(&["history", "--owner", "job-2", "-o", "json"]));
    assert_eq!(actions(&job2), ["allocate"]);
    assert_eq!(job2[0]["node_name"], "a1");
    let last2 = json(&db.ok(&["history", "--limit", "2", "-o", "json"]));
    assert_eq!(
        last2.as_array().unwrap().as_slice(),
        &all.as_array().unwrap()[4..]
    );
    let recent = json(&db.ok(&["history", "--since", "1day", "-o", "json"]));
    assert_eq!(actions(&recent), ["allocate", "allocate", "release"]);
    let recent_a0 = json(&db.ok(&["history", "--since", "1h", "--node", "a0", "-o", "json"]));
    assert_eq!(actions(&recent_a0), ["allocate", "release"]);
    assert_eq!(
        json(&db.ok(&["history", "--node", "nosuch", "-o", "json"])),
        json!([])
    );

    let csv = db.ok(&["history", "--owner", "job-2", "-o", "csv"]);
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "id,at (UTC),node,owner,actor,action,detail");
    assert_eq!(lines.len(), 2, "{csv}");
    assert!(lines[1].contains(",a1,job-2,"), "{csv}");
    assert!(lines[1].contains(",allocate,"), "{csv}");
    // Times in the detail read like every other time in a table: RFC 3339 in UTC to the second.
    let (_, lease) = lines[1].split_once("lease_expires_at=").unwrap();
    let lease = lease.split([' ', ',', '"']).next().unwrap();
    assert_eq!(lease.len(), "2026-11-21T10:50:03Z".len(), "{csv}");
    assert!(
        lease.ends_with('Z') && chrono::DateTime::parse_from_rfc3339(lease).is_ok(),
        "{csv}"
    );

    db.fails(&["history", "--limit", "0"], 2);
    db.fails(&["history", "--since", "yesterday-ish"], 2);
}

#[test]
fn errors_never_echo_a_rejected_password_or_raw_control_characters() {
    let db = TestDb::new();
    db.seed("a", 1, "default");
    let err = db.fails(
        &[
            "set-field",
            "a0",
            "ipmi_password",
            "hunter2x",
            "--type",
            "int",
        ],
        1,
    );
    assert!(!err.contains("hunter2x"), "{err}");
    let file = temp_file(b"nodes:\n  - name: \"bad\\e[31mname\"\n    driver: fake\n");
    let err = db.fails(&["import", path_of(&file)], 1);
    assert!(!err.contains('\u{1b}'), "raw ESC reached stderr: {err:?}");
    assert!(err.contains("\\u{1b}"), "{err:?}");
    assert_eq!(err.lines().count(), 1);
}

#[test]
fn two_nodes_can_never_claim_the_same_hardware() {
    let db = TestDb::new();
    db.import(&std::fs::read_to_string(example_path()).unwrap());
    let before = snapshot(&db);
    // pkvmci816's MAC, its IPMI address, one of its allocation-pool IPs.
    for (args, what) in [
        (
            &[
                "add",
                "clone1",
                "--bmc-address",
                "10.0.0.1",
                "--mac",
                "F8:DE:29:33:A4:ED",
            ][..],
            "MAC f8:de:29:33:a4:ed",
        ),
        (
            &["add", "clone2", "--bmc-address", "10.228.219.134"],
            "IPMI address 10.228.219.134",
        ),
        (
            &[
                "add",
                "clone3",
                "--bmc-address",
                "10.0.0.3",
                "--allocation-pool",
                "10.228.112.11",
            ],
            "IP 10.228.112.11",
        ),
        (
            &["set-field", "pkvmci817", "port_hwaddr", "f8:de:29:33:a4:ed"],
            "MAC f8:de:29:33:a4:ed",
        ),
    ] {
        let err = db.fails(args, 6);
        assert!(
            err.contains(what) && err.contains("pkvmci816"),
            "{args:?}: {err}"
        );
    }
    let file = temp_file(b"nodes:\n  - {name: n1, driver_info: {ipmi_address: 10.1.1.1}, allocation_pool: [10.5.0.1]}\n  - {name: n2, driver_info: {ipmi_address: 10.1.1.2}, allocation_pool: [10.5.0.1]}\n");
    db.fails(&["import", path_of(&file)], 6);
    assert_eq!(snapshot(&db), before, "nothing was written");
    // VirtualBMC: one address, different ports, is two machines.
    db.ok(&[
        "add",
        "vbmc1",
        "--bmc-address",
        "10.0.0.9",
        "--driver-info",
        "ipmi_port=6230",
    ]);
    db.ok(&[
        "add",
        "vbmc2",
        "--bmc-address",
        "10.0.0.9",
        "--driver-info",
        "ipmi_port=6231",
    ]);
}

#[test]
fn names_made_only_of_digits_are_refused() {
    let db = TestDb::new();
    let err = db.fails(&["add", "12345", "--driver", "fake"], 1);
    assert!(err.contains("only digits"), "{err}");
}

/// The table's CHECK on names (written without a regular expression, which cost every session a
/// compilation) accepts exactly what molteniron's own check accepts, so psql cannot store a name the tool
/// would refuse. The one rule the table leaves to molteniron: a name made only of digits.
#[test]
fn the_table_enforces_the_same_name_rule_as_molteniron() {
    let db = TestDb::new();
    let mut conn = db.conn();
    let mut names: Vec<String> = [
        "a",
        "node-1",
        "A.b_c~d-e",
        "-",
        "~",
        "1a",
        "",
        " ",
        "a b",
        "a\nb",
        "a\tb",
        "a;b",
        "a'b",
        "a/b",
        "a$",
        "é",
        "ａ",
        "node\u{0}x",
        "日本",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    names.extend(["x".repeat(255), "x".repeat(256), "é".repeat(255)]);
    // Every printable ASCII character, and a few beyond, between two letters.
    names.extend(
        (' '..='~')
            .chain(['\u{7f}', 'ß', 'Ω', '\u{2013}'])
            .map(|c| format!("x{c}y")),
    );
    for name in &names {
        let stored = diesel::sql_query("INSERT INTO nodes (name, driver) VALUES ($1, 'fake')")
            .bind::<Text, _>(name)
            .execute(&mut conn);
        let accepted = match stored {
            Ok(_) => true,
            Err(diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::CheckViolation,
                _,
            )) => false,
            // PostgreSQL refuses a NUL byte in text before any CHECK runs.
            Err(e) if name.contains('\0') => {
                assert!(e.to_string().contains("0x00"), "{name:?}: {e}");
                false
            }
            Err(e) => panic!("{name:?}: {e}"),
        };
        assert_eq!(
            accepted,
            molteniron::inventory::check_name(name).is_ok(),
            "{name:?}"
        );
    }
    // Digits only: the table stores it, molteniron refuses it (it would read as a node id).
    let digits = diesel::sql_query("INSERT INTO nodes (name, driver) VALUES ('12345', 'fake')")
        .execute(&mut conn);
    assert!(digits.is_ok(), "{digits:?}");
    assert!(molteniron::inventory::check_name("12345").is_err());
}

#[test]
fn credentials_are_recognised_in_any_case_and_at_any_depth() {
    let db = TestDb::new();
    db.seed("a", 1, "default");
    db.ok(&["set-field", "a0", "driver_info.IPMI_PASSWORD", "TopSecret1"]);
    db.ok(&[
        "set-field",
        "a0",
        "extra",
        r#"{"bmc": {"Password": "NestedSecret2"}}"#,
        "--type",
        "json",
    ]);
    let status = db.ok(&["status", "-o", "json"]);
    let history = db.ok(&["history", "-o", "json"]);
    for secret in ["TopSecret1", "NestedSecret2"] {
        assert!(!status.contains(secret), "status shows {secret}: {status}");
        assert!(
            !history.contains(secret),
            "history shows {secret}: {history}"
        );
    }
    let shown = db.ok(&["status", "-o", "json", "--show-secrets"]);
    assert!(shown.contains("TopSecret1") && shown.contains("NestedSecret2"));
}

#[test]
fn hostile_files_are_refused_clearly_without_writing() {
    let db = TestDb::new();
    db.seed("a", 1, "default");
    let before = snapshot(&db);
    let deep = format!(
        "nodes:\n  - name: n1\n    driver: fake\n    properties: {{a: {}{}}}\n",
        "[".repeat(20_000),
        "]".repeat(20_000)
    );
    let huge = vec![b'#'; 64 * 1024 * 1024 + 1];
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (deep.into_bytes(), "recursion limit exceeded"),
        (
            b"nodes: [{name: n1, driver: fake, properties: {cpus: 99999999999999999999999999}}]\n"
                .to_vec(),
            "too large",
        ),
        (
            b"nodes: [{name: n1, driver: fake, properties: {cpus: 9223372036854775808}}]\n"
                .to_vec(),
            "cpus must be",
        ),
        (huge, "larger than"),
    ];
    for (bytes, want) in cases {
        let file = temp_file(&bytes);
        let err = db.fails(&["import", path_of(&file)], 1);
        assert!(err.contains(want), "{want}: {err}");
        assert_eq!(err.lines().count(), 1);
    }
    assert_eq!(snapshot(&db), before);
}

/// import says which pools are new (so a typo'd pool is noticed), --update says which nodes changed in
/// which fields (names only, never values), and --dry-run checks all of it in the database and writes
/// nothing.
#[test]
fn import_reports_new_pools_changed_fields_and_dry_runs_write_nothing() {
    let db = TestDb::new();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("nodes.yaml");
    let write = |yaml: &str| std::fs::write(&file, yaml).unwrap();
    let path = file.to_str().unwrap();
    write(
        "nodes:\n  - {name: a, pool: x86, driver: fake, properties: {cpus: 8}, ports: [{address: '02:00:00:00:aa:01'}]}\n",
    );
    let (code, _, stderr) = db.run(&["import", path]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("new pool: x86"), "{stderr}");
    write(
        "nodes:\n  - {name: a, pool: x68, driver: fake, properties: {cpus: 16}, driver_info: {ipmi_password: s3cr3t-pw}, ports: [{address: '02:00:00:00:aa:01'}]}\n  - {name: b, pool: x86, driver: fake, ports: [{address: '02:00:00:00:aa:02'}]}\n",
    );
    let events = |db: &TestDb| count(&mut db.conn(), "SELECT count(*) AS n FROM events");
    let before = (db.ok(&["status", "-o", "json"]), events(&db));
    let (code, _, stderr) = db.run(&["import", "--update", "--dry-run", path]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains("updated a: pool, driver_info, properties"),
        "{stderr}"
    );
    assert!(stderr.contains("new pool: x68"), "{stderr}");
    assert!(!stderr.contains("new pool: x86"), "{stderr}");
    assert!(
        stderr.contains("would import") && stderr.contains("1 added, 1 updated, 0 unchanged"),
        "{stderr}"
    );
    assert!(!stderr.contains("s3cr3t-pw"), "{stderr}");
    assert_eq!(
        (db.ok(&["status", "-o", "json"]), events(&db)),
        before,
        "a dry run writes nothing"
    );
    // A dry run is checked by the database: a conflict is still a conflict.
    write("nodes:\n  - {name: c, driver: fake, ports: [{address: '02:00:00:00:aa:01'}]}\n");
    db.fails(&["import", "--dry-run", path], 6);
    write(
        "nodes:\n  - {name: a, pool: x68, driver: fake, properties: {cpus: 16}, ports: [{address: '02:00:00:00:aa:01'}]}\n",
    );
    let (_, _, stderr) = db.run(&["import", "--update", path]);
    assert!(stderr.contains("updated a: pool, properties\n"), "{stderr}");
    assert!(
        stderr.contains("imported") && stderr.contains("0 added, 1 updated"),
        "{stderr}"
    );
}

/// A value stored with a newline or a terminal escape never breaks a table row or reaches a terminal
/// raw; a maintenance reason with control characters is refused outright.
#[test]
fn control_characters_are_escaped_in_tables_and_refused_in_reasons() {
    let db = TestDb::new();
    db.seed("a", 1, "default");
    db.fails(
        &["maintenance", "a0", "--reason", "fan\u{1b}[2J\nfailure"],
        1,
    );
    db.ok(&[
        "set-field",
        "a0",
        "driver_info.ipmi_username",
        "ro\u{1b}[31mot",
    ]);
    db.ok(&["set-field", "a0", "properties.note", "two\nlines"]);
    for args in [
        &["status", "--baremetal"][..],
        &["history"],
        &["allocate", "job", "1"],
    ] {
        let out = db.ok(args);
        assert!(!out.contains('\u{1b}'), "{args:?}: {out:?}");
        assert!(
            out.contains("ro\\u{1b}[31mot") || args[0] == "history",
            "{args:?}: {out}"
        );
    }
    let history = db.ok(&["history"]);
    assert!(history.contains("two\\nlines"), "{history}");
    let json = json(&db.ok(&["status", "-o", "json"]));
    assert_eq!(
        json[0]["properties"]["note"], "two\nlines",
        "JSON carries the value as stored"
    );
}

/// `add` with one key given twice (two --driver-info, or --cpus and --property cpus=) is refused, as
/// import refuses a duplicate key, instead of keeping one of the values silently.
#[test]
fn add_refuses_a_key_given_twice() {
    let db = TestDb::new();
    for args in [
        &[
            "add",
            "s7",
            "--driver",
            "fake",
            "--driver-info",
            "snmp_community=A1b2",
            "--driver-info",
            "snmp_community=x",
        ][..],
        &[
            "add",
            "s7",
            "--driver",
            "fake",
            "--cpus",
            "8",
            "--property",
            "cpus=9",
        ],
    ] {
        let err = db.fails(args, 1);
        assert!(err.contains("is given twice"), "{err}");
        assert!(!err.contains("A1b2"), "{err}");
    }
    assert_eq!(count(&mut db.conn(), "SELECT count(*) AS n FROM nodes"), 0);
}
