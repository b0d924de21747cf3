//! `sluice rehearse`: would users notice this migration?
//!
//! Clone the database into a scratch database ([`clone`]), run a paced workload against the clone
//! ([`workload`]) for a baseline period, apply the pending migrations with the ordinary runner
//! (timed step by step by [`timed::TimedEngine`]), keep the workload running for a cool-down, then
//! compare latency, stalls and errors during the migration with the baseline ([`metrics`]) and
//! report ([`report`]). `--compare as-written` does it twice, on two fresh clones.

pub mod clone;
pub mod db;
pub mod explain;
pub mod metrics;
pub mod report;
pub mod synth;
pub mod timed;
pub mod top;
pub mod workload;

use clone::{CloneReport, DataSpec};
use db::Scratch;
use metrics::{Bucket, PhaseStats, Thresholds, Verdict, Window};
use serde::Serialize;
use sluice_core::dburl::DbUrl;
use sluice_core::error::{Error, Result};
use sluice_core::migration::Migration;
use sluice_core::runner::{self, RunContext, UpOptions};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use timed::{Marker, Span, TimedEngine, Timeline};
use workload::WorkloadSpec;

pub type Say = Arc<dyn Fn(&str) + Send + Sync>;

pub struct Options {
    pub source: DbUrl,
    /// Where scratch databases are created (default: the source's server).
    pub scratch_server: Option<DbUrl>,
    pub data: DataSpec,
    /// Keep the scratch databases afterwards.
    pub keep: bool,
    pub workload: WorkloadSpec,
    pub baseline: Duration,
    pub cooldown: Duration,
    pub thresholds: Thresholds,
    /// Rehearse twice: as written, then the way sluice runs it.
    pub compare: bool,
    /// Rehearse the as-written execution only.
    pub as_written: bool,
    pub files: Vec<Migration>,
    pub to: Option<i64>,
    pub lock_timeout: Duration,
    pub lock_retry_for: Duration,
    /// As `up` takes them: how ACCESS EXCLUSIVE steps are bounded, backfills paced and
    /// MariaDB/MySQL ALTERs run online.
    pub exclusive_timeout: Duration,
    pub pacing: sluice_core::engine::Pacing,
    pub online: sluice_core::engine::OnlineOptions,
    pub actor: String,
    pub say: Say,
    /// Explain the workload's statements before and after the migration (PostgreSQL).
    pub explain: bool,
    /// With `explain`: also measure each statement's time (`EXPLAIN (ANALYZE)`, rolled back).
    pub analyze: bool,
    /// An after-plan whose estimated cost is at least this many times the before-plan's is a
    /// regression.
    pub plan_regression_ratio: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct MigrationRun {
    pub window: Window,
    pub applied: Vec<i64>,
    pub error: Option<String>,
    pub steps: Vec<Span>,
    pub log: Vec<Marker>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    /// `sluice` (safe execution) or `as written`.
    pub label: String,
    pub as_written: bool,
    pub clone: CloneReport,
    pub workload: String,
    /// `--workload pg_stat_statements`: the statements replayed, and those skipped with why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replayed_statements: Option<Vec<top::Replayed>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped_statements: Option<Vec<top::Skipped>>,
    pub clients: usize,
    pub target_rate: f64,
    /// Transactions per second the clients completed during the baseline.
    pub achieved_rate: f64,
    /// CPU time (user + system) this process spent while the workload ran: the generator's cost.
    pub client_cpu_seconds: f64,
    /// That CPU time as a share of one core over the workload's wall time.
    pub client_cpu_percent: f64,
    pub workload_seconds: f64,
    pub migration: MigrationRun,
    pub baseline: PhaseStats,
    pub during: PhaseStats,
    pub cooldown: PhaseStats,
    /// Transactions still due when the clients were stopped and could not catch up.
    pub unsent: u64,
    pub error_messages: BTreeMap<String, String>,
    pub verdict: Verdict,
    /// `--explain`: the statements whose plan the migration changed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub query_plans: Option<explain::PlanSection>,
    pub buckets: Vec<Bucket>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub source: String,
    pub engine: String,
    pub runs: Vec<RunReport>,
    /// The verdict that sets the exit code: the run the way sluice executes (or as written when
    /// only that was rehearsed).
    pub pass: bool,
    /// `--explain`: plan regressions of that same run.
    pub plan_regressions: usize,
    pub scratch_kept: Vec<String>,
}

/// CPU seconds (user + system) of this process so far.
pub fn process_cpu_seconds() -> f64 {
    // SAFETY: getrusage only writes the struct it is given.
    unsafe {
        let mut u: libc::rusage = std::mem::zeroed();
        if libc::getrusage(libc::RUSAGE_SELF, &mut u) != 0 {
            return 0.0;
        }
        let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
        t(u.ru_utime) + t(u.ru_stime)
    }
}

/// Ctrl-C (SIGINT) or, on Unix, SIGTERM: what stopped the run, as the error says it.
pub async fn stop_signal() -> &'static str {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => tokio::select! {
                _ = tokio::signal::ctrl_c() => "interrupted (Ctrl-C)",
                _ = term.recv() => "terminated (SIGTERM)",
            },
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
                "interrupted (Ctrl-C)"
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
        "interrupted (Ctrl-C)"
    }
}

/// Runs the rehearsal; Ctrl-C or SIGTERM stops it and still drops the scratch databases (unless
/// `keep`).
pub async fn rehearse(opts: &Options) -> Result<Report> {
    let scratches: Arc<Mutex<Vec<Scratch>>> = Arc::default();
    let work = rehearse_inner(opts, scratches.clone());
    let outcome = tokio::select! {
        r = work => r,
        why = stop_signal() => Err(Error::usage(
            why,
            if opts.keep { "the scratch databases were kept (--keep)" } else { "the scratch databases were dropped" },
        )),
    };
    let list: Vec<Scratch> = scratches.lock().unwrap().clone();
    if !opts.keep {
        for s in &list {
            if let Err(e) = s.drop_now().await {
                (opts.say)(&format!("could not drop scratch database {}: {e}", s.name));
            }
        }
    }
    let mut report = outcome?;
    if opts.keep {
        report.scratch_kept = list.iter().map(|s| s.url.redacted()).collect();
    }
    Ok(report)
}

async fn rehearse_inner(opts: &Options, scratches: Arc<Mutex<Vec<Scratch>>>) -> Result<Report> {
    let modes: Vec<bool> = if opts.compare {
        vec![true, false]
    } else {
        vec![opts.as_written]
    };
    // Read before cloning: a missing extension fails fast, and the clone's own queries on the
    // source are not counted among the application's.
    let top_rows = if opts.workload.top_statements {
        Some(workload_top_rows(opts).await?)
    } else {
        None
    };
    let mut runs = Vec::new();
    for as_written in modes {
        runs.push(run_once(opts, as_written, &scratches, top_rows.as_deref()).await?);
    }
    let pass = runs.last().map(|r| r.verdict.pass).unwrap_or(false);
    let plan_regressions = runs
        .last()
        .and_then(|r| r.query_plans.as_ref())
        .map_or(0, |p| p.regressions);
    Ok(Report {
        source: opts.source.redacted(),
        engine: opts.source.kind().to_string(),
        runs,
        pass,
        plan_regressions,
        scratch_kept: vec![],
    })
}

async fn workload_top_rows(opts: &Options) -> Result<Vec<top::TopRow>> {
    let rows = top::read_top(&opts.source).await?;
    (opts.say)(&format!(
        "pg_stat_statements: {} top statement(s) of the source",
        rows.len()
    ));
    Ok(rows)
}

async fn run_once(
    opts: &Options,
    as_written: bool,
    scratches: &Arc<Mutex<Vec<Scratch>>>,
    top_rows: Option<&[top::TopRow]>,
) -> Result<RunReport> {
    let say = opts.say.clone();
    let label = if as_written { "as written" } else { "sluice" };
    let server = opts
        .scratch_server
        .clone()
        .unwrap_or_else(|| opts.source.clone());
    if server.kind().is_mysql_family() != opts.source.kind().is_mysql_family() {
        return Err(Error::usage(
            "--scratch-url names another kind of server than --database-url",
            "the clone must run on the same engine as the source",
        ));
    }
    let scratch = Scratch::create(&server, if as_written { "aw" } else { "s" }).await?;
    scratches.lock().unwrap().push(scratch.clone());
    say(&format!(
        "[{label}] cloning {} into {}",
        opts.source.redacted(),
        scratch.name
    ));
    let mut src_engine = db::engine(&opts.source).await?;
    let clone = clone::build(
        &opts.source,
        src_engine.as_mut(),
        &scratch.url,
        &opts.data,
        &*say,
    )
    .await?;
    let rows: u64 = clone.tables.iter().map(|t| t.rows).sum();
    say(&format!(
        "[{label}] clone ready: {} table(s), {rows} row(s), {:.1} s",
        clone.tables.len(),
        clone.seconds
    ));

    // The pending migrations: those the source has not applied.
    let applied: Vec<i64> = src_engine
        .history()
        .await?
        .iter()
        .filter(|h| h.state == sluice_core::history::RecordState::Applied)
        .map(|h| h.version)
        .collect();
    drop(src_engine);
    let pending_text: String = opts
        .files
        .iter()
        .filter(|m| !applied.contains(&m.version) && opts.to.is_none_or(|t| m.version <= t))
        .map(|m| m.text.as_str())
        .collect::<Vec<_>>()
        .join("\n");
    let plan = match (&opts.workload.script, top_rows) {
        (_, Some(rows)) => {
            let mut e = db::engine(&scratch.url).await?;
            let schema = e.introspect().await?;
            let t = top::plan(&scratch.url, &schema, rows).await?;
            for k in &t.skipped {
                say(&format!(
                    "[{label}] skipped ({}): {}",
                    k.reason,
                    top::one_line(&k.query)
                ));
            }
            workload::Plan::Top(Arc::new(t))
        }
        (Some(s), None) => workload::Plan::Script(s.clone()),
        (None, None) => {
            let mut e = db::engine(&scratch.url).await?;
            let schema = e.introspect().await?;
            workload::derive(&scratch.url, &schema, &pending_text, opts.workload.mix).await?
        }
    };
    // Before the workload starts: the plans on the freshly cloned (and analyzed) data.
    let probes = if opts.explain {
        explain::probes(&plan, scratch.url.kind())
    } else {
        vec![]
    };
    let plans_before = if opts.explain {
        let b = explain::record(&scratch.url, &probes, opts.analyze).await?;
        say(&format!(
            "[{label}] query plans: {} statement(s) explained before the migration",
            b.iter().filter(|r| r.is_ok()).count()
        ));
        Some(b)
    } else {
        None
    };
    let engine = db::engine(&scratch.url).await?;

    let origin = Instant::now();
    let timeline = Arc::new(Mutex::new(Timeline::default()));
    let cpu0 = process_cpu_seconds();
    let running = workload::start(&scratch.url, &plan, &opts.workload, origin).await?;
    let wl_start = origin.elapsed().as_secs_f64();
    say(&format!(
        "[{label}] workload: {} clients, {} tx/s, {}; baseline {:.1} s",
        opts.workload.clients,
        opts.workload.rate,
        plan.describe(),
        opts.baseline.as_secs_f64()
    ));
    tokio::time::sleep(opts.baseline).await;

    let mig_start = origin.elapsed().as_secs_f64();
    let mut timed = TimedEngine::new(engine, origin, timeline.clone());
    let tl = timeline.clone();
    let say_run = say.clone();
    let prefix = label.to_string();
    let ctx = RunContext {
        actor: opts.actor.clone(),
        app_version: Some("sluice-rehearse".into()),
        lock_wait: Duration::from_secs(10),
        lock_timeout: opts.lock_timeout,
        lock_retry_for: opts.lock_retry_for,
        say: Box::new(move |line: &str| {
            tl.lock().unwrap().markers.push(Marker {
                at_s: origin.elapsed().as_secs_f64(),
                text: line.to_string(),
            });
            say_run(&format!("[{prefix}] {line}"));
        }),
        online: opts.online.clone(),
        pacing: opts.pacing.clone(),
        exclusive_timeout: opts.exclusive_timeout,
        // Progress goes to the timeline as log lines, like every other line of the run.
        progress: None,
        // The clone has no subscribers.
        subscriber_urls: vec![],
    };
    let up = runner::up(
        &mut timed,
        &opts.files,
        &UpOptions {
            to: opts.to,
            dry_run: false,
            allow_out_of_order: false,
            as_written,
            as_written_below_rows: ctx.online.as_written_below_rows,
            // Both phases of a breaking migration: the rehearsal judges all of it.
            complete: true,
            subscriber_urls: vec![],
        },
        &ctx,
    )
    .await;
    let mig_end = origin.elapsed().as_secs_f64();
    drop(timed);
    let (applied_now, mig_error) = match up {
        Ok(r) => (r.applied, None),
        Err(e) => (vec![], Some(e.to_string())),
    };
    if let Some(e) = &mig_error {
        say(&format!("[{label}] the migration failed on the clone: {e}"));
    }
    tokio::time::sleep(opts.cooldown).await;
    let results = running.stop().await;
    let wl_end = origin.elapsed().as_secs_f64();
    let cpu = process_cpu_seconds() - cpu0;

    let mut samples = Vec::new();
    let mut messages = BTreeMap::new();
    let mut unsent = 0;
    for r in results {
        samples.extend(r.samples);
        messages.extend(r.messages);
        unsent += r.unsent;
    }
    let first_due = wl_start + 0.02;
    let baseline = metrics::phase(
        &samples,
        Window {
            start_s: first_due,
            end_s: mig_start,
        },
    );
    let during = metrics::phase(
        &samples,
        Window {
            start_s: mig_start,
            end_s: mig_end.max(mig_start + 1e-3),
        },
    );
    let cooldown = metrics::phase(
        &samples,
        Window {
            start_s: mig_end,
            end_s: mig_end + opts.cooldown.as_secs_f64(),
        },
    );
    let verdict = metrics::verdict(
        &opts.thresholds,
        &baseline,
        &during,
        &cooldown,
        mig_error.as_deref(),
    );
    let query_plans = match plans_before {
        Some(before) => {
            // Fresh statistics for what the migration changed and what the statements read, so
            // the after-plans judge the new schema on its real data.
            let schema = db::engine(&scratch.url).await?.introspect().await?;
            let mut text = pending_text.clone();
            for p in &probes {
                text.push_str(";\n");
                text.push_str(&p.sql);
            }
            let tables = workload::named_tables(scratch.url.kind(), &schema, &text);
            let analyzed = explain::analyze_tables(&scratch.url, &tables).await?;
            let after = explain::record(&scratch.url, &probes, opts.analyze).await?;
            let section = explain::compare(
                &probes,
                &before,
                &after,
                opts.plan_regression_ratio,
                opts.analyze,
                analyzed,
            );
            let section = explain::PlanSection {
                cost_unit: if db::is_pg(&scratch.url) {
                    explain::COST_PG
                } else {
                    explain::COST_MARIADB
                }
                .into(),
                ..section
            };
            say(&format!(
                "[{label}] query plans: {} statement(s) explained, {} changed, {} regression(s)",
                section.explained,
                section.changed.len(),
                section.regressions
            ));
            Some(section)
        }
        None => None,
    };
    let tl = std::mem::take(&mut *timeline.lock().unwrap());
    Ok(RunReport {
        label: label.into(),
        as_written,
        clone,
        workload: plan.describe(),
        replayed_statements: match &plan {
            workload::Plan::Top(t) => Some(t.replayed()),
            _ => None,
        },
        skipped_statements: match &plan {
            workload::Plan::Top(t) => Some(t.skipped.clone()),
            _ => None,
        },
        clients: opts.workload.clients,
        target_rate: opts.workload.rate,
        achieved_rate: baseline.throughput,
        client_cpu_seconds: cpu,
        client_cpu_percent: 100.0 * cpu / (wl_end - wl_start).max(1e-9),
        workload_seconds: wl_end - wl_start,
        migration: MigrationRun {
            window: Window {
                start_s: mig_start,
                end_s: mig_end,
            },
            applied: applied_now,
            error: mig_error,
            steps: tl.spans,
            log: tl.markers,
        },
        buckets: metrics::buckets(&samples, wl_end),
        baseline,
        during,
        cooldown,
        unsent,
        error_messages: messages,
        verdict,
        query_plans,
    })
}

/// `5s`, `500ms`, `2m`, or a bare number of seconds.
pub fn parse_duration(s: &str) -> std::result::Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| c.is_ascii_alphabetic()) {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, "s"),
    };
    let v: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("`{s}`: expected a duration such as 5s, 500ms or 2m"))?;
    let secs = match unit {
        "ms" => v / 1000.0,
        "s" => v,
        "m" | "min" => v * 60.0,
        other => return Err(format!("`{s}`: unknown unit `{other}` (ms, s, m)")),
    };
    if !(0.0..=86_400.0).contains(&secs) {
        return Err(format!("`{s}`: out of range"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// `10%` or `0.1` → a fraction.
pub fn parse_fraction(s: &str) -> std::result::Result<f64, String> {
    let t = s.trim();
    let v = match t.strip_suffix('%') {
        Some(p) => p.trim().parse::<f64>().map(|v| v / 100.0),
        None => t.parse::<f64>(),
    }
    .map_err(|_| format!("`{s}`: expected a percentage such as 10% (or a fraction such as 0.1)"))?;
    if !(0.0..=1.0).contains(&v) || v == 0.0 {
        return Err(format!("`{s}`: must be above 0% and at most 100%"));
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_fractions() {
        assert_eq!(parse_duration("5s").unwrap(), Duration::from_secs(5));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("2").unwrap(), Duration::from_secs(2));
        assert_eq!(parse_duration("1m").unwrap(), Duration::from_secs(60));
        assert!(parse_duration("5h").is_err());
        assert_eq!(parse_fraction("10%").unwrap(), 0.1);
        assert_eq!(parse_fraction("0.25").unwrap(), 0.25);
        assert!(parse_fraction("150%").is_err());
        assert!(parse_fraction("0%").is_err());
    }

    #[test]
    fn cpu_time_advances() {
        let a = process_cpu_seconds();
        let mut x = 0u64;
        for i in 0..20_000_000u64 {
            x = x.wrapping_add(i * i);
        }
        std::hint::black_box(x);
        assert!(process_cpu_seconds() > a);
    }
}
