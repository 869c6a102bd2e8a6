//! Webhooks: signed event deliveries through the outbox.
