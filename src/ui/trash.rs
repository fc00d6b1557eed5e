//! The trash of an entity: what was deleted, restore, and (with the delete permission) erase.

use axum::extract::{Path, Query};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use serde_json::{Value, json};

use super::list::{Pairs, merge, param};
use super::shell::{self, Names};
use super::{Viewer, tri, url_encode};
use crate::auth::Action;
use crate::events::Origin;
use crate::records::list::ReadQuery;
use crate::records::write;

/// `GET /e/{entity}/trash`.
pub async fn page(
    v: Viewer,
    headers: HeaderMap,
    Path(entity): Path<String>,
    Query(pairs): Query<Pairs>,
) -> Response {
    let target = tri!(v, headers, shell::entity_target(&v, &entity).await);
    let query = ReadQuery {
        trashed: true,
        cursor: param(&pairs, "cursor"),
        limit: 50,
        ..ReadQuery::new(&target, &v.access)
    };
    let page = tri!(v, headers, query.page(&mut &v.ctx.db).await);
    let names = tri!(v, headers, Names::people(&v).await);
    let rows: Vec<Value> = page
        .items
        .iter()
        .map(|r| {
            let id = r["id"].as_str().unwrap_or_default();
            let title = shell::record_title(&target.entity, r);
            json!({
                "id": id,
                "href": format!("/e/{entity}/{id}"),
                "title": title,
                "owner": shell::display_system(&v, &names, "owner", &r["owner"]),
                "deleted": r["deleted_at"].as_str().map(|t| shell::format_datetime(&v, t)),
                "confirm": v.f("confirm_erase", &[("name", &title)]),
            })
        })
        .collect();
    let label = v.lang.label(Some(&target.entity.def.label), &entity);
    let heading = v.f("trash_of", &[("entity", &label)]);
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
            "rows": rows,
            "can_erase": v.access.require_action(&entity, Action::Delete).is_ok(),
            "next": page.next_cursor.map(|c| format!("/e/{entity}/trash?cursor={}", url_encode(&c))),
            "toast": super::list::toast(&v, &pairs),
        }),
    );
    super::rendered(&v, &headers, "trash", &data)
}

/// `POST /e/{entity}/{id}/restore`.
pub async fn restore(
    v: Viewer,
    headers: HeaderMap,
    Path((entity, id)): Path<(String, String)>,
) -> Response {
    tri!(
        v,
        headers,
        write::restore_one(&v.ctx, &v.access, Origin::Ui, &entity, &id).await
    );
    Redirect::to(&format!("/e/{entity}/{id}?m=restored")).into_response()
}

/// `POST /e/{entity}/{id}/erase`: deletes a trashed record for good.
pub async fn erase(
    v: Viewer,
    headers: HeaderMap,
    Path((entity, id)): Path<(String, String)>,
) -> Response {
    tri!(
        v,
        headers,
        write::delete_one(&v.ctx, &v.access, Origin::Ui, &entity, &id, None, true).await
    );
    Redirect::to(&format!("/e/{entity}/trash?m=erased")).into_response()
}
