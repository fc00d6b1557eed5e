//! Browser tests: the workspace tried as a new user would, in real headless Chromium driven
//! through WebDriver (Debian's `chromium` and `chromium-driver`), against the real server
//! started as `tessera serve --demo` starts it. Each scenario gets its own server and browser.
//!
//! Without Chromium the tests say so and pass, unless `TESSERA_REQUIRE_BROWSER` is set (CI sets
//! it), when a missing browser is a failure. Screenshots go to `target/browser-artifacts/`.

#[path = "../api/common.rs"]
#[allow(dead_code)]
mod common;

mod driver;

use common::{ADMIN_EMAIL, ADMIN_PASSWORD, Backend, TestApp, id};
use driver::Session;
use serde_json::{Value, json};
use thirtyfour::prelude::*;

/// Starts a demo server and a browser, runs the scenario, and stops both even when it fails.
async fn scenario<F, Fut>(name: &str, body: F)
where
    F: FnOnce(TestApp, Session) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    use futures::FutureExt;
    let Some(browser) = driver::Browser::find() else {
        return;
    };
    let (anonymous, server, cleanup) = common::demo(Backend::Sqlite)
        .await
        .expect("a SQLite demo server");
    let admin = anonymous.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let session = browser.open(name, &admin.url("")).await;
    let keep = session.clone();
    let driver = session.driver.clone();
    let outcome = std::panic::AssertUnwindSafe(body(admin, session))
        .catch_unwind()
        .await;
    if outcome.is_err() {
        // The page as the browser last showed it, to see why.
        let path = driver::artifacts().join(format!("{name}-failure.png"));
        let _ = driver.screenshot(&path).await;
        eprintln!("the page at the failure: {}", path.display());
    }
    let _ = driver.quit().await;
    drop(keep);
    server.stop().await.expect("server stops cleanly");
    common::clean(cleanup).await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

/// A record list answer's items.
async fn items(app: &TestApp, path: &str) -> Vec<Value> {
    app.get(path).await.expect(200).body["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// Parses a shown amount such as `¥1,250,000.00` or `1,250,000.00`.
fn amount(text: &str) -> f64 {
    let digits: String = text
        .chars()
        .filter(|c| c.is_ascii_digit() || *c == '.' || *c == '-')
        .collect();
    digits.parse().unwrap_or(f64::NAN)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rep_works_through_customers_in_chinese() {
    scenario("customers", |app, s| async move {
        // Sign in; the browser asks for English first.
        s.goto("/").await;
        s.wait_text("main, body", "Sign in").await;
        s.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD).await;
        s.wait_path("/").await;
        // A user's language is their own (new users start in Chinese): choose English from
        // the language menu first, so both languages are seen and the switch below is real.
        s.click("details.lang > summary").await;
        s.click("details.lang form:last-of-type button").await;
        s.wait_text("nav.sidebar a[href='/e/customer']", "Customer").await;
        s.shot("home-en").await;

        // Switch to Chinese from the language menu: the sidebar now says 客户.
        s.click("details.lang > summary").await;
        s.click("details.lang form:first-of-type button").await;
        s.wait_text("nav.sidebar a[href='/e/customer']", "客户").await;
        s.shot("home-zh").await;

        // Open 客户, the key accounts view, filter 客户级别 = A with the filter builder.
        s.click("nav.sidebar a[href='/e/customer']").await;
        s.wait_text("main h1", "客户").await;
        s.click_xpath("//nav[contains(@class,'tabs')]/a[contains(., '重点客户')]")
            .await;
        s.wait_url_contains("view=").await;
        s.click("details[data-filter-builder] > summary").await;
        s.click("[data-fb-fields] button[data-field='level']").await;
        s.click("[data-fb-editor] input[type='checkbox'][value='A']").await;
        s.click("[data-fb-editor] [data-fb-apply]").await;
        s.wait_url_contains("level").await;
        let filtered = s.texts("tbody#rows tr th a").await;
        let expected = items(
            &app,
            "/api/records/customer?filter=level%20%3D%20%22A%22&limit=200",
        )
        .await;
        assert!(!filtered.is_empty(), "A-level customers are listed");
        assert_eq!(filtered.len(), expected.len(), "the list holds exactly the A-level customers");
        for name in &filtered {
            assert!(
                expected.iter().any(|c| c["name"] == name.as_str()),
                "{name} is an A-level customer"
            );
        }

        // Sort by 信用额度 by clicking its header: ascending, then descending.
        s.click_xpath("//thead//a[contains(., '信用额度')]").await;
        s.wait_url_contains("sort=credit_limit").await;
        let up: Vec<f64> = s
            .texts("tbody#rows td[data-label='信用额度']")
            .await
            .iter()
            .filter(|t| !t.trim().is_empty())
            .map(|t| amount(t))
            .collect();
        assert!(up.len() >= 2, "credit limits shown: {up:?}");
        assert!(up.windows(2).all(|w| w[0] <= w[1]), "ascending: {up:?}");
        s.click_xpath("//thead//a[contains(., '信用额度')]").await;
        s.wait_url_contains("sort=-credit_limit").await;
        let down: Vec<f64> = s
            .texts("tbody#rows td[data-label='信用额度']")
            .await
            .iter()
            .filter(|t| !t.trim().is_empty())
            .map(|t| amount(t))
            .collect();
        assert!(down.windows(2).all(|w| w[0] >= w[1]), "descending: {down:?}");
        s.shot("list-filtered-sorted").await;

        // Open the first one and edit its phone in place.
        let first_name = s.texts("tbody#rows tr th a").await.remove(0);
        s.click("tbody#rows tr th a").await;
        s.wait_text("main h1", &first_name).await;
        let customer_id = s.path().await.rsplit('/').next().unwrap_or_default().to_owned();
        // The editor opens with its value selected: typing replaces it, Enter saves.
        s.edit_inline("dd[data-edit-url*='/cell/phone']").await;
        s.keys("021-5555 0101").await;
        s.keys(Key::Enter).await;
        s.wait_text("dd[data-edit-url*='/cell/phone']", "021-5555 0101").await;
        let stored = app.get(&format!("/api/records/customer/{customer_id}")).await.expect(200).body;
        assert_eq!(stored["phone"], "021-5555 0101", "the inline edit is saved");
        s.shot("record").await;

        // A contact created from the customer's related list has the customer filled in.
        s.click("section.related a[href^='/e/contact/new?customer=']").await;
        s.wait_path("/e/contact/new").await;
        let prefilled = s.find("form input[name='customer'][data-typeahead-value]").await;
        assert_eq!(prefilled.value().await.expect("value").as_deref(), Some(customer_id.as_str()));
        s.type_into("form input[name='name']", "王小明").await;
        s.submit_form().await;
        s.wait_text("main h1", "王小明").await;
        let contact_id = s.path().await.rsplit('/').next().unwrap_or_default().to_owned();
        let contact = app.get(&format!("/api/records/contact/{contact_id}")).await.expect(200).body;
        assert_eq!(contact["customer"], customer_id.as_str(), "the contact belongs to the customer");

        // A form with three wrong fields shows all three messages and a summary, and sends nothing.
        s.goto("/e/customer/new").await;
        s.type_into("form input[name='email']", "not-an-email").await;
        s.type_into("form input[name='website']", "ftp//nowhere").await;
        s.clear("form input[name='name']").await;
        s.submit_form().await;
        s.wait_text(".error-summary", "3").await;
        let messages = s.texts("form .field.invalid .error").await;
        assert_eq!(messages.len(), 3, "three messages under fields: {messages:?}");
        assert_eq!(s.texts(".error-summary li").await.len(), 3, "and three in the summary");
        assert!(messages.iter().all(|m| !m.trim().is_empty()), "{messages:?}");
        assert!(s.path().await.ends_with("/e/customer/new"), "the form stays");
        let sent = items(&app, "/api/records/customer?filter=email%20%3D%20%22not-an-email%22").await;
        assert!(sent.is_empty(), "nothing was saved");
        s.shot("form-errors").await;

        // A name that would be markup is shown as text.
        let xss = app
            .create_record(
                "customer",
                &json!({"name": "<img src=x onerror=\"window.__xss=1\"><script>window.__xss=2</script>"}),
            )
            .await;
        s.goto(&format!("/e/customer?q={}", "%3Cimg")).await;
        s.wait_text("tbody#rows", "<img src=x").await;
        s.goto(&format!("/e/customer/{}", id(&xss))).await;
        s.wait_text("main h1", "<script>").await;
        let injected = s.script("return [window.__xss === undefined, document.querySelectorAll('main img[src=\"x\"], main script').length]").await;
        assert_eq!(injected, json!([true, 0]), "no markup from the record ran or rendered");

        // At 375 px the list and the record page fit the screen and still work.
        s.phone(375, 812).await;
        s.goto("/e/customer").await;
        s.wait_text("main h1", "客户").await;
        s.assert_fits(375).await;
        s.shot("list-phone").await;
        s.click("label.menu-btn").await;
        s.wait_visible("nav.sidebar a[href='/e/contact']").await;
        s.shot("menu-phone").await;
        s.goto(&format!("/e/customer/{customer_id}")).await;
        s.wait_text("main h1", &first_name).await;
        s.assert_fits(375).await;
        s.shot("record-phone").await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn boards_bulk_actions_and_the_trash() {
    scenario("boards", |app, s| async move {
        s.goto("/login?lang=zh-CN").await;
        s.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD).await;
        s.wait_path("/").await;

        // Drag an opportunity to the next stage: the move is stored.
        s.goto("/e/opportunity").await;
        s.click_xpath("//nav[contains(@class,'tabs')]/a[contains(., '销售漏斗')]").await;
        s.wait_visible("[data-board] [data-move-url]").await;
        s.wait_script("return !!document.querySelector('[data-board]').dataset.ready").await;
        let columns = s.driver.find_all(By::Css("[data-board] [data-column]")).await.expect("columns");
        let (from, to) = first_card_and_next_column(&s, &columns).await;
        let card = from.find(By::Css("[data-move-url]")).await.expect("a card");
        let opportunity = card.attr("data-id").await.expect("id").expect("card id");
        let target_stage = to.attr("data-column").await.expect("column").expect("stage");
        s.drag(&card, &to).await;
        s.wait_script(&format!(
            "return !!document.querySelector('[data-column=\"{target_stage}\"] [data-id=\"{opportunity}\"]:not(.moving)')"
        ))
        .await;
        common::eventually(std::time::Duration::from_secs(10), "the stage to be saved", || async {
            app.get(&format!("/api/records/opportunity/{opportunity}")).await.body["stage"] == target_stage.as_str()
        })
        .await;
        s.shot("kanban").await;

        // A move a script refuses (a draft order cannot be shipped) snaps back with the reason.
        let drafts = items(&app, "/api/records/order?filter=status%20%3D%20%22draft%22&limit=1").await;
        let draft = id(drafts.first().expect("a draft order in the sample data"));
        s.goto("/e/order").await;
        s.click_xpath("//nav[contains(@class,'tabs')]/a[contains(., '订单看板')]").await;
        s.wait_visible(&format!("[data-column='draft'] [data-id='{draft}']")).await;
        s.wait_script("return !!document.querySelector('[data-board]').dataset.ready").await;
        let card = s.find(&format!("[data-id='{draft}']")).await;
        let shipped = s.find("[data-column='shipped']").await;
        s.drag(&card, &shipped).await;
        s.wait_text(".toast", "shipped").await;
        s.wait_visible(&format!("[data-column='draft'] [data-id='{draft}']")).await;
        assert_eq!(app.get(&format!("/api/records/order/{draft}")).await.body["status"], "draft");
        s.shot("kanban-refused").await;

        // Tag five customers at once.
        s.goto("/e/customer").await;
        let boxes = s.driver.find_all(By::Css("tbody#rows input[data-select-row]")).await.expect("rows");
        let mut chosen = Vec::new();
        for b in boxes.iter().take(5) {
            b.click().await.expect("select");
            chosen.push(b.value().await.expect("value").expect("id"));
        }
        s.wait_text("[data-selected-count]", "5").await;
        s.click("button[data-dialog-open='bulk-tag']").await;
        s.type_into("#bulk-tag-name", "华东重点").await;
        s.click("#bulk-tag .dialog-foot button.primary").await;
        let last = chosen.last().expect("five chosen").clone();
        common::eventually(std::time::Duration::from_secs(10), "the tags to be saved", || async {
            let record = app.get(&format!("/api/records/customer/{last}")).await.body;
            record["tags"].as_array().is_some_and(|t| t.iter().any(|t| t == "华东重点"))
        })
        .await;
        for customer in &chosen {
            let record = app.get(&format!("/api/records/customer/{customer}")).await.expect(200).body;
            assert!(record["tags"].as_array().expect("tags").iter().any(|t| t == "华东重点"), "{record}");
        }

        // Delete one from its page, find it in the trash, restore it.
        let victim = &chosen[0];
        s.goto(&format!("/e/customer/{victim}")).await;
        let title = s.find("main h1").await.text().await.expect("title");
        s.click("header .page-actions details.menu > summary").await;
        s.click("header .page-actions details.menu button.danger").await;
        s.click("#tessera-confirm button[value='ok']").await;
        s.wait_path("/e/customer").await;
        app.get(&format!("/api/records/customer/{victim}")).await.expect(404);
        s.goto("/e/customer/trash").await;
        s.wait_text("main table", &title).await;
        s.shot("trash").await;
        s.click(&format!("tr[data-id='{victim}'] form[action$='/restore'] button")).await;
        common::eventually(std::time::Duration::from_secs(10), "the restored customer", || async {
            app.get(&format!("/api/records/customer/{victim}")).await.status == 200
        })
        .await;
    })
    .await;
}

/// The first column holding a movable card, and the column after it.
async fn first_card_and_next_column(
    s: &Session,
    columns: &[WebElement],
) -> (WebElement, WebElement) {
    for (i, col) in columns.iter().enumerate() {
        let cards = col
            .find_all(By::Css("[data-move-url]"))
            .await
            .expect("cards");
        if !cards.is_empty() && i + 1 < columns.len() {
            return (col.clone(), columns[i + 1].clone());
        }
    }
    s.shot("no-card").await;
    panic!("no movable card on the board");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rep_sees_their_department_only_and_no_hidden_field() {
    scenario("rep", |app, s| async move {
        let east = app.post("/api/departments", &json!({"name": "华东销售部"})).await.expect(201).body;
        let west = app.post("/api/departments", &json!({"name": "西部销售部"})).await.expect(201).body;
        app.post(
            "/api/roles",
            &json!({"name": "east_rep", "label": "华东销售",
                "permissions": {"entities": {
                    "*": {"create": "own", "read": "department", "update": "own", "delete": "own"},
                    "customer": {"create": "own", "read": "department", "update": "own", "delete": "own",
                                 "fields": {"credit_limit": "hidden"}}}}}),
        )
        .await
        .expect(201);
        app.post(
            "/api/users",
            &json!({"email": "rep@tessera.test", "password": "rep password 1", "display_name": "李娜",
                    "department": id(&east), "roles": ["east_rep"]}),
        )
        .await
        .expect(201);
        app.create_record("customer", &json!({"name": "浦东精密机械", "department": id(&east), "credit_limit": "987654.32"})).await;
        app.create_record("customer", &json!({"name": "成都西部贸易", "department": id(&west), "credit_limit": "123456.78"})).await;

        s.goto("/login?lang=zh-CN").await;
        s.sign_in("rep@tessera.test", "rep password 1").await;
        s.wait_path("/").await;
        s.goto("/e/customer").await;
        s.wait_text("tbody#rows", "浦东精密机械").await;
        let names = s.texts("tbody#rows tr th a").await;
        assert_eq!(names, vec!["浦东精密机械".to_owned()], "only their department's customers");
        let source = s.driver.source().await.expect("source");
        for secret in ["credit_limit", "987654", "信用额度", "成都西部贸易"] {
            assert!(!source.contains(secret), "{secret} is not in the list page");
        }
        s.click("tbody#rows tr th a").await;
        s.wait_text("main h1", "浦东精密机械").await;
        let source = s.driver.source().await.expect("source");
        for secret in ["credit_limit", "987654", "信用额度"] {
            assert!(!source.contains(secret), "{secret} is not in the record page");
        }
        s.phone(375, 812).await;
        s.assert_fits(375).await;
        s.shot("rep-record-phone").await;
    })
    .await;
}

/// A value for a query string.
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Every card of the dashboard shown is drawn: an SVG each, none "unavailable".
async fn charts_drawn(s: &Session) {
    s.wait_visible("section.dash-card .chart-box > svg").await;
    let counts = s
        .script(
            "return [document.querySelectorAll('section.dash-card').length, \
             document.querySelectorAll('section.dash-card .chart-box > svg').length, \
             document.querySelectorAll('section.dash-card .empty').length]",
        )
        .await;
    assert!(
        counts[0].as_u64().unwrap_or_default() >= 2,
        "the cards: {counts}"
    );
    assert_eq!(counts[1], counts[0], "every card is a chart: {counts}");
    assert_eq!(counts[2], 0, "no card is unavailable: {counts}");
}

/// The figure a number card shows.
async fn card_figure(s: &Session, title: &str) -> String {
    let script = format!(
        "const card = Array.from(document.querySelectorAll('section.dash-card'))\
           .find(c => c.querySelector('h2').textContent === {});\
         const figure = card && card.querySelector('.chart-number');\
         return figure ? figure.textContent : null",
        serde_json::to_string(title).expect("json")
    );
    s.script(&script)
        .await
        .as_str()
        .unwrap_or_else(|| panic!("no figure on the card {title}"))
        .to_owned()
}

/// The ids of the rows a list page shows.
async fn row_ids(s: &Session) -> std::collections::BTreeSet<String> {
    s.find("tbody#rows tr[data-id]").await;
    let ids = s
        .script(
            "return Array.from(document.querySelectorAll('tbody#rows tr[data-id]'))\
             .map(r => r.dataset.id)",
        )
        .await;
    serde_json::from_value(ids).expect("row ids")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboards_take_a_date_range_and_drill_down() {
    scenario("dashboards", |app, s| async move {
        s.goto("/login?lang=zh-CN").await;
        s.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD).await;
        s.wait_path("/").await;

        // From the sidebar to 数据分析, then the 销售分析 tab.
        s.click("nav.sidebar a[href='/dashboards']").await;
        s.wait_path("/dashboards").await;
        s.click_xpath("//nav[contains(@class,'dash-tabs')]/a[normalize-space(.)='销售分析']")
            .await;
        s.wait_url_contains("/dashboards/").await;
        s.wait_text("main h1", "销售分析").await;
        let current = s.find("nav.dash-tabs a[aria-current='page']").await;
        let current = current.text().await.expect("tab");
        assert_eq!(current, "销售分析");
        let sales = s.path().await;
        charts_drawn(&s).await;

        // The last 30 days from the range menu: the choice stays after the page reloads.
        let relative = "form.dash-range select[name='relative']";
        let apply = "form.dash-range button[type='submit']";
        s.choose(relative, "最近 30 天").await;
        s.click(apply).await;
        s.wait_url_contains("relative=last_30_days").await;
        s.wait_text("main h1", "销售分析").await;
        let kept = s
            .script("return document.querySelector('form.dash-range').relative.value")
            .await;
        assert_eq!(kept, "last_30_days", "the range chosen stays selected");
        charts_drawn(&s).await;

        // Days of one's own: the dates stay, and 订单数 counts the orders of those days.
        let today = chrono::Utc::now().date_naive();
        let from = (today - chrono::Duration::days(60)).to_string();
        let to = (today - chrono::Duration::days(20)).to_string();
        s.choose(relative, "自定义").await;
        s.type_date("form.dash-range input[name='from']", &from)
            .await;
        s.type_date("form.dash-range input[name='to']", &to).await;
        s.click(apply).await;
        s.wait_url_contains(&format!("to={to}")).await;
        s.wait_text("main h1", "销售分析").await;
        assert_eq!(s.path().await, sales, "the same dashboard");
        let kept = s
            .script(
                "const f = document.querySelector('form.dash-range');\
                 return [f.relative.value, f.from.value, f.to.value]",
            )
            .await;
        assert_eq!(
            kept,
            json!(["", from, to]),
            "the dates chosen stay in the form"
        );
        charts_drawn(&s).await;
        let filter = format!("order_date >= \"{from}\" && order_date <= \"{to}\"");
        let orders = app
            .get(&format!(
                "/api/records/order?filter={}&count=true&limit=1",
                encode(&filter)
            ))
            .await
            .expect(200)
            .body["total"]
            .as_i64()
            .expect("a total");
        assert!(orders > 0, "the sample has orders in {from} … {to}");
        let figure = card_figure(&s, "订单数").await;
        assert_eq!(
            amount(&figure),
            orders as f64,
            "订单数 shows {figure}, the API counts {orders}"
        );
        s.shot("sales-range").await;

        // The funnel's 方案报价 segment leads to the list of exactly its opportunities (those at
        // 方案报价 or further), as many as the segment counts.
        let segment = "//section[contains(@class,'dash-card')][.//h2[.='销售漏斗']]\
                       //*[local-name()='a'][*[local-name()='title'][starts-with(., '方案报价')]]";
        let link = s
            .driver
            .find(By::XPath(segment))
            .await
            .expect("the 方案报价 segment");
        let href = link.attr("href").await.expect("href").expect("a link");
        let tip = link
            .prop("textContent")
            .await
            .expect("tip")
            .unwrap_or_default();
        // "方案报价（60%） · 数量: 20 (71.4%)": the count, then the conversion.
        let count: usize = tip
            .rsplit(": ")
            .next()
            .and_then(|n| n.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("a count in {tip:?}"));
        assert!(href.starts_with("/e/opportunity?filter="), "{href}");
        s.scroll_to(&link).await;
        s.shot("sales-funnel").await;
        s.click_xpath(segment).await;
        s.wait_path("/e/opportunity").await;
        s.wait_url_contains("proposal").await;
        let shown = row_ids(&s).await;
        let query = href.split_once('?').map(|(_, q)| q).unwrap_or_default();
        let expected: std::collections::BTreeSet<String> =
            items(&app, &format!("/api/records/opportunity?{query}&limit=200"))
                .await
                .iter()
                .map(id)
                .collect();
        assert!(
            !expected.is_empty(),
            "the sample has opportunities at 方案报价 or further"
        );
        assert_eq!(
            shown, expected,
            "the list holds exactly the stage's opportunities"
        );
        assert_eq!(shown.len(), count, "as many as the funnel says ({tip})");
        let stages = s.texts("tbody#rows td[data-label='销售阶段']").await;
        for stage in &stages {
            assert!(
                ["方案报价（60%）", "商务谈判（80%）", "赢单（100%）"].contains(&stage.trim()),
                "{stage} is 方案报价 or later"
            );
        }
        s.shot("funnel-list").await;

        // At 375 px the dashboard, with its range, fits the screen.
        s.phone(375, 812).await;
        s.goto(&format!("{sales}?relative=&from={from}&to={to}"))
            .await;
        s.wait_text("main h1", "销售分析").await;
        charts_drawn(&s).await;
        s.assert_fits(375).await;
        s.shot("sales-phone").await;
        let funnel = s
            .driver
            .find(By::XPath(segment))
            .await
            .expect("the funnel on a phone");
        s.scroll_to(&funnel).await;
        s.shot("sales-funnel-phone").await;
    })
    .await;
}

/// A file of five customers: 联系电话 matches no field (the user maps it to 主要电话); row 3
/// has no such level, row 4 no number, and row 5 a phone that is none (seen once mapped).
const CUSTOMERS_CSV: &str = "客户名称,客户级别,信用额度,联系电话
星河测绘科技,A,500000,021-6000 1001
远山物流,Z,100000,021-6000 1002
青木教育,B,一百万,021-6000 1003
海蓝医疗,C,200000,电话待定
云杉软件,B,\"1,250,000.50\",010-8888 6666
";

/// The import report's errors as the page shows them: row, column, field, message.
async fn import_errors(s: &Session) -> Vec<Vec<String>> {
    let rows = s
        .script(
            "return Array.from(document.querySelectorAll('#import-report table tr')).slice(1)\
             .map(tr => Array.from(tr.cells).map(td => td.textContent))",
        )
        .await;
    serde_json::from_value(rows).expect("rows of cells")
}

/// The id of the import the report shows (from its error file's link).
async fn import_id(s: &Session) -> String {
    let href = s
        .find("#import-report a[href$='/errors.csv']")
        .await
        .attr("href")
        .await
        .expect("href")
        .expect("a link");
    href.trim_start_matches("/api/imports/")
        .trim_end_matches("/errors.csv")
        .to_owned()
}

/// An import's errors as the API keeps them, in the page's cells.
async fn stored_errors(app: &TestApp, import: &str) -> (Value, Vec<Vec<String>>) {
    let stored = app
        .get(&format!("/api/imports/{import}"))
        .await
        .expect(200)
        .body;
    let cell = |v: &Value| match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let errors = stored["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| {
            ["row", "column", "field", "message"]
                .iter()
                .map(|k| cell(&e[*k]))
                .collect()
        })
        .collect();
    (stored, errors)
}

/// Row, column and field of each error.
fn places(errors: &[Vec<String>]) -> Vec<[&str; 3]> {
    errors
        .iter()
        .map(|e| [e[0].as_str(), e[1].as_str(), e[2].as_str()])
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_import_wizard_maps_checks_runs_and_undoes() {
    scenario("import", |app, s| async move {
        let folder = tempfile::tempdir().expect("a temp folder");
        let file = folder.path().join("customers.csv");
        std::fs::write(&file, CUSTOMERS_CSV).expect("the file");
        let good = format!(
            "/api/records/customer?filter={}&limit=10",
            encode("name in [\"星河测绘科技\", \"云杉软件\"]")
        );
        let bad = format!(
            "/api/records/customer?filter={}&limit=10",
            encode("name in [\"远山物流\", \"青木教育\", \"海蓝医疗\"]")
        );

        s.goto("/login?lang=zh-CN").await;
        s.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD).await;
        s.wait_path("/").await;
        s.goto("/e/customer").await;
        s.click("main a[href='/e/customer/import']").await;
        s.wait_path("/e/customer/import").await;
        s.wait_text("main h1", "导入到客户").await;
        s.upload("#import-file", &file).await;
        s.shot("chosen").await;

        // A first check shows the mapping as guessed: 联系电话 is left out.
        s.click("[data-import='check']").await;
        s.wait_text("#import-report h2", "已检查").await;
        let mapping = s
            .script(
                "return Object.fromEntries(\
                   Array.from(document.querySelectorAll('#import-mapping select[data-header]'))\
                   .map(sel => [sel.dataset.header, sel.value]))",
            )
            .await;
        assert_eq!(
            mapping,
            json!({"客户名称": "name", "客户级别": "level", "信用额度": "credit_limit", "联系电话": ""}),
            "the guessed mapping"
        );
        let errors = import_errors(&s).await;
        assert_eq!(
            places(&errors),
            vec![["3", "客户级别", "客户级别"], ["4", "信用额度", "信用额度"]],
            "fields by their labels: {errors:?}"
        );
        s.shot("guessed").await;

        // Map 联系电话 to 主要电话 and check again: now row 5's phone is refused too.
        s.choose("#import-mapping select[data-header='联系电话']", "主要电话").await;
        s.shot("mapped").await;
        s.click("[data-import='check']").await;
        s.wait_script(
            "return Array.from(document.querySelectorAll('#import-report table tr td:first-child'))\
             .some(td => td.textContent === '5')",
        )
        .await;
        s.wait_text("#import-report h2", "已检查").await;
        s.wait_text("#import-report p", "行数: 5").await;
        s.wait_text("#import-report p", "新建: 2").await;
        s.wait_text("#import-report p", "失败: 3").await;
        let errors = import_errors(&s).await;
        assert_eq!(
            places(&errors),
            vec![["3", "客户级别", "客户级别"], ["4", "信用额度", "信用额度"], ["5", "联系电话", "主要电话"]],
            "{errors:?}"
        );
        // The messages in Chinese, options by their Chinese labels, naming the cell.
        let said = [
            "“Z”不是可选项；可选：A 重点客户、B 普通客户、C 一般客户",
            "“一百万”不是数字",
            "“电话待定”不是有效的电话号码",
        ];
        for (error, want) in errors.iter().zip(said) {
            assert!(error[3].starts_with(want), "{error:?} should say {want}");
        }
        s.wait_text("#import-report .banner", "导入的行未运行记录自动化").await;
        let check = import_id(&s).await;
        let (stored, api_errors) = stored_errors(&app, &check).await;
        assert_eq!(stored["dry_run"], true, "{stored}");
        assert_eq!(stored["mapping"]["联系电话"], "phone", "the mapping chosen was sent: {stored}");
        assert_eq!(
            places(&api_errors),
            vec![["3", "客户级别", "level"], ["4", "信用额度", "credit_limit"], ["5", "联系电话", "phone"]],
            "the API names the fields: {api_errors:?}"
        );
        let codes: Vec<&Value> = stored["errors"].as_array().expect("errors").iter().map(|e| &e["code"]).collect();
        assert_eq!(codes, [&json!("not_option"), &json!("not_number"), &json!("not_phone")], "{stored}");
        assert!(api_errors[0][3].contains("A – key account"), "the API's message stays English: {api_errors:?}");
        assert!(items(&app, &good).await.is_empty(), "a check writes nothing");
        s.scroll_to(&s.find("#import-report").await).await;
        s.shot("checked").await;

        // Run it, skipping the bad rows: the two good customers are there, the others not.
        s.choose("#import-on-error", "跳过").await;
        s.click("[data-import='run']").await;
        s.wait_text("#import-report h2", "已导入").await;
        s.wait_text("#import-report p", "新建: 2").await;
        s.wait_text("#import-report p", "失败: 3").await;
        let run = import_id(&s).await;
        assert_ne!(run, check, "a new import");
        let (stored, api_errors) = stored_errors(&app, &run).await;
        assert_eq!(stored["dry_run"], false, "{stored}");
        assert_eq!(import_errors(&s).await, errors, "the run reports what the check did");
        assert_eq!(places(&api_errors).len(), 3, "{api_errors:?}");
        let made = items(&app, &good).await;
        assert_eq!(made.len(), 2, "{made:?}");
        let by_name = |name: &str| {
            made.iter()
                .find(|c| c["name"] == name)
                .cloned()
                .unwrap_or_else(|| panic!("{name} imported"))
        };
        let star = by_name("星河测绘科技");
        assert_eq!(star["level"], "A", "{star}");
        assert_eq!(star["phone"], "021-6000 1001", "{star}");
        assert_eq!(amount(star["credit_limit"].as_str().unwrap_or_default()), 500000.0);
        let spruce = by_name("云杉软件");
        assert_eq!(spruce["level"], "B", "{spruce}");
        assert_eq!(spruce["phone"], "010-8888 6666", "{spruce}");
        assert_eq!(amount(spruce["credit_limit"].as_str().unwrap_or_default()), 1_250_000.5);
        assert!(items(&app, &bad).await.is_empty(), "no bad row was written");
        s.scroll_to(&s.find("#import-report").await).await;
        s.shot("imported").await;

        // Undo: both go again.
        s.click("#import-report button.danger").await;
        s.wait_text("#import-report", "已撤销: 2").await;
        assert!(items(&app, &good).await.is_empty(), "the imported customers are gone");
        for customer in &made {
            app.get(&format!("/api/records/customer/{}", id(customer))).await.expect(404);
        }
        let (stored, _) = stored_errors(&app, &run).await;
        assert_eq!(stored["status"], "undone", "{stored}");
        s.scroll_to(&s.find("#import-report").await).await;
        s.shot("undone").await;
    })
    .await;
}
