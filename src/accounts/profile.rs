//! One profile model behind every "who am I" shape of the seeds.

use serde_json::Value;

use crate::domain::now;
use crate::store::security;
use crate::store::sessions;
use crate::store::users::{self, UserRow};
use crate::store::{AnyConnection, StoreError, from_json};

/// A user with everything the profile endpoints show.
#[derive(Debug, Clone)]
pub struct Profile {
    pub user: UserRow,
    pub roles: Vec<String>,
    /// Everything the user holds (roles and direct), before any scope cut.
    pub permissions: Vec<String>,
    pub mfa_enabled: bool,
    pub active_sessions: i64,
}

impl Profile {
    /// The `preferences` object (empty when none were saved).
    pub fn preferences(&self) -> Value {
        self.user
            .preferences
            .as_deref()
            .and_then(|p| from_json::<Value>("users.preferences", p).ok())
            .unwrap_or_else(|| Value::Object(Default::default()))
    }

    /// The `metadata` object (empty when none was saved).
    pub fn metadata(&self) -> Value {
        self.user
            .metadata
            .as_deref()
            .and_then(|p| from_json::<Value>("users.metadata", p).ok())
            .unwrap_or_else(|| Value::Object(Default::default()))
    }

    /// Seed 002's `name`: the chosen display name, else first and last name, else the username.
    pub fn display_name(&self) -> String {
        if let Some(name) = self
            .user
            .display_name
            .as_ref()
            .filter(|n| !n.trim().is_empty())
        {
            return name.clone();
        }
        let parts: Vec<&str> = [&self.user.first_name, &self.user.last_name]
            .into_iter()
            .filter_map(|p| p.as_deref().filter(|p| !p.trim().is_empty()))
            .collect();
        if parts.is_empty() {
            self.user.username.clone()
        } else {
            parts.join(" ")
        }
    }
}

/// Loads a profile.
pub fn load(conn: &mut AnyConnection, user_id: &str) -> Result<Profile, StoreError> {
    Ok(Profile {
        user: users::find(conn, user_id)?,
        roles: users::role_names(conn, user_id)?,
        permissions: users::permissions(conn, user_id)?,
        mfa_enabled: security::find(conn, user_id)?.mfa_enabled,
        active_sessions: sessions::count_live_for_user(conn, user_id, now())?,
    })
}
