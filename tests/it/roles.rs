//! `molteniron roles`: the SQL it prints, and what a login role in each group can and cannot do, proven
//! by logging in as that role. Roles are cluster-wide, so every test uses its own prefix and drops its
//! roles when it ends; roles left by a test process that died are dropped by the next run.

use std::path::Path;
use std::sync::Once;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::Text;
use serde_json::Value;

use crate::support::{TestDb, admin, assert_clean, count, molteniron_cmd};

/// Prefix of every role these tests create: `mi_t<pid>_<n>`.
const ROLE_PREFIX: &str = "mi_t";
/// The login roles' password: unused by the trust authentication of scripts/test's server, needed by a
/// server that asks for one.
const PASSWORD: &str = "roles-test-pw";
/// The migration that creates the view nodes_public.
const VIEW_MIGRATION: &str = "20261122000001";

static COUNTER: AtomicUsize = AtomicUsize::new(0);
static SWEEP: Once = Once::new();

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Who {
    Admin,
    Job,
    Readonly,
    /// A login that owns the database and its tables instead of molteniron's superuser (in no group).
    Owner,
}

const EVERYONE: [Who; 3] = [Who::Admin, Who::Job, Who::Readonly];

impl Who {
    fn suffix(self) -> &'static str {
        match self {
            Who::Admin => "admin",
            Who::Job => "job",
            Who::Readonly => "readonly",
            Who::Owner => "owner",
        }
    }
}

/// The three group roles under a prefix of their own and (once applied) a login role in each group;
/// every one of them is dropped, with its privileges and objects in `dbs`, when the test ends, passing
/// or not.
pub(crate) struct Roles<'a> {
    dbs: Vec<&'a TestDb>,
    prefix: String,
}

impl<'a> Roles<'a> {
    /// A new prefix for `dbs`; nothing is created yet.
    fn new(dbs: Vec<&'a TestDb>) -> Roles<'a> {
        SWEEP.call_once(sweep_stale_roles);
        let prefix = format!(
            "{ROLE_PREFIX}{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        );
        Roles { dbs, prefix }
    }

    /// `roles --apply` on `db`, then a login role in each group.
    pub(crate) fn apply(db: &'a TestDb) -> Roles<'a> {
        let roles = Roles::new(vec![db]);
        let out = db.ok(&["roles", "--apply", "--prefix", &roles.prefix]);
        assert!(out.is_empty(), "--apply prints nothing on stdout: {out}");
        roles.create_logins();
        roles
    }

    fn create_logins(&self) {
        let mut conn = admin();
        for who in EVERYONE {
            diesel::sql_query(format!(
                "CREATE ROLE {} LOGIN PASSWORD '{PASSWORD}' IN ROLE {}",
                self.login(who),
                self.group(who)
            ))
            .execute(&mut conn)
            .unwrap();
        }
    }

    fn group(&self, who: Who) -> String {
        format!("{}_{}", self.prefix, who.suffix())
    }

    fn login(&self, who: Who) -> String {
        match who {
            Who::Owner => self.group(who),
            _ => format!("{}_login", self.group(who)),
        }
    }

    fn names(&self) -> Vec<String> {
        let logins = EVERYONE.map(|who| self.login(who));
        let groups = EVERYONE.map(|who| self.group(who));
        logins
            .into_iter()
            .chain(groups)
            .chain([self.login(Who::Owner)])
            .collect()
    }

    /// The first database's connection string, logging in as `who`'s login role.
    fn url(&self, who: Who) -> String {
        let url = self.dbs[0].url();
        let user = self.login(who);
        if url.contains("://") {
            format!("{url}&user={user}&password={PASSWORD}")
        } else {
            format!("{url} user={user} password={PASSWORD}")
        }
    }

    pub(crate) fn conn(&self, who: Who) -> PgConnection {
        PgConnection::establish(&self.url(who)).unwrap()
    }

    fn args(&self, who: Who, args: &[&str]) -> Vec<String> {
        ["--database-url", &self.url(who)]
            .iter()
            .chain(args)
            .map(|s| s.to_string())
            .collect()
    }

    /// `molteniron ARGS` as `who`: (exit code, stdout, stderr).
    fn run(&self, who: Who, args: &[&str]) -> (i32, String, String) {
        let args = self.args(who, args);
        self.dbs[0].run(&args.iter().map(String::as_str).collect::<Vec<_>>())
    }

    /// `molteniron ARGS` as `who`, asserting exit 0; returns stdout.
    pub(crate) fn ok(&self, who: Who, args: &[&str]) -> String {
        let args = self.args(who, args);
        self.dbs[0].ok(&args.iter().map(String::as_str).collect::<Vec<_>>())
    }

    /// `molteniron ARGS` as `who`, asserting exit `code` and one error line; returns stderr.
    fn fails(&self, who: Who, args: &[&str], code: i32) -> String {
        let args = self.args(who, args);
        self.dbs[0].fails(&args.iter().map(String::as_str).collect::<Vec<_>>(), code)
    }

    /// `molteniron ARGS` as `who`, asserting that the server refused it: exit 1, PostgreSQL's
    /// "permission denied" and the group role that would have let it run (`needs`) in one error line, no
    /// panic.
    fn denied(&self, who: Who, args: &[&str], needs: Who) {
        let err = self.fails(who, args, 1);
        assert!(err.contains("permission denied"), "{who:?} {args:?}: {err}");
        let wanted = format!("this needs {}", self.group(needs));
        assert!(err.contains(&wanted), "{who:?} {args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{err}");
    }
}

impl Drop for Roles<'_> {
    fn drop(&mut self) {
        // Errors are ignored: a role that was never created has nothing to drop. REASSIGN takes back the
        // database itself, which DROP OWNED leaves alone.
        for db in &self.dbs {
            let mut conn = db.conn();
            for name in self.names() {
                let _ = conn.batch_execute(&format!(
                    "REASSIGN OWNED BY {name} TO CURRENT_USER; DROP OWNED BY {name}"
                ));
            }
        }
        let mut conn = admin();
        for name in self.names() {
            let _ = conn.batch_execute(&format!("DROP ROLE IF EXISTS {name}"));
        }
    }
}

/// Drops the roles of test processes that died before dropping them (their databases are gone too).
fn sweep_stale_roles() {
    let mut conn = admin();
    let names = texts(
        &mut conn,
        &format!("SELECT rolname AS t FROM pg_roles WHERE starts_with(rolname, '{ROLE_PREFIX}')"),
    );
    for name in names.unwrap() {
        let pid = name[ROLE_PREFIX.len()..]
            .split('_')
            .next()
            .and_then(|pid| pid.parse::<u32>().ok());
        if pid.is_some_and(|pid| !Path::new(&format!("/proc/{pid}")).exists()) {
            let _ = conn.batch_execute(&format!("DROP ROLE IF EXISTS {name}"));
        }
    }
}

/// The rows of a query returning one text column `t`.
pub(crate) fn texts(conn: &mut PgConnection, sql: &str) -> QueryResult<Vec<String>> {
    #[derive(QueryableByName)]
    struct T {
        #[diesel(sql_type = Text)]
        t: String,
    }
    let rows: Vec<T> = diesel::sql_query(sql).load(conn)?;
    Ok(rows.into_iter().map(|row| row.t).collect())
}

/// Asserts that `sql` fails with PostgreSQL's "permission denied".
fn refused(conn: &mut PgConnection, sql: &str) {
    match conn.batch_execute(sql) {
        Ok(()) => panic!("{sql}: allowed"),
        Err(e) => assert!(e.to_string().contains("permission denied"), "{sql}: {e}"),
    }
}

/// Every privilege the three groups under `prefix` hold on molteniron's objects in `conn`'s database, one
/// line each (`job nodes.state UPDATE`), with the prefix left out so two prefixes compare.
fn privileges(conn: &mut PgConnection, prefix: &str) -> Vec<String> {
    let sql = format!(
        "WITH groups (kind) AS (VALUES ('admin'), ('job'), ('readonly')),
              grantee AS (SELECT kind, '{prefix}_' || kind AS role FROM groups)
         SELECT kind || ' ' || c.relname || '.' || a.attname || ' ' || p.privilege AS t
         FROM grantee, pg_class AS c
         JOIN pg_attribute AS a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
         CROSS JOIN (VALUES ('SELECT'), ('INSERT'), ('UPDATE'), ('REFERENCES')) AS p (privilege)
         WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'v')
           AND has_column_privilege(role, c.oid, a.attnum, p.privilege)
         UNION ALL
         SELECT kind || ' ' || c.relname || ' ' || p.privilege
         FROM grantee, pg_class AS c
         CROSS JOIN (VALUES ('DELETE'), ('TRUNCATE'), ('TRIGGER'), ('USAGE'), ('UPDATE')) AS p (privilege)
         WHERE c.relnamespace = 'public'::regnamespace
           AND ((c.relkind IN ('r', 'v') AND p.privilege IN ('DELETE', 'TRUNCATE', 'TRIGGER')
                 AND has_table_privilege(role, c.oid, p.privilege))
             OR (c.relkind = 'S' AND p.privilege IN ('USAGE', 'UPDATE')
                 AND has_sequence_privilege(role, c.oid, p.privilege)))
         UNION ALL
         SELECT kind || ' schema ' || p.privilege
         FROM grantee CROSS JOIN (VALUES ('USAGE'), ('CREATE')) AS p (privilege)
         WHERE has_schema_privilege(role, 'public', p.privilege)
         UNION ALL
         SELECT kind || ' mask_passwords EXECUTE' FROM grantee
         WHERE has_function_privilege(role, 'mask_passwords(jsonb)', 'EXECUTE')
         ORDER BY 1"
    );
    texts(conn, &sql).unwrap()
}

fn dbname(db: &TestDb) -> String {
    let url = db.url();
    let start = url.rfind("dbname=").unwrap() + "dbname=".len();
    url[start..].split([' ', '&']).next().unwrap().to_owned()
}

#[test]
fn roles_prints_the_sql_without_connecting() {
    // Nothing listens here: printing must not try.
    let unreachable = "host=/nonexistent port=1";
    let out = molteniron_cmd()
        .args(["--database-url", unreachable, "roles"])
        .output()
        .unwrap();
    let sql = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success(), "{sql}");
    assert!(out.stderr.is_empty());
    assert!(
        sql.starts_with("BEGIN;\n") && sql.ends_with("\nCOMMIT;\n"),
        "{sql}"
    );
    for expected in [
        "('molteniron_admin', ",
        "('molteniron_job', ",
        "('molteniron_readonly', ",
        "CREATE ROLE %I NOLOGIN",
        "GRANT molteniron_job TO ci_jenkins",
        "GRANT UPDATE (state, owner, allocated_at, lease_expires_at, updated_at) ON nodes TO molteniron_job;",
    ] {
        assert!(sql.contains(expected), "lacks {expected:?}:\n{sql}");
    }

    let out = molteniron_cmd()
        .args(["roles", "--prefix", "ci_pool"])
        .output()
        .unwrap();
    let sql = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success());
    assert!(sql.contains(
        "GRANT SELECT ON events, requests, nodes_public, __diesel_schema_migrations TO ci_pool_readonly;"
    ));
    assert!(!sql.contains("molteniron_admin"), "{sql}");

    for bad in ["Ops", "ci-pool", "x;drop role y", "9ci", &"p".repeat(55)] {
        let out = molteniron_cmd()
            .args(["roles", "--prefix", bad])
            .output()
            .unwrap();
        let err = String::from_utf8(out.stderr).unwrap();
        assert_eq!(out.status.code(), Some(1), "{bad}: {err}");
        assert!(err.starts_with("molteniron: error: --prefix"), "{err}");
        assert!(out.stdout.is_empty());
        assert_clean(&err);
    }
    molteniron_cmd()
        .args(["roles", "-o", "json"])
        .assert()
        .code(2);
    // --apply is what connects.
    molteniron_cmd()
        .args(["--database-url", unreachable, "roles", "--apply"])
        .assert()
        .code(5);
}

#[test]
fn the_printed_sql_and_apply_grant_the_same_and_a_rerun_resets_privileges() {
    let db = TestDb::new();
    let printed = Roles::new(vec![&db]);
    let applied = Roles::new(vec![&db]);

    // What an operator does with psql: run the printed script as is.
    let sql = db.ok(&["roles", "--prefix", &printed.prefix]);
    db.conn().batch_execute(&sql).unwrap();
    db.ok(&["roles", "--apply", "--prefix", &applied.prefix]);
    let mut conn = db.conn();
    let expected = privileges(&mut conn, &printed.prefix);
    assert_eq!(privileges(&mut conn, &applied.prefix), expected);

    // The whole privilege set, pinned.
    let of = |kind: &str| -> Vec<&str> {
        expected
            .iter()
            .filter_map(|line| line.strip_prefix(kind)?.strip_prefix(' '))
            .collect()
    };
    let readonly_nodes: Vec<&str> = of("readonly")
        .into_iter()
        .filter(|line| line.starts_with("nodes."))
        .collect();
    for column in ["driver_info", "properties", "ironic_fields"] {
        assert!(
            !readonly_nodes.iter().any(|line| line.contains(column)),
            "{readonly_nodes:?}"
        );
    }
    assert_eq!(readonly_nodes.len(), 14, "{readonly_nodes:?}");
    // Left out: what PUBLIC holds too (EXECUTE on functions; CREATE in schema public before
    // PostgreSQL 15).
    let job_writes: Vec<&str> = of("job")
        .into_iter()
        .filter(|line| {
            !line.ends_with(" SELECT")
                && !line.starts_with("schema ")
                && !line.ends_with(" EXECUTE")
        })
        .collect();
    assert_eq!(
        job_writes,
        [
            "events.action INSERT",
            "events.detail INSERT",
            "events.node_id INSERT",
            "events.node_name INSERT",
            "events.owner INSERT",
            "nodes.allocated_at UPDATE",
            "nodes.lease_expires_at UPDATE",
            "nodes.owner UPDATE",
            "nodes.state UPDATE",
            "nodes.updated_at UPDATE",
            // waiting in line: join, heartbeat, be granted, pick up or withdraw; never change the request
            "requests DELETE",
            "requests.count INSERT",
            "requests.granted_at UPDATE",
            "requests.heartbeat_at UPDATE",
            "requests.lease_secs INSERT",
            "requests.owner INSERT",
            "requests.priority INSERT",
            "requests.request INSERT",
            "requests.stale_after_secs INSERT",
            "requests.stale_after_secs UPDATE",
            "requests.state UPDATE",
            "requests.waiter INSERT",
        ]
    );
    for line in [
        "schema CREATE",
        "nodes DELETE",
        "events TRUNCATE",
        "__diesel_schema_migrations.version INSERT",
        "nodes_id_seq UPDATE",
    ] {
        assert!(of("admin").contains(&line), "admin lacks {line}");
    }

    // Roles cannot log in and say what they are for.
    let role = &applied.group(Who::Job);
    let described = texts(
        &mut conn,
        &format!(
            "SELECT shobj_description(oid, 'pg_authid') AS t FROM pg_roles
             WHERE rolname = '{role}' AND NOT rolcanlogin"
        ),
    )
    .unwrap();
    assert_eq!(described.len(), 1);
    assert!(described[0].contains("allocate"), "{described:?}");

    // Privileges granted by hand do not survive a re-run; the re-run changes nothing else.
    let (job, readonly) = (applied.group(Who::Job), applied.group(Who::Readonly));
    conn.batch_execute(&format!(
        "GRANT INSERT, DELETE ON nodes TO {job};
         GRANT SELECT (driver_info) ON nodes TO {readonly};
         GRANT UPDATE ON events TO {readonly};"
    ))
    .unwrap();
    assert_ne!(privileges(&mut conn, &applied.prefix), expected);
    db.ok(&["roles", "--apply", "--prefix", &applied.prefix]);
    assert_eq!(privileges(&mut conn, &applied.prefix), expected);
}

#[test]
fn the_job_role_runs_jobs_and_cannot_change_the_inventory_or_the_history() {
    let db = TestDb::new();
    db.seed("a", 4, "default");
    let roles = Roles::apply(&db);
    let job = Who::Job;

    let out = roles.ok(job, &["allocate", "j1", "2", "--show-secrets"]);
    assert!(
        out.contains("a0") && out.contains("pw0") && out.contains("pw1"),
        "{out}"
    );
    assert_eq!(
        roles.ok(job, &["get-field", "j1", "ipmi_password"]),
        "pw0\npw1\n"
    );
    assert!(
        roles
            .ok(job, &["renew", "j1", "--lease", "2h"])
            .contains("a1")
    );
    assert!(roles.ok(job, &["status", "--owner", "j1"]).contains("a1"));
    assert!(
        roles
            .ok(job, &["history", "--owner", "j1"])
            .contains("renew")
    );
    assert!(
        roles
            .ok(job, &["release", "j1", "--node", "a0"])
            .contains("a0")
    );
    assert!(roles.ok(job, &["release", "j1"]).contains("a1"));

    // reap, from cron, needs no more than release.
    roles.ok(job, &["allocate", "j2"]);
    db.conn()
        .batch_execute(
            "UPDATE nodes SET lease_expires_at = now() - interval '1 minute' WHERE owner = 'j2'",
        )
        .unwrap();
    let (code, out, err) = roles.run(job, &["reap"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("j2") && err.contains("reaped 1 node(s)"),
        "{out} {err}"
    );

    // Every event the job wrote names its login as the actor, which it cannot choose (below).
    let login = roles.login(job);
    assert_eq!(
        count(
            &mut db.conn(),
            &format!(
                "SELECT count(*) AS n FROM events WHERE owner IN ('j1', 'j2') \
                 AND (actor IS NULL OR actor NOT LIKE '{login} %')"
            )
        ),
        0
    );

    // Nothing that changes the inventory or rewrites history.
    db.conn()
        .batch_execute("UPDATE nodes SET state = 'dirty' WHERE name = 'a3'")
        .unwrap();
    let mut conn = db.conn();
    let nodes_before = texts(
        &mut conn,
        "SELECT row_to_json(n)::text AS t FROM nodes AS n ORDER BY id",
    )
    .unwrap();
    let events_before = count(&mut conn, "SELECT count(*) AS n FROM events");
    let yaml = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        yaml.path(),
        "nodes:\n  - {name: b0, driver_info: {ipmi_address: 10.200.0.1}}\n",
    )
    .unwrap();
    for args in [
        &["add", "b1", "--bmc-address", "10.200.0.2"][..],
        &["import", yaml.path().to_str().unwrap()],
        &["import", "--update", yaml.path().to_str().unwrap()],
        &[
            "add_baremetal",
            "b2",
            "10.200.0.3",
            "u",
            "p",
            "10.201.0.1",
            "02:aa:00:00:00:01",
            "x86_64",
            "1",
            "1",
            "1",
        ],
        &["set-field", "a0", "ipmi_password", "stolen"],
        &["maintenance", "a0", "--reason", "mine now"],
        &["clean", "a3"],
        &["remove", "a0"],
        &["delete_db", "--yes"],
    ] {
        roles.denied(job, args, Who::Admin);
    }
    assert_eq!(
        texts(
            &mut conn,
            "SELECT row_to_json(n)::text AS t FROM nodes AS n ORDER BY id"
        )
        .unwrap(),
        nodes_before
    );
    assert_eq!(
        count(&mut conn, "SELECT count(*) AS n FROM events"),
        events_before
    );

    // Nor with psql.
    let mut as_job = roles.conn(job);
    for sql in [
        "INSERT INTO nodes (name) VALUES ('b3')",
        "DELETE FROM nodes",
        "TRUNCATE nodes",
        "UPDATE nodes SET driver_info = '{}'",
        "UPDATE nodes SET name = 'renamed' WHERE name = 'a0'",
        "UPDATE nodes SET maintenance_reason = 'x'",
        "UPDATE events SET owner = 'someone else'",
        "DELETE FROM events",
        "INSERT INTO events (id, node_id, node_name, action) VALUES (999, 1, 'a0', 'add')",
        "INSERT INTO events (at, node_id, node_name, action) VALUES ('2020-01-01', 1, 'a0', 'add')",
        "INSERT INTO events (actor, node_id, node_name, action) VALUES ('someone else', 1, 'a0', 'add')",
    ] {
        refused(&mut as_job, sql);
    }
    assert_eq!(
        count(&mut conn, "SELECT count(*) AS n FROM events"),
        events_before
    );
}

#[test]
fn the_readonly_role_reads_the_pool_but_never_a_credential() {
    let db = TestDb::new();
    db.import(
        "nodes:
  - name: r0
    driver_info: {ipmi_address: 10.210.0.1, ipmi_username: admin, ipmi_password: Secret-One}
    properties: {cpus: 4, cpu_arch: x86_64, root_PASSWORD: Secret-Two}
    extra: {rack: B4, vault: [{Password: Secret-Three}, {note: keep}]}
    ports: [{address: '02:bb:00:00:00:01'}]
  - name: r1
    driver: redfish
    driver_info: {redfish_address: 'https://10.210.0.2', redfish_system_id: /redfish/v1/Systems/1, redfish_password: Secret-Four}
",
    );
    let secrets = ["Secret-One", "Secret-Two", "Secret-Three", "Secret-Four"];
    let roles = Roles::apply(&db);
    let readonly = Who::Readonly;
    db.ok(&["allocate", "job-9"]);

    // The psql examples of the README work on nodes itself.
    let mut conn = roles.conn(readonly);
    let held = texts(
        &mut conn,
        "SELECT owner || ' ' || string_agg(name, ' ' ORDER BY id) AS t
         FROM nodes WHERE state = 'allocated' GROUP BY owner",
    )
    .unwrap();
    assert_eq!(held, ["job-9 r0"]);
    assert_eq!(count(&mut conn, "SELECT count(*) AS n FROM nodes"), 2);
    assert_eq!(count(&mut conn, "SELECT count(*) AS n FROM events"), 3);
    for sql in [
        "SELECT driver_info FROM nodes",
        "SELECT properties FROM nodes",
        "SELECT ironic_fields FROM nodes",
        "SELECT * FROM nodes",
        "SELECT row_to_json(n) FROM nodes AS n",
        "SELECT name FROM nodes WHERE driver_info->>'ipmi_password' LIKE 'S%'",
        "UPDATE nodes SET state = 'ready'",
        "INSERT INTO events (node_id, node_name, action) VALUES (1, 'r0', 'add')",
        "DELETE FROM events",
        "UPDATE nodes_public SET name = 'x'",
    ] {
        refused(&mut conn, sql);
    }

    // The view shows everything else, with exactly what `status -o json` masks masked.
    let rows = texts(
        &mut conn,
        "SELECT row_to_json(p)::text AS t FROM nodes_public AS p ORDER BY id",
    )
    .unwrap();
    for row in &rows {
        for secret in secrets {
            assert!(!row.contains(secret), "{row}");
        }
    }
    let view: Vec<Value> = rows
        .iter()
        .map(|r| serde_json::from_str(r).unwrap())
        .collect();
    assert_eq!(view[0]["driver_info"]["ipmi_address"], "10.210.0.1");
    assert_eq!(view[0]["driver_info"]["ipmi_password"], "********");
    assert_eq!(view[0]["properties"]["root_PASSWORD"], "********");
    assert_eq!(
        view[0]["ironic_fields"]["extra"]["vault"][0]["Password"],
        "********"
    );
    assert_eq!(
        view[0]["ironic_fields"]["extra"]["vault"][1]["note"],
        "keep"
    );
    assert_eq!(view[0]["owner"], "job-9");
    let status: Vec<Value> = serde_json::from_str(&db.ok(&["status", "-o", "json"])).unwrap();
    assert_eq!(view.len(), status.len());
    for (v, s) in view.iter().zip(&status) {
        for key in [
            "id",
            "name",
            "driver_info",
            "properties",
            "ironic_fields",
            "ports",
            "allocation_pool",
        ] {
            assert_eq!(v[key], s[key], "{key}");
        }
    }

    // molteniron itself: status and history work, through the view: the same nodes, masked the same.
    let history = roles.ok(readonly, &["history", "-o", "json"]);
    assert!(history.contains("job-9"));
    let by_node = roles.ok(readonly, &["history", "--node", "r0"]);
    assert!(
        by_node.contains("allocate") && by_node.contains("job-9"),
        "{by_node}"
    );
    assert!(!by_node.contains("r1"), "{by_node}");
    assert_eq!(
        roles.ok(readonly, &["status", "-o", "json"]),
        db.ok(&["status", "-o", "json"])
    );
    for args in [
        &["status"][..],
        &["status", "--baremetal"],
        &["status", "--pool", "default", "--owner", "job-9"],
        &["status_baremetal", "-o", "csv"],
    ] {
        let out = roles.ok(readonly, args);
        assert!(
            out.contains("r0") && out.contains("10.210.0.1"),
            "{args:?}: {out}"
        );
        for secret in secrets {
            assert!(!out.contains(secret), "{args:?}: {out}");
        }
    }
    assert_eq!(
        roles.ok(readonly, &["status", "--summary", "-o", "csv"]),
        "pool,ready,allocated,dirty,maintenance,total\ndefault,1,1,0,0,2\n"
    );
    // Asking for the credentials is refused, naming the roles that may read them.
    roles.denied(readonly, &["status", "--show-secrets"], Who::Job);
    for args in [
        &["export"][..],
        &["allocate", "job-10"],
        &["release", "job-9"],
        &["get-field", "job-9", "ipmi_password"],
    ] {
        roles.denied(readonly, args, Who::Job);
    }
    let err = roles.fails(readonly, &["export"], 1);
    let (job, admin, login) = (
        roles.group(Who::Job),
        roles.group(Who::Admin),
        roles.login(readonly),
    );
    assert!(
        err.contains(&format!(
            "this needs {job} or {admin} (hint: GRANT {job} TO {login})"
        )),
        "{err}"
    );
    roles.denied(readonly, &["set-field", "r0", "cpus", "2"], Who::Admin);
}

#[test]
fn the_admin_role_migrates_and_changes_the_inventory() {
    let db = TestDb::new();
    db.seed("a", 3, "default");
    let roles = Roles::apply(&db);
    let admin_role = Who::Admin;

    let yaml = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        yaml.path(),
        "nodes:\n  - {name: b0, driver_info: {ipmi_address: 10.220.0.1, ipmi_password: pb0}}\n",
    )
    .unwrap();
    roles.ok(admin_role, &["import", yaml.path().to_str().unwrap()]);
    roles.ok(
        admin_role,
        &[
            "add",
            "b1",
            "--bmc-address",
            "10.220.0.2",
            "--bmc-password",
            "pb1",
        ],
    );
    roles.ok(admin_role, &["set-field", "b1", "cpus", "8"]);
    roles.ok(admin_role, &["maintenance", "a0", "--reason", "fan"]);
    roles.ok(admin_role, &["maintenance", "a0", "--off"]);
    db.conn()
        .batch_execute("UPDATE nodes SET state = 'dirty' WHERE name = 'a1'")
        .unwrap();
    roles.ok(admin_role, &["clean", "a1"]);
    roles.ok(admin_role, &["allocate", "admin-job"]);
    roles.ok(admin_role, &["remove", "a0", "--force"]);
    assert!(roles.ok(admin_role, &["export"]).contains("pb1"));
    assert!(
        roles
            .ok(admin_role, &["status", "--baremetal", "--show-secrets"])
            .contains("pb0")
    );
    let mut conn = db.conn();
    assert_eq!(
        texts(
            &mut conn,
            "SELECT string_agg(name, ' ' ORDER BY id) AS t FROM nodes"
        )
        .unwrap(),
        ["a1 a2 b0 b1"]
    );

    // On an up-to-date schema, migrate has nothing to do, whoever runs it (a deploy script may run it as
    // the job role): it succeeds without trying to create anything.
    for who in EVERYONE {
        let (code, out, err) = roles.run(who, &["migrate"]);
        assert_eq!((code, out.as_str()), (0, ""), "{who:?}: {err}");
        assert!(err.contains("the schema is up to date"), "{who:?}: {err}");
    }

    // A pending migration: only the admin role may apply it (it creates objects and records itself).
    conn.batch_execute(include_str!(
        "../../migrations/2026-11-22-000001_nodes_public/down.sql"
    ))
    .unwrap();
    conn.batch_execute(&format!(
        "DELETE FROM __diesel_schema_migrations WHERE version = '{VIEW_MIGRATION}'"
    ))
    .unwrap();
    // Roles need the current schema.
    let err = db.fails(&["roles", "--apply", "--prefix", &roles.prefix], 1);
    assert!(err.contains("run `molteniron migrate`"), "{err}");
    roles.denied(Who::Job, &["migrate"], Who::Admin);
    roles.denied(Who::Readonly, &["migrate"], Who::Admin);
    let no_view = "SELECT count(*) AS n FROM pg_class WHERE relname = 'nodes_public'";
    assert_eq!(count(&mut conn, no_view), 0);
    let (code, _, err) = roles.run(admin_role, &["migrate"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains(&format!("applied migrations {VIEW_MIGRATION}")),
        "{err}"
    );
    assert_eq!(count(&mut conn, no_view), 1);

    // A new object has no grants until the roles are applied again.
    let mut readonly = roles.conn(Who::Readonly);
    refused(&mut readonly, "SELECT name FROM nodes_public");
    db.ok(&["roles", "--apply", "--prefix", &roles.prefix]);
    assert_eq!(
        texts(
            &mut readonly,
            "SELECT string_agg(name, ' ' ORDER BY id) AS t FROM nodes_public"
        )
        .unwrap(),
        ["a1 a2 b0 b1"]
    );

    roles.ok(admin_role, &["delete_db", "--yes"]);
    assert_eq!(count(&mut conn, "SELECT count(*) AS n FROM nodes"), 0);
}

#[test]
fn only_an_owner_may_apply_the_roles_and_only_to_a_migrated_database() {
    let db = TestDb::new();
    let roles = Roles::apply(&db);
    let mut conn = db.conn();
    let before = privileges(&mut conn, &roles.prefix);

    // A member of the job group owns nothing: refused, whether the roles exist or not, and nothing
    // changes (without the check, its GRANTs would only have been warnings).
    let other = Roles::new(vec![&db]);
    for prefix in [&roles.prefix, &other.prefix] {
        let err = roles.fails(Who::Job, &["roles", "--apply", "--prefix", prefix], 1);
        assert!(err.contains("only the owner of database"), "{err}");
    }
    assert_eq!(privileges(&mut conn, &roles.prefix), before);
    let created = format!(
        "SELECT count(*) AS n FROM pg_roles WHERE starts_with(rolname, '{}_')",
        other.prefix
    );
    assert_eq!(count(&mut conn, &created), 0);

    // An owner that is not a superuser may re-run it without CREATEROLE, but not create roles.
    let owner = roles.login(Who::Owner);
    conn.batch_execute(&format!(
        "CREATE ROLE {owner} LOGIN PASSWORD '{PASSWORD}';
         ALTER DATABASE \"{}\" OWNER TO {owner};
         ALTER TABLE nodes OWNER TO {owner};
         ALTER TABLE events OWNER TO {owner};
         ALTER TABLE requests OWNER TO {owner};
         ALTER TABLE __diesel_schema_migrations OWNER TO {owner};
         ALTER VIEW nodes_public OWNER TO {owner};
         ALTER FUNCTION mask_passwords(jsonb) OWNER TO {owner};",
        dbname(&db)
    ))
    .unwrap();
    conn.batch_execute(&format!(
        "REVOKE ALL ON nodes FROM {}",
        roles.group(Who::Job)
    ))
    .unwrap();
    assert_ne!(privileges(&mut conn, &roles.prefix), before);
    roles.ok(Who::Owner, &["roles", "--apply", "--prefix", &roles.prefix]);
    assert_eq!(privileges(&mut conn, &roles.prefix), before);
    let err = roles.fails(
        Who::Owner,
        &["roles", "--apply", "--prefix", &other.prefix],
        1,
    );
    for wanted in [
        format!(
            "creating roles {}, {}",
            other.group(Who::Admin),
            other.group(Who::Job)
        ),
        format!("needs CREATEROLE, which {owner} lacks"),
    ] {
        assert!(err.contains(&wanted), "lacks {wanted:?}: {err}");
    }
    assert_eq!(count(&mut conn, &created), 0);

    let empty = TestDb::unmigrated();
    let fresh = Roles::new(vec![&empty]);
    let err = empty.fails(&["roles", "--apply", "--prefix", &fresh.prefix], 1);
    assert!(err.contains("run `molteniron migrate`"), "{err}");
    assert_eq!(
        count(
            &mut conn,
            &format!(
                "SELECT count(*) AS n FROM pg_roles WHERE starts_with(rolname, '{}_')",
                fresh.prefix
            )
        ),
        0
    );
}

#[test]
fn concurrent_applies_to_one_cluster_all_succeed() {
    // Two databases of one cluster, two runs each, all released at once: the runs in one database take
    // turns on the advisory lock, and the two that create the same roles in different databases at the
    // same moment (the lock is per database) must tolerate each other's CREATE ROLE.
    let dbs = [TestDb::new(), TestDb::new()];
    let roles = Roles::new(dbs.iter().collect());
    let config = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(config.path(), "lock_timeout: 2min\n").unwrap();

    // The gate: CREATE ROLE waits until it commits.
    let mut gate = admin();
    gate.batch_execute("BEGIN; LOCK TABLE pg_authid IN SHARE MODE")
        .unwrap();
    let children: Vec<_> = dbs
        .iter()
        .flat_map(|db| [db, db])
        .map(|db| {
            db.std_cmd()
                .args(["--config", config.path().to_str().unwrap()])
                .args(["roles", "--apply", "--prefix", &roles.prefix])
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let names: Vec<String> = dbs.iter().map(|db| format!("'{}'", dbname(db))).collect();
    let waiting = format!(
        "SELECT count(*) AS n FROM pg_stat_activity
         WHERE datname IN ({}) AND application_name LIKE 'molteniron %' AND wait_event_type = 'Lock'",
        names.join(", ")
    );
    let mut watcher = admin();
    let started = Instant::now();
    while count(&mut watcher, &waiting) < 4 {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the runs never all waited at the gate"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    gate.batch_execute("COMMIT").unwrap();

    for child in children {
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{err}");
        assert!(err.contains("applied roles"), "{err}");
    }
    let granted = privileges(&mut dbs[0].conn(), &roles.prefix);
    assert!(
        granted.iter().any(|line| line == "job nodes.state UPDATE"),
        "{granted:?}"
    );
    assert_eq!(privileges(&mut dbs[1].conn(), &roles.prefix), granted);
}

#[test]
fn a_permission_error_names_the_default_role_where_none_is_set_up() {
    let db = TestDb::new();
    db.seed("n", 1, "default");
    // A login in no group, in a database whose roles were never applied: no role to name but the default.
    let roles = Roles::new(vec![&db]);
    let nobody = roles.login(Who::Owner);
    db.conn()
        .batch_execute(&format!("CREATE ROLE {nobody} LOGIN PASSWORD '{PASSWORD}'"))
        .unwrap();
    for (args, group) in [
        (&["status"][..], "readonly"),
        (&["allocate", "j"], "job"),
        (&["add", "x", "--bmc-address", "10.230.0.1"], "admin"),
    ] {
        let err = roles.fails(Who::Owner, args, 1);
        assert!(err.contains("permission denied"), "{args:?}: {err}");
        assert!(
            err.contains(&format!(
                "this needs the {group} role of `molteniron roles` (molteniron_{group} unless"
            )),
            "{args:?}: {err}"
        );
        assert!(err.contains("`molteniron roles --apply`"), "{err}");
    }
}

#[test]
fn the_job_role_may_wait_in_line_and_the_readonly_role_may_see_it() {
    let db = TestDb::new();
    db.seed("a", 1, "default");
    let roles = Roles::apply(&db);
    roles.ok(Who::Job, &["allocate", "holder"]);
    let config = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(config.path(), "poll_interval: 100ms\nwaiter_timeout: 2s\n").unwrap();
    let waiter = || {
        crate::support::molteniron_std()
            .args(["--database-url", &roles.url(Who::Job), "--config"])
            .arg(config.path())
            .args(["allocate", "j", "--wait", "--wait-timeout", "20s"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let in_line = || {
        let mut conn = db.conn();
        while count(&mut conn, "SELECT count(*) AS n FROM requests") == 0 {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    };
    // Joins, polls, serves the line and picks up its node, all as the job role.
    let child = waiter();
    in_line();
    assert!(roles.ok(Who::Readonly, &["queue"]).contains("j"));
    roles.ok(Who::Job, &["release", "holder"]);
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Withdrawn by release, as the job role too.
    roles.ok(Who::Job, &["release", "j"]);
    roles.ok(Who::Job, &["allocate", "holder2"]);
    let child = waiter();
    in_line();
    roles.ok(Who::Job, &["release", "j"]);
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A role granted before the queue existed may not read `requests` until `roles --apply` runs again:
/// `status` (one read-only snapshot) still shows the pool, with nobody waiting, instead of failing on a
/// transaction aborted by the refused read.
#[test]
fn a_role_that_may_not_read_the_line_still_sees_the_pool() {
    use diesel::connection::SimpleConnection;
    let db = TestDb::new();
    db.seed("a", 2, "default");
    let roles = Roles::apply(&db);
    roles.ok(Who::Job, &["allocate", "holder"]);
    db.conn()
        .batch_execute(&format!(
            "REVOKE SELECT ON requests FROM {}",
            roles.group(Who::Readonly)
        ))
        .unwrap();
    let status = roles.ok(Who::Readonly, &["status"]);
    assert!(
        status.contains("holder") && status.contains("a1"),
        "{status}"
    );
    let summary = roles.ok(Who::Readonly, &["status", "--summary"]);
    assert!(summary.contains("default"), "{summary}");
}
