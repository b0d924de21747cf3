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
}

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
        Ok(Throttle {
            replicas: Replicas::open(&opts.replica_urls, discovered, conn).await?,
            max_threads_running: opts.max_threads_running,
            max_replica_lag: opts.max_replica_lag,
        })
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
