//! Authentication at the edge: every `/api` route but the health check, sign-in and the
//! first-start setup needs a session (cookie or bearer) or an API token. The middleware turns
//! it into an [`Access`] that handlers take as [`Caller`] and pass to the services.
//! Also the routes of `/api/auth`, `/api/me`, `/api/users`, `/api/roles`, `/api/departments`,
//! `/api/tokens`; the pages (`ui`) share the session cookie and its CSRF token.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequestParts, Path, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::AppState;
use super::extract::Json;
use super::problem::json_response;
use crate::auth::Access;
use crate::auth::service::{self, NewToken, NewUser, Setup};
use crate::auth::shapes::{DepartmentInput, RoleInput, UserChanges, UserView};
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

/// The CSRF token of a session: derived from the session token, so it is bound to the session
/// and unknowable to a site that cannot read the (HttpOnly) cookie. Pages put it in a meta tag
/// and forms; state-changing requests authenticated by the cookie must send it back.
pub fn csrf_token(session: &str) -> String {
    use base64::Engine;
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(format!("tessera-csrf:{session}").as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&digest[..24])
}

/// Whether the request is authenticated by the session cookie rather than a bearer header.
fn by_cookie(headers: &HeaderMap) -> bool {
    !headers.contains_key(header::AUTHORIZATION)
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
    // A browser sends the cookie on requests other sites start: writes made with it need
    // the session's CSRF token (bearer-token calls cannot be forged that way).
    let safe = matches!(
        *request.method(),
        axum::http::Method::GET | axum::http::Method::HEAD | axum::http::Method::OPTIONS
    );
    if !safe
        && by_cookie(request.headers())
        && request
            .headers()
            .get("x-csrf-token")
            .and_then(|v| v.to_str().ok())
            != Some(csrf_token(&token).as_str())
    {
        return Error::Forbidden(
            "a request signed in by the session cookie needs the X-CSRF-Token header".into(),
        )
        .into_response();
    }
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

/// The `Set-Cookie` value of a session (an empty token with age 0 ends it).
pub fn session_cookie(secure: bool, token: &str, max_age: i64) -> HeaderValue {
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

/// The answer to a sign-in: the session token (also set as the cookie) and who signed in.
#[derive(serde::Serialize)]
struct SignedIn {
    token: String,
    user: UserView,
}

fn signed_in(app: &AppState, token: String, user: UserView) -> Result<Response> {
    let cookie = session_cookie(app.cookie_secure, &token, service::SESSION_DAYS * 24 * 3600);
    let mut response = json_response(StatusCode::OK, SignedIn { token, user });
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
    Json(body): Json<UserChanges>,
) -> Result<Response> {
    Ok(json_response(
        StatusCode::OK,
        service::update_user(&ctx, &access, &id, body).await?,
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
    Json(body): Json<RoleInput>,
) -> Result<Response> {
    Ok(json_response(
        StatusCode::CREATED,
        service::save_role(&ctx, &access, None, body).await?,
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
    Json(body): Json<RoleInput>,
) -> Result<Response> {
    Ok(json_response(
        StatusCode::OK,
        service::save_role(&ctx, &access, Some(&id), body).await?,
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
    Json(body): Json<DepartmentInput>,
) -> Result<Response> {
    Ok(json_response(
        StatusCode::CREATED,
        service::create_department(&ctx, &access, body).await?,
    ))
}

pub async fn update_department(
    State(ctx): State<Arc<Context>>,
    Caller(access): Caller,
    Path(id): Path<String>,
    Json(body): Json<DepartmentInput>,
) -> Result<Response> {
    Ok(json_response(
        StatusCode::OK,
        service::update_department(&ctx, &access, &id, body).await?,
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
