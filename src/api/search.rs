//! `GET /api/search?q=&limit=&entities=`: one query across every entity the caller may read.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;

use super::auth::Caller;
use super::extract::Query;
use super::problem::json_response;
use crate::context::Context;
use crate::error::Result;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchParams {
    #[serde(default)]
    q: String,
    limit: Option<i64>,
    entities: Option<String>,
}

pub async fn search(
    State(ctx): State<Arc<Context>>,
    Caller(access): Caller,
    Query(params): Query<SearchParams>,
) -> Result<Response> {
    let items = crate::search::search(
        &ctx,
        &access,
        &params.q,
        params.limit,
        params.entities.as_deref(),
    )
    .await?;
    Ok(json_response(StatusCode::OK, crate::wire::Items { items }))
}
