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
use serde_json::{Map, Value, json};

use crate::config::Timeouts;
use crate::queue::{self, InLine};
use crate::store::nodes::{self, Matching, Node};
use crate::store::queue as queue_store;

/// How often the request is tried again when nodes were freed between an attempt and the count of what
/// could be locked.
const ATTEMPTS: usize = 3;

/// Which nodes a request can use: a pool (or any) and Ironic-style hardware filters, all combined with
/// AND. Plain data, validated by the command line; [`Filter::to_json`] is what the SQL function
/// `node_matches` reads (a bind parameter: no SQL is ever built from these values).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Filter {
    /// Only this pool; `None` is every pool.
    pub pool: Option<String>,
    /// `properties.cpu_arch` equals this.
    pub arch: Option<String>,
    /// `properties.cpus` at least this.
    pub min_cpus: Option<u64>,
    /// `properties.memory_mb` at least this.
    pub min_memory_mb: Option<u64>,
    /// `properties.local_gb` at least this.
    pub min_disk_gb: Option<u64>,
    /// The node's driver is this.
    pub driver: Option<String>,
    /// Ironic's `resource_class` equals this.
    pub resource_class: Option<String>,
    /// Ironic's `traits` contain every one of these.
    pub traits: Vec<String>,
    /// `properties.KEY` equals VALUE: as text, or as numbers when both are (see [`is_number`]).
    pub properties: Vec<(String, String)>,
    /// The node is one of these (names or ids): Ironic's candidate_nodes.
    pub nodes: Vec<String>,
}

impl Filter {
    /// The request as `node_matches` reads it: only the filters given, so the others fold away.
    pub fn to_json(&self) -> Value {
        let mut f = Map::new();
        let mut put = |key: &str, value: Option<Value>| {
            if let Some(value) = value {
                f.insert(key.to_owned(), value);
            }
        };
        put("pool", self.pool.clone().map(Value::from));
        put("arch", self.arch.clone().map(Value::from));
        put("min_cpus", self.min_cpus.map(Value::from));
        put("min_memory_mb", self.min_memory_mb.map(Value::from));
        put("min_disk_gb", self.min_disk_gb.map(Value::from));
        put("driver", self.driver.clone().map(Value::from));
        put(
            "resource_class",
            self.resource_class.clone().map(Value::from),
        );
        put(
            "traits",
            (!self.traits.is_empty()).then(|| json!(self.traits)),
        );
        let properties: Vec<Value> = self
            .properties
            .iter()
            .map(|(key, text)| json!({"key": key, "text": text, "numeric": is_number(text)}))
            .collect();
        put(
            "properties",
            (!properties.is_empty()).then(|| json!(properties)),
        );
        put("nodes", (!self.nodes.is_empty()).then(|| json!(self.nodes)));
        Value::Object(f)
    }

    /// The filter [`Filter::to_json`] made (as stored with a waiting request); keys it does not know are
    /// ignored.
    pub fn from_json(value: &Value) -> Filter {
        let text = |key: &str| value.get(key).and_then(Value::as_str).map(str::to_owned);
        let number = |key: &str| value.get(key).and_then(Value::as_u64);
        let texts = |key: &str| -> Vec<String> {
            value
                .get(key)
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default()
        };
        let properties = value
            .get("properties")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|p| Some((text_of(p, "key")?, text_of(p, "text")?)))
                    .collect()
            })
            .unwrap_or_default();
        Filter {
            pool: text("pool"),
            arch: text("arch"),
            min_cpus: number("min_cpus"),
            min_memory_mb: number("min_memory_mb"),
            min_disk_gb: number("min_disk_gb"),
            driver: text("driver"),
            resource_class: text("resource_class"),
            traits: texts("traits"),
            properties,
            nodes: texts("nodes"),
        }
    }

    /// The hardware filters as the flags that set them (`--arch ppc64el --min-cpus 64`), empty when there
    /// are none; the pool is said separately.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        let mut flag = |name: &str, value: String| parts.push(format!("--{name} {value}"));
        if let Some(v) = &self.arch {
            flag("arch", v.clone());
        }
        if let Some(v) = self.min_cpus {
            flag("min-cpus", v.to_string());
        }
        if let Some(v) = self.min_memory_mb {
            flag("min-memory-mb", v.to_string());
        }
        if let Some(v) = self.min_disk_gb {
            flag("min-disk-gb", v.to_string());
        }
        if let Some(v) = &self.driver {
            flag("driver", v.clone());
        }
        if let Some(v) = &self.resource_class {
            flag("resource-class", v.clone());
        }
        for v in &self.traits {
            flag("trait", v.clone());
        }
        for (k, v) in &self.properties {
            flag("property", format!("{k}={v}"));
        }
        for v in &self.nodes {
            flag("node", v.clone());
        }
        parts.join(" ")
    }

    /// "pool NAME" or "any pool".
    pub fn scope(&self) -> String {
        match &self.pool {
            Some(pool) => format!("pool {pool}"),
            None => "any pool".to_owned(),
        }
    }
}

fn text_of(value: &Value, key: &str) -> Option<String> {
    value.get(key).and_then(Value::as_str).map(str::to_owned)
}

/// Whether `text` is a number PostgreSQL's `numeric` reads exactly as written: an optional sign, digits
/// with at most one `.`, and an optional exponent of at most three digits. Such a filter value also
/// matches a property that is a number equal to it (`4` matches `4.0`), compared in SQL as `numeric`, so
/// nothing is lost to floating point.
pub fn is_number(text: &str) -> bool {
    let body = text.strip_prefix(['-', '+']).unwrap_or(text);
    let (mantissa, exponent) = match body.split_once(['e', 'E']) {
        Some((m, e)) => (m, Some(e.strip_prefix(['-', '+']).unwrap_or(e))),
        None => (body, None),
    };
    let digits = mantissa.replacen('.', "", 1);
    !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && exponent
            .is_none_or(|e| !e.is_empty() && e.len() <= 3 && e.bytes().all(|b| b.is_ascii_digit()))
}

/// What a job asks for.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub owner: &'a str,
    pub filter: &'a Filter,
    pub count: i64,
    pub lease_secs: f64,
    /// Its place among waiting requests (-1000..1000, higher first): it may take only nodes that no
    /// waiting request of this priority or higher wants.
    pub priority: i32,
}

/// Why a request can never be satisfied as things stand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unsatisfiable {
    /// The pool it names has no node at all; these are the pools there are.
    NoPool { pools: Vec<String> },
    /// Fewer nodes than requested match, counting every state (maintenance included).
    TooFew { matching: i64 },
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
    /// Fewer than `requested` ready nodes could be locked, or the ones there are are held back for
    /// requests waiting ahead in line (`ahead` of them may use this pool); nothing was allocated. Enough
    /// match in some state (`matching`; `in_service` of them out of maintenance), so a retry may succeed.
    NotEnough {
        found: i64,
        requested: i64,
        matching: i64,
        in_service: i64,
        ahead: i64,
    },
    /// The owner already waits in line, at `position` (1 first); nothing was allocated.
    Waiting { position: i64 },
    /// The request can never be satisfied as things stand; nothing was allocated.
    Unsatisfiable {
        found: i64,
        requested: i64,
        why: Unsatisfiable,
    },
}

impl Outcome {
    /// For [`Outcome::Conflict`]: the pools the owner's nodes belong to, comma-separated.
    pub fn held_pools(held: &[Node]) -> String {
        let pools: BTreeSet<&str> = held.iter().map(|n| n.pool.as_str()).collect();
        pools.into_iter().collect::<Vec<_>>().join(",")
    }
}

/// Decides `request`: allocates when enough ready matching nodes can be locked; otherwise says whether
/// the owner already holds this request (the same count, every node matching it), holds something
/// else, there are not enough right now, or there never can be as things stand. Nodes freed between the
/// attempt and the count are tried again (up to [`ATTEMPTS`] times). While requests wait in line, the
/// line decides (`queue::take_now`): nodes a request ahead wants are not taken. Never waits for a row
/// another allocator holds.
pub fn take(
    conn: &mut PgConnection,
    timeouts: Timeouts,
    request: &Request,
) -> QueryResult<Outcome> {
    let Request {
        owner,
        filter,
        count,
        lease_secs,
        priority,
    } = *request;
    let wanted = filter.to_json();
    let mut found = 0;
    let mut ahead = 0;
    for _ in 0..ATTEMPTS {
        let granted = nodes::allocate(conn, timeouts, owner, &wanted, count, lease_secs)?;
        if !granted.is_empty() {
            return Ok(Outcome::Granted(granted));
        }
        let held = nodes::held_by(conn, owner)?;
        if !held.is_empty() {
            // The same request again: the same count, and every node it holds matches it (pool and
            // filters), so a retried job step gets its nodes back and a different request conflicts.
            if held.len() as i64 == count
                && nodes::count_held_matching(conn, owner, &wanted)? == count
            {
                // Granted by the line and not yet picked up by its waiting process: this process takes
                // them, so that a waiter that died cannot have them withdrawn later.
                crate::db::transaction(conn, timeouts, |conn| {
                    queue_store::pick_up_owner(conn, owner)
                })?;
                return Ok(Outcome::AlreadyHeld(held));
            }
            return Ok(Outcome::Conflict { held });
        }
        let lockable = nodes::count_lockable(conn, &wanted, count)?;
        found = lockable.found;
        if lockable.waiting {
            match queue::take_now(conn, timeouts, owner, &wanted, count, priority, lease_secs)? {
                InLine::Granted(nodes) => return Ok(Outcome::Granted(nodes)),
                InLine::OwnerWaiting { position } => return Ok(Outcome::Waiting { position }),
                InLine::Refused { ahead: n } => {
                    ahead = n;
                    break;
                }
            }
        }
        if found < count {
            break;
        }
    }
    // Under churn more may have been lockable a moment ago than now; never report found >= requested.
    let found = found.min(count - 1);
    let Matching {
        matching,
        in_service,
        in_pool,
        pools,
    } = nodes::matching(conn, &wanted)?;
    let why = if filter.pool.is_some() && in_pool == 0 {
        Some(Unsatisfiable::NoPool { pools })
    } else if matching < count {
        Some(Unsatisfiable::TooFew { matching })
    } else {
        None
    };
    Ok(match why {
        Some(why) => Outcome::Unsatisfiable {
            found,
            requested: count,
            why,
        },
        None => Outcome::NotEnough {
            found,
            requested: count,
            matching,
            in_service,
            ahead,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_filter_survives_its_json() {
        let filter = Filter {
            pool: Some("p".into()),
            arch: Some("x86_64".into()),
            min_cpus: Some(8),
            min_memory_mb: Some(1024),
            min_disk_gb: Some(10),
            driver: Some("ipmi".into()),
            resource_class: Some("baremetal".into()),
            traits: vec!["CUSTOM_A".into(), "CUSTOM_B".into()],
            properties: vec![("vendor".into(), "ibm".into())],
            nodes: vec!["n1".into(), "7".into()],
        };
        assert_eq!(Filter::from_json(&filter.to_json()), filter);
        assert_eq!(Filter::from_json(&json!({})), Filter::default());
    }

    #[test]
    fn numbers_are_what_numeric_reads_exactly() {
        for yes in [
            "8",
            "-3",
            "+3",
            "4.0",
            ".5",
            "5.",
            "1e5",
            "1E-3",
            "12345678901234567890",
        ] {
            assert!(is_number(yes), "{yes}");
        }
        for no in [
            "", "-", ".", "e5", "1e", "1e1000", "1.2.3", "0x10", "inf", "NaN", "8 ", "1_000",
        ] {
            assert!(!is_number(no), "{no}");
        }
    }
}
