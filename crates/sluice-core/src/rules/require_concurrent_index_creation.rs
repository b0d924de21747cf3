//! `require-concurrent-index-creation`: CREATE INDEX without CONCURRENTLY on an existing table.

use super::prelude::*;

pub const RULE: Rule = Rule {
    id: "require-concurrent-index-creation",
    severity: Severity::Error,
    engines: Engines::Postgres,
    summary: "CREATE INDEX without CONCURRENTLY on a table that already exists",
    why: "takes a SHARE lock for the whole index build: every INSERT, UPDATE and DELETE on the table waits \
          until the build finishes (seconds to hours on a large table); reads continue",
    safe: "CREATE INDEX CONCURRENTLY IF NOT EXISTS idx ON t (col);  -- outside a transaction block",
    check,
};

fn check(st: &Stmt, ctx: &Ctx, out: &mut Vec<Hit>) {
    for a in st.actions() {
        if let Action::CreateIndex {
            name,
            table,
            unique,
            concurrently: false,
            columns,
            ..
        } = a
        {
            if ctx.is_new_table(table) {
                continue;
            }
            let idx = name.clone().unwrap_or_else(|| "idx".into());
            out.push(
                Hit::new(format!(
                    "CREATE {}INDEX on `{table}` blocks writes to it until the index is built",
                    if *unique { "UNIQUE " } else { "" }
                ))
                .help(format!(
                    "CREATE {}INDEX CONCURRENTLY IF NOT EXISTS {idx} ON {table} ({});",
                    if *unique { "UNIQUE " } else { "" },
                    columns.join(", ")
                )),
            );
        }
    }
}
