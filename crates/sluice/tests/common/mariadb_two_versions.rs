//! What the MariaDB two-version tests (issue 14: rename and drop of a column or a table) share:
//! the loop of one application version's client, the assertions on a run and a migration's state,
//! `SHOW CREATE TABLE` as compared with the as-written twin, and the twin database itself.

use super::{Project, Run};
use mysql_async::prelude::Queryable;
use mysql_async::Conn;
use sluice_testkit::Server;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

/// An identifier quoted for MariaDB.
pub fn q(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

pub fn ok(r: &Run, what: &str) {
    assert_eq!(r.code, 0, "{what}: {r:?}");
}

/// The state `sluice status` gives migration `v`.
pub fn state_of(p: &Project, v: i64) -> Option<String> {
    p.states()
        .into_iter()
        .find(|(x, _)| *x == v)
        .map(|(_, s)| s)
}

pub async fn wait_ops(ops: &AtomicU64, at_least: u64) {
    super::eventually(120, "client operations", || async {
        ops.load(Ordering::SeqCst) >= at_least
    })
    .await;
}

/// One application version: what it does in one round (a write and its read-back).
pub trait Version: Send + 'static {
    /// Round `i` (from 1); what went wrong is pushed to `errors`. False: the round's write failed
    /// and it does not count as an operation.
    fn round(
        &mut self,
        db: &mut Conn,
        i: u64,
        errors: &mut Vec<String>,
    ) -> impl Future<Output = bool> + Send;
}

/// Runs `v` round after round on a session of its own until `stop`, counting rounds in `ops`;
/// returns it (with what it wrote) and the errors it met.
pub async fn run_version<V: Version>(
    mut v: V,
    url: String,
    stop: Arc<AtomicBool>,
    ops: Arc<AtomicU64>,
) -> (V, Vec<String>) {
    let mut db = Conn::from_url(url).await.unwrap();
    // A bug that makes a statement wait fails the test instead of hanging it.
    db.query_drop("SET SESSION max_statement_time = 20, lock_wait_timeout = 20")
        .await
        .unwrap();
    let mut errors = Vec::new();
    let mut i = 0u64;
    while !stop.load(Ordering::SeqCst) {
        i += 1;
        if v.round(&mut db, i, &mut errors).await {
            ops.fetch_add(1, Ordering::SeqCst);
        }
    }
    let _ = db.disconnect().await;
    (v, errors)
}

/// The table type of a name (BASE TABLE, VIEW), None: no such name.
pub async fn kind(c: &mut Conn, name: &str) -> Option<String> {
    c.exec_first(
        "SELECT TABLE_TYPE FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?",
        (name,),
    )
    .await
    .unwrap()
}

/// `SHOW CREATE TABLE`, exactly.
pub async fn show_create_exact(c: &mut Conn, table: &str) -> String {
    let (_, text): (String, String) = c
        .query_first(format!("SHOW CREATE TABLE {}", q(table)))
        .await
        .unwrap()
        .unwrap();
    text
}

/// `SHOW CREATE TABLE` text without the AUTO_INCREMENT counter (the writes move it).
pub fn without_counter(text: &str) -> String {
    text.split(' ')
        .filter(|w| !w.starts_with("AUTO_INCREMENT="))
        .collect::<Vec<_>>()
        .join(" ")
}

/// `SHOW CREATE TABLE` as the table `t` (a twin's index names `<twin>_…` as `t_…`), without the
/// AUTO_INCREMENT counter: what compares a table with its twin.
pub async fn show_create(c: &mut Conn, table: &str) -> String {
    let text = show_create_exact(c, table)
        .await
        .replacen(&format!("CREATE TABLE `{table}`"), "CREATE TABLE `t`", 1)
        .replace(&format!("KEY `{table}_"), "KEY `t_");
    without_counter(&text)
}

/// `table` has the same `SHOW CREATE TABLE` as its twin `twin` (see [`show_create`]).
pub async fn assert_same_as_twin(c: &mut Conn, table: &str, twin: &str, what: &str) {
    assert_eq!(
        show_create(c, table).await,
        show_create(c, twin).await,
        "{what}"
    );
}

/// A database of its own where `files` ran with `up --as-written`: the twin of a database whose
/// breaking migration ran in two phases.
pub async fn as_written_twin(files: &[(&str, &str)]) -> (Project, Conn) {
    let twin = Project::new(Server::MariaDb).await;
    for (file, text) in files {
        twin.write(file, text);
    }
    ok(&twin.run(&["up", "--as-written"]), "twin");
    let db = twin.db.my().await;
    (twin, db)
}
