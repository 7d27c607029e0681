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

use std::sync::OnceLock;

use diesel::pg::Pg;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::sql_types::{BigInt, Double, Nullable, Text, Untyped};
use diesel::{PgConnection, QueryResult, RunQueryDsl};

/// A statement text cut once at its placeholders: SQL, then the number of the `$n` that follows it.
///
/// diesel walks a query several times per execution (to build the SQL, to collect the binds, to check
/// that it may be cached), so the text is cut here once per process rather than searched on every walk.
pub(super) struct Template(Vec<(String, Option<usize>)>);

impl Template {
    /// Cuts `sql` at each `$n`, dropping whole-line `--` comments (so placeholders in them are not bound).
    fn parse(sql: &str) -> Template {
        let mut pieces = Vec::new();
        let mut text = String::new();
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
                text.push_str(&rest[..=dollar]);
                if digits == 0 {
                    rest = &rest[dollar + 1..];
                    continue;
                }
                text.pop(); // the `$` itself: diesel writes its own placeholder
                let number = rest[dollar + 1..dollar + 1 + digits].parse().unwrap_or(0);
                pieces.push((std::mem::take(&mut text), Some(number)));
                rest = &rest[dollar + 1 + digits..];
            }
            text.push_str(rest);
            text.push('\n');
        }
        pieces.push((text, None));
        Template(pieces)
    }
}

/// A hot-path statement: its SQL and how each `$n` is bound.
pub(super) trait Binds {
    /// Identifies the statement in diesel's per-connection cache.
    type Id: 'static;
    /// The statement text (a file in `sql/`).
    const SQL: &'static str;
    /// [`Self::SQL`] cut at its placeholders, once per process.
    fn template() -> &'static Template;
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
        for (sql, placeholder) in &B::template().0 {
            out.push_sql(sql);
            if let Some(n) = placeholder {
                self.0.bind(*n, &mut out)?;
            }
        }
        Ok(())
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
    fn template() -> &'static Template {
        static TEMPLATE: OnceLock<Template> = OnceLock::new();
        TEMPLATE.get_or_init(|| Template::parse(Self::SQL))
    }
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
    fn template() -> &'static Template {
        static TEMPLATE: OnceLock<Template> = OnceLock::new();
        TEMPLATE.get_or_init(|| Template::parse(Self::SQL))
    }
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
    fn template() -> &'static Template {
        static TEMPLATE: OnceLock<Template> = OnceLock::new();
        TEMPLATE.get_or_init(|| Template::parse(Self::SQL))
    }
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
    fn template() -> &'static Template {
        static TEMPLATE: OnceLock<Template> = OnceLock::new();
        TEMPLATE.get_or_init(|| Template::parse(Self::SQL))
    }
    fn bind<'b>(&'b self, n: usize, out: &mut AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        match n {
            1 => out.push_bind_param::<Nullable<Double>, Option<f64>>(&self.max_age_secs),
            _ => out.push_bind_param::<Text, str>(self.state),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn piece(sql: &str, n: Option<usize>) -> (String, Option<usize>) {
        (sql.to_owned(), n)
    }

    #[test]
    fn a_template_is_cut_at_its_placeholders_without_comment_lines() {
        let template = Template::parse(
            "-- $9 in a comment\nSELECT $1, '$' || $12\n  -- $3\nFROM t WHERE a = $1",
        );
        assert_eq!(
            template.0,
            [
                piece("SELECT ", Some(1)),
                piece(", '$' || ", Some(12)),
                piece("\nFROM t WHERE a = ", Some(1)),
                piece("\n", None),
            ]
        );
    }

    /// The placeholder numbers in `sql` (`$10` is ten, not one), in order.
    fn placeholders(sql: &str) -> Vec<usize> {
        let mut found = Vec::new();
        let mut rest = sql;
        while let Some(dollar) = rest.find('$') {
            rest = &rest[dollar + 1..];
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            if digits > 0 {
                found.push(rest[..digits].parse().unwrap_or(0));
            }
            rest = &rest[digits..];
        }
        found
    }

    /// `debug_query` text of `query` without the ` -- binds: [...]` it appends, and the number of binds.
    fn rendered<B: Binds>(query: &Statement<B>) -> (String, usize) {
        let debug = diesel::debug_query::<Pg, _>(query).to_string();
        let sql = debug
            .split(" -- binds:")
            .next()
            .unwrap_or_default()
            .to_owned();
        (sql, B::template().0.len() - 1)
    }

    #[test]
    fn every_hot_statement_numbers_all_its_binds_in_order() {
        let rendered = [
            rendered(&Statement(Allocate {
                owner: "o",
                pool: "p",
                count: 1,
                lease_secs: 1.0,
            })),
            rendered(&Statement(Release {
                owner: "o",
                node_id: None,
                state: "ready",
            })),
            rendered(&Statement(Renew {
                owner: "o",
                lease_secs: 1.0,
            })),
            rendered(&Statement(Reap {
                max_age_secs: None,
                state: "ready",
            })),
        ];
        for (sql, binds) in rendered {
            assert!(binds >= 2, "{sql}");
            assert_eq!(placeholders(&sql), (1..=binds).collect::<Vec<_>>(), "{sql}");
            assert!(
                !sql.lines().any(|line| line.trim_start().starts_with("--")),
                "{sql}"
            );
        }
    }
}
