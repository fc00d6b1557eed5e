//! The `tessera` command: `serve` runs the server, `migrate` brings a database up to date.

use clap::{Parser, Subcommand};

/// glibc's allocator spent a third of the server's CPU time under load (measured with perf);
/// mimalloc keeps per-thread heaps.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use tracing_subscriber::EnvFilter;

use tessera::app::{self, App};
use tessera::auth::Access;
use tessera::auth::service;
use tessera::config::{DatabaseConfig, ServerConfig};

#[derive(Debug, Parser)]
#[command(
    name = "tessera",
    version,
    about = "Tessera, a self-hosted low-code CRM"
)]
struct Cli {
    /// Log level or filter (error, warn, info, debug, trace, or e.g. `tessera=debug`).
    #[arg(long, env = "TESSERA_LOG_LEVEL", default_value = "info", global = true)]
    log_level: String,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start the server (creates the data folder and database on first start).
    Serve(ServerConfig),
    /// Create or upgrade the system tables, then exit.
    Migrate(DatabaseConfig),
    /// Manage users.
    #[command(subcommand)]
    User(UserCommand),
}

#[derive(Debug, Subcommand)]
enum UserCommand {
    /// Create a user (with --admin, an administrator).
    Create {
        #[arg(long)]
        email: String,
        #[arg(long, env = "TESSERA_NEW_USER_PASSWORD", hide_env_values = true)]
        password: String,
        #[arg(long)]
        name: Option<String>,
        /// Give the user the administrator role.
        #[arg(long)]
        admin: bool,
        /// Roles to give (by name; repeat the flag for several).
        #[arg(long = "role")]
        roles: Vec<String>,
        #[command(flatten)]
        database: DatabaseConfig,
    },
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let filter = EnvFilter::try_new(&cli.log_level).unwrap_or_else(|_| {
        eprintln!("invalid log level '{}'; using info", cli.log_level);
        EnvFilter::new("info")
    });
    tracing_subscriber::fmt().with_env_filter(filter).init();

    let outcome = match cli.command {
        Command::Serve(config) => app::serve(config, shutdown_signal()).await,
        Command::Migrate(config) => App::open(&config).await.map(|app| {
            tracing::info!("database is up to date ({})", config.describe());
            drop(app);
        }),
        Command::User(UserCommand::Create {
            email,
            password,
            name,
            admin,
            mut roles,
            database,
        }) => create_user(&database, email, password, name, admin, &mut roles).await,
    };
    match outcome {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("{error}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn create_user(
    database: &DatabaseConfig,
    email: String,
    password: String,
    name: Option<String>,
    admin: bool,
    roles: &mut Vec<String>,
) -> tessera::Result<()> {
    let app = App::open(database).await?;
    service::ensure_builtin_roles(&app).await?;
    if admin {
        roles.push("administrator".into());
    }
    let user = service::create_user(
        &app,
        &Access::system(),
        service::NewUser {
            email,
            password,
            display_name: name,
            roles: roles.clone(),
            ..service::NewUser::default()
        },
    )
    .await?;
    println!("created user {} ({})", user["email"], user["id"]);
    app.db.close().await;
    Ok(())
}

/// Completes on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::warn!("cannot listen for Ctrl-C: {e}");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(e) => {
                tracing::warn!("cannot listen for SIGTERM: {e}");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down");
}
