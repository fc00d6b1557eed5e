//! The `tessera` command: `serve` runs the server, `migrate` brings a database up to date,
//! `user` and `template` manage users and template packages.

use clap::{Parser, Subcommand};

/// glibc's allocator spent a third of the server's CPU time under load (measured with perf);
/// mimalloc keeps per-thread heaps.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use tracing_subscriber::EnvFilter;

use tessera::auth::Access;
use tessera::auth::service;
use tessera::automation::Scripts;
use tessera::automation::engine::Limits;
use tessera::config::{DatabaseConfig, ServerConfig};
use tessera::context::Context;
use tessera::server::{self, App};
use tessera::templates::Installer;

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
    /// List, install and export template packages.
    #[command(subcommand)]
    Template(TemplateCommand),
    /// Rebuild the global search index from the records (after restoring a backup, or to
    /// pick up a field made searchable).
    Reindex(DatabaseConfig),
}

#[derive(Debug, Subcommand)]
enum TemplateCommand {
    /// List the packages available and the versions installed.
    List {
        #[command(flatten)]
        templates: TemplateSource,
    },
    /// Install (or upgrade) a package and what it depends on.
    Install {
        name: String,
        /// Load the package's sample records too.
        #[arg(long)]
        sample_data: bool,
        #[command(flatten)]
        templates: TemplateSource,
    },
    /// Write the configuration of chosen entities as a new package folder.
    Export {
        /// The new package's name.
        name: String,
        /// The folder to write (absent or empty).
        dir: std::path::PathBuf,
        /// An entity to include (repeat the flag; at least one).
        #[arg(long = "entity", required = true)]
        entities: Vec<String>,
        #[command(flatten)]
        database: DatabaseConfig,
    },
}

#[derive(Debug, clap::Args)]
struct TemplateSource {
    /// A folder of extra packages besides the built-in ones.
    #[arg(long, env = "TESSERA_TEMPLATES_DIR")]
    templates_dir: Option<std::path::PathBuf>,
    #[command(flatten)]
    database: DatabaseConfig,
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
    // Colour codes only on a terminal: a log file or a journal gets plain text.
    let colour = std::io::IsTerminal::is_terminal(&std::io::stdout());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour)
        .init();

    let outcome = match cli.command {
        Command::Serve(config) => server::serve(config, shutdown_signal()).await,
        Command::Migrate(config) => Context::open(&config).await.map(|app| {
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
        Command::Template(command) => template(command).await,
        Command::Reindex(config) => reindex(&config).await,
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
    let app = Context::open(database).await?;
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

async fn reindex(database: &DatabaseConfig) -> tessera::Result<()> {
    let started = std::time::Instant::now();
    let ctx = Context::open(database).await?;
    let done = tessera::search::index::rebuild(&ctx).await?;
    let total: u64 = done.iter().map(|(_, n)| n).sum();
    for (entity, count) in &done {
        println!("{entity:<24} {count:>10} records");
    }
    println!(
        "indexed {total} records of {} entities in {:.1} s",
        done.len(),
        started.elapsed().as_secs_f64()
    );
    ctx.db.close().await;
    Ok(())
}

async fn template(command: TemplateCommand) -> tessera::Result<()> {
    let open = |source: &TemplateSource| {
        let database = source.database.clone();
        let dir = source.templates_dir.clone();
        async move {
            let mut app = App::open(&database, Scripts::new(Limits::default())).await?;
            app.installer = std::sync::Arc::new(Installer {
                scripts: app.scripts.clone(),
                dir,
            });
            service::ensure_builtin_roles(&app.ctx).await?;
            Ok::<App, tessera::Error>(app)
        }
    };
    match command {
        TemplateCommand::List { templates } => {
            let app = open(&templates).await?;
            let list =
                tessera::templates::list(&app.ctx, app.installer.dir.as_deref(), &Access::system())
                    .await?;
            for item in list["items"].as_array().into_iter().flatten() {
                println!(
                    "{:<12} {:<8} installed: {:<8} {}",
                    item["name"].as_str().unwrap_or_default(),
                    item["version"].as_str().unwrap_or_default(),
                    item["installed_version"].as_str().unwrap_or("-"),
                    item["title"]["en"].as_str().unwrap_or_default(),
                );
            }
            app.ctx.db.close().await;
        }
        TemplateCommand::Install {
            name,
            sample_data,
            templates,
        } => {
            let app = open(&templates).await?;
            let report = tessera::templates::install::install_as_admin(
                &app.ctx,
                &app.installer,
                &name,
                sample_data,
            )
            .await?;
            println!("{}", report["message"].as_str().unwrap_or_default());
            for package in report["templates"].as_array().into_iter().flatten() {
                for kept in package["kept"].as_array().into_iter().flatten() {
                    println!(
                        "  kept {} {}: {}",
                        kept["kind"].as_str().unwrap_or_default(),
                        kept["key"].as_str().unwrap_or_default(),
                        kept["reason"].as_str().unwrap_or_default()
                    );
                }
                let changes = package["changes"].as_array().map_or(0, Vec::len);
                let records = package["sample_records"].as_u64().unwrap_or(0);
                if changes > 0 || records > 0 {
                    println!(
                        "  {}: {changes} changes, {records} sample records",
                        package["name"].as_str().unwrap_or_default()
                    );
                }
            }
            app.ctx.db.close().await;
        }
        TemplateCommand::Export {
            name,
            dir,
            entities,
            database,
        } => {
            let app = Context::open(&database).await?;
            let files = tessera::templates::export::export(&app, &name, &entities, &dir).await?;
            println!("wrote {files} files to {}", dir.display());
            app.db.close().await;
        }
    }
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
