-- Accounts: profile fields, security state, single-use account tokens, MFA challenges,
-- recovery codes, the durable outbox, and the devices a person signed in from.
--
-- user_security:   lockout counters and MFA state, one row per user, apart from the profile so
--                  that reading a profile never loads a secret.
-- account_tokens:  email verification, password reset and email change tokens (keyed hashes).
-- mfa_challenges:  the short-lived `mfa_token` of a login waiting for its second factor, and the
--                  `setup_token` of a TOTP secret waiting to be confirmed (secret sealed).
-- recovery_codes:  single-use MFA recovery codes (keyed hashes).
-- outbox:          messages to deliver (mail now; logout tokens and webhooks later), retried with
--                  backoff until delivered; the payload is sealed (mails carry one-time links).
-- known_devices:   browser and OS families a person signed in from (for new-device notices).

-- A grant may carry its own refresh-token lifetime (an API login with remember_me).
ALTER TABLE grants ADD COLUMN refresh_ttl_secs BIGINT;

ALTER TABLE users ADD COLUMN display_name TEXT;
ALTER TABLE users ADD COLUMN bio TEXT;
ALTER TABLE users ADD COLUMN preferences TEXT;
ALTER TABLE users ADD COLUMN metadata TEXT;
ALTER TABLE users ADD COLUMN email_verified_at BIGINT;

CREATE TABLE user_security (
    user_id                   TEXT PRIMARY KEY NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    failed_login_count        INTEGER NOT NULL DEFAULT 0,
    failed_login_window_start BIGINT,
    locked_until              BIGINT,
    lock_reason               TEXT,
    mfa_enabled               BOOLEAN NOT NULL DEFAULT FALSE,
    totp_secret               TEXT,
    totp_last_step            BIGINT,
    password_changed_at       BIGINT
);
INSERT INTO user_security (user_id) SELECT id FROM users;

CREATE TABLE account_tokens (
    token_hash TEXT PRIMARY KEY NOT NULL,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    purpose    TEXT NOT NULL,
    new_email  TEXT,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at    BIGINT
);
CREATE INDEX account_tokens_user ON account_tokens (user_id, purpose);

CREATE TABLE mfa_challenges (
    token_hash TEXT PRIMARY KEY NOT NULL,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    purpose    TEXT NOT NULL,
    payload    TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at    BIGINT
);
CREATE INDEX mfa_challenges_expiry ON mfa_challenges (expires_at);

CREATE TABLE recovery_codes (
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash  TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    used_at    BIGINT,
    PRIMARY KEY (user_id, code_hash)
);

CREATE TABLE outbox (
    id              TEXT PRIMARY KEY NOT NULL,
    kind            TEXT NOT NULL,
    payload         TEXT NOT NULL,
    status          TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    claimed_until   BIGINT,
    last_error      TEXT,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    delivered_at    BIGINT
);
CREATE INDEX outbox_due ON outbox (status, next_attempt_at);

CREATE TABLE known_devices (
    user_id     TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    fingerprint TEXT NOT NULL,
    description TEXT NOT NULL,
    first_seen  BIGINT NOT NULL,
    last_seen   BIGINT NOT NULL,
    PRIMARY KEY (user_id, fingerprint)
);
