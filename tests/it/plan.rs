//! The allocate statement's plan does not depend on fresh statistics: even when the statistics say every
//! node is ready but nearly all are allocated, it reads the ready-nodes index, never the primary key.

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
    let sql: String = include_str!("../../src/store/sql/allocate.sql")
        .lines()
        .filter(|l| !l.trim_start().starts_with("--"))
        .collect::<Vec<_>>()
        .join("\n")
        .replace("$1", "'job-x'")
        .replace("$2", "'default'")
        .replace("$3", "1::bigint")
        .replace("$4", "600::float8");
    let plan: Vec<PlanLine> = diesel::sql_query(format!("EXPLAIN (COSTS OFF) {sql}"))
        .load(&mut conn)
        .unwrap();
    let plan: Vec<&str> = plan.iter().map(|l| l.line.as_str()).collect();
    let text = plan.join("\n");
    assert!(
        text.contains("Index Scan using nodes_ready_by_pool on nodes"),
        "{text}"
    );
    assert!(
        !text.contains("Filter: ((state = 'ready'"),
        "the ready nodes are found by filtering: {text}"
    );
}
