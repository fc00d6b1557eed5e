//! Entity definitions: every field kind makes a real typed column; bad definitions are 422s
//! that say what is wrong; entities are versioned, archived on delete.

use serde_json::{Value, json};

use crate::common::Backend;
use crate::on_both_databases;

fn company() -> Value {
    json!({
        "name": "company",
        "label": {"en": "Company", "zh-CN": "公司"},
        "schema": {"properties": {"name": {"x-kind": "text", "x-label": {"en": "Name", "zh-CN": "名称"}}}}
    })
}

/// One field of every kind except rollup (added once something can point back).
fn everything() -> Value {
    json!({
        "name": "everything",
        "label": {"en": "Everything", "zh-CN": "全部"},
        "schema": {
            "type": "object",
            "properties": {
                "title": {"x-kind": "text", "x-indexed": true},
                "notes": {"x-kind": "long_text"},
                "quantity": {"x-kind": "integer", "minimum": 0},
                "ratio": {"x-kind": "decimal", "x-scale": 4},
                "price": {"x-kind": "money", "x-currency": "CNY"},
                "discount": {"x-kind": "percent"},
                "active": {"x-kind": "boolean"},
                "birthday": {"x-kind": "date"},
                "met_at": {"x-kind": "datetime"},
                "email": {"x-kind": "email", "x-unique": true},
                "phone": {"x-kind": "phone"},
                "homepage": {"x-kind": "url"},
                "level": {"x-kind": "select", "x-options": [
                    {"value": "a", "label": {"en": "A", "zh-CN": "甲"}, "color": "#c00"},
                    {"value": "b", "label": {"en": "B", "zh-CN": "乙"}}
                ]},
                "hobbies": {"x-kind": "multi_select", "x-options": [{"value": "golf"}, {"value": "tea"}, {"value": "go"}]},
                "company": {"x-kind": "lookup", "x-target": "company"},
                "partners": {"x-kind": "multi_lookup", "x-target": "company"},
                "parent": {"x-kind": "lookup", "x-target": "everything"},
                "salesperson": {"x-kind": "user"},
                "team": {"x-kind": "department"},
                "code": {"x-kind": "autonumber", "x-pattern": "EV-{0000}"},
                "gross": {"x-kind": "formula", "x-formula": "price * quantity", "x-result": "decimal"}
            },
            "required": ["title"]
        }
    })
}

fn column_type<'a>(columns: &'a [(String, String)], name: &str) -> &'a str {
    columns
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, t)| t.as_str())
        .unwrap_or_else(|| panic!("no column {name} in {columns:?}"))
}

on_both_databases! {
    async fn every_field_kind_makes_a_real_typed_column(app: TestApp) {
        app.create_entity(&company()).await;
        let created = app.create_entity(&everything()).await;
        assert_eq!(created["version"], 1);
        // The server completes the JSON Schema keywords each kind implies.
        let p = &created["schema"]["properties"];
        assert_eq!(p["quantity"]["type"], "integer");
        assert_eq!(p["birthday"]["format"], "date");
        assert_eq!(p["met_at"]["format"], "date-time");
        assert_eq!(p["email"]["format"], "email");
        assert_eq!(p["level"]["enum"], json!(["a", "b"]));
        assert_eq!(p["hobbies"]["items"]["enum"], json!(["golf", "tea", "go"]));
        assert_eq!(p["company"]["format"], "uuid");
        assert_eq!(p["code"]["readOnly"], true);
        assert_eq!(p["price"]["x-scale"], 2);

        // Something that points back, so the rollup kind can be added too.
        app.create_entity(&json!({
            "name": "line",
            "label": {"en": "Line", "zh-CN": "明细"},
            "schema": {"properties": {
                "owner_record": {"x-kind": "lookup", "x-target": "everything"},
                "amount": {"x-kind": "money"}
            }}
        }))
        .await;
        let added = app
            .post(
                "/api/entities/everything/fields",
                &json!({"name": "total", "x-kind": "rollup",
                        "x-rollup": {"entity": "line", "via": "owner_record", "field": "amount", "op": "sum"}}),
            )
            .await
            .expect(201);
        assert_eq!(added.body["entity"]["version"], 2);
        assert_eq!(added.body["entity"]["schema"]["properties"]["total"]["x-result"], "decimal");

        let columns = app.columns_of("rec_everything").await;
        let expected: &[(&str, &str, &str)] = &[
            ("id", "text", "text"),
            ("created_at", "text", "timestamp with time zone"),
            ("version", "integer", "bigint"),
            ("deleted_at", "text", "timestamp with time zone"),
            ("title", "text", "text"),
            ("notes", "text", "text"),
            ("quantity", "integer", "bigint"),
            ("ratio", "integer", "numeric(30,4)"),
            ("price", "integer", "numeric(30,2)"),
            ("discount", "integer", "numeric(30,2)"),
            ("active", "integer", "boolean"),
            ("birthday", "text", "date"),
            ("met_at", "text", "timestamp with time zone"),
            ("email", "text", "text"),
            ("phone", "text", "text"),
            ("homepage", "text", "text"),
            ("level", "text", "text"),
            ("hobbies", "text", "jsonb"),
            ("company", "text", "text"),
            ("parent", "text", "text"),
            ("salesperson", "text", "text"),
            ("team", "text", "text"),
            ("code", "text", "text"),
            ("gross", "integer", "numeric(30,2)"),
            ("total", "integer", "numeric(30,2)"),
        ];
        for (name, sqlite, postgres) in expected {
            let want = if app.backend == Backend::Sqlite { sqlite } else { postgres };
            assert_eq!(column_type(&columns, name), *want, "column {name}");
        }
        // A multi lookup lives in a join table, not a column.
        assert!(!columns.iter().any(|(n, _)| n == "partners"));
        let join = app.columns_of("rel_everything_partners").await;
        let join_names: Vec<&str> = join.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(join_names, ["source_id", "target_id", "position"]);
        assert!(
            app.indexes_of("rel_everything_partners").await.iter().any(|(_, d)| d.contains("target_id")),
            "join tables are indexed by target"
        );

        let indexes = app.indexes_of("rec_everything").await;
        let names: Vec<&str> = indexes.iter().map(|(n, _)| n.as_str()).collect();
        for wanted in [
            "ix_everything_title",
            "ux_everything_email",
            "ux_everything_code",
            "ix_everything_company",
            "ix_everything_parent",
            "ix_everything_salesperson",
            "ix_everything_team",
            "ix_everything_owner",
            "ix_everything_department",
        ] {
            assert!(names.contains(&wanted), "{wanted} missing from {names:?}");
        }
        let unique = indexes.iter().find(|(n, _)| n == "ux_everything_email").unwrap();
        assert!(unique.1.to_uppercase().contains("UNIQUE"), "{unique:?}");

        // A record with every writable kind round-trips.
        let acme = app.create_record("company", &json!({"name": "Acme 阿克米"})).await;
        let globex = app.create_record("company", &json!({"name": "Globex"})).await;
        let record = app
            .create_record(
                "everything",
                &json!({
                    "title": "全部字段 all fields",
                    "notes": "多行\n文本",
                    "quantity": 3,
                    "ratio": "0.12345",
                    "price": 19.99,
                    "discount": "12.5",
                    "active": true,
                    "birthday": "1990-02-28",
                    "met_at": "2026-11-22T09:30:00+08:00",
                    "email": "li.lei@example.cn",
                    "phone": "+86 138 0013 8000",
                    "homepage": "www.example.cn",
                    "level": "a",
                    "hobbies": ["tea", "go"],
                    "company": acme["id"],
                    "partners": [globex["id"], acme["id"]],
                    "salesperson": "0195b4b2-7c1e-7d4a-9a53-2d1f2b3c4d5e",
                    "team": "0195b4b2-7c1e-7d4a-9a53-2d1f2b3c4d5f"
                }),
            )
            .await;
        assert_eq!(record["code"], "EV-0001");
        assert_eq!(record["ratio"], "0.1235");
        assert_eq!(record["price"], "19.99");
        assert_eq!(record["discount"], "12.50");
        assert_eq!(record["met_at"], "2026-11-22T01:30:00.000000Z");
        assert_eq!(record["homepage"], "https://www.example.cn");
        assert_eq!(record["hobbies"], json!(["tea", "go"]));
        // The schema says a choice appears once.
        let twice = app.post("/api/records/everything", &json!({"title": "t", "hobbies": ["go", "go"]})).await.expect(422);
        assert_eq!(twice.error_fields(), ["hobbies"]);
        assert_eq!(record["partners"], json!([globex["id"], acme["id"]]));
        let id = record["id"].as_str().unwrap();
        let read = app.get(&format!("/api/records/everything/{id}")).await.expect(200);
        assert_eq!(read.body, record);
        assert_eq!(read.header("etag"), Some("\"1\""));
    }

    async fn bad_definitions_say_what_is_wrong(app: TestApp) {
        let cases = [
            (json!({"name": "Bad Name", "label": {"en": "x", "zh-CN": "x"}, "schema": {"properties": {}}}), "name"),
            (json!({"name": "x", "label": {"en": "x"}, "schema": {"properties": {}}}), "label"),
            (json!({"name": "x", "label": {"en": "x", "zh-CN": "x"}, "schema": {"properties": {"a": {"x-kind": "blob"}}}}), "schema.properties.a.x-kind"),
            (json!({"name": "x", "label": {"en": "x", "zh-CN": "x"}, "schema": {"properties": {"a": {"x-kind": "select"}}}}), "schema.properties.a"),
            (json!({"name": "x", "label": {"en": "x", "zh-CN": "x"}, "schema": {"properties": {"a": {"x-kind": "lookup", "x-target": "nobody"}}}}), "schema.properties.a.x-target"),
            (json!({"name": "x", "label": {"en": "x", "zh-CN": "x"}, "schema": {"properties": {"a": {"x-kind": "text", "x-scale": 2}}}}), "schema.properties.a"),
            (json!({"name": "x", "label": {"en": "x", "zh-CN": "x"}, "schema": {"properties": {"id": {"x-kind": "text"}}}}), "schema.properties.id"),
            (json!({"name": "x", "label": {"en": "x", "zh-CN": "x"}, "schema": {"properties": {"a": {"x-kind": "text"}}, "required": ["b"]}}), "schema.required"),
            (json!({"name": "x", "label": {"en": "x", "zh-CN": "x"}, "schema": {"properties": {"a": {"x-kind": "autonumber", "x-pattern": "no-counter"}}}}), "schema.properties.a"),
            (json!({"name": "x", "label": {"en": "x", "zh-CN": "x"}, "schema": {"properties": {"a": {"x-kind": "text", "pattern": "(unclosed"}}}}), "schema.properties.a.pattern"),
            (json!({"name": "x", "label": {"en": "x", "zh-CN": "x"}, "schema": {"properties": {"a": {"x-kind": "long_text", "x-unique": true}}}}), "schema.properties.a"),
            (json!({"name": "x", "label": {"en": "x", "zh-CN": "x"}, "schema": {"properties": {"a": {"x-kind": "integer", "default": "seven"}}}}), "schema.properties.a"),
        ];
        for (definition, path) in cases {
            let response = app.post("/api/entities", &definition).await.expect(422);
            assert_eq!(response.header("content-type"), Some("application/problem+json"));
            let fields = response.error_fields();
            assert!(
                fields.iter().any(|f| f == path),
                "expected an error at {path}, got {}",
                response.body
            );
        }
        // Several problems come back together.
        let many = app
            .post("/api/entities", &json!({
                "name": "x", "label": {"en": "x", "zh-CN": "x"},
                "schema": {"properties": {
                    "a": {"x-kind": "select"},
                    "b": {"x-kind": "text", "x-options": [{"value": "v"}]},
                    "c": {"x-kind": "decimal", "x-scale": 12}
                }}
            }))
            .await
            .expect(422);
        assert!(many.error_fields().len() >= 3, "{}", many.body);
        // Nothing was created by any of it.
        let list = app.get("/api/entities").await.expect(200);
        assert_eq!(list.body["items"], json!([]));
        // A name is taken only once.
        app.create_entity(&company()).await;
        app.post("/api/entities", &company()).await.expect(409);
    }

    async fn plain_json_schema_is_understood(app: TestApp) {
        let created = app
            .create_entity(&json!({
                "name": "plain", "label": {"en": "Plain", "zh-CN": "普通"},
                "schema": {"type": "object", "properties": {
                    "name": {"type": "string", "maxLength": 80},
                    "count": {"type": "integer"},
                    "size": {"type": "string", "enum": ["s", "m", "l"]},
                    "day": {"type": "string", "format": "date"}
                }, "required": ["name"]}
            }))
            .await;
        let p = &created["schema"]["properties"];
        assert_eq!(p["name"]["x-kind"], "text");
        assert_eq!(p["count"]["x-kind"], "integer");
        assert_eq!(p["size"]["x-kind"], "select");
        assert_eq!(p["day"]["x-kind"], "date");
        app.get("/api/meta-schema").await.expect(200);
    }

    async fn definitions_are_versioned_and_replaced_as_a_whole(app: TestApp) {
        app.create_entity(&company()).await;
        let mut doc = app.get("/api/entities/company").await.expect(200).body;
        assert_eq!(doc["version"], 1);
        doc["schema"]["properties"]["city"] = json!({"x-kind": "text", "x-label": {"en": "City", "zh-CN": "城市"}});
        doc["label"]["zh-CN"] = json!("企业");
        let replaced = app.put("/api/entities/company", &doc).await.expect(200);
        assert_eq!(replaced.body["applied"], true);
        assert_eq!(replaced.body["entity"]["version"], 2);
        assert_eq!(replaced.header("etag"), Some("\"2\""));
        let actions: Vec<&str> = replaced.body["changes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["action"].as_str().unwrap())
            .collect();
        assert_eq!(actions, ["add_field", "metadata"]);

        // Sending the same document again changes nothing and makes no version.
        let mut again = replaced.body["entity"].clone();
        let same = app.put("/api/entities/company", &again).await.expect(200);
        assert_eq!(same.body["applied"], false);
        assert_eq!(same.body["entity"]["version"], 2);

        // A stale version is refused.
        again["version"] = json!(1);
        app.put("/api/entities/company", &again).await.expect(412);
        let stale = app
            .request_with(reqwest::Method::PUT, "/api/entities/company", Some(&replaced.body["entity"]), &[("if-match", "\"1\"")])
            .await;
        assert_eq!(stale.status.as_u16(), 412);

        // Renaming in a PUT with x-renamed-from keeps the data.
        let record = app.create_record("company", &json!({"name": "Acme", "city": "上海"})).await;
        let mut doc = app.get("/api/entities/company").await.expect(200).body;
        let city = doc["schema"]["properties"]["city"].clone();
        let mut town = city.clone();
        town["x-renamed-from"] = json!("city");
        let properties = doc["schema"]["properties"].as_object_mut().unwrap();
        properties.remove("city");
        properties.insert("town".into(), town);
        app.put("/api/entities/company", &doc).await.expect(200);
        let read = app.get(&format!("/api/records/company/{}", record["id"].as_str().unwrap())).await.expect(200);
        assert_eq!(read.body["town"], "上海");

        let versions = app.get("/api/entities/company/versions").await.expect(200);
        let numbers: Vec<i64> = versions.body["items"].as_array().unwrap().iter().map(|v| v["version"].as_i64().unwrap()).collect();
        assert_eq!(numbers, [3, 2, 1]);
        assert_eq!(versions.body["items"][0]["changes"][0]["action"], "rename_field");
    }

    async fn deleting_an_entity_archives_its_table(app: TestApp) {
        app.create_entity(&company()).await;
        app.create_entity(&json!({
            "name": "person", "label": {"en": "Person", "zh-CN": "人员"},
            "schema": {"properties": {"employer": {"x-kind": "lookup", "x-target": "company"}}}
        }))
        .await;
        app.create_record("company", &json!({"name": "Acme"})).await;
        // Refused while something looks it up.
        let refused = app.delete("/api/entities/company").await.expect(409);
        assert_eq!(refused.error_fields(), ["person.employer"]);
        app.delete("/api/entities/person").await.expect(200);
        let archived = app.delete("/api/entities/company").await.expect(200);
        assert_eq!(archived.body["records"], 1);
        app.get("/api/entities/company").await.expect(404);
        app.get("/api/records/company").await.expect(404);
        // The data is still in the database, under the archive name.
        let table = archived.body["tables"][0].as_str().unwrap().to_owned();
        let rows = app
            .sql(&format!("SELECT COUNT(*) FROM \"{table}\""), &[tessera::store::ColumnType::Integer])
            .await;
        assert_eq!(rows[0][0].as_i64(), Some(1));
        // The name is free again, with version numbers continuing.
        let again = app.create_entity(&company()).await;
        assert_eq!(again["version"], 2);
        app.create_record("company", &json!({"name": "Acme again"})).await;
    }
}
