//! A model-based property test: random sequences of commands run through the real binary against a real
//! database and, side by side, against a small in-memory model of the pool. After every step the exit
//! code, the nodes each command reports, every node's state, owner, pool, cpus, maintenance reason and
//! lease expiry, and the number of events of each kind must agree with the model.
//!
//! The universe is small on purpose (4 names, 2 pools, 3 owners, counts 1 to 3) so that collisions happen:
//! adding a name that exists, allocating from an exhausted pool, an owner retrying, releasing what another
//! owner holds. `PROPTEST_CASES=500 scripts/test -E 'test(/model::/)'` runs more cases than CI does.

use std::collections::BTreeMap;
use std::path::PathBuf;

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool, Nullable, Text};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::Value;

use crate::support::TestDb;

const NAMES: &[&str] = &["n0", "n1", "n2", "n3"];
const POOLS: &[&str] = &["default", "x86"];
const OWNERS: &[&str] = &["o0", "o1", "o2"];
const REASONS: &[&str] = &["disk errors", "fan"];
/// Values for `set-field NODE cpus VALUE`; `eight` is not a non-negative integer (exit 1).
const CPUS: &[&str] = &["0", "8", "16", "eight"];

/// Cases per run unless `PROPTEST_CASES` says otherwise: each is a fresh database and up to 25 commands.
const CASES: u32 = 32;

/// One step. Every variant but `Expire` is one run of the binary.
#[derive(Clone, Debug)]
enum Op {
    Add {
        name: &'static str,
        pool: &'static str,
        cpus: Option<&'static str>,
    },
    /// `allocate OWNER COUNT [POOL] [--min-cpus N]`: no pool is any pool.
    Allocate {
        owner: &'static str,
        count: usize,
        pool: Option<&'static str>,
        min_cpus: Option<u32>,
    },
    /// `release OWNER`; with `dirty`, under a config whose `release_state` is `dirty`; with `failed`,
    /// `--failed --reason model` (three in a row from two owners quarantine a node).
    Release {
        owner: &'static str,
        dirty: bool,
        failed: bool,
    },
    ReleaseNode {
        owner: &'static str,
        name: &'static str,
        dirty: bool,
        failed: bool,
    },
    Renew {
        owner: &'static str,
    },
    /// Not a command: moves the owner's leases a second into the past with SQL, so `reap` has work.
    Expire {
        owner: &'static str,
    },
    /// `reap`; with `dirty`, under a config whose `reap_state` is `dirty`.
    Reap {
        dirty: bool,
    },
    Clean {
        name: &'static str,
    },
    MaintenanceOn {
        name: &'static str,
        reason: &'static str,
        force: bool,
        dirty: bool,
    },
    MaintenanceOff {
        name: &'static str,
    },
    SetCpus {
        name: &'static str,
        value: &'static str,
    },
    SetPool {
        name: &'static str,
        pool: &'static str,
    },
    Rename {
        name: &'static str,
        to: &'static str,
    },
    Remove {
        name: &'static str,
        force: bool,
    },
    /// Resolved against the model when its turn comes (see [`Model::resolve`]): `target` aimed at the
    /// `k`-th (modulo how many there are) node or owner it can succeed on, so that the paths that need
    /// a particular state (clean a dirty node, reap an expired lease, ...) are taken often enough.
    Focus {
        target: Focus,
        k: usize,
    },
}

#[derive(Clone, Copy, Debug)]
enum Focus {
    /// `clean` a dirty node.
    Clean,
    /// `maintenance --off` a node in maintenance.
    MaintenanceOff,
    /// `release` an owner that holds nodes.
    Release { dirty: bool, failed: bool },
    /// `release --node` by the node's holder.
    ReleaseNode { dirty: bool, failed: bool },
    /// `Expire` an owner that holds nodes.
    Expire,
    /// `renew` an owner that holds nodes.
    Renew,
    /// `allocate` by an owner that holds nothing, from a pool with ready nodes, at most as many as it has.
    Allocate,
    /// `allocate` again by an owner that holds nodes, with the count it holds and its first node's pool.
    Retry,
}

fn ops() -> impl Strategy<Value = Vec<Op>> {
    let name = || prop::sample::select(NAMES);
    let pool = || prop::sample::select(POOLS);
    let owner = || prop::sample::select(OWNERS);
    let cpus = || prop::option::of(prop::sample::select(&CPUS[..3]));
    let min_cpus = || prop::option::of(prop::sample::select(&[1u32, 8, 12, 16][..]));
    let focus = || {
        prop_oneof![
            2 => Just(Focus::Clean),
            2 => Just(Focus::MaintenanceOff),
            2 => (any::<bool>(), any::<bool>())
                .prop_map(|(dirty, failed)| Focus::Release { dirty, failed }),
            1 => (any::<bool>(), any::<bool>())
                .prop_map(|(dirty, failed)| Focus::ReleaseNode { dirty, failed }),
            3 => Just(Focus::Expire),
            1 => Just(Focus::Renew),
            4 => Just(Focus::Allocate),
            // allocate and release --failed often enough, with several owners, to reach quarantine
            4 => Just(Focus::Release { dirty: false, failed: true }),
            1 => Just(Focus::Retry),
        ]
    };
    let count = prop_oneof![3 => Just(1usize), 2 => Just(2), 1 => Just(3)];
    let op = prop_oneof![
        2 => (name(), pool(), cpus()).prop_map(|(name, pool, cpus)| Op::Add { name, pool, cpus }),
        5 => (owner(), count, prop::option::of(pool()), min_cpus())
            .prop_map(|(owner, count, pool, min_cpus)| Op::Allocate { owner, count, pool, min_cpus }),
        1 => (owner(), any::<bool>(), any::<bool>())
            .prop_map(|(owner, dirty, failed)| Op::Release { owner, dirty, failed }),
        1 => (owner(), name(), any::<bool>(), any::<bool>())
            .prop_map(|(owner, name, dirty, failed)| Op::ReleaseNode { owner, name, dirty, failed }),
        1 => owner().prop_map(|owner| Op::Renew { owner }),
        1 => owner().prop_map(|owner| Op::Expire { owner }),
        4 => any::<bool>().prop_map(|dirty| Op::Reap { dirty }),
        1 => name().prop_map(|name| Op::Clean { name }),
        1 => (name(), prop::sample::select(REASONS), any::<bool>(), any::<bool>()).prop_map(
            |(name, reason, force, dirty)| Op::MaintenanceOn { name, reason, force, dirty }
        ),
        1 => name().prop_map(|name| Op::MaintenanceOff { name }),
        1 => (name(), prop::sample::select(CPUS))
            .prop_map(|(name, value)| Op::SetCpus { name, value }),
        1 => (name(), pool()).prop_map(|(name, pool)| Op::SetPool { name, pool }),
        1 => (name(), name()).prop_map(|(name, to)| Op::Rename { name, to }),
        1 => (name(), any::<bool>()).prop_map(|(name, force)| Op::Remove { name, force }),
        16 => (focus(), 0..12usize).prop_map(|(target, k)| Op::Focus { target, k }),
    ];
    // Two to four distinct nodes first, so that most commands find nodes to work on; then up to 22 steps
    // (from none, so that shrinking can drop every step after the one that fails).
    let first = (
        prop::sample::subsequence(NAMES, 2..=4),
        prop::collection::vec((pool(), cpus()), 4),
    )
        .prop_map(|(names, specs)| {
            names
                .into_iter()
                .zip(specs)
                .map(|(name, (pool, cpus))| Op::Add { name, pool, cpus })
                .collect::<Vec<_>>()
        });
    // Half the sequences also get a run of three jobs on one pool that all report failure, from two
    // owners, somewhere among the steps: enough for a quarantine when they land on the same node, which
    // random steps alone almost never reach.
    let failures = prop::option::weighted(0.5, (pool(), any::<prop::sample::Index>()));
    (first, prop::collection::vec(op, 0..=22), failures).prop_map(|(mut ops, more, failures)| {
        let at = ops.len()
            + failures
                .as_ref()
                .map_or(0, |(_, index)| index.index(more.len() + 1));
        ops.extend(more);
        if let Some((pool, _)) = failures {
            let run = ["o1", "o2", "o1"].into_iter().flat_map(|owner| {
                [
                    Op::Allocate {
                        owner,
                        count: 1,
                        pool: Some(pool),
                        min_cpus: None,
                    },
                    Op::Release {
                        owner,
                        dirty: false,
                        failed: true,
                    },
                ]
            });
            ops.splice(at..at, run);
        }
        ops
    })
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Ready,
    Allocated,
    Dirty,
    Maintenance,
}

impl State {
    fn as_str(self) -> &'static str {
        match self {
            State::Ready => "ready",
            State::Allocated => "allocated",
            State::Dirty => "dirty",
            State::Maintenance => "maintenance",
        }
    }
}

fn given_back(dirty: bool) -> State {
    if dirty { State::Dirty } else { State::Ready }
}

#[derive(Clone, Debug)]
struct ModelNode {
    /// Insertion order: ids only grow, so a removed and re-added name sorts after every older node.
    seq: u64,
    state: State,
    owner: Option<&'static str>,
    pool: &'static str,
    cpus: Option<&'static str>,
    reason: Option<String>,
    /// The lease is in the past (only after `Expire`; leases are 6000 s otherwise).
    expired: bool,
    /// The jobs reported on it since `maintenance --off` (or since it was added), newest last: owner
    /// and whether it failed. The quarantine rule reads the last three.
    jobs: Vec<(&'static str, bool)>,
}

/// What the model says a command does: its exit code and, for commands run with `-o json`, the names of
/// the nodes it lists, in id order.
#[derive(Debug)]
struct Expect {
    code: i32,
    listed: Option<Vec<&'static str>>,
}

impl Expect {
    fn code(code: i32) -> Expect {
        Expect { code, listed: None }
    }

    fn listing(names: Vec<&'static str>) -> Expect {
        Expect {
            code: 0,
            listed: Some(names),
        }
    }
}

#[derive(Default)]
struct Model {
    nodes: BTreeMap<&'static str, ModelNode>,
    next_seq: u64,
    /// How many events of each action the database should hold.
    events: BTreeMap<&'static str, i64>,
}

impl Model {
    fn event(&mut self, action: &'static str, n: usize) {
        if n > 0 {
            *self.events.entry(action).or_default() += n as i64;
        }
    }

    /// Names of the nodes matching `keep`, in id order.
    fn names_where(&self, keep: impl Fn(&ModelNode) -> bool) -> Vec<&'static str> {
        let mut found: Vec<(&'static str, u64)> = self
            .nodes
            .iter()
            .filter(|(_, n)| keep(n))
            .map(|(name, n)| (*name, n.seq))
            .collect();
        found.sort_by_key(|(_, seq)| *seq);
        found.into_iter().map(|(name, _)| name).collect()
    }

    fn held_by(&self, owner: &str) -> Vec<&'static str> {
        self.names_where(|n| n.owner == Some(owner))
    }

    /// Gives node `name` back from its owner: no owner, no lease, `ready` or `dirty`.
    fn give_back(&mut self, name: &str, state: State) {
        let node = self.nodes.get_mut(name).expect("a node the model holds");
        node.state = state;
        node.owner = None;
        node.expired = false;
    }

    /// A job's release of `name`: the node goes back, its result is recorded, and three failed jobs in a
    /// row from two owners at least (the default quarantine_after) put it in maintenance.
    fn job_done(&mut self, name: &str, owner: &'static str, dirty: bool, failed: bool) {
        self.give_back(name, given_back(dirty));
        let node = self.nodes.get_mut(name).expect("a node the model holds");
        node.jobs.push((owner, failed));
        let last: Vec<(&'static str, bool)> = node.jobs.iter().rev().take(3).copied().collect();
        let owners: std::collections::BTreeSet<&str> = last.iter().map(|(o, _)| *o).collect();
        if last.len() == 3 && last.iter().all(|(_, f)| *f) && owners.len() >= 2 {
            node.state = State::Maintenance;
            node.reason = Some("quarantined: 3 failed jobs in a row (last: model)".to_owned());
            self.event("quarantine", 1);
        }
    }

    /// `op` itself, or for `Focus` the concrete step it stands for now. With nothing to aim at, it falls
    /// back to a name or owner of the universe (and the command usually fails, as it should).
    fn resolve(&self, op: &Op) -> Op {
        let Op::Focus { target, k } = *op else {
            return op.clone();
        };
        let pick = |names: Vec<&'static str>, universe: &[&'static str]| match names.len() {
            0 => universe[k % universe.len()],
            len => names[k % len],
        };
        let in_state = |state: State| self.names_where(|n| n.state == state);
        let holder = || {
            let mut owners: Vec<&'static str> = self
                .names_where(|n| n.owner.is_some())
                .into_iter()
                .filter_map(|name| self.nodes[name].owner)
                .collect();
            owners.dedup();
            pick(owners, OWNERS)
        };
        match target {
            Focus::Clean => Op::Clean {
                name: pick(in_state(State::Dirty), NAMES),
            },
            Focus::MaintenanceOff => Op::MaintenanceOff {
                name: pick(in_state(State::Maintenance), NAMES),
            },
            Focus::ReleaseNode { dirty, failed } => {
                let name = pick(in_state(State::Allocated), NAMES);
                let owner = self
                    .nodes
                    .get(name)
                    .and_then(|n| n.owner)
                    .unwrap_or(OWNERS[k % OWNERS.len()]);
                Op::ReleaseNode {
                    owner,
                    name,
                    dirty,
                    failed,
                }
            }
            Focus::Release { dirty, failed } => Op::Release {
                owner: holder(),
                dirty,
                failed,
            },
            Focus::Expire => Op::Expire { owner: holder() },
            Focus::Renew => Op::Renew { owner: holder() },
            Focus::Allocate => {
                let idle: Vec<&'static str> = OWNERS
                    .iter()
                    .copied()
                    .filter(|owner| self.held_by(owner).is_empty())
                    .collect();
                let owner = pick(idle, OWNERS);
                let ready = self.names_where(|n| n.state == State::Ready);
                let pool = match ready.len() {
                    0 => POOLS[k % POOLS.len()],
                    len => self.nodes[ready[k % len]].pool,
                };
                let in_pool = ready.iter().filter(|n| self.nodes[*n].pool == pool).count();
                Op::Allocate {
                    owner,
                    count: 1 + k % in_pool.max(1),
                    pool: Some(pool),
                    min_cpus: None,
                }
            }
            Focus::Retry => {
                let owner = holder();
                let held = self.held_by(owner);
                let pool = held
                    .first()
                    .map_or(POOLS[k % POOLS.len()], |n| self.nodes[n].pool);
                Op::Allocate {
                    owner,
                    count: held.len().max(1),
                    pool: Some(pool),
                    min_cpus: None,
                }
            }
        }
    }

    /// Applies `op` and returns what the binary should answer.
    fn apply(&mut self, op: &Op) -> Expect {
        match *op {
            Op::Add { name, pool, cpus } => {
                if self.nodes.contains_key(name) {
                    return Expect::code(6);
                }
                self.next_seq += 1;
                let node = ModelNode {
                    seq: self.next_seq,
                    state: State::Ready,
                    owner: None,
                    pool,
                    cpus,
                    reason: None,
                    expired: false,
                    jobs: Vec::new(),
                };
                self.nodes.insert(name, node);
                self.event("add", 1);
                Expect::code(0)
            }
            Op::Allocate {
                owner,
                count,
                pool,
                min_cpus,
            } => {
                let matches = |n: &ModelNode| {
                    pool.is_none_or(|p| n.pool == p)
                        && min_cpus.is_none_or(|min| {
                            n.cpus
                                .and_then(|c| c.parse::<u32>().ok())
                                .is_some_and(|c| c >= min)
                        })
                };
                let held = self.held_by(owner);
                if !held.is_empty() {
                    // A retry of the same request (the same count, every held node matching it) gets
                    // what the owner holds; anything else is a conflict.
                    let all_match = held.iter().all(|name| matches(&self.nodes[name]));
                    if held.len() == count && all_match {
                        return Expect::listing(held);
                    }
                    return Expect::code(6);
                }
                let ready = self.names_where(|n| n.state == State::Ready && matches(n));
                if ready.len() < count {
                    // Never (exit 8): no node in the named pool, or too few match in any state.
                    let pool_exists = pool.is_none_or(|p| self.nodes.values().any(|n| n.pool == p));
                    let matching = self.names_where(matches).len();
                    return Expect::code(if !pool_exists || matching < count {
                        8
                    } else {
                        3
                    });
                }
                let taken = ready[..count].to_vec();
                for name in &taken {
                    let node = self.nodes.get_mut(name).expect("a ready node");
                    node.state = State::Allocated;
                    node.owner = Some(owner);
                    node.expired = false;
                }
                self.event("allocate", count);
                Expect::listing(taken)
            }
            Op::Release {
                owner,
                dirty,
                failed,
            } => {
                let held = self.held_by(owner);
                self.event("release", held.len());
                for name in &held {
                    self.job_done(name, owner, dirty, failed);
                }
                Expect::listing(held)
            }
            Op::ReleaseNode {
                owner,
                name,
                dirty,
                failed,
            } => {
                let Some(node) = self.nodes.get(name) else {
                    return Expect::code(4);
                };
                if node.owner != Some(owner) {
                    return Expect::code(4);
                }
                self.event("release", 1);
                self.job_done(name, owner, dirty, failed);
                Expect::listing(vec![name])
            }
            Op::Renew { owner } => {
                let held = self.held_by(owner);
                if held.is_empty() {
                    return Expect::code(4);
                }
                for name in &held {
                    self.nodes.get_mut(name).expect("a held node").expired = false;
                }
                self.event("renew", held.len());
                Expect::listing(held)
            }
            Op::Expire { owner } => {
                for node in self.nodes.values_mut() {
                    if node.owner == Some(owner) {
                        node.expired = true;
                    }
                }
                Expect::code(0)
            }
            Op::Reap { dirty } => {
                let expired = self.names_where(|n| n.state == State::Allocated && n.expired);
                for name in &expired {
                    self.give_back(name, given_back(dirty));
                }
                self.event("reap", expired.len());
                Expect::listing(expired)
            }
            Op::Clean { name } => {
                let Some(node) = self.nodes.get_mut(name) else {
                    return Expect::code(4);
                };
                if node.state != State::Dirty {
                    return Expect::code(6);
                }
                node.state = State::Ready;
                self.event("clean", 1);
                Expect::code(0)
            }
            Op::MaintenanceOn {
                name,
                reason,
                force,
                dirty,
            } => {
                let Some(node) = self.nodes.get(name) else {
                    return Expect::code(4);
                };
                if node.owner.is_some() {
                    if !force {
                        return Expect::code(6);
                    }
                    // --force takes it from its owner first (recorded as the operator's force_release,
                    // not as a release), then takes it out of service.
                    self.give_back(name, given_back(dirty));
                    self.event("force_release", 1);
                }
                let node = self.nodes.get_mut(name).expect("the node just found");
                node.state = State::Maintenance;
                node.reason = Some(reason.to_owned());
                self.event("maintenance_on", 1);
                Expect::code(0)
            }
            Op::MaintenanceOff { name } => {
                let Some(node) = self.nodes.get_mut(name) else {
                    return Expect::code(4);
                };
                if node.state != State::Maintenance {
                    return Expect::code(6);
                }
                node.state = State::Ready;
                node.reason = None;
                node.jobs.clear();
                self.event("maintenance_off", 1);
                Expect::code(0)
            }
            Op::SetCpus { name, value } => {
                let Some(node) = self.nodes.get_mut(name) else {
                    return Expect::code(4);
                };
                if value.parse::<u32>().is_err() {
                    return Expect::code(1);
                }
                node.cpus = Some(value);
                self.event("set_field", 1);
                Expect::code(0)
            }
            Op::SetPool { name, pool } => {
                let Some(node) = self.nodes.get_mut(name) else {
                    return Expect::code(4);
                };
                // Allowed in any state: a held node keeps its owner, but then a retried allocate of
                // the old pool no longer matches (exit 6).
                node.pool = pool;
                self.event("set_field", 1);
                Expect::code(0)
            }
            Op::Rename { name, to } => {
                if !self.nodes.contains_key(name) {
                    return Expect::code(4);
                }
                if to != name {
                    if self.nodes.contains_key(to) {
                        return Expect::code(6);
                    }
                    let node = self.nodes.remove(name).expect("the node just found");
                    self.nodes.insert(to, node);
                }
                self.event("set_field", 1);
                Expect::code(0)
            }
            Op::Focus { .. } => unreachable!("apply takes resolved steps"),
            Op::Remove { name, force } => {
                let Some(node) = self.nodes.get(name) else {
                    return Expect::code(4);
                };
                if node.owner.is_some() && !force {
                    return Expect::code(6);
                }
                self.nodes.remove(name);
                self.event("remove", 1);
                Expect::code(0)
            }
        }
    }

    /// The rows `SELECT ... FROM nodes ORDER BY id` should return.
    fn rows(&self) -> Vec<Row> {
        self.names_where(|_| true)
            .into_iter()
            .map(|name| {
                let n = &self.nodes[name];
                Row {
                    name: name.to_owned(),
                    state: n.state.as_str().to_owned(),
                    owner: n.owner.map(str::to_owned),
                    pool: n.pool.to_owned(),
                    cpus: n.cpus.map(str::to_owned),
                    reason: n.reason.clone(),
                    expired: n.expired,
                }
            })
            .collect()
    }

    fn event_counts(&self) -> Vec<(String, i64)> {
        self.events
            .iter()
            .map(|(action, n)| ((*action).to_owned(), *n))
            .collect()
    }
}

/// What the test compares of one node.
#[derive(Debug, PartialEq, QueryableByName)]
struct Row {
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Text)]
    state: String,
    #[diesel(sql_type = Nullable<Text>)]
    owner: Option<String>,
    #[diesel(sql_type = Text)]
    pool: String,
    #[diesel(sql_type = Nullable<Text>)]
    cpus: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    reason: Option<String>,
    #[diesel(sql_type = Bool)]
    expired: bool,
}

#[derive(QueryableByName)]
struct EventCount {
    #[diesel(sql_type = Text)]
    action: String,
    #[diesel(sql_type = BigInt)]
    n: i64,
}

fn db_rows(conn: &mut PgConnection) -> Vec<Row> {
    diesel::sql_query(
        "SELECT name, state, owner, pool, properties->>'cpus' AS cpus, maintenance_reason AS reason,
                coalesce(lease_expires_at <= now(), false) AS expired
         FROM nodes ORDER BY id",
    )
    .load(conn)
    .unwrap()
}

fn db_event_counts(conn: &mut PgConnection) -> Vec<(String, i64)> {
    diesel::sql_query("SELECT action, count(*) AS n FROM events GROUP BY action ORDER BY action")
        .load::<EventCount>(conn)
        .unwrap()
        .into_iter()
        .map(|e| (e.action, e.n))
        .collect()
}

/// A config file that sends released and reaped nodes to `dirty`, for the whole run.
struct DirtyConfig {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

impl DirtyConfig {
    fn new() -> DirtyConfig {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dirty.yaml");
        std::fs::write(&path, "release_state: dirty\nreap_state: dirty\n").unwrap();
        DirtyConfig { _dir: dir, path }
    }
}

/// The command line for `op` (`None` for `Expire`, which is SQL). `dirty` is a config file that sends
/// released and reaped nodes to `dirty`; `hw` numbers the BMC address of an added node, so that no two
/// adds ever claim the same hardware.
fn command(op: &Op, dirty: &str, hw: u32) -> Option<Vec<String>> {
    let args = |config: bool, words: &[&str]| -> Vec<String> {
        let config: &[&str] = if config { &["--config", dirty] } else { &[] };
        config
            .iter()
            .chain(words)
            .map(|w| (*w).to_owned())
            .collect()
    };
    let flag = |on: bool, name: &'static str| on.then(|| name.to_owned());
    let args = match *op {
        Op::Add { name, pool, cpus } => {
            let bmc = format!("10.77.{}.{}", hw / 250, hw % 250 + 1);
            let mut line = args(false, &["add", name, "--bmc-address", &bmc]);
            if pool != "default" {
                line.extend(["--pool".to_owned(), pool.to_owned()]);
            }
            if let Some(cpus) = cpus {
                line.extend(["--cpus".to_owned(), cpus.to_owned()]);
            }
            line
        }
        Op::Allocate {
            owner,
            count,
            pool,
            min_cpus,
        } => {
            let count = count.to_string();
            let mut line = args(false, &["allocate", owner, &count, "-o", "json"]);
            // No pool is any pool, as a job would leave it out.
            line.extend(pool.map(str::to_owned));
            if let Some(min) = min_cpus {
                line.extend(["--min-cpus".to_owned(), min.to_string()]);
            }
            line
        }
        Op::Release {
            owner,
            dirty,
            failed,
        } => {
            let mut line = args(dirty, &["release", owner, "-o", "json"]);
            if failed {
                line.extend(["--failed", "--reason", "model"].map(str::to_owned));
            }
            line
        }
        Op::ReleaseNode {
            owner,
            name,
            dirty,
            failed,
        } => {
            let mut line = args(dirty, &["release", owner, "--node", name, "-o", "json"]);
            if failed {
                line.extend(["--failed", "--reason", "model"].map(str::to_owned));
            }
            line
        }
        Op::Renew { owner } => args(false, &["renew", owner, "-o", "json"]),
        Op::Expire { .. } => return None,
        Op::Reap { dirty } => args(dirty, &["reap", "-o", "json"]),
        Op::Clean { name } => args(false, &["clean", name]),
        Op::MaintenanceOn {
            name,
            reason,
            force,
            dirty,
        } => {
            let mut line = args(dirty, &["maintenance", name, "--reason", reason]);
            line.extend(flag(force, "--force"));
            line
        }
        Op::MaintenanceOff { name } => args(false, &["maintenance", name, "--off"]),
        Op::SetCpus { name, value } => args(false, &["set-field", name, "cpus", value]),
        Op::SetPool { name, pool } => args(false, &["set-field", name, "pool", pool]),
        Op::Rename { name, to } => args(false, &["set-field", name, "name", to]),
        Op::Remove { name, force } => {
            let mut line = args(false, &["remove", name]);
            line.extend(flag(force, "--force"));
            line
        }
        Op::Focus { .. } => unreachable!("only resolved steps are run"),
    };
    Some(args)
}

/// The names in a JSON array of objects that each have a "name".
fn json_names(stdout: &str) -> Result<Vec<String>, String> {
    let value: Value =
        serde_json::from_str(stdout).map_err(|e| format!("stdout is not JSON ({e}): {stdout}"))?;
    value
        .as_array()
        .ok_or_else(|| format!("stdout is not a JSON array: {stdout}"))?
        .iter()
        .map(|node| {
            node["name"]
                .as_str()
                .map(str::to_owned)
                .ok_or_else(|| format!("an entry without a name: {stdout}"))
        })
        .collect()
}

/// Runs `ops` against a fresh database and the model, failing at the first disagreement.
fn run_case(ops: &[Op], dirty_config: &str) -> Result<(), TestCaseError> {
    let db = TestDb::new();
    let mut conn = db.conn();
    let mut model = Model::default();
    let mut transcript = String::new();
    for (step, op) in ops.iter().enumerate() {
        let op = &model.resolve(op);
        let expect = model.apply(op);
        let hw = u32::try_from(step).unwrap();
        let fail = |transcript: &str, what: String| {
            TestCaseError::fail(format!(
                "step {step} ({op:?}): {what}\nsteps run:\n{transcript}"
            ))
        };
        match command(op, dirty_config, hw) {
            None => {
                let Op::Expire { owner } = op else {
                    unreachable!("only Expire has no command line")
                };
                diesel::sql_query(
                    "UPDATE nodes SET lease_expires_at = now() - interval '1 second' WHERE owner = $1",
                )
                .bind::<Text, _>(*owner)
                .execute(&mut conn)
                .unwrap();
                transcript.push_str(&format!("  {step}: (SQL) expire the leases of {owner}\n"));
            }
            Some(args) => {
                let argv: Vec<&str> = args.iter().map(String::as_str).collect();
                let (code, stdout, stderr) = db.run(&argv);
                transcript.push_str(&format!(
                    "  {step}: molteniron {} -> exit {code}\n",
                    args.join(" ")
                ));
                if code != expect.code {
                    return Err(fail(
                        &transcript,
                        format!(
                            "exit code {code}, but the model expects {}\nstderr: {stderr}",
                            expect.code
                        ),
                    ));
                }
                for bad in ["panicked", "stack backtrace"] {
                    if stderr.contains(bad) {
                        return Err(fail(&transcript, format!("stderr shows a panic: {stderr}")));
                    }
                }
                if code != 0 && !stderr.starts_with("molteniron: error: ") {
                    return Err(fail(
                        &transcript,
                        format!("exit {code} without a one-line error: {stderr:?}"),
                    ));
                }
                if let Some(listed) = &expect.listed {
                    let names = json_names(&stdout).map_err(|e| fail(&transcript, e))?;
                    if names != *listed {
                        return Err(fail(
                            &transcript,
                            format!(
                                "the command listed {names:?}, but the model expects {listed:?}"
                            ),
                        ));
                    }
                }
            }
        }
        let (got, want) = (db_rows(&mut conn), model.rows());
        if got != want {
            let show = |rows: &[Row]| {
                rows.iter()
                    .map(|r| format!("    {r:?}\n"))
                    .collect::<String>()
            };
            return Err(fail(
                &transcript,
                format!(
                    "the nodes disagree\n  database (by id):\n{}  model (by insertion):\n{}",
                    show(&got),
                    show(&want)
                ),
            ));
        }
        let (got, want) = (db_event_counts(&mut conn), model.event_counts());
        if got != want {
            return Err(fail(
                &transcript,
                format!("events per action: database {got:?}, model {want:?}"),
            ));
        }
    }
    Ok(())
}

#[test]
fn random_command_sequences_agree_with_the_model() {
    let defaults = Config::default();
    let config = Config {
        cases: if std::env::var_os("PROPTEST_CASES").is_some() {
            defaults.cases
        } else {
            CASES
        },
        // No regression files in the source tree: a failure prints its minimal sequence instead.
        failure_persistence: None,
        // Each shrink step is a whole case (a database and up to 25 commands): keep a failure short.
        max_shrink_iters: 200,
        max_shrink_time: 60_000,
        ..defaults
    };
    let dirty = DirtyConfig::new();
    let dirty_config = dirty.path.to_str().unwrap().to_owned();
    let mut runner = TestRunner::new(config);
    if let Err(e) = runner.run(&ops(), |ops| run_case(&ops, &dirty_config)) {
        panic!("{e}");
    }
}
