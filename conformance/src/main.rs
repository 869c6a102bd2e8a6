//! `latchkey-conformance`: runs, over HTTP against a running Latchkey (or any OP), every
//! automatable module of the OpenID Foundation's Basic, Config, Form Post, RP-Initiated
//! Logout, Back-Channel Logout and Front-Channel Logout OP test plans, with the suite's
//! FAILURE/WARNING levels, and prints one line per module.
//!
//! It is a black box: it only speaks HTTP to the OP (plus the optional key-rotation command),
//! and listens for the OP's back-channel logout requests.

mod basic;
mod browser;
mod checks;
mod config;
mod config_plan;
mod harness;
mod html;
mod jose;
mod logout;
mod receiver;
mod report;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use clap::Parser;

use crate::harness::Env;
use crate::report::{Outcome, Verdict};

/// Runs the OIDF Basic, Config, Form Post and logout OP plans' automatable modules against an OP.
#[derive(Debug, Parser)]
#[command(name = "latchkey-conformance", version, about)]
struct Cli {
    /// The JSON configuration (issuer, clients, user, ...); see conformance/README.md.
    #[arg(long, value_name = "PATH")]
    config: PathBuf,
    /// Only run modules whose id contains this text (repeatable).
    #[arg(long = "only", value_name = "TEXT")]
    only: Vec<String>,
    /// Print each module's duration.
    #[arg(long)]
    timings: bool,
    /// Print what each module saw (requests, tokens' claims, UserInfo) under its line.
    #[arg(long, short)]
    verbose: bool,
}

/// One module to run.
#[derive(Debug, Clone, Copy)]
enum Module {
    Discovery,
    RotateKeys,
    Basic(&'static str, bool),
    Logout(logout::Plan, &'static str),
}

impl Module {
    fn id(&self) -> String {
        match self {
            Module::Discovery => "oidcc-discovery-endpoint-verification".into(),
            Module::RotateKeys => "oidcc-server-rotate-keys".into(),
            Module::Basic(id, false) => (*id).to_owned(),
            Module::Basic(id, true) => format!("formpost/{id}"),
            Module::Logout(plan, id) => format!("{}/{id}", plan.prefix()),
        }
    }

    fn slow(&self) -> bool {
        matches!(self, Module::Basic(id, _) if basic::SLOW.contains(id))
    }

    async fn run(self, env: Arc<Env>) -> Outcome {
        match self {
            Module::Discovery => config_plan::discovery_endpoint_verification(env).await,
            Module::RotateKeys => config_plan::rotate_keys(env).await,
            Module::Basic(id, form_post) => basic::run(id, env, form_post).await,
            Module::Logout(plan, id) => logout::run(plan, id, env).await,
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match config::Config::load(&cli.config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::from(2);
        }
    };
    println!(
        "latchkey-conformance: OIDF Basic, Config, Form Post, RP-Initiated, Back-Channel and Front-Channel Logout OP plans against {}",
        config.issuer
    );
    if config.allow_http {
        println!(
            "NOTE  allow_http is on: http:// URLs are accepted where the suite requires https (checklist §6.2) — local runs only"
        );
    }
    let mut env = match Env::new(config) {
        Ok(env) => env,
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::from(2);
        }
    };

    // Plan order: Config plan, Basic plan, Form Post plan, the logout plans, then key rotation.
    let mut modules = vec![Module::Discovery];
    modules.extend(basic::MODULES.iter().map(|id| Module::Basic(id, false)));
    modules.extend(basic::MODULES.iter().map(|id| Module::Basic(id, true)));
    for plan in [
        logout::Plan::RpInitiated,
        logout::Plan::Backchannel,
        logout::Plan::Frontchannel,
    ] {
        modules.extend(plan.modules().iter().map(|id| Module::Logout(plan, id)));
    }
    modules.push(Module::RotateKeys);
    if !cli.only.is_empty() {
        modules.retain(|m| cli.only.iter().any(|o| m.id().contains(o.as_str())));
    }

    // The back-channel logout receiver, when a selected module needs it.
    let listener_needed = modules
        .iter()
        .any(|m| matches!(m, Module::Logout(plan, id) if plan.needs_listener(id)));
    if listener_needed
        && let (Some(listen), Some(uri)) = (
            env.config.backchannel_listen.clone(),
            env.config.backchannel_logout_uri(),
        )
    {
        let path = url::Url::parse(&uri)
            .map(|u| u.path().to_owned())
            .unwrap_or_else(|_| "/".into());
        match receiver::Inbox::start(&listen, path).await {
            Ok(inbox) => env.backchannel = Some(inbox),
            Err(e) => {
                eprintln!("error: backchannel_listen: {e:#}");
                return ExitCode::from(2);
            }
        }
    }
    let env = Arc::new(env);

    let started = Instant::now();
    // Slow (waiting) modules start first; every module is its own task with its own browser.
    let mut order: Vec<usize> = (0..modules.len()).collect();
    order.sort_by_key(|i| !modules[*i].slow());
    let mut handles: Vec<Option<tokio::task::JoinHandle<Outcome>>> =
        (0..modules.len()).map(|_| None).collect();
    for i in order {
        let module = modules[i];
        let env = env.clone();
        handles[i] = Some(tokio::spawn(module.run(env)));
    }

    let (mut passed, mut failed, mut skipped) = (0, 0, 0);
    for (module, handle) in modules.iter().zip(handles) {
        let outcome = match handle.expect("spawned").await {
            Ok(o) => o,
            Err(e) => Outcome {
                id: module.id(),
                verdict: Verdict::Fail,
                reason: format!("harness: the module panicked: {e}"),
                warnings: Vec::new(),
                notes: Vec::new(),
                elapsed: started.elapsed(),
            },
        };
        match outcome.verdict {
            Verdict::Pass => passed += 1,
            Verdict::Fail => failed += 1,
            Verdict::Skip => skipped += 1,
        }
        if cli.timings {
            println!(
                "{}  [{:.1}s]",
                outcome.line(),
                outcome.elapsed.as_secs_f64()
            );
        } else {
            println!("{}", outcome.line());
        }
        if cli.verbose {
            for note in &outcome.notes {
                println!("        {note}");
            }
        }
    }
    println!(
        "{passed} passed, {failed} failed, {skipped} skipped ({:.1}s)",
        started.elapsed().as_secs_f64()
    );
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
