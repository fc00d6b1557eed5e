//! `/api/records/{entity}/export` and `/import`, `/api/imports/{id}`: thin handlers over
//! `transfer`.

use std::sync::Arc;

use axum::body::Body;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;

use super::auth::Caller;
use super::extract::Query;
use super::problem::json_response;
use crate::context::Context;
use crate::error::{Error, Result};
use crate::transfer::export::{self, ExportParams};
use crate::transfer::import::{self, ImportParams};
use serde_json::json;

type Pairs = Vec<(String, String)>;

/// `GET /api/records/{entity}/export`: the file streams as it is written.
pub async fn export(
    State(ctx): State<Arc<Context>>,
    Caller(access): Caller,
    Path(entity): Path<String>,
    Query(pairs): Query<Pairs>,
) -> Result<Response> {
    let params = ExportParams::from_pairs(&pairs)?;
    let export = export::start(ctx, &access, &entity, params).await?;
    let stream = futures_util::stream::unfold(export.chunks, |mut chunks| async move {
        chunks.recv().await.map(|chunk| (chunk, chunks))
    });
    let mut response = Response::new(Body::from_stream(stream));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(export.format.content_type()),
    );
    let disposition = format!("attachment; filename=\"{}\"", export.filename);
    headers.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_str(&disposition)
            .map_err(|_| Error::internal("an export's file name is not a header"))?,
    );
    *response.status_mut() = StatusCode::OK;
    Ok(response)
}

/// Largest file an import takes.
pub const IMPORT_LIMIT: usize = 512 * 1024 * 1024;

/// `POST /api/records/{entity}/import`: the file is the body. With `Prefer: respond-async`
/// it runs as a job: 202 and `Location: /api/imports/{id}`.
pub async fn import(
    State(ctx): State<Arc<Context>>,
    Caller(access): Caller,
    Path(entity): Path<String>,
    Query(pairs): Query<Pairs>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response> {
    let params = ImportParams::from_pairs(&pairs)?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let background = headers
        .get_all("prefer")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.split(',').any(|p| p.trim() == "respond-async"));
    let (id, report) = import::start(
        &ctx,
        &access,
        &entity,
        params,
        content_type,
        Vec::from(body),
        background,
    )
    .await?;
    let location = format!("/api/imports/{id}");
    let mut response = match report {
        Some(report) => json_response(StatusCode::OK, report),
        None => json_response(
            StatusCode::ACCEPTED,
            json!({"id": id, "status": "queued", "location": location}),
        ),
    };
    if let Ok(value) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    Ok(response)
}

/// `GET /api/imports/{id}`.
pub async fn get_import(
    State(ctx): State<Arc<Context>>,
    Caller(access): Caller,
    Path(id): Path<String>,
) -> Result<Response> {
    Ok(json_response(
        StatusCode::OK,
        import::get(&ctx, &access, &id).await?,
    ))
}

/// `POST /api/imports/{id}/undo`.
pub async fn undo(
    State(ctx): State<Arc<Context>>,
    Caller(access): Caller,
    Path(id): Path<String>,
) -> Result<Response> {
    Ok(json_response(
        StatusCode::OK,
        import::undo(&ctx, &access, &id).await?,
    ))
}

/// `GET /api/imports/{id}/errors.csv`.
pub async fn errors_csv(
    State(ctx): State<Arc<Context>>,
    Caller(access): Caller,
    Path(id): Path<String>,
) -> Result<Response> {
    let bytes = import::errors_csv(&ctx, &access, &id).await?;
    let mut response = Response::new(Body::from(bytes));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    if let Ok(value) =
        HeaderValue::from_str(&format!("attachment; filename=\"import-{id}-errors.csv\""))
    {
        response
            .headers_mut()
            .insert(header::CONTENT_DISPOSITION, value);
    }
    Ok(response)
}
