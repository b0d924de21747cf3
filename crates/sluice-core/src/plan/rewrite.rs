//! The statements `sluice up` runs in a safer form than written, today: index builds and drops on
//! PostgreSQL run CONCURRENTLY (reads and writes continue). Staged rewrites with a backfill come
//! with the executor; until then everything else runs as written under the lock discipline.

use crate::analysis::ir::{self, Action, QName};
use crate::sql::SqlStatement;
use crate::target::{EngineKind, Target};
use sqlparser::ast::{
    AlterTableOperation, ConstraintCharacteristics, Expr, Ident, NullsDistinctOption, ObjectType,
    Statement, TableConstraint,
};

/// A statement as sluice will run it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
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
    /// Run before the first step on a first attempt (not on resume): fails, as the statement as
    /// written would, when the name the staged form creates is taken already, so that what a
    /// later step finds under that name is known to be sluice's own.
    pub precheck: Option<String>,
    /// Run (each on its own, in order) when a step fails: removes what the earlier steps created,
    /// so a failed statement leaves nothing behind, as it would as written.
    pub undo: Vec<String>,
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

/// A UNIQUE or PRIMARY KEY constraint the staged form reproduces exactly: plain columns (no
/// expression, order, collation or operator class), no index method or options the
/// `CREATE UNIQUE INDEX` + `ADD ... USING INDEX` pair could lose. None: it runs as written.
struct IndexKey {
    primary: bool,
    columns: Vec<Ident>,
    include: Vec<Ident>,
    nulls: NullsDistinctOption,
    characteristics: Option<ConstraintCharacteristics>,
}

impl IndexKey {
    fn of(tc: &TableConstraint) -> Option<IndexKey> {
        let plain = |cols: &[sqlparser::ast::IndexColumn]| -> Option<Vec<Ident>> {
            cols.iter()
                .map(|c| match &c.column.expr {
                    Expr::Identifier(i)
                        if c.operator_class.is_none()
                            && c.column.options.sort.is_none()
                            && c.column.options.nulls_first.is_none()
                            && c.column.with_fill.is_none() =>
                    {
                        Some(i.clone())
                    }
                    _ => None,
                })
                .collect::<Option<Vec<_>>>()
                .filter(|v| !v.is_empty())
        };
        let chars_ok =
            |c: &Option<ConstraintCharacteristics>| c.is_none_or(|c| c.enforced.is_none());
        match tc {
            TableConstraint::Unique(u)
                if u.index_name.is_none()
                    && u.index_type.is_none()
                    && u.index_options.is_empty()
                    && chars_ok(&u.characteristics) =>
            {
                Some(IndexKey {
                    primary: false,
                    columns: plain(&u.columns)?,
                    include: u.include.clone(),
                    nulls: u.nulls_distinct,
                    characteristics: u.characteristics,
                })
            }
            TableConstraint::PrimaryKey(p)
                if p.index_name.is_none()
                    && p.index_type.is_none()
                    && p.index_options.is_empty()
                    && chars_ok(&p.characteristics) =>
            {
                Some(IndexKey {
                    primary: true,
                    columns: plain(&p.columns)?,
                    include: p.include.clone(),
                    nulls: NullsDistinctOption::None,
                    characteristics: p.characteristics,
                })
            }
            _ => None,
        }
    }
}

/// A statement that fails with the server's own error (42P07) when a relation of that name (an
/// index name as SQL, maybe schema-qualified) exists.
fn relation_absent(name_sql: &str, unnamed: bool) -> String {
    let lit = crate::quote::pg::literal(name_sql);
    let msg = crate::quote::pg::literal(&format!(
        "relation % already exists{}",
        unnamed_note(unnamed)
    ));
    do_block(&format!("BEGIN IF to_regclass({lit}) IS NOT NULL THEN RAISE EXCEPTION {msg}, {lit} USING ERRCODE = 'duplicate_table'; END IF; END"))
}

/// A statement that fails with the server's own error (42710) when the table has a constraint of
/// that name.
fn constraint_absent(table_sql: &str, name: &str, unnamed: bool) -> String {
    let (t, n) = (
        crate::quote::pg::literal(table_sql),
        crate::quote::pg::literal(name),
    );
    let msg = crate::quote::pg::literal(&format!(
        "constraint % for relation % already exists{}",
        unnamed_note(unnamed)
    ));
    do_block(&format!("BEGIN IF EXISTS (SELECT FROM pg_constraint WHERE conrelid = to_regclass({t}) AND conname = {n}) THEN RAISE EXCEPTION {msg}, {n}, {t} USING ERRCODE = 'duplicate_object'; END IF; END"))
}

/// For a constraint the migration left unnamed, the server would pick another free name; sluice's
/// staged form needs the name before it starts, so it refuses and says how to go on.
fn unnamed_note(unnamed: bool) -> &'static str {
    if unnamed {
        ": that is the name PostgreSQL gives this unnamed constraint, and the staged form needs it free (as written the server would add a number); name the constraint in the migration, or run it with --as-written"
    } else {
        ""
    }
}

/// `DO '<body>'`: a plain literal, so no name can end a dollar quote.
fn do_block(body: &str) -> String {
    format!("DO {}", crate::quote::pg::literal(body))
}

/// `ALTER TABLE t ...` without ONLY or IF EXISTS: the staged steps name the table plainly, which
/// for those would change what is altered (children too) or fail where the statement would not.
fn plain_alter(at: &sqlparser::ast::AlterTable) -> bool {
    !at.only && !at.if_exists && at.on_cluster.is_none() && at.location.is_none()
}

/// An index name (as SQL) in the schema of its table: the index lives there, whatever the
/// search_path, and the rerun must find it there.
fn qualified_index(table: &QName, index_sql: &str) -> String {
    match &table.schema {
        Some(s) => format!("{}.{index_sql}", crate::quote::pg::ident(s)),
        None => index_sql.to_string(),
    }
}

/// Whether sqlparser's tree holds everything the text says: every word, number, string and
/// operator of the text occurs in the tree's rendering at least as often (words compared as the
/// server folds them). Punctuation and spacing may differ.
fn faithful(sql: &str, ast: &Statement) -> bool {
    use sqlparser::tokenizer::{Token, Tokenizer};
    let count = |text: &str| -> Option<std::collections::HashMap<String, usize>> {
        let tokens = Tokenizer::new(&sqlparser::dialect::PostgreSqlDialect {}, text)
            .tokenize()
            .ok()?;
        let mut out = std::collections::HashMap::new();
        for t in tokens {
            let key = match &t {
                Token::Whitespace(_)
                | Token::Comma
                | Token::LParen
                | Token::RParen
                | Token::Period
                | Token::SemiColon
                | Token::EOF => continue,
                Token::Word(w) if w.quote_style.is_none() => w.value.to_uppercase(),
                Token::Word(w) => w.value.clone(),
                other => other.to_string(),
            };
            *out.entry(key).or_insert(0) += 1;
        }
        Some(out)
    };
    let (Some(written), Some(rendered)) = (count(sql), count(&ast.to_string())) else {
        return false;
    };
    written
        .iter()
        .all(|(k, n)| rendered.get(k).copied().unwrap_or(0) >= *n)
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
    // Every staged form is built from sqlparser's tree: a clause the parser accepted but did not
    // keep would silently vanish from it, so such a statement runs as written.
    if let Some(ast) = &st.ast {
        if !faithful(&st.sql, ast) {
            return None;
        }
    }
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
                builds_index: ci.name.as_ref().map(|n| qualified_index(table, &n.to_string())),
                ..Default::default()
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
            ..Default::default()
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
            // NOT ENFORCED (PostgreSQL 18) has nothing to validate: as written.
            match tc {
                TableConstraint::ForeignKey(c) if c.characteristics.is_some_and(|c| c.enforced.is_some()) => return None,
                TableConstraint::Check(c) if c.enforced.is_some() => return None,
                _ => {}
            }
            // VALIDATE needs the constraint's name: name it when the migration did not.
            let name = constraint
                .name
                .clone()
                .unwrap_or_else(|| super::pg_default_constraint_name(&table.name, constraint));
            let name = super::pg_truncate(&name).to_string();
            let mut tc = tc.clone();
            match &mut tc {
                // Quoted: the name keeps its case, spaces and quotes as the server gave it.
                TableConstraint::ForeignKey(c) if c.name.is_none() => {
                    c.name = Some(Ident::with_quote('"', &name))
                }
                TableConstraint::Check(c) if c.name.is_none() => {
                    c.name = Some(Ident::with_quote('"', &name))
                }
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
                precheck: Some(constraint_absent(&at.name.to_string(), &name, constraint.name.is_none())),
                undo: vec![format!("ALTER TABLE {} DROP CONSTRAINT IF EXISTS {}", at.name, crate::quote::pg::ident(&name))],
            })
        }
        (Some(Statement::AlterTable(at)), [Action::AddConstraint { table, constraint }])
            if !new_table(table)
                && matches!(constraint.kind, ir::ConstraintKind::Unique | ir::ConstraintKind::PrimaryKey)
                && !constraint.using_index
                && at.operations.len() == 1
                && plain_alter(at) =>
        {
            let AlterTableOperation::AddConstraint { constraint: tc, not_valid: false } = &at.operations[0] else {
                return None;
            };
            let key = IndexKey::of(tc)?;
            // SET NOT NULL skips its scan thanks to a validated check only from PostgreSQL 12;
            // NULLS [NOT] DISTINCT on an index needs 15 (before, the server refuses it as written).
            if (key.primary && !target.at_least(12, 0)) || (key.nulls != NullsDistinctOption::None && !target.at_least(15, 0)) {
                return None;
            }
            let name = constraint.name.clone().unwrap_or_else(|| super::pg_default_constraint_name(&table.name, constraint));
            let name = super::pg_truncate(&name).to_string();
            let n = crate::quote::pg::ident(&name);
            let t = &at.name;
            let cols: Vec<String> = key.columns.iter().map(|c| c.to_string()).collect();
            let mut index = format!("CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS {n} ON {t} ({})", cols.join(", "));
            if !key.include.is_empty() {
                index.push_str(&format!(" INCLUDE ({})", key.include.iter().map(|c| c.to_string()).collect::<Vec<_>>().join(", ")));
            }
            index.push_str(&key.nulls.to_string());
            // DEFERRABLE / INITIALLY belong to the constraint, and ADD ... USING INDEX takes them.
            let characteristics = key.characteristics.map(|c| format!(" {c}")).unwrap_or_default();
            let built = Some(qualified_index(table, &n));
            // As written, the constraint's index takes the name: taken already, it fails.
            let precheck = format!(
                "{}; {}",
                relation_absent(&qualified_index(table, &n), constraint.name.is_none()),
                constraint_absent(&t.to_string(), &name, constraint.name.is_none())
            );
            if !key.primary {
                // The unique index is built concurrently, then attached: ACCESS EXCLUSIVE only
                // for the catalog change, not for the build.
                return Some(Rewrite {
                    sql: index,
                    note: "unique index built CONCURRENTLY, then attached as the constraint".into(),
                    builds_index: built,
                    then: vec![Step::Sql(format!("ALTER TABLE {t} ADD CONSTRAINT {n} UNIQUE USING INDEX {n}{characteristics}"))],
                    precheck: Some(precheck),
                    undo: vec![format!("DROP INDEX CONCURRENTLY IF EXISTS {}", qualified_index(table, &n))],
                });
            }
            // A primary key needs a unique index and NOT NULL columns: the index is built
            // concurrently, NOT NULL is proven by validated checks (writes continue), then one
            // short ACCESS EXCLUSIVE step sets NOT NULL (no scan), attaches the index and drops
            // the checks.
            let folded: Vec<String> = key.columns.iter().map(|c| ir::fold_ident(EngineKind::Postgres, c)).collect();
            let checks: Vec<String> = folded
                .iter()
                .map(|c| crate::quote::pg::ident(&super::helper_name(&table.name, c, "not_null")))
                .collect();
            let mut then = Vec::new();
            for (c, k) in cols.iter().zip(&checks) {
                then.push(Step::Sql(format!("ALTER TABLE {t} ADD CONSTRAINT {k} CHECK ({c} IS NOT NULL) NOT VALID")));
                then.push(Step::Sql(format!("ALTER TABLE {t} VALIDATE CONSTRAINT {k}")));
            }
            let mut last: Vec<String> = cols.iter().map(|c| format!("ALTER TABLE {t} ALTER COLUMN {c} SET NOT NULL")).collect();
            last.push(format!("ALTER TABLE {t} ADD CONSTRAINT {n} PRIMARY KEY USING INDEX {n}{characteristics}"));
            last.extend(checks.iter().map(|k| format!("ALTER TABLE {t} DROP CONSTRAINT {k}")));
            then.push(Step::Sql(last.join("; ")));
            Some(Rewrite {
                sql: index,
                note: "primary key on a unique index built CONCURRENTLY, its columns made NOT NULL through validated checks, then attached".into(),
                builds_index: built,
                then,
                precheck: Some(precheck),
                undo: checks
                    .iter()
                    .map(|k| format!("ALTER TABLE {t} DROP CONSTRAINT IF EXISTS {k}"))
                    .chain([format!("DROP INDEX CONCURRENTLY IF EXISTS {}", qualified_index(table, &n))])
                    .collect(),
            })
        }
        (Some(Statement::AlterTable(at)), [Action::SetNotNull { table, column }])
            // A validated check spares SET NOT NULL its scan only from PostgreSQL 12.
            if !new_table(table) && at.operations.len() == 1 && plain_alter(at) && target.at_least(12, 0) =>
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
                precheck: None,
                undo: vec![format!("ALTER TABLE {t} DROP CONSTRAINT IF EXISTS {check}")],
            })
        }
        (Some(Statement::AlterTable(at)), [Action::AddColumn { table, column, .. }])
            if !new_table(table) && at.operations.len() == 1 && plain_alter(at) && needs_backfill(target, column) =>
        {
            // Add the column without a default (catalog only), give new rows the default, fill the
            // existing ones in batches, then enforce NOT NULL through a validated check.
            let d = column.default.as_ref().expect("needs_backfill checks the default");
            let t = &at.name;
            let c = crate::quote::pg::ident(&column.name);
            let ty = if column.data_type.eq_ignore_ascii_case("serial") { "integer".to_string() } else { column.data_type.clone() };
            let mut undo = Vec::new();
            let mut then = vec![
                Step::Sql(format!("ALTER TABLE {t} ALTER COLUMN {c} SET DEFAULT {}", d.text)),
                Step::Backfill { table: t.to_string(), set: format!("{c} = {}", d.text), filter: Some(format!("{c} IS NULL")) },
            ];
            if column.not_null {
                let check = crate::quote::pg::ident(&super::helper_name(&table.name, &column.name, "not_null"));
                then.push(Step::Sql(format!("ALTER TABLE {t} ADD CONSTRAINT {check} CHECK ({c} IS NOT NULL) NOT VALID")));
                then.push(Step::Sql(format!("ALTER TABLE {t} VALIDATE CONSTRAINT {check}")));
                then.push(Step::Sql(format!("ALTER TABLE {t} ALTER COLUMN {c} SET NOT NULL; ALTER TABLE {t} DROP CONSTRAINT {check}")));
                // The column and its backfilled values stay for the rerun (checkpointed); the
                // helper check goes, so the rerun adds it afresh.
                undo.push(format!("ALTER TABLE {t} DROP CONSTRAINT IF EXISTS {check}"));
            }
            Some(Rewrite {
                sql: format!("ALTER TABLE {t} ADD COLUMN IF NOT EXISTS {c} {ty}"),
                note: "added without rewriting the table: default for new rows, existing rows backfilled in batches, NOT NULL through a validated check".into(),
                builds_index: None,
                then,
                precheck: None,
                undo,
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
            "ALTER TABLE orders ADD CONSTRAINT \"orders_amount_check\" CHECK (amount >= 0) NOT VALID"
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
        assert_eq!(
            u.sql,
            "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS \"users_email_key\" ON users (email)"
        );
        assert_eq!(u.then, [Step::Sql("ALTER TABLE users ADD CONSTRAINT \"users_email_key\" UNIQUE USING INDEX \"users_email_key\"".into())]);
        let nn = r[1].as_ref().unwrap();
        assert_eq!(nn.sql, "ALTER TABLE users ADD CONSTRAINT \"users_email_not_null\" CHECK (\"email\" IS NOT NULL) NOT VALID");
        assert_eq!(nn.then.len(), 2);
        assert!(nn.then[1].sql().unwrap().starts_with("ALTER TABLE users ALTER COLUMN \"email\" SET NOT NULL; ALTER TABLE users DROP CONSTRAINT"));
        // Before PostgreSQL 12 the check would not spare the scan: as written.
        let old = rewrite_part(Target::new(EngineKind::Postgres, 11, 0), &stmts);
        assert!(old[1].is_none());
    }

    #[test]
    fn unique_keeps_every_option_or_runs_as_written() {
        let one = |sql: &str| {
            let stmts = crate::sql::split(EngineKind::Postgres, sql).unwrap();
            rewrite_part(Target::new(EngineKind::Postgres, 15, 0), &stmts).remove(0)
        };
        let u = one("ALTER TABLE app.t ADD UNIQUE NULLS NOT DISTINCT (\"Wert\", b) INCLUDE (\"Ü\") DEFERRABLE INITIALLY DEFERRED").unwrap();
        assert_eq!(u.sql, "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS \"t_Wert_b_Ü_key\" ON app.t (\"Wert\", b) INCLUDE (\"Ü\") NULLS NOT DISTINCT");
        assert_eq!(
            u.builds_index.as_deref(),
            Some("\"app\".\"t_Wert_b_Ü_key\"")
        );
        assert_eq!(u.then, [Step::Sql("ALTER TABLE app.t ADD CONSTRAINT \"t_Wert_b_Ü_key\" UNIQUE USING INDEX \"t_Wert_b_Ü_key\" DEFERRABLE INITIALLY DEFERRED".into())]);
        // What the pair cannot carry, or sqlparser does not keep: as written.
        for sql in [
            "ALTER TABLE t ADD UNIQUE (a) WITH (fillfactor = 70)",
            "ALTER TABLE t ADD UNIQUE (a) USING INDEX TABLESPACE pg_default",
            "ALTER TABLE ONLY t ADD UNIQUE (a)",
            "ALTER TABLE IF EXISTS t ADD PRIMARY KEY (a)",
            "ALTER TABLE t ADD PRIMARY KEY (a DESC)",
        ] {
            assert_eq!(one(sql), None, "{sql}");
        }
    }
}
