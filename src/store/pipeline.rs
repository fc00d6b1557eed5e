//! Statements of a transaction sent without waiting for each: while the database runs one, the
//! caller makes the next one (and whatever else it has to compute). A large write (an import's
//! batch: the records, their history, their search rows, the rows' outcomes) otherwise takes
//! turns — our thread builds a statement while the database waits, then the database runs it
//! while our thread waits — and uses one core of two.

use std::future::Future;
use std::pin::Pin;
use std::task::Poll;

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

impl Tx {
    /// Runs a bound statement; the rows it changed.
    pub(super) async fn execute_bound(&mut self, bound: Bound) -> Result<u64> {
        self.count_statement();
        match (&mut self.inner, bound) {
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

    /// Statements to send one after another without waiting for each (see [`Pipeline`]).
    pub fn pipeline(&mut self) -> Pipeline<'_> {
        let dialect = self.dialect();
        Pipeline {
            dialect,
            state: Some(State::Idle(self)),
            changed: 0,
        }
    }
}

type Running<'t> = Pin<Box<dyn Future<Output = (&'t mut Tx, Result<u64>)> + Send + 't>>;

enum State<'t> {
    Idle(&'t mut Tx),
    Running(Running<'t>),
}

/// Statements of a transaction sent in order, each as soon as the one before has run:
/// [`Pipeline::send`] binds a statement, waits for the one still running, starts the new one
/// and returns while the database runs it, so the caller's next work overlaps it. An error of
/// a statement comes back from the next `send` or from [`Pipeline::finish`]; the caller's
/// transaction (or savepoint) then rolls back as after any failed statement. The transaction
/// is the pipeline's until `finish`.
pub struct Pipeline<'t> {
    dialect: Dialect,
    state: Option<State<'t>>,
    changed: u64,
}

impl<'t> Pipeline<'t> {
    /// The database the statements go to.
    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// Sends a statement once the one before it has run.
    pub async fn send(&mut self, sql: Sql) -> Result<()> {
        // Bound while the statement before still runs.
        let bound = Bound::new(self.dialect, sql)?;
        let tx = self.settle().await?;
        let mut running: Running<'t> = Box::pin(async move {
            let result = tx.execute_bound(bound).await;
            (tx, result)
        });
        // One poll hands the statement to the database (SQLite's worker thread, PostgreSQL's
        // socket); the answer is awaited by the next send or by finish.
        match futures_util::poll!(running.as_mut()) {
            Poll::Ready((tx, result)) => {
                self.state = Some(State::Idle(tx));
                self.changed += result?;
            }
            Poll::Pending => self.state = Some(State::Running(running)),
        }
        Ok(())
    }

    /// Waits for the statement still running; the transaction is free again.
    async fn settle(&mut self) -> Result<&'t mut Tx> {
        match self.state.take() {
            Some(State::Idle(tx)) => Ok(tx),
            Some(State::Running(running)) => {
                let (tx, result) = running.await;
                self.changed += result?;
                Ok(tx)
            }
            None => Err(Error::internal(
                "a statement pipeline was used after it failed",
            )),
        }
    }

    /// Waits for the last statement; the rows all the statements changed.
    pub async fn finish(mut self) -> Result<u64> {
        self.settle().await?;
        Ok(self.changed)
    }
}
