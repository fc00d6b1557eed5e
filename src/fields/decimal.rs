//! `decimal`, `money` and `percent`: exact numbers with a fixed number of places (`x-scale`,
//! default 2). Accepted as JSON numbers or strings, rounded half away from zero, returned as
//! strings so no client ever sees a binary float. `money` may name an ISO currency
//! (`x-currency`); `percent` holds the number of percent (12.5 means 12.5 %).

use std::str::FromStr;

use rust_decimal::{Decimal, RoundingStrategy};
use serde_json::{Map, Value, json};

use super::{Capabilities, TextFormat, TextInput, text_form};
use super::{CellProblem, FieldType, describe, schema_of};
use crate::fields::Kind;
use crate::schema::definition::FieldDef;
use crate::store::value::{MAX_SCALE, decimal_to_scaled};
use crate::store::{ColumnType, SqlValue};

pub const DEFAULT_SCALE: u32 = 2;

pub struct DecimalKind {
    kind: Kind,
}

pub static DECIMAL: DecimalKind = DecimalKind {
    kind: Kind::Decimal,
};
pub static MONEY: DecimalKind = DecimalKind { kind: Kind::Money };
pub static PERCENT: DecimalKind = DecimalKind {
    kind: Kind::Percent,
};

/// Strings of digits with an optional sign and fraction; no exponents, no thousands separators.
pub const DECIMAL_PATTERN: &str = "^[-+]?[0-9]+(\\.[0-9]+)?$";

/// `x-scale` of a decimal, money, percent, formula or rollup field (default 2).
pub fn scale_setting(property: &Map<String, Value>) -> u32 {
    property
        .get("x-scale")
        .and_then(Value::as_u64)
        .map_or(DEFAULT_SCALE, |s| s.min(u64::from(u32::MAX)) as u32)
}

/// Parses a JSON number or numeric string exactly (never through f64).
pub fn parse_decimal(value: &Value) -> Result<Decimal, String> {
    let text = match value {
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.trim().to_owned(),
        other => return Err(format!("must be a number, not {}", describe(other))),
    };
    Decimal::from_str(&text)
        .or_else(|_| Decimal::from_scientific(&text))
        .map_err(|_| format!("'{text}' is not a number"))
}

impl FieldType for DecimalKind {
    fn capabilities(&self, _: &FieldDef) -> Capabilities {
        Capabilities::NUMBER
    }

    fn parse_settings(
        &self,
        property: &Map<String, Value>,
        field: &mut FieldDef,
        _errors: &mut Vec<String>,
    ) {
        field.scale = scale_setting(property);
    }

    fn to_text(&self, field: &FieldDef, value: &Value, format: &TextFormat) -> String {
        match parse_decimal(value) {
            Ok(d) => text_form::format_decimal(d, format.places.unwrap_or(field.scale)),
            Err(_) => String::new(),
        }
    }

    fn parse_text(&self, _: &FieldDef, text: &str, _: &TextInput) -> Result<Value, CellProblem> {
        let d = match self.kind {
            Kind::Percent => text_form::parse_percent(text)?,
            _ => text_form::parse_decimal(text)?,
        };
        Ok(Value::String(d.to_string()))
    }

    fn settings(&self) -> &'static [&'static str] {
        match self.kind {
            Kind::Money => &["x-scale", "minimum", "maximum", "x-currency"],
            _ => &["x-scale", "minimum", "maximum"],
        }
    }

    fn column(&self, field: &FieldDef) -> Option<ColumnType> {
        Some(ColumnType::Decimal { scale: field.scale })
    }

    fn implied(&self, field: &FieldDef) -> Map<String, Value> {
        let mut map = schema_of("number", &[]);
        map.insert("type".into(), json!(["number", "string"]));
        map.insert("pattern".into(), json!(DECIMAL_PATTERN));
        map.insert("x-scale".into(), json!(field.scale));
        map
    }

    fn check(&self, field: &FieldDef, errors: &mut Vec<String>) {
        if field.scale > MAX_SCALE {
            errors.push(format!("x-scale must be between 0 and {MAX_SCALE}"));
        }
    }

    fn to_sql(&self, field: &FieldDef, value: &Value) -> Result<SqlValue, String> {
        let d = parse_decimal(value)?
            .round_dp_with_strategy(field.scale, RoundingStrategy::MidpointAwayFromZero);
        if let Some(min) = field.minimum
            && d < min
        {
            return Err(format!("must be at least {min}"));
        }
        if let Some(max) = field.maximum
            && d > max
        {
            return Err(format!("must be at most {max}"));
        }
        // The same range on both databases: what SQLite's scaled 64-bit integer holds.
        decimal_to_scaled(d, field.scale).map_err(|_| {
            format!(
                "is too large (at most {} digits before the decimal point)",
                18 - field.scale
            )
        })?;
        Ok(SqlValue::Decimal(d, field.scale))
    }
}
