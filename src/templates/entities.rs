//! A package's entities: created in two steps (so they may point at each other in any order)
//! and upgraded field by field against what the package installed before.

use std::collections::HashSet;

use serde_json::{Value, json};

use super::install::Pass;
use super::merge::{self, Decision};
use crate::error::{Error, FieldError, Result};
use crate::schema::names::EntityName;
use crate::schema::service as schema;
use crate::store::templates::ItemRow;
use crate::store::{Tx, entities};

/// `{"$setting": "decimal_places.orders"}` in a definition takes that setting's value, so
/// amounts get the decimal places the company chose.
fn substitute_settings(value: &mut Value, settings: &crate::settings::Settings) -> Result<()> {
    match value {
        Value::Object(map) if map.len() == 1 && map.contains_key("$setting") => {
            let path = map["$setting"].as_str().unwrap_or_default().to_owned();
            let mut parts = path.split('.');
            let found = parts
                .next()
                .and_then(|key| settings.get(key))
                .and_then(|v| parts.try_fold(v, |v, part| v.get(part)))
                .cloned()
                .ok_or_else(|| {
                    Error::invalid_field("$setting", format!("there is no setting '{path}'"))
                })?;
            *value = found;
        }
        Value::Object(map) => {
            for v in map.values_mut() {
                substitute_settings(v, settings)?;
            }
        }
        Value::Array(items) => {
            for v in items {
                substitute_settings(v, settings)?;
            }
        }
        _ => {}
    }
    Ok(())
}

fn entity_name(doc: &Value) -> Result<EntityName> {
    let name = doc["name"].as_str().unwrap_or_default();
    EntityName::parse(name).map_err(|m| Error::invalid_field("name", format!("{name}: {m}")))
}

async fn stored_doc(tx: &mut Tx, name: &EntityName) -> Result<Option<Value>> {
    Ok(entities::get(tx, name).await?.map(|s| s.definition))
}

/// Creates the package's new entities and brings every one to the package's definition,
/// field by field.
#[allow(clippy::too_many_lines)]
pub(super) async fn apply(tx: &mut Tx, pass: &mut Pass<'_>) -> Result<()> {
    let settings = crate::settings::Settings::load(tx).await?;
    let mut documents = pass.package.entity_documents()?;
    for doc in &mut documents {
        substitute_settings(doc, &settings)?;
    }
    let mut fresh = HashSet::new();
    // First every new entity without the fields that need the others…
    for doc in &documents {
        let name = entity_name(doc)?;
        if stored_doc(tx, &name).await?.is_none() {
            if pass.base.get("entity", name.as_str()).is_some() {
                pass.report.keep(
                    "entity",
                    name.as_str(),
                    "you deleted it; an upgrade does not put it back",
                );
                continue;
            }
            schema::create_in(tx, &merge::bootstrap(doc)).await?;
            fresh.insert(name.to_string());
            pass.report.change("entity", name.as_str(), "created");
        } else if pass.base.get("entity", name.as_str()).is_none() {
            return Err(Error::conflict(
                format!(
                    "an entity named '{name}' exists that template {} did not create; \
                     rename or delete it first",
                    pass.package.manifest.name
                ),
                vec![FieldError::new(name.as_str(), "exists")],
            ));
        }
    }
    // …then each one brought to the template's definition, field by field; entities with
    // rollups last, since a rollup needs the lookup it follows on the other entity.
    let has_rollup = |doc: &Value| {
        merge::fields_of(doc)
            .0
            .values()
            .any(|p| p.get("x-kind").and_then(Value::as_str) == Some("rollup"))
    };
    let mut ordered: Vec<&Value> = documents.iter().filter(|d| !has_rollup(d)).collect();
    ordered.extend(documents.iter().filter(|d| has_rollup(d)));
    for template_doc in ordered {
        let name = entity_name(template_doc)?;
        let Some(current) = stored_doc(tx, &name).await? else {
            continue;
        };
        let is_fresh = fresh.contains(name.as_str());
        let mut target = current.clone();
        let (template_fields, template_required) = merge::fields_of(template_doc);
        let (current_fields, current_required) = merge::fields_of(&current);
        let mut required: Vec<String> = current_required.clone();
        let mut owned: Vec<(String, Value)> = Vec::new();

        let entity_template = merge::entity_content(template_doc);
        let entity_key = name.to_string();
        let entity_decision = if is_fresh {
            Decision::Update
        } else {
            merge::decide(
                Some(&merge::entity_content(&current)),
                pass.base.get("entity", &entity_key),
                &entity_template,
                pass.version_before,
            )
        };
        match &entity_decision {
            Decision::Update | Decision::Create => {
                for key in ["label", "description"] {
                    match template_doc.get(key) {
                        Some(v) => target[key] = v.clone(),
                        None => {
                            if let Some(o) = target.as_object_mut() {
                                o.remove(key);
                            }
                        }
                    }
                }
                if let Some(d) = template_doc.pointer("/schema/x-display-field") {
                    target["schema"]["x-display-field"] = d.clone();
                }
                if !is_fresh {
                    pass.report.change("entity", &entity_key, "updated labels");
                }
            }
            Decision::Keep(reason) => pass.report.keep("entity", &entity_key, reason.clone()),
            Decision::Nothing => {}
        }

        for (field, property) in &template_fields {
            let key = format!("{name}.{field}");
            let template_content =
                merge::field_content(property, template_required.contains(field));
            let current_content = current_fields
                .get(field)
                .map(|p| merge::field_content(p, current_required.contains(field)));
            let decision = if is_fresh {
                Decision::Create
            } else {
                merge::decide(
                    current_content.as_ref(),
                    pass.base.get("field", &key),
                    &template_content,
                    pass.version_before,
                )
            };
            let properties = target["schema"]["properties"]
                .as_object_mut()
                .ok_or_else(|| Error::internal("stored definition has no properties"))?;
            let mut set = |required: &mut Vec<String>, value: Value, is_required: bool| {
                properties.insert(field.clone(), value);
                required.retain(|r| r != field);
                if is_required {
                    required.push(field.clone());
                }
            };
            match decision {
                Decision::Create => {
                    set(
                        &mut required,
                        property.clone(),
                        template_required.contains(field),
                    );
                    owned.push((field.clone(), template_content));
                    if !is_fresh {
                        pass.report.change("field", &key, "added");
                    }
                }
                Decision::Update => {
                    set(
                        &mut required,
                        property.clone(),
                        template_required.contains(field),
                    );
                    owned.push((field.clone(), template_content));
                    pass.report.change("field", &key, "updated");
                }
                Decision::Nothing => {}
                Decision::Keep(reason) => {
                    let mine = current_fields.get(field).cloned().unwrap_or(Value::Null);
                    if let Some((merged, added)) = merge::union_options(&mine, property) {
                        set(&mut required, merged, current_required.contains(field));
                        pass.report.keep(
                            "field",
                            &key,
                            format!("{reason}; the new options {} were added", added.join(", ")),
                        );
                    } else {
                        pass.report.keep("field", &key, reason);
                    }
                }
            }
        }
        target["schema"]["required"] = json!(required);
        for key in ["version", "created_at", "updated_at"] {
            if let Some(o) = target.as_object_mut() {
                o.remove(key);
            }
        }
        let changes = schema::change_in(tx, &name, target).await?;
        tracing::debug!(entity = %name, changes = changes.len(), "template entity applied");

        // Baselines: what the template said and what is now stored, for what it owns.
        let stored = stored_doc(tx, &name).await?.unwrap_or(Value::Null);
        let (stored_fields, stored_required) = merge::fields_of(&stored);
        if matches!(entity_decision, Decision::Update | Decision::Create)
            || pass.base.get("entity", &entity_key).is_none()
        {
            pass.saved.push(ItemRow {
                kind: "entity".into(),
                key: entity_key.clone(),
                object_id: entity_key.clone(),
                baseline: merge::baseline(&entity_template, &merge::entity_content(&stored)),
            });
        }
        for (field, template_content) in owned {
            let installed = merge::field_content(
                stored_fields.get(&field).unwrap_or(&Value::Null),
                stored_required.contains(&field),
            );
            pass.saved.push(ItemRow {
                kind: "field".into(),
                key: format!("{name}.{field}"),
                object_id: entity_key.clone(),
                baseline: merge::baseline(&template_content, &installed),
            });
        }
    }
    Ok(())
}
