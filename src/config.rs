//! Configuration: the config file, which database to use, and duration parsing.
//!
//! Precedence for the database: `--database-url`, `MOLTENIRON_DATABASE_URL`, `DATABASE_URL`, the config
//! file's `database_url`, and finally an empty connection string, which makes libpq apply its own defaults
//! (PGHOST, PGPORT, PGUSER, PGDATABASE, PGPASSWORD, ~/.pgpass) as psql does. With no host given anywhere,
//! `db::conninfo` names the socket directories Debian's psql and the bundled libpq use.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use serde::Deserialize;

use crate::domain::NodeState;
use crate::error::Failure;

/// The config file read when neither `--config` nor `MOLTENIRON_CONFIG` names one.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/molteniron/config.yaml";

/// The original MoltenIron's conf.yaml keys that mean nothing without its daemon and MySQL (`-c DIR`).
const ORIGINAL_IGNORED_KEYS: [&str; 8] = [
    "serverIP",
    "mi_port",
    "timeout",
    "retry",
    "logdir",
    "maxLogDays",
    "sqlUser",
    "sqlPass",
];

/// The most retries honoured (with backoff capped at 5 s, about a minute and a half of waiting).
pub const MAX_RETRIES: u32 = 20;

/// Where a released or reaped node goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReturnState {
    /// Straight back into the pool.
    Ready,
    /// Needs `molteniron clean` before reuse.
    Dirty,
}

impl ReturnState {
    /// The node state it stands for.
    pub fn state(self) -> NodeState {
        match self {
            ReturnState::Ready => NodeState::Ready,
            ReturnState::Dirty => NodeState::Dirty,
        }
    }
}

/// The effective settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// `database_url` from the file, if any.
    pub database_url: Option<String>,
    /// Lease length when `allocate`/`renew` are not given `--lease`.
    pub max_lease: Duration,
    /// Where `release` puts nodes.
    pub release_state: ReturnState,
    /// Where `reap` puts nodes.
    pub reap_state: ReturnState,
    /// How long to wait for the server to answer a connection attempt.
    pub connect_timeout: Duration,
    /// How long one statement may wait for a lock before it fails (see `Timeouts` for where it is set).
    pub lock_timeout: Duration,
    /// How long one statement may run before the server cancels it.
    pub statement_timeout: Duration,
    /// How many times to retry after a transient database failure (see `commands::Ctx`).
    pub retries: u32,
    /// How long to keep retrying after a transient failure; when set, it decides instead of `retries`.
    pub retry_for: Option<Duration>,
    /// How long `allocate --wait` waits in line when not given `--wait-timeout`.
    pub max_wait: Duration,
    /// How often a waiting allocate looks at the line besides being woken (with jitter).
    pub poll_interval: Duration,
    /// After this long without a sign of life from a waiting process, anyone withdraws its request.
    pub waiter_timeout: Duration,
    /// Whether a waiting allocate also LISTENs to be woken at once (off behind a transaction pooler,
    /// where LISTEN does not work: waiting then polls only).
    pub listen: bool,
    /// After this many jobs in a row reported failed (`release --failed`), a node is quarantined; 0 is off.
    pub quarantine_after: u32,
    /// `health-check`'s settings.
    pub health_check: HealthCheck,
}

/// The config's `health_check` section.
#[derive(Debug, Clone, Default)]
pub struct HealthCheck {
    /// The command `health-check` runs per node when not given `--command`.
    pub command: Option<String>,
    /// Check a node again only this long after its last check ...
    pub every: Option<Duration>,
    /// ... or after this many jobs since (when either is set, only due nodes are checked).
    pub after_jobs: Option<u64>,
}

/// The lock and statement timeouts molteniron's statements run under. They travel inside each transaction
/// (`SET LOCAL` with its `BEGIN`, or `set_config` inside a one-statement command's statement), never in the
/// connection's start-up packet, so they hold through any connection pooler: see `db::transaction`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// How long a statement may wait for a lock.
    pub lock: Duration,
    /// How long a statement may run.
    pub statement: Duration,
}

impl Timeouts {
    /// `lock` in milliseconds as PostgreSQL's `lock_timeout` setting reads it (at least 1: 0 would mean
    /// no timeout at all).
    pub fn lock_ms(&self) -> String {
        self.lock.as_millis().max(1).to_string()
    }

    /// `statement` in milliseconds as `statement_timeout` reads it (at least 1).
    pub fn statement_ms(&self) -> String {
        self.statement.as_millis().max(1).to_string()
    }
}

impl Config {
    /// The configured `lock_timeout` and `statement_timeout`.
    pub fn timeouts(&self) -> Timeouts {
        Timeouts {
            lock: self.lock_timeout,
            statement: self.statement_timeout,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            database_url: None,
            max_lease: Duration::from_secs(6000),
            release_state: ReturnState::Ready,
            reap_state: ReturnState::Ready,
            connect_timeout: Duration::from_secs(10),
            lock_timeout: Duration::from_secs(10),
            statement_timeout: Duration::from_secs(60),
            retries: 0,
            retry_for: None,
            max_wait: Duration::from_secs(2 * 3600),
            poll_interval: Duration::from_secs(2),
            waiter_timeout: Duration::from_secs(30),
            listen: true,
            quarantine_after: 3,
            health_check: HealthCheck::default(),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    database_url: Option<String>,
    max_lease: Option<DurationValue>,
    release_state: Option<ReturnState>,
    reap_state: Option<ReturnState>,
    connect_timeout: Option<DurationValue>,
    lock_timeout: Option<DurationValue>,
    statement_timeout: Option<DurationValue>,
    retries: Option<u32>,
    retry_for: Option<DurationValue>,
    max_wait: Option<DurationValue>,
    poll_interval: Option<DurationValue>,
    waiter_timeout: Option<DurationValue>,
    listen: Option<bool>,
    quarantine_after: Option<u32>,
    health_check: Option<HealthCheckFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HealthCheckFile {
    command: Option<String>,
    every: Option<DurationValue>,
    after_jobs: Option<u64>,
}

/// A duration written as a number of seconds or as text such as "100m".
#[derive(Deserialize)]
#[serde(untagged)]
enum DurationValue {
    Seconds(i64),
    Text(String),
}

impl DurationValue {
    fn resolve(&self, key: &str) -> Result<Duration> {
        let duration = match self {
            DurationValue::Seconds(secs) => parse_duration(&secs.to_string()),
            DurationValue::Text(text) => parse_duration(text),
        };
        duration.with_context(|| format!("reading {key}"))
    }
}

impl Config {
    /// Loads the config file named by `explicit`, else `MOLTENIRON_CONFIG`, else [`DEFAULT_CONFIG_PATH`] when
    /// it exists; with none of these, the defaults.
    pub fn load(explicit: Option<&Path>) -> Result<Config> {
        let path = match explicit {
            Some(path) => Some(path.to_path_buf()),
            None => match std::env::var_os("MOLTENIRON_CONFIG").filter(|v| !v.is_empty()) {
                Some(path) => Some(PathBuf::from(path)),
                None => Some(PathBuf::from(DEFAULT_CONFIG_PATH)).filter(|p| p.exists()),
            },
        };
        let Some(path) = path else {
            return Ok(Config::default());
        };
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading config file {}", path.display()))?;
        Config::from_yaml(&text).with_context(|| format!("reading config file {}", path.display()))
    }

    /// Parses a config file's text; unknown keys are an error.
    pub fn from_yaml(text: &str) -> Result<Config> {
        let mut config = Config::default();
        if text.trim().is_empty() {
            return Ok(config);
        }
        let file: ConfigFile =
            serde_yaml::from_str(text).map_err(|e| Failure::Invalid(e.to_string()))?;
        config.database_url = file.database_url;
        if let Some(v) = &file.max_lease {
            config.max_lease = v.resolve("max_lease")?;
        }
        if let Some(v) = &file.connect_timeout {
            config.connect_timeout = v.resolve("connect_timeout")?;
        }
        if let Some(v) = &file.lock_timeout {
            config.lock_timeout = server_timeout(v.resolve("lock_timeout")?, "lock_timeout")?;
        }
        if let Some(v) = &file.statement_timeout {
            config.statement_timeout =
                server_timeout(v.resolve("statement_timeout")?, "statement_timeout")?;
        }
        if let Some(v) = &file.retry_for {
            config.retry_for = Some(v.resolve("retry_for")?);
        }
        if let Some(v) = &file.max_wait {
            config.max_wait = v.resolve("max_wait")?;
        }
        if let Some(v) = &file.poll_interval {
            config.poll_interval = v.resolve("poll_interval")?;
        }
        if let Some(v) = &file.waiter_timeout {
            config.waiter_timeout = v.resolve("waiter_timeout")?;
        }
        if config.poll_interval.is_zero() || config.poll_interval >= config.waiter_timeout {
            return Err(Failure::Invalid(format!(
                "poll_interval ({}s) must be above zero and shorter than waiter_timeout ({}s): a \
                 waiting allocate says it is alive at each poll",
                config.poll_interval.as_secs_f64(),
                config.waiter_timeout.as_secs_f64()
            ))
            .into());
        }
        if let Some(v) = file.listen {
            config.listen = v;
        }
        if let Some(v) = file.quarantine_after {
            config.quarantine_after = v;
        }
        if let Some(h) = &file.health_check {
            if let Some(command) = &h.command {
                if command.trim().is_empty() {
                    return Err(Failure::Invalid(
                        "health_check.command must not be empty".to_owned(),
                    )
                    .into());
                }
                config.health_check.command = Some(command.clone());
            }
            if let Some(v) = &h.every {
                config.health_check.every = Some(v.resolve("health_check.every")?);
            }
            if let Some(v) = h.after_jobs {
                if v == 0 {
                    return Err(Failure::Invalid(
                        "health_check.after_jobs must be at least 1".to_owned(),
                    )
                    .into());
                }
                config.health_check.after_jobs = Some(v);
            }
        }
        if let Some(v) = file.retries {
            config.retries = v.min(MAX_RETRIES);
        }
        if let Some(v) = file.release_state {
            config.release_state = v;
        }
        if let Some(v) = file.reap_state {
            config.reap_state = v;
        }
        Ok(config)
    }

    /// Applies the original MoltenIron's settings directory (`-c DIR`) over these settings: the `maxTime`
    /// of `DIR/conf.yaml` (seconds, or text such as "100m") becomes `max_lease`. Returns the keys it
    /// ignored, the daemon's and MySQL's, in file order. Any other key is an error, so that a misspelt
    /// `maxTime` cannot leave the lease at its default unnoticed.
    pub fn apply_conf_dir(&mut self, dir: &Path) -> Result<Vec<String>> {
        if !dir.is_dir() {
            let message = format!("--conf-dir {}: not a directory", dir.display());
            return Err(Failure::Invalid(message).into());
        }
        let path = dir.join("conf.yaml");
        let context = || format!("reading {}", path.display());
        let text = std::fs::read_to_string(&path).with_context(context)?;
        let keys: serde_yaml::Mapping = if text.trim().is_empty() {
            serde_yaml::Mapping::new()
        } else {
            serde_yaml::from_str(&text)
                .map_err(|e| Failure::Invalid(e.to_string()))
                .with_context(context)?
        };
        let mut ignored = Vec::new();
        for (key, value) in keys {
            let name = match key {
                serde_yaml::Value::String(name) => name,
                other => serde_yaml::to_string(&other)
                    .unwrap_or_default()
                    .trim()
                    .to_owned(),
            };
            match name.as_str() {
                "maxTime" => {
                    let max_time: DurationValue = serde_yaml::from_value(value)
                        .map_err(|_| {
                            Failure::Invalid(
                                "maxTime must be seconds or a duration such as 100m".to_owned(),
                            )
                        })
                        .with_context(context)?;
                    self.max_lease = max_time.resolve("maxTime").with_context(context)?;
                }
                known if ORIGINAL_IGNORED_KEYS.contains(&known) => ignored.push(name),
                _ => {
                    let message = format!(
                        "unknown key {name:?}: the original's keys are maxTime and {}",
                        ORIGINAL_IGNORED_KEYS.join(", ")
                    );
                    return Err(Failure::Invalid(message)).with_context(context);
                }
            }
        }
        Ok(ignored)
    }
}

/// The connection string to hand to libpq, by the precedence in this module's doc; empty means libpq's
/// own defaults.
pub fn database_url(cli: Option<&str>, config: &Config) -> String {
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    cli.map(str::to_owned)
        .or_else(|| env("MOLTENIRON_DATABASE_URL"))
        .or_else(|| env("DATABASE_URL"))
        .or_else(|| config.database_url.clone())
        .unwrap_or_default()
}

/// Every password that might appear in output: the one inside each connection string given (URL userinfo
/// or a `password=` parameter, raw and percent-decoded) and `PGPASSWORD`.
pub fn secrets<'a>(urls: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut found: Vec<String> = std::env::var("PGPASSWORD").into_iter().collect();
    for url in urls {
        found.extend(mistyped_url_password(url));
        if let Some(rest) = url.split_once("://").map(|(_, rest)| rest) {
            let authority = rest.split(['/', '?']).next().unwrap_or_default();
            if let Some((userinfo, _)) = authority.rsplit_once('@') {
                if let Some((_, password)) = userinfo.split_once(':') {
                    found.push(password.to_owned());
                }
            }
        }
        for (_, tail) in url
            .match_indices("password=")
            .map(|(i, _)| url.split_at(i + 9))
        {
            let value = match tail.strip_prefix('\'') {
                Some(quoted) => quoted.split('\'').next().unwrap_or_default(),
                None => tail
                    .split(['&', ' ', '\t', '\n'])
                    .next()
                    .unwrap_or_default(),
            };
            found.push(value.to_owned());
        }
    }
    let decoded: Vec<String> = found.iter().filter_map(|s| percent_decode(s)).collect();
    found.extend(decoded);
    found.retain(|s| !s.is_empty());
    found.sort_by_key(|s| std::cmp::Reverse(s.len()));
    found.dedup();
    found
}

/// The password of a URL libpq may not read as one: a scheme with one slash or no colon
/// (`postgres:/u:pw@h`, `postgresql//u:pw@h`), or a password with an unencoded `@` or `/`
/// (`postgres://u:p@ss@h`), where libpq would print the part after the first `@` as a host name. Takes
/// what lies between the first `:` after the scheme's slashes and the last `@`, and each `@`-separated
/// piece of it.
fn mistyped_url_password(url: &str) -> Vec<String> {
    if url.contains('=') && !url.contains("://") {
        return Vec::new(); // a keyword string: `password=` is read below
    }
    let Some((before_host, _)) = url.rsplit_once('@') else {
        return Vec::new();
    };
    let userinfo = match before_host.find('/') {
        Some(slash) => before_host[slash..].trim_start_matches('/'),
        None => before_host,
    };
    let Some((_, password)) = userinfo.split_once(':') else {
        return Vec::new();
    };
    let mut found = vec![password.to_owned()];
    found.extend(password.split('@').map(str::to_owned));
    found
}

fn percent_decode(text: &str) -> Option<String> {
    if !text.contains('%') {
        return None;
    }
    let bytes = text.as_bytes();
    let hex = |b: u8| (b as char).to_digit(16);
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if let [b'%', hi, lo, ..] = bytes[i..] {
            if let (Some(hi), Some(lo)) = (hex(hi), hex(lo)) {
                out.push((hi * 16 + lo) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// [`parse_duration`] for clap's value parsers: a bad duration on the command line is a usage error.
pub fn duration_arg(text: &str) -> Result<Duration, String> {
    parse_duration(text).map_err(|e| e.to_string())
}

/// Parses a duration: a plain number of seconds ("6000") or humantime text ("100m", "1h 30m", "2days").
pub fn parse_duration(text: &str) -> Result<Duration> {
    let text = text.trim();
    let duration = if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        text.parse::<u64>()
            .map(Duration::from_secs)
            .map_err(|e| e.to_string())
    } else {
        humantime::parse_duration(text).map_err(|e| e.to_string())
    }
    .map_err(|e| {
        Failure::Invalid(format!(
            "invalid duration {text:?}: {e} (try 90m, 2h or 3600)"
        ))
    })?;
    if duration.is_zero() {
        return Err(
            Failure::Invalid(format!("invalid duration {text:?}: must be positive")).into(),
        );
    }
    if duration > Duration::from_secs(100 * 365 * 24 * 3600) {
        return Err(
            Failure::Invalid(format!("invalid duration {text:?}: longer than 100 years")).into(),
        );
    }
    Ok(duration)
}

/// PostgreSQL's bound on a timeout setting: `INT_MAX` milliseconds (about 24.8 days). A longer one would
/// make the `SET LOCAL` that begins each transaction fail.
const MAX_SERVER_TIMEOUT: Duration = Duration::from_millis(i32::MAX as u64);

/// `value` for the server setting `key`, refused when PostgreSQL cannot take it.
fn server_timeout(value: Duration, key: &str) -> Result<Duration> {
    if value > MAX_SERVER_TIMEOUT {
        return Err(Failure::Invalid(format!(
            "{key}: at most 24d (PostgreSQL takes up to {} ms)",
            i32::MAX
        ))
        .into());
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_postgresql_cannot_take_are_refused() {
        let c = Config::from_yaml("lock_timeout: 24d\nstatement_timeout: 1500ms\n").unwrap();
        assert_eq!(c.lock_timeout, Duration::from_secs(24 * 86400));
        assert_eq!(c.timeouts().statement_ms(), "1500");
        for yaml in ["lock_timeout: 25d\n", "statement_timeout: 30d\n"] {
            let err = format!("{:#}", Config::from_yaml(yaml).unwrap_err());
            assert!(err.contains("at most 24d"), "{err}");
        }
    }

    #[test]
    fn durations_accept_seconds_and_units() {
        assert_eq!(parse_duration("6000").unwrap(), Duration::from_secs(6000));
        assert_eq!(parse_duration("100m").unwrap(), Duration::from_secs(6000));
        assert_eq!(parse_duration("1h 30m").unwrap(), Duration::from_secs(5400));
        assert!(parse_duration("0").is_err());
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn config_file_keys_and_defaults() {
        let c = Config::from_yaml("max_lease: 100m\nrelease_state: dirty\nconnect_timeout: 3\n")
            .unwrap();
        assert_eq!(c.max_lease, Duration::from_secs(6000));
        assert_eq!(c.release_state, ReturnState::Dirty);
        assert_eq!(c.reap_state, ReturnState::Ready);
        assert_eq!(c.connect_timeout, Duration::from_secs(3));
        assert!(Config::from_yaml("max_lease: 10m\nmaxlease: 3\n").is_err());
        assert!(Config::from_yaml("release_state: allocated\n").is_err());
    }

    #[test]
    fn passwords_of_mistyped_urls_are_found() {
        for (url, want) in [
            ("postgres:/mi:hunter2@db/x", "hunter2"),
            ("postgresql//mi:hunter2@db/x", "hunter2"),
            ("postgres://mi:hun@ter2@db.invalid/x", "ter2@"),
            ("postgres://mi:pa/ss99@db/x", "pa/ss99"),
        ] {
            let s = secrets([url]);
            let want = want.trim_end_matches('@');
            assert!(
                s.iter().any(|x| x == want),
                "{want} missing from {s:?} for {url}"
            );
        }
        assert!(secrets(["host=h user=u"]).is_empty() || std::env::var("PGPASSWORD").is_ok());
    }

    #[test]
    fn secrets_found_in_urls_and_keyword_strings() {
        let s = secrets([
            "postgres://u:s3cr%40t@h/db",
            "host=h password='pw x' user=u",
            "postgres://h/db?password=qp&x=1",
        ]);
        for want in ["s3cr%40t", "s3cr@t", "pw x", "qp"] {
            assert!(s.iter().any(|x| x == want), "{want} missing from {s:?}");
        }
    }
}
