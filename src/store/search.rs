//! The search index: one row per (record, searchable field) in `search_rows`, its tokens in an
//! FTS5 table on SQLite (rowid = the row's id) and in a `tsvector` column with a GIN index on
//! PostgreSQL. Tokens come tokenized from Rust (`search::tokens`), so both databases match the
//! same way, two-character Chinese words included.

use std::collections::{BTreeSet, HashSet};

use super::query::{self, Condition};
use super::{ColumnType, Dialect, Executor, Sql, SqlValue, Tx};
use crate::error::Result;

/// One field of one record, ready to be indexed.
#[derive(Debug, Clone)]
pub struct IndexRow {
    pub field: String,
    pub is_title: bool,
    pub title: String,
    pub body: String,
    /// The tokens, in order (phrases need positions), joined with single spaces.
    pub tokens: String,
}

/// A field of a record that matched.
#[derive(Debug, Clone)]
pub struct Found {
    pub entity: String,
    pub record_id: String,
    pub field: String,
    pub is_title: bool,
    pub title: String,
    pub body: String,
}

/// Removes a record's rows (it was trashed or erased, or is about to be indexed anew).
pub async fn remove(tx: &mut Tx, entity: &str, record_id: &str) -> Result<()> {
    if tx.dialect() == Dialect::Sqlite {
        let sql = Sql::new(
            "DELETE FROM search_fts WHERE rowid IN \
             (SELECT id FROM search_rows WHERE entity = $1 AND record_id = $2)",
        )
        .bind(entity)
        .bind(record_id);
        tx.execute(&sql).await?;
    }
    let sql = Sql::new("DELETE FROM search_rows WHERE entity = $1 AND record_id = $2")
        .bind(entity)
        .bind(record_id);
    tx.execute(&sql).await?;
    Ok(())
}

/// Replaces a record's rows with `rows`, placed where the record is (owner, department).
pub async fn replace(
    tx: &mut Tx,
    entity: &str,
    record_id: &str,
    owner: Option<&str>,
    department: Option<&str>,
    rows: &[IndexRow],
) -> Result<()> {
    remove(tx, entity, record_id).await?;
    insert(tx, entity, record_id, owner, department, rows).await
}

/// Adds a record's rows (a record new to the index: nothing to remove first).
pub async fn insert(
    tx: &mut Tx,
    entity: &str,
    record_id: &str,
    owner: Option<&str>,
    department: Option<&str>,
    rows: &[IndexRow],
) -> Result<()> {
    let placed: Vec<Placed> = rows
        .iter()
        .map(|row| Placed {
            entity,
            record_id,
            owner,
            department,
            row,
        })
        .collect();
    insert_many(tx, &placed).await
}

/// A row to index, with the record it belongs to and where that record is.
#[derive(Clone, Copy)]
pub struct Placed<'a> {
    pub entity: &'a str,
    pub record_id: &'a str,
    pub owner: Option<&'a str>,
    pub department: Option<&'a str>,
    pub row: &'a IndexRow,
}

/// Rows per statement: eight or nine parameters each, well under SQLite's limit of 32,766.
const ROWS_PER_STATEMENT: usize = 500;

/// Adds rows of records new to the index, a few statements for many rows (a create, a batch
/// of `tessera reindex`).
pub async fn insert_many(tx: &mut Tx, rows: &[Placed<'_>]) -> Result<()> {
    insert_rows(tx, rows, false).await
}

/// Adds the rows of records of one entity that have none yet (a batch of `tessera reindex`:
/// a record written since its entity's index was cleared was indexed by that write, and its
/// rows are newer than the batch's). One query per chunk finds them on SQLite; PostgreSQL
/// skips them with `ON CONFLICT`, because a large `IN` list there may get a generic plan
/// that reads every row of the entity per batch (seen with stale statistics: a rebuild of a
/// million records slowed to a few hundred a second).
pub async fn insert_unindexed(tx: &mut Tx, entity: &str, rows: &[Placed<'_>]) -> Result<()> {
    if tx.dialect() == Dialect::Postgres {
        return insert_rows(tx, rows, true).await;
    }
    let mut indexed: HashSet<String> = HashSet::new();
    let ids: Vec<&str> = rows
        .iter()
        .map(|r| r.record_id)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    for chunk in ids.chunks(ROWS_PER_STATEMENT) {
        let mut sql = Sql::default();
        let entity_param = sql.param(entity);
        let list: Vec<String> = chunk.iter().map(|id| sql.param(*id)).collect();
        sql.push(&format!(
            "SELECT DISTINCT record_id FROM search_rows WHERE entity = {entity_param} \
             AND record_id IN ({})",
            list.join(", ")
        ));
        for mut row in tx.fetch_all(&sql, &[ColumnType::Id]).await? {
            if let Some(id) = row.pop().and_then(SqlValue::into_text) {
                indexed.insert(id);
            }
        }
    }
    let missing: Vec<Placed> = rows
        .iter()
        .filter(|r| !indexed.contains(r.record_id))
        .copied()
        .collect();
    insert_rows(tx, &missing, false).await
}

async fn insert_rows(tx: &mut Tx, rows: &[Placed<'_>], skip_indexed: bool) -> Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let dialect = tx.dialect();
    // Each statement is made while the one before runs.
    let mut pipe = tx.pipeline();
    // The tokens go in first, in as few statements as SQLite takes, so that the database
    // indexes them while the rows' statements are made. FTS5 writes what it holds as a new
    // segment of its index whenever a statement opens a savepoint, and each multi-row
    // statement after its first write does: a statement per 500 rows made a segment each,
    // and then the merges of them.
    if dialect == Dialect::Sqlite {
        for (n, chunk) in rows.chunks(FTS_ROWS_PER_STATEMENT).enumerate() {
            pipe.send(fts_statement(chunk, n * FTS_ROWS_PER_STATEMENT))
                .await?;
        }
    }
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        pipe.send(rows_statement(dialect, chunk, skip_indexed))
            .await?;
    }
    // The last statement may still run when this returns: the writer's next work overlaps
    // it, and the transaction's next use waits for it (its error comes back from there).
    Ok(())
}

/// SQLite: the FTS rows of `rows`, which come after `before` others of the same insert. An FTS
/// row is named by the id of its `search_rows` row, and those ids are the ones `search_rows` is
/// about to give: it numbers rows inserted without an id from its largest id on, in order
/// (inside the write transaction nobody else inserts). The statement reads that largest id
/// itself, once: read by the writer first, it waited for every statement sent before it (a
/// batch's records), and so did everything after it.
fn fts_statement(rows: &[Placed<'_>], before: usize) -> Sql {
    let mut fts = Sql::new(
        "INSERT INTO search_fts (rowid, tokens) SELECT b.last + v.column1, v.column2 \
         FROM (SELECT COALESCE(MAX(id), 0) AS last FROM search_rows) AS b CROSS JOIN (VALUES ",
    );
    fts.reserve_rows(rows.len(), 2);
    for (i, placed) in rows.iter().enumerate() {
        fts.values(
            i == 0,
            [
                SqlValue::Integer((before + i + 1) as i64),
                SqlValue::Text(placed.row.tokens.clone()),
            ],
        );
    }
    fts.push(") AS v");
    fts
}

/// Rows of the FTS table per statement: two parameters each, under SQLite's limit of 32,766.
const FTS_ROWS_PER_STATEMENT: usize = 16_000;

/// The statement adding `rows` to `search_rows`, which numbers them itself (on SQLite, as
/// [`fts_statement`] expects).
fn rows_statement(dialect: Dialect, rows: &[Placed<'_>], skip_indexed: bool) -> Sql {
    let text = |v: Option<&str>| {
        v.map_or(SqlValue::Null(ColumnType::Id), |v| {
            SqlValue::Text(v.to_owned())
        })
    };
    let columns = match dialect {
        Dialect::Sqlite => "entity, record_id, field, is_title, title, body, owner, department",
        Dialect::Postgres => {
            "entity, record_id, field, is_title, title, body, owner, department, tokens"
        }
    };
    // PostgreSQL's tokens go in as text, cast to a `tsvector` in place.
    let casts: &[(usize, &str)] = match dialect {
        Dialect::Sqlite => &[],
        Dialect::Postgres => &[(8, "::tsvector")],
    };
    let rows = rows
        .iter()
        .map(|placed| {
            let mut values = Vec::with_capacity(9);
            values.extend([
                SqlValue::from(placed.entity),
                SqlValue::from(placed.record_id),
                SqlValue::from(placed.row.field.as_str()),
                SqlValue::Boolean(placed.row.is_title),
                SqlValue::from(placed.row.title.as_str()),
                SqlValue::from(placed.row.body.as_str()),
                text(placed.owner),
                text(placed.department),
            ]);
            if dialect == Dialect::Postgres {
                values.push(SqlValue::Text(crate::search::tokens::tsvector_literal(
                    &placed.row.tokens,
                )));
            }
            values
        })
        .collect();
    let mut sql = Sql::insert_rows(dialect, &format!("search_rows ({columns})"), rows, casts);
    if skip_indexed {
        sql.push(" ON CONFLICT (entity, record_id, field) DO NOTHING");
    }
    sql
}

/// On PostgreSQL, drops the GIN index of the tokens before a full rebuild (a no-op on SQLite).
pub async fn set_token_index_aside(db: &super::Db) -> Result<()> {
    if db.dialect() == Dialect::Postgres {
        db.execute(&Sql::new("DROP INDEX IF EXISTS search_rows_tokens"))
            .await?;
    }
    Ok(())
}

/// On PostgreSQL, builds the GIN index of the tokens if it is missing (after a rebuild, and
/// at start in case a rebuild was cut off).
pub async fn restore_token_index(db: &super::Db) -> Result<()> {
    if db.dialect() == Dialect::Postgres {
        db.execute(&Sql::new(format!(
            "CREATE INDEX IF NOT EXISTS search_rows_tokens ON search_rows USING GIN ({})",
            indexed_tokens("")
        )))
        .await?;
    }
    Ok(())
}

/// Segments of a level FTS5 merges a little at every commit, in SQLite's search index (its
/// default, kept outside bulk loads).
const AUTOMERGE_SEGMENTS: i64 = 4;

/// Pages of merge work per transaction when merges resume after a bulk load.
const MERGE_PAGES: i64 = 1_000;

/// Holds back SQLite's incremental merges of the search index while a bulk load runs. FTS5
/// otherwise merges a little of a level of four segments at every commit, and merges again
/// what it merged a few batches before; held back, it merges a level only once it has sixteen
/// segments (its "crisis merge"), in one go. Measured on a million imported rows: 28.0 s
/// instead of 29.8 s, the merges afterwards (0.5 s) included. Searches meanwhile read up to
/// sixteen segments a level instead of four.
pub async fn defer_merges(db: &super::Db) -> Result<()> {
    if db.dialect() == Dialect::Sqlite {
        db.execute(&Sql::new(
            "INSERT INTO search_fts (search_fts, rank) VALUES ('automerge', 0)",
        ))
        .await?;
    }
    Ok(())
}

/// After a bulk load (and at start, when one was cut off): SQLite's search index merges at
/// every commit again, and what waited is merged now, a transaction of work at a time, until
/// FTS5 finds nothing left to merge (its documented test: fewer than two rows changed).
pub async fn resume_merges(db: &super::Db) -> Result<()> {
    if db.dialect() != Dialect::Sqlite {
        return Ok(());
    }
    let setting = db
        .fetch_all(
            &Sql::new("SELECT v FROM search_fts_config WHERE k = 'automerge'"),
            &[ColumnType::Integer],
        )
        .await?;
    if !setting.iter().any(|row| row[0].as_i64() == Some(0)) {
        return Ok(());
    }
    db.execute(&Sql::new(format!(
        "INSERT INTO search_fts (search_fts, rank) VALUES ('automerge', {AUTOMERGE_SEGMENTS})"
    )))
    .await?;
    loop {
        let merged = db
            .write(|tx| {
                Box::pin(async move {
                    let changes = Sql::new("SELECT total_changes()");
                    let before = tx.fetch_all(&changes, &[ColumnType::Integer]).await?;
                    tx.execute(&Sql::new(format!(
                        "INSERT INTO search_fts (search_fts, rank) VALUES ('merge', {MERGE_PAGES})"
                    )))
                    .await?;
                    let after = tx.fetch_all(&changes, &[ColumnType::Integer]).await?;
                    let count = |rows: &[super::Row]| {
                        rows.first().and_then(|r| r[0].as_i64()).unwrap_or_default()
                    };
                    Ok(count(&after) - count(&before))
                })
            })
            .await?;
        if merged < 2 {
            return Ok(());
        }
    }
}

/// Index rows per block: the GIN index of PostgreSQL holds each row's block as a lexeme
/// (`#w` and the id shifted right by this), so a lookup can keep to the newest rows.
const BLOCK_SHIFT: u32 = 16;

/// What PostgreSQL's GIN index is over: the tokens and the row's block (the same expression
/// as in `migrations/postgres/0011_search_blocks.sql`, or the planner would not use it).
/// `alias` is the table's alias with its dot, or empty.
fn indexed_tokens(alias: &str) -> String {
    format!("({alias}tokens || ('#w' || ({alias}id >> {BLOCK_SHIFT})::text)::tsvector)")
}

/// The newest block of index rows, when there are at least two (a lookup within the newest
/// two then covers at least one full block and fewer rows than all).
pub async fn newest_block(ex: &mut impl Executor) -> Result<Option<i64>> {
    let rows = ex
        .fetch_all(
            &Sql::new("SELECT COALESCE(MAX(id), 0) FROM search_rows"),
            &[ColumnType::Integer],
        )
        .await?;
    let newest = rows.first().and_then(|r| r[0].as_i64()).unwrap_or_default();
    let block = newest >> BLOCK_SHIFT;
    Ok((block >= 2).then_some(block))
}

/// A lookup in the index.
#[derive(Debug, Clone, Copy)]
pub struct Lookup<'a> {
    /// The FTS5 expression (SQLite).
    pub fts: &'a str,
    /// The tsquery text (PostgreSQL).
    pub tsquery: &'a str,
    /// The fields and records the caller may see, as a condition on the index rows (alias
    /// `t`: `entity`, `field`, `owner`, `department`).
    pub allowed: &'a Condition,
    /// Title rows only, other rows only, or both.
    pub titles: Option<bool>,
    pub limit: i64,
    /// PostgreSQL: only the rows of this block and the one before it (see [`newest_block`]).
    pub newest: Option<i64>,
}

/// Whether PostgreSQL would answer a lookup by reading every match from the table and
/// sorting them (after a bitmap scan of the GIN index, or a scan of the table) rather than
/// walking the rows newest first until the limit. The planner's estimate for several tokens at once multiplies their frequencies as
/// if they were independent; the words of a phrase are not, so a phrase that matches
/// thousands of rows is taken for a rare one, and each match is read back (3,537 of them for
/// a five-character company name at a million records, 10–25 ms). Its choice tells which
/// lookups to hold to the newest blocks first.
pub async fn reads_every_match(ex: &mut impl Executor, lookup: &Lookup<'_>) -> Result<bool> {
    if ex.dialect() != Dialect::Postgres {
        return Ok(false);
    }
    let mut sql = statement(Dialect::Postgres, lookup);
    sql.text = format!("EXPLAIN {}", sql.text);
    let plan = ex.fetch_all(&sql, &[ColumnType::Text]).await?;
    // A sort node orders every match it is given; walking the primary key backwards needs none.
    let sorts = |line: &str| {
        let node = line.trim_start().trim_start_matches("->").trim_start();
        node.starts_with("Sort ") || node.starts_with("Incremental Sort ")
    };
    Ok(plan.iter().any(|line| line[0].as_str().is_some_and(sorts)))
}

/// Empties the index of one entity (before it is rebuilt).
pub async fn clear(tx: &mut Tx, entity: &str) -> Result<()> {
    if tx.dialect() == Dialect::Sqlite {
        let sql = Sql::new(
            "DELETE FROM search_fts WHERE rowid IN (SELECT id FROM search_rows WHERE entity = $1)",
        )
        .bind(entity);
        tx.execute(&sql).await?;
    }
    tx.execute(&Sql::new("DELETE FROM search_rows WHERE entity = $1").bind(entity))
        .await?;
    Ok(())
}

fn statement(dialect: Dialect, lookup: &Lookup<'_>) -> Sql {
    let mut sql = Sql::default();
    // SQLite walks the FTS matches newest first and stops at the limit (`CROSS JOIN` keeps the
    // FTS table outermost whatever the statistics say: driven from `search_rows`, every row
    // would run the match again); PostgreSQL reads the GIN posting lists into a bitmap first,
    // or walks the rows newest first when it expects many matches.
    let (from, matching, order) = match dialect {
        Dialect::Sqlite => {
            let m = sql.param(lookup.fts);
            (
                "search_fts f CROSS JOIN search_rows t ON t.id = f.rowid",
                format!("search_fts MATCH {m}"),
                "f.rowid DESC",
            )
        }
        Dialect::Postgres => {
            let tsquery = match lookup.newest {
                // The block lexemes are ours, never user input.
                Some(block) => format!("({}) & ('#w{block}' | '#w{}')", lookup.tsquery, block - 1),
                None => lookup.tsquery.to_owned(),
            };
            let m = sql.param(tsquery);
            (
                "search_rows t",
                format!("{} @@ {m}::tsquery", indexed_tokens("t.")),
                "t.id DESC",
            )
        }
    };
    let allowed = query::render(dialect, lookup.allowed, &mut sql);
    let title = match lookup.titles {
        None => String::new(),
        Some(flag) => format!(" AND t.is_title = {}", sql.param(SqlValue::Boolean(flag))),
    };
    let limit = sql.param(lookup.limit);
    sql.push(&format!(
        "SELECT t.entity, t.record_id, t.field, t.is_title, t.title, t.body FROM {from} \
         WHERE {matching} AND {allowed}{title} ORDER BY {order} LIMIT {limit}"
    ));
    sql
}

/// The matching fields, newest first.
pub async fn find(ex: &mut impl Executor, lookup: &Lookup<'_>) -> Result<Vec<Found>> {
    let sql = statement(ex.dialect(), lookup);
    let rows = ex
        .fetch_all(
            &sql,
            &[
                ColumnType::Text,
                ColumnType::Text,
                ColumnType::Text,
                ColumnType::Boolean,
                ColumnType::Text,
                ColumnType::Text,
            ],
        )
        .await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            let text = |i: usize| r[i].as_str().unwrap_or_default().to_owned();
            Found {
                entity: text(0),
                record_id: text(1),
                field: text(2),
                is_title: matches!(r[3], SqlValue::Boolean(true)),
                title: text(4),
                body: text(5),
            }
        })
        .collect())
}
