-- Administration: the audit log, webhooks, API keys of service accounts, soft deletion, and
-- the topic of outbox messages (so deliveries can be listed per webhook or per client).
--
-- audit_logs: every admin write and security event (seed 001's model); old and new values are
--             JSON with secrets redacted. Ids are UUIDv7, so they sort by time.
-- webhooks:   subscriptions to events; the secret is sealed; a webhook failing 20 times in a
--             row is disabled with the reason.
-- api_keys:   long-lived credentials of service accounts, stored as keyed hashes; each mints
--             access tokens under its own grant, so revoking the key revokes them at once.

CREATE TABLE audit_logs (
    id              TEXT PRIMARY KEY NOT NULL,
    actor_id        TEXT,
    actor_email     TEXT,
    action          TEXT NOT NULL,
    resource        TEXT NOT NULL,
    resource_id     TEXT,
    old_values      TEXT,
    new_values      TEXT,
    ip_address      TEXT,
    user_agent      TEXT,
    request_id      TEXT,
    additional_info TEXT,
    created_at      BIGINT NOT NULL
);
CREATE INDEX audit_logs_created ON audit_logs (created_at);
CREATE INDEX audit_logs_actor ON audit_logs (actor_id, created_at);
CREATE INDEX audit_logs_action ON audit_logs (action, created_at);
CREATE INDEX audit_logs_resource ON audit_logs (resource, resource_id);

CREATE TABLE webhooks (
    id                   TEXT PRIMARY KEY NOT NULL,
    url                  TEXT NOT NULL,
    events               TEXT NOT NULL,
    secret               TEXT NOT NULL,
    active               BOOLEAN NOT NULL DEFAULT TRUE,
    description          TEXT,
    consecutive_failures INTEGER NOT NULL DEFAULT 0,
    disabled_reason      TEXT,
    last_delivery_at     BIGINT,
    last_success_at      BIGINT,
    created_by           TEXT,
    created_at           BIGINT NOT NULL,
    updated_at           BIGINT NOT NULL
);

CREATE TABLE api_keys (
    id           TEXT PRIMARY KEY NOT NULL,
    name         TEXT NOT NULL,
    key_hash     TEXT NOT NULL UNIQUE,
    key_prefix   TEXT NOT NULL,
    user_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    grant_id     TEXT NOT NULL REFERENCES grants (id) ON DELETE CASCADE,
    scopes       TEXT NOT NULL,
    created_by   TEXT,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT,
    last_used_at BIGINT,
    revoked_at   BIGINT
);
CREATE INDEX api_keys_user ON api_keys (user_id);

ALTER TABLE outbox ADD COLUMN topic TEXT;
CREATE INDEX outbox_topic ON outbox (topic, created_at);

ALTER TABLE users ADD COLUMN deleted_at BIGINT;
ALTER TABLE users ADD COLUMN kind TEXT NOT NULL DEFAULT 'person';
CREATE INDEX users_status ON users (status);
