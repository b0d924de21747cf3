//! `add-serial-or-identity`: NOT WRITTEN YET (group B).

use super::prelude::*;

pub const RULE: Rule = Rule {
    id: "add-serial-or-identity",
    severity: Severity::Warning,
    engines: Engines::All,
    summary: "TODO",
    why: "TODO",
    safe: "TODO",
    check,
};

fn check(_st: &Stmt, _ctx: &Ctx, _out: &mut Vec<Hit>) {}
