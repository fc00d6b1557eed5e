//! The typed bodies and answers of `/api/mail-templates` and `/api/outbox`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::store::mail::{OutboxRow, TemplateRow};
use crate::wire::timestamp;

/// A mail template as the API shows it: `variants` holds, per language, the subject, the HTML
/// and the text (`{"en": {"subject", "html", "text"}, "zh-CN": {…}}`).
#[derive(Debug, Clone, Serialize)]
pub struct TemplateView {
    pub id: String,
    pub name: String,
    pub description: String,
    pub variants: Value,
    pub version: i64,
    #[serde(with = "timestamp")]
    pub created_at: DateTime<Utc>,
    #[serde(with = "timestamp")]
    pub updated_at: DateTime<Utc>,
}

impl TemplateView {
    pub fn of(row: &TemplateRow) -> TemplateView {
        TemplateView {
            id: row.id.clone(),
            name: row.name.clone(),
            description: row.description.clone(),
            variants: row.variants.clone(),
            version: row.version,
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

/// A mail template as a client writes it. A replace keeps the name when none is given; the
/// read-only properties of [`TemplateView`] may be sent back as read and are ignored.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateInput {
    pub name: Option<String>,
    #[serde(default)]
    pub description: String,
    pub variants: Option<Value>,
    #[serde(default, rename = "id")]
    pub _id: Option<Value>,
    #[serde(default, rename = "version")]
    pub _version: Option<Value>,
    #[serde(default, rename = "created_at")]
    pub _created_at: Option<Value>,
    #[serde(default, rename = "updated_at")]
    pub _updated_at: Option<Value>,
}

/// A message in the outbox.
#[derive(Debug, Clone, Serialize)]
pub struct OutboxView {
    pub id: String,
    pub template: Option<String>,
    pub to: Vec<String>,
    pub from: String,
    pub subject: String,
    pub text: String,
    pub html: Option<String>,
    /// `queued`, `sent` or `failed` (after the last attempt).
    pub status: String,
    pub attempts: i64,
    pub last_error: Option<String>,
    /// The automation run that sent it.
    pub run_id: Option<String>,
    #[serde(with = "timestamp")]
    pub created_at: DateTime<Utc>,
    #[serde(with = "timestamp::option")]
    pub sent_at: Option<DateTime<Utc>>,
}

impl OutboxView {
    pub fn of(row: &OutboxRow) -> OutboxView {
        OutboxView {
            id: row.id.clone(),
            template: row.template.clone(),
            to: row.recipients.clone(),
            from: row.sender.clone(),
            subject: row.subject.clone(),
            text: row.body.clone(),
            html: row.html.clone(),
            status: row.status.clone(),
            attempts: row.attempts,
            last_error: row.last_error.clone(),
            run_id: row.run_id.clone(),
            created_at: row.created_at,
            sent_at: row.sent_at,
        }
    }
}
