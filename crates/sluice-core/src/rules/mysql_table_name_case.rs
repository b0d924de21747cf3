//! `mysql-table-name-case`: a MariaDB/MySQL statement names a table the history created in
//! another letter case (`CREATE TABLE orders`, later `ALTER TABLE Orders`).
//!
//! The server decides what that means, through `lower_case_table_names`: with 0 (the Linux
//! default) table names are case-sensitive and `Orders` is another table (the ALTER fails, or
//! changes a different table), with 1 or 2 (Windows, macOS, some managed MySQL) it is the same
//! table. Offline, lint cannot know the setting: it says so on the statement rather than guess,
//! and judges the statement's other rules as on the name as written (a table of its own: with 0
//! it is not the one the history created, so no exemption for a new table is given).
//! Warning: the result depends on the server, which is a hazard in itself (a history applied to
//! two servers with different settings ends differently). PostgreSQL folds unquoted names to
//! lower case itself: not reported there.

use super::prelude::*;

pub const RULE: Rule = Rule {
    id: "mysql-table-name-case",
    severity: Severity::Warning,
    engines: Engines::MySqlFamily,
    summary: "names a table the migrations create in another letter case (`orders` vs `Orders`)",
    why: "whether the two names are one table is the server's lower_case_table_names setting: with 0 (the Linux default) \
          `Orders` is another table than `orders` (the statement fails, or changes a different table), with 1 or 2 it is \
          the same one, so one history gives different schemas on different servers",
    safe: "-- write the name exactly as the CREATE TABLE wrote it:\n\
           CREATE TABLE orders (id BIGINT PRIMARY KEY);\n\
           ALTER TABLE orders ADD COLUMN note VARCHAR(20);",
    check,
};

fn names(a: &Action) -> Vec<&QName> {
    match a {
        Action::RenameTable { from, to } => vec![from, to],
        Action::DropTable { names, .. } => names.iter().collect(),
        Action::Truncate { tables, .. } => tables.iter().collect(),
        Action::CreateTable { table, .. }
        | Action::CreateIndex { table, .. }
        | Action::AddColumn { table, .. }
        | Action::DropColumn { table, .. }
        | Action::AlterColumnType { table, .. }
        | Action::SetNotNull { table, .. }
        | Action::DropNotNull { table, .. }
        | Action::SetDefault { table, .. }
        | Action::DropDefault { table, .. }
        | Action::AddConstraint { table, .. }
        | Action::DropConstraint { table, .. }
        | Action::DropKey { table, .. }
        | Action::RenameColumn { table, .. } => vec![table],
        _ => vec![],
    }
}

fn same_schema(a: &QName, b: &QName) -> bool {
    match (&a.schema, &b.schema) {
        (Some(x), Some(y)) => x.eq_ignore_ascii_case(y),
        _ => true,
    }
}

fn check(st: &Stmt, ctx: &Ctx, out: &mut Vec<Hit>) {
    if ctx.is_postgres() {
        return;
    }
    let known: Vec<&QName> = ctx.created_tables.iter().chain(ctx.run_tables).collect();
    let mut said: Vec<String> = Vec::new();
    for a in st.actions() {
        for t in names(a) {
            if known.iter().any(|k| k.matches(t)) || said.contains(&t.name) {
                continue;
            }
            // Tables of this part and the run, else of the earlier migrations (whose columns
            // lint has learnt, offline too) or the live schema.
            let other = known
                .iter()
                .find(|k| same_schema(k, t) && k.name.to_lowercase() == t.name.to_lowercase())
                .map(|k| k.name.as_str())
                .or_else(|| ctx.column_types.table_in_other_case(&t.name));
            let Some(other) = other else {
                continue;
            };
            said.push(t.name.clone());
            out.push(
                Hit::new(format!(
                    "`{}` differs only in letter case from `{}`, which the migrations create: with lower_case_table_names=0 (the Linux default) it is another table (this statement fails, or changes a different table), with 1 or 2 the same one; lint judges it as written, as another table",
                    t.name, other
                ))
                .help(format!(
                    "-- write it as created: `{other}`"
                )),
            );
        }
    }
}
