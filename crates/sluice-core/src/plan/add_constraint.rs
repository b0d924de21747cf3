//! ADD CONSTRAINT: FOREIGN KEY and CHECK as NOT VALID then VALIDATE (the scan runs without blocking);
//! UNIQUE and PRIMARY KEY on a unique index built concurrently, then attached.

use super::staged::{
    constraint_absent, plain_alter, qualified_index, relation_absent, About, Lock, Rewrite,
    Step as RStep,
};
use super::*;
use crate::analysis::ir::{self, ConstraintKind};
use sqlparser::ast::{
    AlterTableOperation, ConstraintCharacteristics, Expr, Ident, NullsDistinctOption, Statement,
    TableConstraint,
};

pub fn plan(a: &Action, ctx: &Ctx) -> OpPlan {
    let Action::AddConstraint { constraint, .. } = a else {
        unreachable!()
    };
    let e = ctx.target.engine;
    if e.is_mysql_family() {
        return match constraint.kind {
            ConstraintKind::Index | ConstraintKind::Unique => OpPlan::safe_as_written(impact(
                "ALGORITHM=INPLACE, LOCK=NONE",
                Effect::IndexBuild,
                Blocks::Nothing,
                "index built in place",
            )),
            // The server refuses LOCK=NONE for these (MariaDB 10.11, judged in sluice-mysql's
            // path_judged_by_server.rs); the first FULLTEXT index also rebuilds the table.
            ConstraintKind::FullText => OpPlan::safe_as_written(impact(
                "ALGORITHM=INPLACE, LOCK=SHARED",
                Effect::Rewrite,
                Blocks::Writes,
                "a FULLTEXT/SPATIAL index is built only with LOCK=SHARED (writes wait); the table's first FULLTEXT index rebuilds it to add FTS_DOC_ID",
            )),
            ConstraintKind::ForeignKey => OpPlan::safe_as_written(impact(
                "ALGORITHM=COPY (INPLACE only with foreign_key_checks=0)",
                Effect::Copy,
                Blocks::Writes,
                "the table is copied while writes wait",
            )),
            _ => OpPlan::safe_as_written(impact(
                "ALGORITHM=INPLACE or COPY",
                Effect::Copy,
                Blocks::Writes,
                "may rebuild the table",
            )),
        };
    }
    match constraint.kind {
        ConstraintKind::ForeignKey | ConstraintKind::Check if constraint.not_valid => OpPlan::safe_as_written(impact(
            if constraint.kind == ConstraintKind::ForeignKey { "SHARE ROW EXCLUSIVE (both tables)" } else { "ACCESS EXCLUSIVE" },
            Effect::Instant,
            if constraint.kind == ConstraintKind::ForeignKey { Blocks::Writes } else { Blocks::ReadsAndWrites },
            "NOT VALID: existing rows are checked later by VALIDATE CONSTRAINT",
        )),
        // NOT VALID, then VALIDATE in its own transaction: the steps are the rewrite's.
        ConstraintKind::ForeignKey | ConstraintKind::Check => {
            let (lock, blocks) = if constraint.kind == ConstraintKind::ForeignKey { ("SHARE ROW EXCLUSIVE (both tables)", Blocks::Writes) } else { ("ACCESS EXCLUSIVE", Blocks::ReadsAndWrites) };
            OpPlan::staged(impact(lock, Effect::Scan, blocks, "every existing row is checked while the lock is held"))
        }
        ConstraintKind::PrimaryKey | ConstraintKind::Unique if constraint.using_index => OpPlan::safe_as_written(impact("ACCESS EXCLUSIVE", Effect::Instant, Blocks::ReadsAndWrites, "attaches an existing unique index")),
        // A unique index built concurrently, then attached: the steps are the rewrite's.
        ConstraintKind::PrimaryKey | ConstraintKind::Unique => OpPlan::staged(impact("ACCESS EXCLUSIVE", Effect::IndexBuild, Blocks::ReadsAndWrites, "the unique index is built while every query waits")),
        ConstraintKind::Exclude => OpPlan {
            impact: impact("ACCESS EXCLUSIVE", Effect::IndexBuild, Blocks::ReadsAndWrites, "its index is built while every query waits"),
            safe_steps: vec![],
            refused: Some("an EXCLUDE constraint has no concurrent form: add it on a new table or in a maintenance window".into()),
            staged: false,
        },
        ConstraintKind::Index | ConstraintKind::FullText => OpPlan::safe_as_written(impact("SHARE", Effect::IndexBuild, Blocks::Writes, "index build")),
    }
}

/// What `up` runs on PostgreSQL for ADD CONSTRAINT on an existing table: FOREIGN KEY and CHECK
/// added NOT VALID, then validated in their own transaction; UNIQUE and PRIMARY KEY on a unique
/// index built concurrently, then attached. None: as written ([`why_as_written`] says why).
pub(super) fn staged(target: Target, st: &Stmt) -> Option<Rewrite> {
    let (Some(Statement::AlterTable(at)), [Action::AddConstraint { table, constraint }]) =
        (st.ast.as_deref(), st.actions())
    else {
        return None;
    };
    if at.operations.len() != 1 {
        return None;
    }
    match constraint.kind {
        ConstraintKind::ForeignKey | ConstraintKind::Check if !constraint.not_valid => {
            validated_later(at, table, constraint)
        }
        ConstraintKind::Unique | ConstraintKind::PrimaryKey
            if !constraint.using_index && plain_alter(at) =>
        {
            on_concurrent_index(target, at, table, constraint)
        }
        _ => None,
    }
}

/// FOREIGN KEY / CHECK: NOT VALID, then VALIDATE in a transaction of its own.
fn validated_later(
    at: &sqlparser::ast::AlterTable,
    table: &ir::QName,
    constraint: &ir::ConstraintSpec,
) -> Option<Rewrite> {
    let AlterTableOperation::AddConstraint { constraint: tc, .. } = &at.operations[0] else {
        return None;
    };
    // NOT ENFORCED (PostgreSQL 18) has nothing to validate: as written.
    match tc {
        TableConstraint::ForeignKey(c)
            if c.characteristics.is_some_and(|c| c.enforced.is_some()) =>
        {
            return None
        }
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
        answers: if constraint.kind == ConstraintKind::ForeignKey {
            &["foreign-key-not-valid"]
        } else {
            &["check-constraint-not-valid"]
        },
        builds_index: None,
        unnamed_index: None,
        then: vec![RStep::Sql(format!("ALTER TABLE {} VALIDATE CONSTRAINT {}", at.name, crate::quote::pg::ident(&name)))],
        precheck: Some(constraint_absent(&at.name.to_string(), &name, constraint.name.is_none())),
        undo: vec![format!("ALTER TABLE {} DROP CONSTRAINT IF EXISTS {}", at.name, crate::quote::pg::ident(&name))],
        about: vec![
            if constraint.kind == ConstraintKind::ForeignKey {
                About {
                    lock_on: " (both tables)",
                    ..About::new("add the constraint for new rows only", Lock::ShareRowExclusive, Effect::Instant, Blocks::Writes)
                }
            } else {
                About::catalog("add the constraint for new rows only")
            },
            About::validate("validate existing rows in its own transaction (reads and writes continue)"),
        ],
    })
}

/// UNIQUE / PRIMARY KEY: a unique index built CONCURRENTLY, then attached with `USING INDEX` (a
/// primary key's columns made NOT NULL through validated checks first).
fn on_concurrent_index(
    target: Target,
    at: &sqlparser::ast::AlterTable,
    table: &ir::QName,
    constraint: &ir::ConstraintSpec,
) -> Option<Rewrite> {
    let AlterTableOperation::AddConstraint {
        constraint: tc,
        not_valid: false,
    } = &at.operations[0]
    else {
        return None;
    };
    let key = IndexKey::of(tc)?;
    // SET NOT NULL skips its scan thanks to a validated check only from PostgreSQL 12;
    // NULLS [NOT] DISTINCT on an index needs 15 (before, the server refuses it as written).
    if (key.primary && !target.at_least(12, 0))
        || (key.nulls != NullsDistinctOption::None && !target.at_least(15, 0))
    {
        return None;
    }
    let name = constraint
        .name
        .clone()
        .unwrap_or_else(|| super::pg_default_constraint_name(&table.name, constraint));
    let name = super::pg_truncate(&name).to_string();
    let n = crate::quote::pg::ident(&name);
    let t = &at.name;
    let cols: Vec<String> = key.columns.iter().map(|c| c.to_string()).collect();
    let mut index = format!(
        "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS {n} ON {t} ({})",
        cols.join(", ")
    );
    if !key.include.is_empty() {
        index.push_str(&format!(
            " INCLUDE ({})",
            key.include
                .iter()
                .map(|c| c.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    index.push_str(&key.nulls.to_string());
    // DEFERRABLE / INITIALLY belong to the constraint, and ADD ... USING INDEX takes them.
    let characteristics = key
        .characteristics
        .map(|c| format!(" {c}"))
        .unwrap_or_default();
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
            answers: &["constraint-without-prebuilt-index"],
            builds_index: built,
            unnamed_index: None,
            then: vec![RStep::Sql(format!(
                "ALTER TABLE {t} ADD CONSTRAINT {n} UNIQUE USING INDEX {n}{characteristics}"
            ))],
            precheck: Some(precheck),
            undo: vec![format!(
                "DROP INDEX CONCURRENTLY IF EXISTS {}",
                qualified_index(table, &n)
            )],
            about: vec![
                About::concurrent_build("build the unique index concurrently"),
                About::catalog("attach it as the constraint"),
            ],
        });
    }
    // A primary key needs a unique index and NOT NULL columns: the index is built
    // concurrently, NOT NULL is proven by validated checks (writes continue), then one
    // short ACCESS EXCLUSIVE step sets NOT NULL (no scan), attaches the index and drops
    // the checks.
    let folded: Vec<String> = key
        .columns
        .iter()
        .map(|c| ir::fold_ident(EngineKind::Postgres, c))
        .collect();
    let checks: Vec<String> = folded
        .iter()
        .map(|c| crate::quote::pg::ident(&super::helper_name(&table.name, c, "not_null_check")))
        .collect();
    let mut then = Vec::new();
    let mut about = vec![About::concurrent_build(
        "build the unique index concurrently",
    )];
    for (c, k) in cols.iter().zip(&checks) {
        then.push(RStep::Sql(format!(
            "ALTER TABLE {t} ADD CONSTRAINT {k} CHECK ({c} IS NOT NULL) NOT VALID"
        )));
        then.push(RStep::Sql(format!(
            "ALTER TABLE {t} VALIDATE CONSTRAINT {k}"
        )));
        about.push(About::catalog(
            "CHECK (column IS NOT NULL) for new rows only",
        ));
        about.push(About::validate("validate it (reads and writes continue)"));
    }
    about.push(About::catalog("SET NOT NULL (no scan: the checks prove it), attach the index as the primary key, drop the checks"));
    let mut last: Vec<String> = cols
        .iter()
        .map(|c| format!("ALTER TABLE {t} ALTER COLUMN {c} SET NOT NULL"))
        .collect();
    last.push(format!(
        "ALTER TABLE {t} ADD CONSTRAINT {n} PRIMARY KEY USING INDEX {n}{characteristics}"
    ));
    last.extend(
        checks
            .iter()
            .map(|k| format!("ALTER TABLE {t} DROP CONSTRAINT {k}")),
    );
    then.push(RStep::Sql(last.join("; ")));
    Some(Rewrite {
        sql: index,
        note: "primary key on a unique index built CONCURRENTLY, its columns made NOT NULL through validated checks, then attached".into(),
        answers: &["constraint-without-prebuilt-index"],
        builds_index: built,
        unnamed_index: None,
        then,
        precheck: Some(precheck),
        undo: checks
            .iter()
            .map(|k| format!("ALTER TABLE {t} DROP CONSTRAINT IF EXISTS {k}"))
            .chain([format!("DROP INDEX CONCURRENTLY IF EXISTS {}", qualified_index(table, &n))])
            .collect(),
        about,
    })
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

/// Why an ADD CONSTRAINT whose hazard is usually staged runs as written (PostgreSQL), when the
/// reason is the constraint's own; None for the reasons every staged form shares.
pub(super) fn why_as_written(target: Target, st: &Stmt) -> Option<&'static str> {
    let (Some(Statement::AlterTable(at)), [Action::AddConstraint { constraint, .. }]) =
        (st.ast.as_deref(), st.actions())
    else {
        return None;
    };
    Some(match constraint.kind {
        ConstraintKind::PrimaryKey if !target.at_least(12, 0) => {
            "before PostgreSQL 12, SET NOT NULL scans under ACCESS EXCLUSIVE even with a validated check, so a primary key has no staged form"
        }
        ConstraintKind::PrimaryKey | ConstraintKind::Unique => match at.operations.first() {
            Some(AlterTableOperation::AddConstraint { constraint: tc, .. })
                if IndexKey::of(tc).is_none() =>
            {
                "the key has an expression, sort order, operator class, index name or index options that CREATE UNIQUE INDEX + ADD ... USING INDEX could lose; build the unique index CONCURRENTLY yourself, then add the constraint USING INDEX"
            }
            _ => "NULLS NOT DISTINCT needs PostgreSQL 15",
        },
        _ => "NOT ENFORCED has nothing to validate",
    })
}
