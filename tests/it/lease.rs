//! allocate, release, renew, reap and get-field: the job's side of the pool.

use diesel::connection::SimpleConnection;
use serde_json::Value;

use crate::support::{TestDb, count, json, names};

#[test]
fn allocate_takes_lowest_ids_of_the_pool_and_prints_credentials() {
    let db = TestDb::new();
    db.seed("a", 3, "default");
    db.seed("x", 2, "x86");
    let out = json(&db.ok(&["allocate", "job-1", "2", "-o", "json"]));
    assert_eq!(names(&out), ["a0", "a1"]);
    assert_eq!(out[0]["state"], "allocated");
    assert_eq!(out[0]["owner"], "job-1");
    assert_eq!(
        out[0]["driver_info"]["ipmi_password"], "pw0",
        "allocate shows credentials"
    );
    let out = json(&db.ok(&["allocate", "job-2", "1", "x86", "-o", "json"]));
    assert_eq!(names(&out), ["x0"]);
    let out = json(&db.ok(&["allocate", "job-3", "--pool", "x86", "-o", "json"]));
    assert_eq!(names(&out), ["x1"]);
}

#[test]
fn not_enough_nodes_is_exit_3_and_allocates_nothing() {
    let db = TestDb::new();
    db.seed("a", 2, "default");
    db.ok(&["allocate", "holder", "1"]);
    let err = db.fails(&["allocate", "job-1", "2"], 3);
    assert!(
        err.contains("Not enough available nodes found. Found 1, requested 2"),
        "{err}"
    );
    let mut conn = db.conn();
    assert_eq!(
        count(
            &mut conn,
            "SELECT count(*) AS n FROM nodes WHERE state <> 'ready'"
        ),
        1
    );
    assert_eq!(
        count(
            &mut conn,
            "SELECT count(*) AS n FROM events WHERE action = 'allocate'"
        ),
        1
    );
}

/// Exit 8, not 3, when retrying cannot help: more nodes than the pool has in any state, or a pool that
/// does not exist (a typo). The original's text comes first; why follows in parentheses.
#[test]
fn a_request_that_can_never_be_satisfied_is_exit_8_and_says_why() {
    let db = TestDb::new();
    db.seed("a", 2, "default");
    db.seed("x", 1, "x86");
    db.ok(&["maintenance", "a1", "--reason", "fan"]);
    let err = db.fails(&["allocate", "job-1", "3", "default"], 8);
    assert!(
        err.contains("Not enough available nodes found. Found 1, requested 3 (only 2 nodes in pool default, in any state)"),
        "{err}"
    );
    // Two match when the maintenance node is counted: not now, but possibly later.
    let err = db.fails(&["allocate", "job-1", "2", "default"], 3);
    assert!(err.contains("Found 1, requested 2"), "{err}");
    let err = db.fails(&["allocate", "job-1", "1", "ppc64le"], 8);
    assert!(
        err.contains("Found 0, requested 1 (there is no pool \"ppc64le\"; pools: default, x86)"),
        "{err}"
    );
    assert_eq!(
        count(
            &mut db.conn(),
            "SELECT count(*) AS n FROM events WHERE action = 'allocate'"
        ),
        0
    );
}

#[test]
fn allocate_retry_returns_what_the_owner_holds_and_other_requests_conflict() {
    let db = TestDb::new();
    db.seed("a", 4, "default");
    let first = json(&db.ok(&["allocate", "job-1", "2", "-o", "json"]));
    let again = json(&db.ok(&["allocate", "job-1", "2", "-o", "json"]));
    assert_eq!(names(&first), names(&again));
    db.fails(&["allocate", "job-1", "1"], 6);
    db.fails(&["allocate", "job-1", "2", "other"], 6);
    let mut conn = db.conn();
    assert_eq!(
        count(
            &mut conn,
            "SELECT count(*) AS n FROM nodes WHERE owner = 'job-1'"
        ),
        2
    );
    assert_eq!(
        count(
            &mut conn,
            "SELECT count(*) AS n FROM events WHERE action = 'allocate'"
        ),
        2
    );
}

#[test]
fn release_is_idempotent_and_release_node_checks_the_holder() {
    let db = TestDb::new();
    db.seed("a", 3, "default");
    db.ok(&["allocate", "job-1", "2"]);
    db.fails(&["release", "job-2", "--node", "a0"], 4);
    db.fails(&["release", "job-1", "--node", "nosuch"], 4);
    let out = json(&db.ok(&["release", "job-1", "--node", "a0", "-o", "json"]));
    assert_eq!(names(&out), ["a0"]);
    db.ok(&["release", "job-1"]);
    let (code, out, err) = db.run(&["release", "job-1"]);
    assert_eq!(code, 0);
    assert!(out.is_empty());
    let (code, out, _) = db.run(&["release", "job-1", "-o", "json"]);
    assert_eq!((code, out.trim()), (0, "[]"), "scripts get an empty list");
    assert!(err.contains("job-1 holds no nodes"), "{err}");
    let mut conn = db.conn();
    assert_eq!(
        count(
            &mut conn,
            "SELECT count(*) AS n FROM nodes WHERE state = 'ready'"
        ),
        3
    );
    assert_eq!(
        count(
            &mut conn,
            "SELECT count(*) AS n FROM events WHERE action = 'release'"
        ),
        2
    );
}

#[test]
fn release_state_dirty_then_clean() {
    let db = TestDb::new();
    db.seed("a", 1, "default");
    let config = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(config.path(), "release_state: dirty\n").unwrap();
    let cfg = config.path().to_str().unwrap();
    db.ok(&["allocate", "job-1"]);
    db.ok(&["--config", cfg, "release", "job-1"]);
    db.fails(&["allocate", "job-2"], 3);
    db.ok(&["clean", "a0"]);
    let err = db.fails(&["clean", "a0"], 6);
    assert!(err.contains("not dirty"), "{err}");
    db.ok(&["allocate", "job-2"]);
}

#[test]
fn renew_moves_the_lease_and_needs_an_owner() {
    let db = TestDb::new();
    db.seed("a", 2, "default");
    db.ok(&["allocate", "job-1", "2", "--lease", "10m"]);
    let out = json(&db.ok(&["renew", "job-1", "--lease", "3h", "-o", "json"]));
    assert_eq!(names(&out), ["a0", "a1"]);
    let mut conn = db.conn();
    let n = count(
        &mut conn,
        "SELECT count(*) AS n FROM nodes WHERE lease_expires_at BETWEEN now() + interval '2h 59m' AND now() + interval '3h 1m'",
    );
    assert_eq!(n, 2);
    assert_eq!(
        count(
            &mut conn,
            "SELECT count(*) AS n FROM events WHERE action = 'renew'"
        ),
        2
    );
    db.fails(&["renew", "nobody"], 4);
    db.fails(&["renew", "job-1", "--lease", "soon"], 2);
}

#[test]
fn reap_takes_back_expired_leases_only() {
    let db = TestDb::new();
    db.seed("a", 3, "default");
    db.ok(&["allocate", "old", "1"]);
    db.ok(&["allocate", "young", "1"]);
    db.ok(&["allocate", "long", "1", "--lease", "30days"]);
    let mut conn = db.conn();
    use diesel::RunQueryDsl;
    diesel::sql_query(
        "UPDATE nodes SET lease_expires_at = now() - interval '1s' WHERE owner = 'old'",
    )
    .execute(&mut conn)
    .unwrap();
    diesel::sql_query(
        "UPDATE nodes SET allocated_at = now() - interval '2 days' WHERE owner = 'long'",
    )
    .execute(&mut conn)
    .unwrap();
    let out = json(&db.ok(&["reap", "-o", "json"]));
    assert_eq!(names(&out), ["a0"]);
    assert_eq!(out[0]["owner"], "old");
    let out = json(&db.ok(&["cull", "--max-age", "1day", "-o", "json"]));
    assert_eq!(names(&out), ["a2"]);
    assert_eq!(
        count(
            &mut conn,
            "SELECT count(*) AS n FROM nodes WHERE owner = 'young'"
        ),
        1
    );
    assert_eq!(
        count(
            &mut conn,
            "SELECT count(*) AS n FROM events WHERE action = 'reap'"
        ),
        2
    );
    let out = json(&db.ok(&["reap", "-o", "json"]));
    assert_eq!(out, Value::Array(vec![]));
}

/// Whether `text` starts with a time as tables show them: `2026-11-21T10:50:03Z`.
fn starts_with_timestamp(text: &str) -> bool {
    text.get(..20)
        .is_some_and(|t| t.ends_with('Z') && chrono::DateTime::parse_from_rfc3339(t).is_ok())
}

#[test]
fn reap_for_cron_is_quiet_when_idle_and_timestamps_what_it_says() {
    let db = TestDb::new();
    db.seed("a", 2, "default");
    // Nothing to reap: --quiet prints nothing at all, and without it the note says when it ran.
    let (code, out, err) = db.run(&["reap", "--quiet"]);
    assert_eq!((code, out.as_str(), err.as_str()), (0, "", ""));
    let (code, out, err) = db.run(&["reap"]);
    assert_eq!((code, out.as_str()), (0, ""), "{err}");
    let note = err.strip_prefix("molteniron: ").unwrap();
    assert!(
        starts_with_timestamp(note)
            && note.ends_with(
                " reaped 0 node(s)
"
            ),
        "{err}"
    );
    // Data formats still print their empty list.
    let (code, out, err) = db.run(&["reap", "-q", "-o", "json"]);
    assert_eq!(
        (code, out.as_str(), err.as_str()),
        (
            0, "[]
", ""
        )
    );

    db.ok(&["allocate", "old"]);
    db.conn()
        .batch_execute(
            "UPDATE nodes SET lease_expires_at = now() - interval '1s' WHERE owner = 'old'",
        )
        .unwrap();
    let (code, out, err) = db.run(&["reap", "--quiet"]);
    assert_eq!(code, 0, "{err}");
    let note = err.strip_prefix("molteniron: ").unwrap();
    assert!(
        starts_with_timestamp(note)
            && note.ends_with(
                " reaped 1 node(s)
"
            ),
        "{err}"
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(lines[0].trim_start().starts_with("reaped at"), "{out}");
    assert!(starts_with_timestamp(lines[1].trim_start()), "{out}");
    assert!(lines[1].contains("a0") && lines[1].contains("old"), "{out}");
}

#[test]
fn get_field_prints_one_value_per_held_node() {
    let db = TestDb::new();
    db.seed("a", 2, "default");
    db.ok(&["allocate", "job-1", "2"]);
    assert_eq!(
        db.ok(&["get-field", "job-1", "ipmi_ip"]),
        "10.9.0.1\n10.9.0.2\n"
    );
    assert_eq!(
        db.ok(&["get_field", "job-1", "port_hwaddr"]),
        "02:00:00:00:00:00\n02:00:00:00:00:01\n"
    );
    let out = json(&db.ok(&[
        "get-field",
        "job-1",
        "driver_info.ipmi_username",
        "-o",
        "json",
    ]));
    assert_eq!(out[1]["value"], "u");
    db.fails(&["get-field", "nobody", "ipmi_ip"], 4);
    db.fails(&["get-field", "job-1", "no_such_field"], 4);
    db.fails(&["get-field", "job-1", "bad field"], 4);
}

#[test]
fn owner_names_are_free_text_stored_verbatim() {
    let db = TestDb::new();
    db.seed("a", 1, "default");
    let owner = "jenkins-ironic-ppc64el #42 'quoted'; DROP TABLE nodes;--";
    db.ok(&["allocate", owner]);
    assert_eq!(db.ok(&["get-field", owner, "owner"]), format!("{owner}\n"));
    let long = "x".repeat(256);
    db.fails(&["allocate", &long], 1);
    db.ok(&["release", owner]);
}

#[test]
fn env_output_is_shell_evaluable() {
    let db = TestDb::new();
    db.seed("a", 2, "default");
    let one = db.ok(&["allocate", "job 'one'", "1", "-o", "env"]);
    let script = format!(
        "{one}\nprintf '%s|%s|%s' \"$MOLTENIRON_OWNER\" \"$MOLTENIRON_NAME\" \"$MOLTENIRON_BMC_PASSWORD\""
    );
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(&script)
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "job 'one'|a0|pw0");
    let two = db.ok(&["allocate", "job-2", "1", "-o", "env"]);
    assert!(two.contains("MOLTENIRON_NAME=a1"), "{two}");
    db.ok(&["release", "job-2"]);
    db.ok(&["release", "job 'one'"]);
    let both = db.ok(&["allocate", "job-3", "2", "-o", "env"]);
    assert!(
        both.contains("MOLTENIRON_COUNT=2")
            && both.contains("MOLTENIRON_NAME_0=a0")
            && both.contains("MOLTENIRON_NAME_1=a1"),
        "{both}"
    );
    assert!(
        !both.contains("BMC_PORT"),
        "no port given, none printed: {both}"
    );
}

/// VirtualBMC and friends listen on their own IPMI ports: env and status --baremetal carry ipmi_port.
#[test]
fn the_ipmi_port_is_printed_when_a_node_has_one() {
    let db = TestDb::new();
    db.seed("a", 1, "default");
    db.ok(&[
        "set-field",
        "a0",
        "driver_info.ipmi_port",
        "6230",
        "--type",
        "int",
    ]);
    let env = db.ok(&["allocate", "job-1", "1", "-o", "env"]);
    assert!(env.contains("\nMOLTENIRON_BMC_PORT=6230\n"), "{env}");
    let csv = db.ok(&["status", "--baremetal", "-o", "csv"]);
    assert!(csv.contains(",u,********,6230,"), "{csv}");
    let out = json(&db.ok(&["status", "-o", "json"]));
    assert_eq!(out[0]["driver_info"]["ipmi_port"], 6230);
}

#[test]
fn maintenance_refuses_allocated_nodes_unless_forced() {
    let db = TestDb::new();
    db.seed("a", 2, "default");
    db.ok(&["allocate", "job-1"]);
    let err = db.fails(&["maintenance", "a0", "--reason", "bad disk"], 6);
    assert!(err.contains("allocated to job-1"), "{err}");
    db.ok(&["maintenance", "a0", "--reason", "bad disk", "--force"]);
    db.ok(&["maintenance", "a1", "--reason", "firmware"]);
    db.fails(&["allocate", "job-2"], 3);
    let status: Value = serde_json::from_str(&db.ok(&["status", "-o", "json"])).unwrap();
    assert_eq!(status[0]["state"], "maintenance");
    assert_eq!(status[0]["maintenance_reason"], "bad disk");
    db.ok(&["maintenance", "1", "--off"]);
    db.fails(&["maintenance", "a0", "--off"], 6);
    let out = json(&db.ok(&["allocate", "job-2", "-o", "json"]));
    assert_eq!(names(&out), ["a0"]);
    let mut conn = db.conn();
    let actions = count(
        &mut conn,
        "SELECT count(*) AS n FROM events WHERE node_name = 'a0' AND action IN ('force_release', 'maintenance_on', 'maintenance_off')",
    );
    assert_eq!(actions, 3);
}

#[test]
fn owners_with_control_characters_are_refused() {
    let db = TestDb::new();
    db.seed("a", 1, "default");
    db.fails(&["allocate", "evil\nmolteniron: error: fake"], 1);
    db.fails(&["release", "nobody\nline2"], 1);
    assert_eq!(
        count(
            &mut db.conn(),
            "SELECT count(*) AS n FROM events WHERE action = 'allocate'"
        ),
        0
    );
}

/// Build logs are often published: allocate's human table masks the BMC password unless --show-secrets;
/// -o json and -o env carry it (scripts read them into files and variables, not logs).
#[test]
fn allocate_masks_the_password_in_its_table_only() {
    let db = TestDb::new();
    db.seed("a", 4, "default");
    let table = db.ok(&["allocate", "job-1", "1"]);
    assert!(
        table.contains("a0") && table.contains("********"),
        "{table}"
    );
    assert!(!table.contains("pw0"), "{table}");
    let shown = db.ok(&["allocate", "job-2", "1", "--show-secrets"]);
    assert!(shown.contains("pw1"), "{shown}");
    let env = db.ok(&["allocate", "job-3", "1", "-o", "env"]);
    assert!(env.contains("MOLTENIRON_BMC_PASSWORD=pw2"), "{env}");
    let out = json(&db.ok(&["allocate", "job-4", "1", "-o", "json"]));
    assert_eq!(out[0]["driver_info"]["ipmi_password"], "pw3");
}
