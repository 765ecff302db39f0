//! The OpenAPI document at /api/v1/openapi.json against the real router.

mod support;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use serde_json::{Value, json};
use store::*;
use support::{App, Backend, Resp};

async fn call(
    app: &App,
    tok: Option<&str>,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> Resp {
    let mut r = Request::builder().method(method).uri(path);
    if let Some(t) = tok {
        r = r.header("authorization", format!("Bearer {t}"));
    }
    let req = match body {
        Some(b) => r
            .header("content-type", "application/json")
            .body(Body::from(b.to_string())),
        None => r.body(Body::empty()),
    };
    app.send(req.unwrap()).await
}

/// Every (path, method) in the document is served by a real handler (an unauthenticated call
/// gets the API's 401, not the router's 404/405), and the document lists the routes we expect.
async fn openapi_matches_the_router(b: Backend) {
    let app = App::new(b).await;
    let r = call(&app, None, Method::GET, "/api/v1/openapi.json", None).await;
    r.assert(StatusCode::OK);
    let doc = r.json();
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    let paths = doc["paths"].as_object().unwrap();
    let mut seen = Vec::new();
    for (path, item) in paths {
        for (method, _) in item.as_object().unwrap() {
            let m: Method = method.to_uppercase().parse().unwrap();
            let url = path
                .replace("{tenant}", &TenantId::new().to_string())
                .replace("{ext}", &ExtensionId::new().to_string())
                .replace("{number}", &NumberId::new().to_string())
                .replace("{user}", &UserId::new().to_string())
                .replace("{device}", &CredentialId::new().to_string())
                .replace("{trunk}", &TrunkId::new().to_string())
                .replace("{group}", &RingGroupId::new().to_string());
            assert!(!url.contains('{'), "unfilled parameter in {path}");
            let body = matches!(m, Method::POST | Method::PUT | Method::PATCH).then(|| json!({}));
            let r = call(&app, None, m.clone(), &url, body).await;
            assert_eq!(
                r.status,
                StatusCode::UNAUTHORIZED,
                "{m} {path} is not routed to a handler: {}",
                r.body
            );
            assert_eq!(r.json()["error"]["code"], "unauthenticated");
            seen.push(format!("{} {path}", m));
        }
    }
    seen.sort();
    let expected = [
        "DELETE /api/v1/tenants/{tenant}/extensions/{ext}",
        "DELETE /api/v1/tenants/{tenant}/extensions/{ext}/devices/{device}",
        "DELETE /api/v1/tenants/{tenant}/ring-groups/{group}",
        "DELETE /api/v1/trunks/{trunk}",
        "GET /api/v1/calls",
        "GET /api/v1/numbers",
        "GET /api/v1/tenants",
        "GET /api/v1/tenants/{tenant}",
        "GET /api/v1/tenants/{tenant}/calls",
        "GET /api/v1/tenants/{tenant}/extensions",
        "GET /api/v1/tenants/{tenant}/extensions/{ext}",
        "GET /api/v1/tenants/{tenant}/extensions/{ext}/devices",
        "GET /api/v1/tenants/{tenant}/numbers",
        "GET /api/v1/tenants/{tenant}/registrations",
        "GET /api/v1/tenants/{tenant}/ring-groups",
        "GET /api/v1/tenants/{tenant}/ring-groups/{group}",
        "GET /api/v1/tenants/{tenant}/users",
        "GET /api/v1/token",
        "GET /api/v1/trunks",
        "GET /api/v1/trunks/{trunk}",
        "PATCH /api/v1/tenants/{tenant}",
        "PATCH /api/v1/tenants/{tenant}/extensions/{ext}",
        "PATCH /api/v1/tenants/{tenant}/ring-groups/{group}",
        "PATCH /api/v1/tenants/{tenant}/users/{user}",
        "PATCH /api/v1/trunks/{trunk}",
        "POST /api/v1/numbers",
        "POST /api/v1/numbers/{number}/assign",
        "POST /api/v1/tenants",
        "POST /api/v1/tenants/{tenant}/extensions",
        "POST /api/v1/tenants/{tenant}/extensions/{ext}/devices",
        "POST /api/v1/tenants/{tenant}/extensions/{ext}/password",
        "POST /api/v1/tenants/{tenant}/ring-groups",
        "POST /api/v1/tenants/{tenant}/users",
        "POST /api/v1/tenants/{tenant}/users/{user}/password",
        "POST /api/v1/trunks",
        "PUT /api/v1/tenants/{tenant}/numbers/{number}/route",
    ];
    assert_eq!(seen, expected);
}

both_backends!(openapi_matches_the_router);
