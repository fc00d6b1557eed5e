//! The dashboards page: the shared and personal dashboards as tabs, one date range for the
//! whole dashboard (a plain GET form: no script needed), and every card drawn inline as SVG so
//! its segments link to the lists of their records. Cards on modules not installed, or on
//! records the viewer may not read, say so instead of failing the page.

use axum::extract::{Path, Query};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{Value, json};

use super::list::{Pairs, merge};
use super::render::render;
use super::shell;
use super::{Viewer, html, tri, url_encode};
use crate::error::Result;
use crate::reports::dashboards as service;
use crate::reports::dates::RELATIVE;

fn param<'a>(pairs: &'a Pairs, name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .filter(|v| !v.is_empty())
}

pub async fn index(v: Viewer, headers: HeaderMap, Query(pairs): Query<Pairs>) -> Response {
    tri!(v, headers, page(&v, None, &pairs).await)
}

pub async fn one(
    v: Viewer,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(pairs): Query<Pairs>,
) -> Response {
    tri!(v, headers, page(&v, Some(&id), &pairs).await)
}

async fn page(v: &Viewer, id: Option<&str>, pairs: &Pairs) -> Result<Response> {
    let catalog = v
        .ctx
        .schema
        .catalog_as_of(&v.ctx.db, v.access.schema_epoch())
        .await?;
    let lang = crate::fields::Lang::from_tag(v.lang.code);
    let list = service::list(&v.ctx, &v.access).await?;
    let items = list.items;
    let chosen = match id {
        Some(id) => Some(service::get(&v.ctx, &v.access, id).await?),
        None => match items.first() {
            Some(first) => Some(service::get(&v.ctx, &v.access, &first.meta.id).await?),
            None => None,
        },
    };
    let title_of = |title: Option<&Value>, name: &str| {
        crate::reports::plan::label_in(title, lang).unwrap_or_else(|| name.to_owned())
    };
    let range = match (
        param(pairs, "relative"),
        param(pairs, "from"),
        param(pairs, "to"),
    ) {
        (Some(r), _, _) if RELATIVE.contains(&r) => Some(json!({"relative": r})),
        (_, Some(f), Some(t)) => Some(json!({"from": f, "to": t})),
        _ => None,
    };
    let mut cards = Vec::new();
    let mut current_range = Value::Null;
    if let Some(row) = &chosen {
        let effective = service::range_of(row, range.clone());
        current_range = effective.clone().unwrap_or(Value::Null);
        let list = row.document["cards"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        // The cards' queries run side by side (each on its own connection): a first render
        // at a million records waits for the slowest card, not for the sum of them.
        let drawn = futures_util::future::join_all(
            (0..list.len()).map(|i| service::card_of(&v.ctx, &v.access, row, i, effective.clone())),
        )
        .await;
        for (i, (card, svg)) in list.iter().zip(drawn).enumerate() {
            let title = crate::reports::plan::label_in(card.get("title"), lang).unwrap_or_default();
            let wide = card["width"].as_i64() == Some(2);
            let svg = match svg {
                Ok(svg) => Some(svg),
                Err(error) => {
                    tracing::debug!(%error, card = i, "dashboard card not drawn");
                    None
                }
            };
            cards.push(json!({"title": title, "svg": svg, "wide": wide}));
        }
    }
    let current_id = chosen.as_ref().map(|r| r.id.clone());
    let tabs: Vec<Value> = items
        .iter()
        .map(|d| {
            let id = d.meta.id.as_str();
            json!({"title": title_of(d.document.get("title"), &d.meta.name),
                   "href": format!("/dashboards/{id}"),
                   "current": Some(id) == current_id.as_deref()})
        })
        .collect();
    let relative = current_range["relative"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let ranges: Vec<Value> = RELATIVE
        .iter()
        .map(|r| json!({"value": r, "label": v.t(&format!("range_{r}")), "selected": *r == relative}))
        .collect();
    let heading = chosen
        .as_ref()
        .map(|r| title_of(r.document.get("title"), &r.name))
        .unwrap_or_else(|| v.t("dashboards").to_owned());
    let mut data = shell::page(v, &catalog, &heading, None).await?;
    let action = current_id.as_ref().map_or_else(
        || "/dashboards".to_owned(),
        |id| format!("/dashboards/{}", url_encode(id)),
    );
    merge(
        &mut data,
        json!({
            "heading": heading,
            "tabs": tabs,
            "cards": cards,
            "action": action,
            "ranges": ranges,
            "from": current_range["from"],
            "to": current_range["to"],
            "dashboards_current": true,
        }),
    );
    Ok(html(StatusCode::OK, render("dashboards", &data)?))
}
