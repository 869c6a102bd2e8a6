//! Browser tests in headless Chromium: the login, consent and form_post pages as a person meets them.
//!
//! Each test runs a real Latchkey, a relying party's callback server on 127.0.0.1 (the
//! client's redirect URI) and a fresh Chromium profile, and asserts on what the relying party
//! received. `LATCHKEY_SKIP_BROWSER_TESTS=1` skips them; see `browser_support` for the setup.

use fantoccini::Locator;
use latchkey::oauth::clients::ClientView;

use crate::browser_support::{
    Browser, CallbackServer, Received, Screen, authorize_url, jwt_claims, redeem_code, skipped,
    wait_until_after,
};
use crate::helpers::{TestApp, spawn_app};

const USERNAME: &str = "alice";
const PASSWORD: &str = "password123-long";

/// A state with characters that must be percent-encoded in a URL and in a form.
const AWKWARD_STATE: &str = "a b+c/=&é";

/// A server with one user, a relying party, and a confidential client redirecting to it.
struct Setup {
    app: TestApp,
    rp: CallbackServer,
    client: ClientView,
}

async fn setup() -> Setup {
    let app = spawn_app().await;
    app.create_user(USERNAME, PASSWORD).await;
    let rp = CallbackServer::start().await;
    let redirect_uri = rp.redirect_uri.clone();
    let client = app
        .web_client("Browser Test RP", |request| {
            request.redirect_uris = vec![redirect_uri];
            request.scope = Some("openid profile".into());
        })
        .await;
    Setup { app, rp, client }
}

/// `aud` is the client id, alone or in an array (OpenID Connect Core §2).
fn assert_audience(claims: &serde_json::Value, client_id: &str) {
    let aud = &claims["aud"];
    assert!(
        aud == client_id
            || aud
                .as_array()
                .is_some_and(|a| a.len() == 1 && a[0] == client_id),
        "aud is {aud}, not {client_id}"
    );
}

impl Setup {
    fn authorize_url(&self, state: &str, extra: &[(&str, &str)]) -> String {
        authorize_url(&self.app, &self.client, &self.rp.redirect_uri, state, extra)
    }

    /// Checks a successful redirect to the callback (query mode) and returns the code.
    fn code_from(&self, callback: &Received, state: &str) -> String {
        assert_eq!(callback.method, "GET", "{callback:?}");
        assert_eq!(callback.query_param("error"), None, "{callback:?}");
        assert_eq!(
            callback.query_param("state").as_deref(),
            Some(state),
            "{callback:?}"
        );
        assert_eq!(
            callback.query_param("iss").as_deref(),
            Some(self.app.issuer.as_str()),
            "{callback:?}"
        );
        callback.query_param("code").expect("a code")
    }

    /// Redeems a code and returns the ID token's claims.
    async fn id_token_claims(&self, code: &str) -> serde_json::Value {
        let (status, body) =
            redeem_code(&self.app, &self.client, code, &self.rp.redirect_uri).await;
        assert_eq!(status, 200, "token response: {body}");
        jwt_claims(body["id_token"].as_str().expect("an id_token"))
    }

    /// Logs in and allows on the consent page, starting from an authorization URL.
    async fn log_in_and_allow(&self, browser: &Browser, url: &str) {
        browser.goto(url).await;
        browser.wait_for_page(&self.app.address, "/login").await;
        browser.log_in(USERNAME, PASSWORD).await;
        browser.wait_for_page(&self.app.address, "/consent").await;
        browser.click("button[name=decision][value=allow]").await;
    }
}

#[tokio::test]
async fn allowing_consent_sends_code_state_and_iss_to_the_client_and_the_code_redeems() {
    if skipped() {
        return;
    }
    let browser = Browser::launch().await;
    let setup = setup().await;

    browser.goto(&setup.authorize_url(AWKWARD_STATE, &[])).await;
    let login = browser.wait_for_page(&setup.app.address, "/login").await;
    assert!(
        login.query_pairs().any(|(k, _)| k == "request"),
        "the login page carries the request: {login}"
    );
    browser.log_in(USERNAME, PASSWORD).await;
    browser.wait_for_page(&setup.app.address, "/consent").await;
    let page = browser.client.source().await.unwrap();
    assert!(
        page.contains("Browser Test RP"),
        "the consent page names the client"
    );
    browser.click("button[name=decision][value=allow]").await;

    let callback = setup.rp.wait_for_callback(0).await;
    let code = setup.code_from(&callback, AWKWARD_STATE);
    browser.wait_for("#rp-callback").await;
    assert_eq!(browser.url().await.path(), "/callback");

    let (status, body) =
        redeem_code(&setup.app, &setup.client, &code, &setup.rp.redirect_uri).await;
    assert_eq!(status, 200, "token response: {body}");
    assert!(body["access_token"].is_string(), "{body}");
    let claims = jwt_claims(body["id_token"].as_str().expect("an id_token"));
    assert_eq!(claims["iss"], setup.app.issuer.as_str());
    assert_audience(&claims, &setup.client.client_id);
    assert_eq!(setup.rp.callbacks().len(), 1, "exactly one callback");
    browser.close().await;
    setup.rp.stop().await;
}

#[tokio::test]
async fn denying_consent_sends_access_denied_with_the_state_and_no_code() {
    if skipped() {
        return;
    }
    let browser = Browser::launch().await;
    let setup = setup().await;

    browser.goto(&setup.authorize_url(AWKWARD_STATE, &[])).await;
    browser.wait_for_page(&setup.app.address, "/login").await;
    browser.log_in(USERNAME, PASSWORD).await;
    browser.wait_for_page(&setup.app.address, "/consent").await;
    browser.click("button[name=decision][value=deny]").await;

    let callback = setup.rp.wait_for_callback(0).await;
    assert_eq!(callback.method, "GET", "{callback:?}");
    assert_eq!(
        callback.query_param("error").as_deref(),
        Some("access_denied"),
        "{callback:?}"
    );
    assert_eq!(
        callback.query_param("state").as_deref(),
        Some(AWKWARD_STATE),
        "{callback:?}"
    );
    assert_eq!(
        callback.query_param("iss").as_deref(),
        Some(setup.app.issuer.as_str()),
        "{callback:?}"
    );
    assert_eq!(callback.query_param("code"), None, "{callback:?}");
    browser.close().await;
    setup.rp.stop().await;
}

#[tokio::test]
async fn a_second_authorization_in_the_same_browser_needs_neither_login_nor_consent() {
    if skipped() {
        return;
    }
    let browser = Browser::launch().await;
    let setup = setup().await;

    setup
        .log_in_and_allow(&browser, &setup.authorize_url("first", &[]))
        .await;
    let first = setup.rp.wait_for_callback(0).await;
    let first_code = setup.code_from(&first, "first");
    browser.wait_for("#rp-callback").await;

    // The second request: WebDriver's navigation returns once the final page has loaded, and
    // the browser was given nothing to type or click, so it can only be at the callback if
    // the server sent it straight there. Redirects add no history entry but every page shown
    // does: exactly one new entry means no page was shown on the way.
    let history_before = browser.history_length().await;
    browser.goto(&setup.authorize_url("second", &[])).await;
    assert_eq!(
        browser.history_length().await,
        history_before + 1,
        "only the callback page was shown"
    );
    let landed = browser.url().await;
    assert!(
        landed.as_str().starts_with(&setup.rp.redirect_uri),
        "the browser stopped at {landed} instead of returning to the client"
    );
    assert!(browser.has("#rp-callback").await);
    assert!(!browser.has("#username").await, "no login form was shown");
    let second = setup.rp.wait_for_callback(1).await;
    let second_code = setup.code_from(&second, "second");
    assert_ne!(first_code, second_code);
    assert_eq!(setup.rp.callbacks().len(), 2);

    // The single sign-on session is the first login: same session, same authentication time.
    let first_claims = setup.id_token_claims(&first_code).await;
    let second_claims = setup.id_token_claims(&second_code).await;
    assert_eq!(first_claims["sub"], second_claims["sub"]);
    assert_eq!(first_claims["auth_time"], second_claims["auth_time"]);
    browser.close().await;
    setup.rp.stop().await;
}

#[tokio::test]
async fn prompt_none_without_a_session_sends_login_required_with_the_state() {
    if skipped() {
        return;
    }
    let browser = Browser::launch().await;
    let setup = setup().await;

    browser
        .goto(&setup.authorize_url(AWKWARD_STATE, &[("prompt", "none")]))
        .await;
    let callback = setup.rp.wait_for_callback(0).await;
    assert_eq!(callback.method, "GET", "{callback:?}");
    assert_eq!(
        callback.query_param("error").as_deref(),
        Some("login_required"),
        "{callback:?}"
    );
    assert_eq!(
        callback.query_param("state").as_deref(),
        Some(AWKWARD_STATE),
        "{callback:?}"
    );
    assert_eq!(
        callback.query_param("iss").as_deref(),
        Some(setup.app.issuer.as_str()),
        "{callback:?}"
    );
    assert_eq!(callback.query_param("code"), None, "{callback:?}");
    assert_eq!(browser.url().await.path(), "/callback");
    browser.close().await;
    setup.rp.stop().await;
}

#[tokio::test]
async fn prompt_login_shows_the_login_page_again_and_the_new_tokens_have_a_later_auth_time() {
    if skipped() {
        return;
    }
    let browser = Browser::launch().await;
    let setup = setup().await;

    setup
        .log_in_and_allow(&browser, &setup.authorize_url("first", &[]))
        .await;
    let first = setup.rp.wait_for_callback(0).await;
    let first_auth_time = setup
        .id_token_claims(&setup.code_from(&first, "first"))
        .await["auth_time"]
        .as_i64()
        .expect("an auth_time");

    browser
        .goto(&setup.authorize_url("again", &[("prompt", "login")]))
        .await;
    browser.wait_for_page(&setup.app.address, "/login").await;
    assert_eq!(
        setup.rp.callbacks().len(),
        1,
        "no response before logging in"
    );
    // auth_time counts whole seconds: log in again only once the clock has moved on.
    wait_until_after(first_auth_time).await;
    browser.log_in(USERNAME, PASSWORD).await;

    // Consent is remembered, so the login leads straight back to the client.
    let second = setup.rp.wait_for_callback(1).await;
    let second_claims = setup
        .id_token_claims(&setup.code_from(&second, "again"))
        .await;
    let second_auth_time = second_claims["auth_time"].as_i64().expect("an auth_time");
    assert!(
        second_auth_time > first_auth_time,
        "auth_time {second_auth_time} is not after the first login's {first_auth_time}"
    );
    browser.close().await;
    setup.rp.stop().await;
}

#[tokio::test]
async fn form_post_response_mode_posts_code_state_and_iss_to_the_client() {
    if skipped() {
        return;
    }
    let browser = Browser::launch().await;
    let setup = setup().await;

    setup
        .log_in_and_allow(
            &browser,
            &setup.authorize_url(AWKWARD_STATE, &[("response_mode", "form_post")]),
        )
        .await;

    // The form_post page's script submits the form: the relying party gets a POST.
    let callback = setup.rp.wait_for_callback(0).await;
    assert_eq!(callback.method, "POST", "{callback:?}");
    let media_type = callback
        .content_type
        .as_deref()
        .and_then(|t| t.split(';').next())
        .map(str::trim);
    assert_eq!(
        media_type,
        Some("application/x-www-form-urlencoded"),
        "{callback:?}"
    );
    assert_eq!(callback.query, "", "nothing in the query: {callback:?}");
    assert_eq!(
        callback.form_param("state").as_deref(),
        Some(AWKWARD_STATE),
        "{callback:?}"
    );
    assert_eq!(
        callback.form_param("iss").as_deref(),
        Some(setup.app.issuer.as_str()),
        "{callback:?}"
    );
    assert_eq!(callback.form_param("error"), None, "{callback:?}");
    let code = callback.form_param("code").expect("a code in the form");
    browser.wait_for("#rp-callback").await;
    assert_eq!(setup.rp.callbacks().len(), 1, "the form is posted once");

    let claims = setup.id_token_claims(&code).await;
    assert_audience(&claims, &setup.client.client_id);
    browser.close().await;
    setup.rp.stop().await;
}

#[tokio::test]
async fn a_wrong_password_shows_an_error_and_the_person_can_then_log_in() {
    if skipped() {
        return;
    }
    let browser = Browser::launch().await;
    let setup = setup().await;

    browser.goto(&setup.authorize_url("retry", &[])).await;
    browser.wait_for_page(&setup.app.address, "/login").await;
    browser.log_in(USERNAME, "not-the-password").await;

    let error = browser.wait_for("#login-error").await;
    assert!(error.is_displayed().await.unwrap(), "the error is visible");
    let message = error.text().await.unwrap();
    assert!(!message.trim().is_empty(), "the error says something");
    assert!(
        !message.contains("not-the-password"),
        "the error does not echo the password"
    );
    assert_eq!(browser.url().await.path(), "/login");
    let status = browser
        .client
        .execute(
            "return performance.getEntriesByType('navigation')[0].responseStatus;",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(status, 401, "the failed login is answered with 401");
    let username = browser
        .client
        .find(Locator::Css("#username"))
        .await
        .unwrap();
    assert_eq!(
        username.prop("value").await.unwrap().as_deref(),
        Some(USERNAME),
        "the username is kept"
    );
    let password = browser
        .client
        .find(Locator::Css("#password"))
        .await
        .unwrap();
    assert_eq!(
        password.prop("value").await.unwrap().as_deref(),
        Some(""),
        "the password field is empty again"
    );
    assert!(
        setup.rp.callbacks().is_empty(),
        "nothing was sent to the client"
    );

    browser.log_in(USERNAME, PASSWORD).await;
    browser.wait_for_page(&setup.app.address, "/consent").await;
    browser.click("button[name=decision][value=allow]").await;
    let callback = setup.rp.wait_for_callback(0).await;
    let code = setup.code_from(&callback, "retry");
    setup.id_token_claims(&code).await;
    browser.close().await;
    setup.rp.stop().await;
}

#[tokio::test]
async fn the_login_page_fits_a_phone_screen_and_labels_its_inputs() {
    if skipped() {
        return;
    }
    const WIDTH: u32 = 375;
    let browser = Browser::launch_on(Screen::Phone {
        width: WIDTH,
        height: 667,
    })
    .await;
    let setup = setup().await;

    browser.goto(&setup.authorize_url("phone", &[])).await;
    browser.wait_for_page(&setup.app.address, "/login").await;

    let viewport = browser
        .client
        .execute("return window.innerWidth;", vec![])
        .await
        .unwrap()
        .as_f64()
        .unwrap();
    assert_eq!(
        viewport,
        f64::from(WIDTH),
        "the page uses the phone's width"
    );
    let page_width = browser
        .client
        .execute("return document.documentElement.scrollWidth;", vec![])
        .await
        .unwrap()
        .as_f64()
        .unwrap();
    assert!(
        page_width <= f64::from(WIDTH),
        "the page scrolls sideways: {page_width}px wide on a {WIDTH}px screen"
    );

    for css in ["#username", "#password", "form button[type=submit]"] {
        let element = browser.wait_for(css).await;
        assert!(
            element.is_displayed().await.unwrap(),
            "`{css}` is displayed"
        );
        let (x, _, width, height) = element.rectangle().await.unwrap();
        assert!(
            x >= 0.0 && x + width <= f64::from(WIDTH) && width > 0.0 && height > 0.0,
            "`{css}` spans x={x}..{} on a {WIDTH}px screen",
            x + width
        );
    }

    let inputs = browser
        .client
        .find_all(Locator::Css("form input:not([type=hidden])"))
        .await
        .unwrap();
    assert!(inputs.len() >= 2, "the form has its inputs");
    for input in inputs {
        let id = input
            .attr("id")
            .await
            .unwrap()
            .expect("every visible input has an id");
        let labels = browser
            .client
            .find_all(Locator::Css(&format!("label[for=\"{id}\"]")))
            .await
            .unwrap();
        assert_eq!(labels.len(), 1, "input #{id} has one <label for>");
        assert!(
            labels[0].is_displayed().await.unwrap(),
            "the label of #{id} is visible"
        );
        assert!(
            !labels[0].text().await.unwrap().trim().is_empty(),
            "the label of #{id} has text"
        );
    }

    // And the phone-sized page works: log in and allow.
    browser.log_in(USERNAME, PASSWORD).await;
    browser.wait_for_page(&setup.app.address, "/consent").await;
    browser.click("button[name=decision][value=allow]").await;
    let callback = setup.rp.wait_for_callback(0).await;
    setup.code_from(&callback, "phone");
    browser.close().await;
    setup.rp.stop().await;
}
