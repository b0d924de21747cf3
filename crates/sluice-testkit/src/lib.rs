//! Test fixtures: each test gets its own database on the real server, named uniquely so tests run in
//! parallel, and dropped when the fixture goes out of scope.
//!
//! Servers come from `SLUICE_TEST_POSTGRES_URL` / `SLUICE_TEST_MYSQL_URL`, defaulting to the local
//! services (`postgres://postgres@127.0.0.1:5432/postgres`, `mysql://root@127.0.0.1:3306/mysql`).
//!
//! Least privilege: each test database gets its own login (a non-superuser PostgreSQL role, a
//! database-scoped MariaDB user) holding exactly the grants README "Privileges" documents, and
//! `TestDb::url` logs in as it — so the whole suite runs sluice as users run it in production, and
//! a privilege sluice needs but the README does not name fails a test. The test's own setup uses
//! the same login (its tables are owned by it, as an application's are by its migration role);
//! `su_url` / `pg_su` / `my_su` are for the few steps that need the server's administrator
//! (private roles, server settings, extensions), each saying why. `SLUICE_TEST_AS_SUPERUSER=1`
//! runs everything as the administrator instead (to tell a privilege problem from another).

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
    with_db_user(url, db, None)
}

/// `url` with its database (and, when given, its user, dropping any password) replaced.
fn with_db_user(url: &str, db: &str, user: Option<&str>) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, format!("?{q}")),
        None => (url, String::new()),
    };
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let path_start = base[scheme_end..]
        .find('/')
        .map(|i| i + scheme_end)
        .unwrap_or(base.len());
    let authority = &base[scheme_end..path_start];
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let authority = match user {
        Some(u) => format!("{u}@{host}"),
        None => authority.to_string(),
    };
    format!("{}{authority}/{db}{query}", &base[..scheme_end])
}

fn as_superuser() -> bool {
    std::env::var("SLUICE_TEST_AS_SUPERUSER").is_ok_and(|v| v == "1")
}

/// The documented PostgreSQL grants (README "Privileges") for a role that owns the tables it
/// migrates: the history schema, new tables, the optional lock-holder report and lag pacing
/// (`pg_monitor`), and scratch databases for `rehearse` (`CREATEDB`).
fn pg_grants(db: &str, role: &str) -> (String, String) {
    let server = format!(
        "CREATE ROLE \"{role}\" LOGIN NOSUPERUSER NOCREATEROLE NOREPLICATION NOBYPASSRLS CREATEDB;
         GRANT CREATE ON DATABASE \"{db}\" TO \"{role}\";
         GRANT pg_monitor TO \"{role}\";"
    );
    let in_db = format!("GRANT USAGE, CREATE ON SCHEMA public TO \"{role}\";");
    (server, in_db)
}

/// The documented MariaDB/MySQL grants: the database-scoped list, what the tests' own migrations
/// need besides (views, routines, foreign keys), `PROCESS` for the optional lock-holder report,
/// and the same list on the scratch databases `rehearse` creates.
fn mysql_grants(db: &str, user: &str) -> Vec<String> {
    let list = "SELECT, INSERT, UPDATE, DELETE, CREATE, DROP, ALTER, INDEX, TRIGGER, LOCK TABLES, \
                CREATE VIEW, SHOW VIEW, CREATE ROUTINE, ALTER ROUTINE, EXECUTE, REFERENCES";
    vec![
        format!("CREATE USER '{user}'@'%'"),
        format!("GRANT {list} ON `{db}`.* TO '{user}'@'%'"),
        format!("GRANT {list} ON `sluice\\_rehearse\\_%`.* TO '{user}'@'%'"),
        format!("GRANT PROCESS ON *.* TO '{user}'@'%'"),
    ]
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
    /// URL of the test database as its least-privilege login (for sluice and for the test's own
    /// connections).
    pub url: String,
    /// URL of the test database as the server's administrator: only for what needs it.
    pub su_url: String,
    /// The least-privilege login (a role / user of the same name as the database), if any.
    login: Option<String>,
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
        let su_url = with_db(&admin, &name);
        let login = (!as_superuser()).then(|| name.clone());
        if let Some(role) = &login {
            let (server, in_db) = pg_grants(&name, role);
            client
                .batch_execute(&server)
                .await
                .expect("create the test's role");
            let (db_client, conn) = tokio_postgres::connect(&su_url, tokio_postgres::NoTls)
                .await
                .expect("connect to test db");
            tokio::spawn(conn);
            db_client
                .batch_execute(&in_db)
                .await
                .expect("grant on schema public");
        }
        TestDb {
            server: Server::Postgres,
            url: with_db_user(&admin, &name, login.as_deref()),
            su_url,
            login,
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
        let login = (!as_superuser()).then(|| name.clone());
        if let Some(user) = &login {
            for g in mysql_grants(&name, user) {
                conn.query_drop(&g)
                    .await
                    .unwrap_or_else(|e| panic!("{g}: {e}"));
            }
        }
        conn.disconnect().await.ok();
        TestDb {
            server: Server::MariaDb,
            url: with_db_user(&admin, &name, login.as_deref()),
            su_url: with_db(&admin, &name),
            login,
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

    /// A PostgreSQL client on the test database as the server's administrator.
    pub async fn pg_su(&self) -> tokio_postgres::Client {
        assert_eq!(self.server, Server::Postgres);
        let (client, conn) = tokio_postgres::connect(&self.su_url, tokio_postgres::NoTls)
            .await
            .expect("connect to test db as administrator");
        tokio::spawn(conn);
        client
    }

    /// A MariaDB connection on the test database as the server's administrator.
    pub async fn my_su(&self) -> mysql_async::Conn {
        assert_eq!(self.server, Server::MariaDb);
        mysql_async::Conn::from_url(&self.su_url)
            .await
            .expect("connect to test db as administrator")
    }

    /// The test database's URL logging in as `userinfo` (`user` or `user:password`) instead.
    pub fn url_as(&self, userinfo: &str) -> String {
        with_db_user(&self.admin_url, &self.name, Some(userinfo))
    }

    /// The user name `url` logs in as.
    pub fn user(&self) -> String {
        match &self.login {
            Some(l) => l.clone(),
            None => {
                let after = self.admin_url.split_once("://").map_or("", |(_, r)| r);
                let info = after.split_once('@').map_or("", |(i, _)| i);
                info.split(':').next().unwrap_or("").to_string()
            }
        }
    }

    /// The least-privilege login the test database's `url` uses (None when the suite runs as the
    /// administrator).
    pub fn login(&self) -> Option<&str> {
        self.login.as_deref()
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if self.keep {
            eprintln!("keeping test database {}", self.name);
            return;
        }
        let (server, name, admin) = (self.server, self.name.clone(), self.admin_url.clone());
        let login = self.login.clone();
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
                            if let Some(role) = &login {
                                // Objects it owns elsewhere (a rehearse scratch database left
                                // by a failed test) would keep the role: drop what is left.
                                let _ = client
                                    .batch_execute(&format!(
                                        "DROP OWNED BY \"{role}\" CASCADE; DROP ROLE IF EXISTS \"{role}\""
                                    ))
                                    .await;
                            }
                        }
                    }
                    Server::MariaDb => {
                        use mysql_async::prelude::Queryable;
                        if let Ok(mut conn) = mysql_async::Conn::from_url(&admin).await {
                            let _ = conn
                                .query_drop(format!("DROP DATABASE IF EXISTS `{name}`"))
                                .await;
                            if let Some(user) = &login {
                                let _ = conn
                                    .query_drop(format!("DROP USER IF EXISTS '{user}'@'%'"))
                                    .await;
                            }
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
        assert_eq!(
            with_db_user(
                "postgres://postgres:pw@h:5432/postgres?sslmode=disable",
                "x",
                Some("r")
            ),
            "postgres://r@h:5432/x?sslmode=disable"
        );
        assert_eq!(with_db_user("mysql://h/y", "x", Some("r")), "mysql://r@h/x");
    }
}
