//! Template packages: the built-in CRM templates installed through the API and the CLI,
//! idempotent installs, upgrades that keep what users changed, export to another server, and
//! the shipped reminder automations mailing through a real SMTP server.

use std::path::Path;
use std::time::Duration;

use chrono::{Datelike, Utc};
use serde_json::{Value, json};

use crate::common::id;
use crate::common::{Backend, TestApp, eventually, run_with_templates};
use crate::on_both_databases;
use crate::smtp::SmtpServer;

async fn install(app: &TestApp, name: &str, sample_data: bool) -> Value {
    app.post(
        &format!("/api/templates/{name}/install"),
        &json!({"sample_data": sample_data}),
    )
    .await
    .expect(200)
    .body
}

async fn count(app: &TestApp, entity: &str) -> i64 {
    app.get(&format!("/api/records/{entity}?count=true&limit=1"))
        .await
        .expect(200)
        .body["total"]
        .as_i64()
        .unwrap()
}

fn items(v: &Value) -> Vec<Value> {
    v["items"].as_array().cloned().unwrap_or_default()
}

const CRM: &[&str] = &["customer", "sales", "service", "marketing"];

on_both_databases! {
    async fn the_built_in_templates_install_with_sample_data_once(app: TestApp) {
        let list = app.get("/api/templates").await.expect(200).body;
        let names: Vec<&str> = list["items"].as_array().unwrap().iter()
            .map(|t| t["name"].as_str().unwrap()).collect();
        for name in CRM {
            assert!(names.contains(name), "{name} is offered: {names:?}");
        }
        let marketing = list["items"].as_array().unwrap().iter().find(|t| t["name"] == "marketing").unwrap();
        assert_eq!(marketing["dependencies"], json!(["customer", "sales"]));
        assert_eq!(marketing["installed_version"], Value::Null);

        // Marketing pulls in what it depends on, in order, in one go.
        let report = install(&app, "marketing", true).await;
        assert_eq!(report["changed"], true);
        let order: Vec<&str> = report["templates"].as_array().unwrap().iter()
            .map(|t| t["name"].as_str().unwrap()).collect();
        assert_eq!(order, ["customer", "sales", "marketing"]);
        let report = install(&app, "service", true).await;
        assert_eq!(report["templates"][0]["action"], "unchanged");
        assert_eq!(report["templates"][1]["action"], "installed");

        let expected = [("customer", 60), ("contact", 120), ("communication", 80), ("product", 20),
                        ("lead", 60), ("opportunity", 50), ("contract", 20), ("order", 30),
                        ("service_request", 40), ("kb_article", 12), ("campaign", 6),
                        ("campaign_member", 40)];
        let mut total = 0;
        for (entity, n) in expected {
            assert_eq!(count(&app, entity).await, n, "{entity} sample records");
            total += n;
        }
        assert!(total > 500, "several hundred sample records: {total}");
        // Sample data is realistic: Chinese and English names, rollups computed.
        let customers = app.get("/api/records/customer?limit=60").await.expect(200).body;
        let names: Vec<String> = items(&customers).iter().map(|c| c["name"].as_str().unwrap().to_owned()).collect();
        assert!(names.iter().any(|n| n.contains("有限公司")), "{names:?}");
        assert!(names.iter().any(|n| n.is_ascii()), "{names:?}");
        let orders = app.get("/api/records/order?filter=total%20%3E%200&count=true&limit=1").await.expect(200).body;
        assert_eq!(orders["total"], 30, "every sample order has a total rolled up from its lines");

        // Every entity has a form and a list view; the pipeline is a kanban by stage.
        let entities = app.get("/api/entities").await.expect(200).body;
        let entities = entities.as_array().cloned().unwrap_or_else(|| items(&entities));
        assert!(entities.len() >= 21, "{} entities", entities.len());
        let views = items(&app.get("/api/views").await.expect(200).body);
        for entity in &entities {
            let name = entity["name"].as_str().unwrap();
            let forms = items(&app.get(&format!("/api/entities/{name}/forms")).await.expect(200).body);
            assert!(!forms.is_empty(), "{name} has a form");
            assert!(views.iter().any(|v| v["entity"] == name && v["kind"] == "list"), "{name} has a list view");
        }
        let pipeline = views.iter().find(|v| v["entity"] == "opportunity" && v["name"] == "pipeline").unwrap();
        assert_eq!(pipeline["kind"], "kanban");
        assert_eq!(pipeline["group_by"], "stage");
        assert_eq!(pipeline["sum"], "amount");
        let roles = items(&app.get("/api/roles").await.expect(200).body);
        for role in ["customer_admin", "sales_director", "service_manager", "marketing_manager"] {
            assert!(roles.iter().any(|r| r["name"] == role), "role {role}");
        }

        // Again: nothing changes, and the answer says so.
        let before = app.get("/api/entities/customer").await.expect(200).body["version"].clone();
        for name in CRM {
            let report = install(&app, name, true).await;
            assert_eq!(report["changed"], false, "{name}: {report}");
            assert!(report["message"].as_str().unwrap().contains("nothing changed"), "{report}");
        }
        assert_eq!(app.get("/api/entities/customer").await.expect(200).body["version"], before);
        assert_eq!(count(&app, "customer").await, 60);
        let list = app.get("/api/templates").await.expect(200).body;
        for t in list["items"].as_array().unwrap().iter().filter(|t| CRM.contains(&t["name"].as_str().unwrap())) {
            assert_eq!(t["installed_version"], "1.0.0");
            assert_eq!(t["sample_data_installed"], true);
        }
    }

    async fn the_public_knowledge_base_shows_only_published_public_articles(app: TestApp) {
        let visitor = app.anonymous();
        visitor.get("/kb/search?q=x").await.expect(404);
        install(&app, "service", true).await;
        let found = visitor.get("/kb/search?q=网关").await.expect(200).body;
        let titles: Vec<&str> = found["items"].as_array().unwrap().iter().map(|a| a["title"].as_str().unwrap()).collect();
        assert_eq!(titles, ["如何重置数据采集网关"]);
        assert_eq!(found["items"][0].as_object().unwrap().len(), 5, "only id, title, category, body, updated_at");
        // Internal and unpublished articles stay inside.
        assert!(visitor.get("/kb/search?q=上门规范").await.expect(200).body["items"].as_array().unwrap().is_empty());
        assert!(visitor.get("/kb/search?q=MES").await.expect(200).body["items"].as_array().unwrap().is_empty());
        let all = visitor.get("/kb/search").await.expect(200).body;
        assert_eq!(all["items"].as_array().unwrap().len(), 8);
        app.create_record("kb_article", &json!({"title": "打印机卡纸 <b>处理</b>", "body": "打开后盖取出纸张。",
            "category": "faq", "visibility": "public", "published": true})).await;
        let page = visitor.get("/kb?q=卡纸").await.expect(200);
        let html = page.body.as_str().map(str::to_owned).unwrap_or_else(|| page.body.to_string());
        assert!(html.contains("打印机卡纸 &lt;b&gt;处理&lt;/b&gt;"), "escaped: {html}");
    }

    async fn email_campaigns_honour_unsubscribe_links(app: TestApp) {
        let smtp = SmtpServer::start().await;
        install(&app, "marketing", false).await;
        app.patch("/api/settings", &json!({"smtp_url": smtp.url(), "public_url": "https://crm.acme.test/"}))
            .await.expect(200);
        for (name, email) in [("Li Lei", Some("lilei@example.test")), ("Han Meimei", Some("han@example.test")),
                              ("王芳", Some("wangfang@example.test")), ("No Mail", None)] {
            app.create_record("contact", &json!({"name": name, "email": email})).await;
        }
        let first = app.create_record("email_campaign", &json!({"name": "Spring news", "status": "sending"})).await;
        let mail = smtp.wait_for(3, Duration::from_secs(20)).await;
        assert_eq!(mail.len(), 3);
        let to_li = mail.iter().find(|m| m.to == ["lilei@example.test"]).expect("a mail to Li Lei");
        assert!(to_li.text.contains("Dear Li Lei"), "{}", to_li.text);
        let link = to_li.text.lines().find_map(|l| l.strip_prefix("Unsubscribe: ")).unwrap().trim().to_owned();
        assert!(link.starts_with("https://crm.acme.test/unsubscribe?token="), "{link}");
        let token = link.split_once("token=").unwrap().1.to_owned();
        // Each address has its own link.
        let to_han = mail.iter().find(|m| m.to == ["han@example.test"]).unwrap();
        assert!(!to_han.text.contains(&token));
        app.queue_idle().await;
        let done = app.get(&format!("/api/records/email_campaign/{}", id(&first))).await.expect(200).body;
        assert_eq!((done["status"].as_str(), done["sent_count"].as_i64(), done["skipped_count"].as_i64()),
                   (Some("sent"), Some(3), Some(0)), "the audience view holds contacts with an email");

        // Opening the link asks; the button unsubscribes; a forged link is refused.
        let visitor = app.anonymous();
        let page = visitor.get(&format!("/unsubscribe?token={token}")).await.expect(200);
        assert!(page.body.as_str().unwrap().contains("lilei@example.test"));
        let forged = token.replace('.', ".0");
        visitor.get(&format!("/unsubscribe?token={forged}")).await.expect(404);
        let client = reqwest::Client::new();
        let posted = client.post(visitor.url("/unsubscribe"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("token={token}")).send().await.unwrap();
        assert_eq!(posted.status(), 200);
        assert!(posted.text().await.unwrap().contains("lilei@example.test"));

        let second = app.create_record("email_campaign", &json!({"name": "Summer news", "status": "sending"})).await;
        let mail = smtp.wait_for(5, Duration::from_secs(20)).await;
        app.queue_idle().await;
        let later: Vec<&crate::smtp::Received> = mail.iter().skip(3).collect();
        let mut recipients: Vec<String> = later.iter().map(|m| m.to.join(",")).collect();
        recipients.sort();
        assert_eq!(recipients, ["han@example.test", "wangfang@example.test"], "the unsubscribed address is skipped");
        assert_eq!(smtp.received().len(), 5);
        let done = app.get(&format!("/api/records/email_campaign/{}", id(&second))).await.expect(200).body;
        assert_eq!((done["sent_count"].as_i64(), done["skipped_count"].as_i64()), (Some(2), Some(1)));
        smtp.stop();
    }

    async fn the_sales_and_service_automations_do_their_work(app: TestApp) {
        install(&app, "sales", false).await;
        install(&app, "service", false).await;
        let mut users = std::collections::HashMap::new();
        for (name, role) in [("amy", "sales_rep"), ("bob", "sales_rep"), ("eng", "service_engineer"),
                             ("ann", "service_agent")] {
            let user = app.post("/api/users", &json!({"email": format!("{name}@acme.test"),
                "password": "a long password 1", "display_name": name, "roles": [role]})).await.expect(201).body;
            users.insert(name, id(&user));
        }
        // Leads: scored, and dealt to the sales reps in turn.
        let mut leads = Vec::new();
        for name in ["L1", "L2", "L3"] {
            leads.push(app.create_record("lead", &json!({"name": name, "company": "X 公司",
                "source": "referral", "phone": "13800000000"})).await);
        }
        for (lead, owner) in leads.iter().zip(["amy", "bob", "amy"]) {
            let path = format!("/api/records/lead/{}", id(lead));
            let want = users[owner].clone();
            eventually(Duration::from_secs(15), "lead assignment and score", || {
                let (path, want) = (path.clone(), want.clone());
                let app = &app;
                async move {
                    let lead = app.get(&path).await.expect(200).body;
                    lead["owner"] == want.as_str() && lead["score"] == 75
                }
            }).await;
        }

        // The customer's lifecycle moves with opportunities and orders.
        let customer = app.create_record("customer", &json!({"name": "华南物流有限公司"})).await;
        let path = format!("/api/records/customer/{}", id(&customer));
        let stage_is = |stage: &'static str| {
            let (path, app) = (path.clone(), &app);
            async move {
                eventually(Duration::from_secs(15), stage, || {
                    let path = path.clone();
                    async move { app.get(&path).await.expect(200).body["lifecycle_stage"] == stage }
                }).await;
            }
        };
        let opportunity = app.create_record("opportunity", &json!({"name": "扩容", "customer": id(&customer),
            "amount": "10000"})).await;
        stage_is("intent").await;
        assert_eq!(opportunity["probability"], 10);
        app.patch(&format!("/api/records/opportunity/{}", id(&opportunity)), &json!({"stage": "won"})).await.expect(200);
        stage_is("deal").await;
        let mut orders = Vec::new();
        for _ in 0..4 {
            orders.push(app.create_record("order", &json!({"customer": id(&customer)})).await);
        }
        stage_is("loyal").await;
        // Orders move step by step; approval is stamped.
        let order = format!("/api/records/order/{}", id(&orders[0]));
        let refused = app.patch(&order, &json!({"status": "settled"})).await.expect(422);
        assert!(refused.body["detail"].as_str().unwrap().contains("cannot go from draft to settled"));
        let approved = app.patch(&order, &json!({"status": "approved"})).await.expect(200).body;
        assert!(approved["approved_at"].is_string());

        // Service requests go to the least-loaded person for their category.
        let repair = app.create_record("service_request", &json!({"subject": "无法开机", "channel": "phone",
            "category": "repair", "reported_at": "2026-01-01T08:00:00Z", "priority": "urgent"})).await;
        let question = app.create_record("service_request", &json!({"subject": "授权咨询", "channel": "web",
            "category": "consultation", "reported_at": Utc::now().to_rfc3339()})).await;
        for (request, who) in [(&repair, "eng"), (&question, "ann")] {
            let path = format!("/api/records/service_request/{}", id(request));
            let want = users[who].clone();
            eventually(Duration::from_secs(15), "service assignment", || {
                let (path, want, app) = (path.clone(), want.clone(), &app);
                async move {
                    let r = app.get(&path).await.expect(200).body;
                    r["assignee"] == want.as_str() && r["status"] == "assigned"
                }
            }).await;
        }
        assert_eq!(repair["sla_due"], "2026-01-01T12:00:00.000000Z", "urgent: 4 hours");
        let steps = app.get(&format!("/api/records/service_step?filter=request%20%3D%20%22{}%22", id(&repair)))
            .await.expect(200).body;
        assert_eq!(steps["items"][0]["step"], "Assigned to eng");
        // Past its SLA: one alert to the assignee, then marked.
        let automations = items(&app.get("/api/automations").await.expect(200).body);
        let sla = id(automations.iter().find(|a| a["name"] == "SLA breach alert").unwrap());
        let run = app.post(&format!("/api/automations/{sla}/run"), &json!({})).await.expect(200).body;
        // Its schedule (every 10 minutes) may have fired meanwhile and alerted first.
        let log = app.get(&format!("/api/automations/{sla}/runs")).await.expect(200).body;
        let by_schedule: i64 = items(&log).iter()
            .filter(|r| r["trigger"]["type"] == "cron")
            .map(|r| r["result"].as_i64().unwrap_or(0))
            .sum();
        assert_eq!(run["result"].as_i64().unwrap_or(0) + by_schedule, 1, "{run} {log}");
        let run = app.post(&format!("/api/automations/{sla}/run"), &json!({})).await.expect(200).body;
        assert_eq!(run["result"], 0, "alerted once: {run}");
        // Closing a request sends its contact the satisfaction survey.
        let contact = app.create_record("contact", &json!({"name": "陈静", "email": "chenjing@example.test"})).await;
        let path = format!("/api/records/service_request/{}", id(&question));
        app.patch(&path, &json!({"contact": id(&contact), "status": "closed"})).await.expect(200);
        eventually(Duration::from_secs(15), "the survey", || {
            let app = &app;
            async move {
                let outbox = app.get("/api/outbox?limit=100").await.expect(200).body;
                outbox["items"].as_array().unwrap().iter().any(|m| m["template"] == "satisfaction_survey"
                    && m["to"] == json!(["chenjing@example.test"]))
            }
        }).await;
        let outbox = app.get("/api/outbox?limit=100").await.expect(200).body;
        let sla_mail = outbox["items"].as_array().unwrap().iter().filter(|m| m["template"] == "sla_breach").count();
        assert_eq!(sla_mail, 1);
    }

    async fn the_seed_fields_exist_with_their_chinese_labels(app: TestApp) {
        install(&app, "customer", false).await;
        let customer_seed = ["助记码", "客户编号", "客户级别", "客户类型", "客户状态", "信用等级", "信用额度",
            "上级单位", "财务电话", "公司主页", "备注", "注册时间", "负责人", "负责部门", "客户名称", "办公地址",
            "主要电话", "邮政编码", "电子邮箱", "所在城市", "所属行业"];
        let contact_seed = ["姓名", "性别", "年龄", "所在部门", "职务", "上级主管", "办公电话", "移动电话",
            "电子邮箱", "住宅电话", "传真号码", "生日", "个人爱好", "备注", "负责员工", "负责部门"];
        for (entity, seed) in [("customer", &customer_seed[..]), ("contact", &contact_seed[..])] {
            let definition = app.get(&format!("/api/entities/{entity}")).await.expect(200).body;
            let form = app.get(&format!("/api/entities/{entity}/forms/default")).await.expect(200).body;
            // Field labels, and the labels a form gives the system fields (owner, department).
            let mut labels: Vec<(String, String)> = definition["schema"]["properties"].as_object().unwrap()
                .iter()
                .map(|(name, p)| (p["x-label"]["zh-CN"].as_str().unwrap_or_default().to_owned(), name.clone()))
                .collect();
            for section in form["sections"].as_array().unwrap() {
                for field in section["fields"].as_array().unwrap() {
                    if let Some(label) = field["label"]["zh-CN"].as_str() {
                        labels.push((label.to_owned(), field["field"].as_str().unwrap().to_owned()));
                    }
                }
            }
            for wanted in seed {
                let found = labels.iter().find(|(label, _)| label == wanted);
                assert!(found.is_some(), "{entity} has a field labelled {wanted}");
                // Every such field is on the form, so users see it.
                let field = &found.unwrap().1;
                assert!(form["sections"].as_array().unwrap().iter().any(|s| s["fields"].as_array().unwrap()
                    .iter().any(|f| f["field"] == field.as_str())), "{entity}.{field} is on the form");
            }
        }
        let definition = app.get("/api/entities/customer").await.expect(200).body;
        let properties = &definition["schema"]["properties"];
        assert_eq!(properties["code"]["x-kind"], "autonumber");
        assert_eq!(properties["parent"]["x-kind"], "lookup");
        assert_eq!(properties["parent"]["x-target"], "customer");
        let stages: Vec<&str> = properties["lifecycle_stage"]["x-options"].as_array().unwrap().iter()
            .map(|o| o["label"]["zh-CN"].as_str().unwrap()).collect();
        assert_eq!(stages, ["潜在客户", "意向客户", "成交客户", "忠诚客户"]);
        let contact = app.get("/api/entities/contact").await.expect(200).body;
        assert_eq!(contact["schema"]["properties"]["customer"]["x-target"], "customer");
        // Customer groups: saved views by industry, region and level.
        let views = items(&app.get("/api/views?entity=customer").await.expect(200).body);
        for name in ["by_industry", "by_region", "key_accounts", "lifecycle"] {
            assert!(views.iter().any(|v| v["name"] == name), "customer view {name}");
        }
    }

    async fn the_shipped_reminders_mail_exactly_who_is_due(app: TestApp) {
        let smtp = SmtpServer::start().await;
        install(&app, "sales", false).await;
        app.patch("/api/settings", &json!({
            "smtp_url": smtp.url(), "smtp_sender": "CRM <crm@acme.test>",
            "birthday_reminder_days": 3, "receivables_reminder_days": 7
        })).await.expect(200);
        let mut reps = Vec::new();
        for name in ["amy", "bob"] {
            let user = app.post("/api/users", &json!({
                "email": format!("{name}@acme.test"), "password": "a long password 1",
                "display_name": name, "roles": ["sales_rep"], "language": "en"
            })).await.expect(201).body;
            reps.push(id(&user));
        }
        let today = Utc::now().date_naive();
        let birthday = |days: i64, years: i32| {
            let d = today + chrono::Duration::days(days);
            d.with_year(d.year() - years).unwrap_or(d).format("%Y-%m-%d").to_string()
        };
        let customer = app.create_record("customer", &json!({"name": "华东贸易有限公司"})).await;
        // Birthdays in 3 days (two owners), and near misses.
        for (name, days, owner) in [("Due Amy", 3, 0), ("Due Bob", 3, 1), ("Early", 2, 0), ("Late", 4, 1),
                                    ("Today", 0, 0)] {
            app.create_record("contact", &json!({"name": name, "birthday": birthday(days, 35),
                                                 "owner": reps[owner], "email": "x@example.test"})).await;
        }
        app.create_record("contact", &json!({"name": "No birthday", "owner": reps[0]})).await;
        // Receivables due in 7 days (one paid), and on other days.
        let due = |days: i64| (today + chrono::Duration::days(days)).format("%Y-%m-%d").to_string();
        for (days, amount, status, owner) in [(7, "1200.00", "open", 1), (7, "50.00", "paid", 0),
                                              (6, "10.00", "open", 0), (8, "10.00", "open", 0),
                                              (7, "300.50", "partial", 0)] {
            app.create_record("receivable", &json!({"customer": id(&customer), "due_date": due(days),
                "amount": amount, "paid": if status == "partial" { "100.00" } else { "0" },
                "status": status, "owner": reps[owner]})).await;
        }
        let automations = items(&app.get("/api/automations").await.expect(200).body);
        let by_name = |n: &str| id(automations.iter().find(|a| a["name"] == n).unwrap());
        for name in ["Birthday reminder", "Receivables reminder"] {
            let run = app.post(&format!("/api/automations/{}/run", by_name(name)), &json!({}))
                .await.expect(200).body;
            assert_eq!(run["status"], "succeeded", "{name}: {run}");
        }
        let mail = smtp.wait_for(4, Duration::from_secs(20)).await;
        app.queue_idle().await;
        let mail = if smtp.received().len() > mail.len() { smtp.received() } else { mail };
        let mut got: Vec<(String, String)> = mail.iter()
            .map(|m| (m.to.join(","), m.subject.clone())).collect();
        got.sort();
        let mut want = vec![
            ("amy@acme.test".to_owned(), "Birthday in 3 days: Due Amy".to_owned()),
            ("bob@acme.test".to_owned(), "Birthday in 3 days: Due Bob".to_owned()),
            ("amy@acme.test".to_owned(), "Receivable AR-00005 is due in 7 days".to_owned()),
            ("bob@acme.test".to_owned(), "Receivable AR-00001 is due in 7 days".to_owned()),
        ];
        want.sort();
        assert_eq!(got, want, "exactly the contacts with birthdays in 3 days and the owners of receivables due in 7");
        let partial = mail.iter().find(|m| m.subject.contains("AR-00005")).unwrap();
        assert!(partial.text.contains("200.50 of 300.50"), "{}", partial.text);
        assert!(partial.text.contains("华东贸易有限公司"), "{}", partial.text);
        smtp.stop();
    }
}

// ---- upgrades -------------------------------------------------------------------------------

fn write(dir: &Path, path: &str, value: &Value) {
    let full = dir.join(path);
    std::fs::create_dir_all(full.parent().unwrap()).unwrap();
    std::fs::write(full, serde_json::to_string_pretty(value).unwrap()).unwrap();
}

/// Version 1 or 2 of a small test package.
fn gadget_package(dir: &Path, version: u32) {
    let root = dir.join("gadgets");
    let _ = std::fs::remove_dir_all(&root);
    let mut properties = json!({
        "name": {"x-kind": "text", "x-label": {"en": "Name", "zh-CN": "名称"}},
        "color": {"x-kind": "select", "x-label": {"en": "Colour", "zh-CN": "颜色"},
                  "x-options": [{"value": "red"}, {"value": "blue"}]},
        "size": {"x-kind": "integer", "x-label": {"en": "Size", "zh-CN": "尺寸"}}
    });
    let mut all_columns = json!(["name"]);
    let mut recent_columns = json!(["name", "color"]);
    if version == 2 {
        properties["weight"] =
            json!({"x-kind": "decimal", "x-label": {"en": "Weight", "zh-CN": "重量"}});
        properties["size"]["x-label"] = json!({"en": "Size (cm)", "zh-CN": "尺寸（厘米）"});
        properties["color"]["x-options"] =
            json!([{"value": "red"}, {"value": "blue"}, {"value": "green"}]);
        all_columns = json!(["name", "weight"]);
        recent_columns = json!(["name", "color", "weight"]);
    }
    write(
        &root,
        "manifest.json",
        &json!({
            "name": "gadgets", "version": format!("{version}.0.0"),
            "title": {"en": "Gadgets", "zh-CN": "小工具"}, "description": {"en": "A test package", "zh-CN": "测试"},
            "depends": [], "entities": ["gadget"]
        }),
    );
    write(
        &root,
        "entities/gadget.json",
        &json!({
            "name": "gadget", "label": {"en": "Gadget", "zh-CN": "小工具"},
            "schema": {"required": ["name"], "properties": properties}
        }),
    );
    write(
        &root,
        "views.json",
        &json!([
            {"entity": "gadget", "name": "all", "kind": "list", "columns": all_columns},
            {"entity": "gadget", "name": "recent", "kind": "list", "columns": recent_columns, "sort": "-created_at"}
        ]),
    );
    write(
        &root,
        "forms.json",
        &json!([
            {"entity": "gadget", "name": "default", "sections": [{"columns": 2, "fields": ["name", "color", "size"]}]}
        ]),
    );
}

async fn upgrade_keeps_user_changes(backend: Backend) {
    let packages = tempfile::tempdir().unwrap();
    gadget_package(packages.path(), 1);
    let dir = packages.path().to_path_buf();
    run_with_templates(backend, Some(dir.clone()), |app| async move {
        let report = install(&app, "gadgets", false).await;
        assert_eq!(report["templates"][0]["action"], "installed");
        app.create_record(
            "gadget",
            &json!({"name": "Sprocket", "color": "red", "size": 3}),
        )
        .await;
        // The user adds a field, edits a view and a field's options.
        app.post(
            "/api/entities/gadget/fields",
            &json!({"name": "nickname", "x-kind": "text"}),
        )
        .await
        .expect(201);
        app.patch(
            "/api/entities/gadget/fields/color",
            &json!({
                "x-options": [{"value": "red"}, {"value": "blue"}, {"value": "purple"}]
            }),
        )
        .await
        .expect(200);
        let views = items(&app.get("/api/views?entity=gadget").await.expect(200).body);
        let all = views.iter().find(|v| v["name"] == "all").unwrap();
        app.patch(
            &format!("/api/views/{}", id(all)),
            &json!({"columns": ["name", "color", "nickname"]}),
        )
        .await
        .expect(200);

        gadget_package(&dir, 2);
        let report = install(&app, "gadgets", false).await;
        let package = &report["templates"][0];
        assert_eq!(package["action"], "upgraded", "{report}");
        assert_eq!(package["from"], "1.0.0");
        assert_eq!(package["to"], "2.0.0");
        let changes = package["changes"].as_array().unwrap();
        let has = |kind: &str, key: &str, action: &str| {
            changes
                .iter()
                .any(|c| c["kind"] == kind && c["key"] == key && c["action"] == action)
        };
        assert!(has("field", "gadget.weight", "added"), "{report}");
        assert!(
            has("field", "gadget.size", "updated"),
            "untouched fields follow the template: {report}"
        );
        assert!(
            has("view", "gadget/recent", "updated"),
            "untouched views follow the template: {report}"
        );
        let kept = package["kept"].as_array().unwrap();
        let view_kept = kept
            .iter()
            .find(|k| k["kind"] == "view" && k["key"] == "gadget/all")
            .unwrap();
        assert!(
            view_kept["reason"]
                .as_str()
                .unwrap()
                .contains("you changed it"),
            "{view_kept}"
        );
        let color_kept = kept.iter().find(|k| k["key"] == "gadget.color").unwrap();
        assert!(
            color_kept["reason"].as_str().unwrap().contains("green"),
            "{color_kept}"
        );

        let definition = app.get("/api/entities/gadget").await.expect(200).body;
        let properties = &definition["schema"]["properties"];
        assert!(
            properties.get("nickname").is_some(),
            "the user's field survives"
        );
        assert_eq!(
            properties["weight"]["x-kind"], "decimal",
            "the new field arrives"
        );
        assert_eq!(properties["size"]["x-label"]["en"], "Size (cm)");
        let colors: Vec<&str> = properties["color"]["x-options"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["value"].as_str().unwrap())
            .collect();
        assert_eq!(
            colors,
            ["red", "blue", "purple", "green"],
            "the user's option stays, the new one joins"
        );
        let views = items(&app.get("/api/views?entity=gadget").await.expect(200).body);
        let all = views.iter().find(|v| v["name"] == "all").unwrap();
        assert_eq!(
            all["columns"],
            json!(["name", "color", "nickname"]),
            "the user's view edit survives"
        );
        let recent = views.iter().find(|v| v["name"] == "recent").unwrap();
        assert_eq!(recent["columns"], json!(["name", "color", "weight"]));
        // Data is untouched; installing version 2 again changes nothing.
        assert_eq!(count(&app, "gadget").await, 1);
        assert_eq!(install(&app, "gadgets", false).await["changed"], false);
        // An older version does not replace a newer one.
        gadget_package(&dir, 1);
        let refused = app
            .post("/api/templates/gadgets/install", &json!({}))
            .await
            .expect(409);
        assert!(
            refused.body["detail"].as_str().unwrap().contains("newer"),
            "{}",
            refused.body
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upgrades_keep_user_changes_sqlite() {
    upgrade_keeps_user_changes(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upgrades_keep_user_changes_postgres() {
    upgrade_keeps_user_changes(Backend::Postgres).await;
}

// ---- export ---------------------------------------------------------------------------------

/// A definition without what differs between servers.
fn portable(doc: &Value) -> Value {
    let mut doc = doc.clone();
    for key in ["version", "created_at", "updated_at", "id", "owner"] {
        doc.as_object_mut().unwrap().remove(key);
    }
    doc
}

async fn export_installs_elsewhere(backend: Backend) {
    let exported = tempfile::tempdir().unwrap();
    let target = exported.path().join("my-customers");
    let target_for_first = target.clone();
    let (entities, forms, views) = {
        let captured = std::sync::Arc::new(std::sync::Mutex::new(None));
        let slot = captured.clone();
        crate::common::run(backend, |app| async move {
            install(&app, "customer", true).await;
            let chosen: Vec<String> = ["customer", "contact", "communication", "product"]
                .iter()
                .map(|s| s.to_string())
                .collect();
            let files = tessera::templates::export::export(
                &app.ctx,
                "my-customers",
                &chosen,
                &target_for_first,
            )
            .await
            .expect("export");
            assert!(files >= 7, "{files} files");
            let mut entities = Vec::new();
            let mut forms = Vec::new();
            for name in &chosen {
                entities.push(portable(
                    &app.get(&format!("/api/entities/{name}"))
                        .await
                        .expect(200)
                        .body,
                ));
                for form in items(
                    &app.get(&format!("/api/entities/{name}/forms"))
                        .await
                        .expect(200)
                        .body,
                ) {
                    forms.push(portable(&form));
                }
            }
            let views: Vec<Value> = items(&app.get("/api/views").await.expect(200).body)
                .iter()
                .map(portable)
                .collect();
            *slot.lock().unwrap() = Some((entities, forms, views));
        })
        .await;
        let Some(captured) = captured.lock().unwrap().take() else {
            return;
        };
        captured
    };
    assert!(target.join("manifest.json").is_file());
    run_with_templates(
        backend,
        Some(exported.path().to_path_buf()),
        |app| async move {
            let report = install(&app, "my-customers", false).await;
            assert_eq!(report["changed"], true, "{report}");
            let mut got_entities = Vec::new();
            let mut got_forms = Vec::new();
            for name in ["customer", "contact", "communication", "product"] {
                got_entities.push(portable(
                    &app.get(&format!("/api/entities/{name}"))
                        .await
                        .expect(200)
                        .body,
                ));
                for form in items(
                    &app.get(&format!("/api/entities/{name}/forms"))
                        .await
                        .expect(200)
                        .body,
                ) {
                    got_forms.push(portable(&form));
                }
            }
            assert_eq!(got_entities, entities, "the same entities");
            assert_eq!(got_forms, forms, "the same forms");
            let got_views: Vec<Value> = items(&app.get("/api/views").await.expect(200).body)
                .iter()
                .map(portable)
                .collect();
            assert_eq!(got_views.len(), views.len());
            assert_eq!(got_views, views, "the same views");
            // The automations on those entities came along (the duplicate warning).
            let automations = items(&app.get("/api/automations").await.expect(200).body);
            assert!(
                automations
                    .iter()
                    .any(|a| a["name"] == "Duplicate customer warning")
            );
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_installs_on_another_server_sqlite() {
    export_installs_elsewhere(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_installs_on_another_server_postgres() {
    export_installs_elsewhere(Backend::Postgres).await;
}

// ---- the command line -------------------------------------------------------------------------

fn cli(args: &[&str], data_dir: &Path, database_url: Option<&str>) -> (bool, String) {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_tessera"));
    command
        .args(args)
        .env("TESSERA_DATA_DIR", data_dir)
        .env("TESSERA_LOG_LEVEL", "warn")
        .env("TESSERA_NEW_USER_PASSWORD", "a long password 1")
        .env_remove("DATABASE_URL");
    match database_url {
        Some(url) => command.env("TESSERA_DATABASE_URL", url),
        None => command.env_remove("TESSERA_DATABASE_URL"),
    };
    let output = command.output().expect("tessera runs");
    let text = String::from_utf8_lossy(&output.stdout).into_owned()
        + String::from_utf8_lossy(&output.stderr).as_ref();
    (output.status.success(), text)
}

async fn cli_installs(database_url: Option<String>) {
    let data = tempfile::tempdir().unwrap();
    let url = database_url.as_deref();
    // Without an administrator there is nobody to install as.
    let (ok, out) = cli(&["template", "install", "customer"], data.path(), url);
    assert!(!ok && out.contains("no administrator"), "{out}");
    let (ok, out) = cli(
        &["user", "create", "--email", "admin@acme.test", "--admin"],
        data.path(),
        url,
    );
    assert!(ok, "{out}");
    let (ok, out) = cli(
        &["template", "install", "marketing", "--sample-data"],
        data.path(),
        url,
    );
    assert!(ok, "{out}");
    assert!(
        out.contains(
            "customer: installed 1.0.0; sales: installed 1.0.0; marketing: installed 1.0.0"
        ),
        "{out}"
    );
    assert!(
        out.contains("customer: 27 changes, 280 sample records"),
        "{out}"
    );
    let (ok, out) = cli(
        &["template", "install", "service", "--sample-data"],
        data.path(),
        url,
    );
    assert!(ok && out.contains("service: installed 1.0.0"), "{out}");
    for name in CRM {
        let (ok, out) = cli(
            &["template", "install", name, "--sample-data"],
            data.path(),
            url,
        );
        assert!(ok, "{out}");
        assert!(out.contains("nothing changed"), "{name}: {out}");
    }
    let (ok, out) = cli(&["template", "list"], data.path(), url);
    assert!(ok, "{out}");
    for name in CRM {
        let line = out
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_default();
        assert!(line.contains("installed: 1.0.0"), "{name}: {out}");
    }
    let (ok, out) = cli(&["template", "install", "nothing-here"], data.path(), url);
    assert!(
        !ok && out.contains("there is no template 'nothing-here'"),
        "{out}"
    );

    // `tessera import` reads a GBK file from disk as it goes; `tessera export` writes it back.
    let (gbk, _, _) =
        encoding_rs::GBK.encode("客户名称,客户级别\n命令行导入一号,\n命令行导入二号,\n");
    let file = data.path().join("customers.csv");
    std::fs::write(&file, &gbk).unwrap();
    let path = |p: &Path| p.to_str().unwrap().to_owned();
    let (ok, out) = cli(&["import", "customer", &path(&file)], data.path(), url);
    assert!(
        ok && out.contains("2 rows, 2 created, 0 updated, 0 failed"),
        "{out}"
    );
    let (ok, out) = cli(
        &[
            "import",
            "customer",
            &path(&data.path().join("missing.csv")),
        ],
        data.path(),
        url,
    );
    assert!(!ok && out.contains("cannot read"), "{out}");
    let exported = data.path().join("customers-out.csv");
    let (ok, out) = cli(
        &[
            "export",
            "customer",
            &path(&exported),
            "--filter",
            "name ~ \"命令行导入\"",
        ],
        data.path(),
        url,
    );
    assert!(ok, "{out}");
    let text = std::fs::read_to_string(&exported).unwrap();
    assert!(
        text.contains("命令行导入一号") && text.contains("命令行导入二号"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_command_line_installs_templates_sqlite() {
    cli_installs(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_command_line_installs_templates_postgres() {
    use sqlx::Connection;
    let Some(admin_url) = std::env::var(crate::common::PG_ENV)
        .ok()
        .filter(|u| !u.is_empty())
    else {
        eprintln!(
            "skipped: set {} to run this test on PostgreSQL",
            crate::common::PG_ENV
        );
        return;
    };
    let name = format!("tessera_cli_{}", uuid::Uuid::now_v7().simple());
    let mut admin = sqlx::PgConnection::connect(&admin_url)
        .await
        .expect("PostgreSQL");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut admin)
        .await
        .unwrap();
    let outcome = std::panic::AssertUnwindSafe(cli_installs(Some(crate::common::with_database(
        &admin_url, &name,
    ))));
    let outcome = futures::FutureExt::catch_unwind(outcome).await;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
    )))
    .execute(&mut admin)
    .await
    .ok();
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}
