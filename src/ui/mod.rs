//! The web pages: server-rendered HTML from Handlebars templates, generated from metadata (one
//! list, one form, one record page, one kanban and one calendar for every entity), with htmx
//! fragments for the interactions. Handlers are thin like the API's: they take the [`Viewer`]
//! (the same `Access`), call the same services, and render.
//!
//! - `session.rs`: the session cookie → [`Viewer`]; the CSRF guard
//! - `i18n.rs`: string catalogues per language and the choice of language
//! - `render.rs`: templates, embedded assets with hashed URLs, option colours
//! - `shell.rs`: what every page shares (sidebar by module, top bar) and value display
//! - `list.rs`, `record.rs`, `form.rs`, `board.rs` (kanban and calendar), `home.rs`,
//!   `trash.rs`, `auth.rs` (sign-in, setup, public pages): the renderers

pub mod auth;
mod board;
mod dashboards;
mod form;
mod home;
pub mod i18n;
mod import;
mod list;
mod record;
pub mod render;
pub mod session;
mod shell;
mod trash;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;

use crate::api::AppState;
use crate::error::Error;
use i18n::Lang;
pub use session::Viewer;

/// The Content-Security-Policy of every response: no inline script or style, no framing.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; frame-ancestors 'none'; base-uri 'self'; form-action 'self'";

/// The pages' routes (merged into the application router beside `/api`).
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(home::page))
        .route("/dashboards", get(dashboards::index))
        .route("/dashboards/{id}", get(dashboards::one))
        .route("/login", get(auth::login_page).post(auth::login))
        .route("/logout", post(auth::logout))
        .route("/setup", get(auth::setup_page).post(auth::setup))
        .route("/kb", get(auth::kb_page))
        .route("/ui/lang", post(auth::set_language))
        .route("/ui/assets/{*path}", get(render::asset))
        .route("/ui/colors.css", get(colors))
        .route("/ui/search", get(list::search))
        .route("/e/{entity}", get(list::page).post(form::create))
        .route("/e/{entity}/rows", get(list::rows))
        .route("/e/{entity}/totals", get(list::totals))
        .route("/e/{entity}/bulk", post(list::bulk))
        .route("/e/{entity}/views", post(list::save_view))
        .route("/e/{entity}/lookup", get(form::lookup))
        .route("/e/{entity}/dupes", get(form::dupes))
        .route("/e/{entity}/new", get(form::new_page))
        .route("/e/{entity}/trash", get(trash::page))
        .route("/e/{entity}/import", get(import::page))
        .route(
            "/e/{entity}/{id}",
            get(record::page)
                .patch(record::patch)
                .delete(record::delete),
        )
        .route(
            "/e/{entity}/{id}/edit",
            get(form::edit_page).post(form::update),
        )
        .route("/e/{entity}/{id}/cell/{field}", get(record::cell_editor))
        .route("/e/{entity}/{id}/copy", post(record::copy))
        .route("/e/{entity}/{id}/restore", post(trash::restore))
        .route("/e/{entity}/{id}/erase", post(trash::erase))
        .route(
            "/e/{entity}/{id}/merge",
            get(record::merge_page).post(record::merge_post),
        )
        .route("/e/{entity}/{id}/run", post(record::run_automation))
        .layer(axum::middleware::from_fn(session::csrf_guard))
}

/// Security headers on every response (pages, fragments and the API alike).
pub async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    response
}

/// `Server-Timing: app;dur=<ms>`: how long the server took to answer (sign-in, the work and
/// the rendering), for the browser's developer tools and the page benchmarks.
pub async fn server_timing(request: Request, next: Next) -> Response {
    let started = std::time::Instant::now();
    let mut response = next.run(request).await;
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    if let Ok(value) = HeaderValue::from_str(&format!("app;dur={ms:.2}")) {
        response.headers_mut().insert("server-timing", value);
    }
    response
}

/// `GET /ui/colors.css`: the colours of every option in the catalog.
async fn colors(State(app): State<AppState>) -> Response {
    let css = match app.ctx.schema.catalog(&app.ctx.db).await {
        Ok(catalog) => render::colors_css(&catalog),
        Err(_) => String::new(),
    };
    let mut response = (StatusCode::OK, css).into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/css; charset=utf-8"),
    );
    // The URL carries the schema epoch, so a changed catalog gets a new URL.
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=31536000, immutable"),
    );
    response
}

/// Percent-encodes a query-string component.
pub fn url_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Decodes a form or query component (`+` is a space).
pub fn url_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A template rendered as a 200 page or fragment, or the error page when rendering fails.
pub fn rendered(
    viewer: &Viewer,
    headers: &HeaderMap,
    template: &str,
    data: &impl serde::Serialize,
) -> Response {
    match render::render(template, data) {
        Ok(body) => html(StatusCode::OK, body),
        Err(e) => error_page(Some(viewer), headers, e),
    }
}

/// An HTML page response with no caching (pages show live data and the CSRF token).
pub fn html(status: StatusCode, body: String) -> Response {
    let mut response = (status, Html(body)).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Adds `HX-Trigger` with a toast for app.js.
pub fn with_toast(mut response: Response, message: &str, kind: &str) -> Response {
    let trigger = json!({"tessera:toast": {"message": message, "kind": kind}}).to_string();
    // Non-ASCII text is escaped so the header is valid whatever the language.
    let ascii: String = trigger
        .chars()
        .map(|c| {
            if c.is_ascii() {
                c.to_string()
            } else {
                let mut buf = [0u16; 2];
                c.encode_utf16(&mut buf)
                    .iter()
                    .map(|u| format!("\\u{u:04x}"))
                    .collect()
            }
        })
        .collect();
    if let Ok(v) = HeaderValue::from_str(&ascii) {
        response.headers_mut().insert("hx-trigger", v);
    }
    response
}

/// What a user sees when something fails: a page (or, for htmx, a toast), in their language,
/// never the raw error of a server failure.
pub fn error_page(viewer: Option<&Viewer>, headers: &HeaderMap, error: Error) -> Response {
    let lang = viewer.map_or_else(|| Lang::of("en"), |v| v.lang);
    let (status, message) = match &error {
        Error::NotFound(_) => (StatusCode::NOT_FOUND, lang.t("not_found").to_owned()),
        Error::Forbidden(m) => (
            StatusCode::FORBIDDEN,
            format!("{} {m}", lang.t("forbidden")),
        ),
        Error::Unauthorized(_) => (StatusCode::UNAUTHORIZED, lang.t("forbidden").to_owned()),
        Error::BadRequest { message, .. } | Error::Invalid { message, .. } => {
            (StatusCode::BAD_REQUEST, message.clone())
        }
        Error::Conflict { message, .. } => (StatusCode::CONFLICT, message.clone()),
        Error::PreconditionFailed(_) => (StatusCode::CONFLICT, lang.t("conflict").to_owned()),
        Error::TooManyRequests(m) | Error::PayloadTooLarge(m) => {
            (StatusCode::BAD_REQUEST, m.clone())
        }
        Error::Database(_) | Error::Migration(_) | Error::Internal(_) => {
            let reference = uuid::Uuid::now_v7().simple().to_string();
            tracing::error!(reference, error = %error, "page failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                lang.f("internal_error", &[("r", &reference)]),
            )
        }
    };
    if session::is_fragment(headers) {
        let response = (status, message.clone()).into_response();
        return with_toast(response, &message, "error");
    }
    let data = json!({
        "s": lang.strings,
        "lang": lang.code,
        "title": lang.t("error_title"),
        "message": message,
        "assets": shell::assets(),
    });
    match render::render("error", &data) {
        Ok(body) => html(status, body),
        Err(_) => (status, message).into_response(),
    }
}

/// The refusal of a request without the session's CSRF token.
pub fn csrf_refused(headers: &HeaderMap) -> Response {
    let lang = Lang::of("en");
    let message = format!(
        "{} / {}",
        lang.t("csrf_failed"),
        Lang::of("zh-CN").t("csrf_failed")
    );
    if session::is_fragment(headers) {
        return with_toast(
            (StatusCode::FORBIDDEN, message.clone()).into_response(),
            &message,
            "error",
        );
    }
    error_page(None, headers, Error::Forbidden(message))
}

/// Unwraps a service result inside a handler, turning an error into the error page.
macro_rules! tri {
    ($viewer:expr, $headers:expr, $e:expr) => {
        match $e {
            Ok(v) => v,
            Err(error) => return $crate::ui::error_page(Some(&$viewer), &$headers, error),
        }
    };
}
pub(crate) use tri;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_round_trip() {
        let text = "level = \"A\" && name ~ '客户'&x=1+2%";
        assert_eq!(url_decode(&url_encode(text)), text);
        assert_eq!(url_decode("a+b%20c%zz"), "a b c%zz");
    }
}
