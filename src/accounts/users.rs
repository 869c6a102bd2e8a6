//! Creating users.

use crate::domain::{Email, Timestamp, Username, now};
use crate::store::security::{self, SecurityRow};
use crate::store::users::{self as rows, UserRow};
use crate::store::{AnyConnection, StoreError, roles, write_transaction};

/// A user to create, with its parsed fields.
#[derive(Debug)]
pub struct NewUser {
    /// Login name.
    pub username: Username,
    /// Email address.
    pub email: Email,
    /// The argon2 hash of the chosen password; `None` leaves the account without a password
    /// until one is set through a reset.
    pub password_hash: Option<String>,
    /// Names of existing roles to give the user.
    pub roles: Vec<String>,
    /// Whether the address is already known to be the user's.
    pub email_verified: bool,
}

/// The created user, as `latchkey user create` prints it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CreatedUser {
    pub id: String,
    pub username: String,
    pub email: String,
    pub roles: Vec<String>,
    pub created_at: Timestamp,
}

/// Why a user could not be created.
#[derive(Debug, thiserror::Error)]
pub enum CreateUserError {
    /// The username is taken.
    #[error("the username is already taken")]
    UsernameTaken,
    /// The email address is taken.
    #[error("the email address is already in use")]
    EmailTaken,
    /// The username is an address other than the account's own.
    #[error("a username that is an address must be the account's own address")]
    UsernameIsAnotherAddress,
    /// A named role does not exist.
    #[error("there is no role named `{0}`")]
    UnknownRole(String),
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<diesel::result::Error> for CreateUserError {
    fn from(error: diesel::result::Error) -> Self {
        Self::Store(error.into())
    }
}

/// Creates a user with roles, in one transaction.
pub fn create_user(
    conn: &mut AnyConnection,
    mut user: NewUser,
) -> Result<CreatedUser, CreateUserError> {
    if user.username.is_address_other_than(&user.email) {
        return Err(CreateUserError::UsernameIsAnotherAddress);
    }
    user.roles.sort();
    user.roles.dedup();
    write_transaction(conn, |conn| {
        let mut role_ids = Vec::with_capacity(user.roles.len());
        for name in &user.roles {
            match roles::find_by_name(conn, name) {
                Ok(role) => role_ids.push(role.id),
                Err(StoreError::NotFound) => {
                    return Err(CreateUserError::UnknownRole(name.clone()));
                }
                Err(other) => return Err(other.into()),
            }
        }
        let at = now();
        let row = UserRow {
            id: uuid::Uuid::now_v7().to_string(),
            username: user.username.as_str().to_owned(),
            email: user.email.as_str().to_owned(),
            email_verified: user.email_verified,
            password_hash: user.password_hash,
            first_name: None,
            last_name: None,
            status: "active".into(),
            created_at: at,
            updated_at: at,
            last_login_at: None,
            middle_name: None,
            nickname: None,
            picture: None,
            website: None,
            profile_url: None,
            gender: None,
            birthdate: None,
            zoneinfo: None,
            locale: None,
            phone_number: None,
            phone_number_verified: false,
            address: None,
            display_name: None,
            bio: None,
            preferences: None,
            metadata: None,
            email_verified_at: user.email_verified.then_some(at),
        };
        rows::insert(conn, &row).map_err(|e| match e {
            e if e.is_conflict_on("username") => CreateUserError::UsernameTaken,
            e if e.is_conflict_on("email") => CreateUserError::EmailTaken,
            e => e.into(),
        })?;
        security::insert(
            conn,
            &SecurityRow::new(&row.id, row.password_hash.as_ref().map(|_| at)),
        )?;
        for role_id in &role_ids {
            rows::add_role(conn, &row.id, role_id)?;
        }
        Ok(CreatedUser {
            id: row.id,
            username: row.username,
            email: row.email,
            roles: user.roles,
            created_at: Timestamp(at),
        })
    })
}

/// A user as the webhooks of the contract carry it (`user.created`, `user.updated`,
/// `user.login`, `user.locked`, ...): identity and names, never a secret.
pub fn webhook_user(user: &UserRow) -> serde_json::Value {
    serde_json::json!({
        "id": user.id,
        "username": user.username,
        "email": user.email,
        "email_verified": user.email_verified,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "status": user.status,
        "created_at": Timestamp(user.created_at),
        "updated_at": Timestamp(user.updated_at),
    })
}
