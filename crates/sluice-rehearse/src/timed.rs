//! The migration's timeline: an [`Engine`] wrapper that times every statement, transaction,
//! backfill and online ALTER the runner sends through it. Wrapping the engine (instead of hooking
//! the runner) records exactly what reached the server, with no change to the runner.

use async_trait::async_trait;
use serde::Serialize;
use sluice_core::engine::{
    Backfill, BackfillReport, BackfillSpec, Engine, Execution, HistoryStore, Introspection,
    LockAttempt, LockHolder, OnlineAlter, OnlineOptions, OnlineReport, ServerError,
};
use sluice_core::error::Result;
use sluice_core::history::{Event, EventRow, HistoryRow, Snapshot};
use sluice_core::schema::Schema;
use sluice_core::sql::SqlStatement;
use sluice_core::target::Target;
use std::sync::{Arc, Mutex};
use std::time::Instant;

#[derive(Debug, Clone, Serialize)]
pub struct Span {
    /// `statement`, `transaction`, `backfill` or `online-alter`.
    pub kind: String,
    pub label: String,
    pub start_s: f64,
    pub end_s: f64,
    /// The server's error code when the step failed (a lock timeout is retried by the runner).
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Marker {
    pub at_s: f64,
    pub text: String,
}

#[derive(Default)]
pub struct Timeline {
    pub spans: Vec<Span>,
    pub markers: Vec<Marker>,
}

pub type SharedTimeline = Arc<Mutex<Timeline>>;

pub struct TimedEngine {
    inner: Box<dyn Engine>,
    origin: Instant,
    timeline: SharedTimeline,
    tx_start: Option<f64>,
}

pub fn label(sql: &str) -> String {
    let one: String = sql
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("--"))
        .collect::<Vec<_>>()
        .join(" ");
    if one.chars().count() > 90 {
        format!("{}…", one.chars().take(90).collect::<String>())
    } else {
        one
    }
}

impl TimedEngine {
    pub fn new(inner: Box<dyn Engine>, origin: Instant, timeline: SharedTimeline) -> Self {
        TimedEngine {
            inner,
            origin,
            timeline,
            tx_start: None,
        }
    }

    fn now(&self) -> f64 {
        self.origin.elapsed().as_secs_f64()
    }

    fn push(&self, kind: &str, label: String, start_s: f64, error: Option<String>) {
        let end_s = self.now();
        self.timeline.lock().unwrap().spans.push(Span {
            kind: kind.into(),
            label,
            start_s,
            end_s,
            error,
        });
    }

    fn end_tx(&mut self, how: &str) {
        if let Some(start) = self.tx_start.take() {
            self.push("transaction", format!("transaction ({how})"), start, None);
        }
    }
}

impl TimedEngine {
    fn statement(&self, sql: &str, start: f64, r: &std::result::Result<(), ServerError>) {
        self.push(
            "statement",
            label(sql),
            start,
            r.as_ref().err().map(|e| {
                if e.code.is_empty() {
                    "error".to_string()
                } else {
                    e.code.clone()
                }
            }),
        );
    }
}

#[async_trait]
impl Execution for TimedEngine {
    fn target(&self) -> Target {
        self.inner.target()
    }

    fn url(&self) -> String {
        self.inner.url()
    }

    fn transactional_ddl(&self) -> bool {
        self.inner.transactional_ddl()
    }

    fn needs_own_transaction(&self, stmt: &SqlStatement) -> bool {
        self.inner.needs_own_transaction(stmt)
    }

    async fn begin(&mut self) -> Result<()> {
        self.tx_start = Some(self.now());
        self.inner.begin().await
    }

    async fn commit(&mut self) -> Result<()> {
        let r = self.inner.commit().await;
        self.end_tx("commit");
        r
    }

    async fn rollback(&mut self) -> Result<()> {
        let r = self.inner.rollback().await;
        self.end_tx("rollback");
        r
    }

    async fn execute(&mut self, sql: &str) -> std::result::Result<(), ServerError> {
        let start = self.now();
        let r = self.inner.execute(sql).await;
        self.statement(sql, start, &r);
        r
    }
    async fn execute_watched(
        &mut self,
        sql: &str,
        progress: Option<&sluice_core::progress::Progress>,
        say: &(dyn for<'s> Fn(&'s str) + Send + Sync),
    ) -> std::result::Result<(), ServerError> {
        let start = self.now();
        let r = self.inner.execute_watched(sql, progress, say).await;
        self.statement(sql, start, &r);
        r
    }

    async fn set_lock_timeout(&mut self, timeout: std::time::Duration) -> Result<()> {
        self.inner.set_lock_timeout(timeout).await
    }

    async fn set_statement_timeout(
        &mut self,
        timeout: std::time::Duration,
    ) -> std::result::Result<(), ServerError> {
        self.inner.set_statement_timeout(timeout).await
    }

    async fn describe_blockers(&mut self, table: Option<&str>) -> Result<Vec<String>> {
        self.inner.describe_blockers(table).await
    }

    async fn drop_invalid_index(&mut self, index: &str) -> Result<bool> {
        self.inner.drop_invalid_index(index).await
    }

    async fn before_unnamed_index(
        &mut self,
        slot: &str,
        table: &str,
        probe: &str,
        sql: &str,
    ) -> Result<sluice_core::engine::UnnamedIndex> {
        self.inner
            .before_unnamed_index(slot, table, probe, sql)
            .await
    }

    async fn after_unnamed_index(&mut self, slot: &str, table: &str, probe: &str) -> Result<()> {
        self.inner.after_unnamed_index(slot, table, probe).await
    }
}

#[async_trait]
impl HistoryStore for TimedEngine {
    async fn try_run_lock(&mut self, me: &LockHolder) -> Result<LockAttempt> {
        self.inner.try_run_lock(me).await
    }

    async fn release_run_lock(&mut self) -> Result<()> {
        self.inner.release_run_lock().await
    }

    async fn ensure_history(&mut self) -> Result<()> {
        self.inner.ensure_history().await
    }

    async fn history(&mut self) -> Result<Vec<HistoryRow>> {
        self.inner.history().await
    }

    async fn events(&mut self, limit: i64) -> Result<Vec<EventRow>> {
        self.inner.events(limit).await
    }

    async fn upsert_migration(&mut self, row: &HistoryRow) -> Result<()> {
        self.inner.upsert_migration(row).await
    }

    async fn delete_migration(&mut self, version: i64) -> Result<()> {
        self.inner.delete_migration(version).await
    }

    async fn append_event(&mut self, event: &Event) -> Result<()> {
        self.inner.append_event(event).await
    }

    async fn save_snapshot(&mut self, version: Option<i64>, schema: &Schema) -> Result<()> {
        self.inner.save_snapshot(version, schema).await
    }

    async fn latest_snapshot(&mut self) -> Result<Option<Snapshot>> {
        self.inner.latest_snapshot().await
    }
}

#[async_trait]
impl Introspection for TimedEngine {
    async fn introspect(&mut self) -> Result<Schema> {
        self.inner.introspect().await
    }

    async fn table_stats(
        &mut self,
    ) -> Result<std::collections::HashMap<String, sluice_core::analysis::TableStats>> {
        self.inner.table_stats().await
    }

    fn render_diff_sql(&self, from: &Schema, to: &Schema) -> String {
        self.inner.render_diff_sql(from, to)
    }

    async fn column_type(&mut self, table: &str, column: &str) -> Result<Option<String>> {
        self.inner.column_type(table, column).await
    }

    async fn session_time_zone(&mut self) -> Result<Option<String>> {
        self.inner.session_time_zone().await
    }

    async fn rows_below(&mut self, table: &str, limit: u64) -> Result<Option<u64>> {
        self.inner.rows_below(table, limit).await
    }

    async fn column_catalog(
        &mut self,
        table: &str,
        column: &str,
    ) -> Result<Option<sluice_core::engine::ColumnCatalog>> {
        self.inner.column_catalog(table, column).await
    }

    async fn backfill_trigger_warning(&mut self, table: &str) -> Result<Option<String>> {
        self.inner.backfill_trigger_warning(table).await
    }

    async fn check_privileges(&mut self, statements: &[String], online: bool) -> Result<()> {
        self.inner.check_privileges(statements, online).await
    }

    async fn query_text(&mut self, sql: &str) -> Result<Vec<Vec<Option<String>>>> {
        self.inner.query_text(sql).await
    }

    async fn logical_replication(&mut self) -> Result<sluice_core::engine::LogicalReplication> {
        self.inner.logical_replication().await
    }

    async fn publisher_columns(
        &mut self,
        subscription: &str,
        table: &str,
    ) -> Result<std::result::Result<Vec<String>, String>> {
        self.inner.publisher_columns(subscription, table).await
    }

    async fn subscriber(
        &mut self,
        url: &sluice_core::dburl::DbUrl,
        tables: &[String],
        types: &[String],
    ) -> Result<std::result::Result<sluice_core::engine::SubscriberView, String>> {
        self.inner.subscriber(url, tables, types).await
    }
}

#[async_trait]
impl Backfill for TimedEngine {
    async fn backfill(
        &mut self,
        spec: &BackfillSpec,
        say: &(dyn for<'s> Fn(&'s str) + Send + Sync),
    ) -> Result<BackfillReport> {
        let start = self.now();
        let r = self.inner.backfill(spec, say).await;
        self.push(
            "backfill",
            format!("backfill {} SET {}", spec.table, spec.set),
            start,
            r.as_ref().err().map(|e| e.to_string()),
        );
        r
    }
}

#[async_trait]
impl OnlineAlter for TimedEngine {
    async fn alter_online(
        &mut self,
        sql: &str,
        opts: &OnlineOptions,
        say: &(dyn for<'s> Fn(&'s str) + Send + Sync),
    ) -> Result<Option<OnlineReport>> {
        let start = self.now();
        let r = self.inner.alter_online(sql, opts, say).await;
        // Ok(None): the statement runs as written next, through `execute`, timed there. A failed
        // online ALTER is on the timeline too, with its error.
        match &r {
            Ok(Some(rep)) => self.push(
                "online-alter",
                format!("{} ({})", label(sql), rep.path),
                start,
                None,
            ),
            Ok(None) => {}
            Err(e) => self.push("online-alter", label(sql), start, Some(e.to_string())),
        }
        r
    }

    async fn explain_online(
        &mut self,
        sql: &str,
        as_written_below_rows: u64,
    ) -> Result<Option<Vec<String>>> {
        self.inner.explain_online(sql, as_written_below_rows).await
    }

    async fn as_written_impact(
        &mut self,
        sql: &str,
    ) -> Result<Option<(String, sluice_core::plan::Impact)>> {
        self.inner.as_written_impact(sql).await
    }
}
