//! Form layouts: sections of fields in columns, with help text per language.
//!
//! ```json
//! {"name": "default", "label": {"en": "Customer", "zh-CN": "客户"},
//!  "sections": [{"title": {"en": "Basics", "zh-CN": "基本信息"}, "columns": 2,
//!                "fields": ["name", {"field": "level", "help": {"en": "A is best"}}]}]}
//! ```

use std::collections::HashSet;

use chrono::Utc;
use serde_json::{Map, Value, json};

use super::shapes::{FormMeta, FormView};
use super::{check_field_name, check_label, valid_name};
use crate::auth::{Access, Action, Special};
use crate::context::Context;
use crate::error::{Error, FieldError, Result};
use crate::schema::compiled::CompiledEntity;
use crate::store::layouts::{self as store, FormRow};
use crate::store::versions::{self, DocumentKind, SavedVersion};
use crate::wire::Items;

const MAX_SECTIONS: usize = 50;

/// Checks a form body against its entity; returns the stored document
/// (`{name, label, sections}`, every field entry as an object).
pub fn check(
    entity: &CompiledEntity,
    access: &Access,
    name: &str,
    body: &Value,
) -> std::result::Result<Value, Vec<FieldError>> {
    let mut problems = Vec::new();
    let Some(given) = body.as_object() else {
        return Err(vec![FieldError::new("", "a form is a JSON object")]);
    };
    for key in given.keys() {
        // What a GET answers may be sent back as it is (edit, then PUT).
        let read_only = ["version", "entity", "created_at", "updated_at"];
        if !["name", "label", "sections"].contains(&key.as_str())
            && !read_only.contains(&key.as_str())
        {
            problems.push(FieldError::new(key.as_str(), "is not a property of a form"));
        }
    }
    if !valid_name(name) {
        problems.push(FieldError::new(
            "name",
            "is required: 1–64 letters, digits, _ or -",
        ));
    }
    let label = check_label(given.get("label"), "label", false, &mut problems);
    let mut sections = Vec::new();
    let mut seen = HashSet::new();
    match given.get("sections").and_then(Value::as_array) {
        None => problems.push(FieldError::new("sections", "is required (a list)")),
        Some(list) if list.len() > MAX_SECTIONS => problems.push(FieldError::new(
            "sections",
            format!("a form has at most {MAX_SECTIONS} sections"),
        )),
        Some(list) => {
            for (i, section) in list.iter().enumerate() {
                let path = format!("sections.{i}");
                let Some(section) = section.as_object() else {
                    problems.push(FieldError::new(path, "must be an object"));
                    continue;
                };
                for key in section.keys() {
                    if !["title", "columns", "fields", "collapsed"].contains(&key.as_str()) {
                        problems.push(FieldError::new(
                            format!("{path}.{key}"),
                            "is not a property of a section",
                        ));
                    }
                }
                let title = check_label(
                    section.get("title"),
                    &format!("{path}.title"),
                    false,
                    &mut problems,
                );
                let columns = match section.get("columns") {
                    None => 1,
                    Some(c) => match c.as_u64().filter(|c| (1..=4).contains(c)) {
                        Some(c) => c,
                        None => {
                            problems
                                .push(FieldError::new(format!("{path}.columns"), "must be 1–4"));
                            1
                        }
                    },
                };
                let mut fields = Vec::new();
                for (j, entry) in section
                    .get("fields")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .enumerate()
                {
                    let fpath = format!("{path}.fields.{j}");
                    let (field, help, span, label) = match entry {
                        Value::String(f) => (f.clone(), None, None, None),
                        Value::Object(o) => {
                            // A label here names a field on this form only (system fields such
                            // as owner have no label of their own).
                            let label = check_label(
                                o.get("label"),
                                &format!("{fpath}.label"),
                                false,
                                &mut problems,
                            );
                            let help = check_label(
                                o.get("help"),
                                &format!("{fpath}.help"),
                                false,
                                &mut problems,
                            );
                            let span = match o.get("span") {
                                None => None,
                                Some(s) => match s.as_u64().filter(|s| (1..=columns).contains(s)) {
                                    Some(s) => Some(s),
                                    None => {
                                        problems.push(FieldError::new(
                                            format!("{fpath}.span"),
                                            format!("must be 1–{columns} (the section's columns)"),
                                        ));
                                        None
                                    }
                                },
                            };
                            let field = o
                                .get("field")
                                .and_then(Value::as_str)
                                .unwrap_or_default()
                                .to_owned();
                            (field, help, span, label)
                        }
                        _ => {
                            problems.push(FieldError::new(fpath, "must be a field name or object"));
                            continue;
                        }
                    };
                    check_field_name(
                        entity,
                        access,
                        &field,
                        &format!("{fpath}.field"),
                        &mut problems,
                    );
                    if !seen.insert(field.clone()) {
                        problems.push(FieldError::new(
                            format!("{fpath}.field"),
                            format!("'{field}' is already on the form"),
                        ));
                    }
                    let mut out = Map::new();
                    out.insert("field".into(), json!(field));
                    if let Some(label) = label {
                        out.insert("label".into(), label);
                    }
                    if let Some(help) = help {
                        out.insert("help".into(), help);
                    }
                    if let Some(span) = span {
                        out.insert("span".into(), json!(span));
                    }
                    fields.push(Value::Object(out));
                }
                let mut out = Map::new();
                if let Some(title) = title {
                    out.insert("title".into(), title);
                }
                out.insert("columns".into(), json!(columns));
                if section.get("collapsed").and_then(Value::as_bool) == Some(true) {
                    out.insert("collapsed".into(), json!(true));
                }
                out.insert("fields".into(), Value::Array(fields));
                sections.push(Value::Object(out));
            }
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(json!({
        "name": name,
        "label": label.unwrap_or_else(|| entity.def.label.clone()),
        "sections": sections,
    }))
}

/// The form as a caller sees it: fields they may not read are left out.
fn form_view(row: &FormRow, access: &Access) -> FormView {
    let mut doc = row.document.clone();
    if let Some(sections) = doc["sections"].as_array_mut() {
        for section in sections {
            if let Some(fields) = section["fields"].as_array_mut() {
                fields.retain(|f| {
                    let name = f["field"].as_str().unwrap_or_default();
                    super::is_system_field(name) || access.can_read_field(&row.entity, name)
                });
            }
        }
    }
    FormView::new(doc, FormMeta::of(row))
}

async fn entity_for(
    ctx: &Context,
    access: &Access,
    entity: &str,
) -> Result<std::sync::Arc<CompiledEntity>> {
    let entity = ctx.schema.get(&ctx.db, entity).await?;
    access.require_action(entity.def.name.as_str(), Action::Read)?;
    Ok(entity)
}

pub async fn list(ctx: &Context, access: &Access, entity: &str) -> Result<Items<FormView>> {
    let entity = entity_for(ctx, access, entity).await?;
    let rows = store::forms(&mut &ctx.db, Some(entity.def.name.as_str())).await?;
    Ok(Items::of(&rows, |r| form_view(r, access)))
}

pub async fn get(ctx: &Context, access: &Access, entity: &str, name: &str) -> Result<FormView> {
    let entity = entity_for(ctx, access, entity).await?;
    let row = store::form_by(&mut &ctx.db, entity.def.name.as_str(), name)
        .await?
        .ok_or_else(|| Error::not_found(format!("{} has no form '{name}'", entity.def.name)))?;
    Ok(form_view(&row, access))
}

fn invalid(problems: Vec<FieldError>) -> Error {
    Error::invalid("the form is not valid", problems)
}

/// Creates (`name` from the body) or replaces (`name` from the path) a form.
pub async fn save(
    ctx: &Context,
    access: &Access,
    entity: &str,
    path_name: Option<&str>,
    body: &Value,
    if_match: Option<i64>,
) -> Result<FormView> {
    access.require(Special::ManageSchema)?;
    let entity = entity_for(ctx, access, entity).await?;
    let entity_name = entity.def.name.to_string();
    let name = path_name
        .map(str::to_owned)
        .or_else(|| body.get("name").and_then(Value::as_str).map(str::to_owned))
        .unwrap_or_default();
    let document = check(&entity, access, &name, body).map_err(invalid)?;
    let existing = store::form_by(&mut &ctx.db, &entity_name, &name).await?;
    let now = Utc::now();
    let expected = match (&existing, path_name) {
        (Some(_), None) => {
            return Err(Error::conflict(
                format!("{entity_name} already has a form named '{name}'"),
                vec![FieldError::new("name", "is taken")],
            ));
        }
        (None, Some(_)) => {
            return Err(Error::not_found(format!(
                "{entity_name} has no form '{name}'"
            )));
        }
        (Some(e), Some(_)) => Some(
            if_match
                .or_else(|| body.get("version").and_then(Value::as_i64))
                .unwrap_or(e.version),
        ),
        (None, None) => None,
    };
    let row = FormRow {
        entity: entity_name,
        name,
        document,
        version: existing.as_ref().map_or(1, |e| e.version + 1),
        created_at: existing.as_ref().map_or(now, |e| e.created_at),
        updated_at: now,
    };
    let saved = row.clone();
    let actor = access.actor_id().map(str::to_owned);
    let stored = ctx
        .db
        .write(move |tx| {
            Box::pin(async move { store::save_form(tx, &saved, expected, actor.as_deref()).await })
        })
        .await?;
    if !stored {
        return Err(Error::PreconditionFailed(format!(
            "the form is at another version than {}; reload it",
            expected.unwrap_or_default()
        )));
    }
    Ok(form_view(&row, access))
}

pub async fn delete(ctx: &Context, access: &Access, entity: &str, name: &str) -> Result<()> {
    access.require(Special::ManageSchema)?;
    let entity = entity_for(ctx, access, entity).await?.def.name.to_string();
    let (e, n) = (entity.clone(), name.to_owned());
    let deleted = ctx
        .db
        .write(move |tx| Box::pin(async move { store::delete_form(tx, &e, &n).await }))
        .await?;
    if !deleted {
        return Err(Error::not_found(format!("{entity} has no form '{name}'")));
    }
    Ok(())
}

pub async fn versions(
    ctx: &Context,
    access: &Access,
    entity: &str,
    name: &str,
) -> Result<Items<SavedVersion>> {
    let entity = entity_for(ctx, access, entity).await?;
    let key = format!("{}/{name}", entity.def.name);
    let versions = versions::list(&mut &ctx.db, DocumentKind::Form, &key).await?;
    if versions.is_empty() {
        return Err(Error::not_found(format!(
            "{} has no form '{name}'",
            entity.def.name
        )));
    }
    Ok(Items { items: versions })
}
