//! The logout plans: RP-Initiated Logout (checklist §8), Back-Channel Logout (§9) and the
//! Front-Channel Logout modules of the §9 notes.
//!
//! Every flow module is `AbstractOIDCCRpInitiatedLogout`: a normal code flow (state of 128
//! characters) with the §2 checks, then the browser goes to the `end_session_endpoint` with
//! `id_token_hint`, `post_logout_redirect_uri` and a random 50-character `state`, changed per
//! module. Where the person must come back, the post-logout redirect is checked and an
//! authorization request with `prompt=none` must then fail; where the suite asks for a
//! screenshot, the page is asserted instead (§10). The harness runs no JavaScript: a signed-out
//! page that continues to the client by a link or a `<meta http-equiv="refresh">` counts as
//! that redirect, and front-channel logout is judged from the page's `<iframe>`s.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::Rng;
use serde_json::{Map, Value};
use url::Url;

use crate::browser::{Browser, Callback, Landing};
use crate::checks::{self, Params, param};
use crate::config_plan::https_url_problem;
use crate::harness::{AuthMethod, Ctx, Env, Server, Which, random_string};
use crate::html;
use crate::jose::{self, Jwt};
use crate::receiver::Received;
use crate::report::{Outcome, Step, Stop, skip, stop};

/// The RP-Initiated Logout plan's modules, in the plan's order.
pub const RP_MODULES: &[&str] = &[
    "oidcc-rp-initiated-logout-discovery-endpoint-verification",
    "oidcc-rp-initiated-logout",
    "oidcc-rp-initiated-logout-bad-post-logout-redirect-uri",
    "oidcc-rp-initiated-logout-modified-id-token-hint",
    "oidcc-rp-initiated-logout-no-id-token-hint",
    "oidcc-rp-initiated-logout-no-params",
    "oidcc-rp-initiated-logout-no-post-logout-redirect-uri",
    "oidcc-rp-initiated-logout-no-state",
    "oidcc-rp-initiated-logout-only-state",
    "oidcc-rp-initiated-logout-query-added-to-post-logout-redirect-uri",
    "oidcc-rp-initiated-logout-bad-id-token-hint",
];

/// The Back-Channel Logout plan's modules.
pub const BACKCHANNEL_MODULES: &[&str] = &[
    "oidcc-backchannel-logout-discovery-endpoint-verification",
    "oidcc-backchannel-rp-initiated-logout",
];

/// The Front-Channel Logout plan's modules (without a JavaScript browser: iframes are read).
pub const FRONTCHANNEL_MODULES: &[&str] = &[
    "oidcc-frontchannel-logout-discovery-endpoint-verification",
    "oidcc-frontchannel-rp-initiated-logout",
];

/// The event member of a logout token.
const LOGOUT_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

/// Which plan a module belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan {
    RpInitiated,
    Backchannel,
    Frontchannel,
}

impl Plan {
    /// The prefix of the plan's module ids in the output.
    pub fn prefix(self) -> &'static str {
        match self {
            Plan::RpInitiated => "logout",
            Plan::Backchannel => "backchannel",
            Plan::Frontchannel => "frontchannel",
        }
    }

    pub fn modules(self) -> &'static [&'static str] {
        match self {
            Plan::RpInitiated => RP_MODULES,
            Plan::Backchannel => BACKCHANNEL_MODULES,
            Plan::Frontchannel => FRONTCHANNEL_MODULES,
        }
    }

    /// The module that needs the back-channel listener.
    pub fn needs_listener(self, id: &str) -> bool {
        self == Plan::Backchannel && id == "oidcc-backchannel-rp-initiated-logout"
    }
}

/// Runs one module.
pub async fn run(plan: Plan, id: &'static str, env: Arc<Env>) -> Outcome {
    let started = Instant::now();
    let mut ctx = Ctx::new(env, false);
    let result = dispatch(plan, id, &mut ctx).await;
    let Ctx { rec, .. } = ctx;
    rec.finish(format!("{}/{id}", plan.prefix()), result, started.elapsed())
}

/// How a module changes the end-session request, and what it expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Variant {
    /// `oidcc-rp-initiated-logout` (and the back- and front-channel modules).
    Normal,
    NoState,
    BadPostLogoutRedirectUri,
    ModifiedIdTokenHint,
    NoIdTokenHint,
    NoParams,
    NoPostLogoutRedirectUri,
    OnlyState,
    QueryAdded,
    BadIdTokenHint,
}

/// What the OP must do with the end-session request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// Send the person to the post-logout redirect URI.
    Redirect,
    /// Never redirect: an error page or a logout confirmation (placeholder `condition`).
    ErrorOrConfirmation(&'static str),
    /// Never redirect: log the person out and show a logged-out page.
    LoggedOutPage,
}

impl Variant {
    fn expect(self) -> Expect {
        match self {
            Variant::Normal | Variant::NoState => Expect::Redirect,
            Variant::BadPostLogoutRedirectUri | Variant::QueryAdded => {
                Expect::ErrorOrConfirmation("ExpectPostLogoutRedirectUriNotRegisteredErrorPage")
            }
            Variant::ModifiedIdTokenHint | Variant::BadIdTokenHint => {
                Expect::ErrorOrConfirmation("ExpectInvalidIdTokenHintErrorPage")
            }
            Variant::NoIdTokenHint => {
                Expect::ErrorOrConfirmation("ExpectIdTokenHintRequiredErrorPage")
            }
            Variant::NoParams | Variant::NoPostLogoutRedirectUri | Variant::OnlyState => {
                Expect::LoggedOutPage
            }
        }
    }
}

async fn dispatch(plan: Plan, id: &str, ctx: &mut Ctx) -> Step<()> {
    match id {
        "oidcc-rp-initiated-logout-discovery-endpoint-verification"
        | "oidcc-backchannel-logout-discovery-endpoint-verification"
        | "oidcc-frontchannel-logout-discovery-endpoint-verification" => discovery(ctx, plan).await,
        "oidcc-rp-initiated-logout"
        | "oidcc-backchannel-rp-initiated-logout"
        | "oidcc-frontchannel-rp-initiated-logout" => logout(ctx, plan, Variant::Normal).await,
        "oidcc-rp-initiated-logout-bad-post-logout-redirect-uri" => {
            logout(ctx, plan, Variant::BadPostLogoutRedirectUri).await
        }
        "oidcc-rp-initiated-logout-modified-id-token-hint" => {
            logout(ctx, plan, Variant::ModifiedIdTokenHint).await
        }
        "oidcc-rp-initiated-logout-no-id-token-hint" => {
            logout(ctx, plan, Variant::NoIdTokenHint).await
        }
        "oidcc-rp-initiated-logout-no-params" => logout(ctx, plan, Variant::NoParams).await,
        "oidcc-rp-initiated-logout-no-post-logout-redirect-uri" => {
            logout(ctx, plan, Variant::NoPostLogoutRedirectUri).await
        }
        "oidcc-rp-initiated-logout-no-state" => logout(ctx, plan, Variant::NoState).await,
        "oidcc-rp-initiated-logout-only-state" => logout(ctx, plan, Variant::OnlyState).await,
        "oidcc-rp-initiated-logout-query-added-to-post-logout-redirect-uri" => {
            logout(ctx, plan, Variant::QueryAdded).await
        }
        "oidcc-rp-initiated-logout-bad-id-token-hint" => {
            logout(ctx, plan, Variant::BadIdTokenHint).await
        }
        other => stop("harness", format!("unknown module {other}")),
    }
}

// ----------------------------------------------------------------------------------------
// The discovery modules

/// `oidcc-{rp-initiated,backchannel,frontchannel}-logout-discovery-endpoint-verification`.
async fn discovery(ctx: &mut Ctx, plan: Plan) -> Step<()> {
    let env = ctx.env.clone();
    let (response, d) = ctx.fetch_discovery().await?;
    if plan == Plan::Frontchannel {
        if response.status != 200 {
            ctx.rec.failure(
                "EnsureDiscoveryEndpointResponseStatusCodeIs200",
                format!("discovery answered HTTP {} (OIDCD-4)", response.status),
            );
        }
        if response.mime() != "application/json" {
            ctx.rec.failure(
                "CheckDiscoveryEndpointReturnedJsonContentType",
                format!(
                    "discovery's Content-Type is {:?}, not application/json (OIDCD-4)",
                    response.mime()
                ),
            );
        }
    }
    for name in d.keys().filter(|k| k.ends_with("_endpoint")) {
        if let Some(problem) = https_url_problem(&env, &d, name) {
            ctx.rec
                .failure("CheckDiscEndpointAllEndpointsAreHttps", problem);
        }
    }
    let must_be_true =
        |ctx: &mut Ctx, member: &str, condition: &str, requirement: &str| match d.get(member) {
            Some(Value::Bool(true)) => {}
            Some(other) => ctx.rec.failure(
                condition,
                format!("{member} is {other}, not true ({requirement})"),
            ),
            None => ctx.rec.failure(
                condition,
                format!("{member} is missing, which means false ({requirement})"),
            ),
        };
    match plan {
        Plan::RpInitiated => {}
        Plan::Backchannel => {
            must_be_true(
                ctx,
                "backchannel_logout_supported",
                "CheckDiscEndpointBackchannelLogoutSupported",
                "OIDCBCL-2.1",
            );
            must_be_true(
                ctx,
                "backchannel_logout_session_supported",
                "CheckDiscEndpointBackchannelLogoutSessionSupported",
                "OIDCBCL-2.1: certification requires sid",
            );
        }
        Plan::Frontchannel => {
            must_be_true(
                ctx,
                "frontchannel_logout_supported",
                "CheckDiscEndpointFrontchannelLogoutSupported",
                "OIDCFCL-2",
            );
            must_be_true(
                ctx,
                "frontchannel_logout_session_supported",
                "CheckDiscEndpointFrontchannelLogoutSessionSupported",
                "OIDCFCL-2: certification requires sid",
            );
        }
    }
    if let Some(problem) = https_url_problem(&env, &d, "end_session_endpoint") {
        ctx.rec.failure("CheckDiscEndSessionEndpoint", problem);
    }
    Ok(())
}

// ----------------------------------------------------------------------------------------
// The flow modules

/// `CreateRandomEndSessionState`: 50 VSCHAR characters, `+` and space replaced by `~`.
fn end_session_state() -> String {
    let mut rng = rand::thread_rng();
    (0..50)
        .map(|_| match rng.gen_range(0x20u8..=0x7e) {
            b'+' | b' ' => '~',
            b => b as char,
        })
        .collect()
}

/// `GenerateFakeIdTokenClaims` + `SignFakeIdToken`: an ID token "issued" by the client (iss
/// and aud swapped), signed with the client's key — HMAC of its secret, as it has no JWKS.
fn fake_id_token(client_id: &str, client_secret: &str, issuer: &str) -> Step<String> {
    let iat = checks::now() as i64;
    let claims = serde_json::json!({
        "iss": client_id,
        "sub": "SubjectID",
        "aud": issuer,
        "nonce": "flibble",
        "iat": iat,
        "exp": iat + 300,
    });
    let input = format!(
        "{}.{}",
        jose::b64url(br#"{"alg":"HS256"}"#),
        jose::b64url(claims.to_string().as_bytes())
    );
    let signer = josekit::jws::HS256
        .signer_from_bytes(client_secret.as_bytes())
        .or_else(|e| stop("SignFakeIdToken", e))?;
    let signature = josekit::jws::JwsSigner::sign(&signer, input.as_bytes())
        .or_else(|e| stop("SignFakeIdToken", e))?;
    Ok(format!("{input}.{}", jose::b64url(&signature)))
}

/// `ChangeIdTokenToAlgNone`: the same payload under `{"alg":"none"}`, no signature.
fn alg_none(token: &Jwt) -> String {
    let payload = token.raw.split('.').nth(1).unwrap_or_default();
    format!("{}.{payload}.", jose::b64url(br#"{"alg":"none"}"#))
}

/// A URL without query and fragment, for comparisons.
fn base_of(url: &Url) -> String {
    let mut u = url.clone();
    u.set_query(None);
    u.set_fragment(None);
    u.to_string()
}

/// What the browser ended on after the end-session request, followed as the person would.
struct LogoutResult {
    /// The client the OP sent the browser to (a redirect, or the signed-out page's link / meta
    /// refresh), with how: `redirect`, `continue link` or `meta refresh`.
    redirect: Option<(Callback, &'static str)>,
    /// The last page shown (when no redirect left the OP).
    page: Option<Page>,
    /// Every `<iframe src>` of the OP's pages, resolved.
    frames: Vec<Url>,
    /// The person confirmed a logout confirmation page.
    confirmed: bool,
}

#[derive(Debug, Clone)]
struct Page {
    status: u16,
    url: Url,
    content_type: String,
    body: String,
}

impl Page {
    fn landing(&self) -> Landing {
        Landing::Page {
            status: self.status,
            url: self.url.clone(),
            content_type: self.content_type.clone(),
            body: self.body.clone(),
        }
    }
}

/// The client the page continues to: its `a#continue` link, else its meta refresh, when that
/// leaves the issuer's origin.
fn page_redirect(page: &Page, issuer: &Url) -> Option<(Callback, &'static str)> {
    let link = html::elements(&page.body, "a")
        .into_iter()
        .find(|a| html::attr(a, "id") == Some("continue"))
        .and_then(|a| html::attr(&a, "href").map(str::to_owned))
        .map(|href| (href, "continue link"));
    let refresh = html::meta_refresh(&page.body).map(|t| (t, "meta refresh"));
    let (target, how) = link.or(refresh)?;
    let target = page.url.join(&target).ok()?;
    (target.origin() != issuer.origin()).then(|| (Callback::redirect(target), how))
}

/// Sends the browser to the end-session endpoint and follows the OP as the person would: a
/// logout confirmation is confirmed when `confirm` is set.
async fn end_session(
    ctx: &mut Ctx,
    browser: &Browser,
    endpoint: &Url,
    params: &Params,
    confirm: bool,
) -> Step<LogoutResult> {
    let issuer = ctx.env.issuer_url.clone();
    let (mut landing, mut seen) = browser
        .open(endpoint, params, false)
        .await
        .map_err(|e| Stop::Fail(format!("browser: {e}")))?;
    let mut result = LogoutResult {
        redirect: None,
        page: None,
        frames: Vec::new(),
        confirmed: false,
    };
    loop {
        ctx.rec
            .note(format!("logout browser: {}", seen.hops.join(" | ")));
        let page = match landing {
            Landing::Callback(cb) => {
                ctx.rec
                    .note(format!("logout redirect: {} {}", cb.method, cb.url));
                result.redirect = Some((cb, "redirect"));
                return Ok(result);
            }
            Landing::Page {
                status,
                url,
                content_type,
                body,
            } => Page {
                status,
                url,
                content_type,
                body,
            },
        };
        ctx.rec.note(format!(
            "logout page: HTTP {} {} {}",
            page.status,
            page.url,
            html::summary(&page.body)
        ));
        for frame in html::elements(&page.body, "iframe") {
            if let Some(src) = html::attr(&frame, "src")
                && let Ok(src) = page.url.join(src)
            {
                ctx.rec.note(format!("logout page iframe: {src}"));
                result.frames.push(src);
            }
        }
        if let Some((cb, how)) = page_redirect(&page, &issuer) {
            ctx.rec
                .note(format!("logout page continues ({how}) to {}", cb.url));
            result.redirect = Some((cb, how));
            result.page = Some(page);
            return Ok(result);
        }
        let confirmation = html::forms(&page.body)
            .into_iter()
            .find(|f| f.has_button("choice", "logout"));
        match confirmation {
            Some(form) if confirm && !result.confirmed => {
                result.confirmed = true;
                let mut fields = form.hidden_fields();
                fields.push(("choice".into(), "logout".into()));
                (landing, seen) = browser
                    .submit(&page.url, &form, &fields)
                    .await
                    .map_err(|e| Stop::Fail(format!("browser: {e}")))?;
            }
            _ => {
                result.page = Some(page);
                return Ok(result);
            }
        }
    }
}

/// The logout clients' configuration a module needs, or why it is skipped.
fn logout_client(ctx: &Ctx, plan: Plan) -> Step<crate::harness::Client> {
    let which = match plan {
        Plan::RpInitiated => Which::One,
        Plan::Backchannel => Which::Backchannel,
        Plan::Frontchannel => Which::Frontchannel,
    };
    let config = &ctx.env.config;
    if config.post_logout_redirect_uri.is_none() {
        return skip(
            "no post_logout_redirect_uri in the configuration (the suite needs one registered)",
        );
    }
    match plan {
        Plan::RpInitiated => {}
        Plan::Backchannel => {
            if config.client_backchannel.is_none() || ctx.env.backchannel.is_none() {
                return skip(
                    "no client_backchannel and backchannel_listen in the configuration (a \
                     client registered with the harness's backchannel_logout_uri)",
                );
            }
        }
        Plan::Frontchannel => {
            if config.client_frontchannel.is_none() || config.frontchannel_logout_uri.is_none() {
                return skip(
                    "no client_frontchannel and frontchannel_logout_uri in the configuration",
                );
            }
        }
    }
    match ctx.env.optional_client(which) {
        Some(client) => Ok(client),
        None => skip("the client is not configured"),
    }
}

/// `BuildRedirectToEndSessionEndpoint` needs discovery's `end_session_endpoint`.
fn end_session_endpoint(server: &Server) -> Step<Url> {
    match server
        .discovery
        .get("end_session_endpoint")
        .and_then(Value::as_str)
    {
        Some(s) => Url::parse(s).or_else(|e| {
            stop(
                "BuildRedirectToEndSessionEndpoint",
                format!("end_session_endpoint {s:?} is not a URL: {e}"),
            )
        }),
        None => stop(
            "BuildRedirectToEndSessionEndpoint",
            "discovery has no end_session_endpoint",
        ),
    }
}

/// One flow module of the three plans.
async fn logout(ctx: &mut Ctx, plan: Plan, variant: Variant) -> Step<()> {
    let client = logout_client(ctx, plan)?;
    let post_logout_uri = ctx
        .env
        .config
        .post_logout_redirect_uri
        .clone()
        .unwrap_or_default();
    let server = ctx.configure(AuthMethod::Basic).await?;
    let endpoint = end_session_endpoint(&server)?;
    let browser = ctx.env.browser();

    // Flow 1: a normal code flow, with a longer state.
    let mut req = ctx.request(&client);
    req.set("state", random_string(128));
    let flow = ctx.full_flow(&browser, &server, &req).await?;
    let id_token = flow.tokens.id_token.clone();

    // Anything the back-channel listener received before the logout is not this logout's.
    if plan == Plan::Backchannel
        && let Some(inbox) = &ctx.env.backchannel
    {
        for stray in inbox.drain().await {
            ctx.rec.note(format!(
                "back-channel request before the logout (ignored): {}",
                stray.describe()
            ));
        }
    }

    // The end-session request.
    let state = end_session_state();
    let mut params: Params = vec![
        ("id_token_hint".into(), id_token.raw.clone()),
        ("post_logout_redirect_uri".into(), post_logout_uri.clone()),
        ("state".into(), state.clone()),
    ];
    let set = |params: &mut Params, name: &str, value: String| {
        if let Some(slot) = params.iter_mut().find(|(n, _)| n == name) {
            slot.1 = value;
        }
    };
    let remove = |params: &mut Params, name: &str| params.retain(|(n, _)| n != name);
    match variant {
        Variant::Normal => {}
        Variant::NoState => remove(&mut params, "state"),
        Variant::BadPostLogoutRedirectUri => {
            let bad = Url::parse(&post_logout_uri)
                .and_then(|u| u.join("bad_post_logout_redirect_uri"))
                .map(|u| u.to_string())
                .or_else(|e| stop("AddBadPostLogoutRedirectUriToEndSessionEndpointRequest", e))?;
            set(&mut params, "post_logout_redirect_uri", bad);
        }
        Variant::ModifiedIdTokenHint => set(&mut params, "id_token_hint", alg_none(&id_token)),
        Variant::NoIdTokenHint => remove(&mut params, "id_token_hint"),
        Variant::NoParams => params.clear(),
        Variant::NoPostLogoutRedirectUri => remove(&mut params, "post_logout_redirect_uri"),
        Variant::OnlyState => {
            remove(&mut params, "id_token_hint");
            remove(&mut params, "post_logout_redirect_uri");
        }
        Variant::QueryAdded => {
            let sep = if post_logout_uri.contains('?') {
                '&'
            } else {
                '?'
            };
            set(
                &mut params,
                "post_logout_redirect_uri",
                format!("{post_logout_uri}{sep}foo=bar"),
            );
        }
        Variant::BadIdTokenHint => {
            let fake = fake_id_token(&client.id, &client.secret, &server.issuer)?;
            set(&mut params, "id_token_hint", fake);
        }
    }
    ctx.rec.note(format!(
        "end-session request: {:?}",
        params
            .iter()
            .map(|(n, v)| {
                if n == "id_token_hint" {
                    format!("{n}=<{} chars>", v.len())
                } else {
                    format!("{n}={v}")
                }
            })
            .collect::<Vec<_>>()
    ));

    let expect = variant.expect();
    let result = end_session(
        ctx,
        &browser,
        &endpoint,
        &params,
        !matches!(expect, Expect::ErrorOrConfirmation(_)),
    )
    .await?;

    match expect {
        Expect::Redirect => {
            let Some((cb, how)) = result.redirect else {
                let page = result.page.expect("a page when no redirect");
                return stop(
                    "ExpectPostLogoutRedirect",
                    format!(
                        "the OP did not send the browser to post_logout_redirect_uri{}: it answered HTTP {} at {}: {} (OIDCRIL-2)",
                        if result.confirmed {
                            " (after the logout confirmation was confirmed)"
                        } else {
                            ""
                        },
                        page.status,
                        page.url,
                        html::summary(&page.body)
                    ),
                );
            };
            let registered = Url::parse(&post_logout_uri).map(|u| base_of(&u));
            if registered.as_deref() != Ok(cb.base().as_str()) {
                return stop(
                    "ExpectPostLogoutRedirect",
                    format!(
                        "the OP sent the browser ({how}) to {}, not to the post_logout_redirect_uri {post_logout_uri}",
                        cb.url
                    ),
                );
            }
            if plan == Plan::Backchannel {
                backchannel_checks(ctx, &server, &client.id, &id_token).await?;
            }
            if plan == Plan::Frontchannel {
                frontchannel_checks(ctx, &server, &result.frames, &id_token)?;
            }
            // Verify the post-logout redirect.
            let got = param(&cb.query, "state");
            if variant == Variant::NoState {
                if let Some(got) = got {
                    ctx.rec.failure(
                        "CheckNoPostLogoutState",
                        format!(
                            "the post-logout redirect carries state={got:?} although none was sent (OIDCRIL-2)"
                        ),
                    );
                }
            } else if got != Some(state.as_str()) {
                ctx.rec.failure(
                    "CheckPostLogoutState",
                    format!(
                        "the post-logout redirect's state is {got:?}, not the {state:?} sent (OIDCRIL-2): {}",
                        cb.url
                    ),
                );
            }
            let registered_query: Vec<String> = Url::parse(&post_logout_uri)
                .map(|u| u.query_pairs().map(|(k, _)| k.into_owned()).collect())
                .unwrap_or_default();
            let unexpected: Vec<&str> = cb
                .query
                .iter()
                .map(|(n, _)| n.as_str())
                .filter(|n| *n != "state" && !registered_query.iter().any(|r| r == n))
                .collect();
            if !unexpected.is_empty() || !cb.fragment.is_empty() {
                ctx.rec.warning(
                    "CheckForUnexpectedParametersInPostLogoutRedirect",
                    format!(
                        "the post-logout redirect carries more than state: {} (OIDCRIL-3)",
                        cb.url
                    ),
                );
            }
            // Flow 2: prompt=none must now fail.
            let mut again = ctx.request(&client);
            again.set("state", random_string(128));
            again.set("prompt", "none");
            ctx.expect_interaction_error(&browser, &server, &again)
                .await
        }
        Expect::ErrorOrConfirmation(condition) => {
            no_redirect(ctx, &result, condition)?;
            let page = result.page.expect("a page when no redirect");
            let seen = ctx.expect_error_page(&page.landing(), &Default::default(), condition)?;
            let kind = if html::forms(&page.body)
                .iter()
                .any(|f| f.has_button("choice", "logout"))
            {
                "a logout confirmation"
            } else {
                "an error page"
            };
            ctx.rec.note(format!("{condition}: {kind}: {seen}"));
            Ok(())
        }
        Expect::LoggedOutPage => {
            let condition = "ExpectSuccessfulLogoutPage";
            no_redirect(ctx, &result, condition)?;
            let page = result.page.expect("a page when no redirect");
            let seen = ctx.expect_error_page(&page.landing(), &Default::default(), condition)?;
            if page.status != 200 {
                return stop(
                    condition,
                    format!(
                        "the OP answered HTTP {} at {}: {}, an error page, not a logged-out page{}",
                        page.status,
                        page.url,
                        html::summary(&page.body),
                        if result.confirmed {
                            " (after the logout confirmation was confirmed)"
                        } else {
                            ""
                        }
                    ),
                );
            }
            if html::forms(&page.body)
                .iter()
                .any(|f| f.has_button("choice", "logout"))
            {
                return stop(
                    condition,
                    format!(
                        "confirming the logout showed the confirmation again at {}",
                        page.url
                    ),
                );
            }
            ctx.rec.note(format!(
                "{condition}: {}{seen}",
                if result.confirmed {
                    "confirmed the logout, then "
                } else {
                    ""
                }
            ));
            Ok(())
        }
    }
}

/// The suite fails a module that must not redirect as soon as the post-logout redirect URI is
/// called; the harness also fails any other redirect to the client.
fn no_redirect(ctx: &mut Ctx, result: &LogoutResult, condition: &str) -> Step<()> {
    let _ = ctx;
    match &result.redirect {
        Some((cb, how)) => stop(
            condition,
            format!(
                "the OP sent the browser to the client ({how}) instead of showing a page: {} {}",
                cb.method, cb.url
            ),
        ),
        None => Ok(()),
    }
}

// ----------------------------------------------------------------------------------------
// Back-channel logout (checklist §9)

/// Waits for the back-channel logout request and checks it and its logout token.
async fn backchannel_checks(
    ctx: &mut Ctx,
    server: &Server,
    client_id: &str,
    id_token: &Jwt,
) -> Step<()> {
    let env = ctx.env.clone();
    let inbox = env.backchannel.as_ref().expect("checked by logout_client");
    let uri = env.config.backchannel_logout_uri().unwrap_or_default();
    let path = Url::parse(&uri)
        .map(|u| u.path().to_owned())
        .unwrap_or_default();
    let wait = Duration::from_secs(env.config.backchannel_wait_secs.unwrap_or(10));
    ctx.rec.note(format!(
        "waiting up to {} s for the back-channel request on {} ({uri})",
        wait.as_secs(),
        inbox.addr
    ));
    let started = Instant::now();
    let deadline = started + wait;
    let request: Received = loop {
        let Some(r) = inbox.next(deadline).await else {
            return stop(
                "WaitForBackchannelLogoutRequest",
                format!(
                    "no back-channel logout request reached {uri} within {} s of the logout (OIDCBCL-2.5)",
                    wait.as_secs()
                ),
            );
        };
        if r.path() == path {
            break r;
        }
        ctx.rec.note(format!(
            "back-channel listener: a request to another path (answered 404): {}",
            r.describe()
        ));
    };
    ctx.rec.note(format!(
        "back-channel request after {:.1} s: {}",
        request.at.duration_since(started).as_secs_f64(),
        request.describe()
    ));

    // EnsureIncomingTls12WithSecureCipherOrTls13 (WARNING).
    if uri.starts_with("http:") && !env.config.allow_http {
        ctx.rec.warning(
            "EnsureIncomingTls12WithSecureCipherOrTls13",
            format!("the back-channel request reached {uri} over plain HTTP (BCP195-3.1.1)"),
        );
    }
    // ExtractLogoutTokenFromBackchannelLogoutRequest (STOP).
    let condition = "ExtractLogoutTokenFromBackchannelLogoutRequest";
    if request.method != "POST" {
        return stop(
            condition,
            format!(
                "the back-channel request is a {}, not a POST (OIDCBCL-2.5)",
                request.method
            ),
        );
    }
    if request.mime() != "application/x-www-form-urlencoded" {
        return stop(
            condition,
            format!(
                "the back-channel request's Content-Type is {:?}, not application/x-www-form-urlencoded (OIDCBCL-2.5)",
                request.header("content-type")
            ),
        );
    }
    let form: Params = url::form_urlencoded::parse(&request.body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let Some(raw) = param(&form, "logout_token") else {
        return stop(
            condition,
            format!(
                "the back-channel request has no logout_token: {}",
                request.describe()
            ),
        );
    };
    let token = Jwt::parse(raw).or_else(|e| stop(condition, format!("logout_token: {e}")))?;
    ctx.rec.note(format!(
        "logout token header {} claims {}",
        Value::Object(token.header.clone()),
        Value::Object(token.claims.clone())
    ));
    // CheckForUnexpectedParametersInBackchannelLogoutRequest (WARNING).
    let unexpected: Vec<&str> = form
        .iter()
        .map(|(n, _)| n.as_str())
        .filter(|n| *n != "logout_token")
        .collect();
    if !unexpected.is_empty() || form.iter().filter(|(n, _)| n == "logout_token").count() > 1 {
        ctx.rec.warning(
            "CheckForUnexpectedParametersInBackchannelLogoutRequest",
            format!(
                "the back-channel request carries more than one logout_token parameter: {:?} (OIDCBCL-2.5)",
                form.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>()
            ),
        );
    }
    // ValidateLogoutTokenSignature (FAILURE), with the JWKS fetched again on failure (keys may
    // have rotated since the configure phase: another module rotates them).
    if let Err(first) = token.verify(&server.jwks) {
        let refetched = match server
            .discovery
            .get("jwks_uri")
            .and_then(Value::as_str)
            .map(str::to_owned)
        {
            Some(jwks_uri) => ctx.fetch_jwks(&jwks_uri).await.ok(),
            None => None,
        };
        match refetched.map(|jwks| token.verify(&jwks)) {
            Some(Ok(())) => ctx.rec.note(format!(
                "the logout token verifies only with the JWKS fetched again ({first})"
            )),
            Some(Err(e)) => ctx
                .rec
                .failure("ValidateLogoutTokenSignature", format!("{e} (OIDCBCL-2.4)")),
            None => ctx.rec.failure(
                "ValidateLogoutTokenSignature",
                format!("{first} (OIDCBCL-2.4)"),
            ),
        }
    }
    // ValidateLogoutTokenClaims (FAILURE).
    for problem in logout_token_claim_problems(&token.claims, &server.issuer, client_id) {
        ctx.rec.failure(
            "ValidateLogoutTokenClaims",
            format!("{problem} (OIDCBCL-2.4)"),
        );
    }
    // CheckIdTokenSubMatchesLogoutToken / CheckIdTokenSidMatchesLogoutToken (FAILURE, when the
    // logout token has the claim).
    for (claim, condition) in [
        ("sub", "CheckIdTokenSubMatchesLogoutToken"),
        ("sid", "CheckIdTokenSidMatchesLogoutToken"),
    ] {
        if let Some(value) = token.claims.get(claim) {
            let in_id_token = id_token.claims.get(claim);
            if in_id_token != Some(value) {
                ctx.rec.failure(
                    condition,
                    format!(
                        "the logout token's {claim} is {value}, the ID token's {} (OIDCBCL-2.4)",
                        in_id_token.map_or("is missing".to_owned(), |v| format!("is {v}"))
                    ),
                );
            }
        }
    }
    // CheckLogoutTokenNoNonce, CheckLogoutTokenHasSubOrSid (FAILURE).
    if token.claims.contains_key("nonce") {
        ctx.rec.failure(
            "CheckLogoutTokenNoNonce",
            "the logout token carries a nonce (OIDCBCL-2.4)",
        );
    }
    if !token.claims.contains_key("sub") && !token.claims.contains_key("sid") {
        ctx.rec.failure(
            "CheckLogoutTokenHasSubOrSid",
            "the logout token has neither sub nor sid (OIDCBCL-2.4)",
        );
    }
    // Not checked by the suite's version, required or recommended by the final spec (WARNING).
    if token.header.get("typ").and_then(Value::as_str) != Some("logout+jwt") {
        ctx.rec.warning(
            "CheckLogoutTokenTyp (harness, spec only)",
            format!(
                "the logout token's typ header is {:?}, not logout+jwt (OIDCBCL-2.4 explicit typing)",
                token.header.get("typ")
            ),
        );
    }
    match (token.num_claim("exp"), token.num_claim("iat")) {
        (Some(exp), Some(iat)) if exp > iat && exp > checks::now() - checks::SKEW => {}
        (exp, _) => ctx.rec.warning(
            "CheckLogoutTokenExp (harness, spec only)",
            format!("the logout token's exp {exp:?} is missing, before iat or past (OIDCBCL-2.4 requires exp)"),
        ),
    }
    Ok(())
}

/// `ValidateLogoutTokenClaims`: `iss`, `aud`, `iat`, `jti`, `events`.
fn logout_token_claim_problems(
    claims: &Map<String, Value>,
    issuer: &str,
    client_id: &str,
) -> Vec<String> {
    let mut out = Vec::new();
    match claims.get("iss").and_then(Value::as_str) {
        None => out.push("iss is missing".to_owned()),
        Some(iss) if iss != issuer => out.push(format!("iss {iss:?} is not the issuer {issuer:?}")),
        _ => {}
    }
    match claims.get("aud") {
        None => out.push("aud is missing".to_owned()),
        Some(Value::String(aud)) if aud == client_id => {}
        Some(Value::Array(auds)) if auds.iter().any(|a| a.as_str() == Some(client_id)) => {}
        Some(aud) => out.push(format!(
            "aud {aud} is not (or does not contain) {client_id}"
        )),
    }
    match claims.get("iat").and_then(Value::as_f64) {
        None => out.push("iat is missing".to_owned()),
        Some(iat) if iat > checks::now() + checks::SKEW => {
            out.push(format!("iat {iat} is in the future"))
        }
        Some(iat) if iat < checks::now() - 86_400.0 - checks::SKEW => {
            out.push(format!("iat {iat} is more than a day old"))
        }
        _ => {}
    }
    if claims.get("jti").is_none_or(Value::is_null) {
        out.push("jti is missing".to_owned());
    }
    match claims.get("events") {
        Some(Value::Object(events)) => {
            if events.len() != 1 {
                out.push(format!(
                    "events has {} members instead of exactly 1: {}",
                    events.len(),
                    Value::Object(events.clone())
                ));
            }
            match events.get(LOGOUT_EVENT) {
                Some(Value::Object(v)) if v.is_empty() => {}
                Some(Value::Object(v)) => out.push(format!(
                    "events[{LOGOUT_EVENT}] is not the empty object: {}",
                    Value::Object(v.clone())
                )),
                _ => out.push(format!("events has no object member {LOGOUT_EVENT}")),
            }
        }
        Some(other) => out.push(format!("events is not a JSON object: {other}")),
        None => out.push("events is missing".to_owned()),
    }
    out
}

// ----------------------------------------------------------------------------------------
// Front-channel logout (checklist §9, notes)

/// Checks the front-channel logout URI the OP's page loads (its `<iframe>`).
fn frontchannel_checks(ctx: &mut Ctx, server: &Server, frames: &[Url], id_token: &Jwt) -> Step<()> {
    let registered = ctx
        .env
        .config
        .frontchannel_logout_uri
        .clone()
        .unwrap_or_default();
    let registered_url = Url::parse(&registered)
        .or_else(|e| stop("CreateFrontchannelLogoutUri", format!("{registered}: {e}")))?;
    let ours: Vec<&Url> = frames
        .iter()
        .filter(|f| base_of(f) == base_of(&registered_url))
        .collect();
    let Some(frame) = ours.first() else {
        return stop(
            "WaitForFrontchannelLogoutRequest",
            format!(
                "the OP's logout pages load no iframe of the frontchannel_logout_uri {registered} (iframes: {:?}) (OIDCFCL-2)",
                frames.iter().map(Url::as_str).collect::<Vec<_>>()
            ),
        );
    };
    if ours.len() > 1 {
        ctx.rec.note(format!(
            "the frontchannel_logout_uri is loaded {} times",
            ours.len()
        ));
    }
    let query: Params = frame
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    // CheckForUnexpectedParametersInFrontchannelLogoutRequest (WARNING).
    let registered_query: Vec<String> = registered_url
        .query_pairs()
        .map(|(k, _)| k.into_owned())
        .collect();
    let unexpected: Vec<&str> = query
        .iter()
        .map(|(n, _)| n.as_str())
        .filter(|n| !["iss", "sid"].contains(n) && !registered_query.iter().any(|r| r == n))
        .collect();
    if !unexpected.is_empty() {
        ctx.rec.warning(
            "CheckForUnexpectedParametersInFrontchannelLogoutRequest",
            format!("the front-channel logout request has unexpected parameters {unexpected:?}: {frame} (OIDCFCL-2)"),
        );
    }
    // ValidateFrontchannelLogoutIss (FAILURE).
    match param(&query, "iss") {
        None | Some("") => ctx.rec.failure(
            "ValidateFrontchannelLogoutIss",
            format!("iss is missing from the front-channel logout request {frame} (OIDCFCL-2)"),
        ),
        Some(iss) if iss != server.issuer => ctx.rec.failure(
            "ValidateFrontchannelLogoutIss",
            format!(
                "the front-channel logout request's iss {iss:?} is not the issuer {:?} (OIDCFCL-2)",
                server.issuer
            ),
        ),
        _ => {}
    }
    // CheckIdTokenSidMatchesFrontChannelLogoutRequest (FAILURE).
    let id_sid = id_token.str_claim("sid");
    match param(&query, "sid") {
        None | Some("") => ctx.rec.failure(
            "CheckIdTokenSidMatchesFrontChannelLogoutRequest",
            format!("sid is missing from the front-channel logout request {frame} (OIDCFCL-2)"),
        ),
        Some(sid) if Some(sid) != id_sid => ctx.rec.failure(
            "CheckIdTokenSidMatchesFrontChannelLogoutRequest",
            format!(
                "the front-channel logout request's sid {sid:?} differs from the ID token's {id_sid:?} (OIDCFCL-3)"
            ),
        ),
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn end_session_state_is_vschar_without_plus_or_space() {
        for _ in 0..20 {
            let s = end_session_state();
            assert_eq!(s.len(), 50);
            assert!(s.bytes().all(|b| (0x21..=0x7e).contains(&b) && b != b'+'));
        }
    }

    #[test]
    fn logout_token_claims() {
        let now = checks::now() as i64;
        let good = serde_json::json!({
            "iss": "https://op", "aud": "c1", "iat": now, "jti": "j",
            "events": {LOGOUT_EVENT: {}}, "sid": "s"
        });
        let good = good.as_object().unwrap();
        assert!(logout_token_claim_problems(good, "https://op", "c1").is_empty());
        let bad = serde_json::json!({
            "iss": "https://other", "aud": ["c2"], "iat": now + 3600,
            "events": {LOGOUT_EVENT: {"x": 1}, "other": {}}
        });
        let problems = logout_token_claim_problems(bad.as_object().unwrap(), "https://op", "c1");
        assert_eq!(problems.len(), 6, "{problems:?}");
    }

    #[test]
    fn fake_id_token_is_hs256() {
        let raw = fake_id_token("client", "secret-secret-secret-secret-secret", "https://op")
            .unwrap_or_else(|_| panic!("signed"));
        let jwt = Jwt::parse(&raw).expect("a JWT");
        assert_eq!(jwt.alg(), Some("HS256"));
        assert_eq!(jwt.str_claim("iss"), Some("client"));
        assert_eq!(jwt.str_claim("aud"), Some("https://op"));
    }
}
