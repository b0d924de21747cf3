//! Foreign keys through an online copy.
//!
//! InnoDB names a foreign key uniquely per database, children follow a RENAME of their parent, and
//! cascaded changes fire no trigger. So:
//!
//! - out of `t` (t references a parent, itself included): the shadow carries no foreign key while
//!   rows are copied (a constraint on a shadow that lags behind `t` would refuse a client's valid
//!   parent DELETE over a row already gone from `t`). The keys the ALTER as written gives (read
//!   from the twin, which carries `t`'s keys) are checked for orphans on the copy, then added to the
//!   shadow with writes held and the log drained (foreign_key_checks=0: in place, metadata only),
//!   under shadow names: `_t_new_ibfk_N` for InnoDB's own `t_ibfk_N` (InnoDB renames those with the
//!   table at the swap), `<name>_sluice` otherwise, renamed back right after the swap. A carried
//!   key whose actions change `t` (CASCADE, SET NULL, SET DEFAULT) is refused: those changes fire
//!   no trigger, so the copy would never see them.
//! - into `t` (children): with writes held and the log drained the shadow equals `t`, so each child's
//!   key is re-pointed at the shadow (under a sluice name; InnoDB refuses DROP and ADD of one name
//!   in one ALTER); the RENAME then carries it over to the new `t` in the same instant, and it gets
//!   its own name back right after. No moment without the constraint, none against the old table.

use super::copy::db;
use super::names::{Names, NAME_MAX};
use crate::quote::ident;
use mysql_async::prelude::Queryable;
use mysql_async::Conn;
use serde::{Deserialize, Serialize};
use sluice_core::error::Result;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fk {
    pub name: String,
    pub table: String,
    pub columns: Vec<String>,
    /// None: this database.
    pub ref_schema: Option<String>,
    pub ref_table: String,
    pub ref_columns: Vec<String>,
    pub on_update: String,
    pub on_delete: String,
}

impl Fk {
    /// Neither action changes the referencing table (a cascaded change fires no trigger).
    pub fn inert(&self) -> bool {
        ["RESTRICT", "NO ACTION"].contains(&self.on_update.as_str())
            && ["RESTRICT", "NO ACTION"].contains(&self.on_delete.as_str())
    }

    /// `CONSTRAINT name FOREIGN KEY (...) REFERENCES ref (...) ON DELETE .. ON UPDATE ..`.
    pub fn clause(&self, name: &str, ref_table: &str) -> String {
        let list = |cs: &[String]| cs.iter().map(|c| ident(c)).collect::<Vec<_>>().join(", ");
        let parent = match &self.ref_schema {
            Some(s) => format!("{}.{}", ident(s), ident(ref_table)),
            None => ident(ref_table),
        };
        // RESTRICT is the default and is left out: written out, InnoDB's in-place ADD records it
        // as NO ACTION (SHOW CREATE TABLE would differ from the ALTER as written).
        let action = |on: &str, rule: &str| {
            if rule == "RESTRICT" {
                String::new()
            } else {
                format!(" ON {on} {rule}")
            }
        };
        format!(
            "CONSTRAINT {} FOREIGN KEY ({}) REFERENCES {parent} ({}){}{}",
            ident(name),
            list(&self.columns),
            list(&self.ref_columns),
            action("DELETE", &self.on_delete),
            action("UPDATE", &self.on_update)
        )
    }

    pub fn describe(&self) -> String {
        format!("{}.{}", self.table, self.name)
    }
}

type FkRow = (
    String,
    String,
    String,
    String,
    String,
    String,
    String,
    String,
);

async fn read_where(conn: &mut Conn, cond: &str, arg: &str) -> mysql_async::Result<Vec<Fk>> {
    let rows: Vec<FkRow> = conn
        .exec(
            format!(
                "SELECT rc.CONSTRAINT_NAME, rc.TABLE_NAME, rc.UNIQUE_CONSTRAINT_SCHEMA, rc.REFERENCED_TABLE_NAME, \
                 rc.UPDATE_RULE, rc.DELETE_RULE, k.COLUMN_NAME, k.REFERENCED_COLUMN_NAME \
                 FROM information_schema.REFERENTIAL_CONSTRAINTS rc JOIN information_schema.KEY_COLUMN_USAGE k \
                 ON k.CONSTRAINT_SCHEMA = rc.CONSTRAINT_SCHEMA AND k.CONSTRAINT_NAME = rc.CONSTRAINT_NAME \
                 AND k.TABLE_NAME = rc.TABLE_NAME AND k.REFERENCED_TABLE_NAME IS NOT NULL \
                 WHERE rc.CONSTRAINT_SCHEMA = DATABASE() AND {cond} \
                 ORDER BY rc.TABLE_NAME, rc.CONSTRAINT_NAME, k.ORDINAL_POSITION"
            ),
            (arg,),
        )
        .await?;
    let here: Option<String> = conn.query_first("SELECT DATABASE()").await?;
    let mut out: Vec<Fk> = Vec::new();
    for (name, table, schema, ref_table, on_update, on_delete, col, ref_col) in rows {
        match out.iter_mut().find(|f| f.name == name && f.table == table) {
            Some(f) => {
                f.columns.push(col);
                f.ref_columns.push(ref_col);
            }
            None => out.push(Fk {
                name,
                table,
                ref_schema: (Some(&schema) != here.as_ref()).then_some(schema),
                ref_table,
                columns: vec![col],
                ref_columns: vec![ref_col],
                on_update,
                on_delete,
            }),
        }
    }
    Ok(out)
}

/// Foreign keys declared on `table` (a self-reference included).
pub async fn outgoing(conn: &mut Conn, table: &str) -> mysql_async::Result<Vec<Fk>> {
    read_where(conn, "rc.TABLE_NAME = ?", table).await
}

/// Foreign keys of other tables of this database pointing at `table`.
pub async fn incoming(conn: &mut Conn, table: &str) -> mysql_async::Result<Vec<Fk>> {
    let all = read_where(
        conn,
        "rc.REFERENCED_TABLE_NAME = ? AND rc.UNIQUE_CONSTRAINT_SCHEMA = DATABASE()",
        table,
    )
    .await?;
    Ok(all.into_iter().filter(|f| f.table != table).collect())
}

/// The name a key of `original`'s wears on `to` while the original holds its name: InnoDB's own
/// `<table>_ibfk_N` becomes `<to>_ibfk_N` (a RENAME of `to` back to `table` renames it back, and
/// the ALTER's unnamed keys count on from there), any other name `<name>_sluice`.
pub fn temp_name(name: &str, table: &str, to: &str) -> String {
    if let Some(n) = name.strip_prefix(&format!("{table}_ibfk_")) {
        if !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()) {
            return format!("{to}_ibfk_{n}");
        }
    }
    sluice_name(name)
}

/// `<name>_sluice`, or a prefix and a hash of the name where that is too long.
pub fn sluice_name(name: &str) -> String {
    let plain = format!("{name}_sluice");
    if plain.chars().count() <= NAME_MAX {
        return plain;
    }
    let hash = sluice_core::migration::checksum(name);
    let tail = format!("_{}_sluice", &hash[..8]);
    let keep = NAME_MAX - tail.chars().count();
    format!("{}{tail}", name.chars().take(keep).collect::<String>())
}

/// The keys of the twin (which carries `originals`, `t`'s keys, under temporary names) as `t`
/// would have them.
pub fn as_table(twin_fks: Vec<Fk>, originals: &[Fk], table: &str, twin: &str) -> Vec<Fk> {
    twin_fks
        .into_iter()
        .map(|mut f| {
            f.table = table.to_string();
            if f.ref_table == twin && f.ref_schema.is_none() {
                f.ref_table = table.to_string();
            }
            if let Some(n) = f.name.strip_prefix(&format!("{twin}_ibfk_")) {
                f.name = format!("{table}_ibfk_{n}");
            } else if let Some(o) = originals
                .iter()
                .find(|o| temp_name(&o.name, table, twin) == f.name)
            {
                f.name = o.name.clone();
            }
            f
        })
        .collect()
}

/// Whether the session checks foreign keys.
pub async fn checks_on(conn: &mut Conn) -> Result<bool> {
    let on: Option<i64> = conn
        .query_first("SELECT @@SESSION.foreign_key_checks")
        .await
        .map_err(|e| db("reading foreign_key_checks", e))?;
    Ok(on == Some(1))
}

/// Sets foreign_key_checks for the session, returning the value it had.
pub async fn checks(conn: &mut Conn, on: bool) -> Result<bool> {
    let was: Option<i64> = conn
        .query_first("SELECT @@SESSION.foreign_key_checks")
        .await
        .map_err(|e| db("reading foreign_key_checks", e))?;
    conn.query_drop(format!("SET SESSION foreign_key_checks = {}", on as u8))
        .await
        .map_err(|e| db("setting foreign_key_checks", e))?;
    Ok(was == Some(1))
}

/// Runs one ALTER with foreign_key_checks=0 (adding a key is then in place and metadata only),
/// restoring the session's setting after.
pub async fn alter_unchecked(conn: &mut Conn, table: &str, clauses: &[String]) -> Result<()> {
    if clauses.is_empty() {
        return Ok(());
    }
    // MariaDB renames the index it made for an unnamed key (`KEY pid (pid)`, flagged as the
    // key's own, also in a `CREATE TABLE … LIKE` copy) after a named key added over it: the
    // carried or re-pointed key would leave `KEY c_ibfk_1_sluice`, then `KEY c_ibfk_1`, where
    // the ALTER as written leaves `KEY pid`. The names are put back after the ALTER (a rename
    // clears the flag, so later key changes keep them).
    let adds = clauses.iter().any(|c| c.starts_with("ADD "));
    let before = if adds {
        index_names(conn, table).await?
    } else {
        vec![]
    };
    let was = checks(conn, false).await?;
    let ran = conn
        .query_drop(format!(
            "ALTER TABLE {} {}, ALGORITHM=INPLACE, LOCK=NONE",
            ident(table),
            clauses.join(", ")
        ))
        .await;
    checks(conn, was).await?;
    ran.map_err(|e| db(&format!("changing the foreign keys of `{table}`"), e))?;
    if !adds {
        return Ok(());
    }
    let after = index_names(conn, table).await?;
    let renames: Vec<String> = before
        .iter()
        .filter(|(name, _)| !after.iter().any(|(n, _)| n == name))
        .filter_map(|(name, cols)| {
            after
                .iter()
                .find(|(n, c)| c == cols && !before.iter().any(|(b, _)| b == n))
                .map(|(n, _)| format!("RENAME INDEX {} TO {}", ident(n), ident(name)))
        })
        .collect();
    if renames.is_empty() {
        return Ok(());
    }
    conn.query_drop(format!(
        "ALTER TABLE {} {}, ALGORITHM=INPLACE, LOCK=NONE",
        ident(table),
        renames.join(", ")
    ))
    .await
    .map_err(|e| db(&format!("keeping the index names of `{table}`"), e))
}

/// Each index of `table`: its name and its columns (with prefix lengths), in order.
async fn index_names(conn: &mut Conn, table: &str) -> Result<Vec<(String, String)>> {
    conn.exec(
        "SELECT INDEX_NAME, GROUP_CONCAT(CONCAT(COLUMN_NAME, '(', COALESCE(SUB_PART, ''), ')') ORDER BY SEQ_IN_INDEX) \
         FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? GROUP BY INDEX_NAME",
        (table,),
    )
    .await
    .map_err(|e| db("reading indexes", e))
}

/// Gives `to` (a twin or the shadow of `table`) the keys `fks` (as `table` has them) under the
/// temporary names; a self-reference points at `to`.
pub async fn carry(conn: &mut Conn, fks: &[Fk], table: &str, to: &str) -> Result<()> {
    let clauses: Vec<String> = fks
        .iter()
        .map(|f| {
            let parent = if f.ref_table == table && f.ref_schema.is_none() {
                to
            } else {
                f.ref_table.as_str()
            };
            format!("ADD {}", f.clause(&temp_name(&f.name, table, to), parent))
        })
        .collect();
    alter_unchecked(conn, to, &clauses).await
}

/// The first row of `table` (the shadow, holding `t`'s rows) that `fk` (as `t` has it, its
/// columns those of the shadow) would refuse: the ALTER as written refuses it with 1452.
pub async fn orphan(conn: &mut Conn, fk: &Fk, table: &str, t: &str) -> Result<Option<String>> {
    let parent = if fk.ref_table == t && fk.ref_schema.is_none() {
        ident(table)
    } else {
        match &fk.ref_schema {
            Some(s) => format!("{}.{}", ident(s), ident(&fk.ref_table)),
            None => ident(&fk.ref_table),
        }
    };
    first_orphan(
        conn,
        fk,
        (&ident(table), &parent),
        |c| format!("c.{}", ident(c)),
        "checking the copy for rows without a parent",
    )
    .await
}

/// The first row of `child` (SQL name) whose key `fk` (its columns `child`'s) has no row in
/// `parent` (SQL name), each key column shown by `shown`; a key with a NULL part needs none.
async fn first_orphan(
    conn: &mut Conn,
    fk: &Fk,
    (child, parent): (&str, &str),
    shown: impl Fn(&str) -> String,
    what: &str,
) -> Result<Option<String>> {
    let not_null: Vec<String> = fk
        .columns
        .iter()
        .map(|c| format!("c.{} IS NOT NULL", ident(c)))
        .collect();
    let join: Vec<String> = fk
        .columns
        .iter()
        .zip(&fk.ref_columns)
        .map(|(c, r)| format!("p.{} = c.{}", ident(r), ident(c)))
        .collect();
    let shown: Vec<String> = fk.columns.iter().map(|c| shown(c)).collect();
    let sql = format!(
        "SELECT CONCAT_WS(', ', {}) FROM {child} c WHERE {} AND NOT EXISTS (SELECT 1 FROM {parent} p WHERE {}) LIMIT 1",
        shown.join(", "),
        not_null.join(" AND "),
        join.join(" AND ")
    );
    conn.query_first(sql).await.map_err(|e| db(what, e))
}

/// The 1452 message the ALTER as written gives for an orphan.
pub fn orphan_message(dbname: &str, t: &str, fk: &Fk, values: &str) -> String {
    format!(
        "ERROR 1452 (23000): Cannot add or update a child row: a foreign key constraint fails (`{dbname}`.`{t}`, {}) — first row refused: ({values})",
        fk.clause(&fk.name, &fk.ref_table)
    )
}

/// The keys around one swap of `t`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Swap {
    /// `t`'s own keys before the swap.
    pub old: Vec<Fk>,
    /// The keys the new table gets, as the ALTER as written gives them.
    pub new: Vec<Fk>,
    /// Keys of other tables pointing at `t`.
    pub inbound: Vec<Fk>,
    /// A run killed during the cut-over left the children's keys on the shadow, unheld: the
    /// children are checked for rows without a parent before anything goes on (kept until the
    /// check passes, so a refused rerun refuses again).
    #[serde(default)]
    pub unchecked: bool,
}

impl Swap {
    pub fn is_empty(&self) -> bool {
        self.old.is_empty() && self.new.is_empty() && self.inbound.is_empty()
    }
}

/// With writes held and the log drained (`t` and the shadow hold the same rows, and nothing
/// changes `t`): the shadow gets the new keys under temporary names (`t` holds the names), and
/// every child key is re-pointed at the shadow under a sluice name. Stops at the first failure;
/// `undo` puts back whatever part was done.
pub async fn before_rename(conn: &mut Conn, names: &Names, t: &str, fks: &Swap) -> Result<()> {
    let adds: Vec<String> = fks
        .new
        .iter()
        .map(|f| {
            let parent = if f.ref_table == t && f.ref_schema.is_none() {
                names.shadow.as_str()
            } else {
                f.ref_table.as_str()
            };
            format!(
                "ADD {}",
                f.clause(&temp_name(&f.name, t, &names.shadow), parent)
            )
        })
        .collect();
    alter_unchecked(conn, &names.shadow, &adds).await?;
    for f in &fks.inbound {
        alter_unchecked(
            conn,
            &f.table,
            &[
                format!("DROP FOREIGN KEY {}", ident(&f.name)),
                format!("ADD {}", f.clause(&sluice_name(&f.name), &names.shadow)),
            ],
        )
        .await?;
    }
    Ok(())
}

/// The statement that makes the old table let go of `t`'s keys right after the RENAME (a stale
/// row there must not hold a parent row): InnoDB renamed `t_ibfk_N` to `_t_old_ibfk_N` with it.
pub fn drop_from_old(names: &Names, t: &str, fks: &Swap) -> Option<String> {
    if fks.old.is_empty() {
        return None;
    }
    let drops: Vec<String> = fks
        .old
        .iter()
        .map(|f| {
            let name = match temp_name(&f.name, t, &names.old) {
                n if n.ends_with("_sluice") => f.name.clone(),
                n => n,
            };
            format!("DROP FOREIGN KEY {}", ident(&name))
        })
        .collect();
    Some(format!(
        "ALTER TABLE {} {}, ALGORITHM=INPLACE, LOCK=NONE",
        ident(&names.old),
        drops.join(", ")
    ))
}

async fn names_on(conn: &mut Conn, table: &str) -> Result<Vec<(String, String)>> {
    conn.exec(
        "SELECT CONSTRAINT_NAME, REFERENCED_TABLE_NAME FROM information_schema.REFERENTIAL_CONSTRAINTS \
         WHERE CONSTRAINT_SCHEMA = DATABASE() AND TABLE_NAME = ?",
        (table,),
    )
    .await
    .map_err(|e| db("reading foreign keys", e))
}

/// Children whose key wears its sluice name get their own name back, pointing at `parent`.
async fn children_back(conn: &mut Conn, inbound: &[Fk], parent: &str) -> Result<()> {
    for f in inbound {
        let on = names_on(conn, &f.table).await?;
        let temp = sluice_name(&f.name);
        if on.iter().any(|(n, _)| *n == temp) {
            alter_unchecked(
                conn,
                &f.table,
                &[
                    format!("DROP FOREIGN KEY {}", ident(&temp)),
                    format!("ADD {}", f.clause(&f.name, parent)),
                ],
            )
            .await?;
        }
    }
    Ok(())
}

/// Whether some child's key wears its sluice name (it points at the shadow): a run was killed
/// during its cut-over after re-pointing the children, and no session held writes since.
pub async fn children_on_shadow(conn: &mut Conn, inbound: &[Fk]) -> Result<bool> {
    for f in inbound {
        let temp = sluice_name(&f.name);
        if names_on(conn, &f.table)
            .await?
            .iter()
            .any(|(n, _)| *n == temp)
        {
            return Ok(true);
        }
    }
    Ok(false)
}

/// The first child row of each key in `inbound` (its key back on `t`) that has no parent row in
/// `t`: what deletes and key updates of `t` let through while the key pointed elsewhere.
pub async fn orphans_of(conn: &mut Conn, inbound: &[Fk], t: &str) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for f in inbound {
        let first = first_orphan(
            conn,
            f,
            (&ident(&f.table), &ident(t)),
            |c| {
                format!(
                    "CONCAT({}, ' = ', COALESCE(c.{}, 'NULL'))",
                    crate::quote::literal(c),
                    ident(c)
                )
            },
            "checking the children for rows without a parent",
        )
        .await?;
        if let Some(row) = first {
            out.push(format!("`{}` ({row})", f.table));
        }
    }
    Ok(out)
}

/// Not swapped (a failed attempt, or a run killed with writes held): the shadow carries no key
/// and the children point at `t` under their own names. Safe to run at any time before the
/// swap, and again.
pub async fn undo(conn: &mut Conn, names: &Names, t: &str, fks: &Swap) -> Result<()> {
    let on = names_on(conn, &names.shadow).await?;
    let drops: Vec<String> = on
        .iter()
        .map(|(n, _)| format!("DROP FOREIGN KEY {}", ident(n)))
        .collect();
    alter_unchecked(conn, &names.shadow, &drops).await?;
    children_back(conn, &fks.inbound, t).await
}

/// After the swap: the old table holds no key, and the new `t`'s keys and the children's get
/// their own names back. Safe to run again at any point.
pub async fn after_rename(conn: &mut Conn, names: &Names, t: &str, fks: &Swap) -> Result<()> {
    let old = names_on(conn, &names.old).await?;
    let drops: Vec<String> = old
        .iter()
        .map(|(n, _)| format!("DROP FOREIGN KEY {}", ident(n)))
        .collect();
    alter_unchecked(conn, &names.old, &drops).await?;
    let on = names_on(conn, t).await?;
    let mut clauses = Vec::new();
    for f in &fks.new {
        let temp = sluice_name(&f.name);
        if on.iter().any(|(n, _)| *n == temp) {
            clauses.push(format!("DROP FOREIGN KEY {}", ident(&temp)));
            clauses.push(format!("ADD {}", f.clause(&f.name, &f.ref_table)));
        }
    }
    alter_unchecked(conn, t, &clauses).await?;
    children_back(conn, &fks.inbound, t).await
}

/// The tables whose keys point at `table` (the old table: it must not be dropped while any do).
pub async fn referencing(conn: &mut Conn, table: &str) -> Result<Vec<String>> {
    Ok(incoming(conn, table)
        .await
        .map_err(|e| db("reading foreign keys", e))?
        .iter()
        .map(Fk::describe)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temporary_names_fit_and_come_back() {
        assert_eq!(temp_name("t_ibfk_3", "t", "_t_new"), "_t_new_ibfk_3");
        assert_eq!(temp_name("t_ibfk_x", "t", "_t_new"), "t_ibfk_x_sluice");
        assert_eq!(temp_name("fk_order", "t", "_t_new"), "fk_order_sluice");
        let long = "f".repeat(64);
        let a = sluice_name(&long);
        assert_eq!(a.chars().count(), NAME_MAX);
        assert_ne!(a, sluice_name(&format!("{}g", "f".repeat(63))));
        let fk = |name: &str, r: &str| Fk {
            name: name.into(),
            table: "_t_twin".into(),
            columns: vec!["p".into()],
            ref_schema: None,
            ref_table: r.into(),
            ref_columns: vec!["id".into()],
            on_update: "RESTRICT".into(),
            on_delete: "CASCADE".into(),
        };
        let mut orig = fk("x", "p");
        orig.table = "t".into();
        let back = as_table(
            vec![
                fk("_t_twin_ibfk_2", "_t_twin"),
                fk("x_sluice", "p"),
                fk("y", "p"),
            ],
            &[orig],
            "t",
            "_t_twin",
        );
        let got: Vec<(&str, &str, &str)> = back
            .iter()
            .map(|f| (f.table.as_str(), f.name.as_str(), f.ref_table.as_str()))
            .collect();
        assert_eq!(
            got,
            [("t", "t_ibfk_2", "t"), ("t", "x", "p"), ("t", "y", "p")]
        );
    }
}
