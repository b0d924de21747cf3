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

fn tokenize(sql: &str) -> Vec<Tok> {
    let b = sql.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_whitespace() {
            i += 1;
        } else if c == b'-' && b.get(i + 1) == Some(&b'-') || c == b'#' {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if c == b'/' && b.get(i + 1) == Some(&b'*') {
            i += 2;
            while i + 1 < b.len() && !(b[i] == b'*' && b[i + 1] == b'/') {
                i += 1;
            }
            i = (i + 2).min(b.len());
        } else if c == b'`' {
            let start = i;
            let mut text = String::new();
            i += 1;
            let mut seg = i;
            while i < b.len() {
                if b[i] == b'`' {
                    if b.get(i + 1) == Some(&b'`') {
                        text.push_str(&sql[seg..=i]);
                        i += 2;
                        seg = i;
                        continue;
                    }
                    break;
                }
                i += 1;
            }
            text.push_str(&sql[seg..i.min(b.len())]);
            i = (i + 1).min(b.len());
            out.push(Tok {
                kind: TokKind::Quoted,
                text,
                start,
                end: i,
            });
        } else if c == b'\'' || c == b'"' {
            let start = i;
            i += 1;
            while i < b.len() {
                if b[i] == b'\\' {
                    i += 2;
                    continue;
                }
                if b[i] == c {
                    if b.get(i + 1) == Some(&c) {
                        i += 2;
                        continue;
                    }
                    break;
                }
                i += 1;
            }
            i = (i + 1).min(b.len());
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
            out.push(Tok {
                kind: TokKind::Punct,
                text: (c as char).to_string(),
                start: i,
                end: i + 1,
            });
            i += 1;
        }
    }
    out
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
    },
    AddPrimaryKey,
    DropPrimaryKey,
    DropIndex,
    RenameIndex,
    AddForeignKey,
    DropForeignKey,
    AddCheck,
    DropConstraint,
    ConvertCharset,
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
    /// Everything after the table name, as written (replayed on the shadow table).
    pub rest: String,
    pub clauses: Vec<Clause>,
    /// ALTER ONLINE / ALTER IGNORE: run as written.
    pub modifiers: bool,
}

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

/// Parses `ALTER [ONLINE] [IGNORE] TABLE [IF EXISTS] name clause, clause...`; None when the statement
/// is not a single-table ALTER TABLE.
pub fn parse(sql: &str) -> Option<AlterTable> {
    let toks = tokenize(sql);
    let mut i = 0;
    if !toks.first()?.is("ALTER") {
        return None;
    }
    i += 1;
    let mut modifiers = false;
    while toks.get(i)?.is("ONLINE") || toks.get(i)?.is("IGNORE") {
        modifiers = true;
        i += 1;
    }
    if !toks.get(i)?.is("TABLE") {
        return None;
    }
    i += 1;
    if toks.get(i)?.is("IF") && toks.get(i + 1).is_some_and(|t| t.is("EXISTS")) {
        i += 2;
    }
    let first = toks.get(i)?.name()?;
    i += 1;
    let (schema, table) = if toks.get(i).is_some_and(|t| t.punct('.')) {
        let t = toks.get(i + 1)?.name()?;
        i += 2;
        (Some(first), t)
    } else {
        (None, first)
    };
    // The clauses end at their last token: a trailing comment must not swallow the
    // `, ALGORITHM=...` sluice appends.
    let rest_start = toks.get(i).map(|t| t.start).unwrap_or(sql.len());
    let rest_end = toks[i..]
        .iter()
        .rev()
        .find(|t| !t.punct(';'))
        .map(|t| t.end)
        .unwrap_or(rest_start);
    let rest = sql[rest_start..rest_end].to_string();
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
    Some(AlterTable {
        schema,
        table,
        rest,
        clauses,
        modifiers,
    })
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
            };
        }
        if word(t, i, "INDEX") || word(t, i, "KEY") {
            return ClauseKind::AddIndex {
                unique: false,
                special: false,
            };
        }
        if word(t, i, "FULLTEXT") || word(t, i, "SPATIAL") {
            return ClauseKind::AddIndex {
                unique: false,
                special: true,
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
            return ClauseKind::DropIndex;
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
    if word(t, 0, "CONVERT") || word(t, 0, "DEFAULT") || word(t, 0, "CHARACTER") {
        return ClauseKind::ConvertCharset;
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
        if depth == 0 && x.kind == TokKind::Word && TYPE_END.iter().any(|k| x.is(k)) {
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
            a.rest,
            "MODIFY balance BIGINT NOT NULL, ADD COLUMN note VARCHAR(20) DEFAULT 'a,b' AFTER id"
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
                special: false
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
                special: true
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
        assert_eq!(a.rest, "ADD COLUMN c INT");
        let a = parse("ALTER TABLE t ADD COLUMN c INT # why").unwrap();
        assert_eq!(a.rest, "ADD COLUMN c INT");
    }

    #[test]
    fn not_an_alter_table() {
        assert!(parse("ALTER VIEW v AS SELECT 1").is_none());
        assert!(parse("CREATE TABLE t (a int)").is_none());
        assert!(parse("ALTER ONLINE TABLE t ADD c INT").unwrap().modifiers);
    }
}
