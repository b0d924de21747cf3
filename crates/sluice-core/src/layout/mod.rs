//! Other migration tools' directory layouts, read in place: a team keeps its files as its tool wrote
//! them and sluice builds the same `Migration` from them, so lint, plan, up, down and rehearse run
//! unchanged. One file per tool says how its files are named, ordered and split into parts.
//!
//! Each layout keeps its tool's order. The history keys migrations by an integer (`Migration::version`):
//! the version's digits where the tool orders versions as numbers; where it orders them as text
//! (diesel, dbmate), the version's rank in text order (`text_key`), so the integers order as the
//! text does.

mod dbmate;
mod diesel;
pub mod flyway;
mod goose;
mod migrate;
mod sluice;
mod sqlx;

use crate::error::{Error, Result};
use crate::migration::{self, Ignore, Migration, Part, SourceFile};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Layout {
    /// `<version>_<name>.sql` with `-- sluice:up` / `-- sluice:down`.
    Sluice,
    /// `<version>_<name>/up.sql`, `down.sql`, `metadata.toml`.
    Diesel,
    /// `<version>_<name>.sql` (up only) or `.up.sql` / `.down.sql`; `-- no-transaction`.
    Sqlx,
    /// `<version>_<name>.up.sql` / `.down.sql`.
    GolangMigrate,
    /// `<version>_<name>.sql` with `-- migrate:up` / `-- migrate:down`.
    Dbmate,
    /// `<version>_<name>.sql` with `-- +goose Up` / `-- +goose Down`.
    Goose,
    /// `V<version>__<description>.sql`, undo `U<version>__<description>.sql`.
    Flyway,
}

impl Layout {
    pub const ALL: [Layout; 7] = [
        Layout::Sluice,
        Layout::Diesel,
        Layout::Sqlx,
        Layout::GolangMigrate,
        Layout::Dbmate,
        Layout::Goose,
        Layout::Flyway,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Layout::Sluice => "sluice",
            Layout::Diesel => "diesel",
            Layout::Sqlx => "sqlx",
            Layout::GolangMigrate => "golang-migrate",
            Layout::Dbmate => "dbmate",
            Layout::Goose => "goose",
            Layout::Flyway => "flyway",
        }
    }

    pub fn parse(s: &str) -> std::result::Result<Layout, String> {
        Layout::ALL
            .into_iter()
            .find(|l| l.name() == s.trim())
            .ok_or_else(|| {
                format!(
                    "unknown layout `{s}`; known layouts: {}",
                    Layout::ALL.map(|l| l.name()).join(", ")
                )
            })
    }

    /// True when the tool orders versions as text (diesel, dbmate) rather than as numbers.
    fn orders_as_text(self) -> bool {
        matches!(self, Layout::Diesel | Layout::Dbmate)
    }
}

impl std::fmt::Display for Layout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The SQL dialect a per-dialect variant file is written for (`.postgres.sql`, `.mysql.sql`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Postgres,
    /// MariaDB and MySQL.
    Mysql,
}

impl Dialect {
    pub fn name(self) -> &'static str {
        match self {
            Dialect::Postgres => "postgres",
            Dialect::Mysql => "mysql",
        }
    }

    pub fn of(engine: crate::target::EngineKind) -> Dialect {
        match engine {
            crate::target::EngineKind::Postgres => Dialect::Postgres,
            crate::target::EngineKind::MariaDb | crate::target::EngineKind::MySql => Dialect::Mysql,
        }
    }
}

/// One migration found on disk, its files not read yet (so `lint` can stream through many).
#[derive(Debug, Clone)]
pub struct Entry {
    pub layout: Layout,
    /// The version as written in the name.
    pub version_text: String,
    /// The history key.
    pub version: i64,
    pub name: String,
    /// The file holding the up part (for diesel, `up.sql`).
    pub up: PathBuf,
    /// The file holding the down part, in layouts that keep it apart.
    pub down: Option<PathBuf>,
    /// Another file that changes how the migration runs (diesel's `metadata.toml`).
    pub meta: Option<PathBuf>,
    /// How the tool orders it (the version text for text-ordered layouts).
    order: String,
    /// Only other engines' variants exist: a no-op on this engine.
    noop: bool,
}

/// The history key of a repeatable migration: a negative number derived from its name, so it never
/// meets a versioned key (all at least 0) and stays the same whatever other files exist. Repeatables
/// are ordered by name, not by key.
pub fn repeatable_key(name: &str) -> i64 {
    let d = Sha256::digest(name.as_bytes());
    let n = u64::from_be_bytes(d[..8].try_into().expect("8 bytes")) >> 2;
    -1 - i64::try_from(n).expect("62 bits fit")
}

/// True for the key of a repeatable migration (see [`repeatable_key`]).
pub fn is_repeatable_key(version: i64) -> bool {
    version < 0
}

impl Entry {
    fn new(layout: Layout, version_text: &str, name: &str, up: PathBuf) -> Result<Entry> {
        let digits: String = version_text.chars().filter(|c| *c != '-').collect();
        let key = if layout.orders_as_text() {
            text_key(&digits)
        } else {
            version_key(&digits)
        };
        let version = key.map_err(|m| Error::MigrationFile {
            path: up.clone(),
            line: None,
            message: format!("malformed migration file name: {m}"),
            help: format!("name it as {} does: {}", layout.name(), example(layout)),
        })?;
        Ok(Entry {
            layout,
            version_text: version_text.to_string(),
            version,
            name: name.to_string(),
            up,
            down: None,
            meta: None,
            order: digits,
            noop: false,
        })
    }

    /// An entry whose key the layout computed itself (Flyway's dotted versions).
    fn new_keyed(
        layout: Layout,
        version_text: &str,
        version: i64,
        name: &str,
        up: PathBuf,
    ) -> Entry {
        Entry {
            layout,
            version_text: version_text.to_string(),
            version,
            name: name.to_string(),
            up,
            down: None,
            meta: None,
            order: String::new(),
            noop: false,
        }
    }

    /// A repeatable migration: `prefix` is how its file name starts (`R__` for Flyway, `R_` for
    /// sluice), `name` the rest without `.sql`; `order` is what the tool orders repeatables by.
    fn repeatable(layout: Layout, prefix: &str, name: &str, order: String, up: PathBuf) -> Entry {
        Entry {
            layout,
            // The label (`<version_text>_<name>`) then spells the file name.
            version_text: prefix.strip_suffix('_').unwrap_or(prefix).to_string(),
            version: repeatable_key(name),
            name: name.to_string(),
            up,
            down: None,
            meta: None,
            order,
            noop: false,
        }
    }

    pub fn is_repeatable(&self) -> bool {
        is_repeatable_key(self.version)
    }

    /// The path that names the migration in messages: the directory for diesel, else the up file.
    pub fn path(&self) -> &Path {
        match self.layout {
            Layout::Diesel => self.up.parent().unwrap_or(&self.up),
            _ => &self.up,
        }
    }
}

fn example(layout: Layout) -> &'static str {
    match layout {
        Layout::Sluice => "20261125093000_add_users.sql",
        Layout::Diesel => "2026-11-25-093000_add_users/up.sql",
        Layout::Sqlx => "20261125093000_add_users.sql or 20261125093000_add_users.up.sql",
        Layout::GolangMigrate => "000001_add_users.up.sql and 000001_add_users.down.sql",
        Layout::Dbmate => "20261125093000_add_users.sql",
        Layout::Goose => "20261125093000_add_users.sql or 00001_add_users.sql",
        Layout::Flyway => "V1.2__add_users.sql, undone by U1.2__add_users.sql",
    }
}

/// The history key of a version's digits: at most 18, so it always fits a BIGINT.
fn version_key(digits: &str) -> std::result::Result<i64, String> {
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("the version `{digits}` must be digits"));
    }
    digits
        .parse()
        .ok()
        .filter(|_| digits.len() <= 18)
        .ok_or_else(|| {
            format!("the version `{digits}` is too large (sluice records at most 18 digits)")
        })
}

/// The history key of a text-ordered version (diesel, dbmate): its rank among all digit strings of
/// at most 18 digits in text order, so comparing keys as numbers compares the versions as text, and
/// distinct versions get distinct keys (crates.io has both `2026-05-27-120000` and
/// `2026-05-27-120000-0000`, which diesel tells apart). A string's rank counts the strings before it:
/// at each position, the prefix so far and every string with a smaller digit there.
pub fn text_key(digits: &str) -> std::result::Result<i64, String> {
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("the version `{digits}` must be digits"));
    }
    if digits.len() > 18 {
        return Err(format!(
            "the version `{digits}` is too large (sluice records at most 18 digits)"
        ));
    }
    // Strings of at most m digits, the empty one included.
    let upto = |m: u32| (10u128.pow(m + 1) - 1) / 9;
    let rank: u128 = digits
        .bytes()
        .enumerate()
        .map(|(i, b)| 1 + u128::from(b - b'0') * upto(17 - i as u32))
        .sum();
    Ok(i64::try_from(rank).expect("below 1.2e18"))
}

/// The version text a history key stands for (for rows whose file is gone): the inverse of the
/// layout's key. diesel's `-` are not in the key, so its versions come back as digits only.
pub fn version_text_of(layout: Layout, key: i64) -> String {
    if is_repeatable_key(key) {
        return if layout == Layout::Flyway { "R_" } else { "R" }.to_string();
    }
    let decoded = match layout {
        Layout::Flyway => flyway::version_text(key),
        Layout::Diesel | Layout::Dbmate => text_of_key(key),
        _ => None,
    };
    decoded.unwrap_or_else(|| key.to_string())
}

/// How output names a history row without its file: `<version>_<name>` with the version as the
/// layout writes it (when known: Flyway's `2.10.2`, not its history key), and a repeatable by its
/// file name's shape (`R_views`, Flyway's `R__views`), never by its internal negative key.
pub fn history_label(layout: Option<Layout>, key: i64, name: &str) -> String {
    match layout {
        Some(l) => format!("{}_{name}", version_text_of(l, key)),
        None if is_repeatable_key(key) => {
            format!("{}_{name}", version_text_of(Layout::Sluice, key))
        }
        None => format!("{key}_{name}"),
    }
}

/// The inverse of `text_key`.
fn text_of_key(key: i64) -> Option<String> {
    let upto = |m: u32| (10u128.pow(m + 1) - 1) / 9;
    let mut r = u128::try_from(key).ok()?;
    let mut out = String::new();
    let mut i = 0;
    while r > 0 && i < 18 {
        r -= 1;
        let d = r / upto(17 - i);
        r -= d * upto(17 - i);
        out.push(char::from(b'0' + u8::try_from(d).ok().filter(|d| *d < 10)?));
        i += 1;
    }
    (r == 0 && !out.is_empty()).then_some(out)
}

/// The history key of a version as a user writes it (`--to`): the same key its file gets.
pub fn key_of(layout: Layout, text: &str) -> std::result::Result<i64, String> {
    let text = text.trim();
    if text == "0" {
        return Ok(0);
    }
    match layout {
        Layout::Flyway => flyway::version_key(text),
        Layout::Diesel | Layout::Dbmate => {
            text_key(&text.chars().filter(|c| *c != '-').collect::<String>())
        }
        _ => version_key(text),
    }
}

/// The layout of `dir`: the configured one, else the one its files show. Only unambiguous evidence
/// counts; a directory with no foreign evidence is sluice's own (whose marker-less files read as
/// sqlx's simple ones do).
pub fn resolve(dir: &Path, configured: Option<Layout>) -> Result<Layout> {
    match configured {
        Some(l) => Ok(l),
        None => detect(dir),
    }
}

pub fn detect(dir: &Path) -> Result<Layout> {
    let mut definite: Vec<(Layout, PathBuf)> = Vec::new();
    let mut up_down: Option<PathBuf> = None;
    let note = |l: Layout, p: &Path, definite: &mut Vec<(Layout, PathBuf)>| {
        if !definite.iter().any(|(k, _)| *k == l) {
            definite.push((l, p.to_path_buf()));
        }
    };
    for entry in read_dir(dir)? {
        let (path, name) = entry;
        if path.is_dir() {
            if path.join("up.sql").is_file() {
                note(Layout::Diesel, &path, &mut definite);
            }
            continue;
        }
        let lower = name.to_lowercase();
        if !lower.ends_with(".sql") || !path.is_file() {
            continue;
        }
        let flyway_name = |p: char| {
            name.strip_prefix(p).is_some_and(|r| {
                r.contains("__") && (p == 'R' || r.starts_with(|c: char| c.is_ascii_digit()))
            })
        };
        if flyway_name('V') || flyway_name('U') || flyway_name('R') {
            note(Layout::Flyway, &path, &mut definite);
        }
        if lower.ends_with(".up.sql") || lower.ends_with(".down.sql") {
            up_down.get_or_insert(path.clone());
        }
        let text = read(&path)?;
        if text.starts_with(sqlx::NO_TX) {
            note(Layout::Sqlx, &path, &mut definite);
        }
        for line in text.lines() {
            let t = line.trim();
            if dbmate::marker(t).is_some() {
                note(Layout::Dbmate, &path, &mut definite);
            } else if t.starts_with(goose::PREFIX) {
                note(Layout::Goose, &path, &mut definite);
            } else if let Some(d) = t.strip_prefix("-- sluice:") {
                // `-- sluice:ignore` is read in every layout, so it shows none.
                if !d.starts_with("ignore") {
                    note(Layout::Sluice, &path, &mut definite);
                }
            }
        }
    }
    if let Some(p) = &up_down {
        if !definite.iter().any(|(l, _)| *l == Layout::Sqlx) {
            definite.push((Layout::Sqlx, p.clone()));
            definite.push((Layout::GolangMigrate, p.clone()));
        }
    }
    match definite.len() {
        0 => Ok(Layout::Sluice),
        1 => Ok(definite[0].0),
        _ => {
            let shown = definite
                .iter()
                .map(|(l, p)| format!("{l} ({})", p.display()))
                .collect::<Vec<_>>()
                .join(", ");
            Err(Error::usage(
                format!(
                    "cannot tell which tool's layout {} follows: it could be {shown}",
                    dir.display()
                ),
                "set `layout = \"...\"` in sluice.toml to the tool that wrote these files (sluice, diesel, sqlx, golang-migrate, dbmate, goose, flyway)",
            ))
        }
    }
}

/// Non-hidden entries of `dir` with their names.
fn read_dir(dir: &Path) -> Result<Vec<(PathBuf, String)>> {
    let entries = std::fs::read_dir(dir).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            Error::usage(
                format!("migrations directory {} does not exist", dir.display()),
                "run `sluice init` to create it, or point --migrations-dir (or migrations_dir in sluice.toml) at yours",
            )
        } else {
            Error::io(format!("reading {}", dir.display()), e)
        }
    })?;
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(format!("reading {}", dir.display()), e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.starts_with('.') {
            out.push((entry.path(), name));
        }
    }
    out.sort();
    Ok(out)
}

/// Reads a file as UTF-8 with CRLF normalised to LF, refusing oversized ones.
pub(crate) fn read(path: &Path) -> Result<String> {
    let len = std::fs::metadata(path)
        .map_err(|e| Error::io(format!("reading {}", path.display()), e))?
        .len();
    if len > migration::MAX_FILE_BYTES {
        return Err(Error::MigrationFile {
            path: path.to_path_buf(),
            line: None,
            message: format!(
                "the file is {} MiB; sluice reads migration files up to {} MiB",
                len / (1024 * 1024),
                migration::MAX_FILE_BYTES / (1024 * 1024)
            ),
            help: "load bulk data with COPY / LOAD DATA or `sluice backfill`, and keep the migration to the schema change".into(),
        });
    }
    let raw =
        std::fs::read(path).map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
    let text = String::from_utf8(raw).map_err(|_| Error::MigrationFile {
        path: path.to_path_buf(),
        line: None,
        message: "the file is not valid UTF-8".into(),
        help: "save the migration as UTF-8".into(),
    })?;
    Ok(text.replace("\r\n", "\n"))
}

/// The migrations of `dir` in the layout's order, names and order checked, contents not read yet.
/// `dialect` picks per-dialect variants in sluice's layout (None: only generic files are read).
pub fn entries(dir: &Path, layout: Layout, dialect: Option<Dialect>) -> Result<Vec<Entry>> {
    let found = match layout {
        Layout::Sluice => sluice::entries(&read_dir(dir)?, dialect)?,
        Layout::Diesel => diesel::entries(&read_dir(dir)?)?,
        Layout::Sqlx => sqlx::entries(&read_dir(dir)?)?,
        Layout::GolangMigrate => migrate::entries(&read_dir(dir)?)?,
        Layout::Dbmate | Layout::Goose => single_file_entries(layout, &read_dir(dir)?)?,
        Layout::Flyway => flyway::entries(&read_dir(dir)?)?,
    };
    // Repeatables come after every versioned migration, in their own order (see `repeatables`).
    let (mut repeatable, mut found): (Vec<Entry>, Vec<Entry>) =
        found.into_iter().partition(Entry::is_repeatable);
    if layout.orders_as_text() {
        found.sort_by(|a, b| (&a.order, &a.name).cmp(&(&b.order, &b.name)));
    } else {
        found.sort_by(|a, b| (a.version, &a.name).cmp(&(b.version, &b.name)));
    }
    for w in found.windows(2) {
        let (a, b) = (&w[0], &w[1]);
        if a.version == b.version {
            return Err(Error::MigrationFile {
                path: b.path().to_path_buf(),
                line: None,
                message: format!(
                    "version {} is also used by {}",
                    b.version_text,
                    a.path().display()
                ),
                help: "every migration needs its own version: rename one of them".into(),
            });
        }
        if a.version > b.version {
            return Err(Error::MigrationFile {
                path: b.path().to_path_buf(),
                line: None,
                message: format!(
                    "version `{}` comes after `{}` in {}'s order but not in sluice's",
                    b.version_text,
                    a.version_text,
                    layout.name()
                ),
                help: "report this to sluice with the two names; rename one so the versions differ in their digits".into(),
            });
        }
    }
    repeatables(&mut repeatable)?;
    found.extend(repeatable);
    Ok(found)
}

/// Orders repeatable migrations as their tool does (by `Entry::order`, compared as Java compares
/// strings: by UTF-16 code unit) and refuses two of the same name, which would share a history row.
fn repeatables(list: &mut [Entry]) -> Result<()> {
    let units = |e: &Entry| e.order.encode_utf16().collect::<Vec<u16>>();
    list.sort_by_key(|e| (units(e), e.name.clone()));
    for w in list.windows(2) {
        let (a, b) = (&w[0], &w[1]);
        if a.version == b.version || a.order == b.order {
            return Err(Error::MigrationFile {
                path: b.path().to_path_buf(),
                line: None,
                message: format!(
                    "repeatable migration `{}` has the same description as {}",
                    b.name,
                    a.path().display()
                ),
                help: "every repeatable migration needs its own description (its identity in the history): rename one of them".into(),
            });
        }
    }
    Ok(())
}

/// `<digits>_<name>.sql` files (dbmate, goose); other `.sql` names are errors, other files ignored.
fn single_file_entries(layout: Layout, listing: &[(PathBuf, String)]) -> Result<Vec<Entry>> {
    let mut out = Vec::new();
    for (path, file) in listing {
        if path.is_dir() {
            continue;
        }
        if layout == Layout::Goose
            && file.ends_with(".go")
            && file.starts_with(|c: char| c.is_ascii_digit())
        {
            return Err(Error::MigrationFile {
                path: path.clone(),
                line: None,
                message: "a goose Go migration: sluice runs SQL migrations only".into(),
                help: "write it as a `.sql` migration, or apply it with goose".into(),
            });
        }
        if !file.to_lowercase().ends_with(".sql") {
            continue;
        }
        let (version, name) = split_name(layout, path, file, ".sql")?;
        out.push(Entry::new(layout, version, name, path.clone())?);
    }
    Ok(out)
}

/// Splits `<digits>_<name><suffix>`, or explains what is wrong with the name.
fn split_name<'a>(
    layout: Layout,
    path: &Path,
    file: &'a str,
    suffix: &str,
) -> Result<(&'a str, &'a str)> {
    let bad = |m: String| Error::MigrationFile {
        path: path.to_path_buf(),
        line: None,
        message: format!("malformed migration file name: {m}"),
        help: format!(
            "this directory is read as {}: name it like {}, or set `layout` in sluice.toml",
            layout.name(),
            example(layout)
        ),
    };
    let stem = file
        .strip_suffix(suffix)
        .ok_or_else(|| bad(format!("`{file}` must end in `{suffix}`, in lowercase")))?;
    let (version, name) = stem
        .split_once('_')
        .ok_or_else(|| bad(format!("`{file}` is not <version>_<name>{suffix}")))?;
    if name.is_empty() {
        return Err(bad(format!("`{file}` has no name after the version")));
    }
    let ok = |c: char| c.is_ascii_digit() || (layout == Layout::Diesel && c == '-');
    if version.is_empty()
        || !version.chars().all(ok)
        || !version.starts_with(|c: char| c.is_ascii_digit())
    {
        return Err(bad(format!("the version `{version}` must be digits")));
    }
    Ok((version, name))
}

/// The migration that `file` belongs to, when it lies in the migrations directory `dir` (or, for
/// diesel, in one of its migration directories) and that directory follows another tool's layout:
/// `lint` on one changed file then reads it as that tool does (a dbmate file's down part stays the
/// down part). None for sluice's layout and for files elsewhere, which are read as sluice files.
pub fn entry_of_file(
    dir: &Path,
    configured: Option<Layout>,
    dialect: Dialect,
    file: &Path,
) -> Result<Option<Entry>> {
    let canon = |p: &Path| std::fs::canonicalize(p).ok();
    let (Some(dir_c), Some(file_c)) = (canon(dir), canon(file)) else {
        return Ok(None);
    };
    let parent = file_c.parent();
    let in_dir =
        parent == Some(dir_c.as_path()) || parent.and_then(Path::parent) == Some(dir_c.as_path());
    if !in_dir {
        return Ok(None);
    }
    let layout = resolve(dir, configured)?;
    if layout == Layout::Sluice {
        return Ok(None);
    }
    let found = entries(dir, layout, Some(dialect))?.into_iter().find(|e| {
        [Some(&e.up), e.down.as_ref(), e.meta.as_ref()]
            .into_iter()
            .flatten()
            .any(|p| canon(p).as_deref() == Some(file_c.as_path()))
    });
    Ok(found)
}

/// Reads the files of one entry and builds its migration.
pub fn load(e: &Entry) -> Result<Migration> {
    match e.layout {
        Layout::Sluice if e.noop => {
            // Another engine's variant only: the same version, nothing to run here.
            let mut m = migration::parse_text(
                &e.up,
                e.version,
                e.name.clone(),
                "-- sluice:up\n-- sluice:down\n",
            )?;
            m.text = String::new();
            m.up.offset = 0;
            m.up.sql = String::new();
            if let Some(d) = m.down.as_mut() {
                d.offset = 0;
                d.sql = String::new();
            }
            m.checksum = migration::checksum("");
            if e.is_repeatable() {
                m.version_text = e.version_text.clone();
                m.down = None;
                m.irreversible = Some(migration::Irreversible::Missing(REPEATABLE_DOWN.into()));
            }
            Ok(m)
        }
        // A variant's file name carries its dialect: the entry has the version and name.
        Layout::Sluice if e.is_repeatable() => {
            let mut m = migration::parse_text(&e.up, e.version, e.name.clone(), &read(&e.up)?)?;
            if m.down.is_some()
                || matches!(m.irreversible, Some(migration::Irreversible::Marked { .. }))
            {
                return Err(Error::MigrationFile {
                    path: e.up.clone(),
                    line: None,
                    message: "a repeatable migration has a `-- sluice:down` part".into(),
                    help: "`sluice down` never undoes a repeatable migration: remove the down part (write what undoes it into a versioned migration)".into(),
                });
            }
            m.irreversible = Some(migration::Irreversible::Missing(REPEATABLE_DOWN.into()));
            m.version_text = e.version_text.clone();
            Ok(m)
        }
        Layout::Sluice => migration::parse_text(&e.up, e.version, e.name.clone(), &read(&e.up)?),
        Layout::Diesel => diesel::load(e),
        Layout::Sqlx => sqlx::load(e),
        Layout::GolangMigrate => migrate::load(e),
        Layout::Dbmate => dbmate::load(e),
        Layout::Goose => goose::load(e),
        Layout::Flyway => flyway::load(e),
    }
}

/// Every migration of `dir` in the layout's order (the configured layout, else the detected one).
pub fn discover(
    dir: &Path,
    configured: Option<Layout>,
    dialect: Option<Dialect>,
) -> Result<(Layout, Vec<Migration>)> {
    let layout = resolve(dir, configured)?;
    let list = entries(dir, layout, dialect)?;
    let migrations = list.iter().map(load).collect::<Result<Vec<_>>>()?;
    Ok((layout, migrations))
}

/// SHA-256 over every file of a migration, each with its role, so an edit to any of them (down.sql,
/// metadata.toml) is a checksum change. A one-file migration keeps the checksum of its text.
fn checksum_files(files: &[(&str, &str)]) -> String {
    if let [(_, text)] = files {
        return migration::checksum(text);
    }
    let mut h = Sha256::new();
    for (role, text) in files {
        let text = text.replace("\r\n", "\n");
        h.update(format!("{role}\n{}\n", text.len()).as_bytes());
        h.update(text.as_bytes());
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// A part that is a whole file.
fn whole(text: &str, file: usize, tx: Option<crate::migration::TxMode>) -> Part {
    Part {
        sql: text.to_string(),
        offset: 0,
        tx_directive: tx,
        file,
    }
}

/// `-- sluice:ignore` lines of a file in another tool's layout (lint suppressions work everywhere);
/// any other `-- sluice:` directive, or a near miss of one, is an error: in this layout the tool's
/// own markers decide the parts.
fn sluice_ignores(layout: Layout, path: &Path, text: &str, file: usize) -> Result<Vec<Ignore>> {
    let mut out = Vec::new();
    let mut offset = 0;
    for (i, line) in text.split_inclusive('\n').enumerate() {
        let start = offset;
        offset += line.len();
        let t = line.trim();
        let lineno = i + 1;
        if let Some(d) = t
            .strip_prefix("-- sluice:")
            .filter(|d| !d.starts_with(char::is_whitespace))
        {
            let mut words = d.split_whitespace();
            if words.next() == Some("ignore") {
                let rule = words.next().unwrap_or("").to_string();
                let reason = words.collect::<Vec<_>>().join(" ");
                if rule.is_empty() || reason.is_empty() {
                    return Err(line_err(path, lineno, "`-- sluice:ignore` needs a rule id and a reason".into(),
                        "write `-- sluice:ignore <rule-id> <why this is safe here>` on the line before the statement"));
                }
                out.push(Ignore {
                    rule,
                    reason,
                    line: lineno,
                    offset: start,
                    file,
                });
                continue;
            }
            return Err(line_err(
                path,
                lineno,
                format!("`{t}` has no meaning in a {} migration", layout.name()),
                "in this layout the tool's own markers and options decide the parts and transactions; sluice reads only `-- sluice:ignore <rule-id> <reason>` here",
            ));
        }
        if let Some(found) = migration::near_miss(line) {
            return Err(line_err(
                path,
                lineno,
                format!("`{found}` looks like a sluice directive but is not one"),
                "write `-- sluice:ignore <rule-id> <reason>` exactly, or do not start an ordinary comment with `sluice`",
            ));
        }
    }
    Ok(out)
}

fn line_err(path: &Path, line: usize, message: String, help: &str) -> Error {
    Error::MigrationFile {
        path: path.to_path_buf(),
        line: Some(line),
        message: format!("line {line}: {message}"),
        help: help.to_string(),
    }
}

/// A comment on `line` naming `keyword` and one of `words` (or written with a `:`) without being the
/// exact directive: `--migrate:up` spelled `-- Migrate: up`, `-- +goose up` spelled `--+goose Up`.
/// The caller has already accepted the exact forms.
fn near_miss_of(line: &str, keyword: &str, words: &[&str]) -> Option<String> {
    let lower = line.to_lowercase();
    // Every comment start on the line: a marker after SQL (`SELECT 1; -- migrate:down`) is a
    // comment to the tool, and must not be one silently here either.
    let starts = lower.char_indices().filter(|(i, c)| {
        *c == '#' || lower[*i..].starts_with("--") || lower[*i..].starts_with("/*")
    });
    for (i, _) in starts {
        // Whatever a reader skips over before the first word (`-- ; migrate:down`, `--+goose`).
        let rest = lower[i..].trim_start_matches(|c: char| !c.is_alphanumeric());
        let Some(after) = rest.strip_prefix(keyword) else {
            continue;
        };
        let sep_len = after
            .find(|c: char| c.is_alphanumeric())
            .unwrap_or(after.len());
        let (sep, word) = after.split_at(sep_len);
        let names = words.iter().any(|w| {
            word.strip_prefix(w)
                .is_some_and(|r| !r.starts_with(|c: char| c.is_alphanumeric()))
        });
        if sep.contains(':') || names {
            return Some(line.trim().chars().take(80).collect());
        }
    }
    None
}

/// What a repeatable migration lacks for `down` (it is never undone).
const REPEATABLE_DOWN: &str =
    "down part: it is a repeatable migration, which `sluice down` never undoes";

/// Builds the migration of an entry from its parts.
#[allow(clippy::too_many_arguments)]
fn build(
    e: &Entry,
    up_text: String,
    more: Vec<SourceFile>,
    checksum: String,
    up: Part,
    down: Option<Part>,
    missing_down: &str,
    ignores: Vec<Ignore>,
) -> Migration {
    let irreversible = down.is_none().then(|| {
        migration::Irreversible::Missing(if e.is_repeatable() {
            REPEATABLE_DOWN.to_string()
        } else {
            missing_down.to_string()
        })
    });
    Migration {
        version: e.version,
        version_text: e.version_text.clone(),
        name: e.name.clone(),
        path: e.up.clone(),
        text: up_text,
        more_files: more,
        checksum,
        up,
        down,
        irreversible,
        ignores,
    }
}

#[cfg(test)]
mod tests;
