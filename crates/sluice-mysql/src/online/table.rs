//! The live definition of one table, as the online path needs it: columns, keys, foreign keys and
//! triggers, read from information_schema.

use mysql_async::prelude::Queryable;
use mysql_async::Conn;

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LiveColumn {
    pub name: String,
    /// COLUMN_TYPE, lower-cased: `int(11)`, `varchar(20)`, `bigint(20) unsigned`.
    pub column_type: String,
    /// DATA_TYPE: `int`, `varchar`.
    pub data_type: String,
    pub nullable: bool,
    pub charset: Option<String>,
    pub collation: Option<String>,
    /// Virtual or stored generated column (never written by an INSERT).
    pub generated: bool,
    /// COLUMN_DEFAULT: None when the column has no default (a nullable one without a default
    /// reads `NULL`).
    pub default: Option<String>,
    pub auto_increment: bool,
    /// MariaDB: a JSON column (LONGTEXT with the server's `json_valid` check named after it).
    pub json: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LiveIndex {
    pub name: String,
    pub unique: bool,
    pub columns: Vec<String>,
    pub kind: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LiveTable {
    pub name: String,
    pub columns: Vec<LiveColumn>,
    pub indexes: Vec<LiveIndex>,
    pub charset: Option<String>,
    pub row_format: Option<String>,
    /// Foreign keys declared on this table (name → referenced table).
    pub fks_out: Vec<(String, String)>,
    /// Foreign keys of other tables pointing at this one (table.constraint).
    pub fks_in: Vec<String>,
    /// Triggers on this table.
    pub triggers: Vec<String>,
}

impl LiveTable {
    pub fn column(&self, name: &str) -> Option<&LiveColumn> {
        self.columns
            .iter()
            .find(|c| c.name.eq_ignore_ascii_case(name))
    }

    pub fn indexed(&self, column: &str) -> bool {
        self.indexes
            .iter()
            .any(|i| i.columns.iter().any(|c| c.eq_ignore_ascii_case(column)))
    }

    pub fn has_fulltext(&self) -> bool {
        self.indexes.iter().any(|i| i.kind == "FULLTEXT")
    }

    /// The key the copy walks: the primary key, else the first unique key over NOT NULL columns.
    pub fn copy_key(&self) -> Option<&LiveIndex> {
        self.indexes
            .iter()
            .find(|i| i.name == "PRIMARY")
            .or_else(|| {
                self.indexes.iter().find(|i| {
                    i.unique
                        && i.columns
                            .iter()
                            .all(|c| self.column(c).is_some_and(|c| !c.nullable && !c.generated))
                })
            })
    }
}

/// name, type, data type, nullable, charset, collation, extra, default.
type ColumnRow = (
    String,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    String,
    Option<String>,
);

/// Reads `table` in the current database; None when it does not exist.
pub async fn read(conn: &mut Conn, table: &str) -> mysql_async::Result<Option<LiveTable>> {
    let t: Option<(Option<String>, Option<String>)> = conn
        .exec_first(
            "SELECT t.TABLE_COLLATION, t.ROW_FORMAT FROM information_schema.TABLES t \
             WHERE t.TABLE_SCHEMA = DATABASE() AND t.TABLE_NAME = ?",
            (table,),
        )
        .await?;
    let Some((collation, row_format)) = t else {
        return Ok(None);
    };
    let charset = match &collation {
        Some(c) => {
            conn.exec_first::<String, _, _>(
                "SELECT CHARACTER_SET_NAME FROM information_schema.COLLATIONS WHERE COLLATION_NAME = ?",
                (c,),
            )
            .await?
        }
        None => None,
    };
    let cols: Vec<ColumnRow> = conn
        .exec(
            "SELECT COLUMN_NAME, LOWER(COLUMN_TYPE), LOWER(DATA_TYPE), IS_NULLABLE, CHARACTER_SET_NAME, \
             COLLATION_NAME, EXTRA, COLUMN_DEFAULT FROM information_schema.COLUMNS \
             WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION",
            (table,),
        )
        .await?;
    // MariaDB names a JSON column's check after the column; MySQL has a JSON type of its own and
    // no TABLE_NAME in CHECK_CONSTRAINTS (the query fails there: no JSON-as-LONGTEXT columns).
    let json: Vec<String> = conn
        .exec(
            "SELECT CONSTRAINT_NAME FROM information_schema.CHECK_CONSTRAINTS \
             WHERE CONSTRAINT_SCHEMA = DATABASE() AND TABLE_NAME = ? \
             AND CHECK_CLAUSE = CONCAT('json_valid(`', CONSTRAINT_NAME, '`)')",
            (table,),
        )
        .await
        .unwrap_or_default();
    let columns = cols
        .into_iter()
        .map(
            |(name, column_type, data_type, nullable, charset, collation, extra, default)| {
                LiveColumn {
                    json: json.iter().any(|j| j.eq_ignore_ascii_case(&name)),
                    name,
                    column_type,
                    data_type,
                    nullable: nullable == "YES",
                    charset,
                    collation,
                    generated: extra.contains("GENERATED")
                        || extra.contains("VIRTUAL")
                        || extra.contains("PERSISTENT")
                        || extra.contains("STORED"),
                    default,
                    auto_increment: extra.to_ascii_lowercase().contains("auto_increment"),
                }
            },
        )
        .collect();
    let idx: Vec<(String, i64, String, String)> = conn
        .exec(
            "SELECT INDEX_NAME, NON_UNIQUE, COLUMN_NAME, INDEX_TYPE FROM information_schema.STATISTICS \
             WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? ORDER BY INDEX_NAME = 'PRIMARY' DESC, INDEX_NAME, SEQ_IN_INDEX",
            (table,),
        )
        .await?;
    let mut indexes: Vec<LiveIndex> = Vec::new();
    for (name, non_unique, column, kind) in idx {
        match indexes.iter_mut().find(|i| i.name == name) {
            Some(i) => i.columns.push(column),
            None => indexes.push(LiveIndex {
                name,
                unique: non_unique == 0,
                columns: vec![column],
                kind,
            }),
        }
    }
    let fks_out: Vec<(String, String)> = conn
        .exec(
            "SELECT CONSTRAINT_NAME, REFERENCED_TABLE_NAME FROM information_schema.REFERENTIAL_CONSTRAINTS \
             WHERE CONSTRAINT_SCHEMA = DATABASE() AND TABLE_NAME = ?",
            (table,),
        )
        .await?;
    let fks_in: Vec<String> = conn
        .exec(
            "SELECT CONCAT(TABLE_NAME, '.', CONSTRAINT_NAME) FROM information_schema.REFERENTIAL_CONSTRAINTS \
             WHERE UNIQUE_CONSTRAINT_SCHEMA = DATABASE() AND REFERENCED_TABLE_NAME = ? AND TABLE_NAME <> ?",
            (table, table),
        )
        .await?;
    let triggers: Vec<String> = conn
        .exec(
            "SELECT TRIGGER_NAME FROM information_schema.TRIGGERS \
             WHERE EVENT_OBJECT_SCHEMA = DATABASE() AND EVENT_OBJECT_TABLE = ?",
            (table,),
        )
        .await?;
    Ok(Some(LiveTable {
        name: table.to_string(),
        columns,
        indexes,
        charset,
        row_format,
        fks_out,
        fks_in,
        triggers,
    }))
}
