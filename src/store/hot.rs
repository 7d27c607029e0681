//! The hot-path statements (`sql/*.sql`) as diesel queries that may be prepared once per connection.
//!
//! `diesel::sql_query` is never cached, so a long-lived connection would re-parse and re-plan these on
//! every call. Here each statement is its own type with a static query id, so diesel prepares it once per
//! connection and reuses it. The CLI turns diesel's statement cache off (see `db::connect`): a process
//! that sends one statement gets it in a single round trip (`PQsendQueryParams`) instead of prepare +
//! execute.
//!
//! The `.sql` files use `$1`, `$2`, ... as PostgreSQL does; each occurrence becomes its own diesel bind
//! of the same value. Whole-line `--` comments are dropped so placeholders in them are not bound.

use diesel::pg::Pg;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::sql_types::{BigInt, Double, Nullable, Text, Untyped};
use diesel::{PgConnection, QueryResult, RunQueryDsl};

/// Emits `sql` into `out`, calling `bind(n, out)` where the text has the placeholder `$n`.
fn walk_template<'b>(
    sql: &'static str,
    out: &mut AstPass<'_, 'b, Pg>,
    mut bind: impl FnMut(usize, &mut AstPass<'_, 'b, Pg>) -> QueryResult<()>,
) -> QueryResult<()> {
    for line in sql
        .lines()
        .filter(|line| !line.trim_start().starts_with("--"))
    {
        let mut rest = line;
        while let Some(dollar) = rest.find('$') {
            let digits = rest[dollar + 1..]
                .bytes()
                .take_while(u8::is_ascii_digit)
                .count();
            out.push_sql(&rest[..dollar]);
            if digits == 0 {
                out.push_sql("$");
                rest = &rest[dollar + 1..];
                continue;
            }
            let number = &rest[dollar + 1..dollar + 1 + digits];
            bind(number.parse().unwrap_or(0), out)?;
            rest = &rest[dollar + 1 + digits..];
        }
        out.push_sql(rest);
        out.push_sql("\n");
    }
    Ok(())
}

/// A hot-path statement: its SQL and how each `$n` is bound.
pub(super) trait Binds {
    /// Identifies the statement in diesel's per-connection cache.
    type Id: 'static;
    /// The statement text (a file in `sql/`).
    const SQL: &'static str;
    /// Binds the value of placeholder `$n`.
    fn bind<'b>(&'b self, n: usize, out: &mut AstPass<'_, 'b, Pg>) -> QueryResult<()>;
}

/// A [`Binds`] as a diesel query that can be prepared once per connection.
pub(super) struct Statement<B>(pub(super) B);

impl<B: Binds> QueryId for Statement<B> {
    type QueryId = B::Id;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl<B: Binds> Query for Statement<B> {
    type SqlType = Untyped;
}

impl<B: Binds> QueryFragment<Pg> for Statement<B> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        walk_template(B::SQL, &mut out, |n, out| self.0.bind(n, out))
    }
}

impl<B: Binds> RunQueryDsl<PgConnection> for Statement<B> {}

/// `sql/allocate.sql`.
pub(super) struct Allocate<'a> {
    pub(super) owner: &'a str,
    pub(super) pool: &'a str,
    pub(super) count: i64,
    pub(super) lease_secs: f64,
}

impl Binds for Allocate<'_> {
    type Id = Allocate<'static>;
    const SQL: &'static str = include_str!("sql/allocate.sql");
    fn bind<'b>(&'b self, n: usize, out: &mut AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        match n {
            1 => out.push_bind_param::<Text, str>(self.owner),
            2 => out.push_bind_param::<Text, str>(self.pool),
            3 => out.push_bind_param::<BigInt, i64>(&self.count),
            _ => out.push_bind_param::<Double, f64>(&self.lease_secs),
        }
    }
}

/// `sql/release.sql`.
pub(super) struct Release<'a> {
    pub(super) owner: &'a str,
    pub(super) node_id: Option<i64>,
    pub(super) state: &'a str,
}

impl Binds for Release<'_> {
    type Id = Release<'static>;
    const SQL: &'static str = include_str!("sql/release.sql");
    fn bind<'b>(&'b self, n: usize, out: &mut AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        match n {
            1 => out.push_bind_param::<Text, str>(self.owner),
            2 => out.push_bind_param::<Nullable<BigInt>, Option<i64>>(&self.node_id),
            _ => out.push_bind_param::<Text, str>(self.state),
        }
    }
}

/// `sql/renew.sql`.
pub(super) struct Renew<'a> {
    pub(super) owner: &'a str,
    pub(super) lease_secs: f64,
}

impl Binds for Renew<'_> {
    type Id = Renew<'static>;
    const SQL: &'static str = include_str!("sql/renew.sql");
    fn bind<'b>(&'b self, n: usize, out: &mut AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        match n {
            1 => out.push_bind_param::<Text, str>(self.owner),
            _ => out.push_bind_param::<Double, f64>(&self.lease_secs),
        }
    }
}

/// `sql/reap.sql`.
pub(super) struct Reap<'a> {
    pub(super) max_age_secs: Option<f64>,
    pub(super) state: &'a str,
}

impl Binds for Reap<'_> {
    type Id = Reap<'static>;
    const SQL: &'static str = include_str!("sql/reap.sql");
    fn bind<'b>(&'b self, n: usize, out: &mut AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        match n {
            1 => out.push_bind_param::<Nullable<Double>, Option<f64>>(&self.max_age_secs),
            _ => out.push_bind_param::<Text, str>(self.state),
        }
    }
}
