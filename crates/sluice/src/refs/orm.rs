//! What a hit is: the ORM declarations, schema files and SQL around it. Only files with a hit are
//! read again and parsed here, line by line with a few patterns per kind (no language parser):
//! the *scopes* (a model class, a `table!` block, a `create_table` block ...) with the table they
//! map to, and the *declarations* (a line that names a table, or declares a column of one).
//!
//! A hit is "certain" on a declaration of the changed table or column, or in SQL naming the table;
//! "probable" as a bare identifier in code; and no reference at all on a declaration of another
//! table's column (the ORM says so) or, for the weak spellings (`user` for `users`, Django's
//! model name), anywhere but a declaration.

use regex::Regex;
use std::collections::HashMap;
use std::path::Path;
use std::sync::LazyLock;

pub const CERTAIN: &str = "certain";
pub const PROBABLE: &str = "probable";

/// Lowercase without underscores: `legacy_code`, `legacyCode` and `LEGACY_CODE` compare equal.
pub fn norm(s: &str) -> String {
    s.chars()
        .filter(|c| *c != '_')
        .flat_map(char::to_lowercase)
        .collect()
}

/// `LineItem` / `lineItem` → `line_item`.
pub fn snake(name: &str) -> String {
    let mut out = String::new();
    let chars: Vec<char> = name.chars().collect();
    for (i, c) in chars.iter().enumerate() {
        if c.is_uppercase() {
            let prev_lower =
                i > 0 && (chars[i - 1].is_lowercase() || chars[i - 1].is_ascii_digit());
            let next_lower = chars.get(i + 1).is_some_and(|n| n.is_lowercase());
            if i > 0 && (prev_lower || (next_lower && chars[i - 1].is_uppercase())) {
                out.push('_');
            }
            out.extend(c.to_lowercase());
        } else {
            out.push(*c);
        }
    }
    out
}

/// Irregular English nouns ORMs meet in table names (singular, plural).
const IRREGULAR: &[(&str, &str)] = &[
    ("person", "people"),
    ("man", "men"),
    ("woman", "women"),
    ("child", "children"),
    ("mouse", "mice"),
    ("goose", "geese"),
    ("datum", "data"),
    ("index", "indices"),
];

/// The common English rules ActiveRecord and GORM pluralise model names with, on the last word
/// of a snake_case name: `line_item` → `line_items`, `category` → `categories`, `box` → `boxes`.
pub fn plural(name: &str) -> String {
    let (head, last) = split_last(name);
    let lower = last.to_lowercase();
    let p = if let Some((_, p)) = IRREGULAR.iter().find(|(s, _)| *s == lower) {
        p.to_string()
    } else if lower.ends_with('y')
        && !lower.ends_with("ay")
        && !lower.ends_with("ey")
        && !lower.ends_with("oy")
        && !lower.ends_with("uy")
    {
        format!("{}ies", &last[..last.len() - 1])
    } else if ["s", "x", "z", "ch", "sh"]
        .iter()
        .any(|e| lower.ends_with(e))
    {
        format!("{last}es")
    } else {
        format!("{last}s")
    };
    head.to_string() + &p
}

/// The inverse of [`plural`]: `line_items` → `line_item`, `categories` → `category`; a word that
/// does not look plural (`status`, `address`, `audit_trail`) stays.
pub fn singular(name: &str) -> String {
    let (head, last) = split_last(name);
    let lower = last.to_lowercase();
    let s = if let Some((s, _)) = IRREGULAR.iter().find(|(_, p)| *p == lower) {
        s.to_string()
    } else if lower.ends_with("ies") && lower.len() > 4 {
        format!("{}y", &last[..last.len() - 3])
    } else if ["sses", "uses", "xes", "zes", "ches", "shes"]
        .iter()
        .any(|e| lower.ends_with(e))
    {
        last[..last.len() - 2].to_string()
    } else if lower.ends_with('s')
        && !["ss", "us", "is", "os"].iter().any(|e| lower.ends_with(e))
        && lower.len() > 2
    {
        last[..last.len() - 1].to_string()
    } else {
        last.to_string()
    };
    head.to_string() + &s
}

fn split_last(name: &str) -> (&str, &str) {
    match name.rfind('_') {
        Some(i) => (&name[..=i], &name[i + 1..]),
        None => ("", name),
    }
}

/// A block that maps to a table (a model class, a `table!` block, a `create_table` block): a
/// bare identifier in it is that ORM's.
struct Scope {
    start: usize,
    end: usize,
    kind: &'static str,
}

/// A line that names tables (a model's header, `__tablename__`, `ref('x')`) or declares columns
/// of a table (`Column(...)`, `t.string "c"`, a `table!` row) — (table, column).
#[derive(Default)]
struct Decl {
    tables: Vec<String>,
    columns: Vec<(String, String)>,
    kind: &'static str,
}

/// One file with hits, parsed.
pub struct FileCtx {
    lines: Vec<String>,
    scopes: Vec<Scope>,
    decls: HashMap<usize, Decl>,
    /// The whole file is SQL (a `.sql` file, a dbt model, a `.sqlx` query), of this kind.
    sql_file: Option<&'static str>,
    /// Spans that are SQL inside code (sqlx's `query!`).
    sql_spans: Vec<(usize, usize, &'static str)>,
}

macro_rules! re {
    ($name:ident, $pat:expr) => {
        static $name: LazyLock<Regex> =
            LazyLock::new(|| Regex::new($pat).expect("a valid pattern"));
    };
}

re!(
    SQL_VERB,
    r"\b(SELECT|INSERT\s+INTO|UPDATE|DELETE\s+FROM|FROM|JOIN|WHERE|ALTER\s+TABLE|CREATE\s+(TABLE|VIEW|INDEX)|DROP\s+TABLE|RETURNING)\b|\b(select\s.*\bfrom|insert\s+into|delete\s+from|update\s+\w+\s+set)\b"
);
// diesel
re!(DIESEL_HEADER, r"^\s*(?:\w+\.)?(\w+)\s*(?:\([^)]*\))?\s*\{");
re!(DIESEL_COLUMN, r"^\s*(\w+)\s*->");
re!(DIESEL_TABLE_NAME, r#"table_name\s*=\s*"?(?:\w+::)*(\w+)"?"#);
re!(RUST_FIELD, r"^\s*(?:pub(?:\([^)]*\))?\s+)?(\w+)\s*:");
re!(SQLX_MACRO, r"\bquery(?:_as|_scalar)?(?:_unchecked)?!\s*\(");
// Python
re!(PY_CLASS, r"^(\s*)class\s+(\w+)\s*(?:\(([^)]*)\))?\s*:");
re!(PY_TABLENAME, r#"__tablename__\s*=\s*["'](\w+)["']"#);
re!(PY_DB_TABLE, r#"db_table\s*=\s*["'](?:\w+\.)?(\w+)["']"#);
re!(
    PY_COLUMN,
    r"^\s*(\w+)\s*(?::[^=]*)?=\s*(?:[\w.]+\.)?(Column|mapped_column|\w*Field|ForeignKey|OneToOneField|ManyToManyField)\s*\("
);
re!(
    PY_COLUMN_NAME,
    r#"^\s*\w+\s*(?::[^=]*)?=\s*(?:[\w.]+\.)?(?:Column|mapped_column)\s*\(\s*["'](\w+)["']"#
);
re!(PY_DB_COLUMN, r#"db_column\s*=\s*["'](\w+)["']"#);
re!(PY_FK_TABLE, r#"ForeignKey\(\s*["'](\w+)\.\w+["']"#);
re!(
    DJ_RELATION,
    r#"(?:ForeignKey|OneToOneField|ManyToManyField)\(\s*["']?(\w+)["']?\s*[,)]"#
);
re!(DJ_OP, r"\bmigrations\.(\w+)\s*\(");
re!(DJ_MODEL_NAME, r#"\bmodel_name\s*=\s*["'](\w+)["']"#);
re!(DJ_NAME, r#"\bname\s*=\s*["'](\w+)["']"#);
re!(
    DJ_FIELD_NAME,
    r#"\b(?:name|old_name|new_name)\s*=\s*["'](\w+)["']"#
);
re!(DJ_FIELD_TUPLE, r#"\(\s*["'](\w+)["']\s*,\s*models\."#);
// Ruby
re!(RB_CREATE_TABLE, r#"^\s*create_table\s*\(?\s*[:"'](\w+)"#);
re!(RB_T_COLUMN, r#"^\s*t\.\w+\s*\(?\s*[:"'](\w+)"#);
re!(
    RB_HELPER,
    r#"^\s*(rename_column|remove_column|add_column|change_column|change_column_null|change_column_default|add_index|remove_index|rename_table|drop_table|add_foreign_key|remove_foreign_key|add_reference|remove_reference)\s*\(?\s*[:"'](\w+)["']?(?:\s*,\s*\[?\s*[:"'](\w+))?"#
);
re!(
    RB_MODEL,
    r"^(\s*)class\s+(\w+)\s*<\s*(?:ActiveRecord::Base|\w*Record)\s*$"
);
re!(RB_TABLE_NAME, r#"self\.table_name\s*=\s*["'](\w+)["']"#);
re!(
    RB_SYMBOLS_LINE,
    r"^\s*(validates\w*|attribute|alias_attribute|enum|serialize|store_accessor|attr_readonly|normalizes)\b"
);
re!(RB_SYMBOL, r"[:]([a-z_]\w*)");
re!(
    RB_ASSOC,
    r"^\s*(has_many|has_one|belongs_to|has_and_belongs_to_many)\s+:(\w+)"
);
re!(RB_FOREIGN_KEY, r#"\bforeign_key:\s*[:"']?(\w+)"#);
// Prisma
re!(PRISMA_MODEL, r"^\s*model\s+(\w+)\s*\{");
re!(PRISMA_MAP_TABLE, r#"@@map\(\s*(?:name:\s*)?"(\w+)""#);
re!(PRISMA_FIELD, r"^\s*(\w+)\s+(\w+)(\[\])?\??");
re!(PRISMA_MAP, r#"@map\(\s*(?:name:\s*)?"(\w+)""#);
// TypeORM / Sequelize
re!(
    TS_ENTITY,
    r#"@(Entity|Table)\s*\(\s*(?:["'](\w+)["']|\{[^}]*\b(?:name|tableName)\s*:\s*["'](\w+)["'])?"#
);
re!(TS_CLASS, r"\bclass\s+(\w+)");
re!(
    TS_COLUMN_DECORATOR,
    r#"@\w*Column\s*\(\s*(?:["'](\w+)["']|\{[^}]*\b(?:name|field)\s*:\s*["'](\w+)["'])?"#
);
re!(
    TS_PROPERTY,
    r"^\s*(?:(?:readonly|public|private|protected|declare)\s+)*(\w+)[?!]?\s*:"
);
re!(
    SEQ_DEFINE,
    r#"(?:\b(\w+)\.init\s*\(|\bdefine\s*\(\s*["'](\w+)["'])"#
);
re!(SEQ_TABLE_NAME, r#"\btableName\s*:\s*["'](\w+)["']"#);
re!(
    SEQ_KEY,
    r"^\s*(\w+)\s*:\s*(\{|DataTypes\b|Sequelize\.|[A-Z]+\b)"
);
re!(SEQ_FIELD, r#"\bfield\s*:\s*["'](\w+)["']"#);
// GORM
re!(
    GO_TABLE_NAME,
    r#"func\s*\(\s*(?:\w+\s+)?\*?(\w+)\s*\)\s*TableName\s*\(\s*\)\s*string\s*\{\s*return\s*"(\w+)""#
);
re!(GO_STRUCT, r"^type\s+(\w+)\s+struct\s*\{");
re!(GO_FIELD, r"^\s*(\w+)\s+[\w.*\[\]]+");
re!(GO_COLUMN_TAG, r#"gorm:"[^"]*\bcolumn:(\w+)"#);
// jOOQ
re!(
    JOOQ_CONSTANT,
    r"\bpublic\s+static\s+final\s+(\w+)\s+(\w+)\s*="
);
re!(
    JOOQ_FIELD,
    r#"TableField<[^>]*>\s+(\w+)\s*=\s*createField\(\s*DSL\.name\(\s*"(\w+)""#
);
// dbt
re!(DBT_REF, r#"\bref\(\s*["'](\w+)["']\s*\)"#);
re!(
    DBT_SOURCE,
    r#"\bsource\(\s*["']\w+["']\s*,\s*["'](\w+)["']\s*\)"#
);
re!(YAML_NAME, r#"^(\s*)-\s*name:\s*["']?(\w+)["']?\s*$"#);
re!(YAML_KEY, r"^(\s*)(\w+):\s*$");

impl FileCtx {
    pub fn parse(path: &Path, text: &str) -> FileCtx {
        let mut ctx = FileCtx {
            lines: text.lines().map(str::to_string).collect(),
            scopes: Vec::new(),
            decls: HashMap::new(),
            sql_file: None,
            sql_spans: Vec::new(),
        };
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .unwrap_or("")
            .to_ascii_lowercase();
        let in_dir = |d: &str| path.components().any(|c| c.as_os_str() == d);
        match ext.as_str() {
            "rs" => ctx.rust(),
            "py" => ctx.python(path),
            "rb" => ctx.ruby(path),
            "prisma" => ctx.prisma(),
            "ts" | "tsx" | "js" | "jsx" | "mjs" | "cjs" => ctx.typescript(),
            "go" if text.contains("gorm") => ctx.gorm(text),
            "java" | "kt" => ctx.jooq(),
            "sql" => {
                let dbt = text.contains("{{");
                ctx.sql_file = Some(if dbt { "dbt model" } else { "SQL file" });
                if dbt {
                    ctx.dbt_refs();
                }
            }
            "yml" | "yaml" => ctx.dbt_yaml(),
            "json" if in_dir(".sqlx") => ctx.sql_file = Some("sqlx offline query"),
            _ => {}
        }
        ctx
    }

    fn decl(&mut self, line: usize, kind: &'static str) -> &mut Decl {
        let d = self.decls.entry(line).or_default();
        if d.kind.is_empty() {
            d.kind = kind;
        }
        d
    }

    fn scope_at(&self, line: usize) -> Option<&Scope> {
        // The innermost: the latest start that still contains the line.
        self.scopes
            .iter()
            .filter(|s| s.start <= line && line <= s.end)
            .max_by_key(|s| s.start)
    }

    /// The line where the bracket opened on (or after) `start` closes; counts outside `"…"`.
    fn block_end(&self, start: usize, open: char, close: char) -> usize {
        let mut depth = 0i64;
        let mut opened = false;
        for (i, l) in self.lines.iter().enumerate().skip(start) {
            let mut quoted = false;
            let mut prev = ' ';
            for c in l.chars() {
                if c == '"' && prev != '\\' {
                    quoted = !quoted;
                } else if !quoted && c == open {
                    depth += 1;
                    opened = true;
                } else if !quoted && c == close {
                    depth -= 1;
                }
                prev = c;
            }
            if opened && depth <= 0 {
                return i;
            }
        }
        self.lines.len().saturating_sub(1)
    }

    /// The last line of an indented block (Python's class body, Ruby's `… end`).
    fn indent_end(&self, start: usize) -> usize {
        let indent = |l: &str| l.len() - l.trim_start().len();
        let base = indent(&self.lines[start]);
        let mut end = start;
        for (i, l) in self.lines.iter().enumerate().skip(start + 1) {
            if l.trim().is_empty() {
                continue;
            }
            if indent(l) <= base {
                // Ruby closes with `end` at the opening's indentation: part of the block.
                if l.trim() == "end" {
                    end = i;
                }
                break;
            }
            end = i;
        }
        end
    }

    fn rust(&mut self) {
        for i in 0..self.lines.len() {
            let l = self.lines[i].clone();
            if l.contains("table!") {
                let end = self.block_end(i, '{', '}');
                let header = (i..=end.min(i + 3)).find_map(|h| {
                    let text = if h == i {
                        l.split("table!")
                            .nth(1)
                            .unwrap_or("")
                            .trim_start_matches([' ', '{'])
                    } else {
                        self.lines[h].as_str()
                    };
                    DIESEL_HEADER.captures(text).map(|c| (h, c[1].to_string()))
                });
                if let Some((h, table)) = header {
                    self.decl(h, "diesel table!").tables.push(table.clone());
                    for r in h + 1..=end {
                        if let Some(c) = DIESEL_COLUMN.captures(&self.lines[r].clone()) {
                            self.decl(r, "diesel table!")
                                .columns
                                .push((table.clone(), c[1].to_string()));
                        }
                    }
                    self.scopes.push(Scope {
                        start: i,
                        end,
                        kind: "diesel table!",
                    });
                }
            } else if l.trim_start().starts_with("#[") && (l.contains("table_name")) {
                let Some(c) = DIESEL_TABLE_NAME.captures(&l) else {
                    continue;
                };
                let table = c[1].to_string();
                self.decl(i, "diesel model").tables.push(table.clone());
                let Some(s) =
                    (i..self.lines.len().min(i + 8)).find(|&s| self.lines[s].contains("struct "))
                else {
                    continue;
                };
                let end = self.block_end(s, '{', '}');
                for r in s + 1..end {
                    if let Some(c) = RUST_FIELD.captures(&self.lines[r].clone()) {
                        self.decl(r, "diesel model")
                            .columns
                            .push((table.clone(), c[1].to_string()));
                    }
                }
                self.scopes.push(Scope {
                    start: i,
                    end,
                    kind: "diesel model",
                });
            } else if SQLX_MACRO.is_match(&l) {
                let end = self.block_end(i, '(', ')');
                self.sql_spans.push((i, end, "sqlx query!"));
            }
        }
    }

    fn python(&mut self, path: &Path) {
        let dirs: Vec<String> = path
            .parent()
            .map(|p| {
                p.components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        let file = path.file_name().and_then(|f| f.to_str()).unwrap_or("");
        // Django names a model's table `<app>_<model>`: the app is the directory of models.py
        // (or of the models/ package, or of the migrations/ package).
        let app = match dirs.last().map(String::as_str) {
            Some("models") | Some("migrations") => dirs.iter().rev().nth(1).cloned(),
            _ => dirs.last().cloned(),
        }
        .unwrap_or_default();
        if dirs.last().map(String::as_str) == Some("migrations") {
            return self.django_migration(&app);
        }
        let django_file = file == "models.py" || dirs.last().map(String::as_str) == Some("models");
        for i in 0..self.lines.len() {
            let Some(c) = PY_CLASS.captures(&self.lines[i]) else {
                continue;
            };
            let (class, bases) = (
                c[2].to_string(),
                c.get(3).map_or("", |b| b.as_str()).to_string(),
            );
            let end = self.indent_end(i);
            let mut found: Option<(String, &'static str)> = None;
            for b in i + 1..=end {
                let l = &self.lines[b];
                if let Some(t) = PY_TABLENAME.captures(l) {
                    found = Some((t[1].to_string(), "SQLAlchemy model"));
                } else if let Some(t) = PY_DB_TABLE.captures(l) {
                    found = Some((t[1].to_string(), "Django model"));
                } else {
                    continue;
                }
                let (t, k) = found.clone().unwrap();
                self.decl(b, k).tables.push(t);
                break;
            }
            if found.is_none() && django_file && bases.contains("Model") && !app.is_empty() {
                found = Some((format!("{app}_{}", class.to_lowercase()), "Django model"));
            }
            let Some((table, kind)) = found else {
                continue;
            };
            self.decl(i, kind).tables.push(table.clone());
            for b in i + 1..=end {
                let l = self.lines[b].clone();
                if let Some(c) = PY_COLUMN.captures(&l) {
                    // Django stores a ForeignKey/OneToOneField `coupon` in the column `coupon_id`.
                    let relation_id =
                        kind == "Django model" && matches!(&c[2], "ForeignKey" | "OneToOneField");
                    let column = PY_DB_COLUMN
                        .captures(&l)
                        .or_else(|| PY_COLUMN_NAME.captures(&l))
                        .map(|n| n[1].to_string())
                        .unwrap_or_else(|| match relation_id {
                            true => format!("{}_id", &c[1]),
                            false => c[1].to_string(),
                        });
                    let d = self.decl(b, kind);
                    d.columns.push((table.clone(), column));
                    if let Some(fk) = PY_FK_TABLE.captures(&l) {
                        d.tables.push(fk[1].to_string());
                    } else if let Some(m) =
                        DJ_RELATION.captures(&l).filter(|_| kind == "Django model")
                    {
                        // A relation to another model of the app names its table.
                        d.tables.push(format!("{app}_{}", m[1].to_lowercase()));
                    }
                }
            }
            self.scopes.push(Scope {
                start: i,
                end,
                kind,
            });
        }
    }

    fn django_migration(&mut self, app: &str) {
        const KIND: &str = "Django migration";
        for i in 0..self.lines.len() {
            let Some(op) = DJ_OP.captures(&self.lines[i]).map(|c| c[1].to_string()) else {
                continue;
            };
            let end = self.block_end(i, '(', ')');
            let model_op = op.ends_with("Model") || op == "AlterModelTable";
            let model_re: &Regex = if model_op { &DJ_NAME } else { &DJ_MODEL_NAME };
            let Some((m, model)) = (i..=end).find_map(|m| {
                model_re
                    .captures(&self.lines[m])
                    .map(|c| (m, c[1].to_lowercase()))
            }) else {
                continue;
            };
            let table = format!("{app}_{model}");
            self.decl(m, KIND).tables.push(table.clone());
            for r in i..=end {
                let l = self.lines[r].clone();
                let columns: Vec<String> = if model_op {
                    DJ_FIELD_TUPLE
                        .captures_iter(&l)
                        .map(|c| c[1].to_string())
                        .collect()
                } else {
                    // `name=`, `old_name=`, `new_name=` (`\bname` never matches `model_name`).
                    DJ_FIELD_NAME
                        .captures_iter(&l)
                        .map(|c| c[1].to_string())
                        .collect()
                };
                for column in columns {
                    self.decl(r, KIND).columns.push((table.clone(), column));
                }
            }
            self.scopes.push(Scope {
                start: i,
                end,
                kind: KIND,
            });
        }
    }

    fn ruby(&mut self, path: &Path) {
        let schema = path.file_name().is_some_and(|f| f == "schema.rb");
        let kind = if schema {
            "ActiveRecord schema"
        } else {
            "ActiveRecord migration"
        };
        for i in 0..self.lines.len() {
            let l = self.lines[i].clone();
            if let Some(c) = RB_CREATE_TABLE.captures(&l) {
                let table = c[1].to_string();
                let end = self.indent_end(i);
                self.decl(i, kind).tables.push(table.clone());
                for r in i + 1..=end {
                    if let Some(c) = RB_T_COLUMN.captures(&self.lines[r].clone()) {
                        self.decl(r, kind)
                            .columns
                            .push((table.clone(), c[1].to_string()));
                    }
                }
                self.scopes.push(Scope {
                    start: i,
                    end,
                    kind,
                });
            } else if let Some(c) = RB_HELPER.captures(&l) {
                let (helper, table) = (c[1].to_string(), c[2].to_string());
                let second = c.get(3).map(|s| s.as_str().to_string());
                let d = self.decl(i, kind);
                d.tables.push(table.clone());
                match (helper.as_str(), second) {
                    ("add_foreign_key" | "remove_foreign_key" | "rename_table", Some(t)) => {
                        d.tables.push(t)
                    }
                    (_, Some(col)) => d.columns.push((table, col)),
                    _ => {}
                }
            } else if let Some(c) = RB_MODEL.captures(&l) {
                let class = c[2].to_string();
                let end = self.indent_end(i);
                const KIND: &str = "ActiveRecord model";
                let table = (i..=end).find_map(|b| {
                    RB_TABLE_NAME
                        .captures(&self.lines[b])
                        .map(|t| (b, t[1].to_string()))
                });
                let table = match table {
                    Some((b, t)) => {
                        self.decl(b, KIND).tables.push(t.clone());
                        t
                    }
                    None => plural(&snake(&class)),
                };
                self.decl(i, KIND).tables.push(table.clone());
                for b in i + 1..=end {
                    let l = self.lines[b].clone();
                    if RB_SYMBOLS_LINE.is_match(&l) {
                        for s in RB_SYMBOL.captures_iter(&l) {
                            self.decl(b, KIND)
                                .columns
                                .push((table.clone(), s[1].to_string()));
                        }
                    }
                    // `belongs_to :coupon` is the column `coupon_id` (or its `foreign_key:`).
                    if let Some(a) = RB_ASSOC.captures(&l).filter(|a| &a[1] == "belongs_to") {
                        let column = RB_FOREIGN_KEY
                            .captures(&l)
                            .map_or(format!("{}_id", &a[2]), |k| k[1].to_string());
                        self.decl(b, KIND).columns.push((table.clone(), column));
                    }
                }
                self.scopes.push(Scope {
                    start: i,
                    end,
                    kind: KIND,
                });
            }
            if let Some(c) = RB_ASSOC.captures(&l) {
                // has_many :line_items names the table; belongs_to :user its singular.
                let name = c[2].to_string();
                let table = match &c[1] {
                    "has_many" | "has_and_belongs_to_many" => name,
                    _ => plural(&name),
                };
                self.decl(i, "ActiveRecord model").tables.push(table);
            }
        }
    }

    fn prisma(&mut self) {
        const KIND: &str = "Prisma schema";
        // Model name → table, for the relation fields' types.
        let mut models: Vec<(usize, usize, String, String)> = Vec::new();
        for i in 0..self.lines.len() {
            if let Some(c) = PRISMA_MODEL.captures(&self.lines[i]) {
                let end = self.block_end(i, '{', '}');
                let model = c[1].to_string();
                let table = (i..=end)
                    .find_map(|b| {
                        PRISMA_MAP_TABLE
                            .captures(&self.lines[b])
                            .map(|t| t[1].to_string())
                    })
                    .unwrap_or_else(|| model.clone());
                models.push((i, end, model, table));
            }
        }
        for (start, end, _, table) in &models {
            self.decl(*start, KIND).tables.push(table.clone());
            for b in start + 1..*end {
                let l = self.lines[b].clone();
                if l.trim_start().starts_with("@@") {
                    if PRISMA_MAP_TABLE.is_match(&l) {
                        self.decl(b, KIND).tables.push(table.clone());
                    }
                    continue;
                }
                let Some(c) = PRISMA_FIELD.captures(&l) else {
                    continue;
                };
                let ty = &c[2];
                if let Some((_, _, _, other)) = models.iter().find(|m| m.2 == ty) {
                    // A relation field: it names the other model's table.
                    self.decl(b, KIND).tables.push(other.clone());
                    continue;
                }
                let column = PRISMA_MAP
                    .captures(&l)
                    .map_or(c[1].to_string(), |m| m[1].to_string());
                self.decl(b, KIND).columns.push((table.clone(), column));
            }
            self.scopes.push(Scope {
                start: *start,
                end: *end,
                kind: KIND,
            });
        }
    }

    fn typescript(&mut self) {
        for i in 0..self.lines.len() {
            let l = self.lines[i].clone();
            if let Some(c) = TS_ENTITY.captures(&l) {
                let kind = if &c[1] == "Entity" {
                    "TypeORM entity"
                } else {
                    "Sequelize model"
                };
                let named = c.get(2).or(c.get(3)).map(|m| m.as_str().to_string());
                let Some((k, class)) = (i..self.lines.len().min(i + 5)).find_map(|k| {
                    TS_CLASS
                        .captures(&self.lines[k])
                        .map(|c| (k, c[1].to_string()))
                }) else {
                    continue;
                };
                // TypeORM names a table after its class in snake_case, Sequelize in the plural.
                let table = named.unwrap_or_else(|| match kind {
                    "TypeORM entity" => snake(&class),
                    _ => plural(&class),
                });
                let end = self.block_end(k, '{', '}');
                self.decl(i, kind).tables.push(table.clone());
                self.decl(k, kind).tables.push(table.clone());
                let mut pending: Option<(usize, Option<String>)> = None;
                for b in k + 1..end {
                    let l = self.lines[b].clone();
                    if let Some(c) = TS_COLUMN_DECORATOR.captures(&l) {
                        pending = Some((b, c.get(1).or(c.get(2)).map(|m| m.as_str().to_string())));
                        continue;
                    }
                    if l.trim_start().starts_with('@') {
                        continue;
                    }
                    if let (Some((d, named)), Some(p)) = (pending.take(), TS_PROPERTY.captures(&l))
                    {
                        let column = named.unwrap_or_else(|| p[1].to_string());
                        for line in [d, b] {
                            self.decl(line, kind)
                                .columns
                                .push((table.clone(), column.clone()));
                        }
                    }
                }
                self.scopes.push(Scope {
                    start: i,
                    end,
                    kind,
                });
            } else if let Some(c) = SEQ_DEFINE.captures(&l) {
                const KIND: &str = "Sequelize model";
                let model = c.get(1).or(c.get(2)).unwrap().as_str().to_string();
                let end = self.block_end(i, '(', ')');
                let named = (i..=end).find_map(|b| {
                    SEQ_TABLE_NAME
                        .captures(&self.lines[b])
                        .map(|t| (b, t[1].to_string()))
                });
                let table = match named {
                    Some((b, t)) => {
                        self.decl(b, KIND).tables.push(t.clone());
                        t
                    }
                    None => plural(&model),
                };
                self.decl(i, KIND).tables.push(table.clone());
                for b in i + 1..=end {
                    let l = self.lines[b].clone();
                    let column = match (SEQ_FIELD.captures(&l), SEQ_KEY.captures(&l)) {
                        (Some(f), _) => f[1].to_string(),
                        (None, Some(k))
                            if ![
                                "type",
                                "allowNull",
                                "tableName",
                                "sequelize",
                                "modelName",
                                "timestamps",
                                "defaultValue",
                                "primaryKey",
                                "references",
                                "underscored",
                                "unique",
                                "autoIncrement",
                                "paranoid",
                            ]
                            .contains(&&k[1]) =>
                        {
                            k[1].to_string()
                        }
                        _ => continue,
                    };
                    self.decl(b, KIND).columns.push((table.clone(), column));
                }
                self.scopes.push(Scope {
                    start: i,
                    end,
                    kind: KIND,
                });
            }
        }
    }

    fn gorm(&mut self, text: &str) {
        const KIND: &str = "GORM model";
        let mut named: HashMap<String, String> = HashMap::new();
        for c in GO_TABLE_NAME.captures_iter(text) {
            let at = c.get(2).unwrap().start();
            let line = text[..at].matches('\n').count();
            named.insert(c[1].to_string(), c[2].to_string());
            self.decl(line, KIND).tables.push(c[2].to_string());
        }
        for i in 0..self.lines.len() {
            let Some(c) = GO_STRUCT.captures(&self.lines[i]) else {
                continue;
            };
            let strukt = c[1].to_string();
            let end = self.block_end(i, '{', '}');
            // GORM's default: the struct's name in snake_case, pluralised.
            let table = named
                .get(&strukt)
                .cloned()
                .unwrap_or_else(|| plural(&snake(&strukt)));
            self.decl(i, KIND).tables.push(table.clone());
            for b in i + 1..end {
                let l = self.lines[b].clone();
                let Some(f) = GO_FIELD.captures(&l) else {
                    continue;
                };
                let column = GO_COLUMN_TAG
                    .captures(&l)
                    .map_or_else(|| snake(&f[1]), |t| t[1].to_string());
                self.decl(b, KIND).columns.push((table.clone(), column));
            }
            self.scopes.push(Scope {
                start: i,
                end,
                kind: KIND,
            });
        }
    }

    fn jooq(&mut self) {
        const KIND: &str = "jOOQ generated";
        let mut table: Option<String> = None;
        for i in 0..self.lines.len() {
            let l = self.lines[i].clone();
            // `public static final Orders ORDERS = …`: the table's constant.
            if let Some(c) = JOOQ_CONSTANT.captures(&l) {
                if norm(&c[1]) == norm(&c[2]) {
                    let t = c[2].to_lowercase();
                    self.decl(i, KIND).tables.push(t.clone());
                    table.get_or_insert(t);
                }
            }
            if let (Some(c), Some(t)) = (JOOQ_FIELD.captures(&l), &table) {
                let d = self.decl(i, KIND);
                d.columns.push((t.clone(), c[2].to_string()));
            }
        }
        if table.is_some() && self.lines.iter().any(|l| l.contains("TableImpl<")) {
            self.scopes.push(Scope {
                start: 0,
                end: self.lines.len().saturating_sub(1),
                kind: KIND,
            });
        }
    }

    fn dbt_refs(&mut self) {
        for i in 0..self.lines.len() {
            let l = self.lines[i].clone();
            for c in DBT_REF
                .captures_iter(&l)
                .chain(DBT_SOURCE.captures_iter(&l))
            {
                self.decl(i, "dbt model").tables.push(c[1].to_string());
            }
        }
    }

    /// dbt's `schema.yml`: `- name:` under `models:` / `tables:` is a table, under `columns:` a
    /// column of the `- name:` above it.
    fn dbt_yaml(&mut self) {
        const KIND: &str = "dbt schema.yml";
        let indent = |l: &str| l.len() - l.trim_start().len();
        // The key a list item belongs to: the nearest line above, less indented, `key:`.
        let parent = |lines: &[String], i: usize| -> Option<(usize, String)> {
            let base = indent(&lines[i]);
            (0..i).rev().find_map(|p| {
                let l = &lines[p];
                if l.trim().is_empty() || indent(l) >= base {
                    return None;
                }
                YAML_KEY.captures(l).map(|c| (p, c[2].to_string()))
            })
        };
        let mut table_at: HashMap<usize, String> = HashMap::new();
        for i in 0..self.lines.len() {
            let Some(c) = YAML_NAME.captures(&self.lines[i]) else {
                continue;
            };
            let name = c[2].to_string();
            match parent(&self.lines, i) {
                Some((_, k))
                    if k == "models" || k == "tables" || k == "seeds" || k == "snapshots" =>
                {
                    table_at.insert(i, name.clone());
                    self.decl(i, KIND).tables.push(name);
                }
                Some((p, k)) if k == "columns" => {
                    // The table: the nearest `- name:` less indented than `columns:`.
                    let base = indent(&self.lines[p]);
                    let table = (0..p)
                        .rev()
                        .find(|&t| table_at.contains_key(&t) && indent(&self.lines[t]) < base)
                        .map(|t| table_at[&t].clone());
                    if let Some(table) = table {
                        self.decl(i, KIND).columns.push((table, name));
                    }
                }
                _ => {}
            }
        }
    }

    /// The SQL around line `i`, when it is SQL: its kind and its text (the statement, the
    /// `query!` call, or for a string in code the lines around its verb).
    fn sql_at(&self, i: usize) -> Option<(&'static str, String)> {
        let n = self.lines.len();
        if let Some(kind) = self.sql_file {
            // The statement: back to the line after the previous `;`, on to the next `;`.
            let start = (0..i)
                .rev()
                .find(|&p| self.lines[p].trim_end().ends_with(';'))
                .map_or(0, |p| p + 1);
            let end = (i..n)
                .find(|&p| self.lines[p].contains(';'))
                .unwrap_or(n - 1);
            return Some((kind, self.lines[start..=end].join("\n")));
        }
        if let Some((s, e, kind)) = self.sql_spans.iter().find(|(s, e, _)| *s <= i && i <= *e) {
            return Some((kind, self.lines[*s..=*e].join("\n")));
        }
        // A string in code: an SQL verb on this line or up to 8 lines above it (a multi-line
        // string), with a quote between that line and this one, no blank line in between.
        let mut verb = None;
        for p in (i.saturating_sub(8)..=i).rev() {
            if self.lines[p].trim().is_empty() {
                break;
            }
            if SQL_VERB.is_match(&self.lines[p]) {
                verb = Some(p);
            }
        }
        let verb = verb?;
        let quoted = (verb.saturating_sub(2)..=i).any(|p| self.lines[p].contains(['"', '\'', '`']));
        if !quoted {
            return None;
        }
        let mut end = i;
        while end + 1 < n && end < i + 8 && !self.lines[end + 1].trim().is_empty() {
            end += 1;
        }
        let start = (verb.saturating_sub(2)..=verb)
            .find(|&p| !self.lines[p].trim().is_empty())
            .unwrap_or(verb);
        Some(("SQL string", self.lines[start..=end].join("\n")))
    }
}

/// What the classifier needs to know of a change.
pub struct Target<'a> {
    pub table: &'a str,
    pub column: Option<&'a str>,
    /// Any strong spelling of the table, whole word, case-insensitive.
    pub table_re: &'a Regex,
}

/// The certainty and kind of a hit of `target` on line `i` (0-based) at byte `start`, or None
/// when it is no reference: a weak spelling off a declaration, or a declaration of another table's
/// column.
pub fn classify(
    ctx: &FileCtx,
    target: &Target,
    i: usize,
    start: usize,
    weak: bool,
) -> Option<(&'static str, &'static str)> {
    let t = norm(target.table.rsplit('.').next().unwrap_or(target.table));
    let decl = ctx.decls.get(&i);
    let line = ctx.lines.get(i).map(String::as_str).unwrap_or("");
    match target.column {
        None => {
            if let Some(d) = decl {
                if d.tables.iter().any(|x| norm(x) == t) {
                    return Some((CERTAIN, d.kind));
                }
            }
            if !weak {
                if let Some((kind, _)) = ctx.sql_at(i) {
                    return Some((CERTAIN, kind));
                }
            }
        }
        Some(c) => {
            let c = norm(c);
            if let Some(d) = decl.filter(|d| !d.columns.is_empty()) {
                if d.columns
                    .iter()
                    .any(|(dt, dc)| norm(dc) == c && norm(dt) == t)
                {
                    return Some((CERTAIN, d.kind));
                }
                // The ORM declares a column of another table, or another column (`legacyCode`
                // mapped to `old_code`): not this one.
                return None;
            }
            if let Some((kind, sql)) = ctx.sql_at(i) {
                let certainty = if target.table_re.is_match(&sql) {
                    CERTAIN
                } else {
                    PROBABLE
                };
                return Some((certainty, kind));
            }
            // `orders.legacy_code`, `ORDERS.LEGACY_CODE`: qualified by the table.
            // The file as read again may differ from the search's (changed meanwhile): never panic.
            let before = line.get(..start).unwrap_or("");
            if let Some(q) = before.strip_suffix('.') {
                let word = q
                    .rsplit(|ch: char| !(ch.is_alphanumeric() || ch == '_'))
                    .next()
                    .unwrap_or("");
                if !word.is_empty() && target.table_re.is_match(word) {
                    return Some((CERTAIN, "qualified name"));
                }
            }
        }
    }
    if weak {
        return None;
    }
    Some((PROBABLE, ctx.scope_at(i).map_or("code", |s| s.kind)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inflections() {
        for (s, p) in [
            ("user", "users"),
            ("line_item", "line_items"),
            ("category", "categories"),
            ("box", "boxes"),
            ("address", "addresses"),
            ("batch", "batches"),
            ("person", "people"),
            ("day", "days"),
            ("status", "statuses"),
        ] {
            assert_eq!(plural(s), p, "{s}");
            assert_eq!(singular(p), s, "{p}");
        }
        assert_eq!(singular("audit_trail"), "audit_trail");
        for (from, to) in [
            ("LineItem", "line_item"),
            ("lineItem", "line_item"),
            ("HTTPLog", "http_log"),
            ("Order", "order"),
        ] {
            assert_eq!(snake(from), to);
        }
        assert_eq!(norm("legacyCode"), norm("LEGACY_CODE"));
    }
}
