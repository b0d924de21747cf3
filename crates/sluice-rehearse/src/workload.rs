//! The workload: N clients, each on its own connection, paced open-loop.
//!
//! Every client has a fixed schedule of intended send times (`clients / rate` apart, clients
//! staggered). A query's latency is measured from its intended send time, not from when it was
//! actually sent: a client stuck behind a lock falls behind its schedule, and the queries it could
//! not send in time count the wait they would have seen (no coordinated omission).

use crate::clone::{ident, table_sql};
use crate::db::{is_pg, QueryError, Session};
use serde::Serialize;
use sluice_core::dburl::DbUrl;
use sluice_core::error::{Error, Result};
use sluice_core::schema::{ConstraintKind, Schema};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Weights of the derived workload's query kinds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Mix {
    pub read: u32,
    pub update: u32,
    pub insert: u32,
}

impl Default for Mix {
    fn default() -> Self {
        Mix {
            read: 80,
            update: 15,
            insert: 5,
        }
    }
}

impl Mix {
    /// `read=80,update=15,insert=5` (missing kinds weigh 0).
    pub fn parse(s: &str) -> std::result::Result<Mix, String> {
        let mut m = Mix {
            read: 0,
            update: 0,
            insert: 0,
        };
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (k, v) = part
                .split_once('=')
                .ok_or_else(|| format!("`{part}`: expected kind=weight"))?;
            let v: u32 = v
                .trim()
                .parse()
                .map_err(|_| format!("`{part}`: the weight must be a whole number"))?;
            match k.trim() {
                "read" => m.read = v,
                "update" => m.update = v,
                "insert" => m.insert = v,
                other => {
                    return Err(format!(
                        "unknown query kind `{other}` (read, update, insert)"
                    ))
                }
            }
        }
        if m.read + m.update + m.insert == 0 {
            return Err("the weights add up to 0".into());
        }
        Ok(m)
    }
}

/// A pgbench-like script: `\set name random(lo, hi)` lines and SQL statements using `:name`.
#[derive(Debug, Clone, PartialEq)]
pub struct Script {
    pub steps: Vec<ScriptStep>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ScriptStep {
    Set { name: String, lo: i64, hi: i64 },
    Sql(String),
}

impl Script {
    pub fn parse(text: &str) -> std::result::Result<Script, String> {
        let mut steps = Vec::new();
        let mut sql = String::new();
        for (n, line) in text.lines().enumerate() {
            let t = line.trim();
            if let Some(rest) = t.strip_prefix("\\set ") {
                let (name, expr) =
                    rest.trim().split_once(char::is_whitespace).ok_or_else(|| {
                        format!("line {}: expected `\\set name random(lo, hi)`", n + 1)
                    })?;
                let expr = expr.trim();
                let (lo, hi) = if let Some(args) = expr
                    .strip_prefix("random(")
                    .and_then(|a| a.strip_suffix(')'))
                {
                    let (a, b) = args.split_once(',').ok_or_else(|| {
                        format!("line {}: random(lo, hi) takes two numbers", n + 1)
                    })?;
                    let p = |s: &str| {
                        s.trim().parse::<i64>().map_err(|_| {
                            format!("line {}: `{}` is not a whole number", n + 1, s.trim())
                        })
                    };
                    (p(a)?, p(b)?)
                } else {
                    let v: i64 = expr.parse().map_err(|_| {
                        format!("line {}: `{expr}`: use a number or random(lo, hi)", n + 1)
                    })?;
                    (v, v)
                };
                if hi < lo {
                    return Err(format!("line {}: random({lo}, {hi}) is empty", n + 1));
                }
                steps.push(ScriptStep::Set {
                    name: name.to_string(),
                    lo,
                    hi,
                });
                continue;
            }
            if t.is_empty() || t.starts_with("--") {
                continue;
            }
            sql.push_str(line);
            sql.push('\n');
            if t.ends_with(';') {
                steps.push(ScriptStep::Sql(
                    sql.trim().trim_end_matches(';').to_string(),
                ));
                sql.clear();
            }
        }
        if !sql.trim().is_empty() {
            steps.push(ScriptStep::Sql(sql.trim().to_string()));
        }
        if !steps.iter().any(|s| matches!(s, ScriptStep::Sql(_))) {
            return Err("the script has no SQL statement".into());
        }
        Ok(Script { steps })
    }
}

/// Replaces `:name` with the variable's value (numbers only, so nothing needs quoting); `::` casts
/// and unknown names are left alone.
pub fn substitute(sql: &str, vars: &BTreeMap<String, i64>) -> String {
    let b = sql.as_bytes();
    let mut out = String::with_capacity(sql.len() + 8);
    let mut i = 0;
    while i < b.len() {
        if b[i] == b':' && (i == 0 || b[i - 1] != b':') && b.get(i + 1) != Some(&b':') {
            let start = i + 1;
            let mut end = start;
            while end < b.len() && (b[end].is_ascii_alphanumeric() || b[end] == b'_') {
                end += 1;
            }
            if let Some(v) = vars.get(&sql[start..end]) {
                out.push_str(&v.to_string());
                i = end;
                continue;
            }
        }
        out.push(b[i] as char);
        i += 1;
    }
    // Multi-byte characters were pushed byte by byte above; redo those safely.
    if !sql.is_ascii() {
        return substitute_slow(sql, vars);
    }
    out
}

fn substitute_slow(sql: &str, vars: &BTreeMap<String, i64>) -> String {
    let mut names: Vec<&String> = vars.keys().collect();
    names.sort_by_key(|n| std::cmp::Reverse(n.len()));
    let mut out = sql.to_string();
    for n in names {
        out = out.replace(&format!(":{n}"), &vars[n].to_string());
    }
    out
}

#[derive(Debug, Clone)]
pub struct WorkloadSpec {
    pub clients: usize,
    /// Total transactions per second over all clients (a derived query or one script run).
    pub rate: f64,
    pub mix: Mix,
    pub script: Option<Script>,
    /// `--workload pg_stat_statements`: the source's top statements.
    pub top_statements: bool,
}

/// One table the derived workload touches.
#[derive(Debug, Clone, Serialize)]
pub struct TargetTable {
    pub table: String,
    pub key: String,
    pub lo: i64,
    pub hi: i64,
    #[serde(skip)]
    read: String,
    #[serde(skip)]
    update: Option<String>,
    #[serde(skip)]
    insert: Option<String>,
    /// Inserts name the key themselves (no sequence): the next key to use.
    #[serde(skip)]
    next_key: Option<Arc<AtomicI64>>,
}

impl TargetTable {
    /// The derived statements on this table with a value per parameter (a key in the middle of
    /// the table's range; for an insert naming its key, one beyond every key the workload uses).
    pub fn statements(&self) -> Vec<(String, Vec<i64>)> {
        let mid = self.lo + (self.hi - self.lo) / 2;
        let mut out = vec![(self.read.clone(), vec![mid])];
        if let Some(u) = &self.update {
            out.push((u.clone(), vec![mid]));
        }
        if let Some(i) = &self.insert {
            let params = if self.next_key.is_some() {
                vec![mid, self.hi.saturating_add(1_000_000_000)]
            } else if i.contains("$1") {
                vec![mid]
            } else {
                vec![]
            };
            out.push((i.clone(), params));
        }
        out
    }
}

/// What the clients run.
#[derive(Debug, Clone)]
pub enum Plan {
    Derived(Vec<TargetTable>, Mix),
    Script(Script),
    /// The source's top statements from pg_stat_statements.
    Top(crate::top::Shared),
}

impl Plan {
    pub fn describe(&self) -> String {
        match self {
            Plan::Derived(t, m) => format!(
                "derived: read/update/insert = {}/{}/{} by primary key on {}",
                m.read,
                m.update,
                m.insert,
                t.iter()
                    .map(|t| t.table.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Plan::Script(s) => format!("script of {} step(s)", s.steps.len()),
            Plan::Top(t) => format!(
                "top {} statement(s) of pg_stat_statements ({} skipped)",
                t.statements.len(),
                t.skipped.len()
            ),
        }
    }
}

/// The keys of `schema.tables` that the statements of `text` name, as the parser reads them (an
/// unqualified name is found in any schema, as the search path would on a clone of one database).
pub(crate) fn named_tables(
    engine: sluice_core::target::EngineKind,
    schema: &Schema,
    text: &str,
) -> std::collections::BTreeSet<String> {
    use sluice_core::analysis::ir;
    let statements = sluice_core::sql::split(engine, text).unwrap_or_default();
    let mut out = std::collections::BTreeSet::new();
    for (i, s) in statements.iter().enumerate() {
        let st = ir::build(engine, i, s, 0, text);
        for q in ir::relations(engine, &st) {
            for key in schema.tables.keys() {
                let (ks, kn) = if engine == sluice_core::target::EngineKind::Postgres {
                    let (a, b) = sluice_postgres::schema::split_key(key);
                    (Some(a), b)
                } else {
                    (None, key.clone())
                };
                let schema_ok = match (&q.schema, &ks) {
                    (Some(a), Some(b)) => a == b,
                    _ => true,
                };
                // MariaDB/MySQL table names compare case-insensitively on the default settings.
                let name_ok = if engine == sluice_core::target::EngineKind::Postgres {
                    q.name == kn
                } else {
                    q.name.eq_ignore_ascii_case(&kn)
                };
                if schema_ok && name_ok {
                    out.insert(key.clone());
                }
            }
        }
    }
    out
}

/// The tables the pending migrations name (all tables with a usable key when they name none), with
/// queries by integer primary key.
pub async fn derive(
    scratch: &DbUrl,
    schema: &Schema,
    migration_text: &str,
    mix: Mix,
) -> Result<Plan> {
    let pg = is_pg(scratch);
    let named = named_tables(scratch.kind(), schema, migration_text);
    let mut candidates: Vec<&String> = schema
        .tables
        .keys()
        .filter(|k| named.contains(*k))
        .collect();
    if candidates.is_empty() {
        candidates = schema.tables.keys().collect();
    }
    let mut s = Session::open(scratch).await?;
    let mut out = Vec::new();
    for key in candidates {
        let t = &schema.tables[key];
        // PostgreSQL keeps the primary key as a constraint, MariaDB/MySQL as the index PRIMARY.
        let pk_cols: Vec<String> = match t
            .constraints
            .values()
            .find(|c| c.kind == ConstraintKind::PrimaryKey)
        {
            Some(pk) => pk
                .definition
                .split_once('(')
                .map(|(_, r)| r.split(')').next().unwrap_or(""))
                .unwrap_or("")
                .split(',')
                .map(|c| c.trim().trim_matches(['"', '`']).to_string())
                .collect(),
            None => match t.indexes.get("PRIMARY") {
                Some(i) => i.columns.clone(),
                None => continue,
            },
        };
        let [pk_col] = pk_cols.as_slice() else {
            continue;
        };
        let Some(col) = t.columns.iter().find(|c| &c.name == pk_col) else {
            continue;
        };
        let ty = col.data_type.to_lowercase();
        if !["integer", "bigint", "smallint", "int", "mediumint"]
            .iter()
            .any(|p| {
                ty == *p || ty.starts_with(&format!("{p}(")) || ty.starts_with(&format!("{p} "))
            })
        {
            continue;
        }
        let tq = table_sql(pg, key);
        let kq = ident(pg, pk_col);
        let range = s
            .rows(&format!("SELECT min({kq}), max({kq}) FROM {tq}"))
            .await?;
        let (Some(Some(lo)), Some(Some(hi))) = (
            range.first().map(|r| r[0].clone()),
            range.first().map(|r| r[1].clone()),
        ) else {
            continue;
        };
        let (lo, hi): (i64, i64) = (lo.parse().unwrap_or(0), hi.parse().unwrap_or(0));
        let p = |n: usize| {
            if pg {
                format!("${n}::bigint")
            } else {
                "?".into()
            }
        };
        let generated = |c: &sluice_core::schema::Column| {
            c.extra.as_deref().is_some_and(|e| {
                e.starts_with("generated") || e.contains("VIRTUAL") || e.contains("STORED")
            })
        };
        let sequenced = col
            .extra
            .as_deref()
            .is_some_and(|e| e.starts_with("identity") || e.contains("auto_increment"))
            || col
                .default
                .as_deref()
                .is_some_and(|d| d.contains("nextval("));
        let unique_cols: Vec<&String> = t
            .indexes
            .values()
            .filter(|i| i.unique)
            .flat_map(|i| &i.columns)
            .filter(|c| *c != pk_col)
            .collect();
        let fk_cols: Vec<String> = t
            .constraints
            .values()
            .filter(|c| c.kind == ConstraintKind::ForeignKey)
            .map(|c| c.definition.clone())
            .collect();
        let update = t
            .columns
            .iter()
            .find(|c| {
                &c.name != pk_col
                    && !generated(c)
                    && !unique_cols.contains(&&c.name)
                    && !fk_cols.iter().any(|d| d.contains(&c.name))
            })
            .map(|c| {
                let cq = ident(pg, &c.name);
                format!("UPDATE {tq} SET {cq} = {cq} WHERE {kq} = {}", p(1))
            });
        let others: Vec<String> = t
            .columns
            .iter()
            .filter(|c| &c.name != pk_col && !generated(c))
            .map(|c| ident(pg, &c.name))
            .collect();
        // An insert copies an existing row under a new key; a unique column would collide.
        let insert = if !unique_cols.is_empty() {
            None
        } else if sequenced {
            Some(if others.is_empty() {
                format!("INSERT INTO {tq} DEFAULT VALUES")
            } else {
                let l = others.join(", ");
                format!(
                    "INSERT INTO {tq} ({l}) SELECT {l} FROM {tq} WHERE {kq} = {}",
                    p(1)
                )
            })
        } else {
            let l: String = others.iter().map(|c| format!(", {c}")).collect();
            Some(format!(
                "INSERT INTO {tq} ({kq}{l}) SELECT {}{l} FROM {tq} WHERE {kq} = {}",
                p(2),
                p(1)
            ))
        };
        out.push(TargetTable {
            table: key.clone(),
            key: pk_col.clone(),
            lo,
            hi,
            // Named columns, not `*`: a prepared `SELECT *` fails (0A000 "cached plan must not
            // change result type") once a column is added, which apps naming columns never see.
            read: format!(
                "SELECT {} FROM {tq} WHERE {kq} = {}",
                t.columns
                    .iter()
                    .map(|c| ident(pg, &c.name))
                    .collect::<Vec<_>>()
                    .join(", "),
                p(1)
            ),
            update,
            next_key: (!sequenced).then(|| Arc::new(AtomicI64::new(hi + 1))),
            insert,
        });
    }
    s.close().await;
    if out.is_empty() {
        return Err(Error::usage(
            "cannot derive a workload: no table with rows and a single-column integer primary key",
            "write the queries your application runs into a script and pass --workload script.sql",
        ));
    }
    Ok(Plan::Derived(out, mix))
}

/// One finished transaction.
#[derive(Debug, Clone)]
pub struct Sample {
    pub intended_us: u64,
    pub done_us: u64,
    /// The error code when it failed.
    pub error: Option<Arc<str>>,
}

#[derive(Debug, Default)]
pub struct ClientResult {
    pub samples: Vec<Sample>,
    /// An example message per error code.
    pub messages: BTreeMap<String, String>,
    /// Transactions still due when the drain limit ran out.
    pub unsent: u64,
}

/// A small, fast generator (xorshift64*): each client its own, no shared state.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform in lo..=hi.
    pub fn range(&mut self, lo: i64, hi: i64) -> i64 {
        let span = (hi - lo) as u64 + 1;
        lo + (self.next_u64() % span) as i64
    }
}

/// The running workload: clients started, stopped by [`Running::stop`].
pub struct Running {
    stop_at: Arc<AtomicU64>,
    origin: Instant,
    handles: Vec<tokio::task::JoinHandle<ClientResult>>,
}

/// Opens every client's session first (so connecting does not count as latency), then starts them.
pub async fn start(
    url: &DbUrl,
    plan: &Plan,
    spec: &WorkloadSpec,
    origin: Instant,
) -> Result<Running> {
    let mut sessions = Vec::new();
    for _ in 0..spec.clients {
        let mut s = Session::open(url).await?;
        if let Session::Pg(_) = s {
            let _ = s
                .batch("SET application_name = 'sluice-rehearse-client'")
                .await;
        }
        sessions.push(s);
    }
    let interval_us = spec.clients as f64 * 1e6 / spec.rate.max(0.001);
    let start_us = origin.elapsed().as_micros() as u64 + 20_000;
    let stop_at = Arc::new(AtomicU64::new(u64::MAX));
    let mut handles = Vec::new();
    for (i, s) in sessions.into_iter().enumerate() {
        let plan = plan.clone();
        let stop_at = stop_at.clone();
        let offset = interval_us * i as f64 / spec.clients as f64;
        handles.push(tokio::spawn(async move {
            client(
                s,
                plan,
                origin,
                start_us as f64 + offset,
                interval_us,
                stop_at,
                i as u64 + 1,
            )
            .await
        }));
    }
    Ok(Running {
        stop_at,
        origin,
        handles,
    })
}

impl Running {
    /// Stops scheduling new transactions; waits for the clients to drain.
    pub async fn stop(self) -> Vec<ClientResult> {
        self.stop_at
            .store(self.origin.elapsed().as_micros() as u64, Ordering::SeqCst);
        let mut out = Vec::new();
        for h in self.handles {
            match tokio::time::timeout(Duration::from_secs(60), h).await {
                Ok(Ok(r)) => out.push(r),
                _ => out.push(ClientResult::default()),
            }
        }
        out
    }
}

/// How long clients keep sending queries that were due before the stop.
const DRAIN: Duration = Duration::from_secs(10);

async fn client(
    mut s: Session,
    plan: Plan,
    origin: Instant,
    first_us: f64,
    interval_us: f64,
    stop_at: Arc<AtomicU64>,
    seed: u64,
) -> ClientResult {
    let mut rng =
        Rng::new(seed.wrapping_mul(0x1234_5678_9abc) ^ origin.elapsed().as_nanos() as u64);
    let mut res = ClientResult::default();
    // Prepared once per session on PostgreSQL; MariaDB's driver caches prepared statements.
    let mut prepared: BTreeMap<String, tokio_postgres::Statement> = BTreeMap::new();
    if let (Session::Pg(_), Plan::Derived(targets, _)) = (&s, &plan) {
        for t in targets {
            for q in [Some(&t.read), t.update.as_ref(), t.insert.as_ref()]
                .into_iter()
                .flatten()
            {
                if let Ok(st) = s.pg().prepare(q).await {
                    prepared.insert(q.clone(), st);
                }
            }
        }
    }
    let mut k: u64 = 0;
    loop {
        let intended = (first_us + k as f64 * interval_us) as u64;
        let stop = stop_at.load(Ordering::Relaxed);
        if intended >= stop {
            break;
        }
        let now = origin.elapsed().as_micros() as u64;
        if stop != u64::MAX && now > stop + DRAIN.as_micros() as u64 {
            res.unsent += ((stop - intended) as f64 / interval_us).ceil() as u64;
            break;
        }
        if now < intended {
            tokio::time::sleep_until((origin + Duration::from_micros(intended)).into()).await;
            // The stop may have come while sleeping.
            if intended >= stop_at.load(Ordering::Relaxed) {
                break;
            }
        }
        let outcome = match &plan {
            Plan::Derived(targets, mix) => {
                derived_once(&mut s, targets, mix, &prepared, &mut rng).await
            }
            Plan::Script(script) => script_once(&mut s, script, &mut rng).await,
            Plan::Top(top) => top.pick(&mut rng).run(&mut s, &mut rng).await,
        };
        let done = origin.elapsed().as_micros() as u64;
        let error = outcome.err().map(|e| {
            res.messages.entry(e.code.clone()).or_insert(e.message);
            Arc::<str>::from(e.code.as_str())
        });
        res.samples.push(Sample {
            intended_us: intended,
            done_us: done,
            error,
        });
        k += 1;
    }
    s.close().await;
    res
}

async fn derived_once(
    s: &mut Session,
    targets: &[TargetTable],
    mix: &Mix,
    prepared: &BTreeMap<String, tokio_postgres::Statement>,
    rng: &mut Rng,
) -> std::result::Result<(), QueryError> {
    let t = &targets[(rng.next_u64() % targets.len() as u64) as usize];
    let roll = (rng.next_u64() % (mix.read + mix.update + mix.insert) as u64) as u32;
    let id = rng.range(t.lo, t.hi);
    let (sql, fetch) = if roll < mix.read {
        (&t.read, true)
    } else if roll < mix.read + mix.update {
        (t.update.as_ref().unwrap_or(&t.read), false)
    } else {
        (t.insert.as_ref().unwrap_or(&t.read), false)
    };
    let new_key = t
        .next_key
        .as_ref()
        .filter(|_| Some(sql) == t.insert.as_ref())
        .map(|n| n.fetch_add(1, Ordering::Relaxed));
    match s {
        Session::Pg(_) => {
            let c = s.pg();
            let st = match prepared.get(sql) {
                Some(st) => st.clone(),
                None => c.prepare(sql).await.map_err(QueryError::pg)?,
            };
            let r = match (fetch, new_key) {
                (true, _) => c.query(&st, &[&id]).await.map(|_| ()),
                (false, Some(k)) => c.execute(&st, &[&id, &k]).await.map(|_| ()),
                (false, None) if st.params().is_empty() => c.execute(&st, &[]).await.map(|_| ()),
                (false, None) => c.execute(&st, &[&id]).await.map(|_| ()),
            };
            r.map_err(QueryError::pg)
        }
        Session::My(c) => {
            use mysql_async::prelude::Queryable;
            let r = match new_key {
                Some(k) => c.exec_drop(sql.as_str(), (id, k)).await,
                None if !sql.contains('?') => c.query_drop(sql.as_str()).await,
                None => c.exec_drop(sql.as_str(), (id,)).await,
            };
            r.map_err(QueryError::my)
        }
    }
}

async fn script_once(
    s: &mut Session,
    script: &Script,
    rng: &mut Rng,
) -> std::result::Result<(), QueryError> {
    let mut vars = BTreeMap::new();
    for step in &script.steps {
        match step {
            ScriptStep::Set { name, lo, hi } => {
                vars.insert(name.clone(), rng.range(*lo, *hi));
            }
            ScriptStep::Sql(sql) => s.batch(&substitute(sql, &vars)).await?,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use sluice_core::target::EngineKind;

    /// The workload's tables are the ones statements name, never words in comments, strings or
    /// column names that happen to match a table.
    #[test]
    fn named_tables_come_from_the_parsed_statements() {
        let mut schema = Schema::default();
        for k in [
            "public.users",
            "public.orders",
            "public.user",
            "audit.events",
            "public.events",
            "public.notes",
        ] {
            schema.tables.insert(k.into(), Default::default());
        }
        let text = "-- orders are untouched here\n\
            ALTER TABLE users ADD COLUMN note text DEFAULT 'see orders';\n\
            /* public.notes */ UPDATE users SET \"user\" = 1 WHERE id IN (SELECT id FROM audit.events);\n";
        let got: Vec<String> = named_tables(EngineKind::Postgres, &schema, text)
            .into_iter()
            .collect();
        assert_eq!(got, ["audit.events", "public.users"]);
        let got: Vec<String> = named_tables(
            EngineKind::Postgres,
            &schema,
            "CREATE INDEX i ON \"user\" (a)",
        )
        .into_iter()
        .collect();
        assert_eq!(got, ["public.user"]);
        let mut my = Schema::default();
        for k in ["users", "orders"] {
            my.tables.insert(k.into(), Default::default());
        }
        let got: Vec<String> = named_tables(
            EngineKind::MariaDb,
            &my,
            "# orders\nALTER TABLE `Users` MODIFY note TEXT COMMENT 'orders'",
        )
        .into_iter()
        .collect();
        assert_eq!(got, ["users"]);
    }
    use super::*;

    #[test]
    fn scripts_parse_and_substitute() {
        let s = Script::parse(
            "\\set id random(1, 100000)\n-- a comment\nSELECT * FROM t\n WHERE id = :id AND x::text = ':idx';\nUPDATE t SET n = n + 1 WHERE id = :id;\n",
        )
        .unwrap();
        assert_eq!(s.steps.len(), 3);
        assert_eq!(
            s.steps[0],
            ScriptStep::Set {
                name: "id".into(),
                lo: 1,
                hi: 100000
            }
        );
        let vars = BTreeMap::from([("id".to_string(), 42)]);
        let ScriptStep::Sql(q) = &s.steps[1] else {
            panic!()
        };
        assert_eq!(
            substitute(q, &vars),
            "SELECT * FROM t\n WHERE id = 42 AND x::text = ':idx'"
        );
        assert!(Script::parse("\\set id random(5, 1)\nSELECT 1;").is_err());
        assert!(Script::parse("\\set id 3\n").is_err());
    }

    #[test]
    fn mix_parses() {
        assert_eq!(
            Mix::parse("read=1,insert=2").unwrap(),
            Mix {
                read: 1,
                update: 0,
                insert: 2
            }
        );
        assert!(Mix::parse("read=0").is_err());
        assert!(Mix::parse("delete=1").is_err());
    }

    #[test]
    fn rng_stays_in_range() {
        let mut r = Rng::new(7);
        let mut seen = [false; 5];
        for _ in 0..1000 {
            let v = r.range(10, 14);
            assert!((10..=14).contains(&v));
            seen[(v - 10) as usize] = true;
        }
        assert!(seen.iter().all(|s| *s));
    }
}
