//! `ALTER TABLE t DROP COLUMN c [, DROP COLUMN d ...]` in two phases on MariaDB (and MySQL 8), from
//! what the live table says each column is (`SHOW CREATE TABLE`, `information_schema.COLUMNS`).
//!
//! Expand (`sluice up`): the columns stay, so the old version keeps reading and writing them. A NOT
//! NULL column without a default (an INSERT that leaves it out fails in strict mode) gets a
//! default of its type (`0`, `''`, `current_timestamp()`, ...) with `ALTER COLUMN ... SET DEFAULT,
//! ALGORITHM=INSTANT`: a catalog change the server makes without touching a row or blocking writes
//! beyond its metadata lock. Making the column NULL instead would rebuild the table on every row
//! format but REDUNDANT (MariaDB 10.11 refuses `MODIFY ... NULL, ALGORITHM=INSTANT`), and undoing
//! it would rebuild it again. Which columns sluice gave a default is written to `sluice_meta`
//! before the ALTER (autocommitted, as DDL commits anyway), so that rollback never removes a
//! default the table had before. Any other column needs no change.
//!
//! Contract (`sluice complete`): one ALTER drops the columns, with the algorithm the online path
//! predicts for exactly that ALTER on the live table (INSTANT without an index on them, NOCOPY when
//! an index on one of them goes with it, INPLACE with LOCK=NONE when an index keeps other columns),
//! waiting for the metadata lock at most lock_wait_timeout and retried. A kill between the ALTER
//! and its record leaves the columns gone and the migration expanded: the next `complete` finds
//! them gone and records it; a rollback then is refused.
//!
//! Rollback (`sluice rollback`, before complete): `ALTER COLUMN ... DROP DEFAULT,
//! ALGORITHM=INSTANT` for the columns sluice gave a default: `SHOW CREATE TABLE` is as before
//! `up`. Never refused (rows the new version inserted keep the default's value, which the column
//! accepts).

use super::rename_column_mysql::{definition, entries, keys, names, read_ident};
use super::Phases;
use crate::plan::staged::{About, Lock, Step};
use crate::plan::{Algorithm, Blocks, Effect};
use crate::quote::mysql::{ident, literal};
use crate::target::EngineKind;

/// One column the statement drops, as the live server has it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Column {
    /// As the statement names it.
    pub name: String,
    pub if_exists: bool,
    /// None: no such column.
    pub live: Option<Live>,
    /// Foreign keys it is in, on either side, described.
    pub foreign_keys: Vec<String>,
    /// `sluice_meta` says this migration's expand phase gave it its default.
    pub marked: bool,
}

/// `information_schema.COLUMNS` of a column.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Live {
    /// As stored (its letter case).
    pub name: String,
    /// COLUMN_DEFAULT (MariaDB: an expression, `NULL` as text for a nullable column without one;
    /// MySQL: a value). None: no default.
    pub default: Option<String>,
    pub nullable: bool,
    /// DATA_TYPE and COLUMN_TYPE, lower case.
    pub data_type: String,
    pub column_type: String,
    /// EXTRA, lower case (auto_increment, virtual generated, ...).
    pub extra: String,
}

/// What the live server says about the table and the columns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Facts {
    pub engine: Option<EngineKind>,
    /// The migration's version (the `sluice_meta` keys).
    pub version: i64,
    /// The server compares table names case-insensitively (`lower_case_table_names` 1 or 2):
    /// how the `sluice_meta` keys name the table.
    pub folds: bool,
    /// The table's name as stored, and as SQL (quoted, with its database when the statement
    /// names one).
    pub table: String,
    pub table_sql: String,
    /// `SHOW CREATE TABLE`.
    pub create: String,
    /// How many columns the table has.
    pub table_columns: usize,
    pub columns: Vec<Column>,
    /// `wsrep_on` is ON.
    pub galera: bool,
    /// The history has this migration `expanded` (complete or rollback is asked for).
    pub expanded: bool,
    /// The algorithm the online path predicts for the contract's ALTER on the live table; None:
    /// unknown (asked for as INSTANT, the server refuses when it cannot).
    pub drop_algorithm: Option<Algorithm>,
    /// The LOCK= level predicted with it (SHARED or EXCLUSIVE: writes wait for the whole ALTER).
    pub drop_lock: Option<crate::plan::LockLevel>,
}

/// The SQL that reads every column of the table: name, COLUMN_DEFAULT, IS_NULLABLE, DATA_TYPE,
/// COLUMN_TYPE, EXTRA.
pub fn columns_sql(schema: Option<&str>, table: &str) -> String {
    format!(
        "SELECT COLUMN_NAME, COLUMN_DEFAULT, IS_NULLABLE, DATA_TYPE, COLUMN_TYPE, EXTRA FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = {} AND TABLE_NAME = {} ORDER BY ORDINAL_POSITION",
        schema.map(literal).unwrap_or_else(|| "DATABASE()".into()),
        literal(table)
    )
}

/// The `sluice_meta` key prefix of migration `version` (its keys are `drop <version> <hash>`).
pub fn meta_prefix(version: i64) -> String {
    format!("drop {version} ")
}

/// The `sluice_meta` key that says the expand phase of `version` gave `table.column` its default
/// (hashed: the key holds 64 characters, a name alone as many). The table as the server tells
/// tables apart: exactly with `lower_case_table_names=0` (`folds` false: `Orders` and `orders`
/// are two tables), in lower case with 1 or 2; the column in lower case (the server compares
/// column names case-insensitively, always).
pub fn meta_key(version: i64, table: &str, column: &str, folds: bool) -> String {
    let table = match folds {
        true => table.to_lowercase(),
        false => table.to_string(),
    };
    hashed_key(version, &format!("{table}.{}", column.to_lowercase()))
}

/// The key an older build wrote for the same column (the table always in lower case, which made
/// `Orders` and `orders` one key at `lower_case_table_names=0`): still read, so that a migration
/// expanded by that build completes and rolls back with its defaults recognised.
pub fn legacy_meta_key(version: i64, table: &str, column: &str) -> String {
    hashed_key(
        version,
        &format!("{}.{}", table.to_lowercase(), column.to_lowercase()),
    )
}

fn hashed_key(version: i64, text: &str) -> String {
    // FNV-1a: stable across runs and builds (a rerun must find the killed run's keys).
    let hash = text.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("{}{hash:016x}", meta_prefix(version))
}

/// The SQL that lists this migration's keys.
pub fn marks_sql(version: i64) -> String {
    format!(
        "SELECT `k` FROM `sluice_meta` WHERE `k` LIKE {}",
        literal(&format!("{}%", meta_prefix(version)))
    )
}

/// The ALTER whose algorithm the online path predicts for the contract (no ALGORITHM clause).
pub fn drop_sql(table_sql: &str, columns: &[&str]) -> String {
    format!(
        "ALTER TABLE {table_sql} {}",
        columns
            .iter()
            .map(|c| format!("DROP COLUMN {}", ident(c)))
            .collect::<Vec<_>>()
            .join(", ")
    )
}

/// The default sluice gives a NOT NULL column of this type, so that an INSERT leaving it out
/// stores a value the column accepts. Err: no such value.
pub(super) fn filler(mariadb: bool, l: &Live, def: &str) -> Result<String, String> {
    let t = l.data_type.as_str();
    // A fractional-seconds precision must match the column's on MySQL.
    let precision = l
        .column_type
        .split_once('(')
        .map(|(_, p)| p.trim_end_matches(')').to_string())
        .filter(|p| p.chars().all(|c| c.is_ascii_digit()) && !p.is_empty());
    let clock = |f: &str| match &precision {
        Some(p) => format!("{f}({p})"),
        None => format!("{f}()"),
    };
    // MySQL takes a default of TEXT, BLOB and JSON as an expression only.
    let expr = |v: &str| {
        if mariadb {
            literal(v)
        } else {
            format!("({})", literal(v))
        }
    };
    Ok(match t {
        "tinyint" | "smallint" | "mediumint" | "int" | "integer" | "bigint" | "decimal"
        | "numeric" | "float" | "double" | "real" | "bit" | "year" => "0".into(),
        "char" | "varchar" | "binary" | "varbinary" | "set" => "''".into(),
        "longtext" if def.to_lowercase().contains("json_valid(") => expr("null"),
        "json" => expr("null"),
        "tinytext" | "text" | "mediumtext" | "longtext" | "tinyblob" | "blob" | "mediumblob"
        | "longblob" => expr(""),
        "date" => "'1970-01-01'".into(),
        "time" => "'00:00:00'".into(),
        "datetime" | "timestamp" => clock(if mariadb {
            "current_timestamp"
        } else {
            "CURRENT_TIMESTAMP"
        }),
        "uuid" => "'00000000-0000-0000-0000-000000000000'".into(),
        "inet6" => "'::'".into(),
        "inet4" => "'0.0.0.0'".into(),
        other => {
            return Err(format!(
                "it is NOT NULL without a default and of type {other}, for which sluice has no value to give it so that the new version's INSERTs may leave it out"
            ))
        }
    })
}

/// What an INSERT that leaves the column out stores today: None when it fails (NOT NULL without a
/// default), Some(None) for NULL or a generated / AUTO_INCREMENT value, Some(Some(v)) for `v`.
fn left_out(l: &Live) -> Option<Option<String>> {
    if l.extra.contains("auto_increment") || l.extra.contains("generated") {
        return Some(None);
    }
    match &l.default {
        Some(d) if !(l.nullable && d.eq_ignore_ascii_case("NULL")) => Some(Some(d.clone())),
        _ if l.nullable => Some(None),
        // NOT NULL ENUM: the first member (the server's implicit default, even in strict mode).
        _ if l.data_type == "enum" => Some(Some("its first member".into())),
        _ => None,
    }
}

/// The phases of dropping `f.columns`. Err: why the drop cannot run in two phases (it is then
/// refused before anything changes; `--as-written` runs it in one).
pub fn phases(st: &crate::analysis::ir::Stmt, f: &Facts) -> Result<Phases, String> {
    use sqlparser::ast::Statement;
    if let Some(why) = super::rename_column_mysql::not_text(&f.create) {
        return Err(why);
    }
    if let Some(Statement::AlterTable(at)) = st.ast.as_deref() {
        if !super::super::staged::plain_alter(at) {
            return Err("the two phases name the table plainly, which for IF EXISTS would change what the statement does; write it without".into());
        }
    }
    let mariadb = f.engine != Some(EngineKind::MySql);
    let t = &f.table_sql;
    let missing: Vec<&Column> = f
        .columns
        .iter()
        .filter(|c| c.live.is_none() && !c.if_exists)
        .collect();
    if f.expanded && !missing.is_empty() {
        return Ok(contracted(f));
    }
    if let Some(c) = missing.first() {
        return Err(format!(
            "column {} of {} does not exist, so the DROP COLUMN as written fails",
            c.name, f.table
        ));
    }
    if f.galera {
        return Err("the server is a Galera node (wsrep_on=ON): each phase's ALTER runs under total order isolation on every node, which sluice's lock discipline does not bound there; not carried on Galera yet".into());
    }
    let live: Vec<(&Column, &Live)> = f
        .columns
        .iter()
        .filter_map(|c| c.live.as_ref().map(|l| (c, l)))
        .collect();
    let dropped = |n: &str| live.iter().any(|(_, l)| l.name.eq_ignore_ascii_case(n));
    if !live.is_empty() && live.len() >= f.table_columns {
        return Err("it would drop every column of the table, which the server refuses (DROP TABLE drops a table)".into());
    }
    if f.create.contains("WITH SYSTEM VERSIONING") {
        return Err("the table is system-versioned: the server refuses to drop its columns unless @@system_versioning_alter_history is KEEP".into());
    }
    let all_keys = keys(&f.create);
    let mut blockers = Vec::new();
    let mut sets = Vec::new();
    let mut notes = Vec::new();
    let mut old_version = Vec::new();
    for (c, l) in &live {
        let name = &l.name;
        blockers.extend(
            c.foreign_keys
                .iter()
                .map(|k| format!("{k} uses {name}, so the server refuses to drop it (drop the foreign key first, in a migration of its own)")),
        );
        for e in entries(&f.create) {
            match read_ident(e) {
                Some((other, rest)) if !dropped(&other) => {
                    let up = rest.to_uppercase();
                    if (up.contains(" AS (") || up.contains("GENERATED ALWAYS"))
                        && names(rest, name)
                    {
                        blockers.push(format!("generated column {other} is computed from {name}, so the DROP COLUMN as written fails (drop or redefine {other} first)"));
                    }
                }
                Some(_) => {}
                None => {
                    let up = e.to_uppercase();
                    if up.starts_with("CONSTRAINT ") && up.contains(" CHECK (") && names(e, name) {
                        // Measured on MariaDB 10.11: a check over the dropped columns only goes
                        // with them; one that also names a column that stays fails the DROP
                        // (1054 Unknown column in CHECK).
                        let stays = entries(&f.create).into_iter().find_map(|x| {
                            read_ident(x)
                                .map(|(n, _)| n)
                                .filter(|n| !dropped(n) && names(e, n))
                        });
                        if let Some(other) = stays {
                            blockers.push(format!("the table's check `{e}` uses {name} and {other}, which stays, so the DROP COLUMN as written fails (drop the check first)"));
                        } else if left_out(l).is_none() || c.marked {
                            blockers.push(format!("the table's check `{e}` would judge the default sluice gives {name} while expanded (the new version's INSERTs leave it out) and may refuse it; the DROP COLUMN as written drops the check with the column (drop the check first, in a migration of its own, or give {name} a default the check accepts)"));
                        }
                    }
                }
            }
        }
        let omitted = left_out(l);
        let in_key = |k: &&super::rename_column_mysql::Key| {
            k.parts.iter().any(|p| {
                read_ident(p.trim()).is_some_and(|(n, _)| n.eq_ignore_ascii_case(name))
                    || (p.trim_start().starts_with('(') && names(p, name))
            })
        };
        for k in all_keys.iter().filter(in_key) {
            let keeps_others = k.parts.iter().any(|p| {
                read_ident(p.trim()).is_some_and(|(n, _)| !dropped(&n))
                    || p.trim_start().starts_with('(')
            });
            match k.kind.as_str() {
                "PRIMARY KEY" => blockers.push(format!(
                    "{name} is in the primary key: dropping it rebuilds the table under a new key, which the two phases do not carry (`sluice up --as-written` runs it in one step)"
                )),
                "UNIQUE KEY" if keeps_others => blockers.push(format!(
                    "{name} is in unique key {} with other columns, and the server refuses to drop a column of a multi-column unique key (drop or redefine the key first, in a migration of its own)",
                    k.name
                )),
                "UNIQUE KEY" if !matches!(omitted, Some(None)) => blockers.push(format!(
                    "{name} is in unique key {}, and every INSERT of the new version that leaves it out would store the same value there ({}), so the second one fails as a duplicate (drop the key first, in a migration of its own, or make the column NULL)",
                    k.name,
                    match &omitted {
                        Some(Some(v)) => format!("its default {v}"),
                        _ => "the default sluice would give it".into(),
                    }
                )),
                _ => {}
            }
        }
        let needs_default = c.marked || omitted.is_none();
        let col_name = format!("{}.{name}", f.table);
        if !needs_default {
            let value = match &omitted {
                _ if l.extra.contains("generated") => None,
                Some(Some(v)) => Some(format!("its default ({v})")),
                _ if l.extra.contains("auto_increment") => {
                    Some("the next AUTO_INCREMENT value".to_string())
                }
                _ => Some("NULL".to_string()),
            };
            old_version
                .extend(value.map(|v| crate::plan::old_version::dropped_column(&col_name, &v)));
            notes.push(match omitted {
                Some(Some(v)) => format!("an INSERT that leaves {name} out gets {v}"),
                _ if l.extra.contains("generated") => {
                    format!("{name} is generated: nobody writes it")
                }
                _ if l.extra.contains("auto_increment") => {
                    format!("an INSERT that leaves {name} out gets the next AUTO_INCREMENT value")
                }
                _ => format!("an INSERT that leaves {name} out stores NULL"),
            });
            continue;
        }
        let def = definition(&f.create, name).unwrap_or_default();
        let value = filler(mariadb, l, &def)?;
        let own_check = def.to_uppercase().contains(" CHECK (")
            && !def.to_lowercase().contains(&format!(
                "check (json_valid({}))",
                ident(name).to_lowercase()
            ));
        if own_check {
            blockers.push(format!("{name} is NOT NULL without a default and has a CHECK of its own, which the default sluice would give it ({value}) may not pass"));
        }
        notes.push(format!(
            "an INSERT that leaves {name} out stores {value} (the default sluice gives it until complete)"
        ));
        old_version.push(crate::plan::old_version::dropped_column(
            &col_name,
            &format!("{value} (the default sluice gives it until complete: the column is NOT NULL without one)"),
        ));
        // Marked (sluice gave it its default) but the live default is another: a later
        // migration set that one, and the rollback keeps it.
        let later_default = c.marked && l.default.as_deref().is_some_and(|d| d != value);
        sets.push((name.clone(), value, later_default));
    }
    if !blockers.is_empty() {
        return Err(blockers.join("; "));
    }

    use crate::plan::Algorithm as A;
    if let Some(l @ (crate::plan::LockLevel::Shared | crate::plan::LockLevel::Exclusive)) =
        f.drop_lock
    {
        return Err(format!("dropping the column needs LOCK={l:?} on this table (writes wait for the whole ALTER), which the contract phase does not take (`sluice up --as-written` runs it in one step)").replace("LOCK=Shared", "LOCK=SHARED").replace("LOCK=Exclusive", "LOCK=EXCLUSIVE"));
    }
    let contract_clause = match f.drop_algorithm {
        None | Some(A::Instant) => "ALGORITHM=INSTANT",
        Some(A::Nocopy) if mariadb => "ALGORITHM=NOCOPY, LOCK=NONE",
        Some(A::Nocopy) | Some(A::Inplace) => "ALGORITHM=INPLACE, LOCK=NONE",
        Some(other) => return Err(format!("dropping the column needs ALGORITHM={} on this table, which blocks writes for the whole copy (`sluice up --as-written` runs it in one step through the online copy's rules)", other.as_str())),
    };
    let prefix = literal(&format!("{}%", meta_prefix(f.version)));
    let forget = format!("DELETE FROM `sluice_meta` WHERE `k` LIKE {prefix}");
    let mut expand = Vec::new();
    let mut about = Vec::new();
    let mut locks = Vec::new();
    let mut rollback = Vec::new();
    if !sets.is_empty() {
        // The note first: a kill between the two leaves a note of a default that is not there,
        // whose rollback (DROP DEFAULT of a column without one) changes nothing.
        let marks = sets
            .iter()
            .map(|(c, _, _)| {
                format!(
                    "({}, '')",
                    literal(&meta_key(f.version, &f.table, c, f.folds))
                )
            })
            .collect::<Vec<_>>()
            .join(", ");
        let alter = sets
            .iter()
            .map(|(c, v, _)| format!("ALTER COLUMN {} SET DEFAULT {v}", ident(c)))
            .collect::<Vec<_>>()
            .join(", ");
        expand.push(Step::Sql(format!(
            "INSERT IGNORE INTO `sluice_meta` (`k`, `v`) VALUES {marks}; ALTER TABLE {t} {alter}, ALGORITHM=INSTANT"
        )));
        about.push(About::new(
            "give the NOT NULL columns without a default a default (catalog only, recorded in sluice_meta first): the new version's INSERTs may leave them out",
            Lock::AccessExclusive,
            Effect::Instant,
            Blocks::ReadsAndWrites,
        ));
        locks.push(
            "metadata lock (milliseconds, lock_wait_timeout, retried), ALGORITHM=INSTANT".into(),
        );
        let undo = sets
            .iter()
            .filter(|(_, _, later)| !later)
            .map(|(c, _, _)| format!("ALTER COLUMN {} DROP DEFAULT", ident(c)))
            .collect::<Vec<_>>()
            .join(", ");
        if !undo.is_empty() {
            rollback.push(format!("ALTER TABLE {t} {undo}, ALGORITHM=INSTANT"));
        }
        rollback.push(forget.clone());
    }
    let names_live: Vec<&str> = live.iter().map(|(_, l)| l.name.as_str()).collect();
    let mut complete = Vec::new();
    if !names_live.is_empty() {
        complete.push(format!("{}, {contract_clause}", drop_sql(t, &names_live)));
    }
    complete.push(forget);

    Ok(Phases {
        precheck: vec![],
        precheck_refusal: None,
        expand,
        expand_about: about,
        expand_atomic: false,
        complete,
        rollback,
        rollback_refusal: None,
        complete_refusal: None,
        complete_online: None,
        rollback_guard: vec![],
        guard: super::Guard::NotNull,
        rollback_prepare: vec![],
        rollback_undo: vec![],
        sees: sees(f, &notes, !sets.is_empty()),
        complete_description: "`sluice complete`: one ALTER drops the columns (the algorithm the server runs on this table, waiting for the metadata lock at most lock_wait_timeout, retried), and sluice's note of the defaults it gave is removed",
        rollback_description: "`sluice rollback` (before complete): the defaults sluice gave are dropped again (ALGORITHM=INSTANT): the table is as before the migration",
        expand_locks: locks,
        phase_lock: Some(format!(
            "metadata lock at start and end (lock_wait_timeout, retried), {contract_clause}"
        )),
        rollback_lock: Some(
            "metadata lock (milliseconds, lock_wait_timeout, retried), ALGORITHM=INSTANT".into(),
        ),
        watch: None,
        old_version,
    })
}

/// The phases once the contract's ALTER ran (a kill before its record): the columns are gone, so
/// `complete` drops what may be left of them and records it; a rollback is refused.
fn contracted(f: &Facts) -> Phases {
    let left: Vec<&str> = f
        .columns
        .iter()
        .filter_map(|c| c.live.as_ref().map(|l| l.name.as_str()))
        .collect();
    let mut complete = Vec::new();
    if !left.is_empty() {
        complete.push(format!(
            "{}, ALGORITHM=INPLACE, LOCK=NONE",
            drop_sql(&f.table_sql, &left)
        ));
    }
    complete.push(format!(
        "DELETE FROM `sluice_meta` WHERE `k` LIKE {}",
        literal(&format!("{}%", meta_prefix(f.version)))
    ));
    let gone: Vec<&str> = f
        .columns
        .iter()
        .filter(|c| c.live.is_none())
        .map(|c| c.name.as_str())
        .collect();
    let (rollback, rollback_refusal) = super::refused_rollback(
        f.engine,
        &format!(
            "column {} is gone already (an interrupted `sluice complete` dropped it): run `sluice complete` to finish",
            gone.join(", ")
        ),
    );
    Phases {
        precheck: vec![],
        precheck_refusal: None,
        expand: vec![],
        expand_about: vec![],
        expand_atomic: false,
        complete,
        rollback,
        rollback_refusal,
        complete_refusal: None,
        complete_online: None,
        rollback_guard: vec![],
        guard: super::Guard::NotNull,
        rollback_prepare: vec![],
        rollback_undo: vec![],
        sees: sees(f, &[], false),
        complete_description:
            "`sluice complete`: the columns are gone already (an interrupted complete); record it",
        rollback_description: "refused: the columns are gone already",
        expand_locks: vec![],
        phase_lock: Some("metadata lock (milliseconds)".into()),
        rollback_lock: None,
        watch: None,
        old_version: vec![],
    }
}

fn sees(f: &Facts, notes: &[String], defaults: bool) -> Vec<(String, String)> {
    let names = f
        .columns
        .iter()
        .map(|c| c.name.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    let many = f.columns.len() > 1;
    let mut between = format!("both versions run, nothing is dropped yet: the old version reads and writes {names} as before, the new version leaves {names} out");
    if !notes.is_empty() {
        let mut n = notes.join("; ");
        if let Some(first) = n.get(..1) {
            n = first.to_uppercase() + &n[1..];
        }
        between.push_str(&format!(
            ". {n}. Rows the new version inserts show that value to the old version"
        ));
    }
    vec![
        (
            "before".into(),
            format!("the old version reads and writes {names}; the new version, which leaves {names} out, must not run yet where its INSERTs would fail (NOT NULL without a default)"),
        ),
        ("expanded (after `sluice up`)".into(), between),
        (
            "completed (after `sluice complete`)".into(),
            format!(
                "only the new version may run: {names} {} gone and queries naming {} fail, as the DROP COLUMN as written leaves the table",
                if many { "are" } else { "is" },
                if many { "them" } else { "it" }
            ),
        ),
        (
            "rolled back (after `sluice rollback`)".into(),
            if defaults {
                "only the old version may run: the defaults sluice gave are gone, the table is as before the migration (rows the new version inserted keep the value the default gave them)".into()
            } else {
                "only the old version may run: the table is as before the migration (expand changed nothing)".into()
            },
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stmt(engine: EngineKind, sql: &str) -> crate::analysis::ir::Stmt {
        let s = crate::sql::split(engine, sql).unwrap().remove(0);
        crate::analysis::ir::build(engine, 0, &s, 0, &s.sql)
    }

    const CREATE: &str = "CREATE TABLE `t` (\n  `id` bigint(20) NOT NULL AUTO_INCREMENT,\n  `email` varchar(60) NOT NULL,\n  `nick` varchar(20) NOT NULL DEFAULT 'anon',\n  `note` int(11) DEFAULT NULL,\n  `body` text NOT NULL,\n  `at` datetime(6) NOT NULL,\n  `mood` enum('a','b') NOT NULL,\n  `js` longtext CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL CHECK (json_valid(`js`)),\n  `g` int(11) GENERATED ALWAYS AS (`note` + 1) VIRTUAL,\n  PRIMARY KEY (`id`),\n  UNIQUE KEY `u_nick` (`nick`),\n  KEY `ix_email` (`email`),\n  KEY `ix_note_id` (`note`,`id`)\n) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4";

    fn live(name: &str, default: Option<&str>, nullable: bool, ty: &str, ct: &str) -> Live {
        Live {
            name: name.into(),
            default: default.map(str::to_string),
            nullable,
            data_type: ty.into(),
            column_type: ct.into(),
            extra: String::new(),
        }
    }

    fn col(l: Live) -> Column {
        Column {
            name: l.name.clone(),
            live: Some(l),
            ..Default::default()
        }
    }

    fn facts(engine: EngineKind, columns: Vec<Column>) -> Facts {
        Facts {
            engine: Some(engine),
            version: 7,
            table: "t".into(),
            table_sql: "`t`".into(),
            create: CREATE.into(),
            table_columns: 9,
            columns,
            drop_algorithm: Some(Algorithm::Instant),
            ..Default::default()
        }
    }

    #[test]
    fn meta_keys_tell_tables_apart_as_the_server_does() {
        // (table a, table b, server folds table names, one key)
        let cases = [
            ("Orders", "orders", false, false),
            ("Orders", "orders", true, true),
            ("Orders", "Orders", false, true),
            ("orders", "orders", true, true),
        ];
        for (a, b, folds, same) in cases {
            let (ka, kb) = (meta_key(7, a, "C", folds), meta_key(7, b, "c", folds));
            assert_eq!(ka == kb, same, "{a} {b} folds={folds}");
            assert!(ka.starts_with("drop 7 ") && ka.len() <= 64, "{ka}");
        }
        // What the older build wrote is what a folding server's key is (lower case), and
        // differs from the exact key of a mixed-case table at 0 (read as well as the new one).
        assert_eq!(
            legacy_meta_key(7, "Orders", "C"),
            meta_key(7, "Orders", "c", true)
        );
        assert_ne!(
            legacy_meta_key(7, "Orders", "C"),
            meta_key(7, "Orders", "c", false)
        );
        assert_eq!(
            legacy_meta_key(7, "orders", "c"),
            meta_key(7, "orders", "c", false)
        );
    }

    #[test]
    fn a_not_null_column_without_default_gets_one_of_its_type_and_loses_it_on_rollback() {
        let e = EngineKind::MariaDb;
        let cases: &[(Live, &str)] = &[
            (live("email", None, false, "varchar", "varchar(60)"), "''"),
            (live("body", None, false, "text", "text"), "''"),
            (
                live("at", None, false, "datetime", "datetime(6)"),
                "current_timestamp(6)",
            ),
            (live("js", None, false, "longtext", "longtext"), "'null'"),
            (
                live("id2", None, false, "bigint", "bigint(20) unsigned"),
                "0",
            ),
            (live("d", None, false, "date", "date"), "'1970-01-01'"),
        ];
        for (l, want) in cases {
            let f = facts(e, vec![col(l.clone())]);
            let sql = format!("ALTER TABLE t DROP COLUMN {}", l.name);
            let p = phases(&stmt(e, &sql), &f).unwrap();
            let key = meta_key(7, "t", &l.name, false);
            assert_eq!(
                p.expand.iter().map(Step::text).collect::<Vec<_>>(),
                vec![format!(
                    "INSERT IGNORE INTO `sluice_meta` (`k`, `v`) VALUES ('{key}', ''); ALTER TABLE `t` ALTER COLUMN `{}` SET DEFAULT {want}, ALGORITHM=INSTANT",
                    l.name
                )],
                "{}",
                l.name
            );
            assert!(key.len() <= 64 && key.starts_with("drop 7 "), "{key}");
            assert_eq!(
                p.rollback,
                vec![
                    format!(
                        "ALTER TABLE `t` ALTER COLUMN `{}` DROP DEFAULT, ALGORITHM=INSTANT",
                        l.name
                    ),
                    "DELETE FROM `sluice_meta` WHERE `k` LIKE 'drop 7 %'".to_string()
                ]
            );
            assert_eq!(
                p.complete[0],
                format!(
                    "ALTER TABLE `t` DROP COLUMN `{}`, ALGORITHM=INSTANT",
                    l.name
                )
            );
            let steps = p.expand_steps();
            assert_eq!(steps[0].algorithm, Some(Algorithm::Instant));
            assert_eq!(p.sees.len(), 4);
        }
        // MySQL: TEXT and JSON defaults are expressions; its clock in capitals.
        let m = EngineKind::MySql;
        for (l, want) in [
            (live("body", None, false, "text", "text"), "('')"),
            (live("js", None, false, "json", "json"), "('null')"),
            (
                live("at", None, false, "datetime", "datetime(6)"),
                "CURRENT_TIMESTAMP(6)",
            ),
        ] {
            let sql = format!("ALTER TABLE t DROP COLUMN {}", l.name);
            let p = phases(&stmt(m, &sql), &facts(m, vec![col(l.clone())])).unwrap();
            assert!(
                p.expand[0]
                    .text()
                    .ends_with(&format!("SET DEFAULT {want}, ALGORITHM=INSTANT")),
                "{}",
                p.expand[0].text()
            );
        }
    }

    /// Every state of a DROP COLUMN, planned for MariaDB and for MySQL 8.
    #[test]
    fn every_shape_renders_for_both_engines() {
        fn email() -> Column {
            col(live("email", None, false, "varchar", "varchar(60)"))
        }
        fn note() -> Column {
            col(live("note", Some("NULL"), true, "int", "int(11)"))
        }
        type Shape = dyn Fn(EngineKind) -> (String, Facts);
        let cases: &[(&str, &Shape)] = &[
            ("needs a default", &|e| {
                (
                    "ALTER TABLE t DROP COLUMN email".into(),
                    facts(e, vec![email()]),
                )
            }),
            ("needs none", &|e| {
                (
                    "ALTER TABLE t DROP COLUMN note".into(),
                    facts(e, vec![note()]),
                )
            }),
            ("several, one absent (IF EXISTS)", &|e| {
                let absent = Column {
                    name: "gone".into(),
                    if_exists: true,
                    ..Default::default()
                };
                (
                    "ALTER TABLE t DROP COLUMN email, DROP COLUMN IF EXISTS gone".into(),
                    facts(e, vec![email(), absent]),
                )
            }),
            ("marked by the expand", &|e| {
                let mut c = email();
                c.marked = true;
                ("ALTER TABLE t DROP COLUMN email".into(), facts(e, vec![c]))
            }),
            ("contracted", &|e| {
                let mut f = facts(
                    e,
                    vec![Column {
                        name: "email".into(),
                        ..Default::default()
                    }],
                );
                f.expanded = true;
                ("ALTER TABLE t DROP COLUMN email".into(), f)
            }),
            ("absent, not expanded", &|e| {
                let f = facts(
                    e,
                    vec![Column {
                        name: "email".into(),
                        ..Default::default()
                    }],
                );
                ("ALTER TABLE t DROP COLUMN email".into(), f)
            }),
        ];
        for (what, shape) in cases {
            let plan = |e: EngineKind| {
                let (sql, f) = shape(e);
                phases(&stmt(e, &sql), &f)
            };
            super::super::check_engines(what, &plan(EngineKind::MariaDb), &plan(EngineKind::MySql));
        }
    }

    #[test]
    fn a_column_an_insert_may_leave_out_needs_no_expand_and_the_contract_takes_the_predicted_algorithm(
    ) {
        let e = EngineKind::MariaDb;
        let mut enum_col = live("mood", None, false, "enum", "enum('a','b')");
        enum_col.extra = String::new();
        let mut f = facts(
            e,
            vec![
                col(live("note", Some("NULL"), true, "int", "int(11)")),
                col(enum_col),
                Column {
                    name: "gone".into(),
                    if_exists: true,
                    ..Default::default()
                },
            ],
        );
        // `note` is in ix_note_id with id: the index is rebuilt without it.
        f.drop_algorithm = Some(Algorithm::Inplace);
        f.create = f.create.replace(
            "  `g` int(11) GENERATED ALWAYS AS (`note` + 1) VIRTUAL,\n",
            "",
        );
        let sql = "ALTER TABLE t DROP COLUMN note, DROP COLUMN mood, DROP COLUMN IF EXISTS gone";
        let p = phases(&stmt(e, sql), &f).unwrap();
        assert!(p.expand.is_empty() && p.rollback.is_empty());
        assert_eq!(
            p.complete,
            vec![
                "ALTER TABLE `t` DROP COLUMN `note`, DROP COLUMN `mood`, ALGORITHM=INPLACE, LOCK=NONE".to_string(),
                "DELETE FROM `sluice_meta` WHERE `k` LIKE 'drop 7 %'".to_string(),
            ]
        );
        assert!(p
            .complete_step()
            .lock
            .contains("ALGORITHM=INPLACE, LOCK=NONE"));
        assert!(p.sees[1].1.contains("stores NULL"), "{:?}", p.sees);
        assert!(p.sees[1].1.contains("its first member"), "{:?}", p.sees);
        f.drop_algorithm = Some(Algorithm::Nocopy);
        let p = phases(&stmt(e, sql), &f).unwrap();
        assert!(p.complete[0].ends_with("ALGORITHM=NOCOPY, LOCK=NONE"));
        let mut m = f.clone();
        m.engine = Some(EngineKind::MySql);
        let p = phases(&stmt(EngineKind::MySql, sql), &m).unwrap();
        assert!(p.complete[0].ends_with("ALGORITHM=INPLACE, LOCK=NONE"));
        // A rerun after expand gave a default: the note says so, the same step runs again.
        let mut marked = col(live("email", Some("''"), false, "varchar", "varchar(60)"));
        marked.marked = true;
        let p = phases(
            &stmt(e, "ALTER TABLE t DROP COLUMN email"),
            &facts(e, vec![marked]),
        )
        .unwrap();
        assert!(p.expand[0].text().contains("SET DEFAULT ''"));
        // The user's own default is kept by rollback (not marked: nothing to undo).
        let p = phases(
            &stmt(e, "ALTER TABLE t DROP COLUMN email"),
            &facts(
                e,
                vec![col(live(
                    "email",
                    Some("''"),
                    false,
                    "varchar",
                    "varchar(60)",
                ))],
            ),
        )
        .unwrap();
        assert!(p.expand.is_empty() && p.rollback.is_empty());
    }

    #[test]
    fn after_an_interrupted_complete_complete_finishes_and_rollback_refuses() {
        let e = EngineKind::MariaDb;
        let mut f = facts(
            e,
            vec![Column {
                name: "email".into(),
                ..Default::default()
            }],
        );
        let st = stmt(e, "ALTER TABLE t DROP COLUMN email");
        assert!(phases(&st, &f).unwrap_err().contains("does not exist"));
        f.expanded = true;
        let p = phases(&st, &f).unwrap();
        assert!(p.expand.is_empty());
        assert_eq!(
            p.complete,
            vec!["DELETE FROM `sluice_meta` WHERE `k` LIKE 'drop 7 %'".to_string()]
        );
        assert!(p.rollback[0].contains("is gone already"));
    }

    #[test]
    fn refuses_what_the_phases_cannot_carry() {
        let e = EngineKind::MariaDb;
        type Change = dyn Fn(&mut Facts);
        let email = || col(live("email", None, false, "varchar", "varchar(60)"));
        let cases: &[(&str, &str, &Change, &str)] = &[
            ("galera", "email", &|f| f.galera = true, "Galera"),
            (
                "fk",
                "email",
                &|f| {
                    f.columns[0]
                        .foreign_keys
                        .push("foreign key fk of table u".into())
                },
                "foreign key fk of table u uses email",
            ),
            (
                "generated",
                "note",
                &|f| f.columns = vec![col(live("note", Some("NULL"), true, "int", "int(11)"))],
                "generated column g is computed from note",
            ),
            (
                "check",
                "email",
                &|f| {
                    f.create = f.create.replace(
                        "  PRIMARY KEY",
                        "  CONSTRAINT `ck` CHECK (`email` <> ''),\n  PRIMARY KEY",
                    )
                },
                "the table's check",
            ),
            (
                "own check",
                "email",
                &|f| {
                    f.create = f.create.replace(
                        "`email` varchar(60) NOT NULL,",
                        "`email` varchar(60) NOT NULL CHECK (`email` <> ''),",
                    )
                },
                "CHECK of its own",
            ),
            (
                "pk",
                "id",
                &|f| {
                    let mut l = live("id", None, false, "bigint", "bigint(20)");
                    l.extra = "auto_increment".into();
                    f.columns = vec![col(l)];
                },
                "primary key",
            ),
            (
                "unique default",
                "nick",
                &|f| {
                    f.columns = vec![col(live(
                        "nick",
                        Some("'anon'"),
                        false,
                        "varchar",
                        "varchar(20)",
                    ))]
                },
                "duplicate",
            ),
            (
                "unique without default",
                "email",
                &|f| f.create = f.create.replace("KEY `ix_email`", "UNIQUE KEY `ix_email`"),
                "the default sluice would give it",
            ),
            (
                "multi-column unique",
                "note",
                &|f| {
                    f.columns = vec![col(live("note", Some("NULL"), true, "int", "int(11)"))];
                    f.create = f
                        .create
                        .replace("KEY `ix_note_id`", "UNIQUE KEY `ix_note_id`")
                        .replace(
                            "  `g` int(11) GENERATED ALWAYS AS (`note` + 1) VIRTUAL,\n",
                            "",
                        );
                },
                "multi-column unique key",
            ),
            (
                "geometry",
                "email",
                &|f| f.columns = vec![col(live("email", None, false, "point", "point"))],
                "of type point",
            ),
            (
                "every column",
                "email",
                &|f| f.table_columns = 1,
                "every column",
            ),
            (
                "versioned",
                "email",
                &|f| f.create.push_str(" WITH SYSTEM VERSIONING"),
                "system-versioned",
            ),
            (
                "copy",
                "email",
                &|f| f.drop_algorithm = Some(Algorithm::Copy),
                "ALGORITHM=COPY",
            ),
            (
                "shared",
                "email",
                &|f| {
                    f.drop_algorithm = Some(Algorithm::Inplace);
                    f.drop_lock = Some(crate::plan::LockLevel::Shared);
                },
                "LOCK=SHARED",
            ),
        ];
        for (what, column, change, want) in cases {
            let mut f = facts(e, vec![email()]);
            change(&mut f);
            let st = stmt(e, &format!("ALTER TABLE t DROP COLUMN {column}"));
            let got = phases(&st, &f)
                .err()
                .unwrap_or_else(|| panic!("{what}: not refused"));
            assert!(got.contains(want), "{what}: {got}");
        }
        // A nullable column in a single-column unique key: leaving it out stores NULL, which
        // never collides.
        let mut f = facts(
            e,
            vec![col(live("note", Some("NULL"), true, "int", "int(11)"))],
        );
        f.create = f
            .create
            .replace(
                "  `g` int(11) GENERATED ALWAYS AS (`note` + 1) VIRTUAL,\n",
                "",
            )
            .replace(
                "KEY `ix_note_id` (`note`,`id`)",
                "UNIQUE KEY `u_note` (`note`)",
            );
        assert!(phases(&stmt(e, "ALTER TABLE t DROP COLUMN note"), &f).is_ok());
    }
}
