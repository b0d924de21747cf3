//! PostgreSQL introspection into the schema model, and rendering of a schema diff as SQL.
//!
//! Introspection reads pg_catalog with one query per object kind. Rendering turns one model into
//! another with plain DDL, in an order that respects dependencies between objects (views on
//! columns, foreign keys on keys, columns on enums and sequences).

use crate::quote;
use sluice_core::schema::{
    Column, Constraint, ConstraintKind, Index, Schema, Sequence, Table, View,
};
use sluice_core::{Error, Result};
use std::collections::{BTreeMap, BTreeSet};
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, Row};

/// Schemas never introspected: the system's and sluice's own (history tables, snapshots).
const EXCLUDED_SCHEMAS: [&str; 3] = ["pg_catalog", "information_schema", "sluice"];

/// Where an unqualified name lives on the default search_path: the server prints
/// `nextval('seq'::regclass)` unqualified when the sequence is visible there.
const DEFAULT_SCHEMA: &str = "public";

// Shared filters. `n` is the object's pg_namespace row, `$1` the excluded schema names.
macro_rules! user_namespace {
    () => {
        "n.nspname <> ALL($1::text[]) AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%'"
    };
}
// `c` is a pg_class row; objects created by an extension belong to the extension, not the user.
macro_rules! not_extension_class {
    () => {
        "NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass \
         AND d.objid = c.oid AND d.deptype = 'e')"
    };
}

const TABLES_SQL: &str = concat!(
    "SELECT n.nspname::text, c.relname::text FROM pg_class c \
     JOIN pg_namespace n ON n.oid = c.relnamespace \
     WHERE c.relkind IN ('r', 'p') AND ",
    user_namespace!(),
    " AND ",
    not_extension_class!()
);

macro_rules! columns_sql {
    ($generated:literal) => {
        concat!(
            "SELECT n.nspname::text, c.relname::text, a.attname::text, \
             format_type(a.atttypid, a.atttypmod), a.attnotnull, \
             pg_get_expr(ad.adbin, ad.adrelid), a.attidentity::text, ",
            $generated,
            " FROM pg_attribute a \
             JOIN pg_class c ON c.oid = a.attrelid \
             JOIN pg_namespace n ON n.oid = c.relnamespace \
             LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum \
             WHERE c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped AND ",
            user_namespace!(),
            " AND ",
            not_extension_class!(),
            " ORDER BY n.nspname, c.relname, a.attnum"
        )
    };
}
const COLUMNS_SQL: &str = columns_sql!("a.attgenerated::text");
/// Before PostgreSQL 12 there are no generated columns (and no attgenerated).
const COLUMNS_SQL_PRE12: &str = columns_sql!("''::text");

// Index columns: the column name, or the expression text for an expression column. Key columns
// only (INCLUDE columns are in the definition).
const INDEXES_SQL: &str = concat!(
    "SELECT n.nspname::text, c.relname::text, i.relname::text, x.indisunique, \
     pg_get_indexdef(x.indexrelid), \
     ARRAY(SELECT CASE WHEN x.indkey[k - 1] <> 0 \
                  THEN (SELECT a.attname::text FROM pg_attribute a \
                        WHERE a.attrelid = x.indrelid AND a.attnum = x.indkey[k - 1]) \
                  ELSE pg_get_indexdef(x.indexrelid, k, true) END \
           FROM generate_series(1, x.indnkeyatts) AS k ORDER BY k) \
     FROM pg_index x \
     JOIN pg_class i ON i.oid = x.indexrelid \
     JOIN pg_class c ON c.oid = x.indrelid \
     JOIN pg_namespace n ON n.oid = c.relnamespace \
     WHERE c.relkind IN ('r', 'p') AND ",
    user_namespace!(),
    " AND ",
    not_extension_class!()
);

const CONSTRAINTS_SQL: &str = concat!(
    "SELECT n.nspname::text, c.relname::text, co.conname::text, co.contype::text, \
     pg_get_constraintdef(co.oid) \
     FROM pg_constraint co \
     JOIN pg_class c ON c.oid = co.conrelid \
     JOIN pg_namespace n ON n.oid = c.relnamespace \
     WHERE co.contype IN ('p', 'u', 'f', 'c', 'x') AND c.relkind IN ('r', 'p') AND ",
    user_namespace!(),
    " AND ",
    not_extension_class!()
);

const VIEWS_SQL: &str = concat!(
    "SELECT n.nspname::text, c.relname::text, c.relkind = 'm', pg_get_viewdef(c.oid, true) \
     FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
     WHERE c.relkind IN ('v', 'm') AND ",
    user_namespace!(),
    " AND ",
    not_extension_class!()
);

const ENUMS_SQL: &str = concat!(
    "SELECT n.nspname::text, t.typname::text, \
     ARRAY(SELECT e.enumlabel::text FROM pg_enum e WHERE e.enumtypid = t.oid \
           ORDER BY e.enumsortorder) \
     FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace \
     WHERE t.typtype = 'e' AND ",
    user_namespace!(),
    " AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_type'::regclass \
     AND d.objid = t.oid AND d.deptype = 'e')"
);

// A sequence owned by a column (serial: deptype 'a', identity: 'i') is part of that column.
const SEQUENCES_SQL: &str = concat!(
    "SELECT n.nspname::text, c.relname::text, format_type(s.seqtypid, NULL), s.seqincrement \
     FROM pg_class c \
     JOIN pg_sequence s ON s.seqrelid = c.oid \
     JOIN pg_namespace n ON n.oid = c.relnamespace \
     WHERE c.relkind = 'S' AND ",
    user_namespace!(),
    " AND ",
    not_extension_class!(),
    " AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass \
     AND d.objid = c.oid AND d.refclassid = 'pg_class'::regclass AND d.refobjsubid > 0 \
     AND d.deptype IN ('a', 'i'))"
);

async fn query(
    client: &Client,
    what: &str,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Vec<Row>> {
    client.query(sql, params).await.map_err(|e| {
        let message = match e.as_db_error() {
            Some(db) => format!("{} ({})", db.message(), db.code().code()),
            None => e.to_string(),
        };
        Error::database(format!("introspecting {what}"), message)
    })
}

/// The model key of a schema-qualified object: `schema.name`, or both parts quoted when either holds
/// a dot or a double quote, so `"a.b".c` and `a."b.c"` never share a key and a key always splits back
/// into the names it came from (keys of ordinary names are unchanged, so recorded snapshots still match).
pub fn key(schema: &str, name: &str) -> String {
    if [schema, name].iter().any(|p| p.contains(['.', '"'])) {
        format!("{}.{}", quote::ident(schema), quote::ident(name))
    } else {
        format!("{schema}.{name}")
    }
}

/// The live schema: tables, views, enums and sequences of every user schema, without sluice's own
/// schema, the system schemas and objects that belong to extensions.
pub async fn introspect(client: &Client) -> Result<Schema> {
    let excluded: Vec<&str> = EXCLUDED_SCHEMAS.to_vec();
    let params: [&(dyn ToSql + Sync); 1] = [&excluded];
    let mut schema = Schema::default();

    let version: i32 = query(
        client,
        "server version",
        "SELECT current_setting('server_version_num')::int",
        &[],
    )
    .await?
    .first()
    .map(|r| r.get(0))
    .unwrap_or(0);

    for row in query(client, "tables", TABLES_SQL, &params).await? {
        schema
            .tables
            .insert(key(row.get(0), row.get(1)), Table::default());
    }

    let columns_sql = if version >= 120000 {
        COLUMNS_SQL
    } else {
        COLUMNS_SQL_PRE12
    };
    for row in query(client, "columns", columns_sql, &params).await? {
        let Some(table) = schema.tables.get_mut(&key(row.get(0), row.get(1))) else {
            continue;
        };
        let expr: Option<String> = row.get(5);
        let identity: String = row.get(6);
        let generated: String = row.get(7);
        let (default, extra) = match (identity.as_str(), generated.as_str()) {
            (_, "s") => (
                None,
                expr.map(|e| format!("generated always as ({e}) stored")),
            ),
            ("a", _) => (expr, Some("identity always".to_string())),
            ("d", _) => (expr, Some("identity by default".to_string())),
            _ => (expr, None),
        };
        table.columns.push(Column {
            name: row.get(2),
            data_type: row.get(3),
            nullable: !row.get::<_, bool>(4),
            default,
            extra,
        });
    }

    for row in query(client, "indexes", INDEXES_SQL, &params).await? {
        if let Some(table) = schema.tables.get_mut(&key(row.get(0), row.get(1))) {
            table.indexes.insert(
                row.get(2),
                Index {
                    unique: row.get(3),
                    definition: row.get(4),
                    columns: row.get(5),
                },
            );
        }
    }

    for row in query(client, "constraints", CONSTRAINTS_SQL, &params).await? {
        let kind = match row.get::<_, &str>(3) {
            "p" => ConstraintKind::PrimaryKey,
            "u" => ConstraintKind::Unique,
            "f" => ConstraintKind::ForeignKey,
            "c" => ConstraintKind::Check,
            _ => ConstraintKind::Exclude,
        };
        if let Some(table) = schema.tables.get_mut(&key(row.get(0), row.get(1))) {
            table.constraints.insert(
                row.get(2),
                Constraint {
                    kind,
                    definition: row.get(4),
                },
            );
        }
    }

    for row in query(client, "views", VIEWS_SQL, &params).await? {
        let definition: Option<String> = row.get(3);
        schema.views.insert(
            key(row.get(0), row.get(1)),
            View {
                definition: view_query(definition.as_deref().unwrap_or("")).to_string(),
                materialized: row.get(2),
            },
        );
    }

    for row in query(client, "enums", ENUMS_SQL, &params).await? {
        schema.enums.insert(key(row.get(0), row.get(1)), row.get(2));
    }

    for row in query(client, "sequences", SEQUENCES_SQL, &params).await? {
        schema.sequences.insert(
            key(row.get(0), row.get(1)),
            Sequence {
                data_type: row.get(2),
                increment: row.get(3),
            },
        );
    }

    Ok(schema)
}

/// A view's query without surrounding whitespace and without the `;` pg_get_viewdef appends.
fn view_query(definition: &str) -> &str {
    definition.trim().trim_end_matches(';').trim_end()
}

// ---------------------------------------------------------------------------------------------
// Rendering

/// SQL that turns a database whose schema is `from` into `to`: each statement ends in `;\n`.
/// Changes PostgreSQL cannot make in place (removing enum values) become `-- MANUAL:` comments.
pub fn render_diff_sql(from: &Schema, to: &Schema) -> String {
    Render::new(from, to).run()
}

/// Splits a model key (see `key`) back into its schema and name.
pub fn split_key(key: &str) -> (String, String) {
    if key.starts_with('"') {
        let mut parts = Vec::new();
        let mut rest = key;
        while let Some(body) = rest.strip_prefix('"') {
            let mut part = String::new();
            let mut chars = body.char_indices();
            let mut end = body.len();
            while let Some((i, c)) = chars.next() {
                if c == '"' {
                    if body[i + 1..].starts_with('"') {
                        part.push('"');
                        chars.next();
                    } else {
                        end = i + 1;
                        break;
                    }
                } else {
                    part.push(c);
                }
            }
            parts.push(part);
            rest = body[end..].strip_prefix('.').unwrap_or(&body[end..]);
        }
        if let [schema, name] = parts.as_slice() {
            return (schema.clone(), name.clone());
        }
    }
    match key.split_once('.') {
        Some((s, n)) => (s.to_string(), n.to_string()),
        None => (DEFAULT_SCHEMA.to_string(), key.to_string()),
    }
}

fn qualified(key: &str) -> String {
    let (schema, name) = split_key(key);
    quote::qualified(&schema, &name)
}

fn one_line(text: &str) -> String {
    text.replace(['\r', '\n'], " ")
}

/// What `Column::extra` says, as introspection writes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Extra<'a> {
    None,
    /// `always` or `by default`.
    Identity(&'a str),
    /// The generation expression, parenthesised as pg_get_expr prints it.
    Generated(&'a str),
    Unknown,
}

fn extra(column: &Column) -> Extra<'_> {
    let Some(e) = column.extra.as_deref() else {
        return Extra::None;
    };
    if let Some(kind) = e.strip_prefix("identity ") {
        return Extra::Identity(kind);
    }
    e.strip_prefix("generated always as (")
        .and_then(|rest| rest.strip_suffix(") stored"))
        .map(Extra::Generated)
        .unwrap_or(Extra::Unknown)
}

fn identity_sql(kind: &str) -> String {
    format!("GENERATED {} AS IDENTITY", kind.to_uppercase())
}

fn column_def(column: &Column) -> String {
    let mut sql = format!("{} {}", quote::ident(&column.name), column.data_type);
    match extra(column) {
        Extra::Identity(kind) => sql += &format!(" {}", identity_sql(kind)),
        Extra::Generated(expr) => sql += &format!(" GENERATED ALWAYS AS ({expr}) STORED"),
        Extra::None | Extra::Unknown => {}
    }
    if !column.nullable {
        sql += " NOT NULL";
    }
    if let Some(default) = &column.default {
        sql += &format!(" DEFAULT {default}");
    }
    sql
}

/// A sequence named in a `nextval('name'::regclass)` default, as its (unquoted) name parts.
#[derive(Debug, Clone, PartialEq, Eq)]
struct SeqRef {
    schema: Option<String>,
    name: String,
}

impl SeqRef {
    fn key(&self) -> String {
        key(self.schema.as_deref().unwrap_or(DEFAULT_SCHEMA), &self.name)
    }

    fn sql(&self) -> String {
        match &self.schema {
            Some(schema) => quote::qualified(schema, &self.name),
            // Unqualified as the server printed it: resolved through search_path like the default.
            None => quote::ident(&self.name),
        }
    }
}

fn nextval_sequence(default: &str) -> Option<SeqRef> {
    let literal = default
        .strip_prefix("nextval('")?
        .strip_suffix("'::regclass)")?
        .replace("''", "'");
    let parts = parse_qualified_name(&literal)?;
    match <[String; 2]>::try_from(parts) {
        Ok([schema, name]) => Some(SeqRef {
            schema: Some(schema),
            name,
        }),
        Err(parts) if parts.len() == 1 => Some(SeqRef {
            schema: None,
            name: parts.into_iter().next()?,
        }),
        Err(_) => None,
    }
}

/// Parses a name as regclass output prints it (`a.b`, `"A"."b.c"`) into its unquoted parts.
fn parse_qualified_name(text: &str) -> Option<Vec<String>> {
    let mut parts = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        let mut part = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next()? {
                    '"' if chars.peek() == Some(&'"') => {
                        chars.next();
                        part.push('"');
                    }
                    '"' => break,
                    c => part.push(c),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == '.' {
                    break;
                }
                part.push(c);
                chars.next();
            }
        }
        if part.is_empty() {
            return None;
        }
        parts.push(part);
        match chars.next() {
            None => return Some(parts),
            Some('.') => continue,
            Some(_) => return None,
        }
    }
}

/// Whether SQL text (a view, index or constraint definition) names `name`: as a whole word or
/// quoted. A heuristic that errs towards yes, used to decide what must be dropped and recreated.
fn mentions(text: &str, name: &str) -> bool {
    if text.contains(&quote::ident(name)) {
        return true;
    }
    let is_word = |c: char| c.is_alphanumeric() || c == '_' || c == '$';
    text.match_indices(name).any(|(i, _)| {
        let before = text[..i].chars().next_back();
        let after = text[i + name.len()..].chars().next();
        !before.is_some_and(is_word) && !after.is_some_and(is_word)
    })
}

/// One table present in both schemas.
struct TablePlan<'a> {
    key: &'a str,
    from: &'a Table,
    to: &'a Table,
    /// Columns whose generation expression appears or changes: PostgreSQL cannot alter it, so
    /// they are dropped and added again (their values are computed, nothing is lost).
    rebuilt: Vec<&'a str>,
    /// Columns dropped, rebuilt or changing type: a view reading one blocks that.
    blocked_columns: Vec<&'a str>,
    /// Names of the tables whose keys are dropped (and maybe recreated) by the script.
    keys_dropped_in: Vec<String>,
}

impl<'a> TablePlan<'a> {
    fn new(key: &'a str, from: &'a Table, to: &'a Table) -> Self {
        let mut rebuilt = Vec::new();
        let mut blocked_columns = Vec::new();
        for fc in &from.columns {
            let Some(tc) = to.columns.iter().find(|c| c.name == fc.name) else {
                blocked_columns.push(fc.name.as_str());
                continue;
            };
            if let Extra::Generated(expr) = extra(tc) {
                if extra(fc) != Extra::Generated(expr) {
                    rebuilt.push(tc.name.as_str());
                    blocked_columns.push(tc.name.as_str());
                    continue;
                }
            }
            if fc.data_type != tc.data_type {
                blocked_columns.push(fc.name.as_str());
            }
        }
        TablePlan {
            key,
            from,
            to,
            rebuilt,
            blocked_columns,
            keys_dropped_in: Vec::new(),
        }
    }

    /// Indexes and constraints on a rebuilt column go with it and are created again.
    fn forced(&self, definition: &str, columns: &[String]) -> bool {
        self.rebuilt
            .iter()
            .any(|c| columns.iter().any(|ic| ic == c) || mentions(definition, c))
    }

    fn index_dropped(&self, name: &str, index: &Index) -> bool {
        match self.to.indexes.get(name) {
            None => true,
            Some(t) => {
                t.definition != index.definition || self.forced(&index.definition, &index.columns)
            }
        }
    }

    fn index_created(&self, name: &str, index: &Index) -> bool {
        match self.from.indexes.get(name) {
            None => true,
            Some(f) => {
                f.definition != index.definition || self.forced(&index.definition, &index.columns)
            }
        }
    }

    fn constraint_dropped(&self, name: &str, c: &Constraint) -> bool {
        match self.to.constraints.get(name) {
            None => true,
            Some(t) => {
                t != c
                    || self.forced(&c.definition, &[])
                    || self.fk_forced(c)
                    || self.backing_index_changed(name)
            }
        }
    }

    fn constraint_created(&self, name: &str, c: &Constraint) -> bool {
        match self.from.constraints.get(name) {
            None => true,
            Some(f) => {
                f != c
                    || self.forced(&c.definition, &[])
                    || self.fk_forced(c)
                    || self.backing_index_changed(name)
            }
        }
    }

    /// The index of a constraint can change alone (storage parameters, tablespace): the constraint
    /// is then recreated with it.
    fn backing_index_changed(&self, name: &str) -> bool {
        match (self.from.indexes.get(name), self.to.indexes.get(name)) {
            (Some(f), Some(t)) => {
                f.definition != t.definition || self.forced(&t.definition, &t.columns)
            }
            _ => false,
        }
    }

    /// Whether this table's primary key, unique constraints or unique indexes are dropped: a
    /// foreign key referencing the table depends on them.
    fn keys_dropped(&self) -> bool {
        self.from
            .indexes
            .iter()
            .any(|(name, i)| i.unique && self.index_dropped(name, i))
            || self.from.constraints.iter().any(|(name, c)| {
                matches!(c.kind, ConstraintKind::PrimaryKey | ConstraintKind::Unique)
                    && self.constraint_dropped(name, c)
            })
    }

    /// A foreign key to a table whose keys are recreated is recreated around them.
    fn fk_forced(&self, c: &Constraint) -> bool {
        c.kind == ConstraintKind::ForeignKey
            && c.definition
                .split_once("REFERENCES")
                .is_some_and(|(_, target)| self.keys_dropped_in.iter().any(|t| mentions(target, t)))
    }
}

struct Render<'a> {
    from: &'a Schema,
    to: &'a Schema,
    /// Tables in both schemas.
    tables: Vec<TablePlan<'a>>,
    /// Sequences already given an owner by this script.
    owned: BTreeSet<String>,
    /// Enum labels added by this script (they cannot be used in the transaction that adds them).
    new_labels: Vec<String>,
    /// Where the statements after the enum changes start in `out`.
    enums_end: usize,
    out: String,
}

impl<'a> Render<'a> {
    fn new(from: &'a Schema, to: &'a Schema) -> Self {
        let mut tables: Vec<TablePlan<'a>> = from
            .tables
            .iter()
            .filter_map(|(k, f)| to.tables.get(k).map(|t| TablePlan::new(k, f, t)))
            .collect();
        // Computed before any foreign key is forced, so the answer does not feed on itself.
        let keys_dropped_in: Vec<String> = tables
            .iter()
            .filter(|p| p.keys_dropped())
            .map(|p| split_key(p.key).1)
            .collect();
        for plan in &mut tables {
            plan.keys_dropped_in = keys_dropped_in.clone();
        }
        Render {
            from,
            to,
            tables,
            owned: BTreeSet::new(),
            new_labels: Vec::new(),
            enums_end: 0,
            out: String::new(),
        }
    }

    fn stmt(&mut self, sql: impl AsRef<str>) {
        self.out.push_str(sql.as_ref());
        self.out.push_str(";\n");
    }

    fn manual(&mut self, note: &str) {
        self.out.push_str("-- MANUAL: ");
        self.out.push_str(&one_line(note));
        self.out.push('\n');
    }

    fn run(mut self) -> String {
        let (drop_views, create_views) = self.view_plan();
        self.create_schemas();
        for key in &drop_views {
            let view = &self.from.views[*key];
            let kind = if view.materialized {
                "MATERIALIZED VIEW"
            } else {
                "VIEW"
            };
            self.stmt(format!("DROP {kind} {}", qualified(key)));
        }
        self.drop_constraints(true);
        self.drop_constraints(false);
        self.drop_indexes();
        self.drop_tables();
        self.create_and_extend_enums();
        self.enums_end = self.out.len();
        self.create_and_alter_sequences();
        self.create_tables();
        for i in 0..self.tables.len() {
            self.alter_table(i);
        }
        self.drop_sequences();
        self.drop_enums();
        self.add_constraints(false);
        self.create_indexes();
        self.add_constraints(true);
        for key in &create_views {
            let view = &self.to.views[*key];
            let kind = if view.materialized {
                "MATERIALIZED VIEW"
            } else {
                "VIEW"
            };
            self.stmt(format!(
                "CREATE {kind} {} AS\n{}",
                qualified(key),
                view_query(&view.definition)
            ));
        }
        self.transaction_directive()
    }

    /// A label added by `ALTER TYPE ... ADD VALUE` cannot be used before that commits: when a
    /// statement after the enum changes quotes one (a default, a check, a view), the script asks to
    /// run statement by statement. A text that merely looks the same costs only atomicity.
    fn transaction_directive(self) -> String {
        let later = &self.out[self.enums_end..];
        if self
            .new_labels
            .iter()
            .any(|label| later.contains(&quote::literal(label)))
        {
            format!("-- sluice:transaction per-statement\n{}", self.out)
        } else {
            self.out
        }
    }

    /// Views to drop (dependents first) and to create (dependencies first).
    fn view_plan(&self) -> (Vec<&'a str>, Vec<&'a str>) {
        let (from, to) = (self.from, self.to);
        let mut drop: BTreeSet<&'a str> = from
            .views
            .iter()
            .filter(|(k, v)| to.views.get(*k) != Some(*v))
            .map(|(k, _)| k.as_str())
            .collect();
        let gone_tables: Vec<String> = from
            .tables
            .keys()
            .filter(|k| !to.tables.contains_key(*k))
            .map(|k| split_key(k).1)
            .collect();
        // A view reading a dropped table or a column the script drops or retypes blocks that.
        let blocks = |def: &str| {
            gone_tables.iter().any(|t| mentions(def, t))
                || self.tables.iter().any(|p| {
                    !p.blocked_columns.is_empty()
                        && mentions(def, &split_key(p.key).1)
                        && p.blocked_columns.iter().any(|c| mentions(def, c))
                })
        };
        loop {
            let more: Vec<&'a str> = from
                .views
                .iter()
                .filter(|(k, v)| {
                    !drop.contains(k.as_str())
                        && (blocks(&v.definition)
                            || drop
                                .iter()
                                .any(|dep| mentions(&v.definition, &split_key(dep).1)))
                })
                .map(|(k, _)| k.as_str())
                .collect();
            if more.is_empty() {
                break;
            }
            drop.extend(more);
        }
        let create: BTreeSet<&'a str> = to
            .views
            .keys()
            .map(String::as_str)
            .filter(|k| !from.views.contains_key(*k) || drop.contains(k))
            .collect();
        let mut drop_order = dependency_order(drop, &from.views);
        drop_order.reverse();
        (drop_order, dependency_order(create, &to.views))
    }

    fn create_schemas(&mut self) {
        let schemas = |s: &Schema| -> BTreeSet<String> {
            s.tables
                .keys()
                .chain(s.views.keys())
                .chain(s.enums.keys())
                .chain(s.sequences.keys())
                .map(|k| split_key(k).0.to_string())
                .collect()
        };
        let existing = schemas(self.from);
        for schema in schemas(self.to).difference(&existing) {
            self.stmt(format!(
                "CREATE SCHEMA IF NOT EXISTS {}",
                quote::ident(schema)
            ));
        }
    }

    fn drop_constraints(&mut self, foreign_keys: bool) {
        let mut sql = Vec::new();
        for plan in &self.tables {
            for (name, c) in &plan.from.constraints {
                if (c.kind == ConstraintKind::ForeignKey) == foreign_keys
                    && plan.constraint_dropped(name, c)
                {
                    sql.push(format!(
                        "ALTER TABLE {} DROP CONSTRAINT {}",
                        qualified(plan.key),
                        quote::ident(name)
                    ));
                }
            }
        }
        sql.into_iter().for_each(|s| self.stmt(s));
    }

    fn drop_indexes(&mut self) {
        let mut sql = Vec::new();
        for plan in &self.tables {
            let schema = split_key(plan.key).0;
            for (name, index) in &plan.from.indexes {
                // An index backing a constraint goes with the constraint.
                if !plan.from.constraints.contains_key(name) && plan.index_dropped(name, index) {
                    sql.push(format!("DROP INDEX {}", quote::qualified(&schema, name)));
                }
            }
        }
        sql.into_iter().for_each(|s| self.stmt(s));
    }

    fn drop_tables(&mut self) {
        // One statement: foreign keys between the dropped tables then need no ordering.
        let gone: Vec<String> = self
            .from
            .tables
            .keys()
            .filter(|k| !self.to.tables.contains_key(*k))
            .map(|k| qualified(k))
            .collect();
        if !gone.is_empty() {
            self.stmt(format!("DROP TABLE {}", gone.join(", ")));
        }
    }

    fn create_and_extend_enums(&mut self) {
        for (key, labels) in &self.to.enums {
            let Some(old) = self.from.enums.get(key) else {
                let list: Vec<String> = labels.iter().map(|l| quote::literal(l)).collect();
                self.stmt(format!(
                    "CREATE TYPE {} AS ENUM ({})",
                    qualified(key),
                    list.join(", ")
                ));
                continue;
            };
            if old == labels {
                continue;
            }
            if !is_subsequence(old, labels) {
                self.manual(&format!(
                    "cannot change enum {key} from ({}) to ({}): PostgreSQL cannot remove or \
                     reorder enum values; migrate the columns using it by hand",
                    old.join(", "),
                    labels.join(", ")
                ));
                continue;
            }
            for (i, label) in labels.iter().enumerate() {
                if old.contains(label) {
                    continue;
                }
                // Labels before this one exist by now (old ones, or added just above).
                let position = match (i.checked_sub(1), old.first()) {
                    (Some(prev), _) => format!(" AFTER {}", quote::literal(&labels[prev])),
                    (None, Some(first)) => format!(" BEFORE {}", quote::literal(first)),
                    (None, None) => String::new(),
                };
                self.stmt(format!(
                    "ALTER TYPE {} ADD VALUE {}{position}",
                    qualified(key),
                    quote::literal(label)
                ));
                self.new_labels.push(label.clone());
            }
        }
    }

    /// Columns of `schema` whose default is `nextval` of the sequence `key`.
    fn nextval_users(schema: &'a Schema, seq_key: &str) -> Option<(&'a str, &'a Column)> {
        schema.tables.iter().find_map(|(t, table)| {
            table
                .columns
                .iter()
                .find(|c| {
                    c.default
                        .as_deref()
                        .and_then(nextval_sequence)
                        .is_some_and(|s| s.key() == seq_key)
                })
                .map(|c| (t.as_str(), c))
        })
    }

    fn create_and_alter_sequences(&mut self) {
        for (key, seq) in &self.to.sequences {
            let settings = format!("AS {} INCREMENT BY {}", seq.data_type, seq.increment);
            match self.from.sequences.get(key) {
                Some(old) if old == seq => {}
                Some(_) => self.stmt(format!("ALTER SEQUENCE {} {settings}", qualified(key))),
                // It exists already, owned by a column: it becomes free-standing.
                None if Self::nextval_users(self.from, key).is_some() => {
                    self.stmt(format!("ALTER SEQUENCE {} OWNED BY NONE", qualified(key)));
                    self.stmt(format!("ALTER SEQUENCE {} {settings}", qualified(key)));
                }
                None => self.stmt(format!("CREATE SEQUENCE {} {settings}", qualified(key))),
            }
        }
    }

    fn drop_sequences(&mut self) {
        for key in self.from.sequences.keys() {
            if self.to.sequences.contains_key(key) {
                continue;
            }
            // Still used by a column in `to`, where it is owned by that column.
            if let Some((table, column)) = Self::nextval_users(self.to, key) {
                if self.owned.insert(key.clone()) {
                    self.stmt(format!(
                        "ALTER SEQUENCE {} OWNED BY {}.{}",
                        qualified(key),
                        qualified(table),
                        quote::ident(&column.name)
                    ));
                }
            } else {
                self.stmt(format!("DROP SEQUENCE {}", qualified(key)));
            }
        }
    }

    fn drop_enums(&mut self) {
        for key in self.from.enums.keys() {
            if !self.to.enums.contains_key(key) {
                self.stmt(format!("DROP TYPE {}", qualified(key)));
            }
        }
    }

    /// The sequence behind a serial-style default when `to` has it only as part of a column.
    fn owned_sequence(&self, column: &Column) -> Option<SeqRef> {
        column
            .default
            .as_deref()
            .and_then(nextval_sequence)
            .filter(|s| !self.to.sequences.contains_key(&s.key()))
    }

    /// Creates the owned sequence a column's default needs (before the column).
    /// `IF NOT EXISTS`: an owned sequence is not in the model, and may well outlive a default.
    fn create_owned_sequence(&mut self, column: &Column) {
        let seq = self.owned_sequence(column);
        if let Some(seq) = seq.filter(|s| !self.from.sequences.contains_key(&s.key())) {
            let data_type = match column.data_type.as_str() {
                t @ ("smallint" | "integer" | "bigint") => format!(" AS {t}"),
                _ => String::new(),
            };
            self.stmt(format!(
                "CREATE SEQUENCE IF NOT EXISTS {}{data_type}",
                seq.sql()
            ));
        }
    }

    /// Attaches the owned sequence to its column (after the column exists).
    fn own_sequence(&mut self, table: &str, column: &Column) {
        if let Some(seq) = self.owned_sequence(column) {
            self.owned.insert(seq.key());
            self.stmt(format!(
                "ALTER SEQUENCE {} OWNED BY {}.{}",
                seq.sql(),
                qualified(table),
                quote::ident(&column.name)
            ));
        }
    }

    fn create_tables(&mut self) {
        let to = self.to;
        for (key, table) in &to.tables {
            if self.from.tables.contains_key(key) {
                continue;
            }
            for c in &table.columns {
                self.create_owned_sequence(c);
            }
            let columns: Vec<String> = table
                .columns
                .iter()
                .map(|c| format!("    {}", column_def(c)))
                .collect();
            if columns.is_empty() {
                self.stmt(format!("CREATE TABLE {} ()", qualified(key)));
            } else {
                self.stmt(format!(
                    "CREATE TABLE {} (\n{}\n)",
                    qualified(key),
                    columns.join(",\n")
                ));
            }
            for c in &table.columns {
                self.own_sequence(key, c);
            }
        }
    }

    fn alter_table(&mut self, i: usize) {
        let plan = &self.tables[i];
        let (key, from, to) = (plan.key, plan.from, plan.to);
        let rebuilt = plan.rebuilt.clone();
        let table = qualified(key);
        let is_generated = |c: &&Column| matches!(extra(c), Extra::Generated(_));

        // Generated columns first: they may read other dropped columns.
        let mut dropped: Vec<&Column> = from
            .columns
            .iter()
            .filter(|c| {
                rebuilt.contains(&c.name.as_str()) || !to.columns.iter().any(|t| t.name == c.name)
            })
            .collect();
        dropped.sort_by_key(|c| !is_generated(c));
        for c in dropped {
            self.stmt(format!(
                "ALTER TABLE {table} DROP COLUMN {}",
                quote::ident(&c.name)
            ));
        }

        // Generated columns last: they may read other added columns.
        let mut added: Vec<&Column> = to
            .columns
            .iter()
            .filter(|c| {
                rebuilt.contains(&c.name.as_str()) || !from.columns.iter().any(|f| f.name == c.name)
            })
            .collect();
        added.sort_by_key(is_generated);
        for c in added {
            self.create_owned_sequence(c);
            self.stmt(format!("ALTER TABLE {table} ADD COLUMN {}", column_def(c)));
            self.own_sequence(key, c);
        }

        for fc in &from.columns {
            let Some(tc) = to.columns.iter().find(|c| c.name == fc.name) else {
                continue;
            };
            if fc != tc && !rebuilt.contains(&fc.name.as_str()) {
                self.alter_column(key, fc, tc);
            }
        }
    }

    fn alter_column(&mut self, key: &str, fc: &Column, tc: &Column) {
        let alter = format!(
            "ALTER TABLE {} ALTER COLUMN {}",
            qualified(key),
            quote::ident(&fc.name)
        );
        let (fx, tx) = (extra(fc), extra(tc));
        let type_changed = fc.data_type != tc.data_type;

        match (fx, tx) {
            (Extra::Identity(_), Extra::Identity(_)) => {}
            (Extra::Identity(_), _) => self.stmt(format!("{alter} DROP IDENTITY")),
            (Extra::Generated(_), Extra::Generated(_)) => {}
            (Extra::Generated(_), _) => self.stmt(format!("{alter} DROP EXPRESSION")),
            _ => {}
        }
        if fx != tx && (fx == Extra::Unknown || tx == Extra::Unknown) {
            self.manual(&format!(
                "column {key}.{} changes from `{}` to `{}`, which sluice does not render",
                fc.name,
                fc.extra.as_deref().unwrap_or("none"),
                tc.extra.as_deref().unwrap_or("none")
            ));
        }
        // The old default may not cast to the new type: it is set again afterwards.
        if fc.default.is_some() && (fc.default != tc.default || type_changed) {
            self.stmt(format!("{alter} DROP DEFAULT"));
        }
        if type_changed {
            // PostgreSQL recomputes a generated column and refuses USING for it.
            if matches!(tx, Extra::Generated(_)) {
                self.stmt(format!("{alter} TYPE {}", tc.data_type));
            } else {
                self.stmt(format!(
                    "{alter} TYPE {} USING {}::{}",
                    tc.data_type,
                    quote::ident(&fc.name),
                    tc.data_type
                ));
            }
        }
        if fc.nullable != tc.nullable {
            let action = if tc.nullable { "DROP" } else { "SET" };
            self.stmt(format!("{alter} {action} NOT NULL"));
        }
        if let Some(default) = &tc.default {
            if fc.default.as_ref() != Some(default) || type_changed {
                self.create_owned_sequence(tc);
                self.stmt(format!("{alter} SET DEFAULT {default}"));
                self.own_sequence(key, tc);
            }
        }
        match (fx, tx) {
            (Extra::Identity(a), Extra::Identity(b)) if a != b => {
                self.stmt(format!("{alter} SET GENERATED {}", b.to_uppercase()));
            }
            (Extra::Identity(_), _) => {}
            (_, Extra::Identity(kind)) => {
                self.stmt(format!("{alter} ADD {}", identity_sql(kind)));
            }
            _ => {}
        }
    }

    fn add_constraints(&mut self, foreign_keys: bool) {
        let mut sql: Vec<(u8, String)> = Vec::new();
        for (key, table) in &self.to.tables {
            let plan = self.tables.iter().find(|p| p.key == key);
            for (name, c) in &table.constraints {
                // A new table (no plan) gets all of its constraints.
                let created = match plan {
                    Some(p) => p.constraint_created(name, c),
                    None => true,
                };
                if !created || (c.kind == ConstraintKind::ForeignKey) != foreign_keys {
                    continue;
                }
                // Keys first: other constraints of the script may rely on them.
                let rank = match c.kind {
                    ConstraintKind::PrimaryKey => 0,
                    ConstraintKind::Unique => 1,
                    _ => 2,
                };
                let add = format!(
                    "ALTER TABLE {} ADD CONSTRAINT {}",
                    qualified(key),
                    quote::ident(name)
                );
                match key_index_with_options(c, table.indexes.get(name)) {
                    Some(index) => {
                        // The constraint's definition does not carry its index's storage
                        // options: build the index as it was, then make it the constraint's.
                        let kind = if c.kind == ConstraintKind::PrimaryKey {
                            "PRIMARY KEY"
                        } else {
                            "UNIQUE"
                        };
                        let deferrable = c
                            .definition
                            .find(" DEFERRABLE")
                            .map_or("", |at| &c.definition[at..]);
                        sql.push((rank, index.definition.clone()));
                        sql.push((
                            rank,
                            format!(
                                "{add} {kind} USING INDEX {}{deferrable}",
                                quote::ident(name)
                            ),
                        ));
                    }
                    None => sql.push((rank, format!("{add} {}", c.definition))),
                }
            }
        }
        sql.sort_by_key(|(rank, _)| *rank);
        sql.into_iter().for_each(|(_, s)| self.stmt(s));
    }

    fn create_indexes(&mut self) {
        let mut sql = Vec::new();
        for (key, table) in &self.to.tables {
            let plan = self.tables.iter().find(|p| p.key == key);
            for (name, index) in &table.indexes {
                let created = match plan {
                    Some(p) => p.index_created(name, index),
                    None => true,
                };
                // A primary key, unique or exclusion constraint creates its own index.
                if created && !table.constraints.contains_key(name) {
                    sql.push(index.definition.clone());
                }
            }
        }
        sql.into_iter().for_each(|s| self.stmt(s));
    }
}

/// `keys` ordered so that a view comes after the views of the set its definition mentions; a
/// cycle (only possible through a false positive of [`mentions`]) falls back to name order.
fn dependency_order<'a>(keys: BTreeSet<&'a str>, views: &BTreeMap<String, View>) -> Vec<&'a str> {
    let mut left: Vec<&'a str> = keys.into_iter().collect();
    let mut order = Vec::with_capacity(left.len());
    while !left.is_empty() {
        let ready = left
            .iter()
            .position(|k| {
                let def = &views[*k].definition;
                !left
                    .iter()
                    .any(|o| o != k && mentions(def, &split_key(o).1))
            })
            .unwrap_or(0);
        order.push(left.remove(ready));
    }
    order
}

/// The index of a primary key or unique constraint when it has options the constraint's
/// definition does not show (`WITH (fillfactor=...)`, a tablespace).
fn key_index_with_options<'i>(c: &Constraint, index: Option<&'i Index>) -> Option<&'i Index> {
    let is_key = matches!(c.kind, ConstraintKind::PrimaryKey | ConstraintKind::Unique);
    index.filter(|i| {
        is_key && (i.definition.contains(" WITH (") || i.definition.contains(" TABLESPACE "))
    })
}

/// Whether every label of `old` is in `new`, in the same order.
fn is_subsequence(old: &[String], new: &[String]) -> bool {
    let mut rest = new.iter();
    old.iter().all(|label| rest.any(|l| l == label))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_split_back_into_their_names_and_never_collide() {
        let parts = [
            "public",
            "a",
            "a.b",
            "b.c",
            "q\"r",
            "\"",
            ".",
            "x..y",
            "日本.語",
            "t\u{1b}",
        ];
        let mut seen = std::collections::HashSet::new();
        for s in parts {
            for n in parts {
                let k = key(s, n);
                assert_eq!(split_key(&k), (s.to_string(), n.to_string()), "{k}");
                assert!(seen.insert(k.clone()), "{k} collides");
            }
        }
        assert_eq!(key("public", "users"), "public.users");
    }

    fn col(name: &str, ty: &str) -> Column {
        Column {
            name: name.into(),
            data_type: ty.into(),
            nullable: true,
            default: None,
            extra: None,
        }
    }

    fn table(columns: Vec<Column>) -> Table {
        Table {
            columns,
            ..Default::default()
        }
    }

    fn pos(sql: &str, needle: &str) -> usize {
        sql.find(needle)
            .unwrap_or_else(|| panic!("`{needle}` not in:\n{sql}"))
    }

    #[test]
    fn view_on_a_retyped_column_is_dropped_before_and_created_after() {
        let mut from = Schema::default();
        from.tables.insert(
            "public.t".into(),
            table(vec![col("id", "integer"), col("n", "integer")]),
        );
        from.views.insert(
            "public.v".into(),
            View {
                definition: "SELECT t.id,\n    t.n\n   FROM t".into(),
                materialized: false,
            },
        );
        let mut to = from.clone();
        to.tables.get_mut("public.t").unwrap().columns[1].data_type = "bigint".into();
        let sql = render_diff_sql(&from, &to);
        let drop = pos(&sql, "DROP VIEW \"public\".\"v\";\n");
        let alter = pos(
            &sql,
            "ALTER TABLE \"public\".\"t\" ALTER COLUMN \"n\" TYPE bigint USING \"n\"::bigint;\n",
        );
        let create = pos(&sql, "CREATE VIEW \"public\".\"v\" AS\nSELECT t.id,");
        assert!(drop < alter && alter < create, "{sql}");
        // Views that read neither the table nor the retyped column are left alone.
        let mut other = from.clone();
        other.views.insert(
            "public.w".into(),
            View {
                definition: "SELECT 1 AS one".into(),
                materialized: true,
            },
        );
        other.views.insert(
            "public.ids".into(),
            View {
                definition: "SELECT t.id\n   FROM t".into(),
                materialized: false,
            },
        );
        let mut other_to = other.clone();
        other_to.tables.get_mut("public.t").unwrap().columns[1].data_type = "bigint".into();
        let sql = render_diff_sql(&other, &other_to);
        assert!(sql.contains("DROP VIEW \"public\".\"v\""), "{sql}");
        assert!(!sql.contains("\"w\"") && !sql.contains("\"ids\""), "{sql}");
    }

    #[test]
    fn dependent_views_are_dropped_dependents_first_and_created_dependencies_first() {
        let mut from = Schema::default();
        from.tables
            .insert("public.t".into(), table(vec![col("a", "integer")]));
        from.views.insert(
            "public.base".into(),
            View {
                definition: "SELECT t.a FROM t".into(),
                materialized: false,
            },
        );
        from.views.insert(
            "public.abc_top".into(),
            View {
                definition: "SELECT base.a FROM base".into(),
                materialized: true,
            },
        );
        let mut to = from.clone();
        to.tables.get_mut("public.t").unwrap().columns.clear();
        to.tables
            .get_mut("public.t")
            .unwrap()
            .columns
            .push(col("b", "text"));
        to.views.get_mut("public.base").unwrap().definition = "SELECT t.b AS a FROM t".into();
        let sql = render_diff_sql(&from, &to);
        assert!(
            pos(&sql, "DROP MATERIALIZED VIEW \"public\".\"abc_top\"")
                < pos(&sql, "DROP VIEW \"public\".\"base\"")
        );
        assert!(pos(&sql, "DROP VIEW \"public\".\"base\"") < pos(&sql, "DROP COLUMN \"a\""));
        assert!(
            pos(&sql, "CREATE VIEW \"public\".\"base\"")
                < pos(&sql, "CREATE MATERIALIZED VIEW \"public\".\"abc_top\"")
        );
        assert!(pos(&sql, "ADD COLUMN \"b\" text") < pos(&sql, "CREATE VIEW"));
    }

    #[test]
    fn keys_and_foreign_keys_are_ordered() {
        let mut from = Schema::default();
        let mut parent = table(vec![col("id", "integer")]);
        parent.constraints.insert(
            "parent_pkey".into(),
            Constraint {
                kind: ConstraintKind::PrimaryKey,
                definition: "PRIMARY KEY (id)".into(),
            },
        );
        parent.indexes.insert(
            "parent_pkey".into(),
            Index {
                unique: true,
                columns: vec!["id".into()],
                definition: "CREATE UNIQUE INDEX parent_pkey ON public.parent USING btree (id)"
                    .into(),
            },
        );
        let mut child = table(vec![col("parent_id", "integer")]);
        child.constraints.insert(
            "child_parent_fk".into(),
            Constraint {
                kind: ConstraintKind::ForeignKey,
                definition: "FOREIGN KEY (parent_id) REFERENCES parent(id)".into(),
            },
        );
        from.tables.insert("public.a_child".into(), child);
        from.tables.insert("public.parent".into(), parent);
        let to = Schema::default();

        // Everything goes: one DROP TABLE, no constraint juggling needed.
        let down = render_diff_sql(&from, &to);
        assert_eq!(
            down,
            "DROP TABLE \"public\".\"a_child\", \"public\".\"parent\";\n"
        );

        // Everything comes: tables, then keys, then foreign keys; no index for the key.
        let up = render_diff_sql(&to, &from);
        let pk = pos(&up, "ADD CONSTRAINT \"parent_pkey\" PRIMARY KEY (id)");
        let fk = pos(&up, "ADD CONSTRAINT \"child_parent_fk\" FOREIGN KEY");
        assert!(
            pos(&up, "CREATE TABLE \"public\".\"parent\"") < pk && pk < fk,
            "{up}"
        );
        assert!(!up.contains("CREATE UNIQUE INDEX"), "{up}");

        // The key changes: the foreign key is dropped before it and added after.
        let mut changed = from.clone();
        let p = changed.tables.get_mut("public.parent").unwrap();
        p.constraints.get_mut("parent_pkey").unwrap().definition =
            "PRIMARY KEY (id) DEFERRABLE".into();
        let c = changed.tables.get_mut("public.a_child").unwrap();
        c.constraints.get_mut("child_parent_fk").unwrap().definition =
            "FOREIGN KEY (parent_id) REFERENCES parent(id) ON DELETE CASCADE".into();
        let sql = render_diff_sql(&from, &changed);
        let drop_fk = pos(&sql, "DROP CONSTRAINT \"child_parent_fk\"");
        let drop_pk = pos(&sql, "DROP CONSTRAINT \"parent_pkey\"");
        let add_pk = pos(&sql, "ADD CONSTRAINT \"parent_pkey\"");
        let add_fk = pos(&sql, "ADD CONSTRAINT \"child_parent_fk\"");
        assert!(
            drop_fk < drop_pk && drop_pk < add_pk && add_pk < add_fk,
            "{sql}"
        );
        assert!(!sql.contains("DROP INDEX"), "{sql}");
    }

    #[test]
    fn enums_are_created_before_and_dropped_after_their_tables() {
        let mut with = Schema::default();
        with.enums
            .insert("public.mood".into(), vec!["sad".into(), "happy".into()]);
        with.tables
            .insert("public.t".into(), table(vec![col("m", "mood")]));
        let up = render_diff_sql(&Schema::default(), &with);
        assert!(
            pos(
                &up,
                "CREATE TYPE \"public\".\"mood\" AS ENUM ('sad', 'happy')"
            ) < pos(&up, "CREATE TABLE")
        );
        let down = render_diff_sql(&with, &Schema::default());
        assert!(pos(&down, "DROP TABLE") < pos(&down, "DROP TYPE \"public\".\"mood\""));
    }

    #[test]
    fn enum_values_are_added_in_place_or_left_to_a_human() {
        let labels = |l: &[&str]| l.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let mut from = Schema::default();
        from.enums.insert("public.e".into(), labels(&["b", "d"]));
        let mut to = Schema::default();
        to.enums
            .insert("public.e".into(), labels(&["a", "b", "c", "d", "e"]));
        assert_eq!(
            render_diff_sql(&from, &to),
            "ALTER TYPE \"public\".\"e\" ADD VALUE 'a' BEFORE 'b';\n\
             ALTER TYPE \"public\".\"e\" ADD VALUE 'c' AFTER 'b';\n\
             ALTER TYPE \"public\".\"e\" ADD VALUE 'e' AFTER 'd';\n"
        );
        let back = render_diff_sql(&to, &from);
        assert!(
            back.starts_with("-- MANUAL: cannot change enum public.e"),
            "{back}"
        );
        assert!(!back.contains(";\n"), "{back}");
        assert!(back.lines().all(|l| !l.starts_with("-- sluice:")), "{back}");

        // A new label used by the same script: the script cannot run in one transaction.
        to.tables.insert(
            "public.t".into(),
            table(vec![Column {
                default: Some("'c'::e".into()),
                ..col("x", "e")
            }]),
        );
        let sql = render_diff_sql(&from, &to);
        assert!(
            sql.starts_with("-- sluice:transaction per-statement\n"),
            "{sql}"
        );
    }

    #[test]
    fn serial_columns_bring_their_sequence() {
        let mut to = Schema::default();
        to.tables.insert(
            "app.t".into(),
            table(vec![Column {
                nullable: false,
                default: Some("nextval('app.\"T_id_seq\"'::regclass)".into()),
                ..col("id", "integer")
            }]),
        );
        let sql = render_diff_sql(&Schema::default(), &to);
        assert_eq!(
            sql,
            "CREATE SCHEMA IF NOT EXISTS \"app\";\n\
             CREATE SEQUENCE IF NOT EXISTS \"app\".\"T_id_seq\" AS integer;\n\
             CREATE TABLE \"app\".\"t\" (\n    \"id\" integer NOT NULL DEFAULT nextval('app.\"T_id_seq\"'::regclass)\n);\n\
             ALTER SEQUENCE \"app\".\"T_id_seq\" OWNED BY \"app\".\"t\".\"id\";\n"
        );
        // A free-standing sequence is created on its own, not as part of the column.
        let mut standalone = to.clone();
        standalone.sequences.insert(
            "app.T_id_seq".into(),
            Sequence {
                data_type: "bigint".into(),
                increment: 2,
            },
        );
        let sql = render_diff_sql(&Schema::default(), &standalone);
        assert!(sql.contains("CREATE SEQUENCE \"app\".\"T_id_seq\" AS bigint INCREMENT BY 2;\n"));
        assert!(!sql.contains("OWNED BY"), "{sql}");
    }

    #[test]
    fn identity_and_generated_columns() {
        let mut from = Schema::default();
        from.tables.insert(
            "public.t".into(),
            table(vec![
                Column {
                    nullable: false,
                    ..col("id", "bigint")
                },
                col("a", "integer"),
                col("g", "integer"),
            ]),
        );
        let mut to = from.clone();
        let t = to.tables.get_mut("public.t").unwrap();
        t.columns[0].extra = Some("identity always".into());
        t.columns[2].extra = Some("generated always as ((a * 2)) stored".into());
        let sql = render_diff_sql(&from, &to);
        assert_eq!(
            sql,
            "ALTER TABLE \"public\".\"t\" DROP COLUMN \"g\";\n\
             ALTER TABLE \"public\".\"t\" ADD COLUMN \"g\" integer GENERATED ALWAYS AS ((a * 2)) STORED;\n\
             ALTER TABLE \"public\".\"t\" ALTER COLUMN \"id\" ADD GENERATED ALWAYS AS IDENTITY;\n"
        );
        let back = render_diff_sql(&to, &from);
        assert_eq!(
            back,
            "ALTER TABLE \"public\".\"t\" ALTER COLUMN \"id\" DROP IDENTITY;\n\
             ALTER TABLE \"public\".\"t\" ALTER COLUMN \"g\" DROP EXPRESSION;\n"
        );
    }

    #[test]
    fn names_and_mentions() {
        assert_eq!(
            nextval_sequence("nextval('s.\"we\"\"ird.x\"'::regclass)"),
            Some(SeqRef {
                schema: Some("s".into()),
                name: "we\"ird.x".into()
            })
        );
        assert_eq!(
            nextval_sequence("nextval('it''s'::regclass)").map(|s| s.key()),
            Some("public.it's".into())
        );
        assert_eq!(nextval_sequence("now()"), None);
        assert!(mentions("SELECT users.id FROM users", "users"));
        assert!(mentions("SELECT x FROM app.\"Users\"", "Users"));
        assert!(!mentions("SELECT x FROM users_archive", "users"));
        assert!(!mentions("SELECT x FROM app.ausers", "users"));
    }
}
