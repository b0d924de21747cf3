//! `drop-column`: `ALTER TABLE ... DROP COLUMN` on an existing column of an existing table.
//!
//! Warning (data loss and compatibility): the data is gone and running code that still names the
//! column fails. PostgreSQL only marks the column dropped (no rewrite); MariaDB 10.4+ and MySQL
//! 8.0.29+ drop it INSTANT (verified on MariaDB 10.11); older versions rebuild the table, which the
//! message says. `CASCADE` (PostgreSQL) also drops the views, indexes and constraints that use the
//! column. Exempt: tables created and columns added earlier in the same part.

use super::prelude::*;
use super::require_lock_timeout::{ident_sql, name_sql};

pub const RULE: Rule = Rule {
    id: "drop-column",
    severity: Severity::Warning,
    engines: Engines::All,
    summary: "drops a column of an existing table",
    why: "its data is lost, and every running instance of code that still reads or writes the column fails \
          (an ORM that lists every mapped column in its SELECT and INSERT, a report query). Drop a column only \
          after a deploy in which no code uses it any more",
    safe: "-- 1. deploy code that no longer reads or writes the column (ORMs: mark it ignored)\n\
           -- 2. then, in a later migration:\nALTER TABLE t DROP COLUMN c;",
    check,
};

fn check(st: &Stmt, ctx: &Ctx, out: &mut Vec<Hit>) {
    for a in st.actions() {
        let Action::DropColumn { table, column, .. } = a else {
            continue;
        };
        if ctx.is_new_table(table) || ctx.is_new_column(table, column) {
            continue;
        }
        let mut msg = format!(
            "drops `{table}`.`{column}`: its data is lost and running code that still uses `{column}` fails"
        );
        if st.drops_column_with_cascade() {
            msg.push_str(
                "; CASCADE also drops every view, index and constraint that depends on it, without listing them",
            );
        }
        let t = ctx.target;
        let rebuilds = match t.engine {
            EngineKind::MariaDb => !t.at_least(10, 4),
            EngineKind::MySql => !super::mysql_table_rebuild::mysql_at_least(t, 8, 0, 29),
            EngineKind::Postgres => false,
        };
        if rebuilds {
            msg.push_str(&format!(
                "; on {t} it also rebuilds the table (no INSTANT DROP COLUMN before {})",
                if t.engine == EngineKind::MariaDb {
                    "MariaDB 10.4"
                } else {
                    "MySQL 8.0.29"
                }
            ));
        }
        let (tq, cq) = (name_sql(t.engine, table), ident_sql(t.engine, column));
        out.push(Hit::new(msg).help(format!(
            "-- first deploy code that no longer uses `{column}`, then:\nALTER TABLE {tq} DROP COLUMN {cq};\n\
             -- and record it: -- sluice:ignore drop-column <no code uses it since release X>"
        )));
    }
}
