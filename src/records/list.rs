//! Listing records: filter, search, sort, keyset pages, projection, expansion, counts and
//! facets — checked against the schema before anything reaches the database.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::Utc;
use serde_json::{Value, json};

use super::filter::{self, FilterContext};
use super::output::{self, Shape};
use super::service::{Target, target};
use crate::app::App;
use crate::auth::{Access, Action};
use crate::error::{Error, Result};
use crate::fields::{Kind, stored_to_json};
use crate::schema::compiled::CompiledEntity;
use crate::schema::names::SYSTEM_FIELDS;
use crate::store::Executor;
use crate::store::Row;
use crate::store::query::{self, After, Condition, Select, SortKey};
use crate::store::records::{Projection, pos};
use crate::store::value::json_to_stored;

/// Page size when the caller does not say.
pub const DEFAULT_LIMIT: i64 = 50;
/// Largest page a caller may ask for.
pub const MAX_LIMIT: i64 = 500;

/// The query parameters of `GET /api/records/{entity}`.
#[derive(Debug, Default, Clone)]
pub struct ListParams {
    pub filter: Option<String>,
    pub sort: Option<String>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
    pub fields: Option<String>,
    pub expand: Option<String>,
    pub q: Option<String>,
    pub trashed: bool,
    pub count: bool,
    pub facet: Option<String>,
}

impl ListParams {
    pub const NAMES: &'static [&'static str] = &[
        "filter", "sort", "limit", "cursor", "fields", "expand", "q", "trashed", "count", "facet",
    ];

    /// Reads the parameters from a query string's pairs; unknown names are refused.
    pub fn from_pairs(pairs: &[(String, String)]) -> Result<ListParams> {
        let mut params = ListParams::default();
        for (name, value) in pairs {
            let flag = |v: &str| match v {
                "true" | "1" | "" => Ok(true),
                "false" | "0" => Ok(false),
                _ => Err(Error::bad_parameter(name, "must be true or false")),
            };
            match name.as_str() {
                "filter" => params.filter = Some(value.clone()),
                "sort" => params.sort = Some(value.clone()),
                "limit" => {
                    params.limit = Some(value.parse().map_err(|_| {
                        Error::bad_parameter(
                            "limit",
                            format!("must be a whole number, not '{value}'"),
                        )
                    })?)
                }
                "cursor" => params.cursor = Some(value.clone()),
                "fields" => params.fields = Some(value.clone()),
                "expand" => params.expand = Some(value.clone()),
                "q" => params.q = Some(value.clone()),
                "trashed" => params.trashed = flag(value)?,
                "count" => params.count = flag(value)?,
                "facet" => params.facet = Some(value.clone()),
                other => {
                    return Err(Error::bad_parameter(
                        other,
                        format!("is not a parameter (use {})", Self::NAMES.join(", ")),
                    ));
                }
            }
        }
        Ok(params)
    }
}

/// The filter (and search) of a list or bulk change, checked and compiled.
pub fn condition(
    app_catalog: &crate::schema::compiled::Catalog,
    entity: &CompiledEntity,
    access: &Access,
    filter: Option<&str>,
    q: Option<&str>,
) -> Result<Condition> {
    let mut parts = Vec::new();
    if let Some(source) = filter.filter(|f| !f.trim().is_empty()) {
        let ctx = FilterContext {
            catalog: app_catalog,
            entity,
            now: Utc::now(),
            access,
        };
        parts.push(filter::compile(source, &ctx).map_err(|e| Error::bad_expression("filter", &e))?);
    }
    if let Some(q) = q.filter(|q| !q.trim().is_empty()) {
        parts.push(filter::search(q, entity, access));
    }
    Ok(match parts.len() {
        0 => Condition::True,
        1 => parts.pop().unwrap_or(Condition::True),
        _ => Condition::And(parts),
    })
}

/// The sort as a string, so a cursor made under one order is not used under another.
fn signature(keys: &[SortKey], id_desc: bool) -> String {
    let mut parts: Vec<String> = keys
        .iter()
        .map(|k| format!("{}{}", if k.desc { "-" } else { "+" }, k.column.as_str()))
        .collect();
    parts.push(format!("{}id", if id_desc { "-" } else { "+" }));
    parts.join(",")
}

fn encode_cursor(signature: &str, keys: &[SortKey], projection: &Projection, row: &Row) -> String {
    let values: Vec<Value> = keys
        .iter()
        .map(|k| {
            let index = sort_index(projection, k);
            index
                .and_then(|i| row.get(i).cloned())
                .map_or(Value::Null, stored_to_json)
        })
        .collect();
    let id = row[pos::ID].as_str().unwrap_or_default();
    let payload = json!({"s": signature, "v": values, "i": id});
    URL_SAFE_NO_PAD.encode(payload.to_string())
}

fn decode_cursor(cursor: &str, signature: &str, keys: &[SortKey]) -> Result<After> {
    let bad = || Error::bad_parameter("cursor", "is not a cursor this list gave out");
    let bytes = URL_SAFE_NO_PAD.decode(cursor.trim()).map_err(|_| bad())?;
    let payload: Value = serde_json::from_slice(&bytes).map_err(|_| bad())?;
    if payload["s"].as_str() != Some(signature) {
        return Err(Error::bad_parameter(
            "cursor",
            "belongs to a list sorted another way; start again without it",
        ));
    }
    let values = payload["v"].as_array().ok_or_else(bad)?;
    if values.len() != keys.len() {
        return Err(bad());
    }
    let values = keys
        .iter()
        .zip(values)
        .map(|(k, v)| json_to_stored(v, k.ty).ok_or_else(bad))
        .collect::<Result<Vec<_>>>()?;
    let id = payload["i"].as_str().ok_or_else(bad)?;
    uuid::Uuid::parse_str(id).map_err(|_| bad())?;
    Ok(After {
        values,
        id: id.to_owned(),
    })
}

/// Where a sort key's column sits in the projection's rows.
fn sort_index(projection: &Projection, key: &SortKey) -> Option<usize> {
    match key.column.as_str() {
        "created_at" => Some(pos::CREATED_AT),
        "updated_at" => Some(pos::UPDATED_AT),
        "version" => Some(pos::VERSION),
        name => projection
            .fields
            .iter()
            .find(|(n, _)| n.as_str() == name)
            .map(|(_, i)| *i),
    }
}

/// `?fields=`: the keys to show, and the columns to read for them (plus sort keys).
fn shape(
    spec: Option<&str>,
    entity: &CompiledEntity,
    access: &Access,
    keys: &[SortKey],
) -> Result<(Shape, Projection)> {
    let readable = Shape::readable(entity, access);
    let Some(spec) = spec.filter(|s| !s.trim().is_empty()) else {
        return Ok((readable, entity.layout.full.clone()));
    };
    let mut names = std::collections::HashSet::new();
    for name in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let system = SYSTEM_FIELDS.contains(&name) && name != "deleted_at";
        if !system && (!readable.shows(name) || entity.def.field(name).is_none()) {
            return Err(Error::bad_parameter(
                "fields",
                format!("{} has no field '{name}'", entity.def.name),
            ));
        }
        names.insert(name.to_owned());
    }
    let projection = Projection::of(entity.def.fields.iter().filter(|f| {
        names.contains(f.name.as_str()) || keys.iter().any(|k| k.column.as_str() == f.name.as_str())
    }));
    Ok((readable.only(names), projection))
}

pub async fn list(app: &App, access: &Access, entity: &str, params: &ListParams) -> Result<Value> {
    let target = target(app, access, entity).await?;
    page(&mut &app.db, &target, access, params).await
}

/// One page of a list, read through `ex` (the pools, or a script run's transaction).
pub(crate) async fn page(
    ex: &mut impl Executor,
    target: &Target,
    access: &Access,
    params: &ListParams,
) -> Result<Value> {
    let entity = &target.entity;
    let name = entity.def.name.as_str();
    access.require_action(name, Action::Read)?;
    let limit = match params.limit {
        None => DEFAULT_LIMIT,
        Some(n) if (1..=MAX_LIMIT).contains(&n) => n,
        Some(n) => {
            return Err(Error::bad_parameter(
                "limit",
                format!("must be between 1 and {MAX_LIMIT}, not {n}"),
            ));
        }
    };
    let filter = Condition::And(vec![
        access.records(name, Action::Read),
        condition(
            &target.catalog,
            entity,
            access,
            params.filter.as_deref(),
            params.q.as_deref(),
        )?,
    ]);
    let (keys, id_desc) = match params.sort.as_deref().filter(|s| !s.trim().is_empty()) {
        Some(spec) => {
            filter::sort(spec, entity, access).map_err(|m| Error::bad_parameter("sort", m))?
        }
        None => (Vec::new(), true),
    };
    let signature = signature(&keys, id_desc);
    let after = match params.cursor.as_deref().filter(|c| !c.is_empty()) {
        Some(cursor) => Some(decode_cursor(cursor, &signature, &keys)?),
        None => None,
    };
    let (shape, projection) = shape(params.fields.as_deref(), entity, access, &keys)?;
    let expansions = match params.expand.as_deref() {
        Some(spec) => output::expansions(spec, entity, &target.catalog, access)?,
        None => Vec::new(),
    };
    let facets = match params.facet.as_deref() {
        Some(spec) => facet_fields(spec, entity, access)?,
        None => Vec::new(),
    };

    let select = Select {
        table: &entity.layout.table,
        tag: &entity.layout.tag,
        projection: &projection,
        filter: filter.clone(),
        trashed: params.trashed,
        sort: keys.clone(),
        id_desc,
        after,
        limit: limit + 1,
    };
    let mut rows = query::select(ex, &select).await?;
    let next_cursor = if rows.len() as i64 > limit {
        rows.truncate(limit as usize);
        rows.last()
            .map(|last| encode_cursor(&signature, &keys, &projection, last))
    } else {
        None
    };
    let extras = output::extras(ex, entity, &projection, &rows, &shape, &expansions).await?;
    let items: Vec<Value> = rows
        .into_iter()
        .map(|row| output::record(entity, &projection, row, &shape, &extras))
        .collect();
    let mut page = json!({"items": items, "next_cursor": next_cursor});
    if params.count {
        page["total"] =
            json!(query::count(ex, &entity.layout.table, &filter, params.trashed).await?);
    }
    if !facets.is_empty() {
        let mut out = serde_json::Map::new();
        for facet in facets {
            let counts = match facet {
                Facet::Tags => query::tag_facet(
                    ex,
                    &entity.layout.table,
                    entity.def.name.as_str(),
                    &filter,
                    params.trashed,
                )
                .await?
                .into_iter()
                .map(|(tag, n)| json!({"value": tag, "count": n}))
                .collect::<Vec<_>>(),
                Facet::Column(_, ref column, ty) => query::value_facet(
                    ex,
                    &entity.layout.table,
                    column,
                    ty,
                    &filter,
                    params.trashed,
                )
                .await?
                .into_iter()
                .map(|(v, n)| json!({"value": stored_to_json(v), "count": n}))
                .collect::<Vec<_>>(),
            };
            let key = match &facet {
                Facet::Tags => "tags".to_owned(),
                Facet::Column(name, ..) => name.clone(),
            };
            out.insert(key, Value::Array(counts));
        }
        page["facets"] = Value::Object(out);
    }
    Ok(page)
}

enum Facet {
    Tags,
    Column(String, crate::store::Ident, crate::store::ColumnType),
}

/// `?facet=tags,stage`: tags, and select, boolean or lookup fields.
fn facet_fields(spec: &str, entity: &CompiledEntity, access: &Access) -> Result<Vec<Facet>> {
    let mut out = Vec::new();
    for name in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        if name == "tags" {
            out.push(Facet::Tags);
            continue;
        }
        let field = entity
            .def
            .field(name)
            .filter(|f| access.can_read_field(entity.def.name.as_str(), f.name.as_str()))
            .ok_or_else(|| {
                Error::bad_parameter(
                    "facet",
                    format!("{} has no field '{name}'", entity.def.name),
                )
            })?;
        match (field.kind, field.column_type()) {
            (
                Kind::Select | Kind::Boolean | Kind::Lookup | Kind::User | Kind::Department,
                Some(ty),
            ) => {
                out.push(Facet::Column(
                    name.to_owned(),
                    crate::store::Ident::column(&field.name),
                    ty,
                ));
            }
            _ => {
                return Err(Error::bad_parameter(
                    "facet",
                    format!("{name} is not a select, yes/no or lookup field"),
                ));
            }
        }
    }
    Ok(out)
}
