//! Tags: shared, coloured labels any record can carry (`tags` on a record; `tags ~ "vip"` in a
//! filter; `facet=tags` on a list).

use chrono::Utc;
use serde::Deserialize;
use serde_json::{Value, json};

use super::input::MAX_TAG;
use crate::context::Context;
use crate::error::{Error, FieldError, Result};
use crate::store::tags;

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

pub async fn list(ctx: &Context) -> Result<Value> {
    let items: Vec<Value> = tags::list(&mut &ctx.db)
        .await?
        .into_iter()
        .map(|t| {
            json!({
                "name": t.name,
                "color": t.color,
                "records": t.records,
                "created_at": crate::store::value::format_datetime(&t.created_at),
            })
        })
        .collect();
    Ok(json!({ "items": items }))
}

/// Creates a tag or changes its colour.
pub async fn save(ctx: &Context, request: &TagRequest) -> Result<Value> {
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
                Ok(json!({"name": owned_name, "color": color}))
            })
        })
        .await
}
