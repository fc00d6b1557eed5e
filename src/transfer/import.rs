//! Imports: a CSV or XLSX file into an entity's records, through the one write path.
//!
//! The header row is mapped to fields (by name or label in either language, or as the caller
//! says); each cell is read by its field kind's text parser; rows are written in batches, each
//! batch in one transaction together with the import's progress and the outcome of each row,
//! so a job that stops resumes after the last committed row and never writes a row twice. A
//! dry run writes each batch and rolls it back: every check of a real write applies. The rows
//! an import created or updated (with the values before) make it undoable.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::Poll;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::Utc;
use serde_json::{Map, Value, json};

use super::cells::restore;
use super::shapes::{ImportError, ImportReport, UndoReport, UndoSkipped};
use super::sheet::{FileKind, Sheet};
use super::{Locale, field_label};
use crate::auth::{Access, Action, FieldAccess, Special};
use crate::context::Context;
use crate::error::{Error, Result};
use crate::events::Origin;
use crate::fields::text_form::fold_width;
use crate::fields::{CellProblem, Kind, TextInput};
use crate::records::list::ReadQuery;
use crate::records::service::{Target, target};
use crate::records::write::{self, Writer};
use crate::schema::compiled::CompiledEntity;
use crate::schema::definition::FieldDef;
use crate::settings::Settings;
use crate::store::imports::{self as store, ImportRow, RowOutcome};
use crate::store::jobs::NewJob;
use crate::store::query::{Alias, Cmp, Column, Condition};
use crate::store::writer::WriteFuture;
use crate::store::{Dialect, Ident, Sql, Tx, history};

/// Rows written per transaction. FTS5 writes out a segment of the search index at every
/// savepoint, so larger batches leave fewer segments to merge (a million rows: 42 s against
/// 49 s with 500); each batch holds the write lock for under a tenth of a second.
const BATCH: usize = 2000;
/// The job kind of an import run in the background.
pub const JOB: &str = crate::jobs::IMPORT;

/// What an import does with each row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportMode {
    Create,
    Update,
    Upsert,
}

/// The parameters of `POST /api/records/{entity}/import`.
#[derive(Debug, Clone)]
pub struct ImportParams {
    pub dry_run: bool,
    pub mode: ImportMode,
    pub key: Option<String>,
    /// Stop at the first bad row (`true`) or skip bad rows.
    pub stop: bool,
    /// Column header → field name (`null` or `""`: leave the column out).
    pub mapping: Option<Map<String, Value>>,
    pub triggers: bool,
    pub sheet: Option<String>,
}

impl Default for ImportParams {
    fn default() -> Self {
        ImportParams {
            dry_run: false,
            mode: ImportMode::Create,
            key: None,
            stop: false,
            mapping: None,
            triggers: false,
            sheet: None,
        }
    }
}

impl ImportParams {
    pub const NAMES: &'static [&'static str] = &[
        "dry_run", "mode", "key", "on_error", "mapping", "triggers", "sheet",
    ];

    pub fn from_pairs(pairs: &[(String, String)]) -> Result<ImportParams> {
        let mut p = ImportParams::default();
        for (name, value) in pairs {
            let flag = || match value.as_str() {
                "true" | "1" | "" => Ok(true),
                "false" | "0" => Ok(false),
                _ => Err(Error::bad_parameter(name, "must be true or false")),
            };
            match name.as_str() {
                "dry_run" => p.dry_run = flag()?,
                "triggers" => p.triggers = flag()?,
                "mode" => {
                    p.mode = match value.as_str() {
                        "create" => ImportMode::Create,
                        "update" => ImportMode::Update,
                        "upsert" => ImportMode::Upsert,
                        other => {
                            return Err(Error::bad_parameter(
                                "mode",
                                format!("must be create, update or upsert, not '{other}'"),
                            ));
                        }
                    }
                }
                "key" => p.key = Some(value.clone()).filter(|k| !k.is_empty()),
                "on_error" => {
                    p.stop = match value.as_str() {
                        "stop" => true,
                        "skip" => false,
                        other => {
                            return Err(Error::bad_parameter(
                                "on_error",
                                format!("must be stop or skip, not '{other}'"),
                            ));
                        }
                    }
                }
                "mapping" => {
                    p.mapping = Some(match serde_json::from_str(value) {
                        Ok(Value::Object(map)) => map,
                        _ => {
                            return Err(Error::bad_parameter(
                                "mapping",
                                "must be a JSON object from column header to field name",
                            ));
                        }
                    })
                }
                "sheet" => p.sheet = Some(value.clone()),
                other => {
                    return Err(Error::bad_parameter(
                        other,
                        format!("is not a parameter here (use {})", Self::NAMES.join(", ")),
                    ));
                }
            }
        }
        if p.mode != ImportMode::Create && p.key.is_none() {
            return Err(Error::bad_parameter(
                "key",
                "names the unique field that finds the record to update",
            ));
        }
        Ok(p)
    }

    fn to_json(&self, kind: FileKind) -> Value {
        json!({
            "dry_run": self.dry_run,
            "mode": match self.mode {
                ImportMode::Create => "create",
                ImportMode::Update => "update",
                ImportMode::Upsert => "upsert",
            },
            "key": self.key,
            "on_error": if self.stop { "stop" } else { "skip" },
            "mapping": self.mapping,
            "triggers": self.triggers,
            "sheet": self.sheet,
            "format": kind.as_str(),
        })
    }

    fn from_json(v: &Value) -> (ImportParams, FileKind) {
        let params = ImportParams {
            dry_run: v["dry_run"].as_bool().unwrap_or(false),
            mode: match v["mode"].as_str() {
                Some("update") => ImportMode::Update,
                Some("upsert") => ImportMode::Upsert,
                _ => ImportMode::Create,
            },
            key: v["key"].as_str().map(str::to_owned),
            stop: v["on_error"].as_str() == Some("stop"),
            mapping: v["mapping"].as_object().cloned(),
            triggers: v["triggers"].as_bool().unwrap_or(false),
            sheet: v["sheet"].as_str().map(str::to_owned),
        };
        (
            params,
            FileKind::parse(v["format"].as_str().unwrap_or("csv")),
        )
    }
}

/// Where a column goes.
#[derive(Debug, Clone)]
enum Dest {
    Field(String),
    /// The record's id (a key for updates).
    Id,
    /// The owner, by email or name.
    Owner,
}

impl Dest {
    fn name(&self) -> &str {
        match self {
            Dest::Field(f) => f,
            Dest::Id => "id",
            Dest::Owner => "owner",
        }
    }
}

/// How headers compare: width-folded, trimmed, lowercase, without a trailing `*` or `(必填)`.
fn header_key(s: &str) -> String {
    let folded = fold_width(s).trim().to_lowercase();
    let trimmed = folded
        .trim_end_matches('*')
        .trim_end_matches("(必填)")
        .trim_end_matches("(required)")
        .trim();
    trimmed.to_owned()
}

/// The mapping of the header row: as the caller says, else guessed by field name or by label
/// in English or Chinese. Returns each column's destination and the unmapped headers.
fn map_columns(
    headers: &[String],
    entity: &CompiledEntity,
    access: &Access,
    explicit: Option<&Map<String, Value>>,
) -> Result<(Vec<Option<Dest>>, Vec<String>)> {
    let name = entity.def.name.as_str();
    let writable = |f: &FieldDef| !f.is_computed() && access.can_read_field(name, f.name.as_str());
    let dest_of = |field: &str| -> Option<Dest> {
        match field {
            "id" => Some(Dest::Id),
            "owner" => Some(Dest::Owner),
            f => entity
                .def
                .field(f)
                .filter(|f| writable(f))
                .map(|f| Dest::Field(f.name.to_string())),
        }
    };
    let mut out = Vec::with_capacity(headers.len());
    let mut unmapped = Vec::new();
    for header in headers {
        let dest = match explicit.and_then(|m| m.get(header)) {
            Some(Value::Null) => None,
            Some(Value::String(f)) if f.is_empty() => None,
            Some(Value::String(f)) => Some(dest_of(f).ok_or_else(|| {
                Error::bad_parameter(
                    "mapping",
                    format!(
                        "maps '{header}' to '{f}', which is not a field of {name} you may write"
                    ),
                )
            })?),
            Some(_) => {
                return Err(Error::bad_parameter(
                    "mapping",
                    format!("maps '{header}' to something other than a field name"),
                ));
            }
            None => {
                let key = header_key(header);
                let by_field = entity.def.fields.iter().filter(|f| writable(f)).find(|f| {
                    f.name.as_str() == key
                        || header_key(&field_label(f, crate::fields::Lang::En)) == key
                        || header_key(&field_label(f, crate::fields::Lang::ZhCn)) == key
                });
                match by_field {
                    Some(f) => Some(Dest::Field(f.name.to_string())),
                    None => match key.as_str() {
                        "id" => Some(Dest::Id),
                        "owner" | "负责人" => Some(Dest::Owner),
                        _ => None,
                    },
                }
            }
        };
        let taken = dest
            .as_ref()
            .is_some_and(|d| out.iter().flatten().any(|o: &Dest| o.name() == d.name()));
        if dest.is_none() || taken {
            unmapped.push(header.clone());
            out.push(None);
        } else {
            out.push(dest);
        }
    }
    Ok((out, unmapped))
}

/// A row's payload and key value, or every problem in it.
type Parsed = std::result::Result<(Value, Option<Value>), Vec<CellError>>;

/// One problem with a row: where it is, a stable code with the parameters of its message (so
/// a page can say it in the reader's language), and the message in English.
#[derive(Debug, Clone)]
struct CellError {
    column: Option<String>,
    field: Option<String>,
    code: &'static str,
    params: Map<String, Value>,
    message: String,
}

impl CellError {
    fn new(column: Option<String>, field: Option<String>, problem: CellProblem) -> CellError {
        CellError {
            column,
            field,
            code: problem.code,
            params: problem.params,
            message: problem.message,
        }
    }

    /// As a row outcome keeps it.
    fn to_json(&self) -> Value {
        json!({"column": self.column, "field": self.field, "code": self.code,
               "params": self.params, "message": self.message})
    }
}

/// Everything the rows are checked against: the entity, the caller, the mapping, and the
/// names references are found by.
struct Plan {
    target: Target,
    access: Access,
    params: ImportParams,
    headers: Vec<String>,
    columns: Vec<Option<Dest>>,
    unmapped: Vec<String>,
    locale: Locale,
    /// For reference fields: target (entity name, `user`, `department`) → lowercase text → id.
    names: Arc<HashMap<String, HashMap<String, String>>>,
}

impl Plan {
    fn entity(&self) -> &CompiledEntity {
        &self.target.entity
    }

    fn mapping_json(&self) -> Value {
        let mut map = Map::new();
        for (header, dest) in self.headers.iter().zip(&self.columns) {
            if let Some(dest) = dest {
                map.insert(header.clone(), json!(dest.name()));
            }
        }
        Value::Object(map)
    }

    /// A row's payload, its key value (for update and upsert), or every problem in it.
    fn parse_row(&self, cells: &[String]) -> Parsed {
        let entity = self.entity();
        let names = self.names.clone();
        let resolve = move |field: &FieldDef, text: &str| -> Option<String> {
            let bucket = match field.kind {
                Kind::User => "user".to_owned(),
                Kind::Department => "department".to_owned(),
                _ => field.target.as_ref()?.to_string(),
            };
            names
                .get(&bucket)?
                .get(&text.trim().to_lowercase())
                .cloned()
        };
        let input = TextInput {
            offset_minutes: self.locale.offset_minutes,
            resolve: Some(&resolve),
        };
        let mut payload = Map::new();
        let mut errors = Vec::new();
        let mut id = None;
        for (i, dest) in self.columns.iter().enumerate() {
            let Some(dest) = dest else { continue };
            let raw = cells.get(i).map(String::as_str).unwrap_or("");
            let text = restore(raw.trim());
            if text.is_empty() {
                continue;
            }
            let header = self.headers.get(i).cloned();
            match dest {
                Dest::Id => match uuid::Uuid::parse_str(text) {
                    Ok(u) => id = Some(u.hyphenated().to_string()),
                    Err(_) => errors.push(CellError::new(
                        header,
                        Some("id".into()),
                        CellProblem::new("not_id", format!("'{text}' is not a record id"))
                            .with("value", text),
                    )),
                },
                Dest::Owner => match self
                    .names
                    .get("user")
                    .and_then(|u| u.get(&text.to_lowercase()))
                {
                    Some(user) => {
                        payload.insert("owner".into(), json!(user));
                    }
                    None => errors.push(CellError::new(
                        header,
                        Some("owner".into()),
                        CellProblem::new(
                            "no_user",
                            format!("'{text}' names no user (by email or name)"),
                        )
                        .with("value", text),
                    )),
                },
                Dest::Field(name) => {
                    let Some(field) = entity.def.field(name) else {
                        continue;
                    };
                    match field.kind.field_type().parse_text(field, text, &input) {
                        Ok(value) => {
                            payload.insert(name.clone(), value);
                        }
                        Err(problem) => {
                            errors.push(CellError::new(header, Some(name.clone()), problem))
                        }
                    }
                }
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let key = match self.params.key.as_deref() {
            Some("id") => id.map(Value::String),
            Some(key) => payload.get(key).cloned(),
            None => None,
        };
        if self.params.mode != ImportMode::Create && key.is_none() {
            let key = self.params.key.clone().unwrap_or_default();
            return Err(vec![CellError::new(
                self.column_of(&key),
                Some(key.clone()),
                CellProblem::new(
                    "key_empty",
                    format!("the key field '{key}' is empty, so no record can be found"),
                ),
            )]);
        }
        Ok((Value::Object(payload), key))
    }

    fn column_of(&self, field: &str) -> Option<String> {
        self.columns
            .iter()
            .position(|d| d.as_ref().is_some_and(|d| d.name() == field))
            .and_then(|i| self.headers.get(i).cloned())
    }
}

/// Turns a write's refusal into row errors (with the column each field came from). Refusals
/// an import commonly meets get their own code; the rest keep the write path's message under
/// `other`.
fn write_errors(plan: &Plan, error: &Error) -> Vec<CellError> {
    let field_errors = match error {
        Error::Invalid { errors, .. }
        | Error::Conflict { errors, .. }
        | Error::BadRequest { errors, .. } => errors.clone(),
        _ => Vec::new(),
    };
    if field_errors.is_empty() {
        let message = error.public_message();
        let problem = match (error, plan.params.key.as_deref()) {
            // Only an update that finds no record by its key is refused as not found here.
            (Error::NotFound(_), Some(key)) if plan.params.mode == ImportMode::Update => {
                CellProblem::new("no_match", message).with("field", key)
            }
            _ => CellProblem::new("other", message),
        };
        return vec![CellError::new(None, None, problem)];
    }
    let unique = matches!(error, Error::Conflict { .. });
    field_errors
        .into_iter()
        .map(|e| {
            let field = e.field.split('.').next().unwrap_or_default().to_owned();
            let code = match e.message.as_str() {
                _ if unique => "unique",
                m if m == crate::records::input::REQUIRED => "required",
                m if m == crate::records::input::NOT_WRITABLE => "not_writable",
                _ => "other",
            };
            CellError::new(
                plan.column_of(&field),
                Some(field).filter(|f| !f.is_empty()),
                CellProblem::new(code, e.message),
            )
        })
        .collect()
}

/// Loads the names reference columns are written with: titles and unique values of looked-up
/// records (those the caller may read), users by email and name, departments by name.
async fn load_names(
    ctx: &Context,
    target: &Target,
    access: &Access,
    columns: &[Option<Dest>],
) -> Result<HashMap<String, HashMap<String, String>>> {
    let mut names: HashMap<String, HashMap<String, String>> = HashMap::new();
    let entity = &target.entity;
    let mut users = columns.iter().flatten().any(|d| matches!(d, Dest::Owner));
    let mut departments = false;
    for dest in columns.iter().flatten() {
        let Dest::Field(name) = dest else { continue };
        let Some(field) = entity.def.field(name) else {
            continue;
        };
        match field.kind {
            Kind::User => users = true,
            Kind::Department => departments = true,
            Kind::Lookup | Kind::MultiLookup => {
                let Some(target_name) = &field.target else {
                    continue;
                };
                if names.contains_key(target_name.as_str()) {
                    continue;
                }
                let Ok(related) = target.catalog.entity(target_name.as_str()) else {
                    continue;
                };
                let mut map = HashMap::new();
                if access
                    .require_action(related.def.name.as_str(), Action::Read)
                    .is_ok()
                {
                    let related_target = Target {
                        catalog: target.catalog.clone(),
                        entity: related.clone(),
                    };
                    let keys: Vec<String> = related
                        .def
                        .fields
                        .iter()
                        .filter(|f| {
                            f.unique
                                || Some(f.name.as_str())
                                    == related.def.title_field().map(|t| t.name.as_str())
                        })
                        .map(|f| f.name.to_string())
                        .collect();
                    let mut cursor: Option<String> = None;
                    loop {
                        let query = ReadQuery {
                            cursor: cursor.as_deref(),
                            limit: 1000,
                            ..ReadQuery::new(&related_target, access)
                        };
                        let page = query.page(&mut &ctx.db).await?;
                        for record in &page.items {
                            let Some(id) = record["id"].as_str() else {
                                continue;
                            };
                            for key in &keys {
                                if let Some(text) = record[key.as_str()].as_str() {
                                    map.entry(text.trim().to_lowercase())
                                        .or_insert_with(|| id.to_owned());
                                }
                            }
                        }
                        match page.next_cursor {
                            Some(next) => cursor = Some(next),
                            None => break,
                        }
                    }
                }
                names.insert(target_name.to_string(), map);
            }
            _ => {}
        }
    }
    if users {
        let mut map = HashMap::new();
        for user in crate::store::auth::users(&mut &ctx.db).await? {
            map.insert(user.email.to_lowercase(), user.id.clone());
            map.entry(user.display_name.trim().to_lowercase())
                .or_insert(user.id);
        }
        names.insert("user".into(), map);
    }
    if departments {
        let mut map = HashMap::new();
        for d in crate::store::auth::departments(&mut &ctx.db).await? {
            map.insert(d.name.trim().to_lowercase(), d.id);
        }
        names.insert("department".into(), map);
    }
    Ok(names)
}

/// Checks the caller, reads the header row and maps it.
async fn plan(
    ctx: &Context,
    access: &Access,
    entity: &str,
    params: ImportParams,
    sheet: &Sheet,
) -> Result<Plan> {
    let target = target(ctx, access, entity).await?;
    let name = target.entity.def.name.to_string();
    access.require(Special::Import)?;
    match params.mode {
        ImportMode::Create => access.require_action(&name, Action::Create)?,
        ImportMode::Update => access.require_action(&name, Action::Update)?,
        ImportMode::Upsert => {
            access.require_action(&name, Action::Create)?;
            access.require_action(&name, Action::Update)?;
        }
    }
    if let Some(key) = params.key.as_deref() {
        let unique = key == "id"
            || target
                .entity
                .def
                .field(key)
                .is_some_and(|f| f.has_unique_index() && access.can_read_field(&name, key));
        if !unique {
            return Err(Error::bad_parameter(
                "key",
                format!("'{key}' is not a unique field of {name}"),
            ));
        }
    }
    let headers = match sheet.rows().next() {
        Some(row) => row?,
        None => {
            return Err(Error::bad_request(
                "the file is empty: it has no header row",
            ));
        }
    };
    let headers: Vec<String> = headers.iter().map(|h| h.trim().to_owned()).collect();
    let (columns, unmapped) =
        map_columns(&headers, &target.entity, access, params.mapping.as_ref())?;
    if columns.iter().all(Option::is_none) {
        return Err(Error::bad_request(format!(
            "no column of the file matches a field of {name}; say which goes where with `mapping`"
        )));
    }
    if let Some(key) = params.key.as_deref()
        && !columns.iter().flatten().any(|d| d.name() == key)
    {
        return Err(Error::bad_parameter(
            "key",
            format!("no column of the file maps to '{key}'"),
        ));
    }
    let settings = Settings::load(&mut &ctx.db).await?;
    let locale = Locale::of(access, settings.time_zone());
    let names = load_names(ctx, &target, access, &columns).await?;
    Ok(Plan {
        target,
        access: access.clone(),
        params,
        headers,
        columns,
        unmapped,
        locale,
        names: Arc::new(names),
    })
}

/// A row on its way to the database.
struct Prepared {
    row: i64,
    cells: Vec<String>,
    parsed: Parsed,
    /// A create-only import's payload, parsed for the writer on the reading thread.
    ahead: Option<write::Preparsed>,
}

/// What a batch did.
struct BatchResult {
    outcomes: Vec<RowOutcome>,
    stopped: bool,
    /// The batch's rows, given back to be dropped on the thread that read them: their memory
    /// was allocated there, where freeing it costs least, and the writer moves on meanwhile.
    spent: Vec<Prepared>,
}

/// Finds the record a key names, inside the transaction (read scope applies).
async fn find_by_key(
    tx: &mut crate::store::Tx,
    plan: &Plan,
    key: &Value,
) -> Result<Option<(String, i64)>> {
    let entity = plan.entity();
    let key_name = plan.params.key.as_deref().unwrap_or("id");
    let (column, value) = if key_name == "id" {
        (
            Ident::fixed("id"),
            crate::store::SqlValue::Text(key.as_str().unwrap_or_default().to_owned()),
        )
    } else {
        let Some(field) = entity.def.field(key_name) else {
            return Ok(None);
        };
        let value = field
            .kind
            .field_type()
            .to_sql(field, key)
            .map_err(|m| Error::invalid_field(key_name, m))?;
        (Ident::column(&field.name), value)
    };
    let query = ReadQuery {
        limit: 1,
        also: Some(Condition::Compare {
            column: Column {
                alias: Alias::T,
                name: column,
            },
            op: Cmp::Eq,
            value,
            or_null: false,
        }),
        fields: Some("version"),
        ..ReadQuery::new(&plan.target, &plan.access)
    };
    let page = query.page(tx).await?;
    Ok(page.items.first().and_then(|r| {
        Some((
            r["id"].as_str()?.to_owned(),
            r["version"].as_i64().unwrap_or(1),
        ))
    }))
}

/// Writes one row under a savepoint, so a refused row leaves nothing behind.
async fn write_row(
    tx: &mut crate::store::Tx,
    w: &Writer,
    plan: &Plan,
    payload: &Value,
    key: Option<&Value>,
) -> Result<RowOutcome> {
    let entity = plan.entity().def.name.to_string();
    let existing = match (plan.params.mode, key) {
        (ImportMode::Create, _) | (_, None) => None,
        (_, Some(key)) => find_by_key(tx, plan, key).await?,
    };
    match (plan.params.mode, existing) {
        (ImportMode::Update, None) => Err(Error::not_found(format!(
            "no {entity} record has this {}",
            plan.params.key.as_deref().unwrap_or("key")
        ))),
        (ImportMode::Create, _) | (ImportMode::Upsert, None) => {
            let written = write::create(tx, w, &entity, payload, Vec::new()).await?;
            Ok(created_row(0, &written))
        }
        (_, Some((id, version))) => {
            let written =
                write::update(tx, w, &entity, &id, payload, Some(version), Vec::new()).await?;
            let new_version = written.record["version"].as_i64();
            // The values before, from the history entry this update wrote (if it changed
            // anything).
            let before = if new_version != Some(version) {
                let last = history::of(tx, &entity, &id, 1).await?;
                last.first().map(|entry| {
                    let mut before = Map::new();
                    if let Some(changes) = entry.changes.as_object() {
                        for (field, change) in changes {
                            before.insert(field.clone(), change["old"].clone());
                        }
                    }
                    Value::Object(before)
                })
            } else {
                Some(json!({}))
            };
            Ok(RowOutcome {
                row: 0,
                outcome: "updated".into(),
                record_id: Some(id),
                version: new_version,
                before,
                errors: None,
                cells: None,
            })
        }
    }
}

/// Undoes what was written since a savepoint, and the after-commit work registered since
/// `mark`, and ends the savepoint.
async fn roll_back_to(tx: &mut crate::store::Tx, savepoint: &str, mark: usize) -> Result<()> {
    tx.discard_ahead().await;
    tx.execute(&Sql::new(format!("ROLLBACK TO {savepoint}")))
        .await?;
    tx.execute(&Sql::new(format!("RELEASE {savepoint}")))
        .await?;
    tx.forget_after_commit(mark);
    Ok(())
}

/// A row that created a record.
fn created_row(row: i64, written: &write::Written) -> RowOutcome {
    RowOutcome {
        row,
        outcome: "created".into(),
        record_id: written.record["id"].as_str().map(str::to_owned),
        version: written.record["version"].as_i64(),
        before: None,
        errors: None,
        cells: None,
    }
}

/// A row refused, with its cells (for the error file) and what was wrong.
fn failed_row(prepared: &Prepared, refused: &[CellError]) -> RowOutcome {
    RowOutcome {
        row: prepared.row,
        outcome: "failed".into(),
        record_id: None,
        version: None,
        before: None,
        errors: Some(Value::Array(
            refused.iter().map(CellError::to_json).collect(),
        )),
        cells: Some(json!(prepared.cells)),
    }
}

/// Creates the good rows of a create-only batch together ([`write::create_many`]), under a
/// savepoint. False, with nothing kept, when the batch must go row by row instead: a row was
/// refused while the import stops at the first, or a statement of the batch failed (a
/// unique value taken meanwhile by another writer, say) — row by row, each row then answers
/// for itself.
async fn create_batch(
    tx: &mut crate::store::Tx,
    w: &Writer,
    plan: &Plan,
    rows: &mut [Prepared],
    outcomes: &mut Vec<RowOutcome>,
) -> Result<bool> {
    let stops = plan.params.stop && !plan.params.dry_run;
    if stops && rows.iter().any(|p| p.parsed.is_err()) {
        return Ok(false);
    }
    let payloads: Vec<write::Creation> = rows
        .iter_mut()
        .filter_map(|p| match &p.parsed {
            Ok((payload, _)) => Some(write::Creation {
                preparsed: p.ahead.take(),
                ..payload.into()
            }),
            Err(_) => None,
        })
        .collect();
    let entity = plan.entity().def.name.to_string();
    let mark = tx.after_commit_mark();
    // Sent, not waited for: on SQLite the transaction may begin behind the commit of the batch
    // before, still on its way (see `store::Db::write_ahead`).
    tx.send(Sql::new("SAVEPOINT tessera_import_batch")).await?;
    let mut written = write::create_many(tx, w, &entity, payloads).await;
    // On PostgreSQL another transaction may have taken a unique value meanwhile, and the
    // batch then goes row by row, so its statements are waited for here. On SQLite its unique
    // values were checked inside the one writer's transaction: a statement of it fails only as
    // the database does, and fails the batch, at its commit.
    if tx.dialect() == Dialect::Postgres
        && written.is_ok()
        && let Err(error) = tx.settle().await
    {
        written = Err(error);
    }
    let results = match written {
        Ok(results)
            if !results
                .iter()
                .any(|r| r.as_ref().is_err_and(|e| stops || e.is_server_error())) =>
        {
            results
        }
        Ok(results) => {
            if let Some(Err(error)) = results
                .into_iter()
                .find(|r| r.as_ref().is_err_and(Error::is_server_error))
            {
                return Err(error);
            }
            roll_back_to(tx, "tessera_import_batch", mark).await?;
            return Ok(false);
        }
        Err(error) => {
            tracing::debug!(%error, "an import batch goes row by row");
            roll_back_to(tx, "tessera_import_batch", mark).await?;
            return Ok(false);
        }
    };
    // The outcomes are made while SQLite releases the savepoint (FTS5 writes out its pending
    // rows then); the batch's next statements queue up behind it.
    tx.send(Sql::new("RELEASE tessera_import_batch")).await?;
    let mut results = results.into_iter();
    for prepared in rows.iter() {
        let written = match &prepared.parsed {
            Err(refused) => Err(refused.clone()),
            Ok(_) => match results.next() {
                Some(Ok(written)) => Ok(written),
                Some(Err(error)) => Err(write_errors(plan, &error)),
                None => return Err(Error::internal("an import batch lost a row")),
            },
        };
        outcomes.push(match written {
            Ok(written) => created_row(prepared.row, &written),
            Err(refused) => failed_row(prepared, &refused),
        });
    }
    Ok(true)
}

/// A batch's write job, as the writer takes it (named, so the closure's borrow is typed).
fn batch_job<F>(job: F) -> F
where
    F: for<'t> FnOnce(&'t mut Tx) -> WriteFuture<'t, BatchResult> + Send + 'static,
{
    job
}

/// Writes (or, in a dry run, tries) a batch in one transaction. In a real run the import's
/// progress and the rows' outcomes are written in the same transaction.
async fn run_batch(
    ctx: &Context,
    w: Writer,
    plan: Arc<Plan>,
    import_id: String,
    from_row: i64,
    mut rows: Vec<Prepared>,
) -> Result<BatchResult> {
    let dry_run = plan.params.dry_run;
    let kept: Arc<Mutex<Option<BatchResult>>> = Arc::new(Mutex::new(None));
    let out = kept.clone();
    let job = batch_job(move |tx| {
        Box::pin(async move {
            let mut outcomes = Vec::with_capacity(rows.len());
            let mut stopped = false;
            let last_row = rows.last().map_or(from_row, |r| r.row);
            let batched = plan.params.mode == ImportMode::Create
                && create_batch(tx, &w, &plan, &mut rows, &mut outcomes).await?;
            let mut spent = Vec::new();
            if batched {
                spent = rows;
            } else {
                for prepared in rows {
                    let refused = match &prepared.parsed {
                        Err(e) => Some(e.clone()),
                        Ok((payload, key)) => {
                            let mark = tx.after_commit_mark();
                            tx.execute(&Sql::new("SAVEPOINT tessera_import_row"))
                                .await?;
                            match write_row(tx, &w, &plan, payload, key.as_ref()).await {
                                Ok(mut outcome) => {
                                    tx.execute(&Sql::new("RELEASE tessera_import_row")).await?;
                                    outcome.row = prepared.row;
                                    outcomes.push(outcome);
                                    None
                                }
                                Err(error) if error.is_server_error() => return Err(error),
                                Err(error) => {
                                    roll_back_to(tx, "tessera_import_row", mark).await?;
                                    Some(write_errors(&plan, &error))
                                }
                            }
                        }
                    };
                    if let Some(refused) = refused {
                        outcomes.push(failed_row(&prepared, &refused));
                        if plan.params.stop && !dry_run {
                            stopped = true;
                            break;
                        }
                    }
                }
            }
            // A run stopped at a bad row has done the rows up to that one.
            let to_row = if stopped {
                outcomes.last().map_or(from_row, |o| o.row)
            } else {
                last_row
            };
            let count = |o: &str| outcomes.iter().filter(|r| r.outcome == o).count() as i64;
            let counts = (count("created"), count("updated"), count("failed"));
            let result = BatchResult {
                outcomes,
                stopped,
                spent,
            };
            if dry_run {
                // Everything was checked; nothing is kept.
                if let Ok(mut slot) = out.lock() {
                    *slot = Some(result);
                }
                return Err(Error::internal("a dry run rolls back"));
            }
            store::advance(tx, &import_id, from_row, to_row, counts, Utc::now()).await?;
            store::insert_rows(tx, &import_id, &result.outcomes).await?;
            Ok(result)
        })
    });
    // A real run's batch leaves its last statements to its commit: on SQLite the writer makes
    // the next batch meanwhile.
    let result = if dry_run {
        ctx.db.write(job).await
    } else {
        ctx.db.write_ahead(job).await
    };
    match result {
        Ok(result) => Ok(result),
        Err(error) if store::moved_on(&error) => Err(Error::conflict(
            "another worker has taken this import further",
            Vec::new(),
        )),
        Err(error) => match kept.lock().ok().and_then(|mut slot| slot.take()) {
            Some(result) if dry_run => Ok(result),
            _ => Err(error),
        },
    }
}

/// The rows an import refused, in row order, read a thousand at a time.
async fn refused_rows(ctx: &Context, import_id: &str) -> Result<Vec<RowOutcome>> {
    let mut refused = Vec::new();
    loop {
        let after = refused.last().map_or(0, |r: &RowOutcome| r.row);
        let page =
            store::rows(&mut &ctx.db, import_id, store::Outcome::Failed, after, 1000).await?;
        if page.is_empty() {
            return Ok(refused);
        }
        refused.extend(page);
    }
}

/// The report of an import, as `POST …/import` and `GET /api/imports/{id}` answer it.
async fn report(ctx: &Context, row: &ImportRow) -> Result<ImportReport> {
    let mut errors = Vec::new();
    for f in &refused_rows(ctx, &row.id).await? {
        for e in f
            .errors
            .as_ref()
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            // Rows kept before errors had codes have none.
            errors.push(ImportError {
                row: f.row,
                column: e["column"].clone(),
                field: e["field"].clone(),
                code: e.get("code").cloned().unwrap_or_else(|| json!("other")),
                params: e.get("params").cloned().unwrap_or_else(|| json!({})),
                message: e["message"].clone(),
            });
        }
    }
    let done_rows = (row.done_row - 1).max(0);
    let elapsed = (row.updated_at - row.created_at).num_milliseconds().max(1) as f64 / 1000.0;
    Ok(ImportReport {
        id: row.id.clone(),
        entity: row.entity.clone(),
        status: row.status.clone(),
        dry_run: row.params["dry_run"].as_bool().unwrap_or(false),
        rows: row.rows,
        done_rows,
        created: row.created,
        updated: row.updated,
        failed: row.failed,
        mapping: row.report["mapping"].clone(),
        unmapped: row.report["unmapped"].clone(),
        warnings: report_warnings(&row.report["warnings"]),
        errors,
        created_at: row.created_at,
        updated_at: row.updated_at,
        rows_per_second: (done_rows as f64 / elapsed).round(),
        undo: row.report.get("undo").cloned(),
    })
}

/// What the report warns of, each with a code as errors have.
fn warnings(params: &ImportParams) -> Vec<Value> {
    if params.triggers {
        Vec::new()
    } else {
        vec![json!({"code": "triggers_off", "params": {},
                    "message": "record automations did not run for imported rows (triggers=false)"})]
    }
}

/// The warnings of a report; those of imports kept before warnings had codes were plain text.
fn report_warnings(kept: &Value) -> Vec<Value> {
    let all = kept.as_array().into_iter().flatten().map(|w| match w {
        Value::String(message) => json!({"code": "other", "params": {}, "message": message}),
        other => other.clone(),
    });
    all.collect()
}

/// Reads a sheet's rows a batch at a time, parsed and checked against the rows before them.
struct BatchReader<'a, I> {
    rows: I,
    plan: &'a Plan,
    /// Unique fields the file maps, whose values must not repeat within the file.
    unique_fields: Vec<String>,
    /// Unique values seen in the file, per field, with the row that had them first.
    seen: HashMap<String, HashMap<String, i64>>,
    /// Rows committed before a restart: read (for the checks within the file), not written.
    resume_after: i64,
    /// Rows with something in them read so far, those committed before a restart included.
    read: i64,
    /// The file has no rows left.
    done: bool,
}

impl<I> BatchReader<'_, I>
where
    I: Iterator<Item = (usize, Result<Vec<String>>)>,
{
    /// The next batch of rows, or none at the end of the sheet.
    fn next_batch(&mut self) -> Result<Option<Vec<Prepared>>> {
        let mut batch: Vec<Prepared> = Vec::with_capacity(BATCH);
        while batch.len() < BATCH {
            let Some((index, cells)) = self.rows.next() else {
                break;
            };
            let cells = cells?;
            let number = index as i64 + 1;
            if cells.iter().all(|c| c.trim().is_empty()) {
                continue;
            }
            self.read += 1;
            let parsed = self.check_unique_in_file(number, self.plan.parse_row(&cells));
            if number <= self.resume_after {
                continue;
            }
            let ahead = match &parsed {
                Ok((payload, _)) if self.plan.params.mode == ImportMode::Create => Some(
                    write::Preparsed::new(&self.plan.target, payload, &self.plan.access),
                ),
                _ => None,
            };
            batch.push(Prepared {
                row: number,
                cells,
                parsed,
                ahead,
            });
        }
        self.done = batch.is_empty();
        Ok((!batch.is_empty()).then_some(batch))
    }

    fn check_unique_in_file(&mut self, number: i64, parsed: Parsed) -> Parsed {
        let Ok((payload, _)) = &parsed else {
            return parsed;
        };
        let mut dups = Vec::new();
        for field in &self.unique_fields {
            let Some(value) = payload.get(field) else {
                continue;
            };
            let text = value
                .as_str()
                .map_or_else(|| value.to_string(), |s| s.trim().to_lowercase());
            let first = self
                .seen
                .entry(field.clone())
                .or_default()
                .entry(text)
                .or_insert(number);
            if *first != number {
                dups.push(CellError::new(
                    self.plan.column_of(field),
                    Some(field.clone()),
                    CellProblem::new(
                        "duplicate_in_file",
                        format!("the same value is in row {first} of the file"),
                    )
                    .with("row", *first),
                ));
            }
        }
        if dups.is_empty() { parsed } else { Err(dups) }
    }
}

/// Runs an import from the row after `done_row` to the end, batch by batch.
async fn process(
    ctx: &Context,
    plan: Arc<Plan>,
    sheet: &Sheet,
    row: &ImportRow,
    progress: Option<&Progress>,
) -> Result<(i64, bool)> {
    // Many rows to few commits: SQLite's writer holds more of the indexes meanwhile.
    let bulk = ctx.db.bulk_load().await?;
    // Only a create-only run: an update replaces index rows, and FTS5 clears the deleted ones
    // only as it merges (held back, a rebuild that deletes and adds every row ran 3 times
    // slower; decision 029).
    let merges_held_back = !plan.params.dry_run && plan.params.mode == ImportMode::Create;
    if merges_held_back {
        crate::store::search::defer_merges(&ctx.db).await?;
    }
    let outcome = process_batches(ctx, plan.clone(), sheet, row, progress).await;
    // However the run ended, the rows it wrote count in the planner's statistics, and the
    // search index merges what waited (at the next start, if this process stops first).
    refresh_statistics(ctx, &plan).await;
    if merges_held_back && let Err(error) = crate::store::search::resume_merges(&ctx.db).await {
        tracing::warn!(%error, "cannot merge the search index after an import");
    }
    drop(bulk);
    outcome
}

/// The batches of [`process`], read and written in turn.
async fn process_batches(
    ctx: &Context,
    plan: Arc<Plan>,
    sheet: &Sheet,
    row: &ImportRow,
    progress: Option<&Progress>,
) -> Result<(i64, bool)> {
    let mut failed_so_far = 0i64;
    let mut done_row = row.done_row;
    let unique_fields: Vec<String> = plan
        .entity()
        .def
        .fields
        .iter()
        .filter(|f| {
            f.unique
                && plan
                    .columns
                    .iter()
                    .flatten()
                    .any(|d| d.name() == f.name.as_str())
        })
        .map(|f| f.name.to_string())
        .collect();
    let mut reader = BatchReader {
        rows: sheet.rows().enumerate().skip(1),
        plan: &plan,
        unique_fields,
        seen: HashMap::new(),
        resume_after: row.done_row,
        read: 0,
        done: false,
    };
    // A real run on SQLite that skips bad rows keeps batches queued at the writer, so that it
    // makes the next while SQLite commits the one before (see `store::Db::write_ahead`). A
    // batch's progress is kept only if it moves the import on from where the one before left
    // it, so batches commit in order. A dry run and a run that may stop take one batch at a
    // time, and so does PostgreSQL: there each batch is a transaction of its own, and two
    // would run side by side, the second perhaps reaching its progress first.
    let depth = if plan.params.dry_run || plan.params.stop || ctx.db.dialect() != Dialect::Sqlite {
        1
    } else {
        BATCHES_QUEUED
    };
    let mut queued: VecDeque<Queued<'_>> = VecDeque::with_capacity(depth);
    let mut batch = reader.next_batch()?;
    let mut spent: Vec<Prepared> = Vec::new();
    // Where the next batch sent begins.
    let mut from_row = done_row;
    loop {
        if let Some(rows_now) = batch.take() {
            let last = rows_now.last().map_or(from_row, |r| r.row);
            let w = Writer::new(
                ctx,
                &plan.access,
                Origin::Import {
                    triggers: plan.params.triggers,
                },
            )
            .await?;
            let mut written: BatchFuture<'_> = Box::pin(run_batch(
                ctx,
                w,
                plan.clone(),
                row.id.clone(),
                from_row,
                rows_now,
            ));
            // The first poll hands the batch to the writer; it answers once committed.
            let answered = match futures_util::poll!(written.as_mut()) {
                Poll::Ready(result) => Some(result),
                Poll::Pending => None,
            };
            queued.push_back(Queued {
                written,
                answered,
                last,
                // Rows read ahead are not counted when the run stops at a bad row in it.
                read_so_far: reader.read,
            });
            from_row = last;
        }
        let more = !reader.done;
        if more && queued.len() < depth {
            // Read while the writer writes what is queued.
            drop(std::mem::take(&mut spent));
            batch = reader.next_batch()?;
            continue;
        }
        let Some(Queued {
            written,
            answered,
            last,
            read_so_far,
        }) = queued.pop_front()
        else {
            break;
        };
        // The next batch is read and parsed while the oldest is written.
        let (result, next) = futures_util::future::join(
            async {
                match answered {
                    Some(result) => result,
                    None => written.await,
                }
            },
            async {
                if more {
                    drop(std::mem::take(&mut spent));
                    Some(reader.next_batch())
                } else {
                    None
                }
            },
        )
        .await;
        let mut result = result?;
        spent = std::mem::take(&mut result.spent);
        failed_so_far += result
            .outcomes
            .iter()
            .filter(|o| o.outcome == "failed")
            .count() as i64;
        if let Some(progress) = progress {
            progress(last - 1, failed_so_far);
        }
        if plan.params.dry_run {
            // Nothing kept but the refused rows and the progress, for the report; the
            // counts say what the run would create and update.
            let would =
                |what: &str| result.outcomes.iter().filter(|o| o.outcome == what).count() as i64;
            let (created, updated) = (would("created"), would("updated"));
            let failed: Vec<RowOutcome> = result
                .outcomes
                .into_iter()
                .filter(|o| o.outcome == "failed")
                .collect();
            let counts = (created, updated, failed.len() as i64);
            let id = row.id.clone();
            let from = done_row;
            ctx.db
                .write(move |tx| {
                    Box::pin(async move {
                        store::advance(tx, &id, from, last, counts, Utc::now()).await?;
                        store::insert_rows(tx, &id, &failed).await?;
                        Ok(())
                    })
                })
                .await?;
        }
        done_row = last;
        if result.stopped {
            return Ok((read_so_far, true));
        }
        if let Some(next) = next {
            batch = next?;
        }
    }
    Ok((reader.read, false))
}

/// Batches queued at the writer at most in a real run that skips bad rows: the writer has the
/// next one when it sends a commit, and answers the one before as it goes on (three were no
/// faster).
const BATCHES_QUEUED: usize = 2;

/// A batch handed to the writer, as its future borrows the import.
type BatchFuture<'a> = Pin<Box<dyn Future<Output = Result<BatchResult>> + Send + 'a>>;

/// A batch at the writer, with where it ends.
struct Queued<'a> {
    written: BatchFuture<'a>,
    /// Its answer, when the writer gave it at once (a batch that could not be sent).
    answered: Option<Result<BatchResult>>,
    last: i64,
    read_so_far: i64,
}

/// After a run, the planner statistics of the entity's table: a bulk load refreshes them once,
/// at its end (see `crate::statistics`). A failure leaves the import as it is: the statistics
/// only guide the planner.
async fn refresh_statistics(ctx: &Context, plan: &Plan) {
    if plan.params.dry_run {
        return;
    }
    let entity = plan.entity().def.name.as_str();
    if let Err(error) = crate::statistics::analyze_entity(&ctx.db, entity).await {
        tracing::warn!(%error, entity, "cannot refresh planner statistics after an import");
    }
}

/// The file an import reads: sent to the server, or named on the command line.
pub enum Upload {
    Bytes(Vec<u8>),
    /// Read a row at a time as the import goes, when it is a CSV file run in the foreground.
    File(PathBuf),
}

impl Upload {
    /// The sheet read straight from disk, or the file's bytes when it must be held (a
    /// workbook, an upload, or a background run that keeps its file to resume).
    fn streamed(
        self,
        content_type: Option<&str>,
        background: bool,
    ) -> Result<Result<Sheet, Vec<u8>>> {
        match self {
            Upload::Bytes(bytes) => Ok(Err(bytes)),
            Upload::File(path) => {
                let unreadable = |e| super::sheet::unreadable(&path, e);
                let mut head = Vec::with_capacity(4);
                std::io::Read::read_to_end(
                    &mut std::io::Read::take(std::fs::File::open(&path).map_err(unreadable)?, 4),
                    &mut head,
                )
                .map_err(unreadable)?;
                if background || FileKind::detect(content_type, &head) == FileKind::Xlsx {
                    return Ok(Err(std::fs::read(&path).map_err(unreadable)?));
                }
                Ok(Ok(Sheet::csv_file(path)?))
            }
        }
    }
}

/// Told after each batch: the rows done so far (header excluded) and the rows refused.
pub type Progress = dyn Fn(i64, i64) + Send + Sync;

/// `POST /api/records/{entity}/import`: runs the import now and answers its report, or
/// (`background`) queues it as a job and answers its id.
pub async fn start(
    ctx: &Context,
    access: &Access,
    entity: &str,
    params: ImportParams,
    content_type: Option<&str>,
    bytes: Vec<u8>,
    background: bool,
) -> Result<(String, Option<ImportReport>)> {
    start_with_progress(
        ctx,
        access,
        entity,
        params,
        content_type,
        Upload::Bytes(bytes),
        background,
        None,
    )
    .await
}

/// [`start`], telling `progress` how far a run in the foreground is (the command line).
#[allow(clippy::too_many_arguments)]
pub async fn start_with_progress(
    ctx: &Context,
    access: &Access,
    entity: &str,
    params: ImportParams,
    content_type: Option<&str>,
    upload: Upload,
    background: bool,
    progress: Option<&Progress>,
) -> Result<(String, Option<ImportReport>)> {
    let (kind, file, sheet) = match upload.streamed(content_type, background)? {
        Ok(sheet) => (FileKind::Csv, None, sheet),
        Err(bytes) => {
            let kind = FileKind::detect(content_type, &bytes);
            // A background import keeps its file until it is done, to resume after a restart.
            let file = background.then(|| STANDARD.encode(&bytes));
            (
                kind,
                file,
                Sheet::read_owned(kind, bytes, params.sheet.as_deref())?,
            )
        }
    };
    let plan = Arc::new(plan(ctx, access, entity, params, &sheet).await?);
    let now = Utc::now();
    let row = ImportRow {
        id: uuid::Uuid::now_v7().hyphenated().to_string(),
        entity: plan.entity().def.name.to_string(),
        actor: access.actor_id().map(str::to_owned),
        status: if background { "queued" } else { "running" }.into(),
        params: plan.params.to_json(kind),
        rows: 0,
        done_row: 1,
        created: 0,
        updated: 0,
        failed: 0,
        report: json!({"mapping": plan.mapping_json(), "unmapped": plan.unmapped,
                       "headers": plan.headers,
                       "warnings": warnings(&plan.params)}),
        created_at: now,
        updated_at: now,
    };
    let id = row.id.clone();
    {
        let row = row.clone();
        let background_job = background.then(|| NewJob {
            kind: JOB,
            unique_key: Some(format!("import:{}", row.id)),
            payload: json!({"import": row.id}),
            run_at: now,
            max_attempts: 5,
        });
        ctx.db
            .write(move |tx| {
                Box::pin(async move {
                    store::insert(tx, &row, file.as_deref()).await?;
                    if let Some(job) = background_job {
                        crate::store::jobs::enqueue(tx, &job, now).await?;
                    }
                    Ok(())
                })
            })
            .await?;
    }
    if background {
        return Ok((id, None));
    }
    let outcome = process(ctx, plan.clone(), &sheet, &row, progress).await;
    let report = finish(ctx, &id, outcome).await?;
    Ok((id, Some(report)))
}

/// Records how a run ended and returns the report.
async fn finish(ctx: &Context, id: &str, outcome: Result<(i64, bool)>) -> Result<ImportReport> {
    let (status, rows) = match &outcome {
        Ok((rows, _)) => ("done", Some(*rows)),
        Err(_) => ("failed", None),
    };
    let (status_id, at) = (id.to_owned(), Utc::now());
    let status = status.to_owned();
    ctx.db
        .write(move |tx| {
            Box::pin(
                async move { store::finish(tx, &status_id, &status, rows, None, false, at).await },
            )
        })
        .await?;
    outcome?;
    let row = store::get(&mut &ctx.db, id)
        .await?
        .ok_or_else(|| Error::internal("an import vanished"))?;
    report(ctx, &row).await
}

/// An import the caller may see: their own, or any with the import permission and admin
/// rights.
async fn visible(ctx: &Context, access: &Access, id: &str) -> Result<ImportRow> {
    let missing = || Error::not_found(format!("there is no import '{id}'"));
    let row = store::get(&mut &ctx.db, id).await?.ok_or_else(missing)?;
    let own = row.actor.as_deref() == access.actor_id();
    if !(own || access.is_admin()) {
        return Err(missing());
    }
    Ok(row)
}

/// `GET /api/imports/{id}`: progress and report.
pub async fn get(ctx: &Context, access: &Access, id: &str) -> Result<ImportReport> {
    let row = visible(ctx, access, id).await?;
    report(ctx, &row).await
}

/// `GET /api/imports/{id}/errors.csv`: the refused rows as they were, with an error column,
/// to fix and import again.
pub async fn errors_csv(ctx: &Context, access: &Access, id: &str) -> Result<Vec<u8>> {
    let row = visible(ctx, access, id).await?;
    let headers: Vec<String> = row.report["headers"]
        .as_array()
        .map(|h| {
            h.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    let mut out = Vec::from("\u{FEFF}".as_bytes());
    {
        let mut writer = csv::Writer::from_writer(&mut out);
        let mut header = headers.clone();
        header.push("error".into());
        let bad = |e: csv::Error| Error::internal(format!("writing errors.csv: {e}"));
        writer.write_record(&header).map_err(bad)?;
        for f in refused_rows(ctx, &row.id).await? {
            let mut cells: Vec<String> = f
                .cells
                .as_ref()
                .and_then(Value::as_array)
                .map(|c| {
                    c.iter()
                        .map(|v| v.as_str().unwrap_or_default().to_owned())
                        .collect()
                })
                .unwrap_or_default();
            cells.resize(headers.len().max(cells.len()), String::new());
            let message: Vec<String> = f
                .errors
                .as_ref()
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .map(|e| match e["column"].as_str() {
                    Some(c) => format!("{c}: {}", e["message"].as_str().unwrap_or_default()),
                    None => e["message"].as_str().unwrap_or_default().to_owned(),
                })
                .collect();
            cells.push(message.join("; "));
            let cells: Vec<String> = cells
                .iter()
                .map(|c| super::cells::neutralise(c).into_owned())
                .collect();
            writer.write_record(&cells).map_err(bad)?;
        }
        writer.flush().map_err(|e| Error::internal(e.to_string()))?;
    }
    Ok(out)
}

/// The durable job of an import sent with `Prefer: respond-async`: resumes after the last
/// committed row.
pub async fn run_job(
    ctx: &Context,
    job: &crate::store::jobs::ClaimedJob,
) -> Result<crate::jobs::JobOutcome> {
    use crate::jobs::JobOutcome;
    let Some(id) = job.payload["import"].as_str() else {
        return Ok(JobOutcome::Fail("an import job without an import".into()));
    };
    let Some(row) = store::get(&mut &ctx.db, id).await? else {
        return Ok(JobOutcome::Fail(format!("import {id} is gone")));
    };
    if row.status == "done" || row.status == "undone" {
        return Ok(JobOutcome::Done);
    }
    let Some(file) = store::file(&mut &ctx.db, id).await? else {
        return Ok(JobOutcome::Fail(format!("import {id} has no file left")));
    };
    let bytes = STANDARD
        .decode(file)
        .map_err(|_| Error::internal("an import's file is not base64"))?;
    let access = match row.actor.as_deref() {
        Some(user) => match crate::auth::service::access_of_user(ctx, user).await? {
            Some(access) => access,
            None => {
                return Ok(JobOutcome::Fail(
                    "the importing user is no longer active".into(),
                ));
            }
        },
        None => Access::system(),
    };
    let (params, kind) = ImportParams::from_json(&row.params);
    let run = async {
        let sheet = Sheet::read_owned(kind, bytes, params.sheet.as_deref())?;
        let plan = Arc::new(plan(ctx, &access, &row.entity, params, &sheet).await?);
        let running = row.id.clone();
        ctx.db
            .write(move |tx| {
                Box::pin(async move {
                    store::finish(tx, &running, "running", None, None, true, Utc::now()).await
                })
            })
            .await?;
        process(ctx, plan, &sheet, &row, None).await
    };
    match run.await {
        Ok(outcome) => {
            finish(ctx, id, Ok(outcome)).await?;
            Ok(JobOutcome::Done)
        }
        Err(error) if error.is_server_error() => Err(error),
        Err(error) => {
            let message = error.public_message();
            finish(ctx, id, Err(error)).await.ok();
            Ok(JobOutcome::Fail(message))
        }
    }
}

/// `POST /api/imports/{id}/undo`: removes the records the import created and puts the ones it
/// updated back as they were — each only while nothing changed it since (those are reported).
pub async fn undo(ctx: &Context, access: &Access, id: &str) -> Result<UndoReport> {
    let row = visible(ctx, access, id).await?;
    access.require(Special::Import)?;
    if row.status == "undone" {
        return Err(Error::conflict(
            "this import has been undone already",
            Vec::new(),
        ));
    }
    if row.params["dry_run"].as_bool() == Some(true) {
        return Err(Error::conflict(
            "a dry run wrote nothing to undo",
            Vec::new(),
        ));
    }
    if row.status != "done" && row.status != "failed" {
        return Err(Error::conflict("this import is still running", Vec::new()));
    }
    let target = target(ctx, access, &row.entity).await?;
    let entity = target.entity.def.name.to_string();
    let writable: Vec<String> = target
        .entity
        .def
        .fields
        .iter()
        .filter(|f| {
            !f.is_computed() && access.field(&entity, f.name.as_str()) == FieldAccess::Write
        })
        .map(|f| f.name.to_string())
        .chain([
            "owner".to_owned(),
            "department".to_owned(),
            "tags".to_owned(),
        ])
        .collect();
    let mut removed = 0i64;
    let mut restored = 0i64;
    let mut changed = Vec::new();
    for outcome in [store::Outcome::Created, store::Outcome::Updated] {
        let mut after = 0;
        loop {
            let rows = store::rows(&mut &ctx.db, id, outcome, after, BATCH as i64).await?;
            let Some(last) = rows.last() else { break };
            after = last.row;
            let w = Writer::new(ctx, access, Origin::Import { triggers: false }).await?;
            let (entity, writable) = (entity.clone(), writable.clone());
            let results = ctx
                .db
                .write(move |tx| {
                    Box::pin(async move {
                        let mut results = Vec::new();
                        for r in rows {
                            let Some(record) = r.record_id.clone() else {
                                continue;
                            };
                            let mark = tx.after_commit_mark();
                            tx.execute(&Sql::new("SAVEPOINT tessera_import_row"))
                                .await?;
                            let done = if r.outcome == "created" {
                                write::delete(tx, &w, &entity, &record, r.version, false).await
                            } else {
                                let mut before = r.before.clone().unwrap_or(json!({}));
                                if let Some(map) = before.as_object_mut() {
                                    map.retain(|k, _| writable.contains(k));
                                }
                                write::update(
                                    tx,
                                    &w,
                                    &entity,
                                    &record,
                                    &before,
                                    r.version,
                                    Vec::new(),
                                )
                                .await
                                .map(|_| ())
                            };
                            match done {
                                Ok(()) => {
                                    tx.execute(&Sql::new("RELEASE tessera_import_row")).await?;
                                    results.push((r.row, record, r.outcome, None));
                                }
                                Err(error) if error.is_server_error() => return Err(error),
                                Err(error) => {
                                    roll_back_to(tx, "tessera_import_row", mark).await?;
                                    let reason = match error {
                                        Error::PreconditionFailed(_) => {
                                            "changed since the import; left as it is".to_owned()
                                        }
                                        Error::NotFound(_) => "no longer there".to_owned(),
                                        other => other.public_message(),
                                    };
                                    results.push((r.row, record, r.outcome, Some(reason)));
                                }
                            }
                        }
                        Ok(results)
                    })
                })
                .await?;
            for (row_number, record, outcome, problem) in results {
                match (problem, outcome.as_str()) {
                    (None, "created") => removed += 1,
                    (None, _) => restored += 1,
                    (Some(reason), _) => changed.push(UndoSkipped {
                        row: row_number,
                        id: record,
                        message: reason,
                    }),
                }
            }
        }
    }
    let answer = UndoReport {
        id: id.to_owned(),
        removed,
        restored,
        skipped: changed,
    };
    let mut report_doc = row.report.clone();
    report_doc["undo"] =
        json!({"removed": removed, "restored": restored, "skipped": answer.skipped});
    let import_id = id.to_owned();
    ctx.db
        .write(move |tx| {
            Box::pin(async move {
                store::finish(
                    tx,
                    &import_id,
                    "undone",
                    None,
                    Some(&report_doc),
                    false,
                    Utc::now(),
                )
                .await
            })
        })
        .await?;
    Ok(answer)
}
