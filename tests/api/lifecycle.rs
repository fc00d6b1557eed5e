//! A record's life: history, optimistic concurrency, trash and restore, copy, merge, bulk
//! changes, auto-numbers under concurrency, formulas and rollups kept current.

use serde_json::{Value, json};

use crate::common::TestApp;
use crate::common::id;
use crate::on_both_databases;

async fn customer_and_order(app: &TestApp) {
    app.create_entity(&json!({
        "name": "customer", "label": {"en": "Customer", "zh-CN": "客户"},
        "schema": {"properties": {
            "name": {"x-kind": "text"},
            "phone": {"x-kind": "phone"},
            "email": {"x-kind": "email", "x-unique": true},
            "parent": {"x-kind": "lookup", "x-target": "customer"}
        }}
    }))
    .await;
    app.create_entity(&json!({
        "name": "order", "label": {"en": "Order", "zh-CN": "订单"},
        "schema": {"properties": {
            "number": {"x-kind": "autonumber", "x-pattern": "SO-{00000}"},
            "customer": {"x-kind": "lookup", "x-target": "customer"},
            "amount": {"x-kind": "money"},
            "quantity": {"x-kind": "integer"},
            "price": {"x-kind": "money"},
            "line_total": {"x-kind": "formula", "x-formula": "price * quantity"}
        }}
    }))
    .await;
    app.post(
        "/api/entities/customer/fields",
        &json!({"name": "total", "x-kind": "rollup",
                "x-rollup": {"entity": "order", "via": "customer", "field": "amount", "op": "sum"}}),
    )
    .await
    .expect(201);
    app.post(
        "/api/entities/customer/fields",
        &json!({"name": "orders", "x-kind": "rollup",
                "x-rollup": {"entity": "order", "via": "customer", "op": "count"}}),
    )
    .await
    .expect(201);
}

async fn totals(app: &TestApp, customer: &str) -> (String, i64) {
    let c = app
        .get(&format!("/api/records/customer/{customer}"))
        .await
        .expect(200)
        .body;
    (
        c["total"].as_str().unwrap().to_owned(),
        c["orders"].as_i64().unwrap(),
    )
}

on_both_databases! {
    async fn history_records_every_change(app: TestApp) {
        customer_and_order(&app).await;
        let c = app.create_record("customer", &json!({"name": "甲", "phone": "010-1234567"})).await;
        let path = format!("/api/records/customer/{}", id(&c));
        app.patch(&path, &json!({"name": "甲公司", "tags": ["vip"]})).await.expect(200);
        app.delete(&path).await.expect(204);
        app.post(&format!("{path}/restore"), &json!({})).await.expect(200);
        let history = app.get(&format!("{path}/history")).await.expect(200);
        let items = history.body["items"].as_array().unwrap();
        let actions: Vec<&str> = items.iter().map(|h| h["action"].as_str().unwrap()).collect();
        assert_eq!(actions, ["restore", "delete", "update", "create"]);
        assert_eq!(items[2]["changes"]["name"], json!({"old": "甲", "new": "甲公司"}));
        assert_eq!(items[2]["changes"]["tags"], json!({"old": [], "new": ["vip"]}));
        assert!(items[2]["changes"].get("phone").is_none());
        assert_eq!(items[3]["changes"]["phone"]["new"], "010-1234567");
        assert!(items[0]["at"].is_string());
        // Trashed records are listed apart, and can be erased for good.
        app.delete(&path).await.expect(204);
        let trash = app.get("/api/records/customer?trashed=true").await.expect(200);
        assert_eq!(trash.body["items"][0]["id"], c["id"]);
        assert!(trash.body["items"][0]["deleted_at"].is_string());
        app.get(&format!("{path}?trashed=true")).await.expect(200);
        app.delete(&format!("{path}?permanent=true")).await.expect(204);
        app.get(&format!("{path}?trashed=true")).await.expect(404);
        app.post(&format!("{path}/restore"), &json!({})).await.expect(404);
        // The history outlives the record.
        let history = app.get(&format!("{path}/history")).await.expect(200);
        assert_eq!(history.body["items"][0]["action"], "erase");
    }

    async fn concurrent_updates_lose_nothing_silently(app: TestApp) {
        customer_and_order(&app).await;
        let c = app.create_record("customer", &json!({"name": "start"})).await;
        let path = format!("/api/records/customer/{}", id(&c));
        let (alice, bob) = (json!({"name": "alice"}), json!({"name": "bob"}));
        let (a, b) = tokio::join!(
            app.request_with(reqwest::Method::PATCH, &path, Some(&alice), &[("if-match", "\"1\"")]),
            app.request_with(reqwest::Method::PATCH, &path, Some(&bob), &[("if-match", "\"1\"")]),
        );
        let mut statuses = [a.status.as_u16(), b.status.as_u16()];
        statuses.sort();
        assert_eq!(statuses, [200, 412]);
        let winner = if a.status.as_u16() == 200 { "alice" } else { "bob" };
        let now = app.get(&path).await.expect(200);
        assert_eq!(now.body["name"], winner);
        assert_eq!(now.body["version"], 2);
        let history = app.get(&format!("{path}/history")).await.expect(200);
        assert_eq!(history.body["items"].as_array().unwrap().len(), 2);
        // The loser reloads and applies its change on top.
        let loser = if winner == "alice" { "bob" } else { "alice" };
        let retried = app
            .request_with(reqwest::Method::PATCH, &path, Some(&json!({"name": loser})), &[("if-match", "\"2\"")])
            .await;
        assert_eq!(retried.status.as_u16(), 200);
        // Deleting with a stale version is refused as well.
        let stale = app.request_with(reqwest::Method::DELETE, &path, None, &[("if-match", "\"1\"")]).await;
        assert_eq!(stale.status.as_u16(), 412);
    }

    async fn unique_values_name_their_holder(app: TestApp) {
        customer_and_order(&app).await;
        let first = app.create_record("customer", &json!({"name": "a", "email": "a@x.cn"})).await;
        let taken = app.post("/api/records/customer", &json!({"name": "b", "email": "a@x.cn"})).await.expect(409);
        assert_eq!(taken.error_fields(), ["email"]);
        assert_eq!(taken.body["errors"][0]["examples"][0]["id"], first["id"]);
        assert!(taken.body["detail"].as_str().unwrap().contains(&id(&first)));
        // Trashing frees the value; restoring while it is taken again is a conflict.
        app.delete(&format!("/api/records/customer/{}", id(&first))).await.expect(204);
        let second = app.create_record("customer", &json!({"name": "b", "email": "a@x.cn"})).await;
        let refused = app.post(&format!("/api/records/customer/{}/restore", id(&first)), &json!({})).await.expect(409);
        assert_eq!(refused.error_fields(), ["email"]);
        app.patch(&format!("/api/records/customer/{}", id(&second)), &json!({"email": "b@x.cn"})).await.expect(200);
        app.post(&format!("/api/records/customer/{}/restore", id(&first)), &json!({})).await.expect(200);
    }

    async fn autonumbers_are_gap_free_under_concurrency(app: TestApp) {
        customer_and_order(&app).await;
        let creators: Vec<_> = (0..20)
            .map(|i| {
                let app = app.clone();
                tokio::spawn(async move {
                    app.create_record("order", &json!({"amount": i})).await["number"]
                        .as_str()
                        .unwrap()
                        .to_owned()
                })
            })
            .collect();
        let mut numbers = Vec::new();
        for creator in creators {
            numbers.push(creator.await.unwrap());
        }
        numbers.sort();
        let expected: Vec<String> = (1..=20).map(|n| format!("SO-{n:05}")).collect();
        assert_eq!(numbers, expected);
        // A failed create gives its number back.
        app.post("/api/records/order", &json!({"customer": "0195b4b2-7c1e-7d4a-9a53-000000000000"})).await.expect(422);
        assert_eq!(app.create_record("order", &json!({})).await["number"], "SO-00021");
    }

    async fn failing_writes_do_not_disturb_others(app: TestApp) {
        customer_and_order(&app).await;
        app.create_record("customer", &json!({"name": "taken", "email": "taken@x.cn"})).await;
        let ghost = "0195b4b2-7c1e-7d4a-9a53-000000000000";
        let writers: Vec<_> = (0..45)
            .map(|i| {
                let app = app.clone();
                tokio::spawn(async move {
                    let (entity, body) = match i % 3 {
                        0 => ("customer", json!({"name": format!("ok {i}"), "email": format!("c{i}@x.cn")})),
                        1 => ("customer", json!({"name": "dup", "email": "taken@x.cn"})),
                        _ => ("order", json!({"customer": ghost, "amount": "1"})),
                    };
                    app.post(&format!("/api/records/{entity}"), &body).await.status.as_u16()
                })
            })
            .collect();
        let mut statuses = Vec::new();
        for w in writers {
            statuses.push(w.await.unwrap());
        }
        let count = |s: u16| statuses.iter().filter(|x| **x == s).count();
        assert_eq!((count(201), count(409), count(422)), (15, 15, 15), "{statuses:?}");
        let page = app.get("/api/records/customer?count=true&limit=1").await.expect(200);
        assert_eq!(page.body["total"], 16);
        // The failed orders took no number.
        assert_eq!(app.create_record("order", &json!({})).await["number"], "SO-00001");
    }

    async fn concurrent_creates_each_answer_for_themselves(app: TestApp) {
        // Creates sent together may be written together (SQLite's writer groups them): each
        // still gets its own answer, its own history and its share of the parent's rollups.
        customer_and_order(&app).await;
        let acme = id(&app.create_record("customer", &json!({"name": "Acme"})).await);
        let writers: Vec<_> = (0..40)
            .map(|i| {
                let app = app.clone();
                let acme = acme.clone();
                tokio::spawn(async move {
                    let (entity, body) = match i % 4 {
                        0 | 1 => ("order", json!({"customer": acme, "amount": format!("{i}.25")})),
                        2 => ("customer", json!({"name": format!("same {i}"), "email": "same@x.cn"})),
                        _ => ("customer", json!({"name": format!("bad {i}"), "email": "not an email"})),
                    };
                    let answer = app.post(&format!("/api/records/{entity}"), &body).await;
                    (i, answer.status.as_u16(), answer.body)
                })
            })
            .collect();
        let mut answers = Vec::new();
        for w in writers {
            answers.push(w.await.unwrap());
        }
        let mut sum = 0.0;
        let mut numbers = Vec::new();
        for (i, status, body) in &answers {
            match i % 4 {
                0 | 1 => {
                    assert_eq!(*status, 201, "{body}");
                    assert_eq!(body["amount"], format!("{i}.25"));
                    sum += *i as f64 + 0.25;
                    numbers.push(body["number"].as_str().unwrap().to_owned());
                    let path = format!("/api/records/order/{}/history", id(body));
                    let history = app.get(&path).await.expect(200);
                    let items = history.body["items"].as_array().unwrap();
                    assert_eq!(items.len(), 1);
                    assert_eq!(items[0]["changes"]["amount"]["new"], format!("{i}.25"));
                }
                2 => assert!([201, 409].contains(status), "{status} {body}"),
                _ => assert_eq!(*status, 422, "{body}"),
            }
        }
        // One of the ten with the same unique email won; the others name the field.
        let same: Vec<_> = answers.iter().filter(|(i, _, _)| i % 4 == 2).collect();
        assert_eq!(same.iter().filter(|(_, s, _)| *s == 201).count(), 1);
        for (_, _, body) in same.iter().filter(|(_, s, _)| *s == 409) {
            assert_eq!(body["errors"][0]["field"], "email", "{body}");
        }
        // Every order got its own number, without gaps, and the rollups count each once.
        numbers.sort();
        let expected: Vec<String> = (1..=20).map(|n| format!("SO-{n:05}")).collect();
        assert_eq!(numbers, expected);
        assert_eq!(totals(&app, &acme).await, (format!("{sum:.2}"), 20));
        let customers = app.get("/api/records/customer?count=true&limit=1").await.expect(200);
        assert_eq!(customers.body["total"], 2);
    }

    async fn rollups_follow_creates_updates_deletes_restores(app: TestApp) {
        customer_and_order(&app).await;
        let acme = id(&app.create_record("customer", &json!({"name": "Acme"})).await);
        let globex = id(&app.create_record("customer", &json!({"name": "Globex"})).await);
        assert_eq!(totals(&app, &acme).await, ("0.00".into(), 0));
        let o1 = id(&app.create_record("order", &json!({"customer": acme, "amount": "100.10"})).await);
        let o2 = id(&app.create_record("order", &json!({"customer": acme, "amount": "0.20"})).await);
        let o3 = id(&app.create_record("order", &json!({"customer": globex, "amount": "5"})).await);
        assert_eq!(totals(&app, &acme).await, ("100.30".into(), 2));
        assert_eq!(totals(&app, &globex).await, ("5.00".into(), 1));
        // Update the amount.
        app.patch(&format!("/api/records/order/{o1}"), &json!({"amount": "200"})).await.expect(200);
        assert_eq!(totals(&app, &acme).await, ("200.20".into(), 2));
        // Move an order to another customer.
        app.patch(&format!("/api/records/order/{o2}"), &json!({"customer": globex})).await.expect(200);
        assert_eq!(totals(&app, &acme).await, ("200.00".into(), 1));
        assert_eq!(totals(&app, &globex).await, ("5.20".into(), 2));
        // Delete, restore, erase.
        app.delete(&format!("/api/records/order/{o3}")).await.expect(204);
        assert_eq!(totals(&app, &globex).await, ("0.20".into(), 1));
        app.post(&format!("/api/records/order/{o3}/restore"), &json!({})).await.expect(200);
        assert_eq!(totals(&app, &globex).await, ("5.20".into(), 2));
        app.delete(&format!("/api/records/order/{o3}?permanent=true")).await.expect(204);
        assert_eq!(totals(&app, &globex).await, ("0.20".into(), 1));
        // Clearing the lookup takes it out.
        app.patch(&format!("/api/records/order/{o1}"), &json!({"customer": null})).await.expect(200);
        assert_eq!(totals(&app, &acme).await, ("0.00".into(), 0));
        // Rollups can be filtered and sorted on like any column.
        let page = app.get("/api/records/customer?sort=-total&filter=total%20%3E%200").await.expect(200);
        assert_eq!(page.body["items"].as_array().unwrap().len(), 1);
        assert_eq!(page.body["items"][0]["name"], "Globex");
    }

    async fn formulas_are_computed_stored_and_queryable(app: TestApp) {
        customer_and_order(&app).await;
        let o = app.create_record("order", &json!({"price": "19.99", "quantity": 3})).await;
        assert_eq!(o["line_total"], "59.97");
        let path = format!("/api/records/order/{}", id(&o));
        let updated = app.patch(&path, &json!({"quantity": 4})).await.expect(200);
        assert_eq!(updated.body["line_total"], "79.96");
        let cleared = app.patch(&path, &json!({"price": null})).await.expect(200);
        assert_eq!(cleared.body["line_total"], Value::Null);
        app.create_record("order", &json!({"price": "1", "quantity": 1})).await;
        app.create_record("order", &json!({"price": "2.5", "quantity": 10})).await;
        let page = app.get("/api/records/order?filter=line_total%20%3E%3D%201&sort=-line_total").await.expect(200);
        let values: Vec<&str> = page.body["items"].as_array().unwrap().iter().map(|r| r["line_total"].as_str().unwrap()).collect();
        assert_eq!(values, ["25.00", "1.00"]);
        // Changing the formula recomputes every record.
        let changed = app
            .patch("/api/entities/order/fields/line_total", &json!({"x-formula": "round(price * quantity * 1.1, 2)"}))
            .await
            .expect(200);
        assert!(changed.body["changes"].as_array().unwrap().iter().any(|c| c["action"] == "recompute"));
        let page = app.get("/api/records/order?sort=-line_total&limit=1").await.expect(200);
        assert_eq!(page.body["items"][0]["line_total"], "27.50");
        // A formula of another type, inferred.
        app.post("/api/entities/order/fields", &json!({"name": "big", "x-kind": "formula", "x-formula": "quantity >= 10"})).await.expect(201);
        let page = app.get("/api/records/order?filter=big").await.expect(200);
        assert_eq!(page.body["items"].as_array().unwrap().len(), 1);
        // Formulas and rollups cannot be written.
        app.patch(&path, &json!({"line_total": "1"})).await.expect(422);
        // A formula that does not check is refused with its position.
        let bad = app
            .post("/api/entities/order/fields", &json!({"name": "oops", "x-kind": "formula", "x-formula": "price * "}))
            .await
            .expect(422);
        assert!(bad.body["errors"][0]["message"].as_str().unwrap().contains("position"), "{}", bad.body);
        let circular = app
            .put("/api/entities/order", &{
                let mut doc = app.get("/api/entities/order").await.body;
                doc["schema"]["properties"]["f1"] = json!({"x-kind": "formula", "x-formula": "f2 + 1"});
                doc["schema"]["properties"]["f2"] = json!({"x-kind": "formula", "x-formula": "f1 + 1"});
                doc
            })
            .await
            .expect(422);
        assert!(circular.body["detail"].as_str().is_some());
    }

    async fn merge_repoints_everything(app: TestApp) {
        customer_and_order(&app).await;
        app.create_entity(&json!({
            "name": "campaign", "label": {"en": "Campaign", "zh-CN": "活动"},
            "schema": {"properties": {
                "title": {"x-kind": "text"},
                "members": {"x-kind": "multi_lookup", "x-target": "customer"}
            }}
        }))
        .await;
        let keep = app.create_record("customer", &json!({"name": "华为", "tags": ["vip"]})).await;
        let dup1 = app.create_record("customer", &json!({"name": "华为技术", "phone": "0755-28780808", "tags": ["tech"]})).await;
        let dup2 = app.create_record("customer", &json!({"name": "Huawei", "email": "hw@huawei.com"})).await;
        let child = app.create_record("customer", &json!({"name": "分部", "parent": dup1["id"]})).await;
        let orders: Vec<String> = futures::future::join_all(
            [&keep, &dup1, &dup2, &dup2].iter().map(|c| {
                let app = app.clone();
                let cid = c["id"].clone();
                async move { id(&app.create_record("order", &json!({"customer": cid, "amount": "10"})).await) }
            }),
        )
        .await;
        let campaign = app
            .create_record("campaign", &json!({"title": "春季", "members": [dup1["id"], keep["id"], dup2["id"]]}))
            .await;
        let merged = app
            .post(
                "/api/records/customer/merge",
                &json!({"target": keep["id"], "sources": [dup1["id"], dup2["id"]],
                        "take": {"phone": dup1["id"], "email": dup2["id"]}}),
            )
            .await
            .expect(200);
        let record = &merged.body["record"];
        assert_eq!(record["name"], "华为");
        assert_eq!(record["phone"], "0755-28780808");
        assert_eq!(record["email"], "hw@huawei.com");
        assert_eq!(record["tags"], json!(["tech", "vip"]));
        assert_eq!(record["total"], "40.00");
        assert_eq!(record["orders"], 4);
        // Every order, the child's parent, and the campaign now point at the target.
        for order in &orders {
            let o = app.get(&format!("/api/records/order/{order}")).await.expect(200);
            assert_eq!(o.body["customer"], keep["id"]);
        }
        let c = app.get(&format!("/api/records/customer/{}", id(&child))).await.expect(200);
        assert_eq!(c.body["parent"], keep["id"]);
        let camp = app.get(&format!("/api/records/campaign/{}", id(&campaign))).await.expect(200);
        assert_eq!(camp.body["members"], json!([keep["id"]]));
        // History shows it on every touched record.
        let h = app.get(&format!("/api/records/customer/{}/history", id(&keep))).await.expect(200);
        assert_eq!(h.body["items"][0]["action"], "merge");
        for touched in [format!("/api/records/order/{}", orders[1]), format!("/api/records/customer/{}", id(&child)), format!("/api/records/campaign/{}", id(&campaign))] {
            let h = app.get(&format!("{touched}/history")).await.expect(200);
            assert_eq!(h.body["items"][0]["action"], "update", "{touched}");
        }
        for source in [&dup1, &dup2] {
            let h = app.get(&format!("/api/records/customer/{}/history", id(source))).await.expect(200);
            assert_eq!(h.body["items"][0]["changes"]["merged_into"], keep["id"]);
        }
        // The sources are in the trash and can come back.
        app.get(&format!("/api/records/customer/{}", id(&dup1))).await.expect(404);
        let trash = app.get("/api/records/customer?trashed=true").await.expect(200);
        assert_eq!(trash.body["items"].as_array().unwrap().len(), 2);
        let back = app.post(&format!("/api/records/customer/{}/restore", id(&dup1)), &json!({})).await.expect(200);
        assert_eq!(back.body["name"], "华为技术");
        // Bad merges are refused.
        app.post("/api/records/customer/merge", &json!({"target": keep["id"], "sources": [keep["id"]]})).await.expect(422);
        app.post("/api/records/customer/merge", &json!({"target": keep["id"], "sources": [dup1["id"]], "take": {"name": keep["id"]}})).await.expect(422);
        app.post("/api/records/customer/merge", &json!({"target": keep["id"], "sources": [dup2["id"]]})).await.expect(404);
    }

    async fn copy_and_bulk(app: TestApp) {
        customer_and_order(&app).await;
        let acme = app.create_record("customer", &json!({"name": "Acme", "phone": "123", "email": "a@acme.cn", "tags": ["x"]})).await;
        let path = format!("/api/records/customer/{}/copy", id(&acme));
        app.post(&path, &json!({})).await.expect(409);
        let copy = app.post(&path, &json!({"email": "b@acme.cn", "name": "Acme 2"})).await.expect(201);
        assert_eq!(copy.body["phone"], "123");
        assert_eq!(copy.body["tags"], json!(["x"]));
        assert_ne!(copy.body["id"], acme["id"]);
        let h = app.get(&format!("/api/records/customer/{}/history", id(&copy.body))).await.expect(200);
        assert_eq!(h.body["items"][0]["changes"]["copied_from"], acme["id"]);
        for i in 0..30 {
            app.create_record("order", &json!({"amount": i, "customer": acme["id"]})).await;
        }
        let done = app
            .post("/api/records/order/bulk", &json!({"filter": "amount >= 10", "action": "update", "set": {"quantity": 7}}))
            .await
            .expect(200);
        assert_eq!(done.body["matched"], 20);
        let page = app.get("/api/records/order?filter=quantity%20%3D%207&count=true&limit=1").await.expect(200);
        assert_eq!(page.body["total"], 20);
        let one = page.body["items"][0]["id"].as_str().unwrap();
        let h = app.get(&format!("/api/records/order/{one}/history")).await.expect(200);
        assert_eq!(h.body["items"][0]["changes"]["quantity"], json!({"old": null, "new": 7}));
        let done = app
            .post("/api/records/order/bulk", &json!({"filter": "amount < 5", "action": "delete"}))
            .await
            .expect(200);
        assert_eq!(done.body["matched"], 5);
        assert_eq!(totals(&app, &id(&acme)).await.1, 25);
        app.post("/api/records/order/bulk", &json!({"filter": "", "action": "delete"})).await.expect(422);
        app.post("/api/records/order/bulk", &json!({"filter": "amount >", "action": "delete"})).await.expect(400);
        app.post("/api/records/order/bulk", &json!({"filter": "amount > 1", "action": "explode"})).await.expect(422);
        app.post("/api/records/order/bulk", &json!({"filter": "amount > 1", "action": "update", "set": {"amount": "x"}})).await.expect(422);
    }
}
