//! Grants and the secrets issued under them: `grants`, `authorization_codes`,
//! `refresh_tokens` and `revoked_tokens`.
//!
//! Single use is enforced by guarded updates (`… WHERE used_at IS NULL`), so of two concurrent
//! uses exactly one wins on either backend.

use diesel::prelude::*;

use super::schema::{authorization_codes, clients, grants, refresh_tokens, revoked_tokens, users};
use diesel::sql_types::{BigInt, Nullable, Text};

use super::{AnyConnection, StoreError};

/// A grant as stored: one authorization of a client by a person.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = grants)]
pub struct GrantRow {
    pub id: String,
    pub client_id: String,
    pub user_id: String,
    pub session_id: Option<String>,
    pub scope: String,
    pub claims: Option<String>,
    pub auth_time: i64,
    pub acr: String,
    pub amr: String,
    pub offline: bool,
    pub created_at: i64,
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
    pub revoked_reason: Option<String>,
    /// The refresh-token lifetime of this grant, when it differs from the configured one.
    pub refresh_ttl_secs: Option<i64>,
}

/// An authorization code as stored.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = authorization_codes)]
pub struct CodeRow {
    pub code_hash: String,
    pub grant_id: String,
    pub client_id: String,
    pub redirect_uri: String,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub created_at: i64,
    pub expires_at: i64,
    pub used_at: Option<i64>,
}

/// A refresh token as stored.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = refresh_tokens)]
pub struct RefreshTokenRow {
    pub token_hash: String,
    pub grant_id: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub used_at: Option<i64>,
    /// The successor issued when this token was used, sealed, for the grace window.
    pub successor_sealed: Option<String>,
}

/// Inserts a grant.
pub fn insert_grant(conn: &mut AnyConnection, row: &GrantRow) -> Result<(), StoreError> {
    diesel::insert_into(grants::table)
        .values(row)
        .execute(conn)?;
    Ok(())
}

/// The grant with this id.
pub fn find_grant(conn: &mut AnyConnection, id: &str) -> Result<GrantRow, StoreError> {
    Ok(on_backend!(conn, |c| grants::table
        .find(id)
        .select(GrantRow::as_select())
        .get_result(c))?)
}

/// Revokes a grant (all its tokens); returns whether it was live.
pub fn revoke_grant(
    conn: &mut AnyConnection,
    id: &str,
    reason: &str,
    now: i64,
) -> Result<bool, StoreError> {
    let changed = diesel::update(grants::table.find(id).filter(grants::revoked_at.is_null()))
        .set((
            grants::revoked_at.eq(now),
            grants::revoked_reason.eq(reason),
        ))
        .execute(conn)?;
    Ok(changed == 1)
}

/// Revokes the live grants of a session (all of them, or only those not marked offline);
/// returns their ids.
pub fn revoke_session_grants(
    conn: &mut AnyConnection,
    session_id: &str,
    include_offline: bool,
    reason: &str,
    now: i64,
) -> Result<Vec<String>, StoreError> {
    let mut query = grants::table
        .filter(grants::session_id.eq(session_id))
        .filter(grants::revoked_at.is_null())
        .select(grants::id)
        .into_boxed();
    if !include_offline {
        query = query.filter(grants::offline.eq(false));
    }
    let ids: Vec<String> = query.load(conn)?;
    if !ids.is_empty() {
        diesel::update(grants::table.filter(grants::id.eq_any(&ids)))
            .set((
                grants::revoked_at.eq(now),
                grants::revoked_reason.eq(reason),
            ))
            .execute(conn)?;
    }
    Ok(ids)
}

/// Revokes every live grant of a user except `keep` (the caller's own); returns their ids.
pub fn revoke_user_grants(
    conn: &mut AnyConnection,
    user_id: &str,
    keep: Option<&str>,
    reason: &str,
    now: i64,
) -> Result<Vec<String>, StoreError> {
    let mut query = grants::table
        .filter(grants::user_id.eq(user_id))
        .filter(grants::revoked_at.is_null())
        .select(grants::id)
        .into_boxed();
    if let Some(keep) = keep {
        query = query.filter(grants::id.ne(keep));
    }
    let ids: Vec<String> = query.load(conn)?;
    if !ids.is_empty() {
        diesel::update(grants::table.filter(grants::id.eq_any(&ids)))
            .set((
                grants::revoked_at.eq(now),
                grants::revoked_reason.eq(reason),
            ))
            .execute(conn)?;
    }
    Ok(ids)
}

/// The clients that took part in a session (those it granted something to).
pub fn session_client_ids(
    conn: &mut AnyConnection,
    session_id: &str,
) -> Result<Vec<String>, StoreError> {
    Ok(grants::table
        .filter(grants::session_id.eq(session_id))
        .select(grants::client_id)
        .distinct()
        .load(conn)?)
}

/// Whether a grant still has a refresh token that can be used.
pub fn has_live_refresh_token(
    conn: &mut AnyConnection,
    grant_id: &str,
    now: i64,
) -> Result<bool, StoreError> {
    Ok(diesel::select(diesel::dsl::exists(
        refresh_tokens::table
            .filter(refresh_tokens::grant_id.eq(grant_id))
            .filter(refresh_tokens::used_at.is_null())
            .filter(refresh_tokens::expires_at.gt(now)),
    ))
    .get_result(conn)?)
}

/// Inserts an authorization code.
pub fn insert_code(conn: &mut AnyConnection, row: &CodeRow) -> Result<(), StoreError> {
    diesel::insert_into(authorization_codes::table)
        .values(row)
        .execute(conn)?;
    Ok(())
}

/// The code with this hash, used or not.
pub fn find_code(conn: &mut AnyConnection, code_hash: &str) -> Result<CodeRow, StoreError> {
    Ok(authorization_codes::table
        .find(code_hash)
        .select(CodeRow::as_select())
        .get_result(conn)?)
}

/// Marks a code used if it was not; returns whether this call used it.
pub fn use_code(conn: &mut AnyConnection, code_hash: &str, now: i64) -> Result<bool, StoreError> {
    let changed = diesel::update(
        authorization_codes::table
            .find(code_hash)
            .filter(authorization_codes::used_at.is_null()),
    )
    .set(authorization_codes::used_at.eq(now))
    .execute(conn)?;
    Ok(changed == 1)
}

/// Inserts a refresh token.
pub fn insert_refresh_token(
    conn: &mut AnyConnection,
    row: &RefreshTokenRow,
) -> Result<(), StoreError> {
    on_backend!(conn, |c| InsertRefreshToken { row }.execute(c))?;
    Ok(())
}

/// `INSERT INTO refresh_tokens` of one row, kept prepared (see `kept_prepared!`).
struct InsertRefreshToken<'a> {
    row: &'a RefreshTokenRow,
}

kept_prepared!(InsertRefreshToken, |insert, out| {
    let row = insert.row;
    out.push_sql(
        "INSERT INTO refresh_tokens (token_hash, grant_id, created_at, expires_at, used_at, \
         successor_sealed) VALUES (",
    );
    out.push_bind_param::<Text, _>(row.token_hash.as_str())?;
    out.push_sql(", ");
    out.push_bind_param::<Text, _>(row.grant_id.as_str())?;
    out.push_sql(", ");
    out.push_bind_param::<BigInt, _>(&row.created_at)?;
    out.push_sql(", ");
    out.push_bind_param::<BigInt, _>(&row.expires_at)?;
    out.push_sql(", ");
    out.push_bind_param::<Nullable<BigInt>, _>(&row.used_at)?;
    out.push_sql(", ");
    out.push_bind_param::<Nullable<Text>, _>(&row.successor_sealed)?;
    out.push_sql(")");
    Ok(())
});

/// The refresh token with this hash.
pub fn find_refresh_token(
    conn: &mut AnyConnection,
    token_hash: &str,
) -> Result<RefreshTokenRow, StoreError> {
    Ok(on_backend!(conn, |c| refresh_tokens::table
        .find(token_hash)
        .select(RefreshTokenRow::as_select())
        .get_result(c))?)
}

/// Marks a refresh token used, recording its sealed successor; returns whether this call used
/// it (false: it was already used, by an earlier or a concurrent request).
pub fn use_refresh_token(
    conn: &mut AnyConnection,
    token_hash: &str,
    successor_sealed: &str,
    now: i64,
) -> Result<bool, StoreError> {
    let statement = UseRefreshToken {
        token_hash,
        successor_sealed,
        now,
    };
    let changed = on_backend!(conn, |c| statement.execute(c))?;
    Ok(changed == 1)
}

/// The `UPDATE` of [`use_refresh_token`], kept prepared (see `kept_prepared!`).
struct UseRefreshToken<'a> {
    token_hash: &'a str,
    successor_sealed: &'a str,
    now: i64,
}

kept_prepared!(UseRefreshToken, |update, out| {
    out.push_sql("UPDATE refresh_tokens SET used_at = ");
    out.push_bind_param::<BigInt, _>(&update.now)?;
    out.push_sql(", successor_sealed = ");
    out.push_bind_param::<Text, _>(update.successor_sealed)?;
    out.push_sql(" WHERE token_hash = ");
    out.push_bind_param::<Text, _>(update.token_hash)?;
    out.push_sql(" AND used_at IS NULL");
    Ok(())
});

/// Forgets sealed successors whose grace window has passed.
pub fn forget_successors(conn: &mut AnyConnection, used_before: i64) -> Result<usize, StoreError> {
    Ok(diesel::update(
        refresh_tokens::table
            .filter(refresh_tokens::used_at.le(used_before))
            .filter(refresh_tokens::successor_sealed.is_not_null()),
    )
    .set(refresh_tokens::successor_sealed.eq(None::<String>))
    .execute(conn)?)
}

/// Records an access token revoked on its own until it expires.
pub fn revoke_jti(conn: &mut AnyConnection, jti: &str, expires_at: i64) -> Result<(), StoreError> {
    let exists: bool =
        diesel::select(diesel::dsl::exists(revoked_tokens::table.find(jti))).get_result(conn)?;
    if !exists {
        diesel::insert_into(revoked_tokens::table)
            .values((
                revoked_tokens::jti.eq(jti),
                revoked_tokens::expires_at.eq(expires_at),
            ))
            .execute(conn)?;
    }
    Ok(())
}

/// What the verification of an access token needs from storage, read in one query.
#[derive(Debug, Clone, Queryable)]
pub struct GrantState {
    /// When the grant was revoked, if it was.
    pub revoked_at: Option<i64>,
    /// The `claims` request parameter of the grant, as JSON.
    pub claims: Option<String>,
    /// The account's username.
    pub username: String,
    /// The account's status (`active`, `locked`, ...).
    pub status: String,
    /// Whether the access token's `jti` was revoked on its own.
    pub jti_revoked: bool,
}

/// The state of a grant and of one of its access tokens, in one indexed read.
pub fn grant_state(
    conn: &mut AnyConnection,
    grant_id: &str,
    jti: &str,
) -> Result<GrantState, StoreError> {
    Ok(on_backend!(conn, |c| grants::table
        .inner_join(users::table)
        .filter(grants::id.eq(grant_id))
        .select((
            grants::revoked_at,
            grants::claims,
            users::username,
            users::status,
            diesel::dsl::exists(revoked_tokens::table.filter(revoked_tokens::jti.eq(jti))),
        ))
        .get_result(c))?)
}

/// Whether an access token without a grant (client credentials) still stands: not revoked,
/// its client not deleted, and issued under the client's current token epoch.
pub fn client_token_live(
    conn: &mut AnyConnection,
    jti: &str,
    client_id: &str,
    epoch: i64,
) -> Result<bool, StoreError> {
    let (revoked, current): (bool, Option<i64>) = on_backend!(conn, |c| diesel::select((
        diesel::dsl::exists(revoked_tokens::table.find(jti)),
        clients::table
            .find(client_id)
            .select(clients::token_epoch)
            .single_value(),
    ))
    .get_result(c))?;
    Ok(!revoked && current == Some(epoch))
}

/// Removes expired codes, revocation records and used-up refresh tokens.
pub fn delete_expired(conn: &mut AnyConnection, now: i64) -> Result<usize, StoreError> {
    let codes =
        diesel::delete(authorization_codes::table.filter(authorization_codes::expires_at.le(now)))
            .execute(conn)?;
    let jtis = diesel::delete(revoked_tokens::table.filter(revoked_tokens::expires_at.le(now)))
        .execute(conn)?;
    let tokens = diesel::delete(refresh_tokens::table.filter(refresh_tokens::expires_at.le(now)))
        .execute(conn)?;
    Ok(codes + jtis + tokens)
}
