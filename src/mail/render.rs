//! Mail templates: Handlebars subject, HTML and text parts per language, rendered in strict
//! mode (a name missing from the data is an error, not an empty string), with helpers for
//! dates and money.

use chrono::{DateTime, NaiveDate, Utc};
use handlebars::{
    Context, Handlebars, Helper, HelperResult, Output, RenderContext, RenderError, Template,
};
use rust_decimal::{Decimal, RoundingStrategy};
use serde_json::{Map, Value};

use crate::error::FieldError;

/// The parts of one language's variant.
const PARTS: &[&str] = &["subject", "html", "text"];

/// A rendered message.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    pub subject: String,
    pub html: Option<String>,
    pub text: String,
}

/// How dates and amounts are formatted: the configured time zone and decimal places.
#[derive(Debug, Clone)]
pub struct Formatting {
    pub time_zone: chrono_tz::Tz,
    /// Places when a template names none (`{{money amount}}`).
    pub places: u32,
    /// Places per kind of document (`{{money amount "quotes"}}`).
    pub places_by_kind: Vec<(String, u32)>,
}

impl Default for Formatting {
    fn default() -> Self {
        Formatting {
            time_zone: chrono_tz::UTC,
            places: 2,
            places_by_kind: Vec::new(),
        }
    }
}

/// `1234567.891` with 2 places → `1,234,567.89` (half away from zero).
pub fn format_money(amount: Decimal, places: u32) -> String {
    let rounded = amount.round_dp_with_strategy(places, RoundingStrategy::MidpointAwayFromZero);
    let text = format!("{:.*}", places as usize, rounded.abs());
    let sign = if rounded.is_sign_negative() && !rounded.is_zero() {
        "-"
    } else {
        ""
    };
    format!("{sign}{}", crate::fields::group_digits(&text))
}

/// A decimal from a JSON number or numeric string.
pub fn decimal_of(value: &Value) -> Option<Decimal> {
    match value {
        Value::String(s) => s.trim().parse().ok(),
        Value::Number(n) => n
            .to_string()
            .parse()
            .ok()
            .or_else(|| n.as_f64().and_then(Decimal::from_f64_retain)),
        _ => None,
    }
}

/// Formats a date (`2026-03-01`) or a date-time (shown in the configured time zone) with a
/// chrono pattern; `%Y-%m-%d` (dates) or `%Y-%m-%d %H:%M` (date-times) by default.
pub fn format_date(value: &str, pattern: Option<&str>, zone: chrono_tz::Tz) -> Option<String> {
    if let Ok(date) = NaiveDate::parse_from_str(value, "%Y-%m-%d") {
        let pattern = pattern.unwrap_or("%Y-%m-%d");
        return checked_format(|| date.format(pattern).to_string());
    }
    let at = DateTime::parse_from_rfc3339(value)
        .ok()?
        .with_timezone(&Utc);
    let pattern = pattern.unwrap_or("%Y-%m-%d %H:%M");
    checked_format(|| at.with_timezone(&zone).format(pattern).to_string())
}

/// chrono panics on a malformed pattern while formatting; a template mistake must not.
fn checked_format(f: impl FnOnce() -> String + std::panic::UnwindSafe) -> Option<String> {
    std::panic::catch_unwind(f).ok()
}

/// A helper's first parameter; in strict mode a name missing from the data is an error here
/// too (Handlebars itself lets helpers see it as null).
fn param(h: &Helper, helper: &str) -> Result<Value, RenderError> {
    match h.param(0) {
        Some(p) if p.is_value_missing() => Err(RenderError::from(
            handlebars::RenderErrorReason::Other(format!(
                "{helper}: '{}' is missing from the data",
                p.relative_path().map_or("the value", |s| s.as_str())
            )),
        )),
        Some(p) => Ok(p.value().clone()),
        None => Err(RenderError::from(handlebars::RenderErrorReason::Other(
            format!("{helper} needs a value"),
        ))),
    }
}

fn registry(formatting: &Formatting) -> Handlebars<'static> {
    let mut hb = Handlebars::new();
    hb.set_strict_mode(true);
    let zone = formatting.time_zone;
    hb.register_helper(
        "date",
        Box::new(
            move |h: &Helper,
                  _: &Handlebars,
                  _: &Context,
                  _: &mut RenderContext,
                  out: &mut dyn Output|
                  -> HelperResult {
                let value = param(h, "date")?;
                let pattern = h
                    .param(1)
                    .and_then(|p| p.value().as_str().map(str::to_owned));
                let Some(text) = value.as_str() else {
                    if value.is_null() {
                        return Ok(());
                    }
                    return Err(RenderError::from(handlebars::RenderErrorReason::Other(
                        "date: needs a date such as 2026-03-01".into(),
                    )));
                };
                let shown = format_date(text, pattern.as_deref(), zone).ok_or_else(|| {
                    RenderError::from(handlebars::RenderErrorReason::Other(format!(
                        "date: '{text}' is not a date"
                    )))
                })?;
                out.write(&shown)?;
                Ok(())
            },
        ),
    );
    let default_places = formatting.places;
    let by_kind = formatting.places_by_kind.clone();
    hb.register_helper(
        "money",
        Box::new(
            move |h: &Helper,
                  _: &Handlebars,
                  _: &Context,
                  _: &mut RenderContext,
                  out: &mut dyn Output|
                  -> HelperResult {
                let value = param(h, "money")?;
                if value.is_null() {
                    return Ok(());
                }
                let places = match h.param(1).map(|p| p.value()) {
                    Some(Value::Number(n)) => {
                        n.as_u64().map_or(default_places, |n| n.min(8) as u32)
                    }
                    Some(Value::String(kind)) => by_kind
                        .iter()
                        .find(|(k, _)| k == kind)
                        .map_or(default_places, |(_, p)| *p),
                    _ => default_places,
                };
                let amount = decimal_of(&value).ok_or_else(|| {
                    RenderError::from(handlebars::RenderErrorReason::Other(format!(
                        "money: '{value}' is not an amount"
                    )))
                })?;
                out.write(&format_money(amount, places))?;
                Ok(())
            },
        ),
    );
    hb
}

/// Checks a template's variants: at least one language, each with a subject and a text or
/// HTML part that compile. Returns the variants as stored.
pub fn check_variants(variants: &Value) -> Result<Value, Vec<FieldError>> {
    let mut problems = Vec::new();
    let Some(map) = variants.as_object().filter(|m| !m.is_empty()) else {
        return Err(vec![FieldError::new(
            "variants",
            "give at least one language, e.g. {\"en\": {\"subject\": …, \"text\": …}}",
        )]);
    };
    let mut out = Map::new();
    for (language, parts) in map {
        let path = format!("variants.{language}");
        if !crate::auth::service::LANGUAGES.contains(&language.as_str()) {
            problems.push(FieldError::new(&path, "the language must be en or zh-CN"));
            continue;
        }
        let Some(parts) = parts.as_object() else {
            problems.push(FieldError::new(
                &path,
                "must be an object with subject, html, text",
            ));
            continue;
        };
        let mut kept = Map::new();
        for (name, source) in parts {
            let field = format!("{path}.{name}");
            if !PARTS.contains(&name.as_str()) {
                problems.push(FieldError::new(
                    &field,
                    "is not a part (subject, html, text)",
                ));
                continue;
            }
            let Some(source) = source.as_str() else {
                problems.push(FieldError::new(&field, "must be text"));
                continue;
            };
            if let Err(e) = Template::compile(source) {
                let at = e
                    .pos()
                    .map(|(line, column)| format!(" (line {line}, column {column})"))
                    .unwrap_or_default();
                problems.push(FieldError::new(&field, format!("{}{at}", e.reason())));
                continue;
            }
            kept.insert(name.clone(), Value::String(source.to_owned()));
        }
        if !kept.contains_key("subject") {
            problems.push(FieldError::new(format!("{path}.subject"), "is required"));
        }
        if !kept.contains_key("text") && !kept.contains_key("html") {
            problems.push(FieldError::new(&path, "needs a text or an html part"));
        }
        out.insert(language.clone(), Value::Object(kept));
    }
    if problems.is_empty() {
        Ok(Value::Object(out))
    } else {
        Err(problems)
    }
}

/// Renders the variant for `language` (else `fallback`, else English, else any).
pub fn render(
    variants: &Value,
    language: &str,
    fallback: &str,
    data: &Value,
    formatting: &Formatting,
) -> Result<Rendered, String> {
    let chosen = [language, fallback, "en"]
        .iter()
        .find_map(|l| variants.get(*l))
        .or_else(|| variants.as_object().and_then(|m| m.values().next()))
        .ok_or("the template has no variant")?;
    let part = |name: &str| chosen.get(name).and_then(Value::as_str);
    let mut hb = registry(formatting);
    hb.register_escape_fn(handlebars::no_escape);
    let plain = |hb: &Handlebars, name: &str| -> Result<Option<String>, String> {
        part(name)
            .map(|src| {
                hb.render_template(src, data)
                    .map_err(|e| format!("{name}: {e}"))
            })
            .transpose()
    };
    let subject = plain(&hb, "subject")?.unwrap_or_default();
    let text = plain(&hb, "text")?;
    hb.register_escape_fn(handlebars::html_escape);
    let html = plain(&hb, "html")?;
    let text = match (text, &html) {
        (Some(t), _) => t,
        (None, Some(h)) => strip_tags(h),
        (None, None) => String::new(),
    };
    Ok(Rendered {
        subject: subject.replace(['\r', '\n'], " ").trim().to_owned(),
        html,
        text,
    })
}

/// A plain-text stand-in for an HTML-only template.
fn strip_tags(html: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn formats_money_with_places_and_groups() {
        let d = |s: &str| s.parse::<Decimal>().unwrap();
        assert_eq!(format_money(d("1234567.891"), 2), "1,234,567.89");
        assert_eq!(format_money(d("2.345"), 2), "2.35");
        assert_eq!(format_money(d("-1000"), 0), "-1,000");
        assert_eq!(format_money(d("999.5"), 0), "1,000");
        assert_eq!(format_money(d("0.1"), 3), "0.100");
    }

    #[test]
    fn renders_in_strict_mode_with_helpers() {
        let variants = json!({
            "en": {"subject": "Hello {{name}}", "text": "Due {{date due}}: {{money amount}}",
                   "html": "<p>{{name}}</p>"},
            "zh-CN": {"subject": "你好 {{name}}", "text": "{{date due \"%Y年%m月%d日\"}}"}
        });
        let data = json!({"name": "Li <Lei>", "due": "2026-03-01", "amount": "1234.5"});
        let en = render(&variants, "en", "en", &data, &Formatting::default()).unwrap();
        assert_eq!(en.subject, "Hello Li <Lei>");
        assert_eq!(en.text, "Due 2026-03-01: 1,234.50");
        assert_eq!(en.html.as_deref(), Some("<p>Li &lt;Lei&gt;</p>"));
        let zh = render(&variants, "zh-CN", "en", &data, &Formatting::default()).unwrap();
        assert_eq!(zh.text, "2026年03月01日");
        let missing = render(
            &variants,
            "en",
            "en",
            &json!({"name": "x"}),
            &Formatting::default(),
        );
        assert!(missing.unwrap_err().contains("due"));
    }

    #[test]
    fn refuses_templates_that_do_not_compile() {
        let errors =
            check_variants(&json!({"en": {"subject": "Hi {{#if x}}", "text": "t"}})).unwrap_err();
        assert_eq!(errors[0].field, "variants.en.subject");
        assert!(check_variants(&json!({"fr": {"subject": "s", "text": "t"}})).is_err());
        assert!(check_variants(&json!({"en": {"subject": "s"}})).is_err());
    }
}
