//! The public knowledge base: customers search the published, public articles of the
//! `kb_article` entity (the service template's) without signing in.
//!
//! Deliberately narrow: one entity, a fixed condition (`published` and `visibility =
//! "public"`), four fields. The read goes through the records list like every other, as the
//! system, with that condition always applied.

use serde_json::{Value, json};

use crate::auth::Access;
use crate::context::Context;
use crate::error::{Error, Result};
use crate::records::list::{self, ListParams};

pub const ENTITY: &str = "kb_article";
const PUBLIC: &str = "published = true && visibility = \"public\"";
const FIELDS: &str = "title,category,body,updated_at";
const MAX_RESULTS: i64 = 20;

/// Published public articles matching `q` (all of them, newest first, without one).
pub async fn search(ctx: &Context, q: Option<&str>) -> Result<Vec<Value>> {
    let catalog = ctx.schema.catalog(&ctx.db).await?;
    let entity = catalog.entity(ENTITY).map_err(|_| {
        Error::not_found("there is no public knowledge base here (the service template brings one)")
    })?;
    for field in ["title", "body", "published", "visibility", "category"] {
        if entity.def.field(field).is_none() {
            return Err(Error::not_found(format!(
                "the knowledge base has no '{field}' field, so nothing is published"
            )));
        }
    }
    let params = ListParams {
        filter: Some(PUBLIC.to_owned()),
        q: q.map(str::trim)
            .filter(|q| !q.is_empty())
            .map(str::to_owned),
        fields: Some(FIELDS.to_owned()),
        sort: Some("-updated_at".to_owned()),
        limit: Some(MAX_RESULTS),
        ..ListParams::default()
    };
    let page = list::list(ctx, &Access::system(), ENTITY, &params).await?;
    Ok(page["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .map(|a| {
            json!({
                "id": a["id"], "title": a["title"], "category": a["category"],
                "body": a["body"], "updated_at": a["updated_at"],
            })
        })
        .collect())
}
