//! Migration files on disk: discovery, ordering, the up/down format, directives and checksums.
//!
//! A migration is one file `<version>_<name>.sql`, where `version` is digits (a UTC timestamp from
//! `sluice new`) and `name` is lowercase letters, digits, `_` or `-`. Inside, `-- sluice:up` and
//! `-- sluice:down` start the two parts; a file without markers is all up and has no down part.
//! A part with no SQL (empty, or only comments) is a no-op: applying or reverting it records the
//! step and runs nothing. A migration is irreversible when it has no `-- sluice:down` part, or when
//! its down part says `-- sluice:irreversible [reason]` (and holds no SQL).
//! Other `-- sluice:` lines are directives; an unknown one is an error, never ignored.

use crate::error::{Error, Result};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TxMode {
    /// The whole part in one transaction (PostgreSQL default).
    Single,
    /// Each statement on its own, progress recorded after each.
    PerStatement,
}

impl TxMode {
    pub fn name(self) -> &'static str {
        match self {
            TxMode::Single => "single",
            TxMode::PerStatement => "per-statement",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Up,
    Down,
}

/// One part (up or down) of a migration file.
#[derive(Debug, Clone)]
pub struct Part {
    /// The part's SQL, exactly as in the file.
    pub sql: String,
    /// Byte offset of `sql` within the file text.
    pub offset: usize,
    /// Forced by `-- sluice:transaction ...` (or the layout's own option), else decided from the statements.
    pub tx_directive: Option<TxMode>,
    /// Which of the migration's files holds `sql`: 0 is `Migration::path`, n is `more_files[n - 1]`
    /// (layouts that keep the down part in its own file).
    pub file: usize,
}

/// `-- sluice:ignore <rule-id> <reason>`: suppresses that rule's finding on the next statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ignore {
    pub rule: String,
    pub reason: String,
    pub line: usize,
    /// Byte offset of the directive line in the file text.
    pub offset: usize,
    /// The file holding it (see `Part::file`).
    pub file: usize,
}

/// A file of a migration besides its first one (e.g. diesel's `down.sql`).
#[derive(Debug, Clone)]
pub struct SourceFile {
    pub path: PathBuf,
    /// The text with CRLF normalised to LF.
    pub text: String,
}

#[derive(Debug, Clone)]
pub struct Migration {
    /// The history key: ordered as the layout orders its migrations.
    pub version: i64,
    /// The version as the file names it (`2019-01-01-000000` for diesel); equal to `version` in
    /// sluice's own layout.
    pub version_text: String,
    pub name: String,
    /// The first (often only) file of the migration: the one holding the up part.
    pub path: PathBuf,
    /// The file text with CRLF normalised to LF.
    pub text: String,
    /// The migration's other files, in the order `Part::file` counts them.
    pub more_files: Vec<SourceFile>,
    pub checksum: String,
    pub up: Part,
    /// None: the migration is irreversible (see `irreversible` for why).
    pub down: Option<Part>,
    pub irreversible: Option<Irreversible>,
    pub ignores: Vec<Ignore>,
}

/// Why a migration has no down part to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Irreversible {
    /// The file has no `-- sluice:down` marker: nothing says how, or whether, to undo it.
    NoDownPart,
    /// `-- sluice:irreversible [reason]` under `-- sluice:down`.
    Marked { line: usize, reason: Option<String> },
    /// Another tool's layout has no down part for it; the text says what is missing.
    Missing(String),
}

impl Irreversible {
    /// The sentence that follows "migration X is irreversible: ".
    pub fn describe(&self) -> String {
        match self {
            Irreversible::NoDownPart => "it has no `-- sluice:down` part".into(),
            Irreversible::Marked { line, reason: None } => {
                format!("it is marked `-- sluice:irreversible` (line {line})")
            }
            Irreversible::Marked {
                line,
                reason: Some(r),
            } => format!("it is marked `-- sluice:irreversible` (line {line}): {r}"),
            Irreversible::Missing(what) => format!("it has no {what}"),
        }
    }
}

impl Migration {
    /// A repeatable migration: applied after the versioned ones whenever its checksum differs from
    /// the one recorded, never undone by `down` (its key is negative, see `layout::repeatable_key`).
    pub fn is_repeatable(&self) -> bool {
        crate::layout::is_repeatable_key(self.version)
    }

    pub fn label(&self) -> String {
        format!("{}_{}", self.version_text, self.name)
    }

    /// The path and text of file `i` (see `Part::file`).
    pub fn file(&self, i: usize) -> (&Path, &str) {
        match i.checked_sub(1) {
            None => (&self.path, &self.text),
            Some(k) => {
                let f = &self.more_files[k];
                (&f.path, &f.text)
            }
        }
    }

    /// The path and text of the file holding `part`.
    pub fn file_of(&self, part: &Part) -> (&Path, &str) {
        self.file(part.file)
    }

    /// The text of the file at `path` (one of the migration's), for showing a finding in context.
    pub fn text_of(&self, path: &Path) -> &str {
        self.more_files
            .iter()
            .find(|f| f.path == path)
            .map(|f| f.text.as_str())
            .unwrap_or(&self.text)
    }

    pub fn part(&self, dir: Direction) -> Option<&Part> {
        match dir {
            Direction::Up => Some(&self.up),
            Direction::Down => self.down.as_ref(),
        }
    }
}

/// SHA-256 of the text with CRLF normalised to LF, so line endings never cause a false mismatch.
pub fn checksum(text: &str) -> String {
    let normalised = text.replace("\r\n", "\n");
    let digest = Sha256::digest(normalised.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Splits `<version>_<name>.sql` into its parts, or explains what is wrong with the name.
pub fn parse_file_name(file_name: &str) -> std::result::Result<(i64, String), String> {
    let stem = file_name
        .strip_suffix(".sql")
        .ok_or_else(|| "a migration file name must end in `.sql`, in lowercase".to_string())?;
    let (version, name) = stem.split_once('_').ok_or_else(|| {
        "expected <version>_<name>.sql, e.g. 20261125093000_add_users.sql".to_string()
    })?;
    if version.is_empty() || !version.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "the version `{version}` must be digits only, e.g. 20261125093000_add_users.sql"
        ));
    }
    // 18 digits always fit a BIGINT; a 19th would let some versions fit and others overflow.
    let v: i64 = version
        .parse()
        .ok()
        .filter(|_| version.len() <= 18)
        .ok_or_else(|| format!("the version `{version}` is too large (at most 18 digits)"))?;
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
    {
        return Err(format!(
            "the name `{name}` must be lowercase letters, digits, `_` or `-`"
        ));
    }
    Ok((v, name.to_string()))
}

/// Largest migration file sluice reads: schema changes are small; a bigger file is almost always a
/// data dump that belongs in a loader, and reading it whole would cost memory for nothing.
pub const MAX_FILE_BYTES: u64 = 32 * 1024 * 1024;

fn check_size(path: &Path) -> Result<()> {
    let len = std::fs::metadata(path)
        .map_err(|e| Error::io(format!("reading {}", path.display()), e))?
        .len();
    if len > MAX_FILE_BYTES {
        return Err(Error::MigrationFile {
            path: path.to_path_buf(),
            line: None,
            message: format!(
                "the file is {} MiB; sluice reads migration files up to {} MiB",
                len / (1024 * 1024),
                MAX_FILE_BYTES / (1024 * 1024)
            ),
            help: "load bulk data with COPY / LOAD DATA or `sluice backfill`, and keep the migration to the schema change".into(),
        });
    }
    Ok(())
}

/// Reads and parses one migration file.
pub fn load_file(path: &Path) -> Result<Migration> {
    let file_name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default()
        .to_string();
    let (version, name) = parse_file_name(&file_name).map_err(|m| Error::MigrationFile {
        path: path.to_path_buf(),
        line: None,
        message: format!("malformed migration file name: {m}"),
        help: "rename the file to <version>_<name>.sql, or create new migrations with `sluice new <name>`".into(),
    })?;
    check_size(path)?;
    let raw =
        std::fs::read(path).map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
    let text = String::from_utf8(raw).map_err(|_| Error::MigrationFile {
        path: path.to_path_buf(),
        line: None,
        message: "the file is not valid UTF-8".into(),
        help: "save the migration as UTF-8".into(),
    })?;
    parse_text(path, version, name, &text)
}

/// Reads any SQL file for linting: a well-named migration keeps its version; another name gets version 0.
pub fn load_any(path: &Path) -> Result<Migration> {
    let file_name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    if parse_file_name(file_name).is_ok() {
        return load_file(path);
    }
    check_size(path)?;
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
    let name = path
        .file_stem()
        .and_then(|n| n.to_str())
        .unwrap_or("file")
        .to_string();
    parse_text(path, 0, name, &text)
}

/// Parses the text of a migration file (already named) into its parts.
pub fn parse_text(path: &Path, version: i64, name: String, text: &str) -> Result<Migration> {
    let text = text.replace("\r\n", "\n");
    let file_err = |line: usize, message: String, help: &str| Error::MigrationFile {
        path: path.to_path_buf(),
        line: Some(line),
        message: format!("line {line}: {message}"),
        help: help.to_string(),
    };

    #[derive(PartialEq)]
    enum Section {
        Preamble,
        Up,
        Down,
    }
    let mut section = Section::Preamble;
    let mut saw_markers = false;
    let mut up_range: Option<(usize, usize)> = None;
    let mut down_range: Option<(usize, usize)> = None;
    let mut up_tx = None;
    let mut down_tx = None;
    let mut preamble_tx = None;
    let mut offset = 0usize;
    let mut section_start = 0usize;
    let mut ignores = Vec::new();
    let mut irreversible: Option<(usize, Option<String>)> = None;

    for (idx, line) in text.split_inclusive('\n').enumerate() {
        let lineno = idx + 1;
        let line_start = offset;
        offset += line.len();
        let trimmed = line.trim();
        let directive = trimmed
            .strip_prefix("-- sluice:")
            .filter(|d| !d.starts_with(char::is_whitespace));
        let Some(directive) = directive else {
            // A mistyped marker must never become a comment: the down SQL would join the up part.
            if let Some(found) = near_miss(line) {
                return Err(file_err(
                    lineno,
                    format!("`{found}` looks like a sluice directive but is not one"),
                    "directives are written exactly `-- sluice:up`, `-- sluice:down`, \
                     `-- sluice:irreversible [reason]`, \
                     `-- sluice:transaction single|per-statement`, `-- sluice:ignore <rule-id> <reason>`, \
                     `-- sluice:versioned down <expression>` or `-- sluice:old <column> = <expression>`: \
                     two dashes, one space, lowercase, alone on their line. For an ordinary comment, \
                     do not start it with `sluice`",
                ));
            }
            continue;
        };
        let mut words = directive.split_whitespace();
        let head = words.next().unwrap_or("");
        match head {
            "up" | "down" => {
                if words.next().is_some() {
                    return Err(file_err(
                        lineno,
                        format!("`-- sluice:{head}` takes no arguments"),
                        "write the marker alone on its line",
                    ));
                }
                let close =
                    |range: &mut Option<(usize, usize)>| *range = Some((section_start, line_start));
                match section {
                    Section::Preamble => {
                        if head == "down" {
                            return Err(file_err(
                                lineno,
                                "`-- sluice:down` comes before `-- sluice:up`".into(),
                                "put the up part first, then `-- sluice:down` and the down part",
                            ));
                        }
                        if has_sql(&text[..line_start]) {
                            return Err(file_err(
                                lineno,
                                "SQL before `-- sluice:up` belongs to no part".into(),
                                "move it below `-- sluice:up`",
                            ));
                        }
                    }
                    Section::Up => {
                        if head == "up" {
                            return Err(file_err(
                                lineno,
                                "a second `-- sluice:up` marker".into(),
                                "a migration has one up part and at most one down part",
                            ));
                        }
                        close(&mut up_range);
                    }
                    Section::Down => {
                        return Err(file_err(
                            lineno,
                            format!("`-- sluice:{head}` after the down part"),
                            "a migration has one up part and at most one down part",
                        ));
                    }
                }
                saw_markers = true;
                section = if head == "up" {
                    Section::Up
                } else {
                    Section::Down
                };
                section_start = offset;
            }
            "transaction" => {
                let mode = match (words.next(), words.next()) {
                    (Some("single"), None) => TxMode::Single,
                    (Some("per-statement"), None) => TxMode::PerStatement,
                    _ => return Err(file_err(lineno, format!("`-- sluice:{directive}` is not a valid transaction directive"), "write `-- sluice:transaction single` or `-- sluice:transaction per-statement`")),
                };
                let slot = match section {
                    Section::Preamble => &mut preamble_tx,
                    Section::Up => &mut up_tx,
                    Section::Down => &mut down_tx,
                };
                if slot.is_some() {
                    return Err(file_err(
                        lineno,
                        "a second transaction directive for the same part".into(),
                        "keep one `-- sluice:transaction` line per part",
                    ));
                }
                *slot = Some(mode);
            }
            "irreversible" => {
                if section != Section::Down {
                    return Err(file_err(
                        lineno,
                        "`-- sluice:irreversible` outside the down part".into(),
                        "put it under `-- sluice:down`, in place of the down SQL",
                    ));
                }
                if irreversible.is_some() {
                    return Err(file_err(
                        lineno,
                        "a second `-- sluice:irreversible`".into(),
                        "keep one `-- sluice:irreversible` line",
                    ));
                }
                let reason = words.collect::<Vec<_>>().join(" ");
                irreversible = Some((lineno, (!reason.is_empty()).then_some(reason)));
            }
            "versioned" => {
                // The check that needs the statement (one ALTER COLUMN TYPE, PostgreSQL) is
                // `crate::lifecycle::breaking`'s; what the line alone shows is checked here.
                let fix = "write `-- sluice:versioned down <expression>` under `-- sluice:up`, on the line right before each of the migration's statements, each `ALTER TABLE t ALTER COLUMN c TYPE new_type [USING ...]` of one column; the expression gives the old column's value from the new one (the column's name stands for the new value), e.g. `-- sluice:versioned down body::text`";
                // A file without markers is all up part.
                if section == Section::Down {
                    return Err(file_err(
                        lineno,
                        "`-- sluice:versioned` outside the up part".into(),
                        fix,
                    ));
                }
                match (words.next(), words.next()) {
                    (Some("down"), Some(_)) => {}
                    (Some("down"), None) => {
                        return Err(file_err(
                            lineno,
                            "`-- sluice:versioned down` needs the down expression".into(),
                            fix,
                        ))
                    }
                    _ => {
                        return Err(file_err(
                            lineno,
                            format!("`-- sluice:{}` is not a valid versioned directive: it is written `-- sluice:versioned down <expression>`", directive.trim()),
                            fix,
                        ))
                    }
                }
                let expr = directive["versioned".len()..]
                    .trim_start()
                    .strip_prefix("down")
                    .unwrap_or("");
                if let Some(why) = expression_trailer(expr) {
                    return Err(file_err(
                        lineno,
                        format!("the expression of `-- sluice:{}` {why}", directive.trim()),
                        fix,
                    ));
                }
                let next = text[offset..].lines().next().unwrap_or("").trim_start();
                if !next
                    .get(..5)
                    .is_some_and(|w| w.eq_ignore_ascii_case("ALTER"))
                {
                    return Err(file_err(
                        lineno,
                        "`-- sluice:versioned` is not on the line right before an `ALTER TABLE ... ALTER COLUMN ... TYPE ...` statement".into(),
                        fix,
                    ));
                }
            }
            "old" => {
                // Which statement it belongs to (the DROP COLUMN of a split or merge, PostgreSQL)
                // is `crate::lifecycle::breaking`'s check; what the line alone shows is checked here.
                let fix = "write `-- sluice:old <dropped column> = <expression>` under `-- sluice:up`, one line per column the migration drops, right before its `ALTER TABLE ... DROP COLUMN ...` (after the ADD COLUMN and the UPDATE that split or merge columns); the expression gives the dropped column's value from the added ones, e.g. `-- sluice:old name = first_name || ' ' || last_name`";
                if section == Section::Down {
                    return Err(file_err(
                        lineno,
                        "`-- sluice:old` outside the up part".into(),
                        fix,
                    ));
                }
                if old_assignment(&directive["old".len()..]).is_none()
                    || !directive[3..].starts_with(char::is_whitespace)
                {
                    return Err(file_err(
                        lineno,
                        format!("`-- sluice:{}` is not a valid old directive: it is written `-- sluice:old <column> = <expression>`", directive.trim()),
                        fix,
                    ));
                }
                if let Some(why) = old_assignment(&directive["old".len()..])
                    .and_then(|(_, expr)| expression_trailer(&expr))
                {
                    return Err(file_err(
                        lineno,
                        format!("the expression of `-- sluice:{}` {why}", directive.trim()),
                        fix,
                    ));
                }
                let next = text[offset..].lines().next().unwrap_or("").trim_start();
                if !(next.starts_with("-- sluice:old")
                    || next
                        .get(..5)
                        .is_some_and(|w| w.eq_ignore_ascii_case("ALTER")))
                {
                    return Err(file_err(
                        lineno,
                        "`-- sluice:old` is not on the lines right before an `ALTER TABLE ... DROP COLUMN ...` statement".into(),
                        fix,
                    ));
                }
            }
            "ignore" => {
                let rule = words.next().unwrap_or("").to_string();
                let reason = words.collect::<Vec<_>>().join(" ");
                if rule.is_empty() || reason.is_empty() {
                    return Err(file_err(
                        lineno,
                        "`-- sluice:ignore` needs a rule id and a reason".into(),
                        "write `-- sluice:ignore <rule-id> <why this is safe here>` on the line before the statement",
                    ));
                }
                ignores.push(Ignore {
                    rule,
                    reason,
                    line: lineno,
                    offset: line_start,
                    file: 0,
                });
            }
            _ => {
                return Err(file_err(
                    lineno,
                    format!("unknown directive `-- sluice:{}`", directive.trim()),
                    "known directives: `-- sluice:up`, `-- sluice:down`, `-- sluice:irreversible [reason]`, \
                     `-- sluice:transaction single|per-statement`, \
                     `-- sluice:ignore <rule-id> <reason>`, `-- sluice:versioned down <expression>`, \
                     `-- sluice:old <column> = <expression>`. \
                     To write an ordinary comment, do not start it with `-- sluice:`",
                ));
            }
        }
    }

    let (up, down) = if saw_markers {
        match section {
            Section::Up => up_range = Some((section_start, text.len())),
            Section::Down => down_range = Some((section_start, text.len())),
            Section::Preamble => unreachable!(),
        }
        let (us, ue) = up_range.expect("up part present when markers are");
        // A file-wide directive (before `up`) applies to both parts unless a part has its own.
        let up = Part {
            sql: text[us..ue].to_string(),
            offset: us,
            tx_directive: up_tx.or(preamble_tx),
            file: 0,
        };
        let down = down_range.map(|(ds, de)| Part {
            sql: text[ds..de].to_string(),
            offset: ds,
            tx_directive: down_tx.or(preamble_tx),
            file: 0,
        });
        (up, down)
    } else {
        (
            Part {
                sql: text.clone(),
                offset: 0,
                tx_directive: preamble_tx,
                file: 0,
            },
            None,
        )
    };
    // An empty part is a no-op (real histories have placeholders, and files empty for one engine);
    // only a missing down part or the explicit marker makes a migration irreversible.
    let (down, irreversible) = match (down, irreversible) {
        (None, _) => (None, Some(Irreversible::NoDownPart)),
        (Some(d), Some((line, reason))) => {
            if has_sql(&d.sql) {
                return Err(file_err(
                    line,
                    "the down part is marked `-- sluice:irreversible` but also has SQL".into(),
                    "remove the SQL (the migration cannot be rolled back) or remove the marker (the SQL undoes it)",
                ));
            }
            (None, Some(Irreversible::Marked { line, reason }))
        }
        (Some(d), None) => (Some(d), None),
    };

    Ok(Migration {
        version,
        version_text: version.to_string(),
        name,
        path: path.to_path_buf(),
        checksum: checksum(&text),
        text,
        more_files: Vec::new(),
        up,
        down,
        irreversible,
        ignores,
    })
}

const DIRECTIVE_WORDS: [&str; 7] = [
    "up",
    "down",
    "transaction",
    "ignore",
    "irreversible",
    "versioned",
    "old",
];

/// One `-- sluice:old <column> = <expression>` of a part (issue 14, splitting or merging columns):
/// how the column the migration drops is computed from the columns it adds, for the writes of the
/// new application version while both run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OldDirective {
    /// The dropped column, as PostgreSQL folds it (unquoted: lowercase).
    pub column: String,
    pub expr: String,
    /// Byte offset in the part's SQL of the directive's line and of the line after it.
    pub start: usize,
    pub end: usize,
}

/// `<column> = <expression>` of an old directive: None when it is not of that form.
fn old_assignment(rest: &str) -> Option<(String, String)> {
    let rest = rest.trim();
    // A quoted name: `"..."` (PostgreSQL) or `` `...` `` (MariaDB, MySQL); a doubled quote
    // stands for one.
    let quote = rest.chars().next().filter(|c| *c == '"' || *c == '`');
    let (column, after) = if let Some(qc) = quote {
        let q = &rest[1..];
        let mut name = String::new();
        let mut chars = q.char_indices().peekable();
        let mut end = None;
        while let Some((i, c)) = chars.next() {
            if c == qc {
                if chars.peek().map(|(_, n)| *n) == Some(qc) {
                    name.push(qc);
                    chars.next();
                } else {
                    end = Some(i + 1);
                    break;
                }
            } else {
                name.push(c);
            }
        }
        (name, &q[end?..])
    } else {
        let n = rest
            .find(|c: char| c.is_whitespace() || c == '=')
            .unwrap_or(rest.len());
        // PostgreSQL folds only ASCII letters of an unquoted name.
        (rest[..n].to_ascii_lowercase(), &rest[n..])
    };
    let expr = after.trim_start().strip_prefix('=')?.trim();
    (!column.is_empty() && !expr.is_empty()).then(|| (column, expr.to_string()))
}

/// What ends a directive's expression that is not part of it, outside quotes: a `;` (the line is
/// not a statement) or a comment (the rest of the line is the expression). None: neither.
fn expression_trailer(expr: &str) -> Option<&'static str> {
    let (mut quote, mut prev) = (None::<char>, ' ');
    for c in expr.chars() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '\'' || c == '"' => quote = Some(c),
            None if c == '-' && prev == '-' => {
                return Some("holds a comment (`--`): the whole rest of the line is the expression; remove the comment or put it on a line of its own above")
            }
            None if c == '*' && prev == '/' => {
                return Some("holds a comment (`/*`): the whole rest of the line is the expression; remove the comment or put it on a line of its own above")
            }
            None => {}
        }
        prev = c;
    }
    expr.trim_end().ends_with(';').then_some(
        "ends with `;`: the directive's line is not a statement; write the expression alone",
    )
}

/// Every `-- sluice:old <column> = <expression>` line of a part's SQL, in order ([`parse_text`]
/// has checked their form).
pub fn old_directives(sql: &str) -> Vec<OldDirective> {
    let mut out = Vec::new();
    let mut offset = 0;
    for line in sql.split_inclusive('\n') {
        let start = offset;
        offset += line.len();
        if let Some(rest) = line.trim().strip_prefix("-- sluice:old") {
            if let Some((column, expr)) = old_assignment(rest) {
                out.push(OldDirective {
                    column,
                    expr,
                    start,
                    end: offset,
                });
            }
        }
    }
    out
}

/// `-- sluice:versioned down <expression>` in a part's SQL (issue 14, versioned schemas): the
/// expression and the byte offset in `sql` of the line after the directive (where the statement
/// it belongs to must start). [`parse_text`] has checked its form and that there is one.
pub fn versioned_directive(sql: &str) -> Option<(String, usize)> {
    versioned_directives(sql).into_iter().next()
}

/// Every `-- sluice:versioned down <expression>` of a part's SQL, in order: (the expression, the
/// offset right after its line). A versioned migration may change several
/// columns, one statement each.
pub fn versioned_directives(sql: &str) -> Vec<(String, usize)> {
    let mut offset = 0;
    let mut out = Vec::new();
    for line in sql.split_inclusive('\n') {
        offset += line.len();
        if let Some(rest) = line.trim().strip_prefix("-- sluice:versioned") {
            // The parser refused any other form; unparsed SQL yields what it can.
            if let Some(expr) = rest.trim_start().strip_prefix("down") {
                out.push((expr.trim().to_string(), offset));
            }
        }
    }
    out
}

/// The comment on `line` that looks like a sluice directive without being written exactly as one
/// (`--sluice:down`, `--  sluice:down`, `-- SLUICE:down`, `# sluice:down`, `/* sluice:down */`,
/// `SELECT 1; -- sluice:down`, `-- sluice: down`, `-- sluice down`), trimmed for the message.
/// A line that starts exactly with `-- sluice:` is the directive parser's to judge.
pub fn near_miss(line: &str) -> Option<String> {
    let lower = line.to_lowercase();
    let bytes = lower.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let starts_comment = bytes[i] == b'#'
            || (bytes[i] == b'-' && bytes.get(i + 1) == Some(&b'-'))
            || (bytes[i] == b'/' && bytes.get(i + 1) == Some(&b'*'));
        if starts_comment {
            // Whatever a reader skips over before the first word (`-- ; sluice:down`).
            let rest = lower[i..].trim_start_matches(|c: char| !c.is_alphanumeric());
            if let Some(after) = rest.strip_prefix("sluice") {
                // Any run of marks between `sluice` and the word (`sluice:`, `sluice -`,
                // `sluice\u{fffd}:`) is a separator to a reader.
                let sep_len = after
                    .find(|c: char| c.is_alphanumeric())
                    .unwrap_or(after.len());
                let (sep, word) = after.split_at(sep_len);
                let names_directive = DIRECTIVE_WORDS.iter().any(|w| {
                    word.strip_prefix(w)
                        .is_some_and(|r| !r.starts_with(|c: char| c.is_alphanumeric()))
                });
                if sep.contains(':') || names_directive || word.is_empty() {
                    return Some(line.trim().chars().take(80).collect());
                }
            }
            // Everything after `--` or `#` is this one comment; a block comment may be followed by more.
            if bytes[i] != b'/' {
                return None;
            }
            i += 2;
            continue;
        }
        i += 1;
    }
    None
}

/// True when the text holds anything but blank lines and `--` comments.
pub fn has_sql(text: &str) -> bool {
    text.lines().any(|l| {
        let t = l.trim();
        !t.is_empty() && !t.starts_with("--")
    })
}

/// The migration files of `dir` in version order, names checked, contents not read yet (for tools
/// that stream through many files). Files that do not end in `.sql` and hidden files are ignored; a
/// `.sql` file with a malformed name, or a `.SQL`/`.Sql` one, is an error, so a typo never silently
/// skips a migration.
pub fn discover_paths(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = std::fs::read_dir(dir).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            Error::usage(
                format!("migrations directory {} does not exist", dir.display()),
                "run `sluice init` to create it, or point --migrations-dir (or migrations_dir in sluice.toml) at yours",
            )
        } else {
            Error::io(format!("reading {}", dir.display()), e)
        }
    })?;
    let mut found: Vec<(i64, PathBuf)> = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(format!("reading {}", dir.display()), e))?;
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') || !name.to_lowercase().ends_with(".sql") || !path.is_file() {
            continue;
        }
        let (version, _) = parse_file_name(&name).map_err(|m| Error::MigrationFile {
            path: path.clone(),
            line: None,
            message: format!("malformed migration file name: {m}"),
            help: "rename the file to <version>_<name>.sql, or create new migrations with `sluice new <name>`".into(),
        })?;
        found.push((version, path));
    }
    found.sort();
    Ok(found.into_iter().map(|(_, p)| p).collect())
}

/// Every migration in `dir` exactly as `sluice up` reads and applies them: the layout detected
/// from the directory (sluice's own, diesel, sqlx, golang-migrate, dbmate, goose, Flyway), in its
/// order, the repeatable migrations (`R_<name>.sql`, Flyway's `R__<name>.sql`) after every
/// versioned one in their own order. Only generic files are read: [`discover_for`] also picks an
/// engine's own variants (`x.postgres.sql`), as the CLI does.
pub fn discover(dir: &Path) -> Result<Vec<Migration>> {
    Ok(crate::layout::discover(dir, None, None)?.1)
}

/// [`discover`] for one engine: its own per-dialect variants win over the generic files.
pub fn discover_for(dir: &Path, engine: crate::target::EngineKind) -> Result<Vec<Migration>> {
    let dialect = crate::layout::Dialect::of(engine);
    Ok(crate::layout::discover(dir, None, Some(dialect))?.1)
}

/// The version `sluice new` gives a migration created at `now`: its UTC timestamp as a number.
pub fn new_version(now: chrono::DateTime<chrono::Utc>) -> i64 {
    now.format("%Y%m%d%H%M%S")
        .to_string()
        .parse()
        .expect("a 14-digit timestamp")
}

/// The file name `sluice new` uses: a UTC timestamp version and the given name, normalised.
pub fn new_file_name(now: chrono::DateTime<chrono::Utc>, name: &str) -> Result<String> {
    let norm: String = name
        .trim()
        .to_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let norm = norm.trim_matches('_').to_string();
    if norm.is_empty() {
        return Err(Error::usage(
            format!("`{name}` is not usable as a migration name"),
            "use letters and digits, e.g. `sluice new add_users_email`",
        ));
    }
    Ok(format!("{}_{}.sql", new_version(now), norm))
}

pub const NEW_MIGRATION_TEMPLATE: &str = "\
-- sluice:up
-- Write the change here, one or more statements ending in `;`.


-- sluice:down
-- Write how to undo it here, in place of the marker below; an empty down part means there is
-- nothing to undo. `sluice down` stops at a migration marked irreversible.
-- sluice:irreversible

";

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Migration> {
        parse_text(Path::new("m/1_x.sql"), 1, "x".into(), text)
    }

    #[test]
    fn file_names() {
        assert_eq!(
            parse_file_name("20261125093000_add_users.sql").unwrap(),
            (20261125093000, "add_users".into())
        );
        assert_eq!(
            parse_file_name("0001_init-db.sql").unwrap(),
            (1, "init-db".into())
        );
        for bad in [
            "add_users.sql",
            "2026_Add.sql",
            "2026.sql",
            "v1_x.sql",
            "1_.sql",
            "1_x.SQL",
            "99999999999999999999_x.sql",
            "1234567890123456789_x.sql",
            "0000000000000000001_x.sql",
            "1_a b.sql",
        ] {
            assert!(parse_file_name(bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn up_and_down_parts() {
        let m = parse("-- header comment\n-- sluice:up\nCREATE TABLE t (id int);\n-- sluice:down\nDROP TABLE t;\n").unwrap();
        assert_eq!(m.up.sql, "CREATE TABLE t (id int);\n");
        assert_eq!(&m.text[m.up.offset..m.up.offset + m.up.sql.len()], m.up.sql);
        let d = m.down.unwrap();
        assert_eq!(d.sql, "DROP TABLE t;\n");
        assert_eq!(&m.text[d.offset..], "DROP TABLE t;\n");
    }

    #[test]
    fn no_markers_means_all_up_no_down() {
        let m = parse("CREATE TABLE t (id int);\n").unwrap();
        assert_eq!(m.up.sql, "CREATE TABLE t (id int);\n");
        assert!(m.down.is_none());
    }

    /// Every spelling of "nothing here" (empty, blank lines, comments, a transaction directive
    /// alone) makes a no-op part, never a missing one; only no `-- sluice:down` at all, or
    /// `-- sluice:irreversible`, makes a migration irreversible.
    #[test]
    fn empty_parts_are_no_ops_and_irreversible_is_explicit() {
        let empties = [
            "",
            "\n",
            "\n\n   \n",
            "-- placeholder\n",
            "\n-- a\n\n   -- b\n",
            "-- sluice:transaction per-statement\n-- empty for this engine\n",
            "-- sluice:ignore some-rule nothing to check\n",
        ];
        let mut checked = 0;
        for up in empties {
            for down in empties {
                for crlf in [false, true] {
                    let text = format!("-- sluice:up\n{up}-- sluice:down\n{down}");
                    let text = if crlf {
                        text.replace('\n', "\r\n")
                    } else {
                        text
                    };
                    let m = parse(&text).unwrap_or_else(|e| panic!("{text:?}: {e}"));
                    assert!(!has_sql(&m.up.sql), "{text:?}");
                    let d = m.down.as_ref().unwrap_or_else(|| panic!("{text:?}"));
                    assert!(!has_sql(&d.sql), "{text:?}");
                    assert_eq!(m.irreversible, None, "{text:?}");
                    // The same part marked irreversible, with or without a reason.
                    for (mark, reason) in [
                        ("-- sluice:irreversible", None),
                        ("-- sluice:irreversible   ", None),
                        (
                            "-- sluice:irreversible the old values are gone",
                            Some("the old values are gone"),
                        ),
                    ] {
                        let marked = format!("-- sluice:up\n{up}-- sluice:down\n{down}{mark}\n");
                        let line = marked.lines().count();
                        let m = parse(&marked).unwrap_or_else(|e| panic!("{marked:?}: {e}"));
                        assert!(m.down.is_none(), "{marked:?}");
                        assert_eq!(
                            m.irreversible,
                            Some(Irreversible::Marked {
                                line,
                                reason: reason.map(String::from)
                            }),
                            "{marked:?}"
                        );
                        checked += 1;
                    }
                }
            }
            // No down marker at all: irreversible, and the up part is still a no-op.
            for text in [format!("-- sluice:up\n{up}"), up.to_string()] {
                if text.contains("sluice:transaction") && !text.contains("sluice:up") {
                    continue;
                }
                let m = parse(&text).unwrap_or_else(|e| panic!("{text:?}: {e}"));
                assert!(m.down.is_none(), "{text:?}");
                assert_eq!(m.irreversible, Some(Irreversible::NoDownPart), "{text:?}");
            }
        }
        assert!(checked > 250, "{checked}");
        assert_eq!(
            Irreversible::Marked {
                line: 4,
                reason: Some("why".into())
            }
            .describe(),
            "it is marked `-- sluice:irreversible` (line 4): why"
        );
    }

    #[test]
    fn misplaced_irreversible_markers_are_errors() {
        for (text, needle) in [
            (
                "-- sluice:up\nSELECT 1;\n-- sluice:down\n-- sluice:irreversible\nSELECT 2;\n",
                "line 4: the down part is marked `-- sluice:irreversible` but also has SQL",
            ),
            (
                "-- sluice:up\nSELECT 1;\n-- sluice:down\nSELECT 2;\n-- sluice:irreversible why\n",
                "line 5: the down part is marked `-- sluice:irreversible` but also has SQL",
            ),
            (
                "-- sluice:up\n-- sluice:irreversible\nSELECT 1;\n",
                "line 2: `-- sluice:irreversible` outside the down part",
            ),
            (
                "-- sluice:irreversible\n-- sluice:up\nSELECT 1;\n",
                "line 1: `-- sluice:irreversible` outside the down part",
            ),
            (
                "-- sluice:irreversible\nSELECT 1;\n",
                "line 1: `-- sluice:irreversible` outside the down part",
            ),
            (
                "-- sluice:up\nSELECT 1;\n-- sluice:down\n-- sluice:irreversible\n-- sluice:irreversible\n",
                "line 5: a second `-- sluice:irreversible`",
            ),
            (
                "-- sluice:up\nSELECT 1;\n-- sluice:down\n-- sluice:irreversable\n",
                "line 4: unknown directive `-- sluice:irreversable`",
            ),
            (
                "-- sluice:up\nSELECT 1;\n-- sluice:down\n-- sluice: irreversible\n",
                "line 4: `-- sluice: irreversible` looks like a sluice directive",
            ),
            (
                "-- sluice:up\nSELECT 1;\n-- sluice:down\n-- SLUICE:IRREVERSIBLE\n",
                "line 4: `-- SLUICE:IRREVERSIBLE` looks like a sluice directive",
            ),
        ] {
            let e = parse(text).unwrap_err();
            assert!(e.to_string().contains(needle), "{text:?}: {e}");
            assert_eq!(e.exit_code(), crate::error::exit::BAD_INPUT);
        }
    }

    /// `sluice new` writes a file that parses, applies as a no-op and is irreversible until edited.
    #[test]
    fn new_template_is_a_no_op_marked_irreversible() {
        let m = parse(NEW_MIGRATION_TEMPLATE).unwrap();
        assert!(!has_sql(&m.up.sql));
        assert!(m.down.is_none());
        assert!(matches!(m.irreversible, Some(Irreversible::Marked { .. })));
    }

    #[test]
    fn directives() {
        let m = parse("-- sluice:up\n-- sluice:transaction per-statement\nCREATE INDEX CONCURRENTLY i ON t (a);\n-- sluice:down\nDROP INDEX i;\n").unwrap();
        assert_eq!(m.up.tx_directive, Some(TxMode::PerStatement));
        assert_eq!(m.down.unwrap().tx_directive, None);
        let m = parse(
            "-- sluice:transaction single\n-- sluice:up\nSELECT 1;\n-- sluice:down\nSELECT 2;\n",
        )
        .unwrap();
        assert_eq!(m.up.tx_directive, Some(TxMode::Single));
        assert_eq!(m.down.unwrap().tx_directive, Some(TxMode::Single));
    }

    #[test]
    fn bad_files_are_errors_with_line() {
        for (text, needle) in [
            (
                "-- sluice:up\nSELECT 1;\n-- sluice:trasnaction single\n",
                "line 3: unknown directive `-- sluice:trasnaction single`",
            ),
            (
                "-- sluice:up\n-- sluice:transaction maybe\nSELECT 1;\n",
                "line 2: `-- sluice:transaction maybe` is not a valid",
            ),
            ("-- sluice:down\nSELECT 1;\n", "comes before"),
            ("SELECT 0;\n-- sluice:up\nSELECT 1;\n", "belongs to no part"),
            (
                "-- sluice:up\nSELECT 1;\n-- sluice:up\n",
                "second `-- sluice:up`",
            ),
        ] {
            let e = parse(text).unwrap_err();
            assert!(e.to_string().contains(needle), "{text:?}: {e}");
            assert_eq!(e.exit_code(), crate::error::exit::BAD_INPUT);
        }
    }

    /// Every spelling of a marker that is not exactly one is an error, so the down SQL can never run
    /// as part of `up` (generated over comment styles, spacing, case, separators and placement).
    #[test]
    fn near_miss_markers_are_errors() {
        let prefixes = [
            "--",
            "---",
            "-- ",
            "--  ",
            "--\t",
            "#",
            "# ",
            "#  ",
            "/*",
            "/* ",
            "/** ",
            "SELECT 1; -- ",
            "SELECT 1; --",
            "SELECT 1; /* ",
            "  --",
            "\t-- ",
            "-- \u{200b}",
            "--\u{feff}",
            "--\u{2060} ",
            "# \u{ad}",
        ];
        let cases = ["sluice", "SLUICE", "Sluice", "sLuIcE"];
        let seps = [
            ":", ": ", " :", " : ", " ", "", "-", "_", "=", ".", "::", ":\t",
        ];
        let words = [
            "up",
            "down",
            "Down",
            "DOWN",
            "transaction single",
            "ignore r why",
            "irreversible",
            "Irreversible data is gone",
        ];
        let suffixes = ["", " */", " ", " -- note"];
        let mut checked = 0;
        for p in prefixes {
            for c in cases {
                for sep in seps {
                    for w in words {
                        for sfx in suffixes {
                            let line = format!("{p}{c}{sep}{w}{sfx}");
                            let exact = ["-- sluice:down", "-- sluice:up"].contains(&line.trim())
                                || line.trim().starts_with("-- sluice:transaction single")
                                || line.trim().starts_with("-- sluice:ignore r why");
                            if exact {
                                continue;
                            }
                            let text = format!("-- sluice:up\nSELECT 1;\n{line}\nDROP TABLE t;\n");
                            let e = parse(&text).expect_err(&line);
                            assert!(e.to_string().contains("line 3"), "{line:?}: {e}");
                            assert_eq!(e.exit_code(), crate::error::exit::BAD_INPUT);
                            checked += 1;
                        }
                    }
                }
            }
        }
        assert!(checked > 15_000, "{checked}");
        // Ordinary comments that merely mention sluice, or a word starting with it, stay comments.
        for ok in [
            "-- sluice runs this one online",
            "-- sluiceway",
            "-- the sluice:down part follows",
            "-- uses sluice",
            "/* sluice handles the index */ SELECT 2;",
            "# sluicegate",
        ] {
            let text = format!("-- sluice:up\nSELECT 1;\n{ok}\n-- sluice:down\nDROP TABLE t;\n");
            let m = parse(&text).unwrap_or_else(|e| panic!("{ok:?}: {e}"));
            assert!(!m.up.sql.contains("DROP"), "{ok:?}");
        }
    }

    #[test]
    fn versioned_directives() {
        let m = parse("-- sluice:up\n-- sluice:versioned down body::text\nALTER TABLE d ALTER COLUMN body TYPE jsonb;\n").unwrap();
        let (expr, after) = versioned_directive(&m.up.sql).unwrap();
        assert_eq!(expr, "body::text");
        assert!(m.up.sql[after..].starts_with("ALTER TABLE"));
        // One directive per column, each before its own statement.
        let m = parse("-- sluice:up\n-- sluice:versioned down body::text\nALTER TABLE d ALTER COLUMN body TYPE jsonb;\n-- sluice:versioned down meta::text\nALTER TABLE e ALTER COLUMN meta TYPE jsonb;\n").unwrap();
        let all = super::versioned_directives(&m.up.sql);
        assert_eq!(
            all.iter().map(|(e, _)| e.as_str()).collect::<Vec<_>>(),
            ["body::text", "meta::text"]
        );
        assert!(m.up.sql[all[1].1..].starts_with("ALTER TABLE e"));
        // No markers: the whole file is the up part.
        assert!(parse(
            "-- sluice:versioned down  lower(b) \nalter table d alter column b type citext;\n"
        )
        .is_ok());
        let bad = [
            ("-- sluice:up\n-- sluice:versioned down\nALTER TABLE d ALTER COLUMN b TYPE int;\n", "line 2: `-- sluice:versioned down` needs the down expression"),
            ("-- sluice:up\n-- sluice:versioned down b::text;\nALTER TABLE d ALTER COLUMN b TYPE int;\n", "line 2: the expression of `-- sluice:versioned down b::text;` ends with `;`"),
            ("-- sluice:up\n-- sluice:versioned down b::text -- back\nALTER TABLE d ALTER COLUMN b TYPE int;\n", "holds a comment (`--`)"),
            ("-- sluice:up\n-- sluice:versioned b::text\nALTER TABLE d ALTER COLUMN b TYPE int;\n", "line 2: `-- sluice:versioned b::text` is not a valid versioned directive"),
            ("-- sluice:up\n-- sluice:versioned\nALTER TABLE d ALTER COLUMN b TYPE int;\n", "is not a valid versioned directive"),
            ("-- sluice:up\n-- sluice:versioned down b\n\nALTER TABLE d ALTER COLUMN b TYPE int;\n", "line 2: `-- sluice:versioned` is not on the line right before"),
            ("-- sluice:up\n-- sluice:versioned down b\n", "is not on the line right before"),
            ("-- sluice:up\n-- sluice:versioned down b\n-- sluice:versioned down c\nALTER TABLE d ALTER COLUMN b TYPE int;\n", "line 2: `-- sluice:versioned` is not on the line right before"),
            ("-- sluice:up\nSELECT 1;\n-- sluice:down\n-- sluice:versioned down b\nALTER TABLE d ALTER COLUMN b TYPE int;\n", "line 4: `-- sluice:versioned` outside the up part"),
            ("-- sluice:up\n-- sluice versioned down b\nALTER TABLE d ALTER COLUMN b TYPE int;\n", "looks like a sluice directive"),
            ("-- sluice:up\n--sluice:versioned down b\nALTER TABLE d ALTER COLUMN b TYPE int;\n", "looks like a sluice directive"),
        ];
        for (text, want) in bad {
            let e = parse(text).unwrap_err().to_string();
            assert!(e.contains(want), "{text:?}: {e}");
        }
    }

    #[test]
    fn old_directives() {
        let m = parse("-- sluice:up\nALTER TABLE u ADD COLUMN f text;\nUPDATE u SET f = a || b;\n-- sluice:old a = split_part(f, ' ', 1)\n-- sluice:old \"B\"\"x\"=f\nALTER TABLE u DROP COLUMN a, DROP COLUMN \"B\"\"x\";\n").unwrap();
        let d = super::old_directives(&m.up.sql);
        assert_eq!(
            d.iter()
                .map(|d| (d.column.as_str(), d.expr.as_str()))
                .collect::<Vec<_>>(),
            [("a", "split_part(f, ' ', 1)"), ("B\"x", "f")]
        );
        assert!(m.up.sql[d[1].end..].starts_with("ALTER TABLE u DROP"));
        // MariaDB's quoted names: a space, a doubled backtick.
        let m = parse("-- sluice:up\n-- sluice:old `n m` = CONCAT(f, ' ')\n-- sluice:old `b``q`=f\nALTER TABLE u DROP COLUMN `n m`, DROP COLUMN `b``q`;\n").unwrap();
        assert_eq!(
            super::old_directives(&m.up.sql)
                .iter()
                .map(|d| (d.column.clone(), d.expr.clone()))
                .collect::<Vec<_>>(),
            [
                ("n m".to_string(), "CONCAT(f, ' ')".to_string()),
                ("b`q".to_string(), "f".to_string())
            ]
        );
        // Inside quotes, `;`, `--` and `/*` are the expression's own.
        let m = parse("-- sluice:up\n-- sluice:old a = f || ';--/*' || \"g--h\"\nALTER TABLE u DROP COLUMN a;\n").unwrap();
        assert_eq!(
            super::old_directives(&m.up.sql)[0].expr,
            "f || ';--/*' || \"g--h\""
        );
        let bad = [
            ("-- sluice:up\n-- sluice:old a\nALTER TABLE u DROP COLUMN a;\n", "line 2: `-- sluice:old a` is not a valid old directive"),
            ("-- sluice:up\n-- sluice:old = f\nALTER TABLE u DROP COLUMN a;\n", "is not a valid old directive"),
            ("-- sluice:up\n-- sluice:old a =\nALTER TABLE u DROP COLUMN a;\n", "is not a valid old directive"),
            ("-- sluice:up\n-- sluice:olda = f\nALTER TABLE u DROP COLUMN a;\n", "unknown directive"),
            ("-- sluice:up\n-- sluice:old a = f\n\nALTER TABLE u DROP COLUMN a;\n", "line 2: `-- sluice:old` is not on the lines right before"),
            ("-- sluice:up\nSELECT 1;\n-- sluice:down\n-- sluice:old a = f\nALTER TABLE u DROP COLUMN a;\n", "line 4: `-- sluice:old` outside the up part"),
            ("-- sluice:up\n-- sluice old a = f\nALTER TABLE u DROP COLUMN a;\n", "looks like a sluice directive"),
            ("-- sluice:up\n-- sluice:old a = f || 'x';\nALTER TABLE u DROP COLUMN a;\n", "line 2: the expression of `-- sluice:old a = f || 'x';` ends with `;`"),
            ("-- sluice:up\n-- sluice:old a = f ;  \nALTER TABLE u DROP COLUMN a;\n", "ends with `;`"),
            ("-- sluice:up\n-- sluice:old a = f -- the way back\nALTER TABLE u DROP COLUMN a;\n", "holds a comment (`--`)"),
            ("-- sluice:up\n-- sluice:old a = f /* back */\nALTER TABLE u DROP COLUMN a;\n", "holds a comment (`/*`)"),
        ];
        for (text, want) in bad {
            let e = parse(text).unwrap_err().to_string();
            assert!(e.contains(want), "{text:?}: {e}");
        }
    }

    #[test]
    fn ignore_directives_need_rule_and_reason() {
        let m = parse("-- sluice:up\n-- sluice:ignore require-concurrent-index-creation table is empty\nCREATE INDEX i ON t (a);\n").unwrap();
        assert_eq!(m.ignores.len(), 1);
        assert_eq!(m.ignores[0].rule, "require-concurrent-index-creation");
        assert_eq!(m.ignores[0].reason, "table is empty");
        assert_eq!(m.ignores[0].line, 2);
        let e = parse("-- sluice:up\n-- sluice:ignore some-rule\nSELECT 1;\n").unwrap_err();
        assert!(
            e.to_string().contains("needs a rule id and a reason"),
            "{e}"
        );
    }

    #[test]
    fn checksum_ignores_line_endings_only() {
        let lf = "-- sluice:up\nSELECT 1;\n";
        let crlf = "-- sluice:up\r\nSELECT 1;\r\n";
        assert_eq!(checksum(lf), checksum(crlf));
        assert_ne!(checksum(lf), checksum("-- sluice:up\nSELECT 2;\n"));
        assert_eq!(checksum("").len(), 64);
        assert_eq!(parse(crlf).unwrap().checksum, parse(lf).unwrap().checksum);
    }

    /// The library's discovery returns what the CLI applies, in its order: repeatables too, after
    /// every versioned migration, in their own order; in sluice's layout and in Flyway's.
    #[test]
    fn discovery_returns_repeatables_in_the_order_up_applies_them() {
        for (layout, files) in [
            (
                "sluice",
                &[
                    "R_views.sql",
                    "2_b.sql",
                    "R_a_funcs.sql",
                    "10_c.sql",
                    "1_a.sql",
                ][..],
            ),
            (
                "flyway",
                &[
                    "R__views.sql",
                    "V2__b.sql",
                    "R__a_funcs.sql",
                    "V1.10__c.sql",
                    "V1__a.sql",
                ][..],
            ),
        ] {
            let dir = std::env::temp_dir()
                .join(format!("sluice-disc-rep-{layout}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            for f in files {
                std::fs::write(dir.join(f), "SELECT 1;\n").unwrap();
            }
            let got: Vec<String> = discover(&dir).unwrap().iter().map(|m| m.label()).collect();
            let cli: Vec<String> = crate::layout::discover(&dir, None, None)
                .unwrap()
                .1
                .iter()
                .map(|m| m.label())
                .collect();
            assert_eq!(got, cli, "{layout}");
            let want: &[&str] = match layout {
                "sluice" => &["1_a", "2_b", "10_c", "R_a_funcs", "R_views"],
                _ => &["1_a", "1.10_c", "2_b", "R__a_funcs", "R__views"],
            };
            assert_eq!(got, want, "{layout}");
            let engine = crate::target::EngineKind::Postgres;
            assert_eq!(discover_for(&dir, engine).unwrap().len(), files.len());
            std::fs::remove_dir_all(&dir).unwrap();
        }
    }

    #[test]
    fn discovery_orders_by_version_and_rejects_bad_names() {
        let dir = std::env::temp_dir().join(format!("sluice-disc-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("10_b.sql"), "SELECT 10;").unwrap();
        std::fs::write(dir.join("9_a.sql"), "SELECT 9;").unwrap();
        std::fs::write(dir.join("0100_c.sql"), "SELECT 100;").unwrap();
        std::fs::write(dir.join("README.md"), "notes").unwrap();
        std::fs::write(dir.join(".9_hidden.sql"), "junk").unwrap();
        let v: Vec<i64> = discover(&dir).unwrap().iter().map(|m| m.version).collect();
        assert_eq!(v, vec![9, 10, 100]);

        std::fs::write(dir.join("0010_dup.sql"), "SELECT 1;").unwrap();
        let e = discover(&dir).unwrap_err().to_string();
        assert!(
            e.contains("version 10 is also used by") || e.contains("version 0010 is also used by"),
            "{e}"
        );
        std::fs::remove_file(dir.join("0010_dup.sql")).unwrap();

        // Each bad name is an error from both discovery entry points, never a skipped file.
        for bad in [
            "add_thing.sql",
            "11_upper.SQL",
            "12_mixed.Sql",
            "1234567890123456789_nineteen.sql",
            "13_Name.sql",
        ] {
            std::fs::write(dir.join(bad), "SELECT 1;").unwrap();
            for e in [
                discover(&dir).unwrap_err(),
                discover_paths(&dir).unwrap_err(),
            ] {
                assert!(
                    e.to_string().contains("malformed migration file name"),
                    "{bad}: {e}"
                );
                assert_eq!(e.exit_code(), crate::error::exit::BAD_INPUT);
            }
            std::fs::remove_file(dir.join(bad)).unwrap();
        }
        assert_eq!(discover(&dir).unwrap().len(), 3);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn new_names() {
        let t = chrono::DateTime::parse_from_rfc3339("2026-11-25T09:30:00Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        assert_eq!(
            new_file_name(t, "Add users email").unwrap(),
            "20261125093000_add_users_email.sql"
        );
        assert!(new_file_name(t, "  !! ").is_err());
        assert!(parse_file_name(&new_file_name(t, "x.y").unwrap()).is_ok());
    }
}
