//! Column type changes: catalog-only when binary coercible (PostgreSQL) or instant/in-place
//! (MariaDB/MySQL); otherwise a rewrite (PostgreSQL) or a copy (MariaDB/MySQL). On PostgreSQL a
//! rewriting change runs staged (expand/contract, [`staged`]) from what the live catalog says the
//! column carries; offline (lint) the plan can only say what it costs as written.

use super::*;

/// Catalog-only on PostgreSQL (old type known): the same judgement the `alter-column-type` rule
/// makes, so lint and plan never disagree. timestamp ↔ timestamptz counts only when the session
/// TimeZone is UTC, which the planner cannot assume.
pub fn pg_binary_coercible(old: &str, new: &str) -> bool {
    pg_change(&parse_type(old), &parse_type(new)) == Change::CatalogOnly
}

/// As [`pg_binary_coercible`], knowing whether the session TimeZone is UTC where the statement
/// runs: then timestamp ↔ timestamptz is catalog-only too (PostgreSQL 12+).
pub fn pg_binary_coercible_in(
    old: &str,
    new: &str,
    utc: bool,
    target: crate::target::Target,
) -> bool {
    match pg_change(&parse_type(old), &parse_type(new)) {
        Change::CatalogOnly => true,
        Change::RewriteUnlessUtc => utc && target.at_least(12, 0),
        Change::Rewrite => false,
    }
}

/// True when an earlier statement of the part (before the one holding `a`) left the session
/// TimeZone at a UTC zone.
fn utc_before(a: &Action, ctx: &Ctx) -> bool {
    let mut utc = ctx.session_utc;
    for s in ctx.statements {
        if s.actions().iter().any(|x| std::ptr::eq(x, a)) {
            break;
        }
        if let Some(z) = crate::session::time_zone_set_by(s) {
            utc = z.is_some_and(|z| crate::session::is_utc_zone(&z));
        }
    }
    utc
}

pub fn plan(a: &Action, ctx: &Ctx) -> OpPlan {
    let Action::AlterColumnType {
        table,
        column,
        new_type,
        using,
        ..
    } = a
    else {
        unreachable!()
    };
    if ctx.target.engine.is_mysql_family() {
        return OpPlan {
            impact: impact("ALGORITHM=COPY", Effect::Copy, Blocks::Writes, "the table is copied while writes wait (unless the change is instant, e.g. a VARCHAR widening in the same length class)"),
            safe_steps: vec![Step::new("online copy into a shadow table with triggers, checksummed, then an atomic rename", "(online schema change)", "metadata lock at cut-over only", Effect::Copy, Blocks::Nothing)],
            refused: None,
            staged: false,
        };
    }
    let old = ctx.column_type(table, column);
    if !using
        && old.is_some_and(|o| pg_binary_coercible_in(o, new_type, utc_before(a, ctx), ctx.target))
    {
        return OpPlan::safe_as_written(impact(
            "ACCESS EXCLUSIVE",
            Effect::Instant,
            Blocks::ReadsAndWrites,
            "binary coercible: catalog only",
        ));
    }
    OpPlan {
        impact: impact(
            "ACCESS EXCLUSIVE",
            Effect::Rewrite,
            Blocks::ReadsAndWrites,
            match old {
                Some(o) => format!("{o} → {new_type} rewrites the table and its indexes"),
                None => format!("→ {new_type}: rewrites the table unless the change is binary coercible (old type unknown offline)"),
            },
        ),
        safe_steps: vec![],
        refused: Some("a type change that rewrites the table runs staged only where `sluice up` reads the live catalog (shadow column, trigger, backfill, rebuilt indexes and constraints, swap); as written it rewrites under ACCESS EXCLUSIVE".into()),
        staged: false,
    }
}

// ---------------------------------------------------------------------------------------------
// The judgement: what a type change does to a PostgreSQL table (lint's `alter-column-type` rule,
// the plan and `up` all ask these)

use sqlparser::ast::{AlterColumnOperation, AlterTableOperation, Expr, Statement};

/// A column type whatever spelling the migration (or the live schema) used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SqlType {
    /// Canonical lower-case name: `varchar`, `bpchar`, `text`, `numeric`, `int4`, `int8`, `timestamp`,
    /// `timestamptz`, `serial`, `json`, ...; other types lower-cased as written.
    pub base: String,
    /// Type modifiers: length, or precision and scale (numeric scale filled in: `numeric(5)` = `numeric(5,0)`).
    pub args: Vec<u32>,
    pub array: bool,
    /// MySQL `UNSIGNED`.
    pub unsigned: bool,
}

impl SqlType {
    /// 32-bit or narrower integer types (including PostgreSQL serial/smallserial).
    pub fn is_small_int(&self) -> bool {
        !self.array
            && matches!(
                self.base.as_str(),
                "int4" | "int2" | "int3" | "serial" | "smallserial"
            )
    }

    pub fn is(&self, base: &str) -> bool {
        !self.array && self.base == base
    }
}

/// Parses a type as printed by sqlparser (`VARCHAR(20)`, `TIMESTAMP(3) WITHOUT TIME ZONE`, `INT(11) UNSIGNED`)
/// or by the catalog (`character varying(20)`, `numeric(10,2)`, `integer[]`).
pub(crate) fn parse_type(text: &str) -> SqlType {
    // On slices of `text`: three rules parse every column of every CREATE TABLE.
    let mut s = text.trim();
    let mut array = false;
    loop {
        let t = s.trim_end();
        if t.ends_with(']') {
            if let Some(open) = t.rfind('[') {
                s = &t[..open];
                array = true;
                continue;
            }
        }
        let b = t.as_bytes();
        if b.len() >= 6 && b[b.len() - 6..].eq_ignore_ascii_case(b" ARRAY") {
            s = &t[..t.len() - 6];
            array = true;
            continue;
        }
        s = t;
        break;
    }
    // Modifiers in parentheses; the words around them form the name.
    let mut args = Vec::new();
    let (mut head, mut tail) = (s, "");
    if let Some(open) = s.find('(') {
        if let Some(len) = s[open..].find(')') {
            let inner = &s[open + 1..open + len];
            args = inner
                .split(',')
                .filter_map(|a| a.trim().parse::<u32>().ok())
                .collect();
            (head, tail) = (&s[..open], &s[open + len + 1..]);
        }
    }
    let mut unsigned = false;
    let mut name_words: Vec<&str> = Vec::new();
    for w in head.split_whitespace().chain(tail.split_whitespace()) {
        if w.eq_ignore_ascii_case("UNSIGNED") {
            unsigned = true;
        } else if !(w.eq_ignore_ascii_case("SIGNED") || w.eq_ignore_ascii_case("ZEROFILL")) {
            name_words.push(w);
        }
    }
    let quoted = name_words.len() == 1 && name_words[0].starts_with('"');
    let name = if quoted {
        name_words[0].to_string()
    } else {
        let mut n = name_words.join(" ");
        n.make_ascii_uppercase();
        n
    };
    let name = name.strip_prefix("PG_CATALOG.").unwrap_or(&name);
    let base = match name {
        "VARCHAR" | "CHARACTER VARYING" | "CHAR VARYING" | "NVARCHAR" => "varchar",
        "CHAR" | "CHARACTER" | "BPCHAR" | "NCHAR" => "bpchar",
        "TEXT" => "text",
        "NUMERIC" | "DECIMAL" | "DEC" => "numeric",
        "VARBIT" | "BIT VARYING" => "varbit",
        "BIT" => "bit",
        "TIMESTAMP" | "TIMESTAMP WITHOUT TIME ZONE" => "timestamp",
        "TIMESTAMPTZ" | "TIMESTAMP WITH TIME ZONE" => "timestamptz",
        "TIME" | "TIME WITHOUT TIME ZONE" => "time",
        "TIMETZ" | "TIME WITH TIME ZONE" => "timetz",
        "INTERVAL" => "interval",
        "INT" | "INTEGER" | "INT4" => "int4",
        "SMALLINT" | "INT2" => "int2",
        "BIGINT" | "INT8" => "int8",
        "MEDIUMINT" => "int3",
        "TINYINT" => "int1",
        "SERIAL" | "SERIAL4" => "serial",
        "BIGSERIAL" | "SERIAL8" => "bigserial",
        "SMALLSERIAL" | "SERIAL2" => "smallserial",
        "JSON" => "json",
        "JSONB" => "jsonb",
        "CIDR" => "cidr",
        "INET" => "inet",
        _ => "",
    };
    let base = if base.is_empty() {
        name.to_lowercase()
    } else {
        base.to_string()
    };
    if base == "numeric" && args.len() == 1 {
        args.push(0);
    }
    SqlType {
        base,
        args,
        array,
        unsigned,
    }
}

/// What PostgreSQL does to the table when a column changes from `old` to `new`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Change {
    CatalogOnly,
    /// `timestamp` ↔ `timestamptz`: catalog-only on PostgreSQL 12+ when the session TimeZone is UTC.
    RewriteUnlessUtc,
    Rewrite,
}

pub(crate) fn pg_change(old: &SqlType, new: &SqlType) -> Change {
    if old.base == new.base && old.args == new.args && old.array == new.array {
        return Change::CatalogOnly;
    }
    if old.array || new.array {
        return Change::Rewrite;
    }
    let widen = |o: &[u32], n: &[u32]| n.is_empty() || (!o.is_empty() && n[0] >= o[0]);
    let ok = match (old.base.as_str(), new.base.as_str()) {
        ("varchar" | "text", "text") => true,
        ("varchar" | "text", "varchar") if new.args.is_empty() => true,
        ("varchar", "varchar") => widen(&old.args, &new.args),
        ("numeric", "numeric") => {
            new.args.is_empty()
                || (old.args.len() == 2
                    && new.args.len() == 2
                    && new.args[1] == old.args[1]
                    && new.args[0] >= old.args[0])
        }
        ("varbit", "varbit") => widen(&old.args, &new.args),
        ("bit", "varbit") => new.args.is_empty(),
        ("cidr", "inet") => true,
        (o @ ("timestamp" | "timestamptz" | "time" | "timetz" | "interval"), n) if o == n => {
            widen(&old.args, &new.args)
        }
        ("timestamp", "timestamptz") | ("timestamptz", "timestamp") => {
            return if widen(&old.args, &new.args) {
                Change::RewriteUnlessUtc
            } else {
                Change::Rewrite
            };
        }
        _ => false,
    };
    if ok {
        Change::CatalogOnly
    } else {
        Change::Rewrite
    }
}

/// For the reverse trigger of a kept type change: a condition on the new column's `value` that is
/// true exactly when assigning it to the old type succeeds ("true" when it always does), for the
/// pairs where one is known. Without it the trigger catches the cast's error instead, which opens
/// a subtransaction on every write: beyond 64 in one client transaction the server's snapshots
/// overflow to `pg_subtrans`, slowing every session (and more so on replicas).
pub(crate) fn back_guard(old: &SqlType, new: &SqlType, value: &str) -> Option<String> {
    if old.array || new.array || old.unsigned || new.unsigned {
        return None;
    }
    let int_range = |t: &str| match t {
        "int2" => Some((i16::MIN as i64, i16::MAX as i64)),
        "int4" => Some((i32::MIN as i64, i32::MAX as i64)),
        "int8" => Some((i64::MIN, i64::MAX)),
        _ => None,
    };
    let o = old.base.as_str();
    let n = new.base.as_str();
    match (o, n) {
        (_, _) if int_range(o).is_some() && int_range(n).is_some() => {
            let (lo, hi) = int_range(o)?;
            Some(if int_range(n)?.0 >= lo && int_range(n)?.1 <= hi {
                "true".into()
            } else {
                format!("{value} BETWEEN {lo} AND {hi}")
            })
        }
        // numeric to an integer rounds half away from zero, as round() does; NaN and infinity
        // compare above every number.
        (_, "numeric") if int_range(o).is_some() => {
            let (lo, hi) = int_range(o)?;
            Some(format!("round({value}) BETWEEN {lo} AND {hi}"))
        }
        ("numeric", _) if old.args.is_empty() && (n == "numeric" || int_range(n).is_some()) => {
            Some("true".into())
        }
        // The old precision and scale: the value rounded to the scale must have fewer integer
        // digits than precision minus scale allows. NaN fits any numeric; infinity none.
        ("numeric", _) if old.args.len() == 2 && (n == "numeric" || int_range(n).is_some()) => {
            let (p, sc) = (old.args[0], old.args[1]);
            let digits = p.checked_sub(sc)?;
            Some(format!(
                "({value} = 'NaN' OR abs(round({value}, {sc})) < 1e{digits})"
            ))
        }
        // Longer strings fail unless the excess is spaces only (which the server cuts off).
        ("varchar", "varchar" | "text") if old.args.len() == 1 => Some(format!(
            "char_length(rtrim({value}, ' ')) <= {}",
            old.args[0]
        )),
        ("varchar" | "text", "varchar" | "text") => Some("true".into()),
        // Between the two timestamp types only a value within a day of the ends of the range can
        // overflow when shifted by a zone offset.
        ("timestamp" | "timestamptz", "timestamp" | "timestamptz") => Some(format!(
            "(NOT isfinite({value}) OR {value} BETWEEN '4713-01-02 BC' AND '294276-12-30')"
        )),
        _ => None,
    }
}

/// True when the `USING` expression is only the column itself (optionally cast to the new type):
/// PostgreSQL then decides as without `USING` (verified: `USING col` and `USING col::text` keep the file).
pub(crate) fn trivial_using(using: &Expr, column: &str, new: &SqlType) -> bool {
    let is_col = |e: &Expr| match e {
        Expr::Identifier(i) => i.value.eq_ignore_ascii_case(column),
        _ => false,
    };
    match using {
        Expr::Nested(e) => trivial_using(e, column, new),
        Expr::Cast {
            expr, data_type, ..
        } => is_col(expr) && parse_type(&data_type.to_string()) == *new,
        e => is_col(e),
    }
}

/// The `USING` expressions of this statement, by column (lower-cased).
pub(crate) fn usings(st: &Stmt) -> Vec<(String, Expr)> {
    let mut out = Vec::new();
    if let Some(Statement::AlterTable(at)) = st.ast.as_deref() {
        for op in &at.operations {
            if let AlterTableOperation::AlterColumn {
                column_name,
                op: AlterColumnOperation::SetDataType { using: Some(u), .. },
            } = op
            {
                let name = match column_name.quote_style {
                    Some(_) => column_name.value.clone(),
                    None => column_name.value.to_lowercase(),
                };
                out.push((name, u.clone()));
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// The staged form on PostgreSQL (expand/contract in one statement)

use super::staged::{About, Lock, Rewrite, Step as RStep};
use crate::engine::ColumnCatalog;
use crate::quote::pg::{ident, literal, qualified};

/// The staged steps of a rewriting `ALTER TABLE t ALTER COLUMN c TYPE new [USING e]` on
/// PostgreSQL 12+, from the live catalog of the column; Err: why it cannot be staged (the
/// statement is then refused, as before).
///
/// 1. `ADD COLUMN` a shadow of the new type (catalog only);
/// 2. a trigger keeping shadow = e (default: c, cast as the ALTER casts: assignment) on every write,
///    with the session settings a cast may read (TimeZone, DateStyle, ...) pinned to the run's;
/// 3. the checkpointed backfill of existing rows;
/// 4. every index, unique/primary key, CHECK and NOT NULL of c rebuilt on the shadow
///    (CONCURRENTLY, NOT VALID + VALIDATE);
/// 5. every foreign key c is in (either side) copied onto the shadow, NOT VALID + VALIDATE;
/// 6. one short swap under the lock discipline: drop the trigger and the original foreign keys,
///    rename the shadow, attach the keys USING INDEX, rename indexes, checks and foreign key copies
///    to their names, default, identity or owned sequence, statistics target and comment.
///
/// With `keep` (the migration is this statement alone, or with the views and policies its swap
/// moves around it, issue 13 point 4) and a change without a
/// `USING` expression other than the column itself, the swap keeps the old column under
/// [`old_name`] instead of dropping it, stripped of what could block a write (NOT NULL, default,
/// identity; its indexes and constraints go: they were rebuilt on the new column, and a rollback
/// rebuilds them on the old one in the staged forms before it swaps back), and kept equal to the
/// new column cast back by a reverse trigger until `sluice complete`. A `USING` expression has no
/// known inverse, so such a change drops the old column at the swap, as before.
pub fn staged(
    st: &crate::analysis::ir::Stmt,
    cat: &ColumnCatalog,
    keep: bool,
) -> Result<(Rewrite, bool), String> {
    staged_around(st, cat, keep, &Around::default())
}

/// [`staged`], with the migration's statements `around` it (views and policies dropped before
/// and re-created after) run inside the swap's transaction.
pub fn staged_around(
    st: &crate::analysis::ir::Stmt,
    cat: &ColumnCatalog,
    keep: bool,
    around: &Around,
) -> Result<(Rewrite, bool), String> {
    use sqlparser::ast::{AlterColumnOperation, AlterTableOperation, Statement};
    let Some(Statement::AlterTable(at)) = st.ast.as_deref() else {
        return Err("sluice's parser could not read the statement".into());
    };
    if !super::staged::plain_alter(at) {
        return Err("the staged steps name the table plainly, which for ONLY or IF EXISTS would change what the statement does; write it without them".into());
    }
    if at.operations.len() != 1 {
        return Err(
            "several changes in one ALTER TABLE: write the type change as a statement of its own"
                .into(),
        );
    }
    let AlterTableOperation::AlterColumn {
        op: AlterColumnOperation::SetDataType {
            data_type, using, ..
        },
        ..
    } = &at.operations[0]
    else {
        return Err("not a plain type change".into());
    };
    if !super::staged::faithful(&st.sql, st.ast.as_deref().expect("checked")) {
        return Err("sluice's parser does not keep every clause of it, so a staged form could lose one; simplify the statement".into());
    }
    if cat.server_version < 120000 {
        return Err(
            "the staged form needs PostgreSQL 12 (SET NOT NULL proven by a validated check)".into(),
        );
    }
    let left = around.remaining(cat);
    if !left.is_empty() {
        return Err(refusal(&left, cat));
    }
    let new_type = data_type.to_string();
    // The old column is kept only where a rollback can undo the statements around it too (it
    // runs them again around its swap back).
    let keep = keep
        && around.keepable()
        && using
            .as_ref()
            .is_none_or(|u| trivial_using(u, &cat.column, &parse_type(&new_type)));
    let t = qualified(&cat.schema, &cat.table);
    let c = ident(&cat.column);
    let shadow_name = super::helper_name(&cat.column, "", "sluice_new");
    let shadow = ident(&shadow_name);
    let (trigger_name, func) = sync_names(cat, "sluice_sync");
    let trigger = ident(&trigger_name);

    // What a row's new value is: as the ALTER computes it, the USING expression (or the column)
    // assigned to the new type.
    let (set_expr, trigger_expr) = match using {
        None => (c.clone(), format!("NEW.{c}")),
        Some(u) => (
            format!("({u})"),
            format!(
                "(SELECT ({u}) FROM (SELECT NEW.*) AS {})",
                ident(&cat.table)
            ),
        ),
    };

    let mut about = vec![About::catalog(
        "add the shadow column of the new type, nullable, no default (catalog only)",
    )];
    let mut then = Vec::new();
    let mut precheck = vec![
        column_free(&t, &shadow_name, &cat.table),
        function_free(&func, &t),
    ];
    if keep {
        precheck.push(function_free(&sync_names(cat, "sluice_back").1, &t));
    }
    let old = old_name(&cat.column);
    if keep {
        precheck.push(column_free(&t, &old, &cat.table));
    }

    // 2. the trigger.
    let body = format!("BEGIN NEW.{shadow} := {trigger_expr}; RETURN NEW; END");
    then.push(RStep::Sql(format!(
        "{}; CREATE TRIGGER {trigger} BEFORE INSERT OR UPDATE ON {t} FOR EACH ROW EXECUTE FUNCTION {func}()",
        create_function(&func, &body)
    )));
    about.push(About::new(
        "a trigger keeps the shadow column equal to the converted value on every insert and update",
        Lock::ShareRowExclusive,
        Effect::Instant,
        Blocks::Writes,
    ));

    // 3. the backfill.
    let set = format!("{shadow} = {set_expr}");
    then.push(RStep::Backfill {
        table: t.clone(),
        set: set.clone(),
        // A row whose value converts to NULL is done as it is: without the second condition a
        // table without a primary key (walked by ctid, pass after pass until no row matches)
        // never finished while one row held NULL.
        filter: Some(format!("{shadow} IS NULL AND {set_expr} IS NOT NULL")),
        as_update: false,
    });
    about.push(About::new(
        "backfill existing rows in batches by primary key, each batch its own short transaction, paced on client latency",
        Lock::RowExclusive,
        Effect::Backfill,
        Blocks::Nothing,
    ));

    // 4.-6.: what the column carries, rebuilt on the shadow, and the swap.
    let fate = if keep {
        let (back_name, back_func) = sync_names(cat, "sluice_back");
        let q = ident(&old);
        // The kept column sits in the column's old position, so an INSERT without a column
        // list (`INSERT INTO t VALUES (...)`, either version) fills it rather than the column:
        // nobody names the kept column, so a value there on INSERT is such a write, and the
        // column takes it (assigned as the ALTER assigns), else it would be lost to NULL.
        let positional =
            format!("IF TG_OP = 'INSERT' AND NEW.{q} IS NOT NULL THEN NEW.{c} := NEW.{q}; END IF;");
        let back_body = match back_guard(&parse_type(&cat.data_type), &parse_type(&new_type), &format!("NEW.{c}")) {
            Some(guard) if guard == "true" => format!("BEGIN {positional} NEW.{q} := NEW.{c}; RETURN NEW; END"),
            Some(guard) => format!("BEGIN {positional} NEW.{q} := CASE WHEN {guard} THEN NEW.{c} END; RETURN NEW; END"),
            // A pair without a known test: the cast is tried, at the price of a subtransaction.
            None => format!("BEGIN {positional} BEGIN NEW.{q} := NEW.{c}; EXCEPTION WHEN data_exception THEN NEW.{q} := NULL; END; RETURN NEW; END"),
        };
        Fate::Keep {
            old: old.clone(),
            reverse: vec![
                create_function(&back_func, &back_body),
                format!(
                    "CREATE TRIGGER {} BEFORE INSERT OR UPDATE ON {t} FOR EACH ROW EXECUTE FUNCTION {back_func}()",
                    ident(&back_name)
                ),
            ],
        }
    } else {
        Fate::Drop
    };
    let carried = carry(cat, &shadow_name, &trigger_name, &func, true, fate, around)?;
    then.extend(carried.then);
    about.extend(carried.about);
    precheck.extend(carried.precheck);

    // A checkpoint of the same backfill left by an earlier change of this column (up, then down)
    // is stale: the first attempt starts the backfill afresh (a resumed one keeps it).
    let checkpoint = crate::plan::staged::forget_backfill(cat, &set);
    precheck.push(format!("BEGIN {checkpoint}; END"));

    // The first attempt fails, as the statement would, where the server rejects the change itself
    // (no assignment cast, a USING expression that does not type, a default or index the new
    // type cannot take): the same ALTER on an empty copy of the table.
    precheck.push(format!(
        "BEGIN CREATE TEMP TABLE {tt} (LIKE {t} INCLUDING ALL); ALTER TABLE pg_temp.{tt} ALTER COLUMN {c} TYPE {new_type}{u}; DROP TABLE pg_temp.{tt}; END",
        tt = ident(&cat.table),
        u = using.as_ref().map(|u| format!(" USING {u}")).unwrap_or_default()
    ));

    let r = Rewrite {
        sql: format!("ALTER TABLE {t} ADD COLUMN IF NOT EXISTS {shadow} {new_type}"),
        note: if keep {
            format!("staged type change: shadow column kept equal by a trigger, backfilled in batches, indexes and constraints rebuilt concurrently, then swapped in one short step that keeps the old column as {} (kept equal by a reverse trigger) until `sluice complete`; `sluice rollback` swaps it back", ident(&old))
        } else {
            "staged type change: shadow column kept equal by a trigger, backfilled in batches, indexes and constraints rebuilt concurrently, then swapped in one short step".into()
        },
        answers: &["alter-column-type"],
        builds_index: None,
        unnamed_index: None,
        then,
        precheck: Some(
            precheck
                .iter()
                .map(|b| super::staged::do_block(b))
                .collect::<Vec<_>>()
                .join("; "),
        ),
        undo: vec![
            // The checkpoint first: a rerun must backfill the new shadow column from the start.
            checkpoint,
            format!("DROP TRIGGER IF EXISTS {trigger} ON {t}"),
            format!("DROP FUNCTION IF EXISTS {func}()"),
        ]
        .into_iter()
        // The foreign key copies before the shadow column: one of another table references it.
        .chain(carried.fk_undo)
        .chain([format!("ALTER TABLE {t} DROP COLUMN IF EXISTS {shadow}")])
        .collect(),
        about,
    };
    Ok((r, keep))
}

// ---------------------------------------------------------------------------------------------
// Views and policies that use the column (issue 13 point 3): PostgreSQL refuses the ALTER while
// they exist, so a migration drops them before it and re-creates them after. Run as written in
// stages, they would be missing for the whole backfill; sluice runs those statements inside the
// swap's short transaction instead, so every reader finds them at every moment.

use crate::analysis::ir::QName;

/// What a statement next to a staged type change does that its swap may run instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fold {
    /// `DROP VIEW a, b [CASCADE]` (not materialised) or `DROP POLICY p ON t [CASCADE]`.
    Drop {
        views: Vec<QName>,
        /// (policy name, its table).
        policies: Vec<(String, QName)>,
        cascade: bool,
    },
    /// `CREATE [OR REPLACE] VIEW v` (neither materialised nor temporary).
    CreateView(QName),
    /// `CREATE POLICY p ON t`.
    CreatePolicy(String, QName),
    /// `GRANT`/`REVOKE` on these tables or views only.
    Grant(Vec<QName>),
    /// `CREATE [OR REPLACE] [CONSTRAINT] TRIGGER … ON r` (a view's INSTEAD OF trigger).
    Trigger(QName),
    /// `COMMENT ON VIEW r` or `COMMENT ON COLUMN r.x`.
    Comment(QName),
    /// `COMMENT ON POLICY p ON t`.
    CommentPolicy(String, QName),
    /// `CREATE [OR REPLACE] FUNCTION`: what a trigger after it may need.
    Function { replace: bool },
}

/// The [`Fold`] a statement is, if any.
pub fn fold_of(st: &crate::analysis::ir::Stmt) -> Option<Fold> {
    use crate::analysis::ir::qname;
    use crate::target::EngineKind::Postgres;
    use sqlparser::ast::{DropBehavior, GrantObjects, ObjectType};
    let grant_objects = |o: &Option<GrantObjects>| match o {
        Some(GrantObjects::Tables(t) | GrantObjects::Views(t)) => {
            Some(Fold::Grant(t.iter().map(|n| qname(Postgres, n)).collect()))
        }
        _ => None,
    };
    let Some(ast) = st.ast.as_deref() else {
        return fold_by_tokens(st);
    };
    match ast {
        Statement::Drop {
            object_type: ObjectType::View,
            names,
            cascade,
            ..
        } => Some(Fold::Drop {
            views: names.iter().map(|n| qname(Postgres, n)).collect(),
            policies: vec![],
            cascade: *cascade,
        }),
        Statement::DropPolicy(p) => Some(Fold::Drop {
            views: vec![],
            policies: vec![(
                crate::analysis::ir::fold_ident(Postgres, &p.name),
                qname(Postgres, &p.table_name),
            )],
            cascade: p.drop_behavior == Some(DropBehavior::Cascade),
        }),
        Statement::CreateView(v) if !v.materialized && !v.temporary => {
            Some(Fold::CreateView(qname(Postgres, &v.name)))
        }
        Statement::CreatePolicy(p) => Some(Fold::CreatePolicy(
            crate::analysis::ir::fold_ident(Postgres, &p.name),
            qname(Postgres, &p.table_name),
        )),
        Statement::Grant(g) => grant_objects(&g.objects),
        Statement::Revoke(r) => grant_objects(&r.objects),
        _ => fold_by_tokens(st),
    }
}

/// The statement's tokens, without whitespace and comments.
fn fold_tokens(st: &crate::analysis::ir::Stmt) -> Vec<crate::analysis::tokens::Tok> {
    crate::analysis::tokens::tokens(&st.sql, crate::target::EngineKind::Postgres)
}

/// An identifier token as PostgreSQL names it: quoted kept, unquoted ASCII-folded to lowercase
/// (as [`crate::analysis::ir::fold_ident`]).
fn tok_ident(t: Option<&crate::analysis::tokens::Tok>) -> Option<String> {
    use crate::analysis::tokens::Tok;
    match t? {
        Tok::Word(w) => Some(w.to_ascii_lowercase()),
        Tok::Quoted(q) => Some(q.clone()),
        _ => None,
    }
}

/// The dotted name starting at `toks[i]` (its parts) and the index after it.
fn tok_dotted(toks: &[crate::analysis::tokens::Tok], mut i: usize) -> (Vec<String>, usize) {
    use crate::analysis::tokens::Tok;
    let mut parts = Vec::new();
    while let Some(p) = tok_ident(toks.get(i)) {
        parts.push(p);
        i += 1;
        if toks.get(i) != Some(&Tok::Punct('.')) {
            break;
        }
        i += 1;
    }
    (parts, i)
}

/// The relation named by `parts` (schema.name or name); None for any other shape.
fn tok_qname(parts: &[String]) -> Option<QName> {
    match parts {
        [n] => Some(QName {
            schema: None,
            name: n.clone(),
        }),
        [s, n] => Some(QName {
            schema: Some(s.clone()),
            name: n.clone(),
        }),
        _ => None,
    }
}

/// What sluice's parser leaves unparsed (`CREATE VIEW … WITH CHECK OPTION`, `CREATE RECURSIVE
/// VIEW`) or the AST does not carry plainly, read from the tokens: `CREATE [OR REPLACE]
/// [RECURSIVE] VIEW v` (never TEMP or MATERIALIZED: they are not this shape), triggers, comments
/// on views, their columns and policies, and functions.
fn fold_by_tokens(st: &crate::analysis::ir::Stmt) -> Option<Fold> {
    use crate::analysis::tokens::Tok;
    let toks = fold_tokens(st);
    let word = |i: usize, w: &str| matches!(toks.get(i), Some(Tok::Word(x)) if x == w);
    if word(0, "CREATE") {
        let mut i = 1;
        let replace = word(1, "OR") && word(2, "REPLACE");
        if replace {
            i = 3;
        }
        if word(i, "RECURSIVE") && word(i + 1, "VIEW") {
            i += 1;
        }
        if word(i, "VIEW") && st.ast.is_none() {
            let (parts, _) = tok_dotted(&toks, i + 1);
            return tok_qname(&parts).map(Fold::CreateView);
        }
        if word(i, "CONSTRAINT") {
            i += 1;
        }
        if word(i, "TRIGGER") {
            // The relation follows the first ON after the trigger's name and events.
            let on = (i + 2..toks.len()).find(|&k| word(k, "ON"))?;
            let (parts, _) = tok_dotted(&toks, on + 1);
            return tok_qname(&parts).map(Fold::Trigger);
        }
        if word(i, "FUNCTION") {
            return Some(Fold::Function { replace });
        }
        return None;
    }
    if word(0, "COMMENT") && word(1, "ON") {
        if word(2, "VIEW") {
            let (parts, _) = tok_dotted(&toks, 3);
            return tok_qname(&parts).map(Fold::Comment);
        }
        if word(2, "COLUMN") {
            let (parts, _) = tok_dotted(&toks, 3);
            return parts
                .split_last()
                .and_then(|(_, rel)| tok_qname(rel))
                .map(Fold::Comment);
        }
        if word(2, "POLICY") {
            let p = tok_ident(toks.get(3))?;
            if !word(4, "ON") {
                return None;
            }
            let (parts, _) = tok_dotted(&toks, 5);
            return tok_qname(&parts).map(|t| Fold::CommentPolicy(p, t));
        }
    }
    None
}

/// The statements of a migration around a staged type change that its swap runs: the `DROP VIEW`
/// and `DROP POLICY` statements right before it (first), and right after it the `CREATE [OR
/// REPLACE] VIEW` and `CREATE POLICY` statements that re-create what those dropped, with the
/// `GRANT`/`REVOKE` statements on the re-created views among them (last). Nothing else moves.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Around {
    /// Index in the part and SQL as written of each statement the swap runs first.
    pub before: Vec<(usize, String)>,
    /// ... and last.
    pub after: Vec<(usize, String)>,
    pub views: Vec<QName>,
    pub policies: Vec<(String, QName)>,
    /// A drop with CASCADE: the views over the dropped ones go with them, as written.
    pub cascade: bool,
    /// Every view and policy dropped is re-created by the statements after: the migration's own
    /// statements can then also move them the other way, around a rollback's swap back.
    pub recreated: bool,
}

impl Around {
    /// The statements around the type change at `i` (`folds[k]`: [`fold_of`] statement k,
    /// `sql[k]` its text).
    pub fn of(folds: &[Option<Fold>], sql: &[&str], i: usize) -> Around {
        let mut a = Around::default();
        let mut k = i;
        while k > 0 {
            let Some(Fold::Drop {
                views,
                policies,
                cascade,
            }) = &folds[k - 1]
            else {
                break;
            };
            k -= 1;
            a.before.insert(0, (k, sql[k].to_string()));
            a.views.extend(views.iter().cloned());
            a.policies.extend(policies.iter().cloned());
            a.cascade |= *cascade;
        }
        if a.before.is_empty() {
            return a;
        }
        let (views, policies) = (a.views.clone(), a.policies.clone());
        let mut created: Vec<QName> = Vec::new();
        let mut created_policies: Vec<(String, QName)> = Vec::new();
        // Functions after the re-creations join only with the trigger after them that needs them:
        // run in the swap too, the view never exists without its trigger (a CREATE [OR
        // REPLACE] FUNCTION is transactional, and the swap runs the statements in their order).
        let mut functions: Vec<usize> = Vec::new();
        // A plain CREATE FUNCTION moved in: run again by a rollback it would fail (the function
        // outlives the DROP VIEW), so the old column is not kept for one.
        let mut plain_function = false;
        for (k, f) in folds.iter().enumerate().skip(i + 1) {
            let is_view = |r: &QName| created.iter().any(|c| c.matches(r));
            match f {
                Some(Fold::Function { .. }) => {
                    functions.push(k);
                    continue;
                }
                Some(Fold::Trigger(r)) if is_view(r) => {}
                // Anything else after a function: the function runs as written, where it is.
                _ if !functions.is_empty() => break,
                Some(Fold::CreateView(v)) if views.iter().any(|d| d.matches(v)) => {
                    created.push(v.clone())
                }
                Some(Fold::CreatePolicy(p, t))
                    if policies.iter().any(|(n, tt)| n == p && tt.matches(t)) =>
                {
                    created_policies.push((p.clone(), t.clone()))
                }
                Some(Fold::Grant(objects))
                    if !objects.is_empty() && objects.iter().all(&is_view) => {}
                Some(Fold::Comment(r)) if is_view(r) => {}
                Some(Fold::CommentPolicy(p, t))
                    if created_policies
                        .iter()
                        .any(|(n, tt)| n == p && tt.matches(t)) => {}
                _ => break,
            }
            for f in functions.drain(..) {
                plain_function |= matches!(folds[f], Some(Fold::Function { replace: false }));
                a.after.push((f, sql[f].to_string()));
            }
            a.after.push((k, sql[k].to_string()));
        }
        a.recreated = !plain_function
            && views.iter().all(|d| created.iter().any(|c| d.matches(c)))
            && policies.iter().all(|(n, t)| {
                created_policies
                    .iter()
                    .any(|(cn, ct)| cn == n && t.matches(ct))
            });
        a
    }

    pub fn is_empty(&self) -> bool {
        self.before.is_empty()
    }

    /// Whether the old column can be kept with these statements around the type change: its
    /// rollback runs them again around the swap back (the drops first, the re-creations last),
    /// so they must re-create everything they drop, and a CASCADE would take views they do not.
    ///
    /// Nor may a re-created view list the table's columns with `*`: with the old column kept, it
    /// would list that column too (and `complete` could not drop it). A `*` anywhere in such a
    /// statement (`count(*)` too) counts, to be sure.
    pub fn keepable(&self) -> bool {
        self.is_empty()
            || (!self.cascade
                && self.recreated
                && !self.after.iter().any(|(_, sql)| view_with_star(sql)))
    }

    /// A query giving one text for the views and policies the statements drop, as the server
    /// holds them: definition, options, owner, privileges, comments, columns (names, types,
    /// defaults, comments, privileges), triggers and rules of each view; command, roles and
    /// expressions of each policy. Taken in the swap before the drops, and in the rollback's swap
    /// back after the re-creations: equal, the rollback re-created them exactly as they were.
    pub fn fingerprint(&self) -> String {
        let name = |q: &QName| match &q.schema {
            Some(s) => qualified(s, &q.name),
            None => ident(&q.name),
        };
        let acl = |col: &str| {
            format!("(SELECT string_agg(x::text, ',' ORDER BY x::text) FROM unnest({col}) x)")
        };
        let mut parts = Vec::new();
        if !self.views.is_empty() {
            let values = self
                .views
                .iter()
                .map(|v| format!("({})", literal(&name(v))))
                .collect::<Vec<_>>()
                .join(", ");
            parts.push(format!(
                "SELECT format('view %s: %s | %s | %s | %s | %s | %s | %s | %s', o.n, pg_get_viewdef(c.oid), c.reloptions, pg_get_userbyid(c.relowner), {}, obj_description(c.oid, 'pg_class'), \
                 (SELECT string_agg(format('%s %s %s %s %s', a.attname, format_type(a.atttypid, a.atttypmod), col_description(c.oid, a.attnum), pg_get_expr(d.adbin, d.adrelid), {}), ', ' ORDER BY a.attnum) \
                    FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped), \
                 (SELECT string_agg(pg_get_triggerdef(g.oid), ', ' ORDER BY g.tgname) FROM pg_trigger g WHERE g.tgrelid = c.oid AND NOT g.tgisinternal), \
                 (SELECT string_agg(pg_get_ruledef(r.oid), ', ' ORDER BY r.rulename) FROM pg_rewrite r WHERE r.ev_class = c.oid AND r.rulename <> '_RETURN')) \
                 FROM (VALUES {values}) AS o(n) LEFT JOIN pg_class c ON c.oid = to_regclass(o.n)",
                acl("c.relacl"),
                acl("a.attacl"),
            ));
        }
        if !self.policies.is_empty() {
            let values = self
                .policies
                .iter()
                .map(|(p, t)| format!("({}, {})", literal(p), literal(&name(t))))
                .collect::<Vec<_>>()
                .join(", ");
            parts.push(format!(
                "SELECT format('policy %s on %s: %s | %s | %s | %s | %s | %s', o.p, o.t, y.polcmd, y.polpermissive, \
                 (SELECT string_agg(r::regrole::text, ',' ORDER BY r::regrole::text) FROM unnest(y.polroles) r), pg_get_expr(y.polqual, y.polrelid), pg_get_expr(y.polwithcheck, y.polrelid), obj_description(y.oid, 'pg_policy')) \
                 FROM (VALUES {values}) AS o(p, t) LEFT JOIN pg_policy y ON y.polrelid = to_regclass(o.t) AND y.polname = o.p"
            ));
        }
        if parts.is_empty() {
            return "''".into();
        }
        format!(
            "(SELECT coalesce(string_agg(f, chr(30) ORDER BY f), '') FROM ({}) AS s(f))",
            parts.join(" UNION ALL ")
        )
    }

    /// In the rollback's swap back, after the re-creations: fails with [`VIEWS_SQLSTATE`]
    /// (changing nothing) unless they equal what the type change's swap recorded under `key`.
    pub fn check_recreated(&self, key: &str, after_key: &str) -> String {
        format!(
            "{}; {}",
            self.check(
                key,
                "re-created by the migration's own statements over the old column, they differ from those the migration dropped"
            ),
            forget_views(key, after_key)
        )
    }

    /// In the rollback's swap back, before the drops: fails with [`VIEWS_SQLSTATE`] unless the
    /// views and policies are still as the type change's swap re-created them (recorded under
    /// `after_key`): a later change to them (a migration's `CREATE OR REPLACE VIEW`, a grant) would
    /// otherwise be undone by the drops without a word.
    pub fn check_unchanged(&self, after_key: &str) -> String {
        self.check(
            after_key,
            "they were changed since the migration re-created them (by a later migration or by hand), and its statements would undo that",
        )
    }

    /// A DO block failing with [`VIEWS_SQLSTATE`] and `why`, naming the views and policies whose
    /// record differs, unless [`Self::fingerprint`] equals the one recorded under `key`.
    fn check(&self, key: &str, why: &str) -> String {
        let body = format!(
            "DECLARE got text := {fp}; want text := (SELECT value FROM sluice.meta WHERE key = {k}); which text; \
             BEGIN IF got IS DISTINCT FROM want THEN \
               SELECT string_agg(DISTINCT split_part(x, ': ', 1), ', ') INTO which FROM ( \
                 (SELECT unnest(string_to_array(coalesce(got, ''), chr(30))) EXCEPT SELECT unnest(string_to_array(coalesce(want, ''), chr(30)))) \
                 UNION ALL (SELECT unnest(string_to_array(coalesce(want, ''), chr(30))) EXCEPT SELECT unnest(string_to_array(coalesce(got, ''), chr(30))))) AS d(x); \
               RAISE EXCEPTION '%: %', {why}, coalesce(which, 'no record') USING ERRCODE = {code}; END IF; END",
            fp = self.fingerprint(),
            k = literal(key),
            why = literal(why),
            code = literal(VIEWS_SQLSTATE)
        );
        format!("DO {}", literal(&body))
    }

    /// The view or policy a migration's statements drop (or, for views over views, a CASCADE
    /// takes with them).
    fn covers(&self, m: &crate::engine::Movable) -> bool {
        let q = QName {
            schema: Some(m.schema.clone()),
            name: m.name.clone(),
        };
        match m.kind {
            'v' => self.views.iter().any(|v| v.matches(&q)),
            'p' => {
                let t = QName {
                    schema: Some(m.schema.clone()),
                    name: m.table.clone(),
                };
                self.policies
                    .iter()
                    .any(|(n, tt)| *n == m.name && tt.matches(&t))
            }
            _ => false,
        }
    }

    /// What the catalog says still stands in the way once the migration's own drops are run in
    /// the swap: the blockers they do not cover, and every view over a dropped view that is not
    /// dropped too (the DROP VIEW would fail on it, as written).
    pub fn remaining(&self, cat: &ColumnCatalog) -> Vec<String> {
        let mut out: Vec<String> = cat
            .blockers
            .iter()
            .filter(|b| {
                !cat.movable
                    .iter()
                    .any(|m| m.blocker == **b && self.covers(m))
            })
            .cloned()
            .collect();
        if self.is_empty() {
            return out;
        }
        for v in &cat.views {
            let q = QName {
                schema: Some(v.schema.clone()),
                name: v.name.clone(),
            };
            // One over the column itself is a blocker already (covered or not).
            if v.direct || self.views.iter().any(|d| d.matches(&q)) || self.cascade {
                continue;
            }
            out.push(format!(
                "{} {}.{} is over a view the migration drops (the DROP VIEW fails while it stands, as written: drop it before and re-create it after too)",
                if v.materialized { "materialized view" } else { "view" },
                v.schema,
                v.name
            ));
        }
        out
    }

    /// What `plan` says before the swap step's description.
    fn label(&self) -> String {
        format!(
            "with the migration's statement(s) {} run first in it and {} last (the views and policies stay in place until then)",
            self.before
                .iter()
                .map(|(k, _)| (k + 1).to_string())
                .collect::<Vec<_>>()
                .join(", "),
            if self.after.is_empty() {
                "none".to_string()
            } else {
                self.after
                    .iter()
                    .map(|(k, _)| (k + 1).to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        )
    }
}

/// Why a type change on a column views or policies use is refused, with the fix: the
/// DROP/ALTER/CREATE shape for views and policies, `--as-written` for the rest.
fn refusal(left: &[String], cat: &ColumnCatalog) -> String {
    let movable = left
        .iter()
        .any(|b| cat.movable.iter().any(|m| m.blocker == *b));
    let fix = if movable
        && left
            .iter()
            .all(|b| cat.movable.iter().any(|m| m.blocker == *b))
    {
        "PostgreSQL refuses the ALTER while a view or policy uses the column: write the migration as `DROP VIEW v; ALTER TABLE … ALTER COLUMN … TYPE …; CREATE VIEW v AS …;` (`DROP POLICY p ON t; …; CREATE POLICY p ON t …;` for a policy, every view over the view too), and sluice keeps them in place through the backfill and runs the drop and the re-create inside the swap's short transaction"
    } else if movable {
        "views and policies move when the migration drops them right before the ALTER and re-creates them right after it (sluice runs both inside the swap); for the others run the migration with `--as-written` (e.g. in a maintenance window)"
    } else {
        "the staged form does not move these: run the migration with `--as-written` (e.g. in a maintenance window)"
    };
    format!("{}: {fix}", left.join("; "))
}

/// The width of an integer type (2, 4, 8 bytes); None for any other type.
fn int_width(t: &SqlType) -> Option<u8> {
    match t.base.as_str() {
        _ if t.array => None,
        "int2" | "smallserial" => Some(2),
        "int4" | "serial" => Some(4),
        "int8" | "bigserial" => Some(8),
        _ => None,
    }
}

/// A referencing column that a staged widening of the column it references widens with it
/// (issue 13 point 2): the child table (schema, name, as stored) and its column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Child {
    pub schema: String,
    pub table: String,
    pub column: String,
}

impl Child {
    /// `schema.table.column` as `plan` names it.
    pub fn label(&self) -> String {
        format!("{}.{}.{}", self.schema, self.table, self.column)
    }
}

/// The referencing columns an integer widening of `cat`'s column to `new_type` (int2/int4 →
/// int4/int8) must widen too, or a child key still overflows where the parent no longer does:
/// every column of another key (composite keys: the one paired with this column;
/// self-references: the table's own) that references the column and is a narrower integer than
/// `new_type`, each once. A referencing column already as wide needs nothing. Only integers: a
/// cross-type integer foreign key is valid on the server (integer_ops holds int2/int4/int8
/// equality), so each child can change on its own before the parent; other rewriting changes
/// (numeric scale, text to varchar(n), timestamp to timestamptz) have no such family and are
/// not widenings that overflow, so their children are left as they are. A rewriting child
/// column of a sluice staged change in progress (`*_sluice_new`) is the child's own copy, not
/// a child.
pub fn implied_children(cat: &ColumnCatalog, new_type: &str) -> Vec<Child> {
    referencing_columns(cat, new_type, |width, new, _| {
        width.is_some_and(|w| w < new)
    })
}

/// The referencing columns (other than the column itself) that already have the width `new_type`
/// gives while the column is narrower: what a staged change of the column to `new_type` widened
/// before its own swap (or what was so before it: the catalog cannot tell).
pub fn widened_children(cat: &ColumnCatalog, new_type: &str) -> Vec<Child> {
    // A child's shadow column (`<c>_sluice_new`) carries a copy of the key, of the new type.
    referencing_columns(cat, new_type, |width, new, column| {
        width == Some(new) && !column.ends_with("_sluice_new")
    })
}

/// The columns whose foreign keys reference `cat`'s column (itself left out), each once, that
/// `pick` takes given their integer width, the width of `new_type` and their name; none unless
/// `new_type` is an integer wider than the column's.
fn referencing_columns(
    cat: &ColumnCatalog,
    new_type: &str,
    pick: impl Fn(Option<u8>, u8, &str) -> bool,
) -> Vec<Child> {
    let (Some(old), Some(new)) = (
        int_width(&parse_type(&cat.data_type)),
        int_width(&parse_type(new_type)),
    ) else {
        return vec![];
    };
    if new <= old {
        return vec![];
    }
    let mut out: Vec<Child> = Vec::new();
    for fk in cat.foreign_keys.iter().filter(|f| f.referenced) {
        let Some((column, ty)) = &fk.paired else {
            continue;
        };
        let own = fk.schema == cat.schema && fk.table == cat.table && *column == cat.column;
        let child = Child {
            schema: fk.schema.clone(),
            table: fk.table.clone(),
            column: column.clone(),
        };
        if !own && pick(int_width(&parse_type(ty)), new, column) && !out.contains(&child) {
            out.push(child);
        }
    }
    out
}

/// The parent's catalog as its staged change will find it once the children's staged changes
/// (run first) swapped: without the children's helpers that a resumed run may see half made,
/// i.e. a child's foreign key copy on its shadow column (the child's swap gives it the
/// original's name) and a child's sync trigger on the parent's own table (a self-reference: the
/// child's swap drops it before the parent's trigger exists).
pub fn without_children_helpers(cat: &ColumnCatalog, children: &[Child]) -> ColumnCatalog {
    let mut cat = cat.clone();
    cat.foreign_keys.retain(|fk| {
        !children.iter().any(|c| {
            fk.schema == c.schema
                && fk.table == c.table
                && fk.paired.as_ref().map(|p| p.0.as_str())
                    == Some(super::helper_name(&c.column, "", "sluice_new").as_str())
        })
    });
    cat.before_triggers.retain(|t| {
        !children.iter().any(|c| {
            c.schema == cat.schema
                && c.table == cat.table
                && *t == super::helper_name(&format!("zz_{}", c.table), &c.column, "sluice_sync")
        })
    });
    // A self-referencing column of the table already swapped and kept (an earlier attempt
    // widened it, issue 13 point 4): its reverse trigger sets only its own kept column.
    let backs: Vec<String> = cat
        .foreign_keys
        .iter()
        .filter(|fk| fk.referenced && fk.schema == cat.schema && fk.table == cat.table)
        .filter_map(|fk| fk.paired.as_ref())
        .filter(|(col, _)| *col != cat.column)
        .map(|(col, _)| {
            let other = ColumnCatalog {
                column: col.clone(),
                ..cat.clone()
            };
            sync_names(&other, "sluice_back").0
        })
        .collect();
    cat.before_triggers.retain(|t| !backs.contains(t));
    cat
}

/// One rewrite of the children's staged changes, in order, then the parent's: each child its own
/// complete online change (shadow, trigger, paced backfill, indexes and constraints rebuilt,
/// its foreign keys copied NOT VALID + VALIDATE, a short swap), so a bigint child references the
/// still-int parent for a while (valid: integer_ops), and the parent's swap then re-points the
/// children's already widened keys. The parent's swap stays the last step, which commits with
/// the progress record; a run killed after a child's swap finds, when it plans again, the child
/// as wide as the new type and leaves it out.
pub fn with_children(
    parent: Rewrite,
    children: Vec<(Child, Rewrite)>,
    parent_table: &str,
) -> Rewrite {
    if children.is_empty() {
        return parent;
    }
    let mut first: Option<String> = None;
    let mut then = Vec::new();
    let mut about = Vec::new();
    let mut precheck = Vec::new();
    let mut undo: Vec<String> = Vec::new();
    let labels: Vec<String> = children.iter().map(|(c, _)| c.label()).collect();
    for (child, r) in children {
        let table = format!("{}.{}", child.schema, child.table);
        let label = format!("referencing column {}", child.label());
        let mut steps = vec![RStep::Sql(r.sql)];
        steps.extend(r.then);
        for (step, mut a) in steps.into_iter().zip(r.about) {
            a.tables = if a.lock_on.is_empty() {
                vec![table.clone()]
            } else {
                vec![table.clone(), parent_table.to_string()]
            };
            a.label = Some(label.clone());
            match step {
                RStep::Sql(sql) if first.is_none() => first = Some(sql),
                step => then.push(step),
            }
            about.push(a);
        }
        precheck.extend(r.precheck);
        // Undone in the reverse order of making.
        undo = r.undo.into_iter().chain(undo).collect();
    }
    then.push(RStep::Sql(parent.sql));
    then.extend(parent.then);
    about.extend(parent.about);
    precheck.extend(parent.precheck);
    let undo: Vec<String> = parent.undo.into_iter().chain(undo).collect();
    Rewrite {
        sql: first.expect("a child's staged change starts with its shadow column"),
        note: format!(
            "{}; first the referencing column(s) {} are widened the same way, each its own staged change with its own short swap, so no child key overflows where the parent no longer does",
            parent.note,
            labels.join(", ")
        ),
        then,
        precheck: (!precheck.is_empty()).then(|| precheck.join("; ")),
        undo,
        about,
        ..parent
    }
}

/// The name the old column keeps between the swap and `sluice complete` (issue 13 point 4).
pub fn old_name(column: &str) -> String {
    super::helper_name(column, "", "sluice_old")
}

/// A sync trigger's name and its function (schema-qualified SQL) for `kind` (`sluice_sync`: new
/// from old before the swap; `sluice_back`: old from new after it). Row triggers fire in name
/// order (bytewise): `zz_` puts sluice's after nearly every other.
pub(crate) fn sync_names(cat: &ColumnCatalog, kind: &str) -> (String, String) {
    let func_name = super::helper_name(&cat.table, &cat.column, kind);
    let trigger_name = super::helper_name(&format!("zz_{}", cat.table), &cat.column, kind);
    (
        trigger_name,
        format!("{}.{}", ident(&cat.schema), ident(&func_name)),
    )
}

/// A trigger function with the session settings a cast may read pinned to the run's.
pub(crate) fn create_function(func: &str, body: &str) -> String {
    format!(
        "CREATE OR REPLACE FUNCTION {func}() RETURNS trigger LANGUAGE plpgsql SET \"TimeZone\" FROM CURRENT SET \"DateStyle\" FROM CURRENT SET \"IntervalStyle\" FROM CURRENT SET extra_float_digits FROM CURRENT SET search_path FROM CURRENT AS {}",
        literal(body)
    )
}

/// The body of a DO block that fails when the table has a column of that name.
fn column_free(t: &str, name: &str, table: &str) -> String {
    format!(
        "BEGIN IF EXISTS (SELECT FROM pg_attribute WHERE attrelid = {}::regclass AND attname = {} AND NOT attisdropped) THEN RAISE EXCEPTION {}, {} USING ERRCODE = 'duplicate_column'; END IF; END",
        literal(t),
        literal(name),
        literal(&format!("column % of relation {table} already exists: sluice names the staged type change's helper column so; drop or rename it, then run sluice up again")),
        literal(name)
    )
}

/// What becomes of the column the swap replaces.
pub(crate) enum Fate {
    /// Dropped with everything on it.
    Drop,
    /// Renamed to `old`, stripped of its indexes, constraints, NOT NULL, default and identity,
    /// and kept equal to the new column by the `reverse` trigger (created in the swap).
    Keep { old: String, reverse: Vec<String> },
}

/// What carrying a column's indexes, constraints and keys over to another column takes.
pub(crate) struct Carried {
    /// The steps before the swap (index builds, checks, foreign key copies), the swap last.
    pub then: Vec<RStep>,
    pub about: Vec<About>,
    pub precheck: Vec<String>,
    /// Removes the foreign key copies (before the column or index they reference).
    pub fk_undo: Vec<String>,
    /// Removes the other helpers (indexes, checks) the steps before the swap made: dropping the
    /// shadow column does that too, the kept old column of a rollback does not.
    pub undo: Vec<String>,
}

/// Rebuilds what `cat`'s column carries (indexes, unique/primary keys, checks, NOT NULL, foreign
/// keys either side) on the column `shadow_name` in the staged forms, then swaps the two in one
/// short step: the sync trigger `trigger_name` and its function `func` dropped, the column
/// dropped or kept as `fate` says, `shadow_name` renamed to the column's name and given its
/// names, default, identity or sequence, statistics target and comment. The staged type change
/// runs it from the old column to the shadow; its rollback from the new column to the kept old
/// one.
pub(crate) fn carry(
    cat: &ColumnCatalog,
    shadow_name: &str,
    trigger_name: &str,
    func: &str,
    analyze: bool,
    fate: Fate,
    around: &Around,
) -> Result<Carried, String> {
    let t = qualified(&cat.schema, &cat.table);
    let schema = ident(&cat.schema);
    let c = ident(&cat.column);
    let shadow = ident(shadow_name);
    let trigger = ident(trigger_name);
    if let Some(later) = cat
        .before_triggers
        .iter()
        .find(|n| n.as_bytes() > trigger_name.as_bytes())
    {
        return Err(format!("trigger {later} fires after sluice's sync trigger {trigger_name} (BEFORE triggers fire by name) and could change the column after it was copied"));
    }
    let renamed = |name: &str| super::helper_name(name, "", "sluice_new");
    let mut then = Vec::new();
    let mut about = Vec::new();
    let mut precheck = Vec::new();
    let mut undo = Vec::new();
    // What the old column loses when it is kept (its names go to the rebuilt ones).
    let mut strip = Vec::new();

    // 4. indexes, checks, NOT NULL on the shadow.
    let mut swap_keys = Vec::new();
    for ix in &cat.indexes {
        if let Some((name, kind, ..)) = &ix.constraint {
            if *kind == 'x' {
                return Err(format!("exclusion constraint {name} uses the column"));
            }
        }
        let tmp = renamed(&ix.name);
        let sql = index_on_shadow(&ix.definition, &cat.column, shadow_name, &tmp, &t)
            .map_err(|why| format!("index {}: {why}", ix.name))?;
        let qtmp = format!("{schema}.{}", ident(&tmp));
        precheck.push(relation_free(&qtmp));
        then.push(RStep::Index {
            sql,
            index: qtmp.clone(),
        });
        about.push(About::concurrent_build(
            "build the index on the shadow column concurrently (reads and writes continue)",
        ));
        undo.push(format!("DROP INDEX IF EXISTS {qtmp}"));
        swap_keys.push(attach_rebuilt(ix, &t, &tmp, &qtmp));
        strip.push(match &ix.constraint {
            Some((name, ..)) => format!("ALTER TABLE {t} DROP CONSTRAINT {}", ident(name)),
            None => format!("DROP INDEX {schema}.{}", ident(&ix.name)),
        });
    }
    // Every row was just updated and the shadow column is new: statistics before the swap (they
    // belong to the column, so they stay with it when it takes the old name), after the index
    // builds so that expression indexes get theirs too.
    if analyze {
        then.push(RStep::Analyze {
            table: t.clone(),
            columns: vec![shadow.clone()],
        });
        about.push(About::analyze());
    }
    // A primary key first: its index is attached before the others are renamed.
    swap_keys.sort_by_key(|a| !a[0].contains(" PRIMARY KEY USING INDEX "));
    let mut swap_checks = Vec::new();
    for ck in &cat.checks {
        let tmp = renamed(&ck.name);
        let def = ck
            .definition
            .strip_suffix(" NOT VALID")
            .unwrap_or(&ck.definition);
        let def = swap_column(def, &cat.column, shadow_name)
            .map_err(|why| format!("check {}: {why}", ck.name))?;
        precheck.push(constraint_free(&t, &tmp));
        then.push(RStep::Sql(format!(
            "ALTER TABLE {t} ADD CONSTRAINT {} {def} NOT VALID",
            ident(&tmp)
        )));
        about.push(About::catalog(
            "add the check on the shadow column for new rows only",
        ));
        if ck.validated {
            then.push(RStep::Sql(format!(
                "ALTER TABLE {t} VALIDATE CONSTRAINT {}",
                ident(&tmp)
            )));
            about.push(About::validate("validate it (reads and writes continue)"));
        }
        undo.push(format!(
            "ALTER TABLE {t} DROP CONSTRAINT IF EXISTS {}",
            ident(&tmp)
        ));
        swap_checks.push(format!(
            "ALTER TABLE {t} RENAME CONSTRAINT {} TO {}",
            ident(&tmp),
            ident(&ck.name)
        ));
        strip.push(format!(
            "ALTER TABLE {t} DROP CONSTRAINT {}",
            ident(&ck.name)
        ));
    }
    let not_null = ident(&super::helper_name(&cat.table, shadow_name, "not_null"));
    if cat.not_null {
        then.push(RStep::Sql(format!(
            "ALTER TABLE {t} ADD CONSTRAINT {not_null} CHECK ({shadow} IS NOT NULL) NOT VALID"
        )));
        then.push(RStep::Sql(format!(
            "ALTER TABLE {t} VALIDATE CONSTRAINT {not_null}"
        )));
        about.push(About::catalog(
            "NOT NULL of the shadow column as a check, for new rows only",
        ));
        about.push(About::validate("validate it (reads and writes continue)"));
        undo.push(format!(
            "ALTER TABLE {t} DROP CONSTRAINT IF EXISTS {not_null}"
        ));
        strip.push(format!("ALTER TABLE {t} ALTER COLUMN {c} DROP NOT NULL"));
    }

    // Foreign keys the column is in, either side: each gets a copy on the shadow column (in the
    // referencing list, the referenced list, or both for a self-reference), added NOT VALID then
    // validated (a NOT VALID one stays so) while the original still guards every write; the swap
    // drops the original and gives the copy its name. So a write is checked by one of them at every
    // moment, and no check scans a table while a lock blocks writes.
    let mut fk_drops = Vec::new();
    let mut fk_renames = Vec::new();
    let mut fk_undo = Vec::new();
    let mut children: Vec<String> = Vec::new();
    for fk in &cat.foreign_keys {
        let child = qualified(&fk.schema, &fk.table);
        let tmp = renamed(&fk.name);
        let def = fk_on_shadow(fk, &cat.column, shadow_name)
            .map_err(|why| format!("foreign key {}: {why}", fk.name))?;
        precheck.push(constraint_free(&child, &tmp));
        then.push(RStep::Sql(format!(
            "{SHORT_SECOND_WAIT}; ALTER TABLE {child} ADD CONSTRAINT {} {def} NOT VALID",
            ident(&tmp)
        )));
        about.push(About {
            lock_on: " (both tables)",
            ..About::new(
                "add a copy of the foreign key on the shadow column, checking new rows only (the original still checks every write)",
                Lock::ShareRowExclusive,
                Effect::Instant,
                Blocks::Writes,
            )
        });
        if fk.validated {
            then.push(RStep::Sql(format!(
                "ALTER TABLE {child} VALIDATE CONSTRAINT {}",
                ident(&tmp)
            )));
            about.push(About::validate(
                "validate the copy (reads and writes continue)",
            ));
        }
        fk_drops.push(format!(
            "ALTER TABLE {child} DROP CONSTRAINT {}",
            ident(&fk.name)
        ));
        fk_renames.push(format!(
            "ALTER TABLE {child} RENAME CONSTRAINT {} TO {}",
            ident(&tmp),
            ident(&fk.name)
        ));
        fk_undo.push(format!(
            "ALTER TABLE {child} DROP CONSTRAINT IF EXISTS {}",
            ident(&tmp)
        ));
        // The other table the key joins (the referencing one, or for the table's own key the
        // referenced one): the swap's DROP CONSTRAINT takes ACCESS EXCLUSIVE on both.
        let other = if child == t {
            qualified(&fk.ref_schema, &fk.ref_table)
        } else {
            child
        };
        if other != t && !children.contains(&other) {
            children.push(other);
        }
    }
    children.sort();

    // The swap.
    // The other tables first, in one order (a client inserting into a referencing table holds it,
    // then checks the referenced one), every wait short: a client that holds one of the tables
    // and waits for another sluice holds makes sluice give up and retry, never the client.
    let mut swap = Vec::new();
    if !children.is_empty() {
        swap.push(SHORT_SECOND_WAIT.into());
        swap.push(format!(
            "LOCK TABLE {} IN ACCESS EXCLUSIVE MODE",
            children.join(", ")
        ));
    }
    // The migration's own drops of the views and policies on the column, under the same lock
    // discipline (after the other tables, in the order readers take them: view, then table).
    if matches!(fate, Fate::Keep { .. }) && !around.is_empty() {
        // What the drops remove, as it is, for the rollback to check its re-creation against.
        swap.push(format!(
            "INSERT INTO sluice.meta (key, value) VALUES ({}, {}) ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
            literal(&views_key(cat)),
            around.fingerprint()
        ));
    }
    swap.extend(around.before.iter().map(|(_, sql)| sql.clone()));
    // Taken explicitly (the DROP TRIGGER takes the same lock) so the run can tell the wait for
    // the locks from the time they are held.
    swap.push(format!("LOCK TABLE {t} IN ACCESS EXCLUSIVE MODE"));
    swap.push(format!("DROP TRIGGER {trigger} ON {t}"));
    if cat.not_null {
        swap.push(format!(
            "ALTER TABLE {t} ALTER COLUMN {shadow} SET NOT NULL"
        ));
    }
    let mut seq_rename = None;
    if let Some(seq) = &cat.identity {
        let old = qualified(&seq.schema, &seq.name);
        let tmp_name = renamed(&seq.name);
        let tmp = qualified(&seq.schema, &tmp_name);
        precheck.push(relation_free(&tmp));
        swap.push(format!(
            "ALTER TABLE {t} ALTER COLUMN {shadow} ADD GENERATED {} AS IDENTITY ({})",
            if seq.always { "ALWAYS" } else { "BY DEFAULT" },
            identity_options(seq, &tmp)
        ));
        swap.push(format!(
            "SELECT setval({}, last_value, is_called) FROM {old}",
            literal(&tmp)
        ));
        seq_rename = Some(format!(
            "ALTER SEQUENCE {tmp} RENAME TO {}",
            ident(&seq.name)
        ));
        // Dropping the identity drops its sequence, whose name the new one takes; first, since
        // an identity column cannot drop its NOT NULL.
        strip.insert(0, format!("ALTER TABLE {t} ALTER COLUMN {c} DROP IDENTITY"));
    }
    if let Some((s, n)) = &cat.owned_sequence {
        swap.push(format!(
            "ALTER SEQUENCE {} OWNED BY {t}.{shadow}",
            qualified(s, n)
        ));
    }
    if cat.default.is_some() {
        // A nextval() default left on the kept column would draw from the sequence twice a row.
        strip.push(format!("ALTER TABLE {t} ALTER COLUMN {c} DROP DEFAULT"));
    }
    // The originals go before the column they check (a foreign key of another table referencing it
    // would block the DROP); the copies get their names once the keys they use are attached.
    swap.extend(fk_drops);
    let reverse = match fate {
        Fate::Drop => {
            swap.push(format!("ALTER TABLE {t} DROP COLUMN {c}"));
            vec![]
        }
        Fate::Keep { old, reverse } => {
            swap.extend(strip);
            swap.push(format!(
                "ALTER TABLE {t} RENAME COLUMN {c} TO {}",
                ident(&old)
            ));
            reverse
        }
    };
    swap.push(format!("ALTER TABLE {t} RENAME COLUMN {shadow} TO {c}"));
    if let Some(d) = &cat.default {
        swap.push(format!("ALTER TABLE {t} ALTER COLUMN {c} SET DEFAULT {d}"));
    }
    if let Some(n) = cat.statistics {
        swap.push(format!(
            "ALTER TABLE {t} ALTER COLUMN {c} SET STATISTICS {n}"
        ));
    }
    swap.extend(swap_keys.into_iter().flatten());
    swap.extend(swap_checks);
    swap.extend(fk_renames);
    if cat.not_null {
        swap.push(format!("ALTER TABLE {t} DROP CONSTRAINT {not_null}"));
    }
    swap.extend(seq_rename);
    if let Some(text) = &cat.comment {
        swap.push(format!("COMMENT ON COLUMN {t}.{c} IS {}", literal(text)));
    }
    swap.push(format!("DROP FUNCTION {func}()"));
    let kept = !reverse.is_empty();
    swap.extend(reverse);
    // ... and their re-creation, once the column has its new type and name: it commits with
    // the swap, so no reader ever finds them missing.
    swap.extend(around.after.iter().map(|(_, sql)| sql.clone()));
    if kept && !around.is_empty() {
        // ... and as they are now, for the rollback to check that nothing changed them since.
        swap.push(format!(
            "INSERT INTO sluice.meta (key, value) VALUES ({}, {}) ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
            literal(&views_after_key(cat)),
            around.fingerprint()
        ));
    }
    then.push(RStep::Sql(swap.join("; ")));
    let words = match (cat.foreign_keys.is_empty(), kept) {
        (true, false) => "swap in one short transaction: drop the trigger and the old column, rename the shadow column, attach keys and rename indexes and checks to their names, default, identity or sequence",
        (false, false) => "swap in one short transaction: lock the referencing tables, drop the trigger, the old foreign keys and the old column, rename the shadow column, attach keys, give the validated foreign key copies and the indexes and checks their names, default, identity or sequence",
        (true, true) => "swap in one short transaction: drop the trigger, keep the old column under a sluice name without its indexes, constraints, NOT NULL, default or identity, rename the shadow column, attach keys and rename indexes and checks to their names, default, identity or sequence, and a reverse trigger that keeps the old column equal to the new one cast back until `sluice complete`",
        (false, true) => "swap in one short transaction: lock the referencing tables, drop the trigger and the old foreign keys, keep the old column under a sluice name without its indexes, constraints, NOT NULL, default or identity, rename the shadow column, attach keys, give the validated foreign key copies and the indexes and checks their names, default, identity or sequence, and a reverse trigger that keeps the old column equal to the new one cast back until `sluice complete`",
    };
    let mut swap_about = if cat.foreign_keys.is_empty() {
        About::catalog(words)
    } else {
        About {
            lock_on: " (and each table its foreign keys join)",
            ..About::catalog(words)
        }
    };
    if !around.is_empty() {
        swap_about.label = Some(around.label());
    }
    about.push(swap_about);
    Ok(Carried {
        then,
        about,
        precheck,
        fk_undo,
        undo,
    })
}

/// For a step that holds one table while it waits for another (a foreign key's two tables): the
/// rest of the transaction waits at most 50 ms for a lock (or less, as lock_timeout or half the
/// server's deadlock_timeout say). Every client that touches the first table queues behind sluice
/// for as long as it waits. A client that holds the second table and then waits for the first (an
/// insert into the referencing table checking its parent, a delete cascading into it) is in a
/// cycle with sluice that no wait resolves: sluice gives up (and retries) before the client's
/// deadlock check could pick the client — measured under pgbench, the 500 ms that half the default
/// deadlock_timeout allowed was a 500 ms stall of every client each time. A wait that does not
/// close a cycle is for in-flight short transactions: milliseconds.
/// The SQLSTATE a rollback's swap back fails with when the views and policies it re-created
/// differ from those the type change's swap dropped ([`Around::check_recreated`]).
pub const VIEWS_SQLSTATE: &str = "SLV01";

/// The `sluice.meta` key under which a kept type change's swap records the views and policies it
/// moved, as they were ([`Around::fingerprint`]).
pub fn views_key(cat: &ColumnCatalog) -> String {
    format!(
        "type change views {}.{}.{}",
        cat.schema, cat.table, cat.column
    )
}

/// The same record of them as the type change's swap re-created them ([`Around::fingerprint`]
/// after its re-creations): the rollback's swap back checks first that they are still so.
pub fn views_after_key(cat: &ColumnCatalog) -> String {
    format!("{} as re-created", views_key(cat))
}

/// Removes both records of the views a kept type change moved (its rollback's swap back and
/// its complete end them).
pub fn forget_views(key: &str, after_key: &str) -> String {
    format!(
        "DELETE FROM sluice.meta WHERE key IN ({}, {})",
        literal(key),
        literal(after_key)
    )
}

/// A `CREATE ... VIEW` statement with a `*` outside quotes and comments.
fn view_with_star(sql: &str) -> bool {
    let upper = sql.trim_start().to_ascii_uppercase();
    if !upper.starts_with("CREATE") || !upper.contains("VIEW") {
        return false;
    }
    let (mut quote, mut prev, mut line_comment) = (None::<char>, ' ', false);
    for c in sql.chars() {
        if line_comment {
            line_comment = c != '\n';
        } else {
            match quote {
                Some(q) if c == q => quote = None,
                Some(_) => {}
                None if c == '\'' || c == '"' => quote = Some(c),
                None if c == '-' && prev == '-' => line_comment = true,
                None if c == '*' && prev != '/' => return true,
                None => {}
            }
        }
        prev = c;
    }
    false
}

pub(crate) const SHORT_SECOND_WAIT: &str = "SELECT set_config('lock_timeout', least(nullif((SELECT setting::int FROM pg_settings WHERE name = 'lock_timeout'), 0), (SELECT setting::int FROM pg_settings WHERE name = 'deadlock_timeout') / 2, 50)::text, true)";

/// A foreign key's definition (`pg_get_constraintdef`, NOT VALID left off) for its copy on the
/// shadow column: the column swapped for the shadow in the referencing list (and in an `ON DELETE
/// SET NULL (...)` list) when the key is the table's own, in the referenced list when it references
/// the column, and the referenced table schema-qualified (the server prints it as the search_path
/// sees it). Every other clause (MATCH, ON DELETE/UPDATE, DEFERRABLE) as the server printed it.
pub(crate) fn fk_on_shadow(
    fk: &crate::engine::ForeignKeyFacts,
    column: &str,
    shadow: &str,
) -> Result<String, String> {
    let def = fk
        .definition
        .strip_suffix(" NOT VALID")
        .unwrap_or(&fk.definition);
    let toks = scan(def);
    let text = |t: &Token| &def[t.span.clone()];
    let unexpected = || format!("sluice does not read its definition (`{def}`)");
    let word_at = |i: usize, w: &str| {
        toks.get(i)
            .is_some_and(|t| t.kind == Tok::Word && text(t) == w)
    };
    if !(word_at(0, "FOREIGN") && word_at(1, "KEY")) {
        return Err(unexpected());
    }
    // The parenthesised list starting at `open`: its closing token.
    let close_of = |open: usize| -> Option<usize> {
        (toks.get(open)?.kind == Tok::Punct('(')).then_some(())?;
        (open + 1..toks.len()).find(|&k| toks[k].kind == Tok::Punct(')'))
    };
    let is_col = |t: &Token| match &t.kind {
        Tok::Word => text(t) == column,
        Tok::Quoted(v) => v == column,
        _ => false,
    };
    let mut out = String::new();
    let mut at = 0;
    let mut swapped = (0, 0);
    // The referencing list.
    let close1 = close_of(2).ok_or_else(unexpected)?;
    if fk.referencing {
        for t in &toks[3..close1] {
            if is_col(t) {
                out.push_str(&def[at..t.span.start]);
                out.push_str(&ident(shadow));
                at = t.span.end;
                swapped.0 += 1;
            }
        }
    }
    if !word_at(close1 + 1, "REFERENCES") {
        return Err(unexpected());
    }
    // The referenced table's name runs to the next '(' (a quoted name may hold one: tokens).
    let open2 = (close1 + 2..toks.len())
        .find(|&k| toks[k].kind == Tok::Punct('('))
        .ok_or_else(unexpected)?;
    out.push_str(&def[at..toks[close1 + 2].span.start]);
    out.push_str(&qualified(&fk.ref_schema, &fk.ref_table));
    at = toks[open2].span.start;
    let close2 = close_of(open2).ok_or_else(unexpected)?;
    if fk.referenced {
        for t in &toks[open2 + 1..close2] {
            if is_col(t) {
                out.push_str(&def[at..t.span.start]);
                out.push_str(&ident(shadow));
                at = t.span.end;
                swapped.1 += 1;
            }
        }
    }
    // The actions' column lists (`ON DELETE SET NULL (a)`) name referencing columns.
    let mut depth = 0usize;
    for t in &toks[close2 + 1..] {
        match t.kind {
            Tok::Punct('(') => depth += 1,
            Tok::Punct(')') => depth = depth.saturating_sub(1),
            _ if depth > 0 && is_col(t) => {
                if !fk.referencing {
                    return Err(unexpected());
                }
                out.push_str(&def[at..t.span.start]);
                out.push_str(&ident(shadow));
                at = t.span.end;
            }
            _ => {}
        }
    }
    out.push_str(&def[at..]);
    if (fk.referencing && swapped.0 != 1) || (fk.referenced && swapped.1 != 1) {
        return Err(unexpected());
    }
    Ok(out)
}

/// The body of a DO block that fails with the server's error when a relation of that name exists.
pub(crate) fn relation_free(name_sql: &str) -> String {
    let lit = literal(name_sql);
    format!("BEGIN IF to_regclass({lit}) IS NOT NULL THEN RAISE EXCEPTION {}, {lit} USING ERRCODE = 'duplicate_table'; END IF; END", literal("relation % already exists: the staged type change needs the name; drop or rename it, then run sluice up again"))
}

/// The body of a DO block that fails when a trigger on a table other than `table_sql` runs
/// sluice's helper function `func_sql` (its SQL name): helper functions are named from the table and the
/// column joined with `_`, so two pairs can give one name (`users`.`name_x` and
/// `users_name`.`x`), and CREATE OR REPLACE would take over the other table's trigger function
/// (every write there would then fail).
pub(crate) fn function_free(func_sql: &str, table_sql: &str) -> String {
    let f = literal(&format!("{func_sql}()"));
    let t = literal(table_sql);
    format!(
        "BEGIN IF EXISTS (SELECT FROM pg_trigger WHERE tgfoid = to_regprocedure({f})::oid AND tgrelid <> {t}::regclass) THEN RAISE EXCEPTION {}, {f} USING ERRCODE = 'duplicate_function'; END IF; END",
        literal("function % runs the trigger of a change sluice has open on another table (sluice names its helper functions from the table and the column joined with _, and both give this name): complete or roll back that migration first, then run sluice up again")
    )
}

/// The body of a DO block that fails when the table has a constraint of that name.
pub(crate) fn constraint_free(table_sql: &str, name: &str) -> String {
    let (t, n) = (literal(table_sql), literal(name));
    format!("BEGIN IF EXISTS (SELECT FROM pg_constraint WHERE conrelid = {t}::regclass AND conname = {n}) THEN RAISE EXCEPTION {}, {n}, {t} USING ERRCODE = 'duplicate_object'; END IF; END", literal("constraint % for relation % already exists: the staged type change needs the name; drop or rename it, then run sluice up again"))
}

/// The identity options of the new column's sequence, as the ALTER leaves them: the same start,
/// increment, cache and cycle; bounds that were the old type's defaults become the new type's
/// (as `ALTER SEQUENCE ... AS` does), others are kept.
fn identity_options(seq: &crate::engine::SequenceFacts, name: &str) -> String {
    let (lo, hi) = match seq.data_type.as_str() {
        "smallint" => (i16::MIN as i64, i16::MAX as i64),
        "integer" => (i32::MIN as i64, i32::MAX as i64),
        _ => (i64::MIN, i64::MAX),
    };
    let (def_min, def_max) = if seq.increment > 0 { (1, hi) } else { (lo, -1) };
    let mut out = format!(
        "SEQUENCE NAME {name} START WITH {} INCREMENT BY {}",
        seq.start, seq.increment
    );
    if seq.min != def_min {
        out.push_str(&format!(" MINVALUE {}", seq.min));
    }
    if seq.max != def_max {
        out.push_str(&format!(" MAXVALUE {}", seq.max));
    }
    out.push_str(&format!(
        " CACHE {}{}",
        seq.cache,
        if seq.cycle { " CYCLE" } else { " NO CYCLE" }
    ));
    out
}

/// What gives the index `ix` rebuilt as `tmp` (`qtmp` schema-qualified) on table `t` back its
/// place once the column is swapped: its constraint attached USING INDEX (deferrability kept), or
/// its name back; its clustering and replica identity.
pub(crate) fn attach_rebuilt(
    ix: &crate::engine::IndexFacts,
    t: &str,
    tmp: &str,
    qtmp: &str,
) -> Vec<String> {
    let mut after = Vec::new();
    match &ix.constraint {
        Some((name, kind, deferrable, deferred)) => {
            let what = if *kind == 'p' {
                "PRIMARY KEY"
            } else {
                "UNIQUE"
            };
            let mut chars = String::new();
            if *deferrable {
                chars.push_str(" DEFERRABLE");
                if *deferred {
                    chars.push_str(" INITIALLY DEFERRED");
                }
            }
            after.push(format!(
                "ALTER TABLE {t} ADD CONSTRAINT {} {what} USING INDEX {}{chars}",
                ident(name),
                ident(tmp)
            ));
        }
        None => after.push(format!("ALTER INDEX {qtmp} RENAME TO {}", ident(&ix.name))),
    }
    if ix.clustered {
        after.push(format!("ALTER TABLE {t} CLUSTER ON {}", ident(&ix.name)));
    }
    if ix.replica_identity {
        after.push(format!(
            "ALTER TABLE {t} REPLICA IDENTITY USING INDEX {}",
            ident(&ix.name)
        ));
    }
    after
}

/// `CREATE [UNIQUE] INDEX CONCURRENTLY IF NOT EXISTS <tmp> ON <table> USING ...` from an index's
/// `pg_get_indexdef`, with the column swapped for the shadow column everywhere it occurs. The
/// ALTER as written rebuilds the index from that very text, so the result is the same index.
pub(crate) fn index_on_shadow(
    def: &str,
    column: &str,
    shadow: &str,
    tmp: &str,
    table_sql: &str,
) -> Result<String, String> {
    let toks = scan(def);
    let word =
        |i: usize, w: &str| matches!(&toks[i].kind, Tok::Word) && &def[toks[i].span.clone()] == w;
    let unique = toks.len() > 1 && word(1, "UNIQUE");
    let on = (0..toks.len()).find(|&i| word(i, "ON")).ok_or("no ON")?;
    let using = (on..toks.len())
        .find(|&i| word(i, "USING"))
        .ok_or("no USING")?;
    let method = toks.get(using + 1).ok_or("no method")?;
    let rest = &def[method.span.end..];
    let rest = swap_column(rest, column, shadow)?;
    Ok(format!(
        "CREATE {}INDEX CONCURRENTLY IF NOT EXISTS {} ON {table_sql} USING {}{rest}",
        if unique { "UNIQUE " } else { "" },
        ident(tmp),
        &def[method.span.clone()]
    ))
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Word,
    Quoted(String),
    Str,
    Cast,
    Punct(char),
    Other,
}

struct Token {
    kind: Tok,
    span: std::ops::Range<usize>,
}

/// A tokenizer for the server's own deparsed SQL (`pg_get_indexdef`, `pg_get_constraintdef`):
/// words, quoted identifiers, string literals, `::`, single punctuation.
fn scan(s: &str) -> Vec<Token> {
    let b: Vec<(usize, char)> = s.char_indices().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let end = |k: usize| b.get(k).map_or(s.len(), |x| x.0);
    while i < b.len() {
        let (start, ch) = b[i];
        if ch.is_whitespace() {
            i += 1;
            continue;
        }
        let kind;
        if ch == '\'' || ch == '"' {
            let mut j = i + 1;
            let mut value = String::new();
            loop {
                match b.get(j) {
                    None => break,
                    Some((_, q)) if *q == ch => {
                        if b.get(j + 1).is_some_and(|x| x.1 == ch) {
                            value.push(ch);
                            j += 2;
                            continue;
                        }
                        j += 1;
                        break;
                    }
                    Some((_, x)) => {
                        value.push(*x);
                        j += 1;
                    }
                }
            }
            kind = if ch == '"' {
                Tok::Quoted(value)
            } else {
                Tok::Str
            };
            i = j;
        } else if ch.is_alphabetic() || ch == '_' {
            let mut j = i + 1;
            while b
                .get(j)
                .is_some_and(|x| x.1.is_alphanumeric() || x.1 == '_' || x.1 == '$')
            {
                j += 1;
            }
            kind = Tok::Word;
            i = j;
        } else if ch.is_ascii_digit() {
            let mut j = i + 1;
            while b
                .get(j)
                .is_some_and(|x| x.1.is_ascii_alphanumeric() || x.1 == '.')
            {
                j += 1;
            }
            kind = Tok::Other;
            i = j;
        } else if ch == ':' && b.get(i + 1).is_some_and(|x| x.1 == ':') {
            kind = Tok::Cast;
            i += 2;
        } else {
            kind = Tok::Punct(ch);
            i += 1;
        }
        out.push(Token {
            kind,
            span: start..end(i),
        });
    }
    out
}

/// The deparsed SQL with every reference to `column` replaced by `shadow`. Exact or refused: each
/// occurrence of the name must be a column reference (not a function, type, operator class,
/// collation, option or tablespace name), else Err.
pub(crate) fn swap_column(sql: &str, column: &str, shadow: &str) -> Result<String, String> {
    let toks = scan(sql);
    let is_name = |t: &Token| match &t.kind {
        Tok::Word => &sql[t.span.clone()] == column,
        Tok::Quoted(v) => v == column,
        _ => false,
    };
    const BEFORE: [&str; 14] = [
        "WHERE", "AND", "OR", "NOT", "WHEN", "THEN", "ELSE", "CASE", "BETWEEN", "LIKE", "ILIKE",
        "IS", "FROM", "IN",
    ];
    let mut out = String::new();
    let mut at = 0;
    let mut found = 0;
    // Inside `WITH (...)` (storage options) and right after TABLESPACE no name is a column.
    let mut options_depth: Option<usize> = None;
    let mut depth = 0usize;
    for (k, t) in toks.iter().enumerate() {
        match t.kind {
            Tok::Punct('(') => depth += 1,
            Tok::Punct(')') => {
                depth = depth.saturating_sub(1);
                if options_depth.is_some_and(|d| depth < d) {
                    options_depth = None;
                }
            }
            _ => {}
        }
        if matches!(t.kind, Tok::Word)
            && &sql[t.span.clone()] == "WITH"
            && toks.get(k + 1).is_some_and(|n| n.kind == Tok::Punct('('))
            && depth == 0
        {
            options_depth = Some(1);
        }
        if !is_name(t) {
            continue;
        }
        let prev = k.checked_sub(1).map(|p| &toks[p]);
        let next = toks.get(k + 1);
        let prev_ok = match prev.map(|p| &p.kind) {
            Some(Tok::Punct(c)) => !matches!(c, '.' | ')' | ']'),
            Some(Tok::Word) => {
                let p = &sql[prev.expect("some").span.clone()];
                BEFORE.contains(&p)
            }
            _ => false,
        };
        let next_ok = !matches!(
            next.map(|n| &n.kind),
            Some(Tok::Punct('(')) | Some(Tok::Punct('.'))
        );
        if !prev_ok || !next_ok || options_depth.is_some() {
            return Err(format!(
                "its definition uses the name {} other than as the column (`{}`), so sluice cannot rebuild it exactly",
                ident(column),
                sql.trim()
            ));
        }
        out.push_str(&sql[at..t.span.start]);
        out.push_str(&ident(shadow));
        at = t.span.end;
        found += 1;
    }
    out.push_str(&sql[at..]);
    if found == 0 {
        return Err(format!(
            "sluice does not find the column in its definition (`{}`)",
            sql.trim()
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::pg_binary_coercible as bc;

    fn stmt(sql: &str) -> crate::analysis::ir::Stmt {
        use crate::target::EngineKind;
        let s = crate::sql::split(EngineKind::Postgres, sql)
            .unwrap()
            .remove(0);
        crate::analysis::ir::build(EngineKind::Postgres, 0, &s, 0, &s.sql)
    }

    fn identity_pk() -> crate::engine::ColumnCatalog {
        use crate::engine::*;
        ColumnCatalog {
            schema: "app".into(),
            table: "Orders".into(),
            column: "id".into(),
            data_type: "integer".into(),
            not_null: true,
            identity: Some(SequenceFacts {
                schema: "app".into(),
                name: "Orders_id_seq".into(),
                always: true,
                data_type: "integer".into(),
                start: 1,
                increment: 1,
                min: 1,
                max: i32::MAX as i64,
                cache: 1,
                cycle: false,
            }),
            indexes: vec![IndexFacts {
                name: "Orders_pkey".into(),
                definition:
                    "CREATE UNIQUE INDEX \"Orders_pkey\" ON app.\"Orders\" USING btree (id)".into(),
                constraint: Some(("Orders_pkey".into(), 'p', false, false)),
                ..Default::default()
            }],
            server_version: 150004,
            ..Default::default()
        }
    }

    #[test]
    fn staged_steps_of_an_identity_primary_key() {
        let st = stmt("ALTER TABLE app.\"Orders\" ALTER COLUMN id TYPE bigint");
        let r = super::staged(&st, &identity_pk(), false).unwrap().0;
        // What each step declares (the runner reads it) is what its SQL takes; only the trigger
        // step is read more strongly by the model from its text.
        let target = crate::target::Target::new(crate::target::EngineKind::Postgres, 15, 0);
        let stronger = crate::plan::staged::check_declared_locks(target, &r);
        assert!(stronger.is_empty(), "{stronger:#?}");
        let steps = r.plan_steps();
        assert_eq!(steps.len(), 8, "{steps:#?}");
        assert_eq!(
            steps[0].sql,
            "ALTER TABLE \"app\".\"Orders\" ADD COLUMN IF NOT EXISTS \"id_sluice_new\" BIGINT"
        );
        assert!(steps[1]
            .sql
            .contains("CREATE TRIGGER \"zz_Orders_id_sluice_sync\" BEFORE INSERT OR UPDATE"));
        assert_eq!(steps[2].effect, super::Effect::Backfill);
        assert!(
            !steps[3].transactional,
            "CREATE INDEX CONCURRENTLY runs on its own"
        );
        // Statistics for the shadow column after its index builds, before the swap (issue 16).
        assert_eq!(
            steps[4].sql,
            "ANALYZE \"app\".\"Orders\" (\"id_sluice_new\")"
        );
        let swap = &steps[7].sql;
        for part in [
            "ADD GENERATED ALWAYS AS IDENTITY (SEQUENCE NAME \"app\".\"Orders_id_seq_sluice_new\" START WITH 1 INCREMENT BY 1 CACHE 1 NO CYCLE)",
            "SELECT setval('\"app\".\"Orders_id_seq_sluice_new\"', last_value, is_called) FROM \"app\".\"Orders_id_seq\"",
            "ADD CONSTRAINT \"Orders_pkey\" PRIMARY KEY USING INDEX \"Orders_pkey_sluice_new\"",
            "ALTER SEQUENCE \"app\".\"Orders_id_seq_sluice_new\" RENAME TO \"Orders_id_seq\"",
        ] {
            assert!(swap.contains(part), "{part}: {swap}");
        }
        // The identity's own bounds are kept; the old type's defaults widen.
        let mut cat = identity_pk();
        cat.identity.as_mut().unwrap().max = 1000;
        let r = super::staged(&st, &cat, false).unwrap().0;
        assert!(r.plan_steps()[7].sql.contains(" MAXVALUE 1000 CACHE"));
    }

    #[test]
    fn staged_form_refuses_what_it_cannot_carry() {
        let st = stmt("ALTER TABLE app.\"Orders\" ALTER COLUMN id TYPE bigint");
        let refused = |f: &dyn Fn(&mut crate::engine::ColumnCatalog)| {
            let mut cat = identity_pk();
            f(&mut cat);
            super::staged(&st, &cat, false).unwrap_err()
        };
        assert!(refused(&|c| c
            .blockers
            .push("rule _RETURN on view v depends on it".into()))
        .contains("view v"));
        assert!(refused(&|c| c.server_version = 110000).contains("PostgreSQL 12"));
        assert!(
            refused(&|c| c.before_triggers.push("zzz".into())).contains("trigger zzz fires after")
        );
        assert!(
            refused(&|c| c.indexes[0].constraint = Some(("ex".into(), 'x', false, false)))
                .contains("exclusion")
        );
        // A trigger that fires before sluice's is fine.
        let mut cat = identity_pk();
        cat.before_triggers
            .extend(["audit".into(), "zz_Orders".into()]);
        assert!(super::staged(&st, &cat, false).is_ok());
        for sql in [
            "ALTER TABLE ONLY app.\"Orders\" ALTER COLUMN id TYPE bigint",
            "ALTER TABLE app.\"Orders\" ALTER COLUMN id TYPE bigint, ALTER COLUMN x TYPE bigint",
        ] {
            assert!(
                super::staged(&stmt(sql), &identity_pk(), false).is_err(),
                "{sql}"
            );
        }
    }

    #[test]
    fn swapping_the_column_is_exact_or_refused() {
        use super::{index_on_shadow, swap_column};
        let t = "\"public\".\"t\"";
        assert_eq!(
            index_on_shadow("CREATE UNIQUE INDEX t_pkey ON public.t USING btree (id)", "id", "id_sluice_new", "t_pkey_sluice_new", t).unwrap(),
            "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS \"t_pkey_sluice_new\" ON \"public\".\"t\" USING btree (\"id_sluice_new\")"
        );
        assert_eq!(
            index_on_shadow("CREATE INDEX ci ON public.c USING btree (lower((x)::text), y) INCLUDE (x) WITH (fillfactor='70') WHERE ((x)::text <> 'x'::text)", "x", "s", "ci2", t).unwrap(),
            "CREATE INDEX CONCURRENTLY IF NOT EXISTS \"ci2\" ON \"public\".\"t\" USING btree (lower((\"s\")::text), y) INCLUDE (\"s\") WITH (fillfactor='70') WHERE ((\"s\")::text <> 'x'::text)"
        );
        // The table or the index named like the column does not matter; quoted names are exact.
        assert_eq!(
            index_on_shadow(
                "CREATE INDEX x ON public.x USING btree (\"X y\")",
                "X y",
                "s",
                "n",
                t
            )
            .unwrap(),
            "CREATE INDEX CONCURRENTLY IF NOT EXISTS \"n\" ON \"public\".\"t\" USING btree (\"s\")"
        );
        assert_eq!(
            swap_column("CHECK ((a > 0) AND (a IS DISTINCT FROM b))", "a", "s").unwrap(),
            "CHECK ((\"s\" > 0) AND (\"s\" IS DISTINCT FROM b))"
        );
        // The name as a function, type, operator class, collation or option: refused.
        for (sql, col) in [
            ("(lower(lower))", "lower"),
            ("((a)::text)", "text"),
            ("(b text_pattern_ops)", "text_pattern_ops"),
            ("(b COLLATE \"C\")", "C"),
            ("(b) WITH (fillfactor='70')", "fillfactor"),
            ("(b NULLS FIRST)", "first"),
            ("(b)", "a"),
        ] {
            assert!(swap_column(sql, col, "s").is_err(), "{sql}");
        }
    }

    #[test]
    fn foreign_key_copies_name_the_shadow_on_the_right_side() {
        let fk = |def: &str, referencing: bool, referenced: bool| crate::engine::ForeignKeyFacts {
            name: "fk".into(),
            schema: "public".into(),
            table: "c".into(),
            ref_schema: "app".into(),
            ref_table: "we(ird".into(),
            definition: def.into(),
            validated: true,
            referencing,
            referenced,
            described: String::new(),
            paired: None,
        };
        let on = |def: &str, referencing: bool, referenced: bool, col: &str| {
            super::fk_on_shadow(&fk(def, referencing, referenced), col, "s")
        };
        // The parent's key: the referenced list only (the child's column of the same name stays).
        assert_eq!(
            on("FOREIGN KEY (id) REFERENCES \"we(ird\"(id) ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED", false, true, "id").unwrap(),
            "FOREIGN KEY (id) REFERENCES \"app\".\"we(ird\"(\"s\") ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED"
        );
        // The child's column: the referencing list and the SET NULL list; NOT VALID left off.
        assert_eq!(
            on("FOREIGN KEY (a, t_id) REFERENCES t(a, t_id) MATCH FULL ON DELETE SET NULL (t_id) NOT VALID", true, false, "t_id").unwrap(),
            "FOREIGN KEY (a, \"s\") REFERENCES \"app\".\"we(ird\"(a, t_id) MATCH FULL ON DELETE SET NULL (\"s\")"
        );
        // A self-reference through the column itself: both.
        assert_eq!(
            on("FOREIGN KEY (id) REFERENCES t(id)", true, true, "id").unwrap(),
            "FOREIGN KEY (\"s\") REFERENCES \"app\".\"we(ird\"(\"s\")"
        );
        // Quoted names are exact; a definition sluice does not read is refused.
        assert_eq!(
            on(
                "FOREIGN KEY (\"T id\") REFERENCES t(\"T id\")",
                false,
                true,
                "T id"
            )
            .unwrap(),
            "FOREIGN KEY (\"T id\") REFERENCES \"app\".\"we(ird\"(\"s\")"
        );
        for (def, col) in [
            ("FOREIGN KEY (a) REFERENCES t(b)", "id"),
            ("CHECK ((id > 0))", "id"),
            ("FOREIGN KEY (a) REFERENCES t", "a"),
        ] {
            assert!(on(def, false, true, col).is_err(), "{def}");
        }
        assert!(on(
            "FOREIGN KEY (a) REFERENCES t(id) ON DELETE SET NULL (id)",
            false,
            true,
            "id"
        )
        .is_err());
    }

    #[test]
    fn staged_steps_carry_the_foreign_keys() {
        let st = stmt("ALTER TABLE app.\"Orders\" ALTER COLUMN id TYPE bigint");
        let mut cat = identity_pk();
        for (name, table, valid, referencing) in [
            ("items_order_fkey", "items", true, false),
            ("Orders_parent_fkey", "Orders", false, false),
        ] {
            cat.foreign_keys.push(crate::engine::ForeignKeyFacts {
                name: name.into(),
                schema: "app".into(),
                table: table.into(),
                ref_schema: "app".into(),
                ref_table: "Orders".into(),
                definition: format!(
                    "FOREIGN KEY (order_id) REFERENCES \"Orders\"(id){}",
                    if valid { "" } else { " NOT VALID" }
                ),
                validated: valid,
                referencing,
                referenced: true,
                described: String::new(),
                paired: None,
            });
        }
        let r = super::staged(&st, &cat, false).unwrap().0;
        let target = crate::target::Target::new(crate::target::EngineKind::Postgres, 15, 0);
        assert!(crate::plan::staged::check_declared_locks(target, &r).is_empty());
        let steps = r.plan_steps();
        let sqls: Vec<&str> = steps.iter().map(|s| s.sql.as_str()).collect();
        // Two copies, the valid one validated, the NOT VALID one left so; then the swap.
        assert_eq!(steps.len(), 11, "{sqls:#?}");
        assert_eq!(sqls[7].split_once("; ").unwrap().1, "ALTER TABLE \"app\".\"items\" ADD CONSTRAINT \"items_order_fkey_sluice_new\" FOREIGN KEY (order_id) REFERENCES \"app\".\"Orders\"(\"id_sluice_new\") NOT VALID");
        assert_eq!(steps[7].lock, "SHARE ROW EXCLUSIVE (both tables)");
        assert_eq!(
            sqls[8],
            "ALTER TABLE \"app\".\"items\" VALIDATE CONSTRAINT \"items_order_fkey_sluice_new\""
        );
        assert!(sqls[9].contains(
            "; ALTER TABLE \"app\".\"Orders\" ADD CONSTRAINT \"Orders_parent_fkey_sluice_new\""
        ));
        let swap = sqls[10];
        // The referencing table locked first (not the table itself); originals dropped before the
        // column, copies renamed after the primary key is attached.
        assert!(
            swap.starts_with("SELECT set_config('lock_timeout'"),
            "{swap}"
        );
        assert!(
            swap.contains("; LOCK TABLE \"app\".\"items\" IN ACCESS EXCLUSIVE MODE; LOCK TABLE \"app\".\"Orders\" IN ACCESS EXCLUSIVE MODE; DROP TRIGGER"),
            "{swap}"
        );
        let at = |p: &str| swap.find(p).unwrap_or_else(|| panic!("{p}: {swap}"));
        assert!(at("DROP CONSTRAINT \"items_order_fkey\"") < at("DROP COLUMN \"id\""));
        assert!(
            at("PRIMARY KEY USING INDEX")
                < at("RENAME CONSTRAINT \"items_order_fkey_sluice_new\" TO \"items_order_fkey\"")
        );
        assert_eq!(
            steps[10].lock,
            "ACCESS EXCLUSIVE (and each table its foreign keys join)"
        );
        // A failure before the swap drops the copies before the shadow column they reference.
        let copy = r
            .undo
            .iter()
            .position(|u| u.contains("DROP CONSTRAINT IF EXISTS \"items_order_fkey_sluice_new\""))
            .unwrap();
        let shadow = r
            .undo
            .iter()
            .position(|u| u.contains("DROP COLUMN IF EXISTS"))
            .unwrap();
        assert!(copy < shadow, "{:?}", r.undo);
    }

    /// Issue 13 point 2: which referencing columns an integer widening widens with it (table
    /// driven over the key shapes), and the one rewrite: the children's steps first, labelled and
    /// locked on their own tables, the parent's swap last.
    #[test]
    fn referencing_columns_are_widened_with_the_key() {
        use super::{implied_children, with_children, without_children_helpers, Child};
        let fk = |name: &str, table: &str, paired: Option<(&str, &str)>, referenced: bool| {
            crate::engine::ForeignKeyFacts {
                name: name.into(),
                schema: "app".into(),
                table: table.into(),
                ref_schema: "app".into(),
                ref_table: "Orders".into(),
                definition: "FOREIGN KEY (x) REFERENCES \"Orders\"(id)".into(),
                validated: true,
                referencing: !referenced,
                referenced,
                described: String::new(),
                paired: paired.map(|(c, t)| (c.into(), t.into())),
            }
        };
        let child = |table: &str, column: &str| Child {
            schema: "app".into(),
            table: table.into(),
            column: column.into(),
        };
        let mut cat = identity_pk();
        cat.foreign_keys = vec![
            fk("a_fkey", "items", Some(("order_id", "integer")), true),
            // A second key of the same column (composite): widened once.
            fk("b_fkey", "items", Some(("order_id", "integer")), true),
            fk("c_fkey", "lines", Some(("ord", "smallint")), true),
            // Already as wide: nothing to do.
            fk("d_fkey", "big", Some(("order_id", "bigint")), true),
            // Self-reference: the table's own column.
            fk("e_fkey", "Orders", Some(("parent_id", "integer")), true),
            // Not an integer: left as it is.
            fk("f_fkey", "odd", Some(("order_id", "numeric")), true),
            // The table's own key (the column references): not a child.
            fk("g_fkey", "Orders", None, false),
            // A child's copy on its shadow column (a resumed run): the child's swap renames it.
            fk(
                "h_fkey_sluice_new",
                "items",
                Some(("order_id_sluice_new", "bigint")),
                true,
            ),
        ];
        let want = vec![
            child("items", "order_id"),
            child("lines", "ord"),
            child("Orders", "parent_id"),
        ];
        assert_eq!(implied_children(&cat, "bigint"), want);
        assert_eq!(implied_children(&cat, "INT8"), want);
        // int → int widens the smallint only; no widening, no children.
        assert_eq!(implied_children(&cat, "integer"), vec![]);
        assert_eq!(
            implied_children(&cat, "numeric(20,0)"),
            vec![],
            "only integer widenings"
        );
        let mut small = cat.clone();
        small.data_type = "smallint".into();
        assert_eq!(implied_children(&small, "int"), vec![child("lines", "ord")]);

        // The parent's plan leaves out what the children's changes make and remove.
        cat.before_triggers = vec!["zz_Orders_parent_id_sluice_sync".into()];
        let parent_cat = without_children_helpers(&cat, &want);
        assert!(parent_cat.before_triggers.is_empty());
        assert!(!parent_cat
            .foreign_keys
            .iter()
            .any(|f| f.name == "h_fkey_sluice_new"));
        assert_eq!(parent_cat.foreign_keys.len(), cat.foreign_keys.len() - 1);

        // The merged rewrite.
        let parent = super::staged(
            &stmt("ALTER TABLE app.\"Orders\" ALTER COLUMN id TYPE bigint"),
            &identity_pk(),
            false,
        )
        .unwrap()
        .0;
        let mut child_cat = identity_pk();
        child_cat.table = "items".into();
        child_cat.column = "order_id".into();
        child_cat.identity = None;
        child_cat.indexes.clear();
        child_cat.foreign_keys = vec![fk("a_fkey", "items", None, false)];
        child_cat.foreign_keys[0].definition =
            "FOREIGN KEY (order_id) REFERENCES \"Orders\"(id)".into();
        let kid = super::staged(
            &stmt("ALTER TABLE app.items ALTER COLUMN order_id TYPE bigint"),
            &child_cat,
            false,
        )
        .unwrap()
        .0;
        let (np, nk) = (parent.about.len(), kid.about.len());
        let kid_undo = kid.undo.clone();
        let r = with_children(
            parent,
            vec![(child("items", "order_id"), kid)],
            "app.Orders",
        );
        let steps = r.plan_steps();
        assert_eq!(steps.len(), np + nk);
        assert!(
            r.sql
                .contains("\"items\" ADD COLUMN IF NOT EXISTS \"order_id_sluice_new\""),
            "{}",
            r.sql
        );
        for s in &steps[..nk] {
            assert!(
                s.description
                    .starts_with("referencing column app.items.order_id: "),
                "{s:?}"
            );
            let tables = &s.taken.as_ref().unwrap().tables;
            assert_eq!(tables[0], "app.items", "{s:?}");
        }
        // The child's foreign key copy locks both tables, the child's swap too.
        assert!(steps[..nk]
            .iter()
            .any(|s| s.taken.as_ref().unwrap().tables == ["app.items", "app.Orders"]));
        assert!(steps[nk - 1]
            .sql
            .contains("RENAME COLUMN \"order_id_sluice_new\" TO \"order_id\""));
        assert!(steps[nk]
            .sql
            .contains("\"Orders\" ADD COLUMN IF NOT EXISTS \"id_sluice_new\""));
        assert!(steps[nk..]
            .iter()
            .all(|s| s.taken.as_ref().unwrap().tables.is_empty()
                && s.description.find("referencing").is_none_or(|at| at > 0)));
        assert!(steps
            .last()
            .unwrap()
            .sql
            .contains("RENAME COLUMN \"id_sluice_new\" TO \"id\""));
        // Undone in the reverse order: the parent's helpers first, the child's after.
        assert_eq!(r.undo[r.undo.len() - kid_undo.len()..], kid_undo[..]);
        assert!(r.note.contains("app.items.order_id"), "{}", r.note);
        let target = crate::target::Target::new(crate::target::EngineKind::Postgres, 15, 0);
        assert!(crate::plan::staged::check_declared_locks(target, &r).is_empty());
    }

    /// A migration's statements, their folds and the Around of its type change at `i`.
    fn around_in(sql: &str) -> (super::Around, usize) {
        use crate::target::EngineKind;
        let split = crate::sql::split(EngineKind::Postgres, sql).unwrap();
        let sts: Vec<_> = split
            .iter()
            .enumerate()
            .map(|(i, s)| crate::analysis::ir::build(EngineKind::Postgres, i, s, 0, &s.sql))
            .collect();
        let folds: Vec<_> = sts.iter().map(super::fold_of).collect();
        let texts: Vec<&str> = split.iter().map(|s| s.sql.as_str()).collect();
        let i = texts.iter().position(|t| t.contains("TYPE")).unwrap();
        (super::Around::of(&folds, &texts, i), i)
    }

    #[test]
    fn views_and_policies_dropped_before_and_recreated_after_move_into_the_swap() {
        // (migration, statements run first in the swap, statements run last in it)
        let cases: &[(&str, &[usize], &[usize])] = &[
            ("DROP VIEW v; ALTER TABLE t ALTER COLUMN id TYPE bigint; CREATE VIEW v AS SELECT id FROM t;", &[0], &[2]),
            ("DROP VIEW v2; DROP VIEW public.v1; ALTER TABLE t ALTER COLUMN id TYPE bigint; CREATE OR REPLACE VIEW v1 AS SELECT id FROM t; CREATE VIEW v2 AS SELECT * FROM v1; GRANT SELECT ON v1, v2 TO r; SELECT 1;", &[0, 1], &[3, 4, 5]),
            ("DROP POLICY p ON t; ALTER TABLE t ALTER COLUMN id TYPE bigint; CREATE POLICY p ON t USING (id > 0);", &[0], &[2]),
            // A view dropped and not re-created: dropped in the swap, as written.
            ("DROP VIEW v; ALTER TABLE t ALTER COLUMN id TYPE bigint;", &[0], &[]),
            // Only what re-creates what was dropped, and grants on those, move.
            ("DROP VIEW v; ALTER TABLE t ALTER COLUMN id TYPE bigint; CREATE VIEW w AS SELECT 1; CREATE VIEW v AS SELECT id FROM t;", &[0], &[]),
            ("DROP VIEW v; ALTER TABLE t ALTER COLUMN id TYPE bigint; GRANT SELECT ON v TO r; CREATE VIEW v AS SELECT id FROM t;", &[0], &[]),
            ("DROP VIEW v; ALTER TABLE t ALTER COLUMN id TYPE bigint; CREATE VIEW v AS SELECT id FROM t; GRANT SELECT ON t TO r;", &[0], &[2]),
            // Not adjacent, or not a plain view: nothing moves.
            ("DROP VIEW v; SELECT 1; ALTER TABLE t ALTER COLUMN id TYPE bigint; CREATE VIEW v AS SELECT id FROM t;", &[], &[]),
            ("DROP MATERIALIZED VIEW m; ALTER TABLE t ALTER COLUMN id TYPE bigint; CREATE MATERIALIZED VIEW m AS SELECT id FROM t;", &[], &[]),
            ("ALTER TABLE t ALTER COLUMN id TYPE bigint; CREATE VIEW v AS SELECT id FROM t;", &[], &[]),
        ];
        for (sql, before, after) in cases {
            let (a, _) = around_in(sql);
            let got = |v: &[(usize, String)]| v.iter().map(|(k, _)| *k).collect::<Vec<_>>();
            assert_eq!(got(&a.before), *before, "{sql}");
            assert_eq!(got(&a.after), *after, "{sql}");
        }
    }

    #[test]
    fn recreations_the_parser_leaves_out_and_what_belongs_to_them_move_into_the_swap() {
        // (migration, statements run last in the swap, the old column can be kept)
        let d = "DROP VIEW v; ALTER TABLE t ALTER COLUMN id TYPE bigint;";
        let cases: &[(&str, &[usize], bool)] = &[
            // Unparsed by sluice's parser: recognised from the tokens.
            ("CREATE VIEW v AS SELECT id FROM t WHERE id > 0 WITH CHECK OPTION;", &[2], true),
            ("CREATE OR REPLACE VIEW v AS SELECT id FROM t WITH LOCAL CHECK OPTION;", &[2], true),
            ("CREATE VIEW public.v AS SELECT id FROM t WITH CASCADED CHECK OPTION;", &[2], true),
            ("CREATE RECURSIVE VIEW v (id) AS SELECT 1::bigint UNION ALL SELECT id + 1 FROM v WHERE id < 3;", &[2], true),
            ("CREATE OR REPLACE RECURSIVE VIEW v (id) AS SELECT 1 UNION ALL SELECT id + 1 FROM v WHERE id < 3;", &[2], true),
            // Another name, another case, a temporary view: not the re-creation.
            ("CREATE VIEW w AS SELECT id FROM t WITH CHECK OPTION;", &[], false),
            ("CREATE VIEW \"V\" AS SELECT id FROM t WITH CHECK OPTION;", &[], false),
            ("CREATE TEMP RECURSIVE VIEW v (id) AS SELECT 1 UNION ALL SELECT id + 1 FROM v WHERE id < 3;", &[], false),
            // A view's trigger, and the function it needs between.
            ("CREATE VIEW v AS SELECT id FROM t; CREATE TRIGGER vi INSTEAD OF INSERT ON v FOR EACH ROW EXECUTE FUNCTION f();", &[2, 3], true),
            ("CREATE VIEW v AS SELECT id FROM t; CREATE OR REPLACE FUNCTION f() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN INSERT INTO t (id) VALUES (NEW.id); RETURN NEW; END$$; CREATE TRIGGER vi INSTEAD OF INSERT OR UPDATE ON public.v FOR EACH ROW EXECUTE FUNCTION f();", &[2, 3, 4], true),
            // A plain CREATE FUNCTION moves too, but a rollback could not run it again.
            ("CREATE VIEW v AS SELECT id FROM t; CREATE FUNCTION f() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RETURN NEW; END$$; CREATE TRIGGER vi INSTEAD OF INSERT ON v FOR EACH ROW EXECUTE FUNCTION f();", &[2, 3, 4], false),
            // A function no trigger follows stays where it is, and so does what comes after it.
            ("CREATE VIEW v AS SELECT id FROM t; CREATE OR REPLACE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1'; COMMENT ON VIEW v IS 'x';", &[2], true),
            // A trigger on another relation.
            ("CREATE VIEW v AS SELECT id FROM t; CREATE TRIGGER tr AFTER INSERT ON t FOR EACH ROW EXECUTE FUNCTION f();", &[2], true),
            // Comments on the re-created view and its columns.
            ("CREATE VIEW v AS SELECT id FROM t; COMMENT ON VIEW v IS 'v'; COMMENT ON COLUMN v.id IS 'id'; COMMENT ON COLUMN public.v.id IS 'id';", &[2, 3, 4, 5], true),
            ("CREATE VIEW v AS SELECT id FROM t; COMMENT ON COLUMN t.id IS 'id';", &[2], true),
            ("CREATE VIEW v AS SELECT id FROM t WITH CHECK OPTION; GRANT SELECT ON v TO r; COMMENT ON VIEW v IS 'v';", &[2, 3, 4], true),
        ];
        // Why the tokens: sluice's parser leaves these out (no AST to read the name from).
        for unparsed in &cases[..5] {
            let split = crate::sql::split(crate::target::EngineKind::Postgres, unparsed.0).unwrap();
            let st = crate::analysis::ir::build(
                crate::target::EngineKind::Postgres,
                0,
                &split[0],
                0,
                &split[0].sql,
            );
            assert!(st.ast.is_none(), "{}", unparsed.0);
        }
        for (after, want, kept) in cases {
            let sql = format!("{d} {after}");
            let (a, _) = around_in(&sql);
            let got: Vec<usize> = a.after.iter().map(|(k, _)| *k).collect();
            assert_eq!(got, *want, "{sql}");
            assert_eq!(a.keepable(), *kept, "{sql}");
        }
        // A policy's comment after its re-creation.
        let (a, _) = around_in("DROP POLICY p ON t; ALTER TABLE t ALTER COLUMN id TYPE bigint; CREATE POLICY p ON t USING (id > 0); COMMENT ON POLICY p ON t IS 'p'; COMMENT ON POLICY q ON t IS 'q';");
        assert_eq!(a.after.iter().map(|(k, _)| *k).collect::<Vec<_>>(), [2, 3]);
    }

    #[test]
    fn the_swap_runs_the_drops_first_and_the_recreations_last() {
        use crate::engine::{Movable, ViewFacts};
        let sql = "DROP VIEW v2; DROP VIEW v; DROP POLICY p ON app.\"Orders\"; ALTER TABLE app.\"Orders\" ALTER COLUMN id TYPE bigint; CREATE VIEW v AS SELECT id FROM app.\"Orders\"; CREATE VIEW v2 AS SELECT id FROM v; CREATE POLICY p ON app.\"Orders\" USING (id > 0); GRANT SELECT ON v TO r;";
        let (around, i) = around_in(sql);
        let mut cat = identity_pk();
        let view = |name: &str| Movable {
            blocker: format!("rule _RETURN on view {name} depends on it"),
            kind: 'v',
            schema: "app".into(),
            name: name.into(),
            table: String::new(),
        };
        let policy = Movable {
            blocker: "policy p on table app.\"Orders\" depends on it".into(),
            kind: 'p',
            schema: "app".into(),
            name: "p".into(),
            table: "Orders".into(),
        };
        cat.movable = vec![view("v"), policy.clone()];
        cat.blockers = cat.movable.iter().map(|m| m.blocker.clone()).collect();
        cat.views = vec![
            ViewFacts {
                schema: "app".into(),
                name: "v".into(),
                materialized: false,
                direct: true,
            },
            ViewFacts {
                schema: "app".into(),
                name: "v2".into(),
                materialized: false,
                direct: false,
            },
        ];
        let split = crate::sql::split(crate::target::EngineKind::Postgres, sql).unwrap();
        let st = crate::analysis::ir::build(
            crate::target::EngineKind::Postgres,
            i,
            &split[i],
            0,
            &split[i].sql,
        );
        let (r, kept) = super::staged_around(&st, &cat, true, &around).unwrap();
        assert!(
            kept,
            "the old column is kept: the rollback runs the statements again"
        );
        let steps = r.plan_steps();
        let swap = &steps.last().unwrap();
        let sql = &swap.sql;
        let at = |part: &str| sql.find(part).unwrap_or_else(|| panic!("{part}: {sql}"));
        assert!(
            at("DROP VIEW v2") < at("DROP VIEW v;") && at("DROP POLICY p") < at("DROP TRIGGER")
        );
        // What the drops remove is recorded first, for the rollback's check.
        assert!(at("INSERT INTO sluice.meta") < at("DROP VIEW v2"));
        assert!(at("RENAME COLUMN \"id\" TO \"id_sluice_old\"") < at("CREATE VIEW v AS"));
        // Not kept where the statements cannot move them back: a drop not re-created, a CASCADE.
        for other in [
            "DROP VIEW v2; DROP VIEW v; DROP POLICY p ON app.\"Orders\"; ALTER TABLE app.\"Orders\" ALTER COLUMN id TYPE bigint; CREATE VIEW v AS SELECT id FROM app.\"Orders\"; CREATE POLICY p ON app.\"Orders\" USING (id > 0);",
            "DROP VIEW v CASCADE; DROP POLICY p ON app.\"Orders\"; ALTER TABLE app.\"Orders\" ALTER COLUMN id TYPE bigint; CREATE VIEW v AS SELECT id FROM app.\"Orders\"; CREATE VIEW v2 AS SELECT id FROM v; CREATE POLICY p ON app.\"Orders\" USING (id > 0);",
        ] {
            let (a, k) = around_in(other);
            let split = crate::sql::split(crate::target::EngineKind::Postgres, other).unwrap();
            let st = crate::analysis::ir::build(
                crate::target::EngineKind::Postgres,
                k,
                &split[k],
                0,
                &split[k].sql,
            );
            let (r, kept) = super::staged_around(&st, &cat, true, &a).unwrap();
            assert!(!kept, "{other}");
            assert!(!r.plan_steps().last().unwrap().sql.contains("sluice.meta"));
        }
        assert!(at("RENAME COLUMN \"id_sluice_new\" TO \"id\"") < at("CREATE VIEW v AS"));
        assert!(
            at("CREATE VIEW v AS") < at("CREATE VIEW v2")
                && at("CREATE VIEW v2") < at("GRANT SELECT ON v TO r")
        );
        // ... then what they re-created is recorded too, for the rollback's first check.
        assert!(sql.ends_with("ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value"));
        assert!(at("GRANT SELECT ON v TO r") < sql.rfind("INSERT INTO sluice.meta").unwrap());
        assert!(
            swap.description.starts_with(
                "with the migration's statement(s) 1, 2, 3 run first in it and 5, 6, 7, 8 last"
            ),
            "{}",
            swap.description
        );
        // Nothing else moves before the swap.
        assert!(steps[..steps.len() - 1]
            .iter()
            .all(|s| !s.sql.contains("VIEW")));

        // Refused, naming the fix: a view or policy the migration does not drop, a view over a
        // dropped view that stays, a materialised view.
        let refused = |around: &super::Around, cat: &crate::engine::ColumnCatalog| {
            super::staged_around(&st, cat, false, around).unwrap_err()
        };
        let why = refused(&super::Around::default(), &cat);
        assert!(
            why.contains("DROP VIEW v; ALTER TABLE") && why.contains("DROP POLICY"),
            "{why}"
        );
        let (only_v, _) = around_in("DROP VIEW v; ALTER TABLE app.\"Orders\" ALTER COLUMN id TYPE bigint; CREATE VIEW v AS SELECT 1;");
        let mut no_policy = cat.clone();
        no_policy.movable.retain(|m| m.kind == 'v');
        no_policy.blockers.retain(|b| !b.starts_with("policy"));
        let why = refused(&only_v, &no_policy);
        assert!(
            why.contains("view app.v2 is over a view the migration drops"),
            "{why}"
        );
        let mut mat = cat.clone();
        mat.blockers
            .push("rule _RETURN on materialized view m depends on it".into());
        let why = refused(&around, &mat);
        assert!(
            why.contains("materialized view m") && why.contains("--as-written"),
            "{why}"
        );
        assert!(!why.contains("view v depends"), "{why}");
    }

    #[test]
    fn coercible_list() {
        assert!(bc("varchar(10)", "varchar(20)"));
        assert!(bc("character varying(10)", "text"));
        assert!(bc("varchar(10)", "varchar"));
        assert!(bc("numeric(10,2)", "numeric(12,2)"));
        assert!(bc("numeric(10,2)", "numeric"));
        assert!(bc("cidr", "inet"));
        assert!(!bc("varchar(20)", "varchar(10)"));
        assert!(!bc("numeric(10,2)", "numeric(12,3)"));
        assert!(!bc("integer", "bigint"));
        assert!(bc("int4", "integer"));
        assert!(bc("varbit(4)", "varbit(8)"));
        assert!(!bc("text", "varchar(10)"));
    }
}
