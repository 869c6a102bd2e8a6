//! Accounts: users and their passwords.

pub mod passwords;
pub mod users;
