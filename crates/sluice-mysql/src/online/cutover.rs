//! The atomic swap. MariaDB refuses RENAME TABLE under LOCK TABLES, and the change log must be empty
//! at the moment of the swap, so the swap takes three sessions:
//!
//! 1. a lock session takes `LOCK TABLES t READ` (short lock_wait_timeout): reads go on, writes wait;
//! 2. the copy session drains the change log (nothing can be added to it now) and checksums every
//!    key it applied;
//! 3. a third session issues `RENAME TABLE t TO _t_old, _t_new TO t`; once it waits for `t`'s
//!    metadata lock, a pending exclusive request, no client write can be granted before it. It
//!    takes its locks in name order, so sluice checks that the request pending is the one on
//!    `t` (a read of `t` told not to wait times out): waiting for the shadow, which a background
//!    InnoDB task can hold for a moment, it would let held writes into the old table;
//! 4. the lock session unlocks: the RENAME runs first, clients continue on the new table.
//!
//! The RENAME is only issued after the drain, so whenever it runs (even if sluice dies and its
//! lock session with it) the new table is complete. If it gives up waiting, nothing changed and
//! the swap is retried. (Issuing the RENAME before the drain, as gh-ost does on MySQL, lets client
//! writes slip in between UNLOCK and RENAME on MariaDB: the RENAME queues on whichever of its
//! tables sorts first, not necessarily on `t`.)

use super::copy::{code, db, Job, Say};
use super::fks;
use crate::quote::ident;
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts};
use sluice_core::engine::OnlineOptions;
use sluice_core::error::{Error, Result};
use std::time::{Duration, Instant};

/// Test hook: `SLUICE_CRASH_AT=<point>` ends the process at that point of the cut-over the way
/// kill -9 does (no cleanup, connections just drop), so tests can show that a rerun converges
/// from exactly there. Points: `cutover-locked` (writes held, log drained, RENAME not issued),
/// `cutover-fks` (writes held, the shadow given its foreign keys and the children pointed at it,
/// RENAME not issued), `cutover-renamed` (tables swapped, the swap not yet recorded),
/// `swap-fks-settled` (foreign keys have their names back, the old table none),
/// `swap-untriggered` (the triggers dropped, the change log not) and `swap-unlogged` (the change
/// log dropped, the swap not recorded).
pub fn crash_point(point: &str) {
    sluice_core::crash_point(point);
}

/// After each DDL on the table under TOI, before the next: the server re-runs an autocommit
/// statement the DDL aborted only once (`wsrep_retry_autocommit` = 1 by default), so a second DDL
/// right behind the first can abort that re-run too, and the client sees 1213 (measured on the
/// test cluster: 7 such errors among 3 writers over one copy, none with this pause).
pub(crate) const TOI_SETTLE: Duration = Duration::from_millis(300);

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
    analyze_shadow(job, say).await;
    loop {
        catch_up(job, opts, say).await?;
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

/// Gives the shadow statistics of its full contents before it goes live, as the ALTER as written
/// leaves its table. InnoDB keeps the persistent statistics the shadow had when it was created
/// empty until its background recalculation gets to it (never, with `STATS_AUTO_RECALC=0`, which
/// `CREATE TABLE … LIKE` carries over): swapped in like that, the hot table looks empty to the
/// optimizer, and joins start scanning it (seen as clients' deadlocks right after a cut-over).
/// Nobody uses the shadow yet, so this waits for no one. Statistics are not data: a failure is
/// said and the swap goes on.
async fn analyze_shadow(job: &mut Job, say: Say<'_>) {
    let sql = format!("ANALYZE TABLE {}", ident(&job.names.shadow));
    let outcome: std::result::Result<Vec<(String, String)>, _> = job
        .conn
        .query_map(
            sql,
            |(_, _, kind, text): (String, String, String, String)| (kind, text),
        )
        .await;
    let trouble = match outcome {
        Ok(rows) => rows
            .into_iter()
            .find(|(kind, _)| kind.eq_ignore_ascii_case("error"))
            .map(|(_, text)| text),
        Err(e) => Some(e.to_string()),
    };
    if let Some(why) = trouble {
        say(&format!(
            "could not compute the statistics of {} before its swap ({why}): the optimizer may misjudge `{}` until InnoDB recalculates them; run `ANALYZE TABLE {}` after the cut-over",
            job.names.shadow,
            job.table,
            ident(&job.table)
        ));
    }
}

/// Applies the log and verifies what it applied until both are small, so that the part done with
/// writes held is short. Converges as long as sluice applies faster than clients write.
async fn catch_up(job: &mut Job, opts: &OnlineOptions, say: Say<'_>) -> Result<()> {
    let mut last_say = Instant::now();
    let mut meter = job.log_meter(opts, say);
    for round in 0..50 {
        let t0 = Instant::now();
        let applied = job.apply_backlog(&mut meter).await?;
        let apply_ms = t0.elapsed().as_millis();
        if job.overflowed {
            job.verify(opts, say).await?;
            continue;
        }
        let keys = job.touched.len();
        if keys <= 2_000 {
            return Ok(());
        }
        let t1 = Instant::now();
        job.verify_touched().await?;
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
            Ok(Err(e)) => {
                // Nothing was swapped: the children go back to `t`.
                if !job.fks.is_empty() {
                    undo_fks(job).await?;
                }
                Ok(Err(format!("RENAME TABLE failed: {e}")))
            }
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
        let n = job.apply(5_000).await?;
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
    job.verify_touched().await?;
    // The new table continues the original's AUTO_INCREMENT (ids of deleted top rows are not
    // handed out again); the shadow's own counter only follows the ids copied into it. Unless the
    // ALTER set the counter: the shadow has that, raised past the ids copied, as the ALTER gives.
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
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .and_then(|(_, v)| *v)
    };
    if let Some(n) = counter(&job.table).filter(|_| job.carry_counter) {
        if counter(&job.names.shadow).is_none_or(|s| s < n) {
            // Writes are held: wait for someone reading the shadow no longer than the lock
            // timeout, then give up this attempt.
            job.conn
                .query_drop(format!("SET SESSION lock_wait_timeout = {}", secs(budget)))
                .await
                .map_err(|e| db("preparing the cut-over", e))?;
            if let Err(e) = job
                .conn
                .query_drop(format!("ALTER TABLE {new} AUTO_INCREMENT = {n}"))
                .await
            {
                if code(&e) == Some(1205) {
                    return Ok(Err(
                        "another session read the shadow table while writes were held".into(),
                    ));
                }
                return Err(db("carrying the AUTO_INCREMENT counter over", e));
            }
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
    // MariaDB takes lock_wait_timeout = 0 (do not wait); MySQL's minimum is 1 s.
    let _ = probe.query_drop("SET SESSION lock_wait_timeout = 0").await;
    let nowait: Option<i64> = probe
        .query_first("SELECT @@SESSION.lock_wait_timeout")
        .await
        .ok()
        .flatten();
    let nowait = nowait == Some(0);
    // The shadow equals `t` now: it gets its foreign keys and the children's keys are pointed
    // at it, as late as possible (a run killed from here to the RENAME leaves the children on
    // the shadow until the next run puts them back). The RENAME carries both over to `t`.
    let with_fks = !job.fks.is_empty();
    if with_fks {
        let set = job
            .conn
            .query_drop(format!("SET SESSION lock_wait_timeout = {}", secs(budget)))
            .await;
        let ready = match set {
            Ok(()) => fks::before_rename(&mut job.conn, &job.names, &job.table, &job.fks).await,
            Err(e) => Err(db("preparing the cut-over", e)),
        };
        if let Err(e) = ready {
            let _ = r.disconnect().await;
            let _ = probe.disconnect().await;
            undo_fks(job).await?;
            return Ok(Err(format!(
                "setting up the foreign keys with writes held failed: {e}"
            )));
        }
        crash_point("cutover-fks");
    }
    let sql = format!("RENAME TABLE {t} TO {old}, {new} TO {t}");
    // Right after the RENAME, from its own session: the old table lets go of its keys, so that
    // a row deleted from the new table since does not hold its parent row there (a client's
    // valid parent DELETE would fail). A failure here is mended by `fks::after_rename`.
    let release = fks::drop_from_old(&job.names, &job.table, &job.fks);
    let handle: Rename = tokio::spawn(async move {
        let res = r.query_drop(sql).await.map_err(|e| e.to_string());
        if let (Ok(()), Some(release)) = (&res, release) {
            let _ = r.query_drop(release).await;
        }
        let _ = r.disconnect().await;
        res
    });
    // Unlock only once the RENAME's exclusive request on `t` itself is pending. It takes its
    // locks in name order, and a background InnoDB task (statistics after the copy) can hold
    // the shadow's for a moment: waiting there, it would let the held writes run first, into
    // the old table. A read of `t` that may not wait times out exactly while an exclusive
    // request on `t` is pending (or granted). On MySQL, where a read cannot be told not to
    // wait, the RENAME's state is all there is to go by.
    let queued = Instant::now();
    let outcome: std::result::Result<(), String> = loop {
        let state: Option<Option<String>> = match probe
            .exec_first(
                "SELECT STATE FROM information_schema.PROCESSLIST WHERE ID = ?",
                (rid,),
            )
            .await
        {
            Ok(s) => s,
            Err(e) => break Err(format!("watching the RENAME failed: {e}")),
        };
        let waiting = state
            .flatten()
            .is_some_and(|s| s.to_lowercase().contains("table metadata lock"));
        if waiting {
            if !nowait {
                break Ok(());
            }
            let probed = probe.query_drop(format!("SELECT 1 FROM {t} LIMIT 0")).await;
            if probed.as_ref().err().and_then(code) == Some(1205) {
                break Ok(());
            }
        }
        if handle.is_finished() {
            break Err("the RENAME ended before it queued".into());
        }
        // Writes are held meanwhile: give up within the same budget as the drain, retry later.
        if queued.elapsed() > budget {
            break Err("the RENAME did not queue behind the lock in time".into());
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    };
    let _ = probe.disconnect().await;
    let result = finish_attempt(job, conn_opts, outcome, handle, rid).await;
    if with_fks && !matches!(result, Ok(Ok(_))) {
        undo_fks(job).await?;
    }
    result
}

/// Puts the foreign keys back as before the attempt (the writes are still held), retrying a
/// lock timeout a few times.
async fn undo_fks(job: &mut Job) -> Result<()> {
    let mut last = None;
    for _ in 0..5 {
        match fks::undo(&mut job.conn, &job.names, &job.table, &job.fks).await {
            Ok(()) => return Ok(()),
            Err(e) => last = Some(e),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(last.expect("an attempt failed"))
}

async fn finish_attempt(
    job: &mut Job,
    conn_opts: &Opts,
    outcome: std::result::Result<(), String>,
    handle: Rename,
    rid: u64,
) -> Result<std::result::Result<Rename, String>> {
    match outcome {
        Ok(()) => Ok(Ok(handle)),
        Err(why) => {
            // It cannot have run (it needs `t`, which the lock session holds); make sure it
            // never runs after the unlock, from a fresh session in case the probe broke.
            if !handle.is_finished() {
                if let Ok(mut k) = Conn::new(conn_opts.clone()).await {
                    let _ = k.query_drop(format!("KILL QUERY {rid}")).await;
                    let _ = k.disconnect().await;
                }
            }
            let ended = tokio::time::timeout(Duration::from_secs(15), handle).await;
            match ended {
                Ok(Ok(Err(e))) if why.contains("ended before") => {
                    Ok(Err(format!("RENAME TABLE failed: {e}")))
                }
                Ok(Ok(Ok(()))) => Err(Error::database(
                    format!("swapping `{}`", job.table),
                    "the RENAME ran although it had not been seen queueing; check the change log for late changes",
                )),
                Ok(_) => Ok(Err(why)),
                Err(_) => Err(Error::database(
                    format!("swapping `{}`", job.table),
                    "the RENAME could not be stopped; the lock session is released now",
                )),
            }
        }
    }
}

/// The cut-over on a Galera node, with no table lock anywhere: a lock on one node blocks its
/// applier, and flow control then stalls every node (measured: a cluster wedged 233 s). Each DDL
/// on the table under TOI aborts the statements open on it on every node, so the only one here
/// is the RENAME (the copy's three CREATE TRIGGERs were the others):
///
/// 1. the control table's flag row is set (`Job::galera_triggers`): from here each client change
///    reaches the shadow in the client's own transaction and nothing is logged any more. A row
///    update, replicated as a row: it waits for (on this node) or aborts (elsewhere) only the
///    client statements holding the flag's read lock, which the server re-runs (a transaction
///    that read the flag before logs its change, drained below);
/// 2. the log is drained. Each apply re-reads the original's current row by key, so applying a
///    change also written directly is harmless; a client writing the same key on another node
///    meanwhile conflicts with the apply on the shadow row by certification, and whichever
///    commits second is aborted (sluice retries its own), so the later write wins;
/// 3. one consistent snapshot reads the (empty) log and both whole tables: their checksums must
///    be equal, or nothing is swapped;
/// 4. `RENAME TABLE t TO _t_old, _t_new TO t` swaps them in one statement. The triggers go with
///    `t` to `_t_old` and are dropped there afterwards (`finish_swap`), where no client writes.
///
/// A run killed anywhere converges: before the RENAME a rerun finds the shadow kept in sync by
/// the triggers, logging or writing it directly, drains and re-verifies the whole table, and
/// comes back here (each step is idempotent); after it, the swap is recorded as on any server.
/// Returns how long the RENAME took (what clients on every node waited for).
pub async fn galera_swap(job: &mut Job, opts: &OnlineOptions, say: Say<'_>) -> Result<Duration> {
    // No ANALYZE TABLE of the shadow here: under TOI it aborts every statement writing `t`,
    // whose triggers name the shadow (see `setup`); InnoDB recalculates the statistics of a table
    // that changed this much by itself.
    catch_up(job, opts, say).await?;
    let ctl = ident(&job.names.ctl);
    let flag: Option<u8> = job
        .conn
        .query_first(format!("SELECT `direct` FROM {ctl} WHERE `id` = 1"))
        .await
        .map_err(|e| db("reading the copy's control row", e))?;
    // Not written again when an earlier, killed run set it: each write aborts statements.
    if flag != Some(1) {
        let sql = format!("UPDATE {ctl} SET `direct` = 1 WHERE `id` = 1");
        toi(job, &sql, opts, say).await?;
    }
    crash_point("galera-direct");
    let started = Instant::now();
    let mut drained = 0;
    loop {
        let n = job.apply(5_000).await?;
        drained += n;
        if n == 0 {
            break;
        }
    }
    crash_point("galera-unlogged");
    if job.overflowed {
        job.verify(opts, say).await?;
    } else {
        job.verify_touched().await?;
    }
    // The new table continues the original's AUTO_INCREMENT, as in `under_lock`. Raised when
    // behind only; an insert into `t` after this reaches the shadow too and raises both. This DDL
    // on the shadow aborts the statements writing `t` (their triggers name it): a fifth DDL, when
    // needed. After the flag, so the clients' write sets hold shadow rows and are ordered by
    // certification against it rather than applied beside it.
    if job.carry_counter {
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
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .and_then(|(_, v)| *v)
        };
        if let Some(n) = counter(&job.table) {
            if counter(&job.names.shadow).is_none_or(|s| s < n) {
                let sql = format!(
                    "ALTER TABLE {} AUTO_INCREMENT = {n}",
                    ident(&job.names.shadow)
                );
                toi(job, &sql, opts, say).await?;
            }
        }
    }
    let mut equal = false;
    let mut last = String::new();
    for _ in 0..5 {
        let (pending, a, b) = job.snapshot_sums().await?;
        if pending > 0 {
            // Logged by a transaction that read the flag before it was set and committed since
            // (on another node, maybe after this node's update).
            job.drain(100, None).await?;
            continue;
        }
        if a == b {
            equal = true;
            break;
        }
        last = format!(
            "{} rows with checksum {:x} in `{}`, {} rows with checksum {:x} in {}",
            a.0, a.1, job.table, b.0, b.1, job.names.shadow
        );
        break;
    }
    if !equal {
        return Err(Error::Database {
            context: format!("verifying the online copy of `{}` before its swap", job.table),
            message: format!(
                "with every change written to both tables in one transaction, one snapshot still sees them differ ({}); nothing was swapped",
                if last.is_empty() { "the change log kept filling".to_string() } else { last }
            ),
            help: "run `sluice up` again: it re-verifies the whole copy (re-copying what differs) before trying the swap again; if it fails the same way, `sluice cleanup --abort` removes the copy".into(),
        });
    }
    say(&format!(
        "cut-over of `{}` (Galera, no table lock): triggers write the copy directly, applied {drained} logged change(s) and checksummed both tables in one snapshot in {} ms",
        job.table,
        started.elapsed().as_millis()
    ));
    crash_point("galera-verified");
    let t = ident(&job.table);
    let rename = format!(
        "RENAME TABLE {t} TO {}, {} TO {t}",
        ident(&job.names.old),
        ident(&job.names.shadow)
    );
    let t0 = Instant::now();
    toi(job, &rename, opts, say).await?;
    Ok(t0.elapsed())
}

/// One step of the Galera cut-over on the copy's session (a DDL, or the control row's update),
/// waiting for a metadata or row lock no longer than the lock timeout and retried, with backoff,
/// up to `lock_retry_for`: a long transaction on this node holding the table (or the flag's read
/// lock) steps the cut-over back rather than queueing clients behind it.
async fn toi(job: &mut Job, sql: &str, opts: &OnlineOptions, say: Say<'_>) -> Result<()> {
    let secs = secs(opts.lock_timeout);
    job.conn
        .query_drop(format!(
            "SET SESSION lock_wait_timeout = {secs}, SESSION innodb_lock_wait_timeout = {secs}"
        ))
        .await
        .map_err(|e| db("preparing the cut-over", e))?;
    let deadline = Instant::now() + opts.lock_retry_for;
    let mut backoff = Duration::from_millis(100);
    loop {
        match job.conn.query_drop(sql).await {
            Ok(()) => {
                tokio::time::sleep(TOI_SETTLE).await;
                return Ok(());
            }
            Err(e) if matches!(code(&e), Some(1205 | 1213 | 1047)) => {
                if Instant::now() + backoff > deadline {
                    return Err(Error::Database {
                        context: format!("cut-over of `{}`", job.table),
                        message: format!(
                            "`{}` gave up after {} s: {e}",
                            sql.split_whitespace().take(4).collect::<Vec<_>>().join(" "),
                            opts.lock_retry_for.as_secs()
                        ),
                        help: "long transactions on the table hold its metadata lock; the copy is kept in sync meanwhile: run `sluice up` again when they are done".into(),
                    });
                }
                say(&format!(
                    "cut-over of `{}` postponed: {e}; retrying in {} ms",
                    job.table,
                    backoff.as_millis()
                ));
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(10));
            }
            Err(e) => return Err(db(&format!("cut-over of `{}`", job.table), e)),
        }
    }
}
