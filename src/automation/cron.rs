//! The cron scheduler: every second each server turns the due slots of cron automations into
//! jobs. A slot's job has a unique key (automation, scheduled time), so several servers never
//! fire a slot twice; slots that came due while no server was running fire once, as the
//! newest missed slot, not once each.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::json;

use super::definition::{Trigger, schedule, slots_between};
use super::triggers::RUN_ATTEMPTS;
use crate::context::Context;
use crate::error::Result;
use crate::jobs;
use crate::store::automations as store;
use crate::store::jobs::{self as queue, NewJob};
use crate::store::value::format_datetime;

/// Most slots queued for one automation in one pass (a per-second schedule after a stall).
const MAX_SLOTS_PER_PASS: usize = 120;

/// Runs until the task is aborted.
pub async fn scheduler(ctx: Arc<Context>) {
    let started = Utc::now();
    loop {
        // Just after each whole second, when per-second slots come due.
        let now = Utc::now();
        let into_second = now.timestamp_subsec_millis() as u64;
        tokio::time::sleep(Duration::from_millis(1000 - into_second.min(999) + 20)).await;
        let Some(_pass) = ctx.background_pass() else {
            continue;
        };
        if let Err(error) = pass(&ctx, started, Utc::now()).await {
            tracing::warn!(%error, "the cron scheduler could not queue slots");
        }
    }
}

/// Queues every due slot of every enabled cron automation.
pub async fn pass(ctx: &Context, started: DateTime<Utc>, now: DateTime<Utc>) -> Result<usize> {
    let mut queued = 0;
    for row in store::enabled_of_kinds(&mut &ctx.db, &["cron"]).await? {
        let Some(Trigger::Cron {
            expression,
            time_zone,
        }) = Trigger::from_stored(&row.trigger)
        else {
            continue;
        };
        let Ok(schedule) = schedule(&expression) else {
            continue;
        };
        let floor = row
            .last_slot
            .map_or(row.enabled_at, |s| s.max(row.enabled_at));
        let due = slots_between(&schedule, time_zone, floor, now, MAX_SLOTS_PER_PASS);
        // Slots due before this server started were missed while it was down (another
        // server running then would have queued them): only the newest of those fires.
        let (missed, live): (Vec<_>, Vec<_>) = due.into_iter().partition(|s| *s <= started);
        let fire: Vec<DateTime<Utc>> = missed.last().copied().into_iter().chain(live).collect();
        let Some(newest) = fire.last().copied() else {
            continue;
        };
        let id = row.id.clone();
        let count = fire.len();
        ctx.db
            .write(move |tx| {
                Box::pin(async move {
                    for slot in &fire {
                        let at = format_datetime(slot);
                        queue::enqueue(
                            tx,
                            &NewJob {
                                kind: jobs::AUTOMATION,
                                unique_key: Some(format!("cron:{id}:{at}")),
                                payload: json!({
                                    "automation_id": id,
                                    "trigger": {"type": "cron", "slot": at},
                                    "slot": at,
                                }),
                                run_at: *slot,
                                max_attempts: RUN_ATTEMPTS,
                            },
                            *slot,
                        )
                        .await?;
                    }
                    store::advance_slot(tx, &id, newest).await
                })
            })
            .await?;
        queued += count;
    }
    Ok(queued)
}
