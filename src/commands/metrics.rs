//! `metrics`: the pool for Prometheus, in the text exposition format, on stdout or written atomically
//! to a file for node_exporter's textfile collector (`--textfile`, from cron or a timer). It only reads,
//! in one statement, so the readonly role may run it and a scrape never sees half an update: the file
//! is written beside its final name and renamed over it, which node_exporter sees whole or not at all.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;

use super::Ctx;
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
        let pools = ctx.with_db_repeatable(|conn| Ok(metrics::pools(conn)?))?;
        let text = output::prometheus(&pools, env!("CARGO_PKG_VERSION"));
        match &self.textfile {
            None => output::text(&text),
            Some(path) => write_atomically(path, &text)
                .with_context(|| format!("writing the metrics to {}", path.display())),
        }
    }
}

/// Writes `text` to `path` so that a reader sees the old file or the new one, never a part: a new file
/// beside it (same directory, so the rename cannot cross file systems), synced, then renamed over
/// `path`. The temporary file's name does not end in .prom, so node_exporter ignores it, and it is
/// removed when anything fails.
fn write_atomically(path: &Path, text: &str) -> Result<()> {
    let name = path
        .file_name()
        .context("the path names no file")?
        .to_string_lossy();
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let temp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let written = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temp)
            .with_context(|| format!("creating {}", temp.display()))?;
        file.write_all(text.as_bytes())
            .and_then(|()| file.sync_all())
            .with_context(|| format!("writing {}", temp.display()))?;
        std::fs::rename(&temp, path)
            .with_context(|| format!("renaming {} to {}", temp.display(), path.display()))
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    written
}
