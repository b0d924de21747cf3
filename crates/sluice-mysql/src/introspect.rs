//! Reads the current database's schema from information_schema into sluice's model: a handful of
//! queries for the whole database (not per table), plus `SHOW CREATE TABLE` per table for the
//! `create_sql` kept beside the model.
//!
//! Representation choices, so that what is compared is what can be rendered back as SQL:
//! - `data_type` is `COLUMN_TYPE`, plus `CHARACTER SET .. COLLATE ..` when the column's collation
//!   differs from its table's default (a `MODIFY COLUMN` without it would convert the column).
//! - `extra` holds the column attributes in the order they are written in a column definition:
//!   `GENERATED ALWAYS AS (expr) VIRTUAL|STORED`, `ON UPDATE expr`, `AUTO_INCREMENT`, `INVISIBLE`,
//!   `COMMENT '..'`, and MariaDB's column-level `CHECK (..)`. Column-level checks live with their
//!   column because MariaDB ties them to it: `MODIFY COLUMN` drops them and `DROP CONSTRAINT` cannot.
//! - Indexes include the primary key and unique keys; constraints hold foreign keys and table checks.

use crate::quote;
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Row};
use sluice_core::schema::{Column, Constraint, ConstraintKind, Index, Schema, Table, View};
use sluice_core::target::EngineKind;
use std::collections::BTreeMap;

/// The server flavour and full version, which decide catalog layouts and SQL spellings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flavour {
    pub kind: EngineKind,
    pub version: (u32, u32, u32),
}

impl Flavour {
    /// Reads `SELECT VERSION()` text such as `10.11.19-MariaDB-0+deb12u1` or `8.0.36`.
    pub fn from_version_string(v: &str) -> Flavour {
        let kind = if v.contains("MariaDB") {
            EngineKind::MariaDb
        } else {
            EngineKind::MySql
        };
        let mut nums = v
            .split(|c: char| !c.is_ascii_digit())
            .take(3)
            .map(|p| p.parse::<u32>().unwrap_or(0));
        let mut next = || nums.next().unwrap_or(0);
        Flavour {
            kind,
            version: (next(), next(), next()),
        }
    }

    pub fn is_mariadb(&self) -> bool {
        self.kind == EngineKind::MariaDb
    }

    pub fn at_least(&self, v: (u32, u32, u32)) -> bool {
        self.version >= v
    }

    /// MariaDB 10.2.7+ reports `COLUMN_DEFAULT` as SQL (literals quoted, `NULL` for DEFAULT NULL).
    fn sql_defaults(&self) -> bool {
        self.is_mariadb() && self.at_least((10, 2, 7))
    }

    fn has_check_constraints(&self) -> bool {
        if self.is_mariadb() {
            self.at_least((10, 2, 1))
        } else {
            self.at_least((8, 0, 16))
        }
    }
}

fn text(row: &Row, name: &str) -> Option<String> {
    row.get_opt::<Option<Vec<u8>>, _>(name)
        .and_then(Result::ok)
        .flatten()
        .map(|b| String::from_utf8_lossy(&b).into_owned())
}

fn int(row: &Row, name: &str) -> Option<i64> {
    text(row, name).and_then(|s| s.trim().parse().ok())
}

/// The table names sluice owns, left out of every schema.
pub fn is_sluice_table(name: &str) -> bool {
    name.starts_with("sluice_")
}

pub async fn introspect(conn: &mut Conn, flavour: Flavour) -> mysql_async::Result<Schema> {
    let db: Option<String> = conn.query_first("SELECT DATABASE()").await?;
    let db = db.unwrap_or_default();
    let mut schema = Schema::default();

    // Tables (views come from VIEWS; MariaDB sequences are tables of their own kind, left out).
    let mut collations: BTreeMap<String, Option<String>> = BTreeMap::new();
    // The shadow, old and change-log tables of online changes are sluice's, not the schema's.
    let aux = crate::online::aux_tables(conn).await;
    let rows: Vec<Row> = conn
        .query(
            "SELECT TABLE_NAME AS table_name, TABLE_TYPE AS table_type, TABLE_COLLATION AS table_collation \
             FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE()",
        )
        .await?;
    for r in &rows {
        let name = text(r, "table_name").unwrap_or_default();
        let kind = text(r, "table_type").unwrap_or_default();
        if is_sluice_table(&name)
            || aux.contains(&name)
            || !matches!(kind.as_str(), "BASE TABLE" | "SYSTEM VERSIONED")
        {
            continue;
        }
        collations.insert(name.clone(), text(r, "table_collation"));
        schema.tables.insert(name, Table::default());
    }

    let column_rows: Vec<Row> = conn
        .query(
            "SELECT TABLE_NAME AS table_name, COLUMN_NAME AS column_name, COLUMN_TYPE AS column_type, \
             DATA_TYPE AS data_type, IS_NULLABLE AS is_nullable, COLUMN_DEFAULT AS column_default, \
             EXTRA AS extra, GENERATION_EXPRESSION AS generation_expression, \
             CHARACTER_SET_NAME AS charset, COLLATION_NAME AS collation, COLUMN_COMMENT AS comment \
             FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() \
             ORDER BY TABLE_NAME, ORDINAL_POSITION",
        )
        .await?;
    let column_names: std::collections::BTreeSet<(String, String)> = column_rows
        .iter()
        .map(|r| {
            (
                text(r, "table_name").unwrap_or_default(),
                text(r, "column_name").unwrap_or_default(),
            )
        })
        .collect();

    // Column-level checks (MariaDB) first: they become part of their column's `extra`.
    let mut column_checks: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    let mut table_checks: Vec<(String, String, String)> = Vec::new();
    if flavour.has_check_constraints() {
        let rows: Vec<Row> = if flavour.is_mariadb() {
            conn.query(
                "SELECT * FROM information_schema.CHECK_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = DATABASE() \
                 ORDER BY TABLE_NAME, CONSTRAINT_NAME",
            )
            .await?
        } else {
            // MySQL's CHECK_CONSTRAINTS has no table name; its check names are unique per schema.
            conn.query(
                "SELECT tc.TABLE_NAME AS TABLE_NAME, cc.CONSTRAINT_NAME AS CONSTRAINT_NAME, \
                 cc.CHECK_CLAUSE AS CHECK_CLAUSE \
                 FROM information_schema.TABLE_CONSTRAINTS tc \
                 JOIN information_schema.CHECK_CONSTRAINTS cc \
                   ON cc.CONSTRAINT_SCHEMA = tc.CONSTRAINT_SCHEMA AND cc.CONSTRAINT_NAME = tc.CONSTRAINT_NAME \
                 WHERE tc.CONSTRAINT_SCHEMA = DATABASE() AND tc.CONSTRAINT_TYPE = 'CHECK' \
                 ORDER BY tc.TABLE_NAME, cc.CONSTRAINT_NAME",
            )
            .await?
        };
        for r in &rows {
            let table = text(r, "TABLE_NAME").unwrap_or_default();
            let name = text(r, "CONSTRAINT_NAME").unwrap_or_default();
            let clause = text(r, "CHECK_CLAUSE").unwrap_or_default();
            let def = check_definition(&clause, flavour);
            // LEVEL exists from MariaDB 10.5.10 on; before, a column-level check bears its column's name.
            let column_level = match text(r, "LEVEL") {
                Some(level) => level.eq_ignore_ascii_case("Column"),
                None => {
                    flavour.is_mariadb() && column_names.contains(&(table.clone(), name.clone()))
                }
            };
            if column_level {
                column_checks.entry((table, name)).or_default().push(def);
            } else {
                table_checks.push((table, name, def));
            }
        }
    }

    for r in &column_rows {
        let table = text(r, "table_name").unwrap_or_default();
        let Some(t) = schema.tables.get_mut(&table) else {
            continue;
        };
        let name = text(r, "column_name").unwrap_or_default();
        let mut data_type = text(r, "column_type").unwrap_or_default();
        let table_collation = collations.get(&table).cloned().flatten();
        if let (Some(cs), Some(coll)) = (text(r, "charset"), text(r, "collation")) {
            if Some(&coll) != table_collation.as_ref() {
                data_type = format!("{data_type} CHARACTER SET {cs} COLLATE {coll}");
            }
        }
        let checks = column_checks
            .remove(&(table.clone(), name.clone()))
            .unwrap_or_default();
        let attrs = ColumnAttrs::parse(
            &text(r, "extra").unwrap_or_default(),
            text(r, "generation_expression").as_deref(),
            &text(r, "comment").unwrap_or_default(),
            &checks,
        );
        let default = if attrs.generated {
            None
        } else {
            normalise_default(
                text(r, "column_default").as_deref(),
                flavour,
                attrs.default_generated,
                &text(r, "data_type").unwrap_or_default(),
            )
        };
        t.columns.push(Column {
            name,
            data_type,
            nullable: text(r, "is_nullable").as_deref() == Some("YES"),
            default,
            extra: attrs.extra,
        });
    }
    // Column-level checks whose column was not found stay visible as table checks.
    for ((table, name), defs) in column_checks {
        for def in defs {
            table_checks.push((table.clone(), name.clone(), def));
        }
    }
    for (table, name, definition) in table_checks {
        if let Some(t) = schema.tables.get_mut(&table) {
            t.constraints.insert(
                name,
                Constraint {
                    kind: ConstraintKind::Check,
                    definition,
                },
            );
        }
    }

    // Indexes, primary and unique keys included.
    let mut extra_cols = String::new();
    if flavour.is_mariadb() && flavour.at_least((10, 6, 0)) {
        extra_cols.push_str(", IGNORED AS ignored");
    }
    if !flavour.is_mariadb() && flavour.at_least((8, 0, 13)) {
        extra_cols.push_str(", EXPRESSION AS expression, IS_VISIBLE AS is_visible");
    }
    let rows: Vec<Row> = conn
        .query(format!(
            "SELECT TABLE_NAME AS table_name, INDEX_NAME AS index_name, NON_UNIQUE AS non_unique, \
             SEQ_IN_INDEX AS seq, COLUMN_NAME AS column_name, SUB_PART AS sub_part, INDEX_TYPE AS index_type, \
             COLLATION AS collation, INDEX_COMMENT AS index_comment{extra_cols} \
             FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE() \
             ORDER BY TABLE_NAME, INDEX_NAME, SEQ_IN_INDEX"
        ))
        .await?;
    let mut grouped: BTreeMap<(String, String), Vec<IndexPart>> = BTreeMap::new();
    for r in &rows {
        let table = text(r, "table_name").unwrap_or_default();
        if !schema.tables.contains_key(&table) {
            continue;
        }
        grouped
            .entry((table, text(r, "index_name").unwrap_or_default()))
            .or_default()
            .push(IndexPart {
                non_unique: int(r, "non_unique").unwrap_or(1) != 0,
                column: text(r, "column_name"),
                expression: text(r, "expression"),
                sub_part: int(r, "sub_part"),
                descending: text(r, "collation").as_deref() == Some("D"),
                index_type: text(r, "index_type").unwrap_or_default(),
                comment: text(r, "index_comment").unwrap_or_default(),
                ignored: text(r, "ignored").as_deref() == Some("YES"),
                invisible: text(r, "is_visible").as_deref() == Some("NO"),
            });
    }
    for ((table, name), parts) in grouped {
        let index = build_index(&name, &parts);
        if let Some(t) = schema.tables.get_mut(&table) {
            t.indexes.insert(name, index);
        }
    }

    // Foreign keys.
    let rows: Vec<Row> = conn
        .query(
            "SELECT kcu.TABLE_NAME AS table_name, kcu.CONSTRAINT_NAME AS constraint_name, \
             kcu.COLUMN_NAME AS column_name, kcu.REFERENCED_TABLE_SCHEMA AS ref_schema, \
             kcu.REFERENCED_TABLE_NAME AS ref_table, kcu.REFERENCED_COLUMN_NAME AS ref_column, \
             rc.UPDATE_RULE AS update_rule, rc.DELETE_RULE AS delete_rule \
             FROM information_schema.KEY_COLUMN_USAGE kcu \
             JOIN information_schema.REFERENTIAL_CONSTRAINTS rc \
               ON rc.CONSTRAINT_SCHEMA = kcu.CONSTRAINT_SCHEMA AND rc.TABLE_NAME = kcu.TABLE_NAME \
              AND rc.CONSTRAINT_NAME = kcu.CONSTRAINT_NAME \
             WHERE kcu.TABLE_SCHEMA = DATABASE() AND kcu.REFERENCED_TABLE_NAME IS NOT NULL \
             ORDER BY kcu.TABLE_NAME, kcu.CONSTRAINT_NAME, kcu.ORDINAL_POSITION",
        )
        .await?;
    let mut fks: BTreeMap<(String, String), ForeignKey> = BTreeMap::new();
    for r in &rows {
        let table = text(r, "table_name").unwrap_or_default();
        if !schema.tables.contains_key(&table) {
            continue;
        }
        let fk = fks
            .entry((table, text(r, "constraint_name").unwrap_or_default()))
            .or_insert_with(|| ForeignKey {
                ref_schema: text(r, "ref_schema").unwrap_or_default(),
                ref_table: text(r, "ref_table").unwrap_or_default(),
                on_delete: text(r, "delete_rule").unwrap_or_else(|| "RESTRICT".into()),
                on_update: text(r, "update_rule").unwrap_or_else(|| "RESTRICT".into()),
                ..Default::default()
            });
        fk.columns.push(text(r, "column_name").unwrap_or_default());
        fk.ref_columns
            .push(text(r, "ref_column").unwrap_or_default());
    }
    for ((table, name), fk) in fks {
        if let Some(t) = schema.tables.get_mut(&table) {
            t.constraints.insert(
                name,
                Constraint {
                    kind: ConstraintKind::ForeignKey,
                    definition: fk.definition(&db),
                },
            );
        }
    }

    // Views.
    let rows: Vec<Row> = conn
        .query(
            "SELECT TABLE_NAME AS table_name, VIEW_DEFINITION AS definition, CHECK_OPTION AS check_option \
             FROM information_schema.VIEWS WHERE TABLE_SCHEMA = DATABASE()",
        )
        .await?;
    for r in &rows {
        let name = text(r, "table_name").unwrap_or_default();
        let mut definition = normalise_view(&text(r, "definition").unwrap_or_default(), &db);
        match text(r, "check_option").as_deref() {
            Some("CASCADED") => definition.push_str(" WITH CASCADED CHECK OPTION"),
            Some("LOCAL") => definition.push_str(" WITH LOCAL CHECK OPTION"),
            _ => {}
        }
        schema.views.insert(
            name,
            View {
                definition,
                materialized: false,
            },
        );
    }

    // The server's own CREATE TABLE text, for rendering whole tables.
    let names: Vec<String> = schema.tables.keys().cloned().collect();
    for name in names {
        let row: mysql_async::Result<Option<Row>> = conn
            .query_first(format!("SHOW CREATE TABLE {}", quote::ident(&name)))
            .await;
        match row {
            Ok(Some(r)) => {
                let sql = r
                    .get_opt::<Option<Vec<u8>>, _>(1)
                    .and_then(Result::ok)
                    .flatten()
                    .map(|b| String::from_utf8_lossy(&b).into_owned());
                if let Some(t) = schema.tables.get_mut(&name) {
                    t.create_sql = sql;
                }
            }
            // Dropped since the catalog was read: keep what was read, without create_sql.
            Err(mysql_async::Error::Server(e)) if e.code == 1146 => {}
            Ok(None) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(schema)
}

/// `CHECK (...)`: MariaDB reports the bare expression, MySQL wraps it in parentheses already.
pub fn check_definition(clause: &str, flavour: Flavour) -> String {
    let c = clause.trim();
    if !flavour.is_mariadb() && c.starts_with('(') && c.ends_with(')') {
        format!("CHECK {c}")
    } else {
        format!("CHECK ({c})")
    }
}

/// Removes the current database's qualifier, so a definition reads the same in any database.
pub fn normalise_view(definition: &str, db: &str) -> String {
    if db.is_empty() {
        return definition.trim().to_string();
    }
    definition
        .replace(&format!("{}.", quote::ident(db)), "")
        .trim()
        .to_string()
}

/// Column attributes parsed from `EXTRA` (comma- or space-separated words, e.g.
/// `auto_increment, INVISIBLE`, `VIRTUAL GENERATED`, `on update current_timestamp(3)`, MySQL's
/// `DEFAULT_GENERATED on update CURRENT_TIMESTAMP`).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ColumnAttrs {
    pub extra: Option<String>,
    pub generated: bool,
    /// MySQL: the default is an expression.
    pub default_generated: bool,
}

impl ColumnAttrs {
    pub fn parse(
        extra: &str,
        generation: Option<&str>,
        comment: &str,
        checks: &[String],
    ) -> ColumnAttrs {
        let words: Vec<&str> = extra
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|w| !w.is_empty())
            .collect();
        let mut gen_kind = None;
        let mut on_update = None;
        let mut auto_inc = false;
        let mut invisible = false;
        let mut default_generated = false;
        let mut other = Vec::new();
        let mut i = 0;
        while i < words.len() {
            let w = words[i];
            let next = words.get(i + 1).copied().unwrap_or("");
            if w.eq_ignore_ascii_case("auto_increment") {
                auto_inc = true;
            } else if w.eq_ignore_ascii_case("on") && next.eq_ignore_ascii_case("update") {
                on_update = words.get(i + 2).map(|s| s.to_string());
                i += 2;
            } else if ["virtual", "stored", "persistent"]
                .iter()
                .any(|k| w.eq_ignore_ascii_case(k))
                && next.eq_ignore_ascii_case("generated")
            {
                gen_kind = Some(if w.eq_ignore_ascii_case("virtual") {
                    "VIRTUAL"
                } else {
                    "STORED"
                });
                i += 1;
            } else if w.eq_ignore_ascii_case("invisible") {
                invisible = true;
            } else if w.eq_ignore_ascii_case("default_generated") {
                default_generated = true;
            } else {
                other.push(w.to_ascii_uppercase());
            }
            i += 1;
        }
        let mut parts = Vec::new();
        if let Some(kind) = gen_kind {
            let expr = generation.unwrap_or("").trim();
            parts.push(format!("GENERATED ALWAYS AS ({expr}) {kind}"));
        }
        if let Some(u) = on_update {
            parts.push(format!("ON UPDATE {u}"));
        }
        if auto_inc {
            parts.push("AUTO_INCREMENT".into());
        }
        if invisible {
            parts.push("INVISIBLE".into());
        }
        parts.extend(other);
        if !comment.is_empty() {
            parts.push(format!("COMMENT {}", quote::literal(comment)));
        }
        parts.extend(checks.iter().cloned());
        ColumnAttrs {
            extra: (!parts.is_empty()).then(|| parts.join(" ")),
            generated: gen_kind.is_some(),
            default_generated,
        }
    }
}

/// The default as SQL, or None for "no default" and "DEFAULT NULL" alike.
pub fn normalise_default(
    raw: Option<&str>,
    flavour: Flavour,
    default_generated: bool,
    data_type: &str,
) -> Option<String> {
    let raw = raw?;
    if flavour.sql_defaults() {
        return (raw != "NULL").then(|| raw.to_string());
    }
    // MySQL (and MariaDB before 10.2.7) report literals unquoted and expressions bare.
    let lower = raw.to_ascii_lowercase();
    let temporal_now = ["current_timestamp", "now(", "localtimestamp", "localtime"]
        .iter()
        .any(|p| lower.starts_with(p));
    if default_generated {
        return Some(
            if temporal_now || (raw.starts_with('(') && raw.ends_with(')')) {
                raw.to_string()
            } else {
                format!("({raw})")
            },
        );
    }
    if temporal_now {
        return Some(raw.to_string());
    }
    let numeric = matches!(
        data_type.to_ascii_lowercase().as_str(),
        "tinyint"
            | "smallint"
            | "mediumint"
            | "int"
            | "integer"
            | "bigint"
            | "decimal"
            | "numeric"
            | "float"
            | "double"
            | "real"
            | "year"
    );
    if numeric || (data_type.eq_ignore_ascii_case("bit") && raw.starts_with("b'")) {
        Some(raw.to_string())
    } else {
        Some(quote::literal(raw))
    }
}

#[derive(Debug, Clone, Default)]
pub struct IndexPart {
    pub non_unique: bool,
    pub column: Option<String>,
    /// MySQL 8 functional key part.
    pub expression: Option<String>,
    pub sub_part: Option<i64>,
    pub descending: bool,
    pub index_type: String,
    pub comment: String,
    pub ignored: bool,
    pub invisible: bool,
}

/// The index as its definition reads in `SHOW CREATE TABLE` (and after `ALTER TABLE ... ADD`).
pub fn build_index(name: &str, parts: &[IndexPart]) -> Index {
    let first = parts.first().cloned().unwrap_or_default();
    let mut columns = Vec::new();
    let mut rendered = Vec::new();
    for p in parts {
        let (col, sql) = match (&p.column, &p.expression) {
            (Some(c), _) => match p.sub_part {
                Some(n) => (format!("{c}({n})"), format!("{}({n})", quote::ident(c))),
                None => (c.clone(), quote::ident(c)),
            },
            (None, Some(e)) => (format!("({e})"), format!("({e})")),
            (None, None) => (String::new(), String::new()),
        };
        columns.push(col);
        rendered.push(if p.descending {
            format!("{sql} DESC")
        } else {
            sql
        });
    }
    let cols = rendered.join(",");
    let unique = !first.non_unique;
    let mut definition = if name == "PRIMARY" {
        format!("PRIMARY KEY ({cols})")
    } else {
        let kind = match first.index_type.as_str() {
            "FULLTEXT" => "FULLTEXT KEY",
            "SPATIAL" => "SPATIAL KEY",
            _ if unique => "UNIQUE KEY",
            _ => "KEY",
        };
        format!("{kind} {} ({cols})", quote::ident(name))
    };
    // MariaDB's long unique keys (on BLOB/TEXT) and MEMORY tables use hash indexes.
    if first.index_type == "HASH" {
        definition.push_str(" USING HASH");
    }
    if !first.comment.is_empty() {
        definition.push_str(&format!(" COMMENT {}", quote::literal(&first.comment)));
    }
    if first.ignored {
        definition.push_str(" IGNORED");
    }
    if first.invisible {
        definition.push_str(" INVISIBLE");
    }
    Index {
        unique,
        columns,
        definition,
    }
}

#[derive(Debug, Default)]
struct ForeignKey {
    columns: Vec<String>,
    ref_schema: String,
    ref_table: String,
    ref_columns: Vec<String>,
    on_delete: String,
    on_update: String,
}

impl ForeignKey {
    fn definition(&self, db: &str) -> String {
        let list = |v: &[String]| {
            v.iter()
                .map(|c| quote::ident(c))
                .collect::<Vec<_>>()
                .join(",")
        };
        let target = if self.ref_schema.is_empty() || self.ref_schema == db {
            quote::ident(&self.ref_table)
        } else {
            format!(
                "{}.{}",
                quote::ident(&self.ref_schema),
                quote::ident(&self.ref_table)
            )
        };
        format!(
            "FOREIGN KEY ({}) REFERENCES {target} ({}) ON DELETE {} ON UPDATE {}",
            list(&self.columns),
            list(&self.ref_columns),
            self.on_delete,
            self.on_update
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MARIA: Flavour = Flavour {
        kind: EngineKind::MariaDb,
        version: (10, 11, 19),
    };
    const MYSQL: Flavour = Flavour {
        kind: EngineKind::MySql,
        version: (8, 0, 36),
    };

    #[test]
    fn versions_and_flavours_parse() {
        assert_eq!(
            Flavour::from_version_string("10.11.19-MariaDB-0+deb12u1"),
            MARIA
        );
        assert_eq!(Flavour::from_version_string("8.0.36"), MYSQL);
        let f = Flavour::from_version_string("5.7.44-log");
        assert_eq!((f.kind, f.version), (EngineKind::MySql, (5, 7, 44)));
        assert!(MARIA.at_least((10, 6, 0)) && !MARIA.at_least((11, 0, 0)));
    }

    #[test]
    fn mariadb_defaults_are_sql_and_null_means_none() {
        let d = |raw: Option<&str>| normalise_default(raw, MARIA, false, "varchar");
        assert_eq!(d(None), None);
        assert_eq!(d(Some("NULL")), None);
        assert_eq!(d(Some("'NULL'")).as_deref(), Some("'NULL'"));
        assert_eq!(d(Some("'x@y'")).as_deref(), Some("'x@y'"));
        assert_eq!(d(Some("5")).as_deref(), Some("5"));
        assert_eq!(
            d(Some("current_timestamp(3)")).as_deref(),
            Some("current_timestamp(3)")
        );
        assert_eq!(d(Some("''")).as_deref(), Some("''"));
    }

    #[test]
    fn mysql_defaults_are_quoted_into_sql() {
        assert_eq!(
            normalise_default(Some("x'y"), MYSQL, false, "varchar").as_deref(),
            Some("'x''y'")
        );
        assert_eq!(
            normalise_default(Some("5"), MYSQL, false, "int").as_deref(),
            Some("5")
        );
        assert_eq!(
            normalise_default(Some("CURRENT_TIMESTAMP"), MYSQL, true, "timestamp").as_deref(),
            Some("CURRENT_TIMESTAMP")
        );
        assert_eq!(
            normalise_default(Some("rand()"), MYSQL, true, "double").as_deref(),
            Some("(rand())")
        );
        assert_eq!(normalise_default(None, MYSQL, false, "int"), None);
    }

    #[test]
    fn extra_becomes_column_attributes_in_definition_order() {
        let a = ColumnAttrs::parse("auto_increment, INVISIBLE", None, "", &[]);
        assert_eq!(a.extra.as_deref(), Some("AUTO_INCREMENT INVISIBLE"));
        let a = ColumnAttrs::parse(
            "VIRTUAL GENERATED",
            Some("`n` * 2"),
            "it's",
            &["CHECK (`g` > 0)".into()],
        );
        assert!(a.generated);
        assert_eq!(
            a.extra.as_deref(),
            Some("GENERATED ALWAYS AS (`n` * 2) VIRTUAL COMMENT 'it''s' CHECK (`g` > 0)")
        );
        let a = ColumnAttrs::parse("on update current_timestamp(3)", None, "", &[]);
        assert_eq!(a.extra.as_deref(), Some("ON UPDATE current_timestamp(3)"));
        let a = ColumnAttrs::parse(
            "DEFAULT_GENERATED on update CURRENT_TIMESTAMP",
            None,
            "",
            &[],
        );
        assert!(a.default_generated);
        assert_eq!(a.extra.as_deref(), Some("ON UPDATE CURRENT_TIMESTAMP"));
        let a = ColumnAttrs::parse("STORED GENERATED", Some("`a` + 1"), "", &[]);
        assert_eq!(
            a.extra.as_deref(),
            Some("GENERATED ALWAYS AS (`a` + 1) STORED")
        );
        assert_eq!(ColumnAttrs::parse("", None, "", &[]).extra, None);
    }

    #[test]
    fn indexes_render_like_show_create_table() {
        let p = |c: &str, sub: Option<i64>, non_unique: bool| IndexPart {
            non_unique,
            column: Some(c.into()),
            sub_part: sub,
            index_type: "BTREE".into(),
            ..Default::default()
        };
        let i = build_index("PRIMARY", &[p("id", None, false)]);
        assert_eq!(i.definition, "PRIMARY KEY (`id`)");
        assert!(i.unique);
        let i = build_index("uq", &[p("a", None, false), p("b", None, false)]);
        assert_eq!(i.definition, "UNIQUE KEY `uq` (`a`,`b`)");
        let i = build_index("idx`x", &[p("bio", Some(20), true), p("note", None, true)]);
        assert_eq!(i.definition, "KEY `idx``x` (`bio`(20),`note`)");
        assert_eq!(i.columns, vec!["bio(20)", "note"]);
        let mut d = p("a", None, true);
        d.descending = true;
        d.comment = "c".into();
        d.ignored = true;
        assert_eq!(
            build_index("k", &[d]).definition,
            "KEY `k` (`a` DESC) COMMENT 'c' IGNORED"
        );
    }

    #[test]
    fn views_and_checks_normalise() {
        assert_eq!(
            normalise_view("select `db`.`t`.`id` AS `id` from `db`.`t`", "db"),
            "select `t`.`id` AS `id` from `t`"
        );
        assert_eq!(check_definition("`n` > 0", MARIA), "CHECK (`n` > 0)");
        assert_eq!(check_definition("(`n` > 0)", MYSQL), "CHECK (`n` > 0)");
    }
}
