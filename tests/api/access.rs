//! Users, departments, roles and the permission check: which records each user reaches under
//! each data scope, the forbidden paths, tokens and deactivation across server instances, the
//! first start, and sign-in throttling.

use std::collections::{BTreeSet, HashMap};

use serde_json::json;

use crate::common::id;
use crate::common::{self, Backend, TestApp};
use crate::on_both_databases;

const PASSWORD: &str = "password 1234";

/// HQ → Sales → Sales East, Sales West; HQ → Service. Returns department ids by name.
async fn tree(app: &TestApp) -> HashMap<&'static str, String> {
    let mut ids = HashMap::new();
    let hq = app
        .post("/api/departments", &json!({"name": "总部 HQ"}))
        .await
        .expect(201)
        .body;
    ids.insert("hq", id(&hq));
    for (key, name, parent) in [
        ("sales", "销售部 Sales", "hq"),
        ("east", "华东 Sales East", "sales"),
        ("west", "华西 Sales West", "sales"),
        ("service", "服务部 Service", "hq"),
    ] {
        let d = app
            .post(
                "/api/departments",
                &json!({"name": name, "parent": ids[parent]}),
            )
            .await
            .expect(201)
            .body;
        ids.insert(key, id(&d));
    }
    ids
}

async fn user(app: &TestApp, email: &str, department: Option<&str>, roles: &[&str]) -> String {
    let u = app
        .post(
            "/api/users",
            &json!({"email": email, "password": PASSWORD, "department": department, "roles": roles}),
        )
        .await
        .expect(201)
        .body;
    id(&u)
}

async fn customer_entity(app: &TestApp) {
    app.create_entity(&json!({
        "name": "customer", "label": {"en": "Customer", "zh-CN": "客户"},
        "schema": {"properties": {
            "name": {"x-kind": "text"},
            "credit": {"x-kind": "money"},
            "secret": {"x-kind": "text"}
        }}
    }))
    .await;
}

const SCOPES: [&str; 5] = ["none", "own", "department", "department_tree", "all"];

on_both_databases! {
    async fn every_scope_reaches_exactly_its_records(app: TestApp) {
        let departments = tree(&app).await;
        customer_entity(&app).await;
        for scope in SCOPES {
            app.post(
                "/api/roles",
                &json!({"name": format!("scope_{scope}"), "permissions": {"entities": {"customer":
                    {"create": scope, "read": scope, "update": scope, "delete": scope}}}}),
            )
            .await
            .expect(201);
        }
        let people = ["hq", "sales", "east", "west", "service"];
        let mut users = HashMap::new();
        for who in people {
            let uid = user(&app, &format!("{who}@tessera.test"), Some(&departments[who]), &[]).await;
            users.insert(who, uid);
        }
        // One customer owned by each user (its department follows the owner), and one of nobody.
        let mut records: HashMap<String, &str> = HashMap::new();
        for who in people {
            let c = app.create_record("customer", &json!({"name": who, "owner": users[who]})).await;
            assert_eq!(c["department"], departments[who].as_str());
            records.insert(id(&c), who);
        }
        let orphan = app.create_record("customer", &json!({"name": "nobody", "owner": null})).await;
        records.insert(id(&orphan), "nobody");
        let under = |who: &str| -> Vec<&'static str> {
            match who {
                "hq" => vec!["hq", "sales", "east", "west", "service"],
                "sales" => vec!["sales", "east", "west"],
                other => vec![["east", "west", "service"].into_iter().find(|w| *w == other).unwrap()],
            }
        };
        for scope in SCOPES {
            for who in people {
                app.patch(&format!("/api/users/{}", users[who]), &json!({"roles": [format!("scope_{scope}")]}))
                    .await
                    .expect(200);
            }
            for who in people {
                let expected: BTreeSet<&str> = match scope {
                    "none" => BTreeSet::new(),
                    "own" => BTreeSet::from([who]),
                    "department" => BTreeSet::from([who]),
                    "department_tree" => under(who).into_iter().collect(),
                    _ => records.values().copied().collect(),
                };
                let me = app.login(&format!("{who}@tessera.test"), PASSWORD).await;
                // List.
                let listed = me.get("/api/records/customer?limit=500&count=true").await;
                if scope == "none" {
                    assert_eq!(listed.status.as_u16(), 403, "{scope}/{who}");
                } else {
                    let listed = listed.expect(200);
                    let seen: BTreeSet<&str> = listed.body["items"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|r| records[r["id"].as_str().unwrap()])
                        .collect();
                    assert_eq!(seen, expected, "list: scope {scope}, user {who}");
                    assert_eq!(listed.body["total"], expected.len(), "count: {scope}/{who}");
                }
                // Get, update, delete each record.
                for (rid, owner) in &records {
                    let reach = expected.contains(owner);
                    let path = format!("/api/records/customer/{rid}");
                    let got = me.get(&path).await.status.as_u16();
                    assert_eq!(got, if reach { 200 } else { 404 }, "get {owner}: {scope}/{who}");
                    let changed = me.patch(&path, &json!({"credit": 1})).await.status.as_u16();
                    assert_eq!(changed, if reach { 200 } else { 404 }, "update {owner}: {scope}/{who}");
                    let deleted = me.delete(&path).await.status.as_u16();
                    assert_eq!(deleted, if reach { 204 } else { 404 }, "delete {owner}: {scope}/{who}");
                    if reach {
                        app.post(&format!("{path}/restore"), &json!({})).await.expect(200);
                    }
                }
                // Create: within scope only.
                let mine = me.post("/api/records/customer", &json!({"name": "mine"})).await.status.as_u16();
                assert_eq!(mine, if scope == "none" { 403 } else { 201 }, "create: {scope}/{who}");
                if mine == 201 {
                    let created = me.get("/api/records/customer?filter=name%20%3D%20%22mine%22").await.expect(200);
                    let rid = created.body["items"][0]["id"].as_str().unwrap().to_owned();
                    app.delete(&format!("/api/records/customer/{rid}?permanent=true")).await.expect(204);
                }
            }
        }
    }

    async fn forbidden_paths_stay_closed(app: TestApp) {
        let departments = tree(&app).await;
        customer_entity(&app).await;
        app.create_entity(&json!({
            "name": "contract", "label": {"en": "Contract", "zh-CN": "合同"},
            "schema": {"properties": {"title": {"x-kind": "text"}}}
        }))
        .await;
        app.create_entity(&json!({
            "name": "deal", "label": {"en": "Deal", "zh-CN": "商机"},
            "schema": {"properties": {
                "title": {"x-kind": "text"},
                "customer": {"x-kind": "lookup", "x-target": "customer"},
                "contract": {"x-kind": "lookup", "x-target": "contract"}
            }}
        }))
        .await;
        app.post(
            "/api/roles",
            &json!({"name": "rep", "permissions": {
                "entities": {
                    "customer": {"create": "own", "read": "department", "update": "department", "delete": "own",
                                 "fields": {"secret": "hidden", "credit": "read"}},
                    "deal": {"create": "own", "read": "department", "update": "own", "delete": "own"}
                },
                "special": ["merge"]
            }}),
        )
        .await
        .expect(201);
        let east = user(&app, "east@tessera.test", Some(&departments["east"]), &["rep"]).await;
        let west = user(&app, "west@tessera.test", Some(&departments["west"]), &["rep"]).await;
        let mine = app.create_record("customer", &json!({"name": "东方", "secret": "密码", "credit": "100", "owner": east})).await;
        let theirs = app.create_record("customer", &json!({"name": "西方", "secret": "秘密", "owner": west})).await;
        let contract = app.create_record("contract", &json!({"title": "c"})).await;
        let deal = app.create_record("deal", &json!({"title": "d", "customer": mine["id"], "contract": contract["id"], "owner": east})).await;
        let rep = app.login("east@tessera.test", PASSWORD).await;

        // Another department's record, by id: not there.
        rep.get(&format!("/api/records/customer/{}", id(&theirs))).await.expect(404);
        rep.patch(&format!("/api/records/customer/{}", id(&theirs)), &json!({"name": "x"})).await.expect(404);
        rep.delete(&format!("/api/records/customer/{}", id(&theirs))).await.expect(404);
        rep.get(&format!("/api/records/customer/{}/history", id(&theirs))).await.expect(404);
        rep.post(&format!("/api/records/customer/{}/copy", id(&theirs)), &json!({})).await.expect(404);
        // Hidden fields never appear, anywhere.
        let read = rep.get(&format!("/api/records/customer/{}", id(&mine))).await.expect(200);
        assert!(read.body.get("secret").is_none(), "{}", read.body);
        assert_eq!(read.body["credit"], "100.00");
        let page = rep.get("/api/records/customer").await.expect(200);
        assert!(page.body["items"].as_array().unwrap().iter().all(|r| r.get("secret").is_none()));
        let history = rep.get(&format!("/api/records/customer/{}/history", id(&mine))).await.expect(200);
        assert!(history.body["items"][0]["changes"].get("secret").is_none(), "{}", history.body);
        assert!(history.body["items"][0]["changes"].get("name").is_some());
        let expanded = rep.get(&format!("/api/records/deal/{}?expand=customer", id(&deal))).await.expect(200);
        assert!(expanded.body["expand"]["customer"].get("secret").is_none());
        assert_eq!(expanded.body["expand"]["customer"]["name"], "东方");
        // … and cannot be filtered, sorted, faceted, projected or searched on.
        for bad in ["filter=secret%20%3D%20%22x%22", "filter=customer.secret%20%3D%20%22x%22", "sort=secret", "fields=secret", "facet=secret"] {
            let entity = if bad.contains("customer.") { "deal" } else { "customer" };
            rep.get(&format!("/api/records/{entity}?{bad}")).await.expect(400);
        }
        let searched = rep.get(&format!("/api/records/customer?q={}", "%E5%AF%86%E7%A0%81")).await.expect(200);
        assert_eq!(searched.body["items"], json!([]), "a search must not look into hidden fields");
        // Expanding into an entity without read permission.
        rep.get(&format!("/api/records/deal/{}?expand=contract", id(&deal))).await.expect(403);
        rep.get("/api/records/deal?expand=contract").await.expect(403);
        rep.get("/api/records/contract").await.expect(403);
        // Mass assignment: owner, department, version, read-only and hidden fields, system fields.
        let path = format!("/api/records/customer/{}", id(&mine));
        let moved = rep.patch(&path, &json!({"owner": west})).await.expect(422);
        assert_eq!(moved.error_fields(), ["owner"]);
        let moved = rep.patch(&path, &json!({"department": departments["west"]})).await.expect(422);
        assert_eq!(moved.error_fields(), ["department"]);
        rep.patch(&path, &json!({"name": "x", "version": 99})).await.expect(412);
        let refused = rep.patch(&path, &json!({"credit": "1", "secret": "x", "id": "x", "created_by": "x"})).await.expect(422);
        let mut fields = refused.error_fields();
        fields.sort();
        assert_eq!(fields, ["created_by", "credit", "id", "secret"]);
        let created = rep.post("/api/records/customer", &json!({"name": "n", "owner": west})).await.expect(422);
        assert_eq!(created.error_fields(), ["owner"]);
        // Within scope it all works: a new record is the rep's, in the rep's department.
        let created = rep.post("/api/records/customer", &json!({"name": "新客户"})).await.expect(201);
        assert_eq!(created.body["owner"], east.as_str());
        assert_eq!(created.body["department"], departments["east"].as_str());
        assert_eq!(created.body["created_by"], east.as_str());
        // A lookup cannot point at a record out of reach, even by a known id.
        let linked = rep.post("/api/records/deal", &json!({"title": "d2", "customer": theirs["id"]})).await.expect(422);
        assert_eq!(linked.error_fields(), ["customer"]);
        // A taken unique value does not reveal the record holding it when it is out of reach.
        app.patch("/api/entities/customer/fields/name", &json!({"x-unique": true})).await.expect(200);
        let taken = rep.post("/api/records/customer", &json!({"name": "西方"})).await.expect(409);
        assert!(!taken.body.to_string().contains(&id(&theirs)), "{}", taken.body);
        let taken = rep.post("/api/records/customer", &json!({"name": "东方"})).await.expect(409);
        assert_eq!(taken.body["errors"][0]["examples"][0]["id"], mine["id"]);
        // @me is the signed-in user.
        let own = rep.get("/api/records/customer?filter=owner%20%3D%20%40me").await.expect(200);
        let names: Vec<&str> = own.body["items"].as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap()).collect();
        assert!(names.contains(&"东方") && !names.contains(&"西方"), "{names:?}");
        // Changing one's own password takes the current one.
        rep.patch(&format!("/api/users/{east}"), &json!({"password": "new password 1"})).await.expect(422);
        rep.patch(&format!("/api/users/{east}"), &json!({"password": "new password 1", "current_password": "wrong"})).await.expect(422);
        // Merging a record outside scope.
        rep.post(
            "/api/records/customer/merge",
            &json!({"target": mine["id"], "sources": [theirs["id"]]}),
        )
        .await
        .expect(404);
        // Bulk needs its special permission; schema changes need theirs.
        rep.post("/api/records/customer/bulk", &json!({"filter": "name != null", "action": "delete"})).await.expect(403);
        rep.post("/api/entities", &json!({"name": "x", "label": {"en": "x", "zh-CN": "x"}, "schema": {"properties": {}}})).await.expect(403);
        rep.post("/api/entities/customer/fields", &json!({"name": "y", "x-kind": "text"})).await.expect(403);
        rep.get("/api/users").await.expect(403);
        rep.post("/api/roles", &json!({"name": "mine", "permissions": {"admin": true}})).await.expect(403);
        rep.patch(&format!("/api/users/{east}"), &json!({"roles": ["administrator"]})).await.expect(403);
        // A user may read and change their own settings.
        rep.get(&format!("/api/users/{east}")).await.expect(200);
        rep.patch(&format!("/api/users/{east}"), &json!({"display_name": "小东", "language": "en"})).await.expect(200);
        let me = rep.get("/api/me").await.expect(200);
        assert_eq!(me.body["user"]["display_name"], "小东");
        assert_eq!(me.body["special"], json!(["merge"]));
        rep.patch(&format!("/api/users/{east}"), &json!({"password": "new password 1", "current_password": PASSWORD})).await.expect(200);
        // A changed password ends the sessions.
        rep.get("/api/me").await.expect(401);
        app.login("east@tessera.test", "new password 1").await.get("/api/me").await.expect(200);
    }

    async fn tokens_and_deactivation_hold_on_every_instance(app: TestApp) {
        customer_entity(&app).await;
        user(&app, "ana@tessera.test", None, &["read_only"]).await;
        let ana = app.login("ana@tessera.test", PASSWORD).await;
        let token = ana.post("/api/tokens", &json!({"name": "integration"})).await.expect(201);
        let secret = token.body["token"].as_str().unwrap().to_owned();
        assert!(secret.starts_with("tsr_"));
        let listed = ana.get("/api/tokens").await.expect(200);
        assert!(listed.body["items"][0].get("token").is_none(), "a token is shown once");
        let (second, server) = app.second_instance().await;
        let by_token = second.with_token(&secret);
        by_token.get("/api/records/customer").await.expect(200);
        let ana_second = second.login("ana@tessera.test", PASSWORD).await;
        ana_second.get("/api/me").await.expect(200);
        // Revoked on the first instance: refused at once on the second.
        ana.delete(&format!("/api/tokens/{}", token.body["id"].as_str().unwrap())).await.expect(204);
        by_token.get("/api/records/customer").await.expect(401);
        // Deactivated on the second instance: the sessions on both stop working.
        let uid = ana_second.get("/api/me").await.expect(200).body["user"]["id"].as_str().unwrap().to_owned();
        second.patch(&format!("/api/users/{uid}"), &json!({"active": false})).await.expect(200);
        ana.get("/api/me").await.expect(401);
        ana_second.get("/api/me").await.expect(401);
        app.anonymous().post("/api/auth/login", &json!({"email": "ana@tessera.test", "password": PASSWORD})).await.expect(401);
        server.stop().await.unwrap();
        // Logging out ends a session; an expired token is refused.
        let admin2 = app.login(crate::common::ADMIN_EMAIL, crate::common::ADMIN_PASSWORD).await;
        admin2.post("/api/auth/logout", &json!({})).await.expect(204);
        admin2.get("/api/me").await.expect(401);
        app.post("/api/tokens", &json!({"name": "old", "expires_at": "2020-01-01T00:00:00Z"})).await.expect(422);
    }

    async fn changed_roles_and_departments_hold_on_the_next_request(app: TestApp) {
        // Every request below is a second one for its session: the sign-in cache is warm.
        let departments = tree(&app).await;
        customer_entity(&app).await;
        app.post("/api/roles", &json!({"name": "reader", "permissions": {"entities": {"customer":
            {"read": "department"}}}})).await.expect(201);
        let uid = user(&app, "cy@tessera.test", Some(&departments["east"]), &["reader"]).await;
        // Owned by a colleague: cy reads it through the department alone.
        let colleague = user(&app, "dora@tessera.test", Some(&departments["east"]), &[]).await;
        let east = app.create_record("customer", &json!({"name": "east one", "owner": colleague})).await;
        let cy = app.login("cy@tessera.test", PASSWORD).await;
        let second = || async { cy.get("/api/records/customer").await };
        assert_eq!(second().await.expect(200).body["items"].as_array().unwrap().len(), 1);
        assert_eq!(second().await.expect(200).body["items"][0]["id"], east["id"]);
        // The role loses the entity: refused on the next request.
        app.put("/api/roles/reader", &json!({"permissions": {"entities": {}}})).await.expect(200);
        second().await.expect(403);
        app.put("/api/roles/reader", &json!({"permissions": {"entities": {"customer":
            {"read": "department"}}}})).await.expect(200);
        assert_eq!(second().await.expect(200).body["items"].as_array().unwrap().len(), 1);
        // Moved to another department: the scope follows at once.
        app.patch(&format!("/api/users/{uid}"), &json!({"department": departments["west"]})).await.expect(200);
        assert_eq!(second().await.expect(200).body["items"].as_array().unwrap().len(), 0);
        // The role taken away from the user.
        app.patch(&format!("/api/users/{uid}"), &json!({"roles": []})).await.expect(200);
        second().await.expect(403);
    }

    async fn sign_in_is_throttled_and_says_nothing(app: TestApp) {
        user(&app, "bo@tessera.test", None, &["read_only"]).await;
        let anonymous = app.anonymous();
        let wrong = anonymous.post("/api/auth/login", &json!({"email": "bo@tessera.test", "password": "nope nope"})).await.expect(401);
        let unknown = anonymous.post("/api/auth/login", &json!({"email": "nobody@tessera.test", "password": "nope nope"})).await.expect(401);
        assert_eq!(wrong.body["detail"], unknown.body["detail"]);
        for _ in 0..4 {
            anonymous.post("/api/auth/login", &json!({"email": "bo@tessera.test", "password": "nope nope"})).await.expect(401);
        }
        // The account is locked for the window, even with the right password.
        let locked = anonymous.post("/api/auth/login", &json!({"email": "bo@tessera.test", "password": PASSWORD})).await.expect(429);
        assert!(locked.body["detail"].as_str().unwrap().contains("try again"));
        // Everything but the health check, sign-in and setup needs a session.
        for path in ["/api/entities", "/api/records/x", "/api/me", "/api/tags", "/api/users", "/api/meta-schema"] {
            let r = anonymous.get(path).await.expect(401);
            assert_eq!(r.header("www-authenticate"), Some("Bearer realm=\"tessera\""));
        }
        anonymous.get("/api/health").await.expect(200);
        app.with_token("tss_forged").get("/api/me").await.expect(401);
    }

    async fn departments_form_a_tree(app: TestApp) {
        let d = tree(&app).await;
        // No cycles.
        app.patch(&format!("/api/departments/{}", d["sales"]), &json!({"parent": d["east"]})).await.expect(422);
        app.patch(&format!("/api/departments/{}", d["sales"]), &json!({"parent": d["sales"]})).await.expect(422);
        // Moving a subtree moves its paths.
        app.patch(&format!("/api/departments/{}", d["sales"]), &json!({"parent": d["service"], "name": "销售 Sales"})).await.expect(200);
        let all = app.get("/api/departments").await.expect(200);
        let east = all.body["items"].as_array().unwrap().iter().find(|x| x["id"] == d["east"].as_str()).unwrap().clone();
        assert_eq!(east["path"], format!("/{}/{}/{}/{}/", d["hq"], d["service"], d["sales"], d["east"]));
        // Delete only when empty.
        user(&app, "w@tessera.test", Some(&d["west"]), &[]).await;
        app.delete(&format!("/api/departments/{}", d["sales"])).await.expect(409);
        app.delete(&format!("/api/departments/{}", d["west"])).await.expect(409);
        app.delete(&format!("/api/departments/{}", d["east"])).await.expect(204);
        // Built-in roles exist and the administrator role is fixed.
        let roles = app.get("/api/roles").await.expect(200);
        let names: Vec<&str> = roles.body["items"].as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap()).collect();
        for builtin in ["administrator", "sales_manager", "sales_rep", "service_agent", "read_only"] {
            assert!(names.contains(&builtin), "{builtin}");
        }
        app.put("/api/roles/administrator", &json!({"permissions": {}})).await.expect(403);
        app.delete("/api/roles/read_only").await.expect(403);
        app.post("/api/roles", &json!({"name": "bad", "permissions": {"entities": {"x": {"read": "galaxy"}}}})).await.expect(422);
        // Typed bodies: a property of the wrong type or one no department, role or user has is
        // refused, naming it; a role read back can be sent back.
        let wrong = app.patch(&format!("/api/departments/{}", d["west"]), &json!({"name": 7})).await.expect(422);
        assert_eq!(wrong.error_fields(), ["name"]);
        let unknown = app.post("/api/departments", &json!({"name": "X", "colour": "red"})).await.expect(422);
        assert_eq!(unknown.error_fields(), ["colour"]);
        let role = app.get("/api/roles/sales_rep").await.expect(200);
        app.put("/api/roles/sales_rep", &role.body).await.expect(200);
        let w = user(&app, "typed@tessera.test", Some(&d["west"]), &[]).await;
        let bad_roles = app.patch(&format!("/api/users/{w}"), &json!({"roles": ["sales_rep", 3]})).await.expect(422);
        assert_eq!(bad_roles.error_fields(), ["roles[1]"]);
        // Absent keeps the department; null clears it.
        let kept = app.patch(&format!("/api/users/{w}"), &json!({"display_name": "Typed"})).await.expect(200);
        assert_eq!(kept.body["department"], d["west"].as_str());
        let cleared = app.patch(&format!("/api/users/{w}"), &json!({"department": null})).await.expect(200);
        assert!(cleared.body["department"].is_null(), "{}", cleared.body);
        assert_eq!(cleared.body["display_name"], "Typed");
    }
}

/// With no user and no administrator in the environment, nothing is reachable until the setup
/// link is used; then it is used up.
mod first_start {
    use super::*;

    async fn scenario(backend: Backend) {
        let Some((app, server, token, cleanup)) = common::bare(backend).await else {
            eprintln!("skipped: no PostgreSQL configured");
            return;
        };
        app.get("/api/entities").await.expect(401);
        app.post(
            "/api/auth/login",
            &json!({"email": "a@b.cn", "password": "whatever1"}),
        )
        .await
        .expect(401);
        let page = app
            .client
            .get(app.url(&format!("/setup?token={token}")))
            .send()
            .await
            .unwrap();
        assert_eq!(page.status().as_u16(), 200);
        assert!(page.text().await.unwrap().contains(&token));
        app.post(
            "/api/setup",
            &json!({"token": "setup_wrong", "email": "root@tessera.test", "password": PASSWORD}),
        )
        .await
        .expect(401);
        let done = app
            .post("/api/setup", &json!({"token": token, "email": "root@tessera.test", "password": PASSWORD, "display_name": "根"}))
            .await
            .expect(200);
        let admin = app.with_token(done.body["token"].as_str().unwrap());
        let me = admin.get("/api/me").await.expect(200);
        assert_eq!(me.body["admin"], true);
        assert_eq!(me.body["user"]["roles"], json!(["administrator"]));
        app.post(
            "/api/setup",
            &json!({"token": token, "email": "x@tessera.test", "password": PASSWORD}),
        )
        .await
        .expect(409);
        admin.get("/api/entities").await.expect(200);
        common::finish(server, cleanup).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        scenario(Backend::Sqlite).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        scenario(Backend::Postgres).await;
    }
}
