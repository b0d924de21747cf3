//! Analysis: what each statement of a migration does to a live table on a given engine and version,
//! as findings of the rule catalog (`crate::rules`). `sluice lint` stops here; `sluice plan` and the
//! executors build on the same IR.

pub mod columns;
pub mod ir;
pub(crate) mod tokens;

use crate::migration::{Direction, Migration, TxMode};
use crate::target::{EngineKind, Target};
pub use columns::ColumnTypes;
use ir::{Action, QName, Stmt};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    Error,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

/// Which engines a rule speaks about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Engines {
    Postgres,
    MySqlFamily,
    All,
}

impl Engines {
    pub fn applies(self, e: EngineKind) -> bool {
        match self {
            Engines::Postgres => e == EngineKind::Postgres,
            Engines::MySqlFamily => e.is_mysql_family(),
            Engines::All => true,
        }
    }
}

/// What a rule found in one statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    pub message: String,
    /// Safe SQL for this very statement, when the rule can write it; else the rule's generic `safe`.
    pub help: Option<String>,
    /// Overrides the rule's severity for this hit (e.g. size-aware rules: error only on a large table).
    pub severity: Option<Severity>,
}

impl Hit {
    pub fn new(message: impl Into<String>) -> Hit {
        Hit {
            message: message.into(),
            help: None,
            severity: None,
        }
    }

    pub fn help(mut self, sql: impl Into<String>) -> Hit {
        self.help = Some(sql.into());
        self
    }

    pub fn severity(mut self, s: Severity) -> Hit {
        self.severity = Some(s);
        self
    }
}

/// A rule of the catalog: one file in `crates/sluice-core/src/rules/`.
pub struct Rule {
    /// kebab-case id, used in findings and in `-- sluice:ignore`.
    pub id: &'static str,
    pub severity: Severity,
    pub engines: Engines,
    /// What it detects, in one line.
    pub summary: &'static str,
    /// Why it hurts: the lock it takes, rewrite or scan, who is blocked.
    pub why: &'static str,
    /// The safe alternative, as SQL.
    pub safe: &'static str,
    pub check: fn(&Stmt, &Ctx, &mut Vec<Hit>),
}

/// Live table statistics, when sluice is connected (`plan`, `lint --database-url`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct TableStats {
    pub rows: i64,
    pub bytes: i64,
    /// PostgreSQL: a partitioned table with a DEFAULT partition, which ATTACH PARTITION scans
    /// under ACCESS EXCLUSIVE.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub has_default_partition: bool,
}

/// A table counts as large from this many rows (or bytes) on: where a blocking step stops being a blip.
pub const LARGE_TABLE_ROWS: i64 = 100_000;
pub const LARGE_TABLE_BYTES: i64 = 64 * 1024 * 1024;

/// What a rule may know about the statement's surroundings.
pub struct Ctx<'a> {
    pub target: Target,
    /// The transaction mode the part runs in.
    pub mode: TxMode,
    /// Statements of the same part, in order (for look-ahead and look-behind).
    pub statements: &'a [Stmt],
    /// Tables created earlier in the same migration part, and before it by earlier pending
    /// migrations of the same run (`run_tables`).
    pub created_tables: &'a [QName],
    /// Tables created by earlier pending migrations of the same run (see [`RunTables`]).
    pub run_tables: &'a [QName],
    /// Columns added earlier in the same migration part.
    pub added_columns: &'a [(QName, String)],
    /// Inside a `BEGIN` written in the file.
    pub in_explicit_transaction: bool,
    /// Column types known from earlier migrations or the live schema: (table, column) → type.
    pub column_types: &'a ColumnTypes,
    /// Live table sizes by table name, when connected.
    pub stats: Option<&'a HashMap<String, TableStats>>,
    /// The transaction each statement of the part runs in (equal numbers share one), computed once
    /// per part from the mode and the BEGIN/COMMIT written in the file.
    pub tx_groups: &'a [usize],
    /// Indices of the part's statements that add an enum value (`ALTER TYPE ... ADD VALUE`).
    pub enum_value_adds: &'a [usize],
    /// What rules learn once per part rather than once per statement.
    pub(crate) memo: &'a PartMemo,
    /// The session TimeZone is UTC when the part starts (known when connected: sluice.toml's
    /// `[session]` or the server's default); false when unknown.
    pub session_utc: bool,
}

/// A statement that takes a lock conflicting with ordinary reads or writes (what the timeout
/// rules look for).
#[derive(Debug, Clone)]
pub(crate) struct Locked {
    /// The existing table it locks, when sluice can name it.
    pub table: Option<QName>,
    /// What the statement is, for messages (`ALTER TABLE`, `CREATE INDEX`, ...).
    pub what: &'static str,
}

/// What the lock and statement timeout rules learn once per part (kept here, with the walk, so
/// the walk needs nothing from the rules).
#[derive(Default)]
pub(crate) struct PartMemo {
    /// By timeout kind (lock, statement): the part's first lock-taking statement that runs
    /// without it.
    pub(crate) first_unprotected: [std::cell::OnceCell<Option<(usize, Locked)>>; 2],
}

/// The size of MariaDB/MySQL table `name` under a name that differs only in letter case: a
/// server that folds table names (`lower_case_table_names` 1 or 2) reports `orders` for `Orders`
/// as written. With 0 a name in another case is another table, which the statement would not find
/// anyway: taking that one's size errs on the safe side. None on PostgreSQL, or when several match.
pub fn stats_in_any_case<'a>(
    engine: EngineKind,
    stats: &'a HashMap<String, TableStats>,
    name: &str,
) -> Option<&'a TableStats> {
    if !engine.is_mysql_family() {
        return None;
    }
    let lower = name.to_lowercase();
    let mut hits = stats.iter().filter(|(k, _)| k.to_lowercase() == lower);
    match (hits.next(), hits.next()) {
        (Some((_, s)), None) => Some(s),
        _ => None,
    }
}

impl Ctx<'_> {
    /// True when the table was created earlier in this migration: it is empty and unseen by traffic.
    pub fn is_new_table(&self, t: &QName) -> bool {
        self.created_tables.iter().any(|c| c.matches(t))
    }

    /// True when the table is new because an earlier migration of this run created it (not this
    /// part): plan says so, since the exemption rests on the migrations running in one run.
    pub fn is_run_table(&self, t: &QName) -> bool {
        self.run_tables.iter().any(|c| c.matches(t))
    }

    pub fn is_new_column(&self, t: &QName, column: &str) -> bool {
        self.added_columns
            .iter()
            .any(|(ct, c)| ct.matches(t) && ir::same_column(self.target.engine, c, column))
    }

    pub fn table_stats(&self, t: &QName) -> Option<TableStats> {
        let stats = self.stats?;
        stats
            .get(&t.display())
            .or_else(|| stats.get(&t.name))
            .or_else(|| stats_in_any_case(self.target.engine, stats, &t.name))
            .copied()
    }

    /// Some(true/false) when connected and the table is known; None offline.
    pub fn is_large(&self, t: &QName) -> Option<bool> {
        self.stats?;
        Some(
            self.table_stats(t)
                .is_some_and(|s| s.rows >= LARGE_TABLE_ROWS || s.bytes >= LARGE_TABLE_BYTES),
        )
    }

    pub fn column_type(&self, t: &QName, column: &str) -> Option<&str> {
        match self.target.engine {
            EngineKind::Postgres => self.column_types.get(&t.name, column),
            _ => self.column_types.get_any_case(&t.name, column),
        }
    }

    pub fn is_postgres(&self) -> bool {
        self.target.engine == EngineKind::Postgres
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    pub rule: &'static str,
    pub severity: Severity,
    pub path: PathBuf,
    pub version: i64,
    pub line: usize,
    pub column: usize,
    /// Byte range of the statement in the file.
    pub offset: usize,
    pub length: usize,
    pub statement: usize,
    pub message: String,
    pub why: &'static str,
    pub help: String,
}

/// The IR of one part, with the transaction mode it runs in. When the text cannot be tokenized to the
/// end, the statements before the failure are still analysed and the failure is returned beside them.
pub fn build_part(
    target: Target,
    m: &Migration,
    dir: Direction,
) -> (Vec<Stmt>, TxMode, Option<Finding>) {
    let (_, stmts, mode, failure) = build_part_split(target, m, dir);
    (stmts, mode, failure)
}

/// [`build_part`], also returning the split statements the IR was built from.
#[allow(clippy::type_complexity)]
pub(crate) fn build_part_split(
    target: Target,
    m: &Migration,
    dir: Direction,
) -> (
    Vec<crate::sql::SqlStatement>,
    Vec<Stmt>,
    TxMode,
    Option<Finding>,
) {
    let part = m.part(dir).expect("part exists");
    let (split, failure) = match crate::sql::split(target.engine, &part.sql) {
        Ok(split) => (split, None),
        Err(e) => {
            // Keep every complete statement before the failure point.
            let err_at = crate::sql::offset_of(&part.sql, e.line, e.column);
            let good_end = part.sql[..err_at].rfind(';').map(|i| i + 1).unwrap_or(0);
            let split = crate::sql::split(target.engine, &part.sql[..good_end]).unwrap_or_default();
            let rest_start =
                good_end + part.sql[good_end..].len() - part.sql[good_end..].trim_start().len();
            let offset = part.offset + rest_start;
            let (path, text) = m.file_of(part);
            let (line, column) = crate::sql::line_col(text, offset);
            let failure = Finding {
                rule: "unparsed-statement",
                severity: Severity::Warning,
                path: path.to_path_buf(),
                version: m.version,
                line,
                column,
                offset,
                length: part.sql.len() - rest_start,
                statement: split.len(),
                message: format!("cannot read the SQL from here on: {}", e.message),
                why: "sluice cannot tell what this part does, so it cannot tell whether it is safe",
                help: "check for an unterminated string, quoted identifier or dollar quote".into(),
            };
            (split, Some(failure))
        }
    };
    let part_start = crate::sql::line_col(m.file_of(part).1, part.offset);
    let stmts: Vec<Stmt> = split
        .iter()
        .enumerate()
        .map(|(i, s)| ir::build_at(target.engine, i, s, part.offset, part_start))
        .collect();
    let mode = part.tx_directive.unwrap_or_else(|| {
        if !target.transactional_ddl() || split.iter().any(|s| target.needs_own_transaction(s)) {
            TxMode::PerStatement
        } else {
            TxMode::Single
        }
    });
    (split, stmts, mode, failure)
}

/// Transaction number of each statement of a part (equal numbers share a transaction): one for the
/// whole part in single mode, one per statement otherwise, BEGIN..COMMIT written in the file joined.
pub fn transaction_groups(stmts: &[Stmt], mode: TxMode) -> Vec<usize> {
    let mut out = Vec::with_capacity(stmts.len());
    let (mut group, mut explicit) = (0usize, false);
    for s in stmts {
        let acts = s.actions();
        if acts.iter().any(|a| matches!(a, Action::Begin)) {
            group += 1;
            explicit = true;
            out.push(group);
            continue;
        }
        if acts
            .iter()
            .any(|a| matches!(a, Action::Commit | Action::Rollback))
        {
            out.push(group);
            group += 1;
            explicit = false;
            continue;
        }
        if !explicit && mode == TxMode::PerStatement {
            group += 1;
            out.push(group);
            group += 1;
        } else {
            out.push(group);
        }
    }
    out
}

/// Walks a part's statements in order, giving each the context of what came before it (tables
/// and columns added, timeouts set, explicit transactions). Lint and plan both see statements
/// through this one walk, so they agree on the context.
#[allow(clippy::too_many_arguments)]
pub fn walk_part(
    target: Target,
    stmts: &[Stmt],
    mode: TxMode,
    stats: Option<&HashMap<String, TableStats>>,
    column_types: &mut ColumnTypes,
    visit: impl FnMut(usize, &Stmt, &Ctx),
) {
    walk_part_in(target, stmts, mode, stats, column_types, false, &[], visit)
}

/// [`walk_part`] knowing whether the session TimeZone is UTC when the part starts, and which
/// tables earlier pending migrations of the same run created (`run_tables`: new, as a table created
/// earlier in the part is).
#[allow(clippy::too_many_arguments)]
pub fn walk_part_in(
    target: Target,
    stmts: &[Stmt],
    mode: TxMode,
    stats: Option<&HashMap<String, TableStats>>,
    column_types: &mut ColumnTypes,
    session_utc: bool,
    run_tables: &[QName],
    mut visit: impl FnMut(usize, &Stmt, &Ctx),
) {
    let mut created: Vec<QName> = run_tables.to_vec();
    let mut added: Vec<(QName, String)> = Vec::new();
    let mut in_tx = false;
    let memo = PartMemo::default();
    let tx_groups = transaction_groups(stmts, mode);
    let enum_value_adds: Vec<usize> = stmts
        .iter()
        .enumerate()
        .filter(|(_, s)| {
            s.actions()
                .iter()
                .any(|a| matches!(a, Action::AddEnumValue { .. }))
        })
        .map(|(i, _)| i)
        .collect();
    for (i, st) in stmts.iter().enumerate() {
        {
            let ctx = Ctx {
                target,
                mode,
                statements: stmts,
                created_tables: &created,
                run_tables,
                added_columns: &added,
                in_explicit_transaction: in_tx,
                column_types,
                stats,
                tx_groups: &tx_groups,
                enum_value_adds: &enum_value_adds,
                memo: &memo,
                session_utc,
            };
            visit(i, st, &ctx);
        }
        // What this statement leaves behind for the next ones.
        for a in st.actions() {
            match a {
                Action::CreateTable { table, columns, .. } => {
                    created.push(table.clone());
                    for c in columns {
                        column_types.insert(&table.name, &c.name, &c.data_type);
                    }
                }
                Action::AddColumn { table, column, .. } => {
                    added.push((table.clone(), column.name.clone()));
                    column_types.insert(&table.name, &column.name, &column.data_type);
                }
                Action::AlterColumnType {
                    table,
                    column,
                    new_type,
                    ..
                } => {
                    column_types.insert(&table.name, column, new_type);
                }
                Action::DropColumn { table, column, .. } => {
                    column_types.remove(&table.name, column);
                }
                Action::Begin => in_tx = true,
                Action::Commit | Action::Rollback => in_tx = false,
                _ => {}
            }
        }
        // PostgreSQL: an index made on a new table is new too (a later DROP INDEX of it locks
        // nothing in use); one made on a live table is not.
        if target.engine == EngineKind::Postgres {
            for (index, table) in st.actions().iter().flat_map(new_indexes) {
                if created.iter().any(|c| c.matches(&table)) {
                    created.push(index);
                }
            }
        }
    }
}

#[allow(clippy::too_many_arguments)]
pub fn finding(
    m: &Migration,
    part: &crate::migration::Part,
    st: &Stmt,
    rule: &'static str,
    severity: Severity,
    message: String,
    why: &'static str,
    help: String,
) -> Finding {
    Finding {
        rule,
        severity,
        path: m.file_of(part).0.to_path_buf(),
        version: m.version,
        line: st.line,
        column: st.column,
        offset: st.offset,
        length: st.sql.len(),
        statement: st.index,
        message,
        why,
        help,
    }
}

/// Findings grouped by file, for output.
pub fn by_file(findings: &[Finding]) -> BTreeMap<PathBuf, Vec<&Finding>> {
    let mut map: BTreeMap<PathBuf, Vec<&Finding>> = BTreeMap::new();
    for f in findings {
        map.entry(f.path.clone()).or_default().push(f);
    }
    map
}

/// PostgreSQL: the named indexes an action creates, each with its table (`CREATE INDEX i ON t`, a
/// named PRIMARY KEY / UNIQUE / EXCLUDE constraint of a CREATE TABLE or ADD CONSTRAINT). The index
/// lives in its table's schema.
pub(crate) fn new_indexes(a: &Action) -> Vec<(QName, QName)> {
    let index = |table: &QName, name: &str| {
        (
            QName {
                schema: table.schema.clone(),
                name: name.to_string(),
            },
            table.clone(),
        )
    };
    let backed = |c: &&ir::ConstraintSpec| {
        matches!(
            c.kind,
            ir::ConstraintKind::PrimaryKey
                | ir::ConstraintKind::Unique
                | ir::ConstraintKind::Exclude
        ) && !c.using_index
    };
    match a {
        Action::CreateIndex {
            name: Some(n),
            table,
            ..
        } => vec![index(table, n)],
        Action::CreateTable {
            table, constraints, ..
        } => constraints
            .iter()
            .filter(backed)
            .filter_map(|c| c.name.as_deref().map(|n| index(table, n)))
            .collect(),
        Action::AddConstraint { table, constraint } => std::iter::once(constraint)
            .filter(backed)
            .filter_map(|c| c.name.as_deref().map(|n| index(table, n)))
            .collect(),
        _ => vec![],
    }
}

/// PostgreSQL: every index a `DROP INDEX` names is one of `new` (created earlier in the part or
/// the run on a table that is new itself): dropping it locks nothing a running application uses.
pub fn drops_only_new_indexes(a: &Action, new: &[QName]) -> bool {
    matches!(a, Action::DropIndex { names, .. }
        if !names.is_empty() && names.iter().all(|n| new.iter().any(|c| c.matches(n))))
}

/// The tables the pending migrations of one run create: for a later migration of the same run
/// such a table is new (nothing of a running application version uses it, and it holds only what
/// the run put there), exactly as a table created earlier in the same part is, so the rules that
/// only matter for a live table do not fire and `up` runs its statements as written. A table an
/// applied migration created is live and never in it.
#[derive(Debug, Clone, Default)]
pub struct RunTables {
    /// Each table with the position in the run of the migration that creates it and of the one
    /// that drops it or renames it away (None: still there).
    tables: Vec<(QName, usize, Option<usize>)>,
    /// Position of each migration of the run, by version.
    positions: HashMap<i64, usize>,
    /// Tables of the database before the run (when known), by name as `table_stats` keys them: a
    /// `CREATE TABLE IF NOT EXISTS` of one of them creates nothing new.
    live: std::collections::HashSet<String>,
    /// Tables of the database the run drops (a later CREATE of the name makes a new one).
    dropped: Vec<QName>,
    /// PostgreSQL: the indexes the run creates on its own tables, with their table, position and
    /// end as in `tables`. An index is a relation in the tables' namespace, so the lists the run
    /// hands on (`before`, `current`) carry it like a table: a later `DROP INDEX` of it is new
    /// too. An index the run builds on a live table is not: dropping it locks that live table.
    indexes: Vec<(QName, QName, usize, Option<usize>)>,
}

impl RunTables {
    /// A run on a database that has the tables `live` (names as `table_stats` keys them).
    pub fn on(live: impl IntoIterator<Item = String>) -> Self {
        RunTables {
            live: live.into_iter().collect(),
            ..Default::default()
        }
    }

    /// The run of `migrations`, in the order `up` applies them.
    pub fn of<'m>(target: Target, migrations: impl IntoIterator<Item = &'m Migration>) -> Self {
        let mut run = RunTables::default();
        for m in migrations {
            run.push(target, m);
        }
        run
    }

    /// Adds the next migration of the run, reading its up part.
    pub fn push(&mut self, target: Target, m: &Migration) {
        let stmts: Vec<Stmt> = m
            .part(Direction::Up)
            .and_then(|part| crate::sql::split(target.engine, &part.sql).ok())
            .unwrap_or_default()
            .iter()
            .enumerate()
            .map(|(i, s)| ir::build(target.engine, i, s, 0, &s.sql))
            .collect();
        self.push_stmts(target.engine, m.version, &stmts);
    }

    /// Adds the next migration of the run from the IR of its up part.
    pub fn push_stmts(&mut self, engine: EngineKind, version: i64, stmts: &[Stmt]) {
        let at = self.positions.len();
        self.positions.insert(version, at);
        for a in stmts.iter().flat_map(Stmt::actions) {
            match a {
                // `IF NOT EXISTS` on a table the database had before the run (and the run did not
                // drop) leaves that live table as it is.
                Action::CreateTable { table, .. }
                    if self.is_live(engine, table) && !self.dropped_live(table) => {}
                Action::CreateTable { table, .. } => self.tables.push((table.clone(), at, None)),
                // A table of the run renamed is the same new table under its new name.
                Action::RenameTable { from, to } if self.gone(from, at) => {
                    self.tables.push((to.clone(), at, None));
                    // Its indexes follow it.
                    for (_, t, _, until) in &mut self.indexes {
                        if until.is_none() && t.matches(from) {
                            *t = to.clone();
                        }
                    }
                }
                Action::DropTable { names, .. } => {
                    for n in names {
                        if !self.gone(n, at) {
                            self.dropped.push(n.clone());
                        }
                        for (_, t, _, until) in &mut self.indexes {
                            if until.is_none() && t.matches(n) {
                                *until = Some(at);
                            }
                        }
                    }
                }
                _ => {}
            }
            if engine == EngineKind::Postgres {
                self.push_index_action(a, at);
            }
        }
    }

    /// The database had table `t` before the run. MariaDB/MySQL: in any letter case, as a server
    /// that folds table names (`lower_case_table_names` 1 or 2) reports `orders` for `Orders`;
    /// with 0 that errs safe (a table taken for live is not exempt as new).
    fn is_live(&self, engine: EngineKind, t: &QName) -> bool {
        self.live.contains(&t.display())
            || self.live.contains(&t.name)
            || (engine.is_mysql_family() && {
                let lower = t.name.to_lowercase();
                self.live.iter().any(|l| l.to_lowercase() == lower)
            })
    }

    /// PostgreSQL: what an action at position `at` does to the run's indexes. Any index made
    /// under a name ends an earlier one of that name (it was dropped, or this fails); one made on
    /// a table of the run (there now) is new.
    fn push_index_action(&mut self, a: &Action, at: usize) {
        let made = new_indexes(a);
        let ended = match a {
            Action::DropIndex { names, .. } => names.clone(),
            _ => made.iter().map(|(i, _)| i.clone()).collect(),
        };
        for (i, _, _, until) in &mut self.indexes {
            if until.is_none() && ended.iter().any(|e| e.matches(i)) {
                *until = Some(at);
            }
        }
        for (index, table) in made {
            let on_run_table = self
                .tables
                .iter()
                .any(|(q, _, until)| until.is_none() && q.matches(&table));
            if on_run_table {
                self.indexes.push((index, table, at, None));
            }
        }
    }

    fn dropped_live(&self, t: &QName) -> bool {
        self.dropped.iter().any(|d| d.matches(t))
    }

    /// Marks `t` gone at position `at`; false when it is not a table of the run.
    fn gone(&mut self, t: &QName, at: usize) -> bool {
        match self
            .tables
            .iter_mut()
            .rev()
            .find(|(q, _, until)| until.is_none() && q.matches(t))
        {
            Some(found) => {
                found.2 = Some(at);
                true
            }
            None => false,
        }
    }

    /// The tables of the run there when migration `version` starts, created by earlier ones.
    pub fn before(&self, version: i64) -> Vec<QName> {
        let Some(&at) = self.positions.get(&version) else {
            return vec![];
        };
        let there = |from: usize, until: Option<usize>| from < at && until.is_none_or(|u| u >= at);
        self.tables
            .iter()
            .filter(|(_, from, until)| there(*from, *until))
            .map(|(q, _, _)| q.clone())
            .chain(
                self.indexes
                    .iter()
                    .filter(|(_, _, from, until)| there(*from, *until))
                    .map(|(i, _, _, _)| i.clone()),
            )
            .collect()
    }

    /// The tables of the run there now, after every migration pushed so far.
    pub fn current(&self) -> Vec<QName> {
        self.tables
            .iter()
            .filter(|(_, _, until)| until.is_none())
            .map(|(q, _, _)| q.clone())
            .chain(
                self.indexes
                    .iter()
                    .filter(|(_, _, _, until)| until.is_none())
                    .map(|(i, _, _, _)| i.clone()),
            )
            .collect()
    }
}
