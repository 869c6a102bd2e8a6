//! The `clients` table.

use diesel::prelude::*;

use super::schema::{client_assertions, clients};
use super::{AnyConnection, StoreError};

/// An OAuth client as stored. List-valued metadata is JSON text; the secret only as a keyed
/// hash.
#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = clients, treat_none_as_null = true)]
pub struct ClientRow {
    pub id: String,
    pub secret_hash: Option<String>,
    pub name: String,
    pub logo_uri: Option<String>,
    pub policy_uri: Option<String>,
    pub tos_uri: Option<String>,
    pub application_type: String,
    pub redirect_uris: String,
    pub post_logout_redirect_uris: String,
    pub grant_types: String,
    pub response_types: String,
    pub token_endpoint_auth_method: String,
    pub jwks: Option<String>,
    pub jwks_uri: Option<String>,
    pub id_token_signed_response_alg: String,
    pub userinfo_signed_response_alg: Option<String>,
    pub scope: String,
    pub skip_consent: bool,
    pub require_pkce: bool,
    pub backchannel_logout_uri: Option<String>,
    pub frontchannel_logout_uri: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    /// Raised whenever what the client's own tokens may do shrinks (scope, grant, credentials):
    /// its client-credentials tokens carry the epoch they were issued under, and stop when it
    /// moves on.
    pub token_epoch: i64,
}

/// Inserts a client.
pub fn insert(conn: &mut AnyConnection, client: &ClientRow) -> Result<(), StoreError> {
    diesel::insert_into(clients::table)
        .values(client)
        .execute(conn)?;
    Ok(())
}

/// The client with this id.
pub fn find(conn: &mut AnyConnection, id: &str) -> Result<ClientRow, StoreError> {
    Ok(on_backend!(conn, |c| clients::table
        .find(id)
        .select(ClientRow::as_select())
        .get_result(c))?)
}

/// Every client, oldest first.
pub fn all(conn: &mut AnyConnection) -> Result<Vec<ClientRow>, StoreError> {
    Ok(clients::table
        .order((clients::created_at, clients::id))
        .select(ClientRow::as_select())
        .load(conn)?)
}

/// Replaces every column of a client.
pub fn update(conn: &mut AnyConnection, client: &ClientRow) -> Result<(), StoreError> {
    match diesel::update(clients::table.find(&client.id))
        .set(client)
        .execute(conn)?
    {
        0 => Err(StoreError::NotFound),
        _ => Ok(()),
    }
}

/// Replaces the secret hash of a client, ending the tokens issued under the old secret.
pub fn set_secret_hash(
    conn: &mut AnyConnection,
    id: &str,
    hash: &str,
    at: i64,
) -> Result<(), StoreError> {
    match diesel::update(clients::table.find(id))
        .set((
            clients::secret_hash.eq(hash),
            clients::updated_at.eq(at),
            clients::token_epoch.eq(clients::token_epoch + 1),
        ))
        .execute(conn)?
    {
        0 => Err(StoreError::NotFound),
        _ => Ok(()),
    }
}

/// Deletes a client; [`StoreError::NotFound`] when there is none.
pub fn delete(conn: &mut AnyConnection, id: &str) -> Result<(), StoreError> {
    match diesel::delete(clients::table.find(id)).execute(conn)? {
        0 => Err(StoreError::NotFound),
        _ => Ok(()),
    }
}

/// Records the `jti` of a client assertion; false when it was already used (a replay).
pub fn claim_assertion_jti(
    conn: &mut AnyConnection,
    client_id: &str,
    jti: &str,
    expires_at: i64,
) -> Result<bool, StoreError> {
    let result = diesel::insert_into(client_assertions::table)
        .values((
            client_assertions::client_id.eq(client_id),
            client_assertions::jti.eq(jti),
            client_assertions::expires_at.eq(expires_at),
        ))
        .execute(conn);
    match result {
        Ok(_) => Ok(true),
        Err(e) => match StoreError::from(e) {
            StoreError::Conflict { .. } => Ok(false),
            other => Err(other),
        },
    }
}

/// Removes assertion records past their expiry.
pub fn delete_expired_assertions(conn: &mut AnyConnection, now: i64) -> Result<usize, StoreError> {
    Ok(
        diesel::delete(client_assertions::table.filter(client_assertions::expires_at.le(now)))
            .execute(conn)?,
    )
}

/// The redirect URIs of every client, as stored (JSON arrays): where web origins come from.
pub fn all_redirect_uris(conn: &mut AnyConnection) -> Result<Vec<String>, StoreError> {
    Ok(clients::table.select(clients::redirect_uris).load(conn)?)
}
