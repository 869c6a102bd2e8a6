//! The modules of the Basic OP plan (checklist §3), also run with `response_mode=form_post`
//! as the Form Post plan (§7).

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::browser::{Browser, Interaction, Landing};
use crate::checks::{self, Params, param, shannon_bits};
use crate::harness::{
    AuthMethod, AuthRequest, Client, Ctx, Env, Flow, HttpResult, Server, UserInfoCall, Which,
    random_string,
};
use crate::jose::{self, Jwt};
use crate::report::{Outcome, Step, skip, stop};

/// The Basic plan's modules, in the plan's order.
pub const MODULES: &[&str] = &[
    "oidcc-server",
    "oidcc-response-type-missing",
    "oidcc-idtoken-signature",
    "oidcc-idtoken-unsigned",
    "oidcc-userinfo-get",
    "oidcc-userinfo-post-header",
    "oidcc-userinfo-post-body",
    "oidcc-ensure-request-without-nonce-succeeds-for-code-flow",
    "oidcc-scope-profile",
    "oidcc-scope-email",
    "oidcc-scope-address",
    "oidcc-scope-phone",
    "oidcc-scope-all",
    "oidcc-alternate-happy-flow",
    "oidcc-display-page",
    "oidcc-display-popup",
    "oidcc-prompt-login",
    "oidcc-prompt-none-not-logged-in",
    "oidcc-prompt-none-logged-in",
    "oidcc-max-age-1",
    "oidcc-max-age-10000",
    "oidcc-ensure-request-with-unknown-parameter-succeeds",
    "oidcc-id-token-hint",
    "oidcc-login-hint",
    "oidcc-ui-locales",
    "oidcc-claims-locales",
    "oidcc-ensure-request-with-acr-values-succeeds",
    "oidcc-codereuse",
    "oidcc-codereuse-30seconds",
    "oidcc-ensure-registered-redirect-uri",
    "oidcc-ensure-post-request-succeeds",
    "oidcc-server-client-secret-post",
    "oidcc-request-uri-unsigned-supported-correctly-or-rejected-as-unsupported",
    "oidcc-unsigned-request-object-supported-correctly-or-rejected-as-unsupported",
    "oidcc-claims-essential",
    "oidcc-ensure-request-object-with-redirect-uri",
    "oidcc-refresh-token",
    "oidcc-ensure-request-with-valid-pkce-succeeds",
];

/// Modules that wait: started first so the whole run stays short.
pub const SLOW: &[&str] = &[
    "oidcc-codereuse-30seconds",
    "oidcc-max-age-1",
    "oidcc-prompt-login",
    "oidcc-refresh-token",
];

/// Runs one module (`form_post` selects the Form Post plan's variant).
pub async fn run(id: &'static str, env: Arc<Env>, form_post: bool) -> Outcome {
    let started = Instant::now();
    let mut ctx = Ctx::new(env, form_post);
    let result = dispatch(id, &mut ctx).await;
    let full_id = if form_post {
        format!("formpost/{id}")
    } else {
        id.to_owned()
    };
    let Ctx { rec, .. } = ctx;
    rec.finish(full_id, result, started.elapsed())
}

async fn dispatch(id: &str, ctx: &mut Ctx) -> Step<()> {
    match id {
        "oidcc-server" => server(ctx).await,
        "oidcc-response-type-missing" => response_type_missing(ctx).await,
        "oidcc-idtoken-signature" | "oidcc-idtoken-unsigned" => skip(
            "dynamic client registration only: not part of a static-client run, and Latchkey \
             publishes no registration_endpoint",
        ),
        "oidcc-request-uri-unsigned-supported-correctly-or-rejected-as-unsupported" => skip(
            "dynamic client registration only (the suite registers request_uris); Latchkey also \
             answers request_uri with request_uri_not_supported",
        ),
        "oidcc-userinfo-get" => userinfo(ctx, UserInfoCall::Get).await,
        "oidcc-userinfo-post-header" => userinfo(ctx, UserInfoCall::PostHeader).await,
        "oidcc-userinfo-post-body" => userinfo(ctx, UserInfoCall::PostBody).await,
        "oidcc-ensure-request-without-nonce-succeeds-for-code-flow" => no_nonce(ctx).await,
        "oidcc-scope-profile" => scope(ctx, "openid profile", false).await,
        "oidcc-scope-email" => scope(ctx, "openid email", false).await,
        "oidcc-scope-address" => scope(ctx, "openid address", false).await,
        "oidcc-scope-phone" => scope(ctx, "openid phone", false).await,
        "oidcc-scope-all" => scope(ctx, "openid email phone address profile", false).await,
        "oidcc-alternate-happy-flow" => scope(ctx, "email openid", true).await,
        "oidcc-display-page" => with_params(ctx, &[("display", "page")]).await,
        "oidcc-display-popup" => with_params(ctx, &[("display", "popup")]).await,
        "oidcc-prompt-login" => prompt_login(ctx).await,
        "oidcc-prompt-none-not-logged-in" => prompt_none_not_logged_in(ctx).await,
        "oidcc-prompt-none-logged-in" => same_auth_twice(ctx, SecondRequest::PromptNone).await,
        "oidcc-max-age-1" => max_age_1(ctx).await,
        "oidcc-max-age-10000" => same_auth_twice(ctx, SecondRequest::MaxAge10000).await,
        "oidcc-ensure-request-with-unknown-parameter-succeeds" => {
            with_params(ctx, &[("extra", "foobar")]).await
        }
        "oidcc-id-token-hint" => same_auth_twice(ctx, SecondRequest::IdTokenHint).await,
        "oidcc-login-hint" => {
            let hint = ctx
                .env
                .config
                .user
                .login_hint
                .clone()
                .unwrap_or_else(|| ctx.env.config.user.username.clone());
            with_params(ctx, &[("login_hint", hint.as_str())]).await
        }
        "oidcc-ui-locales" => {
            let v = ctx
                .env
                .config
                .ui_locales
                .clone()
                .unwrap_or_else(|| "se".into());
            with_params(ctx, &[("ui_locales", v.as_str())]).await
        }
        "oidcc-claims-locales" => {
            let v = ctx
                .env
                .config
                .claims_locales
                .clone()
                .unwrap_or_else(|| "se".into());
            with_params(ctx, &[("claims_locales", v.as_str())]).await
        }
        "oidcc-ensure-request-with-acr-values-succeeds" => acr_values(ctx).await,
        "oidcc-codereuse" => code_reuse(ctx, None).await,
        "oidcc-codereuse-30seconds" => {
            let wait = ctx.env.config.codereuse_wait_secs.unwrap_or(30);
            code_reuse(ctx, Some(Duration::from_secs(wait))).await
        }
        "oidcc-ensure-registered-redirect-uri" => registered_redirect_uri(ctx).await,
        "oidcc-ensure-post-request-succeeds" => post_request(ctx).await,
        "oidcc-server-client-secret-post" => client_secret_post(ctx).await,
        "oidcc-unsigned-request-object-supported-correctly-or-rejected-as-unsupported" => {
            unsigned_request_object(ctx).await
        }
        "oidcc-claims-essential" => claims_essential(ctx).await,
        "oidcc-ensure-request-object-with-redirect-uri" => request_object_redirect_uri(ctx).await,
        "oidcc-refresh-token" => refresh_token(ctx).await,
        "oidcc-ensure-request-with-valid-pkce-succeeds" => pkce(ctx).await,
        other => stop("harness", format!("unknown module {other}")),
    }
}

/// Configure phase + the main client + a fresh browser.
async fn setup(ctx: &mut Ctx) -> Step<(Server, Client, Browser)> {
    let server = ctx.configure(AuthMethod::Basic).await?;
    let client = ctx.env.client(Which::One);
    let browser = ctx.env.browser();
    Ok((server, client, browser))
}

/// `EnsureIdTokenDoesNotContainName` (WARNING).
fn warn_if_name_in_id_token(ctx: &mut Ctx, token: &Jwt) {
    if token.claims.contains_key("name") {
        ctx.rec.warning(
            "EnsureIdTokenDoesNotContainName",
            "the ID token contains `name`, which was not requested there",
        );
    }
}

/// `EnsureIdTokenDoesNotContainNonRequestedClaims` (WARNING).
fn warn_unrequested_id_token_claims(ctx: &mut Ctx, token: &Jwt, scope: &str) {
    let allowed: Vec<&str> = checks::ID_TOKEN_PROTOCOL_CLAIMS
        .iter()
        .copied()
        .chain(
            scope
                .split(' ')
                .flat_map(|s| checks::scope_claims(s).iter().copied()),
        )
        .collect();
    let extra: Vec<&String> = token
        .claims
        .keys()
        .filter(|k| !allowed.contains(&k.as_str()))
        .collect();
    if !extra.is_empty() {
        ctx.rec.warning(
            "EnsureIdTokenDoesNotContainNonRequestedClaims",
            format!("the ID token contains claims that were not requested: {extra:?}"),
        );
    }
}

// ----------------------------------------------------------------------------------------
// 1. oidcc-server

async fn server(ctx: &mut Ctx) -> Step<()> {
    let (server, client, browser) = setup(ctx).await?;
    let req = ctx.request(&client);
    let (_, _, code) = ctx.authorize_for_code(&browser, &server, &req).await?;
    let bits = code.len() * 8;
    if bits < 128 {
        ctx.rec.failure(
            "EnsureMinimumAuthorizationCodeLength",
            format!("the code has {bits} bits, fewer than 128"),
        );
    }
    let entropy = shannon_bits(&code);
    if entropy <= 96.0 {
        ctx.rec.failure(
            "EnsureMinimumAuthorizationCodeEntropy",
            format!("the code's Shannon entropy estimate is {entropy:.1} bits (≤ 96)"),
        );
    }
    let tokens = ctx.exchange_code(&server, &req, &code, Vec::new()).await?;
    if !tokens.json.contains_key("expires_in") {
        ctx.rec.warning(
            "ExtractExpiresInFromTokenEndpointResponse",
            "the token response has no expires_in (RFC6749-5.1)",
        );
    }
    let mut hashes =
        checks::hash_claim_findings(&tokens.id_token, "at_hash", &tokens.access_token, false);
    hashes.extend(checks::hash_claim_findings(
        &tokens.id_token,
        "c_hash",
        &code,
        false,
    ));
    ctx.apply(hashes)?;
    warn_if_name_in_id_token(ctx, &tokens.id_token);
    warn_unrequested_id_token_claims(ctx, &tokens.id_token, "openid");
    ctx.protected_resource(&server, &tokens.access_token)
        .await?;
    Ok(())
}

// ----------------------------------------------------------------------------------------
// 2. oidcc-response-type-missing

async fn response_type_missing(ctx: &mut Ctx) -> Step<()> {
    let (server, client, browser) = setup(ctx).await?;
    let mut req = ctx.request(&client);
    req.remove("response_type");
    let (landing, seen) = ctx
        .authorize(&browser, &server, &req, Interaction::FULL)
        .await?;
    match &landing {
        Landing::Page { .. } => {
            ctx.expect_error_page(&landing, &seen, "ExpectResponseTypeMissingErrorPage")?;
            Ok(())
        }
        Landing::Callback(cb) => {
            // No response_type: the error is in the query (form_post: the body).
            let params = ctx.response_params(cb);
            let generic = checks::generic_error_response_findings(
                &params,
                &cb.all_params(),
                req.state(),
                &server.issuer,
            );
            ctx.apply(generic)?;
            let error = param(&params, "error");
            if !matches!(error, Some("invalid_request" | "unsupported_response_type")) {
                ctx.rec.failure(
                    "CheckErrorFromAuthorizationEndpointErrorInvalidRequestOrUnsupportedResponseType",
                    format!("error is {error:?}, expected invalid_request or unsupported_response_type"),
                );
            }
            Ok(())
        }
    }
}

// ----------------------------------------------------------------------------------------
// 5–7. UserInfo

async fn userinfo(ctx: &mut Ctx, how: UserInfoCall) -> Step<()> {
    let (server, client, browser) = setup(ctx).await?;
    let req = ctx.request(&client);
    let (_, _, code) = ctx.authorize_for_code(&browser, &server, &req).await?;
    let tokens = ctx.exchange_code(&server, &req, &code, Vec::new()).await?;
    let response = ctx
        .call_userinfo(&server, how, &tokens.access_token)
        .await?;
    if matches!(how, UserInfoCall::PostBody) && !(200..300).contains(&response.status) {
        ctx.rec.warning(
            "UserInfoEndpointWithAccessTokenInBodyNotSupported",
            format!(
                "UserInfo with the token in the body answered {}",
                response.describe()
            ),
        );
        return Ok(());
    }
    ctx.check_userinfo_response(&response, &tokens.id_token)?;
    Ok(())
}

// ----------------------------------------------------------------------------------------
// 8. oidcc-ensure-request-without-nonce-succeeds-for-code-flow

async fn no_nonce(ctx: &mut Ctx) -> Step<()> {
    let (server, client, browser) = setup(ctx).await?;
    let mut req = ctx.request(&client);
    req.remove("nonce");
    ctx.authorize_for_code(&browser, &server, &req).await?;
    Ok(())
}

// ----------------------------------------------------------------------------------------
// 9–14. Scopes and the alternate happy flow

async fn scope(ctx: &mut Ctx, scope: &str, alternate: bool) -> Step<()> {
    let (server, client, browser) = setup(ctx).await?;
    let supported = server.list("scopes_supported");
    let requested: Vec<&str> = scope.split(' ').collect();
    if !alternate {
        match &supported {
            None => return skip("discovery has no scopes_supported, so the scope test is skipped"),
            Some(list) => {
                let missing: Vec<&&str> = requested
                    .iter()
                    .filter(|s| !list.iter().any(|l| l == **s))
                    .collect();
                if !missing.is_empty() {
                    return skip(format!("scopes_supported lacks {missing:?}"));
                }
            }
        }
    }
    let mut req = ctx.request(&client);
    req.set("scope", scope);
    if alternate {
        // BuildPlainRedirectToAuthorizationEndpointReorderedParams
        req.params.reverse();
    }
    let (_, _, code) = ctx.authorize_for_code(&browser, &server, &req).await?;
    let tokens = ctx.exchange_code(&server, &req, &code, Vec::new()).await?;
    let response = ctx
        .call_userinfo(&server, UserInfoCall::Get, &tokens.access_token)
        .await?;
    let claims = ctx.check_userinfo_response(&response, &tokens.id_token)?;
    let expected: Vec<&str> = requested
        .iter()
        .flat_map(|s| checks::scope_claims(s).iter().copied())
        .collect();
    let missing: Vec<&&str> = expected
        .iter()
        .filter(|c| !claims.contains_key(**c))
        .collect();
    if !missing.is_empty() {
        ctx.rec.warning(
            "VerifyScopesReturnedInUserInfoClaims",
            format!("UserInfo lacks {missing:?} for scope `{scope}`"),
        );
    }
    if requested.contains(&"email") && requested.len() == 2 {
        warn_if_name_in_id_token(ctx, &tokens.id_token);
        if tokens.id_token.claims.contains_key("email") {
            ctx.rec.warning(
                "EnsureIdTokenDoesNotContainEmailForScopeEmail",
                "the ID token contains `email` although an access token was issued (claims belong in UserInfo)",
            );
        }
        if claims.contains_key("name") {
            ctx.rec.warning(
                "EnsureUserInfoDoesNotContainName",
                "UserInfo contains `name` for scope email",
            );
        }
    }
    Ok(())
}

// ----------------------------------------------------------------------------------------
// Happy flows with an extra parameter (15, 16, 22, 24, 25, 26)

async fn with_params(ctx: &mut Ctx, extra: &[(&str, &str)]) -> Step<()> {
    let (server, client, browser) = setup(ctx).await?;
    let mut req = ctx.request(&client);
    for (k, v) in extra {
        req.set(k, *v);
    }
    ctx.full_flow(&browser, &server, &req).await?;
    Ok(())
}

// ----------------------------------------------------------------------------------------
// 17. oidcc-prompt-login

fn auth_time(token: &Jwt) -> Option<f64> {
    token.num_claim("auth_time")
}

async fn prompt_login(ctx: &mut Ctx) -> Step<()> {
    let (server, client, browser) = setup(ctx).await?;
    let first_req = ctx.request(&client);
    let first = ctx.full_flow(&browser, &server, &first_req).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut req = ctx.request(&client);
    req.set("prompt", "login");
    let second = ctx.full_flow(&browser, &server, &req).await?;
    if second.seen.login_pages == 0 {
        ctx.rec.failure(
            "ExpectSecondLoginPage",
            format!(
                "prompt=login did not show the login page again (screenshot placeholder): {}",
                second.seen.hops.join(", ")
            ),
        );
    }
    later_auth_time(ctx, &first, &second);
    Ok(())
}

/// `CheckSecondIdTokenAuthTimeIsLaterIfPresent` (FAILURE).
fn later_auth_time(ctx: &mut Ctx, first: &Flow, second: &Flow) {
    if let (Some(a), Some(b)) = (
        auth_time(&first.tokens.id_token),
        auth_time(&second.tokens.id_token),
    ) && b <= a
    {
        ctx.rec.failure(
            "CheckSecondIdTokenAuthTimeIsLaterIfPresent",
            format!("the second auth_time {b} is not later than the first {a}"),
        );
    }
}

// ----------------------------------------------------------------------------------------
// 18. oidcc-prompt-none-not-logged-in

async fn prompt_none_not_logged_in(ctx: &mut Ctx) -> Step<()> {
    let (server, client, browser) = setup(ctx).await?;
    let mut req = ctx.request(&client);
    req.set("prompt", "none");
    req.set("state", random_string(128));
    ctx.expect_interaction_error(&browser, &server, &req).await
}

// ----------------------------------------------------------------------------------------
// 19, 21, 23: two authorizations, the second without interaction

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SecondRequest {
    PromptNone,
    MaxAge10000,
    IdTokenHint,
}

async fn same_auth_twice(ctx: &mut Ctx, kind: SecondRequest) -> Step<()> {
    let (server, client, browser) = setup(ctx).await?;
    let mut first_req = ctx.request(&client);
    if kind == SecondRequest::MaxAge10000 {
        first_req.set("max_age", "15000");
    }
    let first = ctx.full_flow(&browser, &server, &first_req).await?;
    if kind == SecondRequest::MaxAge10000 && auth_time(&first.tokens.id_token).is_none() {
        ctx.rec.failure(
            "CheckIdTokenAuthTimeClaimPresentDueToMaxAge",
            "the first ID token (max_age=15000) has no auth_time",
        );
    }
    let mut req = ctx.request(&client);
    let act = match kind {
        SecondRequest::PromptNone => {
            req.set("prompt", "none");
            Interaction::NONE
        }
        SecondRequest::IdTokenHint => {
            req.set("prompt", "none");
            req.set("id_token_hint", first.tokens.id_token.raw.clone());
            Interaction::NONE
        }
        SecondRequest::MaxAge10000 => {
            req.set("max_age", "10000");
            Interaction::FULL
        }
    };
    let (landing, seen) = ctx.authorize(&browser, &server, &req, act).await?;
    let cb = ctx.expect_callback(landing, &seen)?;
    let params = ctx.success_params(&server, &cb, &req)?;
    let code = ctx.extract_code(&params)?;
    let tokens = ctx.exchange_code(&server, &req, &code, Vec::new()).await?;
    ctx.protected_resource(&server, &tokens.access_token)
        .await?;
    let (a, b) = (
        auth_time(&first.tokens.id_token),
        auth_time(&tokens.id_token),
    );
    if kind == SecondRequest::MaxAge10000 && b.is_none() {
        ctx.rec.failure(
            "CheckIdTokenAuthTimeClaimPresentDueToMaxAge",
            "the second ID token (max_age=10000) has no auth_time",
        );
    }
    if let (Some(a), Some(b)) = (a, b)
        && a != b
    {
        ctx.rec.failure(
            "CheckIdTokenAuthTimeClaimsSameIfPresent",
            format!("auth_time changed from {a} to {b} without a new login"),
        );
    }
    let (s1, s2) = (
        first.tokens.id_token.str_claim("sub"),
        tokens.id_token.str_claim("sub"),
    );
    if s1 != s2 {
        ctx.rec.failure(
            "CheckIdTokenSubConsistentForSecondAuthorization",
            format!("sub changed from {s1:?} to {s2:?}"),
        );
    }
    Ok(())
}

// ----------------------------------------------------------------------------------------
// 20. oidcc-max-age-1

async fn max_age_1(ctx: &mut Ctx) -> Step<()> {
    let (server, client, browser) = setup(ctx).await?;
    let first_req = ctx.request(&client);
    let first = ctx.full_flow(&browser, &server, &first_req).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut req = ctx.request(&client);
    req.set("max_age", "1");
    let second = ctx.full_flow(&browser, &server, &req).await?;
    if second.seen.login_pages == 0 {
        ctx.rec.failure(
            "ExpectSecondLoginPage",
            format!(
                "max_age=1 after 2 s did not show the login page again (screenshot placeholder): {}",
                second.seen.hops.join(", ")
            ),
        );
    }
    match auth_time(&second.tokens.id_token) {
        None => ctx.rec.failure(
            "CheckIdTokenAuthTimeClaimPresentDueToMaxAge",
            "the second ID token (max_age=1) has no auth_time",
        ),
        Some(at) => {
            let age = checks::now() - at;
            if age > 1.0 + checks::SKEW {
                ctx.rec.failure(
                    "CheckIdTokenAuthTimeIsRecentIfPresent",
                    format!(
                        "auth_time {at} is {age:.0} s old, more than max_age=1 plus 5 min skew"
                    ),
                );
            }
        }
    }
    later_auth_time(ctx, &first, &second);
    Ok(())
}

// ----------------------------------------------------------------------------------------
// 27. oidcc-ensure-request-with-acr-values-succeeds

async fn acr_values(ctx: &mut Ctx) -> Step<()> {
    let (server, client, browser) = setup(ctx).await?;
    let acr_values = ctx
        .env
        .config
        .acr_values
        .clone()
        .or_else(|| server.list("acr_values_supported").map(|l| l.join(" ")))
        .unwrap_or_else(|| "1 2".into());
    let mut req = ctx.request(&client);
    req.set("acr_values", acr_values.clone());
    let flow = ctx.full_flow(&browser, &server, &req).await?;
    let requested: Vec<&str> = acr_values.split(' ').collect();
    match flow.tokens.id_token.claims.get("acr") {
        Some(Value::String(acr)) if requested.contains(&acr.as_str()) => {}
        other => ctx.rec.warning(
            "ValidateIdTokenACRClaimAgainstAcrValuesRequest",
            format!("acr is {other:?}, not one of the requested {requested:?}"),
        ),
    }
    Ok(())
}

// ----------------------------------------------------------------------------------------
// 28, 29. Code reuse

/// Checks of a token endpoint error answer: 400, JSON, `invalid_grant`, error syntax.
fn expect_invalid_grant(ctx: &mut Ctx, response: &HttpResult) {
    if response.status != 400 {
        ctx.rec.failure(
            "CheckTokenEndpointHttpStatus400",
            format!(
                "expected HTTP 400, got {} (OIDCC-3.1.3.4)",
                response.describe()
            ),
        );
    }
    if response.mime() != "application/json" {
        ctx.rec.failure(
            "CheckTokenEndpointReturnedJsonContentType",
            format!("Content-Type is {:?}", response.mime()),
        );
    }
    let json = response.json().unwrap_or(Value::Null);
    let error = json.get("error").and_then(Value::as_str);
    if error != Some("invalid_grant") {
        ctx.rec.failure(
            "CheckErrorFromTokenEndpointResponseErrorInvalidGrant",
            format!(
                "error is {error:?}, expected invalid_grant: {}",
                response.describe()
            ),
        );
    }
    if let Some(e) = error
        && !checks::error_code_chars_ok(e)
    {
        ctx.rec.failure(
            "ValidateErrorFromTokenEndpointResponseError",
            format!("error {e:?} has characters RFC 6749 does not allow"),
        );
    }
    let findings = checks::error_text_findings(
        json.get("error_description").and_then(Value::as_str),
        json.get("error_uri").and_then(Value::as_str),
        "CheckErrorDescriptionFromTokenEndpointResponseErrorContainsCRLFTAB",
        "ValidateErrorDescriptionFromTokenEndpointResponseError",
        "ValidateErrorUriFromTokenEndpointResponseError",
    );
    let _ = ctx.apply(findings);
}

async fn code_reuse(ctx: &mut Ctx, wait: Option<Duration>) -> Step<()> {
    let (server, client, browser) = setup(ctx).await?;
    let req = ctx.request(&client);
    let flow = ctx.full_flow(&browser, &server, &req).await?;
    if let Some(wait) = wait {
        tokio::time::sleep(wait).await;
    }
    let form = ctx.code_request_form(&req, &flow.code);
    let response = ctx.token_request(&server, &client, form).await?;
    if wait.is_none() && response.status == 200 {
        ctx.rec.warning(
            "ServerAllowedReusingAuthorizationCode",
            "the token endpoint accepted the same code twice",
        );
        return Ok(());
    }
    expect_invalid_grant(ctx, &response);
    if wait.is_some() {
        // The tokens issued from a reused code should be revoked (RFC6749-4.1.2).
        let again = ctx
            .call_userinfo(&server, UserInfoCall::Get, &flow.tokens.access_token)
            .await?;
        if !(400..500).contains(&again.status) {
            ctx.rec.warning(
                "EnsureHttpStatusCodeIs4xx",
                format!(
                    "the access token from the reused code still works at UserInfo: {}",
                    again.describe()
                ),
            );
        }
    }
    Ok(())
}

// ----------------------------------------------------------------------------------------
// 30. oidcc-ensure-registered-redirect-uri

async fn registered_redirect_uri(ctx: &mut Ctx) -> Step<()> {
    let (server, client, browser) = setup(ctx).await?;
    let mut req = ctx.request(&client);
    let bad = format!(
        "{}/{}",
        ctx.env.config.redirect_uri.trim_end_matches('/'),
        random_string(10)
    );
    req.set("redirect_uri", bad);
    let (landing, seen) = ctx
        .authorize(&browser, &server, &req, Interaction::FULL)
        .await?;
    ctx.expect_error_page(&landing, &seen, "ExpectRedirectUriErrorPage")?;
    Ok(())
}

// ----------------------------------------------------------------------------------------
// 31, 32, 38

async fn post_request(ctx: &mut Ctx) -> Step<()> {
    let (server, client, browser) = setup(ctx).await?;
    let mut req = ctx.request(&client);
    req.post = true;
    let (landing, seen) = ctx
        .authorize(&browser, &server, &req, Interaction::FULL)
        .await?;
    let cb = match landing {
        Landing::Callback(cb) => cb,
        other => {
            // The suite waits 30 s for the callback, then only warns.
            let why = match ctx.expect_callback(other, &seen) {
                Err(crate::report::Stop::Fail(why)) => why,
                _ => String::new(),
            };
            ctx.rec.warning(
                "ExpectRedirectUriHasBeenCalled",
                format!(
                    "the redirect_uri was not called after a POST authorization request (OIDCC-3.1.2.1): {why}"
                ),
            );
            return Ok(());
        }
    };
    let params = ctx.success_params(&server, &cb, &req)?;
    let code = ctx.extract_code(&params)?;
    let tokens = ctx.exchange_code(&server, &req, &code, Vec::new()).await?;
    ctx.protected_resource(&server, &tokens.access_token)
        .await?;
    Ok(())
}

async fn client_secret_post(ctx: &mut Ctx) -> Step<()> {
    let server = ctx.configure(AuthMethod::Post).await?;
    let client = ctx.env.client(Which::Post);
    let browser = ctx.env.browser();
    let req = ctx.request(&client);
    ctx.full_flow(&browser, &server, &req).await?;
    Ok(())
}

async fn pkce(ctx: &mut Ctx) -> Step<()> {
    let (server, client, browser) = setup(ctx).await?;
    let verifier = random_string(64);
    let mut req = ctx.request(&client);
    req.set("code_challenge", jose::s256(&verifier));
    req.set("code_challenge_method", "S256");
    let (_, _, code) = ctx.authorize_for_code(&browser, &server, &req).await?;
    let tokens = ctx
        .exchange_code(
            &server,
            &req,
            &code,
            vec![("code_verifier".into(), verifier)],
        )
        .await?;
    ctx.protected_resource(&server, &tokens.access_token)
        .await?;
    Ok(())
}

// ----------------------------------------------------------------------------------------
// 34, 36. Request objects

/// SKIPPED when discovery lists `request_object_signing_alg_values_supported` without `none`.
fn skip_if_none_unsupported(server: &Server) -> Step<()> {
    if let Some(algs) = server.list("request_object_signing_alg_values_supported")
        && !algs.iter().any(|a| a == "none")
    {
        return skip(
            "'none' is not listed in request_object_signing_alg_values_supported - assuming it is not supported",
        );
    }
    Ok(())
}

/// The suite's `ConvertAuthorizationEndpointRequestToRequestObject`,
/// `SerializeRequestObjectWithNullAlgorithm` and `BuildRequestObjectByValueRedirectToAuthorizationEndpoint`:
/// every parameter goes into an `alg: none` object; `response_type`, `client_id`, `scope` and `redirect_uri` are repeated
/// outside (sorted), along with any value that differs from the object's.
fn request_object_params(inside: &AuthRequest, outside_redirect_uri: Option<&str>) -> Params {
    let object: serde_json::Map<String, Value> = inside
        .params
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    let jwt = jose::unsigned_jwt(&Value::Object(object));
    let mut outer: std::collections::BTreeMap<String, String> = std::collections::BTreeMap::new();
    outer.insert("request".into(), jwt);
    for (k, v) in &inside.params {
        if ["response_type", "client_id", "scope", "redirect_uri"].contains(&k.as_str()) {
            outer.insert(k.clone(), v.clone());
        }
    }
    if let Some(r) = outside_redirect_uri {
        outer.insert("redirect_uri".into(), r.to_owned());
    }
    outer.into_iter().collect()
}

async fn unsigned_request_object(ctx: &mut Ctx) -> Step<()> {
    let (server, client, browser) = setup(ctx).await?;
    skip_if_none_unsupported(&server)?;
    let inside = ctx.request(&client);
    let mut req = inside.clone();
    req.params = request_object_params(&inside, None);
    let (landing, seen) = ctx
        .authorize(&browser, &server, &req, Interaction::FULL)
        .await?;
    let cb = ctx.expect_callback(landing, &seen)?;
    let params = ctx.response_params(&cb);
    if param(&params, "error") == Some("request_not_supported") {
        return skip(
            "the OP answered error=request_not_supported: request objects are not supported \
             (permitted), so they cannot be tested",
        );
    }
    if server.discovery.get("request_parameter_supported") != Some(&json!(true)) {
        ctx.rec.warning(
            "CheckDiscEndpointRequestParameterSupported",
            "request_parameter_supported is not true in discovery",
        );
    }
    // state and nonce were only inside the object.
    ctx.success_checks(&server, &cb, &params, &inside)?;
    let code = ctx.extract_code(&params)?;
    let tokens = ctx
        .exchange_code(&server, &inside, &code, Vec::new())
        .await?;
    ctx.protected_resource(&server, &tokens.access_token)
        .await?;
    Ok(())
}

async fn request_object_redirect_uri(ctx: &mut Ctx) -> Step<()> {
    let (server, client, browser) = setup(ctx).await?;
    skip_if_none_unsupported(&server)?;
    let inside = ctx.request(&client);
    let invalid = format!("{}_invalid", inside.redirect_uri());
    let mut req = inside.clone();
    req.params = request_object_params(&inside, Some(&invalid));
    let (landing, seen) = ctx
        .authorize(&browser, &server, &req, Interaction::FULL)
        .await?;
    match &landing {
        Landing::Page { .. } => {
            ctx.expect_error_page(&landing, &seen, "ExpectRedirectUriErrorPage")?;
            Ok(())
        }
        Landing::Callback(cb) => {
            let params = ctx.response_params(cb);
            if param(&params, "error") == Some("request_not_supported") {
                return stop(
                    "EnsureOPDoesNotUseDefaultRedirectUriInCaseOfInvalidRedirectUri",
                    format!(
                        "the OP redirected error=request_not_supported to {} although the redirect_uri \
                         outside the request object ({invalid}) is not registered",
                        cb.base()
                    ),
                );
            }
            ctx.success_checks(&server, cb, &params, &inside)?;
            let code = ctx.extract_code(&params)?;
            let tokens = ctx
                .exchange_code(&server, &inside, &code, Vec::new())
                .await?;
            ctx.protected_resource(&server, &tokens.access_token)
                .await?;
            Ok(())
        }
    }
}

// ----------------------------------------------------------------------------------------
// 35. oidcc-claims-essential

async fn claims_essential(ctx: &mut Ctx) -> Step<()> {
    let (server, client, browser) = setup(ctx).await?;
    let mut req = ctx.request(&client);
    req.set("claims", r#"{"userinfo":{"name":{"essential":true}}}"#);
    let (_, _, code) = ctx.authorize_for_code(&browser, &server, &req).await?;
    let tokens = ctx.exchange_code(&server, &req, &code, Vec::new()).await?;
    let response = ctx
        .call_userinfo(&server, UserInfoCall::Get, &tokens.access_token)
        .await?;
    let claims = ctx.check_userinfo_response(&response, &tokens.id_token)?;
    if !claims.contains_key("name") {
        ctx.rec.warning(
            "VerifyUserInfoContainsEssentialClaimName",
            "UserInfo has no `name` although it was requested as essential (the test user may have no name)",
        );
    }
    warn_if_name_in_id_token(ctx, &tokens.id_token);
    Ok(())
}

// ----------------------------------------------------------------------------------------
// 37. oidcc-refresh-token

async fn refresh_token(ctx: &mut Ctx) -> Step<()> {
    let server = ctx.configure(AuthMethod::Basic).await?;
    let browser = ctx.env.browser();
    let client1 = ctx.env.client(Which::One);
    let client2 = ctx.env.client(Which::Two);
    refresh_for_client(ctx, &server, &browser, &client1, 10).await?;
    let rt2 = refresh_for_client(ctx, &server, &browser, &client2, 43).await?;
    // Client 2's refresh token presented with client 1's credentials.
    let form = vec![
        ("grant_type".into(), "refresh_token".into()),
        ("refresh_token".into(), rt2),
    ];
    let response = ctx.token_request(&server, &client1, form).await?;
    expect_invalid_grant(ctx, &response);
    Ok(())
}

/// One client's part: a flow, then a refresh; returns the newest refresh token.
async fn refresh_for_client(
    ctx: &mut Ctx,
    server: &Server,
    browser: &Browser,
    client: &Client,
    nonce_len: usize,
) -> Step<String> {
    let offline = server
        .list("scopes_supported")
        .is_some_and(|l| l.iter().any(|s| s == "offline_access"));
    let mut req = ctx.request(client);
    req.set("nonce", random_string(nonce_len));
    if offline {
        req.set("scope", "openid offline_access");
        req.set("prompt", "consent");
    }
    let flow = ctx.full_flow(browser, server, &req).await?;
    let Some(refresh_token) = flow.tokens.refresh_token.clone() else {
        if server
            .list("grant_types_supported")
            .is_some_and(|g| g.iter().any(|t| t == "refresh_token"))
        {
            ctx.rec.warning(
                "CheckForRefreshTokenValue",
                "no refresh_token although grant_types_supported lists refresh_token",
            );
        }
        return skip(format!("client {}: no refresh token was issued", client.id));
    };
    if !checks::printable_ascii(&refresh_token) {
        ctx.rec.failure(
            "ValidateRefreshTokenNotUseDisallowedCharacters",
            "the refresh token has characters outside %x20-7E",
        );
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let form = vec![
        ("grant_type".into(), "refresh_token".into()),
        ("refresh_token".into(), refresh_token.clone()),
        (
            "scope".into(),
            req.get("scope").unwrap_or("openid").to_owned(),
        ),
    ];
    let response = ctx.token_request(server, client, form).await?;
    if response.status != 200 {
        ctx.rec.failure(
            "CheckTokenEndpointHttpStatus200",
            format!(
                "client {}: the refresh answered {}",
                client.id,
                response.describe()
            ),
        );
    }
    if response.mime() != "application/json" {
        ctx.rec.failure(
            "CheckTokenEndpointReturnedJsonContentType",
            format!(
                "the refresh response's Content-Type is {:?}",
                response.mime()
            ),
        );
    }
    if !response
        .header("cache-control")
        .is_some_and(|c| c.to_ascii_lowercase().contains("no-store"))
    {
        ctx.rec.failure(
            "CheckTokenEndpointCacheHeaders",
            format!(
                "the refresh response's Cache-Control is {:?}, without no-store",
                response.header("cache-control")
            ),
        );
    }
    let json = match response.json() {
        Some(Value::Object(m)) => m,
        _ => {
            return stop(
                "CallTokenEndpoint",
                format!("not JSON: {}", response.describe()),
            );
        }
    };
    if json.contains_key("error") {
        return stop(
            "CheckIfTokenEndpointResponseError",
            format!("the refresh failed: {}", response.describe()),
        );
    }
    let Some(access_token) = json
        .get("access_token")
        .and_then(Value::as_str)
        .map(str::to_owned)
    else {
        return stop(
            "CheckForAccessTokenValue",
            "no access_token in the refresh response",
        );
    };
    if !json
        .get("token_type")
        .and_then(Value::as_str)
        .is_some_and(|t| t.eq_ignore_ascii_case("bearer"))
    {
        ctx.rec.failure(
            "CheckTokenTypeIsBearer",
            format!("token_type is {:?}", json.get("token_type")),
        );
    }
    let entropy = shannon_bits(&access_token);
    if entropy <= 96.0 {
        ctx.rec.failure(
            "EnsureMinimumAccessTokenEntropy",
            format!("the access token's entropy estimate is {entropy:.1} bits"),
        );
    }
    if !checks::printable_ascii(&access_token) {
        ctx.rec.failure(
            "ValidateAccessTokenNotUseDisallowedCharacters",
            "the access token has characters outside %x20-7E",
        );
    }
    match json.get("expires_in") {
        None => ctx.rec.warning(
            "ExtractExpiresInFromTokenEndpointResponse",
            "the refresh response has no expires_in",
        ),
        Some(v) => ctx.validate_expires_in(v),
    }
    let newest = match json.get("refresh_token").and_then(Value::as_str) {
        Some(new) => {
            if new.len() * 8 < 128 {
                ctx.rec.failure(
                    "EnsureMinimumRefreshTokenLength",
                    format!("the new refresh token has {} bits", new.len() * 8),
                );
            }
            let bits = shannon_bits(new);
            if bits <= 96.0 {
                ctx.rec.failure(
                    "EnsureMinimumRefreshTokenEntropy",
                    format!("the new refresh token's entropy estimate is {bits:.1} bits"),
                );
            }
            new.to_owned()
        }
        None => refresh_token,
    };
    if let Some(raw) = json.get("id_token").and_then(Value::as_str) {
        match Jwt::parse(raw) {
            Ok(new) => compare_id_tokens(ctx, &flow.tokens.id_token, &new),
            Err(e) => ctx.rec.failure("ExtractIdTokenFromTokenResponse", e),
        }
    }
    let again = ctx
        .call_userinfo(server, UserInfoCall::Get, &access_token)
        .await?;
    if again.status != 200 {
        ctx.rec.failure(
            "EnsureHttpStatusCodeIs200",
            format!(
                "UserInfo with the refreshed access token answered {}",
                again.describe()
            ),
        );
    }
    Ok(newest)
}

/// `CompareIdTokenClaims` (FAILURE, OIDCC-12.2).
fn compare_id_tokens(ctx: &mut Ctx, old: &Jwt, new: &Jwt) {
    for claim in ["iss", "sub", "aud"] {
        if old.claims.get(claim) != new.claims.get(claim) {
            ctx.rec.failure(
                "CompareIdTokenClaims",
                format!(
                    "{claim} differs after refresh: {:?} then {:?}",
                    old.claims.get(claim),
                    new.claims.get(claim)
                ),
            );
        }
    }
    if old.claims.get("iat") == new.claims.get("iat") {
        ctx.rec.failure(
            "CompareIdTokenClaims",
            "the refreshed ID token has the same iat",
        );
    }
    if new.claims.contains_key("auth_time")
        && old.claims.get("auth_time") != new.claims.get("auth_time")
    {
        ctx.rec.failure(
            "CompareIdTokenClaims",
            format!(
                "auth_time differs after refresh: {:?} then {:?}",
                old.claims.get("auth_time"),
                new.claims.get("auth_time")
            ),
        );
    }
    if old.claims.get("azp") != new.claims.get("azp") {
        ctx.rec.failure(
            "CompareIdTokenClaims",
            format!(
                "azp differs after refresh: {:?} then {:?}",
                old.claims.get("azp"),
                new.claims.get("azp")
            ),
        );
    }
}
