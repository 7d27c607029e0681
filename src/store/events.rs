//! The `events` table: an append-only log with one row per state change and inventory edit, kept after
//! its node is removed. The hot statements write their own rows (see `nodes`); everything else calls
//! [`record`] in the transaction that made the change. Nobody passes the actor: the column's default
//! computes it in the database from the session (its role and application name), so the hot statements
//! carry no extra bind and a role that may insert only the other columns cannot choose it.

use chrono::{DateTime, Utc};
use diesel::pg::data_types::PgInterval;
use diesel::prelude::*;
use diesel::sql_types::Timestamptz;
use serde_json::Value;

use super::nodes::Node;
use crate::domain::EventAction;
use crate::schema::events;

/// One row of `events`.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = events, check_for_backend(diesel::pg::Pg))]
pub struct Event {
    pub id: i64,
    pub at: DateTime<Utc>,
    /// `None` for queue events (enqueue, withdraw), which are about a request.
    pub node_id: Option<i64>,
    pub node_name: Option<String>,
    pub owner: Option<String>,
    pub action: EventAction,
    pub detail: Value,
    /// Who made the change: the database role, then the client (`USER@HOST` for molteniron, else the
    /// session's application name). `None` for events written before it was recorded.
    pub actor: Option<String>,
}

/// Which events `history` lists.
#[derive(Debug, Default)]
pub struct EventFilter {
    pub node_id: Option<i64>,
    pub node_name: Option<String>,
    pub owner: Option<String>,
    pub since_micros: Option<i64>,
    pub limit: i64,
}

/// Appends one events row about `node`.
pub fn record(
    conn: &mut PgConnection,
    node: &Node,
    owner: Option<&str>,
    action: EventAction,
    detail: Value,
) -> QueryResult<()> {
    diesel::insert_into(events::table)
        .values((
            events::node_id.eq(node.id),
            events::node_name.eq(&node.name),
            events::owner.eq(owner),
            events::action.eq(action),
            events::detail.eq(detail),
        ))
        .execute(conn)?;
    Ok(())
}

/// The newest `filter.limit` events that match, oldest first.
pub fn list(conn: &mut PgConnection, filter: &EventFilter) -> QueryResult<Vec<Event>> {
    let mut query = events::table
        .select(Event::as_select())
        .order(events::id.desc())
        .limit(filter.limit)
        .into_boxed();
    match (filter.node_id, &filter.node_name) {
        (Some(id), Some(name)) => {
            query = query.filter(
                events::node_id
                    .eq(id)
                    .or(events::node_name.eq(name.clone())),
            );
        }
        (Some(id), None) => query = query.filter(events::node_id.eq(id)),
        (None, Some(name)) => query = query.filter(events::node_name.eq(name.clone())),
        (None, None) => {}
    }
    if let Some(owner) = &filter.owner {
        query = query.filter(events::owner.eq(owner.clone()));
    }
    if let Some(micros) = filter.since_micros {
        let since =
            diesel::dsl::now.into_sql::<Timestamptz>() - PgInterval::from_microseconds(micros);
        query = query.filter(events::at.ge(since));
    }
    let mut events = query.load(conn)?;
    events.reverse();
    Ok(events)
}

/// The events about node `node_id` whose transaction time is `since` or later and whose action is not one
/// of `except`, oldest first, at most `limit` (`renew --keep-alive` reads how a hold ended).
pub fn of_node_since(
    conn: &mut PgConnection,
    node_id: i64,
    since: DateTime<Utc>,
    except: &[EventAction],
    limit: i64,
) -> QueryResult<Vec<Event>> {
    events::table
        .filter(events::node_id.eq(node_id))
        .filter(events::at.ge(since))
        .filter(events::action.ne_all(except))
        .order(events::id)
        .limit(limit)
        .select(Event::as_select())
        .load(conn)
}

/// Deletes every event (delete_db).
pub fn delete_all(conn: &mut PgConnection) -> QueryResult<usize> {
    diesel::delete(events::table).execute(conn)
}
