//! Authentication at the edge: every `/api` route but the health check, sign-in and the
//! first-start setup needs a session (cookie or bearer) or an API token. The middleware turns
//! it into an [`Access`] that handlers take as [`Caller`] and pass to the services.
//! Also the routes of `/api/auth`, `/api/me`, `/api/users`, `/api/roles`, `/api/departments`,
//! `/api/tokens` and the setup page.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequestParts, Path, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::AppState;
use super::extract::Json;
use super::problem::json_response;
use crate::auth::Access;
use crate::auth::service::{self, NewToken, NewUser, Setup};
use crate::context::Context;
use crate::error::{Error, Result};

/// The browser's session cookie.
pub const SESSION_COOKIE: &str = "tessera_session";

/// Routes anyone may call.
const PUBLIC: &[&str] = &["/api/health", "/api/auth/login", "/api/setup"];

/// The caller's access, put in place by the middleware.
#[derive(Clone)]
pub struct Caller(pub Access);

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Caller>()
            .cloned()
            .ok_or_else(|| Error::Unauthorized("sign in first".into()))
    }
}

/// The bearer token of a request: `Authorization: Bearer …`, else the session cookie.
pub fn bearer(headers: &HeaderMap) -> Option<String> {
    if let Some(value) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        let mut parts = value.splitn(2, ' ');
        if parts
            .next()
            .is_some_and(|scheme| scheme.eq_ignore_ascii_case("bearer"))
        {
            return parts
                .next()
                .map(|t| t.trim().to_owned())
                .filter(|t| !t.is_empty());
        }
    }
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value.to_owned())
        .filter(|t| !t.is_empty())
}

/// Authenticates every API request that is not public.
pub async fn authenticate(
    State(ctx): State<Arc<Context>>,
    mut request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path();
    if !path.starts_with("/api/") || PUBLIC.contains(&path) {
        return next.run(request).await;
    }
    let Some(token) = bearer(request.headers()) else {
        return Error::Unauthorized("sign in first (a session or an API token)".into())
            .into_response();
    };
    match service::authenticate(&ctx, &token).await {
        Ok(Some(access)) => {
            request.extensions_mut().insert(Caller(access));
            next.run(request).await
        }
        Ok(None) => Error::Unauthorized(
            "the session or token is not valid (expired, revoked, or the user is deactivated)"
                .into(),
        )
        .into_response(),
        Err(error) => error.into_response(),
    }
}

fn session_cookie(secure: bool, token: &str, max_age: i64) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{SESSION_COOKIE}={token}; HttpOnly; SameSite=Lax; Path=/; Max-Age={max_age}{secure}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("tessera_session=; Max-Age=0"))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Login {
    email: String,
    password: String,
}

pub async fn login(
    State(app): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Json(body): Json<Login>,
) -> Result<Response> {
    let (token, user) =
        service::login(&app.ctx, &body.email, &body.password, Some(peer.ip())).await?;
    signed_in(&app, token, user)
}

fn signed_in(app: &AppState, token: String, user: Value) -> Result<Response> {
    let cookie = session_cookie(app.cookie_secure, &token, service::SESSION_DAYS * 24 * 3600);
    let mut response = json_response(StatusCode::OK, json!({"token": token, "user": user}));
    response.headers_mut().insert(header::SET_COOKIE, cookie);
    Ok(response)
}

pub async fn logout(State(app): State<AppState>, headers: HeaderMap) -> Result<Response> {
    if let Some(token) = bearer(&headers) {
        service::logout(&app.ctx, &token).await?;
    }
    let mut response = StatusCode::NO_CONTENT.into_response();
    response
        .headers_mut()
        .insert(header::SET_COOKIE, session_cookie(app.cookie_secure, "", 0));
    Ok(response)
}

pub async fn me(State(ctx): State<Arc<Context>>, Caller(access): Caller) -> Result<Response> {
    Ok(json_response(
        StatusCode::OK,
        service::me(&ctx, &access).await?,
    ))
}

pub async fn list_users(
    State(ctx): State<Arc<Context>>,
    Caller(access): Caller,
) -> Result<Response> {
    Ok(json_response(
        StatusCode::OK,
        service::list_users(&ctx, &access).await?,
    ))
}

pub async fn create_user(
    State(ctx): State<Arc<Context>>,
    Caller(access): Caller,
    Json(body): Json<NewUser>,
) -> Result<Response> {
    Ok(json_response(
        StatusCode::CREATED,
        service::create_user(&ctx, &access, body).await?,
    ))
}

pub async fn get_user(
    State(ctx): State<Arc<Context>>,
    Caller(access): Caller,
    Path(id): Path<String>,
) -> Result<Response> {
    Ok(json_response(
        StatusCode::OK,
        service::get_user(&ctx, &access, &id).await?,
    ))
}

pub async fn update_user(
    State(ctx): State<Arc<Context>>,
    Caller(access): Caller,
    Path(id): Path<String>,
    Json(body): Json<Value>,
) -> Result<Response> {
    Ok(json_response(
        StatusCode::OK,
        service::update_user(&ctx, &access, &id, &body).await?,
    ))
}

pub async fn list_roles(
    State(ctx): State<Arc<Context>>,
    Caller(access): Caller,
) -> Result<Response> {
    Ok(json_response(
        StatusCode::OK,
        service::list_roles(&ctx, &access).await?,
    ))
}

pub async fn create_role(
    State(ctx): State<Arc<Context>>,
    Caller(access): Caller,
    Json(body): Json<Value>,
) -> Result<Response> {
    Ok(json_response(
        StatusCode::CREATED,
        service::save_role(&ctx, &access, None, &body).await?,
    ))
}

pub async fn get_role(
    State(ctx): State<Arc<Context>>,
    Caller(access): Caller,
    Path(id): Path<String>,
) -> Result<Response> {
    Ok(json_response(
        StatusCode::OK,
        service::get_role(&ctx, &access, &id).await?,
    ))
}

pub async fn replace_role(
    State(ctx): State<Arc<Context>>,
    Caller(access): Caller,
    Path(id): Path<String>,
    Json(body): Json<Value>,
) -> Result<Response> {
    Ok(json_response(
        StatusCode::OK,
        service::save_role(&ctx, &access, Some(&id), &body).await?,
    ))
}

pub async fn delete_role(
    State(ctx): State<Arc<Context>>,
    Caller(access): Caller,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    service::delete_role(&ctx, &access, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn list_departments(
    State(ctx): State<Arc<Context>>,
    Caller(_): Caller,
) -> Result<Response> {
    Ok(json_response(
        StatusCode::OK,
        service::list_departments(&ctx).await?,
    ))
}

pub async fn create_department(
    State(ctx): State<Arc<Context>>,
    Caller(access): Caller,
    Json(body): Json<Value>,
) -> Result<Response> {
    Ok(json_response(
        StatusCode::CREATED,
        service::create_department(&ctx, &access, &body).await?,
    ))
}

pub async fn update_department(
    State(ctx): State<Arc<Context>>,
    Caller(access): Caller,
    Path(id): Path<String>,
    Json(body): Json<Value>,
) -> Result<Response> {
    Ok(json_response(
        StatusCode::OK,
        service::update_department(&ctx, &access, &id, &body).await?,
    ))
}

pub async fn delete_department(
    State(ctx): State<Arc<Context>>,
    Caller(access): Caller,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    service::delete_department(&ctx, &access, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn list_tokens(
    State(ctx): State<Arc<Context>>,
    Caller(access): Caller,
) -> Result<Response> {
    Ok(json_response(
        StatusCode::OK,
        service::list_tokens(&ctx, &access).await?,
    ))
}

pub async fn create_token(
    State(ctx): State<Arc<Context>>,
    Caller(access): Caller,
    Json(body): Json<NewToken>,
) -> Result<Response> {
    Ok(json_response(
        StatusCode::CREATED,
        service::create_token(&ctx, &access, body).await?,
    ))
}

pub async fn revoke_token(
    State(ctx): State<Arc<Context>>,
    Caller(access): Caller,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    service::revoke_token(&ctx, &access, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn setup(
    State(app): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Json(body): Json<Setup>,
) -> Result<Response> {
    let (token, user) = service::setup(&app.ctx, body, Some(peer.ip())).await?;
    signed_in(&app, token, user)
}

#[derive(Deserialize)]
pub struct SetupQuery {
    #[serde(default)]
    token: String,
}

/// The first-start page: the link printed at start leads here to create the administrator.
pub async fn setup_page(Query(query): Query<SetupQuery>) -> Html<String> {
    let token: String = query
        .token
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
        .collect();
    Html(SETUP_PAGE.replace("{{token}}", &token))
}

const SETUP_PAGE: &str = r#"<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Tessera · 初始设置 Setup</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:26rem;margin:3rem auto;padding:0 1rem}
label{display:block;margin:.8rem 0 .2rem}input{width:100%;padding:.5rem;font:inherit;box-sizing:border-box}
button{margin-top:1.2rem;padding:.6rem 1.2rem;font:inherit}#msg{margin-top:1rem;color:#b00}</style></head>
<body><h1>Tessera</h1><p>创建管理员账户 · Create the administrator</p>
<form id="f"><input type="hidden" name="token" value="{{token}}">
<label>姓名 Name<input name="display_name" autocomplete="name"></label>
<label>电子邮箱 Email<input name="email" type="email" required autocomplete="username"></label>
<label>密码 Password (8+)<input name="password" type="password" minlength="8" required autocomplete="new-password"></label>
<button>创建 Create</button></form><p id="msg"></p>
<script>
document.getElementById('f').addEventListener('submit', async (e) => {
  e.preventDefault();
  const data = Object.fromEntries(new FormData(e.target));
  if (!data.display_name) delete data.display_name;
  const r = await fetch('/api/setup', {method: 'POST', headers: {'content-type': 'application/json'}, body: JSON.stringify(data)});
  const body = await r.json().catch(() => ({}));
  document.getElementById('msg').textContent = r.ok ? '完成，已登录 · Done, you are signed in.' : (body.detail || r.statusText);
});
</script></body></html>"#;
