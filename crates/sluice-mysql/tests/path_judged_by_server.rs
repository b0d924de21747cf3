//! The online path's prediction for each ALTER TABLE clause judged by the server: on a fresh twin
//! of a table with rows, the cheapest of INSTANT, NOCOPY, INPLACE with LOCK=NONE, INPLACE with
//! LOCK=SHARED the server accepts (else COPY) must be what sluice predicts, and what `sluice plan`
//! prints as the statement's as-written line (one prediction feeds both).

use mysql_async::prelude::Queryable;
use mysql_async::Conn;
use sluice_core::dburl::DbUrl;
use sluice_core::runner::UpOptions;
use sluice_mysql::introspect::Flavour;
use sluice_mysql::online::{parse, path, table};
use sluice_mysql::MySqlEngine;
use sluice_testkit::TestDb;

const FIXTURE: &str = "DROP TABLE IF EXISTS p; \
    CREATE TABLE p (id INT PRIMARY KEY, n INT NOT NULL, balance INT NULL, note VARCHAR(20), \
    code VARCHAR(20) COLLATE utf8mb4_general_ci, mood ENUM('a', 'b'), js JSON, doc LONGTEXT, body TEXT, \
    tags SET('x', 'y'), q_id INT, \
    KEY ix_n (n), KEY ix_code (code), CONSTRAINT chk0 CHECK (n >= 0), \
    CONSTRAINT fk0 FOREIGN KEY (q_id) REFERENCES q (id)) DEFAULT CHARSET=utf8mb4; \
    INSERT INTO p SELECT seq, seq, seq, CONCAT('n', seq), CONCAT('c', seq), 'a', '{\"k\": 1}', \
    '{}', CONCAT('some words ', seq), 'x', 1 FROM seq_1_to_200";

/// The server's forms from cheapest to dearest, as sluice's Algo names them.
const LADDER: &[(path::Algo, &str)] = &[
    (path::Algo::Instant, "ALGORITHM=INSTANT"),
    (path::Algo::NoCopy, "ALGORITHM=NOCOPY, LOCK=NONE"),
    (path::Algo::Inplace, "ALGORITHM=INPLACE, LOCK=NONE"),
    (path::Algo::Shared, "ALGORITHM=INPLACE, LOCK=SHARED"),
];

/// What `sluice plan` prints as the as-written lock of every action of `ALTER TABLE p {clause}`
/// (the live server's plan, as the CLI builds it).
async fn plan_as_written(e: &mut MySqlEngine, clause: &str) -> Vec<String> {
    plan_as_written_on(e, "p", clause).await
}

async fn plan_as_written_on(e: &mut MySqlEngine, table: &str, clause: &str) -> Vec<String> {
    let m = sluice_core::migration::parse_text(
        std::path::Path::new("1_p.sql"),
        1,
        "p".into(),
        &format!("ALTER TABLE {table} {clause};\n"),
    )
    .unwrap();
    let opts = UpOptions {
        to: None,
        dry_run: false,
        allow_out_of_order: false,
        as_written: false,
        as_written_below_rows: 0,
        complete: false,
        subscriber_urls: vec![],
    };
    let report = sluice_core::runner::plan(e, &[m], &opts)
        .await
        .unwrap_or_else(|err| panic!("{clause}: {err}"));
    report.migrations[0].statements[0]
        .actions
        .iter()
        .map(|a| a.impact.lock.clone())
        .collect()
}

/// The cheapest form the server accepts for `clause`, each tried on a fresh twin.
async fn server_algo(c: &mut Conn, clause: &str) -> path::Algo {
    server_algo_on(c, FIXTURE, "p", clause).await
}

/// [`server_algo`] on table `table` made by `fixture`.
async fn server_algo_on(c: &mut Conn, fixture: &str, table: &str, clause: &str) -> path::Algo {
    for (algo, spelled) in LADDER {
        c.query_drop(fixture).await.unwrap();
        match c
            .query_drop(format!("ALTER TABLE {table} {clause}, {spelled}"))
            .await
        {
            Ok(()) => return *algo,
            // ER_ALTER_OPERATION_NOT_SUPPORTED(_REASON): this form is refused, try the next.
            Err(mysql_async::Error::Server(se)) if se.code == 1845 || se.code == 1846 => {}
            Err(e) => panic!("{clause} with {spelled}: {e}"),
        }
    }
    // Whatever the server refuses in place it runs as a copy: prove the clause itself is valid.
    c.query_drop(fixture).await.unwrap();
    c.query_drop(format!("ALTER TABLE {table} {clause}, ALGORITHM=COPY"))
        .await
        .unwrap_or_else(|e| panic!("{clause} with ALGORITHM=COPY: {e}"));
    path::Algo::Copy
}

#[tokio::test]
async fn every_clause_is_predicted_as_the_cheapest_form_the_server_accepts() {
    let db = TestDb::mariadb().await;
    let mut c = db.my().await;
    c.query_drop("CREATE TABLE q (id INT PRIMARY KEY); INSERT INTO q SELECT seq FROM seq_1_to_200")
        .await
        .unwrap();
    let v: String = c.query_first("SELECT VERSION()").await.unwrap().unwrap();
    let flavour = Flavour::from_version_string(&v);
    let clauses = [
        // Columns added
        "ADD COLUMN c INT",
        "ADD COLUMN c INT AFTER id",
        "ADD COLUMN c INT FIRST",
        "ADD COLUMN c INT NOT NULL DEFAULT 5",
        "ADD COLUMN c INT NULL CHECK (c > 0)",
        "ADD COLUMN c INT NOT NULL DEFAULT 5 CHECK (c > 0)",
        "ADD COLUMN c INT AUTO_INCREMENT UNIQUE",
        "ADD COLUMN c INT AS (n + 1) VIRTUAL",
        "ADD COLUMN c INT AS (n + 1) STORED",
        "ADD COLUMN c INT UNIQUE",
        "ADD COLUMN c INT REFERENCES q (id)",
        // Columns dropped and renamed
        "DROP COLUMN note",
        "DROP COLUMN n",
        "RENAME COLUMN note TO note2",
        "CHANGE note note2 VARCHAR(20)",
        // Columns changed
        "MODIFY balance BIGINT",
        "MODIFY note VARCHAR(100)",
        "MODIFY note VARCHAR(60)",
        "MODIFY note VARCHAR(10)",
        "MODIFY balance INT NOT NULL",
        "MODIFY n INT NULL",
        "ALTER COLUMN balance SET DEFAULT 7",
        "ALTER COLUMN balance DROP DEFAULT",
        "MODIFY balance INT DEFAULT 7",
        "MODIFY note VARCHAR(20) COMMENT 'x'",
        "MODIFY note VARCHAR(20) FIRST",
        "MODIFY note VARCHAR(20) CHARACTER SET latin1",
        "MODIFY note VARCHAR(20) COLLATE utf8mb4_unicode_ci",
        "MODIFY code VARCHAR(20) COLLATE utf8mb4_unicode_ci",
        "MODIFY note VARCHAR(20) BINARY",
        "MODIFY mood ENUM('a', 'b', 'c')",
        "MODIFY mood ENUM('c', 'a', 'b')",
        "MODIFY mood ENUM('a')",
        "MODIFY js JSON",
        "MODIFY doc JSON",
        "MODIFY tags SET('x', 'y', 'z')",
        "MODIFY tags SET('x', 'y', 'z', 'a', 'b', 'c', 'd', 'e', 'f')",
        // Indexes and keys
        "ADD INDEX ix_b (balance)",
        "ADD UNIQUE INDEX ux_note (note)",
        "ADD FULLTEXT INDEX ft (body)",
        "DROP INDEX ix_n",
        "RENAME INDEX ix_n TO ix_n2",
        "ALTER INDEX ix_n IGNORED",
        "DROP PRIMARY KEY, ADD PRIMARY KEY (id, n)",
        // Constraints
        "ADD CONSTRAINT chk1 CHECK (n > -1)",
        "DROP CONSTRAINT chk0",
        "ADD CONSTRAINT fk1 FOREIGN KEY (n) REFERENCES q (id)",
        "DROP FOREIGN KEY fk0",
        // Table options
        "AUTO_INCREMENT = 100",
        "COMMENT = 'orders'",
        "ENGINE = InnoDB",
        "FORCE",
        "ROW_FORMAT = DYNAMIC",
        "ROW_FORMAT = COMPACT",
        "DEFAULT CHARSET = latin1",
        "CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci",
        "DEFAULT CHARSET = latin1 COMMENT = 'x'",
        "CONVERT TO CHARACTER SET latin1",
        // Several clauses
        "ADD COLUMN c INT, ADD INDEX ix_c (c)",
        "MODIFY note VARCHAR(100), ADD INDEX ix_b (balance)",
        "DROP COLUMN note, ADD INDEX ix_b (balance)",
    ];
    assert!(clauses.len() >= 40, "{} clauses", clauses.len());
    let mut engine = MySqlEngine::connect(&DbUrl::parse(&db.url).unwrap())
        .await
        .unwrap();
    let mut wrong = Vec::new();
    for clause in clauses {
        c.query_drop(FIXTURE).await.unwrap();
        let live = table::read(&mut c, "p").await.unwrap().unwrap();
        let predicted = match parse::parse(&format!("ALTER TABLE p {clause}")) {
            Some(a) => {
                let kinds: Vec<_> = a.clauses.iter().map(|c| c.kind.clone()).collect();
                Some(path::plan(flavour, &live, &kinds).0)
            }
            None => None,
        };
        let planned = plan_as_written(&mut engine, clause).await;
        let actual = server_algo(&mut c, clause).await;
        if predicted != Some(actual) {
            wrong.push(format!(
                "{clause}: predicted {predicted:?}, server {actual:?}"
            ));
        }
        // The as-written line names the form the server accepted, for every action of the plan.
        let accepted = LADDER
            .iter()
            .find(|(a, _)| *a == actual)
            .map_or("ALGORITHM=COPY", |(_, spelled)| spelled);
        if planned.is_empty() || planned.iter().any(|l| l != accepted) {
            wrong.push(format!(
                "{clause}: plan's as-written line {planned:?}, server {accepted}"
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "{v}: {} wrong predictions or plan lines for {} clauses: {wrong:#?}",
        wrong.len(),
        clauses.len()
    );
}

/// The rule ids lint reports for `sql` on the server's version, offline.
fn lint_ids(version: &str, sql: &str) -> Vec<String> {
    let m = sluice_core::migration::parse_text(std::path::Path::new("1_p.sql"), 1, "p".into(), sql)
        .unwrap();
    let f = Flavour::from_version_string(version);
    let target = sluice_core::target::Target::new(f.kind, f.version.0, f.version.1);
    sluice_core::lint::lint(target, &[m], &Default::default())
        .findings
        .into_iter()
        .map(|f| f.rule.to_string())
        .collect()
}

/// FULLTEXT and SPATIAL indexes, and what a FULLTEXT index does to later ALTERs, judged by the
/// server on three tables: without one, with one, and with a user FTS_DOC_ID column. The online
/// path's prediction, plan's as-written line and lint (`mysql-fulltext-index` exactly when the
/// server needs LOCK=SHARED for an index of that kind) must all agree with the server.
#[tokio::test]
async fn fulltext_indexes_are_judged_by_the_server_in_path_plan_and_lint() {
    let db = TestDb::mariadb().await;
    let mut c = db.my().await;
    let v: String = c.query_first("SELECT VERSION()").await.unwrap().unwrap();
    let flavour = Flavour::from_version_string(&v);
    const ROWS: &str =
        "INSERT INTO d (id, n, note, body, title, g) SELECT seq, seq, CONCAT('n', seq), \
        CONCAT('some words ', seq), CONCAT('t', seq), POINT(seq, seq) FROM seq_1_to_200";
    let plain = format!(
        "DROP TABLE IF EXISTS d; CREATE TABLE d (id INT PRIMARY KEY, n INT NOT NULL, note VARCHAR(20), \
         body TEXT, title VARCHAR(100), g POINT NOT NULL, KEY ix_n (n)) DEFAULT CHARSET=utf8mb4; {ROWS}"
    );
    let with_fulltext = format!(
        "DROP TABLE IF EXISTS d; CREATE TABLE d (id INT PRIMARY KEY, n INT NOT NULL, note VARCHAR(20), \
         body TEXT, title VARCHAR(100), g POINT NOT NULL, KEY ix_n (n), FULLTEXT KEY ft0 (title)) \
         DEFAULT CHARSET=utf8mb4; {ROWS}"
    );
    let with_doc_id = format!(
        "DROP TABLE IF EXISTS d; CREATE TABLE d (FTS_DOC_ID BIGINT UNSIGNED NOT NULL AUTO_INCREMENT, \
         id INT PRIMARY KEY, n INT NOT NULL, note VARCHAR(20), body TEXT, title VARCHAR(100), \
         g POINT NOT NULL, KEY ix_n (n), UNIQUE KEY FTS_DOC_ID_INDEX (FTS_DOC_ID)) \
         DEFAULT CHARSET=utf8mb4; {ROWS}"
    );
    let index_clauses = [
        "ADD FULLTEXT INDEX ft (body)",
        "ADD FULLTEXT KEY ft (body, note)",
        "ADD SPATIAL INDEX sp (g)",
        "ADD INDEX ix_t (title)",
        "ADD FULLTEXT INDEX ft (body), ADD COLUMN c INT",
        "ADD FULLTEXT INDEX ft (body), ADD FULLTEXT INDEX ft2 (note)",
    ];
    // What a FULLTEXT index already on the table does to other clauses.
    let other_clauses = [
        "ADD COLUMN c INT",
        "ADD COLUMN c INT AFTER id",
        "ADD COLUMN c INT AS (n + 1) VIRTUAL",
        "DROP COLUMN n",
        "DROP COLUMN note",
        "DROP COLUMN title",
        "MODIFY note VARCHAR(20) NOT NULL",
        "MODIFY note VARCHAR(20) FIRST",
        "MODIFY title VARCHAR(200)",
        "RENAME COLUMN note TO note2",
        "FORCE",
        "DROP PRIMARY KEY, ADD PRIMARY KEY (id, n)",
        "DROP INDEX ft0",
        "DROP INDEX ft0, ADD COLUMN c INT",
    ];
    let mut rows: Vec<(&str, &String, &str)> = Vec::new();
    for (name, fixture) in [
        ("plain", &plain),
        ("with a FULLTEXT index", &with_fulltext),
        ("with FTS_DOC_ID", &with_doc_id),
    ] {
        for clause in index_clauses {
            rows.push((name, fixture, clause));
        }
    }
    for clause in other_clauses {
        rows.push(("with a FULLTEXT index", &with_fulltext, clause));
    }
    let mut engine = MySqlEngine::connect(&DbUrl::parse(&db.url).unwrap())
        .await
        .unwrap();
    let mut wrong = Vec::new();
    for (name, fixture, clause) in &rows {
        c.query_drop(fixture.as_str()).await.unwrap();
        let live = table::read(&mut c, "d").await.unwrap().unwrap();
        let a = parse::parse(&format!("ALTER TABLE d {clause}")).unwrap();
        let kinds: Vec<_> = a.clauses.iter().map(|c| c.kind.clone()).collect();
        let predicted = path::plan(flavour, &live, &kinds).0;
        let planned = plan_as_written_on(&mut engine, "d", clause).await;
        let actual = server_algo_on(&mut c, fixture, "d", clause).await;
        let accepted = LADDER
            .iter()
            .find(|(a, _)| *a == actual)
            .map_or("ALGORITHM=COPY", |(_, spelled)| spelled);
        if predicted != actual {
            wrong.push(format!(
                "{name}: {clause}: predicted {predicted:?}, server {actual:?}"
            ));
        }
        if planned.is_empty() || planned.iter().any(|l| l != accepted) {
            wrong.push(format!(
                "{name}: {clause}: plan's as-written line {planned:?}, server {accepted}"
            ));
        }
        // Lint is offline: it flags every FULLTEXT/SPATIAL index (the server never builds one
        // without blocking writes), and nothing else.
        let special = clause.contains("FULLTEXT") || clause.contains("SPATIAL");
        let flagged = lint_ids(
            &v,
            &format!("SET lock_wait_timeout = 5;\nALTER TABLE d {clause};"),
        )
        .contains(&"mysql-fulltext-index".to_string());
        if special && actual < path::Algo::Shared {
            wrong.push(format!(
                "{name}: {clause}: the server builds it without blocking writes ({actual:?})"
            ));
        }
        if flagged != special {
            wrong.push(format!(
                "{name}: {clause}: lint {} mysql-fulltext-index",
                if flagged { "reports" } else { "misses" }
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "{v}: {} disagreements over {} rows: {wrong:#?}",
        wrong.len(),
        rows.len()
    );
}

/// A dropped column's indexes decide the algorithm (issue 14's contract relies on it): no index
/// INSTANT, an index on it alone NOCOPY (the index goes), an index that keeps other columns
/// INPLACE (10.11 refuses NOCOPY: "Try ALGORITHM=INPLACE"), judged by the server.
#[tokio::test]
async fn a_dropped_columns_indexes_are_judged_by_the_server() {
    let db = TestDb::mariadb().await;
    let mut c = db.my().await;
    let v: String = c.query_first("SELECT VERSION()").await.unwrap().unwrap();
    let flavour = Flavour::from_version_string(&v);
    let fixture = "DROP TABLE IF EXISTS x; CREATE TABLE x (id INT PRIMARY KEY, a INT, b INT, \
        c VARCHAR(20), d INT, KEY ix_a (a), KEY ix_b_c (b, c)); \
        INSERT INTO x SELECT seq, seq, seq, CONCAT('c', seq), seq FROM seq_1_to_200";
    let mut wrong = Vec::new();
    for clause in [
        "DROP COLUMN d",
        "DROP COLUMN a",
        "DROP COLUMN b",
        "DROP COLUMN c",
        "DROP COLUMN b, DROP COLUMN c",
        "DROP COLUMN a, DROP COLUMN d",
    ] {
        c.query_drop(fixture).await.unwrap();
        let live = table::read(&mut c, "x").await.unwrap().unwrap();
        let a = parse::parse(&format!("ALTER TABLE x {clause}")).unwrap();
        let kinds: Vec<_> = a.clauses.iter().map(|c| c.kind.clone()).collect();
        let predicted = path::plan(flavour, &live, &kinds).0;
        let actual = server_algo_on(&mut c, fixture, "x", clause).await;
        if predicted != actual {
            wrong.push(format!(
                "{clause}: predicted {predicted:?}, server {actual:?}"
            ));
        }
    }
    assert!(wrong.is_empty(), "{v}: {wrong:#?}");
}
