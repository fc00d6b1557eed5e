//! `tessera template export`: the current configuration of chosen entities (definitions,
//! forms, shared views, the automations on them and the mail templates those use) written as
//! a template folder that installs elsewhere.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{Value, json};

use crate::context::Context;
use crate::error::{Error, FieldError, Result};
use crate::schema::names::EntityName;
use crate::store::{automations, entities, layouts, mail};

/// The files of the exported package, by path.
pub async fn package_files(
    ctx: &Context,
    name: &str,
    chosen: &[String],
) -> Result<BTreeMap<String, String>> {
    if chosen.is_empty() {
        return Err(Error::bad_request("name at least one entity to export"));
    }
    let mut documents = Vec::new();
    for entity in chosen {
        let parsed = EntityName::parse(entity)
            .map_err(|_| Error::not_found(format!("there is no entity '{entity}'")))?;
        let stored = entities::get(&mut &ctx.db, &parsed)
            .await?
            .ok_or_else(|| Error::not_found(format!("there is no entity '{entity}'")))?;
        documents.push(stored.definition);
    }
    // Everything an exported entity points at must travel with it.
    let mut problems = Vec::new();
    for doc in &documents {
        let (properties, _) = super::merge::fields_of(doc);
        for (field, property) in properties {
            let target = property
                .get("x-target")
                .or_else(|| property.pointer("/x-rollup/entity"))
                .and_then(Value::as_str);
            if let Some(target) = target
                && !chosen.iter().any(|c| c == target)
            {
                problems.push(FieldError::new(
                    format!("{}.{field}", doc["name"].as_str().unwrap_or_default()),
                    format!("depends on {target}, which is not exported; add it"),
                ));
            }
        }
    }
    if !problems.is_empty() {
        return Err(Error::invalid(
            "the chosen entities depend on others left out",
            problems,
        ));
    }
    let mut files = BTreeMap::new();
    let pretty = |v: &Value| serde_json::to_string_pretty(v).unwrap_or_default() + "\n";
    for doc in &documents {
        let entity = doc["name"].as_str().unwrap_or_default();
        files.insert(format!("entities/{entity}.json"), pretty(doc));
    }
    let mut forms = Vec::new();
    let mut views = Vec::new();
    for entity in chosen {
        for form in layouts::forms(&mut &ctx.db, Some(entity)).await? {
            let mut doc = form.document.clone();
            doc["entity"] = json!(entity);
            forms.push(doc);
        }
        for view in layouts::views(&mut &ctx.db, Some(""), Some(entity)).await? {
            if view.owner.is_none() {
                let mut doc = view.document.clone();
                if let Some(o) = doc.as_object_mut() {
                    o.remove("shared");
                }
                views.push(doc);
            }
        }
    }
    let mut automation_list = Vec::new();
    let mut mail_names = Vec::new();
    let templates = mail::templates(&mut &ctx.db).await?;
    for automation in automations::list(&mut &ctx.db).await? {
        if !automation
            .entity
            .as_ref()
            .is_some_and(|e| chosen.contains(e))
        {
            continue;
        }
        let file = format!("{}.rhai", slug(&automation.name));
        for t in &templates {
            if automation.script.contains(&format!("\"{}\"", t.name))
                && !mail_names.contains(&t.name)
            {
                mail_names.push(t.name.clone());
            }
        }
        files.insert(format!("automations/{file}"), automation.script.clone());
        automation_list.push(json!({
            "name": automation.name,
            "description": automation.description,
            "trigger": automation.trigger,
            "enabled": automation.enabled,
            "script_file": file,
        }));
    }
    let mail_list: Vec<Value> = templates
        .iter()
        .filter(|t| mail_names.contains(&t.name))
        .map(|t| json!({"name": t.name, "description": t.description, "variants": t.variants}))
        .collect();
    if !forms.is_empty() {
        files.insert("forms.json".into(), pretty(&json!(forms)));
    }
    if !views.is_empty() {
        files.insert("views.json".into(), pretty(&json!(views)));
    }
    if !automation_list.is_empty() {
        files.insert("automations.json".into(), pretty(&json!(automation_list)));
    }
    if !mail_list.is_empty() {
        files.insert("mail-templates.json".into(), pretty(&json!(mail_list)));
    }
    files.insert(
        "manifest.json".into(),
        pretty(&json!({
            "name": name,
            "version": "1.0.0",
            "title": {"en": name, "zh-CN": name},
            "description": {
                "en": format!("Exported from Tessera: {}", chosen.join(", ")),
                "zh-CN": format!("从 Tessera 导出：{}", chosen.join("、")),
            },
            "depends": [],
            "entities": chosen,
        })),
    );
    Ok(files)
}

fn slug(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    let s = s.trim_matches('-').to_owned();
    if s.is_empty() { "automation".into() } else { s }
}

/// Writes the package into `dir` (created; must be empty or absent).
pub async fn export(ctx: &Context, name: &str, chosen: &[String], dir: &Path) -> Result<usize> {
    if super::parse_manifest(&json!({"name": name, "version": "1.0.0",
        "title": {"en": name}, "description": {"en": name}}))
    .is_err()
    {
        return Err(Error::bad_request(
            "a template name is 1–64 characters of a-z, 0-9, _ and -",
        ));
    }
    if dir.exists()
        && std::fs::read_dir(dir)
            .map(|mut d| d.next().is_some())
            .unwrap_or(true)
    {
        return Err(Error::bad_request(format!(
            "{} exists and is not empty",
            dir.display()
        )));
    }
    let files = package_files(ctx, name, chosen).await?;
    for (path, text) in &files {
        let full = dir.join(path);
        if let Some(parent) = full.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| Error::internal(format!("cannot create {}: {e}", parent.display())))?;
        }
        std::fs::write(&full, text)
            .map_err(|e| Error::internal(format!("cannot write {}: {e}", full.display())))?;
    }
    Ok(files.len())
}
