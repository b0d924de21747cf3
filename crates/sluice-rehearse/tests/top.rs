//! The pg_stat_statements workload against a real clone, fed rows directly (the shared test server
//! does not preload the extension): the plan replays realistic normalised statements with zero
//! errors, its sampled values find existing rows, and what it cannot replay is skipped with why.

use sluice_core::dburl::DbUrl;
use sluice_rehearse::clone::{build, DataSpec};
use sluice_rehearse::db::{self, Scratch};
use sluice_rehearse::top::{self, TopRow};
use sluice_rehearse::workload::{self, Mix, Plan, Rng, WorkloadSpec};
use sluice_testkit::TestDb;
use std::sync::Arc;
use std::time::{Duration, Instant};

struct Dropped(Scratch);

impl Drop for Dropped {
    fn drop(&mut self) {
        let s = self.0.clone();
        // Drop runs inside the test's runtime: use a thread with its own.
        let _ = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(s.drop_now())
        })
        .join();
    }
}

const SOURCE: &str = r#"
CREATE TABLE users (id bigserial PRIMARY KEY, email text NOT NULL UNIQUE, org_id int NOT NULL, created_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE orders (id bigserial PRIMARY KEY, user_id bigint NOT NULL REFERENCES users (id), status text NOT NULL, total numeric(10, 2) NOT NULL);
CREATE INDEX orders_user ON orders (user_id);
INSERT INTO users (email, org_id, created_at)
    SELECT 'u' || g || '@example.com', (g / 2) % 40, now() - g * interval '1 minute' FROM generate_series(1, 5000) g;
INSERT INTO orders (user_id, status, total)
    SELECT 2 * (1 + g % 2500), (ARRAY['new', 'paid', 'shipped'])[1 + g % 3], (g % 997) / 10.0 FROM generate_series(1, 20000) g;
ANALYZE;
"#;

fn row(query: &str, calls: i64) -> TopRow {
    TopRow {
        query: query.into(),
        calls,
    }
}

#[tokio::test]
async fn top_statements_replay_on_a_clone_and_find_rows() {
    let db = TestDb::postgres().await;
    db.pg().await.batch_execute(SOURCE).await.unwrap();
    let url = DbUrl::parse(&db.url).unwrap();
    let scratch = Dropped(Scratch::create(&url, "top").await.unwrap());
    let mut engine = db::engine(&url).await.unwrap();
    build(
        &url,
        engine.as_mut(),
        &scratch.0.url,
        &DataSpec::SampleFraction(1.0),
        &|_| {},
    )
    .await
    .unwrap();
    let schema = db::engine(&scratch.0.url)
        .await
        .unwrap()
        .introspect()
        .await
        .unwrap();

    // Texts as pg_stat_statements keeps them: constants are `$n`.
    let point = "SELECT id, email, org_id FROM users WHERE id = $1";
    let rows = vec![
        // Reads no table (a driver's check): left out, not even listed as skipped.
        row("SELECT current_setting($1)::int", 99999),
        row(point, 9000),
        row("SELECT u.email, o.total FROM orders o JOIN users u ON u.id = o.user_id WHERE o.user_id = $1 AND o.status = $2 ORDER BY o.id DESC LIMIT $3", 4000),
        row("SELECT count(*) FROM orders WHERE status IN ($1, $2) AND total BETWEEN $3 AND $4", 800),
        row("SELECT id FROM users WHERE email = $1 AND created_at <= $2", 700),
        row("UPDATE orders SET status = $1 WHERE id = $2", 1500),
        row("UPDATE users SET org_id = org_id + $1 WHERE id = $2", 300),
        row("DELETE FROM orders WHERE id = $1 AND status = $2", 50),
        row("INSERT INTO orders (user_id, status, total) VALUES ($1, $2, $3)", 1200),
        row("SELECT * FROM audit_log WHERE id = $1", 100),
        // Users with an odd id have no orders: only those can be deleted; every org has both.
        row("DELETE FROM users WHERE id = $1", 40),
        row("DELETE FROM users WHERE org_id = $1", 30),
    ];
    let plan = top::plan(&scratch.0.url, &schema, &rows).await.unwrap();
    assert_eq!(plan.statements.len(), 7, "{:#?}", plan.skipped);
    let reasons: Vec<(&str, &str)> = plan
        .skipped
        .iter()
        .map(|s| (s.query.as_str(), s.reason.as_str()))
        .collect();
    assert_eq!(reasons.len(), 4, "{reasons:#?}");
    assert!(
        reasons[0].0.starts_with("UPDATE users") && reasons[0].1.contains("$1 is not compared")
    );
    assert!(reasons[1].0.starts_with("INSERT") && reasons[1].1.contains("collide"));
    assert!(reasons[2].1.contains("audit_log is not in the clone"));
    assert!(
        reasons[3].1.contains("fails for every sampled row") && reasons[3].1.contains("23503"),
        "{reasons:#?}"
    );
    let plan = Arc::new(plan);
    assert!(Plan::Top(plan.clone())
        .describe()
        .starts_with("top 7 statement(s) of pg_stat_statements (4 skipped)"));

    // Sampled values hit existing rows: every point read and filtered join finds its row.
    let c = db.pg().await;
    let c_scratch = {
        let (c, conn) =
            tokio_postgres::connect(scratch.0.url.expose().as_str(), tokio_postgres::NoTls)
                .await
                .unwrap();
        tokio::spawn(conn);
        c
    };
    drop(c);
    let mut rng = Rng::new(11);
    for st in plan
        .statements
        .iter()
        .filter(|s| s.query.starts_with("SELECT"))
    {
        let mut found = 0;
        for _ in 0..40 {
            let sql = st.render(&mut rng);
            assert!(!sql.contains('$'), "{sql}");
            let n = c_scratch
                .simple_query(&sql)
                .await
                .unwrap_or_else(|e| panic!("{sql}: {e}"))
                .iter()
                .filter(|m| matches!(m, tokio_postgres::SimpleQueryMessage::Row(_)))
                .count();
            found += (n > 0) as u32;
        }
        // A multi-column filter takes its values from one sampled row, so it finds that row too.
        assert!(found >= 38, "{}: {found}/40 found rows", st.query);
    }

    // The clients run it: zero errors, statements picked by their calls.
    let spec = WorkloadSpec {
        clients: 3,
        rate: 300.0,
        mix: Mix::default(),
        script: None,
        top_statements: true,
    };
    let origin = Instant::now();
    let running = workload::start(&scratch.0.url, &Plan::Top(plan.clone()), &spec, origin)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let results = running.stop().await;
    let samples: usize = results.iter().map(|r| r.samples.len()).sum();
    let errors: Vec<&String> = results.iter().flat_map(|r| r.messages.values()).collect();
    assert!(samples > 200, "{samples} transactions");
    assert!(errors.is_empty(), "{errors:?}");

    // DELETEs were rolled back: the clone keeps its rows.
    for (t, n) in [("users", 5000i64), ("orders", 20000)] {
        let got: i64 = c_scratch
            .query_one(&format!("SELECT count(*) FROM {t}"), &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(got, n, "{t}");
    }

    // Weighted by calls: the point read (9000 of 16090 replayed calls) dominates.
    let mut rng = Rng::new(3);
    let picks = (0..10_000)
        .filter(|_| plan.pick(&mut rng).query == point)
        .count();
    assert!((5200..6000).contains(&picks), "{picks}");
}
