//! Who made each change: every event carries its actor (the database role and the invoking OS
//! user@host), and an operator taking a node from its job is a `force_release`, not the job's `release`.

use diesel::prelude::*;
use diesel::sql_types::Text;
use serde_json::{Value, json};

use crate::support::{TestDb, json};

/// `molteniron ARGS` run by OS user `user` (USER and LOGNAME; no PGAPPNAME), asserting exit 0.
fn ok_as(db: &TestDb, user: &str, args: &[&str]) -> String {
    let out = db
        .cmd()
        .env("USER", user)
        .env("LOGNAME", user)
        .env_remove("PGAPPNAME")
        .args(args)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "molteniron {args:?}: {stderr}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The database role the tests log in as.
fn role(db: &TestDb) -> String {
    #[derive(QueryableByName)]
    struct Role {
        #[diesel(sql_type = Text)]
        name: String,
    }
    diesel::sql_query("SELECT session_user::text AS name")
        .get_result::<Role>(&mut db.conn())
        .unwrap()
        .name
}

/// The actor molteniron run by OS user `user` on this host records: the role, then `user@host` as
/// the 63 bytes of `molteniron user@host` the application name holds.
fn actor(db: &TestDb, user: &str) -> String {
    let host = whoami::hostname().unwrap();
    let name: String = format!("molteniron {user}@{host}")
        .chars()
        .take(63)
        .collect();
    format!("{} {}", role(db), &name["molteniron ".len()..])
}

/// `text` with every run of spaces made one (table columns are padded to their widest cell).
fn squeezed(text: &str) -> String {
    text.lines()
        .map(|line| line.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect::<Vec<_>>()
        .join("\n")
}

fn event<'a>(events: &'a Value, action: &str) -> &'a Value {
    events
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == action)
        .unwrap_or_else(|| panic!("no {action} event in {events}"))
}

fn actions(events: &Value) -> Vec<&str> {
    events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect()
}

#[test]
fn history_names_the_role_and_the_os_user_at_host_of_each_change() {
    let db = TestDb::new();
    db.seed("a", 1, "default");
    ok_as(&db, "ci-bot", &["allocate", "job-1"]);
    ok_as(&db, "ci-bot", &["renew", "job-1"]);
    ok_as(&db, "ci-bot", &["release", "job-1"]);
    let expected = actor(&db, "ci-bot");

    let events = json(&db.ok(&["history", "--owner", "job-1", "-o", "json"]));
    assert_eq!(actions(&events), ["allocate", "renew", "release"]);
    for e in events.as_array().unwrap() {
        assert_eq!(e["actor"], expected.as_str(), "{e}");
    }

    let human = squeezed(&db.ok(&["history", "--owner", "job-1"]));
    let header: Vec<&str> = human.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        [
            "id", "at", "(UTC)", "node", "owner", "actor", "action", "detail"
        ]
    );
    assert!(
        human.contains(&format!("job-1 {expected} allocate")),
        "{human}"
    );

    let csv = db.ok(&["history", "--owner", "job-1", "-o", "csv"]);
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "id,at (UTC),node,owner,actor,action,detail");
    assert!(
        lines[3].contains(&format!(",a0,job-1,{expected},release,")),
        "{csv}"
    );
}

#[test]
fn an_application_name_the_user_set_wins_and_events_before_the_actor_have_none() {
    let db = TestDb::new();
    db.seed("a", 2, "default");
    let role = role(&db);
    let by_env = db
        .cmd()
        .env("PGAPPNAME", "nightly-job")
        .args(["allocate", "job-1"])
        .output()
        .unwrap();
    assert!(by_env.status.success());
    let in_url = format!("{} application_name=from-url", db.url());
    let by_url = db
        .cmd()
        .env_remove("PGAPPNAME")
        .env("MOLTENIRON_DATABASE_URL", &in_url)
        .args(["allocate", "job-2"])
        .output()
        .unwrap();
    assert!(by_url.status.success());
    // A session without any application name (psql -X with no PGAPPNAME sends none) is its role alone;
    // an event from before the migration has no actor.
    diesel::sql_query(
        "INSERT INTO events (node_id, node_name, action) VALUES (1, 'a0', 'clean'), (1, 'a0', 'clean')",
    )
    .execute(&mut db.conn())
    .unwrap();
    diesel::sql_query("UPDATE events SET actor = NULL WHERE id = (SELECT max(id) FROM events)")
        .execute(&mut db.conn())
        .unwrap();

    let events = json(&db.ok(&["history", "-o", "json"]));
    let all = events.as_array().unwrap();
    assert_eq!(
        event(&events, "allocate")["actor"],
        format!("{role} nightly-job").as_str()
    );
    let job2 = all.iter().find(|e| e["owner"] == "job-2").unwrap();
    assert_eq!(job2["actor"], format!("{role} from-url").as_str());
    assert_eq!(all[all.len() - 2]["actor"], role.as_str());
    assert_eq!(all[all.len() - 1]["actor"], Value::Null);
}

#[test]
fn maintenance_force_is_a_force_release_by_the_operator_naming_the_previous_owner() {
    let db = TestDb::new();
    db.seed("a", 1, "default");
    ok_as(&db, "ci-bot", &["allocate", "job-1"]);
    ok_as(
        &db,
        "ann",
        &["maintenance", "a0", "--reason", "PSU swap", "--force"],
    );

    let events = json(&db.ok(&["history", "--node", "a0", "-o", "json"]));
    assert_eq!(
        actions(&events),
        ["add", "allocate", "force_release", "maintenance_on"],
        "never a plain release: {events}"
    );
    let forced = event(&events, "force_release");
    assert_eq!(forced["owner"], "job-1");
    assert_eq!(
        forced["detail"],
        json!({"previous_owner": "job-1", "state": "ready"})
    );
    let operator = actor(&db, "ann");
    assert_eq!(forced["actor"], operator.as_str());
    assert_eq!(event(&events, "maintenance_on")["actor"], operator.as_str());
    assert_eq!(
        event(&events, "allocate")["actor"],
        actor(&db, "ci-bot").as_str()
    );

    // The job's own history shows that it lost the node, and to whom.
    let job = squeezed(&db.ok(&["history", "--owner", "job-1"]));
    assert!(
        job.contains(&format!(
            "job-1 {operator} force_release previous_owner=job-1 state=ready"
        )),
        "{job}"
    );
}
