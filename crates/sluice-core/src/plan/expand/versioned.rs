//! Versioned schemas (issue 14, opt-in, PostgreSQL): a type change one physical column cannot
//! serve to two application versions at once (`text → jsonb` under the same name), marked
//!
//! ```sql
//! -- sluice:versioned down body::text
//! ALTER TABLE docs ALTER COLUMN body TYPE jsonb USING body::jsonb;
//! ```
//!
//! Expand (`sluice up`): a new column of the new type beside the old one (catalog only); one
//! BEFORE INSERT OR UPDATE trigger translating writes both ways (a write of the old column sets
//! the new one through USING, a write of the new one sets the old one through the down
//! expression; both written: the new one wins); the paced backfill; the column's indexes and NOT
//! NULL on the new column in the staged forms; then a schema `sluice_v<version>` holding one view
//! of the table (`security_invoker`, so row-level security applies to whoever queries it) that
//! shows the new column under the old name and leaves the old one out, with the table's grants.
//! The old version keeps using the table; the new one puts the schema first in its `search_path`.
//!
//! Contract (`sluice complete`): one short transaction drops the trigger, the view, the schema
//! and the old column, and gives the new one the column's name (and its index names): what the
//! ALTER as written leaves, except that the column is now the table's last. The schema goes
//! (rather than staying beside the table) because a view over `SELECT` of fixed columns would
//! hide every column a later migration adds from the new version; a `search_path` still naming
//! it is harmless (PostgreSQL skips a schema that does not exist), so the table itself serves the
//! new version from then on.
//!
//! Rollback (`sluice rollback`, before complete): one short transaction drops the view, the
//! schema, the trigger, its function and the new column: the schema exactly as before.
//!
//! Several columns (each statement of the migration with its own directive, of one table or
//! several): each column's steps in turn, then one step making the schema with a view per table
//! (every changed column of it under its old name); complete and rollback drop the views and the
//! schema, then every trigger, then handle the columns, in one transaction each. Each trigger
//! reads and sets its own pair only, so two on one table are independent whatever their order;
//! an expression that reads another changed column (whose value would depend on that order) is
//! refused.

use super::super::alter_column_type::{
    attach_rebuilt, constraint_free, index_on_shadow, relation_free,
};
use super::super::helper_name;
use super::super::staged::{do_block, About, Lock, Step};
use super::super::{Blocks, Effect};
use super::Phases;
use crate::engine::ColumnCatalog;
use crate::quote::pg::{ident, literal, qualified};

/// What the live database says besides the columns' catalogs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Facts {
    /// The migration's version as its file names it: the schema is `sluice_v<version>`.
    pub version: String,
    /// A new column is there (the expand phase began): what would keep the expand from
    /// starting is not asked again, so a view or grant made on a column since does not stop
    /// the rollback (which never touches the old columns) or complete (whose DROP COLUMN then
    /// fails with the server's reason, changing nothing).
    pub started: bool,
    /// Each table's columns in order (the helper columns left out), by (schema, table).
    pub columns: Vec<((String, String), Vec<String>)>,
    /// `current_setting('search_path')` of sluice's session: what the new version's setting
    /// puts after the version schema.
    pub search_path: String,
}

impl Facts {
    fn columns_of(&self, cat: &ColumnCatalog) -> &[String] {
        self.columns
            .iter()
            .find(|((s, t), _)| *s == cat.schema && *t == cat.table)
            .map_or(&[], |(_, c)| c.as_slice())
    }
}

/// The change as the migration writes it.
pub struct Change<'a> {
    pub ty: &'a str,
    /// The USING expression (old → new), the column's name standing for the old value.
    pub up: &'a str,
    /// The down expression (new → old), the column's name standing for the new value.
    pub down: &'a str,
}

/// The schema of version `version`.
pub fn schema_name(version: &str) -> String {
    format!("sluice_v{version}")
}

/// The exact setting that selects version `version` in front of `search_path`.
pub fn setting(version: &str, search_path: &str) -> String {
    let name = schema_name(version);
    // As `format('%I')` in the SQL function prints it: bare when that reads back the same.
    let bare = name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    format!(
        "SET search_path TO {}, {search_path}",
        if bare { name } else { ident(&name) }
    )
}

/// The SQL function that returns the setting's value for a version, created by the expand phase
/// in sluice's schema (kept: other versions use it too).
pub const SEARCH_PATH_FUNCTION: &str = "sluice.search_path_for";

fn function_sql() -> String {
    format!(
        "CREATE OR REPLACE FUNCTION {SEARCH_PATH_FUNCTION}(version text) RETURNS text LANGUAGE sql STABLE AS {}",
        literal("SELECT format('%I, %s', 'sluice_v' || version, current_setting('search_path'))")
    )
}

/// The helper names (stable across runs: a rerun, complete and rollback find them).
pub struct Names {
    pub column: String,
    pub trigger: String,
    pub function: String,
}

pub fn names(cat: &ColumnCatalog) -> Names {
    Names {
        column: helper_name(&cat.column, "", "sluice_versioned"),
        // Row triggers fire in name order: `zz_` puts the translation after nearly every other.
        trigger: helper_name(
            &format!("zz_{}", cat.table),
            &cat.column,
            "sluice_versioned",
        ),
        function: helper_name(&cat.table, &cat.column, "sluice_versioned"),
    }
}

fn tmp_index(name: &str) -> String {
    helper_name(name, "", "sluice_versioned")
}

/// What one column contributes to the phases.
struct ColumnPlan {
    precheck: Vec<String>,
    expand: Vec<Step>,
    about: Vec<About>,
    /// Dropping its trigger and its function (complete and rollback, after the views).
    unhook: Vec<String>,
    /// Complete's statements after every trigger is gone.
    complete: Vec<String>,
    /// Rollback's statement dropping the new column, and the backfill record's removal.
    rollback: Vec<String>,
    /// How the expanded column reads in words (for `sees`).
    expanded: String,
}

/// The phases of the versioned type changes `cols` (each column's catalog and change, in the
/// migration's order; one or more columns, of one table or several). Err: why they cannot run
/// so.
pub fn phases(cols: &[(&ColumnCatalog, Change)], f: &Facts) -> Result<Phases, String> {
    let Some((first, _)) = cols.first() else {
        return Err("no column to change".into());
    };
    if first.server_version < 150000 {
        return Err("versioned schemas need PostgreSQL 15: their views are created WITH (security_invoker = true) so that row-level security and privileges apply to the application's role, and older servers would check them as the view's owner".into());
    }
    // Every translating trigger of the migration: one column's does not stop another's.
    let own: Vec<String> = cols.iter().map(|(c, _)| names(c).trigger).collect();
    let mut refusals = Vec::new();
    // An expression that reads another changed column of its table would see it in the old
    // type, and, in a trigger, before or after that column's own translation depending on the
    // triggers' name order; the ALTERs as written would show a later statement the earlier
    // ones' new types.
    for (cat, ch) in cols {
        for (which, expr) in [("USING", ch.up), ("down", ch.down)] {
            let read = super::split_merge::reads(expr);
            if let Some((other, _)) = cols.iter().find(|(o, _)| {
                o.column != cat.column
                    && o.schema == cat.schema
                    && o.table == cat.table
                    && read.contains(&o.column)
            }) {
                refusals.push(format!(
                    "the {which} expression of {}.{} (`{expr}`) reads {}, which this migration changes too: each expression must read only its own column and columns the migration leaves as they are (put the two changes in migrations of their own)",
                    cat.table, cat.column, other.column
                ));
            } else if read.contains(&cat.table)
                && !f.columns.iter().any(|((s, t), c)| {
                    s == &cat.schema && t == &cat.table && c.contains(&cat.table)
                })
                && cols.iter().any(|(o, _)| {
                    o.column != cat.column && o.schema == cat.schema && o.table == cat.table
                })
            {
                // The table's name as a value is the whole row (`to_jsonb(docs)`), unless a
                // column has that name: it reads every changed column too.
                refusals.push(format!(
                    "the {which} expression of {}.{} (`{expr}`) reads the whole row of {}, whose other columns this migration changes too: each expression must read only its own column and columns the migration leaves as they are (put the two changes in migrations of their own)",
                    cat.table, cat.column, cat.table
                ));
            }
        }
    }
    // The version schema serves unqualified names: `a.docs` and `b.docs` would both be
    // `sluice_v<ver>.docs` (one view replacing the other, or the new version reading the wrong
    // table through its search_path).
    for (i, (cat, _)) in cols.iter().enumerate() {
        if let Some((other, _)) = cols[..i]
            .iter()
            .find(|(o, _)| o.table == cat.table && o.schema != cat.schema)
        {
            let clash = format!(
                "tables {} and {} have the same name, and the version schema serves each table under its plain name (one view per name): change them in migrations of their own",
                qualified(&other.schema, &other.table),
                qualified(&cat.schema, &cat.table)
            );
            if !refusals.contains(&clash) {
                refusals.push(clash);
            }
        }
    }
    // An index (or the constraint it backs) over two changed columns of one table: each column's
    // rebuild would be the same helper index on one new column and the other's old one, so the
    // second rebuild is skipped and complete's DROP COLUMN of the other takes the helper with it
    // (complete could never finish). Refused rather than rebuilt once over every new column: the
    // rebuild would have to wait for every backfill and its constraint would serve neither
    // version's ON CONFLICT while expanded.
    for (i, (cat, _)) in cols.iter().enumerate() {
        for ix in &cat.indexes {
            if let Some((other, _)) = cols[..i].iter().find(|(o, _)| {
                o.schema == cat.schema
                    && o.table == cat.table
                    && o.indexes.iter().any(|oi| oi.name == ix.name)
            }) {
                let what = match &ix.constraint {
                    Some((name, ..)) => format!("constraint {}", ident(name)),
                    None => format!("index {}", ident(&ix.name)),
                };
                refusals.push(format!(
                    "{what} of {} uses both {} and {}, which this migration both changes: versioned schemas rebuild an index for one changed column only; change these columns in migrations of their own (complete the first before the second)",
                    qualified(&cat.schema, &cat.table),
                    ident(&other.column),
                    ident(&cat.column)
                ));
            }
        }
    }
    let mut plans = Vec::new();
    for (cat, ch) in cols {
        match column_plan(cat, ch, f, &own) {
            // Several columns: each step says whose it is (`up` prints them one after another).
            Ok(mut p) if cols.len() > 1 => {
                for a in &mut p.about {
                    a.label = Some(format!("{}.{}", cat.table, cat.column));
                }
                plans.push(p)
            }
            Ok(p) => plans.push(p),
            // One column: the reason as before; several: which column it is about.
            Err(why) if cols.len() == 1 => refusals.push(why),
            Err(why) => refusals.push(format!(
                "column {}.{}: {why}",
                qualified(&cat.schema, &cat.table),
                ident(&cat.column)
            )),
        }
    }
    if !refusals.is_empty() {
        return Err(refusals.join("; "));
    }
    let vschema = ident(&schema_name(&f.version));
    // The tables in the migration's order, each once, with its changed columns.
    let mut tables: Vec<(&ColumnCatalog, Vec<&ColumnCatalog>)> = Vec::new();
    for (cat, _) in cols {
        match tables
            .iter_mut()
            .find(|(t, _)| t.schema == cat.schema && t.table == cat.table)
        {
            Some((_, changed)) => changed.push(cat),
            None => tables.push((cat, vec![cat])),
        }
    }
    let view_of = |t: &ColumnCatalog| format!("{vschema}.{}", ident(&t.table));

    let mut precheck = vec![format!(
        "BEGIN IF EXISTS (SELECT FROM pg_namespace WHERE nspname = {}) THEN RAISE EXCEPTION {}, {} USING ERRCODE = 'duplicate_schema'; END IF; END",
        literal(&schema_name(&f.version)),
        literal("schema % already exists: versioned schemas need the name for this migration's version; drop or rename it, then run sluice up again"),
        literal(&schema_name(&f.version)),
    )];
    let (mut expand, mut about) = (Vec::new(), Vec::new());
    for p in &plans {
        precheck.extend(p.precheck.iter().cloned());
        expand.extend(p.expand.iter().cloned());
        about.extend(p.about.iter().cloned());
    }

    // The version's schema, a view of each table and the table's grants on it, in one step.
    let mut views = Vec::new();
    for (t, changed) in &tables {
        let tq = qualified(&t.schema, &t.table);
        let view = view_of(t);
        let select = f
            .columns_of(t)
            .iter()
            .map(|col| match changed.iter().find(|c| c.column == *col) {
                Some(c) => format!("{} AS {}", ident(&names(c).column), ident(col)),
                None => ident(col),
            })
            .collect::<Vec<_>>()
            .join(", ");
        // Read when the step runs (a rerun sees the grants as they are then); the table's owner,
        // when not sluice's role, gets every privilege on the view as it has on the table.
        let grants = format!(
            "DECLARE r record; BEGIN \
FOR r IN SELECT a.privilege_type AS p, CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(a.grantee)) END AS g, a.is_grantable AS w \
FROM pg_class k, aclexplode(k.relacl) a WHERE k.oid = {tl}::regclass AND a.grantee <> k.relowner \
UNION SELECT 'ALL', quote_ident(pg_get_userbyid(k.relowner)), false FROM pg_class k WHERE k.oid = {tl}::regclass AND pg_get_userbyid(k.relowner) <> current_user \
LOOP EXECUTE format({on_view}, r.p, r.g, CASE WHEN r.w THEN ' WITH GRANT OPTION' ELSE '' END); \
EXECUTE format({on_schema}, r.g); END LOOP; END",
            tl = literal(&tq),
            on_view = literal(&format!("GRANT %s ON {} TO %s%s", view.replace('%', "%%"))),
            on_schema = literal(&format!(
                "GRANT USAGE ON SCHEMA {} TO %s",
                vschema.replace('%', "%%")
            )),
        );
        views.push(format!(
            "CREATE OR REPLACE VIEW {view} WITH (security_invoker = true) AS SELECT {select} FROM {tq}; {}",
            do_block(&grants)
        ));
    }
    // USAGE on the schema for everyone: PostgreSQL silently skips a search_path schema the role
    // may not use, so a role the view's grants miss (column-level grants, a role made after the
    // expand) would read the table's old type without an error; with USAGE it finds the view
    // and is refused by its privileges, loudly.
    expand.push(Step::Sql(format!(
        "CREATE SCHEMA IF NOT EXISTS {vschema}; GRANT USAGE ON SCHEMA {vschema} TO PUBLIC; {}; {}",
        views.join("; "),
        function_sql()
    )));
    about.push(About::new(
        if tables.len() == 1 {
            "create the new version's schema with a view of the table (the new column under the old name, security_invoker), the table's grants on it, and the search_path function"
        } else {
            "create the new version's schema with a view of each table (the new columns under the old names, security_invoker), each table's grants on its view, and the search_path function"
        },
        Lock::AccessShare,
        Effect::Instant,
        Blocks::Nothing,
    ));

    // The contract phase.
    // The views first: a query through one locks the view, then the table, so a contract that
    // took the table first and then waited for the view would deadlock with it (measured: the
    // server then cancels the application's query). Every trigger goes before any column: one
    // column's trigger reads the table's other columns.
    let drop_views: Vec<String> = tables
        .iter()
        .map(|(t, _)| format!("DROP VIEW IF EXISTS {}", view_of(t)))
        .chain([format!("DROP SCHEMA IF EXISTS {vschema}")])
        .collect();
    let unhook = plans.iter().flat_map(|p| p.unhook.iter().cloned());
    let mut complete = drop_views.clone();
    complete.extend(unhook.clone());
    complete.extend(plans.iter().flat_map(|p| p.complete.iter().cloned()));
    let mut rollback = drop_views;
    rollback.extend(unhook);
    rollback.extend(plans.iter().flat_map(|p| p.rollback.iter().cloned()));

    let set_sql = setting(&f.version, &f.search_path);
    let one = cols.len() == 1;
    let listed = |each: &dyn Fn(&ColumnCatalog, &Change) -> String| {
        cols.iter()
            .map(|(c, ch)| each(c, ch))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let before = match one {
        true => format!(
            "the old version reads and writes {} as {}; the new version must not run yet",
            first.column, first.data_type
        ),
        false => format!(
            "the old version reads and writes {}; the new version must not run yet",
            listed(&|c, _| format!("{}.{} as {}", c.table, c.column, c.data_type))
        ),
    };
    let views_words = tables
        .iter()
        .map(|(t, _)| view_of(t))
        .collect::<Vec<_>>()
        .join(", ");
    let expanded = format!(
        "both versions run. The old version (default search_path) uses the table{}: {}, as before. The new version runs `{set_sql}` (or `SELECT set_config('search_path', {SEARCH_PATH_FUNCTION}({}), false)`) and sees the view{} {views_words}: {}, every other column as in the table. {} An old-version write that USING cannot convert fails with the server's error, as the ALTER as written would on that value. That the down expression inverts USING is your claim, not checked: where it is lossy (non-invertible), a value the new version writes reaches the old version as the down expression gives it, and a write of the old version replaces the new version's value with USING of that",
        if tables.len() == 1 { "" } else { "s" },
        listed(&|c, _| match one {
            true => format!("{} is {}", c.column, c.data_type),
            false => format!("{}.{} is {}", c.table, c.column, c.data_type),
        }),
        literal(&f.version),
        if tables.len() == 1 { "" } else { "s" },
        listed(&|c, ch| match one {
            true => format!("{} is {}", c.column, ch.ty),
            false => format!("{}.{} is {}", c.table, c.column, ch.ty),
        }),
        plans
            .iter()
            .map(|p| p.expanded.as_str())
            .collect::<Vec<_>>()
            .join(" "),
    );
    let completed = format!(
        "only the new version may run: {} in the table{}, as the ALTER{} as written leave{} {} (the column{} now the table's last); the view{} and {vschema} are gone, and a search_path that still names it falls through to the table",
        listed(&|c, ch| match one {
            true => format!("{} is {}", c.column, ch.ty),
            false => format!("{}.{} is {}", c.table, c.column, ch.ty),
        }),
        if tables.len() == 1 { "" } else { "s" },
        if one { "" } else { "s" },
        if one { "s" } else { "" },
        if one { "it" } else { "them" },
        if one { " is" } else { "s are" },
        if tables.len() == 1 { "" } else { "s" },
    );
    let sees = vec![
        ("before".into(), before),
        ("expanded (after `sluice up`)".into(), expanded),
        ("completed (after `sluice complete`)".into(), completed),
        (
            "rolled back (after `sluice rollback`)".into(),
            format!(
                "only the old version may run: the view{}, {vschema}, the trigger{} and the new column{} are gone; the table{} as before the migration",
                if tables.len() == 1 { "" } else { "s" },
                if one { "" } else { "s" },
                if one { "" } else { "s" },
                if tables.len() == 1 { " is" } else { "s are" },
            ),
        ),
    ];

    Ok(Phases {
        precheck: precheck.iter().map(|b| do_block(b)).collect(),
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
        complete_description: "`sluice complete`: in one short transaction, drop the version's views and schema, the triggers and the old columns, give each new column its name and its index names",
        rollback_description: "`sluice rollback` (before complete): in one short transaction, drop the version's views and schema, the triggers and the new columns",
        expand_locks: vec![],
        phase_lock: None,
        rollback_lock: None,
        watch: None,
        // The down expression is the user's claim: `plan` says so as a finding too.
        old_version: cols
            .iter()
            .map(|(c, ch)| format!(
                "a value the new version writes into {} reaches the old version as `{}` gives it; sluice does not check that it inverts `{}`: where it is lossy (non-invertible), the old version sees the lossy value, and its next write of the row gives the new version USING of that",
                if one { c.column.clone() } else { format!("{}.{}", c.table, c.column) },
                ch.down,
                ch.up
            ))
            .chain(cols.iter().map(|(c, _)| {
                crate::plan::old_version::added_column_pg(&c.table, &names(c).column)
            }))
            .collect(),
    })
}

/// One column's part of the phases: its new column, its translating trigger (which reads and
/// sets only its own pair: the other columns' triggers never take its writes for the
/// application's), its backfill, its indexes and NOT NULL. `own`: every translating trigger of
/// the migration.
fn column_plan(
    cat: &ColumnCatalog,
    ch: &Change,
    f: &Facts,
    own: &[String],
) -> Result<ColumnPlan, String> {
    let mut refusals: Vec<String> = cat.blockers.clone();
    refusals.extend(
        cat.foreign_keys
            .iter()
            .map(|k| format!("{} depends on it", k.described)),
    );
    if cat.identity.is_some() || cat.owned_sequence.is_some() {
        refusals.push("the column is an identity or serial column".into());
    }
    if let Some(d) = &cat.default {
        refusals.push(format!("the column has a default ({d}), which is for the old type: drop it in an earlier migration and set the new one after complete"));
    }
    if let Some(ck) = cat.checks.first() {
        refusals.push(format!(
            "check {} uses the column (its expression is for the old type): drop it in an earlier migration and add it again after complete",
            ck.name
        ));
    }
    if cat.generated {
        refusals.push("the column is generated".into());
    }
    if cat.inheritance {
        refusals.push("the table is partitioned or has inheritance parents or children".into());
    }
    if !refusals.is_empty() && !f.started {
        return Err(format!(
            "{}: versioned schemas do not carry these yet",
            refusals.join("; ")
        ));
    }
    let n = names(cat);
    if let Some(later) = cat
        .before_triggers
        .iter()
        .find(|t| !f.started && t.as_bytes() > n.trigger.as_bytes() && !own.contains(t))
    {
        return Err(format!("trigger {later} fires after sluice's translating trigger {} (BEFORE triggers fire by name) and could change one column after the other was translated", n.trigger));
    }
    let t = qualified(&cat.schema, &cat.table);
    let schema = ident(&cat.schema);
    let c = ident(&cat.column);
    let nc = ident(&n.column);
    let func = format!("{schema}.{}", ident(&n.function));
    let trigger = ident(&n.trigger);
    let ty = ch.ty;
    let columns = f.columns_of(cat);

    // Each expression sees the row under the table's name: the column's name is the old value
    // for `up` and the new one for `down`; every other column is the table's (old) one.
    let row = |new_as_column: bool| {
        columns
            .iter()
            .map(|col| {
                let q = ident(col);
                if new_as_column && col == &cat.column {
                    format!("NEW.{nc} AS {q}")
                } else {
                    format!("NEW.{q} AS {q}")
                }
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    let alias = ident(&cat.table);
    let up = format!("(SELECT {} FROM (SELECT {}) AS {alias})", ch.up, row(false));
    let down = format!(
        "(SELECT {} FROM (SELECT {}) AS {alias})",
        ch.down,
        row(true)
    );

    let mut precheck = vec![
        format!(
            "BEGIN PERFORM NULL::{ty} IS DISTINCT FROM NULL::{ty}; EXCEPTION WHEN undefined_function THEN RAISE EXCEPTION {} USING ERRCODE = 'feature_not_supported'; END",
            literal(&format!("type {ty} has no equality operator, so sluice's translating trigger cannot tell which column a write changed"))
        ),
        // A new type with a default (a domain's DEFAULT) fills the new column on every INSERT of
        // the old version, which the trigger would take for the new version's write.
        format!(
            "BEGIN IF EXISTS (SELECT FROM pg_type WHERE oid = {}::regtype AND typdefaultbin IS NOT NULL) THEN RAISE EXCEPTION {} USING ERRCODE = 'feature_not_supported'; END IF; END",
            literal(ty),
            literal(&format!("the new type {} of column {} has a default (a domain's DEFAULT): an INSERT of the old version stores it in the new column, so sluice's translating trigger cannot tell the old version's inserts from the new version's; change the type to one without a default (e.g. the domain's base type), or run it as written with `sluice up --as-written`", ty.replace('%', "%%"), cat.column.replace('%', "%%")))
        ),
    ];
    // Both expressions planned against the table's columns (no row read): an unknown type,
    // function or column would otherwise fail the first translated write, after the expand
    // looked done. The down expression sees the column as the new type.
    let planned = |expr: &str, column_as: &str| {
        let cols = columns
            .iter()
            .map(|col| {
                if col == &cat.column {
                    format!("{column_as} AS {c}")
                } else {
                    format!("{alias}.{}", ident(col))
                }
            })
            .collect::<Vec<_>>()
            .join(", ");
        format!("PERFORM {expr} FROM (SELECT {cols} FROM {t} AS {alias} WHERE false) AS {alias}")
    };
    for (which, expr, column_as) in [
        ("USING expression", ch.up, c.clone()),
        ("down expression", ch.down, format!("NULL::{ty}")),
    ] {
        precheck.push(format!(
            "BEGIN {}; EXCEPTION WHEN OTHERS THEN RAISE EXCEPTION {}, SQLERRM USING ERRCODE = SQLSTATE; END",
            planned(expr, &column_as),
            // RAISE's format: a `%` of the user's (`id % 2`, a name) is a literal one.
            literal(&format!(
                "the {which} of this versioned type change does not work on {} ({which}: {}): %",
                t.replace('%', "%%"),
                expr.replace('%', "%%")
            ))
        ));
    }
    let mut expand = Vec::new();
    let mut about = Vec::new();

    // 1. the new column.
    expand.push(Step::Sql(format!(
        "ALTER TABLE {t} ADD COLUMN IF NOT EXISTS {nc} {ty}"
    )));
    about.push(About::catalog(
        "add a column of the new type beside the old one, nullable, no default (catalog only)",
    ));

    // 2. the translating trigger. An UPDATE of the new column that matches the old one already
    // (the backfill's, or a new-version write of an equal value) leaves the old one as it is.
    // Which column a write changed is told by the values' text, not `=`: an old type without
    // one (json) failed every UPDATE, and a type whose equality is coarser than its values
    // (citext's case, numeric's scale, interval, float's -0) hid a write. It compares and sets
    // its own pair only, so another column's trigger (before or after it) neither sees its
    // translation as a write nor is undone by it.
    let body = format!(
        "BEGIN IF TG_OP = 'INSERT' THEN IF NEW.{nc} IS NOT NULL THEN NEW.{c} := {down}; ELSE NEW.{nc} := {up}; END IF; \
ELSIF NEW.{nc}::text IS DISTINCT FROM OLD.{nc}::text THEN IF NEW.{c}::text IS DISTINCT FROM OLD.{c}::text OR NEW.{nc}::text IS DISTINCT FROM CAST({up} AS {ty})::text THEN NEW.{c} := {down}; END IF; \
ELSIF NEW.{c}::text IS DISTINCT FROM OLD.{c}::text THEN NEW.{nc} := {up}; END IF; RETURN NEW; END"
    );
    expand.push(Step::Sql(format!(
        "CREATE OR REPLACE FUNCTION {func}() RETURNS trigger LANGUAGE plpgsql AS {}; DROP TRIGGER IF EXISTS {trigger} ON {t}; CREATE TRIGGER {trigger} BEFORE INSERT OR UPDATE ON {t} FOR EACH ROW EXECUTE FUNCTION {func}()",
        literal(&body)
    )));
    about.push(About::new(
        "a trigger translates every insert and update: a write of the old column sets the new one through USING, a write of the new one sets the old one through the down expression (both written: the new one wins)",
        Lock::ShareRowExclusive,
        Effect::Instant,
        Blocks::Writes,
    ));

    // 3. the backfill.
    let set = format!("{nc} = {}", ch.up);
    expand.push(Step::Backfill {
        table: t.clone(),
        set: set.clone(),
        filter: Some(format!("{nc} IS DISTINCT FROM ({})", ch.up)),
        as_update: false,
    });
    about.push(About::new(
        "backfill existing rows in batches by primary key, each batch its own short transaction, paced on client latency",
        Lock::RowExclusive,
        Effect::Backfill,
        Blocks::Nothing,
    ));
    let checkpoint = crate::plan::staged::forget_backfill(cat, &set);
    precheck.push(crate::plan::alter_column_type::function_free(&func, &t));
    precheck.push(crate::plan::staged::reset_checkpoint(&checkpoint));

    // 4. indexes and NOT NULL on the new column.
    let mut keys = Vec::new();
    for ix in &cat.indexes {
        if let Some((name, 'x', ..)) = &ix.constraint {
            return Err(format!(
                "exclusion constraint {name} uses the column: versioned schemas do not carry it yet"
            ));
        }
        let tmp = tmp_index(&ix.name);
        let sql = index_on_shadow(&ix.definition, &cat.column, &n.column, &tmp, &t)
            .map_err(|why| format!("index {}: {why}", ix.name))?;
        let qtmp = format!("{schema}.{}", ident(&tmp));
        precheck.push(relation_free(&qtmp));
        expand.push(Step::Index {
            sql,
            index: qtmp.clone(),
        });
        about.push(About::concurrent_build(
            "build the index on the new column concurrently (reads and writes continue)",
        ));
        keys.push(attach_rebuilt(ix, &t, &tmp, &qtmp));
    }
    keys.sort_by_key(|a| !a[0].contains(" PRIMARY KEY USING INDEX "));
    expand.push(Step::Analyze {
        table: t.clone(),
        columns: vec![nc.clone()],
    });
    about.push(About::analyze());
    if cat.not_null {
        let helper = helper_name(&cat.table, &n.column, "sluice_not_null");
        precheck.push(constraint_free(&t, &helper));
        expand.push(Step::Sql(do_block(&format!(
            "BEGIN IF NOT EXISTS (SELECT FROM pg_constraint WHERE conrelid = {}::regclass AND conname = {}) THEN ALTER TABLE {t} ADD CONSTRAINT {} CHECK ({nc} IS NOT NULL) NOT VALID; END IF; END",
            literal(&t),
            literal(&helper),
            ident(&helper)
        ))));
        about.push(About::catalog(
            "NOT NULL of the new column as a check, for new rows only",
        ));
        expand.push(Step::Sql(do_block(&format!(
            "BEGIN IF EXISTS (SELECT FROM pg_constraint WHERE conrelid = {}::regclass AND conname = {}) THEN ALTER TABLE {t} VALIDATE CONSTRAINT {}; END IF; END",
            literal(&t),
            literal(&helper),
            ident(&helper)
        ))));
        about.push(About::validate("validate it (reads and writes continue)"));
        expand.push(Step::Sql(format!(
            "ALTER TABLE {t} ALTER COLUMN {nc} SET NOT NULL; ALTER TABLE {t} DROP CONSTRAINT IF EXISTS {}",
            ident(&helper)
        )));
        about.push(About::catalog(
            "SET NOT NULL on the new column (no scan: the valid check proves it), then drop the check",
        ));
    }

    let unhook = vec![
        format!("DROP TRIGGER IF EXISTS {trigger} ON {t}"),
        format!("DROP FUNCTION IF EXISTS {func}()"),
    ];
    let mut complete = vec![
        format!("ALTER TABLE {t} DROP COLUMN {c}"),
        format!("ALTER TABLE {t} RENAME COLUMN {nc} TO {c}"),
    ];
    complete.extend(keys.into_iter().flatten());
    if let Some(s) = cat.statistics {
        complete.push(format!(
            "ALTER TABLE {t} ALTER COLUMN {c} SET STATISTICS {s}"
        ));
    }
    if let Some(text) = &cat.comment {
        complete.push(format!("COMMENT ON COLUMN {t}.{c} IS {}", literal(text)));
    }
    complete.push(checkpoint.clone());
    let rollback = vec![
        format!("ALTER TABLE {t} DROP COLUMN IF EXISTS {nc}"),
        checkpoint,
    ];
    let expanded = format!(
        "The trigger {} translates each write of {}: old → new with `{}`, new → old with `{}`.",
        n.trigger, cat.column, ch.up, ch.down
    );
    Ok(ColumnPlan {
        precheck,
        expand,
        about,
        unhook,
        complete,
        rollback,
        expanded,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{CheckFacts, IndexFacts};

    fn cat() -> ColumnCatalog {
        ColumnCatalog {
            schema: "app".into(),
            table: "Docs".into(),
            column: "body".into(),
            data_type: "text".into(),
            not_null: true,
            indexes: vec![IndexFacts {
                name: "docs_body_idx".into(),
                definition: "CREATE INDEX docs_body_idx ON app.\"Docs\" USING btree (body)".into(),
                ..Default::default()
            }],
            server_version: 150004,
            ..Default::default()
        }
    }

    fn facts() -> Facts {
        Facts {
            started: false,
            version: "20260301120000".into(),
            columns: vec![(
                ("app".into(), "Docs".into()),
                vec!["id".into(), "body".into(), "note".into()],
            )],
            search_path: "\"$user\", public".into(),
        }
    }

    const CH: Change = Change {
        ty: "jsonb",
        up: "body::jsonb",
        down: "body::text",
    };

    #[test]
    fn phases_of_a_versioned_type_change() {
        let p = phases(&[(&cat(), CH)], &facts()).unwrap();
        let sql: Vec<String> = p.expand.iter().map(Step::text).collect();
        assert_eq!(
            sql[0],
            "ALTER TABLE \"app\".\"Docs\" ADD COLUMN IF NOT EXISTS \"body_sluice_versioned\" jsonb"
        );
        // Each direction sees the row under the table's name, the column standing for the value
        // it converts from.
        assert!(sql[1].contains("(SELECT body::jsonb FROM (SELECT NEW.\"id\" AS \"id\", NEW.\"body\" AS \"body\", NEW.\"note\" AS \"note\") AS \"Docs\")"), "{}", sql[1]);
        assert!(sql[1].contains("(SELECT body::text FROM (SELECT NEW.\"id\" AS \"id\", NEW.\"body_sluice_versioned\" AS \"body\", NEW.\"note\" AS \"note\") AS \"Docs\")"), "{}", sql[1]);
        assert!(sql[2].starts_with("backfill in batches: UPDATE \"app\".\"Docs\" SET \"body_sluice_versioned\" = body::jsonb"));
        assert!(sql[3].contains("CREATE INDEX CONCURRENTLY IF NOT EXISTS \"docs_body_idx_sluice_versioned\" ON \"app\".\"Docs\" USING btree (\"body_sluice_versioned\")"), "{}", sql[3]);
        assert!(sql.iter().any(|s| s.contains("SET NOT NULL")));
        let last = sql.last().unwrap();
        assert!(last.contains("CREATE OR REPLACE VIEW \"sluice_v20260301120000\".\"Docs\" WITH (security_invoker = true) AS SELECT \"id\", \"body_sluice_versioned\" AS \"body\", \"note\" FROM \"app\".\"Docs\""), "{last}");
        let complete = p.complete.join("; ");
        for part in [
            "DROP SCHEMA IF EXISTS \"sluice_v20260301120000\"",
            "ALTER TABLE \"app\".\"Docs\" DROP COLUMN \"body\"",
            "RENAME COLUMN \"body_sluice_versioned\" TO \"body\"",
            "ALTER INDEX \"app\".\"docs_body_idx_sluice_versioned\" RENAME TO \"docs_body_idx\"",
        ] {
            assert!(complete.contains(part), "{part}: {complete}");
        }
        // The view goes first (queries through it lock it before the table); CASCADE never.
        assert!(complete.starts_with("DROP VIEW IF EXISTS \"sluice_v20260301120000\".\"Docs\""));
        assert!(p.rollback[0].starts_with("DROP VIEW"));
        assert!(!complete.contains("CASCADE"));
        assert!(p
            .rollback
            .iter()
            .any(|s| s.contains("DROP COLUMN IF EXISTS \"body_sluice_versioned\"")));
        let expanded = &p.sees[1].1;
        assert!(expanded.contains("SET search_path TO sluice_v20260301120000, \"$user\", public"));
        assert!(expanded.contains("non-invertible"));
    }

    #[test]
    fn refuses_what_it_cannot_carry_with_the_reason() {
        type Change = dyn Fn(&mut ColumnCatalog);
        let cases: &[(&str, &Change, &str)] = &[
            (
                "PostgreSQL 14",
                &|c| c.server_version = 140010,
                "PostgreSQL 15",
            ),
            (
                "default",
                &|c| c.default = Some("'{}'::text".into()),
                "has a default",
            ),
            (
                "check",
                &|c| {
                    c.checks.push(CheckFacts {
                        name: "docs_body_check".into(),
                        definition: "CHECK (body <> '')".into(),
                        validated: true,
                    })
                },
                "check docs_body_check uses the column",
            ),
            (
                "view",
                &|c| c.blockers.push("view v depends on it".into()),
                "view v",
            ),
            (
                "identity",
                &|c| c.identity = Some(Default::default()),
                "identity",
            ),
            ("generated", &|c| c.generated = true, "generated"),
            ("inheritance", &|c| c.inheritance = true, "partitioned"),
            (
                "late trigger",
                &|c| c.before_triggers.push("zzz".into()),
                "fires after",
            ),
            (
                "exclusion",
                &|c| c.indexes[0].constraint = Some(("ex".into(), 'x', false, false)),
                "exclusion constraint ex",
            ),
        ];
        for (what, change, message) in cases {
            let mut c = cat();
            change(&mut c);
            let e = phases(&[(&c, CH)], &facts()).unwrap_err();
            assert!(e.contains(message), "{what}: {e}");
        }
    }

    /// Two columns of one table and one of another: one schema, one view per table with every
    /// changed column under its name, a trigger per column (the other's trigger never refuses
    /// it), every trigger dropped before any column.
    #[test]
    fn several_columns_share_one_schema() {
        let body = cat();
        let mut meta = cat();
        meta.column = "meta".into();
        meta.not_null = false;
        meta.indexes.clear();
        // The rerun of a cut-off expand: body's trigger fires after meta's by name.
        meta.before_triggers = vec![names(&body).trigger];
        let mut other = cat();
        other.table = "tags".into();
        other.column = "data".into();
        other.indexes.clear();
        let mut f = facts();
        f.columns = vec![
            (
                ("app".into(), "Docs".into()),
                vec!["id".into(), "meta".into(), "body".into()],
            ),
            (
                ("app".into(), "tags".into()),
                vec!["id".into(), "data".into()],
            ),
        ];
        let ch = |up, down| Change {
            ty: "jsonb",
            up,
            down,
        };
        let p = phases(
            &[
                (&meta, ch("meta::jsonb", "meta::text")),
                (&body, ch("body::jsonb", "body::text")),
                (&other, ch("data::jsonb", "data::text")),
            ],
            &f,
        )
        .unwrap();
        let sql: Vec<String> = p.expand.iter().map(Step::text).collect();
        let last = sql.last().unwrap();
        assert_eq!(last.matches("CREATE SCHEMA").count(), 1, "{last}");
        assert!(last.contains("CREATE OR REPLACE VIEW \"sluice_v20260301120000\".\"Docs\" WITH (security_invoker = true) AS SELECT \"id\", \"meta_sluice_versioned\" AS \"meta\", \"body_sluice_versioned\" AS \"body\" FROM \"app\".\"Docs\""), "{last}");
        assert!(last.contains("CREATE OR REPLACE VIEW \"sluice_v20260301120000\".\"tags\" WITH (security_invoker = true) AS SELECT \"id\", \"data_sluice_versioned\" AS \"data\" FROM \"app\".\"tags\""), "{last}");
        assert_eq!(
            sql.iter().filter(|s| s.contains("CREATE TRIGGER")).count(),
            3
        );
        // Each trigger reads and sets its own pair only.
        let meta_trigger = sql
            .iter()
            .find(|s| s.contains("CREATE TRIGGER") && s.contains("meta"))
            .unwrap();
        assert!(
            !meta_trigger.contains("body_sluice_versioned"),
            "{meta_trigger}"
        );
        let last_trigger = p
            .complete
            .iter()
            .rposition(|s| s.starts_with("DROP FUNCTION"))
            .unwrap();
        let first_column = p
            .complete
            .iter()
            .position(|s| s.contains("DROP COLUMN"))
            .unwrap();
        assert!(last_trigger < first_column, "{:?}", p.complete);
        assert_eq!(
            p.complete
                .iter()
                .filter(|s| s.starts_with("DROP VIEW"))
                .count(),
            2
        );
        assert_eq!(
            p.rollback
                .iter()
                .filter(|s| s.contains("DROP COLUMN IF EXISTS"))
                .count(),
            3
        );
        // Per column: the down expression's claim, and the added column on the table.
        assert_eq!(p.old_version.len(), 6);
        assert_eq!(
            p.old_version
                .iter()
                .filter(|t| t.contains("cached plan must not change result type"))
                .count(),
            3
        );
        // A refusal names its column.
        let mut bad = other.clone();
        bad.default = Some("'{}'".into());
        let e = phases(
            &[
                (&body, ch("body::jsonb", "body::text")),
                (&bad, ch("data::jsonb", "data::text")),
            ],
            &f,
        )
        .unwrap_err();
        assert!(
            e.starts_with("column \"app\".\"tags\".\"data\": the column has a default"),
            "{e}"
        );
    }

    /// What several columns cannot share: an index over two changed columns of one table (any
    /// shape: the catalog lists it under each column it uses), and one table name in two schemas.
    #[test]
    fn several_columns_refuse_a_shared_index_and_a_shared_name() {
        let ch = |up, down| Change {
            ty: "jsonb",
            up,
            down,
        };
        let index = |name: &str, def: &str, constraint: Option<char>| IndexFacts {
            name: name.into(),
            definition: def.into(),
            constraint: constraint.map(|k| (name.into(), k, false, false)),
            ..Default::default()
        };
        let cases = [
            (
                index("docs_bm", "CREATE INDEX docs_bm ON app.\"Docs\" USING btree (body, meta)", None),
                "index \"docs_bm\" of \"app\".\"Docs\" uses both \"body\" and \"meta\"",
            ),
            (
                index("docs_bm_key", "CREATE UNIQUE INDEX docs_bm_key ON app.\"Docs\" USING btree (body, meta)", Some('u')),
                "constraint \"docs_bm_key\" of \"app\".\"Docs\" uses both \"body\" and \"meta\"",
            ),
            (
                index("docs_b_where", "CREATE INDEX docs_b_where ON app.\"Docs\" USING btree (body) WHERE (meta IS NOT NULL)", None),
                "index \"docs_b_where\" of",
            ),
            (
                index("docs_b_m", "CREATE INDEX docs_b_m ON app.\"Docs\" USING btree ((body || meta))", None),
                "index \"docs_b_m\" of",
            ),
        ];
        for (ix, message) in cases {
            let mut body = cat();
            body.indexes.push(ix.clone());
            let mut meta = cat();
            meta.column = "meta".into();
            meta.indexes = vec![ix];
            let e = phases(
                &[
                    (&body, ch("body::jsonb", "body::text")),
                    (&meta, ch("meta::jsonb", "meta::text")),
                ],
                &facts(),
            )
            .unwrap_err();
            assert!(e.contains(message), "{e}");
            assert!(e.contains("in migrations of their own"), "{e}");
        }
        // A whole-row reference (the table's name as a value) reads the other changed column
        // too; with one changed column, or a column named like the table, it does not.
        let body = cat();
        let mut meta = cat();
        meta.column = "meta".into();
        let whole = "(to_jsonb(\"Docs\") ->> 'meta')::jsonb";
        let mut f = facts();
        f.columns = vec![(
            ("app".into(), "Docs".into()),
            vec!["id".into(), "meta".into(), "body".into()],
        )];
        let e = phases(
            &[
                (&body, ch(whole, "body::text")),
                (&meta, ch("meta::jsonb", "meta::text")),
            ],
            &f,
        )
        .unwrap_err();
        assert!(e.contains("reads the whole row of Docs"), "{e}");
        assert!(e.contains("in migrations of their own"), "{e}");
        let alone = phases(&[(&body, ch(whole, "body::text"))], &f);
        assert!(
            alone
                .as_ref()
                .err()
                .is_none_or(|e| !e.contains("whole row")),
            "{:?}",
            alone.err()
        );
        f.columns[0].1.push("Docs".into());
        let named = phases(
            &[
                (&body, ch(whole, "body::text")),
                (&meta, ch("meta::jsonb", "meta::text")),
            ],
            &f,
        );
        assert!(
            named
                .as_ref()
                .err()
                .is_none_or(|e| !e.contains("whole row")),
            "{:?}",
            named.err()
        );
        // The same table name in two schemas.
        let a = cat();
        let mut b = cat();
        b.schema = "b".into();
        let mut f = facts();
        f.columns.push((
            ("b".into(), "Docs".into()),
            vec!["id".into(), "body".into()],
        ));
        let e = phases(
            &[
                (&a, ch("body::jsonb", "body::text")),
                (&b, ch("body::jsonb", "body::text")),
            ],
            &f,
        )
        .unwrap_err();
        assert!(
            e.starts_with("tables \"app\".\"Docs\" and \"b\".\"Docs\" have the same name"),
            "{e}"
        );
    }

    #[test]
    fn the_setting_quotes_only_what_needs_it() {
        assert_eq!(
            setting("7", "public"),
            "SET search_path TO sluice_v7, public"
        );
        assert_eq!(
            setting("2019-01-01-000000", "public"),
            "SET search_path TO \"sluice_v2019-01-01-000000\", public"
        );
    }
}
