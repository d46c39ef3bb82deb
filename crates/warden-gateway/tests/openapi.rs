//! The generated OpenAPI document: a well-formed OpenAPI 3.1 document, the copy in docs/ is
//! current, and real answers of the API fit the schemas the document gives for them (the
//! schemas of hand-built JSON bodies are written apart from the `json!` that builds them, so
//! this is where the two are held together).
//!
//! The route coverage test (every route of the router is in the document) is in `tests/api.rs`.

// Test code: a panic is a failed assertion.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::collections::BTreeSet;
use std::path::PathBuf;

use axum::body::Body;
use axum::http::Request;
use serde_json::{json, Value};
use warden_gateway::logins::Role;

use common::*;

/// The copy for readers, next to the architecture notes.
fn docs_copy() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/openapi.json")
}

fn generated() -> String {
    warden_gateway::openapi().to_pretty_json().unwrap() + "\n"
}

/// docs/openapi.json is the generated document. Regenerate it with
/// `WARDEN_UPDATE_OPENAPI=1 cargo test -p warden-gateway --test openapi`.
#[test]
fn the_docs_copy_is_the_generated_document() {
    let generated = generated();
    if std::env::var_os("WARDEN_UPDATE_OPENAPI").is_some() {
        std::fs::write(docs_copy(), &generated).unwrap();
        return;
    }
    let on_disk = std::fs::read_to_string(docs_copy()).unwrap_or_default();
    assert!(
        on_disk == generated,
        "docs/openapi.json differs from the document the handlers generate; regenerate it with\n  \
         WARDEN_UPDATE_OPENAPI=1 cargo test -p warden-gateway --test openapi"
    );
}

const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// Every `$ref` in `v`.
fn refs(v: &Value, out: &mut BTreeSet<String>) {
    match v {
        Value::Object(o) => {
            if let Some(Value::String(r)) = o.get("$ref") {
                out.insert(r.clone());
            }
            o.values().for_each(|x| refs(x, out));
        }
        Value::Array(a) => a.iter().for_each(|x| refs(x, out)),
        _ => {}
    }
}

#[test]
fn the_document_is_well_formed_openapi_3_1() {
    // The fields OpenAPI 3.1 requires, and the references between them. (Not a round trip
    // through `utoipa::openapi::OpenApi`: utoipa 5 writes "any value" schemas as `{}` but
    // cannot read them back.)
    let doc: Value = serde_json::from_str(&generated()).unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    assert!(doc["info"]["title"].is_string() && doc["info"]["version"].is_string());
    for (name, scheme) in doc["components"]["securitySchemes"].as_object().unwrap() {
        match scheme["type"].as_str().unwrap() {
            "http" => assert!(scheme["scheme"].is_string(), "{name}"),
            "apiKey" => {
                assert!(scheme["name"].is_string(), "{name}");
                assert!(["query", "header", "cookie"].contains(&scheme["in"].as_str().unwrap()));
            }
            other => panic!("{name}: {other}"),
        }
    }

    let mut all = BTreeSet::new();
    refs(&doc, &mut all);
    for r in &all {
        let name = r.strip_prefix("#/components/schemas/").unwrap_or(r);
        assert!(
            doc["components"]["schemas"].get(name).is_some(),
            "{r} does not resolve"
        );
    }
    let schemes = &doc["components"]["securitySchemes"];
    let mut ids = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        assert!(path.starts_with('/'), "{path}");
        let in_path: BTreeSet<&str> = path
            .split('{')
            .skip(1)
            .filter_map(|s| s.split('}').next())
            .collect();
        for (method, op) in item.as_object().unwrap() {
            assert!(METHODS.contains(&method.as_str()), "{path}: {method}");
            let id = op["operationId"].as_str().unwrap();
            assert!(ids.insert(id.to_string()), "operationId {id} twice");
            assert!(op["summary"].is_string(), "{method} {path}: no summary");
            let params = op["parameters"].as_array().into_iter().flatten();
            for p in params.clone() {
                assert!(
                    p["name"].is_string() && p["schema"].is_object(),
                    "{path}: {p}"
                );
                let place = p["in"].as_str().unwrap();
                assert!(
                    ["query", "header", "path", "cookie"].contains(&place),
                    "{p}"
                );
                assert!(place != "path" || p["required"] == true, "{path}: {p}");
            }
            let declared: BTreeSet<&str> = params
                .filter(|p| p["in"] == "path")
                .map(|p| p["name"].as_str().unwrap())
                .collect();
            assert_eq!(declared, in_path, "{method} {path}: path parameters");
            let responses = op["responses"].as_object().unwrap();
            assert!(!responses.is_empty(), "{method} {path}: no responses");
            for (status, r) in responses {
                assert!(status.parse::<u16>().is_ok(), "{method} {path}: {status}");
                assert!(r["description"].is_string(), "{method} {path} {status}");
            }
            let security = op.get("security").unwrap_or(&doc["security"]);
            for requirement in security.as_array().unwrap() {
                for name in requirement.as_object().unwrap().keys() {
                    assert!(schemes.get(name).is_some(), "{method} {path}: {name}");
                }
            }
        }
    }
}

// ---- answers against their schemas -------------------------------------------------------
//
// A small JSON Schema checker for the keywords the generated document uses (`$ref`, `allOf`,
// `oneOf`, `type`, `enum`, `required`, `properties`, `items`), kept here rather than a
// validator crate: what matters most is stricter than JSON Schema — an answer field the
// schema does not declare is an error, so a field added to a handler's `json!` without its
// schema fails.

fn schema_of<'a>(doc: &'a Value, s: &'a Value) -> &'a Value {
    match s["$ref"].as_str() {
        Some(r) => schema_of(
            doc,
            &doc["components"]["schemas"][r.rsplit('/').next().unwrap()],
        ),
        None => s,
    }
}

/// The properties an object of schema `s` may have (`None`: any).
fn declared(doc: &Value, s: &Value) -> Option<BTreeSet<String>> {
    let s = schema_of(doc, s);
    let mut out: Option<BTreeSet<String>> = s["properties"]
        .as_object()
        .map(|p| p.keys().cloned().collect());
    for part in s["allOf"].as_array().into_iter().flatten() {
        let more = declared(doc, part)?;
        out.get_or_insert_with(BTreeSet::new).extend(more);
    }
    out
}

fn check(doc: &Value, s: &Value, v: &Value, at: &str, strict: bool, errs: &mut Vec<String>) {
    let s = schema_of(doc, s);
    for part in s["allOf"].as_array().into_iter().flatten() {
        check(doc, part, v, at, false, errs);
    }
    if let Some(one) = s["oneOf"].as_array() {
        let fits = one
            .iter()
            .filter(|b| {
                let mut e = Vec::new();
                check(doc, b, v, at, true, &mut e);
                e.is_empty()
            })
            .count();
        if fits != 1 {
            errs.push(format!("{at}: fits {fits} of the oneOf branches: {v}"));
        }
    }
    let types: Vec<&str> = match &s["type"] {
        Value::String(t) => vec![t.as_str()],
        Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    };
    let is = |t: &str| match t {
        "null" => v.is_null(),
        "string" => v.is_string(),
        "integer" => v.is_i64() || v.is_u64(),
        "number" => v.is_number(),
        "boolean" => v.is_boolean(),
        "object" => v.is_object(),
        "array" => v.is_array(),
        _ => false,
    };
    if !types.is_empty() && !types.iter().any(|t| is(t)) {
        errs.push(format!("{at}: not {types:?}: {v}"));
    }
    if let Some(e) = s["enum"].as_array() {
        if !e.contains(v) {
            errs.push(format!("{at}: {v} not in {e:?}"));
        }
    }
    if let Some(obj) = v.as_object() {
        for r in s["required"].as_array().into_iter().flatten() {
            if !obj.contains_key(r.as_str().unwrap()) {
                errs.push(format!("{at}: missing required `{}`", r.as_str().unwrap()));
            }
        }
        if let Some(props) = s["properties"].as_object() {
            for (k, sub) in props {
                if let Some(x) = obj.get(k) {
                    check(doc, sub, x, &format!("{at}.{k}"), true, errs);
                }
            }
        }
        if let (true, Some(known)) = (strict, declared(doc, s)) {
            for k in obj.keys().filter(|k| !known.contains(*k)) {
                errs.push(format!("{at}: `{k}` is not in the schema"));
            }
        }
    }
    if let (Some(items), Some(a)) = (s.get("items"), v.as_array()) {
        for (i, x) in a.iter().enumerate() {
            check(doc, items, x, &format!("{at}[{i}]"), true, errs);
        }
    }
}

/// `r` is an answer the document describes for `method path`, and its body fits the schema.
fn fits(doc: &Value, method: &str, path: &str, r: &Resp) {
    let op = &doc["paths"][path][method];
    let status = r.status.as_u16().to_string();
    let described = &op["responses"][&status];
    assert!(
        described.is_object(),
        "{method} {path}: {status} is not described: {}",
        r.raw
    );
    let Some(schema) = described["content"]["application/json"].get("schema") else {
        return;
    };
    let mut errs = Vec::new();
    check(doc, schema, &r.body, "body", true, &mut errs);
    assert!(
        errs.is_empty(),
        "{method} {path} {status}: {errs:#?}\n{}",
        r.raw
    );
}

fn get(uri: &str, auth: Option<&str>, cookie: Option<&str>) -> Request<Body> {
    let mut req = Request::get(uri);
    if let Some(t) = auth {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    if let Some(c) = cookie {
        req = req.header("cookie", c);
    }
    req.body(Body::empty()).unwrap()
}

fn post(uri: &str, auth: Option<&str>, person: Option<&Person>, body: Value) -> Request<Body> {
    let mut req = Request::post(uri).header("content-type", "application/json");
    if let Some(t) = auth {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    if let Some(p) = person {
        req = req
            .header("cookie", &p.cookie)
            .header("x-csrf-token", &p.csrf);
    }
    req.body(Body::from(body.to_string())).unwrap()
}

#[tokio::test]
async fn answers_of_the_decision_api_fit_their_schemas() {
    let e = setup("").await;
    let doc = serde_json::to_value(warden_gateway::openapi()).unwrap();
    let triage = e.agent_token("support-triage").await;
    let crm = e.agent_token("crm-writer").await;
    let ok = e
        .propose(
            &triage,
            json!({"tool": "get_ticket", "arguments": {"ticket_id": "T-1001"}}),
        )
        .await;
    fits(&doc, "post", "/v1/decisions", &ok);
    let id = ok.body["id"].as_str().unwrap();
    let denied = e
        .propose(&triage, json!({"tool": "issue_refund", "arguments": {}}))
        .await;
    assert_eq!(denied.body["decision"], "deny", "{}", denied.raw);
    fits(&doc, "post", "/v1/decisions", &denied);
    let refund = json!({"account_id": "ACC-0001", "amount": 49.5, "reason": "charged twice"});
    let held = e
        .propose(&crm, json!({"tool": "issue_refund", "arguments": refund, "session": "s-1", "on_behalf_of": "olivia"}))
        .await;
    assert_eq!(held.body["decision"], "approval_required", "{}", held.raw);
    fits(&doc, "post", "/v1/decisions", &held);
    let held_id = held.body["approval"]["id"].as_str().unwrap();
    for bad in [
        json!({"tool": 1}),
        json!({"tool": "get_ticket", "argz": {}}),
    ] {
        fits(
            &doc,
            "post",
            "/v1/decisions",
            &e.propose(&triage, bad).await,
        );
    }
    fits(
        &doc,
        "post",
        "/v1/decisions",
        &e.propose("nope", json!({})).await,
    );
    fits(
        &doc,
        "get",
        "/v1/decisions/{id}",
        &e.poll(&triage, id).await,
    );
    fits(
        &doc,
        "get",
        "/v1/decisions/{id}",
        &e.poll(&crm, held_id).await,
    );
    fits(
        &doc,
        "get",
        "/v1/decisions/{id}",
        &e.poll(&triage, "nope").await,
    );
    let outcome = format!("/v1/decisions/{id}/outcome");
    let report = json!({"status": "success", "output": {"subject": "hello"}, "duration_ms": 12});
    for _ in 0..2 {
        let r = send(
            &e.state,
            post(&outcome, Some(&triage), None, report.clone()),
        )
        .await;
        fits(&doc, "post", "/v1/decisions/{id}/outcome", &r);
    }

    // The people's side of the same held call.
    let ann = e.person("ann", Role::Approver).await;
    let list = send(
        &e.state,
        get("/v1/approvals?state=pending", None, Some(&ann.cookie)),
    )
    .await;
    fits(&doc, "get", "/v1/approvals", &list);
    let uri = format!("/v1/approvals/{held_id}");
    let detail = send(&e.state, get(&uri, None, Some(&ann.cookie))).await;
    fits(&doc, "get", "/v1/approvals/{id}", &detail);
    let vote = e.vote(&ann, held_id, "approve", json!({}), true).await;
    fits(&doc, "post", "/v1/approvals/{id}/approve", &vote);
    let again = e
        .vote(&ann, held_id, "deny", json!({"reason": "no"}), true)
        .await;
    fits(&doc, "post", "/v1/approvals/{id}/deny", &again);
    let detail = send(&e.state, get(&uri, None, Some(&ann.cookie))).await;
    fits(&doc, "get", "/v1/approvals/{id}", &detail);
    fits(
        &doc,
        "get",
        "/v1/decisions/{id}",
        &e.poll(&crm, held_id).await,
    );
    let key = send(&e.state, get("/v1/approvals/key", None, None)).await;
    fits(&doc, "get", "/v1/approvals/key", &key);
}

#[tokio::test]
async fn answers_of_the_other_routes_fit_their_schemas() {
    let e = setup("").await;
    let doc = serde_json::to_value(warden_gateway::openapi()).unwrap();
    let admin = e.person("ada", Role::Admin).await;
    let session = send(&e.state, get("/v1/session", None, Some(&admin.cookie))).await;
    fits(&doc, "get", "/v1/session", &session);
    let body = json!({"agent": "support-triage", "ttl_secs": 600, "tools": ["get_ticket"]});
    let issued = send(&e.state, post("/v1/tokens", None, Some(&admin), body)).await;
    fits(&doc, "post", "/v1/tokens", &issued);
    let list = send(&e.state, get("/v1/tokens", None, Some(&admin.cookie))).await;
    fits(&doc, "get", "/v1/tokens", &list);
    let wrong = json!({"user": "ada", "password": "wrong", "totp": "000000"});
    fits(
        &doc,
        "post",
        "/v1/login",
        &send(&e.state, post("/v1/login", None, None, wrong)).await,
    );
    let step_up = json!({"totp": code_at(&admin.seed, e.now() + 30)});
    let r = send(
        &e.state,
        post("/v1/session/step-up", None, Some(&admin), step_up),
    )
    .await;
    fits(&doc, "post", "/v1/session/step-up", &r);
    let r = send(&e.state, post("/v1/logout", None, Some(&admin), json!({}))).await;
    fits(&doc, "post", "/v1/logout", &r);
    fits(
        &doc,
        "get",
        "/v1/session",
        &send(&e.state, get("/v1/session", None, None)).await,
    );

    let form = Request::post("/oauth/token")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Body::from(
            "grant_type=client_credentials&client_id=x&client_secret=y",
        ))
        .unwrap();
    fits(&doc, "post", "/oauth/token", &send(&e.state, form).await);

    let token = e.agent_token("support-triage").await;
    let hello = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {}});
    let init = e.mcp(&token, None, hello).await;
    fits(&doc, "post", "/mcp", &init);
    let sid = init.headers["mcp-session-id"].to_str().unwrap().to_string();
    let list = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"});
    fits(
        &doc,
        "post",
        "/mcp",
        &e.mcp(&token, Some(&sid), list.clone()).await,
    );
    fits(&doc, "post", "/mcp", &e.mcp(&token, None, list).await);

    for path in ["/healthz", "/readyz", "/openapi.json"] {
        fits(
            &doc,
            "get",
            path,
            &send(&e.state, get(path, None, None)).await,
        );
    }
}
