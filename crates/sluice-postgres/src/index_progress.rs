//! How far a running index build is (`CREATE INDEX [CONCURRENTLY]`, the staged unique and primary key
//! builds, REINDEX, ADD PRIMARY KEY/UNIQUE), read from `pg_stat_progress_create_index` on a session
//! of its own while the work session is busy with the statement.
//!
//! The watch never fails the statement: it starts only once the statement has run for one
//! interval (short statements cost nothing), and a connection refused, a poll that fails or a
//! session killed just ends the reporting.

use sluice_core::dburl::DbUrl;
use sluice_core::progress::{self, Meter, Progress, Say};
use std::time::{Duration, Instant};
use tokio_postgres::Config;
use tokio_postgres_rustls::MakeRustlsConnect;

/// The application_name of the watching session (tests find it by this).
pub const APPLICATION_NAME: &str = "sluice progress";

const POLL: &str = "SELECT p.command, p.phase,
        coalesce(nullif(p.index_relid, 0)::regclass::text, '?'), p.relid::regclass::text,
        p.blocks_done, p.blocks_total, p.tuples_done, p.tuples_total,
        p.lockers_done, p.lockers_total
   FROM pg_stat_progress_create_index p WHERE p.pid = $1";

/// Reports the progress of whatever index the backend `pid` builds, until dropped; never returns.
pub async fn watch(
    (config, tls, url): (&Config, &MakeRustlsConnect, &DbUrl),
    pid: i32,
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
    let mut cfg = config.clone();
    cfg.application_name(APPLICATION_NAME);
    match crate::open(&cfg, tls, url).await {
        Ok(client) => {
            let mut meter: Option<Meter<'_>> = None;
            loop {
                match client.query_opt(POLL, &[&pid]).await {
                    Ok(Some(row)) => {
                        let task = format!(
                            "{} {} on {}",
                            row.get::<_, String>(0),
                            row.get::<_, String>(2),
                            row.get::<_, String>(3)
                        );
                        let n = |i: usize| row.get::<_, Option<i64>>(i).unwrap_or(0).max(0) as u64;
                        let phase: String = row.get(1);
                        let (unit, done, total) =
                            counted(&phase, [n(4), n(5), n(6), n(7), n(8), n(9)]);
                        let m = match &mut meter {
                            Some(m) if m.task() == task => m,
                            _ => meter.insert(Meter::new(task, unit, sink, say).since(started)),
                        };
                        m.phase(&phase, unit);
                        m.update(done, total, "");
                    }
                    // Not an index build, or between two of them.
                    Ok(None) => {}
                    Err(e) => {
                        tracing::debug!("index build progress: polling stopped: {e}");
                        break;
                    }
                }
                tokio::time::sleep(every).await;
            }
        }
        Err(e) => tracing::debug!("index build progress: no session to poll from: {e}"),
    }
    std::future::pending().await
}

/// What a phase counts: waits count the transactions waited for, the table scans blocks, the
/// sort's load tuples. `n`: blocks done/total, tuples done/total, lockers done/total.
fn counted(phase: &str, n: [u64; 6]) -> (&'static str, u64, u64) {
    let [bd, bt, td, tt, ld, lt] = n;
    if phase.starts_with("waiting") {
        ("transactions", ld, lt)
    } else if phase.contains("loading tuples") || (bt == 0 && tt > 0) {
        ("tuples", td, tt)
    } else {
        ("blocks", bd, bt)
    }
}

#[cfg(test)]
mod tests {
    use super::counted;

    #[test]
    fn each_phase_counts_what_moves_in_it() {
        let n = [10, 40, 100, 400, 1, 3];
        let cases = [
            ("waiting for writers before build", ("transactions", 1, 3)),
            ("waiting for old snapshots", ("transactions", 1, 3)),
            ("building index: scanning table", ("blocks", 10, 40)),
            ("building index: sorting live tuples", ("blocks", 10, 40)),
            (
                "building index: loading tuples in tree",
                ("tuples", 100, 400),
            ),
            ("index validation: scanning table", ("blocks", 10, 40)),
            ("initializing", ("blocks", 10, 40)),
        ];
        for (phase, want) in cases {
            assert_eq!(counted(phase, n), want, "{phase}");
        }
        assert_eq!(
            counted("index validation: scanning index", [0, 0, 5, 9, 0, 0]),
            ("tuples", 5, 9)
        );
    }
}
