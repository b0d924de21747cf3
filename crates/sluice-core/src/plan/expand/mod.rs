//! Two application versions live (issue 14): a migration whose statement breaks the version still
//! running (a rename, a drop) runs in two phases. `sluice up` runs the **expand** phase, after which
//! the old and the new names both work; `sluice complete` runs the **contract** phase once the new
//! version runs everywhere; `sluice rollback` undoes the expand phase before that.
//!
//! Each operation lives in a file of its own and returns its phases as data ([`Phases`]): `plan`
//! shows them, `up`, `complete` and `rollback` run them (`crate::lifecycle`), so what is shown is
//! what runs. PostgreSQL (a lone DROP TABLE too); on MariaDB/MySQL a lone RENAME COLUMN, DROP COLUMN, table rename and DROP TABLE, a split or merge, and (MariaDB) the NOT NULL fill. The default
//! mode keeps the old names working physically (no application configuration).

pub mod column_type;
pub mod drop_column;
pub mod drop_column_mysql;
pub mod drop_table;
pub mod fill_not_null;
pub mod fill_not_null_mysql;
pub mod rename_column;
pub mod rename_column_mysql;
pub mod rename_table;
pub mod rename_table_mysql;
pub mod split_merge;
pub mod split_merge_mysql;
pub mod versioned;

use super::staged::{About, Step};
use crate::analysis::ir::{Action, QName, Stmt};
use crate::target::EngineKind;

/// A statement that breaks the application version still running.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Breaking {
    /// `ALTER TABLE t RENAME COLUMN from TO to`.
    RenameColumn {
        table: QName,
        from: String,
        to: String,
    },
    /// `ALTER TABLE t DROP COLUMN [IF EXISTS] c [, DROP COLUMN ...] [CASCADE]`: each column with
    /// its IF EXISTS (MariaDB/MySQL: see `drop_column_mysql`).
    DropColumns {
        table: QName,
        columns: Vec<(String, bool)>,
        cascade: bool,
    },
    /// `ALTER TABLE from RENAME TO to` (MariaDB/MySQL also `RENAME TABLE from TO to`); `to` in
    /// the schema of `from` unless it names one.
    RenameTable { from: QName, to: QName },
    /// `DROP TABLE [IF EXISTS] t [CASCADE]` of one table, the migration's only statement:
    /// expand renames it away behind a view `t`, contract drops both (PostgreSQL: see
    /// `drop_table`; MariaDB/MySQL: `rename_table_mysql`, where CASCADE does nothing).
    DropTable {
        table: QName,
        if_exists: bool,
        cascade: bool,
    },
    /// `ALTER TABLE t ALTER COLUMN c TYPE ...` staged with the old column kept (PostgreSQL, a
    /// migration of this statement alone): `sluice up` runs it as the staged type change, whose
    /// swap keeps the old column; [`find`] never returns it (whether a type change is staged is
    /// known from the live catalog only), the lifecycle finds it by the kept column.
    ColumnType { table: QName, column: String },
    /// `-- sluice:versioned down <expr>` before each `ALTER TABLE t ALTER COLUMN c TYPE ty
    /// [USING up]` of the migration, its only statements (PostgreSQL): per column a new column
    /// beside the old one, kept in step both ways by `up` and `down`, and one schema for the
    /// version whose views show each new column under the old name (see `versioned`). `changes`
    /// in the migration's order, never empty.
    Versioned { changes: Vec<VersionedColumn> },
    /// `UPDATE t SET c = expr WHERE c IS NULL; ALTER TABLE t ALTER COLUMN c SET NOT NULL`, the
    /// migration's only two statements (PostgreSQL): NOT NULL on a column the old version does
    /// not write; expand fills it by a trigger for the old version's writes (see
    /// `fill_not_null`). `expr` as the UPDATE has it.
    FillNotNull {
        table: QName,
        column: String,
        expr: String,
    },
    /// `ALTER TABLE t ADD COLUMN ...; UPDATE t SET <added> = <expr of dropped>, ... [WHERE ...];
    /// ALTER TABLE t DROP COLUMN ...`, the migration's only three statements: splitting or merging
    /// columns; expand adds the columns and keeps both sides in step by a trigger (see
    /// `split_merge`), contract runs the DROP. `added`: (column, type as written); `set`: the
    /// UPDATE's (column, expression); `reverse`: each dropped column's `-- sluice:old` expression
    /// (empty from [`find`]; the lifecycle reads the directives).
    SplitMerge {
        table: QName,
        added: Vec<(String, String)>,
        set: Vec<(String, String)>,
        filter: Option<String>,
        dropped: Vec<(String, bool)>,
        cascade: bool,
        reverse: Vec<(String, String)>,
    },
}

/// One column of a versioned migration. `up`: the USING expression as written, or
/// `CAST(c AS ty)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionedColumn {
    pub table: QName,
    pub column: String,
    pub ty: String,
    pub up: String,
    pub down: String,
}

impl Breaking {
    /// The table it changes.
    pub fn table(&self) -> &QName {
        match self {
            Breaking::RenameColumn { table, .. }
            | Breaking::DropColumns { table, .. }
            | Breaking::ColumnType { table, .. }
            | Breaking::FillNotNull { table, .. }
            | Breaking::SplitMerge { table, .. }
            | Breaking::DropTable { table, .. } => table,
            Breaking::RenameTable { from, .. } => from,
            Breaking::Versioned { changes } => &changes[0].table,
        }
    }

    /// The columns it renames or drops (none for a table rename).
    pub fn columns(&self) -> Vec<&str> {
        match self {
            Breaking::RenameColumn { from, .. } => vec![from.as_str()],
            Breaking::ColumnType { column, .. } | Breaking::FillNotNull { column, .. } => {
                vec![column.as_str()]
            }
            // Of its first table (the one `table` names).
            Breaking::Versioned { changes } => changes
                .iter()
                .filter(|c| c.table == changes[0].table)
                .map(|c| c.column.as_str())
                .collect(),
            Breaking::DropColumns { columns, .. }
            | Breaking::SplitMerge {
                dropped: columns, ..
            } => columns.iter().map(|(c, _)| c.as_str()).collect(),
            Breaking::RenameTable { .. } | Breaking::DropTable { .. } => vec![],
        }
    }

    /// Every table it changes (a versioned migration may change several; a table rename: under
    /// its old name).
    pub fn tables(&self) -> Vec<&QName> {
        match self {
            Breaking::Versioned { changes } => {
                let mut out: Vec<&QName> = Vec::new();
                for c in changes {
                    if !out.contains(&&c.table) {
                        out.push(&c.table);
                    }
                }
                out
            }
            _ => vec![self.table()],
        }
    }

    /// Whether the two change a table in common.
    pub fn shares_table(&self, other: &Breaking) -> bool {
        other.tables().iter().any(|t| self.touches(t))
            || self.tables().iter().any(|t| other.touches(t))
    }

    /// Whether it changes the table named `t` (a table rename: under either name).
    pub fn touches(&self, t: &QName) -> bool {
        match self {
            Breaking::RenameTable { from, to } => from.matches(t) || to.matches(t),
            Breaking::Versioned { changes } => changes.iter().any(|c| c.table.matches(t)),
            _ => self.table().matches(t),
        }
    }

    /// In words, for messages: `rename column accounts.name to full_name`.
    pub fn describe(&self) -> String {
        match self {
            Breaking::RenameColumn { table, from, to } => {
                format!("rename column {table}.{from} to {to}")
            }
            Breaking::DropColumns { table, columns, .. } => format!(
                "drop column{} {table}.{}",
                if columns.len() > 1 { "s" } else { "" },
                columns
                    .iter()
                    .map(|(c, _)| c.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Breaking::RenameTable { from, to } => format!("rename table {from} to {}", to.name),
            Breaking::DropTable { table, .. } => format!("drop table {table}"),
            Breaking::ColumnType { table, column } => {
                format!("change the type of column {table}.{column}")
            }
            Breaking::Versioned { changes } => match changes.as_slice() {
                [c] => format!(
                    "change the type of column {}.{} to {} (versioned schemas)",
                    c.table, c.column, c.ty
                ),
                _ => format!(
                    "change the types of columns {} (versioned schemas)",
                    changes
                        .iter()
                        .map(|c| format!("{}.{} to {}", c.table, c.column, c.ty))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            },
            Breaking::FillNotNull { table, column, .. } => {
                format!("fill the NULLs of column {table}.{column} and set it NOT NULL")
            }
            Breaking::SplitMerge {
                table,
                added,
                dropped,
                ..
            } => {
                let list = |v: Vec<&str>| v.join(", ");
                let (a, d) = (
                    list(added.iter().map(|(c, _)| c.as_str()).collect()),
                    list(dropped.iter().map(|(c, _)| c.as_str()).collect()),
                );
                match (dropped.len(), added.len()) {
                    (1, _) => format!("split column {table}.{d} into {a}"),
                    (_, 1) => format!("merge columns {table}.{d} into {a}"),
                    _ => format!("replace columns {table}.{d} by {a}"),
                }
            }
        }
    }

    /// What the part holds, for the message that asks for a migration of its own.
    fn what(&self) -> &'static str {
        match self {
            Breaking::RenameColumn { .. } => "the rename",
            Breaking::DropColumns { .. } => "the DROP COLUMN",
            Breaking::RenameTable { .. } => "the table rename",
            Breaking::DropTable { .. } => "the DROP TABLE",
            Breaking::ColumnType { .. } | Breaking::Versioned { .. } => "the type change",
            Breaking::FillNotNull { .. } => "the UPDATE and the SET NOT NULL",
            Breaking::SplitMerge { .. } => "the ADD COLUMN, the UPDATE and the DROP COLUMN",
        }
    }
}

/// The breaking statement of a part (its index and what it does): None when the part has none
/// (renames or drops in tables or columns the part itself creates break nothing). Err: the part mixes a
/// breaking statement with others, which the two phases cannot carry (why, for the message).
pub fn find(engine: EngineKind, stmts: &[Stmt]) -> Result<Option<(usize, Breaking)>, String> {
    // PostgreSQL: the UPDATE that fills a column's NULLs and the SET NOT NULL after it, exactly
    // (its breaking statement is the SET NOT NULL).
    if engine == EngineKind::Postgres {
        if let Some(b) = fill_not_null::find(stmts) {
            return Ok(Some((1, b)));
        }
    }
    // MariaDB: the same fill before `ALTER TABLE t MODIFY c <its definition> NOT NULL` (whether
    // the MODIFY changes only the nullability is known from the live table: see
    // `fill_not_null_mysql::applies`).
    if engine == EngineKind::MariaDb {
        if let Some(b) = fill_not_null_mysql::find(stmts) {
            return Ok(Some((1, b)));
        }
        if let Some(st) = fill_not_null_mysql::unreadable(stmts) {
            return Err(format!(
                "it looks like a fill of a column's NULLs and a MODIFY ... NOT NULL, which sluice runs in two phases so that the running version's INSERTs that leave the column out keep working, but sluice's SQL parser cannot read `{}` exactly, so it cannot tell: write it in forms the parser reads (`MOD(a, b)` or `a % b` for `a MOD b`, a CASE for `INTERVAL(n, ...)`, `CHAR(92)` for a backslash in a string), or run the migration as written with `sluice up --as-written` (the running version's INSERTs that leave the column out fail from the MODIFY on)",
                crate::redact::label(&crate::redact::secrets(&st), 120)
            ));
        }
    }
    // Splitting or merging columns: ADD COLUMN, UPDATE, DROP COLUMN, exactly (its breaking
    // statement is the DROP). Found on every engine: MariaDB/MySQL refuse it with the reason.
    if let Some(b) = split_merge::find(engine, stmts) {
        return Ok(Some((2, b)));
    }
    let mut created: Vec<QName> = Vec::new();
    let mut added: Vec<(QName, String)> = Vec::new();
    let mut found: Option<(usize, Breaking)> = None;
    let several = "it holds more than one breaking statement (renames or DROP COLUMN statements): a two-phase migration holds one (write one migration each; several columns of one table drop in one statement: `ALTER TABLE t DROP COLUMN a, DROP COLUMN b`)";
    for st in stmts {
        for a in st.actions() {
            match a {
                Action::CreateTable { table, .. } => created.push(table.clone()),
                Action::AddColumn { table, column, .. } => {
                    added.push((table.clone(), column.name.clone()))
                }
                // MariaDB/MySQL column names are case-insensitive: a rename of the letter case
                // only breaks no query, so it runs as written.
                Action::RenameColumn { table, from, to }
                    if !created.iter().any(|c| c.matches(table))
                        && (engine == EngineKind::Postgres || !from.eq_ignore_ascii_case(to)) =>
                {
                    if found.is_some() {
                        return Err(several.into());
                    }
                    found = Some((
                        st.index,
                        Breaking::RenameColumn {
                            table: table.clone(),
                            from: from.clone(),
                            to: to.clone(),
                        },
                    ));
                }
                Action::DropColumn {
                    table,
                    column,
                    if_exists,
                } if !created.iter().any(|c| c.matches(table))
                    && !added.iter().any(|(t, c)| {
                        t.matches(table)
                            && match engine {
                                EngineKind::Postgres => c == column,
                                _ => c.eq_ignore_ascii_case(column),
                            }
                    }) =>
                {
                    match &mut found {
                        Some((i, Breaking::DropColumns { columns, .. })) if *i == st.index => {
                            columns.push((column.clone(), *if_exists))
                        }
                        Some(_) => return Err(several.into()),
                        None => {
                            found = Some((
                                st.index,
                                Breaking::DropColumns {
                                    table: table.clone(),
                                    columns: vec![(column.clone(), *if_exists)],
                                    cascade: st.drops_column_with_cascade(),
                                },
                            ))
                        }
                    }
                }
                // A rename the part follows with `CREATE VIEW <old name>` keeps the old name
                // working already (the rename-table rule's own safe form), as does a swap: it
                // runs as written.
                Action::RenameTable { from, to }
                    if !created.iter().any(|c| c.matches(from))
                        && !views_later(engine, stmts, st.index, from)
                        && (!engine.is_mysql_family() || !swaps(st, from)) =>
                {
                    if found.is_some() {
                        return Err(several.into());
                    }
                    let to = QName {
                        schema: to.schema.clone().or_else(|| from.schema.clone()),
                        name: to.name.clone(),
                    };
                    found = Some((
                        st.index,
                        Breaking::RenameTable {
                            from: from.clone(),
                            to,
                        },
                    ));
                }
                // A DROP TABLE of one live table that is the migration's only statement (with
                // others, of several tables or a temporary one it runs as written as before).
                Action::DropTable { names, cascade }
                    if stmts.len() == 1
                        && names.len() == 1
                        && !created.iter().any(|c| c.matches(&names[0])) =>
                {
                    use sqlparser::ast::Statement;
                    let Some(Statement::Drop {
                        if_exists,
                        temporary: false,
                        ..
                    }) = st.ast.as_deref()
                    else {
                        continue;
                    };
                    if found.is_some() {
                        return Err(several.into());
                    }
                    found = Some((
                        st.index,
                        Breaking::DropTable {
                            table: names[0].clone(),
                            if_exists: *if_exists,
                            cascade: *cascade,
                        },
                    ));
                }
                _ => {}
            }
        }
    }
    let Some((i, b)) = found else { return Ok(None) };
    let mixed = match &b {
        Breaking::RenameColumn { .. }
        | Breaking::RenameTable { .. }
        | Breaking::DropTable { .. }
        | Breaking::ColumnType { .. }
        | Breaking::FillNotNull { .. }
        | Breaking::SplitMerge { .. }
        | Breaking::Versioned { .. } => stmts[i].actions().len() > 1,
        Breaking::DropColumns { .. } => stmts[i]
            .actions()
            .iter()
            .any(|a| !matches!(a, Action::DropColumn { .. })),
    };
    if stmts.len() > 1 || mixed {
        return Err(format!(
            "`{}` runs in two phases (expand now, contract at `sluice complete`), and the other statements of the migration would have to run in one of them: put {} in a migration of its own",
            b.describe(),
            b.what()
        ));
    }
    Ok(Some((i, b)))
}

/// `UPDATE t SET ... [WHERE ...]` with nothing else: no alias, FROM, RETURNING, ORDER BY, LIMIT,
/// join or hint, every clause kept by the parser (the fill and the split/merge shapes).
pub(super) fn plain_update(engine: EngineKind, st: &Stmt) -> Option<&sqlparser::ast::Update> {
    use sqlparser::ast::{Statement, TableFactor};
    let Some(Statement::Update(u)) = st.ast.as_deref() else {
        return None;
    };
    if u.from.is_some()
        || u.returning.is_some()
        || u.output.is_some()
        || u.or.is_some()
        || u.limit.is_some()
        || !u.order_by.is_empty()
        || u.on_cluster.is_some()
        || u.settings.is_some()
        || !u.optimizer_hints.is_empty()
        || !u.table.joins.is_empty()
        || !super::staged::faithful_in(engine, &st.sql, st.ast.as_deref()?)
    {
        return None;
    }
    match &u.table.relation {
        TableFactor::Table {
            alias: None,
            args: None,
            with_hints,
            ..
        } if with_hints.is_empty() => Some(u),
        _ => None,
    }
}

/// The table a [`plain_update`] names.
pub(super) fn update_table(u: &sqlparser::ast::Update) -> Option<&sqlparser::ast::ObjectName> {
    match &u.table.relation {
        sqlparser::ast::TableFactor::Table { name, .. } => Some(name),
        _ => None,
    }
}

/// A statement after `at` creates a view named `t`.
fn views_later(engine: EngineKind, stmts: &[Stmt], at: usize, t: &QName) -> bool {
    use sqlparser::ast::Statement;
    stmts[at + 1..].iter().any(|s| {
        matches!(s.ast.as_deref(), Some(Statement::CreateView(v))
            if crate::analysis::ir::qname(engine, &v.name).matches(t))
    })
}

/// `st` is a swap, `RENAME TABLE t TO t_old, t_new TO t` (MariaDB/MySQL), that `from` takes part
/// in: a name it renames away is given to another table in the same atomic statement, so every
/// name a running version uses keeps existing; it runs as written, as before.
fn swaps(st: &Stmt, from: &QName) -> bool {
    let pairs: Vec<(&QName, &QName)> = st
        .actions()
        .iter()
        .filter_map(|a| match a {
            Action::RenameTable { from, to } => Some((from, to)),
            _ => None,
        })
        .collect();
    pairs.len() > 1
        && pairs
            .iter()
            .any(|(f, _)| pairs.iter().any(|(_, t)| t.matches(f)))
        && pairs.iter().any(|(f, _)| f.matches(from))
}

/// What `sluice plan` shows of a breaking migration: both phases, the rollback, and what each
/// application version sees at each stage.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct LifecyclePlan {
    /// The breaking change in words.
    pub change: String,
    /// The expand phase `sluice up` runs.
    pub expand: Vec<super::Step>,
    /// The contract phase `sluice complete` runs.
    pub complete: super::Step,
    /// What `sluice rollback` runs instead of complete.
    pub rollback: super::Step,
    /// What each application version sees: (stage, what).
    pub sees: Vec<(String, String)>,
    /// What the old version sees while expanded that the new version did not write (one
    /// statement per column; `plan` makes each an `old-version-sees` finding).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub old_version: Vec<String>,
}

impl LifecyclePlan {
    pub fn of(b: &Breaking, p: &Phases) -> LifecyclePlan {
        // Every step locks the table the change is on.
        let on = |mut s: super::Step| {
            if let Some(l) = &mut s.taken {
                l.tables = b.tables().iter().map(|t| t.display()).collect();
            }
            s
        };
        LifecyclePlan {
            change: b.describe(),
            expand: p.expand_steps().into_iter().map(on).collect(),
            complete: on(p.complete_step()),
            rollback: on(p.rollback_step()),
            sees: p.sees.clone(),
            old_version: p.old_version.clone(),
        }
    }
}

/// A rollback refused with `why` (a state that cannot be rolled back), for the engine: MariaDB
/// raises it from the rollback itself, an anonymous block that `plan` shows; MySQL has no
/// anonymous compound statement, so `sluice rollback` refuses before it runs anything, with the
/// same message (the phases are planned from the live state on every run, so the refusal is
/// decided from what the block would see). Returns (`rollback`, `rollback_refusal`).
pub(super) fn refused_rollback(
    engine: Option<EngineKind>,
    why: &str,
) -> (Vec<String>, Option<String>) {
    if engine == Some(EngineKind::MySql) {
        (vec![], Some(why.to_string()))
    } else {
        (
            vec![format!(
                "BEGIN NOT ATOMIC SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = {}; END",
                crate::quote::mysql::literal(why)
            )],
            None,
        )
    }
}

/// What keeps a rollback from restoring the column (the rows a guard counts).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Guard {
    /// NULLs where NOT NULL is to be restored (written by INSERTs that leave the column out).
    NotNull,
    /// Values the old type of a kept type change cannot take (the reverse trigger stored NULL).
    OldType,
}

/// The phases of one breaking statement, as data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Phases {
    /// DO blocks run before the first expand step of a first attempt (not on resume): they fail,
    /// as the statement as written would, when a name the expand phase creates is taken, so that
    /// whatever later carries that name is sluice's own.
    pub precheck: Vec<String>,
    /// MySQL, which has no anonymous compound statement for a precheck block: the failure the
    /// block would raise, decided from the live facts the phases are planned from. A first
    /// attempt (not a resume, nor the rerun of a failed expand once its cleanup ran) fails with
    /// it before anything changes, as the block would.
    pub precheck_refusal: Option<String>,
    /// The expand phase, each step rerunnable (a killed run reruns them all from the first).
    pub expand: Vec<Step>,
    /// What each expand step does to the table (same length as `expand`).
    pub expand_about: Vec<About>,
    /// The expand steps run in one transaction that also records the migration `expanded`
    /// (catalog-only steps: done and recorded together, or neither).
    pub expand_atomic: bool,
    /// The contract phase: statements run in one short transaction.
    pub complete: Vec<String>,
    /// Undoing the expand phase: statements run in one short transaction (each idempotent, so it
    /// also cleans up after a failed or interrupted expand).
    pub rollback: Vec<String>,
    /// MySQL: `sluice rollback` is refused with this message before anything runs (the state the
    /// facts show cannot be rolled back; MariaDB signals the same message from a block in
    /// `rollback`).
    pub rollback_refusal: Option<String>,
    /// A state `complete` must not contract (refused before anything runs, exit 11): e.g. a
    /// rollback cut off after it dropped the added columns, where the DROP would lose the only
    /// copy of the data.
    pub complete_refusal: Option<String>,
    /// MariaDB: an ALTER TABLE the contract phase runs first, through the engine's online path
    /// (in place without blocking writes where the server can; not bounded by the exclusive
    /// timeout, since it may rebuild the table), before `complete` runs in one short transaction.
    pub complete_online: Option<String>,
    /// Before `sluice rollback` changes anything: (column, a query counting the rows that keep the
    /// rollback from restoring the column's NOT NULL). Any row: the rollback is refused.
    pub rollback_guard: Vec<(String, String)>,
    /// What the rows `rollback_guard` counts hold.
    pub guard: Guard,
    /// `sluice rollback` runs these first, each in a transaction of its own (each rerunnable:
    /// an index build IF NOT EXISTS, a constraint that exists already is taken as made), then
    /// `rollback` in one.
    pub rollback_prepare: Vec<(Step, About)>,
    /// What removes `rollback_prepare`'s work when one of them fails (the database as before).
    pub rollback_undo: Vec<String>,
    /// What each application version sees at each stage: (stage, what).
    pub sees: Vec<(String, String)>,
    /// What the contract phase and the rollback do, in words (`plan`).
    pub complete_description: &'static str,
    pub rollback_description: &'static str,
    /// MariaDB/MySQL: how each expand step holds the table, as `plan` prints it (metadata lock,
    /// ALGORITHM=, LOCK=); empty on PostgreSQL, where `expand_about` says it.
    pub expand_locks: Vec<String>,
    /// MariaDB/MySQL: how complete and rollback hold the table; None on PostgreSQL (ACCESS
    /// EXCLUSIVE).
    pub phase_lock: Option<String>,
    /// MariaDB/MySQL: how the rollback holds the table when it differs from `phase_lock` (a
    /// DROP COLUMN's contract may rebuild an index while its rollback only changes the catalog).
    pub rollback_lock: Option<String>,
    /// PostgreSQL kept type change: what makes the rollback guard's count and the swap back one
    /// decision (see [`Watch`]); None elsewhere.
    pub watch: Option<Watch>,
    /// What the old version sees while expanded that the new version did not write, one
    /// statement per column (`plan` shows each as an `old-version-sees` finding; see
    /// [`crate::plan::old_version`]). Empty: it sees what was written (a rename).
    pub old_version: Vec<String>,
}

/// A rollback guard's count and the swap that relies on it are far apart (index builds and
/// validations run between them, minutes on a big table), and a full recount under the swap's
/// ACCESS EXCLUSIVE lock would stall a hot table. So a watch trigger, installed before the count,
/// records every row written after it that the guard would count; the swap (`rollback`) checks
/// under its lock that nothing was recorded and fails with [`WATCH_SQLSTATE`] otherwise (nothing
/// changed), and the runner recounts outside the lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Watch {
    /// Installs the watch, each in a short transaction of its own (a leftover of a killed run is
    /// reused: same name, same definition).
    pub install: Vec<String>,
    /// Forgets what the watch recorded (run before each count: the count covers it).
    pub clear: String,
    /// Removes the watch trigger and its records (refusal, failure); the swap removes them itself.
    pub remove: Vec<String>,
}

/// The SQLSTATE the swap back fails with when the watch recorded a write after the count.
pub const WATCH_SQLSTATE: &str = "SLW01";

impl Phases {
    /// The expand phase as plan steps (what `sluice plan` and `up --dry-run` show).
    pub fn expand_steps(&self) -> Vec<super::Step> {
        self.expand
            .iter()
            .zip(&self.expand_about)
            .enumerate()
            .map(|(k, (s, a))| match self.expand_locks.get(k) {
                Some(lock) => super::Step::new(a.said(), s.text(), lock, a.effect, a.blocks),
                None => {
                    let mut step = super::Step::of_about(s.text(), a);
                    step.description = a.said();
                    step
                }
            })
            .collect()
    }

    /// A phase run in one short transaction, as a plan step.
    fn phase_step(&self, description: &str, sql: String, lock: Option<&str>) -> super::Step {
        match lock {
            Some(lock) => super::Step::new(
                description,
                sql,
                lock,
                super::Effect::Instant,
                super::Blocks::ReadsAndWrites,
            ),
            None => super::Step::new(
                description,
                sql,
                "ACCESS EXCLUSIVE",
                super::Effect::Instant,
                super::Blocks::ReadsAndWrites,
            )
            .under(super::staged::Lock::AccessExclusive),
        }
    }

    /// The contract phase as one plan step.
    pub fn complete_step(&self) -> super::Step {
        let mut step = self.phase_step(
            self.complete_description,
            self.complete_online
                .iter()
                .chain(&self.complete)
                .cloned()
                .collect::<Vec<_>>()
                .join("; "),
            self.phase_lock.as_deref(),
        );
        // An ALTER through the online path rebuilds the table in place while reads and writes
        // go on (the phase's short statements after it take the metadata lock for milliseconds).
        if self.complete_online.is_some() {
            step.effect = super::Effect::Rewrite;
            step.blocks = super::Blocks::Nothing;
        }
        step
    }

    /// The rollback as one plan step.
    pub fn rollback_step(&self) -> super::Step {
        self.phase_step(
            self.rollback_description,
            self.rollback_prepare
                .iter()
                .map(|(step, _)| step.text())
                .chain(self.rollback.iter().cloned())
                .collect::<Vec<_>>()
                .join("; "),
            self.rollback_lock.as_deref().or(self.phase_lock.as_deref()),
        )
    }
}

/// Every statement of every phase, for the engine-rendering tests.
#[cfg(test)]
pub(super) fn every_statement(p: &Phases) -> Vec<String> {
    let mut all = p.precheck.clone();
    all.extend(p.expand.iter().map(Step::text));
    all.extend(p.complete.iter().cloned());
    all.extend(p.rollback.iter().cloned());
    all.extend(p.rollback_prepare.iter().map(|(s, _)| s.text()));
    all.extend(p.rollback_undo.iter().cloned());
    all
}

/// What MySQL 8 rejects in a step (MariaDB-only syntax), for the engine-rendering tests.
#[cfg(test)]
pub(super) const MARIADB_ONLY: &[&str] = &[
    "NOT ATOMIC",
    "ADD COLUMN IF NOT EXISTS",
    "KEY IF NOT EXISTS",
    "DROP INDEX IF EXISTS",
    "DROP COLUMN IF EXISTS",
    "CREATE OR REPLACE TRIGGER",
];

/// Checks one planned shape on both engines: MySQL's statements hold no MariaDB-only syntax and
/// every message a MariaDB block signals is MySQL's refusal of the same phase.
#[cfg(test)]
pub(super) fn check_engines(
    what: &str,
    maria: &Result<Phases, String>,
    my: &Result<Phases, String>,
) {
    let (maria, my) = match (maria, my) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(a), Err(b)) => {
            assert_eq!(a, b, "{what}: refused differently");
            return;
        }
        (a, b) => panic!("{what}: MariaDB {a:?}, MySQL {b:?}"),
    };
    for sql in every_statement(my) {
        for bad in MARIADB_ONLY {
            assert!(!sql.contains(bad), "{what}: MySQL step has {bad}: {sql}");
        }
    }
    assert_eq!(maria.precheck_refusal, None, "{what}");
    assert_eq!(maria.rollback_refusal, None, "{what}");
    let signalled = |sql: &[String]| -> Option<String> {
        sql.iter().find_map(|s| {
            let (_, rest) = s.split_once("SET MESSAGE_TEXT = '")?;
            Some(rest.split_once("'; END").unwrap().0.replace("''", "'"))
        })
    };
    assert_eq!(
        signalled(&maria.rollback),
        my.rollback_refusal,
        "{what}: rollback"
    );
    // A precheck block raises its message only when the name is taken: MySQL refuses only then.
    if let Some(why) = &my.precheck_refusal {
        assert_eq!(signalled(&maria.precheck).as_ref(), Some(why), "{what}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stmts(sql: &str) -> Vec<Stmt> {
        crate::sql::split(EngineKind::Postgres, sql)
            .unwrap()
            .iter()
            .enumerate()
            .map(|(i, s)| crate::analysis::ir::build(EngineKind::Postgres, i, s, 0, &s.sql))
            .collect()
    }

    #[test]
    fn finds_the_breaking_statement_or_says_why_not() {
        let cases: &[(&str, Result<Option<&str>, &str>)] = &[
            (
                "ALTER TABLE t RENAME COLUMN a TO b",
                Ok(Some("rename column t.a to b")),
            ),
            (
                "ALTER TABLE app.\"T\" RENAME COLUMN \"A\" TO b",
                Ok(Some("rename column app.T.A to b")),
            ),
            ("ALTER TABLE t ADD COLUMN c int", Ok(None)),
            // A table the part creates: no running version uses it.
            (
                "CREATE TABLE n (a int); ALTER TABLE n RENAME COLUMN a TO b",
                Ok(None),
            ),
            (
                "ALTER TABLE t RENAME COLUMN a TO b; ALTER TABLE t ADD COLUMN c int",
                Err("migration of its own"),
            ),
            (
                "ALTER TABLE t RENAME COLUMN a TO b; ALTER TABLE u RENAME COLUMN a TO b",
                Err("more than one breaking statement"),
            ),
            ("ALTER TABLE t DROP COLUMN a", Ok(Some("drop column t.a"))),
            (
                "ALTER TABLE t DROP COLUMN a, DROP COLUMN IF EXISTS b CASCADE",
                Ok(Some("drop columns t.a, b")),
            ),
            // A table or column the part creates: no running version uses it.
            (
                "CREATE TABLE n (a int, b int); ALTER TABLE n DROP COLUMN a",
                Ok(None),
            ),
            (
                "ALTER TABLE t ADD COLUMN x int; ALTER TABLE t DROP COLUMN x",
                Ok(None),
            ),
            (
                "ALTER TABLE t DROP COLUMN a, ADD COLUMN c int",
                Err("put the DROP COLUMN in a migration of its own"),
            ),
            (
                "ALTER TABLE t DROP COLUMN a; ALTER TABLE t DROP COLUMN b",
                Err("more than one breaking statement"),
            ),
            (
                "ALTER TABLE t DROP COLUMN a; ALTER TABLE t RENAME COLUMN b TO c",
                Err("more than one breaking statement"),
            ),
            (
                "ALTER TABLE app.\"Old\" RENAME TO new",
                Ok(Some("rename table app.Old to new")),
            ),
            // A lone DROP TABLE of one table runs in two phases; of several tables, with other
            // statements or of a table the part creates, as written.
            ("DROP TABLE t", Ok(Some("drop table t"))),
            (
                "DROP TABLE IF EXISTS app.\"T\" CASCADE",
                Ok(Some("drop table app.T")),
            ),
            ("DROP TABLE a, b", Ok(None)),
            ("DROP TABLE a; CREATE TABLE a (id int)", Ok(None)),
            ("CREATE TEMP TABLE a (id int); DROP TABLE a", Ok(None)),
            // The part keeps the old name working itself, or the table is its own.
            (
                "ALTER TABLE t RENAME TO u; CREATE VIEW t AS SELECT * FROM u",
                Ok(None),
            ),
            (
                "CREATE TABLE n (a int); ALTER TABLE n RENAME TO m",
                Ok(None),
            ),
            (
                "ALTER TABLE t RENAME TO u; ALTER TABLE u ADD COLUMN c int",
                Err("put the table rename in a migration of its own"),
            ),
            (
                "ALTER TABLE t RENAME TO u; ALTER TABLE v RENAME COLUMN a TO b",
                Err("more than one breaking statement"),
            ),
        ];
        for (sql, want) in cases {
            let got = find(EngineKind::Postgres, &stmts(sql)).map(|o| o.map(|(_, b)| b.describe()));
            match (got, want) {
                (Ok(g), Ok(w)) => assert_eq!(g.as_deref(), *w, "{sql}"),
                (Err(g), Err(w)) => assert!(g.contains(w), "{sql}: {g}"),
                (g, w) => panic!("{sql}: got {g:?}, want {w:?}"),
            }
        }
        // MariaDB/MySQL: a DROP COLUMN alone runs in two phases too (several columns of one
        // ALTER, IF EXISTS), one mixed with other clauses is refused, a column of the part's own
        // (any letter case) is not breaking.
        let my_cases: &[(&str, Result<Option<&str>, &str>)] = &[
            ("ALTER TABLE t DROP COLUMN a", Ok(Some("drop column t.a"))),
            ("ALTER TABLE t DROP a", Ok(Some("drop column t.a"))),
            (
                "ALTER TABLE t DROP COLUMN a, DROP COLUMN IF EXISTS `B`",
                Ok(Some("drop columns t.a, B")),
            ),
            (
                "ALTER TABLE t DROP COLUMN a, ADD INDEX k (b)",
                Err("put the DROP COLUMN in a migration of its own"),
            ),
            (
                "ALTER TABLE t DROP COLUMN a, ALGORITHM=INSTANT",
                Err("put the DROP COLUMN in a migration of its own"),
            ),
            (
                "ALTER TABLE t ADD COLUMN X int; ALTER TABLE t DROP COLUMN x",
                Ok(None),
            ),
            // Table renames: both spellings; a swap keeps every name and runs as written.
            ("RENAME TABLE a TO b", Ok(Some("rename table a to b"))),
            ("ALTER TABLE a RENAME TO b", Ok(Some("rename table a to b"))),
            ("ALTER TABLE a RENAME AS b", Ok(Some("rename table a to b"))),
            ("RENAME TABLE a TO a_old, a_new TO a", Ok(None)),
            (
                "RENAME TABLE a TO b, c TO d",
                Err("more than one breaking statement"),
            ),
            (
                "ALTER TABLE a ADD COLUMN c int, RENAME TO b",
                Err("put the table rename in a migration of its own"),
            ),
            ("CREATE TABLE n (a int); RENAME TABLE n TO m", Ok(None)),
            // A lone DROP TABLE of one table; with other statements, of several tables or a
            // temporary one it runs as written.
            ("DROP TABLE a", Ok(Some("drop table a"))),
            ("DROP TABLE IF EXISTS a", Ok(Some("drop table a"))),
            ("DROP TABLE a, b", Ok(None)),
            ("DROP TEMPORARY TABLE a", Ok(None)),
            ("DROP TABLE a; CREATE TABLE a (id int)", Ok(None)),
        ];
        for engine in [EngineKind::MariaDb, EngineKind::MySql] {
            for (sql, want) in my_cases {
                let my: Vec<Stmt> = crate::sql::split(engine, sql)
                    .unwrap()
                    .iter()
                    .enumerate()
                    .map(|(i, s)| crate::analysis::ir::build(engine, i, s, 0, &s.sql))
                    .collect();
                let got = find(engine, &my).map(|o| o.map(|(_, b)| b.describe()));
                match (got, want) {
                    (Ok(g), Ok(w)) => assert_eq!(g.as_deref(), *w, "{engine:?} {sql}"),
                    (Err(g), Err(w)) => assert!(g.contains(w), "{engine:?} {sql}: {g}"),
                    (g, w) => panic!("{engine:?} {sql}: got {g:?}, want {w:?}"),
                }
            }
        }
    }
}
