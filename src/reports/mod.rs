//! Reports: a query document (entity, filter, group-bys, measures, range, sort, top N,
//! comparison, running totals) answered with one `GROUP BY` statement through the caller's
//! read scope, and built-in analyses (the funnel). See `docs/analytics.md`.

pub mod cache;
pub mod dashboards;
pub mod dates;
pub mod funnel;
pub mod kinds;
pub mod plan;
pub mod post;
pub mod spec;

use std::collections::HashMap;

use serde_json::{Value, json};

use crate::auth::Access;
use crate::context::Context;
use crate::error::{Error, Result};
use crate::fields::{Lang, option_label};
use crate::records::list::ReadQuery;
use crate::records::service::{Target, target};
use crate::settings::Settings;
use crate::store::Executor;
use plan::{Dim, DimKind, Plan};
use post::{key_text, word};
pub use spec::ReportSpec;

/// The caller's language for labels.
pub fn language(access: &Access, settings: &Settings) -> Lang {
    match access.actor() {
        Some(actor) => Lang::from_tag(&actor.language),
        None => Lang::from_tag(&settings.default_language()),
    }
}

/// A card: a report query drawn as a chart.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CardSpec {
    /// `number`, `bar`, `stacked_bar`, `line`, `area`, `pie`, `donut`, `funnel`, `table`.
    pub chart: String,
    #[serde(default)]
    pub title: Option<Value>,
    /// The measure drawn (default: the query's first).
    #[serde(default)]
    pub measure: Option<String>,
    pub query: Value,
}

/// Answers a card's query and draws it as SVG. `range` replaces the query's range dates (a
/// dashboard's one date range), keeping its field.
pub async fn card_svg(
    ctx: &Context,
    access: &Access,
    card: &CardSpec,
    range: Option<&Value>,
) -> Result<String> {
    let kind = crate::charts::Kind::parse(&card.chart).ok_or_else(|| {
        Error::bad_parameter(
            "chart",
            format!(
                "'{}' is not a chart (number, bar, stacked_bar, line, area, pie, donut, funnel, table)",
                card.chart
            ),
        )
    })?;
    let mut query = card.query.clone();
    if let (Some(range), Some(own)) = (range, query.get_mut("range"))
        && let (Some(own), Some(range)) = (own.as_object_mut(), range.as_object())
    {
        for key in ["from", "to", "relative"] {
            own.remove(key);
        }
        for (k, v) in range {
            if k != "field" {
                own.insert(k.clone(), v.clone());
            }
        }
    }
    let settings = Settings::load(&mut &ctx.db).await?;
    let lang = language(access, &settings);
    let report = self::query(ctx, access, &query).await?;
    let title = plan::label_in(card.title.as_ref(), lang).unwrap_or_default();
    let chart = crate::charts::report::chart(kind, &title, &report, card.measure.as_deref(), lang);
    Ok(crate::charts::render(&chart))
}

/// `POST /api/reports/query`.
pub async fn query(ctx: &Context, access: &Access, body: &Value) -> Result<Value> {
    let spec = ReportSpec::parse(body)?;
    // Answers are kept while the entities read are unchanged (see `cache`).
    let settings = Settings::load(&mut &ctx.db).await?;
    let tz = settings.time_zone();
    let today = chrono::Utc::now()
        .with_timezone(&tz)
        .date_naive()
        .to_string();
    let caller = format!("{access:?}");
    let lang = format!("{:?}", language(access, &settings));
    let key = cache::key(&[&body.to_string(), &caller, tz.name(), &lang, &today]);
    if let Some(hit) = ctx.reports.get(key) {
        return Ok(hit);
    }
    let mut entities = vec![spec.entity.clone()];
    if let Ok(target) = target(ctx, access, &spec.entity).await {
        entities.extend(
            target
                .entity
                .def
                .fields
                .iter()
                .filter_map(|f| f.target.as_ref().map(|t| t.as_str().to_owned())),
        );
    }
    let deps = ctx.reports.generations(&entities);
    let answer = run(ctx, access, &spec).await?;
    ctx.reports.put(key, deps, answer.clone());
    Ok(answer)
}

/// Answers a parsed report query.
pub async fn run(ctx: &Context, access: &Access, spec: &ReportSpec) -> Result<Value> {
    let settings = Settings::load(&mut &ctx.db).await?;
    let tz = settings.time_zone();
    let lang = language(access, &settings);
    let target = target(ctx, access, &spec.entity).await?;
    match spec.kind.as_deref().unwrap_or("group") {
        "group" => group(ctx, access, &target, spec, tz, lang).await,
        "funnel" => funnel::run(ctx, access, &target, spec, tz, lang).await,
        "win_rate" => kinds::win_rate(ctx, access, &target, spec, tz, lang).await,
        "duration" => kinds::duration(ctx, access, &target, spec, tz, lang).await,
        other => Err(Error::bad_parameter(
            "kind",
            format!("'{other}' is not a report kind (group, funnel, win_rate, duration)"),
        )),
    }
}

pub(crate) async fn group(
    ctx: &Context,
    access: &Access,
    target: &Target,
    spec: &ReportSpec,
    tz: chrono_tz::Tz,
    lang: Lang,
) -> Result<Value> {
    let plan = Plan::new(target, access, spec, tz, lang)?;
    let sort = post::sort_by(&plan, spec.sort.as_deref())?;
    if spec.limit == Some(0) {
        return Err(Error::bad_parameter("limit", "must be at least 1"));
    }
    let rows = crate::store::reports::group(&mut &ctx.db, &plan.query(target)).await?;
    let fill = spec.fill_gaps.unwrap_or(true);
    let groups = post::groups(&plan, rows, fill);
    let labels = labels(ctx, access, target, &plan, &groups).await?;
    let mut groups = post::order(&plan, groups, &labels, &sort, spec.limit);
    if spec.cumulative {
        post::cumulate(&plan, &mut groups);
    }
    let top_keys: Vec<Value> = {
        let mut seen = Vec::new();
        for g in groups.iter().filter(|g| !g.other) {
            if let Some(k) = g.keys.first()
                && !seen.contains(k)
            {
                seen.push(k.clone());
            }
        }
        seen
    };
    let empty = word(lang, "(empty)", "（空）");
    let other = word(lang, "Other", "其他");
    let mut total: Option<Vec<crate::store::SqlValue>> = None;
    let mut total_prev: Option<Vec<crate::store::SqlValue>> = None;
    let mut rows = Vec::new();
    for g in &groups {
        total = Some(match &total {
            Some(t) => post::combine(&plan.aggs, t, &g.raw),
            None => g.raw.clone(),
        });
        if let Some(p) = &g.previous {
            total_prev = Some(match &total_prev {
                Some(t) => post::combine(&plan.aggs, t, p),
                None => p.clone(),
            });
        }
        let row_labels: Vec<Value> = g
            .keys
            .iter()
            .enumerate()
            .map(|(i, k)| {
                if g.other && i == 0 {
                    return Value::String(other.clone());
                }
                if k.is_null() {
                    return Value::String(empty.clone());
                }
                let text = key_text(k);
                Value::String(labels[i].get(&text).cloned().unwrap_or(text))
            })
            .collect();
        let mut row = json!({
            "keys": g.keys,
            "labels": row_labels,
            "values": post::values(&plan.measures, &g.raw),
        });
        if g.other {
            row["other"] = json!(true);
        }
        let colors: Vec<Value> = plan
            .dims
            .iter()
            .zip(&g.keys)
            .map(|(d, k)| {
                d.field
                    .def
                    .as_ref()
                    .filter(|_| d.kind == DimKind::Select)
                    .and_then(|f| {
                        f.options
                            .iter()
                            .find(|o| Some(o.value.as_str()) == k.as_str())
                    })
                    .and_then(|o| o.color.clone())
                    .map_or(Value::Null, Value::String)
            })
            .collect();
        if colors.iter().any(|c| !c.is_null()) {
            row["colors"] = Value::Array(colors);
        }
        if let Some(p) = &g.previous {
            row["previous"] = post::values(&plan.measures, p);
        }
        if let Some(c) = &g.cumulative {
            row["cumulative"] = post::values(&plan.measures, c);
        }
        if let Some(f) = post::drill_filter(&plan, spec.filter.as_deref(), g, &top_keys) {
            row["filter"] = json!(f);
        }
        rows.push(row);
    }
    let mut columns: Vec<Value> = plan
        .dims
        .iter()
        .map(|d| json!({"key": d.field.name, "label": d.field.label(lang)}))
        .collect();
    columns.extend(
        plan.measures
            .iter()
            .map(|m| json!({"key": m.key, "label": m.label})),
    );
    let empty_raw: Vec<crate::store::SqlValue> = plan
        .aggs
        .iter()
        .map(|a| match a {
            crate::store::reports::Agg::Count
            | crate::store::reports::Agg::CountOf(_)
            | crate::store::reports::Agg::CountDistinct(_) => crate::store::SqlValue::Integer(0),
            crate::store::reports::Agg::Sum(_, ty)
            | crate::store::reports::Agg::Min(_, ty)
            | crate::store::reports::Agg::Max(_, ty) => crate::store::SqlValue::Null(*ty),
        })
        .collect();
    let mut out = json!({
        "entity": spec.entity,
        "columns": columns,
        "rows": rows,
        "totals": post::values(&plan.measures, total.as_ref().unwrap_or(&empty_raw)),
    });
    if let Some(r) = &plan.range {
        out["range"] = json!({"field": r.field.name, "from": r.days.from, "to": r.days.to});
    }
    if let Some((prev, _)) = &plan.previous {
        out["previous_range"] = json!({"from": prev.from, "to": prev.to});
        out["previous_totals"] =
            post::values(&plan.measures, total_prev.as_ref().unwrap_or(&empty_raw));
    }
    Ok(out)
}

/// People's names for the keys of each group-by, in the caller's language: option labels,
/// looked-up records' titles (through the read query, so only what the caller may see),
/// users' and departments' names.
async fn labels(
    ctx: &Context,
    access: &Access,
    target: &Target,
    plan: &Plan,
    groups: &[post::Group],
) -> Result<Vec<HashMap<String, String>>> {
    let mut out = Vec::new();
    for (i, dim) in plan.dims.iter().enumerate() {
        let keys: Vec<String> = {
            let mut seen: Vec<String> = groups
                .iter()
                .filter(|g| !g.keys[i].is_null())
                .map(|g| key_text(&g.keys[i]))
                .collect();
            seen.sort();
            seen.dedup();
            seen
        };
        out.push(dim_labels(ctx, access, target, dim, &keys, plan.lang).await?);
    }
    Ok(out)
}

async fn dim_labels(
    ctx: &Context,
    access: &Access,
    target: &Target,
    dim: &Dim,
    keys: &[String],
    lang: Lang,
) -> Result<HashMap<String, String>> {
    let mut out = HashMap::new();
    match dim.kind {
        DimKind::Select => {
            if let Some(f) = &dim.field.def {
                for o in &f.options {
                    out.insert(o.value.clone(), option_label(o, lang).to_owned());
                }
            }
        }
        DimKind::Boolean => {
            out.insert("true".into(), word(lang, "Yes", "是"));
            out.insert("false".into(), word(lang, "No", "否"));
        }
        DimKind::User => {
            for u in crate::store::auth::users(&mut &ctx.db).await? {
                if keys.contains(&u.id) {
                    out.insert(u.id, u.display_name);
                }
            }
        }
        DimKind::Department => {
            for d in crate::store::auth::departments(&mut &ctx.db).await? {
                if keys.contains(&d.id) {
                    out.insert(d.id, d.name);
                }
            }
        }
        DimKind::Lookup => {
            let Some(name) = dim.field.def.as_ref().and_then(|f| f.target.as_ref()) else {
                return Ok(out);
            };
            let Ok(entity) = target.catalog.entity(name.as_str()) else {
                return Ok(out);
            };
            let related = Target {
                catalog: target.catalog.clone(),
                entity,
            };
            out = titles(&mut &ctx.db, access, &related, keys)
                .await
                .unwrap_or_default();
        }
        DimKind::Bucket(_) | DimKind::Text => {}
    }
    Ok(out)
}

/// Titles of records by id, read through the one read query as the caller.
pub async fn titles(
    ex: &mut impl Executor,
    access: &Access,
    target: &Target,
    ids: &[String],
) -> Result<HashMap<String, String>> {
    let mut out = HashMap::new();
    let title = target.entity.def.title_field().map(|f| f.name.to_string());
    for chunk in ids.chunks(200) {
        let list: Vec<String> = chunk
            .iter()
            .filter(|id| uuid::Uuid::parse_str(id).is_ok())
            .map(|id| format!("\"{id}\""))
            .collect();
        if list.is_empty() {
            continue;
        }
        let filter = format!("id in [{}]", list.join(", "));
        let query = ReadQuery {
            filter: Some(&filter),
            limit: chunk.len() as i64,
            ..ReadQuery::new(target, access)
        };
        for record in query.page(ex).await?.items {
            if let Some(id) = record["id"].as_str() {
                let text = title
                    .as_deref()
                    .and_then(|t| record.get(t))
                    .and_then(|v| match v {
                        Value::String(s) => Some(s.clone()),
                        Value::Null => None,
                        other => Some(other.to_string()),
                    })
                    .unwrap_or_else(|| id.to_owned());
                out.insert(id.to_owned(), text);
            }
        }
    }
    Ok(out)
}
