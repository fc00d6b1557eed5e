//! Listing records: filter, search, sort, keyset pages, projection, expansion, counts and
//! facets — checked against the schema before anything reaches the database.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::Utc;
use serde_json::{Value, json};

use super::filter::{self, FilterContext};
use super::output::{self, Shape};
use super::service::{Target, target};
use crate::auth::{Access, Action};
use crate::context::Context;
use crate::error::{Error, Result};
use crate::fields::stored_to_json;
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

/// The one read query: the caller's scope and hidden fields, a filter, a search term, sort,
/// projection, expansion and paging, joined into one statement per page. Lists, counts, script
/// reads, bulk changes, exports, reports and search build on it.
#[derive(Clone)]
pub struct ReadQuery<'a> {
    pub target: &'a Target,
    pub access: &'a Access,
    /// Whose records: the read scope by default; a bulk change asks for its action's scope.
    pub scope: Action,
    pub filter: Option<&'a str>,
    pub q: Option<&'a str>,
    pub sort: Option<&'a str>,
    pub fields: Option<&'a str>,
    pub expand: Option<&'a str>,
    pub cursor: Option<&'a str>,
    pub limit: i64,
    pub trashed: bool,
    /// A condition built in code (drill-downs, id ranges), and-ed with the rest.
    pub also: Option<Condition>,
}

/// One page of records, as clients see them.
#[derive(Debug, Clone)]
pub struct Page {
    pub items: Vec<Value>,
    pub next_cursor: Option<String>,
}

/// A read query checked against the schema and the caller's permissions, ready to run.
struct Compiled {
    filter: Condition,
    keys: Vec<SortKey>,
    id_desc: bool,
    signature: String,
    shape: Shape,
    projection: Projection,
}

impl<'a> ReadQuery<'a> {
    /// Every readable record, newest first, a page of [`DEFAULT_LIMIT`].
    pub fn new(target: &'a Target, access: &'a Access) -> ReadQuery<'a> {
        ReadQuery {
            target,
            access,
            scope: Action::Read,
            filter: None,
            q: None,
            sort: None,
            fields: None,
            expand: None,
            cursor: None,
            limit: DEFAULT_LIMIT,
            trashed: false,
            also: None,
        }
    }

    /// The query of `GET /api/records/{entity}` (the limit checked).
    pub fn from_params(
        target: &'a Target,
        access: &'a Access,
        params: &'a ListParams,
    ) -> Result<ReadQuery<'a>> {
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
        Ok(ReadQuery {
            filter: params.filter.as_deref(),
            q: params.q.as_deref(),
            sort: params.sort.as_deref(),
            fields: params.fields.as_deref(),
            expand: params.expand.as_deref(),
            cursor: params.cursor.as_deref(),
            limit,
            trashed: params.trashed,
            ..ReadQuery::new(target, access)
        })
    }

    /// The records' condition: the caller's scope, the filter, the search term, and `also`.
    fn condition(&self) -> Result<Condition> {
        let entity = &self.target.entity;
        let name = entity.def.name.as_str();
        self.access.require_action(name, Action::Read)?;
        let mut parts = vec![
            self.access.records(name, self.scope),
            condition(
                &self.target.catalog,
                entity,
                self.access,
                self.filter,
                self.q,
            )?,
        ];
        if self.scope != Action::Read {
            parts.push(self.access.records(name, Action::Read));
        }
        parts.extend(self.also.clone());
        Ok(Condition::And(parts))
    }

    fn compile(&self) -> Result<Compiled> {
        let entity = &self.target.entity;
        let filter = self.condition()?;
        let (keys, id_desc) = match self.sort.filter(|s| !s.trim().is_empty()) {
            Some(spec) => filter::sort(spec, entity, self.access)
                .map_err(|m| Error::bad_parameter("sort", m))?,
            None => (Vec::new(), true),
        };
        let signature = signature(&keys, id_desc);
        let (shape, projection) = shape(self.fields, entity, self.access, &keys)?;
        Ok(Compiled {
            filter,
            keys,
            id_desc,
            signature,
            shape,
            projection,
        })
    }

    /// One page, read through `ex` (the pools, or a script run's transaction).
    pub async fn page(&self, ex: &mut impl Executor) -> Result<Page> {
        let entity = &self.target.entity;
        let compiled = self.compile()?;
        let after = match self.cursor.filter(|c| !c.is_empty()) {
            Some(cursor) => Some(decode_cursor(cursor, &compiled.signature, &compiled.keys)?),
            None => None,
        };
        let expansions = match self.expand {
            Some(spec) => output::expansions(spec, entity, &self.target.catalog, self.access)?,
            None => Vec::new(),
        };
        let select = Select {
            table: &entity.layout.table,
            tag: &entity.layout.tag,
            projection: &compiled.projection,
            filter: compiled.filter.clone(),
            trashed: self.trashed,
            sort: compiled.keys.clone(),
            id_desc: compiled.id_desc,
            after,
            limit: self.limit + 1,
        };
        let mut rows = query::select(ex, &select).await?;
        let next_cursor = if rows.len() as i64 > self.limit {
            rows.truncate(self.limit as usize);
            rows.last().map(|last| {
                encode_cursor(
                    &compiled.signature,
                    &compiled.keys,
                    &compiled.projection,
                    last,
                )
            })
        } else {
            None
        };
        let extras = output::extras(
            ex,
            entity,
            &compiled.projection,
            &rows,
            &compiled.shape,
            &expansions,
        )
        .await?;
        let items = rows
            .into_iter()
            .map(|row| output::record(entity, &compiled.projection, row, &compiled.shape, &extras))
            .collect();
        Ok(Page { items, next_cursor })
    }

    /// How many records match (only when a caller asks: it reads every match).
    pub async fn count(&self, ex: &mut impl Executor) -> Result<i64> {
        let filter = self.condition()?;
        query::count(ex, &self.target.entity.layout.table, &filter, self.trashed).await
    }

    /// The ids of the matching records in id order, at most `max`.
    pub async fn ids(&self, ex: &mut impl Executor, max: i64) -> Result<Vec<String>> {
        let filter = self.condition()?;
        query::matching_ids(ex, &self.target.entity.layout.table, &filter, max).await
    }

    /// The condition the query stands for (facets and reports group over it).
    pub fn matching(&self) -> Result<Condition> {
        self.condition()
    }
}

pub async fn list(
    ctx: &Context,
    access: &Access,
    entity: &str,
    params: &ListParams,
) -> Result<Value> {
    let target = target(ctx, access, entity).await?;
    page(&mut &ctx.db, &target, access, params).await
}

/// One page of a list as `GET /api/records/{entity}` answers it (with `total` and `facets`
/// when asked), read through `ex`.
pub(crate) async fn page(
    ex: &mut impl Executor,
    target: &Target,
    access: &Access,
    params: &ListParams,
) -> Result<Value> {
    let entity = &target.entity;
    let query = ReadQuery::from_params(target, access, params)?;
    let facets = match params.facet.as_deref() {
        Some(spec) => facet_fields(spec, entity, access)?,
        None => Vec::new(),
    };
    let Page { items, next_cursor } = query.page(ex).await?;
    let mut page = json!({"items": items, "next_cursor": next_cursor});
    if params.count {
        page["total"] = json!(query.count(ex).await?);
    }
    if !facets.is_empty() {
        let filter = query.matching()?;
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
        match (field.capabilities().groupable, field.column_type()) {
            (true, Some(ty)) if field.kind.is_choice() => {
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
