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
