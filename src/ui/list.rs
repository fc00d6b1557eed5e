//! The one list renderer: every entity's records as a table, from its saved views (columns,
//! filter, sort), with filter chips, quick search, cursor paging, money totals over the
//! filtered records, selection and bulk actions, inline editing, and the search palette.

use std::collections::{BTreeMap, BTreeSet};

use axum::extract::{Path, Query};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde_json::{Map, Value, json};

use super::render::render;
use super::shell::{self, Names};
use super::{Viewer, html, tri, url_encode};
use crate::auth::{Action, Special};
use crate::error::{Error, Result};
use crate::events::Origin;
use crate::fields::Kind;
use crate::records::bulk::{self as bulk_ops, BulkRequest, MAX_BULK, bulk_in};
use crate::records::list::ReadQuery;
use crate::records::service::Target;
use crate::records::write::Writer;
use crate::schema::compiled::{Catalog, CompiledEntity};

pub type Pairs = Vec<(String, String)>;

/// Rows per page.
pub const PAGE: i64 = 50;

pub fn param<'a>(pairs: &'a Pairs, name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// One saved view as the pages use it.
#[derive(Clone)]
pub struct View {
    pub id: String,
    pub kind: String,
    pub label: String,
    /// A personal view (else shared).
    pub owned: bool,
    pub doc: Value,
}

/// The viewer's views of an entity (shared and personal), in a stable order: shared first.
pub async fn views(v: &Viewer, entity: &CompiledEntity) -> Result<Vec<View>> {
    let listed =
        crate::layouts::views::list(&v.ctx, &v.access, Some(entity.def.name.as_str())).await?;
    let mut out: Vec<View> = listed
        .items
        .into_iter()
        .map(|shown| {
            let owned = shown.meta.owner.is_some();
            let doc = &shown.document;
            View {
                id: shown.meta.id.clone(),
                kind: doc
                    .get("kind")
                    .and_then(Value::as_str)
                    .unwrap_or("list")
                    .to_owned(),
                label: v.lang.label(
                    doc.get("label"),
                    doc.get("name").and_then(Value::as_str).unwrap_or_default(),
                ),
                owned,
                doc: Value::Object(shown.document),
            }
        })
        .collect();
    out.sort_by_key(|view| (view.owned, view.kind != "list"));
    Ok(out)
}

/// The columns of a list view: the view's, else the first readable fields.
pub fn columns(v: &Viewer, entity: &CompiledEntity, view: Option<&View>) -> Vec<String> {
    let name = entity.def.name.as_str();
    let readable = |c: &str| match entity.def.field(c) {
        Some(_) => v.access.can_read_field(name, c),
        None => crate::layouts::is_system_field(c),
    };
    let from_view: Vec<String> = view
        .and_then(|view| view.doc["columns"].as_array())
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .filter(|c| readable(c))
        .map(str::to_owned)
        .collect();
    if !from_view.is_empty() {
        return from_view;
    }
    let mut cols: Vec<String> = entity
        .def
        .fields
        .iter()
        .filter(|f| {
            !matches!(f.kind, Kind::LongText | Kind::MultiLookup)
                && v.access.can_read_field(name, f.name.as_str())
        })
        .take(6)
        .map(|f| f.name.to_string())
        .collect();
    cols.push("owner".into());
    cols
}

/// The CSS classes of a column's cells (numbers right-aligned; a few cells stay on phone cards).
fn cell_class(entity: &CompiledEntity, name: &str, index: usize, status_done: &mut bool) -> String {
    let mut classes = Vec::new();
    let kind = entity.def.field(name).map(|f| f.kind);
    if matches!(
        kind,
        Some(
            Kind::Integer
                | Kind::Decimal
                | Kind::Money
                | Kind::Percent
                | Kind::Date
                | Kind::Datetime
        )
    ) || matches!(name, "created_at" | "updated_at")
    {
        classes.push("num");
    }
    if kind == Some(Kind::Select) && !*status_done {
        *status_done = true;
        classes.push("card-status");
    } else if index < 3 {
        classes.push("card-field");
    }
    if kind == Some(Kind::Autonumber) {
        classes.push("mono muted");
    }
    classes.join(" ")
}

/// Whether a field can be edited in a cell (and by this viewer).
pub fn editable(v: &Viewer, entity: &CompiledEntity, name: &str) -> bool {
    entity.def.field(name).is_some_and(|f| {
        !f.is_computed()
            && !matches!(f.kind, Kind::MultiLookup | Kind::MultiSelect)
            && v.access.field(entity.def.name.as_str(), name)
                == crate::auth::permissions::FieldAccess::Write
    }) && v
        .access
        .require_action(entity.def.name.as_str(), Action::Update)
        .is_ok()
}

/// Everything a row needs to render.
pub struct RowSpec<'a> {
    pub entity: &'a CompiledEntity,
    pub columns: &'a [String],
    pub view_id: &'a str,
}

/// One record as a table row.
pub fn row_json(v: &Viewer, names: &Names, spec: &RowSpec, record: &Value) -> Value {
    let entity = spec.entity;
    let name = entity.def.name.as_str();
    let id = record["id"].as_str().unwrap_or_default();
    let title = shell::record_title(entity, record);
    let title_field = shell::title_field(entity).map(|f| f.name.to_string());
    let mut status_done = false;
    let cells: Vec<Value> = spec
        .columns
        .iter()
        .filter(|c| Some(c.as_str()) != title_field.as_deref())
        .enumerate()
        .map(|(i, c)| {
            let edit = editable(v, entity, c).then(|| {
                format!(
                    "/e/{name}/{id}/cell/{c}?ctx=row&view={}",
                    url_encode(spec.view_id)
                )
            });
            json!({
                "label": shell::any_label(v, entity, c),
                "class": cell_class(entity, c, i, &mut status_done),
                "edit": edit,
                "v": shell::display_any(v, names, entity, c, record),
            })
        })
        .collect();
    json!({
        "id": id,
        "version": record["version"],
        "href": format!("/e/{name}/{id}"),
        "title": title,
        "title_label": title_field.as_deref().map_or_else(String::new, |f| shell::any_label(v, entity, f)),
        "select_label": v.f("select_row", &[("name", &title)]),
        "cells": cells,
    })
}

/// Splits a filter at its top-level `&&` (outside quotes, brackets and parentheses).
pub fn terms(filter: &str) -> Vec<String> {
    let mut out = Vec::new();
    let (mut depth, mut quote, mut start) = (0i32, None::<char>, 0usize);
    let chars: Vec<(usize, char)> = filter.char_indices().collect();
    let mut i = 0;
    while i < chars.len() {
        let (pos, c) = chars[i];
        match (quote, c) {
            (Some(q), '\\') if q != '\0' => i += 1,
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(c),
            (None, '(' | '[') => depth += 1,
            (None, ')' | ']') => depth -= 1,
            (None, '&') if depth == 0 && chars.get(i + 1).map(|x| x.1) == Some('&') => {
                out.push(filter[start..pos].trim().to_owned());
                start = pos + 2;
                i += 1;
            }
            _ => {}
        }
        i += 1;
    }
    out.push(filter[start..].trim().to_owned());
    out.retain(|t| !t.is_empty());
    out
}

/// A chip for one filter term: field label, operator, value label when the term is simple;
/// the term itself otherwise.
fn chip(v: &Viewer, names: &Names, entity: &CompiledEntity, term: &str) -> Value {
    let ops = ["!=", ">=", "<=", "!~", "=", ">", "<", "~", " in "];
    for op in ops {
        if let Some((left, right)) = term.split_once(op) {
            let field = left.trim();
            let raw = right.trim();
            let Some(def) = entity.def.field(field) else {
                break;
            };
            let unquoted = raw.trim_matches('"').trim_matches('\'');
            let value = match (def.kind, op) {
                (Kind::Select, "=" | "!=") => {
                    shell::display(v, names, def, &Value::String(unquoted.to_owned()))
                }
                _ => json!({"t": unquoted}),
            };
            let op_label = match op {
                "~" => v.lang.strings["js"]["op_contains"]
                    .as_str()
                    .unwrap_or("~")
                    .to_owned(),
                _ => op.trim().to_owned(),
            };
            return json!({
                "expr": term, "k": shell::field_label(v, def), "op": op_label, "v": value,
            });
        }
    }
    json!({"expr": term, "k": term, "v": {"t": ""}})
}

/// The filter builder's fields: what app.js offers per kind.
fn filter_fields(v: &Viewer, entity: &CompiledEntity) -> Vec<Value> {
    let name = entity.def.name.as_str();
    entity
        .def
        .fields
        .iter()
        .filter(|f| v.access.can_read_field(name, f.name.as_str()))
        .filter_map(|f| {
            let (kind, icon) = match f.kind {
                Kind::Text | Kind::LongText | Kind::Email | Kind::Phone | Kind::Url => {
                    ("text", "file-text")
                }
                Kind::Autonumber => ("text", "file-text"),
                Kind::Integer | Kind::Decimal | Kind::Percent => ("number", "sliders"),
                Kind::Money => ("money", "receipt"),
                Kind::Date | Kind::Datetime => ("date", "calendar"),
                Kind::Select => ("select", "tag"),
                Kind::Boolean => ("boolean", "check"),
                Kind::Lookup => ("lookup", "link"),
                Kind::User => ("user", "user"),
                _ => return None,
            };
            let options = (f.kind == Kind::Select).then(|| {
                let list: Vec<Value> = shell::options(v, f)
                    .into_iter()
                    .map(|(val, label, class)| json!([val, label, class.trim_start_matches("c-")]))
                    .collect();
                Value::Array(list).to_string()
            });
            let url = match (f.kind, &f.target) {
                (Kind::Lookup, Some(t)) => Some(format!("/e/{t}/lookup")),
                (Kind::User, _) => Some("/e/_users/lookup".to_owned()),
                _ => None,
            };
            Some(json!({
                "name": f.name.as_str(), "kind": kind, "icon": icon,
                "label": shell::field_label(v, f), "options": options, "url": url,
            }))
        })
        .collect()
}

/// The state of a list page, from its URL.
pub struct ListState {
    pub view: Option<View>,
    pub views: Vec<View>,
    pub filter: String,
    pub sort: String,
    pub q: String,
}

pub async fn state(v: &Viewer, entity: &CompiledEntity, pairs: &Pairs) -> Result<ListState> {
    let views = views(v, entity).await?;
    let view = match param(pairs, "view") {
        Some(id) => views.iter().find(|view| view.id == id).cloned(),
        None => views.iter().find(|view| view.kind == "list").cloned(),
    };
    let filter = match param(pairs, "filter") {
        Some(f) => f.to_owned(),
        None => view
            .as_ref()
            .and_then(|view| view.doc["filter"].as_str())
            .unwrap_or_default()
            .to_owned(),
    };
    let sort = match param(pairs, "sort") {
        Some(s) => s.to_owned(),
        None => view
            .as_ref()
            .and_then(|view| view.doc["sort"].as_str())
            .unwrap_or_default()
            .to_owned(),
    };
    Ok(ListState {
        view,
        views,
        filter,
        sort,
        q: param(pairs, "q").unwrap_or_default().to_owned(),
    })
}

/// The URL of a list with some state.
pub fn list_url(entity: &str, view: Option<&str>, filter: &str, sort: &str, q: &str) -> String {
    let mut parts = Vec::new();
    if let Some(view) = view.filter(|v| !v.is_empty()) {
        parts.push(format!("view={}", url_encode(view)));
    }
    parts.push(format!("filter={}", url_encode(filter)));
    if !sort.is_empty() {
        parts.push(format!("sort={}", url_encode(sort)));
    }
    if !q.is_empty() {
        parts.push(format!("q={}", url_encode(q)));
    }
    format!("/e/{entity}?{}", parts.join("&"))
}

struct Loaded {
    rows: Vec<Value>,
    next: Option<String>,
    error: Option<String>,
    records: Vec<Value>,
    names: Names,
}

async fn load(
    v: &Viewer,
    target: &Target,
    st: &ListState,
    cols: &[String],
    cursor: Option<&str>,
) -> Result<Loaded> {
    let entity = &target.entity;
    let query = ReadQuery {
        filter: Some(&st.filter),
        q: Some(&st.q),
        sort: Some(&st.sort),
        cursor,
        limit: PAGE,
        ..ReadQuery::new(target, &v.access)
    };
    let (records, next, error) = match query.page(&mut &v.ctx.db).await {
        Ok(page) => (page.items, page.next_cursor, None),
        Err(Error::BadRequest { message, .. }) => (Vec::new(), None, Some(message)),
        Err(other) => return Err(other),
    };
    let mut names = Names::people(v).await?;
    let fields: Vec<_> = cols
        .iter()
        .filter_map(|c| entity.def.field(c))
        .chain(shell::title_field(entity))
        .collect();
    names
        .load_lookups(v, &target.catalog, entity, &fields, &records)
        .await?;
    let view_id = st.view.as_ref().map_or("", |view| view.id.as_str());
    let spec = RowSpec {
        entity,
        columns: cols,
        view_id,
    };
    let rows = records
        .iter()
        .map(|r| row_json(v, &names, &spec, r))
        .collect();
    Ok(Loaded {
        rows,
        next,
        error,
        records,
        names,
    })
}

fn more_json(v: &Viewer, entity: &str, st: &ListState, shown: usize, next: Option<&str>) -> Value {
    let view = st.view.as_ref().map(|view| view.id.as_str());
    let next = next.map(|cursor| {
        let base = list_url(entity, view, &st.filter, &st.sort, &st.q);
        format!(
            "{}&cursor={}&shown={shown}",
            base.replacen(&format!("/e/{entity}?"), &format!("/e/{entity}/rows?"), 1),
            url_encode(cursor)
        )
    });
    json!({"shown": v.f("shown_n", &[("n", &shown.to_string())]), "next": next, "s": v.lang.strings})
}

/// `GET /e/{entity}`: the list (or the board or calendar of a view of that kind).
pub async fn page(
    v: Viewer,
    headers: HeaderMap,
    Path(entity): Path<String>,
    Query(pairs): Query<Pairs>,
) -> Response {
    let target = tri!(v, headers, shell::entity_target(&v, &entity).await);
    let st = tri!(v, headers, state(&v, &target.entity, &pairs).await);
    match st.view.as_ref().map(|view| view.kind.as_str()) {
        Some("kanban") => return super::board::kanban(v, headers, target, st, &pairs).await,
        Some("calendar") => return super::board::calendar(v, headers, target, st, &pairs).await,
        _ => {}
    }
    tri!(
        v,
        headers,
        list_page(&v, &target, st, &pairs)
            .await
            .map(|body| html(StatusCode::OK, body))
    )
}

/// The module (template) title an entity belongs to, for the crumbs.
pub fn module_of(v: &Viewer, catalog: &Catalog, entity: &str) -> String {
    catalog
        .modules
        .iter()
        .find(|m| m.entities.iter().any(|e| e == entity))
        .map(|m| v.lang.label(m.title.as_ref(), &m.name))
        .unwrap_or_else(|| v.t("my_entities").to_owned())
}

/// The view tabs of an entity's pages.
pub fn view_tabs(v: &Viewer, entity: &str, st: &ListState) -> Vec<Value> {
    let current = st.view.as_ref().map(|view| view.id.as_str());
    let mut tabs: Vec<Value> = st
        .views
        .iter()
        .map(|view| {
            let icon = match view.kind.as_str() {
                "kanban" => Some("kanban"),
                "calendar" => Some("calendar"),
                _ => None,
            };
            json!({
                "label": view.label,
                "href": format!("/e/{entity}?view={}", url_encode(&view.id)),
                "current": Some(view.id.as_str()) == current,
                "icon": icon,
            })
        })
        .collect();
    if tabs.is_empty() {
        tabs.push(
            json!({"label": v.t("all_records"), "href": format!("/e/{entity}"), "current": true}),
        );
    }
    tabs
}

async fn list_page(v: &Viewer, target: &Target, st: ListState, pairs: &Pairs) -> Result<String> {
    let entity = &target.entity;
    let name = entity.def.name.as_str();
    let cols = columns(v, entity, st.view.as_ref());
    let loaded = load(v, target, &st, &cols, None).await?;
    let view_id = st.view.as_ref().map(|view| view.id.clone());
    let entity_label = v.lang.label(Some(&entity.def.label), name);
    // Headers: the title column, then the rest; each sorts by itself on a click.
    let header_cols = header_columns(entity, &cols);
    let headers: Vec<Value> = header_cols
        .iter()
        .map(|c| {
            let sortable = entity
                .def
                .field(c)
                .is_some_and(|f| f.column_type().is_some())
                || matches!(c.as_str(), "created_at" | "updated_at");
            let (state, next, icon) = if st.sort == *c {
                ("ascending", format!("-{c}"), "sort-asc")
            } else if st.sort == format!("-{c}") {
                ("descending", c.clone(), "sort-desc")
            } else {
                ("none", c.clone(), "sort-asc")
            };
            let label = shell::any_label(v, entity, c);
            let num = entity.def.field(c).is_some_and(|f| {
                matches!(
                    f.kind,
                    Kind::Integer | Kind::Decimal | Kind::Money | Kind::Percent
                )
            });
            json!({
                "label": label,
                "num": num,
                "sort": sortable.then_some(state),
                "sort_icon": icon,
                "sort_label": v.f("sort_by", &[("field", &label)]),
                "href": sortable.then(|| list_url(name, view_id.as_deref(), &st.filter, &next, &st.q)),
            })
        })
        .collect();
    let money = money_columns(entity, &header_cols);
    let (totals, totals_href) =
        if money.is_empty() || loaded.error.is_some() || loaded.rows.is_empty() {
            (Value::Null, None)
        } else if loaded.next.is_none() {
            (totals_row(v, target, &st, &header_cols).await?, None)
        } else {
            // A sum over every matching record may read the whole table: the page goes first
            // and the totals row follows in a request of its own.
            let url = list_url(name, view_id.as_deref(), &st.filter, &st.sort, &st.q).replacen(
                &format!("/e/{name}?"),
                &format!("/e/{name}/totals?"),
                1,
            );
            (Value::Null, Some(url))
        };
    let pending_totals: Vec<Value> = header_cols
        .iter()
        .map(|c| json!({"money": money.contains(&c.as_str())}))
        .collect();
    let chips: Vec<Value> = terms(&st.filter)
        .iter()
        .map(|t| chip(v, &loaded.names, entity, t))
        .collect();
    let can_create = v.access.require_action(name, Action::Create).is_ok();
    let can_bulk = v.access.has(Special::Bulk);
    let export_href = v
        .access
        .has(Special::Export)
        .then(|| export_url(name, view_id.as_deref(), &st));
    let users: Vec<Value> = {
        let mut list: Vec<(&String, &String)> = loaded.names.users.iter().collect();
        list.sort_by(|a, b| a.1.cmp(b.1));
        list.into_iter()
            .map(|(id, n)| json!({"value": id, "label": n}))
            .collect()
    };
    let bulk_fields: Vec<Value> = entity
        .def
        .fields
        .iter()
        .filter(|f| editable(v, entity, f.name.as_str()) && !f.unique)
        .map(|f| json!({"name": f.name.as_str(), "label": shell::field_label(v, f)}))
        .collect();
    let tags = crate::store::tags::names(&mut &v.ctx.db).await?;
    let shown = loaded.rows.len();
    let mut data = shell::page(v, &target.catalog, &entity_label, Some(name)).await?;
    let more = more_json(v, name, &st, shown, loaded.next.as_deref());
    let extra = json!({
        "fill": true,
        "entity": shell::entity_json(v, entity),
        "module": module_of(v, &target.catalog, name),
        "new_label": v.f("new_title", &[("entity", &entity_label)]),
        "views": view_tabs(v, name, &st),
        "view_id": view_id,
        "filter": st.filter,
        "sort": st.sort,
        "q": st.q,
        "chips": chips,
        "filter_fields": filter_fields(v, entity),
        "headers": headers,
        "rows": loaded.rows,
        "totals": totals,
        "totals_href": totals_href,
        "pending_totals": pending_totals,
        "shown": more["shown"],
        "next": more["next"],
        "error": loaded.error,
        "can_create": can_create,
        "can_bulk": can_bulk,
        "export_href": export_href,
        "can_import": v.access.has(Special::Import) && can_create,
        "more_than_page": loaded.next.is_some(),
        "matching_label": v.t("all_records"),
        "users": users,
        "bulk_fields": bulk_fields,
        "tags": tags,
        "save_view": true,
        "columns": cols.join(","),
        "toast": toast(v, pairs),
    });
    merge(&mut data, extra);
    let _ = loaded.records;
    render("list", &data)
}

/// The export of what the list shows (its view's columns, the filter, search and sort) as
/// a workbook.
/// The columns of a list in order: the title column, then the view's others.
fn header_columns(entity: &CompiledEntity, cols: &[String]) -> Vec<String> {
    let title_field = shell::title_field(entity).map(|f| f.name.to_string());
    let mut header_cols = vec![title_field.clone().unwrap_or_else(|| "id".into())];
    header_cols.extend(
        cols.iter()
            .filter(|c| Some(c.as_str()) != title_field.as_deref())
            .cloned(),
    );
    header_cols
}

/// The money columns among a list's columns (those that get a total).
fn money_columns<'a>(entity: &CompiledEntity, header_cols: &'a [String]) -> Vec<&'a str> {
    header_cols
        .iter()
        .filter(|c| {
            entity
                .def
                .field(c)
                .is_some_and(|f| f.kind == Kind::Money && f.column_type().is_some())
        })
        .map(String::as_str)
        .collect()
}

/// Totals of the money columns over every record the list matches: one aggregate statement,
/// through the caller's read scope. One cell per column (empty where there is no money).
async fn totals_row(
    v: &Viewer,
    target: &Target,
    st: &ListState,
    header_cols: &[String],
) -> Result<Value> {
    let entity = &target.entity;
    let money = money_columns(entity, header_cols);
    let query = ReadQuery {
        filter: Some(&st.filter),
        q: Some(&st.q),
        ..ReadQuery::new(target, &v.access)
    };
    let condition = query.matching()?;
    let columns: Vec<_> = money
        .iter()
        .filter_map(|c| {
            let f = entity.def.field(c)?;
            Some((crate::store::Ident::column(&f.name), f.column_type()?))
        })
        .collect();
    let sums = crate::store::query::sums(
        &mut &v.ctx.db,
        &entity.layout.table,
        &columns,
        &condition,
        false,
    )
    .await?;
    let mut cells = Vec::new();
    for c in header_cols {
        match money.iter().position(|m| *m == c.as_str()) {
            Some(i) => {
                let f = entity.def.field(c);
                let value = sums
                    .get(i)
                    .cloned()
                    .map(crate::fields::stored_to_json)
                    .unwrap_or(Value::Null);
                let text = match (f, value) {
                    (Some(f), Value::String(s)) => shell::format_number(f, &s),
                    (Some(f), Value::Number(n)) => shell::format_number(f, &n.to_string()),
                    (Some(f), _) => shell::format_number(f, "0"),
                    _ => String::new(),
                };
                let label = v.f("total_of", &[("field", &shell::any_label(v, entity, c))]);
                cells.push(json!({"t": text, "label": label}));
            }
            None => cells.push(json!({})),
        }
    }
    Ok(Value::Array(cells))
}

/// `GET /e/{entity}/totals?…`: the totals row of a list, asked for by the page once shown.
pub async fn totals(
    v: Viewer,
    headers: HeaderMap,
    Path(entity): Path<String>,
    Query(pairs): Query<Pairs>,
) -> Response {
    let target = tri!(v, headers, shell::entity_target(&v, &entity).await);
    let st = tri!(v, headers, state(&v, &target.entity, &pairs).await);
    let cols = columns(&v, &target.entity, st.view.as_ref());
    let header_cols = header_columns(&target.entity, &cols);
    let totals = tri!(v, headers, totals_row(&v, &target, &st, &header_cols).await);
    super::rendered(&v, &headers, "totals", &json!({ "totals": totals }))
}

fn export_url(entity: &str, view: Option<&str>, st: &ListState) -> String {
    let mut url = format!("/api/records/{entity}/export?format=xlsx");
    for (name, value) in [
        ("view", view.unwrap_or_default()),
        ("filter", st.filter.as_str()),
        ("sort", st.sort.as_str()),
        ("q", st.q.as_str()),
    ] {
        if !value.is_empty() {
            url.push_str(&format!("&{name}={}", super::url_encode(value)));
        }
    }
    url
}

/// A toast named by the URL after a redirect (`?m=saved`): only known keys, never raw text.
pub fn toast(v: &Viewer, pairs: &Pairs) -> Option<String> {
    let key = param(pairs, "m")?;
    let allowed = [
        "saved",
        "created_msg",
        "copied",
        "moved_to_trash",
        "restored",
        "erased",
        "merged_msg",
        "view_saved",
        "run_started",
        "bulk_done",
        "bulk_deleted",
    ];
    if !allowed.contains(&key) {
        return None;
    }
    let n = param(pairs, "n")
        .and_then(|n| n.parse::<u64>().ok())
        .unwrap_or(0);
    Some(v.f(key, &[("n", &n.to_string())]))
}

pub fn merge(data: &mut Value, extra: Value) {
    if let (Some(map), Value::Object(more)) = (data.as_object_mut(), extra) {
        map.extend(more);
    }
}

/// `GET /e/{entity}/rows?…&cursor=`: the next page of rows, and the new "load more".
pub async fn rows(
    v: Viewer,
    headers: HeaderMap,
    Path(entity): Path<String>,
    Query(pairs): Query<Pairs>,
) -> Response {
    let target = tri!(v, headers, shell::entity_target(&v, &entity).await);
    let st = tri!(v, headers, state(&v, &target.entity, &pairs).await);
    let cols = columns(&v, &target.entity, st.view.as_ref());
    let loaded = tri!(
        v,
        headers,
        load(&v, &target, &st, &cols, param(&pairs, "cursor")).await
    );
    let before: usize = param(&pairs, "shown")
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    let shown = before + loaded.rows.len();
    let mut more = more_json(&v, &entity, &st, shown, loaded.next.as_deref());
    merge(&mut more, json!({"rows": loaded.rows, "oob": true}));
    super::rendered(&v, &headers, "rows", &more)
}

/// `POST /e/{entity}/views`: the current columns, filter and sort as a personal view.
pub async fn save_view(
    v: Viewer,
    headers: HeaderMap,
    Path(entity): Path<String>,
    axum::Form(form): axum::Form<Pairs>,
) -> Response {
    let label = param(&form, "label").unwrap_or_default().trim().to_owned();
    let label = if label.is_empty() {
        v.t("save_view").to_owned()
    } else {
        label
    };
    let columns: Vec<&str> = param(&form, "columns")
        .unwrap_or_default()
        .split(',')
        .filter(|c| !c.is_empty())
        .collect();
    let mut body = json!({
        "entity": entity,
        "name": format!("my_{}", uuid::Uuid::now_v7().simple()),
        "label": {v.lang.code: label},
        "kind": "list",
        "shared": false,
        "columns": columns,
    });
    for key in ["filter", "sort"] {
        if let Some(value) = param(&form, key).filter(|s| !s.is_empty()) {
            body[key] = json!(value);
        }
    }
    let saved = tri!(
        v,
        headers,
        crate::layouts::views::create(&v.ctx, &v.access, &body).await
    );
    let id = saved.meta.id.as_str();
    Redirect::to(&format!("/e/{entity}?view={}&m=view_saved", url_encode(id))).into_response()
}

/// `POST /e/{entity}/bulk?op=`: a bulk action on the selected rows (or every record matching
/// the filter): delete, change a field, assign an owner, add or remove a tag.
pub async fn bulk_action(v: &Viewer, entity: &str, op: &str, form: &Pairs) -> Result<usize> {
    let target = shell::entity_target(v, entity).await?;
    let ids: Vec<String> = if param(form, "all_matching") == Some("1") {
        let filter = param(form, "filter").unwrap_or_default();
        let q = param(form, "q").unwrap_or_default();
        let query = ReadQuery {
            filter: Some(filter),
            q: Some(q),
            ..ReadQuery::new(&target, &v.access)
        };
        query.ids(&mut &v.ctx.db, MAX_BULK).await?
    } else {
        form.iter()
            .filter(|(k, val)| k == "id" && uuid::Uuid::parse_str(val).is_ok())
            .map(|(_, val)| val.clone())
            .collect()
    };
    if ids.is_empty() {
        return Ok(0);
    }
    let id_filter = |ids: &[String]| {
        let list: Vec<String> = ids.iter().map(|i| format!("\"{i}\"")).collect();
        format!("id in [{}]", list.join(", "))
    };
    let request = |action: &str, set: Option<Value>| BulkRequest {
        filter: id_filter(&ids),
        action: action.to_owned(),
        set,
    };
    let n = ids.len();
    match op {
        "delete" => {
            bulk_ops::bulk(
                &v.ctx,
                &v.access,
                Origin::Ui,
                entity,
                &request("delete", None),
            )
            .await?;
        }
        "owner" => {
            let owner = param(form, "owner").unwrap_or_default();
            let set = json!({"owner": owner});
            bulk_ops::bulk(
                &v.ctx,
                &v.access,
                Origin::Ui,
                entity,
                &request("update", Some(set)),
            )
            .await?;
        }
        "set" => {
            let field = param(form, "field").unwrap_or_default();
            let def = target
                .entity
                .def
                .field(field)
                .filter(|_| editable(v, &target.entity, field))
                .ok_or_else(|| Error::invalid_field("field", "cannot be changed in bulk"))?;
            let raw = param(form, "value").unwrap_or_default();
            let value = super::form::parse_value(def, &[raw.to_owned()], v.tz);
            let mut set = Map::new();
            set.insert(field.to_owned(), value);
            bulk_ops::bulk(
                &v.ctx,
                &v.access,
                Origin::Ui,
                entity,
                &request("update", Some(Value::Object(set))),
            )
            .await?;
        }
        "add_tag" | "remove_tag" => {
            let tag = param(form, "tag").unwrap_or_default().trim().to_owned();
            if tag.is_empty() {
                return Err(Error::invalid_field("tag", "is required"));
            }
            // Records differ in their tags: group them by their new set of tags, then one
            // bulk change per group, all in one transaction.
            let mut groups: BTreeMap<Vec<String>, Vec<String>> = BTreeMap::new();
            for chunk in ids.chunks(500) {
                let filter = id_filter(chunk);
                let query = ReadQuery {
                    filter: Some(&filter),
                    fields: Some("tags"),
                    limit: chunk.len() as i64,
                    ..ReadQuery::new(&target, &v.access)
                };
                for record in query.page(&mut &v.ctx.db).await?.items {
                    let mut set: BTreeSet<String> = record["tags"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|t| t.as_str().map(str::to_owned))
                        .collect();
                    let changed = if op == "add_tag" {
                        set.insert(tag.clone())
                    } else {
                        set.remove(&tag)
                    };
                    if changed && let Some(id) = record["id"].as_str() {
                        groups
                            .entry(set.into_iter().collect())
                            .or_default()
                            .push(id.to_owned());
                    }
                }
            }
            let w = Writer::new(&v.ctx, &v.access, Origin::Ui).await?;
            let entity = entity.to_owned();
            let requests: Vec<BulkRequest> = groups
                .into_iter()
                .map(|(tags, ids)| BulkRequest {
                    filter: id_filter(&ids),
                    action: "update".into(),
                    set: Some(json!({ "tags": tags })),
                })
                .collect();
            v.ctx
                .db
                .write(move |tx| {
                    Box::pin(async move {
                        for request in &requests {
                            bulk_in(tx, &w, &entity, request).await?;
                        }
                        Ok(())
                    })
                })
                .await?;
        }
        _ => return Err(Error::bad_request("unknown bulk action")),
    }
    Ok(n)
}

pub async fn bulk(
    v: Viewer,
    headers: HeaderMap,
    Path(entity): Path<String>,
    Query(query): Query<Pairs>,
    axum::Form(form): axum::Form<Pairs>,
) -> Response {
    let op = param(&query, "op").unwrap_or_default().to_owned();
    let n = tri!(v, headers, bulk_action(&v, &entity, &op, &form).await);
    let key = if op == "delete" {
        "bulk_deleted"
    } else {
        "bulk_done"
    };
    let back = list_url(
        &entity,
        param(&form, "view"),
        param(&form, "filter").unwrap_or_default(),
        "",
        param(&form, "q").unwrap_or_default(),
    );
    let to = format!("{back}&m={key}&n={n}");
    let mut response = StatusCode::NO_CONTENT.into_response();
    if let Ok(value) = to.parse() {
        response.headers_mut().insert("hx-redirect", value);
    }
    response
}

/// Splits a text into parts with the query's words marked, for the palette.
fn marked(text: &str, q: &str) -> Vec<Value> {
    let lower = text.to_lowercase();
    let needle = q.trim().to_lowercase();
    if needle.is_empty() || lower.len() != text.len() {
        return vec![json!({"t": text})];
    }
    match lower.find(&needle) {
        Some(i) if text.is_char_boundary(i) && text.is_char_boundary(i + needle.len()) => vec![
            json!({"t": &text[..i]}),
            json!({"m": &text[i..i + needle.len()]}),
            json!({"t": &text[i + needle.len()..]}),
        ],
        _ => vec![json!({"t": text})],
    }
}

/// `GET /ui/search?q=`: the palette — a few matches per entity the viewer may read.
pub async fn search(v: Viewer, headers: HeaderMap, Query(pairs): Query<Pairs>) -> Response {
    let q = param(&pairs, "q").unwrap_or_default().trim().to_owned();
    let catalog = tri!(
        v,
        headers,
        v.ctx
            .schema
            .catalog_as_of(&v.ctx.db, v.access.schema_epoch())
            .await
    );
    let mut groups = Vec::new();
    if !q.is_empty() {
        for entity in catalog.all() {
            let name = entity.def.name.as_str();
            if v.access.require_action(name, Action::Read).is_err()
                || name.ends_with("_line")
                || groups.len() >= 6
            {
                continue;
            }
            let target = Target {
                catalog: catalog.clone(),
                entity: entity.clone(),
            };
            let query = ReadQuery {
                q: Some(&q),
                limit: 4,
                ..ReadQuery::new(&target, &v.access)
            };
            let Ok(page) = query.page(&mut &v.ctx.db).await else {
                continue;
            };
            if page.items.is_empty() {
                continue;
            }
            let (icon, color) = shell::entity_look(name);
            let label = v.lang.label(Some(&entity.def.label), name);
            let items: Vec<Value> = page
                .items
                .iter()
                .map(|r| {
                    let title = shell::record_title(&entity, r);
                    json!({
                        "href": format!("/e/{name}/{}", r["id"].as_str().unwrap_or_default()),
                        "parts": marked(&title, &q),
                        "sub": label,
                        "icon": icon, "color": color,
                    })
                })
                .collect();
            groups.push(json!({"label": label, "items": items}));
        }
    }
    let data = json!({"groups": groups, "q": q, "s": v.lang.strings});
    super::rendered(&v, &headers, "palette", &data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_split_at_top_level_ands() {
        assert_eq!(
            terms(r#"level = "A" && (a || b && c) && name ~ "x && y""#),
            vec![r#"level = "A""#, "(a || b && c)", r#"name ~ "x && y""#]
        );
        assert!(terms("  ").is_empty());
        assert_eq!(marked("成都永安", "永安")[1]["m"], "永安");
    }
}
