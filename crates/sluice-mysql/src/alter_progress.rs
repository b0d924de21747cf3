//! How far a running ALTER TABLE is (the online copy's deferred secondary-index build), read on a
//! connection of its own while the work connection is busy with the statement.
//!
//! MariaDB reports ALTER progress per thread in `information_schema.PROCESSLIST` (STAGE,
//! MAX_STAGE, PROGRESS in percent) for the statements that copy rows (ALGORITHM=COPY). An InnoDB
//! in-place index build leaves those at 0 and moves only the server-wide status counter
//! `Innodb_onlineddl_pct_progress` (hundredths of a percent) instead; that one is read while the
//! watched thread runs an ALTER and reports no stages of its own.
//!
//! The watch never fails the statement: it starts only once the statement has run for one
//! interval (short statements cost nothing), and a refused connection, a poll that fails or a
//! connection killed just ends the reporting.

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts};
use sluice_core::progress::{self, Meter, Progress, Say};
use std::time::{Duration, Instant};

/// The watched thread while it runs an ALTER: its stage, stages, percent and state, and the
/// InnoDB in-place counter.
const POLL: &str = "SELECT CAST(p.STAGE AS SIGNED), CAST(p.MAX_STAGE AS SIGNED), \
        CAST(FLOOR(p.PROGRESS) AS SIGNED), p.STATE, \
        (SELECT CAST(s.VARIABLE_VALUE AS SIGNED) FROM information_schema.GLOBAL_STATUS s \
          WHERE s.VARIABLE_NAME = 'INNODB_ONLINEDDL_PCT_PROGRESS') \
   FROM information_schema.PROCESSLIST p \
  WHERE p.ID = ? AND p.COMMAND = 'Query' AND p.INFO LIKE 'ALTER TABLE%'";

/// Reports the progress of the ALTER that connection `id` runs, as `task`, until dropped; never
/// returns.
pub async fn watch(
    opts: Opts,
    id: u32,
    task: String,
    sink: Option<&Progress>,
    say: Say<'_>,
) -> std::convert::Infallible {
    let started = Instant::now();
    // A bar on a terminal moves smoothly; log lines come once per interval anyway.
    let every = match sink {
        Some(_) => progress::interval().min(Duration::from_millis(500)),
        None => progress::interval(),
    };
    tokio::time::sleep(every).await;
    match Conn::new(opts).await {
        Ok(mut conn) => {
            let mut meter = Meter::new(task, "percent", sink, say).since(started);
            loop {
                type Row = (
                    Option<i64>,
                    Option<i64>,
                    Option<i64>,
                    Option<String>,
                    Option<i64>,
                );
                match conn.exec_first::<Row, _, _>(POLL, (id,)).await {
                    Ok(Some((stage, max_stage, pct, state, innodb))) => {
                        let (phase, done) = reading(
                            stage.unwrap_or(0),
                            max_stage.unwrap_or(0),
                            pct.unwrap_or(0),
                            state.as_deref().unwrap_or(""),
                            innodb.unwrap_or(0),
                        );
                        meter.phase(&phase, "percent");
                        match done {
                            Some(done) => meter.update(done, 100, ""),
                            // A step without a count (InnoDB committing the build).
                            None => meter.update(0, 0, ""),
                        }
                    }
                    // Between two statements.
                    Ok(None) => {}
                    Err(e) => {
                        tracing::debug!("ALTER progress: polling stopped: {e}");
                        break;
                    }
                }
                tokio::time::sleep(every).await;
            }
            drop(meter);
            let _ = conn.disconnect().await;
        }
        Err(e) => tracing::debug!("ALTER progress: no connection to poll from: {e}"),
    }
    std::future::pending().await
}

/// The phase and percent done of one poll: the thread's own stages when the server reports them,
/// else, while InnoDB builds in place ("altering table"), its counter (hundredths of a percent);
/// the steps around that build count nothing (None).
fn reading(
    stage: i64,
    max_stage: i64,
    pct: i64,
    state: &str,
    innodb: i64,
) -> (String, Option<u64>) {
    let state = if state.is_empty() {
        "altering table"
    } else {
        state
    };
    if max_stage > 0 {
        let stage = stage.clamp(1, max_stage);
        (
            format!("stage {stage} of {max_stage}: {state}"),
            Some(pct.clamp(0, 100) as u64),
        )
    } else if state.eq_ignore_ascii_case(IN_PLACE) {
        (
            format!("{state} (in-place)"),
            Some((innodb / 100).clamp(0, 100) as u64),
        )
    } else {
        (format!("{state} (in-place)"), None)
    }
}

/// The thread state while InnoDB builds in place, the only time its counter is this build's.
const IN_PLACE: &str = "altering table";

#[cfg(test)]
mod tests {
    use super::reading;

    #[test]
    fn stages_when_the_server_reports_them_else_the_innodb_counter() {
        let cases = [
            (
                (1, 2, 37, "copy to tmp table", 0),
                ("stage 1 of 2: copy to tmp table", 37),
            ),
            (
                (2, 2, 0, "Enabling keys", 0),
                ("stage 2 of 2: Enabling keys", 0),
            ),
            (
                (0, 2, 5, "After create", 0),
                ("stage 1 of 2: After create", 5),
            ),
            (
                (0, 0, 0, "altering table", 4620),
                ("altering table (in-place)", 46),
            ),
            ((0, 0, 0, "", 10_000), ("altering table (in-place)", 100)),
            // Out of range readings stay within 0..=100.
            ((3, 2, 250, "x", 0), ("stage 2 of 2: x", 100)),
            (
                (0, 0, 0, "altering table", -5),
                ("altering table (in-place)", 0),
            ),
        ];
        for ((s, m, p, st, i), (phase, done)) in cases {
            assert_eq!(
                reading(s, m, p, st, i),
                (phase.to_string(), Some(done)),
                "{st}"
            );
        }
        // Around the in-place build the counter is not this build's (it resets, or is another's).
        for st in [
            "End of update loop",
            "committing alter table to storage engine",
            "preparing for alter table",
        ] {
            assert_eq!(
                reading(0, 0, 0, st, 9_000),
                (format!("{st} (in-place)"), None),
                "{st}"
            );
        }
    }
}
