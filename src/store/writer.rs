//! Group commit for SQLite. SQLite has one writer at a time, and each commit writes every page
//! it dirtied to the WAL; with a record table's indexes that is a dozen pages per record. So
//! one writer task takes the write jobs queued behind it, runs them in one transaction — each
//! under a savepoint, so a failing job rolls back alone and answers with its own error — and
//! commits once for the batch. A job's caller hears back only after the commit.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

use futures_util::FutureExt;
use sqlx::SqlitePool;
use tokio::sync::{mpsc, oneshot};

use super::{Sql, Tx};
use crate::error::{Error, Result};

/// The future of a write job, borrowing the transaction it runs in.
pub type WriteFuture<'t, T> = Pin<Box<dyn Future<Output = Result<T>> + Send + 't>>;

/// Most jobs one transaction takes.
const MAX_BATCH: usize = 64;

/// A finished job: whether it succeeded, and how to tell its caller once the batch commits.
struct Done {
    ok: bool,
    finish: Box<dyn FnOnce(Option<String>) + Send>,
}

type Run =
    Box<dyn for<'t> FnOnce(&'t mut Tx) -> Pin<Box<dyn Future<Output = Done> + Send + 't>> + Send>;

struct Job {
    run: Run,
    /// Answers the caller when the job cannot run at all.
    abandon: Box<dyn FnOnce(String) + Send>,
}

/// The handle write jobs are sent through.
#[derive(Debug, Clone)]
pub struct Writer {
    jobs: mpsc::Sender<Job>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Job")
    }
}

impl Writer {
    /// Starts the writer task on the single-connection write pool. It ends when the last
    /// handle is dropped.
    pub fn start(pool: SqlitePool, statements: Arc<AtomicU64>) -> Writer {
        let (jobs, queue) = mpsc::channel(1024);
        tokio::spawn(run(pool, queue, statements));
        Writer { jobs }
    }

    pub async fn write<T, F>(&self, job: F) -> Result<T>
    where
        T: Send + 'static,
        F: for<'t> FnOnce(&'t mut Tx) -> WriteFuture<'t, T> + Send + 'static,
    {
        let (answer, answered) = oneshot::channel::<Result<T>>();
        let answer = Arc::new(Mutex::new(Some(answer)));
        let reply = move |answer: &Arc<Mutex<Option<oneshot::Sender<Result<T>>>>>,
                          value: Result<T>| {
            if let Some(sender) = answer.lock().ok().and_then(|mut a| a.take()) {
                let _ = sender.send(value);
            }
        };
        let for_abandon = answer.clone();
        let run: Run = Box::new(move |tx: &mut Tx| {
            Box::pin(async move {
                let result = AssertUnwindSafe(job(tx)).catch_unwind().await;
                let result =
                    result.unwrap_or_else(|_| Err(Error::internal("a write job panicked")));
                let ok = result.is_ok();
                let finish = Box::new(move |commit_error: Option<String>| {
                    let value = match (result, commit_error) {
                        (Ok(_), Some(message)) => Err(Error::internal(message)),
                        (outcome, _) => outcome,
                    };
                    reply(&answer, value);
                });
                Done { ok, finish }
            })
        });
        let abandon = Box::new(move |message: String| {
            if let Some(sender) = for_abandon.lock().ok().and_then(|mut a| a.take()) {
                let _ = sender.send(Err(Error::internal(message)));
            }
        });
        self.jobs
            .send(Job { run, abandon })
            .await
            .map_err(|_| Error::internal("the database writer has stopped"))?;
        answered
            .await
            .map_err(|_| Error::internal("the database writer has stopped"))?
    }
}

async fn run(pool: SqlitePool, mut queue: mpsc::Receiver<Job>, statements: Arc<AtomicU64>) {
    while let Some(first) = queue.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let mut tx = match pool.begin_with("BEGIN IMMEDIATE").await {
            Ok(tx) => Tx::sqlite(tx, statements.clone()),
            Err(error) => {
                let message = format!("cannot start a write: {error}");
                tracing::error!("{message}");
                for job in batch {
                    (job.abandon)(message.clone());
                }
                continue;
            }
        };
        let alone = batch.len() == 1;
        let mut finished = Vec::with_capacity(batch.len());
        let mut broken = None;
        for job in batch {
            if broken.is_some() {
                (job.abandon)(broken.clone().unwrap_or_default());
                continue;
            }
            if !alone && let Err(e) = tx.execute(&Sql::new("SAVEPOINT tessera_job")).await {
                broken = Some(format!("cannot start a write: {e}"));
                (job.abandon)(broken.clone().unwrap_or_default());
                continue;
            }
            let mark = tx.after_commit_mark();
            let done = (job.run)(&mut tx).await;
            if !done.ok {
                tx.forget_after_commit(mark);
            }
            if !alone {
                let end = if done.ok {
                    tx.execute(&Sql::new("RELEASE tessera_job")).await
                } else {
                    match tx.execute(&Sql::new("ROLLBACK TO tessera_job")).await {
                        Ok(_) => tx.execute(&Sql::new("RELEASE tessera_job")).await,
                        Err(e) => Err(e),
                    }
                };
                if let Err(e) = end {
                    broken = Some(format!("a write could not be finished: {e}"));
                }
            }
            finished.push(done);
        }
        let all_failed = finished.iter().all(|d| !d.ok);
        let commit_error = if broken.is_some() || (alone && all_failed) {
            // Nothing worth keeping, or the transaction is in an unknown state: roll back.
            drop(tx);
            broken
        } else {
            tx.commit()
                .await
                .err()
                .map(|e| format!("the write could not be committed: {e}"))
        };
        for done in finished {
            (done.finish)(commit_error.clone());
        }
    }
}
