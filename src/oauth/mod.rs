//! OAuth 2.0: clients (and, as they land, the grants, revocation and introspection).

pub mod clients;
