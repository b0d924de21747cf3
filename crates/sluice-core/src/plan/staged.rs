//! The staged form of a statement: the steps `sluice up` runs instead of it as written, each with
//! what it does to the table (what `sluice plan` and `up --dry-run` show). Each operation builds
//! its own in its file (create_index.rs, drop_index.rs, add_constraint.rs, set_not_null.rs,
//! add_column.rs, alter_column_type.rs); this file holds the model, the dispatcher and the checks
//! every staged form shares.

use super::{Blocks, Effect};
use crate::analysis::ir::{self, Action, QName};
use crate::sql::SqlStatement;
use crate::target::{EngineKind, Target};
use sqlparser::ast::Statement;

/// A PostgreSQL table lock mode, weakest first (the order of the server's conflict table: each
/// conflicts with at least what the one before it conflicts with).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Lock {
    AccessShare,
    RowShare,
    RowExclusive,
    ShareUpdateExclusive,
    Share,
    ShareRowExclusive,
    Exclusive,
    AccessExclusive,
}

impl Lock {
    pub const ALL: [Lock; 8] = [
        Lock::AccessShare,
        Lock::RowShare,
        Lock::RowExclusive,
        Lock::ShareUpdateExclusive,
        Lock::Share,
        Lock::ShareRowExclusive,
        Lock::Exclusive,
        Lock::AccessExclusive,
    ];

    /// The mode as PostgreSQL's documentation and `LOCK TABLE` spell it.
    pub fn name(self) -> &'static str {
        match self {
            Lock::AccessShare => "ACCESS SHARE",
            Lock::RowShare => "ROW SHARE",
            Lock::RowExclusive => "ROW EXCLUSIVE",
            Lock::ShareUpdateExclusive => "SHARE UPDATE EXCLUSIVE",
            Lock::Share => "SHARE",
            Lock::ShareRowExclusive => "SHARE ROW EXCLUSIVE",
            Lock::Exclusive => "EXCLUSIVE",
            Lock::AccessExclusive => "ACCESS EXCLUSIVE",
        }
    }

    /// The mode an impact line names, or None for a line that says no lock is taken on an
    /// existing table ("none on existing tables", "none on tables"). Any other line is read by
    /// [`Lock::of_line`]: unknown is never safe.
    pub fn of_impact(line: &str) -> Option<Lock> {
        let line = line.trim_start();
        if line
            .get(..4)
            .is_some_and(|w| w.eq_ignore_ascii_case("none"))
        {
            return None;
        }
        Some(Lock::of_line(line))
    }

    /// The mode an impact line names ("SHARE ROW EXCLUSIVE (both tables)", "ACCESS EXCLUSIVE on
    /// the sequence"): the longest mode name the line starts with, as a whole word. A line that
    /// names no mode is ACCESS EXCLUSIVE: unknown is never safe.
    pub fn of_line(line: &str) -> Lock {
        let line = line.trim_start();
        Lock::ALL
            .iter()
            .filter(|l| {
                line.strip_prefix(l.name()).is_some_and(|rest| {
                    !rest.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
                })
            })
            .max_by_key(|l| l.name().len())
            .copied()
            .unwrap_or(Lock::AccessExclusive)
    }
}

impl serde::Serialize for Lock {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

/// A lock a statement takes, as data: its mode and what it is taken on.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TakenLock {
    pub mode: Lock,
    /// The existing tables it is taken on, as written (empty: unknown, e.g. a DROP INDEX names
    /// only its index, or the lock is on `object`).
    pub tables: Vec<String>,
    /// Another object it is taken on instead of a table (`type public.mood`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub object: Option<String>,
}

impl TakenLock {
    /// ACCESS EXCLUSIVE on a table (or on what may be one): every query on it waits while it runs.
    pub fn blocks_all_queries(&self) -> bool {
        self.mode == Lock::AccessExclusive && self.object.is_none()
    }
}

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
    /// What each step does to the table (`sql` first, then each of `then`): `sluice plan` shows
    /// these very steps, so plan and up cannot disagree.
    pub about: Vec<About>,
    /// An unnamed index `sql` builds CONCURRENTLY: its table and the same index on an empty
    /// probe table, so that a rerun recognises a build a killed run finished (the server names it).
    pub unnamed_index: Option<(String, String)>,
    /// The lint rules whose hazard these steps remove: `lint` (for `up`) and `plan` lower their
    /// findings on this statement to info, since `up` runs the steps instead. Each operation says
    /// it next to its staged form, so no separate list can disagree with what is staged.
    pub answers: &'static [&'static str],
}

/// How one step holds the table: what `sluice plan` shows, and all the runner needs to run it
/// (its run-time bound, whether it runs in a transaction, whether it waits without a lock
/// timeout). The runner reads these, never the step's SQL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct About {
    pub description: &'static str,
    /// The strongest lock the step takes on the table.
    pub lock: Lock,
    /// On what else, when not only the statement's table: `" (both tables)"`.
    pub lock_on: &'static str,
    pub effect: Effect,
    pub blocks: Blocks,
    /// False for CONCURRENTLY: it runs on its own, outside any transaction.
    pub transactional: bool,
    /// The tables the lock is on when not the statement's (a referencing column a type change
    /// widens with the column, issue 13 point 2): empty for the statement's own.
    pub tables: Vec<String>,
    /// Said before the description when the step is not on the statement's table.
    pub label: Option<String>,
}

impl About {
    pub(crate) fn new(
        description: &'static str,
        lock: Lock,
        effect: Effect,
        blocks: Blocks,
    ) -> About {
        About {
            description,
            lock,
            lock_on: "",
            effect,
            blocks,
            transactional: true,
            tables: vec![],
            label: None,
        }
    }
    pub(crate) fn concurrent_build(description: &'static str) -> About {
        About {
            transactional: false,
            ..About::new(
                description,
                Lock::ShareUpdateExclusive,
                Effect::IndexBuild,
                Blocks::Nothing,
            )
        }
    }
    /// A catalog-only change under ACCESS EXCLUSIVE: milliseconds once granted.
    pub(crate) fn catalog(description: &'static str) -> About {
        About::new(
            description,
            Lock::AccessExclusive,
            Effect::Instant,
            Blocks::ReadsAndWrites,
        )
    }
    /// ANALYZE of the columns a backfill filled (issue 16): every row was just rewritten, so the
    /// planner knows nothing of the new column until autovacuum's analyze comes by. It samples a
    /// bounded number of rows under SHARE UPDATE EXCLUSIVE (reads and writes continue); `up` never
    /// fails on it (see run_steps).
    pub(crate) fn analyze() -> About {
        About::new(
            "refresh the planner's statistics on the backfilled column (ANALYZE samples the table; reads and writes continue; skipped with a warning when its lock cannot be had)",
            Lock::ShareUpdateExclusive,
            Effect::Scan,
            Blocks::Nothing,
        )
    }
    pub(crate) fn validate(description: &'static str) -> About {
        About::new(
            description,
            Lock::ShareUpdateExclusive,
            Effect::Scan,
            Blocks::Nothing,
        )
    }

    /// The description with its label (`docs.body: add ...`), as `up` says it.
    pub fn said(&self) -> String {
        match &self.label {
            Some(l) => format!("{}: {}", l.trim_end_matches(':'), self.description),
            None => self.description.to_string(),
        }
    }

    /// The lock as `sluice plan` prints it.
    pub fn lock_line(&self) -> String {
        format!("{}{}", self.lock.name(), self.lock_on)
    }

    /// Holds ACCESS EXCLUSIVE (on a table that existed before: staged forms are only for those),
    /// so every query on it waits while the step runs: `up` bounds its run time by
    /// `--exclusive-timeout`.
    pub fn bounded(&self) -> bool {
        self.lock == Lock::AccessExclusive
    }

    /// A concurrent build or drop: it runs outside a transaction, never makes queries queue behind
    /// it and may wait long for older transactions, so `up` runs it without a lock timeout.
    pub fn never_queues_queries(&self) -> bool {
        !self.transactional && self.lock <= Lock::ShareUpdateExclusive
    }
}

impl Rewrite {
    /// Every step in the order `up` runs it, with what it does to the table: what `sluice plan`
    /// and `up --dry-run` print.
    pub fn plan_steps(&self) -> Vec<super::Step> {
        debug_assert_eq!(self.about.len(), 1 + self.then.len(), "{self:?}");
        std::iter::once(self.sql.clone())
            .chain(self.then.iter().map(Step::text))
            .zip(&self.about)
            .map(|(sql, a)| {
                let mut s = super::Step::of_about(sql, a);
                if let Some(label) = &a.label {
                    s.description = format!("{label}: {}", s.description);
                }
                if let Some(l) = &mut s.taken {
                    l.tables.clone_from(&a.tables);
                }
                s
            })
            .collect()
    }
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
        /// The batches stand for an UPDATE the migration wrote (the fill of a NOT NULL column in
        /// two phases): the table's own triggers fire, as for the statement as written. False:
        /// they stand for a DDL rewrite, which fires none (see `BackfillSpec::stands_for_ddl`).
        as_update: bool,
    },
    /// A concurrent index build after the first step: `index` (SQL, schema-qualified) is dropped
    /// first when an interrupted attempt left it INVALID, so IF NOT EXISTS cannot keep a broken one.
    Index {
        sql: String,
        index: String,
    },
    /// `ANALYZE table (columns)` after a backfill (issue 16): never fails the migration, since
    /// statistics are an optimisation; when its lock cannot be had within the retry budget `up`
    /// says so and goes on. Rerunning it is harmless (it only samples again).
    Analyze {
        table: String,
        /// Column names as SQL (quoted).
        columns: Vec<String>,
    },
}

impl Step {
    pub fn sql(&self) -> Option<&str> {
        match self {
            Step::Sql(s) | Step::Index { sql: s, .. } => Some(s),
            // Run by run_steps on its own terms (never committed with the progress record).
            Step::Backfill { .. } | Step::Analyze { .. } => None,
        }
    }

    /// The step as shown: its SQL, or for a backfill the statement each batch runs.
    pub fn text(&self) -> String {
        match self {
            Step::Sql(s) | Step::Index { sql: s, .. } => s.clone(),
            Step::Backfill {
                table, set, filter, ..
            } => format!(
                "backfill in batches: UPDATE {table} SET {set}{}",
                filter
                    .as_deref()
                    .map(|f| format!(" WHERE {f}"))
                    .unwrap_or_default()
            ),
            Step::Analyze { table, columns } => format!("ANALYZE {table} ({})", columns.join(", ")),
        }
    }
}

/// The safer form of each statement of a part, or None where it runs as written.
pub fn rewrite_part(target: Target, statements: &[SqlStatement]) -> Vec<Option<Rewrite>> {
    let all: Vec<ir::Stmt> = statements
        .iter()
        .enumerate()
        .map(|(i, s)| ir::build(target.engine, i, s, 0, &s.sql))
        .collect();
    rewrite_stmts(target, &all)
}

/// [`rewrite_part`] on statements already built.
pub fn rewrite_stmts(target: Target, all: &[ir::Stmt]) -> Vec<Option<Rewrite>> {
    rewrite_stmts_in(target, all, &[])
}

/// [`rewrite_stmts`] for a part of a run whose earlier migrations created `run_tables`: nothing is
/// staged on them either (they are new: empty, unused by the running application version).
pub fn rewrite_stmts_in(
    target: Target,
    all: &[ir::Stmt],
    run_tables: &[QName],
) -> Vec<Option<Rewrite>> {
    let mut created: Vec<QName> = run_tables.to_vec();
    all.iter()
        .map(|st| {
            let out = if target.engine == EngineKind::Postgres {
                rewrite_pg(target, st, all, &created)
            } else {
                None
            };
            for a in st.actions() {
                if let Action::CreateTable { table, .. } = a {
                    created.push(table.clone());
                }
            }
            // An index made on a new table is new: its DROP INDEX runs as written.
            for (index, table) in st.actions().iter().flat_map(crate::analysis::new_indexes) {
                if created.iter().any(|c| c.matches(&table)) {
                    created.push(index);
                }
            }
            out
        })
        .collect()
}

/// A statement that fails with the server's own error (42P07) when a relation of that name (an
/// index name as SQL, maybe schema-qualified) exists.
pub(crate) fn relation_absent(name_sql: &str, unnamed: bool) -> String {
    let lit = crate::quote::pg::literal(name_sql);
    let msg = crate::quote::pg::literal(&format!(
        "relation % already exists{}",
        unnamed_note(unnamed)
    ));
    do_block(&format!("BEGIN IF to_regclass({lit}) IS NOT NULL THEN RAISE EXCEPTION {msg}, {lit} USING ERRCODE = 'duplicate_table'; END IF; END"))
}

/// A statement that fails with the server's own error (42710) when the table has a constraint of
/// that name.
pub(crate) fn constraint_absent(table_sql: &str, name: &str, unnamed: bool) -> String {
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
/// Forgets the checkpoint of backfill `set` on `cat`'s table: one left by an earlier change of
/// the same column (rolled back since) is stale, and a first attempt starts afresh.
pub(crate) fn forget_backfill(cat: &crate::engine::ColumnCatalog, set: &str) -> String {
    format!(
        "DELETE FROM sluice.backfills WHERE table_name = {} AND set_expr = {}",
        crate::quote::pg::literal(&format!("{}.{}", cat.schema, cat.table)),
        crate::quote::pg::literal(set)
    )
}

/// A DO block body that runs `checkpoint` (a backfill checkpoint's reset, run with the
/// prechecks of a first attempt) when sluice's tables are there: `plan` and `up --dry-run` run the
/// prechecks too (in a transaction they roll back), before `up` has made them.
pub(crate) fn reset_checkpoint(checkpoint: &str) -> String {
    format!("BEGIN IF to_regclass('sluice.backfills') IS NOT NULL THEN {checkpoint}; END IF; END")
}

pub(crate) fn do_block(body: &str) -> String {
    format!("DO {}", crate::quote::pg::literal(body))
}

/// `ALTER TABLE t ...` without ONLY or IF EXISTS: the staged steps name the table plainly, which
/// for those would change what is altered (children too) or fail where the statement would not.
pub(crate) fn plain_alter(at: &sqlparser::ast::AlterTable) -> bool {
    !at.only && !at.if_exists && at.on_cluster.is_none() && at.location.is_none()
}

/// An index name (as SQL) in the schema of its table: the index lives there, whatever the
/// search_path, and the rerun must find it there.
pub(crate) fn qualified_index(table: &QName, index_sql: &str) -> String {
    match &table.schema {
        Some(s) => format!("{}.{index_sql}", crate::quote::pg::ident(s)),
        None => index_sql.to_string(),
    }
}

/// Whether sqlparser's tree holds everything the text says: every word, number, string and
/// operator of the text occurs in the tree's rendering at least as often (words compared as the
/// server folds them). Punctuation and spacing may differ.
pub(crate) fn faithful(sql: &str, ast: &Statement) -> bool {
    faithful_in(crate::target::EngineKind::Postgres, sql, ast)
}

/// [`faithful`] with `engine`'s tokenizer: MariaDB's strings take backslash escapes, so a
/// PostgreSQL reading of `'\\'` counts a character the rendering does not have.
pub(crate) fn faithful_in(engine: crate::target::EngineKind, sql: &str, ast: &Statement) -> bool {
    use sqlparser::tokenizer::{Token, Tokenizer};
    let dialect = crate::sql::dialect(engine);
    let count = |text: &str| -> Option<std::collections::HashMap<String, usize>> {
        let tokens = Tokenizer::new(dialect.as_ref(), text).tokenize().ok()?;
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

/// Why a statement whose hazard is usually staged runs as written: what `sluice plan` says instead
/// of steps, with what to write for the staged form.
pub fn why_as_written(target: Target, st: &ir::Stmt) -> String {
    if let Some(ast) = st.ast.as_deref() {
        if !faithful(&st.sql, ast) {
            return "sluice's parser does not keep every clause of it, so a staged form could lose one; split or simplify the statement to have it staged".into();
        }
    }
    if let Some(why) = super::drop_index::why_as_written(st) {
        return why.into();
    }
    match st.ast.as_deref() {
        Some(Statement::AlterTable(at)) if !plain_alter(at) => {
            "the staged steps name the table plainly, which for ONLY or IF EXISTS would change what the statement does; write it without them".into()
        }
        Some(Statement::AlterTable(at)) if at.operations.len() > 1 => {
            "several changes in one ALTER TABLE: write the one to stage as a statement of its own".into()
        }
        _ => super::add_constraint::why_as_written(target, st)
            .unwrap_or("sluice has no staged form for it in this shape")
            .into(),
    }
}

fn rewrite_pg(
    target: Target,
    st: &ir::Stmt,
    part: &[ir::Stmt],
    created: &[QName],
) -> Option<Rewrite> {
    let rewrite = staged_form(target, st, part, created)?;
    // Every staged form is built from sqlparser's tree: a clause the parser accepted but did not
    // keep would silently vanish from it, so such a statement runs as written. Checked only for a
    // statement that has a staged form: the check tokenizes the statement and its rendering, the
    // most expensive step of linting a statement that needs no rewrite.
    if let Some(ast) = st.ast.as_deref() {
        if !faithful(&st.sql, ast) {
            return None;
        }
    }
    Some(rewrite)
}

/// The staged form of one statement, before the faithfulness check: each operation's own file
/// decides. Nothing is staged on a table created earlier in the part (it is empty).
fn staged_form(
    target: Target,
    st: &ir::Stmt,
    part: &[ir::Stmt],
    created: &[QName],
) -> Option<Rewrite> {
    use super::{add_column, add_constraint, create_index, drop_index, set_not_null};
    let [a] = st.actions() else {
        return drop_index::staged(st);
    };
    // An index made earlier in the part or the run on a new table: nothing in use to lock.
    if crate::analysis::drops_only_new_indexes(a, created) {
        return None;
    }
    if let Some(r) = drop_index::staged(st) {
        return Some(r);
    }
    if super::action_table(a).is_some_and(|t| created.iter().any(|c| c.matches(&t))) {
        return None;
    }
    match a {
        Action::CreateIndex { .. } => create_index::staged(st),
        Action::AddConstraint { .. } => add_constraint::staged(target, st),
        Action::SetNotNull { .. } => set_not_null::staged(target, st, part),
        Action::AddColumn { .. } => add_column::staged(target, st),
        _ => None,
    }
}

/// Test support: each step of `r` declares a lock no weaker than the one the operation model
/// reads from the step's SQL on an existing table, and `up` bounds exactly the steps that hold
/// ACCESS EXCLUSIVE. Returns the steps whose declared lock is stronger than the model's reading
/// (none is weaker).
#[cfg(test)]
pub(crate) fn check_declared_locks(target: Target, r: &Rewrite) -> Vec<String> {
    let mut stronger = Vec::new();
    let steps = std::iter::once(Step::Sql(r.sql.clone())).chain(r.then.iter().cloned());
    for (k, step) in steps.enumerate() {
        let about = &r.about[k];
        assert_eq!(
            about.bounded(),
            about.lock == Lock::AccessExclusive,
            "{k}: {about:?}"
        );
        // An ANALYZE step's SQL is its text (the model reads it like any statement).
        let text = step.text();
        let analyze = matches!(step, Step::Analyze { .. }).then_some(text.as_str());
        let Some(sql) = step.sql().or(analyze) else {
            // A backfill: batches of UPDATE, ROW EXCLUSIVE.
            assert_eq!(about.lock, Lock::RowExclusive, "{k}: {about:?}");
            continue;
        };
        let parts = crate::sql::split(target.engine, sql).unwrap();
        let stmts: Vec<ir::Stmt> = parts
            .iter()
            .enumerate()
            .map(|(i, s)| ir::build(target.engine, i, s, 0, &s.sql))
            .collect();
        let read = super::locks_as_written(target, &stmts)
            .into_iter()
            .flatten()
            .map(|l| l.mode)
            .max()
            .unwrap_or(Lock::AccessShare);
        assert!(
            about.lock >= read,
            "step {k} declares {:?} but the model reads {read:?} from `{sql}`",
            about.lock
        );
        assert_eq!(
            about.never_queues_queries(),
            !about.transactional && parts.iter().all(|p| p.has_word("CONCURRENTLY")),
            "{k}: {sql}"
        );
        assert_eq!(
            about.transactional,
            !parts.iter().any(|p| target.needs_own_transaction(p)),
            "{k}: {sql}"
        );
        if about.lock > read {
            stronger.push(format!("{k}: {:?} > {read:?}: {sql}", about.lock));
        }
    }
    stronger
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 12: the runner reads each step's lock and transaction mode from the model, never from
    /// its SQL; for every staged form on every version, what the step declares is what the model
    /// reads from the SQL (never weaker).
    #[test]
    fn each_step_declares_what_its_sql_takes() {
        let corpus = [
            "CREATE INDEX i ON t (a) WHERE a > 0",
            "CREATE UNIQUE INDEX ON t (a)",
            "DROP INDEX IF EXISTS i",
            "ALTER TABLE t ADD CONSTRAINT f FOREIGN KEY (a) REFERENCES u (id)",
            "ALTER TABLE t ADD CHECK (a > 0)",
            "ALTER TABLE t ADD CONSTRAINT k UNIQUE (a) DEFERRABLE",
            "ALTER TABLE t ADD PRIMARY KEY (a, b)",
            "ALTER TABLE t ALTER COLUMN a SET NOT NULL",
            "ALTER TABLE t ADD COLUMN x text NOT NULL DEFAULT md5(random()::text)",
            "ALTER TABLE t ADD COLUMN x int DEFAULT 5",
        ];
        let mut staged = 0;
        for (major, minor) in [(10, 0), (11, 0), (12, 0), (15, 0)] {
            let target = Target::new(EngineKind::Postgres, major, minor);
            for sql in corpus {
                let stmts = crate::sql::split(target.engine, sql).unwrap();
                if let Some(r) = rewrite_part(target, &stmts).remove(0) {
                    staged += 1;
                    let stronger = check_declared_locks(target, &r);
                    assert!(stronger.is_empty(), "{major}: {sql}: {stronger:?}");
                }
            }
        }
        assert!(staged >= 30, "{staged}");
    }

    /// As written, a statement whose table the model cannot name (a DROP INDEX, a statement it
    /// does not understand) is taken to be on an existing table: `up` bounds it when it holds
    /// ACCESS EXCLUSIVE. A table created earlier in the part is empty: nothing to bound.
    #[test]
    fn as_written_locks_assume_an_unknown_table_exists() {
        let target = Target::new(EngineKind::Postgres, 15, 0);
        let locks = |sql: &str| {
            let stmts: Vec<ir::Stmt> = crate::sql::split(target.engine, sql)
                .unwrap()
                .iter()
                .enumerate()
                .map(|(i, s)| ir::build(target.engine, i, s, 0, &s.sql))
                .collect();
            super::super::locks_as_written(target, &stmts)
                .into_iter()
                .map(|l| l.map(|l| l.mode))
                .collect::<Vec<_>>()
        };
        let ae = Some(Lock::AccessExclusive);
        assert_eq!(locks("DROP INDEX a, b"), [ae]);
        assert_eq!(locks("DROP INDEX a CASCADE"), [ae]);
        assert_eq!(
            locks("DROP INDEX CONCURRENTLY a"),
            [Some(Lock::ShareUpdateExclusive)]
        );
        assert_eq!(locks("ALTER TABLE t SET UNLOGGED"), [ae]);
        assert_eq!(locks("CREATE INDEX i ON t (a)"), [Some(Lock::Share)]);
        assert_eq!(
            locks("CREATE TABLE n (a int); ALTER TABLE n ADD COLUMN b int")[1],
            None
        );
        assert_eq!(
            locks("ALTER TABLE t ADD CONSTRAINT f FOREIGN KEY (a) REFERENCES u (id)"),
            [Some(Lock::ShareRowExclusive)]
        );
    }

    #[test]
    fn lock_lines_name_their_mode_and_unknown_is_access_exclusive() {
        for l in Lock::ALL {
            assert_eq!(Lock::of_line(l.name()), l);
            assert_eq!(Lock::of_line(&format!("{} (both tables)", l.name())), l);
            assert_eq!(Lock::of_line(&format!("{} on the sequence", l.name())), l);
        }
        for line in [
            "",
            "none",
            "SHAREHOLDER",
            "metadata lock (brief)",
            "FOO MODE",
        ] {
            assert_eq!(Lock::of_line(line), Lock::AccessExclusive, "{line}");
        }
        assert!(
            Lock::ShareUpdateExclusive < Lock::Share && Lock::Exclusive < Lock::AccessExclusive
        );
    }

    /// Issue 12: which lint findings `up` answers by staging is said by each staged form itself
    /// (no separate list): lint raises every rule it names on the statement as written,
    /// and lint for `up` lowers exactly those findings to info.
    #[test]
    fn each_staged_form_answers_the_rules_lint_raises() {
        use crate::analysis::Severity;
        use crate::lint::{lint, LintOptions};
        let corpus = [
            "CREATE INDEX i ON t (a) WHERE a > 0",
            "CREATE UNIQUE INDEX ON t (a)",
            "DROP INDEX IF EXISTS i",
            "ALTER TABLE t ADD CONSTRAINT f FOREIGN KEY (a) REFERENCES u (id)",
            "ALTER TABLE t ADD CHECK (a > 0)",
            "ALTER TABLE t ADD CONSTRAINT k UNIQUE (a)",
            "ALTER TABLE t ADD PRIMARY KEY (a, b)",
            "ALTER TABLE t ALTER COLUMN a SET NOT NULL",
            "ALTER TABLE t ADD COLUMN x text NOT NULL DEFAULT md5(random()::text)",
        ];
        let target = Target::new(EngineKind::Postgres, 15, 0);
        for sql in corpus {
            let stmts = crate::sql::split(target.engine, sql).unwrap();
            let r = rewrite_part(target, &stmts).remove(0).expect(sql);
            // Each named rule is one lint raises (below), so no name can be a typo.
            assert!(!r.answers.is_empty(), "{sql}");
            let m =
                crate::migration::parse_text(std::path::Path::new("1_m.sql"), 1, "m".into(), sql)
                    .unwrap();
            let findings = |staged| {
                let opts = LintOptions {
                    staged,
                    ..Default::default()
                };
                lint(target, std::slice::from_ref(&m), &opts).findings
            };
            let (as_written, for_up) = (findings(false), findings(true));
            for id in r.answers {
                assert!(
                    as_written
                        .iter()
                        .any(|f| f.rule == *id && f.severity != Severity::Info),
                    "{sql}: {id} not raised: {as_written:?}"
                );
            }
            for f in &for_up {
                assert_eq!(
                    f.severity == Severity::Info && f.message.contains("runs it staged instead"),
                    r.answers.contains(&f.rule),
                    "{sql}: {f:?}"
                );
            }
        }
    }

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
                filter: Some("\"token\" IS NULL".into()),
                as_update: false,
            }
        );
        assert_eq!(
            a.then[2],
            Step::Analyze {
                table: "accounts".into(),
                columns: vec!["\"token\"".into()]
            }
        );
        assert_eq!(a.then[2].text(), "ANALYZE accounts (\"token\")");
        assert_eq!(a.then.len(), 6);
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
        assert_eq!(nn.sql, "ALTER TABLE users ADD CONSTRAINT \"users_email_not_null_check\" CHECK (\"email\" IS NOT NULL) NOT VALID");
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
