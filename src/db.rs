//! Connecting to PostgreSQL and the embedded migrations. What a database error means for the user is
//! `error`'s business.
//!
//! Connections are opened lazily by the commands that need one. Session settings go into the connection
//! string (libpq sends them in the start-up packet), so they cost no extra round trip.

use anyhow::{Context, Result};
use diesel::migration::MigrationSource;
use diesel::pg::Pg;
use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::result::{ConnectionError, Error as DbError};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use crate::config::Config;
use crate::error::{Failure, is_missing_relation};

/// The schema migrations, compiled into the binary.
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");

/// Key of the advisory lock that serialises concurrent `migrate` runs (any constant unique to molteniron).
/// `roles --apply` takes it too, so it never runs in the middle of a migration.
pub const MIGRATE_LOCK_KEY: i64 = 0x6d6f_6c74_656e_6972; // "moltenir"

/// Adds molteniron's session settings to a connection string (URL or keyword form; empty means libpq's
/// defaults): application name, connect timeout, and lock and statement timeouts as server options.
/// Settings the user wrote themselves win (a user-supplied `options` replaces our timeouts).
pub fn conninfo(url: &str, config: &Config) -> String {
    let millis = |d: std::time::Duration| d.as_millis().max(1);
    let mut params = vec![("fallback_application_name", "molteniron".to_owned())];
    if !url.contains("connect_timeout") {
        params.push((
            "connect_timeout",
            config.connect_timeout.as_secs().max(1).to_string(),
        ));
    }
    if !url.contains("options") {
        let options = format!(
            "-c lock_timeout={} -c statement_timeout={}",
            millis(config.lock_timeout),
            millis(config.statement_timeout)
        );
        params.push(("options", options));
    }
    let is_uri = url.starts_with("postgres://") || url.starts_with("postgresql://");
    let mut out = url.to_owned();
    for (key, value) in params {
        if is_uri {
            out.push(if out.contains('?') { '&' } else { '?' });
            out.push_str(&format!(
                "{key}={}",
                value.replace(' ', "%20").replace('=', "%3D")
            ));
        } else {
            if !out.is_empty() {
                out.push(' ');
            }
            out.push_str(&format!("{key}='{value}'"));
        }
    }
    out
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
        if invalid {
            Failure::Invalid(format!("invalid database connection string: {reason}")).into()
        } else {
            Failure::Unreachable(format!("cannot connect to the database: {reason}")).into()
        }
    })
}

/// Whether libpq refused the connection string itself (its parse errors) rather than failing to connect.
fn is_conninfo_error(message: &str) -> bool {
    let message = message.trim_start();
    [
        "invalid ",
        "missing ",
        "extra key/value",
        "could not match",
        "unexpected character",
        "forbidden value",
    ]
    .iter()
    .any(|start| message.starts_with(start))
        || ["unterminated quoted string", " in URI", "percent-encoded"]
            .iter()
            .any(|m| message.contains(m))
}

/// Applies every pending migration, holding an advisory lock so that hosts running `migrate` at the same
/// time take turns. Returns the versions applied (empty when the schema was already current). A schema
/// that is already current is left alone without diesel's harness, which would first try to create its
/// bookkeeping table: so any role that can read that table (every role of `molteniron roles`) may run
/// `migrate` where there is nothing to do.
pub fn migrate(conn: &mut PgConnection) -> Result<Vec<String>> {
    diesel::sql_query("SELECT pg_advisory_lock($1)")
        .bind::<diesel::sql_types::BigInt, _>(MIGRATE_LOCK_KEY)
        .execute(conn)
        .context("waiting for the migration lock")?;
    let applied = match is_behind(conn) {
        Ok(false) => Ok(Vec::new()),
        // Behind, or unknown (the bookkeeping table is unreadable): the harness decides, and says why if
        // it cannot.
        _ => conn
            .run_pending_migrations(MIGRATIONS)
            .map(|versions| versions.iter().map(ToString::to_string).collect())
            .map_err(anyhow::Error::from_boxed),
    };
    let unlocked = diesel::sql_query("SELECT pg_advisory_unlock($1)")
        .bind::<diesel::sql_types::BigInt, _>(MIGRATE_LOCK_KEY)
        .execute(conn);
    let applied = applied.context("applying migrations")?;
    unlocked.context("releasing the migration lock")?;
    Ok(applied)
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

/// Whether this binary has migrations the database lacks. Read-only (unlike diesel's harness, which
/// creates its bookkeeping table), so it is safe on any connection and any role.
fn is_behind(conn: &mut PgConnection) -> Result<bool> {
    #[derive(QueryableByName)]
    struct Version {
        #[diesel(sql_type = diesel::sql_types::Text)]
        version: String,
    }
    let applied: Vec<Version> =
        match diesel::sql_query("SELECT version FROM __diesel_schema_migrations").load(conn) {
            Ok(applied) => applied,
            // A missing bookkeeping table means nothing was ever applied.
            Err(e) if is_missing_relation(&e) => Vec::new(),
            Err(e) => return Err(e.into()),
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

    #[test]
    fn conninfo_adds_settings_in_either_form_and_keeps_the_users() {
        let config = Config::default();
        let options = "options='-c lock_timeout=10000 -c statement_timeout=60000'";
        assert_eq!(
            conninfo("", &config),
            format!("fallback_application_name='molteniron' connect_timeout='10' {options}")
        );
        assert_eq!(
            conninfo("host=h dbname=d", &config),
            format!(
                "host=h dbname=d fallback_application_name='molteniron' connect_timeout='10' {options}"
            )
        );
        assert_eq!(
            conninfo("postgres://h/d", &config),
            "postgres://h/d?fallback_application_name=molteniron&connect_timeout=10\
             &options=-c%20lock_timeout%3D10000%20-c%20statement_timeout%3D60000"
        );
        assert_eq!(
            conninfo(
                "postgresql://h/d?connect_timeout=3&options=-c%20x%3Dy",
                &config
            ),
            "postgresql://h/d?connect_timeout=3&options=-c%20x%3Dy&fallback_application_name=molteniron"
        );
    }
}
