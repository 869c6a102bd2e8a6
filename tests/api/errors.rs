//! The contract's error forms for the failures every route shares.

use serde_json::Value;

use crate::helpers::spawn_app;

async fn assert_error_form(response: reqwest::Response, status: u16, code: &str) -> Value {
    assert_eq!(response.status().as_u16(), status);
    let header_id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(response.headers()["content-type"], "application/json");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], code);
    assert_eq!(body["code"], status);
    assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
    assert_eq!(
        body["request_id"],
        header_id.as_str(),
        "body and header carry one id"
    );
    body
}

#[tokio::test]
async fn unknown_path_is_a_json_404() {
    let app = spawn_app().await;
    let response = app.get("/no/such/thing").await;
    assert_error_form(response, 404, "not_found").await;
}

#[tokio::test]
async fn wrong_method_is_a_405_with_allow() {
    let app = spawn_app().await;
    let response = app
        .client
        .delete(app.url("/oauth/jwks"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["allow"], "GET");
    assert_error_form(response, 405, "method_not_allowed").await;
}

#[tokio::test]
async fn every_response_has_a_distinct_request_id() {
    let app = spawn_app().await;
    let a = app.get("/health").await;
    let b = app.get("/health").await;
    let id = |r: &reqwest::Response| r.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert!(id(&a).starts_with("req_"));
    assert_ne!(id(&a), id(&b));
}

#[tokio::test]
async fn a_nul_in_an_api_url_is_a_json_400_and_the_protocol_aliases_answer_in_their_own_form() {
    let app = spawn_app().await;
    let response = app.get("/api/v1/system/health?probe=a%00b").await;
    assert_error_form(response, 400, "invalid_request").await;

    // The authorization endpoint's alias answers a malformed request with its HTML error page,
    // as its OpenAPI operation documents, whichever path the request came by.
    for path in ["/api/v1/oauth/authorize", "/oauth/authorize"] {
        let response = app.get(&format!("{path}?client_id=a%00b")).await;
        assert_eq!(response.status(), 400, "{path}");
        let content_type = response.headers()["content-type"].to_str().unwrap();
        assert!(
            content_type.starts_with("text/html"),
            "{path}: {content_type}"
        );
        let page = response.text().await.unwrap();
        assert!(
            page.contains("NUL") || page.contains("invalid"),
            "{path}: {page}"
        );
    }
}
