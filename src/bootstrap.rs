//! First start of an empty database: the built-in roles and the `admin` account.
//!
//! The claim of a `meta` row decides which process bootstraps when several start together,
//! so the roles and the admin account are created exactly once.

use secrecy::{ExposeSecret, SecretString};

use crate::accounts::passwords::{self, Passwords};
use crate::accounts::users::{NewUser, create_user};
use crate::config::Settings;
use crate::domain::{Email, Username, now};
use crate::store::roles::{self, RoleRow};
use crate::store::{Store, StoreError, meta, write_transaction};

/// The `meta` key whose presence means the database has been bootstrapped.
const BOOTSTRAPPED: &str = "bootstrapped_at";

/// The built-in roles: name, description, permissions.
pub const BUILTIN_ROLES: &[(&str, &str, &[&str])] = &[
    ("admin", "Full system access", &["*"]),
    (
        "user",
        "Standard user access",
        &["profile:read", "profile:write"],
    ),
];

/// The bootstrap admin's username.
pub const ADMIN_USERNAME: &str = "admin";

/// What a bootstrap did.
#[derive(Debug)]
pub enum Bootstrap {
    /// The database was already bootstrapped.
    AlreadyDone,
    /// Roles and the admin account were created; the password is returned when it was
    /// generated, so the caller can show it once.
    Created {
        generated_password: Option<SecretString>,
    },
}

/// Bootstraps the database if nobody has.
pub async fn bootstrap(
    store: &Store,
    settings: &Settings,
    hasher: &Passwords,
) -> anyhow::Result<Bootstrap> {
    if store.run(|c| meta::get(c, BOOTSTRAPPED)).await?.is_some() {
        return Ok(Bootstrap::AlreadyDone);
    }
    let (password, generated) = match &settings.bootstrap_admin_password {
        Some(p) => (p.clone(), false),
        None => (passwords::generate_password(), true),
    };
    let hash = hasher.hash(password.clone()).await?;
    let email = Email::parse(&settings.bootstrap_admin_email)
        .map_err(|e| anyhow::anyhow!("bootstrap_admin_email: {e}"))?;
    let created = store
        .run(move |conn| {
            write_transaction(conn, |conn| {
                match meta::insert(conn, BOOTSTRAPPED, &now().to_string()) {
                    Ok(()) => {}
                    Err(StoreError::Conflict { .. }) => return Ok(false),
                    Err(other) => return Err(other.into()),
                }
                let at = now();
                for (name, description, permissions) in BUILTIN_ROLES {
                    if roles::find_by_name(conn, name).is_ok() {
                        continue;
                    }
                    let role = RoleRow {
                        id: uuid::Uuid::now_v7().to_string(),
                        name: (*name).to_owned(),
                        description: (*description).to_owned(),
                        created_at: at,
                        updated_at: at,
                    };
                    let permissions: Vec<String> =
                        permissions.iter().map(|p| (*p).to_owned()).collect();
                    roles::insert(conn, &role, &permissions)?;
                }
                create_user(
                    conn,
                    NewUser {
                        username: Username::parse(ADMIN_USERNAME).expect("a valid username"),
                        email,
                        password_hash: Some(hash),
                        roles: vec!["admin".into()],
                        email_verified: true,
                    },
                )
                .map_err(|e| anyhow::anyhow!("create the admin account: {e}"))?;
                Ok::<_, anyhow::Error>(true)
            })
            .map_err(|e| match e.downcast::<StoreError>() {
                Ok(store) => store,
                Err(other) => StoreError::Corrupt(other),
            })
        })
        .await?;
    if !created {
        return Ok(Bootstrap::AlreadyDone);
    }
    tracing::info!("bootstrapped an empty database: roles `admin` and `user`, account `admin`");
    Ok(Bootstrap::Created {
        generated_password: generated.then_some(password),
    })
}

/// Shows a generated admin password once, on the terminal (stderr), never in the log.
pub fn announce_generated_password(password: &SecretString) {
    eprintln!(
        "\n  Latchkey created the account `{ADMIN_USERNAME}` with this generated password:\n\n      {}\n\n  \
         It is shown only this once. Set LATCHKEY_BOOTSTRAP_ADMIN_PASSWORD to choose it instead.\n",
        password.expose_secret()
    );
}
