//! Filters: an expression (`stage = "won" && amount >= 1000`) checked against an entity's
//! fields and kinds and turned into a [`Condition`] for the store. Every mistake — an unknown
//! field, an operator a kind does not take, a value of the wrong shape — is an error with the
//! position it starts at; nothing unchecked reaches the database.
//!
//! `!=`, `!~` and negations also match records that have no value, the way people read them:
//! "stage is not won" includes deals with no stage yet.

use std::str::FromStr;
use std::sync::Arc;

use chrono::{DateTime, NaiveTime, Utc};
use rust_decimal::Decimal;

use crate::auth::{Access, Action, Scope};
use crate::expr::eval::{self, Scope as EvalScope, Type, Value};
use crate::expr::{BinaryOp, Expr, ExprError, ExprKind, UnaryOp, parse};
use crate::fields::Kind;
use crate::schema::compiled::{Catalog, CompiledEntity};
use crate::schema::definition::FieldDef;
use crate::store::ddl::SYSTEM_COLUMNS;
use crate::store::query::{Alias, Cmp, Column, Condition, SortKey};
use crate::store::value::parse_datetime;
use crate::store::{ColumnType, Ident, SqlValue};

/// What a filter is checked and compiled against.
pub struct FilterContext<'a> {
    pub catalog: &'a Catalog,
    pub entity: &'a CompiledEntity,
    pub now: DateTime<Utc>,
    /// The caller: `@me`, and which fields and related entities they may filter on.
    pub access: &'a Access,
}

/// Parses, checks and compiles a filter.
pub fn compile(source: &str, ctx: &FilterContext) -> Result<Condition, ExprError> {
    let expr = parse(source)?;
    condition(&expr, false, ctx, ctx.entity, Alias::T)
}

/// What a field name stands for in a comparison.
enum Operand<'a> {
    Scalar {
        column: Column,
        ty: ColumnType,
        field: Option<&'a FieldDef>,
        name: String,
    },
    MultiSelect {
        column: Column,
        field: &'a FieldDef,
    },
    Links {
        join: Ident,
    },
    Tags,
    Related {
        lookup: Column,
        target: Arc<CompiledEntity>,
        path: Vec<String>,
    },
}

fn operand<'a>(
    path: &[String],
    pos: usize,
    ctx: &FilterContext,
    entity: &'a CompiledEntity,
    alias: Alias,
) -> Result<Operand<'a>, ExprError> {
    let name = path[0].as_str();
    let column = |ident: Ident| Column { alias, name: ident };
    if path.len() > 2 {
        return Err(ExprError::new(
            pos,
            "a path goes one lookup deep, like customer.city",
        ));
    }
    if path.len() == 2 {
        let field = entity
            .def
            .field(name)
            .filter(|f| {
                ctx.access
                    .can_read_field(entity.def.name.as_str(), f.name.as_str())
            })
            .ok_or_else(|| unknown(pos, name, entity))?;
        if field.kind != Kind::Lookup || alias == Alias::R {
            return Err(ExprError::new(
                pos,
                format!(
                    "'{name}' is not a lookup, so '{name}.{}' means nothing",
                    path[1]
                ),
            ));
        }
        let target_name = field
            .target
            .as_ref()
            .map(|t| t.as_str())
            .unwrap_or_default();
        let target = ctx
            .catalog
            .entity(target_name)
            .map_err(|_| ExprError::new(pos, format!("'{name}' points at a missing entity")))?;
        if ctx.access.scope(target_name, Action::Read) == Scope::None {
            return Err(ExprError::new(
                pos,
                format!(
                    "you may not read {target_name} records, so '{name}.…' cannot be filtered on"
                ),
            ));
        }
        return Ok(Operand::Related {
            lookup: column(Ident::column(&field.name)),
            target,
            path: vec![path[1].clone()],
        });
    }
    if name == "tags" {
        return if alias == Alias::T {
            Ok(Operand::Tags)
        } else {
            Err(ExprError::new(
                pos,
                "tags of a related record cannot be filtered on",
            ))
        };
    }
    let filterable = SYSTEM_COLUMNS.iter().filter(|(n, _)| *n != "deleted_at");
    if let Some((system, ty)) = filterable.clone().find(|(n, _)| *n == name) {
        return Ok(Operand::Scalar {
            column: column(Ident::fixed(system)),
            ty: *ty,
            field: None,
            name: name.to_owned(),
        });
    }
    let field = entity
        .def
        .field(name)
        .filter(|f| {
            ctx.access
                .can_read_field(entity.def.name.as_str(), f.name.as_str())
        })
        .ok_or_else(|| unknown(pos, name, entity))?;
    Ok(match (field.kind, field.column_type()) {
        (Kind::MultiSelect, Some(_)) => Operand::MultiSelect {
            column: column(Ident::column(&field.name)),
            field,
        },
        (Kind::MultiLookup, _) if alias == Alias::T => Operand::Links {
            join: Ident::join_table(&entity.def.name, &field.name),
        },
        (_, Some(ty)) => Operand::Scalar {
            column: column(Ident::column(&field.name)),
            ty,
            field: Some(field),
            name: name.to_owned(),
        },
        _ => {
            return Err(ExprError::new(
                pos,
                format!("'{name}' of a related record cannot be filtered on"),
            ));
        }
    })
}

fn unknown(pos: usize, name: &str, entity: &CompiledEntity) -> ExprError {
    ExprError::new(pos, format!("{} has no field '{name}'", entity.def.name))
}

fn condition(
    expr: &Expr,
    negated: bool,
    ctx: &FilterContext,
    entity: &CompiledEntity,
    alias: Alias,
) -> Result<Condition, ExprError> {
    match &expr.kind {
        ExprKind::Binary(op @ (BinaryOp::And | BinaryOp::Or), l, r) => {
            let (l, r) = (
                condition(l, negated, ctx, entity, alias)?,
                condition(r, negated, ctx, entity, alias)?,
            );
            // De Morgan: a negated && is an || of negations, and the other way round.
            let is_and = (*op == BinaryOp::And) != negated;
            Ok(if is_and {
                Condition::And(vec![l, r])
            } else {
                Condition::Or(vec![l, r])
            })
        }
        ExprKind::Unary(UnaryOp::Not, inner) => condition(inner, !negated, ctx, entity, alias),
        ExprKind::Binary(op, l, r) if op.is_comparison() => {
            let (field, value, op) = match (&l.kind, &r.kind) {
                (ExprKind::Field(_), ExprKind::Field(_)) => {
                    return Err(ExprError::new(
                        r.pos,
                        "compare a field with a value, not with another field",
                    ));
                }
                (ExprKind::Field(_), _) => (l.as_ref(), r.as_ref(), *op),
                (_, ExprKind::Field(_)) => (r.as_ref(), l.as_ref(), op.flipped()),
                _ => return Err(ExprError::new(l.pos, "expected a field name")),
            };
            let ExprKind::Field(path) = &field.kind else {
                return Err(ExprError::new(field.pos, "expected a field name"));
            };
            let target = operand(path, field.pos, ctx, entity, alias)?;
            compare(target, op, &[value], negated, field.pos, ctx)
        }
        ExprKind::In(left, items) => {
            let ExprKind::Field(path) = &left.kind else {
                return Err(ExprError::new(
                    left.pos,
                    "expected a field name before 'in'",
                ));
            };
            let target = operand(path, left.pos, ctx, entity, alias)?;
            let items: Vec<&Expr> = items.iter().collect();
            compare_in(target, &items, negated, left.pos, ctx)
        }
        ExprKind::EverIn(left, items) => {
            let ExprKind::Field(path) = &left.kind else {
                return Err(ExprError::new(
                    left.pos,
                    "expected a select field before 'ever in'",
                ));
            };
            let target = operand(path, left.pos, ctx, entity, alias)?;
            let items: Vec<&Expr> = items.iter().collect();
            ever_in(target, path, &items, negated, left.pos, ctx, entity)
        }
        ExprKind::Field(path) => {
            // A yes/no field on its own: `active`, `!active`.
            let target = operand(path, expr.pos, ctx, entity, alias)?;
            match target {
                Operand::Scalar {
                    column,
                    ty: ColumnType::Boolean,
                    ..
                } => Ok(scalar(column, Cmp::Eq, SqlValue::Boolean(true), negated)),
                _ => Err(ExprError::new(
                    expr.pos,
                    format!(
                        "expected a condition such as {} = …, not a field on its own",
                        path.join(".")
                    ),
                )),
            }
        }
        _ => Err(ExprError::new(
            expr.pos,
            "expected a condition, such as a field compared with a value",
        )),
    }
}

/// A comparison, negated or not; negations keep records without a value.
fn scalar(column: Column, op: Cmp, value: SqlValue, negated: bool) -> Condition {
    let (op, or_null) = match (op, negated) {
        (Cmp::Eq, false) => (Cmp::Eq, false),
        (Cmp::Eq, true) => (Cmp::Ne, true),
        (Cmp::Ne, false) => (Cmp::Ne, true),
        (Cmp::Ne, true) => (Cmp::Eq, false),
        (op, false) => (op, false),
        (Cmp::Gt, true) => (Cmp::Le, true),
        (Cmp::Ge, true) => (Cmp::Lt, true),
        (Cmp::Lt, true) => (Cmp::Ge, true),
        (Cmp::Le, true) => (Cmp::Gt, true),
    };
    Condition::Compare {
        column,
        op,
        value,
        or_null,
    }
}

/// Evaluates the value side of a comparison: a literal, a macro, or date arithmetic on one.
fn constant(expr: &Expr, ctx: &FilterContext) -> Result<Value, ExprError> {
    if let ExprKind::Macro(m) = &expr.kind
        && m == "me"
    {
        return ctx
            .access
            .actor_id()
            .map(|me| Value::Text(me.to_owned()))
            .ok_or_else(|| ExprError::new(expr.pos, "@me needs a signed-in user"));
    }
    let no_fields = |_: &str| -> Option<Type> { None };
    if let Some((_, pos)) = expr.fields().first() {
        return Err(ExprError::new(*pos, "expected a value here, not a field"));
    }
    match &expr.kind {
        ExprKind::Macro(m) if !matches!(m.as_str(), "now" | "today") => {
            return Err(ExprError::new(
                expr.pos,
                format!("unknown macro @{m} (use @now, @today or @me)"),
            ));
        }
        ExprKind::Call(..) => {
            return Err(ExprError::new(
                expr.pos,
                "functions cannot be used in filters",
            ));
        }
        _ => {}
    }
    eval::check(expr, &no_fields)?;
    let nothing = |_: &str| Value::Null;
    Ok(eval::eval(
        expr,
        &EvalScope {
            field: &nothing,
            now: ctx.now,
        },
    ))
}

/// The stored form of a value compared with a column, or why it cannot be compared.
enum Bound {
    Value(Cmp, SqlValue),
    /// No stored value can satisfy it (`amount = 0.125` on a 2-place field).
    Never,
    /// Every stored value satisfies it.
    Always,
}

fn describe(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Int(i) => i.to_string(),
        Value::Dec(d) => d.to_string(),
        Value::Text(s) => format!("\"{s}\""),
        Value::Date(d) => d.to_string(),
        Value::DateTime(t) => crate::store::value::format_datetime(t),
    }
}

fn number(v: &Value) -> Option<Decimal> {
    match v {
        Value::Int(i) => Some(Decimal::from(*i)),
        Value::Dec(d) => Some(*d),
        Value::Text(s) => Decimal::from_str(s.trim()).ok(),
        _ => None,
    }
}

/// A number against a column holding `scale` places: exact when it fits, otherwise moved to
/// the nearest stored value on the right side (`> 0.125` is `>= 0.13`).
fn numeric_bound(d: Decimal, scale: u32, op: Cmp, integer: bool) -> Option<Bound> {
    let factor = Decimal::from(10i64.pow(scale));
    let scaled = d.checked_mul(factor)?;
    let make = |units: Decimal| -> Option<SqlValue> {
        if integer {
            rust_decimal::prelude::ToPrimitive::to_i64(&units).map(SqlValue::Integer)
        } else {
            Some(SqlValue::Decimal(units / factor, scale))
        }
    };
    if scaled.fract().is_zero() {
        return Some(Bound::Value(op, make(scaled)?));
    }
    Some(match op {
        Cmp::Eq => Bound::Never,
        Cmp::Ne => Bound::Always,
        Cmp::Gt | Cmp::Ge => Bound::Value(Cmp::Ge, make(scaled.ceil())?),
        Cmp::Lt | Cmp::Le => Bound::Value(Cmp::Le, make(scaled.floor())?),
    })
}

fn bound(
    value: &Value,
    ty: ColumnType,
    field: Option<&FieldDef>,
    name: &str,
    op: Cmp,
    pos: usize,
) -> Result<Bound, ExprError> {
    let wrong = |what: &str| {
        ExprError::new(
            pos,
            format!(
                "{name} holds {what}; {} cannot be compared with it",
                describe(value)
            ),
        )
    };
    let kind = field.map(|f| f.kind);
    Ok(match ty {
        ColumnType::Text | ColumnType::Id => {
            let text = match value {
                Value::Text(s) => s.clone(),
                Value::Int(_) | Value::Dec(_) if ty == ColumnType::Text => describe(value),
                _ => return Err(wrong("text")),
            };
            if let Some(f) = field.filter(|f| f.kind == Kind::Select)
                && !f.options.iter().any(|o| o.value == text)
            {
                let options: Vec<&str> = f.options.iter().map(|o| o.value.as_str()).collect();
                return Err(ExprError::new(
                    pos,
                    format!(
                        "\"{text}\" is not an option of {name} ({})",
                        options.join(", ")
                    ),
                ));
            }
            if ty == ColumnType::Id {
                let id = uuid::Uuid::parse_str(&text)
                    .map_err(|_| ExprError::new(pos, format!("\"{text}\" is not an id")))?;
                return Ok(Bound::Value(
                    op,
                    SqlValue::Text(id.hyphenated().to_string()),
                ));
            }
            Bound::Value(op, SqlValue::Text(text))
        }
        ColumnType::Integer => {
            let d = number(value).ok_or_else(|| wrong("whole numbers"))?;
            numeric_bound(d, 0, op, true).ok_or_else(|| wrong("whole numbers"))?
        }
        ColumnType::Decimal { scale } => {
            let d = number(value).ok_or_else(|| wrong("numbers"))?;
            numeric_bound(d, scale, op, false).ok_or_else(|| wrong("numbers"))?
        }
        ColumnType::Boolean => match value {
            Value::Bool(b) => Bound::Value(op, SqlValue::Boolean(*b)),
            _ => return Err(wrong("true or false")),
        },
        ColumnType::Date => {
            let date = match value {
                Value::Date(d) => *d,
                Value::DateTime(t) => t.date_naive(),
                Value::Text(s) => crate::fields::parse_date_or_datetime(s)
                    .ok_or_else(|| wrong("dates (YYYY-MM-DD)"))?,
                _ => return Err(wrong("dates")),
            };
            Bound::Value(op, SqlValue::Date(date))
        }
        ColumnType::Datetime => {
            let at = match value {
                Value::DateTime(t) => *t,
                Value::Date(d) => d.and_time(NaiveTime::MIN).and_utc(),
                Value::Text(s) => parse_datetime(s)
                    .or_else(|| {
                        crate::fields::parse_date_or_datetime(s)
                            .map(|d| d.and_time(NaiveTime::MIN).and_utc())
                    })
                    .ok_or_else(|| wrong("dates and times (RFC 3339)"))?,
                _ => return Err(wrong("dates and times")),
            };
            Bound::Value(op, SqlValue::Datetime(at))
        }
        ColumnType::Json => return Err(wrong(kind.map_or("lists", |k| k.as_str()))),
    })
}

fn cmp_of(op: BinaryOp) -> Option<Cmp> {
    Some(match op {
        BinaryOp::Eq => Cmp::Eq,
        BinaryOp::Ne => Cmp::Ne,
        BinaryOp::Gt => Cmp::Gt,
        BinaryOp::Ge => Cmp::Ge,
        BinaryOp::Lt => Cmp::Lt,
        BinaryOp::Le => Cmp::Le,
        _ => return None,
    })
}

/// Whether `~` applies: the field's kind says so; system columns of text do.
fn is_text_kind(field: Option<&FieldDef>, ty: ColumnType) -> bool {
    match field {
        Some(f) => f.capabilities().contains,
        None => ty == ColumnType::Text,
    }
}

fn compare(
    target: Operand,
    op: BinaryOp,
    values: &[&Expr],
    negated: bool,
    pos: usize,
    ctx: &FilterContext,
) -> Result<Condition, ExprError> {
    let value_expr = values[0];
    match target {
        Operand::Related {
            lookup,
            target,
            path,
        } => {
            let field = Box::new(Expr {
                kind: ExprKind::Field(path),
                pos,
            });
            let inner = ExprKind::Binary(op, field, Box::new(value_expr.clone()));
            related(lookup, &target, inner, pos, negated, ctx)
        }
        Operand::Scalar {
            column,
            ty,
            field,
            name,
        } => {
            let value = constant(value_expr, ctx)?;
            if matches!(op, BinaryOp::Contains | BinaryOp::NotContains) {
                if !is_text_kind(field, ty) {
                    return Err(ExprError::new(
                        pos,
                        format!("'~' looks inside text, and {name} is not text"),
                    ));
                }
                let Value::Text(text) = value else {
                    return Err(ExprError::new(value_expr.pos, "'~' needs text in quotes"));
                };
                return Ok(Condition::Contains {
                    column,
                    text,
                    negated: (op == BinaryOp::NotContains) != negated,
                });
            }
            let cmp = cmp_of(op).ok_or_else(|| ExprError::new(pos, "expected a comparison"))?;
            if value == Value::Null {
                return match cmp {
                    Cmp::Eq | Cmp::Ne => Ok(Condition::IsNull {
                        column,
                        negated: (cmp == Cmp::Ne) != negated,
                    }),
                    _ => Err(ExprError::new(
                        value_expr.pos,
                        "null can only be compared with = or !=",
                    )),
                };
            }
            if ty == ColumnType::Boolean && !matches!(cmp, Cmp::Eq | Cmp::Ne) {
                return Err(ExprError::new(
                    pos,
                    format!("{name} is true or false; use = or !="),
                ));
            }
            Ok(
                match bound(&value, ty, field, &name, cmp, value_expr.pos)? {
                    Bound::Value(cmp, v) => scalar(column, cmp, v, negated),
                    Bound::Never if negated => Condition::True,
                    Bound::Never => Condition::False,
                    Bound::Always if negated => Condition::False,
                    Bound::Always => Condition::True,
                },
            )
        }
        Operand::MultiSelect { column, field } => {
            let value = constant(value_expr, ctx)?;
            let has = match op {
                BinaryOp::Eq | BinaryOp::Contains => true,
                BinaryOp::Ne | BinaryOp::NotContains => false,
                _ => {
                    return Err(ExprError::new(
                        pos,
                        format!("{} is a list; use ~ (has), !~ or in", field.name),
                    ));
                }
            };
            if value == Value::Null {
                return Ok(Condition::IsNull {
                    column,
                    negated: has == negated,
                });
            }
            let option = option_of(&value, field, value_expr.pos)?;
            Ok(Condition::JsonHas {
                column,
                values: vec![option],
                negated: has == negated,
            })
        }
        Operand::Links { join } => {
            let value = constant(value_expr, ctx)?;
            let has = set_op(op, pos)?;
            let targets = match value {
                Value::Null => Vec::new(),
                other => vec![id_of(&other, value_expr.pos)?],
            };
            // `= null` asks for no links at all: the negation of "links to anything".
            let empty_test = targets.is_empty();
            Ok(Condition::LinkHas {
                join,
                targets,
                negated: (has == negated) != empty_test,
            })
        }
        Operand::Tags => {
            let value = constant(value_expr, ctx)?;
            let has = set_op(op, pos)?;
            let tags = match value {
                Value::Null => Vec::new(),
                Value::Text(t) => vec![t],
                other => {
                    return Err(ExprError::new(
                        value_expr.pos,
                        format!("a tag is text, not {}", describe(&other)),
                    ));
                }
            };
            let empty_test = tags.is_empty();
            Ok(Condition::TagHas {
                entity: ctx.entity.def.name.to_string(),
                tags,
                negated: (has == negated) != empty_test,
            })
        }
    }
}

/// A condition on the record a lookup points at: `inner` is checked against that entity.
fn related(
    lookup: Column,
    target: &CompiledEntity,
    inner: ExprKind,
    pos: usize,
    negated: bool,
    ctx: &FilterContext,
) -> Result<Condition, ExprError> {
    let inner = condition(&Expr { kind: inner, pos }, false, ctx, target, Alias::R)?;
    // Related records the caller may not read cannot decide a match either.
    let scope = ctx
        .access
        .records_as(target.def.name.as_str(), Action::Read, Alias::R);
    Ok(Condition::Related {
        lookup,
        table: target.layout.table.clone(),
        inner: Box::new(Condition::And(vec![scope, inner])),
        negated,
    })
}

/// `~`/`=` mean "has", `!~`/`!=` "has not", for list-valued fields and tags.
fn set_op(op: BinaryOp, pos: usize) -> Result<bool, ExprError> {
    match op {
        BinaryOp::Eq | BinaryOp::Contains => Ok(true),
        BinaryOp::Ne | BinaryOp::NotContains => Ok(false),
        _ => Err(ExprError::new(
            pos,
            "a list is tested with ~ (has), !~ or in",
        )),
    }
}

fn option_of(value: &Value, field: &FieldDef, pos: usize) -> Result<String, ExprError> {
    let Value::Text(text) = value else {
        return Err(ExprError::new(
            pos,
            format!("an option is text, not {}", describe(value)),
        ));
    };
    if field.options.iter().any(|o| &o.value == text) {
        Ok(text.clone())
    } else {
        let options: Vec<&str> = field.options.iter().map(|o| o.value.as_str()).collect();
        Err(ExprError::new(
            pos,
            format!(
                "\"{text}\" is not an option of {} ({})",
                field.name,
                options.join(", ")
            ),
        ))
    }
}

fn id_of(value: &Value, pos: usize) -> Result<String, ExprError> {
    match value {
        Value::Text(text) => uuid::Uuid::parse_str(text)
            .map(|u| u.hyphenated().to_string())
            .map_err(|_| ExprError::new(pos, format!("\"{text}\" is not an id"))),
        other => Err(ExprError::new(
            pos,
            format!("expected an id, not {}", describe(other)),
        )),
    }
}

/// `path in [..]` (or `ever in`) asked again of the related record a lookup points at.
fn list_on_related(
    path: Vec<String>,
    items: &[&Expr],
    pos: usize,
    list: fn(Box<Expr>, Vec<Expr>) -> ExprKind,
) -> ExprKind {
    let field = Box::new(Expr {
        kind: ExprKind::Field(path),
        pos,
    });
    list(field, items.iter().map(|e| (*e).clone()).collect())
}

fn compare_in(
    target: Operand,
    items: &[&Expr],
    negated: bool,
    pos: usize,
    ctx: &FilterContext,
) -> Result<Condition, ExprError> {
    let values = items
        .iter()
        .map(|i| constant(i, ctx).map(|v| (v, i.pos)))
        .collect::<Result<Vec<_>, _>>()?;
    if let Some((_, p)) = values.iter().find(|(v, _)| *v == Value::Null) {
        return Err(ExprError::new(
            *p,
            "null is not a value in a list; use = null",
        ));
    }
    match target {
        Operand::Related {
            lookup,
            target,
            path,
        } => {
            let inner = list_on_related(path, items, pos, ExprKind::In);
            related(lookup, &target, inner, pos, negated, ctx)
        }
        Operand::Scalar {
            column,
            ty,
            field,
            name,
        } => {
            let mut stored = Vec::with_capacity(values.len());
            for (v, p) in &values {
                match bound(v, ty, field, &name, Cmp::Eq, *p)? {
                    Bound::Value(_, s) => stored.push(s),
                    Bound::Never | Bound::Always => {}
                }
            }
            if stored.is_empty() {
                return Ok(if negated {
                    Condition::True
                } else {
                    Condition::False
                });
            }
            Ok(Condition::In {
                column,
                values: stored,
                negated,
            })
        }
        Operand::MultiSelect { column, field } => Ok(Condition::JsonHas {
            column,
            values: values
                .iter()
                .map(|(v, p)| option_of(v, field, *p))
                .collect::<Result<_, _>>()?,
            negated,
        }),
        Operand::Links { join } => Ok(Condition::LinkHas {
            join,
            targets: values
                .iter()
                .map(|(v, p)| id_of(v, *p))
                .collect::<Result<_, _>>()?,
            negated,
        }),
        Operand::Tags => Ok(Condition::TagHas {
            entity: ctx.entity.def.name.to_string(),
            tags: values
                .iter()
                .map(|(v, p)| match v {
                    Value::Text(t) => Ok(t.clone()),
                    other => Err(ExprError::new(
                        *p,
                        format!("a tag is text, not {}", describe(other)),
                    )),
                })
                .collect::<Result<_, _>>()?,
            negated,
        }),
    }
}

/// `field ever in [..]`: a select field's current value, or any value the record's history
/// shows it leaving or taking, is one of the options. Only select fields: their values are
/// options, so the history's text compares with them exactly.
fn ever_in(
    target: Operand,
    path: &[String],
    items: &[&Expr],
    negated: bool,
    pos: usize,
    ctx: &FilterContext,
    entity: &CompiledEntity,
) -> Result<Condition, ExprError> {
    match target {
        Operand::Related {
            lookup,
            target,
            path,
        } => {
            let inner = list_on_related(path, items, pos, ExprKind::EverIn);
            related(lookup, &target, inner, pos, negated, ctx)
        }
        Operand::Scalar {
            column,
            field: Some(field),
            ..
        } if field.kind == Kind::Select => {
            let values = items
                .iter()
                .map(|i| option_of(&constant(i, ctx)?, field, i.pos))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Condition::EverIn {
                column,
                entity: entity.def.name.to_string(),
                field: field.name.to_string(),
                values,
                negated,
            })
        }
        _ => Err(ExprError::new(
            pos,
            format!(
                "'ever in' follows the values a select field held, and {} is not a select field",
                path.join(".")
            ),
        )),
    }
}

/// `q`: records whose text fields contain the words (each word somewhere), for quick search.
pub fn search(text: &str, entity: &CompiledEntity, access: &Access) -> Condition {
    let columns: Vec<Column> = entity
        .def
        .fields
        .iter()
        .filter(|f| access.can_read_field(entity.def.name.as_str(), f.name.as_str()))
        .filter(|f| f.column_type() == Some(ColumnType::Text) && f.capabilities().searchable)
        .map(|f| Column::of(Ident::column(&f.name)))
        .collect();
    let words: Vec<&str> = text.split_whitespace().take(8).collect();
    if words.is_empty() {
        return Condition::True;
    }
    if columns.is_empty() {
        return Condition::False;
    }
    Condition::And(
        words
            .into_iter()
            .map(|word| {
                Condition::Or(
                    columns
                        .iter()
                        .map(|c| Condition::Contains {
                            column: c.clone(),
                            text: word.to_owned(),
                            negated: false,
                        })
                        .collect(),
                )
            })
            .collect(),
    )
}

/// Parses `sort` (`-amount,name`): fields or `created_at`, `updated_at`, `version`, `id`;
/// `-` for descending. Returns the keys and the direction of the id that breaks ties.
pub fn sort(
    spec: &str,
    entity: &CompiledEntity,
    access: &Access,
) -> Result<(Vec<SortKey>, bool), String> {
    let mut keys: Vec<SortKey> = Vec::new();
    let mut id_desc = None;
    for (i, part) in spec.split(',').map(str::trim).enumerate() {
        if part.is_empty() {
            return Err("sort has an empty key".into());
        }
        if id_desc.is_some() {
            return Err("id must be the last sort key".into());
        }
        let (desc, name) = match part.strip_prefix('-') {
            Some(name) => (true, name),
            None => (false, part.strip_prefix('+').unwrap_or(part)),
        };
        if name == "id" {
            id_desc = Some(desc);
            continue;
        }
        let (column, ty) = match name {
            "created_at" => (Ident::fixed("created_at"), ColumnType::Datetime),
            "updated_at" => (Ident::fixed("updated_at"), ColumnType::Datetime),
            "version" => (Ident::fixed("version"), ColumnType::Integer),
            _ => {
                let field = entity
                    .def
                    .field(name)
                    .filter(|f| access.can_read_field(entity.def.name.as_str(), f.name.as_str()))
                    .ok_or_else(|| {
                        format!("{} has no field '{name}' to sort by", entity.def.name)
                    })?;
                match field.column_type() {
                    Some(ColumnType::Json) | None => {
                        return Err(format!("{name} holds a list and cannot be sorted by"));
                    }
                    Some(ty) => (Ident::column(&field.name), ty),
                }
            }
        };
        if keys.iter().any(|k| k.column == column) {
            return Err(format!("sort names {name} twice"));
        }
        if i >= 4 {
            return Err("sort takes at most 4 keys".into());
        }
        keys.push(SortKey { column, ty, desc });
    }
    let id_desc = id_desc.unwrap_or_else(|| keys.last().is_none_or(|k| k.desc));
    Ok((keys, id_desc))
}
