//! sluice inside a deploy tool: connect, show what the pending migrations of a directory will do to
//! the live database, then apply them. The `sluice` command is a thin layer over these same calls.
//!
//! ```text
//! cargo run -p sluice --example embed -- postgres://postgres@127.0.0.1:5432/app ./migrations
//! ```
//!
//! (`createdb app` first; a `mysql://` or `mariadb://` URL works the same way.)

use sluice_core::dburl::DbUrl;
use sluice_core::engine::Engine;
use sluice_core::runner::{self, RunContext, UpOptions};
use sluice_core::target::EngineKind;
use std::path::Path;

/// Plans and applies the migrations in `dir`; returns the versions applied. `say` receives
/// sluice's progress lines (lock waits, index build and copy progress, each migration applied).
pub async fn deploy(
    url: &str,
    dir: &Path,
    say: impl Fn(&str) + Send + Sync + 'static,
) -> sluice_core::Result<Vec<i64>> {
    let url = DbUrl::parse(url)?;
    let mut engine: Box<dyn Engine> = match url.kind() {
        EngineKind::Postgres => Box::new(sluice_postgres::PgEngine::connect(&url).await?),
        EngineKind::MariaDb | EngineKind::MySql => {
            Box::new(sluice_mysql::MySqlEngine::connect(&url).await?)
        }
    };
    let files = sluice_core::migration::discover_for(dir, url.kind())?;
    let opts = UpOptions::default();

    // What each pending statement costs as written, and what sluice runs instead.
    let plan = runner::plan(engine.as_mut(), &files, &opts).await?;
    for m in &plan.migrations {
        println!("{} {}", m.version, m.name);
        for s in &m.statements {
            println!("  {}", s.sql.lines().next().unwrap_or_default());
            for a in &s.actions {
                println!(
                    "    as written: lock {}, {:?}, blocks {:?}",
                    a.impact.lock, a.impact.effect, a.impact.blocks
                );
                for step in &a.safe_steps {
                    println!("    sluice runs: {} (lock {})", step.sql, step.lock);
                }
            }
        }
        for f in &m.findings {
            println!("  {:?} {}: {}", f.severity, f.rule, f.message);
        }
    }

    // The same defaults as `sluice up`; a deploy tool would set its own actor and app version.
    let mut ctx = RunContext::new("embed-example", say);
    ctx.app_version = std::env::var("APP_VERSION").ok();
    let report = runner::up(engine.as_mut(), &files, &opts, &ctx).await?;
    Ok(report.applied)
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [url, dir] = args.as_slice() else {
        eprintln!("usage: embed DATABASE_URL MIGRATIONS_DIR");
        return std::process::ExitCode::from(2);
    };
    match deploy(url, Path::new(dir), |line| eprintln!("sluice: {line}")).await {
        Ok(applied) => {
            println!("applied: {applied:?}");
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            // The message and the fix, and the exit code `sluice` itself would end with.
            eprintln!("error: {e}");
            if let Some(help) = e.help() {
                eprintln!("help: {help}");
            }
            std::process::ExitCode::from(e.exit_code() as u8)
        }
    }
}
