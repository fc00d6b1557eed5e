//! The one form renderer: create and edit pages from an entity's form layout, a widget per
//! field kind (`templates/w/*.hbs`), checks from the schema in the markup (app.js runs them as
//! the user types), the server's 422 errors on their fields all at once; and what the form
//! posts back turned into a record payload.

use std::collections::HashMap;

use axum::extract::{Path, Query};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{NaiveDateTime, TimeZone};
use serde_json::{Map, Value, json};

use super::list::{Pairs, merge, param};
use super::render::render;
use super::shell::{self, Names};
use super::{Viewer, html, tri, url_encode};
use crate::auth::Action;
use crate::auth::permissions::FieldAccess;
use crate::error::{Error, FieldError, Result};
use crate::events::Origin;
use crate::fields::Kind;
use crate::records::service::Target;
use crate::records::write;
use crate::schema::compiled::CompiledEntity;
use crate::schema::definition::FieldDef;

/// Turns what a form posted for one field into the JSON the write path takes. A value that
/// does not parse is passed on as text, so the server's check names the problem.
pub fn parse_value(field: &FieldDef, values: &[String], tz: chrono_tz::Tz) -> Value {
    let first = values
        .iter()
        .find(|s| !s.is_empty())
        .map(|s| s.trim().to_owned());
    let many = || -> Value {
        Value::Array(
            values
                .iter()
                .filter(|s| !s.trim().is_empty())
                .map(|s| json!(s.trim()))
                .collect(),
        )
    };
    match field.kind {
        Kind::MultiSelect | Kind::MultiLookup => many(),
        _ => match first {
            None => Value::Null,
            Some(text) => match field.kind {
                Kind::Integer => text
                    .parse::<i64>()
                    .map(Value::from)
                    .unwrap_or(Value::String(text)),
                Kind::Boolean => match text.as_str() {
                    "true" | "1" | "on" | "yes" => Value::Bool(true),
                    "false" | "0" | "off" | "no" => Value::Bool(false),
                    _ => Value::String(text),
                },
                Kind::Datetime => match NaiveDateTime::parse_from_str(&text, "%Y-%m-%dT%H:%M") {
                    Ok(local) => match tz.from_local_datetime(&local).earliest() {
                        Some(t) => json!(t.with_timezone(&chrono::Utc).to_rfc3339()),
                        None => Value::String(text),
                    },
                    Err(_) => Value::String(text),
                },
                _ => Value::String(text),
            },
        },
    }
}

/// What a viewer may write: a field (or owner / department) they may change.
fn writable(v: &Viewer, entity: &CompiledEntity, name: &str) -> bool {
    match entity.def.field(name) {
        Some(f) => {
            !f.is_computed() && v.access.field(entity.def.name.as_str(), name) == FieldAccess::Write
        }
        None => matches!(name, "owner" | "department"),
    }
}

/// The payload of a posted form: every writable field it carries.
pub fn payload(v: &Viewer, entity: &CompiledEntity, form: &Pairs, names: &[String]) -> Value {
    let mut grouped: HashMap<&str, Vec<String>> = HashMap::new();
    for (k, val) in form {
        grouped.entry(k.as_str()).or_default().push(val.clone());
    }
    let mut out = Map::new();
    for name in names {
        let Some(values) = grouped.get(name.as_str()) else {
            continue;
        };
        if !writable(v, entity, name) {
            continue;
        }
        let value = match entity.def.field(name) {
            Some(f) => parse_value(f, values, v.tz),
            None => values
                .iter()
                .find(|s| !s.is_empty())
                .map_or(Value::Null, |s| json!(s)),
        };
        out.insert(name.clone(), value);
    }
    Value::Object(out)
}

fn value_text(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The widget of one field: which partial, and its attributes.
#[allow(clippy::too_many_arguments)]
pub fn widget(
    v: &Viewer,
    names: &Names,
    entity: &CompiledEntity,
    name: &str,
    value: &Value,
    id: &str,
    aria_label: Option<String>,
    invalid: bool,
) -> Value {
    let mut w = json!({
        "id": id, "name": name, "value": value_text(value), "label": aria_label,
        "invalid": invalid, "choose": v.t("choose"), "computed": v.t("computed"),
        "described": invalid.then(|| format!("{id}-err")),
    });
    let people = |map: &HashMap<String, String>, current: &str| -> Vec<Value> {
        let mut list: Vec<(&String, &String)> = map.iter().collect();
        list.sort_by(|a, b| a.1.cmp(b.1));
        list.into_iter()
            .map(|(id, n)| json!({"value": id, "label": n, "selected": id == current}))
            .collect()
    };
    let Some(field) = entity.def.field(name) else {
        // owner / department
        let current = value_text(value);
        let options = match name {
            "owner" => people(&names.users, &current),
            _ => people(&names.departments, &current),
        };
        merge(&mut w, json!({"partial": "w/select", "options": options}));
        return w;
    };
    let set = |w: &mut Value, extra: Value| merge(w, extra);
    if field.is_computed() || !writable(v, entity, name) {
        let shown = shell::display(v, names, field, value);
        set(
            &mut w,
            json!({"partial": "w/readonly", "value": shown.get("t").cloned().unwrap_or(Value::Null)}),
        );
        return w;
    }
    set(&mut w, json!({"required": field.required}));
    match field.kind {
        Kind::Text | Kind::Email | Kind::Phone | Kind::Url => {
            let ty = match field.kind {
                Kind::Email => "email",
                Kind::Phone => "tel",
                Kind::Url => "url",
                _ => "text",
            };
            set(
                &mut w,
                json!({
                    "partial": "w/text", "type": ty,
                    "maxlength": field.max_length, "minlength": field.min_length,
                    "pattern": field.regex.as_ref().map(|r| r.as_str().trim_start_matches('^').trim_end_matches('$').to_owned()),
                    "placeholder": (field.kind == Kind::Url).then_some("https://"),
                }),
            );
        }
        Kind::LongText => set(
            &mut w,
            json!({"partial": "w/long_text", "maxlength": field.max_length}),
        ),
        Kind::Integer | Kind::Decimal | Kind::Money | Kind::Percent => {
            let step = if field.kind == Kind::Integer || field.scale == 0 {
                "1".to_owned()
            } else {
                format!("0.{}1", "0".repeat(field.scale.saturating_sub(1) as usize))
            };
            let currency = (field.kind == Kind::Money).then(|| shell::currency_symbol(field));
            set(
                &mut w,
                json!({
                    "partial": "w/number", "step": step,
                    "min": field.minimum.map(|m| m.to_string()),
                    "max": field.maximum.map(|m| m.to_string()),
                    "currency": currency.filter(|c| !c.is_empty()),
                }),
            );
        }
        Kind::Boolean => {
            let current = value.as_bool();
            set(
                &mut w,
                json!({"partial": "w/select", "options": [
                    {"value": "true", "label": v.t("yes"), "selected": current == Some(true)},
                    {"value": "false", "label": v.t("no"), "selected": current == Some(false)},
                ]}),
            );
        }
        Kind::Date => set(&mut w, json!({"partial": "w/date", "type": "date"})),
        Kind::Datetime => {
            let local = value
                .as_str()
                .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
                .map(|t| t.with_timezone(&v.tz).format("%Y-%m-%dT%H:%M").to_string())
                .unwrap_or_else(|| value_text(value));
            set(
                &mut w,
                json!({"partial": "w/date", "type": "datetime-local", "value": local}),
            );
        }
        Kind::Select => {
            let current = value_text(value);
            let options: Vec<Value> = shell::options(v, field)
                .into_iter()
                .map(|(val, label, c)| json!({"value": val, "label": label, "c": c, "selected": val == current}))
                .collect();
            set(&mut w, json!({"partial": "w/select", "options": options}));
        }
        Kind::MultiSelect => {
            let chosen: Vec<&str> = value
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            let options: Vec<Value> = shell::options(v, field)
                .into_iter()
                .map(|(val, label, c)| {
                    let selected = chosen.contains(&val.as_str());
                    json!({"value": val, "label": label, "c": c, "selected": selected})
                })
                .collect();
            set(
                &mut w,
                json!({"partial": "w/multi_select", "options": options}),
            );
        }
        Kind::Lookup => {
            let target = field
                .target
                .as_ref()
                .map(|t| t.to_string())
                .unwrap_or_default();
            let id_value = value_text(value);
            let display = names.record(&target, &id_value).unwrap_or_default();
            set(
                &mut w,
                json!({
                    "partial": "w/lookup", "url": format!("/e/{target}/lookup"),
                    "display": display, "placeholder": v.t("type_to_search"),
                }),
            );
        }
        Kind::MultiLookup => {
            let target = field
                .target
                .as_ref()
                .map(|t| t.to_string())
                .unwrap_or_default();
            let current: Vec<Value> = value
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(|id| json!({"value": id, "label": names.record(&target, id).unwrap_or(id)}))
                .collect();
            set(
                &mut w,
                json!({
                    "partial": "w/multi_lookup", "url": format!("/e/{target}/lookup"),
                    "current": current, "placeholder": v.t("type_to_search"),
                }),
            );
        }
        Kind::User => {
            let options = people(&names.users, &value_text(value));
            set(&mut w, json!({"partial": "w/select", "options": options}));
        }
        Kind::Department => {
            let options = people(&names.departments, &value_text(value));
            set(&mut w, json!({"partial": "w/select", "options": options}));
        }
        Kind::Autonumber | Kind::Formula | Kind::Rollup => {}
    }
    w
}

/// A field entry of a form layout.
pub struct Slot {
    pub name: String,
    pub label: Option<Value>,
    pub help: Option<Value>,
    pub wide: bool,
}

/// The sections of an entity's form (`default`), or one section of every readable field.
pub async fn sections(
    v: &Viewer,
    entity: &CompiledEntity,
) -> Result<Vec<(Option<Value>, u64, Vec<Slot>)>> {
    let name = entity.def.name.as_str();
    let readable = |f: &str| match entity.def.field(f) {
        Some(_) => v.access.can_read_field(name, f),
        None => crate::layouts::is_system_field(f),
    };
    if let Ok(form) = crate::layouts::forms::get(&v.ctx, &v.access, name, "default").await {
        let doc = Value::Object(form.document);
        let mut out = Vec::new();
        for section in doc["sections"].as_array().into_iter().flatten() {
            let columns = section["columns"].as_u64().unwrap_or(1);
            let slots: Vec<Slot> = section["fields"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|f| {
                    let field = f["field"].as_str()?;
                    readable(field).then(|| Slot {
                        name: field.to_owned(),
                        label: f.get("label").cloned(),
                        help: f.get("help").cloned(),
                        wide: entity
                            .def
                            .field(field)
                            .is_some_and(|d| d.kind == Kind::LongText)
                            || columns == 1,
                    })
                })
                .collect();
            if !slots.is_empty() {
                out.push((section.get("title").cloned(), columns, slots));
            }
        }
        if !out.is_empty() {
            return Ok(out);
        }
    }
    let slots = entity
        .def
        .fields
        .iter()
        .filter(|f| readable(f.name.as_str()))
        .map(|f| Slot {
            name: f.name.to_string(),
            label: None,
            help: f.schema.get("x-help").cloned(),
            wide: f.kind == Kind::LongText,
        })
        .collect();
    Ok(vec![(None, 2, slots)])
}

fn slot_label(v: &Viewer, entity: &CompiledEntity, slot: &Slot) -> String {
    match &slot.label {
        Some(l) => v
            .lang
            .label(Some(l), &shell::any_label(v, entity, &slot.name)),
        None => shell::any_label(v, entity, &slot.name),
    }
}

/// Server messages in the viewer's language where we know them.
pub fn message(v: &Viewer, text: &str) -> String {
    if v.lang.is_zh() {
        if text == "is required" || text.contains("is required") {
            return v.lang.strings["js"]["required"]
                .as_str()
                .unwrap_or(text)
                .to_owned();
        }
        if text.contains("not an email") {
            return v.lang.strings["js"]["email"]
                .as_str()
                .unwrap_or(text)
                .to_owned();
        }
    }
    text.to_owned()
}

struct FormSpec<'a> {
    target: &'a Target,
    values: &'a Value,
    errors: &'a [FieldError],
    record: Option<&'a Value>,
    status: StatusCode,
}

async fn render_form(v: &Viewer, headers: &HeaderMap, spec: FormSpec<'_>) -> Result<Response> {
    let entity = &spec.target.entity;
    let name = entity.def.name.as_str();
    let entity_label = v.lang.label(Some(&entity.def.label), name);
    let sections_def = sections(v, entity).await?;
    let mut names = Names::people(v).await?;
    let lookups: Vec<&FieldDef> = entity
        .def
        .fields
        .iter()
        .filter(|f| matches!(f.kind, Kind::Lookup | Kind::MultiLookup))
        .collect();
    names
        .load_lookups(
            v,
            &spec.target.catalog,
            entity,
            &lookups,
            std::slice::from_ref(spec.values),
        )
        .await?;
    let error_of = |field: &str| {
        spec.errors
            .iter()
            .find(|e| e.field == field || e.field.starts_with(&format!("{field}.")))
            .map(|e| message(v, &e.message))
    };
    let mut placed = Vec::new();
    let sections: Vec<Value> = sections_def
        .iter()
        .map(|(title, columns, slots)| {
            let fields: Vec<Value> = slots
                .iter()
                .filter(|s| spec.record.is_some() || !matches!(s.name.as_str(), "created_at" | "updated_at" | "created_by" | "version" | "id"))
                .map(|slot| {
                    placed.push(slot.name.clone());
                    let id = format!("f-{}", slot.name);
                    let error = error_of(&slot.name);
                    let value = spec.values.get(&slot.name).unwrap_or(&Value::Null);
                    let w = widget(v, &names, entity, &slot.name, value, &id, None, error.is_some());
                    json!({
                        "label": slot_label(v, entity, slot),
                        "required": entity.def.field(&slot.name).is_some_and(|f| f.required),
                        "help": slot.help.as_ref().map(|h| v.lang.label(Some(h), "")).filter(|h| !h.is_empty()),
                        "wide": slot.wide,
                        "error": error,
                        "w": w,
                    })
                })
                .collect();
            json!({
                "title": title.as_ref().map(|t| v.lang.label(Some(t), "")),
                "one": *columns == 1,
                "fields": fields,
            })
        })
        .collect();
    let errors: Vec<Value> = spec
        .errors
        .iter()
        .map(|e| {
            let field = e.field.split('.').next().unwrap_or_default();
            let on_form = placed.iter().any(|p| p == field);
            json!({
                "href": on_form.then(|| format!("#f-{field}")),
                "label": if on_form { shell::any_label(v, entity, field) } else { String::new() },
                "message": if on_form { message(v, &e.message) } else { format!("{}: {}", e.field, message(v, &e.message)) },
            })
        })
        .collect();
    let (heading, action, cancel, version, record_title, record_href) = match spec.record {
        Some(record) => {
            let id = record["id"].as_str().unwrap_or_default();
            let title = shell::record_title(entity, record);
            (
                v.f("edit_title", &[("name", &title)]),
                format!("/e/{name}/{id}/edit"),
                format!("/e/{name}/{id}"),
                record["version"].as_i64(),
                Some(title),
                Some(format!("/e/{name}/{id}")),
            )
        }
        None => (
            v.f("new_title", &[("entity", &entity_label)]),
            format!("/e/{name}"),
            format!("/e/{name}"),
            None,
            None,
            None,
        ),
    };
    // The duplicate warning: typing a title (or phone) someone else's record has shows it.
    let dupes = spec.record.is_none().then(|| {
        let mut watched: Vec<String> = shell::title_field(entity)
            .map(|f| format!("#f-{}", f.name))
            .into_iter()
            .collect();
        if let Some(phone) = entity.def.fields.iter().find(|f| f.kind == Kind::Phone) {
            watched.push(format!("#f-{}", phone.name));
        }
        let trigger: Vec<String> = watched.iter().map(|w| format!("change from:{w}")).collect();
        json!({"url": format!("/e/{name}/dupes"), "trigger": trigger.join(", "), "include": watched.join(", ")})
    });
    let mut data = shell::page(v, &spec.target.catalog, &heading, Some(name)).await?;
    merge(
        &mut data,
        json!({
            "dupes": dupes,
            "entity": shell::entity_json(v, entity),
            "heading": heading,
            "action": action,
            "cancel": cancel,
            "version": version,
            "record_title": record_title,
            "record_href": record_href,
            "sections": sections,
            "errors": errors,
            "errors_title": v.lang.f("fix_n", &[("n", &spec.errors.len().to_string())]),
        }),
    );
    let _ = headers;
    Ok(html(spec.status, render("form", &data)?))
}

/// `GET /e/{entity}/new?field=value`: the create form, prefilled from the URL (the "new"
/// buttons of related lists pass the lookup).
pub async fn new_page(
    v: Viewer,
    headers: HeaderMap,
    Path(entity): Path<String>,
    Query(pairs): Query<Pairs>,
) -> Response {
    let target = tri!(v, headers, shell::entity_target(&v, &entity).await);
    tri!(
        v,
        headers,
        v.access
            .require_action(target.entity.def.name.as_str(), Action::Create)
    );
    let mut values = Map::new();
    for field in &target.entity.def.fields {
        if let Some(raw) = param(&pairs, field.name.as_str()) {
            values.insert(
                field.name.to_string(),
                parse_value(field, &[raw.to_owned()], v.tz),
            );
        } else if let Some(default) = field.default.clone() {
            values.insert(field.name.to_string(), default);
        }
    }
    values.insert("owner".into(), json!(v.user_id));
    let values = Value::Object(values);
    let spec = FormSpec {
        target: &target,
        values: &values,
        errors: &[],
        record: None,
        status: StatusCode::OK,
    };
    tri!(v, headers, render_form(&v, &headers, spec).await)
}

fn form_names(entity: &CompiledEntity) -> Vec<String> {
    entity
        .def
        .fields
        .iter()
        .map(|f| f.name.to_string())
        .chain(["owner".to_owned(), "department".to_owned()])
        .collect()
}

fn problems(error: &Error) -> Option<Vec<FieldError>> {
    match error {
        Error::Invalid { errors, message } | Error::Conflict { errors, message } => {
            Some(if errors.is_empty() {
                vec![FieldError::new("", message.clone())]
            } else {
                errors.clone()
            })
        }
        Error::PreconditionFailed(m) => Some(vec![FieldError::new("", m.clone())]),
        _ => None,
    }
}

/// `POST /e/{entity}` (form): creates the record; a refused save shows the form again with
/// every problem on its field.
pub async fn create(
    v: Viewer,
    headers: HeaderMap,
    Path(entity): Path<String>,
    axum::Form(form): axum::Form<Pairs>,
) -> Response {
    let target = tri!(v, headers, shell::entity_target(&v, &entity).await);
    let names = form_names(&target.entity);
    let body = payload(&v, &target.entity, &form, &names);
    match write::create_one(&v.ctx, &v.access, Origin::Ui, &entity, &body).await {
        Ok(saved) => {
            let id = saved.record["id"].as_str().unwrap_or_default();
            let to = if param(&form, "then") == Some("new") {
                format!("/e/{entity}/new")
            } else {
                format!("/e/{entity}/{id}?m=created_msg")
            };
            Redirect::to(&to).into_response()
        }
        Err(error) => match problems(&error) {
            Some(errors) => {
                let spec = FormSpec {
                    target: &target,
                    values: &body,
                    errors: &errors,
                    record: None,
                    status: StatusCode::UNPROCESSABLE_ENTITY,
                };
                tri!(v, headers, render_form(&v, &headers, spec).await)
            }
            None => super::error_page(Some(&v), &headers, error),
        },
    }
}

/// `GET /e/{entity}/{id}/edit`.
pub async fn edit_page(
    v: Viewer,
    headers: HeaderMap,
    Path((entity, id)): Path<(String, String)>,
) -> Response {
    let target = tri!(v, headers, shell::entity_target(&v, &entity).await);
    let saved = tri!(
        v,
        headers,
        crate::records::service::get(&v.ctx, &v.access, &entity, &id, None, false).await
    );
    let spec = FormSpec {
        target: &target,
        values: &saved.record,
        errors: &[],
        record: Some(&saved.record),
        status: StatusCode::OK,
    };
    tri!(v, headers, render_form(&v, &headers, spec).await)
}

/// `POST /e/{entity}/{id}/edit` (form): saves the changes at the version the form was read at.
pub async fn update(
    v: Viewer,
    headers: HeaderMap,
    Path((entity, id)): Path<(String, String)>,
    axum::Form(form): axum::Form<Pairs>,
) -> Response {
    let target = tri!(v, headers, shell::entity_target(&v, &entity).await);
    let names = form_names(&target.entity);
    let body = payload(&v, &target.entity, &form, &names);
    let version = param(&form, "version").and_then(|s| s.parse::<i64>().ok());
    match write::update_one(&v.ctx, &v.access, Origin::Ui, &entity, &id, &body, version).await {
        Ok(_) => Redirect::to(&format!("/e/{entity}/{id}?m=saved")).into_response(),
        Err(error) => match problems(&error) {
            Some(errors) => {
                let saved = tri!(
                    v,
                    headers,
                    crate::records::service::get(&v.ctx, &v.access, &entity, &id, None, false)
                        .await
                );
                let mut values = saved.record.clone();
                merge(&mut values, body.clone());
                let spec = FormSpec {
                    target: &target,
                    values: &values,
                    errors: &errors,
                    record: Some(&saved.record),
                    status: StatusCode::UNPROCESSABLE_ENTITY,
                };
                tri!(v, headers, render_form(&v, &headers, spec).await)
            }
            None => super::error_page(Some(&v), &headers, error),
        },
    }
}

/// `GET /e/{entity}/lookup?q=`: options for a typeahead (records the viewer may read; `_users`
/// for people).
pub async fn lookup(
    v: Viewer,
    headers: HeaderMap,
    Path(entity): Path<String>,
    Query(pairs): Query<Pairs>,
) -> Response {
    let q = param(&pairs, "q").unwrap_or_default().trim().to_owned();
    let items: Vec<Value> = if entity == "_users" {
        let names = tri!(v, headers, Names::people(&v).await);
        let mut list: Vec<(String, String)> = names
            .users
            .into_iter()
            .filter(|(_, n)| q.is_empty() || n.to_lowercase().contains(&q.to_lowercase()))
            .collect();
        list.sort_by(|a, b| a.1.cmp(&b.1));
        list.into_iter()
            .take(10)
            .map(|(id, title)| json!({"id": id, "title": title}))
            .collect()
    } else {
        let target = tri!(v, headers, shell::entity_target(&v, &entity).await);
        let query = crate::records::list::ReadQuery {
            q: Some(&q),
            limit: 10,
            ..crate::records::list::ReadQuery::new(&target, &v.access)
        };
        let page = tri!(v, headers, query.page(&mut &v.ctx.db).await);
        let code = target
            .entity
            .def
            .fields
            .iter()
            .find(|f| f.kind == Kind::Autonumber)
            .map(|f| f.name.to_string());
        page.items
            .iter()
            .map(|r| {
                let sub = code
                    .as_ref()
                    .and_then(|c| r[c.as_str()].as_str())
                    .map(str::to_owned);
                json!({"id": r["id"], "title": shell::record_title(&target.entity, r), "sub": sub})
            })
            .collect()
    };
    super::rendered(&v, &headers, "options", &json!({"items": items}))
}

/// `GET /e/{entity}/dupes?name=…`: records that look like the one being typed in (same title
/// or phone), shown above the form before saving.
pub async fn dupes(
    v: Viewer,
    headers: HeaderMap,
    Path(entity): Path<String>,
    Query(pairs): Query<Pairs>,
) -> Response {
    let target = tri!(v, headers, shell::entity_target(&v, &entity).await);
    let quote = |s: &str| format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""));
    let mut tests = Vec::new();
    let mut fields: Vec<&FieldDef> = shell::title_field(&target.entity).into_iter().collect();
    fields.extend(
        target
            .entity
            .def
            .fields
            .iter()
            .filter(|f| f.kind == Kind::Phone)
            .take(1),
    );
    for f in fields {
        if let Some(value) = param(&pairs, f.name.as_str())
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            tests.push(format!("{} = {}", f.name, quote(value)));
        }
    }
    let items: Vec<Value> = if tests.is_empty() {
        Vec::new()
    } else {
        let filter = tests.join(" || ");
        let query = crate::records::list::ReadQuery {
            filter: Some(&filter),
            limit: 5,
            ..crate::records::list::ReadQuery::new(&target, &v.access)
        };
        let page = tri!(v, headers, query.page(&mut &v.ctx.db).await);
        page.items
            .iter()
            .map(|r| json!({
                "title": shell::record_title(&target.entity, r),
                "href": format!("/e/{entity}/{}", url_encode(r["id"].as_str().unwrap_or_default())),
            }))
            .collect()
    };
    super::rendered(
        &v,
        &headers,
        "dupes",
        &json!({"items": items, "s": v.lang.strings}),
    )
}
