//! The command line: JSON output, shared configuration, and configuration errors.

use serde_json::Value;

use crate::helpers::{run_cli, spawn_app};

#[tokio::test]
async fn user_create_prints_id_username_and_email_and_stores_roles() {
    let app = spawn_app().await;
    let output = app.cli_with_stdin(
        &[
            "user",
            "create",
            "--username",
            "Jane",
            "--email",
            "Jane@Example.com",
            "--password-stdin",
        ],
        Some("a long enough password\n"),
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let created: Value = serde_json::from_slice(&output.stdout).unwrap();
    let keys: Vec<&String> = created.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["id", "username", "email"]);
    assert_eq!(created["username"], "jane");
    assert_eq!(created["email"], "jane@example.com");
    let id = created["id"].as_str().unwrap().to_owned();
    assert!(uuid::Uuid::parse_str(&id).is_ok());
    let (roles, user) = app
        .state
        .store
        .run(move |conn| {
            Ok((
                latchkey::store::users::role_names(conn, &id)?,
                latchkey::store::users::find(conn, &id)?,
            ))
        })
        .await
        .unwrap();
    assert_eq!(roles, vec!["user"]);
    let hash = user.password_hash.expect("a password was set");
    assert!(hash.starts_with("$argon2id$"));
    assert!(latchkey::accounts::passwords::verify_blocking(
        "a long enough password",
        &hash
    ));
}

#[tokio::test]
async fn user_create_refuses_duplicates_and_unknown_roles_without_storing() {
    let app = spawn_app().await;
    let dup = app.cli(&[
        "user",
        "create",
        "--username",
        "admin",
        "--email",
        "other@example.com",
    ]);
    assert_eq!(dup.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&dup.stderr).contains("username is already taken"));
    let role = app.cli(&[
        "user",
        "create",
        "--username",
        "bob",
        "--email",
        "bob@example.com",
        "--role",
        "wizard",
    ]);
    assert_eq!(role.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&role.stderr).contains("no role named `wizard`"));
    assert!(role.stdout.is_empty(), "nothing on stdout for a failure");
    let bad = app.cli(&[
        "user",
        "create",
        "--username",
        "bob",
        "--email",
        "not-an-email",
    ]);
    assert_eq!(bad.status.code(), Some(2));
    let count: i64 = app
        .state
        .store
        .run(|conn| {
            use diesel::prelude::*;
            Ok(latchkey::store::schema::users::table
                .count()
                .get_result(conn)?)
        })
        .await
        .unwrap();
    assert_eq!(count, 1, "only the bootstrap admin exists");
}

#[tokio::test]
async fn client_create_shows_the_secret_once_and_list_never_does() {
    let app = spawn_app().await;
    let created = app.cli_json(&[
        "client",
        "create",
        "--name",
        "Web App",
        "--redirect-uri",
        "https://app.example.com/cb",
        "--redirect-uri",
        "https://app.example.com/cb2",
        "--post-logout-redirect-uri",
        "https://app.example.com/bye",
        "--backchannel-logout-uri",
        "https://app.example.com/bcl",
        "--grant-type",
        "authorization_code",
        "--grant-type",
        "refresh_token",
        "--auth-method",
        "client_secret_post",
        "--scope",
        "openid profile email",
        "--skip-consent",
    ]);
    let client_id = created["client_id"].as_str().unwrap().to_owned();
    let secret = created["client_secret"].as_str().unwrap();
    assert!(
        secret.starts_with("lks_") && secret.len() >= 4 + 43,
        "256-bit secret"
    );
    assert_eq!(created["token_endpoint_auth_method"], "client_secret_post");
    assert_eq!(created["redirect_uris"].as_array().unwrap().len(), 2);
    assert_eq!(
        created["post_logout_redirect_uris"][0],
        "https://app.example.com/bye"
    );
    assert_eq!(
        created["backchannel_logout_uri"],
        "https://app.example.com/bcl"
    );
    assert_eq!(created["scope"], "openid profile email");
    assert_eq!(created["skip_consent"], true);
    assert_eq!(created["response_types"], serde_json::json!(["code"]));

    // The secret is stored only as a keyed hash.
    let id = client_id.clone();
    let row = app
        .state
        .store
        .run(move |conn| latchkey::store::clients::find(conn, &id))
        .await
        .unwrap();
    let stored = row.secret_hash.unwrap();
    assert!(!stored.contains(secret) && !secret.contains(&stored));
    assert_eq!(stored, app.state.crypto.hash_token(secret).0);

    let listed = app.cli_json(&["client", "list"]);
    let listed = listed.as_array().unwrap();
    assert_eq!(listed.len(), 2, "the built-in first-party client and ours");
    let ours = listed
        .iter()
        .find(|c| c["client_id"] == client_id.as_str())
        .unwrap();
    assert!(listed.iter().all(|c| c.get("client_secret").is_none()));
    assert_eq!(ours["client_name"], "Web App");

    let public = app.cli_json(&[
        "client",
        "create",
        "--name",
        "SPA",
        "--redirect-uri",
        "http://127.0.0.1/cb",
        "--auth-method",
        "none",
        "--application-type",
        "native",
    ]);
    assert!(
        public.get("client_secret").is_none(),
        "public clients have no secret"
    );
    assert_eq!(public["require_pkce"], true);

    let deleted = app.cli_json(&["client", "delete", &client_id]);
    assert_eq!(deleted["deleted"], client_id.as_str());
    let again = app.cli(&["client", "delete", &client_id]);
    assert_eq!(again.status.code(), Some(2));
    assert_eq!(
        app.cli_json(&["client", "list"]).as_array().unwrap().len(),
        2,
        "the public client and the built-in first-party client remain"
    );
    let builtin = app.cli(&["client", "delete", "latchkey"]);
    assert_eq!(builtin.status.code(), Some(2), "the built-in client stays");
}

#[tokio::test]
async fn client_create_refuses_bad_metadata_naming_the_field() {
    let app = spawn_app().await;
    for (args, field) in [
        (
            vec!["--redirect-uri", "https://a.example/cb#frag"],
            "redirect_uris",
        ),
        (
            vec![
                "--redirect-uri",
                "https://a.example/cb",
                "--auth-method",
                "magic",
            ],
            "token_endpoint_auth_method",
        ),
        (
            vec![
                "--redirect-uri",
                "https://a.example/cb",
                "--grant-type",
                "password",
            ],
            "grant_types",
        ),
        (
            vec![
                "--redirect-uri",
                "https://a.example/cb",
                "--auth-method",
                "private_key_jwt",
            ],
            "jwks",
        ),
        (vec![], "redirect_uris"),
    ] {
        let mut all = vec!["client", "create", "--name", "Bad"];
        all.extend(args.iter().copied());
        let output = app.cli(&all);
        assert_eq!(output.status.code(), Some(2), "{all:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(field), "{all:?}: {stderr}");
    }
    let listed = app.cli_json(&["client", "list"]);
    assert_eq!(
        listed.as_array().unwrap().len(),
        1,
        "only the built-in client"
    );
    assert_eq!(listed[0]["client_id"], "latchkey");
}

#[tokio::test]
async fn invalid_configuration_names_the_field_and_hides_secrets() {
    let app = spawn_app().await;
    let mut env = app.cli_env.clone();
    env.insert("LATCHKEY_POOL_SIZE".into(), "many".into());
    let output = run_cli(&env, &["keys", "list"], None);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("`pool_size`"), "{stderr}");

    let mut env = app.cli_env.clone();
    env.insert(
        "LATCHKEY_KEY_ENCRYPTION_KEY".into(),
        "hunter2-is-my-secret".into(),
    );
    let output = run_cli(&env, &["keys", "list"], None);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("`key_encryption_key`"), "{stderr}");
    assert!(!stderr.contains("hunter2"), "the secret leaked: {stderr}");

    let mut env = app.cli_env.clone();
    env.insert(
        "LATCHKEY_DATABASE_URL".into(),
        "postgres://app:s3cr3t-pw@127.0.0.1:1/x".into(),
    );
    env.insert("LATCHKEY_DATABASE_TIMEOUT_SECS".into(), "1".into());
    let output = run_cli(&env, &["keys", "list"], None);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !stderr.contains("s3cr3t-pw"),
        "the database password leaked: {stderr}"
    );

    let mut env = app.cli_env.clone();
    env.insert(
        "LATCHKEY_ISSUER".into(),
        "https://id.example.com/?tenant=1".into(),
    );
    let output = run_cli(&env, &["keys", "list"], None);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("`issuer`"));

    let mut env = app.cli_env.clone();
    env.insert("LATCHKEY_TOKEN_LIFETIME".into(), "9".into());
    let output = run_cli(&env, &["keys", "list"], None);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("unknown setting"));
}

#[tokio::test]
async fn configuration_file_is_read_and_environment_overrides_it() {
    let app = spawn_app().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("latchkey.toml");
    std::fs::write(&file, "pool_size = 0\n").unwrap();
    let mut env = app.cli_env.clone();
    env.insert("LATCHKEY_CONFIG".into(), file.display().to_string());
    let output = run_cli(&env, &["keys", "list"], None);
    assert_eq!(
        output.status.code(),
        Some(2),
        "the file's invalid value is read"
    );
    assert!(String::from_utf8_lossy(&output.stderr).contains("`pool_size`"));
    env.insert("LATCHKEY_POOL_SIZE".into(), "3".into());
    let output = run_cli(&env, &["keys", "list"], None);
    assert!(
        output.status.success(),
        "the environment overrides the file"
    );
}

#[tokio::test]
async fn migrate_is_idempotent() {
    let app = spawn_app().await;
    assert_eq!(app.cli_json(&["migrate"])["applied"], serde_json::json!([]));
    let store = app.state.store.clone();
    let again = tokio::task::spawn_blocking(move || store.migrate())
        .await
        .unwrap()
        .unwrap();
    assert!(again.is_empty());
}

#[tokio::test]
async fn a_fresh_database_is_bootstrapped_once_with_a_generated_password_shown_once() {
    let dir = tempfile::tempdir().unwrap();
    let url = crate::helpers::fresh_database_url(dir.path());
    let env = std::collections::BTreeMap::from([
        ("LATCHKEY_DATABASE_URL".to_owned(), url),
        (
            "LATCHKEY_KEY_ENCRYPTION_KEY".to_owned(),
            "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=".to_owned(),
        ),
    ]);
    let first = run_cli(&env, &["client", "list"], None);
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let stderr = String::from_utf8_lossy(&first.stderr);
    assert!(stderr.contains("generated password"), "{stderr}");
    let second = run_cli(&env, &["client", "list"], None);
    assert!(second.status.success());
    assert!(!String::from_utf8_lossy(&second.stderr).contains("generated password"));
    let keys = run_cli(&env, &["keys", "list"], None);
    let keys: Value = serde_json::from_slice(&keys.stdout).unwrap();
    assert_eq!(keys.as_array().unwrap().len(), 8);
}
