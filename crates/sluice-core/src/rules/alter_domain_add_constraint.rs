//! `alter-domain-add-constraint` (PostgreSQL): `ALTER DOMAIN d ADD CONSTRAINT ...` without NOT VALID.
//!
//! Verified on PostgreSQL 15: the ADD checks every column of type `d` in every table, holding a SHARE lock
//! on each such table during its scan (writes wait, reads continue). `ADD CONSTRAINT ... CHECK (...) NOT
//! VALID` takes no table lock at all and applies to new values at once. `ALTER DOMAIN d VALIDATE
//! CONSTRAINT` then scans under the same SHARE lock: it was lowered to SHARE UPDATE EXCLUSIVE only after
//! PostgreSQL 18 (commit 16a0039dc), so the help says to run it on its own, at a quiet time.
//! Only CHECK constraints can be NOT VALID on a domain; a `NOT NULL` domain constraint is written as
//! `CHECK (VALUE IS NOT NULL)` in the help.
//! sqlparser does not parse ALTER DOMAIN: the keyword fallback gives `AlterDomainAddConstraint`.
//! Exempt: a domain created earlier in the migration (the only columns of it are in this migration).
//! Not covered: `ALTER DOMAIN d SET NOT NULL` (same scan; the IR does not classify it, so
//! `unparsed-statement` reports it).

use super::prelude::*;
use super::require_concurrent_reindex::{ident_sql, kw, name_at, qname_sql, toks};

pub const RULE: Rule = Rule {
    id: "alter-domain-add-constraint",
    severity: Severity::Error,
    engines: Engines::Postgres,
    summary: "ALTER DOMAIN ... ADD CONSTRAINT without NOT VALID",
    why: "PostgreSQL checks the new constraint against every column of that domain in every table, holding a \
          SHARE lock on each such table while it scans it: INSERT, UPDATE and DELETE on those tables wait",
    safe: "ALTER DOMAIN positive_amount ADD CONSTRAINT positive_amount_check CHECK (VALUE > 0) NOT VALID;\n\
           -- later, in its own migration at a quiet time (it still takes a SHARE lock per table while it scans):\n\
           ALTER DOMAIN positive_amount VALIDATE CONSTRAINT positive_amount_check;",
    check,
};

/// The domain an `ALTER DOMAIN` / `CREATE DOMAIN` statement names.
fn domain_name(st: &Stmt) -> Option<QName> {
    let t = toks(&st.sql);
    if !matches!(kw(&t, 0), "ALTER" | "CREATE") || kw(&t, 1) != "DOMAIN" {
        return None;
    }
    let i = if kw(&t, 2) == "IF" { 4 } else { 2 };
    name_at(&t, i).map(|(n, _)| n)
}

fn check(st: &Stmt, ctx: &Ctx, out: &mut Vec<Hit>) {
    let adds = st
        .actions()
        .iter()
        .any(|a| matches!(a, Action::AlterDomainAddConstraint { not_valid: false }));
    if !adds {
        return;
    }
    // Words, not the keyword fallback's substring test: an `ADD` clause (not `VALIDATE CONSTRAINT` of a
    // domain whose name contains "add") without `NOT VALID`.
    let t = toks(&st.sql);
    let Some(add) = t.iter().position(|x| x.kw == "ADD" && x.depth == 0) else {
        return;
    };
    if (1..t.len()).any(|i| t[i - 1].kw == "NOT" && t[i].kw == "VALID") {
        return;
    }
    let domain = domain_name(st);
    if let Some(d) = &domain {
        let created_here = ctx.statements.iter().take(st.index).any(|s| {
            s.actions()
                .iter()
                .any(|a| matches!(a, Action::CreateDomain { .. }))
                && domain_name(s).is_some_and(|n| n.matches(d))
        });
        if created_here {
            return;
        }
    }
    let d = domain
        .as_ref()
        .map(QName::display)
        .unwrap_or_else(|| "d".into());
    let dq = domain.as_ref().map(qname_sql).unwrap_or_else(|| "d".into());
    // The constraint name and its body, from `ADD [CONSTRAINT name] body`.
    let (cname, body_start) = if kw(&t, add + 1) == "CONSTRAINT" {
        (t.get(add + 2).and_then(|x| x.ident.clone()), add + 3)
    } else {
        (None, add + 1)
    };
    let is_check = kw(&t, body_start) == "CHECK";
    let cname = ident_sql(&cname.unwrap_or_else(|| {
        let base = domain
            .as_ref()
            .map(|q| q.name.clone())
            .unwrap_or_else(|| "d".into());
        format!("{base}_check")
    }));
    let first = if is_check {
        let sql = st.sql.trim().trim_end_matches(';').trim_end();
        // Name the constraint explicitly so the VALIDATE below can refer to it.
        if kw(&t, add + 1) == "CONSTRAINT" {
            format!("{sql} NOT VALID;")
        } else {
            format!(
                "ALTER DOMAIN {dq} ADD CONSTRAINT {cname} {} NOT VALID;",
                sql_after_add(&st.sql).unwrap_or("CHECK (VALUE IS NOT NULL)")
            )
        }
    } else {
        format!("ALTER DOMAIN {dq} ADD CONSTRAINT {cname} CHECK (VALUE IS NOT NULL) NOT VALID;  -- a NOT NULL constraint cannot be NOT VALID, this CHECK can")
    };
    out.push(
        Hit::new(format!(
            "ALTER DOMAIN `{d}` ADD CONSTRAINT checks every column of type `{d}` in every table, holding a \
             SHARE lock on each of those tables while it scans it: their writes wait"
        ))
        .help(format!(
            "{first}\n-- the ADD ... NOT VALID is instant and takes no table lock; new values are checked from now on\n\
             -- later, in its own migration at a quiet time (through PostgreSQL 18 it still takes a SHARE\n\
             -- lock on each table while it scans, so writes wait during the scan):\n\
             ALTER DOMAIN {dq} VALIDATE CONSTRAINT {cname};"
        )),
    );
}

/// The text after the top-level `ADD` keyword of an ALTER DOMAIN statement.
fn sql_after_add(sql: &str) -> Option<&str> {
    let upper = sql.to_ascii_uppercase();
    let p = upper.find(" ADD ")?;
    Some(sql[p + 5..].trim().trim_end_matches(';').trim_end())
}
