//! `drop-table`: `DROP TABLE` of a table not created in the same part. Warning (data loss and
//! compatibility); `CASCADE` (PostgreSQL) gets a sharper message: it also drops the foreign keys of
//! other tables that reference it and the views that use it.

use super::prelude::*;
use super::require_lock_timeout::name_sql;
use sqlparser::ast::Statement;

pub const RULE: Rule = Rule {
    id: "drop-table",
    severity: Severity::Warning,
    engines: Engines::All,
    summary: "drops an existing table",
    why: "its data is lost (recoverable only from a backup), and every running instance of code that still \
          uses the table fails. Drop a table only after a deploy in which no code uses it; renaming it away \
          first (e.g. to t_deprecated) for a release makes a forgotten reader fail loudly but reversibly",
    safe: "-- 1. deploy code that no longer uses the table\n\
           -- 2. optionally, a release earlier: ALTER TABLE t RENAME TO t_deprecated;\n\
           -- 3. then, in a later migration:\nDROP TABLE t;",
    check,
};

fn check(st: &Stmt, ctx: &Ctx, out: &mut Vec<Hit>) {
    for a in st.actions() {
        let Action::DropTable { names, cascade } = a else {
            continue;
        };
        // MySQL DROP TEMPORARY TABLE: a session's own table, nothing shared is lost.
        if matches!(
            st.ast.as_deref(),
            Some(Statement::Drop {
                temporary: true,
                ..
            })
        ) {
            continue;
        }
        let old: Vec<&QName> = names.iter().filter(|n| !ctx.is_new_table(n)).collect();
        if old.is_empty() {
            continue;
        }
        let list = old
            .iter()
            .map(|n| format!("`{n}`"))
            .collect::<Vec<_>>()
            .join(", ");
        let mut msg = format!(
            "drops {list}: the data is lost and running code that still uses {} fails",
            if old.len() == 1 { "it" } else { "them" }
        );
        if *cascade {
            msg.push_str(
                "; CASCADE also drops the foreign keys of other tables that reference it and every view that uses it, \
                 without listing them",
            );
        }
        let plain = old
            .iter()
            .map(|n| name_sql(ctx.target.engine, n))
            .collect::<Vec<_>>()
            .join(", ");
        out.push(Hit::new(msg).help(format!(
            "-- first deploy code that no longer uses {plain}, then:\nDROP TABLE {plain};{}",
            if *cascade {
                "  -- without CASCADE: drop dependent foreign keys and views explicitly, so the migration says what goes"
            } else {
                ""
            }
        )));
    }
}
