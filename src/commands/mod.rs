//! One module per command family; each subcommand is an `Args` struct (its clap arguments) with a `run`.
//! Commands validate input, call `store` (which holds all SQL) and `pool` (the allocation policy) inside
//! the transactions they need, map outcomes to exit codes, and hand results to `output`; notes for people
//! go to stderr. `cli` sits above and dispatches.

pub mod admin;
pub mod docs;
pub mod doctor;
pub mod health;
pub mod inventory;
pub mod keepalive;
pub mod lease;
pub mod legacy;
pub mod metrics;
pub mod queue;
pub mod report;
pub mod stats;
pub mod wait;

use std::time::Duration;

use anyhow::Result;
use diesel::PgConnection;
use diesel::connection::{CacheSize, Connection};

use crate::config::{self, Config, Timeouts};
use crate::db;
use crate::domain::Group;
use crate::error::{Failure, is_permission_denied, is_transient};
use crate::output::{self, Format};
use crate::store;

/// What every command gets: the settings and a way to reach the database.
pub struct Ctx {
    url: String,
    config: Config,
    output: Option<Format>,
    /// The narrowest group role of `molteniron roles` whose members may run this command: named when the
    /// server refuses it a privilege.
    needs: Option<Group>,
}

/// The global options of one invocation, as the command line gave them.
#[derive(Debug, Default)]
pub struct Options<'a> {
    /// `--database-url`.
    pub database_url: Option<&'a str>,
    /// `--config`.
    pub config: Option<&'a std::path::Path>,
    /// The original's `-c/--conf-dir`.
    pub conf_dir: Option<&'a std::path::Path>,
    /// `--retries`.
    pub retries: Option<u32>,
    /// `--retry-for`.
    pub retry_for: Option<Duration>,
    /// `-o`.
    pub output: Option<Format>,
}

impl Ctx {
    /// The context for one invocation: the config file (`--config`, else the default places) and the
    /// original's `--conf-dir` on top of it, the database URL by its precedence, `--retries` and
    /// `--retry-for` over the config's, and `-o`.
    pub fn new(options: &Options) -> Result<Ctx> {
        let mut config = Config::load(options.config)?;
        if let Some(dir) = options.conf_dir {
            let ignored = config.apply_conf_dir(dir)?;
            if !ignored.is_empty() {
                output::note(&format!(
                    "ignoring {} in {}: molteniron has no daemon and reaches PostgreSQL through \
                     database_url",
                    ignored.join(", "),
                    dir.join("conf.yaml").display()
                ));
            }
        }
        if let Some(retries) = options.retries {
            config.retries = retries;
        }
        if let Some(retry_for) = options.retry_for {
            config.retry_for = Some(retry_for);
        }
        Ok(Ctx {
            url: config::database_url(options.database_url, &config),
            config,
            output: options.output,
            needs: None,
        })
    }

    /// The context for a command that members of `group` may run, named when the server refuses it a
    /// privilege.
    pub fn needing(self, group: Option<Group>) -> Ctx {
        Ctx {
            needs: group,
            ..self
        }
    }

    /// The lock and statement timeouts of the config, which every transaction and hot statement sets for
    /// itself (`db::transaction`).
    pub fn timeouts(&self) -> Timeouts {
        self.config.timeouts()
    }

    /// The output format asked for (human by default), if this command offers it.
    pub fn format(&self, offered: &[Format]) -> Result<Format> {
        let format = self.output.unwrap_or(Format::Human);
        if offered.contains(&format) {
            return Ok(format);
        }
        let name = |f: &Format| format!("{f:?}").to_lowercase();
        let names: Vec<String> = offered.iter().map(name).collect();
        Err(Failure::Usage(format!(
            "this command has no -o {}; use {}",
            name(&format),
            names.join(" or ")
        ))
        .into())
    }

    /// Hands nodes this command freed to requests waiting in line (`queue::serve`), after the command's
    /// own change is committed; costs one cheap statement when nobody waits. A failure is only said: the
    /// change is done, and the next poll of any waiter serves the line.
    pub fn serve_line(&self) {
        if let Err(e) =
            self.with_db_repeatable(|conn| Ok(crate::queue::serve(conn, self.timeouts(), true)?))
        {
            output::note(&format!("serving the line failed: {}", self.cause(&e)));
        }
    }

    /// Connects, runs `body`, and explains its error (an unmigrated database says so). A transient failure
    /// while connecting is retried (`--retries`); once `body` has started it is not, because its effect
    /// might already be committed: for commands whose repetition is harmless use [`Ctx::with_db_repeatable`].
    pub fn with_db<T>(&self, body: impl FnMut(&mut PgConnection) -> Result<T>) -> Result<T> {
        self.run_db(false, body)
    }

    /// [`Ctx::with_db`] for commands that may run again after a lost connection: reads, and writes whose
    /// repetition changes nothing (release, renew, reap; allocate through its owner, which returns what the
    /// owner already holds).
    pub fn with_db_repeatable<T>(
        &self,
        body: impl FnMut(&mut PgConnection) -> Result<T>,
    ) -> Result<T> {
        self.run_db(true, body)
    }

    /// [`Ctx::with_db_repeatable`] for commands that only read: `body` runs in one read-only snapshot
    /// (so what it reads together agrees) under the config's timeouts.
    pub fn read<T>(&self, mut body: impl FnMut(&mut PgConnection) -> Result<T>) -> Result<T> {
        let timeouts = self.timeouts();
        self.with_db_repeatable(|conn| {
            db::transaction_with(conn, timeouts, db::Mode::Snapshot, &mut body)
        })
    }

    fn run_db<T>(
        &self,
        repeatable: bool,
        mut body: impl FnMut(&mut PgConnection) -> Result<T>,
    ) -> Result<T> {
        let started_at = std::time::Instant::now();
        let mut attempt = 0;
        loop {
            let (err, started) = match self.attempt(&mut body) {
                Ok(value) => return Ok(value),
                Err(failure) => failure,
            };
            if (started && !repeatable) || !is_transient(&err) {
                return Err(err);
            }
            attempt += 1;
            // A time budget (--retry-for) decides when it is set; else the count (--retries).
            let (delay, left) = match self.config.retry_for {
                Some(budget) => {
                    let remaining = budget.saturating_sub(started_at.elapsed());
                    if remaining.is_zero() {
                        return Err(err);
                    }
                    let delay = backoff(attempt).min(remaining);
                    // Rounded up: the note never promises less time than the next wait takes.
                    let secs = i64::try_from(remaining.as_millis().div_ceil(1000).max(1))
                        .unwrap_or(i64::MAX);
                    (
                        delay,
                        format!("for up to {} more", output::short_duration(secs)),
                    )
                }
                None if attempt > self.config.retries => return Err(err),
                None => (
                    backoff(attempt),
                    format!("retry {attempt} of {}", self.config.retries),
                ),
            };
            output::note(&format!(
                "the database is unavailable ({}); retrying in {} ms ({left})",
                self.cause(&err),
                delay.as_millis()
            ));
            std::thread::sleep(delay);
        }
    }

    /// The first line of why an attempt failed, for a retry note, with the database password replaced.
    fn cause(&self, err: &anyhow::Error) -> String {
        let text = format!("{err:#}");
        let first = text.lines().next().unwrap_or_default();
        let cut: String = first.chars().take(200).collect();
        crate::error::redact(&cut, &config::secrets([self.url.as_str()]))
    }

    /// One connection and one run of `body`, without retries (for callers that pace their own, like
    /// `renew --keep-alive`). The error says whether `body` had started (false: nothing was sent).
    fn attempt<T>(
        &self,
        mut body: impl FnMut(&mut PgConnection) -> Result<T>,
    ) -> Result<T, (anyhow::Error, bool)> {
        match db::connect(&self.url, &self.config) {
            // Nothing was sent: always safe to try again.
            Err(e) => Err((e, false)),
            Ok(mut conn) => {
                // One process sends a statement or two: preparing them first would cost a round trip each.
                conn.set_prepared_statement_cache_size(CacheSize::Disabled);
                body(&mut conn).map_err(|e| {
                    let e = db::explain(&mut conn, e);
                    (self.name_needed_role(&mut conn, e), true)
                })
            }
        }
    }
}

impl Ctx {
    /// Adds to an error that is the server refusing a privilege which group role would have let the
    /// command run. The roles' prefix is whatever `molteniron roles --prefix` was given, so they are
    /// looked up in the catalog (the group roles that hold the privileges in this database); where none
    /// do, the message names the default.
    fn name_needed_role(&self, conn: &mut PgConnection, err: anyhow::Error) -> anyhow::Error {
        let Some(group) = self.needs else {
            return err;
        };
        if !is_permission_denied(&err) {
            return err;
        }
        let hint = match store::holders(conn, group) {
            Ok(found) => match found.roles.split_first() {
                Some((first, rest)) => {
                    let mut names = first.clone();
                    if let Some((last, middle)) = rest.split_last() {
                        for name in middle {
                            names.push_str(&format!(", {name}"));
                        }
                        names.push_str(&format!(" or {last}"));
                    }
                    format!("this needs {names} (hint: GRANT {first} TO {})", found.user)
                }
                None => no_holder(group),
            },
            Err(_) => no_holder(group),
        };
        anyhow::anyhow!("{err:#}; {hint}")
    }
}

/// What a permission error says when no role in this database holds `group`'s privileges.
fn no_holder(group: Group) -> String {
    format!(
        "this needs the {group} role of `molteniron roles` (molteniron_{group} unless another --prefix \
         was given), and none holds its privileges in this database (hint: `molteniron roles --apply`)"
    )
}

/// Exponential backoff with jitter: about 100 ms × 2^(attempt-1), capped at 5 s, each wait drawn between
/// half and all of that so that many jobs retrying together spread out.
fn backoff(attempt: u32) -> Duration {
    let ceiling = Duration::from_millis(100).saturating_mul(1 << attempt.min(16).saturating_sub(1));
    let ceiling = ceiling.min(Duration::from_secs(5));
    ceiling.mul_f64(0.5 + random_fraction() / 2.0)
}

/// A number in [0, 1) for jitter (retries, waiters' polls). RandomState is seeded randomly per
/// process: enough randomness for jitter, no extra crate.
fn random_fraction() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let random = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    (random % 1000) as f64 / 1000.0
}

/// Turns a validation message into an exit-1 error.
fn invalid(message: String) -> anyhow::Error {
    Failure::Invalid(message).into()
}

/// The error for a NODE argument that names no node.
fn no_node(key: &str) -> anyhow::Error {
    Failure::NotFound(format!("no node {key:?} (give a node name or id)")).into()
}

/// Writes `text` to `path` so that a reader sees the old file or the new one, never a part: a new file
/// beside it (same directory, so the rename cannot cross file systems), synced, then renamed over
/// `path` (`metrics --textfile`, `report --html`). The temporary file's name starts with a dot and does
/// not end in .prom, so node_exporter and web servers ignore it, and it is removed when anything fails.
pub fn write_atomically(path: &std::path::Path, text: &str) -> Result<()> {
    use anyhow::Context;
    use std::io::Write;
    let name = path
        .file_name()
        .context("the path names no file")?
        .to_string_lossy();
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => std::path::Path::new("."),
    };
    let temp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let written = (|| {
        let mut file = std::fs::OpenOptions::new()
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
