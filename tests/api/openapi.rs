//! The OpenAPI document: generated from the live schema for the caller.

use serde_json::json;

use crate::on_both_databases;

on_both_databases! {
    async fn the_document_follows_the_schema_and_the_caller(app: TestApp) {
        app.create_entity(&json!({"name": "supplier", "label": {"en": "Supplier", "zh-CN": "供应商"},
            "schema": {"properties": {
                "name": {"x-kind": "text", "maxLength": 80},
                "rating": {"x-kind": "select", "x-options": [{"value": "a"}, {"value": "b"}]},
                "credit": {"x-kind": "money"},
                "code": {"x-kind": "autonumber", "x-pattern": "S-{0000}"},
                "secret": {"x-kind": "text"}}, "required": ["name"]}})).await;
        let doc = app.get("/api/openapi.json").await.expect(200).body;
        assert_eq!(doc["openapi"], "3.1.0");
        let supplier = &doc["components"]["schemas"]["Supplier"]["properties"];
        assert_eq!(supplier["rating"]["enum"], json!(["a", "b", null]));
        assert_eq!(supplier["code"]["readOnly"], true);
        assert_eq!(supplier["credit"]["type"], json!(["string", "null"]));
        let input = &doc["components"]["schemas"]["SupplierInput"];
        assert_eq!(input["required"], json!(["name"]));
        assert_eq!(input["properties"]["name"]["maxLength"], 80);
        assert!(input["properties"].get("code").is_none(), "computed fields are not input");
        assert!(doc["paths"]["/api/records/supplier"]["post"].is_object());
        assert!(doc["paths"]["/api/records/supplier/{id}"]["patch"].is_object());
        assert!(doc["paths"]["/api/search"]["get"].is_object());
        assert_eq!(doc["components"]["securitySchemes"]["bearer"]["scheme"], "bearer");

        // A reader who may not see `secret` nor change anything gets a narrower document.
        app.post("/api/roles", &json!({"name": "viewer", "permissions": {"entities": {
            "supplier": {"create": "none", "read": "all", "update": "none", "delete": "none",
                         "fields": {"secret": "hidden", "credit": "read"}}}}})).await.expect(201);
        app.post("/api/users", &json!({"email": "v@example.test", "password": "password 1234",
            "roles": ["viewer"]})).await.expect(201);
        let viewer = app.login("v@example.test", "password 1234").await;
        let doc = viewer.get("/api/openapi.json").await.expect(200).body;
        let supplier = &doc["components"]["schemas"]["Supplier"]["properties"];
        assert!(supplier.get("secret").is_none(), "{supplier}");
        assert_eq!(supplier["credit"]["readOnly"], true);
        assert!(doc["paths"]["/api/records/supplier"].get("post").is_none());
        assert!(doc["paths"]["/api/records/supplier/{id}"].get("patch").is_none());
        assert!(!doc.to_string().contains("\"secret\""), "the hidden field is nowhere");
        // The page for people.
        let page = app.get("/api/docs").await;
        assert_eq!(page.status, 200);
        assert!(page.body.as_str().unwrap().contains("/api/records/supplier"));
    }
}
