//! Accounts: the second factor's lockout (F1), an administrator's lock against a reset (F7),
//! MFA enrolment with a stolen token (F8), a username that is someone's address (F9), lockout
//! and enumeration (F13), and the login limiter's key (I3).

use reqwest::Method;
use serde_json::{Value, json};

use super::{
    PASSWORD, api_login, bearer, link_in, mails_to, post_json, register, submit_code, token_of,
};
use crate::admin_support::{Api, admin_token};
use crate::browser_support::{security_state, totp_now, turn_on_mfa, wrong_totp_code};
use crate::flows::{Browser, Landing, input_value};
use crate::helpers::{TestApp, eventually, spawn_app, spawn_app_with};

/// A server that believes `X-Forwarded-For` from loopback, so that a test can speak from
/// several client addresses.
async fn behind_proxy() -> TestApp {
    spawn_app_with(Box::new(|s| {
        s.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
    }))
    .await
}

async fn verify_code(app: &TestApp, mfa_token: &str, code: &str) -> (u16, Value) {
    post_json(
        app,
        "/api/v1/auth/mfa/verify",
        json!({"mfa_token": mfa_token, "code": code}),
        None,
    )
    .await
}

#[tokio::test]
async fn f1_wrong_second_factors_lock_although_each_round_starts_with_the_right_password() {
    let app = spawn_app().await;
    let id = app.create_user("vera", PASSWORD).await;
    let mfa = turn_on_mfa(&app, &id).await;
    let wrong = wrong_totp_code(&mfa.secret);

    // Round one: the right password, four wrong codes.
    let (status, challenge) = api_login(&app, "vera", PASSWORD, None).await;
    assert_eq!(status, 403, "{challenge}");
    for attempt in 1..=4 {
        let (status, body) =
            verify_code(&app, challenge["mfa_token"].as_str().unwrap(), &wrong).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (401, Some("invalid_code")),
            "attempt {attempt}"
        );
    }
    // Round two: the right password again does not forgive them; the fifth wrong code locks.
    let (status, second) = api_login(&app, "vera", PASSWORD, None).await;
    assert_eq!(status, 403, "{second}");
    let second_token = second["mfa_token"].as_str().unwrap().to_owned();
    let (status, body) = verify_code(&app, &second_token, &wrong).await;
    assert_eq!(
        status, 423,
        "the fifth wrong code in the window locks: {body}"
    );
    assert_eq!(body["error"], "account_locked");
    assert!(body["retry_after"].as_i64().unwrap() > 0, "{body}");

    // Locked: the right code is refused, and so is a new round.
    let (status, _) = verify_code(&app, &second_token, &totp_now(&mfa.secret)).await;
    assert_eq!(status, 423);
    let (status, body) = api_login(&app, "vera", PASSWORD, None).await;
    assert_eq!(status, 423, "{body}");
    // The count is of second factors: the password failures count is untouched.
    let stored = security_state(&app, &id).await;
    assert_eq!(stored.failed_login_count, 0);
    assert!(
        stored
            .mfa_locked_until
            .is_some_and(|t| t > latchkey::domain::now())
    );
}

#[tokio::test]
async fn f1_wrong_codes_sent_at_once_are_each_counted() {
    let app = spawn_app().await;
    let id = app.create_user("wanda", PASSWORD).await;
    let mfa = turn_on_mfa(&app, &id).await;
    let wrong = wrong_totp_code(&mfa.secret);
    let (status, challenge) = api_login(&app, "wanda", PASSWORD, None).await;
    assert_eq!(status, 403, "{challenge}");
    let token = challenge["mfa_token"].as_str().unwrap();

    // Twenty wrong codes at the same moment (on PostgreSQL, on as many connections).
    let answers =
        futures_util::future::join_all((0..20).map(|_| verify_code(&app, token, &wrong))).await;

    // Each was counted against the one before it: four were wrong, the fifth locked, and the
    // rest met the lock. None read a count another had not yet written.
    let wrong_codes = answers.iter().filter(|(status, _)| *status == 401).count();
    let locked = answers.iter().filter(|(status, _)| *status == 423).count();
    assert_eq!((wrong_codes, locked), (4, 16), "{answers:?}");
    let (status, _) = verify_code(&app, token, &totp_now(&mfa.secret)).await;
    assert_eq!(status, 423, "the right code waits for the lock");
}

/// Signs in on the login page (no authorization request) with a password; the browser then
/// stands on the second-factor page.
async fn page_password(app: &TestApp, browser: &Browser, username: &str) -> Landing {
    let (_, _, html) = browser.visit(&app.url("/login")).await.page();
    let form = [
        ("csrf_token", input_value(&html, "csrf_token").unwrap()),
        ("username", username.to_owned()),
        ("password", PASSWORD.to_owned()),
    ];
    let response = browser
        .http
        .post(app.url("/login"))
        .form(&form)
        .send()
        .await
        .unwrap();
    browser.follow(response).await
}

#[tokio::test]
async fn f1_the_code_page_counts_wrong_codes_across_password_rounds_too() {
    let app = spawn_app().await;
    let id = app.create_user("vince", PASSWORD).await;
    let mfa = turn_on_mfa(&app, &id).await;
    let wrong = wrong_totp_code(&mfa.secret);
    let browser = Browser::new(&app);
    let mut statuses = Vec::new();
    for _round in 0..3 {
        let (url, _, mut html) = page_password(&app, &browser, "vince").await.page();
        if url.path() != "/login/mfa" {
            statuses.push(0);
            break;
        }
        for _ in 0..2 {
            let (_, status, page) = submit_code(&browser, &app, &html, &wrong).await.page();
            statuses.push(status);
            if status == 423 {
                break;
            }
            html = page;
        }
    }
    assert_eq!(statuses[..4], [401, 401, 401, 401], "{statuses:?}");
    assert_eq!(statuses[4], 423, "the fifth wrong code locks: {statuses:?}");
    let stored = security_state(&app, &id).await;
    assert!(
        stored
            .mfa_locked_until
            .is_some_and(|t| t > latchkey::domain::now())
    );
}

#[tokio::test]
async fn f7_a_password_reset_lifts_no_administrators_lock() {
    let app = spawn_app().await;
    let user = register(&app, "lotte", "lotte@example.com").await;
    let user_id = user["id"].as_str().unwrap().to_owned();
    let admin = Api::new(&app, &admin_token(&app).await);
    let (status, body) = admin
        .post(
            &format!("/users/{user_id}/lock"),
            json!({"reason": "under investigation", "duration_minutes": 60}),
        )
        .await;
    assert_eq!(status, 200, "{body}");

    let (status, _) = post_json(
        &app,
        "/api/v1/auth/forgot-password",
        json!({"email": "lotte@example.com"}),
        None,
    )
    .await;
    assert_eq!(status, 200);
    let mail = eventually(10, "the reset mail", || {
        let found = mails_to(&app, "lotte@example.com")
            .into_iter()
            .find(|m| m.contains("reset-password"));
        async move { found }
    })
    .await;
    let link = link_in(&mail, "/account/reset-password");
    let token = link
        .query_pairs()
        .find(|(k, _)| k == "token")
        .unwrap()
        .1
        .into_owned();
    let new_password = "a brand new passphrase for lotte";
    let (status, body) = post_json(
        &app,
        "/api/v1/auth/reset-password",
        json!({"token": token, "new_password": new_password, "confirm_password": new_password}),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");

    let (status, body) = api_login(&app, "lotte", new_password, None).await;
    assert_eq!(status, 423, "the administrator's lock stands: {body}");
    let (_, view) = admin.get(&format!("/users/{user_id}")).await;
    assert_eq!(view["status"], "locked", "{view}");
    assert!(view["locked_until"].is_string(), "{view}");
}

#[tokio::test]
async fn f8_enrolling_a_second_factor_needs_the_password_on_the_api_and_the_page() {
    let app = spawn_app().await;
    register(&app, "olga", "olga@example.com").await;
    let stolen = token_of(&app, "olga", PASSWORD).await;

    let (status, body) = bearer(
        &app,
        Method::POST,
        "/api/v1/auth/mfa/setup",
        &stolen,
        Some(json!({})),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["details"][0]["field"], "password", "{body}");
    let (status, body) = bearer(
        &app,
        Method::POST,
        "/api/v1/auth/mfa/setup",
        &stolen,
        Some(json!({"password": "not her password"})),
    )
    .await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(app.count("mfa_challenges").await, 0, "no setup was started");

    // The page: a signed-in browser without the password gets no secret either.
    let browser = Browser::new(&app);
    let (_, _, html) = browser.visit(&app.url("/login")).await.page();
    let form = [
        ("csrf_token", input_value(&html, "csrf_token").unwrap()),
        ("username", "olga".to_owned()),
        ("password", PASSWORD.to_owned()),
    ];
    let landing = browser
        .follow(
            browser
                .http
                .post(app.url("/login"))
                .form(&form)
                .send()
                .await
                .unwrap(),
        )
        .await;
    let (url, _, account) = landing.page();
    assert_eq!(url.path(), "/account");
    let csrf = input_value(&account, "csrf_token").unwrap();
    let response = browser
        .http
        .post(app.url("/account/mfa/setup"))
        .form(&[("csrf_token", csrf.as_str())])
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let page = response.text().await.unwrap();
    assert!(
        !page.contains("otpauth://"),
        "no secret without the password"
    );
    assert!(status == 400 || status == 422, "{status}: {page}");
    assert_eq!(app.count("mfa_challenges").await, 0);

    // With the password it goes ahead, and turning it on mails the owner.
    let (status, setup) = bearer(
        &app,
        Method::POST,
        "/api/v1/auth/mfa/setup",
        &stolen,
        Some(json!({"password": PASSWORD})),
    )
    .await;
    assert_eq!(status, 200, "{setup}");
    let code = totp_now(setup["secret"].as_str().unwrap());
    let (status, body) = post_json(
        &app,
        "/api/v1/auth/mfa/verify-setup",
        json!({"setup_token": setup["setup_token"], "code": code}),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    eventually(10, "the notice mail", || {
        let found = mails_to(&app, "olga@example.com")
            .into_iter()
            .find(|m| m.to_lowercase().contains("two-step verification"));
        async move { found }
    })
    .await;
}

#[tokio::test]
async fn f9_no_username_names_another_accounts_address() {
    let app = spawn_app().await;
    let frank = register(&app, "frank", "frank@example.com").await;
    // Registration, admin creation and a username change are all refused.
    let (status, body) = post_json(
        &app,
        "/api/v1/auth/register",
        json!({"username": "frank@example.com", "email": "mallory@example.com", "password": PASSWORD}),
        None,
    )
    .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["details"][0]["field"], "username", "{body}");
    let admin = Api::new(&app, &admin_token(&app).await);
    let (status, body) = admin
        .post(
            "/users",
            json!({"username": "frank@example.com", "email": "mallory@example.com", "password": PASSWORD}),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    let mallory = register(&app, "mallory", "mallory@example.com").await;
    let (status, body) = admin
        .patch(
            &format!("/users/{}", mallory["id"].as_str().unwrap()),
            json!({"username": "frank@example.com"}),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    // An address as username is fine when it is the account's own (seed 000's habit).
    let (status, body) = post_json(
        &app,
        "/api/v1/auth/register",
        json!({"username": "nina@example.com", "email": "nina@example.com", "password": PASSWORD}),
        None,
    )
    .await;
    assert_eq!(status, 201, "{body}");

    // Frank's login by address is his, and so is his reset mail.
    let (status, body) = api_login(&app, "frank@example.com", PASSWORD, None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["user"]["id"], frank["id"]);
}

#[tokio::test]
async fn f13_unknown_and_known_accounts_answer_the_same_sequence() {
    let app = spawn_app().await;
    register(&app, "kate", "kate@example.com").await;
    let mut sequences = Vec::new();
    for login in ["kate", "ghost-who-never-was"] {
        let mut statuses = Vec::new();
        for _ in 0..7 {
            let (status, body) = api_login(&app, login, "wrong password", None).await;
            statuses.push((status, body["error"].as_str().unwrap_or("").to_owned()));
        }
        sequences.push(statuses);
    }
    assert_eq!(
        sequences[0], sequences[1],
        "a known and an unknown login look alike"
    );
    assert_eq!(sequences[0][4].0, 423, "{:?}", sequences[0]);
    let (status, _) = post_json(
        &app,
        "/api/v1/auth/forgot-password",
        json!({"email": "kate@example.com"}),
        None,
    )
    .await;
    let (unknown, _) = post_json(
        &app,
        "/api/v1/auth/forgot-password",
        json!({"email": "nobody@example.com"}),
        None,
    )
    .await;
    assert_eq!(status, unknown);
}

#[tokio::test]
async fn f13_an_attackers_failures_lock_the_attacker_not_the_owner() {
    let app = behind_proxy().await;
    register(&app, "owen", "owen@example.com").await;
    let attacker = Some("203.0.113.50");
    for _ in 0..6 {
        api_login(&app, "owen", "guess", attacker).await;
    }
    let (status, body) = api_login(&app, "owen", PASSWORD, attacker).await;
    assert_eq!(status, 423, "the attacker's address stays locked: {body}");
    // The owner, from another address, is not locked out.
    let (status, body) = api_login(&app, "owen", PASSWORD, Some("198.51.100.20")).await;
    assert_eq!(status, 200, "{body}");
    // Nor is the administrator, whose account anyone can name.
    for _ in 0..6 {
        api_login(&app, "admin", "guess", attacker).await;
    }
    let (status, body) = api_login(
        &app,
        "admin",
        crate::helpers::ADMIN_PASSWORD,
        Some("198.51.100.21"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn f13_a_password_and_a_second_factor_from_a_new_address_get_in_under_attack() {
    let app = behind_proxy().await;
    let id = app.create_user("mira", PASSWORD).await;
    let mfa = turn_on_mfa(&app, &id).await;
    // A spray from many addresses.
    for n in 1..=30 {
        let from = format!("203.0.113.{n}");
        for _ in 0..5 {
            api_login(&app, "mira", "guess", Some(&from)).await;
        }
    }
    let (status, challenge) = api_login(&app, "mira", PASSWORD, Some("198.51.100.99")).await;
    assert_eq!(status, 403, "{challenge}");
    let (status, body) = post_json(
        &app,
        "/api/v1/auth/mfa/verify",
        json!({"mfa_token": challenge["mfa_token"], "code": totp_now(&mfa.secret)}),
        Some("198.51.100.99"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn f13_under_a_spray_the_right_password_from_a_new_address_answers_like_a_wrong_one() {
    let app = behind_proxy().await;
    register(&app, "sven", "sven@example.com").await;
    let home = Some("198.51.100.7");
    let (status, body) = api_login(&app, "sven", PASSWORD, home).await;
    assert_eq!(status, 200, "{body}");
    // A spray: two guesses from each of 30 addresses (past `lockout_spray_threshold`).
    for n in 1..=30 {
        let from = format!("203.0.113.{n}");
        for _ in 0..2 {
            api_login(&app, "sven", "guess", Some(&from)).await;
        }
    }
    // The sprayer's right guess, from yet another address, looks like a wrong one.
    let (wrong_status, wrong) = api_login(&app, "sven", "guess", Some("203.0.113.200")).await;
    let (right_status, right) = api_login(&app, "sven", PASSWORD, Some("203.0.113.201")).await;
    assert_eq!(
        (wrong_status, right_status),
        (401, 401),
        "{wrong} / {right}"
    );
    assert_eq!(
        (&wrong["error"], &wrong["message"]),
        (&right["error"], &right["message"]),
        "the answer tells the right password from no wrong one"
    );
    assert!(right.get("access_token").is_none(), "{right}");
    // And keeps doing so at that address, until it locks like any guessing address.
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(
            api_login(&app, "sven", PASSWORD, Some("203.0.113.201"))
                .await
                .0,
        );
    }
    assert_eq!(statuses, [401, 401, 401, 423]);
    // The owner, from where they signed in before, is not affected.
    let (status, body) = api_login(&app, "sven", PASSWORD, home).await;
    assert_eq!(status, 200, "{body}");

    // Nor can a stolen token confirm guesses from new addresses: a sensitive change asks for
    // the password, and under the spray a right one from a new address counts as wrong.
    let token = body["access_token"].as_str().unwrap().to_owned();
    let confirm = |from: &'static str, password: &'static str| {
        let (app, token) = (&app, &token);
        async move {
            let response = app
                .client
                .post(app.url("/api/v1/auth/mfa/setup"))
                .bearer_auth(token)
                .header("X-Forwarded-For", from)
                .json(&json!({"password": password}))
                .send()
                .await
                .unwrap();
            response.status().as_u16()
        }
    };
    assert_eq!(confirm("203.0.113.210", "guess").await, 401);
    assert_eq!(confirm("203.0.113.211", PASSWORD).await, 401);
    assert_eq!(app.count("mfa_challenges").await, 0, "no setup was started");
    assert_eq!(confirm("198.51.100.7", PASSWORD).await, 200, "from home");
}

#[tokio::test]
async fn f13_wrong_passwords_sent_at_once_meet_the_lock_of_the_one_before() {
    let app = spawn_app().await;
    register(&app, "quinn", "quinn@example.com").await;
    // Fifteen guesses from one address at the same moment: each is judged on the failures
    // before it, not all on the same earlier count.
    let answers =
        futures_util::future::join_all((0..15).map(|_| api_login(&app, "quinn", "guess", None)))
            .await;
    let statuses = |wanted: u16| answers.iter().filter(|(s, _)| *s == wanted).count();
    assert_eq!((statuses(401), statuses(423)), (4, 11), "{answers:?}");
    // Right passwords sent at once from one address all get in (none is taken for a failure).
    let app = spawn_app().await;
    register(&app, "rhea", "rhea@example.com").await;
    let answers =
        futures_util::future::join_all((0..10).map(|_| api_login(&app, "rhea", PASSWORD, None)))
            .await;
    assert!(answers.iter().all(|(s, _)| *s == 200), "{answers:?}");
}

#[tokio::test]
async fn f13_an_ipv6_host_counts_as_its_64() {
    let app = behind_proxy().await;
    register(&app, "ursa", "ursa@example.com").await;
    for n in 1..=5 {
        let from = format!("2001:db8:1:2::{n:x}");
        api_login(&app, "ursa", "guess", Some(&from)).await;
    }
    let (status, body) = api_login(&app, "ursa", PASSWORD, Some("2001:db8:1:2:ffff::1")).await;
    assert_eq!(status, 423, "another address of the same /64: {body}");
    let (status, body) = api_login(&app, "ursa", PASSWORD, Some("2001:db8:1:3::1")).await;
    assert_eq!(status, 200, "the next /64 is someone else: {body}");
}

#[tokio::test]
async fn i3_the_login_limiter_reads_the_login_the_handler_uses() {
    let app = spawn_app().await;
    register(&app, "ivan", "ivan@example.com").await;
    for _ in 0..15 {
        let (status, _) = api_login(&app, "ivan", "guess", None).await;
        assert_ne!(status, 429);
    }
    let (status, _) = api_login(&app, "ivan", "guess", None).await;
    assert_eq!(status, 429);
    // The same login sent through another member, beside an empty username, is the same bucket.
    for body in [
        json!({"username": "", "email": "ivan", "password": "guess"}),
        json!({"username": "  ", "email": "IVAN", "password": "guess"}),
        json!({"email": "ivan", "password": "guess"}),
    ] {
        let (status, answer) = post_json(&app, "/api/v1/auth/login", body.clone(), None).await;
        assert_eq!(status, 429, "{body} → {answer}");
    }
}
