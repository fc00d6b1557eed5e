//! Record triggers in the write path. After-save triggers become jobs in the same transaction
//! as the write (so an event is never lost, nor fired for a write that rolled back); their
//! condition is tested against the row just written. Before-save scripts run before a save
//! made through the API and may change its fields or refuse it.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

use super::definition::{Event, RecordTrigger};
use super::run::{self, Mode, RunRequest, Script};
use crate::app::App;
use crate::auth::Access;
use crate::error::{Error, FieldError, Result};
use crate::jobs;
use crate::records::filter::{self, FilterContext};
use crate::records::input::{self, Input, Mode as InputMode};
use crate::records::service::Target;
use crate::store::automations::{self as store, RunRow};
use crate::store::jobs::{self as queue, NewJob};
use crate::store::{Tx, records};

/// How deep writes made by automations may fire further automations.
pub const MAX_CASCADE: u32 = 5;
/// Attempts of a record-triggered run whose database work failed.
pub const RUN_ATTEMPTS: i64 = 3;

/// Whether any after-save trigger listens to this event on the entity.
pub(crate) fn any_after(target: &Target, event: Event) -> bool {
    target
        .catalog
        .record_triggers(target.entity.def.name.as_str())
        .any(|t| !t.before_save && t.events.contains(&event))
}

/// Whether a before-save script listens to an update with this payload.
pub(crate) fn before_save_listens(target: &Target, payload: &Value) -> bool {
    target
        .catalog
        .record_triggers(target.entity.def.name.as_str())
        .any(|t| t.before_save && t.listens(Event::Updated, payload))
}

/// Queues the after-save automations a write fires, inside the write's transaction.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn after_write(
    tx: &mut Tx,
    target: &Target,
    access: &Access,
    event: Event,
    id: &str,
    record: &Value,
    old: Option<&Value>,
    changes: &Value,
    now: DateTime<Utc>,
) -> Result<()> {
    let name = target.entity.def.name.as_str();
    let listening: Vec<&std::sync::Arc<RecordTrigger>> = target
        .catalog
        .record_triggers(name)
        .filter(|t| !t.before_save && t.listens(event, changes))
        .collect();
    if listening.is_empty() {
        return Ok(());
    }
    let depth = access.automation_depth() + 1;
    for trigger in listening {
        if let Some(when) = &trigger.when {
            let ctx = FilterContext {
                catalog: &target.catalog,
                entity: &target.entity,
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
            let deleted = event == Event::Deleted;
            if records::get_in(tx, &target.entity.layout, id, deleted, &condition)
                .await?
                .is_none()
            {
                continue;
            }
        }
        let about = json!({"type": "record", "event": event.as_str(), "entity": name,
                           "record_id": id});
        if depth > MAX_CASCADE {
            let message = format!(
                "not run: the {} of {name} {id} was made by a chain of {} automations; the \
                 cascade limit is {MAX_CASCADE}, which stops loops",
                event.as_str(),
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
                    "record": record,
                    "old": old,
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
fn changed_fields(target: &Target, before: &Value, after: &Value) -> Map<String, Value> {
    let mut out = Map::new();
    let Some(after) = after.as_object() else {
        return out;
    };
    for (key, value) in after {
        let is_field = target.entity.def.field(key).is_some()
            || ["owner", "department", "tags"].contains(&key.as_str());
        if is_field && before.get(key) != Some(value) {
            out.insert(key.clone(), value.clone());
        }
    }
    out
}

/// Runs the before-save scripts of a save made through the API. Returns the inputs their
/// changes make (each checked with its script's run-as permissions), to lay over the
/// caller's; a script that rejects (or fails) refuses the save with a 422.
pub(crate) async fn before_save(
    app: &App,
    target: &Target,
    event: Event,
    payload: &Value,
    old: Option<&Value>,
) -> Result<Vec<Input>> {
    let name = target.entity.def.name.as_str();
    let changes = payload.clone();
    let scripts: Vec<std::sync::Arc<RecordTrigger>> = target
        .catalog
        .record_triggers(name)
        .filter(|t| t.before_save && t.listens(event, &changes))
        .cloned()
        .collect();
    let mut overlays = Vec::new();
    if scripts.is_empty() {
        return Ok(overlays);
    }
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
            trigger: json!({"type": "before_save", "event": event.as_str(), "entity": name,
                            "record_id": old.and_then(|o| o.get("id"))}),
            slot: None,
            entity: Some(name.to_owned()),
            vars: vec![
                ("record".into(), record.clone()),
                ("old".into(), old.cloned().unwrap_or(Value::Null)),
                ("changes".into(), changes.clone()),
            ],
            now: Utc::now(),
            depth: 1,
            mode: Mode::BeforeSave,
            job_id: None,
        };
        let report = run::run(app, request).await?;
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
        let set = changed_fields(target, &record, &after);
        if set.is_empty() {
            continue;
        }
        let access = crate::auth::service::access_of_user(app, &trigger.run_as)
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
        let partial = Value::Object(set.clone());
        // Only the fields the script set: parsed as a partial change, whether creating or not.
        let input = match input::parse(&target.entity, &partial, InputMode::Update, &access) {
            Ok(input) => input,
            Err(Error::Invalid { errors, .. }) => {
                let errors = errors
                    .into_iter()
                    .map(|e| {
                        FieldError::new(
                            e.field,
                            format!("set by '{}': {}", trigger.name, e.message),
                        )
                    })
                    .collect();
                return Err(Error::invalid(
                    format!(
                        "the before-save automation '{}' set invalid values",
                        trigger.name
                    ),
                    errors,
                ));
            }
            Err(e) => return Err(e),
        };
        for (k, v) in set {
            record[k] = v;
        }
        overlays.push(input);
    }
    Ok(overlays)
}
