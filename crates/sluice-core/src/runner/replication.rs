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
//! sluice cannot see the subscribers from there — unless it is given them (`--subscriber-url`):
//! then it reads each one and refuses (exit 2) a column added here to a table a subscriber takes
//! without that column, as it refuses a subscriber it cannot read or one that does not subscribe
//! to this database. A type change a subscriber's column does not share is said: values travel as
//! text, so the apply worker stops only at the first value the subscriber's type cannot take
//! (an `integer` subscriber takes `bigint` values until one passes 2^31).

use super::*;
use crate::analysis::ir::Action;

/// What the pending migrations mean for logical replication: an error for an order that would stop
/// replication, else the warnings to show.
///
/// `runs`: which part of them runs (`down` reverts: what it adds and removes is checked the same
/// way; a rollback removes what the expand phase added); `items`: each migration with the
/// statements already done; `adds`: the run adds columns (up's
/// expand or one-step run); `removes`: it removes them (a contract phase, or as written);
/// `subscribers`: the URLs of this publisher's subscribers to check (`--subscriber-url`).
pub(crate) async fn check(
    engine: &mut dyn Engine,
    runs: Runs,
    items: &[(&Migration, usize)],
    adds: bool,
    removes: bool,
    subscribers: &[String],
    helpers: &[Helper],
) -> Result<Vec<String>> {
    let target = engine.target();
    if target.engine != crate::target::EngineKind::Postgres {
        // Given for MariaDB/MySQL the URLs would be silently ignored: said, not trusted.
        if !subscribers.is_empty() {
            return Err(Error::usage(
                format!("--subscriber-url names subscribers of PostgreSQL logical replication, and this database is {}", target.engine),
                "leave out --subscriber-url (and subscriber_urls in sluice.toml, SLUICE_SUBSCRIBER_URLS) for this database",
            ));
        }
        return Ok(vec![]);
    }
    if items.is_empty() {
        return Ok(vec![]);
    }
    let rep = engine.logical_replication().await?;
    let which = match runs {
        Runs::Up => "migration",
        Runs::Down => "the down part of migration",
        Runs::Rollback => "the rollback of migration",
    };
    let mut warnings = Vec::new();
    if rep.published.is_empty() && !subscribers.is_empty() && adds {
        warnings.push("--subscriber-url: this database publishes no table (no publication), so there is nothing to check on its subscribers — is the database URL the publisher's?".to_string());
    }
    if rep.published.is_empty() && rep.subscribed.is_empty() {
        return Ok(warnings);
    }
    let key = |t: &crate::analysis::ir::QName| {
        format!("{}.{}", t.schema.as_deref().unwrap_or("public"), t.name)
    };
    // On this publisher: columns added to published tables, and column type changes.
    let mut added: Vec<Added> = Vec::new();
    let mut retyped: Vec<Retyped> = Vec::new();
    for (m, resume_from) in items {
        let dir = match runs {
            Runs::Down => Direction::Down,
            Runs::Up | Runs::Rollback => Direction::Up,
        };
        let Some(part) = m.part(dir) else {
            continue;
        };
        let Ok(split) = sql::split(target.engine, &part.sql) else {
            continue;
        };
        for s in split.iter().skip(*resume_from) {
            let st = crate::analysis::ir::build(target.engine, 0, s, 0, &s.sql);
            for a in st.actions() {
                let (table, column, what) = match (a, runs) {
                    // A rollback of the expand phase drops what it added: a rename's new name,
                    // an added column; a dropped column was only kept.
                    (Action::RenameColumn { table, to, .. }, Runs::Rollback) => (table, to, "drop"),
                    (Action::AddColumn { table, column, .. }, Runs::Rollback) => {
                        (table, &column.name, "drop")
                    }
                    (_, Runs::Rollback) => continue,
                    (Action::DropColumn { table, column, .. }, _) => (table, column, "drop"),
                    (Action::RenameColumn { table, from, .. }, _) => (table, from, "rename"),
                    (Action::AddColumn { table, column, .. }, _) => (table, &column.name, "add"),
                    (
                        Action::AlterColumnType {
                            table,
                            column,
                            new_type,
                            ..
                        },
                        _,
                    ) => {
                        if adds && rep.published.contains_key(&key(table)) {
                            retyped.push(Retyped {
                                migration: m.label(),
                                table: key(table),
                                column: column.clone(),
                                new_type: new_type.clone(),
                            });
                        }
                        continue;
                    }
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
                                        "{which} {} would {what} column {t}.{column} on this subscriber (subscription {sub}), and sluice cannot tell whether the publisher still sends it: {why}",
                                        m.label()
                                    ),
                                    "run sluice as a superuser here (it reads the publisher's table through the subscription's connection), after the column has left the publisher",
                                ));
                            }
                        };
                        if still {
                            return Err(Error::usage(
                                format!(
                                    "{which} {} would {what} column {t}.{column} on this subscriber while the publisher (subscription {sub}) still has it: the subscription's apply worker would stop at the next change of {t} (\"missing replicated column\") and replication would halt",
                                    m.label()
                                ),
                                match runs {
                                    Runs::Up => "migrate the publisher first (`sluice up` there, and `sluice complete` where the change runs in two phases, so the column is gone), then run `sluice up` here",
                                    Runs::Down => "roll the migration back on the publisher first (`sluice down` there, so the column is gone), then run `sluice down` here",
                                    Runs::Rollback => "roll the expand phase back on the publisher first (`sluice rollback` there, so the column is gone), then run `sluice rollback` here",
                                },
                            ));
                        }
                    }
                }
                if what != "drop" && adds && rep.published.contains_key(&t) {
                    let new = match a {
                        Action::RenameColumn { to, .. } => to.as_str(),
                        _ => column.as_str(),
                    };
                    added.push(Added {
                        migration: m.label(),
                        table: t,
                        column: new.to_string(),
                        helper_for: None,
                    });
                }
            }
        }
    }
    // The helper column of a staged type change reaches the subscribers like any added column,
    // and none has it: measured, the apply worker stops at the next change of the table and stays
    // stopped after the helper is gone (the queued change still carries it).
    for h in helpers {
        if adds && rep.published.contains_key(&h.table) {
            added.push(Added {
                migration: h.migration.clone(),
                table: h.table.clone(),
                column: h.helper.clone(),
                helper_for: Some(h.column.clone()),
            });
        }
    }
    // The publications that send a column added to `table`: those without a column list.
    let sending = |table: &str| -> Vec<String> {
        rep.published[table]
            .iter()
            .filter(|p| {
                !rep.column_lists
                    .contains(&(table.to_string(), (*p).clone()))
            })
            .cloned()
            .collect()
    };
    added.retain(|a| !sending(&a.table).is_empty());
    if subscribers.is_empty() {
        for a in added.iter().filter(|a| a.helper_for.is_some()) {
            warnings.push(format!(
                "{} is published ({}): the staged type change of column {} (migration {}) adds helper column {}, which this publisher sends and no subscriber has — a subscriber's apply worker stops at the next change of {}; publish {} with a column list, or run the change as written (--as-written, or --as-written-below-rows above the table's rows), after changing the subscribers' column",
                a.table,
                sending(&a.table).join(", "),
                a.helper_for.as_deref().unwrap_or_default(),
                a.migration,
                a.column,
                a.table,
                a.table
            ));
        }
        for a in added.iter().filter(|a| a.helper_for.is_none()) {
            warnings.push(format!(
                "{} is published ({}): every subscriber needs column {} before this publisher sends it ({which} {}), or its apply worker stops at the next change of {} until the column is added there — run it on the subscribers first (or name them with --subscriber-url and sluice checks)",
                a.table,
                sending(&a.table).join(", "),
                a.column,
                a.migration,
                a.table
            ));
        }
        for r in &retyped {
            warnings.push(format!(
                "{} is published ({}): column {} becomes {} here (migration {}); values reach the subscribers as text, and a subscriber whose column cannot take one stops applying changes — change the subscribers' column first (or name them with --subscriber-url and sluice compares)",
                r.table,
                rep.published[&r.table].join(", "),
                r.column,
                r.new_type,
                r.migration
            ));
        }
        return Ok(warnings);
    }
    if added.is_empty() && retyped.is_empty() {
        return Ok(warnings);
    }
    let mut tables: Vec<String> = added
        .iter()
        .map(|a| a.table.clone())
        .chain(retyped.iter().map(|r| r.table.clone()))
        .collect();
    tables.sort();
    tables.dedup();
    let mut types: Vec<String> = retyped.iter().map(|r| r.new_type.clone()).collect();
    types.sort();
    types.dedup();
    for raw in subscribers {
        let url = crate::dburl::DbUrl::parse(raw)?;
        let name = format!(
            "{}:{}/{}",
            url.host(),
            url.port().unwrap_or(5432),
            url.database()
        );
        if url.kind() != crate::target::EngineKind::Postgres {
            return Err(Error::usage(
                format!("--subscriber-url {name} is not a PostgreSQL URL"),
                "name each subscriber of this PostgreSQL publisher with a postgres:// URL",
            ));
        }
        let view = match engine.subscriber(&url, &tables, &types).await? {
            Ok(v) => v,
            Err(why) => {
                return Err(Error::usage(
                    format!(
                        "subscriber {name} cannot be read, so sluice cannot check that it has what the pending migrations add to published tables ({}): {why}",
                        tables.join(", ")
                    ),
                    format!("make {name} reachable with this URL (a user that can read its catalog), or leave it out of --subscriber-url (sluice then only warns)"),
                ));
            }
        };
        if view.subscriptions.is_empty() {
            let what = if view.others.is_empty() {
                "it has no subscription".to_string()
            } else {
                view.others.join("; ")
            };
            return Err(Error::usage(
                format!(
                    "subscriber {name} does not subscribe to this database's publications ({what})"
                ),
                format!("give --subscriber-url the URL of a database subscribed to this one, or leave {name} out"),
            ));
        }
        let subs = view.subscriptions.join(", ");
        for a in &added {
            // Through the publications this subscriber takes.
            let sending: Vec<String> = sending(&a.table)
                .into_iter()
                .filter(|p| view.publications.contains(p))
                .collect();
            let Some(cols) = view.tables.get(&a.table) else {
                continue;
            };
            if sending.is_empty() || cols.iter().any(|(c, _)| c == &a.column) {
                continue;
            }
            if let Some(column) = &a.helper_for {
                return Err(Error::usage(
                    format!(
                        "migration {} would stage the type change of {}.{column} on this publisher with helper column {}, which publication {} sends and subscriber {name} (subscription {subs}) does not have: its apply worker would stop at the next change of {} (\"missing replicated column\") and stay stopped after the helper is gone",
                        a.migration,
                        a.table,
                        a.column,
                        sending.join(", "),
                        a.table
                    ),
                    format!("change the column on the subscriber first, then run the change here as written (`--as-written`, or `--as-written-below-rows` above the table's rows: the rewrite is not replicated), or publish {} with a column list", a.table),
                ));
            }
            return Err(Error::usage(
                format!(
                    "{which} {} would add column {}.{} on this publisher (publication {}), and subscriber {name} (subscription {subs}) has no column {} in {}: its apply worker would stop at the next change of {} (\"missing replicated column\") and replication would halt",
                    a.migration,
                    a.table,
                    a.column,
                    sending.join(", "),
                    a.column,
                    a.table,
                    a.table
                ),
                match runs {
                    Runs::Down => format!("roll the migration back on the subscriber first (`sluice down` on {name}), then run `sluice down` here"),
                    _ => format!("migrate the subscriber first (`sluice up` on {name}), then run `sluice up` here"),
                },
            ));
        }
        for r in &retyped {
            let Some(cols) = view.tables.get(&r.table) else {
                continue;
            };
            let Some((_, there)) = cols.iter().find(|(c, _)| c == &r.column) else {
                continue;
            };
            let new = view.types.get(&r.new_type).cloned().flatten();
            if new.as_deref() == Some(there.as_str()) {
                continue;
            }
            warnings.push(format!(
                "{}.{} becomes {} on this publisher (migration {}) while subscriber {name} (subscription {subs}) has it as {there}: values reach it as text, and the first one {there} cannot take stops its apply worker — change the subscriber's column first",
                r.table, r.column, r.new_type, r.migration
            ));
        }
    }
    Ok(warnings)
}

/// Which part of the migrations a run applies.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Runs {
    Up,
    Down,
    /// The expand phase undone (`sluice rollback`).
    Rollback,
}

/// A column a pending migration adds to a published table (as written, a rename's new name, or
/// a staged type change's helper).
struct Added {
    migration: String,
    table: String,
    column: String,
    /// The helper of a staged type change of this column.
    helper_for: Option<String>,
}

/// The helper column a staged type change adds (`up` finds which type changes it stages).
pub(crate) struct Helper {
    pub migration: String,
    /// `schema.table`.
    pub table: String,
    pub column: String,
    pub helper: String,
}

/// A column whose type a pending migration changes on a published table.
struct Retyped {
    migration: String,
    table: String,
    column: String,
    new_type: String,
}
