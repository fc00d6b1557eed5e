//! Delivering: one attempt per job. The attempt checks the target again (the setting may have
//! changed, and a host name may now resolve elsewhere), connects only to the addresses it
//! checked, never follows redirects and gives up after 15 seconds. What happened is logged;
//! a 2xx delivers, a 410 switches the endpoint off, anything else waits for the next attempt
//! of the schedule (longer if the receiver asks with `Retry-After`) until the schedule ends.

use std::time::{Duration, Instant};

use chrono::Utc;

use super::sign::{self, Secret};
use crate::context::Context;
use crate::error::Result;
use crate::jobs::JobOutcome;
use crate::settings::Settings;
use crate::store::jobs::ClaimedJob;
use crate::store::webhooks::{self as store, AttemptRow, DeliveryRow, WebhookRow};

/// How long a receiver may take to answer.
const TIMEOUT: Duration = Duration::from_secs(15);
/// How much of an answer the log keeps.
const RESPONSE_EXCERPT: usize = 1_000;

/// What an attempt came to.
struct Answer {
    status: Option<u16>,
    body: Option<String>,
    error: Option<String>,
    retry_after: Option<Duration>,
}

/// The secrets that sign now: the current one, and the previous one during a rotation.
fn signing_secrets(row: &WebhookRow) -> Vec<Secret> {
    let now = Utc::now();
    let mut secrets: Vec<Secret> = Secret::parse(&row.secret).into_iter().collect();
    if let (Some(previous), Some(until)) = (&row.previous_secret, row.previous_until)
        && until > now
        && let Ok(previous) = Secret::parse(previous)
    {
        secrets.push(previous);
    }
    secrets
}

async fn send(row: &WebhookRow, delivery: &DeliveryRow, allow_private: bool) -> Answer {
    let fail = |error: String| Answer {
        status: None,
        body: None,
        error: Some(error),
        retry_after: None,
    };
    let target = match sign::check_target(&row.url, allow_private) {
        Ok(target) => target,
        Err(message) => return fail(message),
    };
    let host = target.host_str();
    let addrs = match sign::resolve_and_check(&host, target.port, allow_private).await {
        Ok(addrs) => addrs,
        Err(message) => return fail(message),
    };
    let bare_host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let client = match reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(TIMEOUT)
        .resolve_to_addrs(&bare_host, &addrs)
        .user_agent(concat!("Tessera-Webhooks/", env!("CARGO_PKG_VERSION")))
        .build()
    {
        Ok(client) => client,
        Err(error) => return fail(format!("cannot make an HTTP client: {error}")),
    };
    let timestamp = Utc::now().timestamp();
    let secrets = signing_secrets(row);
    let refs: Vec<&Secret> = secrets.iter().collect();
    let signature =
        sign::signature_header(&refs, &delivery.id, timestamp, delivery.body.as_bytes());
    let sent = client
        .post(target.to_string())
        .header("content-type", "application/json")
        .header("webhook-id", &delivery.id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signature)
        .body(delivery.body.clone())
        .send()
        .await;
    match sent {
        Ok(response) => {
            let status = response.status().as_u16();
            let retry_after = response
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(sign::parse_retry_after);
            let body = response.text().await.ok().map(|text| {
                let mut excerpt: String = text.chars().take(RESPONSE_EXCERPT).collect();
                if text.chars().count() > RESPONSE_EXCERPT {
                    excerpt.push('…');
                }
                excerpt
            });
            Answer {
                status: Some(status),
                body,
                error: None,
                retry_after,
            }
        }
        Err(error) if error.is_timeout() => {
            fail(format!("no answer within {} seconds", TIMEOUT.as_secs()))
        }
        Err(error) => fail(format!("the request failed: {error}")),
    }
}

/// Runs one delivery attempt (a `webhook` job) and records it with what comes next.
pub async fn run_job(ctx: &Context, job: &ClaimedJob) -> Result<JobOutcome> {
    let Some(id) = job.payload["delivery_id"].as_str() else {
        return Ok(JobOutcome::Fail("the job names no delivery".into()));
    };
    let Some(mut delivery) = store::delivery_by_id(&mut &ctx.db, id).await? else {
        return Ok(JobOutcome::Done); // its endpoint was deleted since
    };
    if delivery.status != "pending" {
        return Ok(JobOutcome::Done);
    }
    let Some(row) = store::by_id(&mut &ctx.db, &delivery.webhook_id).await? else {
        return Ok(JobOutcome::Done);
    };
    let now = Utc::now();
    if !row.active {
        delivery.status = "cancelled".into();
        delivery.finished_at = Some(now);
        delivery.last_error = Some("the endpoint is switched off".into());
        let attempt = attempt_row(&delivery, now, None, 0, None, delivery.last_error.clone());
        let done = delivery.clone();
        ctx.db
            .write(move |tx| {
                Box::pin(async move { store::finish_attempt(tx, &done, &attempt).await })
            })
            .await?;
        return Ok(JobOutcome::Done);
    }
    let settings = Settings::load(&mut &ctx.db).await?;
    let started = Instant::now();
    let answer = send(&row, &delivery, settings.webhooks_allow_private()).await;
    let took = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
    let at = Utc::now();
    delivery.attempts += 1;
    delivery.last_status = answer.status.map(i64::from);
    delivery.last_error = answer.error.clone();
    let attempt = attempt_row(
        &delivery,
        at,
        answer.status.map(i64::from),
        took,
        answer.body.clone(),
        answer.error.clone(),
    );
    let gone = answer.status == Some(410);
    match answer.status {
        Some(200..=299) => {
            delivery.status = "delivered".into();
            delivery.next_attempt = None;
            delivery.finished_at = Some(at);
        }
        Some(410) => {
            delivery.status = "failed".into();
            delivery.next_attempt = None;
            delivery.finished_at = Some(at);
            delivery.last_error = Some("the receiver answered 410 Gone".into());
        }
        _ => {
            let made = u32::try_from(delivery.attempts).unwrap_or(u32::MAX);
            // The schedule scales (tests shorten it); what the receiver asks for does not.
            let scheduled =
                sign::next_attempt(made, None).map(|wait| wait.mul_f64(ctx.webhook_retry_scale));
            let asked = answer
                .retry_after
                .map(|asked| asked.min(sign::MAX_RETRY_AFTER));
            match scheduled.map(|wait| asked.map_or(wait, |asked| wait.max(asked))) {
                Some(wait) => {
                    delivery.next_attempt =
                        Some(at + chrono::TimeDelta::from_std(wait).unwrap_or_default());
                }
                None => {
                    delivery.status = "failed".into();
                    delivery.next_attempt = None;
                    delivery.finished_at = Some(at);
                }
            }
        }
    }
    let done = delivery.clone();
    let webhook_id = row.id.clone();
    ctx.db
        .write(move |tx| {
            Box::pin(async move {
                store::finish_attempt(tx, &done, &attempt).await?;
                if gone {
                    store::disable(tx, &webhook_id, "the receiver answered 410 Gone", at).await?;
                    crate::store::entities::bump_epoch(tx).await?;
                } else if done.status == "pending" {
                    super::queue_delivery(tx, &done, at).await?;
                }
                Ok(())
            })
        })
        .await?;
    if gone {
        ctx.schema.invalidate();
    }
    Ok(JobOutcome::Done)
}

fn attempt_row(
    delivery: &DeliveryRow,
    at: chrono::DateTime<Utc>,
    status: Option<i64>,
    duration_ms: i64,
    response: Option<String>,
    error: Option<String>,
) -> AttemptRow {
    AttemptRow {
        id: uuid::Uuid::now_v7().hyphenated().to_string(),
        delivery_id: delivery.id.clone(),
        at,
        status,
        duration_ms,
        response,
        error,
    }
}
