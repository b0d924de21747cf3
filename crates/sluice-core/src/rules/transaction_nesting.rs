//! `transaction-nesting`: transaction control written into a migration (`BEGIN`, `START TRANSACTION`,
//! `COMMIT`, `END`, `ROLLBACK`, `ABORT`, `SAVEPOINT`, `RELEASE`).
//!
//! sluice opens and commits transactions itself (PostgreSQL: one per part, or one per statement
//! together with its progress record). `sluice up` runs a `BEGIN ... COMMIT` group as one
//! transaction with its progress record where it can run it faithfully and refuses the file
//! otherwise (`plan::prepare`); lint then lowers this finding to info. Each problem is reported once: a `BEGIN ... COMMIT` pair on its BEGIN, a
//! second BEGIN before the COMMIT on that BEGIN, a BEGIN never closed on the BEGIN, a COMMIT/ROLLBACK
//! without BEGIN on itself, a SAVEPOINT/RELEASE outside a BEGIN on itself. SAVEPOINTs inside a pair
//! are part of the pair's finding.

use super::prelude::*;

pub const RULE: Rule = Rule {
    id: "transaction-nesting",
    severity: Severity::Error,
    engines: Engines::All,
    summary: "BEGIN/COMMIT/ROLLBACK written in a migration, which sluice runs in transactions of its own",
    why: "sluice wraps each migration part itself (PostgreSQL: one transaction with its history record, or one \
          per statement; MariaDB/MySQL: statement by statement). `sluice up` runs a BEGIN ... COMMIT group \
          as one transaction with its progress record where it can run it faithfully, and refuses the file \
          otherwise. A stray COMMIT in the file would commit sluice's transaction halfway and break the \
          all-or-nothing guarantee; a BEGIN inside it only warns on PostgreSQL and implicitly commits on MySQL",
    safe: "-- remove BEGIN/COMMIT; choose the mode with a directive instead:\n\
           -- sluice:transaction single        (the whole part in one transaction, PostgreSQL)\n\
           -- sluice:transaction per-statement (each statement on its own)",
    check,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tc {
    Begin,
    End,
    Savepoint,
}

fn classify(st: &Stmt) -> Option<Tc> {
    let k: Vec<&str> = st.keywords.iter().map(String::as_str).collect();
    match k.as_slice() {
        ["BEGIN", "ATOMIC", ..] | ["BEGIN", "NOT", "ATOMIC", ..] => None,
        ["BEGIN", ..] | ["START", "TRANSACTION", ..] => Some(Tc::Begin),
        ["COMMIT" | "ROLLBACK", "PREPARED", ..] => Some(Tc::Savepoint),
        ["ROLLBACK", "TO", ..] | ["ROLLBACK", "WORK" | "TRANSACTION", "TO", ..] => {
            Some(Tc::Savepoint)
        }
        ["COMMIT" | "END" | "ROLLBACK" | "ABORT", ..] => Some(Tc::End),
        ["SAVEPOINT", ..] | ["RELEASE", ..] => Some(Tc::Savepoint),
        _ => None,
    }
}

fn first_line(st: &Stmt) -> String {
    st.sql.lines().next().unwrap_or("").trim().to_string()
}

/// Every problem of the part, as (statement index it is reported on, message).
fn problems(stmts: &[Stmt]) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut open: Option<usize> = None;
    for (i, st) in stmts.iter().enumerate() {
        match classify(st) {
            Some(Tc::Begin) => match open {
                None => open = Some(i),
                Some(b) => out.push((
                    i,
                    format!(
                        "`{}` inside the transaction opened at line {}: PostgreSQL ignores it with a \
                         warning, MySQL commits the open transaction; and `sluice up` refuses transaction \
                         control in a migration",
                        first_line(st),
                        stmts[b].line
                    ),
                )),
            },
            Some(Tc::End) => match open.take() {
                Some(b) => out.push((
                    b,
                    format!(
                        "`{}` ... `{}` (line {}): sluice already runs this part in a transaction of its own \
                         and `sluice up` refuses a migration that controls transactions; remove both",
                        first_line(&stmts[b]),
                        first_line(st),
                        st.line
                    ),
                )),
                None => out.push((
                    i,
                    format!(
                        "`{}` without a BEGIN: it would end the transaction sluice runs this part in; \
                         `sluice up` refuses a migration that controls transactions",
                        first_line(st)
                    ),
                )),
            },
            Some(Tc::Savepoint) if open.is_none() => out.push((
                i,
                format!(
                    "`{}`: `sluice up` refuses a migration that controls transactions",
                    first_line(st)
                ),
            )),
            _ => {}
        }
    }
    if let Some(b) = open {
        out.push((
            b,
            format!(
                "`{}` is never committed in this part: sluice manages the transaction itself and \
                 `sluice up` refuses a migration that controls transactions",
                first_line(&stmts[b])
            ),
        ));
    }
    out
}

fn check(st: &Stmt, ctx: &Ctx, out: &mut Vec<Hit>) {
    if classify(st).is_none() {
        return;
    }
    for (i, message) in problems(ctx.statements) {
        if i == st.index {
            out.push(Hit::new(message));
        }
    }
}
