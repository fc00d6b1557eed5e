//! What the benchmarks share: a deterministic generator, the timing loop, a database of their
//! own on a PostgreSQL server, the in-process server signed in as an administrator.

// Each benchmark uses part of it.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::{Value, json};
use sqlx::Connection;
use tessera::config::{DatabaseConfig, ServerConfig};
use tessera::server::RunningServer;

/// A small deterministic generator, so every run loads the same data.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// One of `items`.
    pub fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }
}

/// Percent-encodes a query-string value.
pub fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[derive(Debug)]
pub struct Measured {
    pub name: String,
    pub p50: Duration,
    pub p99: Duration,
    pub per_second: f64,
    pub requests: usize,
    pub clients: usize,
    /// The server's own time (its `Server-Timing` header), when the calls report it: the
    /// latency without the client's share of the two cores.
    pub server: Option<(Duration, Duration)>,
}

/// What a call may report besides its latency: the server's own time.
pub trait ServerTime {
    fn server_time(&self) -> Option<Duration>;
}

impl ServerTime for () {
    fn server_time(&self) -> Option<Duration> {
        None
    }
}

impl ServerTime for Option<Duration> {
    fn server_time(&self) -> Option<Duration> {
        *self
    }
}

/// The value of `Server-Timing: app;dur=<ms>` as a duration.
pub fn server_timing(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let value = headers.get("server-timing")?.to_str().ok()?;
    let ms: f64 = value
        .split("dur=")
        .nth(1)?
        .split([',', ';'])
        .next()?
        .parse()
        .ok()?;
    Some(Duration::from_secs_f64(ms / 1000.0))
}

fn quantile(sorted: &[Duration], q: f64) -> Duration {
    sorted[((sorted.len() as f64 * q) as usize).min(sorted.len() - 1)]
}

/// Runs `requests` calls of `call(i)` from `clients` concurrent clients; latency per call.
pub async fn measure<F, Fut, R>(name: &str, requests: usize, clients: usize, call: F) -> Measured
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = R>,
    R: ServerTime,
{
    let started = Instant::now();
    let timed: Vec<(Duration, Option<Duration>)> = futures::stream::iter(0..requests)
        .map(|i| {
            let fut = call(i);
            async move {
                let t = Instant::now();
                let answer = fut.await;
                (t.elapsed(), answer.server_time())
            }
        })
        .buffer_unordered(clients)
        .collect()
        .await;
    let total = started.elapsed();
    let mut latencies: Vec<Duration> = timed.iter().map(|(l, _)| *l).collect();
    latencies.sort();
    let mut server: Vec<Duration> = timed.iter().filter_map(|(_, s)| *s).collect();
    server.sort();
    Measured {
        name: name.to_owned(),
        p50: quantile(&latencies, 0.50),
        p99: quantile(&latencies, 0.99),
        per_second: requests as f64 / total.as_secs_f64(),
        requests,
        clients,
        server: (server.len() == latencies.len())
            .then(|| (quantile(&server, 0.50), quantile(&server, 0.99))),
    }
}

pub fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1000.0)
}

/// Prints the measurements as a Markdown table.
pub fn print_table(results: &[Measured]) {
    println!(
        "| measurement | clients | requests | p50 ms | p99 ms | server p50 ms | server p99 ms | per second |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for r in results {
        let (server_p50, server_p99) =
            r.server.map_or(("–".to_owned(), "–".to_owned()), |(a, b)| {
                (ms(a), ms(b))
            });
        println!(
            "| {} | {} | {} | {} | {} | {server_p50} | {server_p99} | {:.0} |",
            r.name,
            r.clients,
            r.requests,
            ms(r.p50),
            ms(r.p99),
            r.per_second
        );
    }
}

/// A database of the benchmark's own on the PostgreSQL server of `url`, dropped by
/// [`BenchDatabase::drop_now`].
pub struct BenchDatabase {
    admin: sqlx::PgConnection,
    name: String,
    pub url: String,
}

impl BenchDatabase {
    pub async fn create(url: &str, name: &str) -> BenchDatabase {
        let mut admin = sqlx::PgConnection::connect(url)
            .await
            .expect("PostgreSQL reachable");
        for statement in [
            format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
            format!("CREATE DATABASE {name}"),
        ] {
            // The name is the benchmark's own constant.
            sqlx::query(sqlx::AssertSqlSafe(statement))
                .execute(&mut admin)
                .await
                .expect("create the benchmark database");
        }
        let base = url.rsplit_once('/').map_or(url, |(b, _)| b);
        BenchDatabase {
            admin,
            name: name.to_owned(),
            url: format!("{base}/{name}"),
        }
    }

    pub async fn drop_now(mut self) {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        )))
        .execute(&mut self.admin)
        .await
        .ok();
    }
}

/// The real server in this process on a free port, with an administrator signed in; returns
/// it, its base URL and the administrator's API token.
pub async fn start_server(
    data_dir: std::path::PathBuf,
    database_url: Option<String>,
) -> (RunningServer, String, String) {
    let server = RunningServer::start(ServerConfig {
        addr: "127.0.0.1:0".parse::<SocketAddr>().expect("address"),
        database: DatabaseConfig {
            data_dir,
            database_url,
            max_connections: 16,
        },
        admin_email: Some("bench@tessera.test".into()),
        admin_password: Some("bench password".into()),
        cookie_secure: false,
        background: tessera::config::BackgroundConfig::default(),
        templates_dir: None,
        demo: false,
    })
    .await
    .expect("server starts");
    let base = format!("http://{}", server.addr);
    let login: Value = reqwest::Client::new()
        .post(format!("{base}/api/auth/login"))
        .json(&json!({"email": "bench@tessera.test", "password": "bench password"}))
        .send()
        .await
        .expect("login")
        .json()
        .await
        .expect("login answer");
    let token = login["token"].as_str().expect("token").to_owned();
    (server, base, token)
}
