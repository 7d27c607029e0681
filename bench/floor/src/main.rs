//! `floor allocate OWNER [COUNT [POOL]]`, `floor release OWNER` and `floor --version`: the reference client
//! for `scripts/bench`.
//!
//! It does the least any client must do to run molteniron's hot-path statements, so that molteniron's
//! per-call time can be compared with a floor: connect over the Unix socket named by the libpq variables
//! (PGHOST is the socket directory, then PGPORT, PGUSER, PGDATABASE), run the very same SQL text with the
//! same binds and types, print the node ids, exit. No config file, no argument parser, no output formatting.

use std::env;
use std::process::ExitCode;

use postgres::types::{ToSql, Type};
use postgres::{Client, Config, NoTls};

const ALLOCATE: &str = include_str!("../../../src/store/sql/allocate.sql");
const RELEASE: &str = include_str!("../../../src/store/sql/release.sql");

/// molteniron's defaults: one node of any pool for the default 100-minute lease, released to `ready`.
const COUNT: i64 = 1;
const LEASE_SECS: f64 = 6000.0;
const RELEASE_STATE: &str = "ready";
/// molteniron's default lock_timeout (10 s), which each hot statement sets for itself.
const LOCK_TIMEOUT_MS: &str = "10000";

const USAGE: &str =
    "usage: floor allocate OWNER [COUNT [POOL]] | floor release OWNER | floor --version";

fn main() -> ExitCode {
    let args: Vec<String> = env::args().skip(1).collect();
    match run(&args) {
        Ok(code) => code,
        Err(message) => {
            eprintln!("floor: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &[String]) -> Result<ExitCode, String> {
    let ids = match args {
        [mode, owner, rest @ ..] if mode == "allocate" && rest.len() <= 2 => {
            let count = match rest.first() {
                Some(text) => text
                    .parse::<i64>()
                    .map_err(|e| format!("COUNT {text}: {e}"))?,
                None => COUNT,
            };
            // The request as molteniron sends it: `{}` is any pool, `{"pool": POOL}` one pool.
            let pool = rest.get(1);
            let request = match pool {
                Some(pool) => serde_json::json!({ "pool": pool }),
                None => serde_json::json!({}),
            };
            let ids = query(
                ALLOCATE,
                &[
                    (owner, Type::TEXT),
                    (&request, Type::JSONB),
                    (&count, Type::INT8),
                    (&LEASE_SECS, Type::FLOAT8),
                    (&LOCK_TIMEOUT_MS, Type::TEXT),
                ],
            )?;
            if ids.is_empty() {
                let scope = pool.map_or("any pool".to_owned(), |p| format!("pool {p}"));
                return Err(format!("{owner}: no {count} ready node(s) in {scope}"));
            }
            ids
        }
        [flag] if flag == "--version" => {
            // Start-up alone, for comparison with `molteniron --version`.
            println!("floor {}", env!("CARGO_PKG_VERSION"));
            return Ok(ExitCode::SUCCESS);
        }
        [mode, owner] if mode == "release" => query(
            RELEASE,
            &[
                (owner, Type::TEXT),
                (&None::<i64>, Type::INT8),
                (&RELEASE_STATE, Type::TEXT),
                // a plain release reports a pass, with no reason
                (&"passed", Type::TEXT),
                (&None::<String>, Type::TEXT),
                (&LOCK_TIMEOUT_MS, Type::TEXT),
            ],
        )?,
        _ => {
            eprintln!("{USAGE}");
            return Ok(ExitCode::from(2));
        }
    };
    for id in ids {
        println!("{id}");
    }
    Ok(ExitCode::SUCCESS)
}

/// Connects, runs `sql` once with typed binds (one round trip: parse, bind and execute together) and
/// returns the `id` column of the rows (release answers one row of NULLs when it released nothing).
fn query(sql: &str, params: &[(&(dyn ToSql + Sync), Type)]) -> Result<Vec<i64>, String> {
    let mut client = connect().map_err(|e| format!("cannot connect: {e}"))?;
    let rows = client
        .query_typed(sql, params)
        .map_err(|e| match e.as_db_error() {
            Some(db) => format!("{}: {}", db.severity(), db.message()),
            None => e.to_string(),
        })?;
    let ids: Result<Vec<Option<i64>>, String> = rows
        .iter()
        .map(|row| {
            row.try_get::<_, Option<i64>>("id")
                .map_err(|e| e.to_string())
        })
        .collect();
    Ok(ids?.into_iter().flatten().collect())
}

/// The connection the libpq variables describe; a PGHOST starting with `/` is a socket directory.
fn connect() -> Result<Client, postgres::Error> {
    let var = |name: &str| env::var(name).ok().filter(|v| !v.is_empty());
    let user = var("PGUSER")
        .or_else(|| var("USER"))
        .unwrap_or_else(|| "postgres".to_owned());
    let host = var("PGHOST").unwrap_or_else(|| "/var/run/postgresql".to_owned());
    let mut config = Config::new();
    if host.starts_with('/') {
        config.host_path(&host);
    } else {
        config.host(&host);
    }
    config
        .port(var("PGPORT").and_then(|p| p.parse().ok()).unwrap_or(5432))
        .dbname(var("PGDATABASE").as_deref().unwrap_or(&user))
        .user(&user)
        .application_name("floor");
    config.connect(NoTls)
}
