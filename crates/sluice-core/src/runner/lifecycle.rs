//! Two application versions live (issue 14): the expand / complete / rollback lifecycle of a
//! breaking migration, run through [`Engine`]. The phases themselves are data from
//! [`crate::plan::expand`]; this module runs them, records the `expanded` state and refuses what
//! the lifecycle cannot do (exit 11, [`Error::Lifecycle`]).
//!
//! - `sluice up` runs the expand phase of a breaking migration and records it `expanded`. A killed
//!   run is `running` and its rerun runs every expand step again (each is rerunnable); a failed
//!   step removes what the phase made (the rollback statements) and records `failed`, and the
//!   rerun starts afresh.
//! - `sluice complete [version]` runs the contract phase in one short transaction together with
//!   the history record (applied), so it is either done or not.
//! - `sluice rollback [version]` undoes the expand phase (also of a failed or interrupted one) in
//!   one short transaction together with deleting the history row: the migration is pending again.

use crate::analysis::ir::{Action, QName, Stmt};
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::history::{statement_hash, EventKind, HistoryRow, RecordState};
use crate::migration::{Direction, Migration};
use crate::plan::expand::{Breaking, Phases};
use crate::runner::RunContext;
use crate::sql::{self, SqlStatement};
use crate::target::EngineKind;
use chrono::Utc;
use std::time::Instant;

/// The breaking statement of a migration's up part: None when it has none. A part that mixes it
/// with other statements is an error naming the file (exit 2).
pub fn breaking(
    target: crate::target::Target,
    m: &Migration,
) -> Result<Option<(SqlStatement, Stmt, Breaking)>> {
    let Some(part) = m.part(Direction::Up) else {
        return Ok(None);
    };
    let Some((split, stmts)) = statements(target, &part.sql) else {
        return Ok(None);
    };
    if crate::migration::versioned_directive(&part.sql).is_some() {
        return versioned(target, m, part, (&split, &stmts)).map(Some);
    }
    let olds = crate::migration::old_directives(&part.sql);
    match crate::plan::expand::find(target.engine, &stmts) {
        Ok(Some((i, b @ Breaking::SplitMerge { .. }))) => {
            split_merge(target, m, part, &split[i], b, olds)
                .map(|b| Some((split[i].clone(), stmts[i].clone(), b)))
        }
        _ if !olds.is_empty() => {
            let (path, text) = m.file_of(part);
            let line = sql::line_col(text, part.offset + olds[0].start).0;
            // A statement sluice's parser cannot read: the shape cannot be told, so say that
            // rather than that the migration has the wrong shape.
            let unread = |st: &Stmt| {
                st.ast
                    .as_deref()
                    .is_none_or(|a| !crate::plan::staged::faithful_in(target.engine, &st.sql, a))
            };
            if let Some((s, st)) = split.iter().zip(&stmts).find(|(_, st)| unread(st)) {
                let at = sql::line_col(text, part.offset + s.offset).0;
                return Err(Error::MigrationFile {
                    path: path.to_path_buf(),
                    line: Some(at),
                    message: format!(
                        "line {at}: migration {}: sluice's SQL parser cannot read `{}` exactly, so it cannot tell whether the migration is a split or merge of columns (`-- sluice:old` on line {line})",
                        m.label(),
                        crate::redact::label(&crate::redact::secrets(st.sql.trim()), 120)
                    ),
                    help: format!(
                        "write the statement in forms the parser reads{}, or remove the directive and run the migration as written with `sluice up --as-written`",
                        match target.engine {
                            crate::target::EngineKind::Postgres => "",
                            _ => " (`MOD(a, b)` or `a % b` for `a MOD b`, a CASE for `INTERVAL(n, ...)`, `CHAR(92)` for a backslash in a string)",
                        }
                    ),
                });
            }
            Err(Error::MigrationFile {
                path: path.to_path_buf(),
                line: Some(line),
                message: format!("line {line}: migration {}: `-- sluice:old` stands in a migration that is not a split or merge of columns: its up part must be exactly `ALTER TABLE t ADD COLUMN ...; UPDATE t SET <each added column> = <expression of the dropped ones> [WHERE ...]; ALTER TABLE t DROP COLUMN ...` (added columns with a type and nothing else)", m.label()),
                help: "remove the directive, or write the migration in that shape with the directives right before its DROP COLUMN".into(),
            })
        }
        Ok(None) => Ok(None),
        Ok(Some((i, b))) => Ok(Some((split[i].clone(), stmts[i].clone(), b))),
        Err(why) => {
            let (path, text) = m.file_of(part);
            let (line, _) = sql::line_col(text, part.offset);
            Err(Error::MigrationFile {
                path: path.to_path_buf(),
                line: Some(line),
                message: format!("migration {}: {why}", m.label()),
                help: "a migration that breaks the running application version (a rename, a DROP COLUMN) runs in two phases, `sluice up` then `sluice complete`; or run it as written with `sluice up --as-written` (the running version breaks at once)".into(),
            })
        }
    }
}

/// The type changes `-- sluice:versioned down <expr>` directives mark (versioned schemas): each
/// statement of the part a plain `ALTER TABLE t ALTER COLUMN c TYPE ty [USING expr]` of one
/// column with its directive on the line right before it, on PostgreSQL (several columns, of one
/// table or several, share one version schema). Anything else is an error naming the line and
/// the fix (exit 2): a directive that does not apply is never ignored. The statement returned is
/// the last one: `plan` and `up --dry-run` show the phases there and the others as inside them.
fn versioned(
    target: crate::target::Target,
    m: &Migration,
    part: &crate::migration::Part,
    (split, stmts): (&[SqlStatement], &[Stmt]),
) -> Result<(SqlStatement, Stmt, Breaking)> {
    use sqlparser::ast::{AlterColumnOperation, AlterTableOperation, Statement};
    let directives = crate::migration::versioned_directives(&part.sql);
    let (path, text) = m.file_of(part);
    // `at`: an offset in the part; the error names its line.
    let err = |at: usize, message: &str, help: &str| {
        let line = sql::line_col(text, part.offset + at).0;
        Error::MigrationFile {
            path: path.to_path_buf(),
            line: Some(line),
            message: format!("line {line}: migration {}: {message}", m.label()),
            help: help.to_string(),
        }
    };
    // The directive's own line: the one before the offset right after it.
    let directive_at = |after: usize| after.saturating_sub(1);
    let form = "write `-- sluice:versioned down <expression>` on the line right before each statement of the migration, each `ALTER TABLE t ALTER COLUMN c TYPE new_type [USING expression]` of one column (several columns and tables may share the migration); other changes go in migrations of their own";
    if target.engine != EngineKind::Postgres {
        return Err(err(
            directive_at(directives[0].1),
            &format!("`-- sluice:versioned` (versioned schemas) is for PostgreSQL: {} has no view that can run its writes through a trigger per version (no INSTEAD OF triggers, no per-session schema search path), so one physical column cannot serve two types to two application versions there", target.engine),
            "remove the directive and change the column in steps both versions can use: add a new column, write both from the application, backfill, then drop the old one in a later migration",
        ));
    }
    // Each directive stands right before a statement (only blank space between).
    let statement_of = |after: usize| {
        split
            .iter()
            .position(|s| s.offset >= after && part.sql[after..s.offset].trim().is_empty())
    };
    let mut down_of: Vec<Option<String>> = vec![None; split.len()];
    for (down, after) in &directives {
        match statement_of(*after) {
            Some(i) => down_of[i] = Some(down.clone()),
            None => {
                return Err(err(
                    directive_at(*after),
                    "`-- sluice:versioned` is not on the line right before the statement",
                    form,
                ))
            }
        }
    }
    let mut changes: Vec<crate::plan::expand::VersionedColumn> = Vec::new();
    for (i, (s, st)) in split.iter().zip(stmts).enumerate() {
        let Some(down) = down_of[i].clone() else {
            return Err(err(
                s.offset,
                &format!("this statement has no `-- sluice:versioned down <expression>` line right before it, and the migration's other type changes are versioned: every statement of a versioned migration is one column's type change with its own directive ({} statements, {} directives)", split.len(), directives.len()),
                form,
            ));
        };
        let op = match st.ast.as_deref() {
            Some(Statement::AlterTable(at)) if at.operations.len() == 1 => {
                match &at.operations[0] {
                    AlterTableOperation::AlterColumn {
                        op:
                            AlterColumnOperation::SetDataType {
                                data_type, using, ..
                            },
                        ..
                    } => Some((data_type, using, at)),
                    _ => None,
                }
            }
            _ => None,
        };
        // COLLATE after TYPE: the parser keeps no statement, so say so before the generic reason.
        let words = crate::analysis::tokens::tokens(&st.sql, crate::target::EngineKind::Postgres);
        let has = |w: &str| words.contains(&crate::analysis::tokens::Tok::Word(w.into()));
        if has("TYPE") && has("COLLATE") {
            return Err(err(
                s.offset,
                "the versioned type change cannot carry COLLATE: a versioned type change gives the new column the old one's collation, and its views and triggers compare and sort by it",
                "change the collation in a migration of its own (`ALTER TABLE t ALTER COLUMN c TYPE same_type COLLATE \"x\"`), before or after this one",
            ));
        }
        let (Some((data_type, using, at)), [Action::AlterColumnType { table, column, .. }]) =
            (op, st.actions())
        else {
            return Err(err(
                s.offset,
                "`-- sluice:versioned` stands before a statement that is not one `ALTER TABLE t ALTER COLUMN c TYPE ...` of one column (the only change versioned schemas carry)",
                form,
            ));
        };
        if !crate::plan::staged::plain_alter(at)
            || !crate::plan::staged::faithful(&st.sql, st.ast.as_deref().expect("matched"))
        {
            // Name the clause when it is one sluice knows; the rest is what its parser drops.
            let (what, fix) = if at.only {
                (
                    "ONLY: the versioned views and triggers serve the table with its partitions or children".to_string(),
                    "write it as `ALTER TABLE t ALTER COLUMN c TYPE new_type [USING expression]`",
                )
            } else if at.if_exists {
                (
                    "IF EXISTS: a versioned type change needs the table, and would change nothing without it".to_string(),
                    "write it as `ALTER TABLE t ALTER COLUMN c TYPE new_type [USING expression]`",
                )
            } else {
                (
                    "a clause sluice's parser does not keep (running the statement without it would change what it does)".to_string(),
                    "write it as `ALTER TABLE t ALTER COLUMN c TYPE new_type [USING expression]`",
                )
            };
            return Err(err(
                s.offset,
                &format!("the versioned type change cannot carry {what}"),
                fix,
            ));
        }
        if let Some(c) = changes
            .iter()
            .find(|c| c.table.matches(table) && c.column == *column)
        {
            return Err(err(
                s.offset,
                &format!("a second versioned type change of column {}.{}: one column's type changes once in a migration", c.table, c.column),
                "write the column's final type in one statement, or its changes in migrations of their own",
            ));
        }
        let ty = data_type.to_string();
        let up = match using {
            Some(u) => u.to_string(),
            None => format!("CAST({} AS {ty})", crate::quote::pg::ident(column)),
        };
        changes.push(crate::plan::expand::VersionedColumn {
            table: table.clone(),
            column: column.clone(),
            ty,
            up,
            down,
        });
    }
    let (Some(s), Some(st)) = (split.last(), stmts.last()) else {
        return Err(err(
            directive_at(directives[0].1),
            "`-- sluice:versioned` is not on the line right before the statement",
            form,
        ));
    };
    Ok((s.clone(), st.clone(), Breaking::Versioned { changes }))
}

/// A split or merge of columns (`b`, its DROP statement `drop`): its `-- sluice:old` directives
/// read into `b`'s reverse expressions. They must stand on the lines right before the DROP, one
/// per dropped column and only for those (MariaDB/MySQL compare column names case-insensitively,
/// as the server does). Errors name
/// the file and the fix (exit 2). Missing directives are refused by the phases (with the lines to
/// write), so that `plan` shows the refusal too.
fn split_merge(
    target: crate::target::Target,
    m: &Migration,
    part: &crate::migration::Part,
    drop: &SqlStatement,
    mut b: Breaking,
    olds: Vec<crate::migration::OldDirective>,
) -> Result<Breaking> {
    let (path, text) = m.file_of(part);
    let first = olds.first().map(|d| d.start).unwrap_or(drop.offset);
    // Each error names the line of the directive it is about.
    let err_at = |at: usize, message: String, help: &str| {
        let line = sql::line_col(text, part.offset + at).0;
        Error::MigrationFile {
            path: path.to_path_buf(),
            line: Some(line),
            message: format!("line {line}: migration {}: {message}", m.label()),
            help: help.to_string(),
        }
    };
    let Breaking::SplitMerge {
        dropped, reverse, ..
    } = &mut b
    else {
        unreachable!()
    };
    // The two phases are separate steps (the backfill in batches, each its own transaction): a
    // part forced into one transaction cannot hold them.
    if part.tx_directive == Some(crate::migration::TxMode::Single) {
        return Err(err_at(
            first,
            format!("`-- sluice:transaction single` asks for one transaction, but sluice runs {} in two phases of several transactions each (the UPDATE as a backfill in batches)", b.describe()),
            "remove the `-- sluice:transaction single` line, or run the three statements as written with `sluice up --as-written` (the running version breaks at once)",
        ));
    }
    let form = "write one `-- sluice:old <dropped column> = <expression of the added columns>` line per dropped column, on the lines right before the DROP COLUMN statement";
    for d in &olds {
        // Only directives (and blank space) between this one and the DROP.
        let between = &part.sql[d.end..drop.offset.max(d.end)];
        let only_directives = between
            .lines()
            .all(|l| l.trim().is_empty() || l.trim_start().starts_with("-- sluice:old"));
        if d.start > drop.offset || !only_directives {
            return Err(err_at(
                d.start,
                format!(
                    "`-- sluice:old {}` is not on the lines right before the DROP COLUMN",
                    d.column
                ),
                form,
            ));
        }
        let mysql = target.engine.is_mysql_family();
        let same = |c: &str| c == d.column || (mysql && c.eq_ignore_ascii_case(&d.column));
        let Some((column, _)) = dropped.iter().find(|(c, _)| same(c)) else {
            return Err(err_at(
                d.start,
                format!(
                    "`-- sluice:old {}` names a column the DROP COLUMN does not drop (it drops {})",
                    d.column,
                    dropped
                        .iter()
                        .map(|(c, _)| c.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                form,
            ));
        };
        if reverse.iter().any(|(c, _)| c == column) {
            return Err(err_at(
                d.start,
                format!("a second `-- sluice:old {}`", d.column),
                form,
            ));
        }
        reverse.push((column.clone(), d.expr.clone()));
    }
    Ok(b)
}

/// The migration's up part is a split or merge of columns (or holds `-- sluice:old` lines).
fn splits_or_merges(target: crate::target::Target, m: &Migration) -> bool {
    let Some(part) = m.part(Direction::Up) else {
        return false;
    };
    !crate::migration::old_directives(&part.sql).is_empty()
        || statements(target, &part.sql).is_some_and(|(_, stmts)| {
            crate::plan::expand::split_merge::find(target.engine, &stmts).is_some()
        })
}

/// A part's statements as split and as built (None when the part does not split).
/// Whether `m`'s up part looks like a MariaDB fill-and-MODIFY the parser cannot read exactly (its
/// refusal is about the file, exit 2, with its own fix).
fn fill_unreadable(target: crate::target::Target, m: &Migration) -> bool {
    target.engine == EngineKind::MariaDb
        && m.part(Direction::Up)
            .and_then(|part| statements(target, &part.sql))
            .is_some_and(|(_, stmts)| {
                crate::plan::expand::fill_not_null_mysql::unreadable(&stmts).is_some()
            })
}

fn statements(target: crate::target::Target, sql: &str) -> Option<(Vec<SqlStatement>, Vec<Stmt>)> {
    let split = sql::split(target.engine, sql).ok()?;
    let stmts = split
        .iter()
        .enumerate()
        .map(|(i, s)| crate::analysis::ir::build(target.engine, i, s, 0, &s.sql))
        .collect();
    Some((split, stmts))
}

/// The lifecycle change of a migration: its breaking statement, or else a column type change
/// that is the migration's only statement (PostgreSQL), whose staged form keeps the old column
/// until `sluice complete` ([`Breaking::ColumnType`]; whether it did is in the catalog, see
/// [`kept_type_change`]).
pub fn lifecycle_change(
    target: crate::target::Target,
    m: &Migration,
) -> Result<Option<(SqlStatement, Stmt, Breaking)>> {
    if let Some(found) = breaking(target, m)? {
        return Ok(Some(found));
    }
    Ok(type_change_of(target, m))
}

/// The migration's up part is one `ALTER TABLE t ALTER COLUMN c TYPE ...` (PostgreSQL), alone or
/// with the view and policy drops and re-creations its swap runs
/// ([`crate::plan::alter_column_type::Around`]).
pub(crate) fn type_change_of(
    target: crate::target::Target,
    m: &Migration,
) -> Option<(SqlStatement, Stmt, Breaking)> {
    // (A versioned type change is `breaking`'s, its own phases: never a cut one.)
    let cut = cut_type_change_of(target, m)?;
    // Every statement is the ALTER or one its swap runs.
    cut.whole.then_some(())?;
    let [Action::AlterColumnType { table, column, .. }] = cut.st.actions() else {
        return None;
    };
    let b = Breaking::ColumnType {
        table: table.clone(),
        column: column.clone(),
    };
    Some((cut.s, cut.st, b))
}

/// A staged type change a migration may be cut off in before its swap, with what `sluice
/// rollback` needs to remove its helpers (PostgreSQL): the migration is the `ALTER TABLE t ALTER
/// COLUMN c TYPE ...` alone ([`type_change_of`]), or that statement with only the `DROP VIEW` /
/// `DROP POLICY` statements its swap runs before it ([`crate::plan::alter_column_type::Around`]):
/// those are recorded as done without running, so until the swap commits (`statements_done` ≤
/// the ALTER's index) nothing of the migration changed the schema but the helpers. Whatever
/// follows the ALTER runs after its swap.
pub(crate) struct CutTypeChange {
    /// The ALTER's index in the up part.
    pub index: usize,
    pub around: crate::plan::alter_column_type::Around,
    pub s: SqlStatement,
    pub st: Stmt,
    /// The around's statements after the ALTER are all that follows it.
    pub whole: bool,
}

pub(crate) fn cut_type_change_of(
    target: crate::target::Target,
    m: &Migration,
) -> Option<CutTypeChange> {
    use crate::plan::alter_column_type as act;
    if target.engine != EngineKind::Postgres {
        return None;
    }
    let sql = &m.part(Direction::Up)?.sql;
    crate::migration::versioned_directive(sql)
        .is_none()
        .then_some(())?;
    let (split, stmts) = statements(target, sql)?;
    let index = stmts
        .iter()
        .position(|st| matches!(st.actions(), [Action::AlterColumnType { .. }]))?;
    let folds: Vec<Option<act::Fold>> = stmts.iter().map(act::fold_of).collect();
    let texts: Vec<&str> = split.iter().map(|s| s.sql.as_str()).collect();
    let around = act::Around::of(&folds, &texts, index);
    // Every statement before the ALTER runs in its swap: none of them ran.
    (around.before.len() == index).then_some(())?;
    let whole = index + 1 + around.after.len() == stmts.len();
    Some(CutTypeChange {
        index,
        around,
        s: split[index].clone(),
        st: stmts[index].clone(),
        whole,
    })
}

/// After `up` applied a migration that is the type change `b` ([`type_change_of`]): `b` when its
/// swap kept the old column (the migration is then `expanded`), read from the catalog so that a
/// resumed run decides as the first did.
pub(crate) async fn kept_type_change(
    engine: &mut dyn Engine,
    b: Breaking,
) -> Result<Option<Breaking>> {
    let Breaking::ColumnType { table, column } = &b else {
        unreachable!()
    };
    let name = match &table.schema {
        Some(sc) => crate::quote::pg::qualified(sc, &table.name),
        None => crate::quote::pg::ident(&table.name),
    };
    let old = crate::plan::alter_column_type::old_name(column);
    let kept = query_scalar(
        engine,
        &format!(
            "SELECT count(*) FROM pg_attribute WHERE attrelid = to_regclass({}) AND attname = {} AND NOT attisdropped",
            crate::quote::pg::literal(&name),
            crate::quote::pg::literal(&old)
        ),
    )
    .await?
    .as_deref()
        == Some("1");
    Ok(kept.then_some(b))
}

/// `up --complete` after `up` kept the old column of a type change: its contract phase now.
pub(crate) async fn complete_kept(
    engine: &mut dyn Engine,
    m: &Migration,
    ctx: &RunContext,
) -> Result<()> {
    let (s, st, b) = lifecycle_change(engine.target(), m)?.expect("a kept type change");
    let phases = phases_live(engine, m, &s, &st, &b).await?;
    let row = engine
        .history()
        .await?
        .into_iter()
        .find(|r| r.version == m.version)
        .expect("recorded by up");
    contract(engine, m, row, &phases, ctx).await
}

/// The tables that migrations of this run create before `version` (pending ones of a lower
/// version): no application version can use them yet, so renaming or dropping in them breaks
/// nothing and runs as written. This is what lets a history be applied from an empty database
/// (create, later rename, later drop) in the default mode.
fn created_before(
    target: crate::target::Target,
    files: &[Migration],
    rows: &[HistoryRow],
    version: i64,
) -> Vec<QName> {
    // The same notion of a run lint and plan use: one walk, in the order `up` applies them.
    crate::analysis::RunTables::of(target, pending_before(files, rows, version)).current()
}

/// The migrations of this run that come before `version`: pending (not applied, baselined or
/// expanded when the run began), in the order `up` applies them.
fn pending_before<'f>(
    files: &'f [Migration],
    rows: &'f [HistoryRow],
    version: i64,
) -> impl Iterator<Item = &'f Migration> {
    let done = move |v: i64| {
        rows.iter().any(|r| {
            r.version == v
                && matches!(
                    r.state,
                    RecordState::Applied | RecordState::Baseline | RecordState::Expanded
                )
        })
    };
    files
        .iter()
        .filter(move |m| m.version >= 0 && m.version < version && !done(m.version))
}

/// The columns that migrations of this run add before `version` (ADD COLUMN, or a rename of a
/// column itself added in the run), by table: no application version can use them yet either.
fn columns_added_before(
    target: crate::target::Target,
    files: &[Migration],
    rows: &[HistoryRow],
    version: i64,
) -> Vec<(QName, String)> {
    let mut added: Vec<(QName, String)> = Vec::new();
    for m in pending_before(files, rows, version) {
        let Some(part) = m.part(Direction::Up) else {
            continue;
        };
        for (i, s) in sql::split(target.engine, &part.sql)
            .unwrap_or_default()
            .iter()
            .enumerate()
        {
            for a in crate::analysis::ir::build(target.engine, i, s, 0, &s.sql).actions() {
                match a {
                    Action::AddColumn { table, column, .. } => {
                        added.push((table.clone(), column.name.clone()))
                    }
                    Action::RenameColumn { table, from, to } => {
                        for (t, c) in added.iter_mut() {
                            if t.matches(table) && same_column(target.engine, c, from) {
                                *c = to.clone();
                            }
                        }
                    }
                    Action::DropColumn { table, column, .. } => added.retain(|(t, c)| {
                        !(t.matches(table) && same_column(target.engine, c, column))
                    }),
                    _ => {}
                }
            }
        }
    }
    added
}

/// Whether every column `b` renames or drops was added by an earlier migration of this run: a
/// change to them breaks nothing either.
fn columns_of_the_run(
    target: crate::target::Target,
    m: &Migration,
    run: InRun<'_>,
    b: &Breaking,
) -> bool {
    // A column added earlier in the run is one the running version does not write: exactly
    // what the fill's trigger is for.
    if let Breaking::FillNotNull { .. } = b {
        return false;
    }
    // Several versioned columns run with versioned schemas even when all are new: as written,
    // the second ALTER of a table could not be staged (planned from the table before the
    // migration), and versioned schemas serve new columns just as well.
    if let Breaking::Versioned { changes } = b {
        if changes.len() > 1 {
            return false;
        }
    }
    let cols = b.columns();
    !cols.is_empty() && {
        let added = columns_added_before(target, run.files, run.rows, m.version);
        cols.iter().all(|c| {
            added
                .iter()
                .any(|(t, a)| t.matches(b.table()) && same_column(target.engine, a, c))
        })
    }
}

/// The columns of a versioned migration `b` an earlier migration of this run adds: `plan` and
/// `up --dry-run` read the live table, where they are not yet, while `up` plans the expand when it
/// reaches the migration (the earlier one has run by then). Empty: none, or not versioned.
fn versioned_columns_of_the_run(
    target: crate::target::Target,
    m: &Migration,
    run: InRun<'_>,
    b: &Breaking,
) -> Vec<String> {
    let Breaking::Versioned { changes } = b else {
        return vec![];
    };
    let added = columns_added_before(target, run.files, run.rows, m.version);
    changes
        .iter()
        .filter(|c| {
            added
                .iter()
                .any(|(t, a)| t.matches(&c.table) && same_column(target.engine, a, &c.column))
        })
        .map(|c| format!("{}.{}", c.table, c.column))
        .collect()
}

/// What `plan` and `up --dry-run` say of a versioned migration whose columns an earlier migration
/// of the run adds (see [`versioned_columns_of_the_run`]).
fn planned_when_reached(b: &Breaking, added: &[String]) -> String {
    format!(
        "`sluice up` runs {} with versioned schemas (expand phase, two application versions live) when it reaches this migration: {} {} added by an earlier migration of this run, so the expand steps are read from the table then (run `sluice plan` after that migration to see them)",
        b.describe(),
        added.join(", "),
        if added.len() == 1 { "is" } else { "are" }
    )
}

/// Column names as the engine compares them (MariaDB/MySQL: case-insensitively).
use crate::analysis::ir::same_column;

/// An `up` run: the migration files and the history as the run found it.
#[derive(Clone, Copy)]
pub(crate) struct InRun<'a> {
    pub files: &'a [Migration],
    pub rows: &'a [HistoryRow],
}

/// [`breaking`], except that a change to a table created earlier in this run breaks nothing.
/// The earlier migrations are read only for a migration that renames (most do not).
pub(crate) fn breaking_in_run(
    target: crate::target::Target,
    m: &Migration,
    run: InRun<'_>,
) -> Result<Option<(SqlStatement, Stmt, Breaking)>> {
    let all_fresh = |tables: &[&QName]| {
        let fresh = created_before(target, run.files, run.rows, m.version);
        tables.iter().all(|t| fresh.iter().any(|f| f.matches(t)))
    };
    let fresh_columns = |b: &Breaking| columns_of_the_run(target, m, run, b);
    match breaking(target, m) {
        Ok(None) => Ok(None),
        Ok(Some(found)) if all_fresh(&found.2.tables()) => Ok(None),
        Ok(Some(found)) if fresh_columns(&found.2) => Ok(None),
        Ok(Some(found)) => Ok(Some(found)),
        // A part that renames or drops several columns, or mixes that with other statements, is
        // fine when every table it renames or drops in is new in this run.
        Err(e) => {
            let renamed: Vec<QName> = m
                .part(Direction::Up)
                .and_then(|part| sql::split(target.engine, &part.sql).ok())
                .into_iter()
                .flatten()
                .enumerate()
                .flat_map(|(i, s)| {
                    crate::analysis::ir::build(target.engine, i, &s, 0, &s.sql)
                        .actions()
                        .iter()
                        .filter_map(|a| match a {
                            Action::RenameColumn { table, .. } => Some(table.clone()),
                            Action::DropColumn { table, .. } => Some(table.clone()),
                            Action::RenameTable { from, .. } => Some(from.clone()),
                            _ => None,
                        })
                        .collect::<Vec<_>>()
                })
                .collect();
            if !renamed.is_empty() && all_fresh(&renamed.iter().collect::<Vec<_>>()) {
                Ok(None)
            } else {
                Err(e)
            }
        }
    }
}

/// Before `up` runs anything: refuses (exit 11) a breaking migration the lifecycle cannot run
/// here (MariaDB/MySQL; a table with a breaking migration already expanded, or about to be by an
/// earlier migration of the same run when `complete` is off), and a part mixing a breaking
/// statement with others (exit 2).
///
/// `kept`: the type changes the live catalog says will keep their old column (see
/// `kept_type_changes`); a type change not among them (a small table's, a catalog-only one) opens
/// nothing on its table.
pub(crate) fn check_up(
    target: crate::target::Target,
    files: &[Migration],
    planned: &[i64],
    rows: &[HistoryRow],
    complete: bool,
    kept: &[i64],
    children: &[(i64, Breaking)],
) -> Result<()> {
    match in_run_conflicts(
        target,
        files,
        planned,
        rows,
        complete,
        (kept, children),
        false,
    )?
    .into_iter()
    .next()
    {
        Some((_, e)) => Err(e),
        None => Ok(()),
    }
}

/// `plan`'s view of [`check_up`]: every migration `up` would refuse because a breaking change is
/// open on its table (expanded, or about to be earlier in the run), each with that refusal. A
/// migration the lifecycle cannot carry at all is left out: `plan` shows its own reason for it.
pub(crate) fn open_table_conflicts(
    target: crate::target::Target,
    files: &[Migration],
    planned: &[i64],
    rows: &[HistoryRow],
    complete: bool,
    kept: &[i64],
    children: &[(i64, Breaking)],
) -> Vec<(i64, Error)> {
    in_run_conflicts(
        target,
        files,
        planned,
        rows,
        complete,
        (kept, children),
        true,
    )
    .unwrap_or_default()
}

/// [`check_up`]'s walk over the run. `all`: go on after a conflict and collect every one (other
/// errors skipped); else the first conflict is the only one and other errors are returned.
fn in_run_conflicts(
    target: crate::target::Target,
    files: &[Migration],
    planned: &[i64],
    rows: &[HistoryRow],
    complete: bool,
    (kept, children): (&[i64], &[(i64, Breaking)]),
    all: bool,
) -> Result<Vec<(i64, Error)>> {
    let mut conflicts = Vec::new();
    // Breaking changes open on a table: expanded by an earlier `up` (true), or about to be by an
    // earlier migration of this run (false) — the fix differs.
    let mut open: Vec<(String, String, Breaking, bool)> = Vec::new();
    for r in rows.iter().filter(|r| r.state == RecordState::Expanded) {
        if let Some(m) = files.iter().find(|m| m.version == r.version) {
            if let Ok(Some((_, _, b))) = lifecycle_change(target, m) {
                open.push((m.label(), m.version_text.clone(), b, true));
            }
            for (_, b) in children.iter().filter(|(v, _)| *v == m.version) {
                open.push((m.label(), m.version_text.clone(), b.clone(), true));
            }
        }
    }
    let first_fix = |v: &str, expanded: bool| {
        if expanded {
            format!("finish the first one with `sluice complete {v}` once the new application version runs everywhere (or undo it with `sluice rollback {v}`), then run `sluice up` again")
        } else {
            format!("apply the first one alone with `sluice up --to {v}`, deploy the application version that uses its names, run `sluice complete {v}`, then `sluice up` again; or run both phases of each now with `sluice up --complete` (no window with two application versions)")
        }
    };
    let state = |expanded: bool| {
        if expanded {
            "is expanded"
        } else {
            "would be expanded earlier in this run"
        }
    };
    for v_now in planned {
        let Some(m) = files.iter().find(|m| m.version == *v_now) else {
            continue;
        };
        let found = breaking_in_run(target, m, InRun { files, rows });
        if target.engine.is_mysql_family() && !all {
            if let Err(e) = found {
                // The versioned directive's refusal is about the file (exit 2), as on PostgreSQL;
                // so is a split or merge of columns' (its own reason and fix).
                if m.part(Direction::Up)
                    .and_then(|p| crate::migration::versioned_directive(&p.sql))
                    .is_some()
                    || splits_or_merges(target, m)
                    || fill_unreadable(target, m)
                {
                    return Err(e);
                }
                return Err(Error::lifecycle(
                    format!(
                        "migration {} renames or drops a column or renames a table in a way the two-phase lifecycle does not carry on {}: {e}",
                        m.label(),
                        target.engine
                    ),
                    "write the rename alone as `ALTER TABLE t RENAME COLUMN a TO b` or `RENAME TABLE a TO b`, or the drop alone as `ALTER TABLE t DROP COLUMN c[, DROP COLUMN d]`, in a migration of its own (a CHANGE COLUMN that also changes the definition, or a DROP COLUMN or RENAME with other clauses, runs in one step: `sluice up --as-written`, once no running version uses the old name)",
                ));
            }
        }
        // A type change that is a migration of its own keeps the old column (an expanded state)
        // when it is staged: not next to another open change of its table either.
        let found = match found {
            Ok(None) => Ok(type_change_of(target, m).filter(|_| !complete && kept.contains(v_now))),
            other => other,
        };
        let found = match found {
            Err(_) if all => continue,
            other => other?,
        };
        // A table created with the name of a table an open DROP TABLE keeps behind a
        // view until complete: the name is taken until then ("relation already exists").
        if let Some((label, v, eb, expanded)) = open.iter().find(|(_, _, eb, _)| {
            matches!(eb, Breaking::DropTable { .. })
                && m.part(Direction::Up).is_some_and(|part| {
                    sql::split(target.engine, &part.sql)
                        .unwrap_or_default()
                        .iter()
                        .enumerate()
                        .any(|(i, s)| {
                            crate::analysis::ir::build(target.engine, i, s, 0, &s.sql)
                                .actions()
                                .iter()
                                .any(|a| match a {
                                    Action::CreateTable { table, .. } => eb.touches(table),
                                    _ => false,
                                })
                        })
                })
        }) {
            conflicts.push((*v_now, Error::lifecycle(
                format!(
                    "migration {} creates {} while migration {label} ({}) {}: the name stands for the dropped table's view until `sluice complete`",
                    m.label(),
                    eb.table(),
                    eb.describe(),
                    state(*expanded),
                ),
                first_fix(v, *expanded),
            )));
            if !all {
                break;
            }
            continue;
        }
        // An index or a constraint made on the old name of a column an open rename renames: the
        // contract drops the old column with what is built on it and gives only the copies the
        // expand made their names, so this one would be lost, or make `complete` fail part-way.
        // An index column is its expression as written: a name, quoted or not.
        let is_column = |c: &str, name: &str| {
            let c = c.trim();
            let unquoted = ['`', '"'].iter().find_map(|q| {
                c.strip_prefix(*q)
                    .and_then(|x| x.strip_suffix(*q))
                    .map(|x| x.replace(&format!("{q}{q}"), &q.to_string()))
            });
            match (target.engine.is_mysql_family(), unquoted) {
                (true, n) => n.as_deref().unwrap_or(c).eq_ignore_ascii_case(name),
                (false, Some(n)) => n == name,
                (false, None) => c.to_lowercase() == name,
            }
        };
        let on_old_name = m.part(Direction::Up).and_then(|part| {
            let stmts = sql::split(target.engine, &part.sql).unwrap_or_default();
            stmts.iter().enumerate().find_map(|(i, s)| {
                let built = crate::analysis::ir::build(target.engine, i, s, 0, &s.sql);
                // Every name an index's expressions, INCLUDE list and WHERE clause use: each
                // is a column of the indexed table.
                let mut index_names = Vec::new();
                if let Some(sqlparser::ast::Statement::CreateIndex(ci)) = built.ast.as_deref() {
                    let _ = sqlparser::ast::visit_expressions(ci, |e| {
                        if let sqlparser::ast::Expr::Identifier(id) = e {
                            index_names.push(id.to_string());
                        }
                        std::ops::ControlFlow::<()>::Continue(())
                    });
                    index_names.extend(ci.include.iter().map(|id| id.to_string()));
                }
                built.actions().iter().find_map(|a| {
                    let (table, columns, what) = match a {
                        Action::CreateIndex { table, columns, .. } => {
                            let mut all = columns.clone();
                            all.extend(index_names.iter().cloned());
                            (table, all, "an index")
                        }
                        Action::AddConstraint { table, constraint } => {
                            let mut cols = constraint.columns.clone();
                            cols.extend(constraint.expr_columns.iter().cloned());
                            (table, cols, "a constraint")
                        }
                        _ => return None,
                    };
                    open.iter()
                        .find(|(_, _, eb, _)| match eb {
                            Breaking::RenameColumn { table: t, from, .. } => {
                                t.matches(table) && columns.iter().any(|c| is_column(c, from))
                            }
                            _ => false,
                        })
                        .map(|o| (o.clone(), what))
                })
            })
        });
        if let Some(((label, v, eb, expanded), what)) = on_old_name {
            let (from, to) = match &eb {
                Breaking::RenameColumn { from, to, .. } => (from.clone(), to.clone()),
                _ => unreachable!("found as a column rename"),
            };
            conflicts.push((*v_now, Error::lifecycle(
                format!(
                    "migration {} builds {what} on {}.{from} while migration {label} ({}) {}: `sluice complete` drops {from} with what is built on it (the expand copied only what was there), so it would be lost or make the contract fail",
                    m.label(),
                    eb.table(),
                    eb.describe(),
                    state(expanded),
                ),
                format!("name the new column `{to}` in it instead (both names hold the same values while expanded), or {}", first_fix(&v, expanded)),
            )));
            if !all {
                break;
            }
            continue;
        }
        let Some((_, _, b)) = found else {
            continue;
        };
        // One versioned schema open at a time: the new version's search_path would need every
        // open version's schema, and `up` prints (and `sluice.search_path_for` gives) one.
        if matches!(b, Breaking::Versioned { .. }) {
            if let Some((label, v, eb, expanded)) = open.iter().find(|(_, _, eb, _)| {
                matches!(eb, Breaking::Versioned { .. }) && !eb.shares_table(&b)
            }) {
                conflicts.push((*v_now, Error::lifecycle(
                    format!(
                        "migration {} would {} in a versioned schema while migration {label} ({}) {}: the new application version would need both version schemas on its search_path, and sluice gives it one",
                        m.label(),
                        b.describe(),
                        eb.describe(),
                        state(*expanded),
                    ),
                    first_fix(v, *expanded),
                )));
                if !all {
                    break;
                }
                continue;
            }
        }
        if matches!(b, Breaking::ColumnType { .. }) {
            if let Some((label, v, eb, expanded)) =
                open.iter().find(|(_, _, eb, _)| eb.touches(b.table()))
            {
                conflicts.push((*v_now, Error::lifecycle(
                    format!(
                        "migration {} would {} while migration {label} ({}) {} on the same table: its staged form would keep an old column beside an open change",
                        m.label(),
                        b.describe(),
                        eb.describe(),
                        state(*expanded),
                    ),
                    first_fix(v, *expanded),
                )));
                if !all {
                    break;
                }
            }
            continue;
        }
        if let Some((label, v, eb, expanded)) =
            open.iter().find(|(_, _, eb, _)| eb.shares_table(&b))
        {
            conflicts.push((*v_now, Error::lifecycle(
                format!(
                    "migration {} would {} while migration {label} ({}) {} on the same table: a second breaking change on {} while two application versions run would leave a third version nobody deployed",
                    m.label(),
                    b.describe(),
                    eb.describe(),
                    state(*expanded),
                    b.table()
                ),
                first_fix(v, *expanded),
            )));
            if !all {
                break;
            }
            // `up` stops here: what it refuses opens nothing for the migrations after it.
            continue;
        }
        if !complete {
            open.push((m.label(), m.version_text.clone(), b, false));
        }
    }
    Ok(conflicts)
}

/// Test hook: `SLUICE_CRASH_AT=<point>` ends the process there the way kill -9 does (no cleanup,
/// connections just drop), so tests show that a rerun converges from exactly there. Points:
/// `expand-step-<k>` (before expand step k, the steps before it committed), `expand-unrecorded`
/// (every step done, the expanded state not yet recorded), `rollback-step-<k>` (before step k
/// of a staged rollback, e.g. a DROP COLUMN's NOT NULL restored) and `before-commit` (a phase
/// committed with its history record — an atomic expand, complete, rollback — done and recorded,
/// not committed). A kept type change's rollback adds `rollback-watched` (its watch trigger
/// installed, nothing counted yet), `rollback-refused` (the count refused, the watch not yet
/// removed), `rollback-swap` (before each attempt of the swap back) and `rollback-recounted`
/// (a swap failed on the watch's record, counted again, not yet retried). `SLUICE_PAUSE_AT` holds
/// the process at any of them ([`crate::pause_point`]).
fn crash_point(point: &str) {
    crate::pause_point(point);
    if std::env::var("SLUICE_CRASH_AT").is_ok_and(|p| p == point) {
        eprintln!("sluice: SLUICE_CRASH_AT={point}: ending the process here");
        std::process::abort();
    }
}

/// The `sluice.meta` keys of migration `version` that say its expand phase dropped a NOT NULL.
async fn drop_notes(engine: &mut dyn Engine, version: i64) -> Result<Vec<String>> {
    if query_scalar(engine, "SELECT to_regclass('sluice.meta') IS NOT NULL")
        .await?
        .as_deref()
        != Some("t")
    {
        return Ok(vec![]);
    }
    let prefix = crate::plan::expand::drop_column::meta_prefix(version);
    Ok(engine
        .query_text(&format!(
            "SELECT key FROM sluice.meta WHERE starts_with(key, {})",
            crate::quote::pg::literal(&prefix)
        ))
        .await?
        .into_iter()
        .filter_map(|r| r.into_iter().next().flatten())
        .collect())
}

/// The phases of `b` from the live catalog.
async fn phases_live(
    engine: &mut dyn Engine,
    m: &Migration,
    s: &SqlStatement,
    st: &Stmt,
    b: &Breaking,
) -> Result<Phases> {
    let table = b.table();
    let name = match &table.schema {
        Some(sc) => crate::quote::pg::qualified(sc, &table.name),
        None => crate::quote::pg::ident(&table.name),
    };
    let file_err = |message: String| {
        let part = m
            .part(Direction::Up)
            .expect("breaking statements are in the up part");
        let (path, text) = m.file_of(part);
        let (line, col) = sql::line_col(text, part.offset + s.offset);
        Error::MigrationFile {
            path: path.to_path_buf(),
            line: Some(line),
            message: format!("line {line}, column {col}: {message}"),
            help: "`sluice up --as-written` runs the statement as written (every running instance that still uses the old name fails from that moment)".into(),
        }
    };
    match b {
        Breaking::RenameColumn { from, to, .. } if engine.target().engine.is_mysql_family() => {
            let mut f = mysql_facts(engine, table, from, to).await?;
            f.expanded = is_expanded(engine, m).await;
            if f.expanded {
                // What the contract would break (triggers and views naming the old column):
                // the bodies, and the names from the same read.
                f.trigger_bodies = text_pairs(
                    engine
                        .query_text(&format!(
                            "SELECT TRIGGER_NAME, ACTION_STATEMENT FROM information_schema.TRIGGERS WHERE {}",
                            triggers_of(table)
                        ))
                        .await?,
                );
                f.triggers_present = f.trigger_bodies.iter().map(|(n, _)| n.clone()).collect();
                // Triggers of other tables and every database's views: a trigger elsewhere can
                // write t's column, a view anywhere can read it (by an alias too).
                f.other_triggers = text_pairs(
                    engine
                        .query_text(&format!(
                            "SELECT CONCAT(TRIGGER_SCHEMA, '.', TRIGGER_NAME), ACTION_STATEMENT FROM information_schema.TRIGGERS WHERE NOT ({})",
                            triggers_of(table)
                        ))
                        .await?,
                );
                f.views = mysql_views(engine).await?;
                f.database = mysql_database(engine, table).await?;
            } else {
                f.triggers_present = mysql_triggers(engine, table).await?;
            }
            {
                use crate::plan::expand::drop_column_mysql::{
                    columns_sql, marks_sql, meta_key, Live,
                };
                for r in engine
                    .query_text(&columns_sql(table.schema.as_deref(), &table.name))
                    .await?
                {
                    let at = |i: usize| r.get(i).cloned().flatten();
                    let text = |i: usize| at(i).unwrap_or_default();
                    if text(0).eq_ignore_ascii_case(from) {
                        f.live = Some(Live {
                            name: text(0),
                            default: at(1),
                            nullable: text(2).eq_ignore_ascii_case("YES"),
                            data_type: text(3).to_lowercase(),
                            column_type: text(4).to_lowercase(),
                            extra: text(5).to_lowercase(),
                        });
                    }
                }
                f.mark = meta_key(
                    m.version,
                    &table.name,
                    from,
                    table_names_fold(engine).await?,
                );
                // A history that does not exist yet (plan on a fresh database) has no notes.
                f.default_given = engine
                    .query_text(&marks_sql(m.version))
                    .await
                    .unwrap_or_default()
                    .into_iter()
                    .filter_map(|r| r.into_iter().next().flatten())
                    .any(|k| k == f.mark);
            }
            if f.column.is_none() && !f.has_to {
                return Err(file_err(format!(
                    "column {from} of {table} does not exist, so `{}` cannot run",
                    b.describe()
                )));
            }
            crate::plan::expand::rename_column_mysql::phases(st, &f).map_err(|why| {
                file_err(format!(
                    "sluice cannot {} in two phases: {why}",
                    b.describe()
                ))
            })
        }
        Breaking::RenameColumn { from, to, .. } => {
            let Some(cat) = engine.column_catalog(&name, from).await? else {
                return Err(file_err(format!(
                    "column {from} of {table} does not exist, so `{}` cannot run",
                    b.describe()
                )));
            };
            // Expanded: planned from what the expand carried, with what was made on either
            // name since refusing complete or rollback (both columns read live).
            let new_cat = match is_expanded(engine, m).await {
                true => engine.column_catalog(&name, to).await?,
                false => None,
            };
            match &new_cat {
                Some(new_cat) => {
                    crate::plan::expand::rename_column::expanded_phases(st, &cat, new_cat)
                }
                None => crate::plan::expand::rename_column::phases(st, &cat, to),
            }
            .map_err(|why| {
                file_err(format!(
                    "sluice cannot {} in two phases: {why}",
                    b.describe()
                ))
            })
        }
        Breaking::DropTable {
            if_exists, cascade, ..
        } if !engine.target().engine.is_mysql_family() => {
            use crate::plan::expand::drop_table::{
                dropped_name, obstacles, obstacles_sql, phases, DropFacts,
            };
            use crate::plan::expand::rename_table::{catalog_sql, facts};
            let hidden = dropped_name(&table.name);
            let rows = engine.query_text(&catalog_sql(&name, &hidden)).await?;
            let why = |why: String| {
                file_err(format!(
                    "sluice cannot {} in two phases: {why}",
                    b.describe()
                ))
            };
            let f = facts(
                rows.first().map(|r| r.as_slice()),
                &table.display(),
                &hidden,
            )
            .map_err(why)?;
            let mut d = DropFacts {
                if_exists: *if_exists,
                cascade: *cascade,
                ..Default::default()
            };
            if f.as_ref().is_some_and(|f| !f.expanded) {
                obstacles(&engine.query_text(&obstacles_sql(&name)).await?, &mut d);
            }
            phases(st, &table.display(), f.as_ref(), &d).map_err(|e| {
                if f.is_none() {
                    file_err(format!("{e}, so `{}` cannot run", b.describe()))
                } else {
                    why(e)
                }
            })
        }
        Breaking::DropTable { if_exists, .. } => {
            use crate::plan::expand::rename_table_mysql::{dropped_name, referenced_by_sql};
            let hidden = QName {
                schema: table.schema.clone(),
                name: dropped_name(&table.name),
            };
            let mut f = mysql_rename_table_facts(engine, m, table, &hidden).await?;
            f.drop = true;
            f.if_exists = *if_exists;
            f.referenced_by = engine
                .query_text(&referenced_by_sql(table.schema.as_deref(), &table.name))
                .await?
                .into_iter()
                .filter_map(|r| r.into_iter().next().flatten())
                .collect();
            crate::plan::expand::rename_table_mysql::phases(st, &f).map_err(|why| {
                file_err(format!(
                    "sluice cannot {} in two phases: {why}",
                    b.describe()
                ))
            })
        }
        Breaking::RenameTable { to, .. } if engine.target().engine.is_mysql_family() => {
            let f = mysql_rename_table_facts(engine, m, table, to).await?;
            crate::plan::expand::rename_table_mysql::phases(st, &f).map_err(|why| {
                file_err(format!(
                    "sluice cannot {} in two phases: {why}",
                    b.describe()
                ))
            })
        }
        Breaking::RenameTable { to, .. } => {
            use crate::plan::expand::rename_table::{catalog_sql, facts, phases};
            let rows = engine.query_text(&catalog_sql(&name, &to.name)).await?;
            let why = |why: String| {
                file_err(format!(
                    "sluice cannot {} in two phases: {why}",
                    b.describe()
                ))
            };
            let Some(f) = facts(
                rows.first().map(|r| r.as_slice()),
                &table.display(),
                &to.name,
            )
            .map_err(why)?
            else {
                return Err(file_err(format!(
                    "table {table} does not exist, so `{}` cannot run",
                    b.describe()
                )));
            };
            // A subscriber applies a published table's changes by its name: renamed on the
            // publisher, they stop the subscription (as the rename as written does), and no
            // order of the two sides avoids it. Asked before the expand only.
            if !f.expanded {
                let mut d = crate::plan::expand::drop_table::DropFacts::default();
                crate::plan::expand::drop_table::obstacles(
                    &engine
                        .query_text(&crate::plan::expand::drop_table::obstacles_sql(&name))
                        .await?,
                    &mut d,
                );
                if !d.publications.is_empty() {
                    return Err(why(format!(
                        "the table is published (publication {}): a subscriber applies its changes by the table's name, so from the rename on they would stop the subscription, whichever side is renamed first (the rename as written does the same); take it out of the publication, rename it on both sides, and add it back (ALTER SUBSCRIPTION ... REFRESH PUBLICATION) in migrations of their own",
                        d.publications.join(", ")
                    )));
                }
            }
            phases(st, &f).map_err(why)
        }
        Breaking::DropColumns { columns, .. } if engine.target().engine.is_mysql_family() => {
            let f = mysql_drop_facts(engine, m, table, columns).await?;
            if f.create.is_empty() {
                return Err(file_err(format!(
                    "table {table} does not exist, so `{}` cannot run",
                    b.describe()
                )));
            }
            crate::plan::expand::drop_column_mysql::phases(st, &f).map_err(|why| {
                file_err(format!(
                    "sluice cannot {} in two phases: {why}",
                    b.describe()
                ))
            })
        }
        Breaking::DropColumns {
            columns, cascade, ..
        } => {
            use crate::plan::expand::drop_column::{meta_key, phases, Column};
            let notes = drop_notes(engine, m.version).await?;
            let mut cols = Vec::new();
            for (c, if_exists) in columns {
                let cat = engine.column_catalog(&name, c).await?;
                let not_null_dropped = cat.as_ref().is_some_and(|k| {
                    notes.contains(&meta_key(m.version, &k.schema, &k.table, &k.column))
                });
                cols.push(Column {
                    name: c.clone(),
                    if_exists: *if_exists,
                    cat,
                    not_null_dropped,
                });
            }
            phases(table, &s.sql, m.version, *cascade, &cols).map_err(|why| {
                file_err(format!(
                    "sluice cannot {} in two phases: {why}",
                    b.describe()
                ))
            })
        }
        Breaking::Versioned { changes } => {
            let mut cats = Vec::new();
            for ch in changes {
                let name = match &ch.table.schema {
                    Some(sc) => crate::quote::pg::qualified(sc, &ch.table.name),
                    None => crate::quote::pg::ident(&ch.table.name),
                };
                let Some(cat) = engine.column_catalog(&name, &ch.column).await? else {
                    return Err(file_err(format!(
                        "column {} of {} does not exist, so `{}` cannot run",
                        ch.column,
                        ch.table,
                        b.describe()
                    )));
                };
                // `docs` and `public.docs` in one migration: one column changed twice.
                if cats
                    .iter()
                    .any(|(c, _): &(crate::engine::ColumnCatalog, _)| {
                        c.schema == cat.schema && c.table == cat.table && c.column == cat.column
                    })
                {
                    return Err(file_err(format!(
                        "the migration changes column {}.{} twice: one column's type changes once in a migration",
                        crate::quote::pg::qualified(&cat.schema, &cat.table),
                        crate::quote::pg::ident(&cat.column)
                    )));
                }
                cats.push((
                    cat,
                    crate::plan::expand::versioned::Change {
                        ty: &ch.ty,
                        up: &ch.up,
                        down: &ch.down,
                    },
                ));
            }
            let catalogs: Vec<&crate::engine::ColumnCatalog> =
                cats.iter().map(|(c, _)| c).collect();
            let f = versioned_facts(engine, m, &catalogs).await?;
            let cols: Vec<_> = cats
                .iter()
                .map(|(c, ch)| {
                    (
                        c,
                        crate::plan::expand::versioned::Change {
                            ty: ch.ty,
                            up: ch.up,
                            down: ch.down,
                        },
                    )
                })
                .collect();
            crate::plan::expand::versioned::phases(&cols, &f).map_err(|why| {
                file_err(format!(
                    "sluice cannot {} in two phases: {why}",
                    b.describe()
                ))
            })
        }
        Breaking::SplitMerge { dropped, added, .. } if engine.target().engine.is_mysql_family() => {
            use crate::plan::expand::split_merge_mysql::{add_sql, phases, Facts};
            let drop = mysql_drop_facts(engine, m, table, dropped).await?;
            if drop.create.is_empty() {
                return Err(file_err(format!(
                    "table {table} does not exist, so `{}` cannot run",
                    b.describe()
                )));
            }
            let target = engine.target();
            let mut f = Facts {
                server: (target.major, target.minor, target.patch),
                ..Default::default()
            };
            let live = engine
                .query_text(&crate::plan::expand::drop_column_mysql::columns_sql(
                    table.schema.as_deref(),
                    &table.name,
                ))
                .await?;
            f.added_present = live
                .into_iter()
                .filter_map(|r| r.into_iter().next().flatten())
                .filter(|c| added.iter().any(|(a, _)| a.eq_ignore_ascii_case(c)))
                .collect();
            // The same prediction the online path makes for the ADD COLUMNs.
            if f.added_present.is_empty() {
                if let Some((_, impact)) = engine
                    .as_written_impact(&add_sql(&drop.table_sql, added))
                    .await?
                {
                    f.add_algorithm = impact.algorithm;
                }
            }
            f.triggers_present = mysql_triggers(engine, table).await?;
            f.drop = drop;
            let mut phases = phases(b, st, &f).map_err(|why| {
                file_err(format!(
                    "sluice cannot {} in two phases: {why}",
                    b.describe()
                ))
            })?;
            // Expanded: the rollback drops the added columns; a view (any database) or a trigger
            // that reads them by then would fail (1356 / 1054) once they are gone.
            if !f.added_present.is_empty() && is_expanded(engine, m).await {
                use crate::plan::expand::rename_column_mysql::{body_uses, view_uses};
                let views = mysql_views(engine).await?;
                // (name, body, on the table itself: `NEW.c` is the table's then).
                let triggers: Vec<(String, String, bool)> = engine
                    .query_text(&format!(
                        "SELECT CONCAT(TRIGGER_SCHEMA, '.', TRIGGER_NAME), ACTION_STATEMENT, IF({}, 'y', 'n') FROM information_schema.TRIGGERS WHERE TRIGGER_NAME NOT LIKE '%\\_sluice\\_%'",
                        triggers_of(table)
                    ))
                    .await?
                    .into_iter()
                    .map(|r| {
                        let at = |i: usize| r.get(i).cloned().flatten().unwrap_or_default();
                        (at(0), at(1), at(2) == "y")
                    })
                    .collect();
                let database = mysql_database(engine, table).await?;
                let mut users = Vec::new();
                for c in &f.added_present {
                    users.extend(
                        views
                            .iter()
                            .filter(|(_, d)| view_uses(d, &database, &table.name, c))
                            .map(|(v, _)| format!("view {v} reads {c}")),
                    );
                    users.extend(
                        triggers
                            .iter()
                            .filter(|(_, body, own)| body_uses(body, &table.name, c, *own))
                            .map(|(t, _, _)| format!("trigger {t} uses {c}")),
                    );
                }
                if !users.is_empty() {
                    phases.rollback_refusal = Some(format!(
                        "what was made after the expand uses the added columns: {}. The rollback drops them, and each of these would fail from then on (1356 / 1054). Change or drop them first (`sluice down` for a migration that made them), then run `sluice rollback` again",
                        users.join("; ")
                    ));
                }
            }
            Ok(phases)
        }
        Breaking::SplitMerge { dropped, .. } => {
            use crate::plan::expand::drop_column::{meta_key, Column};
            let notes = drop_notes(engine, m.version).await?;
            let mut cols = Vec::new();
            for (c, if_exists) in dropped {
                let cat = engine.column_catalog(&name, c).await?;
                let not_null_dropped = cat.as_ref().is_some_and(|k| {
                    notes.contains(&meta_key(m.version, &k.schema, &k.table, &k.column))
                });
                cols.push(Column {
                    name: c.clone(),
                    if_exists: *if_exists,
                    cat,
                    not_null_dropped,
                });
            }
            let f = crate::plan::expand::split_merge::Facts {
                dropped: cols,
                version: m.version,
            };
            let mut phases =
                crate::plan::expand::split_merge::phases(b, &s.sql, &f).map_err(|why| {
                    file_err(format!(
                        "sluice cannot {} in two phases: {why}",
                        b.describe()
                    ))
                })?;
            // Expanded: the rollback drops the added columns, and with them what was made on
            // them since. Indexes, checks and keys count only when the file's own ADD COLUMNs
            // declare none (else they may be the migration's).
            if is_expanded(engine, m).await {
                let declares = m.part(Direction::Up).is_some_and(|p| {
                    let up = p.sql.to_uppercase();
                    ["UNIQUE", "CHECK", "REFERENCES", "PRIMARY", "EXCLUDE"]
                        .iter()
                        .any(|k| up.contains(k))
                });
                let Breaking::SplitMerge { added, .. } = b else {
                    unreachable!("matched above")
                };
                let mut made = Vec::new();
                for (c, _) in added {
                    if let Some(mut cat) = engine.column_catalog(&name, c).await? {
                        if declares {
                            cat.indexes.clear();
                            cat.checks.clear();
                            cat.foreign_keys.clear();
                        }
                        made.extend(crate::plan::expand::rename_column::not_copies(&cat));
                    }
                }
                if !made.is_empty() {
                    phases.rollback_refusal = Some(format!(
                        "the added columns carry what the expand phase did not make (a later migration's or made by hand): {}. The rollback drops them, and with them each of these. Drop them first (`sluice down` for a migration that made them), then run `sluice rollback` again",
                        made.join("; ")
                    ));
                }
            }
            Ok(phases)
        }
        Breaking::FillNotNull { column, expr, .. } if engine.target().engine.is_mysql_family() => {
            let mut f = mysql_fill_facts(engine, m, table, column).await?;
            let nullable = f
                .table
                .columns
                .first()
                .and_then(|c| c.live.as_ref())
                .is_some_and(|l| l.nullable);
            // Expanded and still NULL-able: the contract sets NOT NULL on the column as it is
            // now, not the file's older definition (a later migration's default stays, and a
            // later widening is not undone by a copying MODIFY).
            let live_modify = match nullable && is_expanded(engine, m).await {
                true => crate::plan::expand::fill_not_null_mysql::live_modify(
                    &f.table.table_sql,
                    &f.table.create,
                    column,
                ),
                false => None,
            };
            // The same prediction the online path makes for the contract's MODIFY (while the
            // column is NULL-able: once it is NOT NULL the MODIFY has run).
            if nullable {
                let modify = live_modify.as_deref().unwrap_or(&st.sql);
                if let Some((_, impact)) = engine.as_written_impact(modify).await? {
                    f.modify_impact = Some((impact.algorithm, impact.lock_level));
                }
            }
            if f.table.create.is_empty() {
                return Err(file_err(format!(
                    "table {table} does not exist, so `{}` cannot run",
                    b.describe()
                )));
            }
            let mut phases =
                crate::plan::expand::fill_not_null_mysql::phases(&f, column, expr, &st.sql)
                    .map_err(|why| {
                        file_err(format!(
                            "sluice cannot {} in two phases: {why}",
                            b.describe()
                        ))
                    })?;
            if let Some(modify) = live_modify {
                phases.complete_online = Some(modify);
            }
            Ok(phases)
        }
        Breaking::FillNotNull { column, expr, .. } => {
            let Some(cat) = engine.column_catalog(&name, column).await? else {
                return Err(file_err(format!(
                    "column {column} of {table} does not exist, so `{}` cannot run",
                    b.describe()
                )));
            };
            crate::plan::expand::fill_not_null::phases(&cat, expr, m.version).map_err(|why| {
                file_err(format!(
                    "sluice cannot {} in two phases: {why}",
                    b.describe()
                ))
            })
        }
        Breaking::ColumnType { column, .. } => {
            let Some(cat) = engine.column_catalog(&name, column).await? else {
                return Err(file_err(format!(
                    "column {column} of {table} does not exist, so the kept type change cannot be completed or rolled back"
                )));
            };
            let old = crate::plan::alter_column_type::old_name(column);
            let old_exists = engine.column_catalog(&name, &old).await?.is_some();
            // The referencing columns the type change widened with it and kept (their old
            // column is there): rolled back and completed with it.
            let children = kept_children(engine, &cat).await?;
            let around = cut_type_change_of(engine.target(), m)
                .map(|c| c.around)
                .unwrap_or_default();
            crate::plan::expand::column_type::phases(&cat, old_exists, &children, &around).map_err(
                |why| {
                    // Not the file's fault: what stands in the way is in the database.
                    Error::lifecycle(
                        format!(
                            "sluice cannot complete or roll back the kept type change of {table}.{column} ({}): {why}. Nothing was changed",
                            m.label()
                        ),
                        "remove what stands in the way (drop or change what depends on the column), then run the command again",
                    )
                },
            )
        }
    }
}

/// What the MariaDB fill-and-MODIFY's phases are planned from: the table and the column as the
/// DROP COLUMN reads them, the server version and the table's triggers.
async fn mysql_fill_facts(
    engine: &mut dyn Engine,
    m: &Migration,
    table: &QName,
    column: &str,
) -> Result<crate::plan::expand::fill_not_null_mysql::Facts> {
    use crate::plan::expand::fill_not_null_mysql::{triggers_sql, Facts, Trigger};
    let target = engine.target();
    let mut f = Facts {
        table: mysql_drop_facts(engine, m, table, &[(column.to_string(), false)]).await?,
        server: (target.major, target.minor, target.patch),
        ..Default::default()
    };
    for r in engine
        .query_text(&triggers_sql(table.schema.as_deref(), &table.name))
        .await?
    {
        let text = |i: usize| r.get(i).cloned().flatten().unwrap_or_default();
        f.triggers.push(Trigger {
            name: text(0),
            event: text(1),
            timing: text(2),
        });
    }
    Ok(f)
}

/// Whether a MariaDB fill-and-MODIFY found in the file runs in two phases: it does once expanded
/// (or cut off in its expand); before, only when its MODIFY changes nothing but the nullability
/// of the live column, NULL-able now (tried on two empty copies of the table, dropped after).
/// Otherwise it runs as written, as before (also where the copies cannot be made). Any other
/// breaking change: true.
async fn fill_applies(
    engine: &mut dyn Engine,
    m: &Migration,
    rows: &[HistoryRow],
    st: &Stmt,
    b: &Breaking,
) -> Result<bool> {
    use crate::plan::expand::fill_not_null_mysql::{
        only_nullability, operation_text, probe_names, probe_sql, probe_token,
    };
    let Breaking::FillNotNull { table, column, .. } = b else {
        return Ok(true);
    };
    if !engine.target().engine.is_mysql_family() {
        return Ok(true);
    }
    let started = rows
        .iter()
        .any(|r| r.version == m.version && r.state != crate::history::RecordState::Applied);
    if started {
        return Ok(true);
    }
    let Some(op) = operation_text(&st.sql) else {
        return Ok(false);
    };
    let table_sql = crate::quote::qname(engine.target().engine, table);
    let token = probe_token();
    let probe = probe_sql(&table_sql, table.schema.as_deref(), op, &token);
    let mut failed = None;
    for sql in &probe {
        if let Err(e) = engine.execute(sql).await {
            failed = Some(e);
            break;
        }
    }
    // Never as written for want of a check: that is the outage the two phases avoid.
    if let Some(e) = failed {
        let _ = engine.execute(&probe[0]).await;
        return Err(Error::usage(
            format!(
                "migration {}: sluice checks that the MODIFY changes nothing but the nullability of {}.{column} on two empty copies of the table (CREATE TABLE … LIKE, the MODIFY on one, both dropped), and that failed: {}",
                m.label(),
                table.display(),
                e.message
            ),
            "nothing was changed; grant CREATE, ALTER and DROP on the database (see Privileges), or make the change in a form the server accepts on the table; `sluice up --as-written` runs it in one step (the old version's INSERTs that leave the column out fail from then on)",
        ));
    }
    let mut show = Vec::new();
    let (a, b) = probe_names(table.schema.as_deref(), &token);
    for p in [a, b] {
        match engine.query_text(&format!("SHOW CREATE TABLE {p}")).await {
            Ok(rows) => show.push(
                rows.into_iter()
                    .next()
                    .and_then(|r| r.into_iter().nth(1))
                    .flatten()
                    .unwrap_or_default(),
            ),
            Err(e) => {
                let _ = engine.execute(&probe[0]).await;
                return Err(e);
            }
        }
    }
    let _ = engine.execute(&probe[0]).await;
    // The column must be NULL-able now: a MODIFY of a NOT NULL column changes nothing. (Its
    // COMMENT may say anything: only what stands before it counts.)
    let nullable_now = show[0]
        .lines()
        .find(|l| {
            crate::plan::expand::rename_column_mysql::read_ident(l.trim())
                .is_some_and(|(n, _)| n.eq_ignore_ascii_case(column))
        })
        .is_some_and(|l| {
            let head = l.split(" COMMENT '").next().unwrap_or(l);
            !head.contains(" NOT NULL")
        });
    Ok(nullable_now && only_nullability(&show[0], &show[1], column))
}

/// The referencing columns a kept type change of `cat`'s column widened with it and kept: each
/// child's column (its catalog: the new type) whose `<column>_sluice_old` is there.
pub(crate) async fn kept_children(
    engine: &mut dyn Engine,
    cat: &crate::engine::ColumnCatalog,
) -> Result<Vec<crate::engine::ColumnCatalog>> {
    let mut children: Vec<crate::engine::ColumnCatalog> = Vec::new();
    for fk in cat.foreign_keys.iter().filter(|fk| fk.referenced) {
        let Some((col, _)) = &fk.paired else { continue };
        if fk.schema == cat.schema && fk.table == cat.table && *col == cat.column {
            continue;
        }
        if children
            .iter()
            .any(|c| c.schema == fk.schema && c.table == fk.table && c.column == *col)
        {
            continue;
        }
        let child = crate::quote::pg::qualified(&fk.schema, &fk.table);
        let kept = crate::plan::alter_column_type::old_name(col);
        if engine.column_catalog(&child, &kept).await?.is_none() {
            continue;
        }
        if let Some(c) = engine.column_catalog(&child, col).await? {
            children.push(c);
        }
    }
    Ok(children)
}

/// The tables other than its own where an expanded type change keeps a column (the referencing
/// columns it widened, see [`kept_children`]): (its version, the child's column as a type
/// change of its table). A breaking migration on one of them is refused as on the parent: the
/// child's reverse trigger names its column.
pub(crate) async fn open_children(
    engine: &mut dyn Engine,
    files: &[Migration],
    rows: &[HistoryRow],
) -> Result<Vec<(i64, Breaking)>> {
    let target = engine.target();
    let mut out = Vec::new();
    if target.engine != crate::target::EngineKind::Postgres {
        return Ok(out);
    }
    for r in rows.iter().filter(|r| r.state == RecordState::Expanded) {
        let Some(m) = files.iter().find(|m| m.version == r.version) else {
            continue;
        };
        let Ok(Some((_, _, Breaking::ColumnType { table, column }))) = lifecycle_change(target, m)
        else {
            continue;
        };
        let name = match &table.schema {
            Some(sc) => crate::quote::pg::qualified(sc, &table.name),
            None => crate::quote::pg::ident(&table.name),
        };
        let Some(cat) = engine.column_catalog(&name, &column).await? else {
            continue;
        };
        for c in kept_children(engine, &cat).await? {
            out.push((
                m.version,
                Breaking::ColumnType {
                    table: QName {
                        schema: Some(c.schema),
                        name: c.table,
                    },
                    column: c.column,
                },
            ));
        }
    }
    Ok(out)
}

/// A kept type change of a column that another type change's column references, while that one
/// is expanded or is kept earlier in this run: refused (exit 11). The kept child column would
/// look like one this change widened (same kept name, same reverse trigger), so this change's
/// rollback or complete would take over the other one's. `kept`: the planned versions whose type
/// change keeps its old column (see `kept_type_changes`), in run order.
pub(crate) async fn referenced_open_type_change(
    engine: &mut dyn Engine,
    files: &[Migration],
    rows: &[HistoryRow],
    kept: &[i64],
) -> Result<()> {
    let target = engine.target();
    let mut open: Vec<(String, String, QName, String, bool)> = Vec::new();
    for r in rows.iter().filter(|r| r.state == RecordState::Expanded) {
        let Some(m) = files.iter().find(|m| m.version == r.version) else {
            continue;
        };
        if let Ok(Some((_, _, Breaking::ColumnType { table, column }))) =
            lifecycle_change(target, m)
        {
            open.push((m.label(), m.version_text.clone(), table, column, true));
        }
    }
    for v in kept {
        let Some(m) = files.iter().find(|m| m.version == *v) else {
            continue;
        };
        let Some((_, _, Breaking::ColumnType { table, column })) = type_change_of(target, m) else {
            continue;
        };
        let name = match &table.schema {
            Some(sc) => crate::quote::pg::qualified(sc, &table.name),
            None => crate::quote::pg::ident(&table.name),
        };
        if let Some(cat) = engine.column_catalog(&name, &column).await? {
            for fk in cat.foreign_keys.iter().filter(|fk| fk.referenced) {
                let Some((col, _)) = &fk.paired else { continue };
                let child = QName {
                    schema: Some(fk.schema.clone()),
                    name: fk.table.clone(),
                };
                if let Some((label, vt, _, _, expanded)) = open
                    .iter()
                    .find(|(_, _, t, c, _)| (child.matches(t) || t.matches(&child)) && c == col)
                {
                    return Err(Error::lifecycle(
                        format!(
                            "migration {} would change the type of {table}.{column}, which {}.{}.{col} references, while migration {label} changes that column's type ({}): the two changes' kept old columns would be taken for one",
                            m.label(),
                            fk.schema,
                            fk.table,
                            if *expanded { "expanded" } else { "earlier in this run" }
                        ),
                        format!("finish the first one with `sluice complete {vt}` (or undo it with `sluice rollback {vt}`), then run `sluice up` again; or apply the first one alone with `sluice up --to {vt}` and complete it first"),
                    ));
                }
            }
        }
        open.push((m.label(), m.version_text.clone(), table, column, false));
    }
    Ok(())
}

/// What a versioned type change needs besides the columns' catalogs: each table's columns in
/// order (without the helper columns) and the session's search_path.
async fn versioned_facts(
    engine: &mut dyn Engine,
    m: &Migration,
    cats: &[&crate::engine::ColumnCatalog],
) -> Result<crate::plan::expand::versioned::Facts> {
    use crate::plan::expand::versioned::names;
    use crate::quote::pg::{literal, qualified};
    let mut columns: Vec<((String, String), Vec<String>)> = Vec::new();
    let mut started = false;
    for cat in cats {
        let t = qualified(&cat.schema, &cat.table);
        started |= engine
            .column_catalog(&t, &names(cat).column)
            .await?
            .is_some();
        let key = (cat.schema.clone(), cat.table.clone());
        if columns.iter().any(|(k, _)| *k == key) {
            continue;
        }
        // Every helper column of the migration on this table is left out.
        let helpers = cats
            .iter()
            .filter(|c| c.schema == cat.schema && c.table == cat.table)
            .map(|c| literal(&names(c).column))
            .collect::<Vec<_>>()
            .join(", ");
        let names_in_order = engine
            .query_text(&format!(
                "SELECT attname FROM pg_attribute WHERE attrelid = {}::regclass AND attnum > 0 AND NOT attisdropped AND attname NOT IN ({helpers}) ORDER BY attnum",
                literal(&t),
            ))
            .await?
            .into_iter()
            .filter_map(|r| r.into_iter().next().flatten())
            .collect();
        columns.push((key, names_in_order));
    }
    let search_path = query_scalar(engine, "SELECT current_setting('search_path')")
        .await?
        .unwrap_or_default();
    Ok(crate::plan::expand::versioned::Facts {
        version: m.version_text.clone(),
        started,
        columns,
        search_path,
    })
}

/// What MariaDB/MySQL say about the table and the column a rename changes.
async fn mysql_facts(
    engine: &mut dyn Engine,
    table: &QName,
    from: &str,
    to: &str,
) -> Result<crate::plan::expand::rename_column_mysql::Facts> {
    use crate::plan::expand::rename_column_mysql::{
        add_column_sql, columns_sql, definition, foreign_keys_sql, Facts,
    };
    let target = engine.target();
    let first = |rows: Vec<Vec<Option<String>>>, i: usize| {
        rows.into_iter()
            .next()
            .and_then(|r| r.into_iter().nth(i))
            .flatten()
    };
    let table_sql = crate::quote::qname(target.engine, table);
    let schema = table.schema.as_deref();
    let mut f = Facts {
        engine: Some(target.engine),
        version: (target.major, target.minor, target.patch),
        table: table.name.clone(),
        table_sql: table_sql.clone(),
        from: from.to_string(),
        to: to.to_string(),
        ..Default::default()
    };
    let Ok(rows) = engine
        .query_text(&format!("SHOW CREATE TABLE {table_sql}"))
        .await
    else {
        return Ok(f);
    };
    f.create = first(rows, 1).unwrap_or_default();
    for r in engine.query_text(&columns_sql(schema, &table.name)).await? {
        let mut r = r.into_iter();
        let (Some(Some(name)), default, extra) = (r.next(), r.next().flatten(), r.next().flatten())
        else {
            continue;
        };
        let extra = extra.unwrap_or_default();
        if name.eq_ignore_ascii_case(from) {
            f.column = Some((default, extra));
        } else if name.eq_ignore_ascii_case(to) {
            f.has_to = true;
        } else if extra.to_lowercase().contains("on update") {
            f.on_update.push(name);
        }
    }
    // The foreign keys of each column (the new one's only once it exists).
    for (column, into) in [(from, &mut f.foreign_keys), (to, &mut f.to_foreign_keys)] {
        if column == to && !f.has_to {
            continue;
        }
        *into = engine
            .query_text(&foreign_keys_sql(schema, &table.name, column))
            .await?
            .into_iter()
            .filter_map(|r| r.into_iter().next().flatten())
            .collect();
    }
    f.galera = first(
        engine.query_text("SHOW VARIABLES LIKE 'wsrep_on'").await?,
        1,
    )
    .is_some_and(|v| v.eq_ignore_ascii_case("ON"));
    if let Some(def) = definition(&f.create, from) {
        // The same prediction the online path makes (INSTANT on MariaDB 10.4+ and MySQL 8.0.29+).
        if let Some((_, impact)) = engine.as_written_impact(&add_column_sql(&f, &def)).await? {
            f.add_algorithm = impact.algorithm;
        }
    }
    Ok(f)
}

/// Whether the history has `m` expanded (a history that does not exist yet, as for a plan on a
/// fresh database: no).
async fn is_expanded(engine: &mut dyn Engine, m: &Migration) -> bool {
    engine
        .history()
        .await
        .unwrap_or_default()
        .iter()
        .any(|r| r.version == m.version && r.state == crate::history::RecordState::Expanded)
}

/// Rows of two text columns as pairs (NULL as empty).
fn text_pairs(rows: Vec<Vec<Option<String>>>) -> Vec<(String, String)> {
    rows.into_iter()
        .map(|r| {
            let at = |i: usize| r.get(i).cloned().flatten().unwrap_or_default();
            (at(0), at(1))
        })
        .collect()
}

/// Every database's views as (`db.name`, definition) (MariaDB/MySQL): what reads a column the
/// phases drop, wherever it stands.
async fn mysql_views(engine: &mut dyn Engine) -> Result<Vec<(String, String)>> {
    Ok(text_pairs(
        engine
            .query_text(
                "SELECT CONCAT(TABLE_SCHEMA, '.', TABLE_NAME), VIEW_DEFINITION FROM information_schema.VIEWS",
            )
            .await?,
    ))
}

/// The name of `table`'s database (the connection's when the statement names none).
async fn mysql_database(engine: &mut dyn Engine, table: &QName) -> Result<String> {
    Ok(engine
        .query_text(&format!("SELECT {}", mysql_schema(table)))
        .await?
        .into_iter()
        .next()
        .and_then(|r| r.into_iter().next().flatten())
        .unwrap_or_default())
}

/// The names of `table`'s triggers (MariaDB/MySQL).
/// The table's database as SQL: named, or the connection's.
fn mysql_schema(table: &QName) -> String {
    table
        .schema
        .as_deref()
        .map(crate::quote::mysql::literal)
        .unwrap_or_else(|| "DATABASE()".into())
}

/// `information_schema.TRIGGERS`' condition for the table's triggers.
fn triggers_of(table: &QName) -> String {
    format!(
        "EVENT_OBJECT_SCHEMA = {} AND EVENT_OBJECT_TABLE = {}",
        mysql_schema(table),
        crate::quote::mysql::literal(&table.name)
    )
}

async fn mysql_triggers(engine: &mut dyn Engine, table: &QName) -> Result<Vec<String>> {
    Ok(engine
        .query_text(&format!(
            "SELECT TRIGGER_NAME FROM information_schema.TRIGGERS WHERE {}",
            triggers_of(table)
        ))
        .await?
        .into_iter()
        .filter_map(|r| r.into_iter().next().flatten())
        .collect())
}

/// Whether the server compares table names case-insensitively (`lower_case_table_names` 1 or 2,
/// as on Windows and macOS servers and some managed MySQL): with 1 it stores and reports them in
/// lower case, so `Orders` as written is `orders` in information_schema.
async fn table_names_fold(engine: &mut dyn Engine) -> Result<bool> {
    let v = query_scalar(engine, "SELECT @@lower_case_table_names").await?;
    Ok(v.is_some_and(|v| v.trim() != "0"))
}

/// What MariaDB/MySQL say about the two names of a table rename.
async fn mysql_rename_table_facts(
    engine: &mut dyn Engine,
    m: &Migration,
    table: &QName,
    to: &QName,
) -> Result<crate::plan::expand::rename_table_mysql::Facts> {
    use crate::plan::expand::rename_table_mysql::{
        columns_sql, grants_sql, own_grants_sql, tables_sql, Facts,
    };
    let target = engine.target();
    let schema = table.schema.as_deref();
    let mut f = Facts {
        engine: Some(target.engine),
        schema: table.schema.clone(),
        other_schema: to.schema != table.schema,
        from: table.name.clone(),
        to: to.name.clone(),
        ..Default::default()
    };
    // A history that does not exist yet (plan on a fresh database) has nothing recorded.
    f.recorded = engine.history().await.unwrap_or_default().iter().any(|r| {
        r.version == m.version
            && matches!(
                r.state,
                RecordState::Expanded | RecordState::Running | RecordState::Failed
            )
    });
    // Names as the server compares them.
    let fold = table_names_fold(engine).await?;
    let same = |a: &str, b: &str| crate::analysis::ir::same_table(target.engine, fold, a, b);
    for r in engine
        .query_text(&tables_sql(schema, &f.from, &f.to))
        .await?
    {
        let at = |i: usize| r.get(i).cloned().flatten();
        let (name, kind, comment) = (at(0).unwrap_or_default(), at(1), at(2));
        if same(&name, &f.from) {
            f.from_type = kind;
        } else if same(&name, &f.to) {
            f.to_type = kind;
            f.to_comment = comment.unwrap_or_default();
        }
    }
    // The table's columns: under the new name once expanded (the old one is then the view).
    let table_now = if f.from_type.as_deref() == Some("VIEW") {
        &f.to
    } else {
        &f.from
    };
    f.columns = engine
        .query_text(&columns_sql(schema, table_now))
        .await?
        .into_iter()
        .filter_map(|r| {
            let mut r = r.into_iter();
            Some((r.next().flatten()?, r.next().flatten().unwrap_or_default()))
        })
        .collect();
    // Every grantee's when the login may read the grant tables, else its own.
    let grants = match engine
        .query_text(&grants_sql(schema, &f.from, &f.to, fold))
        .await
    {
        Ok(rows) => rows,
        Err(_) => {
            engine
                .query_text(&own_grants_sql(schema, &f.from, &f.to))
                .await?
        }
    };
    f.grants = grants
        .into_iter()
        .filter_map(|r| r.into_iter().next().flatten())
        .collect();
    f.galera = engine
        .query_text("SHOW VARIABLES LIKE 'wsrep_on'")
        .await?
        .into_iter()
        .next()
        .and_then(|r| r.into_iter().nth(1))
        .flatten()
        .is_some_and(|v| v.eq_ignore_ascii_case("ON"));
    Ok(f)
}

/// What MariaDB/MySQL say about the table and the columns a DROP COLUMN drops.
async fn mysql_drop_facts(
    engine: &mut dyn Engine,
    m: &Migration,
    table: &QName,
    columns: &[(String, bool)],
) -> Result<crate::plan::expand::drop_column_mysql::Facts> {
    use crate::plan::expand::drop_column_mysql::{
        columns_sql, drop_sql, legacy_meta_key, marks_sql, meta_key, Column, Facts, Live,
    };
    use crate::plan::expand::rename_column_mysql::foreign_keys_sql;
    let target = engine.target();
    let table_sql = crate::quote::qname(target.engine, table);
    let schema = table.schema.as_deref();
    let mut f = Facts {
        engine: Some(target.engine),
        version: m.version,
        folds: table_names_fold(engine).await?,
        table: table.name.clone(),
        table_sql: table_sql.clone(),
        ..Default::default()
    };
    let Ok(rows) = engine
        .query_text(&format!("SHOW CREATE TABLE {table_sql}"))
        .await
    else {
        return Ok(f);
    };
    f.create = rows
        .into_iter()
        .next()
        .and_then(|r| r.into_iter().nth(1))
        .flatten()
        .unwrap_or_default();
    let mut all: Vec<Live> = Vec::new();
    for r in engine.query_text(&columns_sql(schema, &table.name)).await? {
        // COLUMN_DEFAULT is NULL for a column without a default; the others are never NULL.
        let at = |i: usize| r.get(i).cloned().flatten();
        let text = |i: usize| at(i).unwrap_or_default();
        all.push(Live {
            name: text(0),
            default: at(1),
            nullable: text(2).eq_ignore_ascii_case("YES"),
            data_type: text(3).to_lowercase(),
            column_type: text(4).to_lowercase(),
            extra: text(5).to_lowercase(),
        });
    }
    f.table_columns = all.len();
    // A history that does not exist yet (plan on a fresh database) has nothing expanded or noted.
    let marks: Vec<String> = engine
        .query_text(&marks_sql(m.version))
        .await
        .unwrap_or_default()
        .into_iter()
        .filter_map(|r| r.into_iter().next().flatten())
        .collect();
    f.expanded = engine
        .history()
        .await
        .unwrap_or_default()
        .iter()
        .any(|r| r.version == m.version && r.state == crate::history::RecordState::Expanded);
    for (c, if_exists) in columns {
        let live = all.iter().find(|l| l.name.eq_ignore_ascii_case(c)).cloned();
        let foreign_keys = match &live {
            Some(l) => engine
                .query_text(&foreign_keys_sql(schema, &table.name, &l.name))
                .await?
                .into_iter()
                .filter_map(|r| r.into_iter().next().flatten())
                .collect(),
            None => vec![],
        };
        let marked = live.as_ref().is_some_and(|l| {
            marks.contains(&meta_key(m.version, &table.name, &l.name, f.folds))
                || marks.contains(&legacy_meta_key(m.version, &table.name, &l.name))
        });
        f.columns.push(Column {
            name: c.clone(),
            if_exists: *if_exists,
            live,
            foreign_keys,
            marked,
        });
    }
    f.galera = engine
        .query_text("SHOW VARIABLES LIKE 'wsrep_on'")
        .await?
        .into_iter()
        .next()
        .and_then(|r| r.into_iter().nth(1))
        .flatten()
        .is_some_and(|v| v.eq_ignore_ascii_case("ON"));
    let live: Vec<&str> = f
        .columns
        .iter()
        .filter_map(|c| c.live.as_ref().map(|l| l.name.as_str()))
        .collect();
    if !live.is_empty() {
        // The same prediction the online path makes for the contract's ALTER on the live table.
        if let Some((_, impact)) = engine
            .as_written_impact(&drop_sql(&table_sql, &live))
            .await?
        {
            f.drop_algorithm = impact.algorithm;
            f.drop_lock = impact.lock_level;
        }
    }
    Ok(f)
}

/// `plan`'s hook: for a breaking migration, both phases and what each version sees (PostgreSQL),
/// with the statement's safe steps set to them and its `rename-column` finding turned into a note
/// (`up` does not run it as written); where the lifecycle refuses, the reason instead.
pub(crate) async fn plan_hook(
    engine: &mut dyn Engine,
    m: &Migration,
    run: InRun<'_>,
    statements: &mut [crate::plan::StatementPlan],
    findings: &mut Vec<crate::analysis::Finding>,
) -> Option<crate::plan::expand::LifecyclePlan> {
    let target = engine.target();
    let found = breaking_in_run(target, m, run);
    // What `up` refuses is an error of the plan (exit 7), on the breaking statement, with `up`'s
    // own words and exit code.
    let refused = |findings: &mut Vec<crate::analysis::Finding>, st: Option<&Stmt>, e: &Error| {
        let Some(part) = m.part(Direction::Up) else {
            return;
        };
        // The part's statements as lint builds them: their lines are the file's.
        let all = crate::analysis::build_part(target, m, Direction::Up).0;
        let Some(st) = all.get(st.map_or(0, |st| st.index)).or(all.first()) else {
            return;
        };
        let (message, help) = match e {
            Error::Lifecycle { message, help }
            | Error::Rejected { message, help, .. }
            | Error::Usage { message, help } => (message.clone(), help.clone()),
            other => (other.to_string(), String::new()),
        };
        findings.push(crate::analysis::finding(
            m,
            part,
            st,
            "two-phase-refused",
            crate::analysis::Severity::Error,
            format!(
                "`sluice up` refuses this migration (exit {}): {message}",
                e.exit_code()
            ),
            "a breaking migration runs in two phases; what the two phases cannot carry is refused before anything runs",
            help,
        ));
    };
    let refuse = |statements: &mut [crate::plan::StatementPlan], why: String| {
        for a in statements.iter_mut().flat_map(|sp| sp.actions.iter_mut()) {
            a.safe_steps.clear();
            a.refused = Some(why.clone());
        }
    };
    let found = match found {
        Ok(Some((s, st, b))) => match fill_applies(engine, m, run.rows, &st, &b).await {
            Ok(true) => Ok(Some((s, st, b))),
            // Not the two-phase fill: planned as written, as `up` runs it.
            Ok(false) => return None,
            Err(e) => {
                refuse(statements, format!("`sluice up` refuses it: {e}"));
                refused(findings, Some(&st), &e);
                return None;
            }
        },
        other => other,
    };
    let (s, st, b) = match found {
        Ok(Some(x)) => x,
        Ok(None) => {
            // Columns an earlier migration of this run added: `up` runs it as written, so the
            // finding that it breaks running code is a note, as for a table of the run.
            if let Ok(Some((_, st, b))) = breaking(target, m) {
                if columns_of_the_run(target, m, run, &b) {
                    for f in findings.iter_mut().filter(|f| {
                        f.statement == st.index
                            && (f.rule == "rename-column" || f.rule == "drop-column")
                    }) {
                        f.severity = crate::analysis::Severity::Info;
                        f.message = format!(
                            "{} (the column is added earlier in this run: no running application version uses it, so `sluice up` runs this as written)",
                            f.message
                        );
                    }
                }
            }
            return None;
        }
        Err(e) => {
            refuse(statements, format!("`sluice up` refuses it: {e}"));
            let st = breaking(target, m).ok().flatten().map(|(_, st, _)| st);
            refused(findings, st.as_ref(), &e);
            return None;
        }
    };
    let phases = match phases_live(engine, m, &s, &st, &b).await {
        Ok(p) => p,
        Err(e) => {
            let added = versioned_columns_of_the_run(target, m, run, &b);
            if added.is_empty() {
                refuse(statements, format!("`sluice up` refuses it: {e}"));
                refused(findings, Some(&st), &e);
            } else {
                let note = planned_when_reached(&b, &added);
                for a in statements.iter_mut().flat_map(|sp| sp.actions.iter_mut()) {
                    a.safe_steps.clear();
                    a.refused = None;
                    a.impact.note = note.clone();
                }
            }
            return None;
        }
    };
    // The server-side prechecks, as `up` runs them first (in a transaction rolled back).
    if let Err(e) = run_prechecks(engine, m, b.table(), &phases, true).await {
        refuse(statements, format!("`sluice up` refuses it: {e}"));
        refused(findings, Some(&st), &e);
        return None;
    }
    let lp = crate::plan::expand::LifecyclePlan::of(&b, &phases);
    // What `up` runs: the expand phase (complete and rollback are in the lifecycle section).
    // Once per statement (a DROP COLUMN of several columns is one statement of several actions).
    for sp in statements.iter_mut().filter(|sp| sp.index == st.index) {
        // Not the engine's online path (MariaDB/MySQL): the phases replace it.
        sp.online = None;
        for (k, a) in sp.actions.iter_mut().enumerate() {
            a.refused = None;
            a.safe_steps = if k == 0 { lp.expand.clone() } else { vec![] };
        }
    }
    // The fill's UPDATE runs inside the expand phase (its backfill, after the fill trigger); so
    // do a split's or merge's ADD COLUMN and UPDATE.
    if let Some(note) = inside_note(&b) {
        for sp in statements.iter_mut().filter(|sp| sp.index != st.index) {
            for a in sp.actions.iter_mut() {
                a.refused = None;
                a.safe_steps.clear();
                a.impact.note = note.to_string();
            }
            // One ADD COLUMN of several columns is several like actions now: the note once.
            sp.actions.dedup();
        }
    }
    for f in findings
        .iter_mut()
        .filter(|f| f.rule == "rename-column" || f.rule == "rename-table")
    {
        f.severity = crate::analysis::Severity::Info;
        f.message = format!(
            "{} (as written; `sluice up` runs it in two phases instead: expand now, both names work until `sluice complete`)",
            f.message
        );
    }
    if let Breaking::Versioned { .. } = &b {
        // Every statement of the migration is one of its type changes.
        for f in findings
            .iter_mut()
            .filter(|f| f.rule == "alter-column-type")
        {
            let head = f
                .message
                .split(" (as written;")
                .next()
                .unwrap_or("")
                .to_string();
            f.severity = crate::analysis::Severity::Info;
            f.message = format!(
                "{head} (as written; `sluice up` runs it with versioned schemas instead: a new column kept in step by a trigger, a paced backfill, and a schema per version whose view shows the new type under the old name; `sluice complete` drops the old column)"
            );
        }
    }
    // The data is still lost at complete: the warning stays, saying when.
    for f in findings.iter_mut().filter(|f| f.rule == "drop-table") {
        f.message = format!(
            "{} (`sluice up` runs it in two phases: the table stays, renamed behind a view with its name, while both versions run; `sluice complete` drops it)",
            f.message
        );
    }
    for f in findings.iter_mut().filter(|f| f.rule == "drop-column") {
        f.message = format!(
            "{} (`sluice up` runs it in two phases: the column stays while both versions run, `sluice complete` drops it)",
            f.message
        );
    }
    Some(lp)
}

/// What `plan` and `up --dry-run` say of the UPDATE of a fill-and-SET-NOT-NULL migration.
const FILL_UPDATE_NOTE: &str = "runs inside the expand phase of the SET NOT NULL (MariaDB: the MODIFY ... NOT NULL) after it (two application versions live): as its paced backfill, after the trigger that fills the column for writes that leave it NULL";

/// What `plan` and `up --dry-run` say of a versioned migration's type changes but its last.
const VERSIONED_NOTE: &str = "runs inside the expand phase shown at the migration's last type change (two application versions live): each versioned column has its own new column, trigger, backfill and indexes there, and all share one version schema";

/// What `plan` and `up --dry-run` say of the ADD COLUMN and the UPDATE of a split or merge.
const SPLIT_MERGE_NOTE: &str = "runs inside the expand phase of the DROP COLUMN after it (two application versions live): the ADD COLUMN as its first step, the UPDATE as its paced backfill after the trigger that keeps the added and the dropped columns in step";

/// The note for the statements of a breaking migration other than its breaking one, which run
/// inside its expand phase (None: it has no others).
fn inside_note(b: &Breaking) -> Option<&'static str> {
    match b {
        Breaking::FillNotNull { .. } => Some(FILL_UPDATE_NOTE),
        Breaking::SplitMerge { .. } => Some(SPLIT_MERGE_NOTE),
        Breaking::Versioned { changes } if changes.len() > 1 => Some(VERSIONED_NOTE),
        _ => None,
    }
}

/// `up --dry-run`'s hook: a breaking migration runs as its expand phase. What `up` refuses when
/// it reaches the migration (the shape, or what the catalog says), the dry run refuses the same
/// way, so it never says "would apply" where `up` stops, the server-side prechecks included.
pub(crate) async fn explain_dry_run(
    engine: &mut dyn Engine,
    files: &[Migration],
    planned: &mut [crate::runner::PlannedMigration],
) -> Result<()> {
    let rows = engine.history().await?;
    for p in planned.iter_mut() {
        let Some(m) = files.iter().find(|m| m.version == p.version) else {
            continue;
        };
        let run = InRun { files, rows: &rows };
        let Some((s, st, b)) = breaking_in_run(engine.target(), m, run)? else {
            continue;
        };
        if !fill_applies(engine, m, &rows, &st, &b).await? {
            continue;
        }
        let phases = match phases_live(engine, m, &s, &st, &b).await {
            Ok(phases) => phases,
            Err(e) => {
                let added = versioned_columns_of_the_run(engine.target(), m, run, &b);
                if added.is_empty() {
                    return Err(e);
                }
                if !added.is_empty() {
                    let note = planned_when_reached(&b, &added);
                    let n = st.index + 1;
                    if p.runs_as.len() < n {
                        p.runs_as.resize(n, None);
                    }
                    for slot in p.runs_as[..n].iter_mut() {
                        *slot = Some(crate::runner::RunsAs {
                            sql: "-- nothing yet: planned when `sluice up` reaches this migration"
                                .into(),
                            note: note.clone(),
                            then: vec![],
                        });
                    }
                    p.mode = crate::migration::TxMode::PerStatement;
                    p.mode_reason =
                        "a breaking migration runs in two phases, their steps commit one by one"
                            .into();
                }
                continue;
            }
        };
        // What the server-side prechecks refuse, the dry run refuses as `up` would.
        run_prechecks(engine, m, b.table(), &phases, true).await?;
        let mut steps: Vec<String> = phases
            .expand
            .iter()
            .map(crate::plan::staged::Step::text)
            .collect();
        let first = match steps.is_empty() {
            true => {
                "-- nothing now: the column stays and needs no change for the new version".into()
            }
            false => steps.remove(0),
        };
        // As `plan` shows them: what complete and rollback run later (not steps of this run).
        let lp = crate::plan::expand::LifecyclePlan::of(&b, &phases);
        let i = st.index;
        if let Some(note) = inside_note(&b) {
            if p.runs_as.len() <= i {
                p.runs_as.resize(i + 1, None);
            }
            for slot in p.runs_as[..i].iter_mut().filter(|r| r.is_none()) {
                *slot = Some(crate::runner::RunsAs {
                    sql: format!("-- nothing now: {note}"),
                    note: note.to_string(),
                    then: vec![],
                });
            }
        }
        let i = st.index;
        if p.runs_as.len() <= i {
            p.runs_as.resize(i + 1, None);
        }
        p.runs_as[i] = Some(crate::runner::RunsAs {
            sql: first,
            note: format!(
                "{}: expand phase (two application versions live); later, `sluice complete` (contract): {}; or `sluice rollback` (before complete): {}",
                b.describe(),
                lp.complete.sql,
                if lp.rollback.sql.is_empty() { "nothing to undo" } else { &lp.rollback.sql }
            ) + &lp
                .old_version
                .iter()
                .map(|t| format!("; what the old version sees: {t}"))
                .collect::<String>(),
            then: steps,
        });
        p.mode = crate::migration::TxMode::PerStatement;
        p.mode_reason =
            "a breaking migration runs in two phases, their steps commit one by one".into();
    }
    Ok(())
}

fn server_error(message: String) -> crate::engine::ServerError {
    crate::engine::ServerError {
        code: String::new(),
        message,
        position: None,
        connection_lost: false,
        lock_timeout: false,
        grant: String::new(),
    }
}

/// `up`'s hook: runs the expand phase of `m` when it is a breaking migration (PostgreSQL), and
/// with `complete` its contract phase right after. False: not a breaking migration, `run_part`
/// applies it as usual.
pub(crate) async fn up_hook(
    engine: &mut dyn Engine,
    m: &Migration,
    row: Option<&HistoryRow>,
    run: InRun<'_>,
    complete: bool,
    ctx: &RunContext,
) -> Result<bool> {
    let Some((s, st, b)) = breaking_in_run(engine.target(), m, run)? else {
        return Ok(false);
    };
    if !fill_applies(engine, m, run.rows, &st, &b).await? {
        return Ok(false);
    }
    let phases = phases_live(engine, m, &s, &st, &b).await?;
    let phases = expand(engine, m, row, (&s, &st), &b, phases, ctx).await?;
    if complete {
        let row = engine
            .history()
            .await?
            .into_iter()
            .find(|r| r.version == m.version)
            .expect("recorded by expand");
        contract(engine, m, row, &phases, ctx).await?;
    }
    Ok(true)
}

/// The expand phase; returns the phases as last planned (on MySQL planned again from the live
/// state once the cleanup of a failed expand ran).
/// The expand's prechecks, as `up` runs them before anything changes; the error is `up`'s
/// refusal. `dry` (`plan`, `up --dry-run`): the same checks in a transaction rolled back (the
/// versioned expand's reset of its own backfill checkpoint is among them).
pub(crate) async fn run_prechecks(
    engine: &mut dyn Engine,
    m: &Migration,
    table: &QName,
    phases: &Phases,
    dry: bool,
) -> Result<()> {
    // MySQL: the precheck decided from the facts (no anonymous block to ask the server).
    if let Some(why) = &phases.precheck_refusal {
        return Err(Error::Rejected {
            context: format!("expanding {}", m.label()),
            message: why.clone(),
            help:
                "the statement as written would fail the same way; fix it and run `sluice up` again"
                    .into(),
        });
    }
    // MariaDB/MySQL: every phase's ALTERs, tried on an empty copy of the table first.
    if let Some(why) =
        super::ddl_probe::refusal(engine, table, phases, super::ddl_probe::Sequence::Expanding)
            .await?
    {
        return Err(Error::usage(
            format!("migration {}: {why}", m.label()),
            "nothing was changed; `sluice up --as-written` runs the statement in one step (every running instance that still uses the old name fails from that moment)",
        ));
    }
    let checks = &phases.precheck;
    let in_tx = dry && !checks.is_empty() && engine.target().engine == EngineKind::Postgres;
    if in_tx {
        engine
            .execute("BEGIN")
            .await
            .map_err(|e| Error::database("checking before the expand phase", e.message))?;
    }
    let mut failed = None;
    for check in checks {
        if let Err(e) = engine.execute(check).await {
            failed = Some(e);
            break;
        }
    }
    if in_tx {
        engine
            .execute("ROLLBACK")
            .await
            .map_err(|e| Error::database("checking before the expand phase", e.message))?;
    }
    let Some(mut e) = failed else {
        return Ok(());
    };
    e.position = None;
    // Nothing is made and nothing recorded: the rerun starts from the same point.
    // feature_not_supported is sluice's own refusal (a limit of the two phases, not
    // of the statement, which as written would run): bad input, exit 2.
    if e.code == "0A000" {
        return Err(Error::usage(
            format!("expanding {}: {}", m.label(), e.message),
            "nothing was changed; this is a limit of the two-phase form, not an error in the statement: do what the message says, or run the migration as written with `sluice up --as-written` (the running application version breaks at once)",
        ));
    }
    let help = match (old_directive_line(m, &e.message), directive_lines(m).as_slice()) {
        // Only the two phases evaluate a `-- sluice:old` expression.
        (Some(line), _) => format!("the `-- sluice:old` expression on line {line} failed (the statements as written do not run it); fix it and run `sluice up` again"),
        (None, []) => "the statement as written would fail the same way; fix it and run `sluice up` again".into(),
        // A message that quotes no directive may still come from one (a syntax error in it).
        (None, lines) => format!(
            "check the directive expression{} on line{} {} first: only the two phases evaluate {} (the statements as written do not); otherwise the statement as written would fail the same way. Fix it and run `sluice up` again",
            if lines.len() > 1 { "s" } else { "" },
            if lines.len() > 1 { "s" } else { "" },
            lines.iter().map(usize::to_string).collect::<Vec<_>>().join(", "),
            if lines.len() > 1 { "them" } else { "it" },
        ),
    };
    Err(Error::Rejected {
        context: format!("expanding {}", m.label()),
        message: e.message,
        help,
    })
}

/// The file line of the `-- sluice:old` directive a precheck failure `message` quotes (the split
/// or merge check of each reverse expression quotes it as `` `-- sluice:old <column> = <expr>` ``).
fn old_directive_line(m: &Migration, message: &str) -> Option<usize> {
    let part = m.part(Direction::Up)?;
    let d = crate::migration::old_directives(&part.sql)
        .into_iter()
        .find(|d| message.contains(&format!("`-- sluice:old {} = {}`", d.column, d.expr)))?;
    let (_, text) = m.file_of(part);
    Some(sql::line_col(text, part.offset + d.start).0)
}

/// The file lines of the up part's `-- sluice:old` and `-- sluice:versioned down` directives.
fn directive_lines(m: &Migration) -> Vec<usize> {
    let Some(part) = m.part(Direction::Up) else {
        return vec![];
    };
    let (_, text) = m.file_of(part);
    let mut starts: Vec<usize> = crate::migration::old_directives(&part.sql)
        .into_iter()
        .map(|d| d.start)
        .collect();
    // A versioned directive's offset is the end of its line: its last byte is on the line.
    starts.extend(
        crate::migration::versioned_directives(&part.sql)
            .into_iter()
            .map(|(_, end)| end.saturating_sub(1)),
    );
    let mut lines: Vec<usize> = starts
        .into_iter()
        .map(|at| sql::line_col(text, part.offset + at).0)
        .collect();
    lines.sort_unstable();
    lines.dedup();
    lines
}

async fn expand(
    engine: &mut dyn Engine,
    m: &Migration,
    existing: Option<&HistoryRow>,
    (s, st): (&SqlStatement, &Stmt),
    b: &Breaking,
    mut phases: Phases,
    ctx: &RunContext,
) -> Result<Phases> {
    let clock = Instant::now();
    let resuming = existing.is_some_and(|r| r.state == RecordState::Running);
    let part_offset = m.part(Direction::Up).map(|p| p.offset).unwrap_or(0);
    (ctx.say)(&format!(
        "expanding {}: {} in two phases{}",
        m.label(),
        b.describe(),
        if resuming {
            ", resuming an interrupted expand"
        } else {
            ""
        }
    ));
    engine.set_lock_timeout(ctx.lock_timeout).await?;
    if existing.is_some_and(|r| r.state == RecordState::Failed) {
        // A failed expand removed what it made; whatever a failed removal left is sluice's own
        // (the failed row is written only after the first attempt's precheck passed).
        let removed = match restore_staged(engine, m, s, &phases, ctx).await {
            Ok(()) => run_in_one_transaction(engine, &phases.rollback, s, ctx)
                .await
                .map_err(|e| e.message),
            Err(e) => Err(e.to_string()),
        };
        removed.map_err(|e| {
            Error::database(
                format!("removing what the failed expand of {} left", m.label()),
                e,
            )
        })?;
        // MySQL: the phases were planned from what the failed run left, which the cleanup
        // removed; the expand (and its precheck refusal) is planned from what is there now.
        if engine.target().engine == EngineKind::MySql {
            phases = phases_live(engine, m, s, st, b).await?;
        }
    }
    if !resuming {
        run_prechecks(engine, m, b.table(), &phases, false).await?;
    }
    let mut row = HistoryRow {
        version: m.version,
        name: m.name.clone(),
        checksum: m.checksum.clone(),
        state: RecordState::Running,
        started_at: existing
            .filter(|_| resuming)
            .map(|r| r.started_at)
            .unwrap_or_else(Utc::now),
        finished_at: None,
        duration_ms: None,
        applied_by: ctx.actor.clone(),
        sluice_version: crate::SLUICE_VERSION.into(),
        app_version: ctx.app_version.clone(),
        statements_done: 0,
        // The breaking statement's hash ahead of the done count marks a cut-off expand: `up`
        // then refuses an edited file (see `plan_up`).
        statement_hashes: vec![statement_hash(&s.sql)],
        error: None,
        failed_statement: None,
    };
    engine.upsert_migration(&row).await?;
    if phases.expand_atomic {
        expand_atomic(engine, m, row, s, b, &phases, clock, ctx).await?;
        return Ok(phases);
    }
    let steps: Vec<_> = phases.expand.iter().zip(&phases.expand_about).collect();
    let run = crate::runner::StepsRun {
        slot: &|k| format!("{} expand {k}", m.version),
        first_builds_index: None,
        resuming,
        written: crate::runner::retry::Subject::Phase(s),
        before: &|k, about| {
            crash_point(&format!("expand-step-{k}"));
            (ctx.say)(&format!("  {}", about.said()));
        },
    };
    if let Err(mut e) = crate::runner::run_steps(engine, &steps, run, ctx).await? {
        if !e.connection_lost {
            let _ = engine.rollback().await;
            // MySQL's rollback holds what the facts showed before the expand (no anonymous
            // block to ask the server then): it is planned again from what the failed step left.
            let mut rollback = phases.rollback.clone();
            if engine.target().engine == EngineKind::MySql {
                if let Ok(now) = phases_live(engine, m, s, st, b).await {
                    rollback = now.rollback;
                }
            }
            let removed = match restore_staged(engine, m, s, &phases, ctx).await {
                Ok(()) => run_in_one_transaction(engine, &rollback, s, ctx).await,
                Err(x) => Err(server_error(x.to_string())),
            };
            match removed {
                Ok(()) => {
                    // The backfill's own note no longer holds once its checkpoint is removed.
                    const KEPT: &str =
                        " (the checkpoint is kept: run the same command again to resume)";
                    let backfill = e.message.contains(KEPT);
                    e.message = format!(
                        "{} (sluice removed what the expand phase had made: the table is as before the migration{})",
                        e.message.replace(KEPT, ""),
                        if backfill {
                            "; a row the backfill could not write (a value the expression cannot convert, a constraint) stops it: fix the row or the expression, then run `sluice up` again"
                        } else {
                            ""
                        }
                    )
                }
                Err(x) => {
                    e.message = format!(
                        "{} (sluice could not remove what the expand phase had made: {}; `sluice up` removes it first when it runs again, `sluice rollback` removes it now)",
                        e.message, x.message
                    )
                }
            }
        }
        return Err(crate::runner::record_failure(
            engine,
            m,
            Direction::Up,
            row,
            s,
            part_offset,
            e,
            0,
            false,
            ctx,
        )
        .await);
    }
    crash_point("expand-unrecorded");
    row.state = RecordState::Expanded;
    row.finished_at = Some(Utc::now());
    row.duration_ms = Some(clock.elapsed().as_millis() as i64);
    row.statements_done = 1;
    row.statement_hashes = vec![statement_hash(&s.sql)];
    engine.upsert_migration(&row).await?;
    engine
        .append_event(&ctx.event(
            EventKind::Expand,
            Some((&m.version, &m.name, &m.checksum)),
            format!("expanded: {}", b.describe()),
        ))
        .await?;
    crate::runner::snapshot(engine, m).await?;
    (ctx.say)(&format!(
        "expanded {} in {} ms: both application versions work now",
        m.label(),
        clock.elapsed().as_millis()
    ));
    if let Breaking::Versioned { .. } = b {
        say_setting(engine, m, ctx).await?;
    }
    Ok(phases)
}

/// After a versioned expand: the setting the new application version runs with.
async fn say_setting(engine: &mut dyn Engine, m: &Migration, ctx: &RunContext) -> Result<()> {
    use crate::plan::expand::versioned::{setting, SEARCH_PATH_FUNCTION};
    let search_path = query_scalar(engine, "SELECT current_setting('search_path')")
        .await?
        .unwrap_or_default();
    (ctx.say)(&format!(
        "the new application version selects its schema with: {}; (the same from SQL: SELECT set_config('search_path', {SEARCH_PATH_FUNCTION}({}), false)); the old version keeps its search_path",
        setting(&m.version_text, &search_path),
        crate::quote::pg::literal(&m.version_text)
    ));
    Ok(())
}

/// An expand phase of catalog-only steps: they run in one short transaction (lock timeout,
/// retried; each bounded by the exclusive timeout) that also records the migration `expanded`,
/// so it is either done and recorded or not done at all (then recorded `failed`, or left
/// `running` by a kill: the rerun runs it afresh).
#[allow(clippy::too_many_arguments)]
async fn expand_atomic(
    engine: &mut dyn Engine,
    m: &Migration,
    mut row: HistoryRow,
    s: &SqlStatement,
    b: &Breaking,
    phases: &Phases,
    clock: Instant,
    ctx: &RunContext,
) -> Result<()> {
    crash_point("expand-step-0");
    for about in &phases.expand_about {
        (ctx.say)(&format!("  {}", about.said()));
    }
    let running = row.clone();
    row.state = RecordState::Expanded;
    row.finished_at = Some(Utc::now());
    row.duration_ms = Some(clock.elapsed().as_millis() as i64);
    row.statements_done = 1;
    row.statement_hashes = vec![statement_hash(&s.sql)];
    let event = ctx.event(
        EventKind::Expand,
        Some((&m.version, &m.name, &m.checksum)),
        format!("expanded: {}", b.describe()),
    );
    let steps: Vec<String> = phases
        .expand
        .iter()
        .map(crate::plan::staged::Step::text)
        .collect();
    if let Err(mut e) = tx_then(engine, &steps, s, ctx, Some((&row, false, event))).await {
        if !e.connection_lost {
            e.message = format!(
                "{} (the expand phase was rolled back: the table is as before the migration)",
                e.message
            );
        }
        let part_offset = m.part(Direction::Up).map(|p| p.offset).unwrap_or(0);
        return Err(crate::runner::record_failure(
            engine,
            m,
            Direction::Up,
            running,
            s,
            part_offset,
            e,
            0,
            false,
            ctx,
        )
        .await);
    }
    crate::runner::snapshot(engine, m).await?;
    (ctx.say)(&format!(
        "expanded {} in {} ms: both application versions work now",
        m.label(),
        clock.elapsed().as_millis()
    ));
    Ok(())
}

/// The rows each rollback guard counts, for the columns that have any.
async fn count_nulls(engine: &mut dyn Engine, phases: &Phases) -> Result<Vec<(String, i64)>> {
    let mut nulls = Vec::new();
    for (column, sql) in &phases.rollback_guard {
        let n: i64 = query_scalar(engine, sql)
            .await?
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        if n > 0 {
            nulls.push((column.clone(), n));
        }
    }
    Ok(nulls)
}

/// The refusal of a rollback whose guard counted rows (`nulls`) in table `t` (words, SQL).
fn guard_refusal(
    m: &Migration,
    guard: crate::plan::expand::Guard,
    nulls: Vec<(String, i64)>,
    (t, tq): &(String, String),
) -> Error {
    if guard == crate::plan::expand::Guard::OldType {
        let what = nulls
            .iter()
            .map(
                |(c, n)| match c.split_once(crate::plan::expand::column_type::GUARD_SEP) {
                    // A referencing column widened and kept with the column.
                    Some((table, c)) => format!(
                        "{n} row(s) of {table} hold a value in {c} that its old type cannot take"
                    ),
                    None => {
                        format!(
                            "{n} row(s) of {t} hold a value in {c} that its old type cannot take"
                        )
                    }
                },
            )
            .collect::<Vec<_>>()
            .join("; ");
        return Error::lifecycle(
            format!(
                "`sluice rollback` of {} cannot swap the old column back: {what} (written while it was expanded; the reverse trigger kept NULL for them in the old column). Nothing was changed: the migration stays expanded",
                m.label()
            ),
            "change or delete those rows so that their values fit the old type (the reverse trigger copies them back when they are updated), then run `sluice rollback` again; or finish the migration with `sluice complete`",
        );
    }
    let what = nulls
        .iter()
        .map(|(c, n)| format!("{n} row(s) of {t} hold NULL in {c}"))
        .collect::<Vec<_>>()
        .join("; ");
    let fix = nulls
        .iter()
        .map(|(c, _)| {
            format!(
                "UPDATE {tq} SET {} = <value> WHERE {} IS NULL",
                crate::quote::pg::ident(c),
                crate::quote::pg::ident(c)
            )
        })
        .collect::<Vec<_>>()
        .join("; ");
    Error::lifecycle(
        format!(
            "`sluice rollback` of {} cannot restore NOT NULL: {what} (written while it was expanded, by INSERTs that leave the column out). Nothing was changed: the migration stays expanded",
            m.label()
        ),
        format!("backfill them ({fix}), then run `sluice rollback` again; or finish the migration with `sluice complete`"),
    )
}

/// The table of a lifecycle migration in words and as SQL.
fn table_words(engine: &dyn Engine, m: &Migration) -> (String, String) {
    lifecycle_change(engine.target(), m)
        .ok()
        .flatten()
        .map(|(_, _, b)| {
            let q = b.table();
            let sql = match &q.schema {
                Some(sc) => crate::quote::pg::qualified(sc, &q.name),
                None => crate::quote::pg::ident(&q.name),
            };
            (q.to_string(), sql)
        })
        .unwrap_or_default()
}

/// Removes a rollback's watch (its trigger and records) on a refusal or failure. A failure to
/// remove it is said, not raised: the refusal or failure is the outcome, and a rerun of
/// `sluice rollback` (or `sluice complete`) removes the trigger anyway.
async fn unwatch(engine: &mut dyn Engine, phases: &Phases, s: &SqlStatement, ctx: &RunContext) {
    let Some(w) = &phases.watch else {
        return;
    };
    let _ = engine.rollback().await;
    if let Err(e) = run_in_one_transaction(engine, &w.remove, s, ctx).await {
        (ctx.say)(&format!(
            "  could not remove the rollback's watch trigger ({e}): `sluice rollback` or `sluice complete` removes it when run again"
        ));
    }
}

/// Forgets what the watch recorded, then counts: every write the watch forgot committed before
/// the count began, so the count sees it; every later one is recorded again.
async fn count_watched(
    engine: &mut dyn Engine,
    m: &Migration,
    phases: &Phases,
    s: &SqlStatement,
    ctx: &RunContext,
) -> Result<Vec<(String, i64)>> {
    if let Some(w) = &phases.watch {
        run_in_one_transaction(engine, std::slice::from_ref(&w.clear), s, ctx)
            .await
            .map_err(|e| Error::Rejected {
                context: format!("rolling back {}", m.label()),
                message: format!("clearing the rollback's watch records failed: {e}"),
                help: "fix the cause, then run `sluice rollback` again".into(),
            })?;
    }
    count_nulls(engine, phases).await
}

/// The part of undoing the expand phase that cannot run in one short transaction (NOT NULL back
/// in the staged form, a kept type change's indexes and constraints on the old column): refused
/// (exit 11, nothing changed) while a guard counts rows that keep it from succeeding; each step
/// in a transaction of its own; a failed step's work removed again. A kept type change first
/// installs its watch (see [`crate::plan::expand::Watch`]), which the swap back checks.
async fn restore_staged(
    engine: &mut dyn Engine,
    m: &Migration,
    s: &SqlStatement,
    phases: &Phases,
    ctx: &RunContext,
) -> Result<()> {
    if phases.rollback_guard.is_empty() && phases.rollback_prepare.is_empty() {
        return Ok(());
    }
    let guard = phases.guard;
    let t = table_words(engine, m);
    if let Some(w) = &phases.watch {
        for sql in &w.install {
            if let Err(e) = run_in_one_transaction(engine, std::slice::from_ref(sql), s, ctx).await
            {
                unwatch(engine, phases, s, ctx).await;
                return Err(Error::Rejected {
                    context: format!("rolling back {}", m.label()),
                    message: format!("installing the rollback's watch trigger failed (nothing else was changed: the migration stays expanded): {e}"),
                    help: "fix the cause, then run `sluice rollback` again".into(),
                });
            }
        }
        crash_point("rollback-watched");
    }
    let nulls = match count_watched(engine, m, phases, s, ctx).await {
        Ok(n) => n,
        Err(e) => {
            unwatch(engine, phases, s, ctx).await;
            return Err(e);
        }
    };
    if !nulls.is_empty() {
        crash_point("rollback-refused");
        // What an earlier, killed rollback built before its swap goes too: refused, the table
        // is as expanded (a failure to remove it is what the next rerun reuses).
        if !phases.rollback_undo.is_empty() {
            let _ = run_in_one_transaction(engine, &phases.rollback_undo, s, ctx).await;
        }
        unwatch(engine, phases, s, ctx).await;
        return Err(guard_refusal(m, guard, nulls, &t));
    }
    for (k, (step, about)) in phases.rollback_prepare.iter().enumerate() {
        crash_point(&format!("rollback-step-{k}"));
        let sql = &step.text();
        let builds_index = match step {
            crate::plan::staged::Step::Index { index, .. } => Some(index.as_str()),
            _ => None,
        };
        let opts = crate::runner::StepOpts {
            slot: format!("{} rollback {k}", m.version),
            builds_index,
            unnamed: None,
            // Each is rerunnable: a constraint an interrupted rollback added is taken as made.
            resuming: true,
            rewritten: true,
            bound: about.bounded().then_some(ctx.exclusive_timeout),
            transactional: about.transactional,
            never_queues_queries: about.never_queues_queries(),
            held_us: None,
        };
        let ran = match crate::runner::run_step(
            engine,
            sql,
            opts,
            crate::runner::retry::Subject::Phase(s),
            ctx,
        )
        .await
        {
            Ok(r) => r,
            Err(e) => {
                unwatch(engine, phases, s, ctx).await;
                return Err(e);
            }
        };
        if let Err(e) = ran {
            let _ = engine.rollback().await;
            let undone = run_in_one_transaction(engine, &phases.rollback_undo, s, ctx).await;
            // New NULLs since the count: the same refusal, with the new count.
            let nulls = count_nulls(engine, phases).await;
            unwatch(engine, phases, s, ctx).await;
            let nulls = nulls?;
            if !nulls.is_empty() && undone.is_ok() {
                return Err(guard_refusal(m, guard, nulls, &t));
            }
            return Err(Error::Rejected {
                context: format!("rolling back {}", m.label()),
                message: format!(
                    "restoring NOT NULL failed: {}{}",
                    e.message,
                    match undone {
                        Ok(()) => " (its check was removed again: nothing changed)".to_string(),
                        Err(x) => format!(" (removing its check failed too: {}; `sluice rollback` removes it when run again)", x.message),
                    }
                ),
                help: "fix the cause, then run `sluice rollback` again".into(),
            });
        }
    }
    Ok(())
}

/// How often the swap back is tried again when the watch recorded a write after the count and a
/// new count finds nothing (the row was fixed or deleted in between).
const WATCH_RETRIES: usize = 3;

/// The swap back of a rollback, committed with its history record. With a watch: a swap that
/// finds a write recorded since the count failed and changed nothing; the rows are counted
/// again outside the lock, and the rollback refused (same message, new count) or the swap tried
/// again.
async fn swap_back(
    engine: &mut dyn Engine,
    m: &Migration,
    s: &SqlStatement,
    phases: &Phases,
    record: (&HistoryRow, crate::history::Event),
    ctx: &RunContext,
) -> Result<std::time::Duration> {
    let (row, event) = record;
    let mut attempt = 0;
    loop {
        crash_point("rollback-swap");
        let e = match tx_then(
            engine,
            &phases.rollback,
            s,
            ctx,
            Some((row, true, event.clone())),
        )
        .await
        {
            Ok(held) => return Ok(held),
            Err(e) => e,
        };
        let watched = phases.watch.is_some() && e.code == crate::plan::expand::WATCH_SQLSTATE;
        if !watched {
            // What the steps before the swap built on the old column goes too: left, a NOT NULL
            // check on the kept column would fail every new-version write of a value the old
            // type cannot take (the reverse trigger stores NULL there) while expanded.
            let undone = run_in_one_transaction(engine, &phases.rollback_undo, s, ctx).await;
            unwatch(engine, phases, s, ctx).await;
            if e.code == crate::plan::alter_column_type::VIEWS_SQLSTATE && undone.is_ok() {
                // The server's message says which check failed and names the views and policies.
                let why = e.message.lines().next().unwrap_or_default();
                return Err(Error::lifecycle(
                    format!(
                        "`sluice rollback` of {} cannot restore the views and policies its type change moved (their definition, options, owner, privileges or comments): {why}. Nothing was changed: the migration stays expanded",
                        m.label()
                    ),
                    "finish it with `sluice complete` instead (the migration is then applied, and `sluice down` runs its down part)",
                ));
            }
            return Err(Error::Rejected {
                context: format!("rolling back {}", m.label()),
                message: format!(
                    "the rollback of {} failed and was rolled back (the migration stays {}{}): {e}",
                    m.label(),
                    row.state.shown(),
                    match undone {
                        Ok(()) => ", as it was before the rollback".to_string(),
                        Err(x) => format!("; removing what its steps built on the old column failed too: {}; `sluice rollback` or `sluice complete` removes it", x.message),
                    }
                ),
                help: "fix the cause, then run `sluice rollback` again; or finish the migration with `sluice complete`".into(),
            });
        }
        attempt += 1;
        (ctx.say)(&format!(
            "  the swap back found a row written since the count with a value the old type cannot take (it changed nothing): counting again (attempt {attempt} of {WATCH_RETRIES})"
        ));
        let nulls = match count_watched(engine, m, phases, s, ctx).await {
            Ok(n) => n,
            Err(e) => {
                unwatch(engine, phases, s, ctx).await;
                return Err(e);
            }
        };
        crash_point("rollback-recounted");
        if !nulls.is_empty() || attempt >= WATCH_RETRIES {
            // Refused: what the steps before the swap built on the old column goes again, so
            // the table is as expanded (a failure to remove it is what a rerun reuses).
            let _ = run_in_one_transaction(engine, &phases.rollback_undo, s, ctx).await;
            unwatch(engine, phases, s, ctx).await;
        }
        if !nulls.is_empty() {
            return Err(guard_refusal(
                m,
                phases.guard,
                nulls,
                &table_words(engine, m),
            ));
        }
        if attempt >= WATCH_RETRIES {
            return Err(Error::lifecycle(
                format!(
                    "`sluice rollback` of {} cannot swap the old column back: {WATCH_RETRIES} times a row was written with a value the old type cannot take between the count and the swap (each was changed again before the recount). Nothing was changed: the migration stays expanded",
                    m.label()
                ),
                "stop the application writes of values the old type cannot take (the new version's), then run `sluice rollback` again",
            ));
        }
    }
}

/// Runs `stmts` in one transaction with the lock discipline (lock timeout, retried; each
/// statement bounded by the exclusive timeout). Err: the last failure (rolled back).
async fn run_in_one_transaction(
    engine: &mut dyn Engine,
    stmts: &[String],
    s: &SqlStatement,
    ctx: &RunContext,
) -> std::result::Result<(), crate::engine::ServerError> {
    tx_then(engine, stmts, s, ctx, None).await.map(|_| ())
}

/// [`run_in_one_transaction`], then `record` inside the same transaction before it commits. Ok:
/// how long the transaction that committed ran (from BEGIN to COMMIT: at most that long did it
/// hold its locks).
async fn tx_then(
    engine: &mut dyn Engine,
    stmts: &[String],
    s: &SqlStatement,
    ctx: &RunContext,
    record: Option<(&HistoryRow, bool, crate::history::Event)>,
) -> std::result::Result<std::time::Duration, crate::engine::ServerError> {
    let mut retry = crate::runner::LockRetry::new();
    let db = |e: Error| server_error(e.to_string());
    loop {
        let held = Instant::now();
        engine.begin().await.map_err(db)?;
        let mut failed = None;
        for sql in stmts {
            let bound = Some(ctx.exclusive_timeout);
            if let Err(e) = crate::runner::execute_bounded(engine, sql, bound, ctx).await {
                failed = Some((e, sql));
                break;
            }
        }
        if let Some((mut e, sql)) = failed {
            let _ = engine.rollback().await;
            // The wait is the phase's own step's (e.g. the expand's ADD COLUMN), on the
            // statement's table: the message names that step, not the statement as written.
            let step = crate::runner::retry::Subject::Phase(s);
            if e.lock_timeout && retry.again_at(engine, step, Some(sql), ctx, &mut e).await {
                continue;
            }
            return Err(e);
        }
        if let Some((row, delete, event)) = &record {
            // MariaDB/MySQL committed the DDL implicitly: the record and its event still commit
            // together, after the work (a kill in between leaves the work done, unrecorded: the
            // rerun recognises it).
            if !engine.transactional_ddl() {
                engine.begin().await.map_err(db)?;
            }
            let recorded = async {
                if *delete {
                    engine.delete_migration(row.version).await?;
                } else {
                    engine.upsert_migration(row).await?;
                }
                engine.append_event(event).await
            }
            .await;
            if let Err(e) = recorded {
                let _ = engine.rollback().await;
                return Err(db(e));
            }
            // The work and its record are both done, neither committed: a kill here leaves
            // neither (the server rolls the transaction back).
            crash_point("before-commit");
        }
        engine.commit().await.map_err(db)?;
        return Ok(held.elapsed());
    }
}

/// The contract phase of an expanded migration, committed with its history record.
async fn contract(
    engine: &mut dyn Engine,
    m: &Migration,
    mut row: HistoryRow,
    phases: &Phases,
    ctx: &RunContext,
) -> Result<()> {
    let clock = Instant::now();
    let (s, _, b) =
        lifecycle_change(engine.target(), m)?.expect("an expanded migration is breaking");
    (ctx.say)(&format!("completing {}: {}", m.label(), b.describe()));
    engine.set_lock_timeout(ctx.lock_timeout).await?;
    row.state = RecordState::Applied;
    let expanded_ms = row.duration_ms.unwrap_or(0);
    row.duration_ms = Some(expanded_ms + clock.elapsed().as_millis() as i64);
    let open = row
        .finished_at
        .map(|f| (Utc::now() - f).num_seconds())
        .unwrap_or(0);
    row.finished_at = Some(Utc::now());
    let event = ctx.event(
        EventKind::Complete,
        Some((&m.version, &m.name, &m.checksum)),
        format!("completed: {} (expanded for {open} s)", b.describe()),
    );
    // MariaDB/MySQL: the contract's ALTERs, tried on an empty copy of the table first (a
    // failure part-way cannot be rolled back).
    if let Some(why) = super::ddl_probe::refusal(
        engine,
        b.table(),
        phases,
        super::ddl_probe::Sequence::Complete,
    )
    .await?
    {
        return Err(Error::lifecycle(
            format!(
                "the contract phase of {} is refused (nothing was changed, the migration stays expanded): {why}",
                m.label()
            ),
            "change what the server refuses on the table in a new migration, then run `sluice complete` again; or `sluice rollback` undoes the expand phase instead",
        ));
    }
    if let Some(sql) = &phases.complete_online {
        if let Err(e) = alter_online_or_as_written(engine, sql, ctx).await {
            return Err(Error::Rejected {
                context: format!("completing {}", m.label()),
                message: format!(
                    "the contract phase of {} failed at `{}` (the migration stays expanded, both versions keep working): {e}",
                    m.label(),
                    crate::redact::label(sql, 120)
                ),
                help: "fix the cause (a row the column cannot take, a lock), then run `sluice complete` again; `sluice rollback` undoes the expand phase instead".into(),
            });
        }
        crash_point("complete-altered");
    }
    if let Err(e) = tx_then(
        engine,
        &phases.complete,
        &s,
        ctx,
        Some((&row, false, event)),
    )
    .await
    {
        let text = e.to_string();
        // A helper sluice made itself missing (42P01/42704 on a `_sluice_` name): nothing the
        // user can fix makes a rerun pass, so the help says the way out instead of "fix the cause".
        let own_helper_missing = text.contains("does not exist") && text.contains("_sluice_");
        // MariaDB/MySQL cannot roll DDL back: what ran before the failing statement stays, so
        // the message cannot promise that both names keep working.
        let outcome = match engine.transactional_ddl() {
            true => "failed and was rolled back (the migration stays expanded, both names keep working)",
            false => "failed part-way (MariaDB/MySQL cannot roll DDL back: what ran before the failing statement stays done; the migration stays recorded expanded)",
        };
        return Err(Error::Rejected {
            context: format!("completing {}", m.label()),
            message: format!("the contract phase of {} {outcome}: {text}", m.label()),
            help: if own_helper_missing {
                "an object sluice made during the expand phase is gone, so `sluice complete` would fail the same way again: run `sluice rollback` to undo the expand phase (the schema as before the migration), then run `sluice up` again".into()
            } else {
                "fix the cause, then run `sluice complete` again; `sluice rollback` undoes the expand phase instead".into()
            },
        });
    }
    crate::runner::snapshot(engine, m).await?;
    (ctx.say)(&format!(
        "completed {} in {} ms: only the new application version may run now",
        m.label(),
        clock.elapsed().as_millis()
    ));
    Ok(())
}

/// Runs one ALTER TABLE through the engine's online path, or as written where the engine leaves
/// it so (not bounded by the exclusive timeout: the online path keeps writes going).
async fn alter_online_or_as_written(
    engine: &mut dyn Engine,
    sql: &str,
    ctx: &RunContext,
) -> Result<()> {
    match engine
        .alter_online(sql, &ctx.online_options(), &*ctx.say)
        .await?
    {
        Some(report) if report.cutover_pending => Err(Error::usage(
            "the online copy is verified and waits for its swap".to_string(),
            "run `sluice cutover`, then `sluice complete` again",
        )),
        Some(_) => Ok(()),
        None => engine
            .execute(sql)
            .await
            .map_err(|e| Error::database("running the contract's ALTER", e.message)),
    }
}

/// The outcome of work done under the run lock, and the lock's release.
fn released<T>(result: Result<T>, released: Result<()>) -> Result<T> {
    match (result, released) {
        (Err(e), _) => Err(e),
        (Ok(_), Err(e)) => Err(e),
        (Ok(v), Ok(())) => Ok(v),
    }
}

/// The rows `complete` or `rollback` act on: the given version (which must be in one of
/// `states`), or every row in those states.
fn select<'r>(
    rows: &'r [HistoryRow],
    files: &[Migration],
    version: Option<i64>,
    states: &[RecordState],
    what: &str,
) -> Result<Vec<&'r HistoryRow>> {
    let ok = |r: &&HistoryRow| states.contains(&r.state);
    match version {
        None => Ok(rows.iter().filter(ok).collect()),
        Some(v) => match rows.iter().find(|r| r.version == v) {
            Some(r) if ok(&r) => Ok(vec![r]),
            Some(r) => Err(Error::lifecycle(
                format!(
                    "migration {} is {}, not expanded: `sluice {what}` acts on an expanded migration",
                    crate::layout::history_label(None, r.version, &r.name),
                    r.state.shown()
                ),
                match what {
                    "rollback" if r.state.is_done() => "it is complete: `sluice down` rolls it back with its down part",
                    _ => "`sluice status` lists the expanded migrations",
                },
            )),
            None => Err(Error::lifecycle(
                format!(
                    "migration {v} is not applied{}: nothing to {what}",
                    if files.iter().any(|m| m.version == v) { "" } else { " and has no file" }
                ),
                "`sluice status` lists the expanded migrations",
            )),
        },
    }
}

fn file_of<'f>(files: &'f [Migration], r: &HistoryRow, what: &str) -> Result<&'f Migration> {
    let m = files
        .iter()
        .find(|m| m.version == r.version)
        .ok_or_else(|| Error::Checksum {
            // Exit 4, as for any recorded migration whose file is missing.
            message: format!(
                "cannot {what} {}: its file is missing",
                crate::layout::history_label(None, r.version, &r.name)
            ),
            help:
                "restore the migration file (from version control): its phases are planned from it"
                    .into(),
        })?;
    if m.checksum != r.checksum {
        return Err(Error::Checksum {
            message: format!(
                "migration {} changed since its expand phase ran; its other phases would not match what ran",
                m.label()
            ),
            help: "restore the text that was expanded (e.g. from version control)".into(),
        });
    }
    Ok(m)
}

/// `sluice complete [version]`: runs the contract phase of the expanded migration `version`, or of
/// every expanded migration (in version order). Returns the versions completed.
pub async fn complete(
    engine: &mut dyn Engine,
    files: &[Migration],
    version: Option<i64>,
    ctx: &RunContext,
) -> Result<Vec<i64>> {
    crate::runner::acquire_lock(engine, ctx).await?;
    let result = complete_locked(engine, files, version, ctx).await;
    let r = engine.release_run_lock().await;
    released(result, r)
}

pub(crate) async fn complete_locked(
    engine: &mut dyn Engine,
    files: &[Migration],
    version: Option<i64>,
    ctx: &RunContext,
) -> Result<Vec<i64>> {
    engine.ensure_history().await?;
    let rows = engine.history().await?;
    let chosen = select(&rows, files, version, &[RecordState::Expanded], "complete")?;
    // A subscriber does not drop a column its publisher still sends (logical replication).
    removals_replicate(engine, super::replication::Runs::Up, &chosen, files, ctx).await?;
    let mut done = Vec::new();
    for r in chosen {
        let m = file_of(files, r, "complete")?;
        let (s, st, b) = lifecycle_change(engine.target(), m)?.ok_or_else(|| {
            Error::usage(
                format!(
                    "migration {} is expanded but has no breaking statement",
                    m.label()
                ),
                "restore the file that was expanded",
            )
        })?;
        let phases = phases_live(engine, m, &s, &st, &b).await?;
        if let Some(why) = &phases.complete_refusal {
            return Err(Error::lifecycle(
                format!(
                    "the contract phase of {} is refused (nothing was changed, the migration stays expanded): {why}",
                    m.label()
                ),
                match why.contains("was cut off") {
                    true => "run `sluice rollback` again: it finishes what the cut-off rollback began",
                    false => "do what the message says; or `sluice rollback` undoes the expand phase instead",
                },
            ));
        }
        contract(engine, m, r.clone(), &phases, ctx).await?;
        done.push(m.version);
    }
    Ok(done)
}

/// `sluice rollback [version]`: undoes the expand phase of `version`, or of the latest expanded
/// migration (also one whose expand failed or was interrupted); the migration is pending again.
/// Returns the versions rolled back.
/// Refuses a contract or rollback that would drop, on a subscriber, a column its publisher still
/// sends (logical replication): the check `up` makes, over the chosen migrations' files.
async fn removals_replicate(
    engine: &mut dyn Engine,
    runs: super::replication::Runs,
    chosen: &[&HistoryRow],
    files: &[Migration],
    ctx: &RunContext,
) -> Result<()> {
    let items: Vec<(&Migration, usize)> = chosen
        .iter()
        .filter_map(|r| {
            files
                .iter()
                .find(|m| m.version == r.version)
                .map(|m| (m, 0))
        })
        .collect();
    super::replication::check(engine, runs, &items, false, true, &ctx.subscriber_urls, &[])
        .await
        .map(|_| ())
}

pub async fn rollback(
    engine: &mut dyn Engine,
    files: &[Migration],
    version: Option<i64>,
    ctx: &RunContext,
) -> Result<Vec<i64>> {
    crate::runner::acquire_lock(engine, ctx).await?;
    let result = rollback_locked(engine, files, version, ctx).await;
    let r = engine.release_run_lock().await;
    released(result, r)
}

async fn rollback_locked(
    engine: &mut dyn Engine,
    files: &[Migration],
    version: Option<i64>,
    ctx: &RunContext,
) -> Result<Vec<i64>> {
    engine.ensure_history().await?;
    let target = engine.target();
    let rows = engine.history().await?;
    let states = [
        RecordState::Expanded,
        RecordState::Running,
        RecordState::Failed,
    ];
    let mut chosen = select(&rows, files, version, &states, "rollback")?;
    // Only breaking migrations: a failed ordinary one is `sluice up`'s or `down --failed`'s.
    // A staged type change cut off before its swap (a migration of its own, interrupted or
    // failed) has sluice's helpers in the table: its rollback removes them.
    chosen.retain(|r| {
        r.state == RecordState::Expanded
            || files
                .iter()
                .find(|m| m.version == r.version)
                .is_some_and(|m| {
                    matches!(breaking(target, m), Ok(Some(_)))
                        || cut_type_change_of(target, m).is_some()
                })
    });
    if version.is_some() && chosen.is_empty() {
        return Err(Error::lifecycle(
            "that migration is not a breaking one: nothing to roll back".to_string(),
            "`sluice down` rolls back an applied migration; `sluice up` resumes a failed one",
        ));
    }
    // Without a version: the latest one only.
    if version.is_none() {
        chosen.sort_by_key(|r| std::cmp::Reverse(r.version));
        chosen.truncate(1);
    }
    // The expand phase's new columns leave the publisher first.
    removals_replicate(
        engine,
        super::replication::Runs::Rollback,
        &chosen,
        files,
        ctx,
    )
    .await?;
    let mut done = Vec::new();
    for r in chosen {
        let m = file_of(files, r, "roll back")?;
        // A type change cut off before its swap kept anything: its helpers go.
        if r.state != RecordState::Expanded && matches!(breaking(target, m), Ok(None)) {
            if let Some(cut) = cut_type_change_of(target, m) {
                let kept = match type_change_of(target, m) {
                    Some((_, _, b)) => kept_type_change(engine, b).await?,
                    None => None,
                };
                if kept.is_none() {
                    abandon_type_change(engine, m, r, &cut, ctx).await?;
                    done.push(m.version);
                    continue;
                }
            }
        }
        let (s, st, b) = lifecycle_change(target, m)?.expect("checked above");
        let phases = phases_live(engine, m, &s, &st, &b).await?;
        // MySQL: a state that cannot be rolled back is refused before anything runs (MariaDB
        // signals the same message from its rollback).
        if let Some(why) = &phases.rollback_refusal {
            return Err(Error::Rejected {
                context: format!("rolling back {}", m.label()),
                message: format!(
                    "the rollback of {} is refused (nothing was changed, the migration stays {}): {why}",
                    m.label(),
                    r.state.shown()
                ),
                help: "run `sluice complete` to finish the migration".into(),
            });
        }
        if let Some(why) = super::ddl_probe::refusal(
            engine,
            b.table(),
            &phases,
            super::ddl_probe::Sequence::Rollback,
        )
        .await?
        {
            return Err(Error::Rejected {
                context: format!("rolling back {}", m.label()),
                message: format!(
                    "the rollback of {} is refused (nothing was changed, the migration stays {}): {why}",
                    m.label(),
                    r.state.shown()
                ),
                help: "run `sluice complete` to finish the migration".into(),
            });
        }
        (ctx.say)(&format!(
            "rolling back the expand phase of {}: {}",
            m.label(),
            b.describe()
        ));
        engine.set_lock_timeout(ctx.lock_timeout).await?;
        restore_staged(engine, m, &s, &phases, ctx).await?;
        let event = ctx.event(
            EventKind::Rollback,
            Some((&m.version, &m.name, &m.checksum)),
            format!("rolled back the expand phase: {}", b.describe()),
        );
        let held = swap_back(engine, m, &s, &phases, (r, event), ctx).await?;
        crate::runner::snapshot(engine, m).await?;
        (ctx.say)(&format!(
            "rolled back {}: only the old application version may run; the migration is pending again (its last transaction held its locks {} ms)",
            m.label(),
            held.as_millis()
        ));
        done.push(m.version);
    }
    if done.is_empty() {
        match rows
            .iter()
            .find(|r| matches!(r.state, RecordState::Running | RecordState::Failed))
        {
            // Said, so "nothing" is not read as "nothing is left to do".
            Some(r) => (ctx.say)(&format!(
                "nothing is expanded: nothing to roll back; migration {} is {}: `sluice rollback` undoes expand phases and staged type changes cut off before their swap, not this one: `sluice up` resumes it ({})",
                crate::layout::history_label(None, r.version, &r.name),
                r.state.shown(),
                if r.state == RecordState::Failed {
                    "or `sluice down --failed` rolls back what of it committed"
                } else {
                    "then `sluice down` rolls it back"
                }
            )),
            None => (ctx.say)("nothing is expanded: nothing to roll back"),
        }
    }
    Ok(done)
}

/// `up --as-written` of a migration cut off in sluice's staged or expand steps (interrupted, or
/// failed with its cleanup cut short): the helpers those steps made (sync triggers, shadow
/// columns) are still on the table, and the statement as written would leave them there for
/// good — a trigger firing on every write, failing them once the column it names is renamed.
/// Refused (exit 11, nothing run) naming them: `sluice rollback` removes them first.
pub(crate) async fn as_written_over_helpers(
    engine: &mut dyn Engine,
    files: &[Migration],
    versions: &[(i64, usize)],
    rows: &[HistoryRow],
) -> Result<()> {
    let target = engine.target();
    for (version, resume_from) in versions {
        let Some(r) = rows.iter().find(|r| {
            r.version == *version && matches!(r.state, RecordState::Running | RecordState::Failed)
        }) else {
            continue;
        };
        let Some(m) = files.iter().find(|m| m.version == *version) else {
            continue;
        };
        let tables: Vec<QName> = match (breaking(target, m), cut_type_change_of(target, m)) {
            (Ok(Some((_, _, b))), _) => b.tables().into_iter().cloned().collect(),
            (_, Some(cut)) if *resume_from <= cut.index => match cut.st.actions().first() {
                Some(Action::AlterColumnType { table, .. }) => vec![table.clone()],
                _ => continue,
            },
            _ => continue,
        };
        let mut found = Vec::new();
        for table in &tables {
            found.extend(helpers_on(engine, table).await?);
        }
        if found.is_empty() {
            continue;
        }
        return Err(Error::lifecycle(
            format!(
                "{} was cut off in sluice's own steps (it is {}), which left their helpers: {}; run as written now, it would leave them for good (a trigger that fires on every write)",
                m.label(),
                r.state.shown(),
                found.join(", ")
            ),
            "run `sluice rollback` first (it removes them; the migration is then pending), then `sluice up --as-written`; or `sluice up` to resume the staged form",
        ));
    }
    Ok(())
}

/// sluice's helpers on `table` (and, PostgreSQL, on the tables whose foreign keys reference it):
/// triggers and columns named as sluice names its helpers.
async fn helpers_on(engine: &mut dyn Engine, table: &QName) -> Result<Vec<String>> {
    let q = match engine.target().engine {
        EngineKind::Postgres => {
            let t = crate::quote::pg::literal(&crate::quote::qname(EngineKind::Postgres, table));
            format!(
                "WITH t AS (SELECT to_regclass({t}) AS oid UNION SELECT conrelid FROM pg_constraint WHERE contype = 'f' AND confrelid = to_regclass({t}))
                 SELECT string_agg(x, ', ' ORDER BY x) FROM (
                   SELECT format('trigger %I on %s', tgname, tgrelid::regclass) AS x FROM pg_trigger WHERE tgrelid IN (SELECT oid FROM t) AND NOT tgisinternal AND tgname LIKE '%sluice%'
                   UNION ALL SELECT format('column %I of %s', attname, attrelid::regclass) FROM pg_attribute WHERE attrelid IN (SELECT oid FROM t) AND attnum > 0 AND NOT attisdropped AND attname LIKE '%sluice%') s"
            )
        }
        EngineKind::MariaDb | EngineKind::MySql => {
            let lit = crate::quote::mysql::literal;
            let schema = table
                .schema
                .as_deref()
                .map_or("DATABASE()".to_string(), lit);
            let t = lit(&table.name);
            format!(
                "SELECT GROUP_CONCAT(x ORDER BY x SEPARATOR ', ') FROM (
                   SELECT CONCAT('trigger ', TRIGGER_NAME) AS x FROM information_schema.TRIGGERS WHERE EVENT_OBJECT_SCHEMA = {schema} AND EVENT_OBJECT_TABLE = {t} AND TRIGGER_NAME LIKE '%sluice%'
                   UNION ALL SELECT CONCAT('column ', COLUMN_NAME) FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = {schema} AND TABLE_NAME = {t} AND COLUMN_NAME LIKE '%sluice%') s"
            )
        }
    };
    Ok(query_scalar(engine, &q)
        .await?
        .map(|s| s.split(", ").map(str::to_string).collect())
        .unwrap_or_default())
}

/// Helpers of a referencing column's staged change that the change of `cat`'s column to
/// `new_type` would not make: an earlier attempt of the statement, cut off and edited since
/// (`bigint` → `numeric(20,0)`, which widens no child), left them. Neither a rerun nor a rollback
/// of the edited statement knows them.
pub(crate) async fn stray_child_helpers(
    engine: &mut dyn Engine,
    cat: &crate::engine::ColumnCatalog,
    new_type: &str,
) -> Result<Vec<String>> {
    let covered = crate::plan::alter_column_type::implied_children(cat, new_type);
    let mut out = Vec::new();
    for fk in cat.foreign_keys.iter().filter(|f| f.referenced) {
        let Some((col, _)) = &fk.paired else {
            continue;
        };
        let own = fk.schema == cat.schema && fk.table == cat.table && *col == cat.column;
        if own
            || col.ends_with("_sluice_new")
            || covered
                .iter()
                .any(|c| c.schema == fk.schema && c.table == fk.table && c.column == *col)
        {
            continue;
        }
        let trigger = crate::plan::helper_name(&format!("zz_{}", fk.table), col, "sluice_sync");
        let lit = crate::quote::pg::literal;
        let q = format!(
            "SELECT EXISTS (SELECT FROM pg_trigger WHERE tgrelid = {}::regclass AND tgname = {})",
            lit(&crate::quote::pg::qualified(&fk.schema, &fk.table)),
            lit(&trigger)
        );
        if query_scalar(engine, &q).await?.as_deref() == Some("t") {
            out.push(format!("trigger {trigger} on {}.{}", fk.schema, fk.table));
        }
    }
    Ok(out)
}

/// Why a statement whose earlier form left [`stray_child_helpers`] cannot go on.
pub(crate) fn stray_reason(stray: &[String]) -> String {
    format!(
        "an earlier attempt of this statement, cut off and edited since, left helpers of a referencing column's staged change ({}): restore the statement as it was when it stopped, run `sluice rollback` (it removes them), then edit it",
        stray.join(", ")
    )
}

/// The first value of the first row `sql` returns (NULL and no row: `None`).
async fn query_scalar(engine: &mut dyn Engine, sql: &str) -> Result<Option<String>> {
    Ok(engine
        .query_text(sql)
        .await?
        .into_iter()
        .next()
        .and_then(|r| r.into_iter().next())
        .flatten())
}

/// `sluice rollback` of a staged type change cut off before its swap (interrupted or failed; the
/// ALTER alone or with the view and policy drops its swap runs, [`cut_type_change_of`],
/// PostgreSQL): the shadow columns, sync triggers, foreign key copies and
/// backfill checkpoints of the column and of the referencing columns not yet swapped go, in one
/// short transaction with the history record (the migration is pending again): the schema is as
/// before the migration. Refused (exit 11, nothing changed) once a swap committed: a referencing
/// column keeps its old column (the kept lifecycle's rollback applies after `up` finishes), or the
/// column already has the new type.
async fn abandon_type_change(
    engine: &mut dyn Engine,
    m: &Migration,
    row: &HistoryRow,
    cut: &CutTypeChange,
    ctx: &RunContext,
) -> Result<()> {
    // Only a migration that is the ALTER alone keeps the old column (expanded) after its swap.
    let kept_lifecycle = type_change_of(engine.target(), m).is_some();
    let refuse = |why: String| {
        Error::lifecycle(
            format!(
                "`sluice rollback` of {} cannot undo its staged type change: {why}. Nothing was changed: the migration stays {}",
                m.label(),
                row.state.shown()
            ),
            if kept_lifecycle {
                "finish it with `sluice up` (it resumes where it stopped), then `sluice rollback` swaps it back while it is expanded"
            } else if m.irreversible.is_some() || m.part(Direction::Down).is_none() {
                // No down part to point to.
                "finish it with `sluice up` (it resumes where it stopped); the migration has no down part, so undoing it afterwards takes a new migration"
            } else {
                "finish it with `sluice up` (it resumes where it stopped), then `sluice down` rolls it back"
            },
        )
    };
    let (s, st) = (&cut.s, &cut.st);
    let Some(Action::AlterColumnType {
        table,
        column,
        new_type,
        ..
    }) = st.actions().first().cloned()
    else {
        return Err(refuse("sluice could not read the statement".into()));
    };
    let name = match &table.schema {
        Some(sc) => crate::quote::pg::qualified(sc, &table.name),
        None => crate::quote::pg::ident(&table.name),
    };
    let Some(cat) = engine.column_catalog(&name, &column).await? else {
        return Err(refuse(format!("column {column} of {table} does not exist")));
    };
    // The swap commits with the statement's progress record: done, it is no longer cut off
    // before its swap (the type names cannot tell: `float8` is `double precision`). The drops
    // before it are recorded as done without running (they run in the swap).
    if row.statements_done > cut.index as i32 {
        return Err(refuse(format!(
            "{table}.{column} already has the new type (its swap committed)"
        )));
    }
    use crate::plan::alter_column_type as act;
    // The parent and the referencing columns its staged change widens (not yet swapped).
    let mut tables = vec![(cat.schema.clone(), cat.table.clone(), cat.column.clone())];
    tables.extend(
        act::implied_children(&cat, &new_type)
            .into_iter()
            .map(|c| (c.schema, c.table, c.column)),
    );
    // A column with the shadow's name while sluice's sync trigger is not beside it: a kill
    // between the two steps leaves sluice's empty; one that holds values, or any after a failed
    // run (its precheck refuses such a column, a failed step's undo drops the trigger last but
    // one), may be the user's: never dropped.
    for (schema, tbl, col) in &tables {
        let t = crate::quote::pg::qualified(schema, tbl);
        let shadow = crate::plan::helper_name(col, "", "sluice_new");
        let trigger = crate::plan::helper_name(&format!("zz_{tbl}"), col, "sluice_sync");
        let lit = crate::quote::pg::literal;
        let q = format!(
            "SELECT EXISTS (SELECT FROM pg_attribute WHERE attrelid = {lt}::regclass AND attname = {ls} AND NOT attisdropped) AND NOT EXISTS (SELECT FROM pg_trigger WHERE tgrelid = {lt}::regclass AND tgname = {ltr})",
            lt = lit(&t),
            ls = lit(&shadow),
            ltr = lit(&trigger)
        );
        if query_scalar(engine, &q).await?.as_deref() != Some("t") {
            continue;
        }
        let held = format!(
            "SELECT EXISTS (SELECT FROM {t} WHERE {} IS NOT NULL)",
            crate::quote::pg::ident(&shadow)
        );
        if row.state == RecordState::Failed
            || query_scalar(engine, &held).await?.as_deref() == Some("t")
        {
            return Err(refuse(format!(
                "column {shadow} of {schema}.{tbl} is not one sluice can tell it made (its sync trigger is not beside it): if it is yours, rename it; if it is what a failed attempt left, drop it (`ALTER TABLE {t} DROP COLUMN {}`); then run the command again",
                crate::quote::pg::ident(&shadow)
            )));
        }
    }
    let swapped = kept_children(engine, &cat).await?;
    if let Some(c) = swapped.first() {
        return Err(refuse(format!(
            "the referencing column {}.{}.{} was already swapped (it keeps its old column)",
            c.schema, c.table, c.column
        )));
    }
    // A migration that is more than the ALTER swaps each referencing column without keeping its
    // old one, which a rollback cannot narrow back: a referencing column that has the new type
    // while the column does not, and whose backfill the run checkpointed (a first attempt
    // forgets older checkpoints), is one the cut-off run widened. A child of that type from
    // before the migration has no such checkpoint.
    for c in act::widened_children(&cat, &new_type) {
        let shadow =
            crate::quote::pg::ident(&crate::plan::helper_name(&c.column, "", "sluice_new"));
        let lit = crate::quote::pg::literal;
        // (sluice.backfills is made with the history, which the rollback ensured.)
        let q = format!(
            "SELECT EXISTS (SELECT FROM sluice.backfills WHERE table_name = {} AND left(set_expr, {}) = {})",
            lit(&format!("{}.{}", c.schema, c.table)),
            shadow.chars().count() + 3,
            lit(&format!("{shadow} = "))
        );
        if query_scalar(engine, &q).await?.as_deref() == Some("t") {
            return Err(refuse(format!(
                "the referencing column {}.{}.{} was already widened by the cut-off run (its staged change swapped it without keeping the old column)",
                c.schema, c.table, c.column
            )));
        }
    }
    let (staged, _) =
        super::type_change::with_children(engine, st, &cat, &new_type, false, &[], &cut.around)
            .await?;
    let undo = match staged {
        Ok((r, _)) => r.undo,
        Err(why) => return Err(refuse(why)),
    };
    let stray = stray_child_helpers(engine, &cat, &new_type).await?;
    if !stray.is_empty() {
        return Err(refuse(stray_reason(&stray)));
    }
    // Every table first, in the swap's order (the referencing ones, then the column's), each wait
    // short and retried: a client holding one table while it waits for another makes sluice give
    // up, never the client, and no query queues behind a held lock while sluice waits for the next.
    let parent = crate::quote::pg::qualified(&cat.schema, &cat.table);
    let mut children: Vec<String> = tables
        .iter()
        .skip(1)
        .map(|(sc, t, _)| crate::quote::pg::qualified(sc, t))
        .filter(|t| *t != parent)
        .collect();
    children.sort();
    children.dedup();
    children.push(parent);
    let undo: Vec<String> = [
        act::SHORT_SECOND_WAIT.to_string(),
        format!(
            "LOCK TABLE {} IN ACCESS EXCLUSIVE MODE",
            children.join(", ")
        ),
    ]
    .into_iter()
    .chain(undo)
    .collect();
    (ctx.say)(&format!(
        "rolling back {}: removing the staged type change's helpers ({} statements, one transaction)",
        m.label(),
        undo.len()
    ));
    engine.set_lock_timeout(ctx.lock_timeout).await?;
    let event = ctx.event(
        EventKind::Rollback,
        Some((&m.version, &m.name, &m.checksum)),
        "rolled back a staged type change cut off before its swap".to_string(),
    );
    let held = tx_then(engine, &undo, s, ctx, Some((row, true, event)))
        .await
        .map_err(|e| Error::Rejected {
            context: format!("rolling back {}", m.label()),
            message: format!(
                "the rollback of {} failed and was rolled back (the migration stays {}): {e}",
                m.label(),
                row.state.shown()
            ),
            help: "fix the cause, then run `sluice rollback` again".into(),
        })?;
    (ctx.say)(&format!(
        "rolled back {}: the table is as before the migration, which is pending again (its transaction held its locks {} ms)",
        m.label(),
        held.as_millis()
    ));
    Ok(())
}

/// Whether a history row is the open (expanded) phase of a two-phase migration, and for how long
/// (seconds since its expand phase finished).
pub fn open_secs(r: &HistoryRow) -> Option<i64> {
    (r.state == RecordState::Expanded)
        .then(|| r.finished_at.map(|f| (Utc::now() - f).num_seconds().max(0)))
        .flatten()
}

/// `down`'s refusal of an expanded migration in its range.
pub(crate) fn down_refusal(label: &str) -> Error {
    Error::lifecycle(
        format!("migration {label} is expanded (two application versions live): `sluice down` cannot roll it back"),
        "undo its expand phase with `sluice rollback` (before complete), or finish it with `sluice complete` and then `sluice down`",
    )
}
