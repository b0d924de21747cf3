//! `UPDATE t SET c = <expr> WHERE c IS NULL; ALTER TABLE t MODIFY c <its definition> NOT NULL`
//! in two phases on MariaDB: NOT NULL on a column the application version still running does not
//! write. As written every INSERT of the old version that leaves `c` out fails from the MODIFY on
//! (1364 / 1048, strict mode); in two phases the old version keeps working until complete.
//!
//! Unlike PostgreSQL, NOT NULL cannot stand while the old version runs: measured on MariaDB
//! 10.11, a BEFORE INSERT trigger that sets `NEW.c` lets `INSERT ... VALUES` leave a NOT NULL
//! column without default out, but `INSERT ... SELECT` fails 1364 before any trigger runs. So:
//!
//! Expand (`sluice up`): sluice-named BEFORE INSERT and BEFORE UPDATE triggers that give `c` the
//! value the UPDATE would give (`<expr>` as written, evaluated on the written row) whenever a
//! write leaves it NULL, each ordered after the table's own BEFORE triggers of its event
//! (FOLLOWS), so nothing they do comes after the fill; then the UPDATE as the paced backfill in
//! primary-key batches of the rows still NULL (a rerun skips the filled ones). The column stays
//! NULL-able.
//!
//! Contract (`sluice complete`): the MODIFY as written through the engine's online path (in place,
//! writes continue), then drop the triggers: the table is what the two statements as written
//! leave. Rollback: drop the triggers; the values filled stay (nothing tells them from values
//! written on purpose), `SHOW CREATE TABLE` is as before.
//!
//! The pattern's MODIFY must change nothing but the nullability of the live column (type,
//! charset, collation, default, comment, position): the lifecycle tries it on empty copies of
//! the table ([`probe_sql`]) and compares; anything else runs as written, as before.

use super::super::staged::{About, Lock, Step};
use super::super::{Blocks, Effect};
use super::rename_column_mysql::{entries, read_ident};
use super::{Breaking, Phases};
use crate::analysis::ir::{fold_ident, qname, Action, Stmt};
use crate::quote::mysql::{ident, literal};
use crate::target::EngineKind;

/// The fill-and-MODIFY pattern, exactly: `UPDATE t SET c = <expr> WHERE c IS NULL` (one SET
/// target, no alias, JOIN, ORDER BY, LIMIT; every clause kept by the parser) and `ALTER TABLE t
/// MODIFY [COLUMN] c <type> ... NOT NULL ...` (or `CHANGE [COLUMN] c c ...`), one operation, on
/// the same table and column. Anything else: None (it runs as before).
pub fn find(stmts: &[Stmt]) -> Option<Breaking> {
    use sqlparser::ast::{AlterTableOperation, AssignmentTarget, ColumnOption, Expr, Statement};
    let engine = EngineKind::MariaDb;
    let [up, alter] = stmts else { return None };
    let Some(Statement::AlterTable(at)) = alter.ast.as_deref() else {
        return None;
    };
    if !super::super::staged::plain_alter(at)
        || !super::super::staged::faithful_in(engine, &alter.sql, alter.ast.as_deref()?)
    {
        return None;
    }
    let [op] = at.operations.as_slice() else {
        return None;
    };
    let (name, options) = match op {
        AlterTableOperation::ModifyColumn {
            col_name, options, ..
        } => (col_name, options),
        AlterTableOperation::ChangeColumn {
            old_name,
            new_name,
            options,
            ..
        } if old_name.value.eq_ignore_ascii_case(&new_name.value) => (old_name, options),
        _ => return None,
    };
    if !options.iter().any(|o| matches!(o, ColumnOption::NotNull)) {
        return None;
    }
    let table = qname(engine, &at.name);
    let column = fold_ident(engine, name);
    // Whatever the IR makes of the MODIFY, it is one statement on this table.
    if alter.actions().iter().any(|a| match a {
        Action::SetNotNull { table: t, .. } => !t.matches(&table),
        _ => false,
    }) {
        return None;
    }
    let u = super::plain_update(engine, up)?;
    if !qname(engine, super::update_table(u)?).matches(&table) {
        return None;
    }
    let [a] = u.assignments.as_slice() else {
        return None;
    };
    let AssignmentTarget::ColumnName(target) = &a.target else {
        return None;
    };
    let [part] = target.0.as_slice() else {
        return None;
    };
    if !fold_ident(engine, part.as_ident()?).eq_ignore_ascii_case(&column) {
        return None;
    }
    // `WHERE c IS NULL`, possibly in parentheses.
    let mut w = u.selection.as_ref()?;
    while let Expr::Nested(inner) = w {
        w = inner;
    }
    let Expr::IsNull(subject) = w else {
        return None;
    };
    let mut subject = subject.as_ref();
    while let Expr::Nested(inner) = subject {
        subject = inner;
    }
    match subject {
        Expr::Identifier(i) if fold_ident(engine, i).eq_ignore_ascii_case(&column) => {}
        _ => return None,
    }
    // A column named with its database (`app.t.c`) would not resolve against the trigger's row,
    // named by the table alone.
    let schema_qualified = sqlparser::ast::visit_expressions(&a.value, |e| match e {
        Expr::CompoundIdentifier(parts) if parts.len() > 2 => std::ops::ControlFlow::Break(()),
        _ => std::ops::ControlFlow::Continue(()),
    });
    if schema_qualified.is_break() {
        return None;
    }
    // The expression as written (the parser's printing changes some MariaDB forms).
    let (texts, _) = super::split_merge::as_written_set(&up.sql)?;
    let [expr] = texts.as_slice() else {
        return None;
    };
    if expr.eq_ignore_ascii_case("default") || expr.eq_ignore_ascii_case("null") {
        return None;
    }
    Some(Breaking::FillNotNull {
        table,
        column,
        expr: expr.clone(),
    })
}

/// A part that looks like the pattern (`UPDATE ... IS NULL` then `ALTER TABLE ... MODIFY|CHANGE
/// ... NOT NULL`) but that sluice's parser cannot read exactly: whether it is the pattern cannot
/// be told, and running it as written would break the old version, so it is refused with the
/// fix (the statement, for the message). None: not such a part.
pub fn unreadable(stmts: &[Stmt]) -> Option<String> {
    let [up, alter] = stmts else { return None };
    let words = |sql: &str| {
        sql.split_whitespace()
            .map(str::to_uppercase)
            .collect::<Vec<_>>()
    };
    let (u, a) = (words(&up.sql), words(&alter.sql));
    let looks = u.first().is_some_and(|w| w == "UPDATE")
        && up.sql.to_uppercase().contains(" IS NULL")
        && a.len() > 2
        && a[0] == "ALTER"
        && a[1] == "TABLE"
        && a.iter().any(|w| w == "MODIFY" || w == "CHANGE")
        && alter.sql.to_uppercase().contains("NOT NULL");
    if !looks {
        return None;
    }
    let read = |st: &Stmt| {
        st.ast
            .as_deref()
            .is_some_and(|ast| super::super::staged::faithful_in(EngineKind::MariaDb, &st.sql, ast))
    };
    [up, alter]
        .into_iter()
        .find(|st| !read(st))
        .map(|st| st.sql.trim().to_string())
}

/// The ALTER's operation as written (`MODIFY ...` / `CHANGE ...`), to run on the probe tables:
/// the text from the first MODIFY or CHANGE word outside quotes. None: not found.
pub fn operation_text(alter_sql: &str) -> Option<&str> {
    let b = alter_sql.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            q @ (b'`' | b'\'' | b'"') => {
                i += 1;
                while i < b.len() && b[i] != q {
                    if b[i] == b'\\' && q != b'`' {
                        i += 1;
                    }
                    i += 1;
                }
            }
            c if c.is_ascii_alphabetic() && (i == 0 || !is_word(b[i - 1])) => {
                let end = (i..b.len()).find(|&k| !is_word(b[k])).unwrap_or(b.len());
                let w = &alter_sql[i..end];
                if w.eq_ignore_ascii_case("MODIFY") || w.eq_ignore_ascii_case("CHANGE") {
                    return Some(alter_sql[i..].trim_end().trim_end_matches(';').trim_end());
                }
                i = end;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    None
}

fn is_word(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'$' || c >= 0x80
}

/// The contract's MODIFY of an expanded fill, from the column as it is now: its live definition
/// made NOT NULL (its `DEFAULT NULL` dropped, `NOT NULL` before the default or comment). The expand
/// checked that the file's MODIFY changes nothing but that, so this is the same statement when
/// nothing changed since, and keeps what a later migration changed (a default, a comment) instead
/// of restating the file's older definition. None: the definition cannot be read.
pub fn live_modify(table_sql: &str, create: &str, column: &str) -> Option<String> {
    let def = super::rename_column_mysql::definition(create, column)?;
    let mut def = def.trim().replace(" DEFAULT NULL", "");
    if def.ends_with(" NULL") && !def.ends_with(" NOT NULL") {
        def.truncate(def.len() - " NULL".len());
    }
    def = def.replacen(" NULL DEFAULT ", " DEFAULT ", 1);
    if !def.contains(" NOT NULL") {
        let at = [" DEFAULT ", " ON UPDATE ", " COMMENT "]
            .iter()
            .filter_map(|k| def.find(k))
            .min()
            .unwrap_or(def.len());
        def.insert_str(at, " NOT NULL");
    }
    Some(format!(
        "ALTER TABLE {table_sql} MODIFY {} {def}",
        ident(column)
    ))
}

/// The two empty copies of the table the probe compares (`LIKE` copies columns, keys and
/// options, no rows, triggers or foreign keys), the second with the operation applied: `[drop
/// both, create both, alter the second]`; [`only_nullability`] compares their `SHOW CREATE
/// TABLE`s. Plain tables beside the table (`schema`: its database as SQL, when the statement names
/// one), as the online path's twin: a temporary one would need CREATE TEMPORARY TABLES, which the
/// documented grants do not hold.
pub fn probe_sql(
    table_sql: &str,
    schema: Option<&str>,
    operation: &str,
    token: &str,
) -> Vec<String> {
    let (a, b) = probe_names(schema, token);
    vec![
        format!("DROP TABLE IF EXISTS {a}, {b}"),
        format!("CREATE TABLE {a} LIKE {table_sql}"),
        format!("CREATE TABLE {b} LIKE {table_sql}"),
        format!("ALTER TABLE {b} {operation}"),
    ]
}

/// The probe tables as SQL (before, after). `token` is one run's own (see [`probe_token`]): a
/// `plan` beside an `up` (plan takes no run lock) must not drop or alter the other's copies.
pub fn probe_names(schema: Option<&str>, token: &str) -> (String, String) {
    let q = |n: &str| match schema {
        Some(s) => format!("{}.{}", ident(s), ident(n)),
        None => ident(n),
    };
    (
        q(&format!("{PROBE_PREFIX}{token}_b")),
        q(&format!("{PROBE_PREFIX}{token}_a")),
    )
}

/// The probe tables' names begin so: `sluice_` is sluice's own prefix, left out of every schema
/// snapshot and drift report (a copy a killed run left behind is no drift).
pub const PROBE_PREFIX: &str = "sluice_fill_probe_";

/// A token no other process uses at the same time: the process id and the clock's nanoseconds.
pub fn probe_token() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{}_{nanos:08x}", std::process::id())
}

/// Whether `after` (SHOW CREATE TABLE of the copy the MODIFY ran on) differs from `before` (of
/// the untouched copy) in nothing but column `column` being NOT NULL (and a `DEFAULT NULL` gone
/// with it). Also true when `before` has it NOT NULL already (the MODIFY changes nothing).
pub fn only_nullability(before: &str, after: &str, column: &str) -> bool {
    let body = |create: &str| -> Vec<String> {
        entries(create)
            .into_iter()
            .map(|e| e.trim().to_string())
            .collect()
    };
    let (b, a) = (body(before), body(after));
    // The table options line (`) ENGINE=...`) too.
    let tail = |create: &str| create.rsplit('\n').next().unwrap_or("").to_string();
    if b.len() != a.len() || tail(before) != tail(after) {
        return false;
    }
    // The definition with its nullability left out: NOT NULL, an explicit NULL, DEFAULT NULL
    // (before any COMMENT, whose text may say anything).
    let strip = |def: &str| -> String {
        let (head, comment) = match def.find(" COMMENT '") {
            Some(k) => def.split_at(k),
            None => (def, ""),
        };
        let mut h = format!("{head} ");
        for word in [" NOT NULL ", " DEFAULT NULL ", " NULL "] {
            if let Some(k) = h.find(word) {
                h.replace_range(k..k + word.len(), " ");
            }
        }
        format!("{}{comment}", h.trim_end())
    };
    let mut seen = false;
    for (x, y) in b.iter().zip(&a) {
        let named = |e: &str| read_ident(e).is_some_and(|(n, _)| n.eq_ignore_ascii_case(column));
        if named(x) && named(y) {
            seen = true;
            let not_null = |e: &str| {
                let (head, _) = e.split_at(e.find(" COMMENT '").unwrap_or(e.len()));
                head.contains(" NOT NULL")
            };
            if !not_null(y) || strip(x) != strip(y) {
                return false;
            }
        } else if x != y {
            return false;
        }
    }
    seen
}

/// The SQL that lists the table's triggers: name, event, timing, in firing order.
pub fn triggers_sql(schema: Option<&str>, table: &str) -> String {
    format!(
        "SELECT TRIGGER_NAME, EVENT_MANIPULATION, ACTION_TIMING FROM information_schema.TRIGGERS WHERE EVENT_OBJECT_SCHEMA = {} AND EVENT_OBJECT_TABLE = {} ORDER BY EVENT_MANIPULATION, ACTION_TIMING, ACTION_ORDER",
        schema.map(literal).unwrap_or_else(|| "DATABASE()".into()),
        literal(table)
    )
}

/// One trigger of the table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Trigger {
    pub name: String,
    /// INSERT, UPDATE or DELETE.
    pub event: String,
    /// BEFORE or AFTER.
    pub timing: String,
}

/// What the live server says about the table and the column.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    /// The table (`create`, `table`, `table_sql`, `galera`, `expanded`) and the column
    /// (`columns[0].live`), as the DROP COLUMN reads them.
    pub table: super::drop_column_mysql::Facts,
    /// The server version (major, minor, patch).
    pub server: (u32, u32, u32),
    /// The table's triggers in firing order per event and timing.
    pub triggers: Vec<Trigger>,
    /// The algorithm and lock level the online path predicts for the MODIFY on the live table;
    /// None: unknown.
    pub modify_impact: Option<(
        Option<crate::plan::Algorithm>,
        Option<crate::plan::LockLevel>,
    )>,
}

/// The names the phases give their triggers (stable across runs: a rerun, `complete` and
/// `rollback` find them).
pub struct Names {
    pub insert: String,
    pub update: String,
}

pub fn names(table: &str, column: &str) -> Names {
    // No earlier sluice made these: never the untagged names.
    let [insert, update] =
        crate::plan::sync_trigger_names(table, column, ["sluice_fni", "sluice_fnu"], &[]);
    Names { insert, update }
}

/// The phases of filling `column` with `expr` and running `modify` (the ALTER as written) once
/// the new version runs. Err: why it cannot run in two phases (refused before anything runs;
/// `--as-written` runs it in one).
pub fn phases(f: &Facts, column: &str, expr: &str, modify: &str) -> Result<Phases, String> {
    let d = &f.table;
    let Some(live) = d.columns.first().and_then(|c| c.live.as_ref()) else {
        return Err(format!(
            "column {column} of {} does not exist, so the UPDATE as written fails",
            d.table
        ));
    };
    let n = names(&d.table, &live.name);
    let t = &d.table_sql;
    let (ti, tu) = (ident(&n.insert), ident(&n.update));
    let drop_triggers = vec![
        format!("DROP TRIGGER IF EXISTS {ti}"),
        format!("DROP TRIGGER IF EXISTS {tu}"),
    ];
    let c = ident(&live.name);
    let col = &live.name;
    let table = &d.table;
    // Expanded and the column NOT NULL already: a complete cut off after its MODIFY. Only
    // complete finishes it (the triggers go); a rollback would leave the column NOT NULL, which
    // is no longer what the old version needs.
    if d.expanded && !live.nullable {
        let why = format!("the contract phase's MODIFY ran already ({table}.{col} is NOT NULL: a `sluice complete` was cut off before its record), so the old version's INSERTs that leave {col} out fail already; run `sluice complete` to finish");
        let (rollback, rollback_refusal) = super::refused_rollback(d.engine, &why);
        return Ok(Phases {
            precheck: vec![],
            precheck_refusal: None,
            expand: vec![],
            expand_about: vec![],
            expand_atomic: false,
            complete: drop_triggers,
            rollback,
            rollback_refusal,
            complete_refusal: None,
            complete_online: None,
            rollback_guard: vec![],
            guard: super::Guard::NotNull,
            rollback_prepare: vec![],
            rollback_undo: vec![],
            sees: vec![],
            complete_description: "`sluice complete`: the MODIFY ran already (an interrupted complete); drop what is left of the fill triggers and record it",
            rollback_description: "refused: the contract's MODIFY ran already (an interrupted complete); `sluice complete` finishes it",
            expand_locks: vec![],
            phase_lock: Some("metadata lock (milliseconds)".into()),
            rollback_lock: None,
            watch: None,
            old_version: vec![],
        });
    }
    if d.galera {
        return Err("the server is a Galera node (wsrep_on=ON): the backfill's batches would meet certification conflicts with the application's writes".into());
    }
    if f.server < (10, 2, 3) {
        return Err("the server allows one trigger per table and event before MariaDB 10.2.3, so sluice's fill triggers cannot stand beside the table's own".into());
    }
    if live.extra.contains("generated") {
        return Err(format!(
            "column {col} is generated: an UPDATE cannot set it"
        ));
    }
    // The contract's MODIFY must run in place with writes going on: a copy would hold the table
    // (ALGORITHM=COPY blocks writes) or need the online path's shadow copy, which does not run on
    // a table with triggers (the fill triggers stand until the MODIFY is done).
    if let Some((algorithm, lock)) = f.modify_impact {
        use crate::plan::{Algorithm, LockLevel};
        if algorithm == Some(Algorithm::Copy)
            || matches!(lock, Some(LockLevel::Shared | LockLevel::Exclusive))
        {
            let how = match (algorithm, lock) {
                (Some(Algorithm::Copy), _) | (_, None) => {
                    format!("ALGORITHM={}", algorithm.map_or("COPY", |a| a.as_str()))
                }
                (_, Some(l)) => format!("LOCK={}", l.as_str()),
            };
            return Err(format!("the MODIFY cannot run in place with writes going on here (the server would run it with {how}), so the contract could not keep both versions' writes flowing while it runs: run the migration with `sluice up --as-written` in a quiet moment, or change the table first (e.g. its row format) so that NOT NULL is set in place"));
        }
    }
    let create_up = d.create.to_uppercase();
    if create_up.contains("WITH SYSTEM VERSIONING") {
        return Err("the table is system-versioned: the backfill's batches would each add history rows that the UPDATE as written adds in one statement".into());
    }
    if !super::rename_column_mysql::keys(&d.create)
        .iter()
        .any(|k| k.kind == "PRIMARY KEY")
    {
        return Err(
            "the table has no primary key, which the backfill batches by (add one first)".into(),
        );
    }
    // The table's columns as SHOW CREATE TABLE prints them: (name, definition).
    let columns: Vec<(String, String)> = entries(&d.create)
        .into_iter()
        .filter_map(|e| read_ident(e).map(|(n, rest)| (n, rest.trim_start().to_string())))
        .collect();
    let known: Vec<String> = columns.iter().map(|(n, _)| n.clone()).collect();
    let (reads, exact) = super::split_merge_mysql::reads(expr, table, &known);
    for r in &reads {
        match columns.iter().find(|(n, _)| n.eq_ignore_ascii_case(r)) {
            None if exact => {
                return Err(format!(
                    "the fill expression `{expr}` names {r}, which is not a column of {table}"
                ))
            }
            None => {}
            Some((name, def)) => {
                let up = def.to_uppercase();
                if up.contains(" AS (") || up.contains("GENERATED ALWAYS") {
                    return Err(format!("the fill expression `{expr}` reads generated column {name}, which a BEFORE trigger sees before the server computes it: write the fill in terms of the columns it is generated from"));
                }
                if up.contains("AUTO_INCREMENT") {
                    return Err(format!("the fill expression `{expr}` reads {name}, the AUTO_INCREMENT column, which a BEFORE INSERT trigger sees as 0 when the INSERT leaves it out (the server numbers the row after the trigger): write the fill without it"));
                }
            }
        }
    }
    // The trigger's row as a derived table named like the table, so that the expression as
    // written reads the written row's columns (unqualified and `<table>.<column>`).
    let row = format!(
        "(SELECT {}) AS {}",
        columns
            .iter()
            .map(|(n, _)| format!("NEW.{q} AS {q}", q = ident(n)))
            .collect::<Vec<_>>()
            .join(", "),
        ident(table)
    );
    let fill =
        format!("IF NEW.{c} IS NULL THEN SET NEW.{c} = (SELECT ({expr}) FROM {row}); END IF;");
    // After the table's own BEFORE triggers of the event: one of them setting the column NULL
    // again would otherwise undo the fill.
    let last_own = |event: &str| {
        f.triggers
            .iter()
            .rfind(|x| {
                x.event.eq_ignore_ascii_case(event)
                    && x.timing.eq_ignore_ascii_case("BEFORE")
                    && x.name != n.insert
                    && x.name != n.update
            })
            .map(|x| format!(" FOLLOWS {}", ident(&x.name)))
            .unwrap_or_default()
    };
    let create = |name: &str, event: &str| {
        format!(
            "CREATE OR REPLACE TRIGGER {name} BEFORE {event} ON {t} FOR EACH ROW{} BEGIN {fill} END",
            last_own(event)
        )
    };

    let precheck = vec![
        // The expression as the UPDATE evaluates it: a mistake (an unknown column or function)
        // fails here, as the UPDATE as written would, before anything is made.
        format!("SELECT ({expr}) FROM (SELECT * FROM {t} LIMIT 0) AS {}", ident(table)),
        // Rows the UPDATE leaves NULL make the MODIFY fail (strict mode: 1265), as the
        // statements as written fail: said before the backfill fills the other rows for good.
        format!(
            "BEGIN NOT ATOMIC IF EXISTS (SELECT 1 FROM {t} WHERE {c} IS NULL AND ({expr}) IS NULL) THEN SIGNAL SQLSTATE '23000' SET MESSAGE_TEXT = {}; END IF; END",
            literal(&format!("column {col} of {table} would still hold NULL after the UPDATE (its expression gives NULL for some rows that are NULL now), so the MODIFY ... NOT NULL fails, as the statements as written would; nothing was changed"))
        ),
    ];

    let expand = vec![
        Step::Sql(create(&ti, "INSERT")),
        Step::Sql(create(&tu, "UPDATE")),
        Step::Backfill {
            table: t.clone(),
            set: format!("{c} = {expr}"),
            filter: Some(format!("{c} IS NULL")),
            // The UPDATE as written fires the table's triggers for these rows: so do its
            // batches. Rows filled are skipped by the filter: a rerun needs no checkpoint.
            as_update: true,
        },
    ];
    let expand_about = vec![
        About::new(
            "a BEFORE INSERT trigger (after the table's own) gives the column the UPDATE's value on every insert that leaves it NULL: the old version's INSERTs that leave it out get that value",
            Lock::ShareRowExclusive,
            Effect::Instant,
            Blocks::Writes,
        ),
        About::new(
            "the same for every UPDATE that leaves it NULL (BEFORE UPDATE, after the table's own)",
            Lock::ShareRowExclusive,
            Effect::Instant,
            Blocks::Writes,
        ),
        About::new(
            "the UPDATE as a backfill of the NULL rows in primary-key batches, each one short autocommitted UPDATE, paced on client latency",
            Lock::RowExclusive,
            Effect::Backfill,
            Blocks::Nothing,
        ),
    ];
    let expand_locks = vec![
        "metadata lock (milliseconds)".to_string(),
        "metadata lock (milliseconds)".to_string(),
        "row locks of one batch".to_string(),
    ];

    let kept = format!("the values the backfill and the triggers filled in ({expr}) stay: nothing tells them from values written on purpose, so the rollback cannot restore the NULLs");
    let sees = vec![
        (
            "before".into(),
            format!("the old version leaves {col} out of its writes (NULL); the new version writes {col}"),
        ),
        (
            "expanded (after `sluice up`)".into(),
            format!("both versions run: {col} is still NULL-able (MariaDB checks NOT NULL for INSERT ... SELECT before any trigger runs, so NOT NULL waits for complete). A write that leaves {col} NULL (the old version's INSERTs that leave it out, an UPDATE of a row the backfill has not reached yet) gets {expr}, evaluated on the row as written, from the triggers {} and {}: the value the UPDATE gives, so no write of either version fails. A write that sets {col} to NULL on purpose gets that value too", n.insert, n.update),
        ),
        (
            "completed (after `sluice complete`)".into(),
            format!("only the new version may run: {col} is NOT NULL (the MODIFY as written, through the online path), the triggers are gone, {table} is what the UPDATE and the MODIFY as written leave, and a write that leaves {col} out fails (1364 / 1048)"),
        ),
        (
            "rolled back (after `sluice rollback`)".into(),
            format!("only the old version may run: the triggers are gone, SHOW CREATE TABLE is as before; {kept} (not invertible)"),
        ),
    ];
    let old_version = vec![format!(
        "while expanded (until `sluice complete`) the old version's writes that leave {table}.{col} out (NULL) get {expr} from sluice's triggers instead of NULL, evaluated on the row as written (the value the UPDATE gives; nobody wrote it); after a `sluice rollback` {kept}"
    )];

    Ok(Phases {
        precheck,
        precheck_refusal: None,
        expand,
        expand_about,
        expand_atomic: false,
        complete: drop_triggers.clone(),
        rollback: drop_triggers,
        rollback_refusal: None,
        complete_refusal: None,
        complete_online: Some(modify.trim().trim_end_matches(';').trim_end().to_string()),
        rollback_guard: vec![],
        guard: super::Guard::NotNull,
        rollback_prepare: vec![],
        rollback_undo: vec![],
        sees,
        complete_description: "`sluice complete`: the MODIFY as written through the online path (in place, reads and writes continue; the triggers still fill what a write leaves NULL meanwhile), then drop the fill triggers (the table is then what the two statements as written leave)",
        rollback_description: "`sluice rollback` (before complete): drop the fill triggers (SHOW CREATE TABLE as before); the values filled in stay (not invertible)",
        expand_locks,
        phase_lock: Some(format!(
            "the MODIFY: {} (the online path's prediction; reads and writes continue); the DROP TRIGGERs: metadata lock (milliseconds)",
            match f.modify_impact {
                Some((Some(a), lock)) => format!(
                    "ALGORITHM={}{}",
                    a.as_str(),
                    lock.map(|l| format!(", LOCK={}", l.as_str())).unwrap_or_default()
                ),
                _ => "in place where the server can".into(),
            }
        )),
        rollback_lock: Some("metadata lock (milliseconds)".into()),
        watch: None,
        old_version,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_contract_modify_is_the_live_definition_made_not_null() {
        let create = |def: &str| {
            format!("CREATE TABLE `t` (\n  `id` int(11) NOT NULL,\n  `c` {def},\n  PRIMARY KEY (`id`)\n) ENGINE=InnoDB")
        };
        for (def, want) in [
            (
                "varchar(20) DEFAULT NULL COMMENT 'where'",
                "varchar(20) NOT NULL COMMENT 'where'",
            ),
            (
                "varchar(20) DEFAULT 'eu' COMMENT 'where'",
                "varchar(20) NOT NULL DEFAULT 'eu' COMMENT 'where'",
            ),
            ("int(11) DEFAULT NULL", "int(11) NOT NULL"),
            (
                "varchar(5) CHARACTER SET latin1 COLLATE latin1_bin DEFAULT NULL",
                "varchar(5) CHARACTER SET latin1 COLLATE latin1_bin NOT NULL",
            ),
            (
                "timestamp NULL DEFAULT current_timestamp() ON UPDATE current_timestamp()",
                "timestamp NOT NULL DEFAULT current_timestamp() ON UPDATE current_timestamp()",
            ),
        ] {
            assert_eq!(
                live_modify("`t`", &create(def), "c").as_deref(),
                Some(format!("ALTER TABLE `t` MODIFY `c` {want}").as_str()),
                "{def}"
            );
        }
    }

    use super::super::drop_column_mysql::{Column, Live};
    use super::*;

    #[test]
    fn trigger_names_keep_tables_apart_where_underscores_would_not() {
        // `a_b`.`c` and `a`.`b_c` both read `a_b_c`: their fills must not share triggers.
        let pairs = [("a_b", "c"), ("a", "b_c"), ("a_", "b_c"), ("a", "_b_c")];
        let mut seen = std::collections::HashSet::new();
        for (t, c) in pairs {
            let n = names(t, c);
            assert!(seen.insert(n.insert.clone()), "{t}.{c}: {}", n.insert);
            assert!(seen.insert(n.update.clone()), "{t}.{c}: {}", n.update);
            assert_eq!(n.insert, names(t, c).insert, "stable");
            assert!(n.insert.len() <= 64);
        }
    }

    fn stmts(sql: &str) -> Vec<Stmt> {
        let e = EngineKind::MariaDb;
        crate::sql::split(e, sql)
            .unwrap()
            .iter()
            .enumerate()
            .map(|(i, s)| crate::analysis::ir::build(e, i, s, 0, &s.sql))
            .collect()
    }

    #[test]
    fn finds_exactly_the_pattern() {
        let found = |sql: &str| find(&stmts(sql)).map(|b| b.describe());
        for sql in [
            "UPDATE t SET region = 'eu' WHERE region IS NULL; ALTER TABLE t MODIFY region varchar(20) NOT NULL",
            "UPDATE t SET region = lower(country) WHERE (region IS NULL); ALTER TABLE t MODIFY COLUMN region varchar(20) NOT NULL COMMENT 'r'",
            "UPDATE `T` SET `Region` = CONCAT(country, '-', id) WHERE `Region` IS NULL; ALTER TABLE `T` CHANGE `region` `REGION` varchar(20) NOT NULL",
            "UPDATE app.t SET region = 'eu' WHERE region IS NULL; ALTER TABLE app.t MODIFY region varchar(20) NOT NULL",
        ] {
            assert!(found(sql).is_some(), "{sql}");
        }
        assert_eq!(
            find(&stmts("UPDATE t SET region = CONCAT('a\\'b', x) WHERE region IS NULL; ALTER TABLE t MODIFY region varchar(20) NOT NULL")),
            Some(Breaking::FillNotNull {
                table: crate::analysis::ir::QName { schema: None, name: "t".into() },
                column: "region".into(),
                expr: "CONCAT('a\\'b', x)".into(),
            })
        );
        for sql in [
            // Another WHERE, several targets, ORDER BY / LIMIT, an alias, a join, DEFAULT.
            "UPDATE t SET region = 'eu' WHERE region IS NULL AND id > 5; ALTER TABLE t MODIFY region varchar(20) NOT NULL",
            "UPDATE t SET region = 'eu' WHERE country IS NULL; ALTER TABLE t MODIFY region varchar(20) NOT NULL",
            "UPDATE t SET region = 'eu'; ALTER TABLE t MODIFY region varchar(20) NOT NULL",
            "UPDATE t SET region = 'eu', note = 1 WHERE region IS NULL; ALTER TABLE t MODIFY region varchar(20) NOT NULL",
            "UPDATE t SET region = 'eu' WHERE region IS NULL ORDER BY id LIMIT 10; ALTER TABLE t MODIFY region varchar(20) NOT NULL",
            "UPDATE t AS x SET region = 'eu' WHERE region IS NULL; ALTER TABLE t MODIFY region varchar(20) NOT NULL",
            "UPDATE t JOIN u ON u.id = t.id SET region = u.r WHERE region IS NULL; ALTER TABLE t MODIFY region varchar(20) NOT NULL",
            "UPDATE t SET region = DEFAULT WHERE region IS NULL; ALTER TABLE t MODIFY region varchar(20) NOT NULL",
            "UPDATE t SET region = app.t.country WHERE region IS NULL; ALTER TABLE t MODIFY region varchar(20) NOT NULL",
            // The MODIFY: not NOT NULL, another column or table, a rename, more clauses.
            "UPDATE t SET region = 'eu' WHERE region IS NULL; ALTER TABLE t MODIFY region varchar(20)",
            "UPDATE t SET region = 'eu' WHERE region IS NULL; ALTER TABLE t MODIFY country varchar(20) NOT NULL",
            "UPDATE t SET region = 'eu' WHERE region IS NULL; ALTER TABLE u MODIFY region varchar(20) NOT NULL",
            "UPDATE t SET region = 'eu' WHERE region IS NULL; ALTER TABLE t CHANGE region area varchar(20) NOT NULL",
            "UPDATE t SET region = 'eu' WHERE region IS NULL; ALTER TABLE t MODIFY region varchar(20) NOT NULL, ADD COLUMN x int",
            "UPDATE t SET region = 'eu' WHERE region IS NULL; ALTER TABLE t MODIFY region varchar(20) NOT NULL, ALGORITHM=COPY",
            // Another statement, the other order.
            "UPDATE t SET region = 'eu' WHERE region IS NULL; ALTER TABLE t MODIFY region varchar(20) NOT NULL; ALTER TABLE t ADD COLUMN x int",
            "ALTER TABLE t MODIFY region varchar(20) NOT NULL; UPDATE t SET region = 'eu' WHERE region IS NULL",
            "ALTER TABLE t MODIFY region varchar(20) NOT NULL",
        ] {
            assert_eq!(found(sql), None, "{sql}");
        }
    }

    #[test]
    fn a_lookalike_the_parser_cannot_read_is_named() {
        let got = |sql: &str| unreadable(&stmts(sql));
        assert_eq!(
            got("UPDATE t SET region = CONCAT(id MOD 3, 'x') WHERE region IS NULL; ALTER TABLE t MODIFY region varchar(20) NOT NULL").as_deref(),
            Some("UPDATE t SET region = CONCAT(id MOD 3, 'x') WHERE region IS NULL")
        );
        for sql in [
            "UPDATE t SET region = 'eu' WHERE region IS NULL; ALTER TABLE t MODIFY region varchar(20) NOT NULL",
            "UPDATE t SET region = CONCAT(id MOD 3, 'x') WHERE region IS NULL; ALTER TABLE t ADD COLUMN x int",
            "UPDATE t SET region = CONCAT(id MOD 3, 'x'); ALTER TABLE t MODIFY region varchar(20) NOT NULL",
        ] {
            assert_eq!(got(sql), None, "{sql}");
        }
    }

    #[test]
    fn the_operation_as_written() {
        for (sql, want) in [
            (
                "ALTER TABLE t MODIFY region varchar(20) NOT NULL;",
                Some("MODIFY region varchar(20) NOT NULL"),
            ),
            (
                "ALTER TABLE `modify` change `c` c int NOT NULL COMMENT 'modify'",
                Some("change `c` c int NOT NULL COMMENT 'modify'"),
            ),
            ("ALTER TABLE t ADD COLUMN x int", None),
        ] {
            assert_eq!(operation_text(sql), want, "{sql}");
        }
    }

    #[test]
    fn only_the_nullability_changes() {
        let create = |def: &str, rest: &str| {
            format!("CREATE TEMPORARY TABLE `p` (\n  `id` bigint(20) NOT NULL AUTO_INCREMENT,\n  `region` {def},\n  PRIMARY KEY (`id`){rest}\n) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4")
        };
        let before = create("varchar(20) DEFAULT NULL COMMENT 'a NULL comment'", "");
        // (after, same)
        let cases = [
            (create("varchar(20) NOT NULL COMMENT 'a NULL comment'", ""), true),
            (create("varchar(21) NOT NULL COMMENT 'a NULL comment'", ""), false),
            (create("varchar(20) NOT NULL DEFAULT 'x' COMMENT 'a NULL comment'", ""), false),
            (create("varchar(20) NOT NULL", ""), false),
            (create("varchar(20) DEFAULT NULL COMMENT 'a NULL comment'", ""), false),
            (create("varchar(20) CHARACTER SET latin1 COLLATE latin1_swedish_ci NOT NULL COMMENT 'a NULL comment'", ""), false),
            (create("varchar(20) NOT NULL COMMENT 'a NULL comment'", ",\n  KEY `k` (`region`)"), false),
        ];
        for (after, same) in cases {
            assert_eq!(only_nullability(&before, &after, "Region"), same, "{after}");
        }
        let ts = create("timestamp NULL DEFAULT NULL", "");
        assert!(only_nullability(
            &ts,
            &create("timestamp NOT NULL", ""),
            "region"
        ));
        let moved = before.replace("  `id` bigint(20) NOT NULL AUTO_INCREMENT,\n  `region` varchar(20) DEFAULT NULL COMMENT 'a NULL comment',", "  `region` varchar(20) DEFAULT NULL COMMENT 'a NULL comment',\n  `id` bigint(20) NOT NULL AUTO_INCREMENT,");
        assert!(!only_nullability(
            &before,
            &moved.replace("DEFAULT NULL", "NOT NULL"),
            "region"
        ));
        // NOT NULL already: the MODIFY changes nothing.
        let nn = create("varchar(20) NOT NULL", "");
        assert!(only_nullability(&nn, &nn, "region"));
    }

    const CREATE: &str = "CREATE TABLE `t` (\n  `id` bigint(20) NOT NULL AUTO_INCREMENT,\n  `country` varchar(10) DEFAULT NULL,\n  `region` varchar(20) DEFAULT NULL,\n  `g` int(11) GENERATED ALWAYS AS (`id` * 2) VIRTUAL,\n  PRIMARY KEY (`id`)\n) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4";

    fn facts() -> Facts {
        Facts {
            table: super::super::drop_column_mysql::Facts {
                engine: Some(EngineKind::MariaDb),
                version: 3,
                table: "t".into(),
                table_sql: "`t`".into(),
                create: CREATE.into(),
                table_columns: 4,
                columns: vec![Column {
                    name: "region".into(),
                    live: Some(Live {
                        name: "region".into(),
                        default: Some("NULL".into()),
                        nullable: true,
                        data_type: "varchar".into(),
                        column_type: "varchar(20)".into(),
                        extra: String::new(),
                    }),
                    ..Default::default()
                }],
                ..Default::default()
            },
            server: (10, 11, 6),
            modify_impact: None,
            triggers: vec![
                Trigger {
                    name: "audit_bi".into(),
                    event: "INSERT".into(),
                    timing: "BEFORE".into(),
                },
                Trigger {
                    name: "audit_ai".into(),
                    event: "INSERT".into(),
                    timing: "AFTER".into(),
                },
            ],
        }
    }

    const MODIFY: &str = "ALTER TABLE t MODIFY region varchar(20) NOT NULL";

    #[test]
    fn triggers_after_the_tables_own_then_the_backfill() {
        let p = phases(&facts(), "region", "lower(country)", MODIFY).unwrap();
        let sql: Vec<String> = p.expand.iter().map(Step::text).collect();
        let row = "(SELECT NEW.`id` AS `id`, NEW.`country` AS `country`, NEW.`region` AS `region`, NEW.`g` AS `g`) AS `t`";
        assert_eq!(
            sql[0],
            format!("CREATE OR REPLACE TRIGGER `t_region_83455651_sluice_fni` BEFORE INSERT ON `t` FOR EACH ROW FOLLOWS `audit_bi` BEGIN IF NEW.`region` IS NULL THEN SET NEW.`region` = (SELECT (lower(country)) FROM {row}); END IF; END")
        );
        assert!(
            sql[1].starts_with("CREATE OR REPLACE TRIGGER `t_region_83455651_sluice_fnu` BEFORE UPDATE ON `t` FOR EACH ROW BEGIN IF"),
            "{}",
            sql[1]
        );
        assert_eq!(
            p.expand[2],
            Step::Backfill {
                table: "`t`".into(),
                set: "`region` = lower(country)".into(),
                filter: Some("`region` IS NULL".into()),
                as_update: true,
            }
        );
        assert_eq!(p.expand.len(), p.expand_about.len());
        assert_eq!(p.expand.len(), p.expand_locks.len());
        assert_eq!(p.complete_online.as_deref(), Some(MODIFY));
        // plan's contract step: the MODIFY first, a rebuild in place that blocks nothing.
        let step = p.complete_step();
        assert!(step
            .sql
            .starts_with(&format!("{MODIFY}; DROP TRIGGER IF EXISTS")));
        assert_eq!(
            (step.effect, step.blocks),
            (crate::plan::Effect::Rewrite, crate::plan::Blocks::Nothing)
        );
        let mut f = facts();
        f.modify_impact = Some((
            Some(crate::plan::Algorithm::Inplace),
            Some(crate::plan::LockLevel::None),
        ));
        let lock = phases(&f, "region", "'eu'", MODIFY).unwrap().phase_lock;
        assert!(
            lock.as_deref()
                .is_some_and(|l| l.starts_with("the MODIFY: ALGORITHM=INPLACE, LOCK=NONE")),
            "{lock:?}"
        );
        assert_eq!(
            p.complete,
            vec![
                "DROP TRIGGER IF EXISTS `t_region_83455651_sluice_fni`".to_string(),
                "DROP TRIGGER IF EXISTS `t_region_83455651_sluice_fnu`".to_string()
            ]
        );
        assert_eq!(p.rollback, p.complete);
        assert!(p.precheck[1].contains("SIGNAL SQLSTATE '23000'"));
        assert!(p.sees[3].1.contains("not invertible"));
        // A rerun: sluice's own trigger is never the one it follows.
        let mut f = facts();
        f.triggers.push(Trigger {
            name: "t_region_83455651_sluice_fni".into(),
            event: "INSERT".into(),
            timing: "BEFORE".into(),
        });
        let p = phases(&f, "region", "lower(country)", MODIFY).unwrap();
        assert!(p.expand[0].text().contains("FOLLOWS `audit_bi` BEGIN"));
    }

    #[test]
    fn after_an_interrupted_complete_only_complete_finishes() {
        let mut f = facts();
        f.table.expanded = true;
        if let Some(l) = f.table.columns[0].live.as_mut() {
            l.nullable = false;
        }
        let p = phases(&f, "region", "'eu'", MODIFY).unwrap();
        assert!(p.expand.is_empty() && p.complete_online.is_none());
        assert_eq!(p.complete.len(), 2);
        assert!(
            p.rollback[0].contains("SIGNAL SQLSTATE '45000'"),
            "{:?}",
            p.rollback
        );
    }

    #[test]
    fn refuses_what_the_triggers_cannot_carry() {
        type Change = dyn Fn(&mut Facts);
        let cases: &[(&str, &str, &Change, &str)] = &[
            ("galera", "'eu'", &|f| f.table.galera = true, "Galera"),
            (
                "old server",
                "'eu'",
                &|f| f.server = (10, 2, 2),
                "one trigger per table",
            ),
            (
                "no pk",
                "'eu'",
                &|f| f.table.create = f.table.create.replace(",\n  PRIMARY KEY (`id`)", ""),
                "no primary key",
            ),
            (
                "generated in the expression",
                "CONCAT(g, 'x')",
                &|_| {},
                "generated column g",
            ),
            (
                "auto_increment in the expression",
                "CONCAT('r', id)",
                &|_| {},
                "AUTO_INCREMENT",
            ),
            (
                "not a column",
                "CONCAT(nosuch, 'x')",
                &|_| {},
                "not a column of t",
            ),
            (
                "generated column",
                "'eu'",
                &|f| {
                    if let Some(l) = f.table.columns[0].live.as_mut() {
                        l.extra = "virtual generated".into()
                    }
                },
                "is generated",
            ),
            (
                "system-versioned",
                "'eu'",
                &|f| f.table.create.push_str(" WITH SYSTEM VERSIONING"),
                "system-versioned",
            ),
            (
                "missing",
                "'eu'",
                &|f| f.table.columns[0].live = None,
                "does not exist",
            ),
            (
                "a copy",
                "'eu'",
                &|f| f.modify_impact = Some((Some(crate::plan::Algorithm::Copy), None)),
                "ALGORITHM=COPY",
            ),
            (
                "a shared lock",
                "'eu'",
                &|f| {
                    f.modify_impact = Some((
                        Some(crate::plan::Algorithm::Inplace),
                        Some(crate::plan::LockLevel::Shared),
                    ))
                },
                "LOCK=SHARED",
            ),
        ];
        for (what, expr, change, want) in cases {
            let mut f = facts();
            change(&mut f);
            let got = phases(&f, "region", expr, MODIFY)
                .err()
                .unwrap_or_else(|| panic!("{what}: not refused"));
            assert!(got.contains(want), "{what}: {got}");
        }
    }
}
