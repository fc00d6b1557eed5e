//! Two `tessera serve` processes on one PostgreSQL database share the job queue and the cron
//! schedule: every slot of a per-second automation runs exactly once across both.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sqlx::Connection;

use crate::common::{ADMIN_EMAIL, ADMIN_PASSWORD, PG_ENV, with_database};
use crate::smtp::free_port;

/// A server process, killed when dropped.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn serve(addr: SocketAddr, database_url: &str, data_dir: &std::path::Path) -> Process {
    let child = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .arg("serve")
        .env("TESSERA_ADDR", addr.to_string())
        .env("TESSERA_DATABASE_URL", database_url)
        .env("TESSERA_DATA_DIR", data_dir)
        .env("TESSERA_ADMIN_EMAIL", ADMIN_EMAIL)
        .env("TESSERA_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .env("TESSERA_LOG_LEVEL", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("tessera serve starts");
    Process(child)
}

async fn wait_healthy(client: &reqwest::Client, addr: SocketAddr) {
    let until = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(r) = client.get(format!("http://{addr}/api/health")).send().await
            && r.status().is_success()
        {
            return;
        }
        assert!(
            Instant::now() < until,
            "the server on {addr} did not come up"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn call(
    client: &reqwest::Client,
    token: &str,
    method: reqwest::Method,
    url: String,
    body: Value,
) -> Value {
    let response = client
        .request(method, url)
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .expect("request");
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    assert!(status.is_success(), "{status}: {body}");
    body
}

/// Two `tessera serve` processes on a fresh PostgreSQL database of their own.
struct Pair {
    one: SocketAddr,
    two: SocketAddr,
    client: reqwest::Client,
    url: String,
    name: String,
    admin: sqlx::PgConnection,
    processes: Vec<Process>,
    _dirs: (tempfile::TempDir, tempfile::TempDir),
}

impl Pair {
    /// `None` without a PostgreSQL server to test on.
    async fn start() -> Option<Pair> {
        let admin_url = std::env::var(PG_ENV).ok().filter(|u| !u.is_empty())?;
        let name = format!("tessera_test_{}", uuid::Uuid::now_v7().simple());
        let mut admin = sqlx::PgConnection::connect(&admin_url)
            .await
            .expect("PostgreSQL");
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut admin)
            .await
            .expect("create database");
        let url = with_database(&admin_url, &name);
        let dirs = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let (one, two) = (free_port().await, free_port().await);
        let client = reqwest::Client::new();
        let first = serve(one, &url, dirs.0.path());
        wait_healthy(&client, one).await;
        let second = serve(two, &url, dirs.1.path());
        wait_healthy(&client, two).await;
        Some(Pair {
            one,
            two,
            client,
            url,
            name,
            admin,
            processes: vec![first, second],
            _dirs: dirs,
        })
    }

    /// Stops both processes and drops the database.
    async fn stop(mut self) {
        self.processes.clear();
        let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        )))
        .execute(&mut self.admin)
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_serve_processes_run_each_cron_slot_once() {
    let Some(pair) = Pair::start().await else {
        eprintln!("skipped: set {PG_ENV} to run this test on PostgreSQL");
        return;
    };
    let (one, two, client) = (pair.one, pair.two, pair.client.clone());

    let login = client
        .post(format!("http://{one}/api/auth/login"))
        .json(&json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    let token = login["token"].as_str().expect("a session token").to_owned();
    use reqwest::Method;
    call(
        &client,
        &token,
        Method::POST,
        format!("http://{one}/api/entities"),
        json!({
            "name": "tick", "label": {"en": "Tick", "zh-CN": "刻"},
            "schema": {"properties": {"slot": {"x-kind": "text", "x-unique": true}}}
        }),
    )
    .await;
    let automation = call(
        &client,
        &token,
        Method::POST,
        format!("http://{one}/api/automations"),
        json!({
            "name": "Every second", "trigger": {"type": "cron", "cron": "* * * * * *"},
            "script": "records::create(\"tick\", #{ slot: slot }); slot"
        }),
    )
    .await;
    let id = automation["id"].as_str().unwrap().to_owned();
    let runs_of = |at: SocketAddr| {
        let (client, token, id) = (client.clone(), token.clone(), id.clone());
        async move {
            call(
                &client,
                &token,
                Method::GET,
                format!("http://{at}/api/automations/{id}/runs?limit=500"),
                Value::Null,
            )
            .await["items"]
                .as_array()
                .map_or(0, Vec::len)
        }
    };
    // Enough slots for both servers to have competed for several of them.
    let until = Instant::now() + Duration::from_secs(60);
    while runs_of(two).await < 12 {
        assert!(Instant::now() < until, "the slots did not run");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Switched off through the other server.
    call(
        &client,
        &token,
        Method::PATCH,
        format!("http://{two}/api/automations/{id}"),
        json!({"enabled": false}),
    )
    .await;
    // Until the queue has no automation job left to run.
    let mut db = sqlx::PgConnection::connect(&pair.url).await.unwrap();
    let until = Instant::now() + Duration::from_secs(30);
    loop {
        let (pending,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM jobs WHERE kind = 'automation' AND status IN ('queued', 'running')",
        )
        .fetch_one(&mut db)
        .await
        .unwrap();
        if pending == 0 {
            break;
        }
        assert!(Instant::now() < until, "the queue did not drain");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let runs = call(
        &client,
        &token,
        Method::GET,
        format!("http://{two}/api/automations/{id}/runs?limit=500"),
        Value::Null,
    )
    .await;
    let runs = runs["items"].as_array().unwrap();
    let slots: Vec<&str> = runs.iter().map(|r| r["slot"].as_str().unwrap()).collect();
    let unique: BTreeSet<&str> = slots.iter().copied().collect();
    assert_eq!(unique.len(), slots.len(), "a slot ran twice: {slots:?}");
    assert!(slots.len() >= 12, "{} slots", slots.len());
    assert!(runs.iter().all(|r| r["status"] == "succeeded"));
    let seconds: Vec<i64> = unique
        .iter()
        .map(|s| chrono::DateTime::parse_from_rfc3339(s).unwrap().timestamp())
        .collect();
    assert!(
        seconds.windows(2).all(|w| w[1] - w[0] == 1),
        "a slot was skipped: {seconds:?}"
    );
    // Each slot made exactly one record (the slot is a unique field, so a second run of a
    // slot would have failed rather than added one).
    let ticks = call(
        &client,
        &token,
        Method::GET,
        format!("http://{one}/api/records/tick?count=true&limit=1"),
        Value::Null,
    )
    .await;
    assert_eq!(ticks["total"], slots.len());
    // Which server ran the slots (both claim from the one queue).
    let owners: Vec<(String, i64)> = sqlx::query_as(
        "SELECT split_part(lease_owner, '/', 1), COUNT(*) FROM jobs WHERE kind = 'automation' \
         GROUP BY 1 ORDER BY 1",
    )
    .fetch_all(&mut db)
    .await
    .unwrap();
    eprintln!("slots run per server: {owners:?}");
    assert_eq!(
        owners.iter().map(|(_, n)| n).sum::<i64>(),
        slots.len() as i64
    );
    db.close().await.ok();

    pair.stop().await;
}

/// The status of a GET with a bearer token.
async fn status_of(client: &reqwest::Client, token: &str, url: String) -> u16 {
    client
        .get(url)
        .bearer_auth(token)
        .send()
        .await
        .expect("request")
        .status()
        .as_u16()
}

/// Each process caches the access of the tokens it has seen; a revocation or a deactivation
/// made through the other process holds on the very next request all the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revocation_on_one_process_holds_on_the_other_at_once() {
    let Some(pair) = Pair::start().await else {
        eprintln!("skipped: set {PG_ENV} to run this test on PostgreSQL");
        return;
    };
    let (one, two, client) = (pair.one, pair.two, pair.client.clone());

    use reqwest::Method;
    let login = |addr: SocketAddr, email: &'static str, password: &'static str| {
        let client = client.clone();
        async move {
            let answer: Value = client
                .post(format!("http://{addr}/api/auth/login"))
                .json(&json!({"email": email, "password": password}))
                .send()
                .await
                .expect("login")
                .json()
                .await
                .expect("json");
            answer["token"]
                .as_str()
                .expect("a session token")
                .to_owned()
        }
    };
    let root = login(one, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let user = call(
        &client,
        &root,
        Method::POST,
        format!("http://{one}/api/users"),
        json!({"email": "ana@tessera.test", "password": "password 1234", "roles": ["read_only"]}),
    )
    .await;
    let ana = login(one, "ana@tessera.test", "password 1234").await;
    let api_token = call(
        &client,
        &ana,
        Method::POST,
        format!("http://{one}/api/tokens"),
        json!({"name": "integration"}),
    )
    .await;
    let secret = api_token["token"].as_str().expect("the token").to_owned();
    // Seen twice by the second process: cached there.
    for _ in 0..2 {
        assert_eq!(
            status_of(&client, &secret, format!("http://{two}/api/me")).await,
            200
        );
        assert_eq!(
            status_of(&client, &ana, format!("http://{two}/api/me")).await,
            200
        );
    }
    // Revoked through the first process: refused by the second on the next request.
    let revoked = client
        .delete(format!(
            "http://{one}/api/tokens/{}",
            api_token["id"].as_str().unwrap()
        ))
        .bearer_auth(&ana)
        .send()
        .await
        .expect("revoke");
    assert_eq!(revoked.status().as_u16(), 204);
    assert_eq!(
        status_of(&client, &secret, format!("http://{two}/api/me")).await,
        401
    );
    assert_eq!(
        status_of(&client, &ana, format!("http://{two}/api/me")).await,
        200
    );
    // Deactivated through the first process: the session is refused by the second.
    call(
        &client,
        &root,
        Method::PATCH,
        format!("http://{one}/api/users/{}", user["id"].as_str().unwrap()),
        json!({"active": false}),
    )
    .await;
    assert_eq!(
        status_of(&client, &ana, format!("http://{two}/api/me")).await,
        401
    );

    pair.stop().await;
}
