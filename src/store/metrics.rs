//! The statement of `molteniron metrics`: the pool as numbers, per pool, for Prometheus. It only reads,
//! in one statement (so every number is of the same instant), and reads only what the readonly role of
//! `molteniron roles` may read: no credential column.

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Double, Jsonb, Nullable, Text};
use serde_json::Value;

use crate::domain::NodeState;

/// One pool's numbers. `pool` is `None` only for the requests waiting for any pool (whose other numbers
/// are zero).
#[derive(Debug, Clone, QueryableByName)]
pub struct PoolMetrics {
    #[diesel(sql_type = Nullable<Text>)]
    pub pool: Option<String>,
    /// `{state: nodes}` for the states the pool has nodes in; see [`PoolMetrics::nodes`].
    #[diesel(sql_type = Jsonb)]
    states: Value,
    /// Allocated nodes whose lease has run out and that reap has not released yet.
    #[diesel(sql_type = BigInt)]
    pub expired_leases: i64,
    /// How long the longest-held allocation has been held, 0 when nothing is allocated.
    #[diesel(sql_type = Double)]
    pub oldest_allocation_age_seconds: f64,
    /// Nodes in maintenance because failed jobs quarantined them (`maintenance_by = 'quarantine'`).
    #[diesel(sql_type = BigInt)]
    pub quarantined_nodes: i64,
    /// Allocate events ever (health checks' own allocations included).
    #[diesel(sql_type = BigInt)]
    pub allocations: i64,
    /// Reap events ever.
    #[diesel(sql_type = BigInt)]
    pub reaped: i64,
    /// Quarantine events ever.
    #[diesel(sql_type = BigInt)]
    pub quarantines: i64,
    /// Requests waiting in line for this pool (for any pool, on the `pool: None` row).
    #[diesel(sql_type = BigInt)]
    pub waiting_requests: i64,
    /// How long the longest-waiting of them has waited, 0 when none waits.
    #[diesel(sql_type = Double)]
    pub oldest_waiting_request_age_seconds: f64,
}

impl PoolMetrics {
    /// How many of the pool's nodes are in `state` (0 when none is).
    pub fn nodes(&self, state: NodeState) -> i64 {
        self.states
            .get(state.as_str())
            .and_then(Value::as_i64)
            .unwrap_or(0)
    }
}

/// Every pool's numbers, ordered by pool (the any-pool row first), in one statement. The events are
/// counted in full each time: a counter only grows, except when `delete_db` empties the events.
pub fn pools(conn: &mut PgConnection) -> QueryResult<Vec<PoolMetrics>> {
    diesel::sql_query(include_str!("sql/metrics.sql")).load(conn)
}
