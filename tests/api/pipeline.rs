//! The statement pipeline (decision 027): statements sent without waiting for each still run in
//! order, all of them, and a failed one stops the rest and rolls back with its transaction.

use tessera::store::{ColumnType, Sql, SqlValue};

use crate::common::TestApp;
use crate::on_both_databases;

/// A multi-row insert of `ids` (more than a few parameters, so SQLite gets plain `?`s).
fn insert(ids: std::ops::Range<i64>) -> Sql {
    let mut sql = Sql::new("INSERT INTO pipeline_probe (id, label) VALUES ");
    for (i, id) in ids.enumerate() {
        sql.values(
            i == 0,
            [SqlValue::Integer(id), SqlValue::Text(format!("row {id}"))],
        );
    }
    sql
}

async fn rows(app: &TestApp) -> Vec<(i64, String)> {
    app.sql(
        "SELECT id, label FROM pipeline_probe ORDER BY id",
        &[ColumnType::Integer, ColumnType::Text],
    )
    .await
    .into_iter()
    .map(|r| (r[0].as_i64().unwrap(), r[1].as_str().unwrap().to_owned()))
    .collect()
}

on_both_databases! {
    async fn pipelined_statements_run_in_order_and_a_failed_one_rolls_back(app: TestApp) {
        app.ctx.db.write(|tx| Box::pin(async move {
            tx.execute(&Sql::new("CREATE TABLE pipeline_probe (id BIGINT PRIMARY KEY, label TEXT NOT NULL)")).await
        })).await.expect("the table");

        // Each statement sees the one before: the update finds the rows just inserted.
        let changed = app.ctx.db.write(|tx| Box::pin(async move {
            let mut pipe = tx.pipeline();
            pipe.send(insert(0..40)).await?;
            pipe.send(insert(40..80)).await?;
            pipe.send(Sql::new("UPDATE pipeline_probe SET label = label || ' seen' WHERE id % 2 = 0")).await?;
            pipe.finish().await
        })).await.expect("the pipelined writes");
        assert_eq!(changed, 40 + 40 + 40);
        let stored = rows(&app).await;
        assert_eq!(stored.len(), 80);
        assert_eq!(stored[0], (0, "row 0 seen".to_owned()));
        assert_eq!(stored[79], (79, "row 79".to_owned()));

        // A statement that fails (a key taken) is reported by what comes after it; nothing of
        // the transaction stays, the statements before it included.
        let failed = app.ctx.db.write(|tx| Box::pin(async move {
            let mut pipe = tx.pipeline();
            pipe.send(insert(80..100)).await?;
            pipe.send(insert(70..90)).await?;
            pipe.send(insert(100..120)).await?;
            pipe.finish().await
        })).await;
        let error = failed.expect_err("a taken key fails the write");
        assert!(error.to_string().contains("unique"), "{error}");
        let after = rows(&app).await;
        assert_eq!(after, stored, "the failed write left nothing behind");
    }

    async fn rows_sharing_values_go_in_as_plain_rows_do(app: TestApp) {
        let dialect = app.dialect();
        app.ctx.db.write(|tx| Box::pin(async move {
            tx.execute(&Sql::new(
                "CREATE TABLE shared_probe (id BIGINT PRIMARY KEY, kind TEXT NOT NULL, \
                 at TIMESTAMPTZ NOT NULL, note TEXT, label TEXT NOT NULL)",
            ))
            .await
        })).await.expect("the table");
        let at = chrono::DateTime::parse_from_rfc3339("2026-12-05T01:02:03Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        let row = |id: i64, kind: &str| {
            vec![
                SqlValue::Integer(id),
                SqlValue::Text(kind.to_owned()),
                SqlValue::Datetime(at),
                SqlValue::Null(ColumnType::Text),
                SqlValue::Text(format!("row {id}")),
            ]
        };
        let target = "shared_probe (id, kind, at, note, label)";
        // Shared kind, time and null; one row alone; then a repeated key skipped by an
        // upsert clause after the rows.
        let statements = vec![
            Sql::insert_rows(dialect, target, (1..=50).map(|id| row(id, "lead")).collect(), &[]),
            Sql::insert_rows(dialect, target, vec![row(51, "deal")], &[]),
            {
                let mut sql = Sql::insert_rows(
                    dialect,
                    target,
                    vec![row(50, "lead"), row(52, "lead")],
                    &[],
                );
                sql.push(" ON CONFLICT (id) DO NOTHING");
                sql
            },
        ];
        let changed = app.ctx.db.write(move |tx| Box::pin(async move {
            let mut pipe = tx.pipeline();
            for sql in statements {
                pipe.send(sql).await?;
            }
            pipe.finish().await
        })).await.expect("the rows");
        assert_eq!(changed, 50 + 1 + 1);
        let stored = app
            .sql(
                "SELECT id, kind, at, note, label FROM shared_probe ORDER BY id",
                &[
                    ColumnType::Integer,
                    ColumnType::Text,
                    ColumnType::Datetime,
                    ColumnType::Text,
                    ColumnType::Text,
                ],
            )
            .await;
        assert_eq!(stored.len(), 52);
        assert_eq!(stored[0], row(1, "lead"));
        assert_eq!(stored[49], row(50, "lead"));
        assert_eq!(stored[50], row(51, "deal"));
        assert_eq!(stored[51], row(52, "lead"));
    }
}
