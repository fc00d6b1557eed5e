//! How an upgrade decides, item by item, between what the template brings now, what it brought
//! last time (the baseline) and what is there now (which the user may have changed).

use serde_json::{Map, Value, json};

use crate::store::templates::ItemRow;

/// What to do with one item.
#[derive(Debug, PartialEq)]
pub enum Decision {
    Create,
    Update,
    /// The template did not change it since it was installed.
    Nothing,
    /// Leave the user's version; the reason says why.
    Keep(String),
}

/// `current` is the item's content as stored now, `baseline.installed` as the template stored
/// it, `baseline.template` what the template said then; `template` what it says now.
pub fn decide(
    current: Option<&Value>,
    baseline: Option<&ItemRow>,
    template: &Value,
    installed_version: &str,
) -> Decision {
    match (current, baseline) {
        (None, None) => Decision::Create,
        (None, Some(_)) => Decision::Keep("you deleted it; an upgrade does not put it back".into()),
        (Some(_), None) => Decision::Keep(
            "one of that name exists that this template did not install; yours stays".into(),
        ),
        (Some(current), Some(baseline)) => {
            if baseline.baseline["template"] == *template {
                Decision::Nothing
            } else if baseline.baseline["installed"] == *current {
                Decision::Update
            } else {
                Decision::Keep(format!(
                    "you changed it after version {installed_version} installed it; your version stays"
                ))
            }
        }
    }
}

/// The baseline stored for an item: what the template said and what was stored.
pub fn baseline(template: &Value, installed: &Value) -> Value {
    json!({"template": template, "installed": installed})
}

/// A field as compared: its property document and whether it is required.
pub fn field_content(property: &Value, required: bool) -> Value {
    json!({"property": property, "required": required})
}

/// The properties and required list of an entity document.
pub fn fields_of(doc: &Value) -> (Map<String, Value>, Vec<String>) {
    let properties = doc
        .pointer("/schema/properties")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let required = doc
        .pointer("/schema/required")
        .and_then(Value::as_array)
        .map(|r| {
            r.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    (properties, required)
}

/// Entity-level content an upgrade may update: labels and the display field.
pub fn entity_content(doc: &Value) -> Value {
    json!({
        "label": doc.get("label"),
        "description": doc.get("description"),
        "display_field": doc.pointer("/schema/x-display-field"),
    })
}

/// The first version of an entity a template creates: everything but the fields that need
/// other entities (lookups, rollups) or other fields (formulas), which follow once every
/// entity of the template exists.
pub fn bootstrap(doc: &Value) -> Value {
    let mut out = doc.clone();
    let deferred = |p: &Value| {
        matches!(
            p.get("x-kind").and_then(Value::as_str),
            Some("lookup" | "multi_lookup" | "rollup" | "formula")
        )
    };
    let mut removed = Vec::new();
    if let Some(properties) = out
        .pointer_mut("/schema/properties")
        .and_then(Value::as_object_mut)
    {
        properties.retain(|name, p| {
            let keep = !deferred(p);
            if !keep {
                removed.push(name.clone());
            }
            keep
        });
    }
    if let Some(required) = out
        .pointer_mut("/schema/required")
        .and_then(Value::as_array_mut)
    {
        required.retain(|r| !removed.iter().any(|n| Some(n.as_str()) == r.as_str()));
    }
    if let Some(display) = out
        .pointer("/schema/x-display-field")
        .and_then(Value::as_str)
        && removed.iter().any(|n| n == display)
        && let Some(schema) = out.get_mut("schema").and_then(Value::as_object_mut)
    {
        schema.remove("x-display-field");
    }
    out
}

/// Options a template adds to a select field the user has edited: the user's options stay
/// as they are and the template's new values are appended.
pub fn union_options(current: &Value, template: &Value) -> Option<(Value, Vec<String>)> {
    let mine = current.get("x-options")?.as_array()?;
    let theirs = template.get("x-options")?.as_array()?;
    let value_of = |o: &Value| {
        o.get("value")
            .and_then(Value::as_str)
            .or(o.as_str())
            .map(str::to_owned)
    };
    let have: Vec<String> = mine.iter().filter_map(value_of).collect();
    let new: Vec<&Value> = theirs
        .iter()
        .filter(|o| value_of(o).is_some_and(|v| !have.contains(&v)))
        .collect();
    if new.is_empty() {
        return None;
    }
    let mut merged = current.clone();
    let mut options = mine.clone();
    options.extend(new.iter().map(|o| (*o).clone()));
    merged["x-options"] = Value::Array(options);
    Some((merged, new.iter().filter_map(|o| value_of(o)).collect()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(template: Value, installed: Value) -> ItemRow {
        ItemRow {
            kind: "view".into(),
            key: "k".into(),
            object_id: "1".into(),
            baseline: baseline(&template, &installed),
        }
    }

    #[test]
    fn updates_only_what_the_user_left_alone() {
        let base = item(json!({"a": 1}), json!({"a": 1}));
        assert_eq!(decide(None, None, &json!({"a": 2}), "1"), Decision::Create);
        assert_eq!(
            decide(Some(&json!({"a": 1})), Some(&base), &json!({"a": 1}), "1"),
            Decision::Nothing
        );
        assert_eq!(
            decide(Some(&json!({"a": 1})), Some(&base), &json!({"a": 2}), "1"),
            Decision::Update
        );
        assert!(matches!(
            decide(Some(&json!({"a": 9})), Some(&base), &json!({"a": 2}), "1"),
            Decision::Keep(_)
        ));
        assert!(matches!(
            decide(None, Some(&base), &json!({"a": 2}), "1"),
            Decision::Keep(_)
        ));
    }

    #[test]
    fn bootstrap_defers_references_and_computed_fields() {
        let doc = json!({"name": "orders", "schema": {"x-display-field": "customer",
            "required": ["code", "customer"], "properties": {
            "code": {"x-kind": "text"}, "customer": {"x-kind": "lookup", "x-target": "customers"},
            "total": {"x-kind": "rollup"}}}});
        let out = bootstrap(&doc);
        assert_eq!(out.pointer("/schema/required"), Some(&json!(["code"])));
        assert!(out.pointer("/schema/properties/customer").is_none());
        assert!(out.pointer("/schema/x-display-field").is_none());
    }

    #[test]
    fn new_options_join_an_edited_select() {
        let mine = json!({"x-kind": "select", "x-options": [{"value": "a"}, {"value": "mine"}]});
        let theirs = json!({"x-kind": "select", "x-options": [{"value": "a"}, {"value": "b"}]});
        let (merged, added) = union_options(&mine, &theirs).unwrap();
        assert_eq!(added, vec!["b"]);
        assert_eq!(merged["x-options"].as_array().unwrap().len(), 3);
    }
}
