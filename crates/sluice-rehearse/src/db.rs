//! Sessions on either engine, scratch databases, and error codes as users read them (SQLSTATE on
//! PostgreSQL, the error number on MariaDB/MySQL).

use mysql_async::prelude::Queryable;
use sluice_core::dburl::DbUrl;
use sluice_core::engine::Engine;
use sluice_core::error::{Error, Result};
use sluice_core::quote;
use sluice_core::target::EngineKind;

pub fn is_pg(url: &DbUrl) -> bool {
    url.kind() == EngineKind::Postgres
}

/// The engine for a URL (the same choice the binary makes).
pub async fn engine(url: &DbUrl) -> Result<Box<dyn Engine>> {
    if is_pg(url) {
        Ok(Box::new(sluice_postgres::PgEngine::connect(url).await?))
    } else {
        Ok(Box::new(sluice_mysql::MySqlEngine::connect(url).await?))
    }
}

/// One plain session, for the data copy and the workload clients.
pub enum Session {
    /// Kept inside its engine, which owns the connection.
    Pg(Box<sluice_postgres::PgEngine>),
    My(mysql_async::Conn),
}

impl Session {
    pub async fn open(url: &DbUrl) -> Result<Session> {
        if is_pg(url) {
            let e = sluice_postgres::PgEngine::connect(url).await?;
            // Named, so the sessions can be told apart in pg_stat_activity.
            e.client()
                .batch_execute("SET application_name = 'sluice-rehearse'")
                .await
                .map_err(|e| pg_err("setting application_name", e))?;
            Ok(Session::Pg(Box::new(e)))
        } else {
            Ok(Session::My(sluice_mysql::open_session(url, true).await?))
        }
    }

    pub fn pg(&self) -> &tokio_postgres::Client {
        match self {
            Session::Pg(e) => e.client(),
            Session::My(_) => unreachable!("a MariaDB session used as PostgreSQL"),
        }
    }

    pub fn my(&mut self) -> &mut mysql_async::Conn {
        match self {
            Session::My(c) => c,
            Session::Pg(_) => unreachable!("a PostgreSQL session used as MariaDB"),
        }
    }

    /// Runs SQL text (one or more statements), returning the error code on failure.
    pub async fn batch(&mut self, sql: &str) -> std::result::Result<(), QueryError> {
        match self {
            Session::Pg(e) => e.client().batch_execute(sql).await.map_err(QueryError::pg),
            Session::My(c) => c.query_drop(sql).await.map_err(QueryError::my),
        }
    }

    /// The first column of the first row, as text (NULL → None).
    pub async fn scalar(&mut self, sql: &str) -> Result<Option<String>> {
        match self {
            Session::Pg(e) => {
                let rows = e
                    .client()
                    .simple_query(sql)
                    .await
                    .map_err(|e| pg_err(sql, e))?;
                for m in rows {
                    if let tokio_postgres::SimpleQueryMessage::Row(r) = m {
                        return Ok(r.get(0).map(str::to_string));
                    }
                }
                Ok(None)
            }
            Session::My(c) => {
                let v: Option<mysql_async::Value> =
                    c.query_first(sql).await.map_err(|e| my_err(sql, e))?;
                Ok(v.and_then(|v| match v {
                    mysql_async::Value::NULL => None,
                    mysql_async::Value::Bytes(b) => Some(String::from_utf8_lossy(&b).into_owned()),
                    other => Some(other.as_sql(true).trim_matches('\'').to_string()),
                }))
            }
        }
    }

    /// Every row as text columns.
    pub async fn rows(&mut self, sql: &str) -> Result<Vec<Vec<Option<String>>>> {
        let mut out = Vec::new();
        match self {
            Session::Pg(e) => {
                for m in e
                    .client()
                    .simple_query(sql)
                    .await
                    .map_err(|e| pg_err(sql, e))?
                {
                    if let tokio_postgres::SimpleQueryMessage::Row(r) = m {
                        out.push((0..r.len()).map(|i| r.get(i).map(str::to_string)).collect());
                    }
                }
            }
            Session::My(c) => {
                let rows: Vec<mysql_async::Row> = c.query(sql).await.map_err(|e| my_err(sql, e))?;
                for r in rows {
                    out.push(
                        r.unwrap()
                            .into_iter()
                            .map(|v| match v {
                                mysql_async::Value::NULL => None,
                                mysql_async::Value::Bytes(b) => {
                                    Some(String::from_utf8_lossy(&b).into_owned())
                                }
                                other => Some(other.as_sql(true).trim_matches('\'').to_string()),
                            })
                            .collect(),
                    );
                }
            }
        }
        Ok(out)
    }

    pub async fn close(self) {
        if let Session::My(c) = self {
            let _ = c.disconnect().await;
        }
    }
}

/// A failed query as the workload records it.
#[derive(Debug, Clone)]
pub struct QueryError {
    /// SQLSTATE (PostgreSQL), error number (MariaDB/MySQL), or `conn` when the session broke.
    pub code: String,
    pub message: String,
}

impl QueryError {
    pub fn pg(e: tokio_postgres::Error) -> QueryError {
        match e.as_db_error() {
            Some(d) => QueryError {
                code: d.code().code().to_string(),
                message: d.message().to_string(),
            },
            None => QueryError {
                code: "conn".into(),
                message: e.to_string(),
            },
        }
    }

    pub fn my(e: mysql_async::Error) -> QueryError {
        match e {
            mysql_async::Error::Server(se) => QueryError {
                code: se.code.to_string(),
                message: se.message,
            },
            other => QueryError {
                code: "conn".into(),
                message: other.to_string(),
            },
        }
    }
}

pub fn pg_err(context: &str, e: tokio_postgres::Error) -> Error {
    let q = QueryError::pg(e);
    Error::database(short(context), format!("{} ({})", q.message, q.code))
}

pub fn my_err(context: &str, e: mysql_async::Error) -> Error {
    let q = QueryError::my(e);
    Error::database(short(context), format!("{} ({})", q.message, q.code))
}

fn short(sql: &str) -> String {
    let one: String = sql.split_whitespace().collect::<Vec<_>>().join(" ");
    if one.chars().count() > 120 {
        format!("{}…", one.chars().take(120).collect::<String>())
    } else {
        one
    }
}

/// A scratch database: created on the server of `admin` (whose own database is used only to issue
/// CREATE/DROP DATABASE), dropped by [`Scratch::drop_now`].
#[derive(Debug, Clone)]
pub struct Scratch {
    pub name: String,
    pub url: DbUrl,
    admin: DbUrl,
}

impl Scratch {
    pub async fn create(admin: &DbUrl, label: &str) -> Result<Scratch> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let name = format!("sluice_rehearse_{label}_{}_{nanos:09}", std::process::id());
        let sql = if is_pg(admin) {
            format!("CREATE DATABASE {}", quote::pg::ident(&name))
        } else {
            format!("CREATE DATABASE {}", quote::mysql::ident(&name))
        };
        admin_exec(admin, &sql).await?;
        Ok(Scratch {
            url: admin.with_database(&name),
            name,
            admin: admin.clone(),
        })
    }

    pub async fn drop_now(&self) -> Result<()> {
        let sql = if is_pg(&self.admin) {
            // FORCE: workload sessions a Ctrl-C left behind must not keep the scratch alive.
            format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                quote::pg::ident(&self.name)
            )
        } else {
            format!(
                "DROP DATABASE IF EXISTS {}",
                quote::mysql::ident(&self.name)
            )
        };
        admin_exec(&self.admin, &sql).await
    }
}

async fn admin_exec(admin: &DbUrl, sql: &str) -> Result<()> {
    if is_pg(admin) {
        let e = sluice_postgres::PgEngine::connect(admin).await?;
        e.client()
            .batch_execute(sql)
            .await
            .map_err(|e| pg_err(sql, e))
    } else {
        let mut c = sluice_mysql::open_session(admin, false).await?;
        let r = c.query_drop(sql).await.map_err(|e| my_err(sql, e));
        let _ = c.disconnect().await;
        r
    }
}
