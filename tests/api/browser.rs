//! Browser tests in headless Chromium: the login, consent and form_post pages as a person meets them,
//! two-step verification at login and as a step-up, and the account page that sets it up.
//!
//! Each test runs a real Latchkey, a relying party's callback server on 127.0.0.1 (the
//! client's redirect URI) and a fresh Chromium profile, and asserts on what the relying party
//! received and on the stored state. `LATCHKEY_SKIP_BROWSER_TESTS=1` skips them; see `browser_support` for the setup.

use std::time::{Duration, Instant};

use fantoccini::Locator;
use latchkey::domain::{ACR_MFA, ACR_PASSWORD};
use latchkey::oauth::clients::ClientView;
use serde_json::json;

use crate::browser_support::{
    Browser, CallbackServer, Received, STEP, Screen, TOTP_STEP, authorize_url, jwt_claims,
    live_browser_sessions, normalise_recovery_code, recovery_code_hash, redeem_code,
    security_state, set_auth_time, skipped, stored_recovery_codes, totp_code, totp_now,
    turn_on_mfa, unix_now, wait_until_after, wrong_totp_code,
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
    /// The id of the user `USERNAME`.
    user_id: String,
}

async fn setup() -> Setup {
    setup_with(false).await
}

/// [`setup`], with a client that asks for consent or (`skip_consent`) does not.
async fn setup_with(skip_consent: bool) -> Setup {
    let app = spawn_app().await;
    let user_id = app.create_user(USERNAME, PASSWORD).await;
    let rp = CallbackServer::start().await;
    let redirect_uri = rp.redirect_uri.clone();
    let client = app
        .web_client("Browser Test RP", |request| {
            request.redirect_uris = vec![redirect_uri];
            request.scope = Some("openid profile".into());
            request.skip_consent = skip_consent;
        })
        .await;
    Setup {
        app,
        rp,
        client,
        user_id,
    }
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

    /// Starts an authorization at `url`, types the password, and waits for the code page.
    async fn log_in_up_to_the_code(&self, browser: &Browser, url: &str) {
        browser.goto(url).await;
        browser.wait_for_page(&self.app.address, "/login").await;
        browser.log_in(USERNAME, PASSWORD).await;
        at_the_code_page(browser, &self.app).await;
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

/// The selector of the account page's button that starts setting up two-step verification.
const SET_UP_BUTTON: &str = "form[action=\"/account/mfa/setup\"] button[type=submit]";
/// The selector of the setup page's button that turns it on.
const TURN_ON_BUTTON: &str = "form[action=\"/account/mfa/confirm\"] button[type=submit]";
/// The selector of the account page's button that replaces the recovery codes.
const NEW_CODES_BUTTON: &str = "form[action=\"/account/mfa/recovery-codes\"] button[type=submit]";

/// Waits for the second-factor page and checks what it shows: a code field, no password field,
/// and nothing secret in its URL (the challenge rides in a cookie).
async fn at_the_code_page(browser: &Browser, app: &TestApp) {
    let page = browser.wait_for_page(&app.address, "/login/mfa").await;
    assert_eq!(page.query(), None, "nothing in the code page's URL: {page}");
    browser.wait_for("#code").await;
    assert_eq!(
        browser.status().await,
        200,
        "the code page is shown with 200"
    );
    assert!(
        !browser.has("#password").await,
        "the code page asks for no password"
    );
}

/// Types `code` into the code page and submits it.
async fn enter_code(browser: &Browser, code: &str) {
    browser.fill("#code", code).await;
    browser.click("form button[type=submit]").await;
}

/// Waits for the error `css` (one the page had not before), and checks that it is visible, says
/// something, and came with `status`.
async fn assert_error_shown(browser: &Browser, css: &str, status: u16) -> String {
    let error = browser.wait_for(css).await;
    assert!(error.is_displayed().await.unwrap(), "`{css}` is visible");
    let message = error.text().await.unwrap();
    assert!(!message.trim().is_empty(), "`{css}` says something");
    assert_eq!(
        browser.status().await,
        status,
        "the page with `{css}` ({message}) is answered with {status}"
    );
    message
}

/// The claims of a sign-in with a second factor.
fn assert_mfa_claims(claims: &serde_json::Value) {
    assert_eq!(claims["acr"], ACR_MFA, "{claims}");
    assert_eq!(claims["amr"], json!(["pwd", "otp"]), "{claims}");
}

/// Waits until the setup page's QR code is displayed as a decoded image.
async fn assert_qr_code_shown(browser: &Browser) {
    let image = browser.wait_for("img.qr").await;
    let source = image.attr("src").await.unwrap().unwrap_or_default();
    assert!(
        source.starts_with("data:image/svg+xml;base64,"),
        "the QR code is an inline SVG: {source:.40}"
    );
    let deadline = Instant::now() + STEP;
    loop {
        let decoded = browser
            .client
            .execute(
                "const i = document.querySelector('img.qr'); \
                 return i.complete && i.naturalWidth > 0 && i.naturalHeight > 0;",
                vec![],
            )
            .await
            .unwrap();
        if decoded == true {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the QR code image did not load within {STEP:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        image.is_displayed().await.unwrap(),
        "the QR code is visible"
    );
    let (_, _, width, height) = image.rectangle().await.unwrap();
    assert!(
        width >= 100.0 && height >= 100.0,
        "the QR code is {width}x{height}"
    );
}

/// The recovery codes a page lists, checked for their shape: ten distinct `xxxxx-xxxxx`.
async fn listed_recovery_codes(browser: &Browser) -> Vec<String> {
    browser.wait_for("#recovery-codes li").await;
    let codes = browser.texts("#recovery-codes li").await;
    assert_eq!(codes.len(), 10, "ten recovery codes: {codes:?}");
    let distinct: std::collections::BTreeSet<&String> = codes.iter().collect();
    assert_eq!(distinct.len(), 10, "the codes differ: {codes:?}");
    for code in &codes {
        assert!(
            code.len() == 11 && &code[5..6] == "-" && normalise_recovery_code(code).len() == 10,
            "`{code}` is not a recovery code"
        );
    }
    codes
}

#[tokio::test]
async fn a_login_with_two_step_verification_asks_for_a_code_and_the_id_token_says_mfa() {
    if skipped() {
        return;
    }
    let browser = Browser::launch().await;
    let setup = setup().await;
    let mfa = turn_on_mfa(&setup.app, &setup.user_id).await;

    setup
        .log_in_up_to_the_code(&browser, &setup.authorize_url(AWKWARD_STATE, &[]))
        .await;
    let page = browser.client.source().await.unwrap();
    assert!(
        page.contains("Browser Test RP"),
        "the code page names the client"
    );
    assert!(
        live_browser_sessions(&setup.app, &setup.user_id)
            .await
            .is_empty(),
        "the password alone started no session"
    );

    // A wrong code: the page again, with an error and 401; nothing goes to the client.
    enter_code(&browser, &wrong_totp_code(&mfa.secret)).await;
    let message = assert_error_shown(&browser, "#mfa-error", 401).await;
    assert_eq!(browser.url().await.path(), "/login/mfa");
    assert!(
        browser.has("#code").await,
        "the code can be typed again: {message}"
    );
    assert!(
        setup.rp.callbacks().is_empty(),
        "nothing sent to the client"
    );
    assert!(
        live_browser_sessions(&setup.app, &setup.user_id)
            .await
            .is_empty()
    );

    // The right code leads on to consent, then back to the client.
    let before = unix_now();
    enter_code(&browser, &totp_now(&mfa.secret)).await;
    browser.wait_for_page(&setup.app.address, "/consent").await;
    assert!(
        setup.rp.callbacks().is_empty(),
        "no response before consent"
    );
    browser.click("button[name=decision][value=allow]").await;
    let callback = setup.rp.wait_for_callback(0).await;
    let code = setup.code_from(&callback, AWKWARD_STATE);
    browser.wait_for("#rp-callback").await;
    let claims = setup.id_token_claims(&code).await;
    assert_mfa_claims(&claims);
    assert_audience(&claims, &setup.client.client_id);
    let auth_time = claims["auth_time"].as_i64().expect("an auth_time");
    assert!(
        auth_time >= before,
        "auth_time {auth_time} is the second factor's time (>= {before})"
    );
    assert_eq!(setup.rp.callbacks().len(), 1, "exactly one callback");

    // Stored: one session with the second factor; the code's time step is spent; the wrong
    // code's failure is cleared by the success.
    let sessions = live_browser_sessions(&setup.app, &setup.user_id).await;
    assert_eq!(sessions.len(), 1, "{sessions:?}");
    assert_eq!(sessions[0].acr, ACR_MFA);
    assert_eq!(sessions[0].auth_time, auth_time);
    let security = security_state(&setup.app, &setup.user_id).await;
    let step = security
        .totp_last_step
        .expect("the accepted time step is kept");
    assert!(
        (step - before / TOTP_STEP as i64).abs() <= 1,
        "step {step} is the current one"
    );
    assert_eq!(security.failed_login_count, 0);

    // The code page is done with: its cookie is gone and its challenge spent.
    browser.goto(&setup.app.url("/login/mfa")).await;
    assert_eq!(
        browser.status().await,
        400,
        "the finished sign-in cannot resume"
    );
    assert!(!browser.has("#code").await);
    browser.close().await;
    setup.rp.stop().await;
}

#[tokio::test]
async fn a_recovery_code_signs_in_once_in_the_browser() {
    if skipped() {
        return;
    }
    let (first, second) = Browser::launch_pair().await;
    let setup = setup_with(true).await;
    let mfa = turn_on_mfa(&setup.app, &setup.user_id).await;
    let recovery = mfa.recovery_codes[4].clone();

    setup
        .log_in_up_to_the_code(&first, &setup.authorize_url("first", &[]))
        .await;
    enter_code(&first, &recovery).await;
    let callback = setup.rp.wait_for_callback(0).await;
    let claims = setup
        .id_token_claims(&setup.code_from(&callback, "first"))
        .await;
    assert_mfa_claims(&claims);
    first.wait_for("#rp-callback").await;
    let stored = stored_recovery_codes(&setup.app, &setup.user_id).await;
    let used: Vec<&String> = stored.iter().filter(|(_, u)| *u).map(|(h, _)| h).collect();
    assert_eq!(
        used,
        vec![&recovery_code_hash(&setup.app, &recovery)],
        "exactly that code is spent"
    );
    assert_eq!(
        security_state(&setup.app, &setup.user_id)
            .await
            .totp_last_step,
        None,
        "no TOTP step was used"
    );
    first.close().await;

    // Another browser profile, the same password and the same recovery code: refused.
    setup
        .log_in_up_to_the_code(&second, &setup.authorize_url("second", &[]))
        .await;
    enter_code(&second, &recovery).await;
    assert_error_shown(&second, "#mfa-error", 401).await;
    assert_eq!(second.url().await.path(), "/login/mfa");
    assert_eq!(
        setup.rp.callbacks().len(),
        1,
        "nothing more sent to the client"
    );
    assert_eq!(
        stored_recovery_codes(&setup.app, &setup.user_id)
            .await
            .iter()
            .filter(|(_, used)| !*used)
            .count(),
        9,
        "nine codes are left"
    );
    assert_eq!(
        live_browser_sessions(&setup.app, &setup.user_id)
            .await
            .len(),
        1,
        "only the first browser has a session"
    );

    // The refused code did not end the sign-in: another factor still completes it.
    enter_code(&second, &totp_now(&mfa.secret)).await;
    let callback = setup.rp.wait_for_callback(1).await;
    let claims = setup
        .id_token_claims(&setup.code_from(&callback, "second"))
        .await;
    assert_mfa_claims(&claims);
    second.close().await;
    setup.rp.stop().await;
}

#[tokio::test]
async fn step_up_asks_for_the_second_factor_inside_an_existing_session() {
    if skipped() {
        return;
    }
    let (laptop, other) = Browser::launch_pair().await;
    let setup = setup_with(true).await;

    // In one browser, a session from before two-step verification was on: password only.
    other.goto(&setup.authorize_url("password", &[])).await;
    other.wait_for_page(&setup.app.address, "/login").await;
    other.log_in(USERNAME, PASSWORD).await;
    let callback = setup.rp.wait_for_callback(0).await;
    let claims = setup
        .id_token_claims(&setup.code_from(&callback, "password"))
        .await;
    assert_eq!(claims["acr"], ACR_PASSWORD, "{claims}");
    assert_eq!(claims["amr"], json!(["pwd"]), "{claims}");
    let password_auth_time = claims["auth_time"].as_i64().expect("an auth_time");
    let sessions = live_browser_sessions(&setup.app, &setup.user_id).await;
    assert_eq!(sessions.len(), 1);
    let password_session = sessions[0].id.clone();

    let mfa = turn_on_mfa(&setup.app, &setup.user_id).await;

    // In another browser, a login with the password and a code: its session satisfies a request
    // for the MFA level, now and again without asking anything.
    let mfa_only = [("acr_values", ACR_MFA)];
    setup
        .log_in_up_to_the_code(&laptop, &setup.authorize_url("laptop", &mfa_only))
        .await;
    enter_code(&laptop, &totp_now(&mfa.secret)).await;
    let callback = setup.rp.wait_for_callback(1).await;
    let laptop_claims = setup
        .id_token_claims(&setup.code_from(&callback, "laptop"))
        .await;
    assert_mfa_claims(&laptop_claims);
    laptop.wait_for("#rp-callback").await;
    laptop
        .goto(&setup.authorize_url("laptop-again", &mfa_only))
        .await;
    let landed = laptop.url().await;
    assert!(
        landed.as_str().starts_with(&setup.rp.redirect_uri),
        "the MFA session went straight back to the client, not to {landed}"
    );
    let callback = setup.rp.wait_for_callback(2).await;
    let again = setup
        .id_token_claims(&setup.code_from(&callback, "laptop-again"))
        .await;
    assert_mfa_claims(&again);
    assert_eq!(again["auth_time"], laptop_claims["auth_time"]);
    laptop.close().await;

    // The password-only session: a request that accepts either level does not step up.
    other
        .goto(&setup.authorize_url(
            "either",
            &[("acr_values", &format!("{ACR_PASSWORD} {ACR_MFA}"))],
        ))
        .await;
    let landed = other.url().await;
    assert!(
        landed.as_str().starts_with(&setup.rp.redirect_uri),
        "a request accepting the password level went straight back to the client, not to {landed}"
    );
    assert!(!other.has("#code").await);
    let callback = setup.rp.wait_for_callback(3).await;
    let either = setup
        .id_token_claims(&setup.code_from(&callback, "either"))
        .await;
    assert_eq!(either["acr"], ACR_PASSWORD, "{either}");
    assert_eq!(either["auth_time"], password_auth_time);

    // A request for the MFA level only: the code page, without the password again.
    let aged = password_auth_time - 600;
    set_auth_time(&setup.app, &password_session, aged).await;
    other.goto(&setup.authorize_url("step-up", &mfa_only)).await;
    at_the_code_page(&other, &setup.app).await;
    assert_eq!(setup.rp.callbacks().len(), 4, "no response before the code");
    // The laptop spent the current time step; the authenticator's next code is accepted (one
    // step of drift is allowed), so the test need not wait for the clock.
    let spent = security_state(&setup.app, &setup.user_id)
        .await
        .totp_last_step
        .expect("the laptop's step is recorded");
    let next = u64::try_from(spent + 1).unwrap() * TOTP_STEP;
    let before = unix_now();
    enter_code(&other, &totp_code(&mfa.secret, next)).await;
    let callback = setup.rp.wait_for_callback(4).await;
    let stepped = setup
        .id_token_claims(&setup.code_from(&callback, "step-up"))
        .await;
    assert_mfa_claims(&stepped);
    assert_eq!(stepped["sub"], claims["sub"]);
    let stepped_auth_time = stepped["auth_time"].as_i64().expect("an auth_time");
    assert!(
        stepped_auth_time > aged && stepped_auth_time >= before,
        "auth_time {stepped_auth_time} is the step-up's time, after the password's ({aged}) \
         and not before the code was typed ({before})"
    );

    // Stored: the same session was stepped up, not replaced.
    let sessions = live_browser_sessions(&setup.app, &setup.user_id).await;
    assert_eq!(sessions.len(), 2, "{sessions:?}");
    let session = sessions
        .iter()
        .find(|s| s.id == password_session)
        .expect("the password session lives on");
    assert_eq!(session.acr, ACR_MFA);
    assert_eq!(session.auth_time, stepped_auth_time);
    other.close().await;
    setup.rp.stop().await;
}

/// POST `body` as JSON to the API: the status and the JSON answer.
async fn api_post(app: &TestApp, path: &str, body: serde_json::Value) -> (u16, serde_json::Value) {
    let response = reqwest::Client::new()
        .post(app.url(path))
        .json(&body)
        .send()
        .await
        .expect("the API answers");
    let status = response.status().as_u16();
    (status, response.json().await.expect("a JSON answer"))
}

#[tokio::test]
async fn the_account_page_turns_on_two_step_verification_with_the_shown_key() {
    if skipped() {
        return;
    }
    let browser = Browser::launch().await;
    let app = spawn_app().await;
    let user_id = app.create_user(USERNAME, PASSWORD).await;

    browser.goto(&app.url("/account")).await;
    let login = browser.wait_for_page(&app.address, "/login").await;
    assert_eq!(login.query(), None, "no authorization request: {login}");
    browser.log_in(USERNAME, PASSWORD).await;
    browser.wait_for_page(&app.address, "/account").await;
    browser.wait_for(SET_UP_BUTTON).await;
    assert!(
        !browser.has("#codes-left").await,
        "two-step verification is off"
    );

    browser.fill("#setup-password", PASSWORD).await;
    browser.click(SET_UP_BUTTON).await;
    let secret = browser
        .wait_for("#totp-secret")
        .await
        .text()
        .await
        .unwrap()
        .trim()
        .to_owned();
    assert!(
        totp_rs::Secret::try_from_base32(&secret).is_ok(),
        "`{secret}` is a base32 key"
    );
    let first_codes = listed_recovery_codes(&browser).await;
    assert_qr_code_shown(&browser).await;
    assert!(!security_state(&app, &user_id).await.mfa_enabled);

    // A wrong code: the setup page again, with an error, the same key and its QR code, and
    // a new set of recovery codes (the first was stored only hashed; the new set replaces it).
    browser.fill("#code", &wrong_totp_code(&secret)).await;
    browser.click(TURN_ON_BUTTON).await;
    assert_error_shown(&browser, "#setup-error", 422).await;
    assert_eq!(
        browser
            .wait_for("#totp-secret")
            .await
            .text()
            .await
            .unwrap()
            .trim(),
        secret,
        "the same key is shown again"
    );
    assert_qr_code_shown(&browser).await;
    let codes = listed_recovery_codes(&browser).await;
    assert_eq!(codes.len(), 10);
    assert!(codes.iter().all(|c| !first_codes.contains(c)));
    assert!(!security_state(&app, &user_id).await.mfa_enabled);

    // The right code turns it on.
    browser.fill("#code", &totp_now(&secret)).await;
    browser.click(TURN_ON_BUTTON).await;
    browser.wait_for_page(&app.address, "/account").await;
    let left = browser.wait_for("#codes-left").await.text().await.unwrap();
    assert_eq!(left.trim(), "10");
    let notice = browser.wait_for("p.notice").await.text().await.unwrap();
    assert_eq!(notice.trim(), "Two-step verification is on.");

    // Stored: on, with the key shown (sealed) and the ten codes shown (hashed).
    let security = security_state(&app, &user_id).await;
    assert!(security.mfa_enabled);
    assert!(
        security.totp_last_step.is_some(),
        "the code's step is spent"
    );
    let sealed = security.totp_secret.expect("a stored key");
    let opened = app
        .state
        .crypto
        .open(&sealed, &format!("totp:{user_id}"))
        .expect("the key opens");
    assert_eq!(String::from_utf8(opened).unwrap(), secret);
    let mut shown: Vec<(String, bool)> = codes
        .iter()
        .map(|c| (recovery_code_hash(&app, c), false))
        .collect();
    shown.sort();
    assert_eq!(stored_recovery_codes(&app, &user_id).await, shown);

    // A new API login now needs the second factor, and a code shown completes it.
    let (status, challenge) = api_post(
        &app,
        "/api/v1/auth/login",
        json!({"username": USERNAME, "password": PASSWORD}),
    )
    .await;
    assert_eq!(status, 403, "{challenge}");
    assert_eq!(challenge["error"], "mfa_required", "{challenge}");
    let (status, done) = api_post(
        &app,
        "/api/v1/auth/mfa/verify",
        json!({"mfa_token": challenge["mfa_token"], "code": codes[7]}),
    )
    .await;
    assert_eq!(status, 200, "{done}");
    let access = jwt_claims(done["access_token"].as_str().expect("an access token"));
    assert_eq!(access["acr"], ACR_MFA, "{access}");
    browser.close().await;
}

#[tokio::test]
async fn the_account_page_regenerates_recovery_codes_after_the_password() {
    if skipped() {
        return;
    }
    let browser = Browser::launch().await;
    let app = spawn_app().await;
    let user_id = app.create_user(USERNAME, PASSWORD).await;
    let mfa = turn_on_mfa(&app, &user_id).await;

    // Sign in to the account page with a recovery code: nine are left.
    browser.goto(&app.url("/account")).await;
    browser.wait_for_page(&app.address, "/login").await;
    browser.log_in(USERNAME, PASSWORD).await;
    at_the_code_page(&browser, &app).await;
    enter_code(&browser, &mfa.recovery_codes[0]).await;
    browser.wait_for_page(&app.address, "/account").await;
    let left = browser.wait_for("#codes-left").await.text().await.unwrap();
    assert_eq!(left.trim(), "9");
    let before = stored_recovery_codes(&app, &user_id).await;

    // A wrong password: an error, 401, and the codes stay as they were.
    browser
        .fill("#regenerate-password", "not-the-password")
        .await;
    browser.click(NEW_CODES_BUTTON).await;
    let message = assert_error_shown(&browser, ".alert[role=alert]", 401).await;
    assert!(!message.contains("not-the-password"), "{message}");
    assert!(!browser.has("#recovery-codes").await, "no codes shown");
    let left = browser.wait_for("#codes-left").await.text().await.unwrap();
    assert_eq!(left.trim(), "9");
    assert_eq!(stored_recovery_codes(&app, &user_id).await, before);

    // The right password: ten new codes, shown once, stored hashed; the old ones are gone.
    browser.fill("#regenerate-password", PASSWORD).await;
    browser.click(NEW_CODES_BUTTON).await;
    let codes = listed_recovery_codes(&browser).await;
    assert_eq!(browser.status().await, 200);
    assert!(
        codes.iter().all(|c| !mfa.recovery_codes.contains(c)),
        "the codes are new: {codes:?}"
    );
    let mut shown: Vec<(String, bool)> = codes
        .iter()
        .map(|c| (recovery_code_hash(&app, c), false))
        .collect();
    shown.sort();
    assert_eq!(stored_recovery_codes(&app, &user_id).await, shown);

    browser.click("a[href=\"/account\"]").await;
    browser.wait_for_page(&app.address, "/account").await;
    let left = browser.wait_for("#codes-left").await.text().await.unwrap();
    assert_eq!(left.trim(), "10");
    browser.close().await;
}
