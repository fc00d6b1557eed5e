//! The funnel: records per stage of a select field, in option order, counting every stage a
//! record reached — from its history, so a deal now won still counts for the stages it passed
//! — with the amount and the conversion from the stage before. Each row's drill-down filter
//! (`stage ever in [this and later stages]`) lists exactly the records the row counts.

use std::collections::HashMap;

use rust_decimal::Decimal;
use serde_json::{Value, json};

use super::plan::{self, FieldRef, Plan};
use super::post::word;
use super::spec::ReportSpec;
use crate::auth::Access;
use crate::context::Context;
use crate::error::{Error, Result};
use crate::fields::{Kind, Lang, option_label};
use crate::records::service::Target;
use crate::store::{ColumnType, SqlValue};

pub async fn run(
    ctx: &Context,
    access: &Access,
    target: &Target,
    spec: &ReportSpec,
    tz: chrono_tz::Tz,
    lang: Lang,
) -> Result<Value> {
    let stage_name = spec
        .stage
        .as_deref()
        .ok_or_else(|| Error::bad_parameter("stage", "a funnel needs its stage field"))?;
    let stage = plan::field(target, access, stage_name, "stage")?;
    let options = match (&stage.def, stage.kind) {
        (Some(def), Kind::Select) => def.options.clone(),
        _ => {
            return Err(Error::bad_parameter(
                "stage",
                format!("{stage_name} is not a select field"),
            ));
        }
    };
    let stages: Vec<String> = match &spec.stages {
        Some(list) => {
            for s in list {
                if !options.iter().any(|o| &o.value == s) {
                    return Err(Error::bad_parameter(
                        "stages",
                        format!("\"{s}\" is not an option of {stage_name}"),
                    ));
                }
            }
            list.clone()
        }
        None => options.iter().map(|o| o.value.clone()).collect(),
    };
    let amount: Option<FieldRef> = match spec.amount.as_deref() {
        Some(name) => {
            let f = plan::field(target, access, name, "amount")?;
            if !matches!(f.ty, ColumnType::Integer | ColumnType::Decimal { .. }) {
                return Err(Error::bad_parameter(
                    "amount",
                    format!("{name} is not a number"),
                ));
            }
            Some(f)
        }
        None => None,
    };
    // Scope, filter and range, checked like any report (no group-bys or measures).
    let base = ReportSpec {
        group_by: Vec::new(),
        measures: Vec::new(),
        compare: None,
        ..spec.clone()
    };
    let plan = Plan::new(target, access, &base, tz, lang)?;
    let table = &target.entity.layout.table;
    let mut columns = vec![(stage.column.clone(), stage.ty)];
    if let Some(a) = &amount {
        columns.push((a.column.clone(), a.ty));
    }
    let rows =
        crate::store::reports::records(&mut &ctx.db, table, &plan.condition, &columns).await?;
    let history = crate::store::reports::field_history(
        &mut &ctx.db,
        target.entity.def.name.as_str(),
        table,
        &plan.condition,
        stage_name,
    )
    .await?;
    let index: HashMap<&str, usize> = stages
        .iter()
        .enumerate()
        .map(|(i, s)| (s.as_str(), i))
        .collect();
    // The furthest stage each record reached.
    let mut reached: HashMap<String, usize> = HashMap::new();
    let note = |reached: &mut HashMap<String, usize>, id: &str, value: Option<&str>| {
        if let Some(i) = value.and_then(|v| index.get(v)) {
            let e = reached.entry(id.to_owned()).or_insert(*i);
            *e = (*e).max(*i);
        }
    };
    for (id, changes) in &history {
        let Ok(changes) = serde_json::from_str::<Value>(changes) else {
            continue;
        };
        let change = &changes[stage_name];
        note(&mut reached, id, change["old"].as_str());
        note(&mut reached, id, change["new"].as_str());
    }
    let mut counts = vec![0i64; stages.len()];
    let scale = match amount.as_ref().map(|a| a.ty) {
        Some(ColumnType::Decimal { scale }) => scale,
        _ => 0,
    };
    let mut sums = vec![Decimal::ZERO; stages.len()];
    for row in &rows {
        let id = row[0].as_str().unwrap_or_default();
        note(&mut reached, id, row[1].as_str());
        let Some(&furthest) = reached.get(id) else {
            continue;
        };
        let value = match row.get(2) {
            Some(SqlValue::Decimal(d, _)) => *d,
            Some(SqlValue::Integer(i)) => Decimal::from(*i),
            _ => Decimal::ZERO,
        };
        for i in 0..=furthest {
            counts[i] += 1;
            sums[i] += value;
        }
    }
    let sum_key = amount.as_ref().map(|a| format!("sum_{}", a.name));
    let mut out_rows = Vec::new();
    for (i, s) in stages.iter().enumerate() {
        let label = options
            .iter()
            .find(|o| &o.value == s)
            .map(|o| option_label(o, lang).to_owned())
            .unwrap_or_else(|| s.clone());
        let mut values = json!({"count": counts[i]});
        if let Some(key) = &sum_key {
            let mut d = sums[i];
            d.rescale(scale);
            values[key] = json!(if scale == 0 {
                json!(d.to_string().parse::<i64>().unwrap_or_default())
            } else {
                json!(d.to_string())
            });
        }
        let conversion = if i == 0 || counts[i - 1] == 0 {
            Value::Null
        } else {
            let mut r = (Decimal::from(counts[i]) / Decimal::from(counts[i - 1])).round_dp(4);
            r.rescale(4);
            json!(r.to_string())
        };
        values["conversion"] = conversion;
        let later: Vec<String> = stages[i..]
            .iter()
            .map(|v| Value::String(v.clone()).to_string())
            .collect();
        // Exactly the records counted here: those whose stage now, or any stage their history
        // shows, is this one or a later one (the furthest reached is at least this stage).
        let mut filter = format!("{stage_name} ever in [{}]", later.join(", "));
        if let Some(f) = spec.filter.as_deref().filter(|f| !f.trim().is_empty()) {
            filter = format!("({f}) && {filter}");
        }
        if let Some(r) = &plan.range {
            let (from, to) = plan::bounds(&r.field, r.days, tz);
            let lit = |v: &SqlValue| match v {
                SqlValue::Datetime(t) => {
                    format!("\"{}\"", crate::store::value::format_datetime(t))
                }
                other => other.to_json().to_string(),
            };
            filter = format!(
                "{filter} && {} >= {} && {} < {}",
                r.field.name,
                lit(&from),
                r.field.name,
                lit(&to)
            );
        }
        let color = options
            .iter()
            .find(|o| &o.value == s)
            .and_then(|o| o.color.clone());
        out_rows.push(json!({
            "keys": [s],
            "labels": [label],
            "values": values,
            "filter": filter,
            "color": color,
        }));
    }
    let mut columns = vec![
        json!({"key": stage_name, "label": stage.label(lang)}),
        json!({"key": "count", "label": word(lang, "Count", "数量")}),
    ];
    if let (Some(key), Some(a)) = (&sum_key, &amount) {
        let l = a.label(lang);
        columns.push(json!({"key": key, "label": match lang {
            Lang::En => format!("Sum of {l}"),
            Lang::ZhCn => format!("{l} 合计"),
        }}));
    }
    columns.push(json!({"key": "conversion", "label": word(lang, "Conversion", "转化率")}));
    let mut out = json!({
        "entity": spec.entity,
        "kind": "funnel",
        "columns": columns,
        "rows": out_rows,
        "totals": {"count": counts.first().copied().unwrap_or_default()},
    });
    if let Some(r) = &plan.range {
        out["range"] = json!({"field": r.field.name, "from": r.days.from, "to": r.days.to});
    }
    Ok(out)
}
