-- Hardening after the attack review.

-- Failed second factors are counted apart from passwords (a right password must not forgive
-- them), and lock only the second factor.
ALTER TABLE user_security ADD COLUMN mfa_failed_count INTEGER NOT NULL DEFAULT 0;
ALTER TABLE user_security ADD COLUMN mfa_failed_window_start BIGINT;
ALTER TABLE user_security ADD COLUMN mfa_locked_until BIGINT;

-- Failed passwords per login and client address (and per login from everywhere): a lockout
-- that hurts the address that guesses, not the account's owner. One row per keyed hash of the
-- login (and address), whether or not an account has that login, so that unknown and known
-- logins behave alike.
CREATE TABLE login_throttles (
    key_hash     TEXT PRIMARY KEY NOT NULL,
    user_id      TEXT REFERENCES users (id) ON DELETE CASCADE,
    failures     INTEGER NOT NULL,
    window_start BIGINT NOT NULL,
    locked_until BIGINT,
    expires_at   BIGINT NOT NULL
);
CREATE INDEX login_throttles_expiry ON login_throttles (expires_at);
CREATE INDEX login_throttles_user ON login_throttles (user_id);

-- Locks that failed passwords set are no longer kept on the account: `locked_until` is an
-- administrator's alone from now on.
UPDATE user_security SET locked_until = NULL, lock_reason = NULL
    WHERE lock_reason = 'too many failed attempts';

-- The session a person chose on the account-choice page of a parked authorization request:
-- it answers `prompt=select_account`, and nothing else (a fresh login stays in
-- `login_session_id`).
ALTER TABLE authorization_requests ADD COLUMN selected_session_id TEXT;

-- The session that replaced this one in the same browser (a new sign-in there): a logout
-- hint naming the old session still speaks for that browser.
ALTER TABLE sessions ADD COLUMN replaced_by TEXT;

-- Bumped whenever a client's credentials, scope or grant types change: its client-credentials
-- tokens carry the epoch they were issued under and stop when it moves.
ALTER TABLE clients ADD COLUMN token_epoch BIGINT NOT NULL DEFAULT 0;
