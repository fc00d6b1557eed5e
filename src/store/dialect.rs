//! What differs between SQLite and PostgreSQL in the SQL we generate: column types, JSON
//! array access, the few DDL statements SQLite lacks. Nothing outside `store` matches on it.

use super::ident::Ident;
use super::value::ColumnType;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

impl Dialect {
    pub fn name(self) -> &'static str {
        match self {
            Dialect::Sqlite => "sqlite",
            Dialect::Postgres => "postgres",
        }
    }

    /// The declared column type. SQLite tables are `STRICT`, so their types are enforced too.
    pub fn column_type(self, ty: ColumnType) -> String {
        match (self, ty) {
            (Dialect::Sqlite, ColumnType::Integer | ColumnType::Boolean) => "INTEGER".into(),
            // Exact decimals: the integer value × 10^scale (see docs/decisions/001-exact-decimals.md).
            (Dialect::Sqlite, ColumnType::Decimal { .. }) => "INTEGER".into(),
            (Dialect::Sqlite, _) => "TEXT".into(),
            (Dialect::Postgres, ColumnType::Text) => "TEXT".into(),
            (Dialect::Postgres, ColumnType::Id) => "TEXT COLLATE \"C\"".into(),
            (Dialect::Postgres, ColumnType::Integer) => "BIGINT".into(),
            (Dialect::Postgres, ColumnType::Boolean) => "BOOLEAN".into(),
            (Dialect::Postgres, ColumnType::Decimal { scale }) => format!("NUMERIC(30,{scale})"),
            (Dialect::Postgres, ColumnType::Date) => "DATE".into(),
            (Dialect::Postgres, ColumnType::Datetime) => "TIMESTAMPTZ".into(),
            (Dialect::Postgres, ColumnType::Json) => "JSONB".into(),
        }
    }

    /// Case-insensitive `LIKE` (SQLite's `LIKE` already ignores ASCII case; Chinese has none).
    /// The literal `true` of a boolean column.
    pub fn true_literal(self) -> &'static str {
        match self {
            Dialect::Postgres => "TRUE",
            Dialect::Sqlite => "1",
        }
    }

    pub fn like_ci(self) -> &'static str {
        match self {
            Dialect::Sqlite => "LIKE",
            Dialect::Postgres => "ILIKE",
        }
    }

    /// An `ORDER BY` key where empty values are the smallest: first going up, last going down.
    /// That is SQLite's own order; PostgreSQL is told so (and its indexes are built to match).
    pub fn order_key(self, column: &str, desc: bool) -> String {
        match (self, desc) {
            (Dialect::Sqlite, false) => format!("{column} ASC"),
            (Dialect::Sqlite, true) => format!("{column} DESC"),
            (Dialect::Postgres, false) => format!("{column} ASC NULLS FIRST"),
            (Dialect::Postgres, true) => format!("{column} DESC NULLS LAST"),
        }
    }

    /// The leading column of a sort index, ordered like `order_key`.
    pub fn index_key(self, column: &Ident) -> String {
        match self {
            Dialect::Sqlite => column.to_string(),
            Dialect::Postgres => format!("{column} NULLS FIRST"),
        }
    }

    /// Suffix of `CREATE TABLE (…)`. SQLite record tables are clustered by their (time-ordered)
    /// id rather than a hidden rowid: reads by id take one b-tree search, and scans in id order
    /// read the table itself instead of an index plus a lookup per row.
    pub fn table_options(self) -> &'static str {
        match self {
            Dialect::Sqlite => " STRICT, WITHOUT ROWID",
            Dialect::Postgres => "",
        }
    }

    /// A table-valued expression yielding the elements of a JSON array column as text, named
    /// `alias`, with the element in its column `value`.
    pub fn json_elements(self, column: &str, alias: &str) -> String {
        match self {
            Dialect::Sqlite => format!("json_each({column}) AS {alias}"),
            Dialect::Postgres => format!("jsonb_array_elements_text({column}) AS {alias}(value)"),
        }
    }

    /// A condition true when a decimal column (stored with `from` places) has digits beyond
    /// `to` places.
    pub fn has_more_places(self, column: &Ident, from: u32, to: u32) -> String {
        match self {
            Dialect::Sqlite => format!("{column} % {} <> 0", 10i64.pow(from - to)),
            Dialect::Postgres => format!("{column} <> round({column}, {to})"),
        }
    }

    /// An expression wrapping a text column into a one-element JSON array.
    pub fn json_wrap(self, column: &str) -> String {
        match self {
            Dialect::Sqlite => format!("json_array({column})"),
            Dialect::Postgres => format!("jsonb_build_array({column})"),
        }
    }

    /// Formats a counter `n` with the text parameters `prefix` and `suffix` and a zero-padded
    /// width (an integer parameter on PostgreSQL, a printf format on SQLite).
    pub fn format_counter(
        self,
        prefix: &str,
        width_or_format: &str,
        number: &str,
        suffix: &str,
    ) -> String {
        match self {
            Dialect::Sqlite => {
                format!("{prefix} || printf({width_or_format}, {number}) || {suffix}")
            }
            Dialect::Postgres => format!(
                "{prefix} || lpad(({number})::text, ({width_or_format})::int, '0') || {suffix}"
            ),
        }
    }

    /// Converting a column's stored type in place. `using` is an SQL expression over the old
    /// column. SQLite keeps the declared type (its storage class is unchanged for the changes we
    /// allow) and rewrites values with an UPDATE.
    pub fn change_column_type(
        self,
        table: &Ident,
        column: &Ident,
        to: ColumnType,
        using: &str,
    ) -> String {
        match self {
            Dialect::Sqlite => format!("UPDATE {table} SET {column} = {using}"),
            Dialect::Postgres => format!(
                "ALTER TABLE {table} ALTER COLUMN {column} TYPE {} USING {using}",
                self.column_type(to)
            ),
        }
    }

    /// Keeps writers out of a table while a schema change checks its data and alters it.
    /// SQLite's `BEGIN IMMEDIATE` already holds the database write lock.
    pub fn lock_table(self, table: &Ident) -> Option<String> {
        match self {
            Dialect::Sqlite => None,
            Dialect::Postgres => Some(format!("LOCK TABLE {table} IN SHARE ROW EXCLUSIVE MODE")),
        }
    }

    /// Locks one row until the transaction ends, so a read-modify-write of a record is not
    /// overtaken by a concurrent one. SQLite's single writer already serializes writes.
    pub fn lock_row(self, table: &Ident) -> Option<String> {
        match self {
            Dialect::Sqlite => None,
            Dialect::Postgres => Some(format!(
                "SELECT 1 FROM {table} WHERE \"id\" = $1 FOR UPDATE"
            )),
        }
    }

    /// Renames the primary-key constraint along with an archived table; PostgreSQL constraint
    /// names are schema-wide and would block a new table of the old name.
    pub fn rename_primary_key(self, table: &Ident, old_table: &Ident) -> Option<String> {
        match self {
            Dialect::Sqlite => None,
            Dialect::Postgres => {
                let old = Ident::derived(old_table.as_str(), &["pkey"]);
                let new = Ident::derived(table.as_str(), &["pkey"]);
                Some(format!(
                    "ALTER TABLE {table} RENAME CONSTRAINT {old} TO {new}"
                ))
            }
        }
    }

    /// A power of ten as an SQL literal of the right type for scaling decimals.
    pub fn scale_factor(self, places: u32) -> String {
        let factor = 10i64.pow(places);
        match self {
            Dialect::Sqlite => factor.to_string(),
            Dialect::Postgres => format!("{factor}::numeric"),
        }
    }
}
