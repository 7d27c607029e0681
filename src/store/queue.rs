//! The `requests` table: the line of jobs waiting for nodes (`allocate --wait`). One function per query;
//! the order and the rule that decides who is served (the `queue` module above the store) are not here, only the statements
//! it runs. Everything that serves the line runs under [`lock`], so two processes never serve it at once;
//! nothing here waits for a node row (every lock on nodes is `SKIP LOCKED`).

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Bool, Double, Integer, Jsonb, Nullable, Text, Timestamptz};
use serde_json::Value;

use super::nodes::Node;
use crate::config::Timeouts;
use crate::domain::{EventAction, RequestState};
use crate::schema::{events, requests};

/// The lock space of molteniron's advisory locks (also in the migration 2026-12-01-000004); key 0 of
/// space + 1 is the line.
const LOCK_SPACE: i32 = 1_836_019_821;

/// The channel that wakes waiting processes when the line may have moved.
pub const CHANNEL: &str = "molteniron_queue";

/// A request joining the line.
#[derive(Debug, Clone)]
pub struct NewRequest<'a> {
    pub owner: &'a str,
    /// `pool::Filter::to_json`.
    pub request: &'a Value,
    pub count: i32,
    pub priority: i32,
    pub lease_secs: f64,
    pub stale_after_secs: f64,
    /// Who waits, for people: `user@host pid N`.
    pub waiter: &'a str,
}

/// The owner's request after [`enqueue`].
#[derive(Debug, Clone, QueryableByName)]
pub struct Enqueued {
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    #[diesel(sql_type = Jsonb)]
    pub request: Value,
    #[diesel(sql_type = Integer)]
    pub count: i32,
    #[diesel(sql_type = Integer)]
    pub priority: i32,
    #[diesel(sql_type = Text)]
    pub state: RequestState,
    /// Whether this call added it (false: the owner was already waiting, and keeps its place).
    #[diesel(sql_type = Bool)]
    pub inserted: bool,
}

/// One row of the line as it would be served now (see `sql/queue_line.sql`).
#[derive(Debug, Clone, QueryableByName)]
pub struct LineRow {
    /// The request's id; 0 for an allocate that is not in line.
    #[diesel(sql_type = BigInt)]
    pub request: i64,
    /// `None` for the allocate not in line.
    #[diesel(sql_type = Nullable<Text>)]
    pub owner: Option<String>,
    /// The pool it names (`None`: any pool).
    #[diesel(sql_type = Nullable<Text>)]
    pub pool: Option<String>,
    #[diesel(sql_type = BigInt)]
    pub count: i64,
    /// `None` for the allocate not in line.
    #[diesel(sql_type = Nullable<Double>)]
    pub lease_secs: Option<f64>,
    /// A ready node it could use (locked by this transaction), or `None`.
    #[diesel(sql_type = Nullable<BigInt>)]
    pub node: Option<i64>,
}

/// A waiting request as `molteniron queue` shows it.
#[derive(Debug, Clone, QueryableByName)]
pub struct Entry {
    #[diesel(sql_type = BigInt)]
    pub position: i64,
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    #[diesel(sql_type = Text)]
    pub owner: String,
    #[diesel(sql_type = Jsonb)]
    pub request: Value,
    #[diesel(sql_type = BigInt)]
    pub count: i64,
    #[diesel(sql_type = Integer)]
    pub priority: i32,
    #[diesel(sql_type = Timestamptz)]
    pub enqueued_at: DateTime<Utc>,
    #[diesel(sql_type = Text)]
    pub waiter: String,
    /// Nodes it could use that are ready now.
    #[diesel(sql_type = BigInt)]
    pub ready: i64,
    /// Nodes it could use that are allocated now.
    #[diesel(sql_type = BigInt)]
    pub allocated: i64,
}

/// A request's state seen by its waiting process at a heartbeat.
#[derive(Debug, Clone, Copy, QueryableByName)]
pub struct Beat {
    #[diesel(sql_type = Text)]
    pub state: RequestState,
    /// Waiting requests ahead of it.
    #[diesel(sql_type = BigInt)]
    pub ahead: i64,
}

/// A request that left the line.
#[derive(Debug, Clone, QueryableByName)]
pub struct Gone {
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    #[diesel(sql_type = Text)]
    pub owner: String,
}

/// What [`withdraw`] found.
#[derive(Debug, Clone, Copy, QueryableByName)]
pub struct Withdrawn {
    #[diesel(sql_type = Text)]
    pub state: RequestState,
    #[diesel(sql_type = Double)]
    pub waited_secs: f64,
}

#[derive(QueryableByName)]
struct Flag {
    #[diesel(sql_type = Bool)]
    flag: bool,
}

/// Takes the line's lock until the transaction ends: whoever serves the line (or decides an allocate
/// against it) holds it, so grants are decided one transaction at a time. Safe through a transaction
/// pooler (a transaction-scoped advisory lock). Taken only inside `db::transaction`, whose
/// `idle_in_transaction_session_timeout` ends the session of a process frozen while it holds the lock
/// (stopped, its VM paused, its network cut without a reset), which would otherwise stop the line for
/// everyone until its connection died.
pub fn lock(conn: &mut PgConnection) -> QueryResult<()> {
    diesel::sql_query("SELECT pg_advisory_xact_lock($1, 0)")
        .bind::<Integer, _>(LOCK_SPACE)
        .execute(conn)?;
    Ok(())
}

/// [`lock`] if nobody holds it; `false` (and no lock) when another transaction is serving the line.
pub fn try_lock(conn: &mut PgConnection) -> QueryResult<bool> {
    let row: Flag = diesel::sql_query("SELECT pg_try_advisory_xact_lock($1, 0) AS flag")
        .bind::<Integer, _>(LOCK_SPACE)
        .get_result(conn)?;
    Ok(row.flag)
}

/// Whether the table has any row (waiting or granted): when it has none, there is nothing to serve.
pub fn any(conn: &mut PgConnection) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(requests::table.select(requests::id))).get_result(conn)
}

/// Adds `new` to the back of the line, or, when its owner already has a request, returns that one
/// unchanged but for its heartbeat (a retried job step keeps its place). `None` when the owner holds
/// nodes (decided under the owner's lock, see `sql/queue_enqueue.sql`): an owner never waits while it
/// holds nodes.
pub fn enqueue(conn: &mut PgConnection, new: &NewRequest) -> QueryResult<Option<Enqueued>> {
    diesel::sql_query(include_str!("sql/queue_enqueue.sql"))
        .bind::<Text, _>(new.owner)
        .bind::<Jsonb, _>(new.request)
        .bind::<Integer, _>(new.count)
        .bind::<Integer, _>(new.priority)
        .bind::<Double, _>(new.lease_secs)
        .bind::<Double, _>(new.stale_after_secs)
        .bind::<Text, _>(new.waiter)
        .get_result(conn)
        .optional()
}

/// The line as it would be served now, with the ready nodes each request could use (locked until the
/// transaction ends), and `outside` (request, count, priority) placed where it would stand.
pub fn line(
    conn: &mut PgConnection,
    outside: Option<(&Value, i32, i32)>,
) -> QueryResult<Vec<LineRow>> {
    diesel::sql_query(include_str!("sql/queue_line.sql"))
        .bind::<Nullable<Jsonb>, _>(outside.map(|o| o.0))
        .bind::<Nullable<Integer>, _>(outside.map(|o| o.1))
        .bind::<Nullable<Integer>, _>(outside.map(|o| o.2))
        .load(conn)
}

/// Allocates the ready nodes `ids` (locked by this transaction) to `owner` for `lease_secs`: for the
/// waiting request `request` (which becomes granted), or for an allocate not in line (`None`). Returns
/// the nodes, or none when the owner holds nodes already or the request is no longer waiting.
pub fn grant(
    conn: &mut PgConnection,
    request: Option<i64>,
    owner: &str,
    ids: &[i64],
    lease_secs: f64,
) -> QueryResult<Vec<Node>> {
    diesel::sql_query(include_str!("sql/queue_grant.sql"))
        .bind::<Nullable<BigInt>, _>(request)
        .bind::<Text, _>(owner)
        .bind::<Array<BigInt>, _>(ids)
        .bind::<Double, _>(lease_secs)
        .load(conn)
}

/// Withdraws every request whose waiting process went silent (see `sql/queue_withdraw_stale.sql`).
pub fn withdraw_stale(conn: &mut PgConnection) -> QueryResult<Vec<Gone>> {
    diesel::sql_query(include_str!("sql/queue_withdraw_stale.sql")).load(conn)
}

/// Request `id`'s process is alive: its state and place, or `None` when the request is gone.
pub fn heartbeat(
    conn: &mut PgConnection,
    timeouts: Timeouts,
    id: i64,
) -> QueryResult<Option<Beat>> {
    diesel::sql_query(include_str!("sql/queue_heartbeat.sql"))
        .bind::<BigInt, _>(id)
        .bind::<Text, _>(timeouts.lock_ms())
        .get_result(conn)
        .optional()
}

/// Deletes request `id` once its waiting process has its nodes; `false` when it was not granted (gone,
/// or still waiting).
pub fn pick_up(conn: &mut PgConnection, id: i64) -> QueryResult<bool> {
    let deleted = diesel::delete(
        requests::table
            .find(id)
            .filter(requests::state.eq(RequestState::Granted)),
    )
    .execute(conn)?;
    Ok(deleted == 1)
}

/// Deletes `owner`'s granted request (its nodes stay allocated to the owner): another process of the same
/// owner took them, as a retried allocate does.
pub fn pick_up_owner(conn: &mut PgConnection, owner: &str) -> QueryResult<()> {
    diesel::delete(
        requests::table
            .filter(requests::owner.eq(owner))
            .filter(requests::state.eq(RequestState::Granted)),
    )
    .execute(conn)?;
    Ok(())
}

/// Withdraws request `id` for `reason`, writing its `withdraw` event if it was waiting; returns the state
/// it was in (`None`: already gone). A granted request's nodes stay allocated: the caller keeps or
/// releases them.
pub fn withdraw(conn: &mut PgConnection, id: i64, reason: &str) -> QueryResult<Option<Withdrawn>> {
    diesel::sql_query(include_str!("sql/queue_withdraw.sql"))
        .bind::<BigInt, _>(id)
        .bind::<Text, _>(reason)
        .get_result(conn)
        .optional()
}

/// `release OWNER`: withdraws `owner`'s request, waiting or granted, with its `withdraw` event (reason
/// release); the state it had, `None` when it had none. A granted request's nodes are released by the
/// release itself.
pub fn withdraw_owner(conn: &mut PgConnection, owner: &str) -> QueryResult<Option<Withdrawn>> {
    diesel::sql_query(include_str!("sql/queue_withdraw_owner.sql"))
        .bind::<Text, _>(owner)
        .get_result(conn)
        .optional()
}

/// Writes a queue event about `owner`'s request (enqueue, withdraw): no node.
pub fn record(
    conn: &mut PgConnection,
    owner: &str,
    action: EventAction,
    detail: Value,
) -> QueryResult<()> {
    diesel::insert_into(events::table)
        .values((
            events::node_id.eq(None::<i64>),
            events::node_name.eq(None::<String>),
            events::owner.eq(owner),
            events::action.eq(action),
            events::detail.eq(detail),
        ))
        .execute(conn)?;
    Ok(())
}

/// The reason request `id` was withdrawn, from its `withdraw` event (`None`: there is none, so it was
/// picked up, or never existed).
pub fn withdraw_reason(
    conn: &mut PgConnection,
    owner: &str,
    id: i64,
) -> QueryResult<Option<String>> {
    let detail: Option<Value> = events::table
        .filter(events::owner.eq(owner))
        .filter(events::action.eq(EventAction::Withdraw))
        .filter(diesel::dsl::sql::<Bool>("detail->'request' = ").bind::<Jsonb, _>(Value::from(id)))
        .order(events::id.desc())
        .select(events::detail)
        .first(conn)
        .optional()?;
    Ok(detail.map(|d| crate::domain::plain(&d["reason"])))
}

/// The waiting requests in the order they will be served, only those that may use `pool` when given.
/// With `public`, the nodes are read through the view `nodes_public` (for a role that may not read
/// credentials: matching needs the properties, which the view shows masked).
pub fn list(conn: &mut PgConnection, pool: Option<&str>, public: bool) -> QueryResult<Vec<Entry>> {
    let sql = include_str!("sql/queue_list.sql");
    let sql = if public {
        sql.replace("FROM nodes AS n", "FROM nodes_public AS n")
    } else {
        sql.to_owned()
    };
    diesel::sql_query(sql)
        .bind::<Nullable<Text>, _>(pool)
        .load(conn)
}

/// How many requests wait, per pool they name (`None`: any pool), sorted; none for a role that may not
/// read the line (granted before the queue existed, until `roles --apply` runs again).
pub fn waiting_by_pool(conn: &mut PgConnection) -> QueryResult<Vec<PoolWaiting>> {
    // Asked first, not found out from an error: a refused SELECT would abort the caller's transaction.
    let may: Vec<MayRead> =
        diesel::sql_query("SELECT has_table_privilege('requests', 'SELECT') AS may").load(conn)?;
    if !may.first().is_some_and(|m| m.may) {
        return Ok(Vec::new());
    }
    diesel::sql_query(
        "SELECT request->>'pool' AS pool, count(*) AS waiting FROM requests \
         WHERE state = 'waiting' AND heartbeat_at >= now() - make_interval(secs => stale_after_secs) \
         GROUP BY 1 ORDER BY 1",
    )
    .load(conn)
}

/// Whether the session may read the line.
#[derive(QueryableByName)]
struct MayRead {
    #[diesel(sql_type = diesel::sql_types::Bool)]
    may: bool,
}

/// One row of [`waiting_by_pool`].
#[derive(Debug, Clone, QueryableByName)]
pub struct PoolWaiting {
    #[diesel(sql_type = Nullable<Text>)]
    pub pool: Option<String>,
    #[diesel(sql_type = BigInt)]
    pub waiting: i64,
}

/// Wakes the waiting processes that listen (sent when the transaction commits).
pub fn notify(conn: &mut PgConnection) -> QueryResult<()> {
    diesel::sql_query("SELECT pg_notify($1, '')")
        .bind::<Text, _>(CHANNEL)
        .execute(conn)?;
    Ok(())
}

/// Listens for [`notify`] on this session (ineffective behind a transaction pooler: waiting also polls).
pub fn listen(conn: &mut PgConnection) -> QueryResult<()> {
    diesel::sql_query(format!("LISTEN {CHANNEL}")).execute(conn)?;
    Ok(())
}
