//! Statements of a transaction sent without waiting for each: while the database runs them,
//! the caller makes the next ones (and whatever else it has to compute). A large write (an
//! import's batch: the records, their history, their search rows, the rows' outcomes)
//! otherwise takes turns — our thread builds a statement while the database waits, then the
//! database runs it while our thread waits — and uses one core of two.
//!
//! On SQLite the statements sent ahead queue up, and a task on a thread of its own hands
//! each to SQLite's worker as the one before it ends (decision 034): the writer's thread does
//! not have to come back between two statements for the second to start, so a large statement
//! (a batch's FTS5 insert) runs while the writer makes all that follows it. On PostgreSQL one
//! statement runs ahead at a time, driven where the caller is.

use std::future::Future;
use std::pin::Pin;
use std::sync::OnceLock;
use std::task::Poll;

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use sqlx::postgres::PgArguments;
use sqlx::sqlite::SqliteArguments;
use sqlx::{Postgres, Sqlite};

use super::{Dialect, Sql, Tx, TxInner, map_db_error, postgres_query, sqlite_query};
use crate::error::{Error, Result};

/// A statement with its values bound, ready to run; the values moved in, not copied.
pub(super) enum Bound {
    Sqlite(sqlx::query::Query<'static, Sqlite, SqliteArguments>),
    Postgres(sqlx::query::Query<'static, Postgres, PgArguments>),
}

impl Bound {
    pub(super) fn new(dialect: Dialect, sql: Sql) -> Result<Bound> {
        Ok(match dialect {
            Dialect::Sqlite => Bound::Sqlite(sqlite_query(sql)?),
            Dialect::Postgres => Bound::Postgres(postgres_query(sql)?),
        })
    }
}

/// Statements sent ahead: they own the connection while they run and hand it back with their
/// outcome (the rows they changed, or the first one's error).
pub(super) enum Ahead {
    /// One statement, run as the caller's task is polled (PostgreSQL).
    One(Pin<Box<dyn Future<Output = (TxInner, Result<u64>)> + Send>>),
    /// Statements queued for a task that runs them in order (SQLite).
    Queued {
        queue: mpsc::Sender<Queued>,
        ran: JoinHandle<(TxInner, Result<u64>)>,
    },
}

/// What the statements' task is given on SQLite.
pub(super) enum Queued {
    Statement(Bound),
    /// Answered once every statement before it has run (dropped unanswered when one failed).
    Mark(oneshot::Sender<()>),
}

/// Statements queued ahead at most: a batch of an import sends about a hundred; the caller
/// waits when it is this far ahead.
const QUEUED_AT_MOST: usize = 256;

/// The thread whose runtime hands queued statements to SQLite's worker. Its work is small (a
/// message per statement each way); it is apart so that it goes on while the writer computes.
fn statements_runtime() -> Result<&'static tokio::runtime::Runtime> {
    static RUNTIME: OnceLock<std::io::Result<tokio::runtime::Runtime>> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .thread_name("tessera-statements")
                .enable_all()
                .build()
        })
        .as_ref()
        .map_err(|e| Error::internal(format!("cannot start the statements' thread: {e}")))
}

/// Runs queued statements in order until the queue closes; after a failure the rest are not
/// run, and the failure is the outcome.
async fn run_queued(
    mut inner: TxInner,
    mut queued: mpsc::Receiver<Queued>,
) -> (TxInner, Result<u64>) {
    let mut changed = 0;
    while let Some(item) = queued.recv().await {
        match item {
            Queued::Statement(bound) => match run(&mut inner, bound).await {
                Ok(rows) => changed += rows,
                Err(error) => return (inner, Err(error)),
            },
            Queued::Mark(reached) => {
                let _ = reached.send(());
            }
        }
    }
    (inner, Ok(changed))
}

/// Runs a bound statement on a connection; the rows it changed.
async fn run(inner: &mut TxInner, bound: Bound) -> Result<u64> {
    match (inner, bound) {
        (TxInner::Sqlite(tx), Bound::Sqlite(query)) => Ok(query
            .execute(&mut **tx)
            .await
            .map_err(map_db_error)?
            .rows_affected()),
        (TxInner::Postgres(tx), Bound::Postgres(query)) => Ok(query
            .execute(&mut **tx)
            .await
            .map_err(map_db_error)?
            .rows_affected()),
        _ => Err(Error::internal(
            "a statement bound for one database was run on the other",
        )),
    }
}

impl Tx {
    /// Waits for the statements sent ahead, if any: the first one's error, if one failed.
    pub async fn settle(&mut self) -> Result<()> {
        let (inner, result) = match self.ahead.take() {
            None => return Ok(()),
            Some(Ahead::One(ahead)) => ahead.await,
            Some(Ahead::Queued { queue, ran }) => {
                // Closed, the queue ends the task once it has run what is in it.
                drop(queue);
                ran.await.map_err(|e| {
                    Error::internal(format!("the statements of a transaction were lost: {e}"))
                })?
            }
        };
        self.inner = Some(inner);
        self.changed_ahead += result?;
        Ok(())
    }

    /// Waits for the statements sent ahead and drops their outcome: for a caller about to roll
    /// back what they wrote (after another error).
    pub async fn discard_ahead(&mut self) {
        if let Err(error) = self.settle().await {
            tracing::debug!(%error, "a statement sent ahead failed before a rollback");
        }
    }

    /// The outcome of a job's work, which may have left statements running: with them all run
    /// (and their error, if one failed), or, when the work failed, with them dropped.
    pub(super) async fn settled<T>(&mut self, work: Result<T>) -> Result<T> {
        match work {
            Ok(value) => self.settle().await.map(|()| value),
            Err(error) => {
                self.discard_ahead().await;
                Err(error)
            }
        }
    }

    fn take_connection(&mut self) -> Result<TxInner> {
        self.inner
            .take()
            .ok_or_else(|| Error::internal("a transaction lost its connection"))
    }

    /// The connection, once the statements sent ahead have run.
    pub(super) async fn connection(&mut self) -> Result<&mut TxInner> {
        self.settle().await?;
        self.inner
            .as_mut()
            .ok_or_else(|| Error::internal("a transaction lost its connection"))
    }

    /// Runs a bound statement; the rows it changed.
    pub(super) async fn execute_bound(&mut self, bound: Bound) -> Result<u64> {
        self.count_statement();
        run(self.connection().await?, bound).await
    }

    /// Sends a statement ahead: the database runs it after those sent before it, while the
    /// caller goes on. Its error comes back from the transaction's next use.
    pub async fn send(&mut self, sql: Sql) -> Result<()> {
        // Bound while the statements before still run.
        let bound = Bound::new(self.dialect, sql)?;
        self.count_statement();
        if let Some(Ahead::Queued { queue, .. }) = &self.ahead {
            match queue.send(Queued::Statement(bound)).await {
                Ok(()) => return Ok(()),
                // The task stopped at a failed statement: that failure is the answer.
                Err(_) => {
                    self.settle().await?;
                    return Err(Error::internal("a statement was sent after a failed one"));
                }
            }
        }
        self.settle().await?;
        if self.dialect == Dialect::Sqlite {
            let runtime = statements_runtime()?;
            let inner = self.take_connection()?;
            let (queue, queued) = mpsc::channel(QUEUED_AT_MOST);
            // Room for the first one: the channel is new.
            let _ = queue.try_send(Queued::Statement(bound));
            let ran = runtime.spawn(run_queued(inner, queued));
            self.ahead = Some(Ahead::Queued { queue, ran });
            return Ok(());
        }
        let mut inner = self.take_connection()?;
        let mut ahead: Pin<Box<dyn Future<Output = (TxInner, Result<u64>)> + Send>> =
            Box::pin(async move {
                let result = run(&mut inner, bound).await;
                (inner, result)
            });
        // One poll hands the statement to PostgreSQL's socket; the answer is awaited by the
        // transaction's next use.
        match futures_util::poll!(ahead.as_mut()) {
            Poll::Ready((inner, result)) => {
                self.inner = Some(inner);
                self.changed_ahead += result?;
            }
            Poll::Pending => self.ahead = Some(Ahead::One(ahead)),
        }
        Ok(())
    }

    /// SQLite: commits what the transaction wrote without waiting for it: `COMMIT` goes after
    /// the statements sent ahead, and the receiver hears once it is made (or is dropped
    /// unanswered if a statement before it, or the commit, failed: that error comes back from
    /// the transaction's next use). The work registered to run after the commit comes with
    /// it, for the caller to run then. The connection stays with the transaction, outside any
    /// transaction of SQLite's, until the caller begins again ([`Tx::begin_again`]) or closes
    /// it ([`Tx::close`]): the next transaction's statements can queue up behind the commit.
    pub(super) async fn commit_ahead(
        &mut self,
    ) -> Result<(oneshot::Receiver<()>, Vec<super::AfterCommit>)> {
        if self.dialect != Dialect::Sqlite {
            return Err(Error::internal("only SQLite's writer commits ahead"));
        }
        self.send(Sql::new("COMMIT")).await?;
        let (reached, made) = oneshot::channel();
        if let Some(Ahead::Queued { queue, .. }) = &self.ahead {
            // A closed queue drops the mark, which says the commit was not made.
            let _ = queue.send(Queued::Mark(reached)).await;
        }
        Ok((made, std::mem::take(&mut self.after_commit)))
    }

    /// Begins the next transaction after [`Tx::commit_ahead`], behind the commit.
    pub(super) async fn begin_again(&mut self) -> Result<()> {
        self.send(Sql::new("BEGIN IMMEDIATE")).await
    }

    /// Gives the connection back after [`Tx::commit_ahead`]: its driver still counts the
    /// transaction as open, so an empty one is begun for it to end.
    pub(super) async fn close(mut self) -> Result<()> {
        self.send(Sql::new("BEGIN")).await?;
        self.commit().await
    }

    /// Statements to send one after another without waiting for each (see [`Pipeline`]).
    pub fn pipeline(&mut self) -> Pipeline<'_> {
        let from = self.changed_ahead;
        Pipeline { tx: self, from }
    }
}

/// Statements of a transaction sent in order without waiting for each ([`Tx::send`]): the
/// database runs them while the caller makes the next ones. An error of a statement comes back
/// from a later `send` or from [`Pipeline::finish`] — or, for a pipeline dropped unfinished,
/// from the transaction's next use; the caller's transaction (or savepoint) then rolls back as
/// after any failed statement.
pub struct Pipeline<'t> {
    tx: &'t mut Tx,
    /// The transaction's count of rows changed ahead when the pipeline began.
    from: u64,
}

impl Pipeline<'_> {
    /// The database the statements go to.
    pub fn dialect(&self) -> Dialect {
        self.tx.dialect
    }

    /// Sends a statement ahead (see [`Tx::send`]).
    pub async fn send(&mut self, sql: Sql) -> Result<()> {
        self.tx.send(sql).await
    }

    /// Waits for the statements sent ahead; the rows all the pipeline's statements changed.
    pub async fn finish(self) -> Result<u64> {
        self.tx.settle().await?;
        Ok(self.tx.changed_ahead - self.from)
    }
}
