//! Support for the browser tests: one chromedriver shared by the test process, a headless
//! Chromium with a fresh profile per test, and a relying party's callback server that records
//! every request the browser brings it.
//!
//! chromedriver is found through `CHROMEDRIVER`, then `/usr/bin/chromedriver`, then `PATH`.
//! Without it the browser tests fail, unless `LATCHKEY_SKIP_BROWSER_TESTS=1` skips them.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock, mpsc};
use std::time::{Duration, Instant};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use base64::Engine;
use fantoccini::{Client, ClientBuilder, Locator};
use latchkey::oauth::clients::ClientView;
use serde_json::{Value, json};
use url::Url;

use crate::helpers::TestApp;

/// Set to `1` to skip the browser tests (they then pass after saying so).
pub const SKIP_VARIABLE: &str = "LATCHKEY_SKIP_BROWSER_TESTS";

/// How long any one step in the browser (a page, a redirect, a form post) may take.
pub const STEP: Duration = Duration::from_secs(10);

/// How many Chromiums may run at once: one per CPU (at least two), so a machine that runs
/// the whole suite in parallel is not swamped into timeouts.
fn browser_slots() -> &'static tokio::sync::Semaphore {
    static SLOTS: OnceLock<tokio::sync::Semaphore> = OnceLock::new();
    SLOTS.get_or_init(|| {
        let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
        tokio::sync::Semaphore::new(cpus.max(2))
    })
}

/// The flags Chromium needs on a closed, headless machine.
const CHROMIUM_FLAGS: &[&str] = &[
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
];

/// The chromedriver this test process shares: its port, and the pipe whose closing (when the
/// process exits, however it exits) makes the wrapper shell stop it.
struct Driver {
    port: u16,
    _keepalive: ChildStdin,
    _shell: Child,
}

static DRIVER: OnceLock<Result<Driver, String>> = OnceLock::new();

/// Where chromedriver is, or why it cannot be used.
fn chromedriver_path() -> Result<PathBuf, String> {
    if let Some(configured) = std::env::var_os("CHROMEDRIVER").filter(|v| !v.is_empty()) {
        let path = PathBuf::from(configured);
        return if path.is_file() {
            Ok(path)
        } else {
            Err(format!("CHROMEDRIVER={} is not a file", path.display()))
        };
    }
    let standard = Path::new("/usr/bin/chromedriver");
    if standard.is_file() {
        return Ok(standard.to_owned());
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join("chromedriver"))
        .find(|candidate| candidate.is_file())
        .ok_or_else(|| {
            "chromedriver was not found (looked at $CHROMEDRIVER, /usr/bin/chromedriver and PATH)"
                .to_owned()
        })
}

/// Starts chromedriver on a port it chooses, under a shell that stops it when our end of its
/// standard input closes, and waits (up to a deadline) for it to say which port it took.
fn start_driver() -> Result<Driver, String> {
    let path = chromedriver_path()?;
    // `$0` is chromedriver; `cat` returns when this process exits and closes the pipe.
    let script = r#""$0" --port=0 </dev/null & pid=$!
cat >/dev/null
kill "$pid" 2>/dev/null"#;
    let mut shell = Command::new("sh")
        .arg("-c")
        .arg(script)
        .arg(&path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("cannot start {} under sh: {e}", path.display()))?;
    let keepalive = shell.stdin.take().expect("a piped stdin");
    let stdout = shell.stdout.take().expect("a piped stdout");
    let (port_tx, port_rx) = mpsc::channel::<Result<u16, String>>();
    // Reads chromedriver's output for the port, then keeps draining it so it never blocks.
    std::thread::spawn(move || {
        let mut seen = String::new();
        let mut port_tx = Some(port_tx);
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(tx) = &port_tx {
                seen.push_str(&line);
                seen.push('\n');
                if let Some(port) = line
                    .split("started successfully on port ")
                    .nth(1)
                    .and_then(|rest| rest.trim_end_matches('.').trim().parse().ok())
                {
                    let _ = tx.send(Ok(port));
                    port_tx = None;
                }
            }
        }
        if let Some(tx) = port_tx {
            let _ = tx.send(Err(format!("chromedriver exited early; it said:\n{seen}")));
        }
    });
    let port = port_rx
        .recv_timeout(Duration::from_secs(20))
        .map_err(|_| format!("{} did not report its port within 20 s", path.display()))??;
    Ok(Driver {
        port,
        _keepalive: keepalive,
        _shell: shell,
    })
}

/// The shared chromedriver's port; panics with the reason when it cannot run.
fn driver_port() -> u16 {
    match DRIVER.get_or_init(start_driver) {
        Ok(driver) => driver.port,
        Err(reason) => panic!(
            "the browser tests need chromedriver and Chromium: {reason}. Install them \
             (`apt-get install chromium chromium-driver`), point CHROMEDRIVER at chromedriver, \
             or set {SKIP_VARIABLE}=1 to skip these tests."
        ),
    }
}

/// Whether the browser tests are to be skipped; says so on the terminal when they are.
pub fn skipped() -> bool {
    if std::env::var(SKIP_VARIABLE).is_ok_and(|v| v == "1") {
        let test = std::thread::current()
            .name()
            .unwrap_or("a browser test")
            .to_owned();
        // Written to the real stderr, so the line shows even when the harness captures output.
        let _ = writeln!(
            std::io::stderr(),
            "skipped {test}: {SKIP_VARIABLE}=1 (no browser used)"
        );
        true
    } else {
        false
    }
}

/// The window a test's browser has.
#[derive(Debug, Clone, Copy)]
pub enum Screen {
    /// A desktop window.
    Desktop,
    /// A phone: Chromium's mobile emulation with this viewport (CSS pixels).
    Phone { width: u32, height: u32 },
}

/// One WebDriver session: a headless Chromium with its own fresh profile (so its own cookies).
/// Dropped without [`Browser::close`] (a failed test), it still ends the session, so no
/// Chromium outlives the test.
pub struct Browser {
    pub client: Client,
    session_id: String,
    driver_port: u16,
    closed: bool,
    _profile: tempfile::TempDir,
    _slot: tokio::sync::SemaphorePermit<'static>,
}

impl Browser {
    /// A new browser with a desktop window.
    pub async fn launch() -> Self {
        Self::launch_on(Screen::Desktop).await
    }

    /// A new browser with the given screen.
    pub async fn launch_on(screen: Screen) -> Self {
        driver_port();
        let slot = browser_slots()
            .acquire()
            .await
            .expect("the semaphore is never closed");
        Self::start(screen, slot).await
    }

    /// Two desktop browsers at once, each with its own profile. Their two slots are taken
    /// together: two tests that each took one slot and waited for a second would wait for ever.
    pub async fn launch_pair() -> (Self, Self) {
        driver_port();
        let mut slots = browser_slots()
            .acquire_many(2)
            .await
            .expect("the semaphore is never closed");
        let second_slot = slots.split(1).expect("two permits were taken");
        let first = Self::start(Screen::Desktop, slots).await;
        let second = Self::start(Screen::Desktop, second_slot).await;
        (first, second)
    }

    /// Starts Chromium in the slot taken for it.
    async fn start(screen: Screen, slot: tokio::sync::SemaphorePermit<'static>) -> Self {
        let driver_port = driver_port();
        let profile = tempfile::tempdir().expect("a profile directory");
        let mut args: Vec<String> = CHROMIUM_FLAGS.iter().map(|f| (*f).to_owned()).collect();
        args.push(format!("--user-data-dir={}", profile.path().display()));
        let mut chrome = json!({ "args": args });
        match screen {
            Screen::Desktop => args_push(&mut chrome, "--window-size=1280,900"),
            Screen::Phone { width, height } => {
                chrome["mobileEmulation"] = json!({
                    "deviceMetrics": { "width": width, "height": height, "pixelRatio": 2.0, "touch": true },
                });
            }
        }
        let capabilities = json!({
            "browserName": "chrome",
            "pageLoadStrategy": "normal",
            "timeouts": { "pageLoad": 15_000, "script": 5_000, "implicit": 0 },
            "goog:chromeOptions": chrome,
        });
        let Value::Object(capabilities) = capabilities else {
            unreachable!()
        };
        let client = ClientBuilder::native()
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{driver_port}"))
            .await
            .unwrap_or_else(|e| panic!("chromedriver could not start Chromium: {e}"));
        let session_id = client
            .session_id()
            .await
            .expect("the session id")
            .expect("a session");
        Self {
            client,
            session_id,
            driver_port,
            closed: false,
            _profile: profile,
            _slot: slot,
        }
    }

    /// Ends the session (Chromium quits) and removes the profile.
    pub async fn close(mut self) {
        self.closed = true;
        let client = self.client.clone();
        client.close().await.expect("the session closes");
    }

    /// The URL the browser shows.
    pub async fn url(&self) -> Url {
        self.client.current_url().await.expect("the current URL")
    }

    /// Goes to `url` (returns once the page, after any redirects, has loaded).
    pub async fn goto(&self, url: &str) {
        self.client
            .goto(url)
            .await
            .unwrap_or_else(|e| panic!("navigating to {url}: {e}"));
    }

    /// Waits up to [`STEP`] for an element to be in the page.
    pub async fn wait_for(&self, css: &str) -> fantoccini::elements::Element {
        match self
            .client
            .wait()
            .at_most(STEP)
            .every(Duration::from_millis(50))
            .for_element(Locator::Css(css))
            .await
        {
            Ok(element) => element,
            Err(e) => {
                let url = self.client.current_url().await.ok();
                let html = self.client.source().await.unwrap_or_default();
                panic!(
                    "no `{css}` within {STEP:?} ({e}); the browser is at {url:?} showing:\n{html}"
                )
            }
        }
    }

    /// Waits up to [`STEP`] until the browser shows a page whose path is `path` on `origin`.
    pub async fn wait_for_page(&self, origin: &str, path: &str) -> Url {
        let deadline = Instant::now() + STEP;
        loop {
            let url = self.url().await;
            if url.as_str().starts_with(origin) && url.path() == path {
                return url;
            }
            if Instant::now() > deadline {
                let html = self.client.source().await.unwrap_or_default();
                panic!(
                    "expected {origin}{path} within {STEP:?}, the browser is at {url} showing:\n{html}"
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Types `text` into the input matched by `css`, replacing what it held.
    pub async fn fill(&self, css: &str, text: &str) {
        let input = self.wait_for(css).await;
        input.clear().await.expect("the input clears");
        input.send_keys(text).await.expect("typing works");
    }

    /// Clicks the element matched by `css`.
    pub async fn click(&self, css: &str) {
        self.wait_for(css)
            .await
            .click()
            .await
            .unwrap_or_else(|e| panic!("clicking `{css}`: {e}"));
    }

    /// Fills in the login form shown and submits it with the keyboard-and-mouse path a person
    /// takes: type the username and password, click the button.
    pub async fn log_in(&self, username: &str, password: &str) {
        self.fill("#username", username).await;
        self.fill("#password", password).await;
        self.click("form button[type=submit]").await;
    }

    /// How many entries the tab's session history has.
    pub async fn history_length(&self) -> u64 {
        self.client
            .execute("return window.history.length;", vec![])
            .await
            .expect("the script runs")
            .as_u64()
            .expect("a number")
    }

    /// The HTTP status of the page shown (of its final response, after any redirects).
    pub async fn status(&self) -> u16 {
        let status = self
            .client
            .execute(
                "return performance.getEntriesByType('navigation')[0].responseStatus;",
                vec![],
            )
            .await
            .expect("the script runs");
        let status = status.as_u64().expect("a number");
        u16::try_from(status).expect("an HTTP status")
    }

    /// The text of every element matching `css` in the current page, trimmed.
    pub async fn texts(&self, css: &str) -> Vec<String> {
        let mut texts = Vec::new();
        for element in self
            .client
            .find_all(Locator::Css(css))
            .await
            .expect("querying the page")
        {
            texts.push(element.text().await.expect("the text").trim().to_owned());
        }
        texts
    }

    /// Whether an element matching `css` is in the current page right now.
    pub async fn has(&self, css: &str) -> bool {
        !self
            .client
            .find_all(Locator::Css(css))
            .await
            .expect("querying the page")
            .is_empty()
    }
}

fn args_push(chrome: &mut Value, arg: &str) {
    chrome["args"]
        .as_array_mut()
        .expect("an args array")
        .push(Value::String(arg.to_owned()));
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.closed {
            delete_session(self.driver_port, &self.session_id);
        }
    }
}

/// Ends a WebDriver session with a plain blocking HTTP request (usable while a failed test
/// unwinds, when the async runtime can no longer run the client).
fn delete_session(port: u16, session_id: &str) {
    let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let request = format!(
        "DELETE /session/{session_id} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\
         Content-Length: 0\r\nConnection: close\r\n\r\n"
    );
    if stream.write_all(request.as_bytes()).is_ok() {
        // chromedriver answers once Chromium has quit; the first bytes are enough.
        let mut response = [0u8; 512];
        let _ = stream.read(&mut response);
    }
}

/// One request the relying party's server received.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    pub path: String,
    /// The raw query string ("" when there is none).
    pub query: String,
    pub content_type: Option<String>,
    /// The raw body (urlencoded for a form post).
    pub body: String,
}

impl Received {
    /// The decoded query parameters.
    pub fn query_pairs(&self) -> Vec<(String, String)> {
        decode_pairs(&self.query)
    }

    /// The decoded form fields of the body.
    pub fn form_pairs(&self) -> Vec<(String, String)> {
        decode_pairs(&self.body)
    }

    /// The single query parameter `name`; panics when it is repeated.
    pub fn query_param(&self, name: &str) -> Option<String> {
        single(&self.query_pairs(), name)
    }

    /// The single form field `name`; panics when it is repeated.
    pub fn form_param(&self, name: &str) -> Option<String> {
        single(&self.form_pairs(), name)
    }
}

fn decode_pairs(text: &str) -> Vec<(String, String)> {
    url::form_urlencoded::parse(text.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn single(pairs: &[(String, String)], name: &str) -> Option<String> {
    let mut values = pairs.iter().filter(|(k, _)| k == name).map(|(_, v)| v);
    let first = values.next().cloned();
    assert!(
        values.next().is_none(),
        "`{name}` appears more than once in {pairs:?}"
    );
    first
}

/// A relying party's web server on 127.0.0.1: answers every request with a small page and
/// records it; `/callback` is the redirect URI.
pub struct CallbackServer {
    /// `http://127.0.0.1:<port>/callback`.
    pub redirect_uri: String,
    received: Arc<Mutex<Vec<Received>>>,
    handle: actix_web::dev::ServerHandle,
}

/// The page the relying party shows at its callback.
pub const CALLBACK_PAGE: &str = "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<title>Relying party</title></head><body><h1 id=\"rp-callback\">Back at the application</h1></body></html>";

async fn record(
    request: HttpRequest,
    body: web::Bytes,
    received: web::Data<Mutex<Vec<Received>>>,
) -> HttpResponse {
    received.lock().unwrap().push(Received {
        method: request.method().as_str().to_owned(),
        path: request.path().to_owned(),
        query: request.query_string().to_owned(),
        content_type: request
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        body: String::from_utf8_lossy(&body).into_owned(),
    });
    if request.path() == "/callback" {
        HttpResponse::Ok()
            .content_type("text/html; charset=utf-8")
            .body(CALLBACK_PAGE)
    } else {
        HttpResponse::NotFound().finish()
    }
}

impl CallbackServer {
    /// Starts the server on a free port.
    pub async fn start() -> Self {
        let received: Arc<Mutex<Vec<Received>>> = Arc::default();
        let data = web::Data::from(received.clone());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .default_service(web::to(record))
        })
        .workers(1)
        .disable_signals()
        .shutdown_timeout(0)
        .bind(("127.0.0.1", 0))
        .expect("bind the callback server");
        let port = server.addrs()[0].port();
        let server = server.run();
        let handle = server.handle();
        tokio::spawn(server);
        Self {
            redirect_uri: format!("http://127.0.0.1:{port}/callback"),
            received,
            handle,
        }
    }

    /// Every request to `/callback` so far.
    pub fn callbacks(&self) -> Vec<Received> {
        self.received
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.path == "/callback")
            .cloned()
            .collect()
    }

    /// Waits up to [`STEP`] for the callback request number `index` (from 0) and returns it.
    pub async fn wait_for_callback(&self, index: usize) -> Received {
        let deadline = Instant::now() + STEP;
        loop {
            if let Some(request) = self.callbacks().get(index) {
                return request.clone();
            }
            assert!(
                Instant::now() < deadline,
                "the callback received no request #{} within {STEP:?}; it got {:?}",
                index + 1,
                self.received.lock().unwrap()
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Stops the server.
    pub async fn stop(self) {
        self.handle.stop(false).await;
    }
}

/// An authorization request URL for `client`, with `extra` parameters appended.
pub fn authorize_url(
    app: &TestApp,
    client: &ClientView,
    redirect_uri: &str,
    state: &str,
    extra: &[(&str, &str)],
) -> String {
    let mut url = Url::parse(&app.url("/oauth/authorize")).unwrap();
    let nonce = uuid::Uuid::new_v4().simple().to_string();
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &client.client_id)
        .append_pair("redirect_uri", redirect_uri)
        .append_pair("scope", "openid profile")
        .append_pair("state", state)
        .append_pair("nonce", &nonce)
        .extend_pairs(extra);
    url.into()
}

/// RFC 6749 §2.3.1: the client id and secret are form-urlencoded before Basic encoding.
fn form_encode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// Redeems `code` at the token endpoint with the client's Basic credentials: status and body.
pub async fn redeem_code(
    app: &TestApp,
    client: &ClientView,
    code: &str,
    redirect_uri: &str,
) -> (u16, Value) {
    let secret = client
        .client_secret
        .as_deref()
        .expect("a confidential client");
    let credentials = base64::engine::general_purpose::STANDARD.encode(format!(
        "{}:{}",
        form_encode(&client.client_id),
        form_encode(secret)
    ));
    let response = reqwest::Client::new()
        .post(app.url("/oauth/token"))
        .header("Authorization", format!("Basic {credentials}"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect_uri),
        ])
        .send()
        .await
        .expect("the token endpoint answers");
    let status = response.status().as_u16();
    let body = response.json().await.expect("a JSON token response");
    (status, body)
}

/// The claims of a JWT (signature not checked: other tests verify signatures).
pub fn jwt_claims(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).expect("a compact JWT");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("a base64url payload");
    serde_json::from_slice(&bytes).expect("JSON claims")
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Waits (polling, up to two seconds) until the clock has moved past `second`.
pub async fn wait_until_after(second: i64) {
    let deadline = Instant::now() + Duration::from_secs(2);
    while unix_now() <= second {
        assert!(
            Instant::now() < deadline,
            "the clock did not pass {second} within 2 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The length of a TOTP time step: RFC 6238's default, which Latchkey uses.
pub const TOTP_STEP: u64 = 30;

/// The TOTP code of a base32 `secret` for the time step that holds `unix_time`.
pub fn totp_code(secret: &str, unix_time: u64) -> String {
    totp_rs::Builder::new()
        .with_secret(totp_rs::Secret::try_from_base32(secret).expect("a base32 secret"))
        .build()
        .expect("valid TOTP parameters")
        .generate(unix_time)
        .to_string()
}

/// The TOTP code of `secret` for now.
pub fn totp_now(secret: &str) -> String {
    totp_code(secret, unix_now() as u64)
}

/// A six-digit code that no time step within two of now accepts for `secret`.
pub fn wrong_totp_code(secret: &str) -> String {
    let now = unix_now() as u64;
    let near: Vec<String> = (0..5)
        .map(|i| totp_code(secret, now + i * TOTP_STEP - 2 * TOTP_STEP))
        .collect();
    let mut candidate: u32 = near[2].parse().expect("a numeric code");
    loop {
        candidate = (candidate + 500_001) % 1_000_000;
        let code = format!("{candidate:06}");
        if !near.contains(&code) {
            return code;
        }
    }
}

/// A recovery code as Latchkey shows one: `xxxxx-xxxxx` from its alphabet without look-alikes.
pub fn new_recovery_code() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";
    let mut rng = rand::thread_rng();
    let mut code = String::with_capacity(11);
    for i in 0..10 {
        if i == 5 {
            code.push('-');
        }
        code.push(char::from(ALPHABET[rng.gen_range(0..ALPHABET.len())]));
    }
    code
}

/// What Latchkey hashes of a recovery code: lower case, letters and digits only.
pub fn normalise_recovery_code(code: &str) -> String {
    code.chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// The stored hash of a recovery code.
pub fn recovery_code_hash(app: &TestApp, code: &str) -> String {
    app.state
        .crypto
        .hash_token(&normalise_recovery_code(code))
        .0
}

/// Two-step verification as turned on by [`turn_on_mfa`]: the key and the recovery codes.
pub struct MfaOn {
    /// The TOTP secret in base32.
    pub secret: String,
    /// Ten recovery codes, `xxxxx-xxxxx`.
    pub recovery_codes: Vec<String>,
}

/// Turns two-step verification on for `user_id` directly in the store, as a confirmed setup
/// leaves it but with no time step used yet (so a code of the current step is accepted).
pub async fn turn_on_mfa(app: &TestApp, user_id: &str) -> MfaOn {
    let secret = totp_rs::Secret::generate().to_base32();
    let recovery_codes: Vec<String> = (0..10).map(|_| new_recovery_code()).collect();
    let hashes: Vec<String> = recovery_codes
        .iter()
        .map(|code| recovery_code_hash(app, code))
        .collect();
    let sealed = app
        .state
        .crypto
        .seal(secret.as_bytes(), &format!("totp:{user_id}"));
    let id = user_id.to_owned();
    app.state
        .store
        .run(move |conn| {
            let mut row = latchkey::store::security::find(conn, &id)?;
            row.mfa_enabled = true;
            row.totp_secret = Some(sealed);
            row.totp_last_step = None;
            latchkey::store::security::save(conn, &row)?;
            latchkey::store::mfa::replace_recovery_codes(conn, &id, &hashes, unix_now())
        })
        .await
        .expect("two-step verification is turned on in the store");
    MfaOn {
        secret,
        recovery_codes,
    }
}

/// The stored security state of an account.
pub async fn security_state(
    app: &TestApp,
    user_id: &str,
) -> latchkey::store::security::SecurityRow {
    let id = user_id.to_owned();
    app.state
        .store
        .run(move |conn| latchkey::store::security::find(conn, &id))
        .await
        .expect("the security state")
}

/// The stored recovery codes of an account: each hash with whether it was used, sorted.
pub async fn stored_recovery_codes(app: &TestApp, user_id: &str) -> Vec<(String, bool)> {
    use diesel::prelude::*;
    use latchkey::store::schema::recovery_codes;
    let id = user_id.to_owned();
    let rows: Vec<(String, Option<i64>)> = app
        .state
        .store
        .run(move |conn| {
            Ok(recovery_codes::table
                .filter(recovery_codes::user_id.eq(&id))
                .select((recovery_codes::code_hash, recovery_codes::used_at))
                .load(conn)?)
        })
        .await
        .expect("the recovery codes");
    // Sorted here, not by the database: PostgreSQL's collation need not be byte order.
    let mut codes: Vec<(String, bool)> = rows
        .into_iter()
        .map(|(hash, used)| (hash, used.is_some()))
        .collect();
    codes.sort();
    codes
}

/// The live (not revoked) browser sessions of an account, oldest first.
pub async fn live_browser_sessions(
    app: &TestApp,
    user_id: &str,
) -> Vec<latchkey::store::sessions::SessionRow> {
    use diesel::prelude::*;
    use latchkey::store::schema::sessions;
    use latchkey::store::sessions::SessionRow;
    let id = user_id.to_owned();
    app.state
        .store
        .run(move |conn| {
            Ok(sessions::table
                .filter(sessions::user_id.eq(&id))
                .filter(sessions::kind.eq("browser"))
                .filter(sessions::revoked_at.is_null())
                .order((sessions::created_at, sessions::id))
                .select(SessionRow::as_select())
                .load(conn)?)
        })
        .await
        .expect("the sessions")
}

/// Sets the stored `auth_time` of a session (to make a sign-in look older).
pub async fn set_auth_time(app: &TestApp, session_id: &str, auth_time: i64) {
    use diesel::prelude::*;
    use latchkey::store::schema::sessions;
    let id = session_id.to_owned();
    let updated = app
        .state
        .store
        .run(move |conn| {
            Ok(diesel::update(sessions::table.find(&id))
                .set(sessions::auth_time.eq(auth_time))
                .execute(conn)?)
        })
        .await
        .expect("the session is updated");
    assert_eq!(updated, 1, "session {session_id} exists");
}
