//! `/api/entities`: entity definitions and their changes. Thin: parse, call the schema
//! service, shape the response.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::auth::Caller;
use super::extract::{Json, Query, if_match};
use super::problem::{json_response, with_etag};
use crate::context::Context;
use crate::error::Result;
use crate::schema::{meta, service};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChangeOptions {
    /// Plan and check the change, report it, apply nothing.
    #[serde(default)]
    dry_run: bool,
}

fn report(status: StatusCode, report: service::ChangeReport) -> Response {
    let version = report.entity["version"].as_i64();
    with_etag(json_response(status, report.to_json()), version)
}

/// A definition as a caller sees it: without `manage_schema`, fields their roles hide are left
/// out (name, label, options and all), as they are from records.
fn visible_to(mut doc: Value, access: &crate::auth::Access) -> Value {
    if access.has(crate::auth::Special::ManageSchema) {
        return doc;
    }
    let entity = doc["name"].as_str().unwrap_or_default().to_owned();
    let hidden: Vec<String> = doc["schema"]["properties"]
        .as_object()
        .map(|p| {
            p.keys()
                .filter(|f| !access.can_read_field(&entity, f))
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    if let Some(props) = doc["schema"]["properties"].as_object_mut() {
        props.retain(|f, _| !hidden.contains(f));
    }
    if let Some(required) = doc["schema"]["required"].as_array_mut() {
        required.retain(|f| f.as_str().is_none_or(|f| !hidden.iter().any(|h| h == f)));
    }
    doc
}

pub async fn list(State(ctx): State<Arc<Context>>, Caller(access): Caller) -> Result<Response> {
    let items: Vec<Value> = service::list(&ctx)
        .await?
        .into_iter()
        .map(|doc| visible_to(doc, &access))
        .collect();
    Ok(json_response(StatusCode::OK, json!({ "items": items })))
}

pub async fn create(
    State(ctx): State<Arc<Context>>,
    Caller(access): Caller,
    Json(doc): Json<Value>,
) -> Result<Response> {
    let created = service::create(&ctx, &access, doc).await?;
    let mut response = with_etag(
        json_response(StatusCode::CREATED, created.clone()),
        created["version"].as_i64(),
    );
    if let Some(name) = created["name"].as_str()
        && let Ok(location) = HeaderValue::from_str(&format!("/api/entities/{name}"))
    {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

pub async fn get(
    State(ctx): State<Arc<Context>>,
    Caller(access): Caller,
    Path(entity): Path<String>,
) -> Result<Response> {
    let doc = visible_to(service::get(&ctx, &entity).await?, &access);
    let version = doc["version"].as_i64();
    Ok(with_etag(json_response(StatusCode::OK, doc), version))
}

/// `GET /api/entities/{entity}/indexes`: the declared indexes and those saved views asked for.
pub async fn indexes(
    State(ctx): State<Arc<Context>>,
    Caller(access): Caller,
    Path(entity): Path<String>,
) -> Result<Response> {
    let answer = crate::layouts::view_indexes::describe(&ctx, &access, &entity).await?;
    Ok(json_response(StatusCode::OK, answer))
}

pub async fn replace(
    State(ctx): State<Arc<Context>>,
    Caller(access): Caller,
    Path(entity): Path<String>,
    Query(options): Query<ChangeOptions>,
    headers: HeaderMap,
    Json(doc): Json<Value>,
) -> Result<Response> {
    let expected = if_match(&headers)?;
    let done = service::replace(&ctx, &access, &entity, doc, expected, options.dry_run).await?;
    Ok(report(StatusCode::OK, done))
}

pub async fn delete(
    State(ctx): State<Arc<Context>>,
    Caller(access): Caller,
    Path(entity): Path<String>,
) -> Result<Response> {
    let done = service::delete(&ctx, &access, &entity).await?;
    Ok(json_response(StatusCode::OK, done))
}

pub async fn add_field(
    State(ctx): State<Arc<Context>>,
    Caller(access): Caller,
    Path(entity): Path<String>,
    Query(options): Query<ChangeOptions>,
    Json(body): Json<Value>,
) -> Result<Response> {
    let done = service::add_field(&ctx, &access, &entity, body, options.dry_run).await?;
    let status = if done.applied {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(report(status, done))
}

pub async fn patch_field(
    State(ctx): State<Arc<Context>>,
    Caller(access): Caller,
    Path((entity, field)): Path<(String, String)>,
    Query(options): Query<ChangeOptions>,
    Json(body): Json<Value>,
) -> Result<Response> {
    let done = service::patch_field(&ctx, &access, &entity, &field, body, options.dry_run).await?;
    Ok(report(StatusCode::OK, done))
}

pub async fn remove_field(
    State(ctx): State<Arc<Context>>,
    Caller(access): Caller,
    Path((entity, field)): Path<(String, String)>,
    Query(options): Query<ChangeOptions>,
) -> Result<Response> {
    let done = service::remove_field(&ctx, &access, &entity, &field, options.dry_run).await?;
    Ok(report(StatusCode::OK, done))
}

pub async fn archived_fields(
    State(ctx): State<Arc<Context>>,
    Caller(_): Caller,
    Path(entity): Path<String>,
) -> Result<Response> {
    Ok(json_response(
        StatusCode::OK,
        service::archived_fields(&ctx, &entity).await?,
    ))
}

pub async fn restore_field(
    State(ctx): State<Arc<Context>>,
    Caller(access): Caller,
    Path((entity, archive_id)): Path<(String, i64)>,
    Query(options): Query<ChangeOptions>,
    body: axum::body::Bytes,
) -> Result<Response> {
    // The body is optional: restoring under the old name needs none.
    let body = if body.iter().all(u8::is_ascii_whitespace) {
        Value::Null
    } else {
        super::extract::read_body(&body)?
    };
    let done =
        service::restore_field(&ctx, &access, &entity, archive_id, body, options.dry_run).await?;
    Ok(report(StatusCode::OK, done))
}

pub async fn versions(
    State(ctx): State<Arc<Context>>,
    Caller(_): Caller,
    Path(entity): Path<String>,
) -> Result<Response> {
    Ok(json_response(
        StatusCode::OK,
        service::versions(&ctx, &entity).await?,
    ))
}

pub async fn meta_schema() -> impl IntoResponse {
    json_response(StatusCode::OK, meta::META_SCHEMA.clone())
}
