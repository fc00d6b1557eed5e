//! Data in and out: exports of views and filters as CSV and XLSX (labels, text forms,
//! neutralised formulas, the read scope and hidden fields), imports with mapping, dry run,
//! upsert and undo.

use calamine::{Data, Reader, Xlsx};
use serde_json::{Value, json};

use crate::common::{TestApp, id};
use crate::on_both_databases;

const PASSWORD: &str = "password 1234";

/// A lead: text, email (unique), decimal, select, date and a secret some roles cannot see.
async fn lead_entity(app: &TestApp) {
    app.create_entity(&json!({
        "name": "lead", "label": {"en": "Lead", "zh-CN": "线索"},
        "schema": {"properties": {
            "name": {"x-kind": "text", "x-label": {"en": "Name", "zh-CN": "客户名称"}},
            "email": {"x-kind": "email", "x-unique": true, "x-label": {"en": "Email", "zh-CN": "邮箱"}},
            "amount": {"x-kind": "decimal", "x-scale": 2, "x-label": {"en": "Amount", "zh-CN": "金额"}},
            "stage": {"x-kind": "select", "x-label": {"en": "Stage", "zh-CN": "阶段"}, "x-options": [
                {"value": "new", "label": {"en": "New", "zh-CN": "新建"}},
                {"value": "won", "label": {"en": "Won", "zh-CN": "赢单"}}]},
            "close": {"x-kind": "date", "x-label": {"en": "Close date", "zh-CN": "成交日期"}},
            "secret": {"x-kind": "text", "x-label": {"en": "Secret", "zh-CN": "机密"}}
        }, "required": ["name"]}
    }))
    .await;
}

/// A rep who creates and changes their own leads, cannot see `secret` and only reads `amount`.
async fn rep(app: &TestApp, specials: &[&str]) -> (TestApp, String) {
    app.post(
        "/api/roles",
        &json!({"name": "rep", "permissions": {
            "entities": {"lead": {"create": "own", "read": "own", "update": "own", "delete": "own",
                                  "fields": {"secret": "hidden", "amount": "read"}}},
            "special": specials
        }}),
    )
    .await
    .expect(201);
    let user = app
        .post(
            "/api/users",
            &json!({"email": "rep@tessera.test", "password": PASSWORD, "roles": ["rep"], "language": "zh-CN"}),
        )
        .await
        .expect(201)
        .body;
    (app.login("rep@tessera.test", PASSWORD).await, id(&user))
}

/// The raw bytes of a GET.
async fn bytes(app: &TestApp, path: &str) -> (u16, String, Vec<u8>) {
    let response = app
        .client
        .get(app.url(path))
        .send()
        .await
        .expect("a response");
    let status = response.status().as_u16();
    let kind = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    (
        status,
        kind,
        response.bytes().await.expect("a body").to_vec(),
    )
}

/// A CSV body as rows of cells (the BOM checked and dropped).
fn csv_rows(body: &[u8]) -> Vec<Vec<String>> {
    let text = std::str::from_utf8(body).expect("UTF-8");
    let text = text.strip_prefix('\u{FEFF}').expect("a byte order mark");
    csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(text.as_bytes())
        .records()
        .map(|r| r.expect("a CSV row").iter().map(str::to_owned).collect())
        .collect()
}

fn xlsx_rows(body: Vec<u8>) -> Vec<Vec<String>> {
    let mut book: Xlsx<_> =
        calamine::open_workbook_from_rs(std::io::Cursor::new(body)).expect("a workbook");
    let sheet = book.sheet_names()[0].clone();
    book.worksheet_range(&sheet)
        .expect("a sheet")
        .rows()
        .map(|r| {
            r.iter()
                .map(|c| match c {
                    Data::Empty => String::new(),
                    other => other.to_string(),
                })
                .collect()
        })
        .collect()
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b',' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Posts a file to the import endpoint; returns the status, headers and JSON answer.
async fn upload(
    app: &TestApp,
    entity: &str,
    query: &str,
    media: &str,
    body: Vec<u8>,
    prefer_async: bool,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let mut request = app
        .client
        .post(app.url(&format!("/api/records/{entity}/import?{query}")))
        .header("content-type", media)
        .body(body);
    if prefer_async {
        request = request.header("prefer", "respond-async");
    }
    let response = request.send().await.expect("a response");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let bytes = response.bytes().await.expect("a body");
    (
        status,
        headers,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

const CSV: &str = "text/csv";
const XLSX: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";

/// The records of an entity, by email.
async fn by_email(app: &TestApp, entity: &str) -> std::collections::BTreeMap<String, Value> {
    let mut out = std::collections::BTreeMap::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/records/{entity}?limit=500&cursor={c}"),
            None => format!("/api/records/{entity}?limit=500"),
        };
        let page = app.get(&path).await.expect(200).body;
        for item in page["items"].as_array().unwrap() {
            out.insert(
                item["email"].as_str().unwrap_or_default().to_owned(),
                item.clone(),
            );
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    out
}

/// The rows of a table as its planner statistics last counted them (0: none yet).
async fn analysed_rows(app: &TestApp, table: &str) -> i64 {
    use tessera::store::{ColumnType, Dialect, Sql};
    let sql = match app.dialect() {
        // Each index's statistics start with its (estimated) number of rows.
        Dialect::Sqlite => format!(
            "SELECT COALESCE(MAX(CAST(stat AS INTEGER)), 0) FROM sqlite_stat1 WHERE tbl = '{table}'"
        ),
        Dialect::Postgres => {
            format!("SELECT GREATEST(reltuples, 0)::bigint FROM pg_class WHERE relname = '{table}'")
        }
    };
    app.ctx
        .db
        .fetch_all(&Sql::new(sql), &[ColumnType::Integer])
        .await
        .map(|rows| rows[0][0].as_i64().unwrap_or(0))
        .unwrap_or(0)
}

/// How many segments SQLite's search index merges at each commit (none set on PostgreSQL).
async fn search_automerge(app: &TestApp) -> Option<i64> {
    use tessera::store::{ColumnType, Dialect, Sql};
    if app.dialect() != Dialect::Sqlite {
        return None;
    }
    let sql = Sql::new("SELECT v FROM search_fts_config WHERE k = 'automerge'");
    let rows = app
        .ctx
        .db
        .fetch_all(&sql, &[ColumnType::Integer])
        .await
        .unwrap();
    rows.first().and_then(|row| row[0].as_i64())
}

fn sqlite_only(app: &TestApp, value: i64) -> Option<i64> {
    (app.dialect() == tessera::store::Dialect::Sqlite).then_some(value)
}

async fn count(app: &TestApp, entity: &str) -> i64 {
    app.get(&format!("/api/records/{entity}?count=true&limit=1"))
        .await
        .expect(200)
        .body["total"]
        .as_i64()
        .unwrap()
}

/// A workbook with a date cell (an Excel serial with a date format) and a formula cell with
/// its cached value, as Excel saves them.
fn workbook_with_serial_and_formula() -> Vec<u8> {
    use std::io::Write;
    let mut out = std::io::Cursor::new(Vec::new());
    let mut zip = zip::ZipWriter::new(&mut out);
    let options = zip::write::SimpleFileOptions::default();
    let parts = [
        (
            "[Content_Types].xml",
            r#"<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/><Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/><Override PartName="/xl/styles.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/></Types>"#,
        ),
        (
            "_rels/.rels",
            r#"<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>"#,
        ),
        (
            "xl/workbook.xml",
            r#"<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets><sheet name="Leads" sheetId="1" r:id="rId1"/></sheets></workbook>"#,
        ),
        (
            "xl/_rels/workbook.xml.rels",
            r#"<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/><Relationship Id="rId2" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/styles" Target="styles.xml"/></Relationships>"#,
        ),
        (
            "xl/styles.xml",
            r#"<?xml version="1.0" encoding="UTF-8"?><styleSheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><fonts count="1"><font><sz val="11"/></font></fonts><fills count="1"><fill><patternFill patternType="none"/></fill></fills><borders count="1"><border/></borders><cellStyleXfs count="1"><xf numFmtId="0"/></cellStyleXfs><cellXfs count="2"><xf numFmtId="0" xfId="0"/><xf numFmtId="14" xfId="0" applyNumberFormat="1"/></cellXfs></styleSheet>"#,
        ),
        (
            "xl/worksheets/sheet1.xml",
            r#"<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData><row r="1"><c r="A1" t="inlineStr"><is><t>客户名称</t></is></c><c r="B1" t="inlineStr"><is><t>Email</t></is></c><c r="C1" t="inlineStr"><is><t>金额</t></is></c><c r="D1" t="inlineStr"><is><t>成交日期</t></is></c></row><row r="2"><c r="A2" t="inlineStr"><is><t>表格客户</t></is></c><c r="B2" t="inlineStr"><is><t>x@example.com</t></is></c><c r="C2"><f>100*12.5</f><v>1250</v></c><c r="D2" s="1"><v>46027</v></c></row></sheetData></worksheet>"#,
        ),
    ];
    for (path, body) in parts {
        zip.start_file(path, options).unwrap();
        zip.write_all(body.as_bytes()).unwrap();
    }
    zip.finish().unwrap();
    out.into_inner()
}

/// Makes the administrator read English (labels and options in exports).
async fn in_english(app: &TestApp) {
    let me = app.get("/api/me").await.expect(200).body;
    let user = me["user"]["id"]
        .as_str()
        .or(me["id"].as_str())
        .expect("my id")
        .to_owned();
    app.patch(&format!("/api/users/{user}"), &json!({"language": "en"}))
        .await
        .expect(200);
}

async fn some_leads(app: &TestApp) -> Vec<Value> {
    let mut out = Vec::new();
    for (name, email, amount, stage, close) in [
        (
            "上海华东贸易",
            "a@example.com",
            "1234.5",
            "won",
            "2026-01-05",
        ),
        (
            "=HYPERLINK(\"http://evil\",\"x\")",
            "b@example.com",
            "-20",
            "new",
            "2026-02-01",
        ),
        ("Acme, \"Inc\"", "c@example.com", "0", "new", "2026-03-01"),
    ] {
        out.push(
            app.create_record(
                "lead",
                &json!({"name": name, "email": email, "amount": amount, "stage": stage,
                        "close": close, "secret": "s3cret"}),
            )
            .await,
        );
    }
    out
}

on_both_databases! {
    async fn csv_export_has_labels_text_forms_and_no_formulas(app: TestApp) {
        lead_entity(&app).await;
        in_english(&app).await;
        some_leads(&app).await;
        let (status, kind, body) =
            bytes(&app, "/api/records/lead/export?format=csv&sort=email").await;
        assert_eq!(status, 200);
        assert!(kind.starts_with("text/csv"), "{kind}");
        let rows = csv_rows(&body);
        assert_eq!(rows[0], vec!["Name", "Email", "Amount", "Stage", "Close date", "Secret"]);
        assert_eq!(rows.len(), 4);
        assert_eq!(rows[1], vec!["上海华东贸易", "a@example.com", "1234.50", "Won", "2026-01-05", "s3cret"]);
        // A formula-looking cell is neutralised; a negative number is not.
        assert_eq!(rows[2][0], "'=HYPERLINK(\"http://evil\",\"x\")");
        assert_eq!(rows[2][2], "-20.00");
        assert_eq!(rows[3][0], "Acme, \"Inc\"");

        // Names as headers, chosen columns, a filter.
        let path = format!(
            "/api/records/lead/export?headers=names&fields=email,stage,id&filter={}",
            encode("stage = \"new\"")
        );
        let rows = csv_rows(&bytes(&app, &path).await.2);
        assert_eq!(rows[0], vec!["email", "stage", "id"]);
        assert_eq!(rows.len(), 3);
        assert!(rows[1..].iter().all(|r| r[1] == "New"));

        // Bad parameters are 400s before any byte is written.
        app.get("/api/records/lead/export?format=pdf").await.expect(400);
        app.get("/api/records/lead/export?filter=nope%20%3D%201").await.expect(400);
        app.get("/api/records/lead/export?fields=nope").await.expect(400);
        app.get("/api/records/lead/export?sort=nope").await.expect(400);
        app.get("/api/records/nothing/export").await.expect(404);
    }

    async fn exports_follow_views_scope_hidden_fields_and_the_export_permission(app: TestApp) {
        lead_entity(&app).await;
        some_leads(&app).await;
        let (rep, rep_id) = rep(&app, &["export"]).await;
        app.create_record("lead", &json!({"name": "我的", "email": "mine@example.com",
            "amount": "5", "stage": "won", "secret": "hidden from the rep", "owner": rep_id})).await;
        // The rep sees only their own lead, with Chinese labels and no secret column.
        let (status, _, body) = bytes(&rep, "/api/records/lead/export").await;
        assert_eq!(status, 200);
        let rows = csv_rows(&body);
        assert_eq!(rows[0], vec!["客户名称", "邮箱", "金额", "阶段", "成交日期"]);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[1][0], "我的");
        assert_eq!(rows[1][3], "赢单");
        assert!(!String::from_utf8_lossy(&body).contains("hidden from the rep"));
        // Asking for the hidden field by name is refused, as in lists.
        rep.get("/api/records/lead/export?fields=name,secret").await.expect(400);

        // A saved view: its filter, sort and columns; hidden columns left out for the rep.
        let view = app.post("/api/views", &json!({"entity": "lead", "name": "won_leads",
            "label": {"en": "Won", "zh-CN": "赢单"}, "kind": "list", "shared": true,
            "filter": "stage = \"won\"", "sort": "name", "columns": ["name", "secret", "amount"]}))
            .await.expect(201).body;
        let path = format!("/api/records/lead/export?view={}&headers=names", id(&view));
        let rows = csv_rows(&bytes(&app, &path).await.2);
        assert_eq!(rows[0], vec!["name", "secret", "amount"]);
        assert_eq!(rows.len(), 3, "{rows:?}");
        let rows = csv_rows(&bytes(&rep, &path).await.2);
        assert_eq!(rows[0], vec!["name", "amount"]);
        assert_eq!(rows[1], vec!["我的", "5.00"]);

        // Without the export permission: 403.
        app.post("/api/roles", &json!({"name": "reader", "permissions": {
            "entities": {"lead": {"read": "all"}}}})).await.expect(201);
        app.post("/api/users", &json!({"email": "reader@tessera.test", "password": PASSWORD,
            "roles": ["reader"]})).await.expect(201);
        let reader = app.login("reader@tessera.test", PASSWORD).await;
        assert_eq!(bytes(&reader, "/api/records/lead/export").await.0, 403);
    }

    async fn xlsx_export_reads_back(app: TestApp) {
        lead_entity(&app).await;
        in_english(&app).await;
        some_leads(&app).await;
        let (status, kind, body) =
            bytes(&app, "/api/records/lead/export?format=xlsx&sort=email").await;
        assert_eq!(status, 200);
        assert!(kind.contains("spreadsheetml"), "{kind}");
        let rows = xlsx_rows(body);
        assert_eq!(rows[0], vec!["Name", "Email", "Amount", "Stage", "Close date", "Secret"]);
        assert_eq!(rows[1], vec!["上海华东贸易", "a@example.com", "1234.50", "Won", "2026-01-05", "s3cret"]);
        assert_eq!(rows[2][0], "'=HYPERLINK(\"http://evil\",\"x\")");
        assert_eq!(rows.len(), 4);
    }

    async fn a_large_export_pages_through_every_record(app: TestApp) {
        lead_entity(&app).await;
        let records: Vec<Value> = (0..1100)
            .map(|n| json!({"name": format!("客户{n}"), "email": format!("p{n}@example.com")}))
            .collect();
        app.create_records("lead", records).await;
        let rows = csv_rows(&bytes(&app, "/api/records/lead/export?fields=email&headers=names").await.2);
        assert_eq!(rows.len(), 1101);
        let distinct: std::collections::HashSet<&String> = rows[1..].iter().map(|r| &r[0]).collect();
        assert_eq!(distinct.len(), 1100);
    }
}

fn with_bom(text: &str) -> Vec<u8> {
    let mut out = "\u{FEFF}".as_bytes().to_vec();
    out.extend_from_slice(text.as_bytes());
    out
}

on_both_databases! {
    async fn a_large_csv_with_a_bom_and_chinese_headers_maps_itself(app: TestApp) {
        lead_entity(&app).await;
        let mut text = String::from("客户名称,邮箱,金额,阶段,成交日期,备注\n");
        for n in 0..10_000 {
            let stage = if n % 2 == 0 { "赢单" } else { "新建" };
            text.push_str(&format!("客户{n},c{n}@example.com,\"1,234.50\",{stage},2026/1/5,x\n"));
        }
        let (status, _, report) = upload(&app, "lead", "", CSV, with_bom(&text), false).await;
        assert_eq!(status, 200, "{report}");
        assert_eq!(report["rows"], 10_000);
        assert_eq!(report["created"], 10_000);
        assert_eq!(report["failed"], 0);
        assert_eq!(report["dry_run"], false);
        assert_eq!(report["mapping"], json!({"客户名称": "name", "邮箱": "email", "金额": "amount",
            "阶段": "stage", "成交日期": "close"}));
        assert_eq!(report["unmapped"], json!(["备注"]));
        assert_eq!(report["errors"], json!([]));
        assert_eq!(count(&app, "lead").await, 10_000);
        let found = app.get("/api/records/lead?filter=email%20%3D%20%22c7%40example.com%22").await.expect(200).body;
        let lead = &found["items"][0];
        assert_eq!(lead["name"], "客户7");
        assert_eq!(lead["stage"], "new");
        assert_eq!(lead["close"], "2026-01-05");
        assert_eq!(lead["amount"].as_str().unwrap().parse::<f64>().unwrap(), 1234.5);
        let again = app.get(&format!("/api/imports/{}", report["id"].as_str().unwrap())).await.expect(200).body;
        assert_eq!(again["status"], "done");
        assert_eq!(again["created"], 10_000);
        // The planner's statistics were refreshed once the rows were in, before the answer.
        let analysed = analysed_rows(&app, "rec_lead").await;
        assert!(analysed >= 9_000, "statistics of {analysed} rows");
        // The search index merges at every commit again (SQLite held it back meanwhile), and
        // finds the last row.
        assert_eq!(search_automerge(&app).await, sqlite_only(&app, 4));
        let hits = app.get("/api/search?q=%E5%AE%A2%E6%88%B79999").await.expect(200).body;
        assert_eq!(hits["items"][0]["title"], "客户9999", "{hits}");
        // An import cut off leaves the merges held back; the next start resumes them.
        tessera::store::search::defer_merges(&app.ctx.db).await.unwrap();
        assert_eq!(search_automerge(&app).await, sqlite_only(&app, 0));
        app.ctx.db.migrate().await.unwrap();
        assert_eq!(search_automerge(&app).await, sqlite_only(&app, 4));
    }

    async fn a_gbk_file_and_an_xlsx_with_a_serial_date_and_a_formula_import(app: TestApp) {
        lead_entity(&app).await;
        let (gbk, _, _) = encoding_rs::GBK.encode("客户名称,邮箱,阶段\n上海华东贸易,g@example.com,赢单\n");
        let (status, _, report) = upload(&app, "lead", "", CSV, gbk.into_owned(), false).await;
        assert_eq!(status, 200, "{report}");
        assert_eq!(report["created"], 1, "{report}");
        let leads = by_email(&app, "lead").await;
        assert_eq!(leads["g@example.com"]["name"], "上海华东贸易");
        assert_eq!(leads["g@example.com"]["stage"], "won");

        let (status, _, report) =
            upload(&app, "lead", "", XLSX, workbook_with_serial_and_formula(), false).await;
        assert_eq!(status, 200, "{report}");
        assert_eq!(report["created"], 1, "{report}");
        let leads = by_email(&app, "lead").await;
        let lead = &leads["x@example.com"];
        assert_eq!(lead["name"], "表格客户");
        assert_eq!(lead["close"], "2026-01-05");
        assert_eq!(lead["amount"].as_str().unwrap().parse::<f64>().unwrap(), 1250.0);
    }

    async fn a_batchs_unique_values_are_checked_together_and_a_held_one_fails_its_row(app: TestApp) {
        lead_entity(&app).await;
        let held = app.create_record("lead", &json!({"name": "已有", "email": "u700@example.com"})).await;
        let trashed = app.create_record("lead", &json!({"name": "回收", "email": "u900@example.com"})).await;
        app.delete(&format!("/api/records/lead/{}", trashed["id"].as_str().unwrap())).await.expect(204);
        // 1,200 rows: their emails are looked up 500 at a time, and the second lookup finds one.
        let mut text = String::from("Name,Email\n");
        for n in 0..1_200 {
            text.push_str(&format!("n{n},u{n}@example.com\n"));
        }
        let (status, _, report) = upload(&app, "lead", "on_error=skip", CSV, text.into_bytes(), false).await;
        assert_eq!(status, 200, "{report}");
        assert_eq!(report["created"], 1_199, "{report}");
        assert_eq!(report["failed"], 1, "{report}");
        let error = &report["errors"][0];
        // Spreadsheet row 702 is the file's 701st record, u700.
        assert_eq!((&error["row"], &error["column"], &error["code"]), (&json!(702), &json!("Email"), &json!("unique")),
            "{report}");
        let holder = held["id"].as_str().unwrap();
        assert!(error["message"].as_str().unwrap().contains(holder), "the holder is named: {report}");
        // A trashed record holds nothing: its email went to the new row.
        assert_eq!(count(&app, "lead").await, 1_200);
        let leads = by_email(&app, "lead").await;
        assert_eq!(leads["u900@example.com"]["name"], "n900");
        assert_eq!(leads["u700@example.com"]["name"], "已有");
    }

    async fn a_dry_run_reports_exactly_the_bad_rows_and_writes_nothing(app: TestApp) {
        lead_entity(&app).await;
        app.create_record("lead", &json!({"name": "已有", "email": "taken@example.com"})).await;
        let mut text = String::from("Name,Email,Amount,Stage,Close date\n");
        // Spreadsheet rows 2..=21; the bad ones are 3, 5, 7, 9, 11, 13 and 15.
        for row in 2..=21 {
            let line = match row {
                3 => format!("n{row},r{row}@example.com,abc,new,2026-01-05"),
                5 => format!("n{row},r{row}@example.com,1,VIP,2026-01-05"),
                7 => format!("n{row},r{row}@example.com,1,new,2026-13-45"),
                9 => format!(",r{row}@example.com,1,new,2026-01-05"),
                11 => format!("n{row},not-an-email,1,new,2026-01-05"),
                13 => format!("n{row},r2@example.com,1,new,2026-01-05"),
                15 => format!("n{row},taken@example.com,1,new,2026-01-05"),
                _ => format!("n{row},r{row}@example.com,1,new,2026-01-05"),
            };
            text.push_str(&line);
            text.push('\n');
        }
        let (status, _, report) =
            upload(&app, "lead", "dry_run=true", CSV, text.clone().into_bytes(), false).await;
        assert_eq!(status, 200, "{report}");
        assert_eq!(report["dry_run"], true);
        assert_eq!(report["rows"], 20);
        assert_eq!(report["failed"], 7, "{report}");
        assert_eq!(report["created"], 13, "what the run would create: {report}");
        assert_eq!(report["updated"], 0, "{report}");
        let errors = report["errors"].as_array().unwrap();
        let rows: Vec<i64> = errors.iter().map(|e| e["row"].as_i64().unwrap()).collect();
        assert_eq!(rows, vec![3, 5, 7, 9, 11, 13, 15], "{report}");
        let columns: Vec<&str> = errors.iter().map(|e| e["column"].as_str().unwrap_or("-")).collect();
        assert_eq!(columns, vec!["Amount", "Stage", "Close date", "Name", "Email", "Email", "Email"], "{report}");
        assert!(errors.iter().all(|e| !e["message"].as_str().unwrap().is_empty()));
        // Each error has a code and the parts of its message, for clients that say it in
        // another language (the wizard in Chinese); the message stays English.
        let codes: Vec<&str> = errors.iter().map(|e| e["code"].as_str().unwrap_or("-")).collect();
        assert_eq!(codes, vec!["not_number", "not_option", "no_such_month", "required", "not_email",
                               "duplicate_in_file", "unique"], "{report}");
        assert_eq!(errors[1]["params"], json!({"value": "VIP", "options": ["new", "won"], "more": false}));
        assert_eq!(errors[1]["message"], "'VIP' is not one of the options: New, Won");
        assert_eq!(errors[2]["params"], json!({"value": "2026-13-45", "month": 13}));
        assert_eq!((&errors[3]["field"], &errors[3]["message"]), (&json!("name"), &json!("is required")));
        assert_eq!(errors[5]["params"], json!({"row": 2}));
        assert_eq!(report["warnings"][0]["code"], "triggers_off", "{report}");
        assert!(report["warnings"][0]["message"].as_str().unwrap().contains("automations"));
        assert_eq!(count(&app, "lead").await, 1, "a dry run writes nothing");

        // The real run skips the bad rows; the error file holds them with their errors.
        let (_, _, report) =
            upload(&app, "lead", "on_error=skip", CSV, text.clone().into_bytes(), false).await;
        assert_eq!(report["created"], 13, "{report}");
        assert_eq!(report["failed"], 7);
        assert_eq!(count(&app, "lead").await, 14);
        let path = format!("/api/imports/{}/errors.csv", report["id"].as_str().unwrap());
        let (status, _, body) = bytes(&app, &path).await;
        assert_eq!(status, 200);
        let rows = csv_rows(&body);
        assert_eq!(rows.len(), 8);
        assert_eq!(rows[0], vec!["Name", "Email", "Amount", "Stage", "Close date", "error"]);
        assert_eq!(rows[1][2], "abc");
        assert!(rows[1][5].starts_with("Amount: "), "{rows:?}");
        assert_eq!(rows[2][5], "Stage: 'VIP' is not one of the options: New, Won", "{rows:?}");

        // Stopping at the first bad row writes the rows before it only.
        let (_, _, report) = upload(&app, "lead", "on_error=stop&mode=create", CSV,
            text.replace("@example.com", "@example.org").into_bytes(), false).await;
        assert_eq!(report["created"], 1, "{report}");
        assert_eq!(report["failed"], 1);
    }

    async fn upsert_by_email_updates_three_creates_two_and_undo_reverts_it(app: TestApp) {
        lead_entity(&app).await;
        for (name, email, amount) in [("A", "a@example.com", "1"), ("B", "b@example.com", "2"),
                                      ("C", "c@example.com", "3")] {
            app.create_record("lead", &json!({"name": name, "email": email, "amount": amount, "stage": "new"})).await;
        }
        let text = "email,amount,stage\na@example.com,10,won\nb@example.com,20,won\nc@example.com,30,won\n\
                    d@example.com,40,new\ne@example.com,50,new\n";
        // Update mode needs a key; an unknown key is refused.
        assert_eq!(upload(&app, "lead", "mode=upsert", CSV, text.into(), false).await.0, 400);
        assert_eq!(upload(&app, "lead", "mode=upsert&key=name", CSV, text.into(), false).await.0, 400);
        // d and e have no name: name is required, so give it through the mapping of a column.
        let text = "email,amount,stage,name\na@example.com,10,won,A\nb@example.com,20,won,B\nc@example.com,30,won,C\n\
                    d@example.com,40,new,D\ne@example.com,50,new,E\n";
        let (status, _, report) =
            upload(&app, "lead", "mode=upsert&key=email", CSV, text.into(), false).await;
        assert_eq!(status, 200, "{report}");
        assert_eq!(report["updated"], 3, "{report}");
        assert_eq!(report["created"], 2, "{report}");
        let leads = by_email(&app, "lead").await;
        assert_eq!(leads.len(), 5);
        assert_eq!(leads["a@example.com"]["stage"], "won");
        assert_eq!(leads["a@example.com"]["amount"].as_str().unwrap().parse::<f64>().unwrap(), 10.0);
        let history = app.get(&format!("/api/records/lead/{}/history", id(&leads["a@example.com"]))).await.expect(200).body;
        let actions: Vec<&str> = history["items"].as_array().unwrap().iter().map(|h| h["action"].as_str().unwrap()).collect();
        assert_eq!(actions, vec!["update", "create"], "{history}");

        let import = report["id"].as_str().unwrap().to_owned();
        let undone = app.post(&format!("/api/imports/{import}/undo"), &json!({})).await.expect(200).body;
        assert_eq!(undone["removed"], 2, "{undone}");
        assert_eq!(undone["restored"], 3, "{undone}");
        let leads = by_email(&app, "lead").await;
        assert_eq!(leads.len(), 3);
        for (email, amount) in [("a@example.com", 1.0), ("b@example.com", 2.0), ("c@example.com", 3.0)] {
            assert_eq!(leads[email]["stage"], "new");
            assert_eq!(leads[email]["amount"].as_str().unwrap().parse::<f64>().unwrap(), amount);
        }
        assert_eq!(app.get(&format!("/api/imports/{import}")).await.expect(200).body["status"], "undone");
        app.post(&format!("/api/imports/{import}/undo"), &json!({})).await.expect(409);

        // A record changed after an import is left alone by its undo, and reported.
        let text = "email,amount,name\na@example.com,100,A\n";
        let (_, _, report) = upload(&app, "lead", "mode=update&key=email", CSV, text.into(), false).await;
        assert_eq!(report["updated"], 1, "{report}");
        let a = by_email(&app, "lead").await["a@example.com"].clone();
        app.patch(&format!("/api/records/lead/{}", id(&a)), &json!({"amount": "7"})).await.expect(200);
        let undone = app.post(&format!("/api/imports/{}/undo", report["id"].as_str().unwrap()), &json!({})).await.expect(200).body;
        assert_eq!(undone["restored"], 0, "{undone}");
        assert_eq!(undone["skipped"].as_array().unwrap().len(), 1, "{undone}");
        let a = by_email(&app, "lead").await["a@example.com"].clone();
        assert_eq!(a["amount"].as_str().unwrap().parse::<f64>().unwrap(), 7.0);
    }

    // A create-only import writes its batches together, and keeps one outcome row for the
    // rows each batch created; its undo still removes every record, row by row, and reports
    // the one changed since by its own row number.
    async fn undo_of_a_batched_import_removes_every_created_record(app: TestApp) {
        lead_entity(&app).await;
        let mut text = String::from("Name,Email,Stage\n");
        for n in 0..2_600 {
            // Spreadsheet row 101 (the header is row 1) is refused; the rest are created.
            let stage = if n == 99 { "VIP" } else { "New" };
            text.push_str(&format!("Lead {n},l{n}@example.com,{stage}\n"));
        }
        let (status, _, report) = upload(&app, "lead", "mode=create", CSV, text.into_bytes(), false).await;
        assert_eq!(status, 200, "{report}");
        assert_eq!(report["created"], 2_599, "{report}");
        assert_eq!(report["failed"], 1, "{report}");
        assert_eq!(report["errors"][0]["row"], 101, "{report}");
        assert_eq!(count(&app, "lead").await, 2_599);
        // A record of the second batch changed since the import (spreadsheet row 2,302).
        let found = app.get("/api/records/lead?filter=email%20%3D%20%22l2300%40example.com%22").await.expect(200).body;
        let changed = id(&found["items"][0]);
        app.patch(&format!("/api/records/lead/{changed}"), &json!({"stage": "won"})).await.expect(200);

        let import = report["id"].as_str().unwrap().to_owned();
        let undone = app.post(&format!("/api/imports/{import}/undo"), &json!({})).await.expect(200).body;
        assert_eq!(undone["removed"], 2_598, "{undone}");
        assert_eq!(undone["restored"], 0, "{undone}");
        assert_eq!(undone["skipped"], json!([{"row": 2_302, "id": changed,
            "message": "changed since the import; left as it is"}]), "{undone}");
        let left = by_email(&app, "lead").await;
        assert_eq!(left.keys().collect::<Vec<_>>(), vec!["l2300@example.com"]);
    }

    async fn a_rep_imports_only_inside_their_scope_and_writable_fields(app: TestApp) {
        lead_entity(&app).await;
        app.create_record("lead", &json!({"name": "Admin's", "email": "admins@example.com"})).await;
        let (rep, _) = rep(&app, &["import"]).await;
        // Owner outside their scope, a read-only field, and a record they cannot reach.
        let text = format!("客户名称,邮箱,owner\n自己的,own@example.com,\nfor admin,x@example.com,{}\n", crate::common::ADMIN_EMAIL);
        let (status, _, report) = upload(&rep, "lead", "", CSV, text.into_bytes(), false).await;
        assert_eq!(status, 200, "{report}");
        assert_eq!(report["created"], 1, "{report}");
        assert_eq!(report["failed"], 1, "{report}");
        assert_eq!(report["errors"][0]["row"], 3);
        let text = "客户名称,邮箱,金额\n带金额,amount@example.com,5\n";
        let (_, _, report) = upload(&rep, "lead", "", CSV, text.into(), false).await;
        assert_eq!(report["created"], 0, "{report}");
        assert_eq!(report["errors"][0]["field"], "amount", "{report}");
        let text = "邮箱,客户名称\nadmins@example.com,taken over\n";
        let (_, _, report) = upload(&rep, "lead", "mode=update&key=email", CSV, text.into(), false).await;
        assert_eq!(report["updated"], 0, "{report}");
        assert_eq!(report["failed"], 1, "{report}");
        let leads = by_email(&app, "lead").await;
        assert_eq!(leads["admins@example.com"]["name"], "Admin's");
        assert!(!leads.contains_key("x@example.com") && !leads.contains_key("amount@example.com"));
        // Without the import permission: 403.
        app.post("/api/roles", &json!({"name": "reader", "permissions": {
            "entities": {"lead": {"read": "all", "create": "all"}}}})).await.expect(201);
        app.post("/api/users", &json!({"email": "reader@tessera.test", "password": PASSWORD,
            "roles": ["reader"]})).await.expect(201);
        let reader = app.login("reader@tessera.test", PASSWORD).await;
        assert_eq!(upload(&reader, "lead", "", CSV, "Name\nx\n".into(), false).await.0, 403);
    }

    async fn exports_round_trip_through_import_as_csv_and_xlsx(app: TestApp) {
        lead_entity(&app).await;
        let mut copy = app.get("/api/entities/lead").await.expect(200).body;
        for name in ["lead_csv", "lead_xlsx"] {
            copy["name"] = json!(name);
            let definition = json!({"name": name, "label": copy["label"], "schema": copy["schema"]});
            app.create_entity(&definition).await;
        }
        some_leads(&app).await;
        app.create_record("lead", &json!({"name": "空的", "email": "empty@example.com"})).await;
        let original = by_email(&app, "lead").await;
        for (entity, format, media) in [("lead_csv", "csv", CSV), ("lead_xlsx", "xlsx", XLSX)] {
            let (status, _, file) = bytes(&app, &format!("/api/records/lead/export?format={format}")).await;
            assert_eq!(status, 200);
            let (status, _, report) = upload(&app, entity, "", media, file, false).await;
            assert_eq!(status, 200, "{report}");
            assert_eq!(report["created"], 4, "{report}");
            let imported = by_email(&app, entity).await;
            for (email, record) in &original {
                for field in ["name", "email", "amount", "stage", "close", "secret"] {
                    assert_eq!(imported[email][field], record[field], "{entity} {email} {field}");
                }
            }
        }
    }

    async fn an_import_sent_async_runs_as_a_job(app: TestApp) {
        lead_entity(&app).await;
        let mut text = String::from("name,email\n");
        for n in 0..1200 {
            text.push_str(&format!("n{n},j{n}@example.com\n"));
        }
        let (status, headers, answer) = upload(&app, "lead", "", CSV, text.into_bytes(), true).await;
        assert_eq!(status, 202, "{answer}");
        let location = headers.get("location").unwrap().to_str().unwrap().to_owned();
        assert_eq!(location, format!("/api/imports/{}", answer["id"].as_str().unwrap()));
        crate::common::eventually(std::time::Duration::from_secs(120), "the import to finish", || {
            let app = app.clone();
            let location = location.clone();
            async move { app.get(&location).await.body["status"] == "done" }
        })
        .await;
        let report = app.get(&location).await.expect(200).body;
        assert_eq!(report["created"], 1200, "{report}");
        assert_eq!(report["rows"], 1200);
        assert_eq!(count(&app, "lead").await, 1200);
    }

    // A real run's batches queue at the writer ahead of each other's commits; a batch keeps
    // its progress only if the import is where the batch before left it. Found moved on (by
    // another worker), its write fails as a whole, at its commit, and says why.
    async fn a_batch_that_finds_its_import_moved_on_keeps_nothing(app: TestApp) {
        lead_entity(&app).await;
        let body = b"name,email\na,a@example.com\nb,b@example.com\n".to_vec();
        let (status, _, report) = upload(&app, "lead", "", CSV, body, false).await;
        assert_eq!(status, 200, "{report}");
        let id = report["id"].as_str().unwrap().to_owned();
        let done_row = report["done_rows"].as_i64().unwrap() + 1;
        fn progress(tx: &mut tessera::store::Tx, from: i64, id: String) -> tessera::store::writer::WriteFuture<'_, ()> {
            Box::pin(async move {
                // Another write of the batch, before its progress: it goes with it.
                tx.send(tessera::store::Sql::new("UPDATE imports SET failed = failed + 100 WHERE id = $1").bind(id.as_str())).await?;
                tessera::store::imports::advance(tx, &id, from, from + 10, (10, 0, 0), chrono::Utc::now()).await
            })
        }
        let behind = id.clone();
        let failed = app.ctx.db.write_ahead(move |tx| progress(tx, done_row - 1, behind)).await;
        let error = failed.expect_err("a batch behind the import fails");
        assert!(tessera::store::imports::moved_on(&error), "{error}");
        let after = app.get(&format!("/api/imports/{id}")).await.expect(200).body;
        assert_eq!((&after["done_rows"], &after["created"], &after["failed"]), (&report["done_rows"], &report["created"], &json!(0)), "{after}");

        // Where the import is, the same batch moves it on.
        let at = id.clone();
        app.ctx.db.write_ahead(move |tx| progress(tx, done_row, at)).await.expect("a batch where the import is");
        let after = app.get(&format!("/api/imports/{id}")).await.expect(200).body;
        assert_eq!((&after["done_rows"], &after["failed"]), (&json!(done_row + 9), &json!(100)), "{after}");
    }

    async fn an_import_killed_mid_way_resumes_after_a_restart_without_writing_a_row_twice(app: TestApp) {
        lead_entity(&app).await;
        // This server's workers wait; a second server runs the import and is killed mid-way.
        app.ctx.pause_background(true);
        app.ctx.background_settled().await;
        let (second, server) = app.second_instance().await;
        let n = 6000;
        let mut text = String::from("name,email\n");
        for i in 0..n {
            text.push_str(&format!("n{i},k{i}@example.com\n"));
        }
        let (status, headers, answer) = upload(&second, "lead", "", CSV, text.into_bytes(), true).await;
        assert_eq!(status, 202, "{answer}");
        let location = headers.get("location").unwrap().to_str().unwrap().to_owned();
        crate::common::eventually(std::time::Duration::from_secs(120), "a first committed batch", || {
            let second = second.clone();
            let location = location.clone();
            async move { second.get(&location).await.body["done_rows"].as_i64().unwrap_or(0) >= 500 }
        })
        .await;
        server.stop().await.expect("the second server stops");
        let before = app.get(&location).await.expect(200).body;
        // The dead worker's lease ends now rather than in five minutes.
        app.ctx
            .db
            .write(|tx| {
                Box::pin(async move {
                    tx.execute(&tessera::store::Sql::new(
                        "UPDATE jobs SET lease_expires_at = created_at WHERE kind = 'import'",
                    ))
                    .await
                })
            })
            .await
            .expect("the lease is ended");
        app.ctx.pause_background(false);
        crate::common::eventually(std::time::Duration::from_secs(300), "the import to finish", || {
            let app = app.clone();
            let location = location.clone();
            async move { app.get(&location).await.body["status"] == "done" }
        })
        .await;
        let report = app.get(&location).await.expect(200).body;
        assert_eq!(report["created"], n, "{report} (stopped at {})", before["done_rows"]);
        assert_eq!(report["failed"], 0, "{report}");
        assert_eq!(count(&app, "lead").await, n);
        // Every row has one outcome, and every record one row (rows created together are
        // kept together: read them as undo does).
        let import = report["id"].as_str().unwrap();
        let outcomes = tessera::store::imports::rows(
            &mut &app.ctx.db, import, tessera::store::imports::Outcome::Created, 0, n + 1).await.unwrap();
        let rows: std::collections::BTreeSet<i64> = outcomes.iter().map(|o| o.row).collect();
        let records: std::collections::BTreeSet<&str> =
            outcomes.iter().filter_map(|o| o.record_id.as_deref()).collect();
        assert_eq!((outcomes.len(), rows.len(), records.len()), (6000, 6000, 6000));
        assert_eq!((rows.first(), rows.last()), (Some(&2), Some(&6001)));
    }

    async fn a_backup_under_write_load_holds_every_acknowledged_write(app: TestApp) {
        lead_entity(&app).await;
        let before = app
            .create_records("lead", (0..40).map(|i| json!({"name": format!("b{i}")})).collect())
            .await;
        // Writers carry on while the copy is taken.
        let writer = {
            let app = app.clone();
            tokio::spawn(async move {
                for i in 0..100 {
                    app.post("/api/records/lead", &json!({"name": format!("w{i}")})).await.expect(201);
                }
            })
        };
        let dir = tempfile::tempdir().expect("a folder");
        let path = dir.path().join("copy.db");
        let result = app.ctx.db.backup_into(&path).await;
        writer.await.expect("the writer finishes");
        if app.backend == crate::common::Backend::Postgres {
            // PostgreSQL is backed up with pg_dump, which the command line runs.
            assert!(matches!(result, Err(tessera::Error::BadRequest { .. })), "{result:?}");
            return;
        }
        result.expect("a backup");
        let copy = sqlx::SqlitePool::connect_with(
            sqlx::sqlite::SqliteConnectOptions::new().filename(&path).read_only(true),
        )
        .await
        .expect("the copy opens");
        let check: (String,) = sqlx::query_as("PRAGMA integrity_check").fetch_one(&copy).await.unwrap();
        assert_eq!(check.0, "ok");
        let ids: Vec<(String,)> = sqlx::query_as("SELECT id FROM rec_lead").fetch_all(&copy).await.unwrap();
        let ids: std::collections::HashSet<String> = ids.into_iter().map(|(i,)| i).collect();
        for record in &before {
            assert!(ids.contains(&id(record)), "an acknowledged write is missing from the copy");
        }
        copy.close().await;
        // A backup never overwrites a file.
        assert!(app.ctx.db.backup_into(&path).await.is_err());
    }
}
