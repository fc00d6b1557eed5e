//! Records: validation listing every failing field, exact decimals, lookups that must exist,
//! optimistic concurrency, trash.

use serde_json::{Value, json};
use tessera::store::ColumnType;

use crate::on_both_databases;

fn invoice() -> Value {
    json!({
        "name": "invoice",
        "label": {"en": "Invoice", "zh-CN": "发票"},
        "schema": {"properties": {
            "title": {"x-kind": "text", "maxLength": 50},
            "amount": {"x-kind": "money", "minimum": 0},
            "issued": {"x-kind": "date"},
            "email": {"x-kind": "email"},
            "status": {"x-kind": "select", "x-options": [{"value": "draft"}, {"value": "paid"}]},
            "paid": {"x-kind": "boolean"}
        }, "required": ["title"]}
    })
}

on_both_databases! {
    async fn ten_dimes_sum_to_exactly_one(app: TestApp) {
        app.create_entity(&invoice()).await;
        for i in 0..10 {
            let created = app.create_record("invoice", &json!({"title": format!("#{i}"), "amount": 0.10})).await;
            assert_eq!(created["amount"], "0.10");
        }
        // Summed by the database itself, read back exactly.
        let sum = app
            .sql("SELECT SUM(\"amount\") FROM \"rec_invoice\"", &[ColumnType::Decimal { scale: 2 }])
            .await;
        assert_eq!(sum[0][0].to_json(), json!("1.00"));
        // And what clients see adds up exactly too.
        let page = app.get("/api/records/invoice").await.expect(200);
        let total: rust_decimal::Decimal = page.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["amount"].as_str().unwrap().parse::<rust_decimal::Decimal>().unwrap())
            .sum();
        assert_eq!(total.to_string(), "1.00");
        // Rounding is half away from zero, strings and numbers alike.
        let r = app.create_record("invoice", &json!({"title": "r", "amount": "2.345"})).await;
        assert_eq!(r["amount"], "2.35");
        let r = app.create_record("invoice", &json!({"title": "r", "amount": 1e3})).await;
        assert_eq!(r["amount"], "1000.00");
    }

    async fn one_422_names_every_bad_field(app: TestApp) {
        app.create_entity(&invoice()).await;
        let response = app
            .post(
                "/api/records/invoice",
                &json!({"title": "ok", "amount": -5, "issued": "2026-02-30", "email": "not-an-address"}),
            )
            .await
            .expect(422);
        assert_eq!(response.header("content-type"), Some("application/problem+json"));
        assert_eq!(response.error_fields(), ["amount", "issued", "email"]);
        for error in response.body["errors"].as_array().unwrap() {
            assert!(!error["message"].as_str().unwrap().is_empty());
        }
        // Missing required, unknown, read-only and wrong-typed fields are all listed together.
        let response = app
            .post(
                "/api/records/invoice",
                &json!({"amount": "abc", "paid": "yes", "status": "void", "colour": "red", "id": "x", "created_at": "now"}),
            )
            .await
            .expect(422);
        let mut fields = response.error_fields();
        fields.sort();
        assert_eq!(fields, ["amount", "colour", "created_at", "id", "paid", "status", "title"]);
        // Nothing was stored.
        let page = app.get("/api/records/invoice").await.expect(200);
        assert_eq!(page.body["items"], json!([]));
        // Not an object at all.
        app.post("/api/records/invoice", &json!([1, 2])).await.expect(400);
    }

    async fn updates_are_partial_and_versioned(app: TestApp) {
        app.create_entity(&invoice()).await;
        let created = app.create_record("invoice", &json!({"title": "Q1", "amount": "10", "status": "draft"})).await;
        let path = format!("/api/records/invoice/{}", created["id"].as_str().unwrap());
        let updated = app.patch(&path, &json!({"status": "paid"})).await.expect(200);
        assert_eq!(updated.body["status"], "paid");
        assert_eq!(updated.body["amount"], "10.00");
        assert_eq!(updated.body["version"], 2);
        assert_eq!(updated.header("etag"), Some("\"2\""));
        // Clearing an optional field with null; a required one cannot be cleared.
        let cleared = app.patch(&path, &json!({"status": null})).await.expect(200);
        assert_eq!(cleared.body["status"], Value::Null);
        let refused = app.patch(&path, &json!({"title": null})).await.expect(422);
        assert_eq!(refused.error_fields(), ["title"]);
        // Optimistic concurrency: a stale version is a 412 and changes nothing.
        let stale = app.request_with(reqwest::Method::PATCH, &path, Some(&json!({"title": "lost"})), &[("if-match", "\"1\"")]).await;
        assert_eq!(stale.status.as_u16(), 412);
        let stale = app.patch(&path, &json!({"title": "lost", "version": 2})).await;
        assert_eq!(stale.status.as_u16(), 412);
        let fresh = app.request_with(reqwest::Method::PATCH, &path, Some(&json!({"title": "kept"})), &[("if-match", "\"3\"")]).await;
        assert_eq!(fresh.status.as_u16(), 200);
        assert_eq!(app.get(&path).await.expect(200).body["title"], "kept");
        // Delete moves to the trash: gone from reads and lists.
        app.delete(&path).await.expect(204);
        app.get(&path).await.expect(404);
        app.patch(&path, &json!({"title": "x"})).await.expect(404);
        app.delete(&path).await.expect(404);
        assert_eq!(app.get("/api/records/invoice").await.expect(200).body["items"], json!([]));
        app.get("/api/records/invoice/not-a-uuid").await.expect(404);
    }

    async fn lookups_must_point_at_live_records(app: TestApp) {
        app.create_entity(&json!({
            "name": "customer", "label": {"en": "Customer", "zh-CN": "客户"},
            "schema": {"properties": {
                "name": {"x-kind": "text"},
                "parent": {"x-kind": "lookup", "x-target": "customer", "x-label": {"en": "Parent company", "zh-CN": "上级单位"}}
            }}
        }))
        .await;
        app.create_entity(&json!({
            "name": "deal", "label": {"en": "Deal", "zh-CN": "商机"},
            "schema": {"properties": {
                "customer": {"x-kind": "lookup", "x-target": "customer"},
                "partners": {"x-kind": "multi_lookup", "x-target": "customer"}
            }}
        }))
        .await;
        let parent = app.create_record("customer", &json!({"name": "总公司"})).await;
        let child = app.create_record("customer", &json!({"name": "分公司", "parent": parent["id"]})).await;
        assert_eq!(child["parent"], parent["id"]);
        let ghost = "0195b4b2-7c1e-7d4a-9a53-000000000000";
        let refused = app.post("/api/records/deal", &json!({"customer": ghost, "partners": [parent["id"], ghost]})).await.expect(422);
        let mut fields = refused.error_fields();
        fields.sort();
        assert_eq!(fields, ["customer", "partners"]);
        app.post("/api/records/deal", &json!({"customer": "not-an-id"})).await.expect(422);
        let deal = app.create_record("deal", &json!({"customer": child["id"], "partners": [child["id"], parent["id"]]})).await;
        assert_eq!(deal["partners"], json!([child["id"], parent["id"]]));
        let path = format!("/api/records/deal/{}", deal["id"].as_str().unwrap());
        let updated = app.patch(&path, &json!({"partners": [parent["id"]]})).await.expect(200);
        assert_eq!(updated.body["partners"], json!([parent["id"]]));
        let page = app.get("/api/records/deal").await.expect(200);
        assert_eq!(page.body["items"][0]["partners"], json!([parent["id"]]));
        // A trashed record cannot be newly pointed at.
        app.delete(&format!("/api/records/customer/{}", parent["id"].as_str().unwrap())).await.expect(204);
        app.patch(&path, &json!({"customer": parent["id"]})).await.expect(422);
    }

    async fn lists_are_newest_first_and_limited(app: TestApp) {
        app.create_entity(&invoice()).await;
        for i in 0..7 {
            app.create_record("invoice", &json!({"title": format!("n{i}")})).await;
        }
        let page = app.get("/api/records/invoice?limit=3").await.expect(200);
        let titles: Vec<&str> = page.body["items"].as_array().unwrap().iter().map(|r| r["title"].as_str().unwrap()).collect();
        assert_eq!(titles, ["n6", "n5", "n4"]);
        let all = app.get("/api/records/invoice").await.expect(200);
        assert_eq!(all.body["items"].as_array().unwrap().len(), 7);
    }
}
