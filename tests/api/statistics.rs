//! Planner statistics stay current: a table that grows by hundreds of rows gets them without a
//! manual step, so the first list after a load already has a good plan.

use serde_json::json;
use tessera::store::{ColumnType, Dialect};

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
