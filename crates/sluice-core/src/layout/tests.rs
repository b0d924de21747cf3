use super::*;
use crate::migration::{has_sql, Direction, Irreversible, TxMode};
use std::sync::atomic::{AtomicUsize, Ordering};

/// A fresh directory holding `files` (paths relative to it; a trailing `/` makes a directory).
fn dir_with(files: &[(&str, &str)]) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "sluice-layout-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    for (name, text) in files {
        let p = dir.join(name);
        if name.ends_with('/') {
            std::fs::create_dir_all(&p).unwrap();
            continue;
        }
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    dir
}

fn labels(ms: &[Migration]) -> Vec<String> {
    ms.iter().map(|m| m.label()).collect()
}

fn err(files: &[(&str, &str)], layout: Option<Layout>) -> Error {
    let dir = dir_with(files);
    let e = discover(&dir, layout, Some(Dialect::Postgres)).expect_err("should be refused");
    std::fs::remove_dir_all(&dir).unwrap();
    e
}

fn ok(files: &[(&str, &str)], layout: Option<Layout>) -> (Layout, Vec<Migration>) {
    let dir = dir_with(files);
    let r = discover(&dir, layout, Some(Dialect::Postgres))
        .unwrap_or_else(|e| panic!("{files:?}: {e}"));
    std::fs::remove_dir_all(&dir).unwrap();
    r
}

#[test]
fn layout_names_round_trip() {
    for l in Layout::ALL {
        assert_eq!(Layout::parse(l.name()), Ok(l));
    }
    assert!(Layout::parse("flyway2")
        .unwrap_err()
        .contains("known layouts: sluice, diesel"));
}

/// Each layout is detected from its own evidence, and the detected reading equals the configured one.
#[test]
fn detection_from_evidence() {
    let cases: &[(&[(&str, &str)], Layout)] = &[
        (&[("1_a.sql", "-- sluice:up\nSELECT 1;\n")], Layout::Sluice),
        (&[("1_a.sql", "SELECT 1;\n")], Layout::Sluice),
        (&[], Layout::Sluice),
        (&[("README.md", "x")], Layout::Sluice),
        (
            &[("2019-01-01-000000_a/up.sql", "SELECT 1;\n"), (".keep", "")],
            Layout::Diesel,
        ),
        (
            &[("1_a.sql", "-- no-transaction\nSELECT 1;\n")],
            Layout::Sqlx,
        ),
        (
            &[
                ("1_a.up.sql", "-- no-transaction\nSELECT 1;\n"),
                ("1_a.down.sql", "SELECT 2;\n"),
            ],
            Layout::Sqlx,
        ),
        (&[("1_a.sql", "-- migrate:up\nSELECT 1;\n")], Layout::Dbmate),
        (
            &[("1_a.sql", "--migrate:up transaction:false\nSELECT 1;\n")],
            Layout::Dbmate,
        ),
        (&[("1_a.sql", "-- +goose Up\nSELECT 1;\n")], Layout::Goose),
        // `-- sluice:ignore` is read in every layout, so it is no evidence of sluice's.
        (
            &[(
                "1_a.sql",
                "-- +goose Up\n-- sluice:ignore r why\nSELECT 1;\n",
            )],
            Layout::Goose,
        ),
    ];
    for (files, want) in cases {
        let (got, ms) = ok(files, None);
        assert_eq!(got, *want, "{files:?}");
        let (_, configured) = ok(files, Some(*want));
        assert_eq!(labels(&ms), labels(&configured));
    }
}

/// Evidence of two tools, or `.up.sql` pairs that sqlx and golang-migrate both write, is an error
/// naming every candidate; `layout` in sluice.toml settles it.
#[test]
fn ambiguous_directories_name_the_candidates() {
    type Files<'a> = &'a [(&'a str, &'a str)];
    let cases: &[(Files, &[&str])] = &[
        (
            &[
                ("1_a.up.sql", "SELECT 1;\n"),
                ("1_a.down.sql", "SELECT 2;\n"),
            ],
            &["sqlx", "golang-migrate"],
        ),
        (
            &[
                ("1_a.sql", "-- migrate:up\nSELECT 1;\n"),
                ("2_b.sql", "-- +goose Up\nSELECT 1;\n"),
            ],
            &["dbmate", "goose"],
        ),
        (
            &[
                ("1_a.sql", "-- sluice:up\nSELECT 1;\n"),
                ("2_b/up.sql", "SELECT 1;\n"),
            ],
            &["sluice", "diesel"],
        ),
    ];
    for (files, names) in cases {
        let e = err(files, None);
        let s = e.to_string();
        for n in *names {
            assert!(s.contains(&format!("{n} (")), "{n}: {s}");
        }
        assert!(format!("{e:?}").contains("layout = "), "{e:?}");
        assert_eq!(e.exit_code(), crate::error::exit::BAD_INPUT);
    }
    // The configured layout settles it.
    let files = [
        ("1_a.up.sql", "SELECT 1;\n"),
        ("1_a.down.sql", "SELECT 2;\n"),
    ];
    for l in [Layout::Sqlx, Layout::GolangMigrate] {
        let (got, ms) = ok(&files, Some(l));
        assert_eq!((got, labels(&ms)), (l, vec!["1_a".to_string()]));
    }
}

/// diesel: versions ordered as text with `-` removed, hyphenated and plain 14-digit versions mixed,
/// top-level files ignored, `down.sql` and `metadata.toml` read.
#[test]
fn diesel_order_parts_and_metadata() {
    let (_, ms) = ok(
        &[
            (
                "00000000000000_diesel_initial_setup/up.sql",
                "CREATE FUNCTION f() RETURNS int AS $$ SELECT 1; $$ LANGUAGE sql;\n",
            ),
            (
                "00000000000000_diesel_initial_setup/down.sql",
                "DROP FUNCTION f();\n",
            ),
            ("2019-01-02-000000_b/up.sql", "SELECT 2;\n"),
            ("2019-01-02-000000_b/down.sql", ""),
            ("20190101000000_a/up.sql", "SELECT 1;\n"),
            ("20190101000000_a/down.sql", "SELECT -1;\n"),
            (
                "2020-03-01-120000_c/up.sql",
                "CREATE INDEX CONCURRENTLY i ON t (a);\n",
            ),
            (
                "2020-03-01-120000_c/metadata.toml",
                "run_in_transaction = false\nnote = \"kept\"\n",
            ),
            ("2020-03-01-120000_c/README.md", "notes"),
            (
                "schema.sql",
                "not a migration: diesel ignores top-level files",
            ),
            ("diesel.toml", "x"),
            (".hidden/up.sql", "junk"),
        ],
        Some(Layout::Diesel),
    );
    assert_eq!(
        labels(&ms),
        [
            "00000000000000_diesel_initial_setup",
            "20190101000000_a",
            "2019-01-02-000000_b",
            "2020-03-01-120000_c"
        ]
    );
    assert!(ms.windows(2).all(|w| w[0].version < w[1].version));
    // diesel's setup migration is after 0, so `down --to 0` reverts it too.
    assert!(ms[0].version > 0);
    // Empty down.sql: reversible with nothing to do; no down.sql: irreversible.
    assert!(!has_sql(&ms[2].down.as_ref().unwrap().sql));
    assert!(ms[3].down.is_none());
    assert_eq!(
        ms[3].irreversible,
        Some(Irreversible::Missing("down.sql".into()))
    );
    assert_eq!(ms[3].up.tx_directive, Some(TxMode::PerStatement));
    assert_eq!(ms[1].up.tx_directive, None);
    // The down part lives in down.sql and says so.
    let d = ms[1].down.as_ref().unwrap();
    let (path, text) = ms[1].file_of(d);
    assert!(path.ends_with("20190101000000_a/down.sql"), "{path:?}");
    assert_eq!(text, "SELECT -1;\n");
    assert_eq!(ms[1].text_of(path), "SELECT -1;\n");
    assert_eq!(ms[1].part(Direction::Up).unwrap().file, 0);
    assert!(ms[1].path.ends_with("20190101000000_a/up.sql"));
}

/// Every file of a multi-file migration is in its checksum: editing down.sql or metadata.toml is an
/// edit; a one-file migration keeps its text's checksum.
#[test]
fn checksum_covers_every_file() {
    let base: Vec<(&str, &str)> = vec![
        ("1_a/up.sql", "SELECT 1;\n"),
        ("1_a/down.sql", "SELECT 2;\n"),
        ("1_a/metadata.toml", "run_in_transaction = true\n"),
    ];
    let sum = |files: &[(&str, &str)]| ok(files, Some(Layout::Diesel)).1[0].checksum.clone();
    let original = sum(&base);
    let mut seen = vec![original.clone()];
    for i in 0..base.len() {
        let mut edited = base.clone();
        let text = format!("{}# edited\n", edited[i].1);
        edited[i].1 = &text;
        let s = sum(&edited);
        assert!(
            !seen.contains(&s),
            "editing {} left the checksum",
            base[i].0
        );
        seen.push(s);
        let mut crlf = base.clone();
        let t = base[i].1.replace('\n', "\r\n");
        crlf[i].1 = &t;
        assert_eq!(sum(&crlf), original, "CRLF in {}", base[i].0);
    }
    // Moving text from up.sql to down.sql is a change too.
    assert_ne!(
        sum(&[
            ("1_a/up.sql", "SELECT 1;\nSELECT 2;\n"),
            ("1_a/down.sql", "")
        ]),
        sum(&[
            ("1_a/up.sql", "SELECT 1;\n"),
            ("1_a/down.sql", "SELECT 2;\n")
        ])
    );
    assert_eq!(
        sum(&[("1_a/up.sql", "SELECT 1;\n")]),
        crate::migration::checksum("SELECT 1;\n")
    );
}

/// Text-ordered layouts keep the tool's text order whatever the lengths (`10` before `9`, and
/// crates.io-style `-0000`-suffixed 18-digit versions among 14-digit ones); versions that differ only
/// in trailing zeros share a key and are refused, never reordered.
#[test]
fn text_ordered_layouts_keep_text_order() {
    let up = "-- migrate:up\n";
    let (_, ms) = ok(
        &[("9_a/up.sql", ""), ("10_b/up.sql", "")],
        Some(Layout::Diesel),
    );
    assert_eq!(labels(&ms), ["10_b", "9_a"]);
    let (_, ms) = ok(
        &[("9_a.sql", up), ("10_b.sql", up), ("0011_c.sql", up)],
        Some(Layout::Dbmate),
    );
    assert_eq!(labels(&ms), ["0011_c", "10_b", "9_a"]);
    let (_, ms) = ok(
        &[
            ("2026-08-01-000000_later/up.sql", ""),
            ("2026-07-30-140000-0000_suffixed/up.sql", ""),
            ("20250101000000_plain/up.sql", ""),
            ("2025-06-01-000000_hyphen/up.sql", ""),
        ],
        Some(Layout::Diesel),
    );
    assert_eq!(
        labels(&ms),
        [
            "20250101000000_plain",
            "2025-06-01-000000_hyphen",
            "2026-07-30-140000-0000_suffixed",
            "2026-08-01-000000_later"
        ]
    );
    assert!(ms.windows(2).all(|w| w[0].version < w[1].version));
    // Versions that differ only in trailing zeros are distinct, as diesel has them (crates.io).
    let (_, ms) = ok(
        &[
            ("2026-05-27-120000-0000_b/up.sql", ""),
            ("2026-05-27-120000_a/up.sql", ""),
            ("10_d/up.sql", ""),
            ("1_c/up.sql", ""),
        ],
        Some(Layout::Diesel),
    );
    assert_eq!(
        labels(&ms),
        [
            "1_c",
            "10_d",
            "2026-05-27-120000_a",
            "2026-05-27-120000-0000_b"
        ]
    );
    // The same digits written with and without `-` are one version, to diesel too.
    let e = err(
        &[
            ("2019-01-01-000000_a/up.sql", ""),
            ("20190101000000_b/up.sql", ""),
        ],
        Some(Layout::Diesel),
    )
    .to_string();
    assert!(e.contains("is also used by"), "{e}");
    let e = err(
        &[("1234567890123456789_a/up.sql", "")],
        Some(Layout::Diesel),
    )
    .to_string();
    assert!(e.contains("at most 18 digits"), "{e}");
    // Numeric layouts order as numbers whatever the padding.
    let (_, ms) = ok(
        &[
            ("9_a.sql", "-- +goose Up\n"),
            ("10_b.sql", "-- +goose Up\n"),
            ("00011_c.sql", "-- +goose Up\n"),
        ],
        Some(Layout::Goose),
    );
    assert_eq!(labels(&ms), ["9_a", "10_b", "00011_c"]);
    let e = err(
        &[
            ("1_a.sql", "-- +goose Up\n"),
            ("001_b.sql", "-- +goose Up\n"),
        ],
        Some(Layout::Goose),
    )
    .to_string();
    assert!(e.contains("version 001 is also used by"), "{e}");
}

#[test]
fn sqlx_simple_reversible_and_no_transaction() {
    let (_, ms) = ok(
        &[
            ("20200101000000_simple.sql", "CREATE TABLE t (id int);\n"),
            (
                "20200102000000_pair.up.sql",
                "-- no-transaction\nCREATE INDEX CONCURRENTLY i ON t (id);\n",
            ),
            (
                "20200102000000_pair.down.sql",
                "-- no-transaction\nDROP INDEX CONCURRENTLY i;\n",
            ),
            ("20200103000000_noop.up.sql", "-- nothing here\n"),
            ("20200103000000_noop.down.sql", ""),
            ("20200104000000_nodown.up.sql", "SELECT 1;\n"),
            ("notes.txt", "ignored"),
        ],
        Some(Layout::Sqlx),
    );
    assert_eq!(
        labels(&ms),
        [
            "20200101000000_simple",
            "20200102000000_pair",
            "20200103000000_noop",
            "20200104000000_nodown"
        ]
    );
    assert!(ms[0].down.is_none());
    assert!(ms[0]
        .irreversible
        .as_ref()
        .unwrap()
        .describe()
        .contains("plain sqlx"));
    assert_eq!(ms[1].up.tx_directive, Some(TxMode::PerStatement));
    assert_eq!(
        ms[1].down.as_ref().unwrap().tx_directive,
        Some(TxMode::PerStatement)
    );
    assert!(!has_sql(&ms[2].up.sql) && !has_sql(&ms[2].down.as_ref().unwrap().sql));
    assert_eq!(
        ms[3].irreversible,
        Some(Irreversible::Missing("`.down.sql` file".into()))
    );
    for (files, needle) in [
        (
            vec![("1_a.sql", "\n-- no-transaction\nSELECT 1;\n")],
            "line 2: `-- no-transaction` looks like sqlx's",
        ),
        (
            vec![("1_a.sql", "--no-transaction\nSELECT 1;\n")],
            "line 1: `--no-transaction`",
        ),
        (vec![("1_a.sql", "-- No-Transaction\n")], "line 1"),
        (
            vec![("1_a.sql", "SELECT 1;\n-- no_transaction\n")],
            "line 2",
        ),
        (
            vec![("1_a.down.sql", "SELECT 1;\n")],
            "a down file without its up file",
        ),
        (
            vec![("1_a.sql", "SELECT 1;\n"), ("1_a.up.sql", "SELECT 1;\n")],
            "version 1 is also used by",
        ),
        (
            vec![("1_a.UP.sql", "SELECT 1;\n")],
            "malformed migration file name",
        ),
        (vec![("x_a.sql", "SELECT 1;\n")], "must be digits"),
        (
            vec![("1234567890123456789_a.sql", "SELECT 1;\n")],
            "at most 18 digits",
        ),
        (
            vec![("1_a.sql", "-- sluice:up\nSELECT 1;\n")],
            "has no meaning in a sqlx migration",
        ),
        (
            vec![("1_a.sql", "-- sluice: ignore x y\nSELECT 1;\n")],
            "looks like a sluice directive",
        ),
    ] {
        let e = err(&files, Some(Layout::Sqlx));
        assert!(e.to_string().contains(needle), "{files:?}: {e}");
        assert_eq!(e.exit_code(), crate::error::exit::BAD_INPUT, "{files:?}");
    }
}

#[test]
fn golang_migrate_pairs_any_digits() {
    let (_, ms) = ok(
        &[
            ("000001_init.up.sql", "CREATE TABLE t (id int);\n"),
            ("000001_init.down.sql", "DROP TABLE t;\n"),
            ("000002_empty.up.sql", ""),
            ("000002_empty.down.sql", ""),
            ("10_ten.up.sql", "SELECT 10;\n"),
            ("1600000000_unix.up.sql", "SELECT 1;\n"),
            ("1600000000_unix.down.sql", "SELECT 2;\n"),
        ],
        Some(Layout::GolangMigrate),
    );
    assert_eq!(
        labels(&ms),
        ["000001_init", "000002_empty", "10_ten", "1600000000_unix"]
    );
    assert_eq!(ms[0].up.tx_directive, None);
    assert!(ms[2].down.is_none());
    for (files, needle) in [
        (vec![("1_a.sql", "SELECT 1;\n")], "must end in `.up.sql`"),
        (
            vec![("1_a.down.sql", "SELECT 1;\n")],
            "a down file without its up file",
        ),
        (
            vec![("1_a.up.sql", ""), ("01_b.up.sql", "")],
            "is also used by",
        ),
    ] {
        let e = err(&files, Some(Layout::GolangMigrate));
        assert!(e.to_string().contains(needle), "{files:?}: {e}");
    }
}

#[test]
fn dbmate_markers_options_and_near_misses() {
    let text = "-- a comment\n-- migrate:up transaction:false\nCREATE INDEX CONCURRENTLY i ON t (a);\n\n-- migrate:down\nDROP INDEX i;\n";
    let (_, ms) = ok(
        &[
            ("20200101000000_a.sql", text),
            ("20200102000000_b.sql", "--migrate:up\n-- migrate:down\n"),
        ],
        Some(Layout::Dbmate),
    );
    let m = &ms[0];
    assert_eq!(m.up.sql, "CREATE INDEX CONCURRENTLY i ON t (a);\n\n");
    assert_eq!(&m.text[m.up.offset..m.up.offset + m.up.sql.len()], m.up.sql);
    assert_eq!(m.up.tx_directive, Some(TxMode::PerStatement));
    let d = m.down.as_ref().unwrap();
    assert_eq!(d.sql, "DROP INDEX i;\n");
    assert_eq!(d.tx_directive, None);
    assert_eq!(m.checksum, crate::migration::checksum(text));
    assert!(!has_sql(&ms[1].up.sql) && !has_sql(&ms[1].down.as_ref().unwrap().sql));
    let (_, ms) = ok(
        &[("1_a.sql", "-- migrate:up\nSELECT 1;\n")],
        Some(Layout::Dbmate),
    );
    assert_eq!(
        ms[0].irreversible,
        Some(Irreversible::Missing("`-- migrate:down` section".into()))
    );
    // Near misses of the markers, generated: never read as comments.
    let mut checked = 0;
    for prefix in ["--", "-- ", "--  ", "#", "/* ", "SELECT 1; -- "] {
        for kw in ["migrate", "Migrate", "MIGRATE"] {
            for sep in [":", ": ", " ", " : ", "-", "_", "::"] {
                for word in ["up", "down", "Up", "DOWN"] {
                    let line = format!("{prefix}{kw}{sep}{word}");
                    if dbmate::marker(line.trim()).is_some() {
                        continue;
                    }
                    let text = format!("-- migrate:up\nSELECT 1;\n{line}\nSELECT 2;\n");
                    let e = err(&[("1_a.sql", &text)], Some(Layout::Dbmate));
                    assert!(e.to_string().contains("line 3"), "{line:?}: {e}");
                    checked += 1;
                }
            }
        }
    }
    assert!(checked > 400, "{checked}");
    for (text, needle) in [
        (
            "SELECT 1;\n-- migrate:up\n",
            "line 2: SQL before `-- migrate:up`",
        ),
        ("-- migrate:down\n", "line 1: `-- migrate:down` before"),
        (
            "-- migrate:up\n-- migrate:up\n",
            "line 2: a second `-- migrate:up`",
        ),
        (
            "-- migrate:up\n-- migrate:down\n-- migrate:down\n",
            "line 3: a second `-- migrate:down`",
        ),
        (
            "-- migrate:up transaction:maybe\n",
            "line 1: unknown dbmate option `transaction:maybe`",
        ),
        ("SELECT 1;\n", "no `-- migrate:up` marker"),
    ] {
        let e = err(&[("1_a.sql", text)], Some(Layout::Dbmate));
        assert!(e.to_string().contains(needle), "{text:?}: {e}");
    }
    // Ordinary comments about migrating stay comments.
    for c in [
        "-- migrate the users table",
        "-- this migrates up",
        "-- migrated rows",
    ] {
        let text = format!("{c}\n-- migrate:up\nSELECT 1;\n{c}\n");
        ok(&[("1_a.sql", &text)], Some(Layout::Dbmate));
    }
}

#[test]
fn goose_annotations_blocks_and_no_transaction() {
    let text = "-- +goose Up\n-- +goose StatementBegin\nCREATE FUNCTION f() RETURNS int AS $$ BEGIN RETURN 1; END; $$ LANGUAGE plpgsql;\n-- +goose StatementEnd\n-- +goose Down\nDROP FUNCTION f();\n";
    let (_, ms) = ok(
        &[
            ("00001_f.sql", text),
            ("00002_idx.sql", "-- +goose NO TRANSACTION\n-- +goose Up\nCREATE INDEX CONCURRENTLY i ON t (a);\n-- +goose Down\nDROP INDEX CONCURRENTLY i;\n"),
            ("00003_noop.sql", "-- +goose Up\n-- +goose Down\n"),
            ("00004_lower.sql", "-- +goose up\nSELECT 1;\n"),
        ],
        Some(Layout::Goose),
    );
    assert!(ms[0]
        .up
        .sql
        .starts_with("-- +goose StatementBegin\nCREATE FUNCTION"));
    assert_eq!(ms[0].down.as_ref().unwrap().sql, "DROP FUNCTION f();\n");
    assert_eq!(ms[0].up.tx_directive, None);
    assert_eq!(ms[1].up.tx_directive, Some(TxMode::PerStatement));
    assert_eq!(
        ms[1].down.as_ref().unwrap().tx_directive,
        Some(TxMode::PerStatement)
    );
    assert!(!has_sql(&ms[2].up.sql) && ms[2].down.is_some());
    assert_eq!(
        ms[3].irreversible,
        Some(Irreversible::Missing("`-- +goose Down` section".into()))
    );
    for (text, needle) in [
        (
            "-- +goose Up\n--+goose Down\n",
            "line 2: `--+goose Down` looks like a goose annotation",
        ),
        ("-- +goose Up\n-- goose Down\n", "line 2"),
        ("-- +goose Up\n-- +goose: down\n", "line 2"),
        ("-- +goose Up\n/* +goose Down */\n", "line 2"),
        (
            "-- +goose Up\n-- +goose Sideways\n",
            "line 2: unknown goose annotation",
        ),
        (
            "-- +goose Up\n-- +goose StatementBegin\nSELECT 1;\n",
            "line 2: `-- +goose StatementBegin` without",
        ),
        (
            "-- +goose Up\n-- +goose StatementEnd\n",
            "line 2: `-- +goose StatementEnd` without",
        ),
        (
            "-- +goose Up\n-- +goose StatementBegin\n-- +goose StatementBegin\n",
            "line 3: a second",
        ),
        (
            "-- +goose Up\n-- +goose StatementBegin\n-- +goose Down\n",
            "line 2",
        ),
        ("-- +goose Down\n", "line 1: `-- +goose Down` before"),
        ("SELECT 1;\n-- +goose Up\n", "line 2: SQL before"),
        (
            "-- +goose Up\n-- +goose ENVSUB ON\n",
            "does not substitute environment variables",
        ),
        ("SELECT 1;\n", "no `-- +goose Up`"),
    ] {
        let e = err(&[("1_a.sql", text)], Some(Layout::Goose));
        assert!(e.to_string().contains(needle), "{text:?}: {e}");
        assert_eq!(e.exit_code(), crate::error::exit::BAD_INPUT);
    }
    let e = err(
        &[("1_a.sql", "-- +goose Up\n"), ("2_b.go", "package m")],
        Some(Layout::Goose),
    );
    assert!(e.to_string().contains("goose Go migration"), "{e}");
}

#[test]
fn diesel_names_and_metadata_errors() {
    for (files, needle) in [
        (vec![("1_a/down.sql", "")], "without `up.sql`"),
        (
            vec![("1_a/up.sql", ""), ("1_a/Down.sql", "")],
            "`Down.sql` is not a file diesel reads",
        ),
        (
            vec![("1_a/up.sql", ""), ("1_a/down.psql", "")],
            "`down.psql`",
        ),
        (
            vec![
                ("1_a/up.sql", ""),
                ("1_a/metadata.toml", "run_in_transactions = false\n"),
            ],
            "line 1: `run_in_transactions` looks like diesel's",
        ),
        (
            vec![
                ("1_a/up.sql", ""),
                ("1_a/metadata.toml", "run_in_transaction = \"no\"\n"),
            ],
            "must be true or false",
        ),
        (
            vec![
                ("1_a/up.sql", ""),
                ("1_a/metadata.toml", "run_in_transaction = \n"),
            ],
            "invalid metadata.toml",
        ),
        (vec![("a_b/up.sql", "")], "must be digits"),
        (vec![("1/up.sql", "")], "is not <version>_<name>"),
        (
            vec![("1_a/up.sql", "-- sluice:down\n")],
            "has no meaning in a diesel migration",
        ),
    ] {
        let e = err(&files, Some(Layout::Diesel));
        assert!(e.to_string().contains(needle), "{files:?}: {e}");
        assert_eq!(e.exit_code(), crate::error::exit::BAD_INPUT, "{files:?}");
    }
}

/// `-- sluice:ignore` in another layout's file suppresses lint findings on that file's statement.
#[test]
fn ignores_know_their_file() {
    let (_, ms) = ok(
        &[
            ("1_a/up.sql", "SELECT 1;\n"),
            (
                "1_a/down.sql",
                "\n-- sluice:ignore some-rule the table is gone\nDROP TABLE t;\n",
            ),
        ],
        Some(Layout::Diesel),
    );
    let ig = &ms[0].ignores;
    assert_eq!(ig.len(), 1);
    assert_eq!((ig[0].file, ig[0].line, ig[0].offset), (1, 2, 1));
}

/// Lint points at the down file's own line, with the down file's text.
#[test]
fn lint_findings_point_into_the_right_file() {
    let (_, ms) = ok(
        &[
            ("1_a.up.sql", "CREATE TABLE t (id int);\n"),
            (
                "1_a.down.sql",
                "-- undo\n\nALTER TABLE t ADD COLUMN c int NOT NULL;\n",
            ),
        ],
        Some(Layout::Sqlx),
    );
    let target = crate::target::Target::parse("postgres:15").unwrap();
    let opts = crate::lint::LintOptions {
        include_down: true,
        ..Default::default()
    };
    let mut linter = crate::lint::Linter::new(target, opts);
    let parsed = linter.parser().parse(&ms[0]);
    let findings = linter.lint_parsed(&ms[0], parsed);
    let f = findings
        .iter()
        .find(|f| f.path.ends_with("1_a.down.sql"))
        .unwrap_or_else(|| panic!("{findings:#?}"));
    assert_eq!(f.line, 3, "{f:#?}");
    let text = ms[0].text_of(&f.path);
    assert!(
        text[f.offset..].starts_with("ALTER TABLE t ADD COLUMN c"),
        "{f:#?}"
    );
}

/// Flyway's order, written out: part by part as numbers, missing parts as 0.
fn flyway_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    let parts =
        |v: &str| -> Vec<u128> { v.split(['.', '_']).map(|p| p.parse().unwrap()).collect() };
    let (pa, pb) = (parts(a), parts(b));
    for i in 0..pa.len().max(pb.len()) {
        let (x, y) = (
            pa.get(i).copied().unwrap_or(0),
            pb.get(i).copied().unwrap_or(0),
        );
        if x != y {
            return x.cmp(&y);
        }
    }
    std::cmp::Ordering::Equal
}

/// The history key of every generated Flyway version orders exactly as Flyway orders versions,
/// and equal versions (`1.0`, `01`, `1_0`) get equal keys.
#[test]
fn flyway_keys_keep_flyways_order() {
    let atoms = [
        "0",
        "1",
        "2",
        "9",
        "10",
        "01",
        "11",
        "99",
        "100",
        "12345678",
        "123456789",
        "2019",
    ];
    let mut versions: Vec<String> = Vec::new();
    for a in atoms {
        versions.push(a.to_string());
        for b in atoms {
            versions.push(format!("{a}.{b}"));
            versions.push(format!("{a}_{b}"));
            for c in ["0", "1", "10"] {
                versions.push(format!("{a}.{b}.{c}"));
            }
        }
    }
    versions.extend(
        [
            "20190101120000",
            "2019.01.01.1200",
            "1.0.0.1",
            "1.2.10",
            "1.2.9",
            "7.0.0.0.0",
        ]
        .map(String::from),
    );
    let keyed: Vec<(String, i64)> = versions
        .iter()
        .filter_map(|v| flyway::version_key(v).ok().map(|k| (v.clone(), k)))
        .collect();
    assert!(keyed.len() > 700, "{}", keyed.len());
    let mut compared = 0;
    for (a, ka) in &keyed {
        for (b, kb) in &keyed {
            assert_eq!(ka.cmp(kb), flyway_cmp(a, b), "{a} vs {b}: {ka} {kb}");
            compared += 1;
        }
    }
    assert!(compared > 500_000, "{compared}");
    for (v, k) in &keyed {
        let back = version_text_of(Layout::Flyway, *k);
        assert_eq!(flyway::version_key(&back), Ok(*k), "{v} -> {back}");
    }
    assert_eq!(
        version_text_of(Layout::Flyway, 111_221_000_000_000_000),
        "1.2.10"
    );
    assert_eq!(flyway::version_key("1"), Ok(110_000_000_000_000_000));
    assert_eq!(flyway::version_key("1.2.10"), Ok(111_221_000_000_000_000));
    assert_eq!(
        flyway::version_key("20190101120000"),
        Ok(952_019_010_112_000_000)
    );
    for bad in [
        "",
        "1.",
        ".1",
        "1..2",
        "a",
        "1.x",
        "1-2",
        "123456789012345678",
        "1.2.3.4.5.6.7.8.9.10",
    ] {
        assert!(flyway::version_key(bad).is_err(), "{bad}");
    }
}

#[test]
fn flyway_versioned_undo_and_script_config() {
    let (layout, ms) = ok(
        &[
            ("V1__create.sql", "CREATE TABLE t (id int);\n"),
            ("U1__create.sql", "DROP TABLE t;\n"),
            ("V1.10__ten.sql", "SELECT 110;\n"),
            ("V1.2__two.sql", "SELECT 12;\n"),
            (
                "V1.2.1__index.sql",
                "CREATE INDEX CONCURRENTLY i ON t (id);\n",
            ),
            (
                "V1.2.1__index.sql.conf",
                "# no transaction for CONCURRENTLY\nexecuteInTransaction=false\n",
            ),
            ("U1.2.1__index.sql", "DROP INDEX CONCURRENTLY i;\n"),
            ("U1.2.1__index.sql.conf", "executeInTransaction=false\n"),
            ("V2__empty.sql", ""),
            ("U2__empty.sql", "-- nothing\n"),
            ("flyway.conf", "ignored"),
        ],
        None,
    );
    assert_eq!(layout, Layout::Flyway);
    assert_eq!(
        labels(&ms),
        ["1_create", "1.2_two", "1.2.1_index", "1.10_ten", "2_empty"]
    );
    assert_eq!(ms[0].down.as_ref().unwrap().sql, "DROP TABLE t;\n");
    assert!(ms[1].down.is_none());
    assert!(ms[1]
        .irreversible
        .as_ref()
        .unwrap()
        .describe()
        .contains("undo migration"));
    assert_eq!(ms[2].up.tx_directive, Some(TxMode::PerStatement));
    assert_eq!(
        ms[2].down.as_ref().unwrap().tx_directive,
        Some(TxMode::PerStatement)
    );
    assert_eq!(ms[0].up.tx_directive, None);
    assert!(!has_sql(&ms[4].up.sql) && !has_sql(&ms[4].down.as_ref().unwrap().sql));
    for (files, needle) in [
        (
            vec![("V1__a.sql", ""), ("V1.0__b.sql", "")],
            "is also used by",
        ),
        (
            vec![("V1__a.sql", ""), ("V01__b.sql", "")],
            "is also used by",
        ),
        (
            vec![
                ("V1__a.sql", ""),
                ("R__views.sql", ""),
                ("R__views.sql.conf", "x=1\n"),
            ],
            "does not read the script setting",
        ),
        (
            vec![("V1__a.sql", ""), ("R1__views.sql", "")],
            "a repeatable migration has no version",
        ),
        (vec![("R__.sql", "")], "no description"),
        (
            vec![("R__a_b.sql", ""), ("R__a b.sql", "")],
            "same description",
        ),
        (
            vec![("V1__a.sql", ""), ("afterMigrate.sql", "")],
            "callback",
        ),
        (
            vec![("V1__a.sql", ""), ("U2__b.sql", "")],
            "undo migration without a versioned",
        ),
        (
            vec![("V1__a.sql", ""), ("v2__b.sql", "")],
            "malformed migration file name",
        ),
        (
            vec![("V1__a.sql", ""), ("V2_b.sql", "")],
            "malformed migration file name",
        ),
        (
            vec![("V1__a.sql", ""), ("V2.x__b.sql", "")],
            "must be numbers",
        ),
        (vec![("V1__.sql", "")], "no description"),
        (
            vec![("V1__a.sql", "SELECT '${schema}';\n")],
            "line 1: a Flyway placeholder",
        ),
        (
            vec![
                ("V1__a.sql", ""),
                ("V1__a.sql.conf", "executeInTransactions=false\n"),
            ],
            "line 1: `executeInTransactions` looks like",
        ),
        (
            vec![
                ("V1__a.sql", ""),
                ("V1__a.sql.conf", "shouldExecute=false\n"),
            ],
            "does not read the script setting",
        ),
        (
            vec![
                ("V1__a.sql", ""),
                ("V2__b.sql.conf", "executeInTransaction=false\n"),
            ],
            "without its script",
        ),
        (
            vec![("V1__a.sql", "-- sluice:up\n")],
            "has no meaning in a flyway migration",
        ),
    ] {
        let e = err(&files, Some(Layout::Flyway));
        assert!(e.to_string().contains(needle), "{files:?}: {e}");
        assert_eq!(e.exit_code(), crate::error::exit::BAD_INPUT, "{files:?}");
    }
    // A Flyway file among another layout's is evidence of a second tool.
    let e = err(&[("V1__a.sql", ""), ("2_b.sql", "-- +goose Up\n")], None).to_string();
    assert!(e.contains("flyway (") && e.contains("goose ("), "{e}");
}

/// The text key orders every pair of generated digit strings as text does, and tells them apart.
#[test]
fn text_keys_keep_text_order() {
    let mut all: Vec<String> = vec![
        "0".into(),
        "9".into(),
        "999999999999999999".into(),
        "000000000000000000".into(),
    ];
    for a in [
        "",
        "0",
        "1",
        "00",
        "09",
        "10",
        "2019",
        "20190101000000",
        "201901010000000000",
    ] {
        for b in ["", "0", "1", "9", "00", "99", "0000"] {
            let s = format!("{a}{b}");
            if !s.is_empty() && s.len() <= 18 {
                all.push(s);
            }
        }
    }
    all.sort();
    all.dedup();
    for a in &all {
        for b in &all {
            assert_eq!(
                text_key(a).unwrap().cmp(&text_key(b).unwrap()),
                a.cmp(b),
                "{a} vs {b}"
            );
        }
    }
    for a in &all {
        assert_eq!(version_text_of(Layout::Dbmate, text_key(a).unwrap()), *a);
    }
    assert!(text_key("0").unwrap() > 0);
    assert_eq!(key_of(Layout::Diesel, "0"), Ok(0));
    assert_eq!(
        key_of(Layout::Diesel, "2019-01-01-000000"),
        text_key("20190101000000")
    );
    assert!(text_key("1234567890123456789").is_err());
    assert!(text_key("12a").is_err());
}

/// Per-dialect variants in sluice's layout: the engine's own wins, else the generic file; a
/// migration with another engine's variant only is a no-op here, so versions stay aligned.
#[test]
fn dialect_variants_engine_own_wins() {
    let files = [
        (
            "1_t.sql",
            "-- sluice:up\nCREATE TABLE t (id int);\n-- sluice:down\nDROP TABLE t;\n",
        ),
        (
            "2_ext.postgres.sql",
            "-- sluice:up\nCREATE EXTENSION pg_trgm;\n-- sluice:down\nDROP EXTENSION pg_trgm;\n",
        ),
        (
            "3_idx.sql",
            "-- sluice:up\nCREATE INDEX i ON t (id);\n-- sluice:down\nDROP INDEX i;\n",
        ),
        (
            "3_idx.mysql.sql",
            "-- sluice:up\nCREATE INDEX i ON t (id);\n-- sluice:down\nDROP INDEX i ON t;\n",
        ),
        (
            "4_both.postgres.sql",
            "-- sluice:up\nSELECT 'pg';\n-- sluice:down\n",
        ),
        (
            "4_both.mysql.sql",
            "-- sluice:up\nSELECT 'my';\n-- sluice:down\n",
        ),
    ];
    let dir = dir_with(&files);
    let read = |d| discover(&dir, Some(Layout::Sluice), Some(d)).unwrap().1;
    let (pg, my) = (read(Dialect::Postgres), read(Dialect::Mysql));
    assert_eq!(labels(&pg), ["1_t", "2_ext", "3_idx", "4_both"]);
    assert_eq!(labels(&pg), labels(&my));
    assert!(pg[1].up.sql.contains("pg_trgm"));
    assert!(!has_sql(&my[1].up.sql) && !has_sql(&my[1].down.as_ref().unwrap().sql));
    assert!(my[1].irreversible.is_none());
    assert!(pg[2].down.as_ref().unwrap().sql.contains("DROP INDEX i;"));
    assert!(my[2]
        .down
        .as_ref()
        .unwrap()
        .sql
        .contains("DROP INDEX i ON t;"));
    assert!(my[2].path.ends_with("3_idx.mysql.sql"));
    assert!(pg[3].up.sql.contains("'pg'") && my[3].up.sql.contains("'my'"));
    // The same text as the generic file gives the same checksum: the variant changes only what runs.
    assert_eq!(pg[0].checksum, my[0].checksum);
    assert_ne!(pg[2].checksum, my[2].checksum);
    // Without a known engine, a migration for one engine only cannot be read.
    let e = discover(&dir, Some(Layout::Sluice), None)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("2_ext.postgres.sql is a variant for one engine only"),
        "{e}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
    for bad in ["5_x.Postgres.sql", "5_x.postgresql.sql", "5_x.sqlite.sql"] {
        let e = err(&[(bad, "SELECT 1;")], Some(Layout::Sluice)).to_string();
        assert!(e.contains("malformed migration file name"), "{bad}: {e}");
    }
}

/// Repeatable migrations in both layouts that have them: after every versioned migration, in the
/// tool's order of their names (Flyway: the description, `_` read as a space, compared as Java
/// compares strings), whatever order the directory lists them in.
#[test]
fn repeatables_come_last_in_the_tools_order() {
    let cases: &[(&[&str], &[&str])] = &[
        // Flyway: `a_b` is the description `a b`, and a space sorts before `1` (0x20 < 0x31),
        // where `_` (0x5f) would sort after it; upper case before lower case.
        (
            &[
                "V2__x.sql",
                "R__a1.sql",
                "V1__y.sql",
                "R__a_b.sql",
                "R__B.sql",
                "V1.1__z.sql",
            ],
            &["1_y", "1.1_z", "2_x", "R__B", "R__a_b", "R__a1"],
        ),
        // Only repeatables.
        (
            &["R__views.sql", "R__functions.sql"],
            &["R__functions", "R__views"],
        ),
        // Sluice's own: `R_<name>.sql`, by name in byte order (`_` 0x5f sorts after digits).
        (
            &["2_x.sql", "R_a_b.sql", "1_y.sql", "R_a1.sql", "R_a-c.sql"],
            &["1_y", "2_x", "R_a-c", "R_a1", "R_a_b"],
        ),
    ];
    for (names, want) in cases {
        let files: Vec<(&str, &str)> = names.iter().map(|n| (*n, "SELECT 1;\n")).collect();
        let (_, ms) = ok(&files, None);
        assert_eq!(labels(&ms), *want, "{names:?}");
        for m in &ms {
            assert_eq!(
                m.is_repeatable(),
                m.label().starts_with('R'),
                "{}",
                m.label()
            );
            if m.is_repeatable() {
                // `down` never undoes it, and says why if asked.
                assert!(m.down.is_none());
                let why = m.irreversible.as_ref().unwrap().describe();
                assert!(why.contains("repeatable migration"), "{why}");
            }
        }
    }
}

/// A repeatable's history key comes from its name only: the same whatever else is in the directory,
/// distinct across names, and never a versioned key. Its checksum follows its content (and, in
/// Flyway's layout, its `.conf`), so an edit is a change `up` applies again.
#[test]
fn repeatable_keys_and_checksums() {
    let (_, a) = ok(
        &[("R__v.sql", "CREATE VIEW v AS SELECT 1;\n")],
        Some(Layout::Flyway),
    );
    let (_, b) = ok(
        &[
            ("V1__t.sql", "SELECT 1;\n"),
            ("R__w.sql", "SELECT 1;\n"),
            ("R__v.sql", "CREATE VIEW v AS SELECT 1;\n"),
        ],
        Some(Layout::Flyway),
    );
    let v = b.iter().find(|m| m.name == "v").unwrap();
    let w = b.iter().find(|m| m.name == "w").unwrap();
    assert_eq!(a[0].version, v.version);
    assert_eq!(a[0].checksum, v.checksum);
    assert_ne!(v.version, w.version);
    assert!(v.version < 0 && w.version < 0 && b[0].version > 0);
    assert_eq!(version_text_of(Layout::Flyway, v.version), "R_");
    let mut seen = std::collections::BTreeSet::new();
    for i in 0..2000 {
        let k = repeatable_key(&format!("view_{i}"));
        assert!(is_repeatable_key(k));
        assert!(seen.insert(k), "two names share key {k}");
    }
    // Each edit changes the checksum: the SQL, an added comment, the script's .conf.
    let sum = |files: &[(&str, &str)]| ok(files, Some(Layout::Flyway)).1[0].checksum.clone();
    let base = sum(&[("R__v.sql", "CREATE VIEW v AS SELECT 1;\n")]);
    for edited in [
        vec![("R__v.sql", "CREATE VIEW v AS SELECT 2;\n")],
        vec![("R__v.sql", "CREATE VIEW v AS SELECT 1;\n-- note\n")],
        vec![
            ("R__v.sql", "CREATE VIEW v AS SELECT 1;\n"),
            ("R__v.sql.conf", "executeInTransaction=false\n"),
        ],
    ] {
        assert_ne!(sum(&edited), base, "{edited:?}");
    }
    // CRLF is not an edit.
    assert_eq!(sum(&[("R__v.sql", "CREATE VIEW v AS SELECT 1;\r\n")]), base);
    let (_, c) = ok(
        &[
            ("R__v.sql", "SELECT 1;\n"),
            ("R__v.sql.conf", "executeInTransaction=false\n"),
        ],
        Some(Layout::Flyway),
    );
    assert_eq!(c[0].up.tx_directive, Some(TxMode::PerStatement));
}

/// Sluice's repeatables: a down part is refused (down never undoes them), bad names and two files of
/// one name are errors, per-dialect variants work as for versioned files.
#[test]
fn sluice_repeatables_names_parts_and_variants() {
    let (_, ms) = ok(
        &[
            ("R_v.sql", "-- sluice:up\nCREATE VIEW v AS SELECT 1;\n"),
            (
                "R_f.sql",
                "CREATE OR REPLACE FUNCTION f() RETURNS int AS 'SELECT 1' LANGUAGE sql;\n",
            ),
            ("R_g.mysql.sql", "CREATE OR REPLACE VIEW g AS SELECT 1;\n"),
            (
                "R_g.postgres.sql",
                "CREATE OR REPLACE VIEW g AS SELECT 2;\n",
            ),
        ],
        None,
    );
    assert_eq!(labels(&ms), ["R_f", "R_g", "R_v"]);
    assert!(ms[1].up.sql.contains("SELECT 2"));
    assert!(ms[2].up.sql.contains("CREATE VIEW"));
    for (files, needle) in [
        (
            vec![(
                "R_v.sql",
                "-- sluice:up\nSELECT 1;\n-- sluice:down\nSELECT 2;\n",
            )],
            "has a `-- sluice:down` part",
        ),
        (vec![("R_V.sql", "SELECT 1;\n")], "must be lowercase"),
        (vec![("R_.sql", "SELECT 1;\n")], "must be lowercase"),
    ] {
        let e = err(&files, None).to_string();
        assert!(e.contains(needle), "{files:?}: {e}");
    }
    // Only another engine's variant: a no-op here, still a repeatable without a down part.
    let (_, ms) = ok(&[("R_g.mysql.sql", "SELECT 1;\n")], None);
    assert!(ms[0].is_repeatable() && ms[0].down.is_none() && ms[0].up.sql.is_empty());
}
