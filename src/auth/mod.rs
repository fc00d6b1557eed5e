//! Users, departments, roles and the permission check. `Access` is what every service asks
//! before it reads or writes; the HTTP edge makes one from the caller's session or token.

pub mod access;
pub mod cache;
pub mod permissions;
pub mod roles;
pub mod secrets;
pub mod service;
pub mod shapes;

pub use access::{Access, Actor, Department};
pub use permissions::{Action, FieldAccess, Scope, Special};
