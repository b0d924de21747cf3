//! PostgreSQL engine for sluice.

pub mod quote;
pub mod schema;
