//! Who is looking at a page: the session cookie becomes a [`Viewer`] (the same `Access` the API
//! uses, the language, the time zone, the settings); and the CSRF guard every state-changing
//! request made with the cookie passes.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};

use super::i18n::Lang;
use crate::api::AppState;
use crate::api::auth::{SESSION_COOKIE, csrf_token};
use crate::auth::Access;
use crate::context::Context;
use crate::settings::Settings;

/// The cookie holding the language chosen on the sign-in page (before there is a user).
pub const LANG_COOKIE: &str = "tessera_lang";
/// The cookie binding the sign-in form's CSRF field before a session exists.
pub const PRE_COOKIE: &str = "tessera_pre";

/// A cookie's value.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.to_owned())
        .filter(|v| !v.is_empty())
}

/// Whether a request came from htmx (or app.js's fetch), which wants fragments, not pages.
pub fn is_fragment(headers: &HeaderMap) -> bool {
    headers.contains_key("hx-request")
}

/// The language of a signed-out visitor: their choice on the sign-in page, else the browser's
/// `Accept-Language`, else the system setting.
pub fn visitor_lang(headers: &HeaderMap, settings: &Settings) -> Lang {
    if let Some(code) = cookie(headers, LANG_COOKIE) {
        return Lang::of(&code);
    }
    headers
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
        .and_then(Lang::from_accept)
        .unwrap_or_else(|| Lang::of(&settings.default_language()))
}

/// A signed-in user looking at a page.
pub struct Viewer {
    pub ctx: Arc<Context>,
    pub access: Access,
    pub csrf: String,
    pub lang: Lang,
    pub tz: chrono_tz::Tz,
    pub settings: Settings,
    pub user_id: String,
    pub name: String,
    pub email: String,
}

impl Viewer {
    pub fn t(&self, key: &str) -> &'static str {
        self.lang.t(key)
    }

    pub fn f(&self, key: &str, args: &[(&str, &str)]) -> String {
        self.lang.f(key, args)
    }
}

impl FromRequestParts<AppState> for Viewer {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, Response> {
        let ctx = app.ctx.clone();
        let signed_out = || {
            if is_fragment(&parts.headers) {
                // htmx follows HX-Redirect with a full page load.
                let mut response = StatusCode::UNAUTHORIZED.into_response();
                if let Ok(v) = "/login".parse() {
                    response.headers_mut().insert("hx-redirect", v);
                }
                response
            } else {
                let next = parts
                    .uri
                    .path_and_query()
                    .map(|p| p.as_str())
                    .unwrap_or("/");
                let next = if next == "/" {
                    String::new()
                } else {
                    format!("?next={}", super::url_encode(next))
                };
                Redirect::to(&format!("/login{next}")).into_response()
            }
        };
        let Some(token) = cookie(&parts.headers, SESSION_COOKIE) else {
            return Err(signed_out());
        };
        let access = match crate::auth::service::authenticate(&ctx, &token).await {
            Ok(Some(access)) => access,
            Ok(None) => return Err(signed_out()),
            Err(error) => return Err(super::error_page(None, &parts.headers, error)),
        };
        let settings = match Settings::load(&mut &ctx.db).await {
            Ok(s) => s,
            Err(error) => return Err(super::error_page(None, &parts.headers, error)),
        };
        let Some(actor) = access.actor().cloned() else {
            return Err(signed_out());
        };
        let tz = actor
            .time_zone
            .parse::<chrono_tz::Tz>()
            .unwrap_or_else(|_| settings.time_zone());
        Ok(Viewer {
            ctx,
            csrf: csrf_token(&token),
            lang: Lang::of(&actor.language),
            tz,
            settings,
            user_id: actor.id.clone(),
            name: actor.display_name.clone(),
            email: actor.email.clone(),
            access,
        })
    }
}

/// Refuses a state-changing request to the pages made with the session cookie unless it
/// carries the session's CSRF token (the `X-CSRF-Token` header htmx and app.js send, or the
/// `csrf` field of a plain form). Sign-in and setup have no session yet and check their own
/// pre-session token.
pub async fn csrf_guard(request: Request, next: Next) -> Response {
    let safe = matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    );
    let path = request.uri().path();
    if safe || path.starts_with("/api/") || matches!(path, "/login" | "/setup" | "/unsubscribe") {
        return next.run(request).await;
    }
    let Some(session) = cookie(request.headers(), SESSION_COOKIE) else {
        // No session: the handlers answer as to anyone signed out.
        return next.run(request).await;
    };
    let expected = csrf_token(&session);
    let header_token = request
        .headers()
        .get("x-csrf-token")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    if header_token.as_deref() == Some(expected.as_str()) {
        return next.run(request).await;
    }
    let is_form = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"));
    if header_token.is_none() && is_form {
        let (parts, body) = request.into_parts();
        let Ok(bytes) = axum::body::to_bytes(body, 2 * 1024 * 1024).await else {
            return super::csrf_refused(&parts.headers);
        };
        let given = form_urlencoded_field(&bytes, "csrf");
        if given.as_deref() == Some(expected.as_str()) {
            return next
                .run(Request::from_parts(parts, Body::from(bytes)))
                .await;
        }
        return super::csrf_refused(&parts.headers);
    }
    super::csrf_refused(request.headers())
}

/// One field of an `application/x-www-form-urlencoded` body.
pub fn form_urlencoded_field(body: &[u8], name: &str) -> Option<String> {
    let pairs: Vec<(String, String)> = serde_urlencoded_pairs(body);
    pairs.into_iter().find(|(k, _)| k == name).map(|(_, v)| v)
}

/// The pairs of a form body (what axum's `Form` reads), without failing on odd input.
pub fn serde_urlencoded_pairs(body: &[u8]) -> Vec<(String, String)> {
    String::from_utf8_lossy(body)
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (super::url_decode(k), super::url_decode(v))
        })
        .collect()
}
