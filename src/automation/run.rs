//! One automation run: the script on its thread, the host serving its calls, and the end —
//! the run's record writes, the mails it queued, its log row and its job's completion commit
//! in one transaction, or none of them do.
//!
//! The host reads through the pools until the script first writes; from then on it holds a
//! write transaction and serves every call through it (so the script reads its own writes).

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::Scripts;
use super::engine::{Call, HostCall, RunSetup, ScriptEnd, ScriptError};
use crate::auth::Access;
use crate::context::Context;
use crate::error::{Error, Result};
use crate::events::Origin;
use crate::mail::service as mail;
use crate::records::list::{self, ListParams, ReadQuery};
use crate::records::output::Shape;
use crate::records::service::{self as records, Target, target};
use crate::records::write::{self, Writer};
use crate::settings::Settings;
use crate::store::automations::{self as store, RunRow};
use crate::store::mail::OutboxRow;
use crate::store::{Executor, Tx, jobs as queue};

/// What becomes of a run's work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Commit the writes and mails (triggers, cron, manual runs).
    Commit,
    /// Run, report, roll everything back (the editor's test run).
    DryRun,
    /// Inside a save: may read records, not write them or send mail.
    BeforeSave,
}

/// The automation being run, as much of it as a run needs.
#[derive(Debug, Clone)]
pub struct Script {
    pub automation_id: String,
    pub name: String,
    pub version: i64,
    pub source: String,
    pub run_as: String,
}

impl Script {
    pub fn of(row: &crate::store::automations::AutomationRow) -> Script {
        Script {
            automation_id: row.id.clone(),
            name: row.name.clone(),
            version: row.version,
            source: row.script.clone(),
            run_as: row.run_as.clone(),
        }
    }
}

/// A run to make.
#[derive(Debug, Clone)]
pub struct RunRequest {
    pub script: Script,
    /// How the run was started, for the log (`{"type": "record", "event": …}`).
    pub trigger: Value,
    pub slot: Option<DateTime<Utc>>,
    /// The record entity the variables `record` and `old` belong to: their fields are shown
    /// to the script only as far as the run-as user may read them.
    pub entity: Option<String>,
    pub vars: Vec<(String, Value)>,
    pub now: DateTime<Utc>,
    /// Cascade depth of the writes this run makes.
    pub depth: u32,
    pub mode: Mode,
    /// The queue job this run is, completed in the run's transaction.
    pub job_id: Option<String>,
}

/// How a run went.
#[derive(Debug, Clone)]
pub struct RunReport {
    pub id: String,
    /// `succeeded`, `failed` or `rejected`.
    pub status: &'static str,
    pub log: Vec<String>,
    pub error: Option<ScriptError>,
    pub result: Value,
    pub touched: Vec<Value>,
    /// The `record` variable after the run (before-save scripts change it).
    pub record: Option<Value>,
    pub mails: usize,
    /// The run could not be carried out or committed (database trouble): worth retrying.
    pub retry: bool,
}

impl RunReport {
    pub fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "status": self.status,
            "log": self.log,
            "error": self.error.as_ref().map(|e| json!({
                "message": e.message, "line": e.line, "column": e.column,
            })),
            "result": self.result,
            "touched": self.touched,
            "mails": self.mails,
        })
    }
}

fn script_error(message: impl Into<String>) -> ScriptError {
    ScriptError {
        message: message.into(),
        line: None,
        column: None,
        rejected: false,
    }
}

/// The host's side of a run.
struct Host<'a> {
    ctx: &'a Context,
    access: Access,
    settings: Settings,
    now: DateTime<Utc>,
    run_id: String,
    mode: Mode,
    max_found: i64,
    touched: Vec<Value>,
    mails: Vec<OutboxRow>,
}

/// An error as the script sees it: the message and every field problem.
fn said(error: Error) -> String {
    match &error {
        Error::Invalid { message, errors }
        | Error::Conflict { message, errors }
        | Error::BadRequest { message, errors }
            if !errors.is_empty() =>
        {
            let details: Vec<String> = errors
                .iter()
                .map(|e| format!("{}: {}", e.field, e.message))
                .collect();
            let details = details.join("; ");
            if *message == details {
                details
            } else {
                format!("{message} ({details})")
            }
        }
        _ => error.to_string(),
    }
}

impl Host<'_> {
    async fn target(&self, entity: &str) -> Result<Target> {
        target(self.ctx, &self.access, entity).await
    }

    /// The entity and a writer for the script's writes (as its run-as user, at the run's time).
    async fn writer(&self, entity: &str) -> Result<(Target, Writer)> {
        let target = self.target(entity).await?;
        let mut w = Writer::with_catalog(
            self.ctx,
            target.catalog.clone(),
            &self.access,
            Origin::Script,
        );
        w.now = self.now;
        Ok((target, w))
    }

    /// The list a saved view stands for (`id` or `entity/name` of a shared view, or one of the
    /// run-as user's own), in id order after `after`, at most `max_found` records.
    async fn view_query(
        &self,
        ex: &mut impl Executor,
        view: &str,
        after: Option<String>,
    ) -> Result<(Target, ListParams)> {
        use crate::store::layouts;
        let missing = || Error::bad_request(format!("there is no view '{view}'"));
        let row = match view.split_once('/') {
            Some((entity, name)) => {
                let mine = match self.access.actor_id() {
                    Some(me) => layouts::view_by_name(ex, entity, Some(me), name).await?,
                    None => None,
                };
                match mine {
                    Some(row) => Some(row),
                    None => layouts::view_by_name(ex, entity, None, name).await?,
                }
            }
            None => layouts::view_by_id(ex, view)
                .await?
                .filter(|r| r.owner.is_none() || r.owner.as_deref() == self.access.actor_id()),
        }
        .ok_or_else(missing)?;
        let target = self.target(&row.entity).await?;
        let view_filter = row.document["filter"].as_str().map(str::to_owned);
        let after = after.map(|a| format!("id > \"{}\"", a.replace(['"', '\\'], "")));
        let filter = match (view_filter, after) {
            (Some(f), Some(a)) => Some(format!("({f}) && {a}")),
            (f, a) => f.or(a),
        };
        let params = ListParams {
            filter,
            sort: Some("id".into()),
            limit: Some(self.max_found),
            ..ListParams::default()
        };
        Ok((target, params))
    }

    async fn read(&mut self, ex: &mut impl Executor, call: Call) -> Result<Value> {
        match call {
            Call::InView { view, after } => {
                let (target, params) = self.view_query(ex, &view, after).await?;
                let mut page = list::page(ex, &target, &self.access, &params).await?;
                Ok(page["items"].take())
            }
            Call::UsersWithRole { role } => {
                let users = crate::store::auth::active_users_with_role(ex, &role).await?;
                Ok(Value::Array(
                    users
                        .iter()
                        .map(|u| {
                            json!({"id": u.id, "name": u.display_name, "email": u.email,
                                   "department": u.department_id})
                        })
                        .collect(),
                ))
            }
            Call::Find {
                entity,
                filter,
                sort,
                limit,
            } => {
                let target = self.target(&entity).await?;
                let params = ListParams {
                    filter: Some(filter),
                    sort,
                    limit: Some(limit.clamp(1, self.max_found)),
                    ..ListParams::default()
                };
                let mut page = list::page(ex, &target, &self.access, &params).await?;
                Ok(page["items"].take())
            }
            Call::Count { entity, filter } => {
                let target = self.target(&entity).await?;
                let query = ReadQuery {
                    filter: Some(&filter),
                    ..ReadQuery::new(&target, &self.access)
                };
                Ok(json!(query.count(ex).await?))
            }
            Call::Get { entity, id } => {
                let target = self.target(&entity).await?;
                match records::get_in(ex, &target, &self.access, &id, None, false).await {
                    Ok(saved) => Ok(saved.record),
                    Err(Error::NotFound(_)) => Ok(Value::Null),
                    Err(e) => Err(e),
                }
            }
            Call::Mail(request) => {
                if self.mode == Mode::BeforeSave {
                    return Err(Error::bad_request(
                        "a before-save script cannot send mail; use an after-save trigger",
                    ));
                }
                let mut request = request;
                if request.campaign.is_some() {
                    let addresses: Vec<String> = request
                        .to
                        .iter()
                        .filter_map(|to| to.parse::<lettre::message::Mailbox>().ok())
                        .map(|m| m.email.to_string().to_lowercase())
                        .collect();
                    let out = crate::mail::unsubscribe::unsubscribed(ex, &addresses).await?;
                    request.to.retain(|to| {
                        to.parse::<lettre::message::Mailbox>()
                            .map_or(true, |m| !out.contains(&m.email.to_string().to_lowercase()))
                    });
                    if request.to.is_empty() {
                        return Ok(
                            json!({"skipped": true, "reason": "unsubscribed", "to": addresses}),
                        );
                    }
                    if let Some(first) = addresses.iter().find(|a| !out.contains(a))
                        && let Some(data) = request.data.as_object_mut()
                    {
                        let url =
                            crate::mail::unsubscribe::link(ex, &self.settings.public_url(), first)
                                .await?;
                        data.insert("unsubscribe_url".into(), json!(url));
                    }
                }
                let message =
                    mail::compose(ex, &self.settings, &request, Some(&self.run_id), self.now)
                        .await
                        .map_err(Error::bad_request)?;
                let answer = json!({"id": message.id, "to": message.recipients,
                                    "subject": message.subject});
                self.mails.push(message);
                Ok(answer)
            }
            other => Err(Error::internal(format!("{other:?} is a write"))),
        }
    }

    async fn write(&mut self, tx: &mut Tx, call: Call) -> Result<Value> {
        match call {
            Call::Create { entity, data } => {
                let (target, w) = self.writer(&entity).await?;
                let name = target.entity.def.name.to_string();
                let mut record = write::create(tx, &w, &name, &data, Vec::new())
                    .await?
                    .record;
                Shape::readable(&target.entity, &self.access).strip(&mut record);
                self.touched
                    .push(json!({"entity": name, "id": record["id"], "action": "created"}));
                Ok(record)
            }
            Call::Update { entity, id, data } => {
                let (target, w) = self.writer(&entity).await?;
                let id = records::parse_id(&target.entity, &id)?;
                let name = target.entity.def.name.to_string();
                let mut record = write::update(tx, &w, &name, &id, &data, None, Vec::new())
                    .await?
                    .record;
                Shape::readable(&target.entity, &self.access).strip(&mut record);
                self.touched.push(
                    json!({"entity": target.entity.def.name.as_str(), "id": id, "action": "updated"}),
                );
                Ok(record)
            }
            Call::Delete { entity, id } => {
                let (target, w) = self.writer(&entity).await?;
                let id = records::parse_id(&target.entity, &id)?;
                let name = target.entity.def.name.to_string();
                write::delete(tx, &w, &name, &id, None, false).await?;
                self.touched.push(
                    json!({"entity": target.entity.def.name.as_str(), "id": id, "action": "deleted"}),
                );
                Ok(Value::Bool(true))
            }
            read => self.read(tx, read).await,
        }
    }
}

/// Hides from the script what its run-as user may not read of the trigger's record.
async fn shown_vars(ctx: &Context, access: &Access, request: &RunRequest) -> Vec<(String, Value)> {
    let shape = match &request.entity {
        Some(entity) => match target(ctx, access, entity).await {
            Ok(t) => Some(Shape::readable(&t.entity, access)),
            Err(_) => None,
        },
        None => None,
    };
    request
        .vars
        .iter()
        .map(|(name, value)| {
            let mut value = value.clone();
            if let Some(shape) = &shape
                && ["record", "old", "changes"].contains(&name.as_str())
                && value.is_object()
            {
                shape.strip(&mut value);
            }
            (name.clone(), value)
        })
        .collect()
}

/// Makes a run and records it in the run log (before-save runs only when they fail or
/// reject). Errors are returned only when not even the log could be written.
pub async fn run(ctx: &Context, scripts: &Scripts, request: RunRequest) -> Result<RunReport> {
    let run_id = uuid::Uuid::now_v7().hyphenated().to_string();
    let started = Utc::now();
    let mut report = RunReport {
        id: run_id.clone(),
        status: "failed",
        log: Vec::new(),
        error: None,
        result: Value::Null,
        touched: Vec::new(),
        record: None,
        mails: 0,
        retry: false,
    };
    let access = match crate::auth::service::access_of_user(ctx, &request.script.run_as).await? {
        Some(access) => access.in_automation(request.depth),
        None => {
            report.error = Some(script_error(format!(
                "the automation runs as user {}, who is missing or deactivated",
                request.script.run_as
            )));
            record_failure(ctx, &request, &report, started).await?;
            return Ok(report);
        }
    };
    let ast = match scripts.ast(&request.script) {
        Ok(ast) => ast,
        Err(error) => {
            report.error = Some(error);
            record_failure(ctx, &request, &report, started).await?;
            return Ok(report);
        }
    };
    let settings = Settings::load(&mut &ctx.db).await?;
    let vars = shown_vars(ctx, &access, &request).await;
    let (calls, mut incoming) = mpsc::channel::<HostCall>(1);
    let mut ended = scripts.engine.start(
        ast,
        RunSetup {
            vars,
            now: request.now,
            settings: settings.clone(),
            calls,
        },
    );
    let mut host = Host {
        ctx,
        access,
        settings,
        now: request.now,
        run_id: run_id.clone(),
        mode: request.mode,
        max_found: scripts.engine.limits.max_found,
        touched: Vec::new(),
        mails: Vec::new(),
    };
    let mut tx: Option<Tx> = None;
    let mut broken: Option<Error> = None;
    let end: ScriptEnd = loop {
        tokio::select! {
            call = incoming.recv() => match call {
                Some(HostCall { call, reply }) => {
                    let answer = if call.writes() && request.mode == Mode::BeforeSave {
                        Err("a before-save script may read records but not change them; \
                             use an after-save trigger".to_owned())
                    } else if call.writes() || tx.is_some() {
                        if tx.is_none() {
                            match ctx.db.begin().await {
                                Ok(t) => tx = Some(t),
                                Err(e) => broken = Some(e),
                            }
                        }
                        match tx.as_mut() {
                            Some(t) => host.write(t, call).await.map_err(said),
                            None => Err("the database is unavailable".to_owned()),
                        }
                    } else {
                        host.read(&mut &ctx.db, call).await.map_err(said)
                    };
                    let _ = reply.send(answer);
                }
                None => {
                    break (&mut ended).await.unwrap_or_else(|_| ScriptEnd {
                        outcome: Err(script_error("the script thread stopped")),
                        log: Vec::new(),
                    });
                }
            },
            end = &mut ended => {
                break end.unwrap_or_else(|_| ScriptEnd {
                    outcome: Err(script_error("the script thread stopped")),
                    log: Vec::new(),
                });
            }
        }
    };
    report.log = end.log;
    report.touched = std::mem::take(&mut host.touched);
    report.mails = host.mails.len();
    match end.outcome {
        Ok((result, record)) => {
            report.result = result;
            report.record = record;
            report.status = "succeeded";
        }
        Err(error) => {
            report.status = if error.rejected { "rejected" } else { "failed" };
            report.error = Some(error);
        }
    }
    if let Some(error) = broken {
        report.status = "failed";
        report.retry = true;
        report.error = Some(script_error(format!("the database failed: {error}")));
    }
    let commit = report.status == "succeeded" && request.mode == Mode::Commit;
    if !commit {
        // Nothing the script did stays.
        drop(tx);
        report.touched.clear();
        if request.mode != Mode::BeforeSave || report.status != "succeeded" {
            record_failure(ctx, &request, &report, started).await?;
        }
        return Ok(report);
    }
    let mut tx = match tx {
        Some(tx) => tx,
        None => ctx.db.begin().await?,
    };
    let finished = finish(&mut tx, &request, &report, &host.mails, started).await;
    let committed = match finished {
        Ok(()) => tx.commit().await,
        Err(e) => Err(e),
    };
    if let Err(error) = committed {
        report.status = "failed";
        report.retry = true;
        report.error = Some(script_error(format!(
            "the run's changes could not be saved: {}",
            said(error)
        )));
        report.touched.clear();
        record_failure(ctx, &request, &report, started).await?;
    }
    Ok(report)
}

fn run_row(request: &RunRequest, report: &RunReport, started: DateTime<Utc>) -> RunRow {
    let mut trigger = request.trigger.clone();
    if request.mode == Mode::DryRun {
        trigger["test"] = Value::Bool(true);
    }
    RunRow {
        id: report.id.clone(),
        automation_id: request.script.automation_id.clone(),
        trigger,
        slot: request.slot,
        status: report.status.to_owned(),
        started_at: started,
        finished_at: Utc::now(),
        log: json!(report.log),
        error: report.error.as_ref().map(|e| e.message.clone()),
        error_line: report
            .error
            .as_ref()
            .and_then(|e| e.line)
            .and_then(|l| i64::try_from(l).ok()),
        touched: json!(report.touched),
        result: Some(report.result.clone()).filter(|r| !r.is_null()),
    }
}

/// The end of a run that commits: its mails, its log row, its job.
async fn finish(
    tx: &mut Tx,
    request: &RunRequest,
    report: &RunReport,
    mails: &[OutboxRow],
    started: DateTime<Utc>,
) -> Result<()> {
    let now = Utc::now();
    mail::queue(tx, mails, now).await?;
    store::insert_run(tx, &run_row(request, report, started)).await?;
    if let Some(job) = &request.job_id {
        queue::complete(tx, job, now).await?;
    }
    Ok(())
}

/// Logs a run that did not commit (failed, rejected, or a test run).
async fn record_failure(
    ctx: &Context,
    request: &RunRequest,
    report: &RunReport,
    started: DateTime<Utc>,
) -> Result<()> {
    let row = run_row(request, report, started);
    ctx.db
        .write(move |tx| Box::pin(async move { store::insert_run(tx, &row).await }))
        .await
}
