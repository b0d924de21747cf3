//! Engine-neutral core of sluice: migration files, SQL statement splitting, the schema model and its
//! diff, the history model, and the runner that drives any [`engine::Engine`].
//!
//! Nothing in this crate talks to a database directly; the engine crates implement [`engine::Engine`].

pub mod analysis;
pub mod config;
pub mod dburl;
pub mod engine;
pub mod error;
pub mod history;
pub mod migration;
pub mod plan;
pub mod planfile;
pub mod privileges;
pub mod quote;
pub mod redact;
pub mod rules;
pub mod runner;
pub mod schema;
pub mod sql;
pub mod target;

pub use error::{Error, Result};

/// The version of sluice recorded in the history.
pub const SLUICE_VERSION: &str = env!("CARGO_PKG_VERSION");
