//! Mail delivery through the outbox: SMTP, the mail directory, retries and restarts.
