//! Automation definitions as sent and stored: a name, a trigger, a script, who it runs as.
//! Everything is checked when saved — the entity and fields a trigger names, its condition,
//! its cron expression and time zone, and the script itself (a syntax error is a 422 with line
//! and column).

use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::error::FieldError;
use crate::schema::compiled::Catalog;

/// The record events a trigger can listen to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    Created,
    Updated,
    Deleted,
}

impl Event {
    pub fn as_str(self) -> &'static str {
        match self {
            Event::Created => "created",
            Event::Updated => "updated",
            Event::Deleted => "deleted",
        }
    }

    fn parse(s: &str) -> Option<Event> {
        match s {
            "created" => Some(Event::Created),
            "updated" => Some(Event::Updated),
            "deleted" => Some(Event::Deleted),
            _ => None,
        }
    }
}

/// When a script runs.
#[derive(Debug, Clone, PartialEq)]
pub enum Trigger {
    /// After a record event commits, through the job queue.
    Record {
        entity: String,
        events: Vec<Event>,
        /// A filter the record must match (the API's filter language).
        when: Option<String>,
        /// Only when one of these fields changed (updates).
        fields: Vec<String>,
    },
    /// Inside a save made through the API, before it is written: may set fields or reject.
    BeforeSave {
        entity: String,
        events: Vec<Event>,
        fields: Vec<String>,
    },
    /// On a schedule: a 5- or 6-field cron expression in an IANA time zone.
    Cron {
        expression: String,
        time_zone: chrono_tz::Tz,
    },
    /// Only when run by hand (`POST /api/automations/{id}/run`).
    Manual,
}

impl Trigger {
    pub fn kind(&self) -> &'static str {
        match self {
            Trigger::Record { .. } => "record",
            Trigger::BeforeSave { .. } => "before_save",
            Trigger::Cron { .. } => "cron",
            Trigger::Manual => "manual",
        }
    }

    pub fn entity(&self) -> Option<&str> {
        match self {
            Trigger::Record { entity, .. } | Trigger::BeforeSave { entity, .. } => Some(entity),
            _ => None,
        }
    }

    pub fn to_json(&self) -> Value {
        let events = |e: &[Event]| e.iter().map(|e| e.as_str()).collect::<Vec<_>>();
        match self {
            Trigger::Record {
                entity,
                events: e,
                when,
                fields,
            } => json!({"type": "record", "entity": entity, "events": events(e),
                        "when": when, "fields": fields}),
            Trigger::BeforeSave {
                entity,
                events: e,
                fields,
            } => json!({"type": "before_save", "entity": entity, "events": events(e),
                        "fields": fields}),
            Trigger::Cron {
                expression,
                time_zone,
            } => json!({"type": "cron", "cron": expression, "time_zone": time_zone.name()}),
            Trigger::Manual => json!({"type": "manual"}),
        }
    }

    /// Reads a stored trigger (checked when it was saved).
    pub fn from_stored(doc: &Value) -> Option<Trigger> {
        parse(doc, None, chrono_tz::UTC).ok()
    }
}

/// A cron expression as the `cron` crate reads it: seconds first, so a 5-field expression
/// gets `0` seconds in front.
pub fn schedule(expression: &str) -> Result<cron::Schedule, String> {
    let fields = expression.split_whitespace().count();
    let full = match fields {
        5 => format!("0 {}", expression.trim()),
        6 => expression.trim().to_owned(),
        n => {
            return Err(format!(
                "a cron expression has 5 fields (minute hour day month weekday) or 6 (seconds \
                 first), not {n}"
            ));
        }
    };
    cron::Schedule::from_str(&full).map_err(|e| format!("is not a valid cron expression: {e}"))
}

/// The slots of a schedule after `after` up to and including `until`, at most `cap` of them
/// (the newest kept).
pub fn slots_between(
    schedule: &cron::Schedule,
    zone: chrono_tz::Tz,
    after: DateTime<Utc>,
    until: DateTime<Utc>,
    cap: usize,
) -> Vec<DateTime<Utc>> {
    let mut out = std::collections::VecDeque::new();
    for slot in schedule.after(&after.with_timezone(&zone)) {
        let slot = slot.with_timezone(&Utc);
        if slot > until {
            break;
        }
        if out.len() == cap {
            out.pop_front();
        }
        out.push_back(slot);
    }
    out.into()
}

fn events(doc: &Value, problems: &mut Vec<FieldError>) -> Vec<Event> {
    let Some(list) = doc.get("events") else {
        problems.push(FieldError::new(
            "trigger.events",
            "is required: some of created, updated, deleted",
        ));
        return Vec::new();
    };
    let mut out = Vec::new();
    for item in list.as_array().map(Vec::as_slice).unwrap_or_default() {
        match item.as_str().and_then(Event::parse) {
            Some(e) if !out.contains(&e) => out.push(e),
            Some(_) => {}
            None => problems.push(FieldError::new(
                "trigger.events",
                format!("{item} is not one of created, updated, deleted"),
            )),
        }
    }
    if out.is_empty() && problems.is_empty() {
        problems.push(FieldError::new(
            "trigger.events",
            "name at least one of created, updated, deleted",
        ));
    }
    out
}

fn field_list(
    doc: &Value,
    entity: Option<&crate::schema::compiled::CompiledEntity>,
    problems: &mut Vec<FieldError>,
) -> Vec<String> {
    let mut out = Vec::new();
    match doc.get("fields") {
        None | Some(Value::Null) => {}
        Some(Value::Array(items)) => {
            for item in items {
                let Some(name) = item.as_str() else {
                    problems.push(FieldError::new("trigger.fields", "must list field names"));
                    continue;
                };
                let known = entity.is_none_or(|e| {
                    e.def.field(name).is_some() || ["owner", "department", "tags"].contains(&name)
                });
                if known {
                    out.push(name.to_owned());
                } else {
                    problems.push(FieldError::new(
                        "trigger.fields",
                        format!("there is no field '{name}'"),
                    ));
                }
            }
        }
        Some(_) => problems.push(FieldError::new("trigger.fields", "must list field names")),
    }
    out
}

/// Reads and checks a trigger. With a catalog, the entity, fields and condition are checked
/// against it; `zone` is the default time zone of cron triggers.
pub fn parse(
    doc: &Value,
    catalog: Option<&Catalog>,
    zone: chrono_tz::Tz,
) -> Result<Trigger, Vec<FieldError>> {
    let mut problems = Vec::new();
    let kind = doc.get("type").and_then(Value::as_str).unwrap_or_default();
    let entity_of = |problems: &mut Vec<FieldError>| {
        let name = doc
            .get("entity")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if name.is_empty() {
            problems.push(FieldError::new("trigger.entity", "is required"));
            return (String::new(), None);
        }
        match catalog.map(|c| c.entity(name)) {
            Some(Ok(e)) => (name.to_owned(), Some(e)),
            Some(Err(_)) => {
                problems.push(FieldError::new(
                    "trigger.entity",
                    format!("there is no entity '{name}'"),
                ));
                (name.to_owned(), None)
            }
            None => (name.to_owned(), None),
        }
    };
    let trigger = match kind {
        "record" => {
            let (entity, compiled) = entity_of(&mut problems);
            let events = events(doc, &mut problems);
            let fields = field_list(doc, compiled.as_deref(), &mut problems);
            let when = match doc.get("when") {
                None | Some(Value::Null) => None,
                Some(Value::String(s)) if s.trim().is_empty() => None,
                Some(Value::String(s)) => {
                    if let (Some(catalog), Some(entity)) = (catalog, compiled.as_deref()) {
                        let ctx = crate::records::filter::FilterContext {
                            catalog,
                            entity,
                            now: Utc::now(),
                            access: &crate::auth::Access::system(),
                        };
                        if let Err(e) = crate::records::filter::compile(s, &ctx) {
                            problems.push(
                                FieldError::new("trigger.when", e.message.clone()).at(e.position),
                            );
                        }
                    }
                    Some(s.clone())
                }
                Some(_) => {
                    problems.push(FieldError::new(
                        "trigger.when",
                        "must be a filter expression",
                    ));
                    None
                }
            };
            Trigger::Record {
                entity,
                events,
                when,
                fields,
            }
        }
        "before_save" => {
            let (entity, compiled) = entity_of(&mut problems);
            let events = events(doc, &mut problems);
            if events.contains(&Event::Deleted) {
                problems.push(FieldError::new(
                    "trigger.events",
                    "a before-save script runs on created and updated only",
                ));
            }
            if doc.get("when").is_some_and(|w| !w.is_null()) {
                problems.push(FieldError::new(
                    "trigger.when",
                    "a before-save trigger has no condition: test the record in the script",
                ));
            }
            let fields = field_list(doc, compiled.as_deref(), &mut problems);
            Trigger::BeforeSave {
                entity,
                events,
                fields,
            }
        }
        "cron" => {
            let expression = doc
                .get("cron")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .trim()
                .to_owned();
            if let Err(message) = schedule(&expression) {
                problems.push(FieldError::new("trigger.cron", message));
            }
            let time_zone = match doc.get("time_zone").and_then(Value::as_str) {
                None => zone,
                Some(name) => name.parse().unwrap_or_else(|_| {
                    problems.push(FieldError::new(
                        "trigger.time_zone",
                        format!("'{name}' is not an IANA time zone (e.g. Asia/Shanghai)"),
                    ));
                    zone
                }),
            };
            Trigger::Cron {
                expression,
                time_zone,
            }
        }
        "manual" => Trigger::Manual,
        _ => {
            problems.push(FieldError::new(
                "trigger.type",
                "must be record, before_save, cron or manual",
            ));
            Trigger::Manual
        }
    };
    if problems.is_empty() {
        Ok(trigger)
    } else {
        Err(problems)
    }
}

/// A record or before-save trigger as the catalog keeps it for the write path.
#[derive(Debug, Clone)]
pub struct RecordTrigger {
    pub automation_id: String,
    pub name: String,
    pub version: i64,
    pub before_save: bool,
    pub entity: String,
    pub events: Vec<Event>,
    pub when: Option<String>,
    pub fields: Vec<String>,
    pub run_as: String,
    pub script: String,
}

impl RecordTrigger {
    pub fn from_row(row: &crate::store::automations::AutomationRow) -> Option<RecordTrigger> {
        let (before_save, entity, events, when, fields) = match Trigger::from_stored(&row.trigger)?
        {
            Trigger::Record {
                entity,
                events,
                when,
                fields,
            } => (false, entity, events, when, fields),
            Trigger::BeforeSave {
                entity,
                events,
                fields,
            } => (true, entity, events, None, fields),
            _ => return None,
        };
        Some(RecordTrigger {
            automation_id: row.id.clone(),
            name: row.name.clone(),
            version: row.version,
            before_save,
            entity,
            events,
            when,
            fields,
            run_as: row.run_as.clone(),
            script: row.script.clone(),
        })
    }

    /// Whether an event with these changed fields concerns this trigger.
    pub fn listens(&self, event: Event, changed: &Value) -> bool {
        self.events.contains(&event)
            && (event != Event::Updated
                || self.fields.is_empty()
                || self
                    .fields
                    .iter()
                    .any(|f| changed.get(f.as_str()).is_some()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cron_takes_five_or_six_fields() {
        assert!(schedule("0 8 * * *").is_ok());
        assert!(schedule("* * * * * *").is_ok());
        assert!(schedule("* * *").is_err());
        assert!(schedule("61 * * * *").is_err());
    }

    #[test]
    fn slots_are_listed_in_the_time_zone() {
        let s = schedule("0 8 * * *").unwrap();
        let zone: chrono_tz::Tz = "Asia/Shanghai".parse().unwrap();
        let after = "2026-03-01T00:00:00Z".parse().unwrap();
        let until = "2026-03-03T00:00:00Z".parse().unwrap();
        let slots = slots_between(&s, zone, after, until, 10);
        let shown: Vec<String> = slots.iter().map(|t| t.to_rfc3339()).collect();
        // 08:00 in Shanghai is midnight UTC.
        assert_eq!(
            shown,
            ["2026-03-02T00:00:00+00:00", "2026-03-03T00:00:00+00:00"]
        );
        assert_eq!(slots_between(&s, zone, after, until, 1).len(), 1);
    }

    #[test]
    fn triggers_are_checked() {
        let bad = parse(
            &json!({"type": "record", "entity": "x", "events": ["eaten"]}),
            None,
            chrono_tz::UTC,
        )
        .unwrap_err();
        assert_eq!(bad[0].field, "trigger.events");
        let cron = parse(
            &json!({"type": "cron", "cron": "*/5 * * * *", "time_zone": "Europe/Berlin"}),
            None,
            chrono_tz::UTC,
        )
        .unwrap();
        assert_eq!(cron.to_json()["time_zone"], "Europe/Berlin");
        assert!(
            parse(
                &json!({"type": "cron", "cron": "0 8 * * *", "time_zone": "Nowhere"}),
                None,
                chrono_tz::UTC
            )
            .is_err()
        );
        assert!(parse(&json!({"type": "sometimes"}), None, chrono_tz::UTC).is_err());
    }
}
