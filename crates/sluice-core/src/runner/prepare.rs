//! Preparing a part: the plan's decisions (crate::plan::prepare) for the engine's target.

use super::*;
pub(super) use crate::plan::prepare::irreversible_error;
pub use crate::plan::prepare::{prepare_for, prepare_for_in, prepare_split, Bracket, PreparedPart};

pub fn prepare(
    engine: &dyn Engine,
    m: &Migration,
    dir: Direction,
    safe: bool,
) -> Result<PreparedPart> {
    prepare_for(engine.target(), m, dir, safe)
}

/// [`prepare`] for a migration of a run whose earlier migrations created `run_tables`: statements
/// on those run as written (see [`crate::analysis::RunTables`]).
pub fn prepare_in(
    engine: &dyn Engine,
    m: &Migration,
    dir: Direction,
    safe: bool,
    run_tables: &[crate::analysis::ir::QName],
) -> Result<PreparedPart> {
    prepare_for_in(engine.target(), m, dir, safe, run_tables)
}
