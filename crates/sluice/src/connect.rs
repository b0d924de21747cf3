//! Picks the engine for a URL.

use sluice_core::dburl::DbUrl;
use sluice_core::engine::Engine;
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
            Ok(Box::new(sluice_mysql::MySqlEngine::connect(url).await?))
        }
    }
}
