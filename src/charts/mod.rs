//! Charts drawn on the server as SVG: number, bar, stacked bar, line, area, pie, donut, funnel
//! and table. No scripts and no style attributes (the pages' CSP forbids both): colours are
//! presentation attributes, and the SVG scales to its container (`viewBox`, `width="100%"`), so
//! it reads on a 375-pixel phone. Labels are measured (CJK one em, Latin about half), placed in
//! columns wide enough for the longest, and cut with an ellipsis rather than overlap. Every
//! segment is a link to the list of the records behind it.

pub mod report;
pub mod text;

use std::fmt::Write;

use text::{escape, fit, width};

/// Colours for values without an option colour.
pub const PALETTE: [&str; 10] = [
    "#3b82f6", "#f59e0b", "#10b981", "#ef4444", "#8b5cf6", "#06b6d4", "#ec4899", "#84cc16",
    "#f97316", "#64748b",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Number,
    Bar,
    StackedBar,
    Line,
    Area,
    Pie,
    Donut,
    Funnel,
    Table,
}

impl Kind {
    pub fn parse(name: &str) -> Option<Kind> {
        Some(match name {
            "number" => Kind::Number,
            "bar" => Kind::Bar,
            "stacked_bar" => Kind::StackedBar,
            "line" => Kind::Line,
            "area" => Kind::Area,
            "pie" => Kind::Pie,
            "donut" => Kind::Donut,
            "funnel" => Kind::Funnel,
            "table" => Kind::Table,
            _ => return None,
        })
    }
}

/// One value of a series at a category.
#[derive(Debug, Clone, Default)]
pub struct Point {
    /// For geometry only; the text shows the exact value.
    pub value: f64,
    pub text: String,
    pub href: Option<String>,
    /// A colour of its own (an option's), else the series'.
    pub color: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Series {
    pub name: String,
    pub color: String,
    /// One per category.
    pub points: Vec<Point>,
}

#[derive(Debug, Clone)]
pub struct Chart {
    pub kind: Kind,
    pub title: String,
    pub categories: Vec<String>,
    pub series: Vec<Series>,
    /// A number card's change against the previous period, as shown (`▲ 12.5%`).
    pub change: Option<String>,
    /// A table card's header and rows (already formatted).
    pub table: Option<(Vec<String>, Vec<Vec<String>>)>,
    /// Shown when there is nothing to draw.
    pub empty: String,
}

const W: f64 = 640.0;
const FONT: f64 = 13.0;

fn open(out: &mut String, height: f64, title: &str) {
    let _ = write!(
        out,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart\" viewBox=\"0 0 {W} {height:.0}\" \
         width=\"100%\" role=\"img\" aria-label=\"{t}\" font-size=\"{FONT}\" \
         font-family=\"system-ui, -apple-system, 'PingFang SC', 'Microsoft YaHei', sans-serif\">\
         <title>{t}</title>",
        t = escape(title)
    );
}

fn label(out: &mut String, x: f64, y: f64, anchor: &str, text: &str, class: &str) {
    let _ = write!(
        out,
        "<text x=\"{x:.1}\" y=\"{y:.1}\" text-anchor=\"{anchor}\" class=\"{class}\" fill=\"currentColor\">{}</text>",
        escape(text)
    );
}

/// Wraps a shape in a link when the point has one.
fn linked(out: &mut String, href: Option<&str>, tip: &str, shape: &str) {
    let tip = format!("<title>{}</title>", escape(tip));
    match href {
        Some(h) => {
            let _ = write!(out, "<a href=\"{}\">{shape}{tip}</a>", escape(h));
        }
        None => {
            let _ = write!(out, "<g>{shape}{tip}</g>");
        }
    }
}

fn max_of(chart: &Chart, stacked: bool) -> f64 {
    let n = chart.categories.len();
    let mut max = 0.0f64;
    for i in 0..n {
        if stacked {
            let total: f64 = chart
                .series
                .iter()
                .map(|s| s.points.get(i).map_or(0.0, |p| p.value.max(0.0)))
                .sum();
            max = max.max(total);
        } else {
            for s in &chart.series {
                max = max.max(s.points.get(i).map_or(0.0, |p| p.value));
            }
        }
    }
    if max <= 0.0 { 1.0 } else { max }
}

fn is_empty(chart: &Chart) -> bool {
    match chart.kind {
        Kind::Number => chart.series.first().is_none_or(|s| s.points.is_empty()),
        Kind::Table => chart.table.as_ref().is_none_or(|(_, rows)| rows.is_empty()),
        _ => chart.categories.is_empty() || chart.series.is_empty(),
    }
}

/// The chart as an SVG document.
pub fn render(chart: &Chart) -> String {
    let mut out = String::new();
    if is_empty(chart) {
        open(&mut out, 60.0, &chart.title);
        label(
            &mut out,
            W / 2.0,
            36.0,
            "middle",
            &chart.empty,
            "chart-empty",
        );
        out.push_str("</svg>");
        return out;
    }
    match chart.kind {
        Kind::Number => number(&mut out, chart),
        Kind::Bar | Kind::StackedBar | Kind::Funnel => bars(&mut out, chart),
        Kind::Line | Kind::Area => lines(&mut out, chart),
        Kind::Pie | Kind::Donut => pie(&mut out, chart),
        Kind::Table => table(&mut out, chart),
    }
    out.push_str("</svg>");
    out
}

fn number(out: &mut String, chart: &Chart) {
    let point = &chart.series[0].points[0];
    let height = if chart.change.is_some() { 96.0 } else { 72.0 };
    open(out, height, &chart.title);
    let size = 40.0f64.min((W - 32.0) / (width(&point.text, 1.0).max(1.0)));
    let shape = format!(
        "<text x=\"16\" y=\"52\" font-size=\"{size:.0}\" font-weight=\"600\" fill=\"currentColor\" class=\"chart-number\">{}</text>",
        escape(&point.text)
    );
    linked(out, point.href.as_deref(), &chart.title, &shape);
    if let Some(change) = &chart.change {
        label(out, 16.0, 82.0, "start", change, "chart-change");
    }
}

/// Legend rows for several series, wrapped to the width; returns the height used.
fn legend(out: &mut String, series: &[Series], y: f64) -> f64 {
    let (mut x, mut row) = (8.0, 0.0);
    for s in series {
        let name = fit(&s.name, FONT, 200.0);
        let w = 18.0 + width(&name, FONT) + 16.0;
        if x + w > W && x > 8.0 {
            x = 8.0;
            row += 22.0;
        }
        let _ = write!(
            out,
            "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"12\" height=\"12\" rx=\"2\" fill=\"{}\"/>",
            y + row,
            escape(&s.color)
        );
        label(
            out,
            x + 18.0,
            y + row + 11.0,
            "start",
            &name,
            "chart-legend",
        );
        x += w;
    }
    row + 24.0
}

/// Horizontal bars (one row per category, labels in a measured column on the left); stacked
/// bars stack the series; a funnel centres each bar.
fn bars(out: &mut String, chart: &Chart) {
    let stacked = chart.kind == Kind::StackedBar;
    let funnel = chart.kind == Kind::Funnel;
    let groups = if stacked || funnel {
        1
    } else {
        chart.series.len()
    };
    let row_h = 10.0 + 18.0 * groups as f64;
    let legend_h = if chart.series.len() > 1 {
        24.0 * ((chart.series.len() as f64) / 4.0).ceil()
    } else {
        0.0
    };
    let height = legend_h + row_h * chart.categories.len() as f64 + 8.0;
    open(out, height, &chart.title);
    let top = if chart.series.len() > 1 {
        legend(out, &chart.series, 4.0).max(legend_h)
    } else {
        0.0
    };
    // Estimates run short for Latin text in some fonts (a CJK font's Latin glyphs are wide):
    // a little room to spare keeps the longest label off the left edge.
    let label_w = (chart
        .categories
        .iter()
        .map(|c| width(c, FONT))
        .fold(0.0, f64::max)
        * 1.15)
        .min(W * 0.38)
        + 12.0;
    let value_w = chart
        .series
        .iter()
        .flat_map(|s| s.points.iter())
        .map(|p| width(&p.text, FONT))
        .fold(0.0, f64::max)
        + 12.0;
    let plot_w = (W - label_w - value_w - 8.0).max(40.0);
    let max = max_of(chart, stacked);
    for (i, category) in chart.categories.iter().enumerate() {
        let y = top + row_h * i as f64;
        let name = fit(category, FONT, label_w - 12.0);
        label(
            out,
            label_w - 8.0,
            y + row_h / 2.0 + 4.0,
            "end",
            &name,
            "chart-label",
        );
        let mut x = label_w;
        let mut total = 0.0;
        for (j, s) in chart.series.iter().enumerate() {
            let Some(p) = s.points.get(i) else { continue };
            let w = (p.value.max(0.0) / max * plot_w).max(if p.value > 0.0 { 1.0 } else { 0.0 });
            let (bx, by, bh) = if stacked || funnel {
                let bx = if funnel {
                    label_w + (plot_w - w) / 2.0
                } else {
                    x
                };
                (bx, y + 5.0, row_h - 10.0)
            } else {
                (label_w, y + 5.0 + 18.0 * j as f64, 14.0)
            };
            let color = p.color.as_deref().unwrap_or(&s.color);
            let shape = format!(
                "<rect x=\"{bx:.1}\" y=\"{by:.1}\" width=\"{w:.1}\" height=\"{bh:.1}\" rx=\"2\" fill=\"{}\"/>",
                escape(color)
            );
            linked(
                out,
                p.href.as_deref(),
                &format!("{category} · {}: {}", s.name, p.text),
                &shape,
            );
            if !(stacked || funnel) {
                label(
                    out,
                    label_w + w + 6.0,
                    by + 11.0,
                    "start",
                    &p.text,
                    "chart-value",
                );
            }
            x += w;
            total += p.value;
        }
        if stacked {
            let text = chart
                .series
                .iter()
                .filter_map(|s| s.points.get(i))
                .fold(0.0, |a, p| a + p.value);
            let _ = total;
            label(
                out,
                x + 6.0,
                y + row_h / 2.0 + 4.0,
                "start",
                &short_number(text),
                "chart-value",
            );
        } else if funnel {
            let p = &chart.series[0].points[i];
            label(
                out,
                label_w + plot_w + 6.0,
                y + row_h / 2.0 + 4.0,
                "start",
                &p.text,
                "chart-value",
            );
        }
    }
}

/// A compact figure for sums drawn from floats (stack totals); exact values are in the tips.
fn short_number(v: f64) -> String {
    if v.fract().abs() < 1e-9 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

/// Lines (or areas) over the categories, labels below, thinned so they never overlap.
fn lines(out: &mut String, chart: &Chart) {
    let area = chart.kind == Kind::Area;
    let legend_h = if chart.series.len() > 1 { 24.0 } else { 0.0 };
    let height = 240.0 + legend_h;
    open(out, height, &chart.title);
    let top = if chart.series.len() > 1 {
        legend(out, &chart.series, 4.0)
    } else {
        8.0
    };
    let max = max_of(chart, false);
    let axis_w = width(&short_number(max), FONT) + 10.0;
    // The first and last labels are centred on the ends of the line: keep them inside.
    let half = |c: Option<&String>| c.map_or(0.0, |c| width(c, FONT - 1.0) / 2.0 + 2.0);
    let left = (axis_w + 4.0).max(half(chart.categories.first()));
    let right = W - half(chart.categories.last()).max(12.0);
    let bottom = height - 28.0;
    let n = chart.categories.len();
    let step = if n > 1 {
        (right - left) / (n - 1) as f64
    } else {
        0.0
    };
    let x_of = |i: usize| {
        if n > 1 {
            left + step * i as f64
        } else {
            (left + right) / 2.0
        }
    };
    let y_of = |v: f64| bottom - (v.max(0.0) / max) * (bottom - top - 8.0);
    // Axis: the top value and zero.
    label(
        out,
        axis_w,
        top + 12.0,
        "end",
        &short_number(max),
        "chart-axis",
    );
    label(out, axis_w, bottom, "end", "0", "chart-axis");
    let _ = write!(
        out,
        "<line x1=\"{left:.1}\" y1=\"{bottom:.1}\" x2=\"{right:.1}\" y2=\"{bottom:.1}\" stroke=\"currentColor\" stroke-opacity=\"0.3\"/>"
    );
    // Every k-th label, k chosen so the widest label fits its slot.
    let widest = chart
        .categories
        .iter()
        .map(|c| width(c, FONT - 1.0))
        .fold(0.0, f64::max)
        + 8.0;
    let every = if step > 0.0 {
        (widest / step).ceil().max(1.0) as usize
    } else {
        1
    };
    for (i, c) in chart.categories.iter().enumerate() {
        if i % every == 0 {
            label(out, x_of(i), height - 8.0, "middle", c, "chart-label");
        }
    }
    for s in &chart.series {
        let points: Vec<(f64, f64)> = (0..n)
            .map(|i| (x_of(i), y_of(s.points.get(i).map_or(0.0, |p| p.value))))
            .collect();
        let path: Vec<String> = points
            .iter()
            .map(|(x, y)| format!("{x:.1},{y:.1}"))
            .collect();
        let color = escape(&s.color);
        if area {
            let _ = write!(
                out,
                "<polygon points=\"{left:.1},{bottom:.1} {} {:.1},{bottom:.1}\" fill=\"{color}\" fill-opacity=\"0.2\"/>",
                path.join(" "),
                points.last().map_or(right, |p| p.0)
            );
        }
        let _ = write!(
            out,
            "<polyline points=\"{}\" fill=\"none\" stroke=\"{color}\" stroke-width=\"2\"/>",
            path.join(" ")
        );
        for (i, (x, y)) in points.iter().enumerate() {
            let Some(p) = s.points.get(i) else { continue };
            let shape = format!("<circle cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"4\" fill=\"{color}\"/>");
            linked(
                out,
                p.href.as_deref(),
                &format!("{} · {}: {}", chart.categories[i], s.name, p.text),
                &shape,
            );
        }
    }
}

fn pie(out: &mut String, chart: &Chart) {
    let donut = chart.kind == Kind::Donut;
    let s = &chart.series[0];
    let rows = chart.categories.len();
    let height = (24.0 * rows as f64 + 16.0).max(260.0);
    open(out, height, &chart.title);
    let (cx, cy, r) = (130.0, 130.0, 110.0);
    let inner = if donut { 62.0 } else { 0.0 };
    let total: f64 = s.points.iter().map(|p| p.value.max(0.0)).sum();
    let mut angle = -std::f64::consts::FRAC_PI_2;
    let point = |a: f64, radius: f64| (cx + radius * a.cos(), cy + radius * a.sin());
    for (i, p) in s.points.iter().enumerate() {
        let color = p
            .color
            .clone()
            .unwrap_or_else(|| PALETTE[i % PALETTE.len()].to_owned());
        let share = if total > 0.0 {
            p.value.max(0.0) / total
        } else {
            0.0
        };
        if share <= 0.0 {
            continue;
        }
        // A whole circle cannot be one arc: split it at most in halves.
        let sweep = (share * std::f64::consts::TAU).min(std::f64::consts::TAU - 1e-4);
        let end = angle + sweep;
        let large = i32::from(sweep > std::f64::consts::PI);
        let (x1, y1) = point(angle, r);
        let (x2, y2) = point(end, r);
        let d = if donut {
            let (x3, y3) = point(end, inner);
            let (x4, y4) = point(angle, inner);
            format!(
                "M{x1:.2},{y1:.2} A{r},{r} 0 {large} 1 {x2:.2},{y2:.2} L{x3:.2},{y3:.2} A{inner},{inner} 0 {large} 0 {x4:.2},{y4:.2} Z"
            )
        } else {
            format!("M{cx},{cy} L{x1:.2},{y1:.2} A{r},{r} 0 {large} 1 {x2:.2},{y2:.2} Z")
        };
        let shape = format!("<path d=\"{d}\" fill=\"{}\"/>", escape(&color));
        linked(
            out,
            p.href.as_deref(),
            &format!(
                "{}: {} ({:.1}%)",
                chart.categories[i],
                p.text,
                share * 100.0
            ),
            &shape,
        );
        angle = end;
    }
    // The legend: swatch, label and value, cut to the space on the right.
    let lx = 260.0;
    for (i, (c, p)) in chart.categories.iter().zip(&s.points).enumerate() {
        let y = 16.0 + 24.0 * i as f64;
        let color = p
            .color
            .clone()
            .unwrap_or_else(|| PALETTE[i % PALETTE.len()].to_owned());
        let _ = write!(
            out,
            "<rect x=\"{lx}\" y=\"{:.1}\" width=\"12\" height=\"12\" rx=\"2\" fill=\"{}\"/>",
            y - 10.0,
            escape(&color)
        );
        let value_w = width(&p.text, FONT) + 8.0;
        let name = fit(c, FONT, W - lx - 24.0 - value_w);
        let shape = format!(
            "<text x=\"{:.1}\" y=\"{y:.1}\" fill=\"currentColor\" class=\"chart-label\">{}</text>",
            lx + 18.0,
            escape(&name)
        );
        linked(out, p.href.as_deref(), c, &shape);
        label(out, W - 8.0, y, "end", &p.text, "chart-value");
    }
}

fn table(out: &mut String, chart: &Chart) {
    let Some((header, rows)) = &chart.table else {
        return;
    };
    let row_h = 24.0;
    let height = row_h * (rows.len() + 1) as f64 + 8.0;
    open(out, height, &chart.title);
    let cols = header.len().max(1);
    // Column widths from the widest cell, scaled down together when they do not fit.
    let mut widths: Vec<f64> = (0..cols)
        .map(|j| {
            std::iter::once(header.get(j))
                .chain(rows.iter().map(|r| r.get(j)))
                .flatten()
                .map(|t| width(t, FONT) + 16.0)
                .fold(40.0, f64::max)
        })
        .collect();
    let total: f64 = widths.iter().sum();
    if total > W {
        for w in &mut widths {
            *w *= W / total;
        }
    }
    let draw_row = |out: &mut String, y: f64, cells: &[String], class: &str| {
        let mut x = 0.0;
        for (j, cell) in cells.iter().enumerate() {
            let w = widths.get(j).copied().unwrap_or(40.0);
            let text = fit(cell, FONT, w - 12.0);
            if j == 0 {
                label(out, x + 6.0, y, "start", &text, class);
            } else {
                label(out, x + w - 6.0, y, "end", &text, class);
            }
            x += w;
        }
    };
    draw_row(out, 17.0, header, "chart-head");
    for (i, row) in rows.iter().enumerate() {
        let y = row_h * (i + 1) as f64;
        let _ = write!(
            out,
            "<line x1=\"0\" y1=\"{y:.1}\" x2=\"{W}\" y2=\"{y:.1}\" stroke=\"currentColor\" stroke-opacity=\"0.15\"/>"
        );
        draw_row(out, y + 17.0, row, "chart-cell");
    }
}
