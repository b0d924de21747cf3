//! What a migration statement needs of the database user, read from the parsed statement, so an
//! engine can check it before the first statement runs instead of failing half way through.

use crate::analysis::ir::{qname, QName};
use crate::target::EngineKind;
use sqlparser::ast::{ObjectType, Statement};
use sqlparser::parser::Parser;

/// One privilege a statement needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Need {
    /// Altering, indexing or dropping a table takes its ownership (PostgreSQL: membership in the
    /// owning role).
    Own(QName),
    /// Creating a table in a schema (None: the first schema of the search_path).
    CreateIn(Option<String>),
}

/// The needs of one statement; empty when it does not parse or needs nothing sluice checks.
pub fn needs(engine: EngineKind, sql: &str) -> Vec<Need> {
    let dialect = crate::sql::dialect(engine);
    let Ok(parsed) = Parser::parse_sql(dialect.as_ref(), sql) else {
        return vec![];
    };
    let mut out = Vec::new();
    for st in &parsed {
        match st {
            Statement::AlterTable(at) => out.push(Need::Own(qname(engine, &at.name))),
            Statement::CreateIndex(ci) => out.push(Need::Own(qname(engine, &ci.table_name))),
            Statement::Drop {
                object_type: ObjectType::Table,
                names,
                ..
            } => out.extend(names.iter().map(|n| Need::Own(qname(engine, n)))),
            Statement::CreateTable(ct) => {
                out.push(Need::CreateIn(qname(engine, &ct.name).schema));
            }
            _ => {}
        }
    }
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(schema: Option<&str>, name: &str) -> QName {
        QName {
            schema: schema.map(str::to_string),
            name: name.into(),
        }
    }

    #[test]
    fn statements_name_what_they_need() {
        let pg = EngineKind::Postgres;
        let cases: &[(&str, Vec<Need>)] = &[
            (
                "ALTER TABLE t ADD COLUMN a int",
                vec![Need::Own(q(None, "t"))],
            ),
            (
                "ALTER TABLE app.\"Wert\" ALTER COLUMN a SET NOT NULL",
                vec![Need::Own(q(Some("app"), "Wert"))],
            ),
            (
                "CREATE INDEX CONCURRENTLY i ON T (a)",
                vec![Need::Own(q(None, "t"))],
            ),
            (
                "DROP TABLE a, s.b",
                vec![Need::Own(q(None, "a")), Need::Own(q(Some("s"), "b"))],
            ),
            (
                "CREATE TABLE s.n (id int)",
                vec![Need::CreateIn(Some("s".into()))],
            ),
            ("CREATE TABLE n (id int)", vec![Need::CreateIn(None)]),
            ("UPDATE t SET a = 1", vec![]),
            ("not sql at all", vec![]),
        ];
        for (sql, want) in cases {
            assert_eq!(&needs(pg, sql), want, "{sql}");
        }
    }
}
