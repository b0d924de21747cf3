//! `mysql-enum-reorder` (MariaDB/MySQL): MODIFY/CHANGE of an ENUM or SET column whose new member list does
//! not only append to the old one (reorder, removal, insertion or rename of a member), which copies the table.
//!
//! Verified on MariaDB 10.11: appending members is INSTANT; inserting one in the middle, reordering or
//! removing needs ALGORITHM=COPY (writes blocked). Appending also needs COPY when it changes the storage
//! size: an ENUM going past 255 members (1 → 2 bytes), a SET past 8, 16, 24 or 32 members (1, 2, 3, 4, 8
//! bytes) — verified for ENUM 255 → 256 and SET 8 → 9. The old list comes from `ctx.column_type` (earlier
//! migrations of the lint run, or the live schema); unknown: a Warning that sluice cannot tell offline.
//! A change between ENUM/SET and another type is `mysql-modify-column`'s.

use super::mysql_modify_column::enum_members;
use super::prelude::*;
use super::require_lock_timeout::{ident_sql, name_sql};

pub const RULE: Rule = Rule {
    id: "mysql-enum-reorder",
    severity: Severity::Error,
    engines: Engines::MySqlFamily,
    summary: "ENUM/SET change that is not a pure append at the end (reorder, removal, insertion)",
    why: "ENUM and SET store the position of a member, not its text: any change other than appending members at \
          the end rewrites every row, so the table is copied (ALGORITHM=COPY) and writes wait for the whole copy. \
          Appending is instant unless it changes the storage size (ENUM past 255 members; SET past 8, 16, 24 or 32)",
    safe: "ALTER TABLE t MODIFY status ENUM('new', 'paid', 'shipped', 'refunded') NOT NULL, ALGORITHM=INSTANT;  -- new values only at the end",
    check,
};

fn storage(is_set: bool, n: usize) -> u8 {
    if !is_set {
        return if n <= 255 { 1 } else { 2 };
    }
    match n {
        0..=8 => 1,
        9..=16 => 2,
        17..=24 => 3,
        25..=32 => 4,
        _ => 8,
    }
}

fn quote_list(m: &[String]) -> String {
    m.iter()
        .map(|v| format!("'{}'", v.replace('\'', "''")))
        .collect::<Vec<_>>()
        .join(", ")
}

fn check(st: &Stmt, ctx: &Ctx, out: &mut Vec<Hit>) {
    for a in st.actions() {
        let Action::AlterColumnType {
            table,
            column,
            new_type,
            spec: Some(spec),
            ..
        } = a
        else {
            continue;
        };
        let Some((is_set, new)) = enum_members(new_type) else {
            continue;
        };
        if ctx.is_new_table(table) {
            continue;
        }
        let kind = if is_set { "SET" } else { "ENUM" };
        let e = ctx.target.engine;
        let (tq, cq) = (name_sql(e, table), ident_sql(e, &spec.name));
        let tail = format!(
            "{}{}",
            if spec.not_null { " NOT NULL" } else { "" },
            spec.default
                .as_ref()
                .map(|d| format!(" DEFAULT {}", d.text))
                .unwrap_or_default()
        );
        let Some(old_type) = ctx.column_type(table, column) else {
            out.push(
                Hit::new(format!(
                    "{kind} change of `{table}`.`{column}`: sluice does not know the current member list offline; unless \
                     the new members are only appended at the end, the table is copied (ALGORITHM=COPY) with writes blocked"
                ))
                .severity(Severity::Warning)
                .help(format!(
                    "ALTER TABLE {tq} MODIFY {cq} {new_type}{tail}, ALGORITHM=INSTANT;  -- the server refuses if it is not a pure append"
                )),
            );
            continue;
        };
        let Some((old_set, old)) = enum_members(old_type) else {
            continue; // a type change: mysql-modify-column
        };
        if old_set != is_set || old == new {
            continue;
        }
        let appended = new.len() > old.len() && new[..old.len()] == old[..];
        let appended_help = {
            let mut merged = old.clone();
            merged.extend(new.iter().filter(|m| !old.contains(m)).cloned());
            if merged == old {
                format!(
                    "-- the order of {kind} members only decides how ORDER BY sorts them: keep the current order\n\
                     -- and sort explicitly, e.g. ORDER BY FIELD({cq}, {})",
                    quote_list(&new)
                )
            } else {
                format!(
                    "ALTER TABLE {tq} MODIFY {cq} {kind}({}){tail}, ALGORITHM=INSTANT;  -- keep the old order, append at the end",
                    quote_list(&merged)
                )
            }
        };
        if appended {
            let (before, after) = (storage(is_set, old.len()), storage(is_set, new.len()));
            if before == after {
                continue;
            }
            out.push(
                Hit::new(format!(
                    "{kind} `{table}`.`{column}` grows from {} to {} members: its storage goes from {before} to {after} \
                     byte(s), so the table is copied (ALGORITHM=COPY) and every write waits for the whole copy",
                    old.len(),
                    new.len()
                ))
                .help(format!(
                    "-- a lookup table (or a VARCHAR with a CHECK) scales better than a {kind} this large;\n\
                     -- otherwise gh-ost / pt-online-schema-change"
                )),
            );
            continue;
        }
        let removed: Vec<String> = old.iter().filter(|m| !new.contains(m)).cloned().collect();
        let what = if removed.is_empty() {
            "reorders its members or inserts new ones before the end".to_string()
        } else {
            format!(
                "removes {} (rows holding a removed value make the ALTER fail in strict mode, or become '' without it)",
                quote_list(&removed)
            )
        };
        let help = if removed.is_empty() {
            appended_help
        } else {
            format!(
                "-- first stop writing {0} and migrate the rows that hold it; keep the member in the list\n\
                 -- (removing it always copies the table: gh-ost / pt-online-schema-change if it must go)",
                quote_list(&removed)
            )
        };
        out.push(
            Hit::new(format!(
                "{kind} change of `{table}`.`{column}` {what}: the table is copied (ALGORITHM=COPY) and every write \
                 waits for the whole copy"
            ))
            .help(help),
        );
    }
}
