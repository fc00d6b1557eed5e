//! The sign-in cache: the access a session or API token resolved to, kept while the auth
//! epoch it was read under is still the database's. Every change that could make a cached
//! answer wrong (a session ended, a token revoked, a user deactivated or edited, roles or
//! departments changed) moves the epoch through database triggers, so it holds on the next
//! request on every server sharing the database; a request then costs one primary-key read
//! instead of the user, roles and departments join and the parsing of every role.

use std::collections::HashMap;
use std::sync::Mutex;

use chrono::{DateTime, Utc};

use super::access::Access;

/// Entries kept before the cache starts again (a bound, not a tuning knob: a full cache is
/// cleared, and the busy tokens come back on their next request).
const CAPACITY: usize = 10_000;

struct Entry {
    access: Access,
    auth_epoch: i64,
    expires_at: Option<DateTime<Utc>>,
}

#[derive(Default)]
pub struct SignInCache {
    entries: Mutex<HashMap<String, Entry>>,
}

impl SignInCache {
    /// The access of a token hash, if it was read under `auth_epoch` and has not expired.
    pub fn get(&self, token_hash: &str, auth_epoch: i64, now: DateTime<Utc>) -> Option<Access> {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let entry = entries.get(token_hash)?;
        if entry.auth_epoch == auth_epoch && entry.expires_at.is_none_or(|at| at > now) {
            return Some(entry.access.clone());
        }
        // Stale under a newer epoch: every entry of an older epoch is, so drop them all.
        if entry.auth_epoch != auth_epoch {
            entries.retain(|_, e| e.auth_epoch == auth_epoch);
        } else {
            entries.remove(token_hash);
        }
        None
    }

    /// Keeps the access of a token hash, read after the database's auth epoch was
    /// `auth_epoch` (read before: a change in between moves the epoch past it).
    pub fn put(
        &self,
        token_hash: String,
        access: Access,
        auth_epoch: i64,
        expires_at: Option<DateTime<Utc>>,
    ) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= CAPACITY {
            entries.clear();
        }
        entries.insert(
            token_hash,
            Entry {
                access,
                auth_epoch,
                expires_at,
            },
        );
    }
}
