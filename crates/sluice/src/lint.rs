//! `sluice lint` and `sluice rules`: output of findings as human text with source, JSON, GitHub
//! workflow annotations and SARIF.

use sluice_core::analysis::Severity;
use sluice_core::migration::Migration;
use sluice_core::rules::RULES;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Human,
    Json,
    Github,
    Sarif,
}

/// Writes findings file by file as they come, in every format (JSON and SARIF documents are
/// streamed too), keeping only counts: memory stays flat however large the corpus.
pub struct Output {
    format: Format,
    out: std::io::BufWriter<std::io::Stdout>,
    written: usize,
    counts: [usize; 3],
}

impl Output {
    pub fn new(format: Format, target: &str) -> Output {
        let mut o = Output {
            format,
            out: std::io::BufWriter::new(std::io::stdout()),
            written: 0,
            counts: [0; 3],
        };
        match format {
            Format::Json => o.put(&format!(
                "{{\n  \"target\": {},\n  \"findings\": [",
                serde_json::Value::from(target)
            )),
            Format::Sarif => {
                let head = serde_json::to_string(&sarif_driver()).expect("sarif serialises");
                o.put(&format!(
                    "{{\"$schema\":\"https://json.schemastore.org/sarif-2.1.0.json\",\"version\":\"2.1.0\",\"runs\":[{{\"tool\":{{\"driver\":{head}}},\"results\":["
                ))
            }
            Format::Human | Format::Github => {}
        }
        o
    }

    fn put(&mut self, s: &str) {
        use std::io::Write;
        // A closed pipe (`sluice lint | head`) is not worth a panic.
        let _ = self.out.write_all(s.as_bytes());
    }

    pub fn file(&mut self, m: &Migration, findings: Vec<sluice_core::analysis::Finding>) {
        for f in &findings {
            self.counts[f.severity as usize] += 1;
        }
        match self.format {
            Format::Human => {
                let text = human(&findings, m);
                self.put(&text);
            }
            Format::Github => {
                let text = github(&findings);
                self.put(&text);
            }
            Format::Json | Format::Sarif => {
                for f in &findings {
                    let item = if self.format == Format::Json {
                        serde_json::to_string_pretty(f)
                            .expect("finding serialises")
                            .replace('\n', "\n    ")
                    } else {
                        serde_json::to_string(&sarif_result(f)).expect("sarif serialises")
                    };
                    let sep = if self.written == 0 {
                        "\n    "
                    } else {
                        ",\n    "
                    };
                    self.put(&format!("{sep}{item}"));
                    self.written += 1;
                }
            }
        }
    }

    /// Closes the document; returns the number of error-level findings.
    pub fn finish(mut self, linter: &sluice_core::lint::Linter) -> usize {
        let report = linter.report(Vec::new());
        match self.format {
            Format::Human => {
                let line = format!(
                    "{}: {} file(s), {} statement(s): {} error(s), {} warning(s), {} note(s){}\n",
                    report.target,
                    report.files,
                    report.statements,
                    self.counts[Severity::Error as usize],
                    self.counts[Severity::Warning as usize],
                    self.counts[Severity::Info as usize],
                    in_run_note(report.in_run_statements)
                );
                self.put(&line);
            }
            Format::Github => {}
            Format::Json => {
                let tail = format!(
                    "\n  ],\n  \"files\": {},\n  \"statements\": {},\n  \"in_run_statements\": {}\n}}\n",
                    report.files, report.statements, report.in_run_statements
                );
                self.put(&tail);
            }
            Format::Sarif => self.put("]}]}\n"),
        }
        use std::io::Write;
        let _ = self.out.flush();
        self.counts[Severity::Error as usize]
    }
}

/// The summary's word on statements judged on tables created earlier in the run.
fn in_run_note(n: usize) -> String {
    if n == 0 {
        return String::new();
    }
    format!(
        "; {n} statement(s) on tables created earlier in this run (pending migrations before them): judged as new tables, they run as written"
    )
}

fn human(findings: &[sluice_core::analysis::Finding], m: &Migration) -> String {
    use miette::{LabeledSpan, MietteDiagnostic, NamedSource, Report};
    let mut out = String::new();
    for f in findings {
        // A migration may span files (diesel's up.sql and down.sql): show the finding's own.
        let text = m.text_of(&f.path);
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
        out.push_str(&format!("{report:?}\n"));
    }
    out
}

/// GitHub workflow commands: one annotation per finding, shown on the pull request diff.
fn github(findings: &[sluice_core::analysis::Finding]) -> String {
    let mut out = String::new();
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
        out.push_str(&format!(
            "::{level} file={},line={},col={},title={}::{}\n",
            esc_prop(&f.path.display().to_string()),
            f.line,
            f.column,
            esc_prop(&format!("sluice {}", f.rule)),
            esc_data(&format!("{} — safe: {}", f.message, f.help))
        ));
    }
    out
}

fn level(s: Severity) -> &'static str {
    match s {
        Severity::Error => "error",
        Severity::Warning => "warning",
        Severity::Info => "note",
    }
}

fn sarif_driver() -> serde_json::Value {
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
    json!({ "name": "sluice", "version": sluice_core::SLUICE_VERSION, "rules": rules })
}

fn sarif_result(f: &sluice_core::analysis::Finding) -> serde_json::Value {
    serde_json::json!({
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
}

pub fn list_rules() {
    outln!(
        "{:<40} {:<8} {:<12} WHAT IT DETECTS",
        "RULE",
        "LEVEL",
        "ENGINES"
    );
    for r in RULES {
        let engines = match r.engines {
            sluice_core::analysis::Engines::Postgres => "postgres",
            sluice_core::analysis::Engines::MySqlFamily => "mysql",
            sluice_core::analysis::Engines::All => "all",
        };
        outln!(
            "{:<40} {:<8} {:<12} {}",
            r.id,
            r.severity.as_str(),
            engines,
            r.summary
        );
    }
    outln!(
        "\n`sluice plan` also finds, from the live database: {}",
        sluice_core::rules::PLAN_FINDINGS.join(", ")
    );
    outln!("\n`sluice rules <id>` explains one; suppress one finding with `-- sluice:ignore <id> <reason>` on the line before the statement");
}

pub fn explain_rule(id: &str) -> sluice_core::Result<()> {
    if let Some((what, why)) = sluice_core::rules::plan_finding_doc(id) {
        outln!(
            "{id} (a `sluice plan` finding, from the live database)\n\n{what}\n\nWhy it matters:\n  {why}\n"
        );
        outln!("Suppress one finding with a comment on the line before the statement:\n  -- sluice:ignore {id} <reason>");
        return Ok(());
    }
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
    outln!(
        "{} ({})\n\n{}\n\nWhy it hurts:\n  {}\n\nSafe alternative:\n{}\n",
        r.id,
        r.severity.as_str(),
        r.summary,
        r.why,
        indent(r.safe)
    );
    outln!("Suppress one finding with a comment on the line before the statement:\n  -- sluice:ignore {} <reason>", r.id);
    Ok(())
}

fn indent(s: &str) -> String {
    s.lines()
        .map(|l| format!("  {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

pub fn exit_code(errors: usize) -> i32 {
    if errors > 0 {
        sluice_core::error::exit::LINT_ERRORS
    } else {
        sluice_core::error::exit::OK
    }
}

/// Bytes of SQL read and parsed ahead of the linter at most (one file always goes, however big).
/// Its IR weighs about a hundred times its text on wide statements (sqlparser's AST), so a
/// squashed dump of a few MB parses file by file instead of several at once.
pub const SQL_IN_FLIGHT: u64 = 1 << 20;

/// Gives the memory freed since back to the system. glibc keeps each thread's heap at its peak,
/// so big files parsed by turns on different workers would otherwise add up their peaks (measured:
/// 227 MiB against 149 MiB serially on twenty 1 MB files).
fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim takes no pointer; it only walks the allocator's own free lists.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Threads that read and parse files: one per core, or `SLUICE_LINT_THREADS` (1 lints serially).
pub fn threads() -> sluice_core::Result<usize> {
    match std::env::var("SLUICE_LINT_THREADS") {
        Ok(v) => v
            .trim()
            .parse::<usize>()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| {
                sluice_core::Error::usage(
                    format!("SLUICE_LINT_THREADS={v:?} is not a number of threads"),
                    "set it to a whole number from 1 up, or unset it to use every core",
                )
            }),
        Err(_) => Ok(std::thread::available_parallelism().map_or(1, |n| n.get())),
    }
}

/// Runs `work` on every item on up to `threads` threads and hands the results to `each` one by one
/// in the order of `items`, exactly as a serial loop would. Workers run at most `threads` items
/// ahead of `each`, and start an item only while the items not yet handed over weigh at most
/// `budget` together (`weight` of each; the next item `each` needs always starts): a parsed file
/// of thousands of statements weighs around a hundred MB, so memory is bounded by the budget, not
/// by the number or the size of the items. An item heavier than the budget alone is worked on
/// the calling thread when its turn comes: the allocator keeps a heap per thread at its peak, so
/// big items parsed on every worker would leave that peak on each. The first error of `each`
/// stops the workers and is returned.
pub fn for_each_ordered<T, R, E>(
    items: &[T],
    threads: usize,
    weight: impl Fn(&T) -> u64,
    budget: u64,
    work: impl Fn(&T) -> R + Sync,
    mut each: impl FnMut(R) -> Result<(), E>,
) -> Result<(), E>
where
    T: Sync,
    R: Send,
{
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::{mpsc, Condvar, Mutex};
    let threads = threads.min(items.len());
    if threads <= 1 {
        for item in items {
            each(work(item))?;
        }
        return Ok(());
    }
    let window = threads;
    // Weight of items[..i] at [i]: the items in flight are always a run taken..=i.
    let mut before = Vec::with_capacity(items.len() + 1);
    before.push(0u64);
    for item in items {
        before.push(before[before.len() - 1].saturating_add(weight(item)));
    }
    let before = &before;
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    // How many results `each` has taken; a worker waits while its item is a window ahead of it.
    let taken = (Mutex::new(0usize), Condvar::new());
    // Never full: at most `window` results are out at once.
    let (tx, rx) = mpsc::sync_channel::<(usize, Option<R>)>(window);
    std::thread::scope(|s| {
        for _ in 0..threads {
            let tx = tx.clone();
            let (next, stop, taken, work) = (&next, &stop, &taken, &work);
            s.spawn(move || loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= items.len() {
                    break;
                }
                {
                    let mut t = taken.0.lock().unwrap_or_else(|e| e.into_inner());
                    while (i >= *t + window || (i > *t && before[i + 1] - before[*t] > budget))
                        && !stop.load(Ordering::SeqCst)
                    {
                        t = taken.1.wait(t).unwrap_or_else(|e| e.into_inner());
                    }
                }
                let heavy = before[i + 1] - before[i] > budget;
                let r = (!heavy).then(|| work(&items[i]));
                if stop.load(Ordering::SeqCst) || tx.send((i, r)).is_err() {
                    break;
                }
            });
        }
        drop(tx);
        let mut pending = std::collections::BTreeMap::new();
        let mut result = Ok(());
        for expected in 0..items.len() {
            let r = loop {
                if let Some(r) = pending.remove(&expected) {
                    break Some(r);
                }
                match rx.recv() {
                    Ok((i, r)) => {
                        pending.insert(i, r);
                    }
                    // Every worker is gone without this item: one panicked (the scope re-raises it).
                    Err(_) => break None,
                }
            };
            let Some(r) = r else { break };
            result = each(r.unwrap_or_else(|| work(&items[expected])));
            if before[expected + 1] - before[expected] > budget / 4 {
                release_freed_memory();
            }
            *taken.0.lock().unwrap_or_else(|e| e.into_inner()) += 1;
            taken.1.notify_all();
            if result.is_err() {
                break;
            }
        }
        stop.store(true, Ordering::SeqCst);
        taken.1.notify_all();
        drop(rx);
        result
    })
}

#[cfg(test)]
mod tests {
    use super::for_each_ordered;

    /// Every thread count and budget over items of uneven weight: when an item starts, the items
    /// started and not yet handed to `each` (itself included) weigh at most the budget, or it is
    /// the only one; the order stays the serial one.
    #[test]
    fn items_in_flight_stay_within_the_budget() {
        use std::sync::atomic::{AtomicU64, Ordering};
        let weights: Vec<u64> = (0..60u64).map(|i| (i * 37) % 11 + 1).collect();
        for threads in [2, 3, 8] {
            for budget in [1u64, 5, 12, 30, u64::MAX] {
                let live = AtomicU64::new(0);
                let worst = std::sync::Mutex::new(Vec::new());
                let mut seen = Vec::new();
                let r: Result<(), ()> = for_each_ordered(
                    &weights,
                    threads,
                    |w| *w,
                    budget,
                    |w| {
                        let now = live.fetch_add(*w, Ordering::SeqCst) + *w;
                        if now > budget && now != *w {
                            worst.lock().unwrap().push(now);
                        }
                        std::thread::sleep(std::time::Duration::from_micros(*w * 40));
                        *w
                    },
                    |w| {
                        seen.push(w);
                        live.fetch_sub(w, Ordering::SeqCst);
                        Ok(())
                    },
                );
                assert_eq!(r, Ok(()));
                assert_eq!(seen, weights, "threads {threads}, budget {budget}");
                assert_eq!(
                    *worst.lock().unwrap(),
                    Vec::<u64>::new(),
                    "threads {threads}, budget {budget}: over budget"
                );
            }
        }
    }

    /// An item heavier than the budget is worked on the calling thread, every other on a worker
    /// (with more than one thread); the order stays the serial one.
    #[test]
    fn items_over_the_budget_are_worked_on_the_calling_thread() {
        let caller = std::thread::current().id();
        let weights: Vec<u64> = (0..40u64)
            .map(|i| if i % 7 == 3 { 50 } else { 1 })
            .collect();
        for threads in [2, 3] {
            let mut seen = Vec::new();
            let r: Result<(), ()> = for_each_ordered(
                &weights,
                threads,
                |w| *w,
                10,
                |w| (*w, std::thread::current().id() == caller),
                |(w, on_caller)| {
                    assert_eq!(on_caller, w > 10, "weight {w}, threads {threads}");
                    seen.push(w);
                    Ok(())
                },
            );
            assert_eq!((r, seen), (Ok(()), weights.clone()));
        }
    }

    /// Every thread count and item count, with and without a failing item: `each` sees exactly
    /// what a serial loop gives it, in order, and stops at the same error.
    #[test]
    fn ordered_results_equal_the_serial_loop() {
        for threads in [1, 2, 3, 8] {
            for n in [0usize, 1, 2, 7, 100] {
                for fail_at in [None, Some(0), Some(n / 2), Some(n.saturating_sub(1))] {
                    let items: Vec<usize> = (0..n).collect();
                    // Uneven work, so results finish out of order.
                    let work = |i: &usize| {
                        std::thread::sleep(std::time::Duration::from_micros(
                            ((i * 7919) % 13) as u64 * 50,
                        ));
                        i * 3
                    };
                    let run = |threads: usize| {
                        let mut seen = Vec::new();
                        let r = for_each_ordered(
                            &items,
                            threads,
                            |_| 1,
                            u64::MAX,
                            work,
                            |v| {
                                if fail_at.is_some_and(|f| f < n && v == f * 3) {
                                    return Err(format!("failed at {v}"));
                                }
                                seen.push(v);
                                Ok(())
                            },
                        );
                        (seen, r)
                    };
                    let (serial, serial_r) = run(1);
                    let (parallel, parallel_r) = run(threads);
                    assert_eq!(
                        parallel, serial,
                        "threads {threads}, n {n}, fail {fail_at:?}"
                    );
                    assert_eq!(
                        parallel_r, serial_r,
                        "threads {threads}, n {n}, fail {fail_at:?}"
                    );
                    let expect: Vec<usize> = (0..fail_at.filter(|f| *f < n).unwrap_or(n))
                        .map(|i| i * 3)
                        .collect();
                    assert_eq!(serial, expect);
                }
            }
        }
    }
}
