//! The domain's words as types, just above `error`: node states, event actions and the small value
//! helpers every layer shares. Everything here is plain data; nothing reads the database or prints.
//!
//! In the database these are TEXT columns with a CHECK listing every value (a test holds [`NodeState::ALL`]
//! and [`EventAction::ALL`] to those lists). The state machine is drawn in docs/design.md.

use std::fmt;
use std::io::Write;

use chrono::{DateTime, Utc};
use diesel::deserialize::{self, FromSql, FromSqlRow};
use diesel::expression::AsExpression;
use diesel::pg::{Pg, PgValue};
use diesel::serialize::{self, Output, ToSql};
use diesel::sql_types::Text;
use serde_json::Value;

/// Declares a TEXT-backed enum: `as_str`, `ALL`, `Display`, parsing and diesel's text mapping.
macro_rules! text_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal,)+ }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, AsExpression, FromSqlRow)]
        #[diesel(sql_type = Text)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)+
        }

        impl $name {
            /// Every value, in the order the migration's CHECK lists them.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The text stored in the database and shown to people.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }

            /// The value whose text is `text`.
            pub fn parse(text: &str) -> Option<$name> {
                match text {
                    $($text => Some($name::$variant),)+
                    _ => None,
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl ToSql<Text, Pg> for $name {
            fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Pg>) -> serialize::Result {
                out.write_all(self.as_str().as_bytes())?;
                Ok(serialize::IsNull::No)
            }
        }

        impl FromSql<Text, Pg> for $name {
            fn from_sql(bytes: PgValue<'_>) -> deserialize::Result<Self> {
                let text = std::str::from_utf8(bytes.as_bytes())?;
                $name::parse(text).ok_or_else(|| {
                    format!(concat!("unknown ", stringify!($name), " {:?}"), text).into()
                })
            }
        }
    };
}

text_enum! {
    /// Where a node is in its life. Allocation moves `Ready → Allocated`; release and reap move
    /// `Allocated → Ready` (or `Dirty`, as the config says); `clean` moves `Dirty → Ready`; `maintenance`
    /// moves any state to `Maintenance` (releasing an allocated node only with `--force`) and `--off` moves
    /// it back to `Ready`. The table's CHECKs tie `owner` to `Allocated` and `maintenance_reason` to
    /// `Maintenance`.
    NodeState {
        /// In the pool, free for the next allocate. Entered by add/import, release, reap, clean and
        /// `maintenance --off`; left by allocate and `maintenance`.
        Ready = "ready",
        /// Held by one owner until release, reap or a forced maintenance/remove. Entered only by allocate.
        Allocated = "allocated",
        /// Released but needing `molteniron clean` (release_state / reap_state `dirty`). Left by clean or
        /// maintenance.
        Dirty = "dirty",
        /// Out of service with a reason, set by an operator; left only by `maintenance --off`.
        Maintenance = "maintenance",
    }
}

text_enum! {
    /// What an events row records. Every state change and every inventory edit writes exactly one, and the
    /// database fills in who made it (the `actor` column's default).
    EventAction {
        /// A node was added (add, import, the legacy add forms).
        Add = "add",
        /// `import --update` changed a node's inventory.
        Update = "update",
        /// A node was checked out (allocate).
        Allocate = "allocate",
        /// A node was given back by its owner (release).
        Release = "release",
        /// An operator took an allocated node from its owner (`maintenance --force`); the detail names the
        /// previous owner.
        ForceRelease = "force_release",
        /// A lease was extended (renew).
        Renew = "renew",
        /// An expired (or `--max-age`) allocation was ended by reap.
        Reap = "reap",
        /// A dirty node was made ready (clean).
        Clean = "clean",
        /// A node was taken out of service (maintenance).
        MaintenanceOn = "maintenance_on",
        /// A node was put back into service (`maintenance --off`).
        MaintenanceOff = "maintenance_off",
        /// One inventory field was changed (set-field).
        SetField = "set_field",
        /// A node was deleted (remove); its events stay.
        Remove = "remove",
        /// A request joined the line (`allocate --wait`); no node. The detail has the request's id,
        /// count, pool, filters and priority.
        Enqueue = "enqueue",
        /// A waiting request left the line without nodes; no node. The detail's reason is `timeout`,
        /// `signal`, `release` or `waiter gone`.
        Withdraw = "withdraw",
        /// Failed jobs in a row (`quarantine_after`, from two owners at least) took the node out of
        /// service (`release --failed`).
        Quarantine = "quarantine",
        /// `health-check` ran its command on the node; the detail's result is `passed` or `failed`.
        HealthCheck = "health_check",
    }
}

text_enum! {
    /// Who put a node in maintenance (`nodes.maintenance_by`): kept as data so that
    /// `health-check --include-quarantined` can tell an automatic quarantine from an operator's decision.
    MaintenanceBy {
        /// `molteniron maintenance NODE --reason ...`; only `maintenance --off` brings it back.
        Operator = "operator",
        /// Failed jobs in a row (`release --failed`, `quarantine_after`).
        Quarantine = "quarantine",
        /// A failed `health-check`.
        HealthCheck = "health_check",
    }
}

text_enum! {
    /// Where a waiting request is (the `requests` table; docs/design.md draws it). `allocate --wait`
    /// inserts it `Waiting`; whichever process serves the line moves it to `Granted` in the transaction
    /// that allocates its nodes; its own waiting process deletes it when it picks them up. A withdrawal
    /// (release, timeout, signal, a silent waiter) deletes it from either state.
    RequestState {
        /// In line: no node yet.
        Waiting = "waiting",
        /// Its nodes are allocated to its owner; its waiting process has not picked them up yet.
        Granted = "granted",
    }
}

/// The Ironic `properties` keys that describe a node's hardware, in the order every output lists them
/// (status --baremetal, allocate, `-o env` as `MOLTENIRON_CPU_ARCH`..., DevStack's `IRONIC_HW_*`).
pub const HARDWARE_PROPERTIES: [&str; 4] = ["cpu_arch", "cpus", "memory_mb", "local_gb"];

text_enum! {
    /// The group roles `molteniron roles` sets up, by what their members may do, narrowest first. Each
    /// is named `PREFIX_` and this text (`molteniron_job` by default).
    Group {
        /// Reads the pool without credentials (the view nodes_public, events): status, history.
        Readonly = "readonly",
        /// Runs jobs: allocate, release, renew, reap, get-field, export; reads credentials.
        Job = "job",
        /// Migrates and changes the inventory.
        Admin = "admin",
    }
}

text_enum! {
    /// How one check of `molteniron doctor` came out.
    Verdict {
        /// As it should be.
        Ok = "OK",
        /// Works, but not as it should for a shared pool (the detail says what can go wrong).
        Warn = "WARN",
        /// Broken: molteniron cannot do its job this way.
        Fail = "FAIL",
    }
}

/// One line of `molteniron doctor`: a check's name, how it came out, what was found and, unless it is
/// [`Verdict::Ok`], how to fix it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Check {
    pub check: &'static str,
    pub status: Verdict,
    pub detail: String,
    pub fix: Option<String>,
}

impl Check {
    /// A check that passed.
    pub fn ok(check: &'static str, detail: impl Into<String>) -> Check {
        Check {
            check,
            status: Verdict::Ok,
            detail: detail.into(),
            fix: None,
        }
    }

    /// A check that warns, with its fix.
    pub fn warn(check: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Check {
        Check {
            check,
            status: Verdict::Warn,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }

    /// A check that failed, with its fix.
    pub fn fail(check: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Check {
        Check {
            check,
            status: Verdict::Fail,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }
}

/// Renders a value for plain-text output: strings without quotes, null as empty, the rest as JSON.
pub fn plain(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// `text` with every control character escaped (`\n`, `\u{1b}`), so that stored or hostile text can
/// neither break a line nor send a terminal escape.
pub fn escape_controls(text: &str) -> String {
    if !text.chars().any(char::is_control) {
        return text.to_owned();
    }
    text.chars()
        .map(|c| match c {
            c if c.is_control() => c.escape_default().to_string(),
            c => c.to_string(),
        })
        .collect()
}

/// A time for tables and env lines: RFC 3339 in UTC to the second (`2026-11-21T10:41:59Z`).
pub fn timestamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// `1h05m`, `3d04h`, `42s`: a compact span for tables.
pub fn short_duration(secs: i64) -> String {
    let (d, h, m, s) = (
        secs / 86_400,
        secs % 86_400 / 3600,
        secs % 3600 / 60,
        secs % 60,
    );
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) => format!("{m}m{s:02}s"),
        (0, _, _) => format!("{h}h{m:02}m"),
        _ => format!("{d}d{h:02}h"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_round_trips_through_its_text() {
        for state in NodeState::ALL {
            assert_eq!(NodeState::parse(state.as_str()), Some(*state));
        }
        for action in EventAction::ALL {
            assert_eq!(EventAction::parse(action.as_str()), Some(*action));
        }
        for state in RequestState::ALL {
            assert_eq!(RequestState::parse(state.as_str()), Some(*state));
        }
        assert_eq!(NodeState::parse("Ready"), None);
    }
}
