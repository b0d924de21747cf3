//! The library example (`examples/embed.rs`), run against the local PostgreSQL: the same source as
//! the example, compiled in as a module, so the example cannot rot.

mod common;

#[path = "../examples/embed.rs"]
#[allow(dead_code)]
mod embed;

use common::Project;
use sluice_testkit::Server;
use std::sync::{Arc, Mutex};

#[tokio::test]
async fn the_embedding_example_plans_applies_and_reruns_after_a_failure() {
    let p = Project::new(Server::Postgres).await;
    p.write(
        "1_users.sql",
        "-- sluice:up\nCREATE TABLE users (id bigint PRIMARY KEY, email text NOT NULL);\nINSERT INTO users SELECT g, 'u' || g || '@example.com' FROM generate_series(1, 20000) g;\n",
    );
    p.write(
        "2_email_index.sql",
        "-- sluice:up\nCREATE INDEX CONCURRENTLY IF NOT EXISTS users_email ON users (email);\n",
    );
    let said = Arc::new(Mutex::new(Vec::<String>::new()));
    let say = |said: &Arc<Mutex<Vec<String>>>| {
        let said = said.clone();
        move |l: &str| said.lock().unwrap().push(l.to_string())
    };
    let dir = p.path().join("migrations");

    let applied = embed::deploy(&p.db.url, &dir, say(&said)).await.unwrap();
    assert_eq!(applied, vec![1, 2]);
    assert_eq!(
        p.states(),
        vec![(1, "applied".into()), (2, "applied".into())]
    );
    let lines = said.lock().unwrap().clone();
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("applied 2_email_index in ")),
        "{lines:?}"
    );
    let c = p.db.pg().await;
    let valid: i64 = c
        .query_one("SELECT count(*) FROM pg_index WHERE indexrelid = 'users_email'::regclass AND indisvalid", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(valid, 1);

    // A failing migration: the error carries the command's exit code; fixed, the rerun applies it.
    p.write(
        "3_nick.sql",
        "-- sluice:up\nALTER TABLE nosuch ADD COLUMN nick text;\n",
    );
    let e = embed::deploy(&p.db.url, &dir, say(&said))
        .await
        .unwrap_err();
    assert_eq!(e.exit_code(), 1, "{e}");
    assert!(
        e.to_string().contains("relation \"nosuch\" does not exist"),
        "{e}"
    );
    assert_eq!(p.states()[2], (3, "failed".into()));
    p.write(
        "3_nick.sql",
        "-- sluice:up\nALTER TABLE users ADD COLUMN nick text;\n",
    );
    for want in [vec![3], vec![]] {
        let applied = embed::deploy(&p.db.url, &dir, say(&said)).await;
        assert_eq!(applied.unwrap(), want);
    }
    assert_eq!(
        p.states(),
        vec![
            (1, "applied".into()),
            (2, "applied".into()),
            (3, "applied".into())
        ]
    );
}

/// The library reads a directory as the CLI does: a repeatable migration is discovered and applied
/// after the versioned ones, and again when its file changes; a per-dialect variant wins.
#[tokio::test]
async fn the_embedding_example_applies_repeatables_and_dialect_variants() {
    let p = Project::new(Server::Postgres).await;
    p.write(
        "1_users.sql",
        "-- sluice:up\nCREATE TABLE users (id bigint PRIMARY KEY, email text NOT NULL);\n",
    );
    p.write("2_nick.sql", "-- sluice:up\nSELECT 1 / 0;\n");
    p.write(
        "2_nick.postgres.sql",
        "-- sluice:up\nALTER TABLE users ADD COLUMN nick text;\n",
    );
    p.write(
        "R_views.sql",
        "CREATE OR REPLACE VIEW user_emails AS SELECT id, email FROM users;\n",
    );
    let dir = p.path().join("migrations");
    let key = sluice_core::layout::repeatable_key("views");
    let applied = embed::deploy(&p.db.url, &dir, |_| {}).await.unwrap();
    assert_eq!(applied, vec![1, 2, key]);
    let c = p.db.pg().await;
    assert_eq!(view_columns(&c).await.as_deref(), Some("id,email"));
    // Unchanged: nothing runs. Changed: only the repeatable runs again.
    assert_eq!(
        embed::deploy(&p.db.url, &dir, |_| {}).await.unwrap(),
        Vec::<i64>::new()
    );
    p.write(
        "R_views.sql",
        "CREATE OR REPLACE VIEW user_emails AS SELECT id, email, nick FROM users;\n",
    );
    assert_eq!(
        embed::deploy(&p.db.url, &dir, |_| {}).await.unwrap(),
        vec![key]
    );
    assert_eq!(view_columns(&c).await.as_deref(), Some("id,email,nick"));
}

async fn view_columns(c: &tokio_postgres::Client) -> Option<String> {
    c.query_one(
        "SELECT string_agg(column_name, ',' ORDER BY ordinal_position) FROM information_schema.columns WHERE table_name = 'user_emails'",
        &[],
    )
    .await
    .unwrap()
    .get(0)
}
