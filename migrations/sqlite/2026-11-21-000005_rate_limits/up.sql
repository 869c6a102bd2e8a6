-- Rate-limit counters shared by every instance (used on PostgreSQL, or when configured):
-- one row per key (a keyed hash of the rule and the client) and fixed window.
CREATE TABLE rate_limit_counters (
    key          TEXT NOT NULL,
    window_start BIGINT NOT NULL,
    hits         INTEGER NOT NULL,
    expires_at   BIGINT NOT NULL,
    PRIMARY KEY (key, window_start)
);
CREATE INDEX rate_limit_counters_expiry ON rate_limit_counters (expires_at);
