//! Plan: what each statement does to a live table (lock, duration class, who is blocked, estimate),
//! and the safe staged steps sluice runs instead. `sluice plan` prints it; the executors run it.
//!
//! One file per operation decides both: how the statement behaves as written on this engine and
//! version, and which steps make it safe.

mod add_column;
mod add_constraint;
pub mod alter_column_type;
pub mod as_written;
mod create_index;
pub use create_index::unnamed_concurrent_probe;
mod drop_index;
pub mod expand;
pub mod old_version;
pub mod other;
pub mod prepare;
pub(crate) mod set_not_null;
pub mod staged;

use crate::analysis::ir::{Action, Stmt};
use crate::analysis::{Ctx, TableStats};
use crate::target::{EngineKind, Target};
use serde::Serialize;

/// How long a step's work lasts, by what it does to the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Effect {
    /// Catalog only: milliseconds once the lock is granted.
    Instant,
    /// Reads every row (validation), no rewrite.
    Scan,
    /// Builds an index: reads every row and sorts.
    IndexBuild,
    /// Writes a new copy of the table and its indexes.
    Rewrite,
    /// Updates existing rows in batches (short transactions).
    Backfill,
    /// Copies the table into a new one (MySQL/MariaDB COPY algorithm or an online copy).
    Copy,
}

/// What live traffic cannot do while the step holds its lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Blocks {
    /// Nothing but other schema changes on the table.
    Nothing,
    /// INSERT/UPDATE/DELETE wait; SELECT continues.
    Writes,
    /// Every query on the table waits.
    ReadsAndWrites,
}

impl Blocks {
    pub fn describe(self) -> &'static str {
        match self {
            Blocks::Nothing => "nothing (other DDL only)",
            Blocks::Writes => "writes",
            Blocks::ReadsAndWrites => "reads and writes",
        }
    }
}

/// How a statement behaves as written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Impact {
    /// The table-level lock in words, as `sluice plan` prints it (PostgreSQL lock mode; on
    /// MariaDB/MySQL the metadata lock and algorithm).
    #[serde(rename = "lock_text")]
    pub lock: String,
    /// The lock as data (PostgreSQL): its mode and the existing tables, or the object, it is
    /// taken on. None: none on an existing table, or another engine.
    #[serde(rename = "lock")]
    pub taken: Option<staged::TakenLock>,
    /// MariaDB/MySQL: the algorithm (INSTANT, NOCOPY, INPLACE, COPY) and lock level (NONE,
    /// SHARED, EXCLUSIVE) the server runs it with, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub algorithm: Option<Algorithm>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lock_level: Option<LockLevel>,
    pub effect: Effect,
    /// What is blocked for the duration of `effect` (for Instant: only while waiting for the lock).
    pub blocks: Blocks,
    pub note: String,
}

/// One step sluice runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Step {
    pub description: String,
    /// The SQL, or for a backfill the statement each batch runs.
    pub sql: String,
    /// The lock in words, as `sluice plan` prints it.
    #[serde(rename = "lock_text")]
    pub lock: String,
    /// The lock as data (PostgreSQL), as [`Impact::taken`].
    #[serde(rename = "lock")]
    pub taken: Option<staged::TakenLock>,
    /// MariaDB/MySQL, as [`Impact::algorithm`] and [`Impact::lock_level`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub algorithm: Option<Algorithm>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lock_level: Option<LockLevel>,
    pub effect: Effect,
    pub blocks: Blocks,
    /// Runs inside a transaction (false: must run on its own, e.g. CONCURRENTLY).
    pub transactional: bool,
}

impl Step {
    pub fn new(
        description: impl Into<String>,
        sql: impl Into<String>,
        lock: &str,
        effect: Effect,
        blocks: Blocks,
    ) -> Step {
        let (algorithm, lock_level) = algorithm_and_lock_level(lock);
        Step {
            description: description.into(),
            sql: sql.into(),
            lock: lock.into(),
            taken: None,
            algorithm,
            lock_level,
            effect,
            blocks,
            transactional: true,
        }
    }

    /// Under `mode` (PostgreSQL) on the statement's table.
    pub fn under(mut self, mode: staged::Lock) -> Step {
        self.taken = Some(staged::TakenLock {
            mode,
            tables: vec![],
            object: None,
        });
        self
    }

    /// A step of a PostgreSQL staged form, under `mode` (its tables are the statement's, filled
    /// in by [`plan_statement`]).
    pub(crate) fn of_about(sql: String, a: &staged::About) -> Step {
        Step {
            description: a.description.into(),
            sql,
            lock: a.lock_line(),
            taken: Some(staged::TakenLock {
                mode: a.lock,
                tables: vec![],
                object: None,
            }),
            algorithm: None,
            lock_level: None,
            effect: a.effect,
            blocks: a.blocks,
            transactional: a.transactional,
        }
    }

    pub fn outside_transaction(mut self) -> Step {
        self.transactional = false;
        self
    }
}

/// The plan of one action of a statement.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ActionPlan {
    pub table: Option<String>,
    pub impact: Impact,
    /// Seconds the table is blocked (as `impact.blocks`) when run as written, from its size; None
    /// when the size is unknown or the effect is instant.
    pub estimate_secs: Option<f64>,
    /// The safe steps; empty when the statement is already safe as written.
    pub safe_steps: Vec<Step>,
    /// Why sluice has no safe form for it (e.g. a type change that needs expand/contract): it runs
    /// as written, so the user should know what that costs.
    pub refused: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct StatementPlan {
    pub index: usize,
    pub line: usize,
    pub sql: String,
    pub actions: Vec<ActionPlan>,
    /// MariaDB/MySQL: how the engine's online path runs this ALTER TABLE (from the live server).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub online: Option<Vec<String>>,
    /// Every table it changes was created by an earlier migration of this run: new, so it runs
    /// as written (the note of each action says so).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub new_in_run: bool,
}

/// What `plan` says of a statement on a table an earlier migration of the same run creates.
pub const NEW_IN_RUN: &str = "table created earlier in this run (empty, unused by the running application version): runs as written";

/// Rough throughput on a small modern server (2 cores; measured on a 1M-row table of ~100-byte
/// rows): enough to tell seconds from hours, not a promise.
pub const REWRITE_ROWS_PER_SEC: f64 = 180_000.0;
pub const SCAN_ROWS_PER_SEC: f64 = 2_000_000.0;
pub const INDEX_BUILD_ROWS_PER_SEC: f64 = 300_000.0;
pub const COPY_ROWS_PER_SEC: f64 = 100_000.0;
pub const BACKFILL_ROWS_PER_SEC: f64 = 60_000.0;

pub fn estimate(effect: Effect, stats: Option<TableStats>) -> Option<f64> {
    let rows = stats?.rows as f64;
    let rate = match effect {
        Effect::Instant => return None,
        Effect::Scan => SCAN_ROWS_PER_SEC,
        Effect::IndexBuild => INDEX_BUILD_ROWS_PER_SEC,
        Effect::Rewrite => REWRITE_ROWS_PER_SEC,
        Effect::Backfill => BACKFILL_ROWS_PER_SEC,
        Effect::Copy => COPY_ROWS_PER_SEC,
    };
    Some(rows / rate)
}

/// What one action does as written and how sluice makes it safe.
pub struct OpPlan {
    pub impact: Impact,
    /// MariaDB/MySQL: the online path in words. PostgreSQL's steps come from the rewrite `up`
    /// runs ([`staged::rewrite_part`]), never from here.
    pub safe_steps: Vec<Step>,
    pub refused: Option<String>,
    /// PostgreSQL: sluice has a staged form for this hazard; when `up` has no rewrite for the
    /// statement as written, the plan says why it runs as written.
    pub staged: bool,
}

impl OpPlan {
    pub fn safe_as_written(impact: Impact) -> OpPlan {
        OpPlan {
            impact,
            safe_steps: vec![],
            refused: None,
            staged: false,
        }
    }

    /// A hazard `up` stages on PostgreSQL (the steps are the rewrite's).
    pub fn staged(impact: Impact) -> OpPlan {
        OpPlan {
            impact,
            safe_steps: vec![],
            refused: None,
            staged: true,
        }
    }
}

/// What `up` runs for one statement on PostgreSQL, as the plan is told it.
#[derive(Debug, Clone, Copy)]
pub enum Staged<'a> {
    /// The staged form `up` runs (None: it runs as written).
    Rewrite(Option<&'a staged::Rewrite>),
    /// Staging is off for the whole part, for this reason.
    Off(&'a str),
}

pub fn impact(lock: &str, effect: Effect, blocks: Blocks, note: impl Into<String>) -> Impact {
    let (algorithm, lock_level) = algorithm_and_lock_level(lock);
    Impact {
        lock: lock.into(),
        taken: None,
        algorithm,
        lock_level,
        effect,
        blocks,
        note: note.into(),
    }
}

/// MariaDB/MySQL: how the server runs an ALTER TABLE, cheapest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Algorithm {
    Instant,
    Nocopy,
    Inplace,
    Copy,
}

/// MariaDB/MySQL: what an ALTER TABLE lets other sessions do while it runs (LOCK=), weakest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum LockLevel {
    None,
    Shared,
    Exclusive,
}

impl Algorithm {
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Instant => "INSTANT",
            Algorithm::Nocopy => "NOCOPY",
            Algorithm::Inplace => "INPLACE",
            Algorithm::Copy => "COPY",
        }
    }

    pub fn of_word(w: &str) -> Option<Algorithm> {
        [
            Algorithm::Instant,
            Algorithm::Nocopy,
            Algorithm::Inplace,
            Algorithm::Copy,
        ]
        .into_iter()
        .find(|a| a.as_str().eq_ignore_ascii_case(w))
    }
}

impl LockLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            LockLevel::None => "NONE",
            LockLevel::Shared => "SHARED",
            LockLevel::Exclusive => "EXCLUSIVE",
        }
    }

    pub fn of_word(w: &str) -> Option<LockLevel> {
        [LockLevel::None, LockLevel::Shared, LockLevel::Exclusive]
            .into_iter()
            .find(|l| l.as_str().eq_ignore_ascii_case(w))
    }
}

/// MariaDB/MySQL: the algorithm and lock level a lock line names (`ALGORITHM=INPLACE, LOCK=SHARED`);
/// INSTANT takes no table lock beyond a brief metadata lock, COPY blocks writes (LOCK=SHARED).
pub fn algorithm_and_lock_level(line: &str) -> (Option<Algorithm>, Option<LockLevel>) {
    let value = |key: &str| {
        let at = line.find(key)? + key.len();
        let v: String = line[at..]
            .chars()
            .take_while(|c| c.is_ascii_alphabetic())
            .collect();
        (!v.is_empty()).then_some(v)
    };
    let algorithm = value("ALGORITHM=").and_then(|w| Algorithm::of_word(&w));
    let level = value("LOCK=")
        .and_then(|w| LockLevel::of_word(&w))
        .or(match algorithm {
            Some(Algorithm::Instant) => Some(LockLevel::None),
            Some(Algorithm::Copy) => Some(LockLevel::Shared),
            _ => None,
        });
    (algorithm, level)
}

/// Plans every action of a statement. On PostgreSQL the safe steps are those of `staged`, the
/// rewrite `up` runs: one function decides what both show and run.
pub fn plan_statement(st: &Stmt, ctx: &Ctx, staged: Staged<'_>) -> StatementPlan {
    let unparsed = unparsed_action(st, ctx);
    let pg = ctx.target.engine == EngineKind::Postgres;
    let new_in_run = crate::plan::as_written::on_run_tables(ctx.target.engine, st, ctx.run_tables);
    let actions = st
        .actions()
        .iter()
        .chain(unparsed.as_ref())
        .enumerate()
        .map(|(k, a)| {
            let op = plan_action(a, st, ctx);
            let table = action_table(a);
            let stats = table.as_ref().and_then(|t| ctx.table_stats(t));
            // A DROP INDEX names no table: its indexes are new when made on a new table.
            let new = table.as_ref().is_some_and(|t| ctx.is_new_table(t))
                || (pg && crate::analysis::drops_only_new_indexes(a, ctx.created_tables));
            let in_run = new_in_run
                || table.as_ref().is_some_and(|t| ctx.is_run_table(t))
                || (pg && crate::analysis::drops_only_new_indexes(a, ctx.run_tables));
            let (safe_steps, refused) = match staged {
                _ if new => (vec![], None),
                _ if !pg => (op.safe_steps, op.refused),
                // A rewrite stands for the whole statement (every staged form has one action).
                Staged::Rewrite(Some(r)) if k == 0 => (r.plan_steps(), None),
                Staged::Rewrite(Some(_)) => (vec![], op.refused),
                Staged::Rewrite(None) => (
                    vec![],
                    op.refused.or_else(|| {
                        op.staged.then(|| {
                            format!(
                                "`sluice up` runs it as written: {}",
                                staged::why_as_written(ctx.target, st)
                            )
                        })
                    }),
                ),
                Staged::Off(why) => (
                    vec![],
                    op.refused.or_else(|| {
                        op.staged
                            .then(|| format!("`sluice up` runs it as written: {why}"))
                    }),
                ),
            };
            let mut impact = op.impact;
            let mut safe_steps = safe_steps;
            if pg {
                impact.taken = taken_lock(a, &impact.lock, ctx);
                // A staged step locks the statement's table (and, for a foreign key, the one it
                // references).
                let mut on: Vec<String> = table.iter().map(|t| t.display()).collect();
                if let Action::AddConstraint { constraint, .. } = a {
                    on.extend(constraint.references.iter().map(|r| r.display()));
                }
                for s in &mut safe_steps {
                    if let Some(l) = &mut s.taken {
                        if l.tables.is_empty() {
                            l.tables = if s.lock.contains("both tables")
                                || s.lock.contains("each table")
                            {
                                on.clone()
                            } else {
                                on.iter().take(1).cloned().collect()
                            };
                        }
                    }
                }
            }
            if in_run {
                impact.note = NEW_IN_RUN.to_string();
            }
            ActionPlan {
                table: table.map(|t| t.display()),
                estimate_secs: if new {
                    None
                } else {
                    estimate(impact.effect, stats)
                },
                impact,
                safe_steps,
                refused,
            }
        })
        .collect();
    StatementPlan {
        index: st.index,
        line: st.line,
        sql: st.sql.clone(),
        actions,
        online: None,
        new_in_run,
    }
}

fn plan_action(a: &Action, st: &Stmt, ctx: &Ctx) -> OpPlan {
    let pg = ctx.target.engine == EngineKind::Postgres;
    match a {
        Action::AddColumn { .. } => add_column::plan(a, ctx),
        Action::CreateIndex { .. } => create_index::plan(a, ctx),
        Action::DropIndex { .. } if pg => drop_index::plan(a, st, ctx),
        Action::AddConstraint { .. } => add_constraint::plan(a, ctx),
        Action::SetNotNull { .. } if pg => set_not_null::plan(a, st, ctx),
        Action::AlterColumnType { .. } => alter_column_type::plan(a, ctx),
        _ => other::plan(a, st, ctx),
    }
}

/// A statement sqlparser could not parse is still planned, from its words (PostgreSQL), as the
/// catch-all `Other`: unknown is never planned as safe.
fn unparsed_action(st: &Stmt, ctx: &Ctx) -> Option<Action> {
    (ctx.target.engine == EngineKind::Postgres
        && matches!(st.parsed, crate::analysis::ir::Parsed::Unparsed { .. }))
    .then_some(Action::Other)
}

/// For each statement of a sequence (run in this order, as written), the strongest lock it takes
/// on a table that existed before the sequence, or on another object (PostgreSQL; None: none on
/// such a table, or another engine). From the same per-operation impacts `sluice plan` prints; a
/// statement the model does not know is ACCESS EXCLUSIVE on a table assumed to exist, and a lock
/// line that names no mode is ACCESS EXCLUSIVE too: unknown is never safe. `up` bounds the run time
/// of an ACCESS EXCLUSIVE one on a table by `--exclusive-timeout`, since every query on the table
/// waits while it runs.
pub fn locks_as_written(target: Target, stmts: &[Stmt]) -> Vec<Option<staged::TakenLock>> {
    locks_as_written_in(target, stmts, &[])
}

/// [`locks_as_written`] for a part of a run whose earlier migrations created `run_tables` (new
/// tables: no lock on them is bounded).
pub fn locks_as_written_in(
    target: Target,
    stmts: &[Stmt],
    run_tables: &[crate::analysis::ir::QName],
) -> Vec<Option<staged::TakenLock>> {
    if target.engine != EngineKind::Postgres {
        return vec![None; stmts.len()];
    }
    let mut out = vec![None; stmts.len()];
    let mut types = crate::analysis::ColumnTypes::new();
    crate::analysis::walk_part_in(
        target,
        stmts,
        crate::migration::TxMode::PerStatement,
        None,
        &mut types,
        false,
        run_tables,
        |i, st, ctx| {
            let unparsed = unparsed_action(st, ctx);
            let mut strongest: Option<staged::TakenLock> = None;
            for a in st.actions().iter().chain(unparsed.as_ref()) {
                let Some(lock) = taken_lock(a, &plan_action(a, st, ctx).impact.lock, ctx) else {
                    continue;
                };
                let mode = lock.mode;
                match &mut strongest {
                    Some(s) if s.mode > mode => {}
                    Some(s) if s.mode == mode && s.object == lock.object => {
                        for t in lock.tables {
                            if !s.tables.contains(&t) {
                                s.tables.push(t);
                            }
                        }
                    }
                    _ => strongest = Some(lock),
                }
            }
            out[i] = strongest;
        },
    );
    out
}

/// The lock an action takes as written (PostgreSQL), from its impact line: on the existing tables
/// it names, or on its object. None when it takes none, or every table it names was created
/// earlier in the part (empty: nothing to wait for). One that names no table (a DROP INDEX, a
/// statement the IR does not model) is taken to be on an existing one.
fn taken_lock(a: &Action, line: &str, ctx: &Ctx) -> Option<staged::TakenLock> {
    if crate::analysis::drops_only_new_indexes(a, ctx.created_tables) {
        return None;
    }
    let named = locked_tables(a, ctx);
    let existing: Vec<String> = named
        .iter()
        .filter(|t| !ctx.is_new_table(t))
        .map(|t| t.display())
        .collect();
    if !named.is_empty() && existing.is_empty() {
        return None;
    }
    Some(staged::TakenLock {
        mode: staged::Lock::of_impact(line)?,
        tables: existing,
        object: lock_object(a),
    })
}

/// The tables an action locks: a CREATE TABLE locks the existing tables it names (its own is
/// new), an ATTACH PARTITION the table attached (and the parent's DEFAULT partition), any other
/// action the table it acts on.
fn locked_tables(a: &Action, ctx: &Ctx) -> Vec<crate::analysis::ir::QName> {
    match a {
        Action::CreateTable { locks, .. } => locks.clone(),
        // ATTACH PARTITION: ACCESS EXCLUSIVE on the table attached and on the parent's DEFAULT
        // partition (named by its parent), unless the catalog says there is none.
        Action::AttachPartition { table, partition } => {
            let mut named = vec![partition.clone()];
            if !other::no_default_partition(ctx, table) {
                named.push(table.clone());
            }
            named
        }
        _ => action_table(a).into_iter().collect(),
    }
}

/// The object other than a table an action locks (PostgreSQL): `ALTER TYPE … ADD VALUE` takes
/// EXCLUSIVE on its type (pg_enum.c: AddEnumLabel), which only other changes of the type and
/// statements creating columns of it wait for.
fn lock_object(a: &Action) -> Option<String> {
    match a {
        Action::AddEnumValue { type_name, .. } | Action::RenameEnumValue { type_name } => {
            Some(format!("type {}", type_name.display()))
        }
        Action::RenameSchema { from, .. } => Some(format!("schema {from}")),
        _ => None,
    }
}

pub fn action_table(a: &Action) -> Option<crate::analysis::ir::QName> {
    use Action::*;
    match a {
        CreateTable { table, .. }
        | CreateIndex { table, .. }
        | AddColumn { table, .. }
        | DropColumn { table, .. }
        | AlterColumnType { table, .. }
        | SetNotNull { table, .. }
        | DropNotNull { table, .. }
        | SetDefault { table, .. }
        | DropDefault { table, .. }
        | AddConstraint { table, .. }
        | ValidateConstraint { table, .. }
        | DropConstraint { table, .. }
        | DropKey { table, .. }
        | RenameColumn { table, .. }
        | DetachPartition { table, .. }
        | AttachPartition { table, .. }
        | MySqlOptions { table, .. } => Some(table.clone()),
        RenameTable { from, .. } => Some(from.clone()),
        DropTable { names, .. } => names.first().cloned(),
        Truncate { tables, .. } => tables.first().cloned(),
        VacuumFull { table } | Reindex { table, .. } | Dml { table, .. } => table.clone(),
        _ => None,
    }
}

/// The name PostgreSQL gives a constraint the migration left unnamed: sluice names the staged form
/// the same, so the result is what the statement as written would give (and VALIDATE can find it).
/// `<table>_pkey`; `<table>_<cols>_key` (INCLUDE columns count) / `_fkey`; a check on one column
/// `<table>_<col>_check`, else `<table>_check`; truncated the way the server truncates them.
pub fn pg_default_constraint_name(table: &str, c: &crate::analysis::ir::ConstraintSpec) -> String {
    use crate::analysis::ir::ConstraintKind::*;
    match c.kind {
        PrimaryKey => pg_object_name(table, None, "pkey"),
        Check if c.expr_columns.len() == 1 => {
            pg_object_name(table, Some(&c.expr_columns[0]), "check")
        }
        Check => pg_object_name(table, None, "check"),
        ForeignKey => pg_object_name(table, Some(&pg_name_addition(&c.columns)), "fkey"),
        _ => {
            let all: Vec<String> = c.columns.iter().chain(&c.include).cloned().collect();
            pg_object_name(table, Some(&pg_name_addition(&all)), "key")
        }
    }
}

/// PostgreSQL's longest name, in bytes (NAMEDATALEN - 1).
pub const PG_MAX_NAME: usize = 63;

/// The longest prefix of `s` of at most `n` bytes that ends on a character boundary.
fn clip(s: &str, n: usize) -> &str {
    let mut cut = n.min(s.len());
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    &s[..cut]
}

/// A name as PostgreSQL stores it: identifiers longer than 63 bytes are truncated.
pub fn pg_truncate(name: &str) -> &str {
    clip(name, PG_MAX_NAME)
}

/// The column part of a generated index or foreign key name (the server's
/// ChooseIndexNameAddition): the names joined by `_`, stopping once 64 bytes are reached.
pub fn pg_name_addition(columns: &[String]) -> String {
    let mut buf = String::new();
    for c in columns {
        if !buf.is_empty() {
            buf.push('_');
        }
        buf.push_str(pg_truncate(c));
        if buf.len() > PG_MAX_NAME {
            break;
        }
    }
    buf
}

/// `<name1>_<name2>_<label>` within 63 bytes, as the server's makeObjectName builds it: the longer
/// of the two names loses a byte at a time, then each is cut back to a character boundary.
pub fn pg_object_name(name1: &str, name2: Option<&str>, label: &str) -> String {
    let name1 = pg_truncate(name1);
    let overhead = label.len() + 1 + usize::from(name2.is_some());
    let avail = PG_MAX_NAME - overhead;
    let (mut n1, mut n2) = (name1.len(), name2.map_or(0, str::len));
    while n1 + n2 > avail {
        if n1 > n2 {
            n1 -= 1;
        } else {
            n2 -= 1;
        }
    }
    let mut out = clip(name1, n1).to_string();
    if let Some(name2) = name2 {
        out.push('_');
        out.push_str(clip(name2, n2));
    }
    out.push('_');
    out.push_str(label);
    out
}

/// A name for a constraint sluice adds while staging and drops again (kept within PostgreSQL's
/// 63 bytes). A name that must be cut gets a hash of the whole so that helpers of different columns
/// of one long table never share a name.
/// FNV-1a folded to 32 bits: stable across runs and builds (a rerun must find the helpers of the
/// killed run by name).
fn fnv32(text: &str) -> u32 {
    let hash = text.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    hash as u32 ^ (hash >> 32) as u32
}

/// The names of a MariaDB/MySQL sync trigger pair on `table`, one per suffix, for the column(s)
/// `key` (several joined with NUL, shown joined with `_`). Trigger names are the schema's, and
/// `{table}_{column}` alone is ambiguous (`a_b`.`c` and `a`.`b_c`), so each carries a tag of the
/// table and `key`; a pair an earlier sluice made under the untagged names (found among
/// `present`, the table's triggers now) keeps them, so its rerun, complete and rollback find it.
pub fn sync_trigger_names(
    table: &str,
    key: &str,
    suffixes: [&str; 2],
    present: &[String],
) -> [String; 2] {
    let legacy = suffixes.map(|s| helper_name(table, &key.replace('\0', "_"), s));
    if legacy
        .iter()
        .any(|n| present.iter().any(|p| p.eq_ignore_ascii_case(n)))
    {
        return legacy;
    }
    let tag = fnv32(&format!("{table}\0{key}"));
    suffixes.map(|s| helper_name(table, key, &format!("{tag:08x}_{s}")).replace('\0', "_"))
}

pub fn helper_name(table: &str, column: &str, suffix: &str) -> String {
    let full = if column.is_empty() {
        format!("{table}_{suffix}")
    } else {
        format!("{table}_{column}_{suffix}")
    };
    if full.len() <= PG_MAX_NAME {
        return full;
    }
    let tail = format!("_{:08x}_{suffix}", fnv32(&full));
    let base = if column.is_empty() {
        table.to_string()
    } else {
        format!("{table}_{column}")
    };
    format!("{}{tail}", clip(&base, PG_MAX_NAME - tail.len()))
}

/// Plans a piece of SQL (one migration's up part) for a target, with known column types and table
/// sizes: the same walk `sluice plan` does, for callers that have SQL rather than files.
pub fn plan_sql(
    target: crate::target::Target,
    sql: &str,
    column_types: &mut crate::analysis::ColumnTypes,
    stats: Option<&std::collections::HashMap<String, TableStats>>,
) -> crate::Result<Vec<StatementPlan>> {
    let m = crate::migration::parse_text(std::path::Path::new("plan.sql"), 0, "plan".into(), sql)?;
    let (stmts, mode, _) = crate::analysis::build_part(target, &m, crate::migration::Direction::Up);
    let part = m
        .part(crate::migration::Direction::Up)
        .expect("parsed with an up part");
    let split = crate::sql::split(target.engine, &part.sql).unwrap_or_default();
    let rewrites = staged::rewrite_part(target, &split);
    let mut out = Vec::new();
    crate::analysis::walk_part(target, &stmts, mode, stats, column_types, |i, st, ctx| {
        let r = rewrites.get(i).and_then(Option::as_ref);
        out.push(plan_statement(st, ctx, Staged::Rewrite(r)));
    });
    Ok(out)
}

#[cfg(test)]
mod one_model_tests {
    use super::*;
    use crate::target::Target;

    /// Issue 12: on every PostgreSQL version the plan's steps are exactly the rewrite's steps `up`
    /// runs (or none, with the reason, when up runs the statement as written). The live proof
    /// against a server's log is `crates/sluice/tests/plan_equals_up.rs` (PostgreSQL 15 only).
    #[test]
    fn plan_steps_are_the_rewrite_steps_on_every_version() {
        let corpus = [
            "ALTER TABLE t ADD COLUMN x text NOT NULL DEFAULT md5(random()::text)",
            "ALTER TABLE t ADD COLUMN x int DEFAULT 5",
            "ALTER TABLE t ADD COLUMN x int NOT NULL DEFAULT 5",
            "ALTER TABLE t ADD PRIMARY KEY (a)",
            "ALTER TABLE t ADD CONSTRAINT k UNIQUE NULLS NOT DISTINCT (a)",
            "ALTER TABLE t ALTER COLUMN a SET NOT NULL",
            "CREATE INDEX i ON t (a) WHERE a > 0",
            "DROP INDEX a, b",
            "DROP INDEX a CASCADE",
            "ALTER TABLE t ADD CHECK (a > 0)",
        ];
        for (major, minor) in [(10, 0), (11, 0), (12, 0), (14, 0), (15, 0)] {
            let target = Target::new(EngineKind::Postgres, major, minor);
            for sql in corpus {
                let plans = plan_sql(target, sql, &mut Default::default(), None).unwrap();
                let split = crate::sql::split(target.engine, sql).unwrap();
                let rewrite = staged::rewrite_part(target, &split).remove(0);
                let a = &plans[0].actions[0];
                let want = rewrite.as_ref().map(|r| r.plan_steps()).unwrap_or_default();
                // The plan adds the tables each step locks (the rewrite holds SQL, not names).
                let mut got = a.safe_steps.clone();
                for s in &mut got {
                    if let Some(l) = &mut s.taken {
                        l.tables.clear();
                    }
                }
                assert_eq!(got, want, "{major}: {sql}");
                // A statement up runs as written, although its hazard is usually staged, says why.
                if rewrite.is_none() && a.impact.effect != Effect::Instant {
                    assert!(a.refused.is_some(), "{major}: {sql}: {a:?}");
                }
            }
        }
        // The versions decide: before 12 no primary key or SET NOT NULL is staged, and before 11
        // even a constant default is backfilled.
        let steps = |major, sql| {
            let t = Target::new(EngineKind::Postgres, major, 0);
            plan_sql(t, sql, &mut Default::default(), None).unwrap()[0].actions[0]
                .safe_steps
                .len()
        };
        assert_eq!(steps(11, "ALTER TABLE t ADD PRIMARY KEY (a)"), 0);
        assert_eq!(steps(12, "ALTER TABLE t ADD PRIMARY KEY (a)"), 4);
        assert_eq!(steps(11, "ALTER TABLE t ALTER COLUMN a SET NOT NULL"), 0);
        assert_eq!(steps(10, "ALTER TABLE t ADD COLUMN x int DEFAULT 5"), 4);
        // Proven by a valid check of an earlier statement: nothing to stage, no reason needed.
        let t = Target::new(EngineKind::Postgres, 15, 0);
        let plans = plan_sql(
            t,
            "ALTER TABLE t ADD CONSTRAINT c CHECK (a IS NOT NULL); ALTER TABLE t ALTER COLUMN a SET NOT NULL",
            &mut Default::default(),
            None,
        )
        .unwrap();
        let set = &plans[1].actions[0];
        assert_eq!((set.safe_steps.len(), &set.refused), (0, &None));
        assert_eq!(set.impact.effect, Effect::Instant);
        assert_eq!(steps(11, "ALTER TABLE t ADD COLUMN x int DEFAULT 5"), 0);
    }
}

#[cfg(test)]
mod typed_lock_tests {
    use super::*;
    use serde_json::json;

    fn plan_json(major: u32, sql: &str) -> serde_json::Value {
        let t = Target::new(EngineKind::Postgres, major, 0);
        serde_json::to_value(plan_sql(t, sql, &mut Default::default(), None).unwrap()).unwrap()
    }

    /// Issue 12: `plan --json` carries each lock as data: mode and tables (or object), the words
    /// beside it in `lock_text`; null when no existing table is locked.
    #[test]
    fn plan_json_locks_are_typed() {
        let j = plan_json(
            15,
            "ALTER TABLE app.t ADD CONSTRAINT f FOREIGN KEY (a) REFERENCES u (id)",
        );
        let a = &j[0]["actions"][0];
        assert_eq!(
            a["impact"]["lock"],
            json!({"mode": "SHARE ROW EXCLUSIVE", "tables": ["app.t"]})
        );
        assert_eq!(
            a["impact"]["lock_text"],
            "SHARE ROW EXCLUSIVE (both tables)"
        );
        // NOT VALID on both tables, then VALIDATE on the table alone.
        let steps = a["safe_steps"].as_array().unwrap();
        assert_eq!(
            steps.iter().map(|s| s["lock"].clone()).collect::<Vec<_>>(),
            [
                json!({"mode": "SHARE ROW EXCLUSIVE", "tables": ["app.t", "u"]}),
                json!({"mode": "SHARE UPDATE EXCLUSIVE", "tables": ["app.t"]}),
            ]
        );
        let j = plan_json(15, "CREATE TABLE n (a int REFERENCES p (id))");
        assert_eq!(
            j[0]["actions"][0]["impact"]["lock"],
            json!({"mode": "SHARE ROW EXCLUSIVE", "tables": ["p"]})
        );
        let j = plan_json(15, "CREATE TABLE n (a int)");
        assert_eq!(j[0]["actions"][0]["impact"]["lock"], json!(null));
        let j = plan_json(15, "ALTER TYPE e ADD VALUE 'x'");
        assert_eq!(
            j[0]["actions"][0]["impact"]["lock"],
            json!({"mode": "EXCLUSIVE", "tables": [], "object": "type e"})
        );
        // A table created earlier in the part is not an existing table.
        let j = plan_json(15, "CREATE TABLE n (a int); CREATE INDEX i ON n (a)");
        assert_eq!(j[1]["actions"][0]["impact"]["lock"], json!(null));
        // No MariaDB fields on PostgreSQL.
        assert!(j[1]["actions"][0]["impact"].get("algorithm").is_none());
    }

    /// Every staged step and every impact of the corpus, on every version, carries a typed lock
    /// whose mode is the one its words name.
    #[test]
    fn every_typed_lock_agrees_with_its_words() {
        let corpus = [
            "ALTER TABLE t ADD COLUMN x text NOT NULL DEFAULT md5(random()::text)",
            "ALTER TABLE t ADD COLUMN x int DEFAULT 5",
            "ALTER TABLE t ADD PRIMARY KEY (a)",
            "ALTER TABLE t ADD CONSTRAINT k UNIQUE (a)",
            "ALTER TABLE t ALTER COLUMN a SET NOT NULL",
            "CREATE INDEX i ON t (a) WHERE a > 0",
            "DROP INDEX a",
            "ALTER TABLE t ADD CHECK (a > 0)",
            "ALTER TABLE t ADD CONSTRAINT f FOREIGN KEY (a) REFERENCES u (id)",
            "ALTER TABLE t SET UNLOGGED",
            "REINDEX TABLE CONCURRENTLY t",
            "UPDATE t SET a = 1",
            "VACUUM FULL t",
        ];
        for major in [11, 12, 15, 18] {
            for sql in corpus {
                let t = Target::new(EngineKind::Postgres, major, 0);
                for sp in plan_sql(t, sql, &mut Default::default(), None).unwrap() {
                    for a in &sp.actions {
                        let l = a.impact.taken.as_ref().expect(sql);
                        assert_eq!(
                            Some(l.mode),
                            staged::Lock::of_impact(&a.impact.lock),
                            "{sql}"
                        );
                        for s in &a.safe_steps {
                            let l = s.taken.as_ref().expect(sql);
                            assert_eq!(staged::Lock::of_line(&s.lock), l.mode, "{sql}: {s:?}");
                            // A DROP INDEX names no table.
                            assert_eq!(
                                l.tables.is_empty(),
                                sql.starts_with("DROP INDEX"),
                                "{sql}: {s:?}"
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn mariadb_lines_give_algorithm_and_lock_level() {
        let cases = [
            ("ALGORITHM=INSTANT", Some("INSTANT"), Some("NONE")),
            ("ALGORITHM=NOCOPY, LOCK=NONE", Some("NOCOPY"), Some("NONE")),
            (
                "ALGORITHM=INPLACE, LOCK=SHARED",
                Some("INPLACE"),
                Some("SHARED"),
            ),
            (
                "ALGORITHM=INPLACE, LOCK=EXCLUSIVE",
                Some("INPLACE"),
                Some("EXCLUSIVE"),
            ),
            ("ALGORITHM=COPY", Some("COPY"), Some("SHARED")),
            (
                "metadata lock (brief), ALGORITHM=INSTANT",
                Some("INSTANT"),
                Some("NONE"),
            ),
            ("metadata lock (brief)", None, None),
        ];
        for (line, alg, level) in cases {
            let (a, l) = algorithm_and_lock_level(line);
            assert_eq!(
                (a.map(Algorithm::as_str), l.map(LockLevel::as_str)),
                (alg, level),
                "{line}"
            );
            let i = impact(line, Effect::Instant, Blocks::Nothing, "");
            assert_eq!((i.algorithm, i.lock_level, i.taken), (a, l, None), "{line}");
        }
    }
}

#[cfg(test)]
mod name_tests {
    use super::*;

    #[test]
    fn default_names_are_cut_as_the_server_cuts_them() {
        // Checked against PostgreSQL 15: 70 a's (truncated to 63) and 73 x's.
        let t = "a".repeat(63);
        let x = "x".repeat(63);
        assert_eq!(
            pg_object_name(&t, Some(&pg_name_addition(&[x.clone(), "y".into()])), "key"),
            format!("{}_{}_key", "a".repeat(29), "x".repeat(29))
        );
        assert_eq!(
            pg_object_name(&t, None, "pkey"),
            format!("{}_pkey", "a".repeat(58))
        );
        // Multibyte: cut on a character boundary, never inside one.
        let u = "ü".repeat(40);
        let n = pg_object_name(&u, Some("b"), "check");
        assert!(n.len() <= 63 && n.ends_with("_b_check"), "{n}");
    }

    #[test]
    fn helper_names_stay_distinct_within_63_bytes() {
        for len in [1, 40, 53, 54, 55, 58, 62, 63] {
            for t in ["t".repeat(len), "ä".repeat(len / 2 + 1)] {
                let t = pg_truncate(&t);
                let a = helper_name(t, "a", "not_null_check");
                let b = helper_name(t, "b", "not_null_check");
                assert!(a.len() <= 63 && b.len() <= 63, "{a} {b}");
                assert_ne!(a, b, "{len}");
                assert_eq!(a, helper_name(t, "a", "not_null_check"), "stable");
            }
        }
    }
}
