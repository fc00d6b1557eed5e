//! Webhooks with a real HTTP receiver on loopback: signed deliveries (verified the Standard
//! Webhooks way), retries under the same `webhook-id`, nothing for rolled-back writes, nothing
//! lost when the server that queued a delivery stops, SSRF refusals, 410 switching off.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use serde_json::{Value, json};
use tessera::webhooks::sign::{Secret, verify};

use crate::common::{TestApp, eventually, id};
use crate::on_both_databases;

/// A message as the receiver got it.
#[derive(Debug, Clone)]
struct Received {
    id: String,
    timestamp: i64,
    signature: String,
    body: String,
}

impl Received {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
}

/// A status to answer with, and a `Retry-After` in seconds.
type Answer = (u16, Option<u64>);

/// An HTTP receiver that answers with the statuses queued (then 200) and keeps what it got.
#[derive(Clone, Default)]
struct Receiver {
    got: Arc<Mutex<Vec<Received>>>,
    /// Statuses to answer with, each with a `Retry-After` in seconds.
    answers: Arc<Mutex<VecDeque<Answer>>>,
}

impl Receiver {
    async fn start() -> (Receiver, SocketAddr) {
        let receiver = Receiver::default();
        let state = receiver.clone();
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: HeaderMap, body: Bytes| {
                let state = state.clone();
                async move {
                    let header = |name: &str| {
                        headers
                            .get(name)
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or_default()
                            .to_owned()
                    };
                    state.got.lock().unwrap().push(Received {
                        id: header("webhook-id"),
                        timestamp: header("webhook-timestamp").parse().unwrap_or_default(),
                        signature: header("webhook-signature"),
                        body: String::from_utf8_lossy(&body).into_owned(),
                    });
                    let (status, retry_after) = state
                        .answers
                        .lock()
                        .unwrap()
                        .pop_front()
                        .unwrap_or((200, None));
                    let mut response = axum::response::IntoResponse::into_response((
                        StatusCode::from_u16(status).unwrap(),
                        "thanks",
                    ));
                    if let Some(seconds) = retry_after {
                        response.headers_mut().insert("retry-after", seconds.into());
                    }
                    response
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        (receiver, addr)
    }

    fn answer(&self, statuses: &[u16]) {
        self.answers
            .lock()
            .unwrap()
            .extend(statuses.iter().map(|s| (*s, None)));
    }

    fn answer_retry_after(&self, status: u16, seconds: u64) {
        self.answers
            .lock()
            .unwrap()
            .push_back((status, Some(seconds)));
    }

    fn got(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }
}

async fn deal_entity(app: &TestApp) {
    app.create_entity(&json!({"name": "deal", "label": {"en": "Deal", "zh-CN": "交易"},
        "schema": {"properties": {"title": {"x-kind": "text"}, "code": {"x-kind": "text", "x-unique": true},
                                  "secret": {"x-kind": "text"}}}})).await;
}

async fn endpoint(app: &TestApp, addr: SocketAddr, events: Value) -> Value {
    app.post(
        "/api/webhooks",
        &json!({"url": format!("http://{addr}/hook"),
        "entities": ["deal"], "events": events}),
    )
    .await
    .expect(201)
    .body
}

on_both_databases! {
    async fn deliveries_are_signed_retried_and_never_sent_for_rollbacks(app: TestApp) {
        deal_entity(&app).await;
        let (receiver, addr) = Receiver::start().await;
        // Loopback targets are refused until the setting allows them.
        app.post("/api/webhooks", &json!({"url": format!("http://{addr}/hook"), "events": ["created"]}))
            .await.expect(422);
        app.patch("/api/settings", &json!({"webhooks_allow_private": true})).await.expect(200);
        let hook = endpoint(&app, addr, json!(["created", "updated"])).await;
        let secret = hook["secret"].as_str().unwrap().to_owned();
        assert!(secret.starts_with("whsec_"), "{hook}");
        // The secret is shown once.
        let shown = app.get(&format!("/api/webhooks/{}", id(&hook))).await.expect(200).body;
        assert!(shown.get("secret").is_none(), "{shown}");

        // A create delivers one signed message.
        let deal = app.create_record("deal", &json!({"title": "Big deal"})).await;
        eventually(Duration::from_secs(15), "the delivery", || async { receiver.got().len() == 1 }).await;
        let message = &receiver.got()[0];
        let key = Secret::parse(&secret).unwrap();
        assert!(verify(&[&key], &message.id, message.timestamp, message.body.as_bytes(), &message.signature),
                "{message:?}");
        assert!(message.id.starts_with("msg_"));
        let body = message.json();
        assert_eq!(body["type"], "record.created");
        assert_eq!(body["data"]["entity"], "deal");
        assert_eq!(body["data"]["id"], id(&deal));
        assert_eq!(body["data"]["record"]["title"], "Big deal");

        // A receiver that fails twice gets the same message three times.
        receiver.answer(&[500, 500]);
        app.patch(&format!("/api/records/deal/{}", id(&deal)), &json!({"title": "Bigger deal"})).await.expect(200);
        eventually(Duration::from_secs(30), "three attempts", || async { receiver.got().len() == 4 }).await;
        let retried: Vec<Received> = receiver.got()[1..].to_vec();
        assert!(retried.iter().all(|m| m.id == retried[0].id), "{retried:?}");
        assert!(retried.iter().all(|m| m.body == retried[0].body));
        assert_eq!(retried[0].json()["type"], "record.updated");
        app.queue_idle().await;
        let log = app.get(&format!("/api/webhooks/{}/deliveries", id(&hook))).await.expect(200).body;
        let latest = &log["items"][0];
        assert_eq!(latest["status"], "delivered", "{log}");
        assert_eq!(latest["attempts"], 3);
        let statuses: Vec<i64> = latest["log"].as_array().unwrap().iter().map(|a| a["status"].as_i64().unwrap()).collect();
        assert_eq!(statuses, [500, 500, 200]);
        assert!(latest["log"][0]["duration_ms"].as_i64().is_some());
        assert_eq!(latest["log"][2]["response"], "thanks");

        // Rolled back: a unique conflict, and a script that writes and then fails.
        app.create_record("deal", &json!({"title": "Coded", "code": "C-1"})).await;
        app.queue_idle().await;
        let before = receiver.got().len();
        app.post("/api/records/deal", &json!({"title": "Twin", "code": "C-1"})).await.expect(409);
        let script = app.post("/api/automations", &json!({"name": "Fails", "trigger": {"type": "manual"},
            "script": "records::create(\"deal\", #{ title: \"Ghost\" }); throw \"no\";"})).await.expect(201).body;
        let run = app.post(&format!("/api/automations/{}/run", id(&script)), &json!({})).await.expect(200).body;
        assert_eq!(run["status"], "failed");
        app.queue_idle().await;
        assert_eq!(receiver.got().len(), before, "nothing for writes that rolled back");

        // Replay sends the same message again; a test message says hello.
        let first = log["items"].as_array().unwrap().last().unwrap().clone();
        app.post(&format!("/api/webhooks/{}/deliveries/{}/replay", id(&hook), id(&first)), &json!({}))
            .await.expect(202);
        app.post(&format!("/api/webhooks/{}/test", id(&hook)), &json!({})).await.expect(202);
        eventually(Duration::from_secs(15), "the replay and the test", || async {
            receiver.got().len() == before + 2
        }).await;
        let got = receiver.got();
        assert!(got.iter().any(|m| m.id == first["id"].as_str().unwrap() && m.json()["type"] == "record.created"));
        assert!(got.iter().any(|m| m.json()["type"] == "webhook.test"));

        // After a rotation both secrets sign for a while.
        let rotated = app.post(&format!("/api/webhooks/{}/rotate-secret", id(&hook)), &json!({})).await.expect(200).body;
        let new_key = Secret::parse(rotated["secret"].as_str().unwrap()).unwrap();
        app.create_record("deal", &json!({"title": "After rotation"})).await;
        eventually(Duration::from_secs(15), "the rotated delivery", || async {
            receiver.got().iter().any(|m| m.json()["data"]["record"]["title"] == "After rotation")
        }).await;
        let message = receiver.got().into_iter().find(|m| m.json()["data"]["record"]["title"] == "After rotation").unwrap();
        assert_eq!(message.signature.split(' ').count(), 2, "{}", message.signature);
        for key in [&key, &new_key] {
            assert!(verify(&[key], &message.id, message.timestamp, message.body.as_bytes(), &message.signature));
        }
    }

    async fn queued_deliveries_survive_their_server_and_410_switches_off(app: TestApp) {
        deal_entity(&app).await;
        let (receiver, addr) = Receiver::start().await;
        app.patch("/api/settings", &json!({"webhooks_allow_private": true})).await.expect(200);
        let hook = endpoint(&app, addr, json!(["created"])).await;
        // The first attempt fails (come back in 3 s); then this server stops working its queue.
        receiver.answer_retry_after(503, 3);
        app.create_record("deal", &json!({"title": "Durable"})).await;
        eventually(Duration::from_secs(15), "the first attempt", || async { receiver.got().len() == 1 }).await;
        app.ctx.pause_background(true);
        app.ctx.background_settled().await;
        // Another server on the same database finishes the job.
        let (other, server) = app.second_instance().await;
        eventually(Duration::from_secs(30), "the retry from the other server", || async {
            receiver.got().len() == 2
        }).await;
        let got = receiver.got();
        assert_eq!(got[0].id, got[1].id);
        other.queue_idle().await;
        let log = other.get(&format!("/api/webhooks/{}/deliveries", id(&hook))).await.expect(200).body;
        assert_eq!(log["items"][0]["status"], "delivered");
        // 410 Gone switches the endpoint off; later events queue nothing.
        receiver.answer(&[410]);
        other.create_record("deal", &json!({"title": "Gone"})).await;
        eventually(Duration::from_secs(15), "the 410", || async { receiver.got().len() == 3 }).await;
        other.queue_idle().await;
        let shown = other.get(&format!("/api/webhooks/{}", id(&hook))).await.expect(200).body;
        assert_eq!(shown["active"], false, "{shown}");
        assert!(shown["disabled_reason"].as_str().unwrap().contains("410"));
        other.create_record("deal", &json!({"title": "Unheard"})).await;
        other.queue_idle().await;
        assert_eq!(receiver.got().len(), 3);
        server.stop().await.unwrap();
    }

    async fn private_targets_are_refused_and_hidden_fields_stay_out(app: TestApp) {
        deal_entity(&app).await;
        for url in ["http://10.1.2.3/hook", "http://localhost:9/hook", "http://169.254.169.254/latest",
                    "http://[::1]/x", "http://192.168.0.10/x", "ftp://example.com/x", "http://2130706433/"] {
            let refused = app.post("/api/webhooks", &json!({"url": url, "events": ["created"]})).await.expect(422);
            assert_eq!(refused.body["errors"][0]["field"], "url", "{url}: {}", refused.body);
        }
        app.post("/api/webhooks", &json!({"url": "https://example.com/hook", "events": ["exploded"]}))
            .await.expect(422);
        // A receiver sees only what the endpoint's creator may read.
        app.patch("/api/settings", &json!({"webhooks_allow_private": true})).await.expect(200);
        app.post("/api/roles", &json!({"name": "integrator", "permissions": {
            "entities": {"deal": {"create": "all", "read": "all", "update": "all", "delete": "none",
                                  "fields": {"secret": "hidden"}}},
            "special": ["manage_automations"]}})).await.expect(201);
        app.post("/api/users", &json!({"email": "int@example.test", "password": "password 1234",
            "roles": ["integrator"]})).await.expect(201);
        let integrator = app.login("int@example.test", "password 1234").await;
        let (receiver, addr) = Receiver::start().await;
        endpoint(&integrator, addr, json!(["created"])).await;
        app.create_record("deal", &json!({"title": "With a secret", "secret": "s3cr3t"})).await;
        eventually(Duration::from_secs(15), "the delivery", || async { receiver.got().len() == 1 }).await;
        let message = &receiver.got()[0];
        assert!(!message.body.contains("s3cr3t"), "{}", message.body);
        assert!(message.json()["data"]["record"].get("secret").is_none());
    }
}
