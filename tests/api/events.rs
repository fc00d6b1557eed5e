//! Record events: a test-only subscriber hears every write made through the one write path —
//! from the API, a script or a template install — exactly once, and nothing of a write that
//! rolled back.

use std::sync::{Arc, Mutex};

use serde_json::json;
use tessera::events::{Committed, EventKind, Origin, Subscriber};

use crate::common::id;
use crate::on_both_databases;

/// Collects the events it hears once their transaction has committed.
#[derive(Default)]
struct Recorder {
    heard: Mutex<Vec<(String, String, EventKind, Origin)>>,
}

impl Subscriber for Recorder {
    fn name(&self) -> &'static str {
        "test recorder"
    }

    fn hears_commits(&self) -> bool {
        true
    }

    fn committed(&self, event: &Committed) {
        if let Ok(mut heard) = self.heard.lock() {
            heard.push((
                event.entity.clone(),
                event.id.clone(),
                event.kind,
                event.origin,
            ));
        }
    }
}

impl Recorder {
    /// What was heard since the last call.
    fn take(&self) -> Vec<(String, String, EventKind, Origin)> {
        self.heard
            .lock()
            .map(|mut h| std::mem::take(&mut *h))
            .unwrap_or_default()
    }
}

fn kinds(heard: &[(String, String, EventKind, Origin)]) -> Vec<(&str, EventKind, Origin)> {
    heard
        .iter()
        .map(|(e, _, k, o)| (e.as_str(), *k, *o))
        .collect()
}

on_both_databases! {
    async fn every_write_is_heard_once_and_rollbacks_not_at_all(app: TestApp) {
        let recorder = Arc::new(Recorder::default());
        app.ctx.events.subscribe(recorder.clone());
        app.create_entity(&json!({"name": "deal", "label": {"en": "Deal", "zh-CN": "交易"},
            "schema": {"properties": {
                "title": {"x-kind": "text"},
                "code": {"x-kind": "text", "x-unique": true},
                "amount": {"x-kind": "money"}}}})).await;

        // Through the API: create, update, delete, restore.
        let first = app.create_record("deal", &json!({"title": "A", "amount": "10"})).await;
        let first = id(&first);
        app.patch(&format!("/api/records/deal/{first}"), &json!({"amount": "12"})).await.expect(200);
        // A change that changes nothing is no event.
        app.patch(&format!("/api/records/deal/{first}"), &json!({"amount": "12.00"})).await.expect(200);
        app.delete(&format!("/api/records/deal/{first}")).await.expect(204);
        app.post(&format!("/api/records/deal/{first}/restore"), &json!({})).await.expect(200);
        let heard = recorder.take();
        assert_eq!(kinds(&heard), [
            ("deal", EventKind::Created, Origin::Api),
            ("deal", EventKind::Updated, Origin::Api),
            ("deal", EventKind::Deleted, Origin::Api),
            ("deal", EventKind::Restored, Origin::Api),
        ]);
        assert!(heard.iter().all(|(_, i, ..)| *i == first));

        // A merge: the record kept is merged, the duplicate trashed.
        let twin = id(&app.create_record("deal", &json!({"title": "A (twin)"})).await);
        recorder.take();
        app.post("/api/records/deal/merge", &json!({"target": first, "sources": [twin]}))
            .await.expect(200);
        let heard = recorder.take();
        assert_eq!(heard.len(), 2, "{heard:?}");
        assert!(heard.contains(&("deal".into(), twin.clone(), EventKind::Deleted, Origin::Api)));
        assert!(heard.contains(&("deal".into(), first.clone(), EventKind::Merged, Origin::Api)));

        // A bulk change: one event per record changed.
        for title in ["B", "C", "D"] {
            app.create_record("deal", &json!({"title": title})).await;
        }
        recorder.take();
        let bulk = app.post("/api/records/deal/bulk", &json!({
            "filter": "title in [\"B\", \"C\", \"D\"]", "action": "update", "set": {"amount": "5"}}))
            .await.expect(200).body;
        assert_eq!(bulk["matched"], 3);
        let heard = recorder.take();
        assert_eq!(heard.len(), 3, "{heard:?}");
        assert!(heard.iter().all(|(_, _, k, o)| *k == EventKind::Updated && *o == Origin::Api));
        let mut ids: Vec<&String> = heard.iter().map(|(_, i, ..)| i).collect();
        ids.dedup();
        assert_eq!(ids.len(), 3, "each record once");

        // Through a script: its writes carry the script origin.
        let script = app.post("/api/automations", &json!({
            "name": "Writes", "trigger": {"type": "manual"},
            "script": "let r = records::create(\"deal\", #{ title: \"E\" }); \
                       records::update(\"deal\", r.id, #{ amount: \"7\" }); \
                       records::delete(\"deal\", r.id); r.id"}))
            .await.expect(201).body;
        let report = app.post(&format!("/api/automations/{}/run", id(&script)), &json!({}))
            .await.expect(200).body;
        assert_eq!(report["status"], "succeeded", "{report}");
        assert_eq!(kinds(&recorder.take()), [
            ("deal", EventKind::Created, Origin::Script),
            ("deal", EventKind::Updated, Origin::Script),
            ("deal", EventKind::Deleted, Origin::Script),
        ]);

        // Rolled back: a script that writes and then fails leaves nothing, and is heard of by
        // nobody; so is a test run, and an API write refused on a unique value.
        let failing = app.post("/api/automations", &json!({
            "name": "Writes then fails", "trigger": {"type": "manual"},
            "script": "records::create(\"deal\", #{ title: \"F\" }); throw \"no\";"}))
            .await.expect(201).body;
        let report = app.post(&format!("/api/automations/{}/run", id(&failing)), &json!({}))
            .await.expect(200).body;
        assert_eq!(report["status"], "failed", "{report}");
        let dry = app.post(&format!("/api/automations/{}/run", id(&script)), &json!({"dry_run": true}))
            .await.expect(200).body;
        assert_eq!(dry["status"], "succeeded", "{dry}");
        app.create_record("deal", &json!({"title": "G", "code": "X-1"})).await;
        recorder.take();
        app.post("/api/records/deal", &json!({"title": "H", "code": "X-1"})).await.expect(409);
        assert!(recorder.take().is_empty(), "nothing heard of rolled-back writes");
        let f = app.get("/api/records/deal?filter=title%20%3D%20%22F%22&count=true").await.expect(200).body;
        assert_eq!(f["total"], 0);

        // A template install: its sample records, once each, with the template origin.
        let installed = app.post("/api/templates/customer/install", &json!({"sample_data": true}))
            .await.expect(200).body;
        let samples = installed["templates"][0]["sample_records"].as_u64().unwrap_or_default();
        assert!(samples > 100, "{installed}");
        let heard = recorder.take();
        assert_eq!(heard.len() as u64, samples);
        assert!(heard.iter().all(|(_, _, k, o)| *k == EventKind::Created && *o == Origin::Template));
        let mut ids: Vec<&String> = heard.iter().map(|(_, i, ..)| i).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len() as u64, samples, "each record once");
    }
}
