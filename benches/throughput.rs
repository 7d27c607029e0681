//! P6: the library's allocate/release throughput with persistent connections.
//!
//! `cargo bench --bench throughput -- --threads 1,8,32 --seconds 5` creates (or resets) the database
//! `molteniron_bench_throughput` on the server that DATABASE_URL or the PG* variables name, seeds it, and
//! for each thread count runs that many threads, each with its own connection, looping "allocate 1 node
//! for my owner, release my owner" for the given time. It prints one line per thread count:
//! `threads 8 ops/s 1234.5` (one op = one allocate + one release). `scripts/bench` compares these with
//! pgbench running the same statements.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::time::{Duration, Instant};

use diesel::prelude::*;
use molteniron::config::Config;
use molteniron::db;
use molteniron::domain::NodeState;
use molteniron::store::nodes;

const DATABASE: &str = "molteniron_bench_throughput";
const NODES: usize = 256;

fn server_url() -> String {
    ["DATABASE_URL", "MOLTENIRON_DATABASE_URL"]
        .iter()
        .find_map(|name| std::env::var(name).ok().filter(|v| !v.is_empty()))
        .unwrap_or_default()
}

fn with_dbname(url: &str, dbname: &str) -> String {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let sep = if url.contains('?') { '&' } else { '?' };
        format!("{url}{sep}dbname={dbname}")
    } else {
        format!("{url} dbname={dbname}").trim_start().to_owned()
    }
}

fn prepare(url: &str) {
    let config = Config::default();
    let mut admin = db::connect(&with_dbname(&server_url(), "postgres"), &config).unwrap();
    diesel::sql_query(format!("DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)"))
        .execute(&mut admin)
        .unwrap();
    diesel::sql_query(format!("CREATE DATABASE {DATABASE}"))
        .execute(&mut admin)
        .unwrap();
    let mut conn = db::connect(url, &config).unwrap();
    db::migrate(&mut conn, config.timeouts()).unwrap();
    diesel::sql_query(format!(
        "INSERT INTO nodes (name, driver, driver_info) \
         SELECT 'bench' || i, 'fake', '{{}}' FROM generate_series(1, {NODES}) AS i"
    ))
    .execute(&mut conn)
    .unwrap();
    diesel::sql_query("VACUUM ANALYZE nodes")
        .execute(&mut conn)
        .unwrap();
}

/// Runs `threads` workers for `seconds` and returns allocate+release pairs per second.
fn run(url: &str, threads: usize, seconds: f64) -> f64 {
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let start = Instant::now();
    let workers: Vec<_> = (0..threads)
        .map(|t| {
            let url = url.to_owned();
            std::thread::spawn(move || {
                let mut conn = db::connect(&url, &Config::default()).unwrap();
                let timeouts = Config::default().timeouts();
                let owner = format!("bench-{t}");
                let filter = serde_json::json!({}); // any pool, as `molteniron allocate OWNER`
                let mut ops = 0u64;
                while Instant::now() < deadline {
                    let got =
                        nodes::allocate(&mut conn, timeouts, &owner, &filter, 1, 600.0).unwrap();
                    assert_eq!(got.len(), 1, "the pool is larger than the thread count");
                    let released =
                        nodes::release(&mut conn, timeouts, &owner, None, NodeState::Ready, None)
                            .unwrap();
                    assert_eq!(released.released.len(), 1);
                    ops += 1;
                }
                ops
            })
        })
        .collect();
    let ops: u64 = workers.into_iter().map(|w| w.join().unwrap()).sum();
    ops as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let value = |flag: &str, default: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .cloned()
            .unwrap_or(default.to_owned())
    };
    if args.iter().any(|a| a == "--list") {
        // `cargo bench -- --list` asks harness-less benches what they contain.
        println!("throughput: benchmark");
        return;
    }
    let threads: Vec<usize> = value("--threads", "1,8,32")
        .split(',')
        .map(|t| t.parse().unwrap())
        .collect();
    let seconds: f64 = value("--seconds", "5").parse().unwrap();
    assert!(
        threads.iter().all(|&t| t <= NODES),
        "at most {NODES} threads"
    );
    let url = with_dbname(&server_url(), DATABASE);
    prepare(&url);
    for t in threads {
        println!("threads {t} ops/s {:.1}", run(&url, t, seconds));
    }
}
