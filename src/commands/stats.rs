//! `stats`: how the pool is used, from the events: per pool and per node, allocations, busy share, hold
//! times, failed jobs, quarantines, health checks, and per pool the waits in line. It answers "which
//! nodes fail most?" and "is the pool big enough?".

use std::time::Duration;

use anyhow::Result;
use clap::Args;

use super::{Ctx, invalid};
use crate::config::duration_arg;
use crate::inventory::check_text;
use crate::output::{self, Format};
use crate::store::health;

#[derive(Debug, Args)]
pub struct StatsArgs {
    /// The period, up to now, e.g. 24h, 7d.
    #[arg(long, value_name = "DURATION", value_parser = duration_arg, default_value = "7d")]
    pub since: Duration,
    /// Only this pool.
    #[arg(long, value_name = "POOL")]
    pub pool: Option<String>,
}

impl StatsArgs {
    /// `stats [--since DUR] [--pool P]`: one query, one row per pool and per node.
    pub fn run(&self, ctx: &Ctx) -> Result<()> {
        let format = ctx.format(&[Format::Human, Format::Csv, Format::Json])?;
        if let Some(pool) = &self.pool {
            check_text("pool", pool).map_err(invalid)?;
        }
        let since = self.since.as_secs_f64();
        let usage = ctx.read(|conn| Ok(health::stats(conn, since, self.pool.as_deref())?))?;
        output::stats(&usage, format)
    }
}
