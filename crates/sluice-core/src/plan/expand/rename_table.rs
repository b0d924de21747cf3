//! `ALTER TABLE a RENAME TO b` in two phases (PostgreSQL), from what the live catalog says.
//!
//! Expand (`sluice up`): in one short transaction, committed together with the `expanded` history
//! record, the table is renamed to `b` and a view `a` selecting every column of `b` stands in for
//! it. A simple single-table view is auto-updatable, so the old version's SELECT, INSERT (the
//! table's defaults, serial and identity apply to columns it leaves out or sets to DEFAULT: the
//! server keeps them for a view column without a default of its own), UPDATE, DELETE, RETURNING,
//! SELECT ... FOR UPDATE and INSERT ... ON CONFLICT (columns) keep working through it. The view
//! carries the table's privileges (GRANTs copied) and, from PostgreSQL 15, checks them and
//! row-level security as the querying role (`security_invoker`), as the table did.
//!
//! Contract (`sluice complete`): the view is dropped (bounded, one short transaction): what the
//! rename as written leaves.
//!
//! Rollback (`sluice rollback`, before complete): the view is dropped and the table renamed back,
//! in one transaction; a no-op when the expand phase never committed.

use super::super::staged::{About, Step};
use super::Phases;
use crate::quote::pg::{ident, literal, qualified};

/// What the live catalog says of the table and the two names.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TableFacts {
    pub schema: String,
    /// The old name, as stored.
    pub from: String,
    /// The new name, as stored.
    pub to: String,
    /// Expanded already: `from` is the stand-in view and `to` the table (a rerun of `plan`,
    /// `complete`, `rollback`); the facts below are then the table's under its new name.
    pub expanded: bool,
    /// The table's columns in order.
    pub columns: Vec<String>,
    /// The table's owner, and the role that runs sluice (the view's owner unless told).
    pub owner: String,
    pub current_user: String,
    /// Table privileges: (grantee, privilege, with grant option); grantee `PUBLIC` for everyone.
    pub grants: Vec<(String, String, bool)>,
    /// Column privileges: (column, grantee, privilege, with grant option); the view gets them
    /// column by column.
    pub column_grants: Vec<(String, String, String, bool)>,
    /// Row-level security is enabled on the table.
    pub row_security: bool,
    pub server_version: i32,
}

/// The catalog query for the old name `from` (quoted SQL name) and the new name `to`
/// (unquoted, in the old name's schema). One row: relkind of the old name (or NULL), schema, the
/// old name as stored, relkind of the new name (or NULL), the owner, the current user, row
/// security, the server version, the columns (`\x1f`-separated), the column privileges, the table
/// privileges (`grantee\x1eprivilege\x1egrantable`, `\x1f`-separated). The table is `to` when
/// the old name is a view and `to` a table (expanded), else the old name's relation.
pub fn catalog_sql(from: &str, to: &str) -> String {
    format!(
        "WITH a AS (SELECT c.oid, c.relkind, n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = to_regclass({from})), \
         b AS (SELECT c.oid, c.relkind FROM pg_class c JOIN a ON c.relnamespace = (SELECT relnamespace FROM pg_class WHERE oid = a.oid) WHERE c.relname = {to}), \
         t AS (SELECT CASE WHEN a.relkind = 'v' AND b.relkind IN ('r', 'p') THEN b.oid ELSE a.oid END AS oid FROM a LEFT JOIN b ON true) \
         SELECT a.relkind::text, a.nspname::text, a.relname::text, b.relkind::text, pg_get_userbyid(c.relowner)::text, current_user::text, c.relrowsecurity::text, current_setting('server_version_num'), \
         (SELECT string_agg(attname::text, E'\\x1f' ORDER BY attnum) FROM pg_attribute WHERE attrelid = c.oid AND attnum > 0 AND NOT attisdropped), \
         (SELECT string_agg(concat_ws(E'\\x1e', a.attname::text, CASE WHEN x.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(x.grantee)::text END, x.privilege_type, x.is_grantable::text), E'\\x1f' ORDER BY a.attnum, x.grantee, x.privilege_type) FROM pg_attribute a CROSS JOIN LATERAL aclexplode(a.attacl) x WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attacl IS NOT NULL AND x.grantee <> c.relowner), \
         (SELECT string_agg(concat_ws(E'\\x1e', CASE WHEN x.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(x.grantee)::text END, x.privilege_type, x.is_grantable::text), E'\\x1f' ORDER BY x.grantee, x.privilege_type) FROM aclexplode(c.relacl) x WHERE x.grantee <> c.relowner) \
         FROM a LEFT JOIN b ON true JOIN t ON true JOIN pg_class c ON c.oid = t.oid",
        from = literal(from),
        to = literal(to)
    )
}

/// [`TableFacts`] from the one row of [`catalog_sql`] (None: no row, the old name does not
/// exist). Err: why the two phases cannot run on what the old name is.
pub fn facts(
    row: Option<&[Option<String>]>,
    from: &str,
    to: &str,
) -> Result<Option<TableFacts>, String> {
    let Some(r) = row else { return Ok(None) };
    let get = |i: usize| r.get(i).cloned().flatten().unwrap_or_default();
    let list = |i: usize| -> Vec<String> {
        r.get(i)
            .cloned()
            .flatten()
            .map(|s| s.split('\x1f').map(str::to_string).collect())
            .unwrap_or_default()
    };
    let (kind, to_kind) = (get(0), get(3));
    let expanded = kind == "v" && (to_kind == "r" || to_kind == "p");
    if !expanded && kind != "r" && kind != "p" {
        let what = match kind.as_str() {
            "v" => "a view",
            "m" => "a materialized view",
            "f" => "a foreign table",
            "S" => "a sequence",
            _ => "not a table",
        };
        return Err(format!(
            "{from} is {what}: the two phases rename a table behind a stand-in view"
        ));
    }
    Ok(Some(TableFacts {
        schema: get(1),
        from: get(2),
        to: to.to_string(),
        expanded,
        owner: get(4),
        current_user: get(5),
        row_security: get(6) == "true",
        server_version: get(7).parse().unwrap_or(0),
        columns: list(8),
        column_grants: list(9)
            .into_iter()
            .filter_map(|g| {
                let mut p = g.split('\x1e');
                Some((
                    p.next()?.to_string(),
                    p.next()?.to_string(),
                    p.next()?.to_string(),
                    p.next()? == "true",
                ))
            })
            .collect(),
        grants: list(10)
            .into_iter()
            .filter_map(|g| {
                let mut p = g.split('\x1e');
                Some((
                    p.next()?.to_string(),
                    p.next()?.to_string(),
                    p.next()? == "true",
                ))
            })
            .collect(),
    }))
}

/// The GRANT statements that give the view the table's privileges, one per grantee and grant
/// option (grantees and privileges in catalog order, so a rerun plans the same text): table
/// privileges, then column privileges (`SELECT ("a", "b"), UPDATE ("b")`) — a role that may use
/// only some columns of the table may use the same columns of the view, no more.
fn grants(f: &TableFacts, view: &str) -> Vec<String> {
    let mut by: Vec<((String, bool), Vec<String>)> = Vec::new();
    for (grantee, privilege, grantable) in &f.grants {
        let key = (grantee.clone(), *grantable);
        match by.iter_mut().find(|(k, _)| *k == key) {
            Some((_, ps)) => ps.push(privilege.clone()),
            None => by.push((key, vec![privilege.clone()])),
        }
    }
    // (grantee, grant option) → [(privilege, [column])]
    type ByColumn = Vec<((String, bool), Vec<(String, Vec<String>)>)>;
    let mut by_column: ByColumn = Vec::new();
    for (column, grantee, privilege, grantable) in &f.column_grants {
        let key = (grantee.clone(), *grantable);
        let at = match by_column.iter().position(|(k, _)| *k == key) {
            Some(i) => i,
            None => {
                by_column.push((key, vec![]));
                by_column.len() - 1
            }
        };
        let privileges = &mut by_column[at].1;
        match privileges.iter_mut().find(|(p, _)| p == privilege) {
            Some((_, cols)) => cols.push(ident(column)),
            None => privileges.push((privilege.clone(), vec![ident(column)])),
        }
    }
    by.extend(by_column.into_iter().map(|(key, privileges)| {
        let list = privileges
            .into_iter()
            .map(|(p, cols)| format!("{p} ({})", cols.join(", ")))
            .collect();
        (key, list)
    }));
    by.into_iter()
        .map(|((grantee, grantable), ps)| {
            format!(
                "GRANT {} ON {view} TO {}{}",
                ps.join(", "),
                if grantee == "PUBLIC" {
                    "PUBLIC".to_string()
                } else {
                    ident(&grantee)
                },
                if grantable { " WITH GRANT OPTION" } else { "" }
            )
        })
        .collect()
}

/// The phases of renaming table `f.from` to `f.to`; `st` is the statement as written. Err: why
/// the rename cannot run in two phases (it is then refused; `--as-written` runs it in one).
pub fn phases(st: &crate::analysis::ir::Stmt, f: &TableFacts) -> Result<Phases, String> {
    use sqlparser::ast::Statement;
    if let Some(Statement::AlterTable(at)) = st.ast.as_deref() {
        if !super::super::staged::plain_alter(at) {
            return Err("the two phases name the table plainly, which for ONLY or IF EXISTS would change what the statement does; write it without them".into());
        }
    }
    if f.row_security && f.server_version < 150000 {
        return Err("row-level security is enabled on the table, and before PostgreSQL 15 a view cannot check it as the querying role (security_invoker): the old version would see every row".into());
    }
    let old = qualified(&f.schema, &f.from);
    let new = qualified(&f.schema, &f.to);
    let cols = f
        .columns
        .iter()
        .map(|c| ident(c))
        .collect::<Vec<_>>()
        .join(", ");
    // From 15 the view checks privileges and row-level security as the querying role, as the
    // table did; before, as its owner (then refused above where row security is on). A
    // security_invoker view checks every column it selects from the table, so a role granted
    // only some columns could use none of them through it: with column privileges the view runs
    // with its owner's rights and the querying role is checked on the view's own privileges,
    // which are the table's, column by column.
    let column_privileges = !f.column_grants.is_empty();
    if column_privileges && f.row_security {
        return Err("the table has both column privileges and row-level security: a stand-in view checks the querying role's column privileges only with its owner's rights, and row-level security only as the querying role (security_invoker), not both, so the old version would gain or lose access".into());
    }
    let invoker = if f.server_version >= 150000 && !column_privileges {
        " WITH (security_invoker = true)"
    } else {
        ""
    };
    let mut expand = vec![
        format!("ALTER TABLE {old} RENAME TO {}", ident(&f.to)),
        format!("CREATE VIEW {old}{invoker} AS SELECT {cols} FROM {new}"),
    ];
    // The view's owner is the table's (sluice may run as a member of the owning role).
    if !f.owner.is_empty() && f.owner != f.current_user {
        expand.push(format!("ALTER VIEW {old} OWNER TO {}", ident(&f.owner)));
    }
    expand.extend(grants(f, &old));

    let view_there = format!(
        "EXISTS (SELECT FROM pg_class WHERE oid = to_regclass({}) AND relkind = 'v')",
        literal(&old)
    );
    let rollback = vec![super::super::staged::do_block(&format!(
        "BEGIN IF {view_there} THEN DROP VIEW {old}; ALTER TABLE {new} RENAME TO {}; END IF; END",
        ident(&f.from)
    ))];
    let precheck = vec![super::super::staged::do_block(&format!(
        "BEGIN IF to_regclass({}) IS NOT NULL THEN RAISE EXCEPTION {}, {} USING ERRCODE = 'duplicate_table'; END IF; END",
        literal(&new),
        literal("relation % already exists"),
        literal(&f.to)
    ))];
    let (a, b) = (&f.from, &f.to);
    let sees = vec![
        (
            "before".into(),
            format!("the old version reads and writes table {a}; the new version, which names {b}, must not run yet"),
        ),
        (
            "expanded (after `sluice up`)".into(),
            format!(
                "both versions run on the same rows: the new version uses table {b}, the old version view {a} over it (every column; SELECT, INSERT with the table's defaults, UPDATE, DELETE, RETURNING, SELECT ... FOR UPDATE and INSERT ... ON CONFLICT (columns) work through it, with the table's privileges). Through {a} the old version cannot: TRUNCATE, COPY {a} FROM/TO (COPY (SELECT ...) TO works), ON CONFLICT ON CONSTRAINT <name>, ALTER TABLE or other DDL, system columns (ctid), ONLY {a}. A table change that alters a column's type while the view stands fails: complete first"
            ),
        ),
        (
            "completed (after `sluice complete`)".into(),
            format!("only the new version may run: view {a} is dropped and queries naming {a} fail, as the rename as written leaves the database"),
        ),
        (
            "rolled back (after `sluice rollback`)".into(),
            format!("only the old version may run: view {a} is dropped and the table is {a} again, as before the migration"),
        ),
    ];
    let n = expand.len();
    Ok(Phases {
        precheck,
        precheck_refusal: None,
        expand: vec![Step::Sql(expand.join("; "))],
        expand_about: vec![About::catalog(
            "rename the table and create a view with the old name over it (catalog only, one short transaction committed with the `expanded` record): both names work",
        )],
        expand_atomic: n > 0,
        complete: vec![format!("DROP VIEW {old}")],
        rollback,
        rollback_refusal: None,
        complete_refusal: None,
        complete_online: None,
        rollback_guard: vec![],
        guard: super::Guard::NotNull,
        rollback_prepare: vec![],
        rollback_undo: vec![],
        sees,
        complete_description: "`sluice complete`: drop the view with the old name, in one short transaction",
        rollback_description: "`sluice rollback` (before complete): drop the view and rename the table back, in one short transaction",
        expand_locks: vec![],
        phase_lock: None,
        rollback_lock: None,
        watch: None,
        old_version: vec![],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::target::EngineKind;

    fn stmt(sql: &str) -> crate::analysis::ir::Stmt {
        let s = crate::sql::split(EngineKind::Postgres, sql).unwrap();
        crate::analysis::ir::build(EngineKind::Postgres, 0, &s[0], 0, &s[0].sql)
    }

    fn facts_of() -> TableFacts {
        TableFacts {
            schema: "app".into(),
            from: "Old T".into(),
            to: "new".into(),
            columns: vec!["id".into(), "Name".into()],
            owner: "owner".into(),
            current_user: "owner".into(),
            grants: vec![
                ("app_rw".into(), "INSERT".into(), false),
                ("app_rw".into(), "SELECT".into(), false),
                ("PUBLIC".into(), "SELECT".into(), false),
                ("admin".into(), "DELETE".into(), true),
            ],
            server_version: 150004,
            ..Default::default()
        }
    }

    #[test]
    fn expand_renames_and_stands_a_view_in_with_the_tables_privileges() {
        let st = stmt("ALTER TABLE app.\"Old T\" RENAME TO new");
        let p = phases(&st, &facts_of()).unwrap();
        assert!(p.expand_atomic);
        assert_eq!(
            p.expand[0].text(),
            "ALTER TABLE \"app\".\"Old T\" RENAME TO \"new\"; CREATE VIEW \"app\".\"Old T\" WITH (security_invoker = true) AS SELECT \"id\", \"Name\" FROM \"app\".\"new\"; GRANT INSERT, SELECT ON \"app\".\"Old T\" TO \"app_rw\"; GRANT SELECT ON \"app\".\"Old T\" TO PUBLIC; GRANT DELETE ON \"app\".\"Old T\" TO \"admin\" WITH GRANT OPTION"
        );
        assert_eq!(p.complete, ["DROP VIEW \"app\".\"Old T\""]);
        assert!(p.rollback[0].contains(
            "DROP VIEW \"app\".\"Old T\"; ALTER TABLE \"app\".\"new\" RENAME TO \"Old T\""
        ));
        // Run as another member of the owning role: the view is the owner's too.
        let mut f = facts_of();
        f.current_user = "deployer".into();
        f.server_version = 140000;
        let p = phases(&st, &f).unwrap();
        assert!(
            p.expand[0].text().contains("AS SELECT")
                && !p.expand[0].text().contains("security_invoker")
                && p.expand[0]
                    .text()
                    .contains("ALTER VIEW \"app\".\"Old T\" OWNER TO \"owner\""),
            "{:?}",
            p.expand
        );
    }

    #[test]
    fn column_privileges_are_granted_on_the_view_column_by_column() {
        let st = stmt("ALTER TABLE app.\"Old T\" RENAME TO new");
        let mut f = facts_of();
        f.grants.clear();
        f.column_grants = vec![
            ("id".into(), "app_ro".into(), "SELECT".into(), false),
            ("Name".into(), "app_ro".into(), "SELECT".into(), false),
            ("Name".into(), "app_ro".into(), "UPDATE".into(), false),
            ("Name".into(), "PUBLIC".into(), "SELECT".into(), false),
            ("id".into(), "admin".into(), "INSERT".into(), true),
        ];
        let p = phases(&st, &f).unwrap();
        assert_eq!(
            p.expand[0].text(),
            "ALTER TABLE \"app\".\"Old T\" RENAME TO \"new\"; CREATE VIEW \"app\".\"Old T\" AS SELECT \"id\", \"Name\" FROM \"app\".\"new\"; GRANT SELECT (\"id\", \"Name\"), UPDATE (\"Name\") ON \"app\".\"Old T\" TO \"app_ro\"; GRANT SELECT (\"Name\") ON \"app\".\"Old T\" TO PUBLIC; GRANT INSERT (\"id\") ON \"app\".\"Old T\" TO \"admin\" WITH GRANT OPTION"
        );
    }

    #[test]
    fn refuses_what_the_view_cannot_stand_in_for() {
        let st = stmt("ALTER TABLE t RENAME TO u");
        let mut f = facts_of();
        f.row_security = true;
        assert!(phases(&st, &f).is_ok());
        f.column_grants = vec![("id".into(), "app".into(), "SELECT".into(), false)];
        assert!(phases(&st, &f)
            .unwrap_err()
            .contains("both column privileges and row-level security"));
        f.column_grants.clear();
        f.server_version = 140000;
        assert!(phases(&st, &f).unwrap_err().contains("row-level security"));
        assert!(
            phases(&stmt("ALTER TABLE IF EXISTS t RENAME TO u"), &facts_of())
                .unwrap_err()
                .contains("ONLY or IF EXISTS")
        );
        let row = |kind: &str, to: Option<&str>| -> Vec<Option<String>> {
            vec![
                Some(kind.into()),
                Some("public".into()),
                Some("t".into()),
                to.map(str::to_string),
                Some("o".into()),
                Some("o".into()),
                Some("false".into()),
                Some("150004".into()),
                Some("id\x1fx".into()),
                Some("x\x1eapp\x1eUPDATE\x1efalse".into()),
                Some("app\x1eSELECT\x1efalse".into()),
            ]
        };
        let f = facts(Some(&row("r", None)), "t", "u").unwrap().unwrap();
        assert!(!f.expanded);
        assert_eq!(f.columns, ["id", "x"]);
        assert_eq!(f.grants, [("app".into(), "SELECT".into(), false)]);
        assert_eq!(
            f.column_grants,
            [("x".into(), "app".into(), "UPDATE".into(), false)]
        );
        assert!(
            facts(Some(&row("v", Some("r"))), "t", "u")
                .unwrap()
                .unwrap()
                .expanded
        );
        assert!(facts(Some(&row("v", None)), "t", "u")
            .unwrap_err()
            .contains("t is a view"));
        assert!(facts(Some(&row("m", None)), "t", "u")
            .unwrap_err()
            .contains("materialized view"));
        assert_eq!(facts(None, "t", "u"), Ok(None));
    }
}
