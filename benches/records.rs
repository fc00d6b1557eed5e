//! The records benchmark: an entity with ten fields of mixed kinds, a million records loaded,
//! then measured over HTTP against the real server — creates with 50 concurrent clients, reads
//! by id, list pages (indexed filter and sort, 10,000 records deep by cursor, with an
//! expansion, an un-indexed filter). Prints p50/p99 latency and throughput as Markdown.
//!
//! ```text
//! cargo bench --bench records                                   # SQLite, 1,000,000 records
//! cargo bench --bench records -- --rows 20000                   # a quick run
//! cargo bench --bench records -- --database-url postgres://postgres@127.0.0.1:5432/test
//! ```
//! With a PostgreSQL URL the benchmark creates its own database `tessera_bench` on that server
//! (and drops it afterwards).

mod common;

/// The same allocator as the `tessera` binary, so the figures are the server's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use chrono::{NaiveDate, Utc};
use common::{BenchDatabase, Rng, enc, measure, print_table};
use rust_decimal::Decimal;
use serde_json::{Value, json};
use tessera::store::records;
use tessera::store::{Ident, SqlValue};

struct Options {
    rows: usize,
    database_url: Option<String>,
    read_clients: usize,
    create_clients: usize,
    requests: usize,
}

fn options() -> Options {
    let mut options = Options {
        rows: 1_000_000,
        database_url: None,
        read_clients: 4,
        create_clients: 50,
        requests: 4_000,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--rows" => {
                options.rows = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(options.rows)
            }
            "--database-url" => options.database_url = args.next(),
            "--clients" => {
                options.read_clients = args.next().and_then(|v| v.parse().ok()).unwrap_or(4)
            }
            "--create-clients" => {
                options.create_clients = args.next().and_then(|v| v.parse().ok()).unwrap_or(50)
            }
            "--requests" => {
                options.requests = args.next().and_then(|v| v.parse().ok()).unwrap_or(4_000)
            }
            _ => {} // cargo bench passes --bench
        }
    }
    options
}

const STATUSES: [&str; 5] = ["draft", "open", "shipped", "settled", "cancelled"];
const REGIONS: [&str; 7] = ["华东", "华北", "华南", "华中", "西南", "西北", "东北"];

struct Http {
    client: reqwest::Client,
    base: String,
}

impl Http {
    async fn get(&self, path: &str) -> Value {
        let response = self
            .client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .expect("request");
        assert!(
            response.status().is_success(),
            "{path}: {}",
            response.status()
        );
        response.json().await.expect("json")
    }

    async fn post(&self, path: &str, body: &Value) -> Value {
        let response = self
            .client
            .post(format!("{}{path}", self.base))
            .json(body)
            .send()
            .await
            .expect("request");
        assert!(
            response.status().is_success(),
            "{path}: {}",
            response.status()
        );
        response.json().await.expect("json")
    }
}

/// The cursor 10,000 records into a list (walked there page by page).
async fn walk(http: &Http, query: &str) -> String {
    let mut cursor = String::new();
    for _ in 0..100 {
        let mut path = format!("/api/records/bench_order?{query}&limit=100&fields=code");
        if !cursor.is_empty() {
            path.push_str(&format!("&cursor={cursor}"));
        }
        cursor = http.get(&path).await["next_cursor"]
            .as_str()
            .expect("10,000 records to walk (load at least 100,000)")
            .to_owned();
    }
    cursor
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let options = options();
    let data = tempfile::tempdir().expect("temp dir");
    let pg = match &options.database_url {
        Some(url) => Some(BenchDatabase::create(url, "tessera_bench").await),
        None => None,
    };
    let (server, base, token) = common::start_server(
        data.path().join("tessera-data"),
        pg.as_ref().map(|d| d.url.clone()),
    )
    .await;
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::AUTHORIZATION,
        format!("Bearer {token}").parse().expect("header"),
    );
    let http = Arc::new(Http {
        client: reqwest::Client::builder()
            .pool_max_idle_per_host(64)
            .default_headers(headers)
            .build()
            .expect("client"),
        base,
    });
    let backend = server.ctx.db.dialect().name();
    eprintln!("backend: {backend}; loading {} records …", options.rows);

    http.post(
        "/api/entities",
        &json!({"name": "bench_customer", "label": {"en": "Customer", "zh-CN": "客户"},
                "schema": {"properties": {"name": {"x-kind": "text", "x-indexed": true}, "city": {"x-kind": "text"}}}}),
    )
    .await;
    http.post(
        "/api/entities",
        &json!({"name": "bench_order", "label": {"en": "Order", "zh-CN": "订单"},
                "schema": {"properties": {
                    "code": {"x-kind": "text", "x-indexed": true},
                    "customer": {"x-kind": "lookup", "x-target": "bench_customer"},
                    "amount": {"x-kind": "money", "x-indexed": true},
                    "quantity": {"x-kind": "integer"},
                    "status": {"x-kind": "select", "x-indexed": true,
                               "x-options": STATUSES.iter().map(|s| json!({"value": s})).collect::<Vec<_>>()},
                    "ordered_on": {"x-kind": "date", "x-indexed": true},
                    "region": {"x-kind": "text"},
                    "priority": {"x-kind": "integer"},
                    "paid": {"x-kind": "boolean"},
                    "notes": {"x-kind": "long_text"}
                }}}),
    )
    .await;

    // Bulk load through the store (the measurements below all go over HTTP).
    let load_started = Instant::now();
    let catalog = server
        .ctx
        .schema
        .catalog(&server.ctx.db)
        .await
        .expect("catalog");
    let customers = catalog.entity("bench_customer").expect("customer entity");
    let orders = catalog.entity("bench_order").expect("order entity");
    let mut rng = Rng(0x2545_F491_4F6C_DD1D);
    let now = SqlValue::Datetime(Utc::now());
    let system = |id: String| {
        vec![
            SqlValue::Text(id),
            now.clone(),
            now.clone(),
            SqlValue::Integer(1),
        ]
    };
    let system_columns: Vec<Ident> = ["id", "created_at", "updated_at", "version"]
        .into_iter()
        .map(Ident::fixed)
        .collect();
    let customer_count = (options.rows / 100).max(10);
    let mut customer_ids = Vec::with_capacity(customer_count);
    let mut columns = system_columns.clone();
    columns.extend(["name", "city"].map(Ident::fixed));
    let mut tx = server.ctx.db.begin().await.expect("tx");
    let mut batch = Vec::new();
    for i in 0..customer_count {
        let id = uuid::Uuid::now_v7().hyphenated().to_string();
        customer_ids.push(id.clone());
        let mut row = system(id);
        row.push(SqlValue::Text(format!("客户 {i:06}")));
        row.push(SqlValue::Text(REGIONS[i % REGIONS.len()].to_owned()));
        batch.push(row);
    }
    records::insert_batch(&mut tx, &customers.layout, &columns, batch)
        .await
        .expect("customers");
    tx.commit().await.expect("commit");

    let mut columns = system_columns.clone();
    columns.extend(
        [
            "code",
            "customer",
            "amount",
            "quantity",
            "status",
            "ordered_on",
            "region",
            "priority",
            "paid",
            "notes",
        ]
        .map(Ident::fixed),
    );
    let base_day = NaiveDate::from_ymd_opt(2020, 1, 1).expect("date");
    let mut order_ids = Vec::with_capacity(options.rows);
    let mut loaded = 0;
    while loaded < options.rows {
        let chunk = (options.rows - loaded).min(50_000);
        let mut batch = Vec::with_capacity(chunk);
        for _ in 0..chunk {
            let id = uuid::Uuid::now_v7().hyphenated().to_string();
            order_ids.push(id.clone());
            let mut row = system(id);
            row.push(SqlValue::Text(format!("SO-{:08}", loaded + batch.len())));
            row.push(SqlValue::Text(
                customer_ids[rng.below(customer_count as u64) as usize].clone(),
            ));
            row.push(SqlValue::Decimal(
                Decimal::new(rng.below(10_000_000) as i64, 2),
                2,
            ));
            row.push(SqlValue::Integer(rng.below(10_000) as i64 + 1));
            row.push(SqlValue::Text(STATUSES[rng.below(5) as usize].to_owned()));
            row.push(SqlValue::Date(
                base_day + chrono::Days::new(rng.below(2_000)),
            ));
            row.push(SqlValue::Text(REGIONS[rng.below(7) as usize].to_owned()));
            row.push(SqlValue::Integer(rng.below(5) as i64));
            row.push(SqlValue::Boolean(rng.below(2) == 0));
            row.push(SqlValue::Text("常规订单 regular order".to_owned()));
            batch.push(row);
        }
        let mut tx = server.ctx.db.begin().await.expect("tx");
        records::insert_batch(&mut tx, &orders.layout, &columns, batch)
            .await
            .expect("orders");
        tx.commit().await.expect("commit");
        loaded += chunk;
    }
    eprintln!("inserted in {:.1}s", load_started.elapsed().as_secs_f64());
    server.ctx.db.analyze().await.expect("analyze");
    let load_time = load_started.elapsed();
    eprintln!("loaded in {:.1}s; measuring …", load_time.as_secs_f64());

    let clients = options.read_clients;
    let n = options.requests;
    let mut results = Vec::new();

    // Creates with 50 concurrent clients.
    let created = Arc::new(AtomicUsize::new(0));
    results.push(
        measure("create", n * 2, options.create_clients, |i| {
            let http = http.clone();
            let created = created.clone();
            let customer = customer_ids[i % customer_ids.len()].clone();
            async move {
                http.post(
                    "/api/records/bench_order",
                    &json!({"code": format!("NEW-{i:08}"), "customer": customer, "amount": "199.90",
                            "quantity": 3, "status": "open", "ordered_on": "2026-11-22", "region": "华东",
                            "priority": 1, "paid": false, "notes": "bench"}),
                )
                .await;
                created.fetch_add(1, Ordering::Relaxed);
            }
        })
        .await,
    );

    // Reads: each a request path for the i-th request.
    let ids = Arc::new(order_ids);
    let customers = Arc::new(customer_ids);
    let open = enc("status = \"open\"");
    let range = enc("amount >= 20000");
    let cursor_open = walk(&http, &format!("filter={open}")).await;
    let cursor_range = walk(&http, &format!("filter={range}&sort=-amount")).await;
    type PathOf = Box<dyn Fn(usize) -> String>;
    let reads: Vec<(&str, usize, PathOf)> = vec![
        ("get by id", n, {
            let ids = ids.clone();
            Box::new(move |i| format!("/{}", ids[(i * 7_919) % ids.len()]))
        }),
        ("first page: status = open, newest first (50)", n, {
            let open = open.clone();
            Box::new(move |_| format!("?filter={open}"))
        }),
        ("first page: amount >= 20000, sort -amount (50)", n, {
            let range = range.clone();
            Box::new(move |_| format!("?filter={range}&sort=-amount"))
        }),
        ("first page: customer = X, newest first (50)", n, {
            let customers = customers.clone();
            Box::new(move |i| {
                let id = &customers[i % customers.len()];
                format!("?filter={}", enc(&format!("customer = \"{id}\"")))
            })
        }),
        ("page 10,000 deep by cursor: status = open (50)", n, {
            let open = open.clone();
            Box::new(move |_| format!("?filter={open}&cursor={cursor_open}"))
        }),
        ("page 10,000 deep by cursor: sort -amount (50)", n, {
            let range = range.clone();
            Box::new(move |_| format!("?filter={range}&sort=-amount&cursor={cursor_range}"))
        }),
        ("first page with expand=customer (50)", n, {
            let open = open.clone();
            Box::new(move |_| format!("?filter={open}&expand=customer"))
        }),
        (
            "un-indexed filter: quantity = 4321 (full scan)",
            (n / 40).max(20),
            {
                let unindexed = enc("quantity = 4321");
                Box::new(move |_| format!("?filter={unindexed}"))
            },
        ),
    ];
    for (name, requests, path_of) in &reads {
        let result = measure(name, *requests, clients, |i| {
            let http = http.clone();
            let path = format!("/api/records/bench_order{}", path_of(i));
            async move {
                http.get(&path).await;
            }
        })
        .await;
        results.push(result);
    }

    println!(
        "\n### {backend}, {} records (loaded in {:.1} s)\n",
        options.rows,
        load_time.as_secs_f64()
    );
    print_table(&results);

    server.stop().await.expect("server stops");
    if let Some(pg) = pg {
        pg.drop_now().await;
    }
}
