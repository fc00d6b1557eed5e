//! Tessera: a self-hosted low-code CRM platform. Entities are data (JSON Schema documents),
//! records live in real tables, and one binary serves it all on SQLite or PostgreSQL.
//!
//! A tour, in the order a request travels: the server assembles everything; a request enters
//! through the pages or the API, becomes an `Access`, and reaches the services; record writes
//! go through the one write path, which emits events that features subscribe to; everything
//! ends in the store, the only module that writes SQL.

/// HTTP routes, thin handlers and problem+json errors (`/api/...`), the OpenAPI document.
pub mod api;
/// Users, departments, roles, sessions and tokens; `Access`, the one permission check.
pub mod auth;
/// Automations: sandboxed Rhai scripts, their triggers (an event subscriber), runs and log.
pub mod automation;
/// Charts drawn on the server as SVG (no scripts, no style attributes), from reports.
pub mod charts;
/// Command-line flags and `TESSERA_*` environment variables.
pub mod config;
/// What every service shares: the database, the compiled schema, the event subscribers.
pub mod context;
/// The crate-wide error type that every layer returns.
pub mod error;
/// Record events as data, their subscribers, and the before-save hook.
pub mod events;
/// The expression language of filters and formulas: lexer, parser, type checks, evaluation.
pub mod expr;
/// Field kinds, one file each: settings, column, JSON Schema, conversions, text forms,
/// capabilities.
pub mod fields;
/// The workers of the durable job queue.
pub mod jobs;
/// The public, unauthenticated knowledge-base search.
pub mod knowledge_base;
/// Forms and views: layouts of records as data.
pub mod layouts;
/// Mail templates, the outbox and delivery.
pub mod mail;
/// Pages of the logs: limits and `before` cursors.
pub mod paging;
/// Records of any entity: the one write path, the one read query, the JSON clients see.
pub mod records;
/// Reports: grouped queries through the read scope, built-in analyses (the funnel).
pub mod reports;
/// Entity definitions: names, parsing and completion, the meta-schema, change plans, the
/// compiled cache and the service that applies changes.
pub mod schema;
/// Global search across entities, Chinese included: tokens, the index (a subscriber), the query.
pub mod search;
/// The assembly: the router, job workers, cron scheduler and event subscribers of a server.
pub mod server;
/// System settings (S1).
pub mod settings;
/// Planner statistics kept current: refreshed after bulk loads and marked growth (a subscriber).
pub mod statistics;
/// The only module that writes SQL: pools, dialects, DDL, system tables, record tables.
pub mod store;
/// Template packages: built-in CRM modules and those users export and share.
pub mod templates;
/// Records in and out of spreadsheets: CSV and XLSX exports and imports (mapping, dry run,
/// upsert, undo), cells through the field kinds' text forms.
pub mod transfer;
/// The web pages: server-rendered from metadata, embedded assets, strings in two languages.
pub mod ui;
/// Outbound webhooks: endpoints, signed deliveries queued by a subscriber, retries.
pub mod webhooks;
/// Shapes shared by the typed bodies and answers of the fixed resources: lists, times, nulls.
pub mod wire;

pub use error::{Error, Result};
