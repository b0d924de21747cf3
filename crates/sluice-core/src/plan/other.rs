//! Everything else: how it behaves as written. Statements here are either safe as written or have no
//! staged equivalent; lint rules explain the hazard.

use super::*;

pub fn plan(a: &Action, st: &Stmt, ctx: &Ctx) -> OpPlan {
    let mysql = ctx.target.engine.is_mysql_family();
    // What the IR does not model is judged from the statement's own words, never taken as safe.
    if !mysql
        && matches!(
            a,
            Action::Other | Action::CreateOther { .. } | Action::Dml { .. }
        )
    {
        return OpPlan::safe_as_written(pg_by_words(&st.sql));
    }
    let ae = "ACCESS EXCLUSIVE";
    if let (Action::CreateTable { locks, .. }, false) = (a, mysql) {
        return OpPlan::safe_as_written(pg_create_table(&st.sql, !locks.is_empty()));
    }
    let (lock, effect, blocks, note): (&str, Effect, Blocks, &str) = match a {
        Action::CreateTable { .. } => (
            "none on existing tables",
            Effect::Instant,
            Blocks::Nothing,
            "new table",
        ),
        Action::DropIndex { .. } => (
            "metadata lock (brief)",
            Effect::Instant,
            Blocks::Nothing,
            "dropped in place",
        ),
        Action::DropColumn { .. } if mysql => (
            "ALGORITHM=INSTANT (10.4+/8.0.29+) or INPLACE rebuild",
            Effect::Instant,
            Blocks::Nothing,
            "old application versions reading the column fail",
        ),
        Action::DropColumn { .. } => (
            ae,
            Effect::Instant,
            Blocks::ReadsAndWrites,
            "catalog only; old application versions reading the column fail",
        ),
        Action::DropNotNull { .. } | Action::SetDefault { .. } | Action::DropDefault { .. } => (
            if mysql { "metadata lock (brief)" } else { ae },
            Effect::Instant,
            Blocks::ReadsAndWrites,
            "catalog only",
        ),
        Action::SetNotNull { .. } => (
            "ALGORITHM=INPLACE (rebuild)",
            Effect::Copy,
            Blocks::Nothing,
            "rebuilds the table",
        ),
        Action::ValidateConstraint { .. } => (
            "SHARE UPDATE EXCLUSIVE",
            Effect::Scan,
            Blocks::Nothing,
            "scans without blocking reads or writes",
        ),
        Action::DropConstraint { .. } | Action::DropKey { .. } => (
            if mysql { "metadata lock" } else { ae },
            Effect::Instant,
            Blocks::ReadsAndWrites,
            "catalog only",
        ),
        // The enum type itself is locked, no table (checked against pg_locks): only other changes
        // of the type and statements creating columns of it wait.
        Action::RenameEnumValue { .. } if !mysql => (
            "EXCLUSIVE on the type",
            Effect::Instant,
            Blocks::Nothing,
            "catalog only; running application versions using the old value fail",
        ),
        Action::RenameSchema { .. } if !mysql => (
            "ACCESS EXCLUSIVE on the schema",
            Effect::Instant,
            Blocks::Nothing,
            "instant; running application versions using the old name fail",
        ),
        Action::RenameColumn { from, to, .. } if mysql && from.eq_ignore_ascii_case(to) => (
            "metadata lock (brief)",
            Effect::Instant,
            Blocks::ReadsAndWrites,
            "instant; column names are case-insensitive here, so queries naming it in either letter case keep working",
        ),
        Action::RenameColumn { .. }
        | Action::RenameTable { .. }
        | Action::RenameSchema { .. }
        | Action::RenameEnumValue { .. } => (
            if mysql { "metadata lock (brief)" } else { ae },
            Effect::Instant,
            Blocks::ReadsAndWrites,
            "instant; running application versions using the old name fail",
        ),
        Action::AddEnumValue { .. } => (
            "EXCLUSIVE on the type",
            Effect::Instant,
            Blocks::Nothing,
            "catalog only",
        ),
        Action::DropTable { .. }
        | Action::DropSchema { .. }
        | Action::DropDatabase { .. }
        | Action::DropOther { .. } => (
            if mysql { "metadata lock" } else { ae },
            Effect::Instant,
            Blocks::ReadsAndWrites,
            "data is gone",
        ),
        Action::Truncate { .. } => (
            if mysql { "metadata lock" } else { ae },
            Effect::Instant,
            Blocks::ReadsAndWrites,
            "every row is removed",
        ),
        Action::VacuumFull { .. } | Action::Cluster => (
            ae,
            Effect::Rewrite,
            Blocks::ReadsAndWrites,
            "rewrites the table; use pg_repack",
        ),
        Action::Vacuum => (
            "SHARE UPDATE EXCLUSIVE",
            Effect::Scan,
            Blocks::Nothing,
            "does not block reads or writes",
        ),
        Action::Reindex {
            concurrently: true, ..
        } => (
            "SHARE UPDATE EXCLUSIVE",
            Effect::IndexBuild,
            Blocks::Nothing,
            "rebuilt concurrently",
        ),
        Action::Reindex {
            concurrently: false,
            ..
        } => (
            "ACCESS EXCLUSIVE on the index, SHARE on the table",
            Effect::IndexBuild,
            Blocks::Writes,
            "queries using the index and all writes wait",
        ),
        Action::DetachPartition {
            concurrently: true, ..
        } => (
            "SHARE UPDATE EXCLUSIVE",
            Effect::Instant,
            Blocks::Nothing,
            "detached concurrently",
        ),
        Action::DetachPartition { .. } => (
            ae,
            Effect::Instant,
            Blocks::ReadsAndWrites,
            "the parent table is locked",
        ),
        // ACCESS EXCLUSIVE on the table attached, scanned unless a CHECK proves its rows fit; and
        // the parent's DEFAULT partition, when it has one, scanned for rows of the new bounds under
        // ACCESS EXCLUSIVE too: its rows, and every query on the parent that cannot prune it, wait.
        // Not knowing (offline) is planned as having one.
        Action::AttachPartition { table, .. } if !no_default_partition(ctx, table) => (
            "ACCESS EXCLUSIVE (the table attached, and the parent's DEFAULT partition if it has one), SHARE UPDATE EXCLUSIVE (parent)",
            Effect::Scan,
            Blocks::ReadsAndWrites,
            "scans the table attached unless a CHECK proves its rows fit the bounds, and the DEFAULT partition (if any) for rows of the new bounds, holding both ACCESS EXCLUSIVE: queries that reach either wait",
        ),
        Action::AttachPartition { .. } => (
            "ACCESS EXCLUSIVE (the table attached), SHARE UPDATE EXCLUSIVE (parent)",
            Effect::Scan,
            Blocks::Nothing,
            "scans the table attached unless a CHECK proves its rows fit the bounds (queries on it wait meanwhile); the parent has no DEFAULT partition",
        ),
        // validateDomainConstraint: SHARE on each table with a column of the domain while it scans.
        Action::AlterDomainAddConstraint { not_valid: false } => (
            "SHARE on the tables using the domain",
            Effect::Scan,
            Blocks::Writes,
            "checks every column using the domain",
        ),
        Action::MySqlRebuild { .. } => (
            "ALGORITHM=INPLACE rebuild or COPY",
            Effect::Copy,
            Blocks::Writes,
            "rebuilds the table",
        ),
        Action::Dml { .. } => (
            "ROW EXCLUSIVE",
            Effect::Backfill,
            Blocks::Nothing,
            "row locks on the rows it changes, held until commit",
        ),
        _ => ("none", Effect::Instant, Blocks::Nothing, ""),
    };
    OpPlan::safe_as_written(impact(lock, effect, blocks, note))
}

/// CREATE TABLE on PostgreSQL: new, but the tables it reads (AS SELECT, LIKE), inherits or
/// references are locked (measured against pg_locks in `plan_judged_by_server.rs`).
/// `names_others`: it names another table (a reference to its own name locks nothing else).
/// The live catalog says the partitioned table has no DEFAULT partition (false offline).
pub(super) fn no_default_partition(ctx: &Ctx, parent: &crate::analysis::ir::QName) -> bool {
    ctx.table_stats(parent)
        .is_some_and(|s| !s.has_default_partition)
}

fn pg_create_table(sql: &str, names_others: bool) -> Impact {
    let w = words(sql);
    if !names_others {
        // Only a query can still read existing tables.
    } else if has(&w, &["PARTITION", "OF"]) {
        return impact(
            "ACCESS EXCLUSIVE on the parent table",
            Effect::Instant,
            Blocks::ReadsAndWrites,
            "the parent is locked; ATTACH PARTITION takes only SHARE UPDATE EXCLUSIVE",
        );
    } else if has(&w, &["REFERENCES"]) {
        return impact(
            "SHARE ROW EXCLUSIVE on the referenced tables",
            Effect::Instant,
            Blocks::Writes,
            "new table; writes to the referenced tables wait while it waits for its lock",
        );
    } else if has(&w, &["INHERITS"]) {
        return impact(
            "SHARE UPDATE EXCLUSIVE on the parent table",
            Effect::Instant,
            Blocks::Nothing,
            "new table",
        );
    }
    // AS followed by a query (not a generated column's `AS (expr)`).
    let query = [
        &["AS", "SELECT"][..],
        &["AS", "(", "SELECT"],
        &["AS", "TABLE"],
        &["AS", "VALUES"],
        &["AS", "WITH"],
        &["AS", "EXECUTE"],
    ]
    .iter()
    .any(|q| has(&w, q));
    if query && !has(&w, &["WITH", "NO", "DATA"]) {
        return impact(
            "ACCESS SHARE on the tables it reads",
            Effect::Scan,
            Blocks::Nothing,
            "runs its query once; reads and writes continue",
        );
    }
    if query || has(&w, &["LIKE"]) {
        return impact(
            "ACCESS SHARE on the tables it reads",
            Effect::Instant,
            Blocks::Nothing,
            "new table",
        );
    }
    impact(
        "none on existing tables",
        Effect::Instant,
        Blocks::Nothing,
        "new table",
    )
}

/// The note of a statement sluice does not understand; `plan` lists it as such and lint flags it.
pub const NOT_UNDERSTOOD: &str =
    "not understood: planned as the strongest lock its statement kind can take";

/// The upper-cased words and parentheses of a statement, comments and quoted text left out.
fn words(sql: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = sql.chars().peekable();
    let flush = |cur: &mut String, out: &mut Vec<String>| {
        if !cur.is_empty() {
            out.push(std::mem::take(cur).to_uppercase());
        }
    };
    while let Some(c) = chars.next() {
        match c {
            '-' if chars.peek() == Some(&'-') => {
                flush(&mut cur, &mut out);
                for c in chars.by_ref() {
                    if c == '\n' {
                        break;
                    }
                }
            }
            '/' if chars.peek() == Some(&'*') => {
                flush(&mut cur, &mut out);
                let mut prev = ' ';
                for c in chars.by_ref() {
                    if prev == '*' && c == '/' {
                        break;
                    }
                    prev = c;
                }
            }
            '\'' | '"' => {
                flush(&mut cur, &mut out);
                for d in chars.by_ref() {
                    if d == c {
                        break;
                    }
                }
                out.push("?".into());
            }
            '(' | ')' => {
                flush(&mut cur, &mut out);
                out.push(c.to_string());
            }
            c if c.is_alphanumeric() || c == '_' => cur.push(c),
            _ => flush(&mut cur, &mut out),
        }
    }
    flush(&mut cur, &mut out);
    out
}

fn has(w: &[String], seq: &[&str]) -> bool {
    w.windows(seq.len())
        .any(|win| win.iter().zip(seq).all(|(a, b)| a == b))
}

/// A `SET (…)` / `RESET (…)` of storage parameters PostgreSQL changes under SHARE UPDATE EXCLUSIVE (the
/// ALTER TABLE page: fillfactor, toast and autovacuum parameters, parallel_workers); any other takes
/// ACCESS EXCLUSIVE.
fn light_storage_change(w: &[String]) -> bool {
    if !has(w, &["SET", "("]) && !has(w, &["RESET", "("]) {
        return false;
    }
    let Some(open) = w.iter().position(|x| x == "(") else {
        return false;
    };
    let names: Vec<&String> = w[open + 1..]
        .split(|x| x == ")")
        .next()
        .unwrap_or(&[])
        .iter()
        .filter(|x| {
            x.chars().all(|c| c.is_alphabetic() || c == '_')
                && x.contains(|c: char| c.is_alphabetic())
        })
        .collect();
    let light = |n: &str| {
        n == "FILLFACTOR"
            || n == "TOAST"
            || n == "TOAST_TUPLE_TARGET"
            || n == "PARALLEL_WORKERS"
            // Column attribute options (ALTER COLUMN … SET (n_distinct = …)).
            || n == "N_DISTINCT"
            || n == "N_DISTINCT_INHERITED"
            || n.starts_with("AUTOVACUUM_")
            || n.starts_with("VACUUM_")
            || matches!(n, "ON" | "OFF" | "TRUE" | "FALSE")
    };
    !names.is_empty() && names.iter().all(|n| light(n))
}

/// How a PostgreSQL statement the IR does not model behaves as written, from the lock table of the
/// PostgreSQL documentation (the same for 12 to 18). What is not recognised is `unknown`: ACCESS
/// EXCLUSIVE for anything that alters, locks or drops a relation, so `up` bounds its run time.
pub fn pg_by_words(sql: &str) -> Impact {
    let w = words(sql);
    let w: Vec<String> = w.into_iter().skip_while(|x| x == "(").collect();
    let head: Vec<&str> = w.iter().take(3).map(String::as_str).collect();
    let ae = "ACCESS EXCLUSIVE";
    let (lock, effect, blocks, note): (&str, Effect, Blocks, &str) = match head.as_slice() {
        ["SELECT", ..]
        | ["VALUES", ..]
        | ["SHOW", ..]
        | ["EXPLAIN", ..]
        | ["TABLE", ..]
        | ["WITH", ..]
        | ["INSERT", ..]
        | ["UPDATE", ..]
        | ["DELETE", ..]
        | ["MERGE", ..]
        | ["COPY", ..] => {
            // Row-locking clauses read like writes: take them out before looking for one.
            let mut rest: Vec<String> = Vec::with_capacity(w.len());
            let mut row_locks = false;
            let mut i = 0;
            while i < w.len() {
                let tail: Vec<&str> = w[i..].iter().take(4).map(String::as_str).collect();
                let skip = match tail.as_slice() {
                    ["FOR", "NO", "KEY", "UPDATE", ..] => 4,
                    ["FOR", "KEY", "SHARE", ..] => 3,
                    ["FOR", "UPDATE", ..] | ["FOR", "SHARE", ..] => 2,
                    _ => 0,
                };
                if skip > 0 {
                    row_locks = true;
                    i += skip;
                } else {
                    rest.push(w[i].clone());
                    i += 1;
                }
            }
            // `COPY … TO` only reads (ACCESS SHARE); `COPY … FROM` writes.
            // Outside parentheses, so a `COPY (SELECT … FROM t) TO` query's FROM does not count.
            let top: Vec<&str> = {
                let mut depth = 0i32;
                w.iter()
                    .filter(|x| {
                        match x.as_str() {
                            "(" => depth += 1,
                            ")" => depth -= 1,
                            _ => return depth == 0,
                        }
                        false
                    })
                    .map(String::as_str)
                    .collect()
            };
            let copy_out = head[0] == "COPY" && top.contains(&"TO") && !top.contains(&"FROM");
            let writes = ["INSERT", "UPDATE", "DELETE", "MERGE", "COPY", "INTO"]
                .iter()
                .filter(|k| !(copy_out && **k == "COPY"))
                .any(|k| rest.iter().any(|x| x == k));
            let explain_only = head[0] == "EXPLAIN" && !has(&w, &["ANALYZE"]);
            if writes && !explain_only {
                (
                    "ROW EXCLUSIVE",
                    Effect::Backfill,
                    Blocks::Nothing,
                    "row locks on the rows it changes, held until commit",
                )
            } else if row_locks {
                (
                    "ROW SHARE",
                    Effect::Instant,
                    Blocks::Nothing,
                    "locks the rows it reads",
                )
            } else {
                (
                    "ACCESS SHARE",
                    Effect::Instant,
                    Blocks::Nothing,
                    "reads only",
                )
            }
        }
        ["LOCK", ..] => {
            let mode = w
                .iter()
                .position(|x| x == "IN")
                .map(|i| {
                    w[i + 1..]
                        .iter()
                        .take_while(|x| *x != "MODE")
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .unwrap_or_else(|| ae.to_string());
            let blocks = match mode.as_str() {
                "ACCESS SHARE" | "ROW SHARE" | "ROW EXCLUSIVE" | "SHARE UPDATE EXCLUSIVE" => {
                    Blocks::Nothing
                }
                "SHARE" | "SHARE ROW EXCLUSIVE" | "EXCLUSIVE" => Blocks::Writes,
                _ => Blocks::ReadsAndWrites,
            };
            return impact(
                &mode,
                Effect::Instant,
                blocks,
                "held until the transaction ends",
            );
        }
        // A relation's or column's comment locks the relation; one on an object of a table
        // (constraint, trigger, policy, rule) only reads the table; others lock no table.
        ["COMMENT", "ON", kind]
            if matches!(
                *kind,
                "TABLE" | "COLUMN" | "INDEX" | "VIEW" | "MATERIALIZED" | "SEQUENCE" | "FOREIGN"
            ) =>
        {
            (
                "SHARE UPDATE EXCLUSIVE",
                Effect::Instant,
                Blocks::Nothing,
                "catalog only",
            )
        }
        ["COMMENT", "ON", kind]
            if matches!(*kind, "CONSTRAINT" | "TRIGGER" | "POLICY" | "RULE")
                && !has(&w, &["ON", "DOMAIN"]) =>
        {
            (
                "ACCESS SHARE",
                Effect::Instant,
                Blocks::Nothing,
                "catalog only",
            )
        }
        ["COMMENT", ..] => (
            "none on tables",
            Effect::Instant,
            Blocks::Nothing,
            "catalog only",
        ),
        ["ANALYZE", ..] | ["ANALYSE", ..] => (
            "SHARE UPDATE EXCLUSIVE",
            Effect::Scan,
            Blocks::Nothing,
            "reads a sample; does not block reads or writes",
        ),
        // Computes the query and applies the difference in place: no new file.
        ["REFRESH", "MATERIALIZED", ..] if has(&w, &["CONCURRENTLY"]) => (
            "EXCLUSIVE",
            Effect::Scan,
            Blocks::Writes,
            "reads continue; needs a unique index",
        ),
        ["REFRESH", "MATERIALIZED", ..] => (
            ae,
            Effect::Rewrite,
            Blocks::ReadsAndWrites,
            "the view cannot be read until it is rebuilt; use CONCURRENTLY",
        ),
        ["CREATE", ..] if has(&w, &["TRIGGER"]) && !has(&w, &["EVENT", "TRIGGER"]) => (
            "SHARE ROW EXCLUSIVE",
            Effect::Instant,
            Blocks::Writes,
            "catalog only; writes wait while it waits for its lock",
        ),
        ["CREATE", ..] | ["ALTER", ..] | ["DROP", ..]
            if has(&w, &["POLICY"])
                || has(&w, &["RULE"])
                || (head[0] == "DROP"
                    && has(&w, &["TRIGGER"])
                    && !has(&w, &["EVENT", "TRIGGER"])) =>
        {
            (ae, Effect::Instant, Blocks::ReadsAndWrites, "catalog only")
        }
        // A CREATE TABLE sqlparser does not parse (`(LIKE p INCLUDING ALL)`): what it names is
        // unknown, so taken to name other tables.
        ["CREATE", "TABLE", ..] | ["CREATE", _, "TABLE"] => return pg_create_table(sql, true),
        ["CREATE", "MATERIALIZED", ..] if has(&w, &["WITH", "NO", "DATA"]) => (
            "ACCESS SHARE on the tables it reads",
            Effect::Instant,
            Blocks::Nothing,
            "catalog only; REFRESH fills it",
        ),
        ["CREATE", "MATERIALIZED", ..] => (
            "ACCESS SHARE on the tables it reads",
            Effect::Scan,
            Blocks::Nothing,
            "runs its query once; reads and writes continue",
        ),
        // Replacing an existing view locks it; sluice cannot tell a new one from an existing one.
        ["CREATE", "OR", "REPLACE"] if has(&w, &["VIEW"]) => (
            "ACCESS EXCLUSIVE on the view (ACCESS SHARE on the tables it reads)",
            Effect::Instant,
            Blocks::ReadsAndWrites,
            "queries on the view wait; catalog only",
        ),
        ["CREATE", ..] if has(&w, &["STATISTICS"]) => (
            "SHARE UPDATE EXCLUSIVE",
            Effect::Instant,
            Blocks::Nothing,
            "catalog only; ANALYZE fills it",
        ),
        ["CREATE", ..] if has(&w, &["SEQUENCE"]) && has(&w, &["OWNED", "BY"]) => (
            "ACCESS SHARE on the owning table",
            Effect::Instant,
            Blocks::Nothing,
            "new sequence",
        ),
        ["CREATE", ..] if has(&w, &["VIEW"]) => (
            "ACCESS SHARE on the tables it reads",
            Effect::Instant,
            Blocks::Nothing,
            "catalog only",
        ),
        ["CREATE", ..] => (
            "none on existing tables",
            Effect::Instant,
            Blocks::Nothing,
            "new object",
        ),
        ["ALTER", "INDEX", ..] => {
            if has(&w, &["SET", "TABLESPACE"]) {
                (
                    ae,
                    Effect::Rewrite,
                    Blocks::ReadsAndWrites,
                    "rewrites the index",
                )
            } else if has(&w, &["RENAME"])
                || has(&w, &["ATTACH", "PARTITION"])
                || has(&w, &["SET", "STATISTICS"])
                || light_storage_change(&w)
            {
                (
                    "SHARE UPDATE EXCLUSIVE",
                    Effect::Instant,
                    Blocks::Nothing,
                    "catalog only",
                )
            } else {
                (ae, Effect::Instant, Blocks::ReadsAndWrites, NOT_UNDERSTOOD)
            }
        }
        // Checking a domain's values scans every table using it under SHARE.
        ["ALTER", "DOMAIN", ..] if has(&w, &["VALIDATE"]) || has(&w, &["SET", "NOT", "NULL"]) => (
            "SHARE on the tables using the domain",
            Effect::Scan,
            Blocks::Writes,
            "checks every column using the domain",
        ),
        ["ALTER", "DOMAIN", ..] => (
            "none on tables",
            Effect::Instant,
            Blocks::Nothing,
            "catalog only",
        ),
        // Renaming, owner, schema and persistence go through ALTER TABLE's ACCESS EXCLUSIVE.
        ["ALTER", "SEQUENCE", ..]
            if has(&w, &["RENAME"])
                || has(&w, &["OWNER", "TO"])
                || has(&w, &["SET", "SCHEMA"])
                || has(&w, &["SET", "LOGGED"])
                || has(&w, &["SET", "UNLOGGED"]) =>
        {
            (
                "ACCESS EXCLUSIVE on the sequence",
                Effect::Instant,
                Blocks::Nothing,
                "nextval() callers wait",
            )
        }
        ["ALTER", "SEQUENCE", ..] => (
            "SHARE ROW EXCLUSIVE on the sequence",
            Effect::Instant,
            Blocks::Nothing,
            "nextval() callers wait briefly",
        ),
        // A composite type's attributes reach the tables using it: not judged here.
        ["ALTER", "TYPE", ..] if !has(&w, &["ATTRIBUTE"]) => (
            "none on tables",
            Effect::Instant,
            Blocks::Nothing,
            "catalog only",
        ),
        ["ALTER", "TABLE", ..] | ["ALTER", "MATERIALIZED", ..] | ["ALTER", "FOREIGN", ..] => {
            if has(&w, &["SET", "UNLOGGED"])
                || has(&w, &["SET", "LOGGED"])
                || has(&w, &["SET", "TABLESPACE"])
                || has(&w, &["SET", "ACCESS", "METHOD"])
            {
                (
                    ae,
                    Effect::Rewrite,
                    Blocks::ReadsAndWrites,
                    "rewrites the table",
                )
            } else if has(&w, &["SET", "STATISTICS"])
                || has(&w, &["CLUSTER", "ON"])
                || has(&w, &["SET", "WITHOUT", "CLUSTER"])
                || light_storage_change(&w)
            {
                (
                    "SHARE UPDATE EXCLUSIVE",
                    Effect::Instant,
                    Blocks::Nothing,
                    "catalog only",
                )
            } else if (has(&w, &["ENABLE"]) || has(&w, &["DISABLE"])) && has(&w, &["TRIGGER"]) {
                (
                    "SHARE ROW EXCLUSIVE",
                    Effect::Instant,
                    Blocks::Writes,
                    "catalog only; writes wait while it waits for its lock",
                )
            } else if has(&w, &["ROW", "LEVEL", "SECURITY"])
                || has(&w, &["RENAME"])
                || has(&w, &["ADD", "GENERATED"])
                || has(&w, &["SET", "GENERATED"])
                || has(&w, &["DROP", "IDENTITY"])
                || has(&w, &["OWNER", "TO"])
                || has(&w, &["INHERIT"])
                || has(&w, &["REPLICA", "IDENTITY"])
                || has(&w, &["SET", "STORAGE"])
                || has(&w, &["SET", "COMPRESSION"])
                || has(&w, &["SET", "SCHEMA"])
                || has(&w, &["SET", "("])
                || has(&w, &["RESET", "("])
                || has(&w, &["OF"])
                || has(&w, &["RULE"])
            {
                (ae, Effect::Instant, Blocks::ReadsAndWrites, "catalog only")
            } else {
                (ae, Effect::Rewrite, Blocks::ReadsAndWrites, NOT_UNDERSTOOD)
            }
        }
        ["GRANT", ..]
        | ["REVOKE", ..]
        | ["SET", ..]
        | ["RESET", ..]
        | ["BEGIN", ..]
        | ["START", ..]
        | ["COMMIT", ..]
        | ["END", ..]
        | ["ROLLBACK", ..]
        | ["SAVEPOINT", ..]
        | ["RELEASE", ..]
        | ["DO", ..]
        | ["CALL", ..]
        | ["NOTIFY", ..]
        | ["LISTEN", ..]
        | ["DISCARD", ..]
        | ["DEALLOCATE", ..]
        | ["PREPARE", ..]
        | ["EXECUTE", ..]
        | ["SECURITY", ..]
        | ["CHECKPOINT", ..]
        | ["IMPORT", ..] => ("none on tables", Effect::Instant, Blocks::Nothing, ""),
        ["ALTER", ..] | ["DROP", ..] => {
            (ae, Effect::Instant, Blocks::ReadsAndWrites, NOT_UNDERSTOOD)
        }
        _ => (ae, Effect::Rewrite, Blocks::ReadsAndWrites, NOT_UNDERSTOOD),
    };
    impact(lock, effect, blocks, note)
}
