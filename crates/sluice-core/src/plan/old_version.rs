//! What the application version still running sees that the new version did not write (issue 14:
//! a non-invertible change is stated in `plan` with what the old version will see, never
//! silently). `plan` turns each statement made here into a finding [`RULE`] on the statement:
//!
//! - a kept type change (PostgreSQL): both versions use the column under its new type while
//!   expanded, so the old version's writes go through the cast old → new, and what the new version
//!   writes reaches the old version as the new type and the kept old column through the cast
//!   back. Each cast is judged per pair of types ([`losses`]); a pair that loses nothing either way
//!   is stated nowhere, a pair sluice has no model of is stated as such (never silence);
//! - a drop column (both engines): the old version reads, for the rows the new version inserts, a
//!   value nobody wrote (NULL, the default, the default sluice gives);
//! - a NOT NULL, UNIQUE or CHECK added to a live table (one phase: the old version still writes
//!   when it takes effect): the old version's writes that break it fail.
//!
//! Renames (of a column or a table) and a MariaDB DROP TABLE behind a view lose nothing: the old
//! version reads and writes the same values under the old name, and nothing is stated.

use super::alter_column_type::{parse_type, SqlType};

/// The finding id (a `plan` finding: lint cannot see the live types; `-- sluice:ignore` works).
pub const RULE: &str = "old-version-sees";

/// Why it matters, for the finding.
pub const WHY: &str = "during a rolling deploy the application version still running reads and writes the table while the change is open: where its values do not come back as written (or its writes fail), it should be known before the deploy, not found in the data";

/// One way a cast changes or refuses a value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Loss {
    /// Values the target type cannot take (an assignment of one fails): the values, in words.
    Refused(String),
    /// Values taken but changed: the whole statement (`a value with more than 2 decimal places is
    /// rounded to 2`).
    Changed(String),
}

/// A PostgreSQL type, narrowed to what the judgement needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Integer of this many bytes.
    Int(u8),
    /// Numeric with (precision, scale), None: unconstrained.
    Numeric(Option<(u32, u32)>),
    Float4,
    Float8,
    /// varchar(n) (None: no limit) or text.
    Varchar(Option<u32>),
    /// character(n).
    Bpchar(u32),
    /// timestamp / timestamptz with fractional digits (6 when not given).
    Timestamp {
        tz: bool,
        digits: u32,
    },
    Date,
    Json,
    Jsonb,
    Other,
}

fn kind(t: &SqlType) -> Kind {
    if t.array {
        return Kind::Other;
    }
    let first = t.args.first().copied();
    match t.base.as_str() {
        "int2" | "smallserial" => Kind::Int(2),
        "int4" | "serial" => Kind::Int(4),
        "int8" | "bigserial" => Kind::Int(8),
        "numeric" => Kind::Numeric(match t.args.as_slice() {
            [p, s, ..] => Some((*p, *s)),
            [p] => Some((*p, 0)),
            [] => None,
        }),
        "real" | "float4" => Kind::Float4,
        "double precision" | "float8" => Kind::Float8,
        // float(p): single precision up to 24 bits of mantissa (the server's rule).
        "float" => match first {
            Some(p) if p <= 24 => Kind::Float4,
            _ => Kind::Float8,
        },
        "varchar" => Kind::Varchar(first),
        "text" => Kind::Varchar(None),
        "bpchar" => Kind::Bpchar(first.unwrap_or(1)),
        "timestamp" => Kind::Timestamp {
            tz: false,
            digits: first.unwrap_or(6),
        },
        "timestamptz" => Kind::Timestamp {
            tz: true,
            digits: first.unwrap_or(6),
        },
        "date" => Kind::Date,
        "json" => Kind::Json,
        "jsonb" => Kind::Jsonb,
        _ => Kind::Other,
    }
}

fn int_range(bytes: u8) -> &'static str {
    match bytes {
        2 => "-32768..32767",
        4 => "-2147483648..2147483647",
        _ => "-9223372036854775808..9223372036854775807",
    }
}

/// Decimal digits an integer of `bytes` needs at most.
fn int_digits(bytes: u8) -> u32 {
    match bytes {
        2 => 5,
        4 => 10,
        _ => 19,
    }
}

/// `numeric(p,s)`'s largest magnitude, as the server prints it (`999.99`).
fn numeric_max(p: u32, s: u32) -> String {
    let whole = "9".repeat(p.saturating_sub(s) as usize);
    let whole = if whole.is_empty() { "0".into() } else { whole };
    match s {
        0 => whole,
        _ => format!("{whole}.{}", "9".repeat(s as usize)),
    }
}

fn outside_numeric(p: u32, s: u32) -> Loss {
    let m = numeric_max(p, s);
    Loss::Refused(format!("a value outside -{m}..{m}"))
}

fn rounded_to(s: u32) -> Loss {
    match s {
        0 => Loss::Changed("a fractional value is rounded to a whole number".into()),
        1 => Loss::Changed("a value with more than 1 decimal place is rounded to 1".into()),
        s => Loss::Changed(format!(
            "a value with more than {s} decimal places is rounded to {s}"
        )),
    }
}

/// What assigning a value of type `from` to a column of type `to` loses (PostgreSQL assignment
/// casts, as the staged type change's triggers assign): empty when every value comes through
/// exactly; None when sluice has no model of the pair (the caller says so rather than nothing).
pub fn losses(from: &str, to: &str) -> Option<Vec<Loss>> {
    let (f, t) = (parse_type(from), parse_type(to));
    if f.base == t.base && f.args == t.args && f.array == t.array {
        return Some(vec![]);
    }
    use Kind::*;
    let out = match (kind(&f), kind(&t)) {
        (Int(a), Int(b)) if b >= a => vec![],
        (Int(_), Int(b)) => vec![Loss::Refused(format!("a value outside {}", int_range(b)))],
        (Int(_), Numeric(None)) => vec![],
        (Int(a), Numeric(Some((p, s)))) if p - s.min(p) >= int_digits(a) => vec![],
        (Int(_), Numeric(Some((p, s)))) => vec![outside_numeric(p, s)],
        (Numeric(n), Int(b)) => {
            let mut v = Vec::new();
            if n.is_none_or(|(_, s)| s > 0) {
                v.push(rounded_to(0));
            }
            // numeric(p,s) fits when its whole digits stay below the integer's.
            if n.is_none_or(|(p, s)| p - s.min(p) >= int_digits(b)) {
                v.push(Loss::Refused(format!("a value outside {}", int_range(b))));
            }
            v
        }
        (Numeric(_), Numeric(None)) => vec![],
        (Numeric(a), Numeric(Some((p, s)))) => {
            let mut v = Vec::new();
            if a.is_none_or(|(_, fs)| fs > s) {
                v.push(rounded_to(s));
            }
            // Rounding can carry into the whole digits (99.999 as numeric(4,2) is 100.00, which
            // does not fit): with as many whole digits and fewer decimals, a value is refused too.
            if a.is_none_or(|(fp, fs)| {
                fp - fs.min(fp) > p - s.min(p) || (fp - fs.min(fp) == p - s.min(p) && fs > s)
            }) {
                v.push(outside_numeric(p, s));
            }
            v
        }
        (Int(a), Float8) if a <= 4 => vec![],
        (Int(a), Float4) if a <= 2 => vec![],
        (Int(_), Float8) => vec![Loss::Changed(
            "a value beyond ±9007199254740992 (2^53) loses its last digits".into(),
        )],
        (Int(_), Float4) => vec![Loss::Changed(
            "a value beyond ±16777216 (2^24) loses its last digits".into(),
        )],
        (Numeric(_), Float8) => vec![Loss::Changed(
            "a value is rounded to the nearest float8 (about 15 to 17 significant digits)".into(),
        )],
        (Numeric(_), Float4) => vec![
            Loss::Changed("a value is rounded to the nearest float4 (about 6 to 9 significant digits)".into()),
            Loss::Refused("a value beyond ±3.4e38".into()),
        ],
        (Float4, Float8) => vec![],
        (Float8, Float4) => vec![
            Loss::Changed("a value is rounded to the nearest float4 (about 6 to 9 significant digits)".into()),
            Loss::Refused("a value beyond ±3.4e38".into()),
        ],
        (Float4 | Float8, Int(b)) => vec![
            rounded_to(0),
            Loss::Refused(format!("a value outside {}, NaN or infinity", int_range(b))),
        ],
        (Float4 | Float8, Numeric(n)) => {
            let mut v = vec![Loss::Changed(
                "a value is taken at 15 significant digits".into(),
            )];
            if let Some((p, s)) = n {
                v.push(rounded_to(s));
                let m = numeric_max(p, s);
                v.push(Loss::Refused(format!(
                    "a value outside -{m}..{m}, or infinity"
                )));
            }
            v
        }
        (Varchar(_) | Bpchar(_), Varchar(None)) => match kind(&f) {
            Bpchar(_) => vec![Loss::Changed("trailing spaces are removed".into())],
            _ => vec![],
        },
        (Varchar(a), Varchar(Some(n))) if a.is_some_and(|a| a <= n) => vec![],
        (Bpchar(a), Varchar(Some(n))) if a <= n => {
            vec![Loss::Changed("trailing spaces are removed".into())]
        }
        (Varchar(_) | Bpchar(_), Varchar(Some(n))) => {
            let mut v = vec![Loss::Refused(format!(
                "a string longer than {n} characters"
            ))];
            if matches!(kind(&f), Bpchar(_)) {
                v.insert(0, Loss::Changed("trailing spaces are removed".into()));
            }
            v
        }
        (Varchar(a), Bpchar(n)) => {
            let mut v = vec![Loss::Changed(format!(
                "a string shorter than {n} characters is padded with spaces to {n} (and trailing spaces no longer count in comparisons)"
            ))];
            if a.is_none_or(|a| a > n) {
                v.push(Loss::Refused(format!("a string longer than {n} characters")));
            }
            v
        }
        (Bpchar(a), Bpchar(n)) if a <= n => vec![Loss::Changed(format!(
            "a string is padded with spaces to {n} characters"
        ))],
        (Bpchar(_), Bpchar(n)) => vec![Loss::Refused(format!(
            "a string longer than {n} characters (trailing spaces aside)"
        ))],
        (Timestamp { tz: a, digits: fd }, Timestamp { tz: b, digits: td }) => {
            let mut v = Vec::new();
            if a != b {
                v.push(Loss::Changed(match b {
                    true => "a time is read as wall-clock time in sluice's session time zone (the instant it means depends on that zone)".into(),
                    false => "a time is stored as wall-clock time in sluice's session time zone (its zone is not kept)".into(),
                }));
            }
            if td < fd {
                v.push(Loss::Changed(match td {
                    0 => "fractional seconds are rounded to whole seconds".into(),
                    d => format!("fractional seconds are rounded to {d} digit(s)"),
                }));
            }
            v
        }
        (Date, Timestamp { .. }) => vec![],
        (Timestamp { tz, .. }, Date) => vec![Loss::Changed(match tz {
            true => "the time of day is dropped (the date taken in sluice's session time zone)".into(),
            false => "the time of day is dropped".into(),
        })],
        (Jsonb, Json) => vec![],
        (Json, Jsonb) => vec![Loss::Changed(
            "a document is kept in jsonb's form: its whitespace and key order are not kept, of duplicate keys only the last".into(),
        )],
        // Everything prints as text: a long enough text type keeps it exactly.
        (_, Varchar(None)) => vec![],
        (Varchar(_) | Bpchar(_), _) => vec![Loss::Refused(format!(
            "a string that does not read as {to}"
        ))],
        _ => return None,
    };
    Some(out)
}

/// The statement about a kept type change of `col` (as `plan` names it: `schema.table.column`)
/// from `old` to `new` (PostgreSQL, as `format_type` or the migration spells them), `kept` the
/// old column's name while expanded. None when the casts both ways lose nothing.
pub fn type_change(col: &str, kept: &str, old: &str, new: &str) -> Option<String> {
    let head = format!(
        "while expanded (until `sluice complete`) the old version reads and writes {col} as {new}, not {old}"
    );
    let (Some(fwd), Some(back)) = (losses(old, new), losses(new, old)) else {
        return Some(format!(
            "{head}; sluice has no model of what the casts between the two keep: a value of {new} that {old} cannot take is stored as NULL in the old column kept for `sluice rollback` ({kept}), which is refused while such rows exist"
        ));
    };
    if fwd.is_empty() && back.is_empty() {
        return None;
    }
    let mut text = head;
    if !fwd.is_empty() {
        let parts: Vec<String> = fwd
            .iter()
            .map(|l| match l {
                Loss::Refused(what) => {
                    format!("{what} fails (as it would after the ALTER as written)")
                }
                Loss::Changed(what) => what.clone(),
            })
            .collect();
        text.push_str(&format!(". Of what it writes, {}", parts.join("; ")));
    }
    if !back.is_empty() {
        let refused: Vec<&str> = back
            .iter()
            .filter_map(|l| match l {
                Loss::Refused(w) => Some(w.as_str()),
                _ => None,
            })
            .collect();
        let parts: Vec<String> = back
            .iter()
            .map(|l| match l {
                Loss::Refused(what) => format!(
                    "{what} is stored there as NULL (`sluice rollback` is refused while such rows exist)"
                ),
                Loss::Changed(what) => {
                    format!("{what} (and stays so after `sluice rollback`)")
                }
            })
            .collect();
        let reaches = match refused.is_empty() {
            true => String::new(),
            false => format!(
                "What the new version writes reaches it as {new} too ({}, which its own code may not expect); ",
                refused.join("; ")
            ),
        };
        text.push_str(&format!(
            ". {reaches}{} old column kept for `sluice rollback` ({kept}, in {col}'s place in `SELECT *`) gets each value cast back to {old}: {}",
            if reaches.is_empty() { "The" } else { "the" },
            parts.join("; ")
        ));
    }
    Some(text)
}

/// The statement about a dropped column while expanded: the old version reads `value` in `col`
/// for every row the new version inserts (`value`: `NULL`, `its default (0)`, ...).
pub fn dropped_column(col: &str, value: &str) -> String {
    format!(
        "while expanded (until `sluice complete`) the old version reads {col} as {value} in every row the new version inserts (the new version leaves {col} out; nobody wrote that value)"
    )
}

/// MariaDB/MySQL, a column rename while expanded: `to` stands beside `from` (right after it), so
/// the table has one more column than either version knows. The values are the same under both
/// names (nothing is lost), but the server refuses an INSERT whose value list does not cover
/// every column (1136), which PostgreSQL does not (it fills the first ones).
pub fn added_column(table: &str, to: &str, from: &str) -> String {
    format!(
        "while expanded (until `sluice complete`) {table} has one more column, {to} (right after {from}): an INSERT without a column list (`INSERT INTO {table} VALUES (...)`) fails with \"Column count doesn't match value count\" (1136), from either version, and `SELECT *` returns {to} too; the values are the same under both names"
    )
}

/// PostgreSQL, a column sluice adds beside the old one while expanded (a rename's new name, a
/// versioned change's new column): the table's row shape changes twice (expand, complete) where
/// the statement as written changes no column count. The values are right; what breaks is a
/// client that fixed the row shape: a prepared `*` query, or COPY without a column list.
pub fn added_column_pg(table: &str, added: &str) -> String {
    format!(
        "while expanded (until `sluice complete`) {table} has one more column, {added}: `SELECT *` and `RETURNING *` return it too, a `*` statement a client prepared before `sluice up` (or before `sluice complete`) fails once with \"cached plan must not change result type\" (most drivers prepare it again; pgbench -M prepared stops), and `COPY {table} FROM` without a column list fails (\"missing data for column\"): give COPY its column list"
    )
}

/// A MariaDB rename of a NOT NULL column without default: both names carry the type's default
/// while expanded (so either version's INSERT ... SELECT leaving the other name out works), so an
/// INSERT leaving the column out altogether stores it instead of failing as before.
pub fn default_while_expanded(table: &str, from: &str, to: &str, value: &str) -> String {
    format!(
        "while expanded (until `sluice complete` or `sluice rollback`) {table}.{from} and {to} have the default {value} (they had none: both versions' INSERT ... SELECT that leaves the other name out needs it): an INSERT by either version that leaves the column out under both names stores {value} instead of failing with 1364 \"doesn't have a default value\" as before"
    )
}

/// A constraint added in one phase to a live table: what the old version's writes meet from the
/// moment it takes effect.
pub fn added_constraint(what: Added<'_>) -> String {
    let tail = "the application version still running sees an error, not a changed value: deploy code that never writes such rows first";
    match what {
        Added::NotNull {
            table,
            column,
            mysql,
        } => format!(
            "from this statement on, a write by the application version still running that leaves {table}.{column} NULL (or an INSERT that leaves it out while it has no default) fails with {}; {tail}",
            match mysql {
                true => "1048 \"Column cannot be null\" (1364 \"Field doesn't have a default value\" for the INSERT, in strict mode, the default sql_mode)",
                false => "a not-null violation",
            }
        ),
        Added::Unique { table, columns } => format!(
            "from the moment its unique index is built, a write by the application version still running that gives {table} ({}) a value another row has fails with a unique violation; {tail}",
            columns.join(", ")
        ),
        Added::ForeignKey {
            table,
            columns,
            references,
        } => format!(
            "from this statement on, a write by the application version still running that gives {table} ({}) a value that matches no row of {references} (or deletes or re-keys a row of {references} that {table} still references, unless the key cascades) fails with a foreign key violation; {tail}",
            columns.join(", ")
        ),
        Added::DefaultDropped {
            table,
            column,
            mysql,
        } => format!(
            "from this statement on, {table}.{column} is NOT NULL without a default: an INSERT by the application version still running that leaves it out fails ({}); {tail}",
            match mysql {
                true => "1364 \"Field doesn't have a default value\" in strict mode, the default sql_mode; without strict mode it stores the type's implicit default, 0 or ''",
                false => "not-null violation",
            }
        ),
        Added::Required { table, column } => format!(
            "from this statement on, an INSERT by the application version still running that leaves {table}.{column} out fails (NOT NULL without a default: 1364 \"Field doesn't have a default value\" in strict mode, the default sql_mode); give the column a DEFAULT, or {tail}"
        ),
        Added::Check { table, name } => format!(
            "from this statement on, a write by the application version still running that {table}'s check {} rejects fails with a check violation; {tail}",
            name.unwrap_or("(unnamed)")
        ),
    }
}

/// A constraint [`added_constraint`] states.
#[derive(Debug, Clone, Copy)]
pub enum Added<'a> {
    NotNull {
        table: &'a str,
        column: &'a str,
        mysql: bool,
    },
    Unique {
        table: &'a str,
        columns: &'a [String],
    },
    Check {
        table: &'a str,
        name: Option<&'a str>,
    },
    /// A NOT NULL column loses its default (`mysql`: the server's error as MariaDB/MySQL name it).
    DefaultDropped {
        table: &'a str,
        column: &'a str,
        mysql: bool,
    },
    /// A NOT NULL column without default added to a live MariaDB/MySQL table.
    Required { table: &'a str, column: &'a str },
    ForeignKey {
        table: &'a str,
        columns: &'a [String],
        references: &'a str,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each pair as `format_type` prints it: (old, new, what the old version's writes lose,
    /// what the cast back loses), `-` for nothing, `?` for no model; `R:` a refused value, `C:`
    /// a changed one.
    #[test]
    fn every_pair_is_judged_both_ways() {
        let cases: &[(&str, &str, &str, &str)] = &[
            (
                "integer",
                "bigint",
                "-",
                "R:outside -2147483648..2147483647",
            ),
            (
                "bigint",
                "integer",
                "R:outside -2147483648..2147483647",
                "-",
            ),
            ("smallint", "integer", "-", "R:outside -32768..32767"),
            (
                "integer",
                "numeric",
                "-",
                "C:rounded to a whole number|R:outside -2147483648",
            ),
            (
                "integer",
                "numeric(12,2)",
                "-",
                "C:rounded to a whole number|R:outside -2147483648",
            ),
            (
                "integer",
                "numeric(8,2)",
                "R:outside -999999.99..999999.99",
                "C:rounded to a whole number",
            ),
            (
                "numeric(12,2)",
                "numeric(12,4)",
                "R:outside -99999999.9999..99999999.9999",
                "C:rounded to 2",
            ),
            (
                "numeric(12,4)",
                "numeric(14,4)",
                "-",
                "R:outside -99999999.9999",
            ),
            (
                "numeric(10,2)",
                "numeric",
                "-",
                "C:rounded to 2|R:outside -99999999.99",
            ),
            (
                "numeric",
                "numeric(10,2)",
                "C:rounded to 2|R:outside -99999999.99",
                "-",
            ),
            (
                "numeric(10,2)",
                "integer",
                "C:rounded to a whole number",
                "R:outside -99999999.99",
            ),
            ("real", "double precision", "-", "C:nearest float4|R:3.4e38"),
            (
                "double precision",
                "numeric",
                "C:15 significant",
                "C:nearest float8",
            ),
            (
                "numeric(5,3)",
                "numeric(4,2)",
                "C:rounded to 2|R:outside -99.99",
                "-",
            ),
            (
                "integer",
                "double precision",
                "-",
                "C:rounded to a whole number|R:NaN",
            ),
            (
                "bigint",
                "double precision",
                "C:2^53",
                "C:rounded to a whole number|R:NaN",
            ),
            (
                "character varying(20)",
                "character varying(10)",
                "R:longer than 10",
                "-",
            ),
            ("character varying(10)", "text", "-", "R:longer than 10"),
            ("text", "character varying(10)", "R:longer than 10", "-"),
            (
                "character(5)",
                "text",
                "C:trailing spaces",
                "C:padded with spaces to 5|R:longer than 5",
            ),
            (
                "timestamp without time zone",
                "timestamp with time zone",
                "C:read as wall-clock",
                "C:stored as wall-clock",
            ),
            (
                "timestamp(6) without time zone",
                "timestamp(0) without time zone",
                "C:whole seconds",
                "-",
            ),
            (
                "timestamp(3) without time zone",
                "timestamp without time zone",
                "-",
                "C:rounded to 3 digit",
            ),
            (
                "date",
                "timestamp without time zone",
                "-",
                "C:time of day is dropped",
            ),
            ("json", "jsonb", "C:jsonb's form", "-"),
            ("integer", "text", "-", "R:does not read as integer"),
            ("inet", "cidr", "?", "?"),
        ];
        let show = |l: &Option<Vec<Loss>>| match l {
            None => "?".to_string(),
            Some(v) if v.is_empty() => "-".to_string(),
            Some(v) => v
                .iter()
                .map(|l| match l {
                    Loss::Refused(w) => format!("R:{w}"),
                    Loss::Changed(w) => format!("C:{w}"),
                })
                .collect::<Vec<_>>()
                .join("|"),
        };
        for (old, new, fwd, back) in cases {
            for (got, want, dir) in [
                (show(&losses(old, new)), fwd, "writes"),
                (show(&losses(new, old)), back, "cast back"),
            ] {
                let ok = match *want {
                    "-" | "?" => got == *want,
                    w => {
                        got.split('|').count() == w.split('|').count()
                            && got
                                .split('|')
                                .zip(w.split('|'))
                                .all(|(g, w)| g.starts_with(&w[..2]) && g.contains(&w[2..]))
                    }
                };
                assert!(ok, "{old} -> {new}, {dir}: got {got}, want {want}");
            }
        }
    }

    #[test]
    fn the_statement_names_the_column_and_says_nothing_when_lossless() {
        let s = type_change("app.t.n", "n_sluice_old", "integer", "bigint").unwrap();
        assert!(
            s.contains("reads and writes app.t.n as bigint, not integer"),
            "{s}"
        );
        assert!(
            s.contains("(n_sluice_old, in app.t.n's place in `SELECT *`)"),
            "{s}"
        );
        assert!(s.contains("stored there as NULL"), "{s}");
        assert!(!s.contains("Of what it writes"), "{s}");
        assert!(
            s.contains("which its own code may not expect); the old column kept"),
            "{s}"
        );
        let s = type_change("t.p", "p_sluice_old", "numeric(12,4)", "numeric(12,2)").unwrap();
        assert!(
            s.contains(
                "Of what it writes, a value with more than 2 decimal places is rounded to 2"
            ),
            "{s}"
        );
        let s = type_change("t.x", "x_sluice_old", "inet", "cidr").unwrap();
        assert!(s.contains("no model"), "{s}");
        // Same type: nothing to say.
        assert_eq!(type_change("t.x", "o", "integer", "int4"), None);
        assert_eq!(type_change("t.x", "o", "text", "text"), None);
    }
}
