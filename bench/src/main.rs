//! The dynamic workloads of Latchkey's benchmark, over loopback with N keep-alive connections:
//!
//! - `refresh`: each connection holds its own refresh-token chain (from a code-flow login) and
//!   rotates it as fast as the server answers: every request uses the token the previous answer
//!   returned, as a real client must.
//! - `login`: the full password login of a browser, again and again, each as a new browser
//!   (no cookies) so every one really authenticates: `GET /oauth/authorize` → the login page →
//!   `POST /login` (argon2id) → the redirect with the code → `POST /oauth/token`.
//!
//! Prints one JSON line: requests completed, errors, seconds, requests/s, p50 and p99 in ms.
//! `bench/run` starts the server, measures its CPU and memory, and prints the table.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Parser, ValueEnum};
use hdrhistogram::Histogram;
use serde_json::{Value, json};
use tokio::sync::Mutex;
use url::Url;

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Workload {
    Refresh,
    Login,
}

#[derive(Debug, Parser)]
struct Args {
    /// Which workload.
    #[arg(value_enum)]
    workload: Workload,
    /// The server's base URL.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// Concurrent connections.
    #[arg(long, default_value_t = 32)]
    connections: usize,
    /// Seconds to run.
    #[arg(long, default_value_t = 15)]
    duration: u64,
    #[arg(long)]
    client_id: String,
    #[arg(long)]
    client_secret: String,
    /// A redirect URI registered by the client.
    #[arg(long, default_value = "http://127.0.0.1:9/callback")]
    redirect_uri: String,
    #[arg(long)]
    username: String,
    #[arg(long)]
    password: String,
}

/// The value of a hidden input in a page (askama escapes `&` as `&#38;`).
fn input_value(html: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker)? + marker.len();
    let end = html[start..].find('"')? + start;
    Some(html[start..end].replace("&#38;", "&").replace("&amp;", "&"))
}

/// A browser's cookies for one login, kept by hand: a reqwest client with its own cookie store
/// per login would also build a TLS context per login, which costs the load generator more CPU
/// than the server spends on the login, argon2 included.
#[derive(Default)]
struct Cookies(Vec<(String, String)>);

impl Cookies {
    /// Takes in the `Set-Cookie` headers of a response (a cleared cookie is forgotten).
    fn update(&mut self, response: &reqwest::Response) {
        for header in response.headers().get_all("set-cookie") {
            let Some((name, value)) = header
                .to_str()
                .ok()
                .and_then(|h| h.split(';').next())
                .and_then(|pair| pair.split_once('='))
            else {
                continue;
            };
            self.0.retain(|(n, _)| n != name.trim());
            if !value.is_empty() {
                self.0.push((name.trim().to_owned(), value.to_owned()));
            }
        }
    }

    /// The `Cookie` header to send.
    fn header(&self) -> String {
        let pairs: Vec<String> = self.0.iter().map(|(n, v)| format!("{n}={v}")).collect();
        pairs.join("; ")
    }
}

/// One full password login, as a new browser (no cookies yet); returns the token response.
async fn login(browser: &reqwest::Client, args: &Args) -> anyhow::Result<Value> {
    let mut cookies = Cookies::default();
    let mut authorize = Url::parse(&format!("{}/oauth/authorize", args.url))?;
    authorize
        .query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &args.client_id)
        .append_pair("redirect_uri", &args.redirect_uri)
        .append_pair("scope", "openid offline_access")
        .append_pair("state", "bench");
    let mut next = authorize.to_string();
    let mut code = None;
    for _ in 0..6 {
        let response = browser
            .get(&next)
            .header("cookie", cookies.header())
            .send()
            .await?;
        cookies.update(&response);
        let status = response.status().as_u16();
        if (300..400).contains(&status) {
            let location = response
                .headers()
                .get("location")
                .context("a redirect without Location")?
                .to_str()?
                .to_owned();
            let target = Url::parse(&args.url)?.join(&location)?;
            if target.as_str().starts_with(&args.redirect_uri) {
                code = target
                    .query_pairs()
                    .find(|(k, _)| k == "code")
                    .map(|(_, v)| v.into_owned());
                break;
            }
            next = target.to_string();
            continue;
        }
        if status != 200 {
            bail!("GET {next} answered {status}");
        }
        let html = response.text().await?;
        let form = [
            (
                "csrf_token",
                input_value(&html, "csrf_token").context("no CSRF token")?,
            ),
            (
                "request",
                input_value(&html, "request").context("no request id")?,
            ),
            ("username", args.username.clone()),
            ("password", args.password.clone()),
        ];
        let submitted = browser
            .post(format!("{}/login", args.url))
            .header("cookie", cookies.header())
            .form(&form)
            .send()
            .await?;
        cookies.update(&submitted);
        let status = submitted.status().as_u16();
        if !(300..400).contains(&status) {
            bail!("POST /login answered {status}");
        }
        let location = submitted
            .headers()
            .get("location")
            .context("a redirect without Location")?
            .to_str()?
            .to_owned();
        let target = Url::parse(&args.url)?.join(&location)?;
        if target.as_str().starts_with(&args.redirect_uri) {
            code = target
                .query_pairs()
                .find(|(k, _)| k == "code")
                .map(|(_, v)| v.into_owned());
            break;
        }
        next = target.to_string();
    }
    let code = code.context("the login did not end with a code")?;
    let tokens = browser
        .post(format!("{}/oauth/token", args.url))
        .basic_auth(&args.client_id, Some(&args.client_secret))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", &args.redirect_uri),
        ])
        .send()
        .await?;
    let status = tokens.status().as_u16();
    let body: Value = tokens.json().await?;
    if status != 200 {
        bail!("the code exchange answered {status}: {body}");
    }
    Ok(body)
}

/// One rotation of a refresh-token chain; returns the next refresh token.
async fn refresh(client: &reqwest::Client, args: &Args, token: &str) -> anyhow::Result<String> {
    let response = client
        .post(format!("{}/oauth/token", args.url))
        .basic_auth(&args.client_id, Some(&args.client_secret))
        .form(&[("grant_type", "refresh_token"), ("refresh_token", token)])
        .send()
        .await?;
    let status = response.status().as_u16();
    let body: Value = response.json().await?;
    if status != 200 {
        bail!("refresh answered {status}: {body}");
    }
    body["refresh_token"]
        .as_str()
        .map(str::to_owned)
        .context("no refresh_token in the answer")
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Arc::new(Args::parse());
    let shared = reqwest::Client::builder()
        .pool_max_idle_per_host(args.connections)
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    // Refresh chains start from real logins (one per connection), before the clock starts.
    let mut chains = Vec::new();
    if let Workload::Refresh = args.workload {
        for _ in 0..args.connections {
            let tokens = login(&shared, &args)
                .await
                .context("the login that starts a chain")?;
            chains.push(
                tokens["refresh_token"]
                    .as_str()
                    .context("no refresh token: does the client have the refresh_token grant?")?
                    .to_owned(),
            );
        }
    }
    let latencies = Arc::new(Mutex::new(
        Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("valid bounds"),
    ));
    let errors = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for index in 0..args.connections {
        let (args, shared, errors, stop) =
            (args.clone(), shared.clone(), errors.clone(), stop.clone());
        let mut chain = chains.get(index).cloned();
        tasks.push(tokio::spawn(async move {
            let mut local = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
            while !stop.load(Ordering::Relaxed) {
                let begun = Instant::now();
                let outcome = match args.workload {
                    Workload::Refresh => {
                        let token = chain.clone().unwrap_or_default();
                        refresh(&shared, &args, &token)
                            .await
                            .map(|next| chain = Some(next))
                    }
                    Workload::Login => login(&shared, &args).await.map(drop),
                };
                match outcome {
                    Ok(()) => {
                        let micros = begun.elapsed().as_micros().max(1) as u64;
                        let _ = local.record(micros);
                    }
                    Err(error) => {
                        if errors.fetch_add(1, Ordering::Relaxed) < 3 {
                            eprintln!("error: {error:#}");
                        }
                        if matches!(args.workload, Workload::Refresh) {
                            // A broken chain cannot go on.
                            return local;
                        }
                    }
                }
            }
            local
        }));
    }
    tokio::time::sleep(Duration::from_secs(args.duration)).await;
    stop.store(true, Ordering::Relaxed);
    let mut total = latencies.lock().await;
    for task in tasks {
        total.add(task.await?)?;
    }
    let seconds = started.elapsed().as_secs_f64();
    let requests = total.len();
    println!(
        "{}",
        json!({
            "workload": format!("{:?}", args.workload).to_lowercase(),
            "requests": requests,
            "errors": errors.load(Ordering::Relaxed),
            "seconds": seconds,
            "rps": requests as f64 / seconds,
            "p50_ms": total.value_at_quantile(0.50) as f64 / 1000.0,
            "p99_ms": total.value_at_quantile(0.99) as f64 / 1000.0,
        })
    );
    Ok(())
}
