//! `/api/entities/{entity}/forms` and `/api/views`. Thin: parse, call the service, respond.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;
use serde_json::Value;

use super::auth::Caller;
use super::extract::{Json, Query, if_match};
use super::problem::json_response;
use crate::app::App;
use crate::error::Result;
use crate::layouts::{forms, views};

fn with_etag(status: StatusCode, (body, version): (Value, i64)) -> Response {
    super::entities::with_etag(json_response(status, body), Some(version))
}

pub async fn list_forms(
    State(app): State<Arc<App>>,
    Caller(access): Caller,
    Path(entity): Path<String>,
) -> Result<Response> {
    Ok(json_response(
        StatusCode::OK,
        forms::list(&app, &access, &entity).await?,
    ))
}

pub async fn create_form(
    State(app): State<Arc<App>>,
    Caller(access): Caller,
    Path(entity): Path<String>,
    Json(body): Json<Value>,
) -> Result<Response> {
    Ok(with_etag(
        StatusCode::CREATED,
        forms::save(&app, &access, &entity, None, &body, None).await?,
    ))
}

pub async fn get_form(
    State(app): State<Arc<App>>,
    Caller(access): Caller,
    Path((entity, name)): Path<(String, String)>,
) -> Result<Response> {
    Ok(with_etag(
        StatusCode::OK,
        forms::get(&app, &access, &entity, &name).await?,
    ))
}

pub async fn replace_form(
    State(app): State<Arc<App>>,
    Caller(access): Caller,
    Path((entity, name)): Path<(String, String)>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Result<Response> {
    let expected = if_match(&headers)?;
    Ok(with_etag(
        StatusCode::OK,
        forms::save(&app, &access, &entity, Some(&name), &body, expected).await?,
    ))
}

pub async fn delete_form(
    State(app): State<Arc<App>>,
    Caller(access): Caller,
    Path((entity, name)): Path<(String, String)>,
) -> Result<StatusCode> {
    forms::delete(&app, &access, &entity, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn form_versions(
    State(app): State<Arc<App>>,
    Caller(access): Caller,
    Path((entity, name)): Path<(String, String)>,
) -> Result<Response> {
    Ok(json_response(
        StatusCode::OK,
        forms::versions(&app, &access, &entity, &name).await?,
    ))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ViewQuery {
    entity: Option<String>,
}

pub async fn list_views(
    State(app): State<Arc<App>>,
    Caller(access): Caller,
    Query(query): Query<ViewQuery>,
) -> Result<Response> {
    Ok(json_response(
        StatusCode::OK,
        views::list(&app, &access, query.entity.as_deref()).await?,
    ))
}

pub async fn create_view(
    State(app): State<Arc<App>>,
    Caller(access): Caller,
    Json(body): Json<Value>,
) -> Result<Response> {
    Ok(with_etag(
        StatusCode::CREATED,
        views::create(&app, &access, &body).await?,
    ))
}

pub async fn get_view(
    State(app): State<Arc<App>>,
    Caller(access): Caller,
    Path(id): Path<String>,
) -> Result<Response> {
    Ok(with_etag(
        StatusCode::OK,
        views::get(&app, &access, &id).await?,
    ))
}

pub async fn update_view(
    State(app): State<Arc<App>>,
    Caller(access): Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Result<Response> {
    let expected = if_match(&headers)?;
    Ok(with_etag(
        StatusCode::OK,
        views::update(&app, &access, &id, &body, expected).await?,
    ))
}

pub async fn delete_view(
    State(app): State<Arc<App>>,
    Caller(access): Caller,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    views::delete(&app, &access, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn view_versions(
    State(app): State<Arc<App>>,
    Caller(access): Caller,
    Path(id): Path<String>,
) -> Result<Response> {
    Ok(json_response(
        StatusCode::OK,
        views::versions(&app, &access, &id).await?,
    ))
}
