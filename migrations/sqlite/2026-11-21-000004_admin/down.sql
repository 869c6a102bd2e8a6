DROP INDEX users_status;
ALTER TABLE users DROP COLUMN kind;
ALTER TABLE users DROP COLUMN deleted_at;
DROP INDEX outbox_topic;
ALTER TABLE outbox DROP COLUMN topic;
DROP TABLE api_keys;
DROP TABLE webhooks;
DROP TABLE audit_logs;
