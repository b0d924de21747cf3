//! The statements `sluice up` runs in a safer form than written, today: index builds and drops on
//! PostgreSQL run CONCURRENTLY (reads and writes continue). Staged rewrites with a backfill come
//! with the executor; until then everything else runs as written under the lock discipline.

use crate::analysis::ir::{self, Action, QName};
use crate::sql::SqlStatement;
use crate::target::{EngineKind, Target};
use sqlparser::ast::{AlterTableOperation, Ident, ObjectType, Statement, TableConstraint};

/// A statement as sluice will run it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rewrite {
    pub sql: String,
    /// Shown to the user: what changed and why.
    pub note: String,
    /// An index this statement builds concurrently: a failed earlier attempt may have left it
    /// INVALID, and then it must be dropped and rebuilt rather than skipped by IF NOT EXISTS.
    pub builds_index: Option<String>,
    /// Steps that follow `sql`, each in a transaction of its own after the previous one commits
    /// (VALIDATE CONSTRAINT after ADD ... NOT VALID). The last one commits with the progress
    /// record; the earlier ones may already have run in an interrupted attempt, so each is safe to
    /// run again (or fails with "already exists", which a resume accepts).
    pub then: Vec<Step>,
}

/// A step after the first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Sql(String),
    /// Fill existing rows in checkpointed batches (resumable on its own).
    Backfill {
        table: String,
        set: String,
        filter: Option<String>,
    },
}

impl Step {
    pub fn sql(&self) -> Option<&str> {
        match self {
            Step::Sql(s) => Some(s),
            Step::Backfill { .. } => None,
        }
    }
}

/// The safer form of each statement of a part, or None where it runs as written.
pub fn rewrite_part(target: Target, statements: &[SqlStatement]) -> Vec<Option<Rewrite>> {
    let mut created: Vec<QName> = Vec::new();
    statements
        .iter()
        .map(|s| {
            let st = ir::build(target.engine, 0, s, 0, &s.sql);
            let out = if target.engine == EngineKind::Postgres {
                rewrite_pg(target, &st, &created)
            } else {
                None
            };
            for a in st.actions() {
                if let Action::CreateTable { table, .. } = a {
                    created.push(table.clone());
                }
            }
            out
        })
        .collect()
}

/// ADD COLUMN with a default the server would evaluate per row (a rewrite under ACCESS EXCLUSIVE),
/// or any default before PostgreSQL 11; NOT NULL is fine then since the backfill fills every row.
fn needs_backfill(target: Target, column: &ir::ColumnSpec) -> bool {
    let Some(d) = &column.default else {
        return false;
    };
    if column.serial
        || column.identity
        || column.generated_stored
        || column.primary_key
        || column.unique
        || column.references.is_some()
        || column.check
    {
        return false;
    }
    !target.at_least(11, 0)
        || matches!(
            d.volatility,
            ir::Volatility::Volatile | ir::Volatility::Unknown
        )
}

fn rewrite_pg(target: Target, st: &ir::Stmt, created: &[QName]) -> Option<Rewrite> {
    let new_table = |t: &QName| created.iter().any(|c| c.matches(t));
    match (&st.ast, st.actions()) {
        (
            Some(Statement::CreateIndex(ci)),
            [Action::CreateIndex {
                table,
                concurrently: false,
                ..
            }],
        ) if !new_table(table) => {
            let mut safe = ci.clone();
            safe.concurrently = true;
            // IF NOT EXISTS makes a rerun after a crash harmless; it needs a name to check.
            safe.if_not_exists = safe.name.is_some();
            Some(Rewrite {
                sql: Statement::CreateIndex(safe).to_string(),
                note: "built CONCURRENTLY: writes continue during the build".into(),
                builds_index: ci.name.as_ref().map(|n| n.to_string()),
                then: vec![],
            })
        }
        (
            Some(Statement::Drop {
                object_type: ObjectType::Index,
                if_exists,
                names,
                cascade: false,
                ..
            }),
            _,
        ) if names.len() == 1 => Some(Rewrite {
            sql: format!(
                "DROP INDEX CONCURRENTLY {}{}",
                if *if_exists { "IF EXISTS " } else { "" },
                names[0]
            ),
            note: "dropped CONCURRENTLY: queries on the table never queue behind it".into(),
            builds_index: None,
            then: vec![],
        }),
        (Some(Statement::AlterTable(at)), [Action::AddConstraint { table, constraint }])
            if !new_table(table)
                && !constraint.not_valid
                && matches!(
                    constraint.kind,
                    ir::ConstraintKind::ForeignKey | ir::ConstraintKind::Check
                )
                && at.operations.len() == 1 =>
        {
            let AlterTableOperation::AddConstraint { constraint: tc, .. } = &at.operations[0]
            else {
                return None;
            };
            // VALIDATE needs the constraint's name: name it when the migration did not.
            let name = constraint
                .name
                .clone()
                .unwrap_or_else(|| super::pg_default_constraint_name(&table.name, constraint));
            let mut tc = tc.clone();
            match &mut tc {
                TableConstraint::ForeignKey(c) if c.name.is_none() => {
                    c.name = Some(Ident::new(&name))
                }
                TableConstraint::Check(c) if c.name.is_none() => c.name = Some(Ident::new(&name)),
                _ => {}
            }
            let mut add = at.clone();
            add.operations = vec![AlterTableOperation::AddConstraint {
                constraint: tc,
                not_valid: true,
            }];
            Some(Rewrite {
                sql: Statement::AlterTable(add).to_string(),
                note: "added NOT VALID, then validated in its own transaction: existing rows are checked without blocking writes".into(),
                builds_index: None,
                then: vec![Step::Sql(format!("ALTER TABLE {} VALIDATE CONSTRAINT {}", at.name, crate::quote::pg::ident(&name)))],
            })
        }
        (Some(Statement::AlterTable(at)), [Action::AddConstraint { table, constraint }])
            if !new_table(table)
                && constraint.kind == ir::ConstraintKind::Unique
                && !constraint.using_index
                && !constraint.columns.is_empty()
                && at.operations.len() == 1 =>
        {
            // The unique index is built concurrently, then attached: ACCESS EXCLUSIVE only for the
            // catalog change, not for the build.
            let name = constraint.name.clone().unwrap_or_else(|| super::pg_default_constraint_name(&table.name, constraint));
            let n = crate::quote::pg::ident(&name);
            let cols: Vec<String> = constraint.columns.iter().map(|c| crate::quote::pg::ident(c)).collect();
            Some(Rewrite {
                sql: format!("CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS {n} ON {} ({})", at.name, cols.join(", ")),
                note: "unique index built CONCURRENTLY, then attached as the constraint".into(),
                builds_index: Some(n.clone()),
                then: vec![Step::Sql(format!("ALTER TABLE {} ADD CONSTRAINT {n} UNIQUE USING INDEX {n}", at.name))],
            })
        }
        (Some(Statement::AlterTable(at)), [Action::AddConstraint { table, constraint }])
            // SET NOT NULL skips its scan thanks to a validated check only from PostgreSQL 12.
            if !new_table(table)
                && constraint.kind == ir::ConstraintKind::PrimaryKey
                && !constraint.using_index
                && !constraint.columns.is_empty()
                && at.operations.len() == 1
                && target.at_least(12, 0) =>
        {
            // A primary key needs a unique index and NOT NULL columns: the index is built
            // concurrently, NOT NULL is proven by validated checks (writes continue), then one
            // short ACCESS EXCLUSIVE step sets NOT NULL (no scan), attaches the index and drops
            // the checks.
            let name = constraint.name.clone().unwrap_or_else(|| super::pg_default_constraint_name(&table.name, constraint));
            let n = crate::quote::pg::ident(&name);
            let t = &at.name;
            let cols: Vec<String> = constraint.columns.iter().map(|c| crate::quote::pg::ident(c)).collect();
            let checks: Vec<String> = constraint
                .columns
                .iter()
                .map(|c| crate::quote::pg::ident(&super::helper_name(&table.name, c, "not_null")))
                .collect();
            let mut then = Vec::new();
            for (c, k) in cols.iter().zip(&checks) {
                then.push(Step::Sql(format!("ALTER TABLE {t} ADD CONSTRAINT {k} CHECK ({c} IS NOT NULL) NOT VALID")));
                then.push(Step::Sql(format!("ALTER TABLE {t} VALIDATE CONSTRAINT {k}")));
            }
            let mut last: Vec<String> = cols.iter().map(|c| format!("ALTER TABLE {t} ALTER COLUMN {c} SET NOT NULL")).collect();
            last.push(format!("ALTER TABLE {t} ADD CONSTRAINT {n} PRIMARY KEY USING INDEX {n}"));
            last.extend(checks.iter().map(|k| format!("ALTER TABLE {t} DROP CONSTRAINT {k}")));
            then.push(Step::Sql(last.join("; ")));
            Some(Rewrite {
                sql: format!("CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS {n} ON {t} ({})", cols.join(", ")),
                note: "primary key on a unique index built CONCURRENTLY, its columns made NOT NULL through validated checks, then attached".into(),
                builds_index: Some(n.clone()),
                then,
            })
        }
        (Some(Statement::AlterTable(at)), [Action::SetNotNull { table, column }])
            // A validated check spares SET NOT NULL its scan only from PostgreSQL 12.
            if !new_table(table) && at.operations.len() == 1 && target.at_least(12, 0) =>
        {
            // A validated CHECK (col IS NOT NULL) lets SET NOT NULL skip its scan (PostgreSQL 12+).
            let check = crate::quote::pg::ident(&super::helper_name(&table.name, column, "not_null"));
            let c = crate::quote::pg::ident(column);
            let t = &at.name;
            Some(Rewrite {
                sql: format!("ALTER TABLE {t} ADD CONSTRAINT {check} CHECK ({c} IS NOT NULL) NOT VALID"),
                note: "NOT NULL through a CHECK: validated without blocking writes, then SET NOT NULL skips its scan".into(),
                builds_index: None,
                then: vec![
                    Step::Sql(format!("ALTER TABLE {t} VALIDATE CONSTRAINT {check}")),
                    Step::Sql(format!("ALTER TABLE {t} ALTER COLUMN {c} SET NOT NULL; ALTER TABLE {t} DROP CONSTRAINT {check}")),
                ],
            })
        }
        (Some(Statement::AlterTable(at)), [Action::AddColumn { table, column, .. }])
            if !new_table(table) && at.operations.len() == 1 && needs_backfill(target, column) =>
        {
            // Add the column without a default (catalog only), give new rows the default, fill the
            // existing ones in batches, then enforce NOT NULL through a validated check.
            let d = column.default.as_ref().expect("needs_backfill checks the default");
            let t = &at.name;
            let c = crate::quote::pg::ident(&column.name);
            let ty = if column.data_type.eq_ignore_ascii_case("serial") { "integer".to_string() } else { column.data_type.clone() };
            let mut then = vec![
                Step::Sql(format!("ALTER TABLE {t} ALTER COLUMN {c} SET DEFAULT {}", d.text)),
                Step::Backfill { table: t.to_string(), set: format!("{c} = {}", d.text), filter: Some(format!("{c} IS NULL")) },
            ];
            if column.not_null {
                let check = crate::quote::pg::ident(&super::helper_name(&table.name, &column.name, "not_null"));
                then.push(Step::Sql(format!("ALTER TABLE {t} ADD CONSTRAINT {check} CHECK ({c} IS NOT NULL) NOT VALID")));
                then.push(Step::Sql(format!("ALTER TABLE {t} VALIDATE CONSTRAINT {check}")));
                then.push(Step::Sql(format!("ALTER TABLE {t} ALTER COLUMN {c} SET NOT NULL; ALTER TABLE {t} DROP CONSTRAINT {check}")));
            }
            Some(Rewrite {
                sql: format!("ALTER TABLE {t} ADD COLUMN IF NOT EXISTS {c} {ty}"),
                note: "added without rewriting the table: default for new rows, existing rows backfilled in batches, NOT NULL through a validated check".into(),
                builds_index: None,
                then,
            })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rw(sql: &str) -> Vec<Option<String>> {
        let stmts = crate::sql::split(EngineKind::Postgres, sql).unwrap();
        rewrite_part(Target::new(EngineKind::Postgres, 15, 0), &stmts)
            .into_iter()
            .map(|r| r.map(|r| r.sql))
            .collect()
    }

    #[test]
    fn index_builds_and_drops_become_concurrent() {
        assert_eq!(
            rw("CREATE UNIQUE INDEX users_email_idx ON users USING btree (lower(email)) WHERE deleted_at IS NULL"),
            vec![Some("CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS users_email_idx ON users USING BTREE (lower(email)) WHERE deleted_at IS NULL".to_string())]
        );
        assert_eq!(
            rw("DROP INDEX IF EXISTS \"Old\""),
            vec![Some(
                "DROP INDEX CONCURRENTLY IF EXISTS \"Old\"".to_string()
            )]
        );
        // Already safe, several indexes, CASCADE, or on a table created just before: as written.
        assert_eq!(rw("CREATE INDEX CONCURRENTLY i ON t (a)"), vec![None]);
        assert_eq!(rw("DROP INDEX a, b"), vec![None]);
        assert_eq!(rw("DROP INDEX a CASCADE"), vec![None]);
        assert_eq!(
            rw("CREATE TABLE t (a int); CREATE INDEX i ON t (a)"),
            vec![None, None]
        );
    }

    #[test]
    fn foreign_keys_and_checks_become_not_valid_then_validate() {
        let stmts = crate::sql::split(EngineKind::Postgres, "ALTER TABLE orders ADD CONSTRAINT orders_customer_fk FOREIGN KEY (customer_id) REFERENCES customers (id); ALTER TABLE orders ADD CHECK (amount >= 0); ALTER TABLE orders ADD CONSTRAINT c CHECK (amount >= 0) NOT VALID").unwrap();
        let r = rewrite_part(Target::new(EngineKind::Postgres, 15, 0), &stmts);
        let fk = r[0].as_ref().unwrap();
        assert_eq!(fk.sql, "ALTER TABLE orders ADD CONSTRAINT orders_customer_fk FOREIGN KEY (customer_id) REFERENCES customers(id) NOT VALID");
        assert_eq!(
            fk.then.first().and_then(Step::sql),
            Some("ALTER TABLE orders VALIDATE CONSTRAINT \"orders_customer_fk\"")
        );
        let ck = r[1].as_ref().unwrap();
        assert_eq!(
            ck.sql,
            "ALTER TABLE orders ADD CONSTRAINT orders_amount_check CHECK (amount >= 0) NOT VALID"
        );
        assert_eq!(
            ck.then.first().and_then(Step::sql),
            Some("ALTER TABLE orders VALIDATE CONSTRAINT \"orders_amount_check\"")
        );
        assert!(r[2].is_none(), "already NOT VALID: as written");
    }

    #[test]
    fn volatile_defaults_are_backfilled() {
        let stmts = crate::sql::split(EngineKind::Postgres, "ALTER TABLE accounts ADD COLUMN token text NOT NULL DEFAULT md5(random()::text); ALTER TABLE accounts ADD COLUMN status text DEFAULT 'a'").unwrap();
        let r = rewrite_part(Target::new(EngineKind::Postgres, 15, 0), &stmts);
        let a = r[0].as_ref().unwrap();
        assert_eq!(
            a.sql,
            "ALTER TABLE accounts ADD COLUMN IF NOT EXISTS \"token\" TEXT"
        );
        assert_eq!(
            a.then[0].sql(),
            Some("ALTER TABLE accounts ALTER COLUMN \"token\" SET DEFAULT md5(random()::TEXT)")
        );
        assert_eq!(
            a.then[1],
            Step::Backfill {
                table: "accounts".into(),
                set: "\"token\" = md5(random()::TEXT)".into(),
                filter: Some("\"token\" IS NULL".into())
            }
        );
        assert_eq!(a.then.len(), 5);
        assert!(
            r[1].is_none(),
            "a constant default is instant from PostgreSQL 11"
        );
        let old = rewrite_part(Target::new(EngineKind::Postgres, 10, 0), &stmts);
        assert!(old[1].is_some(), "before 11 any default rewrites");
    }

    #[test]
    fn unique_constraints_and_not_null_are_staged() {
        let stmts = crate::sql::split(EngineKind::Postgres, "ALTER TABLE users ADD CONSTRAINT users_email_key UNIQUE (email); ALTER TABLE users ALTER COLUMN email SET NOT NULL").unwrap();
        let r = rewrite_part(Target::new(EngineKind::Postgres, 15, 0), &stmts);
        let u = r[0].as_ref().unwrap();
        assert_eq!(u.sql, "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS \"users_email_key\" ON users (\"email\")");
        assert_eq!(u.then, [Step::Sql("ALTER TABLE users ADD CONSTRAINT \"users_email_key\" UNIQUE USING INDEX \"users_email_key\"".into())]);
        let nn = r[1].as_ref().unwrap();
        assert_eq!(nn.sql, "ALTER TABLE users ADD CONSTRAINT \"users_email_not_null\" CHECK (\"email\" IS NOT NULL) NOT VALID");
        assert_eq!(nn.then.len(), 2);
        assert!(nn.then[1].sql().unwrap().starts_with("ALTER TABLE users ALTER COLUMN \"email\" SET NOT NULL; ALTER TABLE users DROP CONSTRAINT"));
        // Before PostgreSQL 12 the check would not spare the scan: as written.
        let old = rewrite_part(Target::new(EngineKind::Postgres, 11, 0), &stmts);
        assert!(old[1].is_none());
    }
}
