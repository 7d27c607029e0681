//! The integration tests: every command through the real binary against a real PostgreSQL.
//! Run them with `scripts/test`, which provides a server when none is configured.

// Test code may panic on unexpected failures: that is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod chaos;
mod cli;
mod completions;
mod concurrency;

mod database;
mod demo;

mod devstack;
mod docs;
mod doctor;
mod exit_codes;
mod failover;
mod faults;
mod health;
mod history;

mod integrations;
mod inventory;
mod keepalive;
mod layers;

mod lease;
mod matching;
mod metrics;

mod legacy;
mod model;
mod plan;
mod pooler;
mod queue;
mod report;
mod roles;
mod secrets;
mod store;

mod socket;

mod support;
mod tls;
mod tox;
