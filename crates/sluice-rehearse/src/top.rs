//! The `--workload pg_stat_statements` workload: the source's most-called statements, replayed on
//! the clone with values sampled from the clone.
//!
//! pg_stat_statements keeps queries normalised (`WHERE id = $1`), so every placeholder is bound to
//! the column it is compared with, and each transaction fills it with a value sampled from that
//! column. Statements with a placeholder that cannot be bound are skipped and reported.

use crate::clone::{ident, table_sql, SOURCE_TAG};
use crate::db::{is_pg, pg_err, QueryError, Session};
use crate::workload::Rng;
use serde::Serialize;
use sluice_core::dburl::DbUrl;
use sluice_core::error::{Error, Result};
use sluice_core::quote;
use sluice_core::schema::Schema;
use sqlparser::ast::{
    AssignmentTarget, BinaryOperator, Expr, Ident, InTarget, LimitClause, ObjectName, Query,
    SetExpr, Statement, TableFactor, Value, Visit, Visitor,
};
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::Parser;
use sqlparser::tokenizer::{Token, Tokenizer};
use std::collections::{BTreeMap, BTreeSet};
use std::ops::ControlFlow;
use std::sync::Arc;

/// How many of the source's statements are considered.
pub const TOP: usize = 20;
/// Rows read from pg_stat_statements: more than [`TOP`], as those that read no table are dropped.
const READ: usize = 100;
/// Values sampled per bound table.
const SAMPLE: usize = 500;

/// One row of pg_stat_statements as the plan is built from it.
#[derive(Debug, Clone, PartialEq)]
pub struct TopRow {
    pub query: String,
    pub calls: i64,
}

/// A top statement that is not replayed, and why.
#[derive(Debug, Clone, Serialize)]
pub struct Skipped {
    pub query: String,
    pub calls: i64,
    pub reason: String,
}

/// A top statement that is replayed.
#[derive(Debug, Clone, Serialize)]
pub struct Replayed {
    pub query: String,
    pub calls: i64,
}

/// Where a placeholder's value comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum Fill {
    /// LIMIT / OFFSET: a fixed number.
    Fixed(String),
    /// Column `col` of bound table `group`; `draw` picks another sampled row of that table (the
    /// items of an IN list), 0 otherwise, so the columns of one table compared in one statement
    /// come from the same row and a multi-column filter still finds it.
    Column {
        group: usize,
        col: usize,
        draw: usize,
    },
}

#[derive(Debug, Clone, PartialEq)]
enum Segment {
    Text(String),
    Param(String),
}

/// A normalised statement with every placeholder bound; no values yet.
#[derive(Debug, Clone, PartialEq)]
pub struct Bound {
    segments: Vec<Segment>,
    pub fills: BTreeMap<String, Fill>,
    /// Per bound table (the clone's `schema.table` key), the columns whose values are sampled.
    pub groups: Vec<(String, Vec<String>)>,
}

impl Bound {
    /// The statement with each placeholder replaced: `value(group, col, draw)` gives the raw
    /// value of a column placeholder, quoted here as a literal.
    pub fn render(&self, mut value: impl FnMut(usize, usize, usize) -> String) -> String {
        let mut out = String::new();
        for s in &self.segments {
            match s {
                Segment::Text(t) => out.push_str(t),
                Segment::Param(p) => match &self.fills[p] {
                    Fill::Fixed(v) => out.push_str(v),
                    Fill::Column { group, col, draw } => {
                        out.push_str(&quote::pg::literal(&value(*group, *col, *draw)))
                    }
                },
            }
        }
        out
    }
}

/// Splits the text at the real placeholder tokens (not `$1` inside strings, comments or
/// dollar-quoted bodies): the tokenizer knows where they are.
fn segments(query: &str) -> std::result::Result<Vec<Segment>, String> {
    let tokens = Tokenizer::new(&PostgreSqlDialect {}, query)
        .tokenize_with_location()
        .map_err(|e| format!("cannot tokenize it: {e}"))?;
    // Spans are (line, column) in characters; map them to byte offsets.
    let mut line_starts = vec![0usize];
    for (i, c) in query.char_indices() {
        if c == '\n' {
            line_starts.push(i + 1);
        }
    }
    let offset = |line: u64, col: u64| -> Option<usize> {
        let start = *line_starts.get((line as usize).checked_sub(1)?)?;
        let rest = &query[start..];
        match rest.char_indices().nth((col as usize).checked_sub(1)?) {
            Some((i, _)) => Some(start + i),
            None => Some(query.len()),
        }
    };
    let mut out = Vec::new();
    let mut at = 0;
    for t in tokens {
        if let Token::Placeholder(p) = &t.token {
            let start = offset(t.span.start.line, t.span.start.column)
                .filter(|s| query[*s..].starts_with(p.as_str()))
                .ok_or_else(|| format!("cannot locate placeholder {p}"))?;
            out.push(Segment::Text(query[at..start].to_string()));
            out.push(Segment::Param(p.clone()));
            at = start + p.len();
        }
    }
    out.push(Segment::Text(query[at..].to_string()));
    Ok(out)
}

/// PostgreSQL folds unquoted names to lower case.
fn name(i: &Ident) -> String {
    if i.quote_style.is_some() {
        i.value.clone()
    } else {
        i.value.to_lowercase()
    }
}

fn strip(e: &Expr) -> &Expr {
    match e {
        Expr::Cast { expr, .. } | Expr::Nested(expr) => strip(expr),
        other => other,
    }
}

fn placeholder(e: &Expr) -> Option<String> {
    match strip(e) {
        Expr::Value(v) => match &v.value {
            Value::Placeholder(p) => Some(p.clone()),
            _ => None,
        },
        _ => None,
    }
}

fn column(e: &Expr) -> Option<Vec<String>> {
    match strip(e) {
        Expr::Identifier(i) => Some(vec![name(i)]),
        Expr::CompoundIdentifier(parts) => Some(parts.iter().map(name).collect()),
        _ => None,
    }
}

fn object_parts(o: &ObjectName) -> Vec<String> {
    o.0.iter()
        .map(|p| p.as_ident().map(name).unwrap_or_else(|| p.to_string()))
        .collect()
}

#[derive(Debug)]
enum Claim {
    /// Column reference as written (`[col]`, `[alias, col]`, `[schema, table, col]`).
    Column(Vec<String>, usize),
    Fixed(&'static str),
}

#[derive(Default)]
struct Collect {
    /// (name parts, alias)
    tables: Vec<(Vec<String>, Option<String>)>,
    ctes: BTreeSet<String>,
    claims: Vec<(String, Claim)>,
}

impl Collect {
    fn claim(&mut self, p: String, c: Claim) {
        if !self.claims.iter().any(|(q, _)| *q == p) {
            self.claims.push((p, c));
        }
    }
}

impl Visitor for Collect {
    type Break = ();

    fn pre_visit_query(&mut self, q: &Query) -> ControlFlow<()> {
        if let Some(w) = &q.with {
            for c in &w.cte_tables {
                self.ctes.insert(name(&c.alias.name));
            }
        }
        // A replayed page size or offset is not data: any small page will do.
        let (limit, offset) = match &q.limit_clause {
            Some(LimitClause::LimitOffset { limit, offset, .. }) => {
                (limit.as_ref(), offset.as_ref().map(|o| &o.value))
            }
            Some(LimitClause::OffsetCommaLimit { offset, limit }) => (Some(limit), Some(offset)),
            None => (None, None),
        };
        if let Some(p) = limit.and_then(placeholder) {
            self.claim(p, Claim::Fixed("10"));
        }
        if let Some(p) = offset.and_then(placeholder) {
            self.claim(p, Claim::Fixed("0"));
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_table_factor(&mut self, t: &TableFactor) -> ControlFlow<()> {
        if let TableFactor::Table { name: n, alias, .. } = t {
            self.tables
                .push((object_parts(n), alias.as_ref().map(|a| name(&a.name))));
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_statement(&mut self, s: &Statement) -> ControlFlow<()> {
        if let Statement::Update(u) = s {
            // `SET col = $n`: a value the column already holds.
            let target = match &u.table.relation {
                TableFactor::Table { name: n, alias, .. } => match alias {
                    Some(a) => vec![name(&a.name)],
                    None => object_parts(n),
                },
                _ => vec![],
            };
            for a in &u.assignments {
                if let (AssignmentTarget::ColumnName(c), Some(p)) =
                    (&a.target, placeholder(&a.value))
                {
                    let col = object_parts(c).pop().unwrap_or_default();
                    let mut parts = target.clone();
                    parts.push(col);
                    self.claim(p, Claim::Column(parts, 0));
                }
            }
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_expr(&mut self, e: &Expr) -> ControlFlow<()> {
        match e {
            Expr::BinaryOp {
                left,
                op:
                    BinaryOperator::Eq
                    | BinaryOperator::NotEq
                    | BinaryOperator::Lt
                    | BinaryOperator::LtEq
                    | BinaryOperator::Gt
                    | BinaryOperator::GtEq,
                right,
            } => {
                if let (Some(c), Some(p)) = (column(left), placeholder(right)) {
                    self.claim(p, Claim::Column(c, 0));
                } else if let (Some(p), Some(c)) = (placeholder(left), column(right)) {
                    self.claim(p, Claim::Column(c, 0));
                }
            }
            Expr::In {
                expr,
                target: InTarget::List(list),
                ..
            } => {
                if let Some(c) = column(expr) {
                    for (i, item) in list.iter().enumerate() {
                        if let Some(p) = placeholder(item) {
                            self.claim(p, Claim::Column(c.clone(), i));
                        }
                    }
                }
            }
            // Both bounds from one row: `col BETWEEN v AND v` finds that row.
            Expr::Between {
                expr, low, high, ..
            } => {
                if let Some(c) = column(expr) {
                    for b in [low, high] {
                        if let Some(p) = placeholder(b) {
                            self.claim(p, Claim::Column(c.clone(), 0));
                        }
                    }
                }
            }
            Expr::Like { expr, pattern, .. } | Expr::ILike { expr, pattern, .. } => {
                if let (Some(c), Some(p)) = (column(expr), placeholder(pattern)) {
                    self.claim(p, Claim::Column(c, 0));
                }
            }
            _ => {}
        }
        ControlFlow::Continue(())
    }
}

/// What kind of statement a normalised query is, before binding.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kind {
    Read,
    Update,
    Delete,
    Insert,
    Other,
}

fn parse_one(query: &str) -> std::result::Result<Statement, String> {
    let mut st = Parser::parse_sql(&PostgreSqlDialect {}, query)
        .map_err(|e| format!("sqlparser cannot parse it: {e}"))?;
    if st.len() != 1 {
        return Err(format!("{} statements in one entry", st.len()));
    }
    Ok(st.remove(0))
}

fn kind(st: &Statement) -> Kind {
    match st {
        // `WITH … INSERT/UPDATE/DELETE` parses as a query around the statement.
        Statement::Query(q) => match &*q.body {
            SetExpr::Insert(s) | SetExpr::Update(s) | SetExpr::Delete(s) => kind(s),
            SetExpr::Merge(_) => Kind::Other,
            _ => Kind::Read,
        },
        Statement::Update(_) => Kind::Update,
        Statement::Delete(_) => Kind::Delete,
        Statement::Insert(_) => Kind::Insert,
        _ => Kind::Other,
    }
}

fn reads_a_table(st: &Statement) -> bool {
    // An INSERT's target is not a table factor; it is reported as skipped.
    if kind(st) == Kind::Insert {
        return true;
    }
    let mut c = Collect::default();
    let _ = st.visit(&mut c);
    c.tables
        .iter()
        .any(|(parts, _)| !(parts.len() == 1 && c.ctes.contains(&parts[0])))
}

/// Resolves a table name as written to the clone's `schema.table` key (unqualified: `public`
/// first, then the one schema that has it).
fn resolve_table(parts: &[String], schema: &Schema) -> Option<String> {
    resolve_in(parts, &schema.tables)
}

fn resolve_in<V>(parts: &[String], keys: &BTreeMap<String, V>) -> Option<String> {
    match parts {
        [s, t] => {
            let k = format!("{s}.{t}");
            keys.contains_key(&k).then_some(k)
        }
        [t] => {
            let k = format!("public.{t}");
            if keys.contains_key(&k) {
                return Some(k);
            }
            let mut m = keys
                .keys()
                .filter(|k| k.rsplit_once('.').map(|(_, n)| n) == Some(t.as_str()));
            match (m.next(), m.next()) {
                (Some(k), None) => Some(k.clone()),
                _ => None,
            }
        }
        _ => None,
    }
}

/// Binds every placeholder of a normalised query to a column of the clone (or LIMIT / OFFSET).
pub fn bind(query: &str, schema: &Schema) -> std::result::Result<Bound, String> {
    let st = parse_one(query)?;
    let mut c = Collect::default();
    let _ = st.visit(&mut c);
    // (key, alias, name as written)
    let mut tables: Vec<(String, Option<String>, String)> = Vec::new();
    for (parts, alias) in &c.tables {
        if parts.len() == 1 && c.ctes.contains(&parts[0]) {
            continue;
        }
        let key =
            resolve_table(parts, schema).ok_or_else(|| match resolve_in(parts, &schema.views) {
                Some(v) => format!("it reads view {v}: only tables' columns are bound"),
                None => format!("table {} is not in the clone", parts.join(".")),
            })?;
        tables.push((
            key,
            alias.clone(),
            parts.last().cloned().unwrap_or_default(),
        ));
    }
    if tables.is_empty() {
        return Err("it reads no table".into());
    }
    let has = |key: &str, col: &str| schema.tables[key].columns.iter().any(|c| c.name == col);
    let mut groups: Vec<(String, Vec<String>)> = Vec::new();
    let mut fills = BTreeMap::new();
    for (p, claim) in &c.claims {
        let (parts, draw) = match claim {
            Claim::Fixed(v) => {
                fills.insert(p.clone(), Fill::Fixed(v.to_string()));
                continue;
            }
            Claim::Column(parts, draw) => (parts, *draw),
        };
        let (col, qual) = parts.split_last().expect("a column has a name");
        let key = if qual.is_empty() {
            let keys: BTreeSet<&String> = tables.iter().map(|t| &t.0).collect();
            let with: Vec<&&String> = keys.iter().filter(|k| has(k, col)).collect();
            match (keys.len(), with.as_slice()) {
                (1, [k]) | (_, [k]) => (**k).clone(),
                (_, []) => return Err(format!("{p}: no table here has a column {col}")),
                _ => return Err(format!("{p}: column {col} is ambiguous")),
            }
        } else {
            let q = qual.last().unwrap();
            let by_alias = tables.iter().find(|t| t.1.as_deref() == Some(q.as_str()));
            let by_name = || {
                tables
                    .iter()
                    .find(|t| t.1.is_none() && &t.2 == q)
                    .or_else(|| {
                        resolve_table(qual, schema).and_then(|k| tables.iter().find(|t| t.0 == k))
                    })
            };
            match by_alias.or_else(by_name) {
                Some(t) if has(&t.0, col) => t.0.clone(),
                Some(t) => return Err(format!("{p}: {} has no column {col}", t.0)),
                None => return Err(format!("{p}: unknown table or alias {q}")),
            }
        };
        let g = match groups.iter().position(|(k, _)| *k == key) {
            Some(g) => g,
            None => {
                groups.push((key, vec![]));
                groups.len() - 1
            }
        };
        let cols = &mut groups[g].1;
        let ci = match cols.iter().position(|c| c == col) {
            Some(i) => i,
            None => {
                cols.push(col.clone());
                cols.len() - 1
            }
        };
        fills.insert(
            p.clone(),
            Fill::Column {
                group: g,
                col: ci,
                draw,
            },
        );
    }
    let segments = segments(query)?;
    for s in &segments {
        if let Segment::Param(p) = s {
            if !fills.contains_key(p) {
                return Err(format!(
                    "{p} is not compared with a column (nor a LIMIT or OFFSET)"
                ));
            }
        }
    }
    Ok(Bound {
        segments,
        fills,
        groups,
    })
}

/// A replayable statement with its sampled values.
#[derive(Debug)]
pub struct TopStatement {
    pub query: String,
    pub calls: i64,
    pub bound: Bound,
    /// Per group, sampled rows (one value per group column).
    samples: Vec<Vec<Vec<String>>>,
    /// DELETEs run in a transaction that is rolled back: they take the locks the application's
    /// take, and the clone keeps its rows, so the sampled values keep finding rows and the
    /// baseline and the migration window see the same data.
    pub rollback: bool,
}

impl TopStatement {
    /// Runs it once with fresh values on a client's session.
    pub async fn run(&self, s: &mut Session, rng: &mut Rng) -> std::result::Result<(), QueryError> {
        let sql = self.render(rng);
        if !self.rollback {
            return s.batch(&sql).await;
        }
        let r = s.batch(&format!("BEGIN; {sql}; ROLLBACK")).await;
        if r.is_err() {
            // A failed statement leaves the explicit transaction open and aborted.
            let _ = s.batch("ROLLBACK").await;
        }
        r
    }

    /// Raw values for each placeholder (`$1` → value), drawn as [`TopStatement::render`] draws
    /// them: for `EXPLAIN (ANALYZE) EXECUTE` of the prepared statement with real values.
    pub fn param_values(&self, rng: &mut Rng) -> BTreeMap<String, String> {
        let mut picks: Vec<Vec<usize>> = vec![Vec::new(); self.samples.len()];
        self.bound
            .fills
            .iter()
            .map(|(p, f)| {
                let v = match f {
                    Fill::Fixed(v) => v.clone(),
                    Fill::Column { group, col, draw } => {
                        let rows = &self.samples[*group];
                        while picks[*group].len() <= *draw {
                            picks[*group].push((rng.next_u64() % rows.len() as u64) as usize);
                        }
                        rows[picks[*group][*draw]][*col].clone()
                    }
                };
                (p.clone(), v)
            })
            .collect()
    }

    /// The statement with fresh values.
    pub fn render(&self, rng: &mut Rng) -> String {
        let mut picks: Vec<Vec<usize>> = vec![Vec::new(); self.samples.len()];
        self.bound.render(|g, c, d| {
            let rows = &self.samples[g];
            while picks[g].len() <= d {
                picks[g].push((rng.next_u64() % rows.len() as u64) as usize);
            }
            rows[picks[g][d]][c].clone()
        })
    }
}

#[derive(Debug)]
pub struct TopPlan {
    pub statements: Vec<TopStatement>,
    pub skipped: Vec<Skipped>,
    /// Running sums of calls, for the weighted pick.
    cumulative: Vec<u64>,
}

impl TopPlan {
    /// A statement, with probability proportional to its calls.
    pub fn pick(&self, rng: &mut Rng) -> &TopStatement {
        let total = *self.cumulative.last().expect("a plan has statements");
        let r = rng.next_u64() % total;
        let i = self.cumulative.partition_point(|c| *c <= r);
        &self.statements[i]
    }

    pub fn replayed(&self) -> Vec<Replayed> {
        self.statements
            .iter()
            .map(|s| Replayed {
                query: s.query.clone(),
                calls: s.calls,
            })
            .collect()
    }
}

/// Fails with how to enable it when the source has no readable pg_stat_statements.
pub async fn read_top(source: &DbUrl) -> Result<Vec<TopRow>> {
    let fallback = "or use the default workload (no --workload) or --workload script.sql";
    if !is_pg(source) {
        return Err(Error::usage(
            "--workload pg_stat_statements needs a PostgreSQL source",
            format!("MariaDB/MySQL have no pg_stat_statements; {fallback}"),
        ));
    }
    let mut s = Session::open(source).await?;
    let found = s
        // The tag keeps this check out of the statements read below (pg_stat_statements keeps
        // comments, and the query takes only texts that start with a keyword).
        .scalar(&format!(
            "{SOURCE_TAG}SELECT to_regclass('pg_stat_statements')::text"
        ))
        .await?;
    let how = format!(
        "enable it on the source: add pg_stat_statements to shared_preload_libraries in postgresql.conf, restart, then run CREATE EXTENSION pg_stat_statements; {fallback}"
    );
    if found.is_none() {
        s.close().await;
        return Err(Error::usage(
            "--workload pg_stat_statements: the source has no pg_stat_statements view (the extension is not created in this database)",
            how,
        ));
    }
    if let Err(e) = s.batch("SELECT 1 FROM pg_stat_statements LIMIT 1").await {
        s.close().await;
        return Err(Error::usage(
            format!(
                "--workload pg_stat_statements: pg_stat_statements cannot be read: {} ({})",
                e.message, e.code
            ),
            how,
        ));
    }
    // Grouped by text: one query run by several roles is one statement. Only top-level statements
    // (not those run inside functions) and only the kinds replayed (or reported as skipped);
    // catalog queries and sluice's own (its schema, its sampling) are not the application's.
    let sql = format!(
        "SELECT query, sum(calls)::bigint AS calls FROM pg_stat_statements \
         WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) AND toplevel \
           AND query ~* '^\\s*(with|select|update|delete|insert)\\y' \
           AND query !~* '(pg_catalog|information_schema|\\ypg_|\\ysluice\\y|random\\(\\))' \
         GROUP BY query ORDER BY 2 DESC, 1 LIMIT {READ}"
    );
    let rows = match s.pg().query(sql.as_str(), &[]).await {
        Ok(r) => r,
        Err(e) => {
            s.close().await;
            return Err(pg_err("reading pg_stat_statements", e));
        }
    };
    s.close().await;
    Ok(rows
        .iter()
        .map(|r| TopRow {
            query: r.get(0),
            calls: r.get(1),
        })
        .collect())
}

/// Turns (query, calls) rows into a plan: binds each, samples its columns' values from the clone.
pub async fn plan(scratch: &DbUrl, schema: &Schema, rows: &[TopRow]) -> Result<TopPlan> {
    let mut statements = Vec::new();
    let mut skipped = Vec::new();
    let mut s = Session::open(scratch).await?;
    let mut considered = 0;
    for r in rows {
        if considered == TOP {
            break;
        }
        let skip = |reason: String| Skipped {
            query: r.query.clone(),
            calls: r.calls,
            reason,
        };
        let parsed = parse_one(&r.query);
        // A statement that reads no table (a health check, a setting, a driver's own query) is
        // not part of the workload: no migration can block it.
        if parsed.as_ref().is_ok_and(|st| !reads_a_table(st)) {
            continue;
        }
        considered += 1;
        let k = parsed.map(|st| kind(&st));
        match k {
            Err(e) => {
                skipped.push(skip(e));
                continue;
            }
            Ok(Kind::Insert) => {
                skipped.push(skip(
                    "INSERT: replayed rows would collide with existing keys".into(),
                ));
                continue;
            }
            Ok(Kind::Other) => {
                skipped.push(skip("only SELECT, UPDATE and DELETE are replayed".into()));
                continue;
            }
            Ok(Kind::Read | Kind::Update | Kind::Delete) => {}
        }
        let rollback = k == Ok(Kind::Delete);
        let bound = match bind(&r.query, schema) {
            Ok(b) => b,
            Err(e) => {
                skipped.push(skip(e));
                continue;
            }
        };
        let mut samples = Vec::new();
        let mut empty = None;
        for (table, cols) in &bound.groups {
            let v = sample(&mut s, table, cols).await?;
            if v.is_empty() {
                empty = Some(format!("no rows of {table} to take values from"));
                break;
            }
            samples.push(v);
        }
        if let Some(e) = empty {
            skipped.push(skip(e));
            continue;
        }
        if rollback && samples.len() == 1 {
            match deletable(&mut s, &bound, &samples[0]).await? {
                Ok(rows) => samples[0] = rows,
                Err(e) => {
                    skipped.push(skip(format!(
                        "the DELETE fails for every sampled row on the clone: {e}"
                    )));
                    continue;
                }
            }
        }
        statements.push(TopStatement {
            query: r.query.clone(),
            calls: r.calls.max(1),
            bound,
            samples,
            rollback,
        });
    }
    s.close().await;
    if statements.is_empty() {
        let why: Vec<String> = skipped
            .iter()
            .map(|k| format!("{} ({})", one_line(&k.query), k.reason))
            .collect();
        return Err(Error::usage(
            if rows.is_empty() {
                "--workload pg_stat_statements: pg_stat_statements has no SELECT, UPDATE or DELETE of this database".to_string()
            } else {
                format!(
                    "--workload pg_stat_statements: none of the top statements can be replayed: {}",
                    why.join("; ")
                )
            },
            "let the application run with pg_stat_statements enabled first, or use the default workload or --workload script.sql",
        ));
    }
    let mut cumulative = Vec::new();
    let mut sum = 0u64;
    for st in &statements {
        sum += st.calls as u64;
        cumulative.push(sum);
    }
    Ok(TopPlan {
        statements,
        skipped,
        cumulative,
    })
}

/// The sampled rows whose DELETE succeeds (each tried under a savepoint, all rolled back): a row
/// still referenced by a foreign key would fail on every replay, an error the application, which
/// deletes rows it knows can go, does not see.
async fn deletable(
    s: &mut Session,
    bound: &Bound,
    rows: &[Vec<String>],
) -> Result<std::result::Result<Vec<Vec<String>>, String>> {
    s.batch("BEGIN")
        .await
        .map_err(|e| Error::database("BEGIN", e.message))?;
    let mut keep = Vec::new();
    let mut first_error = None;
    for row in rows {
        let sql = bound.render(|_, c, _| row[c].clone());
        match s.batch(&format!("SAVEPOINT sluice_try; {sql}")).await {
            Ok(()) => keep.push(row.clone()),
            Err(e) => {
                first_error.get_or_insert(format!("{} ({})", e.message, e.code));
            }
        }
        s.batch("ROLLBACK TO SAVEPOINT sluice_try")
            .await
            .map_err(|e| Error::database("ROLLBACK TO SAVEPOINT", e.message))?;
    }
    s.batch("ROLLBACK")
        .await
        .map_err(|e| Error::database("ROLLBACK", e.message))?;
    Ok(if keep.is_empty() {
        Err(first_error.unwrap_or_else(|| "no rows".into()))
    } else {
        Ok(keep)
    })
}

/// Up to [`SAMPLE`] rows of the columns, none NULL: a block sample when it gives enough, the
/// first rows otherwise (small tables).
async fn sample(s: &mut Session, table: &str, cols: &[String]) -> Result<Vec<Vec<String>>> {
    let t = table_sql(true, table);
    let list: Vec<String> = cols
        .iter()
        .map(|c| format!("{}::text", ident(true, c)))
        .collect();
    let not_null: Vec<String> = cols
        .iter()
        .map(|c| format!("{} IS NOT NULL", ident(true, c)))
        .collect();
    let q = |from: String| {
        format!(
            "SELECT {} FROM {from} WHERE {} LIMIT {SAMPLE}",
            list.join(", "),
            not_null.join(" AND ")
        )
    };
    let mut rows = s.rows(&q(format!("{t} TABLESAMPLE SYSTEM (5)"))).await?;
    if rows.len() < 50 {
        rows = s.rows(&q(t)).await?;
    }
    Ok(rows
        .into_iter()
        .map(|r| r.into_iter().map(Option::unwrap_or_default).collect())
        .collect())
}

pub fn one_line(q: &str) -> String {
    let one = q.split_whitespace().collect::<Vec<_>>().join(" ");
    if one.chars().count() > 100 {
        format!("{}…", one.chars().take(100).collect::<String>())
    } else {
        one
    }
}

/// Shared by the clients: sampled values can be large.
pub type Shared = Arc<TopPlan>;

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_core::schema::{Column, Table};

    fn schema() -> Schema {
        let table = |cols: &[&str]| Table {
            columns: cols
                .iter()
                .map(|c| Column {
                    name: c.to_string(),
                    data_type: "text".into(),
                    nullable: true,
                    default: None,
                    extra: None,
                })
                .collect(),
            ..Default::default()
        };
        let mut s = Schema::default();
        s.tables
            .insert("public.users".into(), table(&["id", "email", "org_id"]));
        s.tables.insert(
            "public.orders".into(),
            table(&["id", "user_id", "total", "status"]),
        );
        s.tables.insert("app.Items".into(), table(&["id", "name"]));
        s.views.insert(
            "public.paid".into(),
            sluice_core::schema::View {
                definition: "SELECT * FROM orders WHERE status = 'paid'".into(),
                materialized: false,
            },
        );
        s
    }

    /// Renders with `g<group>c<col>d<draw>` as each value.
    fn show(q: &str) -> String {
        let b = bind(q, &schema()).unwrap_or_else(|e| panic!("{q}: {e}"));
        b.render(|g, c, d| format!("g{g}c{c}d{d}"))
    }

    #[test]
    fn binds_placeholders_to_columns() {
        assert_eq!(
            show("SELECT id, email FROM users WHERE id = $1"),
            "SELECT id, email FROM users WHERE id = 'g0c0d0'"
        );
        // Aliases, both operand orders, a join: both tables' columns, one row per table.
        assert_eq!(
            show("SELECT o.total FROM orders o JOIN users AS u ON u.id = o.user_id WHERE $1 = u.email AND o.status <> $2"),
            "SELECT o.total FROM orders o JOIN users AS u ON u.id = o.user_id WHERE 'g0c0d0' = u.email AND o.status <> 'g1c0d0'"
        );
        // Unqualified column of a join: the one table that has it.
        let b = bind(
            "SELECT 1 FROM orders JOIN users ON users.id = orders.user_id WHERE email = $1",
            &schema(),
        )
        .unwrap();
        assert_eq!(
            b.groups,
            vec![("public.users".to_string(), vec!["email".to_string()])]
        );
        // IN lists draw a row per item; BETWEEN takes both bounds from one row; LIMIT / OFFSET.
        assert_eq!(
            show("SELECT * FROM orders WHERE user_id IN ($1, $2, $3) AND total BETWEEN $4 AND $5 ORDER BY id LIMIT $6 OFFSET $7"),
            "SELECT * FROM orders WHERE user_id IN ('g0c0d0', 'g0c0d1', 'g0c0d2') AND total BETWEEN 'g0c1d0' AND 'g0c1d0' ORDER BY id LIMIT 10 OFFSET 0"
        );
        // UPDATE: SET col = $n and WHERE; DELETE; quoted, schema-qualified names; casts.
        assert_eq!(
            show("UPDATE orders SET status = $1 WHERE id = $2::bigint"),
            "UPDATE orders SET status = 'g0c0d0' WHERE id = 'g0c1d0'::bigint"
        );
        assert_eq!(
            show("DELETE FROM app.\"Items\" i WHERE i.name LIKE $1"),
            "DELETE FROM app.\"Items\" i WHERE i.name LIKE 'g0c0d0'"
        );
        // `$1` inside a string or a comment is not a placeholder.
        assert_eq!(
            show("SELECT '$1 costs' || email FROM users /* $2 */ WHERE org_id = $1"),
            "SELECT '$1 costs' || email FROM users /* $2 */ WHERE org_id = 'g0c0d0'"
        );
        // Non-ASCII text before a placeholder (token positions count characters).
        assert_eq!(
            show("SELECT 'é€' AS \"ü\" FROM users -- ö $3\nWHERE id = $1"),
            "SELECT 'é€' AS \"ü\" FROM users -- ö $3\nWHERE id = 'g0c0d0'"
        );
        // Values are quoted as literals, never pasted raw.
        let b = bind("SELECT 1 FROM users WHERE email = $1", &schema()).unwrap();
        assert_eq!(
            b.render(|_, _, _| "o'neil".into()),
            "SELECT 1 FROM users WHERE email = 'o''neil'"
        );
        // A subquery with its own alias, and a CTE (not a table).
        assert_eq!(
            show("WITH big AS (SELECT user_id FROM orders WHERE total > $1) SELECT u.email FROM users u WHERE u.id IN (SELECT user_id FROM big) AND u.org_id = $2"),
            "WITH big AS (SELECT user_id FROM orders WHERE total > 'g0c0d0') SELECT u.email FROM users u WHERE u.id IN (SELECT user_id FROM big) AND u.org_id = 'g1c0d0'"
        );
    }

    #[test]
    fn unbindable_statements_say_why() {
        let e = |q: &str| bind(q, &schema()).unwrap_err();
        assert!(
            e("UPDATE orders SET total = total + $1 WHERE id = $2").contains("$1 is not compared")
        );
        assert!(e("SELECT $1").contains("no table"));
        assert!(
            e("SELECT id FROM users u JOIN orders o ON o.user_id = u.id WHERE id = $1")
                .contains("ambiguous")
        );
        assert!(e("SELECT * FROM nope WHERE id = $1").contains("not in the clone"));
        assert!(e("SELECT * FROM paid WHERE id = $1").contains("view public.paid"));
        assert!(
            e("SELECT * FROM users WHERE nope = $1").contains("no table here has a column nope")
        );
        assert!(e("SELECT * FROM users x WHERE y.id = $1").contains("unknown table or alias y"));
    }

    #[test]
    fn kinds() {
        let k = |q: &str| kind(&parse_one(q).unwrap());
        assert_eq!(k("SELECT 1"), Kind::Read);
        assert_eq!(k("DELETE FROM t WHERE id = $1"), Kind::Delete);
        assert_eq!(k("UPDATE t SET a = $1"), Kind::Update);
        assert_eq!(k("INSERT INTO t (a) VALUES ($1)"), Kind::Insert);
        assert_eq!(
            k("WITH x AS (SELECT 1) INSERT INTO t (a) SELECT * FROM x"),
            Kind::Insert
        );
        assert_eq!(
            k("WITH x AS (SELECT 1) DELETE FROM t WHERE a IN (SELECT * FROM x)"),
            Kind::Delete
        );
        assert_eq!(k("SET x = 1"), Kind::Other);
    }
}
