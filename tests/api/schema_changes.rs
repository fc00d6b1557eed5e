//! Schema changes on live data: each planned, checked against the records and applied in one
//! transaction; unsafe changes refused with the reason and the number of records in the way.

use serde_json::{Value, json};
use tessera::store::ColumnType;

use crate::common::TestApp;
use crate::on_both_databases;

const CITIES: [&str; 5] = ["上海", "北京", "深圳", "杭州", "Chengdu"];

fn contact() -> Value {
    json!({
        "name": "contact",
        "label": {"en": "Contact", "zh-CN": "联系人"},
        "schema": {"properties": {
            "name": {"x-kind": "text", "x-label": {"en": "Name", "zh-CN": "姓名"}},
            "email": {"x-kind": "email"},
            "city": {"x-kind": "text"},
            "score": {"x-kind": "integer"},
            "level": {"x-kind": "select", "x-options": [{"value": "a"}, {"value": "b"}, {"value": "c"}]}
        }, "required": ["name"]}
    })
}

/// `(id, value)` of one column for every record, straight from the table.
async fn column_values(app: &TestApp, column: &str) -> Vec<(String, Option<String>)> {
    app.sql(
        &format!("SELECT \"id\", \"{column}\" FROM \"rec_contact\" ORDER BY \"id\""),
        &[ColumnType::Id, ColumnType::Text],
    )
    .await
    .into_iter()
    .map(|r| {
        (
            r[0].as_str().unwrap().to_owned(),
            r[1].as_str().map(str::to_owned),
        )
    })
    .collect()
}

async fn count(app: &TestApp, sql: &str) -> i64 {
    app.sql(sql, &[ColumnType::Integer]).await[0][0]
        .as_i64()
        .unwrap()
}

async fn seed_contacts(app: &TestApp, n: usize) {
    app.create_entity(&contact()).await;
    let records = (0..n)
        .map(|i| {
            let level = ["a", "b"][i % 2];
            json!({
                "name": format!("客户 {i:04}"),
                "email": format!("c{i}@example.cn"),
                "city": CITIES[i % CITIES.len()],
                "score": i as i64,
                "level": level
            })
        })
        .collect();
    app.create_records("contact", records).await;
}

on_both_databases! {
    async fn changes_on_a_thousand_records(app: TestApp) {
        seed_contacts(&app, 1000).await;

        // A required field without a default: refused, with the count.
        let new_required = json!({"name": "region", "x-kind": "text", "required": true});
        let refused = app.post("/api/entities/contact/fields", &new_required).await.expect(409);
        assert_eq!(refused.body["errors"][0]["field"], "region");
        assert_eq!(refused.body["errors"][0]["count"], 1000);
        // A dry run reports the same without an error, and changes nothing.
        let dry = app.post("/api/entities/contact/fields?dry_run=true", &new_required).await.expect(200);
        assert_eq!(dry.body["applied"], false);
        assert_eq!(dry.body["blocked_by"][0]["count"], 1000);
        assert!(!app.columns_of("rec_contact").await.iter().any(|(c, _)| c == "region"));

        // With a default it back-fills every record.
        let added = app
            .post(
                "/api/entities/contact/fields",
                &json!({"name": "region", "x-kind": "text", "required": true, "default": "华东"}),
            )
            .await
            .expect(201);
        assert_eq!(added.body["applied"], true);
        assert_eq!(count(&app, "SELECT COUNT(*) FROM \"rec_contact\" WHERE \"region\" = '华东'").await, 1000);
        // New records get the default too.
        let fresh = app.create_record("contact", &json!({"name": "新客户"})).await;
        assert_eq!(fresh["region"], "华东");
        app.delete(&format!("/api/records/contact/{}", fresh["id"].as_str().unwrap())).await.expect(204);

        // Unique over duplicated values: refused with examples.
        let refused = app
            .patch("/api/entities/contact/fields/city", &json!({"x-unique": true}))
            .await
            .expect(409);
        let error = &refused.body["errors"][0];
        assert_eq!(error["field"], "city");
        assert_eq!(error["count"], 1000);
        let examples = error["examples"].as_array().unwrap();
        assert_eq!(examples.len(), 5);
        assert!(examples.iter().all(|e| e["records"] == 200), "{examples:?}");
        assert!(examples.iter().any(|e| e["value"] == "上海"));
        // Unique where values are distinct: accepted, and enforced.
        app.patch("/api/entities/contact/fields/email", &json!({"x-unique": true})).await.expect(200);
        let taken = app.post("/api/records/contact", &json!({"name": "dup", "email": "c7@example.cn"})).await.expect(409);
        assert_eq!(taken.error_fields(), ["email"]);

        // Renaming keeps every value.
        let before = column_values(&app, "name").await;
        let renamed = app
            .patch("/api/entities/contact/fields/name", &json!({"name": "full_name"}))
            .await
            .expect(200);
        assert_eq!(renamed.body["changes"][0]["action"], "rename_field");
        assert_eq!(column_values(&app, "full_name").await, before);
        assert_eq!(before.len(), 1001);
        assert!(renamed.body["entity"]["schema"]["required"].as_array().unwrap().contains(&json!("full_name")));

        // Removing a field archives it; restoring brings every value back.
        let emails = column_values(&app, "email").await;
        let removed = app.delete("/api/entities/contact/fields/email").await.expect(200);
        assert_eq!(removed.body["changes"][0]["action"], "archive_field");
        assert!(!app.columns_of("rec_contact").await.iter().any(|(c, _)| c == "email"));
        let record = app.get("/api/records/contact?limit=1").await.expect(200).body["items"][0].clone();
        assert!(record.get("email").is_none());
        let archived = app.get("/api/entities/contact/archived-fields").await.expect(200);
        let entry = &archived.body["items"][0];
        assert_eq!(entry["field"], "email");
        assert_eq!(entry["values"], 1000);
        let id = entry["id"].as_i64().unwrap();
        let restored = app
            .post(&format!("/api/entities/contact/archived-fields/{id}/restore"), &json!({}))
            .await
            .expect(200);
        assert_eq!(restored.body["changes"][0]["action"], "restore_field");
        assert_eq!(column_values(&app, "email").await, emails);
        // Restored as it was: still unique.
        app.post("/api/records/contact", &json!({"full_name": "dup", "email": "c7@example.cn"})).await.expect(409);
        let archived = app.get("/api/entities/contact/archived-fields").await.expect(200);
        assert_eq!(archived.body["items"], json!([]));

        let versions = app.get("/api/entities/contact/versions").await.expect(200);
        assert_eq!(versions.body["items"].as_array().unwrap().len(), 6);
    }

    async fn safe_type_changes_keep_the_data(app: TestApp) {
        seed_contacts(&app, 20).await;
        // text → long_text: no check, values kept.
        app.patch("/api/entities/contact/fields/city", &json!({"x-kind": "long_text"})).await.expect(200);
        // integer → money: values become exact decimals.
        let changed = app
            .patch("/api/entities/contact/fields/score", &json!({"x-kind": "money", "x-scale": 2}))
            .await
            .expect(200);
        assert_eq!(changed.body["changes"][0]["action"], "convert_field");
        let page = app.get("/api/records/contact?limit=500").await.expect(200);
        let scores: Vec<&str> = page.body["items"].as_array().unwrap().iter().map(|r| r["score"].as_str().unwrap()).collect();
        assert!(scores.contains(&"19.00") && scores.contains(&"0.00"), "{scores:?}");
        // More places: safe.
        app.patch("/api/entities/contact/fields/score", &json!({"x-scale": 4})).await.expect(200);
        let one = app.get("/api/records/contact?limit=1&sort=-score").await.expect(200).body["items"][0].clone();
        assert_eq!(one["score"], "19.0000");
        // Adding select options: metadata only.
        let options = json!([{"value": "a"}, {"value": "b"}, {"value": "c"}, {"value": "d", "label": {"en": "D", "zh-CN": "丁"}}]);
        let added = app.patch("/api/entities/contact/fields/level", &json!({"x-options": options})).await.expect(200);
        assert_eq!(added.body["changes"][0]["action"], "metadata");
        // Relabel and reorder: metadata only, no DDL.
        let moved = app
            .patch("/api/entities/contact/fields/level", &json!({"position": 0, "x-label": {"en": "Level", "zh-CN": "级别"}}))
            .await
            .expect(200);
        let first = moved.body["entity"]["schema"]["properties"].as_object().unwrap().keys().next().unwrap().clone();
        assert_eq!(first, "level");
        assert!(moved.body["changes"].as_array().unwrap().iter().all(|c| c["action"] == "metadata"));
        // date → datetime.
        app.post("/api/entities/contact/fields", &json!({"name": "met", "x-kind": "date"})).await.expect(201);
        let some = app.get("/api/records/contact?limit=1").await.expect(200).body["items"][0].clone();
        let id = some["id"].as_str().unwrap();
        app.patch(&format!("/api/records/contact/{id}"), &json!({"met": "2026-01-31"})).await.expect(200);
        app.patch("/api/entities/contact/fields/met", &json!({"x-kind": "datetime"})).await.expect(200);
        let read = app.get(&format!("/api/records/contact/{id}")).await.expect(200);
        assert_eq!(read.body["met"], "2026-01-31T00:00:00.000000Z");
        // select → multi_select.
        app.patch("/api/entities/contact/fields/level", &json!({"x-kind": "multi_select"})).await.expect(200);
        let read = app.get(&format!("/api/records/contact/{id}")).await.expect(200);
        assert!(read.body["level"].as_array().is_some_and(|l| l.len() == 1), "{}", read.body);
    }

    async fn unsafe_changes_are_refused_with_counts(app: TestApp) {
        seed_contacts(&app, 30).await;
        // Removing an option still in use.
        let refused = app
            .patch("/api/entities/contact/fields/level", &json!({"x-options": [{"value": "a"}, {"value": "c"}]}))
            .await
            .expect(409);
        assert_eq!(refused.body["errors"][0]["count"], 15);
        assert_eq!(refused.body["errors"][0]["examples"][0], json!({"value": "b", "records": 15}));
        // Removing an unused option is fine.
        app.patch("/api/entities/contact/fields/level", &json!({"x-options": [{"value": "a"}, {"value": "b"}]})).await.expect(200);
        // Narrowing text: values longer than the new maximum.
        let refused = app.patch("/api/entities/contact/fields/name", &json!({"maxLength": 5})).await.expect(409);
        assert_eq!(refused.body["errors"][0]["count"], 30);
        // Text → email with values that are not addresses.
        let refused = app.patch("/api/entities/contact/fields/city", &json!({"x-kind": "email"})).await.expect(409);
        assert_eq!(refused.body["errors"][0]["count"], 30);
        assert_eq!(refused.body["errors"][0]["examples"].as_array().unwrap().len(), 5);
        // Fewer decimal places than the data has.
        app.post("/api/entities/contact/fields", &json!({"name": "rate", "x-kind": "decimal", "x-scale": 3})).await.expect(201);
        let page = app.get("/api/records/contact?limit=2").await.expect(200);
        let ids: Vec<String> = page.body["items"].as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap().to_owned()).collect();
        app.patch(&format!("/api/records/contact/{}", ids[0]), &json!({"rate": "1.125"})).await.expect(200);
        app.patch(&format!("/api/records/contact/{}", ids[1]), &json!({"rate": "2.5"})).await.expect(200);
        let refused = app.patch("/api/entities/contact/fields/rate", &json!({"x-scale": 2})).await.expect(409);
        assert_eq!(refused.body["errors"][0]["count"], 1);
        let refused = app.patch("/api/entities/contact/fields/rate", &json!({"x-kind": "integer"})).await.expect(409);
        assert_eq!(refused.body["errors"][0]["count"], 2);
        // An incompatible kind while values exist.
        let refused = app.patch("/api/entities/contact/fields/score", &json!({"x-kind": "date"})).await.expect(409);
        assert_eq!(refused.body["errors"][0]["count"], 30);
        // A tighter range.
        let refused = app.patch("/api/entities/contact/fields/score", &json!({"maximum": 9})).await.expect(409);
        assert_eq!(refused.body["errors"][0]["count"], 20);
        // Nothing above changed the table or the version.
        let doc = app.get("/api/entities/contact").await.expect(200);
        assert_eq!(doc.body["version"], 3);
        // Several problems in one change are all reported.
        let refused = app
            .patch("/api/entities/contact/fields/city", &json!({"maxLength": 3, "x-unique": true}))
            .await
            .expect(409);
        assert_eq!(refused.body["errors"].as_array().unwrap().len(), 2, "{}", refused.body);
    }

    async fn autonumbers_number_existing_records(app: TestApp) {
        seed_contacts(&app, 12).await;
        app.post("/api/entities/contact/fields", &json!({"name": "code", "x-kind": "autonumber", "x-pattern": "C-{0000}"})).await.expect(201);
        let codes = column_values(&app, "code").await;
        let mut values: Vec<String> = codes.into_iter().map(|(_, c)| c.unwrap()).collect();
        assert_eq!(values.first().map(String::as_str), Some("C-0001"));
        values.sort();
        values.dedup();
        assert_eq!(values.len(), 12);
        let next = app.create_record("contact", &json!({"name": "十三"})).await;
        assert_eq!(next["code"], "C-0013");
        let refused = app.patch(&format!("/api/records/contact/{}", next["id"].as_str().unwrap()), &json!({"code": "X"})).await.expect(422);
        assert_eq!(refused.error_fields(), ["code"]);
    }

    async fn a_field_name_can_be_reused_and_restored_elsewhere(app: TestApp) {
        seed_contacts(&app, 10).await;
        let cities = column_values(&app, "city").await;
        app.delete("/api/entities/contact/fields/city").await.expect(200);
        app.post("/api/entities/contact/fields", &json!({"name": "city", "x-kind": "select", "x-options": [{"value": "sh"}]})).await.expect(201);
        let archived = app.get("/api/entities/contact/archived-fields").await.expect(200);
        let id = archived.body["items"][0]["id"].as_i64().unwrap();
        let path = format!("/api/entities/contact/archived-fields/{id}/restore");
        let taken = app.post(&path, &json!({})).await.expect(409);
        assert!(taken.body["detail"].as_str().unwrap().contains("another name"));
        app.post(&path, &json!({"name": "old_city"})).await.expect(200);
        assert_eq!(column_values(&app, "old_city").await, cities);
        app.post(&path, &json!({})).await.expect(404);
        app.patch("/api/entities/contact/fields/old_city", &json!({"name": "city"})).await.expect(409);
        app.patch("/api/entities/contact/fields/nope", &json!({"x-label": {"en": "x"}})).await.expect(404);
    }
}
