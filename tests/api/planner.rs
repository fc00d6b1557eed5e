//! The planner gets what it needs: statistics that stay current as a table grows (no manual
//! step before the first list), and compound indexes declared in the definition that it uses.

use serde_json::json;
use tessera::store::query::Condition;
use tessera::store::reports::{Agg, Bucket, GroupKey, GroupQuery};
use tessera::store::{ColumnType, Dialect, Ident};

use crate::common::{TestApp, eventually};
use crate::on_both_databases;

/// Whether the planner has statistics for a table.
async fn has_statistics(app: &TestApp, table: &str) -> bool {
    let sql = match app.dialect() {
        Dialect::Sqlite => format!("SELECT COUNT(*) FROM sqlite_stat1 WHERE tbl = '{table}'"),
        Dialect::Postgres => format!(
            "SELECT COUNT(*) FROM pg_stat_user_tables WHERE relname = '{table}' \
             AND (last_analyze IS NOT NULL OR last_autoanalyze IS NOT NULL)"
        ),
    };
    // sqlite_stat1 exists only once something has been analysed.
    match app
        .ctx
        .db
        .fetch_all(&tessera::store::Sql::new(sql), &[ColumnType::Integer])
        .await
    {
        Ok(rows) => rows[0][0].as_i64().unwrap_or(0) > 0,
        Err(_) => false,
    }
}

on_both_databases! {
    async fn a_table_that_grows_gets_statistics_without_a_manual_step(app: TestApp) {
        app.create_entity(&json!({"name": "deal", "label": {"en": "Deal", "zh-CN": "交易"}, "schema": {"properties": {
            "title": {"x-kind": "text"},
            "stage": {"x-kind": "select", "x-indexed": true, "x-options": [
                {"value": "new"}, {"value": "won"}, {"value": "lost"}]},
            "amount": {"x-kind": "decimal", "x-scale": 2, "x-indexed": true}}}})).await;
        assert!(!has_statistics(&app, "rec_deal").await, "a new table has none");
        let stages = ["new", "won", "lost"];
        let deals = (0..600)
            .map(|i| json!({"title": format!("deal {i}"), "stage": stages[i % 3], "amount": i * 10}))
            .collect();
        app.create_records("deal", deals).await;
        eventually(std::time::Duration::from_secs(30), "statistics of rec_deal", || async {
            has_statistics(&app, "rec_deal").await
        })
        .await;
    }
}

/// The query plan of a list query: stage equal, newest amount first.
async fn plan_of_list(app: &TestApp) -> String {
    let query = "SELECT t.\"id\" FROM \"rec_deal\" t WHERE t.\"deleted_at\" IS NULL \
                 AND t.\"stage\" = 'won' ORDER BY t.\"amount\" DESC, t.\"id\" DESC LIMIT 20";
    plan_of(app, query).await
}

async fn plan_of(app: &TestApp, query: &str) -> String {
    plan_of_statement(app, tessera::store::Sql::new(query)).await
}

/// The plan of a statement with its parameters.
async fn plan_of_statement(app: &TestApp, statement: tessera::store::Sql) -> String {
    let explain = |prefix: &str| tessera::store::Sql {
        text: format!("{prefix} {}", statement.text),
        params: statement.params.clone(),
    };
    let rows = match app.dialect() {
        // `EXPLAIN` reads no table, so SQLite does not check the schema cookie for it: a pooled
        // reader that has not run a statement since an index appeared would explain the old
        // schema. The writer made the index and ran `ANALYZE`: ask it.
        Dialect::Sqlite => {
            let mut tx = app.ctx.db.begin().await.expect("tx");
            let rows = tx
                .fetch_all(
                    &explain("EXPLAIN QUERY PLAN"),
                    &[
                        ColumnType::Integer,
                        ColumnType::Integer,
                        ColumnType::Integer,
                        ColumnType::Text,
                    ],
                )
                .await
                .expect("explain");
            drop(tx);
            rows.into_iter()
                .map(|r| r[3].as_str().unwrap_or_default().to_owned())
                .collect::<Vec<_>>()
        }
        Dialect::Postgres => {
            // A few hundred rows: without this the planner rightly prefers reading the table.
            let mut tx = app.ctx.db.begin().await.expect("tx");
            tx.execute(&tessera::store::Sql::new("SET LOCAL enable_seqscan = off"))
                .await
                .expect("set");
            let rows = tx
                .fetch_all(&explain("EXPLAIN"), &[ColumnType::Text])
                .await
                .expect("explain");
            drop(tx);
            rows.into_iter()
                .map(|r| r[0].as_str().unwrap_or_default().to_owned())
                .collect()
        }
    };
    rows.join("\n")
}

on_both_databases! {
    async fn compound_indexes_follow_the_definition_and_serve_lists(app: TestApp) {
        let created = app.create_entity(&json!({"name": "deal", "label": {"en": "Deal", "zh-CN": "交易"},
            "schema": {"x-indexes": [["stage", "-amount"]], "properties": {
                "title": {"x-kind": "text"},
                "stage": {"x-kind": "select", "x-options": [{"value": "new"}, {"value": "won"}, {"value": "lost"}]},
                "amount": {"x-kind": "decimal", "x-scale": 2}}}})).await;
        assert_eq!(created["schema"]["x-indexes"], json!([["stage", "-amount"]]));
        let names = |indexes: Vec<(String, String)>| indexes.into_iter().map(|(n, _)| n).collect::<Vec<_>>();
        let indexes = app.indexes_of("rec_deal").await;
        let (_, definition) = indexes.iter().find(|(n, _)| n == "cx_deal_stage_amount_desc")
            .unwrap_or_else(|| panic!("the compound index exists: {indexes:?}"));
        assert!(definition.contains("deleted_at"), "partial on live rows: {definition}");

        let stages = ["new", "won", "lost"];
        let deals = (0..300)
            .map(|i| json!({"title": format!("deal {i}"), "stage": stages[i % 3], "amount": i * 10}))
            .collect();
        app.create_records("deal", deals).await;
        tessera::statistics::analyze_entity(&app.ctx.db, "deal").await.expect("analyze");
        let plan = plan_of_list(&app).await;
        assert!(plan.contains("cx_deal_stage_amount_desc"), "the planner uses it: {plan}");
        assert!(!plan.to_uppercase().contains("TEMP B-TREE"), "no sort step: {plan}");
        if app.dialect() == Dialect::Sqlite {
            // A report over the index's columns reads the index alone, never the table.
            let report = "SELECT t.\"stage\", SUM(t.\"amount\") FROM \"rec_deal\" t \
                          WHERE t.\"deleted_at\" IS NULL AND t.\"stage\" >= 'a' GROUP BY 1";
            let plan = plan_of(&app, report).await;
            assert!(plan.contains("COVERING INDEX cx_deal_stage_amount_desc"), "{plan}");
        }

        // Invalid indexes are refused with the reason.
        for (indexes, field) in [
            (json!([["amount"]]), "schema.x-indexes.0"),
            (json!([["amount", "title"], ["nope", "-amount"]]), "schema.x-indexes.1"),
            (json!([["amount", "-amount"]]), "schema.x-indexes.0"),
            (json!([["title", "amount"], ["title", "amount"]]), "schema.x-indexes.1"),
        ] {
            let bad = app.post("/api/entities", &json!({"name": "bad", "label": {"en": "Bad", "zh-CN": "坏"},
                "schema": {"x-indexes": indexes, "properties": {"amount": {"x-kind": "integer"}, "title": {"x-kind": "text"}}}}))
                .await
                .expect(422);
            assert_eq!(bad.error_fields(), [field], "{indexes}");
        }

        // Renaming a field renames it in the index; removing it removes the index.
        app.patch("/api/entities/deal/fields/amount", &json!({"name": "value"})).await.expect(200);
        let after_rename = names(app.indexes_of("rec_deal").await);
        assert!(after_rename.contains(&"cx_deal_stage_value_desc".to_owned()), "{after_rename:?}");
        assert!(!after_rename.contains(&"cx_deal_stage_amount_desc".to_owned()), "{after_rename:?}");
        let definition = app.get("/api/entities/deal").await.expect(200).body;
        assert_eq!(definition["schema"]["x-indexes"], json!([["stage", "-value"]]));
        app.delete("/api/entities/deal/fields/value").await.expect(200);
        let after_removal = names(app.indexes_of("rec_deal").await);
        assert!(after_removal.iter().all(|n| !n.starts_with("cx_")), "{after_removal:?}");
    }
}

on_both_databases! {
    async fn a_saved_view_brings_its_index_and_takes_it_away(app: TestApp) {
        app.create_entity(&json!({"name": "deal", "label": {"en": "Deal", "zh-CN": "交易"},
            "schema": {"properties": {
                "title": {"x-kind": "text"},
                "stage": {"x-kind": "select", "x-options": [{"value": "new"}, {"value": "won"}, {"value": "lost"}]},
                "amount": {"x-kind": "decimal", "x-scale": 2}}}})).await;
        // One deal in ten is won: selective enough that an index beats reading the table.
        let deals = (0..300)
            .map(|i| json!({"title": format!("deal {i}"), "amount": i * 10,
                "stage": if i % 10 == 0 { "won" } else if i % 2 == 0 { "new" } else { "lost" }}))
            .collect();
        app.create_records("deal", deals).await;
        let index = "vx_deal_stage_amount_desc";
        let names = || async { app.indexes_of("rec_deal").await.into_iter().map(|(n, _)| n).collect::<Vec<_>>() };
        assert!(!names().await.contains(&index.to_owned()));

        // A personal view that filters by stage and sorts by amount: its index is built.
        let view = app.post("/api/views", &json!({"entity": "deal", "name": "won", "kind": "list",
            "columns": ["title", "amount"], "filter": "stage = \"won\"", "sort": "-amount"})).await.expect(201).body;
        let built = names().await;
        assert!(built.contains(&index.to_owned()), "the view's index exists: {built:?}");
        let (_, definition) = app.indexes_of("rec_deal").await.into_iter().find(|(n, _)| n == index).unwrap();
        assert!(definition.contains("deleted_at"), "partial on live rows: {definition}");
        tessera::statistics::analyze_entity(&app.ctx.db, "deal").await.expect("analyze");
        let plan = plan_of_list(&app).await;
        assert!(plan.contains(index), "the planner uses it: {plan}");
        assert!(!plan.to_uppercase().contains("TEMP B-TREE"), "no sort step: {plan}");
        if app.dialect() == Dialect::Sqlite {
            // A report over the index's columns reads the index alone, never the table.
            let report = "SELECT t.\"stage\", SUM(t.\"amount\") FROM \"rec_deal\" t \
                          WHERE t.\"deleted_at\" IS NULL AND t.\"stage\" >= 'a' GROUP BY 1";
            let plan = plan_of(&app, report).await;
            assert!(plan.contains(&format!("COVERING INDEX {index}")), "{plan}");
        }
        // Shown with the entity: built, and which view asked for it.
        let shown = app.get("/api/entities/deal/indexes").await.expect(200).body;
        let item = shown["items"].as_array().unwrap().iter().find(|i| i["source"] == "views").expect("listed");
        assert_eq!(item["columns"], json!(["stage", "-amount"]));
        assert_eq!(item["state"], "built");
        assert_eq!(item["views"], json!([view["id"]]));

        // A second view wanting the same index shares it; a kanban grouped by stage and sorted by
        // title wants another.
        let twin = app.post("/api/views", &json!({"entity": "deal", "name": "won2", "kind": "list", "shared": true,
            "columns": ["title"], "filter": "stage = \"won\" and amount > 5", "sort": "-amount"})).await.expect(201).body;
        app.post("/api/views", &json!({"entity": "deal", "name": "board", "kind": "kanban", "shared": true,
            "group_by": "stage", "card_fields": ["title"], "sort": "title"})).await.expect(201);
        let both = names().await;
        assert!(both.contains(&"vx_deal_stage_title".to_owned()), "{both:?}");

        // The index stays while a view needs it, and goes with the last one.
        app.delete(&format!("/api/views/{}", view["id"].as_str().unwrap())).await.expect(204);
        assert!(names().await.contains(&index.to_owned()), "the twin still needs it");
        app.delete(&format!("/api/views/{}", twin["id"].as_str().unwrap())).await.expect(204);
        assert!(!names().await.contains(&index.to_owned()), "no view needs it any more");

        // A declared index that covers a view's wish leaves no view index beside it.
        let current = app.get("/api/entities/deal").await.expect(200).body;
        let mut changed = current.clone();
        changed["schema"]["x-indexes"] = json!([["stage", "title", "amount"]]);
        app.put("/api/entities/deal", &changed).await.expect(200);
        let covered = names().await;
        assert!(!covered.contains(&"vx_deal_stage_title".to_owned()), "{covered:?}");
        assert!(covered.contains(&"cx_deal_stage_title_amount".to_owned()), "{covered:?}");

        // Only admins see the indexes.
        app.post("/api/users", &json!({"email": "rep@tessera.test", "password": "password 1234", "roles": ["read_only"]})).await.expect(201);
        let rep = app.login("rep@tessera.test", "password 1234").await;
        rep.get("/api/entities/deal/indexes").await.expect(403);
    }
}

on_both_databases! {
    async fn a_monthly_report_reads_days_in_order_from_a_compound_index(app: TestApp) {
        app.create_entity(&json!({"name": "sale", "label": {"en": "Sale", "zh-CN": "销售"},
            "schema": {"x-indexes": [["signed_on", "stage", "amount"]], "properties": {
                "stage": {"x-kind": "select", "x-options": [{"value": "new"}, {"value": "won"}, {"value": "lost"}]},
                "amount": {"x-kind": "decimal", "x-scale": 2},
                "signed_on": {"x-kind": "date"}}}})).await;
        let stages = ["new", "won", "lost"];
        let sales = (0..300)
            .map(|i| json!({"stage": stages[i % 3], "amount": i * 10,
                "signed_on": format!("2025-{:02}-{:02}", i % 12 + 1, i % 28 + 1)}))
            .collect();
        app.create_records("sale", sales).await;
        tessera::statistics::analyze_entity(&app.ctx.db, "sale").await.expect("analyze");
        let column = |name: &str| Ident::stored(name).expect("column");
        let table = Ident::stored("rec_sale").expect("table");
        let query = GroupQuery {
            table: &table,
            filter: Condition::True,
            split: None,
            keys: vec![
                GroupKey::Date { column: column("signed_on"), bucket: Bucket::Month },
                GroupKey::Column { column: column("stage"), ty: ColumnType::Text },
            ],
            aggs: vec![Agg::Count, Agg::Sum(column("amount"), ColumnType::Integer)],
            scan: None,
        };
        let (statement, _) = tessera::store::reports::statement(app.dialect(), &query);
        let plan = plan_of_statement(&app, statement).await;
        if app.dialect() == Dialect::Sqlite {
            // Days and stages come in index order, so only the months are sorted: one sort
            // step for a few dozen groups, none for the rows.
            assert!(plan.contains("COVERING INDEX cx_sale_signed_on_stage_amount"), "{plan}");
            assert_eq!(plan.to_uppercase().matches("TEMP B-TREE").count(), 1, "{plan}");
        }
    }
}

/// The SQLite writer's `cache_size` (KiB when negative).
async fn writer_cache(app: &TestApp) -> i64 {
    let rows = app
        .ctx
        .db
        .write(|tx| {
            Box::pin(async move {
                tx.fetch_all(
                    &tessera::store::Sql::new("PRAGMA cache_size"),
                    &[ColumnType::Integer],
                )
                .await
            })
        })
        .await
        .expect("cache_size");
    rows[0][0].as_i64().expect("a number")
}

on_both_databases! {
    async fn the_writer_holds_a_large_cache_while_bulk_loads_run(app: TestApp) {
        if app.dialect() == Dialect::Postgres {
            // PostgreSQL has no single writer: a bulk load changes nothing there.
            drop(app.ctx.db.bulk_load().await.expect("bulk"));
            return;
        }
        assert_eq!(writer_cache(&app).await, -16 * 1024, "small between loads");
        let first = app.ctx.db.bulk_load().await.expect("bulk");
        let second = app.ctx.db.bulk_load().await.expect("bulk");
        assert_eq!(writer_cache(&app).await, -64 * 1024, "large while one runs");
        drop(first);
        assert_eq!(writer_cache(&app).await, -64 * 1024, "still large while the second runs");
        drop(second);
        eventually(std::time::Duration::from_secs(10), "the cache back to 16 MB", || async {
            writer_cache(&app).await == -16 * 1024
        })
        .await;
    }
}
