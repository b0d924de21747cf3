//! The identifier-quoting helpers, one per engine: every name sluice writes into SQL goes through them.

use crate::analysis::ir::QName;
use crate::target::EngineKind;

pub mod pg {
    /// Wraps in double quotes, doubling embedded ones.
    pub fn ident(name: &str) -> String {
        format!("\"{}\"", name.replace('"', "\"\""))
    }

    pub fn qualified(schema: &str, name: &str) -> String {
        format!("{}.{}", ident(schema), ident(name))
    }

    /// A string literal (standard_conforming_strings on, the default since 9.1).
    pub fn literal(value: &str) -> String {
        format!("'{}'", value.replace('\'', "''"))
    }
}

pub mod mysql {
    /// Wraps in backticks, doubling embedded ones.
    pub fn ident(name: &str) -> String {
        format!("`{}`", name.replace('`', "``"))
    }

    /// A string literal, safe whatever the sql_mode (backslashes and quotes escaped).
    pub fn literal(value: &str) -> String {
        format!("'{}'", value.replace('\\', "\\\\").replace('\'', "''"))
    }
}

pub fn ident(engine: EngineKind, name: &str) -> String {
    match engine {
        EngineKind::Postgres => pg::ident(name),
        EngineKind::MariaDb | EngineKind::MySql => mysql::ident(name),
    }
}

pub fn qname(engine: EngineKind, q: &QName) -> String {
    match &q.schema {
        Some(s) => format!("{}.{}", ident(engine, s), ident(engine, &q.name)),
        None => ident(engine, &q.name),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(pg::ident("we\"ird"), "\"we\"\"ird\"");
        assert_eq!(pg::literal("it's"), "'it''s'");
        assert_eq!(mysql::ident("a`b"), "`a``b`");
        assert_eq!(mysql::literal("a\\'b"), "'a\\\\''b'");
        let q = QName {
            schema: Some("app".into()),
            name: "Users".into(),
        };
        assert_eq!(qname(EngineKind::Postgres, &q), "\"app\".\"Users\"");
        assert_eq!(qname(EngineKind::MariaDb, &q), "`app`.`Users`");
    }
}
