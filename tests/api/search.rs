//! Global search: two-character Chinese words on both databases, phrases ranked first, emails
//! and phone numbers, the caller's scope and hidden fields, the index kept current by writes.

use serde_json::{Value, json};
use tessera::store::query::Condition;
use tessera::store::search::{self as search_index, Lookup};
use tessera::store::{Dialect, Sql};

use crate::common::{TestApp, id};
use crate::on_both_databases;

fn titles(answer: &Value) -> Vec<String> {
    answer["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["title"].as_str().unwrap_or_default().to_owned())
        .collect()
}

async fn found(app: &TestApp, q: &str) -> Vec<String> {
    let path = format!("/api/search?q={}", urlencode(q));
    titles(&app.get(&path).await.expect(200).body)
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

async fn entities(app: &TestApp) {
    app.create_entity(
        &json!({"name": "account", "label": {"en": "Account", "zh-CN": "客户"},
        "schema": {"properties": {
            "name": {"x-kind": "text"},
            "notes": {"x-kind": "long_text"},
            "email": {"x-kind": "email"},
            "phone": {"x-kind": "phone"},
            "secret": {"x-kind": "text"},
            "amount": {"x-kind": "money"}}, "required": ["name"]}}),
    )
    .await;
    app.create_entity(
        &json!({"name": "person", "label": {"en": "Person", "zh-CN": "联系人"},
        "schema": {"properties": {"name": {"x-kind": "text"}, "title": {"x-kind": "text"}}}}),
    )
    .await;
}

on_both_databases! {
    async fn chinese_words_phrases_emails_and_phones_are_found(app: TestApp) {
        entities(&app).await;
        for (name, notes) in [
            ("重要客户名单", "年度重点"),
            ("上海华东贸易有限公司", "华东区的老客户"),
            ("客人登记表", "来访客人"),
            ("北京贸易有限公司", "贸易 有限 公司 分散"),
            // Every bigram of 贸易有限公, none next to the one it follows in the phrase.
            ("散落记录", "限公 贸易 有限 易有"),
        ] {
            app.create_record("account", &json!({"name": name, "notes": notes})).await;
        }
        app.create_record("person", &json!({"name": "张伟", "title": "客户经理"})).await;
        app.create_record("account", &json!({"name": "Acme Trading", "email": "zhang.san@example.com",
            "phone": "+86 138-0013-8000"})).await;

        // 客户 finds 重要客户名单 and 客户经理 (another entity), never 客人.
        let hits = found(&app, "客户").await;
        assert!(hits.contains(&"重要客户名单".to_owned()), "{hits:?}");
        assert!(hits.contains(&"张伟".to_owned()), "{hits:?}");
        assert!(!hits.contains(&"客人登记表".to_owned()), "{hits:?}");
        // A title hit ranks above a hit in another field (上海华东贸易 has 客户 in its notes).
        let first_title = hits.iter().position(|h| h == "重要客户名单").unwrap();
        let notes_hit = hits.iter().position(|h| h == "上海华东贸易有限公司").unwrap();
        assert!(first_title < notes_hit, "{hits:?}");
        assert_eq!(found(&app, "华东").await[0], "上海华东贸易有限公司");
        // One character: by prefix.
        assert!(found(&app, "客").await.len() >= 3);
        // A five-character phrase: the exact match first, scattered words after or not at all;
        // its bigrams apart (散落记录) are not the phrase.
        let hits = found(&app, "贸易有限公").await;
        assert_eq!(hits.len(), 2, "{hits:?}");
        assert!(hits.iter().all(|h| h.contains("贸易有限公")), "{hits:?}");
        // Two words: the record holding them as one phrase ranks above one holding them apart.
        let hits = found(&app, "有限 公司").await;
        assert!(hits.len() >= 2, "{hits:?}");
        // Emails and phone numbers, as typed.
        assert_eq!(found(&app, "zhang.san@example.com").await, ["Acme Trading"]);
        assert_eq!(found(&app, "example").await, ["Acme Trading"]);
        assert_eq!(found(&app, "13800138000").await, ["Acme Trading"]);
        assert_eq!(found(&app, "138-0013-8000").await, ["Acme Trading"]);
        // Mixed Latin and Chinese.
        assert_eq!(found(&app, "acme trad").await, ["Acme Trading"]);
        // Snippets are escaped and marked.
        let evil = app.create_record("account", &json!({"name": "<img src=x onerror=alert(1)> 华南"})).await;
        let answer = app.get(&format!("/api/search?q={}", urlencode("华南"))).await.expect(200).body;
        let snippet = answer["items"][0]["snippet"].as_str().unwrap();
        assert!(snippet.contains("&lt;img") && snippet.contains("<mark>华南</mark>"), "{snippet}");
        assert_eq!(answer["items"][0]["id"], id(&evil));
        assert_eq!(answer["items"][0]["entity"], "account");
        // Nothing to search for is a 400; an unknown entity too.
        app.get("/api/search?q=%20%2B").await.expect(400);
        app.get("/api/search?q=x&entities=nothing").await.expect(400);
        let only_people = app.get(&format!("/api/search?q={}&entities=person", urlencode("客户"))).await.expect(200).body;
        assert_eq!(titles(&only_people), ["张伟"]);
    }

    async fn the_index_follows_writes_scope_and_hidden_fields(app: TestApp) {
        entities(&app).await;
        let record = app.create_record("account", &json!({"name": "旧名称", "secret": "机密暗号"})).await;
        let path = format!("/api/records/account/{}", id(&record));
        assert_eq!(found(&app, "旧名称").await, ["旧名称"]);
        // Renamed in one request, found by its new text in the next; the old text is gone.
        app.patch(&path, &json!({"name": "新名称"})).await.expect(200);
        assert_eq!(found(&app, "新名称").await, ["新名称"]);
        assert!(found(&app, "旧名称").await.is_empty());
        // Trashed records are not found; restored ones are.
        app.delete(&path).await.expect(204);
        assert!(found(&app, "新名称").await.is_empty());
        app.post(&format!("{path}/restore"), &json!({})).await.expect(200);
        assert_eq!(found(&app, "新名称").await, ["新名称"]);
        // A failed write leaves the index as it was.
        app.patch(&path, &json!({"name": "失败的名称", "amount": "not a number"})).await.expect(422);
        assert!(found(&app, "失败的名称").await.is_empty());

        // A rep reads only their own accounts, and not the secret field.
        app.post("/api/roles", &json!({"name": "rep", "permissions": {"entities": {
            "account": {"create": "own", "read": "own", "update": "own", "delete": "none",
                        "fields": {"secret": "hidden"}}}}})).await.expect(201);
        let user = app.post("/api/users", &json!({"email": "rep@example.test", "password": "password 1234",
            "roles": ["rep"]})).await.expect(201).body;
        let rep = app.login("rep@example.test", "password 1234").await;
        // Their own account, whose secret the administrator filled in.
        app.create_record("account", &json!({"name": "我的客户甲", "secret": "机密暗号", "owner": id(&user)})).await;
        assert_eq!(found(&rep, "客户甲").await, ["我的客户甲"]);
        // The admin's record is out of the rep's scope.
        assert!(found(&rep, "新名称").await.is_empty());
        // A hidden field never matches, even on the rep's own record.
        assert!(found(&rep, "机密暗号").await.is_empty());
        assert_eq!(found(&app, "机密暗号").await.len(), 2);
        // The person entity is not readable by the rep at all.
        app.create_record("person", &json!({"name": "客户甲的联系人"})).await;
        assert_eq!(found(&rep, "客户甲").await, ["我的客户甲"]);
    }
}

on_both_databases! {
    async fn a_rebuild_finds_everything_once(app: TestApp) {
        entities(&app).await;
        let accounts = (0..1200)
            .map(|i| json!({"name": format!("华东客户 {i:04}"), "notes": format!("编号 N{i:04}"),
                "email": format!("a{i}@example.com")}))
            .collect();
        app.create_records("account", accounts).await;
        let before = found(&app, "N0042").await;
        assert_eq!(before, vec!["华东客户 0042"]);
        // `tessera reindex`: cleared, then rebuilt in batches of many rows per statement.
        let done = tessera::search::index::rebuild(&app.ctx).await.expect("rebuild");
        assert!(done.contains(&("account".to_owned(), 1200)), "{done:?}");
        if app.dialect() == tessera::store::Dialect::Postgres {
            let indexes = app.indexes_of("search_rows").await;
            assert!(indexes.iter().any(|(n, _)| n == "search_rows_tokens"), "the GIN index is back: {indexes:?}");
        }
        assert_eq!(found(&app, "N0042").await, before, "found again, once");
        assert_eq!(found(&app, "a1199@example.com").await, vec!["华东客户 1199"]);
        let page = app.get("/api/search?q=%E5%8D%8E%E4%B8%9C&limit=50").await.expect(200).body;
        let mut ids: Vec<&str> = page["items"].as_array().unwrap().iter()
            .map(|i| i["id"].as_str().unwrap_or_default()).collect();
        let n = ids.len();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!((n, ids.len()), (50, 50), "each record once");
    }
}

on_both_databases! {
    async fn the_newest_matches_come_first_across_index_blocks(app: TestApp) {
        entities(&app).await;
        for i in 0..3 {
            app.create_record("account", &json!({"name": format!("旧华东贸易有限公司 {i}")})).await;
        }
        if app.dialect() == Dialect::Postgres {
            // The next index rows go to the fourth block of 65,536, so the newest two blocks
            // hold only what follows, as at a million records.
            app.ctx.db
                .execute(&Sql::new("SELECT setval(pg_get_serial_sequence('search_rows', 'id'), 3 * 65536)"))
                .await
                .expect("setval");
        }
        for i in 0..4 {
            app.create_record("account", &json!({"name": format!("新华东贸易有限公司 {i}")})).await;
        }
        let q = urlencode("华东贸易有");
        let newest = app.get(&format!("/api/search?q={q}&limit=1")).await.expect(200).body;
        assert_eq!(titles(&newest), ["新华东贸易有限公司 3"]);
        let all = titles(&app.get(&format!("/api/search?q={q}")).await.expect(200).body);
        let expected: Vec<String> = (0..4).rev().map(|i| format!("新华东贸易有限公司 {i}"))
            .chain((0..3).rev().map(|i| format!("旧华东贸易有限公司 {i}")))
            .collect();
        assert_eq!(all, expected);

        if app.dialect() == Dialect::Postgres {
            // With the planner sent to the GIN index, a lookup reads every match and sorts;
            // held to the newest two blocks, it sees only the rows written into them.
            let mut tx = app.ctx.db.begin().await.expect("tx");
            tx.execute(&Sql::new("SET LOCAL enable_indexscan = off")).await.expect("set");
            tx.execute(&Sql::new("SET LOCAL enable_seqscan = off")).await.expect("set");
            let everything = Condition::True;
            let lookup = Lookup {
                fts: "",
                tsquery: "'华东' & '东贸' & '贸易' & '易有'",
                allowed: &everything,
                titles: Some(true),
                limit: 10,
                newest: None,
            };
            assert!(search_index::reads_every_match(&mut tx, &lookup).await.expect("explain"));
            let block = search_index::newest_block(&mut tx).await.expect("block");
            assert_eq!(block, Some(3));
            let held = search_index::find(&mut tx, &Lookup { newest: block, ..lookup }).await.expect("find");
            let names: Vec<&str> = held.iter().map(|f| f.title.as_str()).collect();
            assert_eq!(names, ["新华东贸易有限公司 3", "新华东贸易有限公司 2", "新华东贸易有限公司 1", "新华东贸易有限公司 0"]);
            let whole = search_index::find(&mut tx, &lookup).await.expect("find");
            assert_eq!(whole.len(), 7);
        }
    }
}
