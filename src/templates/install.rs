//! Installing a package: its dependencies first, everything in one transaction, idempotent;
//! a newer version upgrades in place and keeps what the user changed.

use std::collections::{HashMap, HashSet};

use chrono::Utc;
use serde_json::{Value, json};

use super::merge::{self, Decision};
use super::{Installer, Package, Version, entities, items, library, sample};
use crate::auth::{Access, Special};
use crate::automation::Scripts;
use crate::context::Context;
use crate::error::{Error, FieldError, Result};
use crate::schema::compiled::Catalog;
use crate::store::Tx;
use crate::store::auth as users;
use crate::store::templates::{self as store, InstalledRow, ItemRow};

/// What an install did to one package.
#[derive(Debug, Default)]
pub(super) struct PackageReport {
    name: String,
    from: Option<String>,
    to: String,
    action: &'static str,
    changes: Vec<Value>,
    kept: Vec<Value>,
    sample_records: usize,
}

impl PackageReport {
    pub(super) fn change(&mut self, kind: &str, key: &str, action: &str) {
        self.changes
            .push(json!({"kind": kind, "key": key, "action": action}));
    }

    pub(super) fn keep(&mut self, kind: &str, key: &str, reason: impl Into<String>) {
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
pub async fn install(
    ctx: &Context,
    installer: &Installer,
    access: &Access,
    name: &str,
    sample_data: bool,
) -> Result<Value> {
    access.require(Special::ManageTemplates)?;
    access.require(Special::ManageSchema)?;
    if access.actor_id().is_none() {
        return Err(Error::bad_request(
            "a template is installed by a user (its automations run as that user)",
        ));
    }
    let library = library(installer.dir.as_deref())?;
    let order = resolve(&library, name)?;
    let mut tx = ctx.db.begin().await?;
    let mut reports = Vec::new();
    for package in order {
        let is_target = package.manifest.name == name;
        reports.push(
            install_one(
                ctx,
                &installer.scripts,
                &mut tx,
                access,
                package,
                sample_data,
                is_target,
            )
            .await?,
        );
    }
    let changed = reports.iter().any(|r| r.action != "unchanged");
    if changed {
        tx.commit().await?;
        ctx.schema.invalidate();
        if sample_data {
            // Freshly filled tables: give the planner statistics before the first list.
            crate::statistics::analyze_where_missing(&ctx.db).await?;
        }
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
    ctx: &Context,
    scripts: &Scripts,
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
        apply(scripts, tx, access, package, version_before, &mut report).await?;
        report.action = if installed.is_some() {
            "upgraded"
        } else {
            "installed"
        };
    } else {
        report.action = "sample_data";
    }
    if samples_wanted {
        report.sample_records = sample::load(ctx, tx, access, package).await?;
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
pub(super) struct Baselines(HashMap<(String, String), ItemRow>);

impl Baselines {
    pub(super) fn get(&self, kind: &str, key: &str) -> Option<&ItemRow> {
        self.0.get(&(kind.to_owned(), key.to_owned()))
    }
}

/// One package being applied: what it brings, what it installed before, and what this pass
/// installs (the new baselines) and reports.
pub(super) struct Pass<'a> {
    pub package: &'a Package,
    /// The version installed before (empty on a first install).
    pub version_before: &'a str,
    pub base: &'a Baselines,
    pub saved: Vec<ItemRow>,
    pub report: &'a mut PackageReport,
}

/// What to do with one item of a package.
pub(super) enum Step {
    Create,
    Update,
    Skip,
}

impl Pass<'_> {
    /// Decides an item against its baseline; a kept item goes into the report with its reason.
    pub(super) fn step(
        &mut self,
        kind: &str,
        key: &str,
        current: Option<&Value>,
        template: &Value,
    ) -> Step {
        let baseline = self.base.get(kind, key);
        match merge::decide(current, baseline, template, self.version_before) {
            Decision::Create => Step::Create,
            Decision::Update => Step::Update,
            Decision::Nothing => Step::Skip,
            Decision::Keep(reason) => {
                self.report.keep(kind, key, reason);
                Step::Skip
            }
        }
    }

    /// Records a created or updated item: in the report, and as its new baseline.
    pub(super) fn done(
        &mut self,
        step: &Step,
        kind: &str,
        key: String,
        object_id: String,
        content: &Value,
    ) {
        let action = match step {
            Step::Create => "created",
            _ => "updated",
        };
        self.report.change(kind, &key, action);
        self.saved.push(ItemRow {
            kind: kind.into(),
            key,
            object_id,
            baseline: merge::baseline(content, content),
        });
    }
}

/// Applies a package's configuration over what is there.
async fn apply(
    scripts: &Scripts,
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
    let mut pass = Pass {
        package,
        version_before,
        base: &base,
        saved: Vec::new(),
        report,
    };
    entities::apply(tx, &mut pass).await?;
    let catalog = Catalog::load_in(tx, 0).await?;
    items::forms(tx, access, &catalog, &mut pass).await?;
    items::views(tx, access, &catalog, &mut pass).await?;
    items::roles(tx, &mut pass).await?;
    items::mail_templates(tx, &mut pass).await?;
    items::settings(tx, &mut pass).await?;
    items::automations(scripts, tx, access, &catalog, &mut pass).await?;
    super::dashboards::apply(tx, access, &mut pass).await?;
    for item in &pass.saved {
        store::save_item(tx, &name, item).await?;
    }
    Ok(())
}

/// `tessera template install`: as the first active administrator.
pub async fn install_as_admin(
    ctx: &Context,
    installer: &Installer,
    name: &str,
    sample_data: bool,
) -> Result<Value> {
    let admin = first_admin(ctx).await?.ok_or_else(|| {
        Error::bad_request(
            "there is no administrator yet; create one first (tessera user create --admin)",
        )
    })?;
    let access = crate::auth::service::access_of_user(ctx, &admin)
        .await?
        .ok_or_else(|| Error::internal("the administrator has no access"))?;
    install(ctx, installer, &access, name, sample_data).await
}

/// The id of the oldest active user with the administrator role.
pub async fn first_admin(ctx: &Context) -> Result<Option<String>> {
    for user in users::users(&mut &ctx.db).await? {
        if !user.active {
            continue;
        }
        if let Some(access) = crate::auth::service::access_of_user(ctx, &user.id).await?
            && access.is_admin()
        {
            return Ok(Some(user.id));
        }
    }
    Ok(None)
}
