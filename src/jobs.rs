//! The workers of the durable job queue: each server runs a few; each claims one due job at a
//! time with a lease, runs it, and marks it done, retries it later (exponential backoff) or
//! parks it as failed after its last attempt. A job whose worker died is claimed again when
//! its lease runs out.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use futures_util::future::BoxFuture;
use tokio::task::JoinHandle;

use crate::context::Context;
use crate::error::Result;
use crate::store::jobs::{self as queue, ClaimedJob};

/// An automation run (record trigger, cron slot).
pub const AUTOMATION: &str = "automation";
/// The delivery of an outbox message.
pub const MAIL: &str = "mail";
/// An attempt to deliver a webhook.
pub const WEBHOOK: &str = "webhook";
/// An import sent with `Prefer: respond-async` (resumes after its last committed row).
pub const IMPORT: &str = "import";

/// How long a claim holds; longer than any run's deadline and any SMTP exchange.
const LEASE: chrono::TimeDelta = chrono::TimeDelta::minutes(5);
/// How often an idle worker looks for due jobs.
const POLL: Duration = Duration::from_millis(200);
/// Longest wait between attempts.
const MAX_BACKOFF: chrono::TimeDelta = chrono::TimeDelta::hours(1);

/// What became of a job.
#[derive(Debug, Clone, PartialEq)]
pub enum JobOutcome {
    Done,
    /// Failed for a reason that may pass (a mail server down, a database hiccup).
    Retry(String),
    /// Failed for good (the script is at fault, or the job makes no sense any more).
    Fail(String),
}

/// The wait before attempt `attempt + 1`: `base`, 2·`base`, 4·`base`, … up to an hour.
pub fn backoff(attempt: i64, base: Duration) -> chrono::TimeDelta {
    let factor = 2u32.saturating_pow(u32::try_from(attempt.clamp(1, 30) - 1).unwrap_or(0));
    chrono::TimeDelta::from_std(base.saturating_mul(factor))
        .unwrap_or(MAX_BACKOFF)
        .min(MAX_BACKOFF)
}

/// Runs the jobs of each kind (the server assembles it from the features that queue jobs).
pub trait Handler: Send + Sync {
    fn handle<'a>(&'a self, job: &'a ClaimedJob) -> BoxFuture<'a, Result<JobOutcome>>;
}

/// Starts `count` workers.
pub fn start(ctx: &Arc<Context>, count: usize, handler: Arc<dyn Handler>) -> Vec<JoinHandle<()>> {
    (0..count)
        .map(|n| {
            tokio::spawn(work(
                ctx.clone(),
                handler.clone(),
                format!("{}/{n}", ctx.instance),
            ))
        })
        .collect()
}

async fn work(ctx: Arc<Context>, handler: Arc<dyn Handler>, owner: String) {
    loop {
        let wait = match ctx.background_pass() {
            None => POLL,
            Some(_pass) => match next(&ctx, &owner).await {
                Ok(Some(job)) => {
                    handle(&ctx, handler.as_ref(), job).await;
                    Duration::ZERO
                }
                Ok(None) => POLL,
                Err(error) => {
                    tracing::warn!(%error, "the job queue is unreachable");
                    Duration::from_secs(1)
                }
            },
        };
        // Waiting is not a pass: a held server settles without waiting for it.
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }
}

/// Claims the next due job, if any (a cheap read first, so an idle queue costs no writes).
async fn next(ctx: &Context, owner: &str) -> Result<Option<ClaimedJob>> {
    let now = Utc::now();
    if !queue::any_due(&mut &ctx.db, now).await? {
        return Ok(None);
    }
    let owner = owner.to_owned();
    let claimed = ctx
        .db
        .write(move |tx| {
            Box::pin(async move { queue::claim(tx, &owner, now + LEASE, 1, now).await })
        })
        .await?;
    Ok(claimed.into_iter().next())
}

async fn handle(ctx: &Context, handler: &dyn Handler, job: ClaimedJob) {
    let outcome = handler.handle(&job).await;
    let outcome = outcome.unwrap_or_else(|error| JobOutcome::Retry(error.to_string()));
    let now = Utc::now();
    let id = job.id.clone();
    let base = ctx.retry_base;
    let written = ctx
        .db
        .write(move |tx| {
            Box::pin(async move {
                match outcome {
                    JobOutcome::Done => queue::complete(tx, &id, now).await,
                    JobOutcome::Retry(error) if job.attempts < job.max_attempts => {
                        let at = now + backoff(job.attempts, base);
                        queue::retry(tx, &id, &error, at).await
                    }
                    JobOutcome::Retry(error) | JobOutcome::Fail(error) => {
                        queue::park(tx, &id, &error, now).await
                    }
                }
            })
        })
        .await;
    if let Err(error) = written {
        tracing::warn!(%error, job = %job.id, "cannot record a job's outcome; it runs again when its lease ends");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_an_hour() {
        let base = Duration::from_secs(1);
        assert_eq!(backoff(1, base).num_seconds(), 1);
        assert_eq!(backoff(2, base).num_seconds(), 2);
        assert_eq!(backoff(5, base).num_seconds(), 16);
        assert_eq!(backoff(20, base).num_seconds(), 3600);
    }
}
