//! Logical replication (PostgreSQL): DDL is not replicated, so each side is migrated on its own,
//! and the order matters. A subscriber whose table lacks a column the publisher sends stops
//! applying changes ("logical replication target relation … is missing replicated column") until
//! someone adds it: columns go to the subscribers first and leave the publisher first.
//!
//! Before anything runs, on a subscriber: removing a column of a subscribed table — the contract
//! phase of a DROP/RENAME COLUMN (`sluice complete`, `up --complete`), or the statement as written
//! (`--as-written`) — while the publisher still has it is refused (exit 2); sluice reads the
//! publisher's table through the subscription's own connection. The expand phase runs: it keeps
//! the old column (and a rename's adds the new one, which the subscriber needs first). On a
//! publisher: adding a column to a published table (ADD COLUMN, a rename's expand) is said, as
//! sluice cannot see the subscribers from there.

use super::*;
use crate::analysis::ir::Action;

/// What the pending migrations mean for logical replication: an error for an order that would stop
/// replication, else the warnings to show.
///
/// `items`: each migration with the statements already done; `adds`: the run adds columns (up's
/// expand or one-step run); `removes`: it removes them (a contract phase, or as written).
pub(crate) async fn check(
    engine: &mut dyn Engine,
    items: &[(&Migration, usize)],
    adds: bool,
    removes: bool,
) -> Result<Vec<String>> {
    let target = engine.target();
    if target.engine != crate::target::EngineKind::Postgres || items.is_empty() {
        return Ok(vec![]);
    }
    let rep = engine.logical_replication().await?;
    if rep.published.is_empty() && rep.subscribed.is_empty() {
        return Ok(vec![]);
    }
    let key = |t: &crate::analysis::ir::QName| {
        format!("{}.{}", t.schema.as_deref().unwrap_or("public"), t.name)
    };
    let mut warnings = Vec::new();
    for (m, resume_from) in items {
        let Some(part) = m.part(Direction::Up) else {
            continue;
        };
        let Ok(split) = sql::split(target.engine, &part.sql) else {
            continue;
        };
        for s in split.iter().skip(*resume_from) {
            let st = crate::analysis::ir::build(target.engine, 0, s, 0, &s.sql);
            for a in st.actions() {
                let (table, column, what) = match a {
                    Action::DropColumn { table, column, .. } => (table, column, "drop"),
                    Action::RenameColumn { table, from, .. } => (table, from, "rename"),
                    Action::AddColumn { table, column, .. } => (table, &column.name, "add"),
                    _ => continue,
                };
                let t = key(table);
                if what != "add" && removes {
                    if let Some(sub) = rep.subscribed.get(&t) {
                        let still = match engine.publisher_columns(sub, &t).await? {
                            Ok(cols) => cols.iter().any(|c| c == column),
                            Err(why) => {
                                return Err(Error::usage(
                                    format!(
                                        "migration {} would {what} column {t}.{column} on this subscriber (subscription {sub}), and sluice cannot tell whether the publisher still sends it: {why}",
                                        m.label()
                                    ),
                                    "run sluice as a superuser here (it reads the publisher's table through the subscription's connection), after the column has left the publisher",
                                ));
                            }
                        };
                        if still {
                            return Err(Error::usage(
                                format!(
                                    "migration {} would {what} column {t}.{column} on this subscriber while the publisher (subscription {sub}) still has it: the subscription's apply worker would stop at the next change of {t} (\"missing replicated column\") and replication would halt",
                                    m.label()
                                ),
                                "migrate the publisher first (`sluice up` there, and `sluice complete` where the change runs in two phases, so the column is gone), then run `sluice up` here",
                            ));
                        }
                    }
                }
                if what != "drop" && adds {
                    if let Some(pubs) = rep.published.get(&t) {
                        let new = match a {
                            Action::RenameColumn { to, .. } => to.as_str(),
                            _ => column.as_str(),
                        };
                        warnings.push(format!(
                            "{t} is published ({}): every subscriber needs column {new} before this publisher sends it (migration {}), or its apply worker stops at the next change of {t} until the column is added there — run the migration on the subscribers first",
                            pubs.join(", "),
                            m.label()
                        ));
                    }
                }
            }
        }
    }
    Ok(warnings)
}
