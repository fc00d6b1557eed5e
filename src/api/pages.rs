//! Public pages outside `/api`: the knowledge-base search (`/kb`, `/kb/search`).

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

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// `GET /kb?q=`: the self-service page, rendered on the server (works without scripts).
pub async fn kb_page(State(ctx): State<Arc<Context>>, Query(search): Query<Search>) -> Response {
    let q = search.q.unwrap_or_default();
    let results = match knowledge_base::search(&ctx, Some(&q)).await {
        Ok(items) if items.is_empty() => {
            "<p class=\"none\">没有找到相关文章 · No article found.</p>".to_owned()
        }
        Ok(items) => items
            .iter()
            .map(|a| {
                format!(
                    "<article><h2>{}</h2><p class=\"meta\">{}</p><div>{}</div></article>",
                    escape(a["title"].as_str().unwrap_or_default()),
                    escape(a["category"].as_str().unwrap_or_default()),
                    escape(a["body"].as_str().unwrap_or_default()).replace('\n', "<br>")
                )
            })
            .collect(),
        Err(error) => {
            return (
                error_status(&error),
                Html(page(
                    &q,
                    &format!("<p>{}</p>", escape(&error.public_message())),
                )),
            )
                .into_response();
        }
    };
    Html(page(&q, &results)).into_response()
}

/// A public page's status for an error: 500 when the server is at fault, else 404.
fn error_status(error: &crate::error::Error) -> StatusCode {
    if error.is_server_error() {
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        StatusCode::NOT_FOUND
    }
}

fn page(q: &str, results: &str) -> String {
    format!(
        r#"<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>知识库 · Knowledge base</title>
<style>body{{font:16px/1.6 system-ui,sans-serif;max-width:46rem;margin:2rem auto;padding:0 1rem}}
form{{display:flex;gap:.5rem}}input{{flex:1;padding:.5rem;font:inherit}}button{{padding:.5rem 1rem;font:inherit}}
article{{border-bottom:1px solid #ddd;padding:.8rem 0}}h2{{font-size:1.15rem;margin:0}}.meta{{color:#666;margin:.2rem 0}}</style></head>
<body><h1>知识库 · Knowledge base</h1>
<form method="get" action="/kb"><input name="q" value="{}" placeholder="搜索问题 · Search" autofocus><button>搜索 Search</button></form>
{}
</body></html>"#,
        escape(q),
        results
    )
}

#[derive(Debug, Default, Deserialize)]
pub struct Unsubscribe {
    #[serde(default)]
    token: String,
}

fn notice(title: &str, body: &str) -> String {
    format!(
        r#"<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title><style>body{{font:16px/1.6 system-ui,sans-serif;max-width:30rem;margin:3rem auto;padding:0 1rem}}
button{{padding:.6rem 1.2rem;font:inherit}}</style></head><body><h1>{title}</h1>{body}</body></html>"#
    )
}

/// `GET /unsubscribe?token=`: asks to confirm (mail scanners open links; only the button acts).
pub async fn unsubscribe_page(
    State(ctx): State<Arc<Context>>,
    Query(query): Query<Unsubscribe>,
) -> Response {
    match crate::mail::unsubscribe::address(&ctx, &query.token).await {
        Ok(email) => Html(notice(
            "退订 · Unsubscribe",
            &format!(
                "<p>不再向 <b>{}</b> 发送营销邮件？<br>Stop campaign mail to <b>{}</b>?</p>\
                 <form method=\"post\" action=\"/unsubscribe\"><input type=\"hidden\" name=\"token\" value=\"{}\">\
                 <button>退订 Unsubscribe</button></form>",
                escape(&email),
                escape(&email),
                escape(&query.token)
            ),
        ))
        .into_response(),
        Err(error) => (
            error_status(&error),
            Html(notice("退订 · Unsubscribe", &format!("<p>{}</p>", escape(&error.public_message())))),
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
            &format!(
                "<p>{} 将不再收到营销邮件。<br>{} will get no more campaign mail.</p>",
                escape(&email),
                escape(&email)
            ),
        ))
        .into_response(),
        Err(error) => (
            error_status(&error),
            Html(notice(
                "退订 · Unsubscribe",
                &format!("<p>{}</p>", escape(&error.public_message())),
            )),
        )
            .into_response(),
    }
}
