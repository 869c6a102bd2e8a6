//! Roles and the permission catalogue of the admin API (`/api/v1/admin/roles`,
//! `/api/v1/admin/permissions`): listing, creation, changes, deletion, the built-in roles,
//! and the rule that nobody puts into a role (or takes out of it) what they do not hold.

use latchkey::store::StoreError;
use latchkey::store::audit::{AuditFilter, AuditRow};
use reqwest::Method;
use serde_json::{Value, json};

use crate::admin_support::{
    Api, USER_PASSWORD, admin_token, claims, create_role, login, user_with_roles,
};
use crate::helpers::{TestApp, spawn_app};

/// A well-formed id that no role has.
const UNKNOWN_ID: &str = "0190a6f2-7c3e-7000-8000-00000000beef";

/// The stored permissions of the role named `name`, or `None` when there is no such role.
async fn stored_role(app: &TestApp, name: &str) -> Option<Vec<String>> {
    let name = name.to_owned();
    app.state
        .store
        .run(
            move |conn| match latchkey::store::roles::find_by_name(conn, &name) {
                Ok(role) => Ok(Some(latchkey::store::roles::permissions(conn, &role.id)?)),
                Err(StoreError::NotFound) => Ok(None),
                Err(other) => Err(other),
            },
        )
        .await
        .unwrap()
}

/// The stored role names, sorted.
async fn role_names(app: &TestApp) -> Vec<String> {
    let mut names: Vec<String> = app
        .state
        .store
        .run(latchkey::store::roles::all)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.name)
        .collect();
    names.sort();
    names
}

/// Audit entries of `action` about `resource_id`, newest first.
async fn audit_of(app: &TestApp, action: &str, resource_id: &str) -> Vec<AuditRow> {
    let filter = AuditFilter {
        action: Some(action.into()),
        resource_id: Some(resource_id.into()),
        ..Default::default()
    };
    app.state
        .store
        .run(move |conn| latchkey::store::audit::page(conn, &filter, 0, 100))
        .await
        .unwrap()
}

fn json_column(text: &Option<String>) -> Value {
    serde_json::from_str(text.as_deref().unwrap_or("null")).unwrap()
}

/// The role named `name` in a list body.
fn role_in<'a>(list: &'a Value, name: &str) -> &'a Value {
    list["roles"]
        .as_array()
        .unwrap_or_else(|| panic!("no roles in {list}"))
        .iter()
        .find(|r| r["name"] == name)
        .unwrap_or_else(|| panic!("no role {name} in {list}"))
}

/// Asserts a 422 whose details name `field`.
fn assert_invalid(status: u16, error: &Value, field: &str) {
    assert_eq!(status, 422, "{error}");
    assert_eq!(error["error"], "validation_error", "{error}");
    assert!(
        error["details"]
            .as_array()
            .is_some_and(|d| d.iter().any(|e| e["field"] == field)),
        "details should name `{field}`: {error}"
    );
}

/// The roles of a user, as the users resource shows them.
async fn roles_of(admin: &Api<'_>, user_id: &str) -> Value {
    let (status, view) = admin.get(&format!("/users/{user_id}")).await;
    assert_eq!(status, 200, "{view}");
    view["roles"].clone()
}

#[tokio::test]
async fn the_role_list_shows_each_roles_permissions_user_count_and_whether_it_is_built_in() {
    // Arrange
    let app = spawn_app().await;
    let admin = Api::new(&app, &admin_token(&app).await);
    user_with_roles(&app, "una", &["user"]).await;
    user_with_roles(&app, "uli", &["user"]).await;
    create_role(&admin, "editor", &["articles:write", "articles:read"]).await;

    // Act
    let (status, list) = admin.get("/admin/roles").await;

    // Assert
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["roles"].as_array().unwrap().len(), 3);
    let admin_role = role_in(&list, "admin");
    assert_eq!(admin_role["permissions"], json!(["*"]));
    assert_eq!(admin_role["user_count"], 1);
    assert_eq!(admin_role["built_in"], true);
    let user_role = role_in(&list, "user");
    assert_eq!(
        user_role["permissions"],
        json!(["profile:read", "profile:write"])
    );
    assert_eq!(user_role["user_count"], 2);
    assert_eq!(user_role["built_in"], true);
    let editor = role_in(&list, "editor");
    assert_eq!(
        editor["permissions"],
        json!(["articles:read", "articles:write"])
    );
    assert_eq!(editor["user_count"], 0);
    assert_eq!(editor["built_in"], false);
    uuid::Uuid::parse_str(editor["id"].as_str().unwrap()).expect("a UUID");
    assert!(editor["created_at"].is_string());
    assert_eq!(list["pagination"]["total"], 3);
}

#[tokio::test]
async fn the_role_list_pages_like_every_list() {
    // The contract: every list accepts page + limit (and size, offset, cursor) and refuses a
    // limit above 100 with a 400.
    let app = spawn_app().await;
    let admin = Api::new(&app, &admin_token(&app).await);
    create_role(&admin, "editor", &["articles:write"]).await;

    let (status, page) = admin.get("/admin/roles?limit=1&page=2").await;

    assert_eq!(status, 200, "{page}");
    assert_eq!(page["roles"].as_array().unwrap().len(), 1, "{page}");
    assert_eq!(page["pagination"]["page"], 2);
    assert_eq!(page["pagination"]["limit"], 1);
    assert_eq!(page["pagination"]["total"], 3);
    assert_eq!(page["pagination"]["pages"], 3);
    let (status, error) = admin.get("/admin/roles?limit=101").await;
    assert_eq!(status, 400, "{error}");
}

#[tokio::test]
async fn creating_a_role_answers_201_with_location_and_refuses_duplicates_and_bad_input() {
    // Arrange
    let app = spawn_app().await;
    let admin = Api::new(&app, &admin_token(&app).await);

    // Act
    let response = admin
        .raw(
            Method::POST,
            "/admin/roles",
            Some(json!({"name": "support", "description": "Support staff",
                        "permissions": ["users:read", "tickets:write", "users:read"]})),
        )
        .await;

    // Assert
    assert_eq!(response.status().as_u16(), 201);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let role: Value = response.json().await.unwrap();
    let role_id = role["id"].as_str().unwrap().to_owned();
    assert_eq!(location, format!("/api/v1/admin/roles/{role_id}"));
    assert_eq!(role["name"], "support");
    assert_eq!(role["description"], "Support staff");
    assert_eq!(role["permissions"], json!(["tickets:write", "users:read"]));
    assert_eq!(role["user_count"], 0);
    assert_eq!(role["built_in"], false);
    assert_eq!(
        stored_role(&app, "support").await,
        Some(vec!["tickets:write".to_owned(), "users:read".to_owned()])
    );
    for path in [
        format!("/admin/roles/{role_id}"),
        "/admin/roles/support".to_owned(),
    ] {
        let (status, fetched) = admin.get(&path).await;
        assert_eq!(status, 200, "{fetched}");
        assert_eq!(fetched["id"], json!(role_id));
        assert_eq!(fetched["permissions"], role["permissions"]);
    }
    let entries = audit_of(&app, "role_created", &role_id).await;
    assert_eq!(entries.len(), 1);
    assert_eq!(json_column(&entries[0].new_values)["name"], "support");

    // Duplicates: 409.
    for name in ["support", "admin", "user"] {
        let (status, error) = admin
            .post("/admin/roles", json!({"name": name, "permissions": []}))
            .await;
        assert_eq!(status, 409, "{name}: {error}");
        assert_eq!(error["error"], "conflict");
    }
    // Bad input: 422 naming the field.
    for (body, field) in [
        (json!({"name": "Bad Name", "permissions": []}), "name"),
        (json!({"name": "x", "permissions": []}), "name"),
        (json!({"permissions": ["users:read"]}), "name"),
        (
            json!({"name": "okname", "permissions": ["users:read", "not a permission"]}),
            "permissions[1]",
        ),
        (
            json!({"name": "okname", "description": "d".repeat(501)}),
            "description",
        ),
    ] {
        let (status, error) = admin.post("/admin/roles", body.clone()).await;
        assert_invalid(status, &error, field);
    }
    let (status, error) = admin
        .post(
            "/admin/roles",
            json!({"name": "okname", "perms": ["users:read"]}),
        )
        .await;
    assert_eq!(status, 422, "{error}");
    assert!(error["details"].to_string().contains("perms"), "{error}");
    assert_eq!(role_names(&app).await, ["admin", "support", "user"]);
    assert_eq!(stored_role(&app, "admin").await, Some(vec!["*".to_owned()]));
}

#[tokio::test]
async fn changing_a_roles_permissions_changes_what_its_holders_next_tokens_carry() {
    // Arrange
    let app = spawn_app().await;
    let admin = Api::new(&app, &admin_token(&app).await);
    let role = create_role(&admin, "support", &["users:read"]).await;
    let role_id = role["id"].as_str().unwrap().to_owned();
    let (user_id, before) = user_with_roles(&app, "sue", &["support", "user"]).await;
    assert!(
        !claims(&before)["permissions"]
            .as_array()
            .unwrap()
            .contains(&json!("users:write"))
    );

    // Act
    let (status, updated) = admin
        .put(
            "/admin/roles/support",
            json!({"permissions": ["users:write", "users:read"]}),
        )
        .await;

    // Assert
    assert_eq!(status, 200, "{updated}");
    assert_eq!(updated["permissions"], json!(["users:read", "users:write"]));
    assert_eq!(updated["user_count"], 1);
    assert_eq!(
        stored_role(&app, "support").await,
        Some(vec!["users:read".to_owned(), "users:write".to_owned()])
    );
    let token = login(&app, "sue", USER_PASSWORD).await;
    assert!(
        claims(&token)["permissions"]
            .as_array()
            .unwrap()
            .contains(&json!("users:write"))
    );
    let (status, created) = Api::new(&app, &token)
        .post(
            "/users",
            json!({"email": "new@example.com", "first_name": "New"}),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let entries = audit_of(&app, "role_updated", &role_id).await;
    assert_eq!(entries.len(), 1);
    assert_eq!(
        json_column(&entries[0].old_values)["permissions"],
        json!(["users:read"])
    );
    assert_eq!(
        json_column(&entries[0].new_values)["permissions"],
        json!(["users:read", "users:write"])
    );

    // PATCH a description: permissions stay. Rename: holders keep the role under its new name.
    let (status, patched) = admin
        .patch(
            &format!("/admin/roles/{role_id}"),
            json!({"description": "Helpdesk"}),
        )
        .await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!(patched["description"], "Helpdesk");
    assert_eq!(patched["permissions"], json!(["users:read", "users:write"]));
    let (status, renamed) = admin
        .patch("/admin/roles/support", json!({"name": "helpdesk"}))
        .await;
    assert_eq!(status, 200, "{renamed}");
    assert_eq!(renamed["id"], json!(role_id));
    assert_eq!(admin.get("/admin/roles/support").await.0, 404);
    assert_eq!(admin.get("/admin/roles/helpdesk").await.0, 200);
    assert_eq!(
        roles_of(&admin, &user_id).await,
        json!(["helpdesk", "user"])
    );

    // Refusals
    let (status, error) = admin
        .patch("/admin/roles/helpdesk", json!({"name": "user"}))
        .await;
    assert_eq!(status, 409, "{error}");
    let (status, error) = admin
        .put(
            "/admin/roles/helpdesk",
            json!({"permissions": ["Users:Read"]}),
        )
        .await;
    assert_invalid(status, &error, "permissions[0]");
    let (status, error) = admin
        .put("/admin/roles/helpdesk", json!({"name": "has space"}))
        .await;
    assert_invalid(status, &error, "name");
    for path in [
        format!("/admin/roles/{UNKNOWN_ID}"),
        "/admin/roles/nosuch".to_owned(),
    ] {
        let (status, error) = admin.put(&path, json!({"description": "x"})).await;
        assert_eq!(status, 404, "{path}: {error}");
        assert_eq!(error["error"], "not_found");
        assert_eq!(admin.get(&path).await.0, 404);
    }
    assert_eq!(
        stored_role(&app, "helpdesk").await,
        Some(vec!["users:read".to_owned(), "users:write".to_owned()])
    );
}

#[tokio::test]
async fn a_role_in_use_is_deleted_only_with_force_which_takes_it_from_its_holders() {
    // Arrange
    let app = spawn_app().await;
    let admin = Api::new(&app, &admin_token(&app).await);
    let temp = create_role(&admin, "temp", &["reports:export"]).await;
    let temp_id = temp["id"].as_str().unwrap().to_owned();
    create_role(&admin, "unused", &["reports:read"]).await;
    let (user_id, _) = user_with_roles(&app, "tim", &["temp", "user"]).await;

    // Act: without force
    let (status, error) = admin.delete("/admin/roles/temp").await;

    // Assert
    assert_eq!(status, 409, "{error}");
    assert!(
        error["message"].as_str().unwrap().contains("force"),
        "{error}"
    );
    assert!(stored_role(&app, "temp").await.is_some());
    assert_eq!(roles_of(&admin, &user_id).await, json!(["temp", "user"]));

    // Act: with force
    let (status, body) = admin
        .delete(&format!("/admin/roles/{temp_id}?force=true"))
        .await;

    // Assert
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["users_affected"], 1);
    assert_eq!(stored_role(&app, "temp").await, None);
    assert_eq!(roles_of(&admin, &user_id).await, json!(["user"]));
    assert_eq!(admin.get("/admin/roles/temp").await.0, 404);
    let token = login(&app, "tim", USER_PASSWORD).await;
    assert!(
        !claims(&token)["permissions"]
            .as_array()
            .unwrap()
            .contains(&json!("reports:export"))
    );
    let entries = audit_of(&app, "role_deleted", &temp_id).await;
    assert_eq!(entries.len(), 1);
    assert_eq!(json_column(&entries[0].additional_info)["force"], true);

    // A role nobody holds goes without force; unknown ones are 404.
    let (status, body) = admin.delete("/admin/roles/unused").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["users_affected"], 0);
    assert_eq!(admin.delete("/admin/roles/unused").await.0, 404);
    assert_eq!(
        admin.delete(&format!("/admin/roles/{UNKNOWN_ID}")).await.0,
        404
    );
    let (status, error) = admin.delete("/admin/roles/user?forcefully=true").await;
    assert_eq!(status, 400, "{error}");
    assert_eq!(role_names(&app).await, ["admin", "user"]);
}

#[tokio::test]
async fn built_in_roles_cannot_be_deleted_or_renamed_but_can_be_described() {
    let app = spawn_app().await;
    let admin = Api::new(&app, &admin_token(&app).await);

    for path in [
        "/admin/roles/admin",
        "/admin/roles/admin?force=true",
        "/admin/roles/user",
        "/admin/roles/user?force=true",
    ] {
        let (status, error) = admin.delete(path).await;
        assert_eq!(status, 409, "{path}: {error}");
        assert_eq!(error["error"], "conflict");
    }
    for (path, body) in [
        ("/admin/roles/user", json!({"name": "member"})),
        (
            "/admin/roles/admin",
            json!({"name": "root", "description": "x"}),
        ),
    ] {
        let (status, error) = admin.patch(path, body).await;
        assert_eq!(status, 409, "{path}: {error}");
    }
    assert_eq!(role_names(&app).await, ["admin", "user"]);
    assert_eq!(stored_role(&app, "admin").await, Some(vec!["*".to_owned()]));

    let (status, described) = admin
        .put(
            "/admin/roles/user",
            json!({"name": "user", "description": "Everyone"}),
        )
        .await;
    assert_eq!(status, 200, "{described}");
    assert_eq!(described["description"], "Everyone");
    assert_eq!(described["name"], "user");
    assert_eq!(described["built_in"], true);
}

#[tokio::test]
async fn the_permission_catalogue_lists_categories_and_the_custom_permissions_in_use() {
    // Arrange: a custom permission through a role, another directly on a user.
    let app = spawn_app().await;
    let admin = Api::new(&app, &admin_token(&app).await);
    create_role(&admin, "reporter", &["reports:export", "users:read"]).await;
    let (user_id, _) = user_with_roles(&app, "bill", &["user"]).await;
    let (status, body) = admin
        .put(
            &format!("/admin/users/{user_id}/permissions"),
            json!({"permissions": ["billing:refund"]}),
        )
        .await;
    assert_eq!(status, 200, "{body}");

    // Act
    let (status, catalogue) = admin.get("/admin/permissions").await;

    // Assert
    assert_eq!(status, 200, "{catalogue}");
    let entries = catalogue["permissions"].as_array().unwrap();
    let entry = |name: &str| {
        entries
            .iter()
            .find(|e| e["name"] == name)
            .unwrap_or_else(|| panic!("no {name} in {catalogue}"))
            .clone()
    };
    let users_read = entry("users:read");
    assert_eq!(users_read["category"], "users");
    assert_eq!(users_read["built_in"], true);
    assert!(users_read["description"].is_string());
    for name in [
        "users:write",
        "users:delete",
        "roles:read",
        "roles:write",
        "profile:read",
    ] {
        assert_eq!(entry(name)["built_in"], true, "{name}");
    }
    let export = entry("reports:export");
    assert_eq!(export["category"], "reports");
    assert_eq!(export["built_in"], false);
    let refund = entry("billing:refund");
    assert_eq!(refund["category"], "billing");
    assert_eq!(refund["built_in"], false);
    assert!(entries.iter().all(|e| e["name"] != "*"), "{catalogue}");
    let mut names: Vec<&str> = entries
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    let count = names.len();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), count, "each permission once");
    let categories: Vec<&str> = catalogue["categories"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    for category in ["users", "roles", "profile", "reports", "billing"] {
        assert!(
            categories.contains(&category),
            "{category} in {categories:?}"
        );
    }
    for e in entries {
        assert!(
            categories.contains(&e["category"].as_str().unwrap()),
            "the category of {e} is listed"
        );
    }
}

#[tokio::test]
async fn a_roles_writer_cannot_put_into_or_take_out_of_a_role_what_they_do_not_hold() {
    // Arrange: rory holds roles:read, roles:write and users:read, not `*`.
    let app = spawn_app().await;
    let admin = Api::new(&app, &admin_token(&app).await);
    create_role(
        &admin,
        "rolesadmin",
        &["roles:read", "roles:write", "users:read"],
    )
    .await;
    create_role(&admin, "auditor", &["audit:read"]).await;
    let (_, token) = user_with_roles(&app, "rory", &["rolesadmin"]).await;
    let rory = Api::new(&app, &token);
    let (status, list) = rory.get("/admin/roles").await;
    assert_eq!(status, 200, "{list}");

    // Creation: only what rory holds.
    for permissions in [
        json!(["*"]),
        json!(["users:read", "audit:read"]),
        json!(["users:delete"]),
    ] {
        let (status, error) = rory
            .post(
                "/admin/roles",
                json!({"name": "grab", "permissions": permissions}),
            )
            .await;
        assert_eq!(status, 403, "{permissions}: {error}");
        assert_eq!(error["error"], "forbidden");
    }
    let reader = create_role(&rory, "reader", &["users:read"]).await;
    assert_eq!(reader["permissions"], json!(["users:read"]));

    // Changes: adding or removing what rory lacks is refused.
    for (path, permissions) in [
        ("/admin/roles/reader", json!(["users:read", "users:delete"])),
        ("/admin/roles/reader", json!(["*"])),
        ("/admin/roles/admin", json!(["*", "roles:read"])),
        ("/admin/roles/admin", json!(["roles:read"])),
        ("/admin/roles/user", json!([])),
        ("/admin/roles/auditor", json!(["users:read"])),
    ] {
        let (status, error) = rory.put(path, json!({"permissions": permissions})).await;
        assert_eq!(status, 403, "{path} {permissions}: {error}");
    }
    // Deleting a role that carries what rory lacks is refused.
    let (status, error) = rory.delete("/admin/roles/auditor").await;
    assert_eq!(status, 403, "{error}");

    // Nothing changed.
    assert_eq!(
        role_names(&app).await,
        ["admin", "auditor", "reader", "rolesadmin", "user"]
    );
    assert_eq!(stored_role(&app, "admin").await, Some(vec!["*".to_owned()]));
    assert_eq!(
        stored_role(&app, "user").await,
        Some(vec!["profile:read".to_owned(), "profile:write".to_owned()])
    );
    assert_eq!(
        stored_role(&app, "reader").await,
        Some(vec!["users:read".to_owned()])
    );
    assert_eq!(
        stored_role(&app, "auditor").await,
        Some(vec!["audit:read".to_owned()])
    );

    // What rory holds can be moved freely.
    let (status, updated) = rory
        .put(
            "/admin/roles/reader",
            json!({"permissions": ["roles:read", "users:read"]}),
        )
        .await;
    assert_eq!(status, 200, "{updated}");
    let (status, _) = rory.delete("/admin/roles/reader").await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn the_admin_role_keeps_star_while_nobody_else_holds_it() {
    // Arrange
    let app = spawn_app().await;
    let admin = Api::new(&app, &admin_token(&app).await);

    // Act: taking `*` from the only role that gives it to the only holder.
    let (status, error) = admin
        .put("/admin/roles/admin", json!({"permissions": ["users:read"]}))
        .await;

    // Assert
    assert_eq!(status, 409, "{error}");
    assert_eq!(stored_role(&app, "admin").await, Some(vec!["*".to_owned()]));

    // With another active holder of `*` (directly), the role may change.
    let (status, root) = admin
        .post(
            "/users",
            json!({"username": "root2", "email": "root2@example.com", "first_name": "Root",
                   "permissions": ["*"], "password": "a long and unusual passphrase"}),
        )
        .await;
    assert_eq!(status, 201, "{root}");
    let (status, updated) = admin
        .put("/admin/roles/admin", json!({"permissions": ["users:read"]}))
        .await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(
        stored_role(&app, "admin").await,
        Some(vec!["users:read".to_owned()])
    );
    // The first admin's old token no longer carries what the role lost...
    let root_id = root["id"].as_str().unwrap();
    let (status, error) = admin
        .post(&format!("/users/{root_id}/lock"), json!({}))
        .await;
    assert_eq!(status, 403, "{error}");
    // ... and the last holder cannot lock themselves.
    let root = Api::new(
        &app,
        &crate::admin_support::login(&app, "root2", "a long and unusual passphrase").await,
    );
    let (status, error) = root
        .post(&format!("/users/{root_id}/lock"), json!({}))
        .await;
    assert_eq!(status, 409, "{error}");
}
