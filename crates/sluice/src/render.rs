//! Everything the command prints: human text on a terminal, JSON on request, errors with source spans.

use sluice_core::error::Error;
use sluice_core::history::EventRow;
use sluice_core::runner::{DriftReport, DriftState, PlannedMigration, StatusReport, VerifyReport};
use std::sync::atomic::{AtomicBool, Ordering};

static QUIET: AtomicBool = AtomicBool::new(false);
static BAR: std::sync::OnceLock<indicatif::ProgressBar> = std::sync::OnceLock::new();

/// A progress bar for long data work when stderr is a terminal; None otherwise (log lines then).
pub fn progress_bar() -> Option<sluice_core::engine::Progress> {
    use std::io::IsTerminal;
    if QUIET.load(Ordering::Relaxed) || !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = BAR.get_or_init(|| {
        let bar = indicatif::ProgressBar::new(0);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} backfill [{bar:40}] {human_pos}/{human_len} rows ({percent}%), ETA {eta}",
            )
            .expect("valid template")
            .progress_chars("=> "),
        );
        bar
    });
    let bar = bar.clone();
    Some(sluice_core::engine::Progress(std::sync::Arc::new(
        move |done, total| {
            bar.set_length(total.max(0) as u64);
            bar.set_position(done.max(0) as u64);
        },
    )))
}

pub fn finish_progress() {
    if let Some(bar) = BAR.get() {
        bar.finish_and_clear();
    }
}

pub fn init_logging(verbose: u8, quiet: bool) {
    QUIET.store(quiet, Ordering::Relaxed);
    // Unwrapped lines: messages stay greppable in CI logs and match what the user searches for.
    let _ = miette::set_hook(Box::new(|_| {
        Box::new(miette::MietteHandlerOpts::new().wrap_lines(false).build())
    }));
    let default = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info,sluice=debug",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("SLUICE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .try_init();
}

/// A progress line, on stderr so stdout stays clean for reports and JSON.
pub fn say(line: &str) {
    if !QUIET.load(Ordering::Relaxed) {
        errln!("sluice: {}", sluice_core::redact::secrets(line));
    }
}

pub fn error(e: &Error) {
    use miette::{LabeledSpan, MietteDiagnostic, NamedSource, Report};
    let code = e.exit_code();
    let report = match e {
        Error::MigrationFailed(f) => {
            let stmt_end = (f.offset + f.statement.len()).min(f.file_text.len());
            let label_start = f.error_offset.min(stmt_end);
            let mut diag = MietteDiagnostic::new(printable(&e.to_string())).with_labels([
                LabeledSpan::new_primary_with_span(
                    Some(if f.code.is_empty() {
                        "here".to_string()
                    } else {
                        format!("server error {}", f.code)
                    }),
                    label_start
                        ..stmt_end
                            .max(label_start + 1)
                            .min(f.file_text.len().max(label_start + 1)),
                ),
            ]);
            if let Some(h) = e.help() {
                diag = diag.with_help(printable(&h));
            }
            Report::new(diag).with_source_code(NamedSource::new(
                f.path.display().to_string(),
                same_width_printable(&f.file_text),
            ))
        }
        _ => {
            let mut diag = MietteDiagnostic::new(printable(&e.to_string()));
            if let Some(h) = e.help() {
                diag = diag.with_help(printable(&h));
            }
            Report::new(diag)
        }
    };
    // The report's parts were made printable above; its own colours must pass.
    eprintln!("error: {report:?}");
    errln!("(exit code {code})");
}

/// Every error passes the one redactor and the terminal guard on its way out, whatever built it.
fn printable(s: &str) -> String {
    sluice_core::error::printable(&sluice_core::redact::secrets(s)).into_owned()
}

/// The file text for the source excerpt, each unprintable character replaced by as many `?` as its
/// bytes, so the labels' byte offsets still point at the statement.
fn same_width_printable(text: &str) -> String {
    text.chars()
        .map(|c| {
            if sluice_core::error::unprintable(c) {
                "?".repeat(c.len_utf8())
            } else {
                c.to_string()
            }
        })
        .collect()
}

fn ts(t: Option<chrono::DateTime<chrono::Utc>>) -> String {
    t.map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_else(|| "-".into())
}

fn json<T: serde::Serialize>(v: &T) {
    outln!(
        "{}",
        serde_json::to_string_pretty(v).expect("report serialises")
    );
}

pub fn status(r: &StatusReport, as_json: bool) {
    if as_json {
        return json(r);
    }
    outln!("{} at {}", r.target, r.database);
    if r.migrations.is_empty() {
        outln!("no migrations");
    } else {
        outln!(
            "{:<16} {:<32} {:<13} {:<20} {:<16} APPLIED BY",
            "VERSION",
            "NAME",
            "STATE",
            "APPLIED AT (UTC)",
            "APP VERSION"
        );
        for m in &r.migrations {
            outln!(
                "{:<16} {:<32} {:<13} {:<20} {:<16} {}",
                m.version,
                m.name,
                m.status.as_str(),
                ts(m.applied_at),
                m.app_version.as_deref().unwrap_or("-"),
                m.applied_by.as_deref().unwrap_or("-"),
            );
            if let Some(e) = &m.error {
                outln!("{:<16} error: {e}", "");
            }
            if let Some(done) = m.statements_done.filter(|d| *d > 0) {
                outln!(
                    "{:<16} {done} statement(s) applied; `sluice up` resumes after them",
                    ""
                );
            }
        }
    }
    match &r.drift {
        DriftState::Unknown => outln!("schema drift: unknown (no snapshot recorded yet)"),
        DriftState::Clean => outln!("schema drift: none"),
        DriftState::Drifted { differences } => {
            outln!(
                "schema drift: {} difference(s) — run `sluice drift` for details",
                differences.len()
            )
        }
    }
}

pub fn plan(planned: &[PlannedMigration], verb: &str) {
    if planned.is_empty() {
        outln!("nothing to {verb}");
        return;
    }
    outln!("would {verb} {} migration(s):", planned.len());
    for p in planned {
        outln!(
            "\n{}_{}  [{}: {}]",
            p.version,
            p.name,
            p.mode.name(),
            p.mode_reason
        );
        for (i, s) in p.statements.iter().enumerate() {
            let skip = if i < p.resume_from {
                "  (already applied, skipped)"
            } else {
                ""
            };
            let first = s.lines().next().unwrap_or("");
            let more = if s.lines().count() > 1 { " …" } else { "" };
            outln!("  {:>3}. {first}{more}{skip}", i + 1);
            if let Some(Some(r)) = p.runs_as.get(i) {
                outln!("       runs as: {}  ({})", r.sql, r.note);
                for step in &r.then {
                    outln!("          then: {step}");
                }
            }
        }
    }
}

pub fn verify(r: &VerifyReport, as_json: bool) {
    if as_json {
        return json(r);
    }
    for e in &r.edited {
        outln!(
            "edited: {}_{} changed since it was applied",
            e.version,
            e.name
        );
    }
    for e in &r.missing_files {
        outln!(
            "missing file: {}_{} is recorded in the database but has no file",
            e.version,
            e.name
        );
    }
    if r.edited.is_empty() && r.missing_files.is_empty() {
        outln!("ok: {} applied migration(s) match their files", r.checked);
    } else {
        outln!("restore the files, or run `sluice repair` to accept intentional edits");
    }
}

pub fn drift(r: &DriftReport, as_json: bool) {
    if as_json {
        return json(r);
    }
    let against = r
        .snapshot_version
        .map(|v| format!(" (snapshot after {v}, {})", ts(r.snapshot_taken_at)))
        .unwrap_or_default();
    if r.differences.is_empty() {
        outln!("no drift: the live schema matches what sluice recorded{against}");
        return;
    }
    outln!(
        "{} difference(s) between the recorded schema{against} and the live one:",
        r.differences.len()
    );
    for d in &r.differences {
        outln!("  {d}");
    }
    outln!("capture them as a migration with `sluice drift --write-migration`");
}

pub fn events(events: &[EventRow], as_json: bool) {
    if as_json {
        return json(&events);
    }
    for e in events {
        let ev = &e.event;
        outln!(
            "{}  {:<13} {:<40} {} app={} sluice={}  {}",
            e.at.format("%Y-%m-%d %H:%M:%S"),
            ev.kind.as_str(),
            match (&ev.version, &ev.name) {
                (Some(v), Some(n)) => format!("{v}_{n}"),
                (Some(v), None) => v.to_string(),
                _ => "-".into(),
            },
            ev.actor,
            ev.app_version.as_deref().unwrap_or("-"),
            ev.sluice_version,
            ev.detail
        );
    }
}

fn human_secs(s: f64) -> String {
    if s < 1.0 {
        format!("{:.0} ms", s * 1000.0)
    } else if s < 120.0 {
        format!("{s:.1} s")
    } else if s < 7200.0 {
        format!("{:.0} min", s / 60.0)
    } else {
        format!("{:.1} h", s / 3600.0)
    }
}

fn human_bytes(b: i64) -> String {
    let b = b as f64;
    if b >= 1e9 {
        format!("{:.1} GB", b / 1e9)
    } else if b >= 1e6 {
        format!("{:.0} MB", b / 1e6)
    } else {
        format!("{:.0} kB", b / 1e3)
    }
}

pub fn plan_report(r: &sluice_core::runner::PlanReport, as_json: bool) {
    use sluice_core::plan::Effect;
    if as_json {
        return json(r);
    }
    outln!("{} at {}", r.target, r.database);
    if r.migrations.is_empty() {
        outln!("nothing pending");
        return;
    }
    for (t, s) in &r.tables {
        outln!("  table {t}: ~{} rows, {}", s.rows, human_bytes(s.bytes));
    }
    outln!("note: on PostgreSQL `sluice up` already runs the index, constraint, NOT NULL and backfill steps below; a type change that rewrites is refused unless --as-written; on MariaDB/MySQL every ALTER TABLE runs online (the `online:` lines: INSTANT/INPLACE with the algorithm written out, else a shadow-table copy). `up --dry-run` shows exactly what runs");
    for m in &r.migrations {
        outln!("\n{}_{}  [{}]", m.version, m.name, m.mode.name());
        for sp in &m.statements {
            let first = sp.sql.lines().next().unwrap_or("");
            outln!(
                "  line {}: {first}{}",
                sp.line,
                if sp.sql.lines().count() > 1 {
                    " …"
                } else {
                    ""
                }
            );
            if let Some(lines) = &sp.online {
                for l in lines {
                    outln!("    {}", l.trim());
                }
            }
            for a in &sp.actions {
                let effect = format!("{:?}", a.impact.effect).to_lowercase();
                let est = match (a.estimate_secs, a.impact.effect) {
                    (Some(s), e) if e != Effect::Instant => format!(
                        ", ~{} on {}",
                        human_secs(s),
                        a.table.as_deref().unwrap_or("?")
                    ),
                    _ => String::new(),
                };
                outln!(
                    "    as written: {} lock, {effect}{est}, blocks {}{}",
                    a.impact.lock,
                    a.impact.blocks.describe(),
                    if a.impact.note.is_empty() {
                        String::new()
                    } else {
                        format!(" — {}", a.impact.note)
                    }
                );
                if let Some(why) = &a.refused {
                    outln!("    no safe form: {why}");
                }
                if !a.safe_steps.is_empty() {
                    outln!("    safe steps:");
                    for (i, st) in a.safe_steps.iter().enumerate() {
                        outln!(
                            "      {}. {} [{}, {}, blocks {}{}]",
                            i + 1,
                            st.description,
                            st.lock,
                            format!("{:?}", st.effect).to_lowercase(),
                            st.blocks.describe(),
                            if st.transactional {
                                ""
                            } else {
                                ", outside a transaction"
                            }
                        );
                        outln!("         {}", st.sql);
                    }
                }
            }
        }
        for f in &m.findings {
            outln!(
                "  {} [{}] line {}: {}",
                f.severity.as_str(),
                f.rule,
                f.line,
                f.message
            );
        }
    }
}
