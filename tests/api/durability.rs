//! Crashes and outages (issue 8), with a real `latchkey serve` process: killed with SIGKILL in
//! the middle of a write-heavy load (on SQLite and on PostgreSQL), and cut off from PostgreSQL
//! while it serves (PostgreSQL only, through a [`Relay`] in front of the test's database).

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::json;

use crate::helpers::{eventually, fresh_database_url, on_postgres, skip_without_postgres};
use crate::processes::{
    Deployment, FIRST_PARTY_CLIENT, PASSWORD, Relay, Reply, Server, client_with_timeout,
    try_read_reply,
};

/// What the load was told: the acknowledged writes, and what else happened.
#[derive(Default)]
struct Ledger {
    /// Registrations answered 201: (user id, username).
    registered: Vec<(String, String)>,
    /// The latest refresh token each chain was given with a 200.
    chains: Vec<String>,
    /// Refreshes answered 200.
    refreshes: usize,
    /// Requests without an answer: in flight when the process died.
    unanswered: usize,
    /// The chains whose last refresh got no answer: it may have committed, using the token.
    cut_chains: Vec<usize>,
    /// Answers that were neither the success expected nor a lost connection.
    unexpected: Vec<String>,
}

/// Registers users one after the other until the server stops answering.
async fn register_until_cut(
    http: reqwest::Client,
    base: String,
    task: usize,
    ledger: Arc<Mutex<Ledger>>,
) {
    for n in 0.. {
        let username = format!("load{task}n{n}");
        let request = http
            .post(format!("{base}/api/v1/auth/register"))
            .json(&json!({
                "username": username,
                "email": format!("{username}@example.com"),
                "password": PASSWORD,
            }));
        let reply = try_read_reply(request).await;
        let mut ledger = ledger.lock().unwrap();
        match reply {
            Ok(reply) if reply.status == 201 => {
                ledger.registered.push((reply.text("id"), username));
            }
            Ok(reply) => {
                let seen = format!("register: {} {}", reply.status, reply.body);
                ledger.unexpected.push(seen);
                return;
            }
            Err(_) => {
                ledger.unanswered += 1;
                return;
            }
        }
    }
}

/// Rotates one refresh token chain until the server stops answering.
async fn refresh_until_cut(
    http: reqwest::Client,
    base: String,
    chain: usize,
    ledger: Arc<Mutex<Ledger>>,
) {
    loop {
        let current = ledger.lock().unwrap().chains[chain].clone();
        let request = http.post(format!("{base}/oauth/token")).form(&[
            ("grant_type", "refresh_token"),
            ("client_id", FIRST_PARTY_CLIENT),
            ("refresh_token", &current),
        ]);
        let reply = try_read_reply(request).await;
        let mut ledger = ledger.lock().unwrap();
        match reply {
            Ok(reply) if reply.status == 200 => {
                ledger.chains[chain] = reply.text("refresh_token");
                ledger.refreshes += 1;
            }
            Ok(reply) => {
                let seen = format!("refresh: {} {}", reply.status, reply.body);
                ledger.unexpected.push(seen);
                return;
            }
            Err(_) => {
                ledger.unanswered += 1;
                ledger.cut_chains.push(chain);
                return;
            }
        }
    }
}

#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

/// The `n` of a `SELECT COUNT(*) AS n ...` on the deployment's database.
async fn count(deployment: &Deployment, sql: &'static str) -> i64 {
    let store = deployment.store_at(deployment.database_url());
    store
        .run(move |conn| {
            use diesel::RunQueryDsl;
            Ok(diesel::sql_query(sql).get_result::<Count>(conn)?.n)
        })
        .await
        .unwrap()
}

/// Rows that break an invariant of the schema, by check.
async fn inconsistencies(deployment: &Deployment) -> Vec<(String, i64)> {
    #[derive(diesel::QueryableByName)]
    struct Integrity {
        #[diesel(sql_type = diesel::sql_types::Text)]
        integrity_check: String,
    }
    let checks = [
        (
            "users without user_security",
            "SELECT COUNT(*) AS n FROM users u \
             LEFT JOIN user_security s ON s.user_id = u.id WHERE s.user_id IS NULL",
        ),
        (
            "user_security without users",
            "SELECT COUNT(*) AS n FROM user_security s \
             LEFT JOIN users u ON u.id = s.user_id WHERE u.id IS NULL",
        ),
        (
            "users without a role",
            "SELECT COUNT(*) AS n FROM users u \
             WHERE NOT EXISTS (SELECT 1 FROM user_roles r WHERE r.user_id = u.id)",
        ),
        (
            "user_roles without users",
            "SELECT COUNT(*) AS n FROM user_roles r \
             LEFT JOIN users u ON u.id = r.user_id WHERE u.id IS NULL",
        ),
        (
            "grants without users",
            "SELECT COUNT(*) AS n FROM grants g \
             LEFT JOIN users u ON u.id = g.user_id WHERE u.id IS NULL",
        ),
        (
            "grants without sessions",
            "SELECT COUNT(*) AS n FROM grants g \
             LEFT JOIN sessions s ON s.id = g.session_id \
             WHERE g.session_id IS NOT NULL AND s.id IS NULL",
        ),
        (
            "refresh tokens without grants",
            "SELECT COUNT(*) AS n FROM refresh_tokens t \
             LEFT JOIN grants g ON g.id = t.grant_id WHERE g.id IS NULL",
        ),
        (
            "live grants with two usable refresh tokens",
            "SELECT COUNT(*) AS n FROM (SELECT t.grant_id FROM refresh_tokens t \
             JOIN grants g ON g.id = t.grant_id \
             WHERE t.used_at IS NULL AND g.revoked_at IS NULL \
             GROUP BY t.grant_id HAVING COUNT(*) > 1) forks",
        ),
        (
            "used refresh tokens without a successor",
            "SELECT COUNT(*) AS n FROM refresh_tokens t \
             JOIN grants g ON g.id = t.grant_id \
             WHERE t.used_at IS NOT NULL AND g.revoked_at IS NULL AND NOT EXISTS \
             (SELECT 1 FROM refresh_tokens s WHERE s.grant_id = t.grant_id \
              AND s.created_at >= t.used_at AND s.token_hash <> t.token_hash)",
        ),
    ];
    let store = deployment.store_at(deployment.database_url());
    let sqlite = !on_postgres();
    store
        .run(move |conn| {
            use diesel::RunQueryDsl;
            let mut found = Vec::new();
            if sqlite {
                let rows: Vec<Integrity> =
                    diesel::sql_query("PRAGMA integrity_check").load(conn)?;
                let report: Vec<String> = rows.into_iter().map(|r| r.integrity_check).collect();
                if report != ["ok"] {
                    found.push((format!("integrity_check: {report:?}"), 1));
                }
                let broken: Vec<Count> =
                    diesel::sql_query("SELECT COUNT(*) AS n FROM pragma_foreign_key_check")
                        .load(conn)?;
                if broken[0].n > 0 {
                    found.push(("foreign_key_check".to_owned(), broken[0].n));
                }
            }
            for (name, sql) in checks {
                let count: Count = diesel::sql_query(sql).get_result(conn)?;
                if count.n > 0 {
                    found.push((name.to_owned(), count.n));
                }
            }
            Ok(found)
        })
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_write_acknowledged_before_a_sigkill_is_there_after_the_restart() {
    // Arrange: a grace window long enough that a rotation whose answer the kill swallowed is
    // still answered with the same successor after the restart.
    let mut deployment = Deployment::new()
        .set("RATE_LIMITS__ENABLED", false)
        .set("REFRESH_REUSE_GRACE_SECS", 60)
        .set("POOL_SIZE", 8);
    let mut server = deployment.start().await;
    let ledger: Arc<Mutex<Ledger>> = Arc::default();
    for chain in 0..4 {
        let username = format!("chain{chain}");
        assert_eq!(server.register(&username).await.status, 201);
        let login = server.login(&username, PASSWORD).await;
        assert_eq!(login.status, 200, "{}", login.body);
        ledger
            .lock()
            .unwrap()
            .chains
            .push(login.text("refresh_token"));
    }

    // Act: eight writers (four registering, four rotating refresh tokens), then SIGKILL in
    // the middle of it.
    let mut tasks = Vec::new();
    for task in 0..4 {
        let (http, base) = (server.http.clone(), server.address());
        tasks.push(tokio::spawn(register_until_cut(
            http,
            base,
            task,
            ledger.clone(),
        )));
        let (http, base) = (server.http.clone(), server.address());
        tasks.push(tokio::spawn(refresh_until_cut(
            http,
            base,
            task,
            ledger.clone(),
        )));
    }
    let load_started = Instant::now();
    loop {
        let (registered, refreshes) = {
            let ledger = ledger.lock().unwrap();
            (ledger.registered.len(), ledger.refreshes)
        };
        let enough = registered >= 10 && refreshes >= 40;
        if load_started.elapsed() >= Duration::from_secs(2) && enough {
            break;
        }
        assert!(
            load_started.elapsed() < Duration::from_secs(20),
            "the load made too little progress: {registered} registrations, {refreshes} refreshes"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    server.kill_9();
    for task in tasks {
        tokio::time::timeout(Duration::from_secs(30), task)
            .await
            .expect("every writer notices the kill")
            .unwrap();
    }
    let (registered, chains, cut_chains, unanswered, unexpected) = {
        let ledger = ledger.lock().unwrap();
        (
            ledger.registered.clone(),
            ledger.chains.clone(),
            ledger.cut_chains.clone(),
            ledger.unanswered,
            ledger.unexpected.clone(),
        )
    };
    eprintln!(
        "killed after {:?}: {} registrations and {} refreshes acknowledged",
        load_started.elapsed(),
        registered.len(),
        ledger.lock().unwrap().refreshes
    );
    assert!(unexpected.is_empty(), "answers under load: {unexpected:?}");
    assert_eq!(unanswered, 8, "every writer was cut off by the kill");
    server.restart().await;

    // Assert: every acknowledged registration is there, with its password.
    let admin = server.admin_token().await;
    for (id, username) in &registered {
        let user = server
            .call(
                Method::GET,
                &format!("/api/v1/users/{id}"),
                Some(&admin),
                None,
            )
            .await;
        assert_eq!(
            user.status, 200,
            "user {username} ({id}) lost: {}",
            user.body
        );
        assert_eq!(user.body["username"], username.as_str());
    }
    for (_, username) in registered.iter().rev().take(2) {
        let login = server.login(username, PASSWORD).await;
        assert_eq!(login.status, 200, "{username}: {}", login.body);
    }
    // Nothing half-written: at most the registrations in flight were added unacknowledged.
    let stored = count(
        &deployment,
        "SELECT COUNT(*) AS n FROM users WHERE username LIKE 'load%'",
    )
    .await;
    assert!(
        (registered.len()..=registered.len() + 4).contains(&(stored as usize)),
        "{stored} load users stored, {} acknowledged",
        registered.len()
    );
    let ids: HashSet<&str> = registered.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(ids.len(), registered.len());
    // Every refresh token handed out with a 200 was stored: it can be used (once). A chain
    // whose last request was cut may have used it in that request, committed unanswered: the
    // token is then known as used (a public client gets no grace for a replay), which shows it
    // was stored too.
    for (chain, token) in chains.iter().enumerate() {
        let reply = server.refresh(token).await;
        if cut_chains.contains(&chain) && reply.status == 400 {
            assert!(
                reply.body.to_string().contains("already used"),
                "chain {chain}: {}",
                reply.body
            );
            continue;
        }
        assert_eq!(reply.status, 200, "chain {chain}: {}", reply.body);
        let next = server.refresh(&reply.text("refresh_token")).await;
        assert_eq!(next.status, 200, "chain {chain} goes on: {}", next.body);
    }
    assert_eq!(
        inconsistencies(&deployment).await,
        Vec::<(String, i64)>::new()
    );
}

/// One request of the load during the outage test.
struct Sample {
    kind: &'static str,
    started: Instant,
    finished: Instant,
    outcome: Result<Reply, String>,
}

/// The requests of the outage load: each reads or writes the database.
#[derive(Clone)]
struct Mix {
    http: reqwest::Client,
    base: String,
    admin: String,
    client: (String, String),
}

impl Mix {
    const KINDS: [&'static str; 7] = [
        "me",
        "users",
        "login",
        "register",
        "client_credentials",
        "introspect",
        "health_detailed",
    ];

    fn request(&self, kind: &str, n: usize) -> reqwest::RequestBuilder {
        let url = |path: &str| format!("{}{path}", self.base);
        match kind {
            "me" => self
                .http
                .get(url("/api/v1/auth/me"))
                .bearer_auth(&self.admin),
            "users" => self
                .http
                .get(url("/api/v1/users?limit=5"))
                .bearer_auth(&self.admin),
            "login" => self
                .http
                .post(url("/api/v1/auth/login"))
                .json(&json!({"username": "olive", "password": PASSWORD})),
            "register" => {
                let username = format!("outage{n}x{}", uuid::Uuid::new_v4().simple());
                self.http.post(url("/api/v1/auth/register")).json(&json!({
                    "username": username,
                    "email": format!("{username}@example.com"),
                    "password": PASSWORD,
                }))
            }
            "client_credentials" => self
                .http
                .post(url("/oauth/token"))
                .basic_auth(&self.client.0, Some(&self.client.1))
                .form(&[("grant_type", "client_credentials")]),
            "introspect" => self
                .http
                .post(url("/oauth/introspect"))
                .basic_auth(&self.client.0, Some(&self.client.1))
                .form(&[("token", self.admin.as_str())]),
            "health_detailed" => self.http.get(url("/health/detailed")),
            other => unreachable!("{other}"),
        }
    }

    /// Whether an answer is the success of `kind`.
    fn succeeded(kind: &str, status: u16) -> bool {
        match kind {
            "register" => status == 201,
            _ => status == 200,
        }
    }

    async fn send(&self, kind: &'static str, n: usize) -> Sample {
        let started = Instant::now();
        let outcome = try_read_reply(self.request(kind, n))
            .await
            .map_err(|e| format!("{e:?}"));
        Sample {
            kind,
            started,
            finished: Instant::now(),
            outcome,
        }
    }
}

/// Checks a 503 against the contract: the API's error form (or RFC 6749's on the protocol
/// endpoints), with `Retry-After`.
fn assert_unavailable_form(kind: &str, reply: &Reply) {
    assert_eq!(reply.status, 503, "{kind}: {}", reply.body);
    assert!(
        reply
            .header("retry-after")
            .is_some_and(|v| v.parse::<u64>().is_ok_and(|s| s >= 1)),
        "{kind}: Retry-After {:?}",
        reply.header("retry-after")
    );
    match kind {
        "client_credentials" | "introspect" => {
            assert_eq!(reply.body["error"], "temporarily_unavailable", "{kind}");
            assert!(reply.body["error_description"].is_string(), "{kind}");
        }
        _ => {
            assert_eq!(
                reply.body["error"], "service_unavailable",
                "{kind}: {}",
                reply.body
            );
            assert_eq!(reply.body["code"], 503, "{kind}");
            assert!(reply.body["message"].is_string(), "{kind}");
            let id = reply.body["request_id"].as_str().unwrap_or_default();
            assert!(id.starts_with("req_"), "{kind}: {}", reply.body);
            assert_eq!(reply.header("x-request-id"), Some(id), "{kind}");
        }
    }
    if kind == "health_detailed" {
        assert_eq!(
            reply.body["details"]["checks"]["database"]["status"], "unhealthy",
            "{}",
            reply.body
        );
    }
}

/// A server that reaches its own PostgreSQL database through a [`Relay`], with the database
/// timeout `timeout` and the `settings` given, a user `olive` and a `client_credentials`
/// client, and the [`Mix`] that sends each kind of request to it.
async fn relayed_deployment(
    timeout: Duration,
    settings: &[(&str, u64)],
) -> (Relay, Deployment, Server, Mix) {
    let dir = tempfile::tempdir().unwrap();
    let real = fresh_database_url(dir.path());
    let (relay, relayed) = Relay::for_database(&real).await;
    let mut deployment = Deployment::over(dir, &relayed)
        .set("DATABASE_TIMEOUT_SECS", timeout.as_secs())
        .set("RATE_LIMITS__ENABLED", false);
    for (name, value) in settings {
        deployment = deployment.set(name, value);
    }
    let server = deployment.start().await;
    let admin = server.admin_token().await;
    assert_eq!(server.register("olive").await.status, 201);
    let client = deployment.cli_json(&[
        "client",
        "create",
        "--name",
        "Load",
        "--grant-type",
        "client_credentials",
    ]);
    let mix = Mix {
        // A request may take the timeout and a margin; the client gives up well after that,
        // so a hang shows as an error instead of a stuck test.
        http: client_with_timeout(Duration::from_secs(15)),
        base: server.address(),
        admin,
        client: (
            client["client_id"].as_str().unwrap().to_owned(),
            client["client_secret"].as_str().unwrap().to_owned(),
        ),
    };
    (relay, deployment, server, mix)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_stopped_under_load_gets_timely_503s_and_is_served_again_without_a_restart() {
    if skip_without_postgres("postgres_stopped_under_load") {
        return;
    }
    // Arrange: the instance reaches its own database through a relay, with a 2 s timeout.
    let timeout = Duration::from_secs(2);
    let (mut relay, _deployment, mut server, mix) = relayed_deployment(timeout, &[]).await;
    for kind in Mix::KINDS {
        let sample = mix.send(kind, 0).await;
        let reply = sample.outcome.unwrap();
        assert!(
            Mix::succeeded(kind, reply.status),
            "{kind} before: {}",
            reply.body
        );
    }

    // Act: six clients keep sending; PostgreSQL goes away for five seconds, then comes back.
    let samples: Arc<Mutex<Vec<Sample>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let mut load = Vec::new();
    for task in 0..6 {
        let (mix, samples, stop) = (mix.clone(), samples.clone(), stop.clone());
        load.push(tokio::spawn(async move {
            let mut n = task;
            while !stop.load(Ordering::Relaxed) {
                let kind = Mix::KINDS[n % Mix::KINDS.len()];
                let sample = mix.send(kind, n).await;
                samples.lock().unwrap().push(sample);
                n += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(800)).await;
    relay.stop().await;
    let cut_at = Instant::now();
    // During the outage: liveness and the published keys do not need the database.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let health = server.call(Method::GET, "/health", None, None).await;
    assert_eq!(health.status, 200);
    let jwks = server.call(Method::GET, "/oauth/jwks", None, None).await;
    assert_eq!(jwks.status, 200);
    let detailed = mix.send("health_detailed", 0).await;
    assert_unavailable_form("health_detailed", &detailed.outcome.unwrap());
    tokio::time::sleep(Duration::from_millis(4500)).await;
    assert!(server.is_running(), "the process survives the outage");
    relay.restart().await;
    let restored_at = Instant::now();
    // After: the same process serves again, without a restart.
    let recovered = eventually(20, "every kind of request to succeed again", || async {
        let mut all = true;
        for kind in Mix::KINDS {
            let reply = mix.send(kind, 1_000_000).await.outcome.ok()?;
            all &= Mix::succeeded(kind, reply.status);
        }
        all.then(Instant::now)
    })
    .await;
    stop.store(true, Ordering::Relaxed);
    for task in load {
        tokio::time::timeout(Duration::from_secs(30), task)
            .await
            .expect("the load stops")
            .unwrap();
    }

    // Assert: every request had an answer within the timeout and a margin; none was a 500;
    // those sent and answered during the outage were 503s in the contract's form.
    let bound = timeout + Duration::from_millis(2500);
    let samples = std::mem::take(&mut *samples.lock().unwrap());
    let mut during = 0;
    for sample in samples.iter() {
        let reply = match &sample.outcome {
            Ok(reply) => reply,
            Err(error) => panic!(
                "{} sent {:?} after the cut got no answer: {error}",
                sample.kind,
                sample.started.checked_duration_since(cut_at)
            ),
        };
        assert!(
            reply.elapsed <= bound,
            "{} took {:?} (timeout {timeout:?}), status {}",
            sample.kind,
            reply.elapsed,
            reply.status
        );
        assert!(
            Mix::succeeded(sample.kind, reply.status) || reply.status == 503,
            "{}: {} {}",
            sample.kind,
            reply.status,
            reply.body
        );
        if reply.status == 503 {
            assert_unavailable_form(sample.kind, reply);
        }
        if sample.started >= cut_at && sample.finished <= restored_at {
            during += 1;
            assert_unavailable_form(sample.kind, reply);
        }
    }
    assert!(
        during >= 6,
        "the load ran during the outage ({during} requests)"
    );
    assert!(
        recovered.duration_since(restored_at) < Duration::from_secs(10),
        "served again {:?} after the database came back",
        recovered.duration_since(restored_at)
    );
    assert!(server.is_running());
    let log = server.log_tail();
    assert!(
        !log.contains("panicked"),
        "a panic during the outage:\n{log}"
    );
    // Still the same process: its uptime covers the outage.
    let admin = server.admin_token().await;
    let detailed = server
        .call(Method::GET, "/api/v1/system/health", Some(&admin), None)
        .await;
    assert_eq!(detailed.status, 200);
    assert!(
        detailed.body["uptime"].as_u64().unwrap() >= 5,
        "{}",
        detailed.body
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_restart_while_the_server_idles_costs_no_request() {
    if skip_without_postgres("a_database_restart_while_the_server_idles") {
        return;
    }
    // Arrange: requests sent eight at a time leave several connections in the pool. No
    // background task uses the database meanwhile, or it would find the dead connections
    // before the requests do.
    let quiet = [
        ("KEY_REFRESH_INTERVAL_SECS", 3600),
        ("OUTBOX_POLL_INTERVAL_MS", 3_600_000),
    ];
    let (mut relay, _deployment, mut server, mix) =
        relayed_deployment(Duration::from_secs(2), &quiet).await;
    let all_at_once = |round: usize| {
        let mix = mix.clone();
        async move {
            let mut sent = tokio::task::JoinSet::new();
            for n in 0..8 {
                let mix = mix.clone();
                let kind = Mix::KINDS[n % Mix::KINDS.len()];
                sent.spawn(async move { (kind, mix.send(kind, round * 8 + n).await) });
            }
            sent.join_all().await
        }
    };
    for round in 0..3 {
        for (kind, sample) in all_at_once(round).await {
            let reply = sample.outcome.unwrap();
            assert!(Mix::succeeded(kind, reply.status), "{kind}: {}", reply.body);
        }
    }

    // Act: every connection to the database is cut while the server idles, and the database
    // is back before the next request; the pooled connections are now dead.
    relay.stop().await;
    relay.restart().await;
    // Longer than a returned connection is trusted without a check.
    tokio::time::sleep(Duration::from_millis(700)).await;

    // Assert: each dead connection is found out on its way out of the pool, not by a request.
    for (kind, sample) in all_at_once(3).await {
        let reply = sample.outcome.unwrap();
        assert!(
            Mix::succeeded(kind, reply.status),
            "{kind} after the restart: {} {}",
            reply.status,
            reply.body
        );
    }
    assert!(server.is_running());
}
