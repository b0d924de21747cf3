//! Hostile input gives an error or a finding, never a crash.

use sluice_core::lint::{lint, LintOptions};
use sluice_core::migration::{load_any, load_file, parse_text};
use sluice_core::target::{EngineKind, Target};
use std::path::Path;

fn lint_text(engine: EngineKind, text: &str) -> Vec<String> {
    let m = parse_text(Path::new("x.sql"), 1, "x".into(), text).unwrap();
    lint(Target::new(engine, 15, 0), &[m], &LintOptions::default())
        .findings
        .iter()
        .map(|f| f.rule.to_string())
        .collect()
}

#[test]
fn binary_garbage_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("1_garbage.sql");
    let bytes: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    std::fs::write(&p, &bytes).unwrap();
    let e = load_file(&p).unwrap_err();
    assert!(e.to_string().contains("not valid UTF-8"), "{e}");
    assert_eq!(e.exit_code(), 2);
}

#[test]
fn a_50_mb_file_is_refused_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("1_huge.sql");
    let f = std::fs::File::create(&p).unwrap();
    f.set_len(50 * 1024 * 1024).unwrap();
    for e in [load_file(&p).unwrap_err(), load_any(&p).unwrap_err()] {
        assert!(
            e.to_string()
                .contains("the file is 50 MiB; sluice reads migration files up to 32 MiB"),
            "{e}"
        );
        assert_eq!(e.exit_code(), 2);
    }
}

#[test]
fn deeply_nested_expressions_are_a_finding_not_a_stack_overflow() {
    for depth in [100usize, 10_000, 200_000] {
        let sql = format!("SELECT {}1{};", "(".repeat(depth), ")".repeat(depth));
        for engine in [EngineKind::Postgres, EngineKind::MariaDb] {
            let rules = lint_text(engine, &sql);
            assert_eq!(
                rules,
                vec!["unparsed-statement"],
                "depth {depth} on {engine}"
            );
        }
        let sql = format!(
            "ALTER TABLE t ADD COLUMN c int DEFAULT {}1{};",
            "-".repeat(depth),
            ""
        );
        let _ = lint_text(EngineKind::Postgres, &sql);
    }
}

#[test]
fn garbage_text_never_panics() {
    let samples = [
        "\u{0}\u{1}\u{2};;;'\"`$$",
        "$$ unterminated dollar",
        "/* unterminated comment",
        "-- sluice:up\n\u{feff}CREATE TABLE \"\u{1F600}\" (x int);",
        "ALTER TABLE ALTER TABLE ALTER TABLE;",
        "CREATE INDEX CONCURRENTLY;",
        "DROP INDEX CONCURRENTLY;",
        "\\connect db\n\\i file.sql",
    ];
    for s in samples {
        for engine in [EngineKind::Postgres, EngineKind::MariaDb, EngineKind::MySql] {
            if let Ok(m) = parse_text(Path::new("x.sql"), 1, "x".into(), s) {
                let _ = lint(
                    Target::new(engine, 8, 0),
                    &[m],
                    &LintOptions {
                        include_down: true,
                        ..Default::default()
                    },
                );
            }
        }
    }
}

#[test]
fn keyword_fallback_matches_whole_words_only() {
    use sluice_core::analysis::ir::{build, Action, QName};
    let act = |sql: &str| {
        let s = sluice_core::sql::split(EngineKind::Postgres, sql)
            .unwrap()
            .remove(0);
        build(EngineKind::Postgres, 0, &s, 0, sql)
            .actions()
            .to_vec()
    };
    assert_eq!(act("VACUUM ANALYZE fulltext_docs"), vec![Action::Vacuum]);
    assert_eq!(
        act("VACUUM FULL t"),
        vec![Action::VacuumFull {
            table: act("VACUUM FULL t").iter().find_map(|a| {
                if let Action::VacuumFull { table } = a {
                    table.clone()
                } else {
                    None
                }
            })
        }]
    );
    assert_eq!(
        act("REINDEX TABLE concurrently_log"),
        vec![Action::Reindex {
            concurrently: false,
            table: Some(QName {
                schema: None,
                name: "concurrently_log".into()
            })
        }]
    );
    assert_eq!(
        act("REINDEX TABLE CONCURRENTLY log"),
        vec![Action::Reindex {
            concurrently: true,
            table: Some(QName {
                schema: None,
                name: "log".into()
            })
        }]
    );
    assert_eq!(
        act("ALTER DOMAIN address VALIDATE CONSTRAINT c"),
        vec![Action::Other]
    );
    assert_eq!(
        act("ALTER DOMAIN d ADD CONSTRAINT c CHECK (VALUE > 0) NOT VALID"),
        vec![Action::AlterDomainAddConstraint { not_valid: true }]
    );
}
