//! `/api/automations`, `/api/mail-templates`, `/api/outbox` and `/api/settings`. Thin: parse,
//! call the service, shape the response.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::auth::Caller;
use super::extract::{Json, Query, if_match};
use super::problem::{json_response, versioned_response};
use crate::automation::Scripts;
use crate::automation::service::{self, RunBody};
use crate::automation::shapes::AutomationInput;
use crate::context::Context;
use crate::error::Result;
use crate::mail::service as mail;
use crate::mail::shapes::TemplateInput;

/// Paging of a log: `?status=&before=&limit=`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogPage {
    status: Option<String>,
    before: Option<String>,
    limit: Option<i64>,
}

pub async fn list(State(ctx): State<Arc<Context>>, Caller(access): Caller) -> Result<Response> {
    Ok(json_response(
        StatusCode::OK,
        service::list(&ctx, &access).await?,
    ))
}

pub async fn create(
    State(ctx): State<Arc<Context>>,
    State(scripts): State<Arc<Scripts>>,
    Caller(access): Caller,
    Json(body): Json<AutomationInput>,
) -> Result<Response> {
    Ok(versioned_response(
        StatusCode::CREATED,
        service::create(&ctx, &scripts, &access, &body).await?,
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
    State(scripts): State<Arc<Scripts>>,
    Caller(access): Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    Json(body): Json<AutomationInput>,
) -> Result<Response> {
    let expected = if_match(&headers)?;
    Ok(versioned_response(
        StatusCode::OK,
        service::update(&ctx, &scripts, &access, &id, &body, expected).await?,
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

pub async fn run(
    State(ctx): State<Arc<Context>>,
    State(scripts): State<Arc<Scripts>>,
    Caller(access): Caller,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response> {
    // The body is optional: an empty one runs with no input.
    let body: RunBody = if body.iter().all(u8::is_ascii_whitespace) {
        RunBody::default()
    } else {
        super::extract::read_body(&body)?
    };
    Ok(json_response(
        StatusCode::OK,
        service::run_now(&ctx, &scripts, &access, &id, body).await?,
    ))
}

pub async fn runs(
    State(ctx): State<Arc<Context>>,
    Caller(access): Caller,
    Path(id): Path<String>,
    Query(page): Query<LogPage>,
) -> Result<Response> {
    Ok(json_response(
        StatusCode::OK,
        service::runs(
            &ctx,
            &access,
            &id,
            page.status.as_deref(),
            page.before.as_deref(),
            page.limit,
        )
        .await?,
    ))
}

pub async fn list_templates(
    State(ctx): State<Arc<Context>>,
    Caller(access): Caller,
) -> Result<Response> {
    Ok(json_response(
        StatusCode::OK,
        mail::list_templates(&ctx, &access).await?,
    ))
}

pub async fn create_template(
    State(ctx): State<Arc<Context>>,
    Caller(access): Caller,
    Json(body): Json<TemplateInput>,
) -> Result<Response> {
    Ok(json_response(
        StatusCode::CREATED,
        mail::save_template(&ctx, &access, None, body).await?,
    ))
}

pub async fn get_template(
    State(ctx): State<Arc<Context>>,
    Caller(access): Caller,
    Path(id): Path<String>,
) -> Result<Response> {
    Ok(json_response(
        StatusCode::OK,
        mail::get_template(&ctx, &access, &id).await?,
    ))
}

pub async fn replace_template(
    State(ctx): State<Arc<Context>>,
    Caller(access): Caller,
    Path(id): Path<String>,
    Json(body): Json<TemplateInput>,
) -> Result<Response> {
    Ok(json_response(
        StatusCode::OK,
        mail::save_template(&ctx, &access, Some(&id), body).await?,
    ))
}

pub async fn delete_template(
    State(ctx): State<Arc<Context>>,
    Caller(access): Caller,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    mail::delete_template(&ctx, &access, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn outbox(
    State(ctx): State<Arc<Context>>,
    Caller(access): Caller,
    Query(page): Query<LogPage>,
) -> Result<Response> {
    Ok(json_response(
        StatusCode::OK,
        mail::outbox(
            &ctx,
            &access,
            page.status.as_deref(),
            page.before.as_deref(),
            page.limit,
        )
        .await?,
    ))
}

pub async fn get_settings(
    State(ctx): State<Arc<Context>>,
    Caller(access): Caller,
) -> Result<Response> {
    Ok(json_response(
        StatusCode::OK,
        crate::settings::get(&ctx, &access).await?,
    ))
}

pub async fn update_settings(
    State(ctx): State<Arc<Context>>,
    Caller(access): Caller,
    Json(body): Json<Map<String, Value>>,
) -> Result<Response> {
    Ok(json_response(
        StatusCode::OK,
        crate::settings::update(&ctx, &access, &body).await?,
    ))
}
