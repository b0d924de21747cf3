//! The run lock: one writing command at a time.

use super::*;

/// Takes the run lock, polling (never blocking inside the server, so a waiting run cannot hold back
/// `CREATE INDEX CONCURRENTLY` in the run that holds the lock) until `ctx.lock_wait` has passed.
pub async fn acquire_lock(engine: &mut dyn Engine, ctx: &RunContext) -> Result<()> {
    let me = LockHolder::me();
    let started = Instant::now();
    let mut announced = false;
    loop {
        match engine.try_run_lock(&me).await? {
            LockAttempt::Acquired => return Ok(()),
            LockAttempt::Busy(holder) => {
                if started.elapsed() >= ctx.lock_wait {
                    return Err(Error::LockBusy {
                        url: engine.url(),
                        holder: holder.map(|h| h.to_string()),
                        waited_secs: ctx.lock_wait.as_secs(),
                    });
                }
                if !announced {
                    let who = holder
                        .map(|h| h.to_string())
                        .unwrap_or_else(|| "held by another session".into());
                    (ctx.say)(&format!(
                        "waiting up to {}s for the run lock ({who})",
                        ctx.lock_wait.as_secs()
                    ));
                    announced = true;
                }
                let left = ctx.lock_wait.saturating_sub(started.elapsed());
                tokio::time::sleep(left.min(Duration::from_millis(250))).await;
            }
        }
    }
}
