//! Which ALTER algorithm a clause needs, predicted from the server flavour and version and the live
//! table definition. A prediction only picks what to ask for first: sluice runs the fast paths with
//! an explicit `ALGORITHM=` (and `LOCK=NONE`), so a wrong guess makes the server refuse, never copy
//! the table under a lock. The MariaDB rules are checked against the real server in
//! `tests/online.rs`.

use super::parse::{ClauseKind, ColumnDef, Position};
use super::table::{LiveColumn, LiveTable};
use crate::introspect::Flavour;

/// Ordered from cheapest to most expensive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Algo {
    /// Metadata only.
    Instant,
    /// MariaDB: in place without rebuilding the clustered index (e.g. an index build).
    NoCopy,
    /// In place with a table rebuild, concurrent writes allowed.
    Inplace,
    /// Needs the table copied: sluice's online shadow-table copy.
    Copy,
}

impl Algo {
    pub fn name(self) -> &'static str {
        match self {
            Algo::Instant => "instant",
            Algo::NoCopy => "nocopy",
            Algo::Inplace => "inplace",
            Algo::Copy => "copy",
        }
    }

    /// The clause sluice appends to the statement to ask for this algorithm; None for Copy.
    pub fn clause(self, flavour: Flavour) -> Option<&'static str> {
        match self {
            Algo::Instant => Some("ALGORITHM=INSTANT"),
            Algo::NoCopy if flavour.is_mariadb() => Some("ALGORITHM=NOCOPY, LOCK=NONE"),
            Algo::NoCopy | Algo::Inplace => Some("ALGORITHM=INPLACE, LOCK=NONE"),
            Algo::Copy => None,
        }
    }

    /// The fast paths to try, in order, starting from the predicted one.
    pub fn ladder(self, flavour: Flavour) -> Vec<Algo> {
        let all: &[Algo] = if flavour.is_mariadb() && flavour.at_least((10, 3, 0)) {
            &[Algo::Instant, Algo::NoCopy, Algo::Inplace]
        } else {
            &[Algo::Instant, Algo::Inplace]
        };
        all.iter().copied().filter(|a| *a >= self).collect()
    }
}

/// The prediction for one clause and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prediction {
    pub algo: Algo,
    pub why: String,
}

fn p(algo: Algo, why: impl Into<String>) -> Prediction {
    Prediction {
        algo,
        why: why.into(),
    }
}

/// MariaDB 10.3.2+ adds a last column instantly; 10.4+ anywhere, and drops instantly.
fn mariadb(f: Flavour, v: (u32, u32, u32)) -> bool {
    f.is_mariadb() && f.at_least(v)
}

fn mysql(f: Flavour, v: (u32, u32, u32)) -> bool {
    !f.is_mariadb() && f.at_least(v)
}

/// The prediction for one clause on `table`.
pub fn predict(f: Flavour, table: &LiveTable, kind: &ClauseKind) -> Prediction {
    let nocopy = if mariadb(f, (10, 3, 0)) {
        Algo::NoCopy
    } else {
        Algo::Inplace
    };
    match kind {
        ClauseKind::AddColumn { def, position, .. } => {
            if def.auto_increment {
                return p(Algo::Copy, "an AUTO_INCREMENT column fills every row");
            }
            if def.generated_stored {
                return p(
                    Algo::Copy,
                    "a stored generated column is computed for every row",
                );
            }
            if def.inline_key || def.references || def.check {
                return p(
                    Algo::Copy,
                    "a column with an inline key, reference or check",
                );
            }
            if table.has_fulltext() {
                return p(
                    Algo::Inplace,
                    "the table has a FULLTEXT index (no instant ADD)",
                );
            }
            if table
                .row_format
                .as_deref()
                .is_some_and(|r| r.eq_ignore_ascii_case("compressed"))
            {
                return p(Algo::Inplace, "ROW_FORMAT=COMPRESSED (no instant ADD)");
            }
            let last = *position == Position::Last;
            if mariadb(f, (10, 4, 0)) || mysql(f, (8, 0, 29)) {
                p(Algo::Instant, "instant ADD COLUMN (any position)")
            } else if last && (mariadb(f, (10, 3, 2)) || mysql(f, (8, 0, 12))) {
                p(Algo::Instant, "instant ADD COLUMN as the last column")
            } else {
                p(Algo::Inplace, "ADD COLUMN rebuilds the table in place")
            }
        }
        ClauseKind::DropColumn { name } => {
            if table.indexed(name) {
                // The indexes on the column are rebuilt without it.
                return p(nocopy.max(Algo::NoCopy), "the column is part of an index");
            }
            if mariadb(f, (10, 4, 0)) || mysql(f, (8, 0, 29)) {
                p(Algo::Instant, "instant DROP COLUMN")
            } else {
                p(Algo::Inplace, "DROP COLUMN rebuilds the table in place")
            }
        }
        ClauseKind::RenameColumn { .. } => rename(f),
        ClauseKind::ChangeColumn {
            from,
            to,
            def,
            position,
        } => {
            let Some(old) = table.column(from) else {
                return p(Algo::Copy, format!("no column `{from}` on the table"));
            };
            let moved = *position != Position::Last;
            let change = column_change(table, old, def);
            let base = match change {
                Change::Same => {
                    if from != to {
                        rename(f)
                    } else {
                        p(
                            Algo::Instant,
                            "same type: only metadata (default, comment) changes",
                        )
                    }
                }
                Change::Default => p(Algo::Instant, "only the default changes"),
                Change::Nullability => p(
                    Algo::Inplace,
                    "NULL/NOT NULL changes rebuild the table in place",
                ),
                Change::VarcharExtend { crosses_255 } => {
                    if mariadb(f, (10, 4, 0)) || !crosses_255 {
                        p(Algo::Instant, "VARCHAR extended")
                    } else {
                        p(
                            Algo::Copy,
                            "VARCHAR extended past 255 bytes changes the length prefix",
                        )
                    }
                }
                Change::Collation => {
                    if mariadb(f, (10, 4, 0)) && !table.indexed(from) {
                        p(Algo::Instant, "collation change of an unindexed column")
                    } else {
                        p(Algo::Copy, "collation change")
                    }
                }
                Change::Type(why) => p(Algo::Copy, why),
            };
            if moved && base.algo < Algo::Inplace {
                if mariadb(f, (10, 4, 0)) || mysql(f, (8, 0, 29)) {
                    return p(base.algo, format!("{} (column moved)", base.why));
                }
                return p(Algo::Inplace, "moving a column rebuilds the table");
            }
            base
        }
        ClauseKind::SetDefault { .. } | ClauseKind::DropDefault { .. } => {
            if f.is_mariadb() || mysql(f, (8, 0, 12)) {
                p(Algo::Instant, "only the default changes")
            } else {
                p(Algo::Inplace, "only the default changes (metadata)")
            }
        }
        ClauseKind::AddIndex { special: true, .. } => p(
            Algo::Copy,
            "FULLTEXT/SPATIAL index builds cannot allow concurrent writes",
        ),
        ClauseKind::AddIndex { .. } => p(nocopy, "index build in place, writes allowed"),
        ClauseKind::AddPrimaryKey => p(Algo::Inplace, "primary key change rebuilds in place"),
        ClauseKind::DropPrimaryKey => p(
            Algo::Copy,
            "dropping the primary key without adding one needs a copy",
        ),
        ClauseKind::DropIndex | ClauseKind::DropForeignKey => p(nocopy, "dropping a key in place"),
        ClauseKind::RenameIndex => {
            if mariadb(f, (10, 3, 0)) || mysql(f, (8, 0, 0)) {
                p(Algo::Instant, "renaming an index")
            } else {
                p(Algo::Inplace, "renaming an index")
            }
        }
        ClauseKind::AddForeignKey => p(
            Algo::Copy,
            "ADD FOREIGN KEY with foreign_key_checks=1 copies the table",
        ),
        ClauseKind::AddCheck => p(Algo::Copy, "a new CHECK constraint is validated by a copy"),
        ClauseKind::DropConstraint => p(Algo::Instant, "dropping a constraint"),
        ClauseKind::ConvertCharset => p(Algo::Copy, "converting the character set"),
        ClauseKind::Rebuild => p(Algo::Inplace, "table rebuild in place"),
        ClauseKind::TableComment => p(Algo::Instant, "table comment"),
        ClauseKind::AutoIncrementValue => p(nocopy, "AUTO_INCREMENT value"),
        ClauseKind::AlgorithmOrLock
        | ClauseKind::RenameTable
        | ClauseKind::Partition
        | ClauseKind::Other => p(Algo::Copy, "not a clause sluice knows"),
    }
}

fn rename(f: Flavour) -> Prediction {
    if mariadb(f, (10, 3, 0)) || mysql(f, (8, 0, 28)) {
        p(Algo::Instant, "renaming a column")
    } else {
        p(Algo::Inplace, "renaming a column")
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Change {
    Same,
    Default,
    Nullability,
    VarcharExtend { crosses_255: bool },
    Collation,
    Type(String),
}

/// Strips integer display widths (`int(11)` → `int`) and spaces, so live and written types compare.
pub fn normalise_type(t: &str) -> String {
    let t = t.to_ascii_lowercase().replace(' ', "");
    for int in ["tinyint", "smallint", "mediumint", "bigint", "int"] {
        if let Some(rest) = t.strip_prefix(int) {
            let rest = if rest.starts_with('(') {
                rest.split_once(')').map(|(_, r)| r).unwrap_or("")
            } else {
                rest
            };
            return format!("{}{rest}", if int == "int" { "int" } else { int });
        }
    }
    match t.as_str() {
        "integer" => "int".into(),
        "bool" | "boolean" => "tinyint".into(),
        _ => t,
    }
}

fn varchar_len(t: &str) -> Option<u64> {
    t.strip_prefix("varchar(")?.strip_suffix(')')?.parse().ok()
}

/// Bytes per character of a charset.
fn max_bytes(charset: Option<&str>) -> u64 {
    match charset.unwrap_or("utf8mb4") {
        "latin1" | "ascii" | "binary" => 1,
        "utf8" | "utf8mb3" => 3,
        "ucs2" | "utf16" => 4,
        _ => 4,
    }
}

fn column_change(table: &LiveTable, old: &LiveColumn, new: &ColumnDef) -> Change {
    let old_t = normalise_type(&old.column_type);
    let new_t = normalise_type(&new.data_type);
    // The charset the column ends up with: as written, else the table default (MODIFY without a
    // charset converts a text column to the table's).
    let textual = old.charset.is_some();
    let new_cs = new
        .charset
        .clone()
        .or_else(|| {
            new.collation
                .as_ref()
                .and_then(|c| c.split('_').next().map(str::to_string))
        })
        .or_else(|| table.charset.clone());
    if textual && new_cs.is_some() && new_cs.as_deref() != old.charset.as_deref() {
        return Change::Type("character set change converts every value".into());
    }
    if old_t != new_t {
        if let (Some(a), Some(b)) = (varchar_len(&old_t), varchar_len(&new_t)) {
            if b >= a {
                let m = max_bytes(old.charset.as_deref());
                return Change::VarcharExtend {
                    crosses_255: a * m <= 255 && b * m > 255,
                };
            }
            return Change::Type("VARCHAR shortened: every value is checked".into());
        }
        return Change::Type(format!(
            "type change {old_t} → {new_t} converts every value"
        ));
    }
    if textual {
        if let Some(c) = &new.collation {
            if Some(c.as_str()) != old.collation.as_deref() {
                return Change::Collation;
            }
        }
    }
    if new.not_null == old.nullable {
        return Change::Nullability;
    }
    if new.default.is_some() {
        return Change::Default;
    }
    Change::Same
}

/// The statement's path: the most expensive of its clauses, with each clause's reason.
pub fn plan(f: Flavour, table: &LiveTable, kinds: &[ClauseKind]) -> (Algo, Vec<Prediction>) {
    let preds: Vec<Prediction> = kinds.iter().map(|k| predict(f, table, k)).collect();
    let algo = preds.iter().map(|p| p.algo).max().unwrap_or(Algo::Instant);
    (algo, preds)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::online::parse;
    use crate::online::table::LiveIndex;
    use sluice_core::target::EngineKind;

    fn table() -> LiveTable {
        let col = |name: &str, ty: &str, nullable: bool, text: bool| LiveColumn {
            name: name.into(),
            column_type: ty.into(),
            data_type: ty.split('(').next().unwrap().into(),
            nullable,
            charset: text.then(|| "utf8mb4".into()),
            collation: text.then(|| "utf8mb4_general_ci".into()),
            generated: false,
        };
        LiveTable {
            name: "p".into(),
            columns: vec![
                col("id", "int(11)", false, false),
                col("n", "int(11)", false, false),
                col("balance", "int(11)", true, false),
                col("note", "varchar(20)", true, true),
            ],
            indexes: vec![
                LiveIndex {
                    name: "PRIMARY".into(),
                    unique: true,
                    columns: vec!["id".into()],
                    kind: "BTREE".into(),
                },
                LiveIndex {
                    name: "ix_n".into(),
                    unique: false,
                    columns: vec!["n".into()],
                    kind: "BTREE".into(),
                },
            ],
            charset: Some("utf8mb4".into()),
            ..Default::default()
        }
    }

    fn algo(f: Flavour, clause: &str) -> Algo {
        let a = parse::parse(&format!("ALTER TABLE p {clause}")).unwrap();
        let kinds: Vec<_> = a.clauses.into_iter().map(|c| c.kind).collect();
        plan(f, &table(), &kinds).0
    }

    fn flavour(kind: EngineKind, v: (u32, u32, u32)) -> Flavour {
        Flavour { kind, version: v }
    }

    #[test]
    fn normalises_types() {
        assert_eq!(normalise_type("int(11)"), "int");
        assert_eq!(normalise_type("bigint(20) unsigned"), "bigintunsigned");
        assert_eq!(normalise_type("INT UNSIGNED"), "intunsigned");
        assert_eq!(normalise_type("varchar(20)"), "varchar(20)");
    }

    #[test]
    fn mariadb_10_11_rules() {
        let f = flavour(EngineKind::MariaDb, (10, 11, 6));
        assert_eq!(algo(f, "ADD COLUMN c INT"), Algo::Instant);
        assert_eq!(algo(f, "ADD COLUMN c INT AFTER id"), Algo::Instant);
        assert_eq!(algo(f, "DROP COLUMN note"), Algo::Instant);
        assert_eq!(algo(f, "DROP COLUMN n"), Algo::NoCopy);
        assert_eq!(algo(f, "MODIFY balance BIGINT NOT NULL"), Algo::Copy);
        assert_eq!(algo(f, "MODIFY balance INT NOT NULL"), Algo::Inplace);
        assert_eq!(algo(f, "MODIFY note VARCHAR(100)"), Algo::Instant);
        assert_eq!(algo(f, "MODIFY note VARCHAR(10)"), Algo::Copy);
        assert_eq!(algo(f, "ADD INDEX i (balance)"), Algo::NoCopy);
        assert_eq!(algo(f, "ADD FULLTEXT INDEX i (note)"), Algo::Copy);
        assert_eq!(
            algo(f, "MODIFY note VARCHAR(20) CHARACTER SET latin1"),
            Algo::Copy
        );
        assert_eq!(
            algo(f, "ADD COLUMN c INT, MODIFY balance BIGINT"),
            Algo::Copy
        );
    }

    #[test]
    fn mariadb_10_3_adds_only_last_columns_instantly() {
        let f = flavour(EngineKind::MariaDb, (10, 3, 30));
        assert_eq!(algo(f, "ADD COLUMN c INT"), Algo::Instant);
        assert_eq!(algo(f, "ADD COLUMN c INT FIRST"), Algo::Inplace);
        assert_eq!(algo(f, "DROP COLUMN note"), Algo::Inplace);
        // Crossing 255 bytes (utf8mb4: 64+ characters) is not instant before 10.4.
        assert_eq!(algo(f, "MODIFY note VARCHAR(60)"), Algo::Instant);
        assert_eq!(algo(f, "MODIFY note VARCHAR(100)"), Algo::Copy);
    }

    #[test]
    fn mysql_8_0_12_and_8_0_29_instant_rules() {
        let old = flavour(EngineKind::MySql, (5, 7, 40));
        let m12 = flavour(EngineKind::MySql, (8, 0, 12));
        let m29 = flavour(EngineKind::MySql, (8, 0, 29));
        assert_eq!(algo(old, "ADD COLUMN c INT"), Algo::Inplace);
        assert_eq!(algo(m12, "ADD COLUMN c INT"), Algo::Instant);
        assert_eq!(algo(m12, "ADD COLUMN c INT AFTER id"), Algo::Inplace);
        assert_eq!(algo(m29, "ADD COLUMN c INT AFTER id"), Algo::Instant);
        assert_eq!(algo(m12, "DROP COLUMN note"), Algo::Inplace);
        assert_eq!(algo(m29, "DROP COLUMN note"), Algo::Instant);
        assert_eq!(
            algo(m12, "ALTER COLUMN balance SET DEFAULT 1"),
            Algo::Instant
        );
        assert_eq!(
            algo(old, "ALTER COLUMN balance SET DEFAULT 1"),
            Algo::Inplace
        );
        assert_eq!(algo(m29, "MODIFY note VARCHAR(100)"), Algo::Copy);
        assert_eq!(algo(m29, "ADD INDEX i (balance)"), Algo::Inplace);
        assert_eq!(
            algo(m29, "ADD COLUMN c INT AUTO_INCREMENT UNIQUE"),
            Algo::Copy
        );
        // MySQL has no NOCOPY: the nocopy prediction asks for INPLACE, LOCK=NONE.
        assert_eq!(
            Algo::NoCopy.clause(m29),
            Some("ALGORITHM=INPLACE, LOCK=NONE")
        );
        assert_eq!(Algo::NoCopy.ladder(m29), vec![Algo::Inplace]);
    }
}
