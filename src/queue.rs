//! The queue's rule: who is served next, and serving the line, with no daemon. Any molteniron process
//! that frees nodes, joins or polls the line runs [`serve`] in a short transaction under the line's lock:
//! it walks the waiting requests in order (priority, highest first; then arrival) and grants each one
//! whose nodes no request ahead of it wants, allocating the nodes to its owner on the waiter's behalf; the
//! waiter only has to notice (NOTIFY, or its next poll). docs/design.md ("The queue") has the states and
//! what happens when a process dies at each step.
//!
//! Guarantees, each proven by a test in tests/it/queue.rs: arrival order within a priority
//! (`queue::ten_waiters_are_served_in_arrival_order`), priority first
//! (`queue::a_higher_priority_is_served_first_and_arrival_order_within_it`), no starvation of a big request
//! (`queue::a_four_node_request_is_not_starved_by_a_stream_of_one_node_requests`), a request that cannot use
//! a node does not hold it back (`queue::a_request_for_another_shape_does_not_block_the_line`), and an
//! allocate that does not wait cannot take nodes held back for the line
//! (`queue::an_immediate_allocate_cannot_take_nodes_held_back_for_the_line`).

use std::collections::HashSet;

use diesel::result::Error as DbError;
use diesel::{PgConnection, QueryResult};
use serde_json::Value;

use crate::config::Timeouts;
use crate::db;
use crate::store::nodes::Node;
use crate::store::queue::{self, Gone, LineRow};

/// A request the walk grants: its id (0: the allocate not in line) and the nodes it takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub request: i64,
    pub nodes: Vec<i64>,
}

/// The walk (a pure function of the line): in order, a request takes the lowest-id nodes it can use that
/// no request ahead of it took or holds back; one that cannot get all it asks for yet holds back every
/// node it could use, so requests behind it cannot take them (head-of-line reservation: a big request is
/// never starved by small ones). Nodes a request cannot use are not held back for it. `line` is
/// `store::queue::line`'s rows: requests in order, each with its usable ready nodes, lowest id first.
pub fn plan(line: &[LineRow]) -> Vec<Grant> {
    let mut taken: HashSet<i64> = HashSet::new();
    let mut grants = Vec::new();
    for rows in line.chunk_by(|a, b| a.request == b.request) {
        let count = usize::try_from(rows[0].count).unwrap_or(usize::MAX);
        let free: Vec<i64> = rows
            .iter()
            .filter_map(|r| r.node)
            .filter(|n| !taken.contains(n))
            .collect();
        if free.len() >= count {
            let nodes = free[..count].to_vec();
            taken.extend(&nodes);
            grants.push(Grant {
                request: rows[0].request,
                nodes,
            });
        } else {
            taken.extend(free);
        }
    }
    grants
}

/// What one [`serve`] did.
#[derive(Debug, Default)]
pub struct Served {
    /// Requests granted.
    pub granted: usize,
    /// Requests withdrawn because their waiting process went silent.
    pub withdrawn: Vec<Gone>,
    /// Whether this call served the line (false: it was empty, or another process was serving it).
    pub ran: bool,
}

/// Serves the line in its own transaction: withdraws requests whose waiter went silent, then grants, in
/// order, every request the walk ([`plan`]) can satisfy now, and wakes the waiters (NOTIFY) when anything
/// changed. With `patient` false it gives up at once when another process is serving the line (that one
/// will do the same work); true waits its turn (after freeing nodes, so that they are handed on). Costs
/// one cheap statement when nobody waits.
pub fn serve(conn: &mut PgConnection, timeouts: Timeouts, patient: bool) -> QueryResult<Served> {
    if !queue::any(conn)? {
        return Ok(Served::default());
    }
    db::transaction(conn, timeouts, |conn| {
        if patient {
            queue::lock(conn)?;
        } else if !queue::try_lock(conn)? {
            return Ok(Served::default());
        }
        let withdrawn = queue::withdraw_stale(conn)?;
        let line = queue::line(conn, None)?;
        let granted = grant_all(conn, &line, &plan(&line))?;
        if granted > 0 || !withdrawn.is_empty() {
            queue::notify(conn)?;
        }
        Ok(Served {
            granted,
            withdrawn,
            ran: true,
        })
    })
}

/// Grants every planned request that is in line (not the outside allocate, id 0); returns how many.
fn grant_all(conn: &mut PgConnection, line: &[LineRow], grants: &[Grant]) -> QueryResult<usize> {
    let mut granted = 0;
    for grant in grants.iter().filter(|g| g.request != 0) {
        let Some(row) = line.iter().find(|r| r.request == grant.request) else {
            continue;
        };
        let (Some(owner), Some(lease_secs)) = (&row.owner, row.lease_secs) else {
            continue;
        };
        let nodes = queue::grant(conn, Some(grant.request), owner, &grant.nodes, lease_secs)?;
        check_all(&nodes, grant)?;
        granted += usize::from(!nodes.is_empty());
    }
    Ok(granted)
}

/// A grant gives all its nodes or none (none: the owner holds nodes already); anything else would break
/// all-or-nothing, so it rolls the transaction back.
fn check_all(nodes: &[Node], grant: &Grant) -> QueryResult<()> {
    if nodes.is_empty() || nodes.len() == grant.nodes.len() {
        return Ok(());
    }
    Err(DbError::QueryBuilderError(
        format!(
            "request {}: {} of {} planned nodes could be granted",
            grant.request,
            nodes.len(),
            grant.nodes.len()
        )
        .into(),
    ))
}

/// An allocate that does not wait, decided against the line (while requests wait).
#[derive(Debug)]
pub enum InLine {
    /// Its nodes: none of them was wanted by a request ahead of it.
    Granted(Vec<Node>),
    /// It cannot be granted now; `ahead` requests that may use the same pool wait ahead of it.
    Refused { ahead: i64 },
    /// Its owner already waits in line (at `position`, 1 first): the line decides for it.
    OwnerWaiting { position: i64 },
}

/// Decides an allocate of `count` nodes matching `request` (with `priority`) for `owner` that is not in
/// line, under the line's lock: it stands behind every waiting request of its priority or higher and gets
/// nodes only if the walk gives them to it. Serves the line on the way (grants due to requests ahead are
/// made too).
pub fn take_now(
    conn: &mut PgConnection,
    timeouts: Timeouts,
    owner: &str,
    request: &Value,
    count: i64,
    priority: i32,
    lease_secs: f64,
) -> QueryResult<InLine> {
    let count32 = i32::try_from(count).unwrap_or(i32::MAX);
    db::transaction(conn, timeouts, |conn| {
        queue::lock(conn)?;
        let withdrawn = queue::withdraw_stale(conn)?;
        let line = queue::line(conn, Some((request, count32, priority)))?;
        let mut seen = HashSet::new();
        let order: Vec<&LineRow> = line.iter().filter(|r| seen.insert(r.request)).collect();
        if let Some(position) = order.iter().position(|r| r.owner.as_deref() == Some(owner)) {
            if !withdrawn.is_empty() {
                queue::notify(conn)?;
            }
            return Ok(InLine::OwnerWaiting {
                position: position as i64 + 1,
            });
        }
        let grants = plan(&line);
        let granted = grant_all(conn, &line, &grants)?;
        if granted > 0 || !withdrawn.is_empty() {
            queue::notify(conn)?;
        }
        if let Some(grant) = grants.iter().find(|g| g.request == 0) {
            let nodes = queue::grant(conn, None, owner, &grant.nodes, lease_secs)?;
            check_all(&nodes, grant)?;
            if !nodes.is_empty() {
                return Ok(InLine::Granted(nodes));
            }
        }
        let pool = request.get("pool").and_then(Value::as_str);
        let ahead = order
            .iter()
            .take_while(|r| r.request != 0)
            .filter(|r| r.pool.is_none() || pool.is_none() || r.pool.as_deref() == pool)
            .count() as i64;
        Ok(InLine::Refused { ahead })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(requests: &[(i64, i64, &[i64])]) -> Vec<LineRow> {
        let mut rows = Vec::new();
        for &(request, count, nodes) in requests {
            let row = |node| LineRow {
                request,
                owner: Some(format!("r{request}")),
                pool: None,
                count,
                lease_secs: Some(60.0),
                node,
            };
            if nodes.is_empty() {
                rows.push(row(None));
            }
            rows.extend(nodes.iter().map(|&n| row(Some(n))));
        }
        rows
    }

    #[test]
    fn requests_are_granted_in_order_with_the_lowest_ids() {
        let grants = plan(&line(&[(1, 1, &[10, 11, 12]), (2, 2, &[10, 11, 12])]));
        assert_eq!(
            grants,
            vec![
                Grant {
                    request: 1,
                    nodes: vec![10]
                },
                Grant {
                    request: 2,
                    nodes: vec![11, 12]
                }
            ]
        );
    }

    #[test]
    fn a_request_that_cannot_be_granted_holds_back_what_it_could_use() {
        // 4 wanted, 3 free: the 1-node request behind gets nothing of those three, but may take node 20,
        // which the big request cannot use.
        let grants = plan(&line(&[(1, 4, &[10, 11, 12]), (2, 1, &[10, 11, 12, 20])]));
        assert_eq!(
            grants,
            vec![Grant {
                request: 2,
                nodes: vec![20]
            }]
        );
    }

    #[test]
    fn a_request_without_usable_nodes_holds_nothing_back() {
        let grants = plan(&line(&[(1, 2, &[]), (2, 1, &[10])]));
        assert_eq!(grants.len(), 1);
        assert_eq!(grants[0].request, 2);
    }
}
