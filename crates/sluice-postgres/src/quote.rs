//! The PostgreSQL identifier-quoting helper (defined once, in sluice-core, beside MySQL's).

pub use sluice_core::quote::pg::{ident, literal, qualified};
