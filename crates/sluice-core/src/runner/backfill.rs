//! `sluice backfill`.

use super::*;

/// A data migration in batches (`sluice backfill`), under the run lock and the lock timeout.
pub async fn backfill(
    engine: &mut dyn Engine,
    spec: &crate::engine::BackfillSpec,
    ctx: &RunContext,
) -> Result<crate::engine::BackfillReport> {
    // Refused before the run lock or any row is touched.
    sql::check_backfill_input(engine.target().engine, &spec.set, spec.filter.as_deref())?;
    // MariaDB/MySQL batch only the expand phase of a two-phase rename so far (its SET and filter
    // are sluice's own): the command itself is not offered there yet.
    if engine.target().engine.is_mysql_family() {
        return Err(crate::engine::backfill_not_supported(engine.target()));
    }
    locked!(engine, ctx, {
        engine.ensure_history().await?;
        engine.set_lock_timeout(ctx.lock_timeout).await?;
        let report = engine.backfill(spec, &*ctx.say).await?;
        // Every row it touched changed: statistics now, as `up` does after its backfills, not
        // when autovacuum comes by. An optimisation: a failure is said, never the command's.
        if let Some(sql) = sql::backfill_analyze(engine.target().engine, &spec.table, &spec.set) {
            if let Err(e) = engine.execute(&sql).await {
                (ctx.say)(&format!(
                    "warning: `{sql}` did not run: {}; the backfill is done, but the planner has no fresh statistics on the backfilled column(s) until autovacuum analyzes {}: run `{sql}` later",
                    e.message, spec.table
                ));
            }
        }
        Ok(report)
    })
}
