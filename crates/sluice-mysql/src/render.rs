//! SQL that turns one schema into another (used to capture drift as a migration, both ways).
//!
//! Statements come in dependency order: views and foreign keys that may depend on something are
//! dropped before it, and created after everything they may need. Each change is its own
//! statement, so a failure points at one change and progress is recorded per statement.

use crate::introspect::Flavour;
use crate::quote;
use sluice_core::schema::{Column, Constraint, ConstraintKind, Schema, Table};
use std::collections::BTreeSet;

/// A column as written in `CREATE TABLE` / `ADD COLUMN` / `MODIFY COLUMN`.
pub fn column_definition(c: &Column) -> String {
    let mut s = format!("{} {}", quote::ident(&c.name), c.data_type);
    let extra = c.extra.as_deref().unwrap_or("");
    // Generated columns take neither NULL/NOT NULL nor DEFAULT; the expression follows the type.
    if extra.starts_with("GENERATED ALWAYS AS") {
        s.push(' ');
        s.push_str(extra);
        return s;
    }
    s.push_str(if c.nullable { " NULL" } else { " NOT NULL" });
    if let Some(d) = &c.default {
        s.push_str(" DEFAULT ");
        s.push_str(d);
    }
    if !extra.is_empty() {
        s.push(' ');
        s.push_str(extra);
    }
    s
}

/// Byte range of the `AUTO_INCREMENT` attribute in `extra` (never inside a quoted comment).
fn auto_increment_at(extra: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(i) = extra[from..].find("AUTO_INCREMENT").map(|i| i + from) {
        let before_ok = i == 0 || extra.as_bytes()[i - 1] == b' ';
        let end = i + "AUTO_INCREMENT".len();
        let after_ok = end == extra.len() || extra.as_bytes()[end] == b' ';
        if extra[..i].contains('\'') {
            return None;
        }
        if before_ok && after_ok {
            return Some(i);
        }
        from = end;
    }
    None
}

fn has_auto_increment(c: &Column) -> bool {
    c.extra.as_deref().and_then(auto_increment_at).is_some()
}

fn without_auto_increment(c: &Column) -> Column {
    let mut c = c.clone();
    if let Some(extra) = &c.extra {
        if let Some(i) = auto_increment_at(extra) {
            let rest = format!("{}{}", &extra[..i], &extra[i + "AUTO_INCREMENT".len()..]);
            let rest = rest.split_whitespace().collect::<Vec<_>>().join(" ");
            c.extra = (!rest.is_empty()).then_some(rest);
        }
    }
    c
}

fn column_changed(a: &Column, b: &Column) -> bool {
    a.data_type != b.data_type
        || a.nullable != b.nullable
        || a.default != b.default
        || a.extra != b.extra
}

fn constraint_changed(a: &Constraint, b: &Constraint) -> bool {
    a.definition != b.definition || a.kind != b.kind
}

fn is_fk(c: &Constraint) -> bool {
    c.kind == ConstraintKind::ForeignKey
}

fn alter(table: &str, clause: String) -> String {
    format!("ALTER TABLE {} {clause};\n", quote::ident(table))
}

fn drop_index(name: &str) -> String {
    if name == "PRIMARY" {
        "DROP PRIMARY KEY".into()
    } else {
        format!("DROP INDEX {}", quote::ident(name))
    }
}

fn drop_constraint(name: &str, c: &Constraint, flavour: Flavour) -> String {
    match c.kind {
        ConstraintKind::ForeignKey => format!("DROP FOREIGN KEY {}", quote::ident(name)),
        ConstraintKind::PrimaryKey => "DROP PRIMARY KEY".into(),
        ConstraintKind::Unique => format!("DROP INDEX {}", quote::ident(name)),
        // MySQL before 8.0.19 knows only DROP CHECK.
        _ if !flavour.is_mariadb() => format!("DROP CHECK {}", quote::ident(name)),
        _ => format!("DROP CONSTRAINT {}", quote::ident(name)),
    }
}

fn add_constraint(name: &str, c: &Constraint) -> String {
    match c.kind {
        ConstraintKind::PrimaryKey => format!("ADD {}", c.definition),
        _ => format!("ADD CONSTRAINT {} {}", quote::ident(name), c.definition),
    }
}

/// `SHOW CREATE TABLE` text without its foreign keys (added once every table exists) and without
/// the `AUTO_INCREMENT=n` counter (data, not schema).
pub fn strip_create_sql(create_sql: &str) -> String {
    let lines: Vec<&str> = create_sql
        .lines()
        .filter(|l| {
            let t = l.trim_start();
            !(t.starts_with("CONSTRAINT ") && t.contains(" FOREIGN KEY "))
        })
        .collect();
    let mut out: Vec<String> = Vec::with_capacity(lines.len());
    for (i, l) in lines.iter().enumerate() {
        let closing_next = lines
            .get(i + 1)
            .is_some_and(|n| n.trim_start().starts_with(')'));
        let mut l = l.to_string();
        if closing_next && l.ends_with(',') {
            l.pop();
        }
        if l.trim_start().starts_with(')') {
            l = strip_auto_increment_option(&l);
        }
        out.push(l);
    }
    out.join("\n")
}

fn strip_auto_increment_option(line: &str) -> String {
    let mut words: Vec<&str> = line.split(' ').collect();
    words.retain(|w| !w.starts_with("AUTO_INCREMENT="));
    words.join(" ")
}

/// `CREATE TABLE` from the model, for tables without the server's own text. Foreign keys are added
/// separately.
fn create_from_model(name: &str, t: &Table) -> String {
    let mut items: Vec<String> = t.columns.iter().map(column_definition).collect();
    if let Some(pk) = t.indexes.get("PRIMARY") {
        items.push(pk.definition.clone());
    }
    for (n, i) in &t.indexes {
        if n != "PRIMARY" {
            items.push(i.definition.clone());
        }
    }
    for (n, c) in &t.constraints {
        if !is_fk(c) {
            items.push(format!("CONSTRAINT {} {}", quote::ident(n), c.definition));
        }
    }
    format!(
        "CREATE TABLE {} (\n  {}\n)",
        quote::ident(name),
        items.join(",\n  ")
    )
}

/// Orders views so that one mentioning another of the same batch comes after it.
fn view_order<'a>(names: &[&'a String], to: &Schema) -> Vec<&'a String> {
    let mut left: Vec<&String> = names.to_vec();
    let mut out = Vec::new();
    while !left.is_empty() {
        let ready = left.iter().position(|n| {
            let def = &to.views[*n].definition;
            !left
                .iter()
                .any(|o| o != n && def.contains(&quote::ident(o)))
        });
        // A cycle cannot be created anyway; keep name order then.
        let i = ready.unwrap_or(0);
        out.push(left.remove(i));
    }
    out
}

pub fn render(from: &Schema, to: &Schema, flavour: Flavour) -> String {
    let mut out = String::new();
    let both: Vec<(&String, &Table, &Table)> = from
        .tables
        .iter()
        .filter_map(|(n, a)| to.tables.get(n).map(|b| (n, a, b)))
        .collect();
    let dropped: Vec<(&String, &Table)> = from
        .tables
        .iter()
        .filter(|(n, _)| !to.tables.contains_key(*n))
        .collect();
    let created: Vec<(&String, &Table)> = to
        .tables
        .iter()
        .filter(|(n, _)| !from.tables.contains_key(*n))
        .collect();
    let dropped_names: BTreeSet<&str> = dropped.iter().map(|(n, _)| n.as_str()).collect();

    // Views that go away, before the tables and columns they may read.
    for n in from.views.keys().filter(|n| !to.views.contains_key(*n)) {
        out.push_str(&format!("DROP VIEW {};\n", quote::ident(n)));
    }

    // Foreign keys that go away or change; and, between tables that both go away, every foreign key,
    // so the tables can be dropped in any order.
    for (n, a, b) in &both {
        for (cn, c) in a.constraints.iter().filter(|(_, c)| is_fk(c)) {
            if b.constraints
                .get(cn)
                .is_none_or(|bc| constraint_changed(c, bc))
            {
                out.push_str(&alter(n, drop_constraint(cn, c, flavour)));
            }
        }
    }
    for (n, a) in &dropped {
        for (cn, c) in a.constraints.iter().filter(|(_, c)| is_fk(c)) {
            if dropped_names.iter().any(|d| {
                c.definition
                    .contains(&format!("REFERENCES {} ", quote::ident(d)))
            }) {
                out.push_str(&alter(n, drop_constraint(cn, c, flavour)));
            }
        }
    }

    // Per table: columns that stop being AUTO_INCREMENT (before their key can go), then checks and
    // indexes that go away or change, then columns that go away.
    for (n, a, b) in &both {
        for ca in &a.columns {
            if let Some(cb) = b.columns.iter().find(|c| c.name == ca.name) {
                if has_auto_increment(ca) && !has_auto_increment(cb) {
                    out.push_str(&alter(
                        n,
                        format!("MODIFY COLUMN {}", column_definition(cb)),
                    ));
                }
            }
        }
        for (cn, c) in a.constraints.iter().filter(|(_, c)| !is_fk(c)) {
            if b.constraints
                .get(cn)
                .is_none_or(|bc| constraint_changed(c, bc))
            {
                out.push_str(&alter(n, drop_constraint(cn, c, flavour)));
            }
        }
        for (iname, i) in &a.indexes {
            if b.indexes
                .get(iname)
                .is_none_or(|bi| bi.definition != i.definition)
            {
                out.push_str(&alter(n, drop_index(iname)));
            }
        }
        for ca in &a.columns {
            if !b.columns.iter().any(|c| c.name == ca.name) {
                out.push_str(&alter(n, format!("DROP COLUMN {}", quote::ident(&ca.name))));
            }
        }
    }

    for (n, _) in &dropped {
        out.push_str(&format!("DROP TABLE {};\n", quote::ident(n)));
    }
    for (n, t) in &created {
        let sql = match &t.create_sql {
            Some(s) => strip_create_sql(s),
            None => create_from_model(n, t),
        };
        out.push_str(&sql);
        out.push_str(";\n");
    }

    // Columns that appear (in their place) or change. AUTO_INCREMENT needs its key: columns that
    // gain it get it once the indexes exist.
    let mut late: Vec<(&String, &Column)> = Vec::new();
    for (n, a, b) in &both {
        for (pos, cb) in b.columns.iter().enumerate() {
            match a.columns.iter().find(|c| c.name == cb.name) {
                None => {
                    let place = match pos {
                        0 => " FIRST".to_string(),
                        _ => format!(" AFTER {}", quote::ident(&b.columns[pos - 1].name)),
                    };
                    let def = if has_auto_increment(cb) {
                        late.push((n, cb));
                        column_definition(&without_auto_increment(cb))
                    } else {
                        column_definition(cb)
                    };
                    out.push_str(&alter(n, format!("ADD COLUMN {def}{place}")));
                }
                Some(ca) if column_changed(ca, cb) => {
                    let gains = has_auto_increment(cb) && !has_auto_increment(ca);
                    let loses = has_auto_increment(ca) && !has_auto_increment(cb);
                    if gains {
                        late.push((n, cb));
                    } else if !loses {
                        // (A column that loses AUTO_INCREMENT was modified before the key drops.)
                        out.push_str(&alter(
                            n,
                            format!("MODIFY COLUMN {}", column_definition(cb)),
                        ));
                    }
                }
                Some(_) => {}
            }
        }
    }

    // Indexes and checks that appear or change.
    for (n, a, b) in &both {
        for (iname, i) in &b.indexes {
            if a.indexes
                .get(iname)
                .is_none_or(|ai| ai.definition != i.definition)
            {
                out.push_str(&alter(n, format!("ADD {}", i.definition)));
            }
        }
        for (cn, c) in b.constraints.iter().filter(|(_, c)| !is_fk(c)) {
            if a.constraints
                .get(cn)
                .is_none_or(|ac| constraint_changed(ac, c))
            {
                out.push_str(&alter(n, add_constraint(cn, c)));
            }
        }
    }
    for (n, c) in late {
        out.push_str(&alter(n, format!("MODIFY COLUMN {}", column_definition(c))));
    }

    // Foreign keys last among tables: every table, column and index they need exists now.
    for (n, a, b) in &both {
        for (cn, c) in b.constraints.iter().filter(|(_, c)| is_fk(c)) {
            if a.constraints
                .get(cn)
                .is_none_or(|ac| constraint_changed(ac, c))
            {
                out.push_str(&alter(n, add_constraint(cn, c)));
            }
        }
    }
    for (n, t) in &created {
        for (cn, c) in t.constraints.iter().filter(|(_, c)| is_fk(c)) {
            out.push_str(&alter(n, add_constraint(cn, c)));
        }
    }

    // Views that appear or change, after everything they may read.
    let views: Vec<&String> = to
        .views
        .iter()
        .filter(|(n, v)| from.views.get(*n).is_none_or(|fv| fv != *v))
        .map(|(n, _)| n)
        .collect();
    for n in view_order(&views, to) {
        out.push_str(&format!(
            "CREATE OR REPLACE VIEW {} AS {};\n",
            quote::ident(n),
            to.views[n].definition
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_core::schema::{Index, View};
    use sluice_core::target::EngineKind;

    const MARIA: Flavour = Flavour {
        kind: EngineKind::MariaDb,
        version: (10, 11, 0),
    };

    fn col(name: &str, ty: &str, extra: Option<&str>) -> Column {
        Column {
            name: name.into(),
            data_type: ty.into(),
            nullable: false,
            default: None,
            extra: extra.map(Into::into),
        }
    }

    #[test]
    fn column_definitions() {
        let mut c = col("n", "int(11)", Some("COMMENT 'x' CHECK (`n` > 0)"));
        c.default = Some("5".into());
        assert_eq!(
            column_definition(&c),
            "`n` int(11) NOT NULL DEFAULT 5 COMMENT 'x' CHECK (`n` > 0)"
        );
        let g = Column {
            nullable: true,
            ..col(
                "g",
                "int(11)",
                Some("GENERATED ALWAYS AS (`n` * 2) VIRTUAL"),
            )
        };
        assert_eq!(
            column_definition(&g),
            "`g` int(11) GENERATED ALWAYS AS (`n` * 2) VIRTUAL"
        );
        let a = col(
            "id",
            "bigint",
            Some("AUTO_INCREMENT INVISIBLE COMMENT 'AUTO_INCREMENT'"),
        );
        assert!(has_auto_increment(&a));
        assert_eq!(
            without_auto_increment(&a).extra.as_deref(),
            Some("INVISIBLE COMMENT 'AUTO_INCREMENT'")
        );
        assert!(!has_auto_increment(&col(
            "x",
            "int",
            Some("COMMENT 'AUTO_INCREMENT'")
        )));
    }

    #[test]
    fn create_sql_loses_foreign_keys_and_counter() {
        let sql = "CREATE TABLE `t` (\n  `id` int(11) NOT NULL AUTO_INCREMENT,\n  `p` int(11) DEFAULT NULL,\n  PRIMARY KEY (`id`),\n  KEY `fk` (`p`),\n  CONSTRAINT `fk` FOREIGN KEY (`p`) REFERENCES `p` (`id`)\n) ENGINE=InnoDB AUTO_INCREMENT=7 DEFAULT CHARSET=utf8mb4";
        assert_eq!(
            strip_create_sql(sql),
            "CREATE TABLE `t` (\n  `id` int(11) NOT NULL AUTO_INCREMENT,\n  `p` int(11) DEFAULT NULL,\n  PRIMARY KEY (`id`),\n  KEY `fk` (`p`)\n) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"
        );
    }

    #[test]
    fn order_is_drop_dependents_first_create_them_last() {
        let mut a = Schema::default();
        let mut t = Table {
            columns: vec![col("id", "int", None), col("p", "int", None)],
            ..Default::default()
        };
        t.constraints.insert(
            "fk".into(),
            Constraint {
                kind: ConstraintKind::ForeignKey,
                definition: "FOREIGN KEY (`p`) REFERENCES `parent` (`id`) ON DELETE RESTRICT ON UPDATE RESTRICT".into(),
            },
        );
        t.indexes.insert(
            "fk".into(),
            Index {
                unique: false,
                columns: vec!["p".into()],
                definition: "KEY `fk` (`p`)".into(),
            },
        );
        a.tables.insert("child".into(), t);
        a.tables.insert(
            "parent".into(),
            Table {
                columns: vec![col("id", "int", None)],
                ..Default::default()
            },
        );
        a.views.insert(
            "v".into(),
            View {
                definition: "select `child`.`p` AS `p` from `child`".into(),
                materialized: false,
            },
        );
        let b = Schema::default();
        let down = render(&a, &b, MARIA);
        let lines: Vec<&str> = down.lines().collect();
        assert_eq!(lines[0], "DROP VIEW `v`;");
        assert_eq!(lines[1], "ALTER TABLE `child` DROP FOREIGN KEY `fk`;");
        assert!(
            lines[2..].iter().all(|l| l.starts_with("DROP TABLE")),
            "{down}"
        );
        let up = render(&b, &a, MARIA);
        let fk_at = up.find("ADD CONSTRAINT `fk` FOREIGN KEY").unwrap();
        assert!(up.find("CREATE TABLE `parent`").unwrap() < fk_at, "{up}");
        assert!(up.find("CREATE TABLE `child`").unwrap() < fk_at, "{up}");
        assert!(
            up.find("CREATE OR REPLACE VIEW `v`").unwrap() > fk_at,
            "{up}"
        );
        assert!(up.lines().all(|l| !l.is_empty()));
        assert_eq!(render(&a, &a, MARIA), "");
    }
}
