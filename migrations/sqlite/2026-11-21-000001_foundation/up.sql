-- Foundation: bootstrap marker, roles and permissions, users, OAuth clients, signing keys.
-- Times are unix seconds (BIGINT), ids are UUID text, lists are JSON text: the same on
-- SQLite and PostgreSQL, so one diesel schema serves both.

CREATE TABLE meta (
    key   TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
);

CREATE TABLE roles (
    id          TEXT PRIMARY KEY NOT NULL,
    name        TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL DEFAULT '',
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);

CREATE TABLE role_permissions (
    role_id    TEXT NOT NULL REFERENCES roles (id) ON DELETE CASCADE,
    permission TEXT NOT NULL,
    PRIMARY KEY (role_id, permission)
);

CREATE TABLE users (
    id             TEXT PRIMARY KEY NOT NULL,
    username       TEXT NOT NULL UNIQUE,
    email          TEXT NOT NULL UNIQUE,
    email_verified BOOLEAN NOT NULL DEFAULT FALSE,
    password_hash  TEXT,
    first_name     TEXT,
    last_name      TEXT,
    status         TEXT NOT NULL DEFAULT 'active',
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL,
    last_login_at  BIGINT
);
CREATE INDEX users_created_at ON users (created_at);

CREATE TABLE user_roles (
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role_id TEXT NOT NULL REFERENCES roles (id) ON DELETE RESTRICT,
    PRIMARY KEY (user_id, role_id)
);
CREATE INDEX user_roles_role ON user_roles (role_id);

CREATE TABLE user_permissions (
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    permission TEXT NOT NULL,
    PRIMARY KEY (user_id, permission)
);

CREATE TABLE clients (
    id                           TEXT PRIMARY KEY NOT NULL,
    secret_hash                  TEXT,
    name                         TEXT NOT NULL,
    logo_uri                     TEXT,
    policy_uri                   TEXT,
    tos_uri                      TEXT,
    application_type             TEXT NOT NULL DEFAULT 'web',
    redirect_uris                TEXT NOT NULL,
    post_logout_redirect_uris    TEXT NOT NULL DEFAULT '[]',
    grant_types                  TEXT NOT NULL,
    response_types               TEXT NOT NULL,
    token_endpoint_auth_method   TEXT NOT NULL,
    jwks                         TEXT,
    jwks_uri                     TEXT,
    id_token_signed_response_alg TEXT NOT NULL DEFAULT 'RS256',
    userinfo_signed_response_alg TEXT,
    scope                        TEXT NOT NULL,
    skip_consent                 BOOLEAN NOT NULL DEFAULT FALSE,
    require_pkce                 BOOLEAN NOT NULL DEFAULT FALSE,
    backchannel_logout_uri       TEXT,
    frontchannel_logout_uri      TEXT,
    created_at                   BIGINT NOT NULL,
    updated_at                   BIGINT NOT NULL
);

CREATE TABLE signing_keys (
    kid          TEXT PRIMARY KEY NOT NULL,
    alg          TEXT NOT NULL,
    status       TEXT NOT NULL,
    public_jwk   TEXT NOT NULL,
    private_key  TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    activated_at BIGINT,
    retired_at   BIGINT,
    expires_at   BIGINT
);
CREATE INDEX signing_keys_alg_status ON signing_keys (alg, status);
-- The database, not the instances, guarantees one signing key and one successor per algorithm.
CREATE UNIQUE INDEX signing_keys_one_active ON signing_keys (alg) WHERE status = 'active';
CREATE UNIQUE INDEX signing_keys_one_next ON signing_keys (alg) WHERE status = 'next';
