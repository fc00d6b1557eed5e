//! Formulas: type-checking an expression against a record's fields, and evaluating it with
//! exact decimal arithmetic. A formula never fails a save: division by zero, overflow or a
//! missing value make the result empty (null).

use chrono::{DateTime, Datelike, Months, NaiveDate, Utc};
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;

use super::{BinaryOp, Expr, ExprError, ExprKind, UnaryOp, Unit};

/// The type of a formula value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Type {
    /// Only the literal `null`: fits anywhere.
    Null,
    Bool,
    Int,
    Dec,
    Text,
    Date,
    DateTime,
}

impl Type {
    pub fn name(self) -> &'static str {
        match self {
            Type::Null => "empty",
            Type::Bool => "true/false",
            Type::Int => "whole number",
            Type::Dec => "decimal",
            Type::Text => "text",
            Type::Date => "date",
            Type::DateTime => "date and time",
        }
    }

    fn numeric(self) -> bool {
        matches!(self, Type::Int | Type::Dec | Type::Null)
    }
}

/// A formula value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Dec(Decimal),
    Text(String),
    Date(NaiveDate),
    DateTime(DateTime<Utc>),
}

/// Functions formulas may call: name, and how many arguments (min, max).
pub const FUNCTIONS: &[(&str, usize, usize)] = &[
    ("if", 3, 3),
    ("round", 1, 2),
    ("abs", 1, 1),
    ("min", 1, 16),
    ("max", 1, 16),
    ("concat", 1, 16),
    ("len", 1, 1),
    ("upper", 1, 1),
    ("lower", 1, 1),
    ("trim", 1, 1),
    ("coalesce", 1, 16),
    ("today", 0, 0),
    ("now", 0, 0),
    ("days_between", 2, 2),
    ("year", 1, 1),
    ("month", 1, 1),
    ("day", 1, 1),
    ("add_days", 2, 2),
    ("add_months", 2, 2),
    ("text", 1, 1),
];

fn unify(a: Type, b: Type, pos: usize) -> Result<Type, ExprError> {
    match (a, b) {
        (x, y) if x == y => Ok(x),
        (Type::Null, t) | (t, Type::Null) => Ok(t),
        (Type::Int, Type::Dec) | (Type::Dec, Type::Int) => Ok(Type::Dec),
        _ => Err(ExprError::new(
            pos,
            format!("a {} and a {} cannot be mixed here", a.name(), b.name()),
        )),
    }
}

/// Works out the type of an expression, checking every field it names (`field` gives the type
/// of a field of this record, or `None` when there is no such field or it cannot be used).
pub fn check(expr: &Expr, field: &impl Fn(&str) -> Option<Type>) -> Result<Type, ExprError> {
    let pos = expr.pos;
    let want = |t: Type, ok: bool, what: &str| -> Result<Type, ExprError> {
        if ok {
            Ok(t)
        } else {
            Err(ExprError::new(pos, format!("{what}, not a {}", t.name())))
        }
    };
    match &expr.kind {
        ExprKind::Null => Ok(Type::Null),
        ExprKind::Bool(_) => Ok(Type::Bool),
        ExprKind::Number(n) => Ok(if n.contains('.') {
            Type::Dec
        } else {
            Type::Int
        }),
        ExprKind::Str(_) => Ok(Type::Text),
        ExprKind::Field(path) if path.len() > 1 => Err(ExprError::new(
            pos,
            "a formula uses this record's own fields; related records come in through rollups",
        )),
        ExprKind::Field(path) => field(&path[0]).ok_or_else(|| {
            ExprError::new(
                pos,
                format!("there is no field '{}' a formula can use", path[0]),
            )
        }),
        ExprKind::Macro(m) => match m.as_str() {
            "today" => Ok(Type::Date),
            "now" => Ok(Type::DateTime),
            other => Err(ExprError::new(
                pos,
                format!("@{other} cannot be used in a formula"),
            )),
        },
        ExprKind::Duration(..) => Err(ExprError::new(
            pos,
            "a duration must be added to or subtracted from a date",
        )),
        ExprKind::Unary(UnaryOp::Not, inner) => {
            let t = check(inner, field)?;
            want(
                t,
                matches!(t, Type::Bool | Type::Null),
                "'!' needs true/false",
            )
        }
        ExprKind::Unary(UnaryOp::Neg, inner) => {
            let t = check(inner, field)?;
            want(t, t.numeric(), "'-' needs a number")
        }
        ExprKind::Binary(op, l, r) => {
            if matches!(op, BinaryOp::Add | BinaryOp::Sub)
                && let ExprKind::Duration(..) = r.kind
            {
                let t = check(l, field)?;
                return want(
                    t,
                    matches!(t, Type::Date | Type::DateTime),
                    "a duration is added to a date",
                );
            }
            let (a, b) = (check(l, field)?, check(r, field)?);
            match op {
                BinaryOp::And | BinaryOp::Or => {
                    want(
                        a,
                        matches!(a, Type::Bool | Type::Null),
                        "&& and || join true/false values",
                    )?;
                    want(
                        b,
                        matches!(b, Type::Bool | Type::Null),
                        "&& and || join true/false values",
                    )?;
                    Ok(Type::Bool)
                }
                BinaryOp::Contains | BinaryOp::NotContains => {
                    want(
                        a,
                        matches!(a, Type::Text | Type::Null),
                        "'~' looks inside text",
                    )?;
                    Ok(Type::Bool)
                }
                op if op.is_comparison() => {
                    unify(a, b, pos)?;
                    Ok(Type::Bool)
                }
                BinaryOp::Add if a == Type::Text || b == Type::Text => Ok(Type::Text),
                BinaryOp::Add | BinaryOp::Sub if a == Type::Date && b == Type::Int => {
                    Ok(Type::Date)
                }
                BinaryOp::Sub if a == Type::Date && b == Type::Date => Ok(Type::Int),
                BinaryOp::Add | BinaryOp::Sub | BinaryOp::Mul => {
                    want(a, a.numeric(), "arithmetic needs numbers")?;
                    want(b, b.numeric(), "arithmetic needs numbers")?;
                    unify(a, b, pos)
                }
                BinaryOp::Div => {
                    want(a, a.numeric(), "arithmetic needs numbers")?;
                    want(b, b.numeric(), "arithmetic needs numbers")?;
                    Ok(Type::Dec)
                }
                _ => Ok(Type::Bool),
            }
        }
        ExprKind::In(l, items) => {
            let t = check(l, field)?;
            for item in items {
                unify(t, check(item, field)?, item.pos)?;
            }
            Ok(Type::Bool)
        }
        ExprKind::EverIn(..) => Err(ExprError::new(
            pos,
            "'ever in' reads a record's history, so it works in filters, not in formulas",
        )),
        ExprKind::Call(name, args) => check_call(name, args, pos, field),
    }
}

fn check_call(
    name: &str,
    args: &[Expr],
    pos: usize,
    field: &impl Fn(&str) -> Option<Type>,
) -> Result<Type, ExprError> {
    let Some((_, min, max)) = FUNCTIONS.iter().find(|(f, _, _)| *f == name) else {
        let known: Vec<&str> = FUNCTIONS.iter().map(|(f, _, _)| *f).collect();
        return Err(ExprError::new(
            pos,
            format!(
                "there is no function '{name}' (known: {})",
                known.join(", ")
            ),
        ));
    };
    if args.len() < *min || args.len() > *max {
        return Err(ExprError::new(
            pos,
            format!("{name} takes {min} to {max} arguments, not {}", args.len()),
        ));
    }
    let types = args
        .iter()
        .map(|a| check(a, field))
        .collect::<Result<Vec<_>, _>>()?;
    let arg = |i: usize, ok: fn(Type) -> bool, what: &str| -> Result<Type, ExprError> {
        let t = types[i];
        if ok(t) || t == Type::Null {
            Ok(t)
        } else {
            Err(ExprError::new(
                args[i].pos,
                format!("{name} needs {what}, not a {}", t.name()),
            ))
        }
    };
    let number = |t: Type| matches!(t, Type::Int | Type::Dec);
    let date = |t: Type| t == Type::Date;
    Ok(match name {
        "if" => {
            arg(0, |t| t == Type::Bool, "true/false first")?;
            unify(types[1], types[2], pos)?
        }
        "round" => {
            arg(0, number, "a number")?;
            if args.len() == 2 {
                arg(1, |t| t == Type::Int, "a whole number of places")?;
            }
            Type::Dec
        }
        "abs" => arg(0, number, "a number")?,
        "min" | "max" => {
            let mut t = Type::Null;
            for i in 0..args.len() {
                t = unify(t, arg(i, number, "numbers")?, pos)?;
            }
            t
        }
        "coalesce" => {
            let mut t = Type::Null;
            for (i, ty) in types.iter().enumerate() {
                t = unify(t, *ty, args[i].pos)?;
            }
            t
        }
        "concat" | "text" => Type::Text,
        "len" => {
            arg(0, |t| t == Type::Text, "text")?;
            Type::Int
        }
        "upper" | "lower" | "trim" => arg(0, |t| t == Type::Text, "text")?,
        "today" => Type::Date,
        "now" => Type::DateTime,
        "days_between" => {
            arg(0, date, "dates")?;
            arg(1, date, "dates")?;
            Type::Int
        }
        "year" | "month" | "day" => {
            arg(0, |t| matches!(t, Type::Date | Type::DateTime), "a date")?;
            Type::Int
        }
        "add_days" | "add_months" => {
            arg(0, date, "a date first")?;
            arg(1, |t| t == Type::Int, "a whole number second")?;
            Type::Date
        }
        _ => Type::Null,
    })
}

/// What a formula sees while it runs.
pub struct Scope<'a> {
    pub field: &'a dyn Fn(&str) -> Value,
    pub now: DateTime<Utc>,
}

fn to_dec(v: &Value) -> Option<Decimal> {
    match v {
        Value::Int(i) => Some(Decimal::from(*i)),
        Value::Dec(d) => Some(*d),
        _ => None,
    }
}

fn truthy(v: &Value) -> bool {
    matches!(v, Value::Bool(true))
}

fn text_of(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::Bool(b) => b.to_string(),
        Value::Int(i) => i.to_string(),
        Value::Dec(d) => d.normalize().to_string(),
        Value::Text(s) => s.clone(),
        Value::Date(d) => d.format("%Y-%m-%d").to_string(),
        Value::DateTime(t) => crate::store::value::format_datetime(t),
    }
}

fn number(d: Option<Decimal>, int: bool) -> Value {
    match d {
        None => Value::Null,
        Some(d) if int => d.to_i64().map_or(Value::Null, Value::Int),
        Some(d) => Value::Dec(d),
    }
}

fn compare(a: &Value, b: &Value) -> Option<std::cmp::Ordering> {
    match (a, b) {
        (Value::Text(x), Value::Text(y)) => Some(x.cmp(y)),
        (Value::Bool(x), Value::Bool(y)) => Some(x.cmp(y)),
        (Value::Date(x), Value::Date(y)) => Some(x.cmp(y)),
        (Value::DateTime(x), Value::DateTime(y)) => Some(x.cmp(y)),
        (Value::Date(x), Value::DateTime(y)) => x.and_hms_opt(0, 0, 0).map(|x| x.and_utc().cmp(y)),
        (Value::DateTime(x), Value::Date(y)) => y.and_hms_opt(0, 0, 0).map(|y| x.cmp(&y.and_utc())),
        _ => Some(to_dec(a)?.cmp(&to_dec(b)?)),
    }
}

fn shift_date(d: NaiveDate, n: i64, unit: Unit) -> Option<NaiveDate> {
    match unit {
        Unit::Days => d.checked_add_signed(chrono::Duration::try_days(n)?),
        Unit::Weeks => d.checked_add_signed(chrono::Duration::try_weeks(n)?),
        Unit::Months | Unit::Years => {
            let months = if unit == Unit::Years {
                n.checked_mul(12)?
            } else {
                n
            };
            let m = Months::new(u32::try_from(months.unsigned_abs()).ok()?);
            if months >= 0 {
                d.checked_add_months(m)
            } else {
                d.checked_sub_months(m)
            }
        }
        Unit::Hours | Unit::Minutes => Some(d),
    }
}

/// Moves a date or datetime by a duration.
pub fn shift(v: &Value, n: i64, unit: Unit) -> Value {
    match v {
        Value::Date(d) => shift_date(*d, n, unit).map_or(Value::Null, Value::Date),
        Value::DateTime(t) => {
            let moved = match unit {
                Unit::Minutes => {
                    chrono::Duration::try_minutes(n).and_then(|d| t.checked_add_signed(d))
                }
                Unit::Hours => chrono::Duration::try_hours(n).and_then(|d| t.checked_add_signed(d)),
                _ => shift_date(t.date_naive(), n, unit)
                    .and_then(|d| d.and_time(t.time()).and_utc().into()),
            };
            moved.map_or(Value::Null, Value::DateTime)
        }
        _ => Value::Null,
    }
}

/// Evaluates an expression that `check` accepted.
pub fn eval(expr: &Expr, scope: &Scope) -> Value {
    match &expr.kind {
        ExprKind::Null => Value::Null,
        ExprKind::Bool(b) => Value::Bool(*b),
        ExprKind::Number(n) => {
            if n.contains('.') {
                n.parse::<Decimal>().map_or(Value::Null, Value::Dec)
            } else {
                n.parse::<i64>().map_or(Value::Null, Value::Int)
            }
        }
        ExprKind::Str(s) => Value::Text(s.clone()),
        ExprKind::Field(path) => (scope.field)(&path[0]),
        ExprKind::Macro(m) => match m.as_str() {
            "today" => Value::Date(scope.now.date_naive()),
            "now" => Value::DateTime(scope.now),
            _ => Value::Null,
        },
        ExprKind::Duration(..) => Value::Null,
        ExprKind::Unary(UnaryOp::Not, inner) => match eval(inner, scope) {
            Value::Bool(b) => Value::Bool(!b),
            _ => Value::Null,
        },
        ExprKind::Unary(UnaryOp::Neg, inner) => match eval(inner, scope) {
            Value::Int(i) => i.checked_neg().map_or(Value::Null, Value::Int),
            Value::Dec(d) => Value::Dec(-d),
            _ => Value::Null,
        },
        ExprKind::Binary(op, l, r) => {
            if let (BinaryOp::Add | BinaryOp::Sub, ExprKind::Duration(n, unit)) = (op, &r.kind) {
                let n = if *op == BinaryOp::Sub { -n } else { *n };
                return shift(&eval(l, scope), n, *unit);
            }
            binary(*op, eval(l, scope), eval(r, scope))
        }
        ExprKind::In(l, items) => {
            let v = eval(l, scope);
            Value::Bool(
                items
                    .iter()
                    .any(|i| compare(&v, &eval(i, scope)) == Some(std::cmp::Ordering::Equal)),
            )
        }
        // Refused by `check`: one version of a record has no history to look at.
        ExprKind::EverIn(..) => Value::Null,
        ExprKind::Call(name, args) => call(name, args, scope),
    }
}

fn binary(op: BinaryOp, a: Value, b: Value) -> Value {
    use std::cmp::Ordering::*;
    match op {
        BinaryOp::And => Value::Bool(truthy(&a) && truthy(&b)),
        BinaryOp::Or => Value::Bool(truthy(&a) || truthy(&b)),
        BinaryOp::Eq => Value::Bool(a == b || compare(&a, &b) == Some(Equal)),
        BinaryOp::Ne => Value::Bool(!(a == b || compare(&a, &b) == Some(Equal))),
        BinaryOp::Gt | BinaryOp::Ge | BinaryOp::Lt | BinaryOp::Le => match compare(&a, &b) {
            None => Value::Null,
            Some(o) => Value::Bool(match op {
                BinaryOp::Gt => o == Greater,
                BinaryOp::Ge => o != Less,
                BinaryOp::Lt => o == Less,
                _ => o != Greater,
            }),
        },
        BinaryOp::Contains | BinaryOp::NotContains => {
            let found = text_of(&a)
                .to_lowercase()
                .contains(&text_of(&b).to_lowercase());
            Value::Bool(found == (op == BinaryOp::Contains))
        }
        BinaryOp::Add if matches!(a, Value::Text(_)) || matches!(b, Value::Text(_)) => {
            Value::Text(text_of(&a) + text_of(&b).as_str())
        }
        BinaryOp::Add | BinaryOp::Sub if matches!(a, Value::Date(_)) => match (&a, &b) {
            (Value::Date(_), Value::Int(n)) => {
                shift(&a, if op == BinaryOp::Sub { -n } else { *n }, Unit::Days)
            }
            (Value::Date(x), Value::Date(y)) if op == BinaryOp::Sub => {
                Value::Int((*x - *y).num_days())
            }
            _ => Value::Null,
        },
        BinaryOp::Add | BinaryOp::Sub | BinaryOp::Mul | BinaryOp::Div => {
            let int = matches!((&a, &b), (Value::Int(_), Value::Int(_))) && op != BinaryOp::Div;
            let (Some(x), Some(y)) = (to_dec(&a), to_dec(&b)) else {
                return Value::Null;
            };
            let result = match op {
                BinaryOp::Add => x.checked_add(y),
                BinaryOp::Sub => x.checked_sub(y),
                BinaryOp::Mul => x.checked_mul(y),
                _ => x.checked_div(y),
            };
            number(result, int)
        }
    }
}

fn call(name: &str, args: &[Expr], scope: &Scope) -> Value {
    if name == "if" {
        return if truthy(&eval(&args[0], scope)) {
            eval(&args[1], scope)
        } else {
            eval(&args[2], scope)
        };
    }
    let values: Vec<Value> = args.iter().map(|a| eval(a, scope)).collect();
    let first = values.first().cloned().unwrap_or(Value::Null);
    let int = |i: usize| match values.get(i) {
        Some(Value::Int(n)) => Some(*n),
        _ => None,
    };
    match name {
        "round" => {
            let places = int(1).unwrap_or(0).clamp(0, 8) as u32;
            to_dec(&first).map_or(Value::Null, |d| {
                Value::Dec(d.round_dp_with_strategy(
                    places,
                    rust_decimal::RoundingStrategy::MidpointAwayFromZero,
                ))
            })
        }
        "abs" => match first {
            Value::Int(i) => i.checked_abs().map_or(Value::Null, Value::Int),
            Value::Dec(d) => Value::Dec(d.abs()),
            _ => Value::Null,
        },
        "min" | "max" => {
            let all_int = values.iter().all(|v| matches!(v, Value::Int(_)));
            let decimals: Vec<Decimal> = values.iter().filter_map(to_dec).collect();
            let pick = if name == "min" {
                decimals.into_iter().min()
            } else {
                decimals.into_iter().max()
            };
            number(pick, all_int)
        }
        "concat" => Value::Text(values.iter().map(text_of).collect()),
        "text" => Value::Text(text_of(&first)),
        "len" => match first {
            Value::Text(s) => Value::Int(s.chars().count() as i64),
            _ => Value::Null,
        },
        "upper" | "lower" | "trim" => match first {
            Value::Text(s) => Value::Text(match name {
                "upper" => s.to_uppercase(),
                "lower" => s.to_lowercase(),
                _ => s.trim().to_owned(),
            }),
            _ => Value::Null,
        },
        "coalesce" => values
            .into_iter()
            .find(|v| *v != Value::Null)
            .unwrap_or(Value::Null),
        "today" => Value::Date(scope.now.date_naive()),
        "now" => Value::DateTime(scope.now),
        "days_between" => match (&values[0], &values[1]) {
            (Value::Date(a), Value::Date(b)) => Value::Int((*b - *a).num_days()),
            _ => Value::Null,
        },
        "year" | "month" | "day" => {
            let date = match first {
                Value::Date(d) => Some(d),
                Value::DateTime(t) => Some(t.date_naive()),
                _ => None,
            };
            date.map_or(Value::Null, |d| {
                Value::Int(match name {
                    "year" => i64::from(d.year()),
                    "month" => i64::from(d.month()),
                    _ => i64::from(d.day()),
                })
            })
        }
        "add_days" | "add_months" => match int(1) {
            Some(n) => shift(
                &first,
                n,
                if name == "add_days" {
                    Unit::Days
                } else {
                    Unit::Months
                },
            ),
            None => Value::Null,
        },
        _ => Value::Null,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expr::parse;
    use std::str::FromStr;

    fn types(name: &str) -> Option<Type> {
        match name {
            "price" => Some(Type::Dec),
            "quantity" => Some(Type::Int),
            "name" => Some(Type::Text),
            "due" => Some(Type::Date),
            "vip" => Some(Type::Bool),
            _ => None,
        }
    }

    fn value(name: &str) -> Value {
        match name {
            "price" => Value::Dec(Decimal::from_str("19.99").unwrap()),
            "quantity" => Value::Int(3),
            "name" => Value::Text("Acme".into()),
            "due" => Value::Date(NaiveDate::from_ymd_opt(2026, 1, 31).unwrap()),
            "vip" => Value::Bool(true),
            _ => Value::Null,
        }
    }

    fn run(src: &str) -> (Type, Value) {
        let e = parse(src).unwrap();
        let t = check(&e, &types).unwrap();
        let scope = Scope {
            field: &value,
            now: DateTime::parse_from_rfc3339("2026-11-22T08:00:00Z")
                .unwrap()
                .with_timezone(&Utc),
        };
        (t, eval(&e, &scope))
    }

    #[test]
    fn arithmetic_is_exact() {
        assert_eq!(
            run("price * quantity"),
            (Type::Dec, Value::Dec(Decimal::from_str("59.97").unwrap()))
        );
        assert_eq!(run("quantity * 2 + 1"), (Type::Int, Value::Int(7)));
        assert_eq!(
            run("0.1 + 0.2"),
            (Type::Dec, Value::Dec(Decimal::from_str("0.3").unwrap()))
        );
        assert_eq!(run("quantity / 0").1, Value::Null);
        assert_eq!(
            run("round(price / 3, 2)").1,
            Value::Dec(Decimal::from_str("6.66").unwrap())
        );
    }

    #[test]
    fn text_dates_and_conditions() {
        assert_eq!(run("name + \" Ltd\"").1, Value::Text("Acme Ltd".into()));
        assert_eq!(run("if(vip, \"A\", \"B\")").1, Value::Text("A".into()));
        assert_eq!(
            run("add_months(due, 1)").1,
            Value::Date(NaiveDate::from_ymd_opt(2026, 2, 28).unwrap())
        );
        assert_eq!(
            run("due + 1mo").1,
            Value::Date(NaiveDate::from_ymd_opt(2026, 2, 28).unwrap())
        );
        assert_eq!(run("days_between(due, @today)").1, Value::Int(295));
        assert_eq!(run("coalesce(null, quantity)").1, Value::Int(3));
        assert_eq!(
            run("name ~ \"acm\" && quantity in [1, 3]").1,
            Value::Bool(true)
        );
    }

    #[test]
    fn type_errors_point_at_the_problem() {
        let e = parse("name * 2").unwrap();
        assert!(check(&e, &types).is_err());
        let e = parse("nosuch + 1").unwrap();
        assert_eq!(check(&e, &types).unwrap_err().position, 1);
        let e = parse("frobnicate(1)").unwrap();
        assert!(
            check(&e, &types)
                .unwrap_err()
                .message
                .contains("no function")
        );
        let e = parse("customer.name").unwrap();
        assert!(check(&e, &types).is_err());
    }
}
