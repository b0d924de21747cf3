//! Keeping the table's own triggers from firing for a backfill that stands in for a DDL rewrite.
//!
//! `ALTER TABLE … ADD COLUMN … DEFAULT volatile()` or `ALTER COLUMN … TYPE` rewrites the table
//! without firing a single trigger; sluice's staged form updates every row in batches, which
//! would fire the table's UPDATE triggers once per row (an `updated_at` trigger touches every
//! row, an audit trigger logs every row). The batches run with `session_replication_role =
//! replica` on sluice's own session, under which ordinary triggers do not fire; where that cannot
//! be done (a role without the right, triggers enabled ALWAYS or REPLICA) sluice says so.

use sluice_core::error::Result;
use tokio_postgres::Client;

/// The triggers an UPDATE of the table (or its partitions) fires, as (name, tgenabled, sluice's).
const FIRING: &str = "SELECT t.tgname::text, t.tgenabled::text,
        t.tgname::text ~ '_sluice_(sync|rename|back|watch|fill)$'
   FROM pg_trigger t
  WHERE (t.tgrelid = to_regclass($1)
         -- a partitioned table's triggers are cloned onto its partitions (no rows for a plain table)
         OR t.tgrelid IN (SELECT relid FROM pg_partition_tree(to_regclass($1))))
    AND NOT t.tgisinternal AND t.tgenabled <> 'D' AND (t.tgtype & 16) <> 0
  ORDER BY 1";

/// Before the batches: when an UPDATE of the table fires triggers (its own, or sluice's sync
/// triggers), puts the session in `session_replication_role = replica` (true: the caller resets
/// it after the batches). Where
/// that cannot keep them quiet — a trigger enabled ALWAYS (fires anyway) or REPLICA (would fire
/// only then), or a role that may not set the parameter — the batches run as before, firing them,
/// and the returned warning says so (with the fix); the caller says it before the first batch.
pub async fn silence(client: &Client, table: &str) -> Result<(bool, Option<String>)> {
    let rows = client
        .query(FIRING, &[&table])
        .await
        .map_err(|e| crate::db_err("reading the table's triggers", e))?;
    if rows.is_empty() {
        return Ok((false, None));
    }
    // sluice's own sync triggers are silenced too when the role may (the batch sets what they
    // would set, and a row without a PL/pgSQL call is about a quarter cheaper to update), but
    // firing them is no harm: only the table's own triggers are worth a warning.
    let names = |want: &dyn Fn(&str) -> bool| -> Vec<String> {
        rows.iter()
            .filter(|r| !r.get::<_, bool>(2) && want(r.get::<_, String>(1).as_str()))
            .map(|r| r.get::<_, String>(0))
            .collect()
    };
    let own = names(&|_| true);
    let all = own.join(", ");
    let warning = |why: String, fix: &str| {
        format!(
            "warning: the backfill of {table} stands in for the statement's table rewrite, which fires no trigger, but its batches fire {table}'s UPDATE trigger(s) {all} once for every row ({why}); {fix}"
        )
    };
    let loud = names(&|e| e == "A" || e == "R");
    if !loud.is_empty() {
        return Ok((
            false,
            Some(warning(
                format!("{} enabled ALWAYS or REPLICA", loud.join(", ")),
                "to avoid it, make them ordinary triggers for the migration (`ALTER TABLE … ENABLE TRIGGER name`) or run the statement with `sluice up --as-written` in a maintenance window",
            )),
        ));
    }
    if let Err(e) = client
        .batch_execute("SET session_replication_role = replica")
        .await
    {
        if own.is_empty() {
            return Ok((false, None));
        }
        let why = e
            .as_db_error()
            .map(|d| d.message().to_string())
            .unwrap_or_else(|| e.to_string());
        return Ok((
            false,
            Some(warning(
                format!("this role may not turn them off for its own session: {why}"),
                "to avoid it, run sluice as a role that may set session_replication_role (a superuser; from PostgreSQL 15 also after `GRANT SET ON PARAMETER session_replication_role TO <role>`), or run the statement with `sluice up --as-written` in a maintenance window",
            )),
        ));
    }
    Ok((true, None))
}

/// After the batches (also after a failure): ordinary triggers fire again on this session.
pub async fn restore(client: &Client) -> Result<()> {
    client
        .batch_execute("RESET session_replication_role")
        .await
        .map_err(|e| crate::db_err("resetting session_replication_role", e))
}
