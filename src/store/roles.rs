//! The SQL of `molteniron roles`: three group roles (admin, job, read-only) and their privileges, from the
//! template `sql/roles.sql`. The same text is printed for psql and run by `--apply`, so what an operator
//! reviews is what runs.

use diesel::connection::SimpleConnection;
use diesel::sql_types::Text;
use diesel::{PgConnection, QueryResult, QueryableByName, RunQueryDsl};

use crate::db::MIGRATE_LOCK_KEY;
use crate::domain::Group;

const TEMPLATE: &str = include_str!("sql/roles.sql");

/// The longest name PostgreSQL keeps whole (NAMEDATALEN - 1 bytes); longer names are truncated.
const MAX_NAME: usize = 63;

/// The names of the three roles: `PREFIX_admin`, `PREFIX_job` and `PREFIX_readonly`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleNames {
    pub admin: String,
    pub job: String,
    pub readonly: String,
}

impl RoleNames {
    /// The names for `prefix`, which must be a lower-case SQL identifier (letters, digits, `_`, not
    /// starting with a digit) short enough that `PREFIX_readonly` fits in 63 bytes. Such names need no
    /// quoting, so they read the same in the SQL, in psql and in `GRANT ... TO`.
    pub fn from_prefix(prefix: &str) -> Result<RoleNames, String> {
        let identifier = prefix
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
            && prefix
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        let names = RoleNames {
            admin: format!("{prefix}_admin"),
            job: format!("{prefix}_job"),
            readonly: format!("{prefix}_readonly"),
        };
        if !identifier || names.readonly.len() > MAX_NAME {
            return Err(format!(
                "--prefix {prefix:?} must be 1 to {} lower-case letters, digits and _, not starting with a digit",
                MAX_NAME - "_readonly".len()
            ));
        }
        Ok(names)
    }
}

/// Who may do what a group may do, as [`holders`] finds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holders {
    /// The session's user (`current_user`); empty when `roles` is.
    pub user: String,
    /// The group roles of `molteniron roles` (any prefix) that hold the group's privileges in this
    /// database, narrowest first; empty when the roles were never applied here.
    pub roles: Vec<String>,
}

/// The group roles that would let the session do what `group` may do (see `sql/role_holders.sql`).
/// Read-only: any role may run it.
pub fn holders(conn: &mut PgConnection, group: Group) -> QueryResult<Holders> {
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = Text)]
        name: String,
        #[diesel(sql_type = Text)]
        user_name: String,
    }
    let rows: Vec<Row> = diesel::sql_query(include_str!("sql/role_holders.sql"))
        .bind::<Text, _>(group.as_str())
        .load(conn)?;
    Ok(Holders {
        user: rows
            .first()
            .map(|row| row.user_name.clone())
            .unwrap_or_default(),
        roles: rows.into_iter().map(|row| row.name).collect(),
    })
}

/// The statements, without a transaction around them.
fn statements(names: &RoleNames) -> String {
    TEMPLATE
        .replace("{admin}", &names.admin)
        .replace("{job}", &names.job)
        .replace("{readonly}", &names.readonly)
        .replace("{lock}", &MIGRATE_LOCK_KEY.to_string())
}

/// The SQL as printed: one transaction, ready for `psql -v ON_ERROR_STOP=1 -f`.
pub fn roles_script(names: &RoleNames) -> String {
    format!("BEGIN;\n\n{}\nCOMMIT;\n", statements(names))
}

/// Creates the roles that are missing and sets the privileges of all three, in the caller's transaction.
/// Concurrent runs against one database take turns on the migration lock; a run against another
/// database of the cluster that creates the same role at the same moment is tolerated. Fails, changing
/// nothing, unless the session owns the database and molteniron's tables (or is a superuser).
pub fn apply_roles(conn: &mut PgConnection, names: &RoleNames) -> QueryResult<()> {
    conn.batch_execute(&statements(names))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_must_be_plain_identifiers_that_fit() {
        let names = RoleNames::from_prefix("molteniron").unwrap();
        assert_eq!(
            (
                names.admin.as_str(),
                names.job.as_str(),
                names.readonly.as_str()
            ),
            ("molteniron_admin", "molteniron_job", "molteniron_readonly")
        );
        for ok in ["ci", "_x", "a1_b2", &"p".repeat(54)] {
            assert!(RoleNames::from_prefix(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "CI",
            "1ci",
            "a-b",
            "a b",
            "x\"; DROP ROLE y; --",
            "é",
            &"p".repeat(55),
        ] {
            assert!(RoleNames::from_prefix(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn every_placeholder_is_filled_and_the_script_is_one_transaction() {
        let names = RoleNames::from_prefix("ci").unwrap();
        let script = roles_script(&names);
        assert!(!script.contains('{') && !script.contains('}'), "{script}");
        assert!(script.starts_with("BEGIN;\n") && script.ends_with("\nCOMMIT;\n"));
        assert!(script.contains(&format!("pg_advisory_xact_lock({MIGRATE_LOCK_KEY})")));
        assert!(script.contains("GRANT CONNECT ON DATABASE %I TO ci_admin, ci_job, ci_readonly"));
        assert!(!script.contains("molteniron_"), "{script}");
    }
}
