//! Fast HTML tests of the pages: the real server over HTTP (no browser), on SQLite and (with
//! `TESSERA_TEST_DATABASE_URL`) PostgreSQL. They check the markup the pages send, escaping,
//! hidden fields, CSRF refusals and the security headers.

#[path = "../api/common.rs"]
#[allow(dead_code)]
mod common;

use common::{ADMIN_EMAIL, ADMIN_PASSWORD, TestApp};
use reqwest::StatusCode;
use reqwest::redirect::Policy;
use serde_json::{Value, json};

/// A browser-like client: the session cookie, its CSRF token, no redirects followed.
struct Browser {
    app: TestApp,
    client: reqwest::Client,
    cookie: String,
    csrf: String,
}

struct Page {
    status: StatusCode,
    headers: reqwest::header::HeaderMap,
    text: String,
}

impl Page {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }

    #[track_caller]
    fn expect(self, status: u16) -> Page {
        assert_eq!(
            self.status.as_u16(),
            status,
            "{}",
            &self.text[..self.text.len().min(3000)]
        );
        self
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .expect("client")
}

async fn read(response: reqwest::Response) -> Page {
    Page {
        status: response.status(),
        headers: response.headers().clone(),
        // Handlebars escapes `=` in attributes; browsers read it back as `=`.
        text: response
            .text()
            .await
            .unwrap_or_default()
            .replace("&#x3D;", "="),
    }
}

impl Browser {
    /// Signs in through the sign-in form, as a person would.
    async fn sign_in(app: &TestApp, email: &str, password: &str) -> Browser {
        let client = client();
        let login = read(client.get(app.url("/login")).send().await.unwrap())
            .await
            .expect(200);
        let pre = login
            .headers
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(|c| c.strip_prefix("tessera_pre="))
            .and_then(|c| c.split(';').next())
            .expect("a pre-session cookie")
            .to_owned();
        let field = attr_after(&login.text, "name=\"csrf\" value=\"");
        assert_eq!(field, pre, "the form's token is the cookie's");
        let posted = client
            .post(app.url("/login"))
            .header("cookie", format!("tessera_pre={pre}"))
            .form(&[
                ("csrf", pre.as_str()),
                ("email", email),
                ("password", password),
                ("next", "/"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(posted.status(), StatusCode::SEE_OTHER);
        let session = posted
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(|c| c.strip_prefix("tessera_session="))
            .and_then(|c| c.split(';').next())
            .expect("a session cookie")
            .to_owned();
        let mut browser = Browser {
            app: app.clone(),
            client,
            cookie: format!("tessera_session={session}"),
            csrf: String::new(),
        };
        let home = browser.get("/").await.expect(200);
        browser.csrf = attr_after(&home.text, "name=\"csrf-token\" content=\"");
        assert_eq!(browser.csrf, tessera::api::auth::csrf_token(&session));
        browser
    }

    async fn get(&self, path: &str) -> Page {
        read(
            self.client
                .get(self.app.url(path))
                .header("cookie", &self.cookie)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    async fn fragment(&self, path: &str) -> Page {
        read(
            self.client
                .get(self.app.url(path))
                .header("cookie", &self.cookie)
                .header("hx-request", "true")
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    /// A form post with the CSRF field (or without it when `csrf` is false).
    async fn post_form(&self, path: &str, form: &[(&str, &str)], csrf: bool) -> Page {
        let mut pairs: Vec<(&str, &str)> = form.to_vec();
        if csrf {
            pairs.push(("csrf", &self.csrf));
        }
        read(
            self.client
                .post(self.app.url(path))
                .header("cookie", &self.cookie)
                .form(&pairs)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    /// An htmx request: the CSRF header and an optional If-Match.
    async fn htmx(
        &self,
        method: reqwest::Method,
        path: &str,
        form: &[(&str, &str)],
        if_match: Option<i64>,
    ) -> Page {
        let mut request = self
            .client
            .request(method, self.app.url(path))
            .header("cookie", &self.cookie)
            .header("hx-request", "true")
            .header("x-csrf-token", &self.csrf)
            .form(form);
        if let Some(v) = if_match {
            request = request.header("if-match", format!("\"{v}\""));
        }
        read(request.send().await.unwrap()).await
    }
}

fn attr_after(text: &str, marker: &str) -> String {
    let start = text
        .find(marker)
        .unwrap_or_else(|| panic!("{marker} not in the page"))
        + marker.len();
    text[start..]
        .split('"')
        .next()
        .unwrap_or_default()
        .to_owned()
}

async fn install(app: &TestApp, name: &str) {
    app.post(
        &format!("/api/templates/{name}/install"),
        &json!({"sample_data": true}),
    )
    .await
    .expect(200);
}

fn id(v: &Value) -> String {
    v["id"].as_str().expect("an id").to_owned()
}

on_both_databases! {
    async fn pages_render_from_metadata_escaped_and_guarded(app: TestApp) {
        install(&app, "customer").await;
        install(&app, "sales").await;

        // Signed out: the workspace sends to the sign-in page, in the browser's language.
        let anonymous = client();
        let root = read(anonymous.get(app.url("/")).send().await.unwrap()).await;
        assert_eq!(root.status, StatusCode::SEE_OTHER);
        assert_eq!(root.header("location"), "/login");
        let login = read(anonymous.get(app.url("/login")).header("accept-language", "en-US,en;q=0.9").send().await.unwrap()).await.expect(200);
        assert!(login.text.contains("Sign in"), "English by Accept-Language");
        assert!(login.header("content-security-policy").contains("script-src 'self'"));
        assert!(login.header("content-security-policy").contains("frame-ancestors 'none'"));
        let zh = read(anonymous.get(app.url("/login")).header("accept-language", "zh-CN,zh;q=0.9").send().await.unwrap()).await.expect(200);
        assert!(zh.text.contains("登录"));
        // A wrong password shows the form again with the reason.
        let pre = attr_after(&zh.text, "name=\"csrf\" value=\"");
        let wrong = read(anonymous.post(app.url("/login")).header("cookie", format!("tessera_pre={pre}"))
            .form(&[("csrf", pre.as_str()), ("email", ADMIN_EMAIL), ("password", "nope")]).send().await.unwrap()).await;
        assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
        // Without the pre-session token the form is refused.
        let forged = read(anonymous.post(app.url("/login"))
            .form(&[("email", ADMIN_EMAIL), ("password", ADMIN_PASSWORD)]).send().await.unwrap()).await;
        assert_eq!(forged.status, StatusCode::FORBIDDEN);

        let admin = Browser::sign_in(&app, ADMIN_EMAIL, ADMIN_PASSWORD).await;
        let home = admin.get("/").await.expect(200);
        for text in ["客户管理", "销售管理", "客户", "销售机会", "我的商机"] {
            assert!(home.text.contains(text), "home shows {text}");
        }
        assert!(!home.text.contains("style="), "no style attributes");
        assert!(!home.text.contains("<script>"), "no inline script");

        // The list: views as tabs, columns from the view, sort links, totals of money.
        let list = admin.get("/e/customer").await.expect(200);
        assert!(list.text.contains("data-grid"));
        assert!(list.text.contains("客户名称"));
        assert!(list.text.contains("重点客户"), "the key-accounts view is a tab");
        let views = app.get("/api/views?entity=customer").await.expect(200).body;
        let key = views["items"].as_array().unwrap().iter().find(|v| v["name"] == "key_accounts").unwrap();
        let keyed = admin.get(&format!("/e/customer?view={}&sort=-credit_limit", id(key))).await.expect(200);
        assert!(keyed.text.contains("aria-sort=\"descending\""));
        assert!(keyed.text.contains("class=\"fchip\""), "the view's filter is a chip");
        assert!(keyed.text.contains("card-total"), "money totals");
        // More records than a page: the page comes without waiting for the sum, and its totals
        // row follows from its own URL.
        let many = (0..60).map(|i| json!({"name": format!("批量客户 {i}"), "credit_limit": "100.00"})).collect();
        app.create_records("customer", many).await;
        let long = admin.get(&format!("/e/customer?view={}&filter=&q=%E6%89%B9%E9%87%8F", id(key))).await.expect(200);
        let totals = attr_after(&long.text, "<tfoot hx-get=\"").replace("&amp;", "&");
        assert!(totals.starts_with("/e/customer/totals?"), "{totals}");
        let row = admin.get(&totals).await.expect(200);
        assert!(row.text.starts_with("<tfoot>") && row.text.contains("card-total"), "{}", row.text);
        assert!(row.text.contains("6,000.00"), "the sum of all 60, not of the page: {}", row.text);
        let bad = admin.get("/e/customer?filter=nonsense%20%3E%3E").await.expect(200);
        assert!(bad.text.contains("banner warn"), "a bad filter is explained, not a crash");

        // Every value is escaped: a record named like markup shows as text.
        let xss = "<img src=x onerror=alert(1)>";
        let evil = app.create_record("customer", &json!({"name": xss, "city": "<b>city</b>"})).await;
        let list = admin.get("/e/customer?q=onerror").await.expect(200);
        assert!(list.text.contains("&lt;img src&#x3D;x onerror&#x3D;alert(1)&gt;") || list.text.contains("&lt;img src=x onerror=alert(1)&gt;"), "escaped in the list");
        assert!(!list.text.contains(xss));
        let record = admin.get(&format!("/e/customer/{}", id(&evil))).await.expect(200);
        assert!(!record.text.contains(xss) && !record.text.contains("<b>city</b>"));
        let palette = admin.fragment("/ui/search?q=onerror").await.expect(200);
        assert!(palette.text.contains("pal-item") && !palette.text.contains(xss));

        // CSRF: a form without the token, and an API write by cookie without the header.
        let refused = admin.post_form(&format!("/e/customer/{}/copy", id(&evil)), &[], false).await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN);
        let api = read(admin.client.post(app.url("/api/records/customer")).header("cookie", &admin.cookie)
            .json(&json!({"name": "By cookie"})).send().await.unwrap()).await;
        assert_eq!(api.status, StatusCode::FORBIDDEN);
        let api = read(admin.client.post(app.url("/api/records/customer")).header("cookie", &admin.cookie)
            .header("x-csrf-token", &admin.csrf).json(&json!({"name": "By cookie"})).send().await.unwrap()).await;
        assert_eq!(api.status, StatusCode::CREATED);
        app.post("/api/records/customer", &json!({"name": "By token"})).await.expect(201);

        // A form with three wrong fields: all three messages at once, values kept.
        let refused = admin.post_form("/e/customer", &[("name", ""), ("credit_limit", "-5"), ("email", "not-mail")], true).await.expect(422);
        assert_eq!(refused.text.matches("class=\"error\"").count(), 3, "{}", refused.text);
        assert!(refused.text.contains("error-summary") && refused.text.contains("not-mail"));
        let created = admin.post_form("/e/customer", &[("name", "表单客户"), ("level", "A"), ("credit_limit", "1200.5")], true).await.expect(303);
        let location = created.header("location").to_owned();
        assert!(location.starts_with("/e/customer/"));
        let record = admin.get(&location).await.expect(200);
        assert!(record.text.contains("表单客户") && record.text.contains("¥1,200.50"));

        // Inline edit with If-Match: a stale version shows both values; the right one saves.
        let cust = app.create_record("customer", &json!({"name": "内联客户", "phone": "010-1"})).await;
        let cid = id(&cust);
        let editor = admin.fragment(&format!("/e/customer/{cid}/cell/phone?ctx=dd")).await.expect(200);
        assert!(editor.text.contains("hx-patch") && editor.text.contains("010-1"));
        app.patch(&format!("/api/records/customer/{cid}"), &json!({"phone": "010-2"})).await.expect(200);
        let stale = admin.htmx(reqwest::Method::PATCH, &format!("/e/customer/{cid}?ctx=dd&field=phone"), &[("phone", "010-3")], Some(1)).await.expect(409);
        assert!(stale.text.contains("cell-conflict") && stale.text.contains("010-2") && stale.text.contains("010-3"));
        let saved = admin.htmx(reqwest::Method::PATCH, &format!("/e/customer/{cid}?ctx=dd&field=phone"), &[("phone", "010-3")], Some(2)).await.expect(200);
        assert_eq!(saved.header("etag"), "\"3\"");
        assert!(saved.text.contains("010-3"));
        let invalid = admin.htmx(reqwest::Method::PATCH, &format!("/e/customer/{cid}?ctx=dd&field=email"), &[("email", "nope")], Some(3)).await.expect(422);
        assert!(invalid.text.contains("cell-error") && invalid.text.contains("nope"));

        // Related lists prefill the lookup; the kanban groups by stage.
        let record = admin.get(&format!("/e/customer/{cid}")).await.expect(200);
        assert!(record.text.contains(&format!("/e/contact/new?customer={cid}")));
        let new_contact = admin.get(&format!("/e/contact/new?customer={cid}")).await.expect(200);
        assert!(new_contact.text.contains(&format!("value=\"{cid}\"")) && new_contact.text.contains("内联客户"));
        let views = app.get("/api/views?entity=opportunity").await.expect(200).body;
        let board = views["items"].as_array().unwrap().iter().find(|v| v["kind"] == "kanban").unwrap();
        let kanban = admin.get(&format!("/e/opportunity?view={}", id(board))).await.expect(200);
        assert!(kanban.text.contains("data-board") && kanban.text.contains("data-move-url"));

        // Bulk: tag two records, then delete one to the trash and restore it.
        let a = app.create_record("customer", &json!({"name": "批量甲", "tags": ["old"]})).await;
        let b = app.create_record("customer", &json!({"name": "批量乙"})).await;
        let done = admin.htmx(reqwest::Method::POST, "/e/customer/bulk?op=add_tag", &[("id", &id(&a)), ("id", &id(&b)), ("tag", "VIP")], None).await.expect(204);
        assert!(done.header("hx-redirect").contains("m=bulk_done"));
        let a2 = app.get(&format!("/api/records/customer/{}", id(&a))).await.expect(200).body;
        assert_eq!(a2["tags"], json!(["VIP", "old"]));
        let b2 = app.get(&format!("/api/records/customer/{}", id(&b))).await.expect(200).body;
        assert_eq!(b2["tags"], json!(["VIP"]));
        admin.htmx(reqwest::Method::DELETE, &format!("/e/customer/{}", id(&b)), &[], None).await.expect(204);
        let trash = admin.get("/e/customer/trash").await.expect(200);
        assert!(trash.text.contains("批量乙"));
        admin.post_form(&format!("/e/customer/{}/restore", id(&b)), &[], true).await.expect(303);
        app.get(&format!("/api/records/customer/{}", id(&b))).await.expect(200);

        // Assets: embedded, hashed, cached; option colours as a stylesheet.
        let css = read(client().get(app.url(&tessera::ui::render::asset_url("app.css"))).send().await.unwrap()).await.expect(200);
        assert!(css.header("cache-control").contains("immutable"));
        assert!(css.header("content-type").starts_with("text/css"));
        let colors = read(client().get(app.url("/ui/colors.css")).send().await.unwrap()).await.expect(200);
        assert!(colors.text.contains(".c-0969da{--chip:#0969da}"));
    }

    async fn a_rep_sees_their_department_and_no_hidden_field(app: TestApp) {
        install(&app, "customer").await;
        let east = app.post("/api/departments", &json!({"name": "华东销售部"})).await.expect(201).body;
        let west = app.post("/api/departments", &json!({"name": "西部销售部"})).await.expect(201).body;
        // A sales rep whose role hides the credit limit.
        app.post("/api/roles", &json!({"name": "rep_no_credit", "label": "Rep",
            "permissions": {"entities": {
                "*": {"create": "own", "read": "department", "update": "own", "delete": "own"},
                "customer": {"create": "own", "read": "department", "update": "own", "delete": "own",
                             "fields": {"credit_limit": "hidden"}}}}})).await.expect(201);
        app.post("/api/users", &json!({"email": "rep@tessera.test", "password": "rep password 1",
            "display_name": "李娜", "department": id(&east), "roles": ["rep_no_credit"]})).await.expect(201);
        app.post("/api/records/customer", &json!({"name": "东部客户", "department": id(&east), "credit_limit": "777777"})).await.expect(201);
        app.post("/api/records/customer", &json!({"name": "西部客户", "department": id(&west)})).await.expect(201);

        let rep = Browser::sign_in(&app, "rep@tessera.test", "rep password 1").await;
        let list = rep.get("/e/customer").await.expect(200);
        assert!(list.text.contains("东部客户"));
        assert!(!list.text.contains("西部客户"), "another department's customer");
        for hidden in ["credit_limit", "信用额度", "777777", "777,777"] {
            assert!(!list.text.contains(hidden), "{hidden} in the list: {}", &list.text[list.text.find(hidden).unwrap_or(0).saturating_sub(300)..][..600]);
        }
        let found = app.get("/api/records/customer?filter=name%20%3D%20%22%E4%B8%9C%E9%83%A8%E5%AE%A2%E6%88%B7%22").await.expect(200).body;
        let east_id = id(&found["items"][0]);
        let page = rep.get(&format!("/e/customer/{east_id}")).await.expect(200);
        for hidden in ["credit_limit", "信用额度", "777777", "777,777"] {
            assert!(!page.text.contains(hidden), "{hidden} on the record page");
        }
        let form = rep.get("/e/customer/new").await.expect(200);
        assert!(!form.text.contains("credit_limit"));
        let west = app.get("/api/records/customer?filter=name%20%3D%20%22%E8%A5%BF%E9%83%A8%E5%AE%A2%E6%88%B7%22").await.expect(200).body;
        rep.get(&format!("/e/customer/{}", id(&west["items"][0]))).await.expect(404);

        // The definitions the API serves leave the hidden field out too.
        let api = app.login("rep@tessera.test", "rep password 1").await;
        let def = api.get("/api/entities/customer").await.expect(200).body;
        assert!(def["schema"]["properties"].get("credit_limit").is_none());
        assert!(def["schema"]["properties"].get("name").is_some());
        let all = api.get("/api/entities").await.expect(200).body;
        let customer = all["items"].as_array().unwrap().iter().find(|e| e["name"] == "customer").unwrap();
        assert!(!customer.to_string().contains("credit_limit"));
        let full = app.get("/api/entities/customer").await.expect(200).body;
        assert!(full["schema"]["properties"].get("credit_limit").is_some(), "the administrator sees it");
    }
}

on_both_databases! {
    async fn lists_offer_an_export_to_those_who_may_export(app: TestApp) {
        install(&app, "customer").await;
        let admin = Browser::sign_in(&app, ADMIN_EMAIL, ADMIN_PASSWORD).await;
        let list = admin.get("/e/customer?q=abc").await.expect(200);
        assert!(list.text.contains("/api/records/customer/export?format=xlsx"), "an export link");
        assert!(list.text.contains("q=abc"), "the export keeps the search");
        // The link works with the session cookie.
        admin.get("/api/records/customer/export?format=xlsx").await.expect(200);
        // The import wizard: linked from the list, its page and script served.
        assert!(list.text.contains("href=\"/e/customer/import\""), "an import link");
        let wizard = admin.get("/e/customer/import").await.expect(200);
        assert!(wizard.text.contains("id=\"import-form\""));
        assert!(wizard.text.contains("data-entity=\"customer\""));
        let script = attr_after(&wizard.text, "<script src=\"/ui/assets/import.js");
        admin.get(&format!("/ui/assets/import.js{script}")).await.expect(200);
        app.post("/api/roles", &json!({"name": "no_export", "permissions": {
            "entities": {"customer": {"read": "all"}}}})).await.expect(201);
        app.post("/api/users", &json!({"email": "plain@tessera.test", "password": "plain password 1",
            "roles": ["no_export"]})).await.expect(201);
        let plain = Browser::sign_in(&app, "plain@tessera.test", "plain password 1").await;
        let list = plain.get("/e/customer").await.expect(200);
        assert!(!list.text.contains("/export?"), "no export link without the permission");
        assert!(!list.text.contains("/e/customer/import"), "no import link without the permission");
        assert_eq!(plain.get("/e/customer/import").await.status, StatusCode::FORBIDDEN);
    }
}

on_both_databases! {
    async fn dashboards_change_range_and_drill_down(app: TestApp) {
        install(&app, "analytics").await;
        let admin = Browser::sign_in(&app, ADMIN_EMAIL, ADMIN_PASSWORD).await;
        let home = admin.get("/").await.expect(200);
        assert!(home.text.contains("href=\"/dashboards\""), "the sidebar links the dashboards");
        let page = admin.get("/dashboards").await.expect(200);
        for text in ["销售分析", "客户分析", "服务分析", "营销效果", "销售漏斗", "<svg", "日期范围"] {
            assert!(page.text.contains(text), "the dashboards page shows {text}");
        }
        assert!(!page.text.contains(" style=\""), "no inline styles (CSP)");
        // Another range: the form's GET, the choice kept.
        let sales = attr_after(&page.text, "class=\"btn sm primary\" href=\"");
        let ranged = admin.get(&format!("{sales}?relative=last_30_days")).await.expect(200);
        assert!(ranged.text.contains("value=\"last_30_days\" selected"), "the range chosen stays selected");
        let custom = admin.get(&format!("{sales}?from=2020-01-01&to=2020-12-31")).await.expect(200);
        assert!(custom.text.contains("value=\"2020-01-01\""));
        // From a funnel stage to the list of its records.
        let link = attr_after(&page.text, "<a href=\"/e/opportunity?filter=stage");
        let href = format!("/e/opportunity?filter=stage{link}").replace("&amp;", "&");
        let list = admin.get(&href).await.expect(200);
        assert!(list.text.contains("销售机会") || list.text.contains("商机"), "the opportunities list");
    }
}

/// An attribute's value as the page escapes it, back to text.
fn unescape(text: &str) -> String {
    text.replace("&quot;", "\"")
        .replace("&#x27;", "'")
        .replace("&#x60;", "`")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// A report problem as `import.js` says it: the message of its code in the page's language,
/// `{name}` filled in from its params (options by their labels in that language).
fn say(words: &Value, problem: &Value) -> String {
    let Some(template) = problem["code"]
        .as_str()
        .and_then(|c| words["messages"][c].as_str())
    else {
        return problem["message"].as_str().unwrap_or_default().to_owned();
    };
    let field = problem["field"].as_str().unwrap_or_default();
    let sep = words["sep"].as_str().unwrap_or(", ");
    let mut out = template.to_owned();
    for (name, value) in problem["params"].as_object().into_iter().flatten() {
        let shown = match (name.as_str(), value) {
            ("options", Value::Array(values)) => values
                .iter()
                .map(|v| {
                    let v = v.as_str().unwrap_or_default();
                    words["options"][field][v].as_str().unwrap_or(v).to_owned()
                })
                .collect::<Vec<_>>()
                .join(sep),
            (_, Value::String(s)) => s.clone(),
            (_, other) => other.to_string(),
        };
        out = out.replace(&format!("{{{name}}}"), &shown);
    }
    out
}

on_both_databases! {
    async fn the_import_report_speaks_the_viewers_language(app: TestApp) {
        install(&app, "customer").await;
        let admin = Browser::sign_in(&app, ADMIN_EMAIL, ADMIN_PASSWORD).await;
        admin.post_form("/ui/lang", &[("lang", "zh-CN")], true).await.expect(303);
        let wizard = admin.get("/e/customer/import").await.expect(200);
        let words: Value = serde_json::from_str(&unescape(&attr_after(&wizard.text, "data-report=\"")))
            .expect("the report's words as JSON");
        assert_eq!(words["labels"]["phone"], "主要电话", "{words}");
        assert_eq!(words["options"]["industry"]["manufacturing"], "制造业");
        assert_eq!(words["sep"], "、");

        // A dry run with a missing name (required), an industry that is no option, a month 13
        // and a phone that is none.
        let csv = "客户名称,所属行业,注册时间,主要电话\n\
                   ,制造业,2026/1/5,021-6000 1001\n\
                   星河测绘科技,农业,2026-13-45,021-6000 1002\n\
                   远山物流,零售,2026/1/5,电话待定\n";
        let report: Value = app
            .client
            .post(app.url("/api/records/customer/import?dry_run=true"))
            .header("content-type", "text/csv")
            .body(csv)
            .send()
            .await
            .expect("a response")
            .json()
            .await
            .expect("a report");
        let errors = report["errors"].as_array().expect("errors");
        let shown: Vec<(i64, String, String)> = errors
            .iter()
            .map(|e| {
                let field = e["field"].as_str().unwrap_or_default();
                let label = words["labels"][field].as_str().unwrap_or(field).to_owned();
                (e["row"].as_i64().unwrap_or(0), label, say(&words, e))
            })
            .collect();
        let expected = [
            (2, "客户名称", "必填，不能为空"),
            (3, "所属行业", "“农业”不是可选项；可选：制造业、零售、信息技术"),
            (3, "注册时间", "“2026-13-45”不是日期：没有 13 月"),
            (4, "主要电话", "“电话待定”不是有效的电话号码"),
        ];
        assert_eq!(shown.len(), expected.len(), "{shown:?}");
        for ((row, label, message), (want_row, want_label, want)) in shown.iter().zip(expected) {
            assert_eq!((*row, label.as_str()), (want_row, want_label), "{shown:?}");
            assert!(message.starts_with(want), "{message} should start with {want}");
            assert!(!message.contains('{'), "every part filled in: {message}");
        }
        assert!(!shown[1].2.contains("Manufacturing"), "options in Chinese: {}", shown[1].2);
        // The API keeps its English message for other clients.
        assert!(errors[1]["message"].as_str().unwrap_or_default().contains("Manufacturing"), "{report}");
        assert!(say(&words, &report["warnings"][0]).starts_with("导入的行未运行记录自动化"), "{report}");

        // Every code a report may carry has a message in both languages.
        for code in ["empty", "not_number", "decimal_comma", "scientific", "too_large", "money_not_percent",
                     "percent_not_whole", "not_whole", "not_date", "not_datetime", "year_last",
                     "no_such_month", "no_such_day", "time_of_day", "bad_offset", "not_yes_no",
                     "ambiguous_option", "not_option", "not_options", "no_record", "no_user",
                     "no_department", "not_email", "not_phone", "not_url", "not_id", "key_empty",
                     "no_match", "duplicate_in_file", "required", "not_writable", "unique", "triggers_off"] {
            assert!(words["messages"][code].is_string(), "no message for {code}");
        }
    }
}
