//! Mail: Handlebars templates, the outbox, and delivery through SMTP (or `.eml` files).

pub mod deliver;
pub mod render;
pub mod service;
pub mod shapes;
pub mod unsubscribe;
