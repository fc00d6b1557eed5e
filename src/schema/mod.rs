//! Entity definitions as data: parsing and completing them, validating them against the
//! meta-schema, planning changes against live tables, and caching compiled validators.

pub mod compiled;
pub mod definition;
pub mod meta;
pub mod names;
pub mod plan;
pub mod service;
pub mod shapes;
