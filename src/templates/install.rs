//! Installing a package: its dependencies first, everything in one transaction, idempotent;
//! a newer version upgrades in place and keeps what the user changed.

use std::collections::{HashMap, HashSet};

use chrono::Utc;
use serde_json::{Value, json};

use super::merge::{self, Decision};
use super::{Package, Version, library, sample};
use crate::app::App;
use crate::auth::permissions::Permissions;
use crate::auth::{Access, Special};
use crate::error::{Error, FieldError, Result};
use crate::layouts::{forms, views};
use crate::schema::compiled::Catalog;
use crate::schema::names::EntityName;
use crate::schema::service as schema;
use crate::store::auth::{self as users, RoleRow};
use crate::store::layouts::{self as layout_store, FormRow, ViewRow};
use crate::store::templates::{self as store, InstalledRow, ItemRow};
use crate::store::{Tx, automations, entities, mail};

/// What an install did to one package.
#[derive(Debug, Default)]
struct PackageReport {
    name: String,
    from: Option<String>,
    to: String,
    action: &'static str,
    changes: Vec<Value>,
    kept: Vec<Value>,
    sample_records: usize,
}

impl PackageReport {
    fn change(&mut self, kind: &str, key: &str, action: &str) {
        self.changes
            .push(json!({"kind": kind, "key": key, "action": action}));
    }

    fn keep(&mut self, kind: &str, key: &str, reason: impl Into<String>) {
        self.kept
            .push(json!({"kind": kind, "key": key, "reason": reason.into()}));
    }

    fn to_json(&self) -> Value {
        json!({
            "name": self.name,
            "from": self.from,
            "to": self.to,
            "action": self.action,
            "changes": self.changes,
            "kept": self.kept,
            "sample_records": self.sample_records,
        })
    }
}

/// The packages to install for `name`, dependencies first.
fn resolve<'a>(library: &'a HashMap<String, Package>, name: &str) -> Result<Vec<&'a Package>> {
    fn visit<'a>(
        library: &'a HashMap<String, Package>,
        name: &str,
        path: &mut Vec<String>,
        done: &mut HashSet<String>,
        out: &mut Vec<&'a Package>,
    ) -> Result<()> {
        if done.contains(name) {
            return Ok(());
        }
        if path.iter().any(|p| p == name) {
            return Err(Error::invalid(
                format!(
                    "templates depend on each other in a circle: {} → {name}",
                    path.join(" → ")
                ),
                vec![FieldError::new("depends", "forms a cycle")],
            ));
        }
        let package = library.get(name).ok_or_else(|| match path.last() {
            None => Error::not_found(format!("there is no template '{name}'")),
            Some(by) => Error::invalid(
                format!("template {by} depends on '{name}', which is not available"),
                vec![FieldError::new("depends", format!("'{name}' is missing"))],
            ),
        })?;
        path.push(name.to_owned());
        for dependency in &package.manifest.depends {
            visit(library, dependency, path, done, out)?;
        }
        path.pop();
        done.insert(name.to_owned());
        out.push(package);
        Ok(())
    }
    let mut out = Vec::new();
    visit(
        library,
        name,
        &mut Vec::new(),
        &mut HashSet::new(),
        &mut out,
    )?;
    Ok(out)
}

/// Installs (or upgrades) a package and what it depends on; with `sample_data`, loads their
/// sample records too (once). Returns the report of every package.
pub async fn install(app: &App, access: &Access, name: &str, sample_data: bool) -> Result<Value> {
    access.require(Special::ManageTemplates)?;
    access.require(Special::ManageSchema)?;
    if access.actor_id().is_none() {
        return Err(Error::bad_request(
            "a template is installed by a user (its automations run as that user)",
        ));
    }
    let library = library(app)?;
    let order = resolve(&library, name)?;
    let mut tx = app.db.begin().await?;
    let mut reports = Vec::new();
    for package in order {
        let is_target = package.manifest.name == name;
        reports.push(install_one(app, &mut tx, access, package, sample_data, is_target).await?);
    }
    let changed = reports.iter().any(|r| r.action != "unchanged");
    if changed {
        tx.commit().await?;
        app.schema.invalidate();
    } else {
        drop(tx);
    }
    let message = match changed {
        false => format!(
            "{} is already installed at this version{}; nothing changed",
            name,
            if sample_data {
                " with its sample data"
            } else {
                ""
            }
        ),
        true => reports
            .iter()
            .filter(|r| r.action != "unchanged")
            .map(|r| match (&r.from, r.action) {
                (_, "sample_data") => format!("{}: sample data added", r.name),
                (Some(from), _) if *from != r.to => {
                    format!("{}: upgraded {from} → {}", r.name, r.to)
                }
                _ => format!("{}: installed {}", r.name, r.to),
            })
            .collect::<Vec<_>>()
            .join("; "),
    };
    tracing::info!("template install: {message}");
    Ok(json!({
        "changed": changed,
        "message": message,
        "templates": reports.iter().map(PackageReport::to_json).collect::<Vec<_>>(),
    }))
}

async fn install_one(
    app: &App,
    tx: &mut Tx,
    access: &Access,
    package: &Package,
    sample_data: bool,
    is_target: bool,
) -> Result<PackageReport> {
    let manifest = &package.manifest;
    let installed = store::installed_by(tx, &manifest.name).await?;
    let mut report = PackageReport {
        name: manifest.name.clone(),
        from: installed.as_ref().map(|i| i.version.clone()),
        to: manifest.version.to_string(),
        action: "unchanged",
        ..PackageReport::default()
    };
    let installed_version = installed.as_ref().and_then(|i| Version::parse(&i.version));
    if let Some(v) = &installed_version
        && *v > manifest.version
    {
        if is_target {
            return Err(Error::conflict(
                format!(
                    "{} {v} is installed, newer than the {} offered; nothing changed",
                    manifest.name, manifest.version
                ),
                Vec::new(),
            ));
        }
        return Ok(report);
    }
    let same_version = installed_version.as_ref() == Some(&manifest.version);
    let samples_wanted = sample_data
        && !manifest.sample_data.is_empty()
        && !installed.as_ref().is_some_and(|i| i.sample_data);
    if same_version && !samples_wanted {
        return Ok(report);
    }
    if !same_version {
        let version_before = installed.as_ref().map_or("", |i| i.version.as_str());
        apply(app, tx, access, package, version_before, &mut report).await?;
        report.action = if installed.is_some() {
            "upgraded"
        } else {
            "installed"
        };
    } else {
        report.action = "sample_data";
    }
    if samples_wanted {
        report.sample_records = sample::load(tx, access, package).await?;
    }
    let now = Utc::now();
    store::save_installed(
        tx,
        &InstalledRow {
            name: manifest.name.clone(),
            version: manifest.version.to_string(),
            manifest: manifest.document.clone(),
            sample_data: samples_wanted || installed.as_ref().is_some_and(|i| i.sample_data),
            installed_at: installed.as_ref().map_or(now, |i| i.installed_at),
            updated_at: now,
        },
    )
    .await?;
    Ok(report)
}

/// What a package installed last time, by kind and key.
struct Baselines(HashMap<(String, String), ItemRow>);

impl Baselines {
    fn get(&self, kind: &str, key: &str) -> Option<&ItemRow> {
        self.0.get(&(kind.to_owned(), key.to_owned()))
    }
}

/// Applies a package's configuration over what is there.
async fn apply(
    app: &App,
    tx: &mut Tx,
    access: &Access,
    package: &Package,
    version_before: &str,
    report: &mut PackageReport,
) -> Result<()> {
    let name = package.manifest.name.clone();
    let base = Baselines(
        store::items(tx, &name)
            .await?
            .into_iter()
            .map(|i| ((i.kind.clone(), i.key.clone()), i))
            .collect(),
    );
    let mut saved: Vec<ItemRow> = Vec::new();

    apply_entities(tx, package, version_before, &base, &mut saved, report).await?;
    let catalog = Catalog::load_in(tx, 0, false).await?;
    apply_forms(
        tx,
        access,
        package,
        version_before,
        &catalog,
        &base,
        &mut saved,
        report,
    )
    .await?;
    apply_views(
        tx,
        access,
        package,
        version_before,
        &catalog,
        &base,
        &mut saved,
        report,
    )
    .await?;
    apply_roles(tx, package, version_before, &base, &mut saved, report).await?;
    apply_mail_templates(tx, package, version_before, &base, &mut saved, report).await?;
    apply_settings(tx, package, report).await?;
    apply_automations(
        app,
        tx,
        access,
        package,
        version_before,
        &catalog,
        &base,
        &mut saved,
        report,
    )
    .await?;
    for item in &saved {
        store::save_item(tx, &name, item).await?;
    }
    Ok(())
}

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

#[allow(clippy::too_many_lines)]
async fn apply_entities(
    tx: &mut Tx,
    package: &Package,
    version_before: &str,
    base: &Baselines,
    saved: &mut Vec<ItemRow>,
    report: &mut PackageReport,
) -> Result<()> {
    let settings = crate::settings::Settings::load(tx).await?;
    let mut documents = package.entity_documents()?;
    for doc in &mut documents {
        substitute_settings(doc, &settings)?;
    }
    let mut fresh = HashSet::new();
    // First every new entity without the fields that need the others…
    for doc in &documents {
        let name = entity_name(doc)?;
        if stored_doc(tx, &name).await?.is_none() {
            if base.get("entity", name.as_str()).is_some() {
                report.keep(
                    "entity",
                    name.as_str(),
                    "you deleted it; an upgrade does not put it back",
                );
                continue;
            }
            schema::create_in(tx, &merge::bootstrap(doc)).await?;
            fresh.insert(name.to_string());
            report.change("entity", name.as_str(), "created");
        } else if base.get("entity", name.as_str()).is_none() {
            return Err(Error::conflict(
                format!(
                    "an entity named '{name}' exists that template {} did not create; \
                     rename or delete it first",
                    package.manifest.name
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
                base.get("entity", &entity_key),
                &entity_template,
                version_before,
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
                    report.change("entity", &entity_key, "updated labels");
                }
            }
            Decision::Keep(reason) => report.keep("entity", &entity_key, reason.clone()),
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
                    base.get("field", &key),
                    &template_content,
                    version_before,
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
                        report.change("field", &key, "added");
                    }
                }
                Decision::Update => {
                    set(
                        &mut required,
                        property.clone(),
                        template_required.contains(field),
                    );
                    owned.push((field.clone(), template_content));
                    report.change("field", &key, "updated");
                }
                Decision::Nothing => {}
                Decision::Keep(reason) => {
                    let mine = current_fields.get(field).cloned().unwrap_or(Value::Null);
                    if let Some((merged, added)) = merge::union_options(&mine, property) {
                        set(&mut required, merged, current_required.contains(field));
                        report.keep(
                            "field",
                            &key,
                            format!("{reason}; the new options {} were added", added.join(", ")),
                        );
                    } else {
                        report.keep("field", &key, reason);
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
            || base.get("entity", &entity_key).is_none()
        {
            saved.push(ItemRow {
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
            saved.push(ItemRow {
                kind: "field".into(),
                key: format!("{name}.{field}"),
                object_id: entity_key.clone(),
                baseline: merge::baseline(&template_content, &installed),
            });
        }
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn apply_forms(
    tx: &mut Tx,
    access: &Access,
    package: &Package,
    version_before: &str,
    catalog: &Catalog,
    base: &Baselines,
    saved: &mut Vec<ItemRow>,
    report: &mut PackageReport,
) -> Result<()> {
    for body in package.list("forms.json")? {
        let entity_name = body["entity"].as_str().unwrap_or_default();
        let form_name = body["name"].as_str().unwrap_or("default");
        let key = format!("{entity_name}/{form_name}");
        let entity = catalog.entity(entity_name)?;
        let mut template = body.clone();
        if let Some(o) = template.as_object_mut() {
            o.remove("entity");
        }
        let document = forms::check(&entity, access, form_name, &template)
            .map_err(|p| Error::invalid(format!("template form {key} is not valid"), p))?;
        let current = layout_store::form_by(tx, entity_name, form_name).await?;
        let decision = merge::decide(
            current.as_ref().map(|c| &c.document),
            base.get("form", &key),
            &document,
            version_before,
        );
        let now = Utc::now();
        let (expected, action) = match (&decision, &current) {
            (Decision::Create, _) => (None, "created"),
            (Decision::Update, Some(c)) => (Some(c.version), "updated"),
            (Decision::Keep(reason), _) => {
                report.keep("form", &key, reason.clone());
                continue;
            }
            _ => continue,
        };
        let row = FormRow {
            entity: entity_name.to_owned(),
            name: form_name.to_owned(),
            document: document.clone(),
            version: current.as_ref().map_or(1, |c| c.version + 1),
            created_at: current.as_ref().map_or(now, |c| c.created_at),
            updated_at: now,
        };
        layout_store::save_form(tx, &row, expected, access.actor_id()).await?;
        report.change("form", &key, action);
        saved.push(ItemRow {
            kind: "form".into(),
            key,
            object_id: format!("{entity_name}/{form_name}"),
            baseline: merge::baseline(&document, &document),
        });
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn apply_views(
    tx: &mut Tx,
    access: &Access,
    package: &Package,
    version_before: &str,
    catalog: &Catalog,
    base: &Baselines,
    saved: &mut Vec<ItemRow>,
    report: &mut PackageReport,
) -> Result<()> {
    for body in package.list("views.json")? {
        let entity_name = body["entity"].as_str().unwrap_or_default();
        let view_name = body["name"].as_str().unwrap_or_default();
        let key = format!("{entity_name}/{view_name}");
        let entity = catalog.entity(entity_name)?;
        let mut template = body.as_object().cloned().unwrap_or_default();
        template.insert("shared".into(), json!(true));
        let document = views::check(catalog, &entity, access, &template)
            .map_err(|p| Error::invalid(format!("template view {key} is not valid"), p))?;
        let current = layout_store::view_by_name(tx, entity_name, None, view_name).await?;
        let decision = merge::decide(
            current.as_ref().map(|c| &c.document),
            base.get("view", &key),
            &document,
            version_before,
        );
        let now = Utc::now();
        let (expected, action) = match (&decision, &current) {
            (Decision::Create, _) => (None, "created"),
            (Decision::Update, Some(c)) => (Some(c.version), "updated"),
            (Decision::Keep(reason), _) => {
                report.keep("view", &key, reason.clone());
                continue;
            }
            _ => continue,
        };
        let row = ViewRow {
            id: current.as_ref().map_or_else(
                || uuid::Uuid::now_v7().hyphenated().to_string(),
                |c| c.id.clone(),
            ),
            entity: entity_name.to_owned(),
            name: view_name.to_owned(),
            kind: document["kind"].as_str().unwrap_or("list").to_owned(),
            owner: None,
            document: document.clone(),
            version: current.as_ref().map_or(1, |c| c.version + 1),
            created_by: access.actor_id().map(str::to_owned),
            created_at: current.as_ref().map_or(now, |c| c.created_at),
            updated_at: now,
        };
        layout_store::save_view(tx, &row, expected, access.actor_id()).await?;
        report.change("view", &key, action);
        saved.push(ItemRow {
            kind: "view".into(),
            key,
            object_id: row.id.clone(),
            baseline: merge::baseline(&document, &document),
        });
    }
    Ok(())
}

async fn apply_roles(
    tx: &mut Tx,
    package: &Package,
    version_before: &str,
    base: &Baselines,
    saved: &mut Vec<ItemRow>,
    report: &mut PackageReport,
) -> Result<()> {
    for body in package.list("roles.json")? {
        let role_name = body["name"].as_str().unwrap_or_default().to_owned();
        Permissions::parse(&body["permissions"])
            .map_err(|p| Error::invalid(format!("template role {role_name} is not valid"), p))?;
        let content = |label: &Value, description: &str, permissions: &Value| json!({"label": label, "description": description, "permissions": permissions});
        let template = content(
            &body["label"],
            body["description"].as_str().unwrap_or_default(),
            &body["permissions"],
        );
        let current = users::role_by(tx, &role_name).await?;
        let decision = merge::decide(
            current
                .as_ref()
                .map(|r| content(&r.label, &r.description, &r.permissions))
                .as_ref(),
            base.get("role", &role_name),
            &template,
            version_before,
        );
        let action = match decision {
            Decision::Create => "created",
            Decision::Update => "updated",
            Decision::Keep(reason) => {
                report.keep("role", &role_name, reason);
                continue;
            }
            Decision::Nothing => continue,
        };
        let row = RoleRow {
            id: current.as_ref().map_or_else(
                || uuid::Uuid::now_v7().hyphenated().to_string(),
                |r| r.id.clone(),
            ),
            name: role_name.clone(),
            label: body["label"].clone(),
            description: body["description"].as_str().unwrap_or_default().to_owned(),
            builtin: false,
            permissions: body["permissions"].clone(),
        };
        users::save_role(tx, &row, Utc::now()).await?;
        report.change("role", &role_name, action);
        saved.push(ItemRow {
            kind: "role".into(),
            key: role_name,
            object_id: row.id,
            baseline: merge::baseline(&template, &template),
        });
    }
    Ok(())
}

async fn apply_mail_templates(
    tx: &mut Tx,
    package: &Package,
    version_before: &str,
    base: &Baselines,
    saved: &mut Vec<ItemRow>,
    report: &mut PackageReport,
) -> Result<()> {
    for body in package.list("mail-templates.json")? {
        let template_name = body["name"].as_str().unwrap_or_default().to_owned();
        let variants = crate::mail::render::check_variants(&body["variants"]).map_err(|p| {
            Error::invalid(
                format!("template mail template {template_name} is not valid"),
                p,
            )
        })?;
        let description = body["description"].as_str().unwrap_or_default().to_owned();
        let template = json!({"description": description, "variants": variants});
        let current = mail::template_by(tx, &template_name).await?;
        let decision = merge::decide(
            current
                .as_ref()
                .map(|t| json!({"description": t.description, "variants": t.variants}))
                .as_ref(),
            base.get("mail_template", &template_name),
            &template,
            version_before,
        );
        let action = match decision {
            Decision::Create => "created",
            Decision::Update => "updated",
            Decision::Keep(reason) => {
                report.keep("mail_template", &template_name, reason);
                continue;
            }
            Decision::Nothing => continue,
        };
        let now = Utc::now();
        let row = mail::TemplateRow {
            id: current.as_ref().map_or_else(
                || uuid::Uuid::now_v7().hyphenated().to_string(),
                |t| t.id.clone(),
            ),
            name: template_name.clone(),
            description,
            variants,
            version: current.as_ref().map_or(1, |t| t.version + 1),
            created_at: current.as_ref().map_or(now, |t| t.created_at),
            updated_at: now,
        };
        mail::save_template(tx, &row).await?;
        report.change("mail_template", &template_name, action);
        saved.push(ItemRow {
            kind: "mail_template".into(),
            key: template_name,
            object_id: row.id,
            baseline: merge::baseline(&template, &template),
        });
    }
    Ok(())
}

/// Settings defaults apply only to settings nobody has set.
async fn apply_settings(tx: &mut Tx, package: &Package, report: &mut PackageReport) -> Result<()> {
    let stored = crate::store::settings::all(tx).await?;
    let now = Utc::now();
    for (key, value) in &package.manifest.settings {
        if stored.contains_key(key) {
            report.keep("setting", key, "already set; your value stays");
            continue;
        }
        let value = crate::settings::check(key, value, &Value::Null).map_err(|m| {
            Error::invalid(
                format!("template setting {key} is not valid: {m}"),
                vec![FieldError::new(key.as_str(), m)],
            )
        })?;
        crate::store::settings::put(tx, key, &value, now).await?;
        report.change("setting", key, "set");
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn apply_automations(
    app: &App,
    tx: &mut Tx,
    access: &Access,
    package: &Package,
    version_before: &str,
    catalog: &Catalog,
    base: &Baselines,
    saved: &mut Vec<ItemRow>,
    report: &mut PackageReport,
) -> Result<()> {
    let content = |description: &str, trigger: &Value, script: &str, enabled: bool| json!({"description": description, "trigger": trigger, "script": script, "enabled": enabled});
    let mut any = false;
    for body in package.automations()? {
        let automation_name = body["name"].as_str().unwrap_or_default().to_owned();
        let current = automations::by_name(tx, &automation_name).await?;
        let row = crate::automation::service::checked_in(
            app,
            tx,
            catalog,
            access,
            &body,
            current.as_ref(),
        )
        .await
        .map_err(|e| match e {
            Error::Invalid { errors, .. } => Error::invalid(
                format!("template automation {automation_name} is not valid"),
                errors,
            ),
            other => other,
        })?;
        let template = content(&row.description, &row.trigger, &row.script, row.enabled);
        let decision = merge::decide(
            current
                .as_ref()
                .map(|c| content(&c.description, &c.trigger, &c.script, c.enabled))
                .as_ref(),
            base.get("automation", &automation_name),
            &template,
            version_before,
        );
        let action = match (&decision, &current) {
            (Decision::Create, _) => {
                automations::insert(tx, &row).await?;
                "created"
            }
            (Decision::Update, Some(c)) => {
                automations::update(tx, &row, c.version).await?;
                "updated"
            }
            (Decision::Keep(reason), _) => {
                report.keep("automation", &automation_name, reason.clone());
                continue;
            }
            _ => continue,
        };
        any = true;
        report.change("automation", &automation_name, action);
        saved.push(ItemRow {
            kind: "automation".into(),
            key: automation_name,
            object_id: row.id.clone(),
            baseline: merge::baseline(&template, &template),
        });
    }
    if any {
        entities::bump_epoch(tx).await?;
    }
    Ok(())
}

/// `tessera template install`: as the first active administrator.
pub async fn install_as_admin(app: &App, name: &str, sample_data: bool) -> Result<Value> {
    let admin = first_admin(app).await?.ok_or_else(|| {
        Error::bad_request(
            "there is no administrator yet; create one first (tessera user create --admin)",
        )
    })?;
    let access = crate::auth::service::access_of_user(app, &admin)
        .await?
        .ok_or_else(|| Error::internal("the administrator has no access"))?;
    install(app, &access, name, sample_data).await
}

/// The id of the oldest active user with the administrator role.
pub async fn first_admin(app: &App) -> Result<Option<String>> {
    for user in users::users(&mut &app.db).await? {
        if !user.active {
            continue;
        }
        if let Some(access) = crate::auth::service::access_of_user(app, &user.id).await?
            && access.is_admin()
        {
            return Ok(Some(user.id));
        }
    }
    Ok(None)
}
