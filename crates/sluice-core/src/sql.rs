//! Splits a migration part into statements with their positions, using sqlparser's tokenizer for the
//! engine's dialect (so `;` inside strings, dollar quotes, identifiers and comments never splits), and
//! classifies statements that cannot run inside a transaction.

use crate::target::EngineKind;
use sqlparser::dialect::{Dialect, MySqlDialect, PostgreSqlDialect};
use sqlparser::tokenizer::{Token, Tokenizer, Whitespace};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqlStatement {
    /// The statement text without the terminating `;`.
    pub sql: String,
    /// Byte offset in the text given to [`split`] (add the part's offset for the file offset).
    pub offset: usize,
    /// 1-based line and column in that text.
    pub line: usize,
    pub column: usize,
    /// Upper-cased leading keywords (up to 8), comments and whitespace skipped.
    pub keywords: Vec<String>,
    /// Every upper-cased keyword/identifier word of the statement, for classification.
    words: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplitError {
    pub message: String,
    pub line: usize,
    pub column: usize,
}

pub fn dialect(kind: EngineKind) -> Box<dyn Dialect> {
    match kind {
        EngineKind::Postgres => Box::new(PostgreSqlDialect {}),
        EngineKind::MariaDb | EngineKind::MySql => Box::new(MySqlDialect {}),
    }
}

/// Walks forward through a text by (line, character column) positions that never go back.
struct Cursor {
    byte: usize,
    line: u64,
    col: u64,
}

impl Default for Cursor {
    fn default() -> Self {
        Cursor {
            byte: 0,
            line: 1,
            col: 1,
        }
    }
}

impl Cursor {
    fn advance_to(&mut self, text: &str, line: u64, col: u64) -> usize {
        let (line, col) = (line.max(1), col.max(1));
        while (self.line, self.col) < (line, col) {
            let Some(c) = text[self.byte..].chars().next() else {
                break;
            };
            self.byte += c.len_utf8();
            if c == '\n' {
                self.line += 1;
                self.col = 1;
            } else {
                self.col += 1;
            }
        }
        self.byte
    }
}

/// Byte offset of a 1-based (line, char column) position.
fn byte_offset(line_starts: &[usize], text: &str, line: u64, column: u64) -> usize {
    let ls = line_starts
        .get((line.max(1) - 1) as usize)
        .copied()
        .unwrap_or(text.len());
    let mut off = ls;
    for (i, (b, _)) in text[ls..].char_indices().enumerate() {
        if i as u64 + 1 == column.max(1) {
            return ls + b;
        }
        off = ls + b;
    }
    off.min(text.len())
}

/// Byte offset of a 1-based (line, character column) position, clamped to the text.
pub fn offset_of(text: &str, line: usize, column: usize) -> usize {
    let mut line_starts = vec![0usize];
    line_starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
    byte_offset(&line_starts, text, line as u64, column as u64)
}

pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before
        .rsplit('\n')
        .next()
        .map(|l| l.chars().count())
        .unwrap_or(0)
        + 1;
    (line, col)
}

/// Splits `text` into statements. Empty statements (`;;`, comment-only tails) are dropped.
pub fn split(kind: EngineKind, text: &str) -> Result<Vec<SqlStatement>, SplitError> {
    let dialect = dialect(kind);
    let tokens = Tokenizer::new(dialect.as_ref(), text)
        .with_unescape(false)
        .tokenize_with_location()
        .map_err(|e| SplitError {
            message: e.message.clone(),
            line: e.location.line as usize,
            column: e.location.column as usize,
        })?;
    let mut out = Vec::new();
    let mut start: Option<(usize, usize, usize)> = None;
    let mut end = 0usize;
    let mut words: Vec<String> = Vec::new();
    // `start` is the statement's byte offset with its (line, column) from the tokenizer.
    let flush = |start: &mut Option<(usize, usize, usize)>,
                 end: usize,
                 words: &mut Vec<String>,
                 out: &mut Vec<SqlStatement>| {
        if let Some((s, line, column)) = start.take() {
            let sql = text[s..end].trim_end().to_string();
            let keywords = words.iter().take(8).cloned().collect();
            out.push(SqlStatement {
                sql,
                offset: s,
                line,
                column,
                keywords,
                words: std::mem::take(words),
            });
        }
        words.clear();
    };
    // Token start offsets in one forward pass: positions only grow, so this stays linear even on a
    // single very long line.
    let mut starts = Vec::with_capacity(tokens.len());
    let mut cur = Cursor::default();
    for t in &tokens {
        starts.push(cur.advance_to(text, t.span.start.line, t.span.start.column));
    }
    for (i, t) in tokens.iter().enumerate() {
        let tok_start = starts[i];
        let tok_end = starts.get(i + 1).copied().unwrap_or(text.len());
        match &t.token {
            Token::SemiColon => {
                flush(&mut start, tok_start, &mut words, &mut out);
            }
            Token::Whitespace(Whitespace::Space | Whitespace::Tab | Whitespace::Newline)
            | Token::Whitespace(Whitespace::SingleLineComment { .. })
            | Token::Whitespace(Whitespace::MultiLineComment(_)) => {}
            Token::EOF => {}
            tok => {
                if start.is_none() {
                    start = Some((
                        tok_start,
                        t.span.start.line as usize,
                        t.span.start.column as usize,
                    ));
                }
                end = tok_end;
                if let Token::Word(w) = tok {
                    if w.quote_style.is_none() {
                        words.push(w.value.to_ascii_uppercase());
                    } else {
                        words.push(String::new());
                    }
                }
            }
        }
    }
    flush(&mut start, end, &mut words, &mut out);
    Ok(out)
}

impl SqlStatement {
    fn kw(&self, i: usize) -> &str {
        self.keywords.get(i).map(String::as_str).unwrap_or("")
    }

    fn starts_with(&self, seq: &[&str]) -> bool {
        seq.iter().enumerate().all(|(i, w)| self.kw(i) == *w)
    }

    /// True when the statement has this unquoted word (upper case) anywhere, as a whole word.
    pub fn has_word(&self, w: &str) -> bool {
        self.words.iter().any(|x| x == w)
    }

    /// True when these unquoted words appear one right after the other (e.g. `NOT`, `VALID`).
    pub fn has_words(&self, seq: &[&str]) -> bool {
        !seq.is_empty()
            && self
                .words
                .windows(seq.len())
                .any(|w| w.iter().zip(seq).all(|(a, b)| a == b))
    }

    /// `LOCK TABLES ...` / `UNLOCK TABLES` (MariaDB/MySQL): the bracket dumps put around a data load.
    pub fn is_table_lock_bracket(&self) -> bool {
        matches!(self.kw(0), "LOCK" | "UNLOCK") && matches!(self.kw(1), "TABLE" | "TABLES")
    }

    /// The statement's first keyword (upper case).
    pub fn kw0(&self) -> &str {
        self.kw(0)
    }

    /// `BEGIN` or `START TRANSACTION`: opens a transaction.
    pub fn opens_transaction(&self) -> bool {
        (self.kw(0) == "BEGIN" && !self.has_word("ATOMIC"))
            || self.starts_with(&["START", "TRANSACTION"])
    }

    /// Transaction control written into a migration (`BEGIN`, `COMMIT`, ...): sluice owns transactions.
    pub fn is_transaction_control(&self) -> bool {
        let k = self.kw(0);
        matches!(
            k,
            "COMMIT" | "ROLLBACK" | "ABORT" | "END" | "SAVEPOINT" | "RELEASE"
        ) || self.starts_with(&["START", "TRANSACTION"])
            || (k == "BEGIN" && !self.has_word("ATOMIC"))
    }

    /// PostgreSQL statements that cannot run inside a transaction block.
    pub fn pg_needs_own_transaction(&self, server_major: u32) -> bool {
        let k0 = self.kw(0);
        match k0 {
            "VACUUM" => true,
            "CREATE" | "DROP" => {
                let idx = if self.kw(1) == "UNIQUE" { 2 } else { 1 };
                (self.kw(idx) == "INDEX" && self.kw(idx + 1) == "CONCURRENTLY")
                    || matches!(self.kw(1), "DATABASE" | "TABLESPACE" | "SUBSCRIPTION")
            }
            "REINDEX" => {
                self.has_word("CONCURRENTLY") || matches!(self.kw(1), "SYSTEM" | "DATABASE")
            }
            "ALTER" => {
                (self.kw(1) == "SYSTEM")
                    || (self.kw(1) == "DATABASE" && self.has_word("TABLESPACE"))
                    || (self.kw(1) == "TABLE" && self.has_word("DETACH") && self.has_word("CONCURRENTLY"))
                    // Before PostgreSQL 12, ALTER TYPE ... ADD VALUE cannot run in a transaction block.
                    || (self.kw(1) == "TYPE" && self.has_word("ADD") && self.has_word("VALUE") && server_major < 12)
                    || (self.kw(1) == "SUBSCRIPTION")
            }
            "CLUSTER" => self.keywords.len() == 1,
            _ => false,
        }
    }

    /// MariaDB/MySQL statements that commit implicitly (DDL): they cannot share a transaction.
    pub fn mysql_implicit_commit(&self) -> bool {
        matches!(
            self.kw(0),
            "CREATE"
                | "ALTER"
                | "DROP"
                | "RENAME"
                | "TRUNCATE"
                | "GRANT"
                | "REVOKE"
                | "ANALYZE"
                | "OPTIMIZE"
                | "REPAIR"
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pg(text: &str) -> Vec<SqlStatement> {
        split(EngineKind::Postgres, text).unwrap()
    }

    #[test]
    fn splits_on_top_level_semicolons_only() {
        let text = "CREATE TABLE \"a;b\" (x text default 'a;b');\n-- c;omment\nCREATE FUNCTION f() RETURNS int AS $$ SELECT 1; $$ LANGUAGE sql;\n/* x; */ SELECT 'it''s;';\n;;\n-- trailing comment\n";
        let s = pg(text);
        assert_eq!(s.len(), 3, "{s:#?}");
        assert_eq!(s[0].sql, "CREATE TABLE \"a;b\" (x text default 'a;b')");
        assert_eq!((s[0].line, s[0].column), (1, 1));
        assert!(s[1].sql.starts_with("CREATE FUNCTION f()"));
        assert!(s[1].sql.ends_with("LANGUAGE sql"));
        assert_eq!((s[1].line, s[1].column), (3, 1));
        assert_eq!(s[2].sql, "SELECT 'it''s;'");
        assert_eq!((s[2].line, s[2].column), (4, 10));
        assert_eq!(&text[s[2].offset..s[2].offset + 6], "SELECT");
    }

    #[test]
    fn positions_count_characters_not_bytes() {
        let text = "SELECT 'é'; SELECT 2";
        let s = pg(text);
        assert_eq!(s.len(), 2);
        assert_eq!((s[1].line, s[1].column), (1, 13));
        assert_eq!(&text[s[1].offset..], "SELECT 2");
    }

    #[test]
    fn mysql_dialect_handles_backticks_and_hash_comments() {
        let s = split(
            EngineKind::MariaDb,
            "CREATE TABLE `a;b` (x int); # c;\nINSERT INTO t VALUES ('x\\';y');",
        )
        .unwrap();
        assert_eq!(s.len(), 2, "{s:#?}");
        assert_eq!(s[1].sql, "INSERT INTO t VALUES ('x\\';y')");
    }

    #[test]
    fn unterminated_string_is_an_error_with_position() {
        let e = split(EngineKind::Postgres, "SELECT 1;\nSELECT 'oops").unwrap_err();
        assert_eq!(e.line, 2);
    }

    #[test]
    fn non_transactional_statements() {
        let yes = [
            "CREATE INDEX CONCURRENTLY i ON t (a)",
            "create unique index concurrently if not exists i on t (a)",
            "DROP INDEX CONCURRENTLY IF EXISTS i",
            "REINDEX INDEX CONCURRENTLY i",
            "VACUUM ANALYZE t",
            "ALTER TABLE p DETACH PARTITION c CONCURRENTLY",
            "CREATE DATABASE x",
            "ALTER SYSTEM SET work_mem = '8MB'",
        ];
        for s in yes {
            assert!(pg(s)[0].pg_needs_own_transaction(15), "{s}");
        }
        let no = [
            "CREATE INDEX i ON t (a)",
            "CREATE TABLE concurrently (a int)",
            "DROP INDEX i",
            "ALTER TABLE t ADD COLUMN concurrently int",
            "REINDEX INDEX i",
            "ALTER TYPE e ADD VALUE 'x'",
            "SELECT 'VACUUM'",
        ];
        for s in no {
            assert!(!pg(s)[0].pg_needs_own_transaction(15), "{s}");
        }
        assert!(pg("ALTER TYPE e ADD VALUE 'x'")[0].pg_needs_own_transaction(11));
    }

    #[test]
    fn transaction_control() {
        for s in [
            "BEGIN",
            "begin transaction",
            "COMMIT",
            "START TRANSACTION",
            "ROLLBACK",
            "ABORT",
            "END",
            "SAVEPOINT a",
        ] {
            assert!(pg(s)[0].is_transaction_control(), "{s}");
        }
        assert!(
            !pg("CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1")[0]
                .is_transaction_control()
        );
        assert!(!pg("SELECT 1")[0].is_transaction_control());
    }
}

/// The `ANALYZE` a standalone `sluice backfill` runs afterwards (PostgreSQL): the table and the
/// columns its SET list assigns, each name quoted as PostgreSQL folds it (unquoted names to lower
/// case). None on other engines, or when `--table`/`--set` do not parse (checked before anyway).
pub fn backfill_analyze(kind: EngineKind, table: &str, set: &str) -> Option<String> {
    use sqlparser::ast::{AssignmentTarget, ObjectName, Statement};
    use sqlparser::parser::Parser;
    if kind != EngineKind::Postgres {
        return None;
    }
    let name = |o: &ObjectName| -> Option<Vec<String>> {
        o.0.iter()
            .map(|p| {
                let i = p.as_ident()?;
                Some(crate::quote::pg::ident(&match i.quote_style {
                    Some(_) => i.value.clone(),
                    None => i.value.to_lowercase(),
                }))
            })
            .collect()
    };
    let d = dialect(kind);
    let parsed = Parser::parse_sql(d.as_ref(), &format!("UPDATE {table} SET {set}")).ok()?;
    let [Statement::Update(u)] = parsed.as_slice() else {
        return None;
    };
    let sqlparser::ast::TableFactor::Table { name: t, .. } = &u.table.relation else {
        return None;
    };
    let t = name(t)?.join(".");
    let mut columns: Vec<String> = Vec::new();
    for a in &u.assignments {
        let targets = match &a.target {
            AssignmentTarget::ColumnName(c) => vec![c],
            AssignmentTarget::Tuple(cs) => cs.iter().collect(),
        };
        for c in targets {
            // `SET t.c = …` names the column last.
            let c = name(c)?.pop()?;
            if !columns.contains(&c) {
                columns.push(c);
            }
        }
    }
    Some(format!("ANALYZE {t} ({})", columns.join(", ")))
}

/// Checks the pieces of a `sluice backfill` before they are put into SQL: `--set` must be exactly
/// a SET list and `--where` exactly one boolean expression. Each is pasted into statements around
/// sluice's own batch range (`WHERE <range> AND (<where>)`), so text that closes a parenthesis,
/// ends the statement, opens a comment or adds a clause would escape the range and update rows
/// outside it (or twice); it is refused before anything runs.
pub fn check_backfill_input(
    kind: EngineKind,
    set: &str,
    filter: Option<&str>,
) -> crate::Result<()> {
    use sqlparser::ast::Statement;
    use sqlparser::parser::Parser;
    let refuse = |flag: &str, text: &str, why: String| {
        crate::Error::usage(
            format!("{flag} {text:?} is not {why}"),
            format!("give {flag} as {}, without `;`, comments or unbalanced parentheses (sluice puts it inside its own batched statement)", if flag == "--set" { "a SET list such as \"c = expr, d = expr\"" } else { "one condition such as \"c IS NULL AND id > 5\"" }),
        )
    };
    // Token level first: what would end the statement or hide the rest of it, whatever the parse.
    let tokens_ok = |flag: &str, text: &str| -> crate::Result<()> {
        let d = dialect(kind);
        let tokens = Tokenizer::new(d.as_ref(), text)
            .tokenize()
            .map_err(|e| refuse(flag, text, format!("valid SQL ({e})")))?;
        let mut depth = 0i64;
        for t in &tokens {
            match t {
                Token::SemiColon => return Err(refuse(flag, text, "one piece of a statement: it contains `;`".into())),
                Token::Whitespace(Whitespace::SingleLineComment { .. } | Whitespace::MultiLineComment(_)) => {
                    return Err(refuse(flag, text, "one piece of a statement: it contains a comment, which would hide the rest of sluice's statement".into()))
                }
                Token::LParen => depth += 1,
                Token::RParen => {
                    depth -= 1;
                    if depth < 0 {
                        return Err(refuse(flag, text, "balanced: a `)` closes a parenthesis it did not open".into()));
                    }
                }
                _ => {}
            }
        }
        if depth != 0 {
            return Err(refuse(flag, text, "balanced: a `(` is never closed".into()));
        }
        Ok(())
    };
    tokens_ok("--set", set)?;
    let d = dialect(kind);
    let parsed = Parser::parse_sql(
        d.as_ref(),
        &format!("UPDATE sluice_backfill_check SET {set}"),
    )
    .map_err(|e| refuse("--set", set, format!("a SET list ({e})")))?;
    match parsed.as_slice() {
        [Statement::Update(u)]
            if u.selection.is_none()
                && u.from.is_none()
                && u.returning.is_none()
                && u.order_by.is_empty()
                && u.limit.is_none()
                && !u.assignments.is_empty() => {}
        _ => {
            return Err(refuse(
                "--set",
                set,
                "only a SET list: it adds clauses of its own (WHERE, FROM, RETURNING, ...)".into(),
            ))
        }
    }
    if let Some(f) = filter {
        tokens_ok("--where", f)?;
        let mut p = Parser::new(d.as_ref())
            .try_with_sql(f)
            .map_err(|e| refuse("--where", f, format!("valid SQL ({e})")))?;
        p.parse_expr()
            .map_err(|e| refuse("--where", f, format!("one condition ({e})")))?;
        if p.peek_token().token != Token::EOF {
            return Err(refuse(
                "--where",
                f,
                format!(
                    "one condition: it goes on after one at `{}`",
                    p.peek_token().token
                ),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod backfill_input_tests {
    use super::*;

    /// The ANALYZE after a standalone backfill: the assigned columns only, each once, named as
    /// PostgreSQL folds them; nothing on MariaDB (it has no standalone backfill).
    #[test]
    fn backfill_analyzes_the_columns_it_assigned() {
        for (table, set, want) in [
            ("t", "n = n + 1", Some(r#"ANALYZE "t" ("n")"#)),
            (
                "Public.Orders",
                "Total = 1, note = 'a, b'",
                Some(r#"ANALYZE "public"."orders" ("total", "note")"#),
            ),
            (
                r#""My T""#,
                r#""Big N" = 1, t.m = 2, "Big N" = 3"#,
                Some(r#"ANALYZE "My T" ("Big N", "m")"#),
            ),
            ("t", "(a, b) = (1, 2)", Some(r#"ANALYZE "t" ("a", "b")"#)),
        ] {
            assert_eq!(
                backfill_analyze(EngineKind::Postgres, table, set).as_deref(),
                want,
                "{table} {set}"
            );
        }
        assert_eq!(backfill_analyze(EngineKind::MariaDb, "t", "n = 1"), None);
    }

    #[test]
    fn backfill_input_cannot_escape_the_batch_statement() {
        for kind in [EngineKind::Postgres, EngineKind::MariaDb] {
            for (set, filter, ok) in [
                ("n = 1", Some("id < 5"), true),
                ("n = n + 1, m = 'a;b'", Some("(a OR b) AND c = ')'"), true),
                ("n = 1", Some("note = 'x -- y /* z'"), true),
                ("n = 1", Some("id < 5) OR (true"), false),
                ("n = 1", Some("id < 5)"), false),
                ("n = 1", Some("(id < 5"), false),
                ("n = 1", Some("true; DELETE FROM t"), false),
                ("n = 1", Some("true --"), false),
                ("n = 1", Some("true /* x */"), false),
                ("n = 1", Some("true /*"), false),
                ("n = 1", Some("id < 5 OR true LIMIT 1"), false),
                ("n = 1", Some("id < 5 ORDER BY id"), false),
                ("n = 1", Some(""), false),
                ("n = 1", Some("'unterminated"), false),
                ("n = 1 WHERE true OR id", None, false),
                ("n = 1 --", None, false),
                ("n = 1; DELETE FROM t", None, false),
                ("n = 1) , (m = 2", None, false),
                ("n = 1 RETURNING id", None, false),
                ("n = 1 FROM other", None, false),
                ("", None, false),
            ] {
                let r = check_backfill_input(kind, set, filter);
                assert_eq!(r.is_ok(), ok, "{kind:?} {set:?} {filter:?}: {r:?}");
                if let Err(e) = r {
                    assert_eq!(e.exit_code(), crate::error::exit::BAD_INPUT);
                }
            }
        }
        // PostgreSQL only: dollar quotes are literals when complete, and a backslash does not
        // escape a quote (standard_conforming_strings).
        let pg = EngineKind::Postgres;
        assert!(check_backfill_input(pg, "n = 1", Some("note = $$a) OR (true$$")).is_ok());
        assert!(check_backfill_input(pg, "n = 1", Some("note = $$a) OR (true")).is_err());
        assert!(check_backfill_input(pg, "n = 1", Some("note = 'a\\' ) OR (true --'")).is_err());
    }
}
