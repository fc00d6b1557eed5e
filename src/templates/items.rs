//! A package's forms, views, roles, mail templates, settings defaults and automations: each
//! created, updated or kept against what the package installed before.

use chrono::Utc;
use serde_json::{Value, json};

use super::install::{Pass, Step};
use crate::auth::Access;
use crate::auth::permissions::Permissions;
use crate::automation::Scripts;
use crate::automation::shapes::AutomationInput;
use crate::error::{Error, FieldError, Result};
use crate::layouts::{forms as form_check, views as view_check};
use crate::schema::compiled::Catalog;
use crate::store::auth::{self as users, RoleRow};
use crate::store::layouts::{self as layout_store, FormRow, ViewRow};
use crate::store::{Tx, automations as automation_store, entities, mail};

pub(super) async fn forms(
    tx: &mut Tx,
    access: &Access,
    catalog: &Catalog,
    pass: &mut Pass<'_>,
) -> Result<()> {
    for body in pass.package.list("forms.json")? {
        let entity_name = body["entity"].as_str().unwrap_or_default();
        let form_name = body["name"].as_str().unwrap_or("default");
        let key = format!("{entity_name}/{form_name}");
        let entity = catalog.entity(entity_name)?;
        let mut template = body.clone();
        if let Some(o) = template.as_object_mut() {
            o.remove("entity");
        }
        let document = form_check::check(&entity, access, form_name, &template)
            .map_err(|p| Error::invalid(format!("template form {key} is not valid"), p))?;
        let current = layout_store::form_by(tx, entity_name, form_name).await?;
        let step = pass.step(
            "form",
            &key,
            current.as_ref().map(|c| &c.document),
            &document,
        );
        let expected = match (&step, &current) {
            (Step::Create, _) => None,
            (Step::Update, Some(c)) => Some(c.version),
            _ => continue,
        };
        let now = Utc::now();
        let row = FormRow {
            entity: entity_name.to_owned(),
            name: form_name.to_owned(),
            document: document.clone(),
            version: current.as_ref().map_or(1, |c| c.version + 1),
            created_at: current.as_ref().map_or(now, |c| c.created_at),
            updated_at: now,
        };
        layout_store::save_form(tx, &row, expected, access.actor_id()).await?;
        pass.done(&step, "form", key.clone(), key, &document);
    }
    Ok(())
}

pub(super) async fn views(
    tx: &mut Tx,
    access: &Access,
    catalog: &Catalog,
    pass: &mut Pass<'_>,
) -> Result<()> {
    for body in pass.package.list("views.json")? {
        let entity_name = body["entity"].as_str().unwrap_or_default();
        let view_name = body["name"].as_str().unwrap_or_default();
        let key = format!("{entity_name}/{view_name}");
        let entity = catalog.entity(entity_name)?;
        let mut template = body.as_object().cloned().unwrap_or_default();
        template.insert("shared".into(), json!(true));
        let document = view_check::check(catalog, &entity, access, &template)
            .map_err(|p| Error::invalid(format!("template view {key} is not valid"), p))?;
        let current = layout_store::view_by_name(tx, entity_name, None, view_name).await?;
        let step = pass.step(
            "view",
            &key,
            current.as_ref().map(|c| &c.document),
            &document,
        );
        let expected = match (&step, &current) {
            (Step::Create, _) => None,
            (Step::Update, Some(c)) => Some(c.version),
            _ => continue,
        };
        let now = Utc::now();
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
        pass.done(&step, "view", key, row.id.clone(), &document);
    }
    Ok(())
}

pub(super) async fn roles(tx: &mut Tx, pass: &mut Pass<'_>) -> Result<()> {
    for body in pass.package.list("roles.json")? {
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
        let mine = current
            .as_ref()
            .map(|r| content(&r.label, &r.description, &r.permissions));
        let step = pass.step("role", &role_name, mine.as_ref(), &template);
        if matches!(step, Step::Skip) {
            continue;
        }
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
        pass.done(&step, "role", role_name, row.id, &template);
    }
    Ok(())
}

pub(super) async fn mail_templates(tx: &mut Tx, pass: &mut Pass<'_>) -> Result<()> {
    for body in pass.package.list("mail-templates.json")? {
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
        let mine = current
            .as_ref()
            .map(|t| json!({"description": t.description, "variants": t.variants}));
        let step = pass.step("mail_template", &template_name, mine.as_ref(), &template);
        if matches!(step, Step::Skip) {
            continue;
        }
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
        pass.done(&step, "mail_template", template_name, row.id, &template);
    }
    Ok(())
}

/// Settings defaults apply only to settings nobody has set.
pub(super) async fn settings(tx: &mut Tx, pass: &mut Pass<'_>) -> Result<()> {
    let stored = crate::store::settings::all(tx).await?;
    let now = Utc::now();
    for (key, value) in &pass.package.manifest.settings {
        if stored.contains_key(key) {
            pass.report
                .keep("setting", key, "already set; your value stays");
            continue;
        }
        let value = crate::settings::check(key, value, &Value::Null).map_err(|m| {
            Error::invalid(
                format!("template setting {key} is not valid: {m}"),
                vec![FieldError::new(key.as_str(), m)],
            )
        })?;
        crate::store::settings::put(tx, key, &value, now).await?;
        pass.report.change("setting", key, "set");
    }
    Ok(())
}

pub(super) async fn automations(
    scripts: &Scripts,
    tx: &mut Tx,
    access: &Access,
    catalog: &Catalog,
    pass: &mut Pass<'_>,
) -> Result<()> {
    let content = |description: &str, trigger: &Value, script: &str, enabled: bool| json!({"description": description, "trigger": trigger, "script": script, "enabled": enabled});
    let mut any = false;
    for body in pass.package.automations()? {
        let automation_name = body["name"].as_str().unwrap_or_default().to_owned();
        let current = automation_store::by_name(tx, &automation_name).await?;
        let checked = async {
            let input: AutomationInput = crate::wire::from_value(body.clone())?;
            crate::automation::service::checked_in(
                scripts,
                tx,
                catalog,
                access,
                &input,
                current.as_ref(),
            )
            .await
        };
        let row = checked.await.map_err(|e| match e {
            Error::Invalid { errors, .. } => Error::invalid(
                format!("template automation {automation_name} is not valid"),
                errors,
            ),
            other => other,
        })?;
        let template = content(&row.description, &row.trigger, &row.script, row.enabled);
        let mine = current
            .as_ref()
            .map(|c| content(&c.description, &c.trigger, &c.script, c.enabled));
        let step = pass.step("automation", &automation_name, mine.as_ref(), &template);
        match (&step, &current) {
            (Step::Create, _) => automation_store::insert(tx, &row).await?,
            (Step::Update, Some(c)) => {
                automation_store::update(tx, &row, c.version).await?;
            }
            _ => continue,
        }
        any = true;
        pass.done(
            &step,
            "automation",
            automation_name,
            row.id.clone(),
            &template,
        );
    }
    if any {
        entities::bump_epoch(tx).await?;
    }
    Ok(())
}
