//! The store: the only module that writes SQL.
//!
//! `Db` holds the connection pools of one server (SQLite or PostgreSQL, chosen once at start);
//! `Tx` is a write transaction on either. Both run `Sql` values — text with `$n` placeholders
//! plus typed parameters — and return rows of `SqlValue`s decoded by the column types the caller
//! names. The database difference lives here and in `dialect`; nothing above matches on it.

pub mod auth;
pub mod automations;
mod bulk;
pub mod cells;
mod checkpoint;
pub mod dashboards;
pub mod ddl;
pub mod dialect;
pub mod entities;
mod epochs;
pub mod history;
pub mod ident;
pub mod imports;
pub mod jobs;
pub mod layouts;
pub mod mail;
mod pipeline;
pub mod query;
mod reads;
pub mod records;
pub mod reports;
pub mod search;
pub mod settings;
pub mod statistics;
pub mod tags;
pub mod templates;
pub mod value;
pub mod versions;
pub mod view_indexes;
pub mod webhooks;
pub mod writer;

use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use sqlx::postgres::{PgArguments, PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use sqlx::sqlite::{
    SqliteArguments, SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteRow, SqliteSynchronous,
};
use sqlx::{AssertSqlSafe, Postgres, Sqlite};

pub use bulk::BulkLoad;
pub use dialect::Dialect;
pub use ident::Ident;
pub use pipeline::Pipeline;
pub use value::{ColumnType, SqlValue};

use crate::error::{Error, FieldError, Result};
use value::{bind_postgres, bind_sqlite, decode_postgres, decode_sqlite};

/// One decoded row, in the order of the column types asked for.
pub type Row = Vec<SqlValue>;

/// SQL text with `$1 … $n` placeholders and the values bound to them. SQLite accepts the same
/// placeholder style as PostgreSQL, so one text serves both.
#[derive(Debug, Clone, Default)]
pub struct Sql {
    pub text: String,
    pub params: Vec<SqlValue>,
}

impl Sql {
    pub fn new(text: impl Into<String>) -> Self {
        Sql {
            text: text.into(),
            params: Vec::new(),
        }
    }

    /// Appends a parameter and returns its placeholder.
    pub fn param(&mut self, value: impl Into<SqlValue>) -> String {
        self.params.push(value.into());
        let mut placeholder = String::with_capacity(4);
        push_placeholder(&mut placeholder, self.params.len());
        placeholder
    }

    pub fn bind(mut self, value: impl Into<SqlValue>) -> Self {
        self.params.push(value.into());
        self
    }

    pub fn push(&mut self, text: &str) -> &mut Self {
        self.text.push_str(text);
        self
    }

    /// Makes room for `rows` rows of `per_row` values each (a multi-row insert), so the text
    /// and the values do not grow, and get copied, a step at a time.
    pub fn reserve_rows(&mut self, rows: usize, per_row: usize) {
        self.params.reserve(rows * per_row);
        // `$n, ` for each value, and `(), ` for each row.
        self.text.reserve(rows * (per_row * 8 + 4));
    }

    /// Appends one row of a multi-row `INSERT … VALUES`: `, ` before every row but the first,
    /// then `($1, $2, …)` with the values as parameters. Written straight into the text, since
    /// a batch of an import has tens of thousands of parameters.
    pub fn values<V: Into<SqlValue>>(&mut self, first: bool, values: impl IntoIterator<Item = V>) {
        self.values_cast(first, values, &[]);
    }

    /// [`Sql::values`], with a cast written after some of the placeholders: `(2, "::tsvector")`
    /// casts the third value.
    pub fn values_cast<V: Into<SqlValue>>(
        &mut self,
        first: bool,
        values: impl IntoIterator<Item = V>,
        casts: &[(usize, &str)],
    ) {
        if !first {
            self.text.push_str(", ");
        }
        self.text.push('(');
        for (i, value) in values.into_iter().enumerate() {
            if i > 0 {
                self.text.push_str(", ");
            }
            self.params.push(value.into());
            push_placeholder(&mut self.text, self.params.len());
            if let Some((_, cast)) = casts.iter().find(|(at, _)| *at == i) {
                self.text.push_str(cast);
            }
        }
        self.text.push(')');
    }

    /// A multi-row insert into `target` of `rows`, each in the order of the target's
    /// columns, with `casts` as in [`Sql::values_cast`]. On SQLite, a value every row shares is
    /// bound once: `INSERT INTO t (a, b, c) SELECT $1, column1, column2 FROM (VALUES ($2, $3),
    /// ($4, $5)) AS v WHERE true`. SQLite's one writer thread copies each bound text and
    /// clears each binding again, and the rows of a batch share most of theirs (the entity,
    /// the time, the actor, the import); PostgreSQL takes the plain `VALUES` form, which types
    /// each value by its column.
    ///
    /// On SQLite the statement is `INSERT OR FAIL` (decision 032): no statement journal, and a
    /// row that fails leaves the rows before it in place, so whoever sends it must roll back
    /// to a savepoint, or fail its write, when it fails.
    pub fn insert_rows(
        dialect: Dialect,
        target: &str,
        rows: Vec<Vec<SqlValue>>,
        casts: &[(usize, &str)],
    ) -> Sql {
        let width = rows.first().map_or(0, Vec::len);
        let shared: Vec<bool> = match rows.split_first() {
            Some((first, rest)) if dialect == Dialect::Sqlite && !rest.is_empty() => (0..width)
                .map(|c| rest.iter().all(|row| row.get(c) == first.get(c)))
                .collect(),
            _ => vec![false; width],
        };
        let varying = shared.iter().filter(|s| !**s).count();
        let insert = match dialect {
            Dialect::Sqlite => "INSERT OR FAIL INTO",
            Dialect::Postgres => "INSERT INTO",
        };
        if varying == width || varying == 0 {
            let mut sql = Sql::new(format!("{insert} {target} VALUES "));
            sql.reserve_rows(rows.len(), width);
            for (i, row) in rows.into_iter().enumerate() {
                sql.values_cast(i == 0, row, casts);
            }
            return sql;
        }
        let mut sql = Sql::new(format!("{insert} {target} SELECT "));
        sql.reserve_rows(rows.len(), varying);
        // And the shared values with the column list before the rows: without them the
        // values outgrew their room at the last row, and were all copied once more.
        sql.params.reserve(width - varying);
        sql.text.reserve(width * 12 + 40);
        let mut rows = rows.into_iter();
        let mut first_varying = Vec::with_capacity(varying);
        let mut column = 0;
        for (c, value) in rows.next().into_iter().flatten().enumerate() {
            if c > 0 {
                sql.text.push_str(", ");
            }
            if shared[c] {
                sql.params.push(value);
                push_placeholder(&mut sql.text, sql.params.len());
            } else {
                column += 1;
                sql.text.push_str("column");
                push_number(&mut sql.text, column);
                first_varying.push(value);
            }
            if let Some((_, cast)) = casts.iter().find(|(at, _)| *at == c) {
                sql.text.push_str(cast);
            }
        }
        sql.text.push_str(" FROM (VALUES ");
        sql.values(true, first_varying);
        for row in rows {
            let own = row.into_iter().zip(&shared).filter(|(_, s)| !**s);
            sql.values(false, own.map(|(value, _)| value));
        }
        // `WHERE true` lets an upsert clause follow (SQLite's grammar would read its `ON` as
        // a join's).
        sql.text.push_str(") AS v WHERE true");
        sql
    }
}

/// Appends `$n`. A batch of an import writes tens of thousands of placeholders, and the
/// formatting machinery of `write!` cost more than the rest of building the statements.
fn push_placeholder(text: &mut String, n: usize) {
    text.push('$');
    push_number(text, n);
}

/// Appends `n` in decimal digits.
fn push_number(text: &mut String, n: usize) {
    let mut power = 1;
    while power <= n / 10 {
        power *= 10;
    }
    while power > 0 {
        // A decimal digit: always an ASCII character.
        text.push(char::from(b'0' + (n / power % 10) as u8));
        power /= 10;
    }
}

/// The page size of a SQLite database created by Tessera (decision 031).
const NEW_DATABASE_PAGE_SIZE: u32 = 8192;

/// The server's database: the pools of one of the two backends, and a count of the
/// statements run (for tests and metrics: a page costs a fixed number of statements).
#[derive(Clone, Debug)]
pub struct Db {
    pools: Pools,
    statements: Arc<AtomicU64>,
    /// SQLite's group-commit writer; PostgreSQL writes concurrently.
    writer: Option<writer::Writer>,
    /// Reads of the epochs, shared by the requests that wait at the same time.
    epochs: epochs::SharedEpochs,
    /// Bulk loads running (SQLite's writer keeps a larger page cache meanwhile).
    bulk: bulk::BulkLoads,
}

#[derive(Clone, Debug)]
enum Pools {
    /// SQLite allows one writer at a time; a dedicated single-connection pool queues writers
    /// in the application instead of letting them spin on the busy timeout.
    Sqlite {
        /// Statements outside a transaction (`Db::fetch_all`).
        reads: reads::Reads,
        /// Checkpoints and backups.
        read: SqlitePool,
        write: SqlitePool,
    },
    Postgres(PgPool),
}

/// Where a `Db` connects to, parsed from a URL.
#[derive(Debug, Clone)]
pub enum DbTarget {
    Sqlite(SqliteConnectOptions),
    Postgres(PgConnectOptions),
}

impl DbTarget {
    pub fn parse(url: &str) -> Result<Self> {
        let bad = |e: sqlx::Error| Error::bad_request(format!("invalid database URL: {e}"));
        if url.starts_with("sqlite:") {
            Ok(DbTarget::Sqlite(
                SqliteConnectOptions::from_str(url).map_err(bad)?,
            ))
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            let mut options = PgConnectOptions::from_str(url).map_err(bad)?;
            // TLS to a server on this machine protects nothing, and costs more than its
            // encryption: sqlx sends a statement larger than one TLS record (16 KB, a batch of
            // an import) as several writes without TCP_NODELAY, and the last one waits for the
            // server's delayed acknowledgement, 40 ms a statement. Asked for, it stays.
            let asked = url.contains("sslmode=") || std::env::var_os("PGSSLMODE").is_some();
            if !asked && matches!(options.get_host(), "localhost" | "127.0.0.1" | "::1") {
                options = options.ssl_mode(sqlx::postgres::PgSslMode::Disable);
            }
            Ok(DbTarget::Postgres(options))
        } else {
            Err(Error::bad_request(
                "the database URL must start with sqlite: or postgres:",
            ))
        }
    }
}

impl Db {
    fn new(pools: Pools) -> Db {
        let statements = Arc::new(AtomicU64::new(0));
        let writer = match &pools {
            Pools::Sqlite { write, read, .. } => {
                let commits = checkpoint::start(read.clone());
                Some(writer::Writer::start(
                    write.clone(),
                    statements.clone(),
                    commits,
                ))
            }
            Pools::Postgres(_) => None,
        };
        Db {
            pools,
            statements,
            writer,
            epochs: epochs::SharedEpochs::default(),
            bulk: bulk::BulkLoads::default(),
        }
    }

    /// Runs a write job in a transaction and commits it. On SQLite the job joins the writer's
    /// next batch (group commit); its result arrives once the batch is committed. Jobs must not
    /// start another write.
    pub async fn write<T, F>(&self, job: F) -> Result<T>
    where
        T: Send + 'static,
        F: for<'t> FnOnce(&'t mut Tx) -> writer::WriteFuture<'t, T> + Send + 'static,
    {
        match &self.writer {
            Some(writer) => writer.write(job).await,
            None => {
                let mut tx = self.begin().await?;
                let value = job(&mut tx).await?;
                tx.commit().await?;
                Ok(value)
            }
        }
    }

    /// Runs a write job whose last statements may be left to its commit (see
    /// [`writer::Writer::write_ahead`]): on SQLite the writer begins its next batch behind the
    /// commit. On PostgreSQL, a write as any other (its commit waits for them too).
    pub async fn write_ahead<T, F>(&self, job: F) -> Result<T>
    where
        T: Send + 'static,
        F: for<'t> FnOnce(&'t mut Tx) -> writer::WriteFuture<'t, T> + Send + 'static,
    {
        match &self.writer {
            Some(writer) => writer.write_ahead(job).await,
            None => self.write(job).await,
        }
    }

    /// Runs `item` as a write job that may share one call of `group` with other items queued
    /// under the same `key` (SQLite's writer runs them together; see [`writer`]). `group`
    /// answers each item in order, and an item it refuses must have written nothing. On
    /// PostgreSQL, which takes concurrent writers itself, each item runs alone.
    pub async fn write_together<I, T, F>(&self, key: String, item: I, group: F) -> Result<T>
    where
        I: Clone + Send + 'static,
        T: Send + 'static,
        F: for<'t> Fn(&'t mut Tx, Vec<I>) -> writer::WriteFuture<'t, Vec<Result<T>>>
            + Send
            + Sync
            + 'static,
    {
        match &self.writer {
            Some(writer) => writer.write_together(key, item, group).await,
            None => {
                let mut tx = self.begin().await?;
                let mut answers = group(&mut tx, vec![item]).await?;
                if answers.len() != 1 {
                    return Err(Error::internal(
                        "a write group answered the wrong number of jobs",
                    ));
                }
                let value = answers.remove(0)?;
                tx.commit().await?;
                Ok(value)
            }
        }
    }

    /// How many statements this server has run so far.
    pub fn statements(&self) -> u64 {
        self.statements.load(Ordering::Relaxed)
    }

    fn counted(&self) {
        self.statements.fetch_add(1, Ordering::Relaxed);
    }

    /// Opens the pools; a SQLite file is created when missing and put in WAL mode.
    pub async fn connect(target: DbTarget, max_connections: u32) -> Result<Db> {
        match target {
            DbTarget::Sqlite(options) => {
                let options = options
                    .create_if_missing(true)
                    // A new database's pages: 8 KiB instead of SQLite's 4 KiB (an existing
                    // file keeps its own; WAL mode cannot change it). Half the pages per row
                    // to split, to look up and to write into the WAL at each commit: SQLite's
                    // thread spends 7–12 % less CPU on a million-row import (decision 031).
                    .page_size(NEW_DATABASE_PAGE_SIZE)
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal)
                    .busy_timeout(Duration::from_secs(10))
                    .pragma("temp_store", "memory")
                    .pragma("cache_size", format!("-{}", bulk::LARGE_CACHE_KIB))
                    // No memory-mapped reads: a database file that grows remaps on every
                    // connection at its next read, and the unmapping costs every core a TLB
                    // flush (measured: creates 30 % slower with a 256 MB map).
                    .pragma("mmap_size", "0")
                    // No `PRAGMA optimize` as a connection closes: `crate::statistics` keeps
                    // the planner's statistics current (after bulk loads, at start, hourly).
                    // At close it counted every row of the tables an import had filled, into
                    // each connection's page cache: a `tessera import` of a million rows
                    // peaked at 204 MB instead of 159 MB in its last 0.3 s.
                    // Rows come from a connection's thread over a channel; with sqlx's 50 the
                    // thread stops and is woken every 50 rows of a page (futex waits were the
                    // largest share of an export's samples). A page fits whole now.
                    .row_buffer_size(1024);
                let write = SqlitePoolOptions::new()
                    .max_connections(1)
                    .min_connections(1)
                    .acquire_timeout(Duration::from_secs(30))
                    .connect_with(
                        options
                            .clone()
                            .pragma("cache_size", format!("-{}", bulk::WRITER_CACHE_KIB))
                            .pragma(
                                "wal_autocheckpoint",
                                checkpoint::WRITER_CHECKPOINT_PAGES.to_string(),
                            ),
                    )
                    .await?;
                let read = SqlitePoolOptions::new()
                    .max_connections(2)
                    .acquire_timeout(Duration::from_secs(30))
                    .connect_with(options.clone())
                    .await?;
                let reads = reads::Reads::new(options, max_connections.max(2) as usize);
                Ok(Db::new(Pools::Sqlite { reads, read, write }))
            }
            DbTarget::Postgres(options) => {
                let pool = PgPoolOptions::new()
                    .max_connections(max_connections)
                    .acquire_timeout(Duration::from_secs(30))
                    .connect_with(options)
                    .await?;
                Ok(Db::new(Pools::Postgres(pool)))
            }
        }
    }

    pub fn dialect(&self) -> Dialect {
        match &self.pools {
            Pools::Sqlite { .. } => Dialect::Sqlite,
            Pools::Postgres(_) => Dialect::Postgres,
        }
    }

    /// Brings the system tables up to date (`migrations/<dialect>/`, embedded at build time).
    pub async fn migrate(&self) -> Result<()> {
        match &self.pools {
            Pools::Sqlite { write, .. } => sqlx::migrate!("migrations/sqlite").run(write).await?,
            Pools::Postgres(pool) => sqlx::migrate!("migrations/postgres").run(pool).await?,
        }
        // A `tessera reindex` cut off on PostgreSQL leaves the search index without its GIN;
        // an import cut off on SQLite leaves its merges held back.
        search::restore_token_index(self).await?;
        search::resume_merges(self).await
    }

    /// A consistent copy of a SQLite database in a new file (`VACUUM INTO` reads one snapshot,
    /// so writers carry on meanwhile), checked with `PRAGMA integrity_check`. PostgreSQL has
    /// `pg_dump` for this: a `BadRequest` saying so.
    pub async fn backup_into(&self, path: &std::path::Path) -> Result<()> {
        let Pools::Sqlite { read, .. } = &self.pools else {
            return Err(Error::bad_request(
                "a PostgreSQL database is backed up with pg_dump (see docs/import-export.md)",
            ));
        };
        if path.exists() {
            return Err(Error::bad_request(format!(
                "{} exists already; a backup goes to a new file",
                path.display()
            )));
        }
        let target = path.to_string_lossy().into_owned();
        sqlx::query("VACUUM INTO $1")
            .bind(&target)
            .execute(read)
            .await
            .map_err(map_db_error)?;
        let copy = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(SqliteConnectOptions::new().filename(path).read_only(true))
            .await
            .map_err(map_db_error)?;
        let check: Vec<(String,)> = sqlx::query_as("PRAGMA integrity_check")
            .fetch_all(&copy)
            .await
            .map_err(map_db_error)?;
        copy.close().await;
        match check.first().map(|(s,)| s.as_str()) {
            Some("ok") => Ok(()),
            other => Err(Error::internal(format!(
                "the copy in {target} failed its integrity check: {}",
                other.unwrap_or("no answer")
            ))),
        }
    }

    /// A round trip to the database, for the health check.
    pub async fn ping(&self) -> Result<()> {
        self.fetch_one(
            &Sql::new("SELECT CAST(1 AS BIGINT)"),
            &[ColumnType::Integer],
        )
        .await
        .map(drop)
    }

    /// Refreshes the planner's statistics (after bulk loads and schema changes).
    pub async fn analyze(&self) -> Result<()> {
        let sql = match self.dialect() {
            Dialect::Sqlite => "PRAGMA optimize=0x10002",
            Dialect::Postgres => "ANALYZE",
        };
        self.execute(&Sql::new(sql)).await.map(drop)
    }

    pub async fn close(&self) {
        match &self.pools {
            Pools::Sqlite { reads, read, write } => {
                reads.close().await;
                read.close().await;
                write.close().await;
            }
            Pools::Postgres(pool) => pool.close().await,
        }
    }

    /// Starts a write transaction. On SQLite it takes the write lock at once (`BEGIN
    /// IMMEDIATE`), so what it reads cannot change before it writes.
    pub async fn begin(&self) -> Result<Tx> {
        Ok(match &self.pools {
            Pools::Sqlite { write, .. } => Tx::new(
                TxInner::Sqlite(write.begin_with("BEGIN IMMEDIATE").await?),
                self,
            ),
            Pools::Postgres(pool) => Tx::new(TxInner::Postgres(pool.begin().await?), self),
        })
    }

    pub async fn fetch_all(&self, sql: &Sql, columns: &[ColumnType]) -> Result<Vec<Row>> {
        self.counted();
        match &self.pools {
            Pools::Sqlite { reads, .. } => {
                let mut lease = reads.acquire().await?;
                let rows = sqlite_query(sql.clone())?
                    .fetch_all(lease.conn())
                    .await
                    .map_err(map_db_error)?;
                rows.iter().map(|r| sqlite_row(r, columns)).collect()
            }
            Pools::Postgres(pool) => {
                let rows = postgres_query(sql.clone())?
                    .fetch_all(pool)
                    .await
                    .map_err(map_db_error)?;
                rows.iter().map(|r| postgres_row(r, columns)).collect()
            }
        }
    }

    pub async fn fetch_optional(&self, sql: &Sql, columns: &[ColumnType]) -> Result<Option<Row>> {
        Ok(self.fetch_all(sql, columns).await?.into_iter().next())
    }

    pub async fn fetch_one(&self, sql: &Sql, columns: &[ColumnType]) -> Result<Row> {
        self.fetch_optional(sql, columns)
            .await?
            .ok_or_else(|| Error::internal("query returned no row"))
    }

    /// Runs one statement outside a transaction (writes go through the writer on SQLite).
    pub async fn execute(&self, sql: &Sql) -> Result<u64> {
        let mut tx = self.begin().await?;
        let n = tx.execute(sql).await?;
        tx.commit().await?;
        Ok(n)
    }
}

/// Something that runs SQL: the pools (`&Db`, reads outside a transaction) or a `Tx`. Store
/// functions that work either way take `&mut impl Executor`.
pub trait Executor: Send {
    fn dialect(&self) -> Dialect;

    fn fetch_all(
        &mut self,
        sql: &Sql,
        columns: &[ColumnType],
    ) -> impl std::future::Future<Output = Result<Vec<Row>>> + Send;

    fn execute(&mut self, sql: &Sql) -> impl std::future::Future<Output = Result<u64>> + Send;
}

impl Executor for &Db {
    fn dialect(&self) -> Dialect {
        Db::dialect(self)
    }

    async fn fetch_all(&mut self, sql: &Sql, columns: &[ColumnType]) -> Result<Vec<Row>> {
        Db::fetch_all(self, sql, columns).await
    }

    async fn execute(&mut self, sql: &Sql) -> Result<u64> {
        Db::execute(self, sql).await
    }
}

impl Executor for Tx {
    fn dialect(&self) -> Dialect {
        Tx::dialect(self)
    }

    async fn fetch_all(&mut self, sql: &Sql, columns: &[ColumnType]) -> Result<Vec<Row>> {
        Tx::fetch_all(self, sql, columns).await
    }

    async fn execute(&mut self, sql: &Sql) -> Result<u64> {
        Tx::execute(self, sql).await
    }
}

/// Runs a query whose only column is a record id and returns the ids.
pub async fn fetch_ids(ex: &mut impl Executor, sql: &Sql) -> Result<Vec<String>> {
    let rows = ex.fetch_all(sql, &[ColumnType::Id]).await?;
    Ok(rows
        .into_iter()
        .filter_map(|mut r| r.pop().and_then(SqlValue::into_text))
        .collect())
}

/// Work to do once a transaction has committed (never when it rolls back).
pub type AfterCommit = Box<dyn FnOnce() + Send>;

/// A write transaction. Dropped without `commit`, it rolls back.
///
/// A statement may be sent ahead ([`Tx::send`]): it runs while the caller goes on, and the
/// transaction's next use waits for it first, so its error comes back from that use (or from
/// [`Tx::settle`]). See `pipeline`.
pub struct Tx {
    /// The connection, or nothing while the statement sent ahead holds it.
    inner: Option<TxInner>,
    ahead: Option<pipeline::Ahead>,
    dialect: Dialect,
    /// Rows changed by the statements sent ahead so far.
    changed_ahead: u64,
    statements: Arc<AtomicU64>,
    after_commit: Vec<AfterCommit>,
}

enum TxInner {
    Sqlite(sqlx::Transaction<'static, Sqlite>),
    Postgres(sqlx::Transaction<'static, Postgres>),
}

impl Tx {
    fn new(inner: TxInner, db: &Db) -> Tx {
        Tx::with(inner, db.statements.clone())
    }

    fn sqlite(tx: sqlx::Transaction<'static, Sqlite>, statements: Arc<AtomicU64>) -> Tx {
        Tx::with(TxInner::Sqlite(tx), statements)
    }

    fn with(inner: TxInner, statements: Arc<AtomicU64>) -> Tx {
        let dialect = match &inner {
            TxInner::Sqlite(_) => Dialect::Sqlite,
            TxInner::Postgres(_) => Dialect::Postgres,
        };
        Tx {
            inner: Some(inner),
            ahead: None,
            dialect,
            changed_ahead: 0,
            statements,
            after_commit: Vec::new(),
        }
    }

    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// Commits, then runs the work registered with [`Tx::after_commit`].
    pub async fn commit(mut self) -> Result<()> {
        self.settle().await?;
        match self.inner.take() {
            Some(TxInner::Sqlite(tx)) => tx.commit().await?,
            Some(TxInner::Postgres(tx)) => tx.commit().await?,
            None => return Err(Error::internal("a transaction lost its connection")),
        }
        for work in std::mem::take(&mut self.after_commit) {
            work();
        }
        Ok(())
    }

    /// Registers work to run once this transaction commits (dropped if it rolls back).
    pub fn after_commit(&mut self, work: AfterCommit) {
        self.after_commit.push(work);
    }

    /// How much after-commit work is registered: a savepoint's mark, so a job rolled back
    /// to its savepoint can drop what it registered ([`Tx::forget_after_commit`]).
    pub(crate) fn after_commit_mark(&self) -> usize {
        self.after_commit.len()
    }

    pub(crate) fn forget_after_commit(&mut self, mark: usize) {
        self.after_commit.truncate(mark);
    }

    pub async fn execute(&mut self, sql: &Sql) -> Result<u64> {
        self.execute_bound(pipeline::Bound::new(self.dialect(), sql.clone())?)
            .await
    }

    fn count_statement(&self) {
        self.statements.fetch_add(1, Ordering::Relaxed);
    }

    pub async fn fetch_all(&mut self, sql: &Sql, columns: &[ColumnType]) -> Result<Vec<Row>> {
        self.count_statement();
        match self.connection().await? {
            TxInner::Sqlite(tx) => {
                let rows = sqlite_query(sql.clone())?
                    .fetch_all(&mut **tx)
                    .await
                    .map_err(map_db_error)?;
                rows.iter().map(|r| sqlite_row(r, columns)).collect()
            }
            TxInner::Postgres(tx) => {
                let rows = postgres_query(sql.clone())?
                    .fetch_all(&mut **tx)
                    .await
                    .map_err(map_db_error)?;
                rows.iter().map(|r| postgres_row(r, columns)).collect()
            }
        }
    }

    pub async fn fetch_optional(
        &mut self,
        sql: &Sql,
        columns: &[ColumnType],
    ) -> Result<Option<Row>> {
        Ok(self.fetch_all(sql, columns).await?.into_iter().next())
    }

    pub async fn fetch_one(&mut self, sql: &Sql, columns: &[ColumnType]) -> Result<Row> {
        self.fetch_optional(sql, columns)
            .await?
            .ok_or_else(|| Error::internal("query returned no row"))
    }

    /// Runs several statements (DDL) in order.
    pub async fn execute_all(&mut self, statements: &[Sql]) -> Result<()> {
        for sql in statements {
            self.execute(sql).await?;
        }
        Ok(())
    }
}

// Dynamic SQL is assembled only by this module from validated identifiers (`Ident`) and
// `$n` placeholders; values never enter the text. This is the one place that asserts it.
fn sqlite_query(sql: Sql) -> Result<sqlx::query::Query<'static, Sqlite, SqliteArguments>> {
    let Sql { text, params } = sql;
    let text = sqlite_text(text, params.len());
    // The arguments are made apart, room for all of them at once: a batch's statements bind
    // hundreds each.
    let mut arguments = SqliteArguments::default();
    sqlx::Arguments::reserve(&mut arguments, params.len(), 0);
    for value in params {
        bind_sqlite(&mut arguments, value)?;
    }
    Ok(sqlx::query_with(AssertSqlSafe(text), arguments))
}

/// From this many parameters on, [`sqlite_text`] sends them to SQLite as plain `?`.
const MANY_PARAMETERS: usize = 16;

/// The statement text for SQLite: when the placeholders are `$1 … $n`, each once and in order
/// (as [`Sql::param`] makes them), they become plain `?`. SQLite finds a named parameter's name
/// by walking the list of all of them, and sqlx asks for every parameter's name when it binds,
/// so a statement of a few hundred `$n` parameters (a multi-row insert) spent most of its time
/// binding; plain `?` parameters bind in order. Any other shape is left as it is.
fn sqlite_text(text: String, params: usize) -> String {
    // A few named parameters cost nothing to find; most statements keep their text as it is.
    if params <= MANY_PARAMETERS {
        return text;
    }
    // A batch's multi-row statements repeat a few texts (so many rows of records, of history,
    // of search rows): comparing with the texts rewritten last is cheaper than scanning again.
    REWRITTEN.with_borrow_mut(|recent| {
        if let Some(at) = recent.iter().position(|(from, _)| *from == text) {
            let hit = recent.remove(at);
            let answer = hit.1.clone();
            recent.push(hit);
            return answer;
        }
        let answer = rewrite_placeholders(&text, params);
        if recent.len() == REWRITTEN_KEPT {
            recent.remove(0);
        }
        recent.push((text, answer.clone()));
        answer
    })
}

/// Texts [`sqlite_text`] keeps per thread, the last used last.
const REWRITTEN_KEPT: usize = 8;

thread_local! {
    static REWRITTEN: std::cell::RefCell<Vec<(String, String)>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

/// [`sqlite_text`] without the memory of recent texts.
fn rewrite_placeholders(text: &str, params: usize) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut next = 1usize;
    let mut quote: Option<u8> = None;
    let mut copied = 0;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        match quote {
            Some(q) if b == q => quote = None,
            Some(_) => {}
            None if b == b'\'' || b == b'"' => quote = Some(b),
            None if b == b'$' && bytes.get(i + 1).is_some_and(u8::is_ascii_digit) => {
                let mut end = i + 1;
                let mut number = 0usize;
                while let Some(digit) = bytes.get(end).filter(|c| c.is_ascii_digit()) {
                    number = number
                        .saturating_mul(10)
                        .saturating_add(usize::from(digit - b'0'));
                    end += 1;
                }
                if number != next {
                    return text.to_owned();
                }
                next += 1;
                out.push_str(&text[copied..i]);
                out.push('?');
                copied = end;
                i = end;
                continue;
            }
            None => {}
        }
        i += 1;
    }
    if next - 1 != params {
        return text.to_owned();
    }
    out.push_str(&text[copied..]);
    out
}

fn postgres_query(sql: Sql) -> Result<sqlx::query::Query<'static, Postgres, PgArguments>> {
    let mut query = sqlx::query(AssertSqlSafe(sql.text));
    for value in sql.params {
        bind_postgres(&mut query, value)?;
    }
    Ok(query)
}

fn sqlite_row(row: &SqliteRow, columns: &[ColumnType]) -> Result<Row> {
    columns
        .iter()
        .enumerate()
        .map(|(i, ty)| decode_sqlite(row, i, *ty))
        .collect()
}

fn postgres_row(row: &PgRow, columns: &[ColumnType]) -> Result<Row> {
    columns
        .iter()
        .enumerate()
        .map(|(i, ty)| decode_postgres(row, i, *ty))
        .collect()
}

/// A unique-index violation becomes a 409 naming the field; everything else stays a database
/// error (logged, never shown).
fn map_db_error(error: sqlx::Error) -> Error {
    if let sqlx::Error::Database(db) = &error
        && db.is_unique_violation()
    {
        let field = unique_violation_column(db.as_ref()).unwrap_or_default();
        let message = if field.is_empty() {
            "a value that must be unique is already taken".to_owned()
        } else {
            format!("{field} must be unique; the value is already taken")
        };
        return Error::conflict(message.clone(), vec![FieldError::new(field, message)]);
    }
    Error::Database(error)
}

fn unique_violation_column(db: &dyn sqlx::error::DatabaseError) -> Option<String> {
    // SQLite: "UNIQUE constraint failed: rec_customer.email"
    if let Some(rest) = db.message().strip_prefix("UNIQUE constraint failed: ") {
        let first = rest.split(',').next()?.trim();
        return first.rsplit('.').next().map(str::to_owned);
    }
    // PostgreSQL: detail "Key (email)=(a@b.c) already exists."
    let pg = db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>()?;
    let detail = pg.detail()?;
    let start = detail.find("Key (")? + 5;
    let end = detail[start..].find(')')? + start;
    Some(detail[start..end].to_owned())
}

#[cfg(test)]
mod tests {
    use super::sqlite_text;

    #[test]
    fn sqlite_placeholders_in_order_become_anonymous() {
        let many: Vec<String> = (1..=20).map(|n| format!("(${n})")).collect();
        assert_eq!(
            sqlite_text(
                format!("INSERT INTO t (a) VALUES {} -- '$21'", many.join(", ")),
                20
            ),
            format!(
                "INSERT INTO t (a) VALUES {} -- '$21'",
                vec!["(?)"; 20].join(", ")
            )
        );
        // Few parameters keep their names (looked up cheaply).
        assert_eq!(sqlite_text("SELECT $1, $2".into(), 2), "SELECT $1, $2");
        // Reused, out of order or uncounted placeholders keep their numbers.
        let list = |numbers: &[usize]| {
            let placeholders: Vec<String> = numbers.iter().map(|n| format!("${n}")).collect();
            format!("SELECT {}", placeholders.join(", "))
        };
        let in_order: Vec<usize> = (1..=20).collect();
        let reused = list(&[in_order.as_slice(), &[1]].concat());
        let swapped = list(&[&[2, 1], &in_order[2..]].concat());
        let quoted = format!("{}, \"$21\"", list(&in_order));
        for (text, params) in [(reused, 20), (swapped, 20), (quoted, 21)] {
            assert_eq!(sqlite_text(text.clone(), params), text);
        }
        assert_eq!(sqlite_text("SELECT 1".into(), 0), "SELECT 1");
    }

    #[test]
    fn texts_rewritten_again_come_from_memory_unchanged() {
        let text = |n: usize| {
            let rows: Vec<String> = (1..=n).map(|i| format!("(${i})")).collect();
            format!("INSERT INTO t (a) VALUES {}", rows.join(", "))
        };
        // More texts than are kept, then each again: every answer is the rewrite's.
        let sizes: Vec<usize> = (17..17 + 2 * super::REWRITTEN_KEPT).collect();
        for _ in 0..2 {
            for &n in sizes.iter().chain(sizes.iter().rev()) {
                assert_eq!(
                    sqlite_text(text(n), n),
                    super::rewrite_placeholders(&text(n), n)
                );
                assert_eq!(sqlite_text(text(n), n).matches('?').count(), n);
            }
        }
        // A text left as it is stays so when it comes again.
        let reused = format!("{}, $1", text(20));
        assert_eq!(sqlite_text(reused.clone(), 20), reused);
        assert_eq!(sqlite_text(reused.clone(), 20), reused);
    }

    #[test]
    fn rows_of_an_insert_number_their_placeholders_in_order() {
        use super::{Sql, SqlValue};
        let mut sql = Sql::new("INSERT INTO t (a, b) VALUES ");
        sql.values(true, [SqlValue::Integer(1), SqlValue::Integer(2)]);
        sql.values_cast(false, [3_i64, 4], &[(1, "::tsvector")]);
        assert_eq!(
            sql.text,
            "INSERT INTO t (a, b) VALUES ($1, $2), ($3, $4::tsvector)"
        );
        assert_eq!(sql.params.len(), 4);
        assert_eq!(sql.params[2].as_i64(), Some(3));
    }

    #[test]
    fn values_every_row_shares_are_bound_once_on_sqlite() {
        use super::{ColumnType, Dialect, Sql, SqlValue};
        let rows = || {
            (1..=3)
                .map(|i| {
                    vec![
                        SqlValue::Text("lead".into()),
                        SqlValue::Integer(i),
                        SqlValue::Null(ColumnType::Text),
                        SqlValue::Text(format!("row {i}")),
                    ]
                })
                .collect::<Vec<_>>()
        };
        let sql = Sql::insert_rows(Dialect::Sqlite, "t (a, b, c, d)", rows(), &[(3, "::x")]);
        assert_eq!(
            sql.text,
            "INSERT OR FAIL INTO t (a, b, c, d) SELECT $1, column1, $2, column2::x FROM \
             (VALUES ($3, $4), ($5, $6), ($7, $8)) AS v WHERE true"
        );
        assert_eq!(sql.params.len(), 8);
        assert_eq!(sql.params[0].as_str(), Some("lead"));
        assert!(sql.params[1].is_null());
        assert_eq!(sql.params[6].as_i64(), Some(3));
        assert_eq!(sql.params[7].as_str(), Some("row 3"));
        // PostgreSQL types each value by its column: the plain form.
        let sql = Sql::insert_rows(Dialect::Postgres, "t (a, b, c, d)", rows(), &[]);
        assert!(
            sql.text
                .starts_with("INSERT INTO t (a, b, c, d) VALUES ($1, $2, $3, $4), ")
        );
        assert_eq!(sql.params.len(), 12);
        // One row, or rows alike in everything: nothing to share, or nothing to list.
        let one = Sql::insert_rows(
            Dialect::Sqlite,
            "t (a)",
            vec![vec![SqlValue::Integer(1)]],
            &[],
        );
        assert_eq!(one.text, "INSERT OR FAIL INTO t (a) VALUES ($1)");
        let alike = vec![vec![SqlValue::Integer(1)]; 2];
        let alike = Sql::insert_rows(Dialect::Sqlite, "t (a)", alike, &[]);
        assert_eq!(alike.text, "INSERT OR FAIL INTO t (a) VALUES ($1), ($2)");
    }

    #[test]
    fn placeholders_are_written_in_decimal() {
        for n in [
            0, 1, 9, 10, 11, 99, 100, 101, 999, 1000, 32_766, 65_535, 1_000_000,
        ] {
            let mut text = String::from("(");
            super::push_placeholder(&mut text, n);
            assert_eq!(text, format!("(${n}"));
        }
    }

    async fn page_size(db: &super::Db) -> Option<i64> {
        let sql = super::Sql::new("PRAGMA page_size");
        let rows = db
            .fetch_all(&sql, &[super::ColumnType::Integer])
            .await
            .ok()?;
        rows.first()?.first()?.as_i64()
    }

    #[tokio::test]
    async fn a_new_sqlite_database_has_pages_of_8_kib_and_an_old_one_keeps_its_own() {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let url = |name: &str| format!("sqlite://{}/{name}", dir.path().display());
        let target = |name: &str| super::DbTarget::parse(&url(name)).expect("a database URL");

        let new = super::Db::connect(target("new.db"), 2)
            .await
            .expect("a new database");
        new.migrate().await.expect("the system tables");
        assert_eq!(page_size(&new).await, Some(8192));
        new.close().await;

        // A database made before, with SQLite's default pages, in WAL mode as Tessera's are.
        let old = url("old.db");
        {
            use sqlx::ConnectOptions;
            use std::str::FromStr;
            let mut conn = sqlx::sqlite::SqliteConnectOptions::from_str(&old)
                .expect("a database URL")
                .create_if_missing(true)
                .page_size(4096)
                .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
                .connect()
                .await
                .expect("an old database");
            sqlx::Executor::execute(&mut conn, "CREATE TABLE kept (a INTEGER)")
                .await
                .expect("a table");
        }
        let reopened = super::Db::connect(target("old.db"), 2)
            .await
            .expect("reopened");
        assert_eq!(page_size(&reopened).await, Some(4096));
        reopened
            .migrate()
            .await
            .expect("the system tables in the old file");
        let kept = super::Sql::new("SELECT count(*) FROM kept");
        let rows = reopened
            .fetch_all(&kept, &[super::ColumnType::Integer])
            .await
            .expect("the old table is read");
        assert_eq!(rows[0][0].as_i64(), Some(0));
        reopened.close().await;
    }
}
