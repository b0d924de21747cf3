//! kill -9 at random moments of a multi-step migration, on each engine, with a writer running: every
//! rerun converges without help, the schema equals the migration applied as written on a twin
//! database, no committed row is lost, and nothing of sluice's is left behind.
//!
//! Kill times are drawn uniformly over the length of an uninterrupted run (measured first), so every
//! phase is hit in proportion to its length: staged DDL, the backfill, index builds, validation, and
//! on MariaDB the copy, catch-up and cut-over. A chain kills the same run several times in a row
//! (resuming a resumed run) before letting it finish. `SLUICE_KILLS` sets how many kills (default
//! 100 per engine), `SLUICE_KILL_SEED` replays a failure's seed.

mod common;

use common::{wait_bounded, Project};
use mysql_async::prelude::Queryable;
use sluice_testkit::Server;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const ROWS: i64 = 8_000;
const KILLS_PER_CHAIN: usize = 4;

/// A small deterministic generator: the seed printed on failure replays the same kill times.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

fn kills_wanted() -> usize {
    std::env::var("SLUICE_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100)
}

fn seed() -> u64 {
    std::env::var("SLUICE_KILL_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        })
}

const PG_TABLES: &str = "CREATE TABLE t (id bigint PRIMARY KEY, n int, u int, note text);
CREATE TABLE child (id bigserial PRIMARY KEY, t_id bigint);
INSERT INTO t SELECT g, g % 100, g, CASE WHEN g % 3 = 0 THEN 'x' || g END FROM generate_series(1, 8000) g;
INSERT INTO child (t_id) SELECT g FROM generate_series(1, 8000, 7) g;";

/// Every staged form `up` has on PostgreSQL, in one migration.
const PG_MIGRATION: &str = "-- sluice:up
ALTER TABLE t ADD COLUMN c text NOT NULL DEFAULT md5(random()::text);
CREATE INDEX t_c_idx ON t (c);
ALTER TABLE t ADD CONSTRAINT t_n_nonneg CHECK (n >= 0);
ALTER TABLE t ALTER COLUMN n SET NOT NULL;
ALTER TABLE t ADD CONSTRAINT t_u_key UNIQUE (u);
ALTER TABLE child ADD CONSTRAINT child_t_fk FOREIGN KEY (t_id) REFERENCES t (id);
CREATE INDEX t_note_idx ON t (note) WHERE note IS NOT NULL;
CREATE INDEX ON t (u, n);
";

const MY_TABLES: &str = "CREATE TABLE t (id BIGINT NOT NULL PRIMARY KEY, n INT NOT NULL, u INT NOT NULL, note VARCHAR(40)) ENGINE=InnoDB;
INSERT INTO t SELECT seq, seq % 100, seq, IF(seq % 3 = 0, CONCAT('x', seq), NULL) FROM seq_1_to_8000;";

/// INSTANT, INPLACE and copy steps in one migration.
const MY_MIGRATION: &str = "-- sluice:up
ALTER TABLE t ADD COLUMN c VARCHAR(32) NULL;
ALTER TABLE t ADD INDEX t_note_idx (note);
ALTER TABLE t MODIFY n BIGINT NOT NULL;
ALTER TABLE t ADD UNIQUE KEY t_u_key (u);
";

/// Inserts and updates rows while sluice runs; remembers which inserts committed.
struct Writer {
    stop: Arc<AtomicBool>,
    errors: Arc<AtomicI64>,
    first_error: Arc<std::sync::Mutex<Option<String>>>,
    task: tokio::task::JoinHandle<Vec<i64>>,
}

impl Writer {
    fn start(server: Server, url: String) -> Writer {
        let stop = Arc::new(AtomicBool::new(false));
        let errors = Arc::new(AtomicI64::new(0));
        let first_error = Arc::new(std::sync::Mutex::new(None));
        let (s, e, fe) = (stop.clone(), errors.clone(), first_error.clone());
        let note = move |err: String| {
            fe.lock().unwrap().get_or_insert(err);
        };
        let task = tokio::spawn(async move {
            let mut committed = Vec::new();
            let mut id = 1_000_000i64;
            match server {
                Server::Postgres => {
                    let (c, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
                        .await
                        .unwrap();
                    tokio::spawn(conn);
                    while !s.load(Ordering::Relaxed) {
                        id += 1;
                        let ins = c
                            .execute(
                                "INSERT INTO t (id, n, u, note) VALUES ($1, 1, $2, 'w')",
                                &[&id, &(id as i32)],
                            )
                            .await;
                        match ins {
                            Ok(_) => committed.push(id),
                            Err(err) => {
                                note(format!("{err:?}"));
                                e.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        let upd = c
                            .execute(
                                "UPDATE t SET note = 'u' || id WHERE id = $1",
                                &[&(id % ROWS + 1)],
                            )
                            .await;
                        if let Err(err) = upd {
                            note(format!("{err:?}"));
                            e.fetch_add(1, Ordering::Relaxed);
                        }
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                }
                Server::MariaDb => {
                    let mut c = mysql_async::Conn::from_url(url.as_str()).await.unwrap();
                    while !s.load(Ordering::Relaxed) {
                        id += 1;
                        let ins = c
                            .exec_drop(
                                "INSERT INTO t (id, n, u, note) VALUES (?, 1, ?, 'w')",
                                (id, id),
                            )
                            .await;
                        match ins {
                            Ok(()) => committed.push(id),
                            Err(err) => {
                                note(format!("INSERT {id}: {err:?}"));
                                e.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        let upd = c
                            .exec_drop(
                                "UPDATE t SET note = CONCAT('u', id) WHERE id = ?",
                                (id % ROWS + 1,),
                            )
                            .await;
                        if let Err(err) = upd {
                            note(format!("UPDATE {}: {err:?}", id % ROWS + 1));
                            e.fetch_add(1, Ordering::Relaxed);
                        }
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                }
            }
            committed
        });
        Writer {
            stop,
            errors,
            first_error,
            task,
        }
    }

    /// The inserts that committed, and the errors with the first one's text.
    async fn finish(self) -> (Vec<i64>, i64, Option<String>) {
        self.stop.store(true, Ordering::Relaxed);
        let committed = self.task.await.unwrap();
        let first = self.first_error.lock().unwrap().clone();
        (committed, self.errors.load(Ordering::Relaxed), first)
    }
}

async fn setup(server: Server) -> Project {
    let p = Project::new(server).await;
    match server {
        Server::Postgres => p.db.pg().await.batch_execute(PG_TABLES).await.unwrap(),
        Server::MariaDb => p.db.my().await.query_drop(MY_TABLES).await.unwrap(),
    }
    p.write(
        "1_change.sql",
        match server {
            Server::Postgres => PG_MIGRATION,
            Server::MariaDb => MY_MIGRATION,
        },
    );
    p
}

/// The schema as the catalogs describe it, names and definitions, in a stable order.
async fn schema(server: Server, p: &Project) -> Vec<String> {
    match server {
        Server::Postgres => {
            let c = p.db.pg().await;
            let mut out = Vec::new();
            for q in [
                "SELECT table_name || '.' || column_name || ' ' || data_type || ' ' || is_nullable || ' ' || coalesce(column_default, '') FROM information_schema.columns WHERE table_schema = 'public' ORDER BY 1",
                "SELECT indexrelid::regclass::text || ' ' || pg_get_indexdef(indexrelid) || ' valid=' || indisvalid FROM pg_index WHERE indrelid::regclass::text IN ('t', 'child') ORDER BY 1",
                "SELECT conrelid::regclass::text || ' ' || conname || ' ' || pg_get_constraintdef(oid) || ' validated=' || convalidated FROM pg_constraint WHERE conrelid::regclass::text IN ('t', 'child') ORDER BY 1",
                "SELECT tgrelid::regclass::text || ' ' || tgname FROM pg_trigger WHERE NOT tgisinternal AND tgrelid::regclass::text NOT LIKE 'sluice.%' ORDER BY 1",
                "SELECT 'table ' || tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1",
            ] {
                for r in c.query(q, &[]).await.unwrap() {
                    out.push(r.get::<_, String>(0));
                }
            }
            out
        }
        Server::MariaDb => {
            let mut c = p.db.my().await;
            let mut out: Vec<String> = c
                .query("SELECT CONCAT('table ', TABLE_NAME) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME NOT LIKE 'sluice\\_%' AND TABLE_NAME NOT LIKE '\\_t\\_old' ORDER BY 1")
                .await
                .unwrap();
            out.extend(
                c.query::<String, _>("SELECT CONCAT('trigger ', TRIGGER_NAME) FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = DATABASE() AND EVENT_OBJECT_TABLE NOT LIKE 'sluice\\_%'")
                    .await
                    .unwrap(),
            );
            let (_, create): (String, String) =
                c.query_first("SHOW CREATE TABLE t").await.unwrap().unwrap();
            // The next AUTO_INCREMENT value is not schema.
            out.extend(
                create
                    .lines()
                    .map(|l| l.split(" AUTO_INCREMENT=").next().unwrap().to_string()),
            );
            out
        }
    }
}

async fn ids(server: Server, p: &Project) -> Vec<i64> {
    match server {
        Server::Postgres => {
            p.db.pg()
                .await
                .query("SELECT id FROM t WHERE c IS NOT NULL ORDER BY id", &[])
                .await
                .unwrap()
                .iter()
                .map(|r| r.get(0))
                .collect()
        }
        Server::MariaDb => {
            p.db.my()
                .await
                .query("SELECT id FROM t ORDER BY id")
                .await
                .unwrap()
        }
    }
}

/// sluice's own leftovers that must be gone once a run has finished.
async fn leftovers(server: Server, p: &Project) -> Vec<String> {
    match server {
        Server::Postgres => {
            let c = p.db.pg().await;
            let mut out: Vec<String> = c
                .query("SELECT 'invalid index ' || indexrelid::regclass::text FROM pg_index WHERE NOT indisvalid", &[])
                .await
                .unwrap()
                .iter()
                .map(|r| r.get(0))
                .collect();
            out.extend(
                c.query("SELECT 'backfill ' || id || ' ' || state FROM sluice.backfills WHERE state <> 'done'", &[])
                    .await
                    .map(|rows| rows.iter().map(|r| r.get::<_, String>(0)).collect::<Vec<_>>())
                    .unwrap_or_default(),
            );
            out
        }
        Server::MariaDb => {
            let r = p.run(&["cleanup"]);
            assert_eq!(r.code, 0, "{r:?}");
            let mut c = p.db.my().await;
            c.query("SELECT CONCAT('table ', TABLE_NAME) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME LIKE '\\_%'")
                .await
                .unwrap()
        }
    }
}

/// The migration as written, on a twin with the same rows: the schema to converge to.
async fn as_written(server: Server) -> Vec<String> {
    let p = setup(server).await;
    let sql = match server {
        Server::Postgres => PG_MIGRATION,
        Server::MariaDb => MY_MIGRATION,
    }
    .replace("-- sluice:up\n", "");
    match server {
        Server::Postgres => p.db.pg().await.batch_execute(&sql).await.unwrap(),
        Server::MariaDb => p.db.my().await.query_drop(&sql).await.unwrap(),
    }
    schema(server, &p).await
}

/// One engine at a time: two kill storms side by side on two cores measure the machine, not sluice.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn kill_at_random_points(server: Server) {
    let _one_at_a_time = SERIAL.lock().await;
    let seed = seed();
    let mut rng = Rng(seed);
    let want = kills_wanted();
    let expected = as_written(server).await;

    // An uninterrupted run gives the span to draw kill times from.
    let p = setup(server).await;
    let started = Instant::now();
    let r = wait_bounded(p.spawn(&["up"]), 300, "an uninterrupted run");
    assert_eq!(r.code, 0, "{r:?}");
    let mut span_ms = (started.elapsed().as_millis() as u64).max(50) * 11 / 10;
    assert_eq!(schema(server, &p).await, expected, "uninterrupted run");
    drop(p);

    let mut kills = 0;
    let mut chains = 0;
    while kills < want {
        chains += 1;
        assert!(
            chains <= want * 3,
            "runs kept finishing before their kill (seed {seed})"
        );
        let p = setup(server).await;
        let writer = Writer::start(server, p.db.url.clone());
        let mut trail = Vec::new();
        for _ in 0..KILLS_PER_CHAIN {
            let at = rng.below(span_ms);
            let spawned = Instant::now();
            let mut child = p.spawn(&["up"]);
            let mut done = child.try_wait().unwrap().is_some();
            while !done && spawned.elapsed() < Duration::from_millis(at) {
                tokio::time::sleep(Duration::from_millis(5)).await;
                done = child.try_wait().unwrap().is_some();
            }
            if done {
                // A whole run from the start finished first: the measured run was slower than
                // this machine is now (its load changes), so later kill times come from this
                // run's span and keep landing inside runs. (A resumed run is shorter: not a span.)
                if trail.is_empty() {
                    span_ms = (spawned.elapsed().as_millis() as u64).max(50) * 11 / 10;
                }
                let out: common::Run = child.wait_with_output().unwrap().into();
                assert_eq!(
                    out.code, 0,
                    "seed {seed}, after kills at {trail:?} ms: {out:?}"
                );
                trail.push(format!("done-before-{at}"));
                break;
            }
            child.kill().unwrap();
            child.wait().unwrap();
            kills += 1;
            trail.push(at.to_string());
        }
        // The rerun converges on its own, and one more has nothing left to do.
        for attempt in ["rerun", "second rerun"] {
            let r = wait_bounded(p.spawn(&["up"]), 300, attempt);
            assert_eq!(
                r.code, 0,
                "seed {seed}, {attempt} after kills at {trail:?} ms: {r:?}"
            );
        }
        let (committed, errors, first) = writer.finish().await;
        assert_eq!(
            errors, 0,
            "seed {seed}, kills at {trail:?}: the writer saw errors, first: {first:?}"
        );
        assert_eq!(
            schema(server, &p).await,
            expected,
            "seed {seed}, kills at {trail:?} ms"
        );
        let have = ids(server, &p).await;
        let mut want_ids: Vec<i64> = (1..=ROWS).chain(committed).collect();
        want_ids.sort();
        assert_eq!(
            have, want_ids,
            "seed {seed}, kills at {trail:?}: rows lost or unfilled"
        );
        let left = leftovers(server, &p).await;
        assert!(
            left.is_empty(),
            "seed {seed}, kills at {trail:?}: left behind {left:?}"
        );
        assert_eq!(p.states(), vec![(1, "applied".into())], "seed {seed}");
    }
    eprintln!("{server:?}: {kills} kills over {chains} chains, span {span_ms} ms, seed {seed}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_kill_9_at_random_points_converges() {
    kill_at_random_points(Server::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_kill_9_at_random_points_converges() {
    kill_at_random_points(Server::MariaDb).await;
}
