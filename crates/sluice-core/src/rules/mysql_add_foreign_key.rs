//! `mysql-add-foreign-key` (MariaDB/MySQL): ADD FOREIGN KEY on an existing table while
//! `foreign_key_checks` is on, which runs with ALGORITHM=COPY.
//!
//! Verified on MariaDB 10.11: with foreign_key_checks=1 only ALGORITHM=COPY is accepted (writes blocked for
//! the whole copy); after `SET foreign_key_checks = 0` the same ADD FOREIGN KEY runs INSTANT when an index on
//! the column exists, NOCOPY (in place, building the index) otherwise. The price of that path: existing rows
//! are not checked, so orphans must be ruled out by a query first. Covered: `ADD [CONSTRAINT] FOREIGN KEY`,
//! and inline `ADD COLUMN ... REFERENCES` where it creates a key (MariaDB 10.5+, verified on 10.11; MySQL
//! 9.0+ — MySQL 8 silently ignores inline REFERENCES). `SET [SESSION] foreign_key_checks = 0|OFF` earlier in
//! the part (and not switched back on) silences the rule.

use super::prelude::*;
use super::require_lock_timeout::{ident_sql, name_sql, normalize_var};
use sqlparser::ast::{self, AlterTableOperation, ColumnOption, Statement, TableConstraint};

pub const RULE: Rule = Rule {
    id: "mysql-add-foreign-key",
    severity: Severity::Error,
    engines: Engines::MySqlFamily,
    summary: "ADD FOREIGN KEY on an existing table with foreign_key_checks on (ALGORITHM=COPY)",
    why: "with foreign_key_checks on, InnoDB can add a foreign key only by copying the table (ALGORITHM=COPY), \
          checking every row on the way: every write waits for the whole copy. With foreign_key_checks = 0 it is \
          added in place (instant when the column is already indexed), but existing rows are not checked",
    safe: "SELECT COUNT(*) FROM child c LEFT JOIN parent p ON p.id = c.parent_id\n  WHERE c.parent_id IS NOT NULL AND p.id IS NULL;  -- must be 0\n\
           SET foreign_key_checks = 0;\n\
           ALTER TABLE child ADD CONSTRAINT child_parent_fk FOREIGN KEY (parent_id) REFERENCES parent (id), ALGORITHM=INPLACE, LOCK=NONE;\n\
           SET foreign_key_checks = 1;",
    check,
};

/// Whether `foreign_key_checks` is off for statement `before`, from the SETs before it in the part.
fn checks_off(ctx: &Ctx, before: usize) -> bool {
    let mut off = false;
    for s in &ctx.statements[..before] {
        let Some(ast_stmt) = s.ast.as_deref() else {
            continue;
        };
        let pairs = crate::analysis::ir::set_assignments(ast_stmt);
        for (scope, name, value) in pairs {
            let (name, global) = normalize_var(&name);
            if global
                || matches!(scope, Some(ast::ContextModifier::Global))
                || name != "foreign_key_checks"
            {
                continue;
            }
            let v = value.trim_matches('\'').to_ascii_uppercase();
            off = matches!(v.as_str(), "0" | "OFF" | "FALSE");
        }
    }
    off
}

/// A FOREIGN KEY clause of the statement, as SQL pieces for the help.
struct FkSql {
    columns: String,
    parent: String,
    parent_columns: String,
    name: Option<String>,
    /// `c TYPE` when the key comes from an inline REFERENCES of a new column without a default
    /// (all NULL: nothing to check).
    new_column: Option<String>,
}

fn fk_sql(st: &Stmt, inline: bool) -> Vec<FkSql> {
    let Some(Statement::AlterTable(at)) = st.ast.as_deref() else {
        return vec![];
    };
    at.operations
        .iter()
        .filter_map(|o| match o {
            AlterTableOperation::AddConstraint {
                constraint: TableConstraint::ForeignKey(fk),
                ..
            } => Some(FkSql {
                columns: fk
                    .columns
                    .iter()
                    .map(|c| c.to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
                parent: fk.foreign_table.to_string(),
                parent_columns: fk
                    .referred_columns
                    .iter()
                    .map(|c| c.to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
                name: fk.name.as_ref().map(|n| n.to_string()),
                new_column: None,
            }),
            AlterTableOperation::AddColumn { column_def, .. } if inline => {
                column_def.options.iter().find_map(|o| match &o.option {
                    ColumnOption::ForeignKey(fk) => Some(FkSql {
                        columns: column_def.name.to_string(),
                        parent: fk.foreign_table.to_string(),
                        parent_columns: fk
                            .referred_columns
                            .iter()
                            .map(|c| c.to_string())
                            .collect::<Vec<_>>()
                            .join(", "),
                        name: None,
                        new_column: Some(format!("{} {}", column_def.name, column_def.data_type))
                            .filter(|_| {
                                !column_def
                                    .options
                                    .iter()
                                    .any(|o| matches!(o.option, ColumnOption::Default(_)))
                            }),
                    }),
                    _ => None,
                })
            }
            _ => None,
        })
        .collect()
}

fn check(st: &Stmt, ctx: &Ctx, out: &mut Vec<Hit>) {
    let t = ctx.target;
    let inline_creates_fk = match t.engine {
        EngineKind::MariaDb => t.at_least(10, 5),
        EngineKind::MySql => t.major >= 9,
        EngineKind::Postgres => false,
    };
    let mut tables: Vec<&QName> = Vec::new();
    for a in st.actions() {
        match a {
            Action::AddConstraint { table, constraint }
                if constraint.kind == ConstraintKind::ForeignKey =>
            {
                tables.push(table)
            }
            Action::AddColumn { table, column, .. }
                if column.references.is_some() && inline_creates_fk =>
            {
                tables.push(table)
            }
            _ => {}
        }
    }
    let Some(table) = tables.into_iter().find(|t| !ctx.is_new_table(t)) else {
        return;
    };
    if checks_off(ctx, st.index) {
        return;
    }
    let fks = fk_sql(st, inline_creates_fk);
    let FkSql {
        columns: cols,
        parent,
        parent_columns: pcols,
        name,
        new_column,
    } = fks.into_iter().next().unwrap_or(FkSql {
        columns: "parent_id".into(),
        parent: "parent".into(),
        parent_columns: "id".into(),
        name: None,
        new_column: None,
    });
    let pcols = if pcols.is_empty() {
        "id".to_string()
    } else {
        pcols
    };
    let first_col = cols.split(", ").next().unwrap_or("parent_id").to_string();
    let first_pcol = pcols.split(", ").next().unwrap_or("id").to_string();
    let name = name.unwrap_or_else(|| {
        ident_sql(
            ctx.target.engine,
            &format!("{}_{}_fk", table.name, first_col.trim_matches('`')),
        )
    });
    let tq = name_sql(ctx.target.engine, table);
    out.push(
        Hit::new(format!(
            "adding a foreign key to `{table}` with foreign_key_checks on copies the table (ALGORITHM=COPY): every \
             write to `{table}` waits until the copy ends"
        ))
        .help(format!(
            "{}SET foreign_key_checks = 0;\n\
             ALTER TABLE {tq} ADD CONSTRAINT {name} FOREIGN KEY ({cols}) REFERENCES {parent} ({pcols}), ALGORITHM=INPLACE, LOCK=NONE;\n\
             SET foreign_key_checks = 1;",
            match &new_column {
                Some(c) => format!(
                    "ALTER TABLE {tq} ADD COLUMN {c}, ALGORITHM=INSTANT;  -- the column alone, instant\n\
                     -- it holds only NULLs, so no existing row can violate the key added unchecked below:\n"
                ),
                None => format!(
                    "SELECT COUNT(*) FROM {tq} c LEFT JOIN {parent} p ON p.{first_pcol} = c.{first_col}\n  \
                     WHERE c.{first_col} IS NOT NULL AND p.{first_pcol} IS NULL;  -- must be 0: existing rows are not checked below\n"
                ),
            }
        )),
    );
}
