//! The assembled application: the shared state every service takes (`App`), and the server
//! that serves the router until it is told to stop.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::automation::Scripts;
use crate::automation::engine::Limits;
use crate::config::{DatabaseConfig, ServerConfig};
use crate::error::{Error, Result};
use crate::mail::deliver::Mailer;
use crate::schema::compiled::SchemaCache;
use crate::settings::Settings;
use crate::store::Db;

/// What every request and background job shares: the database and the compiled schema.
pub struct App {
    pub db: Db,
    pub schema: SchemaCache,
    /// Whether the session cookie is marked `Secure`.
    pub cookie_secure: bool,
    /// The script engine and compiled scripts.
    pub scripts: Scripts,
    pub mailer: Mailer,
    /// This server among those sharing the database (job leases name it).
    pub instance: String,
    /// First wait before a failed job is retried.
    pub retry_base: Duration,
    /// Holds the job workers and the scheduler (maintenance, measurements).
    paused: AtomicBool,
    /// A folder of extra template packages (besides the built-in ones).
    pub templates_dir: Option<std::path::PathBuf>,
}

impl App {
    /// Opens the database (creating the data folder and SQLite file when needed) and brings
    /// the system tables up to date.
    pub async fn open(config: &DatabaseConfig) -> Result<App> {
        std::fs::create_dir_all(&config.data_dir).map_err(|e| {
            Error::internal(format!(
                "cannot create the data folder {}: {e}",
                config.data_dir.display()
            ))
        })?;
        let db = Db::connect(config.target()?, config.max_connections).await?;
        db.migrate().await?;
        let app = App {
            db,
            schema: SchemaCache::default(),
            cookie_secure: false,
            scripts: Scripts::new(Limits::default()),
            mailer: Mailer::new(None, &config.data_dir),
            instance: uuid::Uuid::now_v7().simple().to_string(),
            retry_base: Duration::from_secs(2),
            paused: AtomicBool::new(false),
            templates_dir: None,
        };
        crate::mail::unsubscribe::ensure_secret(&app).await?;
        Ok(app)
    }

    pub fn background_paused(&self) -> bool {
        self.paused.load(Ordering::Relaxed)
    }

    /// Holds (or lets go) this server's job workers and cron scheduler; a job already
    /// running finishes.
    pub fn pause_background(&self, paused: bool) {
        self.paused.store(paused, Ordering::Relaxed);
    }
}

/// Serves the API on `config.addr` until `shutdown` completes, then closes the database.
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
    let router = crate::api::router(app.clone());
    let mut background = vec![tokio::spawn(upkeep(app.clone()))];
    if workers > 0 {
        let settings = Settings::load(&mut &app.db).await?;
        tracing::info!("{}", app.mailer.describe(&settings));
        background.extend(crate::jobs::start(&app, workers));
        background.push(tokio::spawn(crate::automation::cron::scheduler(
            app.clone(),
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
    app.db.close().await;
    tracing::info!("Tessera stopped");
    Ok(())
}

/// Opens the application for serving: the database, the built-in roles, the first
/// administrator when the environment names one.
async fn open_server(config: &ServerConfig) -> Result<App> {
    let mut app = App::open(&config.database).await?;
    app.cookie_secure = config.cookie_secure;
    let background = &config.background;
    app.mailer = Mailer::new(background.smtp_url.clone(), &config.database.data_dir);
    app.scripts = Scripts::new(Limits {
        timeout: Duration::from_secs(background.script_timeout.clamp(1, 600)),
        ..Limits::default()
    });
    app.retry_base = Duration::from_millis(background.retry_base_ms.max(10));
    app.templates_dir = config.templates_dir.clone();
    Ok(app)
}

/// The templates `--demo` installs, with their sample data.
pub const DEMO_TEMPLATES: &[&str] = &["customer", "sales", "service", "marketing"];

/// `serve --demo`: a working CRM at once. Without any user, an administrator is created first
/// (its password goes to the log once).
async fn install_demo(app: &App) -> Result<()> {
    crate::auth::service::ensure_builtin_roles(app).await?;
    if crate::templates::install::first_admin(app).await?.is_none() {
        if crate::store::auth::user_count(&mut &app.db).await? > 0 {
            return Err(Error::bad_request(
                "--demo needs an active administrator to install as",
            ));
        }
        let password = crate::auth::secrets::new_token("")?[..16].to_owned();
        crate::auth::service::create_admin(
            app,
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
        let report = crate::templates::install::install_as_admin(app, name, true).await?;
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
    if config.demo {
        if let (Some(email), Some(password)) = (&config.admin_email, &config.admin_password) {
            crate::auth::service::first_start(app, Some(email), Some(password)).await?;
        }
        install_demo(app).await?;
    }
    let token = crate::auth::service::first_start(
        app,
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
async fn upkeep(app: Arc<App>) {
    let mut every_hour = tokio::time::interval(std::time::Duration::from_secs(3600));
    every_hour.tick().await;
    loop {
        every_hour.tick().await;
        if app.db.dialect() == crate::store::Dialect::Sqlite
            && let Err(error) = app.db.analyze().await
        {
            tracing::warn!(%error, "database upkeep failed");
        }
        if let Err(error) = forget_old_runs(&app).await {
            tracing::warn!(%error, "cannot purge old run logs");
        }
    }
}

/// Deletes run logs and finished jobs past the retention the settings give.
pub async fn forget_old_runs(app: &App) -> Result<u64> {
    let days = Settings::load(&mut &app.db).await?.run_log_days();
    let before = chrono::Utc::now() - chrono::TimeDelta::days(days);
    app.db
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
