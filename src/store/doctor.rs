//! The read-only queries of `molteniron doctor`: what the server and this session are, as the server
//! reports them. Each is one statement on the catalogs or settings, runs for any role (none needs a
//! privilege beyond CONNECT, and none touches the pool's rows), and changes nothing.

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool, Integer, Nullable, Text};

/// The server's version: `server_version` (`15.8 (Debian 15.8-0+deb12u1)`) and `server_version_num`.
#[derive(Debug, QueryableByName)]
pub struct ServerVersion {
    #[diesel(sql_type = Text)]
    pub version: String,
    #[diesel(sql_type = Integer)]
    pub num: i32,
}

/// The server's version.
pub fn server_version(conn: &mut PgConnection) -> QueryResult<ServerVersion> {
    diesel::sql_query(
        "SELECT current_setting('server_version') AS version, \
                current_setting('server_version_num')::int AS num",
    )
    .get_result(conn)
}

/// The migration versions recorded as applied, `None` when the bookkeeping table does not exist (nothing
/// was ever migrated). Asked first, not found out from an error, as `db::migrate` does.
pub fn applied_migrations(conn: &mut PgConnection) -> QueryResult<Option<Vec<String>>> {
    #[derive(QueryableByName)]
    struct Exists {
        #[diesel(sql_type = Bool)]
        exists: bool,
    }
    #[derive(QueryableByName)]
    struct Version {
        #[diesel(sql_type = Text)]
        version: String,
    }
    let table: Exists =
        diesel::sql_query("SELECT to_regclass('__diesel_schema_migrations') IS NOT NULL AS exists")
            .get_result(conn)?;
    if !table.exists {
        return Ok(None);
    }
    let rows: Vec<Version> =
        diesel::sql_query("SELECT version FROM __diesel_schema_migrations ORDER BY version")
            .load(conn)?;
    Ok(Some(rows.into_iter().map(|r| r.version).collect()))
}

/// The session's `lock_timeout` and `statement_timeout` in milliseconds (0: none), as in effect now, and
/// the role the session logged in as (whose defaults apply outside a transaction).
#[derive(Debug, QueryableByName)]
pub struct Timeouts {
    #[diesel(sql_type = Text)]
    pub login: String,
    #[diesel(sql_type = BigInt)]
    pub lock_timeout_ms: i64,
    #[diesel(sql_type = BigInt)]
    pub statement_timeout_ms: i64,
}

/// The timeouts in effect in this session (pg_settings reports both in milliseconds).
pub fn timeouts(conn: &mut PgConnection) -> QueryResult<Timeouts> {
    diesel::sql_query(
        "SELECT session_user::text AS login, \
                (SELECT setting::bigint FROM pg_settings WHERE name = 'lock_timeout') AS lock_timeout_ms, \
                (SELECT setting::bigint FROM pg_settings WHERE name = 'statement_timeout') \
                  AS statement_timeout_ms",
    )
    .get_result(conn)
}

/// What the session's role may do to molteniron's tables. Only meaningful once `nodes` and `events`
/// exist (see [`applied_migrations`]).
#[derive(Debug, QueryableByName)]
pub struct Privileges {
    #[diesel(sql_type = Text)]
    pub user: String,
    #[diesel(sql_type = Bool)]
    pub superuser: bool,
    /// May add nodes (what `molteniron roles`' admin role may).
    #[diesel(sql_type = Bool)]
    pub admin: bool,
    /// May read credentials and change a node's state (the job role).
    #[diesel(sql_type = Bool)]
    pub job: bool,
    /// May read the events and the masked view (the read-only role).
    #[diesel(sql_type = Bool)]
    pub readonly: bool,
}

/// The session role's privileges, by the same tests `sql/role_holders.sql` applies to group roles.
pub fn privileges(conn: &mut PgConnection) -> QueryResult<Privileges> {
    diesel::sql_query(
        "SELECT current_user::text AS user, \
                (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) AS superuser, \
                has_table_privilege('nodes', 'INSERT') AS admin, \
                has_column_privilege('nodes', 'driver_info', 'SELECT') \
                  AND has_column_privilege('nodes', 'state', 'UPDATE') AS job, \
                has_table_privilege('events', 'SELECT') \
                  AND has_table_privilege('nodes_public', 'SELECT') AS readonly",
    )
    .get_result(conn)
}

/// The server's replication as this session can see it.
#[derive(Debug, QueryableByName)]
pub struct Replication {
    /// The server is a standby (read-only).
    #[diesel(sql_type = Bool)]
    pub in_recovery: bool,
    #[diesel(sql_type = Text)]
    pub synchronous_standby_names: String,
    #[diesel(sql_type = Text)]
    pub synchronous_commit: String,
    /// Standbys connected (pg_stat_replication rows).
    #[diesel(sql_type = BigInt)]
    pub standbys: i64,
    /// Of those, the ones confirming commits (`sync_state` sync or quorum).
    #[diesel(sql_type = BigInt)]
    pub synchronous: i64,
    /// Of those, the ones whose state this role may not see (it needs pg_read_all_stats).
    #[diesel(sql_type = BigInt)]
    pub hidden: i64,
}

/// Whether this server is a primary and how it replicates.
pub fn replication(conn: &mut PgConnection) -> QueryResult<Replication> {
    diesel::sql_query(
        "SELECT pg_is_in_recovery() AS in_recovery, \
                current_setting('synchronous_standby_names') AS synchronous_standby_names, \
                current_setting('synchronous_commit') AS synchronous_commit, \
                count(r.pid) AS standbys, \
                count(r.pid) FILTER (WHERE r.sync_state IN ('sync', 'quorum')) AS synchronous, \
                count(r.pid) FILTER (WHERE r.sync_state IS NULL) AS hidden \
         FROM (SELECT 1) AS one LEFT JOIN pg_stat_replication AS r ON true",
    )
    .get_result(conn)
}

/// How this session reaches the server: the client address (`None` over a Unix socket) and, when
/// encrypted, the TLS version.
#[derive(Debug, QueryableByName)]
pub struct Transport {
    #[diesel(sql_type = Nullable<Text>)]
    pub client_addr: Option<String>,
    #[diesel(sql_type = Bool)]
    pub loopback: bool,
    #[diesel(sql_type = Nullable<Text>)]
    pub tls_version: Option<String>,
}

/// This session's transport, from `inet_client_addr()` and `pg_stat_ssl`.
pub fn transport(conn: &mut PgConnection) -> QueryResult<Transport> {
    diesel::sql_query(
        "SELECT host(inet_client_addr()) AS client_addr, \
                coalesce(inet_client_addr() << '127.0.0.0/8'::inet \
                         OR inet_client_addr() = '::1'::inet, false) AS loopback, \
                (SELECT version FROM pg_stat_ssl WHERE pid = pg_backend_pid() AND ssl) AS tls_version",
    )
    .get_result(conn)
}

/// Autovacuum as it applies to `nodes`: the server's switch, the table's own options, and its dead rows.
#[derive(Debug, QueryableByName)]
pub struct Autovacuum {
    /// The server's `autovacuum` setting is on.
    #[diesel(sql_type = Bool)]
    pub server_on: bool,
    /// The table's storage options (`autovacuum_vacuum_threshold=200`, ...), empty when none are set.
    #[diesel(sql_type = Text)]
    pub options: String,
    #[diesel(sql_type = BigInt)]
    pub dead_rows: i64,
    #[diesel(sql_type = BigInt)]
    pub live_rows: i64,
}

/// Autovacuum's settings for `nodes` (which must exist).
pub fn autovacuum(conn: &mut PgConnection) -> QueryResult<Autovacuum> {
    diesel::sql_query(
        "SELECT current_setting('autovacuum')::bool AS server_on, \
                coalesce(array_to_string(c.reloptions, ', '), '') AS options, \
                coalesce(s.n_dead_tup, 0) AS dead_rows, coalesce(s.n_live_tup, 0) AS live_rows \
         FROM pg_class AS c LEFT JOIN pg_stat_user_tables AS s ON s.relid = c.oid \
         WHERE c.oid = 'nodes'::regclass",
    )
    .get_result(conn)
}
