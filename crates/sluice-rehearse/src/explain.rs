//! Query plans before and after a migration (PostgreSQL and MariaDB).
//!
//! `rehearse --explain`: the workload's statements are explained on the clone before the
//! migration and again after it (the tables the migration or the statements name are ANALYZEd
//! first, so the after-plans see the new data's statistics). Parameterised statements are
//! PREPAREd and explained with `plan_cache_mode = force_generic_plan`, so the plan is the one a
//! driver's prepared statement gets, whatever the values. [`compare`] reports each statement whose
//! plan changed: its shape (node types, indexes, join order), the estimated cost ratio, and with
//! `--analyze` the measured time ratio (the median of five `EXPLAIN (ANALYZE)` runs in rolled-back
//! transactions).
//!
//! On MariaDB (`rehearse --explain` only) each statement is explained with its workload values
//! written in as literals (`EXPLAIN FORMAT=JSON`; there is no generic plan to ask for), and as
//! MariaDB gives no cost, the ratio's basis is the estimated number of rows examined
//! ([`summarize_mariadb`]); `--analyze` runs `ANALYZE FORMAT=JSON` in rolled-back transactions.
//!
//! `plan --explain` ([`live`]): the same plans on the live database, changing nothing: for an index
//! a pending migration adds, the plans the hot statements would get with it (a hypothetical index
//! from hypopg, inside a transaction that is rolled back); for a dropped index, the statements that
//! use it today and their plans without it (PostgreSQL: the index hidden by hypopg ≥ 1.4;
//! MariaDB/MySQL: the statement explained with `IGNORE INDEX`); for a dropped column, the
//! statements that name it.

use crate::db::{is_pg, Session};
use crate::workload::{Plan, Rng, Script, ScriptStep};
use serde::Serialize;
use sluice_core::analysis::ir;
use sluice_core::dburl::DbUrl;
use sluice_core::error::{Error, Result};
use sluice_core::quote;
use sluice_core::target::EngineKind;
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::tokenizer::{Token, Tokenizer};
use std::collections::{BTreeMap, BTreeSet};

/// A statement's estimated cost must move by more than this factor (either way) for the plan to
/// count as changed when its shape stayed the same: re-sampled statistics move estimates by a few
/// percent, which is not a change anyone should review.
pub const COST_NOISE: f64 = 1.25;

/// `--plan-regression-ratio` by default: an after-plan estimated at twice the cost or more.
pub const DEFAULT_REGRESSION_RATIO: f64 = 2.0;

/// The ratio basis on PostgreSQL: the planner's estimated total cost.
pub const COST_PG: &str = "estimated cost";

/// The ratio basis on MariaDB, which gives no cost in its JSON plans.
pub const COST_MARIADB: &str =
    "estimated rows examined (MariaDB gives no cost: rows × filtered along the join)";

/// `EXPLAIN (ANALYZE)` runs per statement and phase (after one warm-up run); the median counts.
const ANALYZE_RUNS: usize = 5;

/// One statement to explain.
#[derive(Debug, Clone)]
pub struct Probe {
    /// As the workload or the user wrote it.
    pub query: String,
    /// With `$n` placeholders where the workload has variables.
    pub sql: String,
    /// The highest placeholder number (0: none, explained directly).
    pub params: usize,
    /// Literal values for the placeholders, for `--analyze` (None: not executed).
    pub values: Option<Vec<String>>,
}

/// What the plan of one statement is.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PlanSummary {
    /// The root node's estimated total cost.
    pub total_cost: f64,
    /// The tree, e.g. `Hash Join(Seq Scan on orders, Hash(Index Scan using users_pkey on users))`.
    pub shape: String,
    /// The indexes the plan reads.
    pub indexes: Vec<String>,
    /// The tables scanned, in plan order (the join order when there are several).
    pub join_order: Vec<String>,
    /// `--analyze`: the median execution time on the clone.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time_ms: Option<f64>,
}

/// A statement whose plan changed.
#[derive(Debug, Clone, Serialize)]
pub struct PlanChange {
    pub query: String,
    pub before: PlanSummary,
    /// None when the statement fails after the migration (`error_after`).
    pub after: Option<PlanSummary>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_after: Option<String>,
    /// After / before estimated total cost.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cost_ratio: Option<f64>,
    /// After / before measured time (`--analyze`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time_ratio: Option<f64>,
    pub indexes_no_longer_used: Vec<String>,
    pub indexes_newly_used: Vec<String>,
    pub join_order_changed: bool,
    /// Cost ratio at or above the regression ratio, or the statement fails after the migration.
    pub regression: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct NotExplained {
    pub query: String,
    pub reason: String,
}

/// The query-plan section of a rehearsal.
#[derive(Debug, Clone, Serialize)]
pub struct PlanSection {
    /// Statements explained before and after.
    pub explained: usize,
    /// What `total_cost` and the ratios measure: [`COST_PG`] or [`COST_MARIADB`].
    pub cost_unit: String,
    /// `COST_NOISE`: a same-shape plan whose cost moved less than this is unchanged.
    pub noise_ratio: f64,
    pub regression_ratio: f64,
    pub analyzed: bool,
    /// The tables ANALYZEd before the after-plans.
    pub analyzed_tables: Vec<String>,
    pub changed: Vec<PlanChange>,
    pub regressions: usize,
    pub not_explained: Vec<NotExplained>,
}

fn is_explainable(sql: &str) -> bool {
    let first = sql
        .trim_start()
        .split(|c: char| !c.is_ascii_alphabetic())
        .next()
        .unwrap_or("")
        .to_ascii_lowercase();
    matches!(
        first.as_str(),
        "select" | "with" | "insert" | "update" | "delete" | "values" | "table"
    )
}

/// Exactly one statement (strings, quoted names, dollar quotes and comments understood).
fn single_statement(sql: &str) -> bool {
    sluice_core::sql::split(EngineKind::Postgres, sql).is_ok_and(|v| v.len() == 1)
}

/// The highest `$n` placeholder of a statement (not inside strings or comments).
pub fn max_placeholder(sql: &str) -> usize {
    Tokenizer::new(&PostgreSqlDialect {}, sql)
        .tokenize()
        .unwrap_or_default()
        .iter()
        .filter_map(|t| match t {
            Token::Placeholder(p) => p.strip_prefix('$').and_then(|n| n.parse().ok()),
            _ => None,
        })
        .max()
        .unwrap_or(0)
}

/// A script step with its `:name` variables as `$1, $2…` (numbered in order of first use), and
/// the middle of each variable's range as its value; on MariaDB that value written in as a
/// literal instead (no placeholder left).
fn script_probe(sql: &str, ranges: &BTreeMap<String, (i64, i64)>, kind: EngineKind) -> Probe {
    let pg = kind == EngineKind::Postgres;
    let mid = |name: &str| {
        let (lo, hi) = ranges[name];
        (lo + (hi - lo) / 2).to_string()
    };
    let b = sql.as_bytes();
    let mut out = String::with_capacity(sql.len());
    let mut order: Vec<String> = Vec::new();
    let mut i = 0;
    let mut last = 0;
    while i < b.len() {
        if b[i] == b':' && (i == 0 || b[i - 1] != b':') && b.get(i + 1) != Some(&b':') {
            let start = i + 1;
            let mut end = start;
            while end < b.len() && (b[end].is_ascii_alphanumeric() || b[end] == b'_') {
                end += 1;
            }
            let name = &sql[start..end];
            if ranges.contains_key(name) {
                let n = match order.iter().position(|o| o == name) {
                    Some(p) => p + 1,
                    None => {
                        order.push(name.to_string());
                        order.len()
                    }
                };
                out.push_str(&sql[last..i]);
                if pg {
                    out.push_str(&format!("${n}"));
                } else {
                    out.push_str(&quote::mysql::literal(&mid(name)));
                }
                i = end;
                last = end;
                continue;
            }
        }
        i += 1;
    }
    out.push_str(&sql[last..]);
    if !pg {
        return Probe {
            query: sql.to_string(),
            params: 0,
            sql: out,
            values: Some(vec![]),
        };
    }
    let values = order.iter().map(|n| quote::pg::literal(&mid(n))).collect();
    Probe {
        query: sql.to_string(),
        params: order.len(),
        sql: out,
        values: Some(values),
    }
}

/// The statements of a script (the SQL steps that EXPLAIN takes), deduplicated.
pub fn script_probes(script: &Script) -> Vec<Probe> {
    script_probes_for(script, EngineKind::Postgres)
}

fn script_probes_for(script: &Script, kind: EngineKind) -> Vec<Probe> {
    let mut ranges = BTreeMap::new();
    let mut out: Vec<Probe> = Vec::new();
    for step in &script.steps {
        match step {
            ScriptStep::Set { name, lo, hi } => {
                ranges.insert(name.clone(), (*lo, *hi));
            }
            ScriptStep::Sql(sql) if is_explainable(sql) => {
                let p = script_probe(sql, &ranges, kind);
                if !out.iter().any(|o| o.sql == p.sql) {
                    out.push(p);
                }
            }
            ScriptStep::Sql(_) => {}
        }
    }
    out
}

/// The statements a rehearsal's workload runs. On MariaDB their values are written in as
/// literals (its EXPLAIN has no generic plan); a statement without values keeps its placeholders
/// and is reported as not explained, never explained with NULLs.
pub fn probes(plan: &Plan, kind: EngineKind) -> Vec<Probe> {
    let pg = kind == EngineKind::Postgres;
    let lit = |v: &str| {
        if pg {
            quote::pg::literal(v)
        } else {
            quote::mysql::literal(v)
        }
    };
    match plan {
        Plan::Derived(targets, _) => targets
            .iter()
            .flat_map(|t| t.statements())
            .map(|(sql, values)| {
                let values: Vec<String> = values.iter().map(|v| lit(&v.to_string())).collect();
                if pg {
                    return Probe {
                        query: sql.clone(),
                        params: max_placeholder(&sql),
                        values: Some(values),
                        sql,
                    };
                }
                let filled = fill_question_marks(&sql, &values);
                Probe {
                    query: sql.clone(),
                    params: if filled.is_some() { 0 } else { 1 },
                    sql: filled.unwrap_or(sql),
                    values: Some(vec![]),
                }
            })
            .collect(),
        Plan::Script(s) => script_probes_for(s, kind),
        Plan::Top(t) => {
            let mut rng = Rng::new(16);
            t.statements
                .iter()
                .map(|s| {
                    let params = max_placeholder(&s.query);
                    let vals = s.param_values(&mut rng);
                    let values: Vec<Option<String>> = (1..=params)
                        .map(|n| vals.get(&format!("${n}")).map(|v| lit(v)))
                        .collect();
                    if !pg {
                        // pg_stat_statements is PostgreSQL's: no MariaDB workload gets here.
                        return Probe {
                            query: s.query.clone(),
                            sql: s.query.clone(),
                            params,
                            values: None,
                        };
                    }
                    Probe {
                        query: s.query.clone(),
                        sql: s.query.clone(),
                        params,
                        values: Some(
                            values
                                .into_iter()
                                .map(|v| v.unwrap_or_else(|| "NULL".into()))
                                .collect(),
                        ),
                    }
                })
                .collect()
        }
    }
}

/// MariaDB `?` placeholders (outside strings, quoted names and comments) replaced in order by
/// `values`, already quoted; None when their number differs.
fn fill_question_marks(sql: &str, values: &[String]) -> Option<String> {
    let b = sql.as_bytes();
    let mut out = String::with_capacity(sql.len() + 16);
    let mut next = values.iter();
    let (mut i, mut last) = (0, 0);
    while i < b.len() {
        match b[i] {
            q @ (b'\'' | b'"' | b'`') => {
                i += 1;
                while i < b.len() {
                    // A backslash escape (not in backticks) or a doubled quote: skip both.
                    if (b[i] == b'\\' && q != b'`') || (b[i] == q && b.get(i + 1) == Some(&q)) {
                        i += 2;
                    } else if b[i] == q {
                        break;
                    } else {
                        i += 1;
                    }
                }
                i += 1;
            }
            b'#' => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'-' if b.get(i + 1) == Some(&b'-') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                i += 2;
                while i + 1 < b.len() && !(b[i] == b'*' && b[i + 1] == b'/') {
                    i += 1;
                }
                i += 2;
            }
            b'?' => {
                out.push_str(&sql[last..i]);
                out.push_str(next.next()?);
                i += 1;
                last = i;
            }
            _ => i += 1,
        }
    }
    if next.next().is_some() {
        return None;
    }
    out.push_str(&sql[last.min(sql.len())..]);
    Some(out)
}

/// Walks an EXPLAIN (FORMAT JSON) node into its shape.
fn walk(n: &serde_json::Value, indexes: &mut Vec<String>, scans: &mut Vec<String>) -> String {
    let ty = n["Node Type"].as_str().unwrap_or("?");
    let mut label = match n["Operation"].as_str() {
        Some(op) if ty == "ModifyTable" => op.to_string(),
        _ => ty.to_string(),
    };
    if let Some(j) = n["Join Type"].as_str() {
        if j != "Inner" {
            label = format!("{label} ({j})");
        }
    }
    if let Some(i) = n["Index Name"].as_str() {
        label.push_str(&format!(" using {i}"));
        if !indexes.iter().any(|x| x == i) {
            indexes.push(i.to_string());
        }
    }
    if let Some(r) = n["Relation Name"].as_str() {
        label.push_str(&format!(" on {r}"));
        if ty.ends_with("Scan") {
            scans.push(r.to_string());
        }
    }
    let kids: Vec<String> = n["Plans"]
        .as_array()
        .map(|a| a.iter().map(|k| walk(k, indexes, scans)).collect())
        .unwrap_or_default();
    if kids.is_empty() {
        label
    } else {
        format!("{label}({})", kids.join(", "))
    }
}

/// The summary of one `EXPLAIN (FORMAT JSON)` output.
pub fn summarize(json: &str) -> std::result::Result<PlanSummary, String> {
    let v: serde_json::Value =
        serde_json::from_str(json).map_err(|e| format!("unreadable EXPLAIN output: {e}"))?;
    let top = &v[0];
    let root = &top["Plan"];
    if !root.is_object() {
        return Err("EXPLAIN returned no plan".into());
    }
    let mut indexes = Vec::new();
    let mut scans = Vec::new();
    let shape = walk(root, &mut indexes, &mut scans);
    Ok(PlanSummary {
        total_cost: root["Total Cost"].as_f64().unwrap_or(0.0),
        shape,
        indexes,
        join_order: scans,
        time_ms: top["Execution Time"].as_f64(),
    })
}

/// The running estimate of a MariaDB plan: rows examined so far, and rows produced per row of
/// the outer query (the fan-out the next table of a nested loop is read for).
struct MyAcc {
    indexes: Vec<String>,
    tables: Vec<String>,
    examined: f64,
}

/// Every `key` string in a table's access (an index merge names several), the materialized
/// subquery left out (its own tables name their own).
fn my_keys(v: &serde_json::Value, out: &mut Vec<String>) {
    if let Some(o) = v.as_object() {
        for (k, x) in o {
            match (k.as_str(), x) {
                ("key", serde_json::Value::String(name)) => {
                    if !out.contains(name) {
                        out.push(name.clone());
                    }
                }
                ("materialized", _) => {}
                _ => my_keys(x, out),
            }
        }
    } else if let Some(a) = v.as_array() {
        for x in a {
            my_keys(x, out);
        }
    }
}

/// One table access: `ref using accounts_owner_idx on accounts`. `buffered`: joined through the
/// join buffer, read once per buffer fill rather than once per outer row, so its rows count once.
fn my_table(t: &serde_json::Value, buffered: bool, fanout: &mut f64, acc: &mut MyAcc) -> String {
    let Some(name) = t["table_name"].as_str() else {
        return t["message"].as_str().unwrap_or("?").to_string();
    };
    let mut label = match t["access_type"].as_str() {
        Some(a) => a.to_string(),
        None => "write".to_string(),
    };
    for op in ["update", "delete"] {
        if t.get(op).is_some() {
            label = format!("{op} {label}");
        }
    }
    let mut keys = Vec::new();
    my_keys(t, &mut keys);
    if !keys.is_empty() {
        label.push_str(&format!(" using {}", keys.join(", ")));
        for k in keys {
            if !acc.indexes.contains(&k) {
                acc.indexes.push(k);
            }
        }
    }
    label.push_str(&format!(" on {name}"));
    acc.tables.push(name.to_string());
    let rows = t["rows"].as_f64().unwrap_or(1.0);
    let filtered = t["filtered"].as_f64().unwrap_or(100.0);
    acc.examined += if buffered { rows } else { *fanout * rows };
    *fanout *= rows * filtered / 100.0;
    if let Some(m) = t.get("materialized") {
        // Materialized once: its own fan-out, its rows added to the total.
        let inner = my_parts(m, &mut 1.0, acc);
        label = format!("{label}(materialized {})", inner.join(", "));
    }
    label
}

/// The parts of one object of MariaDB's plan (a query block or a wrapper around one), in the
/// order the server wrote them (a nested loop's tables in join order).
fn my_parts(v: &serde_json::Value, fanout: &mut f64, acc: &mut MyAcc) -> Vec<String> {
    let Some(o) = v.as_object() else {
        return vec![];
    };
    let mut parts = Vec::new();
    for (k, x) in o {
        match k.as_str() {
            "table" => parts.push(my_table(x, false, fanout, acc)),
            "nested_loop" => {
                let mut items = Vec::new();
                for item in x.as_array().into_iter().flatten() {
                    items.extend(my_parts(item, fanout, acc));
                }
                parts.push(if items.len() == 1 {
                    items.remove(0)
                } else {
                    format!("Nested Loop({})", items.join(", "))
                });
            }
            "block-nl-join" => {
                let how = x["join_type"].as_str().unwrap_or("BNL");
                let inner = my_table(&x["table"], true, fanout, acc);
                parts.push(format!("{how} join({inner})"));
            }
            "query_block" => parts.extend(my_parts(x, &mut 1.0, acc)),
            "union_result" => {
                let mut specs = Vec::new();
                for q in x["query_specifications"].as_array().into_iter().flatten() {
                    specs.extend(my_parts(q, &mut 1.0, acc));
                }
                parts.push(format!("Union({})", specs.join(", ")));
            }
            "subqueries" => {
                for q in x.as_array().into_iter().flatten() {
                    let inner = my_parts(q, &mut 1.0, acc);
                    parts.push(format!("Subquery({})", inner.join(", ")));
                }
            }
            "filesort"
            | "temporary_table"
            | "duplicates_removal"
            | "read_sorted_file"
            | "window_functions_computation"
            | "expression_cache"
            | "materialized" => {
                let inner = my_parts(x, fanout, acc);
                let label = match k.as_str() {
                    "filesort" => "Filesort",
                    "temporary_table" => "Temporary",
                    "duplicates_removal" => "Duplicates Removal",
                    "read_sorted_file" => "Sorted File",
                    "window_functions_computation" => "Window",
                    "expression_cache" => "Expression Cache",
                    _ => "Materialized",
                };
                parts.push(format!("{label}({})", inner.join(", ")));
            }
            // Conditions, timings, sort keys: not the plan's shape.
            _ => {}
        }
    }
    parts
}

/// The summary of one MariaDB `EXPLAIN FORMAT=JSON` (or `ANALYZE FORMAT=JSON`) output. MariaDB
/// gives no cost, so `total_cost` is the estimated number of rows examined: each table's `rows`
/// times the rows the tables before it in the nested loop produce (`rows × filtered / 100` each),
/// a table read through the join buffer counted once.
pub fn summarize_mariadb(json: &str) -> std::result::Result<PlanSummary, String> {
    let v: serde_json::Value =
        serde_json::from_str(json).map_err(|e| format!("unreadable EXPLAIN output: {e}"))?;
    let top = &v["query_block"];
    if !top.is_object() {
        return Err("EXPLAIN returned no plan".into());
    }
    let mut acc = MyAcc {
        indexes: vec![],
        tables: vec![],
        examined: 0.0,
    };
    let parts = my_parts(top, &mut 1.0, &mut acc);
    Ok(PlanSummary {
        total_cost: acc.examined,
        shape: parts.join(", "),
        indexes: acc.indexes,
        join_order: acc.tables,
        time_ms: top["r_total_time_ms"].as_f64(),
    })
}

/// A session for EXPLAIN: generic plans, and never waiting long for a lock or a plan.
pub async fn explain_session(url: &DbUrl) -> Result<Session> {
    let mut s = Session::open(url).await?;
    s.batch(if is_pg(url) {
        "SET plan_cache_mode = force_generic_plan; SET lock_timeout = '2s'; SET statement_timeout = '60s'"
    } else {
        "SET SESSION lock_wait_timeout = 2, innodb_lock_wait_timeout = 2, max_statement_time = 60"
    })
    .await
    .map_err(|e| {
        Error::database(
            "preparing the EXPLAIN session",
            format!("{} ({})", e.message, e.code),
        )
    })?;
    Ok(s)
}

async fn one_json(s: &mut Session, sql: &str) -> std::result::Result<String, String> {
    let rows = s
        .pg()
        .simple_query(sql)
        .await
        .map_err(|e| crate::db::QueryError::pg(e).message)?;
    for m in rows {
        if let tokio_postgres::SimpleQueryMessage::Row(r) = m {
            return r
                .get(0)
                .map(str::to_string)
                .ok_or_else(|| "EXPLAIN returned NULL".to_string());
        }
    }
    Err("EXPLAIN returned no row".into())
}

/// The plan of one statement on a session made by [`explain_session`]: PREPAREd and explained as
/// a generic plan when it has placeholders (NULL values: a generic plan does not look at them).
/// `analyze`: also the median time of `EXPLAIN (ANALYZE)` with the probe's values, each run in a
/// transaction that is rolled back.
pub async fn explain_one(
    s: &mut Session,
    p: &Probe,
    analyze: bool,
) -> std::result::Result<PlanSummary, String> {
    if let Session::My(_) = s {
        return explain_one_mariadb(s, p, analyze).await;
    }
    // The text goes into EXPLAIN / PREPARE over the simple protocol: a second statement after a
    // `;` would run (on the live database, for `plan --explain`). Exactly one, or nothing runs.
    if !is_explainable(&p.sql) || !single_statement(&p.sql) {
        return Err("not a single SELECT, INSERT, UPDATE or DELETE statement".into());
    }
    // A fresh name each time: a cached generic plan would not see a hypothetical index, and a
    // PREPARE survives the rollback of a failed savepoint.
    static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let name = format!(
        "sluice_explain_{}",
        SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    );
    let target = |values: Option<&[String]>| {
        if p.params == 0 {
            p.sql.clone()
        } else {
            let v: Vec<String> = match values {
                Some(v) => v.to_vec(),
                None => vec!["NULL".into(); p.params],
            };
            format!("EXECUTE {name}({})", v.join(", "))
        }
    };
    if p.params > 0 {
        s.batch(&format!("PREPARE {name} AS {}", p.sql))
            .await
            .map_err(|e| e.message)?;
    }
    let plan = one_json(s, &format!("EXPLAIN (FORMAT JSON) {}", target(None))).await;
    let mut summary = match plan {
        Ok(j) => summarize(&j)?,
        Err(e) => {
            if p.params > 0 {
                let _ = s.batch(&format!("DEALLOCATE {name}")).await;
            }
            return Err(e);
        }
    };
    if analyze {
        if let Some(values) = p.values.as_deref() {
            let sql = format!("EXPLAIN (ANALYZE, FORMAT JSON) {}", target(Some(values)));
            if let Some(t) = median_analyzed(s, false, &sql).await {
                summary.time_ms = Some(t);
            }
        }
    }
    if p.params > 0 {
        let _ = s.batch(&format!("DEALLOCATE {name}")).await;
    }
    Ok(summary)
}

/// The median measured time of `sql` (an EXPLAIN ANALYZE / ANALYZE FORMAT=JSON) over
/// ANALYZE_RUNS runs after one warm-up, each in a transaction rolled back (a DML statement changes
/// nothing); the runs stop at the first failure, and None when none measured a time.
async fn median_analyzed(s: &mut Session, mariadb: bool, sql: &str) -> Option<f64> {
    let mut times = Vec::new();
    for run in 0..=ANALYZE_RUNS {
        let begin = if mariadb {
            "START TRANSACTION"
        } else {
            "BEGIN"
        };
        if s.batch(begin).await.is_err() {
            break;
        }
        let r = if mariadb {
            my_json(s, sql).await
        } else {
            one_json(s, sql).await
        };
        let _ = s.batch("ROLLBACK").await;
        let summarized = r.and_then(|j| match mariadb {
            true => summarize_mariadb(&j),
            false => summarize(&j),
        });
        match summarized {
            Ok(a) if run > 0 => times.extend(a.time_ms),
            Ok(_) => {}
            Err(_) => break,
        }
    }
    times.sort_by(|a, b| a.total_cmp(b));
    times.get(times.len() / 2).copied()
}

async fn my_json(s: &mut Session, sql: &str) -> std::result::Result<String, String> {
    use mysql_async::prelude::Queryable;
    let row: Option<String> = s
        .my()
        .query_first(sql)
        .await
        .map_err(|e| crate::db::QueryError::my(e).message)?;
    row.ok_or_else(|| "EXPLAIN returned no row".to_string())
}

/// [`explain_one`] on MariaDB: the statement with its values written in (`Probe::sql`);
/// `analyze`: the median `r_total_time_ms` of five `ANALYZE FORMAT=JSON` runs (after a warm-up),
/// each in a transaction rolled back, as ANALYZE executes the statement.
async fn explain_one_mariadb(
    s: &mut Session,
    p: &Probe,
    analyze: bool,
) -> std::result::Result<PlanSummary, String> {
    if !is_explainable(&p.sql)
        || !sluice_core::sql::split(EngineKind::MariaDb, &p.sql).is_ok_and(|v| v.len() == 1)
    {
        return Err("not a single SELECT, INSERT, UPDATE or DELETE statement".into());
    }
    if p.params > 0 {
        // A plan for NULLs would be a plan no real execution gets.
        return Err(
            "has placeholders without values (MariaDB explains a statement with its values)".into(),
        );
    }
    let mut summary =
        summarize_mariadb(&my_json(s, &format!("EXPLAIN FORMAT=JSON {}", p.sql)).await?)?;
    if analyze {
        let sql = format!("ANALYZE FORMAT=JSON {}", p.sql);
        if let Some(t) = median_analyzed(s, true, &sql).await {
            summary.time_ms = Some(t);
        }
    }
    Ok(summary)
}

pub type Recorded = Vec<std::result::Result<PlanSummary, String>>;

/// Every probe's plan on the database at `url`.
pub async fn record(url: &DbUrl, probes: &[Probe], analyze: bool) -> Result<Recorded> {
    let mut s = explain_session(url).await?;
    let mut out = Vec::new();
    for p in probes {
        out.push(explain_one(&mut s, p, analyze).await);
    }
    s.close().await;
    Ok(out)
}

/// ANALYZE of each table (the clone's `schema.table` keys); a table the migration dropped is
/// skipped. Returns the tables analyzed.
pub async fn analyze_tables(url: &DbUrl, tables: &BTreeSet<String>) -> Result<Vec<String>> {
    let mut s = Session::open(url).await?;
    let mut done = Vec::new();
    if !is_pg(url) {
        for t in tables {
            // ANALYZE TABLE reports a missing table as a row, not as an error.
            let sql = format!("ANALYZE TABLE {}", crate::clone::table_sql(false, t));
            let rows = match s.rows(&sql).await {
                Ok(r) => r,
                Err(e) => {
                    s.close().await;
                    return Err(e);
                }
            };
            let failed = rows.iter().any(|r| {
                r.get(2)
                    .and_then(|m| m.as_deref())
                    .is_some_and(|m| m.eq_ignore_ascii_case("error"))
            });
            if !failed {
                done.push(t.clone());
            }
        }
        s.close().await;
        return Ok(done);
    }
    for t in tables {
        let sql = format!("ANALYZE {}", crate::clone::table_sql(true, t));
        match s.batch(&sql).await {
            Ok(()) => done.push(t.clone()),
            // 42P01: the table is gone.
            Err(e) if e.code == "42P01" => {}
            Err(e) => {
                s.close().await;
                return Err(Error::database(sql, format!("{} ({})", e.message, e.code)));
            }
        }
    }
    s.close().await;
    Ok(done)
}

fn ratio(after: f64, before: f64) -> f64 {
    // A plan never costs less than a hundredth of a page read.
    after.max(0.01) / before.max(0.01)
}

/// Whether a plan changed, as the report counts it: another shape, or a cost that moved by more
/// than [`COST_NOISE`].
pub fn plan_changed(before: &PlanSummary, after: &PlanSummary) -> bool {
    let r = ratio(after.total_cost, before.total_cost);
    before.shape != after.shape || !(1.0 / COST_NOISE..=COST_NOISE).contains(&r)
}

/// Compares the plans before and after.
pub fn compare(
    probes: &[Probe],
    before: &Recorded,
    after: &Recorded,
    regression_ratio: f64,
    analyzed: bool,
    analyzed_tables: Vec<String>,
) -> PlanSection {
    let mut changed = Vec::new();
    let mut not_explained = Vec::new();
    let mut explained = 0;
    for ((p, b), a) in probes.iter().zip(before).zip(after) {
        let b = match b {
            Ok(b) => b,
            Err(e) => {
                not_explained.push(NotExplained {
                    query: p.query.clone(),
                    reason: format!("fails before the migration: {e}"),
                });
                continue;
            }
        };
        explained += 1;
        match a {
            Err(e) => changed.push(PlanChange {
                query: p.query.clone(),
                before: b.clone(),
                after: None,
                error_after: Some(e.clone()),
                cost_ratio: None,
                time_ratio: None,
                indexes_no_longer_used: b.indexes.clone(),
                indexes_newly_used: vec![],
                join_order_changed: false,
                regression: true,
            }),
            Ok(a) => {
                let cost_ratio = ratio(a.total_cost, b.total_cost);
                let regression = cost_ratio >= regression_ratio;
                if !plan_changed(b, a) && !regression {
                    continue;
                }
                changed.push(PlanChange {
                    query: p.query.clone(),
                    before: b.clone(),
                    after: Some(a.clone()),
                    error_after: None,
                    cost_ratio: Some(cost_ratio),
                    time_ratio: match (a.time_ms, b.time_ms) {
                        (Some(x), Some(y)) => Some(x.max(0.001) / y.max(0.001)),
                        _ => None,
                    },
                    indexes_no_longer_used: b
                        .indexes
                        .iter()
                        .filter(|i| !a.indexes.contains(i))
                        .cloned()
                        .collect(),
                    indexes_newly_used: a
                        .indexes
                        .iter()
                        .filter(|i| !b.indexes.contains(i))
                        .cloned()
                        .collect(),
                    join_order_changed: b.join_order.len() > 1 && a.join_order != b.join_order,
                    regression,
                })
            }
        }
    }
    PlanSection {
        explained,
        cost_unit: COST_PG.into(),
        noise_ratio: COST_NOISE,
        regression_ratio,
        analyzed,
        analyzed_tables,
        regressions: changed.iter().filter(|c| c.regression).count(),
        changed,
        not_explained,
    }
}

// ---------------------------------------------------------------------------------------------
// `sluice plan --explain`: the live database, unchanged.

/// How hypothetical indexes were available.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "snake_case")]
pub enum Hypopg {
    /// The extension exists in the database.
    Installed,
    /// Installed on the server, created for this check in a transaction that was rolled back.
    CreatedAndRolledBack,
    /// Not usable; the message says how to install it.
    Missing(String),
    /// MariaDB/MySQL: there are no hypothetical indexes.
    NotOnThisEngine,
}

/// One hot statement a pending change affects.
#[derive(Debug, Clone, Serialize)]
pub struct LiveUse {
    pub query: String,
    pub today: PlanSummary,
    /// With the hypothetical index (a new index), or with the index hidden (a dropped index, hypopg
    /// ≥ 1.4); None when it cannot be shown.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub with_change: Option<PlanSummary>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cost_ratio: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct LiveChange {
    /// `create index`, `drop index` or `drop column`.
    pub kind: String,
    pub migration: String,
    pub statement: String,
    /// The index (`schema.name` as written) or `table.column`.
    pub target: String,
    /// The hot statements it affects: that would use the new index, that use the dropped index
    /// today, that name the dropped column.
    pub statements: Vec<LiveUse>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct LiveSection {
    /// `pg_stat_statements (top N)` or the `--queries` file.
    pub source: String,
    pub statements: usize,
    pub hypopg: Hypopg,
    pub changes: Vec<LiveChange>,
    pub not_explained: Vec<NotExplained>,
    pub notes: Vec<String>,
}

/// The pending statements of one migration, for [`live`].
pub struct PendingMigration {
    pub label: String,
    pub statements: Vec<String>,
}

/// How to get hypopg, for the server's major version.
pub fn hypopg_howto(major: u32) -> String {
    format!(
        "install hypopg on the database server (Debian/Ubuntu: `apt-get install postgresql-{major}-hypopg`; RHEL: `dnf install hypopg_{major}`; else build it from https://github.com/HypoPG/hypopg), then run `CREATE EXTENSION hypopg;` in this database (or let sluice create it in a rolled-back transaction: that needs a superuser); without it `plan --explain` shows no plans with the new indexes"
    )
}

fn pg_major(version_num: &str) -> u32 {
    version_num.parse::<u32>().map(|v| v / 10_000).unwrap_or(15)
}

/// The hot statements from pg_stat_statements (top 20, `$n` placeholders as they are there);
/// Err with how to enable it when it is missing.
pub async fn top_probes(url: &DbUrl) -> std::result::Result<Vec<Probe>, Error> {
    let rows = crate::top::read_top(url).await?;
    let mut out = Vec::new();
    for r in rows {
        if out.len() == crate::top::TOP {
            break;
        }
        if !is_explainable(&r.query) {
            continue;
        }
        out.push(Probe {
            params: max_placeholder(&r.query),
            sql: r.query.clone(),
            query: r.query,
            values: None,
        });
    }
    Ok(out)
}

/// MariaDB/MySQL's hot statements, with their values: performance_schema's statement history
/// (`events_statements_history_long`: each statement as sent, unlike the digests, whose texts
/// keep no values and so cannot be explained), one text per digest, most frequent first, this
/// database's only, without catalog queries (sluice's own, a driver's, a console's). An error (with how to turn it on) when that history is not kept: it needs
/// `performance_schema=ON` (a server restart) and the consumer enabled.
pub async fn top_probes_mariadb(url: &DbUrl) -> std::result::Result<Vec<Probe>, Error> {
    let how = "turn on the statement history: `performance_schema=ON` in the server's configuration (a restart), then `UPDATE performance_schema.setup_consumers SET ENABLED = 'YES' WHERE NAME IN ('events_statements_current', 'events_statements_history_long')` (the history is fed through the current-statement consumer)";
    let mut s = Session::open(url).await?;
    let on = s.scalar("SELECT @@performance_schema").await?;
    if !matches!(on.as_deref(), Some("1") | Some("ON")) {
        s.close().await;
        return Err(Error::usage(
            "performance_schema is off on this server, so it keeps no statements",
            how,
        ));
    }
    let off = s
        .scalar(
            "SELECT GROUP_CONCAT(NAME ORDER BY NAME SEPARATOR ', ') FROM performance_schema.setup_consumers
              WHERE NAME IN ('events_statements_current', 'events_statements_history_long') AND ENABLED <> 'YES'",
        )
        .await?;
    if let Some(off) = off.filter(|o| !o.is_empty()) {
        s.close().await;
        return Err(Error::usage(
            format!("performance_schema keeps no statement history (consumers off: {off})"),
            how,
        ));
    }
    let rows = s
        .rows(
            "SELECT MIN(SQL_TEXT), COUNT(*) AS n FROM performance_schema.events_statements_history_long
              WHERE CURRENT_SCHEMA = DATABASE() AND SQL_TEXT IS NOT NULL AND DIGEST IS NOT NULL
                AND SQL_TEXT NOT LIKE '%performance\\_schema%' AND SQL_TEXT NOT LIKE '%information\\_schema%'
                AND SQL_TEXT NOT LIKE '%sluice\\_%'
              GROUP BY DIGEST ORDER BY n DESC, MIN(SQL_TEXT) LIMIT 200",
        )
        .await?;
    s.close().await;
    let mut out = Vec::new();
    for r in rows {
        let Some(Some(q)) = r.into_iter().next() else {
            continue;
        };
        if out.len() == crate::top::TOP {
            break;
        }
        // Only what the server explains (the history also holds SETs, SHOWs and DDL), and only
        // the application's: a statement on a table, none of the server's schemas nor sluice's
        // own tables (a driver's `SELECT @@max_allowed_packet`, catalog reads, sluice's state).
        if !is_explainable(&q) || !application_statement(&q) {
            continue;
        }
        out.push(Probe {
            params: 0,
            sql: q.clone(),
            query: q,
            values: None,
        });
    }
    Ok(out)
}

/// Whether a MariaDB/MySQL statement reads or writes an application table: at least one table,
/// none in a system schema, none of sluice's own (`sluice_…`).
fn application_statement(sql: &str) -> bool {
    let kind = EngineKind::MariaDb;
    let Ok(split) = sluice_core::sql::split(kind, sql) else {
        return false;
    };
    let [st] = split.as_slice() else {
        return false;
    };
    let stmt = ir::build(kind, 0, st, 0, sql);
    let tables = ir::relations(kind, &stmt);
    let system = ["information_schema", "performance_schema", "mysql", "sys"];
    !tables.is_empty()
        && tables.iter().all(|t| {
            !t.schema
                .as_deref()
                .is_some_and(|s| system.iter().any(|x| s.eq_ignore_ascii_case(x)))
                && !t.name.to_ascii_lowercase().starts_with("sluice_")
        })
}

/// Whether `sql` names `column` (as an identifier: unquoted case-insensitively, quoted exactly)
/// and reads or writes `table` (a `schema.table` key or a bare name).
fn names_column(kind: EngineKind, sql: &str, table: &ir::QName, column: &str) -> bool {
    let stmts = sluice_core::sql::split(kind, sql).unwrap_or_default();
    let Some(st) = stmts.first() else {
        return false;
    };
    let pg = kind == EngineKind::Postgres;
    let same = |a: &str, b: &str| {
        if pg {
            a == b
        } else {
            a.eq_ignore_ascii_case(b)
        }
    };
    let stmt = ir::build(kind, 0, st, 0, sql);
    let on_table = ir::relations(kind, &stmt).iter().any(|q| {
        same(&q.name, &table.name)
            && (q.schema.is_none() || table.schema.is_none() || q.schema == table.schema)
    });
    if !on_table {
        return false;
    }
    let tokens = if pg {
        Tokenizer::new(&PostgreSqlDialect {}, sql).tokenize()
    } else {
        Tokenizer::new(&sqlparser::dialect::MySqlDialect {}, sql).tokenize()
    };
    // MariaDB/MySQL column names are case-insensitive, quoted or not.
    tokens.unwrap_or_default().iter().any(|t| match t {
        Token::Word(w) if w.quote_style.is_none() || !pg => w.value.eq_ignore_ascii_case(column),
        Token::Word(w) => w.value == column,
        _ => false,
    })
}

/// What an index hint rewrite of a statement gives: the statement told to ignore the index, or
/// the reason there is none.
#[derive(Debug, PartialEq)]
enum Ignored {
    /// The statement with `IGNORE INDEX (index)` on every reference to the table.
    Sql(String),
    /// A hint of the statement already names the index: once it is dropped, the statement fails
    /// (ER_KEY_DOES_NOT_EXITS, 1176) instead of running with another plan.
    NamedInHint,
    /// Not parsed, or the table not found in it.
    NotRewritten,
}

/// `sql` with `IGNORE INDEX (index)` on each reference to `table`: MariaDB/MySQL have no
/// hypothetical indexes to hide, but an index hint shows the plan the statement gets once the index
/// is gone, on the live database, without changing anything.
fn ignore_index(sql: &str, table: &ir::QName, index: &str) -> Ignored {
    use sqlparser::ast::{
        Ident, TableFactor, TableIndexDirective, TableIndexHintType, TableIndexHints,
        TableIndexType, VisitMut, VisitorMut,
    };
    use std::ops::ControlFlow;
    struct Hint<'a> {
        table: &'a ir::QName,
        index: &'a str,
        added: usize,
        named: bool,
    }
    impl VisitorMut for Hint<'_> {
        type Break = ();
        fn pre_visit_table_factor(&mut self, t: &mut TableFactor) -> ControlFlow<()> {
            if let TableFactor::Table {
                name,
                index_directives,
                ..
            } = t
            {
                let parts: Vec<String> = name
                    .0
                    .iter()
                    .filter_map(|p| p.as_ident().map(|i| i.value.clone()))
                    .collect();
                let (schema, last) = match parts.as_slice() {
                    [t] => (None, t),
                    [s, t] => (Some(s), t),
                    _ => return ControlFlow::Continue(()),
                };
                let same_schema = match (schema, &self.table.schema) {
                    (Some(a), Some(b)) => a == b,
                    _ => true,
                };
                if last.eq_ignore_ascii_case(&self.table.name) && same_schema {
                    if index_directives.iter().any(|d| match d {
                        TableIndexDirective::MySql(h) => h
                            .index_names
                            .iter()
                            .any(|n| n.value.eq_ignore_ascii_case(self.index)),
                        _ => false,
                    }) {
                        self.named = true;
                        return ControlFlow::Break(());
                    }
                    index_directives.push(TableIndexDirective::MySql(TableIndexHints {
                        hint_type: TableIndexHintType::Ignore,
                        index_type: TableIndexType::Index,
                        for_clause: None,
                        index_names: vec![Ident::with_quote('`', self.index)],
                    }));
                    self.added += 1;
                }
            }
            ControlFlow::Continue(())
        }
    }
    let dialect = sqlparser::dialect::MySqlDialect {};
    let Ok(mut stmts) = sqlparser::parser::Parser::parse_sql(&dialect, sql) else {
        return Ignored::NotRewritten;
    };
    if stmts.len() != 1 {
        return Ignored::NotRewritten;
    }
    let mut hint = Hint {
        table,
        index,
        added: 0,
        named: false,
    };
    let _ = stmts[0].visit(&mut hint);
    if hint.named {
        Ignored::NamedInHint
    } else if hint.added == 0 {
        Ignored::NotRewritten
    } else {
        Ignored::Sql(stmts[0].to_string())
    }
}

fn qname_sql(q: &ir::QName) -> String {
    match &q.schema {
        Some(s) => quote::pg::qualified(s, &q.name),
        None => quote::pg::ident(&q.name),
    }
}

fn qname_text(q: &ir::QName) -> String {
    match &q.schema {
        Some(s) => format!("{s}.{}", q.name),
        None => q.name.clone(),
    }
}

/// `plan --explain` on the live database. Nothing is changed: EXPLAIN only (never ANALYZE), and
/// hypothetical indexes (and hypopg itself, when it is not created in the database) live in one
/// transaction that is rolled back.
pub async fn live(
    url: &DbUrl,
    pending: &[PendingMigration],
    probes: Vec<Probe>,
    source: String,
) -> Result<LiveSection> {
    if !is_pg(url) {
        return live_mysql(url, pending, probes, source).await;
    }
    let mut s = explain_session(url).await?;
    let major = s
        .scalar("SELECT current_setting('server_version_num')")
        .await?
        .map(|v| pg_major(&v))
        .unwrap_or(15);
    let installed = s
        .scalar("SELECT extversion FROM pg_extension WHERE extname = 'hypopg'")
        .await?;
    let available = s
        .scalar("SELECT default_version FROM pg_available_extensions WHERE name = 'hypopg'")
        .await?;
    let mut notes = Vec::new();
    // One transaction for everything, rolled back at the end.
    s.batch("BEGIN")
        .await
        .map_err(|e| Error::database("BEGIN", format!("{} ({})", e.message, e.code)))?;
    let hypopg = if installed.is_some() {
        Hypopg::Installed
    } else if available.is_some() {
        match s
            .batch("SAVEPOINT hypopg; CREATE EXTENSION hypopg; RELEASE SAVEPOINT hypopg")
            .await
        {
            Ok(()) => Hypopg::CreatedAndRolledBack,
            Err(e) => {
                let _ = s.batch("ROLLBACK TO SAVEPOINT hypopg").await;
                Hypopg::Missing(format!(
                    "hypopg is installed on the server but not created in this database, and creating it for the check failed: {} ({}); run `CREATE EXTENSION hypopg;` once as a superuser; without it `plan --explain` shows no plans with the new indexes",
                    e.message, e.code
                ))
            }
        }
    } else {
        Hypopg::Missing(format!(
            "hypopg is not installed on the server: {}",
            hypopg_howto(major)
        ))
    };
    let has_hypo = !matches!(hypopg, Hypopg::Missing(_));
    let can_hide = has_hypo
        && s.scalar("SELECT to_regproc('hypopg_hide_index')::text")
            .await?
            .is_some();
    if let Hypopg::Missing(m) = &hypopg {
        notes.push(m.clone());
    }

    // Today's plans.
    let mut today = Vec::new();
    for p in &probes {
        today.push(explain_in_tx(&mut s, p).await);
    }
    let mut not_explained = Vec::new();
    for (p, t) in probes.iter().zip(&today) {
        if let Err(e) = t {
            not_explained.push(NotExplained {
                query: p.query.clone(),
                reason: e.clone(),
            });
        }
    }

    let mut changes = Vec::new();
    for m in pending {
        for sql in &m.statements {
            let split = sluice_core::sql::split(EngineKind::Postgres, sql).unwrap_or_default();
            let Some(st) = split.first() else { continue };
            let stmt = ir::build(EngineKind::Postgres, 0, st, 0, sql);
            let ir::Parsed::Actions(actions) = &stmt.parsed else {
                continue;
            };
            for a in actions {
                match a {
                    ir::Action::CreateIndex { name, table, .. } => {
                        let target = name
                            .clone()
                            .unwrap_or_else(|| format!("(unnamed index on {})", qname_text(table)));
                        let mut c = LiveChange {
                            kind: "create index".into(),
                            migration: m.label.clone(),
                            statement: crate::top::one_line(sql),
                            target,
                            statements: vec![],
                            note: None,
                        };
                        if !has_hypo {
                            c.note =
                                Some("no plans: hypopg is missing (see the note above)".into());
                            changes.push(c);
                            continue;
                        }
                        let _ = s.batch("SAVEPOINT hypo").await;
                        let created = s
                            .scalar(&format!(
                                "SELECT indexname FROM hypopg_create_index({})",
                                quote::pg::literal(sql.trim().trim_end_matches(';'))
                            ))
                            .await;
                        let hypo_name = match created {
                            Ok(Some(n)) => n,
                            Ok(None) => String::new(),
                            Err(e) => {
                                let _ = s.batch("ROLLBACK TO SAVEPOINT hypo").await;
                                c.note = Some(format!(
                                    "no hypothetical index (e.g. the table is created by a pending migration): {}",
                                    e.to_string().lines().next().unwrap_or("")
                                ));
                                changes.push(c);
                                continue;
                            }
                        };
                        for (p, t) in probes.iter().zip(&today) {
                            let Ok(t) = t else { continue };
                            if let Ok(w) = explain_in_tx(&mut s, p).await {
                                if w.indexes.iter().any(|i| i == &hypo_name) {
                                    c.statements.push(LiveUse {
                                        query: p.query.clone(),
                                        cost_ratio: Some(ratio(w.total_cost, t.total_cost)),
                                        today: t.clone(),
                                        with_change: Some(w),
                                    });
                                }
                            }
                        }
                        let _ = s.batch("ROLLBACK TO SAVEPOINT hypo").await;
                        changes.push(c);
                    }
                    ir::Action::DropIndex { names, .. } => {
                        for n in names {
                            let mut c = LiveChange {
                                kind: "drop index".into(),
                                migration: m.label.clone(),
                                statement: crate::top::one_line(sql),
                                target: qname_text(n),
                                statements: vec![],
                                note: None,
                            };
                            let users: Vec<(&Probe, &PlanSummary)> = probes
                                .iter()
                                .zip(&today)
                                .filter_map(|(p, t)| t.as_ref().ok().map(|t| (p, t)))
                                .filter(|(_, t)| t.indexes.iter().any(|i| i == &n.name))
                                .collect();
                            let mut hidden = false;
                            if can_hide && !users.is_empty() {
                                let _ = s.batch("SAVEPOINT hide").await;
                                hidden = s
                                    .scalar(&format!(
                                        "SELECT hypopg_hide_index({}::regclass::oid)::text",
                                        quote::pg::literal(&qname_sql(n))
                                    ))
                                    .await
                                    .ok()
                                    .flatten()
                                    .is_some_and(|v| v == "true" || v == "t");
                                if !hidden {
                                    let _ = s.batch("ROLLBACK TO SAVEPOINT hide").await;
                                }
                            }
                            for (p, t) in users {
                                let w = if hidden {
                                    explain_in_tx(&mut s, p).await.ok()
                                } else {
                                    None
                                };
                                c.statements.push(LiveUse {
                                    query: p.query.clone(),
                                    cost_ratio: w
                                        .as_ref()
                                        .map(|w| ratio(w.total_cost, t.total_cost)),
                                    today: t.clone(),
                                    with_change: w,
                                });
                            }
                            if hidden {
                                let _ = s.batch("SELECT hypopg_unhide_all_indexes()").await;
                                let _ = s.batch("ROLLBACK TO SAVEPOINT hide").await;
                            } else if !can_hide && !c.statements.is_empty() {
                                c.note = Some(
                                    "the plans without the index need hypopg 1.4 or later (hypopg_hide_index)"
                                        .into(),
                                );
                            }
                            changes.push(c);
                        }
                    }
                    ir::Action::DropColumn { table, column, .. } => {
                        let mut c = LiveChange {
                            kind: "drop column".into(),
                            migration: m.label.clone(),
                            statement: crate::top::one_line(sql),
                            target: format!("{}.{column}", qname_text(table)),
                            statements: vec![],
                            note: None,
                        };
                        for (p, t) in probes.iter().zip(&today) {
                            if let Ok(t) = t {
                                if names_column(EngineKind::Postgres, &p.query, table, column) {
                                    c.statements.push(LiveUse {
                                        query: p.query.clone(),
                                        today: t.clone(),
                                        with_change: None,
                                        cost_ratio: None,
                                    });
                                }
                            }
                        }
                        changes.push(c);
                    }
                    _ => {}
                }
            }
        }
    }
    let _ = s.batch("ROLLBACK").await;
    s.close().await;
    Ok(LiveSection {
        source,
        statements: probes.len(),
        hypopg,
        changes,
        not_explained,
        notes,
    })
}

/// [`live`] on MariaDB/MySQL: `EXPLAIN FORMAT=JSON` only, nothing changed. The server has no
/// hypothetical indexes, so a new index's plans are left to a clone (`rehearse --explain`); a
/// dropped index lists the statements that use it today with the plan each gets without it (the
/// statement explained with `IGNORE INDEX`); a dropped column the statements that name it. The statements' costs are
/// the rows they are estimated to examine (MariaDB gives no cost), as in `rehearse --explain`.
async fn live_mysql(
    url: &DbUrl,
    pending: &[PendingMigration],
    probes: Vec<Probe>,
    source: String,
) -> Result<LiveSection> {
    let kind = url.kind();
    let mut s = explain_session(url).await?;
    let mut today = Vec::new();
    for p in &probes {
        today.push(explain_one(&mut s, p, false).await);
    }
    let not_explained = probes
        .iter()
        .zip(&today)
        .filter_map(|(p, t)| {
            t.as_ref().err().map(|e| NotExplained {
                query: p.query.clone(),
                reason: e.clone(),
            })
        })
        .collect();
    let explained: Vec<(&Probe, &PlanSummary)> = probes
        .iter()
        .zip(&today)
        .filter_map(|(p, t)| t.as_ref().ok().map(|t| (p, t)))
        .collect();
    // A statement as it is today: there is no plan with the change to show.
    let today_only = |(p, t): (&Probe, &PlanSummary)| LiveUse {
        query: p.query.clone(),
        today: t.clone(),
        with_change: None,
        cost_ratio: None,
    };
    let change = |kind: &str, m: &PendingMigration, sql: &str, target: String| LiveChange {
        kind: kind.into(),
        migration: m.label.clone(),
        statement: crate::top::one_line(sql),
        target,
        statements: vec![],
        note: None,
    };
    let mut changes = Vec::new();
    for m in pending {
        for sql in &m.statements {
            let split = sluice_core::sql::split(kind, sql).unwrap_or_default();
            let Some(st) = split.first() else { continue };
            let stmt = ir::build(kind, 0, st, 0, sql);
            let ir::Parsed::Actions(actions) = &stmt.parsed else {
                continue;
            };
            for a in actions {
                // A dropped index: (its name, its table).
                let dropped: Vec<(String, Option<ir::QName>)> = match a {
                    ir::Action::CreateIndex { name, table, .. } => {
                        let target = name
                            .clone()
                            .unwrap_or_else(|| format!("(unnamed index on {})", qname_text(table)));
                        let mut c = change("create index", m, sql, target);
                        c.note = Some(
                            "MariaDB/MySQL have no hypothetical indexes: compare the plans with it on a clone with `sluice rehearse --explain`".into(),
                        );
                        changes.push(c);
                        continue;
                    }
                    ir::Action::DropIndex { names, .. } => {
                        // MySQL's `DROP INDEX i ON t` names the table beside the index.
                        let on = match stmt.ast.as_deref() {
                            Some(sqlparser::ast::Statement::Drop { table: Some(t), .. }) => {
                                Some(ir::qname(kind, t))
                            }
                            _ => None,
                        };
                        names.iter().map(|n| (n.name.clone(), on.clone())).collect()
                    }
                    ir::Action::DropKey { table, what } => match what.strip_prefix("INDEX ") {
                        Some(index) => vec![(index.to_string(), Some(table.clone()))],
                        None => continue,
                    },
                    ir::Action::DropColumn { table, column, .. } => {
                        let mut c = change(
                            "drop column",
                            m,
                            sql,
                            format!("{}.{column}", qname_text(table)),
                        );
                        c.statements = explained
                            .iter()
                            .filter(|(p, _)| names_column(kind, &p.query, table, column))
                            .map(|u| today_only(*u))
                            .collect();
                        changes.push(c);
                        continue;
                    }
                    _ => continue,
                };
                for (index, table) in dropped {
                    let target = match &table {
                        Some(t) => format!("{index} on {}", qname_text(t)),
                        None => index.clone(),
                    };
                    let mut c = change("drop index", m, sql, target);
                    let mut hinted = Vec::new();
                    for (p, t) in explained
                        .iter()
                        .filter(|(_, t)| t.indexes.iter().any(|i| i.eq_ignore_ascii_case(&index)))
                    {
                        let mut u = today_only((p, t));
                        let rewritten = match &table {
                            Some(table) => ignore_index(&p.sql, table, &index),
                            None => Ignored::NotRewritten,
                        };
                        match rewritten {
                            Ignored::Sql(sql) => {
                                let without = Probe {
                                    sql,
                                    ..(*p).clone()
                                };
                                if let Ok(w) = explain_one(&mut s, &without, false).await {
                                    u.cost_ratio = Some(ratio(w.total_cost, t.total_cost));
                                    u.with_change = Some(w);
                                }
                            }
                            Ignored::NamedInHint => hinted.push(crate::top::one_line(&p.query)),
                            Ignored::NotRewritten => {}
                        }
                        c.statements.push(u);
                    }
                    if !hinted.is_empty() {
                        c.note = Some(format!(
                            "{} name the index in an index hint: they fail once it is dropped (error 1176) — {}",
                            if hinted.len() == 1 { "1 statement" } else { "statements" },
                            hinted.join("; ")
                        ));
                    }
                    changes.push(c);
                }
            }
        }
    }
    s.close().await;
    Ok(LiveSection {
        source,
        statements: probes.len(),
        hypopg: Hypopg::NotOnThisEngine,
        changes,
        not_explained,
        notes: vec![
            "costs are the rows each statement is estimated to examine (MariaDB/MySQL give no cost); a dropped index's \"without\" plan is the statement explained with IGNORE INDEX"
                .into(),
        ],
    })
}

/// [`explain_one`] inside the caller's transaction: a failure rolls back only itself.
async fn explain_in_tx(s: &mut Session, p: &Probe) -> std::result::Result<PlanSummary, String> {
    let _ = s.batch("SAVEPOINT sluice_explain").await;
    let r = explain_one(s, p, false).await;
    if r.is_err() {
        let _ = s.batch("ROLLBACK TO SAVEPOINT sluice_explain").await;
    } else {
        let _ = s.batch("RELEASE SAVEPOINT sluice_explain").await;
    }
    r
}

/// Reads `--queries FILE`: SQL statements (`;`-terminated; `$1` placeholders, or pgbench-style
/// `\set` variables used as `:name`).
pub fn queries_file(text: &str) -> std::result::Result<Vec<Probe>, String> {
    queries_file_for(text, EngineKind::Postgres)
}

/// [`queries_file`] for the statements of an engine (MariaDB/MySQL: values written in).
pub fn queries_file_for(text: &str, kind: EngineKind) -> std::result::Result<Vec<Probe>, String> {
    let script = Script::parse(text)?;
    let probes = script_probes_for(&script, kind)
        .into_iter()
        .map(|mut p| {
            // Placeholders written as `$n` in the file count too.
            p.params = p.params.max(max_placeholder(&p.sql));
            p.values = None;
            p
        })
        .collect::<Vec<_>>();
    if probes.is_empty() {
        return Err("no SELECT, INSERT, UPDATE or DELETE statement in the file".into());
    }
    Ok(probes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(cost: f64, shape: &str, indexes: &[&str]) -> PlanSummary {
        PlanSummary {
            total_cost: cost,
            shape: shape.into(),
            indexes: indexes.iter().map(|s| s.to_string()).collect(),
            join_order: vec!["t".into()],
            time_ms: None,
        }
    }

    /// The noise threshold, from both sides, with the shape kept and changed; a regression only
    /// at the configured ratio.
    #[test]
    fn changed_and_regression_thresholds() {
        let probe = Probe {
            query: "q".into(),
            sql: "q".into(),
            params: 0,
            values: None,
        };
        // (cost after for a before-cost of 100, same shape?, changed?, regression at 2.0?)
        let cases = [
            (100.0, true, false, false),
            (124.9, true, false, false),
            (80.1, true, false, false),
            (125.1, true, true, false),
            (79.9, true, true, false),
            (199.9, true, true, false),
            (200.0, true, true, true),
            (100.0, false, true, false),
            (1000.0, false, true, true),
            (0.0, false, true, false),
        ];
        for (after_cost, same, want_changed, want_regression) in cases {
            let b = plan(100.0, "Index Scan using i on t", &["i"]);
            let a = if same {
                plan(after_cost, "Index Scan using i on t", &["i"])
            } else {
                plan(after_cost, "Seq Scan on t", &[])
            };
            assert_eq!(plan_changed(&b, &a), want_changed, "{after_cost} {same}");
            let s = compare(
                std::slice::from_ref(&probe),
                &vec![Ok(b.clone())],
                &vec![Ok(a.clone())],
                DEFAULT_REGRESSION_RATIO,
                false,
                vec![],
            );
            assert_eq!(s.explained, 1);
            assert_eq!(
                s.changed.len(),
                want_changed as usize,
                "{after_cost} {same}"
            );
            assert_eq!(
                s.regressions, want_regression as usize,
                "{after_cost} {same}"
            );
            if let Some(c) = s.changed.first() {
                assert_eq!(
                    c.indexes_no_longer_used,
                    if same { vec![] } else { vec!["i".to_string()] }
                );
            }
        }
        // A statement failing after the migration is a regression; one failing before is listed.
        let s = compare(
            &[probe.clone(), probe.clone()],
            &vec![Ok(plan(1.0, "Result", &[])), Err("no such column".into())],
            &vec![Err("column \"x\" does not exist".into()), Err("x".into())],
            DEFAULT_REGRESSION_RATIO,
            false,
            vec![],
        );
        assert_eq!((s.explained, s.regressions), (1, 1));
        assert_eq!(s.not_explained.len(), 1);
        assert!(s.changed[0].error_after.is_some());
    }

    #[test]
    fn plans_summarize_from_explain_json() {
        let j = r#"[{"Plan": {"Node Type": "Hash Join", "Join Type": "Inner", "Total Cost": 250.5,
            "Plans": [
              {"Node Type": "Seq Scan", "Relation Name": "orders", "Total Cost": 100},
              {"Node Type": "Hash", "Plans": [
                {"Node Type": "Index Scan", "Index Name": "users_pkey", "Relation Name": "users", "Total Cost": 8}]}]},
            "Execution Time": 1.25}]"#;
        let s = summarize(j).unwrap();
        assert_eq!(s.total_cost, 250.5);
        assert_eq!(
            s.shape,
            "Hash Join(Seq Scan on orders, Hash(Index Scan using users_pkey on users))"
        );
        assert_eq!(s.indexes, ["users_pkey"]);
        assert_eq!(s.join_order, ["orders", "users"]);
        assert_eq!(s.time_ms, Some(1.25));
        let u = summarize(
            r#"[{"Plan": {"Node Type": "ModifyTable", "Operation": "Update", "Relation Name": "t", "Total Cost": 8.3,
                "Plans": [{"Node Type": "Bitmap Heap Scan", "Relation Name": "t", "Plans": [{"Node Type": "Bitmap Index Scan", "Index Name": "t_a"}]}]}}]"#,
        )
        .unwrap();
        assert_eq!(
            u.shape,
            "Update on t(Bitmap Heap Scan on t(Bitmap Index Scan using t_a))"
        );
        assert_eq!(u.join_order, ["t"]);
        assert!(summarize("[]").is_err());
        assert!(summarize("not json").is_err());
    }

    /// Real `EXPLAIN FORMAT=JSON` / `ANALYZE FORMAT=JSON` outputs of MariaDB 10.11 (30,000
    /// accounts indexed on owner_id, 5,000 notes), as the server printed them.
    const MY_REF: &str = r#"{"query_block": {"select_id": 1, "nested_loop": [{"table": {"table_name": "accounts", "access_type": "ref", "possible_keys": ["accounts_owner_idx"], "key": "accounts_owner_idx", "key_length": "4", "used_key_parts": ["owner_id"], "ref": ["const"], "rows": 10, "filtered": 100}}]}}"#;
    const MY_ALL: &str = r#"{"query_block": {"select_id": 1, "nested_loop": [{"table": {"table_name": "accounts", "access_type": "ALL", "rows": 29575, "filtered": 100, "attached_condition": "accounts.kind_id = '1500'"}}]}}"#;
    const MY_JOIN: &str = r#"{"query_block": {"select_id": 1, "nested_loop": [
        {"table": {"table_name": "n", "access_type": "ALL", "rows": 5000, "filtered": 100}},
        {"table": {"table_name": "a", "access_type": "eq_ref", "possible_keys": ["PRIMARY", "accounts_owner_idx"], "key": "PRIMARY", "key_length": "8", "used_key_parts": ["id"], "ref": ["he_explain_cap.n.account_id"], "rows": 1, "filtered": 0.03381234, "attached_condition": "a.owner_id = '1500'"}}]}}"#;
    const MY_BNL: &str = r#"{"query_block": {"select_id": 1, "nested_loop": [
        {"table": {"table_name": "a", "access_type": "ref", "possible_keys": ["accounts_owner_idx"], "key": "accounts_owner_idx", "key_length": "4", "used_key_parts": ["owner_id"], "ref": ["const"], "rows": 10, "filtered": 100}},
        {"block-nl-join": {"table": {"table_name": "n", "access_type": "ALL", "rows": 5000, "filtered": 100}, "buffer_type": "flat", "buffer_size": "108", "join_type": "BNL", "attached_condition": "n.`body` = a.balance"}}]}}"#;
    const MY_UPDATE_ANALYZE: &str = r#"{"query_optimization": {"r_total_time_ms": 0.044679894}, "query_block": {"select_id": 1, "r_total_time_ms": 0.034952018, "table": {"update": 1, "table_name": "accounts", "access_type": "range", "possible_keys": ["PRIMARY"], "key": "PRIMARY", "key_length": "8", "used_key_parts": ["id"], "rows": 1, "r_rows": 1, "r_filtered": 100, "r_table_time_ms": 0.02934442, "r_other_time_ms": 0.002954541, "r_engine_stats": {"pages_accessed": 6, "pages_updated": 5}, "attached_condition": "accounts.`id` = 15000"}}}"#;
    const MY_INSERT: &str =
        r#"{"query_block": {"select_id": 1, "table": {"table_name": "accounts"}}}"#;
    const MY_SORT: &str = r#"{"query_block": {"select_id": 1, "filesort": {"sort_key": "count(0) desc", "temporary_table": {"nested_loop": [{"table": {"table_name": "accounts", "access_type": "index", "key": "accounts_owner_idx", "key_length": "4", "used_key_parts": ["owner_id"], "rows": 29575, "filtered": 100, "using_index": true}}]}}}}"#;
    const MY_SEMIJOIN: &str = r#"{"query_block": {"select_id": 1, "nested_loop": [
        {"table": {"table_name": "<subquery2>", "access_type": "ALL", "possible_keys": ["distinct_key"], "rows": 5000, "filtered": 100, "materialized": {"unique": 1, "query_block": {"select_id": 2, "nested_loop": [{"table": {"table_name": "notes", "access_type": "ALL", "rows": 5000, "filtered": 100, "attached_condition": "notes.`body` = 'x'"}}]}}}},
        {"table": {"table_name": "accounts", "access_type": "eq_ref", "possible_keys": ["PRIMARY"], "key": "PRIMARY", "key_length": "8", "used_key_parts": ["id"], "ref": ["he_explain_cap.notes.account_id"], "rows": 1, "filtered": 100}}]}}"#;
    const MY_UNION: &str = r#"{"query_block": {"union_result": {"table_name": "<union1,2>", "access_type": "ALL", "query_specifications": [
        {"query_block": {"select_id": 1, "nested_loop": [{"table": {"table_name": "accounts", "access_type": "ref", "possible_keys": ["accounts_owner_idx"], "key": "accounts_owner_idx", "key_length": "4", "used_key_parts": ["owner_id"], "ref": ["const"], "rows": 10, "filtered": 100}}]}},
        {"query_block": {"select_id": 2, "operation": "UNION", "table": {"message": "No tables used"}}}]}}}"#;
    const MY_ANALYZE_REF: &str = r#"{"query_optimization": {"r_total_time_ms": 0.11087568}, "query_block": {"select_id": 1, "r_loops": 1, "r_total_time_ms": 0.062186052, "nested_loop": [{"table": {"table_name": "accounts", "access_type": "ref", "possible_keys": ["accounts_owner_idx"], "key": "accounts_owner_idx", "key_length": "4", "used_key_parts": ["owner_id"], "ref": ["const"], "r_loops": 1, "rows": 10, "r_rows": 10, "r_table_time_ms": 0.052950599, "r_other_time_ms": 0.004683048, "r_engine_stats": {"pages_accessed": 22}, "filtered": 100, "r_filtered": 100}}]}}"#;

    #[test]
    fn mariadb_plans_summarize_from_their_json() {
        // (output, shape, indexes, join order, rows examined, time)
        type Case<'a> = (
            &'a str,
            &'a str,
            &'a [&'a str],
            &'a [&'a str],
            f64,
            Option<f64>,
        );
        let cases: &[Case] = &[
            (MY_REF, "ref using accounts_owner_idx on accounts", &["accounts_owner_idx"], &["accounts"], 10.0, None),
            (MY_ALL, "ALL on accounts", &[], &["accounts"], 29575.0, None),
            // 5,000 notes, each looking up one account.
            (MY_JOIN, "Nested Loop(ALL on n, eq_ref using PRIMARY on a)", &["PRIMARY"], &["n", "a"], 10000.0, None),
            // The buffered table is read once, not once per outer row.
            (MY_BNL, "Nested Loop(ref using accounts_owner_idx on a, BNL join(ALL on n))", &["accounts_owner_idx"], &["a", "n"], 5010.0, None),
            (MY_UPDATE_ANALYZE, "update range using PRIMARY on accounts", &["PRIMARY"], &["accounts"], 1.0, Some(0.034952018)),
            (MY_INSERT, "write on accounts", &[], &["accounts"], 1.0, None),
            (MY_SORT, "Filesort(Temporary(index using accounts_owner_idx on accounts))", &["accounts_owner_idx"], &["accounts"], 29575.0, None),
            (MY_SEMIJOIN, "Nested Loop(ALL on <subquery2>(materialized ALL on notes), eq_ref using PRIMARY on accounts)", &["PRIMARY"], &["<subquery2>", "notes", "accounts"], 15000.0, None),
            (MY_UNION, "Union(ref using accounts_owner_idx on accounts, No tables used)", &["accounts_owner_idx"], &["accounts"], 10.0, None),
            (MY_ANALYZE_REF, "ref using accounts_owner_idx on accounts", &["accounts_owner_idx"], &["accounts"], 10.0, Some(0.062186052)),
        ];
        for (json, shape, indexes, order, rows, time) in cases {
            let s = summarize_mariadb(json).unwrap_or_else(|e| panic!("{e}: {json}"));
            assert_eq!(s.shape, *shape, "{json}");
            assert_eq!(s.indexes, *indexes, "{json}");
            assert_eq!(s.join_order, *order, "{json}");
            assert!(
                (s.total_cost - rows).abs() < 1e-6,
                "{} != {rows}: {json}",
                s.total_cost
            );
            assert_eq!(s.time_ms, *time, "{json}");
        }
        // A dropped index: the same statement regresses by the rows it now reads.
        let probe = Probe {
            query: "q".into(),
            sql: "q".into(),
            params: 0,
            values: None,
        };
        let c = compare(
            std::slice::from_ref(&probe),
            &vec![summarize_mariadb(MY_REF)],
            &vec![summarize_mariadb(MY_ALL)],
            DEFAULT_REGRESSION_RATIO,
            false,
            vec![],
        );
        assert_eq!(c.regressions, 1);
        assert_eq!(c.changed[0].indexes_no_longer_used, ["accounts_owner_idx"]);
        for bad in ["", "[]", "{}", "{\"query_block\": 1}"] {
            assert!(summarize_mariadb(bad).is_err(), "{bad}");
        }
    }

    /// MariaDB probes carry their values as quoted literals, placed only where a placeholder is.
    #[test]
    fn mariadb_values_are_written_in() {
        let v = |x: &[&str]| {
            x.iter()
                .map(|s| quote::mysql::literal(s))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            fill_question_marks(
                "UPDATE `t?` SET a = ? WHERE b = '?' AND c = ? -- ?\n",
                &v(&["1", "o'k"])
            )
            .as_deref(),
            Some("UPDATE `t?` SET a = '1' WHERE b = '?' AND c = 'o''k' -- ?\n")
        );
        assert_eq!(
            fill_question_marks("SELECT \"?\", ? /* ? */ # ?", &v(&["2"])).as_deref(),
            Some("SELECT \"?\", '2' /* ? */ # ?")
        );
        assert_eq!(
            fill_question_marks("SELECT 'a\\'?', ?", &v(&["3"])).as_deref(),
            Some("SELECT 'a\\'?', '3'")
        );
        // Too few or too many values: not filled.
        assert_eq!(fill_question_marks("SELECT ?, ?", &v(&["1"])), None);
        assert_eq!(fill_question_marks("SELECT ?", &v(&["1", "2"])), None);
        let script = Script::parse(
            "\\set o random(1, 9)\nSELECT b FROM t WHERE a = :o AND c = :o AND d = ':zz';\n",
        )
        .unwrap();
        let p = script_probes_for(&script, EngineKind::MariaDb);
        assert_eq!(
            p[0].sql,
            "SELECT b FROM t WHERE a = '5' AND c = '5' AND d = ':zz'"
        );
        assert_eq!(p[0].params, 0);
        assert_eq!(
            p[0].query,
            "SELECT b FROM t WHERE a = :o AND c = :o AND d = ':zz'"
        );
    }

    #[test]
    fn script_variables_become_placeholders() {
        let script = Script::parse(
            "\\set a random(1, 9)\n\\set b 5\nBEGIN;\nSELECT x::text FROM t WHERE a = :a AND b = :b OR c = :a AND d = ':zz';\nSELECT 1 FROM t WHERE a = :a AND b = :b OR c = :a AND d = ':zz';\nUPDATE t SET n = :b WHERE id = $1;\nCOMMIT;\n",
        )
        .unwrap();
        let p = script_probes(&script);
        // BEGIN/COMMIT are not explained; duplicates once.
        assert_eq!(p.len(), 3, "{p:?}");
        assert_eq!(
            p[0].sql,
            "SELECT x::text FROM t WHERE a = $1 AND b = $2 OR c = $1 AND d = ':zz'"
        );
        assert_eq!(p[0].params, 2);
        assert_eq!(
            p[0].values.as_deref(),
            Some(&["'5'".to_string(), "'5'".to_string()][..])
        );
        assert_eq!(max_placeholder("SELECT '$9' FROM t WHERE a = $2 -- $7"), 2);
        let q = queries_file("SELECT a FROM t WHERE b = $1;\nSELECT 1;\n").unwrap();
        assert_eq!((q[0].params, q[1].params), (1, 0));
        assert!(q.iter().all(|p| p.values.is_none()));
        assert!(queries_file("CREATE TABLE x (a int);").is_err());
        assert!(single_statement("SELECT ';' FROM t -- ;\n WHERE a = $$;$$"));
        assert!(!single_statement("SELECT 1 FROM t; DROP TABLE t"));
        assert!(!single_statement("SELECT 1; COMMIT"));
    }

    #[test]
    fn hot_statements_are_the_applications() {
        for (sql, app) in [
            ("SELECT balance FROM accounts WHERE owner_id = 3", true),
            ("UPDATE shop.orders SET n = 1 WHERE id = 2", true),
            ("SELECT @@max_allowed_packet,@@wait_timeout,@@socket", false),
            ("SELECT DATABASE()", false),
            (
                "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'x'",
                false,
            ),
            (
                "SELECT a.id FROM accounts a JOIN INFORMATION_SCHEMA.COLUMNS c ON 1 = 1",
                false,
            ),
            ("SELECT `table_name` FROM `sluice_online`", false),
            ("SELECT * FROM mysql.user", false),
            ("SELECT 1 FROM accounts; SELECT 2 FROM accounts", false),
        ] {
            assert_eq!(application_statement(sql), app, "{sql}");
        }
    }

    #[test]
    fn a_dropped_index_is_ignored_on_every_reference_to_its_table() {
        let t = |schema: Option<&str>, name: &str| ir::QName {
            schema: schema.map(str::to_string),
            name: name.into(),
        };
        let accounts = t(None, "accounts");
        let cases: &[(&str, Ignored)] = &[
            (
                "SELECT balance FROM accounts WHERE owner_id = 7",
                Ignored::Sql(
                    "SELECT balance FROM accounts IGNORE INDEX (`i`) WHERE owner_id = 7".into(),
                ),
            ),
            // Every reference, aliased, quoted, any case, qualified; other tables untouched.
            (
                "SELECT a.id FROM `Accounts` AS a JOIN notes n ON n.a = a.id JOIN shop.accounts b ON b.id = n.b",
                Ignored::Sql(
                    "SELECT a.id FROM `Accounts` AS a IGNORE INDEX (`i`) JOIN notes n ON n.a = a.id JOIN shop.accounts b IGNORE INDEX (`i`) ON b.id = n.b".into(),
                ),
            ),
            // In a subquery, an UPDATE and a multi-table DELETE.
            (
                "SELECT 1 FROM notes WHERE x IN (SELECT id FROM accounts WHERE owner_id = 1)",
                Ignored::Sql(
                    "SELECT 1 FROM notes WHERE x IN (SELECT id FROM accounts IGNORE INDEX (`i`) WHERE owner_id = 1)".into(),
                ),
            ),
            (
                "UPDATE accounts SET balance = 1 WHERE owner_id = 2",
                Ignored::Sql(
                    "UPDATE accounts IGNORE INDEX (`i`) SET balance = 1 WHERE owner_id = 2".into(),
                ),
            ),
            // A hint that names the index already: the statement fails after the drop.
            ("SELECT id FROM accounts FORCE INDEX (I) WHERE owner_id = 1", Ignored::NamedInHint),
            ("SELECT id FROM accounts USE INDEX (`i`)", Ignored::NamedInHint),
            // The table not named, another schema's table, not parsed, two statements.
            ("SELECT 1 FROM notes", Ignored::NotRewritten),
            ("SELECT 1 FROM", Ignored::NotRewritten),
            ("SELECT 1 FROM accounts; SELECT 2 FROM accounts", Ignored::NotRewritten),
        ];
        for (sql, want) in cases {
            assert_eq!(&ignore_index(sql, &accounts, "i"), want, "{sql}");
        }
        let qualified = t(Some("shop"), "accounts");
        assert_eq!(
            ignore_index("SELECT 1 FROM other.accounts", &qualified, "i"),
            Ignored::NotRewritten
        );
        assert_eq!(
            ignore_index("SELECT 1 FROM shop.accounts", &qualified, "i"),
            Ignored::Sql("SELECT 1 FROM shop.accounts IGNORE INDEX (`i`)".into())
        );
    }

    #[test]
    fn dropped_columns_are_found_by_name_on_their_table() {
        let t = ir::QName {
            schema: None,
            name: "accounts".into(),
        };
        assert!(names_column(
            EngineKind::Postgres,
            "SELECT balance FROM accounts WHERE id = $1",
            &t,
            "balance"
        ));
        assert!(names_column(
            EngineKind::Postgres,
            "UPDATE accounts SET BALANCE = 1",
            &t,
            "balance"
        ));
        assert!(!names_column(
            EngineKind::Postgres,
            "SELECT balance FROM other",
            &t,
            "balance"
        ));
        assert!(!names_column(
            EngineKind::Postgres,
            "SELECT 'balance' FROM accounts",
            &t,
            "balance"
        ));
        assert!(!names_column(
            EngineKind::Postgres,
            "SELECT \"Balance\" FROM accounts",
            &t,
            "balance"
        ));
        // MariaDB/MySQL: names are case-insensitive, quoted or not; strings are not names.
        let my = EngineKind::MariaDb;
        assert!(names_column(
            my,
            "SELECT `Balance` FROM accounts",
            &t,
            "balance"
        ));
        assert!(names_column(
            my,
            "SELECT BALANCE FROM ACCOUNTS",
            &t,
            "balance"
        ));
        assert!(!names_column(
            my,
            "SELECT 'balance' FROM accounts",
            &t,
            "balance"
        ));
        assert!(!names_column(
            my,
            "SELECT balance FROM other",
            &t,
            "balance"
        ));
    }
}
