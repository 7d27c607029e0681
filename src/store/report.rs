//! The statements of `molteniron report` beyond those it shares with `metrics`, `queue` and `stats`: the
//! nodes out of service and the waits by request size. They read no credential column, so the readonly
//! role may run the report.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Double, Nullable, Text, Timestamptz};

use crate::domain::{MaintenanceBy, NodeState};

/// A node in maintenance or dirty.
#[derive(Debug, Clone, QueryableByName)]
pub struct OutOfService {
    #[diesel(sql_type = Text)]
    pub name: String,
    #[diesel(sql_type = Text)]
    pub pool: String,
    #[diesel(sql_type = Text)]
    pub state: NodeState,
    #[diesel(sql_type = Nullable<Text>)]
    pub maintenance_by: Option<MaintenanceBy>,
    #[diesel(sql_type = Nullable<Text>)]
    pub maintenance_reason: Option<String>,
    /// When the node last changed (for these nodes: since when they are out of service).
    #[diesel(sql_type = Timestamptz)]
    pub updated_at: DateTime<Utc>,
}

/// The waits in line of granted requests of one size.
#[derive(Debug, Clone, QueryableByName)]
pub struct WaitsBySize {
    /// Nodes the requests asked for.
    #[diesel(sql_type = BigInt)]
    pub size: i64,
    #[diesel(sql_type = BigInt)]
    pub requests: i64,
    #[diesel(sql_type = Double)]
    pub p50_secs: f64,
    #[diesel(sql_type = Double)]
    pub p95_secs: f64,
    #[diesel(sql_type = Double)]
    pub max_secs: f64,
}

/// Every node out of service, by pool and name (see `sql/report_out_of_service.sql`).
pub fn out_of_service(conn: &mut PgConnection) -> QueryResult<Vec<OutOfService>> {
    diesel::sql_query(include_str!("sql/report_out_of_service.sql")).load(conn)
}

/// The waits of the last `since_secs` seconds by request size, smallest first (see
/// `sql/report_waits.sql`).
pub fn waits_by_size(conn: &mut PgConnection, since_secs: f64) -> QueryResult<Vec<WaitsBySize>> {
    diesel::sql_query(include_str!("sql/report_waits.sql"))
        .bind::<Double, _>(since_secs)
        .load(conn)
}
