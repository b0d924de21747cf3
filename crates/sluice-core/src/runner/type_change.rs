//! Rewriting column type changes (PostgreSQL): staged from the live catalog, or refused.

use super::*;

/// What becomes of a rewriting column type change (PostgreSQL).
pub(super) enum TypeChange {
    /// Runs as written: the table is small (the note says so).
    Small(String),
    /// Staged from the live catalog: its steps are in the part's rewrites; with the lifecycle
    /// `plan` shows when the swap keeps the old column (the migration is then expanded).
    Staged(Option<Box<crate::plan::expand::LifecyclePlan>>),
    /// Neither: refused before anything of the migration runs (`why` for `plan`).
    Refused { error: Error, why: String },
}

/// A column type change that rewrites the table holds ACCESS EXCLUSIVE for the whole rewrite, so
/// sluice stages it (shadow column, trigger, backfill, rebuilt indexes and constraints, short
/// swap) from what the live catalog says the column carries; it runs as written on a table with
/// fewer than `below` rows (the rewrite takes milliseconds), and is refused before anything of
/// the migration runs where no staged form is exact (the reason says why).
pub(super) async fn stage_type_changes(
    engine: &mut dyn Engine,
    m: &Migration,
    dir: Direction,
    prepared: &mut PreparedPart,
    resume_from: usize,
    below: u64,
    run_tables: &[crate::analysis::ir::QName],
) -> Result<Vec<(usize, TypeChange)>> {
    let target = engine.target();
    let mut out = Vec::new();
    if target.engine != crate::target::EngineKind::Postgres {
        return Ok(out);
    }
    // A versioned migration of several columns runs as its expand phase (the lifecycle's), never
    // as staged type changes, whose second ALTER of a table could not be planned.
    if dir == Direction::Up
        && m.part(dir)
            .is_some_and(|p| crate::migration::versioned_directives(&p.sql).len() > 1)
    {
        return Ok(out);
    }
    let forced_single = m.part(dir).and_then(|p| p.tx_directive) == Some(TxMode::Single);
    // Tables earlier in the part or the run created are new: their type changes run as written.
    let mut created: Vec<crate::analysis::ir::QName> = run_tables.to_vec();
    // Tables the pending statements before this one change: the catalog read now would not show
    // what they do, so a type change after them is not staged from it.
    let mut touched: Vec<crate::analysis::ir::QName> = Vec::new();
    // The session TimeZone where each statement runs (sluice.toml's [session], else the server's,
    // then what the part's own SETs make it): UTC makes timestamp ↔ timestamptz catalog-only.
    let session_utc = engine
        .session_time_zone()
        .await?
        .is_some_and(|z| crate::session::is_utc_zone(&z));
    let mut utc = session_utc;
    // A type change that is the migration's only statement keeps the old column until `sluice
    // complete` (the migration is then expanded, issue 13): `sluice rollback` swaps it back.
    let keep = dir == Direction::Up && crate::lifecycle::type_change_of(target, m).is_some();
    // The columns the part's own type changes change: a referencing column the user changes
    // is theirs, never widened a second time by sluice (see with_children).
    let written: Vec<(crate::analysis::ir::QName, String)> = prepared
        .statements
        .iter()
        .enumerate()
        .flat_map(|(i, s)| {
            crate::analysis::ir::build(target.engine, i, s, 0, &s.sql)
                .actions()
                .iter()
                .filter_map(|a| match a {
                    crate::analysis::ir::Action::AlterColumnType { table, column, .. } => {
                        Some((table.clone(), column.clone()))
                    }
                    _ => None,
                })
                .collect::<Vec<_>>()
        })
        .collect();
    // Views and policies on a column dropped right before its type change and re-created right
    // after it: the staged form runs those statements inside its swap (see Around).
    let folds: Vec<Option<crate::plan::alter_column_type::Fold>> = prepared
        .statements
        .iter()
        .enumerate()
        .map(|(i, s)| {
            crate::plan::alter_column_type::fold_of(&crate::analysis::ir::build(
                target.engine,
                i,
                s,
                0,
                &s.sql,
            ))
        })
        .collect();
    let texts: Vec<String> = prepared.statements.iter().map(|s| s.sql.clone()).collect();
    let texts: Vec<&str> = texts.iter().map(String::as_str).collect();
    let around_of = |i: usize| crate::plan::alter_column_type::Around::of(&folds, &texts, i);
    // The drops before a type change do not change the table before it (they run in its swap).
    let mut folded_before = vec![false; prepared.statements.len()];
    for (i, s) in prepared.statements.iter().enumerate() {
        let st = crate::analysis::ir::build(target.engine, i, s, 0, &s.sql);
        if st
            .actions()
            .iter()
            .any(|a| matches!(a, crate::analysis::ir::Action::AlterColumnType { .. }))
        {
            for (k, _) in around_of(i).before {
                folded_before[k] = true;
            }
        }
    }
    for i in 0..prepared.statements.len() {
        let s = prepared.statements[i].clone();
        let st = crate::analysis::ir::build(target.engine, i, &s, 0, &s.sql);
        if let Some(z) = crate::session::time_zone_set_by(&st) {
            // RESET goes back to the server's default, not to a setting made on the session.
            utc = z.is_some_and(|z| crate::session::is_utc_zone(&z));
        }
        for a in st.actions() {
            match a {
                crate::analysis::ir::Action::CreateTable { table, .. } => {
                    created.push(table.clone())
                }
                crate::analysis::ir::Action::AlterColumnType {
                    table,
                    column,
                    new_type,
                    using,
                    ..
                } if i >= resume_from && !created.iter().any(|c| c.matches(table)) => {
                    // The engine resolves SQL (to_regclass): the name quoted as the statement
                    // wrote it, or "Orders" would be looked up as orders and never found.
                    let name = crate::quote::qname(target.engine, table);
                    let Some(old) = engine.column_type(&name, column).await? else {
                        continue;
                    };
                    // `USING col` or `USING col::newtype` changes nothing about the rewrite question.
                    let trivial = !using
                        || crate::plan::alter_column_type::usings(&st)
                            .iter()
                            .any(|(c, e)| {
                                c == column
                                    && crate::plan::alter_column_type::trivial_using(
                                        e,
                                        column,
                                        &crate::plan::alter_column_type::parse_type(new_type),
                                    )
                            });
                    if trivial
                        && crate::plan::alter_column_type::pg_binary_coercible_in(
                            &old, new_type, utc, target,
                        )
                    {
                        continue;
                    }
                    let around = around_of(i);
                    // Drops an earlier attempt recorded as done without running them (they run in
                    // the swap) are left to the swap: the table is staged whatever its size.
                    let dropped_unrun =
                        around.before.first().is_some_and(|(k, _)| *k < resume_from);
                    if let Some(rows) = engine.rows_below(&name, below).await? {
                        if !dropped_unrun {
                            out.push((i, TypeChange::Small(small_table_note(rows, below))));
                            continue;
                        }
                    }
                    let staged = if forced_single {
                        Err("`-- sluice:transaction single` keeps every statement as written (the staged steps commit one by one)".to_string())
                    } else if touched.iter().any(|t| t.matches(table)) {
                        Err(format!("an earlier statement of this migration changes {table}, and the staged form is planned from the table as it is before the migration: put the type change first or in a migration of its own"))
                    } else {
                        let cat = engine.column_catalog(&name, column).await?;
                        let stray = match &cat {
                            Some(cat) => {
                                crate::runner::lifecycle::stray_child_helpers(engine, cat, new_type)
                                    .await?
                            }
                            None => vec![],
                        };
                        match cat {
                            Some(_) if !stray.is_empty() => {
                                Err(crate::runner::lifecycle::stray_reason(&stray))
                            }
                            Some(cat) => {
                                let (staged, children) = with_children(
                                    engine, &st, &cat, new_type, keep, &written, &around,
                                )
                                .await?;
                                for c in children {
                                    touched.push(crate::analysis::ir::QName {
                                        schema: Some(c.schema),
                                        name: c.table,
                                    });
                                }
                                staged
                            }
                            None => Err(format!(
                                "sluice could not read {table}.{column} from the catalog"
                            )),
                        }
                    };
                    match staged {
                        Ok((r, lifecycle)) => {
                            if prepared.mode == TxMode::Single {
                                prepared.mode = TxMode::PerStatement;
                                prepared.mode_reason = format!(
                                    "`{}` is staged: its steps commit one by one",
                                    first_line(&s.sql)
                                );
                            }
                            prepared.rewrites[i] = Some(r);
                            prepared
                                .brackets
                                .resize(prepared.statements.len(), Bracket::None);
                            for (k, _) in &around.before {
                                prepared.brackets[*k] = Bracket::InSwap { after: false };
                            }
                            for (k, _) in &around.after {
                                prepared.brackets[*k] = Bracket::InSwap { after: true };
                            }
                            out.push((i, TypeChange::Staged(lifecycle)));
                        }
                        Err(why) => {
                            let part_offset = m.part(dir).map(|p| p.offset).unwrap_or(0);
                            let (path, text) =
                                m.part(dir).map(|p| m.file_of(p)).unwrap_or(m.file(0));
                            let (line, col) = sql::line_col(text, part_offset + s.offset);
                            let error = Error::MigrationFile {
                                path: path.to_path_buf(),
                                line: Some(line),
                                message: format!(
                                    "line {line}, column {col}: changing {table}.{column} from {old} to {new_type} rewrites the table and its indexes under ACCESS EXCLUSIVE: every query on it waits for the whole rewrite, and sluice cannot stage it: {why}"
                                ),
                                help: format!("to run it as written anyway (e.g. in a maintenance window), use `sluice up --as-written`; tables with fewer than {below} rows (as_written_below_rows) run as written by themselves"),
                            };
                            out.push((i, TypeChange::Refused { error, why }));
                        }
                    }
                }
                _ => {}
            }
            if i >= resume_from && folded_before.get(i) != Some(&true) {
                if let Some(t) = crate::plan::action_table(a) {
                    touched.push(t);
                }
            }
        }
    }
    Ok(out)
}

/// The versions among `planned` whose type change (a migration of its own) the live catalog says
/// will be staged with the old column kept — expanded after `up`. A small table's runs as written
/// and a catalog-only change never stages, so neither opens anything on its table. Read before the
/// run, as the lifecycle check needs it; a change sluice cannot judge counts as kept (the check
/// then stays as strict as before).
pub(super) async fn kept_type_changes(
    engine: &mut dyn Engine,
    files: &[Migration],
    planned: &[PlannedMigration],
    below: u64,
) -> Result<Vec<i64>> {
    let mut kept = Vec::new();
    for p in planned {
        let Some(m) = files.iter().find(|m| m.version == p.version) else {
            continue;
        };
        if crate::lifecycle::type_change_of(engine.target(), m).is_none() {
            continue;
        }
        let staged = match prepare_in(engine, m, Direction::Up, true, &p.run_tables) {
            Ok(mut prepared) => stage_type_changes(
                engine,
                m,
                Direction::Up,
                &mut prepared,
                p.resume_from,
                below,
                &p.run_tables,
            )
            .await
            .map(|changes| {
                changes.iter().any(|(_, c)| match c {
                    TypeChange::Staged(lifecycle) => lifecycle.is_some(),
                    TypeChange::Small(_) => false,
                    TypeChange::Refused { .. } => true,
                })
            })
            .unwrap_or(true),
            Err(_) => true,
        };
        if staged {
            kept.push(p.version);
        }
    }
    Ok(kept)
}

/// What `up`, `--dry-run` and `plan` say of a statement that runs as written on a small table.
pub fn small_table_note(rows: u64, below: u64) -> String {
    format!("runs as written: the table has {rows} rows, below the threshold {below} (as_written_below_rows)")
}

/// What a staged type change runs (with the lifecycle `plan` shows when its swap keeps the old
/// column), or why it cannot be staged, and the referencing columns it widens with the column
/// (issue 13 point 2, [`crate::plan::alter_column_type::implied_children`]): each child's own
/// staged change first, from the child column's live catalog, then the parent's. A referencing
/// column one of the part's statements changes itself (`written`) is left to that statement,
/// wherever it stands in the part: it is not changed twice, and a bigint key referencing an int
/// one (or the other way) is valid meanwhile. When the parent's old column is kept, so is each
/// child's (its swap keeps it with a reverse trigger): the rollback swaps every one of them back
/// in one transaction (see [`crate::plan::expand::column_type::phases`]), so no child is left
/// wide. A rerun after a kill finds the children already swapped as wide and kept, and keeps the
/// parent's too.
#[allow(clippy::type_complexity)]
pub(super) async fn with_children(
    engine: &mut dyn Engine,
    st: &crate::analysis::ir::Stmt,
    cat: &crate::engine::ColumnCatalog,
    new_type: &str,
    keep: bool,
    written: &[(crate::analysis::ir::QName, String)],
    around: &crate::plan::alter_column_type::Around,
) -> Result<(
    std::result::Result<
        (
            crate::plan::staged::Rewrite,
            Option<Box<crate::plan::expand::LifecyclePlan>>,
        ),
        String,
    >,
    Vec<crate::plan::alter_column_type::Child>,
)> {
    use crate::plan::alter_column_type as act;
    let target = engine.target();
    let children: Vec<act::Child> = act::implied_children(cat, new_type)
        .into_iter()
        .filter(|c| {
            let q = crate::analysis::ir::QName {
                schema: Some(c.schema.clone()),
                name: c.table.clone(),
            };
            !written
                .iter()
                .any(|(t, col)| q.matches(t) && *col == c.column)
        })
        .collect();
    // Helper functions are named from the table and the column joined with `_`: a child whose
    // pair gives the column's name (`customer`.`address_id` and `customer_address`.`id`) would
    // take over the other's function (every write to one table would then fail).
    {
        let mut all = children.clone();
        all.push(act::Child {
            schema: cat.schema.clone(),
            table: cat.table.clone(),
            column: cat.column.clone(),
        });
        let function =
            |c: &act::Child| crate::plan::helper_name(&c.table, &c.column, "sluice_back");
        for (i, a) in all.iter().enumerate() {
            if let Some(b) = all[i + 1..]
                .iter()
                .find(|b| a.schema == b.schema && a.table != b.table && function(a) == function(b))
            {
                return Ok((
                    Err(format!(
                        "the helper functions of {}.{} and of the referencing column {}.{} would have one name (sluice joins the table and the column with _), so one would take over the other's trigger",
                        b.table, b.column, a.table, a.column
                    )),
                    children,
                ));
            }
        }
    }
    if children.is_empty() {
        let cat = &act::without_children_helpers(cat, &children);
        return Ok((
            act::staged_around(st, cat, keep, around).map(|(r, kept)| {
                let lp = kept
                    .then(|| Box::new(crate::plan::expand::column_type::plan(cat, new_type, &r)));
                (r, lp)
            }),
            children,
        ));
    }
    // The parent first, to learn whether its old column is kept: the children's are then too.
    let parent_cat = act::without_children_helpers(cat, &children);
    let (parent, kept) = match act::staged_around(st, &parent_cat, keep, around) {
        Ok(r) => r,
        Err(why) => return Ok((Err(why), children)),
    };
    let lifecycle = kept.then(|| {
        Box::new(crate::plan::expand::column_type::plan(
            cat, new_type, &parent,
        ))
    });
    let mut staged_children = Vec::new();
    for c in &children {
        let table = crate::quote::pg::qualified(&c.schema, &c.table);
        let sql = format!(
            "ALTER TABLE {table} ALTER COLUMN {} TYPE {new_type}",
            crate::quote::pg::ident(&c.column)
        );
        let split = match sql::split(target.engine, &sql) {
            Ok(v) if v.len() == 1 => v,
            _ => {
                return Ok((
                    Err(format!(
                        "sluice could not write the type change of the referencing column {}",
                        c.label()
                    )),
                    children,
                ))
            }
        };
        let child_st =
            crate::analysis::ir::build(target.engine, st.index, &split[0], 0, &split[0].sql);
        let Some(child_cat) = engine.column_catalog(&table, &c.column).await? else {
            return Ok((
                Err(format!(
                    "sluice could not read the referencing column {} from the catalog",
                    c.label()
                )),
                children,
            ));
        };
        match act::staged(&child_st, &child_cat, kept) {
            Ok((r, _)) => staged_children.push((c.clone(), r)),
            Err(why) => {
                return Ok((
                    Err(format!(
                        "the referencing column {} must be widened with it ({} → {new_type}), and its staged change cannot run: {why}",
                        c.label(),
                        child_cat.data_type
                    )),
                    children,
                ))
            }
        }
    }
    let parent_table = format!("{}.{}", cat.schema, cat.table);
    let staged = act::with_children(parent, staged_children, &parent_table);
    // The lifecycle `plan` shows: the expand phase with the children's steps.
    let lifecycle = lifecycle.map(|mut lp| {
        lp.expand = staged.plan_steps();
        lp.change = format!(
            "{} with the referencing column(s) {}, kept the same way",
            lp.change,
            children
                .iter()
                .map(|c| c.label())
                .collect::<Vec<_>>()
                .join(", ")
        );
        lp
    });
    Ok((Ok((staged, lifecycle)), children))
}
