//! Splitting or merging columns in two phases on MariaDB (and MySQL 8): the same migration shape
//! and `-- sluice:old` directives as on PostgreSQL (see `split_merge`), carried by two triggers.
//!
//! Expand (`sluice up`), each step rerunnable:
//! 1. under `LOCK TABLES t WRITE` (bounded by lock_wait_timeout, retried; milliseconds): the ADD
//!    COLUMNs with the algorithm the online path predicts (INSTANT on 10.11), and the BEFORE
//!    INSERT and BEFORE UPDATE triggers that tell which version wrote and compute the other side.
//!    Under one lock no write lands between the columns and their triggers.
//! 2. the UPDATE as written as the paced backfill in primary-key batches, of the rows no write
//!    has carried yet (every added column still NULL), its WHERE kept.
//!
//! Which version wrote (the PostgreSQL rules): an UPDATE that changes an added column is the new
//! version's (the old one does not know them): the dropped columns are computed by the
//! `-- sluice:old` expressions. Else one that changes a dropped column or a column the UPDATE's
//! expressions or WHERE read is the old version's: the added columns are computed by the UPDATE's
//! expressions. An INSERT that gives any added column a value not NULL is the new version's, else
//! the old version's. Values are compared as bytes (`CAST(.. AS BINARY) <=>`): under a
//! case-insensitive collation a write that changes only letter case is still a change.
//!
//! sluice's own backfill batches are marked: the first assignment of the batch's SET list sets
//! the session variable `@sluice_backfill` to the trigger's name for each row, before the BEFORE
//! UPDATE trigger fires for that row; the trigger sees it, clears it and leaves the row as the
//! UPDATE as written leaves it (the dropped columns untouched). Cleared by every row it marks,
//! it never outlives the statement, also where a replica replays it statement by statement.
//!
//! Expressions run as written (never re-printed): the backfill is the UPDATE as written; the
//! triggers evaluate each one over the row as a derived table named like the table
//! (`(SELECT <e> FROM (SELECT NEW.a AS a, ...) AS t)`), so a correlated subquery's own columns
//! stay its own.
//!
//! Dropped columns: NOT NULL is not relaxed (`MODIFY .. NULL` copies the table on MariaDB
//! 10.11). One without a default gets one at expand, as for a plain DROP COLUMN: the server
//! checks it after the BEFORE INSERT trigger for INSERT ... VALUES, but before it for INSERT ...
//! SELECT, which would fail 1364 without ever reaching the trigger that sets it.
//!
//! Contract (`sluice complete`), under `LOCK TABLES t WRITE`: drop the dropped columns (the
//! algorithm the DROP COLUMN's own contract predicts; INSTANT or NOCOPY only, the lock is held
//! throughout), then the triggers, so an ALTER the server refuses changes nothing. Rollback:
//! under the lock, drop the added columns, then the triggers: the table is as before the
//! migration, the dropped columns hold both versions' writes.

use super::super::staged::{About, Lock, Step};
use super::super::{Blocks, Effect};
use super::rename_column_mysql::{entries, keys, read_ident};
use super::{Breaking, Phases};
use crate::analysis::ir::Stmt;
use crate::plan::Algorithm;
use crate::quote::mysql::{ident, literal};
use crate::target::EngineKind;
use sqlparser::ast::Expr;
use std::ops::ControlFlow;

/// What the live server says about the table (the DROP COLUMN's facts) and the added columns.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    pub drop: super::drop_column_mysql::Facts,
    /// The server version (major, minor, patch).
    pub server: (u32, u32, u32),
    /// The added columns that exist (a rerun, or a name taken).
    pub added_present: Vec<String>,
    /// The algorithm the online path predicts for the ADD COLUMNs; None: unknown (asked for as
    /// INSTANT, the server refuses when it cannot).
    pub add_algorithm: Option<Algorithm>,
    /// sluice's triggers on the table (by name) as the server lists them.
    pub triggers_present: Vec<String>,
}

/// The names the phases give their triggers (stable across runs: a rerun, `complete` and
/// `rollback` find them), from the table and the dropped columns.
pub struct Names {
    pub insert: String,
    pub update: String,
}

/// The sync triggers' names (see `plan::sync_trigger_names`). `present`: the table's triggers now.
pub fn names(table: &str, dropped: &[String], present: &[String]) -> Names {
    // Joined with NUL for the tag: (`a_b`, `c`) and (`a`, `b_c`) are different drops.
    let [insert, update] = crate::plan::sync_trigger_names(
        table,
        &dropped.join("\0"),
        ["sluice_smi", "sluice_smu"],
        present,
    );
    Names { insert, update }
}

/// The ADD COLUMNs as the online path predicts their algorithm (no ALGORITHM clause).
pub fn add_sql(table_sql: &str, added: &[(String, String)]) -> String {
    format!(
        "ALTER TABLE {table_sql} {}",
        added
            .iter()
            .map(|(c, ty)| format!("ADD COLUMN {} {ty}", ident(c)))
            .collect::<Vec<_>>()
            .join(", ")
    )
}

/// The columns of `table` that expression `e` (SQL text, used as written) reads, and whether
/// that list is exact. Exact: it parses and has no subquery, so every name it gives is one of
/// the row's columns (a name that is none is the caller's refusal). Otherwise (a subquery's own
/// columns, or a form the parser does not know: a backslash escape, `MOD`, `INTERVAL()`): the
/// names of `known` it mentions anywhere, a superset (the server resolves them; the precheck
/// evaluates the expression before anything is made).
pub fn reads(e: &str, table: &str, known: &[String]) -> (Vec<String>, bool) {
    let d = sqlparser::dialect::MySqlDialect {};
    let parsed = sqlparser::parser::Parser::new(&d)
        .try_with_sql(e)
        .and_then(|mut p| p.parse_expr());
    let mut cols: Vec<String> = Vec::new();
    let push = |n: &str, cols: &mut Vec<String>| {
        if !cols.iter().any(|c| c.eq_ignore_ascii_case(n)) {
            cols.push(n.to_string());
        }
    };
    if let Ok(x) = &parsed {
        // Any query inside (`(SELECT ..)`, `EXISTS`, `IN (SELECT ..)`), also a mere mention.
        let mut nested = e.to_uppercase().contains("SELECT");
        let mut names: Vec<String> = Vec::new();
        let _ = sqlparser::ast::visit_expressions(x, |x| {
            match x {
                Expr::Identifier(i) => names.push(i.value.clone()),
                Expr::CompoundIdentifier(parts)
                    if parts.len() == 2 && parts[0].value.eq_ignore_ascii_case(table) =>
                {
                    names.push(parts[1].value.clone())
                }
                // Another table's column (or a database's): not the row's.
                Expr::CompoundIdentifier(_) => nested = true,
                _ => {}
            }
            ControlFlow::<()>::Continue(())
        });
        if !nested {
            for n in &names {
                push(n, &mut cols);
            }
            return (cols, true);
        }
    }
    // Every mention of a known column as a word (or quoted), wherever it stands.
    let lower = e.to_lowercase();
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b >= 0x80;
    for k in known {
        let q = ident(k).to_lowercase();
        let kl = k.to_lowercase();
        let bare = lower.match_indices(&kl).any(|(i, _)| {
            let b = lower.as_bytes();
            (i == 0 || !word(b[i - 1])) && b.get(i + kl.len()).is_none_or(|&c| !word(c))
        });
        if bare || lower.contains(&q) {
            push(k, &mut cols);
        }
    }
    (cols, false)
}

/// `e` (SQL text) as written, evaluated on the trigger's row: over a derived table named like
/// the table that holds the row's columns (`row`), so that unqualified names and
/// `<table>.<column>` are the row's, and a correlated subquery's own columns stay its own.
fn on_row(e: &str, row: &str) -> String {
    format!("(SELECT ({e}) FROM {row})")
}

/// Byte-exact "differs": letter case and trailing spaces count (a case-insensitive, PAD SPACE
/// collation's `=` would call `'Ann'` and `'ann '` equal).
fn differs(c: &str) -> String {
    let q = ident(c);
    format!("NOT (CAST(NEW.{q} AS BINARY) <=> CAST(OLD.{q} AS BINARY))")
}

/// The phases of the split or merge `b` (its DROP COLUMN statement: `st`). Err: why it cannot
/// run in two phases (refused before anything runs; `--as-written` runs it in one).
pub fn phases(b: &Breaking, st: &Stmt, f: &Facts) -> Result<Phases, String> {
    let Breaking::SplitMerge {
        added,
        set,
        filter,
        dropped,
        reverse,
        ..
    } = b
    else {
        unreachable!("split_merge_mysql::phases of {b:?}")
    };
    let d = &f.drop;
    let mariadb = d.engine != Some(EngineKind::MySql);
    if let Some(why) = super::rename_column_mysql::not_text(&d.create) {
        return Err(why);
    }
    if d.galera {
        return Err("the server is a Galera node (wsrep_on=ON): the triggers' LOCK TABLES blocks the node's applier and stalls the cluster, and the backfill's batches would meet certification conflicts".into());
    }
    let several_triggers = if mariadb {
        f.server >= (10, 2, 3)
    } else {
        f.server >= (5, 7, 2)
    };
    if !several_triggers {
        return Err("the server allows one trigger per table and event before MariaDB 10.2.3 / MySQL 5.7.2, so sluice's triggers cannot stand beside the table's own".into());
    }
    let dropped_names: Vec<String> = dropped.iter().map(|(c, _)| c.clone()).collect();
    let n = names(&d.table, &dropped_names, &f.triggers_present);
    let t = &d.table_sql;
    let (ti, tu) = (ident(&n.insert), ident(&n.update));
    let drop_triggers = format!("DROP TRIGGER IF EXISTS {ti}; DROP TRIGGER IF EXISTS {tu}");
    let gone = d.columns.iter().filter(|c| c.live.is_none()).count();
    if d.expanded && gone == d.columns.len() {
        return Ok(contracted(f, &n));
    }
    if let Some(c) = d.columns.iter().find(|c| c.live.is_none()) {
        return Err(format!(
            "column {} of {} does not exist, so the UPDATE as written fails",
            c.name, d.table
        ));
    }
    let missing: Vec<&str> = dropped
        .iter()
        .map(|(c, _)| c.as_str())
        .filter(|c| !reverse.iter().any(|(r, _)| r.eq_ignore_ascii_case(c)))
        .collect();
    if !missing.is_empty() {
        return Err(super::split_merge::missing_reverse(b, &missing));
    }

    // The table's columns as SHOW CREATE TABLE prints them: (name, definition).
    let columns: Vec<(String, String)> = entries(&d.create)
        .into_iter()
        .filter_map(|e| read_ident(e).map(|(n, rest)| (n, rest.trim_start().to_string())))
        .collect();
    let is_added = |c: &str| added.iter().any(|(a, _)| a.eq_ignore_ascii_case(c));
    let is_dropped = |c: &str| dropped_names.iter().any(|a| a.eq_ignore_ascii_case(c));
    let mut blockers: Vec<String> = Vec::new();
    let all_keys = keys(&d.create);
    if !all_keys.iter().any(|k| k.kind == "PRIMARY KEY") {
        blockers.push(
            "the table has no primary key, which the backfill batches by (add one first)".into(),
        );
    }
    if let Some(ft) = all_keys.iter().find(|k| k.kind == "FULLTEXT KEY") {
        blockers.push(format!("the table has fulltext key {}, and the server adds a column to such a table only by a rebuild with LOCK=SHARED (writes wait for the whole rebuild)", ft.name));
    }
    for k in &all_keys {
        let on_dropped = k.parts.iter().any(|p| {
            read_ident(p.trim()).is_some_and(|(c, _)| is_dropped(&c))
                || (p.trim_start().starts_with('(')
                    && dropped_names
                        .iter()
                        .any(|c| super::rename_column_mysql::names(p, c)))
        });
        if on_dropped && k.kind != "KEY" {
            blockers.push(format!("{} {} is on a dropped column and would judge the values sluice computes for the new version's writes (the DROP COLUMN as written removes it): drop it first in a migration of its own", k.kind.to_lowercase(), k.name));
        }
    }
    // A dropped column's own CHECK (not a JSON column's implicit `json_valid`) judges the
    // values the trigger computes, as the table's checks on it do.
    for (c, def) in columns.iter().filter(|(c, _)| is_dropped(c)) {
        let json = format!("check (json_valid({}))", ident(c).to_lowercase());
        if def.to_uppercase().contains(" CHECK (") && !def.to_lowercase().contains(&json) {
            blockers.push(format!("column {c} has a CHECK of its own (`{def}`), which would judge the values sluice computes for the new version's writes (the DROP COLUMN as written removes it): drop the check first in a migration of its own"));
        }
    }
    for c in &d.columns {
        let Some(l) = &c.live else { continue };
        if l.extra.contains("generated") || l.extra.contains("auto_increment") {
            blockers.push(format!(
                "column {} is {}: its value cannot be written from the added columns",
                l.name,
                if l.extra.contains("generated") {
                    "generated"
                } else {
                    "the AUTO_INCREMENT column"
                }
            ));
        }
    }
    // The trigger's row as a derived table named like the table: every column (the added ones
    // too, also before a rerun's facts show them), so each expression runs as written on it.
    let mut row_cols: Vec<String> = columns.iter().map(|(c, _)| c.clone()).collect();
    for (c, _) in added {
        if !row_cols.iter().any(|r| r.eq_ignore_ascii_case(c)) {
            row_cols.push(c.clone());
        }
    }
    let row = format!(
        "(SELECT {}) AS {}",
        row_cols
            .iter()
            .map(|c| format!("NEW.{q} AS {q}", q = ident(c)))
            .collect::<Vec<_>>()
            .join(", "),
        ident(&d.table)
    );
    // The columns each expression reads must be the table's (a name taken for a column that is
    // none would fail every write once the triggers stand).
    let checked = |e: &str, may_name_added: bool| -> Result<(String, Vec<String>), String> {
        let (cols, exact) = reads(e, &d.table, &row_cols);
        for c in &cols {
            let def = columns.iter().find(|(n, _)| n.eq_ignore_ascii_case(c));
            match def {
                None if is_added(c) && (may_name_added || !exact) => {}
                None if is_added(c) => {
                    return Err(format!(
                        "the expression `{e}` names {c}, which is an added column (NULL until the UPDATE sets it)"
                    ))
                }
                None => {
                    return Err(format!(
                        "the expression `{e}` names {c}, which is not a column of {}",
                        d.table
                    ))
                }
                Some((_, def)) => {
                    let up = def.to_uppercase();
                    if up.contains(" AS (") || up.contains("GENERATED ALWAYS") {
                        return Err(format!("the expression `{e}` reads generated column {c}, which a BEFORE trigger sees before the server computes it"));
                    }
                    if up.contains("ON UPDATE") {
                        return Err(format!("the expression `{e}` reads {c}, which has ON UPDATE: the server sets it on every UPDATE that does not name it, so the triggers could not tell which version wrote"));
                    }
                }
            }
        }
        Ok((on_row(e, &row), cols))
    };
    let mut fwd = Vec::new();
    let mut read: Vec<String> = Vec::new();
    for (c, e) in set {
        let (text, cols) = checked(e, false)?;
        fwd.push(format!("NEW.{} = {text}", ident(c)));
        read.extend(cols.into_iter().filter(|c| !is_added(c)));
    }
    let fwd_reads: Vec<String> = read.clone();
    let mut rev = Vec::new();
    for (c, e) in reverse {
        let (text, _) =
            checked(e, true).map_err(|why| format!("`-- sluice:old {c} = {e}`: {why}"))?;
        rev.push(format!("NEW.{} = {text}", ident(c)));
    }
    let where_new = match filter {
        Some(w) => {
            let (text, cols) = checked(w, false)?;
            read.extend(cols.into_iter().filter(|c| !is_added(c)));
            Some(text)
        }
        None => None,
    };
    if !blockers.is_empty() {
        return Err(blockers.join("; "));
    }
    // The DROP COLUMN's own phases (its algorithm, refusals, and the default it gives a NOT NULL
    // column without one): measured on MariaDB 10.11, the server checks such a column after the
    // BEFORE INSERT trigger for INSERT ... VALUES/SET and LOAD DATA, but before it for INSERT ...
    // SELECT (1364 "doesn't have a default value" in strict mode, the trigger never runs). The
    // default (catalog only) lets the row reach the trigger, which sets the value.
    let dc = super::drop_column_mysql::phases(st, d)?;
    // The rollback's DROP of the added columns (no index on them) goes as a plain DROP COLUMN
    // on this table does: not INSTANT on a compressed table (measured on MariaDB 10.11: INSTANT
    // and NOCOPY fail 1845, "Try ALGORITHM=INPLACE"), also where the facts miss it.
    // (SHOW CREATE TABLE prints the table's options after the line `) ENGINE=...`)
    let table_options = d.create[d.create.rfind("\n)").unwrap_or(0)..].to_uppercase();
    if table_options.contains("ROW_FORMAT=COMPRESSED") || table_options.contains("KEY_BLOCK_SIZE=")
    {
        return Err("the table is ROW_FORMAT=COMPRESSED, where the server drops a column only by rebuilding the table (ALGORITHM=INPLACE; INSTANT and NOCOPY fail): the contract's DROP COLUMN and the rollback's DROP of the added columns would hold LOCK TABLES WRITE over the whole rebuild (run the migration with `sluice up --as-written`, or change the table's row format first)".into());
    }
    if matches!(d.drop_algorithm, Some(Algorithm::Inplace | Algorithm::Copy)) {
        return Err("dropping the columns rebuilds the table here (ALGORITHM=INPLACE or COPY), and the contract holds LOCK TABLES WRITE over it so that no write lands between the triggers and the columns: writes would wait for the whole rebuild".into());
    }
    let (add_clause, add_about) = match f.add_algorithm {
        None | Some(Algorithm::Instant) => ("ALGORITHM=INSTANT", "ALGORITHM=INSTANT"),
        Some(Algorithm::Nocopy | Algorithm::Inplace) => ("ALGORITHM=INPLACE, LOCK=NONE", "ALGORITHM=INPLACE, LOCK=NONE"),
        Some(other) => return Err(format!("adding the columns would need ALGORITHM={} on this table, which blocks writes for the whole copy", other.as_str())),
    };

    let set_new = format!("SET {};", fwd.join(", "));
    let set_old = format!("SET {};", rev.join(", "));
    let to_null = format!(
        "SET {};",
        added
            .iter()
            .map(|(c, _)| format!("NEW.{} = NULL", ident(c)))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let given = added
        .iter()
        .map(|(c, _)| format!("NEW.{} IS NOT NULL", ident(c)))
        .collect::<Vec<_>>()
        .join(" OR ");
    let mut old_side: Vec<String> = dropped_names.clone();
    for c in &read {
        if !old_side.iter().any(|o| o.eq_ignore_ascii_case(c)) {
            old_side.push(c.clone());
        }
    }
    let any_differs = |cols: &[String]| {
        cols.iter()
            .map(|c| differs(c))
            .collect::<Vec<_>>()
            .join(" OR ")
    };
    let added_names: Vec<String> = added.iter().map(|(c, _)| c.clone()).collect();
    let new_changed = any_differs(&added_names);
    let old_changed = any_differs(&old_side);
    // With a WHERE (the PostgreSQL rules): an old-version INSERT it does not match keeps NULL in
    // the added columns; an old-version UPDATE of a row it does not match sets them NULL when a
    // column the expressions read changed, else leaves them.
    let (forward_insert, forward_update) = match &where_new {
        None => (set_new.clone(), set_new.clone()),
        Some(w) => (
            format!("IF IFNULL(({w}), FALSE) THEN {set_new} END IF;"),
            format!(
                "IF IFNULL(({w}), FALSE) THEN {set_new} ELSEIF {} THEN {to_null} END IF;",
                if fwd_reads.is_empty() {
                    "FALSE".into()
                } else {
                    any_differs(&fwd_reads)
                }
            ),
        ),
    };
    let mark = literal(&n.update);
    let insert_body = format!("BEGIN IF {given} THEN {set_old} ELSE {forward_insert} END IF; END");
    let update_body = format!(
        "BEGIN IF @sluice_backfill <=> {mark} THEN SET @sluice_backfill = NULL; ELSEIF {new_changed} THEN {set_old} ELSEIF {old_changed} THEN {forward_update} END IF; END"
    );
    let create = |name: &str, event: &str, body: &str| {
        if mariadb {
            format!("CREATE OR REPLACE TRIGGER {name} BEFORE {event} ON {t} FOR EACH ROW {body}")
        } else {
            format!("DROP TRIGGER IF EXISTS {name}; CREATE TRIGGER {name} BEFORE {event} ON {t} FOR EACH ROW {body}")
        }
    };
    let present = |c: &str| f.added_present.iter().any(|p| p.eq_ignore_ascii_case(c));
    // MySQL has no ADD COLUMN IF NOT EXISTS: a rerun leaves out what the facts show is there.
    let adds: Vec<String> = added
        .iter()
        .filter(|(c, _)| mariadb || !present(c))
        .map(|(c, ty)| {
            format!(
                "ADD COLUMN {}{} {ty}",
                if mariadb { "IF NOT EXISTS " } else { "" },
                ident(c)
            )
        })
        .collect();
    let mut block = vec![format!("LOCK TABLES {t} WRITE")];
    if !adds.is_empty() {
        block.push(format!("ALTER TABLE {t} {}, {add_clause}", adds.join(", ")));
    }
    block.push(create(&ti, "INSERT", &insert_body));
    block.push(create(&tu, "UPDATE", &update_body));
    block.push("UNLOCK TABLES".into());

    // The backfill: the UPDATE's SET list, its first expression also marking the row as
    // sluice's for the trigger; only rows no write carried yet (every added column NULL) whose
    // expressions give something (else the UPDATE changes nothing there).
    let set_sql = set
        .iter()
        .enumerate()
        .map(|(i, (c, e))| {
            if i == 0 {
                format!(
                    "{} = CASE WHEN (@sluice_backfill := {mark}) IS NOT NULL THEN ({e}) END",
                    ident(c)
                )
            } else {
                format!("{} = ({e})", ident(c))
            }
        })
        .collect::<Vec<_>>()
        .join(", ");
    let untouched = format!(
        "{} AND NOT ({})",
        added
            .iter()
            .map(|(c, _)| format!("{} IS NULL", ident(c)))
            .collect::<Vec<_>>()
            .join(" AND "),
        set.iter()
            .map(|(_, e)| format!("({e}) IS NULL"))
            .collect::<Vec<_>>()
            .join(" AND ")
    );

    // The added names are free (the ADD COLUMN as written fails on a taken one) and every
    // expression works on the table, before anything is made (MariaDB asks the server; MySQL
    // decides from the facts).
    let mut precheck = Vec::new();
    let mut precheck_refusal = None;
    if let Some((c, _)) = added.iter().find(|(c, _)| present(c)) {
        if !mariadb {
            precheck_refusal = Some(format!("Duplicate column name '{c}'"));
        }
    }
    // The expressions evaluated on no row of the table with the added columns NULL: a
    // mistake (an unknown function, a wrong argument count) fails here (both engines: a plain
    // SELECT; each reverse expression, named in the message, MariaDB only: it needs a handler).
    let planned = format!(
        "(SELECT *, {} FROM {t} LIMIT 0) AS {}",
        added
            .iter()
            .map(|(c, _)| format!("NULL AS {}", ident(c)))
            .collect::<Vec<_>>()
            .join(", "),
        ident(&d.table)
    );
    let mut exprs: Vec<String> = set.iter().map(|(_, e)| format!("({e})")).collect();
    exprs.extend(filter.iter().map(|w| format!("({w})")));
    let forward_check = format!("SELECT {} FROM {planned}", exprs.join(", "));
    if !mariadb {
        precheck.push(forward_check.clone());
    }
    if mariadb {
        for (c, _) in added {
            precheck.push(format!(
                "BEGIN NOT ATOMIC IF EXISTS (SELECT 1 FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = {} AND TABLE_NAME = {} AND COLUMN_NAME = {}) THEN SIGNAL SQLSTATE '42S21' SET MESSAGE_TEXT = {}; END IF; END",
                schema_of(t),
                literal(&d.table),
                literal(c),
                literal(&format!("Duplicate column name '{c}'"))
            ));
        }
        // (after the names: with a name taken the planned row would hold it twice)
        precheck.push(forward_check);
        for (c, e) in reverse {
            precheck.push(format!(
                "BEGIN NOT ATOMIC DECLARE CONTINUE HANDLER FOR SQLEXCEPTION BEGIN GET DIAGNOSTICS CONDITION 1 @sluice_why = MESSAGE_TEXT; SET @sluice_why = CONCAT({}, @sluice_why); SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = @sluice_why; END; SELECT ({e}) INTO @sluice_probe FROM {planned}; END",
                literal(&format!("the expression `-- sluice:old {c} = {e}` does not work on {}: ", d.table))
            ));
        }
    }

    // The defaults first (their own statement: `sluice_meta` is not under LOCK TABLES).
    let mut expand = dc.expand.clone();
    let mut about = dc.expand_about.clone();
    let mut locks = dc.expand_locks.clone();
    expand.push(Step::Sql(block.join("; ")));
    about.push(About::new(
        "under LOCK TABLES WRITE (bounded by lock_wait_timeout, retried): the ADD COLUMNs as written, and the BEFORE INSERT and BEFORE UPDATE triggers that carry every write to the other side (a write of the dropped columns sets the added ones by the UPDATE's expressions, a write of the added ones sets the dropped ones by the `-- sluice:old` expressions)",
        Lock::AccessExclusive,
        Effect::Instant,
        Blocks::ReadsAndWrites,
    ));
    locks.push(format!("LOCK TABLES WRITE (milliseconds), {add_about}"));
    expand.push(Step::Backfill {
        table: t.clone(),
        set: set_sql,
        filter: Some(match filter {
            Some(w) => format!("({w}) AND {untouched}"),
            None => untouched,
        }),
        // Rows already carried are skipped by the filter: a rerun needs no checkpoint.
        as_update: true,
    });
    about.push(About::new(
        "the UPDATE as a backfill in primary-key batches (its WHERE kept), each one short autocommitted UPDATE; its rows are marked for the trigger, which leaves the dropped columns as they are",
        Lock::RowExclusive,
        Effect::Backfill,
        Blocks::Nothing,
    ));
    locks.push("row locks of one batch".into());

    // The contract: the triggers and the columns under one lock, so that no write lands between
    // (a new-version INSERT without the trigger fails on a NOT NULL dropped column).
    let drop_alter = dc
        .complete
        .iter()
        .find(|s| s.starts_with("ALTER TABLE"))
        .cloned()
        .unwrap_or_default();
    let forget: Vec<String> = dc
        .complete
        .iter()
        .filter(|s| !s.starts_with("ALTER TABLE"))
        .cloned()
        .collect();
    // The ALTER before the triggers' drops (the lock keeps writes out in between): an ALTER the
    // server refuses then changes nothing and the columns stay in step. A kill between the two
    // leaves triggers naming dropped columns until the rerun (`contracted`) drops them.
    let mut complete = format!("LOCK TABLES {t} WRITE; ");
    if !drop_alter.is_empty() {
        complete.push_str(&format!("{drop_alter}; "));
    }
    complete.push_str(&format!("{drop_triggers}; UNLOCK TABLES"));
    let mut complete = vec![complete];
    complete.extend(forget);

    let mut rollback = format!("LOCK TABLES {t} WRITE; ");
    let drops: Vec<String> = added
        .iter()
        .filter(|(c, _)| mariadb || present(c))
        .map(|(c, _)| {
            format!(
                "DROP COLUMN {}{}",
                if mariadb { "IF EXISTS " } else { "" },
                ident(c)
            )
        })
        .collect();
    if !drops.is_empty() {
        rollback.push_str(&format!(
            "ALTER TABLE {t} {}, {add_clause}; ",
            drops.join(", ")
        ));
    }
    rollback.push_str(&format!("{drop_triggers}; UNLOCK TABLES"));

    let news = added_names.join(", ");
    let olds = dropped_names.join(", ");
    let fwd_words = set
        .iter()
        .map(|(c, e)| format!("{c} = {e}"))
        .collect::<Vec<_>>()
        .join(", ");
    let rev_words = reverse
        .iter()
        .map(|(c, e)| format!("{c} = {e}"))
        .collect::<Vec<_>>()
        .join(", ");
    let table = &d.table;
    let sees = vec![
        (
            "before".into(),
            format!("the old version reads and writes {olds}; the new version, which reads and writes {news}, must not run yet"),
        ),
        (
            "expanded (after `sluice up`)".into(),
            format!("both versions run on every row: {news} and {olds} are all there. A write of {olds} (the old version) sets {news} by the UPDATE's expressions ({fwd_words}); a write of {news} (the new version) sets {olds} by the `-- sluice:old` expressions ({rev_words}); a write of both keeps {news} and recomputes {olds}. An INSERT that gives {news} a value not NULL is the new version's, else the old version's (a trigger cannot tell an explicit NULL from a column left out). The triggers are {} and {}", n.insert, n.update),
        ),
        (
            "completed (after `sluice complete`)".into(),
            format!("only the new version may run: {olds} and sluice's triggers are gone, {table} is what the three statements as written leave"),
        ),
        (
            "rolled back (after `sluice rollback`)".into(),
            format!("only the old version may run: {news} and the triggers are gone, the table is as before the migration; {olds} {} every write of both versions (the new version's through {rev_words})", if dropped_names.len() > 1 { "hold" } else { "holds" }),
        ),
    ];
    let old_version = reverse
        .iter()
        .map(|(c, e)| format!("while expanded (until `sluice complete`) the old version reads {table}.{c} as {e} in every row the new version writes (computed by sluice's trigger from {news}; nobody wrote that value); where the UPDATE's expressions ({fwd_words}) do not give back exactly what the new version wrote, the two versions read different things for that row until the old version writes it again"))
        .collect();

    // Expanded, yet an added column or a trigger is gone: a rollback cut off after its schema
    // change, before its record. The DROP would then lose the dropped columns' data, the only
    // copy left (the new version's writes went through the triggers into them).
    let complete_refusal = if d.expanded {
        let mut gone: Vec<String> = added_names
            .iter()
            .filter(|c| !present(c))
            .map(|c| format!("column {c}"))
            .collect();
        gone.extend(
            [&n.insert, &n.update]
                .into_iter()
                .filter(|t| !f.triggers_present.iter().any(|p| p == *t))
                .map(|t| format!("trigger {t}")),
        );
        (!gone.is_empty()).then(|| format!(
            "{} of the expand phase {} gone while the migration is still recorded expanded (a `sluice rollback` was cut off after its schema change): dropping {olds} now would lose the data only they hold; run `sluice rollback` again to finish the rollback, then `sluice up` to expand anew",
            gone.join(", "),
            if gone.len() > 1 { "are" } else { "is" }
        ))
    } else {
        None
    };
    Ok(Phases {
        precheck,
        precheck_refusal,
        expand,
        expand_about: about,
        expand_atomic: false,
        complete,
        rollback: std::iter::once(rollback).chain(dc.rollback).collect(),
        rollback_refusal: None,
        complete_refusal,
        complete_online: None,
        rollback_guard: vec![],
        guard: super::Guard::NotNull,
        rollback_prepare: vec![],
        rollback_undo: vec![],
        sees,
        complete_description: "`sluice complete`: under LOCK TABLES WRITE (milliseconds), drop sluice's triggers and run the DROP COLUMN (the table is then what the three statements as written leave)",
        rollback_description: "`sluice rollback` (before complete): under LOCK TABLES WRITE (milliseconds), drop sluice's triggers and the added columns; the dropped columns hold every write of both versions",
        expand_locks: locks,
        phase_lock: Some(format!("LOCK TABLES WRITE (milliseconds), {}", dc.phase_lock.unwrap_or_default())),
        rollback_lock: Some(format!("LOCK TABLES WRITE (milliseconds), {add_about}")),
        watch: None,
        old_version,
    })
}

/// The database part of a table as SQL, for information_schema: its literal, or DATABASE().
fn schema_of(table_sql: &str) -> String {
    match read_ident(table_sql) {
        Some((db, rest)) if rest.starts_with('.') => literal(&db),
        _ => "DATABASE()".into(),
    }
}

/// The phases once the contract's ALTER ran (a kill before its record): the dropped columns are
/// gone, so `complete` drops what is left of the triggers and records it; a rollback is refused.
fn contracted(f: &Facts, n: &Names) -> Phases {
    let d = &f.drop;
    let t = &d.table_sql;
    let (rollback, rollback_refusal) = super::refused_rollback(
        d.engine,
        "the dropped columns are gone already (an interrupted `sluice complete` dropped them): run `sluice complete` to finish",
    );
    Phases {
        precheck: vec![],
        precheck_refusal: None,
        expand: vec![],
        expand_about: vec![],
        expand_atomic: false,
        complete: vec![
            format!(
                "LOCK TABLES {t} WRITE; DROP TRIGGER IF EXISTS {}; DROP TRIGGER IF EXISTS {}; UNLOCK TABLES",
                ident(&n.insert),
                ident(&n.update)
            ),
            format!(
                "DELETE FROM `sluice_meta` WHERE `k` LIKE {}",
                literal(&format!("{}%", super::drop_column_mysql::meta_prefix(d.version)))
            ),
        ],
        rollback,
        rollback_refusal,
        complete_refusal: None,
        complete_online: None,
        rollback_guard: vec![],
        guard: super::Guard::NotNull,
        rollback_prepare: vec![],
        rollback_undo: vec![],
        sees: vec![],
        complete_description: "`sluice complete`: the dropped columns are gone already (an interrupted complete); drop what is left of the triggers and record it",
        rollback_description: "refused: the dropped columns are gone already",
        expand_locks: vec![],
        phase_lock: Some("LOCK TABLES WRITE (milliseconds)".into()),
        rollback_lock: None,
        watch: None,
        old_version: vec![],
    }
}

#[cfg(test)]
mod tests {
    use super::super::drop_column_mysql::{Column, Live};
    use super::*;

    fn stmts(engine: EngineKind, sql: &str) -> Vec<Stmt> {
        crate::sql::split(engine, sql)
            .unwrap()
            .iter()
            .enumerate()
            .map(|(i, s)| crate::analysis::ir::build(engine, i, s, 0, &s.sql))
            .collect()
    }

    const SPLIT: &str = "ALTER TABLE t ADD COLUMN first_name varchar(40), ADD COLUMN last_name varchar(40); UPDATE t SET first_name = SUBSTRING_INDEX(name, ' ', 1), last_name = SUBSTRING_INDEX(name, ' ', -1); ALTER TABLE t DROP COLUMN name";
    const CREATE: &str = "CREATE TABLE `t` (\n  `id` bigint(20) NOT NULL AUTO_INCREMENT,\n  `name` varchar(81) NOT NULL,\n  `note` int(11) DEFAULT NULL,\n  PRIMARY KEY (`id`)\n) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4";

    /// The split as found, with its reverse expression, and its DROP statement.
    fn split(engine: EngineKind, sql: &str, reverse: &[(&str, &str)]) -> (Breaking, Stmt) {
        let st = stmts(engine, sql);
        let mut b = super::super::split_merge::find(engine, &st).unwrap();
        if let Breaking::SplitMerge { reverse: r, .. } = &mut b {
            *r = reverse
                .iter()
                .map(|(c, e)| (c.to_string(), e.to_string()))
                .collect();
        }
        (b, st[2].clone())
    }

    fn facts(engine: EngineKind) -> Facts {
        Facts {
            drop: super::super::drop_column_mysql::Facts {
                engine: Some(engine),
                version: 2,
                table: "t".into(),
                table_sql: "`t`".into(),
                create: CREATE.into(),
                table_columns: 3,
                columns: vec![Column {
                    name: "name".into(),
                    live: Some(Live {
                        name: "name".into(),
                        default: None,
                        nullable: false,
                        data_type: "varchar".into(),
                        column_type: "varchar(81)".into(),
                        extra: String::new(),
                    }),
                    ..Default::default()
                }],
                ..Default::default()
            },
            server: if engine == EngineKind::MySql {
                (8, 0, 35)
            } else {
                (10, 11, 6)
            },
            added_present: vec![],
            add_algorithm: Some(Algorithm::Instant),
            triggers_present: vec![],
        }
    }

    const REV: &[(&str, &str)] = &[("name", "CONCAT(first_name, ' ', last_name)")];

    #[test]
    fn the_columns_an_expression_reads() {
        let known: Vec<String> = ["id", "first_name", "Last Name", "status", "name"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let v = |x: &[&str]| x.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        // (expression, the columns, exact)
        let cases: &[(&str, Vec<String>, bool)] = &[
            (
                "CONCAT(first_name, ' ', t.`Last Name`)",
                v(&["first_name", "Last Name"]),
                true,
            ),
            (
                "CONCAT(first_name, nosuch)",
                v(&["first_name", "nosuch"]),
                true,
            ),
            // A subquery's own columns are not the row's: every known name mentioned.
            (
                "(SELECT s.id FROM statuses s WHERE s.status = t.status)",
                v(&["id", "status"]),
                false,
            ),
            // Forms the parser does not know: the names mentioned.
            ("MOD(id, 3)", v(&["id"]), true),
            ("CONCAT('a\\'b', name)", v(&["name"]), true),
            ("CONCAT(`Last Name`, 'x')", v(&["Last Name"]), true),
            ("db.t.first_name", v(&["first_name"]), false),
        ];
        for (e, cols, exact) in cases {
            assert_eq!(reads(e, "t", &known), (cols.clone(), *exact), "{e}");
        }
    }

    #[test]
    fn mariadb_phases_add_trigger_backfill_then_drop() {
        let e = EngineKind::MariaDb;
        let (b, st) = split(e, SPLIT, REV);
        let p = phases(&b, &st, &facts(e)).unwrap();
        let sql: Vec<String> = p.expand.iter().map(Step::text).collect();
        assert_eq!(sql.len(), 3, "{sql:#?}");
        // The NOT NULL dropped column gets a default first (INSERT ... SELECT reaches the
        // trigger only so), noted in sluice_meta.
        assert_eq!(
            sql[0],
            "INSERT IGNORE INTO `sluice_meta` (`k`, `v`) VALUES ('drop 2 1efeb1471c854994', ''); ALTER TABLE `t` ALTER COLUMN `name` SET DEFAULT '', ALGORITHM=INSTANT"
        );
        // Each expression as written, over the row as a derived table named like the table.
        let row = "(SELECT NEW.`id` AS `id`, NEW.`name` AS `name`, NEW.`note` AS `note`, NEW.`first_name` AS `first_name`, NEW.`last_name` AS `last_name`) AS `t`";
        let on = |e: &str| format!("(SELECT ({e}) FROM {row})");
        assert_eq!(
            sql[1],
            format!("LOCK TABLES `t` WRITE; ALTER TABLE `t` ADD COLUMN IF NOT EXISTS `first_name` VARCHAR(40), ADD COLUMN IF NOT EXISTS `last_name` VARCHAR(40), ALGORITHM=INSTANT; \
CREATE OR REPLACE TRIGGER `t_name_5a68a959_sluice_smi` BEFORE INSERT ON `t` FOR EACH ROW BEGIN IF NEW.`first_name` IS NOT NULL OR NEW.`last_name` IS NOT NULL THEN SET NEW.`name` = {rev}; ELSE SET NEW.`first_name` = {f1}, NEW.`last_name` = {f2}; END IF; END; \
CREATE OR REPLACE TRIGGER `t_name_5a68a959_sluice_smu` BEFORE UPDATE ON `t` FOR EACH ROW BEGIN IF @sluice_backfill <=> 't_name_5a68a959_sluice_smu' THEN SET @sluice_backfill = NULL; ELSEIF NOT (CAST(NEW.`first_name` AS BINARY) <=> CAST(OLD.`first_name` AS BINARY)) OR NOT (CAST(NEW.`last_name` AS BINARY) <=> CAST(OLD.`last_name` AS BINARY)) THEN SET NEW.`name` = {rev}; ELSEIF NOT (CAST(NEW.`name` AS BINARY) <=> CAST(OLD.`name` AS BINARY)) THEN SET NEW.`first_name` = {f1}, NEW.`last_name` = {f2}; END IF; END; UNLOCK TABLES",
                rev = on("CONCAT(first_name, ' ', last_name)"),
                f1 = on("SUBSTRING_INDEX(name, ' ', 1)"),
                f2 = on("SUBSTRING_INDEX(name, ' ', -1)"),
            )
        );
        assert_eq!(
            p.expand[2],
            Step::Backfill {
                table: "`t`".into(),
                set: "`first_name` = CASE WHEN (@sluice_backfill := 't_name_5a68a959_sluice_smu') IS NOT NULL THEN (SUBSTRING_INDEX(name, ' ', 1)) END, `last_name` = (SUBSTRING_INDEX(name, ' ', -1))".into(),
                filter: Some("`first_name` IS NULL AND `last_name` IS NULL AND NOT ((SUBSTRING_INDEX(name, ' ', 1)) IS NULL AND (SUBSTRING_INDEX(name, ' ', -1)) IS NULL)".into()),
                as_update: true,
            }
        );
        assert_eq!(p.expand.len(), p.expand_about.len());
        assert_eq!(p.expand_locks.len(), p.expand.len());
        assert_eq!(
            p.complete[0],
            "LOCK TABLES `t` WRITE; ALTER TABLE `t` DROP COLUMN `name`, ALGORITHM=INSTANT; DROP TRIGGER IF EXISTS `t_name_5a68a959_sluice_smi`; DROP TRIGGER IF EXISTS `t_name_5a68a959_sluice_smu`; UNLOCK TABLES"
        );
        assert_eq!(
            p.rollback,
            vec![
                "LOCK TABLES `t` WRITE; ALTER TABLE `t` DROP COLUMN IF EXISTS `first_name`, DROP COLUMN IF EXISTS `last_name`, ALGORITHM=INSTANT; DROP TRIGGER IF EXISTS `t_name_5a68a959_sluice_smi`; DROP TRIGGER IF EXISTS `t_name_5a68a959_sluice_smu`; UNLOCK TABLES".to_string(),
                "ALTER TABLE `t` ALTER COLUMN `name` DROP DEFAULT, ALGORITHM=INSTANT".to_string(),
                "DELETE FROM `sluice_meta` WHERE `k` LIKE 'drop 2 %'".to_string(),
            ]
        );
        // Names free, the forward expressions and each reverse one checked on the server.
        assert_eq!(p.precheck.len(), 4, "{:#?}", p.precheck);
        assert!(p.precheck[2].starts_with("SELECT (SUBSTRING_INDEX(name, ' ', 1)), (SUBSTRING_INDEX(name, ' ', -1)) FROM (SELECT *, NULL AS `first_name`, NULL AS `last_name` FROM `t` LIMIT 0) AS `t`"), "{}", p.precheck[2]);
        assert!(
            p.precheck[3].contains("'the expression `-- sluice:old name = CONCAT(first_name, '' '', last_name)` does not work on t: '"),
            "{}",
            p.precheck[3]
        );
        assert_eq!(p.sees.len(), 4);
        assert_eq!(p.old_version.len(), 1);
    }

    #[test]
    fn a_where_is_kept_and_read_columns_count_as_the_old_side() {
        let e = EngineKind::MariaDb;
        let sql = "ALTER TABLE t ADD COLUMN total int; UPDATE t SET total = price * note WHERE note > 0; ALTER TABLE t DROP COLUMN price";
        let mut f = facts(e);
        f.drop.create = CREATE.replace("`name` varchar(81) NOT NULL", "`price` int(11) NOT NULL");
        f.drop.columns[0].name = "price".into();
        if let Some(l) = f.drop.columns[0].live.as_mut() {
            l.name = "price".into();
        }
        let (b, st) = split(e, sql, &[("price", "total")]);
        let p = phases(&b, &st, &f).unwrap();
        let t = p.expand[1].text();
        let row = "(SELECT NEW.`id` AS `id`, NEW.`price` AS `price`, NEW.`note` AS `note`, NEW.`total` AS `total`) AS `t`";
        let (w, x) = (
            format!("(SELECT (note > 0) FROM {row})"),
            format!("(SELECT (price * note) FROM {row})"),
        );
        assert!(
            t.contains(&format!(
                "ELSE IF IFNULL(({w}), FALSE) THEN SET NEW.`total` = {x}; END IF; END IF; END"
            )),
            "{t}"
        );
        assert!(t.contains(&format!("ELSEIF NOT (CAST(NEW.`price` AS BINARY) <=> CAST(OLD.`price` AS BINARY)) OR NOT (CAST(NEW.`note` AS BINARY) <=> CAST(OLD.`note` AS BINARY)) THEN IF IFNULL(({w}), FALSE) THEN SET NEW.`total` = {x}; ELSEIF NOT (CAST(NEW.`price` AS BINARY) <=> CAST(OLD.`price` AS BINARY)) OR NOT (CAST(NEW.`note` AS BINARY) <=> CAST(OLD.`note` AS BINARY)) THEN SET NEW.`total` = NULL; END IF; END IF; END")), "{t}");
        let Step::Backfill { filter, .. } = &p.expand[2] else {
            panic!()
        };
        assert_eq!(
            filter.as_deref(),
            Some("(note > 0) AND `total` IS NULL AND NOT ((price * note) IS NULL)")
        );
    }

    #[test]
    fn mysql_uses_its_own_forms() {
        let e = EngineKind::MySql;
        let (b, st) = split(e, SPLIT, REV);
        let p = phases(&b, &st, &facts(e)).unwrap();
        let t = p.expand[1].text();
        assert!(t.contains("ALTER TABLE `t` ADD COLUMN `first_name` VARCHAR(40), ADD COLUMN `last_name` VARCHAR(40), ALGORITHM=INSTANT"), "{t}");
        assert!(t.contains("DROP TRIGGER IF EXISTS `t_name_5a68a959_sluice_smi`; CREATE TRIGGER `t_name_5a68a959_sluice_smi` BEFORE INSERT"), "{t}");
        assert!(t.contains("DROP TRIGGER IF EXISTS `t_name_5a68a959_sluice_smu`; CREATE TRIGGER `t_name_5a68a959_sluice_smu` BEFORE UPDATE"), "{t}");
        assert_eq!(p.precheck.len(), 1, "{:#?}", p.precheck);
        assert!(p.precheck[0].starts_with("SELECT (SUBSTRING_INDEX(name, ' ', 1))"));
        assert_eq!(p.precheck_refusal, None);
        // MySQL's rollback drops only the added columns the facts show (none yet).
        assert!(!p.rollback[0].contains("ALTER TABLE"), "{}", p.rollback[0]);
        // A rerun with one added column there: only the other is added, and the first attempt
        // is refused as the ADD COLUMN as written would be.
        let mut f = facts(e);
        f.added_present = vec!["first_name".into()];
        let p = phases(&b, &st, &f).unwrap();
        let t = p.expand[1].text();
        assert!(
            t.contains("ALTER TABLE `t` ADD COLUMN `last_name` VARCHAR(40), ALGORITHM=INSTANT"),
            "{t}"
        );
        assert_eq!(
            p.precheck_refusal.as_deref(),
            Some("Duplicate column name 'first_name'")
        );
        assert!(
            p.rollback[0].contains("ALTER TABLE `t` DROP COLUMN `first_name`, ALGORITHM=INSTANT"),
            "{}",
            p.rollback[0]
        );
    }

    #[test]
    fn after_an_interrupted_complete_only_complete_finishes() {
        for e in [EngineKind::MariaDb, EngineKind::MySql] {
            let (b, st) = split(e, SPLIT, REV);
            let mut f = facts(e);
            f.drop.expanded = true;
            f.drop.columns[0].live = None;
            let p = phases(&b, &st, &f).unwrap();
            assert!(p.expand.is_empty());
            assert!(p.complete[0].contains("DROP TRIGGER IF EXISTS `t_name_5a68a959_sluice_smu`"));
            assert!(!p.complete[0].contains("ALTER TABLE"));
            match e {
                EngineKind::MySql => assert!(p.rollback_refusal.unwrap().contains("gone already")),
                _ => assert!(p.rollback[0].contains("SIGNAL SQLSTATE '45000'")),
            }
        }
    }

    #[test]
    fn refuses_what_the_triggers_cannot_carry() {
        type Change = dyn Fn(&mut Facts);
        type Reverse<'a> = &'a [(&'a str, &'a str)];
        let cases: &[(&str, Reverse, &Change, &str)] = &[
            (
                "no reverse",
                &[],
                &|_| {},
                "`-- sluice:old name = <expression of first_name, last_name>`",
            ),
            ("galera", REV, &|f| f.drop.galera = true, "Galera"),
            (
                "old server",
                REV,
                &|f| f.server = (5, 7, 1),
                "one trigger per table",
            ),
            (
                "no pk",
                REV,
                &|f| f.drop.create = f.drop.create.replace(",\n  PRIMARY KEY (`id`)", ""),
                "no primary key",
            ),
            (
                "unique",
                REV,
                &|f| {
                    f.drop.create = f.drop.create.replace(
                        "PRIMARY KEY (`id`)",
                        "PRIMARY KEY (`id`),\n  UNIQUE KEY `u` (`name`)",
                    )
                },
                "unique key u is on a dropped column",
            ),
            (
                "fulltext",
                REV,
                &|f| {
                    f.drop.create = f.drop.create.replace(
                        "PRIMARY KEY (`id`)",
                        "PRIMARY KEY (`id`),\n  FULLTEXT KEY `ft` (`note`)",
                    )
                },
                "fulltext key ft",
            ),
            (
                "generated",
                REV,
                &|f| {
                    if let Some(l) = f.drop.columns[0].live.as_mut() {
                        l.extra = "virtual generated".into()
                    }
                },
                "column name is generated",
            ),
            (
                "not a column",
                &[("name", "CONCAT(first_name, nosuch)")],
                &|_| {},
                "names nosuch, which is not a column of t",
            ),
            (
                "copy",
                REV,
                &|f| f.add_algorithm = Some(Algorithm::Copy),
                "ALGORITHM=COPY",
            ),
            (
                "rebuild",
                REV,
                &|f| f.drop.drop_algorithm = Some(Algorithm::Inplace),
                "rebuilds the table",
            ),
            (
                "missing",
                REV,
                &|f| f.drop.columns[0].live = None,
                "column name of t does not exist",
            ),
            (
                "system-versioned",
                REV,
                &|f| f.drop.create.push_str(" WITH SYSTEM VERSIONING"),
                "system-versioned",
            ),
        ];
        for (what, rev, change, want) in cases {
            let plan = |e: EngineKind| {
                let (b, st) = split(e, SPLIT, rev);
                let mut f = facts(e);
                change(&mut f);
                phases(&b, &st, &f)
            };
            let (m, y) = (plan(EngineKind::MariaDb), plan(EngineKind::MySql));
            let got = m
                .as_ref()
                .err()
                .unwrap_or_else(|| panic!("{what}: not refused"));
            assert!(got.contains(want), "{what}: {got}");
            assert_eq!(m.err(), y.err(), "{what}: refused differently on MySQL");
        }
    }
}
