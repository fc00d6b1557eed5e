//! Forms and views: stored, checked against their entity and the caller's field access,
//! versioned, shared or personal.

use serde_json::{Value, json};

use crate::common::TestApp;
use crate::on_both_databases;

fn fields_of(body: &Value) -> Vec<String> {
    body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap().to_owned())
        .collect()
}

async fn deal_entity(app: &TestApp) {
    app.create_entity(&json!({
        "name": "deal", "label": {"en": "Deal", "zh-CN": "交易"},
        "schema": {"properties": {
            "title": {"x-kind": "text"},
            "stage": {"x-kind": "select", "x-options": [{"value": "open"}, {"value": "won"}]},
            "amount": {"x-kind": "money"},
            "close": {"x-kind": "date"},
            "notes": {"x-kind": "long_text"},
            "secret": {"x-kind": "text"}
        }}
    }))
    .await;
}

/// A user who reads deals but not their `secret`.
async fn reader(app: &TestApp, email: &str) -> TestApp {
    let role = app
        .post(
            "/api/roles",
            &json!({"name": format!("reader_{}", email.len()), "permissions": {
        "entities": {"deal": {"read": "all", "create": "own", "update": "own",
                              "fields": {"secret": "hidden"}}}}}),
        )
        .await
        .expect(201)
        .body;
    app.post(
        "/api/users",
        &json!({"email": email, "password": "a long password 1",
                                    "roles": [role["name"]]}),
    )
    .await
    .expect(201);
    app.login(email, "a long password 1").await
}

on_both_databases! {
    async fn forms_are_checked_versioned_and_served_per_reader(app: TestApp) {
        deal_entity(&app).await;
        let bad = app.post("/api/entities/deal/forms", &json!({"name": "default", "sections": [
            {"columns": 5, "fields": ["title", "nope", "title", {"field": "stage", "span": 9}]}
        ]})).await.expect(422);
        let mut fields = fields_of(&bad.body);
        fields.sort();
        assert_eq!(fields, ["sections.0.columns", "sections.0.fields.1.field", "sections.0.fields.2.field",
                            "sections.0.fields.3.span"]);
        let form = json!({"name": "default", "label": {"en": "Deal", "zh-CN": "交易"}, "sections": [
            {"title": {"en": "Basics", "zh-CN": "基本信息"}, "columns": 2,
             "fields": ["title", {"field": "stage", "help": {"en": "Where it stands", "zh-CN": "当前阶段"}},
                        "amount", "secret", {"field": "owner", "label": {"en": "Owner", "zh-CN": "负责人"}}]},
            {"columns": 1, "fields": ["notes"]}
        ]});
        let created = app.post("/api/entities/deal/forms", &form).await.expect(201);
        assert_eq!(created.header("etag"), Some("\"1\""));
        assert_eq!(created.body["sections"][0]["fields"][1]["help"]["zh-CN"], "当前阶段");
        app.post("/api/entities/deal/forms", &form).await.expect(409);
        let stale = app.request_with(reqwest::Method::PUT, "/api/entities/deal/forms/default", Some(&form),
                                     &[("if-match", "\"7\"")]).await;
        assert_eq!(stale.status, 412);
        // What a GET answers goes back as it is, edited.
        let mut changed = app.get("/api/entities/deal/forms/default").await.expect(200).body;
        changed["sections"][1]["fields"] = json!(["notes", "close"]);
        let saved = app.put("/api/entities/deal/forms/default", &changed).await.expect(200);
        assert_eq!(saved.body["version"], 2);
        let versions = app.get("/api/entities/deal/forms/default/versions").await.expect(200).body;
        assert_eq!(versions["items"].as_array().unwrap().len(), 2);
        assert_eq!(versions["items"][1]["document"]["sections"][1]["fields"], json!([{"field": "notes"}]));

        // A reader who may not see `secret` gets the form without it, and cannot change forms.
        let rep = reader(&app, "rep@acme.test").await;
        let served = rep.get("/api/entities/deal/forms/default").await.expect(200).body;
        let names: Vec<&str> = served["sections"][0]["fields"].as_array().unwrap().iter()
            .map(|f| f["field"].as_str().unwrap()).collect();
        assert_eq!(names, ["title", "stage", "amount", "owner"]);
        rep.put("/api/entities/deal/forms/default", &changed).await.expect(403);
        app.get("/api/entities/nothing/forms").await.expect(404);
        app.delete("/api/entities/deal/forms/default").await.expect(204);
        app.get("/api/entities/deal/forms/default").await.expect(404);
    }

    async fn views_are_checked_and_shared_or_personal(app: TestApp) {
        deal_entity(&app).await;
        let bad = app.post("/api/views", &json!({"entity": "deal", "name": "x", "kind": "list",
            "columns": ["title", "nope"], "filter": "amount >", "sort": "-nope", "page_size": 0})).await.expect(422);
        let mut fields = fields_of(&bad.body);
        fields.sort();
        assert_eq!(fields, ["columns.1", "filter", "page_size", "sort"]);
        let bad = app.post("/api/views", &json!({"entity": "deal", "name": "board", "kind": "kanban",
            "group_by": "title", "card_fields": ["title"], "sum": "title"})).await.expect(422);
        let mut fields = fields_of(&bad.body);
        fields.sort();
        assert_eq!(fields, ["group_by", "sum"]);
        let bad = app.post("/api/views", &json!({"entity": "deal", "name": "cal", "kind": "calendar",
            "date_field": "amount", "columns": ["title"]})).await.expect(422);
        let mut fields = fields_of(&bad.body);
        fields.sort();
        assert_eq!(fields, ["columns", "date_field"]);
        app.post("/api/views", &json!({"entity": "nothing", "name": "x", "columns": ["a"]})).await.expect(422);

        let board = app.post("/api/views", &json!({"entity": "deal", "name": "pipeline", "kind": "kanban",
            "shared": true, "label": {"en": "Pipeline", "zh-CN": "漏斗"}, "group_by": "stage",
            "card_fields": ["title", "amount"], "sum": "amount", "filter": "stage != \"won\""})).await.expect(201).body;
        assert_eq!(board["owner"], Value::Null);
        let calendar = app.post("/api/views", &json!({"entity": "deal", "name": "closing", "kind": "calendar",
            "shared": true, "date_field": "close", "title_field": "title"})).await.expect(201).body;
        assert_eq!(calendar["kind"], "calendar");

        let rep = reader(&app, "rep@acme.test").await;
        let other = reader(&app, "other@acme.test").await;
        // Personal views need only read access; a shared one needs the schema permission.
        rep.post("/api/views", &json!({"entity": "deal", "name": "team", "shared": true, "columns": ["title"]}))
            .await.expect(403);
        let hidden = rep.post("/api/views", &json!({"entity": "deal", "name": "mine", "columns": ["title", "secret"]}))
            .await.expect(422);
        assert_eq!(fields_of(&hidden.body), ["columns.1"]);
        let mine = rep.post("/api/views", &json!({"entity": "deal", "name": "mine",
            "columns": ["title", "amount"], "sort": "-amount", "page_size": 25})).await.expect(201).body;
        assert_eq!(mine["owner"], rep.get("/api/me").await.expect(200).body["user"]["id"]);
        let names = |v: &Value| -> Vec<String> { v["items"].as_array().unwrap().iter()
            .map(|i| i["name"].as_str().unwrap().to_owned()).collect() };
        let mut seen = names(&rep.get("/api/views?entity=deal").await.expect(200).body);
        seen.sort();
        assert_eq!(seen, ["closing", "mine", "pipeline"]);
        let mut seen = names(&other.get("/api/views").await.expect(200).body);
        seen.sort();
        assert_eq!(seen, ["closing", "pipeline"], "a personal view is its owner's only");
        let mine_id = mine["id"].as_str().unwrap();
        other.get(&format!("/api/views/{mine_id}")).await.expect(404);
        other.patch(&format!("/api/views/{mine_id}"), &json!({"page_size": 10})).await.expect(404);

        // Edits are versioned; a stale version is refused; a view keeps its entity and sharing.
        let edited = rep.patch(&format!("/api/views/{mine_id}"), &json!({"columns": ["title", "stage"], "version": 1}))
            .await.expect(200).body;
        assert_eq!(edited["version"], 2);
        assert_eq!(edited["page_size"], 25);
        rep.patch(&format!("/api/views/{mine_id}"), &json!({"page_size": 10, "version": 1})).await.expect(412);
        rep.patch(&format!("/api/views/{mine_id}"), &json!({"shared": true})).await.expect(422);
        let versions = rep.get(&format!("/api/views/{mine_id}/versions")).await.expect(200).body;
        assert_eq!(versions["items"].as_array().unwrap().len(), 2);
        // Turning a kanban into a list drops the kanban's settings and needs columns.
        let board_id = board["id"].as_str().unwrap();
        app.patch(&format!("/api/views/{board_id}"), &json!({"kind": "list"})).await.expect(422);
        let list = app.patch(&format!("/api/views/{board_id}"), &json!({"kind": "list", "columns": ["title"]}))
            .await.expect(200).body;
        assert_eq!(list.get("group_by"), None);
        rep.delete(&format!("/api/views/{board_id}")).await.expect(403);
        rep.delete(&format!("/api/views/{mine_id}")).await.expect(204);
    }
}
