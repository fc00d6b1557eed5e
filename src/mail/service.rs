//! The mail service: templates (`/api/mail-templates`), rendering a message into the outbox,
//! the outbox itself (`/api/outbox`) and the delivery job behind it.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::deliver::Mailer;
use super::render::{self, Formatting, Rendered};
use super::shapes::{OutboxView, TemplateInput, TemplateView};
use crate::auth::{Access, Special};
use crate::context::Context;
use crate::error::{Error, FieldError, Result};
use crate::jobs::{self, JobOutcome};
use crate::paging::LogPage;
use crate::settings::{DECIMAL_KINDS, Settings};
use crate::store::jobs::{ClaimedJob, NewJob};
use crate::store::mail::{self as store, OutboxRow, TemplateRow};
use crate::store::{Executor, auth as users};
use crate::wire::Items;

/// Delivery attempts before a message is parked as failed (about 4 hours of retrying).
pub const MAX_DELIVERY_ATTEMPTS: i64 = 14;

fn new_id() -> String {
    uuid::Uuid::now_v7().hyphenated().to_string()
}

pub fn formatting(settings: &Settings) -> Formatting {
    Formatting {
        time_zone: settings.time_zone(),
        places: settings.decimal_places("orders"),
        places_by_kind: DECIMAL_KINDS
            .iter()
            .map(|k| ((*k).to_owned(), settings.decimal_places(k)))
            .collect(),
    }
}

// ---- templates --------------------------------------------------------------------------

pub async fn list_templates(ctx: &Context, access: &Access) -> Result<Items<TemplateView>> {
    access.require(Special::ManageAutomations)?;
    let rows = store::templates(&mut &ctx.db).await?;
    Ok(Items::of(&rows, TemplateView::of))
}

async fn template_row(ctx: &Context, id_or_name: &str) -> Result<TemplateRow> {
    store::template_by(&mut &ctx.db, id_or_name)
        .await?
        .ok_or_else(|| Error::not_found(format!("there is no mail template '{id_or_name}'")))
}

pub async fn get_template(ctx: &Context, access: &Access, id: &str) -> Result<TemplateView> {
    access.require(Special::ManageAutomations)?;
    Ok(TemplateView::of(&template_row(ctx, id).await?))
}

/// Creates (no `id`) or replaces a template. Names are letters, digits, `_` and `-`.
pub async fn save_template(
    ctx: &Context,
    access: &Access,
    id: Option<&str>,
    body: TemplateInput,
) -> Result<TemplateView> {
    access.require(Special::ManageAutomations)?;
    let existing = match id {
        Some(id) => Some(template_row(ctx, id).await?),
        None => None,
    };
    let mut problems = Vec::new();
    let name = body
        .name
        .as_deref()
        .map(str::trim)
        .or(existing.as_ref().map(|e| e.name.as_str()))
        .unwrap_or_default()
        .to_owned();
    let valid_name = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if !valid_name {
        problems.push(FieldError::new(
            "name",
            "is required: 1–64 letters, digits, _ or -",
        ));
    }
    let description = body.description;
    let variants = match render::check_variants(body.variants.as_ref().unwrap_or(&Value::Null)) {
        Ok(v) => v,
        Err(mut errors) => {
            problems.append(&mut errors);
            Value::Null
        }
    };
    if let Some(other) = store::template_by(&mut &ctx.db, &name).await?
        && existing.as_ref().is_none_or(|e| e.id != other.id)
        && valid_name
    {
        return Err(Error::conflict(
            format!("there is already a mail template named '{name}'"),
            vec![FieldError::new("name", "is taken")],
        ));
    }
    if !problems.is_empty() {
        return Err(Error::invalid("the mail template is not valid", problems));
    }
    let now = Utc::now();
    let row = TemplateRow {
        id: existing.as_ref().map_or_else(new_id, |e| e.id.clone()),
        name,
        description,
        variants,
        version: existing.as_ref().map_or(1, |e| e.version + 1),
        created_at: existing.as_ref().map_or(now, |e| e.created_at),
        updated_at: now,
    };
    let saved = row.clone();
    ctx.db
        .write(move |tx| Box::pin(async move { store::save_template(tx, &saved).await }))
        .await?;
    Ok(TemplateView::of(&row))
}

pub async fn delete_template(ctx: &Context, access: &Access, id: &str) -> Result<()> {
    access.require(Special::ManageAutomations)?;
    let row = template_row(ctx, id).await?;
    ctx.db
        .write(move |tx| {
            Box::pin(async move { store::delete_template(tx, &row.id).await.map(|_| ()) })
        })
        .await
}

// ---- composing --------------------------------------------------------------------------

/// A request to send a template: recipients (email addresses or user ids) and the data.
#[derive(Debug, Clone)]
pub struct MailRequest {
    pub to: Vec<String>,
    pub template: String,
    pub data: Value,
    /// Overrides the language chosen from the first recipient.
    pub language: Option<String>,
    /// Campaign mail: unsubscribed addresses are skipped and the data gets an
    /// `unsubscribe_url` for the recipient.
    pub campaign: Option<String>,
}

/// Renders a request into an outbox row (not stored yet). Users named by id are mailed at
/// their address and in their language. Errors are plain messages for the script's log.
pub async fn compose(
    ex: &mut impl Executor,
    settings: &Settings,
    request: &MailRequest,
    run_id: Option<&str>,
    now: DateTime<Utc>,
) -> std::result::Result<OutboxRow, String> {
    if request.to.is_empty() {
        return Err("mail::send needs at least one recipient in `to`".into());
    }
    let db_error = |e: Error| format!("cannot read the mail template: {e}");
    let template = store::template_by(ex, &request.template)
        .await
        .map_err(db_error)?
        .ok_or_else(|| format!("there is no mail template '{}'", request.template))?;
    let mut recipients = Vec::new();
    let mut language = request.language.clone();
    for to in &request.to {
        if uuid::Uuid::parse_str(to).is_ok() {
            let user = users::user_by_id(ex, to)
                .await
                .map_err(db_error)?
                .filter(|u| u.active)
                .ok_or_else(|| format!("there is no active user '{to}' to mail"))?;
            language.get_or_insert(user.language.clone());
            recipients.push(format!("{} <{}>", quoted(&user.display_name), user.email));
        } else if to.parse::<lettre::message::Mailbox>().is_ok() {
            recipients.push(to.clone());
        } else {
            return Err(format!("'{to}' is neither an email address nor a user id"));
        }
    }
    let language = language.unwrap_or_else(|| settings.default_language());
    let Rendered {
        subject,
        html,
        text,
    } = render::render(
        &template.variants,
        &language,
        &settings.default_language(),
        &request.data,
        &formatting(settings),
    )
    .map_err(|e| format!("mail template '{}': {e}", template.name))?;
    Ok(OutboxRow {
        id: new_id(),
        template: Some(template.name),
        recipients,
        sender: settings.smtp_sender(),
        subject,
        html,
        body: text,
        status: "queued".into(),
        attempts: 0,
        last_error: None,
        run_id: run_id.map(str::to_owned),
        created_at: now,
        sent_at: None,
    })
}

/// A display name safe inside a mailbox (`"Li, Lei" <li@…>`).
fn quoted(name: &str) -> String {
    if name
        .chars()
        .all(|c| c.is_alphanumeric() || c == ' ' || c == '.' || c == '-' || !c.is_ascii())
    {
        name.to_owned()
    } else {
        format!("\"{}\"", name.replace(['"', '\\'], ""))
    }
}

/// Stores composed messages and their delivery jobs (inside the caller's transaction).
pub async fn queue(
    ex: &mut impl Executor,
    messages: &[OutboxRow],
    now: DateTime<Utc>,
) -> Result<()> {
    for message in messages {
        store::insert_outbox(ex, message).await?;
        crate::store::jobs::enqueue(
            ex,
            &NewJob {
                kind: jobs::MAIL,
                unique_key: Some(format!("mail:{}", message.id)),
                payload: json!({"outbox_id": message.id}),
                run_at: now,
                max_attempts: MAX_DELIVERY_ATTEMPTS,
            },
            now,
        )
        .await?;
    }
    Ok(())
}

// ---- the outbox -------------------------------------------------------------------------

/// `GET /api/outbox?status=&before=&limit=`: newest first.
pub async fn outbox(
    ctx: &Context,
    access: &Access,
    status: Option<&str>,
    before: Option<&str>,
    limit: Option<i64>,
) -> Result<LogPage<OutboxView>> {
    access.require(Special::ManageAutomations)?;
    if let Some(s) = status
        && !["queued", "sent", "failed"].contains(&s)
    {
        return Err(Error::bad_parameter(
            "status",
            "must be queued, sent or failed",
        ));
    }
    let limit = crate::paging::limit(limit)?;
    let rows = store::outbox_page(&mut &ctx.db, status, before, limit + 1).await?;
    Ok(crate::paging::page(&rows, limit, OutboxView::of, |m| {
        m.id.clone()
    }))
}

/// The delivery job of one message: sent → done; failed → retried with backoff, and after
/// the last attempt the message is marked failed. The outbox shows every attempt's error.
pub async fn deliver_job(ctx: &Context, mailer: &Mailer, job: &ClaimedJob) -> Result<JobOutcome> {
    let Some(id) = job.payload["outbox_id"].as_str() else {
        return Ok(JobOutcome::Fail("the job names no message".into()));
    };
    let Some(row) = store::outbox_by_id(&mut &ctx.db, id).await? else {
        return Ok(JobOutcome::Fail(format!("message {id} is gone")));
    };
    if row.status == "sent" {
        return Ok(JobOutcome::Done);
    }
    let settings = Settings::load(&mut &ctx.db).await?;
    let outcome = mailer.deliver(&settings, &row).await;
    let last = job.attempts >= job.max_attempts;
    let now = Utc::now();
    let job_id = job.id.clone();
    let message_id = row.id.clone();
    match outcome {
        Ok(()) => {
            ctx.db
                .write(move |tx| {
                    Box::pin(async move {
                        store::record_attempt(tx, &message_id, Ok(now)).await?;
                        crate::store::jobs::complete(tx, &job_id, now).await
                    })
                })
                .await?;
            Ok(JobOutcome::Done)
        }
        Err(error) => {
            tracing::warn!(message = %row.id, attempt = job.attempts, "{error}");
            let recorded = error.clone();
            ctx.db
                .write(move |tx| {
                    Box::pin(async move {
                        store::record_attempt(tx, &message_id, Err((&recorded, last))).await
                    })
                })
                .await?;
            Ok(if last {
                JobOutcome::Fail(error)
            } else {
                JobOutcome::Retry(error)
            })
        }
    }
}
