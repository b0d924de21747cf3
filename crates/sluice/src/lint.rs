//! `sluice lint` and `sluice rules`: output of findings as human text with source, JSON, GitHub
//! workflow annotations and SARIF.

use sluice_core::analysis::{LintReport, Severity};
use sluice_core::migration::Migration;
use sluice_core::rules::RULES;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Human,
    Json,
    Github,
    Sarif,
}

/// Prints findings file by file as they come (human, github), or collects them for one document
/// (json, sarif): either way no file text is kept after its findings are rendered.
pub struct Output {
    format: Format,
    findings: Vec<sluice_core::analysis::Finding>,
}

impl Output {
    pub fn new(format: Format) -> Output {
        Output {
            format,
            findings: Vec::new(),
        }
    }

    pub fn file(&mut self, m: &Migration, findings: Vec<sluice_core::analysis::Finding>) {
        match self.format {
            Format::Human => human(&findings, &m.text),
            Format::Github => github(&findings),
            Format::Json | Format::Sarif => {}
        }
        self.findings.extend(findings);
    }

    pub fn finish(self, linter: &sluice_core::analysis::Linter) -> LintReport {
        let report = linter.report(self.findings);
        match self.format {
            Format::Human => summary(&report),
            Format::Github => {}
            Format::Json => println!(
                "{}",
                serde_json::to_string_pretty(&report).expect("report serialises")
            ),
            Format::Sarif => println!(
                "{}",
                serde_json::to_string_pretty(&sarif(&report)).expect("sarif serialises")
            ),
        }
        report
    }
}

fn human(findings: &[sluice_core::analysis::Finding], text: &str) {
    use miette::{LabeledSpan, MietteDiagnostic, NamedSource, Report};
    for f in findings {
        let severity = match f.severity {
            Severity::Error => miette::Severity::Error,
            Severity::Warning => miette::Severity::Warning,
            Severity::Info => miette::Severity::Advice,
        };
        // Underline the statement's first line: enough to find it, short enough to read.
        let first_line_len = text
            .get(f.offset..)
            .map(|t| t.find('\n').unwrap_or(t.len()))
            .unwrap_or(0);
        let len = f.length.min(first_line_len).max(1);
        let diag = MietteDiagnostic::new(f.message.clone())
            .with_code(f.rule)
            .with_severity(severity)
            .with_labels([LabeledSpan::new_primary_with_span(
                None,
                f.offset..f.offset + len,
            )])
            .with_help(format!("why: {}\nsafe: {}", f.why, f.help));
        let report = Report::new(diag).with_source_code(NamedSource::new(
            f.path.display().to_string(),
            text.to_string(),
        ));
        println!("{report:?}");
    }
}

fn summary(report: &LintReport) {
    let count = |s| report.findings.iter().filter(|f| f.severity == s).count();
    println!(
        "{}: {} file(s), {} statement(s): {} error(s), {} warning(s), {} note(s)",
        report.target,
        report.files,
        report.statements,
        count(Severity::Error),
        count(Severity::Warning),
        count(Severity::Info)
    );
}

/// GitHub workflow commands: one annotation per finding, shown on the pull request diff.
fn github(findings: &[sluice_core::analysis::Finding]) {
    let esc_data = |s: &str| {
        s.replace('%', "%25")
            .replace('\r', "%0D")
            .replace('\n', "%0A")
    };
    let esc_prop = |s: &str| esc_data(s).replace(':', "%3A").replace(',', "%2C");
    for f in findings {
        let level = match f.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Info => "notice",
        };
        println!(
            "::{level} file={},line={},col={},title={}::{}",
            esc_prop(&f.path.display().to_string()),
            f.line,
            f.column,
            esc_prop(&format!("sluice {}", f.rule)),
            esc_data(&format!("{} — safe: {}", f.message, f.help))
        );
    }
}

fn level(s: Severity) -> &'static str {
    match s {
        Severity::Error => "error",
        Severity::Warning => "warning",
        Severity::Info => "note",
    }
}

pub fn sarif(report: &LintReport) -> serde_json::Value {
    use serde_json::json;
    let rules: Vec<serde_json::Value> = RULES
        .iter()
        .map(|r| {
            json!({
                "id": r.id,
                "shortDescription": { "text": r.summary },
                "fullDescription": { "text": r.why },
                "help": { "text": r.safe },
                "defaultConfiguration": { "level": level(r.severity) },
            })
        })
        .collect();
    let results: Vec<serde_json::Value> = report
        .findings
        .iter()
        .map(|f| {
            json!({
                "ruleId": f.rule,
                "ruleIndex": RULES.iter().position(|r| r.id == f.rule),
                "level": level(f.severity),
                "message": { "text": format!("{} Safe: {}", f.message, f.help) },
                "locations": [{
                    "physicalLocation": {
                        "artifactLocation": { "uri": f.path.display().to_string().replace('\\', "/") },
                        "region": { "startLine": f.line, "startColumn": f.column },
                    }
                }],
            })
        })
        .collect();
    json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": { "driver": {
                "name": "sluice",
                "version": sluice_core::SLUICE_VERSION,
                "rules": rules,
            }},
            "results": results,
        }],
    })
}

pub fn list_rules() {
    println!(
        "{:<40} {:<8} {:<12} WHAT IT DETECTS",
        "RULE", "LEVEL", "ENGINES"
    );
    for r in RULES {
        let engines = match r.engines {
            sluice_core::analysis::Engines::Postgres => "postgres",
            sluice_core::analysis::Engines::MySqlFamily => "mysql",
            sluice_core::analysis::Engines::All => "all",
        };
        println!(
            "{:<40} {:<8} {:<12} {}",
            r.id,
            r.severity.as_str(),
            engines,
            r.summary
        );
    }
    println!("\n`sluice rules <id>` explains one; suppress one finding with `-- sluice:ignore <id> <reason>` on the line before the statement");
}

pub fn explain_rule(id: &str) -> sluice_core::Result<()> {
    let Some(r) = sluice_core::rules::find(id) else {
        let close: Vec<&str> = RULES
            .iter()
            .map(|r| r.id)
            .filter(|r| r.contains(id) || id.contains(*r))
            .collect();
        return Err(sluice_core::Error::usage(
            format!("no rule `{id}`"),
            if close.is_empty() {
                "`sluice rules` lists every rule".to_string()
            } else {
                format!("did you mean: {}?", close.join(", "))
            },
        ));
    };
    println!(
        "{} ({})\n\n{}\n\nWhy it hurts:\n  {}\n\nSafe alternative:\n{}\n",
        r.id,
        r.severity.as_str(),
        r.summary,
        r.why,
        indent(r.safe)
    );
    println!("Suppress one finding with a comment on the line before the statement:\n  -- sluice:ignore {} <reason>", r.id);
    Ok(())
}

fn indent(s: &str) -> String {
    s.lines()
        .map(|l| format!("  {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

pub fn exit_code(report: &LintReport) -> i32 {
    if report.errors() > 0 {
        sluice_core::error::exit::LINT_ERRORS
    } else {
        sluice_core::error::exit::OK
    }
}
