//! The integration tests: every command through the real binary against a real PostgreSQL.
//! Run them with `scripts/test`, which provides a server when none is configured.

// Test code may panic on unexpected failures: that is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod chaos;
mod cli;
mod concurrency;

mod database;
mod demo;

mod devstack;
mod faults;

mod inventory;

mod lease;

mod legacy;
mod model;
mod plan;
mod roles;

mod socket;

mod support;
mod tls;
