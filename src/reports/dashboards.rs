//! Dashboards as data: a title, one date range for every card, and cards (a report query, a
//! chart kind, a measure, a title). Shared (everyone signed in sees them; changed by those who
//! manage the schema) or personal (their owner only); every save is a new version.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value};

use super::CardSpec;
use crate::auth::{Access, Special};
use crate::context::Context;
use crate::error::{Error, FieldError, Result};
use crate::store::dashboards::{self as store, DashboardRow};
use crate::store::versions::{self, DocumentKind, SavedVersion};
use crate::wire::{Document, Items, timestamp};

const KEYS: &[&str] = &["name", "title", "shared", "range", "cards", "version"];
/// What `GET` answers besides the document, accepted back (and ignored) on `PUT`.
const READ_ONLY: &[&str] = &["id", "created_at", "updated_at"];
const MAX_CARDS: usize = 40;

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && name.len() <= 64
}

/// Checks a dashboard document; returns it with only its own keys.
pub fn check(doc: &Value) -> Result<Map<String, Value>> {
    let Some(map) = doc.as_object() else {
        return Err(Error::bad_request("a dashboard is a JSON object"));
    };
    let mut errors = Vec::new();
    for key in map.keys() {
        if !KEYS.contains(&key.as_str()) && !READ_ONLY.contains(&key.as_str()) {
            errors.push(FieldError::new(key, "is not a dashboard property"));
        }
    }
    match map.get("name").and_then(Value::as_str) {
        Some(n) if valid_name(n) => {}
        _ => errors.push(FieldError::new(
            "name",
            "is required: lower-case letters, digits and _, starting with a letter",
        )),
    }
    if let Some(range) = map.get("range")
        && !range.is_null()
    {
        let ok = range.as_object().is_some_and(|r| {
            r.keys()
                .all(|k| ["from", "to", "relative"].contains(&k.as_str()))
                && match (r.get("relative"), r.get("from"), r.get("to")) {
                    (Some(Value::String(rel)), None, None) => {
                        super::dates::RELATIVE.contains(&rel.as_str())
                    }
                    (None, Some(Value::String(f)), Some(Value::String(t))) => {
                        crate::fields::parse_date_or_datetime(f).is_some()
                            && crate::fields::parse_date_or_datetime(t).is_some()
                    }
                    _ => false,
                }
        });
        if !ok {
            errors.push(FieldError::new(
                "range",
                "is {\"relative\": \"this_year\" …} or {\"from\": \"YYYY-MM-DD\", \"to\": \"YYYY-MM-DD\"}",
            ));
        }
    }
    let cards = map.get("cards").and_then(Value::as_array);
    match cards {
        None => errors.push(FieldError::new("cards", "is required: a list of cards")),
        Some(cards) if cards.len() > MAX_CARDS => errors.push(FieldError::new(
            "cards",
            format!("a dashboard holds at most {MAX_CARDS} cards"),
        )),
        Some(cards) => {
            for (i, card) in cards.iter().enumerate() {
                let at = format!("cards[{i}]");
                let mut card = card.clone();
                if let Some(c) = card.as_object_mut() {
                    c.remove("width");
                }
                match serde_json::from_value::<CardSpec>(card) {
                    Err(e) => errors.push(FieldError::new(&at, e.to_string())),
                    Ok(spec) => {
                        if crate::charts::Kind::parse(&spec.chart).is_none() {
                            errors.push(FieldError::new(
                                format!("{at}.chart"),
                                format!("'{}' is not a chart kind", spec.chart),
                            ));
                        }
                        if let Err(e) = super::ReportSpec::parse(&spec.query) {
                            errors.push(FieldError::new(format!("{at}.query"), e.to_string()));
                        }
                    }
                }
            }
        }
    }
    if !errors.is_empty() {
        return Err(Error::invalid("the dashboard is not valid", errors));
    }
    let mut out = map.clone();
    for key in READ_ONLY.iter().chain(&["version"]) {
        out.remove(*key);
    }
    Ok(out)
}

fn may_change(access: &Access, row: &DashboardRow) -> bool {
    match &row.owner {
        None => access.is_admin() || access.has(Special::ManageSchema),
        Some(owner) => access.actor_id() == Some(owner.as_str()),
    }
}

fn may_see(access: &Access, row: &DashboardRow) -> bool {
    match &row.owner {
        None => true,
        Some(owner) => access.actor_id() == Some(owner.as_str()) || access.actor().is_none(),
    }
}

/// A dashboard: its document (`title`, `cards`, `range`…) and where it stands.
pub type DashboardView = Document<DashboardMeta>;

#[derive(Debug, Clone, Serialize)]
pub struct DashboardMeta {
    pub id: String,
    pub name: String,
    /// Everyone's (true) or the owner's alone.
    pub shared: bool,
    pub version: i64,
    #[serde(with = "timestamp")]
    pub created_at: DateTime<Utc>,
    #[serde(with = "timestamp")]
    pub updated_at: DateTime<Utc>,
}

pub fn view(row: &DashboardRow) -> DashboardView {
    let meta = DashboardMeta {
        id: row.id.clone(),
        name: row.name.clone(),
        shared: row.owner.is_none(),
        version: row.version,
        created_at: row.created_at,
        updated_at: row.updated_at,
    };
    Document::new(row.document.clone(), meta)
}

pub async fn list(ctx: &Context, access: &Access) -> Result<Items<DashboardView>> {
    let rows = store::list(&mut &ctx.db, access.actor_id()).await?;
    Ok(Items::of(rows.iter().filter(|r| may_see(access, r)), view))
}

pub async fn get(ctx: &Context, access: &Access, id: &str) -> Result<DashboardRow> {
    store::by_id(&mut &ctx.db, id)
        .await?
        .filter(|r| may_see(access, r))
        .ok_or_else(|| Error::not_found(format!("dashboard {id}")))
}

/// Creates a dashboard, shared (`"shared": true`) or the caller's own.
pub async fn create(ctx: &Context, access: &Access, doc: &Value) -> Result<DashboardRow> {
    let mut checked = check(doc)?;
    let shared = checked
        .remove("shared")
        .and_then(|s| s.as_bool())
        .unwrap_or(false);
    let owner = if shared {
        None
    } else {
        Some(
            access
                .actor_id()
                .ok_or_else(|| Error::bad_request("a personal dashboard needs a signed-in user"))?
                .to_owned(),
        )
    };
    let now = Utc::now();
    let name = checked["name"].as_str().unwrap_or_default().to_owned();
    let row = DashboardRow {
        id: uuid::Uuid::now_v7().to_string(),
        name: name.clone(),
        owner,
        document: Value::Object(checked),
        version: 1,
        created_by: access.actor_id().map(str::to_owned),
        created_at: now,
        updated_at: now,
    };
    if !may_change(access, &row) {
        return Err(Error::Forbidden(
            "sharing a dashboard needs the manage_schema permission".into(),
        ));
    }
    if store::by_name(&mut &ctx.db, row.owner.as_deref(), &name)
        .await?
        .is_some()
    {
        return Err(Error::conflict(
            format!("a dashboard named {name} exists"),
            vec![FieldError::new("name", "is taken")],
        ));
    }
    let mut tx = ctx.db.begin().await?;
    store::save(&mut tx, &row, None, access.actor_id()).await?;
    tx.commit().await?;
    Ok(row)
}

/// Replaces a dashboard's document (its sharing stays); `version` in the body, when given,
/// must be the current one.
pub async fn replace(
    ctx: &Context,
    access: &Access,
    id: &str,
    doc: &Value,
) -> Result<DashboardRow> {
    let current = get(ctx, access, id).await?;
    if !may_change(access, &current) {
        return Err(Error::Forbidden("you may not change this dashboard".into()));
    }
    if let Some(v) = doc.get("version").and_then(Value::as_i64)
        && v != current.version
    {
        return Err(Error::PreconditionFailed(format!(
            "the dashboard is at version {}, not {v}",
            current.version
        )));
    }
    let mut checked = check(doc)?;
    checked.remove("shared");
    let row = DashboardRow {
        name: checked["name"].as_str().unwrap_or_default().to_owned(),
        document: Value::Object(checked),
        version: current.version + 1,
        updated_at: Utc::now(),
        ..current.clone()
    };
    let mut tx = ctx.db.begin().await?;
    if !store::save(&mut tx, &row, Some(current.version), access.actor_id()).await? {
        return Err(Error::PreconditionFailed(
            "the dashboard changed meanwhile; reload it".into(),
        ));
    }
    tx.commit().await?;
    Ok(row)
}

pub async fn delete(ctx: &Context, access: &Access, id: &str) -> Result<()> {
    let current = get(ctx, access, id).await?;
    if !may_change(access, &current) {
        return Err(Error::Forbidden("you may not delete this dashboard".into()));
    }
    let mut tx = ctx.db.begin().await?;
    store::delete(&mut tx, id).await?;
    tx.commit().await?;
    Ok(())
}

pub async fn versions(ctx: &Context, access: &Access, id: &str) -> Result<Items<SavedVersion>> {
    get(ctx, access, id).await?;
    let items = versions::list(&mut &ctx.db, DocumentKind::Dashboard, id).await?;
    Ok(Items { items })
}

/// The dashboard's range, or the one a viewer chose (`from`/`to` or `relative`).
pub fn range_of(row: &DashboardRow, chosen: Option<Value>) -> Option<Value> {
    chosen.or_else(|| row.document.get("range").filter(|r| !r.is_null()).cloned())
}

/// One card drawn as SVG under the dashboard's (or the chosen) range.
pub async fn card(
    ctx: &Context,
    access: &Access,
    id: &str,
    index: usize,
    chosen: Option<Value>,
) -> Result<String> {
    let row = get(ctx, access, id).await?;
    card_of(ctx, access, &row, index, chosen).await
}

/// [`card`] of a dashboard already read (the page draws every card of the one it read).
pub async fn card_of(
    ctx: &Context,
    access: &Access,
    row: &DashboardRow,
    index: usize,
    chosen: Option<Value>,
) -> Result<String> {
    let card = row.document["cards"]
        .get(index)
        .cloned()
        .ok_or_else(|| Error::not_found(format!("card {index} of dashboard {}", row.id)))?;
    let mut card = card;
    if let Some(c) = card.as_object_mut() {
        c.remove("width");
    }
    let spec: CardSpec = serde_json::from_value(card)
        .map_err(|e| Error::bad_request(format!("card {index}: {e}")))?;
    let range = range_of(row, chosen);
    super::card_svg(ctx, access, &spec, range.as_ref()).await
}
