//! `report --html FILE`: the pool as one self-contained HTML page, written atomically (like the metrics
//! file) so that cron can drop it into any web root. Everything is read in one read-only snapshot, from
//! the statements `metrics`, `queue` and `stats` use plus two of its own; no credential is read, so the
//! readonly role may run it. The page itself is `crate::report`.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;

use super::{Ctx, write_atomically};
use crate::config::duration_arg;
use crate::db::{self, Mode};
use crate::output::Format;
use crate::report::{self, Report};
use crate::store::{health, metrics, queue, report as store};

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Write the page to FILE, atomically (a temporary file in FILE's directory, then renamed over it).
    #[arg(long, value_name = "FILE")]
    pub html: PathBuf,
    /// The period of the charts (utilization, waits, failures), up to now, e.g. 24h, 7d.
    #[arg(long, value_name = "DURATION", value_parser = duration_arg, default_value = "7d")]
    pub since: Duration,
}

impl ReportArgs {
    /// `report --html FILE [--since DUR]`: one snapshot, one page.
    pub fn run(&self, ctx: &Ctx) -> Result<()> {
        ctx.format(&[Format::Human])?;
        let since_secs = self.since.as_secs_f64();
        let page = ctx.with_db_repeatable(|conn| {
            let report = db::transaction_with(conn, ctx.timeouts(), Mode::Snapshot, |conn| {
                Ok::<_, diesel::result::Error>(Report {
                    generated_at: chrono::Utc::now(),
                    since_secs,
                    pools: metrics::pools(conn)?,
                    line: queue::list(conn, None, true)?,
                    out_of_service: store::out_of_service(conn)?,
                    usage: health::stats(conn, since_secs, None)?,
                    waits: store::waits_by_size(conn, since_secs)?,
                })
            })?;
            Ok(report::html(&report))
        })?;
        // Silent on success, for cron.
        write_atomically(&self.html, &page)
            .with_context(|| format!("writing the report to {}", self.html.display()))
    }
}
