//! `sluice fleet`: the same migrations on many databases (tenants, shards), from a targets file.
//!
//! Each target runs this sluice binary as a child process with the target's URL in its
//! environment (never on its command line, where `ps` would show a password), so every target
//! gets exactly what one `sluice up` gives one database: its run lock, history, resume, pacing and
//! exit code. The fleet adds the order (groups one after another, e.g. canary → rest), the
//! concurrency limit, stopping on the first failure, phase gating for two-phase migrations, and
//! one summary. Its state is each target's own history: a fleet run killed at any point is resumed
//! by running it again — finished targets are found up to date, an interrupted one resumes where
//! it stopped, and nothing that finished runs twice.

use crate::cli::{FleetAction, FleetArgs, FleetOpts, Global};
use serde::{Deserialize, Serialize};
use sluice_core::error::{exit, Error, Result};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;
use tokio::io::{AsyncBufReadExt, BufReader};

/// The targets file.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FleetFile {
    /// A URL template: `{target}` is replaced by each target's name. Without it, targets are URLs.
    url: Option<String>,
    concurrency: Option<usize>,
    #[serde(rename = "group", default)]
    groups: Vec<GroupSpec>,
    /// Per target (by name): the logical-replication subscribers its run checks.
    #[serde(default)]
    subscribers: std::collections::BTreeMap<String, Urls>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GroupSpec {
    name: String,
    #[serde(default)]
    targets: Vec<String>,
    /// A file with one target per line (`#` starts a comment), relative to the targets file.
    targets_file: Option<PathBuf>,
    /// Each target's subscribers: templates with `{target}`, replaced as in `url`.
    subscriber_url: Option<Urls>,
}

/// One URL or a list of them (a publisher may have several subscribers).
struct Urls(Vec<String>);

impl<'de> Deserialize<'de> for Urls {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Urls, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = Urls;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a URL or a list of URLs")
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> std::result::Result<Urls, E> {
                Ok(Urls(vec![s.to_string()]))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> std::result::Result<Urls, A::Error> {
                let mut all = Vec::new();
                while let Some(u) = seq.next_element::<String>()? {
                    all.push(u);
                }
                Ok(Urls(all))
            }
        }
        d.deserialize_any(Visit)
    }
}

/// The environment variable through which a target's run gets its subscribers: the child reads it
/// as `--subscriber-url`, and a URL's password stays off every command line.
const SUBSCRIBERS_VAR: &str = "SLUICE_SUBSCRIBER_URLS";

/// One database of the fleet.
#[derive(Debug, Clone)]
pub struct Target {
    /// What the output calls it: the template's value, or the URL with any secret hidden.
    pub name: String,
    pub group: String,
    url: String,
    /// Its subscribers from the targets file (empty: none named there).
    subscribers: Vec<String>,
}

/// The fleet as the targets file describes it, groups in file order.
pub struct Fleet {
    pub targets: Vec<Target>,
    pub groups: Vec<String>,
    pub concurrency: Option<usize>,
}

fn bad(path: &Path, message: impl Into<String>) -> Error {
    Error::usage(
        format!("{}: {}", path.display(), message.into()),
        "see `sluice fleet --help` and the README's Fleets section for the targets file",
    )
}

/// Reads and checks the targets file: every name once, a template with `{target}`, URLs that are
/// URLs, at least one target.
pub fn load(path: &Path) -> Result<Fleet> {
    let text =
        std::fs::read_to_string(path).map_err(|e| bad(path, format!("cannot read it: {e}")))?;
    let file: FleetFile = toml::from_str(&text).map_err(|e| bad(path, e.message().to_string()))?;
    if let Some(t) = &file.url {
        if !t.contains("{target}") {
            return Err(bad(path, "`url` is a template and must contain `{target}`"));
        }
    }
    if file.concurrency == Some(0) {
        return Err(bad(path, "`concurrency` must be at least 1"));
    }
    let mut fleet = Fleet {
        targets: vec![],
        groups: vec![],
        concurrency: file.concurrency,
    };
    for g in &file.groups {
        if fleet.groups.contains(&g.name) {
            return Err(bad(path, format!("group `{}` is listed twice", g.name)));
        }
        fleet.groups.push(g.name.clone());
        if let Some(Urls(templates)) = &g.subscriber_url {
            if file.url.is_none() {
                return Err(bad(
                    path,
                    format!("group `{}`: `subscriber_url` is a template with `{{target}}`, which needs named targets: add a `url` template (or give each target's subscribers in `[subscribers]`)", g.name),
                ));
            }
            if templates.is_empty() || templates.iter().any(|t| !t.contains("{target}")) {
                return Err(bad(
                    path,
                    format!("group `{}`: `subscriber_url` is a template and must contain `{{target}}` (each target has its own subscriber; one target's URL goes in `[subscribers]`)", g.name),
                ));
            }
        }
        let mut names = g.targets.clone();
        if let Some(f) = &g.targets_file {
            let f = path.parent().unwrap_or(Path::new(".")).join(f);
            let listed = std::fs::read_to_string(&f).map_err(|e| {
                bad(
                    path,
                    format!("group `{}`: cannot read {}: {e}", g.name, f.display()),
                )
            })?;
            names.extend(
                listed
                    .lines()
                    .map(|l| l.split('#').next().unwrap_or("").trim())
                    .filter(|l| !l.is_empty())
                    .map(str::to_string),
            );
        }
        for (k, n) in names.into_iter().enumerate() {
            let (name, url) = match &file.url {
                Some(template) => {
                    if n.is_empty() || n.chars().any(|c| c.is_whitespace() || "/@:?#".contains(c)) {
                        return Err(bad(
                            path,
                            format!("group `{}`: target `{n}` is not a plain name for the `url` template", g.name),
                        ));
                    }
                    (n.clone(), template.replace("{target}", &n))
                }
                None => {
                    if !n.contains("://") {
                        return Err(bad(
                            path,
                            format!(
                                "group `{}`: its target number {} is not a database URL (without a `url` template, targets are URLs; the text is not repeated: it may hold a secret)",
                                g.name,
                                k + 1
                            ),
                        ));
                    }
                    (sluice_core::redact::url_text(&n), n.clone())
                }
            };
            if fleet.targets.iter().any(|t| t.url == url || t.name == name) {
                return Err(bad(path, format!("target `{name}` is listed twice")));
            }
            let subscribers = match &g.subscriber_url {
                Some(Urls(templates)) => templates
                    .iter()
                    .map(|t| t.replace("{target}", &name))
                    .collect(),
                None => vec![],
            };
            fleet.targets.push(Target {
                name,
                group: g.name.clone(),
                url,
                subscribers,
            });
        }
    }
    if fleet.targets.is_empty() {
        return Err(bad(
            path,
            "no targets: add `[[group]]` tables with `targets` or `targets_file`",
        ));
    }
    for (name, Urls(urls)) in &file.subscribers {
        // A key that is no target may be a URL pasted by mistake: not repeated then.
        let shown = || match name.contains("://") {
            true => sluice_core::redact::url_text(name),
            false => name.clone(),
        };
        let Some(t) = fleet.targets.iter_mut().find(|t| &t.name == name) else {
            return Err(bad(
                path,
                format!(
                    "`[subscribers]` names `{}`, which is not a target of this file{}",
                    shown(),
                    if file.url.is_none() {
                        " (`[subscribers]` is keyed by target name, which needs a `url` template)"
                    } else {
                        ""
                    }
                ),
            ));
        };
        if !t.subscribers.is_empty() {
            return Err(bad(
                path,
                format!(
                    "target `{name}` gets subscribers both from group `{}`'s `subscriber_url` and from `[subscribers]`: keep one (move the target to a group of its own, or drop its `[subscribers]` entry)",
                    t.group
                ),
            ));
        }
        if urls.is_empty() {
            return Err(bad(
                path,
                format!("`[subscribers]`: `{name}` = [] names no subscriber: give at least one URL, or leave the target out"),
            ));
        }
        t.subscribers = urls.clone();
    }
    for t in &fleet.targets {
        for (k, u) in t.subscribers.iter().enumerate() {
            // Space-separated in the child's environment, so no whitespace within one.
            if !u.contains("://") || u.chars().any(char::is_whitespace) {
                return Err(bad(
                    path,
                    format!(
                        "target `{}`: its subscriber number {} is not a database URL (the text is not repeated: it may hold a secret)",
                        t.name,
                        k + 1
                    ),
                ));
            }
        }
    }
    Ok(fleet)
}

impl Fleet {
    /// Whether the targets file names any target's subscribers.
    pub fn names_subscribers(&self) -> bool {
        self.targets.iter().any(|t| !t.subscribers.is_empty())
    }
}

/// Where subscribers are given for every target at once (the option after `--`, the variable,
/// sluice.toml), if anywhere: each child would read them too.
fn global_subscribers(args: &[String], global: &Global) -> Option<&'static str> {
    if args
        .iter()
        .any(|a| a == "--subscriber-url" || a.starts_with("--subscriber-url="))
    {
        return Some("`--subscriber-url` after `--`");
    }
    if std::env::var_os(SUBSCRIBERS_VAR).is_some_and(|v| !v.is_empty()) {
        return Some("the SLUICE_SUBSCRIBER_URLS variable");
    }
    let config = sluice_core::config::Config::load(global.config.as_deref()).unwrap_or_default();
    if config.subscriber_urls.is_some_and(|u| !u.is_empty()) {
        return Some("`subscriber_urls` in sluice.toml");
    }
    None
}

/// How one target's run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    Ok,
    Failed,
    /// Exit 5: the server could not be reached (reported; the other targets go on).
    Unreachable,
    /// Not run: the fleet stopped after a failure.
    NotStarted,
    /// Not run again: an earlier, unfinished run of the same command on the same migrations
    /// finished it (the fleet's state file says so).
    DoneEarlier,
}

#[derive(Debug, Clone, Serialize)]
pub struct TargetRun {
    pub target: String,
    pub group: String,
    pub outcome: Outcome,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    pub took_ms: u64,
    /// The child's error line, or its last line when it succeeded.
    pub detail: String,
    #[serde(skip)]
    pub stdout: String,
}

/// The fleet's resume state for `up` and `complete`: which targets an unfinished run of the same
/// command, on the same migration files and configuration, already finished. A rerun skips them
/// (each target's history would say the same, at the cost of a connection and a run per target);
/// written after each target, atomically, so a kill -9 loses at most the targets in flight (which
/// their own history resumes); removed once every target has succeeded.
#[derive(Serialize, Deserialize, Default)]
struct State {
    key: String,
    done: Vec<String>,
}

pub struct Resume {
    path: PathBuf,
    key: String,
    done: std::sync::Mutex<Vec<String>>,
}

impl Resume {
    /// The state for `args` run with the targets file `targets`: what an earlier run with the same
    /// key finished, or nothing.
    pub fn open(targets: &Path, args: &[String], global: &Global) -> Resume {
        let name = targets
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "fleet".into());
        let path = targets
            .parent()
            .unwrap_or(Path::new("."))
            .join(format!(".{name}.state"));
        let key = run_key(args, global);
        let done = std::fs::read_to_string(&path)
            .ok()
            .and_then(|t| serde_json::from_str::<State>(&t).ok())
            .filter(|s| s.key == key)
            .map(|s| s.done)
            .unwrap_or_default();
        Resume {
            path,
            key,
            done: std::sync::Mutex::new(done),
        }
    }

    pub fn finished_earlier(&self, target: &str) -> bool {
        self.done
            .lock()
            .expect("state lock")
            .iter()
            .any(|t| t == target)
    }

    /// Records `target` as finished (best effort: without the file, a rerun only checks it again).
    fn finished(&self, target: &str) {
        let mut done = self.done.lock().expect("state lock");
        done.push(target.to_string());
        let text = serde_json::to_string(&State {
            key: self.key.clone(),
            done: done.clone(),
        })
        .expect("serialisable");
        let tmp = self.path.with_extension("state.tmp");
        if std::fs::write(&tmp, text).is_ok() {
            let _ = std::fs::rename(&tmp, &self.path);
        }
    }

    /// Every target succeeded: nothing to resume.
    fn clear(&self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// What a run's outcome depends on: the command with its options, sluice.toml, and every file of
/// the migrations directory (names and contents). Another migration, an edited one or other
/// options make it another run.
fn run_key(args: &[String], global: &Global) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for a in args {
        h.update(a.as_bytes());
        h.update([0]);
    }
    let config_path = global
        .config
        .clone()
        .unwrap_or_else(|| PathBuf::from("sluice.toml"));
    h.update(std::fs::read(&config_path).unwrap_or_default());
    let config = sluice_core::config::Config::load(global.config.as_deref()).unwrap_or_default();
    let dir = crate::cli::migrations_dir(global, &config);
    let mut files = Vec::new();
    let mut stack = vec![dir];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                files.push(p);
            }
        }
    }
    files.sort();
    for f in files {
        h.update(f.to_string_lossy().as_bytes());
        h.update([0]);
        h.update(std::fs::read(&f).unwrap_or_default());
        h.update([0]);
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// What every child is given besides its command: the global options that shape a run.
pub fn child_globals(g: &Global) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(c) = &g.config {
        out.push("--config".into());
        out.push(c.display().to_string());
    }
    if let Some(d) = &g.migrations_dir {
        out.push("--migrations-dir".into());
        out.push(d.display().to_string());
    }
    for _ in 0..g.verbose {
        out.push("-v".into());
    }
    if g.quiet {
        out.push("-q".into());
    }
    out
}

/// Runs `sluice <args>` for one target, its stderr (and, unless `capture`, its stdout) echoed to
/// stderr line by line with the target's name in front.
async fn run_one(t: &Target, args: &[String], globals: &[String], capture: bool) -> TargetRun {
    let started = Instant::now();
    let exe = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("sluice"));
    let mut cmd = tokio::process::Command::new(exe);
    cmd.args(globals)
        .args(args)
        .env("DATABASE_URL", &t.url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(false);
    if !t.subscribers.is_empty() {
        // `status` does not read it; `up`, `plan` and `complete` check these subscribers.
        cmd.env(SUBSCRIBERS_VAR, t.subscribers.join(" "));
    }
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            return TargetRun {
                target: t.name.clone(),
                group: t.group.clone(),
                outcome: Outcome::Failed,
                exit_code: None,
                took_ms: 0,
                detail: format!("could not start sluice: {e}"),
                stdout: String::new(),
            }
        }
    };
    let prefix = format!("[{}] ", t.name);
    let out = child.stdout.take().expect("piped");
    let err = child.stderr.take().expect("piped");
    let p1 = prefix.clone();
    let stdout = tokio::spawn(async move {
        let mut lines = BufReader::new(out).lines();
        let mut all = String::new();
        while let Ok(Some(l)) = lines.next_line().await {
            if !capture {
                errln!("{p1}{l}");
            }
            all.push_str(&l);
            all.push('\n');
        }
        all
    });
    let stderr = tokio::spawn(async move {
        let mut lines = BufReader::new(err).lines();
        let mut error: Option<String> = None;
        let mut last = String::new();
        while let Ok(Some(l)) = lines.next_line().await {
            errln!("{prefix}{l}");
            let trimmed = l.trim();
            if error.is_none() {
                if let Some(rest) = trimmed.strip_prefix("error:") {
                    error = Some(rest.trim_start_matches([' ', '×']).trim().to_string());
                }
            }
            if !trimmed.is_empty() {
                last = trimmed.trim_start_matches("sluice: ").to_string();
            }
        }
        error.unwrap_or(last)
    });
    let status = child.wait().await;
    let stdout = stdout.await.unwrap_or_default();
    let detail = stderr.await.unwrap_or_default();
    let code = status.ok().and_then(|s| s.code());
    let outcome = match code {
        Some(exit::OK) => Outcome::Ok,
        Some(exit::CONNECT) => Outcome::Unreachable,
        _ => Outcome::Failed,
    };
    TargetRun {
        target: t.name.clone(),
        group: t.group.clone(),
        outcome,
        exit_code: code,
        took_ms: started.elapsed().as_millis() as u64,
        // Whatever a child printed, a secret in it is not repeated here.
        detail: sluice_core::redact::secrets(&detail),
        stdout,
    }
}

/// Runs `args` on every target: groups in order, at most `concurrency` targets at once. Unless
/// `keep_going`, the first failure (not an unreachable server) starts no further target; those
/// running finish.
pub async fn run_all(
    fleet: &Fleet,
    args: &[String],
    globals: &[String],
    concurrency: usize,
    keep_going: bool,
    capture: bool,
    resume: Option<&Arc<Resume>>,
) -> Vec<TargetRun> {
    let stop = Arc::new(AtomicBool::new(false));
    let mut runs: Vec<Option<TargetRun>> = vec![None; fleet.targets.len()];
    if let Some(r) = resume {
        for (i, t) in fleet.targets.iter().enumerate() {
            if r.finished_earlier(&t.name) {
                runs[i] = Some(TargetRun {
                    target: t.name.clone(),
                    group: t.group.clone(),
                    outcome: Outcome::DoneEarlier,
                    exit_code: None,
                    took_ms: 0,
                    detail: format!(
                        "finished by an earlier run of this command (state: {})",
                        r.path.display()
                    ),
                    stdout: String::new(),
                });
            }
        }
    }
    let skip: Vec<bool> = runs.iter().map(Option::is_some).collect();
    for group in &fleet.groups {
        let gate = Arc::new(tokio::sync::Semaphore::new(concurrency));
        let mut set = tokio::task::JoinSet::new();
        for (i, t) in fleet
            .targets
            .iter()
            .enumerate()
            .filter(|(i, t)| &t.group == group && !skip[*i])
        {
            let permit = gate.clone().acquire_owned().await.expect("open semaphore");
            if stop.load(Ordering::SeqCst) {
                break;
            }
            let (t, args, globals, stop) =
                (t.clone(), args.to_vec(), globals.to_vec(), stop.clone());
            let resume = resume.cloned();
            set.spawn(async move {
                let r = run_one(&t, &args, &globals, capture).await;
                if r.outcome == Outcome::Failed && !keep_going {
                    stop.store(true, Ordering::SeqCst);
                }
                if let (Outcome::Ok, Some(state)) = (r.outcome, &resume) {
                    state.finished(&t.name);
                }
                drop(permit);
                (i, r)
            });
        }
        while let Some(done) = set.join_next().await {
            if let Ok((i, r)) = done {
                runs[i] = Some(r);
            }
        }
    }
    let first_failed = runs
        .iter()
        .flatten()
        .find(|r| r.outcome == Outcome::Failed)
        .map(|r| r.target.clone());
    fleet
        .targets
        .iter()
        .zip(runs)
        .map(|(t, r)| {
            r.unwrap_or_else(|| TargetRun {
                target: t.name.clone(),
                group: t.group.clone(),
                outcome: Outcome::NotStarted,
                exit_code: None,
                took_ms: 0,
                detail: match &first_failed {
                    Some(f) => format!("not started: the fleet stopped after {f} failed (--keep-going runs the rest)"),
                    None => "not started".into(),
                },
                stdout: String::new(),
            })
        })
        .collect()
}

/// The fleet's exit code: 0 when every target succeeded, else the first failed target's code (5
/// when the only trouble was unreachable servers).
pub fn exit_code(runs: &[TargetRun]) -> i32 {
    if let Some(r) = runs.iter().find(|r| r.outcome == Outcome::Failed) {
        return r.exit_code.unwrap_or(exit::MIGRATION_FAILED);
    }
    if runs.iter().any(|r| r.outcome == Outcome::Unreachable) {
        return exit::CONNECT;
    }
    exit::OK
}

#[derive(Serialize)]
struct Summary<'a> {
    command: &'a str,
    targets: &'a [TargetRun],
    ok: usize,
    done_earlier: usize,
    failed: usize,
    unreachable: usize,
    not_started: usize,
    took_ms: u64,
}

pub fn print_summary(command: &str, runs: &[TargetRun], took_ms: u64, json: bool) {
    let count = |o: Outcome| runs.iter().filter(|r| r.outcome == o).count();
    let earlier = count(Outcome::DoneEarlier);
    if json {
        let s = Summary {
            command,
            targets: runs,
            ok: count(Outcome::Ok),
            done_earlier: earlier,
            failed: count(Outcome::Failed),
            unreachable: count(Outcome::Unreachable),
            not_started: count(Outcome::NotStarted),
            took_ms,
        };
        crate::stdout_text(&format!(
            "{}\n",
            serde_json::to_string_pretty(&s).expect("serialisable")
        ));
        return;
    }
    let w = runs
        .iter()
        .map(|r| r.target.chars().count())
        .max()
        .unwrap_or(6)
        .max(6);
    let gw = runs
        .iter()
        .map(|r| r.group.chars().count())
        .max()
        .unwrap_or(5)
        .max(5);
    outln!(
        "{:<w$}  {:<gw$}  {:<16}  {:>8}  DETAIL",
        "TARGET",
        "GROUP",
        "RESULT",
        "TOOK"
    );
    for r in runs {
        let result = match (r.outcome, r.exit_code) {
            (Outcome::Ok, _) => "ok".to_string(),
            (Outcome::Failed, Some(c)) => format!("failed (exit {c})"),
            (Outcome::Failed, None) => "failed".to_string(),
            (Outcome::Unreachable, _) => "unreachable".to_string(),
            (Outcome::NotStarted, _) => "not started".to_string(),
            (Outcome::DoneEarlier, _) => "done earlier".to_string(),
        };
        let took = if matches!(r.outcome, Outcome::NotStarted | Outcome::DoneEarlier) {
            "-".to_string()
        } else {
            format!("{:.1} s", r.took_ms as f64 / 1000.0)
        };
        outln!(
            "{:<w$}  {:<gw$}  {:<16}  {:>8}  {}",
            r.target,
            r.group,
            result,
            took,
            r.detail
        );
    }
    outln!(
        "{} target(s): {} ok{}, {} failed, {} unreachable, {} not started; {command} took {:.1} s",
        runs.len(),
        count(Outcome::Ok),
        if earlier > 0 {
            format!(" (and {earlier} done by an earlier run)")
        } else {
            String::new()
        },
        count(Outcome::Failed),
        count(Outcome::Unreachable),
        count(Outcome::NotStarted),
        took_ms as f64 / 1000.0
    );
}

/// `fleet status`: each target's migrations counted by state (from `sluice status --json`).
pub fn status_detail(r: &mut TargetRun) -> Option<Vec<(i64, String)>> {
    let v: serde_json::Value = serde_json::from_str(&r.stdout).ok()?;
    let entries: Vec<(i64, String)> = v["migrations"]
        .as_array()?
        .iter()
        .filter_map(|m| Some((m["version"].as_i64()?, m["status"].as_str()?.to_string())))
        .collect();
    let mut counts: std::collections::BTreeMap<&str, usize> = Default::default();
    for (_, s) in &entries {
        *counts.entry(s.as_str()).or_default() += 1;
    }
    r.detail = counts
        .iter()
        .map(|(s, n)| format!("{n} {s}"))
        .collect::<Vec<_>>()
        .join(", ");
    if r.detail.is_empty() {
        r.detail = "no migrations".into();
    }
    Some(entries)
}

/// Before `fleet complete`: every target reachable, nothing pending, failed or in flight, and the
/// same migrations expanded everywhere — no target contracts while another has not expanded.
pub fn gate_complete(runs: &mut [TargetRun]) -> Result<()> {
    let mut problems = Vec::new();
    let mut expanded_sets: Vec<(String, Vec<i64>)> = Vec::new();
    for r in runs.iter_mut() {
        if r.outcome != Outcome::Ok {
            problems.push(format!("{}: {}", r.target, r.detail));
            continue;
        }
        let Some(entries) = status_detail(r) else {
            problems.push(format!("{}: its status could not be read", r.target));
            continue;
        };
        let blocking: Vec<String> = entries
            .iter()
            .filter(|(_, s)| !matches!(s.as_str(), "applied" | "baseline" | "expanded"))
            .map(|(v, s)| format!("{v} {s}"))
            .collect();
        if !blocking.is_empty() {
            problems.push(format!("{}: {}", r.target, blocking.join(", ")));
        }
        let expanded: Vec<i64> = entries
            .iter()
            .filter(|(_, s)| s == "expanded")
            .map(|(v, _)| *v)
            .collect();
        expanded_sets.push((r.target.clone(), expanded));
    }
    if let Some((first, want)) = expanded_sets.first() {
        for (t, got) in &expanded_sets[1..] {
            if got != want {
                problems.push(format!(
                    "{t}: expanded {:?}, but {first} expanded {:?}",
                    got, want
                ));
            }
        }
        if problems.is_empty() && want.is_empty() {
            problems.push("no target has an expanded migration".into());
        }
    }
    if problems.is_empty() {
        return Ok(());
    }
    Err(Error::lifecycle(
        format!(
            "`sluice fleet complete` contracts only when every target has expanded the same migrations and has nothing pending or failed; not so:\n  {}",
            problems.join("\n  ")
        ),
        "run `sluice fleet up` until every target is expanded (and reachable), then `sluice fleet complete`; nothing was completed",
    ))
}

/// `sluice fleet …`: the command.
/// Once every target has succeeded (now or earlier), the state goes: the next run checks every
/// target again.
fn finish_state(state: &Resume, runs: &[TargetRun]) {
    if runs
        .iter()
        .all(|r| matches!(r.outcome, Outcome::Ok | Outcome::DoneEarlier))
    {
        state.clear();
    }
}

pub async fn command(f: &FleetArgs, global: &Global) -> Result<i32> {
    let (opts, command, args): (&FleetOpts, &str, &[String]) = match &f.action {
        FleetAction::Up { opts, args } => (opts, "up", args),
        FleetAction::Plan { opts, args } => (opts, "plan", args),
        FleetAction::Status { opts } => (opts, "status", &[]),
        FleetAction::Complete { opts, args } => (opts, "complete", args),
    };
    if global.database_url.is_some() && std::env::var_os("DATABASE_URL").is_none() {
        return Err(Error::usage(
            "`sluice fleet` takes each target's database URL from the targets file, not --database-url",
            "drop --database-url; list the targets (or a `url` template) in the targets file",
        ));
    }
    if let Some(a) = args.iter().find(|a| {
        a.starts_with("--database-url") || a.starts_with("--config") || a.starts_with("--json")
    }) {
        return Err(Error::usage(
            format!("`{a}` cannot be passed on to the targets"),
            "give --config before `fleet`; each target's URL comes from the targets file; --json is the fleet's own option",
        ));
    }
    let fl = load(&opts.targets)?;
    if command != "status" && fl.names_subscribers() {
        if let Some(source) = global_subscribers(args, global) {
            return Err(Error::usage(
                format!(
                    "subscribers are given both for every target ({source}) and per target in {}: a target's run would check the ones of another",
                    opts.targets.display()
                ),
                "give each target's subscribers in the targets file only (`subscriber_url` in its group, or `[subscribers]`): drop the other",
            ));
        }
    }
    let concurrency = opts.concurrency.or(fl.concurrency).unwrap_or(4);
    if concurrency == 0 {
        return Err(Error::usage(
            "--concurrency must be at least 1",
            "e.g. --concurrency 8",
        ));
    }
    let globals = child_globals(global);
    let started = std::time::Instant::now();
    let status_args = vec!["status".to_string(), "--json".to_string()];
    let mut child_args = vec![command.to_string()];
    child_args.extend(args.iter().cloned());
    let runs = match command {
        "status" => {
            let mut runs =
                run_all(&fl, &status_args, &globals, concurrency, true, true, None).await;
            for r in runs.iter_mut().filter(|r| r.outcome == Outcome::Ok) {
                if status_detail(r).is_none() {
                    r.outcome = Outcome::Failed;
                    r.detail = "its status could not be read".into();
                }
            }
            runs
        }
        _ => {
            // `up` and `complete` resume an unfinished run; `plan` changes nothing to resume.
            let state = (command != "plan")
                .then(|| Arc::new(Resume::open(&opts.targets, &child_args, global)));
            if command == "complete" {
                // Phase gating: no target contracts until every one has expanded (a target an
                // unfinished `fleet complete` already completed has nothing expanded).
                let mut checked =
                    run_all(&fl, &status_args, &globals, concurrency, true, true, None).await;
                if let Some(state) = &state {
                    checked.retain(|r| !state.finished_earlier(&r.target));
                }
                gate_complete(&mut checked)?;
            }
            let runs = run_all(
                &fl,
                &child_args,
                &globals,
                concurrency,
                opts.keep_going,
                false,
                state.as_ref(),
            )
            .await;
            if let Some(state) = &state {
                finish_state(state, &runs);
            }
            runs
        }
    };
    print_summary(
        &format!("fleet {command}"),
        &runs,
        started.elapsed().as_millis() as u64,
        opts.json,
    );
    Ok(exit_code(&runs))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(text: &str) -> (tempfile::TempDir, PathBuf) {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("fleet.toml");
        std::fs::write(&p, text).unwrap();
        (d, p)
    }

    #[test]
    fn targets_files_are_read_in_group_order_and_checked() {
        let (d, p) = file(
            "url = \"postgres://app:s3cret@db/{target}\"\nconcurrency = 3\n\
             [[group]]\nname = \"canary\"\ntargets = [\"t1\"]\n\
             [[group]]\nname = \"rest\"\ntargets = [\"t2\"]\ntargets_file = \"more.txt\"\n",
        );
        std::fs::write(
            d.path().join("more.txt"),
            "t3\n# a comment\n\nt4  # trailing\n",
        )
        .unwrap();
        let f = load(&p).unwrap();
        let names: Vec<(&str, &str)> = f
            .targets
            .iter()
            .map(|t| (t.name.as_str(), t.group.as_str()))
            .collect();
        assert_eq!(
            names,
            [
                ("t1", "canary"),
                ("t2", "rest"),
                ("t3", "rest"),
                ("t4", "rest")
            ]
        );
        assert_eq!(f.targets[2].url, "postgres://app:s3cret@db/t3");
        assert_eq!(f.concurrency, Some(3));
        // Plain URLs: named without their password.
        let (_d, p) = file("[[group]]\nname = \"all\"\ntargets = [\"postgres://u:pw@h/db1\"]\n");
        let f = load(&p).unwrap();
        assert!(!f.targets[0].name.contains("pw"), "{}", f.targets[0].name);
        // Every mistake: one message naming it, no secret in it.
        for (text, says) in [
            ("url = \"postgres://h/db\"\n[[group]]\nname = \"a\"\ntargets = [\"x\"]\n", "must contain `{target}`"),
            ("[[group]]\nname = \"a\"\ntargets = [\"db1\"]\n", "is not a database URL"),
            ("[[group]]\nname = \"a\"\ntargets = [\"postgres://u:pw@h/d\", \"postgres://u:pw@h/d\"]\n", "listed twice"),
            ("[[group]]\nname = \"a\"\n", "no targets"),
            ("[[group]]\nname = \"a\"\ntargets = [\"postgres://h/d\"]\n[[group]]\nname = \"a\"\ntargets = [\"postgres://h/e\"]\n", "group `a` is listed twice"),
            ("concurency = 3\n[[group]]\nname = \"a\"\ntargets = [\"postgres://h/d\"]\n", "unknown field `concurency`"),
            ("concurrency = 0\n[[group]]\nname = \"a\"\ntargets = [\"postgres://h/d\"]\n", "at least 1"),
            ("url = \"postgres://h/{target}\"\n[[group]]\nname = \"a\"\ntargets = [\"x/y\"]\n", "not a plain name"),
            ("[[group]]\nname = \"a\"\ntargets_file = \"missing.txt\"\n", "cannot read"),
            ("[[group]]\nname = \"a\"\ntargets = [\"pw=hunter2\"]\n", "is not a database URL"),
        ] {
            let (_d, p) = file(text);
            let e = load(&p).err().unwrap_or_else(|| panic!("accepted: {text}"));
            let msg = format!("{e}");
            assert!(msg.contains(says), "{text}: {msg}");
            assert!(!msg.contains("hunter2") && !msg.contains(":pw@"), "{msg}");
            assert_eq!(e.exit_code(), exit::BAD_INPUT, "{text}");
        }
    }

    /// Each target's subscribers: from its group's template, from `[subscribers]`, or none.
    #[test]
    fn subscribers_are_read_per_target() {
        let (_d, p) = file(
            "url = \"postgres://app@pub/{target}\"\n\
             [[group]]\nname = \"canary\"\ntargets = [\"t1\"]\n\
             subscriber_url = \"postgres://app:s3cret@sub/{target}_copy\"\n\
             [[group]]\nname = \"rest\"\ntargets = [\"t2\", \"t3\", \"t4\"]\n\
             [[group]]\nname = \"two\"\ntargets = [\"t5\"]\n\
             subscriber_url = [\"postgres://a/{target}\", \"postgres://b/{target}\"]\n\
             [subscribers]\nt2 = \"postgres://sub-a/x\"\nt3 = [\"postgres://sub-b/y\", \"postgres://sub-c/y\"]\n",
        );
        let f = load(&p).unwrap();
        let subs: Vec<(&str, Vec<&str>)> = f
            .targets
            .iter()
            .map(|t| {
                (
                    t.name.as_str(),
                    t.subscribers.iter().map(String::as_str).collect(),
                )
            })
            .collect();
        assert_eq!(
            subs,
            [
                ("t1", vec!["postgres://app:s3cret@sub/t1_copy"]),
                ("t2", vec!["postgres://sub-a/x"]),
                ("t3", vec!["postgres://sub-b/y", "postgres://sub-c/y"]),
                ("t4", vec![]),
                ("t5", vec!["postgres://a/t5", "postgres://b/t5"]),
            ]
        );
        assert!(f.names_subscribers());
        let (_d, p) = file("[[group]]\nname = \"a\"\ntargets = [\"postgres://h/d\"]\n");
        assert!(!load(&p).unwrap().names_subscribers());
        let named =
            "url = \"postgres://h/{target}\"\n[[group]]\nname = \"a\"\ntargets = [\"x\", \"y\"]\n";
        for (text, says) in [
            (format!("{named}subscriber_url = \"postgres://u:hunter2@sub/db\"\n"), "must contain `{target}`"),
            (format!("{named}subscriber_url = []\n"), "must contain `{target}`"),
            ("[[group]]\nname = \"a\"\ntargets = [\"postgres://h/d\"]\nsubscriber_url = \"postgres://sub/{target}\"\n".to_string(), "needs named targets"),
            ("[[group]]\nname = \"a\"\ntargets = [\"postgres://h/d\"]\n[subscribers]\n\"postgres://u:hunter2@h/d\" = \"postgres://sub/d\"\n".to_string(), "which needs a `url` template"),
            (format!("{named}[subscribers]\nz = \"postgres://sub/z\"\n"), "names `z`, which is not a target"),
            (format!("{named}subscriber_url = \"postgres://sub/{{target}}\"\n[subscribers]\ny = \"postgres://sub/y\"\n"), "both from group `a`'s `subscriber_url` and from `[subscribers]`"),
            (format!("{named}[subscribers]\ny = []\n"), "names no subscriber"),
            (format!("{named}[subscribers]\ny = \"hunter2\"\n"), "target `y`: its subscriber number 1 is not a database URL"),
            (format!("{named}[subscribers]\ny = [\"postgres://s/y\", \"postgres://u:hunter2@s/y postgres://s/z\"]\n"), "its subscriber number 2 is not a database URL"),
            (format!("{named}subscriber_urls = \"postgres://sub/{{target}}\"\n"), "unknown field `subscriber_urls`"),
            (format!("{named}subscriber_url = 5\n"), "expected a URL or a list of URLs"),
        ] {
            let (_d, p) = file(&text);
            let e = load(&p).err().unwrap_or_else(|| panic!("accepted: {text}"));
            let msg = format!("{e}");
            assert!(msg.contains(says), "{text}: {msg}");
            assert!(!msg.contains("hunter2"), "{msg}");
            assert_eq!(e.exit_code(), exit::BAD_INPUT, "{text}");
        }
    }

    fn run(target: &str, outcome: Outcome, code: Option<i32>, stdout: &str) -> TargetRun {
        TargetRun {
            target: target.into(),
            group: "g".into(),
            outcome,
            exit_code: code,
            took_ms: 1,
            detail: String::new(),
            stdout: stdout.into(),
        }
    }

    #[test]
    fn exit_codes_and_the_complete_gate() {
        assert_eq!(exit_code(&[run("a", Outcome::Ok, Some(0), "")]), 0);
        assert_eq!(
            exit_code(&[
                run("a", Outcome::Unreachable, Some(5), ""),
                run("b", Outcome::Failed, Some(1), ""),
                run("c", Outcome::NotStarted, None, "")
            ]),
            1
        );
        assert_eq!(exit_code(&[run("a", Outcome::Unreachable, Some(5), "")]), 5);
        let st = |states: &[(i64, &str)]| {
            let m: Vec<serde_json::Value> = states
                .iter()
                .map(|(v, s)| serde_json::json!({"version": v, "status": s}))
                .collect();
            serde_json::json!({ "migrations": m }).to_string()
        };
        let ready = st(&[(1, "applied"), (2, "expanded")]);
        let mut ok = vec![
            run("a", Outcome::Ok, Some(0), &ready),
            run("b", Outcome::Ok, Some(0), &ready),
        ];
        gate_complete(&mut ok).unwrap();
        for others in [
            st(&[(1, "applied"), (2, "pending")]),
            st(&[(1, "applied"), (2, "failed")]),
            st(&[(1, "applied"), (2, "applied")]),
        ] {
            let mut runs = vec![
                run("a", Outcome::Ok, Some(0), &ready),
                run("b", Outcome::Ok, Some(0), &others),
            ];
            let e = gate_complete(&mut runs).unwrap_err();
            assert_eq!(e.exit_code(), exit::LIFECYCLE, "{others}");
            assert!(format!("{e}").contains("b: "), "{e}");
        }
        let mut down = vec![
            run("a", Outcome::Ok, Some(0), &ready),
            run("b", Outcome::Unreachable, Some(5), ""),
        ];
        assert!(gate_complete(&mut down).is_err());
        let none = st(&[(1, "applied")]);
        let mut nothing = vec![run("a", Outcome::Ok, Some(0), &none)];
        assert!(format!("{}", gate_complete(&mut nothing).unwrap_err())
            .contains("no target has an expanded migration"));
    }
}
