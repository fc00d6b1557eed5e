//! Lists: filters (every operator, macro and the lookup path), sorting, keyset pages,
//! projection, expansion, search, counts, facets and tags.

use std::collections::{HashMap, HashSet};

use chrono::{Duration, Utc};
use serde_json::{Value, json};

use crate::common::TestApp;
use crate::on_both_databases;

fn enc(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Titles of the records a filter returns, sorted.
async fn titles(app: &TestApp, filter: &str) -> Vec<String> {
    let response = app
        .get(&format!(
            "/api/records/deal?limit=500&filter={}",
            enc(filter)
        ))
        .await;
    assert_eq!(response.status.as_u16(), 200, "{filter}: {}", response.body);
    let mut titles: Vec<String> = response.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["title"].as_str().unwrap().to_owned())
        .collect();
    titles.sort();
    titles
}

/// Customers in two cities and deals A–F with known values (dates relative to today).
async fn seed(app: &TestApp) -> HashMap<String, String> {
    app.create_entity(&json!({
        "name": "customer", "label": {"en": "Customer", "zh-CN": "客户"},
        "schema": {"properties": {
            "name": {"x-kind": "text"},
            "city": {"x-kind": "text", "x-indexed": true},
            "level": {"x-kind": "select", "x-options": [{"value": "vip"}, {"value": "normal"}]}
        }}
    }))
    .await;
    app.create_entity(&json!({
        "name": "deal", "label": {"en": "Deal", "zh-CN": "商机"},
        "schema": {"properties": {
            "title": {"x-kind": "text"},
            "amount": {"x-kind": "money", "x-indexed": true},
            "quantity": {"x-kind": "integer"},
            "stage": {"x-kind": "select", "x-options": [{"value": "new"}, {"value": "won"}, {"value": "lost"}]},
            "close_date": {"x-kind": "date"},
            "signed_at": {"x-kind": "datetime"},
            "active": {"x-kind": "boolean"},
            "customer": {"x-kind": "lookup", "x-target": "customer"},
            "channels": {"x-kind": "multi_select", "x-options": [{"value": "web"}, {"value": "phone"}, {"value": "mail"}]},
            "partners": {"x-kind": "multi_lookup", "x-target": "customer"},
            "notes": {"x-kind": "long_text"}
        }}
    }))
    .await;
    let sh = app
        .create_record(
            "customer",
            &json!({"name": "华东贸易", "city": "上海", "level": "vip"}),
        )
        .await;
    let bj = app
        .create_record(
            "customer",
            &json!({"name": "Beijing Tech", "city": "北京", "level": "normal"}),
        )
        .await;
    let today = Utc::now().date_naive();
    let day = |n: i64| (today + Duration::days(n)).to_string();
    let now = Utc::now();
    let at = |h: i64| (now + Duration::hours(h)).to_rfc3339();
    let deals = [
        json!({"title": "A", "amount": "100.00", "quantity": 1, "stage": "new", "close_date": day(10), "signed_at": at(-2),
               "active": true, "customer": sh["id"], "channels": ["web"], "notes": "需要报价 quote needed", "tags": ["vip", "hot"]}),
        json!({"title": "B", "amount": "2500.50", "quantity": 5, "stage": "won", "close_date": day(-5), "signed_at": at(-48),
               "active": false, "customer": bj["id"], "channels": ["web", "phone"], "partners": [sh["id"]], "tags": ["vip"]}),
        json!({"title": "C", "amount": "0.10", "quantity": 10, "stage": "lost", "close_date": day(40), "signed_at": at(5),
               "active": true, "customer": sh["id"], "channels": ["mail"], "partners": [sh["id"], bj["id"]]}),
        json!({"title": "D", "amount": "999.99", "stage": "won", "close_date": day(0), "customer": bj["id"], "notes": "Repeat ORDER"}),
        json!({"title": "E", "amount": "1000.00", "quantity": 3}),
        json!({"title": "F 五", "quantity": 0, "active": false, "tags": ["cold"]}),
    ];
    let mut ids = HashMap::new();
    for deal in deals {
        let created = app.create_record("deal", &deal).await;
        ids.insert(
            created["title"].as_str().unwrap().to_owned(),
            created["id"].as_str().unwrap().to_owned(),
        );
    }
    ids.insert("sh".into(), sh["id"].as_str().unwrap().to_owned());
    ids.insert("bj".into(), bj["id"].as_str().unwrap().to_owned());
    ids
}

on_both_databases! {
    async fn every_operator_macro_and_path(app: TestApp) {
        let ids = seed(&app).await;
        let cases: Vec<(String, &[&str])> = vec![
            // comparisons on money (exact), integers, text, selects
            ("amount = 100".into(), &["A"]),
            ("amount = \"2500.5\"".into(), &["B"]),
            ("amount != 100".into(), &["B", "C", "D", "E", "F 五"]),
            ("amount > 999.99".into(), &["B", "E"]),
            ("amount >= 999.99".into(), &["B", "D", "E"]),
            ("amount < 100".into(), &["C"]),
            ("amount <= 100".into(), &["A", "C"]),
            ("amount > 99.995".into(), &["A", "B", "D", "E"]),
            ("amount = 0.105".into(), &[]),
            ("quantity >= 5".into(), &["B", "C"]),
            ("quantity = 0".into(), &["F 五"]),
            ("stage = \"won\"".into(), &["B", "D"]),
            ("stage != \"won\"".into(), &["A", "C", "E", "F 五"]),
            ("title = \"F 五\"".into(), &["F 五"]),
            // contains, case-insensitive, Chinese
            ("notes ~ \"报价\"".into(), &["A"]),
            ("notes ~ \"order\"".into(), &["D"]),
            ("notes !~ \"order\"".into(), &["A", "B", "C", "E", "F 五"]),
            ("title ~ \"五\"".into(), &["F 五"]),
            // in
            ("stage in [\"won\", \"lost\"]".into(), &["B", "C", "D"]),
            ("quantity in [1, 3]".into(), &["A", "E"]),
            ("!(stage in [\"won\", \"lost\"])".into(), &["A", "E", "F 五"]),
            // null
            ("stage = null".into(), &["E", "F 五"]),
            ("customer != null".into(), &["A", "B", "C", "D"]),
            ("partners = null".into(), &["A", "D", "E", "F 五"]),
            ("channels = null".into(), &["D", "E", "F 五"]),
            // booleans
            ("active = true".into(), &["A", "C"]),
            ("active".into(), &["A", "C"]),
            ("!active".into(), &["B", "D", "E", "F 五"]),
            ("active = false".into(), &["B", "F 五"]),
            // and, or, not, parentheses
            ("stage = \"won\" && amount > 1000".into(), &["B"]),
            ("stage = \"won\" || amount < 1".into(), &["B", "C", "D"]),
            ("!(stage = \"won\") && customer != null".into(), &["A", "C"]),
            ("(stage = \"new\" || stage = \"lost\") and quantity > 5".into(), &["C"]),
            ("not stage = \"won\"".into(), &["A", "C", "E", "F 五"]),
            // date macros and arithmetic
            ("close_date = @today".into(), &["D"]),
            ("close_date > @today".into(), &["A", "C"]),
            ("close_date <= @today + 30d".into(), &["A", "B", "D"]),
            ("close_date >= @today - 1w".into(), &["A", "B", "C", "D"]),
            ("close_date < @today + 2mo && close_date > @today + 1d".into(), &["A", "C"]),
            ("signed_at < @now".into(), &["A", "B"]),
            ("signed_at > @now - 3h".into(), &["A", "C"]),
            ("signed_at >= @now - 1d".into(), &["A", "C"]),
            ("created_at <= @now".into(), &["A", "B", "C", "D", "E", "F 五"]),
            // lookups one level deep
            ("customer.city = \"上海\"".into(), &["A", "C"]),
            ("customer.city != \"上海\"".into(), &["B", "D"]),
            ("customer.level = \"vip\" && amount > 50".into(), &["A"]),
            ("customer.city in [\"北京\"]".into(), &["B", "D"]),
            ("customer.name ~ \"tech\"".into(), &["B", "D"]),
            ("!(customer.city = \"上海\")".into(), &["B", "D", "E", "F 五"]),
            (format!("customer = \"{}\"", ids["bj"]), &["B", "D"]),
            // list fields and tags
            ("channels ~ \"web\"".into(), &["A", "B"]),
            ("channels !~ \"web\"".into(), &["C", "D", "E", "F 五"]),
            ("channels in [\"phone\", \"mail\"]".into(), &["B", "C"]),
            (format!("partners ~ \"{}\"", ids["bj"]), &["C"]),
            ("tags ~ \"vip\"".into(), &["A", "B"]),
            ("tags !~ \"vip\"".into(), &["C", "D", "E", "F 五"]),
            ("tags in [\"hot\", \"cold\"]".into(), &["A", "F 五"]),
            ("tags = null".into(), &["C", "D", "E"]),
            // the id and other system fields
            (format!("id = \"{}\"", ids["C"]), &["C"]),
            ("version = 1".into(), &["A", "B", "C", "D", "E", "F 五"]),
            // a value on the left reads the same
            ("100 < amount".into(), &["B", "D", "E"]),
        ];
        for (filter, expected) in &cases {
            let got = titles(&app, filter).await;
            let mut want: Vec<String> = expected.iter().map(|s| (*s).to_owned()).collect();
            want.sort();
            assert_eq!(got, want, "filter {filter}");
        }
    }

    async fn ever_in_reads_a_select_fields_history(app: TestApp) {
        let ids = seed(&app).await;
        // A: new → won → lost. E: no stage → new → none again. 华东贸易 was vip, now normal.
        for stage in ["won", "lost"] {
            app.patch(&format!("/api/records/deal/{}", ids["A"]), &json!({"stage": stage})).await.expect(200);
        }
        for stage in [json!("new"), Value::Null] {
            app.patch(&format!("/api/records/deal/{}", ids["E"]), &json!({"stage": stage})).await.expect(200);
        }
        app.patch(&format!("/api/records/customer/{}", ids["sh"]), &json!({"level": "normal"})).await.expect(200);
        let cases: [(&str, &[&str]); 9] = [
            ("stage ever in [\"won\"]", &["A", "B", "D"]),
            ("stage ever in [\"new\"]", &["A", "E"]),
            ("stage ever in [\"won\"] && stage = \"lost\"", &["A"]),
            ("stage EVER IN [\"lost\", \"new\"]", &["A", "C", "E"]),
            // Never held any of them: records without a stage included, as with other negations.
            ("!(stage ever in [\"won\"])", &["C", "E", "F 五"]),
            ("!(stage ever in [\"won\", \"lost\", \"new\"])", &["F 五"]),
            ("stage ever in [\"won\"] || quantity = 0", &["A", "B", "D", "F 五"]),
            ("customer.level ever in [\"vip\"]", &["A", "C"]),
            ("!(customer.level ever in [\"vip\"])", &["B", "D", "E", "F 五"]),
        ];
        for (filter, expected) in cases {
            let got = titles(&app, filter).await;
            let mut want: Vec<String> = expected.iter().map(|s| (*s).to_owned()).collect();
            want.sort();
            assert_eq!(got, want, "filter {filter}");
            let counted = app.get(&format!("/api/records/deal?limit=1&count=true&filter={}", enc(filter))).await.expect(200);
            assert_eq!(counted.body["total"], expected.len(), "count of {filter}");
        }
        // Only select fields have a past the filter can read.
        for (filter, position, says) in [
            ("amount ever in [1]", 1, "amount is not a select field"),
            ("channels ever in [\"web\"]", 1, "channels is not a select field"),
            ("customer.city ever in [\"上海\"]", 1, "city is not a select field"),
            ("stage ever in [\"maybe\"]", 16, "is not an option of stage"),
            ("stage ever = \"won\"", 12, "expected 'in' after 'ever'"),
        ] {
            let response = app.get(&format!("/api/records/deal?filter={}", enc(filter))).await.expect(400);
            let error = &response.body["errors"][0];
            assert_eq!(error["position"], position, "{filter}: {}", response.body);
            assert!(error["message"].as_str().unwrap().contains(says), "{filter}: {}", response.body);
        }
    }

    async fn malformed_filters_are_400_with_a_position(app: TestApp) {
        seed(&app).await;
        let cases: [(&str, usize); 25] = [
            ("stage = \"won\" stage = \"new\"", 15),
            ("amount >", 9),
            ("amount > > 1", 10),
            ("(stage = \"won\"", 15),
            ("stage = \"won\")", 14),
            ("stage = \"won", 9),
            ("nosuch = 1", 1),
            ("customer.nosuch = 1", 1),
            ("title.city = 1", 1),
            ("amount ~ \"1\"", 1),
            ("amount = \"lots\"", 10),
            ("stage = \"maybe\"", 9),
            ("close_date = \"yesterday\"", 14),
            ("active > true", 1),
            ("amount = (1", 12),
            ("stage in []", 11),
            ("amount = @tomorrow", 10),
            ("close_date > @today + 3q", 24),
            ("amount = price", 10),
            ("amount > 1 && ", 15),
            ("amount # 1", 8),
            ("channels > \"web\"", 1),
            ("stage ever [\"won\"]", 12),
            ("amount ever in [1]", 1),
            ("stage ever in [\"maybe\"]", 16),
        ];
        // Background workers poll the job queue; hold them so that only requests are counted.
        quiet(&app).await;
        // What any request costs before its own work: the session, the roles, the schema epoch.
        let before = app.ctx.db.statements();
        app.get("/api/records/deal?limit=0").await.expect(400);
        let overhead = app.ctx.db.statements() - before;
        for (filter, position) in cases {
            let before = app.ctx.db.statements();
            let response = app
                .get(&format!("/api/records/deal?filter={}", enc(filter)))
                .await
                .expect(400);
            let after = app.ctx.db.statements();
            let error = &response.body["errors"][0];
            assert_eq!(error["field"], "filter", "{filter}: {}", response.body);
            assert_eq!(error["position"], position, "{filter}: {}", response.body);
            assert!(
                response.body["detail"].as_str().unwrap().contains("position"),
                "{}",
                response.body
            );
            // Nothing beyond that overhead ran: the filter never reached the database.
            assert_eq!(after - before, overhead, "{filter}: statements ran");
        }
    }

    async fn sorting_projection_search_count_facets(app: TestApp) {
        seed(&app).await;
        let page = app.get("/api/records/deal?sort=-amount,title&fields=title,amount").await.expect(200);
        let items = page.body["items"].as_array().unwrap();
        let order: Vec<&str> = items.iter().map(|r| r["title"].as_str().unwrap()).collect();
        assert_eq!(order, ["B", "E", "D", "A", "C", "F 五"]);
        let keys: HashSet<&str> = items[0].as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys, HashSet::from(["id", "title", "amount"]));
        let page = app.get("/api/records/deal?sort=stage,-quantity").await.expect(200);
        let order: Vec<&str> = page.body["items"].as_array().unwrap().iter().map(|r| r["title"].as_str().unwrap()).collect();
        // Empty values sort first going up.
        assert_eq!(&order[2..], ["C", "A", "B", "D"]);
        // Search across text fields, Chinese included.
        let found = app.get(&format!("/api/records/deal?q={}", enc("报价"))).await.expect(200);
        assert_eq!(found.body["items"].as_array().unwrap().len(), 1);
        let found = app.get(&format!("/api/records/deal?q={}&count=true", enc("五"))).await.expect(200);
        assert_eq!(found.body["total"], 1);
        // A total only when asked for.
        let page = app.get("/api/records/deal?limit=2").await.expect(200);
        assert!(page.body.get("total").is_none());
        let page = app.get("/api/records/deal?limit=2&count=true&filter=stage%20%3D%20%22won%22").await.expect(200);
        assert_eq!(page.body["total"], 2);
        // Facets over the filtered records.
        let page = app.get("/api/records/deal?facet=tags,stage&limit=1").await.expect(200);
        let tags = &page.body["facets"]["tags"];
        assert_eq!(tags[0], json!({"value": "vip", "count": 2}));
        let stages = page.body["facets"]["stage"].as_array().unwrap();
        assert!(stages.contains(&json!({"value": "won", "count": 2})), "{stages:?}");
        // Bad parameters.
        for bad in ["sort=nosuch", "sort=channels", "sort=title,title", "fields=nosuch", "expand=title", "facet=amount", "cursor=abc", "trashed=maybe"] {
            app.get(&format!("/api/records/deal?{bad}")).await.expect(400);
        }
    }

    async fn expansion_is_one_query_per_relation(app: TestApp) {
        let ids = seed(&app).await;
        let page = app.get("/api/records/deal?expand=customer,partners&sort=title").await.expect(200);
        let items = page.body["items"].as_array().unwrap();
        assert_eq!(items[0]["expand"]["customer"]["city"], "上海");
        assert_eq!(items[2]["expand"]["partners"].as_array().unwrap().len(), 2);
        assert_eq!(items[4]["expand"]["customer"], Value::Null);
        // The cost of a page does not grow with its size.
        quiet(&app).await;
        let cost = |limit: usize| {
            let app = app.clone();
            async move {
                let before = app.ctx.db.statements();
                app.get(&format!("/api/records/deal?expand=customer,partners&sort=title&limit={limit}"))
                    .await
                    .expect(200);
                app.ctx.db.statements() - before
            }
        };
        assert_eq!(cost(3).await, cost(6).await);
        // A lookup to a trashed record is shown as such.
        app.delete(&format!("/api/records/customer/{}", ids["sh"])).await.expect(204);
        let one = app.get(&format!("/api/records/deal/{}?expand=customer", ids["A"])).await.expect(200);
        assert_eq!(one.body["customer"], ids["sh"].as_str());
        assert!(one.body["expand"]["customer"]["deleted_at"].is_string(), "{}", one.body);
        // … and it no longer matches lookups.
        assert_eq!(titles(&app, "customer.city = \"上海\"").await, Vec::<String>::new());
    }

    async fn tags_are_shared_and_listed(app: TestApp) {
        seed(&app).await;
        app.post("/api/tags", &json!({"name": "vip", "color": "#c00"})).await.expect(201);
        app.post("/api/tags", &json!({"name": "key account", "color": "#2e7d32"})).await.expect(201);
        app.post("/api/tags", &json!({"name": "", "color": "red"})).await.expect(422);
        let tags = app.get("/api/tags").await.expect(200);
        let vip = tags.body["items"].as_array().unwrap().iter().find(|t| t["name"] == "vip").unwrap().clone();
        assert_eq!(vip["color"], "#c00");
        assert_eq!(vip["records"], 2);
        // Tags on another entity share the names.
        let customer = app.create_record("customer", &json!({"name": "x", "tags": ["vip", "key account"]})).await;
        assert_eq!(customer["tags"], json!(["key account", "vip"]));
        let found = app.get(&format!("/api/records/customer?filter={}", enc("tags ~ \"vip\""))).await.expect(200);
        assert_eq!(found.body["items"].as_array().unwrap().len(), 1);
        app.post("/api/records/customer", &json!({"tags": "vip"})).await.expect(422);
    }
}

/// Paging through 10,000 records by cursor while 100 inserts land in between pages returns
/// every record that existed before exactly once.
mod paging_under_concurrent_inserts {
    use super::*;
    use futures::StreamExt;

    async fn scenario(app: TestApp) {
        app.create_entity(&json!({
            "name": "item", "label": {"en": "Item", "zh-CN": "条目"},
            "schema": {"properties": {"code": {"x-kind": "text", "x-indexed": true}, "n": {"x-kind": "integer"}}}
        }))
        .await;
        let existing: HashSet<String> = futures::stream::iter(0..10_000)
            .map(|i| {
                let app = app.clone();
                async move {
                    app.create_record(
                        "item",
                        &json!({"code": format!("c{:05}", (i * 7919) % 10_000), "n": i}),
                    )
                    .await["id"]
                        .as_str()
                        .unwrap()
                        .to_owned()
                }
            })
            .buffer_unordered(16)
            .collect()
            .await;
        assert_eq!(existing.len(), 10_000);

        let writer = {
            let app = app.clone();
            tokio::spawn(async move {
                for i in 0..100 {
                    // Codes that sort between and before existing ones.
                    app.create_record(
                        "item",
                        &json!({"code": format!("c{:05}x", i * 97), "n": -1}),
                    )
                    .await;
                    tokio::time::sleep(std::time::Duration::from_millis(2)).await;
                }
            })
        };
        let mut seen: HashMap<String, usize> = HashMap::new();
        let mut cursor: Option<String> = None;
        let mut pages = 0;
        loop {
            let mut path = "/api/records/item?sort=code&limit=100&fields=code".to_owned();
            if let Some(c) = &cursor {
                path.push_str(&format!("&cursor={c}"));
            }
            let page = app.get(&path).await.expect(200);
            for item in page.body["items"].as_array().unwrap() {
                *seen
                    .entry(item["id"].as_str().unwrap().to_owned())
                    .or_default() += 1;
            }
            pages += 1;
            match page.body["next_cursor"].as_str() {
                Some(next) => cursor = Some(next.to_owned()),
                None => break,
            }
        }
        writer.await.unwrap();
        assert!(pages >= 100);
        for id in &existing {
            assert_eq!(
                seen.get(id),
                Some(&1),
                "record {id} seen {:?} times",
                seen.get(id)
            );
        }
        assert!(seen.values().all(|n| *n == 1), "no record appears twice");

        // Descending, and by the default order, the same holds.
        for sort in ["-code", "-n,code", ""] {
            let mut all = HashSet::new();
            let mut cursor: Option<String> = None;
            loop {
                let mut path = format!("/api/records/item?limit=500&fields=n&sort={sort}");
                if let Some(c) = &cursor {
                    path.push_str(&format!("&cursor={c}"));
                }
                let page = app.get(&path).await.expect(200);
                for item in page.body["items"].as_array().unwrap() {
                    assert!(
                        all.insert(item["id"].as_str().unwrap().to_owned()),
                        "sort {sort}: repeated"
                    );
                }
                match page.body["next_cursor"].as_str() {
                    Some(next) => cursor = Some(next.to_owned()),
                    None => break,
                }
            }
            assert_eq!(all.len(), 10_100, "sort {sort}");
        }
        // A cursor is bound to its sort.
        let first = app
            .get("/api/records/item?sort=code&limit=5")
            .await
            .expect(200);
        let cursor = first.body["next_cursor"].as_str().unwrap();
        app.get(&format!("/api/records/item?sort=-code&cursor={cursor}"))
            .await
            .expect(400);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn sqlite() {
        crate::common::run(crate::common::Backend::Sqlite, scenario).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn postgres() {
        crate::common::run(crate::common::Backend::Postgres, scenario).await;
    }
}

/// Holds the server's job workers and scheduler (and lets a poll in flight finish), so that
/// the statement counter counts only the requests under test.
async fn quiet(app: &TestApp) {
    app.ctx.pause_background(true);
    app.ctx.background_settled().await;
}
