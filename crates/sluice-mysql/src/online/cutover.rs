//! The atomic swap. MariaDB refuses RENAME TABLE under LOCK TABLES, and the change log must be empty
//! at the moment of the swap, so the swap takes three sessions:
//!
//! 1. a lock session takes `LOCK TABLES t READ` (short lock_wait_timeout): reads go on, writes wait;
//! 2. the copy session drains the change log (nothing can be added to it now) and checksums every
//!    key it applied;
//! 3. a third session issues `RENAME TABLE t TO _t_old, _t_new TO t`; once it waits for `t`'s
//!    metadata lock, a pending exclusive request, no client write can be granted before it. It
//!    takes its locks in name order, so sluice checks that it already holds `_t_old` (a name
//!    nobody else locks) before counting it as waiting for `t`: waiting for the shadow, which a
//!    background InnoDB task can hold for a moment, it would let held writes into the old table;
//! 4. the lock session unlocks: the RENAME runs first, clients continue on the new table.
//!
//! The RENAME is only issued after the drain, so whenever it runs (even if sluice dies and its
//! lock session with it) the new table is complete. If it gives up waiting, nothing changed and
//! the swap is retried. (Issuing the RENAME before the drain, as gh-ost does on MySQL, lets client
//! writes slip in between UNLOCK and RENAME on MariaDB: the RENAME queues on whichever of its
//! tables sorts first, not necessarily on `t`.)

use super::copy::{code, db, Job, Say};
use crate::quote::ident;
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts};
use sluice_core::engine::OnlineOptions;
use sluice_core::error::{Error, Result};
use std::time::{Duration, Instant};

/// Test hook: `SLUICE_CRASH_AT=<point>` ends the process at that point of the cut-over the way
/// kill -9 does (no cleanup, connections just drop), so tests can show that a rerun converges
/// from exactly there. Points: `cutover-locked` (writes held, log drained, RENAME not issued) and
/// `cutover-renamed` (tables swapped, the swap not yet recorded).
pub fn crash_point(point: &str) {
    if std::env::var("SLUICE_CRASH_AT").is_ok_and(|p| p == point) {
        eprintln!("sluice: SLUICE_CRASH_AT={point}: ending the process here");
        std::process::abort();
    }
}

fn secs(d: Duration) -> u64 {
    d.as_millis().div_ceil(1000).max(1) as u64
}

/// Drains the log, then swaps; retries lock timeouts with backoff up to `lock_retry_for`.
/// Returns how long client writes were held.
pub async fn swap(
    job: &mut Job,
    opts: &OnlineOptions,
    conn_opts: &Opts,
    say: Say<'_>,
) -> Result<Duration> {
    let deadline = Instant::now() + opts.lock_retry_for;
    let mut backoff = Duration::from_millis(100);
    loop {
        catch_up(job, say).await?;
        match attempt(job, opts, conn_opts, say).await? {
            Ok(held) => return Ok(held),
            Err(why) => {
                if Instant::now() + backoff > deadline {
                    return Err(Error::Database {
                        context: format!("swapping `{}` with its online copy", job.table),
                        message: format!("gave up after {} s: {why}", opts.lock_retry_for.as_secs()),
                        help: "long transactions or queries on the table hold its metadata lock; the copy is kept \
                               in sync meanwhile: run `sluice cutover` (or `sluice up`) again when they are done"
                            .into(),
                    });
                }
                say(&format!(
                    "cut-over of `{}` postponed: {why}; retrying in {} ms",
                    job.table,
                    backoff.as_millis()
                ));
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(10));
            }
        }
    }
}

/// Applies the log and verifies what it applied until both are small, so that the part done with
/// writes held is short. Converges as long as sluice applies faster than clients write.
async fn catch_up(job: &mut Job, say: Say<'_>) -> Result<()> {
    let mut last_say = Instant::now();
    for round in 0..50 {
        let t0 = Instant::now();
        let mut applied = 0;
        loop {
            let n = job.apply(5_000, false).await?;
            applied += n;
            if n < 1_000 {
                break;
            }
        }
        let apply_ms = t0.elapsed().as_millis();
        if job.overflowed {
            job.verify(say).await?;
            continue;
        }
        let keys = job.touched.len();
        if keys <= 2_000 {
            return Ok(());
        }
        let t1 = Instant::now();
        job.verify_touched(false).await?;
        if last_say.elapsed() > Duration::from_secs(2) || round == 0 {
            last_say = Instant::now();
            say(&format!(
                "catching up on `{}`: applied {applied} change(s) in {apply_ms} ms, verified {keys} key(s) in {} ms",
                job.table,
                t1.elapsed().as_millis()
            ));
        }
    }
    Ok(())
}

/// One swap attempt: Ok(Ok(held)) swapped, Ok(Err(why)) nothing changed and may be retried.
async fn attempt(
    job: &mut Job,
    opts: &OnlineOptions,
    conn_opts: &Opts,
    say: Say<'_>,
) -> Result<std::result::Result<Duration, String>> {
    let t = ident(&job.table);
    let old = ident(&job.names.old);
    let new = ident(&job.names.shadow);
    let lt = secs(opts.lock_timeout);
    let open = || async {
        Conn::new(conn_opts.clone())
            .await
            .map_err(|e| db("opening a cut-over session", e))
    };
    let mut lock = open().await?;
    lock.query_drop(format!("SET SESSION lock_wait_timeout = {lt}"))
        .await
        .map_err(|e| db("preparing the cut-over", e))?;
    if let Err(e) = lock.query_drop(format!("LOCK TABLES {t} READ")).await {
        let _ = lock.disconnect().await;
        if code(&e) == Some(1205) {
            return Ok(Err(format!("LOCK TABLES waited more than {lt} s")));
        }
        return Err(db("locking the table for the cut-over", e));
    }
    let held = Instant::now();
    let budget = opts.lock_timeout.max(Duration::from_millis(500));
    let outcome = under_lock(job, conn_opts, &t, &old, &new, budget, say).await;
    // Whatever happened, the lock goes; a queued RENAME runs before any waiting write.
    let _ = lock.query_drop("UNLOCK TABLES").await;
    let _ = lock.disconnect().await;
    match outcome {
        Err(e) => Err(e),
        Ok(Err(why)) => Ok(Err(why)),
        Ok(Ok(rename)) => match rename.await {
            Ok(Ok(())) => Ok(Ok(held.elapsed())),
            Ok(Err(e)) => Ok(Err(format!("RENAME TABLE failed: {e}"))),
            Err(e) => Err(Error::database("cut-over", e.to_string())),
        },
    }
}

type Rename = tokio::task::JoinHandle<std::result::Result<(), String>>;

/// With writes held: drain and verify, then queue the RENAME behind the lock. Gives up (nothing
/// changed, writes resume) when the drain takes longer than `budget`.
async fn under_lock(
    job: &mut Job,
    conn_opts: &Opts,
    t: &str,
    old: &str,
    new: &str,
    budget: Duration,
    say: Say<'_>,
) -> Result<std::result::Result<Rename, String>> {
    let started = Instant::now();
    let mut drained = 0;
    loop {
        let n = job.apply(5_000, false).await?;
        drained += n;
        if n == 0 {
            break;
        }
        if started.elapsed() > budget {
            return Ok(Err(format!(
                "the change log did not drain within {} ms",
                budget.as_millis()
            )));
        }
    }
    if job.overflowed {
        return Ok(Err("too many changes to verify with writes held".into()));
    }
    let keys = job.touched.len();
    job.verify_touched(false).await?;
    // The new table continues the original's AUTO_INCREMENT (ids of deleted top rows are not
    // handed out again); the shadow's own counter only follows the ids copied into it.
    // Only when it is behind: an ALTER of the shadow here would also wait for anyone reading it.
    let counters: Vec<(String, Option<u64>)> = job
        .conn
        .exec(
            "SELECT TABLE_NAME, AUTO_INCREMENT FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME IN (?, ?)",
            (&job.table, &job.names.shadow),
        )
        .await
        .map_err(|e| db("reading the AUTO_INCREMENT counters", e))?;
    let counter = |name: &str| {
        counters
            .iter()
            .find(|(n, _)| n == name)
            .and_then(|(_, v)| *v)
    };
    if let Some(n) = counter(&job.table) {
        if counter(&job.names.shadow).is_none_or(|s| s < n) {
            job.conn
                .query_drop(format!("ALTER TABLE {new} AUTO_INCREMENT = {n}"))
                .await
                .map_err(|e| db("carrying the AUTO_INCREMENT counter over", e))?;
        }
    }
    say(&format!(
        "cut-over of `{}`: applied {drained} change(s), verified {keys} key(s) in {} ms with writes held",
        job.table,
        started.elapsed().as_millis()
    ));
    crash_point("cutover-locked");
    let mut r = Conn::new(conn_opts.clone())
        .await
        .map_err(|e| db("opening the RENAME session", e))?;
    let mut probe = Conn::new(conn_opts.clone())
        .await
        .map_err(|e| db("opening the cut-over session", e))?;
    r.query_drop("SET SESSION lock_wait_timeout = 10")
        .await
        .map_err(|e| db("preparing the RENAME session", e))?;
    let rid: Option<u64> = r
        .query_first("SELECT CONNECTION_ID()")
        .await
        .map_err(|e| db("preparing the RENAME session", e))?;
    let rid = rid.unwrap_or(0);
    let sql = format!("RENAME TABLE {t} TO {old}, {new} TO {t}");
    let handle: Rename = tokio::spawn(async move {
        let res = r.query_drop(sql).await.map_err(|e| e.to_string());
        let _ = r.disconnect().await;
        res
    });
    // Unlock only once the RENAME waits for the table's metadata lock, and not for another one:
    // it takes its locks in name order, and a background InnoDB task (statistics after the
    // copy) can hold the shadow's for a moment. The RENAME would then wait there, and the
    // writes waiting on `t` would run before it, into the old table. So when the old table's
    // name sorts last among the names before `t`, the RENAME must be seen holding that name
    // (nothing else ever locks it): then it has all it needs but `t`.
    let sentinel = sentinel(job, lower_case_names(&mut probe).await);
    if sentinel.is_some() {
        probe
            .query_drop("SET SESSION lock_wait_timeout = 0")
            .await
            .map_err(|e| db("preparing the cut-over probe", e))?;
    }
    let queued = Instant::now();
    loop {
        let state: Option<Option<String>> = probe
            .exec_first(
                "SELECT STATE FROM information_schema.PROCESSLIST WHERE ID = ?",
                (rid,),
            )
            .await
            .map_err(|e| db("watching the RENAME", e))?;
        let waiting = state
            .flatten()
            .is_some_and(|s| s.to_lowercase().contains("metadata lock"));
        if waiting {
            match &sentinel {
                None => break,
                Some(name) => {
                    let probed = probe
                        .query_drop(format!("SELECT 1 FROM {} LIMIT 0", ident(name)))
                        .await;
                    // Lock wait timeout: the RENAME holds the name exclusively.
                    if probed.as_ref().err().and_then(code) == Some(1205) {
                        break;
                    }
                }
            }
        }
        // Writes are held meanwhile: give up within the same budget as the drain, and retry later.
        if handle.is_finished() || queued.elapsed() > budget {
            let _ = probe.query_drop(format!("KILL QUERY {rid}")).await;
            let _ = probe.disconnect().await;
            let _ = handle.await;
            return Ok(Err("the RENAME did not queue behind the lock".into()));
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let _ = probe.disconnect().await;
    Ok(Ok(handle))
}

async fn lower_case_names(conn: &mut Conn) -> bool {
    let v: Option<i64> = conn
        .query_first("SELECT @@lower_case_table_names")
        .await
        .ok()
        .flatten();
    v.unwrap_or(0) != 0
}

/// The name whose exclusive lock shows the RENAME waits for nothing but the table itself: the old
/// table's name, when it is the last of the RENAME's other names in the server's lock order (by
/// bytes, lower-cased under lower_case_table_names). None when no other name sorts before the
/// table (then the RENAME waits on the table first) or only the shadow's does (the shadow can be
/// held briefly by others, so its lock proves nothing).
fn sentinel(job: &Job, lower: bool) -> Option<String> {
    let key = |s: &str| -> Vec<u8> {
        if lower {
            s.to_lowercase().into_bytes()
        } else {
            s.as_bytes().to_vec()
        }
    };
    let t = key(&job.table);
    let (old, new) = (key(&job.names.old), key(&job.names.shadow));
    (old < t && (new > t || new < old)).then(|| job.names.old.clone())
}
