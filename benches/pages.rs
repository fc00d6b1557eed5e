//! The pages and search benchmark: a company entity with Chinese names, a million records
//! loaded through the store, the search index built by the code `tessera reindex` runs (timed),
//! then measured over HTTP against the real server — the list page (50 rows), the next 50 rows
//! ("load more"), a record page, and global search for a two- and a five-character Chinese
//! query. Prints p50/p99 latency and throughput as Markdown.
//!
//! ```text
//! cargo bench --bench pages                                   # SQLite, 1,000,000 records
//! cargo bench --bench pages -- --rows 20000                   # a quick run
//! cargo bench --bench pages -- --skip-search                  # pages only, no search index
//! cargo bench --bench pages -- --database-url postgres://postgres@127.0.0.1:5432/test
//! ```
//! With a PostgreSQL URL the benchmark creates its own database `tessera_bench_pages` on that
//! server (and drops it afterwards). Pages are requested with the session cookie, as a browser
//! does, without compression; search with the API token.

mod common;

/// The same allocator as the `tessera` binary, so the figures are the server's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::sync::Arc;
use std::time::Instant;

use chrono::Utc;
use common::{BenchDatabase, Rng, enc, measure, print_table};
use rust_decimal::Decimal;
use serde_json::json;
use tessera::store::records;
use tessera::store::{Ident, SqlValue};

struct Options {
    rows: usize,
    database_url: Option<String>,
    clients: usize,
    requests: usize,
    /// Pages only: no search index build and no search measurements (a quicker run).
    skip_search: bool,
    /// Leaves the PostgreSQL database in place afterwards, to look at its plans.
    keep_database: bool,
}

fn options() -> Options {
    let mut options = Options {
        rows: 1_000_000,
        database_url: None,
        clients: 4,
        requests: 1_000,
        skip_search: false,
        keep_database: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut number =
            |default: usize| args.next().and_then(|v| v.parse().ok()).unwrap_or(default);
        match arg.as_str() {
            "--rows" => options.rows = number(options.rows),
            "--clients" => options.clients = number(options.clients),
            "--requests" => options.requests = number(options.requests),
            "--database-url" => options.database_url = args.next(),
            "--skip-search" => options.skip_search = true,
            "--keep-database" => options.keep_database = true,
            _ => {} // cargo bench passes --bench
        }
    }
    options
}

const CITIES: [&str; 20] = [
    "上海", "北京", "广州", "深圳", "杭州", "南京", "苏州", "成都", "武汉", "西安", "天津", "重庆",
    "长沙", "郑州", "青岛", "厦门", "宁波", "合肥", "昆明", "沈阳",
];
const REGIONS: [&str; 7] = ["华东", "华北", "华南", "华中", "西南", "西北", "东北"];
const INDUSTRIES: [&str; 16] = [
    "贸易", "科技", "实业", "电子", "机械", "食品", "医药", "物流", "建材", "纺织", "化工", "能源",
    "信息", "文化", "农业", "汽车",
];
const SUFFIXES: [&str; 5] = [
    "有限公司",
    "股份有限公司",
    "集团有限公司",
    "有限责任公司",
    "商行",
];
const LEVELS: [&str; 3] = ["A", "B", "C"];

/// A company-like name such as 上海华东贸易有限公司.
fn company(rng: &mut Rng) -> String {
    let mut name = String::new();
    name.push_str(rng.pick(&CITIES));
    name.push_str(rng.pick(&REGIONS));
    name.push_str(rng.pick(&INDUSTRIES));
    name.push_str(rng.pick(&SUFFIXES));
    name
}

/// The "load more" link of a list page: the fragment with the next 50 rows.
fn more_link(html: &str) -> Option<String> {
    let start = html.find("/e/bench_company/rows?")?;
    let end = start + html[start..].find('"')?;
    Some(html[start..end].replace("&amp;", "&"))
}

struct Client {
    http: reqwest::Client,
    base: String,
}

impl Client {
    /// Reads the whole answer (as a browser would) and returns it.
    async fn get(&self, path: &str) -> String {
        self.timed(path).await.0
    }

    /// The answer and the server's own time for it (`Server-Timing`).
    async fn timed(&self, path: &str) -> (String, Option<std::time::Duration>) {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .expect("request");
        assert!(
            response.status().is_success(),
            "{path}: {}",
            response.status()
        );
        let server = common::server_timing(response.headers());
        (response.text().await.expect("body"), server)
    }
}

fn client(base: &str, header: reqwest::header::HeaderName, value: String) -> Arc<Client> {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(header, value.parse().expect("header"));
    Arc::new(Client {
        http: reqwest::Client::builder()
            .pool_max_idle_per_host(64)
            .redirect(reqwest::redirect::Policy::none())
            .default_headers(headers)
            .build()
            .expect("client"),
        base: base.to_owned(),
    })
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let options = options();
    let data = tempfile::tempdir().expect("temp dir");
    let pg = match &options.database_url {
        Some(url) => Some(BenchDatabase::create(url, "tessera_bench_pages").await),
        None => None,
    };
    let (server, base, token) = common::start_server(
        data.path().join("tessera-data"),
        pg.as_ref().map(|d| d.url.clone()),
    )
    .await;
    // The API with the token; the pages with the token as the session cookie, as after sign-in.
    let api = client(
        &base,
        reqwest::header::AUTHORIZATION,
        format!("Bearer {token}"),
    );
    let browser = client(
        &base,
        reqwest::header::COOKIE,
        format!("tessera_session={token}"),
    );
    let backend = server.ctx.db.dialect().name();
    eprintln!("backend: {backend}; loading {} records …", options.rows);

    let created = api
        .http
        .post(format!("{base}/api/entities"))
        .json(&json!({"name": "bench_company", "label": {"en": "Company", "zh-CN": "公司"},
                "schema": {"properties": {
                    "name": {"x-kind": "text", "x-indexed": true},
                    "level": {"x-kind": "select", "x-indexed": true,
                              "x-options": LEVELS.iter().map(|s| json!({"value": s})).collect::<Vec<_>>()},
                    "city": {"x-kind": "text", "x-searchable": false},
                    "email": {"x-kind": "email"},
                    "phone": {"x-kind": "phone"},
                    "credit": {"x-kind": "money"},
                    "notes": {"x-kind": "long_text", "x-searchable": false}
                }}}))
        .send()
        .await
        .expect("create entity");
    assert!(
        created.status().is_success(),
        "entity: {}",
        created.status()
    );

    // Bulk load through the store: this bypasses the search index, built below.
    let load_started = Instant::now();
    let catalog = server
        .ctx
        .schema
        .catalog(&server.ctx.db)
        .await
        .expect("catalog");
    let companies = catalog.entity("bench_company").expect("company entity");
    let mut columns: Vec<Ident> = ["id", "created_at", "updated_at", "version"]
        .into_iter()
        .map(Ident::fixed)
        .collect();
    columns
        .extend(["name", "level", "city", "email", "phone", "credit", "notes"].map(Ident::fixed));
    let mut rng = Rng(0x2545_F491_4F6C_DD1D);
    let now = SqlValue::Datetime(Utc::now());
    let mut ids = Vec::with_capacity(options.rows);
    let mut loaded = 0;
    while loaded < options.rows {
        let chunk = (options.rows - loaded).min(50_000);
        let mut batch = Vec::with_capacity(chunk);
        for i in loaded..loaded + chunk {
            let id = uuid::Uuid::now_v7().hyphenated().to_string();
            ids.push(id.clone());
            batch.push(vec![
                SqlValue::Text(id),
                now.clone(),
                now.clone(),
                SqlValue::Integer(1),
                SqlValue::Text(company(&mut rng)),
                SqlValue::Text(rng.pick(&LEVELS).to_owned()),
                SqlValue::Text(rng.pick(&CITIES).to_owned()),
                SqlValue::Text(format!("contact{i}@example{}.com", rng.below(1_000))),
                SqlValue::Text(format!("138{:08}", rng.below(100_000_000))),
                SqlValue::Decimal(Decimal::new(rng.below(100_000_000) as i64, 2), 2),
                SqlValue::Text("重点客户，季度回访 key account".to_owned()),
            ]);
        }
        let mut tx = server.ctx.db.begin().await.expect("tx");
        records::insert_batch(&mut tx, &companies.layout, &columns, batch)
            .await
            .expect("companies");
        tx.commit().await.expect("commit");
        loaded += chunk;
    }
    server.ctx.db.analyze().await.expect("analyze");
    let load_time = load_started.elapsed();
    eprintln!(
        "loaded in {:.1} s; building the search index …",
        load_time.as_secs_f64()
    );

    // The search index, built by the same code as `tessera reindex`.
    let index_started = Instant::now();
    let indexed = if options.skip_search {
        Vec::new()
    } else {
        tessera::search::index::rebuild(&server.ctx)
            .await
            .expect("reindex")
    };
    server.ctx.db.analyze().await.expect("analyze");
    let index_time = index_started.elapsed();
    let indexed: u64 = indexed.iter().map(|(_, n)| n).sum();
    eprintln!(
        "indexed {indexed} records in {:.1} s; measuring …",
        index_time.as_secs_f64()
    );

    let clients = options.clients;
    let n = options.requests;
    let ids = Arc::new(ids);
    let first_page = browser.get("/e/bench_company").await;
    let more = more_link(&first_page).expect("a load-more link on the list page");
    let mut results = Vec::new();
    type PathOf = Box<dyn Fn(usize) -> String>;
    let pages: Vec<(&str, PathOf)> = vec![
        (
            "list page (50 rows, 6 columns, money total)",
            Box::new(|_| "/e/bench_company".to_owned()),
        ),
        (
            "list: next 50 rows (load more)",
            Box::new(move |_| more.clone()),
        ),
        ("record page", {
            let ids = ids.clone();
            Box::new(move |i| format!("/e/bench_company/{}", ids[(i * 7_919) % ids.len()]))
        }),
    ];
    for (name, path_of) in &pages {
        results.push(
            measure(name, n, clients, |i| {
                let browser = browser.clone();
                let path = path_of(i);
                async move { browser.timed(&path).await.1 }
            })
            .await,
        );
        eprintln!(
            "{name}: done {}",
            results.last().map(|r| format!("{r:?}")).unwrap_or_default()
        );
    }
    let searches = [
        ("search: 华东 (two characters)", "华东"),
        ("search: 华东贸易有 (five characters)", "华东贸易有"),
    ];
    for (name, q) in searches.into_iter().filter(|_| !options.skip_search) {
        let found = api.get(&format!("/api/search?q={}", enc(q))).await;
        assert!(found.contains("bench_company"), "{q} finds companies");
        let path = format!("/api/search?q={}", enc(q));
        results.push(
            measure(name, n, clients, |_| {
                let api = api.clone();
                let path = path.clone();
                async move { api.timed(&path).await.1 }
            })
            .await,
        );
        eprintln!(
            "{name}: done {}",
            results.last().map(|r| format!("{r:?}")).unwrap_or_default()
        );
    }

    println!(
        "\n### {backend}, {} records (bulk load {:.1} s, search index built in {:.1} s)\n",
        options.rows,
        load_time.as_secs_f64(),
        index_time.as_secs_f64()
    );
    print_table(&results);

    server.stop().await.expect("server stops");
    if let Some(pg) = pg.filter(|_| !options.keep_database) {
        pg.drop_now().await;
    }
}
