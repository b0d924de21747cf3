//! Test fixtures: each test gets its own database on the real server, named uniquely so tests run in
//! parallel, and dropped when the fixture goes out of scope.
//!
//! Servers come from `SLUICE_TEST_POSTGRES_URL` / `SLUICE_TEST_MYSQL_URL`, defaulting to the local
//! services (`postgres://postgres@127.0.0.1:5432/postgres`, `mysql://root@127.0.0.1:3306/mysql`).

mod private_mariadb;
pub use private_mariadb::{mariadb_binary, PrivateMariaDb};

use std::sync::atomic::{AtomicU32, Ordering};

pub fn postgres_admin_url() -> String {
    std::env::var("SLUICE_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

pub fn mysql_admin_url() -> String {
    std::env::var("SLUICE_TEST_MYSQL_URL")
        .unwrap_or_else(|_| "mysql://root@127.0.0.1:3306/mysql".into())
}

fn with_db(url: &str, db: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, format!("?{q}")),
        None => (url, String::new()),
    };
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let path_start = base[scheme_end..]
        .find('/')
        .map(|i| i + scheme_end)
        .unwrap_or(base.len());
    format!("{}/{db}{query}", &base[..path_start])
}

fn unique_name(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "sluice_t_{prefix}_{}_{}_{nanos}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Server {
    Postgres,
    MariaDb,
}

/// A database created for one test and dropped on drop.
pub struct TestDb {
    pub server: Server,
    pub name: String,
    /// URL of the test database (for sluice and for the test's own connections).
    pub url: String,
    admin_url: String,
    keep: bool,
}

impl TestDb {
    pub async fn postgres() -> TestDb {
        let admin = postgres_admin_url();
        let name = unique_name("pg");
        let (client, conn) = tokio_postgres::connect(&admin, tokio_postgres::NoTls)
            .await
            .unwrap_or_else(|e| panic!("test PostgreSQL at {admin} is not answering: {e}"));
        tokio::spawn(conn);
        client
            .batch_execute(&format!("CREATE DATABASE \"{name}\""))
            .await
            .expect("create test database");
        TestDb {
            server: Server::Postgres,
            url: with_db(&admin, &name),
            name,
            admin_url: admin,
            keep: false,
        }
    }

    pub async fn mariadb() -> TestDb {
        use mysql_async::prelude::Queryable;
        let admin = mysql_admin_url();
        let name = unique_name("my");
        let mut conn = mysql_async::Conn::from_url(&admin)
            .await
            .unwrap_or_else(|e| panic!("test MariaDB at {admin} is not answering: {e}"));
        conn.query_drop(format!("CREATE DATABASE `{name}`"))
            .await
            .expect("create test database");
        conn.disconnect().await.ok();
        TestDb {
            server: Server::MariaDb,
            url: with_db(&admin, &name),
            name,
            admin_url: admin,
            keep: false,
        }
    }

    /// Keep the database after the test (for debugging a failure).
    pub fn keep(mut self) -> Self {
        self.keep = true;
        self
    }

    /// A PostgreSQL client on the test database.
    pub async fn pg(&self) -> tokio_postgres::Client {
        assert_eq!(self.server, Server::Postgres);
        let (client, conn) = tokio_postgres::connect(&self.url, tokio_postgres::NoTls)
            .await
            .expect("connect to test db");
        tokio::spawn(conn);
        client
    }

    /// A MariaDB connection on the test database.
    pub async fn my(&self) -> mysql_async::Conn {
        assert_eq!(self.server, Server::MariaDb);
        mysql_async::Conn::from_url(&self.url)
            .await
            .expect("connect to test db")
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if self.keep {
            eprintln!("keeping test database {}", self.name);
            return;
        }
        let (server, name, admin) = (self.server, self.name.clone(), self.admin_url.clone());
        // Drop runs outside async context (or inside one we must not block): use a thread of its own.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                match server {
                    Server::Postgres => {
                        if let Ok((client, conn)) =
                            tokio_postgres::connect(&admin, tokio_postgres::NoTls).await
                        {
                            tokio::spawn(conn);
                            let _ = client
                                .batch_execute(&format!(
                                    "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
                                ))
                                .await;
                        }
                    }
                    Server::MariaDb => {
                        use mysql_async::prelude::Queryable;
                        if let Ok(mut conn) = mysql_async::Conn::from_url(&admin).await {
                            let _ = conn
                                .query_drop(format!("DROP DATABASE IF EXISTS `{name}`"))
                                .await;
                            let _ = conn.disconnect().await;
                        }
                    }
                }
            });
        })
        .join();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_get_the_database_swapped() {
        assert_eq!(
            with_db("postgres://u@h:5432/postgres", "x"),
            "postgres://u@h:5432/x"
        );
        assert_eq!(
            with_db("mysql://root@127.0.0.1:3306/mysql?a=1", "x"),
            "mysql://root@127.0.0.1:3306/x?a=1"
        );
        assert_eq!(with_db("postgres://u@h", "x"), "postgres://u@h/x");
    }
}
