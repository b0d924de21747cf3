//! Preparing a part: split, staged forms from the operation model, transaction mode. Part of the
//! plan (no database): `lint` and `up` make the same decisions from it.

use crate::error::{Error, Result};
use crate::migration::{Direction, Migration, Part, TxMode};
use crate::sql::{self, SqlStatement};

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
    /// How each statement written for a plain MariaDB/MySQL client's session runs (a dump's
    /// `LOCK TABLES` bracket, a `BEGIN ... COMMIT` around data changes): see [`Bracket`].
    pub brackets: Vec<Bracket>,
}

/// Statements a history written for the plain MariaDB/MySQL client uses to bracket others. sluice
/// records progress after each statement on the same session, which such a bracket forbids (no
/// other table may be touched under `LOCK TABLES`; a write inside the user's transaction would
/// commit or roll back with it), so each runs in a form that keeps the result as written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bracket {
    /// An ordinary statement.
    None,
    /// Not run, for this reason; recorded as done (the result is the same without it).
    Skip(&'static str),
    /// `BEGIN`: the data changes up to the `COMMIT` at `end` run in one transaction that also
    /// records the progress through `end`, so the group is applied and recorded together or not at
    /// all (a failure or kill leaves it to run again from `BEGIN`).
    Group { end: usize },
    /// PostgreSQL: a statement a staged type change runs inside its swap (a view or policy on the
    /// column dropped right before it and re-created right after it, issue 13): not run on its
    /// own. One before the type change is recorded as done when reached (what it drops stays
    /// until the swap); one after it is recorded with the swap, in the same transaction.
    InSwap { after: bool },
}

/// Why a statement a staged type change runs in its swap does not run on its own.
pub const IN_SWAP_BEFORE: &str = "runs inside the swap of the staged type change after it (the view or policy stays in place through the backfill; the swap's short transaction drops it)";
pub const IN_SWAP_AFTER: &str = "runs inside the swap of the staged type change before it, in the same short transaction (recorded with it)";

/// Why `LOCK TABLES` / `UNLOCK TABLES` do not run.
const LOCK_BRACKET: &str = "not run: a table lock would forbid sluice's progress record after each statement, and each statement already runs under sluice's lock discipline (the data is the same)";
/// Why a `COMMIT` outside any `BEGIN` does not run.
const STRAY_COMMIT: &str = "not run: no transaction is open (each statement before it is already committed with its progress record)";

/// Why sluice cannot run a statement of a file's own transaction brackets faithfully.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unfit {
    /// Transaction control sluice has no faithful form for (ROLLBACK, SAVEPOINT, an unclosed
    /// BEGIN, a BEGIN around what commits implicitly on MariaDB/MySQL).
    Control,
    /// PostgreSQL: a statement `up` would stage (its safe form cannot run inside the file's
    /// transaction, and running it as written there would take the lock the staging avoids).
    Staged,
    /// PostgreSQL: a statement that cannot run inside a transaction block at all.
    OwnTransaction,
}

/// The [`Bracket`] of each statement, or the index of one sluice cannot run faithfully and why:
/// a `BEGIN` without its `COMMIT`, one around a statement that commits implicitly (MariaDB/MySQL)
/// or that `up` stages or runs outside a transaction (PostgreSQL), or other transaction control.
fn brackets(
    target: crate::target::Target,
    statements: &[SqlStatement],
    written: &[crate::plan::as_written::AsWritten],
    rewrites: &[Option<crate::plan::staged::Rewrite>],
) -> std::result::Result<Vec<Bracket>, (usize, Unfit)> {
    let mut out = vec![Bracket::None; statements.len()];
    let pg = !target.engine.is_mysql_family();
    // COMMIT / END (PostgreSQL) end a transaction as a plain COMMIT does; AND CHAIN or PREPARED
    // would leave one open or two-phase.
    let commits = |s: &SqlStatement| {
        (s.kw0() == "COMMIT" || (pg && s.kw0() == "END"))
            && !s.has_words(&["AND", "CHAIN"])
            && !s.has_word("PREPARED")
    };
    let mut i = 0;
    while i < statements.len() {
        let s = &statements[i];
        if !pg && s.is_table_lock_bracket() {
            out[i] = Bracket::Skip(LOCK_BRACKET);
        } else if s.opens_transaction() {
            // On PostgreSQL a BEGIN inside the open transaction only warns (psql goes on): the
            // first COMMIT ends the group. On MariaDB/MySQL it commits implicitly: refused.
            let end = (i + 1..statements.len())
                .find(|&k| {
                    (written[k].transaction_control && !(pg && statements[k].opens_transaction()))
                        || (!pg && statements[k].is_table_lock_bracket())
                })
                .ok_or((i, Unfit::Control))?;
            if !commits(&statements[end]) {
                return Err((if pg { end } else { i }, Unfit::Control));
            }
            for k in i + 1..end {
                if pg {
                    if statements[k].opens_transaction() {
                        continue;
                    }
                    if rewrites.get(k).is_some_and(Option::is_some) {
                        return Err((k, Unfit::Staged));
                    }
                    if !written[k].transactional {
                        return Err((k, Unfit::OwnTransaction));
                    }
                } else if !written[k].transactional || written[k].alter_table {
                    // Only data changes keep a transaction open on MariaDB/MySQL.
                    return Err((i, Unfit::Control));
                }
            }
            out[i] = Bracket::Group { end };
            i = end + 1;
            continue;
        } else if written[i].transaction_control {
            if !commits(s) {
                return Err((i, Unfit::Control));
            }
            out[i] = Bracket::Skip(STRAY_COMMIT);
        }
        i += 1;
    }
    Ok(out)
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

pub(crate) fn part_of(m: &Migration, dir: Direction) -> Result<&Part> {
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
            brackets: vec![],
        });
    }
    // A part forced into one transaction keeps its statements as written: their concurrent forms
    // cannot run there (lint says so). The model says how each statement runs, staged or as
    // written; the runner reads that, never the statements' SQL.
    let stage = safe && part.tx_directive != Some(TxMode::Single);
    let (rewrites, written) =
        crate::plan::as_written::model_part(target, &statements, ir, stage, run_tables);
    let refuse = |s: &SqlStatement, why: Unfit| {
        let line = first_line(&s.sql);
        match why {
            Unfit::Control => file_err(
                s.offset,
                format!("`{line}` controls transactions, which sluice manages itself"),
                "remove it, or write the statements as BEGIN ... COMMIT groups, which sluice runs as one transaction each (on MariaDB/MySQL only around data changes); `-- sluice:transaction single` or `per-statement` choose the mode of the whole migration",
            ),
            Unfit::Staged => file_err(
                s.offset,
                format!("`{line}` is inside BEGIN ... COMMIT, but `sluice up` runs it staged (steps that cannot run inside that transaction) so that it does not block the table; as written there it would"),
                "move it after the COMMIT (it then runs staged), or run this migration as written with `sluice up --as-written`",
            ),
            Unfit::OwnTransaction => file_err(
                s.offset,
                format!("`{line}` cannot run inside a transaction block, and it is inside BEGIN ... COMMIT"),
                "move it after the COMMIT",
            ),
        }
    };
    let brackets = brackets(target, &statements, &written, &rewrites)
        .map_err(|(i, why)| refuse(&statements[i], why))?;
    // One transaction for the whole part leaves no room for a bracket of the file's own.
    if part.tx_directive == Some(TxMode::Single) {
        if let Some(i) = brackets.iter().position(|b| *b != Bracket::None) {
            return Err(refuse(&statements[i], Unfit::Control));
        }
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
        // The file's own BEGIN ... COMMIT: each group is one transaction with its progress
        // record, the statements outside it one each (as psql runs the file).
        None if brackets.iter().any(|b| *b != Bracket::None) => (
            TxMode::PerStatement,
            "the file's BEGIN ... COMMIT runs as one transaction with its progress record".into(),
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
        brackets,
    })
}

/// `sluice down` cannot revert `m`: what the file says, and what to do.
pub(crate) fn irreversible_error(m: &Migration) -> Error {
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

fn first_line(s: &str) -> String {
    let l = s.lines().next().unwrap_or("").trim();
    if l.chars().count() > 80 {
        format!("{}…", l.chars().take(80).collect::<String>())
    } else {
        l.to_string()
    }
}
