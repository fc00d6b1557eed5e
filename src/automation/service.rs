//! The automations service: definitions (`/api/automations`), manual and test runs, the run
//! log, and the queue job that runs an automation for a record event or a cron slot.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Value, json};

use super::Scripts;
use super::definition::{self, Trigger};
use super::run::{self, Mode, RunRequest, Script};
use super::shapes::{AutomationInput, AutomationView, RunView};
use crate::auth::{Access, Special};
use crate::context::Context;
use crate::error::{Error, FieldError, Result};
use crate::jobs::JobOutcome;
use crate::paging::LogPage;
use crate::settings::Settings;
use crate::store::automations::{self as store, AutomationRow};
use crate::store::jobs::ClaimedJob;
use crate::store::value::{format_datetime, parse_datetime};
use crate::store::{auth as users, entities};
use crate::wire::Items;

/// Longest script, in bytes.
const MAX_SCRIPT: usize = 100_000;

pub async fn list(ctx: &Context, access: &Access) -> Result<Items<AutomationView>> {
    access.require(Special::ManageAutomations)?;
    let rows = store::list(&mut &ctx.db).await?;
    Ok(Items::of(&rows, AutomationView::of))
}

async fn row(ctx: &Context, id: &str) -> Result<AutomationRow> {
    store::by_id(&mut &ctx.db, id)
        .await?
        .ok_or_else(|| Error::not_found(format!("there is no automation '{id}'")))
}

pub async fn get(ctx: &Context, access: &Access, id: &str) -> Result<AutomationView> {
    access.require(Special::ManageAutomations)?;
    Ok(AutomationView::of(&row(ctx, id).await?))
}

/// Checks a definition (whole, or a change laid over `existing`) into the row to store.
async fn checked(
    ctx: &Context,
    scripts: &Scripts,
    access: &Access,
    body: &AutomationInput,
    existing: Option<&AutomationRow>,
) -> Result<AutomationRow> {
    let catalog = ctx.schema.catalog(&ctx.db).await?;
    checked_in(scripts, &mut &ctx.db, &catalog, access, body, existing).await
}

/// [`checked`] against a given catalog, reading through `ex` (a template install checks its
/// automations inside its transaction, against the entities it is creating).
pub(crate) async fn checked_in(
    scripts: &Scripts,
    ex: &mut impl crate::store::Executor,
    catalog: &crate::schema::compiled::Catalog,
    access: &Access,
    given: &AutomationInput,
    existing: Option<&AutomationRow>,
) -> Result<AutomationRow> {
    let mut problems: Vec<FieldError> = Vec::new();
    let name = given
        .name
        .as_ref()
        .map(|n| n.trim().to_owned())
        .or_else(|| existing.map(|e| e.name.clone()))
        .unwrap_or_default();
    if name.is_empty() || name.chars().count() > 100 {
        problems.push(FieldError::new("name", "is required: 1–100 characters"));
    }
    let description = given
        .description
        .clone()
        .or_else(|| existing.map(|e| e.description.clone()))
        .unwrap_or_default();
    let settings = Settings::load(ex).await?;
    let trigger_doc = given
        .trigger
        .clone()
        .or_else(|| existing.map(|e| e.trigger.clone()))
        .unwrap_or(Value::Null);
    let trigger = match definition::parse(&trigger_doc, Some(catalog), settings.time_zone()) {
        Ok(t) => Some(t),
        Err(mut errors) => {
            problems.append(&mut errors);
            None
        }
    };
    let script = given
        .script
        .clone()
        .or_else(|| existing.map(|e| e.script.clone()))
        .unwrap_or_default();
    if script.trim().is_empty() {
        problems.push(FieldError::new("script", "is required"));
    } else if script.len() > MAX_SCRIPT {
        problems.push(FieldError::new(
            "script",
            format!("is longer than {MAX_SCRIPT} bytes"),
        ));
    } else if let Err(error) = scripts.engine.compile(&script) {
        let mut problem = FieldError::new("script", error.message);
        if let (Some(line), Some(column)) = (error.line, error.column) {
            problem = problem.at_line(line, column);
        }
        problems.push(problem);
    }
    let enabled = given
        .enabled
        .unwrap_or_else(|| existing.is_none_or(|e| e.enabled));
    let run_as = match (given.run_as.clone(), existing, access.actor_id()) {
        (Some(id), _, _) => id,
        (None, Some(e), _) => e.run_as.clone(),
        (None, None, Some(me)) => me.to_owned(),
        (None, None, None) => {
            problems.push(FieldError::new(
                "run_as",
                "is required (the user the script acts as)",
            ));
            String::new()
        }
    };
    if !run_as.is_empty() {
        let someone_else = Some(run_as.as_str()) != access.actor_id();
        let changed = existing.is_none_or(|e| e.run_as != run_as);
        if someone_else && changed && !access.has(Special::ManageUsers) {
            problems.push(FieldError::new(
                "run_as",
                "only those who manage users may make an automation run as someone else",
            ));
        } else if users::user_by_id(ex, &run_as)
            .await?
            .is_none_or(|u| !u.active)
        {
            problems.push(FieldError::new(
                "run_as",
                format!("there is no active user '{run_as}'"),
            ));
        }
    }
    if let Some(other) = store::by_name(ex, &name).await?
        && existing.is_none_or(|e| e.id != other.id)
    {
        return Err(Error::conflict(
            format!("there is already an automation named '{name}'"),
            vec![FieldError::new("name", "is taken")],
        ));
    }
    let Some(trigger) = trigger.filter(|_| problems.is_empty()) else {
        return Err(Error::invalid("the automation is not valid", problems));
    };
    let now = Utc::now();
    let trigger_json = trigger.to_json();
    // Cron slots count from when the schedule took its present shape and was switched on.
    let restarts = existing.is_none_or(|e| (!e.enabled && enabled) || e.trigger != trigger_json);
    Ok(AutomationRow {
        id: existing.map_or_else(
            || uuid::Uuid::now_v7().hyphenated().to_string(),
            |e| e.id.clone(),
        ),
        name,
        description,
        trigger_kind: trigger.kind().to_owned(),
        entity: trigger.entity().map(str::to_owned),
        trigger: trigger_json,
        script,
        enabled,
        run_as,
        created_by: existing.map_or_else(
            || access.actor_id().map(str::to_owned),
            |e| e.created_by.clone(),
        ),
        version: existing.map_or(1, |e| e.version + 1),
        enabled_at: if restarts {
            now
        } else {
            existing.map_or(now, |e| e.enabled_at)
        },
        last_slot: existing.and_then(|e| e.last_slot),
        created_at: existing.map_or(now, |e| e.created_at),
        updated_at: now,
    })
}

pub async fn create(
    ctx: &Context,
    scripts: &Scripts,
    access: &Access,
    body: &AutomationInput,
) -> Result<AutomationView> {
    access.require(Special::ManageAutomations)?;
    let row = checked(ctx, scripts, access, body, None).await?;
    let saved = row.clone();
    ctx.db
        .write(move |tx| {
            Box::pin(async move {
                store::insert(tx, &saved).await?;
                // Record triggers are cached by schema epoch: every server reloads them.
                entities::bump_epoch(tx).await
            })
        })
        .await?;
    ctx.schema.invalidate();
    Ok(AutomationView::of(&row))
}

/// Changes an automation (`PATCH`: only what is given). `If-Match` (or `version`) guards
/// against overwriting someone else's change.
pub async fn update(
    ctx: &Context,
    scripts: &Scripts,
    access: &Access,
    id: &str,
    body: &AutomationInput,
    if_match: Option<i64>,
) -> Result<AutomationView> {
    access.require(Special::ManageAutomations)?;
    let existing = row(ctx, id).await?;
    let expected = if_match.or(body.version).unwrap_or(existing.version);
    if expected != existing.version {
        return Err(Error::PreconditionFailed(format!(
            "the automation is at version {}, not {expected}; reload it",
            existing.version
        )));
    }
    let row = checked(ctx, scripts, access, body, Some(&existing)).await?;
    let saved = row.clone();
    let stored = ctx
        .db
        .write(move |tx| {
            Box::pin(async move {
                let done = store::update(tx, &saved, expected).await?;
                entities::bump_epoch(tx).await?;
                Ok(done)
            })
        })
        .await?;
    ctx.schema.invalidate();
    if !stored {
        return Err(Error::PreconditionFailed(
            "the automation was changed meanwhile; reload it".into(),
        ));
    }
    Ok(AutomationView::of(&row))
}

pub async fn delete(ctx: &Context, access: &Access, id: &str) -> Result<()> {
    access.require(Special::ManageAutomations)?;
    let existing = row(ctx, id).await?;
    ctx.db
        .write(move |tx| {
            Box::pin(async move {
                store::delete(tx, &existing.id).await?;
                entities::bump_epoch(tx).await
            })
        })
        .await?;
    ctx.schema.invalidate();
    Ok(())
}

/// The body of `POST /api/automations/{id}/run`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunBody {
    /// Given to the script as `input` (and its `record`, `old`, `changes` as those).
    #[serde(default)]
    pub input: Value,
    /// Run, report, and roll everything back.
    #[serde(default)]
    pub dry_run: bool,
    /// The run's clock (`today()`, `now()`), for trying date logic.
    #[serde(default)]
    pub as_of: Option<String>,
}

/// Runs an automation now, whatever its trigger, and answers with its report.
pub async fn run_now(
    ctx: &Context,
    scripts: &Scripts,
    access: &Access,
    id: &str,
    body: RunBody,
) -> Result<Value> {
    access.require(Special::ManageAutomations)?;
    let row = row(ctx, id).await?;
    let now = match body.as_of.as_deref() {
        None => Utc::now(),
        Some(text) => parse_datetime(text)
            .or_else(|| {
                chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
                    .ok()
                    .and_then(|d| d.and_hms_opt(12, 0, 0))
                    .map(|t| t.and_utc())
            })
            .ok_or_else(|| {
                Error::invalid_field("as_of", "must be a date (2026-03-01) or a date-time")
            })?,
    };
    let part = |name: &str| body.input.get(name).cloned().unwrap_or(Value::Null);
    let request = RunRequest {
        script: Script::of(&row),
        trigger: json!({"type": "manual", "by": access.actor_id()}),
        slot: None,
        entity: row.entity.clone(),
        vars: vec![
            ("input".into(), body.input.clone()),
            ("record".into(), part("record")),
            ("old".into(), part("old")),
            ("changes".into(), part("changes")),
        ],
        now,
        depth: 0,
        mode: if body.dry_run {
            Mode::DryRun
        } else {
            Mode::Commit
        },
        job_id: None,
    };
    let report = run::run(ctx, scripts, request).await?;
    let mut answer = report.to_json();
    answer["dry_run"] = Value::Bool(body.dry_run);
    Ok(answer)
}

/// `GET /api/automations/{id}/runs?status=&before=&limit=`: newest first.
pub async fn runs(
    ctx: &Context,
    access: &Access,
    id: &str,
    status: Option<&str>,
    before: Option<&str>,
    limit: Option<i64>,
) -> Result<LogPage<RunView>> {
    access.require(Special::ManageAutomations)?;
    let row = row(ctx, id).await?;
    if let Some(s) = status
        && !["succeeded", "failed", "rejected", "skipped"].contains(&s)
    {
        return Err(Error::bad_parameter(
            "status",
            "must be succeeded, failed, rejected or skipped",
        ));
    }
    let before: Option<DateTime<Utc>> = match before {
        Some(text) => Some(
            parse_datetime(text)
                .ok_or_else(|| Error::bad_parameter("before", "must be a date-time"))?,
        ),
        None => None,
    };
    let limit = crate::paging::limit(limit)?;
    let rows = store::runs(&mut &ctx.db, &row.id, before, status, limit + 1).await?;
    Ok(crate::paging::page(&rows, limit, RunView::of, |run| {
        format_datetime(&run.started_at)
    }))
}

/// The queue job of a record event or a cron slot.
pub async fn run_job(ctx: &Context, scripts: &Scripts, job: &ClaimedJob) -> Result<JobOutcome> {
    let payload = &job.payload;
    let Some(id) = payload["automation_id"].as_str() else {
        return Ok(JobOutcome::Fail("the job names no automation".into()));
    };
    let Some(row) = store::by_id(&mut &ctx.db, id).await? else {
        return Ok(JobOutcome::Done); // deleted since: nothing to run
    };
    if !row.enabled {
        return Ok(JobOutcome::Done);
    }
    let trigger = payload["trigger"].clone();
    let slot = payload["slot"].as_str().and_then(parse_datetime);
    let mut vars = vec![];
    for name in ["record", "old", "changes"] {
        vars.push((name.to_owned(), payload[name].clone()));
    }
    if let Some(slot) = payload["slot"].as_str() {
        vars.push(("slot".into(), Value::String(slot.to_owned())));
    }
    let entity = match Trigger::from_stored(&row.trigger) {
        Some(Trigger::Record { entity, .. }) => Some(entity),
        _ => None,
    };
    let depth = payload["depth"].as_u64().unwrap_or(0) as u32;
    let report = run::run(
        ctx,
        scripts,
        RunRequest {
            script: Script::of(&row),
            trigger,
            slot,
            entity,
            vars,
            now: Utc::now(),
            depth,
            mode: Mode::Commit,
            job_id: Some(job.id.clone()),
        },
    )
    .await?;
    Ok(match (report.status, report.retry, report.error) {
        ("succeeded", _, _) => JobOutcome::Done,
        (_, true, Some(e)) => JobOutcome::Retry(e.message),
        (_, _, e) => JobOutcome::Fail(e.map_or_else(|| "failed".to_owned(), |e| e.message)),
    })
}
