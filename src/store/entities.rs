//! System tables of the metadata engine: entity definitions and their versions, archived
//! fields and entities, auto-number counters.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::{ColumnType, Dialect, Executor, Sql, SqlValue, Tx};
use crate::error::{Error, Result};
use crate::schema::names::EntityName;

/// An entity definition as stored.
#[derive(Debug, Clone)]
pub struct StoredEntity {
    pub name: String,
    pub definition: Value,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const ENTITY_COLUMNS: [ColumnType; 5] = [
    ColumnType::Text,
    ColumnType::Text,
    ColumnType::Integer,
    ColumnType::Datetime,
    ColumnType::Datetime,
];

fn parse_json(text: &SqlValue) -> Result<Value> {
    let text = text.as_str().unwrap_or("null");
    serde_json::from_str(text).map_err(|e| Error::internal(format!("stored definition: {e}")))
}

fn datetime(value: &SqlValue) -> DateTime<Utc> {
    match value {
        SqlValue::Datetime(t) => *t,
        _ => DateTime::<Utc>::MIN_UTC,
    }
}

fn stored_entity(row: &[SqlValue]) -> Result<StoredEntity> {
    Ok(StoredEntity {
        name: row[0].as_str().unwrap_or_default().to_owned(),
        definition: parse_json(&row[1])?,
        version: row[2].as_i64().unwrap_or_default(),
        created_at: datetime(&row[3]),
        updated_at: datetime(&row[4]),
    })
}

pub async fn list(ex: &mut impl Executor) -> Result<Vec<StoredEntity>> {
    let rows = ex
        .fetch_all(
            &Sql::new(
                "SELECT name, definition, version, created_at, updated_at FROM entities ORDER BY name",
            ),
            &ENTITY_COLUMNS,
        )
        .await?;
    rows.iter().map(|r| stored_entity(r)).collect()
}

pub async fn get(ex: &mut impl Executor, name: &EntityName) -> Result<Option<StoredEntity>> {
    fetch(ex, name, "").await
}

/// Reads a definition inside a schema-change transaction, locking it so that changes to one
/// entity happen one after the other (SQLite's `BEGIN IMMEDIATE` already serialises them).
pub async fn get_for_update(tx: &mut Tx, name: &EntityName) -> Result<Option<StoredEntity>> {
    let lock = if tx.dialect() == Dialect::Postgres {
        " FOR UPDATE"
    } else {
        ""
    };
    fetch(tx, name, lock).await
}

async fn fetch(
    ex: &mut impl Executor,
    name: &EntityName,
    lock: &str,
) -> Result<Option<StoredEntity>> {
    let sql = Sql::new(format!(
        "SELECT name, definition, version, created_at, updated_at FROM entities WHERE name = $1{lock}"
    ))
    .bind(name.as_str());
    let rows = ex.fetch_all(&sql, &ENTITY_COLUMNS).await?;
    rows.first().map(|r| stored_entity(r)).transpose()
}

/// The schema epoch: bumped by every definition change, the cheap check that a cached
/// catalog is current.
pub async fn epoch(ex: &mut impl Executor) -> Result<i64> {
    let sql = Sql::new("SELECT epoch FROM schema_state WHERE id = 1");
    let rows = ex.fetch_all(&sql, &[ColumnType::Integer]).await?;
    Ok(rows.first().and_then(|r| r[0].as_i64()).unwrap_or_default())
}

pub(crate) async fn bump_epoch(tx: &mut Tx) -> Result<()> {
    tx.execute(&Sql::new(
        "UPDATE schema_state SET epoch = epoch + 1 WHERE id = 1",
    ))
    .await?;
    Ok(())
}

/// The next version number for an entity name; numbering continues across a delete and
/// re-create so old versions stay distinct.
pub async fn next_version(tx: &mut Tx, name: &EntityName) -> Result<i64> {
    let sql = Sql::new("SELECT COALESCE(MAX(version), 0) FROM entity_versions WHERE entity = $1")
        .bind(name.as_str());
    let row = tx.fetch_one(&sql, &[ColumnType::Integer]).await?;
    Ok(row[0].as_i64().unwrap_or_default() + 1)
}

async fn insert_version(
    tx: &mut Tx,
    name: &EntityName,
    version: i64,
    definition: &Value,
    changes: &Value,
    now: DateTime<Utc>,
) -> Result<()> {
    let sql = Sql::new(
        "INSERT INTO entity_versions (entity, version, definition, changes, created_at) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(name.as_str())
    .bind(version)
    .bind(definition.to_string())
    .bind(changes.to_string())
    .bind(now);
    tx.execute(&sql).await?;
    Ok(())
}

pub async fn insert(
    tx: &mut Tx,
    name: &EntityName,
    definition: &Value,
    version: i64,
    changes: &Value,
    now: DateTime<Utc>,
) -> Result<()> {
    let sql = Sql::new(
        "INSERT INTO entities (name, definition, version, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $4)",
    )
    .bind(name.as_str())
    .bind(definition.to_string())
    .bind(version)
    .bind(now);
    tx.execute(&sql).await?;
    bump_epoch(tx).await?;
    insert_version(tx, name, version, definition, changes, now).await
}

/// Stores a new version of a definition, provided nobody stored another one meanwhile.
pub async fn update(
    tx: &mut Tx,
    name: &EntityName,
    definition: &Value,
    expected_version: i64,
    version: i64,
    changes: &Value,
    now: DateTime<Utc>,
) -> Result<()> {
    let sql = Sql::new(
        "UPDATE entities SET definition = $1, version = $2, updated_at = $3 \
         WHERE name = $4 AND version = $5",
    )
    .bind(definition.to_string())
    .bind(version)
    .bind(now)
    .bind(name.as_str())
    .bind(expected_version);
    if tx.execute(&sql).await? == 0 {
        return Err(Error::conflict(
            format!("the definition of {name} was changed meanwhile; reload it and try again"),
            Vec::new(),
        ));
    }
    bump_epoch(tx).await?;
    insert_version(tx, name, version, definition, changes, now).await
}

pub async fn delete(tx: &mut Tx, name: &EntityName) -> Result<()> {
    tx.execute(&Sql::new("DELETE FROM entities WHERE name = $1").bind(name.as_str()))
        .await?;
    bump_epoch(tx).await
}

/// One row of an entity's version history.
#[derive(Debug, Clone)]
pub struct StoredVersion {
    pub version: i64,
    pub definition: Value,
    pub changes: Value,
    pub created_at: DateTime<Utc>,
}

pub async fn versions(ex: &mut impl Executor, name: &EntityName) -> Result<Vec<StoredVersion>> {
    let sql = Sql::new(
        "SELECT version, definition, changes, created_at FROM entity_versions \
         WHERE entity = $1 ORDER BY version DESC",
    )
    .bind(name.as_str());
    let rows = ex
        .fetch_all(
            &sql,
            &[
                ColumnType::Integer,
                ColumnType::Text,
                ColumnType::Text,
                ColumnType::Datetime,
            ],
        )
        .await?;
    rows.iter()
        .map(|r| {
            Ok(StoredVersion {
                version: r[0].as_i64().unwrap_or_default(),
                definition: parse_json(&r[1])?,
                changes: parse_json(&r[2])?,
                created_at: datetime(&r[3]),
            })
        })
        .collect()
}

/// A removed field whose data waits in an archive column or join table.
#[derive(Debug, Clone)]
pub struct ArchivedField {
    pub id: i64,
    pub entity: String,
    pub field: String,
    /// `{"schema": <property>, "required": bool}` as it was when removed.
    pub definition: Value,
    pub storage: String,
    pub is_join: bool,
    pub value_count: i64,
    pub archived_at: DateTime<Utc>,
}

const ARCHIVED_FIELD_COLUMNS: [ColumnType; 8] = [
    ColumnType::Integer,
    ColumnType::Text,
    ColumnType::Text,
    ColumnType::Text,
    ColumnType::Text,
    ColumnType::Boolean,
    ColumnType::Integer,
    ColumnType::Datetime,
];

fn archived_field(row: &[SqlValue]) -> Result<ArchivedField> {
    Ok(ArchivedField {
        id: row[0].as_i64().unwrap_or_default(),
        entity: row[1].as_str().unwrap_or_default().to_owned(),
        field: row[2].as_str().unwrap_or_default().to_owned(),
        definition: parse_json(&row[3])?,
        storage: row[4].as_str().unwrap_or_default().to_owned(),
        is_join: matches!(row[5], SqlValue::Boolean(true)),
        value_count: row[6].as_i64().unwrap_or_default(),
        archived_at: datetime(&row[7]),
    })
}

/// Records a field being archived and returns its archive id (which names its storage).
pub async fn insert_archived_field(
    tx: &mut Tx,
    entity: &EntityName,
    field: &str,
    definition: &Value,
    is_join: bool,
    value_count: i64,
    now: DateTime<Utc>,
) -> Result<i64> {
    let sql = Sql::new(
        "INSERT INTO archived_fields (entity, field, definition, storage, is_join, value_count, archived_at) \
         VALUES ($1, $2, $3, '', $4, $5, $6) RETURNING id",
    )
    .bind(entity.as_str())
    .bind(field)
    .bind(definition.to_string())
    .bind(is_join)
    .bind(value_count)
    .bind(now);
    let row = tx.fetch_one(&sql, &[ColumnType::Integer]).await?;
    row[0]
        .as_i64()
        .ok_or_else(|| Error::internal("archived field id missing"))
}

pub async fn set_archived_storage(tx: &mut Tx, id: i64, storage: &str) -> Result<()> {
    let sql = Sql::new("UPDATE archived_fields SET storage = $1 WHERE id = $2")
        .bind(storage)
        .bind(id);
    tx.execute(&sql).await?;
    Ok(())
}

pub async fn archived_fields(
    ex: &mut impl Executor,
    entity: &EntityName,
) -> Result<Vec<ArchivedField>> {
    let sql = Sql::new(
        "SELECT id, entity, field, definition, storage, is_join, value_count, archived_at \
         FROM archived_fields WHERE entity = $1 ORDER BY id DESC",
    )
    .bind(entity.as_str());
    let rows = ex.fetch_all(&sql, &ARCHIVED_FIELD_COLUMNS).await?;
    rows.iter().map(|r| archived_field(r)).collect()
}

pub async fn archived_field_by_id(
    ex: &mut impl Executor,
    entity: &EntityName,
    id: i64,
) -> Result<Option<ArchivedField>> {
    let sql = Sql::new(
        "SELECT id, entity, field, definition, storage, is_join, value_count, archived_at \
         FROM archived_fields WHERE entity = $1 AND id = $2",
    )
    .bind(entity.as_str())
    .bind(id);
    let rows = ex.fetch_all(&sql, &ARCHIVED_FIELD_COLUMNS).await?;
    rows.first().map(|r| archived_field(r)).transpose()
}

pub async fn delete_archived_field(tx: &mut Tx, id: i64) -> Result<()> {
    tx.execute(&Sql::new("DELETE FROM archived_fields WHERE id = $1").bind(id))
        .await?;
    Ok(())
}

/// Archives a whole entity: remembers its definition and where its tables went, and detaches
/// its archived fields (they went with the table).
pub async fn insert_archived_entity(
    tx: &mut Tx,
    name: &EntityName,
    definition: &Value,
    now: DateTime<Utc>,
) -> Result<i64> {
    let sql = Sql::new(
        "INSERT INTO archived_entities (name, definition, tables, archived_at) \
         VALUES ($1, $2, '[]', $3) RETURNING id",
    )
    .bind(name.as_str())
    .bind(definition.to_string())
    .bind(now);
    let row = tx.fetch_one(&sql, &[ColumnType::Integer]).await?;
    row[0]
        .as_i64()
        .ok_or_else(|| Error::internal("archived entity id missing"))
}

pub async fn finish_archived_entity(
    tx: &mut Tx,
    id: i64,
    name: &EntityName,
    tables: &[String],
) -> Result<()> {
    let sql = Sql::new("UPDATE archived_entities SET tables = $1 WHERE id = $2")
        .bind(serde_json::to_string(tables)?)
        .bind(id);
    tx.execute(&sql).await?;
    let sql = Sql::new("UPDATE archived_fields SET entity = $1 WHERE entity = $2")
        .bind(format!("{name}#archived-{id}"))
        .bind(name.as_str());
    tx.execute(&sql).await?;
    Ok(())
}

/// Makes sure an auto-number counter exists (idempotent).
pub async fn ensure_counter(
    tx: &mut Tx,
    entity: &EntityName,
    field: &str,
    next: i64,
) -> Result<()> {
    let sql = Sql::new(
        "INSERT INTO autonumber_counters (entity, field, next_value) VALUES ($1, $2, $3) \
         ON CONFLICT (entity, field) DO NOTHING",
    )
    .bind(entity.as_str())
    .bind(field)
    .bind(next);
    tx.execute(&sql).await?;
    Ok(())
}

/// Takes the next number. The row stays locked until the transaction ends, so concurrent
/// creators queue and a rolled-back insert gives its number back: no gaps, no repeats.
pub async fn take_counter(tx: &mut Tx, entity: &EntityName, field: &str) -> Result<i64> {
    let sql = Sql::new(
        "UPDATE autonumber_counters SET next_value = next_value + 1 \
         WHERE entity = $1 AND field = $2 RETURNING next_value - 1",
    )
    .bind(entity.as_str())
    .bind(field);
    let row = tx.fetch_optional(&sql, &[ColumnType::Integer]).await?;
    match row.and_then(|r| r[0].as_i64()) {
        Some(n) => Ok(n),
        None => {
            ensure_counter(tx, entity, field, 1).await?;
            Box::pin(take_counter(tx, entity, field)).await
        }
    }
}

/// Sets a counter to continue after `last` (after numbering existing records).
pub async fn set_counter(tx: &mut Tx, entity: &EntityName, field: &str, next: i64) -> Result<()> {
    ensure_counter(tx, entity, field, next).await?;
    let sql =
        Sql::new("UPDATE autonumber_counters SET next_value = $3 WHERE entity = $1 AND field = $2")
            .bind(entity.as_str())
            .bind(field)
            .bind(next);
    tx.execute(&sql).await?;
    Ok(())
}

pub async fn rename_counter(tx: &mut Tx, entity: &EntityName, from: &str, to: &str) -> Result<()> {
    let stale = Sql::new("DELETE FROM autonumber_counters WHERE entity = $1 AND field = $2")
        .bind(entity.as_str())
        .bind(to);
    tx.execute(&stale).await?;
    let sql =
        Sql::new("UPDATE autonumber_counters SET field = $3 WHERE entity = $1 AND field = $2")
            .bind(entity.as_str())
            .bind(from)
            .bind(to);
    tx.execute(&sql).await?;
    Ok(())
}
