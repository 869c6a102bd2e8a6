//! Mail delivery through the outbox: SMTP, the mail directory, retries and restarts.

use std::time::Duration;

use actix_web::web::Data;
use base64::Engine;
use latchkey::config::{SmtpSettings, SmtpTls};
use latchkey::events::email::{self, EmailKind, EmailRequest};
use latchkey::events::outbox::{self, OutboxEntry, OutboxStatus};
use latchkey::startup::{AppState, Application};
use latchkey::store::{StoreError, write_transaction};

use crate::helpers::{
    TestApp, Tweak, eventually, outbox_passes, spawn_app_with, test_settings,
    two_more_outbox_passes,
};
use crate::smtp_sink::SmtpSink;

/// How long a test waits for a mail that should come.
const ARRIVAL: Duration = Duration::from_secs(15);

const LINK: &str = "https://id.example.com/reset?token=one-time-secret-123";

/// Points the app's SMTP at `port` on loopback (plain SMTP) and makes the outbox quick.
fn smtp_on(port: u16) -> impl FnOnce(&mut latchkey::config::Settings) {
    move |s| {
        s.mail.smtp = Some(SmtpSettings {
            host: "127.0.0.1".into(),
            port,
            tls: SmtpTls::None,
            username: None,
            password: None,
            timeout: Duration::from_secs(5),
        });
        quick_outbox(s);
    }
}

fn quick_outbox(s: &mut latchkey::config::Settings) {
    s.outbox.poll_interval = Duration::from_millis(100);
    s.outbox.backoff_base_secs = 1;
}

/// A port on which nothing listens (yet).
fn unused_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Queues a password-reset mail to `to`.
async fn queue_reset(state: &AppState, to: &'static str) {
    let (crypto, settings) = (state.crypto.clone(), state.settings.clone());
    state
        .store
        .run(move |conn| {
            email::queue(
                conn,
                &crypto,
                &settings,
                &EmailRequest {
                    to,
                    name: "Ada Lovelace",
                    kind: EmailKind::ResetPassword { link: LINK.into() },
                },
            )
        })
        .await
        .unwrap();
}

/// The outbox entry of the mail to `to` (payloads are sealed, so it opens each one).
async fn entry_for(state: &AppState, to: &str) -> Option<OutboxEntry> {
    let (crypto, to) = (state.crypto.clone(), to.to_owned());
    state
        .store
        .run(move |conn| {
            for entry in outbox::list(conn, outbox::EMAIL, None, 1000)? {
                let row = latchkey::store::outbox::find(conn, &entry.id)?;
                let payload = crypto.open(&row.payload, &row.id).unwrap();
                let payload: serde_json::Value = serde_json::from_slice(&payload).unwrap();
                if payload["to"] == to.as_str() {
                    return Ok(Some(entry));
                }
            }
            Ok(None)
        })
        .await
        .unwrap()
}

/// Waits until the mail to `to` satisfies `check`, and returns its entry.
async fn wait_for_entry(
    state: &AppState,
    to: &str,
    what: &str,
    check: impl Fn(&OutboxEntry) -> bool,
) -> OutboxEntry {
    eventually(20, what, || async {
        entry_for(state, to).await.filter(|e| check(e))
    })
    .await
}

/// A second Latchkey on the database of `first` (same URL, same key-encryption key), as
/// another instance or a restarted process would be.
async fn spawn_on_same_database(
    first: &TestApp,
    tweak: Tweak,
) -> (Data<AppState>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let kek = &first.cli_env["LATCHKEY_KEY_ENCRYPTION_KEY"];
    let mut settings = test_settings(&first.database_url, kek);
    settings.mail.directory = dir.path().join("mail");
    tweak(&mut settings);
    let app = Application::build(settings)
        .await
        .expect("the second server builds");
    let state = app.state();
    tokio::spawn(app.run_until_stopped());
    (state, dir)
}

#[tokio::test]
async fn queued_mail_arrives_over_smtp_with_text_and_html_parts() {
    // Arrange
    let sink = SmtpSink::start().await;
    let app = spawn_app_with(Box::new(smtp_on(sink.port()))).await;

    // Act
    queue_reset(&app.state, "ada@example.com").await;

    // Assert
    let mail = sink.wait_for("ada@example.com", ARRIVAL).await;
    assert_eq!(mail.from, "no-reply@localhost");
    assert_eq!(
        mail.header("From").as_deref(),
        Some(app.state.settings.mail.from.as_str())
    );
    let to = mail.header("To").unwrap();
    assert!(
        to.contains("<ada@example.com>") && to.contains("Ada Lovelace"),
        "{to}"
    );
    assert_eq!(mail.subject(), "Reset your password");
    assert!(
        mail.header("Content-Type")
            .unwrap()
            .starts_with("multipart/alternative"),
    );
    let text = mail.text_part().expect("a text part");
    assert!(text.contains(LINK), "{text}");
    assert!(text.contains("valid for 1 hour"), "{text}");
    let html = mail.html_part().expect("an HTML part");
    assert!(html.contains(&format!("href=\"{LINK}\"")), "{html}");
    assert!(
        html.contains(&format!(">{LINK}</a>")),
        "the link is shown as text: {html}"
    );

    let entry = wait_for_entry(&app.state, "ada@example.com", "a delivered row", |e| {
        e.status == OutboxStatus::Delivered
    })
    .await;
    assert_eq!(entry.attempts, 1);
    assert!(entry.delivered_at.is_some());
    assert_eq!(entry.last_error, None);
    assert_eq!(sink.count_to("ada@example.com"), 1);
}

#[tokio::test]
async fn mail_queued_while_smtp_is_down_arrives_once_it_is_up() {
    // Arrange: SMTP points at a port where nothing listens yet.
    let port = unused_port();
    let app = spawn_app_with(Box::new(move |s| {
        smtp_on(port)(s);
        s.outbox.backoff_max_secs = 2;
    }))
    .await;

    // Act
    queue_reset(&app.state, "ada@example.com").await;

    // Assert: the failure is recorded and the mail stays queued...
    let entry = wait_for_entry(&app.state, "ada@example.com", "a failed attempt", |e| {
        e.attempts >= 1
    })
    .await;
    assert_eq!(entry.status, OutboxStatus::Pending);
    let error = entry.last_error.expect("the failure is recorded");
    assert!(error.contains("SMTP"), "{error}");
    assert!(!error.contains("ada@example.com"), "{error}");

    // ...and delivered when the relay comes up, by the same running server.
    let sink = SmtpSink::start_on(port).await;
    let mail = sink.wait_for("ada@example.com", ARRIVAL).await;
    assert_eq!(mail.subject(), "Reset your password");
    wait_for_entry(&app.state, "ada@example.com", "a delivered row", |e| {
        e.status == OutboxStatus::Delivered
    })
    .await;
}

#[tokio::test]
async fn without_smtp_mail_is_written_to_the_mail_directory() {
    // Arrange
    let app = spawn_app_with(Box::new(quick_outbox)).await;
    let directory = app.state.settings.mail.directory.clone();

    // Act
    queue_reset(&app.state, "ada@example.com").await;

    // Assert
    let path = eventually(20, "an .eml file", || {
        let directory = directory.clone();
        async move {
            std::fs::read_dir(&directory)
                .ok()?
                .filter_map(Result::ok)
                .map(|e| e.path())
                .find(|p| p.extension().is_some_and(|x| x == "eml"))
        }
    })
    .await;
    let name = path.file_name().unwrap().to_str().unwrap().to_owned();
    let (unix_time, id) = name.trim_end_matches(".eml").split_once('-').unwrap();
    assert!(unix_time.parse::<i64>().is_ok(), "{name}");
    let entry = wait_for_entry(&app.state, "ada@example.com", "a delivered row", |e| {
        e.status == OutboxStatus::Delivered
    })
    .await;
    assert_eq!(id, entry.id);
    let mail = crate::smtp_sink::ReceivedMail::from_eml(&std::fs::read_to_string(&path).unwrap());
    assert_eq!(mail.subject(), "Reset your password");
    assert!(mail.header("To").unwrap().contains("ada@example.com"));
    assert!(mail.text_part().unwrap().contains(LINK));
    assert!(mail.html_part().unwrap().contains(LINK));
}

#[tokio::test]
async fn a_restart_loses_no_queued_mail() {
    // Arrange: the first process cannot reach its relay, and its worker goes quiet after its
    // first pass, as if it had stopped. That pass may run before the mail is queued or after
    // it; either it or this one tries the relay once, and fails.
    let first = spawn_app_with(Box::new(move |s| {
        smtp_on(unused_port())(s);
        s.outbox.poll_interval = Duration::from_secs(3600);
    }))
    .await;
    queue_reset(&first.state, "ada@example.com").await;
    assert_eq!(outbox::deliver_due(&first.state).await.unwrap(), 0);
    let entry = wait_for_entry(&first.state, "ada@example.com", "a failed attempt", |e| {
        e.attempts > 0
    })
    .await;
    assert_eq!((entry.status, entry.attempts), (OutboxStatus::Pending, 1));

    // Act: a new process on the same database, with a working relay.
    let sink = SmtpSink::start().await;
    let (second, _dir) = spawn_on_same_database(&first, Box::new(smtp_on(sink.port()))).await;

    // Assert
    let mail = sink.wait_for("ada@example.com", ARRIVAL).await;
    assert!(mail.text_part().unwrap().contains(LINK));
    let entry = wait_for_entry(&second, "ada@example.com", "a delivered row", |e| {
        e.status == OutboxStatus::Delivered
    })
    .await;
    assert_eq!(entry.attempts, 2);
}

#[tokio::test]
async fn two_instances_on_one_database_deliver_each_mail_once() {
    // Arrange
    let sink = SmtpSink::start().await;
    let first = spawn_app_with(Box::new(smtp_on(sink.port()))).await;
    let (second, _dir) = spawn_on_same_database(&first, Box::new(smtp_on(sink.port()))).await;
    let recipients: Vec<String> = (0..10).map(|i| format!("user{i}@example.com")).collect();

    // Act: ten mails, committed together so both workers find them due at once.
    {
        let (crypto, settings) = (first.state.crypto.clone(), first.state.settings.clone());
        let recipients = recipients.clone();
        first
            .state
            .store
            .run(move |conn| {
                write_transaction(conn, |conn| {
                    for to in &recipients {
                        email::queue(
                            conn,
                            &crypto,
                            &settings,
                            &EmailRequest {
                                to,
                                name: "",
                                kind: EmailKind::PasswordChanged,
                            },
                        )?;
                    }
                    Ok::<_, StoreError>(())
                })
            })
            .await
            .unwrap();
    }

    // Assert
    sink.wait_for_count(10, ARRIVAL).await;
    eventually(20, "ten delivered rows", || async {
        let entries = second
            .store
            .run(|conn| outbox::list(conn, outbox::EMAIL, None, 100))
            .await
            .unwrap();
        (entries.len() == 10 && entries.iter().all(|e| e.status == OutboxStatus::Delivered))
            .then_some(())
    })
    .await;
    // A duplicate in flight would have landed by the end of each worker's next passes.
    two_more_outbox_passes(|| outbox_passes(&first.state)).await;
    two_more_outbox_passes(|| outbox_passes(&second)).await;
    assert_eq!(sink.received().len(), 10);
    for to in &recipients {
        assert_eq!(sink.count_to(to), 1, "{to}");
    }
}

#[tokio::test]
async fn the_stored_row_shows_neither_the_link_nor_the_address() {
    // Arrange
    let app = spawn_app_with(Box::new(quick_outbox)).await;

    // Act
    queue_reset(&app.state, "ada@example.com").await;

    // Assert
    let entry = entry_for(&app.state, "ada@example.com").await.unwrap();
    let id = entry.id.clone();
    let row = app
        .state
        .store
        .run(move |conn| latchkey::store::outbox::find(conn, &id))
        .await
        .unwrap();
    let raw = format!(
        "{} {} {} {} {:?}",
        row.id, row.kind, row.payload, row.status, row.last_error
    );
    for secret in [
        LINK,
        "one-time-secret-123",
        "ada@example.com",
        "Ada Lovelace",
    ] {
        assert!(!raw.contains(secret), "the row shows {secret:?}: {raw}");
    }
    // Not even base64-encoded: the payload is sealed, not merely encoded.
    let sealed = row.payload.strip_prefix("v1.").expect("a sealed value");
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(sealed)
        .unwrap();
    assert!(!String::from_utf8_lossy(&bytes).contains("ada@example.com"));
    // It opens, with the row's id, to the mail.
    let opened = app.state.crypto.open(&row.payload, &row.id).unwrap();
    assert!(String::from_utf8(opened).unwrap().contains(LINK));
    assert!(app.state.crypto.open(&row.payload, "another-row").is_err());
}

#[tokio::test]
async fn a_mail_that_keeps_failing_ends_failed_after_max_attempts() {
    // Arrange
    let app = spawn_app_with(Box::new(|s| {
        smtp_on(unused_port())(s);
        s.outbox.max_attempts = 2;
        s.outbox.backoff_base_secs = 1;
    }))
    .await;

    // Act
    queue_reset(&app.state, "ada@example.com").await;

    // Assert
    let entry = wait_for_entry(&app.state, "ada@example.com", "a failed row", |e| {
        e.status == OutboxStatus::Failed
    })
    .await;
    assert_eq!(entry.attempts, 2);
    assert!(entry.delivered_at.is_none());
    let error = entry.last_error.expect("the last error is kept");
    assert!(error.contains("SMTP"), "{error}");
}

#[tokio::test]
async fn a_message_of_an_unknown_kind_is_marked_failed_with_the_reason() {
    // Arrange
    let app = spawn_app_with(Box::new(quick_outbox)).await;
    let crypto = app.state.crypto.clone();

    // Act
    let id = app
        .state
        .store
        .run(move |conn| {
            outbox::enqueue(
                conn,
                &crypto,
                "carrier-pigeon",
                None,
                &serde_json::json!({"to": "x"}),
            )
        })
        .await
        .unwrap();

    // Assert
    let entry = eventually(20, "a failed row", || async {
        app.state
            .store
            .run(|conn| outbox::list(conn, "carrier-pigeon", None, 10))
            .await
            .unwrap()
            .into_iter()
            .find(|e| e.id == id && e.status == OutboxStatus::Failed)
    })
    .await;
    assert_eq!(entry.attempts, 1);
    let error = entry.last_error.unwrap();
    assert!(
        error.contains("unknown message kind `carrier-pigeon`"),
        "{error}"
    );
}

#[tokio::test]
async fn a_rolled_back_transaction_queues_no_mail() {
    // Arrange
    let app = spawn_app_with(Box::new(quick_outbox)).await;
    let (crypto, settings) = (app.state.crypto.clone(), app.state.settings.clone());

    // Act: the change that would send the mail fails after queueing it.
    let result = app
        .state
        .store
        .run(move |conn| {
            write_transaction(conn, |conn| {
                email::queue(
                    conn,
                    &crypto,
                    &settings,
                    &EmailRequest {
                        to: "ada@example.com",
                        name: "Ada",
                        kind: EmailKind::PasswordChanged,
                    },
                )?;
                Err::<(), _>(StoreError::NotFound)
            })
        })
        .await;

    // Assert
    assert!(matches!(result, Err(StoreError::NotFound)));
    let entries = app
        .state
        .store
        .run(|conn| outbox::list(conn, outbox::EMAIL, None, 10))
        .await
        .unwrap();
    assert!(entries.is_empty(), "{entries:?}");
}

#[tokio::test]
async fn a_message_is_claimed_by_one_worker_at_a_time_and_fenced_by_its_lease() {
    use latchkey::store::outbox::{self as rows, OutboxRow};
    // Arrange: a row due only in the future, so the running worker leaves it alone; the
    // claims below pass that future time as their `now`.
    let app = spawn_app_with(Box::new(quick_outbox)).await;
    let due_at = latchkey::domain::now() + 10_000;
    let row = OutboxRow {
        id: "claim-test".into(),
        kind: "email".into(),
        payload: "v1.sealed".into(),
        status: rows::PENDING.into(),
        attempts: 0,
        next_attempt_at: due_at,
        claimed_until: None,
        last_error: None,
        created_at: due_at,
        updated_at: due_at,
        delivered_at: None,
        topic: None,
    };
    app.state
        .store
        .run(move |conn| rows::insert(conn, &row))
        .await
        .unwrap();

    // Act: eight workers claim it at the same moment.
    let claims = (0..8).map(|_| {
        app.state
            .store
            .run(move |conn| rows::claim(conn, "claim-test", due_at, due_at + 60))
    });
    let claims = futures_util::future::join_all(claims).await;

    // Assert: one wins; the lease holds until it expires, and fences the outcome.
    let won = claims.into_iter().filter(|c| c.as_ref().unwrap().is_some());
    assert_eq!(won.count(), 1);
    let state = &app.state;
    assert!(!claim_at(state, due_at + 30).await, "the lease still holds");
    assert!(claim_at(state, due_at + 61).await, "the lease expired");
    assert!(
        !deliver_under_lease(state, due_at + 60).await,
        "the first claim lost its lease, so it may not record an outcome"
    );
    assert!(deliver_under_lease(state, due_at + 121).await);
    assert!(!claim_at(state, due_at + 200).await, "delivered");
}

/// Claims `claim-test` at time `at` for 60 s; returns whether the claim won.
async fn claim_at(state: &AppState, at: i64) -> bool {
    state
        .store
        .run(move |conn| latchkey::store::outbox::claim(conn, "claim-test", at, at + 60))
        .await
        .unwrap()
        .is_some()
}

/// Marks `claim-test` delivered by the claim whose lease ends at `lease`.
async fn deliver_under_lease(state: &AppState, lease: i64) -> bool {
    state
        .store
        .run(move |conn| latchkey::store::outbox::mark_delivered(conn, "claim-test", lease, lease))
        .await
        .unwrap()
}
