//! The users resource of the admin API.

use serde_json::json;

use crate::admin_support::{Api, admin_token, user_with_roles};
use crate::helpers::spawn_app;

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
