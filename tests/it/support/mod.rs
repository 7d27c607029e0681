//! Test support, by concern: `db` (the per-test database and its template), `server` (a private server
//! of one test's own), `process` (running the binary) and `json` (reading its JSON output).

pub mod db;
pub mod json;
pub mod process;
pub mod server;

pub use db::*;
pub use json::{json, names};
pub use process::*;
pub use server::*;
