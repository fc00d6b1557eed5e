//! Extractors whose rejections are problem documents like every other error: a malformed
//! body, query string or path answers in the same shape as a validation failure.

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;

use super::problem::problem;
use crate::error::Error;

/// A JSON request body.
pub struct Json<T>(pub T);

impl<S, T> FromRequest<S> for Json<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(Json(value)),
            Err(rejection) => Err(json_rejection(rejection)),
        }
    }
}

fn json_rejection(rejection: JsonRejection) -> Response {
    let detail = rejection.body_text();
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        return Error::PayloadTooLarge("the request body is too large".into()).into_response();
    }
    match rejection {
        JsonRejection::MissingJsonContentType(_) => problem(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            "send the body as JSON with Content-Type: application/json",
            &[],
        ),
        JsonRejection::JsonDataError(_) => {
            problem(StatusCode::UNPROCESSABLE_ENTITY, "validation", &detail, &[])
        }
        _ => problem(StatusCode::BAD_REQUEST, "bad-request", &detail, &[]),
    }
}

/// A query string.
pub struct Query<T>(pub T);

impl<S, T> FromRequestParts<S> for Query<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(value)) => Ok(Query(value)),
            Err(rejection) => Err(query_rejection(rejection)),
        }
    }
}

fn query_rejection(rejection: QueryRejection) -> Response {
    problem(
        StatusCode::BAD_REQUEST,
        "bad-request",
        &rejection.body_text(),
        &[],
    )
}

/// Reads an `If-Match` header holding a version: `"3"`, `W/"3"` or `3`. `*` means any.
pub fn if_match(headers: &axum::http::HeaderMap) -> Result<Option<i64>, Error> {
    let Some(value) = headers.get(axum::http::header::IF_MATCH) else {
        return Ok(None);
    };
    let text = value
        .to_str()
        .map_err(|_| Error::bad_request("If-Match must be a version, like \"3\""))?
        .trim();
    if text == "*" {
        return Ok(None);
    }
    let bare = text.trim_start_matches("W/").trim_matches('"');
    bare.parse::<i64>()
        .map(Some)
        .map_err(|_| Error::bad_request("If-Match must be a version, like \"3\""))
}
