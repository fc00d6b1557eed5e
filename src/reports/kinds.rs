//! Built-in analyses beyond the funnel: the win rate (won ÷ won + lost, from one grouped
//! query) and the time between two dates (average and median, over the matching records).

use rust_decimal::Decimal;
use serde_json::{Value, json};

use super::plan::{self, Plan};
use super::post::word;
use super::spec::{GroupBySpec, MeasureSpec, ReportSpec};
use crate::auth::Access;
use crate::context::Context;
use crate::error::{Error, Result};
use crate::fields::{Kind, Lang};
use crate::records::service::Target;
use crate::store::{ColumnType, SqlValue};

fn ratio(part: i64, whole: i64) -> Value {
    if whole == 0 {
        return Value::Null;
    }
    let mut r = (Decimal::from(part) / Decimal::from(whole)).round_dp(4);
    r.rescale(4);
    json!(r.to_string())
}

/// `"kind": "win_rate"`: per value of an optional group-by (a rep, a month), the records won,
/// lost and won ÷ (won + lost), in one GROUP BY with the stage as the last key.
pub async fn win_rate(
    ctx: &Context,
    access: &Access,
    target: &Target,
    spec: &ReportSpec,
    tz: chrono_tz::Tz,
    lang: Lang,
) -> Result<Value> {
    let stage = spec
        .stage
        .as_deref()
        .ok_or_else(|| Error::bad_parameter("stage", "a win rate needs its stage field"))?;
    let field = plan::field(target, access, stage, "stage")?;
    if field.kind != Kind::Select {
        return Err(Error::bad_parameter(
            "stage",
            format!("{stage} is not a select field"),
        ));
    }
    if spec.group_by.len() > 1 {
        return Err(Error::bad_parameter(
            "group_by",
            "a win rate groups by at most one field",
        ));
    }
    let won = spec.won.clone().unwrap_or_else(|| vec!["won".into()]);
    let lost = spec.lost.clone().unwrap_or_else(|| vec!["lost".into()]);
    let mut group_by = spec.group_by.clone();
    group_by.push(GroupBySpec {
        field: stage.to_owned(),
        bucket: None,
    });
    let grouped = ReportSpec {
        kind: None,
        group_by,
        measures: vec![MeasureSpec {
            func: "count".into(),
            field: None,
        }],
        compare: None,
        cumulative: false,
        fill_gaps: Some(false),
        limit: None,
        sort: None,
        ..spec.clone()
    };
    let answer = super::group(ctx, access, target, &grouped, tz, lang).await?;
    let dims = spec.group_by.len();
    let mut rows: Vec<(Value, Value, i64, i64)> = Vec::new();
    let mut total = (0i64, 0i64);
    for row in answer["rows"].as_array().into_iter().flatten() {
        let stage_key = row["keys"][dims].as_str().unwrap_or_default().to_owned();
        let n = row["values"]["count"].as_i64().unwrap_or_default();
        let (w, l) = (
            if won.contains(&stage_key) { n } else { 0 },
            if lost.contains(&stage_key) { n } else { 0 },
        );
        total.0 += w;
        total.1 += l;
        let (key, label) = if dims == 0 {
            (Value::Null, Value::Null)
        } else {
            (row["keys"][0].clone(), row["labels"][0].clone())
        };
        match rows.iter_mut().find(|r| r.0 == key) {
            Some(r) => {
                r.2 += w;
                r.3 += l;
            }
            None => rows.push((key, label, w, l)),
        }
    }
    let out_rows: Vec<Value> = rows
        .into_iter()
        .filter(|_| dims > 0)
        .map(|(key, label, w, l)| {
            json!({"keys": [key], "labels": [label],
                   "values": {"won": w, "lost": l, "win_rate": ratio(w, w + l)}})
        })
        .collect();
    let mut columns: Vec<Value> = answer["columns"]
        .as_array()
        .map(|c| c.iter().take(dims).cloned().collect())
        .unwrap_or_default();
    columns.extend([
        json!({"key": "won", "label": word(lang, "Won", "赢单")}),
        json!({"key": "lost", "label": word(lang, "Lost", "输单")}),
        json!({"key": "win_rate", "label": word(lang, "Win rate", "赢率")}),
    ]);
    let mut out = json!({
        "entity": spec.entity, "kind": "win_rate", "columns": columns, "rows": out_rows,
        "totals": {"won": total.0, "lost": total.1, "win_rate": ratio(total.0, total.0 + total.1)},
    });
    if let Some(r) = answer.get("range") {
        out["range"] = r.clone();
    }
    Ok(out)
}

/// `"kind": "duration"`: the time from one date field to another over the matching records
/// that have both — average and median, in days, hours or minutes.
pub async fn duration(
    ctx: &Context,
    access: &Access,
    target: &Target,
    spec: &ReportSpec,
    tz: chrono_tz::Tz,
    lang: Lang,
) -> Result<Value> {
    let named = |name: Option<&str>, part: &str| -> Result<plan::FieldRef> {
        let name = name.ok_or_else(|| Error::bad_parameter(part, "a duration needs it"))?;
        let f = plan::field(target, access, name, part)?;
        if !matches!(f.ty, ColumnType::Date | ColumnType::Datetime) {
            return Err(Error::bad_parameter(part, format!("{name} is not a date")));
        }
        Ok(f)
    };
    let from = named(spec.from_field.as_deref(), "from_field")?;
    let to = named(spec.to_field.as_deref(), "to_field")?;
    let datetimes = from.is_datetime() || to.is_datetime();
    let unit = spec
        .unit
        .as_deref()
        .unwrap_or(if datetimes { "hours" } else { "days" });
    let seconds_per = match unit {
        "days" => 86_400,
        "hours" => 3_600,
        "minutes" => 60,
        other => {
            return Err(Error::bad_parameter(
                "unit",
                format!("'{other}' is not days, hours or minutes"),
            ));
        }
    };
    let base = ReportSpec {
        group_by: Vec::new(),
        measures: Vec::new(),
        compare: None,
        ..spec.clone()
    };
    let plan = Plan::new(target, access, &base, tz, lang)?;
    let rows = crate::store::reports::records(
        &mut &ctx.db,
        &target.entity.layout.table,
        &plan.condition,
        &[(from.column.clone(), from.ty), (to.column.clone(), to.ty)],
    )
    .await?;
    let instant = |v: &SqlValue| match v {
        SqlValue::Datetime(t) => Some(t.timestamp()),
        SqlValue::Date(d) => Some(super::dates::day_start(tz, *d).timestamp()),
        _ => None,
    };
    let mut spans: Vec<i64> = rows
        .iter()
        .filter_map(|r| Some(instant(&r[2])? - instant(&r[1])?))
        .collect();
    spans.sort_unstable();
    let in_units = |seconds: Decimal| {
        let mut d = (seconds / Decimal::from(seconds_per)).round_dp(2);
        d.rescale(2);
        json!(d.to_string())
    };
    let (avg, median) = if spans.is_empty() {
        (Value::Null, Value::Null)
    } else {
        let n = spans.len();
        let sum: i64 = spans.iter().sum();
        let median = if n % 2 == 1 {
            Decimal::from(spans[n / 2])
        } else {
            Decimal::from(spans[n / 2 - 1] + spans[n / 2]) / Decimal::TWO
        };
        (
            in_units(Decimal::from(sum) / Decimal::from(n as i64)),
            in_units(median),
        )
    };
    Ok(json!({
        "entity": spec.entity, "kind": "duration", "unit": unit,
        "columns": [
            {"key": "count", "label": word(lang, "Count", "数量")},
            {"key": "avg", "label": word(lang, "Average", "平均")},
            {"key": "median", "label": word(lang, "Median", "中位数")},
        ],
        "rows": [],
        "totals": {"count": spans.len(), "avg": avg, "median": median},
    }))
}
