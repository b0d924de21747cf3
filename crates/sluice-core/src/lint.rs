//! Lint: the rule catalog run over the analysed statements, judged as `sluice up` runs them
//! (from the plan's preparation of each part). Above analysis, plan and rules, so that none of
//! them depends on another through it.

use crate::analysis::ir::{QName, Stmt};
use crate::analysis::{
    build_part_split, finding, walk_part_in, Finding, Hit, Rule, RunTables, Severity, TableStats,
};
use crate::migration::{Direction, Migration, TxMode};
use crate::target::Target;
use serde::Serialize;
use std::collections::HashMap;

#[derive(Debug, Clone, Serialize, Default)]
pub struct LintReport {
    pub target: String,
    pub findings: Vec<Finding>,
    pub files: usize,
    pub statements: usize,
    /// Statements judged as on new tables because an earlier pending migration of the same run
    /// creates their tables (connected lint and plan): the rules for live tables did not apply.
    pub in_run_statements: usize,
}

impl LintReport {
    pub fn errors(&self) -> usize {
        self.findings
            .iter()
            .filter(|f| f.severity == Severity::Error)
            .count()
    }
}

#[derive(Debug, Clone, Default)]
pub struct LintOptions {
    /// Also lint the down parts.
    pub include_down: bool,
    pub stats: Option<HashMap<String, TableStats>>,
    /// Column types from the live schema (online), keyed by (table, column).
    pub live_columns: crate::analysis::ColumnTypes,
    /// The migrations run with `sluice up` (not `--as-written`): a hazard its staged form or its
    /// lock discipline removes is reported as info, saying so, rather than as a warning or error.
    pub staged: bool,
    /// The versions already applied to the database (known when connected); every other one is
    /// pending, and the pending ones run in one `up`, so a table one of them creates is new for the
    /// later ones (see [`RunTables`]). None: unknown (offline), so a table any earlier file creates
    /// may be live.
    pub applied: Option<std::collections::HashSet<i64>>,
}

/// Rules whose hazard (a table copy or rebuild that blocks writes) `sluice up`'s online ALTER
/// removes on MariaDB/MySQL.
const ONLINE_AWAY: &[&str] = &[
    "mysql-copy-algorithm",
    "mysql-modify-column",
    "mysql-table-rebuild",
    "mysql-add-column-not-instant",
    "mysql-fulltext-index",
];

/// An ALTER TABLE that `sluice up` hands to the online path: not one that names its own
/// algorithm or lock, renames the table, works on partitions or says ONLINE/IGNORE (those run as
/// written).
fn runs_online(s: &crate::sql::SqlStatement) -> bool {
    s.has_words(&["ALTER", "TABLE"])
        && !["ALGORITHM", "LOCK", "PARTITION", "ONLINE", "IGNORE"]
            .iter()
            .any(|w| s.has_word(w))
        && !(s.has_word("RENAME")
            && !s.has_words(&["RENAME", "COLUMN"])
            && !s.has_word("INDEX")
            && !s.has_word("KEY"))
}

/// Lowers the findings `sluice up` takes care of to info, saying how, for one part (as
/// `sluice up` prepares it: `crate::runner::prepare_for` with `safe`).
fn note_what_up_handles(target: Target, prepared: &UpForm, findings: &mut [Finding]) {
    let pg = target.engine == crate::target::EngineKind::Postgres;
    for f in findings.iter_mut() {
        if f.severity == Severity::Info {
            continue;
        }
        let rewrite = prepared.staged.get(f.statement).and_then(|r| r.as_ref());
        let bounded = prepared
            .exclusive
            .get(f.statement)
            .copied()
            .unwrap_or(false);
        let how = match f.rule {
            "require-lock-timeout" => Some(
                "`sluice up` runs every statement with a lock timeout itself (--lock-timeout) and retries".to_string(),
            ),
            // `up` prepared the part, so it runs the file's own transaction control.
            "transaction-nesting" => Some(
                "`sluice up` runs a BEGIN ... COMMIT as one transaction together with its progress record, and a COMMIT with no transaction open not at all".to_string(),
            ),
            "require-statement-timeout" if pg && (bounded || rewrite.is_some()) => Some(
                "`sluice up` bounds the steps that hold ACCESS EXCLUSIVE with a statement_timeout itself (--exclusive-timeout)".to_string(),
            ),
            // The staged form says which hazards its steps remove (PostgreSQL).
            r if pg && rewrite.is_some_and(|(_, answers)| answers.contains(&r)) => {
                rewrite.map(|(note, _)| format!("`sluice up` runs it staged instead: {note}"))
            }
            r if !pg
                && ONLINE_AWAY.contains(&r)
                && prepared.online.get(f.statement).copied().unwrap_or(false) =>
            {
                Some("`sluice up` runs it online: INSTANT or in place when the server can, otherwise a verified shadow-table copy with an atomic cut-over (a table with triggers of its own, or a foreign key the copy cannot carry, is refused before anything runs)".to_string())
            }
            _ => None,
        };
        if let Some(how) = how {
            f.severity = Severity::Info;
            f.message = format!("{} (as written; {how})", f.message);
        }
    }
}

/// Lints migrations in order. Column types learnt from earlier files serve later ones.
pub fn lint(target: Target, files: &[Migration], opts: &LintOptions) -> LintReport {
    let mut linter = Linter::new(target, opts.clone());
    let mut findings = Vec::new();
    for m in files {
        findings.extend(linter.lint_migration(m));
    }
    linter.report(findings)
}

/// Lints one migration at a time, so a caller can stream files through it with memory that does
/// not grow with the number of files. Column types learnt from earlier files serve later ones.
pub struct Linter {
    target: Target,
    opts: LintOptions,
    /// The pending migrations linted so far (with `opts.pending`).
    run: RunTables,
    column_types: crate::analysis::ColumnTypes,
    files: usize,
    statements: usize,
    in_run_statements: usize,
}

impl Linter {
    pub fn new(target: Target, opts: LintOptions) -> Linter {
        let column_types = opts.live_columns.clone();
        Linter {
            target,
            run: RunTables::on(opts.stats.iter().flat_map(|s| s.keys().cloned())),
            opts,
            column_types,
            files: 0,
            statements: 0,
            in_run_statements: 0,
        }
    }

    pub fn lint_migration(&mut self, m: &Migration) -> Vec<Finding> {
        let parsed = self.parser().parse(m);
        self.lint_parsed(m, parsed)
    }

    /// What parses files for this linter; it can run on other threads while the linter lints.
    pub fn parser(&self) -> LintParser {
        LintParser {
            target: self.target,
            include_down: self.opts.include_down,
            staged: self.opts.staged,
        }
    }

    /// Lints a migration parsed by [`Linter::parser`]. Migrations must come in order: column types
    /// learnt from one serve the next.
    pub fn lint_parsed(&mut self, m: &Migration, parsed: ParsedMigration) -> Vec<Finding> {
        let mut out = Vec::new();
        let pending = self
            .opts
            .applied
            .as_ref()
            .is_some_and(|a| !a.contains(&m.version));
        // Only a pending migration runs after the run's earlier ones; a down part runs alone.
        let fresh = if pending { self.run.current() } else { vec![] };
        for part in parsed.parts {
            let count = part.stmts.len();
            // The parser prepared the part blind to the run: a BEGIN ... COMMIT around a
            // statement on a table of the run is refused there (it would be staged on a live
            // table), but `up` runs it as written. Prepared again knowing the run, as `up` does.
            let prepared = match part.prepared {
                None if self.opts.staged
                    && pending
                    && part.dir == Direction::Up
                    && part.failure.is_none()
                    && !fresh.is_empty() =>
                {
                    crate::plan::prepare::prepare_for_in(self.target, m, part.dir, true, &fresh)
                        .ok()
                        .map(UpForm::of)
                }
                p => p,
            };
            if pending && part.dir == Direction::Up {
                self.run
                    .push_stmts(self.target.engine, m.version, &part.stmts);
                self.in_run_statements += part
                    .stmts
                    .iter()
                    .filter(|st| {
                        crate::plan::as_written::on_run_tables(self.target.engine, st, &fresh)
                    })
                    .count();
            }
            let mut findings = lint_part(
                self.target,
                m,
                part.dir,
                &self.opts,
                &mut self.column_types,
                part.stmts,
                part.mode,
                part.failure,
                if part.dir == Direction::Up {
                    &fresh
                } else {
                    &[]
                },
            );
            if let Some(prepared) = &prepared {
                note_what_up_handles(self.target, prepared, &mut findings);
            }
            self.statements += count;
            out.extend(findings);
        }
        self.files += 1;
        out
    }

    pub fn report(&self, findings: Vec<Finding>) -> LintReport {
        LintReport {
            target: self.target.to_string(),
            findings,
            files: self.files,
            statements: self.statements,
            in_run_statements: self.in_run_statements,
        }
    }
}

/// Splits and parses migrations for a [`Linter`]: all the work of linting that does not depend on
/// the files before, so files can be parsed in parallel and then linted in order.
#[derive(Debug, Clone, Copy)]
pub struct LintParser {
    target: Target,
    include_down: bool,
    staged: bool,
}

/// A migration's parts split and parsed, ready for [`Linter::lint_parsed`].
pub struct ParsedMigration {
    parts: Vec<ParsedPart>,
}

struct ParsedPart {
    dir: Direction,
    stmts: Vec<Stmt>,
    mode: TxMode,
    failure: Option<Finding>,
    /// How `sluice up` would run the part, when linting for it (`staged`) and the part reads.
    prepared: Option<UpForm>,
}

/// Of a part as `sluice up` prepares it, what [`note_what_up_handles`] reads, by statement: kept
/// instead of the prepared part, which holds two more copies of every statement.
struct UpForm {
    /// The staged form's note and the rules whose hazard it removes, for a statement that has one.
    staged: Vec<Option<(String, &'static [&'static str])>>,
    /// Takes ACCESS EXCLUSIVE on an existing table (bounded by `up`'s statement timeout).
    exclusive: Vec<bool>,
    /// Handed to the online ALTER path (MariaDB/MySQL).
    online: Vec<bool>,
}

impl UpForm {
    fn of(p: crate::plan::prepare::PreparedPart) -> UpForm {
        UpForm {
            staged: p
                .rewrites
                .into_iter()
                .map(|r| r.map(|r| (r.note, r.answers)))
                .collect(),
            exclusive: p.exclusive,
            online: p.statements.iter().map(runs_online).collect(),
        }
    }
}

impl LintParser {
    pub fn parse(&self, m: &Migration) -> ParsedMigration {
        let mut dirs = vec![Direction::Up];
        if self.include_down && m.down.is_some() {
            dirs.push(Direction::Down);
        }
        let parts = dirs
            .into_iter()
            .map(|dir| {
                let (split, stmts, mode, failure) = build_part_split(self.target, m, dir);
                // From the statements already parsed: each is parsed once for lint and staging.
                let prepared = (self.staged && failure.is_none())
                    .then(|| {
                        crate::plan::prepare::prepare_split(
                            self.target,
                            m,
                            dir,
                            true,
                            split,
                            Some(&stmts),
                            &[],
                        )
                        .ok()
                        .map(UpForm::of)
                    })
                    .flatten();
                ParsedPart {
                    dir,
                    stmts,
                    mode,
                    failure,
                    prepared,
                }
            })
            .collect();
        ParsedMigration { parts }
    }
}

/// The part's `-- sluice:ignore` lines, each with the statement it applies to (the first one
/// after it in the same part).
pub fn part_ignores<'a>(
    m: &'a Migration,
    part: &crate::migration::Part,
    stmts: &[Stmt],
) -> Vec<(&'a crate::migration::Ignore, Option<usize>)> {
    let part_end = part.offset + part.sql.len();
    m.ignores
        .iter()
        .filter(|ig| ig.file == part.file && ig.offset >= part.offset && ig.offset < part_end)
        .map(|ig| (ig, stmts.iter().position(|s| s.offset > ig.offset)))
        .collect()
}

/// The `unused-ignore` finding for an ignore that suppressed nothing (on `statement`, the one it
/// applies to): an id no rule or finding has is reported as such.
pub fn unused_ignore(m: &Migration, ig: &crate::migration::Ignore, statement: usize) -> Finding {
    let known = crate::rules::known(&ig.rule);
    let message = if known {
        format!(
            "`-- sluice:ignore {}` matches no finding on the next statement",
            ig.rule
        )
    } else {
        format!("`-- sluice:ignore {}`: no rule has this id", ig.rule)
    };
    let (path, text) = m.file(ig.file);
    Finding {
        rule: "unused-ignore",
        severity: Severity::Warning,
        path: path.to_path_buf(),
        version: m.version,
        line: ig.line,
        column: 1,
        offset: ig.offset,
        length: text[ig.offset..]
            .find('\n')
            .unwrap_or(text.len() - ig.offset),
        statement,
        message,
        why: "a stale suppression hides nothing today and may hide a real hazard tomorrow",
        help: if known {
            "remove the comment".into()
        } else {
            "fix the rule id (`sluice rules` lists them) or remove the comment".into()
        },
    }
}

#[allow(clippy::too_many_arguments)]
fn lint_part(
    target: Target,
    m: &Migration,
    dir: Direction,
    opts: &LintOptions,
    column_types: &mut crate::analysis::ColumnTypes,
    stmts: Vec<Stmt>,
    mode: TxMode,
    failure: Option<Finding>,
    run_tables: &[QName],
) -> Vec<Finding> {
    let part = m.part(dir).expect("part exists");
    let mut raw: Vec<(usize, &'static Rule, Hit)> = Vec::new();
    walk_part_in(
        target,
        &stmts,
        mode,
        opts.stats.as_ref(),
        column_types,
        false,
        run_tables,
        |i, st, ctx| {
            for rule in crate::rules::RULES
                .iter()
                .filter(|r| r.engines.applies(target.engine))
            {
                let mut hits = Vec::new();
                (rule.check)(st, ctx, &mut hits);
                raw.extend(hits.into_iter().map(|h| (i, *rule, h)));
            }
        },
    );

    let ignores = part_ignores(m, part, &stmts);
    let mut used = vec![false; ignores.len()];
    let mut findings = Vec::new();
    for (i, rule, hit) in raw {
        let suppressed = ignores
            .iter()
            .position(|(ig, on)| ig.rule == rule.id && *on == Some(i));
        if let Some(k) = suppressed {
            used[k] = true;
            continue;
        }
        findings.push(finding(
            m,
            part,
            &stmts[i],
            rule.id,
            hit.severity.unwrap_or(rule.severity),
            hit.message,
            rule.why,
            hit.help.unwrap_or_else(|| rule.safe.to_string()),
        ));
    }
    for (k, (ig, on)) in ignores.iter().enumerate() {
        // A finding only `plan` makes (from the live database): lint cannot tell whether the
        // ignore matches one, `plan` does.
        if used[k] || crate::rules::PLAN_FINDINGS.contains(&ig.rule.as_str()) {
            continue;
        }
        findings.push(unused_ignore(m, ig, on.unwrap_or(0)));
    }
    findings.extend(failure);
    findings.sort_by_key(|f| (f.offset, f.rule));
    findings
}
