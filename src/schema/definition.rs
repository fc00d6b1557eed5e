//! Entity definitions: the JSON document users send (a JSON Schema with `x-` keywords) parsed
//! into typed [`EntityDef`] / [`FieldDef`] values, and the completed document the server
//! stores and returns (every keyword a kind implies filled in).

use std::collections::HashSet;
use std::str::FromStr;

use regex::Regex;
use rust_decimal::Decimal;
use serde_json::{Map, Value, json};

use super::meta;
use super::names::{EntityName, FieldName};
use crate::error::FieldError;
use crate::expr::eval::{self, Type};
use crate::expr::{self as expression, Expr};
use crate::fields::{AutoPattern, COMMON_KEYWORDS, Kind, ResultKind, RollupOp, RollupSpec};
use crate::store::ColumnType;

/// The JSON Schema dialect of every record schema.
pub const DRAFT_2020_12: &str = "https://json-schema.org/draft/2020-12/schema";

/// Keywords derived from `x-kind` (and `x-options`); whatever a client sends for them is
/// replaced when the definition is completed.
const DERIVED_KEYWORDS: &[&str] = &["type", "format", "enum", "items", "uniqueItems", "readOnly"];

/// Upper bound on fields per entity (PostgreSQL allows 1,600 columns; forms stop being usable
/// long before).
pub const MAX_FIELDS: usize = 300;

#[derive(Debug, Clone, PartialEq)]
pub struct SelectOption {
    pub value: String,
    pub label: Option<Value>,
    pub color: Option<String>,
}

/// One field, parsed. `schema` is its completed property document; the other members are the
/// typed view of it.
#[derive(Debug, Clone)]
pub struct FieldDef {
    pub name: FieldName,
    pub kind: Kind,
    pub required: bool,
    pub unique: bool,
    pub indexed: bool,
    pub scale: u32,
    pub options: Vec<SelectOption>,
    pub target: Option<EntityName>,
    pub autonumber: Option<AutoPattern>,
    pub formula: Option<String>,
    /// The parsed formula, checked against the other fields.
    pub formula_expr: Option<Expr>,
    /// The result type of a formula or rollup (settled when the definition is resolved).
    pub result: Option<ResultKind>,
    /// The `x-result` the definition itself states, if any.
    pub declared_result: Option<ResultKind>,
    pub rollup: Option<RollupSpec>,
    pub max_length: Option<u64>,
    pub min_length: Option<u64>,
    pub minimum: Option<Decimal>,
    pub maximum: Option<Decimal>,
    pub regex: Option<Regex>,
    pub default: Option<Value>,
    pub schema: Map<String, Value>,
}

impl FieldDef {
    /// The column holding this field's values, or `None` for a join-table field.
    pub fn column_type(&self) -> Option<ColumnType> {
        self.kind.field_type().column(self)
    }

    /// Whether the database keeps a unique index on this field.
    pub fn has_unique_index(&self) -> bool {
        self.unique || self.kind == Kind::Autonumber
    }

    /// Whether the database keeps a plain index on this field.
    pub fn has_plain_index(&self) -> bool {
        !self.has_unique_index()
            && self.column_type().is_some()
            && (self.indexed || self.kind.is_reference())
    }

    pub fn is_computed(&self) -> bool {
        self.kind.is_computed()
    }

    /// Whether global search indexes the field: `x-searchable` when given, else what the kind
    /// says (text-like fields).
    pub fn is_searchable(&self) -> bool {
        match self.schema.get("x-searchable").and_then(Value::as_bool) {
            Some(chosen) => chosen && self.column_type() == Some(ColumnType::Text),
            None => self.capabilities().searchable,
        }
    }

    /// What the field supports (sorting, grouping, sums, date buckets, search, `~`).
    pub fn capabilities(&self) -> crate::fields::Capabilities {
        self.kind.field_type().capabilities(self)
    }
}

/// An entity, parsed: its name, labels and fields in display order.
#[derive(Debug, Clone)]
pub struct EntityDef {
    pub name: EntityName,
    pub label: Value,
    pub description: Option<Value>,
    /// The field that names a record in lists and lookups (defaults to the first text field).
    pub display_field: Option<FieldName>,
    pub fields: Vec<FieldDef>,
    /// Compound indexes (`x-indexes`), for the lists that filter by one field and sort by another.
    pub indexes: Vec<CompoundIndex>,
}

/// System columns a compound index may hold besides fields.
pub const INDEXABLE_SYSTEM_COLUMNS: &[&str] = &["created_at", "updated_at", "owner", "department"];
/// Most compound indexes an entity may have, and most columns in one: every index costs each
/// write, so a handful of well-chosen ones is the point.
pub const MAX_COMPOUND_INDEXES: usize = 8;
pub const MAX_INDEX_COLUMNS: usize = 4;

/// A compound index over live records: columns in order, each ascending or descending, as
/// `x-indexes` spells it (`["stage", "-amount"]`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CompoundIndex {
    pub keys: Vec<IndexKey>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IndexKey {
    /// A field with a column, or one of [`INDEXABLE_SYSTEM_COLUMNS`].
    pub column: String,
    pub desc: bool,
}

impl CompoundIndex {
    /// The spelling in a definition: `["stage", "-amount"]`.
    pub fn spelling(&self) -> Vec<String> {
        self.keys
            .iter()
            .map(|k| format!("{}{}", if k.desc { "-" } else { "" }, k.column))
            .collect()
    }

    /// Parses one entry of `x-indexes` against the entity's fields.
    fn parse(entry: &Value, fields: &[FieldDef]) -> Result<CompoundIndex, String> {
        let items = entry
            .as_array()
            .ok_or("an index is a list of field names, such as [\"stage\", \"-amount\"]")?;
        if !(2..=MAX_INDEX_COLUMNS).contains(&items.len()) {
            return Err(format!(
                "an index has 2 to {MAX_INDEX_COLUMNS} fields (one field: use x-indexed)"
            ));
        }
        let mut keys: Vec<IndexKey> = Vec::with_capacity(items.len());
        for item in items {
            let text = item.as_str().ok_or("field names are strings")?;
            let (desc, column) = match text.strip_prefix('-') {
                Some(rest) => (true, rest),
                None => (false, text),
            };
            let usable = INDEXABLE_SYSTEM_COLUMNS.contains(&column)
                || fields.iter().any(|f| {
                    f.name.as_str() == column
                        && f.column_type().is_some()
                        && f.capabilities().sortable
                });
            if !usable {
                return Err(match fields.iter().any(|f| f.name.as_str() == column) {
                    true => {
                        format!("'{column}' cannot be indexed (its kind has no sortable column)")
                    }
                    false => format!("'{column}' is not a field"),
                });
            }
            if keys.iter().any(|k| k.column == column) {
                return Err(format!("'{column}' appears twice"));
            }
            keys.push(IndexKey {
                column: column.to_owned(),
                desc,
            });
        }
        Ok(CompoundIndex { keys })
    }
}

impl EntityDef {
    pub fn field(&self, name: &str) -> Option<&FieldDef> {
        self.fields.iter().find(|f| f.name.as_str() == name)
    }

    /// The field that names a record: `x-display-field`, else the first text field.
    pub fn title_field(&self) -> Option<&FieldDef> {
        match &self.display_field {
            Some(name) => self.field(name.as_str()),
            None => self.fields.iter().find(|f| f.kind == Kind::Text),
        }
    }

    pub fn field_mut(&mut self, name: &str) -> Option<&mut FieldDef> {
        self.fields.iter_mut().find(|f| f.name.as_str() == name)
    }

    /// Parses and completes a definition document. Every problem found is reported, each with
    /// the path of the offending part (`schema.properties.budget.x-scale`).
    pub fn parse(doc: &Value) -> Result<EntityDef, Vec<FieldError>> {
        let doc = infer_kinds(doc);
        let mut errors = meta::validate(&doc);
        // Problems inside a field are reported together with the field-level checks below;
        // anything else wrong with the document's shape stops here.
        let field_prefix = "schema.properties.";
        if errors.iter().any(|e| !e.field.starts_with(field_prefix)) {
            return Err(errors);
        }
        let broken_fields: HashSet<String> = errors
            .iter()
            .filter_map(|e| e.field[field_prefix.len()..].split('.').next())
            .map(str::to_owned)
            .collect();
        let name = match doc["name"].as_str().map(EntityName::parse) {
            Some(Ok(name)) => name,
            Some(Err(message)) => return Err(vec![FieldError::new("name", message)]),
            None => return Err(vec![FieldError::new("name", "is required")]),
        };
        let schema = &doc["schema"];
        let required: HashSet<&str> = schema
            .get("required")
            .and_then(Value::as_array)
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let empty = Map::new();
        let properties = schema["properties"].as_object().unwrap_or(&empty);
        if properties.len() > MAX_FIELDS {
            errors.push(FieldError::new(
                "schema.properties",
                format!("an entity has at most {MAX_FIELDS} fields"),
            ));
        }
        let mut fields = Vec::with_capacity(properties.len());
        for (field_name, property) in properties {
            if broken_fields.contains(field_name) {
                continue;
            }
            let path = format!("schema.properties.{field_name}");
            let name = match FieldName::parse(field_name) {
                Ok(name) => name,
                Err(message) => {
                    errors.push(FieldError::new(path, message));
                    continue;
                }
            };
            let is_required = required.contains(field_name.as_str());
            match parse_field(name, property, is_required) {
                Ok(field) => fields.push(field),
                Err(messages) => errors.extend(
                    messages
                        .into_iter()
                        .map(|m| FieldError::new(path.clone(), m)),
                ),
            }
        }
        for r in &required {
            match properties.get(*r) {
                None => errors.push(FieldError::new(
                    "schema.required",
                    format!("'{r}' is required but is not a field"),
                )),
                Some(p)
                    if p["x-kind"]
                        .as_str()
                        .and_then(Kind::parse)
                        .is_some_and(Kind::is_computed) =>
                {
                    errors.push(FieldError::new(
                        "schema.required",
                        format!("'{r}' is computed by the server and cannot be required"),
                    ));
                }
                Some(_) => {}
            }
        }
        let display_field = match schema.get("x-display-field").and_then(Value::as_str) {
            None => fields
                .iter()
                .find(|f| matches!(f.kind, Kind::Text | Kind::Autonumber | Kind::Email))
                .map(|f| f.name.clone()),
            Some(d) => match fields.iter().find(|f| f.name.as_str() == d) {
                Some(f) if f.column_type().is_some() && f.kind != Kind::MultiSelect => {
                    Some(f.name.clone())
                }
                Some(_) => {
                    errors.push(FieldError::new(
                        "schema.x-display-field",
                        format!("'{d}' cannot name a record; choose a text field"),
                    ));
                    None
                }
                None => {
                    errors.push(FieldError::new(
                        "schema.x-display-field",
                        format!("'{d}' is not a field"),
                    ));
                    None
                }
            },
        };
        let mut indexes: Vec<CompoundIndex> = Vec::new();
        if let Some(entries) = schema.get("x-indexes") {
            let list = entries.as_array().map(Vec::as_slice).unwrap_or_default();
            if !entries.is_array() || list.len() > MAX_COMPOUND_INDEXES {
                errors.push(FieldError::new(
                    "schema.x-indexes",
                    format!("a list of at most {MAX_COMPOUND_INDEXES} indexes"),
                ));
            }
            for (i, entry) in list.iter().enumerate() {
                match CompoundIndex::parse(entry, &fields) {
                    Ok(index) if indexes.contains(&index) => errors.push(FieldError::new(
                        format!("schema.x-indexes.{i}"),
                        "the same index is listed twice",
                    )),
                    Ok(index) => indexes.push(index),
                    Err(message) => {
                        errors.push(FieldError::new(format!("schema.x-indexes.{i}"), message))
                    }
                }
            }
        }
        errors.extend(resolve_formulas(&mut fields));
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(EntityDef {
            name,
            label: doc["label"].clone(),
            description: doc.get("description").cloned(),
            display_field,
            fields,
            indexes,
        })
    }

    /// The completed document, as stored and returned.
    pub fn document(&self) -> Value {
        let mut properties = Map::new();
        for field in &self.fields {
            properties.insert(field.name.to_string(), Value::Object(field.schema.clone()));
        }
        let required: Vec<&str> = self
            .fields
            .iter()
            .filter(|f| f.required)
            .map(|f| f.name.as_str())
            .collect();
        let mut schema = Map::new();
        schema.insert("$schema".into(), json!(DRAFT_2020_12));
        schema.insert("type".into(), json!("object"));
        schema.insert("properties".into(), Value::Object(properties));
        schema.insert("required".into(), json!(required));
        schema.insert("additionalProperties".into(), json!(false));
        if let Some(display) = &self.display_field {
            schema.insert("x-display-field".into(), json!(display));
        }
        if !self.indexes.is_empty() {
            let spelled: Vec<Vec<String>> =
                self.indexes.iter().map(CompoundIndex::spelling).collect();
            schema.insert("x-indexes".into(), json!(spelled));
        }
        let mut doc = Map::new();
        doc.insert("name".into(), json!(self.name));
        doc.insert("label".into(), self.label.clone());
        if let Some(description) = &self.description {
            doc.insert("description".into(), description.clone());
        }
        doc.insert("schema".into(), Value::Object(schema));
        Value::Object(doc)
    }
}

/// Fills `x-kind` for properties written as plain JSON Schema (`{"type": "integer"}`), so a
/// schema from elsewhere can be pasted in as it is.
fn infer_kinds(doc: &Value) -> Value {
    let mut doc = doc.clone();
    let Some(properties) = doc
        .pointer_mut("/schema/properties")
        .and_then(Value::as_object_mut)
    else {
        return doc;
    };
    for property in properties.values_mut() {
        let Some(p) = property.as_object_mut() else {
            continue;
        };
        if p.contains_key("x-kind") {
            continue;
        }
        let format = p.get("format").and_then(Value::as_str);
        let kind = match (p.get("type").and_then(Value::as_str), format) {
            (Some("string"), Some("date")) => "date",
            (Some("string"), Some("date-time")) => "datetime",
            (Some("string"), Some("email")) => "email",
            (Some("string"), Some("uri")) => "url",
            (Some("string"), _) if p.get("enum").is_some_and(Value::is_array) => "select",
            (Some("string"), _)
                if p.get("maxLength")
                    .and_then(Value::as_u64)
                    .is_some_and(|m| m > crate::fields::TEXT_MAX) =>
            {
                "long_text"
            }
            (Some("string"), _) => "text",
            (Some("integer"), _) => "integer",
            (Some("number"), _) => "decimal",
            (Some("boolean"), _) => "boolean",
            (Some("array"), _) if p.get("items").and_then(|i| i.get("enum")).is_some() => {
                "multi_select"
            }
            _ => continue,
        };
        if matches!(kind, "select" | "multi_select") && !p.contains_key("x-options") {
            let values = if kind == "select" {
                p.get("enum")
            } else {
                p.get("items").and_then(|i| i.get("enum"))
            };
            let options: Vec<Value> = values
                .and_then(Value::as_array)
                .map(|v| v.iter().map(|value| json!({ "value": value })).collect())
                .unwrap_or_default();
            p.insert("x-options".into(), Value::Array(options));
        }
        p.insert("x-kind".into(), json!(kind));
    }
    doc
}

fn parse_field(name: FieldName, property: &Value, required: bool) -> Result<FieldDef, Vec<String>> {
    let mut errors = Vec::new();
    let Some(p) = property.as_object() else {
        return Err(vec!["must be an object".into()]);
    };
    let Some(kind) = p
        .get("x-kind")
        .and_then(Value::as_str)
        .and_then(Kind::parse)
    else {
        return Err(vec!["x-kind is missing or unknown".into()]);
    };
    let field_type = kind.field_type();
    let flag = |key: &str| p.get(key).and_then(Value::as_bool).unwrap_or(false);
    let decimal = |key: &str, errors: &mut Vec<String>| -> Option<Decimal> {
        let v = p.get(key)?;
        let parsed =
            Decimal::from_str(&v.to_string()).or_else(|_| Decimal::from_scientific(&v.to_string()));
        match parsed {
            Ok(d) => Some(d),
            Err(_) => {
                errors.push(format!("{key} must be a number"));
                None
            }
        }
    };

    let result = p
        .get("x-result")
        .and_then(Value::as_str)
        .and_then(ResultKind::parse);
    let regex = match p.get("pattern").and_then(Value::as_str) {
        Some(pattern) if !kind.is_decimal() => match Regex::new(pattern) {
            Ok(re) => Some(re),
            Err(_) => {
                errors.push(format!(
                    "pattern '{pattern}' is not a valid regular expression"
                ));
                None
            }
        },
        _ => None,
    };
    let mut field = FieldDef {
        name,
        kind,
        required,
        unique: flag("x-unique"),
        indexed: flag("x-indexed"),
        scale: crate::fields::DEFAULT_SCALE,
        options: Vec::new(),
        target: None,
        autonumber: None,
        formula: None,
        formula_expr: None,
        result: None,
        declared_result: result,
        rollup: None,
        max_length: p.get("maxLength").and_then(Value::as_u64),
        min_length: p.get("minLength").and_then(Value::as_u64),
        minimum: decimal("minimum", &mut errors),
        maximum: decimal("maximum", &mut errors),
        regex,
        default: p.get("default").filter(|d| !d.is_null()).cloned(),
        schema: Map::new(),
    };
    // The kind reads its own settings (options, target, pattern, scale, formula, rollup).
    field_type.parse_settings(p, &mut field, &mut errors);

    // Keywords that belong to other kinds are refused rather than silently kept.
    let implied = field_type.implied(&field);
    for key in p.keys() {
        let allowed = COMMON_KEYWORDS.contains(&key.as_str())
            || field_type.settings().contains(&key.as_str())
            || implied.contains_key(key);
        if !allowed {
            errors.push(format!("{key} does not apply to a {} field", kind.as_str()));
        }
    }
    if field.unique && !field_type.can_be_unique() {
        errors.push(format!("a {} field cannot be unique", kind.as_str()));
    }
    if field.indexed && !field_type.can_be_indexed() {
        errors.push(format!("a {} field cannot be indexed", kind.as_str()));
    }
    if let (Some(min), Some(max)) = (field.min_length, field.max_length)
        && min > max
    {
        errors.push(format!("minLength {min} is greater than maxLength {max}"));
    }
    if let (Some(min), Some(max)) = (field.minimum, field.maximum)
        && min > max
    {
        errors.push(format!("minimum {min} is greater than maximum {max}"));
    }
    field_type.check(&field, &mut errors);
    if let Some(default) = &field.default {
        if kind.is_computed() {
            errors.push("a computed field cannot have a default".into());
        } else if let Err(e) = field_type.to_sql(&field, default) {
            errors.push(format!("default {e}"));
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }

    let mut schema: Map<String, Value> = p
        .iter()
        .filter(|(k, _)| !DERIVED_KEYWORDS.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    for (k, v) in implied {
        schema.insert(k, v);
    }
    field.schema = schema;
    Ok(field)
}

/// Resolves what a definition says about other entities: lookup targets exist, rollups point
/// at a lookup to this entity and aggregate a field that can be aggregated. Fills in the result
/// type of rollups. `others` finds the current definition of another entity.
pub fn resolve_references<'a>(
    def: &mut EntityDef,
    others: impl Fn(&EntityName) -> Option<&'a EntityDef>,
) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let snapshot = def.clone();
    let find = |name: &EntityName| -> Option<&EntityDef> {
        if *name == snapshot.name {
            Some(&snapshot)
        } else {
            others(name)
        }
    };
    for field in &mut def.fields {
        let path = format!("schema.properties.{}", field.name);
        if let Some(target) = &field.target
            && find(target).is_none()
        {
            errors.push(FieldError::new(
                format!("{path}.x-target"),
                format!("there is no entity '{target}'"),
            ));
        }
        let Some(spec) = field.rollup.clone() else {
            continue;
        };
        let Some(source) = find(&spec.entity) else {
            errors.push(FieldError::new(
                format!("{path}.x-rollup.entity"),
                format!("there is no entity '{}'", spec.entity),
            ));
            continue;
        };
        match source.field(spec.via.as_str()) {
            Some(via) if via.kind == Kind::Lookup && via.target.as_ref() == Some(&def.name) => {}
            Some(_) => {
                errors.push(FieldError::new(
                    format!("{path}.x-rollup.via"),
                    format!(
                        "{}.{} is not a lookup to {}",
                        spec.entity, spec.via, def.name
                    ),
                ));
                continue;
            }
            None => {
                errors.push(FieldError::new(
                    format!("{path}.x-rollup.via"),
                    format!("{} has no field '{}'", spec.entity, spec.via),
                ));
                continue;
            }
        }
        let (result, scale) = match (&spec.field, spec.op) {
            (_, RollupOp::Count) => (ResultKind::Integer, 0),
            (None, _) => continue,
            (Some(name), op) => {
                let Some(source_field) = source.field(name.as_str()) else {
                    errors.push(FieldError::new(
                        format!("{path}.x-rollup.field"),
                        format!("{} has no field '{name}'", spec.entity),
                    ));
                    continue;
                };
                match (rollup_input(source_field), op) {
                    (Some(kind @ (ResultKind::Integer | ResultKind::Decimal)), _) => {
                        (kind, source_field.scale)
                    }
                    (
                        Some(kind @ (ResultKind::Date | ResultKind::Datetime)),
                        RollupOp::Min | RollupOp::Max,
                    ) => (kind, 0),
                    _ => {
                        errors.push(FieldError::new(
                            format!("{path}.x-rollup.field"),
                            format!(
                                "{}.{name} cannot be aggregated with {}",
                                spec.entity,
                                op.as_str()
                            ),
                        ));
                        continue;
                    }
                }
            }
        };
        field.result = Some(result);
        field.scale = scale;
        for (k, v) in result.schema(scale) {
            field.schema.insert(k, v);
        }
        if result != ResultKind::Decimal {
            field.schema.remove("x-scale");
        }
    }
    errors.extend(resolve_formulas(&mut def.fields));
    errors
}

/// The type a field's value has inside a formula, if a formula can use it.
fn formula_input(field: &FieldDef) -> Option<Type> {
    Some(match field.kind {
        Kind::Integer => Type::Int,
        k if k.is_decimal() => Type::Dec,
        Kind::Boolean => Type::Bool,
        Kind::Date => Type::Date,
        Kind::Datetime => Type::DateTime,
        Kind::MultiSelect | Kind::MultiLookup => return None,
        Kind::Formula | Kind::Rollup => match field.result? {
            ResultKind::Text => Type::Text,
            ResultKind::Integer => Type::Int,
            ResultKind::Decimal => Type::Dec,
            ResultKind::Boolean => Type::Bool,
            ResultKind::Date => Type::Date,
            ResultKind::Datetime => Type::DateTime,
        },
        _ => Type::Text,
    })
}

fn result_of(t: Type) -> ResultKind {
    match t {
        Type::Int => ResultKind::Integer,
        Type::Dec => ResultKind::Decimal,
        Type::Bool => ResultKind::Boolean,
        Type::Date => ResultKind::Date,
        Type::DateTime => ResultKind::Datetime,
        Type::Text | Type::Null => ResultKind::Text,
    }
}

/// Whether a formula yielding `from` may be stored as `to` (an explicit `x-result`).
fn fits(from: Type, to: ResultKind) -> bool {
    match to {
        ResultKind::Text => true,
        ResultKind::Decimal => matches!(from, Type::Int | Type::Dec | Type::Null),
        ResultKind::Datetime => matches!(from, Type::Date | Type::DateTime | Type::Null),
        other => from == Type::Null || result_of(from) == other,
    }
}

/// Parses and type-checks every formula, in dependency order (a formula may use another
/// formula; cycles are refused), and settles each one's result type: `x-result` when given,
/// else what the expression yields.
fn resolve_formulas(fields: &mut [FieldDef]) -> Vec<FieldError> {
    let mut errors = Vec::new();
    for field in fields.iter_mut().filter(|f| f.kind == Kind::Formula) {
        field.result = field.declared_result;
        field.formula_expr = None;
    }
    let mut parsed: Vec<(usize, Expr)> = Vec::new();
    for (i, field) in fields.iter().enumerate() {
        if field.kind != Kind::Formula {
            continue;
        }
        let path = format!("schema.properties.{}.x-formula", field.name);
        match expression::parse(field.formula.as_deref().unwrap_or_default()) {
            Ok(expr) => parsed.push((i, expr)),
            Err(e) => errors.push(FieldError::new(path, e.to_string())),
        }
    }
    // Settle formulas whose inputs are settled, until none is left or no progress is made.
    let mut pending = parsed;
    while !pending.is_empty() {
        let before = pending.len();
        let mut waiting = Vec::new();
        for (i, expr) in pending {
            let unsettled = expr.fields().iter().any(|(path, _)| {
                fields.iter().any(|f| {
                    f.name.as_str() == path[0]
                        && f.kind == Kind::Formula
                        && f.formula_expr.is_none()
                })
            });
            if unsettled {
                waiting.push((i, expr));
                continue;
            }
            let path = format!("schema.properties.{}.x-formula", fields[i].name);
            let lookup = |name: &str| -> Option<Type> {
                fields
                    .iter()
                    .find(|f| f.name.as_str() == name)
                    .and_then(formula_input)
            };
            match eval::check(&expr, &lookup) {
                Ok(ty) => {
                    let field = &mut fields[i];
                    let result = match field.result {
                        Some(declared) if fits(ty, declared) => declared,
                        Some(declared) => {
                            errors.push(FieldError::new(
                                format!("schema.properties.{}.x-result", field.name),
                                format!(
                                    "the formula yields a {}, which cannot be stored as {}",
                                    ty.name(),
                                    declared.as_str()
                                ),
                            ));
                            declared
                        }
                        None => result_of(ty),
                    };
                    field.result = Some(result);
                    for (k, v) in result.schema(field.scale) {
                        field.schema.insert(k, v);
                    }
                    if result != ResultKind::Decimal {
                        field.schema.remove("x-scale");
                    }
                    field.formula_expr = Some(expr);
                }
                Err(e) => {
                    errors.push(FieldError::new(path, e.to_string()));
                    // Settled as text so fields using it can still be checked.
                    fields[i].result.get_or_insert(ResultKind::Text);
                    fields[i].formula_expr = Some(expr);
                }
            }
        }
        if waiting.len() == before {
            for (i, _) in &waiting {
                errors.push(FieldError::new(
                    format!("schema.properties.{}.x-formula", fields[*i].name),
                    "formulas refer to each other in a circle",
                ));
            }
            break;
        }
        pending = waiting;
    }
    errors
}

/// The value type a field contributes to an aggregate.
fn rollup_input(field: &FieldDef) -> Option<ResultKind> {
    match field.kind {
        Kind::Integer => Some(ResultKind::Integer),
        k if k.is_decimal() => Some(ResultKind::Decimal),
        Kind::Date => Some(ResultKind::Date),
        Kind::Datetime => Some(ResultKind::Datetime),
        Kind::Formula | Kind::Rollup => field.result,
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(properties: Value, required: Value) -> Value {
        json!({
            "name": "project",
            "label": {"en": "Project", "zh-CN": "项目"},
            "schema": {"type": "object", "properties": properties, "required": required}
        })
    }

    #[test]
    fn completes_implied_keywords() {
        let def = EntityDef::parse(&doc(
            json!({
                "title": {"x-kind": "text", "x-indexed": true},
                "budget": {"x-kind": "money", "minimum": 0},
                "stage": {"x-kind": "select", "x-options": [{"value": "new"}, {"value": "won"}]},
                "code": {"x-kind": "autonumber", "x-pattern": "PRJ-{000000}"}
            }),
            json!(["title"]),
        ))
        .unwrap();
        let d = def.document();
        assert_eq!(d["schema"]["properties"]["title"]["type"], "string");
        assert_eq!(d["schema"]["properties"]["title"]["maxLength"], 2000);
        assert_eq!(d["schema"]["properties"]["budget"]["x-scale"], 2);
        assert_eq!(
            d["schema"]["properties"]["stage"]["enum"],
            json!(["new", "won"])
        );
        assert_eq!(d["schema"]["properties"]["code"]["readOnly"], true);
        assert_eq!(d["schema"]["required"], json!(["title"]));
        // The completed document parses to the same thing.
        let again = EntityDef::parse(&d).unwrap();
        assert_eq!(again.document(), d);
    }

    #[test]
    fn reports_every_problem_with_its_path() {
        let errors = EntityDef::parse(&doc(
            json!({
                "a": {"x-kind": "text", "x-options": [{"value": "x"}]},
                "b": {"x-kind": "select"},
                "c": {"x-kind": "decimal", "x-scale": 12},
                "d": {"x-kind": "lookup"}
            }),
            json!(["zzz"]),
        ))
        .unwrap_err();
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert!(
            fields.iter().any(|f| f.contains("properties.a")),
            "{errors:?}"
        );
        assert!(
            fields.iter().any(|f| f.contains("properties.b")),
            "{errors:?}"
        );
        assert!(
            fields.iter().any(|f| f.contains("properties.c")),
            "{errors:?}"
        );
        assert!(
            fields.iter().any(|f| f.contains("properties.d")),
            "{errors:?}"
        );
    }

    #[test]
    fn infers_kinds_from_plain_json_schema() {
        let def = EntityDef::parse(&doc(
            json!({
                "n": {"type": "integer"},
                "when": {"type": "string", "format": "date"},
                "size": {"type": "string", "enum": ["s", "m"]}
            }),
            json!([]),
        ))
        .unwrap();
        assert_eq!(def.field("n").unwrap().kind, Kind::Integer);
        assert_eq!(def.field("when").unwrap().kind, Kind::Date);
        assert_eq!(def.field("size").unwrap().options.len(), 2);
    }

    #[test]
    fn bad_defaults_are_refused() {
        let errors = EntityDef::parse(&doc(
            json!({"stage": {"x-kind": "select", "x-options": [{"value": "a"}], "default": "b"}}),
            json!([]),
        ))
        .unwrap_err();
        assert!(errors[0].message.contains("default"), "{errors:?}");
    }
}
