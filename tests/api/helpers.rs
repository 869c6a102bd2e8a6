//! The test harness: a real Latchkey server per test, on port 0, over a fresh database.
//!
//! SQLite by default (a file in a temporary directory). When `LATCHKEY_TEST_DATABASE_URL`
//! names a PostgreSQL server, every test gets its own database on it instead.

use std::collections::BTreeMap;
use std::process::Output;
use std::sync::Once;

use base64::Engine;
use diesel::Connection;
use diesel::connection::SimpleConnection;
use latchkey::config::{DatabaseUrl, Settings};
use latchkey::startup::{AppState, Application};
use secrecy::SecretString;
use serde_json::Value;

/// The bootstrap admin's password in every test server.
pub const ADMIN_PASSWORD: &str = "admin-password-for-tests";

static TRACING: Once = Once::new();

/// A running server and what a test needs to talk to it.
pub struct TestApp {
    /// `http://127.0.0.1:<port>`: also the issuer.
    pub address: String,
    /// The issuer identifier.
    pub issuer: String,
    /// The server's shared state (store, keys, crypto) for asserting on stored state.
    pub state: actix_web::web::Data<AppState>,
    /// An HTTP client that does not follow redirects and keeps cookies.
    pub client: reqwest::Client,
    /// Environment that points the CLI at this server's database and keys.
    pub cli_env: BTreeMap<String, String>,
    /// The database URL in use.
    pub database_url: String,
    _dir: tempfile::TempDir,
}

/// Options for [`spawn_app_with`].
pub type Tweak = Box<dyn FnOnce(&mut Settings)>;

/// Starts a server with the test defaults.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(Box::new(|_| {})).await
}

/// A database for one test: a file in `dir`, or a new PostgreSQL database.
pub fn fresh_database_url(dir: &std::path::Path) -> String {
    match std::env::var("LATCHKEY_TEST_DATABASE_URL") {
        Ok(base) if !base.is_empty() => {
            let name = format!("lk_{}", uuid::Uuid::new_v4().simple());
            let mut admin = diesel::PgConnection::establish(&base)
                .expect("connect to LATCHKEY_TEST_DATABASE_URL");
            admin
                .batch_execute(&format!("CREATE DATABASE {name}"))
                .expect("create a test database");
            let mut url = url::Url::parse(&base).expect("a URL");
            url.set_path(&format!("/{name}"));
            url.to_string()
        }
        _ => dir.join("latchkey.db").display().to_string(),
    }
}

/// Whether the tests run on PostgreSQL.
pub fn on_postgres() -> bool {
    std::env::var("LATCHKEY_TEST_DATABASE_URL").is_ok_and(|v| !v.is_empty())
}

/// Settings for a test server over `database_url`.
pub fn test_settings(database_url: &str, kek: &str) -> Settings {
    let mut settings = Settings::defaults();
    settings.bind = "127.0.0.1:0".parse().unwrap();
    settings.issuer = "http://127.0.0.1:0".into();
    settings.database_url = DatabaseUrl::parse(database_url).unwrap();
    settings.key_encryption_key = Some(SecretString::from(kek.to_owned()));
    settings.bootstrap_admin_password = Some(SecretString::from(ADMIN_PASSWORD.to_owned()));
    settings.workers = 2;
    settings.pool_size = 5;
    settings.database_timeout = std::time::Duration::from_secs(2);
    settings.key_refresh_interval = std::time::Duration::from_millis(300);
    // Every receiver in the tests (webhooks, back-channel logout, client keys) is loopback.
    settings.outbound.allow_private_networks = true;
    settings
}

/// Starts a server after `tweak` adjusts the settings.
pub async fn spawn_app_with(tweak: Tweak) -> TestApp {
    TRACING.call_once(|| {
        if std::env::var("TEST_LOG").is_ok() {
            latchkey::telemetry::init(latchkey::config::LogFormat::Pretty, "info");
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let database_url = fresh_database_url(dir.path());
    let kek = base64::engine::general_purpose::STANDARD.encode(rand_bytes());
    let mut settings = test_settings(&database_url, &kek);
    settings.mail.directory = dir.path().join("mail");
    tweak(&mut settings);
    let app = Application::build(settings)
        .await
        .expect("the server builds");
    let address = format!("http://127.0.0.1:{}", app.port());
    let issuer = app.issuer().to_owned();
    let state = app.state();
    tokio::spawn(app.run_until_stopped());
    let cli_env = BTreeMap::from([
        ("LATCHKEY_DATABASE_URL".to_owned(), database_url.clone()),
        ("LATCHKEY_KEY_ENCRYPTION_KEY".to_owned(), kek),
        (
            "LATCHKEY_BOOTSTRAP_ADMIN_PASSWORD".to_owned(),
            ADMIN_PASSWORD.to_owned(),
        ),
        ("LATCHKEY_ISSUER".to_owned(), issuer.clone()),
        ("LATCHKEY_LOG_LEVEL".to_owned(), "warn".to_owned()),
    ]);
    TestApp {
        address,
        issuer,
        state,
        client: http_client(),
        cli_env,
        database_url,
        _dir: dir,
    }
}

fn rand_bytes() -> [u8; 32] {
    use rand::RngCore;
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    bytes
}

/// A client that keeps cookies and never follows redirects (tests read the `Location`).
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .cookie_store(true)
        .build()
        .unwrap()
}

impl TestApp {
    /// An absolute URL on this server.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    /// GET `path` and return the response.
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).send().await.unwrap()
    }

    /// GET `path` and parse the JSON body, asserting the status.
    pub async fn get_json(&self, path: &str, status: u16) -> Value {
        let response = self.get(path).await;
        assert_eq!(response.status().as_u16(), status, "GET {path}");
        response.json().await.unwrap()
    }

    /// GETs `url` (a path of this server, or a whole URL) with a bearer token, and its JSON.
    pub async fn get_json_as(&self, url: &str, token: &str) -> Value {
        let url = if url.starts_with("http") {
            url.to_owned()
        } else {
            self.url(url)
        };
        self.client
            .get(url)
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// Runs the `latchkey` binary against this server's database.
    pub fn cli(&self, args: &[&str]) -> Output {
        self.cli_with_stdin(args, None)
    }

    /// Runs the `latchkey` binary with `stdin` as its standard input.
    pub fn cli_with_stdin(&self, args: &[&str], stdin: Option<&str>) -> Output {
        run_cli(&self.cli_env, args, stdin)
    }

    /// Runs the CLI and parses its stdout as JSON, asserting success.
    pub fn cli_json(&self, args: &[&str]) -> Value {
        let output = self.cli(args);
        assert!(
            output.status.success(),
            "latchkey {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e}): {}",
                String::from_utf8_lossy(&output.stdout)
            )
        })
    }
}

/// Runs the `latchkey` binary with exactly `env` (plus PATH) as its environment.
pub fn run_cli(env: &BTreeMap<String, String>, args: &[&str], stdin: Option<&str>) -> Output {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut command = Command::new(env!("CARGO_BIN_EXE_latchkey"));
    command
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(env)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().expect("run latchkey");
    let mut pipe = child.stdin.take().unwrap();
    if let Some(input) = stdin {
        pipe.write_all(input.as_bytes()).unwrap();
    }
    drop(pipe);
    child.wait_with_output().unwrap()
}

/// Polls `check` every 100 ms until it returns `Some`, or panics after `seconds`.
pub async fn eventually<T, F, Fut>(seconds: u64, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(seconds);
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// `latchkey_outbox_passes_total` in a page of Prometheus text.
pub fn outbox_passes_in(metrics: &str) -> u64 {
    let value = metrics
        .lines()
        .find_map(|line| line.strip_prefix("latchkey_outbox_passes_total "))
        .expect("the outbox pass counter is published");
    value.trim().parse().expect("a whole count")
}

/// The outbox passes an in-process server's worker has finished, as `/metrics` reports them.
pub async fn outbox_passes(state: &AppState) -> u64 {
    outbox_passes_in(&state.metrics.render(state).await)
}

/// Waits until the outbox worker that `passes` reads on has finished two more passes than it
/// had when called: the one under way then, with whatever it had in flight, and one that began
/// afterwards. What that worker has delivered by then is all it will deliver of what was due.
/// Shows that no duplicate is on its way without sleeping for a guessed time.
pub async fn two_more_outbox_passes<F, Fut>(mut passes: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = u64>,
{
    let start = passes().await;
    eventually(10, "two more outbox passes", || {
        let finished = passes();
        async move { (finished.await >= start + 2).then_some(()) }
    })
    .await;
}

/// Whether a test that needs PostgreSQL (a shared database, or one to cut off) is to be
/// skipped, with a note saying so, because the suite runs on SQLite.
pub fn skip_without_postgres(test: &str) -> bool {
    if on_postgres() {
        return false;
    }
    eprintln!(
        "note: {test} skipped: it needs PostgreSQL (set LATCHKEY_TEST_DATABASE_URL, as scripts/test does)"
    );
    true
}
