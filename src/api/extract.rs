//! Extractors whose rejections are problem documents like every other error: a malformed
//! body, query string or path answers in the same shape as a validation failure.

use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;

use super::problem::problem;
use crate::error::Error;

/// A JSON request body, read into its type. A value of the wrong type, a missing or an unknown
/// property answers 422 naming the property where it happened (`roles[1]`, `trigger.cron`), as
/// a validation failure does; malformed JSON answers 400.
pub struct Json<T>(pub T);

impl<S, T> FromRequest<S> for Json<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !is_json(req.headers()) {
            return Err(problem(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                "send the body as JSON with Content-Type: application/json",
                &[],
            ));
        }
        let bytes = match Bytes::from_request(req, state).await {
            Ok(bytes) => bytes,
            Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                return Err(
                    Error::PayloadTooLarge("the request body is too large".into()).into_response(),
                );
            }
            Err(rejection) => {
                return Err(problem(
                    StatusCode::BAD_REQUEST,
                    "bad-request",
                    &rejection.body_text(),
                    &[],
                ));
            }
        };
        read_body(&bytes)
            .map(Json)
            .map_err(IntoResponse::into_response)
    }
}

/// `application/json` or a `+json` type, as axum's own extractor accepts.
fn is_json(headers: &axum::http::HeaderMap) -> bool {
    let Some(mime) = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
    else {
        return false;
    };
    let mime = mime.trim().to_ascii_lowercase();
    mime == "application/json" || (mime.starts_with("application/") && mime.ends_with("+json"))
}

/// Reads a JSON body into `T`, with the path of the property that did not fit.
pub fn read_body<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Error> {
    let mut reader = serde_json::Deserializer::from_slice(bytes);
    let value: T = serde_path_to_error::deserialize(&mut reader).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        let message = without_position(&inner.to_string());
        match inner.classify() {
            serde_json::error::Category::Data => crate::wire::unfit(path, &message),
            _ => Error::bad_request(format!("the body is not valid JSON: {inner}")),
        }
    })?;
    reader
        .end()
        .map_err(|e| Error::bad_request(format!("the body is not valid JSON: {e}")))?;
    Ok(value)
}

/// serde_json's message without its " at line 1 column 12" (the path says where).
fn without_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(at) => message[..at].to_owned(),
        None => message.to_owned(),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Role {
        name: String,
        roles: Option<Vec<String>>,
    }

    fn refusal(body: &str) -> (String, Vec<String>) {
        match read_body::<Role>(body.as_bytes()) {
            Ok(role) => panic!("{body} was read as {role:?}"),
            Err(Error::Invalid { errors, .. }) => (
                "invalid".into(),
                errors.into_iter().map(|e| e.field).collect(),
            ),
            Err(Error::BadRequest { .. }) => ("bad request".into(), Vec::new()),
            Err(other) => panic!("{body}: unexpected {other:?}"),
        }
    }

    #[test]
    fn a_body_that_does_not_fit_names_the_property() {
        assert_eq!(
            refusal(r#"{"name": "rep", "color": 1}"#),
            ("invalid".into(), vec!["color".into()])
        );
        assert_eq!(
            refusal(r#"{"roles": []}"#),
            ("invalid".into(), vec!["name".into()])
        );
        assert_eq!(
            refusal(r#"{"name": "rep", "roles": ["a", 2]}"#),
            ("invalid".into(), vec!["roles[1]".into()])
        );
        assert_eq!(refusal(r#""a role""#), ("invalid".into(), Vec::new()));
        assert_eq!(
            refusal(r#"{"name": "rep""#),
            ("bad request".into(), Vec::new())
        );
        assert_eq!(
            refusal(r#"{"name": "rep"} x"#),
            ("bad request".into(), Vec::new())
        );
        let role: Role = read_body(br#"{"name": "rep"}"#).expect("fits");
        assert_eq!(role.name, "rep");
    }
}
