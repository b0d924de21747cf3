//! `mysql-lock-option`: NOT WRITTEN YET (group C).

use super::prelude::*;

pub const RULE: Rule = Rule {
    id: "mysql-lock-option",
    severity: Severity::Warning,
    engines: Engines::All,
    summary: "TODO",
    why: "TODO",
    safe: "TODO",
    check,
};

fn check(_st: &Stmt, _ctx: &Ctx, _out: &mut Vec<Hit>) {}
