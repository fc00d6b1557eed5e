//! `/api/records/{entity}`: records of any entity. Thin: parse, call the records service,
//! shape the response (with `ETag` carrying the record version).

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use serde_json::Value;

use super::extract::{Json, Query, if_match};
use super::problem::json_response;
use crate::app::App;
use crate::error::{Error, Result};
use crate::records::service::{self, Saved};

fn saved_response(status: StatusCode, saved: Saved) -> Response {
    let mut response = json_response(status, saved.record);
    if let Ok(value) = HeaderValue::from_str(&format!("\"{}\"", saved.version)) {
        response.headers_mut().insert(header::ETAG, value);
    }
    response
}

const LIST_PARAMETERS: &[&str] = &["limit"];

pub async fn list(
    State(app): State<Arc<App>>,
    Path(entity): Path<String>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response> {
    if let Some(unknown) = params
        .keys()
        .find(|k| !LIST_PARAMETERS.contains(&k.as_str()))
    {
        return Err(Error::bad_request(format!(
            "unknown query parameter '{unknown}' (supported: {})",
            LIST_PARAMETERS.join(", ")
        )));
    }
    let limit = match params.get("limit") {
        None => None,
        Some(text) => Some(text.parse::<i64>().map_err(|_| {
            Error::bad_request(format!("limit must be a whole number, not '{text}'"))
        })?),
    };
    let page = service::list(&app, &entity, limit).await?;
    Ok(json_response(StatusCode::OK, page))
}

pub async fn create(
    State(app): State<Arc<App>>,
    Path(entity): Path<String>,
    Json(payload): Json<Value>,
) -> Result<Response> {
    let saved = service::create(&app, &entity, &payload).await?;
    let location = format!(
        "/api/records/{entity}/{}",
        saved.record["id"].as_str().unwrap_or_default()
    );
    let mut response = saved_response(StatusCode::CREATED, saved);
    if let Ok(value) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    Ok(response)
}

pub async fn get(
    State(app): State<Arc<App>>,
    Path((entity, id)): Path<(String, String)>,
) -> Result<Response> {
    let saved = service::get(&app, &entity, &id).await?;
    Ok(saved_response(StatusCode::OK, saved))
}

pub async fn update(
    State(app): State<Arc<App>>,
    Path((entity, id)): Path<(String, String)>,
    headers: HeaderMap,
    Json(payload): Json<Value>,
) -> Result<Response> {
    let expected = if_match(&headers)?;
    let saved = service::update(&app, &entity, &id, &payload, expected).await?;
    Ok(saved_response(StatusCode::OK, saved))
}

pub async fn delete(
    State(app): State<Arc<App>>,
    Path((entity, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<StatusCode> {
    let expected = if_match(&headers)?;
    service::delete(&app, &entity, &id, expected).await?;
    Ok(StatusCode::NO_CONTENT)
}
