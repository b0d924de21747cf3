//! Latency and throughput over time, per phase, and the verdict.
//!
//! Latency is bucketed by a transaction's intended send time (so a spike lines up with the step
//! that caused it), throughput by completion time. Percentiles are exact (sorted samples).

use crate::workload::Sample;
use serde::Serialize;
use std::collections::BTreeMap;

pub const BUCKET_US: u64 = 100_000;

#[derive(Debug, Clone, Serialize)]
pub struct Bucket {
    pub t_s: f64,
    /// Transactions completed in this bucket, per second.
    pub throughput: f64,
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub max_ms: Option<f64>,
    pub errors: u64,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub errors_by_code: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct PhaseStats {
    /// Transactions intended in the window.
    pub transactions: u64,
    /// Transactions completed in the window, per second.
    pub throughput: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub errors: u64,
    pub errors_by_code: BTreeMap<String, u64>,
    /// The longest interval in which a transaction was due and none completed.
    pub longest_stall_ms: f64,
    /// Where that stall began (seconds from the start).
    pub stall_at_s: f64,
}

/// A time window, seconds from the start.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Window {
    pub start_s: f64,
    pub end_s: f64,
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn lat_ms(s: &Sample) -> f64 {
    s.done_us.saturating_sub(s.intended_us) as f64 / 1000.0
}

/// Statistics of the transactions intended within `w`.
pub fn phase(samples: &[Sample], w: Window) -> PhaseStats {
    let (a, b) = ((w.start_s * 1e6) as u64, (w.end_s * 1e6) as u64);
    let inside: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.intended_us >= a && s.intended_us < b)
        .collect();
    let mut lats: Vec<f64> = inside.iter().map(|s| lat_ms(s)).collect();
    lats.sort_by(f64::total_cmp);
    let mut by_code = BTreeMap::new();
    for s in &inside {
        if let Some(c) = &s.error {
            *by_code.entry(c.to_string()).or_insert(0u64) += 1;
        }
    }
    let (stall_ms, stall_at) = longest_stall(samples, w);
    PhaseStats {
        transactions: inside.len() as u64,
        // Completions inside the window: a generator or server that falls behind shows here.
        throughput: samples
            .iter()
            .filter(|s| s.done_us >= a && s.done_us < b)
            .count() as f64
            / (w.end_s - w.start_s).max(1e-9),
        p50_ms: pct(&lats, 50.0),
        p99_ms: pct(&lats, 99.0),
        max_ms: lats.last().copied().unwrap_or(0.0),
        errors: by_code.values().sum(),
        errors_by_code: by_code,
        longest_stall_ms: stall_ms,
        stall_at_s: stall_at,
    }
}

/// The longest interval, overlapping `w`, during which some transaction was due (its intended
/// time had passed) and no transaction completed. Returns (length in ms, start in s).
///
/// Gaps between consecutive completions are candidates; a gap counts from the later of its first
/// completion and the earliest intended time of a transaction still outstanding across it.
pub fn longest_stall(samples: &[Sample], w: Window) -> (f64, f64) {
    let mut by_done: Vec<(u64, u64)> = samples.iter().map(|s| (s.done_us, s.intended_us)).collect();
    by_done.sort_unstable();
    // suffix_min[i] = earliest intended time among transactions completing at or after by_done[i].
    let mut suffix_min = vec![u64::MAX; by_done.len() + 1];
    for i in (0..by_done.len()).rev() {
        suffix_min[i] = suffix_min[i + 1].min(by_done[i].1);
    }
    let (a, b) = ((w.start_s * 1e6) as u64, (w.end_s * 1e6) as u64);
    let mut best = (0u64, 0u64);
    for i in 1..by_done.len() {
        let (prev, next) = (by_done[i - 1].0, by_done[i].0);
        let due = suffix_min[i];
        if due >= next {
            continue;
        }
        let start = prev.max(due);
        // Only stalls that overlap the window.
        if next < a || start > b {
            continue;
        }
        if next - start > best.0 {
            best = (next - start, start);
        }
    }
    (best.0 as f64 / 1000.0, best.1 as f64 / 1e6)
}

pub fn buckets(samples: &[Sample], end_s: f64) -> Vec<Bucket> {
    let n = ((end_s * 1e6) as u64 / BUCKET_US + 1) as usize;
    let mut lats: Vec<Vec<f64>> = vec![Vec::new(); n];
    let mut done = vec![0u64; n];
    let mut errs = vec![0u64; n];
    let mut codes: Vec<BTreeMap<String, u64>> = vec![BTreeMap::new(); n];
    for s in samples {
        let i = (s.intended_us / BUCKET_US) as usize;
        if i < n {
            lats[i].push(lat_ms(s));
            if let Some(c) = &s.error {
                errs[i] += 1;
                *codes[i].entry(c.to_string()).or_insert(0) += 1;
            }
        }
        let j = (s.done_us / BUCKET_US) as usize;
        if j < n {
            done[j] += 1;
        }
    }
    (0..n)
        .map(|i| {
            let l = &mut lats[i];
            l.sort_by(f64::total_cmp);
            let some = |v: f64| (!l.is_empty()).then_some(v);
            Bucket {
                t_s: (i as u64 * BUCKET_US) as f64 / 1e6,
                throughput: done[i] as f64 * 1e6 / BUCKET_US as f64,
                p50_ms: some(pct(l, 50.0)),
                p99_ms: some(pct(l, 99.0)),
                max_ms: l.last().copied(),
                errors: errs[i],
                errors_by_code: std::mem::take(&mut codes[i]),
            }
        })
        .collect()
}

/// What counts as "users would notice".
#[derive(Debug, Clone, Serialize)]
pub struct Thresholds {
    /// None: the larger of 2× the baseline p99 and the baseline p99 + 50 ms.
    pub max_p99_ms: Option<f64>,
    pub max_stall_ms: f64,
    pub max_errors: u64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            max_p99_ms: None,
            max_stall_ms: 1000.0,
            max_errors: 0,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Verdict {
    /// True: users would not notice.
    pub pass: bool,
    pub reasons: Vec<String>,
    pub max_p99_ms: f64,
    pub max_stall_ms: f64,
    pub max_errors: u64,
}

/// Judges the migration window (`during`) and the cool-down after it against the baseline.
pub fn verdict(
    t: &Thresholds,
    baseline: &PhaseStats,
    during: &PhaseStats,
    after: &PhaseStats,
    migration_error: Option<&str>,
) -> Verdict {
    let max_p99 = t
        .max_p99_ms
        .unwrap_or_else(|| (baseline.p99_ms * 2.0).max(baseline.p99_ms + 50.0));
    let mut reasons = Vec::new();
    if let Some(e) = migration_error {
        reasons.push(format!("the migration failed on the clone: {e}"));
    }
    if during.p99_ms > max_p99 {
        reasons.push(format!(
            "p99 latency during the migration {} > limit {} (baseline p99 {})",
            ms(during.p99_ms),
            ms(max_p99),
            ms(baseline.p99_ms)
        ));
    }
    let stall = during.longest_stall_ms.max(after.longest_stall_ms);
    if stall > t.max_stall_ms {
        let at = if during.longest_stall_ms >= after.longest_stall_ms {
            during.stall_at_s
        } else {
            after.stall_at_s
        };
        reasons.push(format!(
            "queries stalled for {} (from {at:.1} s) > limit {}",
            ms(stall),
            ms(t.max_stall_ms)
        ));
    }
    let errors = during.errors + after.errors;
    if errors > t.max_errors {
        let mut codes: BTreeMap<&str, u64> = BTreeMap::new();
        for (c, n) in during.errors_by_code.iter().chain(&after.errors_by_code) {
            *codes.entry(c).or_insert(0) += n;
        }
        let list: Vec<String> = codes.iter().map(|(c, n)| format!("{n}× {c}")).collect();
        reasons.push(format!(
            "{errors} client error(s) ({}) > limit {}",
            list.join(", "),
            t.max_errors
        ));
    }
    Verdict {
        pass: reasons.is_empty(),
        reasons,
        max_p99_ms: max_p99,
        max_stall_ms: t.max_stall_ms,
        max_errors: t.max_errors,
    }
}

/// Milliseconds as people read them: `0.42 ms`, `37 ms`, `2.31 s`.
pub fn ms(v: f64) -> String {
    if v >= 1000.0 {
        format!("{:.2} s", v / 1000.0)
    } else if v >= 10.0 {
        format!("{v:.0} ms")
    } else {
        format!("{v:.2} ms")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(intended_ms: u64, done_ms: u64) -> Sample {
        Sample {
            intended_us: intended_ms * 1000,
            done_us: done_ms * 1000,
            error: None,
        }
    }

    #[test]
    fn a_stall_counts_from_when_a_query_was_due() {
        // Queries every 10 ms; one intended at 100 ms waits until 900 ms, and the ones behind it too.
        let mut v: Vec<Sample> = (0..10).map(|i| s(i * 10, i * 10 + 1)).collect();
        for i in 10..90 {
            v.push(s(i * 10, 900));
        }
        v.push(s(900, 901));
        let (len, at) = longest_stall(
            &v,
            Window {
                start_s: 0.0,
                end_s: 1.0,
            },
        );
        assert!((len - 800.0).abs() < 1e-6, "{len}");
        assert!((at - 0.1).abs() < 1e-9, "{at}");
        // An idle gap (nothing due) is no stall: only the second query's own 1 ms counts.
        let idle = vec![s(0, 1), s(500, 501)];
        assert_eq!(
            longest_stall(
                &idle,
                Window {
                    start_s: 0.0,
                    end_s: 1.0
                }
            )
            .0,
            1.0
        );
    }

    #[test]
    fn percentiles_and_verdict() {
        let v: Vec<Sample> = (0..100)
            .map(|i| s(i, i + 1 + (i == 50) as u64 * 99))
            .collect();
        let p = phase(
            &v,
            Window {
                start_s: 0.0,
                end_s: 0.1,
            },
        );
        assert_eq!(p.transactions, 100);
        assert_eq!(p.p50_ms, 1.0);
        assert_eq!(p.max_ms, 100.0);
        let base = PhaseStats {
            p99_ms: 2.0,
            ..Default::default()
        };
        let ok = verdict(
            &Thresholds::default(),
            &base,
            &p,
            &PhaseStats::default(),
            None,
        );
        assert!(ok.pass, "{:?}", ok.reasons);
        assert_eq!(ok.max_p99_ms, 52.0);
        let mut bad = p.clone();
        bad.p99_ms = 60.0;
        bad.errors = 1;
        bad.errors_by_code.insert("40P01".into(), 1);
        let v = verdict(
            &Thresholds::default(),
            &base,
            &bad,
            &PhaseStats::default(),
            None,
        );
        assert!(!v.pass);
        assert_eq!(v.reasons.len(), 2, "{:?}", v.reasons);
        assert!(v.reasons[1].contains("1× 40P01"));
    }
}
