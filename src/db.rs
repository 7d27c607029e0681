//! Connecting to PostgreSQL, the transactions molteniron runs its statements in, and the embedded
//! migrations. What a database error means for the user is `error`'s business.
//!
//! Connections are opened lazily by the commands that need one. The start-up packet carries only what
//! every connection pooler passes on (application name, connect timeout): the lock and statement
//! timeouts travel inside each transaction instead ([`transaction`], and the hot statements' own
//! `set_config`, see `store::hot`), because a transaction-pooling PgBouncer refuses session options or,
//! told to ignore them, drops them, and a session setting would not follow the transaction to whichever
//! server connection runs it.

use anyhow::{Context, Result};
use diesel::migration::MigrationSource;
use diesel::pg::Pg;
use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::result::{ConnectionError, Error as DbError};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use crate::config::{Config, Timeouts};
use crate::error::{Failure, is_conninfo_error, is_missing_relation, is_pooler_refusal};

/// The schema migrations, compiled into the binary.
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");

/// Key of the advisory lock that serialises concurrent `migrate` runs (any constant unique to molteniron).
/// `roles --apply` takes it too, so it never runs in the middle of a migration.
pub const MIGRATE_LOCK_KEY: i64 = 0x6d6f_6c74_656e_6972; // "moltenir"

/// Where the server's Unix socket is looked for when no host is given anywhere, as a libpq host list
/// (tried in turn, the next when a socket is missing or refuses): Debian's libpq default, which Debian's
/// psql uses, then the bundled libpq's own compiled-in default.
pub const DEFAULT_SOCKET_DIRS: &str = "/var/run/postgresql,/tmp";

/// Adds molteniron's connection settings to a connection string (URL or keyword form; empty means libpq's
/// defaults): application name ([`application_name`]), connect timeout, and [`DEFAULT_SOCKET_DIRS`] as
/// the host when neither the string nor the environment names a server (see [`names_server`]). Settings
/// the user wrote themselves win: an `application_name` in the string or in `PGAPPNAME` replaces ours (it
/// is only a fallback). No server options: see the module's comment.
pub fn conninfo(url: &str, config: &Config) -> String {
    conninfo_in(
        url,
        config,
        &|name| std::env::var(name).ok(),
        application_name(),
    )
}

/// [`conninfo`] with the environment given as a lookup (so tests need not change the process's) and
/// `name` as the fallback application name.
fn conninfo_in(
    url: &str,
    config: &Config,
    env: &dyn Fn(&str) -> Option<String>,
    name: &str,
) -> String {
    let mut params = vec![("fallback_application_name", name.to_owned())];
    if !names_server(url, env) {
        params.push(("host", DEFAULT_SOCKET_DIRS.to_owned()));
    }
    if !sets(url, "connect_timeout") {
        params.push((
            "connect_timeout",
            config.connect_timeout.as_secs().max(1).to_string(),
        ));
    }
    let is_uri = url.starts_with("postgres://") || url.starts_with("postgresql://");
    let mut out = url.to_owned();
    for (key, value) in params {
        if is_uri {
            out.push(if out.contains('?') { '&' } else { '?' });
            out.push_str(&format!("{key}={}", percent_encoded(&value)));
        } else {
            if !out.is_empty() {
                out.push(' ');
            }
            let quoted = value.replace('\\', "\\\\").replace('\'', "\\'");
            out.push_str(&format!("{key}='{quoted}'"));
        }
    }
    out
}

/// `text` for a URI query value: every byte but RFC 3986's unreserved characters percent-encoded (an
/// `@` left as is would end libpq's search for the user name in the query).
fn percent_encoded(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                char::from(b).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

/// The application name molteniron's sessions carry unless the user set one: `molteniron USER@HOST`,
/// the invoking OS user and host. The database keeps it with each event it writes (the `actor` column's
/// default, see the migration `event_actor`) and shows it in `pg_stat_activity`. Worked out once per
/// process.
pub fn application_name() -> &'static str {
    static NAME: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    NAME.get_or_init(|| {
        // USER and LOGNAME first: reading them costs nothing, where the password database may be a
        // network lookup.
        let user = ["USER", "LOGNAME"]
            .iter()
            .find_map(|name| std::env::var(name).ok().filter(|v| !v.is_empty()))
            .or_else(|| whoami::username().ok())
            .unwrap_or_else(|| "?".to_owned());
        let host = whoami::hostname().unwrap_or_else(|_| "?".to_owned());
        application_name_for(&user, &host)
    })
}

/// PostgreSQL's bound on an application name: NAMEDATALEN - 1 bytes.
const APPLICATION_NAME_MAX: usize = 63;

/// `molteniron USER@HOST` as the server will keep it: printable ASCII only (the server would rewrite
/// anything else), at most [`APPLICATION_NAME_MAX`] bytes (`pg_stat_activity` keeps no more).
fn application_name_for(user: &str, host: &str) -> String {
    format!("molteniron {user}@{host}")
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .take(APPLICATION_NAME_MAX)
        .collect()
}

/// Whether the connection string sets `key` itself: a `key=` pair of a keyword string (blanks around `=`
/// allowed, as libpq reads it) or of a URL's query. A dbname or password that merely contains the word
/// does not count.
fn sets(url: &str, key: &str) -> bool {
    match url
        .strip_prefix("postgresql://")
        .or_else(|| url.strip_prefix("postgres://"))
    {
        Some(rest) => rest.split_once('?').is_some_and(|(_, query)| {
            query
                .split('&')
                .any(|pair| pair.split_once('=').is_some_and(|(k, _)| k == key))
        }),
        None => keyword_pairs(url).iter().any(|(k, _)| k == key),
    }
}

/// Whether `url` or libpq's environment says where the server is: a non-empty `host`, `hostaddr` or
/// `service` (a service file entry may name a host) in the keyword string, or a host in a URL's authority
/// or query, or a non-empty `PGHOST`, `PGHOSTADDR` or `PGSERVICE`. When nothing does, libpq would use
/// its compiled-in socket directory, which for the bundled libpq is `/tmp`, not Debian's.
fn names_server(url: &str, env: &dyn Fn(&str) -> Option<String>) -> bool {
    const KEYS: [&str; 3] = ["host", "hostaddr", "service"];
    let in_env = ["PGHOST", "PGHOSTADDR", "PGSERVICE"]
        .iter()
        .any(|name| env(name).is_some_and(|v| !v.is_empty()));
    let in_url = match url
        .strip_prefix("postgresql://")
        .or_else(|| url.strip_prefix("postgres://"))
    {
        Some(rest) => {
            let (before_query, query) = rest.split_once('?').unwrap_or((rest, ""));
            let authority = before_query.split('/').next().unwrap_or_default();
            let hosts = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
            // Each item of a multi-host authority is host[:port] or [v6]:port; only ports means no host.
            let in_authority = hosts.split(',').any(|item| {
                item.starts_with('[') || !item.split(':').next().unwrap_or("").is_empty()
            });
            in_authority
                || query.split('&').any(|pair| {
                    pair.split_once('=')
                        .is_some_and(|(key, value)| KEYS.contains(&key) && !value.is_empty())
                })
        }
        None => keyword_pairs(url)
            .iter()
            .any(|(key, value)| KEYS.contains(&key.as_str()) && !value.is_empty()),
    };
    in_env || in_url
}

/// The `key=value` pairs of a libpq keyword connection string, read as libpq reads them: whitespace
/// around `=` allowed, values bare or in single quotes, a backslash escaping the next character. Reading
/// stops at the first malformed pair (libpq itself reports it when connecting).
fn keyword_pairs(text: &str) -> Vec<(String, String)> {
    let mut pairs = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let mut key = String::new();
        while let Some(c) = chars.next_if(|c| *c != '=' && !c.is_whitespace()) {
            key.push(c);
        }
        if key.is_empty() {
            return pairs;
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.next() != Some('=') {
            return pairs;
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let mut value = String::new();
        if chars.next_if_eq(&'\'').is_some() {
            loop {
                match chars.next() {
                    Some('\'') => break,
                    Some('\\') => value.extend(chars.next()),
                    Some(c) => value.push(c),
                    None => return pairs,
                }
            }
        } else {
            while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
                if c == '\\' {
                    value.extend(chars.next());
                } else {
                    value.push(c);
                }
            }
        }
        pairs.push((key, value));
    }
}

/// Opens a connection. A server that cannot be reached or refuses the login is [`Failure::Unreachable`]
/// (exit 5: a job may retry); a connection string libpq cannot parse is [`Failure::Invalid`] (exit 1:
/// retrying will not help).
pub fn connect(url: &str, config: &Config) -> Result<PgConnection> {
    PgConnection::establish(&conninfo(url, config)).map_err(|e| {
        let invalid = match &e {
            ConnectionError::InvalidCString(_) | ConnectionError::InvalidConnectionUrl(_) => true,
            ConnectionError::BadConnection(message) => is_conninfo_error(message),
            // Connected, then lost the session while diesel set it up: a failure of the server's.
            _ => false,
        };
        let reason = e
            .to_string()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        if is_pooler_refusal(&reason) {
            // Retrying cannot help: the pooler refuses what every connection sends.
            return Failure::Invalid(format!(
                "cannot connect to the database: {reason} (hint: a connection pooler such as PgBouncer \
                 refuses that start-up parameter, which the connection string (options=) or the \
                 environment (PGOPTIONS, PGDATESTYLE, PGTZ, PGGEQO) adds; remove them: molteniron sets its \
                 lock and statement timeouts inside each transaction)"
            ))
            .into();
        }
        if invalid {
            // libpq quotes the text it could not read; a string it cannot read may be a password
            // typed in the wrong place, or a URL whose password it cannot find: never echo it.
            let reason = if url.chars().count() >= 4 {
                reason.replace(url.trim(), "***")
            } else {
                reason
            };
            Failure::Invalid(format!("invalid database connection string: {reason}")).into()
        } else {
            Failure::Unreachable(format!("cannot connect to the database: {reason}")).into()
        }
    })
}

/// Runs `body` in one transaction under `timeouts`: `BEGIN` and a `SET LOCAL` of `lock_timeout` and
/// `statement_timeout` go to the server as one message (one round trip, as a plain `BEGIN` would), so the
/// settings hold for every statement of the transaction on whichever server connection a pooler runs it,
/// and end with it. Commits when `body` succeeds, rolls back when it fails (as diesel's own
/// `Connection::transaction`). Every explicit transaction of molteniron goes through here or
/// [`transaction_with`] (`tests/it/layers.rs` refuses `.transaction(` elsewhere). Not nestable: called
/// inside a transaction it fails with diesel's `AlreadyInTransaction` (no caller does; a savepoint
/// would keep the outer transaction's settings anyway).
pub fn transaction<T, E>(
    conn: &mut PgConnection,
    timeouts: Timeouts,
    body: impl FnOnce(&mut PgConnection) -> Result<T, E>,
) -> Result<T, E>
where
    E: From<DbError>,
{
    transaction_with(conn, timeouts, Mode::ReadWrite, body)
}

/// The kind of transaction [`transaction_with`] begins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `BEGIN`: read committed, may write.
    ReadWrite,
    /// `BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY`: one snapshot for several reads.
    Snapshot,
}

/// How long (ms) one of molteniron's transactions may sit idle between its statements before the server
/// ends the session (`idle_in_transaction_session_timeout`, set with its `BEGIN`). molteniron never
/// waits on anything of its own inside a transaction (no prompt, no network call, no sleep), so its
/// transactions are idle for microseconds; a process frozen inside one (stopped, its VM paused, its
/// network cut without a reset) would otherwise keep its locks (the line's, a request's row, a node's)
/// until its connection died, and stop the line or a release for everyone.
pub const IDLE_IN_TRANSACTION_MS: u32 = 5000;

/// The message that begins a transaction of `mode` under `timeouts`.
fn begin_sql(mode: Mode, timeouts: Timeouts) -> String {
    let begin = match mode {
        Mode::ReadWrite => "BEGIN",
        Mode::Snapshot => "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
    };
    format!(
        "{begin}; SET LOCAL lock_timeout = {}; SET LOCAL statement_timeout = {}; \
         SET LOCAL idle_in_transaction_session_timeout = {IDLE_IN_TRANSACTION_MS}",
        timeouts.lock_ms(),
        timeouts.statement_ms()
    )
}

/// [`transaction`] of the given `mode`.
pub fn transaction_with<T, E>(
    conn: &mut PgConnection,
    timeouts: Timeouts,
    mode: Mode,
    body: impl FnOnce(&mut PgConnection) -> Result<T, E>,
) -> Result<T, E>
where
    E: From<DbError>,
{
    use diesel::connection::{AnsiTransactionManager, TransactionManager};
    AnsiTransactionManager::begin_transaction_sql(conn, &begin_sql(mode, timeouts))?;
    match body(conn) {
        Ok(value) => {
            AnsiTransactionManager::commit_transaction(conn)?;
            Ok(value)
        }
        Err(error) => match AnsiTransactionManager::rollback_transaction(conn) {
            // A connection broken by the error itself: the error says more than the rollback.
            Ok(()) | Err(DbError::BrokenTransactionManager) => Err(error),
            Err(rollback) => Err(rollback.into()),
        },
    }
}

/// Applies every pending migration in one transaction, holding a transaction-scoped advisory lock so
/// that hosts running `migrate` at the same time take turns. Returns the versions applied (empty when
/// the schema was already current). A schema that is already current is left alone without diesel's
/// harness, which would first try to create its bookkeeping table: so any role that can read that table
/// (every role of `molteniron roles`) may run `migrate` where there is nothing to do.
pub fn migrate(conn: &mut PgConnection, timeouts: Timeouts) -> Result<Vec<String>> {
    // One transaction, and a lock that ends with it: through a transaction-pooling PgBouncer every
    // statement of a transaction runs on one server connection, so nothing can be left locked (a
    // session lock taken on one server connection and released on another would stay held), and a
    // migration that fails undoes every migration of this run (PostgreSQL's DDL is transactional).
    transaction(conn, timeouts, |conn| {
        diesel::sql_query("SELECT pg_advisory_xact_lock($1)")
            .bind::<diesel::sql_types::BigInt, _>(MIGRATE_LOCK_KEY)
            .execute(conn)
            .context("waiting for the migration lock")?;
        match is_behind(conn) {
            Ok(false) => Ok(Vec::new()),
            // Behind, or unknown (the bookkeeping table is unreadable): the harness decides, and says
            // why if it cannot.
            _ => conn
                .run_pending_migrations(MIGRATIONS)
                .map(|versions| versions.iter().map(ToString::to_string).collect())
                .map_err(anyhow::Error::from_boxed)
                .context("applying migrations"),
        }
    })
}

/// Explains a failed command: when a table or column is missing and migrations are pending, the real
/// problem is an unmigrated database, so say that (with the fix) instead of PostgreSQL's message.
pub fn explain(conn: &mut PgConnection, err: anyhow::Error) -> anyhow::Error {
    let missing_relation = err.chain().any(|cause| {
        cause
            .downcast_ref::<DbError>()
            .is_some_and(is_missing_relation)
    });
    if missing_relation && matches!(is_behind(conn), Ok(true)) {
        return Failure::Invalid(
            "the database has not been migrated to this molteniron's schema (hint: run `molteniron migrate`)"
                .to_owned(),
        )
        .into();
    }
    err
}

/// The versions of the migrations compiled into this binary, oldest first.
pub fn embedded_versions() -> Result<Vec<String>> {
    let known =
        MigrationSource::<Pg>::migrations(&MIGRATIONS).map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut versions: Vec<String> = known
        .iter()
        .map(|m| m.name().version().to_string())
        .collect();
    versions.sort();
    Ok(versions)
}

/// Whether this binary has migrations the database lacks. Read-only (unlike diesel's harness, which
/// creates its bookkeeping table), so it is safe on any connection and any role.
fn is_behind(conn: &mut PgConnection) -> Result<bool> {
    #[derive(QueryableByName)]
    struct Version {
        #[diesel(sql_type = diesel::sql_types::Text)]
        version: String,
    }
    #[derive(QueryableByName)]
    struct Exists {
        #[diesel(sql_type = diesel::sql_types::Bool)]
        exists: bool,
    }
    // Asked first, not found out from an error: inside migrate's transaction an error would abort it.
    let table: Exists =
        diesel::sql_query("SELECT to_regclass('__diesel_schema_migrations') IS NOT NULL AS exists")
            .get_result(conn)?;
    let applied: Vec<Version> = if table.exists {
        diesel::sql_query("SELECT version FROM __diesel_schema_migrations").load(conn)?
    } else {
        Vec::new() // nothing was ever applied
    };
    let known =
        MigrationSource::<Pg>::migrations(&MIGRATIONS).map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(known.iter().any(|m| {
        !applied
            .iter()
            .any(|a| a.version == m.name().version().to_string())
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    /// [`conninfo`] with the environment `env` and the application name `molteniron`.
    fn conninfo_in(url: &str, config: &Config, env: &dyn Fn(&str) -> Option<String>) -> String {
        super::conninfo_in(url, config, env, "molteniron")
    }

    #[test]
    fn conninfo_adds_settings_in_either_form_and_keeps_the_users() {
        let config = Config::default();
        assert_eq!(
            conninfo_in("", &config, &no_env),
            "fallback_application_name='molteniron' host='/var/run/postgresql,/tmp' connect_timeout='10'"
        );
        assert_eq!(
            conninfo_in("host=h dbname=d", &config, &no_env),
            "host=h dbname=d fallback_application_name='molteniron' connect_timeout='10'"
        );
        assert_eq!(
            conninfo_in("postgres://h/d", &config, &no_env),
            "postgres://h/d?fallback_application_name=molteniron&connect_timeout=10"
        );
        // The user's own options= goes to the server as written; molteniron adds none of its own.
        assert_eq!(
            conninfo_in(
                "postgresql://h/d?connect_timeout=3&options=-c%20x%3Dy",
                &config,
                &no_env
            ),
            "postgresql://h/d?connect_timeout=3&options=-c%20x%3Dy&fallback_application_name=molteniron"
        );
        assert_eq!(
            conninfo_in("postgres:///d?connect_timeout=3", &config, &no_env),
            "postgres:///d?connect_timeout=3&fallback_application_name=molteniron\
             &host=%2Fvar%2Frun%2Fpostgresql%2C%2Ftmp"
        );
    }

    #[test]
    fn a_transaction_begins_with_its_timeouts_in_the_same_message() {
        let timeouts = Timeouts {
            lock: std::time::Duration::from_millis(1500),
            statement: std::time::Duration::from_secs(60),
        };
        assert_eq!(
            begin_sql(Mode::ReadWrite, timeouts),
            "BEGIN; SET LOCAL lock_timeout = 1500; SET LOCAL statement_timeout = 60000; \
             SET LOCAL idle_in_transaction_session_timeout = 5000"
        );
        assert_eq!(
            begin_sql(Mode::Snapshot, timeouts),
            "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SET LOCAL lock_timeout = 1500; \
             SET LOCAL statement_timeout = 60000; SET LOCAL idle_in_transaction_session_timeout = 5000"
        );
        // 0 would switch a timeout off: the shortest is 1 ms.
        let zero = Timeouts {
            lock: std::time::Duration::ZERO,
            statement: std::time::Duration::from_micros(10),
        };
        assert!(
            begin_sql(Mode::ReadWrite, zero)
                .contains("lock_timeout = 1; SET LOCAL statement_timeout = 1;")
        );
    }

    #[test]
    fn only_a_key_the_string_sets_replaces_ours() {
        assert!(sets("host=h application_name='x y'", "application_name"));
        assert!(sets("host=h connect_timeout = 3", "connect_timeout"));
        assert!(sets("postgres://h/d?connect_timeout=3", "connect_timeout"));
        assert!(!sets("dbname=connect_timeout host=h", "connect_timeout"));
        assert!(!sets(
            "postgres://u:connect_timeout=x@h/connect_timeout",
            "connect_timeout"
        ));
        assert!(!sets(
            "host=h password='connect_timeout=1'",
            "connect_timeout"
        ));
    }

    #[test]
    fn a_server_named_in_the_string_is_kept() {
        for url in [
            "host=/run/custom",
            "host = db.example.com dbname=d",
            "dbname=d hostaddr=10.0.0.1",
            "service=pool",
            "user=u host='/dir with space'",
            "host=h1,h2 port=1,2",
            // libpq reads a value after the blanks that follow `=`: this host is "dbname=d".
            "host= dbname=d",
            "postgres://db.example.com/d",
            "postgresql://u:p@h:5433/d",
            "postgres://[::1]:5433/d",
            "postgres://:5433,h2:5434/d",
            "postgres:///d?host=/run/custom",
            "postgres://u@/d?hostaddr=127.0.0.1",
            "postgres:///d?service=pool",
        ] {
            assert!(names_server(url, &no_env), "{url}");
        }
    }

    #[test]
    fn no_server_named_anywhere_means_the_default_socket_dirs() {
        for url in [
            "",
            "dbname=d user=u",
            "dbname=d host=",
            "host='' dbname=d",
            "dbname='host=h' application_name=x\\ host=y",
            "options='-c search_path=host'",
            "postgres://",
            "postgres:///d",
            "postgresql://u@/d",
            "postgres://u:p@:5433/d",
            "postgres:///d?host=&sslmode=disable",
            "postgres:///d?ghost=h",
        ] {
            assert!(!names_server(url, &no_env), "{url}");
        }
    }

    #[test]
    fn a_server_named_by_the_environment_is_kept() {
        for name in ["PGHOST", "PGHOSTADDR", "PGSERVICE"] {
            let env = |n: &str| (n == name).then(|| "/run/custom".to_owned());
            assert!(names_server("dbname=d", &env), "{name}");
            assert!(
                !conninfo_in("", &Config::default(), &env).contains("host="),
                "{name}"
            );
        }
        let empty = |n: &str| (n == "PGHOST").then(String::new);
        assert!(!names_server("", &empty), "an empty PGHOST names nothing");
    }

    #[test]
    fn keyword_pairs_read_quotes_and_escapes_as_libpq_does() {
        let pairs = keyword_pairs(r"a=1  b = 'x y' c='it\'s' d=p\ q e=");
        let want = [
            ("a", "1"),
            ("b", "x y"),
            ("c", "it's"),
            ("d", "p q"),
            ("e", ""),
        ];
        assert_eq!(
            pairs,
            want.map(|(k, v)| (k.to_owned(), v.to_owned())).to_vec()
        );
    }

    #[test]
    fn the_application_name_is_quoted_or_encoded_for_either_form() {
        let config = Config::default();
        let name = application_name_for("o'k\\", "h");
        assert_eq!(name, "molteniron o'k\\@h");
        let keywords = super::conninfo_in("", &config, &no_env, &name);
        assert!(
            keywords.starts_with("fallback_application_name='molteniron o\\'k\\\\@h' "),
            "{keywords}"
        );
        let uri = super::conninfo_in("postgres://h", &config, &no_env, &name);
        assert!(
            uri.starts_with("postgres://h?fallback_application_name=molteniron%20o%27k%5C%40h&"),
            "{uri}"
        );
    }

    #[test]
    fn the_application_name_is_printable_ascii_within_63_bytes() {
        assert_eq!(
            application_name_for("ci", "build-7.example.org"),
            "molteniron ci@build-7.example.org"
        );
        assert_eq!(
            application_name_for("j\u{f6}rg", "h\tx"),
            "molteniron j?rg@h?x"
        );
        let long = application_name_for("u", &"h".repeat(100));
        assert_eq!(long.len(), 63);
        assert!(long.starts_with("molteniron u@hhh"), "{long}");
        let name = application_name();
        assert!(
            name.starts_with("molteniron ") && name.contains('@'),
            "{name}"
        );
        assert!(name.len() <= 63, "{name}");
    }
}
