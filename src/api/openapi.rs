//! `GET /api/openapi.json`: an OpenAPI 3.1 document of the live schema, for the caller.
//!
//! Every entity the caller may read gets its record schema (the fields they may read; computed
//! fields and fields they may only read as `readOnly`), an input schema (the fields they may
//! write; `required` as the definition says) and concrete paths
//! (`/api/records/customer`, `/api/records/customer/{id}` …), so clients and test generators
//! see real field names and types. The fixed endpoints (entities, views, automations, search,
//! webhooks, reports, import and export) are described once. Errors are problem+json; auth is
//! a bearer token. The document is cached per schema epoch and per permission fingerprint.
//!
//! `GET /api/docs` renders the same document as a page (server-rendered HTML, no script).

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::auth::Caller;
use super::problem::json_response;
use crate::auth::{Access, Action, FieldAccess};
use crate::context::Context;
use crate::error::Result;
use crate::fields::{Kind, ResultKind};
use crate::schema::compiled::{Catalog, CompiledEntity};
use crate::schema::definition::FieldDef;

/// Documents already built: (schema epoch, permission fingerprint) → document.
#[derive(Default)]
pub struct OpenApiCache {
    documents: Mutex<HashMap<(i64, u64), Arc<Value>>>,
}

/// What of the caller's permissions shapes the document: per entity, the actions they may
/// take and each field's access.
fn fingerprint(catalog: &Catalog, access: &Access) -> u64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    access.is_admin().hash(&mut hasher);
    for entity in catalog.entities() {
        let name = entity.def.name.as_str();
        name.hash(&mut hasher);
        for action in [Action::Create, Action::Read, Action::Update, Action::Delete] {
            (access.scope(name, action) as u8).hash(&mut hasher);
        }
        for field in &entity.def.fields {
            (access.field(name, field.name.as_str()) as u8).hash(&mut hasher);
        }
    }
    hasher.finish()
}

/// The document for a caller (built once per schema epoch and permissions).
pub async fn document(ctx: &Context, cache: &OpenApiCache, access: &Access) -> Result<Arc<Value>> {
    let catalog = ctx
        .schema
        .catalog_as_of(&ctx.db, access.schema_epoch())
        .await?;
    let key = (catalog.epoch, fingerprint(&catalog, access));
    if let Some(doc) = cache
        .documents
        .lock()
        .ok()
        .and_then(|d| d.get(&key).cloned())
    {
        return Ok(doc);
    }
    let doc = Arc::new(build(&catalog, access));
    if let Ok(mut documents) = cache.documents.lock() {
        // Old epochs are of no use any more.
        documents.retain(|(epoch, _), _| *epoch == catalog.epoch);
        documents.insert(key, doc.clone());
    }
    Ok(doc)
}

fn nullable(mut schema: Map<String, Value>) -> Value {
    match schema.remove("type") {
        Some(Value::Array(mut types)) => {
            if !types.contains(&json!("null")) {
                types.push(json!("null"));
            }
            schema.insert("type".into(), Value::Array(types));
        }
        Some(ty) => {
            schema.insert("type".into(), json!([ty, "null"]));
        }
        None => {}
    }
    if let Some(Value::Array(values)) = schema.get_mut("enum")
        && !values.contains(&Value::Null)
    {
        values.push(Value::Null);
    }
    Value::Object(schema)
}

fn labelled(field: &FieldDef, mut schema: Map<String, Value>) -> Map<String, Value> {
    if let Some(label) = field.schema.get("x-label") {
        let title = label
            .get("en")
            .or_else(|| label.get("zh-CN"))
            .and_then(Value::as_str)
            .unwrap_or(field.name.as_str());
        schema.insert("title".into(), json!(title));
    }
    schema.insert("x-kind".into(), json!(field.kind.as_str()));
    schema
}

/// A field's value as records show it.
fn output_schema(field: &FieldDef, read_only: bool) -> Value {
    let mut schema = Map::new();
    let result = match field.kind {
        Kind::Formula | Kind::Rollup => Some(field.result.unwrap_or(ResultKind::Decimal)),
        _ => None,
    };
    match (field.kind, result) {
        (Kind::Integer, _) | (_, Some(ResultKind::Integer)) => {
            schema.insert("type".into(), json!("integer"));
        }
        (Kind::Decimal | Kind::Money | Kind::Percent, _) | (_, Some(ResultKind::Decimal)) => {
            schema.insert("type".into(), json!("string"));
            schema.insert("pattern".into(), json!("^-?[0-9]+(\\.[0-9]+)?$"));
        }
        (Kind::Boolean, _) | (_, Some(ResultKind::Boolean)) => {
            schema.insert("type".into(), json!("boolean"));
        }
        (Kind::Date, _) | (_, Some(ResultKind::Date)) => {
            schema.insert("type".into(), json!("string"));
            schema.insert("format".into(), json!("date"));
        }
        (Kind::Datetime, _) | (_, Some(ResultKind::Datetime)) => {
            schema.insert("type".into(), json!("string"));
            schema.insert("format".into(), json!("date-time"));
        }
        (Kind::MultiSelect, _) => {
            schema.insert("type".into(), json!("array"));
            let values: Vec<&str> = field.options.iter().map(|o| o.value.as_str()).collect();
            schema.insert("items".into(), json!({"type": "string", "enum": values}));
        }
        (Kind::MultiLookup, _) => {
            schema.insert("type".into(), json!("array"));
            schema.insert("items".into(), json!({"type": "string", "format": "uuid"}));
        }
        (Kind::Lookup | Kind::User | Kind::Department, _) => {
            schema.insert("type".into(), json!("string"));
            schema.insert("format".into(), json!("uuid"));
        }
        (Kind::Select, _) => {
            schema.insert("type".into(), json!("string"));
            let values: Vec<&str> = field.options.iter().map(|o| o.value.as_str()).collect();
            schema.insert("enum".into(), json!(values));
        }
        _ => {
            schema.insert("type".into(), json!("string"));
        }
    }
    if read_only {
        schema.insert("readOnly".into(), json!(true));
    }
    let schema = labelled(field, schema);
    // Lists come back as empty lists, never null.
    if matches!(field.kind, Kind::MultiSelect | Kind::MultiLookup) {
        Value::Object(schema)
    } else {
        nullable(schema)
    }
}

/// Keywords of a completed property that constrain what may be written.
const INPUT_KEYWORDS: &[&str] = &[
    "type",
    "format",
    "enum",
    "items",
    "uniqueItems",
    "maxLength",
    "minLength",
    "pattern",
    "minItems",
    "maxItems",
];

/// A field's value as a client writes it (what the record schema validates).
fn input_schema(field: &FieldDef, required: bool) -> Value {
    let mut schema: Map<String, Value> = field
        .schema
        .iter()
        .filter(|(k, _)| INPUT_KEYWORDS.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if field.kind.is_decimal() {
        schema.insert("type".into(), json!(["number", "string"]));
    } else if !field.kind.is_decimal()
        && let (Some(min), Some(max)) = (field.minimum, field.maximum)
    {
        schema.insert("minimum".into(), json!(min.to_string().parse::<f64>().ok()));
        schema.insert("maximum".into(), json!(max.to_string().parse::<f64>().ok()));
    }
    let schema = labelled(field, schema);
    if required {
        Value::Object(schema)
    } else {
        nullable(schema)
    }
}

fn problem_response(description: &str) -> Value {
    json!({"description": description, "content": {"application/problem+json": {
        "schema": {"$ref": "#/components/schemas/Problem"}}}})
}

fn ok(description: &str, schema: Value) -> Value {
    json!({"description": description, "content": {"application/json": {"schema": schema}}})
}

fn reference(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

/// The usual error answers of an authenticated operation, plus `extra` statuses.
fn responses(success: (&str, Value), extra: &[(&str, &str)]) -> Value {
    let mut out = Map::new();
    out.insert(success.0.to_owned(), success.1);
    for (status, text) in [
        ("400", "Malformed request, parameter or filter"),
        ("401", "Not signed in"),
        ("403", "Not allowed"),
        ("429", "Too many requests"),
    ]
    .iter()
    .chain(extra)
    {
        out.insert((*status).to_owned(), problem_response(text));
    }
    Value::Object(out)
}

fn body(schema: Value) -> Value {
    json!({"required": true, "content": {"application/json": {"schema": schema}}})
}

fn query_param(name: &str, description: &str, schema: Value) -> Value {
    json!({"name": name, "in": "query", "required": false, "description": description,
           "schema": schema})
}

fn path_param(name: &str, schema: Value) -> Value {
    json!({"name": name, "in": "path", "required": true, "schema": schema})
}

fn pascal(name: &str) -> String {
    name.split('_')
        .map(|p| {
            let mut c = p.chars();
            c.next()
                .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
                .unwrap_or_default()
        })
        .collect()
}

/// The schemas and paths of one entity, as far as the caller may go.
fn entity_parts(
    entity: &CompiledEntity,
    access: &Access,
    schemas: &mut Map<String, Value>,
    paths: &mut Map<String, Value>,
) {
    let name = entity.def.name.as_str();
    let type_name = pascal(name);
    let may = |action| access.scope(name, action) > crate::auth::Scope::None;
    let mut properties = Map::new();
    properties.insert(
        "id".into(),
        json!({"type": "string", "format": "uuid", "readOnly": true}),
    );
    let mut input = Map::new();
    let mut required = Vec::new();
    for field in &entity.def.fields {
        let field_access = access.field(name, field.name.as_str());
        if field_access == FieldAccess::Hidden {
            continue;
        }
        let writable = field_access == FieldAccess::Write && !field.is_computed();
        properties.insert(field.name.to_string(), output_schema(field, !writable));
        if writable {
            let needed = field.required && field.default.is_none();
            input.insert(field.name.to_string(), input_schema(field, needed));
            if needed {
                required.push(field.name.to_string());
            }
        }
    }
    let id_or_null = json!({"type": ["string", "null"], "format": "uuid"});
    for (key, schema) in [
        (
            "created_at",
            json!({"type": "string", "format": "date-time", "readOnly": true}),
        ),
        (
            "updated_at",
            json!({"type": "string", "format": "date-time", "readOnly": true}),
        ),
        (
            "created_by",
            json!({"type": ["string", "null"], "format": "uuid", "readOnly": true}),
        ),
        ("owner", id_or_null.clone()),
        ("department", id_or_null.clone()),
        (
            "version",
            json!({"type": "integer", "minimum": 1, "readOnly": true}),
        ),
        (
            "deleted_at",
            json!({"type": "string", "format": "date-time", "readOnly": true}),
        ),
        (
            "tags",
            json!({"type": "array", "items": {"type": "string"}}),
        ),
        ("expand", json!({"type": "object", "readOnly": true})),
    ] {
        properties.insert(key.into(), schema);
    }
    let label = label_text(&entity.def.label, name);
    schemas.insert(
        type_name.clone(),
        json!({"type": "object", "title": label, "properties": properties,
               "required": ["id", "created_at", "updated_at", "version"]}),
    );
    input.insert("owner".into(), id_or_null.clone());
    input.insert("department".into(), id_or_null);
    input.insert(
        "tags".into(),
        json!({"type": "array", "items": {"type": "string", "minLength": 1, "maxLength": 100}}),
    );
    schemas.insert(
        format!("{type_name}Input"),
        json!({"type": "object", "properties": input, "required": required,
               "additionalProperties": false}),
    );
    let mut patch = input_schema_patch(&schemas[&format!("{type_name}Input")]);
    if let Some(props) = patch.get_mut("properties").and_then(Value::as_object_mut) {
        props.insert("version".into(), json!({"type": "integer", "minimum": 1}));
    }
    schemas.insert(format!("{type_name}Patch"), patch);
    schemas.insert(
        format!("{type_name}Page"),
        json!({"type": "object", "required": ["items", "next_cursor"], "properties": {
            "items": {"type": "array", "items": reference(&type_name)},
            "next_cursor": {"type": ["string", "null"]},
            "total": {"type": "integer"},
            "facets": {"type": "object"}}}),
    );

    let tag = json!([name]);
    let list_params = json!([
        query_param(
            "filter",
            "A filter expression, e.g. `stage = \"won\" && amount >= 1000`",
            json!({"type": "string"})
        ),
        query_param(
            "sort",
            "Fields to sort by, `-` for descending: `-amount,name`",
            json!({"type": "string"})
        ),
        query_param(
            "limit",
            "Records per page (1–500, default 50)",
            json!({"type": "integer", "minimum": 1, "maximum": 500})
        ),
        query_param(
            "cursor",
            "The `next_cursor` of the previous page",
            json!({"type": "string"})
        ),
        query_param(
            "fields",
            "Only these fields (comma-separated)",
            json!({"type": "string"})
        ),
        query_param(
            "expand",
            "Lookups to include (comma-separated)",
            json!({"type": "string"})
        ),
        query_param(
            "q",
            "Quick search in text fields",
            json!({"type": "string"})
        ),
        query_param(
            "trashed",
            "List the trash instead",
            json!({"type": "boolean"})
        ),
        query_param(
            "count",
            "Also count every match (`total`)",
            json!({"type": "boolean"})
        ),
        query_param(
            "facet",
            "Counts per value of these fields or `tags`",
            json!({"type": "string"})
        ),
    ]);
    let id_param = path_param("id", json!({"type": "string", "format": "uuid"}));
    let if_match = json!({"name": "If-Match", "in": "header", "required": false,
        "description": "The version last read, as `\"3\"`: the change is refused with 412 when the record moved on",
        "schema": {"type": "string", "pattern": "^(\\*|(W/)?\"?[0-9]{1,18}\"?)$"}});
    let mut collection = Map::new();
    if may(Action::Read) {
        collection.insert("get".into(), json!({
            "tags": tag, "operationId": format!("list_{name}"), "summary": format!("List {label} records"),
            "parameters": list_params,
            "responses": responses(("200", ok("A page of records", reference(&format!("{type_name}Page")))), &[("404", "No such entity")]),
        }));
    }
    if may(Action::Create) {
        collection.insert("post".into(), json!({
            "tags": tag, "operationId": format!("create_{name}"), "summary": format!("Create a {label} record"),
            "requestBody": body(reference(&format!("{type_name}Input"))),
            "responses": responses(("201", ok("The record created", reference(&type_name))),
                &[("404", "No such entity or related record"), ("409", "A unique value is taken"), ("422", "Invalid fields, every one listed")]),
        }));
    }
    if !collection.is_empty() {
        paths.insert(format!("/api/records/{name}"), Value::Object(collection));
    }
    if !may(Action::Read) {
        return;
    }
    let mut one = Map::new();
    one.insert("get".into(), json!({
        "tags": tag, "operationId": format!("get_{name}"), "summary": format!("Read a {label} record"),
        "parameters": [id_param, query_param("expand", "Lookups to include", json!({"type": "string"}))],
        "responses": responses(("200", ok("The record", reference(&type_name))), &[("404", "No such record")]),
    }));
    if may(Action::Update) {
        one.insert("patch".into(), json!({
            "tags": tag, "operationId": format!("update_{name}"), "summary": format!("Change a {label} record"),
            "parameters": [id_param, if_match],
            "requestBody": body(reference(&format!("{type_name}Patch"))),
            "responses": responses(("200", ok("The record changed", reference(&type_name))),
                &[("404", "No such record"), ("409", "A unique value is taken"), ("412", "The record changed since it was read"), ("422", "Invalid fields, every one listed")]),
        }));
    }
    if may(Action::Delete) {
        one.insert("delete".into(), json!({
            "tags": tag, "operationId": format!("delete_{name}"), "summary": format!("Move a {label} record to the trash"),
            "parameters": [id_param, if_match, query_param("permanent", "Erase it for good", json!({"type": "boolean"}))],
            "responses": responses(("204", json!({"description": "Deleted"})), &[("404", "No such record"), ("412", "The record changed since it was read")]),
        }));
        paths.insert(format!("/api/records/{name}/{{id}}/restore"), json!({"post": {
            "tags": tag, "operationId": format!("restore_{name}"), "summary": "Bring a record back from the trash",
            "parameters": [id_param],
            "responses": responses(("200", ok("The record restored", reference(&type_name))), &[("404", "No such record in the trash"), ("409", "Not in the trash, or a unique value is taken")]),
        }}));
    }
    paths.insert(format!("/api/records/{name}/{{id}}"), Value::Object(one));
    paths.insert(format!("/api/records/{name}/{{id}}/history"), json!({"get": {
        "tags": tag, "operationId": format!("history_{name}"), "summary": "Who changed what, newest first",
        "parameters": [id_param, query_param("limit", "Entries (1–1000)", json!({"type": "integer", "minimum": 1, "maximum": 1000}))],
        "responses": responses(("200", ok("The history", json!({"type": "object", "properties": {"items": {"type": "array", "items": {"type": "object"}}}}))), &[("404", "No such record")]),
    }}));
}

/// A partial input: the same properties, none required.
fn input_schema_patch(input: &Value) -> Value {
    let mut patch = input.clone();
    if let Some(object) = patch.as_object_mut() {
        object.insert("required".into(), json!([]));
    }
    patch
}

/// The fixed endpoints (beside the per-entity record paths).
fn fixed_paths(paths: &mut Map<String, Value>) {
    let entity_param = path_param(
        "entity",
        json!({"type": "string", "pattern": "^[a-z][a-z0-9_]*$"}),
    );
    let id_param = path_param("id", json!({"type": "string"}));
    let object = json!({"type": "object"});
    let items = json!({"type": "object", "required": ["items"], "properties": {"items": {"type": "array", "items": {"type": "object"}}}});
    paths.insert("/api/health".into(), json!({"get": {
        "tags": ["system"], "operationId": "health", "summary": "Liveness and database reachability", "security": [],
        "responses": {"200": ok("Up", json!({"type": "object", "properties": {"status": {"type": "string"}}})),
                      "503": ok("The database is unreachable", object.clone())},
    }}));
    paths.insert("/api/me".into(), json!({"get": {
        "tags": ["auth"], "operationId": "me", "summary": "The signed-in user, roles and permissions",
        "responses": responses(("200", ok("You", object.clone())), &[]),
    }}));
    paths.insert("/api/entities".into(), json!({
        "get": {"tags": ["schema"], "operationId": "list_entities", "summary": "Entity definitions you may read",
                "responses": responses(("200", ok("Definitions", items.clone())), &[])},
        "post": {"tags": ["schema"], "operationId": "create_entity", "summary": "Create an entity (manage_schema)",
                 "requestBody": body(reference("EntityDefinition")),
                 "responses": responses(("201", ok("The completed definition", reference("EntityDefinition"))), &[("409", "The entity exists"), ("422", "Invalid definition, every problem listed")])},
    }));
    paths.insert("/api/entities/{entity}".into(), json!({
        "get": {"tags": ["schema"], "operationId": "get_entity", "summary": "One definition",
                "parameters": [entity_param],
                "responses": responses(("200", ok("The definition", reference("EntityDefinition"))), &[("404", "No such entity")])},
        "put": {"tags": ["schema"], "operationId": "replace_entity", "summary": "Replace a definition: the change is planned and applied (manage_schema)",
                "parameters": [entity_param, json!({"name": "If-Match", "in": "header", "required": false, "schema": {"type": "string"}})],
                "requestBody": body(reference("EntityDefinition")),
                "responses": responses(("200", ok("The new definition", reference("EntityDefinition"))),
                    &[("404", "No such entity"), ("409", "The change conflicts with the data"), ("412", "The definition changed since it was read"), ("422", "Invalid definition, every problem listed")])},
        "delete": {"tags": ["schema"], "operationId": "archive_entity", "summary": "Archive an entity and its data (manage_schema)",
                "parameters": [entity_param],
                "responses": responses(("200", ok("What was archived: the archive id, the records and the tables kept",
                    json!({"type": "object", "required": ["entity", "archived"], "properties": {
                        "entity": {"type": "string"}, "archived": {"type": "boolean"}, "archive_id": {"type": "integer"},
                        "records": {"type": "integer"}, "tables": {"type": "array", "items": {"type": "string"}}}}))),
                    &[("404", "No such entity"), ("409", "Other entities still refer to it")])},
    }));
    paths.insert("/api/entities/{entity}/indexes".into(), json!({
        "get": {"tags": ["schema"], "operationId": "entity_indexes",
                "summary": "Indexes of the records: declared (x-indexed, x-indexes) and those saved views asked for, built or proposed (manage_schema)",
                "parameters": [entity_param],
                "responses": responses(("200", ok("The indexes", json!({"type": "object", "required": ["items", "automatic_rows"], "properties": {
                    "automatic_rows": {"type": "integer", "description": "Above this many live records a view's index is proposed, not built"},
                    "items": {"type": "array", "items": {"type": "object", "required": ["columns", "source", "state"], "properties": {
                        "columns": {"type": "array", "items": {"type": "string"}, "description": "Columns in order; '-' marks descending"},
                        "source": {"type": "string", "enum": ["x-indexed", "x-indexes", "views"]},
                        "state": {"type": "string", "enum": ["built", "proposed"]},
                        "name": {"type": "string"},
                        "views": {"type": "array", "items": {"type": "string"}, "description": "Ids of the views that asked for it"}}}}}}))),
                    &[("404", "No such entity")])},
    }));
    paths.insert("/api/views".into(), json!({
        "get": {"tags": ["views"], "operationId": "list_views", "summary": "Saved views (shared and yours)",
                "parameters": [query_param("entity", "Only views of this entity", json!({"type": "string"}))],
                "responses": responses(("200", ok("Views", items.clone())), &[("404", "No such entity")])},
        "post": {"tags": ["views"], "operationId": "create_view", "summary": "Save a view (personal, or shared with manage_views)",
                 "requestBody": body(object.clone()),
                 "responses": responses(("201", ok("The view", object.clone())), &[("404", "No such entity"), ("409", "A view of that name exists"), ("422", "Invalid view, every problem listed")])},
    }));
    paths.insert("/api/views/{id}".into(), json!({
        "get": {"tags": ["views"], "operationId": "get_view", "summary": "One view",
                "parameters": [id_param],
                "responses": responses(("200", ok("The view", object.clone())), &[("404", "No such view")])},
        "patch": {"tags": ["views"], "operationId": "update_view", "summary": "Change a view",
                 "parameters": [id_param],
                 "requestBody": body(object.clone()),
                 "responses": responses(("200", ok("The view", object.clone())), &[("404", "No such view"), ("409", "A view of that name exists"), ("412", "The view changed since it was read"), ("422", "Invalid view, every problem listed")])},
        "delete": {"tags": ["views"], "operationId": "delete_view", "summary": "Delete a view",
                 "parameters": [id_param],
                 "responses": responses(("204", json!({"description": "Deleted"})), &[("404", "No such view")])},
    }));
    paths.insert("/api/search".into(), json!({"get": {
        "tags": ["search"], "operationId": "search", "summary": "Search every entity you may read (Chinese included)",
        "parameters": [
            json!({"name": "q", "in": "query", "required": true, "schema": {"type": "string", "minLength": 1}}),
            query_param("limit", "Results (1–50, default 20)", json!({"type": "integer", "minimum": 1, "maximum": 50})),
            query_param("entities", "Only these entities (comma-separated)", json!({"type": "string"})),
        ],
        "responses": responses(("200", ok("Hits, best first", reference("SearchResults"))), &[]),
    }}));
    paths.insert("/api/automations".into(), json!({
        "get": {"tags": ["automations"], "operationId": "list_automations", "summary": "Automations (manage_automations)",
                "responses": responses(("200", ok("Automations", items.clone())), &[])},
    }));
    paths.insert("/api/webhooks".into(), json!({
        "get": {"tags": ["webhooks"], "operationId": "list_webhooks", "summary": "Webhook endpoints (manage_automations)",
                "responses": responses(("200", ok("Endpoints", items.clone())), &[])},
        "post": {"tags": ["webhooks"], "operationId": "create_webhook", "summary": "Add an endpoint; the answer shows its secret once",
                 "requestBody": body(reference("WebhookInput")),
                 "responses": responses(("201", ok("The endpoint", object.clone())), &[("422", "Invalid endpoint (a private address, an unknown entity or event)")])},
    }));
    paths.insert("/api/webhooks/{id}/deliveries".into(), json!({"get": {
        "tags": ["webhooks"], "operationId": "webhook_deliveries", "summary": "Deliveries with every attempt",
        "parameters": [id_param],
        "responses": responses(("200", ok("Deliveries", items.clone())), &[("404", "No such endpoint")]),
    }}));
    paths.insert("/api/records/{entity}/import".into(), json!({"post": {
        "tags": ["import"], "operationId": "import_records", "summary": "Import CSV or XLSX (mapping, dry run, upsert)",
        "parameters": [entity_param,
            query_param("dry_run", "Check everything, write nothing", json!({"type": "boolean"})),
            query_param("mode", "create, update or upsert", json!({"type": "string", "enum": ["create", "update", "upsert"]})),
            query_param("key", "The unique field matching rows to records", json!({"type": "string"})),
            query_param("on_error", "stop or skip", json!({"type": "string", "enum": ["stop", "skip"]}))],
        "requestBody": {"required": true, "content": {
            "text/csv": {"schema": {"type": "string"}},
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": {"schema": {"type": "string", "format": "binary"}}}},
        "responses": responses(("200", ok("The import report", object.clone())), &[("404", "No such entity"), ("422", "Rows that fail")]),
    }}));
    paths.insert("/api/records/{entity}/export".into(), json!({"get": {
        "tags": ["export"], "operationId": "export_records", "summary": "Export a view or filter as CSV or XLSX",
        "parameters": [entity_param,
            query_param("format", "csv or xlsx", json!({"type": "string", "enum": ["csv", "xlsx"]})),
            query_param("view", "A view id", json!({"type": "string"})),
            query_param("filter", "A filter expression", json!({"type": "string"}))],
        "responses": responses(("200", json!({"description": "The file", "content": {"text/csv": {"schema": {"type": "string"}}}})), &[("404", "No such entity or view")]),
    }}));
    paths.insert("/api/reports/query".into(), json!({"post": {
        "tags": ["reports"], "operationId": "report_query", "summary": "Group, measure and compare records (read scope applies)",
        "requestBody": body(object.clone()),
        "responses": responses(("200", ok("Columns, rows and totals", object)), &[("404", "No such entity")]),
    }}));
}

fn components(schemas: &mut Map<String, Value>) {
    schemas.insert(
        "Problem".into(),
        json!({"type": "object", "required": ["type", "title", "status"],
        "properties": {
            "type": {"type": "string"}, "title": {"type": "string"}, "status": {"type": "integer"},
            "detail": {"type": "string"},
            "errors": {"type": "array", "items": {"type": "object", "properties": {
                "field": {"type": "string"}, "message": {"type": "string"}}}}}}),
    );
    schemas.insert("EntityDefinition".into(), json!({"type": "object", "required": ["name", "label", "schema"],
        "properties": {
            "name": {"type": "string", "pattern": "^[a-z][a-z0-9_]*$"},
            "label": {"type": "object", "properties": {"en": {"type": "string"}, "zh-CN": {"type": "string"}}},
            "schema": {"type": "object", "description": "A JSON Schema (draft 2020-12) with x- keywords per field"}}}));
    schemas.insert("SearchResults".into(), json!({"type": "object", "required": ["items"], "properties": {
        "items": {"type": "array", "items": {"type": "object",
            "required": ["entity", "id", "title", "snippet", "score"],
            "properties": {"entity": {"type": "string"}, "id": {"type": "string"}, "title": {"type": "string"},
                           "field": {"type": "string"}, "snippet": {"type": "string"}, "score": {"type": "number"}}}}}}));
    schemas.insert("WebhookInput".into(), json!({"type": "object", "required": ["url", "events"],
        "additionalProperties": false,
        "properties": {
            "url": {"type": "string", "format": "uri"}, "description": {"type": "string"},
            "entities": {"type": "array", "items": {"type": "string"}},
            "events": {"type": "array", "items": {"type": "string", "enum": crate::webhooks::EVENTS}},
            "fields": {"type": "array", "items": {"type": "string"}}, "active": {"type": "boolean"}}}));
}

/// A label as one line of text for the document: English, then Chinese in brackets when it
/// differs (`Customer (客户)`); labels may also be a plain string.
fn label_text(label: &Value, fallback: &str) -> String {
    match label {
        Value::String(text) => text.clone(),
        Value::Object(map) => {
            let en = map.get("en").and_then(Value::as_str);
            let zh = map.get("zh-CN").and_then(Value::as_str);
            match (en, zh) {
                (Some(en), Some(zh)) if en != zh => format!("{en} ({zh})"),
                (Some(text), _) | (None, Some(text)) => text.to_owned(),
                (None, None) => fallback.to_owned(),
            }
        }
        _ => fallback.to_owned(),
    }
}

/// Every operation that takes a body answers 415 when it comes in another media type.
fn declare_media_type_refusals(paths: &mut Map<String, Value>) {
    for operation in paths
        .values_mut()
        .filter_map(Value::as_object_mut)
        .flat_map(|item| item.values_mut())
        .filter_map(Value::as_object_mut)
    {
        if !operation.contains_key("requestBody") {
            continue;
        }
        if let Some(Value::Object(responses)) = operation.get_mut("responses") {
            responses.entry("415").or_insert_with(|| {
                problem_response("The body is not in a media type this operation takes")
            });
        }
    }
}

/// The whole document for a caller.
pub fn build(catalog: &Catalog, access: &Access) -> Value {
    let mut schemas = Map::new();
    let mut paths = Map::new();
    components(&mut schemas);
    fixed_paths(&mut paths);
    let mut tags = vec![];
    for entity in catalog.entities() {
        let name = entity.def.name.as_str();
        if access.require_action(name, Action::Read).is_err()
            && access.require_action(name, Action::Create).is_err()
        {
            continue;
        }
        entity_parts(&entity, access, &mut schemas, &mut paths);
        tags.push(json!({"name": name, "description": label_text(&entity.def.label, name)}));
    }
    declare_media_type_refusals(&mut paths);
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Tessera API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "The REST API of this Tessera server, generated from its live schema for the caller: \
                            the entities and fields you may read. Errors are application/problem+json.",
        },
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "tags": tags,
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                "description": "A session token from POST /api/auth/login, or an API token (tss_…)"}},
        },
    })
}

pub async fn openapi(
    State(app): State<super::AppState>,
    Caller(access): Caller,
) -> Result<Response> {
    let doc = document(&app.ctx, &app.openapi, &access).await?;
    Ok(json_response(StatusCode::OK, (*doc).clone()))
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// `GET /api/docs`: the document for people, rendered on the server (no script).
pub async fn docs(State(app): State<super::AppState>, Caller(access): Caller) -> Result<Response> {
    let doc = document(&app.ctx, &app.openapi, &access).await?;
    let mut html = String::from(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>Tessera API</title><link rel=\"stylesheet\" href=\"/ui/assets/app.css\"></head>\
         <body class=\"api-docs\"><main class=\"content\"><h1>Tessera API</h1>",
    );
    html.push_str(&format!(
        "<p>{}</p><p><a href=\"/api/openapi.json\">openapi.json</a> · OpenAPI {}</p>",
        escape(doc["info"]["description"].as_str().unwrap_or_default()),
        escape(doc["openapi"].as_str().unwrap_or_default())
    ));
    if let Some(paths) = doc["paths"].as_object() {
        for (path, operations) in paths {
            for (method, operation) in operations.as_object().into_iter().flatten() {
                html.push_str(&format!(
                    "<section class=\"api-op\"><h2><code>{} {}</code></h2><p>{}</p>",
                    escape(&method.to_uppercase()),
                    escape(path),
                    escape(operation["summary"].as_str().unwrap_or_default())
                ));
                if let Some(parameters) = operation["parameters"].as_array() {
                    html.push_str("<ul>");
                    for p in parameters {
                        html.push_str(&format!(
                            "<li><code>{}</code> ({}) {}</li>",
                            escape(p["name"].as_str().unwrap_or_default()),
                            escape(p["in"].as_str().unwrap_or_default()),
                            escape(p["description"].as_str().unwrap_or_default())
                        ));
                    }
                    html.push_str("</ul>");
                }
                if let Some(responses) = operation["responses"].as_object() {
                    let codes: Vec<String> = responses.keys().map(|c| escape(c)).collect();
                    html.push_str(&format!("<p>Answers: {}</p>", codes.join(", ")));
                }
                html.push_str("</section>");
            }
        }
    }
    html.push_str("</main></body></html>");
    let mut response = Html(html).into_response();
    response.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'self'; script-src 'none'; frame-ancestors 'none'"),
    );
    Ok(response)
}
