//! The JSON API of the contract (`/api/v1`) and the health endpoints: thin handlers over the
//! capability modules.

pub mod error;
pub mod health;
pub mod system;
