//! Home, "my work": what a rep opens each morning. Each card is a query of the one read query
//! (so scopes and hidden fields apply) and shows only when its entity is installed and
//! readable: my open opportunities, follow-ups due, receivables due soon, birthdays coming up
//! (anniversaries, across the year's end), my service requests with their SLA time left, and
//! what I changed recently.

use std::sync::Arc;

use axum::extract::Query;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use chrono::{Datelike, Duration, NaiveDate, Timelike, Utc};
use serde_json::{Value, json};

use super::list::{Pairs, merge};
use super::render::render;
use super::shell::{self, Names};
use super::{Viewer, html, tri, url_encode};
use crate::auth::Action;
use crate::error::Result;
use crate::records::list::ReadQuery;
use crate::records::service::Target;
use crate::schema::compiled::Catalog;

struct Card {
    entity: &'static str,
    title: String,
    icon: &'static str,
    color: &'static str,
    filter: String,
    sort: &'static str,
}

/// The records of a card (None when the entity is missing, unreadable, or lacks a field).
async fn fetch(
    v: &Viewer,
    catalog: &Arc<Catalog>,
    entity: &str,
    filter: &str,
    sort: &str,
    limit: i64,
) -> Option<(Target, Vec<Value>, bool)> {
    let e = catalog.entity(entity).ok()?;
    v.access.require_action(entity, Action::Read).ok()?;
    let target = Target {
        catalog: catalog.clone(),
        entity: e,
    };
    let query = ReadQuery {
        filter: Some(filter),
        sort: Some(sort),
        limit,
        ..ReadQuery::new(&target, &v.access)
    };
    let page = query.page(&mut &v.ctx.db).await.ok()?;
    let more = page.next_cursor.is_some();
    Some((target, page.items, more))
}

fn field_text(r: &Value, name: &str) -> Option<String> {
    r.get(name).and_then(Value::as_str).map(str::to_owned)
}

/// The next anniversary of a date on or after `today` (29 February falls on 28 February in
/// other years).
pub fn next_anniversary(date: NaiveDate, today: NaiveDate) -> NaiveDate {
    let on = |year: i32| {
        NaiveDate::from_ymd_opt(year, date.month(), date.day())
            .or_else(|| NaiveDate::from_ymd_opt(year, 2, 28))
            .unwrap_or(today)
    };
    let this_year = on(today.year());
    if this_year >= today {
        this_year
    } else {
        on(today.year() + 1)
    }
}

pub async fn page(v: Viewer, headers: HeaderMap, Query(pairs): Query<Pairs>) -> Response {
    let catalog = tri!(
        v,
        headers,
        v.ctx
            .schema
            .catalog_as_of(&v.ctx.db, v.access.schema_epoch())
            .await
    );
    tri!(v, headers, home(&v, &catalog, &pairs).await)
}

async fn home(v: &Viewer, catalog: &Arc<Catalog>, pairs: &Pairs) -> Result<Response> {
    let mut names = Names::people(v).await?;
    let today = shell::today(v);
    let mut cards = Vec::new();
    let mut follow_count = 0usize;
    let mut request_count = 0usize;
    let simple = [
        Card {
            entity: "opportunity",
            title: v.t("my_opportunities").to_owned(),
            icon: "handshake",
            color: "c-bc4c00",
            filter: "owner = @me && !(stage in [\"won\", \"lost\"])".into(),
            sort: "expected_close",
        },
        Card {
            entity: "follow_up",
            title: v.t("follow_ups").to_owned(),
            icon: "clock",
            color: "c-0969da",
            filter: "owner = @me && next_follow_up != null && next_follow_up <= @today".into(),
            sort: "next_follow_up",
        },
        Card {
            entity: "receivable",
            title: v.f("receivables_due", &[("n", &receivable_days(v).to_string())]),
            icon: "receipt",
            color: "c-1a7f37",
            filter: format!(
                "due_date >= @today && due_date <= @today + {}d && !(status in [\"paid\"])",
                receivable_days(v)
            ),
            sort: "due_date",
        },
        Card {
            entity: "service_request",
            title: v.t("my_requests").to_owned(),
            icon: "headset",
            color: "c-8250df",
            filter: "assignee = @me && !(status in [\"resolved\", \"closed\"])".into(),
            sort: "reported_at",
        },
    ];
    for card in simple {
        let Some((target, items, more)) =
            fetch(v, catalog, card.entity, &card.filter, card.sort, 6).await
        else {
            continue;
        };
        let entity = &target.entity;
        let lookups: Vec<_> = entity
            .def
            .fields
            .iter()
            .filter(|f| f.kind == crate::fields::Kind::Lookup)
            .collect();
        names
            .load_lookups(v, catalog, entity, &lookups, &items)
            .await?;
        let customer = |r: &Value| {
            field_text(r, "customer").and_then(|c| names.record("customer", &c).map(str::to_owned))
        };
        let rows: Vec<Value> = items
            .iter()
            .map(|r| {
                let id = r["id"].as_str().unwrap_or_default();
                let mut row = json!({
                    "href": format!("/e/{}/{id}", card.entity),
                    "title": shell::record_title(entity, r),
                    "sub": customer(r),
                });
                match card.entity {
                    "opportunity" => {
                        if let Some(f) = entity.def.field("stage") {
                            row["chip"] = shell::display(v, &names, f, &r["stage"]);
                        }
                        if let (Some(f), Some(a)) =
                            (entity.def.field("amount"), field_text(r, "amount"))
                        {
                            row["amount"] = json!(shell::format_number(f, &a));
                        }
                    }
                    "follow_up" => {
                        if let Some(d) = field_text(r, "next_follow_up")
                            .and_then(|d| NaiveDate::parse_from_str(&d, "%Y-%m-%d").ok())
                        {
                            let late = (today - d).num_days();
                            row["when"] = json!(if late > 0 {
                                v.f("overdue_n", &[("n", &late.to_string())])
                            } else {
                                v.t("due_today").to_owned()
                            });
                            row["due"] = json!(late > 0);
                        }
                    }
                    "receivable" => {
                        if let (Some(f), Some(a)) = (
                            entity.def.field("balance").or(entity.def.field("amount")),
                            field_text(r, "balance").or(field_text(r, "amount")),
                        ) {
                            row["amount"] = json!(shell::format_number(f, &a));
                        }
                        if let Some(d) = field_text(r, "due_date") {
                            row["sub"] = json!(format!(
                                "{} · {}",
                                customer(r).unwrap_or_default(),
                                v.f("due_on", &[("d", &d)])
                            ));
                        }
                    }
                    "service_request" => {
                        if let Some(f) = entity.def.field("priority") {
                            row["chip"] = shell::display(v, &names, f, &r["priority"]);
                        }
                        if let Some(due) = field_text(r, "sla_due")
                            .and_then(|d| chrono::DateTime::parse_from_rfc3339(&d).ok())
                        {
                            let left = due.with_timezone(&Utc) - Utc::now();
                            let hours = left.num_hours();
                            row["when"] = json!(if left.num_seconds() < 0 {
                                v.t("sla_breached").to_owned()
                            } else {
                                v.f("hours_left", &[("n", &hours.to_string())])
                            });
                            row["due"] = json!(hours < 4);
                        }
                    }
                    _ => {}
                }
                row
            })
            .collect();
        match card.entity {
            "follow_up" => follow_count = rows.len(),
            "service_request" => request_count = rows.len(),
            _ => {}
        }
        cards.push(json!({
            "title": card.title, "icon": card.icon, "color": card.color,
            "count": if more { format!("{}+", rows.len()) } else { rows.len().to_string() },
            "items": rows,
            "all": format!("/e/{}?filter={}", card.entity, url_encode(&card.filter)),
        }));
    }
    // Birthdays: anniversaries within the reminder days, across the year's end.
    let days = v.settings.birthday_reminder_days();
    if let Some((target, items, _)) = fetch(
        v,
        catalog,
        "contact",
        "birthday != null",
        "-updated_at",
        500,
    )
    .await
    {
        let mut soon: Vec<(NaiveDate, Value)> = items
            .iter()
            .filter_map(|r| {
                let born = NaiveDate::parse_from_str(r["birthday"].as_str()?, "%Y-%m-%d").ok()?;
                let next = next_anniversary(born, today);
                ((next - today).num_days() <= days).then(|| (next, r.clone()))
            })
            .collect();
        soon.sort_by_key(|(d, _)| *d);
        let lookups: Vec<_> = target.entity.def.field("customer").into_iter().collect();
        let records: Vec<Value> = soon.iter().map(|(_, r)| r.clone()).collect();
        names
            .load_lookups(v, catalog, &target.entity, &lookups, &records)
            .await?;
        let rows: Vec<Value> = soon
            .iter()
            .take(6)
            .map(|(d, r)| {
                let n = (*d - today).num_days();
                json!({
                    "href": format!("/e/contact/{}", r["id"].as_str().unwrap_or_default()),
                    "title": shell::record_title(&target.entity, r),
                    "sub": field_text(r, "customer").and_then(|c| names.record("customer", &c).map(str::to_owned)),
                    "when": if n == 0 { v.t("today").to_owned() } else { format!("{} · {}", d.format("%m-%d"), v.f("in_days", &[("n", &n.to_string())])) },
                    "due": n == 0,
                })
            })
            .collect();
        cards.push(json!({
            "title": v.f("birthdays", &[("n", &days.to_string())]), "icon": "star", "color": "c-bf3989",
            "count": soon.len(), "items": rows, "all": Value::Null,
        }));
    }
    // Recently changed records of mine.
    let mut recent: Vec<(String, Value)> = Vec::new();
    for entity in ["customer", "opportunity", "contact", "service_request"] {
        if let Some((target, items, _)) =
            fetch(v, catalog, entity, "owner = @me", "-updated_at", 4).await
        {
            let (icon, color) = shell::entity_look(entity);
            let label = v.lang.label(Some(&target.entity.def.label), entity);
            for r in items {
                let at = field_text(&r, "updated_at").unwrap_or_default();
                recent.push((
                    at.clone(),
                    json!({
                        "href": format!("/e/{entity}/{}", r["id"].as_str().unwrap_or_default()),
                        "title": shell::record_title(&target.entity, &r),
                        "sub": label, "icon": icon, "color": color,
                        "when": shell::format_datetime(v, &at),
                    }),
                ));
            }
        }
    }
    if !recent.is_empty() {
        recent.sort_by(|a, b| b.0.cmp(&a.0));
        let items: Vec<Value> = recent.into_iter().take(6).map(|(_, r)| r).collect();
        cards.push(json!({
            "title": v.t("recent"), "icon": "history", "color": "c-6e7781",
            "count": items.len(), "items": items, "all": Value::Null,
        }));
    }
    let hour = Utc::now().with_timezone(&v.tz).hour();
    let key = match hour {
        5..=11 => "greet_morning",
        12..=17 => "greet_afternoon",
        _ => "greet_evening",
    };
    let date = if v.lang.is_zh() {
        today.format("%-m月%-d日").to_string()
    } else {
        today.format("%A, %B %-d").to_string()
    };
    let title = v.t("home").to_owned();
    let mut data = shell::page(v, catalog, &title, None).await?;
    merge(
        &mut data,
        json!({
            "greeting": v.f(key, &[("name", &v.name)]),
            "sub": v.f("home_sub", &[("date", &date), ("n", &follow_count.to_string()), ("m", &request_count.to_string())]),
            "cards": cards,
            "toast": super::list::toast(v, pairs),
        }),
    );
    let _ = Duration::days(0);
    Ok(html(StatusCode::OK, render("home", &data)?))
}

fn receivable_days(v: &Viewer) -> i64 {
    v.settings
        .get("receivables_reminder_days")
        .and_then(Value::as_i64)
        .unwrap_or(3)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anniversaries_cross_the_year_end_and_leap_days() {
        let d = |y, m, day| NaiveDate::from_ymd_opt(y, m, day).unwrap();
        assert_eq!(
            next_anniversary(d(1980, 1, 3), d(2026, 12, 30)),
            d(2027, 1, 3)
        );
        assert_eq!(
            next_anniversary(d(1980, 12, 31), d(2026, 12, 30)),
            d(2026, 12, 31)
        );
        assert_eq!(
            next_anniversary(d(1984, 2, 29), d(2027, 2, 1)),
            d(2027, 2, 28)
        );
        assert_eq!(
            next_anniversary(d(1984, 2, 29), d(2028, 2, 1)),
            d(2028, 2, 29)
        );
    }
}
