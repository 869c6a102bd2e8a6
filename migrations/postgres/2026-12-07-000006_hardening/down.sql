ALTER TABLE clients DROP COLUMN token_epoch;
ALTER TABLE sessions DROP COLUMN replaced_by;
ALTER TABLE authorization_requests DROP COLUMN selected_session_id;
DROP TABLE login_throttles;
ALTER TABLE user_security DROP COLUMN mfa_locked_until;
ALTER TABLE user_security DROP COLUMN mfa_failed_window_start;
ALTER TABLE user_security DROP COLUMN mfa_failed_count;
