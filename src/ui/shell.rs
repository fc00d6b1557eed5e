//! What every page shares: the shell (sidebar grouped by module, top bar, strings, assets) and
//! how a stored value is shown (chips, links, money, dates in the viewer's time zone).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde_json::{Value, json};

use super::Viewer;
use super::render::{asset_url, option_color};
use crate::auth::Action;
use crate::error::Result;
use crate::fields::Kind;
use crate::records::list::ReadQuery;
use crate::records::service::{Target, target};
use crate::schema::compiled::{Catalog, CompiledEntity, Module};
use crate::schema::definition::FieldDef;

/// The URLs of the assets every page loads.
pub fn assets() -> Value {
    json!({
        "css": asset_url("app.css"),
        "js": asset_url("app.js"),
        "htmx": asset_url("vendor/htmx.min.js"),
        "sortable": asset_url("vendor/Sortable.min.js"),
        "icons": asset_url("icons.svg"),
    })
}

/// The icon and colour of an entity (the built-in ones have their own; others a default).
pub fn entity_look(name: &str) -> (&'static str, &'static str) {
    match name {
        "customer" => ("building", "c-0969da"),
        "contact" => ("users", "c-0e8a7e"),
        "communication" => ("message", "c-4f46e5"),
        "product" => ("package", "c-bf8700"),
        "lead" => ("user-plus", "c-0891b2"),
        "opportunity" => ("handshake", "c-bc4c00"),
        "quote" | "quote_line" => ("file-text", "c-8250df"),
        "contract" | "service_contract" => ("contract", "c-1a7f37"),
        "order" | "order_line" => ("receipt", "c-1a7f37"),
        "receivable" => ("clock", "c-cf222e"),
        "sales_target" => ("target", "c-bf3989"),
        "follow_up" => ("phone", "c-0969da"),
        "service_request" | "service_step" => ("headset", "c-8250df"),
        "repair" | "product_defect" => ("wrench", "c-bc4c00"),
        "packing_list" => ("package", "c-6e7781"),
        "kb_article" => ("book", "c-0e8a7e"),
        "campaign" | "campaign_member" => ("megaphone", "c-bf3989"),
        "email_campaign" => ("send", "c-0891b2"),
        _ => ("file-text", "c-6e7781"),
    }
}

/// Labels and look of one entity, for menus, crumbs and related lists.
pub fn entity_json(v: &Viewer, entity: &CompiledEntity) -> Value {
    let name = entity.def.name.as_str();
    let (icon, color) = entity_look(name);
    json!({
        "name": name,
        "label": v.lang.label(Some(&entity.def.label), name),
        "icon": icon,
        "color": color,
        "href": format!("/e/{name}"),
    })
}

/// The field naming a record (the definition's display field, else the first text field).
pub fn title_field(entity: &CompiledEntity) -> Option<&FieldDef> {
    entity
        .def
        .display_field
        .as_ref()
        .and_then(|n| entity.def.field(n.as_str()))
        .or_else(|| {
            entity
                .def
                .fields
                .iter()
                .find(|f| matches!(f.kind, Kind::Text | Kind::Autonumber))
        })
}

/// A record's title as people read it.
pub fn record_title(entity: &CompiledEntity, record: &Value) -> String {
    let from = |f: &FieldDef| {
        record
            .get(f.name.as_str())
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    title_field(entity)
        .and_then(from)
        .or_else(|| {
            entity
                .def
                .fields
                .iter()
                .filter(|f| f.kind == Kind::Autonumber)
                .find_map(from)
        })
        .unwrap_or_else(|| {
            let id = record["id"].as_str().unwrap_or_default();
            format!("#{}", id.get(id.len().saturating_sub(6)..).unwrap_or(id))
        })
}

/// A field's label in the viewer's language.
pub fn field_label(v: &Viewer, field: &FieldDef) -> String {
    v.lang
        .label(field.schema.get("x-label"), field.name.as_str())
}

/// Labels of the system fields a view or form may name.
pub fn system_label(v: &Viewer, name: &str) -> String {
    match name {
        "owner" | "department" | "created_at" | "updated_at" | "created_by" | "version" => {
            v.t(name).to_owned()
        }
        "id" => "ID".to_owned(),
        other => other.to_owned(),
    }
}

/// Label of a field or system column.
pub fn any_label(v: &Viewer, entity: &CompiledEntity, name: &str) -> String {
    match entity.def.field(name) {
        Some(f) => field_label(v, f),
        None => system_label(v, name),
    }
}

/// The select options of a field: value, label, colour class.
pub fn options(v: &Viewer, field: &FieldDef) -> Vec<(String, String, String)> {
    field
        .options
        .iter()
        .enumerate()
        .map(|(i, o)| {
            (
                o.value.clone(),
                v.lang.label(o.label.as_ref(), &o.value),
                option_color(o.color.as_deref(), i),
            )
        })
        .collect()
}

/// Names the pages show for ids: users, departments, related records.
#[derive(Default)]
pub struct Names {
    pub users: HashMap<String, String>,
    pub departments: HashMap<String, String>,
    /// entity → id → title
    pub records: HashMap<String, HashMap<String, String>>,
}

impl Names {
    /// Users and departments (small tables in a CRM; one query each).
    pub async fn people(v: &Viewer) -> Result<Names> {
        let mut db = &v.ctx.db;
        let users = crate::store::auth::users(&mut db).await?;
        let departments = crate::auth::service::list_departments(&v.ctx).await?;
        Ok(Names {
            users: users.into_iter().map(|u| (u.id, u.display_name)).collect(),
            departments: departments
                .items
                .into_iter()
                .map(|d| (d.id, d.name))
                .collect(),
            records: HashMap::new(),
        })
    }

    /// Loads the titles of the records that lookups in `records` point at (only those the
    /// viewer may read: a related record outside their scope shows no title).
    pub async fn load_lookups(
        &mut self,
        v: &Viewer,
        catalog: &Arc<Catalog>,
        entity: &CompiledEntity,
        fields: &[&FieldDef],
        records: &[Value],
    ) -> Result<()> {
        let mut wanted: HashMap<String, HashSet<String>> = HashMap::new();
        for field in fields {
            let (Some(target), true) = (
                &field.target,
                matches!(field.kind, Kind::Lookup | Kind::MultiLookup),
            ) else {
                continue;
            };
            for record in records {
                let ids: Vec<&str> = match &record[field.name.as_str()] {
                    Value::String(id) => vec![id.as_str()],
                    Value::Array(ids) => ids.iter().filter_map(Value::as_str).collect(),
                    _ => Vec::new(),
                };
                let set = wanted.entry(target.to_string()).or_default();
                set.extend(ids.into_iter().map(str::to_owned));
            }
        }
        let _ = entity;
        for (target_name, ids) in wanted {
            let known = self.records.entry(target_name.clone()).or_default();
            let ids: Vec<String> = ids.into_iter().filter(|i| !known.contains_key(i)).collect();
            if ids.is_empty() {
                continue;
            }
            let Ok(related) = catalog.entity(&target_name) else {
                continue;
            };
            if v.access
                .require_action(related.def.name.as_str(), Action::Read)
                .is_err()
            {
                continue;
            }
            let titles = titles_of(v, catalog, &related, &ids).await?;
            self.records.entry(target_name).or_default().extend(titles);
        }
        Ok(())
    }

    pub fn record(&self, entity: &str, id: &str) -> Option<&str> {
        self.records.get(entity)?.get(id).map(String::as_str)
    }
}

/// Titles of some records by id, through the one read query (scope and hidden fields apply).
pub async fn titles_of(
    v: &Viewer,
    catalog: &Arc<Catalog>,
    entity: &Arc<CompiledEntity>,
    ids: &[String],
) -> Result<HashMap<String, String>> {
    let mut out = HashMap::new();
    let target = Target {
        catalog: catalog.clone(),
        entity: entity.clone(),
    };
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
            ..ReadQuery::new(&target, &v.access)
        };
        for record in query.page(&mut &v.ctx.db).await?.items {
            if let Some(id) = record["id"].as_str() {
                out.insert(id.to_owned(), record_title(entity, &record));
            }
        }
    }
    Ok(out)
}

/// The first letter shown in an avatar.
pub fn initial(name: &str) -> String {
    let trimmed = name.trim();
    // Chinese names show their last character (伟 for 张伟), others their first letter.
    let last = trimmed.chars().last();
    match last {
        Some(c) if !c.is_ascii() => c.to_string(),
        _ => trimmed
            .chars()
            .next()
            .map(|c| c.to_uppercase().to_string())
            .unwrap_or_default(),
    }
}

/// A stable avatar colour for a person.
pub fn person_color(id: &str) -> String {
    let n: usize = id.bytes().map(usize::from).sum();
    option_color(None, n)
}

pub use crate::fields::group_digits;

pub fn currency_symbol(field: &FieldDef) -> &'static str {
    match field.schema.get("x-currency").and_then(Value::as_str) {
        Some("CNY") | Some("JPY") => "¥",
        Some("USD") => "$",
        Some("EUR") => "€",
        Some("GBP") => "£",
        _ => "",
    }
}

/// A decimal value with the field's places.
pub fn format_number(field: &FieldDef, raw: &str) -> String {
    let text = match raw.parse::<Decimal>() {
        Ok(mut d) => {
            if field.kind.is_decimal() {
                d = d.round_dp(field.scale);
                d.rescale(field.scale);
            }
            d.to_string()
        }
        Err(_) => raw.to_owned(),
    };
    let grouped = group_digits(&text);
    match field.kind {
        Kind::Money => format!("{}{grouped}", currency_symbol(field)),
        Kind::Percent => format!("{grouped}%"),
        _ => grouped,
    }
}

/// A datetime in the viewer's time zone, `YYYY-MM-DD HH:MM`.
pub fn format_datetime(v: &Viewer, raw: &str) -> String {
    match DateTime::parse_from_rfc3339(raw) {
        Ok(t) => t.with_timezone(&v.tz).format("%Y-%m-%d %H:%M").to_string(),
        Err(_) => raw.to_owned(),
    }
}

/// Today in the viewer's time zone.
pub fn today(v: &Viewer) -> NaiveDate {
    Utc::now().with_timezone(&v.tz).date_naive()
}

/// How a value is shown: plain text, a chip, chips, a link, a person, a number.
pub fn display(v: &Viewer, names: &Names, field: &FieldDef, value: &Value) -> Value {
    if value.is_null() || value.as_array().is_some_and(Vec::is_empty) {
        return json!({"empty": true});
    }
    let text = |s: String| json!({"t": s});
    match field.kind {
        Kind::Select => {
            let raw = value.as_str().unwrap_or_default();
            let found = options(v, field).into_iter().find(|(val, ..)| val == raw);
            match found {
                Some((_, label, class)) => json!({"chip": true, "t": label, "c": class}),
                None => text(raw.to_owned()),
            }
        }
        Kind::MultiSelect => {
            let all = options(v, field);
            let chips: Vec<Value> = value
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(|raw| match all.iter().find(|(val, ..)| val == raw) {
                    Some((_, label, class)) => json!({"t": label, "c": class}),
                    None => json!({"t": raw, "c": ""}),
                })
                .collect();
            json!({"chips": chips})
        }
        Kind::Boolean => text(
            if value.as_bool() == Some(true) {
                v.t("yes")
            } else {
                v.t("no")
            }
            .to_owned(),
        ),
        Kind::Integer | Kind::Decimal | Kind::Money | Kind::Percent => {
            let raw = match value {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            json!({"t": format_number(field, &raw), "num": true})
        }
        Kind::Formula | Kind::Rollup => {
            let raw = match value {
                Value::String(s) => s.clone(),
                Value::Bool(b) => {
                    return text(if *b { v.t("yes") } else { v.t("no") }.to_owned());
                }
                other => other.to_string(),
            };
            let numeric = raw.parse::<Decimal>().is_ok();
            if numeric {
                json!({"t": group_digits(&raw), "num": true})
            } else if DateTime::parse_from_rfc3339(&raw).is_ok() {
                json!({"t": format_datetime(v, &raw), "num": true})
            } else {
                text(raw)
            }
        }
        Kind::Date => json!({"t": value.as_str().unwrap_or_default(), "num": true}),
        Kind::Datetime => {
            json!({"t": format_datetime(v, value.as_str().unwrap_or_default()), "num": true})
        }
        Kind::Email => {
            let s = value.as_str().unwrap_or_default();
            json!({"t": s, "href": format!("mailto:{s}")})
        }
        Kind::Phone => {
            let s = value.as_str().unwrap_or_default();
            let tel: String = s
                .chars()
                .filter(|c| c.is_ascii_digit() || *c == '+')
                .collect();
            json!({"t": s, "href": format!("tel:{tel}")})
        }
        Kind::Url => {
            let s = value.as_str().unwrap_or_default();
            // Only web links become links (a `javascript:` URL stays text).
            if s.starts_with("https://") || s.starts_with("http://") {
                json!({"t": s.trim_start_matches("https://").trim_start_matches("http://"), "href": s, "ext": true})
            } else {
                text(s.to_owned())
            }
        }
        Kind::Autonumber => json!({"t": value.as_str().unwrap_or_default(), "mono": true}),
        Kind::Lookup | Kind::MultiLookup => {
            let target = field
                .target
                .as_ref()
                .map(|t| t.to_string())
                .unwrap_or_default();
            let ids: Vec<&str> = match value {
                Value::String(s) => vec![s.as_str()],
                Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
                _ => Vec::new(),
            };
            let links: Vec<Value> = ids
                .iter()
                .filter_map(|id| {
                    names
                        .record(&target, id)
                        .map(|title| json!({"t": title, "href": format!("/e/{target}/{id}")}))
                })
                .collect();
            if links.is_empty() {
                return json!({"empty": true});
            }
            json!({"links": links})
        }
        Kind::User => person(names, value.as_str().unwrap_or_default()),
        Kind::Department => {
            let id = value.as_str().unwrap_or_default();
            text(names.departments.get(id).cloned().unwrap_or_default())
        }
        Kind::Text | Kind::LongText => text(value.as_str().unwrap_or_default().to_owned()),
    }
}

/// A user as an avatar and a name.
pub fn person(names: &Names, id: &str) -> Value {
    match names.users.get(id) {
        Some(name) => json!({
            "person": initial(name), "t": name, "c": person_color(id)
        }),
        None => json!({"empty": true}),
    }
}

/// A system column's value shown.
pub fn display_system(v: &Viewer, names: &Names, name: &str, value: &Value) -> Value {
    match (name, value) {
        (_, Value::Null) => json!({"empty": true}),
        ("owner" | "created_by", Value::String(id)) => person(names, id),
        ("department", Value::String(id)) => {
            json!({"t": names.departments.get(id).cloned().unwrap_or_default()})
        }
        ("created_at" | "updated_at", Value::String(t)) => {
            json!({"t": format_datetime(v, t), "num": true})
        }
        (_, other) => json!({"t": other.as_str().map_or_else(|| other.to_string(), str::to_owned)}),
    }
}

/// Display of any column (a field or a system column) of a record.
pub fn display_any(
    v: &Viewer,
    names: &Names,
    entity: &CompiledEntity,
    name: &str,
    record: &Value,
) -> Value {
    let value = record.get(name).unwrap_or(&Value::Null);
    match entity.def.field(name) {
        Some(field) => display(v, names, field, value),
        None => display_system(v, names, name, value),
    }
}

/// The sidebar: entities the viewer may read, grouped by the template that installed them (in
/// the order a CRM is built: customers, sales, service, marketing), then the viewer's own.
pub fn nav(v: &Viewer, catalog: &Catalog, current: Option<&str>) -> Value {
    let order = ["customer", "sales", "service", "marketing"];
    let mut modules: Vec<&Module> = catalog.modules.iter().collect();
    modules.sort_by_key(|m| {
        (
            order
                .iter()
                .position(|o| *o == m.name)
                .unwrap_or(order.len()),
            m.name.as_str(),
        )
    });
    let readable: Vec<Arc<CompiledEntity>> = catalog
        .all()
        .into_iter()
        .filter(|e| {
            v.access
                .require_action(e.def.name.as_str(), Action::Read)
                .is_ok()
        })
        .collect();
    let mut placed: HashSet<String> = HashSet::new();
    let item = |e: &CompiledEntity| {
        let mut j = entity_json(v, e);
        j["current"] = json!(current == Some(e.def.name.as_str()));
        j
    };
    let mut groups = Vec::new();
    for module in modules {
        let items: Vec<Value> = module
            .entities
            .iter()
            .filter_map(|n| readable.iter().find(|e| e.def.name.as_str() == n))
            .filter(|e| !is_line_entity(e))
            .map(|e| item(e))
            .collect();
        placed.extend(module.entities.iter().cloned());
        if !items.is_empty() {
            groups.push(json!({
                "key": module.name,
                "title": v.lang.label(module.title.as_ref(), &module.name),
                "items": items,
            }));
        }
    }
    let own: Vec<Value> = readable
        .iter()
        .filter(|e| !placed.contains(e.def.name.as_str()))
        .map(|e| item(e))
        .collect();
    if !own.is_empty() {
        groups.push(json!({"key": "own", "title": v.t("my_entities"), "items": own}));
    }
    Value::Array(groups)
}

/// Lines of a document (order lines, quote lines) live on their document's page, not in the
/// menu.
fn is_line_entity(entity: &CompiledEntity) -> bool {
    let name = entity.def.name.as_str();
    name.ends_with("_line") || name == "service_step" || name == "campaign_member"
}

/// The context every full page starts from.
pub async fn page(
    v: &Viewer,
    catalog: &Catalog,
    title: &str,
    current: Option<&str>,
) -> Result<Value> {
    let nav = nav(v, catalog, current);
    let creatable: Vec<Value> = catalog
        .all()
        .iter()
        .filter(|e| {
            !is_line_entity(e)
                && v.access
                    .require_action(e.def.name.as_str(), Action::Create)
                    .is_ok()
                && v.access
                    .require_action(e.def.name.as_str(), Action::Read)
                    .is_ok()
        })
        .map(|e| entity_json(v, e))
        .collect();
    let js = v.lang.strings.get("js").cloned().unwrap_or(Value::Null);
    Ok(json!({
        "s": v.lang.strings,
        "lang": v.lang.code,
        "zh": v.lang.is_zh(),
        "csrf": v.csrf,
        "i18n": js.to_string(),
        "assets": assets(),
        "colors": format!("/ui/colors.css?v={}", catalog.epoch),
        "title": title,
        "user": {
            "name": v.name,
            "initial": initial(&v.name),
            "color": person_color(&v.user_id),
            "email": v.email,
        },
        "nav": nav,
        "home_current": current.is_none() && title == v.t("home"),
        "creatable": creatable,
    }))
}

/// The target (catalog and entity) a page works on, after the read check.
pub async fn entity_target(v: &Viewer, entity: &str) -> Result<Target> {
    let target = target(&v.ctx, &v.access, entity).await?;
    v.access
        .require_action(target.entity.def.name.as_str(), Action::Read)?;
    Ok(target)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digits_are_grouped() {
        assert_eq!(group_digits("1234567.50"), "1,234,567.50");
        assert_eq!(group_digits("-1000"), "-1,000");
        assert_eq!(group_digits("999"), "999");
        assert_eq!(initial("张伟"), "伟");
        assert_eq!(initial("demo admin"), "D");
    }
}
