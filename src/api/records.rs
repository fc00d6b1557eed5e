//! `/api/records/{entity}`: records of any entity, and `/api/tags`. Thin: parse, call a
//! records service, shape the response (with `ETag` carrying the record version).

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use serde_json::Value;

use super::auth::Caller;
use super::extract::{Json, Query, if_match};
use super::problem::{json_response, with_etag};
use crate::context::Context;
use crate::error::{Error, Result};
use crate::events::Origin;
use crate::records::bulk::{self, BulkRequest, MergeRequest};
use crate::records::list::{self, ListParams};
use crate::records::service::{self, Saved};
use crate::records::tags::{self, TagRequest};
use crate::records::write;

type Pairs = Vec<(String, String)>;

fn saved_response(status: StatusCode, saved: Saved) -> Response {
    with_etag(json_response(status, saved.record), Some(saved.version))
}

/// Reads the named flags and strings of a query string, refusing anything else.
fn options<'a>(pairs: &'a Pairs, allowed: &[&str]) -> Result<Vec<(&'a str, &'a str)>> {
    pairs
        .iter()
        .map(|(k, v)| {
            if allowed.contains(&k.as_str()) {
                Ok((k.as_str(), v.as_str()))
            } else {
                Err(Error::bad_parameter(
                    k,
                    format!("is not a parameter here (use {})", allowed.join(", ")),
                ))
            }
        })
        .collect()
}

fn flag(options: &[(&str, &str)], name: &str) -> Result<bool> {
    match options.iter().find(|(k, _)| *k == name).map(|(_, v)| *v) {
        None | Some("false" | "0") => Ok(false),
        Some("true" | "1" | "") => Ok(true),
        Some(_) => Err(Error::bad_parameter(name, "must be true or false")),
    }
}

fn text<'a>(options: &[(&str, &'a str)], name: &str) -> Option<&'a str> {
    options.iter().find(|(k, _)| *k == name).map(|(_, v)| *v)
}

pub async fn list(
    State(ctx): State<Arc<Context>>,
    Caller(access): Caller,
    Path(entity): Path<String>,
    Query(pairs): Query<Pairs>,
) -> Result<Response> {
    let params = ListParams::from_pairs(&pairs)?;
    let page = list::list(&ctx, &access, &entity, &params).await?;
    Ok(json_response(StatusCode::OK, page))
}

pub async fn create(
    State(ctx): State<Arc<Context>>,
    Caller(access): Caller,
    Path(entity): Path<String>,
    Json(payload): Json<Value>,
) -> Result<Response> {
    let saved = write::create_one(&ctx, &access, Origin::Api, &entity, &payload).await?;
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
    State(ctx): State<Arc<Context>>,
    Caller(access): Caller,
    Path((entity, id)): Path<(String, String)>,
    Query(pairs): Query<Pairs>,
) -> Result<Response> {
    let options = options(&pairs, &["expand", "trashed"])?;
    let saved = service::get(
        &ctx,
        &access,
        &entity,
        &id,
        text(&options, "expand"),
        flag(&options, "trashed")?,
    )
    .await?;
    Ok(saved_response(StatusCode::OK, saved))
}

pub async fn update(
    State(ctx): State<Arc<Context>>,
    Caller(access): Caller,
    Path((entity, id)): Path<(String, String)>,
    headers: HeaderMap,
    Json(payload): Json<Value>,
) -> Result<Response> {
    let expected = if_match(&headers)?;
    let saved =
        write::update_one(&ctx, &access, Origin::Api, &entity, &id, &payload, expected).await?;
    Ok(saved_response(StatusCode::OK, saved))
}

pub async fn delete(
    State(ctx): State<Arc<Context>>,
    Caller(access): Caller,
    Path((entity, id)): Path<(String, String)>,
    Query(pairs): Query<Pairs>,
    headers: HeaderMap,
) -> Result<StatusCode> {
    let options = options(&pairs, &["permanent"])?;
    let expected = if_match(&headers)?;
    write::delete_one(
        &ctx,
        &access,
        Origin::Api,
        &entity,
        &id,
        expected,
        flag(&options, "permanent")?,
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn restore(
    State(ctx): State<Arc<Context>>,
    Caller(access): Caller,
    Path((entity, id)): Path<(String, String)>,
) -> Result<Response> {
    let saved = write::restore_one(&ctx, &access, Origin::Api, &entity, &id).await?;
    Ok(saved_response(StatusCode::OK, saved))
}

pub async fn copy(
    State(ctx): State<Arc<Context>>,
    Caller(access): Caller,
    Path((entity, id)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Result<Response> {
    let overrides = if body.iter().all(u8::is_ascii_whitespace) {
        Value::Null
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| Error::bad_request(format!("the body is not JSON: {e}")))?
    };
    let saved = write::copy_one(&ctx, &access, Origin::Api, &entity, &id, &overrides).await?;
    Ok(saved_response(StatusCode::CREATED, saved))
}

pub async fn history(
    State(ctx): State<Arc<Context>>,
    Caller(access): Caller,
    Path((entity, id)): Path<(String, String)>,
    Query(pairs): Query<Pairs>,
) -> Result<Response> {
    let options = options(&pairs, &["limit"])?;
    let limit = match text(&options, "limit") {
        None => None,
        Some(v) => Some(
            v.parse()
                .map_err(|_| Error::bad_parameter("limit", "must be a whole number"))?,
        ),
    };
    let items = service::history(&ctx, &access, &entity, &id, limit).await?;
    Ok(json_response(StatusCode::OK, items))
}

pub async fn merge(
    State(ctx): State<Arc<Context>>,
    Caller(access): Caller,
    Path(entity): Path<String>,
    Json(request): Json<MergeRequest>,
) -> Result<Response> {
    let merged = bulk::merge(&ctx, &access, Origin::Api, &entity, &request).await?;
    Ok(json_response(StatusCode::OK, merged))
}

pub async fn bulk(
    State(ctx): State<Arc<Context>>,
    Caller(access): Caller,
    Path(entity): Path<String>,
    Json(request): Json<BulkRequest>,
) -> Result<Response> {
    let done = bulk::bulk(&ctx, &access, Origin::Api, &entity, &request).await?;
    Ok(json_response(StatusCode::OK, done))
}

pub async fn list_tags(State(ctx): State<Arc<Context>>, Caller(_): Caller) -> Result<Response> {
    Ok(json_response(StatusCode::OK, tags::list(&ctx).await?))
}

pub async fn save_tag(
    State(ctx): State<Arc<Context>>,
    Caller(_): Caller,
    Json(request): Json<TagRequest>,
) -> Result<Response> {
    Ok(json_response(
        StatusCode::CREATED,
        tags::save(&ctx, &request).await?,
    ))
}
