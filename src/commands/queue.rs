//! `molteniron queue`: the waiting requests in the order they will be served, for people and scripts.
//! Serving the line is `crate::queue`; waiting is `commands::wait`.

use anyhow::Result;
use clap::Args;

use super::Ctx;
use crate::inventory::check_text;
use crate::output::{self, Format, QueueRow};
use crate::pool::Filter;
use crate::store::{nodes, queue};

#[derive(Debug, Args)]
pub struct QueueArgs {
    /// Only requests that may use this pool (its own and any-pool requests).
    #[arg(long, value_name = "POOL")]
    pub pool: Option<String>,
}

impl QueueArgs {
    /// `queue [--pool P]`: position, owner, pool, count, filters, priority, waiting since, and how many
    /// matching nodes are ready and allocated now.
    pub fn run(&self, ctx: &Ctx) -> Result<()> {
        let format = ctx.format(&[Format::Human, Format::Json, Format::Csv])?;
        if let Some(pool) = &self.pool {
            check_text("pool", pool).map_err(super::invalid)?;
        }
        let entries = ctx.read(|conn| {
            let public = !nodes::may_read_credentials(conn)?;
            Ok(queue::list(conn, self.pool.as_deref(), public)?)
        })?;
        let rows: Vec<QueueRow> = entries
            .into_iter()
            .map(|e| {
                let filter = Filter::from_json(&e.request);
                QueueRow {
                    filters: filter.describe(),
                    pool: filter.pool,
                    entry: e,
                }
            })
            .collect();
        output::queue(&rows, format)
    }
}
