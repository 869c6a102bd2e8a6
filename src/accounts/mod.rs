//! Accounts: users and their passwords.

pub mod api_keys;
pub mod devices;
pub mod first_party;
pub mod login;
pub mod mfa;
pub mod pages;
pub mod passwords;
pub mod policy;
pub mod profile;
pub mod recovery;
pub mod turns;
pub mod users;
