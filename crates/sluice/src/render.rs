//! Everything the command prints: human text on a terminal, JSON on request, errors with source spans.

use sluice_core::error::Error;
use sluice_core::history::EventRow;
use sluice_core::runner::{DriftReport, DriftState, PlannedMigration, StatusReport, VerifyReport};
use std::sync::atomic::{AtomicBool, Ordering};

static QUIET: AtomicBool = AtomicBool::new(false);
/// The bar on screen: its task, phase, unit and whether it knows a total, then the bar.
type Shown = (String, String, String, bool, indicatif::ProgressBar);
static BAR: std::sync::Mutex<Option<Shown>> = std::sync::Mutex::new(None);

/// A progress bar for long work (backfill, online copy and catch-up, index builds) when stderr is
/// a terminal; None otherwise, and the work logs its progress every interval instead.
pub fn progress_bar() -> Option<sluice_core::progress::Progress> {
    use std::io::IsTerminal;
    if QUIET.load(Ordering::Relaxed) || !std::io::stderr().is_terminal() {
        return None;
    }
    Some(sluice_core::progress::Progress(std::sync::Arc::new(show)))
}

fn show(t: &sluice_core::progress::Tick<'_>) {
    let mut shown = BAR.lock().unwrap_or_else(|e| e.into_inner());
    if t.finished {
        if shown.as_ref().is_some_and(|s| s.0 == t.task) {
            if let Some((.., bar)) = shown.take() {
                bar.finish_and_clear();
            }
        }
        return;
    }
    let has_total = t.total > 0;
    let same = shown
        .as_ref()
        .is_some_and(|s| s.0 == t.task && s.1 == t.phase && s.2 == t.unit && s.3 == has_total);
    if !same {
        if let Some((.., old)) = shown.take() {
            old.finish_and_clear();
        }
        // A new bar per phase: its rate and ETA are measured afresh.
        let template = if has_total {
            "{spinner} {prefix} [{bar:40}] {human_pos}/{human_len} {msg} ({percent}%), ETA {eta}"
        } else {
            "{spinner} {prefix}: {human_pos} {msg}"
        };
        // Drawn only once set up: a first frame without its unit would flash by otherwise.
        let bar = indicatif::ProgressBar::hidden();
        bar.set_length(t.total);
        bar.set_style(
            indicatif::ProgressStyle::with_template(template)
                .expect("valid template")
                .progress_chars("=> "),
        );
        // Names come from the server and the files: through the same terminal guard as lines.
        bar.set_prefix(printable(&if t.phase.is_empty() {
            t.task.to_string()
        } else {
            format!("{} ({})", t.task, t.phase)
        }));
        bar.set_message(printable(t.unit));
        bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
        *shown = Some((
            t.task.to_string(),
            t.phase.to_string(),
            t.unit.to_string(),
            has_total,
            bar,
        ));
    }
    if let Some((.., bar)) = shown.as_ref() {
        bar.set_length(t.total);
        bar.set_position(t.done);
    }
}

/// Clears a bar left on screen (work that ended without finishing its meter).
pub fn finish_progress() {
    if let Some((.., bar)) = BAR.lock().unwrap_or_else(|e| e.into_inner()).take() {
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
        let line = sluice_core::redact::secrets(line);
        // A line printed over a progress bar would be overwritten by its next redraw.
        let bar = BAR
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map(|s| s.4.clone());
        match bar {
            Some(bar) => bar.suspend(|| errln!("sluice: {line}")),
            None => errln!("sluice: {line}"),
        }
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
    crate::stderr_line(&format!("error: {report:?}"));
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
    out!("{}", status_text(r));
}

/// The human `status`: a table sized to its content, then what needs attention and the command
/// that deals with it.
fn status_text(r: &StatusReport) -> String {
    use sluice_core::runner::MigrationStatus as S;
    let mut out = format!("{} at {}\n", r.target, r.database);
    // sluice's own layout is the unremarkable default; another tool's is worth a line.
    if let Some(l) = r.layout.as_deref().filter(|l| *l != "sluice") {
        out.push_str(&format!("migrations in {l}'s layout\n"));
    }
    if r.migrations.is_empty() {
        out.push_str("no migrations\n");
    } else {
        let header = [
            "VERSION",
            "NAME",
            "STATE",
            "APPLIED AT (UTC)",
            "TOOK",
            "APP VERSION",
            "APPLIED BY",
        ];
        let rows: Vec<[String; 7]> = r
            .migrations
            .iter()
            .map(|m| {
                [
                    // A repeatable has no version: named as its file is (`R_views`, `R__views`).
                    if sluice_core::layout::is_repeatable_key(m.version) {
                        format!("{}_{}", m.version_text, m.name)
                    } else {
                        m.version_text.clone()
                    },
                    m.name.clone(),
                    match m.open_secs {
                        Some(secs) => format!("expanded (open {})", took(secs * 1000)),
                        None => m.status.as_str().to_string(),
                    },
                    ts(m.applied_at),
                    m.duration_ms.map(took).unwrap_or_else(|| "-".into()),
                    m.app_version.clone().unwrap_or_else(|| "-".into()),
                    m.applied_by.clone().unwrap_or_else(|| "-".into()),
                ]
            })
            .collect();
        let width = |i: usize| {
            rows.iter()
                .map(|r| r[i].chars().count())
                .chain([header[i].len()])
                .max()
                .unwrap_or(0)
        };
        let widths: Vec<usize> = (0..header.len()).map(width).collect();
        let line = |cells: &[String]| -> String {
            let mut l = String::new();
            for (i, c) in cells.iter().enumerate() {
                if i + 1 == cells.len() {
                    l.push_str(c);
                } else {
                    l.push_str(&format!("{c:<w$}  ", w = widths[i]));
                }
            }
            l.trim_end().to_string() + "\n"
        };
        out.push_str(&line(&header.map(String::from)));
        for row in &rows {
            out.push_str(&line(row));
        }
        let mut attention: Vec<String> = Vec::new();
        for m in &r.migrations {
            let label = format!("{} {}", m.version_text, m.name);
            // A repeatable never resumes: `up` runs its whole file again.
            let done = match sluice_core::layout::is_repeatable_key(m.version) {
                true => 0,
                false => m.statements_done.unwrap_or(0),
            };
            let resumes = if done > 0 {
                format!(" (it resumes after the {done} statement(s) already applied)")
            } else {
                String::new()
            };
            let (what, next) = match m.status {
                S::Applied | S::Baseline | S::Pending | S::New | S::Changed => continue,
                S::OutOfOrder => (
                    "is pending but older than an applied migration".to_string(),
                    "`sluice up --out-of-order` applies it; or give it a newer version".to_string(),
                ),
                S::Failed => (
                    match &m.error {
                        Some(e) => format!("failed: {}", e.replace('\n', "\n  ")),
                        None => "failed".to_string(),
                    },
                    format!("fix the failing statement in its file, then `sluice up`{resumes}"),
                ),
                S::Interrupted => (
                    "was interrupted (the run was killed or lost its connection)".to_string(),
                    format!("`sluice up`{resumes}"),
                ),
                S::Running => (
                    "is being applied by a run that holds the lock now".to_string(),
                    "wait for it; `sluice status` again shows where it stands".to_string(),
                ),
                S::Reverting => (
                    match &m.error {
                        Some(e) => format!("is being rolled back, or its rollback stopped: {e}"),
                        None => "is being rolled back, or its rollback stopped".to_string(),
                    },
                    "`sluice down` resumes the rollback".to_string(),
                ),
                S::Edited if m.open_secs.is_some() => (
                    "is expanded and its file has changed since `sluice up`".to_string(),
                    "restore the file: `sluice complete` and `sluice rollback` are planned from it, so it must read as at `sluice up` (change the schema further in a new migration)".to_string(),
                ),
                S::Edited => (
                    "was applied and its file has changed since".to_string(),
                    "`sluice verify` shows the edits; restore the file, or `sluice repair` accepts an intentional edit".to_string(),
                ),
                S::Expanded => (
                    format!(
                        "is expanded{}: two application versions can run, each as `sluice plan` says it sees the change",
                        m.open_secs
                            .map(|s| format!(" (open for {})", took(s * 1000)))
                            .unwrap_or_default()
                    ),
                    "`sluice complete` once the new application version runs everywhere (what only the old version uses stops working), or `sluice rollback` to undo the expand phase".to_string(),
                ),
                S::MissingFile => (
                    "is recorded in the database but has no file".to_string(),
                    "restore the file (from version control) into the migrations directory".to_string(),
                ),
            };
            attention.push(format!("{label} {what}\n  next: {next}\n"));
        }
        let pending = r
            .migrations
            .iter()
            .filter(|m| m.status == S::Pending)
            .count();
        if pending > 0 {
            attention.push(format!(
                "{pending} migration(s) pending\n  next: `sluice plan` shows what they lock, `sluice up` applies them\n"
            ));
        }
        let repeat = r
            .migrations
            .iter()
            .filter(|m| matches!(m.status, S::New | S::Changed))
            .count();
        if repeat > 0 {
            attention.push(format!(
                "{repeat} repeatable migration(s) new or changed since last applied\n  next: `sluice up` applies them after the pending versioned ones\n"
            ));
        }
        if !attention.is_empty() {
            out.push('\n');
            for a in attention {
                out.push_str(&a);
            }
        }
    }
    out.push('\n');
    match &r.drift {
        DriftState::Unknown => out.push_str("schema drift: unknown (no snapshot recorded yet)\n"),
        DriftState::Clean => out.push_str("schema drift: none\n"),
        // A migration sluice has not finished left its own half-made objects: capturing them
        // as a migration (whose down part drops them) would lose the data they hold.
        DriftState::Drifted { differences }
            if r.migrations.iter().any(|m| {
                matches!(
                    m.status,
                    S::Interrupted | S::Running | S::Reverting | S::Expanded
                )
            }) =>
        {
            out.push_str(&format!(
                "schema drift: {} difference(s), some of which may be what an unfinished migration above left\n  next: finish or undo that migration first (as said above), then `sluice drift` again\n",
                differences.len()
            ))
        }
        DriftState::Drifted { differences } => out.push_str(&format!(
            "schema drift: {} difference(s)\n  next: `sluice drift` lists them; `sluice drift --write-migration` captures them as a migration\n",
            differences.len()
        )),
    }
    out
}

/// A duration for people: `850ms`, `12.3s`, `4m05s`, `2h07m`.
fn took(ms: i64) -> String {
    let ms = ms.max(0);
    match ms {
        0..=999 => format!("{ms}ms"),
        1_000..=59_999 => format!("{}.{}s", ms / 1000, ms % 1000 / 100),
        60_000..=3_599_999 => format!("{}m{:02}s", ms / 60_000, ms % 60_000 / 1000),
        _ => format!("{}h{:02}m", ms / 3_600_000, ms % 3_600_000 / 60_000),
    }
}

/// How a planned migration is named: `<version>_<name>`, or `repeatable <name>`.
/// How `plan` and the dry run head a migration: `<version>_<name>`, a repeatable as its file is
/// named (`R_views`, Flyway's `R__views`), never by its internal key.
fn label(version: i64, version_text: &str, name: &str) -> String {
    if sluice_core::layout::is_repeatable_key(version) {
        format!("{version_text}_{name} (repeatable)")
    } else {
        format!("{version}_{name}")
    }
}

pub fn plan(planned: &[PlannedMigration], verb: &str, as_json: bool) {
    if as_json {
        return json(&planned);
    }
    if planned.is_empty() {
        outln!("nothing to {verb}");
        return;
    }
    outln!("would {verb} {} migration(s):", planned.len());
    for p in planned {
        outln!(
            "\n{}  [{}: {}]",
            label(p.version, &p.version_text, &p.name),
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
            "edited: {} changed since it was applied",
            sluice_core::layout::history_label(None, e.version, &e.name)
        );
    }
    for e in &r.missing_files {
        outln!(
            "missing file: {} is recorded in the database but has no file",
            sluice_core::layout::history_label(None, e.version, &e.name)
        );
    }
    if r.edited.is_empty() && r.missing_files.is_empty() {
        outln!("ok: {} applied migration(s) match their files", r.checked);
    } else if r.edited.is_empty() {
        // `repair` accepts edits, never a missing file.
        outln!("restore the missing files (from version control) into the migrations directory");
    } else if r.edited.iter().any(|e| e.open_secs.is_some()) {
        outln!("restore the files; `sluice repair` accepts intentional edits of applied migrations, never of an expanded one (its complete and rollback are planned from its file)");
    } else {
        outln!("restore the files, or run `sluice repair` to accept intentional edits (a missing file must be restored)");
    }
}

pub fn drift(r: &DriftReport, layout: Option<sluice_core::layout::Layout>, as_json: bool) {
    if as_json {
        return json(r);
    }
    let against = r
        .snapshot_version
        .map(|v| {
            let v = match layout {
                Some(l) => sluice_core::layout::version_text_of(l, v),
                None => v.to_string(),
            };
            format!(" (snapshot after {v}, {})", ts(r.snapshot_taken_at))
        })
        .unwrap_or_default();
    for n in &r.notes {
        outln!("note: {n}");
    }
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
    if r.unfinished.is_empty() {
        outln!("capture them as a migration with `sluice drift --write-migration`");
    } else {
        outln!(
            "migration {} is unfinished, and some of these may be what it left half made: finish it (`sluice up` resumes an interrupted run, `sluice complete` an expanded migration) or undo it (`sluice rollback`, `sluice down`), then run `sluice drift` again",
            r.unfinished.join(", ")
        );
    }
}

/// `layout`: the project's, so a repeatable is named as its file is (`R_views`, `R__views`).
pub fn events(events: &[EventRow], layout: Option<sluice_core::layout::Layout>, as_json: bool) {
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
                (Some(v), Some(n)) => sluice_core::layout::history_label(layout, *v, n),
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
    for w in &r.replication {
        outln!("logical replication: {w}");
    }
    outln!("note: on PostgreSQL `sluice up` already runs the index, constraint, NOT NULL and backfill steps below; a type change that rewrites runs staged (shadow column, trigger, backfill, swap) or is refused with the reason; on MariaDB/MySQL every ALTER TABLE runs online (the `online:` lines: INSTANT/INPLACE with the algorithm written out, else a shadow-table copy). `up --dry-run` shows exactly what runs");
    for m in &r.migrations {
        outln!(
            "\n{}  [{}]",
            label(m.version, &m.version_text, &m.name),
            m.mode.name()
        );
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
            // A statement `up` refuses does not run online: its online lines say what
            // `--as-written` would send.
            let refused = sp.actions.iter().any(|a| a.refused.is_some());
            if let Some(lines) = &sp.online {
                for l in lines {
                    if refused {
                        outln!("    with --as-written, {}", l.trim());
                    } else {
                        outln!("    {}", l.trim());
                    }
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
        if let Some(l) = &m.lifecycle {
            outln!(
                "  two application versions live: {} runs in two phases",
                l.change
            );
            outln!(
                "    `sluice up` (expand): {} step(s) above; then `sluice complete` (contract):",
                l.expand.len()
            );
            outln!("         {}", l.complete.sql);
            outln!("    or `sluice rollback` (undo the expand phase, before complete):");
            outln!(
                "         {}",
                match l.rollback.sql.is_empty() {
                    true => "-- nothing to undo: the expand phase changes nothing",
                    false => &l.rollback.sql,
                }
            );
            outln!("    what each application version sees:");
            for (stage, what) in &l.sees {
                outln!("      {stage}: {what}");
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

/// What `sluice import` recorded and what it found.
pub fn import(r: &sluice_core::import::ImportReport) {
    let list = |v: &[String]| v.join(", ");
    if r.noop {
        say(&format!(
            "already imported from {}'s table {}: sluice's history has exactly these {} version(s), nothing written",
            r.tool,
            r.table,
            r.imported.len()
        ));
    } else {
        say(&format!(
            "imported {} version(s) from {}'s table {} as applied, schema snapshot taken",
            r.imported.len(),
            r.tool,
            r.table
        ));
    }
    if !r.imported.is_empty() {
        say(&format!("  imported: {}", list(&r.imported)));
    }
    if !r.missing_files.is_empty() {
        say(&format!(
            "  applied by {} but no file here (not imported): {}",
            r.tool,
            list(&r.missing_files)
        ));
    }
    if !r.pending.is_empty() {
        say(&format!(
            "  not applied by {} (pending: `sluice up` applies them): {}",
            r.tool,
            list(&r.pending)
        ));
    }
    if !r.out_of_order.is_empty() {
        say(&format!(
            "  not applied by {} but older than its last (`sluice up --out-of-order` applies them): {}",
            r.tool,
            list(&r.out_of_order)
        ));
    }
    say(&format!("  checksums: {}", r.checksums));
    if !r.checksum_differs.is_empty() {
        say(&format!(
            "  edited since {} applied them (recorded with the file's current checksum): {}",
            r.tool,
            list(&r.checksum_differs)
        ));
    }
    if !r.repeatable_changed.is_empty() {
        say(&format!(
            "  repeatable, changed since {} last applied them (`sluice up` applies them again): {}",
            r.tool,
            list(&r.repeatable_changed)
        ));
    }
}

/// `plan --explain`: the query-plan section after the plan.
pub fn live_plans(s: &sluice_rehearse::explain::LiveSection) -> String {
    use sluice_rehearse::explain::Hypopg;
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\nquery plans on the live database (nothing changed; {} statement(s) from {}; hypothetical indexes: {})",
        s.statements,
        s.source,
        match &s.hypopg {
            Hypopg::Installed => "hypopg",
            Hypopg::CreatedAndRolledBack => "hypopg, created for this check and rolled back",
            Hypopg::Missing(_) => "none, hypopg is missing",
            Hypopg::NotOnThisEngine => "none on MariaDB/MySQL",
        }
    );
    for n in &s.notes {
        let _ = writeln!(out, "  note: {n}");
    }
    let one = |q: &str| q.split_whitespace().collect::<Vec<_>>().join(" ");
    for c in &s.changes {
        let _ = writeln!(
            out,
            "  {} {} ({}): {}",
            c.kind, c.target, c.migration, c.statement
        );
        if let Some(n) = &c.note {
            let _ = writeln!(out, "    {n}");
        }
        if c.statements.is_empty() && c.note.is_none() {
            let _ = writeln!(
                out,
                "    {}",
                match c.kind.as_str() {
                    "create index" => "no hot statement would use it",
                    "drop index" => "no hot statement uses it today",
                    _ => "no hot statement names it",
                }
            );
        }
        for u in &c.statements {
            let verb = match c.kind.as_str() {
                "create index" => "would use it",
                "drop index" => "uses it today",
                _ => "names it",
            };
            let _ = writeln!(out, "    {verb}: {}", one(&u.query));
            let _ = writeln!(
                out,
                "      today:  {} (cost {:.2})",
                u.today.shape, u.today.total_cost
            );
            if let Some(w) = &u.with_change {
                let _ = writeln!(
                    out,
                    "      {}: {} (cost {:.2}, {:.2}×)",
                    if c.kind == "create index" {
                        "with it"
                    } else {
                        "without"
                    },
                    w.shape,
                    w.total_cost,
                    u.cost_ratio.unwrap_or(1.0)
                );
            }
        }
    }
    for n in &s.not_explained {
        let _ = writeln!(out, "  not explained ({}): {}", n.reason, one(&n.query));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_core::runner::{MigrationStatus as S, StatusEntry};

    fn entry(version: i64, status: S, done: Option<i32>, error: Option<&str>) -> StatusEntry {
        StatusEntry {
            version,
            version_text: version.to_string(),
            name: format!("m{version}"),
            status,
            applied_at: None,
            applied_by: Some("ci@host".into()),
            app_version: Some("v1".into()),
            duration_ms: Some(1_500),
            statements_done: done,
            error: error.map(str::to_string),
            open_secs: None,
        }
    }

    fn report(migrations: Vec<StatusEntry>, drift: DriftState) -> StatusReport {
        StatusReport {
            target: "postgres 15".into(),
            database: "postgres://u@h/db".into(),
            migrations,
            drift,
            layout: None,
        }
    }

    /// Every state: the exact attention lines it gets (none for the healthy ones).
    #[test]
    fn each_state_says_what_to_run_next() {
        let cases: &[(S, Option<i32>, Option<&str>, &str)] = &[
            (S::Applied, None, None, ""),
            (S::Baseline, None, None, ""),
            (S::Pending, None, None, "1 migration(s) pending\n  next: `sluice plan` shows what they lock, `sluice up` applies them\n"),
            (S::OutOfOrder, None, None, "1 m1 is pending but older than an applied migration\n  next: `sluice up --out-of-order` applies it; or give it a newer version\n"),
            (S::Failed, Some(2), Some("m.sql:3:1: boom\nDETAIL: x"), "1 m1 failed: m.sql:3:1: boom\n  DETAIL: x\n  next: fix the failing statement in its file, then `sluice up` (it resumes after the 2 statement(s) already applied)\n"),
            (S::Failed, Some(0), Some("boom"), "1 m1 failed: boom\n  next: fix the failing statement in its file, then `sluice up`\n"),
            (S::Interrupted, Some(1), None, "1 m1 was interrupted (the run was killed or lost its connection)\n  next: `sluice up` (it resumes after the 1 statement(s) already applied)\n"),
            (S::Running, Some(1), None, "1 m1 is being applied by a run that holds the lock now\n  next: wait for it; `sluice status` again shows where it stands\n"),
            (S::Reverting, Some(1), None, "1 m1 is being rolled back, or its rollback stopped\n  next: `sluice down` resumes the rollback\n"),
            (S::Edited, None, None, "1 m1 was applied and its file has changed since\n  next: `sluice verify` shows the edits; restore the file, or `sluice repair` accepts an intentional edit\n"),
            (S::MissingFile, None, None, "1 m1 is recorded in the database but has no file\n  next: restore the file (from version control) into the migrations directory\n"),
            (S::New, None, None, "1 repeatable migration(s) new or changed since last applied\n  next: `sluice up` applies them after the pending versioned ones\n"),
            (S::Changed, None, None, "1 repeatable migration(s) new or changed since last applied\n  next: `sluice up` applies them after the pending versioned ones\n"),
            (S::Expanded, None, None, "1 m1 is expanded: two application versions can run, each as `sluice plan` says it sees the change\n  next: `sluice complete` once the new application version runs everywhere (what only the old version uses stops working), or `sluice rollback` to undo the expand phase\n"),
        ];
        for (state, done, error, want) in cases {
            let text = status_text(&report(
                vec![entry(1, *state, *done, *error)],
                DriftState::Clean,
            ));
            let table = format!(
                "postgres 15 at postgres://u@h/db\n\
                 VERSION  NAME  STATE{}  APPLIED AT (UTC)  TOOK  APP VERSION  APPLIED BY\n\
                 1        m1    {:<w$}  -                 1.5s  v1           ci@host\n",
                " ".repeat(state.as_str().len().max(5) - 5),
                state.as_str(),
                w = state.as_str().len().max(5),
            );
            let attention = if want.is_empty() {
                String::new()
            } else {
                format!("\n{want}")
            };
            assert_eq!(
                text,
                format!("{table}{attention}\nschema drift: none\n"),
                "{state:?}"
            );
        }
        // A failed repeatable with a statement committed still runs whole again: no resume note.
        let mut failed = entry(-7, S::Failed, Some(1), Some("boom"));
        failed.version_text = "R".into();
        failed.name = "views".into();
        let text = status_text(&report(vec![failed], DriftState::Clean));
        assert!(
            text.contains("\nR views failed: boom\n  next: fix the failing statement in its file, then `sluice up`\n"),
            "{text}"
        );
    }

    #[test]
    fn drift_and_empty_history() {
        let text = status_text(&report(vec![], DriftState::Unknown));
        assert_eq!(
            text,
            "postgres 15 at postgres://u@h/db\nno migrations\n\nschema drift: unknown (no snapshot recorded yet)\n"
        );
        let drifted = DriftState::Drifted {
            differences: vec![
                sluice_core::schema::Difference {
                    kind: sluice_core::schema::ObjectKind::Table,
                    table: "t".into(),
                    name: "t".into(),
                    change: sluice_core::schema::Change::Added,
                };
                2
            ],
        };
        let text = status_text(&report(vec![entry(1, S::Applied, None, None)], drifted));
        assert!(
            text.ends_with("\nschema drift: 2 difference(s)\n  next: `sluice drift` lists them; `sluice drift --write-migration` captures them as a migration\n"),
            "{text}"
        );
    }

    #[test]
    fn durations_read_as_people_say_them() {
        for (ms, want) in [
            (-5, "0ms"),
            (0, "0ms"),
            (999, "999ms"),
            (1_000, "1.0s"),
            (12_345, "12.3s"),
            (59_999, "59.9s"),
            (60_000, "1m00s"),
            (245_000, "4m05s"),
            (3_600_000, "1h00m"),
            (7_620_000, "2h07m"),
        ] {
            assert_eq!(took(ms), want, "{ms}");
        }
    }
}
