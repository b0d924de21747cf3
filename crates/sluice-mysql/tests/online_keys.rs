//! The MariaDB online copy against unique keys and the AUTO_INCREMENT/clustering details of the
//! result: each case runs the copy on `t` while a client writes `t` and `mirror` in the same
//! transactions, then applies the ALTER as written to a copy of `mirror` (the twin) and compares
//! rows, definition and counter; or, where the ALTER as written fails, requires the same failure
//! with `t` unchanged and reruns that never swap.

use mysql_async::prelude::Queryable;
use mysql_async::Conn;
use sluice_core::dburl::DbUrl;
use sluice_core::engine::prelude::*;
use sluice_core::engine::OnlineOptions;
use sluice_core::Error;
use sluice_mysql::MySqlEngine;
use sluice_testkit::TestDb;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

async fn engine(db: &TestDb) -> MySqlEngine {
    MySqlEngine::connect(&DbUrl::parse(&db.url).unwrap())
        .await
        .unwrap()
}

async fn count(c: &mut Conn, sql: &str) -> i64 {
    c.query_first::<i64, _>(sql).await.unwrap().unwrap_or(0)
}

fn quiet() -> impl Fn(&str) + Send + Sync {
    |_: &str| {}
}

fn opts(postpone: bool) -> OnlineOptions {
    OnlineOptions {
        target_chunk: Duration::from_millis(2),
        lock_retry_for: Duration::from_secs(60),
        postpone_cutover: postpone,
        ..Default::default()
    }
}

/// Every row of `t` in key order, all columns as text: the exact content, not a checksum.
async fn rows(c: &mut Conn, t: &str) -> Vec<String> {
    let cols: Vec<String> = c
        .exec(
            "SELECT CONCAT('`', COLUMN_NAME, '`') FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() \
             AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION",
            (t,),
        )
        .await
        .unwrap();
    let list = cols.join(", ");
    c.query(format!(
        "SELECT CONCAT_WS('|', {}) FROM `{t}` ORDER BY {list}",
        cols.iter()
            .map(|c| format!("COALESCE({c}, 'NULL')"))
            .collect::<Vec<_>>()
            .join(", ")
    ))
    .await
    .unwrap()
}

/// `SHOW CREATE TABLE` with the table's own name left out.
async fn definition(c: &mut Conn, t: &str) -> String {
    let (_, ddl): (String, String) = c
        .query_first(format!("SHOW CREATE TABLE `{t}`"))
        .await
        .unwrap()
        .unwrap();
    ddl.replacen(&format!("CREATE TABLE `{t}`"), "CREATE TABLE", 1)
}

/// The index InnoDB clusters the table by.
async fn clustered(c: &mut Conn, t: &str) -> String {
    c.exec_first(
        "SELECT i.NAME FROM information_schema.INNODB_SYS_INDEXES i JOIN information_schema.INNODB_SYS_TABLES s \
         ON s.TABLE_ID = i.TABLE_ID WHERE s.NAME = CONCAT(DATABASE(), '/', ?) AND i.TYPE & 1 = 1",
        (t,),
    )
    .await
    .unwrap()
    .unwrap()
}

/// Nothing of the copy is left: no aux table, no trigger, no state row unless `swapped`.
async fn nothing_left(c: &mut Conn) {
    let aux: Vec<String> = c
        .query("SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME LIKE '\\_%' AND TABLE_NAME NOT LIKE '%\\_old'")
        .await
        .unwrap();
    assert!(aux.is_empty(), "left behind: {aux:?}");
    let triggers: Vec<String> = c
        .query("SELECT TRIGGER_NAME FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = DATABASE()")
        .await
        .unwrap();
    assert!(triggers.is_empty(), "left behind: {triggers:?}");
}

/// The twin: `mirror` copied and altered as written; Err is the server's message.
async fn as_written(c: &mut Conn, rest: &str) -> Result<(), String> {
    c.query_drop(format!(
        "DROP TABLE IF EXISTS expect; CREATE TABLE expect LIKE mirror; {}",
        keep_zero("INSERT INTO expect SELECT * FROM mirror")
    ))
    .await
    .unwrap();
    copy_counter(c, "mirror", "expect").await;
    c.query_drop(format!("ALTER TABLE expect {rest}"))
        .await
        .map_err(|e| e.to_string())
}

/// Gives `to` the AUTO_INCREMENT counter of `from` (CREATE TABLE LIKE starts at 1).
async fn copy_counter(c: &mut Conn, from: &str, to: &str) {
    let ddl = definition(c, from).await;
    if let Some((_, n)) = ddl.split_once(" AUTO_INCREMENT=") {
        let next: u64 = n.split(' ').next().unwrap().parse().unwrap();
        c.query_drop(format!("ALTER TABLE `{to}` AUTO_INCREMENT = {next}"))
            .await
            .unwrap();
    }
}

/// `sql` run so that an AUTO_INCREMENT column's 0 stays 0.
fn keep_zero(sql: &str) -> String {
    format!("SET @m = @@sql_mode; SET sql_mode = CONCAT(@@sql_mode, ',NO_AUTO_VALUE_ON_ZERO'); {sql}; SET sql_mode = @m")
}

/// Asserts `t` equals the twin: rows, definition, clustered index, next AUTO_INCREMENT value.
async fn equals_as_written(c: &mut Conn, case: &str, rest: &str) {
    as_written(c, rest)
        .await
        .unwrap_or_else(|e| panic!("{case}: the ALTER as written failed: {e}"));
    assert_eq!(rows(c, "t").await, rows(c, "expect").await, "{case}: rows");
    assert_eq!(
        definition(c, "t").await,
        definition(c, "expect").await,
        "{case}: definition"
    );
    assert_eq!(
        clustered(c, "t").await,
        clustered(c, "expect").await,
        "{case}: clustered index"
    );
}

/// Duplicate entry '…' for key '…', from a server message.
fn duplicate(message: &str) -> &str {
    let start = message
        .find("Duplicate entry")
        .unwrap_or_else(|| panic!("no duplicate in {message}"));
    let rest = &message[start..];
    let end = rest.find("' for key '").expect("key named") + 11;
    let end = end + rest[end..].find('\'').expect("key ends");
    &rest[..=end]
}

type Script = fn(&mut dyn FnMut(u64) -> u64, &str) -> String;

/// One client running `script` against `t` and `mirror` in one transaction each time, with the
/// same random choices for both; returns the errors it saw.
async fn writer(
    url: String,
    seed: u64,
    script: Script,
    stop: Arc<AtomicBool>,
    ops: Arc<AtomicU64>,
) -> Vec<String> {
    let mut c = Conn::from_url(url).await.unwrap();
    let mut x = seed;
    let mut errors = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        let mut draws = Vec::new();
        let mut i = 0;
        let sql_t = script(
            &mut |n| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                draws.push(x % n);
                x % n
            },
            "t",
        );
        let sql_m = script(
            &mut |_| {
                i += 1;
                draws[i - 1]
            },
            "mirror",
        );
        let sql = format!("START TRANSACTION; {sql_t}; {sql_m}; COMMIT");
        match c.query_drop(&sql).await {
            Ok(()) => {
                ops.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                let _ = c.query_drop("ROLLBACK").await;
                errors.push(format!("{e} in {sql}"));
            }
        }
    }
    errors
}

/// Two distinct ids in 1..=n, ascending.
fn two(r: &mut dyn FnMut(u64) -> u64, n: u64) -> (u64, u64) {
    let a = r(n) + 1;
    let b = (a + r(n - 1)) % n + 1;
    (a.min(b), a.max(b))
}

/// Two users exchange their emails (through a placeholder, as the original's own unique key
/// requires), or one row changes otherwise. The values are read from `mirror` (equal to `t`
/// between transactions): a transaction that reads `t` before the cut-over's lock and writes it
/// after can be chosen as the victim of a metadata lock deadlock with the RENAME.
fn swap_two(r: &mut dyn FnMut(u64) -> u64, t: &str) -> String {
    let (a, b) = two(r, 3000);
    match r(4) {
        0 => format!("UPDATE {t} SET n = n + 1 WHERE id = {a}"),
        _ => format!(
            "SELECT email INTO @ea FROM mirror WHERE id = {a}; SELECT email INTO @eb FROM mirror WHERE id = {b}; \
             UPDATE {t} SET email = CONCAT('~', id) WHERE id = {a}; UPDATE {t} SET email = @ea WHERE id = {b}; \
             UPDATE {t} SET email = @eb WHERE id = {a}"
        ),
    }
}

/// Three users pass their emails round.
fn cycle_three(r: &mut dyn FnMut(u64) -> u64, t: &str) -> String {
    let a = r(2998) + 1;
    let (b, c) = (a + 1, a + 2);
    format!(
        "SELECT email INTO @ea FROM mirror WHERE id = {a}; SELECT email INTO @eb FROM mirror WHERE id = {b}; \
         SELECT email INTO @ec FROM mirror WHERE id = {c}; UPDATE {t} SET email = CONCAT('~', id) WHERE id = {a}; \
         UPDATE {t} SET email = @ea WHERE id = {b}; UPDATE {t} SET email = CONCAT('~', id) WHERE id = {c}; \
         UPDATE {t} SET email = @eb WHERE id = {c}; UPDATE {t} SET email = @ec WHERE id = {a}"
    )
}

/// A sortable list: an item moves from one position to another, the items between shift by one.
fn reorder(r: &mut dyn FnMut(u64) -> u64, t: &str) -> String {
    let list = r(30);
    let (p, q) = two(r, 99);
    if r(2) == 0 {
        format!(
            "UPDATE {t} SET pos = -1 WHERE list_id = {list} AND pos = {p}; \
             UPDATE {t} SET pos = pos - 1 WHERE list_id = {list} AND pos > {p} AND pos <= {q} ORDER BY pos; \
             UPDATE {t} SET pos = {q} WHERE list_id = {list} AND pos = -1"
        )
    } else {
        format!(
            "UPDATE {t} SET pos = -1 WHERE list_id = {list} AND pos = {q}; \
             UPDATE {t} SET pos = pos + 1 WHERE list_id = {list} AND pos >= {p} AND pos < {q} ORDER BY pos DESC; \
             UPDATE {t} SET pos = {p} WHERE list_id = {list} AND pos = -1"
        )
    }
}

struct Case {
    name: &'static str,
    create: &'static str,
    alter: &'static str,
    script: Script,
}

const USERS: &str = "CREATE TABLE t (id INT PRIMARY KEY, email VARCHAR(40) NOT NULL, n INT NOT NULL, UNIQUE KEY email (email)); \
    INSERT INTO t SELECT seq, CONCAT('u', seq, '@example.com'), seq FROM seq_1_to_3000";

/// Valid client transactions that exchange unique values, while the copy runs and while the
/// verified copy waits for its cut-over (the log then holds thousands of entries, applied in
/// batches with the unique index in place): the result equals the ALTER as written.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn clients_exchanging_unique_values_get_the_as_written_result() {
    let cases = [
        Case {
            name: "single column, two rows swap",
            create: USERS,
            alter: "MODIFY n BIGINT NOT NULL",
            script: swap_two,
        },
        Case {
            name: "single column, three rows in a cycle",
            create: USERS,
            alter: "MODIFY n BIGINT NOT NULL",
            script: cycle_three,
        },
        Case {
            name: "unique key added by the ALTER while rows swap",
            create: "CREATE TABLE t (id INT PRIMARY KEY, email VARCHAR(40) NOT NULL, n INT NOT NULL); \
                INSERT INTO t SELECT seq, CONCAT('u', seq, '@example.com'), seq FROM seq_1_to_3000",
            alter: "MODIFY n BIGINT NOT NULL, ADD UNIQUE KEY email (email)",
            script: swap_two,
        },
        Case {
            name: "composite (list_id, pos), a sortable list",
            create: "CREATE TABLE t (id INT PRIMARY KEY, list_id INT NOT NULL, pos INT NOT NULL, label VARCHAR(20), \
                UNIQUE KEY lp (list_id, pos)); \
                INSERT INTO t SELECT seq, seq DIV 100, seq MOD 100, CONCAT('item', seq) FROM seq_0_to_2999",
            alter: "MODIFY label VARCHAR(10)",
            script: reorder,
        },
    ];
    let db = TestDb::mariadb().await;
    let mut c = db.my().await;
    for (i, case) in cases.iter().enumerate() {
        c.query_drop(format!(
            "DROP TABLE IF EXISTS t, mirror, expect, _t_old; {}; CREATE TABLE mirror LIKE t; INSERT INTO mirror SELECT * FROM t",
            case.create
        ))
        .await
        .unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let ops = Arc::new(AtomicU64::new(0));
        let w = tokio::spawn(writer(
            db.url.clone(),
            0x2545_F491 + i as u64,
            case.script,
            stop.clone(),
            ops.clone(),
        ));
        let mut e = engine(&db).await;
        let sql = format!("ALTER TABLE t {}", case.alter);
        let r = e
            .alter_online(&sql, &opts(true), &quiet())
            .await
            .unwrap_or_else(|err| panic!("{}: {err}", case.name))
            .unwrap();
        assert_eq!(
            (r.path.as_str(), r.cutover_pending),
            ("copy", true),
            "{}",
            case.name
        );
        // The verified copy waits; the clients go on and the log grows (by a count, not a time:
        // the machine may be busy).
        let before = ops.load(Ordering::Relaxed);
        let waited = std::time::Instant::now();
        while ops.load(Ordering::Relaxed) - before <= 50 && waited.elapsed().as_secs() < 30 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let waiting = ops.load(Ordering::Relaxed) - before;
        e.online_cutover(&opts(false), &quiet())
            .await
            .unwrap_or_else(|err| panic!("{}: {err}", case.name));
        stop.store(true, Ordering::Relaxed);
        let errors = w.await.unwrap();
        assert!(
            errors.is_empty(),
            "{}: client errors {errors:#?}",
            case.name
        );
        assert!(
            waiting > 50,
            "{}: the client barely ran ({waiting})",
            case.name
        );
        equals_as_written(&mut c, case.name, case.alter).await;
        nothing_left(&mut c).await;
        e.online_cleanup(false).await.unwrap();
    }
}

/// Rows of the exchange tests: writer `w` owns 1000 rows in 100 lists (`g`) of 10, ids and `u`
/// (unique alone and within its list) starting at 10000 w + 1; every pattern below only permutes
/// the values of a writer's own rows. Two rows no one changes fence each writer's block off in
/// every index (`u` 10000 w + 5000 and its negative): InnoDB's duplicate checks lock the index
/// gaps next to the values checked, and without fences the writers' own transactions deadlock
/// one another, sluice or not.
const LISTS: &str = "CREATE TABLE t (id INT PRIMARY KEY, g INT NOT NULL, u INT NOT NULL, n INT NOT NULL{unique}); \
    INSERT INTO t SELECT 10000 * w.seq + i.seq + 1, 1000 * w.seq + i.seq DIV 10, 10000 * w.seq + i.seq + 1, i.seq \
    FROM seq_0_to_2 AS w JOIN seq_0_to_999 AS i; \
    INSERT INTO t SELECT 10000 * w.seq + 5000 + f.seq, 1000 * w.seq + 500 + 100 * f.seq, \
    IF(f.seq = 0, 1, -1) * CAST(10000 * w.seq + 5000 AS SIGNED), 0 FROM seq_0_to_2 AS w JOIN seq_0_to_1 AS f";
const WRITERS: u64 = 3;

/// The id of the `i`th of writer `w`'s 1000 rows (list `i / 10`).
fn own(w: u64, i: u64) -> u64 {
    10_000 * w + i + 1
}

/// One client transaction: the statements on `t`, and the rows they change (as a condition on
/// `m.id`, for the mirror). Scratch values are negative: the original's unique key holds after
/// every statement, as it must for a client.
type Pattern = fn(&mut dyn FnMut(u64) -> u64, u64) -> (String, String);

/// Two rows exchange their values.
fn exchange(r: &mut dyn FnMut(u64) -> u64, w: u64) -> (String, String) {
    let i = r(1000);
    let (a, b) = (own(w, i), own(w, (i + 1 + r(999)) % 1000));
    (
        format!(
            "SELECT u INTO @ua FROM mirror WHERE id = {a}; SELECT u INTO @ub FROM mirror WHERE id = {b}; \
             UPDATE t SET u = -u WHERE id = {a}; UPDATE t SET u = @ua WHERE id = {b}; UPDATE t SET u = @ub WHERE id = {a}"
        ),
        format!("m.id IN ({a}, {b})"),
    )
}

/// Three rows pass their values round.
fn rotate_three(r: &mut dyn FnMut(u64) -> u64, w: u64) -> (String, String) {
    let i = r(1000);
    let j = (i + 1 + r(499)) % 1000;
    let k = (j + 1 + r(499)) % 1000;
    let (a, b, c) = (own(w, i), own(w, j), own(w, k));
    (
        format!(
            "SELECT u INTO @ua FROM mirror WHERE id = {a}; SELECT u INTO @ub FROM mirror WHERE id = {b}; \
             SELECT u INTO @uc FROM mirror WHERE id = {c}; UPDATE t SET u = -u WHERE id IN ({a}, {b}, {c}); \
             UPDATE t SET u = @ua WHERE id = {b}; UPDATE t SET u = @ub WHERE id = {c}; UPDATE t SET u = @uc WHERE id = {a}"
        ),
        format!("m.id IN ({a}, {b}, {c})"),
    )
}

/// Every row of a list takes the value of the next one (the last the first's): a whole list
/// shifted by one position.
fn shift_list(r: &mut dyn FnMut(u64) -> u64, w: u64) -> (String, String) {
    let lo = own(w, r(100) * 10);
    let hi = lo + 9;
    (
        format!(
            "UPDATE t SET u = -u WHERE id BETWEEN {lo} AND {hi}; \
             UPDATE t JOIN mirror AS m ON m.id = IF(t.id = {hi}, {lo}, t.id + 1) SET t.u = m.u WHERE t.id BETWEEN {lo} AND {hi}"
        ),
        format!("m.id BETWEEN {lo} AND {hi}"),
    )
}

/// Writer `w` running `pattern` until stopped, one transaction each time on `t` and then `mirror`
/// (given `t`'s new values). The mirror's join reads `t` by key, in that order (`STRAIGHT_JOIN`):
/// driven from `t` instead, it scans `t`, locking the other writers' rows, and two writers
/// deadlock each other whatever sluice does (seen twice: with a just-filled `t` whose statistics
/// said empty, and once right after a swap). The writers change disjoint, fenced rows and read committed, so they
/// never wait for one another: any error is sluice's. Returns the errors it saw.
async fn list_writer(
    url: String,
    w: u64,
    pattern: Pattern,
    stop: Arc<AtomicBool>,
    ops: Arc<AtomicU64>,
) -> Vec<String> {
    let mut c = Conn::from_url(url).await.unwrap();
    c.query_drop("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED")
        .await
        .unwrap();
    let mut x = 0x9E37_79B9_7F4A_7C15 ^ (w + 1);
    let mut errors = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        let (sql_t, rows) = pattern(
            &mut |n| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x % n
            },
            w,
        );
        let sql = format!(
            "START TRANSACTION; {sql_t}; UPDATE mirror AS m SET m.u = -m.u WHERE {rows}; \
             UPDATE mirror AS m STRAIGHT_JOIN t ON t.id = m.id SET m.u = t.u WHERE {rows}; COMMIT"
        );
        match c.query_drop(&sql).await {
            Ok(()) => {
                ops.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                let _ = c.query_drop("ROLLBACK").await;
                errors.push(format!("{e} in {sql}"));
            }
        }
    }
    errors
}

/// The class of clients exchanging unique values: every unique-key shape (one column, two
/// columns, a key the ALTER adds, a key over a column the ALTER retypes) under every exchange
/// pattern (two rows, three in a cycle, a whole list shifted in one transaction), three writers
/// at once through the copy, the wait for the cut-over and the cut-over: no client error, and the
/// result equals the ALTER as written on the mirror.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_unique_shape_under_every_exchange_pattern_equals_the_as_written_alter() {
    let shapes: [(&str, &str, &str); 4] = [
        (
            "one column",
            ", UNIQUE KEY uk (u)",
            "MODIFY n BIGINT NOT NULL",
        ),
        (
            "two columns",
            ", UNIQUE KEY uk (g, u)",
            "MODIFY n BIGINT NOT NULL",
        ),
        (
            "added by the ALTER",
            "",
            "MODIFY n BIGINT NOT NULL, ADD UNIQUE KEY uk (u)",
        ),
        (
            "over a retyped column",
            ", UNIQUE KEY uk (g, u)",
            "MODIFY u BIGINT NOT NULL",
        ),
    ];
    let patterns: [(&str, Pattern); 3] = [
        ("two rows exchange", exchange),
        ("three rows rotate", rotate_three),
        ("a list shifts by one", shift_list),
    ];
    let db = TestDb::mariadb().await;
    let mut c = db.my().await;
    for (shape, unique, alter) in shapes {
        for (pname, pattern) in patterns {
            let case = format!("{shape}, {pname}");
            // Statistics first: a table just filled looks empty to the optimizer until InnoDB
            // recalculates in the background, and the writers' `UPDATE mirror JOIN t` then scans
            // `t`, locking the other writers' rows (a deadlock between two writers, not sluice).
            c.query_drop(format!(
                "DROP TABLE IF EXISTS t, mirror, expect, _t_old; {}; CREATE TABLE mirror LIKE t; INSERT INTO mirror SELECT * FROM t; \
                 ANALYZE TABLE t, mirror",
                LISTS.replace("{unique}", unique)
            ))
            .await
            .unwrap();
            let stop = Arc::new(AtomicBool::new(false));
            let ops = Arc::new(AtomicU64::new(0));
            let writers: Vec<_> = (0..WRITERS)
                .map(|w| {
                    tokio::spawn(list_writer(
                        db.url.clone(),
                        w,
                        pattern,
                        stop.clone(),
                        ops.clone(),
                    ))
                })
                .collect();
            let started = std::time::Instant::now();
            let mut e = engine(&db).await;
            let r = e
                .alter_online(&format!("ALTER TABLE t {alter}"), &opts(true), &quiet())
                .await
                .unwrap_or_else(|err| panic!("{case}: {err}"))
                .unwrap();
            assert_eq!(
                (r.path.as_str(), r.cutover_pending),
                ("copy", true),
                "{case}"
            );
            let copied = ops.load(Ordering::Relaxed);
            // The verified copy waits; the clients go on and the log grows (by a count, not a
            // time: the machine may be busy).
            let waited = std::time::Instant::now();
            while ops.load(Ordering::Relaxed) - copied < 150 && waited.elapsed().as_secs() < 30 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            let waiting = ops.load(Ordering::Relaxed) - copied;
            e.online_cutover(&opts(false), &quiet())
                .await
                .unwrap_or_else(|err| panic!("{case}: {err}"));
            let total = ops.load(Ordering::Relaxed);
            stop.store(true, Ordering::Relaxed);
            let mut errors = Vec::new();
            for w in writers {
                errors.extend(w.await.unwrap());
            }
            assert!(errors.is_empty(), "{case}: client errors {errors:#?}");
            assert!(
                copied > 0 && waiting > 20,
                "{case}: the clients barely ran ({copied}, {waiting})"
            );
            eprintln!(
                "{case}: {total} client transactions ({copied} during the copy, {waiting} while the cut-over waited), {:.1} s",
                started.elapsed().as_secs_f64()
            );
            equals_as_written(&mut c, &case, alter).await;
            nothing_left(&mut c).await;
            e.online_cleanup(false).await.unwrap();
        }
    }
}

/// A transaction that exchanges two unique values straddles the boundary of the log's first
/// batch (5000 entries): the apply widens the batch instead of failing on the half it has.
#[tokio::test]
async fn an_exchange_split_by_the_batch_boundary_is_applied_whole() {
    let db = TestDb::mariadb().await;
    let mut c = db.my().await;
    c.query_drop(format!(
        "{}; INSERT INTO t SELECT seq, CONCAT('v', seq, '@example.com'), seq FROM seq_3001_to_6000; \
         CREATE TABLE mirror LIKE t; INSERT INTO mirror SELECT * FROM t",
        USERS
    ))
    .await
    .unwrap();
    let mut e = engine(&db).await;
    let alter = "MODIFY n BIGINT NOT NULL";
    e.alter_online(&format!("ALTER TABLE t {alter}"), &opts(true), &quiet())
        .await
        .unwrap();
    // 4999 log entries, then the two of the exchange: the first batch ends between them.
    for t in ["t", "mirror"] {
        c.query_drop(format!(
            "UPDATE {t} SET n = n + 1 WHERE id <= 4999; \
             START TRANSACTION; UPDATE {t} SET email = 'tmp' WHERE id = 5500; \
             UPDATE {t} SET email = 'v5500@example.com' WHERE id = 5600; \
             UPDATE {t} SET email = 'v5600@example.com' WHERE id = 5500; COMMIT"
        ))
        .await
        .unwrap();
        if t == "t" {
            // The log: 4999 entries, then 5500, 5600, 5500.
            let tail: Vec<i64> = c
                .query("SELECT k0 FROM _t_chg ORDER BY _sluice_id LIMIT 4998, 5")
                .await
                .unwrap();
            assert_eq!(tail, vec![4999, 5500, 5600, 5500]);
        }
    }
    e.online_cutover(&opts(false), &quiet()).await.unwrap();
    equals_as_written(&mut c, "split exchange", alter).await;
}

/// A client write that the new unique key refuses, made while the verified copy waits for its
/// cut-over: the cut-over fails with the server's duplicate message (the one the ALTER as written
/// gives), nothing is merged or swapped, the copy is removed, `t` is unchanged; every rerun fails
/// the same way until the rows are fixed, and then the change goes through.
#[tokio::test]
async fn a_duplicate_written_while_the_cutover_waits_fails_like_the_alter_and_never_swaps() {
    let db = TestDb::mariadb().await;
    let mut c = db.my().await;
    let alter = "MODIFY n BIGINT NOT NULL, ADD UNIQUE KEY email (email)";
    // With more than one batch of log entries before the duplicate, and without.
    for before in [0u32, 6000] {
        c.query_drop(
            "DROP TABLE IF EXISTS t, mirror, expect, _t_old; \
             CREATE TABLE t (id INT PRIMARY KEY, email VARCHAR(40) NOT NULL, n INT NOT NULL); \
             INSERT INTO t SELECT seq, CONCAT('u', seq, '@example.com'), seq FROM seq_1_to_8000",
        )
        .await
        .unwrap();
        let mut e = engine(&db).await;
        let sql = format!("ALTER TABLE t {alter}");
        let r = e
            .alter_online(&sql, &opts(true), &quiet())
            .await
            .unwrap()
            .unwrap();
        assert!(r.cutover_pending);
        if before > 0 {
            c.query_drop(format!("UPDATE t SET n = n + 1 WHERE id <= {before}"))
                .await
                .unwrap();
        }
        // User 7 takes user 3's email (the original has no unique key yet), user 3 changes too.
        c.query_drop("UPDATE t SET email = 'u3@example.com', n = -7 WHERE id = 7; UPDATE t SET n = -3 WHERE id = 3")
            .await
            .unwrap();
        c.query_drop("CREATE TABLE mirror LIKE t; INSERT INTO mirror SELECT * FROM t")
            .await
            .unwrap();
        // The ALTER as written fails on the key (its copy names some row's value, not always
        // the duplicate's); sluice names the duplicate itself.
        let as_written_err = as_written(&mut c, alter).await.unwrap_err();
        assert!(
            duplicate(&as_written_err).ends_with("for key 'email'"),
            "{as_written_err}"
        );
        let want = "Duplicate entry 'u3@example.com' for key 'email'";
        let unchanged = rows(&mut c, "mirror").await;
        let original = definition(&mut c, "mirror").await;

        let err = e.online_cutover(&opts(false), &quiet()).await.unwrap_err();
        assert!(matches!(err, Error::Rejected { .. }), "{err:?}");
        assert_eq!(err.exit_code(), 1);
        assert_eq!(duplicate(&err.to_string()), want, "{err}");
        assert!(err.to_string().contains("`t` is unchanged"), "{err}");
        untouched(&mut c, &unchanged, &original).await;
        // Reruns: nothing waits for a swap; the statement fails the same way, twice.
        assert!(e
            .online_cutover(&opts(false), &quiet())
            .await
            .unwrap()
            .is_empty());
        for _ in 0..2 {
            let err = e
                .alter_online(&sql, &opts(false), &quiet())
                .await
                .unwrap_err();
            assert!(matches!(err, Error::Rejected { .. }), "{err:?}");
            assert!(
                duplicate(&err.to_string()).ends_with("for key 'email'"),
                "{err}"
            );
            untouched(&mut c, &unchanged, &original).await;
        }
        // Fixed rows: the change goes through and equals the ALTER as written.
        c.query_drop(
            "UPDATE t SET email = 'u7@example.com' WHERE id = 7; DROP TABLE mirror; \
                      CREATE TABLE mirror LIKE t; INSERT INTO mirror SELECT * FROM t",
        )
        .await
        .unwrap();
        e.alter_online(&sql, &opts(false), &quiet())
            .await
            .unwrap()
            .unwrap();
        equals_as_written(&mut c, "fixed duplicate", alter).await;
        e.online_cleanup(false).await.unwrap();
    }
}

/// `t` holds exactly `rows` under `definition`, and nothing of a copy is left.
async fn untouched(c: &mut Conn, rows_before: &[String], definition_before: &str) {
    assert_eq!(rows(c, "t").await, rows_before, "t changed");
    assert_eq!(definition(c, "t").await, definition_before);
    nothing_left(c).await;
    assert_eq!(count(c, "SELECT COUNT(*) FROM sluice_online").await, 0);
    assert_eq!(
        count(c, "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = '_t_old'").await,
        0
    );
}

/// Details of the result the copy must get as the ALTER as written does: a row whose
/// AUTO_INCREMENT id is 0, a counter the ALTER sets (above and below the largest id, alone and
/// among other table options), the original's counter otherwise, and the clustered index of a
/// table without a primary key.
#[tokio::test]
async fn counters_zero_ids_and_clustering_equal_the_as_written_alter() {
    const AUTO: &str = "CREATE TABLE t (id INT AUTO_INCREMENT PRIMARY KEY, v INT, w VARCHAR(10)); \
        SET @m = @@sql_mode; SET SESSION sql_mode = CONCAT(@@sql_mode, ',NO_AUTO_VALUE_ON_ZERO'); \
        INSERT INTO t VALUES (0, 0, 'zero'); SET SESSION sql_mode = @m; \
        INSERT INTO t (v, w) SELECT seq, 'x' FROM seq_1_to_40; DELETE FROM t WHERE id > 30";
    const NO_PK: &str = "CREATE TABLE t (a INT NOT NULL, b INT NOT NULL, v INT, w VARCHAR(10), \
        UNIQUE KEY ub (b), UNIQUE KEY ua (a), KEY kv (v)); \
        INSERT INTO t SELECT seq, 1000 - seq, seq % 7, 'x' FROM seq_1_to_500";
    let cases: [(&str, &str); 9] = [
        (AUTO, "MODIFY v BIGINT"),
        (AUTO, "MODIFY v BIGINT, AUTO_INCREMENT = 7"),
        (AUTO, "MODIFY v BIGINT, AUTO_INCREMENT=35"),
        (AUTO, "MODIFY v BIGINT, AUTO_INCREMENT=1000"),
        (AUTO, "MODIFY v BIGINT, ENGINE=InnoDB AUTO_INCREMENT=33"),
        (AUTO, "MODIFY v BIGINT, COMMENT 'c', AUTO_INCREMENT 5"),
        (NO_PK, "MODIFY v BIGINT"),
        (
            NO_PK,
            "MODIFY v BIGINT, MODIFY w VARCHAR(20), ADD UNIQUE KEY uw (w, a)",
        ),
        (
            "CREATE TABLE t (a INT NOT NULL, b INT NOT NULL, c INT NOT NULL, v INT, \
             UNIQUE KEY uc (c), UNIQUE KEY ub (b, c), UNIQUE KEY ua (a)); \
             INSERT INTO t SELECT seq, seq * 2, 900 - seq, seq FROM seq_1_to_300",
            "MODIFY v BIGINT, ADD UNIQUE KEY uv (a, v)",
        ),
    ];
    let db = TestDb::mariadb().await;
    let mut c = db.my().await;
    let mut e = engine(&db).await;
    for (create, alter) in cases {
        c.query_drop(format!(
            "DROP TABLE IF EXISTS t, mirror, expect, _t_old; {create}; CREATE TABLE mirror LIKE t; {}",
            keep_zero("INSERT INTO mirror SELECT * FROM t")
        ))
        .await
        .unwrap();
        copy_counter(&mut c, "t", "mirror").await;
        let r = e
            .alter_online(&format!("ALTER TABLE t {alter}"), &opts(false), &quiet())
            .await
            .unwrap_or_else(|err| panic!("{alter}: {err}"))
            .unwrap();
        assert_eq!(r.path, "copy", "{alter}");
        equals_as_written(&mut c, alter, alter).await;
        nothing_left(&mut c).await;
        e.online_cleanup(false).await.unwrap();
    }
}

/// A swap recorded by an earlier sluice before it dropped its triggers and change log (the
/// triggers moved onto `_t_old`): the rerun that finds the swap recorded, and `sluice cleanup`,
/// finish the job; a change log holding late changes is kept and reported instead.
#[tokio::test]
async fn a_recorded_swap_left_unfinished_is_finished_by_the_rerun_and_by_cleanup() {
    let db = TestDb::mariadb().await;
    let mut c = db.my().await;
    let mut e = engine(&db).await;
    let sql = "ALTER TABLE t MODIFY v BIGINT";
    // What an interrupted swap of an earlier sluice left: triggers on the old table, the log.
    let leave = "CREATE TABLE _t_chg (`_sluice_id` BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY, k0 INT NOT NULL); \
        CREATE TRIGGER _t_ins AFTER INSERT ON _t_old FOR EACH ROW INSERT INTO _t_chg (k0) VALUES (NEW.id); \
        CREATE TRIGGER _t_upd AFTER UPDATE ON _t_old FOR EACH ROW INSERT INTO _t_chg (k0) VALUES (NEW.id); \
        CREATE TRIGGER _t_del AFTER DELETE ON _t_old FOR EACH ROW INSERT INTO _t_chg (k0) VALUES (OLD.id)";
    for finish in ["rerun", "cleanup", "late"] {
        c.query_drop(
            "DROP TABLE IF EXISTS t, _t_old, _t_chg; DROP TABLE IF EXISTS sluice_online; \
             CREATE TABLE t (id INT PRIMARY KEY, v INT); INSERT INTO t SELECT seq, seq FROM seq_1_to_100",
        )
        .await
        .unwrap();
        e.alter_online(sql, &opts(false), &quiet())
            .await
            .unwrap()
            .unwrap();
        c.query_drop(leave).await.unwrap();
        if finish == "late" {
            c.query_drop("UPDATE _t_old SET v = 0 WHERE id = 1")
                .await
                .unwrap();
        }
        match finish {
            "rerun" | "late" => {
                let r = e.alter_online(sql, &opts(false), &quiet()).await;
                assert!(!r.unwrap().unwrap().cutover_pending);
                assert_eq!(count(&mut c, "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = '_t_old'").await, 1);
                if finish == "late" {
                    // The triggers are gone (a rename back would not bring them), the log with
                    // the late change kept until cleanup.
                    assert_eq!(count(&mut c, "SELECT COUNT(*) FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = DATABASE()").await, 0);
                    assert_eq!(count(&mut c, "SELECT COUNT(*) FROM _t_chg").await, 1);
                    e.online_cleanup(false).await.unwrap();
                }
            }
            _ => {
                e.online_cleanup(false).await.unwrap();
            }
        }
        nothing_left(&mut c).await;
        assert_eq!(count(&mut c, "SELECT COUNT(*) FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = DATABASE()").await, 0, "{finish}");
        let ty: String = c.query_first("SELECT COLUMN_TYPE FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 't' AND COLUMN_NAME = 'v'").await.unwrap().unwrap();
        assert_eq!(ty, "bigint(20)");
    }
}
