//! The OpenAPI document and the documentation page: every route the router serves is in the
//! document, method by method, and every path of the document is served; the document is
//! OpenAPI 3.1 with its server and security schemes; `/docs` loads only same-origin files
//! under the default Content-Security-Policy and shows the operations in Chromium.
//!
//! That the documented schemas match the real responses is checked by the schemathesis run
//! of `scripts/test`.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::browser_support::{Browser, skipped};
use crate::helpers::spawn_app;

/// Routes that are not part of the API: pages for people (HTML forms with CSRF tokens, the
/// steps of a browser login), static files, and the documentation itself.
const NOT_DOCUMENTED: &[&str] = &[
    // The pages of a browser login and of an authorization request in progress.
    "/login",
    "/login/mfa",
    "/consent",
    "/select-account",
    "/oauth/authorize/resume",
    // The answer of the logout confirmation page.
    "/oauth/logout/confirm",
    // The account pages.
    "/account",
    "/account/mfa/setup",
    "/account/mfa/confirm",
    "/account/mfa/disable",
    "/account/mfa/recovery-codes",
    "/account/verify-email",
    "/account/reset-password",
    // Files compiled into the binary.
    "/static/{path}",
    // The documentation: the page, its files and the document.
    "/docs",
    "/docs/{file}",
    "/openapi.json",
];

const METHODS: &[&str] = &[
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

fn documented(doc: &Value) -> BTreeSet<(String, String)> {
    doc["paths"]
        .as_object()
        .expect("paths")
        .iter()
        .flat_map(|(path, item)| {
            METHODS
                .iter()
                .filter(|m| item.get(**m).is_some())
                .map(move |m| (path.clone(), (*m).to_owned()))
        })
        .collect()
}

fn served() -> BTreeSet<(String, String)> {
    latchkey::http::declared_routes(latchkey::startup::routes)
        .into_iter()
        .map(|(path, method)| (path, method.to_ascii_lowercase()))
        .collect()
}

#[test]
fn every_route_is_documented_and_every_documented_operation_is_served() {
    let doc = latchkey::api::openapi::document("http://localhost:8080");
    let documented = documented(&doc);
    let served = served();
    assert!(served.len() > 100, "the routes were read: {served:?}");
    for excluded in NOT_DOCUMENTED {
        assert!(
            served.iter().any(|(p, _)| p == excluded),
            "{excluded} is excluded but no longer served: remove it from the list"
        );
    }
    let missing: Vec<_> = served
        .iter()
        .filter(|(path, _)| !NOT_DOCUMENTED.contains(&path.as_str()))
        .filter(|route| !documented.contains(*route))
        .collect();
    assert!(
        missing.is_empty(),
        "routes without an operation in the OpenAPI document: {missing:#?}"
    );
    let unserved: Vec<_> = documented.difference(&served).collect();
    assert!(
        unserved.is_empty(),
        "documented operations that no route serves: {unserved:#?}"
    );
    for excluded in NOT_DOCUMENTED {
        assert!(
            doc["paths"].get(*excluded).is_none(),
            "{excluded} is documented: take it off the list of undocumented routes"
        );
    }
}

#[test]
fn every_operation_has_an_id_a_tag_a_security_requirement_and_its_error_responses() {
    let doc = latchkey::api::openapi::document("http://localhost:8080");
    let schemes = doc["components"]["securitySchemes"]
        .as_object()
        .expect("security schemes");
    let mut ids = BTreeSet::new();
    for (path, method) in documented(&doc) {
        let operation = &doc["paths"][&path][&method];
        let id = operation["operationId"].as_str().expect("an operationId");
        assert!(ids.insert(id.to_owned()), "{id} is used twice");
        assert!(
            operation["tags"].as_array().is_some_and(|t| !t.is_empty()),
            "{method} {path} has no tag"
        );
        let security = operation["security"]
            .as_array()
            .unwrap_or_else(|| panic!("{method} {path} says nothing of its security"));
        for requirement in security {
            for scheme in requirement.as_object().unwrap().keys() {
                assert!(schemes.contains_key(scheme), "{method} {path}: {scheme}");
            }
        }
        let responses = operation["responses"].as_object().unwrap();
        assert!(
            responses
                .keys()
                .any(|s| s.starts_with('2') || s.starts_with('3')),
            "{method} {path} has no success response"
        );
        if path.starts_with("/api/v1/") {
            assert!(responses.contains_key("429"), "{method} {path}: 429");
        }
        let bearer = security.iter().any(|r| r.get("bearer").is_some());
        if bearer && path.starts_with("/api/v1/") && !path.starts_with("/api/v1/oauth/") {
            for status in ["401", "403", "500", "503"] {
                assert_eq!(
                    responses[status]["content"]["application/json"]["schema"]["$ref"],
                    "#/components/schemas/ApiError",
                    "{method} {path}: {status}"
                );
            }
        }
    }
    for path in ["/oauth/token", "/oauth/revoke", "/oauth/introspect"] {
        let security = &doc["paths"][path]["post"]["security"];
        assert!(
            security
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r.get("client_secret_basic").is_some()),
            "{path}: {security}"
        );
    }
    assert_eq!(
        doc["paths"]["/metrics"]["get"]["security"][0]["metrics_token"],
        serde_json::json!([])
    );
}

#[tokio::test]
async fn the_document_is_openapi_3_1_with_the_issuer_as_its_server() {
    let app = spawn_app().await;

    let response = app.get("/openapi.json").await;

    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"].to_str().unwrap(),
        "application/json"
    );
    assert!(
        response.headers()["cache-control"]
            .to_str()
            .unwrap()
            .starts_with("public"),
        "the document is cacheable"
    );
    let doc: Value = response.json().await.unwrap();
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1."),
        "{}",
        doc["openapi"]
    );
    assert_eq!(doc["servers"][0]["url"], app.issuer);
    assert_eq!(doc["info"]["title"], "Latchkey");
    let schemes = &doc["components"]["securitySchemes"];
    assert_eq!(schemes["bearer"]["scheme"], "bearer");
    assert_eq!(schemes["client_secret_basic"]["scheme"], "basic");
    for method in ["client_secret_post", "private_key_jwt", "none"] {
        assert!(
            doc["paths"]["/oauth/token"]["post"]["description"]
                .as_str()
                .unwrap()
                .contains(method),
            "the token endpoint documents {method}"
        );
    }
    for schema in ["ApiError", "OAuthError", "Pagination"] {
        assert!(
            doc["components"]["schemas"].get(schema).is_some(),
            "{schema}"
        );
    }
    assert!(
        doc["paths"]["/api/v1/admin/users/{id}"]["patch"].is_object(),
        "the admin aliases are documented"
    );
}

/// The `src` and `href` values of an HTML page.
fn references(html: &str) -> Vec<String> {
    let mut found = Vec::new();
    for attribute in ["src=\"", "href=\""] {
        let mut rest = html;
        while let Some(start) = rest.find(attribute) {
            rest = &rest[start + attribute.len()..];
            let end = rest.find('"').expect("a closing quote");
            found.push(rest[..end].to_owned());
            rest = &rest[end..];
        }
    }
    found
}

#[tokio::test]
async fn the_docs_page_loads_only_files_of_this_server_under_the_strict_policy() {
    let app = spawn_app().await;

    let response = app.get("/docs").await;

    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let csp = response.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(csp, latchkey::http::headers::DEFAULT_CSP);
    assert!(!csp.contains("unsafe"), "{csp}");
    let html = response.text().await.unwrap();
    assert!(!html.contains("<style"), "no inline style");
    assert!(
        !html.contains("<script>") && !html.contains("onload="),
        "no inline script or handler"
    );
    let references = references(&html);
    assert!(references.len() >= 5, "{references:?}");
    for reference in &references {
        assert!(
            reference.starts_with('/') && !reference.starts_with("//"),
            "{reference} is not a path of this server"
        );
        let asset = app.get(reference).await;
        assert_eq!(asset.status(), 200, "{reference}");
    }
    let initializer = app.get("/docs/swagger-initializer.js").await;
    assert!(
        initializer.headers()["content-type"]
            .to_str()
            .unwrap()
            .contains("javascript")
    );
    let initializer = initializer.text().await.unwrap();
    assert!(initializer.contains("\"/openapi.json\""), "{initializer}");
    assert!(
        initializer.contains("\"validatorUrl\": \"none\""),
        "the validator would call swagger.io: {initializer}"
    );
    assert!(!initializer.contains("http"), "{initializer}");
    assert_eq!(app.get("/docs/oauth2-redirect.html").await.status(), 404);
}

const COLLECT_CSP_VIOLATIONS: &str = r#"
    window.__violations = [];
    document.addEventListener('securitypolicyviolation', e => {
        window.__violations.push(e.violatedDirective + ' ' + e.blockedURI);
    });
    return true;
"#;

#[tokio::test]
async fn the_docs_page_shows_the_operations_in_chromium() {
    if skipped() {
        return;
    }
    let app = spawn_app().await;
    let browser = Browser::launch().await;

    browser.goto(&app.url("/docs")).await;
    browser.wait_for(".opblock-tag").await;
    browser
        .client
        .execute(COLLECT_CSP_VIOLATIONS, vec![])
        .await
        .expect("the listener");
    // Open the `auth` tag, then its login operation: Swagger UI renders them as they open.
    browser.click("#operations-tag-auth").await;
    let login = browser
        .wait_for("#operations-auth-post_api_v1_auth_login")
        .await;
    login.click().await.expect("the operation opens");
    browser
        .wait_for("#operations-auth-post_api_v1_auth_login .opblock-body")
        .await;

    let title = browser.texts(".info .title").await;
    assert!(title.iter().any(|t| t.contains("Latchkey")), "{title:?}");
    let paths = browser.texts(".opblock-summary-path").await;
    assert!(
        paths.iter().any(|p| p.contains("/api/v1/auth/login")),
        "{paths:?}"
    );
    let styled = browser
        .client
        .execute(
            "return getComputedStyle(document.querySelector('.swagger-ui .opblock-tag')).display;",
            vec![],
        )
        .await
        .expect("a computed style");
    assert_eq!(styled, "flex", "swagger-ui.css applies");
    let violations = browser
        .client
        .execute("return window.__violations;", vec![])
        .await
        .expect("the violations");
    assert_eq!(violations, serde_json::json!([]), "CSP violations");
    browser.close().await;

    // What the page did while it loaded, before any listener could be added: Chromium's own
    // console, which reports each Content-Security-Policy violation.
    let (console, dom) = chromium_console(&app.url("/docs")).await;
    assert!(dom.contains("opblock-tag"), "the page rendered: {dom}");
    assert!(
        !console.contains("Content Security Policy") && !console.contains("Refused to"),
        "console messages while /docs loaded:\n{console}"
    );
}

/// Loads `url` in a headless Chromium of its own, with its console written to stderr: the
/// console and the DOM once the page has settled.
async fn chromium_console(url: &str) -> (String, String) {
    let url = url.to_owned();
    tokio::task::spawn_blocking(move || {
        let profile = tempfile::tempdir().expect("a profile directory");
        let output = std::process::Command::new("timeout")
            .args([
                "60",
                "chromium",
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
            ])
            .args([
                "--enable-logging=stderr",
                "--v=0",
                "--virtual-time-budget=5000",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .args(["--dump-dom", &url])
            .output()
            .expect("chromium runs");
        let console: String = String::from_utf8_lossy(&output.stderr)
            .lines()
            .filter(|line| line.contains("CONSOLE"))
            .collect::<Vec<_>>()
            .join("\n");
        (
            console,
            String::from_utf8_lossy(&output.stdout).into_owned(),
        )
    })
    .await
    .expect("the chromium task")
}
