//! The server itself: health, errors as problem+json everywhere.

use serde_json::json;

use crate::on_both_databases;

on_both_databases! {
    async fn health_reports_the_database(app: TestApp) {
        let health = app.get("/api/health").await.expect(200);
        assert_eq!(health.body["status"], "ok");
        assert_eq!(health.body["database"]["reachable"], true);
        let kind = if app.backend == crate::common::Backend::Sqlite { "sqlite" } else { "postgres" };
        assert_eq!(health.body["database"]["kind"], kind);
    }

    async fn errors_are_problem_documents(app: TestApp) {
        let cases = [
            app.get("/api/nowhere").await,
            app.get("/nowhere").await,
            app.get("/api/entities/nothing").await,
            app.get("/api/records/nothing").await,
            app.request(reqwest::Method::PUT, "/api/health", None).await,
        ];
        let statuses: Vec<u16> = cases.iter().map(|r| r.status.as_u16()).collect();
        assert_eq!(statuses, [404, 404, 404, 404, 405]);
        for case in &cases {
            assert_eq!(case.header("content-type"), Some("application/problem+json"));
            assert_eq!(case.body["status"], case.status.as_u16());
            assert!(case.body["title"].is_string() && case.body["detail"].is_string());
        }

        // Malformed JSON, wrong content type, wrong JSON shape.
        let raw = app
            .client
            .post(app.url("/api/entities"))
            .header("content-type", "application/json")
            .body("{\"name\": ")
            .send()
            .await
            .unwrap();
        assert_eq!(raw.status().as_u16(), 400);
        assert_eq!(
            raw.headers()["content-type"].to_str().unwrap(),
            "application/problem+json"
        );
        let raw = app
            .client
            .post(app.url("/api/entities"))
            .header("content-type", "text/plain")
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(raw.status().as_u16(), 415);
        app.post("/api/records/nothing", &json!({})).await.expect(404);

        // Query strings are checked too.
        app.create_entity(&json!({
            "name": "note", "label": {"en": "Note", "zh-CN": "笔记"},
            "schema": {"properties": {"text": {"x-kind": "text"}}}
        }))
        .await;
        let bad = app.get("/api/records/note?limit=lots").await.expect(400);
        assert!(bad.body["detail"].as_str().unwrap().contains("limit"));
        app.get("/api/records/note?limit=0").await.expect(400);
        app.get("/api/records/note?limit=501").await.expect(400);
        app.get("/api/records/note?colour=red").await.expect(400);
        app.post("/api/entities/note/fields?dry_run=maybe", &json!({})).await.expect(400);
    }
}
