//! Query plans before and after a migration (PostgreSQL).
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
//! `plan --explain` ([`live`]): the same plans on the live database, changing nothing: for an index
//! a pending migration adds, the plans the hot statements would get with it (a hypothetical index
//! from hypopg, inside a transaction that is rolled back); for a dropped index, the statements that
//! use it today (and, with hypopg, their plans without it); for a dropped column, the statements
//! that name it.

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
/// the middle of each variable's range as its value.
fn script_probe(sql: &str, ranges: &BTreeMap<String, (i64, i64)>) -> Probe {
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
                out.push_str(&format!("${n}"));
                i = end;
                last = end;
                continue;
            }
        }
        i += 1;
    }
    out.push_str(&sql[last..]);
    let values = order
        .iter()
        .map(|n| {
            let (lo, hi) = ranges[n];
            quote::pg::literal(&(lo + (hi - lo) / 2).to_string())
        })
        .collect();
    Probe {
        query: sql.to_string(),
        params: order.len(),
        sql: out,
        values: Some(values),
    }
}

/// The statements of a script (the SQL steps that EXPLAIN takes), deduplicated.
pub fn script_probes(script: &Script) -> Vec<Probe> {
    let mut ranges = BTreeMap::new();
    let mut out: Vec<Probe> = Vec::new();
    for step in &script.steps {
        match step {
            ScriptStep::Set { name, lo, hi } => {
                ranges.insert(name.clone(), (*lo, *hi));
            }
            ScriptStep::Sql(sql) if is_explainable(sql) => {
                let p = script_probe(sql, &ranges);
                if !out.iter().any(|o| o.sql == p.sql) {
                    out.push(p);
                }
            }
            ScriptStep::Sql(_) => {}
        }
    }
    out
}

/// The statements a rehearsal's workload runs.
pub fn probes(plan: &Plan) -> Vec<Probe> {
    match plan {
        Plan::Derived(targets, _) => targets
            .iter()
            .flat_map(|t| t.statements())
            .map(|(sql, values)| Probe {
                query: sql.clone(),
                params: max_placeholder(&sql),
                values: Some(
                    values
                        .iter()
                        .map(|v| quote::pg::literal(&v.to_string()))
                        .collect(),
                ),
                sql,
            })
            .collect(),
        Plan::Script(s) => script_probes(s),
        Plan::Top(t) => {
            let mut rng = Rng::new(16);
            t.statements
                .iter()
                .map(|s| {
                    let params = max_placeholder(&s.query);
                    let vals = s.param_values(&mut rng);
                    Probe {
                        query: s.query.clone(),
                        sql: s.query.clone(),
                        params,
                        values: Some(
                            (1..=params)
                                .map(|n| match vals.get(&format!("${n}")) {
                                    Some(v) => quote::pg::literal(v),
                                    None => "NULL".into(),
                                })
                                .collect(),
                        ),
                    }
                })
                .collect()
        }
    }
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

/// A session for EXPLAIN: generic plans, and never waiting long for a lock or a plan.
pub async fn explain_session(url: &DbUrl) -> Result<Session> {
    let mut s = Session::open(url).await?;
    s.batch(
        "SET plan_cache_mode = force_generic_plan; SET lock_timeout = '2s'; SET statement_timeout = '60s'",
    )
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
            let mut times = Vec::new();
            for run in 0..=ANALYZE_RUNS {
                if s.batch("BEGIN").await.is_err() {
                    break;
                }
                let r = one_json(s, &sql).await;
                let _ = s.batch("ROLLBACK").await;
                match r.and_then(|j| summarize(&j)) {
                    Ok(a) if run > 0 => times.extend(a.time_ms),
                    Ok(_) => {}
                    Err(_) => break,
                }
            }
            if !times.is_empty() {
                times.sort_by(|a, b| a.total_cmp(b));
                summary.time_ms = Some(times[times.len() / 2]);
            }
        }
    }
    if p.params > 0 {
        let _ = s.batch(&format!("DEALLOCATE {name}")).await;
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

/// Whether `sql` names `column` (as an identifier: unquoted case-insensitively, quoted exactly)
/// and reads or writes `table` (a `schema.table` key or a bare name).
fn names_column(sql: &str, table: &ir::QName, column: &str) -> bool {
    let stmts = sluice_core::sql::split(EngineKind::Postgres, sql).unwrap_or_default();
    let Some(st) = stmts.first() else {
        return false;
    };
    let stmt = ir::build(EngineKind::Postgres, 0, st, 0, sql);
    let on_table = ir::relations(EngineKind::Postgres, &stmt).iter().any(|q| {
        q.name == table.name
            && (q.schema.is_none() || table.schema.is_none() || q.schema == table.schema)
    });
    if !on_table {
        return false;
    }
    Tokenizer::new(&PostgreSqlDialect {}, sql)
        .tokenize()
        .unwrap_or_default()
        .iter()
        .any(|t| match t {
            Token::Word(w) if w.quote_style.is_none() => w.value.eq_ignore_ascii_case(column),
            Token::Word(w) => w.value == column,
            _ => false,
        })
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
        return Err(Error::usage(
            "plan --explain: query plans are read on PostgreSQL only for now",
            "run `sluice plan` without --explain on MariaDB/MySQL",
        ));
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
                                if names_column(&p.query, table, column) {
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
    let script = Script::parse(text)?;
    let probes = script_probes(&script)
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
    fn dropped_columns_are_found_by_name_on_their_table() {
        let t = ir::QName {
            schema: None,
            name: "accounts".into(),
        };
        assert!(names_column(
            "SELECT balance FROM accounts WHERE id = $1",
            &t,
            "balance"
        ));
        assert!(names_column(
            "UPDATE accounts SET BALANCE = 1",
            &t,
            "balance"
        ));
        assert!(!names_column("SELECT balance FROM other", &t, "balance"));
        assert!(!names_column(
            "SELECT 'balance' FROM accounts",
            &t,
            "balance"
        ));
        assert!(!names_column(
            "SELECT \"Balance\" FROM accounts",
            &t,
            "balance"
        ));
    }
}
