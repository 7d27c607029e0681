//! The bottom layer: outcomes that have their own exit code, the one table of exit codes, what a database
//! error means for the user, and redaction.
//!
//! Commands return `anyhow::Result`; when an outcome is one a script may branch on (not enough nodes, not
//! found, conflict, database unreachable) they return a [`Failure`], and `main` finds it anywhere in the
//! error chain to choose the exit code. Anything else is exit 1. Every exit code is an [`Exit`]: the
//! `--help` text, this module and the README's table all come from [`Exit::ALL`] (a test holds the README
//! to it).

use diesel::result::{DatabaseErrorKind, Error as DbError};

/// A documented process exit code. The one source of the exit-code table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// The command did what was asked.
    Ok,
    /// Invalid input or any other error.
    Invalid,
    /// The command line is wrong.
    Usage,
    /// Not enough ready nodes right now; nothing was allocated (a retry may succeed).
    NotEnough,
    /// A node, an owner's allocation or a field does not exist.
    NotFound,
    /// The database is unreachable, refused the login or went away (a retry may succeed).
    Unreachable,
    /// The request conflicts with the pool's state (a name in use, a node in use, ...).
    Conflict,
    /// `health-check`: some node failed its check (and is in maintenance now).
    ChecksFailed,
    /// The request can never be satisfied as things stand (no such pool, too few matching nodes).
    Unsatisfiable,
    /// A signal stopped a waiting allocate; it withdrew its request. The process exits with 128 + the
    /// signal's number (130 for SIGINT, the number this table shows).
    Interrupted,
}

impl Exit {
    /// Every exit code, in numeric order.
    pub const ALL: [Exit; 10] = [
        Exit::Ok,
        Exit::Invalid,
        Exit::Usage,
        Exit::NotEnough,
        Exit::NotFound,
        Exit::Unreachable,
        Exit::Conflict,
        Exit::ChecksFailed,
        Exit::Unsatisfiable,
        Exit::Interrupted,
    ];

    /// The number the process exits with.
    pub fn code(self) -> u8 {
        match self {
            Exit::Ok => 0,
            Exit::Invalid => 1,
            Exit::Usage => 2,
            Exit::NotEnough => 3,
            Exit::NotFound => 4,
            Exit::Unreachable => 5,
            Exit::Conflict => 6,
            Exit::ChecksFailed => 7,
            Exit::Unsatisfiable => 8,
            Exit::Interrupted => 130,
        }
    }

    /// A few words on what it means, as `--help` and the README's table say it.
    pub fn meaning(self) -> &'static str {
        match self {
            Exit::Ok => "ok",
            Exit::Invalid => "invalid input or other error",
            Exit::Usage => "usage error",
            Exit::NotEnough => "not enough nodes (retry later)",
            Exit::NotFound => "not found",
            Exit::Unreachable => "database unreachable (retry)",
            Exit::Conflict => "conflict",
            Exit::ChecksFailed => "health check failed",
            Exit::Unsatisfiable => "request can never be satisfied as things stand (do not retry)",
            Exit::Interrupted => {
                "interrupted while waiting (128 + signal: 129 HUP, 130 INT, 143 TERM)"
            }
        }
    }

    /// The README's row for this code (a test compares the README's exit-code table with these).
    pub fn detail(self) -> &'static str {
        match self {
            Exit::Ok => "success (including `release` of an owner that holds nothing)",
            Exit::Invalid => {
                "invalid input (bad YAML, MAC, IP, config file, malformed connection string, unmigrated \
                 database), a lock or statement timeout, a `doctor` check that FAILs, or any other error"
            }
            Exit::Usage => {
                "usage error (unknown command or option, missing argument, an invalid option value such as \
                 a bad duration, `-o` the command lacks, `delete_db` without `--yes`)"
            }
            Exit::NotEnough => {
                "not enough nodes right now: fewer than COUNT ready nodes could be locked, though enough \
                 match; nothing was allocated (a retry may succeed)"
            }
            Exit::NotFound => {
                "not found: no such node, the owner holds nothing (`renew`, `get-field`, `release --node`), \
                 no such field, `renew --keep-alive` lost the lease"
            }
            Exit::Unreachable => {
                "the database is unreachable, refused the login, or dropped the connection; safe to retry"
            }
            Exit::Conflict => {
                "conflict: duplicate name, hardware another node claims, node allocated (`remove`, \
                 `maintenance`), owner already holds other nodes, node not dirty (`clean`) or not in \
                 maintenance (`--off`)"
            }
            Exit::ChecksFailed => {
                "`health-check`: some node failed its check (exit status, or killed after `--timeout`) and \
                 is in maintenance now; the others passed"
            }
            Exit::Unsatisfiable => {
                "unsatisfiable: the pool does not exist, or fewer than COUNT nodes match the request in any \
                 state (maintenance included); retrying cannot help until the inventory changes"
            }
            Exit::Interrupted => {
                "interrupted: a signal stopped `allocate --wait` while it waited; it exits with 128 + the \
                 signal (129 SIGHUP, 130 SIGINT, 143 SIGTERM), its request withdrawn and nothing held"
            }
        }
    }

    /// The one-paragraph summary `--help` ends with: `Exit codes: 0 ok, 1 ..., 6 conflict.`
    pub fn summary() -> String {
        let codes: Vec<String> = Exit::ALL
            .iter()
            .map(|e| format!("{} {}", e.code(), e.meaning()))
            .collect();
        format!("Exit codes: {}.", codes.join(", "))
    }
}

/// An expected failure with a documented exit code.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// Exit 1: the input is invalid (bad YAML, bad MAC, unknown field, ...).
    #[error("{0}")]
    Invalid(String),
    /// Exit 2: the command line is wrong in a way clap cannot see (an output format a command lacks, ...).
    #[error("{0}")]
    Usage(String),
    /// Exit 3: fewer ready nodes than requested could be locked (or they are held back for the line);
    /// nothing was allocated. `why` is empty or a parenthesised note: ` (2 requests wait ahead ...)`.
    #[error("Not enough available nodes found. Found {found}, requested {requested}{why}")]
    NotEnough {
        found: i64,
        requested: i64,
        why: String,
    },
    /// Exit 4: a node, an owner's allocation or a field does not exist.
    #[error("{0}")]
    NotFound(String),
    /// Exit 5: the database could not be reached, refused the login or went away; a job may retry.
    #[error("{0}")]
    Unreachable(String),
    /// Exit 6: the request conflicts with the pool's state (duplicate name, node in use, ...).
    #[error("{0}")]
    Conflict(String),
    /// Exit 8: the request can never be satisfied as things stand; `why` says what is missing.
    #[error("Not enough available nodes found. Found {found}, requested {requested} ({why})")]
    Unsatisfiable {
        found: i64,
        requested: i64,
        why: String,
    },
    /// Exit 7: `health-check` found nodes that failed their check.
    #[error("{0}")]
    ChecksFailed(String),
    /// Exit 128 + `signal`: a signal stopped a waiting allocate, which withdrew its request.
    #[error("{message}")]
    Interrupted { signal: i32, message: String },
}

impl Failure {
    /// The exit code for this outcome.
    pub fn exit(&self) -> Exit {
        match self {
            Failure::Invalid(_) => Exit::Invalid,
            Failure::Usage(_) => Exit::Usage,
            Failure::NotEnough { .. } => Exit::NotEnough,
            Failure::NotFound(_) => Exit::NotFound,
            Failure::Unreachable(_) => Exit::Unreachable,
            Failure::Conflict(_) => Exit::Conflict,
            Failure::Unsatisfiable { .. } => Exit::Unsatisfiable,
            Failure::ChecksFailed(_) => Exit::ChecksFailed,
            Failure::Interrupted { .. } => Exit::Interrupted,
        }
    }
}

/// The exit code for an error: the first [`Failure`] in its chain decides, a lost database connection is 5,
/// anything else is 1.
pub fn exit_code(err: &anyhow::Error) -> u8 {
    for cause in err.chain() {
        if let Some(failure) = cause.downcast_ref::<Failure>() {
            if let Failure::Interrupted { signal, .. } = failure {
                return u8::try_from(128 + signal).unwrap_or(Exit::Interrupted.code());
            }
            return failure.exit().code();
        }
        if let Some(db_err) = cause.downcast_ref::<DbError>() {
            if is_connection_lost(db_err) {
                return Exit::Unreachable.code();
            }
        }
    }
    Exit::Invalid.code()
}

/// A hint for an error that is the server cancelling a statement on one of molteniron's timeouts, which
/// its own text (`canceling statement due to lock timeout`) does not explain.
pub fn timeout_hint(err: &anyhow::Error) -> Option<&'static str> {
    err.chain().find_map(|cause| match cause.downcast_ref::<DbError>() {
        Some(DbError::DatabaseError(_, info)) if info.message().contains("due to lock timeout") => Some(
            "hint: another session held a row or table this needed for longer than lock_timeout (config \
             file); the transaction was rolled back, so running the command again is safe",
        ),
        Some(DbError::DatabaseError(_, info)) if info.message().contains("due to statement timeout") => {
            Some(
                "hint: a statement ran longer than statement_timeout (config file, or the server's for \
                 one-statement commands); the transaction was rolled back, so running the command again \
                 is safe",
            )
        }
        _ => None,
    })
}

/// Whether a database error means the connection is gone (server down, restarted, or our session
/// terminated): the job may retry, exit 5. libpq reports most of these only as message text.
pub fn is_connection_lost(err: &DbError) -> bool {
    match err {
        DbError::DatabaseError(DatabaseErrorKind::ClosedConnection, _) => true,
        DbError::DatabaseError(_, info) => {
            let message = info.message();
            [
                "server closed the connection",
                "terminating connection",
                "no connection to the server",
                "could not receive data from server",
                "could not send data to server",
                "the database system is shutting down",
                "the database system is starting up",
                "connection to server was lost",
            ]
            .iter()
            .any(|m| message.contains(m))
        }
        _ => false,
    }
}

/// Whether libpq refused the connection string itself (its parse errors) rather than failing to connect.
pub fn is_conninfo_error(message: &str) -> bool {
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

/// Whether a connection was refused for a start-up parameter a pooler does not support (PgBouncer's
/// `unsupported startup parameter: options`): a configuration error, never worth a retry.
pub fn is_pooler_refusal(message: &str) -> bool {
    message.contains("unsupported startup parameter")
}

/// Whether a database error says a table, column or function is missing (an unmigrated database).
pub fn is_missing_relation(err: &DbError) -> bool {
    matches!(err, DbError::DatabaseError(_, info) if info.message().contains("does not exist"))
}

/// Whether an error is the server refusing the session's role a privilege (SQLSTATE 42501 as PostgreSQL
/// words it: "permission denied for table nodes", "... for schema public"). Diesel's migration harness
/// wraps the database error in its own, so that is recognised by its text.
pub fn is_permission_denied(err: &anyhow::Error) -> bool {
    err.chain()
        .any(|cause| match cause.downcast_ref::<DbError>() {
            Some(DbError::DatabaseError(_, info)) => {
                info.message().starts_with("permission denied")
            }
            Some(_) => false,
            None => cause.to_string().contains("permission denied for "),
        })
}

/// Whether a failure is worth retrying: the server could not be reached (but did not refuse the login), the
/// connection was lost or terminated, or the transaction lost a serialization or deadlock conflict.
pub fn is_transient(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        if let Some(Failure::Unreachable(message)) = cause.downcast_ref::<Failure>() {
            let refused = [
                "authentication failed",
                "does not exist",
                "no pg_hba.conf entry",
                "permission denied",
            ];
            return !refused.iter().any(|m| message.contains(m));
        }
        match cause.downcast_ref::<DbError>() {
            Some(db_err @ DbError::DatabaseError(kind, info)) => {
                is_connection_lost(db_err)
                    || matches!(kind, DatabaseErrorKind::SerializationFailure)
                    || info.message().contains("deadlock detected")
            }
            _ => false,
        }
    })
}

/// Replaces every occurrence of each secret in `text` with `***`. Secrets shorter than four characters
/// are left alone: replacing every "e" would garble the message and reveal the password all the same.
pub fn redact(text: &str, secrets: &[String]) -> String {
    let mut secrets: Vec<&String> = secrets.iter().filter(|s| s.chars().count() >= 4).collect();
    // Longest first, so a password that contains another is replaced whole.
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    secrets.iter().fold(text.to_owned(), |acc, secret| {
        acc.replace(secret.as_str(), "***")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pooler_refusing_startup_options_is_invalid_not_transient() {
        let message = "connection to server at \"127.0.0.1\", port 6432 failed: FATAL:  unsupported \
                       startup parameter: options";
        assert!(is_pooler_refusal(message));
        let err: anyhow::Error = Failure::Invalid(message.to_owned()).into();
        assert!(!is_transient(&err));
        assert_eq!(exit_code(&err), 1);
        assert!(!is_pooler_refusal(
            "could not connect to server: Connection refused"
        ));
    }

    #[test]
    fn exit_codes_are_numbered_in_order_and_each_failure_has_its_own() {
        let codes: Vec<u8> = Exit::ALL.iter().map(|e| e.code()).collect();
        assert!(codes.windows(2).all(|w| w[0] < w[1]), "{codes:?}");
        assert_eq!(codes[0], 0);
        let failures = [
            Failure::Invalid(String::new()),
            Failure::Usage(String::new()),
            Failure::NotEnough {
                found: 0,
                requested: 1,
                why: String::new(),
            },
            Failure::NotFound(String::new()),
            Failure::Unreachable(String::new()),
            Failure::Conflict(String::new()),
            Failure::ChecksFailed(String::new()),
            Failure::Unsatisfiable {
                found: 0,
                requested: 1,
                why: String::new(),
            },
            Failure::Interrupted {
                signal: 2,
                message: String::new(),
            },
        ];
        let exits: Vec<Exit> = failures.iter().map(Failure::exit).collect();
        assert_eq!(exits, Exit::ALL[1..]);
        assert!(Exit::summary().starts_with("Exit codes: 0 ok, 1 invalid input"));
    }
}
