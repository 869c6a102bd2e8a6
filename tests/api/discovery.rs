//! Discovery documents: content, issuer equality, and acceptance by a strict relying party.

use openidconnect::IssuerUrl;
use openidconnect::core::CoreProviderMetadata;

use crate::helpers::spawn_app;

#[tokio::test]
async fn discovery_issuer_equals_the_url_it_is_served_under() {
    let app = spawn_app().await;
    let doc = app.get_json("/.well-known/openid-configuration", 200).await;
    assert_eq!(doc["issuer"], app.address.as_str());
    assert_eq!(doc["jwks_uri"], app.url("/oauth/jwks").as_str());
    assert_eq!(
        doc["subject_types_supported"],
        serde_json::json!(["public"])
    );
    let algs = doc["id_token_signing_alg_values_supported"]
        .as_array()
        .unwrap();
    assert_eq!(
        algs[0], "RS256",
        "RS256 is the OpenID default and comes first"
    );
    for alg in ["ES256", "PS256", "EdDSA"] {
        assert!(algs.iter().any(|a| a == alg), "{alg} missing");
    }
}

#[tokio::test]
async fn discovery_is_json_with_caching_and_a_request_id() {
    let app = spawn_app().await;
    let response = app.get("/.well-known/openid-configuration").await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    assert!(
        response.headers()["cache-control"]
            .to_str()
            .unwrap()
            .contains("max-age")
    );
    assert!(
        response.headers()["x-request-id"]
            .to_str()
            .unwrap()
            .starts_with("req_")
    );
}

#[tokio::test]
async fn rfc8414_metadata_matches_openid_discovery() {
    let app = spawn_app().await;
    let oidc = app.get_json("/.well-known/openid-configuration", 200).await;
    let oauth = app
        .get_json("/.well-known/oauth-authorization-server", 200)
        .await;
    assert_eq!(oidc, oauth);
}

#[tokio::test]
async fn a_strict_relying_party_discovers_the_provider_and_its_keys() {
    let app = spawn_app().await;
    let http = crate::helpers::http_client();
    let metadata =
        CoreProviderMetadata::discover_async(IssuerUrl::new(app.issuer.clone()).unwrap(), &http)
            .await
            .expect("openidconnect accepts the document");
    assert_eq!(metadata.issuer().as_str(), app.issuer);
    assert_eq!(
        metadata.jwks().keys().len(),
        8,
        "active and next key for four algorithms"
    );
}
