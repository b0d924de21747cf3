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

fn check(st: &Stmt, _ctx: &Ctx, out: &mut Vec<Hit>) {
    if let Parsed::Unparsed { error } = &st.parsed {
        out.push(Hit::new(format!("not understood: {error}")));
    }
}
