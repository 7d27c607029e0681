//! All SQL lives here, one file per table (entity): `nodes`, `events` and `queue` (the `requests` table), `health`,
//! `metrics` and `report` for those capabilities' statements, and `roles` for the script of
//! `molteniron roles`. One function per query, named entity + verb (`nodes::allocate`, `events::list`);
//! callers decide what to print, and nothing here prints. Hot statements go through `hot`, the one
//! mechanism that binds `sql/*.sql` placeholders.

pub mod doctor;
pub mod events;
pub mod health;
mod hot;
pub mod metrics;
pub mod nodes;
pub mod queue;
pub mod report;
mod roles;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::Timestamptz;

pub use self::roles::{Holders, RoleNames, apply_roles, holders, roles_script};

/// The database server's clock (the one every lease is measured against).
pub fn server_now(conn: &mut PgConnection) -> QueryResult<DateTime<Utc>> {
    diesel::select(diesel::dsl::now.into_sql::<Timestamptz>()).get_result(conn)
}
