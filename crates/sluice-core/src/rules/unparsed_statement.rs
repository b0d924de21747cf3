//! `unparsed-statement`: a statement sluice cannot read. Never a crash, never silently skipped.

use super::prelude::*;

pub const RULE: Rule = Rule {
    id: "unparsed-statement",
    severity: Severity::Warning,
    engines: Engines::All,
    summary: "a statement sluice's parser does not understand",
    why: "sluice cannot tell which lock it takes or whether it rewrites the table, so it cannot vouch for it",
    safe: "-- Check the statement by hand, then suppress with:\n-- sluice:ignore unparsed-statement <why it is safe>",
    check,
};

fn check(st: &Stmt, ctx: &Ctx, out: &mut Vec<Hit>) {
    if let Parsed::Unparsed { error } = &st.parsed {
        out.push(Hit::new(format!(
            "not understood: {error}; planned as the strongest lock its statement kind can take"
        )));
        return;
    }
    // Parsed, but of a kind the planner has no lock for: the same doubt, the same finding.
    if ctx.target.engine == crate::target::EngineKind::Postgres
        && st.actions().iter().any(|a| matches!(a, Action::Other))
        && crate::plan::other::pg_by_words(&st.sql).note == crate::plan::other::NOT_UNDERSTOOD
    {
        out.push(Hit::new(
            "not understood: sluice has no lock or rewrite model for this statement; planned as the strongest lock its statement kind can take",
        ));
    }
}
