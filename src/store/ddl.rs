//! DDL for entity tables: the table itself, a field's column or join table, its indexes, and
//! the statements behind each plan step; plus the SQL of the data checks a plan runs first.

use serde_json::{Value, json};

use super::dialect::Dialect;
use super::ident::Ident;
use super::value::ColumnType;
use super::{Executor, Sql, SqlValue};
use crate::error::{FieldError, Result};
use crate::fields::AutoPattern;
use crate::schema::definition::{CompoundIndex, EntityDef, FieldDef};
use crate::schema::names::{EntityName, FieldName};
use crate::schema::plan::{Check, Conversion, Storage};

/// The columns every entity table has, in the order records are read.
pub const SYSTEM_COLUMNS: [(&str, ColumnType); 8] = [
    ("id", ColumnType::Id),
    ("created_at", ColumnType::Datetime),
    ("updated_at", ColumnType::Datetime),
    ("created_by", ColumnType::Id),
    ("owner", ColumnType::Id),
    ("department", ColumnType::Id),
    ("version", ColumnType::Integer),
    ("deleted_at", ColumnType::Datetime),
];

/// How many examples a refused change shows.
const EXAMPLES: i64 = 5;

fn column_definition(dialect: Dialect, name: &Ident, ty: ColumnType) -> String {
    format!("{name} {}", dialect.column_type(ty))
}

/// `CREATE TABLE` for a new entity, with its join tables and indexes.
pub fn create_table(dialect: Dialect, def: &EntityDef) -> Vec<Sql> {
    let table = Ident::table(&def.name);
    let mut columns: Vec<String> = SYSTEM_COLUMNS
        .iter()
        .map(|(name, ty)| {
            let mut c = column_definition(dialect, &Ident::fixed(name), *ty);
            match *name {
                "id" => c.push_str(" NOT NULL PRIMARY KEY"),
                "created_at" | "updated_at" => c.push_str(" NOT NULL"),
                "version" => c.push_str(" NOT NULL DEFAULT 1"),
                _ => {}
            }
            c
        })
        .collect();
    for field in &def.fields {
        if let Some(ty) = field.column_type() {
            columns.push(column_definition(dialect, &Ident::column(&field.name), ty));
        }
    }
    let mut statements = vec![Sql::new(format!(
        "CREATE TABLE {table} (\n  {}\n){}",
        columns.join(",\n  "),
        dialect.table_options()
    ))];
    for system in ["owner", "department"] {
        let index = Ident::index("ix", &def.name, system);
        statements.push(Sql::new(format!(
            "CREATE INDEX {index} ON {table} (\"{system}\")"
        )));
    }
    for field in &def.fields {
        if field.column_type().is_none() {
            statements.extend(create_join_table(dialect, &def.name, &field.name));
        }
        statements.extend(create_indexes(dialect, &def.name, field));
    }
    for index in &def.indexes {
        statements.push(create_compound_index(dialect, &def.name, index));
    }
    statements
}

fn join_target_index(join: &Ident) -> Ident {
    Ident::derived(join.as_str(), &["target"])
}

fn create_join_table(dialect: Dialect, entity: &EntityName, field: &FieldName) -> Vec<Sql> {
    let join = Ident::join_table(entity, field);
    let id = dialect.column_type(ColumnType::Id);
    let int = dialect.column_type(ColumnType::Integer);
    vec![
        Sql::new(format!(
            "CREATE TABLE {join} (\"source_id\" {id} NOT NULL, \"target_id\" {id} NOT NULL, \
             \"position\" {int} NOT NULL, PRIMARY KEY (\"source_id\", \"target_id\")){}",
            dialect.table_options()
        )),
        Sql::new(format!(
            "CREATE INDEX {} ON {join} (\"target_id\")",
            join_target_index(&join)
        )),
    ]
}

/// Unique indexes ignore trashed records, so a value frees up when its record is trashed.
/// Plain indexes end with the id, so a sort on the field (with the id breaking ties) and the
/// keyset page after any row are answered by one index range.
pub fn create_indexes(dialect: Dialect, entity: &EntityName, field: &FieldDef) -> Vec<Sql> {
    let table = Ident::table(entity);
    let column = Ident::column(&field.name);
    let mut statements = Vec::new();
    if field.has_unique_index() {
        let index = Ident::index("ux", entity, field.name.as_str());
        statements.push(Sql::new(format!(
            "CREATE UNIQUE INDEX {index} ON {table} ({column}) WHERE \"deleted_at\" IS NULL"
        )));
    }
    if field.has_plain_index() {
        let index = Ident::index("ix", entity, field.name.as_str());
        let key = dialect.index_key(&column);
        statements.push(Sql::new(format!(
            "CREATE INDEX {index} ON {table} ({key}, \"id\")"
        )));
    }
    statements
}

/// A compound index over live records, its columns ordered as list queries order them (on
/// PostgreSQL: ascending with empty values first, descending with them last), then the id.
pub fn create_compound_index(dialect: Dialect, entity: &EntityName, index: &CompoundIndex) -> Sql {
    create_named_index(dialect, entity, index, &compound_index_name(entity, index))
}

/// [`create_compound_index`] under a given name (a view's index is named apart from the
/// declared ones, so each kind can be listed and dropped on its own).
pub fn create_named_index(
    dialect: Dialect,
    entity: &EntityName,
    index: &CompoundIndex,
    name: &Ident,
) -> Sql {
    let table = Ident::table(entity);
    let mut keys: Vec<String> = Vec::with_capacity(index.keys.len() + 1);
    for key in &index.keys {
        // Columns come from the validated definition: a field or a system column.
        let Some(column) = Ident::stored(&key.column) else {
            continue;
        };
        keys.push(dialect.order_key(&column.to_string(), key.desc));
    }
    let last_desc = index.keys.last().is_some_and(|k| k.desc);
    keys.push(format!("\"id\" {}", if last_desc { "DESC" } else { "ASC" }));
    if dialect == Dialect::Sqlite {
        // SQLite reads an index alone (without the table) only when it holds every column
        // the query names, and every query names `deleted_at`; the partial index's own
        // condition does not count. A report over the index's columns then never touches the
        // table: five times faster over half a million rows.
        keys.push("\"deleted_at\"".to_owned());
    }
    Sql::new(format!(
        "CREATE INDEX IF NOT EXISTS {name} ON {table} ({}) WHERE \"deleted_at\" IS NULL",
        keys.join(", ")
    ))
}

pub fn drop_compound_index(entity: &EntityName, index: &CompoundIndex) -> Sql {
    Sql::new(format!(
        "DROP INDEX IF EXISTS {}",
        compound_index_name(entity, index)
    ))
}

pub fn compound_index_name(entity: &EntityName, index: &CompoundIndex) -> Ident {
    let keys: Vec<(&str, bool)> = index
        .keys
        .iter()
        .map(|k| (k.column.as_str(), k.desc))
        .collect();
    Ident::compound_index(entity, &keys)
}

/// Drops whatever indexes a field (under this name) may have.
pub fn drop_indexes(entity: &EntityName, field: &FieldName) -> Vec<Sql> {
    ["ux", "ix"]
        .iter()
        .map(|prefix| {
            let index = Ident::index(prefix, entity, field.as_str());
            Sql::new(format!("DROP INDEX IF EXISTS {index}"))
        })
        .collect()
}

/// Adds a new field's storage (a column, or a join table).
pub fn add_field(dialect: Dialect, entity: &EntityName, field: &FieldDef) -> Vec<Sql> {
    match field.column_type() {
        Some(ty) => vec![Sql::new(format!(
            "ALTER TABLE {} ADD COLUMN {}",
            Ident::table(entity),
            column_definition(dialect, &Ident::column(&field.name), ty)
        ))],
        None => create_join_table(dialect, entity, &field.name),
    }
}

fn rename_table(dialect: Dialect, from: &Ident, to: &Ident) -> Vec<Sql> {
    let mut statements = vec![Sql::new(format!("ALTER TABLE {from} RENAME TO {to}"))];
    if let Some(sql) = dialect.rename_primary_key(to, from) {
        statements.push(Sql::new(sql));
    }
    statements
}

/// Moves a field's storage from `from` (a column name or join table) to `to`.
fn move_storage(
    dialect: Dialect,
    entity: &EntityName,
    is_join: bool,
    from: &Ident,
    to: &Ident,
) -> Vec<Sql> {
    if is_join {
        let mut statements = vec![Sql::new(format!(
            "DROP INDEX IF EXISTS {}",
            join_target_index(from)
        ))];
        statements.extend(rename_table(dialect, from, to));
        statements.push(Sql::new(format!(
            "CREATE INDEX {} ON {to} (\"target_id\")",
            join_target_index(to)
        )));
        statements
    } else {
        vec![Sql::new(format!(
            "ALTER TABLE {} RENAME COLUMN {from} TO {to}",
            Ident::table(entity)
        ))]
    }
}

pub fn rename_field(
    dialect: Dialect,
    entity: &EntityName,
    field: &FieldDef,
    to: &FieldName,
) -> Vec<Sql> {
    if field.column_type().is_some() {
        move_storage(
            dialect,
            entity,
            false,
            &Ident::column(&field.name),
            &Ident::column(to),
        )
    } else {
        move_storage(
            dialect,
            entity,
            true,
            &Ident::join_table(entity, &field.name),
            &Ident::join_table(entity, to),
        )
    }
}

/// The name an archived field's data moves to.
pub fn archive_storage(entity: &EntityName, field: &FieldDef, archive_id: i64) -> Storage {
    let id = archive_id.to_string();
    if field.column_type().is_some() {
        Storage::Column(Ident::derived("_arch", &[field.name.as_str(), &id]))
    } else {
        Storage::Join(Ident::derived(
            "_arch",
            &[Ident::join_table(entity, &field.name).as_str(), &id],
        ))
    }
}

pub fn archive_field(
    dialect: Dialect,
    entity: &EntityName,
    field: &FieldDef,
    to: &Storage,
) -> Vec<Sql> {
    match to {
        Storage::Column(to) => {
            move_storage(dialect, entity, false, &Ident::column(&field.name), to)
        }
        Storage::Join(to) => move_storage(
            dialect,
            entity,
            true,
            &Ident::join_table(entity, &field.name),
            to,
        ),
    }
}

pub fn restore_field(
    dialect: Dialect,
    entity: &EntityName,
    field: &FieldName,
    from: &Storage,
) -> Vec<Sql> {
    match from {
        Storage::Column(from) => move_storage(dialect, entity, false, from, &Ident::column(field)),
        Storage::Join(from) => move_storage(
            dialect,
            entity,
            true,
            from,
            &Ident::join_table(entity, field),
        ),
    }
}

/// Rewrites a field's stored values for a kind or scale change. `old` is the field as it was
/// (under its new name, renames having run first).
pub fn convert_field(
    dialect: Dialect,
    entity: &EntityName,
    old: &FieldDef,
    new: &FieldDef,
    conversion: Conversion,
) -> Vec<Sql> {
    let table = Ident::table(entity);
    let column = Ident::column(&new.name);
    let Some(to) = new.column_type() else {
        return replace_storage(dialect, entity, old, new);
    };
    let sqlite = dialect == Dialect::Sqlite;
    let using = match conversion {
        Conversion::IntegerToDecimal { scale } if sqlite => {
            format!("{column} * {}", dialect.scale_factor(scale))
        }
        Conversion::Rescale { from, to } if sqlite && to > from => {
            format!("{column} * {}", dialect.scale_factor(to - from))
        }
        Conversion::Rescale { from, to } if sqlite => {
            format!("{column} / {}", dialect.scale_factor(from - to))
        }
        Conversion::DecimalToInteger { scale } if sqlite => {
            format!("{column} / {}", dialect.scale_factor(scale))
        }
        Conversion::DecimalToInteger { .. } => format!("{column}::bigint"),
        Conversion::IntegerToDecimal { .. } | Conversion::Rescale { .. } => column.to_string(),
        Conversion::DateToDatetime if sqlite => format!("{column} || 'T00:00:00.000000Z'"),
        Conversion::DateToDatetime => format!("({column}::timestamp AT TIME ZONE 'UTC')"),
        Conversion::SelectToMulti => format!(
            "CASE WHEN {column} IS NULL THEN NULL ELSE {} END",
            dialect.json_wrap(&column.to_string())
        ),
        Conversion::Replace => return replace_storage(dialect, entity, old, new),
    };
    vec![Sql::new(
        dialect.change_column_type(&table, &column, to, &using),
    )]
}

/// Drops a field's storage and creates it anew for its new kind (the plan has checked that no
/// value is lost, or the values are computed).
fn replace_storage(
    dialect: Dialect,
    entity: &EntityName,
    old: &FieldDef,
    new: &FieldDef,
) -> Vec<Sql> {
    let drop = if old.column_type().is_some() {
        format!(
            "ALTER TABLE {} DROP COLUMN {}",
            Ident::table(entity),
            Ident::column(&new.name)
        )
    } else {
        format!("DROP TABLE {}", Ident::join_table(entity, &new.name))
    };
    let mut statements = vec![Sql::new(drop)];
    statements.extend(add_field(dialect, entity, new));
    statements
}

/// Writes a default into every existing record that has no value.
pub fn backfill(entity: &EntityName, field: &FieldName, value: SqlValue) -> Sql {
    let column = Ident::column(field);
    let mut sql = Sql::new(String::new());
    let param = sql.param(value);
    sql.push(&format!(
        "UPDATE {} SET {column} = {param} WHERE {column} IS NULL",
        Ident::table(entity)
    ));
    sql
}

/// Numbers every existing record of an entity in creation order (ids are time-ordered).
pub fn number_records(
    dialect: Dialect,
    entity: &EntityName,
    field: &FieldName,
    pattern: &AutoPattern,
) -> Sql {
    let table = Ident::table(entity);
    let column = Ident::column(field);
    let mut sql = Sql::new(String::new());
    let prefix = sql.param(pattern.prefix.clone());
    let width = match dialect {
        Dialect::Sqlite => sql.param(format!("%0{}d", pattern.width)),
        Dialect::Postgres => sql.param(pattern.width as i64),
    };
    let suffix = sql.param(pattern.suffix.clone());
    let formatted = dialect.format_counter(&prefix, &width, "numbered.n", &suffix);
    sql.push(&format!(
        "UPDATE {table} SET {column} = {formatted} FROM \
         (SELECT \"id\" AS nid, row_number() OVER (ORDER BY \"id\") AS n FROM {table}) AS numbered \
         WHERE {table}.\"id\" = numbered.nid"
    ));
    sql
}

/// Runs one plan check; `Some` when data is in the way.
pub async fn run_check(
    ex: &mut impl Executor,
    dialect: Dialect,
    entity: &EntityName,
    check: &Check,
) -> Result<Option<FieldError>> {
    let table = Ident::table(entity);
    let field = check.field().to_string();
    let (n, message, examples): (i64, String, Vec<Value>) = match check {
        Check::NoEmpty { storage, .. } => {
            let condition = match storage {
                Storage::Column(column) => format!("{column} IS NULL"),
                Storage::Join(join) => format!(
                    "NOT EXISTS (SELECT 1 FROM {join} j WHERE j.\"source_id\" = {table}.\"id\")"
                ),
            };
            let n = count_of(
                ex,
                Sql::new(format!("SELECT COUNT(*) FROM {table} WHERE {condition}")),
            )
            .await?;
            (
                n,
                format!("cannot be made required: {n} records have no value"),
                Vec::new(),
            )
        }
        Check::NoDuplicates { column, ty, .. } => {
            let live = format!("{column} IS NOT NULL AND \"deleted_at\" IS NULL");
            let n = count_of(
                ex,
                Sql::new(format!(
                    "SELECT COUNT(*) FROM {table} WHERE {live} AND {column} IN \
                     (SELECT {column} FROM {table} WHERE {live} GROUP BY {column} HAVING COUNT(*) > 1)"
                )),
            )
            .await?;
            let rows = ex
                .fetch_all(
                    &Sql::new(format!(
                        "SELECT {column}, COUNT(*) FROM {table} WHERE {live} GROUP BY {column} \
                         HAVING COUNT(*) > 1 ORDER BY COUNT(*) DESC, {column} LIMIT {EXAMPLES}"
                    )),
                    &[*ty, ColumnType::Integer],
                )
                .await?;
            let examples = rows
                .iter()
                .map(|r| json!({"value": r[0].to_json(), "records": r[1].to_json()}))
                .collect();
            (
                n,
                format!("cannot be made unique: {n} records share a value with another"),
                examples,
            )
        }
        Check::OptionsUnused {
            column,
            multi,
            options,
            ..
        } => {
            let mut sql = Sql::new(String::new());
            let placeholders: Vec<String> = options.iter().map(|o| sql.param(o.clone())).collect();
            let list = placeholders.join(", ");
            let (condition, grouped) = if *multi {
                let elements = dialect.json_elements(&format!("{table}.{column}"), "je");
                (
                    format!("EXISTS (SELECT 1 FROM {elements} WHERE je.value IN ({list}))"),
                    format!(
                        "SELECT je.value, COUNT(*) FROM {table}, {elements} \
                         WHERE je.value IN ({list}) GROUP BY je.value ORDER BY je.value"
                    ),
                )
            } else {
                (
                    format!("{column} IN ({list})"),
                    format!(
                        "SELECT {column}, COUNT(*) FROM {table} WHERE {column} IN ({list}) \
                         GROUP BY {column} ORDER BY {column}"
                    ),
                )
            };
            sql.push(&format!("SELECT COUNT(*) FROM {table} WHERE {condition}"));
            let n = count_of(ex, sql.clone()).await?;
            let rows = ex
                .fetch_all(
                    &Sql {
                        text: grouped,
                        params: sql.params.clone(),
                    },
                    &[ColumnType::Text, ColumnType::Integer],
                )
                .await?;
            let examples = rows
                .iter()
                .map(|r| json!({"value": r[0].to_json(), "records": r[1].to_json()}))
                .collect();
            (
                n,
                format!("options still in use cannot be removed: {n} records use them"),
                examples,
            )
        }
        Check::NoValues {
            storage, reason, ..
        } => {
            let sql = match storage {
                Storage::Column(column) => {
                    format!("SELECT COUNT(*) FROM {table} WHERE {column} IS NOT NULL")
                }
                Storage::Join(join) => format!("SELECT COUNT(DISTINCT \"source_id\") FROM {join}"),
            };
            let n = count_of(ex, Sql::new(sql)).await?;
            (
                n,
                format!("{reason} ({n} records have a value)"),
                Vec::new(),
            )
        }
        Check::NoRecords { reason, .. } => {
            let n = count_of(ex, Sql::new(format!("SELECT COUNT(*) FROM {table}"))).await?;
            (n, format!("{reason} ({n} records)"), Vec::new())
        }
        Check::LengthAtMost { column, max, .. } => {
            let n = count_of(
                ex,
                Sql::new(format!(
                    "SELECT COUNT(*) FROM {table} WHERE length({column}) > $1"
                ))
                .bind(*max as i64),
            )
            .await?;
            (
                n,
                format!("{n} records hold text longer than {max} characters"),
                Vec::new(),
            )
        }
        Check::LengthAtLeast { column, min, .. } => {
            let n = count_of(
                ex,
                Sql::new(format!(
                    "SELECT COUNT(*) FROM {table} WHERE length({column}) < $1"
                ))
                .bind(*min as i64),
            )
            .await?;
            (
                n,
                format!("{n} records hold text shorter than {min} characters"),
                Vec::new(),
            )
        }
        Check::Range {
            column,
            ty,
            min,
            max,
            ..
        } => {
            let bound = |d: rust_decimal::Decimal, up: bool| match ty {
                ColumnType::Decimal { scale } => SqlValue::Decimal(d, *scale),
                _ => {
                    let whole = if up { d.ceil() } else { d.floor() };
                    SqlValue::Integer(i64::try_from(whole.mantissa()).unwrap_or(i64::MAX))
                }
            };
            let mut sql = Sql::new(String::new());
            let mut conditions = Vec::new();
            if let Some(min) = min {
                conditions.push(format!("{column} < {}", sql.param(bound(*min, true))));
            }
            if let Some(max) = max {
                conditions.push(format!("{column} > {}", sql.param(bound(*max, false))));
            }
            sql.push(&format!(
                "SELECT COUNT(*) FROM {table} WHERE {}",
                conditions.join(" OR ")
            ));
            let n = count_of(ex, sql).await?;
            (
                n,
                format!("{n} records hold values outside the new range"),
                Vec::new(),
            )
        }
        Check::FitsScale {
            column, from, to, ..
        } => {
            let condition = dialect.has_more_places(column, *from, *to);
            let n = count_of(
                ex,
                Sql::new(format!("SELECT COUNT(*) FROM {table} WHERE {condition}")),
            )
            .await?;
            (
                n,
                format!("{n} records hold values with more than {to} decimal places"),
                Vec::new(),
            )
        }
        Check::ValuesValid { column, new, .. } => {
            let (n, examples) = invalid_values(ex, &table, column, new).await?;
            (
                n,
                format!(
                    "{n} records hold values that are not valid for a {} field",
                    new.kind.as_str()
                ),
                examples,
            )
        }
    };
    Ok((n > 0).then(|| {
        FieldError::new(field, message)
            .with_count(n as u64)
            .with_examples(examples)
    }))
}

async fn count_of(ex: &mut impl Executor, sql: Sql) -> Result<i64> {
    let row = ex.fetch_all(&sql, &[ColumnType::Integer]).await?;
    Ok(row.first().and_then(|r| r[0].as_i64()).unwrap_or_default())
}

/// Scans a text column page by page (keyset on id) and tries each value as the new field
/// would take it. Returns how many fail and a few examples.
async fn invalid_values(
    ex: &mut impl Executor,
    table: &Ident,
    column: &Ident,
    field: &FieldDef,
) -> Result<(i64, Vec<Value>)> {
    const PAGE: i64 = 5_000;
    let field_type = field.kind.field_type();
    let mut after = String::new();
    let mut bad = 0i64;
    let mut examples = Vec::new();
    loop {
        let sql = Sql::new(format!(
            "SELECT \"id\", {column} FROM {table} WHERE {column} IS NOT NULL AND \"id\" > $1 \
             ORDER BY \"id\" LIMIT {PAGE}"
        ))
        .bind(after.clone());
        let rows = ex
            .fetch_all(&sql, &[ColumnType::Id, ColumnType::Text])
            .await?;
        for row in &rows {
            let value = row[1].to_json();
            if let Err(problem) = field_type.to_sql(field, &value) {
                bad += 1;
                if examples.len() < EXAMPLES as usize {
                    examples
                        .push(json!({"id": row[0].to_json(), "value": value, "problem": problem}));
                }
            }
        }
        match rows.last() {
            Some(last) if rows.len() as i64 == PAGE => {
                after = last[0].as_str().unwrap_or_default().to_owned();
            }
            _ => break,
        }
    }
    Ok((bad, examples))
}

/// Counts the values a field holds (for the archive record).
pub async fn count_values(
    ex: &mut impl Executor,
    entity: &EntityName,
    field: &FieldDef,
) -> Result<i64> {
    let sql = match field.column_type() {
        Some(_) => format!(
            "SELECT COUNT(*) FROM {} WHERE {} IS NOT NULL",
            Ident::table(entity),
            Ident::column(&field.name)
        ),
        None => format!(
            "SELECT COUNT(DISTINCT \"source_id\") FROM {}",
            Ident::join_table(entity, &field.name)
        ),
    };
    count_of(ex, Sql::new(sql)).await
}

/// Archives a whole entity: its table and join tables are renamed out of the way (with their
/// indexes dropped, so the names are free for a new entity).
pub fn archive_entity(
    dialect: Dialect,
    def: &EntityDef,
    archive_id: i64,
) -> (Vec<Sql>, Vec<Ident>) {
    let id = archive_id.to_string();
    let mut statements = Vec::new();
    let mut archived = Vec::new();
    for field in &def.fields {
        statements.extend(drop_indexes(&def.name, &field.name));
        if field.column_type().is_none() {
            let join = Ident::join_table(&def.name, &field.name);
            let to = Ident::derived("_arch", &[join.as_str(), &id]);
            statements.push(Sql::new(format!(
                "DROP INDEX IF EXISTS {}",
                join_target_index(&join)
            )));
            statements.extend(rename_table(dialect, &join, &to));
            archived.push(to);
        }
    }
    for system in ["owner", "department"] {
        let index = Ident::index("ix", &def.name, system);
        statements.push(Sql::new(format!("DROP INDEX IF EXISTS {index}")));
    }
    let table = Ident::table(&def.name);
    let to = Ident::derived("_arch", &[table.as_str(), &id]);
    statements.extend(rename_table(dialect, &table, &to));
    archived.insert(0, to);
    (statements, archived)
}
