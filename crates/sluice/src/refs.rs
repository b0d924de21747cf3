//! `sluice refs`: every place in the application code that names a table or column a migration
//! renames, drops, retypes, makes NOT NULL or makes unique. Reads files only (no database).
//!
//! The walk and the matching are ripgrep's crates (`ignore`, `grep-searcher`, `grep-regex`): the
//! walk honours `.gitignore` and runs on every core, binary files are skipped, and each file is
//! read once against one pattern holding every name; only lines that hit are matched again per
//! change to say which change they name.

use grep_matcher::Matcher;
use grep_regex::{RegexMatcher, RegexMatcherBuilder};
use grep_searcher::{sinks, BinaryDetection, SearcherBuilder};
use serde::Serialize;
use sluice_core::analysis::ir::{Action, ConstraintKind};
use sluice_core::error::{Error, Result};
use sluice_core::migration::{Direction, Migration};
use sluice_core::target::Target;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// What a migration does to a name the code may use.
#[derive(Debug, Clone, Serialize)]
pub struct Change {
    /// `rename_table`, `drop_table`, `rename_column`, `drop_column`, `type_change`, `set_not_null`,
    /// `make_unique`.
    pub kind: &'static str,
    pub table: String,
    pub column: Option<String>,
    /// The new name of a rename.
    pub to: Option<String>,
    /// The new type of a type change.
    pub new_type: Option<String>,
    /// "breaks now" (a rename or drop run in one step: code naming the old name fails once it
    /// runs), "breaks at contract" (a two-phase rename or drop: the old name works until `sluice
    /// complete`) or "check" (the name stays, what it holds changes).
    pub verdict: &'static str,
    /// The statement's line in the migration file.
    pub line: usize,
    /// The names searched: the name as the database folds it (case-insensitive), then its
    /// camelCase and PascalCase spellings as ORM models write them (case-sensitive).
    pub names: Vec<String>,
    pub hits: Vec<Hit>,
}

impl Change {
    /// A reference to a name the migration takes away, at once or at `sluice complete`.
    pub fn breaking(&self) -> bool {
        self.verdict == BREAKS_NOW || self.verdict == BREAKS_AT_CONTRACT
    }

    fn describe(&self) -> String {
        let what = match self.column.as_deref() {
            Some(c) => format!("column {}.{c}", self.table),
            None => format!("table {}", self.table),
        };
        match self.kind {
            "rename_table" | "rename_column" => {
                format!("rename {what} to {}", self.to.as_deref().unwrap_or(""))
            }
            "drop_table" | "drop_column" => format!("drop {what}"),
            "type_change" => format!(
                "change the type of {what} to {}",
                self.new_type.as_deref().unwrap_or("")
            ),
            "set_not_null" => format!("make {what} NOT NULL"),
            _ => format!("make {what} unique"),
        }
    }
}

const BREAKS_NOW: &str = "breaks now";
const BREAKS_AT_CONTRACT: &str = "breaks at contract";
const CHECK: &str = "check";

#[derive(Debug, Clone, Serialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct Hit {
    pub path: String,
    pub line: u64,
    /// 1-based byte column of the first match on the line.
    pub column: usize,
    /// The spelling found, as written in the code.
    #[serde(rename = "match")]
    pub matched: String,
    /// The line, trimmed.
    pub text: String,
}

#[derive(Debug, Serialize)]
pub struct MigrationRefs {
    pub version: String,
    pub name: String,
    pub path: PathBuf,
    pub changes: Vec<Change>,
}

/// The migrations among `migrations` with changes code may notice, with those changes (no
/// references searched yet: see [`search`]).
pub fn of<'m>(
    target: Target,
    migrations: impl IntoIterator<Item = &'m Migration>,
) -> Vec<MigrationRefs> {
    migrations
        .into_iter()
        .filter_map(|m| {
            let changes = changes_of(target, m);
            (!changes.is_empty()).then(|| MigrationRefs {
                version: m.version_text.clone(),
                name: m.name.clone(),
                path: m.path.clone(),
                changes,
            })
        })
        .collect()
}

/// The changes of a migration's up part that code may notice, in statement order.
pub fn changes_of(target: Target, m: &Migration) -> Vec<Change> {
    let (stmts, _, _) = sluice_core::analysis::build_part(target, m, Direction::Up);
    // A migration `up` runs in two phases keeps the old name until `sluice complete`.
    let removes = if matches!(sluice_core::lifecycle::breaking(target, m), Ok(Some(_))) {
        BREAKS_AT_CONTRACT
    } else {
        BREAKS_NOW
    };
    let mut out = Vec::new();
    for st in &stmts {
        for a in st.actions() {
            let mut push = |kind, table: String, column: Option<&str>, to: Option<&str>, ty| {
                let verdict = if matches!(
                    kind,
                    "rename_table" | "drop_table" | "rename_column" | "drop_column"
                ) {
                    removes
                } else {
                    CHECK
                };
                let base = column.unwrap_or(&table).to_string();
                out.push(Change {
                    kind,
                    table,
                    column: column.map(str::to_string),
                    to: to.map(str::to_string),
                    new_type: ty,
                    verdict,
                    line: st.line,
                    names: spellings(&base),
                    hits: Vec::new(),
                });
            };
            match a {
                Action::RenameTable { from, to } => {
                    push("rename_table", from.display(), None, Some(&to.name), None)
                }
                Action::DropTable { names, .. } => {
                    for n in names {
                        push("drop_table", n.display(), None, None, None)
                    }
                }
                Action::RenameColumn { table, from, to } => {
                    push("rename_column", table.display(), Some(from), Some(to), None)
                }
                Action::DropColumn { table, column, .. } => {
                    push("drop_column", table.display(), Some(column), None, None)
                }
                Action::AlterColumnType {
                    table,
                    column,
                    new_type,
                    ..
                } => push(
                    "type_change",
                    table.display(),
                    Some(column),
                    None,
                    Some(new_type.clone()),
                ),
                Action::SetNotNull { table, column } => {
                    push("set_not_null", table.display(), Some(column), None, None)
                }
                Action::AddConstraint { table, constraint }
                    if matches!(
                        constraint.kind,
                        ConstraintKind::Unique | ConstraintKind::PrimaryKey
                    ) =>
                {
                    for c in &constraint.columns {
                        push("make_unique", table.display(), Some(c), None, None)
                    }
                }
                Action::CreateIndex {
                    table,
                    unique: true,
                    columns,
                    ..
                } => {
                    for c in columns {
                        push("make_unique", table.display(), Some(c), None, None)
                    }
                }
                _ => {}
            }
        }
    }
    out
}

/// `user_id` → [`user_id`, `userId`, `UserId`]; a name without underscores is found
/// case-insensitively already, so it has no other spelling.
pub fn spellings(name: &str) -> Vec<String> {
    let mut out = vec![name.to_string()];
    let words: Vec<&str> = name.split('_').filter(|w| !w.is_empty()).collect();
    if words.len() > 1 {
        let cap = |w: &str| {
            let mut c = w.chars();
            c.next()
                .map(|f| {
                    f.to_uppercase()
                        .chain(c.flat_map(char::to_lowercase))
                        .collect::<String>()
                })
                .unwrap_or_default()
        };
        let pascal: String = words.iter().map(|w| cap(w)).collect::<String>();
        let camel: String =
            words[0].to_lowercase() + &words[1..].iter().map(|w| cap(w)).collect::<String>();
        out.push(camel);
        out.push(pascal);
    }
    out
}

/// Escapes a name for the regex syntax: every ASCII character that is not a letter, digit or `_`.
fn escape(name: &str) -> String {
    let mut s = String::new();
    for c in name.chars() {
        if c.is_ascii() && !c.is_ascii_alphanumeric() && c != '_' {
            s.push('\\');
        }
        s.push(c);
    }
    s
}

/// One alternative per name, whole words: the first case-insensitive, the rest as written.
fn pattern(names: &[String]) -> String {
    let mut parts = vec![format!("(?i:\\b{}\\b)", escape(&names[0]))];
    if names.len() > 1 {
        let rest: Vec<String> = names[1..].iter().map(|n| escape(n)).collect();
        parts.push(format!("\\b(?:{})\\b", rest.join("|")));
    }
    parts.join("|")
}

fn matcher(pattern: &str) -> Result<RegexMatcher> {
    RegexMatcherBuilder::new()
        .build(pattern)
        .map_err(|e| Error::usage(format!("a name sluice searches for: {e}"), "report this"))
}

/// Searches the code under `roots` (skipping `skip`, the migrations directory) for every change's
/// names and fills in their hits, sorted by file and line.
pub fn search(roots: &[PathBuf], skip: &Path, migrations: &mut [MigrationRefs]) -> Result<()> {
    let all: Vec<&Change> = migrations.iter().flat_map(|m| &m.changes).collect();
    if all.is_empty() {
        return Ok(());
    }
    let per_change: Vec<RegexMatcher> = all
        .iter()
        .map(|c| matcher(&pattern(&c.names)))
        .collect::<Result<_>>()?;
    let combined = matcher(
        &all.iter()
            .map(|c| format!("(?:{})", pattern(&c.names)))
            .collect::<Vec<_>>()
            .join("|"),
    )?;
    for root in roots {
        if std::fs::metadata(root).is_err() {
            return Err(Error::usage(
                format!("the code path {} does not exist", root.display()),
                "pass existing directories or files, or set code_path in sluice.toml",
            ));
        }
    }
    let skip = std::fs::canonicalize(skip).ok();
    let skip_name = skip
        .as_ref()
        .and_then(|p| p.file_name())
        .map(|n| n.to_os_string());
    let mut walk = ignore::WalkBuilder::new(&roots[0]);
    for r in &roots[1..] {
        walk.add(r);
    }
    // .gitignore counts outside a git checkout too (a tarball, a CI cache of the sources).
    walk.require_git(false);
    walk.filter_entry(move |e| {
        // Only a directory named like the migrations directory costs a canonicalize.
        !(e.file_type().is_some_and(|t| t.is_dir())
            && skip_name.as_deref() == Some(e.file_name())
            && std::fs::canonicalize(e.path()).ok() == skip)
    });
    // (change index, hit) from every thread.
    let found: Mutex<Vec<(usize, Hit)>> = Mutex::new(Vec::new());
    let failed: Mutex<Option<Error>> = Mutex::new(None);
    walk.build_parallel().run(|| {
        let combined = combined.clone();
        let per_change = per_change.clone();
        let found = &found;
        let failed = &failed;
        let mut searcher = SearcherBuilder::new()
            .line_number(true)
            .binary_detection(BinaryDetection::quit(0))
            .build();
        Box::new(move |entry| {
            let entry = match entry {
                Ok(e) => e,
                // An unreadable directory is reported, not a reason to stop.
                Err(e) => {
                    tracing::warn!("refs: {e}");
                    return ignore::WalkState::Continue;
                }
            };
            if !entry.file_type().is_some_and(|t| t.is_file()) {
                return ignore::WalkState::Continue;
            }
            let path = entry.path();
            let shown = path
                .strip_prefix(".")
                .unwrap_or(path)
                .to_string_lossy()
                .into_owned();
            let mut local = Vec::new();
            let r = searcher.search_path(
                &combined,
                path,
                sinks::Lossy(|line_no, line| {
                    let bytes = line.as_bytes();
                    for (i, m) in per_change.iter().enumerate() {
                        if let Ok(Some(at)) = m.find(bytes) {
                            local.push((
                                i,
                                Hit {
                                    path: shown.clone(),
                                    line: line_no,
                                    column: at.start() + 1,
                                    matched: line[at.start()..at.end()].to_string(),
                                    text: line.trim().to_string(),
                                },
                            ));
                        }
                    }
                    Ok(true)
                }),
            );
            match r {
                Ok(()) => found.lock().unwrap().extend(local),
                Err(e) => {
                    *failed.lock().unwrap() =
                        Some(Error::io(format!("reading {}", path.display()), e));
                    return ignore::WalkState::Quit;
                }
            }
            ignore::WalkState::Continue
        })
    });
    if let Some(e) = failed.into_inner().unwrap() {
        return Err(e);
    }
    let mut found = found.into_inner().unwrap();
    found.sort();
    let mut i = 0;
    for m in migrations.iter_mut() {
        for c in &mut m.changes {
            c.hits = found
                .iter()
                .filter(|(k, _)| *k == i)
                .map(|(_, h)| h.clone())
                .collect();
            i += 1;
        }
    }
    Ok(())
}

/// References to names a migration drops or renames, and all references.
fn counts(migrations: &[MigrationRefs]) -> (usize, usize) {
    let all = || migrations.iter().flat_map(|m| &m.changes);
    (
        all().filter(|c| c.breaking()).map(|c| c.hits.len()).sum(),
        all().map(|c| c.hits.len()).sum(),
    )
}

/// The report as JSON (also `plan --json`'s `code_references`).
pub fn to_json(migrations: &[MigrationRefs], target: Target) -> serde_json::Value {
    let (breaking, total) = counts(migrations);
    serde_json::json!({
        "target": target.to_string(),
        "migrations": migrations,
        "references": total,
        "breaking_references": breaking,
    })
}

/// The report as text (also `plan`'s code references section).
pub fn to_text(migrations: &[MigrationRefs]) -> String {
    use std::fmt::Write;
    let (breaking, total) = counts(migrations);
    let mut out = String::new();
    for m in migrations {
        let _ = writeln!(out, "{} ({})", m.path.display(), m.name);
        for c in &m.changes {
            let _ = writeln!(
                out,
                "  line {}: {}: {} reference(s), {}",
                c.line,
                c.describe(),
                c.hits.len(),
                c.verdict
            );
            for h in &c.hits {
                let _ = writeln!(out, "    {}:{}:{}: {}", h.path, h.line, h.column, h.text);
            }
        }
    }
    let changes: usize = migrations.iter().map(|m| m.changes.len()).sum();
    let _ = writeln!(
        out,
        "{} migration(s), {changes} change(s) code may notice: {total} reference(s), {breaking} to a dropped or renamed name",
        migrations.len()
    );
    out
}

/// Prints the report; returns the number of references to names a migration drops or renames.
pub fn print(migrations: &[MigrationRefs], target: Target, json: bool) -> usize {
    if json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&to_json(migrations, target)).expect("refs serialise")
        );
    } else {
        out!("{}", to_text(migrations));
    }
    counts(migrations).0
}
