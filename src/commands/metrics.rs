//! `metrics`: the pool for Prometheus, in the text exposition format, on stdout or written atomically
//! to a file for node_exporter's textfile collector (`--textfile`, from cron or a timer). It only reads,
//! in one statement, so the readonly role may run it and a scrape never sees half an update: the file
//! is written beside its final name and renamed over it, which node_exporter sees whole or not at all.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;

use super::{Ctx, write_atomically};
use crate::output::{self, Format};
use crate::store::metrics;

#[derive(Debug, Args)]
pub struct MetricsArgs {
    /// Write the metrics to FILE instead of stdout, atomically: to a temporary file in FILE's directory,
    /// then renamed over FILE. For node_exporter's textfile collector FILE must end in .prom and be in
    /// its --collector.textfile.directory.
    #[arg(long, value_name = "FILE")]
    pub textfile: Option<PathBuf>,
}

impl MetricsArgs {
    /// `metrics [--textfile FILE]`: one query, then stdout or the file.
    pub fn run(&self, ctx: &Ctx) -> Result<()> {
        ctx.format(&[Format::Human])?;
        let pools = ctx.read(|conn| Ok(metrics::pools(conn)?))?;
        let text = output::prometheus(&pools, env!("CARGO_PKG_VERSION"));
        match &self.textfile {
            None => output::text(&text),
            Some(path) => write_atomically(path, &text)
                .with_context(|| format!("writing the metrics to {}", path.display())),
        }
    }
}
