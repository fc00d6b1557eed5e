//! `/api/entities/{entity}/forms` and `/api/views`. Thin: parse, call the service, respond.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;
use serde_json::Value;

use super::auth::Caller;
use super::extract::{Json, Query, if_match};
use super::problem::{json_response, versioned_response};
use crate::context::Context;
use crate::error::Result;
use crate::layouts::{forms, views};

pub async fn list_forms(
    State(ctx): State<Arc<Context>>,
    Caller(access): Caller,
    Path(entity): Path<String>,
) -> Result<Response> {
    Ok(json_response(
        StatusCode::OK,
        forms::list(&ctx, &access, &entity).await?,
    ))
}

pub async fn create_form(
    State(ctx): State<Arc<Context>>,
    Caller(access): Caller,
    Path(entity): Path<String>,
    Json(body): Json<Value>,
) -> Result<Response> {
    Ok(versioned_response(
        StatusCode::CREATED,
        forms::save(&ctx, &access, &entity, None, &body, None).await?,
    ))
}

pub async fn get_form(
    State(ctx): State<Arc<Context>>,
    Caller(access): Caller,
    Path((entity, name)): Path<(String, String)>,
) -> Result<Response> {
    Ok(versioned_response(
        StatusCode::OK,
        forms::get(&ctx, &access, &entity, &name).await?,
    ))
}

pub async fn replace_form(
    State(ctx): State<Arc<Context>>,
    Caller(access): Caller,
    Path((entity, name)): Path<(String, String)>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Result<Response> {
    let expected = if_match(&headers)?;
    Ok(versioned_response(
        StatusCode::OK,
        forms::save(&ctx, &access, &entity, Some(&name), &body, expected).await?,
    ))
}

pub async fn delete_form(
    State(ctx): State<Arc<Context>>,
    Caller(access): Caller,
    Path((entity, name)): Path<(String, String)>,
) -> Result<StatusCode> {
    forms::delete(&ctx, &access, &entity, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn form_versions(
    State(ctx): State<Arc<Context>>,
    Caller(access): Caller,
    Path((entity, name)): Path<(String, String)>,
) -> Result<Response> {
    Ok(json_response(
        StatusCode::OK,
        forms::versions(&ctx, &access, &entity, &name).await?,
    ))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ViewQuery {
    entity: Option<String>,
}

pub async fn list_views(
    State(ctx): State<Arc<Context>>,
    Caller(access): Caller,
    Query(query): Query<ViewQuery>,
) -> Result<Response> {
    Ok(json_response(
        StatusCode::OK,
        views::list(&ctx, &access, query.entity.as_deref()).await?,
    ))
}

pub async fn create_view(
    State(ctx): State<Arc<Context>>,
    Caller(access): Caller,
    Json(body): Json<Value>,
) -> Result<Response> {
    Ok(versioned_response(
        StatusCode::CREATED,
        views::create(&ctx, &access, &body).await?,
    ))
}

pub async fn get_view(
    State(ctx): State<Arc<Context>>,
    Caller(access): Caller,
    Path(id): Path<String>,
) -> Result<Response> {
    Ok(versioned_response(
        StatusCode::OK,
        views::get(&ctx, &access, &id).await?,
    ))
}

pub async fn update_view(
    State(ctx): State<Arc<Context>>,
    Caller(access): Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Result<Response> {
    let expected = if_match(&headers)?;
    Ok(versioned_response(
        StatusCode::OK,
        views::update(&ctx, &access, &id, &body, expected).await?,
    ))
}

pub async fn delete_view(
    State(ctx): State<Arc<Context>>,
    Caller(access): Caller,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    views::delete(&ctx, &access, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn view_versions(
    State(ctx): State<Arc<Context>>,
    Caller(access): Caller,
    Path(id): Path<String>,
) -> Result<Response> {
    Ok(json_response(
        StatusCode::OK,
        views::versions(&ctx, &access, &id).await?,
    ))
}
