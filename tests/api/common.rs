//! The test harness: `TestApp` starts the real server in-process on an ephemeral port against
//! a fresh database — a temporary SQLite folder, or a new PostgreSQL database created from
//! `TESSERA_TEST_DATABASE_URL` and dropped afterwards — and talks to it over HTTP.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use futures::FutureExt;
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde_json::Value;
use sqlx::Connection;
use tessera::config::{BackgroundConfig, DatabaseConfig, ServerConfig};
use tessera::context::Context;
use tessera::server::RunningServer;
use tessera::store::{ColumnType, Dialect, Sql, SqlValue};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub const PG_ENV: &str = "TESSERA_TEST_DATABASE_URL";

/// A response: status, headers and the JSON body (Null when empty).
#[derive(Debug)]
pub struct Resp {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Asserts the status, showing the body when it differs.
    #[track_caller]
    pub fn expect(self, status: u16) -> Resp {
        assert_eq!(
            self.status.as_u16(),
            status,
            "unexpected status; body: {}",
            serde_json::to_string_pretty(&self.body).unwrap_or_default()
        );
        self
    }

    /// The fields named in a problem's `errors`.
    pub fn error_fields(&self) -> Vec<String> {
        self.body["errors"]
            .as_array()
            .map(|e| {
                e.iter()
                    .filter_map(|x| x["field"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// The administrator every test server starts with.
pub const ADMIN_EMAIL: &str = "admin@tessera.test";
pub const ADMIN_PASSWORD: &str = "admin password 1";

#[derive(Clone)]
pub struct TestApp {
    pub backend: Backend,
    pub addr: SocketAddr,
    pub client: reqwest::Client,
    pub ctx: Arc<Context>,
    /// How this server reached its database, to start another one on it.
    pub database: DatabaseConfig,
}

impl TestApp {
    /// The same server without credentials.
    pub fn anonymous(&self) -> TestApp {
        TestApp {
            client: reqwest::Client::new(),
            ..self.clone()
        }
    }

    /// The same server as another caller, with a bearer token.
    pub fn with_token(&self, token: &str) -> TestApp {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(
            reqwest::header::AUTHORIZATION,
            format!("Bearer {token}").parse().expect("header"),
        );
        TestApp {
            client: reqwest::Client::builder()
                .default_headers(headers)
                .build()
                .expect("client"),
            ..self.clone()
        }
    }

    /// Signs in and returns the server as that user.
    pub async fn login(&self, email: &str, password: &str) -> TestApp {
        let response = self
            .anonymous()
            .post(
                "/api/auth/login",
                &serde_json::json!({"email": email, "password": password}),
            )
            .await
            .expect(200);
        self.with_token(response.body["token"].as_str().expect("token"))
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub async fn request(&self, method: Method, path: &str, body: Option<&Value>) -> Resp {
        self.request_with(method, path, body, &[]).await
    }

    pub async fn request_with(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> Resp {
        let mut request = self.client.request(method, self.url(path));
        if let Some(body) = body {
            request = request.json(body);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.expect("request reaches the server");
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.expect("response body");
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            // Pages (HTML) come back as a JSON string of their text.
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        Resp {
            status,
            headers,
            body,
        }
    }

    pub async fn get(&self, path: &str) -> Resp {
        self.request(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> Resp {
        self.request(Method::POST, path, Some(body)).await
    }

    pub async fn put(&self, path: &str, body: &Value) -> Resp {
        self.request(Method::PUT, path, Some(body)).await
    }

    pub async fn patch(&self, path: &str, body: &Value) -> Resp {
        self.request(Method::PATCH, path, Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> Resp {
        self.request(Method::DELETE, path, None).await
    }

    pub fn dialect(&self) -> Dialect {
        self.ctx.db.dialect()
    }

    /// Runs SQL straight on the database, for checking what the server stored.
    pub async fn sql(&self, text: &str, columns: &[ColumnType]) -> Vec<Vec<SqlValue>> {
        self.ctx
            .db
            .fetch_all(&Sql::new(text), columns)
            .await
            .unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    /// `(column, declared type)` of a table, as the database reports them.
    pub async fn columns_of(&self, table: &str) -> Vec<(String, String)> {
        let text = match self.dialect() {
            Dialect::Sqlite => format!("SELECT name, type FROM pragma_table_info('{table}')"),
            Dialect::Postgres => format!(
                "SELECT column_name::text, CASE WHEN data_type = 'numeric' THEN \
                 'numeric(' || numeric_precision || ',' || numeric_scale || ')' ELSE data_type::text END \
                 FROM information_schema.columns WHERE table_name = '{table}' \
                 AND table_schema = current_schema() ORDER BY ordinal_position"
            ),
        };
        self.sql(&text, &[ColumnType::Text, ColumnType::Text])
            .await
            .into_iter()
            .map(|r| {
                (
                    r[0].as_str().unwrap_or_default().to_owned(),
                    r[1].as_str().unwrap_or_default().to_lowercase(),
                )
            })
            .collect()
    }

    /// `(index name, definition)` of a table's indexes.
    pub async fn indexes_of(&self, table: &str) -> Vec<(String, String)> {
        let text = match self.dialect() {
            Dialect::Sqlite => format!(
                "SELECT name, COALESCE(sql, '') FROM sqlite_master WHERE type = 'index' AND tbl_name = '{table}'"
            ),
            Dialect::Postgres => format!(
                "SELECT indexname::text, indexdef FROM pg_indexes WHERE tablename = '{table}' \
                 AND schemaname = current_schema()"
            ),
        };
        self.sql(&text, &[ColumnType::Text, ColumnType::Text])
            .await
            .into_iter()
            .map(|r| {
                (
                    r[0].as_str().unwrap_or_default().to_owned(),
                    r[1].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect()
    }

    /// Creates an entity and returns its document.
    pub async fn create_entity(&self, definition: &Value) -> Value {
        self.post("/api/entities", definition)
            .await
            .expect(201)
            .body
    }

    /// Creates a record and returns it.
    pub async fn create_record(&self, entity: &str, record: &Value) -> Value {
        self.post(&format!("/api/records/{entity}"), record)
            .await
            .expect(201)
            .body
    }

    /// Creates many records, a few requests at a time; returns them in creation order.
    pub async fn create_records(&self, entity: &str, records: Vec<Value>) -> Vec<Value> {
        use futures::StreamExt;
        let path = format!("/api/records/{entity}");
        futures::stream::iter(records)
            .map(|r| {
                let path = path.clone();
                async move { self.post(&path, &r).await.expect(201).body }
            })
            .buffered(8)
            .collect()
            .await
    }
}

/// What must be removed after a test.
pub enum Cleanup {
    Dir(tempfile::TempDir),
    /// A PostgreSQL database, and the server's own data folder (mail files and such).
    PgDatabase {
        admin_url: String,
        name: String,
        dir: tempfile::TempDir,
    },
}

/// Replaces the database name in a PostgreSQL URL.
pub fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, format!("?{q}")),
        None => (url, String::new()),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let path_start = base[scheme_end..]
        .find('/')
        .map_or(base.len(), |i| scheme_end + i);
    format!("{}/{name}{query}", &base[..path_start])
}

async fn start_with_templates(
    backend: Backend,
    templates_dir: Option<std::path::PathBuf>,
) -> Option<(TestApp, RunningServer, Cleanup)> {
    // `TESSERA_TEST_LOG=warn` (any filter) shows the servers' logs with the test's output.
    if let Ok(filter) = std::env::var("TESSERA_TEST_LOG") {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_test_writer()
            .try_init();
    }
    let (anonymous, server, cleanup) = start_server(backend, true, templates_dir, false).await?;
    let app = anonymous.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    Some((app, server, cleanup))
}

async fn start_with(backend: Backend, admin: bool) -> Option<(TestApp, RunningServer, Cleanup)> {
    start_server(backend, admin, None, false).await
}

/// A server started as `tessera serve --demo` starts it (the four business templates with their
/// sample data), with the test administrator; not signed in.
#[allow(dead_code)] // the browser tests start their servers this way
pub async fn demo(backend: Backend) -> Option<(TestApp, RunningServer, Cleanup)> {
    start_server(backend, true, None, true).await
}

async fn start_server(
    backend: Backend,
    admin: bool,
    templates_dir: Option<std::path::PathBuf>,
    demo: bool,
) -> Option<(TestApp, RunningServer, Cleanup)> {
    let data_dir = tempfile::tempdir().expect("temp dir");
    let (database_url, cleanup) = match backend {
        Backend::Sqlite => (None, Cleanup::Dir(data_dir)),
        Backend::Postgres => {
            let admin_url = std::env::var(PG_ENV).ok().filter(|u| !u.is_empty())?;
            let name = format!("tessera_test_{}", uuid::Uuid::now_v7().simple());
            let mut admin = sqlx::PgConnection::connect(&admin_url)
                .await
                .unwrap_or_else(|e| panic!("{PG_ENV} is set but PostgreSQL is unreachable: {e}"));
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                .execute(&mut admin)
                .await
                .expect("create test database");
            admin.close().await.ok();
            (
                Some(with_database(&admin_url, &name)),
                Cleanup::PgDatabase {
                    admin_url,
                    name,
                    dir: data_dir,
                },
            )
        }
    };
    let dir = match &cleanup {
        Cleanup::Dir(d) => d.path().to_path_buf(),
        Cleanup::PgDatabase { dir, .. } => dir.path().to_path_buf(),
    };
    let config = ServerConfig {
        addr: "127.0.0.1:0".parse().expect("address"),
        database: DatabaseConfig {
            data_dir: dir.join("tessera-data"),
            database_url,
            max_connections: 8,
        },
        admin_email: admin.then(|| ADMIN_EMAIL.into()),
        admin_password: admin.then(|| ADMIN_PASSWORD.into()),
        cookie_secure: false,
        background: test_background(),
        templates_dir,
        demo,
    };
    let database = config.database.clone();
    let server = RunningServer::start(config).await.expect("server starts");
    let anonymous = TestApp {
        backend,
        addr: server.addr,
        client: reqwest::Client::new(),
        ctx: server.ctx.clone(),
        database,
    };
    Some((anonymous, server, cleanup))
}

/// Background work as in production, with shorter waits: failed jobs retry after 200 ms
/// (doubling), and a script may run for 2 seconds.
pub fn test_background() -> BackgroundConfig {
    BackgroundConfig {
        smtp_url: None,
        workers: 2,
        script_timeout: 2,
        retry_base_ms: 200,
        // Webhook attempts 5 ms, 0.3 s, 1.8 s … apart instead of 5 s, 5 min, 30 min ….
        webhook_retry_scale: 0.001,
    }
}

pub async fn clean(cleanup: Cleanup) {
    match cleanup {
        Cleanup::Dir(dir) => drop(dir),
        Cleanup::PgDatabase {
            admin_url, name, ..
        } => {
            if let Ok(mut admin) = sqlx::PgConnection::connect(&admin_url).await {
                let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                )))
                .execute(&mut admin)
                .await;
                admin.close().await.ok();
            }
        }
    }
}

impl TestApp {
    /// A second server on the same database (as several instances run in production), signed
    /// in as the administrator. Stop it with `RunningServer::stop`.
    pub async fn second_instance(&self) -> (TestApp, RunningServer) {
        let server = RunningServer::start(ServerConfig {
            addr: "127.0.0.1:0".parse().expect("address"),
            database: self.database.clone(),
            admin_email: None,
            admin_password: None,
            cookie_secure: false,
            background: test_background(),
            templates_dir: None,
            demo: false,
        })
        .await
        .expect("second server starts");
        let app = TestApp {
            addr: server.addr,
            client: reqwest::Client::new(),
            ctx: server.ctx.clone(),
            ..self.clone()
        };
        (app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await, server)
    }
}

/// Starts a server on a fresh database with no user at all; returns it with its setup token.
pub async fn bare(backend: Backend) -> Option<(TestApp, RunningServer, String, Cleanup)> {
    let (app, server, cleanup) = start_with(backend, false).await?;
    let token = server
        .setup_token
        .clone()
        .expect("a setup token on a first start");
    Some((app, server, token, cleanup))
}

pub async fn finish(server: RunningServer, cleanup: Cleanup) {
    server.stop().await.expect("server stops cleanly");
    clean(cleanup).await;
}

/// Runs a scenario against a fresh server on one backend, cleaning up even when it fails.
pub async fn run<F, Fut>(backend: Backend, scenario: F)
where
    F: FnOnce(TestApp) -> Fut,
    Fut: Future<Output = ()>,
{
    run_with_templates(backend, None, scenario).await;
}

/// [`run`] with a folder of extra template packages.
pub async fn run_with_templates<F, Fut>(
    backend: Backend,
    templates_dir: Option<std::path::PathBuf>,
    scenario: F,
) where
    F: FnOnce(TestApp) -> Fut,
    Fut: Future<Output = ()>,
{
    let Some((app, server, cleanup)) = start_with_templates(backend, templates_dir).await else {
        eprintln!("skipped: set {PG_ENV} to run this test on PostgreSQL");
        return;
    };
    let outcome = std::panic::AssertUnwindSafe(scenario(app))
        .catch_unwind()
        .await;
    server.stop().await.expect("server stops cleanly");
    clean(cleanup).await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

/// Declares scenarios that run on both databases: each becomes a module with a `sqlite` and a
/// `postgres` test.
#[macro_export]
macro_rules! on_both_databases {
    ($(async fn $name:ident($app:ident: TestApp) $body:block)*) => {
        $(
            mod $name {
                #[allow(unused_imports)]
                use super::*;

                async fn scenario($app: $crate::common::TestApp) $body

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    $crate::common::run($crate::common::Backend::Sqlite, scenario).await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    $crate::common::run($crate::common::Backend::Postgres, scenario).await;
                }
            }
        )*
    };
}

#[test]
fn database_names_are_replaced_in_urls() {
    assert_eq!(
        with_database("postgres://postgres@127.0.0.1:5432/test", "x"),
        "postgres://postgres@127.0.0.1:5432/x"
    );
    assert_eq!(
        with_database("postgres://u:p@h/test?sslmode=disable", "x"),
        "postgres://u:p@h/x?sslmode=disable"
    );
    assert_eq!(with_database("postgres://h", "x"), "postgres://h/x");
}

/// Waits until `check` holds (polling), failing after `limit`.
pub async fn eventually<F, Fut>(limit: std::time::Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let until = std::time::Instant::now() + limit;
    while !check().await {
        assert!(
            std::time::Instant::now() < until,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

impl TestApp {
    /// Waits until the job queue holds no queued or running job (every automation run and
    /// mail delivery queued so far has finished, for good or for now).
    /// Waits until no job is running or due within a few seconds (a retry scheduled minutes
    /// ahead is not work the queue has now).
    pub async fn queue_idle(&self) {
        let until = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let soon = chrono::Utc::now() + chrono::Duration::seconds(5);
            let sql = tessera::store::Sql::new(
                "SELECT kind || ' ' || status || ' ' || CAST(run_at AS TEXT) || ' ' || \
                 CAST(attempts AS TEXT) || ' ' || COALESCE(last_error, '') || ' ' || \
                 COALESCE(lease_owner, '') || ' ' || CAST(payload AS TEXT) \
                 FROM jobs WHERE status = 'running' OR (status = 'queued' AND run_at <= $1)",
            )
            .bind(soon);
            let rows = self
                .ctx
                .db
                .fetch_all(&sql, &[ColumnType::Text])
                .await
                .expect("jobs");
            if rows.is_empty() {
                return;
            }
            let left: Vec<&str> = rows.iter().filter_map(|r| r[0].as_str()).collect();
            assert!(
                std::time::Instant::now() < until,
                "timed out waiting for an idle job queue: {left:?}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }
}

/// Waits until the wall clock has crossed `n` whole-second boundaries: the condition a test of
/// per-second cron slots waits for (slots are the clock's seconds).
pub async fn seconds_pass(n: u32) {
    let now = chrono::Utc::now();
    let next = now.timestamp() + i64::from(n) + 1;
    let wait = (next * 1000 - now.timestamp_millis()).max(0) as u64;
    tokio::time::sleep(std::time::Duration::from_millis(wait)).await;
}

/// The `id` of a record or object in an answer.
pub fn id(value: &Value) -> String {
    value["id"].as_str().expect("an id").to_owned()
}
