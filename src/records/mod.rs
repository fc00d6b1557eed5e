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

/// The position of the first item that matches, looked for from `start` on and then from the
/// beginning. A record's columns and fields mostly come in the order they are asked for, so
/// each is found at once from where the one before was.
fn position_from<T>(items: &[T], start: usize, matches: impl Fn(&T) -> bool) -> Option<usize> {
    (start..items.len())
        .chain(0..start.min(items.len()))
        .find(|&i| matches(&items[i]))
}
