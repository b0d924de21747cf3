//! Pausing sluice's batched work on MariaDB/MySQL while the server is busier than allowed
//! (`Threads_running`) or a replica lags (see [`super::replicas`]): the online copy before each
//! chunk, the two-phase rename's backfill before each batch. One throttle, so both back off the
//! same way on the same settings.

use super::copy::{db, Say};
use super::replicas::{self, Replicas};
use mysql_async::prelude::Queryable;
use mysql_async::Conn;
use sluice_core::dburl::DbUrl;
use sluice_core::engine::OnlineOptions;
use sluice_core::error::Result;
use std::time::{Duration, Instant};

pub(crate) struct Throttle {
    replicas: Replicas,
    max_threads_running: Option<u64>,
    max_replica_lag: Duration,
    /// On a Galera node: flow control's paused time (`wsrep_flow_control_paused_ns`) at the last
    /// look, and when that was.
    galera: Option<(u64, Instant)>,
}

/// On a Galera node sluice's chunks wait while this node's receive or send queue holds more
/// write sets than this, or flow control paused the cluster for more than a fifth of the time
/// since the last chunk: the copy then adds to the backlog that makes every node stall.
const GALERA_QUEUE_MAX: u64 = 50;
const GALERA_PAUSED_MAX: f64 = 0.2;

impl Throttle {
    /// The replicas named in `opts`, or without any those the primary knows (when a lag limit is
    /// set), watched from `conn`.
    pub(crate) async fn open(
        conn: &mut Conn,
        url: &DbUrl,
        opts: &OnlineOptions,
        say: Say<'_>,
    ) -> Result<Throttle> {
        let discovered = if opts.replica_urls.is_empty() && !opts.max_replica_lag.is_zero() {
            replicas::discover(conn, url, say).await
        } else {
            vec![]
        };
        Throttle::with(conn, opts, discovered).await
    }

    /// As [`Throttle::open`], with the replicas found already.
    pub(crate) async fn with(
        conn: &mut Conn,
        opts: &OnlineOptions,
        discovered: Vec<DbUrl>,
    ) -> Result<Throttle> {
        let wsrep: Option<(String, String)> = conn
            .query_first("SHOW VARIABLES LIKE 'wsrep_on'")
            .await
            .map_err(|e| db("reading wsrep_on", e))?;
        let galera = wsrep
            .is_some_and(|(_, v)| v.eq_ignore_ascii_case("ON"))
            .then(|| (0, Instant::now()));
        Ok(Throttle {
            replicas: Replicas::open(&opts.replica_urls, discovered, conn).await?,
            max_threads_running: opts.max_threads_running,
            max_replica_lag: opts.max_replica_lag,
            galera,
        })
    }

    /// Why a Galera node should wait: queues above `GALERA_QUEUE_MAX` or flow control paused
    /// more than `GALERA_PAUSED_MAX` of the time since the last look. None elsewhere.
    async fn galera_busy(&mut self, conn: &mut Conn) -> Result<Option<String>> {
        let Some((before, at)) = self.galera else {
            return Ok(None);
        };
        let rows: Vec<(String, String)> = conn
            .query(
                "SHOW GLOBAL STATUS WHERE Variable_name IN ('wsrep_flow_control_paused_ns', \
                 'wsrep_local_recv_queue', 'wsrep_local_send_queue')",
            )
            .await
            .map_err(|e| db("reading the Galera flow control status", e))?;
        let stat = |name: &str| -> u64 {
            rows.iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .and_then(|(_, v)| v.parse().ok())
                .unwrap_or(0)
        };
        let paused_ns = stat("wsrep_flow_control_paused_ns");
        let elapsed = at.elapsed();
        self.galera = Some((paused_ns, Instant::now()));
        let (recv, send) = (
            stat("wsrep_local_recv_queue"),
            stat("wsrep_local_send_queue"),
        );
        if recv > GALERA_QUEUE_MAX || send > GALERA_QUEUE_MAX {
            return Ok(Some(format!(
                "Galera queues: {recv} write set(s) to apply, {send} to send (over {GALERA_QUEUE_MAX})"
            )));
        }
        // The first look only sets the baseline.
        if before > 0 && !elapsed.is_zero() {
            let share = paused_ns.saturating_sub(before) as f64 / elapsed.as_nanos() as f64;
            if share > GALERA_PAUSED_MAX {
                return Ok(Some(format!(
                    "Galera flow control paused the cluster {:.0}% of the last {} ms",
                    share * 100.0,
                    elapsed.as_millis()
                )));
            }
        }
        Ok(None)
    }

    /// Waits while the server is busier than allowed or a replica lags; says when `what` pauses
    /// (again every 5 s while paused) and when it resumes. Returns how long it paused.
    pub(crate) async fn wait(
        &mut self,
        conn: &mut Conn,
        what: &str,
        say: Say<'_>,
    ) -> Result<Duration> {
        let mut paused: Option<Instant> = None;
        let mut last_said = Instant::now();
        loop {
            let mut busy = None;
            if let Some(max) = self.max_threads_running {
                let r: Option<(String, u64)> = conn
                    .query_first("SHOW GLOBAL STATUS LIKE 'Threads_running'")
                    .await
                    .map_err(|e| db("reading Threads_running", e))?;
                if let Some((_, running)) = r {
                    if running > max {
                        busy = Some(format!("Threads_running {running} > {max}"));
                    }
                }
            }
            if busy.is_none() {
                busy = self.galera_busy(conn).await?;
            }
            if busy.is_none() && !self.replicas.is_empty() {
                self.replicas.beat(conn).await?;
                busy = self.replicas.lagging(self.max_replica_lag).await;
            }
            match busy {
                None => {
                    let Some(p) = paused else {
                        return Ok(Duration::ZERO);
                    };
                    say(&format!(
                        "{what} resumed after a pause of {:.1} s",
                        p.elapsed().as_secs_f64()
                    ));
                    return Ok(p.elapsed());
                }
                Some(why) => {
                    if paused.is_none() || last_said.elapsed() > Duration::from_secs(5) {
                        say(&format!("{what} paused: {why}"));
                        last_said = Instant::now();
                    }
                    paused.get_or_insert_with(Instant::now);
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
    }
}

/// One-row commits timed before the copy for the idle latency.
const IDLE_PROBES: usize = 5;
/// Absolute slack over the idle commit latency: a sub-millisecond fsync jitters by that much.
const COMMIT_SLACK_MS: f64 = 1.0;
/// The pause after a chunk is at most this many times the chunk's own duration, and never more
/// than `MAX_COMMIT_PAUSE`: the copy keeps moving on a server slow for reasons of its own.
const MAX_PAUSE_RATIO: f64 = 4.0;
/// A pause at least this long ends with a commit timed for the idle latency.
const MIN_IDLE_PAUSE: Duration = Duration::from_millis(20);
const MAX_COMMIT_PAUSE: Duration = Duration::from_secs(2);
/// Chunks are aimed at no more than this while paced: a chunk's redo is written by whichever
/// commit comes first (a client's, mostly), and the copy reacts once per chunk.
pub(crate) const PACED_CHUNK: Duration = Duration::from_millis(50);

/// Paces the online copy on commit latency. Clients' writes on MariaDB/MySQL with
/// `innodb_flush_log_at_trx_commit = 1` wait for the redo log write and fsync that make them
/// durable, and the copy's chunks fill that log (and the page cleaner's queue) at tens of MB/s:
/// measured beside a 1M-row copy, the clients' point reads kept their latency while their
/// updates and inserts took 2.5-6x longer (`bench/mariadb_osc_parts.py`); with the flush setting
/// at 2 the same copy cost them almost nothing. So after each chunk the copy times a one-row
/// commit of its own (its row in `sluice_online`: no client waits on it), and while that takes
/// more than `factor` times its latency before the copy, it pauses before the next chunk, for a
/// share of the chunk's time that grows while the commits stay slow and shrinks once they are not.
pub(crate) struct CommitPace {
    factor: f64,
    idle_ms: f64,
    /// The pause after a chunk, as a multiple of the chunk's duration.
    ratio: f64,
    /// The pauses taken so far, for the report.
    pub(crate) paused: Duration,
    pub(crate) slow: u64,
}

impl CommitPace {
    /// Measures the idle commit latency (the median of a few one-row commits).
    pub(crate) async fn start(conn: &mut Conn, table: &str, factor: f64) -> Result<CommitPace> {
        let mut ms = Vec::with_capacity(IDLE_PROBES);
        for _ in 0..IDLE_PROBES {
            ms.push(commit_ms(conn, table).await?);
        }
        ms.sort_by(f64::total_cmp);
        Ok(CommitPace::new(factor, ms[ms.len() / 2]))
    }

    fn new(factor: f64, idle_ms: f64) -> CommitPace {
        CommitPace {
            factor: factor.max(1.0),
            idle_ms,
            ratio: 0.0,
            paused: Duration::ZERO,
            slow: 0,
        }
    }

    /// The commit latency above which the copy pauses (ms).
    pub(crate) fn budget_ms(&self) -> f64 {
        (self.idle_ms * self.factor).max(self.idle_ms + COMMIT_SLACK_MS)
    }

    pub(crate) fn describe(&self) -> String {
        format!(
            "paced on commit latency: idle {:.1} ms, pausing while over {:.1} ms",
            self.idle_ms,
            self.budget_ms()
        )
    }

    /// After a chunk that took `took`: times a one-row commit, pauses as long as that calls for,
    /// and times one more commit at the end of a pause, the latency without the copy now. The
    /// budget follows that: commits slow for reasons of their own (another workload's writes, a
    /// busy disk) raise it, so the copy never crawls for a slowness its pauses do not cure.
    pub(crate) async fn after_chunk(
        &mut self,
        conn: &mut Conn,
        table: &str,
        took: Duration,
    ) -> Result<()> {
        let ms = commit_ms(conn, table).await?;
        let pause = self.next(ms, took);
        if pause >= MIN_IDLE_PAUSE {
            tokio::time::sleep(pause).await;
            let idle = commit_ms(conn, table).await?;
            self.idle(idle);
        } else {
            tokio::time::sleep(pause).await;
        }
        Ok(())
    }

    /// A commit timed at the end of a pause: the idle latency moves halfway to it.
    fn idle(&mut self, ms: f64) {
        self.idle_ms = (self.idle_ms + ms) / 2.0;
    }

    /// The pause for a commit of `ms` after a chunk of `took`: over budget the ratio grows by
    /// half the chunk's time (plus the overshoot), under it decays by a fifth, so the copy settles
    /// near the duty its commits allow.
    fn next(&mut self, ms: f64, took: Duration) -> Duration {
        let budget = self.budget_ms();
        if ms > budget {
            self.slow += 1;
            self.ratio = (self.ratio + 0.5 + (ms / budget - 1.0).min(2.0)).min(MAX_PAUSE_RATIO);
        } else {
            self.ratio *= 0.8;
            if self.ratio < 0.05 {
                self.ratio = 0.0;
            }
        }
        let pause = took.mul_f64(self.ratio).min(MAX_COMMIT_PAUSE);
        self.paused += pause;
        pause
    }
}

/// One durable one-row commit on the copy's row of `sluice_online`, timed (ms).
async fn commit_ms(conn: &mut Conn, table: &str) -> Result<f64> {
    let t0 = Instant::now();
    conn.exec_drop(
        "UPDATE `sluice_online` SET `updated_at` = NOW(6) WHERE `table_name` = ?",
        (table,),
    )
    .await
    .map_err(|e| db("timing a commit", e))?;
    Ok(t0.elapsed().as_secs_f64() * 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pause_grows_while_commits_are_slow_and_decays_once_they_are_not() {
        let mut p = CommitPace::new(3.0, 1.0);
        // Budget: 3 x 1 ms (above 1 ms + the slack).
        assert_eq!(p.budget_ms(), 3.0);
        let chunk = Duration::from_millis(50);
        assert_eq!(p.next(2.9, chunk), Duration::ZERO);
        // 6 ms is twice the budget: 0.5 + 1.0 of the chunk.
        assert_eq!(p.next(6.0, chunk), Duration::from_millis(75));
        assert_eq!(p.next(6.0, chunk), Duration::from_millis(150));
        // Capped at 4x the chunk, then at 2 s.
        for _ in 0..10 {
            p.next(100.0, chunk);
        }
        assert_eq!(p.next(100.0, chunk), Duration::from_millis(200));
        assert_eq!(p.next(100.0, Duration::from_secs(1)), MAX_COMMIT_PAUSE);
        // Fast commits: the pause shrinks by a fifth each chunk, then stops.
        assert_eq!(p.next(1.0, chunk), Duration::from_millis(160));
        for _ in 0..30 {
            p.next(1.0, chunk);
        }
        assert_eq!(p.next(1.0, chunk), Duration::ZERO);
        assert_eq!(p.slow, 14);
    }

    #[test]
    fn commits_slow_without_the_copy_raise_the_budget() {
        let mut p = CommitPace::new(3.0, 1.0);
        p.idle(9.0);
        assert_eq!(p.budget_ms(), 15.0);
        assert_eq!(p.next(12.0, Duration::from_millis(50)), Duration::ZERO);
    }

    #[test]
    fn a_fast_server_gets_the_absolute_slack() {
        let p = CommitPace::new(3.0, 0.2);
        assert!((p.budget_ms() - 1.2).abs() < 1e-9);
        assert_eq!(CommitPace::new(0.5, 2.0).budget_ms(), 3.0);
    }
}
