//! The typed statement IR: what a migration statement does, in terms the rules and the planner share.
//!
//! Built from sqlparser's AST for the target's dialect. Statements sqlparser cannot parse are still
//! classified from their leading keywords where sluice knows them (`DROP INDEX CONCURRENTLY`,
//! `REINDEX`, `CLUSTER`, ...); only what neither recognises is `Unparsed`.

use crate::sql::SqlStatement;
use crate::target::EngineKind;
use sqlparser::ast::{
    self, AlterColumnOperation, AlterTableOperation, ColumnOption, DataType, Expr, ObjectName,
    ObjectType, Statement, TableConstraint,
};
use sqlparser::parser::Parser;

/// A possibly schema-qualified name, folded as the engine folds it (unquoted → lower case).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct QName {
    pub schema: Option<String>,
    pub name: String,
}

impl QName {
    pub fn display(&self) -> String {
        match &self.schema {
            Some(s) => format!("{s}.{}", self.name),
            None => self.name.clone(),
        }
    }

    /// Same object, when one side leaves the schema out.
    pub fn matches(&self, other: &QName) -> bool {
        self.name == other.name
            && match (&self.schema, &other.schema) {
                (Some(a), Some(b)) => a == b,
                _ => true,
            }
    }
}

impl std::fmt::Display for QName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.display())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Volatility {
    /// A literal (or a cast of one): the same value for every row.
    Constant,
    /// Evaluated once per statement (`now()`, `current_timestamp`): PostgreSQL 11+ stores it without a rewrite.
    Stable,
    /// Known to change per row (`random()`, `gen_random_uuid()`, `clock_timestamp()`, `nextval()`).
    Volatile,
    /// Calls a function sluice does not know: treated as volatile.
    Unknown,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DefaultExpr {
    pub text: String,
    pub volatility: Volatility,
    /// MySQL/MariaDB `DEFAULT (expr)`: an expression default rather than a literal.
    pub parenthesized: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ColumnSpec {
    pub name: String,
    /// The type as written, upper-cased by sqlparser's printer (e.g. `VARCHAR(20)`).
    pub data_type: String,
    pub not_null: bool,
    pub default: Option<DefaultExpr>,
    pub primary_key: bool,
    pub unique: bool,
    pub references: Option<QName>,
    pub check: bool,
    pub generated_stored: bool,
    pub generated_virtual: bool,
    pub identity: bool,
    /// PostgreSQL `serial`/`bigserial`/`smallserial`.
    pub serial: bool,
    pub auto_increment: bool,
    /// MySQL `AFTER col` / `FIRST`.
    pub positioned: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConstraintKind {
    PrimaryKey,
    Unique,
    ForeignKey,
    Check,
    Exclude,
    /// MySQL `INDEX`/`KEY` inside ALTER TABLE or CREATE TABLE.
    Index,
    FullText,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConstraintSpec {
    pub name: Option<String>,
    pub kind: ConstraintKind,
    pub columns: Vec<String>,
    pub not_valid: bool,
    /// `ADD CONSTRAINT ... PRIMARY KEY|UNIQUE USING INDEX idx` (PostgreSQL).
    pub using_index: bool,
    pub references: Option<QName>,
    /// The distinct columns a CHECK expression reads, in order of appearance (PostgreSQL names an
    /// unnamed check after its column when it reads exactly one).
    pub expr_columns: Vec<String>,
    /// `UNIQUE (...) INCLUDE (...)` / `PRIMARY KEY (...) INCLUDE (...)`: PostgreSQL names an
    /// unnamed unique constraint after these too.
    pub include: Vec<String>,
}

/// One thing a statement does. A statement (e.g. an ALTER TABLE with several clauses) may do several.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    CreateTable {
        table: QName,
        columns: Vec<ColumnSpec>,
        constraints: Vec<ConstraintSpec>,
        partition_of: bool,
        /// Existing tables the statement locks (PostgreSQL): the partition parent, inherited
        /// parents, LIKE sources and referenced tables, each once, its own name left out.
        locks: Vec<QName>,
    },
    CreateIndex {
        name: Option<String>,
        table: QName,
        unique: bool,
        concurrently: bool,
        columns: Vec<String>,
        if_not_exists: bool,
    },
    DropIndex {
        names: Vec<QName>,
        concurrently: bool,
        if_exists: bool,
    },
    AddColumn {
        table: QName,
        column: ColumnSpec,
        if_not_exists: bool,
    },
    DropColumn {
        table: QName,
        column: String,
        if_exists: bool,
    },
    /// A column's type changes (PostgreSQL `ALTER COLUMN TYPE`, MySQL `MODIFY`/`CHANGE`).
    AlterColumnType {
        table: QName,
        column: String,
        new_type: String,
        using: bool,
        spec: Option<ColumnSpec>,
    },
    SetNotNull {
        table: QName,
        column: String,
    },
    DropNotNull {
        table: QName,
        column: String,
    },
    SetDefault {
        table: QName,
        column: String,
        default: DefaultExpr,
    },
    DropDefault {
        table: QName,
        column: String,
    },
    AddConstraint {
        table: QName,
        constraint: ConstraintSpec,
    },
    ValidateConstraint {
        table: QName,
        name: String,
    },
    DropConstraint {
        table: QName,
        name: String,
    },
    /// MySQL `DROP PRIMARY KEY` / `DROP FOREIGN KEY` / `DROP INDEX` inside ALTER TABLE.
    DropKey {
        table: QName,
        what: String,
    },
    RenameColumn {
        table: QName,
        from: String,
        to: String,
    },
    RenameTable {
        from: QName,
        to: QName,
    },
    RenameSchema {
        from: String,
        to: String,
    },
    RenameEnumValue {
        type_name: QName,
    },
    AddEnumValue {
        type_name: QName,
        positioned: bool,
        if_not_exists: bool,
    },
    /// MySQL `MODIFY c ENUM(...)`/`SET(...)`: compared against the table only online.
    DropTable {
        names: Vec<QName>,
        cascade: bool,
    },
    DropSchema {
        names: Vec<String>,
        cascade: bool,
    },
    DropDatabase {
        name: String,
    },
    DropOther {
        kind: String,
        names: Vec<String>,
    },
    Truncate {
        tables: Vec<QName>,
        cascade: bool,
    },
    VacuumFull {
        table: Option<QName>,
    },
    Vacuum,
    Cluster,
    Reindex {
        concurrently: bool,
        /// `REINDEX TABLE t`: the table (None for an index, schema, database or system).
        table: Option<QName>,
    },
    DetachPartition {
        table: QName,
        concurrently: bool,
    },
    AttachPartition {
        /// The partitioned table.
        table: QName,
        /// The table attached as its partition.
        partition: QName,
    },
    CreateDomain {
        has_check: bool,
    },
    AlterDomainAddConstraint {
        not_valid: bool,
    },
    /// `SET [LOCAL] name = value`.
    SetParam {
        name: String,
        value: String,
        local: bool,
    },
    Begin,
    Commit,
    Rollback,
    /// MySQL/MariaDB `ALGORITHM=` / `LOCK=` clauses of an ALTER TABLE or CREATE INDEX.
    MySqlOptions {
        table: QName,
        algorithm: Option<String>,
        lock: Option<String>,
    },
    /// MySQL statements that rebuild the whole table (`ENGINE=`, `CONVERT TO`, `OPTIMIZE`, `FORCE`).
    MySqlRebuild {
        table: Option<QName>,
        what: String,
    },
    CreateOther {
        kind: String,
    },
    /// Data changes: INSERT/UPDATE/DELETE/SELECT/COPY.
    Dml {
        kind: String,
        table: Option<QName>,
    },
    /// Understood but not relevant to any rule.
    Other,
}

#[derive(Debug, Clone)]
pub enum Parsed {
    Actions(Vec<Action>),
    /// Neither sqlparser nor the keyword classifier knows it.
    Unparsed {
        error: String,
    },
}

/// A statement with its place in the file and what it does.
#[derive(Debug, Clone)]
pub struct Stmt {
    pub index: usize,
    pub sql: String,
    /// Byte offset in the file text.
    pub offset: usize,
    pub line: usize,
    pub column: usize,
    pub keywords: Vec<String>,
    pub parsed: Parsed,
    /// sqlparser's AST, when it parsed (rules may look deeper than the IR). Boxed: the statement
    /// enum is kilobytes wide, and a part keeps every statement's IR while it is linted.
    pub ast: Option<Box<Statement>>,
}

impl Stmt {
    /// Whether the statement drops a column with CASCADE (its dependants go with it).
    pub fn drops_column_with_cascade(&self) -> bool {
        use sqlparser::ast::{AlterTableOperation, DropBehavior, Statement};
        match self.ast.as_deref() {
            Some(Statement::AlterTable(at)) => at.operations.iter().any(|o| {
                matches!(
                    o,
                    AlterTableOperation::DropColumn {
                        drop_behavior: Some(DropBehavior::Cascade),
                        ..
                    }
                )
            }),
            _ => false,
        }
    }

    pub fn actions(&self) -> &[Action] {
        match &self.parsed {
            Parsed::Actions(a) => a,
            Parsed::Unparsed { .. } => &[],
        }
    }
}

/// Gives back the spare room of the lists a wide statement grows while it is parsed: the parser
/// doubles them as it pushes, and a column option weighs hundreds of bytes, so a squashed schema's
/// CREATE TABLEs would otherwise keep about twice the memory their ASTs need while a file is linted.
fn shrink(st: &mut Statement) {
    match st {
        Statement::CreateTable(ct) => {
            ct.columns.shrink_to_fit();
            ct.constraints.shrink_to_fit();
            for c in &mut ct.columns {
                c.options.shrink_to_fit();
            }
        }
        Statement::AlterTable(at) => at.operations.shrink_to_fit(),
        _ => {}
    }
}

pub fn fold_ident(engine: EngineKind, ident: &ast::Ident) -> String {
    match (ident.quote_style, engine) {
        (Some(_), _) => ident.value.clone(),
        // PostgreSQL folds only ASCII letters of an unquoted name (UTF-8): `ÄB` is `Äb`.
        (None, EngineKind::Postgres) => ident.value.to_ascii_lowercase(),
        // MariaDB/MySQL fold nothing: on the Linux default (`lower_case_table_names=0`) a table
        // is stored and found under its name as written, `Orders` is not `orders`; column and
        // index names keep their case too and are compared case-insensitively where compared
        // (`same_column`); a server that folds table names is handled where names are looked up.
        (None, _) => ident.value.clone(),
    }
}

/// Whether two table (database, view, trigger) names, each as [`fold_ident`] gives it, name the
/// same object: on MariaDB/MySQL exactly with `lower_case_table_names=0` (`folds` false), else
/// case-insensitively (`folds`: the server's setting is 1 or 2); PostgreSQL exactly.
pub fn same_table(engine: EngineKind, folds: bool, a: &str, b: &str) -> bool {
    match engine {
        EngineKind::Postgres => a == b,
        _ if folds => a.to_lowercase() == b.to_lowercase(),
        _ => a == b,
    }
}

/// Whether two column (or index) names, each as [`fold_ident`] gives it, name the same column:
/// PostgreSQL compares the folded names exactly, MariaDB/MySQL case-insensitively, always.
pub fn same_column(engine: EngineKind, a: &str, b: &str) -> bool {
    match engine {
        EngineKind::Postgres => a == b,
        _ => a.to_lowercase() == b.to_lowercase(),
    }
}

/// A name as the engine resolves it: folded, split into schema and object.
pub fn qname(engine: EngineKind, n: &ObjectName) -> QName {
    let parts: Vec<String> =
        n.0.iter()
            .filter_map(|p| p.as_ident().map(|i| fold_ident(engine, i)))
            .collect();
    match parts.as_slice() {
        [] => QName {
            schema: None,
            name: n.to_string(),
        },
        [one] => QName {
            schema: None,
            name: one.clone(),
        },
        [.., s, t] => QName {
            schema: Some(s.clone()),
            name: t.clone(),
        },
    }
}

/// Every table or view a statement names (ALTER, CREATE INDEX ON, FROM, JOIN, REFERENCES, INSERT INTO,
/// ...), folded as the engine folds it; read from the parsed statement, never from its text, so a
/// comment, a string or a column that happens to share a table's name names nothing. Empty when
/// sqlparser could not parse the statement.
pub fn relations(engine: EngineKind, st: &Stmt) -> Vec<QName> {
    let mut out: Vec<QName> = Vec::new();
    let mut push = |q: QName| {
        if !out.contains(&q) {
            out.push(q);
        }
    };
    if let Some(ast) = st.ast.as_deref() {
        let _ = sqlparser::ast::visit_relations(ast, |n| {
            push(qname(engine, n));
            std::ops::ControlFlow::<()>::Continue(())
        });
    }
    out
}

/// The assignments of a `SET` statement as (scope, variable, value text); empty for anything else.
pub fn set_assignments(st: &Statement) -> Vec<(Option<ast::ContextModifier>, String, String)> {
    match st {
        Statement::Set(ast::Set::SingleAssignment {
            scope,
            variable,
            values,
            ..
        }) => vec![(
            *scope,
            variable.to_string(),
            values
                .iter()
                .map(|v| v.to_string())
                .collect::<Vec<_>>()
                .join(","),
        )],
        Statement::Set(ast::Set::MultipleAssignments { assignments }) => assignments
            .iter()
            .map(|a| (a.scope, a.name.to_string(), a.value.to_string()))
            .collect(),
        _ => vec![],
    }
}

/// Builds the IR for one split statement; `file_offset` is the part's offset in the file text.
pub fn build(
    engine: EngineKind,
    index: usize,
    s: &SqlStatement,
    file_offset: usize,
    file_text: &str,
) -> Stmt {
    build_at(
        engine,
        index,
        s,
        file_offset,
        crate::sql::line_col(file_text, file_offset),
    )
}

/// As [`build`], given the line and column where the part starts (so a file of many statements is
/// not rescanned from its start for each one).
pub fn build_at(
    engine: EngineKind,
    index: usize,
    s: &SqlStatement,
    file_offset: usize,
    part_start: (usize, usize),
) -> Stmt {
    let dialect = crate::sql::dialect(engine);
    let line = part_start.0 + s.line - 1;
    let column = if s.line == 1 {
        part_start.1 + s.column - 1
    } else {
        s.column
    };
    let parsed_sql =
        Parser::parse_sql(dialect.as_ref(), &s.sql).or_else(|e| match respelled(engine, &s.sql) {
            Some(alt) => Parser::parse_sql(dialect.as_ref(), &alt).map_err(|_| e),
            None => Err(e),
        });
    let (parsed, ast) = match parsed_sql {
        Ok(mut v) if v.len() == 1 => {
            let mut st = v.remove(0);
            shrink(&mut st);
            (Parsed::Actions(from_ast(engine, &st)), Some(Box::new(st)))
        }
        Ok(_) => (
            Parsed::Unparsed {
                error: "not a single statement".into(),
            },
            None,
        ),
        Err(e) => match from_keywords(engine, s) {
            Some(actions) => (Parsed::Actions(actions), None),
            None => (
                Parsed::Unparsed {
                    error: e.to_string(),
                },
                None,
            ),
        },
    };
    Stmt {
        index,
        sql: s.sql.clone(),
        offset: file_offset + s.offset,
        line,
        column,
        keywords: s.keywords.clone(),
        parsed,
        ast,
    }
}

/// The table a DML statement names (not a subquery or function).
fn factor_table(engine: EngineKind, f: &ast::TableFactor) -> Option<QName> {
    match f {
        ast::TableFactor::Table { name, .. } => Some(qname(engine, name)),
        _ => None,
    }
}

/// The existing tables a CREATE TABLE locks besides its own: partition parent, inherited parents,
/// LIKE sources, referenced tables (a self-reference locks nothing else).
fn create_table_locks(engine: EngineKind, ct: &ast::CreateTable, own: &QName) -> Vec<QName> {
    let mut names: Vec<&ObjectName> = Vec::new();
    names.extend(ct.partition_of.iter());
    names.extend(ct.inherits.iter().flatten());
    if let Some(ast::CreateTableLikeKind::Parenthesized(l) | ast::CreateTableLikeKind::Plain(l)) =
        &ct.like
    {
        names.push(&l.name);
    }
    for c in &ct.columns {
        for o in &c.options {
            if let ColumnOption::ForeignKey(fk) = &o.option {
                names.push(&fk.foreign_table);
            }
        }
    }
    for tc in &ct.constraints {
        if let TableConstraint::ForeignKey(fk) = tc {
            names.push(&fk.foreign_table);
        }
    }
    let mut out: Vec<QName> = Vec::new();
    for n in names {
        let q = qname(engine, n);
        if !q.matches(own) && !out.iter().any(|o| o.matches(&q)) {
            out.push(q);
        }
    }
    out
}

/// `REINDEX [ ( options ) ] TABLE [ CONCURRENTLY ] name`: the table (sqlparser has no REINDEX).
fn reindex_table(engine: EngineKind, sql: &str) -> Option<QName> {
    use sqlparser::keywords::Keyword;
    use sqlparser::tokenizer::Token;
    let dialect = crate::sql::dialect(engine);
    let mut p = Parser::new(dialect.as_ref()).try_with_sql(sql).ok()?;
    if !p.parse_keyword(Keyword::REINDEX) {
        return None;
    }
    if p.consume_token(&Token::LParen) {
        let mut depth = 1;
        while depth > 0 {
            match p.next_token().token {
                Token::LParen => depth += 1,
                Token::RParen => depth -= 1,
                Token::EOF => return None,
                _ => {}
            }
        }
    }
    if !p.parse_keyword(Keyword::TABLE) {
        return None;
    }
    // `REINDEX TABLE CONCURRENTLY t`; a table named `concurrently` is the name itself.
    if matches!(p.peek_nth_token(1).token, Token::Word(_)) {
        let _ = p.parse_keyword(Keyword::CONCURRENTLY);
    }
    p.parse_object_name(false).ok().map(|n| qname(engine, &n))
}

/// Spellings sqlparser does not parse, respelled for a second parse attempt as forms it does that
/// mean the same to the analysis (the statement still runs as written): MariaDB's `PERSISTENT`
/// generated columns as `STORED`; `DROP KEY k` (MariaDB/MySQL ALTER TABLE) as `DROP INDEX k`;
/// PostgreSQL's `CREATE TABLE n (LIKE p INCLUDING …)` without its INCLUDING/EXCLUDING options
/// (they choose what is copied from `p`, not the lock: ACCESS SHARE on `p` either way). None when
/// nothing is respelled.
fn respelled(engine: EngineKind, sql: &str) -> Option<String> {
    use sqlparser::tokenizer::{Token, Tokenizer};
    let dialect = crate::sql::dialect(engine);
    let tokens = Tokenizer::new(dialect.as_ref(), sql).tokenize().ok()?;
    let bare = |t: &Token, word: &str| matches!(t, Token::Word(w) if w.quote_style.is_none() && w.value.eq_ignore_ascii_case(word));
    let words: Vec<&Token> = tokens
        .iter()
        .filter(|t| !matches!(t, Token::Whitespace(_)))
        .collect();
    // CREATE [GLOBAL|LOCAL] [TEMP|TEMPORARY|UNLOGGED] TABLE …
    let create_table = engine == EngineKind::Postgres
        && words.first().is_some_and(|t| bare(t, "CREATE"))
        && words.iter().take(4).any(|t| bare(t, "TABLE"));
    let mut changed = false;
    let mut last_word: Option<&Token> = None;
    let mut after_like = false;
    let mut option_word = false;
    let mut text = String::with_capacity(sql.len());
    for t in &tokens {
        let space = matches!(t, Token::Whitespace(_));
        if create_table {
            if option_word && !space {
                // ALL, DEFAULTS, CONSTRAINTS, INDEXES, …: the option's word goes with it.
                option_word = false;
                continue;
            }
            if bare(t, "LIKE") {
                after_like = true;
            } else if matches!(t, Token::Comma | Token::RParen) {
                after_like = false;
            } else if after_like && (bare(t, "INCLUDING") || bare(t, "EXCLUDING")) {
                changed = true;
                option_word = true;
                continue;
            }
            text.push_str(&t.to_string());
        } else if engine == EngineKind::MariaDb && bare(t, "PERSISTENT") {
            changed = true;
            text.push_str("STORED");
        } else if engine != EngineKind::Postgres
            && bare(t, "KEY")
            && last_word.is_some_and(|w| bare(w, "DROP"))
        {
            changed = true;
            text.push_str("INDEX");
        } else {
            text.push_str(&t.to_string());
        }
        if !space {
            last_word = Some(t);
        }
    }
    changed.then_some(text)
}

/// Statements sqlparser does not parse, recognised from their leading keywords.
fn from_keywords(engine: EngineKind, s: &SqlStatement) -> Option<Vec<Action>> {
    let k: Vec<&str> = s.keywords.iter().map(String::as_str).collect();
    // Whole words only: `VACUUM ANALYZE fulltext_docs` is no VACUUM FULL.
    let has = |w: &str| s.has_word(w);
    let a = match k.as_slice() {
        ["DROP", "INDEX", ..] => Action::DropIndex {
            names: vec![],
            concurrently: k.get(2) == Some(&"CONCURRENTLY"),
            if_exists: has("EXISTS"),
        },
        ["REINDEX", ..] => Action::Reindex {
            concurrently: has("CONCURRENTLY"),
            table: reindex_table(engine, &s.sql),
        },
        ["CLUSTER", ..] => Action::Cluster,
        // FULL is an option: right after VACUUM, or inside its parenthesised option list.
        ["VACUUM", "FULL", ..] => Action::VacuumFull { table: None },
        ["VACUUM", ..]
            if s.sql.split_once(')').is_some_and(|(opts, _)| {
                opts.contains('(')
                    && opts
                        .to_ascii_uppercase()
                        .split(|c: char| !c.is_ascii_alphanumeric())
                        .any(|w| w == "FULL")
            }) =>
        {
            Action::VacuumFull { table: None }
        }
        ["VACUUM", ..] => Action::Vacuum,
        ["ALTER", "DOMAIN", _, "ADD", ..] => Action::AlterDomainAddConstraint {
            not_valid: s.has_words(&["NOT", "VALID"]),
        },
        // VALIDATE CONSTRAINT, SET/DROP NOT NULL, RENAME ...: known, checked by their own rules' words.
        ["ALTER", "DOMAIN", ..] => Action::Other,
        ["OPTIMIZE", ..] => Action::MySqlRebuild {
            table: None,
            what: "OPTIMIZE TABLE".into(),
        },
        ["ALTER", "TABLE", ..]
            if engine.is_mysql_family() && (has("ENGINE") || has("CONVERT") || has("FORCE")) =>
        {
            Action::MySqlRebuild {
                table: None,
                what: "table rebuild (ENGINE=, CONVERT TO or FORCE)".into(),
            }
        }
        ["DO", ..]
        | ["ALTER", "SEQUENCE", ..]
        | ["CREATE", "OR", "REPLACE", ..]
        | ["ANALYZE", ..]
        | ["DELIMITER", ..] => Action::Other,
        _ => return None,
    };
    Some(vec![a])
}

fn from_ast(engine: EngineKind, st: &Statement) -> Vec<Action> {
    match st {
        Statement::CreateTable(ct) => {
            let mut columns = Vec::new();
            let mut constraints: Vec<ConstraintSpec> = Vec::new();
            for c in &ct.columns {
                columns.push(column_spec(engine, c));
            }
            for tc in &ct.constraints {
                constraints.push(constraint_spec(engine, tc, false));
            }
            let table = qname(engine, &ct.name);
            let locks = create_table_locks(engine, ct, &table);
            vec![Action::CreateTable {
                table,
                columns,
                constraints,
                partition_of: ct.partition_of.is_some(),
                locks,
            }]
        }
        Statement::CreateIndex(ci) => {
            let mut out = vec![Action::CreateIndex {
                name: ci.name.as_ref().map(|n| qname(engine, n).name),
                table: qname(engine, &ci.table_name),
                unique: ci.unique,
                concurrently: ci.concurrently,
                columns: ci
                    .columns
                    .iter()
                    .map(|c| c.column.expr.to_string())
                    .collect(),
                if_not_exists: ci.if_not_exists,
            }];
            out.extend(mysql_options(
                engine,
                &qname(engine, &ci.table_name),
                &ci.alter_options,
            ));
            out
        }
        Statement::AlterTable(at) => alter_table(engine, &qname(engine, &at.name), &at.operations),
        Statement::Drop {
            object_type,
            if_exists,
            names,
            cascade,
            ..
        } => {
            let q: Vec<QName> = names.iter().map(|n| qname(engine, n)).collect();
            vec![match object_type {
                ObjectType::Table => Action::DropTable {
                    names: q,
                    cascade: *cascade,
                },
                ObjectType::Index => Action::DropIndex {
                    names: q,
                    concurrently: false,
                    if_exists: *if_exists,
                },
                ObjectType::Schema => Action::DropSchema {
                    names: q.iter().map(|n| n.name.clone()).collect(),
                    cascade: *cascade,
                },
                ObjectType::Database => Action::DropDatabase {
                    name: q.first().map(|n| n.name.clone()).unwrap_or_default(),
                },
                other => Action::DropOther {
                    kind: other.to_string(),
                    names: q.iter().map(QName::display).collect(),
                },
            }]
        }
        Statement::DropDomain(_) => vec![Action::DropOther {
            kind: "DOMAIN".into(),
            names: vec![],
        }],
        Statement::Truncate(t) => vec![Action::Truncate {
            tables: t
                .table_names
                .iter()
                .map(|n| qname(engine, &n.name))
                .collect(),
            cascade: matches!(t.cascade, Some(ast::CascadeOption::Cascade)),
        }],
        Statement::AlterType(at) => {
            let type_name = qname(engine, &at.name);
            vec![match &at.operation {
                ast::AlterTypeOperation::AddValue(v) => Action::AddEnumValue {
                    type_name,
                    positioned: v.position.is_some(),
                    if_not_exists: v.if_not_exists,
                },
                ast::AlterTypeOperation::RenameValue(_) => Action::RenameEnumValue { type_name },
                _ => Action::Other,
            }]
        }
        Statement::AlterSchema(s) => match s.operations.first() {
            Some(ast::AlterSchemaOperation::Rename { name }) => vec![Action::RenameSchema {
                from: qname(engine, &s.name).name,
                to: qname(engine, name).name,
            }],
            _ => vec![Action::Other],
        },
        Statement::RenameTable(pairs) => pairs
            .iter()
            .map(|r| Action::RenameTable {
                from: qname(engine, &r.old_name),
                to: qname(engine, &r.new_name),
            })
            .collect(),
        Statement::Vacuum(v) => vec![if v.full {
            Action::VacuumFull {
                table: v.table_name.as_ref().map(|n| qname(engine, n)),
            }
        } else {
            Action::Vacuum
        }],
        Statement::CreateDomain(d) => vec![Action::CreateDomain {
            has_check: !d.constraints.is_empty(),
        }],
        Statement::Set(ast::Set::SingleAssignment {
            scope,
            variable,
            values,
            ..
        }) => vec![Action::SetParam {
            name: variable.to_string().to_lowercase(),
            value: values
                .iter()
                .map(|v| v.to_string())
                .collect::<Vec<_>>()
                .join(", "),
            local: matches!(scope, Some(ast::ContextModifier::Local)),
        }],
        Statement::StartTransaction { .. } => vec![Action::Begin],
        Statement::Commit { .. } => vec![Action::Commit],
        // ROLLBACK TO SAVEPOINT keeps the transaction open.
        Statement::Rollback {
            savepoint: Some(_), ..
        } => vec![Action::Other],
        Statement::Rollback { .. } => vec![Action::Rollback],
        Statement::Insert(i) => vec![Action::Dml {
            kind: "INSERT".into(),
            table: match &i.table {
                ast::TableObject::TableName(n) => Some(qname(engine, n)),
                _ => None,
            },
        }],
        Statement::Update(u) => vec![Action::Dml {
            kind: "UPDATE".into(),
            table: factor_table(engine, &u.table.relation),
        }],
        Statement::Delete(d) => vec![Action::Dml {
            kind: "DELETE".into(),
            table: match &d.from {
                ast::FromTable::WithFromKeyword(f) | ast::FromTable::WithoutKeyword(f) => {
                    f.first().and_then(|t| factor_table(engine, &t.relation))
                }
            },
        }],
        Statement::Merge(m) => vec![Action::Dml {
            kind: "MERGE".into(),
            table: factor_table(engine, &m.table),
        }],
        // COPY ... FROM writes the table; COPY ... TO only reads it.
        Statement::Copy {
            source: ast::CopySource::Table { table_name, .. },
            to,
            ..
        } => vec![Action::Dml {
            kind: if *to { "COPY TO" } else { "COPY" }.into(),
            table: Some(qname(engine, table_name)),
        }],
        Statement::Query(_) => vec![Action::Dml {
            kind: "SELECT".into(),
            table: None,
        }],
        Statement::CreateView(_) => vec![Action::CreateOther {
            kind: "VIEW".into(),
        }],
        Statement::CreateType { .. } => vec![Action::CreateOther {
            kind: "TYPE".into(),
        }],
        Statement::CreateFunction(_) => vec![Action::CreateOther {
            kind: "FUNCTION".into(),
        }],
        Statement::CreateTrigger(_) => vec![Action::CreateOther {
            kind: "TRIGGER".into(),
        }],
        Statement::CreateSchema { .. } => vec![Action::CreateOther {
            kind: "SCHEMA".into(),
        }],
        Statement::CreateExtension(_) => vec![Action::CreateOther {
            kind: "EXTENSION".into(),
        }],
        Statement::CreateSequence { .. } => vec![Action::CreateOther {
            kind: "SEQUENCE".into(),
        }],
        _ => vec![Action::Other],
    }
}

fn mysql_options(engine: EngineKind, table: &QName, ops: &[AlterTableOperation]) -> Option<Action> {
    if !engine.is_mysql_family() {
        return None;
    }
    let mut algorithm = None;
    let mut lock = None;
    for op in ops {
        match op {
            AlterTableOperation::Algorithm { algorithm: a, .. } => {
                algorithm = Some(a.to_string().to_uppercase())
            }
            AlterTableOperation::Lock { lock: l, .. } => lock = Some(l.to_string().to_uppercase()),
            _ => {}
        }
    }
    (algorithm.is_some() || lock.is_some()).then(|| Action::MySqlOptions {
        table: table.clone(),
        algorithm,
        lock,
    })
}

fn alter_table(engine: EngineKind, table: &QName, ops: &[AlterTableOperation]) -> Vec<Action> {
    let mut out = Vec::new();
    for op in ops {
        let t = table.clone();
        match op {
            AlterTableOperation::AddColumn {
                if_not_exists,
                column_def,
                column_position,
                ..
            } => {
                let mut column = column_spec(engine, column_def);
                column.positioned = column_position.is_some();
                out.push(Action::AddColumn {
                    table: t,
                    column,
                    if_not_exists: *if_not_exists,
                });
            }
            AlterTableOperation::DropColumn {
                column_names,
                if_exists,
                ..
            } => {
                for c in column_names {
                    out.push(Action::DropColumn {
                        table: t.clone(),
                        column: fold_ident(engine, c),
                        if_exists: *if_exists,
                    });
                }
            }
            AlterTableOperation::AddConstraint {
                constraint,
                not_valid,
            } => {
                let spec = constraint_spec(engine, constraint, *not_valid);
                out.push(Action::AddConstraint {
                    table: t,
                    constraint: spec,
                });
            }
            AlterTableOperation::ValidateConstraint { name } => {
                out.push(Action::ValidateConstraint {
                    table: t,
                    name: fold_ident(engine, name),
                })
            }
            AlterTableOperation::DropConstraint { name, .. } => out.push(Action::DropConstraint {
                table: t,
                name: fold_ident(engine, name),
            }),
            AlterTableOperation::DropPrimaryKey { .. } => out.push(Action::DropKey {
                table: t,
                what: "PRIMARY KEY".into(),
            }),
            AlterTableOperation::DropForeignKey { name, .. } => out.push(Action::DropKey {
                table: t,
                what: format!("FOREIGN KEY {}", name.value),
            }),
            AlterTableOperation::DropIndex { name } => out.push(Action::DropKey {
                table: t,
                what: format!("INDEX {}", name.value),
            }),
            AlterTableOperation::RenameColumn {
                old_column_name,
                new_column_name,
            } => out.push(Action::RenameColumn {
                table: t,
                from: fold_ident(engine, old_column_name),
                to: fold_ident(engine, new_column_name),
            }),
            AlterTableOperation::RenameTable { table_name } => {
                let to = match table_name {
                    ast::RenameTableNameKind::As(n) | ast::RenameTableNameKind::To(n) => {
                        qname(engine, n)
                    }
                };
                out.push(Action::RenameTable { from: t, to })
            }
            AlterTableOperation::AlterColumn { column_name, op } => {
                let column = fold_ident(engine, column_name);
                out.push(match op {
                    AlterColumnOperation::SetNotNull => Action::SetNotNull { table: t, column },
                    AlterColumnOperation::DropNotNull => Action::DropNotNull { table: t, column },
                    AlterColumnOperation::SetDefault { value } => Action::SetDefault {
                        table: t,
                        column,
                        default: default_expr(value),
                    },
                    AlterColumnOperation::DropDefault => Action::DropDefault { table: t, column },
                    AlterColumnOperation::SetDataType {
                        data_type, using, ..
                    } => Action::AlterColumnType {
                        table: t,
                        column,
                        new_type: data_type.to_string(),
                        using: using.is_some(),
                        spec: None,
                    },
                    _ => Action::Other,
                });
            }
            AlterTableOperation::ModifyColumn {
                col_name,
                data_type,
                options,
                column_position,
            } => {
                let spec = column_spec_parts(
                    engine,
                    col_name,
                    data_type,
                    options.iter().cloned(),
                    column_position.is_some(),
                );
                out.push(Action::AlterColumnType {
                    table: t,
                    column: spec.name.clone(),
                    new_type: spec.data_type.clone(),
                    using: false,
                    spec: Some(spec),
                });
            }
            AlterTableOperation::ChangeColumn {
                old_name,
                new_name,
                data_type,
                options,
                column_position,
            } => {
                let spec = column_spec_parts(
                    engine,
                    new_name,
                    data_type,
                    options.iter().cloned(),
                    column_position.is_some(),
                );
                let from = fold_ident(engine, old_name);
                if from != spec.name {
                    out.push(Action::RenameColumn {
                        table: t.clone(),
                        from: from.clone(),
                        to: spec.name.clone(),
                    });
                }
                out.push(Action::AlterColumnType {
                    table: t,
                    column: from,
                    new_type: spec.data_type.clone(),
                    using: false,
                    spec: Some(spec),
                });
            }
            AlterTableOperation::DetachPartitionOf { mode, .. } => {
                out.push(Action::DetachPartition {
                    table: t,
                    concurrently: matches!(mode, Some(ast::DetachPartitionMode::Concurrently)),
                })
            }
            AlterTableOperation::AttachPartitionOf { partition, .. } => {
                out.push(Action::AttachPartition {
                    table: t,
                    partition: qname(engine, partition),
                })
            }
            AlterTableOperation::Algorithm { .. } | AlterTableOperation::Lock { .. } => {}
            _ => out.push(Action::Other),
        }
    }
    out.extend(mysql_options(engine, table, ops));
    out
}

fn column_spec(engine: EngineKind, c: &ast::ColumnDef) -> ColumnSpec {
    column_spec_parts(
        engine,
        &c.name,
        &c.data_type,
        c.options.iter().map(|o| o.option.clone()),
        false,
    )
}

fn column_spec_parts(
    engine: EngineKind,
    name: &ast::Ident,
    data_type: &DataType,
    options: impl Iterator<Item = ColumnOption>,
    positioned: bool,
) -> ColumnSpec {
    let type_text = data_type.to_string();
    let upper = type_text.to_uppercase();
    let mut spec = ColumnSpec {
        name: fold_ident(engine, name),
        serial: engine == EngineKind::Postgres
            && matches!(
                upper.as_str(),
                "SERIAL" | "BIGSERIAL" | "SMALLSERIAL" | "SERIAL4" | "SERIAL8" | "SERIAL2"
            ),
        data_type: type_text,
        positioned,
        ..Default::default()
    };
    for o in options {
        match o {
            ColumnOption::NotNull => spec.not_null = true,
            ColumnOption::Null => spec.not_null = false,
            ColumnOption::Default(e) => spec.default = Some(default_expr(&e)),
            ColumnOption::PrimaryKey(_) => {
                spec.primary_key = true;
                spec.not_null = true;
            }
            ColumnOption::Unique(_) => spec.unique = true,
            ColumnOption::ForeignKey(fk) => {
                spec.references = Some(qname(engine, &fk.foreign_table))
            }
            ColumnOption::Check(_) => spec.check = true,
            ColumnOption::Generated {
                generation_expr,
                generation_expr_mode,
                generated_as,
                ..
            } => {
                if generation_expr.is_some() {
                    if matches!(
                        generation_expr_mode,
                        Some(ast::GeneratedExpressionMode::Stored)
                    ) {
                        spec.generated_stored = true;
                    } else {
                        spec.generated_virtual = true;
                    }
                } else if !matches!(generated_as, ast::GeneratedAs::ExpStored) {
                    spec.identity = true;
                }
            }
            ColumnOption::Identity(_) => spec.identity = true,
            ColumnOption::DialectSpecific(tokens) => {
                let text: String = tokens
                    .iter()
                    .map(|t| t.to_string().to_uppercase())
                    .collect::<Vec<_>>()
                    .join(" ");
                if text.contains("AUTO_INCREMENT") || text.contains("AUTOINCREMENT") {
                    spec.auto_increment = true;
                }
            }
            _ => {}
        }
    }
    spec
}

fn constraint_spec(engine: EngineKind, tc: &TableConstraint, not_valid: bool) -> ConstraintSpec {
    let idents = |v: &[ast::Ident]| v.iter().map(|i| fold_ident(engine, i)).collect::<Vec<_>>();
    let index_cols = |v: &[ast::IndexColumn]| {
        v.iter()
            .map(|c| match (&c.column.expr, engine) {
                // A column's name as the server stores it (`"Wert"` is `Wert`, not `"wert"`;
                // MariaDB/MySQL: as written, like every other column name of the IR).
                (ast::Expr::Identifier(i), _) => fold_ident(engine, i),
                (e, _) => e.to_string().to_lowercase(),
            })
            .collect::<Vec<_>>()
    };
    let name = |n: &Option<ast::Ident>| n.as_ref().map(|i| fold_ident(engine, i));
    let base = |kind, name: Option<String>, columns| ConstraintSpec {
        name,
        kind,
        columns,
        not_valid,
        using_index: false,
        references: None,
        expr_columns: vec![],
        include: vec![],
    };
    match tc {
        TableConstraint::PrimaryKey(c) => ConstraintSpec {
            include: idents(&c.include),
            ..base(
                ConstraintKind::PrimaryKey,
                name(&c.name),
                index_cols(&c.columns),
            )
        },
        TableConstraint::Unique(c) => ConstraintSpec {
            include: idents(&c.include),
            ..base(
                ConstraintKind::Unique,
                name(&c.name),
                index_cols(&c.columns),
            )
        },
        TableConstraint::ForeignKey(c) => ConstraintSpec {
            references: Some(qname(engine, &c.foreign_table)),
            ..base(
                ConstraintKind::ForeignKey,
                name(&c.name),
                idents(&c.columns),
            )
        },
        TableConstraint::Check(c) => {
            let mut cols: Vec<String> = Vec::new();
            let _ = ast::visit_expressions(&c.expr, |e| {
                let col = match e {
                    ast::Expr::Identifier(i) => Some(fold_ident(engine, i)),
                    ast::Expr::CompoundIdentifier(v) => v.last().map(|i| fold_ident(engine, i)),
                    _ => None,
                };
                if let Some(col) = col.filter(|c| !cols.contains(c)) {
                    cols.push(col);
                }
                std::ops::ControlFlow::<()>::Continue(())
            });
            ConstraintSpec {
                expr_columns: cols,
                ..base(ConstraintKind::Check, name(&c.name), vec![])
            }
        }
        TableConstraint::Index(c) => {
            base(ConstraintKind::Index, name(&c.name), index_cols(&c.columns))
        }
        TableConstraint::FulltextOrSpatial(c) => base(
            ConstraintKind::FullText,
            name(&c.opt_index_name),
            index_cols(&c.columns),
        ),
        TableConstraint::PrimaryKeyUsingIndex(c) => ConstraintSpec {
            using_index: true,
            ..base(ConstraintKind::PrimaryKey, name(&c.name), vec![])
        },
        TableConstraint::UniqueUsingIndex(c) => ConstraintSpec {
            using_index: true,
            ..base(ConstraintKind::Unique, name(&c.name), vec![])
        },
        TableConstraint::Exclude(c) => base(ConstraintKind::Exclude, name(&c.name), vec![]),
    }
}

const VOLATILE_FUNCTIONS: &[&str] = &[
    "random",
    "random_normal",
    "gen_random_uuid",
    "uuid_generate_v1",
    "uuid_generate_v1mc",
    "uuid_generate_v4",
    "uuidv4",
    "uuidv7",
    "gen_random_bytes",
    "clock_timestamp",
    "timeofday",
    "nextval",
    "currval",
    "setval",
    "txid_current",
    "pg_current_xact_id",
    "uuid",
    "uuid_short",
    "rand",
    "sysdate",
    "newid",
];
const STABLE_FUNCTIONS: &[&str] = &[
    "now",
    "current_timestamp",
    "current_date",
    "current_time",
    "localtimestamp",
    "localtime",
    "transaction_timestamp",
    "statement_timestamp",
    "current_user",
    "session_user",
    "current_schema",
    "utc_timestamp",
    "utc_date",
    "curdate",
    "curtime",
];
const IMMUTABLE_FUNCTIONS: &[&str] = &[
    "md5",
    "lower",
    "upper",
    "concat",
    "coalesce",
    "abs",
    "round",
    "length",
    "substr",
    "substring",
    "trim",
    "btrim",
    "ltrim",
    "rtrim",
    "replace",
    "to_jsonb",
    "to_json",
    "jsonb_build_object",
    "json_build_object",
    "array",
    "greatest",
    "least",
    "nullif",
    "make_interval",
    "date_trunc",
    "int4",
    "int8",
    "sha256",
    "encode",
    "decode",
    "left",
    "right",
    "lpad",
    "rpad",
    "floor",
    "ceil",
    "ceiling",
    "mod",
    "power",
];

/// How often a default expression changes value: what decides between a catalog-only change and a rewrite.
pub fn volatility(e: &Expr) -> Volatility {
    let mut worst = Volatility::Constant;
    let _ = ast::visit_expressions(e, |x: &Expr| {
        let v = match x {
            Expr::Function(f) => {
                let name = f.name.to_string().to_lowercase();
                let base = name
                    .rsplit('.')
                    .next()
                    .unwrap_or(&name)
                    .trim_matches('"')
                    .to_string();
                if VOLATILE_FUNCTIONS.contains(&base.as_str()) {
                    Volatility::Volatile
                } else if STABLE_FUNCTIONS.contains(&base.as_str()) {
                    Volatility::Stable
                } else if IMMUTABLE_FUNCTIONS.contains(&base.as_str()) {
                    Volatility::Constant
                } else {
                    Volatility::Unknown
                }
            }
            // `CURRENT_TIMESTAMP` and friends without parentheses parse as identifiers.
            Expr::Identifier(i)
                if i.quote_style.is_none()
                    && STABLE_FUNCTIONS.contains(&i.value.to_lowercase().as_str()) =>
            {
                Volatility::Stable
            }
            Expr::Identifier(_) | Expr::CompoundIdentifier(_) => Volatility::Unknown,
            Expr::Subquery(_) | Expr::Exists { .. } => Volatility::Unknown,
            _ => Volatility::Constant,
        };
        worst = worst.max(v);
        std::ops::ControlFlow::<()>::Continue(())
    });
    worst
}

fn default_expr(e: &Expr) -> DefaultExpr {
    DefaultExpr {
        text: e.to_string(),
        volatility: volatility(e),
        parenthesized: matches!(e, Expr::Nested(_)),
    }
}

#[cfg(test)]
mod respell_tests {
    use super::*;

    fn actions(engine: EngineKind, sql: &str) -> Vec<Action> {
        let split = crate::sql::split(engine, sql).unwrap();
        match build(engine, 0, &split[0], 0, sql).parsed {
            Parsed::Actions(a) => a,
            Parsed::Unparsed { error } => panic!("{sql}: not parsed: {error}"),
        }
    }

    /// `CREATE TABLE … (LIKE p INCLUDING …)` names `p` as the table it reads, whatever its options.
    #[test]
    fn create_table_like_with_options_names_its_source() {
        for sql in [
            "CREATE TABLE n (LIKE p INCLUDING ALL)",
            "create unlogged table n (like p including defaults excluding indexes)",
            "CREATE TEMP TABLE n (LIKE s.p INCLUDING ALL EXCLUDING STATISTICS)",
        ] {
            let a = actions(EngineKind::Postgres, sql);
            let locks: Vec<String> = a
                .iter()
                .flat_map(|a| match a {
                    Action::CreateTable { locks, .. } => {
                        locks.iter().map(|q| q.name.clone()).collect()
                    }
                    _ => vec![],
                })
                .collect();
            assert_eq!(locks, ["p"], "{sql}: {a:?}");
        }
    }

    /// `DROP KEY` is `DROP INDEX` on MariaDB and MySQL, in any case and next to other clauses; a
    /// column named `key` (quoted) stays a column.
    #[test]
    fn drop_key_is_drop_index_on_mysql_family() {
        for engine in [EngineKind::MariaDb, EngineKind::MySql] {
            for (sql, want) in [
                ("ALTER TABLE t DROP KEY k", vec!["INDEX k"]),
                ("alter table t drop key k", vec!["INDEX k"]),
                (
                    "ALTER TABLE t DROP KEY k, ADD COLUMN c INT",
                    vec!["INDEX k"],
                ),
                (
                    "ALTER TABLE t DROP INDEX a, DROP KEY b",
                    vec!["INDEX a", "INDEX b"],
                ),
            ] {
                let got: Vec<String> = actions(engine, sql)
                    .into_iter()
                    .filter_map(|a| match a {
                        Action::DropKey { what, .. } => Some(what),
                        _ => None,
                    })
                    .collect();
                assert_eq!(got, want, "{engine:?}: {sql}");
            }
            let quoted = actions(engine, "ALTER TABLE t DROP `key`");
            assert!(
                matches!(&quoted[..], [Action::DropColumn { column, .. }] if column.eq_ignore_ascii_case("key")),
                "{engine:?}: {quoted:?}"
            );
        }
    }
}

#[cfg(test)]
mod fold_tests {
    use super::*;
    use EngineKind::{MariaDb, MySql, Postgres};

    fn ident(quote: Option<char>, v: &str) -> ast::Ident {
        match quote {
            Some(q) => ast::Ident::with_quote(q, v),
            None => ast::Ident::new(v),
        }
    }

    #[test]
    fn unquoted_names_fold_as_each_engine_stores_them() {
        // (engine, quote, as written, name the server stores)
        let cases = [
            (Postgres, None, "Orders", "orders"),
            (Postgres, None, "ÄB", "Äb"),
            (Postgres, Some('"'), "Orders", "Orders"),
            (MariaDb, None, "Orders", "Orders"),
            (MariaDb, Some('`'), "Orders", "Orders"),
            (MySql, None, "PurchaseOrders", "PurchaseOrders"),
            (MySql, Some('`'), "orders", "orders"),
            (MariaDb, None, "ÄB", "ÄB"),
        ];
        for (engine, q, written, stored) in cases {
            assert_eq!(
                fold_ident(engine, &ident(q, written)),
                stored,
                "{engine:?} {q:?} {written}"
            );
        }
        let n = ObjectName::from(vec![ident(None, "Shop"), ident(None, "Orders")]);
        assert_eq!(
            qname(MariaDb, &n),
            QName {
                schema: Some("Shop".into()),
                name: "Orders".into()
            }
        );
        assert_eq!(qname(Postgres, &n).display(), "shop.orders");
    }

    #[test]
    fn table_names_compare_as_lower_case_table_names_says_columns_never_by_case() {
        // (engine, server folds table names (lower_case_table_names <> 0), a, b, same table)
        let tables = [
            (MariaDb, false, "Orders", "Orders", true),
            (MariaDb, false, "Orders", "orders", false),
            (MySql, false, "Orders", "ORDERS", false),
            (MariaDb, true, "Orders", "orders", true),
            (MySql, true, "Orders", "ORDERS", true),
            (MariaDb, true, "Orders", "Order", false),
            (Postgres, false, "Orders", "orders", false),
            (Postgres, true, "Orders", "orders", false),
        ];
        for (engine, folds, a, b, same) in tables {
            assert_eq!(
                same_table(engine, folds, a, b),
                same,
                "{engine:?} {folds} {a} {b}"
            );
        }
        let columns = [
            (MariaDb, "Note", "note", true),
            (MySql, "NOTE", "Note", true),
            (MariaDb, "Note", "Notes", false),
            (Postgres, "Note", "note", false),
            (Postgres, "note", "note", true),
        ];
        for (engine, a, b, same) in columns {
            assert_eq!(same_column(engine, a, b), same, "{engine:?} {a} {b}");
        }
    }
}
