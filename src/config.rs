//! Configuration: command-line flags, each with a `TESSERA_*` environment variable.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;
use sqlx::sqlite::SqliteConnectOptions;

use crate::error::Result;
use crate::store::DbTarget;

/// Where the server listens and keeps its data.
#[derive(Debug, Clone, Args)]
pub struct ServerConfig {
    /// Address to listen on. Loopback by default; put Tessera behind HTTPS (and set
    /// `--cookie-secure`) before listening on other addresses.
    #[arg(long, env = "TESSERA_ADDR", default_value = "127.0.0.1:8080")]
    pub addr: SocketAddr,

    #[command(flatten)]
    pub database: DatabaseConfig,

    /// On a first start (no user yet), the administrator's email…
    #[arg(long, env = "TESSERA_ADMIN_EMAIL")]
    pub admin_email: Option<String>,

    /// …and password. Without both, the log prints a one-time setup link instead.
    #[arg(long, env = "TESSERA_ADMIN_PASSWORD", hide_env_values = true)]
    pub admin_password: Option<String>,

    /// Mark the session cookie `Secure` (when Tessera is reached over HTTPS).
    #[arg(long, env = "TESSERA_COOKIE_SECURE")]
    pub cookie_secure: bool,

    #[command(flatten)]
    pub background: BackgroundConfig,

    /// A folder of extra template packages (one sub-folder each), besides the built-in ones.
    #[arg(long, env = "TESSERA_TEMPLATES_DIR")]
    pub templates_dir: Option<PathBuf>,

    /// Install the customer, sales, service and marketing templates with their sample data
    /// (once; later starts change nothing). Without an administrator yet, creates one and
    /// prints its password.
    #[arg(long, env = "TESSERA_DEMO")]
    pub demo: bool,
}

/// The background work of a server: job workers, the cron scheduler, mail delivery.
#[derive(Debug, Clone, Args)]
pub struct BackgroundConfig {
    /// SMTP server for outgoing mail (`smtp://host:25`, `smtp://host:587?tls=required`,
    /// `smtps://user:pass@host`). Wins over the `smtp_url` setting. With neither, mail is
    /// written as `.eml` files to the data folder's `outbox/`.
    #[arg(long, env = "TESSERA_SMTP_URL", hide_env_values = true)]
    pub smtp_url: Option<String>,

    /// Job workers on this server (automation runs, mail delivery); 0 runs none, and no cron
    /// scheduler either (a server that only answers requests).
    #[arg(long, env = "TESSERA_WORKERS", default_value_t = 2)]
    pub workers: usize,

    /// Wall-clock limit of one script run, in seconds.
    #[arg(long, env = "TESSERA_SCRIPT_TIMEOUT", default_value_t = 5)]
    pub script_timeout: u64,

    /// First wait before a failed job is retried, in milliseconds (it doubles each attempt).
    #[arg(long, env = "TESSERA_RETRY_BASE_MS", default_value_t = 2000)]
    pub retry_base_ms: u64,

    /// Multiplies the waits between webhook delivery attempts (about three days in all at
    /// 1.0); a test or staging server shortens them.
    #[arg(
        long,
        env = "TESSERA_WEBHOOK_RETRY_SCALE",
        default_value_t = 1.0,
        hide = true
    )]
    pub webhook_retry_scale: f64,
}

impl Default for BackgroundConfig {
    fn default() -> Self {
        BackgroundConfig {
            smtp_url: None,
            workers: 2,
            script_timeout: 5,
            retry_base_ms: 2000,
            webhook_retry_scale: 1.0,
        }
    }
}

/// Which database to use.
#[derive(Debug, Clone, Args)]
pub struct DatabaseConfig {
    /// Folder for Tessera's files; the embedded SQLite database is `tessera.db` inside it.
    #[arg(long, env = "TESSERA_DATA_DIR", default_value = "tessera-data")]
    pub data_dir: PathBuf,

    /// Database URL (`postgres://user@host/db` or `sqlite://path`). Without it, the embedded
    /// SQLite database in the data folder is used. `DATABASE_URL` is read as well.
    #[arg(long, env = "TESSERA_DATABASE_URL")]
    pub database_url: Option<String>,

    /// Most connections the server opens to the database.
    #[arg(long, env = "TESSERA_MAX_CONNECTIONS", default_value_t = 16)]
    pub max_connections: u32,
}

impl DatabaseConfig {
    /// The configured URL, else `DATABASE_URL`, else none (embedded SQLite).
    pub fn url(&self) -> Option<String> {
        self.database_url
            .clone()
            .or_else(|| std::env::var("DATABASE_URL").ok())
            .filter(|u| !u.trim().is_empty())
    }

    pub fn target(&self) -> Result<DbTarget> {
        match self.url() {
            Some(url) => DbTarget::parse(&url),
            None => Ok(DbTarget::Sqlite(
                SqliteConnectOptions::new().filename(self.data_dir.join("tessera.db")),
            )),
        }
    }

    /// A description for the start-up log, without any password.
    pub fn describe(&self) -> String {
        match self.url() {
            Some(url) if url.starts_with("sqlite:") => format!("SQLite at {url}"),
            Some(url) => {
                let shown = match (url.find("://"), url.rfind('@')) {
                    (Some(scheme), Some(at)) if at > scheme => {
                        format!("{}://…@{}", &url[..scheme], &url[at + 1..])
                    }
                    _ => url,
                };
                format!("PostgreSQL at {shown}")
            }
            None => format!("SQLite at {}", self.data_dir.join("tessera.db").display()),
        }
    }
}
