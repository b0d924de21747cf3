//! Preparing a part: split, staged forms from the operation model, transaction mode.

use super::*;

/// A migration part ready to run.
#[derive(Debug, Clone)]
pub struct PreparedPart {
    /// The statements as written (their hashes are what progress records).
    pub statements: Vec<SqlStatement>,
    /// The staged form each statement runs as (None: as written). Each step says how it runs
    /// (lock, transaction, index it builds): the runner reads that, never the steps' SQL.
    pub rewrites: Vec<Option<crate::plan::staged::Rewrite>>,
    /// Each statement as written, as the model describes it (lock, transaction mode, tables,
    /// unnamed index): what the runner reads for a statement that is not staged, never its SQL.
    pub written: Vec<crate::plan::as_written::AsWritten>,
    /// Which statements take ACCESS EXCLUSIVE on a table that existed before the part as they run
    /// (as written, or the first step of their staged form), so `up` bounds their run time (with
    /// `safe` only: `--as-written` runs without a run-time bound).
    pub exclusive: Vec<bool>,
    pub mode: TxMode,
    /// Why this mode, for `--dry-run` and logs.
    pub mode_reason: String,
}

pub fn prepare(
    engine: &dyn Engine,
    m: &Migration,
    dir: Direction,
    safe: bool,
) -> Result<PreparedPart> {
    prepare_for(engine.target(), m, dir, safe)
}

/// [`prepare`] for a migration of a run whose earlier migrations created `run_tables`: statements
/// on those run as written (see [`crate::analysis::RunTables`]).
pub fn prepare_in(
    engine: &dyn Engine,
    m: &Migration,
    dir: Direction,
    safe: bool,
    run_tables: &[crate::analysis::ir::QName],
) -> Result<PreparedPart> {
    prepare_for_in(engine.target(), m, dir, safe, run_tables)
}

/// Splits and classifies a part for a target, without a connection (`lint` uses the same decisions).
/// With `safe`, statements that have a safer equivalent sluice can run today (index builds and drops
/// CONCURRENTLY on PostgreSQL) run in that form; `--as-written` turns it off.
pub fn prepare_for(
    target: crate::target::Target,
    m: &Migration,
    dir: Direction,
    safe: bool,
) -> Result<PreparedPart> {
    prepare_for_in(target, m, dir, safe, &[])
}

/// [`prepare_for`] with the tables earlier migrations of the run created.
pub fn prepare_for_in(
    target: crate::target::Target,
    m: &Migration,
    dir: Direction,
    safe: bool,
    run_tables: &[crate::analysis::ir::QName],
) -> Result<PreparedPart> {
    let part = part_of(m, dir)?;
    let (path, text) = m.file_of(part);
    let statements = sql::split(target.engine, &part.sql).map_err(|e| {
        let (l0, _) = sql::line_col(text, part.offset);
        Error::MigrationFile {
            path: path.to_path_buf(),
            line: Some(l0 + e.line - 1),
            message: format!(
                "line {}: cannot read the SQL: {}",
                l0 + e.line - 1,
                e.message
            ),
            help: "check for an unterminated string, quoted identifier or dollar quote".into(),
        }
    })?;
    prepare_split(target, m, dir, safe, statements, None, run_tables)
}

pub(super) fn part_of(m: &Migration, dir: Direction) -> Result<&Part> {
    m.part(dir).ok_or_else(|| irreversible_error(m))
}

/// [`prepare_for`] on a part already split, with its IR when the caller built it (`lint` has):
/// each statement is then parsed once, not again for its staged form and its lock.
pub fn prepare_split(
    target: crate::target::Target,
    m: &Migration,
    dir: Direction,
    safe: bool,
    statements: Vec<SqlStatement>,
    ir: Option<&[crate::analysis::ir::Stmt]>,
    run_tables: &[crate::analysis::ir::QName],
) -> Result<PreparedPart> {
    let part = part_of(m, dir)?;
    let (path, text) = m.file_of(part);
    let file_err = |offset_in_part: usize, message: String, help: &str| {
        let (line, col) = sql::line_col(text, part.offset + offset_in_part);
        Error::MigrationFile {
            path: path.to_path_buf(),
            line: Some(line),
            message: format!("line {line}, column {col}: {message}"),
            help: help.to_string(),
        }
    };
    let kind = target.engine;
    if statements.is_empty() {
        // A placeholder (or a part empty for this engine): recorded as run, nothing executes.
        return Ok(PreparedPart {
            statements: vec![],
            rewrites: vec![],
            written: vec![],
            exclusive: vec![],
            mode: TxMode::Single,
            mode_reason: "no SQL: recorded, nothing runs".into(),
        });
    }
    // A part forced into one transaction keeps its statements as written: their concurrent forms
    // cannot run there (lint says so). The model says how each statement runs, staged or as
    // written; the runner reads that, never the statements' SQL.
    let stage = safe && part.tx_directive != Some(TxMode::Single);
    let (rewrites, written) =
        crate::plan::as_written::model_part(target, &statements, ir, stage, run_tables);
    if let Some((s, _)) = statements
        .iter()
        .zip(&written)
        .find(|(_, w)| w.transaction_control)
    {
        return Err(file_err(
            s.offset,
            format!("`{}` controls transactions, which sluice manages itself", s.sql.lines().next().unwrap_or("")),
            "remove BEGIN/COMMIT from the migration; use `-- sluice:transaction single` or `per-statement` to choose the mode",
        ));
    }
    // What must run outside a transaction: a staged form's first step says so itself.
    let own_tx: Vec<(&SqlStatement, &str)> = statements
        .iter()
        .zip(&rewrites)
        .zip(&written)
        .filter_map(|((s, r), w)| match r {
            Some(r) => (!r.about[0].transactional).then_some((s, r.sql.as_str())),
            None => (!w.transactional).then_some((s, w.sql.as_str())),
        })
        .collect();
    let (mode, mode_reason) = match part.tx_directive {
        Some(TxMode::Single) => {
            if let Some((s, _)) = own_tx.first() {
                let (why, help) = if target.transactional_ddl() {
                    (
                        "cannot run inside a transaction".to_string(),
                        "remove the directive (sluice then runs this migration statement by statement) or move the statement to its own migration",
                    )
                } else {
                    (
                        format!("commits implicitly on {kind}"),
                        "on MariaDB/MySQL a single transaction can only wrap data changes (INSERT/UPDATE/DELETE); remove the directive",
                    )
                };
                return Err(file_err(
                    s.offset,
                    format!(
                        "`-- sluice:transaction single`, but `{}` {why}",
                        first_line(&s.sql)
                    ),
                    help,
                ));
            }
            (
                TxMode::Single,
                "forced by `-- sluice:transaction single`".to_string(),
            )
        }
        Some(TxMode::PerStatement) => (
            TxMode::PerStatement,
            "forced by `-- sluice:transaction per-statement`".into(),
        ),
        None if !target.transactional_ddl() => (
            TxMode::PerStatement,
            format!("{kind} commits DDL implicitly; progress is recorded after each statement"),
        ),
        None => match (
            own_tx.first(),
            rewrites.iter().flatten().find(|r| !r.then.is_empty()),
        ) {
            (Some((_, sql)), _) => (
                TxMode::PerStatement,
                format!("`{}` cannot run inside a transaction", first_line(sql)),
            ),
            (None, Some(r)) => (
                TxMode::PerStatement,
                format!(
                    "`{}` and its VALIDATE must commit separately",
                    first_line(&r.sql)
                ),
            ),
            (None, None) => (TxMode::Single, "all statements are transactional".into()),
        },
    };
    let exclusive = if safe {
        rewrites
            .iter()
            .zip(&written)
            .map(|(r, w)| match r {
                Some(r) => r.about[0].bounded(),
                None => w.bounded(),
            })
            .collect()
    } else {
        vec![false; statements.len()]
    };
    Ok(PreparedPart {
        statements,
        rewrites,
        written,
        exclusive,
        mode,
        mode_reason,
    })
}

/// `sluice down` cannot revert `m`: what the file says, and what to do.
pub(super) fn irreversible_error(m: &Migration) -> Error {
    let why = m
        .irreversible
        .as_ref()
        .map(|i| i.describe())
        .unwrap_or_else(|| "it has no down part".into());
    Error::usage(
        format!("migration {} is irreversible: {why}", m.label()),
        format!(
            "to make it reversible, write the SQL that undoes it under `-- sluice:down` in {} (an empty down part means nothing to undo) and run `sluice repair`; or undo it with a new forward migration",
            m.path.display()
        ),
    )
}
