//! Public answers outside `/api`: the knowledge-base search as JSON (`/kb/search`; the page
//! `/kb` is in `ui`) and the unsubscribe pages of campaign mail.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::extract::Query;
use super::problem::json_response;
use crate::context::Context;
use crate::error::Result;
use crate::knowledge_base;
use crate::ui::auth::notice;

#[derive(Debug, Default, Deserialize)]
pub struct Search {
    q: Option<String>,
}

/// `GET /kb/search?q=`: the matching public articles as JSON.
pub async fn kb_search(
    State(ctx): State<Arc<Context>>,
    Query(search): Query<Search>,
) -> Result<Response> {
    let items = knowledge_base::search(&ctx, search.q.as_deref()).await?;
    Ok(json_response(StatusCode::OK, json!({ "items": items })))
}

/// A public page's status for an error: 500 when the server is at fault, else 404.
fn error_status(error: &crate::error::Error) -> StatusCode {
    if error.is_server_error() {
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        StatusCode::NOT_FOUND
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct Unsubscribe {
    #[serde(default)]
    token: String,
}

/// `GET /unsubscribe?token=`: asks to confirm (mail scanners open links; only the button acts).
pub async fn unsubscribe_page(
    State(ctx): State<Arc<Context>>,
    Query(query): Query<Unsubscribe>,
) -> Response {
    let title = "退订 · Unsubscribe";
    match crate::mail::unsubscribe::address(&ctx, &query.token).await {
        Ok(email) => Html(notice(
            title,
            &[
                format!("不再向 {email} 发送营销邮件？"),
                format!("Stop campaign mail to {email}?"),
            ],
            Some(("/unsubscribe", &query.token, "退订 Unsubscribe")),
        ))
        .into_response(),
        Err(error) => (
            error_status(&error),
            Html(notice(title, &[error.public_message()], None)),
        )
            .into_response(),
    }
}

/// `POST /unsubscribe` (form): records the address; later campaign mail skips it.
pub async fn unsubscribe(
    State(ctx): State<Arc<Context>>,
    axum::Form(form): axum::Form<Unsubscribe>,
) -> Response {
    match crate::mail::unsubscribe::unsubscribe(&ctx, &form.token).await {
        Ok(email) => Html(notice(
            "已退订 · Unsubscribed",
            &[
                format!("{email} 将不再收到营销邮件。"),
                format!("{email} will get no more campaign mail."),
            ],
            None,
        ))
        .into_response(),
        Err(error) => (
            error_status(&error),
            Html(notice(
                "退订 · Unsubscribe",
                &[error.public_message()],
                None,
            )),
        )
            .into_response(),
    }
}
