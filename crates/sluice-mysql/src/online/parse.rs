//! A small reader for `ALTER TABLE` on MariaDB/MySQL: the table, and each clause with its kind and its
//! text (so the same clauses can be replayed on the shadow table). Only what the online path needs;
//! anything it does not recognise is `Other`, which the planner treats as needing a copy or refuses.

/// One token: a word (keyword or bare identifier), a quoted identifier, a string, a number, or a
/// punctuation character. `start..end` is its byte span in the statement.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Tok {
    kind: TokKind,
    text: String,
    start: usize,
    end: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TokKind {
    Word,
    Quoted,
    Str,
    Punct,
}

impl Tok {
    fn is(&self, kw: &str) -> bool {
        self.kind == TokKind::Word && self.text.eq_ignore_ascii_case(kw)
    }

    fn punct(&self, c: char) -> bool {
        self.kind == TokKind::Punct && self.text.len() == 1 && self.text.starts_with(c)
    }

    /// The name this token stands for (backticks removed), when it can be a name.
    fn name(&self) -> Option<String> {
        match self.kind {
            TokKind::Word | TokKind::Quoted => Some(self.text.clone()),
            _ => None,
        }
    }
}

/// How the server reads the statement: which executable comments (`/*!NNNNN … */`,
/// `/*M!NNNNNN … */`) it runs, and the sql_mode flags that change quoting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dialect {
    pub mariadb: bool,
    /// The server version as in executable comments: 10.11.6 → 101106.
    pub version: u32,
    /// Off under sql_mode NO_BACKSLASH_ESCAPES.
    pub backslash_escapes: bool,
    /// sql_mode ANSI_QUOTES: `"x"` is a name, not a string.
    pub ansi_quotes: bool,
}

impl Default for Dialect {
    fn default() -> Self {
        Dialect {
            mariadb: true,
            version: 101100,
            backslash_escapes: true,
            ansi_quotes: false,
        }
    }
}

impl Dialect {
    pub fn of(flavour: crate::introspect::Flavour, sql_mode: &str) -> Dialect {
        let (a, b, c) = flavour.version;
        let mode = |m: &str| {
            sql_mode
                .split(',')
                .any(|x| x.trim().eq_ignore_ascii_case(m))
        };
        Dialect {
            mariadb: flavour.is_mariadb(),
            version: a * 10000 + b * 100 + c,
            backslash_escapes: !mode("NO_BACKSLASH_ESCAPES"),
            ansi_quotes: mode("ANSI_QUOTES"),
        }
    }

    /// Whether the server runs an executable comment with this marker and version, as its lexer
    /// decides: MariaDB skips `/*!` comments versioned 50700–99999 (MySQL 5.7+ syntax) but not
    /// `/*M!` ones; MySQL treats `/*M!` as a plain comment.
    fn runs(&self, maria_marker: bool, version: Option<u32>) -> bool {
        if !self.mariadb && maria_marker {
            return false;
        }
        match version {
            None => true,
            Some(v) if self.mariadb => {
                v <= self.version && (!(50700..=99999).contains(&v) || maria_marker)
            }
            Some(v) => v <= self.version,
        }
    }
}

/// Skips a `/* … */` comment whose body starts at `i`; `nest` levels of inner `/* */` are allowed
/// (the server allows one inside a skipped versioned comment). Returns the index after `*/`.
fn skip_comment(b: &[u8], mut i: usize, nest: u32) -> Option<usize> {
    while i < b.len() {
        if nest > 0 && b[i] == b'/' && b.get(i + 1) == Some(&b'*') {
            i = skip_comment(b, i + 2, nest - 1)?;
            continue;
        }
        if b[i] == b'*' && b.get(i + 1) == Some(&b'/') {
            return Some(i + 2);
        }
        i += 1;
    }
    None
}

/// The statement's tokens as the server sees them: comments skipped, the content of executable
/// comments the server runs kept, the rest of them skipped. Also the end of the last executable
/// comment (its `*/` must stay when the statement is cut after its last token). On text the
/// server would reject or that sluice cannot read the same way (an unterminated quote or
/// comment, an executable comment inside another), the tokens so far and why.
fn tokenize(sql: &str, d: Dialect) -> (Vec<Tok>, usize, Option<String>) {
    let b = sql.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    // Inside an executable comment the server runs: its `*/` ends it.
    let mut exec_at: Option<usize> = None;
    let mut exec_end = 0;
    let line_comment = |i: usize| {
        let mut j = i;
        while j < b.len() && b[j] != b'\n' {
            j += 1;
        }
        j
    };
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_whitespace() {
            i += 1;
        } else if c == b'#'
            || (c == b'-'
                && b.get(i + 1) == Some(&b'-')
                // `--` starts a comment only before whitespace, a control character or the end.
                && b.get(i + 2).is_none_or(|&n| n.is_ascii_whitespace() || n.is_ascii_control()))
        {
            i = line_comment(i);
        } else if c == b'/' && b.get(i + 1) == Some(&b'*') {
            let maria = b.get(i + 2) == Some(&b'M') && b.get(i + 3) == Some(&b'!');
            if b.get(i + 2) == Some(&b'!') || maria {
                if exec_at.is_some() {
                    return (
                        out,
                        exec_end,
                        Some(format!("an executable comment inside another at byte {i}")),
                    );
                }
                let mut j = i + if maria { 4 } else { 3 };
                let digits = b[j..].iter().take_while(|x| x.is_ascii_digit()).count();
                let version = if digits >= 5 {
                    let len = if digits >= 6 && (d.mariadb || d.version >= 80034) {
                        6
                    } else {
                        5
                    };
                    let v = sql[j..j + len].parse::<u32>().ok();
                    j += len;
                    v
                } else {
                    None
                };
                if d.runs(maria, version) {
                    exec_at = Some(i);
                    i = j;
                } else {
                    let nest = if version.is_some() { 1 } else { 0 };
                    match skip_comment(b, j, nest) {
                        Some(e) => i = e,
                        None => {
                            return (
                                out,
                                exec_end,
                                Some(format!("an unterminated comment at byte {i}")),
                            )
                        }
                    }
                }
            } else {
                match skip_comment(b, i + 2, 0) {
                    Some(e) => i = e,
                    None => {
                        return (
                            out,
                            exec_end,
                            Some(format!("an unterminated comment at byte {i}")),
                        )
                    }
                }
            }
        } else if c == b'*' && b.get(i + 1) == Some(&b'/') && exec_at.is_some() {
            exec_at = None;
            i += 2;
            exec_end = i;
        } else if c == b'`' || (c == b'"' && d.ansi_quotes) {
            let start = i;
            let mut text = String::new();
            i += 1;
            let mut seg = i;
            let mut closed = false;
            while i < b.len() {
                if b[i] == c {
                    if b.get(i + 1) == Some(&c) {
                        text.push_str(&sql[seg..=i]);
                        i += 2;
                        seg = i;
                        continue;
                    }
                    closed = true;
                    break;
                }
                i += 1;
            }
            if !closed {
                return (
                    out,
                    exec_end,
                    Some(format!("an unterminated quoted name at byte {start}")),
                );
            }
            text.push_str(&sql[seg..i]);
            i += 1;
            out.push(Tok {
                kind: TokKind::Quoted,
                text,
                start,
                end: i,
            });
        } else if c == b'\'' || c == b'"' {
            let start = i;
            i += 1;
            let mut closed = false;
            while i < b.len() {
                if b[i] == b'\\' && d.backslash_escapes {
                    i += 2;
                    continue;
                }
                if b[i] == c {
                    if b.get(i + 1) == Some(&c) {
                        i += 2;
                        continue;
                    }
                    closed = true;
                    break;
                }
                i += 1;
            }
            if !closed {
                return (
                    out,
                    exec_end,
                    Some(format!("an unterminated string at byte {start}")),
                );
            }
            i += 1;
            out.push(Tok {
                kind: TokKind::Str,
                text: sql[start..i].to_string(),
                start,
                end: i,
            });
        } else if c.is_ascii_alphanumeric() || c == b'_' || c == b'$' || c >= 0x80 {
            let start = i;
            while i < b.len()
                && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b'$' || b[i] >= 0x80)
            {
                i += 1;
            }
            out.push(Tok {
                kind: TokKind::Word,
                text: sql[start..i].to_string(),
                start,
                end: i,
            });
        } else {
            // One character: a multi-byte one cannot start here (>= 0x80 is a word).
            out.push(Tok {
                kind: TokKind::Punct,
                text: (c as char).to_string(),
                start: i,
                end: i + 1,
            });
            i += 1;
        }
    }
    if let Some(at) = exec_at {
        return (
            out,
            exec_end,
            Some(format!("an unterminated executable comment at byte {at}")),
        );
    }
    (out, exec_end, None)
}

/// Where an added or moved column goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Position {
    Last,
    First,
    After(String),
}

/// A column definition as written in ADD/MODIFY/CHANGE.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ColumnDef {
    /// The type, lower-cased and without spaces, e.g. `varchar(20)`, `bigint`, `int unsigned` →
    /// `intunsigned`.
    pub data_type: String,
    pub not_null: bool,
    pub default: Option<String>,
    pub charset: Option<String>,
    pub collation: Option<String>,
    pub auto_increment: bool,
    pub generated_stored: bool,
    pub generated_virtual: bool,
    /// PRIMARY KEY / UNIQUE written inline.
    pub inline_key: bool,
    pub references: bool,
    pub check: bool,
    /// The BINARY attribute: the `_bin` collation of the column's character set.
    pub binary: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClauseKind {
    AddColumn {
        name: String,
        def: ColumnDef,
        position: Position,
    },
    DropColumn {
        name: String,
    },
    RenameColumn {
        from: String,
        to: String,
    },
    /// MODIFY (from == to) or CHANGE.
    ChangeColumn {
        from: String,
        to: String,
        def: ColumnDef,
        position: Position,
    },
    SetDefault {
        column: String,
    },
    DropDefault {
        column: String,
    },
    AddIndex {
        unique: bool,
        /// FULLTEXT or SPATIAL: never LOCK=NONE.
        special: bool,
        /// FULLTEXT (the table then has one: every later rebuild needs LOCK=SHARED).
        fulltext: bool,
    },
    AddPrimaryKey,
    DropPrimaryKey,
    DropIndex {
        name: String,
    },
    RenameIndex,
    AddForeignKey,
    DropForeignKey,
    /// `ALTER INDEX name [NOT] IGNORED / VISIBLE / INVISIBLE`.
    AlterIndex,
    AddCheck,
    DropConstraint,
    ConvertCharset,
    /// `[DEFAULT] CHARACTER SET / CHARSET / COLLATE [=] x`: the table's default for new columns only.
    TableCharset,
    /// ENGINE=InnoDB, FORCE, ROW_FORMAT=...: a rebuild.
    Rebuild,
    /// COMMENT=...: metadata only.
    TableComment,
    AutoIncrementValue,
    /// ALGORITHM= / LOCK= written by the user.
    AlgorithmOrLock,
    /// RENAME [TO|AS] other table.
    RenameTable,
    Partition,
    Other,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Clause {
    pub kind: ClauseKind,
    /// The clause as written.
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlterTable {
    pub schema: Option<String>,
    pub table: String,
    /// The statement as written, up to its last token (or the `*/` of its last executable
    /// comment): a trailing `;` or comment dropped.
    pub text: String,
    /// Where the table name (with its schema) is in `text`.
    pub name_span: (usize, usize),
    /// The clauses the server reads, executable comments included.
    pub clauses: Vec<Clause>,
    /// ALTER ONLINE / ALTER IGNORE: run as written.
    pub modifiers: bool,
}

impl AlterTable {
    /// The statement as written, run on another table of the same database (`table` quoted):
    /// every clause, comment and executable comment stays exactly as the server reads it.
    pub fn on(&self, table: &str) -> String {
        format!(
            "{}{table}{}",
            &self.text[..self.name_span.0],
            &self.text[self.name_span.1..]
        )
    }

    /// `on(table)` with sluice's `ALGORITHM=…` clause added.
    pub fn on_with(&self, table: &str, clause: &str) -> String {
        let sep = if self.clauses.is_empty() { " " } else { ", " };
        format!("{}{sep}{clause}", self.on(table))
    }
}

/// Why sluice cannot read an ALTER TABLE the way the server does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unreadable(pub String);

/// Words that end a column type in a column definition.
const TYPE_END: &[&str] = &[
    "NOT",
    "NULL",
    "DEFAULT",
    "AUTO_INCREMENT",
    "COMMENT",
    "CHARACTER",
    "CHARSET",
    "COLLATE",
    "UNIQUE",
    "PRIMARY",
    "KEY",
    "FIRST",
    "AFTER",
    "GENERATED",
    "AS",
    "INVISIBLE",
    "CHECK",
    "REFERENCES",
    "ON",
    "CONSTRAINT",
    "PERSISTENT",
    "STORED",
    "VIRTUAL",
];

/// Parses with the default dialect (MariaDB 10.11, default sql_mode); None when the statement is
/// not a single-table ALTER TABLE or cannot be read.
pub fn parse(sql: &str) -> Option<AlterTable> {
    parse_as(sql, Dialect::default()).ok().flatten()
}

/// Parses `ALTER [ONLINE] [IGNORE] TABLE [IF EXISTS] name clause, clause...` as the server of
/// `dialect` reads it. Ok(None) when the statement is not a single-table ALTER TABLE; an error
/// when it is one sluice cannot read the way the server would.
pub fn parse_as(sql: &str, dialect: Dialect) -> Result<Option<AlterTable>, Unreadable> {
    let (toks, exec_end, problem) = tokenize(sql, dialect);
    let head = |toks: &[Tok]| -> Option<usize> {
        let mut i = 0;
        if !toks.first()?.is("ALTER") {
            return None;
        }
        i += 1;
        while toks.get(i)?.is("ONLINE") || toks.get(i)?.is("IGNORE") {
            i += 1;
        }
        toks.get(i)?.is("TABLE").then_some(i + 1)
    };
    let Some(mut i) = head(&toks) else {
        return Ok(None);
    };
    if let Some(p) = problem {
        return Err(Unreadable(p));
    }
    let modifiers = !toks[1].is("TABLE");
    let Some(t) = toks.get(i) else {
        return Ok(None);
    };
    if t.is("IF") && toks.get(i + 1).is_some_and(|t| t.is("EXISTS")) {
        i += 2;
    }
    let Some(first) = toks.get(i).and_then(|t| t.name()) else {
        return Ok(None);
    };
    let name_start = toks[i].start;
    i += 1;
    let (schema, table) = if toks.get(i).is_some_and(|t| t.punct('.')) {
        let Some(t) = toks.get(i + 1).and_then(|t| t.name()) else {
            return Ok(None);
        };
        i += 2;
        (Some(first), t)
    } else {
        (None, first)
    };
    let name_end = toks[i - 1].end;
    // The statement ends at its last token: a trailing comment must not swallow the
    // `, ALGORITHM=...` sluice appends; an executable comment keeps its `*/`.
    let last = toks
        .iter()
        .rev()
        .find(|t| !t.punct(';'))
        .map(|t| t.end)
        .unwrap_or(sql.len());
    let text = sql[..last.max(exec_end)].to_string();
    // Split the rest into clauses at top-level commas.
    let mut clauses = Vec::new();
    let mut depth = 0i32;
    let body: Vec<&Tok> = toks[i..].iter().filter(|t| !t.punct(';')).collect();
    let mut current: Vec<&Tok> = Vec::new();
    for t in body {
        if t.punct('(') {
            depth += 1;
        } else if t.punct(')') {
            depth -= 1;
        }
        if depth == 0 && t.punct(',') {
            if !current.is_empty() {
                clauses.push(clause(sql, &current));
            }
            current.clear();
            continue;
        }
        current.push(t);
    }
    if !current.is_empty() {
        clauses.push(clause(sql, &current));
    }
    Ok(Some(AlterTable {
        schema,
        table,
        text,
        name_span: (name_start, name_end),
        clauses,
        modifiers,
    }))
}

fn clause(sql: &str, toks: &[&Tok]) -> Clause {
    let text = sql[toks[0].start..toks[toks.len() - 1].end].to_string();
    Clause {
        kind: classify(toks),
        text,
    }
}

fn word(toks: &[&Tok], i: usize, kw: &str) -> bool {
    toks.get(i).is_some_and(|t| t.is(kw))
}

fn classify(t: &[&Tok]) -> ClauseKind {
    let mut i;
    let name_at = |i: usize| t.get(i).and_then(|x| x.name());
    if word(t, 0, "ALGORITHM") || word(t, 0, "LOCK") {
        return ClauseKind::AlgorithmOrLock;
    }
    if word(t, 0, "ADD") {
        i = 1;
        if word(t, i, "CONSTRAINT") {
            // ADD CONSTRAINT [name] <PRIMARY KEY | UNIQUE | FOREIGN KEY | CHECK>
            i += 1;
            if !(word(t, i, "PRIMARY")
                || word(t, i, "UNIQUE")
                || word(t, i, "FOREIGN")
                || word(t, i, "CHECK"))
            {
                i += 1;
            }
        }
        if word(t, i, "PRIMARY") {
            return ClauseKind::AddPrimaryKey;
        }
        if word(t, i, "FOREIGN") {
            return ClauseKind::AddForeignKey;
        }
        if word(t, i, "CHECK") {
            return ClauseKind::AddCheck;
        }
        if word(t, i, "UNIQUE") {
            return ClauseKind::AddIndex {
                unique: true,
                special: false,
                fulltext: false,
            };
        }
        if word(t, i, "INDEX") || word(t, i, "KEY") {
            return ClauseKind::AddIndex {
                unique: false,
                special: false,
                fulltext: false,
            };
        }
        if word(t, i, "FULLTEXT") || word(t, i, "SPATIAL") {
            return ClauseKind::AddIndex {
                unique: false,
                special: true,
                fulltext: word(t, i, "FULLTEXT"),
            };
        }
        if word(t, i, "PARTITION") {
            return ClauseKind::Partition;
        }
        if word(t, i, "COLUMN") {
            i += 1;
        }
        if word(t, i, "IF") && word(t, i + 1, "NOT") && word(t, i + 2, "EXISTS") {
            i += 3;
        }
        if t.get(i).is_some_and(|x| x.punct('(')) {
            // ADD (a INT, b INT): several columns at once; rare, leave to the general path.
            return ClauseKind::Other;
        }
        let Some(name) = name_at(i) else {
            return ClauseKind::Other;
        };
        let (def, position) = column_def(&t[i + 1..]);
        return ClauseKind::AddColumn {
            name,
            def,
            position,
        };
    }
    if word(t, 0, "DROP") {
        i = 1;
        if word(t, i, "PRIMARY") {
            return ClauseKind::DropPrimaryKey;
        }
        if word(t, i, "INDEX") || word(t, i, "KEY") {
            i += 1;
            if word(t, i, "IF") && word(t, i + 1, "EXISTS") {
                i += 2;
            }
            return ClauseKind::DropIndex {
                name: name_at(i).unwrap_or_default(),
            };
        }
        if word(t, i, "FOREIGN") {
            return ClauseKind::DropForeignKey;
        }
        if word(t, i, "CONSTRAINT") || word(t, i, "CHECK") {
            return ClauseKind::DropConstraint;
        }
        if word(t, i, "PARTITION") {
            return ClauseKind::Partition;
        }
        if word(t, i, "COLUMN") {
            i += 1;
        }
        if word(t, i, "IF") && word(t, i + 1, "EXISTS") {
            i += 2;
        }
        return match name_at(i) {
            Some(name) if t.len() == i + 1 => ClauseKind::DropColumn { name },
            _ => ClauseKind::Other,
        };
    }
    if word(t, 0, "MODIFY") || word(t, 0, "CHANGE") {
        let change = word(t, 0, "CHANGE");
        i = 1;
        if word(t, i, "COLUMN") {
            i += 1;
        }
        if word(t, i, "IF") && word(t, i + 1, "EXISTS") {
            i += 2;
        }
        let Some(from) = name_at(i) else {
            return ClauseKind::Other;
        };
        i += 1;
        let to = if change {
            let Some(to) = name_at(i) else {
                return ClauseKind::Other;
            };
            i += 1;
            to
        } else {
            from.clone()
        };
        let (def, position) = column_def(&t[i..]);
        return ClauseKind::ChangeColumn {
            from,
            to,
            def,
            position,
        };
    }
    if word(t, 0, "ALTER") && (word(t, 1, "INDEX") || word(t, 1, "KEY")) {
        return ClauseKind::AlterIndex;
    }
    if word(t, 0, "ALTER") {
        i = 1;
        if word(t, i, "COLUMN") {
            i += 1;
        }
        let Some(column) = name_at(i) else {
            return ClauseKind::Other;
        };
        if word(t, i + 1, "SET") && word(t, i + 2, "DEFAULT") {
            return ClauseKind::SetDefault { column };
        }
        if word(t, i + 1, "DROP") && word(t, i + 2, "DEFAULT") {
            return ClauseKind::DropDefault { column };
        }
        return ClauseKind::Other;
    }
    if word(t, 0, "RENAME") {
        if word(t, 1, "COLUMN") {
            if let (Some(from), true, Some(to)) = (name_at(2), word(t, 3, "TO"), name_at(4)) {
                return ClauseKind::RenameColumn { from, to };
            }
            return ClauseKind::Other;
        }
        if word(t, 1, "INDEX") || word(t, 1, "KEY") {
            return ClauseKind::RenameIndex;
        }
        return ClauseKind::RenameTable;
    }
    if word(t, 0, "CONVERT") {
        return ClauseKind::ConvertCharset;
    }
    if word(t, 0, "DEFAULT")
        || word(t, 0, "CHARACTER")
        || word(t, 0, "CHARSET")
        || word(t, 0, "COLLATE")
    {
        // Only the defaults, and nothing else in the clause (table options may follow one
        // another without a comma): new columns get them, existing ones keep theirs.
        // `[DEFAULT] {CHARACTER SET | CHARSET | COLLATE} [=] name`, each once or more, and
        // `COMMENT [=] 'text'` (metadata as well).
        let w: Vec<&&Tok> = t.iter().filter(|x| !x.punct('=')).collect();
        let mut k = 0;
        let mut options = 0;
        while k < w.len() {
            if w[k].is("DEFAULT") {
                k += 1;
            }
            if w.get(k).is_some_and(|x| x.is("CHARACTER"))
                && w.get(k + 1).is_some_and(|x| x.is("SET"))
            {
                k += 2;
            } else if w.get(k).is_some_and(|x| x.is("CHARSET") || x.is("COLLATE")) {
                k += 1;
            } else if options > 0 && w.get(k).is_some_and(|x| x.is("COMMENT")) {
                if w.get(k + 1).is_some_and(|x| x.kind == TokKind::Str) {
                    k += 2;
                    continue;
                }
                break;
            } else {
                break;
            }
            if w.get(k).and_then(|x| x.name()).is_none() {
                break;
            }
            k += 1;
            options += 1;
        }
        let simple = options > 0 && k == w.len();
        return if simple {
            ClauseKind::TableCharset
        } else {
            ClauseKind::ConvertCharset
        };
    }
    if word(t, 0, "ENGINE") || word(t, 0, "FORCE") || word(t, 0, "ROW_FORMAT") {
        return ClauseKind::Rebuild;
    }
    if word(t, 0, "COMMENT") {
        return ClauseKind::TableComment;
    }
    if word(t, 0, "AUTO_INCREMENT") {
        return ClauseKind::AutoIncrementValue;
    }
    if t.iter().any(|x| x.is("PARTITION") || x.is("PARTITIONING")) {
        return ClauseKind::Partition;
    }
    ClauseKind::Other
}

/// Reads a column definition (after the column name) and its position.
fn column_def(t: &[&Tok]) -> (ColumnDef, Position) {
    let mut def = ColumnDef::default();
    let mut i = 0;
    // The type: everything up to the first attribute keyword at depth 0.
    let mut depth = 0;
    let mut ty = String::new();
    while let Some(x) = t.get(i) {
        // BINARY after a type is the attribute (`VARCHAR(20) BINARY`); first, it is the type.
        let attribute = TYPE_END.iter().any(|k| x.is(k)) || (i > 0 && x.is("BINARY"));
        if depth == 0 && x.kind == TokKind::Word && attribute {
            break;
        }
        if x.punct('(') {
            depth += 1;
        } else if x.punct(')') {
            depth -= 1;
        }
        ty.push_str(&x.text.to_ascii_lowercase());
        i += 1;
    }
    def.data_type = ty;
    let mut position = Position::Last;
    while let Some(x) = t.get(i) {
        if x.is("NOT") && word(t, i + 1, "NULL") {
            def.not_null = true;
            i += 2;
            continue;
        }
        if x.is("DEFAULT") {
            if let Some(v) = t.get(i + 1) {
                def.default = Some(v.text.clone());
            }
            i += 2;
            continue;
        }
        if x.is("AUTO_INCREMENT") {
            def.auto_increment = true;
        } else if x.is("BINARY") {
            def.binary = true;
        } else if x.is("CHARACTER") && word(t, i + 1, "SET") {
            def.charset = t
                .get(i + 2)
                .and_then(|n| n.name())
                .map(|s| s.to_lowercase());
            i += 3;
            continue;
        } else if x.is("CHARSET") {
            def.charset = t
                .get(i + 1)
                .and_then(|n| n.name())
                .map(|s| s.to_lowercase());
            i += 2;
            continue;
        } else if x.is("COLLATE") {
            def.collation = t
                .get(i + 1)
                .and_then(|n| n.name())
                .map(|s| s.to_lowercase());
            i += 2;
            continue;
        } else if x.is("STORED") || x.is("PERSISTENT") {
            def.generated_stored = true;
        } else if x.is("VIRTUAL") {
            def.generated_virtual = true;
        } else if x.is("AS") && !def.generated_stored {
            // `AS (expr)` without STORED/PERSISTENT is VIRTUAL unless a later word says otherwise.
            def.generated_virtual = true;
        } else if x.is("PRIMARY") || x.is("UNIQUE") {
            def.inline_key = true;
        } else if x.is("REFERENCES") {
            def.references = true;
        } else if x.is("CHECK") {
            def.check = true;
        } else if x.is("FIRST") {
            position = Position::First;
        } else if x.is("AFTER") {
            if let Some(n) = t.get(i + 1).and_then(|n| n.name()) {
                position = Position::After(n);
            }
            i += 2;
            continue;
        } else if x.punct('(') {
            // Skip a parenthesised expression (generated column, CHECK, DEFAULT (expr)).
            let mut d = 0;
            while let Some(y) = t.get(i) {
                if y.punct('(') {
                    d += 1;
                } else if y.punct(')') {
                    d -= 1;
                    if d == 0 {
                        break;
                    }
                }
                i += 1;
            }
        }
        i += 1;
    }
    if def.generated_stored {
        def.generated_virtual = false;
    }
    (def, position)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_table_and_clauses() {
        let a = parse("ALTER TABLE `we``ird`.accounts MODIFY balance BIGINT NOT NULL, ADD COLUMN note VARCHAR(20) DEFAULT 'a,b' AFTER id;").unwrap();
        assert_eq!(a.schema.as_deref(), Some("we`ird"));
        assert_eq!(a.table, "accounts");
        assert_eq!(a.clauses.len(), 2);
        assert_eq!(
            a.on("`x`"),
            "ALTER TABLE `x` MODIFY balance BIGINT NOT NULL, ADD COLUMN note VARCHAR(20) DEFAULT 'a,b' AFTER id"
        );
        match &a.clauses[0].kind {
            ClauseKind::ChangeColumn { from, to, def, .. } => {
                assert_eq!((from.as_str(), to.as_str()), ("balance", "balance"));
                assert_eq!(def.data_type, "bigint");
                assert!(def.not_null);
            }
            k => panic!("{k:?}"),
        }
        match &a.clauses[1].kind {
            ClauseKind::AddColumn {
                name,
                def,
                position,
            } => {
                assert_eq!(name, "note");
                assert_eq!(def.data_type, "varchar(20)");
                assert_eq!(def.default.as_deref(), Some("'a,b'"));
                assert_eq!(position, &Position::After("id".into()));
            }
            k => panic!("{k:?}"),
        }
    }

    #[test]
    fn classifies_common_clauses() {
        let k = |s: &str| {
            parse(&format!("ALTER TABLE t {s}")).unwrap().clauses[0]
                .kind
                .clone()
        };
        assert_eq!(
            k("DROP COLUMN a"),
            ClauseKind::DropColumn { name: "a".into() }
        );
        assert_eq!(k("DROP a"), ClauseKind::DropColumn { name: "a".into() });
        assert_eq!(
            k("RENAME COLUMN a TO b"),
            ClauseKind::RenameColumn {
                from: "a".into(),
                to: "b".into()
            }
        );
        assert_eq!(k("RENAME TO u"), ClauseKind::RenameTable);
        assert_eq!(
            k("ADD UNIQUE INDEX u (a)"),
            ClauseKind::AddIndex {
                unique: true,
                special: false,
                fulltext: false
            }
        );
        assert_eq!(
            k("ADD CONSTRAINT fk FOREIGN KEY (a) REFERENCES p (id)"),
            ClauseKind::AddForeignKey
        );
        assert_eq!(k("ADD CONSTRAINT c CHECK (a > 0)"), ClauseKind::AddCheck);
        assert_eq!(
            k("ADD FULLTEXT INDEX f (a)"),
            ClauseKind::AddIndex {
                unique: false,
                special: true,
                fulltext: true
            }
        );
        assert_eq!(k("ALGORITHM=INPLACE"), ClauseKind::AlgorithmOrLock);
        assert_eq!(
            k("ALTER COLUMN a SET DEFAULT 3"),
            ClauseKind::SetDefault { column: "a".into() }
        );
        assert_eq!(
            k("CONVERT TO CHARACTER SET utf8mb4"),
            ClauseKind::ConvertCharset
        );
        assert_eq!(k("DROP PARTITION p1"), ClauseKind::Partition);
        // Only the table's defaults (and a comment): metadata. Anything more is not.
        for only_defaults in [
            "DEFAULT CHARSET = latin1",
            "CHARACTER SET utf8mb4 COLLATE utf8mb4_bin",
            "DEFAULT COLLATE = utf8mb4_bin",
            "CHARSET latin1 COMMENT = 'x'",
        ] {
            assert_eq!(
                k(only_defaults),
                ClauseKind::TableCharset,
                "{only_defaults}"
            );
        }
        for more in [
            "DEFAULT CHARSET = latin1 ENGINE = InnoDB",
            "CHARSET latin1 AUTO_INCREMENT = 5",
            "DEFAULT CHARSET",
        ] {
            assert_eq!(k(more), ClauseKind::ConvertCharset, "{more}");
        }
        assert_eq!(k("ALTER INDEX i IGNORED"), ClauseKind::AlterIndex);
        assert_eq!(k("ALTER KEY i NOT IGNORED"), ClauseKind::AlterIndex);
        // BINARY after a type is the `_bin` collation; as the type it stays the type.
        for (clause, ty, binary) in [
            ("MODIFY a VARCHAR(20) BINARY", "varchar(20)", true),
            ("MODIFY a BINARY(16)", "binary(16)", false),
            ("MODIFY a BINARY(16) NOT NULL", "binary(16)", false),
        ] {
            match k(clause) {
                ClauseKind::ChangeColumn { def, .. } => {
                    assert_eq!(
                        (def.data_type.as_str(), def.binary),
                        (ty, binary),
                        "{clause}"
                    )
                }
                other => panic!("{clause}: {other:?}"),
            }
        }
        match k("CHANGE a b INT UNSIGNED NULL COMMENT 'x' FIRST") {
            ClauseKind::ChangeColumn {
                from,
                to,
                def,
                position,
            } => {
                assert_eq!((from.as_str(), to.as_str()), ("a", "b"));
                assert_eq!(def.data_type, "intunsigned");
                assert!(!def.not_null);
                assert_eq!(position, Position::First);
            }
            k => panic!("{k:?}"),
        }
        match k("ADD COLUMN g INT AS (a + 1) STORED") {
            ClauseKind::AddColumn { def, .. } => {
                assert!(def.generated_stored && !def.generated_virtual)
            }
            k => panic!("{k:?}"),
        }
    }

    #[test]
    fn a_trailing_comment_is_not_part_of_the_clauses() {
        let a = parse("ALTER TABLE t ADD COLUMN c INT -- why\n").unwrap();
        assert_eq!(
            a.on_with("s", "LOCK=NONE"),
            "ALTER TABLE s ADD COLUMN c INT, LOCK=NONE"
        );
        let a = parse("ALTER TABLE t ADD COLUMN c INT # why").unwrap();
        assert_eq!(a.on("s"), "ALTER TABLE s ADD COLUMN c INT");
        let a = parse("ALTER TABLE t /*!999999 ADD c INT */").unwrap();
        assert_eq!(a.on_with("s", "LOCK=NONE"), "ALTER TABLE s LOCK=NONE");
    }

    fn kinds(sql: &str, d: Dialect) -> Vec<String> {
        parse_as(sql, d)
            .unwrap()
            .unwrap()
            .clauses
            .iter()
            .map(|c| {
                format!("{:?}", c.kind)
                    .split([' ', '{'])
                    .next()
                    .unwrap()
                    .to_string()
            })
            .collect()
    }

    /// Executable comments are read per server flavour and version, as the server's lexer does.
    #[test]
    fn executable_comments_follow_the_server_version() {
        let m = |v: u32| Dialect {
            version: v,
            ..Dialect::default()
        };
        let my = Dialect {
            mariadb: false,
            version: 80036,
            ..Dialect::default()
        };
        let sql = "ALTER TABLE t ADD c INT /*!100000 , MODIFY d BIGINT */";
        assert_eq!(kinds(sql, m(101106)), ["AddColumn", "ChangeColumn"]);
        assert_eq!(kinds(sql, m(90000)), ["AddColumn"]);
        // Versioned 50700..99999: MySQL 5.7+ syntax, skipped by MariaDB unless marked M.
        let sql = "ALTER TABLE t ADD c INT /*!50700 , DROP d */";
        assert_eq!(kinds(sql, m(101106)), ["AddColumn"]);
        assert_eq!(kinds(sql, my), ["AddColumn", "DropColumn"]);
        let sql = "ALTER TABLE t ADD c INT /*M!50700 , DROP d */";
        assert_eq!(kinds(sql, m(101106)), ["AddColumn", "DropColumn"]);
        assert_eq!(kinds(sql, my), ["AddColumn"]);
        let sql = "ALTER TABLE t ADD c INT /*M!, DROP d */";
        assert_eq!(kinds(sql, m(101106)), ["AddColumn", "DropColumn"]);
        let sql = "ALTER TABLE t ADD c INT /*!, DROP d */";
        assert_eq!(kinds(sql, my), ["AddColumn", "DropColumn"]);
        // A skipped versioned comment may hold one plain comment; its `*/` does not end it.
        let sql = "ALTER TABLE t ADD c INT /*!999999 , DROP /* x */ d */, DROP e";
        assert_eq!(kinds(sql, m(101106)), ["AddColumn", "DropColumn"]);
        // A `*/` inside a string of a run comment does not end it.
        let sql = "ALTER TABLE t /*!100000 ADD c VARCHAR(5) DEFAULT '*/', DROP d */";
        assert_eq!(kinds(sql, m(101106)), ["AddColumn", "DropColumn"]);
        let a = parse_as(sql, m(101106)).unwrap().unwrap();
        assert_eq!(
            a.on_with("s", "LOCK=NONE"),
            format!("{}, LOCK=NONE", sql.replacen(" t ", " s ", 1))
        );
    }

    #[test]
    fn comments_are_read_as_the_server_reads_them() {
        let d = Dialect::default();
        // `--` is a comment only before whitespace or a control character.
        assert_eq!(
            kinds("ALTER TABLE t ADD c INT -- , DROP d\n, DROP e", d),
            ["AddColumn", "DropColumn"]
        );
        assert_eq!(
            kinds("ALTER TABLE t ADD c INT --\t, DROP d", d),
            ["AddColumn"]
        );
        assert_eq!(kinds("ALTER TABLE t ADD c INT --", d), ["AddColumn"]);
        let a = parse_as("ALTER TABLE t ADD c INT --x, DROP d", d)
            .unwrap()
            .unwrap();
        assert_eq!(a.clauses.len(), 2);
        assert_eq!(a.clauses[0].text, "ADD c INT --x");
        assert_eq!(
            kinds("ALTER TABLE t ADD c INT # , DROP d\n, DROP e", d),
            ["AddColumn", "DropColumn"]
        );
        assert_eq!(
            kinds("ALTER TABLE t ADD c VARCHAR(3) DEFAULT '#--', DROP d", d),
            ["AddColumn", "DropColumn"]
        );
        assert_eq!(
            kinds("ALTER TABLE t ADD `c#--` INT, DROP d", d),
            ["AddColumn", "DropColumn"]
        );
        // Quotes: a backslash escapes unless NO_BACKSLASH_ESCAPES; ANSI_QUOTES makes "x" a name.
        let sql = "ALTER TABLE t ADD c VARCHAR(3) DEFAULT 'a\\', DROP d', DROP e";
        assert_eq!(kinds(sql, d), ["AddColumn", "DropColumn"]);
        let nb = Dialect {
            backslash_escapes: false,
            ..d
        };
        // There the string ends at `\'`, and the last quote opens one that never closes.
        assert!(parse_as(sql, nb).is_err());
        let sql = "ALTER TABLE t ADD c VARCHAR(3) DEFAULT 'a\\', DROP d, DROP e";
        assert_eq!(kinds(sql, nb), ["AddColumn", "DropColumn", "DropColumn"]);
        assert!(parse_as(sql, d).is_err());
        let aq = Dialect {
            ansi_quotes: true,
            ..d
        };
        assert_eq!(
            parse_as("ALTER TABLE t DROP \"c\"\"x\"", aq)
                .unwrap()
                .unwrap()
                .clauses[0]
                .kind,
            ClauseKind::DropColumn {
                name: "c\"x".into()
            }
        );
    }

    #[test]
    fn what_cannot_be_read_is_refused_not_dropped() {
        let d = Dialect::default();
        for sql in [
            "ALTER TABLE t ADD c INT /*!100000 , DROP d",
            "ALTER TABLE t ADD c INT /* , DROP d",
            "ALTER TABLE t ADD c INT /*!999999 , DROP d",
            "ALTER TABLE t ADD c VARCHAR(3) DEFAULT 'x, DROP d",
            "ALTER TABLE t ADD `c INT",
            "ALTER TABLE t /*!100000 ADD c INT /*!100000 , DROP d */ */",
        ] {
            assert!(parse_as(sql, d).is_err(), "{sql}");
        }
        // Not an ALTER TABLE: not sluice's to read.
        assert_eq!(parse_as("INSERT INTO t VALUES ('x", d), Ok(None));
    }

    #[test]
    fn not_an_alter_table() {
        assert!(parse("ALTER VIEW v AS SELECT 1").is_none());
        assert!(parse("CREATE TABLE t (a int)").is_none());
        assert!(parse("ALTER ONLINE TABLE t ADD c INT").unwrap().modifiers);
    }
}
