//! Answers of report queries kept in memory while the data they read is unchanged.
//!
//! An entry is keyed by the query, the caller (their id and permissions), the schema epoch, the
//! time zone, the language and the day; it remembers the write generation of every entity it
//! read (the reported entity and those its lookups name). A subscriber bumps an entity's
//! generation after every committed write to it, which retires the entries that read it.
//! Writes made by another server instance are not heard here, so entries also expire after
//! [`TTL`].

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::events::{Committed, Subscriber};

/// How long an entry lives at most (writes on other instances are not heard).
pub const TTL: Duration = Duration::from_secs(30);
/// Entries kept at most; the cache starts over when full.
const MAX_ENTRIES: usize = 2_000;

struct Entry {
    deps: Vec<(String, u64)>,
    at: Instant,
    value: Value,
}

#[derive(Default)]
pub struct ReportCache {
    generations: Mutex<HashMap<String, u64>>,
    entries: Mutex<HashMap<u64, Entry>>,
}

/// A key from its parts.
pub fn key(parts: &[&str]) -> u64 {
    let mut h = DefaultHasher::new();
    for p in parts {
        p.hash(&mut h);
    }
    h.finish()
}

impl ReportCache {
    pub fn generation(&self, entity: &str) -> u64 {
        self.generations
            .lock()
            .map(|g| g.get(entity).copied().unwrap_or_default())
            .unwrap_or_default()
    }

    /// The generations of some entities, read before a report runs.
    pub fn generations(&self, entities: &[String]) -> Vec<(String, u64)> {
        entities
            .iter()
            .map(|e| (e.clone(), self.generation(e)))
            .collect()
    }

    pub fn get(&self, key: u64) -> Option<Value> {
        let entries = self.entries.lock().ok()?;
        let entry = entries.get(&key)?;
        let fresh = entry.at.elapsed() < TTL
            && entry
                .deps
                .iter()
                .all(|(entity, generation)| self.generation(entity) == *generation);
        fresh.then(|| entry.value.clone())
    }

    pub fn put(&self, key: u64, deps: Vec<(String, u64)>, value: Value) {
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
            entries.insert(
                key,
                Entry {
                    deps,
                    at: Instant::now(),
                    value,
                },
            );
        }
    }

    /// A write to `entity` committed.
    pub fn bump(&self, entity: &str) {
        if let Ok(mut g) = self.generations.lock() {
            *g.entry(entity.to_owned()).or_default() += 1;
        }
    }
}

/// The subscriber retiring entries on committed writes.
pub struct Invalidator(pub Arc<ReportCache>);

impl Subscriber for Invalidator {
    fn name(&self) -> &'static str {
        "report cache"
    }

    fn hears_commits(&self) -> bool {
        true
    }

    fn committed(&self, event: &Committed) {
        self.0.bump(&event.entity);
    }

    /// One bump per entity of a batch (its records are mostly of one).
    fn committed_many(&self, events: &[Committed]) {
        for run in events.chunk_by(|a, b| a.entity == b.entity) {
            self.0.bump(&run[0].entity);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_retires_what_read_its_entity() {
        let cache = ReportCache::default();
        let deps = cache.generations(&["order".into(), "customer".into()]);
        cache.put(1, deps, Value::from(3));
        assert_eq!(cache.get(1), Some(Value::from(3)));
        cache.bump("product");
        assert_eq!(cache.get(1), Some(Value::from(3)), "another entity");
        cache.bump("customer");
        assert_eq!(cache.get(1), None);
    }
}
