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

    // Statements sent ahead belong to the transaction (decision 034): a job may return with
    // some still queued, and the job's answer waits for them; one that fails fails its own job;
    // a writer that rolls back to a savepoint after an error drops what it sent, and goes on.
    async fn statements_left_running_are_their_jobs(app: TestApp) {
        app.ctx.db.write(|tx| Box::pin(async move {
            tx.execute(&Sql::new("CREATE TABLE pipeline_probe (id BIGINT PRIMARY KEY, label TEXT NOT NULL)")).await
        })).await.expect("the table");

        // Sent and not waited for: in place once the job has answered.
        app.ctx.db.write(|tx| Box::pin(async move {
            tx.send(insert(0..40)).await?;
            tx.send(insert(40..80)).await
        })).await.expect("the writes sent ahead");
        assert_eq!(rows(&app).await.len(), 80);

        // A failure among them fails the job that sent it (from a later send, or once the job
        // has said yes); nothing of the job stays.
        let failed = app.ctx.db.write(|tx| Box::pin(async move {
            tx.send(insert(80..90)).await?;
            tx.send(insert(0..10)).await?;
            tx.send(insert(90..100)).await
        })).await;
        let error = failed.expect_err("a taken key fails the job");
        assert!(error.to_string().contains("unique"), "{error}");
        assert_eq!(rows(&app).await.len(), 80);

        // Rolled back to a savepoint after another error: the statements sent since are
        // dropped, failed or not, and the job goes on.
        app.ctx.db.write(|tx| Box::pin(async move {
            tx.execute(&Sql::new("SAVEPOINT ahead")).await?;
            tx.send(insert(100..110)).await?;
            // PostgreSQL on this machine may answer within the send, with the error.
            let _ = tx.send(insert(0..10)).await;
            tx.discard_ahead().await;
            tx.execute(&Sql::new("ROLLBACK TO SAVEPOINT ahead")).await?;
            tx.execute(&Sql::new("RELEASE SAVEPOINT ahead")).await?;
            tx.send(insert(110..120)).await?;
            tx.settle().await
        })).await.expect("the write goes on after its savepoint");
        let ids: Vec<i64> = rows(&app).await.into_iter().map(|(id, _)| id).collect();
        assert_eq!(ids, (0..80).chain(110..120).collect::<Vec<_>>());
    }

    // A job ahead leaves its last statements to its commit, and SQLite's writer begins the
    // next batch behind that commit (decision 035). Each caller still hears only once its
    // write is committed, with its work after the commit done; a job whose statement fails
    // keeps nothing, and nor does the one job begun behind it before the failure was known
    // (the writer keeps one commit on its way at most); the writer goes on after.
    async fn jobs_ahead_answer_once_committed_and_fail_alone_or_with_those_behind(app: TestApp) {
        app.ctx.db.write(|tx| Box::pin(async move {
            tx.execute(&Sql::new("CREATE TABLE pipeline_probe (id BIGINT PRIMARY KEY, label TEXT NOT NULL)")).await
        })).await.expect("the table");
        let after_commit = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        // Twelve jobs queued at once; the seventh sends a taken key.
        let jobs = (0..12i64).map(|n| {
            let db = app.ctx.db.clone();
            let after_commit = after_commit.clone();
            async move {
                let ids = if n == 6 { 0..10 } else { n * 100 + 1000..n * 100 + 1050 };
                let answer = db.write_ahead(move |tx| Box::pin(async move {
                    tx.after_commit(Box::new(move || {
                        after_commit.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    }));
                    tx.send(insert(ids.clone())).await?;
                    // PostgreSQL on this machine may answer within the send, with the error.
                    tx.send(insert(ids.end + 10..ids.end + 20)).await?;
                    Ok(n)
                })).await;
                (n, answer)
            }
        });
        app.ctx.db.write(|tx| Box::pin(async move { tx.send(insert(0..10)).await })).await.expect("the first rows");
        let answers = futures_util::future::join_all(jobs).await;
        let stored: std::collections::BTreeSet<i64> = rows(&app).await.into_iter().map(|(id, _)| id).collect();
        let mut kept = 0;
        for (n, answer) in answers {
            let own: Vec<i64> = if n == 6 {
                (20..30).collect()
            } else {
                (n * 100 + 1000..n * 100 + 1050).chain(n * 100 + 1060..n * 100 + 1070).collect()
            };
            match answer {
                Ok(answered) => {
                    assert_eq!(answered, n);
                    assert!(own.iter().all(|id| stored.contains(id)), "job {n} said yes and kept its rows");
                    kept += 1;
                }
                Err(error) => {
                    // The one begun behind it before it failed fails with it (SQLite).
                    assert!(n == 6 || n == 7, "job {n} is not the failing one or the next: {error}");
                    if n == 6 {
                        assert!(error.to_string().contains("unique"), "{error}");
                    }
                    assert!(own.iter().all(|id| !stored.contains(id)), "job {n} said no and kept nothing");
                }
            }
            assert!(n != 6 || kept == 6, "the job with a taken key fails");
        }
        assert!(kept >= 10, "the jobs but the failed one and the next are kept: {kept}");
        assert_eq!(after_commit.load(std::sync::atomic::Ordering::SeqCst), kept, "the work after each commit ran");
        assert_eq!(stored.len(), 10 + kept * 60);

        // The writer goes on.
        app.ctx.db.write_ahead(|tx| Box::pin(async move { tx.send(insert(5000..5010)).await })).await.expect("a job ahead after");
        app.ctx.db.write(|tx| Box::pin(async move { tx.send(insert(5010..5020)).await })).await.expect("a job after");
        assert_eq!(rows(&app).await.len(), 10 + kept * 60 + 20);
    }

    // On SQLite a multi-row insert is `INSERT OR FAIL` (decision 032): a row that fails keeps
    // the rows before it in the statement until the savepoint around it rolls back, as every
    // writer of such statements does on an error. Nothing of the failed statement may stay.
    async fn a_multi_row_insert_that_fails_midway_leaves_nothing_once_rolled_back(app: TestApp) {
        let dialect = app.dialect();
        app.ctx.db.write(|tx| Box::pin(async move {
            tx.execute(&Sql::new("CREATE TABLE midway_probe (id BIGINT PRIMARY KEY, label TEXT NOT NULL)")).await
        })).await.expect("the table");
        let rows_of = |ids: &[i64]| -> Vec<Vec<SqlValue>> {
            ids.iter()
                .map(|id| vec![SqlValue::Integer(*id), SqlValue::Text(format!("row {id}"))])
                .collect()
        };
        let target = "midway_probe (id, label)";
        let (first, clash, after) = (rows_of(&[1, 2, 3]), rows_of(&[10, 11, 2, 12]), rows_of(&[20, 21]));
        // Under a savepoint of its own, as an import's batch: rolled back to, and the write goes on.
        let outcome = app.ctx.db.write(move |tx| Box::pin(async move {
            tx.execute(&Sql::insert_rows(dialect, target, first, &[])).await?;
            tx.execute(&Sql::new("SAVEPOINT midway")).await?;
            let failed = tx.execute(&Sql::insert_rows(dialect, target, clash, &[])).await;
            tx.execute(&Sql::new("ROLLBACK TO SAVEPOINT midway")).await?;
            tx.execute(&Sql::new("RELEASE SAVEPOINT midway")).await?;
            tx.execute(&Sql::insert_rows(dialect, target, after, &[])).await?;
            Ok(failed.map_err(|e| e.to_string()))
        })).await.expect("the write goes on after its savepoint");
        let error = outcome.expect_err("the taken key fails the statement");
        assert!(error.contains("unique"), "{error}");
        let ids = |rows: Vec<Vec<SqlValue>>| rows.iter().map(|r| r[0].as_i64().unwrap()).collect::<Vec<_>>();
        let stored = app.sql("SELECT id FROM midway_probe ORDER BY id", &[ColumnType::Integer]).await;
        assert_eq!(ids(stored), vec![1, 2, 3, 20, 21], "rows 10 and 11 went with their statement");

        // Failing a write job: the job's own savepoint takes the rows before the clash away.
        let clash = rows_of(&[30, 31, 1, 32]);
        let failed = app.ctx.db.write(move |tx| Box::pin(async move {
            tx.execute(&Sql::insert_rows(dialect, target, clash, &[])).await
        })).await;
        assert!(failed.is_err());
        let stored = app.sql("SELECT id FROM midway_probe ORDER BY id", &[ColumnType::Integer]).await;
        assert_eq!(ids(stored), vec![1, 2, 3, 20, 21], "the failed job left nothing");
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
