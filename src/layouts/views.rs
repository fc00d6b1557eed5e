//! Saved views of an entity's records: lists (columns, filter, sort, page size), kanban boards
//! (grouped by a select field, card fields, an optional sum) and calendars (by a date field).
//! A view is shared (everyone who may read the entity sees it) or personal (its owner only).

use chrono::Utc;
use serde_json::{Map, Value, json};

use super::shapes::{ViewMeta, ViewView};
use super::{check_field_name, check_label, valid_name};
use crate::auth::{Access, Action, Special};
use crate::context::Context;
use crate::error::{Error, FieldError, Result};
use crate::fields::Kind;
use crate::records::filter::{self, FilterContext};
use crate::schema::compiled::{Catalog, CompiledEntity};
use crate::store::layouts::{self as store, ViewRow};
use crate::store::versions::{self, DocumentKind, SavedVersion};
use crate::wire::Items;

pub const KINDS: &[&str] = &["list", "kanban", "calendar"];
const MAX_PAGE_SIZE: u64 = 500;

/// The properties a view of each kind may have (besides the common ones).
fn kind_keys(kind: &str) -> &'static [&'static str] {
    match kind {
        "list" => &["columns", "page_size"],
        "kanban" => &["group_by", "card_fields", "sum"],
        "calendar" => &["date_field", "end_field", "title_field"],
        _ => &[],
    }
}

/// Properties every view has, and the read-only ones a GET answers (which may be sent back).
const COMMON_KEYS: &[&str] = &[
    "entity",
    "name",
    "label",
    "kind",
    "shared",
    "filter",
    "sort",
    "version",
    "id",
    "owner",
    "created_at",
    "updated_at",
];

fn is_numeric(entity: &CompiledEntity, field: &str) -> bool {
    entity
        .def
        .field(field)
        .is_some_and(|f| f.capabilities().summable)
}

fn is_date(entity: &CompiledEntity, field: &str) -> bool {
    matches!(field, "created_at" | "updated_at")
        || entity
            .def
            .field(field)
            .is_some_and(|f| f.capabilities().date_bucketable)
}

/// Checks a view body; returns the stored document. `entity` is the entity it names.
pub fn check(
    catalog: &Catalog,
    entity: &CompiledEntity,
    access: &Access,
    body: &Map<String, Value>,
) -> std::result::Result<Value, Vec<FieldError>> {
    let mut problems = Vec::new();
    let kind = body.get("kind").and_then(Value::as_str).unwrap_or("list");
    if !KINDS.contains(&kind) {
        problems.push(FieldError::new("kind", "must be list, kanban or calendar"));
    }
    for key in body.keys() {
        if !COMMON_KEYS.contains(&key.as_str()) && !kind_keys(kind).contains(&key.as_str()) {
            problems.push(FieldError::new(
                key.as_str(),
                format!("is not a property of a {kind} view"),
            ));
        }
    }
    let name = body.get("name").and_then(Value::as_str).unwrap_or_default();
    if !valid_name(name) {
        problems.push(FieldError::new(
            "name",
            "is required: 1–64 letters, digits, _ or -",
        ));
    }
    let label = check_label(body.get("label"), "label", false, &mut problems);
    let shared = match body.get("shared") {
        None => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            problems.push(FieldError::new("shared", "must be true or false"));
            false
        }
    };
    let mut out = Map::new();
    out.insert("entity".into(), json!(entity.def.name.as_str()));
    out.insert("name".into(), json!(name));
    out.insert("label".into(), label.unwrap_or_else(|| json!({"en": name})));
    out.insert("kind".into(), json!(kind));
    out.insert("shared".into(), json!(shared));
    let text = |key: &str, problems: &mut Vec<FieldError>| -> Option<String> {
        match body.get(key) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if s.trim().is_empty() => None,
            Some(Value::String(s)) => Some(s.trim().to_owned()),
            Some(_) => {
                problems.push(FieldError::new(key, "must be text"));
                None
            }
        }
    };
    let one_field = |key: &str, required: bool, problems: &mut Vec<FieldError>| {
        let field = text(key, problems);
        match &field {
            Some(f) => check_field_name(entity, access, f, key, problems),
            None if required => problems.push(FieldError::new(key, "is required")),
            None => {}
        }
        field
    };
    let field_list = |key: &str, required: bool, problems: &mut Vec<FieldError>| {
        let mut fields = Vec::new();
        match body.get(key) {
            None | Some(Value::Null) if !required => {}
            Some(Value::Array(list)) if !list.is_empty() => {
                for (i, f) in list.iter().enumerate() {
                    let path = format!("{key}.{i}");
                    match f.as_str() {
                        Some(f) if fields.iter().any(|g: &String| g == f) => {
                            problems.push(FieldError::new(path, format!("'{f}' is listed twice")));
                        }
                        Some(f) => {
                            check_field_name(entity, access, f, &path, problems);
                            fields.push(f.to_owned());
                        }
                        None => problems.push(FieldError::new(path, "must be a field name")),
                    }
                }
            }
            _ => problems.push(FieldError::new(
                key,
                "must be a non-empty list of field names",
            )),
        }
        fields
    };
    let filter_text = text("filter", &mut problems);
    if let Some(source) = &filter_text {
        let ctx = FilterContext {
            catalog,
            entity,
            now: Utc::now(),
            access,
        };
        if let Err(e) = filter::compile(source, &ctx) {
            problems.push(FieldError::new("filter", e.to_string()));
        }
    }
    out.insert("filter".into(), json!(filter_text));
    let sort_text = text("sort", &mut problems);
    if let Some(spec) = &sort_text
        && let Err(message) = filter::sort(spec, entity, access)
    {
        problems.push(FieldError::new("sort", message));
    }
    out.insert("sort".into(), json!(sort_text));
    match kind {
        "list" => {
            let columns = field_list("columns", true, &mut problems);
            out.insert("columns".into(), json!(columns));
            let page_size = match body.get("page_size") {
                None => 50,
                Some(v) => match v.as_u64().filter(|n| (1..=MAX_PAGE_SIZE).contains(n)) {
                    Some(n) => n,
                    None => {
                        problems.push(FieldError::new(
                            "page_size",
                            format!("must be 1–{MAX_PAGE_SIZE}"),
                        ));
                        50
                    }
                },
            };
            out.insert("page_size".into(), json!(page_size));
        }
        "kanban" => {
            let group_by = one_field("group_by", true, &mut problems);
            if let Some(g) = &group_by
                && entity.def.field(g).is_some_and(|f| f.kind != Kind::Select)
            {
                problems.push(FieldError::new(
                    "group_by",
                    format!("'{g}' is not a select field"),
                ));
            }
            out.insert("group_by".into(), json!(group_by));
            let cards = field_list("card_fields", true, &mut problems);
            out.insert("card_fields".into(), json!(cards));
            let sum = one_field("sum", false, &mut problems);
            if let Some(s) = &sum
                && entity.def.field(s).is_some()
                && !is_numeric(entity, s)
            {
                problems.push(FieldError::new(
                    "sum",
                    format!("'{s}' is not a number field"),
                ));
            }
            out.insert("sum".into(), json!(sum));
        }
        "calendar" => {
            for (key, required) in [("date_field", true), ("end_field", false)] {
                let field = one_field(key, required, &mut problems);
                if let Some(f) = &field
                    && (entity.def.field(f).is_some() || SYSTEM_DATES.contains(&f.as_str()))
                    && !is_date(entity, f)
                {
                    problems.push(FieldError::new(key, format!("'{f}' is not a date field")));
                }
                out.insert(key.into(), json!(field));
            }
            let title = one_field("title_field", false, &mut problems);
            out.insert("title_field".into(), json!(title));
        }
        _ => {}
    }
    if problems.is_empty() {
        Ok(Value::Object(out))
    } else {
        Err(problems)
    }
}

const SYSTEM_DATES: &[&str] = &["created_at", "updated_at"];

fn view_view(row: &ViewRow) -> ViewView {
    ViewView::new(row.document.clone(), ViewMeta::of(row))
}

fn invalid(problems: Vec<FieldError>) -> Error {
    Error::invalid("the view is not valid", problems)
}

/// A view the caller may see: shared ones of entities they read, and their own.
async fn visible(ctx: &Context, access: &Access, id: &str) -> Result<ViewRow> {
    let missing = || Error::not_found(format!("there is no view '{id}'"));
    let row = store::view_by_id(&mut &ctx.db, id)
        .await?
        .ok_or_else(missing)?;
    let own = row
        .owner
        .as_deref()
        .is_none_or(|o| Some(o) == access.actor_id());
    if !own || access.require_action(&row.entity, Action::Read).is_err() {
        return Err(missing());
    }
    Ok(row)
}

pub async fn list(ctx: &Context, access: &Access, entity: Option<&str>) -> Result<Items<ViewView>> {
    let user = access.actor_id().unwrap_or("-");
    let rows = store::views(&mut &ctx.db, Some(user), entity).await?;
    let readable = rows
        .iter()
        .filter(|r| access.require_action(&r.entity, Action::Read).is_ok());
    Ok(Items::of(readable, view_view))
}

pub async fn get(ctx: &Context, access: &Access, id: &str) -> Result<ViewView> {
    Ok(view_view(&visible(ctx, access, id).await?))
}

/// Who may save a view: a shared one needs the schema permission, a personal one only read
/// access to the entity.
fn may_save(access: &Access, entity: &str, shared: bool) -> Result<()> {
    access.require_action(entity, Action::Read)?;
    if shared {
        access.require(Special::ManageSchema)?;
    }
    Ok(())
}

pub async fn create(ctx: &Context, access: &Access, body: &Value) -> Result<ViewView> {
    let Some(body) = body.as_object() else {
        return Err(Error::bad_request("send the view as a JSON object"));
    };
    let entity_name = body
        .get("entity")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if entity_name.is_empty() {
        return Err(invalid(vec![FieldError::new("entity", "is required")]));
    }
    let catalog = ctx.schema.catalog(&ctx.db).await?;
    let entity = catalog.entity(entity_name).map_err(|_| {
        invalid(vec![FieldError::new(
            "entity",
            format!("there is no entity '{entity_name}'"),
        )])
    })?;
    let document = check(&catalog, &entity, access, body).map_err(invalid)?;
    let shared = document["shared"].as_bool().unwrap_or(false);
    may_save(access, entity_name, shared)?;
    let owner = if shared {
        None
    } else {
        Some(
            access
                .actor_id()
                .ok_or_else(|| Error::bad_request("only a user can have personal views"))?
                .to_owned(),
        )
    };
    let name = document["name"].as_str().unwrap_or_default().to_owned();
    if store::view_by_name(&mut &ctx.db, entity_name, owner.as_deref(), &name)
        .await?
        .is_some()
    {
        return Err(Error::conflict(
            format!("there is already a view of {entity_name} named '{name}'"),
            vec![FieldError::new("name", "is taken")],
        ));
    }
    let now = Utc::now();
    let row = ViewRow {
        id: uuid::Uuid::now_v7().hyphenated().to_string(),
        entity: entity_name.to_owned(),
        name,
        kind: document["kind"].as_str().unwrap_or("list").to_owned(),
        owner,
        document,
        version: 1,
        created_by: access.actor_id().map(str::to_owned),
        created_at: now,
        updated_at: now,
    };
    write(ctx, access, &row, None).await?;
    super::view_indexes::follow(ctx, &row.entity).await;
    Ok(view_view(&row))
}

async fn write(ctx: &Context, access: &Access, row: &ViewRow, expected: Option<i64>) -> Result<()> {
    let saved = row.clone();
    let actor = access.actor_id().map(str::to_owned);
    let stored = ctx
        .db
        .write(move |tx| {
            Box::pin(async move { store::save_view(tx, &saved, expected, actor.as_deref()).await })
        })
        .await
        .map_err(|e| match e {
            Error::Conflict { .. } => Error::conflict(
                format!(
                    "there is already a view of {} named '{}'",
                    row.entity, row.name
                ),
                vec![FieldError::new("name", "is taken")],
            ),
            other => other,
        })?;
    if !stored {
        return Err(Error::PreconditionFailed(
            "the view was changed meanwhile; reload it".into(),
        ));
    }
    Ok(())
}

/// Changes a view: the properties given replace those stored (`null` removes one). A view
/// cannot move to another entity or between shared and personal.
pub async fn update(
    ctx: &Context,
    access: &Access,
    id: &str,
    body: &Value,
    if_match: Option<i64>,
) -> Result<ViewView> {
    let Some(changes) = body.as_object() else {
        return Err(Error::bad_request("send the changes as a JSON object"));
    };
    let existing = visible(ctx, access, id).await?;
    let expected = if_match
        .or_else(|| changes.get("version").and_then(Value::as_i64))
        .unwrap_or(existing.version);
    if expected != existing.version {
        return Err(Error::PreconditionFailed(format!(
            "the view is at version {}, not {expected}; reload it",
            existing.version
        )));
    }
    let mut merged = existing.document.as_object().cloned().unwrap_or_default();
    for (key, value) in changes {
        if ["version", "id", "owner", "created_at", "updated_at"].contains(&key.as_str()) {
            continue;
        }
        if (key == "entity" && value.as_str() != Some(existing.entity.as_str()))
            || (key == "shared" && value.as_bool() != Some(existing.owner.is_none()))
        {
            return Err(invalid(vec![FieldError::new(
                key.as_str(),
                "cannot change; save a new view instead",
            )]));
        }
        if value.is_null() {
            merged.remove(key);
        } else {
            merged.insert(key.clone(), value.clone());
        }
    }
    // Properties of the old kind do not carry over to a new one.
    let kind = merged
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or("list")
        .to_owned();
    merged
        .retain(|k, _| COMMON_KEYS.contains(&k.as_str()) || kind_keys(&kind).contains(&k.as_str()));
    merged.retain(|_, v| !v.is_null());
    let catalog = ctx.schema.catalog(&ctx.db).await?;
    let entity = catalog.entity(&existing.entity)?;
    let document = check(&catalog, &entity, access, &merged).map_err(invalid)?;
    may_save(access, &existing.entity, existing.owner.is_none())?;
    let row = ViewRow {
        name: document["name"].as_str().unwrap_or_default().to_owned(),
        kind,
        document,
        version: existing.version + 1,
        updated_at: Utc::now(),
        ..existing
    };
    write(ctx, access, &row, Some(expected)).await?;
    super::view_indexes::follow(ctx, &row.entity).await;
    Ok(view_view(&row))
}

pub async fn delete(ctx: &Context, access: &Access, id: &str) -> Result<()> {
    let existing = visible(ctx, access, id).await?;
    may_save(access, &existing.entity, existing.owner.is_none())?;
    let id = existing.id.clone();
    ctx.db
        .write(move |tx| Box::pin(async move { store::delete_view(tx, &id).await }))
        .await?;
    super::view_indexes::follow(ctx, &existing.entity).await;
    Ok(())
}

pub async fn versions(ctx: &Context, access: &Access, id: &str) -> Result<Items<SavedVersion>> {
    let row = visible(ctx, access, id).await?;
    let items = versions::list(&mut &ctx.db, DocumentKind::View, &row.id).await?;
    Ok(Items { items })
}
