//! A minimal SMTP server on loopback that records the messages it receives.
