//! The HTTP API under `/api`: routes, handlers (thin: extract, call a service, respond) and
//! problem+json errors.

pub mod auth;
mod automations;
mod entities;
pub mod extract;
mod layouts;
pub mod openapi;
mod pages;
pub mod problem;
mod records;
mod reports;
mod search;
mod templates;
mod transfer;
mod webhooks;

use std::sync::Arc;

use axum::Router;
use axum::extract::{FromRef, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use serde_json::json;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::trace::TraceLayer;

use crate::automation::Scripts;
use crate::context::Context;
use crate::templates::Installer;
use problem::{json_response, panic_response, problem};

/// Largest request body accepted (records and definitions are small; imports get their own
/// limit when they arrive).
const BODY_LIMIT: usize = 2 * 1024 * 1024;

/// What the web layer (the API and the pages) works with: the shared context, and the parts
/// the server assembled around it.
#[derive(Clone)]
pub struct AppState {
    pub ctx: Arc<Context>,
    pub scripts: Arc<Scripts>,
    pub installer: Arc<Installer>,
    /// OpenAPI documents built so far (per schema epoch and permissions).
    pub openapi: Arc<openapi::OpenApiCache>,
    /// Whether the session cookie is marked `Secure`.
    pub cookie_secure: bool,
}

impl FromRef<AppState> for Arc<Context> {
    fn from_ref(state: &AppState) -> Self {
        state.ctx.clone()
    }
}

impl FromRef<AppState> for Arc<Scripts> {
    fn from_ref(state: &AppState) -> Self {
        state.scripts.clone()
    }
}

pub fn router(app: AppState) -> Router {
    let api = Router::new()
        .route("/health", get(health))
        .route("/auth/login", post(auth::login))
        .route("/auth/logout", post(auth::logout))
        .route("/setup", post(auth::setup))
        .route("/me", get(auth::me))
        .route("/users", get(auth::list_users).post(auth::create_user))
        .route("/users/{id}", get(auth::get_user).patch(auth::update_user))
        .route("/roles", get(auth::list_roles).post(auth::create_role))
        .route(
            "/roles/{id}",
            get(auth::get_role)
                .put(auth::replace_role)
                .delete(auth::delete_role),
        )
        .route(
            "/departments",
            get(auth::list_departments).post(auth::create_department),
        )
        .route(
            "/departments/{id}",
            axum::routing::patch(auth::update_department).delete(auth::delete_department),
        )
        .route("/tokens", get(auth::list_tokens).post(auth::create_token))
        .route("/tokens/{id}", axum::routing::delete(auth::revoke_token))
        .route(
            "/automations",
            get(automations::list).post(automations::create),
        )
        .route(
            "/automations/{id}",
            get(automations::get)
                .patch(automations::update)
                .delete(automations::delete),
        )
        .route("/automations/{id}/run", post(automations::run))
        .route("/automations/{id}/runs", get(automations::runs))
        .route(
            "/mail-templates",
            get(automations::list_templates).post(automations::create_template),
        )
        .route(
            "/mail-templates/{id}",
            get(automations::get_template)
                .put(automations::replace_template)
                .delete(automations::delete_template),
        )
        .route("/outbox", get(automations::outbox))
        .route(
            "/settings",
            get(automations::get_settings).patch(automations::update_settings),
        )
        .route("/meta-schema", get(entities::meta_schema))
        .route("/entities", get(entities::list).post(entities::create))
        .route(
            "/entities/{entity}",
            get(entities::get)
                .put(entities::replace)
                .delete(entities::delete),
        )
        .route("/entities/{entity}/fields", post(entities::add_field))
        .route("/entities/{entity}/indexes", get(entities::indexes))
        .route(
            "/entities/{entity}/fields/{field}",
            axum::routing::patch(entities::patch_field).delete(entities::remove_field),
        )
        .route(
            "/entities/{entity}/archived-fields",
            get(entities::archived_fields),
        )
        .route(
            "/entities/{entity}/archived-fields/{id}/restore",
            post(entities::restore_field),
        )
        .route("/entities/{entity}/versions", get(entities::versions))
        .route(
            "/entities/{entity}/forms",
            get(layouts::list_forms).post(layouts::create_form),
        )
        .route(
            "/entities/{entity}/forms/{name}",
            get(layouts::get_form)
                .put(layouts::replace_form)
                .delete(layouts::delete_form),
        )
        .route(
            "/entities/{entity}/forms/{name}/versions",
            get(layouts::form_versions),
        )
        .route("/templates", get(templates::list))
        .route("/templates/{name}/install", post(templates::install))
        .route(
            "/views",
            get(layouts::list_views).post(layouts::create_view),
        )
        .route(
            "/views/{id}",
            get(layouts::get_view)
                .patch(layouts::update_view)
                .delete(layouts::delete_view),
        )
        .route("/views/{id}/versions", get(layouts::view_versions))
        .route("/search", get(search::search))
        .route("/reports/query", post(reports::query))
        .route("/reports/chart", post(reports::chart))
        .route(
            "/dashboards",
            get(reports::list_dashboards).post(reports::create_dashboard),
        )
        .route(
            "/dashboards/{id}",
            get(reports::get_dashboard)
                .put(reports::replace_dashboard)
                .delete(reports::delete_dashboard),
        )
        .route(
            "/dashboards/{id}/versions",
            get(reports::dashboard_versions),
        )
        .route(
            "/dashboards/{id}/cards/{index}",
            get(reports::dashboard_card),
        )
        .route("/openapi.json", get(openapi::openapi))
        .route("/docs", get(openapi::docs))
        .route("/webhooks", get(webhooks::list).post(webhooks::create))
        .route(
            "/webhooks/{id}",
            get(webhooks::get)
                .patch(webhooks::update)
                .delete(webhooks::delete),
        )
        .route(
            "/webhooks/{id}/rotate-secret",
            post(webhooks::rotate_secret),
        )
        .route("/webhooks/{id}/test", post(webhooks::test))
        .route("/webhooks/{id}/deliveries", get(webhooks::deliveries))
        .route(
            "/webhooks/{id}/deliveries/{delivery}/replay",
            post(webhooks::replay),
        )
        .route("/tags", get(records::list_tags).post(records::save_tag))
        .route(
            "/records/{entity}",
            get(records::list).post(records::create),
        )
        .route("/records/{entity}/export", get(transfer::export))
        .route(
            "/records/{entity}/import",
            post(transfer::import)
                .layer(axum::extract::DefaultBodyLimit::max(transfer::IMPORT_LIMIT)),
        )
        .route("/imports/{id}", get(transfer::get_import))
        .route("/imports/{id}/undo", post(transfer::undo))
        .route("/imports/{id}/errors.csv", get(transfer::errors_csv))
        .route("/records/{entity}/merge", post(records::merge))
        .route("/records/{entity}/bulk", post(records::bulk))
        .route(
            "/records/{entity}/{id}",
            get(records::get)
                .patch(records::update)
                .delete(records::delete),
        )
        .route("/records/{entity}/{id}/restore", post(records::restore))
        .route("/records/{entity}/{id}/copy", post(records::copy))
        .route("/records/{entity}/{id}/history", get(records::history))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed);
    Router::new()
        .nest("/api", api)
        .route("/kb/search", get(pages::kb_search))
        .route(
            "/unsubscribe",
            get(pages::unsubscribe_page).post(pages::unsubscribe),
        )
        .merge(crate::ui::router())
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(
            app.ctx.clone(),
            auth::authenticate,
        ))
        .layer(axum::middleware::from_fn(crate::ui::server_timing))
        .layer(axum::extract::DefaultBodyLimit::max(BODY_LIMIT))
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(axum::middleware::from_fn(crate::ui::security_headers))
        .layer(tower_http::compression::CompressionLayer::new())
        .layer(TraceLayer::new_for_http())
        .with_state(app)
}

/// Liveness and database reachability.
async fn health(State(ctx): State<Arc<Context>>) -> Response {
    let dialect = ctx.db.dialect().name();
    match ctx.db.ping().await {
        Ok(()) => json_response(
            StatusCode::OK,
            json!({
                "status": "ok",
                "version": env!("CARGO_PKG_VERSION"),
                "database": {"reachable": true, "kind": dialect},
            }),
        ),
        Err(error) => {
            tracing::warn!(%error, "health check: database unreachable");
            json_response(
                StatusCode::SERVICE_UNAVAILABLE,
                json!({
                    "status": "unavailable",
                    "version": env!("CARGO_PKG_VERSION"),
                    "database": {"reachable": false, "kind": dialect},
                }),
            )
        }
    }
}

async fn not_found() -> Response {
    problem(
        StatusCode::NOT_FOUND,
        "not-found",
        "there is nothing at this address",
        &[],
    )
}

async fn method_not_allowed() -> Response {
    problem(
        StatusCode::METHOD_NOT_ALLOWED,
        "method-not-allowed",
        "this address does not take that method",
        &[],
    )
}
