//! `exclude-constraint` (PostgreSQL): ADD EXCLUDE on an existing table.
//!
//! Verified on PostgreSQL 15: `ALTER TABLE t ADD CONSTRAINT ex EXCLUDE USING gist (r WITH &&)` on a
//! 2M-row table held ACCESS EXCLUSIVE (and SHARE) on `t` for the whole GiST build: 2 min 39 s during
//! which every read and write of `t` waited. An exclusion constraint has no concurrent form: it cannot
//! be NOT VALID and cannot be attached `USING INDEX` (only PRIMARY KEY / UNIQUE can).
//! Exempt: tables created earlier in the migration.

use super::prelude::*;

pub const RULE: Rule = Rule {
    id: "exclude-constraint",
    severity: Severity::Error,
    engines: Engines::Postgres,
    summary: "ADD EXCLUDE constraint on an existing table",
    why: "the exclusion constraint's index is built inside the ALTER TABLE under an ACCESS EXCLUSIVE lock: \
          every read and write of the table waits for the whole build (minutes for a GiST index on a large \
          table), and there is no concurrent form: EXCLUDE cannot be NOT VALID nor added USING INDEX",
    safe: "-- no online form: either accept the lock at a quiet time, with a lock timeout,\n\
           SET lock_timeout = '2s';\n\
           ALTER TABLE t ADD CONSTRAINT t_no_overlap EXCLUDE USING gist (room WITH =, during WITH &&);\n\
           -- or create a new table that has the constraint, backfill it, and swap the names",
    check,
};

fn check(st: &Stmt, ctx: &Ctx, out: &mut Vec<Hit>) {
    for a in st.actions() {
        let Action::AddConstraint { table, constraint } = a else {
            continue;
        };
        if constraint.kind != ConstraintKind::Exclude || ctx.is_new_table(table) {
            continue;
        }
        let name = constraint
            .name
            .as_ref()
            .map(|n| format!(" `{n}`"))
            .unwrap_or_default();
        let size = match ctx.table_stats(table) {
            Some(s) => format!(" ({} rows)", s.rows),
            None => String::new(),
        };
        out.push(
            Hit::new(format!(
                "EXCLUDE constraint{name} on `{table}`{size} builds its index under an ACCESS EXCLUSIVE lock: \
                 reads and writes of `{table}` wait for the whole build, and it cannot be built concurrently"
            ))
            .help(format!(
                "-- no online form for EXCLUDE: run it at a quiet time with a lock timeout,\n\
                 SET lock_timeout = '2s';\n\
                 {};\n\
                 -- or build a new table that has the constraint, backfill it, and swap the names",
                st.sql.trim().trim_end_matches(';')
            )),
        );
    }
}
