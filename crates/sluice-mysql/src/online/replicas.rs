//! Replica lag for throttling the copy, measured with a heartbeat sluice writes itself.
//!
//! Why not `Seconds_Behind_Master`: it has whole seconds only, it is NULL when the replica's SQL
//! thread has stopped (so a stopped replica, the one falling behind fastest, would never pause
//! the copy), and it reads 0 while the IO thread itself is behind. Instead, before each chunk sluice
//! writes a growing number into `sluice_heartbeat` on the primary and remembers when it wrote it;
//! a replica's lag is how long ago sluice wrote the oldest number that replica has not applied
//! yet. Both times come from sluice's own clock, so clock skew between hosts does not matter.
//!
//! A replica sluice cannot read (unreachable, heartbeat table not there yet, replication broken)
//! counts as lagging: pausing is the safe side, and the pause says why.

use crate::quote::ident;
use mysql_async::prelude::Queryable;
use mysql_async::Conn;
use sluice_core::dburl::DbUrl;
use sluice_core::error::{Error, Result};
use std::collections::VecDeque;
use std::time::{Duration, Instant};

pub const CREATE_HEARTBEAT: &str = "CREATE TABLE IF NOT EXISTS `sluice_heartbeat` (\
    `id` TINYINT UNSIGNED NOT NULL PRIMARY KEY, \
    `seq` BIGINT UNSIGNED NOT NULL, \
    `written_at` DATETIME(6) NOT NULL) ENGINE=InnoDB";

/// The replica URLs, each checked: a bad one is a usage error, said before any work starts.
pub fn parse_urls(urls: &[String]) -> Result<Vec<DbUrl>> {
    urls.iter()
        .map(|raw| {
            let url = DbUrl::parse(raw)?;
            if !matches!(
                url.kind(),
                sluice_core::target::EngineKind::MySql | sluice_core::target::EngineKind::MariaDb
            ) {
                return Err(Error::usage(
                    format!(
                        "--replica-url {} is not a MariaDB/MySQL URL",
                        url.redacted()
                    ),
                    "give each replica as mysql://user:password@host:3306/dbname",
                ));
            }
            Ok(url)
        })
        .collect()
}

struct Replica {
    url: DbUrl,
    conn: Option<Conn>,
}

/// The replicas the primary knows (`SHOW SLAVE HOSTS`: those that report a host, e.g. with
/// `report_host`), each as the primary's URL with the replica's host and port, kept when sluice
/// can read it with the same credentials; the others are said and not watched (pausing forever on
/// a replica sluice can never read would stall the copy for nothing).
pub async fn discover(
    primary: &mut Conn,
    url: &DbUrl,
    say: &(dyn for<'s> Fn(&'s str) + Send + Sync),
) -> Vec<DbUrl> {
    let rows: Vec<mysql_async::Row> = match primary.query("SHOW SLAVE HOSTS").await {
        Ok(rows) => rows,
        Err(e) => {
            say(&format!(
                "replicas: the primary's list of replicas cannot be read ({}); name them with --replica-url to pause on their lag",
                url.scrub(&e.to_string())
            ));
            return vec![];
        }
    };
    let mut found = Vec::new();
    for r in rows {
        let host: Option<String> = r.get_opt("Host").and_then(|v| v.ok());
        let port: Option<u16> = r.get_opt("Port").and_then(|v| v.ok());
        let (Some(host), Some(port)) = (host.filter(|h| !h.is_empty()), port.filter(|p| *p > 0))
        else {
            say("replicas: a replica reports no host (set report_host on it), so its lag is not watched; or name it with --replica-url");
            continue;
        };
        let Some(replica) = url.with_host_port(&host, port) else {
            continue;
        };
        let read =
            tokio::time::timeout(Duration::from_secs(3), crate::open_session(&replica, true)).await;
        match read {
            Ok(Ok(c)) => {
                let _ = c.disconnect().await;
                found.push(replica);
            }
            Ok(Err(e)) => say(&format!(
                "replicas: replica {host}:{port} (from the primary) cannot be read with the primary's credentials ({}); its lag is not watched: name it with --replica-url",
                replica.scrub(&e.to_string())
            )),
            Err(_) => say(&format!(
                "replicas: replica {host}:{port} (from the primary) does not answer within 3 s; its lag is not watched: name it with --replica-url"
            )),
        }
    }
    if !found.is_empty() {
        say(&format!(
            "replicas: pausing on the lag of {} found on the primary ({})",
            found.len(),
            found
                .iter()
                .map(|u| u.redacted())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    found
}

pub struct Replicas {
    replicas: Vec<Replica>,
    /// The primary's database: the heartbeat is read from the same database on each replica.
    database: String,
    seq: u64,
    /// (seq, when written) of every heartbeat some replica may not have applied yet.
    written: VecDeque<(u64, Instant)>,
}

impl Replicas {
    /// Parses the replica URLs (a bad one is a usage error, said before any work) and prepares
    /// the heartbeat table on the primary.
    pub async fn open(
        urls: &[String],
        discovered: Vec<DbUrl>,
        primary: &mut Conn,
    ) -> Result<Replicas> {
        let replicas = parse_urls(urls)?
            .into_iter()
            .chain(discovered)
            .map(|url| Replica { url, conn: None })
            .collect::<Vec<_>>();
        let database: Option<Option<String>> = primary
            .query_first("SELECT DATABASE()")
            .await
            .map_err(|e| Error::database("reading the current database", e.to_string()))?;
        if !replicas.is_empty() {
            primary
                .query_drop(CREATE_HEARTBEAT)
                .await
                .map_err(|e| Error::database("creating sluice_heartbeat", e.to_string()))?;
        }
        Ok(Replicas {
            replicas,
            database: database.flatten().unwrap_or_default(),
            seq: 0,
            written: VecDeque::new(),
        })
    }

    pub fn is_empty(&self) -> bool {
        self.replicas.is_empty()
    }

    /// Writes the next heartbeat on the primary.
    pub async fn beat(&mut self, primary: &mut Conn) -> Result<()> {
        if self.replicas.is_empty() {
            return Ok(());
        }
        if self.seq == 0 {
            // Continue after whatever an earlier run wrote, so numbers only grow.
            let last: Option<u64> = primary
                .query_first("SELECT `seq` FROM `sluice_heartbeat` WHERE `id` = 1")
                .await
                .map_err(|e| Error::database("reading sluice_heartbeat", e.to_string()))?;
            self.seq = last.unwrap_or(0);
        }
        self.seq += 1;
        primary
            .exec_drop(
                "INSERT INTO `sluice_heartbeat` (`id`, `seq`, `written_at`) VALUES (1, ?, NOW(6)) \
                 ON DUPLICATE KEY UPDATE `seq` = VALUES(`seq`), `written_at` = VALUES(`written_at`)",
                (self.seq,),
            )
            .await
            .map_err(|e| Error::database("writing sluice_heartbeat", e.to_string()))?;
        self.written.push_back((self.seq, Instant::now()));
        Ok(())
    }

    /// The first replica lagging more than `max`, with a reason fit to print; None when all are
    /// within it.
    pub async fn lagging(&mut self, max: Duration) -> Option<String> {
        let mut applied_min = u64::MAX;
        let mut out = None;
        let table = format!("{}.`sluice_heartbeat`", ident(&self.database));
        for r in &mut self.replicas {
            let read: std::result::Result<u64, String> = async {
                if r.conn.is_none() {
                    r.conn = Some(
                        crate::open_session(&r.url, true)
                            .await
                            .map_err(|e| e.to_string())?,
                    );
                }
                let conn = r.conn.as_mut().expect("opened above");
                let seq: Option<u64> = conn
                    .query_first(format!("SELECT `seq` FROM {table} WHERE `id` = 1"))
                    .await
                    .map_err(|e| r.url.scrub(&e.to_string()))?;
                Ok(seq.unwrap_or(0))
            }
            .await;
            match read {
                Ok(seq) => {
                    applied_min = applied_min.min(seq);
                    let behind = self
                        .written
                        .iter()
                        .find(|(s, _)| *s > seq)
                        .map(|(_, at)| at.elapsed())
                        .unwrap_or_default();
                    if behind > max && out.is_none() {
                        out = Some(format!(
                            "replica {} lags {} ms (limit {} ms)",
                            r.url.redacted(),
                            behind.as_millis(),
                            max.as_millis()
                        ));
                    }
                }
                Err(e) => {
                    // Reconnect next time: the session may be what broke.
                    r.conn = None;
                    applied_min = 0;
                    if out.is_none() {
                        out = Some(format!(
                            "cannot read the lag of replica {}: {e}",
                            r.url.redacted()
                        ));
                    }
                }
            }
        }
        // Heartbeats every replica has applied are no longer needed.
        while self.written.front().is_some_and(|(s, _)| *s <= applied_min) {
            self.written.pop_front();
        }
        out
    }
}
