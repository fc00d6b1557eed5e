//! Integration tests: the real server over HTTP, on SQLite and (with
//! `TESSERA_TEST_DATABASE_URL`) on PostgreSQL.

mod common;

mod access;
mod automations;

mod definitions;
mod events;
mod imports;
mod instances;
mod layouts;
mod lifecycle;
mod openapi;
mod pipeline;
mod planner;
mod queries;
mod records;
mod reports;
mod schema_changes;
mod search;
mod server;
mod smtp;
mod templates;
mod webhooks;
