//! The few token-level reads the IR does not carry (object names after a keyword), shared by the
//! rules and the as-written model, so neither reaches into the other.

use crate::analysis::ir::{QName, Stmt};
use crate::target::EngineKind;
use sqlparser::tokenizer::{Token, Tokenizer};

/// A token of a statement, for the few checks the IR does not carry.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tok {
    /// An unquoted word, upper-cased.
    Word(String),
    /// A quoted identifier, as written inside the quotes.
    Quoted(String),
    Number,
    Str(String),
    Punct(char),
    Other,
}

pub(crate) fn tokens(sql: &str, engine: EngineKind) -> Vec<Tok> {
    let dialect = crate::sql::dialect(engine);
    let Ok(toks) = Tokenizer::new(dialect.as_ref(), sql).tokenize() else {
        return vec![];
    };
    toks.into_iter()
        .filter_map(|t| match t {
            Token::Whitespace(_) | Token::EOF => None,
            Token::Word(w) => Some(match w.quote_style {
                None => Tok::Word(w.value.to_ascii_uppercase()),
                Some(_) => Tok::Quoted(w.value),
            }),
            Token::Number(..) => Some(Tok::Number),
            Token::SingleQuotedString(s) | Token::DoubleQuotedString(s) => Some(Tok::Str(s)),
            Token::Period => Some(Tok::Punct('.')),
            Token::Comma => Some(Tok::Punct(',')),
            Token::Eq => Some(Tok::Punct('=')),
            Token::LParen => Some(Tok::Punct('(')),
            Token::RParen => Some(Tok::Punct(')')),
            _ => Some(Tok::Other),
        })
        .collect()
}

/// The object names listed after the first of `markers` (`OPTIMIZE TABLE a, b` → a, b), skipping
/// modifiers such as `ONLY`, `IF EXISTS`, `TABLE`.
pub(crate) fn objects_after(st: &Stmt, engine: EngineKind, markers: &[&str]) -> Vec<QName> {
    const SKIP: &[&str] = &[
        "ONLY",
        "IF",
        "NOT",
        "EXISTS",
        "TABLE",
        "TABLES",
        "VERBOSE",
        "CONCURRENTLY",
        "NO_WRITE_TO_BINLOG",
        "LOCAL",
        "ONLINE",
        "IGNORE",
    ];
    let toks = tokens(&st.sql, engine);
    let Some(start) = toks
        .iter()
        .position(|t| matches!(t, Tok::Word(w) if markers.contains(&w.as_str())))
    else {
        return vec![];
    };
    let fold = |t: &Tok| match t {
        Tok::Word(w) => Some(w.to_lowercase()),
        Tok::Quoted(q) => Some(q.clone()),
        _ => None,
    };
    let mut i = start + 1;
    while matches!(toks.get(i), Some(Tok::Word(w)) if SKIP.contains(&w.as_str())) {
        i += 1;
    }
    let mut out = Vec::new();
    while let Some(first) = toks.get(i).and_then(fold) {
        let mut parts = vec![first];
        i += 1;
        while toks.get(i) == Some(&Tok::Punct('.')) {
            match toks.get(i + 1).and_then(fold) {
                Some(p) => parts.push(p),
                None => break,
            }
            i += 2;
        }
        let name = parts.pop().unwrap_or_default();
        out.push(QName {
            schema: parts.pop(),
            name,
        });
        // `a, b` lists; `x TO y` (RENAME) and `t WRITE` (LOCK TABLES) end the list here.
        if toks.get(i) != Some(&Tok::Punct(',')) || markers == ["ON"] {
            break;
        }
        i += 1;
        while matches!(toks.get(i), Some(Tok::Word(w)) if SKIP.contains(&w.as_str())) {
            i += 1;
        }
    }
    out
}
