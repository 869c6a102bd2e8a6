//! One registration that stopped all mail, webhooks and back-channel logout (F2): control
//! characters in names are refused at the door, and a message built from older data neither
//! kills the outbox worker nor holds up the messages after it.

use std::time::Duration;

use reqwest::Method;
use serde_json::json;

use super::{PASSWORD, bearer, mails_to, post_json, register, token_of};
use crate::admin_support::{Api, admin_token};
use crate::helpers::{TestApp, eventually, spawn_app_with};

fn quick_outbox() -> crate::helpers::Tweak {
    Box::new(|s| {
        s.outbox.poll_interval = Duration::from_millis(100);
        s.outbox.backoff_base_secs = 1;
        s.outbox.backoff_max_secs = 1;
    })
}

#[tokio::test]
async fn f2_control_characters_in_names_are_refused_at_every_door() {
    let app = spawn_app_with(quick_outbox()).await;
    for (field, value) in [
        ("first_name", "a\nb"),
        ("last_name", "Smith\r\nBcc: x@example.com"),
        ("first_name", "bell\u{7}"),
        ("last_name", "tab\there"),
        ("first_name", "line\u{2028}sep"),
    ] {
        let (status, body) = post_json(
            &app,
            "/api/v1/auth/register",
            json!({"username": "ctl", "email": "ctl@example.com", "password": PASSWORD, field: value}),
            None,
        )
        .await;
        assert_eq!(status, 422, "{field}={value:?}: {body}");
        assert_eq!(body["details"][0]["field"], field, "{body}");
    }
    assert_eq!(app.count("users").await, 1, "only the bootstrap admin");

    register(&app, "clean", "clean@example.com").await;
    let token = token_of(&app, "clean", PASSWORD).await;
    for (path, method, body, field) in [
        (
            "/api/v1/me",
            Method::PATCH,
            json!({"name": "two\nlines"}),
            "name",
        ),
        (
            "/api/v1/users/profile",
            Method::PUT,
            json!({"first_name": "x\u{0}y"}),
            "",
        ),
        (
            "/api/v1/users/profile",
            Method::PUT,
            json!({"first_name": "x\u{1b}[31m"}),
            "first_name",
        ),
    ] {
        let (status, answer) = bearer(&app, method, path, &token, Some(body.clone())).await;
        assert!(
            status == 422 || status == 400,
            "{path} {body}: {status} {answer}"
        );
        if !field.is_empty() {
            assert_eq!(answer["details"][0]["field"], field, "{answer}");
        }
    }
    let admin = Api::new(&app, &admin_token(&app).await);
    for (path, body, field) in [
        (
            "/users",
            json!({"username": "made", "email": "made@example.com", "first_name": "a\nb"}),
            "first_name",
        ),
        (
            "/admin/clients",
            json!({"client_name": "Evil\r\nApp", "redirect_uris": ["https://rp.example/cb"]}),
            "client_name",
        ),
        (
            "/admin/roles",
            json!({"name": "role-x", "description": "one\ntwo", "permissions": []}),
            "description",
        ),
        (
            "/admin/api-keys",
            json!({"name": "key\u{7}", "scopes": ["users:read"]}),
            "name",
        ),
    ] {
        let (status, answer) = admin.post(path, body.clone()).await;
        assert_eq!(status, 422, "{path} {body}: {answer}");
        assert_eq!(answer["details"][0]["field"], field, "{answer}");
    }
    // An administrator's reason, for one user or for many: it lands on the account, in the
    // audit log and in the `user.locked` webhook.
    let (_, me) = bearer(&app, Method::GET, "/api/v1/auth/me", &token, None).await;
    let clean = me["id"].as_str().unwrap().to_owned();
    let audit_before = app.count("audit_logs").await;
    for (path, body) in [
        (
            format!("/users/{clean}/lock"),
            json!({"reason": "x\r\nInjected: yes"}),
        ),
        (
            "/users/bulk-actions".to_owned(),
            json!({"action": "lock", "user_ids": [clean], "reason": "x\r\nInjected\u{1b}[31m"}),
        ),
        (
            "/users/bulk-actions".to_owned(),
            json!({"action": "deactivate", "user_ids": [clean], "reason": "two\nlines"}),
        ),
    ] {
        let (status, answer) = admin.post(&path, body.clone()).await;
        assert_eq!(status, 422, "{path} {body}: {answer}");
        assert_eq!(answer["details"][0]["field"], "reason", "{answer}");
    }
    let (_, view) = admin.get(&format!("/users/{clean}")).await;
    assert_eq!(view["status"], "active", "{view}");
    assert_eq!(
        app.count("audit_logs").await,
        audit_before,
        "nothing written"
    );
}

/// Writes a user straight into the store with `first_name`, as data from before the door
/// refused control characters would be.
async fn legacy_user(app: &TestApp, username: &str, first_name: &str) {
    use latchkey::accounts::passwords::hash_blocking;
    use latchkey::accounts::users::{NewUser, create_user};
    use latchkey::domain::{Email, Username};
    let (name, email) = (
        Username::parse(username).unwrap(),
        Email::parse(&format!("{username}@example.com")).unwrap(),
    );
    let hash = hash_blocking(PASSWORD).unwrap();
    let first = first_name.to_owned();
    app.state
        .store
        .run(move |conn| {
            let created = create_user(
                conn,
                NewUser {
                    username: name,
                    email,
                    password_hash: Some(hash),
                    roles: vec!["user".into()],
                    email_verified: true,
                },
            )
            .unwrap();
            latchkey::store::users::update_profile(
                conn,
                &created.id,
                &latchkey::store::users::ProfileChanges {
                    first_name: Some(Some(first)),
                    ..Default::default()
                },
            )
        })
        .await
        .unwrap();
}

#[tokio::test]
async fn f2_a_message_from_older_data_neither_kills_the_worker_nor_blocks_the_next() {
    let app = spawn_app_with(quick_outbox()).await;
    legacy_user(&app, "oldtimer", "a\nb").await;
    let queued = app.count("outbox").await;
    let (status, _) = post_json(
        &app,
        "/api/v1/auth/forgot-password",
        json!({"email": "oldtimer@example.com"}),
        None,
    )
    .await;
    assert_eq!(status, 200);
    // The reset is queued after the answer: wait until it is.
    eventually(10, "the reset mail queued", || {
        let app = &app;
        async move { (app.count("outbox").await > queued).then_some(()) }
    })
    .await;
    // The mail after it still goes out, and the one after that.
    for n in 1..=2 {
        register(&app, &format!("later{n}"), &format!("later{n}@example.com")).await;
        eventually(15, "the next mail", || {
            let found = mails_to(&app, &format!("later{n}@example.com")).pop();
            async move { found }
        })
        .await;
    }
    // The older data's mail went out too, its name cleaned of the line break; or it was
    // marked failed with a reason (a pass may still be on it when the later ones are out).
    let finished = |(status, error): &(String, Option<String>)| {
        status == "delivered" || (status == "failed" && error.is_some())
    };
    let outbox = eventually(15, "every message delivered or failed", || {
        let app = &app;
        async move {
            use diesel::prelude::*;
            use latchkey::store::schema::outbox;
            let rows: Vec<(String, Option<String>)> = app
                .state
                .store
                .run(|conn| {
                    Ok(outbox::table
                        .select((outbox::status, outbox::last_error))
                        .load(conn)?)
                })
                .await
                .unwrap();
            rows.iter().all(|r| r.0 != "pending").then_some(rows)
        }
    })
    .await;
    assert!(outbox.iter().all(finished), "{outbox:?}");
    if let Some(mail) = mails_to(&app, "oldtimer@example.com").pop() {
        let to = mail.lines().find(|l| l.starts_with("To:")).unwrap();
        assert!(!to.contains('\r'), "{to}");
        assert!(
            mail.lines().all(|l| !l.starts_with("b <")),
            "no header injected: {mail}"
        );
    }
    // The workers report healthy, and the metric says none stopped.
    let detailed = app
        .get_json_as("/health/detailed", &admin_token(&app).await)
        .await;
    assert_eq!(
        detailed["checks"]["workers"]["status"], "healthy",
        "{detailed}"
    );
    let metrics = app.state.metrics.render(&app.state).await;
    assert!(
        metrics.contains("latchkey_worker_panics_total"),
        "{metrics}"
    );
    assert!(
        metrics
            .lines()
            .filter(|l| l.starts_with("latchkey_worker_up"))
            .all(|l| l.ends_with(" 1")),
        "{metrics}"
    );
}
