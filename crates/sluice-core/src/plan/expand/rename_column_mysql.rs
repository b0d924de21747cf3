//! `ALTER TABLE t RENAME COLUMN a TO b` in two phases on MariaDB (and MySQL 8), from what the
//! live table says column `a` is (`SHOW CREATE TABLE`).
//!
//! Expand (`sluice up`), each step rerunnable:
//! 1. under `LOCK TABLES t WRITE` (bounded by lock_wait_timeout, retried; held for three catalog
//!    changes): `ADD COLUMN b <a's definition as the server prints it> AFTER a` with the
//!    algorithm the online path predicts (INSTANT on 10.11), and the BEFORE INSERT and BEFORE
//!    UPDATE triggers that keep `a` and `b` equal. Under one lock, no client write lands between
//!    the column and its triggers (an INSERT that leaves a NOT NULL `b` without default out would
//!    fail there). Later triggers of the same event are allowed (MariaDB 10.2.3, MySQL 5.7.2):
//!    sluice's fire after the table's existing ones.
//! 2. the backfill `UPDATE t SET b = a` in primary-key batches (see sluice-mysql's backfill).
//! 3. every index and unique key on `a` again on `b` under a temporary name, with
//!    `ALGORITHM=NOCOPY, LOCK=NONE` (MySQL: INPLACE).
//!
//! Which name a write used: an UPDATE through `b` changes `b` (`NEW.b <=> OLD.b` is false), so
//! `b` wins, else `a` is copied into `b`. An INSERT cannot be asked which columns it gave, so the
//! rule is: when `b` holds what it holds when left out (its default; NULL for a column without
//! one) and `a` does not, `a` was written and is copied into `b`; otherwise `b` is copied into
//! `a`. Each version writing only its own name is therefore always right; an INSERT naming both
//! with different values keeps `b`'s unless `b`'s is the default.
//!
//! Contract (`sluice complete`), under `LOCK TABLES t WRITE`: drop the triggers, then one ALTER
//! drops `a` and a's indexes and renames the copies to their names (`ALGORITHM=INSTANT` without
//! indexes, else NOCOPY). Rollback: drop the triggers, the copies and `b` the same way.

use super::super::helper_name;
use super::super::staged::{About, Lock, Step};
use super::super::{Blocks, Effect};
use super::Phases;
use crate::quote::mysql::{ident, literal};
use crate::target::EngineKind;

/// Why a CHECK on the renamed column is refused rather than carried to the new one: measured on
/// MariaDB 10.11, ADD CONSTRAINT ... CHECK accepts neither INSTANT, NOCOPY nor INPLACE, also with
/// check_constraint_checks=OFF.
const ADD_CHECK: &str = "and the server adds a CHECK constraint only with ALGORITHM=COPY (a table copy that blocks writes throughout), so it cannot be carried to the new column while both versions write";

/// What the live server says about the table and the column.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Facts {
    pub engine: Option<EngineKind>,
    /// The server version (major, minor, patch).
    pub version: (u32, u32, u32),
    /// The table's name as stored, and as SQL (quoted, with its database when the statement
    /// names one).
    pub table: String,
    pub table_sql: String,
    /// The column as the statement names it, and the new name.
    pub from: String,
    pub to: String,
    /// `SHOW CREATE TABLE`.
    pub create: String,
    /// `information_schema.COLUMNS` of the column: COLUMN_DEFAULT and EXTRA. None: no such
    /// column.
    pub column: Option<(Option<String>, String)>,
    /// The history has this migration `expanded` (complete or rollback is asked for).
    pub expanded: bool,
    /// The names of the table's triggers.
    pub triggers_present: Vec<String>,
    /// Read when expanded: the table's triggers (name, body) and the schema's views (name,
    /// definition), to find what still uses the old name before the contract drops it.
    pub trigger_bodies: Vec<(String, String)>,
    /// Read when expanded: every database's views (`db.name`, definition), the other tables'
    /// triggers (`db.name`, body), and the table's database.
    pub views: Vec<(String, String)>,
    pub other_triggers: Vec<(String, String)>,
    pub database: String,
    /// The column's nullability and type (what the default sluice gives it depends on).
    pub live: Option<super::drop_column_mysql::Live>,
    /// The `sluice_meta` key saying the expand phase gave both columns a default, and whether it
    /// is there.
    pub mark: String,
    pub default_given: bool,
    /// A column named `to` exists already.
    pub has_to: bool,
    /// Other columns with `ON UPDATE` (the backfill keeps their values).
    pub on_update: Vec<String>,
    /// Foreign keys the column is in, described.
    pub foreign_keys: Vec<String>,
    /// Read when expanded: foreign keys the new column is in, described (made after the expand:
    /// the rollback would drop the column under them).
    pub to_foreign_keys: Vec<String>,
    /// `wsrep_on` is ON.
    pub galera: bool,
    /// The algorithm the online path predicts for the ADD COLUMN (INSTANT, NOCOPY, INPLACE,
    /// COPY); None: unknown (asked for as INSTANT, the server refuses when it cannot).
    pub add_algorithm: Option<crate::plan::Algorithm>,
}

/// The SQL that reads the column's facts: name, COLUMN_DEFAULT, EXTRA of every column.
pub fn columns_sql(schema: Option<&str>, table: &str) -> String {
    format!(
        "SELECT COLUMN_NAME, COLUMN_DEFAULT, EXTRA FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = {} AND TABLE_NAME = {} ORDER BY ORDINAL_POSITION",
        schema.map(literal).unwrap_or_else(|| "DATABASE()".into()),
        literal(table)
    )
}

/// The SQL that lists the foreign keys `column` is in, on either side.
pub fn foreign_keys_sql(schema: Option<&str>, table: &str, column: &str) -> String {
    let s = schema.map(literal).unwrap_or_else(|| "DATABASE()".into());
    let (t, c) = (literal(table), literal(column));
    format!(
        "SELECT CONCAT('foreign key ', CONSTRAINT_NAME, ' of table ', TABLE_NAME) FROM information_schema.KEY_COLUMN_USAGE WHERE REFERENCED_TABLE_NAME IS NOT NULL AND ((TABLE_SCHEMA = {s} AND TABLE_NAME = {t} AND COLUMN_NAME = {c}) OR (REFERENCED_TABLE_SCHEMA = {s} AND REFERENCED_TABLE_NAME = {t} AND REFERENCED_COLUMN_NAME = {c}))"
    )
}

/// The ADD COLUMN whose algorithm the online path predicts (without an ALGORITHM clause).
pub fn add_column_sql(f: &Facts, definition: &str) -> String {
    format!(
        "ALTER TABLE {} ADD COLUMN {} {definition} AFTER {}",
        f.table_sql,
        ident(&f.to),
        ident(&f.from)
    )
}

/// Reads a backquoted identifier at the start of `s`: the name and the rest after it.
pub(crate) fn read_ident(s: &str) -> Option<(String, &str)> {
    let rest = s.strip_prefix('`')?;
    let mut name = String::new();
    let mut chars = rest.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if c == '`' {
            if chars.peek().map(|(_, c)| *c) == Some('`') {
                chars.next();
                name.push('`');
            } else {
                return Some((name, &rest[i + 1..]));
            }
        } else {
            name.push(c);
        }
    }
    None
}

/// The lines of `SHOW CREATE TABLE` between the first and the last, without the trailing comma.
pub(crate) fn entries(create: &str) -> Vec<&str> {
    let lines: Vec<&str> = create.lines().collect();
    if lines.len() < 3 {
        return vec![];
    }
    lines[1..lines.len() - 1]
        .iter()
        .map(|l| l.trim_start().trim_end_matches(','))
        .collect()
}

/// The column definition after the name in `SHOW CREATE TABLE`.
pub fn definition(create: &str, column: &str) -> Option<String> {
    entries(create).into_iter().find_map(|e| {
        let (name, rest) = read_ident(e)?;
        name.eq_ignore_ascii_case(column)
            .then(|| rest.trim_start().to_string())
    })
}

/// A key of the table: its kind (`PRIMARY KEY`, `UNIQUE KEY`, `KEY`, `FULLTEXT KEY`,
/// `SPATIAL KEY`), name, key parts and what follows them (USING, COMMENT, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Key {
    pub(super) kind: String,
    pub(super) name: String,
    pub(super) parts: Vec<String>,
    pub(super) tail: String,
}

pub(super) fn keys(create: &str) -> Vec<Key> {
    let mut out = Vec::new();
    for e in entries(create) {
        let kinds = [
            "PRIMARY KEY",
            "UNIQUE KEY",
            "KEY",
            "FULLTEXT KEY",
            "SPATIAL KEY",
        ];
        let Some(kind) = kinds.iter().find(|k| e.starts_with(&format!("{k} "))) else {
            continue;
        };
        let mut rest = e[kind.len()..].trim_start();
        let mut name = "PRIMARY".to_string();
        if let Some((n, r)) = read_ident(rest) {
            name = n;
            rest = r.trim_start();
        }
        let Some(list) = rest.strip_prefix('(') else {
            continue;
        };
        // Split the key parts at top-level commas, outside quotes.
        let (mut depth, mut quote, mut part, mut parts) = (0i32, None, String::new(), Vec::new());
        let mut end = list.len();
        for (i, c) in list.char_indices() {
            match (quote, c) {
                (Some(q), c) if c == q => quote = None,
                (Some(_), _) => {}
                (None, '`' | '\'' | '"') => quote = Some(c),
                (None, '(') => depth += 1,
                (None, ')') if depth == 0 => {
                    end = i;
                    break;
                }
                (None, ')') => depth -= 1,
                (None, ',') if depth == 0 => {
                    parts.push(std::mem::take(&mut part));
                    continue;
                }
                _ => {}
            }
            part.push(c);
        }
        parts.push(part);
        out.push(Key {
            kind: kind.to_string(),
            name,
            parts,
            tail: list[(end + 1).min(list.len())..].to_string(),
        });
    }
    out
}

/// Whether `text` names column `c` (backquoted, case-insensitively).
pub(super) fn names(text: &str, c: &str) -> bool {
    text.to_lowercase().contains(&ident(c).to_lowercase())
}

/// The names the phases give their helpers (stable across runs).
pub struct Names {
    pub insert: String,
    pub update: String,
}

/// The sync triggers' names (see `plan::sync_trigger_names`: MariaDB's CREATE OR REPLACE TRIGGER
/// would take another table's of the same name). `present`: the table's triggers now.
pub fn trigger_names(table: &str, column: &str, present: &[String]) -> Names {
    let [insert, update] =
        crate::plan::sync_trigger_names(table, column, ["sluice_ins", "sluice_upd"], present);
    Names { insert, update }
}

fn renamed(name: &str) -> String {
    helper_name(name, "", "sluice_renamed")
}

/// The phases of renaming `f.from` to `f.to`. Err: why the rename cannot run in two phases.
/// The table's definition as read holds U+FFFD where the server sent bytes that are not UTF-8
/// text (a binary column's default such as `0x00FF`): what sluice would write back from it (a
/// new column's definition) would carry other bytes, so the phases are refused.
pub(crate) fn not_text(create: &str) -> Option<String> {
    create.contains('\u{FFFD}').then(|| "the table's definition holds bytes that are not UTF-8 text (a binary column's default or a comment), which sluice cannot write back exactly".into())
}

pub fn phases(st: &crate::analysis::ir::Stmt, f: &Facts) -> Result<Phases, String> {
    if let Some(why) = not_text(&f.create) {
        return Err(why);
    }
    use sqlparser::ast::Statement;
    if let Some(Statement::AlterTable(at)) = st.ast.as_deref() {
        if !super::super::staged::plain_alter(at) {
            return Err("the two phases name the table plainly, which for IF EXISTS would change what the statement does; write it without".into());
        }
    }
    let mariadb = f.engine != Some(EngineKind::MySql);
    if f.from.eq_ignore_ascii_case(&f.to) {
        return Err("the new name differs only in letter case, and column names are case-insensitive here, so both cannot stand side by side".into());
    }
    if f.galera {
        return Err("the server is a Galera node (wsrep_on=ON): the sync triggers' LOCK TABLES blocks the node's applier and stalls the cluster, and the backfill's batches would meet certification conflicts".into());
    }
    let several_triggers = if mariadb {
        f.version >= (10, 2, 3)
    } else {
        f.version >= (5, 7, 2)
    };
    if !several_triggers {
        return Err("the server allows one trigger per table and event before MariaDB 10.2.3 / MySQL 5.7.2, so sluice's sync triggers cannot stand beside the table's own".into());
    }
    let t = &f.table_sql;
    let (a, b) = (ident(&f.from), ident(&f.to));
    if f.column.is_none() && f.has_to {
        return Ok(contracted(f));
    }
    let Some(def) = definition(&f.create, &f.from) else {
        return Err(format!("SHOW CREATE TABLE does not show column {}", f.from));
    };
    let upper = def.to_uppercase();
    // What keeps the expand from carrying the old column: refused before an expand; once
    // expanded, made since (by a later migration or by hand), so `complete` is refused until it
    // is gone while `rollback` stays open.
    let mut column_blockers = Vec::new();
    // Expanded, both columns were made alike: a definition changed on one name since (a type, NOT
    // NULL, a default, a comment) would be lost or kept by the contract, not the rename as written.
    if f.expanded {
        if let Some(new_def) = definition(&f.create, &f.to) {
            if new_def.trim() != def.trim() {
                column_blockers.push(format!(
                    "its definition changed after the expand on one name only: {} is `{}`, {} is `{}` (make the same change on both)",
                    f.from,
                    def.trim(),
                    f.to,
                    new_def.trim()
                ));
            }
        }
    }
    if upper.contains(" AS (") || upper.contains("GENERATED ALWAYS") {
        column_blockers.push("it is a generated column: nobody writes it, and its expression cannot be kept equal by triggers".to_string());
    }
    if upper.contains("AUTO_INCREMENT") {
        column_blockers.push(
            "it is the AUTO_INCREMENT column, and a table has only one: the copy cannot be one"
                .into(),
        );
    }
    if upper.contains(" CHECK (") {
        column_blockers.push(format!("it has a CHECK of its own, {ADD_CHECK}"));
    }
    if !f.expanded {
        if let Some(why) = column_blockers.first() {
            return Err(why.clone());
        }
    }
    let mut blockers = Vec::new();
    for e in entries(&f.create) {
        let Some((name, rest)) = read_ident(e) else {
            let up = e.to_uppercase();
            if up.starts_with("CONSTRAINT ") && up.contains(" CHECK (") && names(e, &f.from) {
                column_blockers.push(format!("the table's check `{e}` uses it, {ADD_CHECK}"));
            }
            continue;
        };
        let up = rest.to_uppercase();
        if !name.eq_ignore_ascii_case(&f.from)
            && (up.contains(" AS (") || up.contains("GENERATED ALWAYS"))
            && names(rest, &f.from)
        {
            column_blockers.push(format!("generated column {name} is computed from it"));
        }
    }
    if f.create.contains("WITH SYSTEM VERSIONING") {
        blockers.push("the table is system-versioned".into());
    }
    column_blockers.extend(f.foreign_keys.iter().map(|k| format!("{k} uses it")));
    let all_keys = keys(&f.create);
    if !all_keys.iter().any(|k| k.kind == "PRIMARY KEY") {
        blockers.push(
            "the table has no primary key, which the backfill batches by (add one first)".into(),
        );
    }
    let mine: Vec<&Key> = all_keys
        .iter()
        .filter(|k| {
            k.parts.iter().any(|p| {
                read_ident(p.trim()).is_some_and(|(n, _)| n.eq_ignore_ascii_case(&f.from))
                    || (p.trim_start().starts_with('(') && names(p, &f.from))
            })
        })
        .collect();
    // Measured on MariaDB 10.11: with any FULLTEXT index, ADD COLUMN is neither INSTANT nor
    // LOCK=NONE ("Fulltext index creation requires a lock"), whichever column the index is on.
    if let Some(ft) = all_keys.iter().find(|k| k.kind == "FULLTEXT KEY") {
        if !mine.iter().any(|k| k.name == ft.name) {
            blockers.push(format!(
                "the table has fulltext key {}, and the server adds a column to such a table only by a rebuild with LOCK=SHARED (writes wait for the whole rebuild)",
                ft.name
            ));
        }
    }
    for k in &mine {
        match k.kind.as_str() {
            "PRIMARY KEY" => column_blockers.push(
                "it is in the primary key, which cannot be built a second time beside itself"
                    .into(),
            ),
            "FULLTEXT KEY" | "SPATIAL KEY" => column_blockers.push(format!(
                "{} {} uses it, and the server builds a FULLTEXT or SPATIAL index only with LOCK=SHARED (writes wait for the whole build), so its copy on the new column cannot be built while both versions write",
                k.kind.to_lowercase(),
                k.name
            )),
            _ if k.parts.iter().any(|p| p.trim_start().starts_with('(')) => column_blockers.push(format!(
                "index {} uses it in an expression (not carried yet)",
                k.name
            )),
            _ => {}
        }
    }
    // The server sets an ON UPDATE column itself on every UPDATE that leaves it unwritten, so
    // the trigger would take the new name's automatic "now" for a write through it and overwrite
    // the value the old version wrote (measured on MariaDB 10.11).
    if f.column
        .as_ref()
        .is_some_and(|(_, extra)| extra.to_lowercase().contains("on update"))
    {
        column_blockers.push("it has ON UPDATE CURRENT_TIMESTAMP, which the server applies to the new column on every UPDATE that does not name it, so the trigger could not tell the old version's write from the server's".into());
    }
    // Expanded: the table-level facts do not matter to the contract or the rollback.
    if f.expanded {
        blockers.clear();
    } else {
        blockers.append(&mut column_blockers);
    }
    if !blockers.is_empty() {
        return Err(format!(
            "{}: the two phases cannot keep both names equal here",
            blockers.join("; ")
        ));
    }
    // What `b` holds when an INSERT leaves it out, as the trigger compares it.
    let left_out = |default: &Option<String>, extra: &str| -> Result<String, String> {
        let Some(d) = default else {
            return Ok("NULL".into());
        };
        let expr = if mariadb || extra.to_uppercase().contains("DEFAULT_GENERATED") {
            d.clone()
        } else {
            literal(d)
        };
        let low = expr.to_lowercase();
        let clock = [
            "current_timestamp",
            "now(",
            "localtime",
            "curdate",
            "curtime",
        ];
        if expr.contains('(') && !clock.iter().any(|c| low.starts_with(c)) {
            return Err(format!("its default {expr} may differ between two evaluations in one INSERT, so the trigger could not tell a left-out column from a written one"));
        }
        Ok(expr)
    };
    let (default, extra) = f.column.clone().unwrap_or_default();
    // A NOT NULL column without a default: the server checks NOT NULL before the BEFORE INSERT
    // trigger runs for INSERT ... SELECT (not for INSERT ... VALUES), so an INSERT ... SELECT
    // leaving either name out would fail (1364) while both exist. Both get a default of the type
    // (ALGORITHM=INSTANT, catalog only, noted in sluice_meta first); complete drops the new
    // column's and rollback the old one's, as drop column does. Not on MySQL (its defaults of
    // TEXT/BLOB are expressions the trigger's comparison does not read).
    let fill = match &f.live {
        Some(l) if mariadb && !l.nullable && l.default.is_none() && l.data_type != "enum" => {
            Some(super::drop_column_mysql::filler(true, l, &def)?)
        }
        _ => None,
    };
    let gives_default = fill.is_some() || f.default_given;
    let default = fill.clone().or(default);
    let omitted = left_out(&default, &extra)?;
    let forget_mark = format!("DELETE FROM `sluice_meta` WHERE `k` = {}", literal(&f.mark));

    let n = trigger_names(&f.table, &f.from, &f.triggers_present);
    let (ti, tu) = (ident(&n.insert), ident(&n.update));
    let add_if = if mariadb { "IF NOT EXISTS " } else { "" };
    use crate::plan::Algorithm;
    let (add_clause, add_about) = match f.add_algorithm {
        None | Some(Algorithm::Instant) => ("ALGORITHM=INSTANT", "ALGORITHM=INSTANT"),
        Some(Algorithm::Nocopy) | Some(Algorithm::Inplace) => ("ALGORITHM=INPLACE, LOCK=NONE", "ALGORITHM=INPLACE, LOCK=NONE"),
        Some(other) => return Err(format!("adding the new column would need ALGORITHM={} on this table, which blocks writes for the whole copy", other.as_str())),
    };
    // Values are compared as bytes, not under the column's collation: under the default
    // case-insensitive, PAD SPACE collations 'USD' = 'usd' = 'usd ', so a write through one name
    // that changed only letter case or trailing spaces was taken for no write and overwritten by
    // the other name's value (and the backfill skipped such rows). The default is compared in the
    // column's character set (CONCAT with an empty piece of the column gives the literal its
    // charset; IFNULL keeps that when the column is NULL).
    let bin = |x: &str| format!("CAST({x} AS BINARY)");
    let same = |x: &str, y: &str| format!("{} <=> {}", bin(x), bin(y));
    // Only a character column compares its default as bytes: the bytes of inet6, uuid or a
    // number are not its text (CAST(inet6 AS BINARY) is 16 raw bytes), so those compare the
    // default with the type's own `<=>`, which is exact for them.
    let character = {
        let ty = upper.trim_start();
        [
            "CHAR",
            "VARCHAR",
            "TINYTEXT",
            "TEXT",
            "MEDIUMTEXT",
            "LONGTEXT",
            "ENUM",
            "SET",
            "NATIONAL",
            "NCHAR",
            "NVARCHAR",
        ]
        .iter()
        .any(|k| {
            ty.strip_prefix(k)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with(['(', ' ']))
        })
    };
    let is_omitted = |x: &str| {
        if omitted == "NULL" {
            format!("{x} IS NULL")
        } else if character {
            same(x, &format!("CONCAT(IFNULL(LEFT({x}, 0), ''), {omitted})"))
        } else {
            format!("{x} <=> {omitted}")
        }
    };
    let (na, nb, ob) = (format!("NEW.{a}"), format!("NEW.{b}"), format!("OLD.{b}"));
    let insert_body = format!(
        "BEGIN IF NOT ({}) THEN IF {} AND NOT ({}) THEN SET NEW.{b} = NEW.{a}; ELSE SET NEW.{a} = NEW.{b}; END IF; END IF; END",
        same(&na, &nb),
        is_omitted(&nb),
        is_omitted(&na)
    );
    let update_body = format!(
        "BEGIN IF NOT ({}) THEN SET NEW.{a} = NEW.{b}; ELSE SET NEW.{b} = NEW.{a}; END IF; END",
        same(&nb, &ob)
    );
    let create = |name: &str, event: &str, body: &str| {
        if mariadb {
            vec![format!(
                "CREATE OR REPLACE TRIGGER {name} BEFORE {event} ON {t} FOR EACH ROW {body}"
            )]
        } else {
            vec![
                format!("DROP TRIGGER IF EXISTS {name}"),
                format!("CREATE TRIGGER {name} BEFORE {event} ON {t} FOR EACH ROW {body}"),
            ]
        }
    };
    let mut block = vec![format!("LOCK TABLES {t} WRITE")];
    // MySQL has no ADD COLUMN IF NOT EXISTS: a rerun whose column is there (the facts show it)
    // leaves it out.
    match &fill {
        // One ALTER: a kill between an ADD of a NOT NULL column without default and its SET
        // DEFAULT would leave the old version's INSERTs failing (1364) with no trigger yet.
        Some(x) => block.push(format!(
            "ALTER TABLE {t} ADD COLUMN {add_if}{b} {def} AFTER {a}, ALTER COLUMN {a} SET DEFAULT {x}, ALTER COLUMN {b} SET DEFAULT {x}, {add_clause}"
        )),
        None if mariadb || !f.has_to => block.push(format!(
            "ALTER TABLE {t} ADD COLUMN {add_if}{b} {def} AFTER {a}, {add_clause}"
        )),
        None => {}
    }
    block.extend(create(&ti, "INSERT", &insert_body));
    block.extend(create(&tu, "UPDATE", &update_body));
    block.push("UNLOCK TABLES".into());
    let mut set = format!("{b} = {a}");
    for c in &f.on_update {
        // Naming the column keeps its ON UPDATE value from changing.
        set.push_str(&format!(", {0} = {0}", ident(c)));
    }
    let filter = format!("NOT ({})", same(&b.to_string(), &a.to_string()));
    // The backfill's checkpoint (sluice-mysql's backfill) belongs to the new column: one left by
    // a run whose column is gone since (rolled back) must not skip rows of the column added now.
    let forget = format!(
        "DELETE FROM `sluice_meta` WHERE `k` = {}",
        literal(&crate::engine::backfill_checkpoint_key(
            t,
            &set,
            Some(&filter)
        ))
    );
    if !f.has_to {
        block.insert(0, forget.clone());
    }
    if fill.is_some() {
        // The note first (sluice_meta is not under the LOCK TABLES): a kill before the ALTER
        // leaves a note of defaults not there, whose DROP DEFAULT changes nothing.
        block.insert(
            0,
            format!(
                "INSERT IGNORE INTO `sluice_meta` (`k`, `v`) VALUES ({}, '')",
                literal(&f.mark)
            ),
        );
    }

    // The statement as written would fail on a taken name; then so does the first attempt,
    // and whatever a rerun finds under the name is sluice's own. MySQL has no anonymous block
    // to ask the server: the facts say whether the name is taken.
    let taken = format!("Duplicate column name '{}'", f.to);
    let mut precheck = Vec::new();
    let mut precheck_refusal = None;
    if mariadb {
        precheck.push(format!(
            "BEGIN NOT ATOMIC IF EXISTS (SELECT 1 FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = {} AND COLUMN_NAME = {}) THEN SIGNAL SQLSTATE '42S21' SET MESSAGE_TEXT = {}; END IF; END",
            literal(&f.table),
            literal(&f.to),
            literal(&taken)
        ));
    } else if f.has_to {
        precheck_refusal = Some(taken);
    }
    let mut expand = vec![Step::Sql(block.join("; "))];
    let mut about = vec![About::new(
        "under LOCK TABLES WRITE (bounded by lock_wait_timeout, retried): add the new column beside the old one and the BEFORE INSERT and BEFORE UPDATE triggers that keep both names equal",
        Lock::AccessExclusive,
        Effect::Instant,
        Blocks::ReadsAndWrites,
    )];
    let mut locks = vec![format!("LOCK TABLES WRITE (milliseconds), {add_about}")];
    expand.push(Step::Backfill {
        table: t.clone(),
        set,
        filter: Some(filter),
        as_update: false,
    });
    about.push(About::new(
        "backfill existing rows in primary-key batches, each one short autocommitted UPDATE",
        Lock::RowExclusive,
        Effect::Backfill,
        Blocks::Nothing,
    ));
    locks.push("row locks of one batch".into());
    let index_clause = if mariadb {
        "ALGORITHM=NOCOPY, LOCK=NONE"
    } else {
        "ALGORITHM=INPLACE, LOCK=NONE"
    };
    let mut drops = Vec::new();
    let mut renames = Vec::new();
    let mut tmp_drops = Vec::new();
    // Expanded, an index on the old column without its copy: made on the old name after the
    // expand (a later migration), so the contract's ALTER would fail after its triggers are
    // dropped (MariaDB cannot roll that back).
    let mut uncopied = Vec::new();
    for k in &mine {
        let tmp = renamed(&k.name);
        // MySQL has no ADD KEY IF NOT EXISTS nor DROP INDEX IF EXISTS: the copy a killed run
        // built (the facts show it) is not built again, and only a copy that is there is dropped.
        let built = all_keys.iter().any(|x| x.name.eq_ignore_ascii_case(&tmp));
        if !built {
            uncopied.push(k.name.clone());
        }
        let parts: Vec<String> = k
            .parts
            .iter()
            .map(|p| match read_ident(p.trim()) {
                Some((n, rest)) if n.eq_ignore_ascii_case(&f.from) => format!("{b}{rest}"),
                _ => p.trim().to_string(),
            })
            .collect();
        let kind = if k.kind == "UNIQUE KEY" {
            "UNIQUE KEY"
        } else {
            "KEY"
        };
        if mariadb || !built {
            expand.push(Step::Sql(format!(
                "ALTER TABLE {t} ADD {kind} {add_if}{} ({}){}, {index_clause}",
                ident(&tmp),
                parts.join(","),
                k.tail
            )));
            about.push(About::new(
                "build the index on the new column in place (reads and writes continue)",
                Lock::ShareUpdateExclusive,
                Effect::IndexBuild,
                Blocks::Nothing,
            ));
            locks.push(format!("metadata lock at start and end, {index_clause}"));
        }
        drops.push(format!("DROP INDEX {}", ident(&k.name)));
        renames.push(format!(
            "RENAME INDEX {} TO {}",
            ident(&tmp),
            ident(&k.name)
        ));
        if mariadb {
            tmp_drops.push(format!("DROP INDEX IF EXISTS {}", ident(&tmp)));
        } else if built {
            tmp_drops.push(format!("DROP INDEX {}", ident(&tmp)));
        }
    }

    let drop_triggers = vec![
        format!("DROP TRIGGER IF EXISTS {ti}"),
        format!("DROP TRIGGER IF EXISTS {tu}"),
    ];
    let contract_clause = if mine.is_empty() {
        "ALGORITHM=INSTANT"
    } else {
        index_clause
    };
    // The ALTER runs before the triggers are dropped: under LOCK TABLES WRITE nobody writes in
    // between, and an ALTER the server refuses (a table shape no probe sees, such as the hidden
    // FTS_DOC_ID column a dropped FULLTEXT index leaves: 1845) then changes nothing, so both
    // names keep working. A kill between the ALTER and the drops leaves triggers naming a
    // dropped column, which fail writes until the rerun drops them (`contracted`).
    let mut complete = vec![format!("LOCK TABLES {t} WRITE")];
    let mut clauses = drops;
    clauses.push(format!("DROP COLUMN {a}"));
    let mut after = Vec::new();
    if gives_default {
        after.push(format!("ALTER COLUMN {b} DROP DEFAULT"));
    }
    after.extend(renames);
    // MariaDB refuses a DROP COLUMN combined with any other clause in place on a table with a
    // VIRTUAL column (1846, measured on 10.11): the drop goes first, the rest in a second ALTER
    // (a kill between the two: the rerun's `contracted` finishes the rest).
    if f.create.to_uppercase().contains(" VIRTUAL") && !after.is_empty() {
        complete.push(format!(
            "ALTER TABLE {t} {}, {contract_clause}",
            clauses.join(", ")
        ));
        complete.extend(drop_triggers.iter().cloned());
        complete.push(format!(
            "ALTER TABLE {t} {}, {index_clause}",
            after.join(", ")
        ));
    } else {
        clauses.extend(after);
        complete.push(format!(
            "ALTER TABLE {t} {}, {contract_clause}",
            clauses.join(", ")
        ));
        complete.extend(drop_triggers.iter().cloned());
    }
    complete.push("UNLOCK TABLES".into());
    if gives_default {
        complete.push(forget_mark.clone());
    }
    // As in the contract, the ALTER before the triggers' drops.
    let mut rollback = vec![format!("LOCK TABLES {t} WRITE")];
    let mut clauses = tmp_drops;
    if mariadb {
        clauses.push(format!("DROP COLUMN IF EXISTS {b}"));
        if gives_default {
            clauses.push(format!("ALTER COLUMN {a} DROP DEFAULT"));
        }
    } else if f.has_to {
        // MySQL: what the facts show is there (no DROP COLUMN IF EXISTS).
        clauses.push(format!("DROP COLUMN {b}"));
    }
    if !clauses.is_empty() {
        rollback.push(format!("ALTER TABLE {t} {}", clauses.join(", ")));
    }
    rollback.extend(drop_triggers);
    rollback.push("UNLOCK TABLES".into());
    rollback.push(forget);
    if gives_default {
        rollback.push(forget_mark);
    }

    // Expanded, yet the new column or a trigger is gone: a rollback cut off after its schema
    // change, before its record. The contract would then drop the old column, the only copy left
    // of every value (the new version's writes went through the triggers into it).
    let complete_refusal = if f.expanded {
        let mut gone = Vec::new();
        if !f.has_to {
            gone.push(format!("column {}", f.to));
        }
        gone.extend(
            [&n.insert, &n.update]
                .into_iter()
                .filter(|t| !f.triggers_present.iter().any(|p| p.eq_ignore_ascii_case(t)))
                .map(|t| format!("trigger {t}")),
        );
        if !gone.is_empty() {
            Some(format!(
                "{} of the expand phase {} gone while the migration is still recorded expanded (a `sluice rollback` was cut off after its schema change): dropping {} now would lose the data only it holds; run `sluice rollback` again to finish the rollback, then `sluice up` to expand anew",
                gone.join(", "),
                if gone.len() > 1 { "are" } else { "is" },
                f.from
            ))
        } else if let Some(users) = old_name_users(f, &n) {
            Some(format!(
                "{users} still use{} {}.{}: once `sluice complete` drops the column, {} (MariaDB does not rewrite trigger bodies or view definitions, and the statement as written would break them the same way). Change {} to use {} in a new migration (`CREATE OR REPLACE TRIGGER` / `CREATE OR REPLACE VIEW`), then run `sluice complete` again",
                if users.contains(", ") { "" } else { "s" },
                f.table,
                f.from,
                "every write that fires such a trigger fails (1054 Unknown column) and such a view fails to read (1356)",
                if users.contains(", ") { "them" } else { "it" },
                f.to
            ))
        } else if !column_blockers.is_empty() {
            Some(format!(
                "{}.{} carries what the expand phase did not copy to {} (made after it): {}. The contract drops {} (or fails on it, part-way: MariaDB cannot roll DDL back). Make each on {} instead in a new migration and drop the one on {}, then run `sluice complete` again; or `sluice rollback`",
                f.table,
                f.from,
                f.to,
                column_blockers.iter().map(|b| said_of(b, &f.from)).collect::<Vec<_>>().join("; "),
                f.from,
                f.to,
                f.from
            ))
        } else if !uncopied.is_empty() {
            Some(format!(
                "{} on {} {} no copy on {} (made after the expand, by a later migration): the contract drops {} with its indexes, so it would be lost or the contract's ALTER would fail. Drop {} in a new migration (and create {} on {} instead), then run `sluice complete` again",
                uncopied
                    .iter()
                    .map(|k| format!("index {k}"))
                    .collect::<Vec<_>>()
                    .join(", "),
                f.from,
                if uncopied.len() > 1 { "have" } else { "has" },
                f.to,
                f.from,
                if uncopied.len() > 1 { "them" } else { "it" },
                if uncopied.len() > 1 { "them" } else { "it" },
                f.to
            ))
        } else {
            None
        }
    } else {
        None
    };
    // Expanded: what a later migration (or a hand) made on the new name, which the rollback's
    // DROP COLUMN would drop with it or fail on after its triggers are gone.
    let rollback_refusal = match f.expanded {
        true => made_on_new(f, &n, &all_keys).map(|what| {
            format!(
                "{}.{} carries what the expand phase did not make (a later migration's or made by hand): {what}. The rollback drops {}, and with it each of these (or fails on it, part-way: MariaDB cannot roll DDL back). Drop them first (`sluice down` for a migration that made them), then run `sluice rollback` again",
                f.table, f.to, f.to
            )
        }),
        false => None,
    };
    Ok(Phases {
        precheck,
        precheck_refusal,
        expand,
        expand_about: about,
        expand_atomic: false,
        complete: vec![complete.join("; ")],
        rollback: vec![rollback.join("; ")],
        rollback_refusal,
        complete_refusal,
        complete_online: None,
        rollback_guard: vec![],
        guard: super::Guard::NotNull,
        rollback_prepare: vec![],
        rollback_undo: vec![],
        sees: sees(f, &n),
        complete_description: "`sluice complete`: under LOCK TABLES WRITE (milliseconds), drop the old column and its indexes and give the copies their names, then drop the sync triggers (an ALTER the server refuses changes nothing: both names keep working)",
        rollback_description: "`sluice rollback` (before complete): under LOCK TABLES WRITE (milliseconds), drop the index copies and the new column, then the sync triggers",
        expand_locks: locks,
        phase_lock: Some("LOCK TABLES WRITE (milliseconds)".into()),
        rollback_lock: None,
        watch: None,
        old_version: std::iter::once(crate::plan::old_version::added_column(
            &f.table, &f.to, &f.from,
        ))
        .chain(fill.as_deref().map(|value| {
            crate::plan::old_version::default_while_expanded(&f.table, &f.from, &f.to, value)
        }))
        .collect(),
    })
}

/// What uses the old column (see [`users_of`]), in words.
fn old_name_users(f: &Facts, n: &Names) -> Option<String> {
    users_of(f, n, &f.from)
}

/// The triggers (but sluice's) and views that use `col` of the table, named. A trigger: its body
/// names `NEW.col`/`OLD.col` (the table's own), or `t.col`, or `col` bare while the body also names
/// the table `t` (a subquery over it), comments and literals left out, a name followed by `(` being
/// a function. A view (any database): MariaDB prints its definition with every column qualified by
/// the table's alias (`` `x`.`a` ``, the alias being the table's name when none is given), so the
/// view uses it when `` `alias`.`col` `` follows a `` `db`.`t` `` of it.
fn users_of(f: &Facts, n: &Names, col: &str) -> Option<String> {
    let ours =
        |name: &str| name.eq_ignore_ascii_case(&n.insert) || name.eq_ignore_ascii_case(&n.update);
    let mut users: Vec<String> = f
        .trigger_bodies
        .iter()
        .filter(|(name, body)| !ours(name) && body_uses(body, &f.table, col, true))
        .map(|(name, _)| format!("trigger {name}"))
        .collect();
    users.extend(
        f.other_triggers
            .iter()
            .filter(|(_, body)| body_uses(body, &f.table, col, false))
            .map(|(name, _)| format!("trigger {name} (of another table)")),
    );
    users.extend(
        f.views
            .iter()
            .filter(|(_, def)| view_uses(def, &f.database, &f.table, col))
            .map(|(name, _)| {
                let own = format!("{}.", f.database);
                format!("view {}", name.strip_prefix(&own).unwrap_or(name))
            }),
    );
    (!users.is_empty()).then(|| users.join(", "))
}

/// The tokens of SQL text, lower case: identifiers (a backquoted one whole, marked quoted), `.`
/// and `(`; comments and string literals left out.
fn tokens(text: &str) -> Vec<(String, bool)> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let word = |c: char| c.is_alphanumeric() || c == '_' || c == '$';
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '#' || (c == '-' && next == Some('-')) {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            i += 2;
            while i + 1 < chars.len() && !(chars[i] == '*' && chars[i + 1] == '/') {
                i += 1;
            }
            i += 2;
        } else if c == '\'' || c == '"' {
            i += 1;
            while i < chars.len() && chars[i] != c {
                i += if chars[i] == '\\' { 2 } else { 1 };
            }
            i += 1;
        } else if c == '`' {
            let mut name = String::new();
            i += 1;
            while i < chars.len() {
                if chars[i] == '`' {
                    if chars.get(i + 1) == Some(&'`') {
                        name.push('`');
                        i += 2;
                        continue;
                    }
                    break;
                }
                name.push(chars[i]);
                i += 1;
            }
            i += 1;
            out.push((name.to_lowercase(), true));
        } else if word(c) {
            let start = i;
            while i < chars.len() && word(chars[i]) {
                i += 1;
            }
            out.push((
                chars[start..i].iter().collect::<String>().to_lowercase(),
                false,
            ));
        } else {
            if c == '.' || c == '(' {
                out.push((c.to_string(), false));
            }
            i += 1;
        }
    }
    out
}

/// Whether a trigger body uses `table`.`col` (see [`users_of`]).
pub(crate) fn body_uses(body: &str, table: &str, col: &str, own: bool) -> bool {
    let t = tokens(body);
    let (table, col) = (table.to_lowercase(), col.to_lowercase());
    let at = |i: usize| t.get(i).map(|(x, _)| x.as_str());
    let is = |i: usize, v: &str| at(i) == Some(v);
    let call = |i: usize| is(i + 1, "(");
    let qualified = (0..t.len()).any(|i| {
        is(i + 1, ".")
            && is(i + 2, &col)
            && !call(i + 2)
            && (is(i, &table) || (own && (is(i, "new") || is(i, "old"))))
    });
    let bare = (0..t.len())
        .any(|i| is(i, &col) && !call(i) && !is(i + 1, ".") && (i == 0 || !is(i - 1, ".")));
    let names_table =
        (0..t.len()).any(|i| is(i, &table) && !call(i) && (i == 0 || !is(i - 1, ".")));
    qualified || (bare && names_table)
}

/// Whether a view's definition (as MariaDB prints it) reads `db`.`table`.`col` (see [`users_of`]).
pub(crate) fn view_uses(def: &str, db: &str, table: &str, col: &str) -> bool {
    let t = tokens(def);
    let (db, table, col) = (db.to_lowercase(), table.to_lowercase(), col.to_lowercase());
    let quoted = |i: usize, v: &str| t.get(i).is_some_and(|(x, q)| *q && x == v);
    let dot = |i: usize| t.get(i).is_some_and(|(x, q)| !*q && x == ".");
    let mut aliases = Vec::new();
    for i in 0..t.len() {
        // `db`.`t` not followed by `.` (a column of it would be `db`.`t`.`c`, never printed so).
        if quoted(i, &db) && dot(i + 1) && quoted(i + 2, &table) && !dot(i + 3) {
            match t.get(i + 3) {
                Some((alias, true)) => aliases.push(alias.clone()),
                _ => aliases.push(table.clone()),
            }
        }
    }
    aliases
        .iter()
        .any(|a| (0..t.len()).any(|i| quoted(i, a) && dot(i + 1) && quoted(i + 2, &col)))
}

/// A refusal reason that says "it" of the column, said of `column` by name.
fn said_of(why: &str, column: &str) -> String {
    why.split(' ')
        .map(|w| match w.strip_prefix("it") {
            Some(rest) if rest.is_empty() || rest.starts_with([',', ':', ';', ')']) => {
                format!("{column}{rest}")
            }
            _ => w.to_string(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// What the new column carries that the expand did not make: an index that is not a copy, a
/// check or generated column naming it, a foreign key, a trigger or view using it.
fn made_on_new(f: &Facts, n: &Names, all_keys: &[Key]) -> Option<String> {
    let mut out: Vec<String> = all_keys
        .iter()
        .filter(|k| !k.name.ends_with("_sluice_renamed"))
        .filter(|k| {
            k.parts.iter().any(|p| {
                read_ident(p.trim()).is_some_and(|(x, _)| x.eq_ignore_ascii_case(&f.to))
                    || (p.trim_start().starts_with('(') && names(p, &f.to))
            })
        })
        .map(|k| format!("index {}", k.name))
        .collect();
    for e in entries(&f.create) {
        let up = e.to_uppercase();
        match read_ident(e) {
            None if up.starts_with("CONSTRAINT ") && up.contains(" CHECK (") && names(e, &f.to) => {
                out.push(format!("check `{e}`"))
            }
            Some((name, rest)) => {
                let up = rest.to_uppercase();
                let generated = up.contains(" AS (") || up.contains("GENERATED ALWAYS");
                if name.eq_ignore_ascii_case(&f.to) && (generated || up.contains(" CHECK (")) {
                    out.push(format!("the definition of {name} (`{}`)", rest.trim()));
                } else if generated && names(rest, &f.to) {
                    out.push(format!("generated column {name}"));
                }
            }
            None => {}
        }
    }
    out.extend(f.to_foreign_keys.iter().cloned());
    out.extend(users_of(f, n, &f.to));
    (!out.is_empty()).then(|| out.join("; "))
}

/// The phases once the contract's ALTER ran (a kill before its record): the old column is gone,
/// so `complete` only makes sure the triggers are and records it; a rollback is refused.
fn contracted(f: &Facts) -> Phases {
    let n = trigger_names(&f.table, &f.from, &f.triggers_present);
    let t = &f.table_sql;
    let (rollback, rollback_refusal) = super::refused_rollback(
        f.engine,
        &format!(
            "column {} is gone already (an interrupted `sluice complete` dropped it): run `sluice complete` to finish",
            f.from
        ),
    );
    // What a contract split in two ALTERs (a VIRTUAL column on the table) left undone when cut
    // off between them: the new column's default dropped, and the index copies given their names
    // (a name clipped and hashed to fit cannot be told back, and keeps its helper name).
    let mut rest = Vec::new();
    if f.default_given {
        rest.push(format!("ALTER COLUMN {} DROP DEFAULT", ident(&f.to)));
    }
    let all_keys = keys(&f.create);
    for k in &all_keys {
        let Some(name) = k.name.strip_suffix("_sluice_renamed") else {
            continue;
        };
        if renamed(name) == k.name && !all_keys.iter().any(|x| x.name.eq_ignore_ascii_case(name)) {
            rest.push(format!(
                "RENAME INDEX {} TO {}",
                ident(&k.name),
                ident(name)
            ));
        }
    }
    let finish = match rest.is_empty() {
        true => String::new(),
        false => format!(
            "; ALTER TABLE {t} {}, {}",
            rest.join(", "),
            if f.engine == Some(EngineKind::MySql) {
                "ALGORITHM=INPLACE, LOCK=NONE"
            } else {
                "ALGORITHM=NOCOPY, LOCK=NONE"
            }
        ),
    };
    Phases {
        precheck: vec![],
        precheck_refusal: None,
        expand: vec![],
        expand_about: vec![],
        expand_atomic: false,
        complete: vec![format!(
            "LOCK TABLES {t} WRITE; DROP TRIGGER IF EXISTS {}; DROP TRIGGER IF EXISTS {}{finish}; UNLOCK TABLES{}",
            ident(&n.insert),
            ident(&n.update),
            if f.default_given {
                format!("; DELETE FROM `sluice_meta` WHERE `k` = {}", literal(&f.mark))
            } else {
                String::new()
            }
        )],
        rollback,
        rollback_refusal,
        complete_refusal: None,
        complete_online: None,
        rollback_guard: vec![],
        guard: super::Guard::NotNull,
        rollback_prepare: vec![],
        rollback_undo: vec![],
        sees: sees(f, &n),
        complete_description: "`sluice complete`: the old column is gone already (an interrupted complete); drop what is left of the sync triggers and record it",
        rollback_description: "refused: the old column is gone already",
        expand_locks: vec![],
        phase_lock: Some("LOCK TABLES WRITE (milliseconds)".into()),
        rollback_lock: None,
        watch: None,
        old_version: vec![],
    }
}

fn sees(f: &Facts, n: &Names) -> Vec<(String, String)> {
    let (old, new) = (&f.from, &f.to);
    vec![
        (
            "before".into(),
            format!("the old version reads and writes {old}; the new version must not run yet ({new} does not exist)"),
        ),
        (
            "expanded (after `sluice up`)".into(),
            format!("both versions run. The old version reads and writes {old}, the new version {new}: the triggers {} and {} keep them equal, so every write through either name is seen through the other, and every row has {new} = {old}. {new} has {old}'s definition and its indexes and unique keys (named *_sluice_renamed until complete). An INSERT that names both with different values keeps {new}'s, unless {new}'s is its default. SELECT * shows both columns ({new} right after {old}).", n.insert, n.update),
        ),
        (
            "completed (after `sluice complete`)".into(),
            format!("only the new version may run: {old} is gone and queries naming it fail. The table is as the rename as written leaves it (secondary indexes of the same kind may be listed in another order)"),
        ),
        (
            "rolled back (after `sluice rollback`)".into(),
            format!("only the old version may run: {new} is gone; the table is as before the migration"),
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

    const CREATE: &str = "CREATE TABLE `t` (\n  `id` bigint(20) NOT NULL AUTO_INCREMENT,\n  `name` varchar(20) NOT NULL DEFAULT 'anon' COMMENT 'who',\n  `c` int(11) DEFAULT NULL,\n  `ts` timestamp NOT NULL DEFAULT current_timestamp() ON UPDATE current_timestamp(),\n  PRIMARY KEY (`id`),\n  UNIQUE KEY `u_name_c` (`name`(10),`c`),\n  KEY `ix_c` (`c`),\n  KEY `ix_name` (`name` DESC) COMMENT 'n'\n) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4";

    fn facts(engine: EngineKind) -> Facts {
        Facts {
            engine: Some(engine),
            version: if engine == EngineKind::MySql {
                (8, 0, 35)
            } else {
                (10, 11, 6)
            },
            table: "t".into(),
            table_sql: "`t`".into(),
            from: "name".into(),
            to: "full name".into(),
            create: CREATE.into(),
            column: Some((
                Some(if engine == EngineKind::MySql {
                    "anon".into()
                } else {
                    "'anon'".into()
                }),
                String::new(),
            )),
            on_update: vec!["ts".into()],
            add_algorithm: Some(crate::plan::Algorithm::Instant),
            ..Default::default()
        }
    }

    #[test]
    fn mariadb_phases_copy_the_definition_sync_backfill_and_rebuild_keys() {
        let e = EngineKind::MariaDb;
        let p = phases(
            &stmt(e, "ALTER TABLE t RENAME COLUMN name TO `full name`"),
            &facts(e),
        )
        .unwrap();
        let sql: Vec<String> = p.expand.iter().map(Step::text).collect();
        assert_eq!(sql.len(), 4, "{sql:#?}");
        // The backfill's checkpoint, keyed by what it fills, is forgotten before the column is added.
        let forget = format!(
            "DELETE FROM `sluice_meta` WHERE `k` = '{}'",
            crate::engine::backfill_checkpoint_key(
                "`t`",
                "`full name` = `name`, `ts` = `ts`",
                Some("NOT (CAST(`full name` AS BINARY) <=> CAST(`name` AS BINARY))")
            )
        );
        let lock = sql[0]
            .strip_prefix(&format!("{forget}; "))
            .unwrap_or_else(|| panic!("{}", sql[0]));
        assert!(lock.starts_with("LOCK TABLES `t` WRITE; ALTER TABLE `t` ADD COLUMN IF NOT EXISTS `full name` varchar(20) NOT NULL DEFAULT 'anon' COMMENT 'who' AFTER `name`, ALGORITHM=INSTANT; CREATE OR REPLACE TRIGGER `t_name_5a68a959_sluice_ins` BEFORE INSERT ON `t` FOR EACH ROW BEGIN IF NOT (CAST(NEW.`name` AS BINARY) <=> CAST(NEW.`full name` AS BINARY)) THEN IF CAST(NEW.`full name` AS BINARY) <=> CAST(CONCAT(IFNULL(LEFT(NEW.`full name`, 0), ''), 'anon') AS BINARY) AND NOT (CAST(NEW.`name` AS BINARY) <=> CAST(CONCAT(IFNULL(LEFT(NEW.`name`, 0), ''), 'anon') AS BINARY)) THEN"), "{}", sql[0]);
        assert!(
            sql[0].contains("CREATE OR REPLACE TRIGGER `t_name_5a68a959_sluice_upd` BEFORE UPDATE")
        );
        assert!(sql[0].ends_with("; UNLOCK TABLES"));
        assert_eq!(sql[1], "backfill in batches: UPDATE `t` SET `full name` = `name`, `ts` = `ts` WHERE NOT (CAST(`full name` AS BINARY) <=> CAST(`name` AS BINARY))");
        assert_eq!(sql[2], "ALTER TABLE `t` ADD UNIQUE KEY IF NOT EXISTS `u_name_c_sluice_renamed` (`full name`(10),`c`), ALGORITHM=NOCOPY, LOCK=NONE");
        assert_eq!(sql[3], "ALTER TABLE `t` ADD KEY IF NOT EXISTS `ix_name_sluice_renamed` (`full name` DESC) COMMENT 'n', ALGORITHM=NOCOPY, LOCK=NONE");
        // The ALTER before the triggers' drops: one the server refuses changes nothing.
        assert_eq!(p.complete, vec!["LOCK TABLES `t` WRITE; ALTER TABLE `t` DROP INDEX `u_name_c`, DROP INDEX `ix_name`, DROP COLUMN `name`, RENAME INDEX `u_name_c_sluice_renamed` TO `u_name_c`, RENAME INDEX `ix_name_sluice_renamed` TO `ix_name`, ALGORITHM=NOCOPY, LOCK=NONE; DROP TRIGGER IF EXISTS `t_name_5a68a959_sluice_ins`; DROP TRIGGER IF EXISTS `t_name_5a68a959_sluice_upd`; UNLOCK TABLES".to_string()]);
        assert_eq!(p.rollback, vec![format!("LOCK TABLES `t` WRITE; ALTER TABLE `t` DROP INDEX IF EXISTS `u_name_c_sluice_renamed`, DROP INDEX IF EXISTS `ix_name_sluice_renamed`, DROP COLUMN IF EXISTS `full name`; DROP TRIGGER IF EXISTS `t_name_5a68a959_sluice_ins`; DROP TRIGGER IF EXISTS `t_name_5a68a959_sluice_upd`; UNLOCK TABLES; {forget}")]);
        assert_eq!(p.precheck.len(), 1);
        // plan shows MariaDB's locks, not PostgreSQL's.
        let steps = p.expand_steps();
        assert_eq!(steps[0].algorithm, Some(crate::plan::Algorithm::Instant));
        assert_eq!(steps[2].algorithm, Some(crate::plan::Algorithm::Nocopy));
        assert_eq!(steps[2].lock_level, Some(crate::plan::LockLevel::None));
        assert!(p.complete_step().lock.contains("LOCK TABLES WRITE"));
        assert_eq!(p.sees.len(), 4);
        // A rerun that finds the new column (the expand was cut off) resumes from the checkpoint.
        let mut f = facts(e);
        f.has_to = true;
        let p = phases(
            &stmt(e, "ALTER TABLE t RENAME COLUMN name TO `full name`"),
            &f,
        )
        .unwrap();
        assert!(p.expand[0].text().starts_with("LOCK TABLES `t` WRITE; "));
    }

    #[test]
    fn mysql_phases_use_its_own_forms() {
        let e = EngineKind::MySql;
        let p = phases(
            &stmt(e, "ALTER TABLE t RENAME COLUMN name TO `full name`"),
            &facts(e),
        )
        .unwrap();
        let first = p.expand[0].text();
        // No IF NOT EXISTS nor CREATE OR REPLACE TRIGGER on MySQL; its default is a value.
        assert!(
            first.contains("ADD COLUMN `full name` varchar(20)"),
            "{first}"
        );
        assert!(
            first.contains(
                "DROP TRIGGER IF EXISTS `t_name_5a68a959_sluice_ins`; CREATE TRIGGER `t_name_5a68a959_sluice_ins`"
            ),
            "{first}"
        );
        assert!(
            first.contains("CAST(NEW.`full name` AS BINARY) <=> CAST(CONCAT(IFNULL(LEFT(NEW.`full name`, 0), ''), 'anon') AS BINARY)"),
            "{first}"
        );
        assert!(p.expand[2].text().ends_with("ALGORITHM=INPLACE, LOCK=NONE"));
        assert!(p.precheck.is_empty());
        // A MySQL expression default is kept as the expression.
        let mut f = facts(e);
        f.to = "x".into();
        f.column = Some((Some("CURRENT_TIMESTAMP".into()), "DEFAULT_GENERATED".into()));
        let p = phases(&stmt(e, "ALTER TABLE t RENAME COLUMN name TO x"), &f).unwrap();
        assert!(p.expand[0]
            .text()
            .contains("CAST(NEW.`x` AS BINARY) <=> CAST(CONCAT(IFNULL(LEFT(NEW.`x`, 0), ''), CURRENT_TIMESTAMP) AS BINARY) AND"));
    }

    /// The table as a killed expand left it: the new column there, with `built` of the index
    /// copies.
    fn expanded_create(built: &[&str]) -> String {
        let mut c = CREATE.replace(
            "  `c` int(11) DEFAULT NULL,\n",
            "  `full name` varchar(20) NOT NULL DEFAULT 'anon' COMMENT 'who',\n  `c` int(11) DEFAULT NULL,\n",
        );
        for k in built {
            let key = match *k {
                "u_name_c" => "  UNIQUE KEY `u_name_c_sluice_renamed` (`full name`(10),`c`),\n",
                _ => "  KEY `ix_name_sluice_renamed` (`full name` DESC) COMMENT 'n',\n",
            };
            c = c.replace(
                "  KEY `ix_c` (`c`),\n",
                &format!("{key}  KEY `ix_c` (`c`),\n"),
            );
        }
        c
    }

    /// Every state of a column rename, planned for MariaDB and for MySQL 8.
    #[test]
    fn every_shape_renders_for_both_engines() {
        type Change = dyn Fn(&mut Facts);
        let resumed = |built: &'static [&'static str]| {
            move |f: &mut Facts| {
                f.has_to = true;
                f.create = expanded_create(built);
            }
        };
        let (none, one, both) = (
            resumed(&[]),
            resumed(&["u_name_c"]),
            resumed(&["u_name_c", "ix_name"]),
        );
        let cases: &[(&str, &Change)] = &[
            ("first attempt", &|_| {}),
            ("name taken or column added (resume)", &none),
            ("one index copy built", &one),
            ("both index copies built", &both),
            ("no index", &|f| {
                f.from = "ts".into();
                f.to = "at".into();
                f.column = Some((None, String::new()));
            }),
            ("contracted", &|f| {
                f.column = None;
                f.has_to = true;
            }),
            ("galera", &|f| f.galera = true),
        ];
        for (what, change) in cases {
            let plan = |e: EngineKind| {
                let mut f = facts(e);
                change(&mut f);
                let sql = format!(
                    "ALTER TABLE t RENAME COLUMN {} TO {}",
                    ident(&f.from),
                    ident(&f.to)
                );
                phases(&stmt(e, &sql), &f)
            };
            super::super::check_engines(what, &plan(EngineKind::MariaDb), &plan(EngineKind::MySql));
        }
        let e = EngineKind::MySql;
        let st = stmt(e, "ALTER TABLE t RENAME COLUMN name TO `full name`");
        // First attempt: MySQL's rollback holds only what is there (the triggers, if any).
        let p = phases(&st, &facts(e)).unwrap();
        assert_eq!(p.precheck_refusal, None);
        assert!(!p.rollback[0].contains("ALTER TABLE"), "{}", p.rollback[0]);
        assert_eq!(p.expand.len(), 4);
        // A rerun with the column and one index copy there: neither is made again, and the
        // rollback drops exactly those.
        let mut f = facts(e);
        one(&mut f);
        let p = phases(&st, &f).unwrap();
        assert_eq!(
            p.precheck_refusal.as_deref(),
            Some("Duplicate column name 'full name'")
        );
        let sql: Vec<String> = p.expand.iter().map(Step::text).collect();
        assert!(!sql[0].contains("ADD COLUMN"), "{}", sql[0]);
        assert!(sql[0].starts_with("LOCK TABLES `t` WRITE; DROP TRIGGER IF EXISTS"));
        assert_eq!(sql.len(), 3, "{sql:#?}");
        assert!(
            sql[2].contains("ADD KEY `ix_name_sluice_renamed`"),
            "{}",
            sql[2]
        );
        assert_eq!(p.expand_about.len(), 3);
        assert_eq!(p.expand_locks.len(), 3);
        assert!(p.rollback[0].contains("ALTER TABLE `t` DROP INDEX `u_name_c_sluice_renamed`, DROP COLUMN `full name`; DROP TRIGGER IF EXISTS"), "{}", p.rollback[0]);
    }

    #[test]
    fn what_uses_a_column_is_read_by_reference_not_by_mention() {
        // Triggers: (body, own table's, uses t.a).
        for (body, own, uses) in [
            ("SET NEW.note = NEW.a + 1", true, true),
            ("SET NEW.note = NEW.`A` + 1", true, true),
            ("SET @x = (SELECT MAX(a) FROM t)", true, true),
            ("UPDATE t SET a = a + 1 WHERE id = NEW.x", false, true),
            ("UPDATE `t` SET `t`.`a` = 1", false, true),
            ("SET NEW.x = 1 /* a */", true, false),
            ("SET NEW.x = 1 -- a\n", true, false),
            ("UPDATE u SET `a b` = NEW.x", true, false),
            ("INSERT INTO log (a) VALUES (NEW.b)", true, false),
            (
                "INSERT INTO log (a) VALUES (NEW.a) /* copied to t */",
                false,
                false,
            ),
            ("SET NEW.note = 'a'", true, false),
            ("SET NEW.a2 = NEW.ab", true, false),
        ] {
            assert_eq!(body_uses(body, "t", "a", own), uses, "{body}");
        }
        // A function of the same name is no column.
        assert!(!body_uses("SET NEW.x = YEAR(NEW.c)", "d9", "year", true));
        // Views as MariaDB prints them: (definition, uses db.t.a).
        for (def, uses) in [
            ("select `t`.`id` AS `id`,`t`.`a` AS `a` from `db`.`t`", true),
            ("select `x`.`a` AS `a` from `db`.`t` `x`", true),
            ("select `t`.`id` AS `id`,`u`.`a` AS `a`,`u`.`b` AS `b` from (`db`.`t` join `db`.`u` on(`u`.`id` = `t`.`id`))", false),
            ("select `t`.`id` AS `id`,`t`.`b` AS `a` from `db`.`t`", false),
            ("select `t`.`a` AS `a` from `other`.`t`", false),
            ("select `u`.`a` AS `a` from `db`.`u` join `db`.`t` `u2` on(`u2`.`id` = `u`.`id`)", false),
        ] {
            assert_eq!(view_uses(def, "db", "t", "a"), uses, "{def}");
        }
    }

    #[test]
    fn trigger_names_are_tagged_and_an_earlier_expands_names_are_kept() {
        // `a_b`.`c` and `a`.`b_c`: untagged, both would be `a_b_c_sluice_ins`.
        let x = trigger_names("a_b", "c", &[]);
        let y = trigger_names("a", "b_c", &[]);
        assert_ne!(x.insert, y.insert);
        assert_ne!(x.update, y.update);
        // An expand made under the untagged names (an earlier sluice) keeps them.
        let old = trigger_names("a_b", "c", &["a_b_c_sluice_ins".to_string()]);
        assert_eq!(old.insert, "a_b_c_sluice_ins");
        assert_eq!(old.update, "a_b_c_sluice_upd");
    }

    #[test]
    fn without_indexes_the_contract_is_instant_and_no_default_compares_with_null() {
        let e = EngineKind::MariaDb;
        let mut f = facts(e);
        f.from = "c".into();
        f.to = "d".into();
        f.column = Some((None, String::new()));
        let p = phases(&stmt(e, "ALTER TABLE t RENAME COLUMN c TO d"), &f).unwrap();
        assert!(p.expand[0]
            .text()
            .contains("IF NEW.`d` IS NULL AND NOT (NEW.`c` IS NULL)"));
        // u_name_c and ix_c use c.
        assert!(p.complete[0].contains("DROP INDEX `u_name_c`, DROP INDEX `ix_c`, DROP COLUMN `c`, RENAME INDEX `u_name_c_sluice_renamed` TO `u_name_c`, RENAME INDEX `ix_c_sluice_renamed` TO `ix_c`, ALGORITHM=NOCOPY"), "{}", p.complete[0]);
        f.create = CREATE
            .replace("  KEY `ix_c` (`c`),\n", "")
            .replace("  UNIQUE KEY `u_name_c` (`name`(10),`c`),\n", "");
        let p = phases(&stmt(e, "ALTER TABLE t RENAME COLUMN c TO d"), &f).unwrap();
        assert!(
            p.complete[0].contains("DROP COLUMN `c`, ALGORITHM=INSTANT"),
            "{}",
            p.complete[0]
        );
        // After an interrupted contract (the old column gone): complete finishes, rollback refuses.
        f.column = None;
        f.has_to = true;
        let p = phases(&stmt(e, "ALTER TABLE t RENAME COLUMN c TO d"), &f).unwrap();
        assert!(p.expand.is_empty());
        assert!(!p.complete[0].contains("ALTER TABLE"));
        assert!(p.rollback[0].contains("SIGNAL SQLSTATE '45000'"));
    }

    #[test]
    fn refuses_what_the_triggers_cannot_keep_equal() {
        let e = EngineKind::MariaDb;
        let st = stmt(e, "ALTER TABLE t RENAME COLUMN name TO x");
        type Change = dyn Fn(&mut Facts);
        let cases: &[(&str, &Change, &str)] = &[
            ("galera", &|f| f.galera = true, "Galera"),
            (
                "old server",
                &|f| f.version = (10, 1, 48),
                "one trigger per table",
            ),
            (
                "generated",
                &|f| {
                    f.create = f.create.replace(
                        "NOT NULL DEFAULT 'anon' COMMENT 'who'",
                        "GENERATED ALWAYS AS (`c` + 1) VIRTUAL",
                    )
                },
                "generated column",
            ),
            (
                "computed from it",
                &|f| {
                    f.create = f.create.replace(
                        "  `c` int(11) DEFAULT NULL,",
                        "  `c` int(11) GENERATED ALWAYS AS (length(`name`)) VIRTUAL,",
                    )
                },
                "generated column c is computed from it",
            ),
            (
                "fk",
                &|f| f.foreign_keys.push("foreign key fk_x of table u".into()),
                "foreign key fk_x of table u uses it",
            ),
            (
                "no pk",
                &|f| f.create = f.create.replace("  PRIMARY KEY (`id`),\n", ""),
                "no primary key",
            ),
            (
                "pk",
                &|f| {
                    f.create = f
                        .create
                        .replace("PRIMARY KEY (`id`)", "PRIMARY KEY (`id`,`name`)")
                },
                "primary key",
            ),
            (
                "fulltext",
                &|f| {
                    f.create = f
                        .create
                        .replace("KEY `ix_c` (`c`)", "FULLTEXT KEY `ft` (`name`)")
                },
                "fulltext key ft",
            ),
            (
                "check",
                &|f| {
                    f.create = f.create.replace(
                        "  PRIMARY KEY",
                        "  CONSTRAINT `ck` CHECK (`name` <> ''),\n  PRIMARY KEY",
                    )
                },
                "check",
            ),
            (
                "volatile default",
                &|f| f.column = Some((Some("uuid()".into()), String::new())),
                "may differ",
            ),
            (
                "copy",
                &|f| f.add_algorithm = Some(crate::plan::Algorithm::Copy),
                "ALGORITHM=COPY",
            ),
            ("case only", &|f| f.to = "NAME".into(), "letter case"),
        ];
        for (what, change, want) in cases {
            let mut f = facts(e);
            change(&mut f);
            let got = phases(&st, &f)
                .err()
                .unwrap_or_else(|| panic!("{what}: not refused"));
            assert!(got.contains(want), "{what}: {got}");
        }
    }
}
