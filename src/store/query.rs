//! Record queries: a typed [`Condition`] tree (built and checked against the schema by
//! `records::filter`) rendered to parameterised SQL, with sorting and keyset pagination.
//! Every column name comes from a validated definition; every value is a parameter.

use super::dialect::Dialect;
use super::ident::Ident;
use super::records::Projection;
use super::{ColumnType, Executor, Row, Sql, SqlValue};
use crate::error::Result;

/// Which table a column belongs to: the records listed (`t`) or the record a lookup points at
/// inside a `Related` condition (`r`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alias {
    T,
    R,
}

impl Alias {
    fn as_str(self) -> &'static str {
        match self {
            Alias::T => "t",
            Alias::R => "r",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    pub alias: Alias,
    pub name: Ident,
}

impl Column {
    pub fn of(name: Ident) -> Column {
        Column {
            alias: Alias::T,
            name,
        }
    }

    fn sql(&self) -> String {
        format!("{}.{}", self.alias.as_str(), self.name)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmp {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
}

impl Cmp {
    fn sql(self) -> &'static str {
        match self {
            Cmp::Eq => "=",
            Cmp::Ne => "<>",
            Cmp::Gt => ">",
            Cmp::Ge => ">=",
            Cmp::Lt => "<",
            Cmp::Le => "<=",
        }
    }
}

/// A checked filter. `or_null` marks comparisons that also match records without a value
/// (`stage != "won"` includes records with no stage); `negated` inverts set tests.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    True,
    False,
    And(Vec<Condition>),
    Or(Vec<Condition>),
    Compare {
        column: Column,
        op: Cmp,
        value: SqlValue,
        or_null: bool,
    },
    IsNull {
        column: Column,
        negated: bool,
    },
    In {
        column: Column,
        values: Vec<SqlValue>,
        negated: bool,
    },
    /// Case-insensitive substring match on text.
    Contains {
        column: Column,
        text: String,
        negated: bool,
    },
    /// A JSON array column (multi select) holding any of `values`; with no values, holding
    /// anything at all.
    JsonHas {
        column: Column,
        values: Vec<String>,
        negated: bool,
    },
    /// A multi lookup linking to any of `targets`; with none, linking to anything.
    LinkHas {
        join: Ident,
        targets: Vec<String>,
        negated: bool,
    },
    /// Tagged with any of `tags`; with none, tagged at all.
    TagHas {
        entity: String,
        tags: Vec<String>,
        negated: bool,
    },
    /// A department column naming the department at `path` or one below it.
    DepartmentUnder {
        column: Column,
        path: String,
    },
    /// A select column holding any of `values` now, or a change in the record history (rows of
    /// `entity` whose `changes` name `field`) whose old or new value is one of them.
    EverIn {
        column: Column,
        entity: String,
        field: String,
        values: Vec<String>,
        negated: bool,
    },
    /// The record a lookup points at satisfies `inner` (whose columns use alias `r`).
    Related {
        lookup: Column,
        table: Ident,
        inner: Box<Condition>,
        negated: bool,
    },
}

/// A sort key: a column of the listed table and a direction. Empty values sort first going up
/// and last going down, the same on both databases.
#[derive(Debug, Clone, PartialEq)]
pub struct SortKey {
    pub column: Ident,
    pub ty: ColumnType,
    pub desc: bool,
}

/// Where the previous page ended: its last row's sort values and id.
#[derive(Debug, Clone, PartialEq)]
pub struct After {
    pub values: Vec<SqlValue>,
    pub id: String,
}

/// A page query over one entity table.
#[derive(Debug, Clone)]
pub struct Select<'a> {
    pub table: &'a Ident,
    pub tag: &'a str,
    pub projection: &'a Projection,
    pub filter: Condition,
    pub trashed: bool,
    pub sort: Vec<SortKey>,
    /// The id's direction as the final, tie-breaking key (by default the last key's
    /// direction, so a single-key sort walks one `(key, id)` index in one direction).
    pub id_desc: bool,
    pub after: Option<After>,
    pub limit: i64,
}

fn escape_like(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    for c in text.chars() {
        if matches!(c, '\\' | '%' | '_') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn list(sql: &mut Sql, values: &[SqlValue]) -> String {
    values
        .iter()
        .map(|v| sql.param(v.clone()))
        .collect::<Vec<_>>()
        .join(", ")
}

fn text_list(sql: &mut Sql, values: &[String]) -> String {
    values
        .iter()
        .map(|v| sql.param(v.clone()))
        .collect::<Vec<_>>()
        .join(", ")
}

fn not(negated: bool) -> &'static str {
    if negated { "NOT " } else { "" }
}

/// Renders a condition, adding its parameters to `sql`.
pub fn render(dialect: Dialect, condition: &Condition, sql: &mut Sql) -> String {
    match condition {
        Condition::True => "1 = 1".into(),
        Condition::False => "1 = 0".into(),
        Condition::And(parts) | Condition::Or(parts) if parts.is_empty() => {
            if matches!(condition, Condition::And(_)) {
                "1 = 1".into()
            } else {
                "1 = 0".into()
            }
        }
        Condition::And(parts) => format!(
            "({})",
            parts
                .iter()
                .map(|p| render(dialect, p, sql))
                .collect::<Vec<_>>()
                .join(" AND ")
        ),
        Condition::Or(parts) => format!(
            "({})",
            parts
                .iter()
                .map(|p| render(dialect, p, sql))
                .collect::<Vec<_>>()
                .join(" OR ")
        ),
        Condition::Compare {
            column,
            op,
            value,
            or_null,
        } => {
            let p = sql.param(value.clone());
            let c = column.sql();
            if *or_null {
                format!("({c} {} {p} OR {c} IS NULL)", op.sql())
            } else {
                format!("{c} {} {p}", op.sql())
            }
        }
        Condition::IsNull { column, negated } => {
            format!("{} IS {}NULL", column.sql(), not(*negated))
        }
        Condition::In {
            column,
            values,
            negated,
        } => {
            let c = column.sql();
            let items = list(sql, values);
            if *negated {
                format!("({c} NOT IN ({items}) OR {c} IS NULL)")
            } else {
                format!("{c} IN ({items})")
            }
        }
        Condition::Contains {
            column,
            text,
            negated,
        } => {
            let c = column.sql();
            let p = sql.param(format!("%{}%", escape_like(text)));
            let like = dialect.like_ci();
            if *negated {
                format!("({c} NOT {like} {p} ESCAPE '\\' OR {c} IS NULL)")
            } else {
                format!("{c} {like} {p} ESCAPE '\\'")
            }
        }
        Condition::JsonHas {
            column,
            values,
            negated,
        } => {
            let elements = dialect.json_elements(&column.sql(), "je");
            let test = if values.is_empty() {
                String::new()
            } else {
                format!(" WHERE je.value IN ({})", text_list(sql, values))
            };
            format!("{}EXISTS (SELECT 1 FROM {elements}{test})", not(*negated))
        }
        Condition::LinkHas {
            join,
            targets,
            negated,
        } => {
            let test = if targets.is_empty() {
                String::new()
            } else {
                format!(" AND j.\"target_id\" IN ({})", text_list(sql, targets))
            };
            format!(
                "{}EXISTS (SELECT 1 FROM {join} j WHERE j.\"source_id\" = t.\"id\"{test})",
                not(*negated)
            )
        }
        Condition::TagHas {
            entity,
            tags,
            negated,
        } => {
            let e = sql.param(entity.clone());
            let test = if tags.is_empty() {
                String::new()
            } else {
                format!(" AND rt.\"tag\" IN ({})", text_list(sql, tags))
            };
            format!(
                "{}EXISTS (SELECT 1 FROM \"record_tags\" rt WHERE rt.\"entity\" = {e} \
                 AND rt.\"record_id\" = t.\"id\"{test})",
                not(*negated)
            )
        }
        Condition::DepartmentUnder { column, path } => {
            // Paths are ids and slashes: nothing in them is a LIKE wildcard.
            let p = sql.param(format!("{path}%"));
            format!(
                "{} IN (SELECT d.\"id\" FROM \"departments\" d WHERE d.\"path\" LIKE {p})",
                column.sql()
            )
        }
        Condition::EverIn {
            column,
            entity,
            field,
            values,
            negated,
        } => {
            let c = column.sql();
            let id = format!("{}.\"id\"", column.alias.as_str());
            let now = text_list(sql, values);
            let e = sql.param(entity.clone());
            // A cheap text test first, so only entries naming the field are parsed as JSON.
            let mention = sql.param(format!("%\"{}\"%", escape_like(field)));
            let (old, new) = match dialect {
                Dialect::Sqlite => (
                    format!(
                        "json_extract(rh.\"changes\", {})",
                        sql.param(format!("$.{field}.old"))
                    ),
                    format!(
                        "json_extract(rh.\"changes\", {})",
                        sql.param(format!("$.{field}.new"))
                    ),
                ),
                // `changes` is TEXT on PostgreSQL too; every entry is written as JSON.
                Dialect::Postgres => {
                    let key = sql.param(field.clone());
                    (
                        format!("(rh.\"changes\"::jsonb -> {key} ->> 'old')"),
                        format!("(rh.\"changes\"::jsonb -> {key} ->> 'new')"),
                    )
                }
            };
            let before = text_list(sql, values);
            let after = text_list(sql, values);
            // Correlated, so each record is one probe of the (entity, record_id) index rather
            // than a set of every id that ever qualified (too big to hash on a large table).
            let history = format!(
                "EXISTS (SELECT 1 FROM \"record_history\" rh WHERE rh.\"entity\" = {e} \
                 AND rh.\"record_id\" = {id} AND rh.\"changes\" LIKE {mention} ESCAPE '\\' \
                 AND ({old} IN ({before}) OR {new} IN ({after})))"
            );
            if *negated {
                format!("(({c} NOT IN ({now}) OR {c} IS NULL) AND NOT {history})")
            } else {
                format!("({c} IN ({now}) OR {history})")
            }
        }
        Condition::Related {
            lookup,
            table,
            inner,
            negated,
        } => {
            let l = lookup.sql();
            let inner = render(dialect, inner, sql);
            let subquery = format!(
                "SELECT r.\"id\" FROM {table} r WHERE r.\"deleted_at\" IS NULL AND {inner}"
            );
            if *negated {
                format!("({l} IS NULL OR {l} NOT IN ({subquery}))")
            } else {
                format!("{l} IN ({subquery})")
            }
        }
    }
}

fn order_by(dialect: Dialect, query: &Select) -> String {
    let mut keys: Vec<String> = query
        .sort
        .iter()
        .map(|k| dialect.order_key(&format!("t.{}", k.column), k.desc))
        .collect();
    keys.push(format!(
        "t.\"id\" {}",
        if query.id_desc { "DESC" } else { "ASC" }
    ));
    keys.join(", ")
}

/// The condition "comes after the cursor" for the query's order (empty values are the
/// smallest). A single key uses a row comparison, which both databases answer from a
/// `(key, id)` index.
fn after(query: &Select, cursor: &After, sql: &mut Sql) -> String {
    let id_desc = query.id_desc;
    let id_op = if id_desc { "<" } else { ">" };
    if let ([key], [value]) = (query.sort.as_slice(), cursor.values.as_slice())
        && !value.is_null()
    {
        let v = sql.param(value.clone());
        let id = sql.param(cursor.id.clone());
        let c = format!("t.{}", key.column);
        return if key.desc {
            format!("(({c}, t.\"id\") < ({v}, {id}) OR {c} IS NULL)")
        } else {
            format!("({c}, t.\"id\") > ({v}, {id})")
        };
    }
    let id = sql.param(cursor.id.clone());
    let mut condition = format!("t.\"id\" {id_op} {id}");
    for (key, value) in query.sort.iter().zip(&cursor.values).rev() {
        let c = format!("t.{}", key.column);
        let (beyond, equal) = if value.is_null() {
            let beyond = if key.desc {
                "1 = 0".to_owned()
            } else {
                format!("{c} IS NOT NULL")
            };
            (beyond, format!("{c} IS NULL"))
        } else {
            let v = sql.param(value.clone());
            let beyond = if key.desc {
                format!("({c} < {v} OR {c} IS NULL)")
            } else {
                format!("{c} > {v}")
            };
            (beyond, format!("{c} = {v}"))
        };
        condition = format!("({beyond} OR ({equal} AND {condition}))");
    }
    condition
}

fn where_clause(dialect: Dialect, filter: &Condition, trashed: bool, sql: &mut Sql) -> String {
    let live = if trashed {
        "t.\"deleted_at\" IS NOT NULL"
    } else {
        "t.\"deleted_at\" IS NULL"
    };
    match filter {
        Condition::True => live.to_owned(),
        other => format!("{live} AND {}", render(dialect, other, sql)),
    }
}

/// One page of rows in the projection's column order.
///
/// With one sort key, a page that continues across the boundary between values and empty
/// values runs as two range queries (the rest of one region, then the start of the other):
/// `(key, id) < (…) OR key IS NULL` in one statement would keep both databases from seeking
/// into the `(key, id)` index, and a deep page would cost as much as the rows before it.
pub async fn select(ex: &mut impl Executor, query: &Select<'_>) -> Result<Vec<Row>> {
    if let (Some(cursor), [key]) = (&query.after, query.sort.as_slice()) {
        let (first, then) = match (key.desc, cursor.values[0].is_null()) {
            // Going down, empty values come last: the smaller values first, then the empty.
            (true, false) => (Region::BelowCursor, Some(Region::Empty { after_id: None })),
            // Going up, empty values come first: the rest of them, then every value.
            (false, true) => (
                Region::Empty {
                    after_id: Some(&cursor.id),
                },
                Some(Region::Valued),
            ),
            _ => (Region::Cursor, None),
        };
        let mut rows = select_region(ex, query, first, query.limit).await?;
        if let Some(then) = then
            && (rows.len() as i64) < query.limit
        {
            let rest = query.limit - rows.len() as i64;
            rows.extend(select_region(ex, query, then, rest).await?);
        }
        return Ok(rows);
    }
    let region = if query.after.is_some() {
        Region::Cursor
    } else {
        Region::All
    };
    select_region(ex, query, region, query.limit).await
}

/// Which rows of the ordered list a statement reads.
#[derive(Clone, Copy)]
enum Region<'a> {
    All,
    /// Everything after the cursor (general form).
    Cursor,
    /// Rows with a value, after the cursor (one key, the cursor on a value).
    BelowCursor,
    /// Rows without a value for the (single) key, after `after_id` when given.
    Empty {
        after_id: Option<&'a String>,
    },
    /// Rows with a value for the (single) key.
    Valued,
}

async fn select_region(
    ex: &mut impl Executor,
    query: &Select<'_>,
    region: Region<'_>,
    limit: i64,
) -> Result<Vec<Row>> {
    let dialect = ex.dialect();
    let mut sql = Sql::new(query.tag.to_owned());
    let mut conditions = where_clause(dialect, &query.filter, query.trashed, &mut sql);
    let key = query.sort.first().map(|k| format!("t.{}", k.column));
    let extra = match (region, &query.after, &key) {
        (Region::All, _, _) => None,
        (Region::Cursor, Some(cursor), _) => Some(after(query, cursor, &mut sql)),
        (Region::BelowCursor, Some(cursor), Some(key)) => {
            let v = sql.param(cursor.values[0].clone());
            let id = sql.param(cursor.id.clone());
            Some(format!("({key}, t.\"id\") < ({v}, {id})"))
        }
        (Region::Empty { after_id }, _, Some(key)) => Some(match after_id {
            Some(id) => {
                let id = sql.param(id.clone());
                let op = if query.id_desc { "<" } else { ">" };
                format!("{key} IS NULL AND t.\"id\" {op} {id}")
            }
            None => format!("{key} IS NULL"),
        }),
        (Region::Valued, _, Some(key)) => Some(format!("{key} IS NOT NULL")),
        _ => None,
    };
    if let Some(extra) = extra {
        conditions = format!("{conditions} AND {extra}");
    }
    let limit = sql.param(limit);
    let order = order_by(dialect, query);
    sql.push(&format!(
        "SELECT {} FROM {} t WHERE {conditions} ORDER BY {order} LIMIT {limit}",
        query.projection.select_list(),
        query.table
    ));
    ex.fetch_all(&sql, query.projection.column_types()).await
}

/// How many records match (only when a caller asks: `count=true`).
pub async fn count(
    ex: &mut impl Executor,
    table: &Ident,
    filter: &Condition,
    trashed: bool,
) -> Result<i64> {
    let dialect = ex.dialect();
    let mut sql = Sql::new(String::new());
    let conditions = where_clause(dialect, filter, trashed, &mut sql);
    sql.push(&format!(
        "SELECT COUNT(*) FROM {table} t WHERE {conditions}"
    ));
    let rows = ex.fetch_all(&sql, &[ColumnType::Integer]).await?;
    Ok(rows.first().and_then(|r| r[0].as_i64()).unwrap_or_default())
}

/// Sums of numeric columns over the matching records (list totals), in one statement.
pub async fn sums(
    ex: &mut impl Executor,
    table: &Ident,
    columns: &[(Ident, ColumnType)],
    filter: &Condition,
    trashed: bool,
) -> Result<Vec<SqlValue>> {
    if columns.is_empty() {
        return Ok(Vec::new());
    }
    let dialect = ex.dialect();
    let mut sql = Sql::new(String::new());
    let conditions = where_clause(dialect, filter, trashed, &mut sql);
    let list: Vec<String> = columns.iter().map(|(c, _)| format!("SUM(t.{c})")).collect();
    sql.push(&format!(
        "SELECT {} FROM {table} t WHERE {conditions}",
        list.join(", ")
    ));
    let types: Vec<ColumnType> = columns.iter().map(|(_, ty)| *ty).collect();
    let rows = ex.fetch_all(&sql, &types).await?;
    Ok(rows.into_iter().next().unwrap_or_default())
}

/// Counts of matching records per tag.
pub async fn tag_facet(
    ex: &mut impl Executor,
    table: &Ident,
    entity: &str,
    filter: &Condition,
    trashed: bool,
) -> Result<Vec<(String, i64)>> {
    let dialect = ex.dialect();
    let mut sql = Sql::new(String::new());
    let e = sql.param(entity);
    let conditions = where_clause(dialect, filter, trashed, &mut sql);
    sql.push(&format!(
        "SELECT rt.\"tag\", COUNT(*) FROM {table} t JOIN \"record_tags\" rt \
         ON rt.\"entity\" = {e} AND rt.\"record_id\" = t.\"id\" WHERE {conditions} \
         GROUP BY rt.\"tag\" ORDER BY COUNT(*) DESC, rt.\"tag\""
    ));
    let rows = ex
        .fetch_all(&sql, &[ColumnType::Text, ColumnType::Integer])
        .await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            (
                r[0].as_str().unwrap_or_default().to_owned(),
                r[1].as_i64().unwrap_or_default(),
            )
        })
        .collect())
}

/// Counts of matching records per value of one column (select fields).
pub async fn value_facet(
    ex: &mut impl Executor,
    table: &Ident,
    column: &Ident,
    ty: ColumnType,
    filter: &Condition,
    trashed: bool,
) -> Result<Vec<(SqlValue, i64)>> {
    let dialect = ex.dialect();
    let mut sql = Sql::new(String::new());
    let conditions = where_clause(dialect, filter, trashed, &mut sql);
    sql.push(&format!(
        "SELECT t.{column}, COUNT(*) FROM {table} t WHERE {conditions} \
         GROUP BY t.{column} ORDER BY COUNT(*) DESC"
    ));
    let rows = ex.fetch_all(&sql, &[ty, ColumnType::Integer]).await?;
    Ok(rows
        .into_iter()
        .map(|mut r| {
            let n = r.pop().and_then(|v| v.as_i64()).unwrap_or_default();
            (r.pop().unwrap_or(SqlValue::Null(ty)), n)
        })
        .collect())
}

/// The ids of every record matching a filter (bulk changes), in id order.
pub async fn matching_ids(
    ex: &mut impl Executor,
    table: &Ident,
    filter: &Condition,
    limit: i64,
) -> Result<Vec<String>> {
    let dialect = ex.dialect();
    let mut sql = Sql::new(String::new());
    let conditions = where_clause(dialect, filter, false, &mut sql);
    let limit = sql.param(limit);
    sql.push(&format!(
        "SELECT t.\"id\" FROM {table} t WHERE {conditions} ORDER BY t.\"id\" LIMIT {limit}"
    ));
    super::fetch_ids(ex, &sql).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col(name: &'static str) -> Column {
        Column::of(Ident::fixed(name))
    }

    #[test]
    fn negations_keep_empty_values() {
        let mut sql = Sql::default();
        let c = Condition::Compare {
            column: col("stage"),
            op: Cmp::Ne,
            value: SqlValue::Text("won".into()),
            or_null: true,
        };
        assert_eq!(
            render(Dialect::Sqlite, &c, &mut sql),
            "(t.\"stage\" <> $1 OR t.\"stage\" IS NULL)"
        );
        let c = Condition::Contains {
            column: col("name"),
            text: "50%_off".into(),
            negated: false,
        };
        let mut sql = Sql::default();
        assert_eq!(
            render(Dialect::Postgres, &c, &mut sql),
            "t.\"name\" ILIKE $1 ESCAPE '\\'"
        );
        assert_eq!(sql.params[0], SqlValue::Text("%50\\%\\_off%".into()));
    }

    #[test]
    fn ever_in_reads_the_history_with_parameters_only() {
        let c = Condition::EverIn {
            column: col("stage"),
            entity: "deal".into(),
            field: "stage".into(),
            values: vec!["won".into()],
            negated: false,
        };
        let mut sql = Sql::default();
        assert_eq!(
            render(Dialect::Sqlite, &c, &mut sql),
            "(t.\"stage\" IN ($1) OR EXISTS (SELECT 1 FROM \"record_history\" rh \
             WHERE rh.\"entity\" = $2 AND rh.\"record_id\" = t.\"id\" AND rh.\"changes\" LIKE $3 ESCAPE '\\' \
             AND (json_extract(rh.\"changes\", $4) IN ($6) OR json_extract(rh.\"changes\", $5) IN ($7))))"
        );
        assert_eq!(sql.params[2], SqlValue::Text("%\"stage\"%".into()));
        assert_eq!(sql.params[3], SqlValue::Text("$.stage.old".into()));
        let negated = Condition::EverIn {
            column: col("stage"),
            entity: "deal".into(),
            field: "stage".into(),
            values: vec!["won".into()],
            negated: true,
        };
        let mut sql = Sql::default();
        assert_eq!(
            render(Dialect::Postgres, &negated, &mut sql),
            "((t.\"stage\" NOT IN ($1) OR t.\"stage\" IS NULL) AND NOT EXISTS (SELECT 1 \
             FROM \"record_history\" rh WHERE rh.\"entity\" = $2 AND rh.\"record_id\" = t.\"id\" \
             AND rh.\"changes\" LIKE $3 ESCAPE '\\' \
             AND ((rh.\"changes\"::jsonb -> $4 ->> 'old') IN ($5) OR (rh.\"changes\"::jsonb -> $4 ->> 'new') IN ($6))))"
        );
        assert_eq!(sql.params[3], SqlValue::Text("stage".into()));
    }
}
