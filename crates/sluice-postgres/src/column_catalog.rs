//! The live facts about one column that a staged type change needs (sluice-core's planner turns
//! them into steps): read at run time, since what the column carries (indexes, checks, sequence)
//! is not in the migration.

use crate::db_err;
use sluice_core::engine::{CheckFacts, ColumnCatalog, ForeignKeyFacts, IndexFacts, SequenceFacts};
use sluice_core::error::Result;
use tokio_postgres::Client;

pub async fn read(client: &Client, table: &str, column: &str) -> Result<Option<ColumnCatalog>> {
    let err = |e| db_err("reading the column's catalog", e);
    let Some(r) = client
        .query_opt(
            "SELECT n.nspname::text, c.relname::text, c.oid::bigint, a.attnum::int,
                    format_type(a.atttypid, a.atttypmod), a.attnotnull,
                    pg_get_expr(ad.adbin, ad.adrelid), a.attidentity::text, a.attgenerated::text,
                    coalesce(a.attstattarget, -1)::int, col_description(c.oid, a.attnum),
                    a.attacl IS NOT NULL, c.relkind::text, c.relispartition,
                    EXISTS (SELECT FROM pg_inherits WHERE inhrelid = c.oid OR inhparent = c.oid),
                    current_setting('server_version_num')::int,
                    (SELECT format('%I.%I', cn.nspname, co.collname)
                       FROM pg_collation co JOIN pg_namespace cn ON cn.oid = co.collnamespace
                      WHERE co.oid = a.attcollation
                        AND a.attcollation <> (SELECT typcollation FROM pg_type WHERE oid = a.atttypid)),
                    (SELECT y.typdefault FROM pg_type y WHERE y.oid = a.atttypid AND y.typtype = 'd')
               FROM pg_class c
               JOIN pg_namespace n ON n.oid = c.relnamespace
               JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = $2 AND a.attnum > 0 AND NOT a.attisdropped
               LEFT JOIN pg_attrdef ad ON ad.adrelid = c.oid AND ad.adnum = a.attnum
              WHERE c.oid = to_regclass($1)",
            &[&table, &column],
        )
        .await
        .map_err(err)?
    else {
        return Ok(None);
    };
    let oid: i64 = r.get(2);
    let attnum: i32 = r.get(3);
    let identity: String = r.get(7);
    let generated: String = r.get(8);
    let stat: i32 = r.get(9);
    let mut cat = ColumnCatalog {
        schema: r.get(0),
        table: r.get(1),
        column: column.to_string(),
        data_type: r.get(4),
        not_null: r.get(5),
        default: if identity.is_empty() { r.get(6) } else { None },
        statistics: (stat >= 0).then_some(stat),
        comment: r.get(10),
        server_version: r.get(15),
        collation: r.get(16),
        domain_default: r.get(17),
        ..Default::default()
    };
    cat.generated = !generated.is_empty();
    cat.inheritance = r.get::<_, String>(12) == "p" || r.get::<_, bool>(13) || r.get::<_, bool>(14);
    if !generated.is_empty() {
        cat.blockers.push("the column is a generated column".into());
    }
    if r.get::<_, bool>(11) {
        cat.blockers
            .push("the column has privileges of its own (GRANT on the column)".into());
    }
    match r.get::<_, String>(12).as_str() {
        "r" => {}
        // What is missing, said: a partition's column cannot take a type apart from its parent
        // ("cannot alter inherited column"), so partitions cannot change one by one, and the
        // shadow column's indexes would have to be built on each partition and attached.
        "p" => cat.blockers.push("the table is partitioned (sluice does not yet stage a change partition by partition: a partition's column cannot differ from its parent's, so the helper column and its indexes would have to be built on every partition and attached to the parent's)".into()),
        k => cat
            .blockers
            .push(format!("the relation is not a plain table (relkind {k})")),
    }
    if r.get::<_, bool>(13) {
        cat.blockers.push("the table is a partition".into());
    }
    if r.get::<_, bool>(14) {
        cat.blockers
            .push("the table has inheritance parents or children".into());
    }

    // The sequence an identity column owns (internal dependency) or a serial column owns (auto).
    for s in client
        .query(
            "SELECT sn.nspname::text, sc.relname::text, d.deptype::text, format_type(s.seqtypid, NULL),
                    s.seqstart, s.seqincrement, s.seqmin, s.seqmax, s.seqcache, s.seqcycle
               FROM pg_depend d
               JOIN pg_class sc ON sc.oid = d.objid AND sc.relkind = 'S'
               JOIN pg_namespace sn ON sn.oid = sc.relnamespace
               JOIN pg_sequence s ON s.seqrelid = sc.oid
              WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass
                AND d.refobjid = $1::bigint::oid AND d.refobjsubid = $2
              ORDER BY sc.relname",
            &[&oid, &attnum],
        )
        .await
        .map_err(err)?
    {
        let (schema, name, deptype): (String, String, String) = (s.get(0), s.get(1), s.get(2));
        if deptype == "i" && !identity.is_empty() {
            cat.identity = Some(SequenceFacts {
                schema,
                name,
                always: identity == "a",
                data_type: s.get(3),
                start: s.get(4),
                increment: s.get(5),
                min: s.get(6),
                max: s.get(7),
                cache: s.get(8),
                cycle: s.get(9),
            });
        } else if cat.owned_sequence.is_none() {
            cat.owned_sequence = Some((schema, name));
        } else {
            cat.blockers
                .push(format!("the column owns more than one sequence ({name})"));
        }
    }

    // Every index that uses the column: in its key or INCLUDE list, or in an expression or
    // predicate (the server records a dependency on the column for those).
    for i in client
        .query(
            "SELECT ic.relname::text, pg_get_indexdef(ic.oid), con.conname::text, con.contype::text,
                    coalesce(con.condeferrable, false), coalesce(con.condeferred, false),
                    x.indisclustered, x.indisreplident
               FROM pg_index x
               JOIN pg_class ic ON ic.oid = x.indexrelid
               LEFT JOIN pg_constraint con ON con.conindid = ic.oid AND con.conrelid = x.indrelid
                                          AND con.contype IN ('p', 'u', 'x')
              WHERE x.indrelid = $1::bigint::oid
                AND ($2::int::int2 = ANY (x.indkey)
                     OR EXISTS (SELECT FROM pg_depend d
                                 WHERE d.classid = 'pg_class'::regclass AND d.objid = ic.oid
                                   AND d.refclassid = 'pg_class'::regclass
                                   AND d.refobjid = x.indrelid AND d.refobjsubid = $2))
              ORDER BY ic.relname",
            &[&oid, &attnum],
        )
        .await
        .map_err(err)?
    {
        let contype: Option<String> = i.get(3);
        cat.indexes.push(IndexFacts {
            name: i.get(0),
            definition: i.get(1),
            constraint: i.get::<_, Option<String>>(2).map(|n| {
                (
                    n,
                    contype.as_deref().and_then(|t| t.chars().next()).unwrap_or('u'),
                    i.get(4),
                    i.get(5),
                )
            }),
            clustered: i.get(6),
            replica_identity: i.get(7),
        });
    }

    for c in client
        .query(
            "SELECT conname::text, pg_get_constraintdef(oid), convalidated FROM pg_constraint
              WHERE conrelid = $1::bigint::oid AND contype = 'c' AND $2::int::int2 = ANY (conkey)
              ORDER BY conname",
            &[&oid, &attnum],
        )
        .await
        .map_err(err)?
    {
        cat.checks.push(CheckFacts {
            name: c.get(0),
            definition: c.get(1),
            validated: c.get(2),
        });
    }

    // Foreign keys the column is in, either side. The staged change re-creates plain ones on plain
    // tables; a partitioned or inheriting table on either side, or a partition's clone of a
    // partitioned table's key, is refused (the clones are managed by their parent).
    for f in client
        .query(
            "SELECT con.conname::text, cn.nspname::text, cc.relname::text, fn.nspname::text, fc.relname::text,
                    pg_get_constraintdef(con.oid), con.convalidated,
                    con.conrelid = $1::bigint::oid AND $2::int::int2 = ANY (con.conkey),
                    con.confrelid = $1::bigint::oid AND $2::int::int2 = ANY (con.confkey),
                    pg_describe_object('pg_constraint'::regclass, con.oid, 0),
                    cc.relkind::text, fc.relkind::text, cc.relispartition OR fc.relispartition,
                    coalesce((to_jsonb(con) ->> 'conparentid')::oid, 0) <> 0,
                    EXISTS (SELECT FROM pg_inherits WHERE inhrelid IN (cc.oid, fc.oid) OR inhparent IN (cc.oid, fc.oid)),
                    (SELECT ARRAY[ra.attname::text, format_type(ra.atttypid, ra.atttypmod)]
                       FROM pg_attribute ra
                      WHERE con.confrelid = $1::bigint::oid AND ra.attrelid = con.conrelid
                        AND ra.attnum = con.conkey[array_position(con.confkey, $2::int::int2)])
               FROM pg_constraint con
               JOIN pg_class cc ON cc.oid = con.conrelid
               JOIN pg_namespace cn ON cn.oid = cc.relnamespace
               JOIN pg_class fc ON fc.oid = con.confrelid
               JOIN pg_namespace fn ON fn.oid = fc.relnamespace
              WHERE con.contype = 'f'
                AND ((con.conrelid = $1::bigint::oid AND $2::int::int2 = ANY (con.conkey))
                     OR (con.confrelid = $1::bigint::oid AND $2::int::int2 = ANY (con.confkey)))
              ORDER BY cn.nspname, cc.relname, con.conname",
            &[&oid, &attnum],
        )
        .await
        .map_err(err)?
    {
        let described: String = f.get(9);
        let (child_kind, parent_kind): (String, String) = (f.get(10), f.get(11));
        if child_kind != "r" || parent_kind != "r" {
            cat.blockers.push(format!(
                "{described} depends on it, and the {} table is partitioned (relkind {}): the staged form re-creates foreign keys between plain tables only",
                if child_kind != "r" { "referencing" } else { "referenced" },
                if child_kind != "r" { &child_kind } else { &parent_kind }
            ));
        } else if f.get::<_, bool>(12) || f.get::<_, bool>(13) || f.get::<_, bool>(14) {
            cat.blockers.push(format!(
                "{described} depends on it, and a table it joins is a partition or has inheritance parents or children: the staged form re-creates foreign keys between plain tables only"
            ));
        }
        cat.foreign_keys.push(ForeignKeyFacts {
            name: f.get(0),
            schema: f.get(1),
            table: f.get(2),
            ref_schema: f.get(3),
            ref_table: f.get(4),
            definition: f.get(5),
            validated: f.get(6),
            referencing: f.get(7),
            referenced: f.get(8),
            described,
            paired: f
                .get::<_, Option<Vec<String>>>(15)
                .and_then(|p| Some((p.first()?.clone(), p.get(1)?.clone()))),
        });
    }

    // BEFORE row triggers on INSERT or UPDATE (tgtype bits: ROW 1, BEFORE 2, INSERT 4, UPDATE 16).
    for t in client
        .query(
            "SELECT tgname::text FROM pg_trigger
              WHERE tgrelid = $1::bigint::oid AND NOT tgisinternal
                AND (tgtype & 3) = 3 AND (tgtype & 20) <> 0
              ORDER BY 1",
            &[&oid],
        )
        .await
        .map_err(err)?
    {
        cat.before_triggers.push(t.get(0));
    }

    // Everything else that depends on the column (views and rules, exclusion constraints, triggers naming it, generated columns, policies, statistics
    // objects, publications): the staged change cannot move them yet.
    // A plain view's rewrite rule and a policy are also told apart (kind `v`/`p`, schema, name,
    // the policy's table): a migration may drop and re-create them around the type change.
    for d in client
        .query(
            "SELECT pg_describe_object(d.classid, d.objid, d.objsubid),
                    coalesce(v.kind, p.kind, ''), coalesce(v.nspname, p.nspname, ''),
                    coalesce(v.relname, p.polname, ''), coalesce(p.relname, '')
               FROM pg_depend d
               LEFT JOIN LATERAL (
                   SELECT 'v'::text AS kind, vn.nspname::text, vc.relname::text
                     FROM pg_rewrite r
                     JOIN pg_class vc ON vc.oid = r.ev_class AND vc.relkind = 'v'
                     JOIN pg_namespace vn ON vn.oid = vc.relnamespace
                    WHERE d.classid = 'pg_rewrite'::regclass AND r.oid = d.objid
                      AND r.rulename = '_RETURN') v ON true
               LEFT JOIN LATERAL (
                   SELECT 'p'::text AS kind, pn.nspname::text, po.polname::text, pc.relname::text
                     FROM pg_policy po
                     JOIN pg_class pc ON pc.oid = po.polrelid
                     JOIN pg_namespace pn ON pn.oid = pc.relnamespace
                    WHERE d.classid = 'pg_policy'::regclass AND po.oid = d.objid) p ON true
              WHERE d.refclassid = 'pg_class'::regclass AND d.refobjid = $1::bigint::oid
                AND d.refobjsubid = $2
                AND NOT (d.classid = 'pg_class'::regclass
                         AND EXISTS (SELECT FROM pg_class k WHERE k.oid = d.objid AND k.relkind IN ('i', 'I', 'S')))
                AND NOT (d.classid = 'pg_constraint'::regclass
                         AND EXISTS (SELECT FROM pg_constraint k WHERE k.oid = d.objid
                                        AND ((k.conrelid = $1::bigint::oid AND k.contype IN ('p', 'u', 'c', 'n'))
                                             OR k.contype = 'f')))
                AND NOT (d.classid = 'pg_attrdef'::regclass
                         AND EXISTS (SELECT FROM pg_attrdef k WHERE k.oid = d.objid
                                        AND k.adrelid = $1::bigint::oid AND k.adnum = $2))
                -- The watch trigger of a rollback killed while it watched: the rerun reuses it,
                -- the swap back and complete drop it.
                AND NOT (d.classid = 'pg_trigger'::regclass
                         AND EXISTS (SELECT FROM pg_trigger k WHERE k.oid = d.objid
                                        AND k.tgfoid = to_regproc('sluice.rollback_watch')))
              ORDER BY 1",
            &[&oid, &attnum],
        )
        .await
        .map_err(err)?
    {
        let blocker = format!("{} depends on it", d.get::<_, String>(0));
        let kind: String = d.get(1);
        if let Some(kind) = kind.chars().next() {
            let m = sluice_core::engine::Movable {
                blocker: blocker.clone(),
                kind,
                schema: d.get(2),
                name: d.get(3),
                table: d.get(4),
            };
            if !cat.movable.contains(&m) {
                cat.movable.push(m);
            }
        }
        if !cat.blockers.contains(&blocker) {
            cat.blockers.push(blocker);
        }
    }

    // Every view over the column, through views over views (a view's rewrite rule depends on
    // what it reads; its own rule on itself, left out).
    for v in client
        .query(
            "WITH RECURSIVE v(oid, depth) AS (
                 SELECT r.ev_class, 1 FROM pg_depend d JOIN pg_rewrite r ON r.oid = d.objid
                  WHERE d.classid = 'pg_rewrite'::regclass AND d.refclassid = 'pg_class'::regclass
                    AND d.refobjid = $1::bigint::oid AND d.refobjsubid = $2 AND r.ev_class <> d.refobjid
                 UNION
                 SELECT r.ev_class, v.depth + 1 FROM v
                   JOIN pg_depend d ON d.refclassid = 'pg_class'::regclass AND d.refobjid = v.oid
                   JOIN pg_rewrite r ON d.classid = 'pg_rewrite'::regclass AND r.oid = d.objid
                  WHERE r.ev_class <> v.oid AND v.depth < 16
             )
             SELECT n.nspname::text, c.relname::text, c.relkind = 'm', min(v.depth) = 1
               FROM v JOIN pg_class c ON c.oid = v.oid JOIN pg_namespace n ON n.oid = c.relnamespace
              GROUP BY 1, 2, 3 ORDER BY 1, 2",
            &[&oid, &attnum],
        )
        .await
        .map_err(err)?
    {
        cat.views.push(sluice_core::engine::ViewFacts {
            schema: v.get(0),
            name: v.get(1),
            materialized: v.get(2),
            direct: v.get(3),
        });
    }

    // What DROP COLUMN removes: everything reachable from the column through normal, automatic
    // and internal dependencies (a view's rewrite rule stands for its view, so what depends on the
    // view is reached too). As the server decides: an object reached through a normal dependency
    // and through no automatic or internal one makes DROP without CASCADE fail.
    for d in client
        .query(
            "WITH RECURSIVE edge AS (
                 SELECT classid, objid, objsubid, refclassid, refobjid, refobjsubid, deptype
                   FROM pg_depend
                  WHERE deptype IN ('n', 'a', 'i')
                    AND NOT (deptype = 'i' AND classid = 'pg_rewrite'::regclass)
                 UNION ALL
                 SELECT 'pg_class'::regclass, r.ev_class, 0, 'pg_rewrite'::regclass, r.oid, 0, 'x'
                   FROM pg_rewrite r WHERE r.rulename = '_RETURN'
             ), dep AS (
                 SELECT e.classid, e.objid, e.objsubid, e.deptype, 1 AS depth FROM edge e
                  WHERE e.refclassid = 'pg_class'::regclass AND e.refobjid = $1::bigint::oid
                    AND e.refobjsubid = $2
                 UNION
                 SELECT e.classid, e.objid, e.objsubid, e.deptype, d.depth + 1 FROM edge e
                   JOIN dep d ON e.refclassid = d.classid AND e.refobjid = d.objid
                             AND (d.objsubid = 0 OR e.refobjsubid = d.objsubid)
                  WHERE d.depth < 8
             )
             SELECT coalesce(pg_describe_object('pg_class'::regclass, r.ev_class, 0),
                             pg_describe_object(dep.classid, dep.objid, dep.objsubid)) AS what,
                    bool_or(dep.deptype = 'n') AND NOT bool_or(dep.deptype IN ('a', 'i'))
               FROM dep
               LEFT JOIN pg_rewrite r ON dep.classid = 'pg_rewrite'::regclass AND r.oid = dep.objid
                                     AND r.rulename = '_RETURN'
              WHERE dep.classid <> 'pg_type'::regclass
                AND NOT (dep.classid = 'pg_trigger'::regclass
                         AND EXISTS (SELECT FROM pg_trigger k WHERE k.oid = dep.objid AND k.tgisinternal))
                AND NOT (dep.classid = 'pg_attrdef'::regclass
                         AND EXISTS (SELECT FROM pg_attrdef k WHERE k.oid = dep.objid
                                        AND k.adrelid = $1::bigint::oid AND k.adnum = $2))
              GROUP BY 1 ORDER BY 1",
            &[&oid, &attnum],
        )
        .await
        .map_err(err)?
    {
        cat.dependents.push(sluice_core::engine::Dependent {
            described: d.get(0),
            needs_cascade: d.get(1),
        });
    }
    Ok(Some(cat))
}
