//! Allocation policy: how a request for nodes is decided, as an [`Outcome`] the caller maps to an exit
//! code (and, later, to "wait in line"). The one SQL statement that takes the nodes is
//! `store::nodes::allocate`; this module decides what its answer means.
//!
//! Guarantees, each proven by a test in tests/it: all or nothing
//! (`lease::not_enough_nodes_is_exit_3_and_allocates_nothing`), no node to two owners (`concurrency::*`),
//! and a retry by an owner with the same count and pool returns what it already holds
//! (`lease::allocate_retry_returns_what_the_owner_holds_and_other_requests_conflict`).

use std::collections::BTreeSet;

use diesel::{PgConnection, QueryResult};

use crate::store::nodes::{self, Node};

/// How often the request is tried again when nodes were freed between an attempt and the count of what
/// could be locked.
const ATTEMPTS: usize = 3;

/// What a job asks for.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub owner: &'a str,
    pub pool: &'a str,
    pub count: i64,
    pub lease_secs: f64,
}

/// How a request was decided.
#[derive(Debug)]
pub enum Outcome {
    /// These nodes were allocated to the owner just now.
    Granted(Vec<Node>),
    /// The owner already held exactly this request (same count and pool): a retried job gets them back.
    AlreadyHeld(Vec<Node>),
    /// The owner holds other nodes; nothing was allocated.
    Conflict { held: Vec<Node> },
    /// Fewer than `requested` ready nodes could be locked; nothing was allocated.
    NotEnough { found: i64, requested: i64 },
}

impl Outcome {
    /// For [`Outcome::Conflict`]: the pools the owner's nodes belong to, comma-separated.
    pub fn held_pools(held: &[Node]) -> String {
        let pools: BTreeSet<&str> = held.iter().map(|n| n.pool.as_str()).collect();
        pools.into_iter().collect::<Vec<_>>().join(",")
    }
}

/// Decides `request`: allocates when enough ready nodes can be locked; otherwise says whether the owner
/// already holds this request, holds something else, or there are not enough. Nodes freed between the
/// attempt and the count are tried again (up to [`ATTEMPTS`] times). Never waits for a row another
/// allocator holds.
pub fn take(conn: &mut PgConnection, request: &Request) -> QueryResult<Outcome> {
    let Request {
        owner,
        pool,
        count,
        lease_secs,
    } = *request;
    let mut found = 0;
    for _ in 0..ATTEMPTS {
        let granted = nodes::allocate(conn, owner, pool, count, lease_secs)?;
        if !granted.is_empty() {
            return Ok(Outcome::Granted(granted));
        }
        let held = nodes::held_by(conn, owner)?;
        if !held.is_empty() {
            if held.len() as i64 == count && held.iter().all(|n| n.pool == pool) {
                return Ok(Outcome::AlreadyHeld(held));
            }
            return Ok(Outcome::Conflict { held });
        }
        found = nodes::count_lockable(conn, pool, count)?;
        if found < count {
            break;
        }
    }
    Ok(Outcome::NotEnough {
        found,
        requested: count,
    })
}
