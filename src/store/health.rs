//! Keeping broken machines out of jobs: the quarantine rule (failed jobs in a row), the statements of
//! `health-check` (which nodes are due, taking a quarantined node for a check, recording the result) and
//! the usage statistics of `stats`. A node checked by `health-check` is taken like an allocation (its
//! owner is `health-check:NAME`), so no job can get it meanwhile, and given back by the statement that
//! records the result.

use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Double, Integer, Nullable, Text};

use super::nodes::Node;

/// A node that `quarantine` took out of service.
#[derive(Debug, Clone, QueryableByName)]
pub struct Quarantined {
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    #[diesel(sql_type = Text)]
    pub name: String,
    #[diesel(sql_type = Text)]
    pub reason: String,
}

/// Puts in maintenance (by `quarantine`) each of the nodes `ids` whose last `after` jobs, since an
/// operator last put it back in service or it last passed a health check, were all reported failed, by
/// two owners at least (one, when `after` is 1); writes a `quarantine` event each. Nodes another
/// transaction holds are left for the next failure. Call in the transaction of the failed release.
pub fn quarantine(
    conn: &mut PgConnection,
    ids: &[i64],
    after: u32,
) -> QueryResult<Vec<Quarantined>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    diesel::sql_query(include_str!("sql/quarantine.sql"))
        .bind::<Array<BigInt>, _>(ids)
        .bind::<Integer, _>(i32::try_from(after).unwrap_or(i32::MAX))
        .load(conn)
}

/// A node left held by a health check whose process died, now put in maintenance.
#[derive(Debug, Clone, QueryableByName)]
pub struct Unfinished {
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    #[diesel(sql_type = Text)]
    pub name: String,
}

/// Puts in maintenance (by `health_check`) every node still held by a health check whose lease ran out
/// (see `sql/health_reap.sql`); `health-check` runs it before it checks.
pub fn reap_unfinished(conn: &mut PgConnection) -> QueryResult<Vec<Unfinished>> {
    diesel::sql_query(include_str!("sql/health_reap.sql")).load(conn)
}

/// A node `health-check` may check now.
#[derive(Debug, Clone, QueryableByName)]
pub struct Due {
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    #[diesel(sql_type = Text)]
    pub name: String,
    /// Whether it is quarantined (checked only with --include-quarantined), else ready.
    #[diesel(sql_type = diesel::sql_types::Bool)]
    pub quarantined: bool,
}

/// Which nodes to check, lowest id first: ready nodes (and, with `quarantined`, nodes in maintenance by
/// quarantine) of `pool` (every pool when `None`) or named in `nodes` (names or ids; empty: all), that
/// are due: never checked, last checked more than `every_secs` ago, or `after_jobs` allocations or more
/// since (with neither set, every one is due).
pub fn due(
    conn: &mut PgConnection,
    pool: Option<&str>,
    nodes: &[String],
    quarantined: bool,
    every_secs: Option<f64>,
    after_jobs: Option<i64>,
) -> QueryResult<Vec<Due>> {
    diesel::sql_query(include_str!("sql/health_due.sql"))
        .bind::<Nullable<Text>, _>(pool)
        .bind::<Array<Text>, _>(nodes)
        .bind::<diesel::sql_types::Bool, _>(quarantined)
        .bind::<Nullable<Double>, _>(every_secs)
        .bind::<Nullable<BigInt>, _>(after_jobs)
        .load(conn)
}

/// Takes the quarantined node `id` for a health check: allocated to `owner` for `lease_secs`, like an
/// allocation, skipping it if another transaction holds it. `None` when it is no longer quarantined or
/// is held.
pub fn take_quarantined(
    conn: &mut PgConnection,
    id: i64,
    owner: &str,
    lease_secs: f64,
) -> QueryResult<Option<Node>> {
    diesel::sql_query(include_str!("sql/health_take_quarantined.sql"))
        .bind::<BigInt, _>(id)
        .bind::<Text, _>(owner)
        .bind::<Double, _>(lease_secs)
        .get_result(conn)
        .optional()
}

/// Records a health check of node `id` (held by `owner` for the check): passed puts it back to ready,
/// failed puts it in maintenance (by `health_check`) with `reason`; one `health_check` event. `None` when
/// the node is no longer held for the check (its lease ran out and it was reaped, or an operator took
/// it).
pub fn record_check(
    conn: &mut PgConnection,
    id: i64,
    owner: &str,
    failure: Option<&str>,
    seconds: f64,
) -> QueryResult<Option<Node>> {
    diesel::sql_query(include_str!("sql/health_record.sql"))
        .bind::<BigInt, _>(id)
        .bind::<Text, _>(owner)
        .bind::<Nullable<Text>, _>(failure)
        .bind::<Double, _>(seconds)
        .get_result(conn)
        .optional()
}

/// One row of `stats`: a pool (`node` `None`) or a node of it.
#[derive(Debug, Clone, QueryableByName)]
pub struct Usage {
    #[diesel(sql_type = Text)]
    pub pool: String,
    #[diesel(sql_type = Nullable<Text>)]
    pub node: Option<String>,
    #[diesel(sql_type = BigInt)]
    pub nodes: i64,
    #[diesel(sql_type = BigInt)]
    pub allocations: i64,
    /// Allocated node-seconds ÷ node-seconds of the period, in percent.
    #[diesel(sql_type = Double)]
    pub busy_pct: f64,
    #[diesel(sql_type = Nullable<Double>)]
    pub hold_p50_secs: Option<f64>,
    #[diesel(sql_type = Nullable<Double>)]
    pub hold_p95_secs: Option<f64>,
    #[diesel(sql_type = BigInt)]
    pub jobs_reported: i64,
    #[diesel(sql_type = BigInt)]
    pub jobs_failed: i64,
    #[diesel(sql_type = Nullable<Double>)]
    pub failure_pct: Option<f64>,
    #[diesel(sql_type = BigInt)]
    pub quarantines: i64,
    #[diesel(sql_type = BigInt)]
    pub checks_passed: i64,
    #[diesel(sql_type = BigInt)]
    pub checks_failed: i64,
    /// Waits in line (pools only; `None` for nodes or when nobody waited).
    #[diesel(sql_type = BigInt)]
    pub waits: i64,
    #[diesel(sql_type = Nullable<Double>)]
    pub wait_p50_secs: Option<f64>,
    #[diesel(sql_type = Nullable<Double>)]
    pub wait_p95_secs: Option<f64>,
    #[diesel(sql_type = Nullable<Double>)]
    pub wait_max_secs: Option<f64>,
}

/// The usage of the last `since_secs` seconds, per pool and per node (pool rows first in each pool),
/// from the events: one query.
pub fn stats(
    conn: &mut PgConnection,
    since_secs: f64,
    pool: Option<&str>,
) -> QueryResult<Vec<Usage>> {
    diesel::sql_query(include_str!("sql/stats.sql"))
        .bind::<Double, _>(since_secs)
        .bind::<Nullable<Text>, _>(pool)
        .load(conn)
}
