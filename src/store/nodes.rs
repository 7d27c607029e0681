//! The `nodes` table: the inventory and each node's state. The hot path (allocate, release, renew, reap)
//! is one statement each in `sql/*.sql`, run through `hot`: it locks, changes the rows and writes their
//! events rows together, so it needs no explicit transaction and a process killed at any point leaves all
//! of the change or none of it. The rest is diesel DSL, run by callers inside a transaction when it takes
//! more than one statement.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Bool, Jsonb, Nullable, Text, Timestamptz};
use serde_json::{Map, Value};

use super::events;
use super::hot::{self, Allocate, Reap, Renew, Statement};
use crate::config::Timeouts;
use crate::domain::{EventAction, HARDWARE_PROPERTIES, MaintenanceBy, NodeState, plain};
use crate::inventory::{Bmc, NodeSpec, bmc};
use crate::schema::nodes;

/// One row of `nodes`.
#[derive(Debug, Clone, Queryable, QueryableByName, Selectable)]
#[diesel(table_name = nodes, check_for_backend(diesel::pg::Pg))]
pub struct Node {
    pub id: i64,
    pub name: String,
    pub pool: String,
    pub driver: String,
    pub driver_info: Value,
    pub properties: Value,
    pub ports: Value,
    pub allocation_pool: Vec<String>,
    pub ironic_fields: Value,
    pub state: NodeState,
    pub owner: Option<String>,
    pub allocated_at: Option<DateTime<Utc>>,
    pub lease_expires_at: Option<DateTime<Utc>>,
    pub maintenance_reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Who put it in maintenance; `None` unless in maintenance.
    pub maintenance_by: Option<MaintenanceBy>,
}

impl Node {
    /// The node's BMC address and credentials, whatever its driver calls them.
    pub fn bmc(&self) -> Bmc {
        bmc(
            &self.driver,
            self.driver_info.as_object().unwrap_or(&Map::new()),
        )
    }

    /// The ports' MAC addresses, in port order.
    pub fn macs(&self) -> Vec<String> {
        self.ports
            .as_array()
            .map(|ports| {
                ports
                    .iter()
                    .filter_map(|p| p.get("address"))
                    .map(plain)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The first port's MAC address (empty when the node has no port): what DevStack and the original
    /// MoltenIron call the node's MAC.
    pub fn first_mac(&self) -> String {
        self.macs().into_iter().next().unwrap_or_default()
    }

    /// The values of [`HARDWARE_PROPERTIES`], as text (empty where the node lacks one).
    pub fn hardware(&self) -> [String; 4] {
        HARDWARE_PROPERTIES.map(|key| self.properties.get(key).map(plain).unwrap_or_default())
    }

    /// The state as people read it: `maintenance (reason)` for a node out of service.
    pub fn state_label(&self) -> String {
        match &self.maintenance_reason {
            Some(reason) => format!("{} ({reason})", self.state),
            None => self.state.to_string(),
        }
    }

    /// The node's inventory, as nodes.yaml holds it.
    pub fn spec(&self) -> NodeSpec {
        let object = |v: &Value| v.as_object().cloned().unwrap_or_default();
        NodeSpec {
            name: self.name.clone(),
            pool: self.pool.clone(),
            driver: self.driver.clone(),
            driver_info: object(&self.driver_info),
            properties: object(&self.properties),
            ports: self
                .ports
                .as_array()
                .map(|ports| ports.iter().map(object).collect())
                .unwrap_or_default(),
            allocation_pool: self.allocation_pool.clone(),
            ironic: object(&self.ironic_fields),
        }
    }
}

/// The inventory columns of a node, for insert and update.
#[derive(Debug, Insertable, AsChangeset)]
#[diesel(table_name = nodes)]
struct InventoryColumns {
    name: String,
    pool: String,
    driver: String,
    driver_info: Value,
    properties: Value,
    ports: Value,
    allocation_pool: Vec<String>,
    ironic_fields: Value,
}

impl From<&NodeSpec> for InventoryColumns {
    fn from(spec: &NodeSpec) -> Self {
        InventoryColumns {
            name: spec.name.clone(),
            pool: spec.pool.clone(),
            driver: spec.driver.clone(),
            driver_info: Value::Object(spec.driver_info.clone()),
            properties: Value::Object(spec.properties.clone()),
            ports: Value::Array(spec.ports.iter().cloned().map(Value::Object).collect()),
            allocation_pool: spec.allocation_pool.clone(),
            ironic_fields: Value::Object(spec.ironic.clone()),
        }
    }
}

/// A node given back by `release`.
#[derive(Debug, Clone, QueryableByName)]
pub struct Released {
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    #[diesel(sql_type = Text)]
    pub name: String,
    #[diesel(sql_type = Text)]
    pub pool: String,
    #[diesel(sql_type = Text)]
    pub state: NodeState,
    #[diesel(sql_type = Text)]
    pub owner: String,
}

/// A node taken back by `reap`, with the allocation it ended.
#[derive(Debug, Clone, QueryableByName)]
pub struct Reaped {
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    #[diesel(sql_type = Text)]
    pub name: String,
    #[diesel(sql_type = Text)]
    pub pool: String,
    #[diesel(sql_type = Text)]
    pub state: NodeState,
    #[diesel(sql_type = Text)]
    pub owner: String,
    #[diesel(sql_type = Timestamptz)]
    pub allocated_at: DateTime<Utc>,
    #[diesel(sql_type = Timestamptz)]
    pub lease_expires_at: DateTime<Utc>,
}

#[derive(QueryableByName)]
struct Conflict {
    #[diesel(sql_type = Text)]
    conflict: String,
}

#[derive(QueryableByName)]
struct Found {
    #[diesel(sql_type = BigInt)]
    found: i64,
}

/// What `count_lockable` saw.
#[derive(Debug, Clone, Copy, QueryableByName)]
pub struct Lockable {
    /// How many matching ready nodes could be locked (at most the count asked about).
    #[diesel(sql_type = BigInt)]
    pub found: i64,
    /// Whether any request waits in line (then the queue decides: the `queue` module above the store).
    #[diesel(sql_type = Bool)]
    pub waiting: bool,
}

/// One row of `sql/release.sql`: a released node, and whether the requests table has any row.
#[derive(QueryableByName)]
struct ReleaseRow {
    #[diesel(embed)]
    node: Released,
    #[diesel(sql_type = Bool)]
    queued: bool,
}

/// What `release` did.
#[derive(Debug, Clone, Default)]
pub struct Release {
    /// The nodes given back, lowest id first.
    pub released: Vec<Released>,
    /// Whether the requests table had a row (then the caller withdraws the owner's request and serves
    /// the line). Also true when nothing was released: the statement could not tell then.
    pub queued: bool,
}

/// How a request relates to the whole inventory (see `sql/matching.sql`).
#[derive(Debug, Clone, QueryableByName)]
pub struct Matching {
    /// Nodes that match the request, in any state.
    #[diesel(sql_type = BigInt)]
    pub matching: i64,
    /// Of those, the ones not in maintenance.
    #[diesel(sql_type = BigInt)]
    pub in_service: i64,
    /// Nodes in the request's pool (every node when it names none), in any state.
    #[diesel(sql_type = BigInt)]
    pub in_pool: i64,
    /// Every pool that has a node, sorted.
    #[diesel(sql_type = Array<Text>)]
    pub pools: Vec<String>,
}

diesel::define_sql_function! {
    /// The migration's `node_matches`: whether a node matches a request's hardware filters (not its
    /// pool, which callers test themselves).
    fn node_matches(
        driver: Text,
        properties: Jsonb,
        ironic: Jsonb,
        id: BigInt,
        name: Text,
        filter: Jsonb
    ) -> Bool;
}

/// Allocates `count` ready nodes matching `filter` (a `pool::Filter` as JSON) to `owner` for
/// `lease_secs`, all or nothing, lowest ids first, in one statement (see `sql/allocate.sql`). Returns the
/// nodes, or nothing when fewer than `count` could be locked or the owner already holds nodes. Never
/// waits for another allocator's rows and never shares a node.
pub fn allocate(
    conn: &mut PgConnection,
    timeouts: Timeouts,
    owner: &str,
    filter: &Value,
    count: i64,
    lease_secs: f64,
) -> QueryResult<Vec<Node>> {
    Statement(Allocate {
        owner,
        filter,
        count,
        lease_secs,
        lock_timeout_ms: &timeouts.lock_ms(),
    })
    .load(conn)
}

/// How many of the `count` lowest-id ready nodes matching `filter` could be locked right now (for the
/// "Not enough available nodes" message), and whether anyone waits in line.
pub fn count_lockable(
    conn: &mut PgConnection,
    filter: &Value,
    count: i64,
) -> QueryResult<Lockable> {
    diesel::sql_query(include_str!("sql/count_lockable.sql"))
        .bind::<Jsonb, _>(filter)
        .bind::<BigInt, _>(count)
        .get_result(conn)
}

/// How many of the nodes `owner` holds match `filter`.
pub fn count_held_matching(
    conn: &mut PgConnection,
    owner: &str,
    filter: &Value,
) -> QueryResult<i64> {
    let row: Found = diesel::sql_query(include_str!("sql/held_matching.sql"))
        .bind::<Text, _>(owner)
        .bind::<Jsonb, _>(filter)
        .get_result(conn)?;
    Ok(row.found)
}

/// How `filter` relates to the whole inventory: matching nodes in any state, nodes in its pool, and the
/// pools there are (to tell "not now" from "never").
pub fn matching(conn: &mut PgConnection, filter: &Value) -> QueryResult<Matching> {
    diesel::sql_query(include_str!("sql/matching.sql"))
        .bind::<Jsonb, _>(filter)
        .get_result(conn)
}

/// Describes the first piece of hardware (MAC, IPMI address, Redfish system, allocation-pool IP) that two
/// nodes claim, or `None` when every node's hardware is its own. Run after an inventory change, in its
/// transaction, to refuse the change.
pub fn shared_hardware(conn: &mut PgConnection) -> QueryResult<Option<String>> {
    let found: Option<Conflict> = diesel::sql_query(include_str!("sql/shared_hardware.sql"))
        .get_result(conn)
        .optional()?;
    Ok(found.map(|c| c.conflict))
}

/// Whether a node is called `name` (names only, never ids).
pub fn name_taken(conn: &mut PgConnection, name: &str) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        nodes::table.filter(nodes::name.eq(name)),
    ))
    .get_result(conn)
}

/// How a job says its nodes served it, recorded with each release event (`release --failed`).
#[derive(Debug, Clone, Copy, Default)]
pub struct JobResult<'a> {
    /// The job failed because of the machine (deploy timeout, BMC error), not because of its tests.
    pub failed: bool,
    pub reason: Option<&'a str>,
}

/// Releases every node `owner` holds, or only `node_id`, into `state`, writing one event each (with the
/// job's `result` when the job reported it: `None` for a release that is not a job's, such as one of
/// nodes a waiter never used); without `node_id` also withdraws the owner's request from the line. One
/// statement (`sql/release.sql`).
pub fn release(
    conn: &mut PgConnection,
    timeouts: Timeouts,
    owner: &str,
    node_id: Option<i64>,
    state: NodeState,
    result: Option<JobResult>,
) -> QueryResult<Release> {
    let rows: Vec<ReleaseRow> = Statement(hot::Release {
        owner,
        node_id,
        state: state.as_str(),
        result: result.map(|r| if r.failed { "failed" } else { "passed" }),
        reason: result.and_then(|r| r.reason),
        lock_timeout_ms: &timeouts.lock_ms(),
    })
    .load(conn)?;
    Ok(Release {
        // No row: nothing released, so the statement said nothing about the line; the caller looks.
        queued: rows.is_empty() || rows.iter().any(|r| r.queued),
        released: rows.into_iter().map(|r| r.node).collect(),
    })
}

/// Takes the allocated `node` (locked by the caller's transaction) from its owner into `state` for an
/// operator, writing a `force_release` event that names the previous owner (`maintenance --force`).
/// Returns the node as it is now, or `None` (and writes nothing) when it is not allocated.
pub fn force_release(
    conn: &mut PgConnection,
    node: &Node,
    state: NodeState,
) -> QueryResult<Option<Node>> {
    let Some(owner) = &node.owner else {
        return Ok(None);
    };
    let released = diesel::update(nodes::table.find(node.id).filter(nodes::owner.eq(owner)))
        .set((
            nodes::state.eq(state),
            nodes::owner.eq(None::<String>),
            nodes::allocated_at.eq(None::<DateTime<Utc>>),
            nodes::lease_expires_at.eq(None::<DateTime<Utc>>),
            nodes::updated_at.eq(diesel::dsl::now),
        ))
        .returning(Node::as_returning())
        .get_result(conn)
        .optional()?;
    if let Some(released) = &released {
        let detail = serde_json::json!({"previous_owner": owner, "state": state.as_str()});
        events::record(
            conn,
            released,
            Some(owner),
            EventAction::ForceRelease,
            detail,
        )?;
    }
    Ok(released)
}

/// Moves the lease of every node `owner` holds to now + `lease_secs`, writing one event each.
pub fn renew(
    conn: &mut PgConnection,
    timeouts: Timeouts,
    owner: &str,
    lease_secs: f64,
) -> QueryResult<Vec<Node>> {
    Statement(Renew {
        owner,
        lease_secs,
        lock_timeout_ms: &timeouts.lock_ms(),
    })
    .load(conn)
}

/// Releases into `state` every expired allocation (and, with `max_age_secs`, every older one), skipping
/// rows another transaction holds; one event each.
pub fn reap(
    conn: &mut PgConnection,
    timeouts: Timeouts,
    max_age_secs: Option<f64>,
    state: NodeState,
) -> QueryResult<Vec<Reaped>> {
    Statement(Reap {
        max_age_secs,
        state: state.as_str(),
        lock_timeout_ms: &timeouts.lock_ms(),
    })
    .load(conn)
}

/// The nodes `owner` holds, lowest id first.
pub fn held_by(conn: &mut PgConnection, owner: &str) -> QueryResult<Vec<Node>> {
    nodes::table
        .filter(nodes::owner.eq(owner))
        .order(nodes::id)
        .select(Node::as_select())
        .load(conn)
}

/// The node named `key`, else the node whose id is `key`. With `lock`, the row is locked FOR UPDATE until
/// the transaction ends.
pub fn find(conn: &mut PgConnection, key: &str, lock: bool) -> QueryResult<Option<Node>> {
    let by_name = nodes::table
        .filter(nodes::name.eq(key))
        .select(Node::as_select());
    let found = if lock {
        by_name.for_update().first(conn)
    } else {
        by_name.first(conn)
    }
    .optional()?;
    match (found, key.parse::<i64>()) {
        (Some(node), _) => Ok(Some(node)),
        (None, Ok(id)) => {
            let by_id = nodes::table.find(id).select(Node::as_select());
            if lock {
                by_id.for_update().first(conn)
            } else {
                by_id.first(conn)
            }
            .optional()
        }
        (None, Err(_)) => Ok(None),
    }
}

/// Every node matching `filter` (a `pool::Filter` as JSON; `{}` is every node), optionally only those
/// `owner` holds, lowest id first.
pub fn list(
    conn: &mut PgConnection,
    filter: &Value,
    owner: Option<&str>,
) -> QueryResult<Vec<Node>> {
    let mut query = nodes::table
        .select(Node::as_select())
        .order(nodes::id)
        .into_boxed();
    let mut hardware = filter.clone();
    if let Some(pool) = hardware.as_object_mut().and_then(|f| f.remove("pool")) {
        query = query.filter(nodes::pool.eq(pool.as_str().unwrap_or_default().to_owned()));
    }
    if hardware.as_object().is_some_and(|f| !f.is_empty()) {
        query = query.filter(node_matches(
            nodes::driver,
            nodes::properties,
            nodes::ironic_fields,
            nodes::id,
            nodes::name,
            hardware,
        ));
    }
    if let Some(owner) = owner {
        query = query.filter(nodes::owner.eq(owner.to_owned()));
    }
    query.load(conn)
}

/// How many nodes of each pool are in each state, optionally of one pool and/or one owner: one row per
/// pool and state that has nodes, by pool. Reads only columns every role of `molteniron roles` may read.
pub fn count_by_pool(
    conn: &mut PgConnection,
    pool: Option<&str>,
    owner: Option<&str>,
) -> QueryResult<Vec<(String, NodeState, i64)>> {
    let mut query = nodes::table
        .group_by((nodes::pool, nodes::state))
        .select((nodes::pool, nodes::state, diesel::dsl::count_star()))
        .order((nodes::pool, nodes::state))
        .into_boxed();
    if let Some(pool) = pool {
        query = query.filter(nodes::pool.eq(pool.to_owned()));
    }
    if let Some(owner) = owner {
        query = query.filter(nodes::owner.eq(owner.to_owned()));
    }
    query.load(conn)
}

/// Every pool that has a node, by name.
pub fn pools(conn: &mut PgConnection) -> QueryResult<Vec<String>> {
    nodes::table
        .select(nodes::pool)
        .distinct()
        .order(nodes::pool)
        .load(conn)
}

/// [`list`] through the view nodes_public, which masks every credential in SQL: for a session that may
/// not read them (see [`may_read_credentials`]), such as the read-only role of `molteniron roles`.
pub fn list_public(
    conn: &mut PgConnection,
    filter: &Value,
    owner: Option<&str>,
) -> QueryResult<Vec<Node>> {
    diesel::sql_query(include_str!("sql/list_public.sql"))
        .bind::<Jsonb, _>(filter)
        .bind::<Nullable<Text>, _>(owner)
        .load(conn)
}

/// Whether the session may read every column of nodes, the credentials in driver_info, properties and
/// ironic_fields included (the read-only role may read only the others, and the view nodes_public).
pub fn may_read_credentials(conn: &mut PgConnection) -> QueryResult<bool> {
    diesel::select(diesel::dsl::sql::<Bool>(
        "has_column_privilege('nodes', 'driver_info', 'SELECT')
         AND has_column_privilege('nodes', 'properties', 'SELECT')
         AND has_column_privilege('nodes', 'ironic_fields', 'SELECT')",
    ))
    .get_result(conn)
}

/// The id and name of the node named `key`, else of the node whose id is `key`: [`find`] reading only
/// the columns every role of `molteniron roles` may read.
pub fn find_name(conn: &mut PgConnection, key: &str) -> QueryResult<Option<(i64, String)>> {
    let found = nodes::table
        .filter(nodes::name.eq(key))
        .select((nodes::id, nodes::name))
        .first(conn)
        .optional()?;
    match (found, key.parse::<i64>()) {
        (Some(node), _) => Ok(Some(node)),
        (None, Ok(id)) => nodes::table
            .find(id)
            .select((nodes::id, nodes::name))
            .first(conn)
            .optional(),
        (None, Err(_)) => Ok(None),
    }
}

/// Inserts a ready node and its `add` event; returns `None` (and writes nothing) if the name exists.
pub fn insert(conn: &mut PgConnection, spec: &NodeSpec) -> QueryResult<Option<Node>> {
    let inserted = diesel::insert_into(nodes::table)
        .values(InventoryColumns::from(spec))
        .on_conflict(nodes::name)
        .do_nothing()
        .returning(Node::as_returning())
        .get_result(conn)
        .optional()?;
    if let Some(node) = &inserted {
        let detail = serde_json::json!({"pool": node.pool, "driver": node.driver});
        events::record(conn, node, None, EventAction::Add, detail)?;
    }
    Ok(inserted)
}

/// Replaces the inventory columns of node `id` (never its state or owner) and writes an event with
/// `action` and `detail`.
pub fn update_inventory(
    conn: &mut PgConnection,
    id: i64,
    spec: &NodeSpec,
    action: EventAction,
    detail: Value,
) -> QueryResult<Node> {
    let node = diesel::update(nodes::table.find(id))
        .set((
            InventoryColumns::from(spec),
            nodes::updated_at.eq(diesel::dsl::now),
        ))
        .returning(Node::as_returning())
        .get_result(conn)?;
    events::record(conn, &node, None, action, detail)?;
    Ok(node)
}

/// Moves node `id` to `state` (setting the maintenance reason when given) and writes an event with
/// `action` and `detail`. For nodes that are not allocated: callers release an allocated node first, and
/// the table's CHECK constraints refuse an owner outside `allocated` if one does not.
pub fn set_state(
    conn: &mut PgConnection,
    id: i64,
    state: NodeState,
    maintenance: Option<(&str, MaintenanceBy)>,
    action: EventAction,
    detail: Value,
) -> QueryResult<Node> {
    let node = diesel::update(nodes::table.find(id))
        .set((
            nodes::state.eq(state),
            nodes::maintenance_reason.eq(maintenance.map(|m| m.0)),
            nodes::maintenance_by.eq(maintenance.map(|m| m.1)),
            nodes::updated_at.eq(diesel::dsl::now),
        ))
        .returning(Node::as_returning())
        .get_result(conn)?;
    events::record(conn, &node, None, action, detail)?;
    Ok(node)
}

/// Deletes node `id` and writes its `remove` event (events outlive their node).
pub fn delete(conn: &mut PgConnection, node: &Node) -> QueryResult<()> {
    diesel::delete(nodes::table.find(node.id)).execute(conn)?;
    let detail = serde_json::json!({"state": node.state.as_str()});
    events::record(
        conn,
        node,
        node.owner.as_deref(),
        EventAction::Remove,
        detail,
    )
}

/// Deletes every node (their events stay until [`events::delete_all`]); returns how many there were.
pub fn delete_all(conn: &mut PgConnection) -> QueryResult<usize> {
    diesel::delete(nodes::table).execute(conn)
}
