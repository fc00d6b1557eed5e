//! A chart from a report's answer: categories from the first group-by, series from the
//! second, the chosen measure's exact text on every point, option colours, and links to the
//! list page filtered to each row's records.

use serde_json::Value;

use super::{Chart, Kind, PALETTE, Point, Series};
use crate::fields::Lang;

/// `/e/{entity}?filter=…`: the list of a row's records.
pub fn list_href(entity: &str, filter: &str) -> String {
    let mut out = format!("/e/{entity}?filter=");
    for b in filter.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn text_of(v: &Value) -> String {
    match v {
        Value::Null => "—".to_owned(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A measured figure as a chart writes it: with thousands separators (6,716,000.00).
fn figure_of(v: &Value) -> String {
    let text = text_of(v);
    if crate::fields::is_plain_number(&text) {
        crate::fields::group_digits(&text)
    } else {
        text
    }
}

fn number_of(v: &Value) -> f64 {
    match v {
        Value::Number(n) => n.as_f64().unwrap_or_default(),
        Value::String(s) => s.parse().unwrap_or_default(),
        _ => 0.0,
    }
}

fn word(lang: Lang, en: &str, zh: &str) -> String {
    match lang {
        Lang::En => en.to_owned(),
        Lang::ZhCn => zh.to_owned(),
    }
}

/// The measure a card shows: the one named, else the report's first.
fn measure_key(report: &Value, measure: Option<&str>) -> String {
    if let Some(m) = measure {
        return m.to_owned();
    }
    let dims = report["rows"][0]["keys"].as_array().map_or(0, Vec::len);
    report["columns"]
        .as_array()
        .and_then(|c| c.get(dims))
        .and_then(|c| c["key"].as_str())
        .unwrap_or("count")
        .to_owned()
}

pub fn chart(kind: Kind, title: &str, report: &Value, measure: Option<&str>, lang: Lang) -> Chart {
    let entity = report["entity"].as_str().unwrap_or_default();
    let key = measure_key(report, measure);
    let rows: Vec<&Value> = report["rows"]
        .as_array()
        .map(|r| r.iter().collect())
        .unwrap_or_default();
    let href = |row: &Value| row["filter"].as_str().map(|f| list_href(entity, f));
    let mut chart = Chart {
        kind,
        title: title.to_owned(),
        categories: Vec::new(),
        series: Vec::new(),
        change: None,
        table: None,
        empty: word(lang, "No data", "暂无数据"),
    };
    match kind {
        Kind::Number => {
            let value = &report["totals"][&key];
            chart.series.push(Series {
                name: title.to_owned(),
                color: PALETTE[0].to_owned(),
                points: vec![Point {
                    value: number_of(value),
                    text: figure_of(value),
                    href: None,
                    color: None,
                }],
            });
            if let Some(prev) = report.get("previous_totals") {
                let (now, before) = (number_of(value), number_of(&prev[&key]));
                chart.change = Some(if before == 0.0 {
                    word(lang, "no previous period figure", "上期无数据")
                } else {
                    let pct = (now - before) / before.abs() * 100.0;
                    let arrow = if pct >= 0.0 { "▲" } else { "▼" };
                    format!(
                        "{arrow} {:.1}% {}",
                        pct.abs(),
                        word(lang, "vs previous period", "较上期")
                    )
                });
            }
        }
        Kind::Table => {
            let header: Vec<String> = report["columns"]
                .as_array()
                .map(|c| c.iter().map(|c| text_of(&c["label"])).collect())
                .unwrap_or_default();
            let value_keys: Vec<String> = report["columns"]
                .as_array()
                .map(|c| {
                    c.iter()
                        .filter_map(|c| c["key"].as_str())
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default();
            let dims = rows
                .first()
                .and_then(|r| r["keys"].as_array())
                .map_or(0, Vec::len);
            let mut table_rows: Vec<Vec<String>> = rows
                .iter()
                .map(|r| {
                    let mut cells: Vec<String> = r["labels"]
                        .as_array()
                        .map(|l| l.iter().map(text_of).collect())
                        .unwrap_or_default();
                    cells.extend(
                        value_keys
                            .iter()
                            .skip(dims)
                            .map(|k| figure_of(&r["values"][k])),
                    );
                    cells
                })
                .collect();
            if !table_rows.is_empty() {
                let mut total = vec![word(lang, "Total", "合计")];
                total.extend((1..dims).map(|_| String::new()));
                total.extend(
                    value_keys
                        .iter()
                        .skip(dims)
                        .map(|k| figure_of(&report["totals"][k])),
                );
                table_rows.push(total);
            }
            chart.table = Some((header, table_rows));
        }
        _ => {
            let two = rows
                .first()
                .and_then(|r| r["keys"].as_array())
                .is_some_and(|k| k.len() > 1);
            let mut categories: Vec<String> = Vec::new();
            let mut series: Vec<Series> = Vec::new();
            let measure_label = report["columns"]
                .as_array()
                .and_then(|c| c.iter().find(|c| c["key"] == key.as_str()))
                .map_or_else(|| key.clone(), |c| text_of(&c["label"]));
            for row in &rows {
                let category = text_of(&row["labels"][0]);
                let ci = match categories.iter().position(|c| *c == category) {
                    Some(i) => i,
                    None => {
                        categories.push(category.clone());
                        categories.len() - 1
                    }
                };
                let (name, color) = if two {
                    (
                        text_of(&row["labels"][1]),
                        row["colors"][1].as_str().map(str::to_owned),
                    )
                } else {
                    (measure_label.clone(), None)
                };
                let si = match series.iter().position(|s| s.name == name) {
                    Some(i) => i,
                    None => {
                        let n = series.len();
                        series.push(Series {
                            name: name.clone(),
                            color: color.unwrap_or_else(|| PALETTE[n % PALETTE.len()].to_owned()),
                            points: Vec::new(),
                        });
                        n
                    }
                };
                let value = &row["values"][&key];
                let mut text = figure_of(value);
                if kind == Kind::Funnel
                    && let Some(c) = row["values"]["conversion"].as_str()
                {
                    let pct = c.parse::<f64>().unwrap_or_default() * 100.0;
                    text = format!("{text} ({pct:.1}%)");
                }
                let own_color = if two {
                    None
                } else {
                    row["colors"][0]
                        .as_str()
                        .or_else(|| row["color"].as_str())
                        .map(str::to_owned)
                };
                let points = &mut series[si].points;
                points.resize(ci + 1, Point::default());
                points[ci] = Point {
                    value: number_of(value),
                    text,
                    href: href(row),
                    color: own_color,
                };
            }
            for s in &mut series {
                s.points.resize(categories.len(), Point::default());
            }
            chart.categories = categories;
            chart.series = series;
        }
    }
    chart
}
