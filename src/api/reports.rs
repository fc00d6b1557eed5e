//! `POST /api/reports/query`: a report over one entity, through the caller's read scope.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::Value;

use super::auth::Caller;
use super::extract::Json;
use super::problem::json_response;
use crate::context::Context;
use crate::error::Result;

pub async fn query(
    State(ctx): State<Arc<Context>>,
    Caller(access): Caller,
    Json(body): Json<Value>,
) -> Result<Response> {
    let report = crate::reports::query(&ctx, &access, &body).await?;
    Ok(json_response(StatusCode::OK, report))
}

/// `POST /api/reports/chart`: a card (`{chart, title, measure, query}`) drawn as SVG.
pub async fn chart(
    State(ctx): State<Arc<Context>>,
    Caller(access): Caller,
    Json(card): Json<crate::reports::CardSpec>,
) -> Result<Response> {
    let svg = crate::reports::card_svg(&ctx, &access, &card, None).await?;
    Ok(svg_response(svg))
}

pub fn svg_response(svg: String) -> Response {
    use axum::response::IntoResponse;
    (
        StatusCode::OK,
        [
            (
                axum::http::header::CONTENT_TYPE,
                "image/svg+xml; charset=utf-8",
            ),
            (axum::http::header::CACHE_CONTROL, "private, no-cache"),
        ],
        svg,
    )
        .into_response()
}

use axum::extract::Path;
use serde::Deserialize;

use super::extract::Query;
use crate::reports::dashboards;

pub async fn list_dashboards(
    State(ctx): State<Arc<Context>>,
    Caller(access): Caller,
) -> Result<Response> {
    Ok(json_response(
        StatusCode::OK,
        dashboards::list(&ctx, &access).await?,
    ))
}

pub async fn create_dashboard(
    State(ctx): State<Arc<Context>>,
    Caller(access): Caller,
    Json(body): Json<Value>,
) -> Result<Response> {
    let row = dashboards::create(&ctx, &access, &body).await?;
    Ok(json_response(StatusCode::CREATED, dashboards::view(&row)))
}

pub async fn get_dashboard(
    State(ctx): State<Arc<Context>>,
    Caller(access): Caller,
    Path(id): Path<String>,
) -> Result<Response> {
    let row = dashboards::get(&ctx, &access, &id).await?;
    Ok(json_response(StatusCode::OK, dashboards::view(&row)))
}

pub async fn replace_dashboard(
    State(ctx): State<Arc<Context>>,
    Caller(access): Caller,
    Path(id): Path<String>,
    Json(body): Json<Value>,
) -> Result<Response> {
    let row = dashboards::replace(&ctx, &access, &id, &body).await?;
    Ok(json_response(StatusCode::OK, dashboards::view(&row)))
}

pub async fn delete_dashboard(
    State(ctx): State<Arc<Context>>,
    Caller(access): Caller,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    dashboards::delete(&ctx, &access, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn dashboard_versions(
    State(ctx): State<Arc<Context>>,
    Caller(access): Caller,
    Path(id): Path<String>,
) -> Result<Response> {
    Ok(json_response(
        StatusCode::OK,
        dashboards::versions(&ctx, &access, &id).await?,
    ))
}

/// The range a viewer chose for a dashboard: `relative`, or `from` and `to`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RangeParams {
    pub from: Option<String>,
    pub to: Option<String>,
    pub relative: Option<String>,
}

impl RangeParams {
    pub fn chosen(&self) -> Option<Value> {
        match (&self.relative, &self.from, &self.to) {
            (Some(r), _, _) if !r.is_empty() => Some(serde_json::json!({"relative": r})),
            (_, Some(f), Some(t)) if !f.is_empty() && !t.is_empty() => {
                Some(serde_json::json!({"from": f, "to": t}))
            }
            _ => None,
        }
    }
}

/// `GET /api/dashboards/{id}/cards/{index}`: one card as SVG.
pub async fn dashboard_card(
    State(ctx): State<Arc<Context>>,
    Caller(access): Caller,
    Path((id, index)): Path<(String, usize)>,
    Query(range): Query<RangeParams>,
) -> Result<Response> {
    let svg = dashboards::card(&ctx, &access, &id, index, range.chosen()).await?;
    Ok(svg_response(svg))
}
