//! Automations end to end: record triggers sending templated mail through a real SMTP server
//! on loopback, cron slots, the outbox retrying while the mail server is down, the sandbox,
//! all-or-nothing runs, run-as permissions, before-save scripts, cascades, and a birthday
//! reminder on the calendar's edges.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::{Value, json};

use crate::common::id;
use crate::common::{TestApp, eventually};
use crate::on_both_databases;
use crate::smtp::{SmtpServer, free_port};

async fn contact_entity(app: &TestApp) {
    app.create_entity(&json!({
        "name": "contact", "label": {"en": "Contact", "zh-CN": "联系人"},
        "schema": {"properties": {
            "name": {"x-kind": "text"},
            "email": {"x-kind": "email"},
            "birthday": {"x-kind": "date"},
            "level": {"x-kind": "text"},
            "code": {"x-kind": "text"},
            "visits": {"x-kind": "integer"}
        }}
    }))
    .await;
}

async fn template(app: &TestApp, name: &str, variants: Value) {
    app.post(
        "/api/mail-templates",
        &json!({"name": name, "variants": variants}),
    )
    .await
    .expect(201);
}

async fn automation(app: &TestApp, body: Value) -> String {
    id(&app.post("/api/automations", &body).await.expect(201).body)
}

async fn run(app: &TestApp, automation: &str, body: Value) -> Value {
    app.post(&format!("/api/automations/{automation}/run"), &body)
        .await
        .expect(200)
        .body
}

async fn runs(app: &TestApp, automation: &str) -> Vec<Value> {
    app.get(&format!("/api/automations/{automation}/runs?limit=500"))
        .await
        .expect(200)
        .body["items"]
        .as_array()
        .unwrap()
        .clone()
}

async fn outbox(app: &TestApp) -> Vec<Value> {
    app.get("/api/outbox?limit=500").await.expect(200).body["items"]
        .as_array()
        .unwrap()
        .clone()
}

on_both_databases! {
    async fn a_record_trigger_sends_a_templated_mail(app: TestApp) {
        let smtp = SmtpServer::start().await;
        app.patch("/api/settings", &json!({
            "smtp_url": smtp.url(), "smtp_sender": "Acme CRM <crm@acme.test>",
            "company_name": "Acme 有限公司"
        }))
        .await
        .expect(200);
        contact_entity(&app).await;
        template(&app, "welcome", json!({
            "en": {"subject": "Welcome, {{name}}", "text": "Hello {{name}}, greetings from {{company}}.",
                   "html": "<p>Hello <b>{{name}}</b></p>"},
            "zh-CN": {"subject": "欢迎 {{name}}", "text": "{{name}}，您好"}
        }))
        .await;
        automation(&app, json!({
            "name": "Welcome new contacts",
            "trigger": {"type": "record", "entity": "contact", "events": ["created"],
                        "when": "level = \"A\""},
            "script": "mail::send(#{ to: record.email, template: \"welcome\", \
                       data: #{ name: record.name, company: settings::get(\"company_name\") } });"
        }))
        .await;
        app.create_record("contact", &json!({"name": "Li Lei", "email": "lilei@example.test", "level": "A"})).await;
        // Not level A: the condition holds it back.
        app.create_record("contact", &json!({"name": "Han Meimei", "email": "han@example.test", "level": "B"})).await;
        let got = smtp.wait_for(1, Duration::from_secs(15)).await;
        assert_eq!(got.len(), 1, "{got:?}");
        let mail = &got[0];
        assert_eq!(mail.to, ["lilei@example.test"]);
        assert_eq!(mail.from, "crm@acme.test");
        assert_eq!(mail.subject, "Welcome, Li Lei");
        assert_eq!(mail.text.trim(), "Hello Li Lei, greetings from Acme 有限公司.");
        assert_eq!(mail.html.as_deref().map(str::trim), Some("<p>Hello <b>Li Lei</b></p>"));
        // The other contact's condition held its run back: once the queue is idle, nothing more
        // can arrive.
        app.queue_idle().await;
        assert_eq!(smtp.received().len(), 1, "nothing more arrives");
        let sent = outbox(&app).await;
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0]["status"], "sent");
        assert_eq!(sent[0]["attempts"], 1);
        smtp.stop();
    }

    async fn a_cron_automation_fires_once_per_slot(app: TestApp) {
        app.create_entity(&json!({"name": "tick", "label": {"en": "Tick", "zh-CN": "刻"}, "schema": {"properties": {
            "slot": {"x-kind": "text", "x-unique": true}}}})).await;
        let cron = automation(&app, json!({
            "name": "Every second",
            "trigger": {"type": "cron", "cron": "* * * * * *", "time_zone": "Asia/Shanghai"},
            "script": "records::create(\"tick\", #{ slot: slot }); slot"
        }))
        .await;
        eventually(Duration::from_secs(20), "four slots run", || async {
            runs(&app, &cron).await.len() >= 4
        })
        .await;
        app.patch(&format!("/api/automations/{cron}"), &json!({"enabled": false})).await.expect(200);
        // Let queued slots drain.
        app.queue_idle().await;
        let log = runs(&app, &cron).await;
        let slots: Vec<String> = log.iter().map(|r| r["slot"].as_str().unwrap().to_owned()).collect();
        let unique: BTreeSet<&String> = slots.iter().collect();
        assert_eq!(unique.len(), slots.len(), "a slot ran twice: {slots:?}");
        assert!(slots.len() >= 4, "{} runs", slots.len());
        assert!(log.iter().all(|r| r["status"] == "succeeded"), "{log:?}");
        // Consecutive seconds: no slot skipped.
        let seconds: Vec<i64> = unique
            .iter()
            .map(|s| chrono::DateTime::parse_from_rfc3339(s).unwrap().timestamp())
            .collect();
        assert!(seconds.windows(2).all(|w| w[1] - w[0] == 1), "{seconds:?}");
        let ticks = app.get("/api/records/tick?count=true").await.expect(200).body;
        assert_eq!(ticks["total"], slots.len());
    }

    async fn the_outbox_retries_until_the_mail_server_is_up(app: TestApp) {
        let addr = free_port().await;
        app.patch("/api/settings", &json!({"smtp_url": format!("smtp://{addr}")})).await.expect(200);
        template(&app, "notice", json!({"en": {"subject": "Notice {{n}}", "text": "Number {{n}}"}})).await;
        let sender = automation(&app, json!({
            "name": "Three notices", "trigger": {"type": "manual"},
            "script": "for n in 1..=3 { mail::send(#{ to: `user${n}@example.test`, template: \"notice\", data: #{ n: n } }); }"
        }))
        .await;
        let report = run(&app, &sender, json!({})).await;
        assert_eq!(report["status"], "succeeded", "{report}");
        assert_eq!(report["mails"], 3);
        // Nobody listens yet: every message fails and waits for its next attempt.
        eventually(Duration::from_secs(15), "failed attempts in the outbox", || async {
            let items = outbox(&app).await;
            items.len() == 3 && items.iter().all(|m| m["attempts"].as_i64() >= Some(1)
                && m["status"] == "queued" && m["last_error"].as_str().is_some_and(|e| !e.is_empty()))
        })
        .await;
        let smtp = SmtpServer::start_on(addr).await;
        let got = smtp.wait_for(3, Duration::from_secs(30)).await;
        assert_eq!(got.len(), 3);
        eventually(Duration::from_secs(10), "every message marked sent", || async {
            outbox(&app).await.iter().all(|m| m["status"] == "sent")
        })
        .await;
        app.queue_idle().await;
        let got = smtp.received();
        let mut subjects: Vec<&str> = got.iter().map(|m| m.subject.as_str()).collect();
        subjects.sort();
        assert_eq!(subjects, ["Notice 1", "Notice 2", "Notice 3"], "each exactly once");
        let ids: BTreeSet<&str> = got.iter().map(|m| m.message_id.as_str()).collect();
        assert_eq!(ids.len(), 3);
        smtp.stop();
    }

    async fn the_sandbox_stops_runaway_scripts(app: TestApp) {
        let cases = [
            ("endless loop", "let n = 0; loop { n += 1; }", "deadline"),
            ("deep recursion", "fn down(n) { down(n + 1) } down(0)", "too deeply"),
            ("string bomb", "let s = \"xx\"; loop { s += s; }", "too large"),
            ("file", "import \"/etc/passwd\" as p; p", "module"),
            ("open", "open(\"/etc/passwd\")", "not found"),
            ("socket", "connect(\"127.0.0.1:5432\")", "not found"),
        ];
        for (name, script, expected) in cases {
            let id = automation(&app, json!({"name": name, "trigger": {"type": "manual"}, "script": script})).await;
            // The server keeps answering while the script runs: a health check sent once the
            // run has started comes back before the run does.
            let running = app.clone();
            let run_id = id.clone();
            let mut runner = tokio::spawn(async move { run(&running, &run_id, json!({})).await });
            // (A run that ends first is taken from the select: a finished task cannot be
            // awaited twice.)
            let (answered, report) = tokio::select! {
                health = app.get("/api/health") => {
                    health.expect(200);
                    (true, runner.await.unwrap())
                }
                report = &mut runner => (false, report.unwrap()),
            };
            assert_eq!(report["status"], "failed", "{name}: {report}");
            let message = report["error"]["message"].as_str().unwrap_or_default().to_lowercase();
            assert!(message.contains(expected), "{name}: {message}");
            // The endless loop runs until its deadline; the others may end at once.
            if name == "endless loop" {
                assert!(answered, "{name}: the health check waited for the script");
            }
        }
        // `eval` is switched off: refused when saved, with line and column.
        let refused = app
            .post("/api/automations", &json!({"name": "eval", "trigger": {"type": "manual"},
                                               "script": "let x = 1;\nlet y = eval(\"x\");"}))
            .await
            .expect(422);
        assert_eq!(refused.body["errors"][0]["field"], "script");
        assert_eq!(refused.body["errors"][0]["line"], 2);
        let syntax = app
            .post("/api/automations", &json!({"name": "broken", "trigger": {"type": "manual"},
                                               "script": "let a = 1;\nlet b = (a + ;"}))
            .await
            .expect(422);
        assert_eq!(syntax.body["errors"][0]["line"], 2);
        assert!(syntax.body["errors"][0]["column"].as_u64().is_some());
    }

    async fn a_failed_run_leaves_nothing_behind(app: TestApp) {
        contact_entity(&app).await;
        template(&app, "note", json!({"en": {"subject": "Hi", "text": "Hi {{name}}"}})).await;
        let failing = automation(&app, json!({
            "name": "Creates two, then fails", "trigger": {"type": "manual"},
            "script": "let a = records::create(\"contact\", #{ name: \"One\" });\n\
                       let b = records::create(\"contact\", #{ name: \"Two\" });\n\
                       mail::send(#{ to: \"x@example.test\", template: \"note\", data: #{ name: a.name } });\n\
                       log(`made ${records::count(\"contact\", \"\")}`);\n\
                       throw \"something went wrong\";"
        }))
        .await;
        let report = run(&app, &failing, json!({})).await;
        assert_eq!(report["status"], "failed");
        assert_eq!(report["error"]["line"], 5);
        assert!(report["error"]["message"].as_str().unwrap().contains("something went wrong"));
        assert_eq!(report["log"], json!(["made 2"]), "the script saw its own writes");
        let left = app.get("/api/records/contact?count=true").await.expect(200).body;
        assert_eq!(left["total"], 0, "no record stays");
        assert!(outbox(&app).await.is_empty(), "no mail stays");
        let log = runs(&app, &failing).await;
        assert_eq!(log.len(), 1);
        assert_eq!(log[0]["status"], "failed");
        assert_eq!(log[0]["touched"], json!([]));
        assert_eq!(log[0]["error"]["line"], 5);
        // A test run reports but keeps nothing either.
        let trying = automation(&app, json!({
            "name": "Creates one", "trigger": {"type": "manual"},
            "script": "records::create(\"contact\", #{ name: input.name }).name"
        }))
        .await;
        let dry = run(&app, &trying, json!({"input": {"name": "试运行"}, "dry_run": true})).await;
        assert_eq!(dry["status"], "succeeded");
        assert_eq!(dry["result"], "试运行");
        assert_eq!(app.get("/api/records/contact?count=true").await.expect(200).body["total"], 0);
        let real = run(&app, &trying, json!({"input": {"name": "正式"}})).await;
        assert_eq!(real["touched"][0]["action"], "created");
        assert_eq!(app.get("/api/records/contact?count=true").await.expect(200).body["total"], 1);
    }

    async fn a_script_has_its_run_as_users_permissions(app: TestApp) {
        contact_entity(&app).await;
        let east = id(&app.post("/api/departments", &json!({"name": "Sales East"})).await.expect(201).body);
        let west = id(&app.post("/api/departments", &json!({"name": "Sales West"})).await.expect(201).body);
        let rep = id(&app.post("/api/users", &json!({"email": "rep@example.test", "password": "password 1234",
            "department": east, "roles": ["sales_rep"]})).await.expect(201).body);
        let other = id(&app.post("/api/users", &json!({"email": "west@example.test", "password": "password 1234",
            "department": west, "roles": ["sales_rep"]})).await.expect(201).body);
        let mine = app.create_record("contact", &json!({"name": "Mine", "owner": rep})).await;
        let theirs = app.create_record("contact", &json!({"name": "Theirs", "owner": other})).await;
        let script = automation(&app, json!({
            "name": "What the rep sees", "trigger": {"type": "manual"}, "run_as": rep,
            "script": "let names = records::find(\"contact\", \"\").map(|c| c.name);\n\
                       let other = records::get(\"contact\", input.theirs);\n\
                       #{ names: names, count: records::count(\"contact\", \"\"), other: other }"
        }))
        .await;
        let report = run(&app, &script, json!({"input": {"theirs": id(&theirs)}})).await;
        assert_eq!(report["status"], "succeeded", "{report}");
        assert_eq!(report["result"]["names"], json!(["Mine"]));
        assert_eq!(report["result"]["count"], 1);
        assert_eq!(report["result"]["other"], Value::Null, "out of scope is as if missing");
        // Writing outside the scope fails the run.
        let writer = automation(&app, json!({
            "name": "Rep edits another's contact", "trigger": {"type": "manual"}, "run_as": rep,
            "script": "records::update(\"contact\", input.id, #{ name: \"changed\" })"
        }))
        .await;
        let report = run(&app, &writer, json!({"input": {"id": id(&theirs)}})).await;
        assert_eq!(report["status"], "failed");
        let unchanged = app.get(&format!("/api/records/contact/{}", id(&theirs))).await.expect(200).body;
        assert_eq!(unchanged["name"], "Theirs");
        let _ = mine;
    }

    async fn before_save_scripts_complete_or_refuse_a_save(app: TestApp) {
        contact_entity(&app).await;
        automation(&app, json!({
            "name": "Codes and checks",
            "trigger": {"type": "before_save", "entity": "contact", "events": ["created", "updated"]},
            "script": "if record.name == \"\" || record.name == () { reject(\"a contact needs a name\"); }\n\
                       if record.level == \"X\" { reject(`level X is retired (asked for ${record.name})`); }\n\
                       record.code = `C-${record.name.to_upper()}`;"
        }))
        .await;
        let saved = app.create_record("contact", &json!({"name": "wang", "level": "A"})).await;
        assert_eq!(saved["code"], "C-WANG");
        let refused = app.post("/api/records/contact", &json!({"name": "zhao", "level": "X"})).await.expect(422);
        assert_eq!(refused.body["detail"], "level X is retired (asked for zhao)");
        let changed = app
            .patch(&format!("/api/records/contact/{}", id(&saved)), &json!({"name": "li"}))
            .await
            .expect(200)
            .body;
        assert_eq!(changed["code"], "C-LI");
        assert_eq!(app.get("/api/records/contact?count=true").await.expect(200).body["total"], 1);
    }

    async fn a_loop_of_automations_stops_at_the_cascade_limit(app: TestApp) {
        contact_entity(&app).await;
        let looping = automation(&app, json!({
            "name": "Counts its own updates",
            "trigger": {"type": "record", "entity": "contact", "events": ["updated"], "fields": ["visits"]},
            "script": "records::update(\"contact\", record.id, #{ visits: record.visits + 1 });"
        }))
        .await;
        let c = app.create_record("contact", &json!({"name": "Loop", "visits": 0})).await;
        app.patch(&format!("/api/records/contact/{}", id(&c)), &json!({"visits": 1})).await.expect(200);
        eventually(Duration::from_secs(20), "the cascade to stop", || async {
            runs(&app, &looping).await.iter().any(|r| r["status"] == "skipped")
        })
        .await;
        let log = runs(&app, &looping).await;
        let succeeded = log.iter().filter(|r| r["status"] == "succeeded").count();
        assert_eq!(succeeded, 5, "{log:?}");
        let skipped: Vec<&Value> = log.iter().filter(|r| r["status"] == "skipped").collect();
        assert_eq!(skipped.len(), 1);
        assert!(skipped[0]["error"]["message"].as_str().unwrap().contains("cascade limit is 5"));
        let last = app.get(&format!("/api/records/contact/{}", id(&c))).await.expect(200).body;
        assert_eq!(last["visits"], 6);
    }

    async fn a_birthday_reminder_mails_exactly_the_right_people(app: TestApp) {
        contact_entity(&app).await;
        app.patch("/api/settings", &json!({"birthday_reminder_days": 7, "time_zone": "Asia/Shanghai"}))
            .await
            .expect(200);
        template(&app, "birthday", json!({
            "en": {"subject": "{{#if today}}Happy birthday, {{name}}!{{else}}{{name}}'s birthday is on {{date date \"%B %-d\"}}{{/if}}",
                   "text": "{{name}}: {{date date}}"}
        }))
        .await;
        for (name, birthday) in [
            ("today", "1990-12-25"), ("in seven days", "1985-01-01"), ("in eight days", "1985-01-02"),
            ("yesterday", "1980-12-24"), ("leap day", "2000-02-29"), ("last of february", "1999-02-28"),
            ("first of march", "1999-03-01"),
        ] {
            let email = format!("{}@example.test", name.replace(' ', "."));
            app.create_record("contact", &json!({"name": name, "email": email, "birthday": birthday})).await;
        }
        app.create_record("contact", &json!({"name": "no birthday", "email": "none@example.test"})).await;
        let reminder = automation(&app, json!({
            "name": "Birthday reminder",
            "trigger": {"type": "cron", "cron": "0 8 * * *"},
            "script": "let ahead = settings::get(\"birthday_reminder_days\");\n\
                       let mailed = [];\n\
                       for c in records::find(\"contact\", \"birthday != null\") {\n\
                           let next = next_anniversary(c.birthday);\n\
                           let days = days_until(next);\n\
                           if days == 0 || days == ahead {\n\
                               mail::send(#{ to: c.email, template: \"birthday\",\n\
                                             data: #{ name: c.name, date: next, today: days == 0 } });\n\
                               mailed.push(c.name);\n\
                           }\n\
                       }\n\
                       mailed.sort();\n\
                       mailed"
        }))
        .await;
        let mailed = |as_of: &'static str| {
            let app = app.clone();
            let reminder = reminder.clone();
            async move {
                let report = run(&app, &reminder, json!({"as_of": as_of})).await;
                assert_eq!(report["status"], "succeeded", "{report}");
                report["result"].clone()
            }
        };
        // Christmas day in Shanghai: today's birthday and one across the year end.
        assert_eq!(mailed("2027-12-25T01:00:00Z").await, json!(["in seven days", "today"]));
        // A common year: 29 February is kept on the 28th, with the 28th's own.
        assert_eq!(mailed("2027-02-21T01:00:00Z").await, json!(["last of february", "leap day"]));
        // A leap year: the 29th is the 29th.
        assert_eq!(mailed("2028-02-22T01:00:00Z").await, json!(["leap day"]));
        // 23:30 UTC on 24 December is already Christmas in Shanghai.
        assert_eq!(mailed("2027-12-24T23:30:00Z").await, json!(["in seven days", "today"]));
        let sent = outbox(&app).await;
        assert_eq!(sent.len(), 7);
        let subjects: BTreeSet<String> = sent.iter().map(|m| m["subject"].as_str().unwrap().to_owned()).collect();
        assert!(subjects.contains("Happy birthday, today!"), "{subjects:?}");
        assert!(subjects.contains("in seven days's birthday is on January 1"), "{subjects:?}");
        assert!(subjects.contains("leap day's birthday is on February 28"), "{subjects:?}");
        // No SMTP server is configured: the messages are written as .eml files.
        let folder = app.database.data_dir.join("outbox");
        eventually(Duration::from_secs(15), "seven .eml files", || {
            let folder = folder.clone();
            async move {
                std::fs::read_dir(&folder).map(|d| d.count()).unwrap_or(0) == 7
            }
        })
        .await;
    }

    async fn settings_are_validated(app: TestApp) {
        let settings = app.get("/api/settings").await.expect(200).body;
        assert_eq!(settings["birthday_reminder_days"], 7);
        assert_eq!(settings["decimal_places"]["orders"], 2);
        let refused = app
            .patch("/api/settings", &json!({"time_zone": "Mars/Olympus", "birthday_reminder_days": -1,
                                            "decimal_places": {"orders": 9}, "smtp_url": "http://x"}))
            .await
            .expect(422);
        let mut fields = refused.error_fields();
        fields.sort();
        assert_eq!(fields, ["birthday_reminder_days", "decimal_places", "smtp_url", "time_zone"]);
        let changed = app
            .patch("/api/settings", &json!({"decimal_places": {"quotes": 3},
                                            "smtp_url": "smtps://crm:s3cret@mail.example.test"}))
            .await
            .expect(200)
            .body;
        assert_eq!(changed["decimal_places"], json!({"quotes": 3, "orders": 2, "contracts": 2, "products": 2}));
        assert_eq!(changed["smtp_url"], "smtps://crm:***@mail.example.test");
        // A user who does not manage settings sees only what formatting needs, and changes nothing.
        app.post("/api/users", &json!({"email": "ro@example.test", "password": "password 1234", "roles": ["read_only"]}))
            .await
            .expect(201);
        let reader = app.login("ro@example.test", "password 1234").await;
        let seen = reader.get("/api/settings").await.expect(200).body;
        assert!(seen.get("smtp_url").is_none());
        assert_eq!(seen["decimal_places"]["quotes"], 3);
        reader.patch("/api/settings", &json!({"company_name": "x"})).await.expect(403);
        reader.get("/api/automations").await.expect(403);
    }
}

on_both_databases! {
    async fn jobs_outlive_their_server_and_missed_slots_fire_once(app: TestApp) {
        contact_entity(&app).await;
        template(&app, "hello", json!({"en": {"subject": "Hello {{name}}", "text": "Hi"}})).await;
        // This server's workers and scheduler are held: what it queues waits in the database.
        app.ctx.pause_background(true);
        let greeter = automation(&app, json!({
            "name": "Greets new contacts",
            "trigger": {"type": "record", "entity": "contact", "events": ["created"]},
            "script": "mail::send(#{ to: record.email, template: \"hello\", data: #{ name: record.name } }); record.name"
        }))
        .await;
        let cron = automation(&app, json!({
            "name": "Every second", "trigger": {"type": "cron", "cron": "* * * * * *"},
            "script": "slot"
        }))
        .await;
        app.create_record("contact", &json!({"name": "Zhou", "email": "zhou@example.test"})).await;
        // Slots go by while nobody runs them.
        crate::common::seconds_pass(3).await;
        assert!(runs(&app, &greeter).await.is_empty());
        assert!(runs(&app, &cron).await.is_empty(), "no server fired the slots meanwhile");
        // Another server on the same database picks up the queued job, and fires the missed
        // slots once — as the newest of them — before the live ones.
        let started = chrono::Utc::now();
        let (other, server) = app.second_instance().await;
        eventually(Duration::from_secs(60), "the queued run", || async {
            runs(&other, &greeter).await.len() == 1
        })
        .await;
        assert_eq!(runs(&other, &greeter).await[0]["result"], "Zhou");
        eventually(Duration::from_secs(60), "two live slots", || async {
            runs(&other, &cron).await.len() >= 2
        })
        .await;
        other.patch(&format!("/api/automations/{cron}"), &json!({"enabled": false})).await.expect(200);
        other.queue_idle().await;
        let slots: Vec<chrono::DateTime<chrono::Utc>> = runs(&other, &cron)
            .await
            .iter()
            .map(|r| r["slot"].as_str().unwrap().parse().unwrap())
            .collect();
        let earliest = *slots.iter().min().unwrap();
        assert!(
            earliest > started - chrono::Duration::milliseconds(1100),
            "a slot from before the restart fired besides the newest: {slots:?} (started {started})"
        );
        let unique: BTreeSet<_> = slots.iter().collect();
        assert_eq!(unique.len(), slots.len());
        assert!(slots.len() >= 2, "{slots:?}");
        // The run log keeps `run_log_days` of history.
        other.patch("/api/settings", &json!({"run_log_days": 1})).await.expect(200);
        app.sql(
            "UPDATE automation_runs SET started_at = '2000-01-01T00:00:00.000000Z'",
            &[],
        )
        .await;
        let forgotten = tessera::server::forget_old_runs(&other.ctx).await.unwrap();
        assert!(forgotten > slots.len() as u64, "the runs and their jobs");
        assert!(runs(&other, &cron).await.is_empty());
        server.stop().await.unwrap();
    }
}
