//! The terminal summary and the self-contained HTML report (inline SVG, no scripts, no assets).

use crate::explain::{PlanChange, PlanSection};
use crate::metrics::{ms, PhaseStats};
use crate::{Report, RunReport};
use std::fmt::Write;

fn num(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

fn ratio(a: f64, b: f64) -> String {
    if b <= 0.0 {
        if a <= 0.0 {
            "=".into()
        } else {
            "∞".into()
        }
    } else {
        format!("{:.1}×", a / b)
    }
}

fn phase_rows(p: &[(&str, &PhaseStats)]) -> String {
    let mut out = String::new();
    let head: Vec<String> = p.iter().map(|(n, _)| format!("{n:>12}")).collect();
    let _ = writeln!(out, "  {:<15}{}", "", head.join(""));
    type Cell = fn(&PhaseStats) -> String;
    let rows: [(&str, Cell); 7] = [
        ("p50", |s| ms(s.p50_ms)),
        ("p99", |s| ms(s.p99_ms)),
        ("max", |s| ms(s.max_ms)),
        ("tx/s", |s| num(s.throughput)),
        ("transactions", |s| s.transactions.to_string()),
        ("errors", |s| s.errors.to_string()),
        ("longest stall", |s| ms(s.longest_stall_ms)),
    ];
    for (name, f) in rows {
        let cells: Vec<String> = p.iter().map(|(_, s)| format!("{:>12}", f(s))).collect();
        let _ = writeln!(out, "  {name:<15}{}", cells.join(""));
    }
    out
}

fn cost_ratio(c: &PlanChange) -> String {
    match (c.cost_ratio, &c.error_after) {
        (_, Some(_)) => "fails".into(),
        (Some(r), _) if r >= 10.0 => format!("{r:.0}×"),
        (Some(r), _) => format!("{r:.2}×"),
        _ => "?".into(),
    }
}

/// The lines of one changed plan, for the terminal (`  ` indented).
fn change_lines(c: &PlanChange, unit: &str) -> Vec<String> {
    let mut l = Vec::new();
    l.push(format!(
        "{} {}",
        if c.regression {
            "REGRESSION"
        } else {
            "changed"
        },
        crate::top::one_line(&c.query)
    ));
    match (&c.after, &c.error_after) {
        (_, Some(e)) => l.push(format!("  fails after the migration: {e}")),
        (Some(a), None) => {
            l.push(format!(
                "  {unit} {:.2} → {:.2} ({}){}",
                c.before.total_cost,
                a.total_cost,
                cost_ratio(c),
                match (c.before.time_ms, a.time_ms, c.time_ratio) {
                    (Some(b), Some(a), Some(r)) =>
                        format!("; measured {b:.3} ms → {a:.3} ms ({r:.2}×)"),
                    _ => String::new(),
                }
            ));
            if c.before.shape != a.shape {
                l.push(format!("  before: {}", c.before.shape));
                l.push(format!("  after:  {}", a.shape));
            }
        }
        (None, None) => {}
    }
    for i in &c.indexes_no_longer_used {
        l.push(format!("  index no longer used: {i}"));
    }
    for i in &c.indexes_newly_used {
        l.push(format!("  index now used: {i}"));
    }
    if c.join_order_changed {
        if let Some(a) = &c.after {
            l.push(format!(
                "  join order: {} → {}",
                c.before.join_order.join(", "),
                a.join_order.join(", ")
            ));
        }
    }
    l
}

/// The ratio basis for a changed plan's line (`estimated cost`, `estimated rows examined`).
fn short_unit(q: &PlanSection) -> String {
    q.cost_unit
        .split(" (")
        .next()
        .unwrap_or("estimated cost")
        .to_string()
}

fn plans_text(q: &PlanSection) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "query plans: {} statement(s) explained before and after ({} analyzed{}), {} changed, {} regression(s) ({} ≥ {}× the plan before; one that moves less than {}× with the same plan is noise)",
        q.explained,
        if q.analyzed_tables.is_empty() {
            "no table".to_string()
        } else {
            q.analyzed_tables.join(", ")
        },
        if q.analyzed { "; times measured" } else { "" },
        q.changed.len(),
        q.regressions,
        q.cost_unit,
        q.regression_ratio,
        q.noise_ratio
    );
    for c in &q.changed {
        for line in change_lines(c, &short_unit(q)) {
            let _ = writeln!(out, "  {line}");
        }
    }
    for n in &q.not_explained {
        let _ = writeln!(
            out,
            "  not explained ({}): {}",
            n.reason,
            crate::top::one_line(&n.query)
        );
    }
    out
}

fn plans_html(q: &PlanSection) -> String {
    let mut s = format!(
        "<h3>Query plans</h3><p class=\"sub\">{} statement(s) explained before and after the migration, {} changed, {} regression(s) ({} ≥ {}×; same-plan moves under {}× are noise){}</p>",
        q.explained,
        q.changed.len(),
        q.regressions,
        esc(&q.cost_unit),
        q.regression_ratio,
        q.noise_ratio,
        if q.analyzed { "; times measured on the clone" } else { "" }
    );
    if q.changed.is_empty() {
        s.push_str("<p>No plan changed.</p>");
        return s;
    }
    s.push_str(&format!(
        "<table><tr><th>statement</th><th>{} ratio</th><th>time ratio</th><th>before</th><th>after</th><th>indexes</th></tr>",
        esc(short_unit(q).trim_start_matches("estimated "))
    ));
    for c in &q.changed {
        let mut idx = Vec::new();
        for i in &c.indexes_no_longer_used {
            idx.push(format!("no longer used: {i}"));
        }
        for i in &c.indexes_newly_used {
            idx.push(format!("now used: {i}"));
        }
        if c.join_order_changed {
            idx.push("join order changed".into());
        }
        let _ = write!(
            s,
            "<tr{}><td style=\"text-align:left\"><code>{}</code></td><td>{}</td><td>{}</td><td style=\"text-align:left\">{}</td><td style=\"text-align:left\">{}</td><td style=\"text-align:left\">{}</td></tr>",
            if c.regression { " style=\"background:#fde0dc\"" } else { "" },
            esc(&crate::top::one_line(&c.query)),
            esc(&cost_ratio(c)),
            c.time_ratio.map(|r| format!("{r:.2}×")).unwrap_or_default(),
            esc(&c.before.shape),
            esc(&match (&c.after, &c.error_after) {
                (_, Some(e)) => format!("fails: {e}"),
                (Some(a), _) => a.shape.clone(),
                _ => String::new(),
            }),
            esc(&idx.join("; "))
        );
    }
    s.push_str("</table>");
    s
}

/// The terminal summary.
pub fn text(r: &Report) -> String {
    let mut out = String::new();
    for run in &r.runs {
        let rows: u64 = run.clone.tables.iter().map(|t| t.rows).sum();
        let _ = writeln!(
            out,
            "== {} == clone: {}, {} table(s), {rows} row(s){}",
            run.label,
            run.clone.method,
            run.clone.tables.len(),
            if run.clone.schema_differences.is_empty() {
                String::new()
            } else {
                format!(
                    ", {} schema difference(s)!",
                    run.clone.schema_differences.len()
                )
            }
        );
        for t in run.clone.tables.iter().filter(|t| t.parents_pulled_in > 0) {
            let _ = writeln!(
                out,
                "  {}: {} rows ({} sampled + {} referenced by sampled child rows)",
                t.table, t.rows, t.requested_rows, t.parents_pulled_in
            );
        }
        for t in run.clone.tables.iter().filter(|t| t.orphans_dropped > 0) {
            let _ = writeln!(
                out,
                "  {}: {} of {} rows kept ({} dropped: their parent row is not in the clone)",
                t.table, t.rows, t.requested_rows, t.orphans_dropped
            );
        }
        for d in &run.clone.schema_differences {
            let _ = writeln!(out, "  clone schema differs: {d}");
        }
        let _ = writeln!(
            out,
            "workload: {} clients, {} tx/s asked, {} tx/s done in the baseline; generator CPU {:.2} s ({:.0}% of one core)",
            run.clients,
            num(run.target_rate),
            num(run.achieved_rate),
            run.client_cpu_seconds,
            run.client_cpu_percent
        );
        let _ = writeln!(out, "  {}", run.workload);
        for k in run.skipped_statements.iter().flatten() {
            let _ = writeln!(
                out,
                "  skipped ({} calls, {}): {}",
                k.calls,
                k.reason,
                crate::top::one_line(&k.query)
            );
        }
        out.push_str(&phase_rows(&[
            ("baseline", &run.baseline),
            ("during", &run.during),
            ("cool-down", &run.cooldown),
        ]));
        let m = &run.migration;
        let _ = writeln!(
            out,
            "migration: {} applied in {}{}",
            if m.applied.is_empty() {
                "nothing".to_string()
            } else {
                m.applied
                    .iter()
                    .map(|v| v.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            },
            ms((m.window.end_s - m.window.start_s) * 1000.0),
            m.error
                .as_ref()
                .map(|e| format!(" — FAILED: {e}"))
                .unwrap_or_default()
        );
        for s in m.steps.iter().filter(|s| s.kind != "transaction") {
            let _ = writeln!(
                out,
                "  +{:>7.2} s {:>9}  {}{}",
                s.start_s - m.window.start_s,
                ms((s.end_s - s.start_s) * 1000.0),
                s.label,
                s.error
                    .as_ref()
                    .map(|e| format!("  [error {e}]"))
                    .unwrap_or_default()
            );
        }
        for (code, msg) in &run.error_messages {
            let _ = writeln!(out, "  client error {code}: {msg}");
        }
        if let Some(q) = &run.query_plans {
            out.push_str(&plans_text(q));
        }
        if run.verdict.pass {
            let _ = writeln!(out, "verdict: PASS — users would not notice\n");
        } else {
            let _ = writeln!(out, "verdict: FAIL — users would notice");
            for reason in &run.verdict.reasons {
                let _ = writeln!(out, "  - {reason}");
            }
            out.push('\n');
        }
    }
    if let [a, b] = r.runs.as_slice() {
        let _ = writeln!(
            out,
            "during the migration      {:>12}{:>12}{:>12}",
            a.label, b.label, "ratio"
        );
        // Some(true): milliseconds, Some(false): a rate, None: a count.
        type Cell = fn(&RunReport) -> f64;
        let rows: [(&str, Cell, Option<bool>); 6] = [
            ("p99", |r| r.during.p99_ms, Some(true)),
            ("max", |r| r.during.max_ms, Some(true)),
            (
                "longest stall",
                |r| r.during.longest_stall_ms.max(r.cooldown.longest_stall_ms),
                Some(true),
            ),
            (
                "errors",
                |r| (r.during.errors + r.cooldown.errors) as f64,
                None,
            ),
            ("tx/s", |r| r.during.throughput, Some(false)),
            (
                "migration time",
                |r| (r.migration.window.end_s - r.migration.window.start_s) * 1000.0,
                Some(true),
            ),
        ];
        for (name, f, is_ms) in rows {
            let (x, y) = (f(a), f(b));
            let show = |v: f64| match is_ms {
                Some(true) => ms(v),
                Some(false) => num(v),
                None => format!("{v:.0}"),
            };
            let _ = writeln!(
                out,
                "  {name:<24}{:>12}{:>12}{:>12}",
                show(x),
                show(y),
                ratio(x, y)
            );
        }
        let _ = writeln!(
            out,
            "  {:<24}{:>12}{:>12}",
            "verdict",
            if a.verdict.pass { "pass" } else { "FAIL" },
            if b.verdict.pass { "pass" } else { "FAIL" }
        );
    }
    for k in &r.scratch_kept {
        let _ = writeln!(out, "kept scratch database {k}");
    }
    out
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

const W: f64 = 1200.0;
const LEFT: f64 = 78.0;
const RIGHT: f64 = 24.0;

/// One run's chart: step lanes, latency (log scale), throughput, errors; one time axis.
fn chart(run: &RunReport, t_max: f64, lat_max: f64) -> String {
    let pw = W - LEFT - RIGHT;
    let x = |t: f64| LEFT + pw * (t / t_max).clamp(0.0, 1.0);
    let steps: Vec<&crate::timed::Span> = run
        .migration
        .steps
        .iter()
        .filter(|s| s.kind != "transaction")
        .take(12)
        .collect();
    let lane_h = 18.0;
    let lanes_top = 34.0;
    // Room between the step lanes and the panel for its title and legend.
    let lat_top = lanes_top + lane_h * (steps.len().max(1) as f64) + 30.0;
    let lat_h = 280.0;
    let thr_top = lat_top + lat_h + 34.0;
    let thr_h = 120.0;
    let err_top = thr_top + thr_h + 30.0;
    let err_h = 16.0;
    let height = err_top + err_h + 46.0;
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {height}" width="{W}" height="{height}" font-family="system-ui, -apple-system, Segoe UI, sans-serif" font-size="12">"#
    );
    // Migration window, shaded across every panel.
    let (m0, m1) = (run.migration.window.start_s, run.migration.window.end_s);
    let _ = write!(
        s,
        r##"<rect x="{:.1}" y="{lanes_top}" width="{:.1}" height="{:.1}" fill="#fff4d6"/>"##,
        x(m0),
        (x(m1) - x(m0)).max(1.5),
        err_top + err_h - lanes_top
    );
    let _ = write!(
        s,
        r##"<text x="{:.1}" y="{}" fill="#8a6d1a" font-weight="600">migration {}</text>"##,
        x(m0),
        lanes_top - 6.0,
        esc(&ms((m1 - m0) * 1000.0))
    );
    // Step lanes (Gantt), each step also shaded lightly over the charts.
    for (i, st) in steps.iter().enumerate() {
        let y = lanes_top + lane_h * i as f64 + 3.0;
        let (a, b) = (x(st.start_s), x(st.end_s).max(x(st.start_s) + 2.0));
        let color = match st.kind.as_str() {
            "backfill" => "#4c78a8",
            "online-alter" => "#54a24b",
            _ if st.error.is_some() => "#b279a2",
            _ => "#e45756",
        };
        let _ = write!(
            s,
            r#"<rect x="{a:.1}" y="{lat_top}" width="{:.1}" height="{:.1}" fill="{color}" opacity="0.10"/>"#,
            b - a,
            thr_top + thr_h - lat_top
        );
        let _ = write!(
            s,
            r#"<rect x="{a:.1}" y="{y:.1}" width="{:.1}" height="{:.1}" rx="2" fill="{color}"/>"#,
            b - a,
            lane_h - 6.0
        );
        let dur = ms((st.end_s - st.start_s) * 1000.0);
        let mut text = format!("{} ({dur})", st.label);
        if let Some(e) = &st.error {
            text.push_str(&format!(" — error {e}"));
        }
        // Labels go right of the bar, or left of it when the bar ends near the right edge.
        let chars = text.chars().count() as f64 * 6.3;
        let (tx, anchor) = if b + 6.0 + chars < W - RIGHT {
            (b + 6.0, "start")
        } else {
            (a - 6.0, "end")
        };
        let _ = write!(
            s,
            r##"<text x="{tx:.1}" y="{:.1}" text-anchor="{anchor}" fill="#333">{}</text>"##,
            y + lane_h - 9.0,
            esc(&text)
        );
    }
    let hidden = run
        .migration
        .steps
        .iter()
        .filter(|s| s.kind != "transaction")
        .count()
        .saturating_sub(steps.len());
    if hidden > 0 {
        let _ = write!(
            s,
            r##"<text x="{:.1}" y="{}" text-anchor="end" fill="#8a6d1a">+{hidden} more step(s) in the JSON report</text>"##,
            W - RIGHT,
            lanes_top - 6.0
        );
    }
    if steps.is_empty() {
        let _ = write!(
            s,
            r##"<text x="{LEFT}" y="{}" fill="#666">no statement ran</text>"##,
            lanes_top + 12.0
        );
    }

    // Latency panel, log scale.
    let lo = 0.1f64;
    let hi = lat_max.max(1.0);
    let decades = (hi.log10() - lo.log10()).ceil().max(1.0);
    let top = lo * 10f64.powf(decades);
    let y_lat = |v: f64| {
        let v = v.max(lo);
        lat_top + lat_h - lat_h * (v.log10() - lo.log10()) / (top.log10() - lo.log10())
    };
    let _ = write!(
        s,
        r##"<text x="{LEFT}" y="{}" font-weight="600" fill="#222">Latency per 100 ms (from intended send time), log scale</text>"##,
        lat_top - 6.0
    );
    let mut v = lo;
    while v <= top * 1.0001 {
        let y = y_lat(v);
        let _ = write!(
            s,
            r##"<line x1="{LEFT}" x2="{:.1}" y1="{y:.1}" y2="{y:.1}" stroke="#e3e3e3"/><text x="{:.1}" y="{:.1}" text-anchor="end" fill="#555">{}</text>"##,
            W - RIGHT,
            LEFT - 6.0,
            y + 4.0,
            esc(&ms(v))
        );
        v *= 10.0;
    }
    let line = |get: fn(&crate::metrics::Bucket) -> Option<f64>| {
        let mut d = String::new();
        let mut pen = false;
        for b in &run.buckets {
            match get(b) {
                Some(v) => {
                    let _ = write!(
                        d,
                        "{}{:.1},{:.1} ",
                        if pen { "L" } else { "M" },
                        x(b.t_s + 0.05),
                        y_lat(v)
                    );
                    pen = true;
                }
                None => pen = false,
            }
        }
        d
    };
    let _ = write!(
        s,
        r##"<path d="{}" fill="none" stroke="#d62728" stroke-width="1" opacity="0.55"/>"##,
        line(|b| b.max_ms)
    );
    let _ = write!(
        s,
        r##"<path d="{}" fill="none" stroke="#ff7f0e" stroke-width="1.8"/>"##,
        line(|b| b.p99_ms)
    );
    let _ = write!(
        s,
        r##"<path d="{}" fill="none" stroke="#1f77b4" stroke-width="1.8"/>"##,
        line(|b| b.p50_ms)
    );
    // The p99 limit of the verdict.
    let ly = y_lat(run.verdict.max_p99_ms);
    let _ = write!(
        s,
        r##"<line x1="{LEFT}" x2="{:.1}" y1="{ly:.1}" y2="{ly:.1}" stroke="#555" stroke-dasharray="5 4"/><text x="{:.1}" y="{:.1}" text-anchor="end" fill="#555">p99 limit {}</text>"##,
        W - RIGHT,
        W - RIGHT - 4.0,
        ly - 4.0,
        esc(&ms(run.verdict.max_p99_ms))
    );
    // The longest stall, as a bracket over the latency panel.
    let stall = if run.during.longest_stall_ms >= run.cooldown.longest_stall_ms {
        (run.during.longest_stall_ms, run.during.stall_at_s)
    } else {
        (run.cooldown.longest_stall_ms, run.cooldown.stall_at_s)
    };
    if stall.0 >= 100.0 {
        let (a, b) = (x(stall.1), x(stall.1 + stall.0 / 1000.0));
        let y = lat_top + 8.0;
        let _ = write!(
            s,
            r##"<path d="M{a:.1},{:.1} V{y:.1} H{b:.1} V{:.1}" fill="none" stroke="#7b1fa2" stroke-width="2"/><text x="{:.1}" y="{:.1}" text-anchor="middle" fill="#7b1fa2" font-weight="600">stall {}</text>"##,
            y + 8.0,
            y + 8.0,
            (a + b) / 2.0,
            y + 20.0,
            esc(&ms(stall.0))
        );
    }
    // Legend.
    let lx = W - RIGHT - 270.0;
    for (i, (name, color)) in [("p50", "#1f77b4"), ("p99", "#ff7f0e"), ("max", "#d62728")]
        .iter()
        .enumerate()
    {
        let xx = lx + 90.0 * i as f64;
        let _ = write!(
            s,
            r##"<line x1="{xx}" x2="{:.1}" y1="{:.1}" y2="{:.1}" stroke="{color}" stroke-width="3"/><text x="{:.1}" y="{:.1}" fill="#333">{name}</text>"##,
            xx + 22.0,
            lat_top - 10.0,
            lat_top - 10.0,
            xx + 28.0,
            lat_top - 6.0
        );
    }
    let _ = write!(
        s,
        r##"<rect x="{LEFT}" y="{lat_top}" width="{pw}" height="{lat_h}" fill="none" stroke="#bbb"/>"##
    );

    // Throughput panel.
    let tmax = run
        .buckets
        .iter()
        .map(|b| b.throughput)
        .fold(run.target_rate, f64::max)
        * 1.1;
    let y_thr = |v: f64| thr_top + thr_h - thr_h * (v / tmax.max(1.0));
    let _ = write!(
        s,
        r##"<text x="{LEFT}" y="{}" font-weight="600" fill="#222">Throughput (transactions completed per second)</text>"##,
        thr_top - 6.0
    );
    for frac in [0.0, 0.5, 1.0] {
        let v = tmax / 1.1 * frac;
        let y = y_thr(v);
        let _ = write!(
            s,
            r##"<line x1="{LEFT}" x2="{:.1}" y1="{y:.1}" y2="{y:.1}" stroke="#eee"/><text x="{:.1}" y="{:.1}" text-anchor="end" fill="#555">{}</text>"##,
            W - RIGHT,
            LEFT - 6.0,
            y + 4.0,
            num(v)
        );
    }
    let mut area = format!("M{:.1},{:.1} ", x(0.0), y_thr(0.0));
    for b in &run.buckets {
        let _ = write!(
            area,
            "L{:.1},{:.1} L{:.1},{:.1} ",
            x(b.t_s),
            y_thr(b.throughput),
            x(b.t_s + 0.1),
            y_thr(b.throughput)
        );
    }
    // Down to zero where this run's data ends (runs share one time axis).
    let end = run.buckets.last().map(|b| b.t_s + 0.1).unwrap_or(0.0);
    let _ = write!(
        area,
        "L{:.1},{:.1} L{:.1},{:.1} Z",
        x(end),
        y_thr(0.0),
        x(t_max),
        y_thr(0.0)
    );
    let _ = write!(
        s,
        r##"<path d="{area}" fill="#9ecae9" stroke="#3182bd" stroke-width="1"/>"##
    );
    let ty = y_thr(run.target_rate);
    let _ = write!(
        s,
        r##"<line x1="{LEFT}" x2="{:.1}" y1="{ty:.1}" y2="{ty:.1}" stroke="#555" stroke-dasharray="5 4"/><text x="{:.1}" y="{:.1}" text-anchor="end" fill="#555">target {} tx/s</text>"##,
        W - RIGHT,
        W - RIGHT - 4.0,
        ty - 4.0,
        num(run.target_rate)
    );
    let _ = write!(
        s,
        r##"<rect x="{LEFT}" y="{thr_top}" width="{pw}" height="{thr_h}" fill="none" stroke="#bbb"/>"##
    );

    // Error strip.
    let _ = write!(
        s,
        r##"<text x="{:.1}" y="{:.1}" text-anchor="end" fill="#555">errors</text><rect x="{LEFT}" y="{err_top}" width="{pw}" height="{err_h}" fill="#f7f7f7" stroke="#bbb"/>"##,
        LEFT - 6.0,
        err_top + 12.0
    );
    for b in run.buckets.iter().filter(|b| b.errors > 0) {
        let _ = write!(
            s,
            r##"<rect x="{:.1}" y="{err_top}" width="{:.1}" height="{err_h}" fill="#d62728"><title>{:.1} s: {}</title></rect>"##,
            x(b.t_s),
            (x(b.t_s + 0.1) - x(b.t_s)).max(2.0),
            b.t_s,
            esc(&b
                .errors_by_code
                .iter()
                .map(|(c, n)| format!("{n}× {c}"))
                .collect::<Vec<_>>()
                .join(", "))
        );
    }
    if run.buckets.iter().all(|b| b.errors == 0) {
        let _ = write!(
            s,
            r##"<text x="{:.1}" y="{:.1}" fill="#2e7d32">no client errors</text>"##,
            LEFT + 6.0,
            err_top + 12.0
        );
    }

    // Time axis.
    let step = [0.5, 1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0]
        .into_iter()
        .find(|st| t_max / st <= 14.0)
        .unwrap_or(600.0);
    let mut t = 0.0;
    let axis_y = err_top + err_h;
    while t <= t_max + 1e-9 {
        let xx = x(t);
        let _ = write!(
            s,
            r##"<line x1="{xx:.1}" x2="{xx:.1}" y1="{axis_y}" y2="{:.1}" stroke="#888"/><text x="{xx:.1}" y="{:.1}" text-anchor="middle" fill="#555">{t}s</text>"##,
            axis_y + 5.0,
            axis_y + 18.0
        );
        t += step;
    }
    let _ = write!(
        s,
        r##"<text x="{:.1}" y="{:.1}" text-anchor="middle" fill="#555">seconds since the workload started</text>"##,
        LEFT + pw / 2.0,
        axis_y + 36.0
    );
    s.push_str("</svg>");
    s
}

fn stats_table(run: &RunReport) -> String {
    let mut s = String::from(
        "<table><tr><th></th><th>baseline</th><th>during the migration</th><th>cool-down</th></tr>",
    );
    type Cell = fn(&PhaseStats) -> String;
    let rows: [(&str, Cell); 7] = [
        ("p50", |p| ms(p.p50_ms)),
        ("p99", |p| ms(p.p99_ms)),
        ("max", |p| ms(p.max_ms)),
        ("throughput (tx/s)", |p| num(p.throughput)),
        ("transactions", |p| p.transactions.to_string()),
        ("errors", |p| {
            if p.errors == 0 {
                "0".into()
            } else {
                p.errors_by_code
                    .iter()
                    .map(|(c, n)| format!("{n}× {c}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        }),
        ("longest stall", |p| ms(p.longest_stall_ms)),
    ];
    for (name, f) in rows {
        let _ = write!(
            s,
            "<tr><th>{name}</th><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&f(&run.baseline)),
            esc(&f(&run.during)),
            esc(&f(&run.cooldown))
        );
    }
    s.push_str("</table>");
    s
}

/// The whole report: one self-contained HTML file.
pub fn html(r: &Report) -> String {
    let t_max = r
        .runs
        .iter()
        .flat_map(|run| run.buckets.last().map(|b| b.t_s + 0.1))
        .fold(1.0, f64::max);
    let lat_max = r
        .runs
        .iter()
        .flat_map(|run| run.buckets.iter().filter_map(|b| b.max_ms))
        .fold(1.0, f64::max);
    let mut s = String::new();
    s.push_str(r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><title>sluice rehearse</title><style>
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px 32px;color:#222;max-width:1260px}
h1{font-size:22px;margin:0 0 4px} h2{font-size:18px;margin:28px 0 6px} .sub{color:#555;margin:0 0 12px}
.verdict{display:inline-block;padding:6px 14px;border-radius:6px;font-weight:700;font-size:16px;margin:8px 0}
.pass{background:#e6f4ea;color:#1e6b34;border:1px solid #9fd5ae} .fail{background:#fdecea;color:#a61b1b;border:1px solid #f1a9a0}
ul.reasons{margin:4px 0 10px 18px;padding:0} table{border-collapse:collapse;margin:8px 0 12px;font-variant-numeric:tabular-nums}
th,td{border:1px solid #ddd;padding:4px 12px;text-align:right} th{background:#f5f5f5} tr th:first-child{text-align:left}
.card{border:1px solid #e2e2e2;border-radius:8px;padding:12px 16px;margin:14px 0;background:#fff}
code{background:#f3f3f3;padding:1px 4px;border-radius:3px}
</style></head><body>"#);
    let _ = write!(
        s,
        "<h1>Would users notice this migration?</h1><p class=\"sub\">sluice rehearse on a clone of <code>{}</code> ({})</p>",
        esc(&r.source),
        esc(&r.engine)
    );
    let _ = write!(
        s,
        "<div class=\"verdict {}\">{}</div>",
        if r.pass { "pass" } else { "fail" },
        if r.pass {
            "PASS — users would not notice"
        } else {
            "FAIL — users would notice"
        }
    );
    if let [a, b] = r.runs.as_slice() {
        s.push_str("<h2>As written vs. sluice, during the migration</h2><table><tr><th></th>");
        let _ = write!(
            s,
            "<th>{}</th><th>{}</th><th>ratio</th></tr>",
            esc(&a.label),
            esc(&b.label)
        );
        // Some(true): milliseconds, Some(false): a rate, None: a count.
        type Cell = fn(&RunReport) -> f64;
        let rows: [(&str, Cell, Option<bool>); 6] = [
            ("p99", |r| r.during.p99_ms, Some(true)),
            ("max", |r| r.during.max_ms, Some(true)),
            (
                "longest stall",
                |r| r.during.longest_stall_ms.max(r.cooldown.longest_stall_ms),
                Some(true),
            ),
            (
                "client errors",
                |r| (r.during.errors + r.cooldown.errors) as f64,
                None,
            ),
            ("throughput (tx/s)", |r| r.during.throughput, Some(false)),
            (
                "migration time",
                |r| (r.migration.window.end_s - r.migration.window.start_s) * 1000.0,
                Some(true),
            ),
        ];
        for (name, f, is_ms) in rows {
            let show = |v: f64| match is_ms {
                Some(true) => ms(v),
                Some(false) => num(v),
                None => format!("{v:.0}"),
            };
            let _ = write!(
                s,
                "<tr><th>{name}</th><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&show(f(a))),
                esc(&show(f(b))),
                esc(&ratio(f(a), f(b)))
            );
        }
        let _ = write!(
            s,
            "<tr><th>verdict</th><td>{}</td><td>{}</td><td></td></tr></table>",
            if a.verdict.pass { "pass" } else { "FAIL" },
            if b.verdict.pass { "pass" } else { "FAIL" }
        );
    }
    for run in &r.runs {
        let rows: u64 = run.clone.tables.iter().map(|t| t.rows).sum();
        let _ = write!(
            s,
            "<div class=\"card\"><h2>{}</h2><p class=\"sub\">clone: {}, {} table(s), {rows} rows · workload: {} clients, {} tx/s asked, {} done in the baseline · {}</p>",
            if run.as_written { "As written" } else { "The way sluice runs it" },
            esc(&run.clone.method),
            run.clone.tables.len(),
            run.clients,
            num(run.target_rate),
            num(run.achieved_rate),
            esc(&run.workload)
        );
        let _ = write!(
            s,
            "<div class=\"verdict {}\">{}</div>",
            if run.verdict.pass { "pass" } else { "fail" },
            if run.verdict.pass { "pass" } else { "fail" }
        );
        if !run.verdict.reasons.is_empty() {
            s.push_str("<ul class=\"reasons\">");
            for reason in &run.verdict.reasons {
                let _ = write!(s, "<li>{}</li>", esc(reason));
            }
            s.push_str("</ul>");
        }
        s.push_str(&chart(run, t_max, lat_max));
        s.push_str(&stats_table(run));
        if let Some(q) = &run.query_plans {
            s.push_str(&plans_html(q));
        }
        if !run.migration.log.is_empty() {
            s.push_str("<details><summary>migration log</summary><table>");
            for m in &run.migration.log {
                let _ = write!(
                    s,
                    "<tr><td>+{:.2} s</td><td style=\"text-align:left\">{}</td></tr>",
                    m.at_s - run.migration.window.start_s,
                    esc(&m.text)
                );
            }
            s.push_str("</table></details>");
        }
        for (code, msg) in &run.error_messages {
            let _ = write!(
                s,
                "<p>client error <code>{}</code>: {}</p>",
                esc(code),
                esc(msg)
            );
        }
        s.push_str("</div>");
    }
    let _ = write!(
        s,
        "<p class=\"sub\">Latency counts from each transaction's intended send time (open-loop pacing), so waiting behind a lock is never hidden. A stall is the longest time in which a transaction was due and none completed. Limits: p99 {}, stall {}, errors {}.</p></body></html>",
        r.runs.last().map(|x| ms(x.verdict.max_p99_ms)).unwrap_or_default(),
        r.runs.last().map(|x| ms(x.verdict.max_stall_ms)).unwrap_or_default(),
        r.runs.last().map(|x| x.verdict.max_errors).unwrap_or(0)
    );
    s
}
