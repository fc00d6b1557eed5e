//! Template packages: a folder with a manifest and the entities, forms, views, roles, settings
//! defaults, automations, mail templates and sample data it brings (see `docs/templates.md`).
//! The built-in packages are embedded in the binary; `--templates-dir` adds more.

mod dashboards;
mod entities;
pub mod export;
pub mod install;
mod items;
mod merge;
mod sample;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use include_dir::{Dir, include_dir};
use serde::Serialize;
use serde_json::{Value, json};

use crate::auth::{Access, Special};
use crate::automation::Scripts;
use crate::context::Context;
use crate::error::{Error, FieldError, Result};
use crate::store::templates as store;
use crate::wire::Items;

static BUILTIN: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/builtin-templates");

/// A package's `manifest.json`.
#[derive(Debug, Clone)]
pub struct Manifest {
    pub name: String,
    pub version: Version,
    pub title: Value,
    pub description: Value,
    pub depends: Vec<String>,
    /// Entity files in creation order (`entities/<name>.json`).
    pub entities: Vec<String>,
    /// Defaults for settings nobody has set.
    pub settings: serde_json::Map<String, Value>,
    /// Sample data files in load order (`sample/<entity>.json`).
    pub sample_data: Vec<String>,
    pub document: Value,
}

/// A package as `GET /api/templates` lists it.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub name: String,
    pub version: String,
    /// Text in each language.
    pub title: Value,
    pub description: Value,
    /// The packages it needs installed first.
    pub dependencies: Vec<String>,
    pub builtin: bool,
    pub entities: Vec<String>,
    pub has_sample_data: bool,
}

/// A package of the library and what of it is installed.
#[derive(Debug, Clone, Serialize)]
pub struct Listed {
    #[serde(flatten)]
    pub summary: Summary,
    pub installed_version: Option<String>,
    pub sample_data_installed: bool,
}

/// A dotted version (`1.2.0`), compared part by part.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version(Vec<u64>);

impl Version {
    pub fn parse(text: &str) -> Option<Version> {
        let parts: Option<Vec<u64>> = text.split('.').map(|p| p.parse().ok()).collect();
        parts.filter(|p| !p.is_empty() && p.len() <= 4).map(Version)
    }
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = self.0.iter().map(u64::to_string).collect();
        f.write_str(&parts.join("."))
    }
}

/// A loaded package: its manifest and every file, by path inside the folder.
#[derive(Debug, Clone)]
pub struct Package {
    pub manifest: Manifest,
    pub files: BTreeMap<String, String>,
    pub builtin: bool,
}

fn problem(package: &str, file: &str, message: impl std::fmt::Display) -> Error {
    Error::invalid(
        format!("template {package}: {file}: {message}"),
        vec![FieldError::new(file, message.to_string())],
    )
}

impl Package {
    fn from_files(files: BTreeMap<String, String>, builtin: bool, origin: &str) -> Result<Package> {
        let text = files
            .get("manifest.json")
            .ok_or_else(|| problem(origin, "manifest.json", "is missing"))?;
        let doc: Value = serde_json::from_str(text)
            .map_err(|e| problem(origin, "manifest.json", format!("is not JSON: {e}")))?;
        let manifest = parse_manifest(&doc).map_err(|m| problem(origin, "manifest.json", m))?;
        Ok(Package {
            manifest,
            files,
            builtin,
        })
    }

    /// A JSON file of the package (`None` when it has none).
    pub fn json(&self, path: &str) -> Result<Option<Value>> {
        match self.files.get(path) {
            None => Ok(None),
            Some(text) => serde_json::from_str(text)
                .map(Some)
                .map_err(|e| problem(&self.manifest.name, path, format!("is not JSON: {e}"))),
        }
    }

    /// A JSON file holding a list (empty when the file is absent).
    pub fn list(&self, path: &str) -> Result<Vec<Value>> {
        match self.json(path)? {
            None => Ok(Vec::new()),
            Some(Value::Array(items)) => Ok(items),
            Some(_) => Err(problem(&self.manifest.name, path, "must hold a JSON list")),
        }
    }

    pub fn entity_documents(&self) -> Result<Vec<Value>> {
        self.manifest
            .entities
            .iter()
            .map(|e| {
                let path = format!("entities/{e}.json");
                self.json(&path)?
                    .ok_or_else(|| problem(&self.manifest.name, &path, "is missing"))
            })
            .collect()
    }

    /// The automations, each with its script read from `script_file` when it names one.
    pub fn automations(&self) -> Result<Vec<Value>> {
        let mut out = Vec::new();
        for mut automation in self.list("automations.json")? {
            if let Some(file) = automation.get("script_file").and_then(Value::as_str) {
                let path = format!("automations/{file}");
                let script = self
                    .files
                    .get(&path)
                    .ok_or_else(|| problem(&self.manifest.name, &path, "is missing"))?;
                automation["script"] = json!(script);
            }
            if let Some(map) = automation.as_object_mut() {
                map.remove("script_file");
            }
            out.push(automation);
        }
        Ok(out)
    }

    pub fn summary(&self) -> Summary {
        let m = &self.manifest;
        Summary {
            name: m.name.clone(),
            version: m.version.to_string(),
            title: m.title.clone(),
            description: m.description.clone(),
            dependencies: m.depends.clone(),
            builtin: self.builtin,
            entities: m.entities.clone(),
            has_sample_data: !m.sample_data.is_empty(),
        }
    }
}

fn label_of(doc: &Value, key: &str) -> std::result::Result<Value, String> {
    match doc.get(key) {
        Some(v @ Value::Object(m)) if m.get("en").is_some_and(Value::is_string) => Ok(v.clone()),
        _ => Err(format!("{key} must be {{\"en\": …, \"zh-CN\": …}}")),
    }
}

fn names(doc: &Value, key: &str) -> std::result::Result<Vec<String>, String> {
    match doc.get(key) {
        None => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| {
                i.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| format!("{key} must be a list of names"))
            })
            .collect(),
        Some(_) => Err(format!("{key} must be a list of names")),
    }
}

fn parse_manifest(doc: &Value) -> std::result::Result<Manifest, String> {
    let name = doc["name"].as_str().unwrap_or_default().to_owned();
    if name.is_empty()
        || name.len() > 64
        || !name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
    {
        return Err("name must be 1–64 characters of a-z, 0-9, _ and -".into());
    }
    let version = doc["version"]
        .as_str()
        .and_then(Version::parse)
        .ok_or("version must be dotted numbers, like \"1.0.0\"")?;
    Ok(Manifest {
        title: label_of(doc, "title")?,
        description: label_of(doc, "description")?,
        depends: names(doc, "depends")?,
        entities: names(doc, "entities")?,
        sample_data: names(doc, "sample_data")?,
        settings: match doc.get("settings") {
            None => serde_json::Map::new(),
            Some(Value::Object(m)) => m.clone(),
            Some(_) => return Err("settings must be an object".into()),
        },
        name,
        version,
        document: doc.clone(),
    })
}

fn embedded(dir: &Dir<'_>) -> Result<Package> {
    let mut files = BTreeMap::new();
    collect_embedded(dir, dir.path(), &mut files);
    Package::from_files(files, true, &dir.path().display().to_string())
}

fn collect_embedded(dir: &Dir<'_>, root: &Path, files: &mut BTreeMap<String, String>) {
    for file in dir.files() {
        if let (Ok(rel), Some(text)) = (file.path().strip_prefix(root), file.contents_utf8()) {
            files.insert(rel.to_string_lossy().replace('\\', "/"), text.to_owned());
        }
    }
    for sub in dir.dirs() {
        collect_embedded(sub, root, files);
    }
}

/// Reads a package folder from disk.
pub fn read_folder(path: &Path) -> Result<Package> {
    let mut files = BTreeMap::new();
    read_tree(path, path, &mut files)?;
    Package::from_files(files, false, &path.display().to_string())
}

fn read_tree(root: &Path, dir: &Path, files: &mut BTreeMap<String, String>) -> Result<()> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| Error::bad_request(format!("cannot read {}: {e}", dir.display())))?;
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            read_tree(root, &path, files)?;
        } else if let Ok(rel) = path.strip_prefix(root) {
            let text = std::fs::read_to_string(&path)
                .map_err(|e| Error::bad_request(format!("cannot read {}: {e}", path.display())))?;
            files.insert(rel.to_string_lossy().replace('\\', "/"), text);
        }
    }
    Ok(())
}

/// What installing templates needs besides the context: the script engine (a package's
/// automations are compiled when it is installed) and the folder of extra packages.
pub struct Installer {
    pub scripts: Arc<Scripts>,
    pub dir: Option<PathBuf>,
}

/// Every package this server knows: the built-in ones, then those in the templates folder
/// (a folder's package replaces a built-in one of the same name).
pub fn library(dir: Option<&Path>) -> Result<HashMap<String, Package>> {
    let mut out = HashMap::new();
    for dir in BUILTIN.dirs() {
        let package = embedded(dir)?;
        out.insert(package.manifest.name.clone(), package);
    }
    if let Some(root) = dir {
        let entries = std::fs::read_dir(root).map_err(|e| {
            Error::internal(format!(
                "cannot read the templates folder {}: {e}",
                root.display()
            ))
        })?;
        for entry in entries.flatten() {
            if entry.path().join("manifest.json").is_file() {
                let package = read_folder(&entry.path())?;
                out.insert(package.manifest.name.clone(), package);
            }
        }
    }
    Ok(out)
}

/// `GET /api/templates`: every package with the version installed, if any.
pub async fn list(ctx: &Context, dir: Option<&Path>, access: &Access) -> Result<Items<Listed>> {
    access.require(Special::ManageTemplates)?;
    let library = library(dir)?;
    let installed = store::installed(&mut &ctx.db).await?;
    let mut listed = Items::of(library.values(), |p| {
        let row = installed.iter().find(|i| i.name == p.manifest.name);
        Listed {
            summary: p.summary(),
            installed_version: row.map(|r| r.version.clone()),
            sample_data_installed: row.is_some_and(|r| r.sample_data),
        }
    });
    listed
        .items
        .sort_by(|a, b| a.summary.name.cmp(&b.summary.name));
    Ok(listed)
}
