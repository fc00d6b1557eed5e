//! The one kanban (a view grouped by a select field; a drag is a PATCH with `If-Match`) and the
//! one calendar (a month of a view's date field; a click on a day creates a record that day).

use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use chrono::{Datelike, Duration, NaiveDate};
use serde_json::{Value, json};

use super::list::{ListState, Pairs, merge, module_of, param, view_tabs};
use super::render::render;
use super::shell::{self, Names};
use super::{Viewer, html, tri, url_encode};
use crate::auth::Action;
use crate::error::{Error, Result};
use crate::fields::Kind;
use crate::records::list::ReadQuery;
use crate::records::service::Target;

/// Most cards or events one board or month shows.
const MAX_ITEMS: i64 = 500;

async fn head(v: &Viewer, target: &Target, st: &ListState) -> Result<Value> {
    let entity = &target.entity;
    let name = entity.def.name.as_str();
    let label = v.lang.label(Some(&entity.def.label), name);
    let mut data = shell::page(v, &target.catalog, &label, Some(name)).await?;
    merge(
        &mut data,
        json!({
            "fill": true,
            "entity": shell::entity_json(v, entity),
            "module": module_of(v, &target.catalog, name),
            "views": view_tabs(v, name, st),
            "can_create": v.access.require_action(name, Action::Create).is_ok(),
            "new_label": v.f("new_title", &[("entity", &label)]),
        }),
    );
    Ok(data)
}

async fn records(v: &Viewer, target: &Target, filter: &str, sort: &str) -> Result<Vec<Value>> {
    let query = ReadQuery {
        filter: Some(filter),
        sort: Some(sort),
        limit: MAX_ITEMS,
        ..ReadQuery::new(target, &v.access)
    };
    Ok(query.page(&mut &v.ctx.db).await?.items)
}

pub async fn kanban(
    v: Viewer,
    headers: HeaderMap,
    target: Target,
    st: ListState,
    _pairs: &Pairs,
) -> Response {
    tri!(v, headers, kanban_page(&v, &target, &st).await)
}

async fn kanban_page(v: &Viewer, target: &Target, st: &ListState) -> Result<Response> {
    let entity = &target.entity;
    let name = entity.def.name.as_str();
    let doc = st
        .view
        .as_ref()
        .map(|view| view.doc.clone())
        .unwrap_or_default();
    let field_name = doc["group_by"].as_str().unwrap_or_default().to_owned();
    let field = entity
        .def
        .field(&field_name)
        .filter(|_| v.access.can_read_field(name, &field_name))
        .ok_or_else(|| Error::not_found("this board groups by a field you may not see"))?;
    let sum = doc["sum"]
        .as_str()
        .and_then(|s| entity.def.field(s))
        .filter(|f| v.access.can_read_field(name, f.name.as_str()));
    let card_fields: Vec<String> = doc["card_fields"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .filter(|c| entity.def.field(c).is_some() && v.access.can_read_field(name, c))
        .map(str::to_owned)
        .collect();
    let items = records(
        v,
        target,
        &st.filter,
        if st.sort.is_empty() {
            "-updated_at"
        } else {
            &st.sort
        },
    )
    .await?;
    let mut names = Names::people(v).await?;
    let fields: Vec<_> = card_fields
        .iter()
        .filter_map(|c| entity.def.field(c))
        .collect();
    names
        .load_lookups(v, &target.catalog, entity, &fields, &items)
        .await?;
    let title_field = shell::title_field(entity).map(|f| f.name.to_string());
    let can_move = super::list::editable(v, entity, &field_name);
    let mut cols: Vec<Value> = Vec::new();
    let mut options = shell::options(v, field);
    if items.iter().any(|r| r[field_name.as_str()].is_null()) {
        options.insert(
            0,
            (String::new(), v.t("no_value").to_owned(), "c-8c959f".into()),
        );
    }
    let mut total = rust_decimal::Decimal::ZERO;
    for (value, label, color) in options {
        let in_col: Vec<&Value> = items
            .iter()
            .filter(|r| r[field_name.as_str()].as_str().unwrap_or_default() == value)
            .collect();
        let mut col_sum = rust_decimal::Decimal::ZERO;
        let cards: Vec<Value> = in_col
            .iter()
            .map(|r| {
                let id = r["id"].as_str().unwrap_or_default();
                let amount = sum
                    .and_then(|f| r[f.name.as_str()].as_str())
                    .map(str::to_owned);
                if let Some(a) = amount
                    .as_deref()
                    .and_then(|a| a.parse::<rust_decimal::Decimal>().ok())
                {
                    col_sum += a;
                }
                let lines: Vec<Value> = card_fields
                    .iter()
                    .filter(|c| Some(c.as_str()) != title_field.as_deref())
                    .filter_map(|c| {
                        let f = entity.def.field(c)?;
                        let shown = shell::display(v, &names, f, &r[c.as_str()]);
                        if !shown["empty"].is_null() {
                            return None;
                        }
                        if f.kind == Kind::Money {
                            return Some(json!({"amt": true, "t": shown["t"]}));
                        }
                        // The card is itself a link: related records show as text in it.
                        if let Some(links) = shown["links"].as_array() {
                            let titles: Vec<&str> =
                                links.iter().filter_map(|l| l["t"].as_str()).collect();
                            return Some(json!({"t": titles.join(", ")}));
                        }
                        if shown["href"].is_string() {
                            return Some(json!({"t": shown["t"]}));
                        }
                        Some(shown)
                    })
                    .collect();
                json!({
                    "id": id, "version": r["version"], "href": format!("/e/{name}/{id}"),
                    "title": shell::record_title(entity, r), "amount": amount, "lines": lines,
                    "move": format!("/e/{name}/{id}?ctx=move"),
                })
            })
            .collect();
        total += col_sum;
        let new_href = (!value.is_empty())
            .then(|| format!("/e/{name}/new?{field_name}={}", url_encode(&value)));
        cols.push(json!({
            "value": value, "label": label, "color": color, "count": cards.len(), "cards": cards,
            "sum": sum.map(|f| shell::format_number(f, &col_sum.to_string())),
            "new_href": new_href, "new_label": v.f("new_in", &[("col", &label)]),
        }));
    }
    let mut data = head(v, target, st).await?;
    let summary = match sum {
        Some(f) => format!(
            "{} · {}",
            v.f("records_n", &[("n", &items.len().to_string())]),
            shell::format_number(f, &total.to_string())
        ),
        None => v.f("records_n", &[("n", &items.len().to_string())]),
    };
    merge(
        &mut data,
        json!({
            "summary": summary,
            "hint": v.f("drag_hint", &[("field", &shell::field_label(v, field))]),
            "field": field_name,
            "currency": sum.and_then(|f| f.schema.get("x-currency").cloned()),
            "scale": sum.map_or(2, |f| f.scale),
            "has_sum": sum.is_some(),
            "can_move": can_move,
            "cols": cols,
        }),
    );
    Ok(html(StatusCode::OK, render("kanban", &data)?))
}

pub async fn calendar(
    v: Viewer,
    headers: HeaderMap,
    target: Target,
    st: ListState,
    pairs: &Pairs,
) -> Response {
    tri!(v, headers, calendar_page(&v, &target, &st, pairs).await)
}

async fn calendar_page(
    v: &Viewer,
    target: &Target,
    st: &ListState,
    pairs: &Pairs,
) -> Result<Response> {
    let entity = &target.entity;
    let name = entity.def.name.as_str();
    let doc = st
        .view
        .as_ref()
        .map(|view| view.doc.clone())
        .unwrap_or_default();
    let date_name = doc["date_field"]
        .as_str()
        .unwrap_or("created_at")
        .to_owned();
    let date_kind = entity
        .def
        .field(&date_name)
        .map_or(Kind::Datetime, |f| f.kind);
    let today = shell::today(v);
    let month = param(pairs, "month")
        .and_then(|m| NaiveDate::parse_from_str(&format!("{m}-01"), "%Y-%m-%d").ok())
        .unwrap_or_else(|| today.with_day(1).unwrap_or(today));
    let next_month = (month + Duration::days(32)).with_day(1).unwrap_or(month);
    let prev_month = (month - Duration::days(1)).with_day(1).unwrap_or(month);
    let range = if date_kind == Kind::Date {
        format!("{date_name} >= \"{month}\" && {date_name} < \"{next_month}\"")
    } else {
        format!("{date_name} >= \"{month}T00:00:00Z\" && {date_name} < \"{next_month}T00:00:00Z\"")
    };
    let filter = if st.filter.trim().is_empty() {
        range
    } else {
        format!("({}) && {range}", st.filter)
    };
    let items = records(v, target, &filter, &date_name).await?;
    let names = Names::people(v).await?;
    let title_field = doc["title_field"]
        .as_str()
        .and_then(|t| entity.def.field(t));
    let color_field = entity.def.fields.iter().find(|f| f.kind == Kind::Select);
    let mut by_day: std::collections::BTreeMap<NaiveDate, Vec<Value>> = Default::default();
    let mut agenda = Vec::new();
    for r in &items {
        let raw = r[date_name.as_str()].as_str().unwrap_or_default();
        let (day, time) = if date_kind == Kind::Date {
            (NaiveDate::parse_from_str(raw, "%Y-%m-%d").ok(), None)
        } else {
            match chrono::DateTime::parse_from_rfc3339(raw) {
                Ok(t) => {
                    let local = t.with_timezone(&v.tz);
                    (
                        Some(local.date_naive()),
                        Some(local.format("%H:%M").to_string()),
                    )
                }
                Err(_) => (None, None),
            }
        };
        let Some(day) = day else { continue };
        let title = match title_field {
            Some(f) => r[f.name.as_str()]
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| shell::record_title(entity, r)),
            None => shell::record_title(entity, r),
        };
        let color = color_field
            .map(|f| {
                shell::display(v, &names, f, &r[f.name.as_str()])["c"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned()
            })
            .unwrap_or_default();
        let href = format!("/e/{name}/{}", r["id"].as_str().unwrap_or_default());
        agenda.push(json!({"title": title, "href": href, "when": format!("{day} {}", time.clone().unwrap_or_default())}));
        by_day
            .entry(day)
            .or_default()
            .push(json!({"title": title, "href": href, "time": time, "color": color}));
    }
    let start = month - Duration::days(month.weekday().num_days_from_monday() as i64);
    let last = next_month - Duration::days(1);
    let end = last + Duration::days(6 - last.weekday().num_days_from_monday() as i64);
    let can_create = v.access.require_action(name, Action::Create).is_ok()
        && entity.def.field(&date_name).is_some();
    let mut days = Vec::new();
    let mut d = start;
    while d <= end {
        let events = by_day.remove(&d).unwrap_or_default();
        let shown: Vec<Value> = events.iter().take(3).cloned().collect();
        let more =
            (events.len() > 3).then(|| v.f("more_n", &[("n", &(events.len() - 3).to_string())]));
        let value = if date_kind == Kind::Date {
            d.to_string()
        } else {
            format!("{d}T09:00")
        };
        days.push(json!({
            "d": d.day(), "out": d.month() != month.month(), "today": d == today,
            "weekend": d.weekday().num_days_from_monday() >= 5, "events": shown, "more": more,
            "new_href": can_create.then(|| format!("/e/{name}/new?{date_name}={}", url_encode(&value))),
            "new_label": v.f("new_on", &[("date", &d.to_string())]),
        }));
        d += Duration::days(1);
    }
    let months: Vec<&str> = v.t("months").split(',').collect();
    let month_name = months
        .get(month.month0() as usize)
        .copied()
        .unwrap_or_default();
    let view_q = st
        .view
        .as_ref()
        .map(|view| format!("view={}&", url_encode(&view.id)))
        .unwrap_or_default();
    let mut data = head(v, target, st).await?;
    merge(
        &mut data,
        json!({
            "fill": false,
            "month_title": v.f("month_title", &[("month", month_name), ("year", &month.year().to_string())]),
            "prev": format!("/e/{name}?{view_q}month={}", prev_month.format("%Y-%m")),
            "next": format!("/e/{name}?{view_q}month={}", next_month.format("%Y-%m")),
            "this_month": format!("/e/{name}?{view_q}"),
            "dow": v.t("dow").split(',').collect::<Vec<_>>(),
            "days": days,
            "agenda": agenda,
        }),
    );
    Ok(html(StatusCode::OK, render("calendar", &data)?))
}
