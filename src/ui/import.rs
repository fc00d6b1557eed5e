//! The import wizard of an entity: upload a CSV or Excel file, check it (a dry run), fix the
//! mapping of columns to fields, read the errors, run it, and undo it. The page only gathers
//! the choices; the file goes to `POST /api/records/{entity}/import` (the same contract as
//! every other client), and `import.js` shows the report, saying each error's `code` in the
//! viewer's language with the labels of fields and options the page gives it.

use axum::extract::Path;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{Map, Value, json};

use super::list::merge;
use super::render::{asset_url, render};
use super::shell;
use super::{Viewer, html, tri};
use crate::auth::{Action, Special};

/// `GET /e/{entity}/import`.
pub async fn page(v: Viewer, headers: HeaderMap, Path(entity): Path<String>) -> Response {
    let target = tri!(v, headers, shell::entity_target(&v, &entity).await);
    tri!(v, headers, v.access.require(Special::Import));
    tri!(v, headers, v.access.require_action(&entity, Action::Create));
    let def = &target.entity.def;
    let fields: Vec<Value> = def
        .fields
        .iter()
        .filter(|f| {
            !f.is_computed()
                && v.access.field(&entity, f.name.as_str()) == crate::auth::FieldAccess::Write
        })
        .map(|f| json!({"name": f.name.as_str(), "label": shell::field_label(&v, f)}))
        .collect();
    let keys: Vec<Value> = def
        .fields
        .iter()
        .filter(|f| f.unique && v.access.can_read_field(&entity, f.name.as_str()))
        .map(|f| json!({"name": f.name.as_str(), "label": shell::field_label(&v, f)}))
        .chain(std::iter::once(json!({"name": "id", "label": "ID"})))
        .collect();
    // What the report needs to speak the viewer's language: labels of the fields (and of the
    // options they list) an error may name, and the messages by code.
    let mut labels = Map::new();
    let mut options = Map::new();
    for f in def
        .fields
        .iter()
        .filter(|f| v.access.can_read_field(&entity, f.name.as_str()))
    {
        labels.insert(f.name.to_string(), json!(shell::field_label(&v, f)));
        if !f.options.is_empty() {
            let named: Map<String, Value> = shell::options(&v, f)
                .into_iter()
                .map(|(value, label, _)| (value, json!(label)))
                .collect();
            options.insert(f.name.to_string(), Value::Object(named));
        }
    }
    for system in ["owner", "id"] {
        labels.insert(system.into(), json!(shell::system_label(&v, system)));
    }
    let report_text = json!({
        "labels": labels,
        "options": options,
        "messages": v.lang.strings.get("imp_err").cloned().unwrap_or(json!({})),
        "sep": v.t("imp_list_sep"),
    });
    let label = v.lang.label(Some(&def.label), &entity);
    let heading = v.f("imp_of", &[("entity", &label)]);
    let mut data = tri!(
        v,
        headers,
        shell::page(&v, &target.catalog, &heading, Some(&entity)).await
    );
    merge(
        &mut data,
        json!({
            "entity": shell::entity_json(&v, &target.entity),
            "heading": heading,
            "fields": fields,
            "fields_json": Value::Array(fields.clone()).to_string(),
            "report_json": report_text.to_string(),
            "keys": keys,
            "script": asset_url("import.js"),
        }),
    );
    match render("import", &data) {
        Ok(body) => html(StatusCode::OK, body),
        Err(e) => super::error_page(Some(&v), &headers, e),
    }
}
