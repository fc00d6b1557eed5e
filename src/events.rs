//! Record events as data. The one write path (`records::write`) emits a [`RecordEvent`] for
//! every record it creates, changes, trashes, restores, merges or erases, inside the write's
//! transaction; the [`Subscriber`]s registered at start act on it there (queue an automation
//! run, update the search index, queue a webhook delivery), so their work commits or rolls
//! back with the write. A subscriber may also hear about the event once the transaction has
//! committed (caches, counters, tests).
//!
//! Before-save hooks ([`BeforeSave`]) run before a save made by a person or an integration and
//! may change the payload or refuse the save; automation implements them with scripts. Records
//! and the schema know these traits, not their implementations.

use std::borrow::Cow;
use std::sync::{Arc, RwLock};

use chrono::{DateTime, Utc};
use futures_util::future::BoxFuture;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::auth::Access;
use crate::context::Context;
use crate::error::Result;
use crate::schema::compiled::{Catalog, CompiledEntity};
use crate::store::Tx;

/// What happened to a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    Created,
    Updated,
    /// Moved to the trash.
    Deleted,
    /// Brought back from the trash.
    Restored,
    /// Other records were merged into this one (they are `Deleted`).
    Merged,
    /// Erased for good from the trash.
    Erased,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Created => "created",
            EventKind::Updated => "updated",
            EventKind::Deleted => "deleted",
            EventKind::Restored => "restored",
            EventKind::Merged => "merged",
            EventKind::Erased => "erased",
        }
    }
}

/// Who made a write happen: subscribers may treat them differently (no automation fires for
/// a template's sample data; imports choose).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// The REST API (an integration, or the browser through the API).
    Api,
    /// The web pages.
    Ui,
    /// An automation's script.
    Script,
    /// A file import; `triggers` says whether record automations should fire.
    Import { triggers: bool },
    /// A template's sample data.
    Template,
}

impl Origin {
    /// Whether record automations fire for writes from here.
    pub fn fires_automations(self) -> bool {
        match self {
            Origin::Api | Origin::Ui | Origin::Script => true,
            Origin::Import { triggers } => triggers,
            Origin::Template => false,
        }
    }

    /// Whether before-save hooks guard writes from here (people and integrations; scripts
    /// and bulk loads are not run through them).
    pub fn runs_before_save(self) -> bool {
        matches!(self, Origin::Api | Origin::Ui)
    }
}

/// One record event.
#[derive(Debug, Clone, Serialize)]
pub struct RecordEvent {
    pub entity: String,
    pub id: String,
    pub kind: EventKind,
    /// Changed fields (and `owner`, `department`, `tags`): `{"field": {"old": …, "new": …}}`.
    /// A record created in a batch leaves them empty: they are all its values, made from
    /// `record` by [`RecordEvent::changes_of`] for a subscriber that reads them.
    pub changes: Map<String, Value>,
    /// The record as it is after the write (as it was last, for `deleted` and `erased`),
    /// with every field: subscribers narrow it to what their audience may read.
    pub record: Value,
    /// The record before the write (updates and merges).
    pub old: Option<Value>,
    /// The user who made the write (none for the system).
    pub actor: Option<String>,
    pub origin: Origin,
    pub at: DateTime<Utc>,
    /// For `merged`: the records merged into this one.
    pub merged: Vec<String>,
}

impl RecordEvent {
    /// The changed fields: [`RecordEvent::changes`], or for a created record that left them
    /// empty, every value it has as a change from nothing (what its history keeps).
    pub fn changes_of(&self, entity: &CompiledEntity) -> Cow<'_, Map<String, Value>> {
        match (&self.kind, &self.record) {
            (EventKind::Created, Value::Object(record)) if self.changes.is_empty() => {
                Cow::Owned(crate::records::service::created_changes(entity, record))
            }
            _ => Cow::Borrowed(&self.changes),
        }
    }
}

/// What a subscriber that hears commits is told of each event once its write has committed
/// (the event itself, with its record and changes, is gone by then).
#[derive(Debug, Clone)]
pub struct Committed {
    pub entity: String,
    pub id: String,
    pub kind: EventKind,
    pub origin: Origin,
}

impl From<&RecordEvent> for Committed {
    fn from(event: &RecordEvent) -> Committed {
        Committed {
            entity: event.entity.clone(),
            id: event.id.clone(),
            kind: event.kind,
            origin: event.origin,
        }
    }
}

/// What a subscriber may use while it handles an event inside the write's transaction.
pub struct EventScope<'a> {
    /// The schema the write was made with.
    pub catalog: &'a Arc<Catalog>,
    /// The writer (automation uses its cascade depth).
    pub access: &'a Access,
}

/// Hears record events.
pub trait Subscriber: Send + Sync {
    /// For logs.
    fn name(&self) -> &'static str;

    /// Acts on an event inside the write's transaction; an error rolls the write back.
    fn on_event<'a>(
        &'a self,
        _tx: &'a mut Tx,
        _scope: &'a EventScope<'a>,
        _event: &'a RecordEvent,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async { Ok(()) })
    }

    /// Acts on the events of many records written together (an import's batch), in order;
    /// one at a time unless the subscriber can do better.
    fn on_events<'a>(
        &'a self,
        tx: &'a mut Tx,
        scope: &'a EventScope<'a>,
        events: &'a [RecordEvent],
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            for event in events {
                self.on_event(tx, scope, event).await?;
            }
            Ok(())
        })
    }

    /// Whether [`Subscriber::committed`] should be called (it costs a little per write).
    fn hears_commits(&self) -> bool {
        false
    }

    /// Called once the write's transaction has committed, never for a write rolled back.
    fn committed(&self, _event: &Committed) {}

    /// The events of many records written together, once committed, in order; one at a time
    /// unless the subscriber can do better.
    fn committed_many(&self, events: &[Committed]) {
        for event in events {
            self.committed(event);
        }
    }
}

/// Fields a before-save hook set, and the access to check them with (the hook's own).
#[derive(Clone)]
pub struct Overlay {
    /// The hook, for messages ("set by 'Score leads': …").
    pub by: String,
    pub set: Map<String, Value>,
    pub access: Access,
}

/// A hook that runs before a save made by a person or an integration.
pub trait BeforeSave: Send + Sync {
    /// Whether the hook wants to see this save (reads only its own cached configuration).
    fn listens<'a>(
        &'a self,
        ctx: &'a Context,
        catalog: &'a Catalog,
        entity: &'a str,
        kind: EventKind,
        payload: &'a Value,
    ) -> BoxFuture<'a, Result<bool>>;

    /// Runs before the save: `record` is the record as it will be, `old` as it is. Returns
    /// the fields to lay over the payload, or an error that refuses the save.
    #[allow(clippy::too_many_arguments)]
    fn run<'a>(
        &'a self,
        ctx: &'a Context,
        catalog: &'a Catalog,
        entity: &'a str,
        kind: EventKind,
        payload: &'a Value,
        old: Option<&'a Value>,
    ) -> BoxFuture<'a, Result<Vec<Overlay>>>;
}

type Subscribers = Arc<[Arc<dyn Subscriber>]>;

/// The subscribers and hooks of one server, registered at start.
#[derive(Default)]
pub struct Events {
    subscribers: RwLock<Option<Subscribers>>,
    before_save: RwLock<Option<Arc<dyn BeforeSave>>>,
}

impl Events {
    /// Adds a subscriber (at start; tests add their own).
    pub fn subscribe(&self, subscriber: Arc<dyn Subscriber>) {
        if let Ok(mut slot) = self.subscribers.write() {
            let mut list: Vec<Arc<dyn Subscriber>> =
                slot.as_deref().map(<[_]>::to_vec).unwrap_or_default();
            list.push(subscriber);
            *slot = Some(list.into());
        }
    }

    /// The subscribers as of now, for one write.
    pub fn subscribers(&self) -> Subscribers {
        self.subscribers
            .read()
            .ok()
            .and_then(|s| s.clone())
            .unwrap_or_else(|| Arc::new([]))
    }

    pub fn set_before_save(&self, hook: Arc<dyn BeforeSave>) {
        if let Ok(mut slot) = self.before_save.write() {
            *slot = Some(hook);
        }
    }

    pub fn before_save(&self) -> Option<Arc<dyn BeforeSave>> {
        self.before_save.read().ok().and_then(|h| h.clone())
    }
}

/// Hands an event to every subscriber inside the transaction, and registers the commit
/// notice for those that hear commits.
pub async fn emit(
    tx: &mut Tx,
    subscribers: &Subscribers,
    scope: &EventScope<'_>,
    event: RecordEvent,
) -> Result<()> {
    emit_many(tx, subscribers, scope, std::slice::from_ref(&event)).await
}

/// [`emit`] for the events of many records written together: each subscriber hears them all
/// at once.
pub async fn emit_many(
    tx: &mut Tx,
    subscribers: &Subscribers,
    scope: &EventScope<'_>,
    events: &[RecordEvent],
) -> Result<()> {
    if events.is_empty() {
        return Ok(());
    }
    for subscriber in subscribers.iter() {
        subscriber.on_events(tx, scope, events).await?;
    }
    if subscribers.iter().any(|s| s.hears_commits()) {
        let events: Vec<Committed> = events.iter().map(Committed::from).collect();
        let subscribers = subscribers.clone();
        tx.after_commit(Box::new(move || {
            for subscriber in subscribers.iter().filter(|s| s.hears_commits()) {
                subscriber.committed_many(&events);
            }
        }));
    }
    Ok(())
}
