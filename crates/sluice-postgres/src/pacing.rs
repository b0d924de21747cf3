//! Pacing for the backfill: a probe on a session of its own measures what a client query feels
//! while batches run and while they do not, and the backfill backs off when the difference grows
//! past the budget. Replica lag and a user's throttle query pause it too.

use sluice_core::engine::Pacing;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_postgres::Client;

/// How often the probe runs: often enough for several samples in a 50 ms batch, cheap enough
/// (a point read) to cost nothing measurable.
const PROBE_EVERY: Duration = Duration::from_millis(10);
/// How long the probe measures its idle latency before the first batch, probing every
/// IDLE_PROBE_EVERY: about 40 samples, enough for a p90 to start from (pauses between batches keep
/// it current). At the 10 ms cadence the same samples took 300 ms, 7% of a 1M-row backfill at full
/// speed; a point read every 2 ms for 80 ms costs the server nothing measurable.
const IDLE_WINDOW: Duration = Duration::from_millis(80);
const IDLE_PROBE_EVERY: Duration = Duration::from_millis(2);
/// The longest pause the latency pacing imposes between two batches: the backfill keeps moving
/// even when the server is slow for reasons of its own.
const MAX_PAUSE: Duration = Duration::from_secs(5);
/// A client statement that waits longer than this for a batch's row locks makes the batches
/// shorter, down to MIN_BATCH.
const LOCK_WAIT_LIMIT_MS: f64 = 20.0;
const MIN_BATCH: Duration = Duration::from_millis(20);
/// Absolute slack over the idle latency: sub-millisecond probes jitter by that much anyway.
const SLACK_MS: f64 = 1.0;

/// Latency samples (taken at, milliseconds) the probe task appends to.
type Samples = Arc<Mutex<Vec<(Instant, f64)>>>;

pub struct Probe {
    samples: Samples,
    /// How long client statements had waited for the backfill's row locks, sampled each tick
    /// while a batch runs.
    waits: Samples,
    /// Set while a batch runs: between batches the backfill holds no row lock, so the lock-wait
    /// query (which reads pg_stat_activity) is skipped then.
    in_batch: Arc<std::sync::atomic::AtomicBool>,
    /// When the probe now in flight started: a probe stuck behind a lock counts before it returns.
    inflight: Arc<Mutex<Option<Instant>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Probe {
    /// Starts probing with `sql` (parameters `params`, as text) on `client`, a session of its own.
    /// Starts probing with `sql` on `client`; with `blocker`, the backfill session's pid, it also
    /// samples how long statements have been waiting for that session's locks.
    pub fn start(client: Client, sql: String, params: Vec<String>, blocker: Option<i32>) -> Probe {
        let samples: Samples = Arc::default();
        let out = samples.clone();
        let waits: Samples = Arc::default();
        let waits_out = waits.clone();
        let inflight: Arc<Mutex<Option<Instant>>> = Arc::default();
        let flying = inflight.clone();
        let in_batch: Arc<std::sync::atomic::AtomicBool> = Arc::default();
        let batch_running = in_batch.clone();
        let task = tokio::spawn(async move {
            let Ok(stmt) = client.prepare(&sql).await else {
                return;
            };
            let waiting = client
                .prepare(
                    // pg_blocking_pids takes the lock manager's partition locks: only for the
                    // few sessions waiting on a lock (OFFSET 0 keeps that filter first).
                    "SELECT coalesce(max(extract(epoch FROM clock_timestamp() - query_start)) * 1000, 0)::float8
                       FROM (SELECT pid, query_start FROM pg_stat_activity WHERE wait_event_type = 'Lock' OFFSET 0) a
                      WHERE $1 = ANY (pg_blocking_pids(pid))",
                )
                .await;
            let started = Instant::now();
            let mut fast = tokio::time::interval(IDLE_PROBE_EVERY);
            fast.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut tick = tokio::time::interval(PROBE_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                if started.elapsed() < IDLE_WINDOW {
                    fast.tick().await;
                } else {
                    tick.tick().await;
                }
                let p: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = params
                    .iter()
                    .map(|v| v as &(dyn tokio_postgres::types::ToSql + Sync))
                    .collect();
                let t0 = Instant::now();
                *flying.lock().expect("probe state") = Some(t0);
                let ok = client.query(&stmt, &p).await.is_ok();
                *flying.lock().expect("probe state") = None;
                if !ok {
                    return;
                }
                let ms = t0.elapsed().as_secs_f64() * 1000.0;
                push(&out, t0, ms);
                let batch = batch_running.load(std::sync::atomic::Ordering::Relaxed);
                if let (Some(pid), Ok(w), true) = (blocker, &waiting, batch) {
                    if let Ok(row) = client.query_one(w, &[&pid]).await {
                        push(&waits_out, Instant::now(), row.get(0));
                    }
                }
            }
        });
        Probe {
            samples,
            waits,
            in_batch,
            inflight,
            task,
        }
    }

    fn batch_running(&self, running: bool) {
        self.in_batch
            .store(running, std::sync::atomic::Ordering::Relaxed);
    }

    /// The longest wait for the backfill's locks seen since `since` (ms).
    pub fn max_wait_since(&self, since: Instant) -> f64 {
        self.waits
            .lock()
            .expect("wait samples")
            .iter()
            .filter(|(t, _)| *t >= since)
            .map(|(_, ms)| *ms)
            .fold(0.0, f64::max)
    }

    /// The 90th percentile of the probes started since `since` (the one in flight counts with
    /// its latency so far), None when there is none.
    pub fn p90_since(&self, since: Instant) -> Option<f64> {
        let mut xs: Vec<f64> = self
            .samples
            .lock()
            .expect("probe samples")
            .iter()
            .filter(|(t, _)| *t >= since)
            .map(|(_, ms)| *ms)
            .collect();
        if let Some(t) = *self.inflight.lock().expect("probe state") {
            if t >= since {
                xs.push(t.elapsed().as_secs_f64() * 1000.0);
            }
        }
        if xs.is_empty() {
            return None;
        }
        xs.sort_by(|a, b| a.total_cmp(b));
        let i = ((xs.len() as f64) * 0.9).ceil() as usize - 1;
        Some(xs[i.min(xs.len() - 1)])
    }
}

fn push(samples: &Samples, at: Instant, ms: f64) {
    let mut v = samples.lock().expect("probe samples");
    v.push((at, ms));
    // Keep the last minute at most.
    if v.len() > 6000 {
        v.drain(..1000);
    }
}

impl Drop for Probe {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The latency controller: after every batch it compares the probe's p90 during the batch with
/// its p90 while idle, and sets the pause before the next batch as a multiple of the batch's
/// duration (the duty cycle). Over budget the multiple grows, under budget it shrinks, between 0
/// and MAX_RATIO: the backfill slows down by at most that factor and never stops. Batch size is
/// left to the target batch duration: smaller batches cost the server as much per row.
pub struct Controller {
    factor: f64,
    /// The probe's p90 with the backfill idle (an average over idle windows, so it follows a
    /// changing workload).
    idle_ms: f64,
    busy_ms: Option<f64>,
    ratio: f64,
    pub pause: Duration,
}

/// The longest pause as a multiple of the batch before it (a 20% duty cycle at worst).
const MAX_RATIO: f64 = 4.0;

impl Controller {
    pub fn new(factor: f64, idle_ms: f64) -> Controller {
        Controller {
            factor,
            idle_ms,
            busy_ms: None,
            ratio: 0.0,
            pause: Duration::ZERO,
        }
    }

    pub fn budget_ms(&self) -> f64 {
        (self.idle_ms * self.factor).max(self.idle_ms + SLACK_MS)
    }

    pub fn idle_ms(&self) -> f64 {
        self.idle_ms
    }

    pub fn busy_ms(&self) -> Option<f64> {
        self.busy_ms
    }

    /// Feeds what the probe saw during the last batch (which took `batch`) and during the pause
    /// before it.
    pub fn observe(
        &mut self,
        during_batch: Option<f64>,
        during_pause: Option<f64>,
        batch: Duration,
    ) {
        if let Some(idle) = during_pause {
            self.idle_ms = 0.7 * self.idle_ms + 0.3 * idle;
        }
        let Some(busy) = during_batch else { return };
        self.busy_ms = Some(match self.busy_ms {
            Some(b) => 0.8 * b + 0.2 * busy,
            None => busy,
        });
        self.ratio = if busy > self.budget_ms() {
            (self.ratio + 0.5).min(MAX_RATIO)
        } else {
            (self.ratio - 0.25).max(0.0)
        };
        self.pause = batch.mul_f64(self.ratio).min(MAX_PAUSE);
    }

    pub fn describe(&self) -> String {
        format!(
            "probe latency (p90) within {:.1}x of its idle {:.2} ms (budget {:.2} ms)",
            self.factor,
            self.idle_ms,
            self.budget_ms()
        )
    }
}

/// Everything a backfill loop paces itself with: the probe and its controller (with latency
/// pacing), the headroom checks, and the time spent paused.
pub struct Pacer {
    probe: Option<(Probe, Controller)>,
    pub throttled: Duration,
    /// The batch duration target is scaled down while client statements wait for the batch's row
    /// locks longer than LOCK_WAIT_LIMIT (a shorter batch holds them for less time).
    scale: f64,
    /// The longest wait for the backfill's locks any client statement had (ms).
    max_lock_wait_ms: f64,
    /// When the last pause began: the probe's samples since then, up to the next batch, are idle.
    pause_began: Option<Instant>,
    batch_began: Instant,
    replay: ReplayWatch,
    /// When replica lag and the throttle query were last read.
    headroom_checked: Option<Instant>,
}

/// How often replica lag and the throttle query are read between batches.
const HEADROOM_EVERY: Duration = Duration::from_millis(100);

/// Each replica's replay position and since when it has not moved: `replay_lag` is only computed
/// when a replica reports progress, so a replica whose replay stopped keeps showing its last,
/// small lag while it falls further behind. The time its position has been stuck while WAL was
/// waiting for it is the fresher measure.
#[derive(Default)]
pub struct ReplayWatch(std::collections::HashMap<i32, (String, Instant)>);

impl ReplayWatch {
    /// The lag of one replica from `pg_stat_replication`: its replay_lag, or how long its replay
    /// position has stood still while it was behind, whichever is larger.
    fn lag(
        &mut self,
        pid: i32,
        replay_lsn: &str,
        behind_bytes: f64,
        replay_lag: Option<f64>,
    ) -> f64 {
        let now = Instant::now();
        let entry = self
            .0
            .entry(pid)
            .or_insert_with(|| (replay_lsn.to_string(), now));
        if entry.0 != replay_lsn || behind_bytes <= 0.0 {
            *entry = (replay_lsn.to_string(), now);
        }
        let stuck = if behind_bytes > 0.0 {
            now.duration_since(entry.1).as_secs_f64()
        } else {
            0.0
        };
        replay_lag.unwrap_or(0.0).max(stuck)
    }
}

impl Pacer {
    /// With latency pacing, starts the probe on `session` and measures its idle latency for a
    /// `IDLE_WINDOW` before the first batch.
    pub async fn start(
        pacing: &Pacing,
        session: Option<Client>,
        default_probe: (String, Vec<String>),
        blocker: Option<i32>,
        say: &(dyn for<'s> Fn(&'s str) + Send + Sync),
    ) -> Pacer {
        let mut probe_state = None;
        if let (Some(factor), Some(session)) = (pacing.latency_factor, session) {
            let (sql, params) = match &pacing.probe {
                Some(q) => (q.clone(), vec![]),
                None => default_probe,
            };
            let probe = Probe::start(session, sql, params, blocker);
            let t0 = Instant::now();
            tokio::time::sleep(IDLE_WINDOW).await;
            match probe.p90_since(t0) {
                Some(idle) => probe_state = Some((probe, Controller::new(factor, idle))),
                None => say(
                    "backfill: the latency probe returned no samples (check --probe-query); pacing on batch duration only",
                ),
            }
        }
        Pacer {
            probe: probe_state,
            throttled: Duration::ZERO,
            scale: 1.0,
            max_lock_wait_ms: 0.0,
            pause_began: None,
            batch_began: Instant::now(),
            replay: ReplayWatch::default(),
            headroom_checked: None,
        }
    }

    pub fn describe(&self) -> String {
        match &self.probe {
            Some((_, c)) => format!(
                "{}; batches shorten (to {} ms at least) while a client waits over {LOCK_WAIT_LIMIT_MS:.0} ms for their row locks",
                c.describe(),
                MIN_BATCH.as_millis()
            ),
            None => "batch duration only (full speed)".to_string(),
        }
    }

    /// Waits for replica lag and the throttle query, then marks the batch's start.
    pub async fn before_batch(
        &mut self,
        client: &Client,
        pacing: &Pacing,
        say: &(dyn for<'s> Fn(&'s str) + Send + Sync),
    ) -> Result<(), sluice_core::error::Error> {
        // Replica lag and the throttle query are read at most every HEADROOM_EVERY, not before
        // every one of many short batches (each read is a round trip the batch waits for).
        if !matches!(self.headroom_checked, Some(t) if t.elapsed() < HEADROOM_EVERY) {
            self.throttled += wait_for_headroom(client, pacing, &mut self.replay, say)
                .await
                .map_err(|message| sluice_core::error::Error::Database {
                    context: "pacing the backfill".into(),
                    message,
                    help: "fix the throttle query or the replica; the checkpoint is kept: run the same command again to resume".into(),
                })?;
            self.headroom_checked = Some(Instant::now());
        }
        self.batch_began = Instant::now();
        if let Some((probe, _)) = &self.probe {
            probe.batch_running(true);
        }
        Ok(())
    }

    /// After a batch: the pause before the next one, and the batch duration to aim the next one
    /// at (the configured `target`, scaled down while clients wait for the batch's row locks;
    /// `say` is told, with the job's `label`, each time it shortens).
    pub fn after_batch(
        &mut self,
        target: Duration,
        label: &str,
        say: &(dyn for<'s> Fn(&'s str) + Send + Sync),
    ) -> (Duration, Duration) {
        let Some((probe, ctl)) = &mut self.probe else {
            return (Duration::ZERO, target);
        };
        probe.batch_running(false);
        let scale_before = self.scale;
        let t0 = self.batch_began;
        let busy = probe.p90_since(t0);
        let idle = self
            .pause_began
            .take()
            .and_then(|w| probe.p90_since(w).filter(|_| w < t0));
        ctl.observe(busy, idle, t0.elapsed());
        let waited = probe.max_wait_since(t0);
        self.max_lock_wait_ms = self.max_lock_wait_ms.max(waited);
        self.scale = if waited > LOCK_WAIT_LIMIT_MS {
            (self.scale * 0.5).max(MIN_BATCH.as_secs_f64() / target.as_secs_f64().max(0.001))
        } else {
            (self.scale * 1.25).min(1.0)
        };
        self.throttled += ctl.pause;
        let next = target.mul_f64(self.scale.min(1.0));
        if self.scale < scale_before {
            say(&format!(
                "backfill {label}: a client waited {waited:.0} ms for a batch's row locks; next batches aim at {} ms",
                next.as_millis()
            ));
        }
        (ctl.pause, next)
    }

    /// The line that sums up what the pacing did, when the probe ran.
    pub fn summary(&self, pacing: &str) -> Option<String> {
        let (_, busy) = self.probe_ms();
        busy.map(|busy| format!(
            "backfill pacing: {pacing}; probe p90 {busy:.2} ms during batches, paused {:.1} s in all; longest client wait for its row locks {:.0} ms",
            self.throttled.as_secs_f64(),
            self.max_lock_wait_ms
        ))
    }

    /// The report of a finished run, with what the pacing saw.
    pub fn report(
        &self,
        pacing: String,
        rows: i64,
        batches: i64,
        seconds: f64,
        resumed: bool,
    ) -> sluice_core::engine::BackfillReport {
        let (probe_idle_ms, probe_busy_ms) = self.probe_ms();
        sluice_core::engine::BackfillReport {
            rows,
            batches,
            seconds,
            resumed,
            pacing,
            throttled_seconds: self.throttled.as_secs_f64(),
            probe_idle_ms,
            probe_busy_ms,
        }
    }

    /// Sleeps between batches (the pacing's pause plus any fixed one).
    pub async fn pause(&mut self, pause: Duration) {
        if !pause.is_zero() {
            self.pause_began = Some(Instant::now());
            tokio::time::sleep(pause).await;
        }
    }

    /// The probe's idle and busy p90 (ms), when it ran.
    pub fn probe_ms(&self) -> (Option<f64>, Option<f64>) {
        match &self.probe {
            Some((_, c)) => (Some(c.idle_ms()), c.busy_ms()),
            None => (None, None),
        }
    }
}

/// Before a backfill's first batch: with replica-lag pacing on and replicas connected, the user
/// must be able to read their positions: without `pg_read_all_stats` (in `pg_monitor`) `pg_stat_replication` shows the rows
/// with their positions NULL, which would read as no lag at all and pace on nothing.
pub async fn replica_lag_readable(
    client: &Client,
    pacing: &Pacing,
) -> Result<(), sluice_core::error::Error> {
    if pacing.max_replica_lag.is_none() {
        return Ok(());
    }
    let row = client
        .query_one(
            "SELECT (SELECT count(*) FROM pg_stat_replication),
                    (SELECT rolsuper FROM pg_roles WHERE rolname = current_user)
                    OR pg_has_role(current_user, 'pg_read_all_stats', 'MEMBER'),
                    current_user::text",
            &[],
        )
        .await
        .map_err(|e| sluice_core::error::Error::Database {
            context: "reading replica lag".into(),
            message: e.to_string(),
            help: String::new(),
        })?;
    let (replicas, readable, role): (i64, bool, String) = (row.get(0), row.get(1), row.get(2));
    if replicas == 0 || readable {
        return Ok(());
    }
    Err(sluice_core::error::Error::Permission {
        context: "pacing the backfill on replica lag".into(),
        message: format!(
            "{replicas} replica(s) are connected but {role} may not read their replay positions in pg_stat_replication, so their lag cannot be measured (turn lag pacing off with --max-replica-lag-ms 0 to go on without it)"
        ),
        grant: format!("GRANT pg_monitor TO {};", crate::quote::ident(&role)),
    })
}

/// Waits while a replica lags more than the limit or the throttle query says so; returns the time
/// spent waiting. `say` is told once per wait.
pub async fn wait_for_headroom(
    client: &Client,
    pacing: &Pacing,
    replay: &mut ReplayWatch,
    say: &(dyn for<'s> Fn(&'s str) + Send + Sync),
) -> Result<Duration, String> {
    let started = Instant::now();
    let mut told = false;
    loop {
        let mut reason = None;
        if let Some(max) = pacing.max_replica_lag {
            let rows = client
                .query(
                    "SELECT pid, coalesce(replay_lsn::text, ''),
                            coalesce(pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn), 0)::float8,
                            extract(epoch FROM replay_lag)::float8
                       FROM pg_stat_replication",
                    &[],
                )
                .await
                .map_err(|e| format!("reading replica lag: {e}"))?;
            let lag = rows
                .iter()
                .map(|r| replay.lag(r.get(0), r.get::<_, String>(1).as_str(), r.get(2), r.get(3)))
                .fold(0.0, f64::max);
            if lag > max.as_secs_f64() {
                reason = Some(format!(
                    "a replica replays {lag:.1} s behind (limit {:.1} s)",
                    max.as_secs_f64()
                ));
            }
        }
        if reason.is_none() {
            if let Some(q) = &pacing.throttle_query {
                if throttle_says_wait(client, q).await? {
                    reason = Some(format!("the throttle query `{q}` says wait"));
                }
            }
        }
        let Some(reason) = reason else {
            return Ok(started.elapsed());
        };
        if !told {
            say(&format!("backfill paused: {reason}"));
            told = true;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// True when the user's throttle query returns true or a number above zero in its first column.
async fn throttle_says_wait(client: &Client, q: &str) -> Result<bool, String> {
    let rows = client
        .simple_query(q)
        .await
        .map_err(|e| format!("running the throttle query `{q}`: {e}"))?;
    for m in rows {
        if let tokio_postgres::SimpleQueryMessage::Row(r) = m {
            let v = r.get(0).unwrap_or("").trim().to_ascii_lowercase();
            return Ok(match v.as_str() {
                "t" | "true" | "yes" | "on" => true,
                "" | "f" | "false" | "no" | "off" => false,
                n => n.parse::<f64>().map(|x| x > 0.0).map_err(|_| {
                    format!("the throttle query `{q}` returned `{n}`; it must return a boolean or a number")
                })?,
            });
        }
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BATCH: Duration = Duration::from_millis(200);

    #[test]
    fn the_pause_grows_with_the_overshoot_and_shrinks_when_under_budget() {
        let mut c = Controller::new(1.5, 2.0);
        assert_eq!(c.budget_ms(), 3.0);
        c.observe(Some(5.0), None, BATCH);
        assert_eq!(c.pause, Duration::from_millis(100));
        c.observe(Some(5.0), None, BATCH);
        assert_eq!(c.pause, Duration::from_millis(200));
        c.observe(Some(1.0), None, BATCH);
        assert_eq!(c.pause, Duration::from_millis(150));
        for _ in 0..10 {
            c.observe(Some(1.0), None, BATCH);
        }
        assert_eq!(c.pause, Duration::ZERO);
    }

    #[test]
    fn a_replica_whose_replay_stands_still_while_behind_counts_as_lagging() {
        let mut w = ReplayWatch::default();
        assert_eq!(w.lag(7, "0/100", 1000.0, Some(0.2)), 0.2);
        std::thread::sleep(Duration::from_millis(30));
        // Same position, still behind: stuck for about 30 ms, more than its stale replay_lag.
        let stuck = w.lag(7, "0/100", 5000.0, Some(0.01));
        assert!(stuck >= 0.03, "{stuck}");
        // It moved: the clock restarts.
        assert_eq!(w.lag(7, "0/200", 10.0, None), 0.0);
        // Caught up: not lagging whatever the position.
        std::thread::sleep(Duration::from_millis(10));
        assert_eq!(w.lag(7, "0/200", 0.0, None), 0.0);
    }

    /// The idle reference before the first batch: the fast cadence gives it enough samples for
    /// a p90 within IDLE_WINDOW (the 10 ms cadence gave 8); the lock-wait query, which reads
    /// pg_stat_activity, runs only while a batch does, the probe itself always.
    #[tokio::test]
    async fn the_idle_window_fills_fast_and_lock_waits_are_read_only_during_batches() {
        let db = sluice_testkit::TestDb::postgres().await;
        let t0 = Instant::now();
        let probe = Probe::start(db.pg().await, "SELECT 1".into(), vec![], Some(1));
        tokio::time::sleep(IDLE_WINDOW).await;
        let count = |s: &Samples, since: Instant| {
            s.lock()
                .expect("samples")
                .iter()
                .filter(|(t, _)| *t >= since)
                .count()
        };
        let idle = count(&probe.samples, t0);
        assert!(idle >= 20, "{idle} probe samples in the idle window");
        tokio::time::sleep(Duration::from_millis(60)).await;
        assert_eq!(
            count(&probe.waits, t0),
            0,
            "lock waits read between batches"
        );
        let batch = Instant::now();
        probe.batch_running(true);
        tokio::time::sleep(Duration::from_millis(100)).await;
        let waits = count(&probe.waits, batch);
        assert!(waits >= 3, "{waits} lock-wait samples in a 100 ms batch");
        assert_eq!(probe.max_wait_since(batch), 0.0);
        probe.batch_running(false);
        let after = Instant::now() + Duration::from_millis(15);
        tokio::time::sleep(Duration::from_millis(60)).await;
        assert_eq!(count(&probe.waits, after), 0);
        assert!(count(&probe.samples, after) >= 3);
        drop(probe);
    }

    #[test]
    fn the_slack_covers_sub_millisecond_jitter() {
        let c = Controller::new(1.5, 0.2);
        assert!((c.budget_ms() - 1.2).abs() < 1e-9);
    }

    #[test]
    fn idle_latency_follows_the_workload() {
        let mut c = Controller::new(1.5, 1.0);
        for _ in 0..30 {
            c.observe(None, Some(4.0), BATCH);
        }
        assert!((c.idle_ms() - 4.0).abs() < 0.01);
    }

    #[test]
    fn the_backfill_slows_down_at_most_by_the_max_ratio() {
        let mut c = Controller::new(1.5, 1.0);
        for _ in 0..30 {
            c.observe(Some(100.0), None, BATCH);
        }
        assert_eq!(c.pause, BATCH.mul_f64(MAX_RATIO));
        c.observe(Some(100.0), None, Duration::from_secs(3));
        assert_eq!(c.pause, MAX_PAUSE);
    }
}
