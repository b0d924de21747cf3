//! MariaDB/MySQL cannot roll DDL back: a contract or rollback whose ALTER the server refuses
//! after the phase dropped its sync triggers leaves the two names diverging (measured: a VIRTUAL
//! column on the table makes MariaDB 10.11 refuse a `DROP COLUMN` combined with any other clause,
//! 1846). So each phase's ALTERs of the table first run, in order, on an empty copy of it
//! (`CREATE TABLE … LIKE`: columns, keys, checks and options, no rows, triggers or foreign keys):
//! what the server refuses for the table's shape (an algorithm, a combination of clauses) refuses
//! the phase before anything. What depends on rows or on other tables is not seen this way; the
//! callers check foreign keys, triggers and views from the catalog.

use crate::analysis::ir::QName;
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::plan::expand::fill_not_null_mysql::{probe_names, probe_token};
use crate::plan::expand::Phases;
use crate::plan::staged::Step;
use crate::sql;

/// The ALTERs of `table` among `texts` (each one or more statements), in order.
fn alters_of(engine: &dyn Engine, table: &QName, texts: &[&str]) -> Vec<String> {
    let kind = engine.target().engine;
    let prefix = format!("ALTER TABLE {} ", crate::quote::qname(kind, table));
    texts
        .iter()
        .flat_map(|t| sql::split(kind, t).unwrap_or_default())
        .map(|s| s.sql.trim().trim_end_matches(';').to_string())
        .filter(|s| s.starts_with(&prefix))
        .collect()
}

/// The phases' DDL sequences to try: `expanding` (a first expand: the expand's ALTERs, then the
/// contract's, and again then the rollback's), or the contract's alone, or the rollback's alone.
pub(crate) enum Sequence {
    Expanding,
    Complete,
    Rollback,
}

/// The first ALTER the server refuses on an empty copy of `table`, as a refusal message (None:
/// every one ran, or the engine rolls DDL back and needs no probe). The copy is dropped.
pub(crate) async fn refusal(
    engine: &mut dyn Engine,
    table: &QName,
    phases: &Phases,
    which: Sequence,
) -> Result<Option<String>> {
    if engine.transactional_ddl() {
        return Ok(None);
    }
    let expand: Vec<&str> = phases
        .expand
        .iter()
        .filter_map(|s| match s {
            Step::Sql(sql) => Some(sql.as_str()),
            _ => None,
        })
        .collect();
    let complete: Vec<&str> = phases
        .complete_online
        .iter()
        .chain(phases.complete.iter())
        .map(String::as_str)
        .collect();
    let rollback: Vec<&str> = phases.rollback.iter().map(String::as_str).collect();
    // Each run: its statements, each with the phase it belongs to.
    let tag = |what: &'static str, texts: &[&str]| -> Vec<(&'static str, String)> {
        alters_of(engine, table, texts)
            .into_iter()
            .map(|a| (what, a))
            .collect()
    };
    let expand_part = tag("the expand phase", &expand);
    let runs: Vec<Vec<(&str, String)>> = match which {
        Sequence::Expanding => vec![
            [
                expand_part.clone(),
                tag("the contract phase (`sluice complete`)", &complete),
            ]
            .concat(),
            [
                expand_part,
                tag("the rollback (`sluice rollback`)", &rollback),
            ]
            .concat(),
        ],
        Sequence::Complete => vec![tag("the contract phase", &complete)],
        Sequence::Rollback => vec![tag("the rollback", &rollback)],
    };
    if runs.iter().all(|r| r.is_empty()) {
        return Ok(None);
    }
    if let Some(why) = hidden_fts_doc_id(engine, table).await {
        return Ok(Some(why));
    }
    let kind = engine.target().engine;
    let from = format!("ALTER TABLE {} ", crate::quote::qname(kind, table));
    // `CREATE TABLE … LIKE` waits for a session holding the table locked (`LOCK TABLES … WRITE`):
    // bounded here (plan and dry runs set no bound of their own), and said as what it is.
    let bound = "SET @sluice_probe_lwt = @@SESSION.lock_wait_timeout, SESSION lock_wait_timeout = LEAST(@@SESSION.lock_wait_timeout, 10)";
    let restore = "SET SESSION lock_wait_timeout = @sluice_probe_lwt";
    engine
        .execute(bound)
        .await
        .map_err(|e| Error::database("bounding the empty copy's lock wait", e.message))?;
    let outcome = try_runs(engine, table, &from, runs).await;
    let _ = engine.execute(restore).await;
    outcome
}

async fn try_runs(
    engine: &mut dyn Engine,
    table: &QName,
    from: &str,
    runs: Vec<Vec<(&str, String)>>,
) -> Result<Option<String>> {
    let kind = engine.target().engine;
    for alters in runs.into_iter().filter(|r| !r.is_empty()) {
        let (copy, _) = probe_names(table.schema.as_deref(), &probe_token());
        let drop = format!("DROP TABLE IF EXISTS {copy}");
        let mut steps = vec![
            drop.clone(),
            format!(
                "CREATE TABLE {copy} LIKE {}",
                crate::quote::qname(kind, table)
            ),
        ];
        steps.extend(
            alters
                .iter()
                .map(|(_, a)| format!("ALTER TABLE {copy} {}", &a[from.len()..])),
        );
        let mut failed = None;
        for (i, step) in steps.iter().enumerate() {
            if let Err(e) = engine.execute(step).await {
                failed = Some((i, e));
                break;
            }
        }
        let _ = engine.execute(&drop).await;
        if let Some((_, e)) = failed.as_ref().filter(|(_, e)| e.lock_timeout) {
            return Err(Error::Database {
                context: format!(
                    "trying the phases' ALTERs on an empty copy of {}",
                    table.display()
                ),
                message: format!(
                    "another session holds {} locked (LOCK TABLES, or a long statement): {}",
                    table.display(),
                    e.message
                ),
                help: "nothing was changed; run the same command again once that lock is released"
                    .into(),
            });
        }
        if let Some((i, e)) = failed {
            let message = match i {
                0 | 1 => format!(
                    "sluice tries the phases' ALTERs on an empty copy of {} first (CREATE TABLE … LIKE, dropped after), since MariaDB/MySQL cannot roll a failed phase back, and could not make the copy: {}. Grant CREATE, ALTER and DROP on the database (see Privileges)",
                    table.display(),
                    e.message
                ),
                _ => {
                    let (what, alter) = &alters[i - 2];
                    format!(
                        "the server refuses `{}` of {what} on this table's shape (tried on an empty copy of {}, since MariaDB/MySQL cannot roll a failed phase back): {}",
                        crate::redact::label(alter, 200),
                        table.display(),
                        e.message
                    )
                }
            };
            return Ok(Some(message));
        }
    }
    Ok(None)
}

/// A table a FULLTEXT index was dropped from keeps InnoDB's hidden `FTS_DOC_ID` column, which no
/// `LIKE` copy shows, and the server then refuses in-place column changes (1845, measured on
/// MariaDB 10.11) until the table is rebuilt. Read from InnoDB's dictionary (it needs PROCESS;
/// unreadable, nothing is said: the phases still change nothing when their ALTER is refused).
async fn hidden_fts_doc_id(engine: &mut dyn Engine, table: &QName) -> Option<String> {
    use crate::quote::mysql::literal;
    let schema = table
        .schema
        .as_deref()
        .map(literal)
        .unwrap_or_else(|| "DATABASE()".into());
    let sql = format!(
        "SELECT COUNT(*) FROM information_schema.INNODB_SYS_TABLES st JOIN information_schema.INNODB_SYS_COLUMNS sc ON sc.TABLE_ID = st.TABLE_ID AND sc.NAME = 'FTS_DOC_ID' WHERE st.NAME = CONCAT({schema}, '/', {}) AND NOT EXISTS (SELECT 1 FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = {schema} AND TABLE_NAME = {} AND INDEX_TYPE = 'FULLTEXT') AND NOT EXISTS (SELECT 1 FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = {schema} AND TABLE_NAME = {} AND COLUMN_NAME = 'FTS_DOC_ID')",
        literal(&table.name),
        literal(&table.name),
        literal(&table.name)
    );
    let n = engine
        .query_text(&sql)
        .await
        .ok()?
        .into_iter()
        .next()?
        .into_iter()
        .next()??;
    (n != "0").then(|| {
        let t = crate::quote::qname(engine.target().engine, table);
        format!(
            "{} keeps InnoDB's hidden FTS_DOC_ID column, left by a FULLTEXT index dropped from it, and the server refuses in-place column changes of such a table until it is rebuilt (1845). Rebuild it online first, in a migration of its own: `ALTER TABLE {t} FORCE, ALGORITHM=INPLACE, LOCK=NONE;`",
            table.display()
        )
    })
}
