//! Signing keys: the JWK Set's shape, the rotation lifecycle, and encryption at rest.

use std::collections::HashSet;

use diesel::prelude::*;
use latchkey::domain::SigningAlg;
use latchkey::oidc::keys::{RotationOutcome, rotate};
use latchkey::store::schema::signing_keys;
use serde_json::Value;

use crate::helpers::{eventually, spawn_app};

fn kids(jwks: &Value) -> Vec<String> {
    jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn jwks_publishes_public_keys_with_unique_kid_use_and_alg() {
    let app = spawn_app().await;
    let response = app.get("/oauth/jwks").await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    let jwks: Value = response.json().await.unwrap();
    let keys = jwks["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 8);
    let mut seen = HashSet::new();
    for key in keys {
        let kid = key["kid"].as_str().unwrap();
        assert!(!kid.trim().is_empty());
        assert!(seen.insert(kid.to_owned()), "kid {kid} repeated");
        assert_eq!(key["use"], "sig");
        let alg = key["alg"].as_str().unwrap();
        assert!(["ES256", "RS256", "PS256", "EdDSA"].contains(&alg), "{alg}");
        for private in ["d", "p", "q", "dp", "dq", "qi", "oth", "k"] {
            assert!(key.get(private).is_none(), "{kid} publishes `{private}`");
        }
        let expected_kty = match alg {
            "ES256" => "EC",
            "EdDSA" => "OKP",
            _ => "RSA",
        };
        assert_eq!(key["kty"], expected_kty);
        for member in ["n", "e", "x", "y"] {
            if let Some(v) = key.get(member) {
                let text = v.as_str().unwrap();
                assert!(
                    text.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
                    "{member} of {kid} is not unpadded base64url"
                );
            }
        }
    }
    // The relying party library parses every key.
    let parsed: openidconnect::core::CoreJsonWebKeySet = serde_json::from_value(jwks).unwrap();
    assert_eq!(parsed.keys().len(), 8);
}

#[tokio::test]
async fn rotation_moves_keys_next_to_active_to_retired_and_publishes_before_signing() {
    let app = spawn_app().await;
    let before = app.cli_json(&["keys", "list"]);
    let status_of = |list: &Value, alg: &str, status: &str| -> Vec<String> {
        list.as_array()
            .unwrap()
            .iter()
            .filter(|k| k["alg"] == alg && k["status"] == status)
            .map(|k| k["kid"].as_str().unwrap().to_owned())
            .collect()
    };
    let old_active = status_of(&before, "ES256", "active");
    let next = status_of(&before, "ES256", "next");
    assert_eq!((old_active.len(), next.len()), (1, 1));
    let published_before = kids(&app.get_json("/oauth/jwks", 200).await);
    assert!(
        published_before.contains(&next[0]),
        "the next key is published before it signs"
    );
    assert_eq!(
        app.state
            .keys
            .current()
            .active(SigningAlg::Es256)
            .unwrap()
            .kid(),
        old_active[0]
    );

    // Rotate from the CLI while the server runs against the same database.
    let rotated = app.cli_json(&["keys", "rotate"]);
    let es = rotated["rotated"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["alg"] == "ES256")
        .unwrap()
        .clone();
    assert_eq!(es["retired"], old_active[0].as_str());
    assert_eq!(es["activated"], next[0].as_str());
    let new_next = es["next"].as_str().unwrap().to_owned();

    let after = app.cli_json(&["keys", "list"]);
    assert_eq!(status_of(&after, "ES256", "active"), next);
    assert_eq!(status_of(&after, "ES256", "retired"), old_active);
    assert_eq!(status_of(&after, "ES256", "next"), vec![new_next.clone()]);
    let retired = after
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == old_active[0].as_str())
        .unwrap();
    assert!(
        retired["expires_at"].is_string(),
        "a retired key has a removal time"
    );

    // The running server picks the rotation up within seconds: it signs with the promoted
    // key and still publishes the retired one beside the new successor.
    eventually(5, "the server to sign with the promoted key", || async {
        (app.state
            .keys
            .current()
            .active(SigningAlg::Es256)
            .unwrap()
            .kid()
            == next[0])
            .then_some(())
    })
    .await;
    let published = kids(&app.get_json("/oauth/jwks", 200).await);
    for kid in [&old_active[0], &next[0], &new_next] {
        assert!(published.contains(kid), "{kid} must be published");
    }
    assert_eq!(
        published.len(),
        12,
        "four algorithms: retired, active and next each"
    );
}

#[tokio::test]
async fn automatic_rotation_happens_once_when_instances_race() {
    let app = spawn_app().await;
    let store = app.state.store.clone();
    // Age the active keys past the rotation period.
    store
        .run(|conn| {
            diesel::update(signing_keys::table.filter(signing_keys::status.eq("active")))
                .set(signing_keys::activated_at.eq(0i64))
                .execute(conn)?;
            Ok(())
        })
        .await
        .unwrap();
    let crypto = app.state.crypto.clone();
    let period = app.state.settings.key_rotation_period_secs;
    let mut racers = Vec::new();
    for _ in 0..4 {
        let (store, crypto) = (store.clone(), crypto.clone());
        racers.push(tokio::spawn(async move {
            store
                .run(move |conn| {
                    rotate(conn, &crypto, SigningAlg::Es256, false, period, 3600)
                        .map_err(latchkey::store::StoreError::Corrupt)
                })
                .await
                .unwrap()
        }));
    }
    let mut rotated = 0;
    for racer in racers {
        match racer.await.unwrap() {
            RotationOutcome::Rotated { .. } => rotated += 1,
            RotationOutcome::NotDue | RotationOutcome::LostRace => {}
        }
    }
    assert_eq!(rotated, 1, "exactly one racer rotates");
    let statuses: Vec<String> = store
        .run(|conn| {
            Ok(signing_keys::table
                .filter(signing_keys::alg.eq("ES256"))
                .select(signing_keys::status)
                .order(signing_keys::status)
                .load(conn)?)
        })
        .await
        .unwrap();
    assert_eq!(statuses, vec!["active", "next", "retired"]);
}

#[tokio::test]
async fn no_private_key_material_is_readable_in_the_database() {
    let app = spawn_app().await;
    let rows: Vec<(String, String, String)> = app
        .state
        .store
        .run(|conn| {
            Ok(signing_keys::table
                .select((
                    signing_keys::kid,
                    signing_keys::public_jwk,
                    signing_keys::private_key,
                ))
                .load(conn)?)
        })
        .await
        .unwrap();
    assert_eq!(rows.len(), 8);
    let database_file =
        (!crate::helpers::on_postgres()).then(|| std::fs::read(&app.database_url).unwrap());
    for (kid, public_jwk, private_key) in rows {
        let public: Value = serde_json::from_str(&public_jwk).unwrap();
        assert!(
            public.get("d").is_none(),
            "{kid}: public JWK holds a private member"
        );
        assert!(
            !private_key.contains("PRIVATE KEY"),
            "{kid}: PEM in the clear"
        );
        assert!(private_key.starts_with("v1."), "{kid}: not sealed");
        // The stored value decrypts only with the key-encryption key, to a PKCS#8 key whose
        // bytes appear nowhere in the clear.
        let der = app.state.crypto.open(&private_key, &kid).unwrap();
        assert!(der.len() > 40);
        use base64::Engine;
        let b64 = base64::engine::general_purpose::STANDARD.encode(&der);
        assert!(
            !private_key.contains(&b64[8..40]),
            "{kid}: DER in the clear"
        );
        if let Some(file) = &database_file {
            let middle = (der.len() - 16) / 2;
            for needle in [&der[middle..middle + 16], &der[der.len() - 32..]] {
                assert!(
                    !file.windows(needle.len()).any(|w| w == needle),
                    "{kid}: private key bytes found in the database file"
                );
            }
        }
        // Sealed under the row's kid: moving it to another row makes it unreadable.
        assert!(app.state.crypto.open(&private_key, "another-kid").is_err());
    }
}
