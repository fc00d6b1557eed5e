//! Pages without a workspace around them: sign-in, sign-out, the first-start setup, the
//! language switch, and the public knowledge base. Before a session exists, forms are bound to
//! a random pre-session cookie (`tessera_pre`) so a foreign site cannot post them.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde_json::{Value, json};

use super::i18n::Lang;
use super::list::{Pairs, param};
use super::render::render;
use super::session::{LANG_COOKIE, PRE_COOKIE, cookie, visitor_lang};
use super::shell::assets;
use super::{Viewer, html, tri};
use crate::api::AppState;
use crate::api::auth::{SESSION_COOKIE, session_cookie};
use crate::error::Error;
use crate::settings::Settings;

fn set_cookie(response: &mut Response, value: String) {
    if let Ok(v) = HeaderValue::from_str(&value) {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
}

/// A path inside this site to go to after signing in (never another site).
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.contains('\\') => n.to_owned(),
        _ => "/".to_owned(),
    }
}

fn lang_links(lang: Lang, base: &str) -> Value {
    let sep = if base.contains('?') { '&' } else { '?' };
    json!([
        {"code": "zh-CN", "label": "中文", "current": lang.is_zh(), "href": format!("{base}{sep}lang=zh-CN")},
        {"code": "en", "label": "English", "current": !lang.is_zh(), "href": format!("{base}{sep}lang=en")},
    ])
}

/// The language of a signed-out page: `?lang=` (remembered in a cookie), else the visitor's.
fn page_lang(headers: &HeaderMap, pairs: &Pairs, settings: &Settings) -> (Lang, Option<String>) {
    match param(pairs, "lang") {
        Some(code) => {
            let lang = Lang::of(code);
            let cookie = format!(
                "{LANG_COOKIE}={}; Path=/; Max-Age=31536000; SameSite=Lax",
                lang.code
            );
            (lang, Some(cookie))
        }
        None => (visitor_lang(headers, settings), None),
    }
}

fn base_data(lang: Lang, title: &str, csrf: &str, links: Value) -> Value {
    json!({
        "s": lang.strings,
        "lang": lang.code,
        "i18n": lang.strings.get("js").cloned().unwrap_or(Value::Null).to_string(),
        "assets": assets(),
        "title": title,
        "csrf": csrf,
        "langs": links,
    })
}

/// A fresh pre-session token and its cookie, unless the browser has one already.
fn pre_token(headers: &HeaderMap) -> (String, Option<String>) {
    if let Some(existing) = cookie(headers, PRE_COOKIE) {
        return (existing, None);
    }
    let token = crate::auth::secrets::new_token("").unwrap_or_default();
    let cookie = format!("{PRE_COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/");
    (token, Some(cookie))
}

fn pre_ok(headers: &HeaderMap, form: &Pairs) -> bool {
    match (cookie(headers, PRE_COOKIE), param(form, "csrf")) {
        (Some(expected), Some(given)) => !expected.is_empty() && expected == given,
        _ => false,
    }
}

async fn settings(app: &AppState) -> Settings {
    Settings::load(&mut &app.ctx.db).await.unwrap_or_default()
}

async fn render_login(
    app: &AppState,
    headers: &HeaderMap,
    pairs: &Pairs,
    error: Option<&str>,
    email: &str,
    status: StatusCode,
) -> Response {
    let settings = settings(app).await;
    let (lang, lang_cookie) = page_lang(headers, pairs, &settings);
    let (csrf, pre_cookie) = pre_token(headers);
    let next = safe_next(param(pairs, "next"));
    let company = settings
        .get("company_name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let intro = if company.is_empty() {
        lang.t("sign_in_plain").to_owned()
    } else {
        lang.f("sign_in_to", &[("company", &company)])
    };
    let base = if next == "/" {
        "/login".to_owned()
    } else {
        format!("/login?next={}", super::url_encode(&next))
    };
    let mut data = base_data(lang, lang.t("sign_in"), &csrf, lang_links(lang, &base));
    super::list::merge(
        &mut data,
        json!({"intro": intro, "error": error.map(|e| lang.t(e)), "email": email, "next": next}),
    );
    let mut response = match render("login", &data) {
        Ok(body) => html(status, body),
        Err(e) => return super::error_page(None, headers, e),
    };
    for c in [lang_cookie, pre_cookie].into_iter().flatten() {
        set_cookie(&mut response, c);
    }
    response
}

/// `GET /login`.
pub async fn login_page(
    State(app): State<AppState>,
    headers: HeaderMap,
    Query(pairs): Query<Pairs>,
) -> Response {
    render_login(&app, &headers, &pairs, None, "", StatusCode::OK).await
}

/// `POST /login` (form): signs in with a session cookie and goes where the visitor was going.
pub async fn login(
    State(app): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    axum::Form(form): axum::Form<Pairs>,
) -> Response {
    let email = param(&form, "email").unwrap_or_default().to_owned();
    if !pre_ok(&headers, &form) {
        return super::csrf_refused(&headers);
    }
    let password = param(&form, "password").unwrap_or_default();
    match crate::auth::service::login(&app.ctx, &email, password, Some(peer.ip())).await {
        Ok((token, _)) => {
            let next = safe_next(param(&form, "next"));
            let mut response = Redirect::to(&next).into_response();
            let cookie = session_cookie(
                app.cookie_secure,
                &token,
                crate::auth::service::SESSION_DAYS * 24 * 3600,
            );
            response.headers_mut().append(header::SET_COOKIE, cookie);
            response
        }
        Err(Error::TooManyRequests(_)) => {
            render_login(
                &app,
                &headers,
                &form,
                Some("too_many"),
                &email,
                StatusCode::TOO_MANY_REQUESTS,
            )
            .await
        }
        Err(Error::Unauthorized(_)) => {
            render_login(
                &app,
                &headers,
                &form,
                Some("wrong_login"),
                &email,
                StatusCode::UNAUTHORIZED,
            )
            .await
        }
        Err(error) => super::error_page(None, &headers, error),
    }
}

/// `POST /logout`: ends the session.
pub async fn logout(State(app): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(token) = cookie(&headers, SESSION_COOKIE) {
        let _ = crate::auth::service::logout(&app.ctx, &token).await;
    }
    let mut response = Redirect::to("/login").into_response();
    response
        .headers_mut()
        .append(header::SET_COOKIE, session_cookie(app.cookie_secure, "", 0));
    response
}

/// `POST /ui/lang`: the signed-in user's language, kept in their profile.
pub async fn set_language(
    v: Viewer,
    headers: HeaderMap,
    axum::Form(form): axum::Form<Pairs>,
) -> Response {
    let lang = Lang::of(param(&form, "lang").unwrap_or("en"));
    tri!(
        v,
        headers,
        crate::auth::service::update_user(
            &v.ctx,
            &v.access,
            &v.user_id,
            crate::auth::shapes::UserChanges {
                language: Some(lang.code.to_owned()),
                ..Default::default()
            }
        )
        .await
    );
    // Back to the page the switch was used on (same site only).
    let back = headers
        .get(header::REFERER)
        .and_then(|r| r.to_str().ok())
        .and_then(|r| {
            let host = headers.get(header::HOST)?.to_str().ok()?;
            let rest = r.split_once("://")?.1;
            rest.strip_prefix(host).map(str::to_owned)
        });
    Redirect::to(&safe_next(back.as_deref())).into_response()
}

/// `GET /setup?token=`: the first-start page that creates the administrator.
pub async fn setup_page(
    State(app): State<AppState>,
    headers: HeaderMap,
    Query(pairs): Query<Pairs>,
) -> Response {
    render_setup(&app, &headers, &pairs, None, Vec::new(), StatusCode::OK).await
}

async fn render_setup(
    app: &AppState,
    headers: &HeaderMap,
    pairs: &Pairs,
    error: Option<String>,
    errors: Vec<String>,
    status: StatusCode,
) -> Response {
    let settings = settings(app).await;
    let (lang, lang_cookie) = page_lang(headers, pairs, &settings);
    let (csrf, pre_cookie) = pre_token(headers);
    let token: String = param(pairs, "token")
        .unwrap_or_default()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
        .collect();
    let base = format!("/setup?token={token}");
    let mut data = base_data(lang, lang.t("setup_title"), &csrf, lang_links(lang, &base));
    super::list::merge(
        &mut data,
        json!({
            "token": token, "error": error, "errors": errors,
            "email": param(pairs, "email").unwrap_or_default(),
            "display_name": param(pairs, "display_name").unwrap_or_default(),
        }),
    );
    let mut response = match render("setup", &data) {
        Ok(body) => html(status, body),
        Err(e) => return super::error_page(None, headers, e),
    };
    for c in [lang_cookie, pre_cookie].into_iter().flatten() {
        set_cookie(&mut response, c);
    }
    response
}

/// `POST /setup` (form): creates the administrator and signs them in.
pub async fn setup(
    State(app): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    axum::Form(form): axum::Form<Pairs>,
) -> Response {
    if !pre_ok(&headers, &form) {
        return super::csrf_refused(&headers);
    }
    let body = crate::auth::service::Setup {
        token: param(&form, "token").unwrap_or_default().to_owned(),
        email: param(&form, "email").unwrap_or_default().to_owned(),
        password: param(&form, "password").unwrap_or_default().to_owned(),
        display_name: param(&form, "display_name")
            .filter(|n| !n.trim().is_empty())
            .map(str::to_owned),
    };
    let settings = settings(&app).await;
    let lang = page_lang(&headers, &form, &settings).0;
    match crate::auth::service::setup(&app.ctx, body, Some(peer.ip())).await {
        Ok((token, _)) => {
            let mut response = Redirect::to("/").into_response();
            let cookie = session_cookie(
                app.cookie_secure,
                &token,
                crate::auth::service::SESSION_DAYS * 24 * 3600,
            );
            response.headers_mut().append(header::SET_COOKIE, cookie);
            response
        }
        Err(Error::Invalid { message, errors }) => {
            let list = errors
                .iter()
                .map(|e| format!("{}: {}", e.field, e.message))
                .collect();
            render_setup(
                &app,
                &headers,
                &form,
                Some(message),
                list,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
        Err(Error::Unauthorized(_)) => {
            let message = lang.t("setup_bad_link").to_owned();
            render_setup(
                &app,
                &headers,
                &form,
                Some(message),
                Vec::new(),
                StatusCode::UNAUTHORIZED,
            )
            .await
        }
        Err(Error::Conflict { .. }) => Redirect::to("/login").into_response(),
        Err(error) => super::error_page(None, &headers, error),
    }
}

/// `GET /kb?q=`: the public knowledge base, rendered on the server (works without scripts).
pub async fn kb_page(
    State(app): State<AppState>,
    headers: HeaderMap,
    Query(pairs): Query<Pairs>,
) -> Response {
    let settings = settings(&app).await;
    let (lang, lang_cookie) = page_lang(&headers, &pairs, &settings);
    let q = param(&pairs, "q").unwrap_or_default().to_owned();
    let (articles, status) = match crate::knowledge_base::search(&app.ctx, Some(&q)).await {
        Ok(items) => (items, StatusCode::OK),
        Err(_) => (Vec::new(), StatusCode::NOT_FOUND),
    };
    let articles: Vec<Value> = articles
        .iter()
        .map(|a| {
            json!({
                "title": a["title"], "category": a["category"],
                "lines": a["body"].as_str().unwrap_or_default().lines().collect::<Vec<_>>(),
            })
        })
        .collect();
    let base = if q.is_empty() {
        "/kb".to_owned()
    } else {
        format!("/kb?q={}", super::url_encode(&q))
    };
    let mut data = base_data(lang, lang.t("kb_title"), "", lang_links(lang, &base));
    super::list::merge(
        &mut data,
        json!({"q": q, "articles": articles, "searched": true}),
    );
    let mut response = match render("kb", &data) {
        Ok(body) => html(status, body),
        Err(e) => return super::error_page(None, &headers, e),
    };
    if let Some(c) = lang_cookie {
        set_cookie(&mut response, c);
    }
    response
}

/// A short public notice page in the workspace's look (unsubscribe confirmations): a heading,
/// lines of text, and optionally a one-button form.
pub fn notice(heading: &str, lines: &[String], form: Option<(&str, &str, &str)>) -> String {
    let lang = Lang::of("zh-CN");
    let mut data = base_data(lang, heading, "", json!([]));
    super::list::merge(
        &mut data,
        json!({
            "heading": heading,
            "lines": lines,
            "form": form.map(|(action, token, button)| json!({"action": action, "token": token, "button": button})),
        }),
    );
    render("notice", &data).unwrap_or_default()
}
