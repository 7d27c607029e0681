//! The hot-path statements (`sql/*.sql`) as diesel queries that may be prepared once per connection.
//!
//! `diesel::sql_query` is never cached, so a long-lived connection would re-parse and re-plan these on
//! every call. Here each statement is its own type with a static query id, so diesel prepares it once per
//! connection and reuses it. The CLI turns diesel's statement cache off (see `db::connect`): a process
//! that sends one statement gets it in a single round trip (`PQsendQueryParams`) instead of prepare +
//! execute.
//!
//! Each of these runs alone, outside any explicit transaction (allocate, release, renew, reap are one
//! statement each), so it sets its own `lock_timeout` as its first step: a `set_config(..., true)` in a
//! scalar subquery that PostgreSQL evaluates once, before the statement locks its first row, and that
//! ends with the statement's transaction. No extra round trip, no session setting (which a
//! transaction-pooling PgBouncer would drop or leak to another client). `statement_timeout` cannot be
//! set that way: the server starts that timer before the statement runs, so these statements run under
//! the server's own `statement_timeout` (the role's or database's; `molteniron doctor` warns when it is
//! none), and every explicit transaction sets both (`db::transaction`).
//!
//! The `.sql` files use `$1`, `$2`, ... as PostgreSQL does; each occurrence becomes its own diesel bind
//! of the same value. Whole-line `--` comments are dropped so placeholders in them are not bound.

use std::sync::OnceLock;

use diesel::pg::Pg;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::sql_types::{BigInt, Double, Jsonb, Nullable, Text, Untyped};
use diesel::{PgConnection, QueryResult, RunQueryDsl};

/// A statement text cut once at its placeholders: SQL, then the number of the `$n` that follows it.
///
/// diesel walks a query several times per execution (to build the SQL, to collect the binds, to check
/// that it may be cached), so the text is cut here once per process rather than searched on every walk.
#[derive(Debug)]
pub(super) struct Template(Vec<(String, Option<usize>)>);

impl Template {
    /// Cuts `sql` at each `$n`, dropping whole-line `--` comments (so placeholders in them are not bound).
    /// Refuses a text whose placeholders are not exactly `$1` to `$parameters` (each used at least once):
    /// an unknown placeholder is an error at first use, never a silently bound value.
    fn parse(sql: &str, parameters: usize) -> Result<Template, String> {
        let mut pieces = Vec::new();
        let mut text = String::new();
        for line in sql.lines() {
            let code = code_of(line)?;
            if code.trim().is_empty() {
                continue;
            }
            let mut rest = code;
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
                let number: usize = rest[dollar + 1..dollar + 1 + digits].parse().unwrap_or(0);
                if !(1..=parameters).contains(&number) {
                    return Err(format!(
                        "placeholder ${number} has no parameter (the statement takes {parameters})"
                    ));
                }
                pieces.push((std::mem::take(&mut text), Some(number)));
                rest = &rest[dollar + 1 + digits..];
            }
            text.push_str(rest);
            text.push('\n');
        }
        pieces.push((text, None));
        if let Some(unused) = (1..=parameters).find(|n| !pieces.iter().any(|p| p.1 == Some(*n))) {
            return Err(format!("parameter ${unused} is never used"));
        }
        Ok(Template(pieces))
    }
}

/// The SQL of `line` without its `--` comment. A placeholder inside a string literal or a comment would be
/// sent as text and never bound, so one in a literal is refused, and so is a `/* */` comment (comments
/// are whole lines or trailing `--` ones).
fn code_of(line: &str) -> Result<&str, String> {
    let mut in_literal = false;
    let bytes = line.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b'\'' => in_literal = !in_literal, // '' inside a literal toggles twice
            b'$' if in_literal && bytes.get(i + 1).is_some_and(u8::is_ascii_digit) => {
                return Err(format!("a placeholder inside a string literal: {line:?}"));
            }
            b'-' if !in_literal && bytes.get(i + 1) == Some(&b'-') => return Ok(&line[..i]),
            b'/' if !in_literal && bytes.get(i + 1) == Some(&b'*') => {
                return Err(format!("a /* */ comment (use --): {line:?}"));
            }
            _ => {}
        }
    }
    Ok(line)
}

/// A hot-path statement: its SQL and how each `$n` is bound. Implemented only by [`hot_statement!`].
pub(super) trait Binds {
    /// Identifies the statement in diesel's per-connection cache.
    type Id: 'static;
    /// [`hot_statement!`]'s SQL cut at its placeholders, once per process (or why it could not be).
    fn template() -> &'static Result<Template, String>;
    /// Binds the value of placeholder `$n`; a number the statement does not declare is an error.
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
        let template = B::template()
            .as_ref()
            .map_err(|e| diesel::result::Error::QueryBuilderError(e.clone().into()))?;
        for (sql, placeholder) in &template.0 {
            out.push_sql(sql);
            if let Some(n) = placeholder {
                self.0.bind(*n, &mut out)?;
            }
        }
        Ok(())
    }
}

impl<B: Binds> RunQueryDsl<PgConnection> for Statement<B> {}

/// Declares a hot statement: a struct with one field per parameter, its `sql/` file, and which field
/// each `$n` binds with which SQL type. The one mechanism for every hot statement.
macro_rules! hot_statement {
    ($(#[$meta:meta])* $name:ident, $file:literal,
     { $($n:literal => $field:ident: $rust:ty as $sql:ty),+ $(,)? }) => {
        $(#[$meta])*
        pub(super) struct $name<'a> {
            $(pub(super) $field: $rust,)+
        }

        impl Binds for $name<'_> {
            type Id = $name<'static>;
            fn template() -> &'static Result<Template, String> {
                static TEMPLATE: OnceLock<Result<Template, String>> = OnceLock::new();
                TEMPLATE.get_or_init(|| {
                    Template::parse(include_str!($file), [$($n),+].len())
                        .map_err(|e| format!("{}: {e}", $file))
                })
            }
            fn bind<'b>(&'b self, n: usize, out: &mut AstPass<'_, 'b, Pg>) -> QueryResult<()> {
                match n {
                    $($n => out.push_bind_param::<$sql, _>(&self.$field),)+
                    other => Err(diesel::result::Error::QueryBuilderError(
                        format!("{}: no parameter ${other}", $file).into(),
                    )),
                }
            }
        }
    };
}

hot_statement!(
    /// `sql/allocate.sql`.
    Allocate, "sql/allocate.sql", {
        1 => owner: &'a str as Text,
        2 => filter: &'a serde_json::Value as Jsonb,
        3 => count: i64 as BigInt,
        4 => lease_secs: f64 as Double,
        5 => lock_timeout_ms: &'a str as Text,
    }
);

hot_statement!(
    /// `sql/release.sql`.
    Release, "sql/release.sql", {
        1 => owner: &'a str as Text,
        2 => node_id: Option<i64> as Nullable<BigInt>,
        3 => state: &'a str as Text,
        4 => result: Option<&'a str> as Nullable<Text>,
        5 => reason: Option<&'a str> as Nullable<Text>,
        6 => lock_timeout_ms: &'a str as Text,
    }
);

hot_statement!(
    /// `sql/renew.sql`.
    Renew, "sql/renew.sql", {
        1 => owner: &'a str as Text,
        2 => lease_secs: f64 as Double,
        3 => lock_timeout_ms: &'a str as Text,
    }
);

hot_statement!(
    /// `sql/reap.sql`.
    Reap, "sql/reap.sql", {
        1 => max_age_secs: Option<f64> as Nullable<Double>,
        2 => state: &'a str as Text,
        3 => lock_timeout_ms: &'a str as Text,
    }
);

#[cfg(test)]
mod tests {
    use super::*;

    fn piece(sql: &str, n: Option<usize>) -> (String, Option<usize>) {
        (sql.to_owned(), n)
    }

    #[test]
    fn a_template_is_cut_at_its_placeholders_without_comment_lines() {
        let template = Template::parse(
            "-- $9 in a comment\nSELECT $1, '$' || $2\n  -- $3\nFROM t WHERE a = $1",
            2,
        )
        .unwrap();
        assert_eq!(
            template.0,
            [
                piece("SELECT ", Some(1)),
                piece(", '$' || ", Some(2)),
                piece("\nFROM t WHERE a = ", Some(1)),
                piece("\n", None),
            ]
        );
    }

    #[test]
    fn trailing_comments_are_dropped_and_placeholders_in_literals_or_block_comments_refused() {
        let template = Template::parse("SELECT $1 -- and $2\n  , '$' || $2 -- $3\n", 2).unwrap();
        assert_eq!(
            template.0,
            [
                piece("SELECT ", Some(1)),
                piece(" \n  , '$' || ", Some(2)),
                piece(" \n", None),
            ]
        );
        assert!(Template::parse("SELECT '$1', $1", 1).is_err());
        assert!(Template::parse("SELECT 'it''s $1', $1", 1).is_err());
        assert!(Template::parse("SELECT $1 /* $2 */", 2).is_err());
        // `--` inside a literal is text, not a comment.
        let template = Template::parse("SELECT '--', $1", 1).unwrap();
        assert_eq!(
            template.0,
            [piece("SELECT '--', ", Some(1)), piece("\n", None)]
        );
    }

    #[test]
    fn a_placeholder_without_a_parameter_or_a_parameter_never_used_is_refused() {
        let err = Template::parse("SELECT $1, $3", 2).unwrap_err();
        assert!(err.contains("$3 has no parameter"), "{err}");
        let err = Template::parse("SELECT $1", 2).unwrap_err();
        assert!(err.contains("$2 is never used"), "{err}");
        assert!(Template::parse("SELECT $0", 1).is_err());
        let err = Template::parse("SELECT $1, $10", 1).unwrap_err();
        assert!(err.contains("$10 has no parameter"), "{err}");
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
        let template = B::template().as_ref().unwrap();
        (sql, template.0.len() - 1)
    }

    #[test]
    fn every_hot_statement_numbers_all_its_binds_in_order() {
        let rendered = [
            rendered(&Statement(Allocate {
                owner: "o",
                filter: &serde_json::json!({}),
                count: 1,
                lease_secs: 1.0,
                lock_timeout_ms: "1000",
            })),
            rendered(&Statement(Release {
                owner: "o",
                node_id: None,
                state: "ready",
                result: None,
                reason: None,
                lock_timeout_ms: "1000",
            })),
            rendered(&Statement(Renew {
                owner: "o",
                lease_secs: 1.0,
                lock_timeout_ms: "1000",
            })),
            rendered(&Statement(Reap {
                max_age_secs: None,
                state: "ready",
                lock_timeout_ms: "1000",
            })),
        ];
        for (sql, binds) in rendered {
            assert!(binds >= 2, "{sql}");
            // Each sets its own lock_timeout (a one-statement command has no transaction to SET it in),
            // in the statement's first row-locking step: before its FOR UPDATE or its UPDATE's RETURNING.
            let set = sql.find("set_config('lock_timeout', $");
            let locks = ["FOR UPDATE", "RETURNING"]
                .iter()
                .filter_map(|w| sql.find(w))
                .min();
            assert!(
                set.is_some_and(|set| locks.is_some_and(|locks| set < locks)),
                "{sql}"
            );
            assert_eq!(placeholders(&sql), (1..=binds).collect::<Vec<_>>(), "{sql}");
            assert!(
                !sql.lines().any(|line| line.trim_start().starts_with("--")),
                "{sql}"
            );
        }
    }
}
