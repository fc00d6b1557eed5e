//! Record triggers, as a subscriber of record events and as the before-save hook.
//!
//! After-save triggers become jobs in the same transaction as the write (so an event is never
//! lost, nor fired for a write that rolled back); their condition is tested against the row
//! just written. Before-save scripts run before a save made by a person or an integration and
//! may change its fields or refuse it.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use chrono::Utc;
use futures_util::future::BoxFuture;
use serde_json::{Map, Value, json};

use super::Scripts;
use super::definition::{Event, RecordTrigger};
use super::run::{self, Mode, RunRequest, Script};
use crate::auth::Access;
use crate::context::Context;
use crate::error::{Error, Result};
use crate::events::{BeforeSave, EventKind, EventScope, Overlay, RecordEvent, Subscriber};
use crate::jobs;
use crate::records::filter::{self, FilterContext};
use crate::schema::compiled::Catalog;
use crate::store::automations::{self as store, RunRow};
use crate::store::jobs::{self as queue, NewJob};
use crate::store::{Executor, Tx, records};

/// How deep writes made by automations may fire further automations.
pub const MAX_CASCADE: u32 = 5;
/// Attempts of a record-triggered run whose database work failed.
pub const RUN_ATTEMPTS: i64 = 3;

type ByEntity = HashMap<String, Vec<Arc<RecordTrigger>>>;

/// The enabled record and before-save triggers, by entity, as of a schema epoch (saving an
/// automation moves the epoch, so a new epoch means the triggers may have changed).
#[derive(Default)]
pub struct TriggerCache {
    current: RwLock<Option<(i64, Arc<ByEntity>)>>,
}

impl TriggerCache {
    async fn of(&self, ex: &mut impl Executor, epoch: i64) -> Result<Arc<ByEntity>> {
        if let Ok(slot) = self.current.read()
            && let Some((cached, triggers)) = slot.as_ref()
            && *cached == epoch
        {
            return Ok(triggers.clone());
        }
        let mut triggers: ByEntity = HashMap::new();
        for row in store::enabled_of_kinds(ex, &["record", "before_save"]).await? {
            if let Some(trigger) = RecordTrigger::from_row(&row) {
                triggers
                    .entry(trigger.entity.clone())
                    .or_default()
                    .push(Arc::new(trigger));
            }
        }
        let triggers = Arc::new(triggers);
        if let Ok(mut slot) = self.current.write() {
            *slot = Some((epoch, triggers.clone()));
        }
        Ok(triggers)
    }
}

/// What a record event means to automation triggers: a merge counts as an update of the
/// record kept; restores and erasures fire nothing.
fn trigger_event(kind: EventKind) -> Option<Event> {
    match kind {
        EventKind::Created => Some(Event::Created),
        EventKind::Updated | EventKind::Merged => Some(Event::Updated),
        EventKind::Deleted => Some(Event::Deleted),
        EventKind::Restored | EventKind::Erased => None,
    }
}

/// Queues the after-save automations a record event fires, inside the write's transaction.
pub struct RecordTriggers {
    pub cache: Arc<TriggerCache>,
}

impl Subscriber for RecordTriggers {
    fn name(&self) -> &'static str {
        "automation triggers"
    }

    fn on_event<'a>(
        &'a self,
        tx: &'a mut Tx,
        scope: &'a EventScope<'a>,
        event: &'a RecordEvent,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let Some(trigger_event) = fired(event) else {
                return Ok(());
            };
            let triggers = self.cache.of(tx, scope.catalog.epoch).await?;
            queue_runs(tx, scope, event, trigger_event, &triggers).await
        })
    }

    /// A batch's events are sorted out here, without a future each: most batches (an
    /// import's, by default) fire nothing.
    fn on_events<'a>(
        &'a self,
        tx: &'a mut Tx,
        scope: &'a EventScope<'a>,
        events: &'a [RecordEvent],
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            if events.iter().all(|e| fired(e).is_none()) {
                return Ok(());
            }
            let triggers = self.cache.of(tx, scope.catalog.epoch).await?;
            for event in events {
                if let Some(trigger_event) = fired(event) {
                    queue_runs(tx, scope, event, trigger_event, &triggers).await?;
                }
            }
            Ok(())
        })
    }
}

/// The trigger event a record event fires, if its origin fires automations at all.
fn fired(event: &RecordEvent) -> Option<Event> {
    trigger_event(event.kind).filter(|_| event.origin.fires_automations())
}

async fn queue_runs(
    tx: &mut Tx,
    scope: &EventScope<'_>,
    event: &RecordEvent,
    trigger_event: Event,
    triggers: &ByEntity,
) -> Result<()> {
    let Some(on_entity) = triggers.get(&event.entity) else {
        return Ok(());
    };
    let entity = scope.catalog.entity(&event.entity)?;
    let changes = Value::Object(event.changes_of(&entity).into_owned());
    let listening: Vec<&Arc<RecordTrigger>> = on_entity
        .iter()
        .filter(|t| !t.before_save && t.listens(trigger_event, &changes))
        .collect();
    if listening.is_empty() {
        return Ok(());
    }
    let name = event.entity.as_str();
    let id = event.id.as_str();
    let now = event.at;
    let depth = scope.access.automation_depth() + 1;
    for trigger in listening {
        if let Some(when) = &trigger.when {
            let ctx = FilterContext {
                catalog: scope.catalog,
                entity: &entity,
                now,
                access: &Access::system(),
            };
            let condition = match filter::compile(when, &ctx) {
                Ok(c) => c,
                Err(e) => {
                    // A field the condition names was removed since it was saved.
                    tracing::warn!(
                        automation = trigger.name,
                        "condition no longer compiles: {}",
                        e.message
                    );
                    continue;
                }
            };
            let deleted = trigger_event == Event::Deleted;
            if records::get_in(tx, &entity.layout, id, deleted, &condition)
                .await?
                .is_none()
            {
                continue;
            }
        }
        let about = json!({"type": "record", "event": trigger_event.as_str(), "entity": name,
                           "record_id": id});
        if depth > MAX_CASCADE {
            let message = format!(
                "not run: the {} of {name} {id} was made by a chain of {} automations; the \
                 cascade limit is {MAX_CASCADE}, which stops loops",
                trigger_event.as_str(),
                depth - 1
            );
            store::insert_run(
                tx,
                &RunRow {
                    id: uuid::Uuid::now_v7().hyphenated().to_string(),
                    automation_id: trigger.automation_id.clone(),
                    trigger: about,
                    slot: None,
                    status: "skipped".into(),
                    started_at: now,
                    finished_at: now,
                    log: json!([message.clone()]),
                    error: Some(message),
                    error_line: None,
                    touched: json!([]),
                    result: None,
                },
            )
            .await?;
            continue;
        }
        queue::enqueue(
            tx,
            &NewJob {
                kind: jobs::AUTOMATION,
                unique_key: None,
                payload: json!({
                    "automation_id": trigger.automation_id,
                    "trigger": about,
                    "record": event.record,
                    "old": event.old,
                    "changes": changes,
                    "depth": depth,
                }),
                run_at: now,
                max_attempts: RUN_ATTEMPTS,
            },
            now,
        )
        .await?;
    }
    Ok(())
}

/// The record as it will be: the old one with the payload laid over it.
fn merged(old: Option<&Value>, payload: &Value) -> Value {
    let mut record = old.cloned().unwrap_or_else(|| json!({}));
    if let (Some(into), Some(from)) = (record.as_object_mut(), payload.as_object()) {
        for (k, v) in from {
            into.insert(k.clone(), v.clone());
        }
    }
    record
}

/// What a before-save script changed in `record`: fields only, and only changed values.
fn changed_fields(
    catalog: &Catalog,
    entity: &str,
    before: &Value,
    after: &Value,
) -> Map<String, Value> {
    let mut out = Map::new();
    let Some(after) = after.as_object() else {
        return out;
    };
    let def = catalog.entity(entity).ok();
    for (key, value) in after {
        let is_field = def.as_ref().is_some_and(|e| e.def.field(key).is_some())
            || ["owner", "department", "tags"].contains(&key.as_str());
        if is_field && before.get(key) != Some(value) {
            out.insert(key.clone(), value.clone());
        }
    }
    out
}

/// Before-save scripts, as the write path's before-save hook.
pub struct BeforeSaveScripts {
    pub cache: Arc<TriggerCache>,
    pub scripts: Arc<Scripts>,
}

impl BeforeSaveScripts {
    async fn listening(
        &self,
        ctx: &Context,
        catalog: &Catalog,
        entity: &str,
        event: Event,
        payload: &Value,
    ) -> Result<Vec<Arc<RecordTrigger>>> {
        let triggers = self.cache.of(&mut &ctx.db, catalog.epoch).await?;
        Ok(triggers
            .get(entity)
            .into_iter()
            .flatten()
            .filter(|t| t.before_save && t.listens(event, payload))
            .cloned()
            .collect())
    }
}

impl BeforeSave for BeforeSaveScripts {
    fn listens<'a>(
        &'a self,
        ctx: &'a Context,
        catalog: &'a Catalog,
        entity: &'a str,
        kind: EventKind,
        payload: &'a Value,
    ) -> BoxFuture<'a, Result<bool>> {
        Box::pin(async move {
            let Some(event) = trigger_event(kind) else {
                return Ok(false);
            };
            Ok(!self
                .listening(ctx, catalog, entity, event, payload)
                .await?
                .is_empty())
        })
    }

    /// Runs the before-save scripts of a save. Returns the fields each changed, with its
    /// run-as user's access to check them with; a script that rejects (or fails) refuses the
    /// save with a 422.
    fn run<'a>(
        &'a self,
        ctx: &'a Context,
        catalog: &'a Catalog,
        entity: &'a str,
        kind: EventKind,
        payload: &'a Value,
        old: Option<&'a Value>,
    ) -> BoxFuture<'a, Result<Vec<Overlay>>> {
        Box::pin(async move {
            let Some(event) = trigger_event(kind) else {
                return Ok(Vec::new());
            };
            let scripts = self.listening(ctx, catalog, entity, event, payload).await?;
            let mut overlays = Vec::new();
            let mut record = merged(old, payload);
            for trigger in scripts {
                let request = RunRequest {
                    script: Script {
                        automation_id: trigger.automation_id.clone(),
                        name: trigger.name.clone(),
                        version: trigger.version,
                        source: trigger.script.clone(),
                        run_as: trigger.run_as.clone(),
                    },
                    trigger: json!({"type": "before_save", "event": event.as_str(),
                                    "entity": entity,
                                    "record_id": old.and_then(|o| o.get("id"))}),
                    slot: None,
                    entity: Some(entity.to_owned()),
                    vars: vec![
                        ("record".into(), record.clone()),
                        ("old".into(), old.cloned().unwrap_or(Value::Null)),
                        ("changes".into(), payload.clone()),
                    ],
                    now: Utc::now(),
                    depth: 1,
                    mode: Mode::BeforeSave,
                    job_id: None,
                };
                let report = run::run(ctx, &self.scripts, request).await?;
                if let Some(error) = report.error {
                    let message = if error.rejected {
                        error.message
                    } else {
                        let at = error
                            .line
                            .map(|l| format!(" (line {l})"))
                            .unwrap_or_default();
                        format!(
                            "the before-save automation '{}' failed: {}{at}",
                            trigger.name, error.message
                        )
                    };
                    return Err(Error::invalid(message, Vec::new()));
                }
                let after = report.record.unwrap_or(Value::Null);
                let set = changed_fields(catalog, entity, &record, &after);
                if set.is_empty() {
                    continue;
                }
                let access = crate::auth::service::access_of_user(ctx, &trigger.run_as)
                    .await?
                    .ok_or_else(|| {
                        Error::invalid(
                            format!(
                                "the before-save automation '{}' runs as a deactivated user",
                                trigger.name
                            ),
                            Vec::new(),
                        )
                    })?;
                for (k, v) in &set {
                    record[k] = v.clone();
                }
                overlays.push(Overlay {
                    by: trigger.name.clone(),
                    set,
                    access,
                });
            }
            Ok(overlays)
        })
    }
}

/// Registers record triggers and before-save scripts with the server's events.
pub fn register(ctx: &Context, scripts: Arc<Scripts>) {
    let cache = Arc::new(TriggerCache::default());
    ctx.events.subscribe(Arc::new(RecordTriggers {
        cache: cache.clone(),
    }));
    ctx.events
        .set_before_save(Arc::new(BeforeSaveScripts { cache, scripts }));
}
