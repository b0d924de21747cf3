//! `unused-ignore`: a `-- sluice:ignore` that suppresses nothing. Reported by the lint driver itself
//! (it needs every other rule's result); this entry documents it.

use super::prelude::*;

pub const RULE: Rule = Rule {
    id: "unused-ignore",
    severity: Severity::Warning,
    engines: Engines::All,
    summary: "a `-- sluice:ignore <rule>` comment that matches no finding on the next statement, or names no rule",
    why: "a stale suppression hides nothing today and may hide a real hazard after the next edit",
    safe: "-- Remove the comment, or put it on the line right before the statement it is about.",
    check,
};

fn check(_st: &Stmt, _ctx: &Ctx, _out: &mut Vec<Hit>) {}
