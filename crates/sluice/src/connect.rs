//! Picks the engine for a URL.

use sluice_core::dburl::DbUrl;
use sluice_core::engine::{Engine, Execution, HistoryStore, LockAttempt, LockHolder};
use sluice_core::runner::RunContext;
use sluice_core::target::EngineKind;
use sluice_core::Result;

pub async fn engine(url: &DbUrl, create_database: bool) -> Result<Box<dyn Engine>> {
    match url.kind() {
        EngineKind::Postgres => {
            if create_database {
                sluice_postgres::create_database_if_missing(url).await?;
            }
            Ok(Box::new(sluice_postgres::PgEngine::connect(url).await?))
        }
        EngineKind::MariaDb | EngineKind::MySql => {
            if create_database {
                sluice_mysql::create_database_if_missing(url).await?;
            }
            let e = sluice_mysql::MySqlEngine::connect(url).await?;
            // plan, up and status all start here: each says what kind of server it works on.
            if let Some(g) = e.galera() {
                crate::render::say(&g.to_string());
            }
            Ok(Box::new(e))
        }
    }
}

fn mysql_only(url: &DbUrl, what: &str) -> Result<()> {
    if url.kind() == EngineKind::Postgres {
        return Err(sluice_core::Error::usage(
            format!("`sluice {what}` is for MariaDB/MySQL online changes"),
            "PostgreSQL changes run in place; there is nothing to swap or clean up",
        ));
    }
    Ok(())
}

/// Takes the run lock so that no `sluice up` works on the same tables meanwhile.
async fn locked_mysql(url: &DbUrl, ctx: &RunContext) -> Result<sluice_mysql::MySqlEngine> {
    let mut e = sluice_mysql::MySqlEngine::connect(url).await?;
    let deadline = std::time::Instant::now() + ctx.lock_wait;
    loop {
        match e.try_run_lock(&LockHolder::me()).await? {
            LockAttempt::Acquired => return Ok(e),
            LockAttempt::Busy(holder) => {
                if std::time::Instant::now() > deadline {
                    return Err(sluice_core::Error::LockBusy {
                        url: e.url(),
                        holder: holder.map(|h| h.to_string()),
                        waited_secs: ctx.lock_wait.as_secs(),
                    });
                }
                tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            }
        }
    }
}

pub async fn online_cutover(url: &DbUrl, ctx: &RunContext) -> Result<Vec<String>> {
    mysql_only(url, "cutover")?;
    let mut e = locked_mysql(url, ctx).await?;
    let r = e.online_cutover(&ctx.online_options(), &*ctx.say).await;
    let _ = e.release_run_lock().await;
    r
}

pub async fn online_cleanup(url: &DbUrl, abort: bool, ctx: &RunContext) -> Result<Vec<String>> {
    mysql_only(url, "cleanup")?;
    let mut e = locked_mysql(url, ctx).await?;
    let r = e.online_cleanup(abort).await;
    let _ = e.release_run_lock().await;
    r
}
