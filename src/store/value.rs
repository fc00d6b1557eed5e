//! Values crossing the store boundary, and how each database binds and decodes them.
//!
//! The service layer speaks `SqlValue`; only this file knows that SQLite keeps a decimal as a
//! scaled integer and a date as text while PostgreSQL has `NUMERIC` and `DATE`.

use chrono::{DateTime, Datelike, NaiveDate, SecondsFormat, Utc};
use rust_decimal::Decimal;
use serde_json::Value;
use sqlx::postgres::{PgArguments, PgRow};
use sqlx::sqlite::{SqliteArguments, SqliteRow};
use sqlx::{Postgres, Row};

use crate::error::{Error, Result};

/// The storage class of a column. The dialect maps it to a column type per database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ColumnType {
    Text,
    /// Text compared byte-wise (ids, references): `COLLATE "C"` on PostgreSQL.
    Id,
    Integer,
    Boolean,
    /// Exact decimal with a fixed number of places. SQLite: integer scaled by 10^scale.
    Decimal {
        scale: u32,
    },
    Date,
    Datetime,
    Json,
}

/// Largest scale a decimal field may have; keeps SQLite's scaled integers inside i64.
pub const MAX_SCALE: u32 = 8;

/// A value bound to or read from SQL. Nulls carry their column type, because PostgreSQL
/// types every parameter and a text-typed NULL does not go into a NUMERIC column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SqlValue {
    Null(ColumnType),
    Text(String),
    Integer(i64),
    Boolean(bool),
    Decimal(Decimal, u32),
    Date(NaiveDate),
    Datetime(DateTime<Utc>),
    /// Boxed: every value is as large as the largest kind, and a JSON value inline made each
    /// one 72 bytes instead of 32 (a batch of an import moves hundreds of thousands of values).
    Json(Box<Value>),
}

/// Equal values hash alike (what a set of them needs). JSON values hash by their kind alone:
/// two equal objects may list their keys in different orders.
impl std::hash::Hash for SqlValue {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        std::mem::discriminant(self).hash(state);
        match self {
            SqlValue::Null(ty) => ty.hash(state),
            SqlValue::Text(s) => s.hash(state),
            SqlValue::Integer(i) => i.hash(state),
            SqlValue::Boolean(b) => b.hash(state),
            SqlValue::Decimal(d, scale) => (d, scale).hash(state),
            SqlValue::Date(d) => d.hash(state),
            SqlValue::Datetime(t) => t.hash(state),
            SqlValue::Json(_) => {}
        }
    }
}

impl SqlValue {
    pub fn is_null(&self) -> bool {
        matches!(self, SqlValue::Null(_))
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            SqlValue::Text(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_i64(&self) -> Option<i64> {
        match self {
            SqlValue::Integer(i) => Some(*i),
            _ => None,
        }
    }

    pub fn into_text(self) -> Option<String> {
        match self {
            SqlValue::Text(s) => Some(s),
            _ => None,
        }
    }

    /// The value as plain JSON, for messages and examples (not for record output, which
    /// goes through the field kind).
    pub fn to_json(&self) -> Value {
        match self {
            SqlValue::Null(_) => Value::Null,
            SqlValue::Text(s) => Value::String(s.clone()),
            SqlValue::Integer(i) => Value::from(*i),
            SqlValue::Boolean(b) => Value::Bool(*b),
            SqlValue::Decimal(d, _) => Value::String(d.to_string()),
            SqlValue::Date(d) => Value::String(format_date(d)),
            SqlValue::Datetime(t) => Value::String(format_datetime(t)),
            SqlValue::Json(v) => (**v).clone(),
        }
    }
}

impl From<&str> for SqlValue {
    fn from(s: &str) -> Self {
        SqlValue::Text(s.to_owned())
    }
}

impl From<String> for SqlValue {
    fn from(s: String) -> Self {
        SqlValue::Text(s)
    }
}

impl From<i64> for SqlValue {
    fn from(i: i64) -> Self {
        SqlValue::Integer(i)
    }
}

impl From<bool> for SqlValue {
    fn from(b: bool) -> Self {
        SqlValue::Boolean(b)
    }
}

impl From<DateTime<Utc>> for SqlValue {
    fn from(t: DateTime<Utc>) -> Self {
        SqlValue::Datetime(t)
    }
}

impl From<Option<String>> for SqlValue {
    fn from(s: Option<String>) -> Self {
        s.map_or(SqlValue::Null(ColumnType::Text), SqlValue::Text)
    }
}

/// A date as `YYYY-MM-DD`: the same text as the date's own `Display`, written digit by digit
/// for years 0 to 9999 (an import writes each date three times, and `Display` goes through
/// the formatter a character at a time).
pub fn format_date(date: &NaiveDate) -> String {
    let (year, month, day) = (date.year(), date.month(), date.day());
    let Ok(year @ 0..=9999) = u32::try_from(year) else {
        return date.to_string();
    };
    let digit = |n: u32| char::from(b'0' + (n % 10) as u8);
    let mut out = String::with_capacity(10);
    out.extend([
        digit(year / 1000),
        digit(year / 100),
        digit(year / 10),
        digit(year),
        '-',
        digit(month / 10),
        digit(month),
        '-',
        digit(day / 10),
        digit(day),
    ]);
    out
}

/// Datetimes are written with a fixed shape (microseconds, `Z`) so that SQLite's text
/// comparison orders them correctly.
pub fn format_datetime(t: &DateTime<Utc>) -> String {
    // A batch stamps all its rows, their history and their events with one time: formatted
    // once, not five times a row.
    thread_local! {
        static LAST: std::cell::RefCell<Option<(DateTime<Utc>, String)>> =
            const { std::cell::RefCell::new(None) };
    }
    LAST.with(|last| {
        let mut last = last.borrow_mut();
        if let Some((at, text)) = last.as_ref()
            && at == t
        {
            return text.clone();
        }
        let text = t.to_rfc3339_opts(SecondsFormat::Micros, true);
        *last = Some((*t, text.clone()));
        text
    })
}

pub fn parse_datetime(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// A value written as JSON by `SqlValue::to_json` (cursors), read back for a column type.
pub fn json_to_stored(value: &Value, ty: ColumnType) -> Option<SqlValue> {
    if value.is_null() {
        return Some(SqlValue::Null(ty));
    }
    Some(match ty {
        ColumnType::Text | ColumnType::Id => SqlValue::Text(value.as_str()?.to_owned()),
        ColumnType::Integer => SqlValue::Integer(value.as_i64()?),
        ColumnType::Boolean => SqlValue::Boolean(value.as_bool()?),
        ColumnType::Decimal { scale } => {
            SqlValue::Decimal(value.as_str()?.parse::<Decimal>().ok()?, scale)
        }
        ColumnType::Date => {
            SqlValue::Date(NaiveDate::parse_from_str(value.as_str()?, "%Y-%m-%d").ok()?)
        }
        ColumnType::Datetime => SqlValue::Datetime(parse_datetime(value.as_str()?)?),
        ColumnType::Json => SqlValue::Json(Box::new(value.clone())),
    })
}

/// A decimal as SQLite stores it: the integer `value × 10^scale`.
pub fn decimal_to_scaled(value: Decimal, scale: u32) -> Result<i64> {
    let mut rounded =
        value.round_dp_with_strategy(scale, rust_decimal::RoundingStrategy::MidpointAwayFromZero);
    rounded.rescale(scale);
    if rounded.scale() != scale {
        return Err(Error::invalid_field("", format!("{value} is too large")));
    }
    i64::try_from(rounded.mantissa())
        .map_err(|_| Error::invalid_field("", format!("{value} is too large")))
}

pub fn scaled_to_decimal(value: i64, scale: u32) -> Decimal {
    Decimal::new(value, scale)
}

/// Binds the next parameter in place (`Query::bind` moves the whole query per value, which a
/// multi-row insert of hundreds of values felt).
pub(crate) fn bind_sqlite(arguments: &mut SqliteArguments, value: SqlValue) -> Result<()> {
    use sqlx::Arguments;
    match value {
        SqlValue::Null(ColumnType::Integer | ColumnType::Boolean | ColumnType::Decimal { .. }) => {
            arguments.add(None::<i64>)
        }
        SqlValue::Null(_) => arguments.add(None::<String>),
        SqlValue::Text(s) => arguments.add(s),
        SqlValue::Integer(i) => arguments.add(i),
        SqlValue::Boolean(b) => arguments.add(b),
        SqlValue::Decimal(d, scale) => arguments.add(decimal_to_scaled(d, scale)?),
        SqlValue::Date(d) => arguments.add(format_date(&d)),
        SqlValue::Datetime(t) => arguments.add(format_datetime(&t)),
        SqlValue::Json(v) => arguments.add(v.to_string()),
    }
    .map_err(unbindable)
}

pub(crate) fn bind_postgres(
    query: &mut sqlx::query::Query<'static, Postgres, PgArguments>,
    value: SqlValue,
) -> Result<()> {
    match value {
        SqlValue::Null(ty) => match ty {
            ColumnType::Text | ColumnType::Id => query.try_bind(None::<String>),
            ColumnType::Integer => query.try_bind(None::<i64>),
            ColumnType::Boolean => query.try_bind(None::<bool>),
            ColumnType::Decimal { .. } => query.try_bind(None::<Decimal>),
            ColumnType::Date => query.try_bind(None::<NaiveDate>),
            ColumnType::Datetime => query.try_bind(None::<DateTime<Utc>>),
            ColumnType::Json => query.try_bind(None::<sqlx::types::Json<Value>>),
        },
        SqlValue::Text(s) => query.try_bind(s),
        SqlValue::Integer(i) => query.try_bind(i),
        SqlValue::Boolean(b) => query.try_bind(b),
        SqlValue::Decimal(d, scale) => query.try_bind(d.round_dp(scale)),
        SqlValue::Date(d) => query.try_bind(d),
        SqlValue::Datetime(t) => query.try_bind(t),
        SqlValue::Json(v) => query.try_bind(sqlx::types::Json(*v)),
    }
    .map_err(unbindable)
}

fn unbindable(error: sqlx::error::BoxDynError) -> Error {
    Error::internal(format!(
        "a value could not be bound to a statement: {error}"
    ))
}

fn corrupt(column: usize, what: &str, detail: impl std::fmt::Display) -> Error {
    Error::internal(format!(
        "column {column}: stored {what} unreadable: {detail}"
    ))
}

pub(crate) fn decode_sqlite(row: &SqliteRow, index: usize, ty: ColumnType) -> Result<SqlValue> {
    Ok(match ty {
        ColumnType::Text | ColumnType::Id => row
            .try_get::<Option<String>, _>(index)?
            .map_or(SqlValue::Null(ty), SqlValue::Text),
        ColumnType::Integer => row
            .try_get::<Option<i64>, _>(index)?
            .map_or(SqlValue::Null(ty), SqlValue::Integer),
        ColumnType::Boolean => row
            .try_get::<Option<bool>, _>(index)?
            .map_or(SqlValue::Null(ty), SqlValue::Boolean),
        ColumnType::Decimal { scale } => row
            .try_get::<Option<i64>, _>(index)?
            .map_or(SqlValue::Null(ty), |v| {
                SqlValue::Decimal(scaled_to_decimal(v, scale), scale)
            }),
        ColumnType::Date => match row.try_get::<Option<String>, _>(index)? {
            None => SqlValue::Null(ty),
            Some(s) => SqlValue::Date(
                // `YYYY-MM-DD`, as written; read without a format string to parse each time.
                s.parse::<NaiveDate>()
                    .map_err(|e| corrupt(index, "date", e))?,
            ),
        },
        ColumnType::Datetime => match row.try_get::<Option<String>, _>(index)? {
            None => SqlValue::Null(ty),
            Some(s) => SqlValue::Datetime(
                parse_datetime(&s).ok_or_else(|| corrupt(index, "datetime", &s))?,
            ),
        },
        ColumnType::Json => match row.try_get::<Option<String>, _>(index)? {
            None => SqlValue::Null(ty),
            Some(s) => SqlValue::Json(Box::new(
                serde_json::from_str(&s).map_err(|e| corrupt(index, "json", e))?,
            )),
        },
    })
}

pub(crate) fn decode_postgres(row: &PgRow, index: usize, ty: ColumnType) -> Result<SqlValue> {
    Ok(match ty {
        ColumnType::Text | ColumnType::Id => row
            .try_get::<Option<String>, _>(index)?
            .map_or(SqlValue::Null(ty), SqlValue::Text),
        ColumnType::Integer => row
            .try_get::<Option<i64>, _>(index)?
            .map_or(SqlValue::Null(ty), SqlValue::Integer),
        ColumnType::Boolean => row
            .try_get::<Option<bool>, _>(index)?
            .map_or(SqlValue::Null(ty), SqlValue::Boolean),
        ColumnType::Decimal { scale } => {
            row.try_get::<Option<Decimal>, _>(index)?
                .map_or(SqlValue::Null(ty), |mut d| {
                    d.rescale(scale);
                    SqlValue::Decimal(d, scale)
                })
        }
        ColumnType::Date => row
            .try_get::<Option<NaiveDate>, _>(index)?
            .map_or(SqlValue::Null(ty), SqlValue::Date),
        ColumnType::Datetime => row
            .try_get::<Option<DateTime<Utc>>, _>(index)?
            .map_or(SqlValue::Null(ty), SqlValue::Datetime),
        ColumnType::Json => row
            .try_get::<Option<sqlx::types::Json<Value>>, _>(index)?
            .map_or(SqlValue::Null(ty), |j| SqlValue::Json(Box::new(j.0))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    /// A statement's values are moved and copied by the hundred thousand in an import: no kind
    /// may make every value larger than a string and a tag.
    #[test]
    fn a_value_is_no_larger_than_a_string_and_its_tag() {
        assert!(std::mem::size_of::<SqlValue>() <= 32);
    }

    #[test]
    fn decimals_scale_exactly() {
        let d = Decimal::from_str("0.105").unwrap();
        assert_eq!(decimal_to_scaled(d, 2).unwrap(), 11);
        assert_eq!(scaled_to_decimal(11, 2).to_string(), "0.11");
        assert_eq!(decimal_to_scaled(Decimal::from(3), 2).unwrap(), 300);
        assert!(decimal_to_scaled(Decimal::from_str("100000000000000000000").unwrap(), 2).is_err());
    }

    #[test]
    fn datetimes_sort_as_text() {
        let a = parse_datetime("2024-01-02T03:04:05Z").unwrap();
        let b = parse_datetime("2024-01-02T03:04:05.5+00:00").unwrap();
        assert!(format_datetime(&a) < format_datetime(&b));
        assert_eq!(format_datetime(&a), "2024-01-02T03:04:05.000000Z");
    }
}
