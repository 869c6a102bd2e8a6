//! Scale-out on PostgreSQL (issue 8): two `latchkey serve` processes over one database, as
//! behind a load balancer. They share the database, the key-encryption key and the issuer,
//! and each is talked to on its own port. Nothing a request depends on may live in one
//! instance only: sessions and refresh tokens, revocations, signing keys, rate-limit counters
//! and the outbox.
//!
//! PostgreSQL only: on SQLite one file has one server.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hmac::{Hmac, Mac};
use reqwest::Method;
use serde_json::{Value, json};
use sha2::Sha256;

use crate::admin_support::claims;
use crate::flows::{Browser, param};
use crate::helpers::{ADMIN_PASSWORD, eventually, skip_without_postgres, two_more_outbox_passes};
use crate::processes::{Deployment, PASSWORD, Reply, Server};

/// A confidential client created with the CLI against the shared database: a resource server
/// that introspects. Returns its id and secret.
fn resource_server(deployment: &Deployment) -> (String, String) {
    let client = deployment.cli_json(&[
        "client",
        "create",
        "--name",
        "Resource server",
        "--grant-type",
        "client_credentials",
    ]);
    (
        client["client_id"].as_str().unwrap().to_owned(),
        client["client_secret"].as_str().unwrap().to_owned(),
    )
}

/// Where the confidential web client of these tests is sent back; the browser stops there.
const WEB_CALLBACK: &str = "https://rp.example/callback";

/// A confidential web client with the code and refresh grants, made with the CLI against the
/// shared database; returns its id and secret.
fn web_client(deployment: &Deployment) -> (String, String) {
    let client = deployment.cli_json(&[
        "client",
        "create",
        "--name",
        "Web app",
        "--redirect-uri",
        WEB_CALLBACK,
        "--grant-type",
        "authorization_code",
        "--grant-type",
        "refresh_token",
    ]);
    (
        client["client_id"].as_str().unwrap().to_owned(),
        client["client_secret"].as_str().unwrap().to_owned(),
    )
}

/// Rotates `refresh_token` on `server` as the client whose Basic credentials are `basic`.
async fn rotate(server: &Server, basic: Option<(&str, &str)>, refresh_token: &str) -> Reply {
    server
        .post_form(
            "/oauth/token",
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh_token),
            ],
            basic,
        )
        .await
}

/// RFC 6749 §2.3.1: form-encoded before Basic encoding.
fn form_encode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// RFC 7662 introspection on `server`, asserting the 200; returns the body.
async fn introspect(server: &Server, client: &(String, String), token: &str) -> Value {
    let (id, secret) = (form_encode(&client.0), form_encode(&client.1));
    let reply = server
        .post_form(
            "/oauth/introspect",
            &[("token", token)],
            Some((&id, &secret)),
        )
        .await;
    assert_eq!(reply.status, 200, "introspection: {}", reply.body);
    reply.body
}

/// `GET /api/v1/auth/me` with `token`; returns the status and the body.
async fn me(server: &Server, token: &str) -> Reply {
    server
        .call(Method::GET, "/api/v1/auth/me", Some(token), None)
        .await
}

/// The `kid` in a JWS header.
fn kid(token: &str) -> String {
    use base64::Engine;
    let header = token.split('.').next().unwrap();
    let header: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(header)
            .unwrap(),
    )
    .unwrap();
    header["kid"].as_str().unwrap().to_owned()
}

fn published_kids(jwks: &Value) -> HashSet<String> {
    jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect()
}

/// Registers `username` on `server` and logs in; returns the login body.
async fn account(server: &Server, username: &str) -> Value {
    let reply = server.register(username).await;
    assert_eq!(reply.status, 201, "register {username}: {}", reply.body);
    let reply = server.login(username, PASSWORD).await;
    assert_eq!(reply.status, 200, "login {username}: {}", reply.body);
    reply.body
}

fn text(body: &Value, member: &str) -> String {
    body[member]
        .as_str()
        .unwrap_or_else(|| panic!("no `{member}` in {body}"))
        .to_owned()
}

/// Refresh-token families of a user and how many of their tokens are still usable, read from
/// the shared database.
async fn families(deployment: &Deployment, user_id: &str) -> (i64, i64, i64) {
    #[derive(diesel::QueryableByName)]
    struct Counts {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        grants: i64,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        live_grants: i64,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        live_tokens: i64,
    }
    let store = deployment.store_at(deployment.database_url());
    let sql = format!(
        "SELECT \
           (SELECT COUNT(*) FROM grants WHERE user_id = '{user_id}') AS grants, \
           (SELECT COUNT(*) FROM grants WHERE user_id = '{user_id}' AND revoked_at IS NULL) \
             AS live_grants, \
           (SELECT COUNT(*) FROM refresh_tokens t JOIN grants g ON g.id = t.grant_id \
             WHERE g.user_id = '{user_id}' AND g.revoked_at IS NULL AND t.used_at IS NULL) \
             AS live_tokens"
    );
    let counts = store
        .run(move |conn| {
            use diesel::RunQueryDsl;
            Ok(diesel::sql_query(sql).get_result::<Counts>(conn)?)
        })
        .await
        .unwrap();
    (counts.grants, counts.live_grants, counts.live_tokens)
}

#[tokio::test]
async fn a_login_on_one_instance_refreshes_on_the_other_and_a_revocation_is_seen_at_once() {
    if skip_without_postgres("a_login_on_one_instance_refreshes_on_the_other") {
        return;
    }
    // Arrange: two instances, one issuer (A's URL), each reached on its own port.
    let mut deployment = Deployment::new();
    let a = deployment.start().await;
    let b = deployment.start().await;
    assert_eq!(b.issuer(), a.issuer());
    assert_ne!(b.address(), a.address());
    let discovery = b
        .call(Method::GET, "/.well-known/openid-configuration", None, None)
        .await;
    assert_eq!(discovery.body["issuer"], a.issuer());
    let rs = resource_server(&deployment);
    let registered = b.register("ann").await;
    assert_eq!(registered.status, 201, "{}", registered.body);

    // Act: log in on A, refresh on B (the JSON API's endpoint), then on A (the token endpoint).
    let login = a.login("ann", PASSWORD).await;
    assert_eq!(login.status, 200, "{}", login.body);
    let access = login.text("access_token");
    assert_eq!(claims(&access)["iss"], a.issuer());
    let on_b = me(&b, &access).await;
    assert_eq!(on_b.status, 200, "B accepts A's token: {}", on_b.body);
    assert_eq!(on_b.body["username"], "ann");
    let refreshed = b
        .call(
            Method::POST,
            "/api/v1/auth/refresh",
            None,
            Some(json!({"refresh_token": login.text("refresh_token")})),
        )
        .await;
    assert_eq!(refreshed.status, 200, "refresh on B: {}", refreshed.body);
    let again = a.refresh(&refreshed.text("refresh_token")).await;
    assert_eq!(again.status, 200, "refresh on A: {}", again.body);
    let (access, refresh) = (again.text("access_token"), again.text("refresh_token"));
    assert_eq!(me(&a, &access).await.status, 200);
    let active = introspect(&b, &rs, &access).await;
    assert_eq!(active["active"], true, "{active}");
    assert_eq!(active["iss"], a.issuer());
    assert_eq!(active["username"], "ann");
    assert_eq!(introspect(&b, &rs, &refresh).await["active"], true);

    // Revoke the access token on A (RFC 7009, by the client it was issued to): B knows at once.
    let revoked = a
        .post_form(
            "/oauth/revoke",
            &[("token", &access), ("client_id", "latchkey")],
            None,
        )
        .await;
    assert_eq!(revoked.status, 200, "{}", revoked.body);
    assert_eq!(
        introspect(&b, &rs, &access).await,
        json!({"active": false}),
        "B sees A's revocation without delay"
    );
    assert_eq!(me(&b, &access).await.status, 401);
    // A first-party access token can be renewed from itself, so revoking it ends its grant:
    // B refuses the refresh token at once too.
    let ended = b.refresh(&refresh).await;
    assert_eq!(ended.status, 400, "{}", ended.body);
    let again = a.login("ann", PASSWORD).await;
    assert_eq!(again.status, 200, "{}", again.body);
    let (access, refresh) = (again.text("access_token"), again.text("refresh_token"));

    // Log out on A with the refresh token: B refuses both tokens at once.
    let logout = a
        .call(
            Method::POST,
            "/api/v1/auth/logout",
            Some(&access),
            Some(json!({"refresh_token": refresh})),
        )
        .await;
    assert_eq!(logout.status, 200, "{}", logout.body);
    assert_eq!(introspect(&b, &rs, &access).await["active"], false);
    assert_eq!(introspect(&b, &rs, &refresh).await["active"], false);
    assert_eq!(me(&b, &access).await.status, 401);
    let refused = b.refresh(&refresh).await;
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert_eq!(refused.body["error"], "invalid_grant");
}

#[tokio::test]
async fn one_refresh_token_on_both_instances_at_once_within_the_grace_window_gets_one_successor() {
    if skip_without_postgres("one_refresh_token_on_both_instances_at_once") {
        return;
    }
    let mut deployment = Deployment::new().set("REFRESH_REUSE_GRACE_SECS", 10);
    let a = deployment.start().await;
    let b = deployment.start().await;
    let user_id = account(&a, "cora").await["user"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // The grace window is for a confidential client (it proves who retries); a web client
    // signs cora in through A's pages and gets its first refresh token from the code.
    let (client_id, secret) = web_client(&deployment);
    let browser = Browser::at(&a.address());
    let mut authorize = url::Url::parse(&a.url("/oauth/authorize")).unwrap();
    authorize
        .query_pairs_mut()
        .append_pair("client_id", &client_id)
        .append_pair("redirect_uri", WEB_CALLBACK)
        .append_pair("response_type", "code")
        .append_pair("scope", "openid offline_access");
    let callback = browser
        .authorize(authorize.as_str(), "cora", PASSWORD)
        .await
        .left();
    let code = param(&callback, "code").unwrap_or_else(|| panic!("no code in {callback}"));
    let basic = (form_encode(&client_id), form_encode(&secret));
    let basic = Some((basic.0.as_str(), basic.1.as_str()));
    let exchanged = b
        .post_form(
            "/oauth/token",
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", WEB_CALLBACK),
            ],
            basic,
        )
        .await;
    assert_eq!(exchanged.status, 200, "{}", exchanged.body);
    let mut refresh = exchanged.text("refresh_token");
    for round in 0..20 {
        // Act: the same token to both instances at the same moment.
        let (on_a, on_b) = tokio::join!(rotate(&a, basic, &refresh), rotate(&b, basic, &refresh));

        // Assert: a concurrent retry inside the grace window is answered with the winner's
        // successor (two 200s, one successor); a refusal would have revoked the family.
        assert_eq!(
            (on_a.status, on_b.status),
            (200, 200),
            "round {round}: A {} / B {}",
            on_a.body,
            on_b.body
        );
        let successor = on_a.text("refresh_token");
        assert_eq!(
            successor,
            on_b.text("refresh_token"),
            "round {round}: two successors, two families"
        );
        assert_ne!(successor, refresh);
        refresh = successor;
    }

    // The family stays usable, on either instance, and there is only one besides the API
    // login's.
    let next = rotate(&b, basic, &refresh).await;
    assert_eq!(next.status, 200, "{}", next.body);
    let last = rotate(&a, basic, &next.text("refresh_token")).await;
    assert_eq!(last.status, 200, "{}", last.body);
    let rs = resource_server(&deployment);
    let active = introspect(&b, &rs, &last.text("access_token")).await;
    assert_eq!(active["active"], true, "{active}");
    assert_eq!(active["client_id"], client_id.as_str(), "{active}");
    assert_eq!(
        families(&deployment, &user_id).await,
        (2, 2, 2),
        "the API login's grant and the client's, each live with one usable refresh token"
    );
}

#[tokio::test]
async fn one_refresh_token_on_both_instances_at_once_without_a_grace_window_has_one_winner() {
    if skip_without_postgres("one_refresh_token_on_both_instances_at_once_without_a_grace_window") {
        return;
    }
    let mut deployment = Deployment::new()
        .set("REFRESH_REUSE_GRACE_SECS", 0)
        .set("RATE_LIMITS__LOGIN__LIMIT", 1000);
    let a = deployment.start().await;
    let b = deployment.start().await;
    let login = account(&b, "dora").await;
    let user_id = login["user"]["id"].as_str().unwrap().to_owned();

    for round in 0..20 {
        // A fresh family each round: the loser's reuse revokes the family it belongs to.
        let login = if round % 2 == 0 { &a } else { &b }
            .login("dora", PASSWORD)
            .await;
        assert_eq!(login.status, 200, "{}", login.body);
        let refresh = login.text("refresh_token");

        let (on_a, on_b) = tokio::join!(a.refresh(&refresh), b.refresh(&refresh));

        // Exactly one winner; the other presentation is a reuse (RFC 9700 §4.14.2).
        let (winner, loser) = match (on_a.status, on_b.status) {
            (200, 400) => (on_a, on_b),
            (400, 200) => (on_b, on_a),
            other => panic!(
                "round {round}: {other:?}, A {} / B {}",
                on_a.body, on_b.body
            ),
        };
        assert_eq!(loser.body["error"], "invalid_grant", "round {round}");
        // The reuse revoked the whole family, the winner's successor included: no second
        // family lives on.
        let successor = winner.text("refresh_token");
        let after = a.refresh(&successor).await;
        assert_eq!(
            (after.status, after.body["error"].as_str()),
            (400, Some("invalid_grant")),
            "round {round}: the winner's successor outlived a detected reuse"
        );
    }
    let (grants, live_grants, live_tokens) = families(&deployment, &user_id).await;
    assert_eq!(grants, 21, "one grant per login");
    assert_eq!(
        (live_grants, live_tokens),
        (1, 1),
        "only the first login's family is live"
    );
}

/// Rotates `refresh` on `server` until the access token it gets is signed with `wanted`
/// (the instance has reloaded its keys); returns that access token.
async fn refresh_until_signed_by(server: &Server, refresh: &mut String, wanted: &str) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let reply = server.refresh(refresh).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        *refresh = reply.text("refresh_token");
        let access = reply.text("access_token");
        if kid(&access) == wanted {
            return access;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{} still signs with {}, not {wanted}",
            server.address(),
            kid(&access)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_key_rotated_while_the_instances_run_is_published_and_trusted_by_both() {
    if skip_without_postgres("a_key_rotated_while_the_instances_run") {
        return;
    }
    let mut deployment = Deployment::new();
    let a = deployment.start().await;
    let b = deployment.start().await;
    let login = account(&a, "kim").await;
    let old_access = text(&login, "access_token");
    let mut refresh = text(&login, "refresh_token");
    let old_kid = kid(&old_access);

    // Act: rotate through the CLI against the shared database while both instances run.
    let rotated = deployment.cli_json(&["keys", "rotate"]);
    let es256 = rotated["rotated"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["alg"] == "ES256")
        .unwrap_or_else(|| panic!("no ES256 rotation in {rotated}"))
        .clone();
    assert_eq!(es256["retired"], old_kid.as_str(), "{es256}");
    let activated = es256["activated"].as_str().unwrap().to_owned();
    let next = es256["next"].as_str().unwrap().to_owned();

    // Assert: B publishes the new next key (and keeps the others) within a few key-refresh
    // intervals (1 s).
    eventually(15, "B's JWK Set to publish the new next key", || async {
        let jwks = b.call(Method::GET, "/oauth/jwks", None, None).await.body;
        let kids = published_kids(&jwks);
        let all = [&next, &activated, &old_kid]
            .iter()
            .all(|k| kids.contains(*k));
        all.then_some(())
    })
    .await;
    // A signs with the activated key once it reloads, and B trusts those tokens.
    let from_a = refresh_until_signed_by(&a, &mut refresh, &activated).await;
    let on_b = me(&b, &from_a).await;
    assert_eq!(on_b.status, 200, "B verifies A's new key: {}", on_b.body);
    let rs = resource_server(&deployment);
    assert_eq!(introspect(&b, &rs, &from_a).await["active"], true);
    // B signs with it too, and A trusts B's tokens.
    let from_b = refresh_until_signed_by(&b, &mut refresh, &activated).await;
    assert_eq!(me(&a, &from_b).await.status, 200);
    // A token signed before the rotation still verifies on both: the retired key stays
    // published until its tokens have expired.
    assert_eq!(me(&b, &old_access).await.status, 200);
    assert_eq!(me(&a, &old_access).await.status, 200);
}

#[tokio::test]
async fn a_login_rate_limit_counts_attempts_on_both_instances() {
    if skip_without_postgres("a_login_rate_limit_counts_attempts_on_both_instances") {
        return;
    }
    // A day-long window, so that no window boundary falls inside the test.
    let mut deployment = Deployment::new()
        .set("RATE_LIMITS__LOGIN__LIMIT", 4)
        .set("RATE_LIMITS__LOGIN__WINDOW_SECS", 86_400);
    let a = deployment.start().await;
    let b = deployment.start().await;
    let registered = a.register("rita").await;
    assert_eq!(registered.status, 201, "{}", registered.body);

    // Act: two failed attempts on A, two on B, for one username from one address.
    let mut remaining = Vec::new();
    for server in [&a, &a, &b, &b] {
        let reply = server.login("rita", "not her password").await;
        assert_eq!(reply.status, 401, "{}", reply.body);
        assert_eq!(reply.header("x-ratelimit-limit"), Some("4"));
        remaining.push(reply.header("x-ratelimit-remaining").unwrap().to_owned());
    }

    // Assert: one counter for both; the fifth attempt is refused on either instance, even
    // with the right password.
    assert_eq!(remaining, ["3", "2", "1", "0"], "one shared counter");
    for server in [&a, &b] {
        let refused = server.login("rita", PASSWORD).await;
        assert_eq!(refused.status, 429, "{}", refused.body);
        assert_eq!(refused.body["error"], "too_many_login_attempts");
        assert_eq!(refused.body["code"], 429);
        let retry_after: u64 = refused.header("retry-after").unwrap().parse().unwrap();
        assert!((1..=86_400).contains(&retry_after));
        assert_eq!(
            refused.body["request_id"].as_str(),
            refused.header("x-request-id")
        );
    }
    // The key is the address and the username: another account is not affected.
    assert_eq!(b.login("admin", ADMIN_PASSWORD).await.status, 200);
}

/// One webhook delivery the receiver accepted.
#[derive(Debug, Clone)]
struct Delivery {
    id: String,
    body: Value,
}

#[derive(Default)]
struct Inbox {
    secret: String,
    deliveries: Vec<Delivery>,
    bad_signatures: usize,
}

/// A subscriber's endpoint that verifies each signature and records each delivery.
struct Receiver {
    port: u16,
    inbox: Arc<Mutex<Inbox>>,
}

impl Receiver {
    fn start() -> Self {
        let listener = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
        let port = listener.local_addr().unwrap().port();
        let inbox: Arc<Mutex<Inbox>> = Arc::default();
        let shared = inbox.clone();
        let server = actix_web::HttpServer::new(move || {
            let shared = shared.clone();
            actix_web::App::new().route(
                "/hook",
                actix_web::web::post().to(
                    move |request: actix_web::HttpRequest, body: actix_web::web::Bytes| {
                        let shared = shared.clone();
                        async move {
                            let header = |name: &str| {
                                request
                                    .headers()
                                    .get(name)
                                    .and_then(|v| v.to_str().ok())
                                    .unwrap_or_default()
                                    .to_owned()
                            };
                            let mut inbox = shared.lock().unwrap();
                            if !verify(&inbox.secret, &header("X-Latchkey-Signature"), &body) {
                                inbox.bad_signatures += 1;
                                return actix_web::HttpResponse::Unauthorized().finish();
                            }
                            inbox.deliveries.push(Delivery {
                                id: header("X-Latchkey-Delivery"),
                                body: serde_json::from_slice(&body).unwrap_or(Value::Null),
                            });
                            actix_web::HttpResponse::NoContent().finish()
                        }
                    },
                ),
            )
        })
        .listen(listener)
        .unwrap()
        .workers(1)
        .run();
        tokio::spawn(server);
        Self { port, inbox }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/hook", self.port)
    }

    fn deliveries(&self) -> Vec<Delivery> {
        self.inbox.lock().unwrap().deliveries.clone()
    }
}

/// What a subscriber checks: HMAC-SHA256(secret, t + "." + body) in `v1`.
fn verify(secret: &str, header: &str, body: &[u8]) -> bool {
    let mut t = None;
    let mut v1 = None;
    for part in header.split(',') {
        match part.split_once('=') {
            Some(("t", value)) => t = Some(value.to_owned()),
            Some(("v1", value)) => v1 = Some(value.to_owned()),
            _ => {}
        }
    }
    let (Some(t), Some(v1)) = (t, v1) else {
        return false;
    };
    let Ok(mut mac) = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes()) else {
        return false;
    };
    mac.update(format!("{t}.").as_bytes());
    mac.update(body);
    let expected: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    expected == v1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outbox_message_is_delivered_once_although_both_instances_poll() {
    if skip_without_postgres("an_outbox_message_is_delivered_once_although_both_instances_poll") {
        return;
    }
    // Arrange: both instances poll the outbox every 100 ms.
    let mut deployment = Deployment::new();
    let a = deployment.start().await;
    let b = deployment.start().await;
    let receiver = Receiver::start();
    let admin = a.admin_token().await;
    let created = b
        .call(
            Method::POST,
            "/api/v1/webhooks",
            Some(&admin),
            Some(json!({"url": receiver.url(), "events": ["user.created"]})),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let webhook_id = created.text("id");
    receiver.inbox.lock().unwrap().secret = created.text("secret");

    // Act: registrations through both instances at once.
    let registrations = (0..16).map(|i| {
        let server = if i % 2 == 0 { &a } else { &b };
        async move {
            let reply = server.register(&format!("hooked{i}")).await;
            assert_eq!(reply.status, 201, "{}", reply.body);
            reply.text("id")
        }
    });
    let user_ids: HashSet<String> = futures_util::future::join_all(registrations)
        .await
        .into_iter()
        .collect();
    assert_eq!(user_ids.len(), 16);

    // Assert: every event arrives, and each once.
    eventually(30, "16 deliveries recorded as delivered", || async {
        let (status, body) = {
            let reply = a
                .call(
                    Method::GET,
                    &format!("/api/v1/webhooks/{webhook_id}/deliveries?limit=100"),
                    Some(&admin),
                    None,
                )
                .await;
            (reply.status, reply.body)
        };
        assert_eq!(status, 200, "{body}");
        let deliveries = body["deliveries"].as_array().unwrap();
        let done = deliveries.len() == 16 && deliveries.iter().all(|d| d["status"] == "delivered");
        done.then_some(())
    })
    .await;
    // A second copy in flight would have landed by the end of each poller's next passes.
    two_more_outbox_passes(|| a.outbox_passes()).await;
    two_more_outbox_passes(|| b.outbox_passes()).await;
    let received = receiver.deliveries();
    assert_eq!(receiver.inbox.lock().unwrap().bad_signatures, 0);
    let mut by_delivery: HashMap<&str, usize> = HashMap::new();
    let mut by_user: HashMap<String, usize> = HashMap::new();
    for delivery in &received {
        *by_delivery.entry(delivery.id.as_str()).or_default() += 1;
        assert_eq!(delivery.body["event"], "user.created");
        let user = delivery.body["data"]["user"]["id"]
            .as_str()
            .unwrap_or_default();
        *by_user.entry(user.to_owned()).or_default() += 1;
    }
    assert_eq!(received.len(), 16, "{by_user:?}");
    assert!(by_delivery.values().all(|n| *n == 1), "{by_delivery:?}");
    assert_eq!(by_user.keys().cloned().collect::<HashSet<_>>(), user_ids);
    assert!(by_user.values().all(|n| *n == 1), "{by_user:?}");
    let reply = b
        .call(
            Method::GET,
            &format!("/api/v1/webhooks/{webhook_id}/deliveries?limit=100"),
            Some(&admin),
            None,
        )
        .await;
    for d in reply.body["deliveries"].as_array().unwrap() {
        assert_eq!(
            d["attempts"], 1,
            "delivered in one attempt, by one instance: {d}"
        );
        assert!(by_delivery.contains_key(d["id"].as_str().unwrap()), "{d}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_started_together_on_an_empty_database_both_serve() {
    if skip_without_postgres("two_instances_started_together_on_an_empty_database_both_serve") {
        return;
    }
    // Behind a load balancer: the issuer is the balancer's URL, no instance's own.
    let issuer = "http://login.scale-out.test";
    let mut deployment = Deployment::new().with_issuer(issuer);

    // Act: both start at once on an empty database (migrations, keys, bootstrap).
    let (pending_a, pending_b) = (deployment.spawn(), deployment.spawn());
    let (a, b) = tokio::join!(pending_a.ready(), pending_b.ready());

    // Assert: one set of keys (one active and one next per algorithm), one admin account,
    // and each instance serves the other's tokens under the shared issuer.
    let keys = deployment.cli_json(&["keys", "list"]);
    let mut by_status: HashMap<(String, String), usize> = HashMap::new();
    for key in keys.as_array().unwrap() {
        let alg = key["alg"].as_str().unwrap().to_owned();
        let status = key["status"].as_str().unwrap().to_owned();
        *by_status.entry((alg, status)).or_default() += 1;
    }
    assert_eq!(by_status.len(), 8, "{keys}");
    assert!(by_status.values().all(|n| *n == 1), "{keys}");
    let admin = a.admin_token().await;
    assert_eq!(claims(&admin)["iss"], issuer);
    let users = b
        .call(Method::GET, "/api/v1/users?limit=100", Some(&admin), None)
        .await;
    assert_eq!(users.status, 200, "{}", users.body);
    assert_eq!(users.body["pagination"]["total"], 1, "{}", users.body);
    let from_b = b.admin_token().await;
    assert_eq!(me(&a, &from_b).await.status, 200);
}
