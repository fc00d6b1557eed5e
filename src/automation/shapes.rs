//! The typed bodies and answers of `/api/automations` and its run log.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::store::automations::{AutomationRow, RunRow};
use crate::wire::{Versioned, timestamp};

/// An automation as the API shows it; `trigger` is the trigger document (docs/automations.md).
#[derive(Debug, Clone, Serialize)]
pub struct AutomationView {
    pub id: String,
    pub name: String,
    pub description: String,
    pub trigger: Value,
    pub script: String,
    pub enabled: bool,
    /// The user the script acts as.
    pub run_as: String,
    pub created_by: Option<String>,
    pub version: i64,
    /// The last cron slot that fired.
    #[serde(with = "timestamp::option")]
    pub last_slot: Option<DateTime<Utc>>,
    #[serde(with = "timestamp")]
    pub created_at: DateTime<Utc>,
    #[serde(with = "timestamp")]
    pub updated_at: DateTime<Utc>,
}

impl AutomationView {
    pub fn of(row: &AutomationRow) -> AutomationView {
        AutomationView {
            id: row.id.clone(),
            name: row.name.clone(),
            description: row.description.clone(),
            trigger: row.trigger.clone(),
            script: row.script.clone(),
            enabled: row.enabled,
            run_as: row.run_as.clone(),
            created_by: row.created_by.clone(),
            version: row.version,
            last_slot: row.last_slot,
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

/// An automation as a client (or a template package) writes it. A new one needs `name`,
/// `trigger` and `script`; a change (`PATCH`) gives only what changes. `version` guards a
/// change as `If-Match` does.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AutomationInput {
    pub name: Option<String>,
    pub description: Option<String>,
    pub trigger: Option<Value>,
    pub script: Option<String>,
    pub enabled: Option<bool>,
    pub run_as: Option<String>,
    pub version: Option<i64>,
}

/// The error of a failed run: the message and, for a script error, its line.
#[derive(Debug, Clone, Serialize)]
pub struct RunError {
    pub message: String,
    pub line: Option<i64>,
}

/// One run of an automation in its log.
#[derive(Debug, Clone, Serialize)]
pub struct RunView {
    pub id: String,
    /// What fired it: the record event, the cron slot or the manual run.
    pub trigger: Value,
    #[serde(with = "timestamp::option")]
    pub slot: Option<DateTime<Utc>>,
    /// `succeeded`, `failed`, `rejected` or `skipped`.
    pub status: String,
    #[serde(with = "timestamp")]
    pub started_at: DateTime<Utc>,
    #[serde(with = "timestamp")]
    pub finished_at: DateTime<Utc>,
    pub duration_ms: i64,
    /// What the script printed.
    pub log: Value,
    pub error: Option<RunError>,
    /// The records it wrote.
    pub touched: Value,
    pub result: Option<Value>,
}

impl RunView {
    pub fn of(run: &RunRow) -> RunView {
        RunView {
            id: run.id.clone(),
            trigger: run.trigger.clone(),
            slot: run.slot,
            status: run.status.clone(),
            started_at: run.started_at,
            finished_at: run.finished_at,
            duration_ms: (run.finished_at - run.started_at).num_milliseconds(),
            log: run.log.clone(),
            error: run.error.as_ref().map(|message| RunError {
                message: message.clone(),
                line: run.error_line,
            }),
            touched: run.touched.clone(),
            result: run.result.clone(),
        }
    }
}

impl Versioned for AutomationView {
    fn version(&self) -> i64 {
        self.version
    }
}
