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
