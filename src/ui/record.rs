//! The one record page: the form's sections in read mode with click-to-edit values, key facts,
//! the stage path, related lists (every lookup pointing here), a timeline of changes and
//! related activity, and the record's actions (copy, delete, merge, run an automation). Also
//! the inline editors of table cells and record values, and their saves with `If-Match`.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{DateTime, Duration};
use serde_json::{Value, json};

use super::form::{self, payload, widget};
use super::list::{self, Pairs, RowSpec, merge, param};
use super::render::render;
use super::shell::{self, Names};
use super::{Viewer, html, tri, url_encode, with_toast};
use crate::api::AppState;
use crate::api::extract::if_match;
use crate::auth::{Action, Special};
use crate::error::{Error, Result};
use crate::events::Origin;
use crate::fields::Kind;
use crate::records::list::ReadQuery;
use crate::records::service::{self as records, Target};
use crate::records::write;
use crate::schema::compiled::CompiledEntity;

fn etag(mut response: Response, version: Option<i64>) -> Response {
    if let Some(v) = version
        && let Ok(value) = HeaderValue::from_str(&format!("\"{v}\""))
    {
        response.headers_mut().insert(header::ETAG, value);
    }
    response
}

/// Where an inline editor lives: a table row (of a view) or a value on the record page.
#[derive(Clone, Copy, PartialEq)]
enum Spot {
    Row,
    Dd,
}

fn spot(pairs: &Pairs) -> Spot {
    if param(pairs, "ctx") == Some("row") {
        Spot::Row
    } else {
        Spot::Dd
    }
}

/// The editor of one value: a form that PATCHes the record, with the widget of its kind.
#[allow(clippy::too_many_arguments)]
fn editor(
    v: &Viewer,
    names: &Names,
    entity: &CompiledEntity,
    record: &Value,
    field: &str,
    where_: Spot,
    view: &str,
    value: &Value,
) -> Value {
    let name = entity.def.name.as_str();
    let id = record["id"].as_str().unwrap_or_default();
    let ctx = if where_ == Spot::Row { "row" } else { "dd" };
    let label = shell::any_label(v, entity, field);
    let w = widget(
        v,
        names,
        entity,
        field,
        value,
        &format!("e-{id}-{field}"),
        Some(label),
        false,
    );
    json!({
        "action": format!("/e/{name}/{id}?ctx={ctx}&field={field}&view={}", url_encode(view)),
        "target": if where_ == Spot::Row { "closest tr" } else { "closest dd" },
        "widget": w,
    })
}

/// `GET /e/{entity}/{id}/cell/{field}?ctx=row|dd`: the inline editor of a value.
pub async fn cell_editor(
    v: Viewer,
    headers: HeaderMap,
    Path((entity, id, field)): Path<(String, String, String)>,
    Query(pairs): Query<Pairs>,
) -> Response {
    let target = tri!(v, headers, shell::entity_target(&v, &entity).await);
    if !list::editable(&v, &target.entity, &field) {
        return super::error_page(Some(&v), &headers, Error::Forbidden(String::new()));
    }
    let saved = tri!(
        v,
        headers,
        records::get(&v.ctx, &v.access, &entity, &id, None, false).await
    );
    let mut names = tri!(v, headers, Names::people(&v).await);
    let fields: Vec<_> = target.entity.def.field(&field).into_iter().collect();
    tri!(
        v,
        headers,
        names
            .load_lookups(
                &v,
                &target.catalog,
                &target.entity,
                &fields,
                std::slice::from_ref(&saved.record)
            )
            .await
    );
    let value = saved.record.get(&field).cloned().unwrap_or(Value::Null);
    let ed = editor(
        &v,
        &names,
        &target.entity,
        &saved.record,
        &field,
        spot(&pairs),
        param(&pairs, "view").unwrap_or_default(),
        &value,
    );
    match render("editor", &ed) {
        Ok(body) => etag(html(StatusCode::OK, body), Some(saved.version)),
        Err(e) => super::error_page(Some(&v), &headers, e),
    }
}

/// The row of a record in a list view (after an inline save, or to show the saved value).
async fn row_fragment(
    v: &Viewer,
    target: &Target,
    record: &Value,
    view_id: &str,
    editing: Option<(&str, Value)>,
    status: StatusCode,
) -> Result<Response> {
    let entity = &target.entity;
    let views = list::views(v, entity).await?;
    let view = views.iter().find(|view| view.id == view_id);
    let cols = list::columns(v, entity, view);
    let mut names = Names::people(v).await?;
    let fields: Vec<_> = cols.iter().filter_map(|c| entity.def.field(c)).collect();
    names
        .load_lookups(
            v,
            &target.catalog,
            entity,
            &fields,
            std::slice::from_ref(record),
        )
        .await?;
    let spec = RowSpec {
        entity,
        columns: &cols,
        view_id,
    };
    let mut row = list::row_json(v, &names, &spec, record);
    if let Some((field, ed)) = editing {
        let label = shell::any_label(v, entity, field);
        if let Some(cells) = row["cells"].as_array_mut() {
            for cell in cells.iter_mut() {
                if cell["label"] == json!(label) {
                    let class = format!(
                        "{} editing {}",
                        cell["class"].as_str().unwrap_or_default(),
                        if ed["conflict"].is_null() {
                            "cell-error"
                        } else {
                            "cell-conflict"
                        }
                    );
                    cell["class"] = json!(class);
                    cell["editor"] = ed.clone();
                }
            }
        }
    }
    let body = render("row", &row)?;
    Ok(etag(html(status, body), record["version"].as_i64()))
}

/// One value of the record page (`dd`), optionally in its editor.
async fn dd_fragment(
    v: &Viewer,
    target: &Target,
    record: &Value,
    field: &str,
    editing: Option<Value>,
    status: StatusCode,
) -> Result<Response> {
    let entity = &target.entity;
    let mut names = Names::people(v).await?;
    let fields: Vec<_> = entity.def.field(field).into_iter().collect();
    names
        .load_lookups(
            v,
            &target.catalog,
            entity,
            &fields,
            std::slice::from_ref(record),
        )
        .await?;
    let dd = dd_json(v, &names, entity, record, field, editing);
    let body = render("dd", &dd)?;
    Ok(etag(html(status, body), record["version"].as_i64()))
}

fn dd_json(
    v: &Viewer,
    names: &Names,
    entity: &CompiledEntity,
    record: &Value,
    field: &str,
    editing: Option<Value>,
) -> Value {
    let name = entity.def.name.as_str();
    let id = record["id"].as_str().unwrap_or_default();
    let edit =
        list::editable(v, entity, field).then(|| format!("/e/{name}/{id}/cell/{field}?ctx=dd"));
    json!({
        "edit": edit,
        "v": shell::display_any(v, names, entity, field, record),
        "editing": editing.is_some(),
        "editor": editing,
    })
}

/// `PATCH /e/{entity}/{id}?ctx=row|dd|path|move`: saves the posted fields with `If-Match`.
/// A refused save answers 422 with the editor still open and the reason; a stale version
/// answers 409 with the saved value beside the viewer's.
pub async fn patch(
    v: Viewer,
    headers: HeaderMap,
    Path((entity, id)): Path<(String, String)>,
    Query(pairs): Query<Pairs>,
    axum::Form(form): axum::Form<Pairs>,
) -> Response {
    let target = tri!(v, headers, shell::entity_target(&v, &entity).await);
    let expected = tri!(v, headers, if_match(&headers));
    let names: Vec<String> = form.iter().map(|(k, _)| k.clone()).collect();
    let body = payload(&v, &target.entity, &form, &names);
    let ctx = param(&pairs, "ctx").unwrap_or("dd");
    let view = param(&pairs, "view").unwrap_or_default();
    let field = param(&pairs, "field")
        .map(str::to_owned)
        .or_else(|| names.first().cloned())
        .unwrap_or_default();
    let result =
        write::update_one(&v.ctx, &v.access, Origin::Ui, &entity, &id, &body, expected).await;
    match (ctx, result) {
        ("path", Ok(saved)) => {
            let mut response = etag(StatusCode::NO_CONTENT.into_response(), Some(saved.version));
            response
                .headers_mut()
                .insert("hx-refresh", HeaderValue::from_static("true"));
            response
        }
        ("move", Ok(saved)) => with_toast(
            etag(StatusCode::NO_CONTENT.into_response(), Some(saved.version)),
            v.t("saved"),
            "ok",
        ),
        ("row", Ok(saved)) => {
            tri!(
                v,
                headers,
                row_fragment(&v, &target, &saved.record, view, None, StatusCode::OK).await
            )
        }
        (_, Ok(saved)) => with_toast(
            tri!(
                v,
                headers,
                dd_fragment(&v, &target, &saved.record, &field, None, StatusCode::OK).await
            ),
            v.t("saved"),
            "ok",
        ),
        ("row" | "dd", Err(error)) => {
            refused(&v, &headers, &target, &id, ctx, view, &field, &body, error).await
        }
        (_, Err(error)) => {
            // Kanban moves and the path bar: the message, as a toast (the card snaps back).
            let message = refusal_message(&v, &error);
            let status = match error {
                Error::Invalid { .. } => StatusCode::UNPROCESSABLE_ENTITY,
                Error::Forbidden(_) => StatusCode::FORBIDDEN,
                Error::NotFound(_) => StatusCode::NOT_FOUND,
                Error::PreconditionFailed(_) | Error::Conflict { .. } => StatusCode::CONFLICT,
                _ => return super::error_page(Some(&v), &headers, error),
            };
            with_toast((status, message.clone()).into_response(), &message, "error")
        }
    }
}

/// What to tell the user about a refused save, in words they can act on.
fn refusal_message(v: &Viewer, error: &Error) -> String {
    match error {
        Error::Invalid { message, errors } | Error::Conflict { message, errors } => {
            match errors.first() {
                Some(e) if !e.message.is_empty() => form::message(v, &e.message),
                _ => message.clone(),
            }
        }
        Error::Forbidden(m) => format!("{} {m}", v.t("forbidden")),
        Error::PreconditionFailed(_) => v.t("conflict").to_owned(),
        other => other.to_string(),
    }
}

#[allow(clippy::too_many_arguments)]
async fn refused(
    v: &Viewer,
    headers: &HeaderMap,
    target: &Target,
    id: &str,
    ctx: &str,
    view: &str,
    field: &str,
    body: &Value,
    error: Error,
) -> Response {
    let conflict = matches!(error, Error::PreconditionFailed(_));
    let (status, message) = match &error {
        Error::Invalid { .. } | Error::Conflict { .. } => {
            (StatusCode::UNPROCESSABLE_ENTITY, refusal_message(v, &error))
        }
        Error::PreconditionFailed(_) => (StatusCode::CONFLICT, v.t("conflict").to_owned()),
        Error::Forbidden(_) => (StatusCode::FORBIDDEN, refusal_message(v, &error)),
        _ => return super::error_page(Some(v), headers, error),
    };
    let current = match records::get(
        &v.ctx,
        &v.access,
        target.entity.def.name.as_str(),
        id,
        None,
        false,
    )
    .await
    {
        Ok(saved) => saved.record,
        Err(e) => return super::error_page(Some(v), headers, e),
    };
    let mut names = match Names::people(v).await {
        Ok(n) => n,
        Err(e) => return super::error_page(Some(v), headers, e),
    };
    let fields: Vec<_> = target.entity.def.field(field).into_iter().collect();
    let _ = names
        .load_lookups(
            v,
            &target.catalog,
            &target.entity,
            &fields,
            std::slice::from_ref(&current),
        )
        .await;
    let where_ = if ctx == "row" { Spot::Row } else { Spot::Dd };
    let mine = body.get(field).cloned().unwrap_or(Value::Null);
    let mut ed = editor(
        v,
        &names,
        &target.entity,
        &current,
        field,
        where_,
        view,
        &mine,
    );
    let name = target.entity.def.name.as_str();
    if conflict {
        ed["conflict"] = json!({
            "title": message,
            "their_label": v.t("their_value"),
            "your_label": v.t("your_value"),
            "theirs": shell::display_any(v, &names, &target.entity, field, &current),
            "yours": match &mine { Value::String(s) => s.clone(), Value::Null => String::new(), other => other.to_string() },
            "keep_mine": v.t("keep_mine"),
            "keep_theirs": v.t("keep_theirs"),
            "reload": format!("/e/{name}/{id}?ctx={ctx}&field={field}&view={}", url_encode(view)),
        });
    } else {
        ed["error"] = json!(message);
    }
    let response = if where_ == Spot::Row {
        row_fragment(v, target, &current, view, Some((field, ed)), status).await
    } else {
        dd_fragment(v, target, &current, field, Some(ed), status).await
    };
    match response {
        Ok(r) => r,
        Err(e) => super::error_page(Some(v), headers, e),
    }
}

/// `DELETE /e/{entity}/{id}`: to the trash, then back to the list.
pub async fn delete(
    v: Viewer,
    headers: HeaderMap,
    Path((entity, id)): Path<(String, String)>,
) -> Response {
    tri!(
        v,
        headers,
        write::delete_one(&v.ctx, &v.access, Origin::Ui, &entity, &id, None, false).await
    );
    let mut response = StatusCode::NO_CONTENT.into_response();
    if let Ok(to) = format!("/e/{entity}?m=moved_to_trash").parse() {
        response.headers_mut().insert("hx-redirect", to);
    }
    response
}

/// `POST /e/{entity}/{id}/copy`.
pub async fn copy(
    v: Viewer,
    headers: HeaderMap,
    Path((entity, id)): Path<(String, String)>,
) -> Response {
    let saved = tri!(
        v,
        headers,
        write::copy_one(&v.ctx, &v.access, Origin::Ui, &entity, &id, &json!({})).await
    );
    let new_id = saved.record["id"].as_str().unwrap_or_default();
    Redirect::to(&format!("/e/{entity}/{new_id}?m=copied")).into_response()
}

/// The stage field of a record page: the field its kanban view groups by, else a select named
/// like a stage.
async fn path_field(v: &Viewer, entity: &CompiledEntity) -> Option<String> {
    if let Ok(views) = list::views(v, entity).await
        && let Some(field) = views
            .iter()
            .filter(|view| view.kind == "kanban")
            .find_map(|view| view.doc["group_by"].as_str())
    {
        return Some(field.to_owned());
    }
    ["stage", "lifecycle_stage", "status"]
        .into_iter()
        .find(|n| entity.def.field(n).is_some_and(|f| f.kind == Kind::Select))
        .map(str::to_owned)
}

fn day_label(v: &Viewer, date: chrono::NaiveDate) -> String {
    let today = shell::today(v);
    if date == today {
        v.t("today").to_owned()
    } else if date == today - Duration::days(1) {
        v.t("yesterday").to_owned()
    } else {
        date.format("%Y-%m-%d").to_string()
    }
}

fn kind_icon(kind: &str) -> (&'static str, &'static str) {
    match kind {
        "call" => ("phone", "c-0969da"),
        "email" => ("mail", "c-0e8a7e"),
        "meeting" => ("video", "c-8250df"),
        "visit" => ("car", "c-bc4c00"),
        _ => ("message", "c-4f46e5"),
    }
}

/// `GET /e/{entity}/{id}`: the record page (or, for htmx, one row or value of it).
pub async fn page(
    State(app): State<AppState>,
    v: Viewer,
    headers: HeaderMap,
    Path((entity, id)): Path<(String, String)>,
    Query(pairs): Query<Pairs>,
) -> Response {
    let target = tri!(v, headers, shell::entity_target(&v, &entity).await);
    let saved = tri!(
        v,
        headers,
        records::get(&v.ctx, &v.access, &entity, &id, None, false).await
    );
    if super::session::is_fragment(&headers) {
        let field = param(&pairs, "field").unwrap_or_default();
        let fragment = match param(&pairs, "ctx") {
            Some("row") => {
                row_fragment(
                    &v,
                    &target,
                    &saved.record,
                    param(&pairs, "view").unwrap_or_default(),
                    None,
                    StatusCode::OK,
                )
                .await
            }
            Some("dd") => {
                dd_fragment(&v, &target, &saved.record, field, None, StatusCode::OK).await
            }
            _ => Err(Error::bad_request("unknown fragment")),
        };
        return tri!(v, headers, fragment);
    }
    let _ = app;
    tri!(
        v,
        headers,
        record_page(&v, &target, &saved.record, &pairs).await
    )
}

async fn record_page(
    v: &Viewer,
    target: &Target,
    record: &Value,
    pairs: &Pairs,
) -> Result<Response> {
    let entity = &target.entity;
    let name = entity.def.name.as_str();
    let id = record["id"].as_str().unwrap_or_default();
    let title = shell::record_title(entity, record);
    let sections_def = form::sections(v, entity).await?;
    let mut names = Names::people(v).await?;
    let lookups: Vec<_> = entity
        .def
        .fields
        .iter()
        .filter(|f| matches!(f.kind, Kind::Lookup | Kind::MultiLookup))
        .collect();
    names
        .load_lookups(
            v,
            &target.catalog,
            entity,
            &lookups,
            std::slice::from_ref(record),
        )
        .await?;
    let mut on_form: Vec<String> = Vec::new();
    let mut sections: Vec<Value> = sections_def
        .iter()
        .map(|(t, columns, slots)| {
            let fields: Vec<Value> = slots
                .iter()
                .map(|slot| {
                    on_form.push(slot.name.clone());
                    let label = match &slot.label {
                        Some(l) => v.lang.label(Some(l), &shell::any_label(v, entity, &slot.name)),
                        None => shell::any_label(v, entity, &slot.name),
                    };
                    let mut dd = dd_json(v, &names, entity, record, &slot.name, None);
                    merge(&mut dd, json!({"label": label, "wide": slot.wide}));
                    dd
                })
                .collect();
            json!({
                "title": t.as_ref().map(|t| v.lang.label(Some(t), "")).unwrap_or_else(|| v.t("details").to_owned()),
                "one": *columns == 1,
                "fields": fields,
            })
        })
        .collect();
    // Who and when, read-only, closes the details.
    let system: Vec<Value> = ["created_at", "updated_at", "created_by"]
        .iter()
        .filter(|n| !on_form.iter().any(|o| o == *n))
        .map(|n| json!({"label": shell::system_label(v, n), "v": shell::display_any(v, &names, entity, n, record)}))
        .collect();
    if let Some(last) = sections.last_mut()
        && let Some(fields) = last["fields"].as_array_mut()
    {
        fields.extend(system);
    }
    // Key facts: the first few selects, money and phone fields, and the owner.
    let mut facts: Vec<Value> = entity
        .def
        .fields
        .iter()
        .filter(|f| {
            matches!(f.kind, Kind::Select | Kind::Money | Kind::Phone)
                && v.access.can_read_field(name, f.name.as_str())
                && !record[f.name.as_str()].is_null()
        })
        .take(5)
        .map(|f| json!({"label": shell::field_label(v, f), "v": shell::display(v, &names, f, &record[f.name.as_str()])}))
        .collect();
    if !record["owner"].is_null() {
        facts.push(json!({"label": v.t("owner"), "v": shell::display_any(v, &names, entity, "owner", record)}));
    }
    let can_update = v.access.require_action(name, Action::Update).is_ok();
    let path = match path_field(v, entity).await {
        Some(field) if v.access.can_read_field(name, &field) => {
            let def = entity.def.field(&field);
            let current = record[field.as_str()].as_str().unwrap_or_default();
            let options = def.map(|d| shell::options(v, d)).unwrap_or_default();
            let at = options.iter().position(|(val, ..)| val == current);
            let steps: Vec<Value> = options
                .iter()
                .enumerate()
                .map(|(i, (val, label, _))| {
                    json!({
                        "value": val, "label": label,
                        "current": Some(i) == at, "done": at.is_some_and(|a| i < a),
                    })
                })
                .collect();
            Some(json!({
                "field": field,
                "label": def.map(|d| shell::field_label(v, d)).unwrap_or_default(),
                "steps": steps,
                "can": can_update && list::editable(v, entity, &field),
            }))
        }
        _ => None,
    };
    let sub: Vec<Value> = entity
        .def
        .fields
        .iter()
        .filter(|f| f.kind == Kind::Autonumber && v.access.can_read_field(name, f.name.as_str()))
        .filter_map(|f| record[f.name.as_str()].as_str())
        .map(|t| json!({"t": t, "mono": true}))
        .collect();
    let updated = record["updated_at"]
        .as_str()
        .map(|t| format!("{} {}", v.t("updated_at"), shell::format_datetime(v, t)))
        .unwrap_or_default();
    // Related lists and the activity that points here.
    let mut related = Vec::new();
    let mut activity = Vec::new();
    for (other, field, multi) in &entity.referrers {
        if *multi {
            continue;
        }
        let Ok(rel) = target.catalog.entity(other.as_str()) else {
            continue;
        };
        let rel_name = rel.def.name.as_str();
        if v.access.require_action(rel_name, Action::Read).is_err()
            || !v.access.can_read_field(rel_name, field.as_str())
            || (rel_name == name && field.as_str() != "parent")
        {
            continue;
        }
        let rel_target = Target {
            catalog: target.catalog.clone(),
            entity: rel.clone(),
        };
        let filter = format!("{field} = \"{id}\"");
        let when = rel.def.fields.iter().find(|f| {
            f.kind == Kind::Datetime && v.access.can_read_field(rel_name, f.name.as_str())
        });
        let sort = when
            .map(|f| format!("-{}", f.name))
            .unwrap_or_else(|| "-created_at".into());
        let query = ReadQuery {
            filter: Some(&filter),
            sort: Some(&sort),
            limit: 5,
            ..ReadQuery::new(&rel_target, &v.access)
        };
        let page = query.page(&mut &v.ctx.db).await?;
        let count = if page.next_cursor.is_some() {
            query.count(&mut &v.ctx.db).await?
        } else {
            page.items.len() as i64
        };
        let chip_field =
            rel.def.fields.iter().find(|f| {
                f.kind == Kind::Select && v.access.can_read_field(rel_name, f.name.as_str())
            });
        let money =
            rel.def.fields.iter().find(|f| {
                f.kind == Kind::Money && v.access.can_read_field(rel_name, f.name.as_str())
            });
        let date = rel.def.fields.iter().find(|f| {
            matches!(f.kind, Kind::Date | Kind::Phone)
                && v.access.can_read_field(rel_name, f.name.as_str())
        });
        let items: Vec<Value> = page
            .items
            .iter()
            .map(|r| {
                let rid = r["id"].as_str().unwrap_or_default();
                json!({
                    "href": format!("/e/{rel_name}/{rid}"),
                    "title": shell::record_title(&rel, r),
                    "sub": date.and_then(|f| r[f.name.as_str()].as_str().map(|s| format!("{} {s}", shell::field_label(v, f)))),
                    "chip": chip_field.map(|f| shell::display(v, &names, f, &r[f.name.as_str()])).filter(|c| c["empty"].is_null()),
                    "amount": money.and_then(|f| r[f.name.as_str()].as_str().map(|s| shell::format_number(f, s))),
                })
            })
            .collect();
        // Communication-like records (with a time and a kind) also make the timeline.
        if let Some(when) = when {
            let body_field = rel.def.fields.iter().find(|f| {
                f.kind == Kind::LongText && v.access.can_read_field(rel_name, f.name.as_str())
            });
            for r in &page.items {
                let at = r[when.name.as_str()]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
                let kind = r["kind"].as_str().unwrap_or_default();
                let (icon, color) = kind_icon(kind);
                let kind_label = rel
                    .def
                    .field("kind")
                    .map(|f| {
                        shell::display(v, &names, f, &r["kind"])["t"]
                            .as_str()
                            .unwrap_or_default()
                            .to_owned()
                    })
                    .unwrap_or_default();
                activity.push((at, json!({
                    "icon": icon, "color": color,
                    "who": r["owner"].as_str().and_then(|o| names.users.get(o)).cloned().unwrap_or_else(|| v.t("someone").to_owned()),
                    "what": if kind_label.is_empty() { v.lang.label(Some(&rel.def.label), rel_name) } else { kind_label },
                    "href": format!("/e/{rel_name}/{}", r["id"].as_str().unwrap_or_default()),
                    "link": shell::record_title(&rel, r),
                    "body": body_field.and_then(|f| r[f.name.as_str()].as_str()),
                })));
            }
        }
        let (icon, color) = shell::entity_look(rel_name);
        let rel_label = v.lang.label(Some(&rel.def.label), rel_name);
        let can_new = v.access.require_action(rel_name, Action::Create).is_ok()
            && v.access.field(rel_name, field.as_str())
                == crate::auth::permissions::FieldAccess::Write;
        related.push(json!({
            "label": rel_label, "icon": icon, "color": color, "count": count, "items": items,
            "new_href": can_new.then(|| format!("/e/{rel_name}/new?{field}={id}")),
            "new_label": v.f("new_title", &[("entity", &rel_label)]),
            "more": (count > 5).then(|| v.f("view_all_n", &[("n", &count.to_string())])),
            "all_href": format!("/e/{rel_name}?filter={}", url_encode(&filter)),
        }));
    }
    // The record's own history.
    let history = records::history(&v.ctx, &v.access, name, id, Some(30)).await?;
    for entry in history["items"].as_array().into_iter().flatten() {
        let at = entry["at"].as_str().unwrap_or_default().to_owned();
        let who = entry["actor"]
            .as_str()
            .and_then(|a| names.users.get(a))
            .cloned()
            .unwrap_or_else(|| v.t("system_actor").to_owned());
        let changes = entry["changes"].as_object().cloned().unwrap_or_default();
        let action = entry["action"].as_str().unwrap_or_default();
        let diffs: Vec<Value> = if action == "create" || action == "created" {
            Vec::new()
        } else {
            changes
                .iter()
                .take(6)
                .map(|(k, c)| {
                    let show = |val: &Value| match entity.def.field(k) {
                        Some(f) => shell::display(v, &names, f, val),
                        None => shell::display_system(v, &names, k, val),
                    };
                    json!({"label": shell::any_label(v, entity, k), "old": show(&c["old"]), "new": show(&c["new"])})
                })
                .collect()
        };
        let what = match action {
            "create" | "created" => v.t("created_record").to_owned(),
            "delete" | "deleted" | "trash" => v.t("deleted_record").to_owned(),
            "restore" | "restored" => v.t("restored_record").to_owned(),
            "merge" | "merged" => v.t("merged_record").to_owned(),
            _ => v.f("changed_n", &[("n", &changes.len().to_string())]),
        };
        activity.push((
            at,
            json!({
                "icon": if diffs.is_empty() { "plus" } else { "edit" },
                "color": "c-6e7781", "who": who, "what": what, "diffs": diffs,
            }),
        ));
    }
    activity.sort_by(|a, b| b.0.cmp(&a.0));
    let mut timeline = Vec::new();
    let mut last_day = None;
    for (at, mut item) in activity.into_iter().take(40) {
        let local = DateTime::parse_from_rfc3339(&at)
            .ok()
            .map(|t| t.with_timezone(&v.tz));
        if let Some(t) = local {
            let day = t.date_naive();
            if last_day != Some(day) {
                timeline.push(json!({"day": day_label(v, day)}));
                last_day = Some(day);
            }
            item["time"] = json!(t.format("%H:%M").to_string());
        }
        timeline.push(item);
    }
    // Manual automations of this entity (for those who manage automations).
    let automations: Vec<Value> = if v.access.has(Special::ManageAutomations) {
        crate::automation::service::list(&v.ctx, &v.access)
            .await?
            .items
            .into_iter()
            .filter(|a| a.trigger["type"] == "manual" && a.trigger["entity"] == json!(name))
            .map(|a| json!({"id": a.id, "name": a.name}))
            .collect()
    } else {
        Vec::new()
    };
    let log_new = ["communication", "follow_up"].iter().find_map(|other| {
        let rel = target.catalog.entity(other).ok()?;
        let field = rel
            .def
            .fields
            .iter()
            .find(|f| f.target.as_ref().is_some_and(|t| t.as_str() == name))?;
        v.access.require_action(other, Action::Create).ok()?;
        Some(json!({
            "href": format!("/e/{other}/new?{}={id}", field.name),
            "label": v.f("new_title", &[("entity", &v.lang.label(Some(&rel.def.label), other))]),
        }))
    });
    let mut data = shell::page(v, &target.catalog, &title, Some(name)).await?;
    merge(
        &mut data,
        json!({
            "entity": shell::entity_json(v, entity),
            "title": title,
            "href": format!("/e/{name}/{id}"),
            "version": record["version"],
            "sub": sub,
            "updated": updated,
            "tags": record["tags"],
            "facts": facts,
            "path": path,
            "sections": sections,
            "related": related,
            "timeline": timeline,
            "automations": automations,
            "log_new": log_new,
            "can_edit": can_update,
            "can_create": v.access.require_action(name, Action::Create).is_ok(),
            "can_delete": v.access.require_action(name, Action::Delete).is_ok(),
            "can_merge": v.access.has(Special::Merge),
            "confirm_delete": v.f("confirm_delete", &[("name", &title)]),
            "toast": list::toast(v, pairs),
        }),
    );
    Ok(html(StatusCode::OK, render("record", &data)?))
}

/// `GET /e/{entity}/{id}/merge?source=…`: pick duplicates, then choose per field which value
/// wins (a preview of the merged record).
pub async fn merge_page(
    v: Viewer,
    headers: HeaderMap,
    Path((entity, id)): Path<(String, String)>,
    Query(pairs): Query<Pairs>,
) -> Response {
    let target = tri!(v, headers, shell::entity_target(&v, &entity).await);
    tri!(v, headers, v.access.require(Special::Merge));
    let main = tri!(
        v,
        headers,
        records::get(&v.ctx, &v.access, &entity, &id, None, false).await
    );
    let mut sources = Vec::new();
    for (k, sid) in &pairs {
        if k == "source"
            && !sid.is_empty()
            && sid != &id
            && !sources.iter().any(|s: &Value| s["id"] == json!(sid))
            && let Ok(s) = records::get(&v.ctx, &v.access, &entity, sid, None, false).await
        {
            sources.push(s.record);
        }
    }
    let names = tri!(v, headers, Names::people(&v).await);
    let all: Vec<&Value> = std::iter::once(&main.record)
        .chain(sources.iter())
        .collect();
    let rows: Vec<Value> = target
        .entity
        .def
        .fields
        .iter()
        .filter(|f| list::editable(&v, &target.entity, f.name.as_str()))
        .filter(|f| all.iter().any(|r| r[f.name.as_str()] != main.record[f.name.as_str()]))
        .map(|f| {
            let choices: Vec<Value> = all
                .iter()
                .enumerate()
                .map(|(i, r)| json!({"id": r["id"], "checked": i == 0, "v": shell::display(&v, &names, f, &r[f.name.as_str()])}))
                .collect();
            json!({"field": f.name.as_str(), "label": shell::field_label(&v, f), "choices": choices})
        })
        .collect();
    let title = shell::record_title(&target.entity, &main.record);
    let heading = v.f("merge_title", &[("name", &title)]);
    let mut data = tri!(
        v,
        headers,
        shell::page(&v, &target.catalog, &heading, Some(&entity)).await
    );
    let sources: Vec<Value> = sources
        .iter()
        .map(|s| json!({"id": s["id"], "title": shell::record_title(&target.entity, s)}))
        .collect();
    merge(
        &mut data,
        json!({
            "entity": shell::entity_json(&v, &target.entity), "heading": heading, "title": title,
            "href": format!("/e/{entity}/{id}"), "sources": sources, "rows": rows,
        }),
    );
    super::rendered(&v, &headers, "merge", &data)
}

/// `POST /e/{entity}/{id}/merge` (form): merges the sources into the record.
pub async fn merge_post(
    v: Viewer,
    headers: HeaderMap,
    Path((entity, id)): Path<(String, String)>,
    axum::Form(form): axum::Form<Pairs>,
) -> Response {
    let sources: Vec<String> = form
        .iter()
        .filter(|(k, s)| k == "source" && !s.is_empty() && *s != id)
        .map(|(_, s)| s.clone())
        .collect();
    let mut take = serde_json::Map::new();
    for (k, s) in &form {
        if let Some(field) = k.strip_prefix("take.")
            && *s != id
        {
            take.insert(field.to_owned(), json!(s));
        }
    }
    let request = crate::records::bulk::MergeRequest {
        target: id.clone(),
        sources,
        take,
    };
    tri!(
        v,
        headers,
        crate::records::bulk::merge(&v.ctx, &v.access, Origin::Ui, &entity, &request).await
    );
    Redirect::to(&format!("/e/{entity}/{id}?m=merged_msg")).into_response()
}

/// `POST /e/{entity}/{id}/run` (form): runs a manual automation with the record as input.
pub async fn run_automation(
    State(app): State<AppState>,
    v: Viewer,
    headers: HeaderMap,
    Path((entity, id)): Path<(String, String)>,
    axum::Form(form): axum::Form<Pairs>,
) -> Response {
    let saved = tri!(
        v,
        headers,
        records::get(&v.ctx, &v.access, &entity, &id, None, false).await
    );
    let automation = param(&form, "automation").unwrap_or_default().to_owned();
    let body = crate::automation::service::RunBody {
        input: json!({"record": saved.record}),
        ..Default::default()
    };
    tri!(
        v,
        headers,
        crate::automation::service::run_now(&v.ctx, &app.scripts, &v.access, &automation, body)
            .await
    );
    Redirect::to(&format!("/e/{entity}/{id}?m=run_started")).into_response()
}
