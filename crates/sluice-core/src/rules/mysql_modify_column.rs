//! `mysql-modify-column` (MariaDB/MySQL): `MODIFY`/`CHANGE` that changes the type of a column of an
//! existing table, which copies the table (ALGORITHM=COPY, writes blocked).
//!
//! Verified on MariaDB 10.11 (ROW_FORMAT=DYNAMIC, the default), trying INSTANT, NOCOPY, INPLACE, COPY:
//! - COPY: INT→BIGINT, INT→INT UNSIGNED, TINYINT→SMALLINT, CHAR(10)→CHAR(20), VARCHAR→TEXT,
//!   TEXT→MEDIUMTEXT, DECIMAL(10,2)→DECIMAL(12,2), DATETIME→DATETIME(6), any shrink, a character set change.
//! - INSTANT: same type with another DEFAULT/COMMENT/position, a rename (CHANGE a b same type), VARBINARY and
//!   VARCHAR widening while the length prefix fits: MariaDB 10.4+ when the new maximum is ≤ 255 bytes, or the
//!   old one ≤ 127 bytes, or the old one > 255 bytes (COPY when it goes from 128–255 bytes to more than 255);
//!   MySQL and MariaDB < 10.4 when both are ≤ 255 bytes or the old one is already ≥ 256 (in place, metadata only).
//!   Bytes = characters × the character set's maximum width; when the MODIFY names no character set the rule
//!   evaluates both latin1 (1) and utf8mb4 (4) and, if they disagree, says it cannot tell.
//! - INPLACE rebuild, writes allowed: NULL → NOT NULL and NOT NULL → NULL (a MODIFY that leaves out NOT NULL
//!   makes the column nullable). Reported only when the old nullability is known from the same part, with the
//!   rebuild severity (Warning offline, Error on a large table, nothing on a small one).
//!
//! ENUM/SET to ENUM/SET is `mysql-enum-reorder`'s. The old type comes from earlier migrations of the lint run or
//! the live schema (`ctx.column_type`); when unknown: a Warning that sluice cannot tell offline.

use super::mysql_table_rebuild::online_rebuild_severity;
use super::prelude::*;
use super::require_lock_timeout::{ident_sql, name_sql};
use sqlparser::ast::{AlterTableOperation, ColumnOption, Statement};

pub const RULE: Rule = Rule {
    id: "mysql-modify-column",
    severity: Severity::Error,
    engines: Engines::MySqlFamily,
    summary: "MODIFY/CHANGE that changes a column's type on an existing table (ALGORITHM=COPY)",
    why: "changing a column's type makes MariaDB/MySQL copy the table row by row (ALGORITHM=COPY): every INSERT, \
          UPDATE and DELETE waits until the whole table is copied. Only widening a VARCHAR within its length-prefix \
          size, renaming, and changing a default or comment are instant. MODIFY restates the whole column: a NOT \
          NULL, DEFAULT, CHARACTER SET or COMMENT left out is changed too",
    safe: "ALTER TABLE t ADD COLUMN c_new BIGINT NULL, ALGORITHM=INSTANT;  -- expand; the app writes both\n\
           UPDATE t SET c_new = c WHERE id BETWEEN 1 AND 10000;            -- backfill in batches\n\
           -- switch reads to c_new, then drop c in a later migration; or: gh-ost / pt-online-schema-change",
    check,
};

/// ENUM/SET members of a type as written (`ENUM('a', 'b')`): (is SET, members).
pub(super) fn enum_members(ty: &str) -> Option<(bool, Vec<String>)> {
    let t = ty.trim();
    let upper = t.to_ascii_uppercase();
    let (is_set, rest) = if upper.starts_with("ENUM") {
        (false, &t[4..])
    } else if upper.starts_with("SET") {
        (true, &t[3..])
    } else {
        return None;
    };
    let rest = rest.trim_start().strip_prefix('(')?;
    let mut members = Vec::new();
    let mut chars = rest.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace() || *c == ',') {
            chars.next();
        }
        match chars.next()? {
            ')' => break,
            q @ ('\'' | '"') => {
                let mut s = String::new();
                loop {
                    let c = chars.next()?;
                    if c == '\\' {
                        s.push(chars.next()?);
                    } else if c == q {
                        if chars.peek() == Some(&q) {
                            chars.next();
                            s.push(q);
                        } else {
                            break;
                        }
                    } else {
                        s.push(c);
                    }
                }
                members.push(s);
            }
            _ => return None,
        }
    }
    Some((is_set, members))
}

/// A type in a canonical spelling, so that `int(11)` and `INT`, `BOOL` and `tinyint(1)` compare equal.
pub(super) fn norm_type(ty: &str) -> String {
    let mut s = ty.trim().to_ascii_uppercase();
    s = s.split_whitespace().collect::<Vec<_>>().join(" ");
    s = s
        .replace(" (", "(")
        .replace("( ", "(")
        .replace(" )", ")")
        .replace(", ", ",");
    for (from, to) in [
        ("CHARACTER VARYING", "VARCHAR"),
        ("NATIONAL VARCHAR", "VARCHAR"),
        ("NVARCHAR", "VARCHAR"),
        ("NATIONAL CHAR", "CHAR"),
        ("DOUBLE PRECISION", "DOUBLE"),
        (" SIGNED", ""),
    ] {
        s = s.replace(from, to);
    }
    let (head, tail) = match s.find(['(', ' ']) {
        Some(p) => (s[..p].to_string(), s[p..].to_string()),
        None => (s.clone(), String::new()),
    };
    let head = match head.as_str() {
        "INTEGER" => "INT".to_string(),
        "BOOL" | "BOOLEAN" => "TINYINT".to_string(),
        "DEC" | "NUMERIC" | "FIXED" => "DECIMAL".to_string(),
        "REAL" => "DOUBLE".to_string(),
        "CHARACTER" => "CHAR".to_string(),
        h => h.to_string(),
    };
    let mut tail = tail;
    // Integer display widths mean nothing for storage.
    if matches!(
        head.as_str(),
        "TINYINT" | "SMALLINT" | "MEDIUMINT" | "INT" | "BIGINT"
    ) && tail.starts_with('(')
    {
        if let Some(p) = tail.find(')') {
            tail = tail[p + 1..].to_string();
        }
    }
    match (head.as_str(), tail.as_str()) {
        ("DECIMAL", "") => return "DECIMAL(10,0)".into(),
        ("CHAR", "") => return "CHAR(1)".into(),
        _ => {}
    }
    if head == "DECIMAL" && tail.starts_with('(') && !tail.contains(',') {
        tail = tail.replacen(')', ",0)", 1);
    }
    if matches!(head.as_str(), "DATETIME" | "TIMESTAMP" | "TIME") && tail.starts_with("(0)") {
        tail = tail[3..].to_string();
    }
    format!("{head}{tail}").trim().to_string()
}

/// `VARCHAR(n)` / `VARBINARY(n)`: (is binary, n).
fn var_len(norm: &str) -> Option<(bool, u64)> {
    let (bin, rest) = if let Some(r) = norm.strip_prefix("VARCHAR(") {
        (false, r)
    } else if let Some(r) = norm.strip_prefix("VARBINARY(") {
        (true, r)
    } else {
        return None;
    };
    let (n, after) = rest.split_once(')')?;
    if !after.trim().is_empty() {
        return None;
    }
    Some((bin, n.trim().parse().ok()?))
}

fn charset_width(cs: &str) -> u64 {
    let cs = cs.to_ascii_lowercase();
    let cs = cs.split('_').next().unwrap_or("");
    match cs {
        "latin1" | "latin2" | "ascii" | "binary" | "cp1250" | "cp1251" | "cp1252" => 1,
        "ucs2" => 2,
        "utf8" | "utf8mb3" => 3,
        _ => 4,
    }
}

/// A type as the live schema spells it, split into the type and its `CHARACTER SET x` (when given).
fn split_charset(ty: &str) -> (&str, Option<String>) {
    let upper = ty.to_ascii_uppercase();
    match upper.find(" CHARACTER SET ") {
        Some(p) => {
            let cs = ty[p + " CHARACTER SET ".len()..]
                .split_whitespace()
                .next()
                .map(|c| c.to_ascii_lowercase());
            (&ty[..p], cs)
        }
        None => (ty, None),
    }
}

/// The character set of a CHARACTER SET or COLLATE name (`utf8mb4_bin` → `utf8mb4`).
fn charset_of(name: &str) -> String {
    let n = name
        .trim_matches('`')
        .trim_matches('\'')
        .to_ascii_lowercase();
    match n.as_str() {
        "utf8" => "utf8mb3".into(),
        _ if n.contains('_') => {
            let cs = n.split('_').next().unwrap_or("").to_string();
            if cs == "utf8" {
                "utf8mb3".into()
            } else {
                cs
            }
        }
        _ => n,
    }
}

/// The character set the MODIFY/CHANGE names (CHARACTER SET x, or COLLATE x_...).
fn named_charset(st: &Stmt, column: &str, engine: EngineKind) -> Option<String> {
    let Some(Statement::AlterTable(at)) = st.ast.as_deref() else {
        return None;
    };
    for o in &at.operations {
        let (name, options) = match o {
            AlterTableOperation::ModifyColumn {
                col_name, options, ..
            } => (col_name, options),
            AlterTableOperation::ChangeColumn {
                old_name, options, ..
            } => (old_name, options),
            _ => continue,
        };
        if crate::analysis::ir::fold_ident(engine, name) != column {
            continue;
        }
        for opt in options {
            match opt {
                ColumnOption::CharacterSet(n) => return Some(n.to_string()),
                ColumnOption::Collation(n) => return Some(n.to_string()),
                _ => {}
            }
        }
    }
    None
}

#[derive(Debug, PartialEq)]
enum Verdict {
    Instant,
    Copy,
}

fn varchar_verdict(target: crate::target::Target, old: u64, new: u64) -> Verdict {
    if new < old {
        return Verdict::Copy;
    }
    if new == old {
        return Verdict::Instant;
    }
    let ok = if target.engine == EngineKind::MariaDb && target.at_least(10, 4) {
        new <= 255 || old <= 127 || old > 255
    } else {
        new <= 255 || old >= 256
    };
    if ok {
        Verdict::Instant
    } else {
        Verdict::Copy
    }
}

/// The nullability of the column known from an earlier statement of the same part.
fn known_not_null(ctx: &Ctx, before: usize, table: &QName, column: &str) -> Option<bool> {
    // Column names as written: the same column in any letter case.
    let same = |c: &str| crate::analysis::ir::same_column(ctx.target.engine, c, column);
    for s in ctx.statements[..before].iter().rev() {
        for a in s.actions().iter().rev() {
            match a {
                Action::CreateTable {
                    table: t,
                    columns,
                    constraints,
                    ..
                } if t.matches(table) => {
                    let c = columns.iter().find(|c| same(&c.name))?;
                    let pk = constraints.iter().any(|k| {
                        k.kind == ConstraintKind::PrimaryKey && k.columns.iter().any(|x| same(x))
                    });
                    return Some(c.not_null || pk);
                }
                Action::AddColumn {
                    table: t,
                    column: c,
                    ..
                } if t.matches(table) && same(&c.name) => return Some(c.not_null),
                Action::AlterColumnType {
                    table: t,
                    column: c,
                    spec: Some(spec),
                    ..
                } if t.matches(table) && (same(c) || same(&spec.name)) => {
                    return Some(spec.not_null)
                }
                _ => {}
            }
        }
    }
    None
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
        if ctx.is_new_table(table) {
            continue;
        }
        let e = ctx.target.engine;
        let (tq, cq) = (name_sql(e, table), ident_sql(e, &spec.name));
        let new_enum = enum_members(new_type);
        let old = ctx.column_type(table, column);
        if let Some((new_set, _)) = &new_enum {
            match old.and_then(enum_members) {
                Some((old_set, _)) if old_set == *new_set => continue,
                None if old.is_none() => continue,
                _ => {}
            }
        }
        let Some(old) = old else {
            out.push(
                Hit::new(format!(
                    "MODIFY/CHANGE of `{table}`.`{column}` to {new_type}: sluice does not know the column's current type \
                     offline; if the type changes, the table is copied (ALGORITHM=COPY) with writes blocked"
                ))
                .severity(Severity::Warning)
                .help(format!(
                    "-- lint it with the migration that created `{table}`, or connected (--database-url);\n\
                     -- and make the server refuse a blocking copy:\n\
                     ALTER TABLE {tq} MODIFY {cq} {new_type} ..., ALGORITHM=INPLACE, LOCK=NONE;"
                )),
            );
            continue;
        };
        // The live schema spells a column whose character set differs from its table's default as
        // `varchar(20) CHARACTER SET latin1 COLLATE ...`; a MODIFY names it as a column option.
        let (old_base, old_cs) = split_charset(old);
        let new_cs = named_charset(st, column, e).map(|c| charset_of(&c));
        if let Some(ocs) = &old_cs {
            if new_cs.as_deref() != Some(ocs.as_str()) {
                let what = match &new_cs {
                    None => format!(
                        "MODIFY/CHANGE of `{table}`.`{column}` names no character set, so it converts the column from \
                         {ocs} to the table's default character set"
                    ),
                    Some(n) => format!("changes the character set of `{table}`.`{column}` from {ocs} to {n}"),
                };
                out.push(
                    Hit::new(format!(
                        "{what}: the table is copied row by row (ALGORITHM=COPY) and every write waits until the copy ends"
                    ))
                    .help(format!(
                        "ALTER TABLE {tq} MODIFY {cq} {new_type} CHARACTER SET {ocs} ...;  -- keep the column's character set"
                    )),
                );
                continue;
            }
        }
        let (o, n) = (norm_type(old_base), norm_type(new_type));
        if o == n {
            // Same type: only nullability can still force a rebuild.
            let Some(was_not_null) = known_not_null(ctx, st.index, table, column) else {
                continue;
            };
            if was_not_null == spec.not_null {
                continue;
            }
            let Some(sev) = online_rebuild_severity(st, ctx, table) else {
                continue;
            };
            let what = if spec.not_null {
                format!("makes `{table}`.`{column}` NOT NULL (and fails if a row holds NULL)")
            } else {
                format!(
                    "makes `{table}`.`{column}` nullable (MODIFY restates the column: the NOT NULL was left out)"
                )
            };
            out.push(
                Hit::new(format!(
                    "{what}: MariaDB/MySQL rebuild the table for a change of nullability; writes continue, but every \
                     row is rewritten and replicas lag while they replay it"
                ))
                .severity(sev)
                .help(format!(
                    "ALTER TABLE {tq} MODIFY {cq} {new_type}{}, ALGORITHM=INPLACE, LOCK=NONE;",
                    if spec.not_null { " NOT NULL" } else { " NULL" }
                )),
            );
            continue;
        }
        if let (Some((ob, ol)), Some((nb, nl))) = (var_len(&o), var_len(&n)) {
            if ob == nb {
                let widths: Vec<u64> = if ob {
                    vec![1]
                } else if let Some(cs) = new_cs.as_ref().or(old_cs.as_ref()) {
                    vec![charset_width(cs)]
                } else {
                    vec![1, 4]
                };
                let verdicts: Vec<Verdict> = widths
                    .iter()
                    .map(|w| varchar_verdict(ctx.target, ol * w, nl * w))
                    .collect();
                if verdicts.iter().all(|v| *v == Verdict::Instant) {
                    continue;
                }
                if verdicts.contains(&Verdict::Instant) {
                    out.push(
                        Hit::new(format!(
                            "{old} → {new_type} on `{table}`.`{column}`: in place for a 1-byte character set, but with \
                             utf8mb4 the maximum crosses the 255-byte length-prefix boundary and the table is copied \
                             (ALGORITHM=COPY, writes blocked); sluice cannot tell the column's character set offline"
                        ))
                        .severity(Severity::Warning)
                        .help(format!(
                            "ALTER TABLE {tq} MODIFY {cq} {new_type} ..., ALGORITHM=INPLACE, LOCK=NONE;  -- refused rather than blocking if it needs a copy"
                        )),
                    );
                    continue;
                }
            }
        }
        out.push(
            Hit::new(format!(
                "changes `{table}`.`{column}` from {old} to {new_type}: the table is copied row by row (ALGORITHM=COPY) \
                 and every write waits until the copy ends"
            ))
            .help(format!(
                "ALTER TABLE {tq} ADD COLUMN {nq} {new_type} NULL, ALGORITHM=INSTANT;  -- expand; the app writes both\n\
                 UPDATE {tq} SET {nq} = {oq} WHERE id BETWEEN 1 AND 10000;  -- backfill in batches\n\
                 -- switch reads to {nq}, then drop {oq} in a later migration;\n\
                 -- or: gh-ost / pt-online-schema-change --alter \"MODIFY {oq} {new_type}\"",
                nq = ident_sql(e, &format!("{}_new", spec.name)),
                oq = ident_sql(e, column),
            )),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::target::Target;

    #[test]
    fn types_normalize_to_one_spelling() {
        for (a, b) in [
            ("int(11)", "INT"),
            ("INTEGER", "INT"),
            ("bool", "TINYINT(1)"),
            ("BIGINT(20) UNSIGNED", "bigint unsigned"),
            ("DECIMAL", "DECIMAL(10,0)"),
            ("numeric(5)", "DECIMAL(5, 0)"),
            ("DOUBLE PRECISION", "double"),
            ("CHARACTER VARYING(20)", "varchar(20)"),
            ("datetime(0)", "DATETIME"),
        ] {
            assert_eq!(norm_type(a), norm_type(b), "{a} vs {b}");
        }
        for (a, b) in [
            ("INT", "BIGINT"),
            ("INT", "INT UNSIGNED"),
            ("DATETIME", "DATETIME(6)"),
            ("CHAR(10)", "CHAR(20)"),
        ] {
            assert_ne!(norm_type(a), norm_type(b), "{a} vs {b}");
        }
    }

    #[test]
    fn enum_members_are_parsed_with_escapes() {
        assert_eq!(
            enum_members("ENUM('a', 'it''s', \"b\")"),
            Some((false, vec!["a".into(), "it's".into(), "b".into()]))
        );
        assert_eq!(
            enum_members("set('x','y')"),
            Some((true, vec!["x".into(), "y".into()]))
        );
        assert_eq!(enum_members("VARCHAR(10)"), None);
        assert_eq!(enum_members("ENUM('unterminated"), None);
    }

    #[test]
    fn live_types_carry_their_character_set() {
        assert_eq!(
            split_charset("varchar(20) CHARACTER SET latin1 COLLATE latin1_swedish_ci"),
            ("varchar(20)", Some("latin1".to_string()))
        );
        assert_eq!(split_charset("int(11)"), ("int(11)", None));
        assert_eq!(charset_of("utf8mb4_bin"), "utf8mb4");
        assert_eq!(charset_of("utf8"), "utf8mb3");
        assert_eq!(charset_of("utf8_general_ci"), "utf8mb3");
        assert_eq!(charset_of("latin1"), "latin1");
    }

    #[test]
    fn varchar_length_prefix_boundaries() {
        let maria = Target::parse("mariadb:10.11").unwrap();
        let maria103 = Target::parse("mariadb:10.3").unwrap();
        let mysql = Target::parse("mysql:8.0.30").unwrap();
        // Verified on MariaDB 10.11 (DYNAMIC): 127 -> 300 instant, 128 -> 300 copy, 200 -> 255 instant.
        assert_eq!(varchar_verdict(maria, 127, 300), Verdict::Instant);
        assert_eq!(varchar_verdict(maria, 128, 300), Verdict::Copy);
        assert_eq!(varchar_verdict(maria, 200, 255), Verdict::Instant);
        assert_eq!(varchar_verdict(maria, 300, 1000), Verdict::Instant);
        assert_eq!(varchar_verdict(maria, 50, 40), Verdict::Copy);
        assert_eq!(varchar_verdict(maria103, 100, 300), Verdict::Copy);
        assert_eq!(varchar_verdict(mysql, 100, 255), Verdict::Instant);
        assert_eq!(varchar_verdict(mysql, 255, 256), Verdict::Copy);
        assert_eq!(varchar_verdict(mysql, 256, 400), Verdict::Instant);
    }
}
