//! What the PostgreSQL tests that run application clients beside a migration share (two
//! application versions, writers and readers through a staged type change): a session whose
//! every statement is bounded, and the loop that runs one client round after round until it is
//! stopped, counting its rounds.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use tokio_postgres::Client;

/// Every statement of `db` bounded by `timeout` (e.g. `20s`): a bug that makes a statement wait
/// fails the test instead of hanging it.
pub async fn bound(db: &Client, timeout: &str) {
    db.batch_execute(&format!("SET statement_timeout = '{timeout}'"))
        .await
        .unwrap();
}

/// A session of its own on `url`, bounded as [`bound`] says.
pub async fn session(url: &str, timeout: &str) -> Client {
    let (db, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    bound(&db, timeout).await;
    db
}

/// The server's message, not only "db error".
pub fn msg(e: &tokio_postgres::Error) -> String {
    e.as_db_error()
        .map(|d| d.message().to_string())
        .unwrap_or_else(|| e.to_string())
}

/// Runs one application version of the two-version tests on a session of its own (statements
/// bounded at 20 s) until `stop`: its writer, built by `make` from the seeded rows it owns (ids
/// 1..=3000 with `id % 2 == parity`, so the two versions never update the same row), comes back
/// with what it kept, beside the errors it met.
pub async fn run_version_client<W: Round>(
    url: &str,
    parity: i64,
    stop: Arc<AtomicBool>,
    ops: Arc<AtomicU64>,
    make: impl FnOnce(Vec<i64>) -> W,
) -> (W, Vec<String>) {
    let owned = (1..=3000).filter(|i| i % 2 == parity).collect();
    run_rounds(make(owned), session(url, "20s").await, stop, ops).await
}

/// One client: what it does in one round (writes, reads them back).
pub trait Round: Send + 'static {
    /// Round `i` (from 1); what went wrong is pushed to `errors`. False: the round does not count
    /// as an operation.
    fn round(
        &mut self,
        db: &Client,
        i: u64,
        errors: &mut Vec<String>,
    ) -> impl Future<Output = bool> + Send;
}

/// Runs `c` round after round on `db` until `stop`, counting the rounds that count in `ops`;
/// returns it (with what it kept) and the errors it met.
pub async fn run_rounds<C: Round>(
    mut c: C,
    db: Client,
    stop: Arc<AtomicBool>,
    ops: Arc<AtomicU64>,
) -> (C, Vec<String>) {
    let mut errors = Vec::new();
    let mut i = 0u64;
    while !stop.load(Ordering::SeqCst) {
        // A closed connection fails every statement at once: end the loop (a task that never
        // waits would keep the runtime from shutting down after a failed assertion).
        if db.is_closed() {
            errors.push("the connection closed".to_string());
            break;
        }
        tokio::task::yield_now().await;
        i += 1;
        if c.round(&db, i, &mut errors).await {
            ops.fetch_add(1, Ordering::SeqCst);
        }
    }
    (c, errors)
}

/// Clients that run until one stop: each on its own session, as [`run_rounds`].
pub struct Clients<C: Round> {
    stop: Arc<AtomicBool>,
    pub ops: Arc<AtomicU64>,
    tasks: Vec<tokio::task::JoinHandle<(C, Vec<String>)>>,
}

impl<C: Round> Default for Clients<C> {
    fn default() -> Self {
        Clients {
            stop: Arc::new(AtomicBool::new(false)),
            ops: Arc::new(AtomicU64::new(0)),
            tasks: Vec::new(),
        }
    }
}

impl<C: Round> Clients<C> {
    pub fn spawn(&mut self, c: C, db: Client) {
        self.tasks.push(tokio::spawn(run_rounds(
            c,
            db,
            self.stop.clone(),
            self.ops.clone(),
        )));
    }

    /// Stops them all; each client with its errors, in the order they were spawned.
    pub async fn stop(self) -> Vec<(C, Vec<String>)> {
        self.stop.store(true, Ordering::SeqCst);
        let mut out = Vec::new();
        for t in self.tasks {
            out.push(t.await.unwrap());
        }
        out
    }
}

/// Waits (up to 2 minutes) until `ops` counts `at_least` rounds.
pub async fn wait_ops(ops: &AtomicU64, at_least: u64) {
    super::eventually(120, "client operations", || async {
        ops.load(Ordering::SeqCst) >= at_least
    })
    .await;
}
