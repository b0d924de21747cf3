//! How long work reports how far it is: one mechanism for the backfill, the online copy and its
//! catch-up, and index builds.
//!
//! Work feeds a [`Meter`] readings (done, total, phase). With a terminal display (a [`Progress`],
//! the binary's progress bar) every reading goes to it; without one, the meter writes a log line
//! through the run's `say` at most once per [`interval`] (`SLUICE_PROGRESS_INTERVAL_MS`, default
//! 2000): counts, rate and time left.

use std::sync::Arc;
use std::time::{Duration, Instant};

/// Where log lines go (the run's `say`).
pub type Say<'a> = &'a (dyn for<'s> Fn(&'s str) + Send + Sync);

/// One reading, as a terminal display receives it.
#[derive(Debug, Clone, Copy)]
pub struct Tick<'a> {
    /// What is being done, e.g. "backfill public.orders", "copy of `t`".
    pub task: &'a str,
    /// The step of the task ("" when it has one step), e.g. "building index: scanning table".
    pub phase: &'a str,
    pub unit: &'a str,
    pub done: u64,
    /// 0 when unknown.
    pub total: u64,
    /// The task ended: the display goes away.
    pub finished: bool,
}

/// A terminal display of progress (the binary's progress bar). Without one, progress goes to the
/// log every [`interval`].
#[derive(Clone)]
pub struct Progress(pub Arc<dyn Fn(&Tick<'_>) + Send + Sync>);

impl std::fmt::Debug for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Progress")
    }
}

/// How often progress is logged without a terminal: `SLUICE_PROGRESS_INTERVAL_MS` (tests set it
/// low to see lines on small tables), 2 s by default.
pub fn interval() -> Duration {
    std::env::var("SLUICE_PROGRESS_INTERVAL_MS")
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(|ms| Duration::from_millis(ms.max(1)))
        .unwrap_or(Duration::from_secs(2))
}

/// Follows one task: hands every reading to the terminal display, or logs one line per interval.
pub struct Meter<'a> {
    task: String,
    phase: String,
    unit: String,
    approximate: bool,
    sink: Option<Progress>,
    say: Say<'a>,
    interval: Duration,
    last_line: Instant,
    /// Where the rate is measured from: the first reading of the phase (a resumed task counts
    /// only what this run did).
    base: Option<(Instant, u64)>,
    finished: bool,
}

impl<'a> Meter<'a> {
    /// `unit` names what is counted ("rows"); `sink` is the terminal display, if any.
    pub fn new(task: impl Into<String>, unit: &str, sink: Option<&Progress>, say: Say<'a>) -> Self {
        Meter {
            task: task.into(),
            phase: String::new(),
            unit: unit.to_string(),
            approximate: false,
            sink: sink.cloned(),
            say,
            interval: interval(),
            last_line: Instant::now(),
            base: None,
            finished: false,
        }
    }

    /// The total is the server's estimate: shown as `~N`.
    pub fn approximate(mut self) -> Self {
        self.approximate = true;
        self
    }

    /// The task started at `at`, before the meter: its first line is due one interval after that.
    pub fn since(mut self, at: Instant) -> Self {
        self.last_line = at;
        self
    }

    /// What the meter follows.
    pub fn task(&self) -> &str {
        &self.task
    }

    /// Enters a phase counted in `unit`; the rate is measured afresh. No-op when unchanged.
    pub fn phase(&mut self, phase: &str, unit: &str) {
        if self.phase != phase || self.unit != unit {
            self.phase = phase.to_string();
            self.unit = unit.to_string();
            self.base = None;
        }
    }

    /// Whether the next [`Meter::update`] shows anything: for readings that cost a query.
    pub fn due(&self) -> bool {
        self.sink.is_some() || self.last_line.elapsed() >= self.interval
    }

    /// A reading: `done` of `total` (0: unknown); `detail` ends the log line (", chunk 500 rows").
    pub fn update(&mut self, done: u64, total: u64, detail: &str) {
        let now = Instant::now();
        let (t0, d0) = *self.base.get_or_insert((now, done));
        let total = if total > 0 { total.max(done) } else { 0 };
        if let Some(sink) = &self.sink {
            (sink.0)(&Tick {
                task: &self.task,
                phase: &self.phase,
                unit: &self.unit,
                done,
                total,
                finished: false,
            });
            return;
        }
        if self.last_line.elapsed() < self.interval {
            return;
        }
        self.last_line = now;
        let secs = now.duration_since(t0).as_secs_f64();
        let rate = (secs > 0.0 && done > d0).then(|| (done - d0) as f64 / secs);
        (self.say)(&line(
            &self.task,
            &self.phase,
            &self.unit,
            done,
            total,
            self.approximate,
            rate,
            detail,
        ));
    }

    /// The task ended: the terminal display goes away (also on drop).
    pub fn finish(&mut self) {
        if std::mem::replace(&mut self.finished, true) {
            return;
        }
        if let Some(sink) = &self.sink {
            (sink.0)(&Tick {
                task: &self.task,
                phase: &self.phase,
                unit: &self.unit,
                done: 0,
                total: 0,
                finished: true,
            });
        }
    }
}

impl Drop for Meter<'_> {
    fn drop(&mut self) {
        self.finish();
    }
}

/// `task: phase, 1200 of ~5000 rows (24%), 3000 rows/s, about 2 s left, detail`.
#[allow(clippy::too_many_arguments)]
fn line(
    task: &str,
    phase: &str,
    unit: &str,
    done: u64,
    total: u64,
    approximate: bool,
    rate: Option<f64>,
    detail: &str,
) -> String {
    let mut s = format!("{task}: ");
    if !phase.is_empty() {
        s.push_str(phase);
        // A phase that counts nothing (a sort) shows no counts.
        if total == 0 && done == 0 {
            s.push_str(detail);
            return s;
        }
        s.push_str(", ");
    }
    if let Some(pct) = (done * 100).checked_div(total) {
        let tilde = if approximate { "~" } else { "" };
        s.push_str(&format!("{done} of {tilde}{total} {unit} ({pct}%)"));
    } else {
        s.push_str(&format!("{done} {unit}"));
    }
    if let Some(r) = rate {
        s.push_str(&format!(", {r:.0} {unit}/s"));
        if total > done {
            s.push_str(&format!(", about {} left", eta((total - done) as f64 / r)));
        }
    }
    s.push_str(detail);
    s
}

fn eta(secs: f64) -> String {
    let s = secs.ceil() as u64;
    match s {
        0..=119 => format!("{s} s"),
        120..=7199 => format!("{} min", s.div_ceil(60)),
        _ => format!("{} h {} min", s / 3600, s % 3600 / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[test]
    fn lines_show_counts_rate_and_time_left() {
        let cases = [
            (
                ("copy of `t`", "", "rows", 1200, 5000, true, Some(400.0), ", chunk 500 rows"),
                "copy of `t`: 1200 of ~5000 rows (24%), 400 rows/s, about 10 s left, chunk 500 rows",
            ),
            (
                ("index i", "building index: scanning table", "blocks", 10, 40, false, Some(1.0), ""),
                "index i: building index: scanning table, 10 of 40 blocks (25%), 1 blocks/s, about 30 s left",
            ),
            (
                ("backfill t", "", "rows", 7, 0, true, None, ""),
                "backfill t: 7 rows",
            ),
            (
                ("x", "waiting for old snapshots", "transactions", 0, 2, false, None, ""),
                "x: waiting for old snapshots, 0 of 2 transactions (0%)",
            ),
            (
                ("x", "index validation: sorting tuples", "blocks", 0, 0, false, None, ""),
                "x: index validation: sorting tuples",
            ),
            (
                ("x", "", "rows", 10, 10, false, Some(5.0), ""),
                "x: 10 of 10 rows (100%), 5 rows/s",
            ),
            (
                ("x", "", "rows", 0, 100_000, false, Some(10.0), ""),
                "x: 0 of 100000 rows (0%), 10 rows/s, about 2 h 46 min left",
            ),
            (
                ("x", "", "rows", 0, 1_000, false, Some(1.0), ""),
                "x: 0 of 1000 rows (0%), 1 rows/s, about 17 min left",
            ),
        ];
        for ((task, phase, unit, done, total, approx, rate, detail), want) in cases {
            assert_eq!(
                line(task, phase, unit, done, total, approx, rate, detail),
                want
            );
        }
    }

    #[test]
    fn without_a_display_one_line_per_interval() {
        let lines = Mutex::new(Vec::<String>::new());
        let say = |l: &str| lines.lock().unwrap().push(l.to_string());
        let mut m = Meter::new("t", "rows", None, &say);
        m.interval = Duration::from_millis(30);
        m.update(0, 100, "");
        assert!(
            lines.lock().unwrap().is_empty(),
            "nothing before an interval"
        );
        std::thread::sleep(Duration::from_millis(35));
        m.update(50, 100, "");
        m.update(60, 100, "");
        let got = lines.lock().unwrap().clone();
        assert_eq!(got.len(), 1, "{got:?}");
        assert!(got[0].starts_with("t: 50 of 100 rows (50%), "), "{got:?}");
        assert!(got[0].contains(" rows/s, about "), "{got:?}");
    }

    #[test]
    fn a_display_gets_every_reading_and_the_end() {
        let ticks = Arc::new(Mutex::new(Vec::new()));
        let t = ticks.clone();
        let sink = Progress(Arc::new(move |k: &Tick<'_>| {
            t.lock()
                .unwrap()
                .push((k.phase.to_string(), k.done, k.total, k.finished))
        }));
        let say = |_: &str| panic!("no log lines with a display");
        {
            let mut m = Meter::new("t", "rows", Some(&sink), &say);
            m.update(1, 10, "");
            m.phase("p", "blocks");
            m.update(2, 1, "");
        }
        assert_eq!(
            *ticks.lock().unwrap(),
            vec![
                (String::new(), 1, 10, false),
                ("p".to_string(), 2, 2, false),
                ("p".to_string(), 0, 0, true)
            ]
        );
    }
}
