//! `identifier-too-long`: NOT WRITTEN YET (group B).

use super::prelude::*;

pub const RULE: Rule = Rule {
    id: "identifier-too-long",
    severity: Severity::Warning,
    engines: Engines::All,
    summary: "TODO",
    why: "TODO",
    safe: "TODO",
    check,
};

fn check(_st: &Stmt, _ctx: &Ctx, _out: &mut Vec<Hit>) {}
