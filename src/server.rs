//! The assembly at the top: it opens the shared [`Context`], registers the record-event
//! subscribers, builds the router, starts the job workers, the cron scheduler and the upkeep,
//! and serves until told to stop.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::api::AppState;
use crate::automation::Scripts;
use crate::automation::engine::Limits;
use crate::config::{DatabaseConfig, ServerConfig};
use crate::context::Context;
use crate::error::{Error, Result};
use crate::jobs::{self, JobOutcome};
use crate::mail::deliver::Mailer;
use crate::settings::Settings;
use crate::store::jobs::ClaimedJob;
use crate::templates::Installer;

/// One server's parts: the shared context and what the server builds around it.
pub struct App {
    pub ctx: Arc<Context>,
    pub scripts: Arc<Scripts>,
    pub mailer: Arc<Mailer>,
    pub installer: Arc<Installer>,
    pub openapi: Arc<crate::api::openapi::OpenApiCache>,
    pub cookie_secure: bool,
}

impl App {
    /// Opens the database and wires the parts together: the automation triggers hear record
    /// events. Used by `serve` and by command-line commands that write records.
    pub async fn open(config: &DatabaseConfig, scripts: Scripts) -> Result<App> {
        App::open_with(config, scripts, &crate::config::BackgroundConfig::default()).await
    }

    /// [`App::open`] with the first wait before a failed job is retried.
    pub async fn open_with(
        config: &DatabaseConfig,
        scripts: Scripts,
        background: &crate::config::BackgroundConfig,
    ) -> Result<App> {
        let mut ctx = Context::open(config).await?;
        ctx.retry_base = Duration::from_millis(background.retry_base_ms.max(10));
        ctx.webhook_retry_scale = background.webhook_retry_scale.clamp(0.0, 1.0);
        let ctx = Arc::new(ctx);
        let scripts = Arc::new(scripts);
        // Record-event subscribers, in the order they act inside a write's transaction.
        ctx.events
            .subscribe(Arc::new(crate::search::index::SearchIndex));
        ctx.events.subscribe(Arc::new(
            crate::webhooks::subscriber::WebhookDeliveries::default(),
        ));
        ctx.events
            .subscribe(Arc::new(crate::statistics::PlannerStatistics::new(
                ctx.db.clone(),
            )));
        ctx.events
            .subscribe(Arc::new(crate::reports::cache::Invalidator(
                ctx.reports.clone(),
            )));
        crate::automation::triggers::register(&ctx, scripts.clone());
        Ok(App {
            ctx,
            installer: Arc::new(Installer {
                scripts: scripts.clone(),
                dir: None,
            }),
            scripts,
            mailer: Arc::new(Mailer::new(None, &config.data_dir)),
            openapi: Arc::default(),
            cookie_secure: false,
        })
    }

    /// The state the web layer works with.
    pub fn state(&self) -> AppState {
        AppState {
            ctx: self.ctx.clone(),
            scripts: self.scripts.clone(),
            installer: self.installer.clone(),
            openapi: self.openapi.clone(),
            cookie_secure: self.cookie_secure,
        }
    }
}

/// Runs the queue's jobs by kind: automation runs and mail deliveries.
struct Jobs {
    ctx: Arc<Context>,
    scripts: Arc<Scripts>,
    mailer: Arc<Mailer>,
}

impl jobs::Handler for Jobs {
    fn handle<'a>(&'a self, job: &'a ClaimedJob) -> BoxFuture<'a, Result<JobOutcome>> {
        Box::pin(async move {
            match job.kind.as_str() {
                jobs::AUTOMATION => {
                    crate::automation::service::run_job(&self.ctx, &self.scripts, job).await
                }
                jobs::MAIL => crate::mail::service::deliver_job(&self.ctx, &self.mailer, job).await,
                jobs::WEBHOOK => crate::webhooks::deliver::run_job(&self.ctx, job).await,
                jobs::IMPORT => crate::transfer::import::run_job(&self.ctx, job).await,
                other => Ok(JobOutcome::Fail(format!("unknown kind of job '{other}'"))),
            }
        })
    }
}

/// Serves the API and the pages on `config.addr` until `shutdown` completes, then closes the
/// database.
pub async fn serve(
    config: ServerConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let app = Arc::new(open_server(&config).await?);
    let listener = TcpListener::bind(config.addr)
        .await
        .map_err(|e| Error::internal(format!("cannot listen on {}: {e}", config.addr)))?;
    let addr = listener
        .local_addr()
        .map_err(|e| Error::internal(e.to_string()))?;
    tracing::info!(
        "Tessera {} listening on http://{addr} ({})",
        env!("CARGO_PKG_VERSION"),
        config.database.describe()
    );
    announce_setup(&app, &config, addr).await?;
    run(app, config.background.workers, listener, shutdown).await
}

async fn run(
    app: Arc<App>,
    workers: usize,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let router = crate::api::router(app.state());
    let ctx = app.ctx.clone();
    let mut background = vec![tokio::spawn(upkeep(ctx.clone()))];
    if workers > 0 {
        let settings = Settings::load(&mut &ctx.db).await?;
        tracing::info!("{}", app.mailer.describe(&settings));
        let handler = Arc::new(Jobs {
            ctx: ctx.clone(),
            scripts: app.scripts.clone(),
            mailer: app.mailer.clone(),
        });
        background.extend(jobs::start(&ctx, workers, handler));
        background.push(tokio::spawn(crate::automation::cron::scheduler(
            ctx.clone(),
        )));
    }
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
    .map_err(|e| Error::internal(format!("server error: {e}")))?;
    for task in background {
        task.abort();
    }
    ctx.db.close().await;
    tracing::info!("Tessera stopped");
    Ok(())
}

/// Opens the application for serving: the database, the script engine with the configured
/// limits, the mailer, the templates folder.
async fn open_server(config: &ServerConfig) -> Result<App> {
    let background = &config.background;
    let scripts = Scripts::new(Limits {
        timeout: Duration::from_secs(background.script_timeout.clamp(1, 600)),
        ..Limits::default()
    });
    let mut app = App::open_with(&config.database, scripts, background).await?;
    app.cookie_secure = config.cookie_secure;
    app.mailer = Arc::new(Mailer::new(
        background.smtp_url.clone(),
        &config.database.data_dir,
    ));
    app.installer = Arc::new(Installer {
        scripts: app.scripts.clone(),
        dir: config.templates_dir.clone(),
    });
    Ok(app)
}

/// The templates `--demo` installs, with their sample data.
pub const DEMO_TEMPLATES: &[&str] = &["customer", "sales", "service", "marketing", "analytics"];

/// `serve --demo`: a working CRM at once. Without any user, an administrator is created first
/// (its password goes to the log once).
async fn install_demo(app: &App) -> Result<()> {
    let ctx = &app.ctx;
    crate::auth::service::ensure_builtin_roles(ctx).await?;
    if crate::templates::install::first_admin(ctx).await?.is_none() {
        if crate::store::auth::user_count(&mut &ctx.db).await? > 0 {
            return Err(Error::bad_request(
                "--demo needs an active administrator to install as",
            ));
        }
        let password = crate::auth::secrets::new_token("")?[..16].to_owned();
        crate::auth::service::create_admin(
            ctx,
            "demo@tessera.local",
            &password,
            Some("Demo Admin"),
        )
        .await?;
        tracing::warn!(
            "demo: created the administrator demo@tessera.local with the password {password} \
             (change it after signing in)"
        );
    }
    for name in DEMO_TEMPLATES {
        let report =
            crate::templates::install::install_as_admin(ctx, &app.installer, name, true).await?;
        tracing::info!("demo: {}", report["message"].as_str().unwrap_or_default());
    }
    Ok(())
}

/// On a database without users: creates the administrator from the environment, or prints the
/// one-time setup link that lets the first visitor create it.
async fn announce_setup(
    app: &App,
    config: &ServerConfig,
    addr: SocketAddr,
) -> Result<Option<String>> {
    let ctx = &app.ctx;
    if config.demo {
        if let (Some(email), Some(password)) = (&config.admin_email, &config.admin_password) {
            crate::auth::service::first_start(ctx, Some(email), Some(password)).await?;
        }
        install_demo(app).await?;
    }
    let token = crate::auth::service::first_start(
        ctx,
        config.admin_email.as_deref(),
        config.admin_password.as_deref(),
    )
    .await?;
    if let Some(token) = &token {
        tracing::warn!(
            "no user yet: open http://{addr}/setup?token={token} to create the administrator \
             (valid for a day), or start with TESSERA_ADMIN_EMAIL and TESSERA_ADMIN_PASSWORD"
        );
    }
    Ok(token)
}

/// Hourly database upkeep: SQLite's long-lived connections refresh the planner's statistics
/// (PostgreSQL's autovacuum does this by itself); run logs and finished jobs older than the
/// `run_log_days` setting are forgotten.
async fn upkeep(ctx: Arc<Context>) {
    // Tables without statistics (a database filled by an earlier version, or by hand) get them
    // at start, in the background.
    if let Err(error) = crate::statistics::analyze_where_missing(&ctx.db).await {
        tracing::warn!(%error, "cannot refresh planner statistics");
    }
    let mut every_hour = tokio::time::interval(std::time::Duration::from_secs(3600));
    every_hour.tick().await;
    loop {
        every_hour.tick().await;
        if ctx.db.dialect() == crate::store::Dialect::Sqlite
            && let Err(error) = ctx.db.analyze().await
        {
            tracing::warn!(%error, "database upkeep failed");
        }
        if let Err(error) = forget_old_runs(&ctx).await {
            tracing::warn!(%error, "cannot purge old run logs");
        }
    }
}

/// Deletes run logs and finished jobs past the retention the settings give.
pub async fn forget_old_runs(ctx: &Context) -> Result<u64> {
    let days = Settings::load(&mut &ctx.db).await?.run_log_days();
    let before = chrono::Utc::now() - chrono::TimeDelta::days(days);
    ctx.db
        .write(move |tx| {
            Box::pin(async move {
                let runs = crate::store::automations::purge_runs(tx, before).await?;
                let jobs = crate::store::jobs::purge(tx, before).await?;
                Ok(runs + jobs)
            })
        })
        .await
}

/// A server running in the background (tests, embedding): its address, and a way to stop it.
pub struct RunningServer {
    pub addr: SocketAddr,
    pub ctx: Arc<Context>,
    pub app: Arc<App>,
    /// The one-time setup token, when the server started without any user.
    pub setup_token: Option<String>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<()>>,
}

impl RunningServer {
    /// Starts a server; `addr` may use port 0 for an ephemeral port.
    pub async fn start(config: ServerConfig) -> Result<RunningServer> {
        let app = Arc::new(open_server(&config).await?);
        let listener = TcpListener::bind(config.addr)
            .await
            .map_err(|e| Error::internal(format!("cannot listen on {}: {e}", config.addr)))?;
        let addr = listener
            .local_addr()
            .map_err(|e| Error::internal(e.to_string()))?;
        let setup_token = announce_setup(&app, &config, addr).await?;
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(run(
            app.clone(),
            config.background.workers,
            listener,
            async {
                let _ = stopped.await;
            },
        ));
        Ok(RunningServer {
            addr,
            ctx: app.ctx.clone(),
            app,
            setup_token,
            stop: Some(stop),
            task,
        })
    }

    /// Stops accepting requests, lets running ones finish, closes the database.
    pub async fn stop(mut self) -> Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        (&mut self.task)
            .await
            .map_err(|e| Error::internal(format!("server task failed: {e}")))?
    }
}
