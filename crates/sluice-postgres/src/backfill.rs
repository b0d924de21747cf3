//! Batched backfill: `UPDATE t SET ... [WHERE ...]` by keyset over the primary key, one short
//! transaction per batch that also records the checkpoint, so a killed run resumes at the next key
//! and no row is updated twice or skipped. Rows inserted after the job starts are beyond its upper
//! key: the application (or a column default) covers them, so the job never chases a growing tail.

use crate::pacing::Pacer;
use crate::{db_err, quote, PgEngine};
use sluice_core::engine::{BackfillReport, BackfillSpec};
use sluice_core::error::{Error, Result};
use sluice_core::progress::Meter;
use std::time::{Duration, Instant};

const MIN_BATCH: i64 = 100;
const MAX_BATCH: i64 = 50_000;

struct Key {
    /// Quoted column names of the primary key, in order.
    cols: Vec<String>,
    /// Their types, for casting the checkpoint (stored as text) back.
    types: Vec<String>,
}

impl Key {
    fn list(&self, prefix: &str) -> String {
        self.cols
            .iter()
            .map(|c| format!("{prefix}{c}"))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// `a DESC, b DESC`: every column descending, for the highest key.
    fn desc(&self) -> String {
        self.cols
            .iter()
            .map(|c| format!("{c} DESC"))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// `(a, b) <op> ($n::text::ta, $n+1::text::tb)` for a key given as text parameters.
    fn compare(&self, op: &str, first_param: usize) -> String {
        let params: Vec<String> = self
            .types
            .iter()
            .enumerate()
            .map(|(i, t)| format!("(${}::text)::{t}", first_param + i))
            .collect();
        format!("({}) {op} ({})", self.list(""), params.join(", "))
    }
}

pub async fn run(
    engine: &mut PgEngine,
    spec: &BackfillSpec,
    say: &(dyn for<'s> Fn(&'s str) + Send + Sync),
) -> Result<BackfillReport> {
    let client = &engine.work;
    let table = client
        .query_opt(
            "SELECT n.nspname, c.relname, c.oid::bigint, greatest(c.reltuples, 0)::bigint
               FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
              WHERE c.oid = to_regclass($1) AND c.relkind IN ('r', 'p')",
            &[&spec.table],
        )
        .await
        .map_err(|e| db_err("finding the table to backfill", e))?
        .ok_or_else(|| {
            Error::usage(
                format!("no table `{}`", spec.table),
                "check the name (schema-qualify it if it is not on the search_path)",
            )
        })?;
    let (schema, name, oid, estimate): (String, String, i64, i64) =
        (table.get(0), table.get(1), table.get(2), table.get(3));
    let t = quote::qualified(&schema, &name);
    let key_rows = client
        .query(
            "SELECT a.attname::text, format_type(a.atttypid, a.atttypmod)
               FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
              WHERE i.indrelid = $1::bigint::oid AND i.indisprimary
              ORDER BY array_position(i.indkey, a.attnum)",
            &[&oid],
        )
        .await
        .map_err(|e| db_err("reading the primary key", e))?;
    if key_rows.is_empty() {
        return by_ctid(engine, spec, say, (&schema, &name)).await;
    }
    let key = Key {
        cols: key_rows
            .iter()
            .map(|r| quote::ident(&r.get::<_, String>(0)))
            .collect(),
        types: key_rows.iter().map(|r| r.get(1)).collect(),
    };
    let as_text = key
        .cols
        .iter()
        .map(|c| format!("{c}::text"))
        .collect::<Vec<_>>()
        .join(", ");
    let filter = spec
        .filter
        .as_deref()
        .map(|f| format!(" AND ({f})"))
        .unwrap_or_default();
    let id = sluice_core::migration::checksum(&format!(
        "{schema}.{name}\n{}\n{}",
        spec.set,
        spec.filter.as_deref().unwrap_or("")
    ));

    // The job: created once with the highest key present now; later runs continue it.
    let existing = client
        .query_opt("SELECT state, last_key, upper_key, rows_done, batches FROM sluice.backfills WHERE id = $1", &[&id])
        .await
        .map_err(|e| db_err("reading the backfill checkpoint", e))?;
    let (mut last, upper, mut rows_done, mut batches, resumed) = match existing {
        Some(r) if r.get::<_, String>(0) == "done" => {
            say(&format!(
                "backfill of {schema}.{name} already finished ({} rows); nothing to do",
                r.get::<_, i64>(3)
            ));
            return Ok(BackfillReport {
                rows: 0,
                batches: 0,
                seconds: 0.0,
                resumed: true,
                ..Default::default()
            });
        }
        Some(r) => {
            let last: Option<serde_json::Value> = r.get(1);
            let upper: Option<serde_json::Value> = r.get(2);
            let keys = |v: Option<serde_json::Value>| {
                v.and_then(|v| serde_json::from_value::<Vec<String>>(v).ok())
            };
            (
                keys(last),
                keys(upper),
                r.get::<_, i64>(3),
                r.get::<_, i64>(4),
                true,
            )
        }
        None => {
            let upper: Option<Vec<String>> = client
                .query_opt(
                    &format!(
                        "SELECT ARRAY[{as_text}] FROM {t} ORDER BY {} LIMIT 1",
                        key.desc()
                    ),
                    &[],
                )
                .await
                .map_err(|e| db_err("reading the highest key", e))?
                .map(|r| r.get(0));
            client
                .execute(
                    "INSERT INTO sluice.backfills (id, table_name, set_expr, where_expr, upper_key, state) VALUES ($1, $2, $3, $4, $5, 'running')",
                    &[&id, &format!("{schema}.{name}"), &spec.set, &spec.filter, &upper.as_ref().map(|u| serde_json::to_value(u).expect("keys serialise"))],
                )
                .await
                .map_err(|e| db_err("recording the backfill job", e))?;
            (None, upper, 0, 0, false)
        }
    };
    if resumed {
        say(&format!(
            "resuming the backfill of {schema}.{name} after {rows_done} rows"
        ));
    }
    let started = Instant::now();
    let (mut this_run_rows, mut this_run_batches) = (0i64, 0i64);
    let mut size = spec.batch_rows.unwrap_or(1000).clamp(1, MAX_BATCH);
    let mut meter = Meter::new(
        format!("backfill {schema}.{name}"),
        "rows",
        spec.progress.as_ref(),
        say,
    )
    .approximate();
    meter.update(rows_done.max(0) as u64, estimate.max(0) as u64, "");
    let session = match (&spec.pacing.latency_factor, &upper) {
        (Some(_), Some(_)) => Some(crate::open(&engine.config, &engine.tls, &engine.url).await?),
        _ => None,
    };
    let default_probe = (
        format!("SELECT 1 FROM {t} WHERE {}", key.compare("=", 1)),
        upper.clone().unwrap_or_default(),
    );
    let work_pid = Some(engine.work_pid);
    crate::pacing::replica_lag_readable(client, &spec.pacing).await?;
    let mut pacer = Pacer::start(&spec.pacing, session, default_probe, work_pid, say).await;
    let mut target = spec.target_batch;
    let pacing_text = pacer.describe();
    say(&format!(
        "backfill {schema}.{name}: pacing on {pacing_text}"
    ));
    if let Some(upper) = upper {
        let n = key.cols.len();
        // One prepared statement per batch, one round trip: it finds the batch's end key on the
        // index (`size` rows on, or the job's upper key for the last batch), updates the key
        // range, records the checkpoint in the same transaction and returns the end key. Two
        // shapes: the first batch has no lower bound.
        let first = client
            .prepare(&batch_sql(&key, &t, spec, &filter, false))
            .await
            .map_err(|e| db_err(&format!("preparing the backfill of {schema}.{name}"), e))?;
        let next = client
            .prepare(&batch_sql(&key, &t, spec, &filter, true))
            .await
            .map_err(|e| db_err(&format!("preparing the backfill of {schema}.{name}"), e))?;
        loop {
            pacer.before_batch(client, &spec.pacing, say).await?;
            let offset = size - 1;
            let mut params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = Vec::new();
            if let Some(l) = &last {
                params.extend(
                    l.iter()
                        .map(|v| v as &(dyn tokio_postgres::types::ToSql + Sync)),
                );
            }
            params.extend(
                upper
                    .iter()
                    .map(|v| v as &(dyn tokio_postgres::types::ToSql + Sync)),
            );
            params.push(&offset);
            params.push(&id);
            debug_assert_eq!(params.len(), n * (1 + usize::from(last.is_some())) + 2);
            let stmt = if last.is_some() { &next } else { &first };
            let t0 = Instant::now();
            let (updated, end, last_batch, recorded): (i64, Vec<String>, bool, i64) =
                retry_locks(&format!("backfilling {schema}.{name}"), || async {
                    let row = client.query_one(stmt, &params).await?;
                    Ok((row.get(0), row.get(1), row.get(2), row.get(3)))
                })
                .await?;
            if recorded != 1 {
                return Err(Error::Database {
                    context: format!("backfilling {schema}.{name}"),
                    message: "the job's checkpoint row in sluice.backfills is gone (deleted while the backfill ran)".into(),
                    help: "run the same command again: the backfill starts over as a new job (rows it updates twice get the same expression)".into(),
                });
            }
            rows_done += updated;
            batches += 1;
            this_run_rows += updated;
            this_run_batches += 1;
            if last_batch {
                break;
            }
            last = Some(end);
            // Aim each batch at the target duration, changing the size at most twofold at a time.
            if spec.batch_rows.is_none() {
                let took = t0.elapsed().as_secs_f64().max(0.001);
                let ideal = (size as f64 * target.as_secs_f64() / took) as i64;
                size = ideal.clamp(size / 2, size * 2).clamp(MIN_BATCH, MAX_BATCH);
            }
            let (paced, next_target) =
                pacer.after_batch(spec.target_batch, &format!("{schema}.{name}"), say);
            target = next_target;
            let pause = spec.pause + paced;
            // Without statistics (a table never analyzed) there is no total to show.
            meter.update(
                rows_done.max(0) as u64,
                estimate.max(0) as u64,
                &format!(", batch {size} rows"),
            );
            pacer.pause(pause).await;
        }
    }
    mark_done(client, &id).await?;
    let seconds = started.elapsed().as_secs_f64();
    say(&format!(
        "backfill of {schema}.{name} done: {this_run_rows} rows in {this_run_batches} batches, {seconds:.1} s ({:.0} rows/s){}",
        this_run_rows as f64 / seconds.max(0.001),
        if resumed { format!("; {rows_done} rows in all, {batches} batches") } else { String::new() }
    ));
    if let Some(line) = pacer.summary(&pacing_text) {
        say(&line);
    }
    Ok(pacer.report(
        pacing_text,
        this_run_rows,
        this_run_batches,
        seconds,
        resumed,
    ))
}

/// The statement one batch is: parameters are the last key done (with `after`), the job's upper
/// key, the OFFSET of the batch's end key and the job's id, keys as text. It returns the rows
/// updated, the batch's end key (as text) and whether that is the job's upper key (the last
/// batch), and how many checkpoint rows it changed (1). The end key is found by an index-only scan `size` rows on, the range UPDATE reads the
/// same index range, and the checkpoint row changes in the same transaction: a crash loses both
/// or neither.
///
/// The batch commits asynchronously (`synchronous_commit` off for its transaction only): it does
/// not wait for its WAL to reach the disk. A server crash can then lose the last batches' commits
/// (at most about three `wal_writer_delay`s of them), but WAL is replayed in order, so what is
/// lost is a suffix of commits, each taking its checkpoint with its rows: the checkpoint that
/// survives never points past a row that was not updated, and the rerun does the lost batches
/// again. Every later step (the job's `done` mark, VALIDATE, SET NOT NULL, the migration's record)
/// commits synchronously, which flushes the WAL of every batch before it.
fn batch_sql(key: &Key, t: &str, spec: &BackfillSpec, filter: &str, after: bool) -> String {
    let n = key.cols.len();
    let cols = key.list("");
    let (lower, upper_at) = if after {
        (format!("{} AND ", key.compare(">", 1)), n + 1)
    } else {
        (String::new(), 1)
    };
    let offset_at = upper_at + n;
    let id_at = offset_at + 1;
    let upper_cols = key
        .types
        .iter()
        .enumerate()
        .map(|(i, ty)| format!("(${}::text)::{ty}", upper_at + i))
        .collect::<Vec<_>>()
        .join(", ");
    let as_text = key
        .cols
        .iter()
        .map(|c| format!("{c}::text"))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "WITH bound AS (
           SELECT * FROM (
             (SELECT {cols}, false AS \"sluice last batch\" FROM {t}
               WHERE {lower}{within} ORDER BY {cols} OFFSET ${offset_at}::bigint LIMIT 1)
             UNION ALL SELECT {upper_cols}, true) b
           ORDER BY \"sluice last batch\" LIMIT 1),
         upd AS (UPDATE {t} SET {set} WHERE {lower}({cols}) <= (SELECT {cols} FROM bound){filter} RETURNING 1),
         done AS (SELECT count(*)::bigint AS n FROM upd),
         checkpoint AS (
           UPDATE sluice.backfills SET last_key = to_jsonb((SELECT ARRAY[{as_text}] FROM bound)),
                  rows_done = rows_done + (SELECT n FROM done), batches = batches + 1, updated_at = now()
            WHERE id = ${id_at}::text RETURNING 1)
         SELECT (SELECT n FROM done), (SELECT ARRAY[{as_text}] FROM bound),
                (SELECT \"sluice last batch\" FROM bound), (SELECT count(*) FROM checkpoint),
                set_config('synchronous_commit', 'off', true)",
        within = key.compare("<=", upper_at),
        set = spec.set,
    )
}

/// Runs one single-statement batch (its own transaction), again after a growing pause when it
/// meets an application's row lock (lock timeout, deadlock, serialization failure), up to 50
/// times; any other failure keeps the checkpoint of the batches before it.
async fn retry_locks<T, F, Fut>(what: &str, mut body: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = std::result::Result<T, tokio_postgres::Error>>,
{
    let mut attempt = 0u32;
    loop {
        match body().await {
            Ok(v) => return Ok(v),
            Err(e) => {
                let lock = e
                    .as_db_error()
                    .is_some_and(|d| matches!(d.code().code(), "55P03" | "40P01" | "40001"));
                if lock && attempt < 50 {
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(100 * u64::from(attempt.min(20))))
                        .await;
                    continue;
                }
                return Err(db_err(
                    &format!(
                        "{what} (the checkpoint is kept: run the same command again to resume)"
                    ),
                    e,
                ));
            }
        }
    }
}

/// Blocks per batch to start with (about 1,000 narrow rows), and the bounds of its adaptation.
const FIRST_SPAN: i64 = 16;
const MAX_SPAN: i64 = 8_192;
/// Passes over the table before giving up on rows that keep moving behind the walk.
const MAX_PASSES: i64 = 20;

/// A table without a primary key is walked by physical position: block ranges of `ctid`, read by
/// a TID range scan (PostgreSQL 14+). An UPDATE moves a row to wherever there is room, maybe ahead
/// of the walk (updated again) or behind it (missed), so this needs an idempotent update with a
/// filter that says which rows still need it; the walk repeats until a pass finds none.
async fn by_ctid(
    engine: &mut PgEngine,
    spec: &BackfillSpec,
    say: &(dyn for<'s> Fn(&'s str) + Send + Sync),
    (schema, name): (&str, &str),
) -> Result<BackfillReport> {
    let Some(filter) = spec.filter.as_deref() else {
        return Err(Error::usage(
            format!("table {schema}.{name} has no primary key"),
            format!("without a key sluice walks the table by physical position (ctid), where an updated row can move ahead of the walk or behind it; give a --where that excludes rows already updated, so the update is idempotent (e.g. --where \"{} IS NULL\" when setting a new column), or add a primary key", spec.set.split('=').next().unwrap_or("c").trim()),
        ));
    };
    if !engine.target.at_least(14, 0) {
        return Err(Error::usage(
            format!("table {schema}.{name} has no primary key, and PostgreSQL {} has no TID range scans (14+), so every batch would read the whole table", engine.target),
            "add a primary key (a unique index built CONCURRENTLY, then ADD PRIMARY KEY USING INDEX) and run again",
        ));
    }
    let t = quote::qualified(schema, name);
    let client = &engine.work;
    let blocks_sql = format!(
        "SELECT (pg_relation_size({}::regclass) / current_setting('block_size')::bigint)::bigint",
        quote::literal(&t)
    );
    let id =
        sluice_core::migration::checksum(&format!("{schema}.{name}\n{}\n{filter}\nctid", spec.set));
    let blocks = |v: Option<serde_json::Value>| -> Vec<i64> {
        v.and_then(|v| serde_json::from_value::<Vec<String>>(v).ok())
            .map(|v| v.iter().filter_map(|x| x.parse().ok()).collect())
            .unwrap_or_default()
    };
    let existing = client
        .query_opt(
            "SELECT state, last_key, upper_key, rows_done, batches FROM sluice.backfills WHERE id = $1",
            &[&id],
        )
        .await
        .map_err(|e| db_err("reading the backfill checkpoint", e))?;
    // The checkpoint: [next block, pass, rows updated in this pass]; the upper key: the pass's end.
    let (mut next, mut pass, mut pass_rows, mut end, mut rows_done, resumed) = match existing {
        Some(r) if r.get::<_, String>(0) == "done" => {
            say(&format!(
                "backfill of {schema}.{name} already finished ({} rows); nothing to do",
                r.get::<_, i64>(3)
            ));
            return Ok(BackfillReport {
                resumed: true,
                ..Default::default()
            });
        }
        Some(r) => {
            let last = blocks(r.get(1));
            let upper = blocks(r.get(2));
            (
                last.first().copied().unwrap_or(0),
                last.get(1).copied().unwrap_or(1),
                last.get(2).copied().unwrap_or(0),
                upper.first().copied().unwrap_or(0),
                r.get::<_, i64>(3),
                true,
            )
        }
        None => {
            let end: i64 = client
                .query_one(&blocks_sql, &[])
                .await
                .map_err(|e| db_err("reading the table size", e))?
                .get(0);
            client
                .execute(
                    "INSERT INTO sluice.backfills (id, table_name, set_expr, where_expr, upper_key, last_key, state) VALUES ($1, $2, $3, $4, $5, $6, 'running')",
                    &[&id, &format!("{schema}.{name}"), &spec.set, &spec.filter,
                      &serde_json::json!([end.to_string()]), &serde_json::json!(["0", "1", "0"])],
                )
                .await
                .map_err(|e| db_err("recording the backfill job", e))?;
            (0, 1, 0, end, 0, false)
        }
    };
    if resumed {
        say(&format!(
            "resuming the backfill of {schema}.{name} after {rows_done} rows (pass {pass}, block {next})"
        ));
    }
    let session = match spec.pacing.latency_factor {
        Some(_) => Some(crate::open(&engine.config, &engine.tls, &engine.url).await?),
        None => None,
    };
    let default_probe = (
        format!("SELECT 1 FROM {t} WHERE ctid = '(0,1)'::tid"),
        vec![],
    );
    let work_pid = Some(engine.work_pid);
    crate::pacing::replica_lag_readable(client, &spec.pacing).await?;
    let mut pacer = Pacer::start(&spec.pacing, session, default_probe, work_pid, say).await;
    let mut target = spec.target_batch;
    let pacing_text = pacer.describe();
    let client = &engine.work;
    say(&format!(
        "backfill {schema}.{name} (no primary key: by block ranges of ctid, repeated until a pass finds no row to update): pacing on {pacing_text}"
    ));
    let started = Instant::now();
    let (mut this_run_rows, mut this_run_batches) = (0i64, 0i64);
    let mut span = FIRST_SPAN;
    // The walk's position is what tells how far it is: blocks of this pass.
    let mut meter = Meter::new(
        format!("backfill {schema}.{name}"),
        "blocks",
        spec.progress.as_ref(),
        say,
    );
    let sql = format!(
        "WITH upd AS (UPDATE {t} SET {} WHERE ctid >= format('(%s,0)', $1::bigint)::tid AND ctid < format('(%s,0)', $2::bigint)::tid AND ({filter}) RETURNING 1)
         SELECT count(*)::bigint FROM upd",
        spec.set
    );
    loop {
        if next >= end {
            if pass_rows == 0 {
                break;
            }
            if pass >= MAX_PASSES {
                return Err(Error::Database {
                    context: format!("backfilling {schema}.{name}"),
                    message: format!("after {pass} passes rows still match the filter: concurrent updates keep moving rows the walk has passed"),
                    help: "run the same command again when writes are quieter (the checkpoint is kept), or add a primary key".into(),
                });
            }
            // Another pass over the table as it is now, for rows that moved behind the walk.
            pass += 1;
            pass_rows = 0;
            next = 0;
            end = client
                .query_one(&blocks_sql, &[])
                .await
                .map_err(|e| db_err("reading the table size", e))?
                .get(0);
            continue;
        }
        pacer.before_batch(client, &spec.pacing, say).await?;
        let hi = (next + span).min(end);
        let t0 = Instant::now();
        let (sql, id) = (&sql, &id);
        let what = format!("backfilling {schema}.{name}");
        let updated: i64 = batch_tx(client, &what, || async move {
            let updated: i64 = client.query_one(sql.as_str(), &[&next, &hi]).await?.get(0);
            let checkpoint = serde_json::json!([hi.to_string(), pass.to_string(), (pass_rows + updated).to_string()]);
            client
                .execute(
                    "UPDATE sluice.backfills SET last_key = $1, rows_done = rows_done + $2, batches = batches + 1, updated_at = now() WHERE id = $3",
                    &[&checkpoint, &updated, &id],
                )
                .await?;
            Ok::<_, tokio_postgres::Error>(updated)
        })
        .await?;
        next = hi;
        pass_rows += updated;
        rows_done += updated;
        this_run_rows += updated;
        this_run_batches += 1;
        if spec.batch_rows.is_none() {
            let took = t0.elapsed().as_secs_f64().max(0.001);
            let ideal = (span as f64 * target.as_secs_f64() / took) as i64;
            span = ideal.clamp(span / 2, span * 2).clamp(1, MAX_SPAN);
        }
        let (paced, next_target) =
            pacer.after_batch(spec.target_batch, &format!("{schema}.{name}"), say);
        target = next_target;
        let pause = spec.pause + paced;
        meter.phase(&format!("pass {pass}"), "blocks");
        meter.update(
            next.max(0) as u64,
            end.max(0) as u64,
            &format!(", {rows_done} rows updated so far"),
        );
        pacer.pause(pause).await;
    }
    mark_done(client, &id).await?;
    let seconds = started.elapsed().as_secs_f64();
    say(&format!(
        "backfill of {schema}.{name} done: {this_run_rows} rows in {this_run_batches} batches over {pass} pass(es), {seconds:.1} s ({:.0} rows/s)",
        this_run_rows as f64 / seconds.max(0.001)
    ));
    if let Some(line) = pacer.summary(&pacing_text) {
        say(&line);
    }
    Ok(pacer.report(
        pacing_text,
        this_run_rows,
        this_run_batches,
        seconds,
        resumed,
    ))
}

/// Runs one batch as a transaction of its own, checkpoint included. A batch that meets an
/// application's row lock (lock timeout, deadlock, serialization failure) is rolled back and run
/// again after a growing pause, up to 50 times; any other failure keeps the checkpoint of the
/// batches before it.
async fn batch_tx<T, F, Fut>(client: &tokio_postgres::Client, what: &str, mut body: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = std::result::Result<T, tokio_postgres::Error>>,
{
    let mut attempt = 0u32;
    loop {
        client
            .batch_execute("BEGIN")
            .await
            .map_err(|e| db_err("BEGIN", e))?;
        match body().await {
            Ok(v) => {
                client
                    .batch_execute("COMMIT")
                    .await
                    .map_err(|e| db_err("COMMIT", e))?;
                return Ok(v);
            }
            Err(e) => {
                let _ = client.batch_execute("ROLLBACK").await;
                let lock = e
                    .as_db_error()
                    .is_some_and(|d| matches!(d.code().code(), "55P03" | "40P01" | "40001"));
                if lock && attempt < 50 {
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(100 * u64::from(attempt.min(20))))
                        .await;
                    continue;
                }
                return Err(db_err(
                    &format!(
                        "{what} (the checkpoint is kept: run the same command again to resume)"
                    ),
                    e,
                ));
            }
        }
    }
}

/// Records a job as finished: a later run with the same job says so and does nothing.
async fn mark_done(client: &tokio_postgres::Client, id: &str) -> Result<()> {
    client
        .execute(
            "UPDATE sluice.backfills SET state = 'done', finished_at = now(), updated_at = now() WHERE id = $1",
            &[&id],
        )
        .await
        .map(|_| ())
        .map_err(|e| db_err("recording the end of the backfill", e))
}
