//! `UPDATE t SET c = <expr> WHERE c IS NULL; ALTER TABLE t ALTER COLUMN c SET NOT NULL` in two
//! phases (PostgreSQL): NOT NULL on a column the application version still running does not
//! write. As written (or staged in one phase) every INSERT of the old version that leaves `c` out
//! fails from the SET NOT NULL on; in two phases the old version keeps working until complete.
//!
//! Expand (`sluice up`): a sluice-named BEFORE INSERT OR UPDATE row trigger gives `c` the value the
//! UPDATE would give (`<expr>`, evaluated on the written row) whenever a write leaves it NULL, so
//! the old version's writes that leave `c` out get that value; then the UPDATE as the paced,
//! checkpointed backfill, and NOT NULL through a CHECK added NOT VALID, validated without blocking,
//! SET NOT NULL proven by it and the check dropped. That expand set NOT NULL is noted in
//! `sluice.meta` in the same transaction, so that rollback undoes exactly that.
//!
//! Contract (`sluice complete`): one short transaction drops the trigger and its function; the
//! table is then what the two statements as written leave.
//!
//! Rollback (`sluice rollback`, before complete): one short transaction drops NOT NULL (when
//! expand set it) and the trigger and its function. The values the backfill and the trigger
//! filled stay: nothing tells them from values written on purpose (stated in `plan`).

use super::super::helper_name;
use super::super::staged::{do_block, About, Lock, Step};
use super::super::{Blocks, Effect};
use super::{Breaking, Phases};
use crate::analysis::ir::{fold_ident, qname, Action, Stmt};
use crate::engine::ColumnCatalog;
use crate::quote::pg::{ident, literal, qualified};
use crate::target::EngineKind;

/// The fill-and-SET-NOT-NULL pattern, exactly: the part is two statements, `UPDATE t SET c =
/// <expr> WHERE c IS NULL` (one SET target, no alias, FROM, RETURNING; every clause kept by the
/// parser) and `ALTER TABLE t ALTER COLUMN c SET NOT NULL` (plain, one operation) on the same
/// table and column. Anything else: None (it runs as before).
pub fn find(stmts: &[Stmt]) -> Option<Breaking> {
    use sqlparser::ast::{AssignmentTarget, Expr, Statement};
    let [up, alter] = stmts else { return None };
    let Some(Statement::AlterTable(at)) = alter.ast.as_deref() else {
        return None;
    };
    let u = super::plain_update(EngineKind::Postgres, up)?;
    let [Action::SetNotNull { table, column }] = alter.actions() else {
        return None;
    };
    if at.operations.len() != 1 || !super::super::staged::plain_alter(at) {
        return None;
    }
    if !qname(EngineKind::Postgres, super::update_table(u)?).matches(table) {
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
    if part
        .as_ident()
        .map(|i| fold_ident(EngineKind::Postgres, i))
        .as_ref()
        != Some(column)
    {
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
    let named = match subject {
        Expr::Identifier(i) => fold_ident(EngineKind::Postgres, i),
        _ => return None,
    };
    if &named != column {
        return None;
    }
    // A column named with its schema (`app.t.c`) would not resolve against the row the trigger
    // names by the table's name alone.
    let schema_qualified = sqlparser::ast::visit_expressions(&a.value, |e| match e {
        Expr::CompoundIdentifier(parts) if parts.len() > 2 => std::ops::ControlFlow::Break(()),
        _ => std::ops::ControlFlow::Continue(()),
    });
    if schema_qualified.is_break() {
        return None;
    }
    let expr = a.value.to_string();
    // `SET c = DEFAULT` is no expression a trigger can evaluate.
    if expr.eq_ignore_ascii_case("default") {
        return None;
    }
    Some(Breaking::FillNotNull {
        table: table.clone(),
        column: column.clone(),
        expr,
    })
}

/// A DO block that fails when `expr` names a generated column of the table `lt` (a literal): such
/// a column is still NULL in a BEFORE trigger's row, so a trigger evaluating `expr` would compute
/// from NULL. `what` names the expression and `fix` starts the fix, for the message.
pub(super) fn no_generated(lt: &str, expr: &str, what: &str, fix: &str) -> String {
    do_block(&format!(
        "DECLARE g text; BEGIN SELECT attname INTO g FROM pg_attribute WHERE attrelid = {lt}::regclass AND attnum > 0 AND NOT attisdropped AND attgenerated <> '' AND lower({lexpr}) ~ ('\\m' || regexp_replace(lower(attname), '([^a-z0-9_])', '\\\\\\1', 'g') || '\\M') LIMIT 1; IF g IS NOT NULL THEN RAISE EXCEPTION {}, g USING ERRCODE = 'feature_not_supported'; END IF; END",
        literal(&format!("{what} names the generated column %, which a trigger sees as NULL on the row being written: {fix} in terms of the columns it is generated from")),
        lexpr = literal(expr)
    ))
}

/// The names the phases give their helpers (stable across runs: a rerun, `complete` and
/// `rollback` find them).
pub struct Names {
    pub trigger: String,
    pub function: String,
    pub check: String,
}

pub fn names(cat: &ColumnCatalog) -> Names {
    Names {
        // Row triggers fire in name order: `zz_` puts the fill after nearly every other.
        trigger: helper_name(&format!("zz_{}", cat.table), &cat.column, "sluice_fill"),
        function: helper_name(&cat.table, &cat.column, "sluice_fill"),
        check: helper_name(&cat.table, &cat.column, "sluice_not_null"),
    }
}

/// The `sluice.meta` key that records that the expand phase of migration `version` set NOT NULL
/// on `schema.table.column` (it was nullable before).
pub fn meta_key(version: i64, schema: &str, table: &str, column: &str) -> String {
    format!("expand {version}: NOT NULL set on {schema}.{table}.{column}")
}

/// The phases of filling `cat.column` with `expr` and setting it NOT NULL (migration `version`).
/// Err: why it cannot run in two phases (it is then refused; `--as-written` runs it in one).
pub fn phases(cat: &ColumnCatalog, expr: &str, version: i64) -> Result<Phases, String> {
    if cat.server_version < 120000 {
        return Err(
            "the two phases need PostgreSQL 12 (NOT NULL proven by a validated check)".into(),
        );
    }
    if cat.generated {
        return Err("the column is generated: an UPDATE cannot set it".into());
    }
    if cat.inheritance {
        return Err("the table is partitioned, a partition or inherits: a fill trigger and NOT NULL across the hierarchy are not carried yet".into());
    }
    let n = names(cat);
    if let Some(later) = cat
        .before_triggers
        .iter()
        .find(|t| t.as_bytes() > n.trigger.as_bytes())
    {
        return Err(format!("trigger {later} fires after sluice's fill trigger {} (BEFORE triggers fire by name) and could set {} to NULL after it was filled; rename it to sort before {}", n.trigger, cat.column, n.trigger));
    }
    let t = qualified(&cat.schema, &cat.table);
    let lt = literal(&t);
    let c = ident(&cat.column);
    let alias = ident(&cat.table);
    let func = format!("{}.{}", ident(&cat.schema), ident(&n.function));
    let trigger = ident(&n.trigger);
    let (check, lcheck) = (ident(&n.check), literal(&n.check));
    let key = literal(&meta_key(version, &cat.schema, &cat.table, &cat.column));
    let set = format!("{c} = {expr}");
    let checkpoint = crate::plan::staged::forget_backfill(cat, &set);
    let not_null_now = format!(
        "(SELECT attnotnull FROM pg_attribute WHERE attrelid = {lt}::regclass AND attname = {} AND NOT attisdropped)",
        literal(&cat.column)
    );

    let precheck = vec![
        // The expression as the UPDATE would evaluate it (names, types): a mistake fails here,
        // as the UPDATE as written would, before anything is made.
        // Evaluated as the trigger evaluates it, on the row's user columns (`SELECT t.*`): a
        // system column (tableoid, ctid, xmin) the UPDATE could read fails here, not on every
        // write once expanded.
        do_block(&format!(
            "BEGIN PERFORM ({expr}) FROM (SELECT {alias}.* FROM {t} AS {alias} LIMIT 0) AS {alias}; END"
        )),
        // A generated column is still NULL in a BEFORE trigger's row: an expression naming one
        // would fill NULL and make every old-version INSERT fail once NOT NULL is set.
        no_generated(&lt, expr, "the fill expression", "write the fill"),
        // Rows the UPDATE leaves NULL make SET NOT NULL fail, as the statements as written fail:
        // said before anything is made (the backfill would otherwise have filled the other rows
        // for good before the check failed).
        do_block(&format!(
            "BEGIN IF EXISTS (SELECT FROM {t} AS {alias} WHERE {c} IS NULL AND ({expr}) IS NULL) THEN RAISE EXCEPTION 'column % of % would still hold NULL after the UPDATE (its expression gives NULL for some rows that are NULL now), so SET NOT NULL fails with a not-null violation, as the statements as written would; nothing was changed', {lc}, {lt} USING ERRCODE = 'not_null_violation'; END IF; END",
            lc = literal(&cat.column),
            lt = literal(&format!("{}.{}", cat.schema, cat.table))
        )),
        do_block(&crate::plan::alter_column_type::function_free(&func, &t)),
        // A checkpoint left by an earlier expand of the same migration (rolled back since) is
        // stale.
        do_block(&crate::plan::staged::reset_checkpoint(&checkpoint)),
    ];

    let mut expand = Vec::new();
    let mut about = Vec::new();
    // 1. the fill trigger: the value the UPDATE gives, evaluated on the row as written (the
    // expression may name the row's columns, under the table's name too; a column named like a
    // PL/pgSQL variable, `found`, is the column).
    let body = format!(
        "#variable_conflict use_column\nBEGIN IF NEW.{c} IS NULL THEN NEW.{c} := (SELECT {expr} FROM (SELECT NEW.*) AS {alias}); END IF; RETURN NEW; END"
    );
    expand.push(Step::Sql(format!(
        "{}; DROP TRIGGER IF EXISTS {trigger} ON {t}; CREATE TRIGGER {trigger} BEFORE INSERT OR UPDATE ON {t} FOR EACH ROW EXECUTE FUNCTION {func}()",
        crate::plan::alter_column_type::create_function(&func, &body)
    )));
    about.push(About::new(
        "a trigger gives the column the UPDATE's value on every insert and update that leaves it NULL: the old version's writes that leave it out get that value",
        Lock::ShareRowExclusive,
        Effect::Instant,
        Blocks::Writes,
    ));
    // 2. the UPDATE, paced.
    expand.push(Step::Backfill {
        table: t.clone(),
        set: set.clone(),
        filter: Some(format!("{c} IS NULL")),
        // The UPDATE as written fires the table's triggers for these rows: so do its batches.
        as_update: true,
    });
    about.push(About::new(
        "the UPDATE as a backfill of the NULL rows in batches by primary key, each batch its own short transaction, paced on client latency",
        Lock::RowExclusive,
        Effect::Backfill,
        Blocks::Nothing,
    ));
    expand.push(Step::Analyze {
        table: t.clone(),
        columns: vec![c.clone()],
    });
    about.push(About::analyze());
    // 3. NOT NULL in the staged form. A column NOT NULL already (before the migration, or set by
    // a killed run) gets no check.
    expand.push(Step::Sql(do_block(&format!(
        "BEGIN IF NOT EXISTS (SELECT FROM pg_constraint WHERE conrelid = {lt}::regclass AND conname = {lcheck}) AND NOT {not_null_now} THEN ALTER TABLE {t} ADD CONSTRAINT {check} CHECK ({c} IS NOT NULL) NOT VALID; END IF; END"
    ))));
    about.push(About::catalog(
        "NOT NULL as a check for new rows only (catalog only)",
    ));
    expand.push(Step::Sql(do_block(&format!(
        "BEGIN IF EXISTS (SELECT FROM pg_constraint WHERE conrelid = {lt}::regclass AND conname = {lcheck}) THEN ALTER TABLE {t} VALIDATE CONSTRAINT {check}; END IF; END"
    ))));
    about.push(About::validate("validate it (reads and writes continue)"));
    expand.push(Step::Sql(format!(
        "{}; ALTER TABLE {t} DROP CONSTRAINT IF EXISTS {check}",
        do_block(&format!(
            "BEGIN IF NOT {not_null_now} THEN ALTER TABLE {t} ALTER COLUMN {c} SET NOT NULL; INSERT INTO sluice.meta (key, value) VALUES ({key}, '') ON CONFLICT (key) DO NOTHING; END IF; END"
        ))
    )));
    about.push(About::catalog(
        "SET NOT NULL without a scan (the valid check proves it; recorded in sluice.meta in the same transaction), then drop the check",
    ));

    let complete = vec![
        format!("DROP TRIGGER IF EXISTS {trigger} ON {t}"),
        format!("DROP FUNCTION IF EXISTS {func}()"),
        format!("DELETE FROM sluice.meta WHERE key = {key}"),
        checkpoint.clone(),
    ];
    let rollback = vec![
        format!("DROP TRIGGER IF EXISTS {trigger} ON {t}"),
        format!("DROP FUNCTION IF EXISTS {func}()"),
        format!("ALTER TABLE {t} DROP CONSTRAINT IF EXISTS {check}"),
        do_block(&format!(
            "BEGIN IF EXISTS (SELECT FROM sluice.meta WHERE key = {key}) THEN ALTER TABLE {t} ALTER COLUMN {c} DROP NOT NULL; END IF; END"
        )),
        format!("DELETE FROM sluice.meta WHERE key = {key}"),
        checkpoint,
    ];

    let col = &cat.column;
    let table = format!("{}.{}", cat.schema, cat.table);
    let kept = format!("the values the backfill and the trigger filled in ({expr}) stay: nothing tells them from values written on purpose, so the rollback cannot restore the NULLs");
    let sees = vec![
        (
            "before".into(),
            format!("the old version leaves {col} out of its writes (NULL); the new version writes {col}"),
        ),
        (
            "expanded (after `sluice up`)".into(),
            format!("both versions run: {col} is NOT NULL. A write that leaves {col} NULL (the old version's INSERTs that leave it out, an UPDATE of a row the backfill has not reached yet) gets {expr}, evaluated on the row as written, from the trigger {}: the value the UPDATE gives, so no write of either version fails. A write that sets {col} to NULL on purpose gets that value too (as written it would fail with a not-null violation)", n.trigger),
        ),
        (
            "completed (after `sluice complete`)".into(),
            format!("only the new version may run: the trigger is gone, {table} is what the UPDATE and SET NOT NULL as written leave, and a write that leaves {col} out fails with a not-null violation"),
        ),
        (
            "rolled back (after `sluice rollback`)".into(),
            format!("only the old version may run: {col} is nullable again and the trigger is gone; {kept} (not invertible)"),
        ),
    ];
    let old_version = vec![format!(
        "while expanded (until `sluice complete`) the old version's writes that leave {table}.{col} out (NULL) get {expr} from sluice's trigger instead of NULL, evaluated on the row as written (the value the UPDATE gives; nobody wrote it); after a `sluice rollback` {kept}"
    )];

    Ok(Phases {
        precheck,
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
        sees,
        complete_description: "`sluice complete`: in one short transaction, drop the fill trigger and its function (the table is then what the two statements as written leave)",
        rollback_description: "`sluice rollback` (before complete): in one short transaction, drop NOT NULL (when expand set it) and the fill trigger and its function; the values filled in stay (not invertible)",
        expand_locks: vec![],
        phase_lock: None,
        rollback_lock: None,
        watch: None,
        old_version,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stmts(sql: &str) -> Vec<Stmt> {
        crate::sql::split(EngineKind::Postgres, sql)
            .unwrap()
            .iter()
            .enumerate()
            .map(|(i, s)| crate::analysis::ir::build(EngineKind::Postgres, i, s, 0, &s.sql))
            .collect()
    }

    fn cat() -> ColumnCatalog {
        ColumnCatalog {
            schema: "public".into(),
            table: "accounts".into(),
            column: "region".into(),
            data_type: "text".into(),
            server_version: 150000,
            ..Default::default()
        }
    }

    #[test]
    fn finds_exactly_the_pattern() {
        let found = |sql: &str| find(&stmts(sql)).map(|b| b.describe());
        for sql in [
            "UPDATE accounts SET region = 'eu' WHERE region IS NULL; ALTER TABLE accounts ALTER COLUMN region SET NOT NULL",
            "UPDATE accounts SET region = lower(country) WHERE (region IS NULL); ALTER TABLE public.accounts ALTER region SET NOT NULL",
            "UPDATE app.\"Accounts\" SET \"Region\" = CASE WHEN id % 2 = 0 THEN 'eu' ELSE 'us' END WHERE \"Region\" IS NULL; ALTER TABLE app.\"Accounts\" ALTER COLUMN \"Region\" SET NOT NULL",
        ] {
            assert!(found(sql).is_some(), "{sql}");
        }
        assert_eq!(
            find(&stmts("UPDATE accounts SET region = 'eu' WHERE region IS NULL; ALTER TABLE accounts ALTER COLUMN region SET NOT NULL")),
            Some(Breaking::FillNotNull {
                table: crate::analysis::ir::QName { schema: None, name: "accounts".into() },
                column: "region".into(),
                expr: "'eu'".into(),
            })
        );
        for sql in [
            // Other SET targets, another WHERE, FROM, RETURNING, an alias.
            "UPDATE accounts SET region = 'eu', note = 'x' WHERE region IS NULL; ALTER TABLE accounts ALTER COLUMN region SET NOT NULL",
            "UPDATE accounts SET region = 'eu' WHERE region IS NULL AND id > 5; ALTER TABLE accounts ALTER COLUMN region SET NOT NULL",
            "UPDATE accounts SET region = 'eu'; ALTER TABLE accounts ALTER COLUMN region SET NOT NULL",
            "UPDATE accounts SET region = 'eu' WHERE country IS NULL; ALTER TABLE accounts ALTER COLUMN region SET NOT NULL",
            "UPDATE accounts SET region = r.name FROM regions r WHERE region IS NULL; ALTER TABLE accounts ALTER COLUMN region SET NOT NULL",
            "UPDATE accounts SET region = 'eu' WHERE region IS NULL RETURNING id; ALTER TABLE accounts ALTER COLUMN region SET NOT NULL",
            "UPDATE accounts a SET region = 'eu' WHERE region IS NULL; ALTER TABLE accounts ALTER COLUMN region SET NOT NULL",
            "UPDATE accounts SET region = DEFAULT WHERE region IS NULL; ALTER TABLE accounts ALTER COLUMN region SET NOT NULL",
            "UPDATE public.accounts SET region = public.accounts.country WHERE region IS NULL; ALTER TABLE public.accounts ALTER COLUMN region SET NOT NULL",
            // Another table or column, other statements, other clauses.
            "UPDATE accounts SET region = 'eu' WHERE region IS NULL; ALTER TABLE users ALTER COLUMN region SET NOT NULL",
            "UPDATE accounts SET country = 'eu' WHERE country IS NULL; ALTER TABLE accounts ALTER COLUMN region SET NOT NULL",
            "UPDATE accounts SET region = 'eu' WHERE region IS NULL; ALTER TABLE accounts ALTER COLUMN region SET NOT NULL; ALTER TABLE accounts ADD COLUMN x int",
            "UPDATE accounts SET region = 'eu' WHERE region IS NULL; ALTER TABLE accounts ALTER COLUMN region SET NOT NULL, ADD COLUMN x int",
            "UPDATE accounts SET region = 'eu' WHERE region IS NULL; ALTER TABLE ONLY accounts ALTER COLUMN region SET NOT NULL",
            "ALTER TABLE accounts ALTER COLUMN region SET NOT NULL; UPDATE accounts SET region = 'eu' WHERE region IS NULL",
            "ALTER TABLE accounts ALTER COLUMN region SET NOT NULL",
        ] {
            assert_eq!(found(sql), None, "{sql}");
        }
    }

    #[test]
    fn phases_fill_then_set_not_null() {
        let p = phases(&cat(), "'eu'", 7).unwrap();
        let sql: Vec<String> = p.expand.iter().map(Step::text).collect();
        assert!(
            sql[0].contains("SET \"TimeZone\" FROM CURRENT"),
            "{}",
            sql[0]
        );
        assert!(
            sql[0].contains("AS '#variable_conflict use_column\nBEGIN"),
            "{}",
            sql[0]
        );
        assert!(sql[0].contains("CREATE TRIGGER \"zz_accounts_region_sluice_fill\" BEFORE INSERT OR UPDATE ON \"public\".\"accounts\""), "{}", sql[0]);
        assert!(
            sql[0]
                .contains("NEW.\"region\" := (SELECT ''eu'' FROM (SELECT NEW.*) AS \"accounts\")"),
            "{}",
            sql[0]
        );
        assert_eq!(
            p.expand[1],
            Step::Backfill {
                table: "\"public\".\"accounts\"".into(),
                set: "\"region\" = 'eu'".into(),
                filter: Some("\"region\" IS NULL".into()),
                as_update: true,
            }
        );
        assert!(sql[3].contains("CHECK (\"region\" IS NOT NULL) NOT VALID"));
        assert!(sql[4].contains("VALIDATE CONSTRAINT"));
        assert!(
            sql[5].contains("SET NOT NULL")
                && sql[5].contains("expand 7: NOT NULL set on public.accounts.region")
        );
        assert_eq!(p.expand.len(), p.expand_about.len());
        assert!(
            p.complete[0].starts_with("DROP TRIGGER IF EXISTS \"zz_accounts_region_sluice_fill\"")
        );
        assert!(p.rollback.iter().any(|s| s.contains("DROP NOT NULL")));
        assert!(p.sees[3].1.contains("not invertible"), "{:?}", p.sees);
        let mut late = cat();
        late.before_triggers.push("zzz".into());
        assert!(phases(&late, "'eu'", 7)
            .unwrap_err()
            .contains("fires after"));
        let mut early = cat();
        early.before_triggers.push("audit".into());
        assert!(phases(&early, "'eu'", 7).is_ok());
    }
}
