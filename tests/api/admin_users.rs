//! The users resource of the admin API (`/api/v1/users` and `/api/v1/admin/users`): each
//! endpoint's success and error paths, asserting on the bodies and on what is stored; the
//! permission boundaries; the filter language; paging; and the rule that the last holder of `*`
//! stays.

use diesel::prelude::*;
use latchkey::store::StoreError;
use latchkey::store::audit::{AuditFilter, AuditRow};
use latchkey::store::schema::{grants, sessions, users as users_table};
use latchkey::store::users::UserRow;
use reqwest::Method;
use serde_json::{Value, json};

use crate::admin_support::{
    Api, USER_PASSWORD, admin_token, claims, create_role, login, query, try_login, user_with_roles,
};
use crate::helpers::{TestApp, spawn_app, spawn_app_with};

/// A password the policy accepts.
const PASSWORD: &str = "a long and unusual passphrase";
/// A well-formed id that no user has.
const UNKNOWN_ID: &str = "0190a6f2-7c3e-7000-8000-00000000beef";

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// Creates a user through `POST /users`, asserting the 201.
async fn create(api: &Api<'_>, body: Value) -> Value {
    let (status, user) = api.post("/users", body.clone()).await;
    assert_eq!(status, 201, "create {body}: {user}");
    user
}

fn id(user: &Value) -> String {
    user["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no id in {user}"))
        .to_owned()
}

/// The user id behind an access token.
fn subject(token: &str) -> String {
    claims(token)["sub"].as_str().unwrap().to_owned()
}

/// The stored row of a user, if there is one.
async fn stored(app: &TestApp, id: &str) -> Option<UserRow> {
    let id = id.to_owned();
    app.state
        .store
        .run(move |conn| match latchkey::store::users::find(conn, &id) {
            Ok(row) => Ok(Some(row)),
            Err(StoreError::NotFound) => Ok(None),
            Err(other) => Err(other),
        })
        .await
        .unwrap()
}

/// How many rows the `users` table holds (soft-deleted ones included).
async fn user_count(app: &TestApp) -> i64 {
    app.state
        .store
        .run(|conn| Ok(users_table::table.count().get_result::<i64>(conn)?))
        .await
        .unwrap()
}

/// The stored security row (lock state) of a user.
async fn security(app: &TestApp, id: &str) -> latchkey::store::security::SecurityRow {
    let id = id.to_owned();
    app.state
        .store
        .run(move |conn| latchkey::store::security::find(conn, &id))
        .await
        .unwrap()
}

/// Audit entries matching `filter`, newest first.
async fn audit_entries(app: &TestApp, filter: AuditFilter) -> Vec<AuditRow> {
    app.state
        .store
        .run(move |conn| latchkey::store::audit::page(conn, &filter, 0, 1000))
        .await
        .unwrap()
}

/// Audit entries of `action` about the user `resource_id`, newest first.
async fn audit_of(app: &TestApp, action: &str, resource_id: &str) -> Vec<AuditRow> {
    audit_entries(
        app,
        AuditFilter {
            action: Some(action.into()),
            resource_id: Some(resource_id.into()),
            ..Default::default()
        },
    )
    .await
}

/// A JSON column of an audit entry.
fn json_column(text: &Option<String>) -> Value {
    serde_json::from_str(text.as_deref().unwrap_or("null")).unwrap()
}

/// The usernames of a list, in its order.
fn usernames(list: &Value) -> Vec<String> {
    list["users"]
        .as_array()
        .unwrap_or_else(|| panic!("no users in {list}"))
        .iter()
        .map(|u| u["username"].as_str().unwrap().to_owned())
        .collect()
}

/// `GET /users` with these parameters, asserting the 200; returns the body.
async fn list(api: &Api<'_>, pairs: &[(&str, &str)]) -> Value {
    let (status, body) = api.get(&format!("/users{}", query(pairs))).await;
    assert_eq!(status, 200, "GET /users {pairs:?}: {body}");
    body
}

/// The sorted usernames `GET /users` lists with these parameters (and `limit=100`).
async fn names(api: &Api<'_>, pairs: &[(&str, &str)]) -> Vec<String> {
    let mut pairs = pairs.to_vec();
    pairs.push(("limit", "100"));
    let mut found = usernames(&list(api, &pairs).await);
    found.sort();
    found
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

/// The `field` of every entry of a 422's details.
fn detail_fields(error: &Value) -> Vec<String> {
    error["details"]
        .as_array()
        .unwrap_or_else(|| panic!("no details list in {error}"))
        .iter()
        .map(|d| d["field"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// Asserts a 422 in the contract's form whose details name `field`.
fn assert_invalid(status: u16, error: &Value, field: &str) {
    assert_eq!(status, 422, "{error}");
    assert_eq!(error["error"], "validation_error", "{error}");
    assert_eq!(error["code"], 422, "{error}");
    assert!(
        detail_fields(error).iter().any(|f| f == field),
        "details should name `{field}`: {error}"
    );
}

/// `GET /api/v1/auth/me` with `token`: its status.
async fn me_status(app: &TestApp, token: &str) -> u16 {
    Api::new(app, token).get("/auth/me").await.0
}

/// Unix seconds of an RFC 3339 time.
fn unix(text: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(text)
        .unwrap_or_else(|e| panic!("{text}: {e}"))
        .timestamp()
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Sets a stored user's `created_at` (to make time filters exact).
async fn set_created_at(app: &TestApp, id: &str, at: &str) {
    let (id, at) = (id.to_owned(), unix(at));
    app.state
        .store
        .run(move |conn| {
            diesel::update(users_table::table.find(id))
                .set(users_table::created_at.eq(at))
                .execute(conn)?;
            Ok(())
        })
        .await
        .unwrap();
}

/// How many sessions and grants a user has stored.
async fn sessions_and_grants(app: &TestApp, id: &str) -> (i64, i64) {
    let id = id.to_owned();
    app.state
        .store
        .run(move |conn| {
            let s = sessions::table
                .filter(sessions::user_id.eq(id.clone()))
                .count()
                .get_result::<i64>(conn)?;
            let g = grants::table
                .filter(grants::user_id.eq(id))
                .count()
                .get_result::<i64>(conn)?;
            Ok((s, g))
        })
        .await
        .unwrap()
}

/// Every endpoint of the users and roles resources, with a valid body where one is needed.
fn endpoints(id: &str) -> Vec<(Method, String, Option<Value>)> {
    let mut table = Vec::new();
    for base in ["/users", "/admin/users"] {
        table.extend([
            (Method::GET, base.to_owned(), None),
            (
                Method::POST,
                base.to_owned(),
                Some(json!({"email": "intruder@example.com", "roles": ["admin"]})),
            ),
            (Method::GET, format!("{base}/{id}"), None),
            (
                Method::PUT,
                format!("{base}/{id}"),
                Some(json!({"first_name": "Pwned"})),
            ),
            (
                Method::PATCH,
                format!("{base}/{id}"),
                Some(json!({"roles": ["admin"]})),
            ),
            (Method::DELETE, format!("{base}/{id}"), None),
            (
                Method::DELETE,
                format!("{base}/{id}?soft_delete=true"),
                None,
            ),
            (
                Method::POST,
                format!("{base}/{id}/lock"),
                Some(json!({"reason": "x", "duration_minutes": 5})),
            ),
            (Method::POST, format!("{base}/{id}/unlock"), None),
            (
                Method::PUT,
                format!("{base}/{id}/preferences"),
                Some(json!({"theme": "pwned"})),
            ),
            (Method::GET, format!("{base}/{id}/activity"), None),
        ]);
    }
    table.extend([
        (Method::GET, "/users/search?q=a".to_owned(), None),
        (
            Method::POST,
            "/users/bulk".to_owned(),
            Some(json!({"users": [{"email": "bulk@example.com"}]})),
        ),
        (
            Method::DELETE,
            "/users/bulk".to_owned(),
            Some(json!({"ids": [id]})),
        ),
        (
            Method::POST,
            "/users/bulk-actions".to_owned(),
            Some(json!({"user_ids": [id], "action": "deactivate"})),
        ),
        (
            Method::POST,
            "/users/bulk-actions".to_owned(),
            Some(json!({"user_ids": [id], "action": "delete"})),
        ),
        (
            Method::PUT,
            format!("/admin/users/{id}/permissions"),
            Some(json!({"permissions": ["users:delete"]})),
        ),
        (Method::GET, "/admin/roles".to_owned(), None),
        (
            Method::POST,
            "/admin/roles".to_owned(),
            Some(json!({"name": "sneaky", "permissions": ["*"]})),
        ),
        (Method::GET, "/admin/roles/user".to_owned(), None),
        (
            Method::PUT,
            "/admin/roles/user".to_owned(),
            Some(json!({"permissions": ["*"]})),
        ),
        (
            Method::PATCH,
            "/admin/roles/user".to_owned(),
            Some(json!({"description": "pwned"})),
        ),
        (Method::DELETE, "/admin/roles/user".to_owned(), None),
        (
            Method::DELETE,
            "/admin/roles/user?force=true".to_owned(),
            None,
        ),
        (Method::GET, "/admin/permissions".to_owned(), None),
    ]);
    table
}

// ---------------------------------------------------------------------------------------------
// Authentication and permission boundaries
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn an_admin_creates_lists_and_reads_a_user() {
    let app = spawn_app().await;
    let admin = Api::new(&app, &admin_token(&app).await);
    let (status, created) = admin
        .post(
            "/users",
            json!({"email": "Jane@Example.com", "first_name": "Jane", "last_name": "Smith",
                   "password": "a long and unusual passphrase", "metadata": {"dept": "eng"}}),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["email"], "jane@example.com");
    assert_eq!(created["roles"], json!(["user"]));
    let (status, list) = admin.get("/users?search=jane").await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["users"][0]["id"], created["id"]);
    assert_eq!(list["pagination"]["total"], 1);
    let (_, user_token) = user_with_roles(&app, "bob", &["user"]).await;
    let (status, body) = Api::new(&app, &user_token).get("/users").await;
    assert_eq!(status, 403, "{body}");
}

#[tokio::test]
async fn every_users_and_roles_endpoint_answers_401_without_a_valid_token_and_403_to_a_user_token()
{
    // Arrange
    let app = spawn_app().await;
    let (bob, bob_token) = user_with_roles(&app, "bob", &["user"]).await;
    let users_before = user_count(&app).await;
    let user_role_before = Api::new(&app, &admin_token(&app).await)
        .get("/admin/roles/user")
        .await
        .1;
    let table = endpoints(&bob);

    for (method, path, body) in &table {
        // Act: no token at all.
        let mut request = app
            .client
            .request(method.clone(), app.url(&format!("/api/v1{path}")));
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.unwrap();

        // Assert: 401 with an RFC 6750 challenge, in the API's error form.
        assert_eq!(
            response.status().as_u16(),
            401,
            "{method} {path} without a token"
        );
        let challenge = response
            .headers()
            .get("www-authenticate")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        assert!(
            challenge.starts_with("Bearer"),
            "{method} {path}: {challenge:?}"
        );
        let error: Value = response.json().await.unwrap();
        assert_eq!(error["error"], "unauthorized", "{method} {path}: {error}");
        assert_eq!(error["code"], 401);

        // A token this server did not issue is a 401 too, naming invalid_token.
        let response = Api::new(&app, "not-a-token")
            .raw(method.clone(), path, body.clone())
            .await;
        assert_eq!(
            response.status().as_u16(),
            401,
            "{method} {path} with a bad token"
        );
        let challenge = response
            .headers()
            .get("www-authenticate")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        assert!(
            challenge.contains("invalid_token"),
            "{method} {path}: {challenge:?}"
        );

        // A valid token without the permission: 403, not 401.
        let (status, error) = Api::new(&app, &bob_token)
            .call(method.clone(), path, body.clone())
            .await;
        assert_eq!(status, 403, "{method} {path} with a user token: {error}");
        assert_eq!(error["error"], "forbidden", "{method} {path}: {error}");
    }

    // Nothing was changed by any of those requests.
    assert_eq!(user_count(&app).await, users_before);
    let row = stored(&app, &bob).await.expect("bob is still stored");
    assert_eq!(row.status, "active");
    assert_eq!(row.first_name, None);
    assert_eq!(row.preferences, None);
    let admin = Api::new(&app, &admin_token(&app).await);
    let (_, bob_view) = admin
        .get(&format!("/users/{bob}?include=permissions"))
        .await;
    assert_eq!(bob_view["roles"], json!(["user"]), "{bob_view}");
    assert_eq!(bob_view["direct_permissions"], json!([]), "{bob_view}");
    let (_, user_role) = admin.get("/admin/roles/user").await;
    assert_eq!(user_role, user_role_before);
    let (_, roles) = admin.get("/admin/roles").await;
    let mut role_names: Vec<&str> = roles["roles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    role_names.sort();
    assert_eq!(role_names, ["admin", "user"]);

    // A revoked token is a 401 (with a challenge), no longer a 403.
    let (status, body) = Api::new(&app, &bob_token)
        .post("/auth/logout", json!({}))
        .await;
    assert!(matches!(status, 200 | 204), "logout: {status} {body}");
    for (method, path, body) in &table {
        let response = Api::new(&app, &bob_token)
            .raw(method.clone(), path, body.clone())
            .await;
        assert_eq!(
            response.status().as_u16(),
            401,
            "{method} {path} after logout"
        );
        assert!(
            response.headers().contains_key("www-authenticate"),
            "{method} {path}"
        );
    }
}

#[tokio::test]
async fn an_expired_access_token_gets_401_with_a_challenge() {
    // Three-second access tokens: `exp` counts from the whole second of issue, so each stays
    // valid for at least two seconds, and each is presented as soon as it is issued.
    let app = spawn_app_with(Box::new(|settings| settings.lifetimes.access_token = 3)).await;
    // Presented while valid, so the server remembers their signatures as verified.
    let admin = admin_token(&app).await;
    for path in ["/users", "/admin/roles"] {
        let response = Api::new(&app, &admin).raw(Method::GET, path, None).await;
        assert_eq!(response.status().as_u16(), 200, "{path} while valid");
    }
    let (_, user) = user_with_roles(&app, "bob", &["user"]).await;
    let response = Api::new(&app, &user).raw(Method::GET, "/users", None).await;
    assert_eq!(response.status().as_u16(), 403, "/users while valid");
    let presented = [
        (&admin, "/users"),
        (&admin, "/admin/roles"),
        (&user, "/users"),
    ];

    tokio::time::sleep(std::time::Duration::from_millis(3100)).await;

    for (token, path) in presented {
        let response = Api::new(&app, token).raw(Method::GET, path, None).await;
        assert_eq!(response.status().as_u16(), 401, "{path}");
        let challenge = response
            .headers()
            .get("www-authenticate")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        assert!(challenge.contains("invalid_token"), "{challenge:?}");
    }
}

#[tokio::test]
async fn a_user_token_gets_403_even_when_its_request_body_is_invalid() {
    // Authorization is decided before the body is looked at, so a caller without the
    // permission learns nothing about what a valid request would be.
    let app = spawn_app().await;
    let (bob, token) = user_with_roles(&app, "bob", &["user"]).await;
    let bob_api = Api::new(&app, &token);
    for (method, path, body) in [
        (Method::POST, "/users".to_owned(), json!({"nope": 1})),
        (Method::PATCH, format!("/users/{bob}"), json!({"nope": 1})),
        (
            Method::PUT,
            format!("/admin/users/{bob}/permissions"),
            json!({}),
        ),
        (Method::POST, "/users/bulk".to_owned(), json!({})),
        (Method::POST, "/admin/roles".to_owned(), json!({"nope": 1})),
    ] {
        let (status, error) = bob_api.call(method.clone(), &path, Some(body)).await;
        assert_eq!(status, 403, "{method} {path}: {error}");
    }
}

#[tokio::test]
async fn an_admin_without_users_delete_manages_users_but_cannot_delete_promote_or_touch_a_superuser()
 {
    // Arrange: helpdesk holds users:read and users:write (and the ordinary `user` role).
    let app = spawn_app().await;
    let admin = Api::new(&app, &admin_token(&app).await);
    let admin_id = subject(&admin.token);
    create_role(&admin, "helpdesk", &["users:read", "users:write"]).await;
    let (helen_id, token) = user_with_roles(&app, "helen", &["helpdesk", "user"]).await;
    let helen = Api::new(&app, &token);

    // Lists, creates and updates.
    let listed = list(&helen, &[]).await;
    assert_eq!(listed["pagination"]["total"], 2, "{listed}");
    let carol = create(
        &helen,
        json!({"email": "carol@example.com", "first_name": "Carol"}),
    )
    .await;
    let carol_id = id(&carol);
    assert_eq!(carol["roles"], json!(["user"]));
    let (status, updated) = helen
        .patch(&format!("/users/{carol_id}"), json!({"last_name": "Jones"}))
        .await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(updated["last_name"], "Jones");
    assert_eq!(
        stored(&app, &carol_id).await.unwrap().last_name.as_deref(),
        Some("Jones")
    );

    // Deletes nothing, by any route.
    for (method, path, body) in [
        (Method::DELETE, format!("/users/{carol_id}"), None),
        (
            Method::DELETE,
            format!("/admin/users/{carol_id}?soft_delete=true"),
            None,
        ),
        (
            Method::DELETE,
            "/users/bulk".to_owned(),
            Some(json!({"ids": [carol_id]})),
        ),
        (
            Method::POST,
            "/users/bulk-actions".to_owned(),
            Some(json!({"user_ids": [carol_id], "action": "delete"})),
        ),
        (
            Method::POST,
            "/users/bulk-actions".to_owned(),
            Some(json!({"user_ids": [carol_id], "action": "delete", "soft_delete": true})),
        ),
    ] {
        let (status, error) = helen.call(method.clone(), &path, body).await;
        assert_eq!(status, 403, "{method} {path}: {error}");
        assert_eq!(error["error"], "forbidden");
    }
    let (_, carol_now) = admin.get(&format!("/users/{carol_id}")).await;
    assert_eq!(carol_now["status"], "active", "{carol_now}");

    // Gives nobody the admin role, nor a permission she lacks.
    for (method, path, body) in [
        (
            Method::PATCH,
            format!("/users/{carol_id}"),
            json!({"roles": ["admin"]}),
        ),
        (
            Method::PUT,
            format!("/admin/users/{carol_id}"),
            json!({"role": "admin"}),
        ),
        (
            Method::PATCH,
            format!("/users/{helen_id}"),
            json!({"roles": ["admin", "helpdesk", "user"]}),
        ),
        (
            Method::POST,
            "/users".to_owned(),
            json!({"email": "mallory@example.com", "roles": ["admin"]}),
        ),
        (
            Method::POST,
            "/users".to_owned(),
            json!({"email": "mallory@example.com", "permissions": ["users:delete"]}),
        ),
    ] {
        let (status, error) = helen.call(method.clone(), &path, Some(body)).await;
        assert_eq!(status, 403, "{method} {path}: {error}");
    }
    let (status, outcome) = helen
        .post(
            "/users/bulk-actions",
            json!({"user_ids": [carol_id], "action": "assign_role", "role": "admin"}),
        )
        .await;
    assert_eq!(status, 200, "{outcome}");
    assert_eq!(outcome["affected_users"], 0, "{outcome}");
    assert_eq!(outcome["failed_users"][0]["id"], json!(carol_id));
    assert_eq!(outcome["failed_users"][0]["error"], "forbidden");
    let (_, carol_now) = admin.get(&format!("/users/{carol_id}")).await;
    assert_eq!(carol_now["roles"], json!(["user"]));
    let (_, helen_now) = admin.get(&format!("/users/{helen_id}")).await;
    assert_eq!(helen_now["roles"], json!(["helpdesk", "user"]));
    assert_eq!(
        names(&admin, &[("search", "mallory")]).await,
        Vec::<String>::new()
    );

    // Cannot lock, change, unlock or delete a holder of `*`.
    for (method, path, body) in [
        (
            Method::POST,
            format!("/users/{admin_id}/lock"),
            Some(json!({"duration_minutes": 60})),
        ),
        (Method::POST, format!("/users/{admin_id}/lock"), None),
        (
            Method::PATCH,
            format!("/users/{admin_id}"),
            Some(json!({"first_name": "Mallory"})),
        ),
        (
            Method::PATCH,
            format!("/users/{admin_id}"),
            Some(json!({"status": "inactive"})),
        ),
        (
            Method::PUT,
            format!("/users/{admin_id}/preferences"),
            Some(json!({"theme": "pwned"})),
        ),
    ] {
        let (status, error) = helen.call(method.clone(), &path, body).await;
        assert_eq!(status, 403, "{method} {path}: {error}");
    }
    let (status, outcome) = helen
        .post(
            "/users/bulk-actions",
            json!({"user_ids": [admin_id, carol_id], "action": "lock", "duration_minutes": 5}),
        )
        .await;
    assert_eq!(status, 200, "{outcome}");
    assert_eq!(outcome["affected_users"], 1, "{outcome}");
    assert_eq!(outcome["failed_users"][0]["id"], json!(admin_id));
    assert_eq!(outcome["failed_users"][0]["error"], "forbidden");
    let admin_row = stored(&app, &admin_id).await.unwrap();
    assert_eq!(admin_row.status, "active");
    assert_eq!(admin_row.first_name, None);
    assert_eq!(admin_row.preferences, None);
    assert_eq!(security(&app, &admin_id).await.locked_until, None);
    assert_eq!(
        me_status(&app, &admin.token).await,
        200,
        "the admin's token still works"
    );

    // Direct permissions need roles:write as well.
    let (status, error) = helen
        .put(
            &format!("/admin/users/{carol_id}/permissions"),
            json!({"permissions": ["users:read"]}),
        )
        .await;
    assert_eq!(status, 403, "{error}");
}

// ---------------------------------------------------------------------------------------------
// Creation
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn creating_a_user_answers_201_with_location_stores_the_row_and_the_password_logs_in() {
    // Arrange
    let app = spawn_app().await;
    let admin = Api::new(&app, &admin_token(&app).await);

    // Act
    let response = admin
        .raw(
            Method::POST,
            "/users",
            Some(json!({
                "username": "Jane.Smith", "email": "Jane@Example.com", "password": PASSWORD,
                "first_name": "Jane", "last_name": "Smith", "display_name": "JS",
                "roles": ["user"], "email_verified": true,
                "metadata": {"department": "eng"}, "preferences": {"theme": "dark"}
            })),
        )
        .await;

    // Assert: the body
    assert_eq!(response.status().as_u16(), 201);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let user: Value = response.json().await.unwrap();
    let user_id = id(&user);
    uuid::Uuid::parse_str(&user_id).expect("a UUID");
    assert_eq!(location, format!("/api/v1/users/{user_id}"));
    assert_eq!(user["username"], "jane.smith");
    assert_eq!(user["email"], "jane@example.com");
    assert_eq!(user["first_name"], "Jane");
    assert_eq!(user["last_name"], "Smith");
    assert_eq!(user["display_name"], "JS");
    assert_eq!(user["roles"], json!(["user"]));
    assert_eq!(user["role"], "user");
    assert_eq!(user["status"], "active");
    assert_eq!(user["is_active"], true);
    assert_eq!(user["email_verified"], true);
    assert_eq!(user["metadata"], json!({"department": "eng"}));
    assert_eq!(user["preferences"], json!({"theme": "dark"}));
    assert_eq!(
        user["permissions"],
        json!(["profile:read", "profile:write"])
    );
    assert_eq!(user["last_login"], Value::Null);
    assert!(unix(user["created_at"].as_str().unwrap()) >= now() - 60);
    let text = user.to_string();
    assert!(
        !text.contains("password") && !text.contains("argon2"),
        "no password material in {text}"
    );

    // Assert: the stored row
    let row = stored(&app, &user_id).await.expect("stored");
    assert_eq!(row.username, "jane.smith");
    assert_eq!(row.email, "jane@example.com");
    assert!(row.email_verified);
    assert_eq!(row.first_name.as_deref(), Some("Jane"));
    assert_eq!(row.display_name.as_deref(), Some("JS"));
    assert_eq!(row.status, "active");
    assert!(
        row.password_hash
            .as_deref()
            .is_some_and(|h| h.starts_with("$argon2id$")),
        "{:?}",
        row.password_hash
    );
    assert_eq!(json_column(&row.metadata), json!({"department": "eng"}));

    // Assert: it is read back at its Location, audited, and its password logs in.
    let (status, fetched) = admin.get(location.trim_start_matches("/api/v1")).await;
    assert_eq!(status, 200, "{fetched}");
    assert_eq!(fetched["email"], "jane@example.com");
    let entries = audit_of(&app, "user_created", &user_id).await;
    assert_eq!(entries.len(), 1);
    assert_eq!(
        entries[0].actor_id.as_deref(),
        Some(subject(&admin.token).as_str())
    );
    let new_values = entries[0].new_values.clone().unwrap_or_default();
    assert!(new_values.contains("jane@example.com"));
    assert!(!new_values.contains("argon2"), "{new_values}");
    let token = login(&app, "jane.smith", PASSWORD).await;
    assert_eq!(subject(&token), user_id);
    let token = login(&app, "JANE@example.com", PASSWORD).await;
    assert_eq!(subject(&token), user_id);

    // By email alone (seeds 001 and 003), with `role` and `is_active`.
    let solo = create(
        &admin,
        json!({"email": "solo@example.com", "role": "user", "is_active": false}),
    )
    .await;
    assert_eq!(solo["username"], "solo@example.com");
    assert_eq!(solo["status"], "inactive");
    assert_eq!(solo["is_active"], false);
    let row = stored(&app, &id(&solo)).await.unwrap();
    assert_eq!(row.status, "inactive");
    assert_eq!(row.password_hash, None);

    // A welcome mail is queued only when asked for.
    let mails = || async {
        app.state
            .store
            .run(|conn| latchkey::store::outbox::list(conn, "email", None, 100))
            .await
            .unwrap()
            .len()
    };
    let before = mails().await;
    create(
        &admin,
        json!({"email": "welcome@example.com", "first_name": "W", "send_welcome_email": true}),
    )
    .await;
    assert_eq!(mails().await, before + 1);
    create(
        &admin,
        json!({"email": "quiet@example.com", "first_name": "Q", "send_welcome_email": false}),
    )
    .await;
    assert_eq!(mails().await, before + 1);
}

#[tokio::test]
async fn a_user_is_created_from_an_email_alone_singly_and_in_bulk() {
    // Seeds 001 and 003 create users by email alone: every other member is optional.
    let app = spawn_app().await;
    let admin = Api::new(&app, &admin_token(&app).await);

    let (status, user) = admin
        .post("/users", json!({"email": "min@example.com"}))
        .await;

    assert_eq!(status, 201, "{user}");
    assert_eq!(user["username"], "min@example.com");
    assert_eq!(user["roles"], json!(["user"]));
    assert_eq!(user["status"], "active");
    assert_eq!(user["first_name"], Value::Null);
    let row = stored(&app, &id(&user)).await.expect("stored");
    assert_eq!(row.password_hash, None);
    let (status, body) = admin
        .post(
            "/users/bulk",
            json!({"users": [{"email": "bulk.min@example.com"}, {"email": "bulk.pw@example.com",
                              "password": PASSWORD}]}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["summary"]["successful"], 2);
    login(&app, "bulk.pw@example.com", PASSWORD).await;
}

#[tokio::test]
async fn creating_a_user_refuses_bad_input_naming_the_field_and_stores_nothing() {
    let app = spawn_app().await;
    let admin = Api::new(&app, &admin_token(&app).await);
    create(
        &admin,
        json!({"email": "taken@example.com", "first_name": "Taken"}),
    )
    .await;
    let before = user_count(&app).await;

    // A taken address, in any case: 409.
    let (status, error) = admin
        .post("/users", json!({"email": "TAKEN@example.com"}))
        .await;
    assert_eq!(status, 409, "{error}");
    assert_eq!(error["error"], "conflict");
    assert!(
        error["request_id"]
            .as_str()
            .is_some_and(|r| r.starts_with("req_"))
    );

    // Invalid members: 422 naming them.
    let (status, error) = admin.post("/users", json!({"email": "not-an-email"})).await;
    assert_invalid(status, &error, "email");
    let (status, error) = admin
        .post("/users", json!({"first_name": "No Email"}))
        .await;
    assert_invalid(status, &error, "email");
    let (status, error) = admin
        .post(
            "/users",
            json!({"email": "new@example.com", "nickname": "nick"}),
        )
        .await;
    assert_eq!(status, 422, "{error}");
    assert!(error["details"].to_string().contains("nickname"), "{error}");
    let (status, error) = admin
        .post(
            "/users",
            json!({"email": "new@example.com", "role": "wizard"}),
        )
        .await;
    assert_eq!(status, 422, "{error}");
    assert!(
        detail_fields(&error).iter().any(|f| f.starts_with("role")),
        "{error}"
    );
    assert!(error["details"].to_string().contains("wizard"), "{error}");
    let (status, error) = admin
        .post(
            "/users",
            json!({"email": "new@example.com", "password": "password1"}),
        )
        .await;
    assert_invalid(status, &error, "password");
    let (status, error) = admin
        .post(
            "/users",
            json!({"email": "new@example.com", "password": "short"}),
        )
        .await;
    assert_invalid(status, &error, "password");
    let (status, error) = admin
        .post(
            "/users",
            json!({"email": "new@example.com", "status": "bogus"}),
        )
        .await;
    assert_invalid(status, &error, "status");
    let (status, error) = admin
        .post(
            "/users",
            json!({"email": "new@example.com", "metadata": [1, 2]}),
        )
        .await;
    assert_invalid(status, &error, "metadata");
    let (status, error) = admin
        .post(
            "/users",
            json!({"email": "new@example.com", "permissions": ["not a permission"]}),
        )
        .await;
    assert_invalid(status, &error, "permissions[0]");

    // Not JSON: 415; malformed JSON: 400.
    let response = app
        .client
        .post(app.url("/api/v1/users"))
        .bearer_auth(&admin.token)
        .header("content-type", "text/plain")
        .body(r#"{"email": "new@example.com"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 415);
    let request_id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let error: Value = response.json().await.unwrap();
    assert_eq!(error["error"], "unsupported_media_type");
    assert_eq!(error["request_id"], json!(request_id));
    let response = app
        .client
        .post(app.url("/api/v1/users"))
        .bearer_auth(&admin.token)
        .header("content-type", "application/json")
        .body(r#"{"email": "new@example.com""#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 400);
    let error: Value = response.json().await.unwrap();
    assert_eq!(error["error"], "invalid_json", "{error}");

    // Nothing was stored.
    assert_eq!(user_count(&app).await, before);
    assert_eq!(
        names(&admin, &[("search", "new@example.com")]).await,
        Vec::<String>::new()
    );
}

// ---------------------------------------------------------------------------------------------
// Reads
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn reading_a_user_honours_include_and_fields_and_an_unknown_id_is_404() {
    let app = spawn_app().await;
    let admin = Api::new(&app, &admin_token(&app).await);
    let user = create(
        &admin,
        json!({"email": "rita@example.com", "first_name": "Rita",
               "preferences": {"theme": "dark"}, "permissions": ["audit:read"]}),
    )
    .await;
    let user_id = id(&user);

    // The default view: role names, no permissions or preferences.
    for base in ["/users", "/admin/users"] {
        let (status, view) = admin.get(&format!("{base}/{user_id}")).await;
        assert_eq!(status, 200, "{view}");
        assert_eq!(view["id"], json!(user_id));
        assert_eq!(view["first_name"], "Rita");
        assert_eq!(view["roles"], json!(["user"]));
        assert!(view.get("preferences").is_none(), "{view}");
        assert!(view.get("permissions").is_none(), "{view}");
    }

    // include=roles gives the roles with their permissions.
    let (_, view) = admin.get(&format!("/users/{user_id}?include=roles")).await;
    assert_eq!(view["roles"][0]["name"], "user", "{view}");
    assert_eq!(
        view["roles"][0]["permissions"],
        json!(["profile:read", "profile:write"])
    );
    // include=permissions,preferences
    let (_, view) = admin
        .get(&format!("/users/{user_id}?include=permissions,preferences"))
        .await;
    assert_eq!(
        view["permissions"],
        json!(["audit:read", "profile:read", "profile:write"]),
        "{view}"
    );
    assert_eq!(view["direct_permissions"], json!(["audit:read"]));
    assert_eq!(view["preferences"], json!({"theme": "dark"}));

    // fields keeps exactly what is asked.
    let (status, view) = admin
        .get(&format!("/users/{user_id}?fields=id,email"))
        .await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(view, json!({"id": user_id, "email": "rita@example.com"}));
    let listed = list(&admin, &[("fields", "id,username"), ("search", "rita")]).await;
    assert_eq!(
        listed["users"],
        json!([{"id": user_id, "username": "rita@example.com"}])
    );

    // Unknown fields and includes: 422.
    let (status, error) = admin
        .get(&format!("/users/{user_id}?fields=id,password_hash"))
        .await;
    assert_invalid(status, &error, "fields");
    let (status, error) = admin
        .get(&format!("/users/{user_id}?include=sessions"))
        .await;
    assert_invalid(status, &error, "include");
    let (status, error) = admin.get("/users?fields=secret").await;
    assert_invalid(status, &error, "fields");
    let (status, error) = admin.get("/users?include=secrets").await;
    assert_invalid(status, &error, "include");

    // A well-formed id of nobody: 404 in the API's form.
    for base in ["/users", "/admin/users"] {
        let (status, error) = admin.get(&format!("{base}/{UNKNOWN_ID}")).await;
        assert_eq!(status, 404, "{error}");
        assert_eq!(error["error"], "not_found");
        assert_eq!(error["code"], 404);
    }
}

// ---------------------------------------------------------------------------------------------
// Updates
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn patch_changes_only_the_given_members_and_null_clears_a_name() {
    let app = spawn_app().await;
    let admin = Api::new(&app, &admin_token(&app).await);
    let user = create(
        &admin,
        json!({"email": "ann@example.com", "first_name": "Ann", "last_name": "Lee",
               "metadata": {"team": "a"}}),
    )
    .await;
    let user_id = id(&user);
    create(
        &admin,
        json!({"email": "other@example.com", "first_name": "Other"}),
    )
    .await;

    // PATCH
    let (status, updated) = admin
        .patch(
            &format!("/users/{user_id}"),
            json!({"first_name": null, "display_name": "Annie", "metadata": {"team": "b", "level": 2}}),
        )
        .await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(updated["first_name"], Value::Null);
    assert_eq!(updated["last_name"], "Lee");
    assert_eq!(updated["display_name"], "Annie");
    assert_eq!(updated["metadata"], json!({"team": "b", "level": 2}));
    let row = stored(&app, &user_id).await.unwrap();
    assert_eq!(row.first_name, None);
    assert_eq!(row.last_name.as_deref(), Some("Lee"));
    assert_eq!(row.display_name.as_deref(), Some("Annie"));
    assert_eq!(json_column(&row.metadata), json!({"team": "b", "level": 2}));

    // A new address is unproven until confirmed, unless the administrator says it is.
    let (status, updated) = admin
        .patch(
            &format!("/users/{user_id}"),
            json!({"email_verified": true}),
        )
        .await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(updated["email_verified"], true);
    let (status, updated) = admin
        .patch(
            &format!("/users/{user_id}"),
            json!({"email": "Ann.Lee@example.com"}),
        )
        .await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(updated["email"], "ann.lee@example.com");
    assert_eq!(updated["email_verified"], false);
    let row = stored(&app, &user_id).await.unwrap();
    assert_eq!(row.email, "ann.lee@example.com");
    assert!(!row.email_verified);
    let (status, updated) = admin
        .patch(
            &format!("/users/{user_id}"),
            json!({"email": "ann@example.com", "email_verified": true}),
        )
        .await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(updated["email_verified"], true);

    // PUT is partial too.
    let (status, updated) = admin
        .put(
            &format!("/admin/users/{user_id}"),
            json!({"last_name": "Li"}),
        )
        .await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(updated["last_name"], "Li");
    assert_eq!(updated["display_name"], "Annie");
    assert_eq!(updated["first_name"], Value::Null);

    // The audit entries carry the old and new values of what changed, and only that.
    let entries = audit_of(&app, "user_updated", &user_id).await;
    assert_eq!(entries.len(), 5, "{entries:?}");
    let first = entries.last().unwrap();
    assert_eq!(
        json_column(&first.old_values),
        json!({"first_name": "Ann", "display_name": null, "metadata": {"team": "a"}})
    );
    assert_eq!(
        json_column(&first.new_values),
        json!({"first_name": null, "display_name": "Annie", "metadata": {"team": "b", "level": 2}})
    );

    // Refusals change nothing.
    let (status, error) = admin
        .patch(&format!("/users/{user_id}"), json!({"password": PASSWORD}))
        .await;
    assert_invalid(status, &error, "password");
    let (status, error) = admin
        .patch(
            &format!("/users/{user_id}"),
            json!({"email": "other@example.com"}),
        )
        .await;
    assert_eq!(status, 409, "{error}");
    let (status, error) = admin
        .patch(
            &format!("/users/{user_id}"),
            json!({"username": "OTHER@example.com"}),
        )
        .await;
    // Another account's address is no username for this one (it would stand in for it at the
    // login form), taken or not.
    assert_eq!(status, 422, "{error}");
    assert_eq!(error["details"][0]["field"], "username", "{error}");
    let (status, error) = admin
        .patch(&format!("/users/{user_id}"), json!({"roles": ["wizard"]}))
        .await;
    assert_eq!(status, 422, "{error}");
    let (status, error) = admin
        .patch(&format!("/users/{UNKNOWN_ID}"), json!({"first_name": "X"}))
        .await;
    assert_eq!(status, 404, "{error}");
    let row = stored(&app, &user_id).await.unwrap();
    assert_eq!(row.email, "ann@example.com");
    assert_eq!(row.last_name.as_deref(), Some("Li"));
    let (_, view) = admin.get(&format!("/users/{user_id}")).await;
    assert_eq!(view["roles"], json!(["user"]));
    assert_eq!(audit_of(&app, "user_updated", &user_id).await.len(), 5);
}

#[tokio::test]
async fn a_change_of_roles_is_audited_and_announced_only_to_subscribed_webhooks() {
    // Arrange
    let app = spawn_app().await;
    let admin = Api::new(&app, &admin_token(&app).await);
    create_role(&admin, "editor", &["articles:write"]).await;
    let user_id = id(&create(
        &admin,
        json!({"email": "ed@example.com", "first_name": "Edward"}),
    )
    .await);
    let webhook_rows = |topic: Option<String>| {
        let state = app.state.clone();
        async move {
            state
                .store
                .run(move |conn| {
                    latchkey::store::outbox::list(conn, "webhook", topic.as_deref(), 100)
                })
                .await
                .unwrap()
                .len()
        }
    };

    // Act: without any webhook
    let (status, updated) = admin
        .patch(
            &format!("/users/{user_id}"),
            json!({"roles": ["user", "editor"]}),
        )
        .await;

    // Assert
    assert_eq!(status, 200, "{updated}");
    assert_eq!(updated["roles"], json!(["editor", "user"]));
    let entries = audit_of(&app, "user_updated", &user_id).await;
    assert_eq!(entries.len(), 1);
    assert_eq!(
        json_column(&entries[0].old_values),
        json!({"roles": ["user"]})
    );
    assert_eq!(
        json_column(&entries[0].new_values),
        json!({"roles": ["editor", "user"]})
    );
    assert_eq!(
        webhook_rows(None).await,
        0,
        "nobody subscribed, nothing queued"
    );

    // With a webhook subscribed to user.role_changed only.
    let (status, hook) = admin
        .post(
            "/webhooks",
            json!({"url": "http://127.0.0.1:9/hook", "events": ["user.role_changed"]}),
        )
        .await;
    assert_eq!(status, 201, "{hook}");
    let hook_id = id(&hook);
    let (status, _) = admin
        .patch(&format!("/users/{user_id}"), json!({"first_name": "Ed"}))
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        webhook_rows(Some(hook_id.clone())).await,
        0,
        "a change of names is not a change of roles"
    );
    let (status, _) = admin
        .patch(&format!("/users/{user_id}"), json!({"roles": ["user"]}))
        .await;
    assert_eq!(status, 200);
    assert_eq!(webhook_rows(Some(hook_id.clone())).await, 1);
    let (status, deliveries) = admin.get(&format!("/webhooks/{hook_id}/deliveries")).await;
    assert_eq!(status, 200, "{deliveries}");
    assert_eq!(
        deliveries["deliveries"][0]["event"], "user.role_changed",
        "{deliveries}"
    );
    // The same roles again change nothing and announce nothing.
    let (status, _) = admin
        .patch(&format!("/users/{user_id}"), json!({"roles": ["user"]}))
        .await;
    assert_eq!(status, 200);
    assert_eq!(webhook_rows(Some(hook_id)).await, 1);
    assert_eq!(audit_of(&app, "user_updated", &user_id).await.len(), 3);
}

#[tokio::test]
async fn deactivating_a_user_ends_their_tokens_and_refuses_their_login_until_reactivated() {
    let app = spawn_app().await;
    let admin = Api::new(&app, &admin_token(&app).await);
    let (user_id, token) = user_with_roles(&app, "dana", &["user"]).await;
    assert_eq!(me_status(&app, &token).await, 200);

    let (status, updated) = admin
        .patch(&format!("/users/{user_id}"), json!({"status": "inactive"}))
        .await;

    assert_eq!(status, 200, "{updated}");
    assert_eq!(updated["status"], "inactive");
    assert_eq!(updated["is_active"], false);
    assert_eq!(stored(&app, &user_id).await.unwrap().status, "inactive");
    let response = Api::new(&app, &token)
        .raw(Method::GET, "/auth/me", None)
        .await;
    assert_eq!(response.status().as_u16(), 401);
    assert!(response.headers().contains_key("www-authenticate"));
    let (status, body) = try_login(&app, "dana", USER_PASSWORD).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"], "account_disabled");
    assert!(body.get("access_token").is_none());

    // Reactivated (seed 001's is_active): the password works again.
    let (status, updated) = admin
        .patch(&format!("/users/{user_id}"), json!({"is_active": true}))
        .await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(updated["status"], "active");
    let token = login(&app, "dana", USER_PASSWORD).await;
    assert_eq!(me_status(&app, &token).await, 200);
}

// ---------------------------------------------------------------------------------------------
// Search and the filter language
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn the_filter_language_selects_by_each_operator_role_and_status() {
    // Arrange: four people with known names, dates, roles and states (and the admin).
    let app = spawn_app().await;
    let admin = Api::new(&app, &admin_token(&app).await);
    create_role(&admin, "editor", &["articles:write"]).await;
    let alice = create(
        &admin,
        json!({"username": "alice", "email": "alice@example.com", "first_name": "Alice",
               "last_name": "Archer"}),
    )
    .await;
    let bob = create(
        &admin,
        json!({"username": "bob", "email": "bob@example.com", "first_name": "Bob",
               "last_name": "Baker", "email_verified": true}),
    )
    .await;
    let carol = create(
        &admin,
        json!({"username": "carol", "email": "carol@sample.org", "first_name": "Carol",
               "roles": ["editor", "user"]}),
    )
    .await;
    create(
        &admin,
        json!({"username": "dave", "email": "dave@sample.org", "display_name": "D",
               "status": "inactive"}),
    )
    .await;
    let eve = create(
        &admin,
        json!({"username": "eve", "email": "eve@example.com", "display_name": "Eve"}),
    )
    .await;
    set_created_at(&app, &id(&alice), "2021-03-01T00:00:00Z").await;
    set_created_at(&app, &id(&bob), "2022-03-01T00:00:00Z").await;
    set_created_at(&app, &id(&carol), "2023-03-01T00:00:00Z").await;
    let (status, locked) = admin
        .post(
            &format!("/users/{}/lock", id(&eve)),
            json!({"duration_minutes": 30}),
        )
        .await;
    assert_eq!(status, 200, "{locked}");
    let f = |filters: Value| vec![("filters", filters.to_string())];
    let check = |pairs: Vec<(&'static str, String)>, expected: &[&str]| {
        let admin = &admin;
        let expected = strings(expected);
        async move {
            let borrowed: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
            assert_eq!(names(admin, &borrowed).await, expected, "{pairs:?}");
        }
    };

    // eq (a plain value or an operator; addresses compare without case)
    check(f(json!({"email": "BOB@example.com"})), &["bob"]).await;
    check(f(json!({"email": {"eq": "bob@example.com"}})), &["bob"]).await;
    check(f(json!({"first_name": {"eq": "Carol"}})), &["carol"]).await;
    check(
        f(json!({"last_name": {"eq": null}})),
        &["admin", "carol", "dave", "eve"],
    )
    .await;
    check(f(json!({"email_verified": true})), &["admin", "bob"]).await;
    // ne
    check(f(json!({"status": {"ne": "active"}})), &["dave", "eve"]).await;
    check(
        f(json!({"first_name": {"ne": "Alice"}})),
        &["admin", "bob", "carol", "dave", "eve"],
    )
    .await;
    // gt, gte, lt, lte on times (RFC 3339 or a date)
    check(
        f(json!({"created_at": {"gt": "2021-03-01T00:00:00Z", "lt": "2023-03-01"}})),
        &["bob"],
    )
    .await;
    check(
        f(json!({"created_at": {"gte": "2021-03-01", "lte": "2023-03-01T00:00:00Z"}})),
        &["alice", "bob", "carol"],
    )
    .await;
    check(f(json!({"created_at": {"lt": "2022-03-01"}})), &["alice"]).await;
    check(
        f(json!({"created_at": {"lte": "2022-03-01T00:00:00Z"}})),
        &["alice", "bob"],
    )
    .await;
    check(
        f(json!({"created_at": {"gt": "2023-03-01T00:00:00Z"}})),
        &["admin", "dave", "eve"],
    )
    .await;
    // ... and on text
    check(f(json!({"first_name": {"gt": "B", "lt": "C"}})), &["bob"]).await;
    check(f(json!({"username": {"gte": "d"}})), &["dave", "eve"]).await;
    // in, contains
    check(
        f(json!({"username": {"in": ["alice", "carol", "nobody"]}})),
        &["alice", "carol"],
    )
    .await;
    check(
        f(json!({"email": {"contains": "SAMPLE"}})),
        &["carol", "dave"],
    )
    .await;
    check(
        f(json!({"last_name": {"contains": "er"}})),
        &["alice", "bob"],
    )
    .await;
    // several fields: all must hold
    check(
        f(json!({"email": {"contains": "example"}, "first_name": {"ne": null}})),
        &["alice", "bob"],
    )
    .await;
    // role
    check(vec![("role", "editor".into())], &["carol"]).await;
    check(
        f(json!({"role": {"in": ["admin", "editor"]}})),
        &["admin", "carol"],
    )
    .await;
    check(f(json!({"role": {"ne": "user"}})), &["admin"]).await;
    // status (the effective one: a timed lock is `locked`)
    check(vec![("status", "locked".into())], &["eve"]).await;
    check(f(json!({"status": "locked"})), &["eve"]).await;
    check(vec![("status", "inactive".into())], &["dave"]).await;
    check(
        vec![("status", "active".into())],
        &["admin", "alice", "bob", "carol"],
    )
    .await;
    // search (seed 001) and q (seed 003): each word somewhere in the names or the address
    check(vec![("search", "ARCHER".into())], &["alice"]).await;
    check(vec![("q", "sample carol".into())], &["carol"]).await;
    let (status, found) = admin
        .get(&format!("/users/search{}", query(&[("q", "baker")])))
        .await;
    assert_eq!(status, 200, "{found}");
    assert_eq!(usernames(&found), ["bob"]);
    // sort
    let sorted = list(&admin, &[("sort", "username:desc"), ("status", "active")]).await;
    assert_eq!(usernames(&sorted), ["carol", "bob", "alice", "admin"]);
    let sorted = list(
        &admin,
        &[
            ("sort", "first_name"),
            ("order", "asc"),
            ("search", "example"),
        ],
    )
    .await;
    assert_eq!(usernames(&sorted), ["eve", "alice", "bob"]);
}

#[tokio::test]
async fn the_filter_language_refuses_unknown_fields_operators_and_values_with_422() {
    let app = spawn_app().await;
    let admin = Api::new(&app, &admin_token(&app).await);
    for (filters, field) in [
        (
            json!({"password_hash": {"eq": "x"}}),
            "filters.password_hash",
        ),
        (json!({"password_hash": "x"}), "filters.password_hash"),
        (json!({"email": {"like": "%"}}), "filters.email.like"),
        (
            json!({"email": {"eq": "a", "regex": ".*"}}),
            "filters.email.regex",
        ),
        (
            json!({"created_at": {"gt": "yesterday"}}),
            "filters.created_at.gt",
        ),
        (json!({"email_verified": "yes"}), "filters.email_verified"),
        (json!({"email": {"eq": 42}}), "filters.email.eq"),
        (
            json!({"email": {"in": "a@example.com"}}),
            "filters.email.in",
        ),
        (json!({"role": {"gt": "a"}}), "filters.role.gt"),
        (
            json!({"email_verified": {"contains": "t"}}),
            "filters.email_verified.contains",
        ),
        (json!({"email": {}}), "filters.email"),
        (json!(["email"]), "filters"),
    ] {
        let (status, error) = admin
            .get(&format!(
                "/users{}",
                query(&[("filters", &filters.to_string())])
            ))
            .await;
        assert_invalid(status, &error, field);
    }
    let (status, error) = admin
        .get(&format!("/users{}", query(&[("filters", "{not json")])))
        .await;
    assert_invalid(status, &error, "filters");
    let (status, error) = admin.get("/users?sort=password_hash:asc").await;
    assert_invalid(status, &error, "sort");
    let (status, error) = admin.get("/users?sort=email&order=sideways").await;
    assert_invalid(status, &error, "order");
}

#[tokio::test]
async fn search_and_filters_cannot_inject_sql_and_wildcards_are_literal() {
    let app = spawn_app().await;
    let admin = Api::new(&app, &admin_token(&app).await);
    create(
        &admin,
        json!({"username": "under_score", "email": "u1@example.com", "first_name": "Half 50%off"}),
    )
    .await;
    create(
        &admin,
        json!({"username": "underxscore", "email": "u2@example.com", "first_name": "Half 50xoff"}),
    )
    .await;
    let before = user_count(&app).await;

    // Injection attempts match nothing (they are values, not SQL).
    for pairs in [
        vec![(
            "filters",
            json!({"email": {"eq": "x' OR '1'='1"}}).to_string(),
        )],
        vec![("filters", json!({"email": "x' OR '1'='1' --"}).to_string())],
        vec![(
            "filters",
            json!({"username": {"contains": "' OR 1=1 --"}}).to_string(),
        )],
        vec![(
            "filters",
            json!({"username": {"in": ["a') OR ('1'='1"]}}).to_string(),
        )],
        vec![("search", "%' OR 1=1 --".to_owned())],
        vec![("search", "'; DROP TABLE users; --".to_owned())],
        vec![("role", "user' OR '1'='1".to_owned())],
    ] {
        let borrowed: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let body = list(&admin, &borrowed).await;
        assert_eq!(body["users"], json!([]), "{pairs:?}: {body}");
        assert_eq!(body["pagination"]["total"], 0, "{pairs:?}");
    }
    // The users table is intact.
    assert_eq!(user_count(&app).await, before);
    assert_eq!(list(&admin, &[]).await["pagination"]["total"], before);

    // `%` and `_` are literal characters, in search and in contains.
    assert_eq!(
        names(&admin, &[("search", "under_s")]).await,
        ["under_score"]
    );
    assert_eq!(names(&admin, &[("search", "50%o")]).await, ["under_score"]);
    assert_eq!(names(&admin, &[("search", "%")]).await, ["under_score"]);
    assert_eq!(names(&admin, &[("search", "_")]).await, ["under_score"]);
    assert_eq!(
        names(
            &admin,
            &[(
                "filters",
                &json!({"username": {"contains": "r_s"}}).to_string()
            )]
        )
        .await,
        ["under_score"]
    );
    assert_eq!(
        names(&admin, &[("search", "under")]).await,
        ["under_score", "underxscore"]
    );
}

// ---------------------------------------------------------------------------------------------
// Paging
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn offset_paging_takes_page_and_limit_size_and_offset_and_refuses_oversized_pages() {
    let app = spawn_app().await;
    let admin = Api::new(&app, &admin_token(&app).await);
    for n in 1..=5 {
        create(
            &admin,
            json!({"username": format!("pg{n}"), "email": format!("pg{n}@example.com"),
                   "display_name": "Paged"}),
        )
        .await;
    }
    let by_name = [("search", "pg"), ("sort", "username:asc")];

    let page2 = list(
        &admin,
        &[by_name[0], by_name[1], ("page", "2"), ("limit", "2")],
    )
    .await;
    assert_eq!(usernames(&page2), ["pg3", "pg4"]);
    assert_eq!(page2["pagination"]["page"], 2);
    assert_eq!(page2["pagination"]["limit"], 2);
    assert_eq!(page2["pagination"]["total"], 5);
    assert_eq!(page2["pagination"]["pages"], 3);
    let last = list(
        &admin,
        &[by_name[0], by_name[1], ("page", "3"), ("size", "2")],
    )
    .await;
    assert_eq!(usernames(&last), ["pg5"]);
    assert_eq!(last["pagination"]["limit"], 2);
    let offset = list(
        &admin,
        &[by_name[0], by_name[1], ("offset", "3"), ("limit", "2")],
    )
    .await;
    assert_eq!(usernames(&offset), ["pg4", "pg5"]);
    assert_eq!(offset["pagination"]["offset"], 3);
    let beyond = list(&admin, &[by_name[0], ("page", "9"), ("limit", "2")]).await;
    assert_eq!(beyond["users"], json!([]));
    assert_eq!(beyond["pagination"]["total"], 5);
    // The default order is newest first.
    let newest = list(&admin, &[("search", "pg"), ("limit", "2")]).await;
    assert_eq!(usernames(&newest), ["pg5", "pg4"]);
    let full = list(&admin, &[("limit", "100")]).await;
    assert_eq!(full["users"].as_array().unwrap().len(), 6);

    for bad in [
        "limit=101",
        "size=101",
        "limit=0",
        "page=0",
        "offset=-1",
        "page=2&offset=2",
        "limit=2&size=3",
        "limit=ten",
    ] {
        let (status, error) = admin.get(&format!("/users?{bad}")).await;
        assert_eq!(status, 400, "{bad}: {error}");
        assert_eq!(error["code"], 400, "{bad}");
    }
}

/// Follows `next_cursor` through a list, calling `between` after each page; returns the
/// usernames in order and each page's pagination.
async fn walk_cursor(
    api: &Api<'_>,
    pairs: &[(&str, &str)],
    mut between: impl AsyncFnMut(usize),
) -> (Vec<String>, Vec<Value>) {
    let mut cursor = String::new();
    let (mut seen, mut pages) = (Vec::new(), Vec::new());
    for page in 0.. {
        assert!(page < 20, "the cursor never ends");
        let mut with_cursor = pairs.to_vec();
        with_cursor.push(("cursor", &cursor));
        let body = list(api, &with_cursor).await;
        seen.extend(usernames(&body));
        let pagination = body["pagination"].clone();
        pages.push(pagination.clone());
        if pagination["has_more"] != true {
            assert_eq!(pagination["next_cursor"], Value::Null, "{pagination}");
            break;
        }
        cursor = pagination["next_cursor"]
            .as_str()
            .unwrap_or_else(|| panic!("has_more without next_cursor: {pagination}"))
            .to_owned();
        between(page).await;
    }
    (seen, pages)
}

#[tokio::test]
async fn cursor_paging_yields_every_user_once_in_order_while_users_are_inserted() {
    // Arrange: seven users, created one after another.
    let app = spawn_app().await;
    let admin = Api::new(&app, &admin_token(&app).await);
    let originals: Vec<String> = (1..=7).map(|n| format!("cur{n:02}")).collect();
    for name in &originals {
        create(
            &admin,
            json!({"username": name, "email": format!("{name}@example.com"),
                   "display_name": "Cursor"}),
        )
        .await;
    }
    let mut inserted = 0;
    let mut insert = async |_page: usize| {
        inserted += 1;
        let name = format!("cur{:02}", 7 + inserted);
        create(
            &admin,
            json!({"username": name, "email": format!("{name}@example.com"),
                   "display_name": "Cursor"}),
        )
        .await;
    };

    // Act: newest first (the default), inserting a user after each page.
    let (seen, pages) =
        walk_cursor(&admin, &[("search", "cur"), ("limit", "3")], &mut insert).await;

    // Assert: exactly the originals, newest first; those inserted later come before the
    // first page and are not shown.
    let mut newest_first = originals.clone();
    newest_first.reverse();
    assert_eq!(seen, newest_first);
    assert_eq!(pages.len(), 3);
    assert_eq!(pages[0]["has_more"], true);
    assert_eq!(pages[0]["limit"], 3);
    assert_eq!(pages[1]["has_more"], true);
    assert_eq!(pages[2]["has_more"], false);

    // Act: oldest first, inserting again after each page.
    let (seen, pages) = walk_cursor(
        &admin,
        &[
            ("search", "cur"),
            ("limit", "3"),
            ("sort", "created_at:asc"),
        ],
        &mut insert,
    )
    .await;

    // Assert: every original exactly once, in creation order, and then the users inserted
    // meanwhile (they sort after every original), each once.
    assert_eq!(seen[..7], originals[..]);
    let mut all_sorted = seen.clone();
    all_sorted.sort();
    all_sorted.dedup();
    assert_eq!(all_sorted.len(), seen.len(), "no user twice: {seen:?}");
    assert_eq!(seen, all_sorted, "creation order: {seen:?}");
    assert_eq!(pages.last().unwrap()["has_more"], false);

    // A text key pages the same way.
    let (seen, _) = walk_cursor(
        &admin,
        &[("search", "cur"), ("limit", "4"), ("sort", "username:desc")],
        async |_| {},
    )
    .await;
    let mut expected = seen.clone();
    expected.sort_by(|a, b| b.cmp(a));
    assert_eq!(seen, expected);
    assert!(seen.len() >= 7);

    // Bad cursors are refused.
    for bad in [
        "cursor=garbage!!".to_owned(),
        "cursor=eyJub3QiOiJhIGN1cnNvciJ9".to_owned(),
        format!("cursor={}&page=2", {
            let body = list(&admin, &[("limit", "1"), ("cursor", "")]).await;
            body["pagination"]["next_cursor"]
                .as_str()
                .unwrap()
                .to_owned()
        }),
        "cursor=&sort=created_at,email".to_owned(),
    ] {
        let (status, error) = admin.get(&format!("/users?{bad}")).await;
        assert_eq!(status, 400, "{bad}: {error}");
    }
    // A cursor of one order is not accepted for another.
    let body = list(&admin, &[("limit", "1"), ("cursor", "")]).await;
    let cursor = body["pagination"]["next_cursor"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, error) = admin
        .get(&format!(
            "/users{}",
            query(&[("cursor", &cursor), ("sort", "email:asc")])
        ))
        .await;
    assert_eq!(status, 400, "{error}");
}

// ---------------------------------------------------------------------------------------------
// Deletion
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn soft_deletion_keeps_a_restorable_tombstone_out_of_the_lists() {
    // Arrange
    let app = spawn_app().await;
    let admin = Api::new(&app, &admin_token(&app).await);
    let (user_id, token) = user_with_roles(&app, "sam", &["user"]).await;

    // Act
    let (status, deleted) = admin
        .delete(&format!("/users/{user_id}?soft_delete=true"))
        .await;

    // Assert
    assert_eq!(status, 200, "{deleted}");
    assert_eq!(deleted["soft_delete"], true);
    assert!(unix(deleted["deleted_at"].as_str().unwrap()) >= now() - 60);
    let (status, view) = admin.get(&format!("/users/{user_id}")).await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(view["status"], "deleted");
    assert_eq!(view["is_active"], false);
    assert!(view["deleted_at"].is_string(), "{view}");
    assert!(stored(&app, &user_id).await.is_some(), "the row is kept");
    assert_eq!(
        names(&admin, &[("search", "sam")]).await,
        Vec::<String>::new()
    );
    assert_eq!(
        names(&admin, &[("search", "sam"), ("include_deleted", "true")]).await,
        ["sam"]
    );
    assert_eq!(me_status(&app, &token).await, 401, "their token is revoked");
    let entries = audit_of(&app, "user_deleted", &user_id).await;
    assert_eq!(entries.len(), 1);
    assert_eq!(
        json_column(&entries[0].additional_info)["soft_delete"],
        true
    );
    let (status, _) = admin
        .delete(&format!("/users/{user_id}?soft_delete=true"))
        .await;
    assert_eq!(status, 409, "already deleted");
    let (status, _) = admin
        .post(&format!("/users/{user_id}/lock"), json!({}))
        .await;
    assert_eq!(status, 404, "a tombstone cannot be locked");
    let (status, _) = admin
        .delete(&format!("/users/{UNKNOWN_ID}?soft_delete=true"))
        .await;
    assert_eq!(status, 404);
    let (status, error) = admin.delete(&format!("/users/{user_id}?soft=1")).await;
    assert_eq!(status, 400, "an unknown parameter: {error}");

    // Restored by setting the status back to active.
    let (status, restored) = admin
        .patch(&format!("/users/{user_id}"), json!({"status": "active"}))
        .await;
    assert_eq!(status, 200, "{restored}");
    assert_eq!(restored["status"], "active");
    assert_eq!(restored["deleted_at"], Value::Null);
    assert_eq!(names(&admin, &[("search", "sam")]).await, ["sam"]);
    let token = login(&app, "sam", USER_PASSWORD).await;
    assert_eq!(me_status(&app, &token).await, 200);
}

#[tokio::test]
async fn a_soft_deleted_user_cannot_sign_in_until_restored() {
    let app = spawn_app().await;
    let admin = Api::new(&app, &admin_token(&app).await);
    let (user_id, _) = user_with_roles(&app, "sid", &["user"]).await;
    let (status, _) = admin
        .delete(&format!("/users/{user_id}?soft_delete=true"))
        .await;
    assert_eq!(status, 200);

    let (status, body) = try_login(&app, "sid", USER_PASSWORD).await;

    assert!(
        matches!(status, 401 | 403),
        "a deleted user cannot sign in: {status} {body}"
    );
    assert!(body.get("access_token").is_none(), "{body}");
    let (status, _) = admin
        .patch(&format!("/users/{user_id}"), json!({"status": "active"}))
        .await;
    assert_eq!(status, 200);
    login(&app, "sid", USER_PASSWORD).await;
}

#[tokio::test]
async fn the_status_filter_sees_soft_deleted_users_as_deleted() {
    let app = spawn_app().await;
    let admin = Api::new(&app, &admin_token(&app).await);
    create(
        &admin,
        json!({"username": "kept", "email": "kept@example.com", "first_name": "K"}),
    )
    .await;
    let gone = create(
        &admin,
        json!({"username": "gone", "email": "gone@example.com", "first_name": "G"}),
    )
    .await;
    let (status, _) = admin
        .delete(&format!("/users/{}?soft_delete=true", id(&gone)))
        .await;
    assert_eq!(status, 200);

    let deleted = json!({"status": "deleted"}).to_string();
    let not_deleted = json!({"status": {"ne": "deleted"}}).to_string();
    let either = json!({"status": {"in": ["deleted", "active"]}}).to_string();
    assert_eq!(names(&admin, &[("status", "deleted")]).await, ["gone"]);
    assert_eq!(names(&admin, &[("filters", &deleted)]).await, ["gone"]);
    assert_eq!(
        names(&admin, &[("filters", &not_deleted)]).await,
        ["admin", "kept"]
    );
    assert_eq!(
        names(&admin, &[("filters", &either)]).await,
        ["admin", "gone", "kept"]
    );
    assert_eq!(
        names(&admin, &[("status", "active"), ("include_deleted", "true")]).await,
        ["admin", "kept"],
        "a tombstone is not active"
    );
}

#[tokio::test]
async fn hard_deletion_removes_the_user_their_sessions_and_grants_and_keeps_anonymous_audit_entries()
 {
    // Arrange: a user with two sessions, whose own actions are in the audit log.
    let app = spawn_app().await;
    let admin = Api::new(&app, &admin_token(&app).await);
    let (user_id, token) = user_with_roles(&app, "hugo", &["user"]).await;
    login(&app, "hugo", USER_PASSWORD).await;
    let (sessions_before, grants_before) = sessions_and_grants(&app, &user_id).await;
    assert!(
        sessions_before >= 2 && grants_before >= 2,
        "{sessions_before} {grants_before}"
    );
    let by_hugo = AuditFilter {
        actor_id: Some(user_id.clone()),
        ..Default::default()
    };
    let before = audit_entries(&app, by_hugo.clone()).await;
    assert!(!before.is_empty());
    assert!(
        before
            .iter()
            .all(|e| e.actor_email.as_deref() == Some("hugo@example.com")),
        "{before:?}"
    );

    // Act
    let (status, deleted) = admin.delete(&format!("/admin/users/{user_id}")).await;

    // Assert
    assert_eq!(status, 200, "{deleted}");
    assert_eq!(deleted["soft_delete"], false);
    let (status, error) = admin.get(&format!("/users/{user_id}")).await;
    assert_eq!(status, 404, "{error}");
    assert!(stored(&app, &user_id).await.is_none());
    assert_eq!(sessions_and_grants(&app, &user_id).await, (0, 0));
    assert_eq!(me_status(&app, &token).await, 401);
    let after = audit_entries(&app, by_hugo).await;
    assert_eq!(after.len(), before.len(), "their entries stay");
    assert!(
        after
            .iter()
            .all(|e| e.actor_id.as_deref() == Some(user_id.as_str()) && e.actor_email.is_none()),
        "{after:?}"
    );
    let entries = audit_of(&app, "user_deleted", &user_id).await;
    assert_eq!(entries.len(), 1);
    assert_eq!(
        entries[0].actor_id.as_deref(),
        Some(subject(&admin.token).as_str())
    );
    let (status, _) = try_login(&app, "hugo", USER_PASSWORD).await;
    assert_eq!(status, 401);
    let (status, _) = admin.delete(&format!("/users/{user_id}")).await;
    assert_eq!(status, 404);
    // The address is free again.
    create(
        &admin,
        json!({"email": "hugo@example.com", "first_name": "Hugo"}),
    )
    .await;
}

#[tokio::test]
async fn after_hard_deletion_the_audit_log_no_longer_holds_the_address() {
    // `admin::users::delete`: "hard: ... the audit log forgets their address".
    let app = spawn_app().await;
    let admin = Api::new(&app, &admin_token(&app).await);
    let user = create(
        &admin,
        json!({"email": "forget.me@example.com", "first_name": "F", "password": PASSWORD}),
    )
    .await;
    let user_id = id(&user);
    login(&app, "forget.me@example.com", PASSWORD).await;
    admin
        .patch(&format!("/users/{user_id}"), json!({"first_name": "Fiona"}))
        .await;

    let (status, _) = admin.delete(&format!("/users/{user_id}")).await;

    assert_eq!(status, 200);
    let everything = audit_entries(&app, AuditFilter::default()).await;
    let mentioning: Vec<&AuditRow> = everything
        .iter()
        .filter(|e| format!("{e:?}").contains("forget.me@example.com"))
        .collect();
    assert!(
        mentioning.is_empty(),
        "entries still holding the address: {:?}",
        mentioning
            .iter()
            .map(|e| (&e.action, &e.resource_id))
            .collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn the_last_holder_of_star_cannot_delete_lock_deactivate_or_demote_themselves() {
    // Arrange
    let app = spawn_app().await;
    let admin = Api::new(&app, &admin_token(&app).await);
    let admin_id = subject(&admin.token);

    // Act and assert: every way of removing the last `*` holder is a 409.
    for (method, path, body) in [
        (Method::DELETE, format!("/users/{admin_id}"), None),
        (
            Method::DELETE,
            format!("/admin/users/{admin_id}?soft_delete=true"),
            None,
        ),
        (
            Method::POST,
            format!("/users/{admin_id}/lock"),
            Some(json!({"duration_minutes": 10})),
        ),
        (Method::POST, format!("/users/{admin_id}/lock"), None),
        (
            Method::PATCH,
            format!("/users/{admin_id}"),
            Some(json!({"status": "inactive"})),
        ),
        (
            Method::PATCH,
            format!("/users/{admin_id}"),
            Some(json!({"status": "locked"})),
        ),
        (
            Method::PUT,
            format!("/users/{admin_id}"),
            Some(json!({"is_active": false})),
        ),
        (
            Method::PATCH,
            format!("/users/{admin_id}"),
            Some(json!({"roles": ["user"]})),
        ),
        (
            Method::PATCH,
            format!("/users/{admin_id}"),
            Some(json!({"roles": []})),
        ),
        (
            Method::PUT,
            "/admin/roles/admin".to_owned(),
            Some(json!({"permissions": ["users:read"]})),
        ),
    ] {
        let (status, error) = admin.call(method.clone(), &path, body).await;
        assert_eq!(status, 409, "{method} {path}: {error}");
        assert_eq!(error["error"], "conflict");
    }
    for action in ["delete", "deactivate", "lock", "remove_role"] {
        let (status, outcome) = admin
            .post(
                "/users/bulk-actions",
                json!({"user_ids": [admin_id], "action": action, "role": "admin"}),
            )
            .await;
        assert_eq!(status, 200, "{outcome}");
        assert_eq!(outcome["affected_users"], 0, "{action}: {outcome}");
        assert_eq!(outcome["failed_users"][0]["error"], "conflict", "{action}");
    }
    let (status, outcome) = admin
        .call(
            Method::DELETE,
            "/users/bulk",
            Some(json!({"ids": [admin_id]})),
        )
        .await;
    assert_eq!(status, 200, "{outcome}");
    assert_eq!(outcome["deleted"], json!([]));
    assert_eq!(outcome["failed"], json!([admin_id]));

    // Nothing changed: same row, same roles, no lock, and the token still works.
    let row = stored(&app, &admin_id).await.expect("still there");
    assert_eq!(row.status, "active");
    let (status, view) = admin.get(&format!("/users/{admin_id}")).await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(view["status"], "active");
    assert_eq!(view["roles"], json!(["admin"]));
    assert_eq!(view["deleted_at"], Value::Null);
    assert_eq!(security(&app, &admin_id).await.locked_until, None);
    let (_, role) = admin.get("/admin/roles/admin").await;
    assert_eq!(role["permissions"], json!(["*"]));
    assert_eq!(me_status(&app, &admin.token).await, 200);
    assert!(audit_of(&app, "user_deleted", &admin_id).await.is_empty());
    assert!(audit_of(&app, "user_locked", &admin_id).await.is_empty());
    assert!(audit_of(&app, "user_updated", &admin_id).await.is_empty());

    // With a second holder of `*`, each of these works.
    let second = create(
        &admin,
        json!({"username": "root2", "email": "root2@example.com", "password": PASSWORD,
               "first_name": "Root", "roles": ["admin"]}),
    )
    .await;
    let second_id = id(&second);
    let root2 = Api::new(&app, &login(&app, "root2", PASSWORD).await);
    let (status, demoted) = root2
        .patch(&format!("/users/{admin_id}"), json!({"roles": ["user"]}))
        .await;
    assert_eq!(status, 200, "{demoted}");
    assert_eq!(demoted["roles"], json!(["user"]));
    // ... and now root2 is the last one.
    let (status, _) = root2
        .patch(&format!("/users/{second_id}"), json!({"roles": ["user"]}))
        .await;
    assert_eq!(status, 409);
    let (status, _) = root2
        .post(&format!("/users/{second_id}/lock"), json!({}))
        .await;
    assert_eq!(status, 409);
    let (status, deleted) = root2.delete(&format!("/users/{admin_id}")).await;
    assert_eq!(status, 200, "{deleted}");
    assert!(stored(&app, &admin_id).await.is_none());
    let (status, _) = root2.delete(&format!("/users/{second_id}")).await;
    assert_eq!(status, 409);
}

#[tokio::test]
async fn a_demoted_admin_cannot_use_an_earlier_token_to_promote_themselves_back() {
    // Nobody grants what they do not hold: once the role is gone, a token issued before
    // does not carry its permissions into the admin API (it is refused, or acts as the
    // user's current permissions allow).
    let app = spawn_app().await;
    let admin = Api::new(&app, &admin_token(&app).await);
    let second_id = id(&create(
        &admin,
        json!({"username": "root2", "email": "root2@example.com", "password": PASSWORD,
               "first_name": "Root", "roles": ["admin"]}),
    )
    .await);
    let earlier = Api::new(&app, &login(&app, "root2", PASSWORD).await);
    let (status, _) = admin
        .patch(&format!("/users/{second_id}"), json!({"roles": ["user"]}))
        .await;
    assert_eq!(status, 200);

    let (status, body) = earlier
        .patch(&format!("/users/{second_id}"), json!({"roles": ["admin"]}))
        .await;

    assert!(matches!(status, 401 | 403), "{status} {body}");
    let (_, view) = admin.get(&format!("/users/{second_id}")).await;
    assert_eq!(view["roles"], json!(["user"]));
}

#[tokio::test]
async fn two_admins_demoting_each_other_at_once_cannot_both_succeed() {
    // `lock_privileges`: two administrators demoting the last two holders of `*` at once
    // cannot both succeed.
    let app = spawn_app().await;
    let first = Api::new(&app, &admin_token(&app).await);
    let first_id = subject(&first.token);
    let second_id = id(&create(
        &first,
        json!({"username": "root2", "email": "root2@example.com", "password": PASSWORD,
               "first_name": "Root", "roles": ["admin"]}),
    )
    .await);
    let second = Api::new(&app, &login(&app, "root2", PASSWORD).await);

    let (second_path, first_path) = (format!("/users/{second_id}"), format!("/users/{first_id}"));
    let (a, b) = tokio::join!(
        first.patch(&second_path, json!({"roles": ["user"]})),
        second.patch(&first_path, json!({"roles": ["user"]})),
    );

    // The loser is refused either by the last-superuser rule (409, when both were authorized
    // before either committed) or because it is no admin any more (403, when the winner
    // committed before the loser's permissions were read).
    let mut statuses = [a.0, b.0];
    statuses.sort();
    assert!(
        statuses == [200, 409] || statuses == [200, 403],
        "{a:?} {b:?}"
    );
    // The one whose demotion went through is no admin any more, even with their old token.
    let (winner, loser) = if a.0 == 200 {
        (&first, &second)
    } else {
        (&second, &first)
    };
    assert_eq!(loser.get("/users").await.0, 403);
    let holders = list(winner, &[("role", "admin")]).await;
    assert_eq!(holders["pagination"]["total"], 1, "{holders}");
}

// ---------------------------------------------------------------------------------------------
// Locks
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_timed_lock_revokes_tokens_and_refuses_login_with_423_until_unlocked() {
    // Arrange
    let app = spawn_app().await;
    let admin = Api::new(&app, &admin_token(&app).await);
    let (user_id, token) = user_with_roles(&app, "lou", &["user"]).await;

    // Act
    let (status, locked) = admin
        .post(
            &format!("/users/{user_id}/lock"),
            json!({"reason": "suspicious activity", "duration_minutes": 30}),
        )
        .await;

    // Assert
    assert_eq!(status, 200, "{locked}");
    let until = unix(locked["locked_until"].as_str().unwrap());
    assert!((until - (now() + 1800)).abs() <= 60, "{locked}");
    let stored_until = security(&app, &user_id).await.locked_until.expect("stored");
    assert!((stored_until - (now() + 1800)).abs() <= 60);
    let (_, view) = admin.get(&format!("/users/{user_id}")).await;
    assert_eq!(view["status"], "locked", "{view}");
    assert_eq!(view["is_active"], false);
    assert_eq!(view["lock_reason"], "suspicious activity");
    assert_eq!(unix(view["locked_until"].as_str().unwrap()), stored_until);
    assert_eq!(names(&admin, &[("status", "locked")]).await, ["lou"]);
    assert_eq!(me_status(&app, &token).await, 401, "their token is revoked");
    let (status, body) = try_login(&app, "lou", USER_PASSWORD).await;
    assert_eq!(status, 423, "{body}");
    assert_eq!(body["error"], "account_locked");
    let retry = body["retry_after"].as_i64().unwrap();
    assert!((1700..=1800).contains(&retry), "{body}");
    let entries = audit_of(&app, "user_locked", &user_id).await;
    assert_eq!(entries.len(), 1);
    assert_eq!(
        json_column(&entries[0].additional_info)["reason"],
        "suspicious activity"
    );

    // Unlock
    let (status, body) = admin
        .post(&format!("/admin/users/{user_id}/unlock"), json!({}))
        .await;
    assert_eq!(status, 200, "{body}");
    let (_, view) = admin.get(&format!("/users/{user_id}")).await;
    assert_eq!(view["status"], "active");
    assert_eq!(view["locked_until"], Value::Null);
    assert_eq!(view["lock_reason"], Value::Null);
    assert_eq!(security(&app, &user_id).await.locked_until, None);
    let token = login(&app, "lou", USER_PASSWORD).await;
    assert_eq!(me_status(&app, &token).await, 200);
    assert_eq!(audit_of(&app, "user_unlocked", &user_id).await.len(), 1);
}

#[tokio::test]
async fn a_lock_without_duration_lasts_until_unlocked_and_bad_locks_are_refused() {
    let app = spawn_app().await;
    let admin = Api::new(&app, &admin_token(&app).await);
    let (user_id, _) = user_with_roles(&app, "ivy", &["user"]).await;

    let response = admin
        .raw(Method::POST, &format!("/users/{user_id}/lock"), None)
        .await;
    assert_eq!(response.status().as_u16(), 200);
    let locked: Value = response.json().await.unwrap();
    assert_eq!(locked["locked_until"], Value::Null, "{locked}");
    assert_eq!(stored(&app, &user_id).await.unwrap().status, "locked");
    let (_, view) = admin.get(&format!("/users/{user_id}")).await;
    assert_eq!(view["status"], "locked");
    assert_eq!(view["lock_reason"], "locked by an administrator");
    let (status, body) = try_login(&app, "ivy", USER_PASSWORD).await;
    assert_eq!(status, 423, "{body}");

    let (status, _) = admin
        .post(&format!("/users/{user_id}/unlock"), json!({}))
        .await;
    assert_eq!(status, 200);
    assert_eq!(stored(&app, &user_id).await.unwrap().status, "active");
    login(&app, "ivy", USER_PASSWORD).await;

    for (body, field) in [
        (json!({"duration_minutes": 0}), "duration_minutes"),
        (json!({"duration_minutes": 525_601}), "duration_minutes"),
        (json!({"reason": "x".repeat(501)}), "reason"),
    ] {
        let (status, error) = admin.post(&format!("/users/{user_id}/lock"), body).await;
        assert_invalid(status, &error, field);
    }
    let (status, error) = admin
        .post(&format!("/users/{user_id}/lock"), json!({"minutes": 5}))
        .await;
    assert_eq!(status, 422, "{error}");
    assert!(error["details"].to_string().contains("minutes"));
    let (status, _) = admin
        .post(&format!("/users/{UNKNOWN_ID}/lock"), json!({}))
        .await;
    assert_eq!(status, 404);
    let (status, _) = admin
        .post(&format!("/users/{UNKNOWN_ID}/unlock"), json!({}))
        .await;
    assert_eq!(status, 404);
    assert_eq!(stored(&app, &user_id).await.unwrap().status, "active");
    assert_eq!(security(&app, &user_id).await.locked_until, None);
}

#[tokio::test]
async fn unlock_lifts_the_lockouts_from_failed_passwords_and_clears_the_count() {
    let app = spawn_app_with(Box::new(|settings| settings.accounts.lockout_threshold = 3)).await;
    let admin = Api::new(&app, &admin_token(&app).await);
    let (user_id, _) = user_with_roles(&app, "fay", &["user"]).await;
    for _ in 0..2 {
        assert_eq!(try_login(&app, "fay", "not the password").await.0, 401);
    }
    let (_, view) = admin.get(&format!("/users/{user_id}")).await;
    assert_eq!(view["login_attempts"], 2, "{view}");

    // Unlocking clears the count ...
    let (status, _) = admin
        .post(&format!("/users/{user_id}/unlock"), json!({}))
        .await;
    assert_eq!(status, 200);
    let (_, view) = admin.get(&format!("/users/{user_id}")).await;
    assert_eq!(view["login_attempts"], 0, "{view}");

    // ... and lifts a lockout.
    let statuses = [
        try_login(&app, "fay", "not the password").await.0,
        try_login(&app, "fay", "not the password").await.0,
        try_login(&app, "fay", "not the password").await.0,
    ];
    assert_eq!(
        statuses,
        [401, 401, 423],
        "two more failures would not lock"
    );
    assert_eq!(try_login(&app, "fay", USER_PASSWORD).await.0, 423);
    // The lockout holds the login at the address that failed, not the account: its status
    // stays active, so its owner signing in from elsewhere is not shut out by an attacker.
    let (_, view) = admin.get(&format!("/users/{user_id}")).await;
    assert_eq!(view["status"], "active", "{view}");
    assert!(names(&admin, &[("status", "locked")]).await.is_empty());
    assert_eq!(
        app.count("login_throttles").await,
        2,
        "at this address, and everywhere"
    );
    let (status, _) = admin
        .post(&format!("/users/{user_id}/unlock"), json!({}))
        .await;
    assert_eq!(status, 200);
    assert_eq!(app.count("login_throttles").await, 0, "unlock lifts it");
    let row = security(&app, &user_id).await;
    assert_eq!((row.failed_login_count, row.locked_until), (0, None));
    login(&app, "fay", USER_PASSWORD).await;
}

// ---------------------------------------------------------------------------------------------
// Preferences, activity, direct permissions
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn preferences_are_replaced_as_a_whole_and_must_be_an_object() {
    let app = spawn_app().await;
    let admin = Api::new(&app, &admin_token(&app).await);
    let user_id = id(&create(
        &admin,
        json!({"email": "pat@example.com", "first_name": "Pat"}),
    )
    .await);

    let (status, body) = admin
        .put(
            &format!("/users/{user_id}/preferences"),
            json!({"theme": "dark", "language": "fr"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["preferences"],
        json!({"theme": "dark", "language": "fr"})
    );
    let (status, body) = admin
        .put(
            &format!("/admin/users/{user_id}/preferences"),
            json!({"theme": "light"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["preferences"], json!({"theme": "light"}));
    let row = stored(&app, &user_id).await.unwrap();
    assert_eq!(json_column(&row.preferences), json!({"theme": "light"}));
    let (_, view) = admin
        .get(&format!("/users/{user_id}?include=preferences"))
        .await;
    assert_eq!(view["preferences"], json!({"theme": "light"}));
    assert_eq!(audit_of(&app, "user_updated", &user_id).await.len(), 2);

    for bad in [json!([1, 2]), json!("dark"), json!(null)] {
        let (status, error) = admin
            .put(&format!("/users/{user_id}/preferences"), bad.clone())
            .await;
        assert_eq!(status, 422, "{bad}: {error}");
    }
    let (status, _) = admin
        .put(&format!("/users/{UNKNOWN_ID}/preferences"), json!({"a": 1}))
        .await;
    assert_eq!(status, 404);
    let row = stored(&app, &user_id).await.unwrap();
    assert_eq!(json_column(&row.preferences), json!({"theme": "light"}));
}

#[tokio::test]
async fn activity_summarises_logins_and_lists_recent_events_newest_first() {
    // Arrange: two sign-ins, one wrong password, one change by an administrator.
    let app = spawn_app().await;
    let admin = Api::new(&app, &admin_token(&app).await);
    let (user_id, _) = user_with_roles(&app, "walt", &["user"]).await;
    login(&app, "walt", USER_PASSWORD).await;
    let (status, _) = try_login(&app, "walt", "not the password").await;
    assert_eq!(status, 401);
    admin
        .patch(
            &format!("/users/{user_id}"),
            json!({"first_name": "Walter"}),
        )
        .await;

    // Act
    let (status, activity) = admin.get(&format!("/users/{user_id}/activity")).await;

    // Assert
    assert_eq!(status, 200, "{activity}");
    assert_eq!(activity["user_id"], json!(user_id));
    let summary = &activity["activity_summary"];
    assert_eq!(summary["total_logins"], 2, "{summary}");
    assert!(unix(summary["last_login"].as_str().unwrap()) >= now() - 60);
    // Every sign-in was just now: the busiest day and hour are those of the last one.
    let last = chrono::DateTime::parse_from_rfc3339(summary["last_login"].as_str().unwrap())
        .unwrap()
        .with_timezone(&chrono::Utc);
    assert_eq!(
        summary["most_active_day"],
        last.format("%A").to_string().to_lowercase(),
        "{summary}"
    );
    let hour: u32 = last.format("%H").to_string().parse().unwrap();
    assert_eq!(
        summary["preferred_login_time"],
        format!("{hour:02}:00-{:02}:00", (hour + 1) % 24),
        "{summary}"
    );
    assert!(
        summary["average_session_duration"]
            .as_i64()
            .is_some_and(|secs| secs >= 0),
        "{summary}"
    );
    let recent = activity["recent_activities"].as_array().unwrap();
    let events: Vec<&str> = recent
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(
        events.iter().filter(|e| **e == "login_succeeded").count(),
        2,
        "{events:?}"
    );
    assert_eq!(
        events.iter().filter(|e| **e == "login_failed").count(),
        1,
        "{events:?}"
    );
    assert_eq!(events[0], "user_updated", "newest first: {events:?}");
    assert_eq!(recent[0]["by_user"], false);
    assert_eq!(recent[0]["changes"], json!(["first_name"]));
    let login = recent
        .iter()
        .find(|e| e["event"] == "login_succeeded")
        .unwrap();
    assert_eq!(login["by_user"], true);
    let times: Vec<i64> = recent
        .iter()
        .map(|e| unix(e["timestamp"].as_str().unwrap()))
        .collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "{times:?}");

    let (status, one) = admin
        .get(&format!("/users/{user_id}/activity?limit=1"))
        .await;
    assert_eq!(status, 200);
    assert_eq!(one["recent_activities"].as_array().unwrap().len(), 1);
    assert_eq!(
        admin
            .get(&format!("/users/{user_id}/activity?limit=0"))
            .await
            .0,
        400
    );
    assert_eq!(
        admin
            .get(&format!("/users/{user_id}/activity?limit=101"))
            .await
            .0,
        400
    );
    assert_eq!(
        admin.get(&format!("/users/{UNKNOWN_ID}/activity")).await.0,
        404
    );
}

#[tokio::test]
async fn direct_permissions_are_set_by_holders_only_and_appear_in_the_next_token() {
    // Arrange
    let app = spawn_app().await;
    let admin = Api::new(&app, &admin_token(&app).await);
    let (user_id, old_token) = user_with_roles(&app, "dora", &["user"]).await;
    assert!(
        !claims(&old_token)["permissions"]
            .as_array()
            .unwrap()
            .contains(&json!("audit:read"))
    );

    // Act
    let (status, body) = admin
        .put(
            &format!("/admin/users/{user_id}/permissions"),
            json!({"permissions": ["reports:export", "audit:read", "audit:read"]}),
        )
        .await;

    // Assert
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["permissions"], json!(["audit:read", "reports:export"]));
    let (_, view) = admin
        .get(&format!("/users/{user_id}?include=permissions"))
        .await;
    assert_eq!(
        view["direct_permissions"],
        json!(["audit:read", "reports:export"])
    );
    assert_eq!(
        view["permissions"],
        json!([
            "audit:read",
            "profile:read",
            "profile:write",
            "reports:export"
        ])
    );
    let token = login(&app, "dora", USER_PASSWORD).await;
    let granted = claims(&token)["permissions"].clone();
    assert!(
        granted.as_array().unwrap().contains(&json!("audit:read")),
        "{granted}"
    );
    assert!(
        granted
            .as_array()
            .unwrap()
            .contains(&json!("reports:export")),
        "{granted}"
    );
    let entries = audit_of(&app, "user_updated", &user_id).await;
    assert_eq!(
        json_column(&entries[0].new_values),
        json!({"direct_permissions": ["audit:read", "reports:export"]})
    );

    // Cleared
    let (status, body) = admin
        .put(
            &format!("/admin/users/{user_id}/permissions"),
            json!({"permissions": []}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let token = login(&app, "dora", USER_PASSWORD).await;
    assert!(
        !claims(&token)["permissions"]
            .as_array()
            .unwrap()
            .contains(&json!("audit:read"))
    );

    // Refusals: a bad name, and a permission the caller does not hold.
    let (status, error) = admin
        .put(
            &format!("/admin/users/{user_id}/permissions"),
            json!({"permissions": ["users:read", "Not A Permission"]}),
        )
        .await;
    assert_invalid(status, &error, "permissions[1]");
    let (status, _) = admin
        .put(
            &format!("/admin/users/{UNKNOWN_ID}/permissions"),
            json!({"permissions": []}),
        )
        .await;
    assert_eq!(status, 404);
    create_role(
        &admin,
        "granter",
        &["users:read", "users:write", "roles:write"],
    )
    .await;
    let (_, granter) = user_with_roles(&app, "gina", &["granter", "user"]).await;
    let gina = Api::new(&app, &granter);
    let (status, error) = gina
        .put(
            &format!("/admin/users/{user_id}/permissions"),
            json!({"permissions": ["audit:read"]}),
        )
        .await;
    assert_eq!(status, 403, "{error}");
    let (status, error) = gina
        .put(
            &format!("/admin/users/{user_id}/permissions"),
            json!({"permissions": ["*"]}),
        )
        .await;
    assert_eq!(status, 403, "{error}");
    let (_, view) = admin
        .get(&format!("/users/{user_id}?include=permissions"))
        .await;
    assert_eq!(view["direct_permissions"], json!([]));
    let (status, body) = gina
        .put(
            &format!("/admin/users/{user_id}/permissions"),
            json!({"permissions": ["users:read"]}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["permissions"], json!(["users:read"]));
}

// ---------------------------------------------------------------------------------------------
// Bulk operations
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn bulk_creation_answers_201_207_or_422_with_per_item_results() {
    let app = spawn_app().await;
    let admin = Api::new(&app, &admin_token(&app).await);

    // All created: 201.
    let (status, body) = admin
        .post(
            "/users/bulk",
            json!({"users": [
                {"email": "b1@example.com", "password": PASSWORD, "first_name": "B1"},
                {"email": "b2@example.com", "role": "user", "first_name": "B2"}
            ]}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(
        body["summary"],
        json!({"total": 2, "successful": 2, "failed": 0})
    );
    assert_eq!(body["results"][0]["index"], 0);
    assert_eq!(body["results"][0]["success"], true);
    assert_eq!(body["results"][0]["user"]["email"], "b1@example.com");
    let b1 = id(&body["results"][0]["user"]);
    assert_eq!(
        stored(&app, &b1).await.unwrap().first_name.as_deref(),
        Some("B1")
    );
    login(&app, "b1@example.com", PASSWORD).await;

    // Some created: 207.
    let before = user_count(&app).await;
    let (status, body) = admin
        .post(
            "/users/bulk",
            json!({"users": [
                {"email": "b3@example.com", "first_name": "B3"},
                {"email": "B1@example.com"},
                {"email": "not-an-address"},
                {"email": "b4@example.com", "roles": ["admin", "wizard"]},
                {"email": "B3@example.com"}
            ]}),
        )
        .await;
    assert_eq!(status, 207, "{body}");
    assert_eq!(
        body["summary"],
        json!({"total": 5, "successful": 1, "failed": 4})
    );
    assert_eq!(body["results"][0]["success"], true);
    assert_eq!(body["results"][1]["success"], false);
    assert_eq!(body["results"][1]["error"]["code"], "conflict");
    assert_eq!(body["results"][2]["error"]["code"], "validation_error");
    assert_eq!(body["results"][2]["error"]["details"][0]["field"], "email");
    assert_eq!(body["results"][3]["error"]["code"], "validation_error");
    assert_eq!(
        body["results"][4]["error"]["code"], "conflict",
        "a duplicate within the batch"
    );
    assert_eq!(user_count(&app).await, before + 1);
    assert_eq!(
        names(&admin, &[("search", "b3@")]).await,
        ["b3@example.com"]
    );

    // None created: 422.
    let (status, body) = admin
        .post(
            "/users/bulk",
            json!({"users": [{"email": "b1@example.com"}, {"email": "b2@example.com"}]}),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["summary"]["successful"], 0);

    // fail_on_error: one failure undoes the rest.
    let before = user_count(&app).await;
    let (status, body) = admin
        .post(
            "/users/bulk",
            json!({"users": [
                {"email": "b5@example.com", "password": PASSWORD, "first_name": "B5"},
                {"email": "b6@example.com", "first_name": "B6"},
                {"email": "b1@example.com"}
            ], "options": {"fail_on_error": true}}),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["results"][0]["error"]["code"], "rolled_back", "{body}");
    assert_eq!(body["results"][1]["error"]["code"], "rolled_back");
    assert_eq!(body["results"][2]["error"]["code"], "conflict");
    assert_eq!(
        body["summary"],
        json!({"total": 3, "successful": 0, "failed": 3})
    );
    assert_eq!(user_count(&app).await, before, "nothing stored");
    assert_eq!(
        names(&admin, &[("search", "b5@")]).await,
        Vec::<String>::new()
    );
    let (status, _) = try_login(&app, "b5@example.com", PASSWORD).await;
    assert_eq!(status, 401);

    // Sizes and shapes
    let many: Vec<Value> = (0..101)
        .map(|n| json!({"email": format!("many{n}@example.com")}))
        .collect();
    let (status, error) = admin.post("/users/bulk", json!({"users": many})).await;
    assert_invalid(status, &error, "users");
    let (status, error) = admin.post("/users/bulk", json!({"users": []})).await;
    assert_invalid(status, &error, "users");
    let (status, error) = admin
        .post(
            "/users/bulk",
            json!({"users": [{"email": "x@example.com"}], "options": {"dry_run": true}}),
        )
        .await;
    assert_eq!(status, 422, "{error}");
    assert_eq!(user_count(&app).await, before);
}

#[tokio::test]
async fn bulk_actions_apply_to_each_user_and_report_the_ones_that_failed() {
    let app = spawn_app().await;
    let admin = Api::new(&app, &admin_token(&app).await);
    create_role(&admin, "editor", &["articles:write"]).await;
    let ids: Vec<String> = created_ids(&admin, &["ba1", "ba2", "ba3"]).await;
    let status_of = |id: String| {
        let admin = &admin;
        async move { admin.get(&format!("/users/{id}")).await.1["status"].clone() }
    };
    let act = |body: Value| {
        let admin = &admin;
        async move {
            let (status, outcome) = admin.post("/users/bulk-actions", body.clone()).await;
            assert_eq!(status, 200, "{body}: {outcome}");
            outcome
        }
    };

    let outcome = act(json!({"user_ids": [ids[0], ids[1], UNKNOWN_ID],
                             "action": "deactivate", "reason": "audit"}))
    .await;
    assert_eq!(outcome["affected_users"], 2, "{outcome}");
    assert_eq!(
        outcome["failed_users"],
        json!([{"id": UNKNOWN_ID, "error": "not_found", "message": "No such user"}])
    );
    assert_eq!(status_of(ids[0].clone()).await, "inactive");
    assert_eq!(status_of(ids[1].clone()).await, "inactive");
    assert_eq!(status_of(ids[2].clone()).await, "active");

    let outcome = act(json!({"user_ids": [ids[0]], "action": "activate"})).await;
    assert_eq!(outcome["affected_users"], 1);
    assert_eq!(status_of(ids[0].clone()).await, "active");

    let outcome = act(json!({"user_ids": [ids[0], ids[2]], "action": "lock",
                             "duration_minutes": 10}))
    .await;
    assert_eq!(outcome["affected_users"], 2);
    assert_eq!(status_of(ids[2].clone()).await, "locked");
    assert!(security(&app, &ids[2]).await.locked_until.is_some());
    let outcome = act(json!({"user_ids": [ids[0], ids[2]], "action": "unlock"})).await;
    assert_eq!(outcome["affected_users"], 2);
    assert_eq!(status_of(ids[2].clone()).await, "active");

    let outcome = act(
        json!({"user_ids": [ids[0], ids[2]], "action": "assign_role",
                             "role": "editor"}),
    )
    .await;
    assert_eq!(outcome["affected_users"], 2);
    let (_, view) = admin.get(&format!("/users/{}", ids[2])).await;
    assert_eq!(view["roles"], json!(["editor", "user"]));
    let outcome = act(json!({"user_ids": [ids[2]], "action": "remove_role", "role": "user"})).await;
    assert_eq!(outcome["affected_users"], 1);
    let (_, view) = admin.get(&format!("/users/{}", ids[2])).await;
    assert_eq!(view["roles"], json!(["editor"]));
    let outcome =
        act(json!({"user_ids": [ids[1]], "action": "assign_role", "role": "wizard"})).await;
    assert_eq!(outcome["affected_users"], 0);
    assert_eq!(outcome["failed_users"][0]["error"], "validation_error");

    let outcome = act(json!({"user_ids": [ids[2]], "action": "delete", "soft_delete": true})).await;
    assert_eq!(outcome["affected_users"], 1);
    assert_eq!(status_of(ids[2].clone()).await, "deleted");
    let outcome = act(json!({"user_ids": [ids[1]], "action": "delete"})).await;
    assert_eq!(outcome["affected_users"], 1);
    assert!(stored(&app, &ids[1]).await.is_none());

    for (body, field) in [
        (
            json!({"user_ids": [ids[0]], "action": "assign_role"}),
            "role",
        ),
        (json!({"user_ids": [], "action": "activate"}), "user_ids"),
        (
            json!({"user_ids": [ids[0]], "action": "lock", "duration_minutes": 0}),
            "duration_minutes",
        ),
    ] {
        let (status, error) = admin.post("/users/bulk-actions", body).await;
        assert_invalid(status, &error, field);
    }
    let (status, error) = admin
        .post(
            "/users/bulk-actions",
            json!({"user_ids": [ids[0]], "action": "promote"}),
        )
        .await;
    assert_eq!(status, 422, "{error}");
    assert_eq!(status_of(ids[0].clone()).await, "active");
}

/// Creates users by username (address `<name>@example.com`); returns their ids.
async fn created_ids(admin: &Api<'_>, names: &[&str]) -> Vec<String> {
    let mut ids = Vec::new();
    for name in names {
        ids.push(id(&create(
            admin,
            json!({"username": name, "email": format!("{name}@example.com"),
                   "display_name": name}),
        )
        .await));
    }
    ids
}

#[tokio::test]
async fn bulk_deletion_deletes_each_listed_user_and_reports_the_rest() {
    let app = spawn_app().await;
    let admin = Api::new(&app, &admin_token(&app).await);
    let ids = created_ids(&admin, &["bd1", "bd2", "bd3"]).await;

    let (status, outcome) = admin
        .call(
            Method::DELETE,
            "/users/bulk",
            Some(json!({"ids": [ids[0], UNKNOWN_ID]})),
        )
        .await;
    assert_eq!(status, 200, "{outcome}");
    assert_eq!(outcome["deleted"], json!([ids[0]]));
    assert_eq!(outcome["failed"], json!([UNKNOWN_ID]));
    assert_eq!(outcome["errors"][0]["error"], "not_found");
    assert!(stored(&app, &ids[0]).await.is_none());

    let (status, outcome) = admin
        .call(
            Method::DELETE,
            "/users/bulk",
            Some(json!({"ids": [ids[1]], "soft_delete": true})),
        )
        .await;
    assert_eq!(status, 200, "{outcome}");
    assert_eq!(outcome["deleted"], json!([ids[1]]));
    assert!(stored(&app, &ids[1]).await.is_some());
    let (_, view) = admin.get(&format!("/users/{}", ids[1])).await;
    assert_eq!(view["status"], "deleted");

    for body in [
        json!({"ids": []}),
        json!({"ids": (0..101).map(|_| UNKNOWN_ID).collect::<Vec<_>>()}),
    ] {
        let (status, error) = admin.call(Method::DELETE, "/users/bulk", Some(body)).await;
        assert_invalid(status, &error, "ids");
    }
    assert!(stored(&app, &ids[2]).await.is_some());
}

#[tokio::test]
async fn a_user_listed_twice_in_a_bulk_request_is_acted_on_once() {
    let app = spawn_app().await;
    let admin = Api::new(&app, &admin_token(&app).await);
    let ids = created_ids(&admin, &["tw1", "tw2", "tw3"]).await;

    let (status, outcome) = admin
        .post(
            "/users/bulk-actions",
            json!({"user_ids": [ids[0], ids[1], ids[0]], "action": "deactivate"}),
        )
        .await;
    assert_eq!(status, 200, "{outcome}");
    assert_eq!(
        outcome["affected_users"], 2,
        "each user counts once: {outcome}"
    );
    assert_eq!(outcome["failed_users"], json!([]));
    assert_eq!(audit_of(&app, "user_updated", &ids[0]).await.len(), 1);

    let (status, outcome) = admin
        .call(
            Method::DELETE,
            "/users/bulk",
            Some(json!({"ids": [ids[2], ids[2]]})),
        )
        .await;
    assert_eq!(status, 200, "{outcome}");
    assert_eq!(outcome["deleted"], json!([ids[2]]), "{outcome}");
    assert_eq!(
        outcome["failed"],
        json!([]),
        "deleted, not failed: {outcome}"
    );
    assert!(stored(&app, &ids[2]).await.is_none());
}

#[tokio::test]
async fn a_bulk_deactivation_records_its_reason_in_the_audit_log() {
    // `BulkActionRequest::reason`: "Recorded with locks and deactivations".
    let app = spawn_app().await;
    let admin = Api::new(&app, &admin_token(&app).await);
    let ids = created_ids(&admin, &["rs1", "rs2"]).await;

    let (status, outcome) = admin
        .post(
            "/users/bulk-actions",
            json!({"user_ids": ids, "action": "deactivate", "reason": "quarterly access review"}),
        )
        .await;

    assert_eq!(status, 200, "{outcome}");
    assert_eq!(outcome["affected_users"], 2);
    for id in &ids {
        let entries = audit_of(&app, "user_updated", id).await;
        assert_eq!(entries.len(), 1);
        assert_eq!(json_column(&entries[0].new_values)["status"], "inactive");
        assert!(
            entries[0]
                .additional_info
                .as_deref()
                .is_some_and(|info| info.contains("quarterly access review")),
            "{entries:?}"
        );
    }
    // A bulk lock records its reason too.
    let (status, _) = admin
        .post(
            "/users/bulk-actions",
            json!({"user_ids": [ids[0]], "action": "lock", "reason": "lost laptop"}),
        )
        .await;
    assert_eq!(status, 200);
    let entries = audit_of(&app, "user_locked", &ids[0]).await;
    assert_eq!(
        json_column(&entries[0].additional_info)["reason"],
        "lost laptop"
    );
}

// ---------------------------------------------------------------------------------------------
// Export
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn the_users_export_parses_back_to_the_listed_users_in_csv_and_xlsx() {
    let app = spawn_app().await;
    let admin = Api::new(&app, &admin_token(&app).await);
    for (name, first) in [("ann", "=cmd|' /C calc'!A0"), ("ben", "Smith, \"Ben\" Jr")] {
        let (status, body) = admin
            .post(
                "/users",
                json!({"username": name, "email": format!("{name}@example.com"), "first_name": first}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
    }
    let (_, listed) = admin.get("/users?sort=created_at:asc&limit=100").await;
    let listed = listed["users"].as_array().unwrap().clone();

    let response = admin.get_raw("/users/export?format=csv").await;
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "text/csv; charset=utf-8"
    );
    assert!(
        response.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment; filename=\"users-")
    );
    let text = response.text().await.unwrap();
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let headers = reader.headers().unwrap().clone();
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), listed.len());
    let column = |name: &str| headers.iter().position(|h| h == name).unwrap();
    for (row, user) in rows.iter().zip(&listed) {
        assert_eq!(&row[column("id")], user["id"].as_str().unwrap());
        assert_eq!(&row[column("email")], user["email"].as_str().unwrap());
        assert_eq!(
            row[column("roles")].split(';').collect::<Vec<_>>(),
            user["roles"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r.as_str().unwrap())
                .collect::<Vec<_>>()
        );
        let first = user["first_name"].as_str().unwrap_or("");
        let expected = if first.starts_with('=') {
            format!("'{first}")
        } else {
            first.to_owned()
        };
        assert_eq!(
            &row[column("first_name")],
            expected,
            "formulas are neutralised"
        );
    }

    let response = admin.get_raw("/users/export?format=xlsx").await;
    assert_eq!(response.status().as_u16(), 200);
    let bytes = response.bytes().await.unwrap();
    use calamine::Reader;
    let mut workbook: calamine::Xlsx<_> =
        calamine::open_workbook_from_rs(std::io::Cursor::new(bytes.to_vec())).unwrap();
    let sheet = workbook.worksheet_range_at(0).unwrap().unwrap();
    let ids: Vec<String> = sheet.rows().skip(1).map(|r| r[0].to_string()).collect();
    let expected: Vec<String> = listed
        .iter()
        .map(|u| u["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids, expected);

    let (status, error) = admin.get("/users/export?format=pdf").await;
    assert_eq!(status, 422, "{error}");
    let (_, token) = user_with_roles(&app, "cal", &["user"]).await;
    assert_eq!(
        Api::new(&app, &token)
            .get_raw("/users/export")
            .await
            .status()
            .as_u16(),
        403
    );
}
