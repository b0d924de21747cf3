//! `sluice refs`: every place in the application code that names a table or column a migration
//! renames, drops, retypes, makes NOT NULL or makes unique. Reads files only (no database).
//!
//! The walk and the matching are ripgrep's crates (`ignore`, `grep-searcher`, `grep-regex`): the
//! walk honours `.gitignore` and runs on every core, binary files are skipped, and each file is
//! read once against one pattern holding every name; only lines that hit are matched again per
//! change to say which change they name, and only files with a hit are read again to say what
//! each hit is (an ORM declaration, SQL, a bare identifier: see [`orm`]).

mod orm;

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
    /// camelCase and PascalCase spellings as ORM models write them (case-sensitive); for a table
    /// also its model's names (`line_items` → `LineItem`, `lineItem`, `line_item`; `users` →
    /// `User`, and `user` and Django's `<app>_<model>` → `model` only on a declaration).
    pub names: Vec<String>,
    /// The regex the names are searched with (ripgrep's syntax), to repeat a search by hand.
    pub pattern: String,
    pub hits: Vec<Hit>,
    #[serde(skip)]
    spellings: Vec<Spelling>,
}

/// A name searched for a change.
#[derive(Debug, Clone)]
struct Spelling {
    text: String,
    /// Found in any case (the database's own spelling: SQL folds case).
    ci: bool,
    /// Too common a word to mean the table by itself (`user` for `users`): a reference only on
    /// an ORM declaration of the table.
    weak: bool,
}

impl Spelling {
    fn pattern(&self) -> String {
        match self.ci {
            true => format!("(?i:\\b{}\\b)", escape(&self.text)),
            false => format!("\\b{}\\b", escape(&self.text)),
        }
    }
}

/// The spellings searched for a column, or for a table and its model.
fn spellings_of(table: &str, column: Option<&str>) -> Vec<Spelling> {
    let strong = |names: Vec<String>| {
        names.into_iter().enumerate().map(|(i, text)| Spelling {
            text,
            ci: i == 0,
            weak: false,
        })
    };
    let base = column.unwrap_or_else(|| table.rsplit('.').next().unwrap_or(table));
    let mut out: Vec<Spelling> = strong(spellings(base)).collect();
    // A foreign key column `coupon_id` is declared by its relation's name in Django
    // (`coupon = models.ForeignKey(…)`) and Rails (`belongs_to :coupon`): a reference only there.
    if let Some(stem) = column
        .and_then(|c| c.strip_suffix("_id"))
        .filter(|s| !s.is_empty())
    {
        out.push(Spelling {
            text: stem.to_string(),
            ci: false,
            weak: true,
        });
    }
    if column.is_none() {
        let one = orm::singular(base);
        if one != base {
            let mut more = spellings(&one);
            if one.contains('_') {
                // `line_item` is specific enough to mean the table.
                out.extend(strong(more));
            } else {
                let word = more.remove(0);
                let cap = capitalise(&word);
                out.push(Spelling {
                    text: cap,
                    ci: false,
                    weak: false,
                });
                out.push(Spelling {
                    text: word,
                    ci: false,
                    weak: true,
                });
            }
        }
        // Django's `<app>_<model>` table: the model class is `<Model>` (any case).
        if let Some((_, model)) = base.split_once('_') {
            out.push(Spelling {
                text: model.replace('_', ""),
                ci: true,
                weak: true,
            });
        }
    }
    // Drop a spelling another one already finds.
    let mut any_case = std::collections::HashSet::new();
    let mut exact = std::collections::HashSet::new();
    out.retain(|s| {
        let lower = s.text.to_lowercase();
        if any_case.contains(&lower) || (!s.ci && !exact.insert(s.text.clone())) {
            return false;
        }
        if s.ci {
            any_case.insert(lower);
        }
        true
    });
    out
}

fn capitalise(w: &str) -> String {
    let mut c = w.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect::<String>())
        .unwrap_or_default()
}

impl Change {
    /// A reference to a name the migration takes away, at once or at `sluice complete`.
    pub fn breaking(&self) -> bool {
        self.verdict == BREAKS_NOW || self.verdict == BREAKS_AT_CONTRACT
    }

    fn certain(&self) -> usize {
        self.hits
            .iter()
            .filter(|h| h.certainty == orm::CERTAIN)
            .count()
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
    /// "certain": on an ORM declaration or in a schema file of the table or column, or in SQL
    /// naming the table; "probable": a bare identifier in code.
    pub certainty: &'static str,
    /// What names it: `SQL string`, `SQL file`, `sqlx query!`, `diesel table!`, `SQLAlchemy
    /// model`, `Django model`, `Prisma schema`, `GORM model`, `dbt schema.yml`, … or `code`.
    pub kind: &'static str,
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
                let spellings = spellings_of(&table, column);
                out.push(Change {
                    kind,
                    table,
                    column: column.map(str::to_string),
                    to: to.map(str::to_string),
                    new_type: ty,
                    verdict,
                    line: st.line,
                    names: spellings.iter().map(|s| s.text.clone()).collect(),
                    pattern: spellings
                        .iter()
                        .map(Spelling::pattern)
                        .collect::<Vec<_>>()
                        .join("|"),
                    hits: Vec::new(),
                    spellings,
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

fn matcher(pattern: &str) -> Result<RegexMatcher> {
    RegexMatcherBuilder::new()
        .build(pattern)
        .map_err(|e| Error::usage(format!("a name sluice searches for: {e}"), "report this"))
}

fn regex(pattern: &str) -> Result<regex::Regex> {
    regex::Regex::new(pattern)
        .map_err(|e| Error::usage(format!("a name sluice searches for: {e}"), "report this"))
}

/// One change as the search sees it: a regex per spelling (with its weakness) and the table's
/// strong spellings as one regex (to tell SQL naming the table).
struct Searched {
    table: String,
    column: Option<String>,
    spellings: Vec<(regex::Regex, bool)>,
    table_re: regex::Regex,
}

/// A line that hit a change, before the file is read again to classify it.
struct Raw {
    change: usize,
    line_no: u64,
    line: String,
    /// (start, end, weak) of every spelling's match.
    matches: Vec<(usize, usize, bool)>,
}

/// Searches the code under `roots` (skipping `skip`, the migrations directory) for every change's
/// names and fills in their hits, sorted by file and line.
pub fn search(roots: &[PathBuf], skip: &Path, migrations: &mut [MigrationRefs]) -> Result<()> {
    let all: Vec<&Change> = migrations.iter().flat_map(|m| &m.changes).collect();
    if all.is_empty() {
        return Ok(());
    }
    let searched: Vec<Searched> = all
        .iter()
        .map(|c| {
            let table = spellings_of(&c.table, None);
            let names = |ci: bool| {
                table
                    .iter()
                    .filter(|s| !s.weak && s.ci == ci)
                    .map(|s| escape(&s.text))
                    .collect::<Vec<_>>()
                    .join("|")
            };
            let mut table_re = format!("(?i:\\b(?:{})\\b)", names(true));
            if !names(false).is_empty() {
                table_re += &format!("|\\b(?:{})\\b", names(false));
            }
            Ok(Searched {
                table: c.table.clone(),
                column: c.column.clone(),
                spellings: c
                    .spellings
                    .iter()
                    .map(|s| Ok((regex(&s.pattern())?, s.weak)))
                    .collect::<Result<_>>()?,
                table_re: regex(&table_re)?,
            })
        })
        .collect::<Result<_>>()?;
    // One pattern for every file: the names found in any case, then those found as written.
    let mut any_case: Vec<String> = Vec::new();
    let mut as_written: Vec<String> = Vec::new();
    for s in all.iter().flat_map(|c| &c.spellings) {
        let list = if s.ci { &mut any_case } else { &mut as_written };
        let e = escape(&s.text);
        if !list.contains(&e) {
            list.push(e);
        }
    }
    let mut parts = Vec::new();
    if !any_case.is_empty() {
        parts.push(format!("(?i:\\b(?:{})\\b)", any_case.join("|")));
    }
    if !as_written.is_empty() {
        parts.push(format!("\\b(?:{})\\b", as_written.join("|")));
    }
    let combined = matcher(&parts.join("|"))?;
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
    // Hidden files are skipped as ripgrep does, except sqlx's offline queries in `.sqlx/`.
    walk.hidden(false);
    walk.filter_entry(move |e| {
        let name = e.file_name();
        if e.depth() > 0 && name.as_encoded_bytes().first() == Some(&b'.') && name != ".sqlx" {
            return false;
        }
        // Only a directory named like the migrations directory costs a canonicalize.
        !(e.file_type().is_some_and(|t| t.is_dir())
            && skip_name.as_deref() == Some(name)
            && std::fs::canonicalize(e.path()).ok() == skip)
    });
    // (change index, hit) from every thread.
    let found: Mutex<Vec<(usize, Hit)>> = Mutex::new(Vec::new());
    let failed: Mutex<Option<Error>> = Mutex::new(None);
    let searched = &searched;
    walk.build_parallel().run(|| {
        let combined = combined.clone();
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
            let mut raw: Vec<Raw> = Vec::new();
            let r = searcher.search_path(
                &combined,
                path,
                sinks::Lossy(|line_no, line| {
                    for (i, c) in searched.iter().enumerate() {
                        let matches: Vec<(usize, usize, bool)> = c
                            .spellings
                            .iter()
                            .flat_map(|(re, weak)| {
                                re.find_iter(line).map(move |m| (m.start(), m.end(), *weak))
                            })
                            .collect();
                        if !matches.is_empty() {
                            raw.push(Raw {
                                change: i,
                                line_no,
                                line: line.to_string(),
                                matches,
                            });
                        }
                    }
                    Ok(true)
                }),
            );
            if let Err(e) = r {
                *failed.lock().unwrap() = Some(Error::io(format!("reading {}", path.display()), e));
                return ignore::WalkState::Quit;
            }
            if raw.is_empty() {
                return ignore::WalkState::Continue;
            }
            // A file with hits: read it again, whole, to say what each hit is.
            let text = match std::fs::read(path) {
                Ok(b) => String::from_utf8_lossy(&b).into_owned(),
                Err(e) => {
                    *failed.lock().unwrap() =
                        Some(Error::io(format!("reading {}", path.display()), e));
                    return ignore::WalkState::Quit;
                }
            };
            let ctx = orm::FileCtx::parse(path, &text);
            let shown = path
                .strip_prefix(".")
                .unwrap_or(path)
                .to_string_lossy()
                .into_owned();
            let mut local = Vec::new();
            for r in raw {
                let c = &searched[r.change];
                let target = orm::Target {
                    table: &c.table,
                    column: c.column.as_deref(),
                    table_re: &c.table_re,
                };
                // The best reading of the line: certain before probable, then the first.
                let best = r
                    .matches
                    .iter()
                    .filter_map(|&(start, end, weak)| {
                        let (certainty, kind) =
                            orm::classify(&ctx, &target, r.line_no as usize - 1, start, weak)?;
                        Some((certainty != orm::CERTAIN, start, end, certainty, kind))
                    })
                    .min();
                if let Some((_, start, end, certainty, kind)) = best {
                    local.push((
                        r.change,
                        Hit {
                            path: shown.clone(),
                            line: r.line_no,
                            column: start + 1,
                            matched: r.line[start..end].to_string(),
                            text: r.line.trim().to_string(),
                            certainty,
                            kind,
                        },
                    ));
                }
            }
            found.lock().unwrap().extend(local);
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
/// (references to dropped or renamed names, all references, certain references).
fn counts(migrations: &[MigrationRefs]) -> (usize, usize, usize) {
    let all = || migrations.iter().flat_map(|m| &m.changes);
    (
        all().filter(|c| c.breaking()).map(|c| c.hits.len()).sum(),
        all().map(|c| c.hits.len()).sum(),
        all().map(Change::certain).sum(),
    )
}

/// The report as JSON (also `plan --json`'s `code_references`).
pub fn to_json(migrations: &[MigrationRefs], target: Target) -> serde_json::Value {
    let (breaking, total, certain) = counts(migrations);
    serde_json::json!({
        "target": target.to_string(),
        "migrations": migrations,
        "references": total,
        "certain_references": certain,
        "breaking_references": breaking,
    })
}

/// The report as text (also `plan`'s code references section).
pub fn to_text(migrations: &[MigrationRefs]) -> String {
    use std::fmt::Write;
    let (breaking, total, certain) = counts(migrations);
    let mut out = String::new();
    for m in migrations {
        let _ = writeln!(out, "{} ({})", m.path.display(), m.name);
        for c in &m.changes {
            let _ = writeln!(
                out,
                "  line {}: {}: {} reference(s) ({} certain), {}",
                c.line,
                c.describe(),
                c.hits.len(),
                c.certain(),
                c.verdict
            );
            for h in &c.hits {
                let _ = writeln!(
                    out,
                    "    {}:{}:{}: {}  [{}, {}]",
                    h.path, h.line, h.column, h.text, h.certainty, h.kind
                );
            }
        }
    }
    let changes: usize = migrations.iter().map(|m| m.changes.len()).sum();
    let _ = writeln!(
        out,
        "{} migration(s), {changes} change(s) code may notice: {total} reference(s) ({certain} certain), {breaking} to a dropped or renamed name",
        migrations.len()
    );
    out
}

/// References to names a migration drops or renames.
pub fn breaking(migrations: &[MigrationRefs]) -> usize {
    counts(migrations).0
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
