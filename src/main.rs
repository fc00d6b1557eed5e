//! The `tessera` command: `serve` runs the server, `migrate` brings a database up to date,
//! `user` and `template` manage users and template packages.

use clap::{Parser, Subcommand};

/// glibc's allocator spent a third of the server's CPU time under load (measured with perf);
/// mimalloc keeps per-thread heaps. Its `override` feature also serves the C code's `malloc`
/// (SQLite's): glibc's was 18 % of an export's samples (decision 023).
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
    /// Import a CSV or XLSX file into an entity's records (as the system, or `--as` a user).
    Import(ImportArgs),
    /// Export an entity's records to a CSV or XLSX file.
    Export(ExportArgs),
    /// Copy the database to a new file while the server runs (SQLite), and check the copy;
    /// on PostgreSQL, run pg_dump.
    Backup {
        /// The file to write (must not exist).
        path: std::path::PathBuf,
        #[command(flatten)]
        database: DatabaseConfig,
    },
}

#[derive(Debug, clap::Args)]
struct ImportArgs {
    entity: String,
    file: std::path::PathBuf,
    /// create, update or upsert.
    #[arg(long, default_value = "create")]
    mode: String,
    /// The unique field that finds records to update.
    #[arg(long)]
    key: Option<String>,
    /// Check everything and write nothing.
    #[arg(long)]
    dry_run: bool,
    /// stop or skip.
    #[arg(long, default_value = "skip")]
    on_error: String,
    /// Column header to field name, as a JSON object.
    #[arg(long)]
    mapping: Option<String>,
    /// Let record automations run for the imported rows.
    #[arg(long)]
    triggers: bool,
    /// The sheet of an XLSX workbook (default: the first).
    #[arg(long)]
    sheet: Option<String>,
    /// Import as this user (by email), with their permissions.
    #[arg(long = "as")]
    as_user: Option<String>,
    #[command(flatten)]
    database: DatabaseConfig,
}

#[derive(Debug, clap::Args)]
struct ExportArgs {
    entity: String,
    file: std::path::PathBuf,
    /// csv or xlsx (default: from the file's extension).
    #[arg(long)]
    format: Option<String>,
    #[arg(long)]
    view: Option<String>,
    #[arg(long)]
    filter: Option<String>,
    #[arg(long)]
    sort: Option<String>,
    #[arg(long)]
    fields: Option<String>,
    /// labels or names.
    #[arg(long, default_value = "labels")]
    headers: String,
    #[command(flatten)]
    database: DatabaseConfig,
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
        Command::Import(args) => import(args).await,
        Command::Export(args) => export(args).await,
        Command::Backup { path, database } => backup(&path, &database).await,
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
    println!("created user {} ({})", user.email, user.id);
    app.db.close().await;
    Ok(())
}

/// The system, or the user named by email with their roles.
async fn acting_as(ctx: &Context, email: Option<&str>) -> tessera::Result<Access> {
    let Some(email) = email else {
        return Ok(Access::system());
    };
    let users = tessera::store::auth::users(&mut &ctx.db).await?;
    let user = users
        .iter()
        .find(|u| u.email.eq_ignore_ascii_case(email))
        .ok_or_else(|| tessera::Error::not_found(format!("there is no user '{email}'")))?;
    service::access_of_user(ctx, &user.id)
        .await?
        .ok_or_else(|| tessera::Error::bad_request(format!("the user '{email}' is not active")))
}

async fn import(args: ImportArgs) -> tessera::Result<()> {
    use std::io::Write;
    // The server's assembly: the search index, webhooks and automations hear imported writes.
    let app = App::open(&args.database, Scripts::new(Limits::default())).await?;
    let ctx = app.ctx.clone();
    let access = acting_as(&ctx, args.as_user.as_deref()).await?;
    let mut pairs = vec![
        ("mode".to_owned(), args.mode.clone()),
        ("on_error".to_owned(), args.on_error.clone()),
        ("dry_run".to_owned(), args.dry_run.to_string()),
        ("triggers".to_owned(), args.triggers.to_string()),
    ];
    for (name, value) in [
        ("key", &args.key),
        ("mapping", &args.mapping),
        ("sheet", &args.sheet),
    ] {
        if let Some(value) = value {
            pairs.push((name.to_owned(), value.clone()));
        }
    }
    let params = tessera::transfer::import::ImportParams::from_pairs(&pairs)?;
    let media = match args.file.extension().and_then(|e| e.to_str()) {
        Some(e) if e.eq_ignore_ascii_case("xlsx") => {
            Some("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
        }
        _ => None,
    };
    let started = std::time::Instant::now();
    let progress = move |rows: i64, errors: i64| {
        let seconds = started.elapsed().as_secs_f64().max(0.001);
        eprint!(
            "\r{rows:>10} rows  {:>9.0} rows/s  {errors:>7} errors",
            rows as f64 / seconds
        );
        let _ = std::io::stderr().flush();
    };
    let (id, report) = tessera::transfer::import::start_with_progress(
        &ctx,
        &access,
        &args.entity,
        params,
        media,
        tessera::transfer::import::Upload::File(args.file.clone()),
        false,
        Some(&progress),
    )
    .await?;
    eprintln!();
    let Some(report) = report else {
        println!("import {id}: queued");
        ctx.db.close().await;
        return Ok(());
    };
    println!(
        "import {id}: {} rows, {} created, {} updated, {} failed in {:.1} s{}",
        report.rows,
        report.created,
        report.updated,
        report.failed,
        started.elapsed().as_secs_f64(),
        if args.dry_run {
            " (dry run: nothing written)"
        } else {
            ""
        }
    );
    for error in report.errors.iter().take(50) {
        println!(
            "  row {} {}: {}",
            error.row,
            error.column.as_str().unwrap_or("-"),
            error.message.as_str().unwrap_or_default()
        );
    }
    ctx.db.close().await;
    Ok(())
}

async fn export(args: ExportArgs) -> tessera::Result<()> {
    use std::io::Write;
    let ctx = std::sync::Arc::new(Context::open(&args.database).await?);
    let format = args.format.clone().unwrap_or_else(|| {
        match args.file.extension().and_then(|e| e.to_str()) {
            Some(e) if e.eq_ignore_ascii_case("xlsx") => "xlsx".to_owned(),
            _ => "csv".to_owned(),
        }
    });
    let mut pairs = vec![
        ("format".to_owned(), format),
        ("headers".to_owned(), args.headers.clone()),
    ];
    for (name, value) in [
        ("view", &args.view),
        ("filter", &args.filter),
        ("sort", &args.sort),
        ("fields", &args.fields),
    ] {
        if let Some(value) = value {
            pairs.push((name.to_owned(), value.clone()));
        }
    }
    let params = tessera::transfer::export::ExportParams::from_pairs(&pairs)?;
    let started = std::time::Instant::now();
    let mut export =
        tessera::transfer::export::start(ctx.clone(), &Access::system(), &args.entity, params)
            .await?;
    let fail = |e: std::io::Error| tessera::Error::internal(format!("writing the export: {e}"));
    let mut file = std::io::BufWriter::new(std::fs::File::create(&args.file).map_err(fail)?);
    let mut bytes = 0usize;
    while let Some(chunk) = export.chunks.recv().await {
        let chunk = chunk.map_err(fail)?;
        bytes += chunk.len();
        file.write_all(&chunk).map_err(fail)?;
    }
    file.flush().map_err(fail)?;
    println!(
        "wrote {} ({bytes} bytes) in {:.1} s",
        args.file.display(),
        started.elapsed().as_secs_f64()
    );
    ctx.db.close().await;
    Ok(())
}

async fn backup(path: &std::path::Path, database: &DatabaseConfig) -> tessera::Result<()> {
    let started = std::time::Instant::now();
    if let Some(url) = database.url().filter(|u| u.starts_with("postgres")) {
        // pg_dump takes a consistent snapshot of a running database.
        let status = std::process::Command::new("pg_dump")
            .arg("--format=custom")
            .arg("--file")
            .arg(path)
            .arg(&url)
            .status()
            .map_err(|e| {
                tessera::Error::bad_request(format!(
                    "pg_dump could not be run ({e}); install the PostgreSQL client tools, or back \
                     up with your database's own tools"
                ))
            })?;
        if !status.success() {
            return Err(tessera::Error::internal(format!(
                "pg_dump failed: {status}"
            )));
        }
        println!(
            "pg_dump wrote {} in {:.1} s",
            path.display(),
            started.elapsed().as_secs_f64()
        );
        return Ok(());
    }
    let ctx = Context::open(database).await?;
    ctx.db.backup_into(path).await?;
    ctx.db.close().await;
    println!(
        "backed up to {} and checked it in {:.1} s",
        path.display(),
        started.elapsed().as_secs_f64()
    );
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
            for item in &list.items {
                println!(
                    "{:<12} {:<8} installed: {:<8} {}",
                    item.summary.name,
                    item.summary.version,
                    item.installed_version.as_deref().unwrap_or("-"),
                    item.summary.title["en"].as_str().unwrap_or_default(),
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
