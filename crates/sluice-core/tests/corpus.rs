//! The labelled lint corpus: every case's expected findings against what `lint` reports. Precision and
//! recall are computed over all cases and must both be 100%.
//!
//! Cases live in `tests/corpus/*.toml`:
//! ```toml
//! [[case]]
//! name = "index on an existing table"
//! target = "postgres:15"
//! sql = "CREATE INDEX i ON t (a);"          # the file text (directives allowed)
//! expect = ["require-concurrent-index-creation"]  # rule ids, one per expected finding
//! rows = { t = 5000000 }                     # optional: live row counts, as when connected
//! ```

use sluice_core::analysis::TableStats;
use sluice_core::lint::{lint, LintOptions};
use sluice_core::migration::parse_text;
use sluice_core::target::Target;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

#[derive(serde::Deserialize)]
struct File {
    case: Vec<Case>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    name: String,
    target: String,
    sql: String,
    expect: Vec<String>,
    #[serde(default)]
    rows: Option<HashMap<String, i64>>,
    #[serde(default)]
    include_down: bool,
}

#[test]
fn corpus_precision_and_recall_are_100_percent() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus");
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    paths.sort();
    let (mut tp, mut fp, mut fneg, mut cases) = (0usize, 0usize, 0usize, 0usize);
    let mut failures = Vec::new();
    let mut per_rule: BTreeMap<String, usize> = BTreeMap::new();
    let mut names = std::collections::HashSet::new();
    for p in &paths {
        let text = std::fs::read_to_string(p).unwrap();
        let file: File = toml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        for c in file.case {
            cases += 1;
            assert!(
                names.insert(c.name.clone()),
                "duplicate case name `{}`",
                c.name
            );
            let target = Target::parse(&c.target).unwrap_or_else(|e| panic!("{}: {e}", c.name));
            let m = parse_text(Path::new("corpus.sql"), 1, "case".into(), &c.sql)
                .unwrap_or_else(|e| panic!("case `{}`: {e}", c.name));
            let opts = LintOptions {
                include_down: c.include_down,
                stats: c.rows.as_ref().map(|r| {
                    r.iter()
                        .map(|(k, v)| {
                            (
                                k.clone(),
                                TableStats {
                                    rows: *v,
                                    bytes: v * 100,
                                    has_default_partition: false,
                                },
                            )
                        })
                        .collect()
                }),
                ..Default::default()
            };
            let report = lint(target, &[m], &opts);
            let mut got: Vec<String> = report.findings.iter().map(|f| f.rule.to_string()).collect();
            let mut want = c.expect.clone();
            for w in &want {
                assert!(
                    sluice_core::rules::find(w).is_some(),
                    "case `{}` expects unknown rule `{w}`",
                    c.name
                );
                *per_rule.entry(w.clone()).or_default() += 1;
            }
            got.sort();
            want.sort();
            // Multiset comparison.
            let mut g = got.clone();
            let mut matched = 0;
            for w in &want {
                if let Some(i) = g.iter().position(|x| x == w) {
                    g.remove(i);
                    matched += 1;
                }
            }
            tp += matched;
            fneg += want.len() - matched;
            fp += g.len();
            if got != want {
                let detail: Vec<String> = report
                    .findings
                    .iter()
                    .map(|f| format!("{} @{}:{} {}", f.rule, f.line, f.column, f.message))
                    .collect();
                failures.push(format!(
                    "{} [{}]\n  expected {want:?}\n  got      {got:?}\n    {}",
                    c.name,
                    c.target,
                    detail.join("\n    ")
                ));
            }
        }
    }
    let precision = if tp + fp == 0 {
        1.0
    } else {
        tp as f64 / (tp + fp) as f64
    };
    let recall = if tp + fneg == 0 {
        1.0
    } else {
        tp as f64 / (tp + fneg) as f64
    };
    println!(
        "corpus: {cases} cases, {tp} true positives, {fp} false positives, {fneg} false negatives"
    );
    println!(
        "precision {:.2}%, recall {:.2}%",
        precision * 100.0,
        recall * 100.0
    );
    let uncovered: Vec<&str> = sluice_core::rules::RULES
        .iter()
        .map(|r| r.id)
        .filter(|id| !per_rule.contains_key(*id))
        .collect();
    assert!(
        failures.is_empty(),
        "{} case(s) differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(
        uncovered.is_empty(),
        "rules without a positive case in the corpus: {uncovered:?}"
    );
    assert!(
        cases >= 200,
        "the corpus needs at least 200 cases, has {cases}"
    );
}
