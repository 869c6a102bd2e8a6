//! A strict relying party (the `openidconnect` crate) against Latchkey: discovery, the code
//! flow with PKCE and nonce, both secret methods, ID token verification with `at_hash`,
//! UserInfo, refresh with rotation.

use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreProviderMetadata, CoreUserInfoClaims,
};
use openidconnect::{
    AccessTokenHash, AuthType, AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl,
    Nonce, OAuth2TokenResponse, PkceCodeChallenge, RedirectUrl, RefreshToken, Scope, TokenResponse,
};

use crate::flows::{Browser, param};
use crate::helpers::{TestApp, http_client, spawn_app};

const PASSWORD: &str = "correct horse battery staple";

struct Rp {
    metadata: CoreProviderMetadata,
    client_id: String,
    secret: Option<String>,
}

async fn discover(app: &TestApp) -> CoreProviderMetadata {
    CoreProviderMetadata::discover_async(
        IssuerUrl::new(app.issuer.clone()).unwrap(),
        &http_client(),
    )
    .await
    .expect("discovery")
}

macro_rules! core_client {
    ($rp:expr, $auth:expr) => {
        CoreClient::from_provider_metadata(
            $rp.metadata.clone(),
            ClientId::new($rp.client_id.clone()),
            $rp.secret.clone().map(ClientSecret::new),
        )
        .set_redirect_uri(RedirectUrl::new("https://rp.example/callback".into()).unwrap())
        .set_auth_type($auth)
    };
}

#[tokio::test]
async fn code_flow_with_pkce_and_nonce_passes_a_strict_relying_party() {
    let app = spawn_app().await;
    let user_id = app.create_user("alice", PASSWORD).await;
    let registered = app.web_client("Relying Party", |_| {}).await;
    let rp = Rp {
        metadata: discover(&app).await,
        client_id: registered.client_id.clone(),
        secret: registered.client_secret.clone(),
    };
    let client = core_client!(rp, AuthType::BasicAuth);
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, state, nonce) = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("email".into()))
        .add_scope(Scope::new("profile".into()))
        .set_pkce_challenge(challenge)
        .url();

    let browser = Browser::new(&app);
    let callback = browser
        .authorize(url.as_str(), "alice", PASSWORD)
        .await
        .left();
    assert!(
        callback
            .as_str()
            .starts_with("https://rp.example/callback?")
    );
    assert_eq!(
        param(&callback, "state").as_deref(),
        Some(state.secret().as_str())
    );
    assert_eq!(
        param(&callback, "iss").as_deref(),
        Some(app.issuer.as_str()),
        "RFC 9207 iss"
    );
    let code = param(&callback, "code").expect("a code");
    assert!(code.len() >= 22, "at least 128 bits");

    let http = http_client();
    let tokens = client
        .exchange_code(AuthorizationCode::new(code))
        .unwrap()
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await
        .expect("code exchange");
    assert_eq!(tokens.token_type().as_ref(), "bearer");
    assert_eq!(tokens.expires_in().unwrap().as_secs(), 900);
    let id_token = tokens.id_token().expect("an ID token for openid");
    let id_verifier = client.id_token_verifier();
    let claims = id_token
        .claims(&id_verifier, &nonce)
        .expect("a valid ID token");
    assert_eq!(claims.subject().as_str(), user_id);
    assert_eq!(claims.issuer().as_str(), app.issuer);
    assert!(claims.auth_time().is_some());
    assert_eq!(
        claims
            .auth_context_ref()
            .map(|a| a.as_str().to_owned())
            .as_deref(),
        Some("urn:latchkey:acr:pwd")
    );
    let expected_hash = claims.access_token_hash().expect("at_hash");
    let actual_hash = AccessTokenHash::from_token(
        tokens.access_token(),
        id_token.signing_alg().unwrap(),
        id_token.signing_key(&id_verifier).unwrap(),
    )
    .unwrap();
    assert_eq!(&actual_hash, expected_hash);
    assert!(
        claims.email().is_none(),
        "with an access token, claims belong in userinfo"
    );
    // The raw ID token is RS256 with a kid and carries sid.
    let raw = id_token.to_string();
    let parts: Vec<&str> = raw.split('.').collect();
    use base64::Engine;
    let header: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(parts[0])
            .unwrap(),
    )
    .unwrap();
    assert_eq!(header["alg"], "RS256");
    assert!(header["kid"].is_string());
    let payload: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(parts[1])
            .unwrap(),
    )
    .unwrap();
    assert!(payload["sid"].is_string());
    assert_eq!(payload["azp"], rp.client_id.as_str());

    let userinfo: CoreUserInfoClaims = client
        .user_info(tokens.access_token().clone(), None)
        .unwrap()
        .request_async(&http)
        .await
        .expect("userinfo");
    assert_eq!(userinfo.subject().as_str(), user_id);
    assert_eq!(userinfo.email().unwrap().as_str(), "alice@example.com");
    assert_eq!(userinfo.email_verified(), Some(true));
    assert_eq!(userinfo.preferred_username().unwrap().as_str(), "alice");

    // Refresh rotates the refresh token and keeps iss, sub, aud and auth_time.
    let refresh = tokens.refresh_token().expect("a refresh token").clone();
    let refreshed = client
        .exchange_refresh_token(&refresh)
        .unwrap()
        .request_async(&http)
        .await
        .expect("refresh");
    let rotated = refreshed.refresh_token().expect("a new refresh token");
    assert_ne!(rotated.secret(), refresh.secret());
    let new_claims = refreshed
        .id_token()
        .unwrap()
        .claims(&id_verifier, |_: Option<&Nonce>| Ok(()))
        .unwrap();
    assert_eq!(new_claims.subject(), claims.subject());
    assert_eq!(new_claims.auth_time(), claims.auth_time());
    assert!(
        new_claims.nonce().is_none(),
        "no nonce on refresh (OpenID Connect Core §12.2)"
    );
}

#[tokio::test]
async fn client_secret_post_and_basic_work_with_reserved_characters_in_the_secret() {
    let app = spawn_app().await;
    app.create_user("bob", PASSWORD).await;
    let metadata = discover(&app).await;
    for (method, auth) in [
        ("client_secret_basic", AuthType::BasicAuth),
        ("client_secret_post", AuthType::RequestBody),
    ] {
        let secret = "s3cret+with space%and&more=chars/0123456789abcdef".to_owned();
        let registered = app
            .web_client(method, |r| {
                r.auth_method = Some(method.into());
                r.secret = Some(secret.clone());
            })
            .await;
        assert_eq!(registered.client_secret.as_deref(), Some(secret.as_str()));
        let rp = Rp {
            metadata: metadata.clone(),
            client_id: registered.client_id.clone(),
            secret: Some(secret),
        };
        let client = core_client!(rp, auth);
        let (url, _, nonce) = client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .url();
        let callback = Browser::new(&app)
            .authorize(url.as_str(), "bob", PASSWORD)
            .await
            .left();
        let code = param(&callback, "code").unwrap();
        let tokens = client
            .exchange_code(AuthorizationCode::new(code))
            .unwrap()
            .request_async(&http_client())
            .await
            .unwrap_or_else(|e| panic!("{method}: {e:?}"));
        tokens
            .id_token()
            .unwrap()
            .claims(&client.id_token_verifier(), &nonce)
            .unwrap();
        // The refresh grant authenticates the same way.
        client
            .exchange_refresh_token(&RefreshToken::new(
                tokens.refresh_token().unwrap().secret().clone(),
            ))
            .unwrap()
            .request_async(&http_client())
            .await
            .unwrap_or_else(|e| panic!("{method} refresh: {e:?}"));
    }
}
