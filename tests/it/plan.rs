//! The allocate statement's plan does not depend on fresh statistics: even when the statistics say every
//! node is ready but nearly all are allocated, it reads a ready-nodes index (by pool, or by id for any
//! pool), never the primary key; and a request without filters plans with every filter test folded away.

use diesel::prelude::*;
use diesel::sql_types::Text;

use crate::support::TestDb;

#[derive(QueryableByName)]
struct PlanLine {
    #[diesel(sql_type = Text, column_name = "QUERY PLAN")]
    line: String,
}

#[test]
fn allocate_uses_the_ready_index_under_stale_statistics() {
    let db = TestDb::new();
    let mut conn = db.conn();
    diesel::sql_query("ALTER TABLE nodes SET (autovacuum_enabled = false)")
        .execute(&mut conn)
        .unwrap();
    diesel::sql_query("INSERT INTO nodes (name, driver) SELECT 'n' || i, 'fake' FROM generate_series(1, 20000) AS i")
        .execute(&mut conn)
        .unwrap();
    diesel::sql_query("ANALYZE nodes")
        .execute(&mut conn)
        .unwrap();
    diesel::sql_query(
        "UPDATE nodes SET state = 'allocated', owner = 'o' || id, allocated_at = now(), \
         lease_expires_at = now() + interval '1 hour' WHERE id <= 19800",
    )
    .execute(&mut conn)
    .unwrap();
    // With one pool holding every node, "the pool's ready nodes by id" and "all ready nodes by id" are
    // the same rows, so either ready index is a right answer; what must never happen is reading the
    // primary key or the table and filtering on state (what stale statistics used to tempt the planner to).
    let cases = [
        (r#"{"pool": "default"}"#, "nodes_ready_by_"),
        ("{}", "nodes_ready_by_id"),
        (
            r#"{"pool": "default", "arch": "x86_64", "min_cpus": 4, "traits": ["CUSTOM_A"]}"#,
            "nodes_ready_by_",
        ),
        (r#"{"arch": "x86_64", "min_cpus": 4}"#, "nodes_ready_by_id"),
    ];
    for (request, index) in cases {
        let text = plan(&mut conn, request);
        let candidates = text
            .split("CTE candidates")
            .nth(1)
            .and_then(|rest| rest.split("CTE granted").next())
            .unwrap_or_else(|| panic!("no candidates CTE: {text}"));
        assert!(
            candidates.contains(&format!("Index Scan using {index}")),
            "{request}: {text}"
        );
        assert!(
            !candidates.contains("nodes_pkey") && !candidates.contains("Seq Scan"),
            "{request}: the ready nodes are found by filtering: {text}"
        );
        if request.contains("arch") {
            // node_matches stays a call the planner cannot see into (see the migration for why).
            assert!(candidates.contains("node_matches("), "{request}: {text}");
        }
        if !request.contains("arch") {
            // An unfiltered request plans as before matching existed: `$2 - 'pool' = '{}'` folded to
            // true, so node_matches is never called.
            assert!(
                !candidates.contains("node_matches")
                    && !candidates.contains("-> '")
                    && !candidates.contains("->>"),
                "{request}: {text}"
            );
        }
    }
    // A small pool among many: its own index, not a walk over every pool's ready nodes.
    diesel::sql_query("UPDATE nodes SET pool = 'big' WHERE id > 100")
        .execute(&mut conn)
        .unwrap();
    diesel::sql_query("ANALYZE nodes")
        .execute(&mut conn)
        .unwrap();
    let text = plan(&mut conn, r#"{"pool": "default"}"#);
    assert!(
        text.contains("Index Scan using nodes_ready_by_pool"),
        "a small pool: {text}"
    );
}

/// The plan of allocate.sql for the request JSON `request`, as the server plans a one-shot statement
/// (with its parameters' values).
fn plan(conn: &mut PgConnection, request: &str) -> String {
    let sql: String = include_str!("../../src/store/sql/allocate.sql")
        .lines()
        .filter(|l| !l.trim_start().starts_with("--"))
        .collect::<Vec<_>>()
        .join("\n")
        .replace("$1", "'job-x'")
        .replace("$2", &format!("'{request}'::jsonb"))
        .replace("$3", "1::bigint")
        .replace("$4", "600::float8")
        .replace("$5", "'10000'");
    let plan: Vec<PlanLine> = diesel::sql_query(format!("EXPLAIN (COSTS OFF) {sql}"))
        .load(conn)
        .unwrap();
    plan.iter()
        .map(|l| l.line.as_str())
        .collect::<Vec<_>>()
        .join("\n")
}
