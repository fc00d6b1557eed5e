//! Reports: date buckets in the settings' time zone (months in Shanghai, ISO weeks across a
//! year end), exact money sums over 100,000 records, the caller's scope and hidden fields,
//! top N with "other", the previous period, running totals, gaps, and the funnel (whose
//! drill-down lists hold exactly the records it counts).

use std::collections::HashMap;
use std::str::FromStr;

use rust_decimal::Decimal;
use serde_json::{Value, json};
use tessera::store::{Ident, SqlValue};

use crate::common::{TestApp, id};
use crate::on_both_databases;

const PASSWORD: &str = "password 1234";

/// A bucket, a range, and the count expected in each bucket.
type BucketCase = (
    &'static str,
    &'static str,
    &'static str,
    &'static [(&'static str, i64)],
);

/// Customers and orders: money, a select with labels in two languages, a date, a datetime,
/// a lookup, a text and a yes/no field, and a margin reps may not see.
async fn schema(app: &TestApp) {
    app.create_entity(&json!({
        "name": "customer", "label": {"en": "Customer", "zh-CN": "客户"},
        "schema": {"properties": {"name": {"x-kind": "text"}}}
    }))
    .await;
    app.create_entity(&json!({
        "name": "order", "label": {"en": "Order", "zh-CN": "订单"},
        "schema": {"properties": {
            "title": {"x-kind": "text"},
            "amount": {"x-kind": "money", "x-label": {"en": "Amount", "zh-CN": "金额"}},
            "margin": {"x-kind": "money"},
            "quantity": {"x-kind": "integer"},
            "status": {"x-kind": "select", "x-label": {"en": "Status", "zh-CN": "状态"}, "x-options": [
                {"value": "draft", "label": {"en": "Draft", "zh-CN": "草稿"}, "color": "#999999"},
                {"value": "open", "label": {"en": "Open", "zh-CN": "进行中"}, "color": "#3b82f6"},
                {"value": "won", "label": {"en": "Won", "zh-CN": "赢单"}, "color": "#22c55e"},
                {"value": "lost", "label": {"en": "Lost", "zh-CN": "输单"}, "color": "#ef4444"}
            ]},
            "signed_at": {"x-kind": "datetime"},
            "signed_on": {"x-kind": "date"},
            "region": {"x-kind": "text"},
            "paid": {"x-kind": "boolean"},
            "customer": {"x-kind": "lookup", "x-target": "customer"}
        }}
    }))
    .await;
}

async fn report(app: &TestApp, query: Value) -> Value {
    let response = app.post("/api/reports/query", &query).await;
    assert_eq!(response.status.as_u16(), 200, "{query}: {}", response.body);
    response.body
}

/// `key → count` of a one-group-by report.
fn counts(report: &Value) -> HashMap<String, i64> {
    report["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["keys"][0].as_str().unwrap_or("null").to_owned(),
                r["values"]["count"].as_i64().unwrap(),
            )
        })
        .collect()
}

/// A query parameter, percent-encoded.
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

fn keys(report: &Value) -> Vec<String> {
    report["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["keys"][0].as_str().unwrap_or("null").to_owned())
        .collect()
}

on_both_databases! {
    async fn buckets_follow_the_settings_time_zone(app: TestApp) {
        schema(&app).await;
        app.patch("/api/settings", &json!({"time_zone": "Asia/Shanghai"})).await.expect(200);
        // UTC instants and where Shanghai (UTC+8) puts them.
        let instants = [
            "2025-12-31T15:59:59Z", // 2025-12-31 23:59 — December, 2025
            "2025-12-31T16:00:00Z", // 2026-01-01 00:00 — January, 2026
            "2026-01-31T15:59:59Z", // 2026-01-31 23:59 — January
            "2026-01-31T16:30:00Z", // 2026-02-01 00:30 — February, though UTC says January
            "2026-02-10T03:00:00Z", // February
            "2026-03-31T16:30:00Z", // 2026-04-01 00:30 — April: outside a range ending in March
        ];
        for (i, at) in instants.iter().enumerate() {
            app.create_record("order", &json!({"title": format!("o{i}"), "signed_at": at})).await;
        }
        let cases: [BucketCase; 5] = [
            ("month", "2025-12-01", "2026-03-31",
             &[("2025-12", 1), ("2026-01", 2), ("2026-02", 2), ("2026-03", 0)]),
            ("day", "2026-01-31", "2026-02-01", &[("2026-01-31", 1), ("2026-02-01", 1)]),
            ("quarter", "2025-10-01", "2026-06-30", &[("2025-Q4", 1), ("2026-Q1", 4), ("2026-Q2", 1)]),
            ("year", "2025-01-01", "2026-12-31", &[("2025", 1), ("2026", 5)]),
            ("week", "2025-12-29", "2026-01-04", &[("2026-W01", 2)]),
        ];
        for (bucket, from, to, expected) in cases {
            let r = report(&app, json!({
                "entity": "order",
                "range": {"field": "signed_at", "from": from, "to": to},
                "group_by": [{"field": "signed_at", "bucket": bucket}],
                "measures": [{"fn": "count"}]
            })).await;
            let want: HashMap<String, i64> = expected.iter().map(|(k, n)| (k.to_string(), *n)).collect();
            assert_eq!(counts(&r), want, "{bucket} {from}..{to}: {r}");
            // Buckets come in time order, gaps filled (March has no order but is there).
            let mut sorted = keys(&r);
            sorted.sort();
            assert_eq!(keys(&r), sorted, "{bucket}");
        }
        // The same instants in UTC, for contrast: the 16:30 order is January's there.
        app.patch("/api/settings", &json!({"time_zone": "UTC"})).await.expect(200);
        let r = report(&app, json!({
            "entity": "order",
            "range": {"field": "signed_at", "from": "2026-01-01", "to": "2026-02-28"},
            "group_by": [{"field": "signed_at", "bucket": "month"}]
        })).await;
        assert_eq!(counts(&r), HashMap::from([("2026-01".to_string(), 2), ("2026-02".to_string(), 1)]));
    }

    async fn iso_weeks_cross_the_year_end(app: TestApp) {
        schema(&app).await;
        let cases = [
            ("2025-12-28", "2025-W52"), // a Sunday
            ("2025-12-29", "2026-W01"), // Monday of the week holding 1 January
            ("2026-01-01", "2026-W01"),
            ("2026-12-31", "2026-W53"), // 2026 has 53 ISO weeks
            ("2027-01-03", "2026-W53"),
            ("2027-01-04", "2027-W01"),
        ];
        for (day, _) in cases {
            app.create_record("order", &json!({"title": day, "signed_on": day})).await;
        }
        let r = report(&app, json!({
            "entity": "order",
            "group_by": [{"field": "signed_on", "bucket": "week"}]
        })).await;
        let mut want: HashMap<String, i64> = HashMap::new();
        for (_, week) in cases {
            *want.entry(week.to_string()).or_default() += 1;
        }
        assert_eq!(counts(&r), want, "{r}");
        // Drilling into a week lists exactly its records.
        let w53 = r["rows"].as_array().unwrap().iter().find(|row| row["keys"][0] == "2026-W53").unwrap();
        let filter = w53["filter"].as_str().unwrap();
        let listed = app.get(&format!("/api/records/order?count=true&filter={}", urlencode(filter))).await.expect(200);
        assert_eq!(listed.body["total"], 2, "{filter}");
    }

    async fn money_sums_are_exact_over_100000_records(app: TestApp) {
        schema(&app).await;
        let catalog = app.ctx.schema.catalog(&app.ctx.db).await.unwrap();
        let order = catalog.entity("order").unwrap();
        let statuses = ["draft", "open", "won", "lost"];
        let mut expected: HashMap<&str, (i64, Decimal)> = HashMap::new();
        // Per month and status: count, sum, min and max (SQLite groups these by day first).
        let mut monthly: HashMap<(String, &str), (i64, Decimal, Decimal, Decimal)> = HashMap::new();
        let first_day = chrono::NaiveDate::from_ymd_opt(2025, 1, 1).unwrap();
        let mut total = Decimal::ZERO;
        let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
        let columns: Vec<Ident> = ["id", "created_at", "updated_at", "version", "amount", "status", "signed_on"]
            .into_iter()
            .map(Ident::fixed)
            .collect();
        let now = SqlValue::Datetime(chrono::Utc::now());
        let mut tx = app.ctx.db.begin().await.unwrap();
        let mut batch = Vec::new();
        for _ in 0..100_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            // Up to 1,000,000.00 with every cent possible.
            let cents = (seed % 100_000_000) as i64;
            let amount = Decimal::new(cents, 2);
            let status = statuses[(seed >> 40) as usize % 4];
            let e = expected.entry(status).or_insert((0, Decimal::ZERO));
            e.0 += 1;
            e.1 += amount;
            total += amount;
            let day = first_day + chrono::Duration::days((seed >> 20) as i64 % 365);
            let m = monthly
                .entry((day.format("%Y-%m").to_string(), status))
                .or_insert((0, Decimal::ZERO, amount, amount));
            m.0 += 1;
            m.1 += amount;
            m.2 = m.2.min(amount);
            m.3 = m.3.max(amount);
            batch.push(vec![
                SqlValue::Text(uuid::Uuid::now_v7().to_string()),
                now.clone(),
                now.clone(),
                SqlValue::Integer(1),
                SqlValue::Decimal(amount, 2),
                SqlValue::Text(status.into()),
                SqlValue::Date(day),
            ]);
            if batch.len() == 10_000 {
                tessera::store::records::insert_batch(&mut tx, &order.layout, &columns, std::mem::take(&mut batch)).await.unwrap();
            }
        }
        tx.commit().await.unwrap();
        let r = report(&app, json!({
            "entity": "order",
            "group_by": [{"field": "status"}],
            "measures": [{"fn": "count"}, {"fn": "sum", "field": "amount"}, {"fn": "avg", "field": "amount"},
                         {"fn": "min", "field": "amount"}, {"fn": "max", "field": "amount"}]
        })).await;
        assert_eq!(keys(&r), statuses, "option order");
        for row in r["rows"].as_array().unwrap() {
            let status = row["keys"][0].as_str().unwrap();
            let (n, sum) = expected[status];
            assert_eq!(row["values"]["count"], n, "{status}");
            assert_eq!(row["values"]["sum_amount"], json!(format!("{sum:.2}")), "{status}");
            let avg = (sum / Decimal::from(n)).round_dp_with_strategy(2, rust_decimal::RoundingStrategy::MidpointAwayFromZero);
            assert_eq!(row["values"]["avg_amount"], json!(format!("{avg:.2}")), "{status}");
            assert!(row["values"]["min_amount"].is_string() && row["values"]["max_amount"].is_string());
        }
        assert_eq!(r["totals"]["sum_amount"], json!(format!("{total:.2}")));
        assert_eq!(r["totals"]["count"], 100_000);
        assert_eq!(r["columns"][2]["key"], "sum_amount");
        let by_month = report(&app, json!({
            "entity": "order",
            "group_by": [{"field": "signed_on", "bucket": "month"}, {"field": "status"}],
            "measures": [{"fn": "count"}, {"fn": "sum", "field": "amount"},
                         {"fn": "min", "field": "amount"}, {"fn": "max", "field": "amount"}]
        })).await;
        let rows = by_month["rows"].as_array().unwrap();
        assert_eq!(rows.len(), monthly.len(), "{by_month}");
        for row in rows {
            let month = row["keys"][0].as_str().unwrap().to_owned();
            let status = row["keys"][1].as_str().unwrap();
            let (n, sum, min, max) = monthly[&(month.clone(), status)];
            let values = &row["values"];
            assert_eq!(values["count"], n, "{month} {status}");
            assert_eq!(values["sum_amount"], json!(format!("{sum:.2}")), "{month} {status}");
            assert_eq!(values["min_amount"], json!(format!("{min:.2}")), "{month} {status}");
            assert_eq!(values["max_amount"], json!(format!("{max:.2}")), "{month} {status}");
        }
        // No group-by: one row, the whole.
        let whole = report(&app, json!({"entity": "order", "measures": [{"fn": "sum", "field": "amount"}]})).await;
        assert_eq!(whole["totals"]["sum_amount"], json!(format!("{total:.2}")));
        assert_eq!(Decimal::from_str(whole["rows"][0]["values"]["sum_amount"].as_str().unwrap()).unwrap(), total);
    }

    async fn reps_report_on_their_scope_and_never_on_hidden_fields(app: TestApp) {
        schema(&app).await;
        app.post("/api/roles", &json!({"name": "rep", "permissions": {"entities": {
            "order": {"create": "own", "read": "own", "update": "own", "delete": "own",
                      "fields": {"margin": "hidden"}},
            "customer": {"read": "all"}
        }}})).await.expect(201);
        let rep = app.post("/api/users", &json!({"email": "rep@tessera.test", "password": PASSWORD,
                                                 "display_name": "张三", "language": "en", "roles": ["rep"]})).await.expect(201).body;
        let rep_id = id(&rep);
        let acme = app.create_record("customer", &json!({"name": "华东贸易"})).await;
        for (i, owner) in [Some(&rep_id), Some(&rep_id), None, None, None].into_iter().enumerate() {
            let mut record = json!({"title": format!("o{i}"), "amount": "10.00", "margin": "1.00",
                                    "status": "won", "customer": acme["id"]});
            if let Some(owner) = owner {
                record["owner"] = json!(owner);
            }
            app.create_record("order", &record).await;
        }
        let rep_app = app.login("rep@tessera.test", PASSWORD).await;
        let query = json!({"entity": "order", "group_by": [{"field": "customer"}],
                           "measures": [{"fn": "count"}, {"fn": "sum", "field": "amount"}]});
        let all = report(&app, query.clone()).await;
        assert_eq!(all["totals"]["count"], 5);
        let mine = report(&rep_app, query).await;
        assert_eq!(mine["totals"]["count"], 2, "{mine}");
        assert_eq!(mine["rows"][0]["values"]["sum_amount"], "20.00");
        assert_eq!(mine["rows"][0]["labels"][0], "华东贸易", "the looked-up record's title");
        let by_owner = report(&rep_app, json!({"entity": "order", "group_by": [{"field": "owner"}]})).await;
        assert_eq!(by_owner["rows"][0]["labels"][0], "张三", "the user's name");
        // A hidden field anywhere in the query is a 400.
        let hidden = [
            json!({"entity": "order", "group_by": [{"field": "margin"}]}),
            json!({"entity": "order", "measures": [{"fn": "sum", "field": "margin"}]}),
            json!({"entity": "order", "measures": [{"fn": "count_distinct", "field": "margin"}]}),
            json!({"entity": "order", "filter": "margin > 0"}),
            json!({"entity": "order", "range": {"field": "margin", "relative": "this_year"}}),
            json!({"kind": "funnel", "entity": "order", "stage": "status", "amount": "margin"}),
        ];
        for query in hidden {
            let response = rep_app.post("/api/reports/query", &query).await;
            assert_eq!(response.status.as_u16(), 400, "{query}: {}", response.body);
            assert_eq!(response.header("content-type"), Some("application/problem+json"), "{query}");
            assert!(response.body["detail"].as_str().unwrap().contains("has no field"), "{}", response.body);
            // The administrator sees the field (money is not groupable, but that is another matter).
            let admin = app.post("/api/reports/query", &query).await;
            assert!(!admin.body["detail"].as_str().unwrap_or_default().contains("has no field"), "{}", admin.body);
        }
        // Labels in the caller's language.
        let en = report(&rep_app, json!({"entity": "order", "group_by": [{"field": "status"}]})).await;
        assert_eq!(en["rows"][0]["labels"][0], "Won");
        assert_eq!(en["columns"][0]["label"], "Status");
        app.patch(&format!("/api/users/{}", rep_id), &json!({"language": "zh-CN"})).await.expect(200);
        let rep_zh = app.login("rep@tessera.test", PASSWORD).await;
        let r = report(&rep_zh, json!({"entity": "order", "group_by": [{"field": "status"}]})).await;
        assert_eq!(r["rows"][0]["labels"][0], "赢单");
        assert_eq!(r["columns"][0]["label"], "状态");
    }

    async fn top_n_other_previous_period_and_running_totals(app: TestApp) {
        schema(&app).await;
        let orders = [
            ("华东", "2026-01-10", "100.00"), ("华东", "2026-02-03", "300.00"), ("华东", "2026-02-20", "50.50"),
            ("华北", "2026-02-11", "200.00"), ("华南", "2026-02-12", "20.00"), ("西南", "2026-02-13", "10.25"),
            ("华北", "2025-02-11", "70.00"), ("华东", "2025-04-11", "80.00"),
        ];
        for (region, day, amount) in orders {
            app.create_record("order", &json!({"title": day, "region": region, "signed_on": day, "amount": amount})).await;
        }
        // Top 2 regions in February by amount, the rest as "other".
        let r = report(&app, json!({
            "entity": "order",
            "range": {"field": "signed_on", "from": "2026-02-01", "to": "2026-02-28"},
            "group_by": [{"field": "region"}],
            "measures": [{"fn": "count"}, {"fn": "sum", "field": "amount"}],
            "sort": "-sum_amount", "limit": 2, "compare": "previous_period"
        })).await;
        let rows = r["rows"].as_array().unwrap();
        let summary: Vec<(Value, Value, Value)> = rows.iter()
            .map(|row| (row["labels"][0].clone(), row["values"]["sum_amount"].clone(), row["previous"]["sum_amount"].clone()))
            .collect();
        assert_eq!(summary, vec![
            (json!("华东"), json!("350.50"), json!("100.00")),
            (json!("华北"), json!("200.00"), json!("0.00")),
            (json!("其他"), json!("30.25"), json!("0.00")),
        ], "{r}");
        assert_eq!(rows[2]["other"], true);
        assert_eq!(r["totals"]["sum_amount"], "580.75");
        assert_eq!(r["previous_totals"]["sum_amount"], "100.00");
        assert_eq!(r["previous_range"], json!({"from": "2026-01-01", "to": "2026-01-31"}));
        // "Other" drills down to exactly its records.
        let filter = rows[2]["filter"].as_str().unwrap();
        let listed = app.get(&format!("/api/records/order?count=true&filter={}", urlencode(filter))).await.expect(200);
        assert_eq!(listed.body["total"], 2, "{filter}");

        // A year by month against the year before: months line up, gaps filled, running totals.
        let r = report(&app, json!({
            "entity": "order",
            "range": {"field": "signed_on", "from": "2026-01-01", "to": "2026-12-31"},
            "group_by": [{"field": "signed_on", "bucket": "month"}],
            "measures": [{"fn": "sum", "field": "amount"}],
            "compare": "previous_period", "cumulative": true
        })).await;
        let rows = r["rows"].as_array().unwrap();
        assert_eq!(rows.len(), 12, "every month, gaps filled: {r}");
        let month = |m: &str| rows.iter().find(|row| row["keys"][0] == m).unwrap();
        assert_eq!(month("2026-02")["previous"]["sum_amount"], "70.00");
        assert_eq!(month("2026-04")["previous"]["sum_amount"], "80.00");
        assert_eq!(month("2026-04")["values"]["sum_amount"], "0.00");
        assert_eq!(month("2026-01")["cumulative"]["sum_amount"], "100.00");
        assert_eq!(month("2026-02")["cumulative"]["sum_amount"], "680.75");
        assert_eq!(month("2026-12")["cumulative"]["sum_amount"], "680.75");
        // Without filling, only months with orders.
        let r = report(&app, json!({
            "entity": "order",
            "range": {"field": "signed_on", "from": "2026-01-01", "to": "2026-12-31"},
            "group_by": [{"field": "signed_on", "bucket": "month"}],
            "fill_gaps": false
        })).await;
        assert_eq!(keys(&r), ["2026-01", "2026-02"]);
        // Days, quarters and years of a date field, each on both databases alike.
        for (bucket, expected) in [("year", vec!["2025", "2026"]), ("quarter", vec!["2025-Q1", "2025-Q2", "2026-Q1"])] {
            let r = report(&app, json!({
                "entity": "order", "group_by": [{"field": "signed_on", "bucket": bucket}], "fill_gaps": false
            })).await;
            assert_eq!(keys(&r), expected, "{bucket}: {r}");
        }
        let r = report(&app, json!({
            "entity": "order",
            "range": {"field": "signed_on", "from": "2026-02-01", "to": "2026-02-28"},
            "group_by": [{"field": "signed_on", "bucket": "day"}], "fill_gaps": false
        })).await;
        assert!(keys(&r).iter().all(|k| k.len() == 10 && k.starts_with("2026-02-")), "{r}");
        // Two group-bys: month × region.
        let r = report(&app, json!({
            "entity": "order",
            "range": {"field": "signed_on", "from": "2026-01-01", "to": "2026-02-28"},
            "group_by": [{"field": "signed_on", "bucket": "month"}, {"field": "region"}],
            "fill_gaps": false
        })).await;
        assert_eq!(r["totals"]["count"], 6);
        assert_eq!(r["rows"].as_array().unwrap().len(), 5, "{r}");
    }

    async fn funnel_counts_records_that_moved_on(app: TestApp) {
        schema(&app).await;
        // Won deals passed open; lost ones are not a funnel stage here.
        let paths: [&[&str]; 5] = [
            &["draft"],
            &["draft", "open"],
            &["draft", "open", "won"],
            &["open", "won"],
            &["draft", "open", "lost"],
        ];
        for (i, path) in paths.iter().enumerate() {
            let created = app.create_record("order", &json!({"title": format!("d{i}"), "status": path[0], "amount": "100.00"})).await;
            for stage in &path[1..] {
                app.patch(&format!("/api/records/order/{}", id(&created)), &json!({"status": stage})).await.expect(200);
            }
        }
        let r = report(&app, json!({"kind": "funnel", "entity": "order", "stage": "status",
                                    "stages": ["draft", "open", "won"], "amount": "amount"})).await;
        let rows = r["rows"].as_array().unwrap();
        let got: Vec<(Value, Value, Value)> = rows.iter()
            .map(|row| (row["keys"][0].clone(), row["values"]["count"].clone(), row["values"]["conversion"].clone()))
            .collect();
        assert_eq!(got, vec![
            (json!("draft"), json!(5), Value::Null),
            (json!("open"), json!(4), json!("0.8000")),
            (json!("won"), json!(2), json!("0.5000")),
        ], "{r}");
        assert_eq!(rows[2]["values"]["sum_amount"], "200.00");
        assert_eq!(rows[1]["labels"][0], "进行中", "the administrator reads Chinese");
    }

    async fn funnel_drill_downs_list_exactly_the_records_counted(app: TestApp) {
        schema(&app).await;
        // Paths through the stages: forward, forward then lost, back again, skipping, none.
        let paths: [(&str, &[&str]); 14] = [
            ("draft", &["draft"]),
            ("open", &["draft", "open"]),
            ("won", &["draft", "open", "won"]),
            ("skipped draft", &["open", "won"]),
            ("lost at open", &["draft", "open", "lost"]),
            ("lost early", &["open", "lost"]),
            ("back to draft", &["draft", "open", "draft"]),
            ("reopened", &["open", "won", "open"]),
            ("won at once", &["won"]),
            ("lost at once", &["lost"]),
            ("no stage", &[]),
            ("stage cleared", &["draft", "open", "-"]),
            ("other region", &["draft", "open", "won"]),
            ("out of range", &["draft", "open", "lost"]),
        ];
        let mut reached: HashMap<String, Vec<&str>> = HashMap::new();
        let mut titles: HashMap<String, &str> = HashMap::new();
        for (title, path) in paths {
            let region = if title == "other region" { "华北" } else { "华东" };
            let day = if title == "out of range" { "2025-06-01" } else { "2026-02-01" };
            let mut record = json!({"title": title, "region": region, "signed_on": day});
            if let Some(first) = path.first() {
                record["status"] = json!(first);
            }
            let created = app.create_record("order", &record).await;
            for stage in path.iter().skip(1) {
                let value = if *stage == "-" { Value::Null } else { json!(stage) };
                app.patch(&format!("/api/records/order/{}", id(&created)), &json!({"status": value})).await.expect(200);
            }
            reached.insert(id(&created), path.to_vec());
            titles.insert(id(&created), title);
        }
        // A trashed record that was won counts nowhere.
        let trashed = app.create_record("order", &json!({"title": "trashed", "status": "open", "region": "华东", "signed_on": "2026-02-01"})).await;
        app.patch(&format!("/api/records/order/{}", id(&trashed)), &json!({"status": "won"})).await.expect(200);
        app.delete(&format!("/api/records/order/{}", id(&trashed))).await.expect(204);
        let in_scope = |record: &str, spec: &Value| {
            let title = titles[record];
            spec.get("filter").is_none_or(|_| title != "other region")
                && spec.get("range").is_none_or(|_| title != "out of range")
        };
        let range = json!({"field": "signed_on", "from": "2026-01-01", "to": "2026-03-31"});
        let specs = [
            json!({"kind": "funnel", "entity": "order", "stage": "status", "stages": ["draft", "open", "won"]}),
            // Every option in option order: lost comes after won, so a lost deal "reached" it.
            json!({"kind": "funnel", "entity": "order", "stage": "status",
                   "filter": "region = \"华东\"", "range": range}),
            json!({"kind": "funnel", "entity": "order", "stage": "status", "stages": ["open", "won"], "range": range}),
        ];
        for spec in specs {
            let r = report(&app, spec.clone()).await;
            let stages: Vec<String> = r["rows"].as_array().unwrap().iter()
                .map(|row| row["keys"][0].as_str().unwrap().to_owned()).collect();
            for (i, row) in r["rows"].as_array().unwrap().iter().enumerate() {
                // The records the funnel should count here: their furthest stage is this or later.
                let mut expected: Vec<&str> = reached.iter()
                    .filter(|(record, _)| in_scope(record, &spec))
                    .filter(|(_, path)| path.iter().any(|s| stages[i..].iter().any(|l| l == s)))
                    .map(|(record, _)| titles[record.as_str()])
                    .collect();
                expected.sort();
                let count = row["values"]["count"].as_i64().unwrap();
                assert_eq!(count, expected.len() as i64, "{spec} {}: {expected:?}", stages[i]);
                let filter = row["filter"].as_str().unwrap();
                assert!(filter.contains("ever in"), "{filter}");
                let listed = app.get(&format!("/api/records/order?count=true&limit=500&fields=title&filter={}", enc(filter)))
                    .await.expect(200).body;
                assert_eq!(listed["total"], count, "{filter}");
                let mut got: Vec<&str> = listed["items"].as_array().unwrap().iter()
                    .map(|item| item["title"].as_str().unwrap()).collect();
                got.sort();
                assert_eq!(got, expected, "{filter}");
            }
        }
        // A caller who may not see the stage cannot filter on its past either.
        app.post("/api/roles", &json!({"name": "auditor", "permissions": {"entities": {
            "order": {"read": "all", "fields": {"status": "hidden"}}
        }}})).await.expect(201);
        app.post("/api/users", &json!({"email": "auditor@tessera.test", "password": PASSWORD, "roles": ["auditor"]})).await.expect(201);
        let auditor = app.login("auditor@tessera.test", PASSWORD).await;
        for filter in ["status = \"won\"", "status ever in [\"won\"]"] {
            let response = auditor.get(&format!("/api/records/order?filter={}", enc(filter))).await.expect(400);
            assert_eq!(response.body["errors"][0]["position"], 1, "{filter}: {}", response.body);
            assert!(response.body["detail"].as_str().unwrap().contains("has no field 'status'"), "{}", response.body);
        }
    }

    async fn every_chart_kind_draws_its_labels_without_overlap(app: TestApp) {
        schema(&app).await;
        let rows = [
            ("进行中", "open", "华东大区", "2026-01-05", "120.00"), ("赢单", "won", "华北", "2026-01-20", "80.50"),
            ("赢单", "won", "华东大区", "2026-02-03", "300.00"), ("草稿", "draft", "Southwest Region", "2026-03-09", "10.00"),
        ];
        for (title, status, region, day, amount) in rows {
            app.create_record("order", &json!({"title": title, "status": status, "region": region, "signed_on": day, "amount": amount})).await;
        }
        let range = json!({"field": "signed_on", "from": "2026-01-01", "to": "2026-03-31"});
        let cards = [
            ("number", json!({"entity": "order", "range": range, "compare": "previous_period",
                              "measures": [{"fn": "sum", "field": "amount"}]}), vec!["510.50"]),
            ("bar", json!({"entity": "order", "group_by": [{"field": "status"}]}), vec!["草稿", "进行中", "赢单"]),
            ("stacked_bar", json!({"entity": "order", "range": range,
                                   "group_by": [{"field": "signed_on", "bucket": "month"}, {"field": "status"}]}),
             vec!["2026-01", "2026-03", "赢单"]),
            ("line", json!({"entity": "order", "range": range, "group_by": [{"field": "signed_on", "bucket": "month"}],
                            "measures": [{"fn": "sum", "field": "amount"}]}), vec!["2026-01", "2026-02"]),
            ("area", json!({"entity": "order", "range": range, "group_by": [{"field": "signed_on", "bucket": "week"}]}),
             vec!["2026-W01"]),
            ("pie", json!({"entity": "order", "group_by": [{"field": "region"}]}), vec!["华东大区", "Southwest Region"]),
            ("donut", json!({"entity": "order", "group_by": [{"field": "status"}]}), vec!["赢单"]),
            ("funnel", json!({"kind": "funnel", "entity": "order", "stage": "status", "stages": ["draft", "open", "won"]}),
             vec!["草稿", "进行中", "赢单"]),
            ("table", json!({"entity": "order", "group_by": [{"field": "region"}],
                             "measures": [{"fn": "count"}, {"fn": "sum", "field": "amount"}]}),
             vec!["华东大区", "合计", "510.50"]),
        ];
        for (chart, query, labels) in cards {
            let response = app.post("/api/reports/chart", &json!({"chart": chart, "title": {"en": "Sales funnel", "zh-CN": "销售漏斗"}, "query": query})).await;
            assert_eq!(response.status.as_u16(), 200, "{chart}: {}", response.body);
            assert_eq!(response.header("content-type"), Some("image/svg+xml; charset=utf-8"));
            let svg = response.body.as_str().unwrap().to_owned();
            let doc = roxmltree::Document::parse(&svg).unwrap_or_else(|e| panic!("{chart}: {e}\n{svg}"));
            let root = doc.root_element();
            assert_eq!(root.attribute("width"), Some("100%"), "{chart}");
            assert!(root.attribute("viewBox").is_some(), "{chart}");
            assert!(doc.descendants().all(|n| n.attribute("style").is_none() && n.tag_name().name() != "script"), "{chart}: CSP");
            let texts: Vec<String> = doc.descendants().filter(|n| n.has_tag_name("text") || n.has_tag_name("title"))
                .filter_map(|n| n.text().map(str::to_owned)).collect();
            for label in labels {
                assert!(texts.iter().any(|t| t.contains(label)), "{chart}: no '{label}' in {texts:?}");
            }
            assert!(texts.iter().any(|t| t == "销售漏斗"), "{chart}: title");
            // Labels right-aligned in their column end before the first bar starts.
            if matches!(chart, "bar" | "funnel") {
                let bars_start = doc.descendants().filter(|n| n.has_tag_name("rect"))
                    .filter_map(|n| n.attribute("x")?.parse::<f64>().ok()).fold(f64::MAX, f64::min);
                for n in doc.descendants().filter(|n| n.attribute("class") == Some("chart-label")) {
                    let x: f64 = n.attribute("x").unwrap().parse().unwrap();
                    let w = tessera::charts::text::width(n.text().unwrap(), 13.0);
                    assert!(x - w >= 0.0 && x <= bars_start, "{chart}: label at {x} (width {w}) overlaps bars at {bars_start}");
                }
                // Each stage links to the list of its records.
                let links: Vec<&str> = doc.descendants().filter(|n| n.has_tag_name("a")).filter_map(|n| n.attribute("href")).collect();
                assert_eq!(links.len(), 3, "{chart}");
                assert!(links.iter().all(|l| l.starts_with("/e/order?filter=")), "{links:?}");
                if chart == "funnel" {
                    let filter = links[1].trim_start_matches("/e/order?filter=");
                    let listed = app.get(&format!("/api/records/order?count=true&filter={filter}")).await.expect(200);
                    assert_eq!(listed.body["total"], 3, "passed 进行中: open and won");
                    let page = app.get(links[1]).await;
                    assert_eq!(page.status.as_u16(), 200);
                }
            }
        }
        // Figures carry thousands separators; labels that look like numbers do not.
        app.create_record("order", &json!({"title": "2026", "status": "won", "signed_on": "2026-02-10", "amount": "12000.00"})).await;
        let number = json!({"entity": "order", "range": range, "measures": [{"fn": "sum", "field": "amount"}]});
        let svg = app.post("/api/reports/chart", &json!({"chart": "number", "query": number})).await.expect(200).body;
        assert!(svg.as_str().unwrap().contains(">12,510.50<"), "{svg}");
        let by_title = json!({"entity": "order", "group_by": [{"field": "title"}], "measures": [{"fn": "sum", "field": "amount"}]});
        let svg = app.post("/api/reports/chart", &json!({"chart": "bar", "query": by_title})).await.expect(200).body;
        let svg = svg.as_str().unwrap();
        assert!(svg.contains(">2026<") && svg.contains(">12,000.00<"), "{svg}");
        let bad = app.post("/api/reports/chart", &json!({"chart": "radar", "query": {"entity": "order"}})).await;
        assert_eq!(bad.status.as_u16(), 400);
    }

    async fn dashboards_are_versioned_shared_or_personal(app: TestApp) {
        schema(&app).await;
        for (day, amount) in [("2025-06-01", "5.00"), ("2026-02-01", "7.25")] {
            app.create_record("order", &json!({"title": day, "signed_on": day, "amount": amount})).await;
        }
        let card = json!({"chart": "number", "title": {"en": "Sales", "zh-CN": "销售额"},
                          "query": {"entity": "order", "range": {"field": "signed_on", "relative": "this_year"},
                                    "measures": [{"fn": "sum", "field": "amount"}]}});
        let shared = app.post("/api/dashboards", &json!({"name": "sales", "title": {"en": "Sales", "zh-CN": "销售分析"},
            "shared": true, "range": {"from": "2026-01-01", "to": "2026-12-31"}, "cards": [card]})).await.expect(201).body;
        assert_eq!(shared["version"], 1);
        assert_eq!(shared["shared"], true);
        let mine = app.post("/api/dashboards", &json!({"name": "mine", "cards": []})).await.expect(201).body;
        assert_eq!(mine["shared"], false);
        // Invalid documents are 422 with the path of the mistake.
        let bad = app.post("/api/dashboards", &json!({"name": "bad", "cards": [{"chart": "radar", "query": {"entity": "order"}}]})).await;
        assert_eq!(bad.status.as_u16(), 422, "{}", bad.body);
        assert_eq!(bad.error_fields(), vec!["cards[0].chart"]);
        // The card under the dashboard's range, then under one the viewer chose.
        let path = format!("/api/dashboards/{}/cards/0", id(&shared));
        let svg = app.get(&path).await.expect(200).body;
        assert!(svg.as_str().unwrap().contains("7.25"), "{svg}");
        // Drawn again from the cache, until a write to the entity retires the answer.
        assert_eq!(app.get(&path).await.expect(200).body, svg);
        app.create_record("order", &json!({"title": "late", "signed_on": "2026-03-01", "amount": "1.00"})).await;
        let svg = app.get(&path).await.expect(200).body;
        assert!(svg.as_str().unwrap().contains("8.25"), "a write to order retires the cached answer: {svg}");
        let svg = app.get(&format!("{path}?from=2025-01-01&to=2025-12-31")).await.expect(200).body;
        assert!(svg.as_str().unwrap().contains("5.00"), "{svg}");
        app.get(&format!("/api/dashboards/{}/cards/9", id(&shared))).await.expect(404);
        // A new version on each save; a stale version is refused.
        let mut doc = shared.clone();
        doc["title"] = json!({"en": "Sales 2026"});
        let saved = app.put(&format!("/api/dashboards/{}", id(&shared)), &doc).await.expect(200).body;
        assert_eq!(saved["version"], 2);
        app.put(&format!("/api/dashboards/{}", id(&shared)), &doc).await.expect(412);
        let versions = app.get(&format!("/api/dashboards/{}/versions", id(&shared))).await.expect(200).body;
        assert_eq!(versions["items"].as_array().unwrap().len(), 2);
        // A user without schema rights sees shared dashboards, not others' personal ones, and
        // may not share or change shared ones.
        app.post("/api/roles", &json!({"name": "viewer", "permissions": {"entities": {"order": {"read": "all"}}}})).await.expect(201);
        app.post("/api/users", &json!({"email": "v@tessera.test", "password": PASSWORD, "roles": ["viewer"]})).await.expect(201);
        let viewer = app.login("v@tessera.test", PASSWORD).await;
        let listed = viewer.get("/api/dashboards").await.expect(200).body;
        let names: Vec<&str> = listed["items"].as_array().unwrap().iter().map(|d| d["name"].as_str().unwrap()).collect();
        assert_eq!(names, vec!["sales"]);
        viewer.get(&format!("/api/dashboards/{}", id(&mine))).await.expect(404);
        viewer.post("/api/dashboards", &json!({"name": "x", "shared": true, "cards": []})).await.expect(403);
        viewer.put(&format!("/api/dashboards/{}", id(&shared)), &doc).await.expect(403);
        viewer.post("/api/dashboards", &json!({"name": "x", "cards": []})).await.expect(201);
        app.delete(&format!("/api/dashboards/{}", id(&mine))).await.expect(204);
    }

    async fn the_analytics_template_draws_every_card_on_the_sample_data(app: TestApp) {
        let installed = app.post("/api/templates/analytics/install", &json!({"sample_data": true})).await.expect(200).body;
        let names: Vec<&str> = installed["templates"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
        assert_eq!(names, ["customer", "sales", "service", "marketing", "analytics"], "{installed}");
        let dashboards = app.get("/api/dashboards").await.expect(200).body;
        let titles: Vec<&str> = dashboards["items"].as_array().unwrap().iter().map(|d| d["title"]["zh-CN"].as_str().unwrap()).collect();
        assert_eq!(titles, ["销售分析", "客户分析", "服务分析", "营销效果"]);
        for dashboard in dashboards["items"].as_array().unwrap() {
            for (i, card) in dashboard["cards"].as_array().unwrap().iter().enumerate() {
                let title = card["title"]["zh-CN"].as_str().unwrap();
                let response = app.get(&format!("/api/dashboards/{}/cards/{i}", id(dashboard))).await;
                assert_eq!(response.status.as_u16(), 200, "{title}: {}", response.body);
                let svg = response.body.as_str().unwrap();
                let doc = roxmltree::Document::parse(svg).unwrap_or_else(|e| panic!("{title}: {e}"));
                let texts: Vec<&str> = doc.descendants().filter(|n| n.has_tag_name("text") || n.has_tag_name("title"))
                    .filter_map(|n| n.text()).collect();
                assert!(texts.contains(&title), "{title}: {texts:?}");
                assert!(!texts.contains(&"暂无数据"), "{title} shows nothing on the sample data");
                // A chart of categories names them (option labels, titles, users, buckets).
                if card["chart"] != "number" {
                    let labels = doc.descendants().filter(|n| matches!(n.attribute("class"), Some("chart-label" | "chart-cell"))).count();
                    assert!(labels > 0, "{title}: no labels in {svg}");
                }
            }
        }
        // Installing again changes nothing.
        let again = app.post("/api/templates/analytics/install", &json!({})).await.expect(200).body;
        assert_eq!(again["changed"], false, "{again}");
    }

    async fn win_rate_and_time_between_two_dates(app: TestApp) {
        schema(&app).await;
        app.create_entity(&json!({
            "name": "ticket", "label": {"en": "Ticket", "zh-CN": "工单"},
            "schema": {"properties": {"title": {"x-kind": "text"},
                "opened_at": {"x-kind": "datetime"}, "closed_at": {"x-kind": "datetime"}}}
        })).await;
        for (region, status) in [("华东", "won"), ("华东", "won"), ("华东", "lost"), ("华北", "lost"), ("华北", "open")] {
            app.create_record("order", &json!({"title": "x", "region": region, "status": status})).await;
        }
        let r = report(&app, json!({"kind": "win_rate", "entity": "order", "stage": "status", "group_by": [{"field": "region"}]})).await;
        let rates: HashMap<String, Value> = r["rows"].as_array().unwrap().iter()
            .map(|row| (row["keys"][0].as_str().unwrap().to_owned(), row["values"]["win_rate"].clone())).collect();
        assert_eq!(rates["华东"], "0.6667", "{r}");
        assert_eq!(rates["华北"], "0.0000");
        assert_eq!(r["totals"], json!({"won": 2, "lost": 2, "win_rate": "0.5000"}));
        // Resolution times of 1, 2, 3 and 10 hours: average 4, median 2.5; an open ticket is left out.
        for (i, hours) in [1, 2, 3, 10].into_iter().enumerate() {
            app.create_record("ticket", &json!({"title": format!("t{i}"), "opened_at": "2026-03-01T08:00:00Z",
                "closed_at": format!("2026-03-01T{:02}:00:00Z", 8 + hours)})).await;
        }
        app.create_record("ticket", &json!({"title": "open", "opened_at": "2026-03-01T08:00:00Z"})).await;
        let r = report(&app, json!({"kind": "duration", "entity": "ticket", "from_field": "opened_at", "to_field": "closed_at"})).await;
        assert_eq!(r["totals"], json!({"count": 4, "avg": "4.00", "median": "2.50"}), "{r}");
        assert_eq!(r["unit"], "hours");
        let bad = app.post("/api/reports/query", &json!({"kind": "duration", "entity": "ticket", "from_field": "title", "to_field": "closed_at"})).await;
        assert_eq!(bad.status.as_u16(), 400);
    }
}

fn urlencode(s: &str) -> String {
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
