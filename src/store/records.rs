//! SQL for records in entity tables: insert, read, update, trash, restore and erase; the join
//! tables of multi lookups; rollup upkeep; re-pointing lookups for merges. The service layer
//! hands over typed values; a [`Layout`] (built from a validated definition) supplies every
//! identifier.

use super::ddl::SYSTEM_COLUMNS;
use super::query::{self, Condition};
use super::{ColumnType, Dialect, Executor, Ident, Row, Sql, SqlValue, Tx};
use crate::error::Result;
use crate::fields::RollupOp;
use crate::schema::definition::{EntityDef, FieldDef};
use crate::schema::names::{EntityName, FieldName};

/// Positions of system columns at the start of every projected row.
pub mod pos {
    pub const ID: usize = 0;
    pub const CREATED_AT: usize = 1;
    pub const UPDATED_AT: usize = 2;
    pub const CREATED_BY: usize = 3;
    pub const OWNER: usize = 4;
    pub const DEPARTMENT: usize = 5;
    pub const VERSION: usize = 6;
    pub const DELETED_AT: usize = 7;

    /// The system values a record's JSON shows after its fields, in that order, with their
    /// positions (`deleted_at` only shows when set, `id` comes first).
    pub const SHOWN: [(&str, usize); 6] = [
        ("created_at", CREATED_AT),
        ("updated_at", UPDATED_AT),
        ("created_by", CREATED_BY),
        ("owner", OWNER),
        ("department", DEPARTMENT),
        ("version", VERSION),
    ];
}

/// The columns a query reads: always the system columns, then some or all field columns.
#[derive(Debug, Clone)]
pub struct Projection {
    columns: Vec<(Ident, ColumnType)>,
    /// Each projected field and its position in the row.
    pub fields: Vec<(FieldName, usize)>,
    column_types: Vec<ColumnType>,
    select_list: String,
}

impl Projection {
    /// The system columns plus the columns of `fields` (join-table fields have none).
    pub fn of<'a>(fields: impl IntoIterator<Item = &'a FieldDef>) -> Projection {
        let mut columns: Vec<(Ident, ColumnType)> = SYSTEM_COLUMNS
            .iter()
            .map(|(name, ty)| (Ident::fixed(name), *ty))
            .collect();
        let mut projected = Vec::new();
        for field in fields {
            if let Some(ty) = field.column_type() {
                projected.push((field.name.clone(), columns.len()));
                columns.push((Ident::column(&field.name), ty));
            }
        }
        Projection {
            column_types: columns.iter().map(|(_, t)| *t).collect(),
            select_list: columns
                .iter()
                .map(|(c, _)| format!("t.{c}"))
                .collect::<Vec<_>>()
                .join(", "),
            fields: projected,
            columns,
        }
    }

    pub fn column_types(&self) -> &[ColumnType] {
        &self.column_types
    }

    /// The columns read, in row order.
    pub fn columns(&self) -> &[(Ident, ColumnType)] {
        &self.columns
    }

    /// `t."id", t."created_at", …`
    pub fn select_list(&self) -> &str {
        &self.select_list
    }

    fn returning_list(&self) -> String {
        self.columns
            .iter()
            .map(|(c, _)| c.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Where an entity's records live and how to read them.
#[derive(Debug, Clone)]
pub struct Layout {
    pub entity: EntityName,
    pub table: Ident,
    /// Every field column.
    pub full: Projection,
    /// Multi-lookup fields and their join tables.
    pub joins: Vec<(FieldName, Ident)>,
    /// Marks generated SQL with the definition version, so PostgreSQL never reuses a prepared
    /// statement whose result types changed under it.
    pub tag: String,
}

impl Layout {
    pub fn of(def: &EntityDef, version: i64) -> Layout {
        Layout {
            entity: def.name.clone(),
            table: Ident::table(&def.name),
            full: Projection::of(&def.fields),
            joins: def
                .fields
                .iter()
                .filter(|f| f.column_type().is_none())
                .map(|f| (f.name.clone(), Ident::join_table(&def.name, &f.name)))
                .collect(),
            tag: format!("/* {}@{version} */ ", def.name),
        }
    }
}

/// Inserts one record. `values` names every column written.
pub async fn insert(tx: &mut Tx, layout: &Layout, values: Vec<(Ident, SqlValue)>) -> Result<()> {
    let mut sql = Sql::new(layout.tag.clone());
    let mut names = Vec::with_capacity(values.len());
    let mut placeholders = Vec::with_capacity(values.len());
    for (column, value) in values {
        names.push(column.to_string());
        placeholders.push(sql.param(value));
    }
    sql.push(&format!(
        "INSERT INTO {} ({}) VALUES ({})",
        layout.table,
        names.join(", "),
        placeholders.join(", ")
    ));
    tx.execute(&sql).await?;
    Ok(())
}

/// Rows per multi-row insert of records of `columns` columns: statements of about 8,000
/// parameters, well inside SQLite's 32,766 and PostgreSQL's 65,535. Each statement handed to
/// SQLite's worker costs two thread switches, and since placeholders go to SQLite as plain
/// `?`, a larger statement no longer costs more per row. Imports of a million rows, run side
/// by side: 2,048 parameters were 2–6 % faster than 500, and 8,192 were 3–5 % faster than
/// 2,048.
pub fn rows_per_insert(columns: usize) -> usize {
    (8192 / columns.max(1)).clamp(1, 1024)
}

/// One statement inserting `rows` (at most [`rows_per_insert`] of them), each in the order of
/// `columns`; on SQLite the values the rows share are bound once ([`Sql::insert_rows`]).
pub fn insert_statement(
    dialect: Dialect,
    layout: &Layout,
    columns: &[Ident],
    rows: impl IntoIterator<Item = Row>,
) -> Sql {
    let names = columns
        .iter()
        .map(Ident::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    let target = format!("{} ({names})", layout.table);
    Sql::insert_rows(dialect, &target, rows.into_iter().collect(), &[])
}

/// Inserts rows of records, a few hundred parameters per statement, each statement made while
/// the one before runs (bulk loads of benchmarks and tests).
pub async fn insert_batch(
    tx: &mut Tx,
    layout: &Layout,
    columns: &[Ident],
    rows: Vec<Row>,
) -> Result<u64> {
    let dialect = tx.dialect();
    let mut rows = rows.into_iter().peekable();
    let mut pipe = tx.pipeline();
    while rows.peek().is_some() {
        let chunk = rows.by_ref().take(rows_per_insert(columns.len()));
        pipe.send(insert_statement(dialect, layout, columns, chunk))
            .await?;
    }
    pipe.finish().await
}

/// One record by id: live ones only, or trashed ones too.
pub async fn get(
    ex: &mut impl Executor,
    layout: &Layout,
    id: &str,
    include_trashed: bool,
) -> Result<Option<Row>> {
    get_in(ex, layout, id, include_trashed, &Condition::True).await
}

/// One record by id, if it also satisfies `scope` (a caller's data scope).
pub async fn get_in(
    ex: &mut impl Executor,
    layout: &Layout,
    id: &str,
    include_trashed: bool,
    scope: &Condition,
) -> Result<Option<Row>> {
    let dialect = ex.dialect();
    let mut sql = Sql::new(layout.tag.clone());
    let id = sql.param(id);
    let live = if include_trashed {
        String::new()
    } else {
        " AND t.\"deleted_at\" IS NULL".to_owned()
    };
    let scope = match scope {
        Condition::True => String::new(),
        other => format!(" AND {}", query::render(dialect, other, &mut sql)),
    };
    sql.push(&format!(
        "SELECT {} FROM {} t WHERE t.\"id\" = {id}{live}{scope}",
        layout.full.select_list(),
        layout.table
    ));
    Ok(ex
        .fetch_all(&sql, layout.full.column_types())
        .await?
        .into_iter()
        .next())
}

/// Locks a record's row for the rest of the transaction (before it is read to be changed).
pub async fn lock(tx: &mut Tx, layout: &Layout, id: &str) -> Result<()> {
    if let Some(text) = tx.dialect().lock_row(&layout.table) {
        tx.execute(&Sql::new(text).bind(id)).await?;
    }
    Ok(())
}

/// Many records by id (trashed ones included, for expansions and bulk changes).
pub async fn get_many(ex: &mut impl Executor, layout: &Layout, ids: &[String]) -> Result<Vec<Row>> {
    get_many_in(ex, layout, ids, &Condition::True).await
}

/// Many records by id that satisfy `scope`.
pub async fn get_many_in(
    ex: &mut impl Executor,
    layout: &Layout,
    ids: &[String],
    scope: &Condition,
) -> Result<Vec<Row>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let dialect = ex.dialect();
    let mut sql = Sql::new(layout.tag.clone());
    let list = in_list(&mut sql, ids);
    let scope = match scope {
        Condition::True => String::new(),
        other => format!(" AND {}", query::render(dialect, other, &mut sql)),
    };
    sql.push(&format!(
        "SELECT {} FROM {} t WHERE t.\"id\" IN ({list}){scope}",
        layout.full.select_list(),
        layout.table
    ));
    ex.fetch_all(&sql, layout.full.column_types()).await
}

/// Records after `after` in id order, trashed ones included (whole-table recomputations).
pub async fn rows_after(
    ex: &mut impl Executor,
    layout: &Layout,
    after: &str,
    limit: i64,
) -> Result<Vec<Row>> {
    let sql = Sql::new(format!(
        "{}SELECT {} FROM {} t WHERE t.\"id\" > $1 ORDER BY t.\"id\" LIMIT $2",
        layout.tag,
        layout.full.select_list(),
        layout.table
    ))
    .bind(after)
    .bind(limit);
    ex.fetch_all(&sql, layout.full.column_types()).await
}

/// Updates the given columns of a live record, bumps its version and returns the new row.
/// With `expected_version`, nothing happens unless the record is still at that version.
pub async fn update(
    tx: &mut Tx,
    layout: &Layout,
    id: &str,
    sets: Vec<(Ident, SqlValue)>,
    updated_at: SqlValue,
    expected_version: Option<i64>,
) -> Result<Option<Row>> {
    let mut sql = Sql::new(layout.tag.clone());
    let mut assignments: Vec<String> = Vec::with_capacity(sets.len() + 2);
    for (column, value) in sets {
        let p = sql.param(value);
        assignments.push(format!("{column} = {p}"));
    }
    let p = sql.param(updated_at);
    assignments.push(format!("\"updated_at\" = {p}"));
    assignments.push("\"version\" = \"version\" + 1".to_owned());
    let id_param = sql.param(id);
    let mut condition = format!("\"id\" = {id_param} AND \"deleted_at\" IS NULL");
    if let Some(version) = expected_version {
        let p = sql.param(version);
        condition.push_str(&format!(" AND \"version\" = {p}"));
    }
    sql.push(&format!(
        "UPDATE {} SET {} WHERE {condition} RETURNING {}",
        layout.table,
        assignments.join(", "),
        layout.full.returning_list()
    ));
    Ok(tx
        .fetch_all(&sql, layout.full.column_types())
        .await?
        .into_iter()
        .next())
}

/// Sets computed columns without touching the version (formulas and rollups follow other
/// changes; they are not edits of their own).
pub async fn set_computed(
    tx: &mut Tx,
    layout: &Layout,
    id: &str,
    sets: Vec<(Ident, SqlValue)>,
) -> Result<()> {
    if sets.is_empty() {
        return Ok(());
    }
    let mut sql = Sql::new(layout.tag.clone());
    let assignments: Vec<String> = sets
        .into_iter()
        .map(|(column, value)| format!("{column} = {}", sql.param(value)))
        .collect();
    let id = sql.param(id);
    sql.push(&format!(
        "UPDATE {} SET {} WHERE \"id\" = {id}",
        layout.table,
        assignments.join(", ")
    ));
    tx.execute(&sql).await?;
    Ok(())
}

/// Moves a live record to the trash (or a trashed one back) and returns the new row.
pub async fn set_trashed(
    tx: &mut Tx,
    layout: &Layout,
    id: &str,
    trashed: bool,
    at: SqlValue,
    expected_version: Option<i64>,
) -> Result<Option<Row>> {
    let mut sql = Sql::new(layout.tag.clone());
    let at = sql.param(at);
    let id_param = sql.param(id);
    let (deleted_at, state) = if trashed {
        (at.as_str(), "IS NULL")
    } else {
        ("NULL", "IS NOT NULL")
    };
    let mut condition = format!("\"id\" = {id_param} AND \"deleted_at\" {state}");
    if let Some(version) = expected_version {
        let p = sql.param(version);
        condition.push_str(&format!(" AND \"version\" = {p}"));
    }
    sql.push(&format!(
        "UPDATE {} SET \"deleted_at\" = {deleted_at}, \"updated_at\" = {at}, \
         \"version\" = \"version\" + 1 WHERE {condition} RETURNING {}",
        layout.table,
        layout.full.returning_list()
    ));
    Ok(tx
        .fetch_all(&sql, layout.full.column_types())
        .await?
        .into_iter()
        .next())
}

/// Erases a trashed record for good, with its links and tags. False when there was none.
pub async fn erase(tx: &mut Tx, layout: &Layout, id: &str) -> Result<bool> {
    for (_, join) in &layout.joins {
        tx.execute(&Sql::new(format!("DELETE FROM {join} WHERE \"source_id\" = $1")).bind(id))
            .await?;
    }
    tx.execute(
        &Sql::new("DELETE FROM \"record_tags\" WHERE \"entity\" = $1 AND \"record_id\" = $2")
            .bind(layout.entity.as_str())
            .bind(id),
    )
    .await?;
    let sql = Sql::new(format!(
        "DELETE FROM {} WHERE \"id\" = $1 AND \"deleted_at\" IS NOT NULL",
        layout.table
    ))
    .bind(id);
    Ok(tx.execute(&sql).await? > 0)
}

/// The version of a record, and whether it is in the trash; `None` when there is no such id.
pub async fn state(
    ex: &mut impl Executor,
    layout: &Layout,
    id: &str,
) -> Result<Option<(i64, bool)>> {
    let sql = Sql::new(format!(
        "SELECT \"version\", \"deleted_at\" FROM {} WHERE \"id\" = $1",
        layout.table
    ))
    .bind(id);
    let rows = ex
        .fetch_all(&sql, &[ColumnType::Integer, ColumnType::Datetime])
        .await?;
    Ok(rows
        .first()
        .map(|r| (r[0].as_i64().unwrap_or_default(), !r[1].is_null())))
}

fn in_list(sql: &mut Sql, values: &[String]) -> String {
    values
        .iter()
        .map(|v| sql.param(v.clone()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The links of many records at once: `(source, target)` pairs in each source's order.
pub async fn links(
    ex: &mut impl Executor,
    join: &Ident,
    sources: &[String],
) -> Result<Vec<(String, String)>> {
    if sources.is_empty() {
        return Ok(Vec::new());
    }
    let mut sql = Sql::new(String::new());
    let list = in_list(&mut sql, sources);
    sql.push(&format!(
        "SELECT \"source_id\", \"target_id\" FROM {join} WHERE \"source_id\" IN ({list}) \
         ORDER BY \"source_id\", \"position\""
    ));
    let rows = ex
        .fetch_all(&sql, &[ColumnType::Id, ColumnType::Id])
        .await?;
    Ok(rows.into_iter().map(pair).collect())
}

fn pair(mut row: Row) -> (String, String) {
    let second = row.pop().and_then(SqlValue::into_text).unwrap_or_default();
    let first = row.pop().and_then(SqlValue::into_text).unwrap_or_default();
    (first, second)
}

/// Replaces the links of one record.
pub async fn set_links(tx: &mut Tx, join: &Ident, source: &str, targets: &[String]) -> Result<()> {
    tx.execute(&Sql::new(format!("DELETE FROM {join} WHERE \"source_id\" = $1")).bind(source))
        .await?;
    if targets.is_empty() {
        return Ok(());
    }
    let mut sql = Sql::new(String::new());
    let rows: Vec<String> = targets
        .iter()
        .enumerate()
        .map(|(i, target)| {
            let s = sql.param(source);
            let t = sql.param(target.clone());
            let p = sql.param(i as i64);
            format!("({s}, {t}, {p})")
        })
        .collect();
    sql.push(&format!(
        "INSERT INTO {join} (\"source_id\", \"target_id\", \"position\") VALUES {}",
        rows.join(", ")
    ));
    tx.execute(&sql).await?;
    Ok(())
}

/// Which of these ids are live records of an entity within `scope` (the caller's read scope).
pub async fn existing_ids(
    ex: &mut impl Executor,
    entity: &EntityName,
    ids: &[String],
    scope: &Condition,
) -> Result<Vec<String>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let dialect = ex.dialect();
    let mut sql = Sql::new(String::new());
    let list = in_list(&mut sql, ids);
    let scope = match scope {
        Condition::True => String::new(),
        other => format!(" AND {}", query::render(dialect, other, &mut sql)),
    };
    sql.push(&format!(
        "SELECT t.\"id\" FROM {} t WHERE t.\"id\" IN ({list}) AND t.\"deleted_at\" IS NULL{scope}",
        Ident::table(entity)
    ));
    super::fetch_ids(ex, &sql).await
}

/// Another live record holding `value` in `column`, if any (the unique-field pre-check).
pub async fn holder_of(
    ex: &mut impl Executor,
    layout: &Layout,
    column: &Ident,
    value: SqlValue,
    except_id: &str,
) -> Result<Option<String>> {
    let sql = Sql::new(format!(
        "SELECT \"id\" FROM {} WHERE {column} = $1 AND \"id\" <> $2 AND \"deleted_at\" IS NULL LIMIT 1",
        layout.table
    ))
    .bind(value)
    .bind(except_id);
    let rows = ex.fetch_all(&sql, &[ColumnType::Id]).await?;
    Ok(rows
        .into_iter()
        .next()
        .and_then(|mut r| r.pop())
        .and_then(SqlValue::into_text))
}

/// Whether a live record holds any of `values` in `column`.
pub async fn any_held<'v>(
    ex: &mut impl Executor,
    layout: &Layout,
    column: &Ident,
    values: impl Iterator<Item = &'v SqlValue>,
) -> Result<bool> {
    let mut sql = Sql::default();
    let list: Vec<String> = values.map(|value| sql.param(value.clone())).collect();
    if list.is_empty() {
        return Ok(false);
    }
    sql.push(&format!(
        "SELECT \"id\" FROM {} WHERE {column} IN ({}) AND \"deleted_at\" IS NULL LIMIT 1",
        layout.table,
        list.join(", ")
    ));
    Ok(!ex.fetch_all(&sql, &[ColumnType::Id]).await?.is_empty())
}

fn rollup_value(rollup: &FieldDef) -> Option<(String, String, String)> {
    let spec = rollup.rollup.as_ref()?;
    let value = match (spec.op, &spec.field) {
        (RollupOp::Count, _) => "COUNT(*)".to_owned(),
        (RollupOp::Sum, Some(f)) => format!("COALESCE(SUM(s.{}), 0)", Ident::column(f)),
        (RollupOp::Min, Some(f)) => format!("MIN(s.{})", Ident::column(f)),
        (RollupOp::Max, Some(f)) => format!("MAX(s.{})", Ident::column(f)),
        (_, None) => return None,
    };
    Some((
        value,
        Ident::table(&spec.entity).to_string(),
        Ident::column(&spec.via).to_string(),
    ))
}

/// Recomputes a rollup column from the live records of its source entity that point at each
/// parent: for the `parents` given, or for every record when `None`.
pub async fn refresh_rollup(
    tx: &mut Tx,
    parent: &EntityName,
    rollup: &FieldDef,
    parents: Option<&[String]>,
) -> Result<()> {
    let Some((value, source, via)) = rollup_value(rollup) else {
        return Ok(());
    };
    let table = Ident::table(parent);
    let mut sql = Sql::new(String::new());
    let only = match parents {
        None => String::new(),
        Some([]) => return Ok(()),
        Some(ids) => format!(" WHERE \"id\" IN ({})", in_list(&mut sql, ids)),
    };
    sql.push(&format!(
        "UPDATE {table} SET {column} = (SELECT {value} FROM {source} s \
         WHERE s.{via} = {table}.\"id\" AND s.\"deleted_at\" IS NULL){only}",
        column = Ident::column(&rollup.name),
    ));
    tx.execute(&sql).await?;
    Ok(())
}

/// Ids of records of `entity` whose lookup `field` points at any of `targets`.
pub async fn pointing_at(
    ex: &mut impl Executor,
    entity: &EntityName,
    field: &FieldName,
    targets: &[String],
) -> Result<Vec<String>> {
    if targets.is_empty() {
        return Ok(Vec::new());
    }
    let mut sql = Sql::new(String::new());
    let list = in_list(&mut sql, targets);
    sql.push(&format!(
        "SELECT \"id\" FROM {} WHERE {} IN ({list})",
        Ident::table(entity),
        Ident::column(field)
    ));
    super::fetch_ids(ex, &sql).await
}

/// Re-points a lookup column from `sources` to `target` in every record; returns the records
/// changed.
pub async fn repoint_lookup(
    tx: &mut Tx,
    entity: &EntityName,
    field: &FieldName,
    sources: &[String],
    target: &str,
) -> Result<Vec<String>> {
    let ids = pointing_at(tx, entity, field, sources).await?;
    if ids.is_empty() {
        return Ok(ids);
    }
    let mut sql = Sql::new(String::new());
    let t = sql.param(target);
    let list = in_list(&mut sql, sources);
    sql.push(&format!(
        "UPDATE {} SET {column} = {t}, \"version\" = \"version\" + 1 WHERE {column} IN ({list})",
        Ident::table(entity),
        column = Ident::column(field)
    ));
    tx.execute(&sql).await?;
    Ok(ids)
}

/// Re-points multi-lookup links from `sources` to `target` (without duplicating a link that
/// already exists); returns the records changed.
pub async fn repoint_links(
    tx: &mut Tx,
    join: &Ident,
    sources: &[String],
    target: &str,
) -> Result<Vec<String>> {
    if sources.is_empty() {
        return Ok(Vec::new());
    }
    let mut sql = Sql::new(String::new());
    let list = in_list(&mut sql, sources);
    sql.push(&format!(
        "SELECT DISTINCT \"source_id\" FROM {join} WHERE \"target_id\" IN ({list})"
    ));
    let changed: Vec<String> = tx
        .fetch_all(&sql, &[ColumnType::Id])
        .await?
        .into_iter()
        .filter_map(|mut r| r.pop().and_then(SqlValue::into_text))
        .collect();
    if changed.is_empty() {
        return Ok(changed);
    }
    // Records already linked to the target just lose their links to the sources.
    let mut sql = Sql::new(String::new());
    let t = sql.param(target);
    let list = in_list(&mut sql, sources);
    sql.push(&format!(
        "DELETE FROM {join} WHERE \"target_id\" IN ({list}) AND \"source_id\" IN \
         (SELECT \"source_id\" FROM {join} WHERE \"target_id\" = {t})"
    ));
    tx.execute(&sql).await?;
    // Of the rest, each record keeps one link (the first), re-pointed.
    let mut sql = Sql::new(String::new());
    let t = sql.param(target);
    let list = in_list(&mut sql, sources);
    sql.push(&format!(
        "UPDATE {join} SET \"target_id\" = {t} WHERE \"target_id\" IN ({list}) AND \"position\" = \
         (SELECT MIN(j2.\"position\") FROM {join} j2 WHERE j2.\"source_id\" = {join}.\"source_id\" \
         AND j2.\"target_id\" IN ({list}))"
    ));
    tx.execute(&sql).await?;
    let mut sql = Sql::new(String::new());
    let list = in_list(&mut sql, sources);
    sql.push(&format!(
        "DELETE FROM {join} WHERE \"target_id\" IN ({list})"
    ));
    tx.execute(&sql).await?;
    Ok(changed)
}
