//! Records of user-defined entities: payload validation, filters, lists, reads and writes with
//! history, computed fields, merges, bulk changes and tags. Handlers call these services; the
//! store runs the SQL.

pub mod bulk;
pub mod compute;
pub mod filter;
pub mod input;
pub mod list;
pub mod output;
mod rules;
pub mod service;
pub mod tags;
pub mod write;
