//! `/api/webhooks`: outbound webhook endpoints, their secrets and their delivery log.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;

use super::auth::Caller;
use super::extract::{Json, Query, if_match};
use super::problem::{json_response, versioned_response};
use crate::context::Context;
use crate::error::Result;
use crate::webhooks::{self as service, NewWebhook, WebhookPatch};
use crate::wire::Items;

pub async fn list(State(ctx): State<Arc<Context>>, Caller(access): Caller) -> Result<Response> {
    let items = service::list(&ctx, &access).await?;
    Ok(json_response(StatusCode::OK, Items { items }))
}

pub async fn create(
    State(ctx): State<Arc<Context>>,
    Caller(access): Caller,
    Json(body): Json<NewWebhook>,
) -> Result<Response> {
    Ok(versioned_response(
        StatusCode::CREATED,
        service::create(&ctx, &access, body).await?,
    ))
}

pub async fn get(
    State(ctx): State<Arc<Context>>,
    Caller(access): Caller,
    Path(id): Path<String>,
) -> Result<Response> {
    Ok(versioned_response(
        StatusCode::OK,
        service::get(&ctx, &access, &id).await?,
    ))
}

pub async fn update(
    State(ctx): State<Arc<Context>>,
    Caller(access): Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    Json(body): Json<WebhookPatch>,
) -> Result<Response> {
    let expected = if_match(&headers)?;
    Ok(versioned_response(
        StatusCode::OK,
        service::update(&ctx, &access, &id, body, expected).await?,
    ))
}

pub async fn delete(
    State(ctx): State<Arc<Context>>,
    Caller(access): Caller,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    service::delete(&ctx, &access, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn rotate_secret(
    State(ctx): State<Arc<Context>>,
    Caller(access): Caller,
    Path(id): Path<String>,
) -> Result<Response> {
    Ok(versioned_response(
        StatusCode::OK,
        service::rotate_secret(&ctx, &access, &id).await?,
    ))
}

pub async fn test(
    State(ctx): State<Arc<Context>>,
    Caller(access): Caller,
    Path(id): Path<String>,
) -> Result<Response> {
    Ok(json_response(
        StatusCode::ACCEPTED,
        service::test(&ctx, &access, &id).await?,
    ))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeliveryPage {
    limit: Option<i64>,
}

pub async fn deliveries(
    State(ctx): State<Arc<Context>>,
    Caller(access): Caller,
    Path(id): Path<String>,
    Query(page): Query<DeliveryPage>,
) -> Result<Response> {
    let items = service::deliveries(&ctx, &access, &id, page.limit).await?;
    Ok(json_response(StatusCode::OK, Items { items }))
}

pub async fn replay(
    State(ctx): State<Arc<Context>>,
    Caller(access): Caller,
    Path((id, delivery)): Path<(String, String)>,
) -> Result<Response> {
    Ok(json_response(
        StatusCode::ACCEPTED,
        service::replay(&ctx, &access, &id, &delivery).await?,
    ))
}
