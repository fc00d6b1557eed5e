//! `/api/templates`: the packages this server offers, and installing one.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;

use super::AppState;
use super::auth::Caller;
use super::problem::json_response;
use crate::error::{Error, Result};
use crate::templates::{self, install};

pub async fn list(State(app): State<AppState>, Caller(access): Caller) -> Result<Response> {
    Ok(json_response(
        StatusCode::OK,
        templates::list(&app.ctx, app.installer.dir.as_deref(), &access).await?,
    ))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstallBody {
    #[serde(default)]
    sample_data: bool,
}

pub async fn install(
    State(app): State<AppState>,
    Caller(access): Caller,
    Path(name): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response> {
    // The body is optional: no body installs without sample data.
    let sample_data = if body.iter().all(u8::is_ascii_whitespace) {
        false
    } else {
        serde_json::from_slice::<InstallBody>(&body)
            .map_err(|e| Error::bad_request(format!("the body is not an install request: {e}")))?
            .sample_data
    };
    Ok(json_response(
        StatusCode::OK,
        install::install(&app.ctx, &app.installer, &access, &name, sample_data).await?,
    ))
}
