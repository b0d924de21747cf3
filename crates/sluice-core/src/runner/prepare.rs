//! Preparing a part: the plan's decisions (crate::plan::prepare) for the engine's target.

use super::*;
pub(super) use crate::plan::prepare::irreversible_error;
pub use crate::plan::prepare::{prepare_for, prepare_split, PreparedPart};

pub fn prepare(
    engine: &dyn Engine,
    m: &Migration,
    dir: Direction,
    safe: bool,
) -> Result<PreparedPart> {
    prepare_for(engine.target(), m, dir, safe)
}
