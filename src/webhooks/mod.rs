//! Outbound webhooks (`/api/webhooks`): endpoints that receive signed record events.
//!
//! A record event matching an active endpoint becomes a delivery row and a job in the same
//! transaction as the change (`subscriber.rs`), so nothing is sent for a write that rolled
//! back and nothing is lost when the server stops. Deliveries follow the Standard Webhooks
//! specification (`sign.rs`): `webhook-id`, `webhook-timestamp`, `webhook-signature`; they are
//! retried with growing waits over about three days, honour `Retry-After`, and a 410 switches
//! the endpoint off (`deliver.rs`). Targets on loopback, link-local and private networks are
//! refused unless the `webhooks_allow_private` setting allows them (checked when saved, and
//! again at each delivery against the addresses the host resolves to).

pub mod deliver;
pub mod sign;
pub mod subscriber;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::auth::{Access, Special};
use crate::context::Context;
use crate::error::{Error, FieldError, Result};
use crate::settings::Settings;
use crate::store::webhooks::{self as store, AttemptRow, DeliveryRow, WebhookRow};
use crate::store::{entities, jobs as queue};

/// The record events an endpoint may ask for.
pub const EVENTS: &[&str] = &["created", "updated", "deleted", "restored", "merged"];
/// How long the secret before a rotation keeps signing beside the new one.
const ROTATION_OVERLAP_HOURS: i64 = 24;

/// `POST /api/webhooks`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewWebhook {
    pub url: String,
    #[serde(default)]
    pub description: String,
    /// Entities to hear about (empty: all).
    #[serde(default)]
    pub entities: Vec<String>,
    pub events: Vec<String>,
    /// For `updated`: only when one of these fields changed.
    #[serde(default)]
    pub fields: Vec<String>,
    #[serde(default = "yes")]
    pub active: bool,
}

fn yes() -> bool {
    true
}

/// `PATCH /api/webhooks/{id}`: what is given changes.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookPatch {
    pub url: Option<String>,
    pub description: Option<String>,
    pub entities: Option<Vec<String>>,
    pub events: Option<Vec<String>>,
    pub fields: Option<Vec<String>>,
    pub active: Option<bool>,
    /// The version the caller saw (or `If-Match`).
    pub version: Option<i64>,
}

/// An endpoint as the API shows it: the secret only right after it was made.
#[derive(Debug, Clone, Serialize)]
pub struct WebhookView {
    pub id: String,
    pub url: String,
    pub description: String,
    pub entities: Vec<String>,
    pub events: Vec<String>,
    pub fields: Vec<String>,
    pub active: bool,
    pub disabled_reason: Option<String>,
    pub version: i64,
    #[serde(with = "crate::wire::timestamp")]
    pub created_at: DateTime<Utc>,
    #[serde(with = "crate::wire::timestamp")]
    pub updated_at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

impl crate::wire::Versioned for WebhookView {
    fn version(&self) -> i64 {
        self.version
    }
}

impl WebhookView {
    fn of(row: &WebhookRow) -> WebhookView {
        WebhookView {
            id: row.id.clone(),
            url: row.url.clone(),
            description: row.description.clone(),
            entities: row.entities.clone(),
            events: row.events.clone(),
            fields: row.fields.clone(),
            active: row.active,
            disabled_reason: row.disabled_reason.clone(),
            version: row.version,
            created_at: row.created_at,
            updated_at: row.updated_at,
            secret: None,
        }
    }

    fn with_secret(row: &WebhookRow) -> WebhookView {
        WebhookView {
            secret: Some(row.secret.clone()),
            ..WebhookView::of(row)
        }
    }
}

/// A delivery with its attempts, as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct DeliveryView {
    pub id: String,
    pub event_type: String,
    pub entity: Option<String>,
    pub record_id: Option<String>,
    pub status: String,
    pub attempts: i64,
    pub next_attempt: Option<DateTime<Utc>>,
    pub last_status: Option<i64>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub body: serde_json::Value,
    pub log: Vec<AttemptView>,
}

/// One attempt: when, the receiver's status, how long it took, the start of its answer.
#[derive(Debug, Clone, Serialize)]
pub struct AttemptView {
    pub at: DateTime<Utc>,
    pub status: Option<i64>,
    pub duration_ms: i64,
    pub response: Option<String>,
    pub error: Option<String>,
}

impl AttemptView {
    fn of(row: AttemptRow) -> AttemptView {
        AttemptView {
            at: row.at,
            status: row.status,
            duration_ms: row.duration_ms,
            response: row.response,
            error: row.error,
        }
    }
}

fn new_id() -> String {
    uuid::Uuid::now_v7().hyphenated().to_string()
}

/// A message id as Standard Webhooks writes them.
pub fn message_id() -> String {
    format!("msg_{}", uuid::Uuid::now_v7().simple())
}

/// Checks an endpoint's configuration against the schema and the SSRF rule; every problem at
/// once.
async fn check(ctx: &Context, row: &WebhookRow) -> Result<()> {
    let mut problems = Vec::new();
    let settings = Settings::load(&mut &ctx.db).await?;
    if let Err(message) = sign::check_target(row.url.trim(), settings.webhooks_allow_private()) {
        problems.push(FieldError::new("url", message));
    }
    let catalog = ctx.schema.catalog(&ctx.db).await?;
    for entity in &row.entities {
        if catalog.entity(entity).is_err() {
            problems.push(FieldError::new(
                "entities",
                format!("there is no entity '{entity}'"),
            ));
        }
    }
    if row.events.is_empty() {
        problems.push(FieldError::new("events", "names no event"));
    }
    for event in &row.events {
        if !EVENTS.contains(&event.as_str()) {
            problems.push(FieldError::new(
                "events",
                format!("'{event}' is not one of {}", EVENTS.join(", ")),
            ));
        }
    }
    for field in &row.fields {
        let known = row.entities.iter().any(|e| {
            catalog
                .entity(e)
                .is_ok_and(|e| e.def.field(field).is_some())
        });
        if !known {
            problems.push(FieldError::new(
                "fields",
                format!("'{field}' is not a field of the entities named"),
            ));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(Error::invalid("the webhook is not valid", problems))
    }
}

/// Saves a change and moves the schema epoch, so every server reloads the endpoints its
/// event subscriber matches against.
async fn save(ctx: &Context, row: WebhookRow, expected: Option<i64>) -> Result<()> {
    ctx.db
        .write(move |tx| {
            Box::pin(async move {
                let saved = match expected {
                    None => {
                        store::insert(tx, &row).await?;
                        true
                    }
                    Some(version) => store::update(tx, &row, version).await?,
                };
                if !saved {
                    return Err(Error::PreconditionFailed(
                        "the webhook was changed meanwhile; reload it".into(),
                    ));
                }
                entities::bump_epoch(tx).await
            })
        })
        .await?;
    ctx.schema.invalidate();
    Ok(())
}

async fn existing(ctx: &Context, id: &str) -> Result<WebhookRow> {
    store::by_id(&mut &ctx.db, id)
        .await?
        .ok_or_else(|| Error::not_found(format!("there is no webhook '{id}'")))
}

fn new_secret() -> Result<String> {
    sign::Secret::generate()
        .map(|s| s.expose())
        .map_err(|e| Error::internal(format!("no randomness for a secret: {e}")))
}

pub async fn list(ctx: &Context, access: &Access) -> Result<Vec<WebhookView>> {
    access.require(Special::ManageAutomations)?;
    Ok(store::list(&mut &ctx.db)
        .await?
        .iter()
        .map(WebhookView::of)
        .collect())
}

pub async fn get(ctx: &Context, access: &Access, id: &str) -> Result<WebhookView> {
    access.require(Special::ManageAutomations)?;
    Ok(WebhookView::of(&existing(ctx, id).await?))
}

/// Creates an endpoint; the answer carries its secret, shown this once.
pub async fn create(ctx: &Context, access: &Access, new: NewWebhook) -> Result<WebhookView> {
    access.require(Special::ManageAutomations)?;
    let Some(actor) = access.actor_id() else {
        return Err(Error::bad_request(
            "a webhook is created by a user (deliveries show what that user may read)",
        ));
    };
    let now = Utc::now();
    let row = WebhookRow {
        id: new_id(),
        url: new.url.trim().to_owned(),
        description: new.description,
        entities: new.entities,
        events: new.events,
        fields: new.fields,
        active: new.active,
        secret: new_secret()?,
        previous_secret: None,
        previous_until: None,
        disabled_reason: None,
        created_by: actor.to_owned(),
        version: 1,
        created_at: now,
        updated_at: now,
    };
    check(ctx, &row).await?;
    save(ctx, row.clone(), None).await?;
    Ok(WebhookView::with_secret(&row))
}

pub async fn update(
    ctx: &Context,
    access: &Access,
    id: &str,
    patch: WebhookPatch,
    if_match: Option<i64>,
) -> Result<WebhookView> {
    access.require(Special::ManageAutomations)?;
    let mut row = existing(ctx, id).await?;
    let expected = if_match.or(patch.version).unwrap_or(row.version);
    if expected != row.version {
        return Err(Error::PreconditionFailed(format!(
            "the webhook is at version {}, not {expected}; reload it",
            row.version
        )));
    }
    if let Some(url) = patch.url {
        row.url = url.trim().to_owned();
    }
    if let Some(description) = patch.description {
        row.description = description;
    }
    if let Some(entities) = patch.entities {
        row.entities = entities;
    }
    if let Some(events) = patch.events {
        row.events = events;
    }
    if let Some(fields) = patch.fields {
        row.fields = fields;
    }
    if let Some(active) = patch.active {
        row.active = active;
        if active {
            row.disabled_reason = None;
        }
    }
    row.version += 1;
    row.updated_at = Utc::now();
    check(ctx, &row).await?;
    save(ctx, row.clone(), Some(expected)).await?;
    Ok(WebhookView::of(&row))
}

pub async fn delete(ctx: &Context, access: &Access, id: &str) -> Result<()> {
    access.require(Special::ManageAutomations)?;
    let row = existing(ctx, id).await?;
    ctx.db
        .write(move |tx| {
            Box::pin(async move {
                store::delete(tx, &row.id).await?;
                entities::bump_epoch(tx).await
            })
        })
        .await?;
    ctx.schema.invalidate();
    Ok(())
}

/// A new secret; the old one keeps signing beside it for a day, so receivers can switch.
pub async fn rotate_secret(ctx: &Context, access: &Access, id: &str) -> Result<WebhookView> {
    access.require(Special::ManageAutomations)?;
    let mut row = existing(ctx, id).await?;
    let expected = row.version;
    let now = Utc::now();
    row.previous_secret = Some(std::mem::replace(&mut row.secret, new_secret()?));
    row.previous_until = Some(now + Duration::hours(ROTATION_OVERLAP_HOURS));
    row.version += 1;
    row.updated_at = now;
    save(ctx, row.clone(), Some(expected)).await?;
    Ok(WebhookView::with_secret(&row))
}

/// Queues a delivery now, inside `tx` (a new event, a test, a replay).
pub(crate) async fn queue_delivery(
    tx: &mut crate::store::Tx,
    delivery: &DeliveryRow,
    now: DateTime<Utc>,
) -> Result<()> {
    queue::enqueue(
        tx,
        &queue::NewJob {
            kind: crate::jobs::WEBHOOK,
            unique_key: None,
            payload: json!({"delivery_id": delivery.id}),
            run_at: delivery.next_attempt.unwrap_or(now),
            max_attempts: 1,
        },
        now,
    )
    .await
    .map(drop)
}

/// `POST /api/webhooks/{id}/test`: a `webhook.test` message to the endpoint.
pub async fn test(ctx: &Context, access: &Access, id: &str) -> Result<DeliveryView> {
    access.require(Special::ManageAutomations)?;
    let row = existing(ctx, id).await?;
    let now = Utc::now();
    let body = json!({
        "type": "webhook.test",
        "timestamp": crate::store::value::format_datetime(&now),
        "data": {"webhook": row.id, "message": "Tessera says hello"},
    });
    let delivery = DeliveryRow {
        id: message_id(),
        webhook_id: row.id.clone(),
        event_type: "webhook.test".into(),
        entity: None,
        record_id: None,
        body: body.to_string(),
        status: "pending".into(),
        attempts: 0,
        next_attempt: Some(now),
        last_status: None,
        last_error: None,
        created_at: now,
        finished_at: None,
    };
    let queued = delivery.clone();
    ctx.db
        .write(move |tx| {
            Box::pin(async move {
                store::insert_delivery(tx, &queued).await?;
                queue_delivery(tx, &queued, now).await
            })
        })
        .await?;
    delivery_view(ctx, delivery).await
}

/// `POST /api/webhooks/{id}/deliveries/{delivery}/replay`: the same message (same
/// `webhook-id`, same body) again, now.
pub async fn replay(
    ctx: &Context,
    access: &Access,
    id: &str,
    delivery_id: &str,
) -> Result<DeliveryView> {
    access.require(Special::ManageAutomations)?;
    let row = existing(ctx, id).await?;
    let mut delivery = store::delivery_by_id(&mut &ctx.db, delivery_id)
        .await?
        .filter(|d| d.webhook_id == row.id)
        .ok_or_else(|| Error::not_found(format!("there is no delivery '{delivery_id}'")))?;
    let now = Utc::now();
    delivery.status = "pending".into();
    delivery.next_attempt = Some(now);
    delivery.finished_at = None;
    let queued = delivery.clone();
    ctx.db
        .write(move |tx| {
            Box::pin(async move {
                store::reopen(tx, &queued.id, now).await?;
                queue_delivery(tx, &queued, now).await
            })
        })
        .await?;
    delivery_view(ctx, delivery).await
}

async fn delivery_view(ctx: &Context, row: DeliveryRow) -> Result<DeliveryView> {
    let attempts = store::attempts(&mut &ctx.db, std::slice::from_ref(&row.id)).await?;
    Ok(view_of(row, attempts))
}

fn view_of(row: DeliveryRow, attempts: Vec<AttemptRow>) -> DeliveryView {
    let log = attempts.into_iter().map(AttemptView::of).collect();
    DeliveryView {
        body: serde_json::from_str(&row.body).unwrap_or_default(),
        id: row.id,
        event_type: row.event_type,
        entity: row.entity,
        record_id: row.record_id,
        status: row.status,
        attempts: row.attempts,
        next_attempt: row.next_attempt,
        last_status: row.last_status,
        last_error: row.last_error,
        created_at: row.created_at,
        finished_at: row.finished_at,
        log,
    }
}

/// `GET /api/webhooks/{id}/deliveries`: newest first, with their attempts.
pub async fn deliveries(
    ctx: &Context,
    access: &Access,
    id: &str,
    limit: Option<i64>,
) -> Result<Vec<DeliveryView>> {
    access.require(Special::ManageAutomations)?;
    let row = existing(ctx, id).await?;
    let limit = match limit {
        None => 50,
        Some(n) if (1..=500).contains(&n) => n,
        Some(_) => return Err(Error::bad_parameter("limit", "must be between 1 and 500")),
    };
    let rows = store::deliveries(&mut &ctx.db, &row.id, None, limit).await?;
    let ids: Vec<String> = rows.iter().map(|d| d.id.clone()).collect();
    let mut attempts: std::collections::HashMap<String, Vec<AttemptRow>> = Default::default();
    for attempt in store::attempts(&mut &ctx.db, &ids).await? {
        attempts
            .entry(attempt.delivery_id.clone())
            .or_default()
            .push(attempt);
    }
    Ok(rows
        .into_iter()
        .map(|d| {
            let log = attempts.remove(&d.id).unwrap_or_default();
            view_of(d, log)
        })
        .collect())
}
