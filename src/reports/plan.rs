//! From a report query to a plan: every field named is checked against the schema and the
//! caller's field permissions (a hidden or unknown field anywhere is a 400), the range is
//! resolved in the settings' time zone, and the store's one `GROUP BY` statement is built.

use chrono::{Duration, NaiveDate, Utc};
use chrono_tz::Tz;
use serde_json::Value;

use super::dates::{self, DateRange, Shift};
use super::spec::{MeasureSpec, ReportSpec};
use crate::auth::Access;
use crate::error::{Error, Result};
use crate::fields::{Kind, Lang};
use crate::records::list::ReadQuery;
use crate::records::service::Target;
use crate::schema::definition::FieldDef;
use crate::store::query::{Cmp, Column, Condition};
use crate::store::reports::{Agg, Bucket, GroupKey, GroupQuery, Split};
use crate::store::{ColumnType, Ident, SqlValue};

/// What a group-by or measure names: a field of the entity, or a system field.
#[derive(Debug, Clone)]
pub struct FieldRef {
    pub name: String,
    pub column: Ident,
    pub ty: ColumnType,
    pub kind: Kind,
    pub def: Option<FieldDef>,
}

impl FieldRef {
    pub fn is_datetime(&self) -> bool {
        self.ty == ColumnType::Datetime
    }

    pub fn label(&self, lang: Lang) -> String {
        let system = |en: &str, zh: &str| match lang {
            Lang::En => en.to_owned(),
            Lang::ZhCn => zh.to_owned(),
        };
        match self.name.as_str() {
            "owner" => return system("Owner", "负责人"),
            "created_by" => return system("Created by", "创建人"),
            "department" if self.def.is_none() => return system("Department", "部门"),
            "created_at" => return system("Created", "创建时间"),
            "updated_at" => return system("Updated", "更新时间"),
            _ => {}
        }
        let label = self.def.as_ref().and_then(|f| f.schema.get("x-label"));
        label_in(label, lang).unwrap_or_else(|| self.name.clone())
    }
}

/// A label from metadata in a language (falling back to English, then any).
pub fn label_in(label: Option<&Value>, lang: Lang) -> Option<String> {
    let code = match lang {
        Lang::En => "en",
        Lang::ZhCn => "zh-CN",
    };
    match label? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Object(map) => map
            .get(code)
            .or_else(|| map.get("en"))
            .or_else(|| map.values().next())
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned),
        _ => None,
    }
}

/// A field the caller may read, or a 400 naming the part of the query that names it.
pub fn field(target: &Target, access: &Access, name: &str, part: &str) -> Result<FieldRef> {
    let entity = &target.entity;
    let entity_name = entity.def.name.as_str();
    let missing = || Error::bad_parameter(part, format!("{entity_name} has no field '{name}'"));
    let system = match name {
        "created_at" | "updated_at" => Some((ColumnType::Datetime, Kind::Datetime)),
        "owner" | "created_by" => Some((ColumnType::Id, Kind::User)),
        "department" if entity.def.field("department").is_none() => {
            Some((ColumnType::Id, Kind::Department))
        }
        _ => None,
    };
    if let Some((ty, kind)) = system {
        return Ok(FieldRef {
            name: name.to_owned(),
            column: Ident::fixed(match name {
                "created_at" => "created_at",
                "updated_at" => "updated_at",
                "owner" => "owner",
                "created_by" => "created_by",
                _ => "department",
            }),
            ty,
            kind,
            def: None,
        });
    }
    let def = entity
        .def
        .field(name)
        .filter(|f| access.can_read_field(entity_name, f.name.as_str()))
        .ok_or_else(missing)?;
    let ty = def.column_type().ok_or_else(|| {
        Error::bad_parameter(
            part,
            format!("{name} holds a list and cannot be reported on"),
        )
    })?;
    Ok(FieldRef {
        name: name.to_owned(),
        column: Ident::column(&def.name),
        ty,
        kind: def.kind,
        def: Some(def.clone()),
    })
}

/// How a group-by's values are named.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DimKind {
    Bucket(Bucket),
    Select,
    Boolean,
    Lookup,
    User,
    Department,
    Text,
}

#[derive(Debug, Clone)]
pub struct Dim {
    pub field: FieldRef,
    pub kind: DimKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Func {
    Count,
    CountDistinct,
    Sum,
    Avg,
    Min,
    Max,
}

#[derive(Debug, Clone)]
pub struct Measure {
    pub key: String,
    pub func: Func,
    pub field: Option<FieldRef>,
    /// Where its aggregates start in a row's aggregates (avg: sum, then count).
    pub agg: usize,
    pub label: String,
}

/// The date range, resolved to days in the settings' time zone.
#[derive(Debug, Clone)]
pub struct Range {
    pub field: FieldRef,
    pub days: DateRange,
}

#[derive(Debug, Clone)]
pub struct Plan {
    pub dims: Vec<Dim>,
    pub measures: Vec<Measure>,
    pub aggs: Vec<Agg>,
    pub range: Option<Range>,
    /// The previous period and how far it lies back.
    pub previous: Option<(DateRange, Shift)>,
    pub tz: Tz,
    pub lang: Lang,
    /// The records' condition: the caller's scope, the filter, and the range (both periods).
    pub condition: Condition,
}

fn dim(target: &Target, access: &Access, name: &str, bucket: Option<&str>) -> Result<Dim> {
    let field = field(target, access, name, "group_by")?;
    let caps = field.def.as_ref().map(FieldDef::capabilities);
    let kind = if let Some(bucket) = bucket {
        let b = dates::parse_bucket(bucket).ok_or_else(|| {
            Error::bad_parameter(
                "group_by",
                format!("bucket '{bucket}' is not one of day, week, month, quarter, year"),
            )
        })?;
        if !matches!(field.ty, ColumnType::Date | ColumnType::Datetime) {
            return Err(Error::bad_parameter(
                "group_by",
                format!("{name} is not a date, so it has no {bucket}"),
            ));
        }
        DimKind::Bucket(b)
    } else {
        match field.kind {
            Kind::Select => DimKind::Select,
            Kind::Boolean => DimKind::Boolean,
            Kind::Lookup => DimKind::Lookup,
            Kind::User => DimKind::User,
            Kind::Department => DimKind::Department,
            Kind::Date | Kind::Datetime => {
                return Err(Error::bad_parameter(
                    "group_by",
                    format!("{name} is a date: say which bucket (day, week, month, quarter, year)"),
                ));
            }
            _ if caps.is_some_and(|c| c.groupable) && field.ty == ColumnType::Text => DimKind::Text,
            _ => {
                return Err(Error::bad_parameter(
                    "group_by",
                    format!("{name} cannot be grouped by"),
                ));
            }
        }
    };
    Ok(Dim { field, kind })
}

fn measure(
    target: &Target,
    access: &Access,
    spec: &MeasureSpec,
    aggs: &mut Vec<Agg>,
    lang: Lang,
) -> Result<Measure> {
    let func = match spec.func.as_str() {
        "count" => Func::Count,
        "count_distinct" => Func::CountDistinct,
        "sum" => Func::Sum,
        "avg" => Func::Avg,
        "min" => Func::Min,
        "max" => Func::Max,
        other => {
            return Err(Error::bad_parameter(
                "measures",
                format!("'{other}' is not one of count, count_distinct, sum, avg, min, max"),
            ));
        }
    };
    let agg = aggs.len();
    if func == Func::Count {
        aggs.push(Agg::Count);
        return Ok(Measure {
            key: "count".into(),
            func,
            field: None,
            agg,
            label: match lang {
                Lang::En => "Count".into(),
                Lang::ZhCn => "数量".into(),
            },
        });
    }
    let name = spec
        .field
        .as_deref()
        .ok_or_else(|| Error::bad_parameter("measures", format!("{} needs a field", spec.func)))?;
    let field = field(target, access, name, "measures")?;
    let numeric = matches!(field.ty, ColumnType::Integer | ColumnType::Decimal { .. })
        && field.kind != Kind::Boolean;
    let ordered = numeric || matches!(field.ty, ColumnType::Date | ColumnType::Datetime);
    let fits = match func {
        Func::Sum | Func::Avg => numeric,
        Func::Min | Func::Max => ordered,
        _ => true,
    };
    if !fits {
        return Err(Error::bad_parameter(
            "measures",
            format!("{name} is not a number, so it has no {}", spec.func),
        ));
    }
    let c = field.column.clone();
    match func {
        Func::CountDistinct => aggs.push(Agg::CountDistinct(c)),
        Func::Sum => aggs.push(Agg::Sum(c, field.ty)),
        Func::Avg => {
            aggs.push(Agg::Sum(c.clone(), field.ty));
            aggs.push(Agg::CountOf(c));
        }
        Func::Min => aggs.push(Agg::Min(c, field.ty)),
        Func::Max => aggs.push(Agg::Max(c, field.ty)),
        Func::Count => {}
    }
    let field_label = field.label(lang);
    let label = match (lang, func) {
        (Lang::En, Func::CountDistinct) => format!("Distinct {field_label}"),
        (Lang::En, Func::Sum) => format!("Sum of {field_label}"),
        (Lang::En, Func::Avg) => format!("Average {field_label}"),
        (Lang::En, Func::Min) => format!("Lowest {field_label}"),
        (Lang::En, Func::Max) => format!("Highest {field_label}"),
        (Lang::ZhCn, Func::CountDistinct) => format!("{field_label} 去重计数"),
        (Lang::ZhCn, Func::Sum) => format!("{field_label} 合计"),
        (Lang::ZhCn, Func::Avg) => format!("{field_label} 平均"),
        (Lang::ZhCn, Func::Min) => format!("{field_label} 最小"),
        (Lang::ZhCn, Func::Max) => format!("{field_label} 最大"),
        (_, Func::Count) => String::new(),
    };
    Ok(Measure {
        key: spec.key(),
        func,
        field: Some(field),
        agg,
        label,
    })
}

fn parse_day(text: &str, part: &str) -> Result<NaiveDate> {
    crate::fields::parse_date_or_datetime(text)
        .ok_or_else(|| Error::bad_parameter(part, format!("'{text}' is not a date (YYYY-MM-DD)")))
}

fn range(target: &Target, access: &Access, spec: &ReportSpec, tz: Tz) -> Result<Option<Range>> {
    let Some(r) = &spec.range else {
        return Ok(None);
    };
    let field = field(target, access, &r.field, "range")?;
    if !matches!(field.ty, ColumnType::Date | ColumnType::Datetime) {
        return Err(Error::bad_parameter(
            "range",
            format!("{} is not a date", r.field),
        ));
    }
    let today = Utc::now().with_timezone(&tz).date_naive();
    let days = match (&r.relative, &r.from, &r.to) {
        (Some(name), None, None) => dates::relative(name, today).ok_or_else(|| {
            Error::bad_parameter(
                "range",
                format!(
                    "'{name}' is not a relative range ({})",
                    dates::RELATIVE.join(", ")
                ),
            )
        })?,
        (None, Some(from), Some(to)) => {
            let (from, to) = (parse_day(from, "range")?, parse_day(to, "range")?);
            if to < from {
                return Err(Error::bad_parameter("range", "ends before it starts"));
            }
            DateRange { from, to }
        }
        _ => {
            return Err(Error::bad_parameter(
                "range",
                "give either from and to, or relative",
            ));
        }
    };
    Ok(Some(Range { field, days }))
}

/// The condition "the field lies within the days" (in the zone, for datetimes).
pub fn within(field: &FieldRef, days: DateRange, tz: Tz) -> Condition {
    let (from, to) = bounds(field, days, tz);
    let column = Column::of(field.column.clone());
    Condition::And(vec![
        Condition::Compare {
            column: column.clone(),
            op: Cmp::Ge,
            value: from,
            or_null: false,
        },
        Condition::Compare {
            column,
            op: Cmp::Lt,
            value: to,
            or_null: false,
        },
    ])
}

/// The first value in the days and the first after them.
pub fn bounds(field: &FieldRef, days: DateRange, tz: Tz) -> (SqlValue, SqlValue) {
    let after = days.to + Duration::days(1);
    if field.is_datetime() {
        (
            SqlValue::Datetime(dates::day_start(tz, days.from)),
            SqlValue::Datetime(dates::day_start(tz, after)),
        )
    } else {
        (SqlValue::Date(days.from), SqlValue::Date(after))
    }
}

impl Plan {
    pub fn new(
        target: &Target,
        access: &Access,
        spec: &ReportSpec,
        tz: Tz,
        lang: Lang,
    ) -> Result<Plan> {
        if spec.group_by.len() > 2 {
            return Err(Error::bad_parameter(
                "group_by",
                "a report groups by at most two fields",
            ));
        }
        let dims = spec
            .group_by
            .iter()
            .map(|g| dim(target, access, &g.field, g.bucket.as_deref()))
            .collect::<Result<Vec<_>>>()?;
        let mut aggs = Vec::new();
        let default = [MeasureSpec {
            func: "count".into(),
            field: None,
        }];
        let specs = if spec.measures.is_empty() {
            &default[..]
        } else {
            &spec.measures[..]
        };
        let measures = specs
            .iter()
            .map(|m| measure(target, access, m, &mut aggs, lang))
            .collect::<Result<Vec<_>>>()?;
        let range = range(target, access, spec, tz)?;
        let previous = match spec.compare.as_deref() {
            None => None,
            Some("previous_period") => {
                let r = range
                    .as_ref()
                    .ok_or_else(|| Error::bad_parameter("compare", "comparing needs a range"))?;
                Some(r.days.previous())
            }
            Some(other) => {
                return Err(Error::bad_parameter(
                    "compare",
                    format!("'{other}' is not a comparison (use previous_period)"),
                ));
            }
        };
        // The filter is compiled by the one read query: scope, hidden fields and all.
        let also = range.as_ref().map(|r| {
            let days = match previous {
                Some((prev, _)) => DateRange {
                    from: prev.from,
                    to: r.days.to,
                },
                None => r.days,
            };
            within(&r.field, days, tz)
        });
        let read = ReadQuery {
            filter: spec.filter.as_deref(),
            also,
            ..ReadQuery::new(target, access)
        };
        let condition = read.matching()?;
        Ok(Plan {
            dims,
            measures,
            aggs,
            range,
            previous,
            tz,
            lang,
            condition,
        })
    }

    /// The store's statement.
    pub fn query<'a>(&self, target: &'a Target) -> GroupQuery<'a> {
        let zone_span = match (&self.range, self.previous) {
            (Some(r), prev) => {
                let from = prev.map_or(r.days.from, |(p, _)| p.from);
                Some((
                    dates::day_start(self.tz, from - Duration::days(1)),
                    dates::day_start(self.tz, r.days.to + Duration::days(2)),
                ))
            }
            (None, _) => None,
        };
        let keys = self
            .dims
            .iter()
            .map(|d| match d.kind {
                DimKind::Bucket(bucket) if d.field.is_datetime() => {
                    let (from, to) = zone_span.unwrap_or_else(|| {
                        (
                            dates::day_start(self.tz, NaiveDate::MIN.max(epoch(1970))),
                            dates::day_start(self.tz, epoch(2100)),
                        )
                    });
                    GroupKey::Datetime {
                        column: d.field.column.clone(),
                        bucket,
                        zone: dates::zone(self.tz, from, to),
                    }
                }
                DimKind::Bucket(bucket) => GroupKey::Date {
                    column: d.field.column.clone(),
                    bucket,
                },
                _ => GroupKey::Column {
                    column: d.field.column.clone(),
                    ty: d.field.ty,
                },
            })
            .collect();
        let split = match (&self.range, self.previous) {
            (Some(r), Some(_)) => Some(Split {
                column: r.field.column.clone(),
                at: bounds(&r.field, r.days, self.tz).0,
            }),
            _ => None,
        };
        // A range of more than a quarter reads much of a table: scanning beats the date
        // index and a lookup of every row in it. Unless a compound index leads with the
        // range's field: declared for reports like this one, it holds their columns, and
        // SQLite reads the range from it alone (a scan hint would send the planner to the
        // index of a group-by field and a lookup per row instead: measured, 1.6 s against
        // 0.3 s at a million rows).
        let led_by = |column: &str| {
            target
                .entity
                .def
                .indexes
                .iter()
                .any(|index| index.keys.first().is_some_and(|key| key.column == column))
        };
        let scan = self.range.as_ref().and_then(|r| {
            let from = self.previous.map_or(r.days.from, |(p, _)| p.from);
            ((r.days.to - from).num_days() > 92 && !led_by(r.field.column.as_str()))
                .then(|| r.field.column.clone())
        });
        GroupQuery {
            table: &target.entity.layout.table,
            filter: self.condition.clone(),
            split,
            keys,
            aggs: self.aggs.clone(),
            scan,
        }
    }
}

fn epoch(year: i32) -> NaiveDate {
    NaiveDate::from_ymd_opt(year, 1, 1).unwrap_or_default()
}
