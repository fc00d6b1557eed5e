//! Queuing deliveries: a record-event subscriber that turns each event an active endpoint
//! asks for into a delivery row and a job, inside the write's transaction. The record in the
//! message is narrowed to what the endpoint's creator may read.

use std::sync::{Arc, RwLock};

use futures_util::future::BoxFuture;
use serde_json::{Value, json};

use crate::auth::{Access, Action};
use crate::error::Result;
use crate::events::{EventKind, EventScope, Origin, RecordEvent, Subscriber};
use crate::records::output::Shape;
use crate::store::query::Condition;
use crate::store::webhooks::{self as store, DeliveryRow, WebhookRow};
use crate::store::{Tx, records};

/// An active endpoint with the access its messages are narrowed to.
struct Endpoint {
    row: WebhookRow,
    access: Access,
}

/// The active endpoints as of a schema epoch (saving an endpoint moves the epoch).
#[derive(Default)]
pub struct WebhookDeliveries {
    current: RwLock<Option<(i64, Arc<Vec<Endpoint>>)>>,
}

impl WebhookDeliveries {
    async fn endpoints(&self, tx: &mut Tx, epoch: i64) -> Result<Arc<Vec<Endpoint>>> {
        if let Ok(slot) = self.current.read()
            && let Some((cached, endpoints)) = slot.as_ref()
            && *cached == epoch
        {
            return Ok(endpoints.clone());
        }
        let mut endpoints = Vec::new();
        for row in store::list(tx).await?.into_iter().filter(|w| w.active) {
            // An endpoint whose creator left delivers nothing (its messages would show what
            // nobody is allowed to read any more).
            if let Some(access) =
                crate::auth::service::access_of_user_in(tx, &row.created_by).await?
            {
                endpoints.push(Endpoint { row, access });
            }
        }
        let endpoints = Arc::new(endpoints);
        if let Ok(mut slot) = self.current.write() {
            *slot = Some((epoch, endpoints.clone()));
        }
        Ok(endpoints)
    }
}

/// Whether an endpoint asks for this event.
fn wants(row: &WebhookRow, event: &RecordEvent) -> bool {
    (row.entities.is_empty() || row.entities.contains(&event.entity))
        && row.events.iter().any(|e| e == event.kind.as_str())
        && (event.kind != EventKind::Updated
            || row.fields.is_empty()
            || row.fields.iter().any(|f| event.changes.contains_key(f)))
}

impl Subscriber for WebhookDeliveries {
    fn name(&self) -> &'static str {
        "webhook deliveries"
    }

    fn on_event<'a>(
        &'a self,
        tx: &'a mut Tx,
        scope: &'a EventScope<'a>,
        event: &'a RecordEvent,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            if !announced(event) {
                return Ok(());
            }
            let endpoints = self.endpoints(tx, scope.catalog.epoch).await?;
            deliver(tx, scope, event, &endpoints).await
        })
    }

    /// A batch's events are matched against the endpoints here, once for all of them: most
    /// batches (an import's) have no endpoint asking, and need nothing more per record.
    fn on_events<'a>(
        &'a self,
        tx: &'a mut Tx,
        scope: &'a EventScope<'a>,
        events: &'a [RecordEvent],
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            if !events.iter().any(announced) {
                return Ok(());
            }
            let endpoints = self.endpoints(tx, scope.catalog.epoch).await?;
            for event in events.iter().filter(|e| announced(e)) {
                deliver(tx, scope, event, &endpoints).await?;
            }
            Ok(())
        })
    }
}

/// Whether an event is news to webhooks at all: sample data of a template is not news to
/// anyone, and erasures have no event type.
fn announced(event: &RecordEvent) -> bool {
    event.origin != Origin::Template && event.kind != EventKind::Erased
}

/// Queues the deliveries of an event to the endpoints that ask for it.
async fn deliver(
    tx: &mut Tx,
    scope: &EventScope<'_>,
    event: &RecordEvent,
    endpoints: &[Endpoint],
) -> Result<()> {
    let wanting: Vec<&Endpoint> = endpoints.iter().filter(|e| wants(&e.row, event)).collect();
    if wanting.is_empty() {
        return Ok(());
    }
    let entity = scope.catalog.entity(&event.entity)?;
    for endpoint in wanting {
        let name = event.entity.as_str();
        // Only records the creator may read, with only the fields they may read.
        if endpoint.access.require_action(name, Action::Read).is_err() {
            continue;
        }
        let scope = endpoint.access.records(name, Action::Read);
        if scope != Condition::True
            && records::get_in(tx, &entity.layout, &event.id, true, &scope)
                .await?
                .is_none()
        {
            continue;
        }
        let shape = Shape::readable(&entity, &endpoint.access);
        let mut record = event.record.clone();
        shape.strip(&mut record);
        let mut changes = Value::Object(event.changes_of(&entity).into_owned());
        shape.strip(&mut changes);
        let body = json!({
            "type": format!("record.{}", event.kind.as_str()),
            "timestamp": crate::store::value::format_datetime(&event.at),
            "data": {
                "entity": name,
                "id": event.id,
                "record": record,
                "changes": changes,
                "merged": (!event.merged.is_empty()).then_some(&event.merged),
            },
        });
        let delivery = DeliveryRow {
            id: super::message_id(),
            webhook_id: endpoint.row.id.clone(),
            event_type: format!("record.{}", event.kind.as_str()),
            entity: Some(event.entity.clone()),
            record_id: Some(event.id.clone()),
            body: body.to_string(),
            status: "pending".into(),
            attempts: 0,
            next_attempt: Some(event.at),
            last_status: None,
            last_error: None,
            created_at: event.at,
            finished_at: None,
        };
        store::insert_delivery(tx, &delivery).await?;
        super::queue_delivery(tx, &delivery, event.at).await?;
    }
    Ok(())
}
