//! The store in-process, statement by statement, next to the binary-driven tests: each query does what
//! its doc says on a real database. Also holds the Rust vocabulary (`NodeState`, `EventAction`) to the
//! database's CHECK lists.

use diesel::prelude::*;
use diesel::sql_types::Text;
use molteniron::domain::{EventAction, NodeState, RequestState};
use molteniron::inventory::NodeSpec;
use molteniron::store::events::{self, EventFilter};
use molteniron::store::nodes;
use serde_json::json;

use crate::support::TestDb;

/// The default config's timeouts, which the hot statements set for themselves.
fn t() -> molteniron::config::Timeouts {
    molteniron::config::Config::default().timeouts()
}

/// The quoted values of the CHECK constraint `TABLE_COLUMN_check` (the list of values `column` may take).
fn check_values(conn: &mut PgConnection, table: &str, column: &str) -> Vec<String> {
    #[derive(QueryableByName)]
    struct Def {
        #[diesel(sql_type = Text)]
        def: String,
    }
    let defs: Vec<Def> = diesel::sql_query(
        "SELECT pg_get_constraintdef(oid) AS def FROM pg_constraint \
         WHERE conrelid = $1::regclass AND contype = 'c' AND conname = $2",
    )
    .bind::<Text, _>(table)
    .bind::<Text, _>(format!("{table}_{column}_check"))
    .load(conn)
    .unwrap();
    let def = defs
        .into_iter()
        .map(|d| d.def)
        .find(|d| d.contains(&format!("({column} = ANY")))
        .unwrap_or_else(|| panic!("no CHECK on {table}.{column}"));
    def.split('\'')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_vocabulary_is_the_databases_check_lists() {
    let db = TestDb::new();
    let mut conn = db.conn();
    let states: Vec<&str> = NodeState::ALL.iter().map(|s| s.as_str()).collect();
    assert_eq!(check_values(&mut conn, "nodes", "state"), states);
    let actions: Vec<&str> = EventAction::ALL.iter().map(|a| a.as_str()).collect();
    assert_eq!(check_values(&mut conn, "events", "action"), actions);
    let requests: Vec<&str> = RequestState::ALL.iter().map(|s| s.as_str()).collect();
    assert_eq!(check_values(&mut conn, "requests", "state"), requests);
}

fn spec(name: &str, pool: &str, mac: &str) -> NodeSpec {
    let mut spec = NodeSpec::new(name);
    spec.pool = pool.to_owned();
    spec.driver = "fake".to_owned();
    spec.ports = vec![serde_json::Map::from_iter([(
        "address".to_owned(),
        json!(mac),
    )])];
    spec
}

#[test]
fn insert_find_list_update_set_state_and_delete() {
    let db = TestDb::new();
    let conn = &mut db.conn();
    let a = nodes::insert(conn, &spec("a", "p", "52:54:00:00:00:01"))
        .unwrap()
        .unwrap();
    assert!(
        nodes::insert(conn, &spec("a", "p", "52:54:00:00:00:09"))
            .unwrap()
            .is_none()
    );
    let b = nodes::insert(conn, &spec("b", "q", "52:54:00:00:00:02"))
        .unwrap()
        .unwrap();
    assert_eq!(a.state, NodeState::Ready);
    assert_eq!(nodes::find(conn, "a", false).unwrap().unwrap().id, a.id);
    assert_eq!(
        nodes::find(conn, &b.id.to_string(), true)
            .unwrap()
            .unwrap()
            .name,
        "b"
    );
    assert!(nodes::find(conn, "zzz", false).unwrap().is_none());
    assert_eq!(
        nodes::list(conn, &json!({"pool": "q"}), None)
            .unwrap()
            .len(),
        1
    );
    assert!(nodes::name_taken(conn, "b").unwrap());
    assert!(nodes::shared_hardware(conn).unwrap().is_none());

    let mut changed = b.spec();
    changed.ports = a.spec().ports;
    nodes::update_inventory(conn, b.id, &changed, EventAction::Update, json!({})).unwrap();
    let conflict = nodes::shared_hardware(conn)
        .unwrap()
        .expect("two nodes claim one MAC");
    assert!(conflict.contains("52:54:00:00:00:01"), "{conflict}");

    let out = nodes::set_state(
        conn,
        a.id,
        NodeState::Maintenance,
        Some(("fan", molteniron::domain::MaintenanceBy::Operator)),
        EventAction::MaintenanceOn,
        json!({"reason": "fan"}),
    )
    .unwrap();
    assert_eq!(out.state_label(), "maintenance (fan)");
    nodes::delete(conn, &out).unwrap();
    assert!(nodes::find(conn, "a", false).unwrap().is_none());

    let filter = EventFilter {
        node_name: Some("a".to_owned()),
        limit: 10,
        ..Default::default()
    };
    let actions: Vec<EventAction> = events::list(conn, &filter)
        .unwrap()
        .iter()
        .map(|e| e.action)
        .collect();
    assert_eq!(
        actions,
        [
            EventAction::Add,
            EventAction::MaintenanceOn,
            EventAction::Remove
        ]
    );
    assert_eq!(nodes::delete_all(conn).unwrap(), 1);
    assert!(events::delete_all(conn).unwrap() >= 4);
}

#[test]
fn allocate_held_by_count_renew_release_and_reap() {
    let db = TestDb::new();
    let conn = &mut db.conn();
    for i in 0..3 {
        nodes::insert(
            conn,
            &spec(&format!("n{i}"), "p", &format!("52:54:00:00:01:0{i}")),
        )
        .unwrap();
    }
    assert!(
        nodes::allocate(conn, t(), "job", &json!({"pool": "p"}), 4, 60.0)
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        nodes::count_lockable(conn, &json!({"pool": "p"}), 4)
            .unwrap()
            .found,
        3
    );
    let got = nodes::allocate(conn, t(), "job", &json!({"pool": "p"}), 2, 60.0).unwrap();
    assert_eq!(
        got.iter().map(|n| n.name.as_str()).collect::<Vec<_>>(),
        ["n0", "n1"]
    );
    assert!(got.iter().all(|n| n.state == NodeState::Allocated));
    assert!(
        nodes::allocate(conn, t(), "job", &json!({"pool": "p"}), 1, 60.0)
            .unwrap()
            .is_empty(),
        "an owner that holds nodes gets none"
    );
    assert_eq!(nodes::held_by(conn, "job").unwrap().len(), 2);
    assert_eq!(nodes::renew(conn, t(), "job", 0.001).unwrap().len(), 2);
    std::thread::sleep(std::time::Duration::from_millis(20));
    let reaped = nodes::reap(conn, t(), None, NodeState::Dirty).unwrap();
    assert_eq!(reaped.len(), 2);
    assert!(
        reaped
            .iter()
            .all(|r| r.state == NodeState::Dirty && r.owner == "job")
    );
    nodes::allocate(conn, t(), "other", &json!({}), 1, 60.0).unwrap();
    let release = nodes::release(conn, t(), "other", None, NodeState::Ready, None).unwrap();
    assert_eq!(release.released.len(), 1);
    assert_eq!(release.released[0].name, "n2");
    assert!(!release.queued, "nobody waits");
    assert!(
        nodes::release(conn, t(), "other", None, NodeState::Ready, None)
            .unwrap()
            .released
            .is_empty()
    );
}

#[test]
fn matching_pools_counts_the_public_view_force_release_and_find_name() {
    let db = TestDb::new();
    let conn = &mut db.conn();
    for (i, pool) in ["p", "p", "q"].iter().enumerate() {
        let mut s = spec(&format!("n{i}"), pool, &format!("52:54:00:00:02:0{i}"));
        s.properties.insert("cpus".to_owned(), json!(8 * (i + 1)));
        s.driver_info
            .insert("ipmi_password".to_owned(), json!("hunter22"));
        nodes::insert(conn, &s).unwrap();
    }
    let m = nodes::matching(conn, &json!({"pool": "p", "min_cpus": 16})).unwrap();
    assert_eq!(
        (m.matching, m.in_pool, m.pools.clone()),
        (1, 2, vec!["p".to_owned(), "q".to_owned()])
    );
    let m = nodes::matching(conn, &json!({"pool": "zz"})).unwrap();
    assert_eq!((m.matching, m.in_pool), (0, 0));
    assert_eq!(nodes::pools(conn).unwrap(), ["p", "q"]);

    let n0 = nodes::allocate(conn, t(), "job", &json!({"pool": "p"}), 1, 60.0).unwrap();
    let counts = nodes::count_by_pool(conn, None, None).unwrap();
    assert!(
        counts.contains(&("p".to_owned(), NodeState::Allocated, 1)),
        "{counts:?}"
    );
    assert!(
        counts.contains(&("p".to_owned(), NodeState::Ready, 1)),
        "{counts:?}"
    );
    assert!(
        counts.contains(&("q".to_owned(), NodeState::Ready, 1)),
        "{counts:?}"
    );

    assert!(nodes::may_read_credentials(conn).unwrap());
    let public = nodes::list_public(conn, &json!({"min_cpus": 16}), None).unwrap();
    assert_eq!(
        public.iter().map(|n| n.name.as_str()).collect::<Vec<_>>(),
        ["n1", "n2"]
    );
    assert!(
        public
            .iter()
            .all(|n| n.driver_info["ipmi_password"] != "hunter22"),
        "the view masks credentials"
    );

    let released = nodes::force_release(conn, &n0[0], NodeState::Ready)
        .unwrap()
        .unwrap();
    assert_eq!(
        (released.state, released.owner.clone()),
        (NodeState::Ready, None)
    );
    assert!(
        nodes::force_release(conn, &released, NodeState::Ready)
            .unwrap()
            .is_none()
    );
    let filter = EventFilter {
        node_name: Some("n0".to_owned()),
        limit: 10,
        ..Default::default()
    };
    let last = events::list(conn, &filter).unwrap().pop().unwrap();
    assert_eq!(last.action, EventAction::ForceRelease);

    let id = n0[0].id;
    assert_eq!(
        nodes::find_name(conn, "n0").unwrap(),
        Some((id, "n0".to_owned()))
    );
    assert_eq!(
        nodes::find_name(conn, &id.to_string()).unwrap(),
        Some((id, "n0".to_owned()))
    );
    assert_eq!(nodes::find_name(conn, "nope").unwrap(), None);
}
