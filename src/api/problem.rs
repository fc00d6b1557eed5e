//! `application/problem+json` (RFC 9457) for every error the API returns. Server-side failures
//! are logged with a reference the client sees; their causes never leave the server.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::error::{Error, FieldError};

pub const PROBLEM_JSON: &str = "application/problem+json";

/// A problem document ready to send.
pub fn problem(status: StatusCode, kind: &str, detail: &str, errors: &[FieldError]) -> Response {
    let mut body = json!({
        "type": format!("urn:tessera:problem:{kind}"),
        "title": status.canonical_reason().unwrap_or("Error"),
        "status": status.as_u16(),
        "detail": detail,
    });
    if !errors.is_empty() {
        body["errors"] = json!(errors);
    }
    let mut response = (status, body.to_string()).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
    response
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        match &self {
            Error::NotFound(detail) => problem(StatusCode::NOT_FOUND, "not-found", detail, &[]),
            Error::BadRequest { message, errors } => {
                problem(StatusCode::BAD_REQUEST, "bad-request", message, errors)
            }
            Error::Invalid { message, errors } => problem(
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation",
                message,
                errors,
            ),
            Error::Conflict { message, errors } => {
                problem(StatusCode::CONFLICT, "conflict", message, errors)
            }
            Error::Unauthorized(detail) => {
                let mut response = problem(StatusCode::UNAUTHORIZED, "unauthorized", detail, &[]);
                response.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"tessera\""),
                );
                response
            }
            Error::Forbidden(detail) => problem(StatusCode::FORBIDDEN, "forbidden", detail, &[]),
            Error::TooManyRequests(detail) => problem(
                StatusCode::TOO_MANY_REQUESTS,
                "too-many-requests",
                detail,
                &[],
            ),
            Error::PreconditionFailed(detail) => problem(
                StatusCode::PRECONDITION_FAILED,
                "precondition-failed",
                detail,
                &[],
            ),
            Error::PayloadTooLarge(detail) => problem(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload-too-large",
                detail,
                &[],
            ),
            Error::Database(_) | Error::Migration(_) | Error::Internal(_) => problem(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                &self.public_message(),
                &[],
            ),
        }
    }
}

/// The answer to a panic in a handler: a 500 problem; the panic itself is logged.
pub fn panic_response(panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let message = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("unknown panic");
    let reference = uuid::Uuid::now_v7().simple().to_string();
    tracing::error!(reference, panic = message, "handler panicked");
    problem(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        &format!("An unexpected error occurred. Reference: {reference}"),
        &[],
    )
}

/// A JSON body with a status.
pub fn json_response(status: StatusCode, body: impl serde::Serialize) -> Response {
    (status, axum::Json(body)).into_response()
}

/// A versioned resource with its version as the `ETag`.
pub fn versioned_response(
    status: StatusCode,
    body: impl serde::Serialize + crate::wire::Versioned,
) -> Response {
    let version = body.version();
    with_etag(json_response(status, body), Some(version))
}

/// Sets a response's `ETag` to a version (`"3"`), as `If-Match` takes it back.
pub fn with_etag(mut response: Response, version: Option<i64>) -> Response {
    if let Some(v) = version
        && let Ok(value) = HeaderValue::from_str(&format!("\"{v}\""))
    {
        response.headers_mut().insert(header::ETAG, value);
    }
    response
}
