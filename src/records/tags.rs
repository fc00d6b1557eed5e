//! Tags: shared, coloured labels any record can carry (`tags` on a record; `tags ~ "vip"` in a
//! filter; `facet=tags` on a list).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::input::MAX_TAG;
use crate::context::Context;
use crate::error::{Error, FieldError, Result};
use crate::store::tags;
use crate::wire::{Items, timestamp};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TagRequest {
    pub name: String,
    #[serde(default)]
    pub color: Option<String>,
}

fn is_color(c: &str) -> bool {
    let hex = c.strip_prefix('#').unwrap_or("");
    matches!(hex.len(), 3 | 6) && hex.chars().all(|ch| ch.is_ascii_hexdigit())
}

/// A tag as `GET /api/tags` lists it.
#[derive(Debug, Clone, Serialize)]
pub struct TagView {
    pub name: String,
    pub color: Option<String>,
    /// How many records carry it (live or in the trash).
    pub records: i64,
    #[serde(with = "timestamp")]
    pub created_at: DateTime<Utc>,
}

/// A tag just saved.
#[derive(Debug, Clone, Serialize)]
pub struct SavedTag {
    pub name: String,
    pub color: Option<String>,
}

pub async fn list(ctx: &Context) -> Result<Items<TagView>> {
    let all = tags::list(&mut &ctx.db).await?;
    Ok(Items::of(all, |t| TagView {
        name: t.name,
        color: t.color,
        records: t.records,
        created_at: t.created_at,
    }))
}

/// Creates a tag or changes its colour.
pub async fn save(ctx: &Context, request: &TagRequest) -> Result<SavedTag> {
    let name = request.name.trim();
    let mut problems = Vec::new();
    if name.is_empty() || name.chars().count() > MAX_TAG {
        problems.push(FieldError::new(
            "name",
            format!("must have 1 to {MAX_TAG} characters"),
        ));
    }
    if let Some(color) = &request.color
        && !is_color(color)
    {
        problems.push(FieldError::new(
            "color",
            "must be a colour like #c00 or #2e7d32",
        ));
    }
    if !problems.is_empty() {
        return Err(Error::invalid("the tag is invalid", problems));
    }
    let (owned_name, color) = (name.to_owned(), request.color.clone());
    let now = Utc::now();
    ctx.db
        .write(move |tx| {
            Box::pin(async move {
                tags::upsert(tx, &owned_name, color.as_deref(), now).await?;
                Ok(SavedTag {
                    name: owned_name,
                    color,
                })
            })
        })
        .await
}
