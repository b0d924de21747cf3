//! The normalised schema model, introspected from the catalogs by each engine, stored as a snapshot
//! after every migration, and compared to find drift.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Schema {
    /// Keyed by qualified name (`schema.table` on PostgreSQL, `table` on MariaDB/MySQL).
    pub tables: BTreeMap<String, Table>,
    pub views: BTreeMap<String, View>,
    /// Enum types (PostgreSQL); MariaDB enums are column types.
    #[serde(default)]
    pub enums: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    pub sequences: BTreeMap<String, Sequence>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Table {
    /// In ordinal order.
    pub columns: Vec<Column>,
    pub indexes: BTreeMap<String, Index>,
    pub constraints: BTreeMap<String, Constraint>,
    /// The server's own CREATE statement when it has one (MariaDB `SHOW CREATE TABLE`); not compared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub create_sql: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Column {
    pub name: String,
    pub data_type: String,
    pub nullable: bool,
    pub default: Option<String>,
    /// Identity, auto-increment, generation expression: anything else the engine attaches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extra: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Index {
    pub unique: bool,
    pub columns: Vec<String>,
    /// The complete definition as the server prints it (`pg_get_indexdef`), or as rendered for MariaDB.
    pub definition: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ConstraintKind {
    PrimaryKey,
    Unique,
    ForeignKey,
    Check,
    Exclude,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Constraint {
    pub kind: ConstraintKind,
    /// The definition as the server prints it (`pg_get_constraintdef`), e.g. `CHECK ((a > 0))`.
    pub definition: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct View {
    pub definition: String,
    #[serde(default)]
    pub materialized: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sequence {
    pub data_type: String,
    pub increment: i64,
}

impl Schema {
    /// A stable fingerprint of the model (SHA-256 of its canonical JSON).
    pub fn fingerprint(&self) -> String {
        let mut stripped = self.clone();
        for t in stripped.tables.values_mut() {
            t.create_sql = None;
        }
        let json = serde_json::to_vec(&stripped).expect("schema serialises");
        Sha256::digest(&json)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ObjectKind {
    Table,
    Column,
    Index,
    Constraint,
    View,
    Enum,
    Sequence,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "change")]
pub enum Change {
    /// In the live schema, not in the recorded one.
    Added,
    /// In the recorded schema, gone from the live one.
    Removed,
    /// Present in both, different in `field`.
    Changed {
        field: String,
        recorded: String,
        live: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Difference {
    pub kind: ObjectKind,
    /// Table (or view/enum/sequence) the object belongs to.
    pub table: String,
    /// The object's own name (column, index, constraint); equal to `table` for whole objects.
    pub name: String,
    #[serde(flatten)]
    pub change: Change,
}

impl std::fmt::Display for Difference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = format!("{:?}", self.kind).to_lowercase();
        let what = if self.name == self.table {
            format!("{kind} {}", self.table)
        } else {
            format!("{kind} {}.{}", self.table, self.name)
        };
        match &self.change {
            Change::Added => write!(f, "+ {what} (exists live, not recorded)"),
            Change::Removed => write!(f, "- {what} (recorded, missing live)"),
            Change::Changed {
                field,
                recorded,
                live,
            } => write!(f, "~ {what}: {field} was `{recorded}`, is `{live}`"),
        }
    }
}

fn opt(s: &Option<String>) -> String {
    s.clone().unwrap_or_else(|| "none".into())
}

/// Every difference between what sluice recorded and what is live.
pub fn diff(recorded: &Schema, live: &Schema) -> Vec<Difference> {
    let mut out = Vec::new();
    let whole = |kind, name: &str, change| Difference {
        kind,
        table: name.to_string(),
        name: name.to_string(),
        change,
    };
    for (name, rt) in &recorded.tables {
        let Some(lt) = live.tables.get(name) else {
            out.push(whole(ObjectKind::Table, name, Change::Removed));
            continue;
        };
        diff_table(name, rt, lt, &mut out);
    }
    for name in live
        .tables
        .keys()
        .filter(|n| !recorded.tables.contains_key(*n))
    {
        out.push(whole(ObjectKind::Table, name, Change::Added));
    }
    diff_map(
        &recorded.views,
        &live.views,
        ObjectKind::View,
        &mut out,
        |a, b| {
            let mut d = Vec::new();
            if a.definition != b.definition {
                d.push(("definition", a.definition.clone(), b.definition.clone()));
            }
            if a.materialized != b.materialized {
                d.push((
                    "materialized",
                    a.materialized.to_string(),
                    b.materialized.to_string(),
                ));
            }
            d
        },
    );
    diff_map(
        &recorded.enums,
        &live.enums,
        ObjectKind::Enum,
        &mut out,
        |a, b| {
            if a != b {
                vec![("values", a.join(", "), b.join(", "))]
            } else {
                vec![]
            }
        },
    );
    diff_map(
        &recorded.sequences,
        &live.sequences,
        ObjectKind::Sequence,
        &mut out,
        |a, b| {
            let mut d = Vec::new();
            if a.data_type != b.data_type {
                d.push(("type", a.data_type.clone(), b.data_type.clone()));
            }
            if a.increment != b.increment {
                d.push((
                    "increment",
                    a.increment.to_string(),
                    b.increment.to_string(),
                ));
            }
            d
        },
    );
    out
}

type FieldDiffs = Vec<(&'static str, String, String)>;

fn diff_map<T>(
    recorded: &BTreeMap<String, T>,
    live: &BTreeMap<String, T>,
    kind: ObjectKind,
    out: &mut Vec<Difference>,
    fields: impl Fn(&T, &T) -> FieldDiffs,
) {
    for (name, r) in recorded {
        match live.get(name) {
            None => out.push(Difference {
                kind,
                table: name.clone(),
                name: name.clone(),
                change: Change::Removed,
            }),
            Some(l) => {
                for (field, rv, lv) in fields(r, l) {
                    out.push(Difference {
                        kind,
                        table: name.clone(),
                        name: name.clone(),
                        change: Change::Changed {
                            field: field.into(),
                            recorded: rv,
                            live: lv,
                        },
                    });
                }
            }
        }
    }
    for name in live.keys().filter(|n| !recorded.contains_key(*n)) {
        out.push(Difference {
            kind,
            table: name.clone(),
            name: name.clone(),
            change: Change::Added,
        });
    }
}

fn diff_table(table: &str, r: &Table, l: &Table, out: &mut Vec<Difference>) {
    let item = |kind, name: &str, change| Difference {
        kind,
        table: table.to_string(),
        name: name.to_string(),
        change,
    };
    for rc in &r.columns {
        match l.columns.iter().find(|c| c.name == rc.name) {
            None => out.push(item(ObjectKind::Column, &rc.name, Change::Removed)),
            Some(lc) => {
                let mut fields: FieldDiffs = Vec::new();
                if rc.data_type != lc.data_type {
                    fields.push(("type", rc.data_type.clone(), lc.data_type.clone()));
                }
                if rc.nullable != lc.nullable {
                    let n = |b: bool| if b { "NULL" } else { "NOT NULL" }.to_string();
                    fields.push(("nullability", n(rc.nullable), n(lc.nullable)));
                }
                if rc.default != lc.default {
                    fields.push(("default", opt(&rc.default), opt(&lc.default)));
                }
                if rc.extra != lc.extra {
                    fields.push(("extra", opt(&rc.extra), opt(&lc.extra)));
                }
                for (field, recorded, live) in fields {
                    out.push(item(
                        ObjectKind::Column,
                        &rc.name,
                        Change::Changed {
                            field: field.into(),
                            recorded,
                            live,
                        },
                    ));
                }
            }
        }
    }
    for lc in l
        .columns
        .iter()
        .filter(|lc| !r.columns.iter().any(|c| c.name == lc.name))
    {
        out.push(item(ObjectKind::Column, &lc.name, Change::Added));
    }
    let mut sub = Vec::new();
    diff_map(
        &r.indexes,
        &l.indexes,
        ObjectKind::Index,
        &mut sub,
        |a, b| {
            if a.definition != b.definition {
                vec![("definition", a.definition.clone(), b.definition.clone())]
            } else {
                vec![]
            }
        },
    );
    diff_map(
        &r.constraints,
        &l.constraints,
        ObjectKind::Constraint,
        &mut sub,
        |a, b| {
            if a.definition != b.definition || a.kind != b.kind {
                vec![("definition", a.definition.clone(), b.definition.clone())]
            } else {
                vec![]
            }
        },
    );
    for mut d in sub {
        d.table = table.to_string();
        out.push(d);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col(name: &str, ty: &str) -> Column {
        Column {
            name: name.into(),
            data_type: ty.into(),
            nullable: true,
            default: None,
            extra: None,
        }
    }

    fn base() -> Schema {
        let mut s = Schema::default();
        let mut t = Table {
            columns: vec![col("id", "bigint"), col("email", "text")],
            ..Default::default()
        };
        t.indexes.insert(
            "users_email_idx".into(),
            Index {
                unique: false,
                columns: vec!["email".into()],
                definition: "CREATE INDEX users_email_idx ON public.users USING btree (email)"
                    .into(),
            },
        );
        t.constraints.insert(
            "users_pkey".into(),
            Constraint {
                kind: ConstraintKind::PrimaryKey,
                definition: "PRIMARY KEY (id)".into(),
            },
        );
        s.tables.insert("public.users".into(), t);
        s.views.insert(
            "public.v".into(),
            View {
                definition: "SELECT 1".into(),
                materialized: false,
            },
        );
        s
    }

    #[test]
    fn identical_schemas_have_no_diff_and_same_fingerprint() {
        assert!(diff(&base(), &base()).is_empty());
        assert_eq!(base().fingerprint(), base().fingerprint());
    }

    #[test]
    fn every_kind_of_difference_is_reported() {
        let rec = base();
        let mut live = base();
        let t = live.tables.get_mut("public.users").unwrap();
        t.columns[1].data_type = "varchar(10)".into();
        t.columns[1].nullable = false;
        t.columns[1].default = Some("'x'".into());
        t.columns.push(col("age", "int"));
        t.indexes.clear();
        t.constraints.insert(
            "age_ck".into(),
            Constraint {
                kind: ConstraintKind::Check,
                definition: "CHECK (age > 0)".into(),
            },
        );
        live.views.get_mut("public.v").unwrap().definition = "SELECT 2".into();
        live.tables.insert("public.extra".into(), Table::default());
        let d = diff(&rec, &live);
        let lines: Vec<String> = d.iter().map(|d| d.to_string()).collect();
        let expect = [
            "~ column public.users.email: type was `text`, is `varchar(10)`",
            "~ column public.users.email: nullability was `NULL`, is `NOT NULL`",
            "~ column public.users.email: default was `none`, is `'x'`",
            "+ column public.users.age (exists live, not recorded)",
            "- index public.users.users_email_idx (recorded, missing live)",
            "+ constraint public.users.age_ck (exists live, not recorded)",
            "+ table public.extra (exists live, not recorded)",
            "~ view public.v: definition was `SELECT 1`, is `SELECT 2`",
        ];
        for e in expect {
            assert!(lines.iter().any(|l| l == e), "missing {e}\n{lines:#?}");
        }
        assert_eq!(lines.len(), expect.len(), "{lines:#?}");
        assert_ne!(rec.fingerprint(), live.fingerprint());
    }
}
