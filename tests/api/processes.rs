//! Real `latchkey serve` processes, for the tests that need more than one instance or a crash:
//! a [`Deployment`] (one database, one key-encryption key, one issuer, settings given only by
//! environment, as an operator would) and the [`Server`] instances started from it, each a
//! child process that is killed with SIGKILL when its guard is dropped, even when the test
//! panics. Also the [`Relay`] that stands in for a PostgreSQL server going away.
//!
//! An instance binds port 0 and is found by the port it reports on its `latchkey ready` log
//! line (the only place the binary tells it), so two tests can never race for a port; a
//! restart binds the same port again, so the issuer keeps pointing at it.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use reqwest::Method;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};

use crate::helpers::{
    ADMIN_PASSWORD, fresh_database_url, outbox_passes_in, run_cli, test_settings,
};

/// The password of every account the process tests register (strong enough for the policy).
pub const PASSWORD: &str = "a long and unusual passphrase 4711";

/// The built-in public client of the JSON API, which may refresh at the token endpoint.
pub const FIRST_PARTY_CLIENT: &str = "latchkey";

/// The token every instance asks for at `/metrics`.
const METRICS_TOKEN: &str = "metrics-token-of-the-test-processes";

/// How long an instance may take from spawn to its ready line on a loaded machine.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// Log lines of an instance kept for the failure report.
const LOG_LINES_KEPT: usize = 300;

/// One database and what every instance over it shares: the key-encryption key, the issuer,
/// and the settings, all passed as `LATCHKEY_*` variables.
pub struct Deployment {
    database_url: String,
    kek: String,
    env: BTreeMap<String, String>,
    issuer: Option<String>,
    dir: Arc<tempfile::TempDir>,
    started: usize,
}

impl Deployment {
    /// A deployment over a fresh database (an SQLite file, or a new PostgreSQL database when
    /// `LATCHKEY_TEST_DATABASE_URL` is set).
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let url = fresh_database_url(dir.path());
        Self::build(dir, url)
    }

    /// A deployment whose instances reach their database at `database_url` (for instance
    /// through a [`Relay`]); `dir` holds the instances' files.
    pub fn over(dir: tempfile::TempDir, database_url: &str) -> Self {
        Self::build(dir, database_url.to_owned())
    }

    fn build(dir: tempfile::TempDir, database_url: String) -> Self {
        use rand::RngCore;
        let mut key = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut key);
        let kek = base64::engine::general_purpose::STANDARD.encode(key);
        let mail = dir.path().join("mail");
        let env = BTreeMap::from(
            [
                ("DATABASE_URL", database_url.as_str()),
                ("KEY_ENCRYPTION_KEY", kek.as_str()),
                ("BOOTSTRAP_ADMIN_PASSWORD", ADMIN_PASSWORD),
                // Warnings only, plus the ready line that reports the port bound.
                ("LOG_LEVEL", "warn,latchkey::startup=info"),
                ("LOG_FORMAT", "json"),
                ("MAIL_DIR", mail.to_str().unwrap()),
                ("WORKERS", "2"),
                ("POOL_SIZE", "6"),
                ("KEY_REFRESH_INTERVAL_SECS", "1"),
                ("OUTBOX_POLL_INTERVAL_MS", "100"),
                ("OUTBOX_BACKOFF_BASE_SECS", "1"),
                ("OUTBOX_BACKOFF_MAX_SECS", "1"),
                ("METRICS_TOKEN", METRICS_TOKEN),
            ]
            .map(|(name, value)| (format!("LATCHKEY_{name}"), value.to_owned())),
        );
        Self {
            database_url,
            kek,
            env,
            issuer: None,
            dir: Arc::new(dir),
            started: 0,
        }
    }

    /// Sets `LATCHKEY_<name>` for every instance started from now on and for the CLI
    /// (`RATE_LIMITS__LOGIN__LIMIT` for a nested setting).
    pub fn set(mut self, name: &str, value: impl ToString) -> Self {
        self.env
            .insert(format!("LATCHKEY_{name}"), value.to_string());
        self
    }

    /// Sets the issuer every instance uses (by default the first instance's own URL).
    pub fn with_issuer(mut self, issuer: &str) -> Self {
        self.issuer = Some(issuer.to_owned());
        self
    }

    /// The database URL the instances use.
    pub fn database_url(&self) -> &str {
        &self.database_url
    }

    /// The environment of the CLI: the instances' own.
    pub fn cli_env(&self) -> BTreeMap<String, String> {
        let mut env = self.env.clone();
        if let Some(issuer) = &self.issuer {
            env.insert("LATCHKEY_ISSUER".into(), issuer.clone());
        }
        env
    }

    /// Runs the `latchkey` CLI against the deployment's database; parses its JSON output.
    pub fn cli_json(&self, args: &[&str]) -> Value {
        let output = run_cli(&self.cli_env(), args, None);
        assert!(
            output.status.success(),
            "latchkey {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice(&output.stdout).expect("the CLI prints JSON")
    }

    /// A store over the database at `database_url` (not through any relay), to assert on the
    /// stored state as a database administrator would.
    pub fn store_at(&self, database_url: &str) -> latchkey::store::Store {
        let settings = test_settings(database_url, &self.kek);
        latchkey::store::Store::open(&settings).unwrap()
    }

    /// Spawns an instance without waiting for it (see [`Pending::ready`]): instances that
    /// start together can be spawned one after the other and then awaited together.
    pub fn spawn(&mut self) -> Pending {
        self.started += 1;
        let name = format!("instance {}", self.started);
        let mut env = self.env.clone();
        env.insert(
            "LATCHKEY_ISSUER".into(),
            self.issuer
                .clone()
                .unwrap_or_else(|| "http://127.0.0.1:0".into()),
        );
        Pending(Server::spawn(name, env, 0, self.dir.clone()))
    }

    /// Starts an instance and waits until it serves. The first one started without a chosen
    /// issuer makes its own URL the issuer of every later one (one deployment, one issuer).
    pub async fn start(&mut self) -> Server {
        let server = self.spawn().ready().await;
        if self.issuer.is_none() {
            self.issuer = Some(server.issuer.clone());
        }
        server
    }
}

/// An instance spawned and not yet known to be ready.
pub struct Pending(Server);

impl Pending {
    /// Waits for the ready line and for `/health`.
    pub async fn ready(mut self) -> Server {
        self.0.await_ready().await;
        self.0
    }
}

/// What the stderr reader learns.
#[derive(Default)]
struct Output {
    lines: std::collections::VecDeque<String>,
    ready: Option<(u16, String)>,
    closed: bool,
}

/// One `latchkey serve` process. Dropping it kills the process (SIGKILL).
pub struct Server {
    name: String,
    child: Option<Child>,
    env: BTreeMap<String, String>,
    port: u16,
    issuer: String,
    output: Arc<Mutex<Output>>,
    dir: Arc<tempfile::TempDir>,
    /// A client for this instance: no redirects, no cookies, a bound on every request.
    pub http: reqwest::Client,
}

/// One HTTP answer, read whole.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    /// The JSON body; `Null` when empty; a string when it is not JSON.
    pub body: Value,
    /// How long the request took.
    pub elapsed: Duration,
}

impl Reply {
    /// A header's value as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// A string member of the body.
    pub fn text(&self, member: &str) -> String {
        self.body[member]
            .as_str()
            .unwrap_or_else(|| panic!("no `{member}` in {} ({})", self.body, self.status))
            .to_owned()
    }
}

/// A client that does not follow redirects, keeps no cookies, and gives up after `timeout`.
pub fn client_with_timeout(timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout)
        .build()
        .unwrap()
}

impl Server {
    fn spawn(
        name: String,
        env: BTreeMap<String, String>,
        port: u16,
        dir: Arc<tempfile::TempDir>,
    ) -> Self {
        let mut server = Self {
            name,
            child: None,
            env,
            port,
            issuer: String::new(),
            output: Arc::default(),
            dir,
            http: client_with_timeout(Duration::from_secs(30)),
        };
        server.launch(port);
        server
    }

    fn launch(&mut self, port: u16) {
        let mut command = Command::new(env!("CARGO_BIN_EXE_latchkey"));
        command
            .arg("serve")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(&self.env)
            .env("LATCHKEY_BIND", format!("127.0.0.1:{port}"))
            // Every receiver the tests start (webhooks, logout notices) is loopback.
            .env("LATCHKEY_OUTBOUND__ALLOW_PRIVATE_NETWORKS", "true")
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = command.spawn().expect("spawn latchkey serve");
        let stderr = child.stderr.take().unwrap();
        let output: Arc<Mutex<Output>> = Arc::default();
        let shared = output.clone();
        // Drained to the end, so the process never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                let mut out = shared.lock().unwrap();
                if out.ready.is_none()
                    && let Ok(event) = serde_json::from_str::<Value>(&line)
                    && event["message"] == "latchkey ready"
                {
                    let port = event["port"].as_u64().map(|p| p as u16);
                    let issuer = event["issuer"].as_str().map(str::to_owned);
                    if let (Some(port), Some(issuer)) = (port, issuer) {
                        out.ready = Some((port, issuer));
                    }
                }
                if out.lines.len() == LOG_LINES_KEPT {
                    out.lines.pop_front();
                }
                out.lines.push_back(line);
            }
            shared.lock().unwrap().closed = true;
        });
        self.child = Some(child);
        self.output = output;
    }

    /// Waits for the ready line (which names the port bound and the issuer), then for a 200
    /// from `/health`. Panics with the process's log when it exits or takes too long.
    async fn await_ready(&mut self) {
        let deadline = Instant::now() + START_TIMEOUT;
        let (port, issuer) = loop {
            let (ready, closed) = {
                let out = self.output.lock().unwrap();
                (out.ready.clone(), out.closed)
            };
            if let Some(ready) = ready {
                break ready;
            }
            if closed || !self.is_running() {
                panic!(
                    "{} exited before it was ready ({:?}):\n{}",
                    self.name,
                    self.child
                        .as_mut()
                        .and_then(|c| c.try_wait().ok().flatten()),
                    self.log_tail()
                );
            }
            assert!(
                Instant::now() < deadline,
                "{} was not ready within {START_TIMEOUT:?}:\n{}",
                self.name,
                self.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        self.port = port;
        self.issuer = issuer;
        // A restart keeps the issuer (and the port) of the first start.
        self.env
            .insert("LATCHKEY_ISSUER".into(), self.issuer.clone());
        loop {
            if let Ok(response) = self.http.get(self.url("/health")).send().await
                && response.status() == 200
            {
                return;
            }
            assert!(
                self.is_running(),
                "{} exited:\n{}",
                self.name,
                self.log_tail()
            );
            assert!(
                Instant::now() < deadline,
                "{} did not answer /health:\n{}",
                self.name,
                self.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The instance's base URL (`http://127.0.0.1:<port>`), which is not always the issuer.
    pub fn address(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// An absolute URL on this instance.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address())
    }

    /// The issuer this instance uses.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// Whether the process is still alive.
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|child| matches!(child.try_wait(), Ok(None)))
    }

    /// The last lines the process wrote on stderr.
    pub fn log_tail(&self) -> String {
        let out = self.output.lock().unwrap();
        out.lines.iter().cloned().collect::<Vec<_>>().join("\n")
    }

    /// SIGKILL: no shutdown hook runs, no buffer is flushed, in-flight requests are cut.
    pub fn kill_9(&mut self) {
        if let Some(mut child) = self.child.take() {
            // `Child::kill` sends SIGKILL on Unix.
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the process again with the same settings, on the same port and database, and
    /// waits until it serves. Retries for a while if the port is briefly held elsewhere.
    pub async fn restart(&mut self) {
        self.kill_9();
        let port = self.port;
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            self.launch(port);
            // A bind failure ends the process at once, before anything else is logged.
            let outcome = tokio::time::timeout(Duration::from_secs(2), async {
                loop {
                    let (ready, closed) = {
                        let out = self.output.lock().unwrap();
                        (out.ready.is_some(), out.closed)
                    };
                    if ready || closed {
                        return ready;
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            })
            .await;
            let bind_failed = matches!(outcome, Ok(false)) && self.log_tail().contains("bind");
            if !bind_failed {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{} could not bind port {port} again:\n{}",
                self.name,
                self.log_tail()
            );
            self.kill_9();
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        self.await_ready().await;
        assert_eq!(self.port, port, "a restart binds the same port");
    }

    /// Sends a request with an optional bearer token and JSON body.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        bearer: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        let mut request = self.http.request(method, self.url(path));
        if let Some(token) = bearer {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        read_reply(request).await
    }

    /// The outbox passes this instance's worker has finished, read from `/metrics`.
    pub async fn outbox_passes(&self) -> u64 {
        let reply = self
            .call(Method::GET, "/metrics", Some(METRICS_TOKEN), None)
            .await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        outbox_passes_in(reply.body.as_str().expect("the text format"))
    }

    /// POSTs a form, with Basic client credentials when given.
    pub async fn post_form(
        &self,
        path: &str,
        form: &[(&str, &str)],
        basic: Option<(&str, &str)>,
    ) -> Reply {
        let mut request = self.http.post(self.url(path)).form(form);
        if let Some((id, secret)) = basic {
            request = request.basic_auth(id, Some(secret));
        }
        read_reply(request).await
    }

    /// `POST /api/v1/auth/register` with [`PASSWORD`].
    pub async fn register(&self, username: &str) -> Reply {
        self.call(
            Method::POST,
            "/api/v1/auth/register",
            None,
            Some(json!({
                "username": username,
                "email": format!("{username}@example.com"),
                "password": PASSWORD,
            })),
        )
        .await
    }

    /// `POST /api/v1/auth/login`.
    pub async fn login(&self, username: &str, password: &str) -> Reply {
        self.call(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(json!({"username": username, "password": password})),
        )
        .await
    }

    /// An access token of the bootstrap admin.
    pub async fn admin_token(&self) -> String {
        let reply = self.login("admin", ADMIN_PASSWORD).await;
        assert_eq!(
            reply.status, 200,
            "admin login on {}: {:?}",
            self.name, reply.body
        );
        reply.text("access_token")
    }

    /// Rotates a refresh token of an API login at the token endpoint (the built-in public
    /// client), which no rate limit covers.
    pub async fn refresh(&self, refresh_token: &str) -> Reply {
        self.post_form(
            "/oauth/token",
            &[
                ("grant_type", "refresh_token"),
                ("client_id", FIRST_PARTY_CLIENT),
                ("refresh_token", refresh_token),
            ],
            None,
        )
        .await
    }
}

/// Sends `request` and reads the whole answer.
pub async fn read_reply(request: reqwest::RequestBuilder) -> Reply {
    try_read_reply(request).await.unwrap()
}

/// Sends `request` and reads the whole answer, or says why there is none (the connection was
/// refused or cut, or the client's timeout passed).
pub async fn try_read_reply(request: reqwest::RequestBuilder) -> Result<Reply, reqwest::Error> {
    let started = Instant::now();
    let response = request.send().await?;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let bytes = response.bytes().await?;
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
    };
    Ok(Reply {
        status,
        headers,
        body,
        elapsed: started.elapsed(),
    })
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill_9();
        if std::thread::panicking() {
            eprintln!(
                "--- last log lines of {} ({}) ---\n{}",
                self.name,
                self.address(),
                self.log_tail()
            );
        }
    }
}

/// A TCP relay in front of the test's database, that can cut every connection and refuse new
/// ones (the database is down) and then accept again (it is back), without touching the
/// database other tests share.
pub struct Relay {
    /// The port the relay listens on.
    pub port: u16,
    target: std::net::SocketAddr,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Relay {
    /// Relays `127.0.0.1:port` (0: any free port) to `target`.
    pub async fn start(target: std::net::SocketAddr, port: u16) -> Self {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .unwrap();
        let port = listener.local_addr().unwrap().port();
        let task = tokio::spawn(async move {
            let mut connections = tokio::task::JoinSet::new();
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    break;
                };
                connections.spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        });
        Self {
            port,
            target,
            task: Some(task),
        }
    }

    /// A relay for the PostgreSQL database of `database_url`, and that URL with the relay in
    /// its place.
    pub async fn for_database(database_url: &str) -> (Self, String) {
        let real = url::Url::parse(database_url).expect("a PostgreSQL URL");
        let target = format!(
            "{}:{}",
            real.host_str().unwrap(),
            real.port().unwrap_or(5432)
        )
        .parse()
        .expect("a numeric host");
        let relay = Relay::start(target, 0).await;
        let mut relayed = real.clone();
        relayed.set_port(Some(relay.port)).unwrap();
        (relay, relayed.to_string())
    }

    /// Cuts every relayed connection and stops listening; returns once the port is closed.
    pub async fn stop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            // The listener and every connection are dropped when the task is.
            let _ = task.await;
        }
    }

    /// Listens again on the same port.
    pub async fn restart(&mut self) {
        self.stop().await;
        *self = Relay::start(self.target, self.port).await;
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}
