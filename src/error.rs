//! Outcomes that have their own exit code.
//!
//! Commands return `anyhow::Result`; when an outcome is one a script may branch on (not enough nodes, not
//! found, conflict, database unreachable) they return one of these variants, and `main` finds it anywhere in
//! the error chain to choose the exit code. Anything else is exit 1.

/// An expected failure with a documented exit code (see the README's exit-code table).
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// Exit 1: the input is invalid (bad YAML, bad MAC, unknown field, ...).
    #[error("{0}")]
    Invalid(String),
    /// Exit 2: the command line is wrong in a way clap cannot see (an output format a command lacks, ...).
    #[error("{0}")]
    Usage(String),
    /// Exit 3: fewer ready nodes than requested could be locked; nothing was allocated.
    #[error("Not enough available nodes found. Found {found}, requested {requested}")]
    NotEnough { found: i64, requested: i64 },
    /// Exit 4: a node, an owner's allocation or a field does not exist.
    #[error("{0}")]
    NotFound(String),
    /// Exit 5: the database could not be reached, refused the login or went away; a job may retry.
    #[error("{0}")]
    Unreachable(String),
    /// Exit 6: the request conflicts with the pool's state (duplicate name, node in use, ...).
    #[error("{0}")]
    Conflict(String),
}

impl Failure {
    /// The process exit code for this outcome.
    pub fn exit_code(&self) -> u8 {
        match self {
            Failure::Invalid(_) => 1,
            Failure::Usage(_) => 2,
            Failure::NotEnough { .. } => 3,
            Failure::NotFound(_) => 4,
            Failure::Unreachable(_) => 5,
            Failure::Conflict(_) => 6,
        }
    }
}

/// The exit code for an error: the first [`Failure`] in its chain decides, a lost database connection is 5,
/// anything else is 1.
pub fn exit_code(err: &anyhow::Error) -> u8 {
    for cause in err.chain() {
        if let Some(failure) = cause.downcast_ref::<Failure>() {
            return failure.exit_code();
        }
        if let Some(db_err) = cause.downcast_ref::<diesel::result::Error>() {
            if crate::db::is_connection_lost(db_err) {
                return 5;
            }
        }
    }
    1
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
