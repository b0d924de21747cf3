//! Retrying a statement that gave up waiting for its lock.

use super::*;
use crate::plan::as_written::AsWritten;

/// What gave up waiting for its lock: a statement the model describes (its SQL and tables), or,
/// for callers that hold only the statement, the statement (the model is asked about it).
#[derive(Clone, Copy)]
pub(crate) enum Subject<'a> {
    Step(&'a AsWritten),
    Statement(&'a SqlStatement),
    /// A step of a two-phase change of the statement (expand, rollback): the message names the
    /// step's own SQL (given to [`LockRetry::again_at`]), on the statement's tables.
    Phase(&'a SqlStatement),
}

impl<'a> From<&'a AsWritten> for Subject<'a> {
    fn from(w: &'a AsWritten) -> Self {
        Subject::Step(w)
    }
}

impl<'a> From<&'a SqlStatement> for Subject<'a> {
    fn from(s: &'a SqlStatement) -> Self {
        Subject::Statement(s)
    }
}

/// Retries a statement that gave up waiting for a lock: exponential backoff with jitter, until
/// `ctx.lock_retry_for` has passed, saying each time who holds the table.
pub(crate) struct LockRetry {
    pub(super) started: Instant,
    pub(super) attempt: u32,
}

impl LockRetry {
    pub(crate) fn new() -> Self {
        LockRetry {
            started: Instant::now(),
            attempt: 0,
        }
    }

    /// Waits before the next attempt and returns true, or returns false when time is up (then `e`
    /// says how long sluice tried).
    pub(crate) async fn again<'a>(
        &mut self,
        engine: &mut dyn Engine,
        subject: impl Into<Subject<'a>>,
        ctx: &RunContext,
        e: &mut crate::engine::ServerError,
    ) -> bool {
        self.again_at(engine, subject, None, ctx, e).await
    }

    /// [`again`](Self::again) for the step `sql` of `subject` (named by a [`Subject::Phase`]).
    pub(crate) async fn again_at<'a>(
        &mut self,
        engine: &mut dyn Engine,
        subject: impl Into<Subject<'a>>,
        sql: Option<&str>,
        ctx: &RunContext,
        e: &mut crate::engine::ServerError,
    ) -> bool {
        self.attempt += 1;
        let asked;
        let w = match subject.into() {
            Subject::Step(w) => w,
            Subject::Statement(s) => {
                asked = crate::plan::as_written::statement(engine.target(), s);
                &asked
            }
            Subject::Phase(s) => {
                let mut step = crate::plan::as_written::statement(engine.target(), s);
                if let Some(sql) = sql {
                    step.sql = sql.to_string();
                }
                asked = step;
                &asked
            }
        };
        let table = w.table().map(str::to_string);
        let blockers = engine
            .describe_blockers(table.as_deref())
            .await
            .unwrap_or_default();
        let who = if blockers.is_empty() {
            "unknown sessions".to_string()
        } else {
            blockers.join("; ")
        };
        if self.started.elapsed() >= ctx.lock_retry_for {
            e.message = format!(
                "{} (gave up after {} attempt(s) over {} s; blocked by {who})",
                e.message,
                self.attempt,
                self.started.elapsed().as_secs()
            );
            return false;
        }
        // 250 ms doubling to 30 s, with ±50% jitter so several waiting runs do not retry in step.
        let base = 250u64.saturating_mul(1 << self.attempt.min(7)).min(30_000);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let delay = Duration::from_millis(base / 2 + (nanos as u64 % base.max(1)));
        let delay = delay.min(ctx.lock_retry_for.saturating_sub(self.started.elapsed()));
        (ctx.say)(&format!(
            "`{}` waited {} ms for its lock{} and stepped back so queries do not queue behind it; blocked by {who}; retry {} in {} ms",
            first_line(&w.sql),
            ctx.lock_timeout.as_millis(),
            table.map(|t| format!(" on {t}")).unwrap_or_default(),
            self.attempt,
            delay.as_millis()
        ));
        tokio::time::sleep(delay).await;
        true
    }
}
