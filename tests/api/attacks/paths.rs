//! One path, many spellings (F4): the router matches the decoded path, so the rate limits, the
//! NUL guard and CORS must follow the route that matched, not the raw text of the request.

use serde_json::json;

use crate::helpers::spawn_app;

#[tokio::test]
async fn f4_percent_encoded_paths_meet_the_same_limits_and_guards() {
    let app = spawn_app().await;
    // The API login, spelled three ways: all count toward one limit of 15.
    let mut statuses = Vec::new();
    for path in [
        "/api/v1/auth/login",
        "/%61pi/v1/auth/login",
        "/api/v1/auth/%6Cogin",
    ] {
        for _ in 0..6 {
            let response = app
                .client
                .post(app.url(path))
                .json(&json!({"username": "nobody", "password": "guess"}))
                .send()
                .await
                .unwrap();
            assert!(
                response.headers().contains_key("x-ratelimit-limit"),
                "{path}: no rate-limit headers"
            );
            statuses.push(response.status().as_u16());
        }
    }
    assert!(statuses[..15].iter().all(|s| *s != 429), "{statuses:?}");
    assert_eq!(statuses[15..], [429, 429, 429], "{statuses:?}");

    // The login page, spelled another way.
    let mut page = Vec::new();
    for _ in 0..16 {
        let response = app
            .client
            .post(app.url("/%6cogin"))
            .form(&[("username", "page-nobody"), ("password", "guess")])
            .send()
            .await
            .unwrap();
        page.push(response.status().as_u16());
    }
    assert_eq!(page[15], 429, "{page:?}");

    // The NUL guard of the API.
    let response = app.get("/%61pi/v1/system/info?x=%00").await;
    assert_eq!(response.status(), 400);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["code"], 400, "{body}");

    // CORS: a preflight from an unregistered origin is refused on every spelling.
    for path in ["/api/v1/users", "/%61pi/v1/users"] {
        let response = app
            .client
            .request(reqwest::Method::OPTIONS, app.url(path))
            .header("origin", "https://unregistered.example")
            .header("access-control-request-method", "GET")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 403, "{path}");
    }
}
