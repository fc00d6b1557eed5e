//! SQL for records in entity tables: insert, read, list, update, trash, and the join tables
//! of multi lookups. The service layer hands over typed values; a [`Layout`] (built from a
//! validated definition) supplies every identifier.

use super::ddl::SYSTEM_COLUMNS;
use super::{ColumnType, Executor, Ident, Row, Sql, SqlValue, Tx};
use crate::error::Result;
use crate::schema::definition::EntityDef;
use crate::schema::names::{EntityName, FieldName};

/// Where an entity's records live and how to read them.
#[derive(Debug, Clone)]
pub struct Layout {
    pub table: Ident,
    /// System columns first (in `SYSTEM_COLUMNS` order), then one per stored field.
    pub columns: Vec<(Ident, ColumnType)>,
    /// For each stored field, its position in `columns`.
    pub field_columns: Vec<(FieldName, usize)>,
    /// Multi-lookup fields and their join tables.
    pub joins: Vec<(FieldName, Ident)>,
    column_types: Vec<ColumnType>,
    select_list: String,
    /// Marks generated SQL with the definition version, so PostgreSQL never reuses a prepared
    /// statement whose result types changed under it.
    tag: String,
}

/// Positions of system columns in a layout row.
pub mod pos {
    pub const ID: usize = 0;
    pub const CREATED_AT: usize = 1;
    pub const UPDATED_AT: usize = 2;
    pub const CREATED_BY: usize = 3;
    pub const OWNER: usize = 4;
    pub const DEPARTMENT: usize = 5;
    pub const VERSION: usize = 6;
    pub const DELETED_AT: usize = 7;
}

impl Layout {
    pub fn of(def: &EntityDef, version: i64) -> Layout {
        let mut columns: Vec<(Ident, ColumnType)> = SYSTEM_COLUMNS
            .iter()
            .map(|(name, ty)| (Ident::fixed(name), *ty))
            .collect();
        let mut field_columns = Vec::new();
        let mut joins = Vec::new();
        for field in &def.fields {
            match field.column_type() {
                Some(ty) => {
                    field_columns.push((field.name.clone(), columns.len()));
                    columns.push((Ident::column(&field.name), ty));
                }
                None => joins.push((
                    field.name.clone(),
                    Ident::join_table(&def.name, &field.name),
                )),
            }
        }
        let select_list = columns
            .iter()
            .map(|(c, _)| c.to_string())
            .collect::<Vec<_>>()
            .join(", ");
        Layout {
            table: Ident::table(&def.name),
            column_types: columns.iter().map(|(_, t)| *t).collect(),
            columns,
            field_columns,
            joins,
            select_list,
            tag: format!("/* {}@{version} */ ", def.name),
        }
    }

    pub fn column_types(&self) -> &[ColumnType] {
        &self.column_types
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

/// One live (not trashed) record by id.
pub async fn get(ex: &mut impl Executor, layout: &Layout, id: &str) -> Result<Option<Row>> {
    let sql = Sql::new(format!(
        "{}SELECT {} FROM {} WHERE \"id\" = $1 AND \"deleted_at\" IS NULL",
        layout.tag, layout.select_list, layout.table
    ))
    .bind(id);
    Ok(ex
        .fetch_all(&sql, layout.column_types())
        .await?
        .into_iter()
        .next())
}

/// The newest live records (ids are time-ordered UUIDv7, so id order is creation order).
pub async fn list_newest(ex: &mut impl Executor, layout: &Layout, limit: i64) -> Result<Vec<Row>> {
    let sql = Sql::new(format!(
        "{}SELECT {} FROM {} WHERE \"deleted_at\" IS NULL ORDER BY \"id\" DESC LIMIT $1",
        layout.tag, layout.select_list, layout.table
    ))
    .bind(limit);
    ex.fetch_all(&sql, layout.column_types()).await
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
        layout.select_list
    ));
    Ok(tx
        .fetch_all(&sql, layout.column_types())
        .await?
        .into_iter()
        .next())
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

/// Moves a live record to the trash. False when there was none.
pub async fn trash(
    tx: &mut Tx,
    layout: &Layout,
    id: &str,
    deleted_at: SqlValue,
    expected_version: Option<i64>,
) -> Result<bool> {
    let mut sql = Sql::new(String::new());
    let at = sql.param(deleted_at);
    let id_param = sql.param(id);
    let mut condition = format!("\"id\" = {id_param} AND \"deleted_at\" IS NULL");
    if let Some(version) = expected_version {
        let p = sql.param(version);
        condition.push_str(&format!(" AND \"version\" = {p}"));
    }
    sql.push(&format!(
        "UPDATE {} SET \"deleted_at\" = {at}, \"updated_at\" = {at}, \"version\" = \"version\" + 1 \
         WHERE {condition}",
        layout.table
    ));
    Ok(tx.execute(&sql).await? > 0)
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
    Ok(rows
        .into_iter()
        .map(|mut r| {
            let target = r.pop().and_then(SqlValue::into_text).unwrap_or_default();
            let source = r.pop().and_then(SqlValue::into_text).unwrap_or_default();
            (source, target)
        })
        .collect())
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

/// Which of these ids are live records of an entity.
pub async fn existing_ids(
    ex: &mut impl Executor,
    entity: &EntityName,
    ids: &[String],
) -> Result<Vec<String>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut sql = Sql::new(String::new());
    let list = in_list(&mut sql, ids);
    sql.push(&format!(
        "SELECT \"id\" FROM {} WHERE \"id\" IN ({list}) AND \"deleted_at\" IS NULL",
        Ident::table(entity)
    ));
    let rows = ex.fetch_all(&sql, &[ColumnType::Id]).await?;
    Ok(rows
        .into_iter()
        .filter_map(|mut r| r.pop().and_then(SqlValue::into_text))
        .collect())
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
